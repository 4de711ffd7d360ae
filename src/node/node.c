/*
 * The node's lifecycle (node.h): opening the metadata group on raft_uv,
 * bootstrapping it, the periodic tick, and the careful close.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/meta_cmd.h"
#include "node/node_int.h"

#define TICK_MS           100
#define STOP_WAIT_MS      5000 /* for in-flight proposals and appends at close */
#define DEFAULT_THRESHOLD 4096
#define DEFAULT_TRAILING  1024

int node_raft_err(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case RAFT_NOMEM:
        return DLOG_ENOMEM;
    case RAFT_NOTLEADER:
        return DLOG_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
    case RAFT_SHUTDOWN:
        return DLOG_ETIMEDOUT; /* proposed, and it may still be committed */
    case RAFT_CANTCHANGE:
        return DLOG_EBUSY;
    case RAFT_BADID:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
    case RAFT_NOTFOUND:
        return DLOG_EINVAL;
    default:
        return DLOG_EIO;
    }
}

/*
 * Log entry framing. libraft 0.15's raft_uv needs every entry's payload to
 * be a multiple of 8 bytes: it pads entries when it stores them, but its
 * AppendEntries decoding assumes padded payloads, so a 46-byte command
 * makes a follower read past its receive buffer and store garbage (found
 * with ASan; the command's CRC then fails on that follower only). So the
 * node frames each command as an 8-byte header (the command's length,
 * big-endian) + the command + zeros up to a multiple of 8, and unframes
 * it here before the FSM sees it.
 */
#define FRAME_HEAD 8

int node_frame(const struct bytes *cmd, struct raft_buffer *buf)
{
    size_t len = FRAME_HEAD + ((cmd->len + 7) & ~(size_t)7);

    buf->base = raft_malloc(len);
    if (buf->base == NULL)
        return DLOG_ENOMEM;
    memset(buf->base, 0, len);
    put_u64be(buf->base, cmd->len);
    if (cmd->len > 0)
        memcpy((uint8_t *)buf->base + FRAME_HEAD, cmd->p, cmd->len);
    buf->len = len;
    return 0;
}

/* The FSM as libraft sees it: meta_fsm's adapter behind the framing, with
 * a debug log line per applied command. */
static int logged_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct node *n = rf->data;
    struct raft_buffer inner = {NULL, 0};
    uint64_t len = buf->len >= FRAME_HEAD ? get_u64be(buf->base) : UINT64_MAX;
    int rv;

    /* A torn frame gives the FSM an empty command: it fails the same way
     * on every replica (DLOG_ECORRUPT), as a torn command would. */
    if (len <= buf->len - FRAME_HEAD) {
        inner.base = (uint8_t *)buf->base + FRAME_HEAD;
        inner.len = len;
    }
    rv = n->fsm_inner.apply(&n->fsm_inner, &inner, result);
    if (rv == 0 && *result != NULL && log_level() <= LOG_DEBUG) {
        const struct meta_fsm_result *res = *result;
        log_debug("node",
                  "node %llu applied index %llu (%zu bytes): %s -> %s, revision %llu",
                  (unsigned long long)n->id,
                  (unsigned long long)raft_last_applied(&n->raft) + 1, inner.len,
                  meta_cmd_type_name(res->type), dlog_strerror(res->status),
                  (unsigned long long)res->revision);
    }
    return rv;
}

static int logged_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n)
{
    struct node *nd = rf->data;

    return nd->fsm_inner.snapshot(&nd->fsm_inner, bufs, n);
}

static int logged_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n)
{
    struct node *nd = rf->data;

    return nd->fsm_inner.snapshot_finalize(&nd->fsm_inner, bufs, n);
}

static int logged_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct node *n = rf->data;
    int rv = n->fsm_inner.restore(&n->fsm_inner, buf);

    log_info("node", "node %llu restored a snapshot: %s", (unsigned long long)n->id,
             rv == 0 ? "ok" : raft_strerror(rv));
    return rv;
}

