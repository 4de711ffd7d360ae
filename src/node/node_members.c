/*
 * Membership of the metadata group: who leads and where to find it
 * (redirects), adding and removing nodes (NODE_JOIN, NODE_REMOVE), the
 * CLUSTER_STATUS report, and each node's record of its listen address
 * ("nodes/<id>" in the group's keys).
 *
 * A join is three steps on the leader, each waiting for the previous one
 * to commit: raft_add (the node becomes a spare), raft_assign to voter
 * (libraft first catches its log up), then the record of its listen
 * address. Each step is skipped when already done, so asking again (a
 * restarted node does) is harmless.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/meta_cmd.h"
#include "node/node_int.h"

static void key_of(uint64_t id, char *key, size_t size)
{
    snprintf(key, size, NODE_KEY_PREFIX "%" PRIu64, id);
}

int node_listen_of(struct node *n, uint64_t id, char *buf, size_t size)
{
    char key[64];
    struct bytes v;
    int rv;

    key_of(id, key, sizeof key);
    bytes_init(&v);
    rv = meta_fsm_kv_get(n->fsm, key, &v, NULL);
    if (rv == 0 && (v.len == 0 || v.len >= size || memchr(v.p, '\0', v.len) != NULL))
        rv = DLOG_ENOTFOUND;
    if (rv == 0) {
        memcpy(buf, v.p, v.len);
        buf[v.len] = '\0';
    }
    bytes_free(&v);
    return rv;
}

void node_redirect(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    char addr[NODE_ADDR_MAX], msg[DLOG_ERRMSG_SIZE];
    raft_id leader = 0;
    const char *raft_addr = NULL;

    raft_leader(&n->raft, &leader, &raft_addr);
    if (leader == 0 || leader == n->id) {
        node_send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE,
                        leader == 0 ? "no leader is known: an election may be running"
                                    : "this node leads but is not ready yet",
                        NULL);
        return;
    }
    if (node_listen_of(n, leader, addr, sizeof addr) != 0) {
        errmsg_printf(msg, "node %llu leads but its listen address is not known here",
                      (unsigned long long)leader);
        node_send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE, msg, NULL);
        return;
    }
    errmsg_printf(msg, "node %llu leads the metadata group", (unsigned long long)leader);
    node_send_error(c, m->type, m->request_id, DLOG_ENOTLEADER, msg, addr);
}

/* ---------------------------------------------------------------- joining */

enum { STEP_ADD, STEP_ASSIGN, STEP_RECORD, STEP_REMOVE };

struct jreq {
    struct raft_change change;
    struct node *n;
    struct nconn *c; /* NULL: our own registration */
    uint32_t type;
    uint64_t request_id;
    uint64_t id;
    int step;
    char raft_addr[NODE_ADDR_MAX];
    char listen[NODE_ADDR_MAX];
};

static void jreq_done(struct jreq *j, int status, const char *msg)
{
    struct wire_msg rep;

    if (j->c != NULL) {
        if (status != 0) {
            node_send_error(j->c, j->type, j->request_id, status, msg, NULL);
        } else {
            node_rep_init(&rep, j->type, j->request_id, 0);
            node_send(j->c, &rep);
        }
        nconn_unref(j->c);
    } else {
        j->n->registering = 0;
    }
    if (status == 0 && j->type == WIRE_NODE_JOIN)
        log_info("node", "node %llu is a voter, listening on %s",
                 (unsigned long long)j->id, j->listen);
    free(j);
}

static void join_step(struct jreq *j);

static void record_done(void *data, int status, const struct meta_fsm_result *res)
{
    struct jreq *j = data;

    if (status == 0 && res->status != 0 &&
        !(j->step == STEP_REMOVE && res->status == DLOG_ENOTFOUND))
        status = res->status;
    jreq_done(j, status, status == DLOG_ETIMEDOUT ? "leadership lost: retry" : NULL);
}

static void change_cb(struct raft_change *req, int status)
{
    struct jreq *j = req->data;
    char msg[DLOG_ERRMSG_SIZE];

    j->n->inflight--;
    if (status != 0) {
        errmsg_printf(msg, "membership change for node %llu failed: %s",
                      (unsigned long long)j->id, raft_strerror(status));
        jreq_done(j, node_raft_err(status), msg);
        return;
    }
    if (j->step == STEP_ADD)
        j->step = STEP_ASSIGN;
    else if (j->step == STEP_ASSIGN)
        j->step = STEP_RECORD;
    join_step(j);
}

