/*
 * The joining worker: asks the members it knows of (--join, or the leader
 * it has heard of) to make this node a voter and record its listen
 * address, with NODE_JOIN, until one says yes, the request is refused for
 * good (DLOG_EINVAL: the id is taken by another address), or the node
 * stops. It runs on the loop's threadpool with the blocking client
 * (net/rpc.h), and touches only fields of the node that do not change
 * after node_start, plus its own result fields, read back on the loop.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <dlog/err.h>

#include "base/log.h"
#include "net/rpc.h"
#include "node/node_int.h"

#define CALL_MS  2000 /* per attempt: node_stop waits for the worker */
#define RETRY_MS 200

static void pause_ms(unsigned ms)
{
    struct timespec ts = {0, (long)ms * 1000000L};

    nanosleep(&ts, NULL);
}

static void join_work(uv_work_t *w)
{
    struct node *n = w->data;
    struct net_rpc *r = NULL;
    struct net_rpc_reply rep;
    struct wire_msg m;
    int rv;

    n->join_status = net_rpc_open(n->join_targets, n->name, &r, n->join_err);
    if (n->join_status != 0)
        return;
    net_rpc_set_timeout(r, CALL_MS);
    while (!atomic_load(&n->stop_flag)) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_NODE_JOIN;
        m.u.node_join.id = n->id;
        m.u.node_join.raft_address = n->raft_addr;
        m.u.node_join.listen_address = n->listen;
        rv = net_rpc_call(r, &m, NET_RPC_IDEMPOTENT, &rep, n->join_err);
        if (rv == 0) {
            rv = rep.msg.status;
            if (rv != 0)
                snprintf(n->join_err, sizeof n->join_err, "%s",
                         rep.msg.err.message ? rep.msg.err.message : dlog_strerror(rv));
            net_rpc_reply_free(&rep);
        }
        n->join_status = rv;
        if (rv == 0 || rv == DLOG_EINVAL || rv == DLOG_EPROTO)
            break;
        pause_ms(RETRY_MS);
    }
    net_rpc_close(r);
}

static void join_after(uv_work_t *w, int status)
{
    struct node *n = w->data;

    (void)status;
    n->join_running = 0;
    if (n->join_status == 0)
        log_info("node", "node %llu joined the metadata group through %s",
                 (unsigned long long)n->id, n->join_targets);
    else if (!n->stopping)
        log_error("node", "node %llu cannot join through %s: %s",
                  (unsigned long long)n->id, n->join_targets, n->join_err);
}

void node_join_start(struct node *n, const char *targets)
{
    if (n->join_running || n->stopping)
        return;
    snprintf(n->join_targets, sizeof n->join_targets, "%s", targets);
    n->join_status = 0;
    n->join_err[0] = '\0';
    n->join_work.data = n;
    if (uv_queue_work(n->loop, &n->join_work, join_work, join_after) == 0)
        n->join_running = 1;
}