static int mkdir_p(const char *dir)
{
    char buf[4096];
    size_t len = strlen(dir);

    if (len == 0 || len >= sizeof buf)
        return -1;
    memcpy(buf, dir, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The bootstrap configuration: --peers "ID@HOST:PORT,...", or this node. */
static int bootstrap_conf(struct node *n, const char *peers,
                          struct raft_configuration *conf, char *errmsg)
{
    const char *p = peers;
    int self = 0, rv;

    raft_configuration_init(conf);
    if (peers == NULL || peers[0] == '\0') {
        rv = raft_configuration_add(conf, n->id, n->raft_addr, RAFT_VOTER);
        return rv == 0 ? 0 : errmsg_fail(errmsg, DLOG_ENOMEM, "out of memory");
    }
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char item[NODE_ADDR_MAX + 32], *at, *end;
        unsigned long long id;

        if (len == 0 || len >= sizeof item)
            return errmsg_fail(errmsg, DLOG_EINVAL, "--peers: bad item in '%s'", peers);
        memcpy(item, p, len);
        item[len] = '\0';
        at = strchr(item, '@');
        errno = 0;
        id = at != NULL ? strtoull(item, &end, 10) : 0;
        if (at == NULL || end != at || id == 0 || errno != 0 || at[1] == '\0')
            return errmsg_fail(errmsg, DLOG_EINVAL,
                               "--peers: expected ID@HOST:PORT, got '%s'", item);
        if (id == n->id) {
            self = 1;
            if (strcmp(at + 1, n->raft_addr) != 0)
                return errmsg_fail(errmsg, DLOG_EINVAL,
                                   "--peers names node %llu at %s, but --raft is %s", id,
                                   at + 1, n->raft_addr);
        }
        rv = raft_configuration_add(conf, id, at + 1, RAFT_VOTER);
        if (rv != 0)
            return errmsg_fail(errmsg, DLOG_EINVAL, "--peers: node %llu: %s", id,
                               raft_strerror(rv));
        p += len;
        if (*p == ',')
            p++;
    }
    if (!self)
        return errmsg_fail(errmsg, DLOG_EINVAL, "--peers does not name this node (%llu)",
                           (unsigned long long)n->id);
    return 0;
}

static int open_raft(struct node *n, const struct node_options *o, char *errmsg)
{
    char dir[4200];
    struct raft_configuration conf;
    int rv;

    snprintf(dir, sizeof dir, "%s/meta-raft", n->dir);
    if (mkdir_p(dir) != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "cannot create %s: %s", dir,
                           strerror(errno));
    rv = raft_tcp_init(&n->transport, n->loop);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_tcp_init: %s", raft_strerror(rv));
    n->transport_inited = 1;
    rv = raft_uv_init(&n->io, n->loop, dir, &n->transport.iface);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_uv_init(%s): %s", dir,
                           n->io.errmsg[0] ? n->io.errmsg : raft_strerror(rv));
    n->io_inited = 1;
    rv = raft_init(&n->raft, &n->io, &n->fsm_adapter, n->id, n->raft_addr);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_init: %s", raft_errmsg(&n->raft));
    n->raft_inited = 1;
    n->rafts_open++;
    n->raft.data = n;
    raft_set_election_timeout(&n->raft, o->election_ms ? o->election_ms : 1000);
    raft_set_heartbeat_timeout(&n->raft, o->heartbeat_ms ? o->heartbeat_ms : 100);
    /* Metadata is small and its snapshots cheap, but each one still stalls
     * appends: keep them a few thousand entries apart (TESTING.md). */
    raft_set_snapshot_threshold(&n->raft, o->snapshot_threshold ? o->snapshot_threshold
                                                                : DEFAULT_THRESHOLD);
    raft_set_snapshot_trailing(&n->raft, o->snapshot_trailing ? o->snapshot_trailing
                                                              : DEFAULT_TRAILING);
    /* A restarted node must not depose a healthy leader (Raft thesis 9.6). */
    raft_set_pre_vote(&n->raft, true);
    if (o->bootstrap) {
        rv = bootstrap_conf(n, o->peers, &conf, errmsg);
        if (rv == 0) {
            rv = raft_bootstrap(&n->raft, &conf);
            if (rv == RAFT_CANTBOOTSTRAP) {
                log_info("node", "%s already holds a group: not bootstrapping", dir);
                rv = 0;
            } else if (rv != 0) {
                errmsg_printf(errmsg, "raft_bootstrap: %s", raft_errmsg(&n->raft));
                rv = DLOG_EIO;
            }
        }
        raft_configuration_close(&conf);
        if (rv != 0)
            return rv;
    }
    rv = raft_start(&n->raft);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_start: %s", raft_errmsg(&n->raft));
    return 0;
}