static const struct raft_server *find_server(struct node *n, uint64_t id)
{
    for (unsigned i = 0; i < n->raft.configuration.n; i++)
        if (n->raft.configuration.servers[i].id == id)
            return &n->raft.configuration.servers[i];
    return NULL;
}

/* The record of j's listen address (or its removal). */
static void propose_record(struct jreq *j)
{
    struct node *n = j->n;
    char key[64], cur[NODE_ADDR_MAX];
    struct bytes cmd;
    int rv;

    key_of(j->id, key, sizeof key);
    bytes_init(&cmd);
    if (j->step == STEP_REMOVE) {
        rv = meta_cmd_kv_remove(&cmd, clock_wall_ms(), key, META_KV_ANY);
    } else {
        if (node_listen_of(n, j->id, cur, sizeof cur) == 0 &&
            strcmp(cur, j->listen) == 0) {
            jreq_done(j, 0, NULL); /* already recorded */
            return;
        }
        rv = meta_cmd_kv_put(&cmd, clock_wall_ms(), key, j->listen, strlen(j->listen),
                             META_KV_ANY);
    }
    if (rv != 0) {
        bytes_free(&cmd);
        jreq_done(j, rv, NULL);
        return;
    }
    node_propose(n, &cmd, record_done, j);
}

static void join_step(struct jreq *j)
{
    struct node *n = j->n;
    const struct raft_server *s = find_server(n, j->id);
    char msg[DLOG_ERRMSG_SIZE];
    int rv = 0;

    if (raft_state(&n->raft) != RAFT_LEADER || n->stopping) {
        jreq_done(j, DLOG_EUNAVAILABLE, "leadership lost: retry");
        return;
    }
    if (s == NULL) {
        j->step = STEP_ADD;
        rv = raft_add(&n->raft, &j->change, j->id, j->raft_addr, change_cb);
    } else if (strcmp(s->address, j->raft_addr) != 0) {
        errmsg_printf(msg, "node %llu is a member at raft address %s, not %s",
                      (unsigned long long)j->id, s->address, j->raft_addr);
        jreq_done(j, DLOG_EINVAL, msg);
        return;
    } else if (s->role != RAFT_VOTER) {
        j->step = STEP_ASSIGN;
        rv = raft_assign(&n->raft, &j->change, j->id, RAFT_VOTER, change_cb);
    } else {
        propose_record(j);
        return;
    }
    if (rv != 0) {
        errmsg_printf(msg, "membership change for node %llu: %s",
                      (unsigned long long)j->id, raft_errmsg(&n->raft));
        jreq_done(j, node_raft_err(rv), msg);
        return;
    }
    n->inflight++;
}

/* After a removal commits, its record goes. */
static void remove_record_step(struct jreq *j)
{
    j->step = STEP_REMOVE;
    propose_record(j);
}

static struct jreq *jreq_new(struct nconn *c, const struct wire_msg *m)
{
    struct jreq *j = calloc(1, sizeof *j);

    if (j == NULL) {
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return NULL;
    }
    j->change.data = j;
    j->n = c->n;
    j->c = c;
    j->type = m->type;
    j->request_id = m->request_id;
    nconn_ref(c);
    return j;
}

void node_handle_join(struct nconn *c, const struct wire_msg *m)
{
    struct jreq *j;

    if (raft_state(&c->n->raft) != RAFT_LEADER) {
        node_redirect(c, m);
        return;
    }
    j = jreq_new(c, m);
    if (j == NULL)
        return;
    j->id = m->u.node_join.id;
    snprintf(j->raft_addr, sizeof j->raft_addr, "%s", m->u.node_join.raft_address);
    snprintf(j->listen, sizeof j->listen, "%s", m->u.node_join.listen_address);
    j->step = STEP_ADD;
    join_step(j);
}