/* ---------------------------------------------------------------- closing */

static void on_async_closed(uv_handle_t *h)
{
    struct node *n = h->data;
    void (*cb)(void *) = n->stop_cb;
    void *data = n->stop_data;

    meta_fsm_free(n->fsm);
    free(n);
    if (cb != NULL)
        cb(data);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct node *n = h->data;

    node_data_free(n); /* joins the FSMs' writer threads, which wake data_async */
    uv_close((uv_handle_t *)&n->data_async, on_async_closed);
}

void node_raft_closed(struct node *n)
{
    if (--n->rafts_open == 0)
        uv_close((uv_handle_t *)&n->tick, on_tick_closed);
}

static void on_raft_closed(struct raft *r)
{
    struct node *n = r->data;

    raft_uv_close(&n->io);
    raft_tcp_close(&n->transport);
    node_raft_closed(n);
}

/*
 * libraft 0.15 can abort in raft_close while a follower's disk write is in
 * flight (upstream #224; TESTING.md). So close only once every appended
 * entry is stored and no proposal of ours is pending, or at the deadline.
 * The check and raft_close run in the same callback: no append can start
 * in between.
 */
static void try_close(struct node *n)
{
    int quiet = n->raft.last_stored >= raft_last_index(&n->raft) && n->inflight == 0 &&
                node_data_quiet(n);

    if (n->join_running || n->raft_closing || node_xfer_busy(n))
        return;
    if (!quiet && clock_now_ns() < n->stop_deadline)
        return;
    if (!quiet)
        log_warn("node",
                 "closing with %u proposals pending and %llu of %llu entries "
                 "stored",
                 n->inflight, (unsigned long long)n->raft.last_stored,
                 (unsigned long long)raft_last_index(&n->raft));
    n->raft_closing = 1;
    uv_timer_stop(&n->tick);
    raft_close(&n->raft, on_raft_closed);
    node_data_close(n);
}

static void on_tick(uv_timer_t *t)
{
    struct node *n = t->data;

    if (n->stopping) {
        try_close(n);
        return;
    }
    node_members_tick(n);
    node_data_tick(n);
}

void node_stop(struct node *n, void (*cb)(void *data), void *data)
{
    n->stopping = 1;
    atomic_store(&n->stop_flag, 1);
    n->stop_cb = cb;
    n->stop_data = data;
    n->stop_deadline = clock_now_ns() + (uint64_t)STOP_WAIT_MS * NS_PER_MS;
    node_data_wake(n); /* answers every SEG_WAIT */
    node_rpc_stop(n);
    uv_timer_start(&n->tick, on_tick, 5, 5);
}

/* ---------------------------------------------------------------- starting */