static void remove_change_cb(struct raft_change *req, int status)
{
    struct jreq *j = req->data;
    char msg[DLOG_ERRMSG_SIZE];

    j->n->inflight--;
    if (status != 0) {
        errmsg_printf(msg, "removing node %llu failed: %s", (unsigned long long)j->id,
                      raft_strerror(status));
        jreq_done(j, node_raft_err(status), msg);
        return;
    }
    if (raft_state(&j->n->raft) != RAFT_LEADER) { /* it removed itself */
        jreq_done(j, 0, NULL);
        return;
    }
    remove_record_step(j);
}

void node_handle_remove(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct jreq *j;
    int rv;

    if (raft_state(&n->raft) != RAFT_LEADER) {
        node_redirect(c, m);
        return;
    }
    j = jreq_new(c, m);
    if (j == NULL)
        return;
    j->id = m->u.node_remove.id;
    if (find_server(n, j->id) == NULL) {
        remove_record_step(j);
        return;
    }
    rv = raft_remove(&n->raft, &j->change, j->id, remove_change_cb);
    if (rv != 0) {
        jreq_done(j, node_raft_err(rv), raft_errmsg(&n->raft));
        return;
    }
    n->inflight++;
}

/* ---------------------------------------------------------------- status */

void node_handle_status(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct wire_msg rep;
    struct wire_member *mb;
    char(*listen)[NODE_ADDR_MAX];
    char leader_listen[NODE_ADDR_MAX] = "";
    unsigned nserv = n->raft.configuration.n;
    raft_id leader = 0;
    const char *leader_raft = NULL;

    mb = calloc(nserv > 0 ? nserv : 1, sizeof *mb);
    listen = calloc(nserv > 0 ? nserv : 1, sizeof *listen);
    if (mb == NULL || listen == NULL) {
        free(mb);
        free(listen);
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return;
    }
    for (unsigned i = 0; i < nserv; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (node_listen_of(n, s->id, listen[i], sizeof listen[i]) != 0)
            listen[i][0] = '\0';
        mb[i] = (struct wire_member){s->id, s->address, listen[i], (uint32_t)s->role};
    }
    raft_leader(&n->raft, &leader, &leader_raft);
    if (leader != 0 &&
        node_listen_of(n, leader, leader_listen, sizeof leader_listen) != 0)
        leader_listen[0] = '\0';
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.cluster_status_rep = (struct wire_cluster_status_rep){
        .id = n->id,
        .state = (uint32_t)raft_state(&n->raft),
        .leader_id = leader,
        .leader_address = leader_listen,
        .term = n->raft.current_term,
        .commit_index = n->raft.commit_index,
        .applied_index = raft_last_applied(&n->raft),
        .revision = meta_fsm_revision(n->fsm),
        .members = mb,
        .nmembers = nserv,
    };
    node_send(c, &rep);
    free(mb);
    free(listen);
}

/* ---------------------------------------------------------------- tick */

void node_members_tick(struct node *n)
{
    char cur[NODE_ADDR_MAX], leader_listen[NODE_ADDR_MAX];
    raft_id leader = 0;
    const char *leader_raft = NULL;
    struct jreq *j;

    if (node_listen_of(n, n->id, cur, sizeof cur) == 0 && strcmp(cur, n->listen) == 0)
        return;
    if (find_server(n, n->id) == NULL)
        return; /* not a member (yet): the joining worker sees to it */
    if (raft_state(&n->raft) == RAFT_LEADER) {
        /* Only once the leader has applied everything of earlier terms, so
         * that its view of the record is current. */
        if (n->registering || raft_last_applied(&n->raft) < n->raft.commit_index)
            return;
        j = calloc(1, sizeof *j);
        if (j == NULL)
            return;
        j->n = n;
        j->id = n->id;
        j->type = WIRE_NODE_JOIN;
        j->step = STEP_RECORD;
        snprintf(j->listen, sizeof j->listen, "%s", n->listen);
        snprintf(j->raft_addr, sizeof j->raft_addr, "%s", n->raft_addr);
        n->registering = 1;
        propose_record(j);
        return;
    }
    raft_leader(&n->raft, &leader, &leader_raft);
    if (leader == 0 || n->join_running ||
        node_listen_of(n, leader, leader_listen, sizeof leader_listen) != 0)
        return;
    node_join_start(n, leader_listen);
}