int node_start(uv_loop_t *loop, const struct node_options *o, struct node **out,
               char *errmsg)
{
    struct node *n;
    char host[256], rhost[256];
    int port, rport = 0, rv;

    *out = NULL;
    if (o->id == 0)
        return errmsg_fail(errmsg, DLOG_EINVAL, "the node id must be >= 1");
    if (o->listen == NULL || net_parse_hostport(o->listen, host, sizeof host, &port) != 0)
        return errmsg_fail(errmsg, DLOG_EINVAL, "listen address: expected HOST:PORT");
    if (o->raft == NULL || strlen(o->raft) >= NODE_ADDR_MAX ||
        net_parse_hostport(o->raft, rhost, sizeof rhost, &rport) != 0 || rport <= 0 ||
        rhost[0] == '\0')
        return errmsg_fail(errmsg, DLOG_EINVAL,
                           "raft address: expected HOST:PORT with a real port");
    if (o->data == NULL || o->data[0] == '\0' || strlen(o->data) >= 4000)
        return errmsg_fail(errmsg, DLOG_EINVAL, "a data directory is required");
    if (o->join != NULL && strlen(o->join) >= sizeof n->join)
        return errmsg_fail(errmsg, DLOG_EINVAL, "--join: too long");
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return DLOG_ENOMEM;
    n->loop = loop;
    n->id = o->id;
    snprintf(n->raft_addr, sizeof n->raft_addr, "%s", o->raft);
    snprintf(n->dir, sizeof n->dir, "%s", o->data);
    snprintf(n->join, sizeof n->join, "%s", o->join != NULL ? o->join : "");
    snprintf(n->name, sizeof n->name, "%s",
             o->server_name != NULL ? o->server_name : "dlogd node");
    wire_limits_init(&n->lim);
    if (o->max_frame > 0)
        n->lim.max_frame = o->max_frame;
    atomic_init(&n->stop_flag, 0);
    if (mkdir_p(n->dir) != 0) {
        rv = errmsg_fail(errmsg, DLOG_EIO, "cannot create %s: %s", n->dir,
                         strerror(errno));
        goto err;
    }
    rv = meta_fsm_new(&n->fsm);
    if (rv != 0)
        goto err;
    meta_fsm_raft_init(&n->fsm_inner, n->fsm);
    n->fsm_adapter = n->fsm_inner;
    n->fsm_adapter.data = n;
    n->fsm_adapter.apply = logged_apply;
    n->fsm_adapter.snapshot = logged_snapshot;
    n->fsm_adapter.snapshot_finalize = logged_finalize;
    n->fsm_adapter.restore = logged_restore;
    rv = node_rpc_start(n, host, port, errmsg);
    if (rv != 0)
        goto err;
    snprintf(n->listen, sizeof n->listen, "%s:%d", host[0] ? host : "127.0.0.1", n->port);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    uv_async_init(loop, &n->data_async, node_data_notified); /* closed with tick */
    n->data_async.data = n;
    rv = open_raft(n, o, errmsg);
    if (rv == 0)
        rv = node_data_start(n, o, errmsg);
    if (rv != 0)
        goto err_raft;
    uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
    if (n->join[0] != '\0')
        node_join_start(n, n->join);
    log_info("node", "node %llu: raft %s, node calls on %s, data %s, %u data groups",
             (unsigned long long)n->id, n->raft_addr, n->listen, n->dir, n->ngroups);
    *out = n;
    return 0;

err_raft:
    /* What libraft opened closes on the loop: the caller runs it out. */
    node_rpc_stop(n);
    n->stopping = 1;
    if (n->rafts_open > 0) {
        n->rafts_open++; /* held until every close below has been started */
        if (n->raft_inited) {
            n->raft_closing = 1;
            raft_close(&n->raft, on_raft_closed);
        } else {
            if (n->io_inited)
                raft_uv_close(&n->io);
            if (n->transport_inited)
                raft_tcp_close(&n->transport);
        }
        node_data_close(n);
        node_raft_closed(n);
        return rv;
    }
    node_data_close(n);
    if (n->io_inited)
        raft_uv_close(&n->io);
    if (n->transport_inited)
        raft_tcp_close(&n->transport);
    uv_close((uv_handle_t *)&n->tick, on_tick_closed);
    return rv;
err:
    if (n->server != NULL)
        node_rpc_stop(n);
    meta_fsm_free(n->fsm);
    free(n);
    return rv;
}

int node_listen_port(const struct node *n)
{
    return n->port;
}
