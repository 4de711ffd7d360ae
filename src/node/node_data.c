/*
 * The data groups of a node (DESIGN.md, "Cluster mode"; docs/cluster.md,
 * "Data groups"): G Raft groups, each with the data FSM (data_fsm.h) as
 * its state machine, its own raft_uv directory (DATA/group-<g>/raft), its
 * FSM's LMDB (DATA/group-<g>/fsm) and its own Raft port.
 *
 * Ports. Group g of a node listens for Raft traffic on the port of the
 * node's metadata raft address + 1 + g (same host). The metadata group
 * records every member's raft address in its configuration, so any node
 * can name every member's data group addresses; the rule itself and G are
 * recorded in the metadata keys ("cluster/groups" = G, written by the
 * metadata leader).
 *
 * Membership. A node started with --bootstrap bootstraps every data group
 * (with --peers: the same members, at their ports + 1 + g); the others
 * start their groups empty. From then on the leader of each data group
 * makes its voters follow the metadata group's: on the tick it adds a
 * metadata voter missing from its configuration (raft_add, then
 * raft_assign to voter once libraft has caught its log up) and removes a
 * member that is no longer in the metadata group, one change at a time.
 *
 * Entries are framed like the metadata group's (node.c, node_frame):
 * libraft 0.15 needs entry payloads that are multiples of 8 bytes.
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
#include "node/data_cmd.h"
#include "node/log_policy.h"
#include "node/meta_cmd.h"
#include "node/node_int.h"

/* libraft keeps a group's log entries in memory from `trailing` before its
 * last snapshot; the snapshot threshold and trailing follow a byte budget
 * (node/log_policy.h), recomputed every LOG_POLICY_EVERY applied entries.
 * Snapshots are 64 bytes but each closes libraft's open log segment (a
 * stall of tens of ms), and so does a full segment. Segments stay at
 * libraft's 8 MiB: with 64 MiB ones a follower under sustained load fell
 * ever further behind (p99 rising to 1 s, docs/benchmarks.md), with 8 MiB
 * the same load held steady. A replica further behind than the trailing
 * entries has the contents fetched from a peer (node_xfer.c). */
#define DATA_LOG_MEMORY_MB  128
#define DATA_LOG_SEGMENT_MB 8
#define LOG_POLICY_EVERY    64
#define FRAME_HEAD          8
#define GROUPS_KEY          "cluster/groups"

int node_group_addr(const char *meta, unsigned g, char *buf, size_t size)
{
    const char *colon = strrchr(meta, ':');
    char *end;
    long port;

    if (colon == NULL)
        return DLOG_EINVAL;
    errno = 0;
    port = strtol(colon + 1, &end, 10);
    if (errno != 0 || *end != '\0' || port <= 0 || port + 1 + (long)g > 65535)
        return DLOG_EINVAL;
    if ((size_t)snprintf(buf, size, "%.*s:%ld", (int)(colon - meta), meta,
                         port + 1 + (long)g) >= size)
        return DLOG_EINVAL;
    return 0;
}

/* ---------------------------------------------------------------- the FSM */

/* Sets libraft's snapshot threshold and trailing from the byte budget. */
static void apply_log_policy(struct dgroup *dg)
{
    unsigned threshold, trailing;

    dg->since_policy = 0;
    log_policy_counts(dg->log_memory, dg->mean16, dg->n->id, &threshold, &trailing);
    if (!dg->fixed_threshold)
        raft_set_snapshot_threshold(&dg->raft, threshold);
    if (!dg->fixed_trailing)
        raft_set_snapshot_trailing(&dg->raft, trailing);
}

static int dg_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct dgroup *dg = rf->data;
    struct raft_buffer inner = {NULL, 0};
    uint64_t len = buf->len >= FRAME_HEAD ? get_u64be(buf->base) : UINT64_MAX;

    /* A torn frame gives the FSM an empty command, which it rejects the
     * same way on every replica (DLOG_EPROTO). */
    int rv;

    if (len <= buf->len - FRAME_HEAD) {
        inner.base = (uint8_t *)buf->base + FRAME_HEAD;
        inner.len = len;
    }
    rv = dg->fsm_inner.apply(&dg->fsm_inner, &inner, result);
    if (dg->log_memory > 0) {
        dg->mean16 = log_policy_mean16(dg->mean16, buf->len);
        if (++dg->since_policy >= LOG_POLICY_EVERY)
            apply_log_policy(dg);
    }
    if (rv == 0 && *result != NULL) {
        const struct data_fsm_result *res = *result;
        if ((res->op == DATA_CMD_APPEND || res->op == DATA_CMD_APPEND_ONCE) &&
            res->status == 0 && !res->skipped)
            node_groups_applied(dg, inner.len);
    }
    return rv;
}

static int dg_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n)
{
    struct dgroup *dg = rf->data;

    return dg->fsm_inner.snapshot(&dg->fsm_inner, bufs, n);
}

static int dg_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct dgroup *dg = rf->data;

    return dg->fsm_inner.restore(&dg->fsm_inner, buf);
}

/* The FSM's LMDB holds the commands up to index: called on its writer
 * thread (write-behind) or on the loop; the loop takes it in
 * node_data_notified. */
static void notify(void *arg, uint64_t index)
{
    struct dgroup *dg = arg;

    atomic_store(&dg->notified, index);
    uv_async_send(&dg->n->data_async);
}

void node_data_notified(uv_async_t *a)
{
    struct node *n = a->data;

    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dgroup *dg = &n->groups[g];
        uint64_t v = atomic_load(&dg->notified);
        if (v != 0)
            dg->applied = v;
    }
    node_data_wake(n);
}

/* ---------------------------------------------------------------- opening */

static int mkdirs(const char *base, unsigned g, const char *leaf, char *out, size_t size)
{
    snprintf(out, size, "%s/group-%u", base, g);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -1;
    snprintf(out, size, "%s/group-%u/%s", base, g, leaf);
    if (mkdir(out, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* The bootstrap configuration of group g: --peers at port + 1 + g, or
 * this node alone. */
static int bootstrap_conf(struct dgroup *dg, const char *peers,
                          struct raft_configuration *conf, char *errmsg)
{
    const char *p = peers;
    char addr[NODE_ADDR_MAX];

    raft_configuration_init(conf);
    if (peers == NULL || peers[0] == '\0')
        return raft_configuration_add(conf, dg->n->id, dg->raft_addr, RAFT_VOTER) == 0
                   ? 0
                   : errmsg_fail(errmsg, DLOG_ENOMEM, "out of memory");
    while (*p != '\0') {
        size_t len = strcspn(p, ",");
        char item[NODE_ADDR_MAX + 32], *at;
        unsigned long long id;

        if (len == 0 || len >= sizeof item)
            return errmsg_fail(errmsg, DLOG_EINVAL, "--peers: bad item");
        memcpy(item, p, len);
        item[len] = '\0';
        at = strchr(item, '@');
        id = strtoull(item, NULL, 10);
        if (at == NULL || id == 0 ||
            node_group_addr(at + 1, dg->g, addr, sizeof addr) != 0 ||
            raft_configuration_add(conf, id, addr, RAFT_VOTER) != 0)
            return errmsg_fail(errmsg, DLOG_EINVAL, "--peers: bad item '%s'", item);
        p += len;
        if (*p == ',')
            p++;
    }
    return 0;
}

static int open_group(struct node *n, struct dgroup *dg, const struct node_options *o,
                      char *errmsg)
{
    struct data_fsm_config cfg;
    struct data_fsm_state st;
    struct raft_configuration conf;
    char dir[4200];
    int rv;

    if (node_group_addr(n->raft_addr, dg->g, dg->raft_addr, sizeof dg->raft_addr) != 0)
        return errmsg_fail(errmsg, DLOG_EINVAL, "no raft port for data group %u", dg->g);
    if (mkdirs(n->dir, dg->g, "fsm", dir, sizeof dir) != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "cannot create %s: %s", dir,
                           strerror(errno));
    memset(&cfg, 0, sizeof cfg);
    cfg.version = DATA_FSM_CONFIG_VERSION;
    cfg.dir = dir;
    cfg.fetch = node_xfer_fetch; /* node_xfer.c */
    cfg.fetch_arg = dg;
    cfg.notify = notify;
    cfg.notify_arg = dg;
    cfg.write_behind = 1;
    rv = data_fsm_open(&cfg, &dg->fsm, errmsg);
    if (rv != 0)
        return rv;
    if (data_fsm_state(dg->fsm, &st) == 0)
        dg->applied = st.applied;
    data_fsm_raft_fsm(dg->fsm, &dg->fsm_inner);
    dg->fsm_adapter = dg->fsm_inner;
    dg->fsm_adapter.data = dg;
    dg->fsm_adapter.apply = dg_apply;
    dg->fsm_adapter.snapshot = dg_snapshot;
    dg->fsm_adapter.restore = dg_restore;

    if (mkdirs(n->dir, dg->g, "raft", dir, sizeof dir) != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "cannot create %s: %s", dir,
                           strerror(errno));
    rv = raft_tcp_init(&dg->transport, n->loop);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_tcp_init: %s", raft_strerror(rv));
    dg->transport_inited = 1;
    rv = raft_uv_init(&dg->io, n->loop, dir, &dg->transport.iface);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_uv_init(%s): %s", dir,
                           dg->io.errmsg[0] ? dg->io.errmsg : raft_strerror(rv));
    dg->io_inited = 1;
    /* Staggered like the snapshots (log_policy.h): replicas of a group fill
     * their segments at the same entries, and closing one stalls the loop. */
    size_t seg =
        (size_t)(o->data_log_segment_mb ? o->data_log_segment_mb : DATA_LOG_SEGMENT_MB)
        << 20;
    raft_uv_set_segment_size(&dg->io, seg + seg * (size_t)(n->id % 4) / 8);
    rv = raft_init(&dg->raft, &dg->io, &dg->fsm_adapter, n->id, dg->raft_addr);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "raft_init: %s", raft_errmsg(&dg->raft));
    dg->raft_inited = 1;
    n->rafts_open++;
    dg->raft.data = dg;
    data_fsm_raft_bind(dg->fsm, &dg->raft);
    raft_set_election_timeout(&dg->raft, o->election_ms ? o->election_ms : 1000);
    raft_set_heartbeat_timeout(&dg->raft, o->heartbeat_ms ? o->heartbeat_ms : 100);
    /* Explicit counts win over the budget; until entries are seen, the
     * budget is read as entries of 64 KiB (a low threshold that rises as
     * the mean comes in, rather than one that falls under the log's
     * length on every replica at the same index). */
    dg->log_memory =
        (uint64_t)(o->data_log_memory_mb ? o->data_log_memory_mb : DATA_LOG_MEMORY_MB)
        << 20;
    dg->fixed_threshold = o->data_snapshot_threshold != 0;
    dg->fixed_trailing = o->data_snapshot_trailing != 0;
    dg->mean16 = 65536 * 16;
    apply_log_policy(dg);
    if (dg->fixed_threshold)
        raft_set_snapshot_threshold(&dg->raft, o->data_snapshot_threshold);
    if (dg->fixed_trailing)
        raft_set_snapshot_trailing(&dg->raft, o->data_snapshot_trailing);
    if (dg->fixed_threshold && dg->fixed_trailing)
        dg->log_memory = 0; /* nothing left to adapt */
    raft_set_pre_vote(&dg->raft, true);
    if (o->bootstrap) {
        rv = bootstrap_conf(dg, o->peers, &conf, errmsg);
        if (rv == 0) {
            rv = raft_bootstrap(&dg->raft, &conf);
            if (rv == RAFT_CANTBOOTSTRAP) {
                rv = 0;
            } else if (rv != 0) {
                errmsg_printf(errmsg, "data group %u: raft_bootstrap: %s", dg->g,
                              raft_errmsg(&dg->raft));
                rv = DLOG_EIO;
            }
        }
        raft_configuration_close(&conf);
        if (rv != 0)
            return rv;
    }
    rv = raft_start(&dg->raft);
    if (rv != 0)
        return errmsg_fail(errmsg, DLOG_EIO, "data group %u: raft_start: %s", dg->g,
                           raft_errmsg(&dg->raft));
    return 0;
}

static void on_group_closed(struct raft *r)
{
    struct dgroup *dg = r->data;

    raft_uv_close(&dg->io);
    raft_tcp_close(&dg->transport);
    dg->raft_inited = dg->io_inited = dg->transport_inited = 0;
    node_raft_closed(dg->n);
}

int node_data_start(struct node *n, const struct node_options *o, char *errmsg)
{
    int rv;

    n->ngroups = o->groups > 0 ? o->groups : 1;
    if (n->ngroups > WIRE_MAX_GROUPS)
        return errmsg_fail(errmsg, DLOG_EINVAL, "--groups: at most %d", WIRE_MAX_GROUPS);
    n->groups = calloc(n->ngroups, sizeof *n->groups);
    if (n->groups == NULL)
        return DLOG_ENOMEM;
    for (unsigned g = 0; g < n->ngroups; g++) {
        n->groups[g].n = n;
        n->groups[g].g = g;
        atomic_init(&n->groups[g].xfer.finished, 0);
    }
    n->last_session = clock_wall_ms() << 12;
    for (unsigned g = 0; g < n->ngroups; g++) {
        rv = open_group(n, &n->groups[g], o, errmsg);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int node_data_quiet(struct node *n)
{
    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dgroup *dg = &n->groups[g];
        if (!dg->raft_inited || dg->raft_closing)
            continue;
        if (dg->inflight > 0 || dg->changing ||
            dg->raft.last_stored < raft_last_index(&dg->raft))
            return 0;
    }
    return 1;
}

void node_data_close(struct node *n)
{
    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dgroup *dg = &n->groups[g];
        if (dg->raft_inited && !dg->raft_closing) {
            dg->raft_closing = 1;
            raft_close(&dg->raft, on_group_closed);
        } else if (!dg->raft_inited) {
            /* opened partly: what libraft did not take is ours to close */
            if (dg->io_inited)
                raft_uv_close(&dg->io);
            if (dg->transport_inited)
                raft_tcp_close(&dg->transport);
            dg->io_inited = dg->transport_inited = 0;
        }
    }
}

void node_data_free(struct node *n)
{
    if (n->groups == NULL)
        return;
    node_xfer_close(n);
    for (unsigned g = 0; g < n->ngroups; g++)
        if (n->groups[g].fsm != NULL)
            data_fsm_close(n->groups[g].fsm);
    free(n->groups);
    n->groups = NULL;
}

/* ---------------------------------------------------------------- membership */

static void change_cb(struct raft_change *req, int status)
{
    struct dgroup *dg = req->data;

    dg->changing = 0;
    if (status != 0)
        log_warn("node", "node %llu, data group %u: membership change: %s",
                 (unsigned long long)dg->n->id, dg->g, raft_strerror(status));
}

static const struct raft_server *find(const struct raft_configuration *c, raft_id id)
{
    for (unsigned i = 0; i < c->n; i++)
        if (c->servers[i].id == id)
            return &c->servers[i];
    return NULL;
}

/* One step of making group dg's voters those of the metadata group. */
static void follow_meta(struct dgroup *dg)
{
    struct node *n = dg->n;
    const struct raft_configuration *meta = &n->raft.configuration,
                                    *cur = &dg->raft.configuration;
    char addr[NODE_ADDR_MAX];
    int rv = 0;

    if (raft_state(&dg->raft) != RAFT_LEADER || dg->changing || dg->transferring ||
        n->stopping || raft_last_applied(&dg->raft) < dg->raft.commit_index)
        return;
    dg->change.data = dg;
    for (unsigned i = 0; i < meta->n; i++) {
        const struct raft_server *m = &meta->servers[i], *s;
        if (m->role != RAFT_VOTER)
            continue;
        s = find(cur, m->id);
        if (s == NULL) {
            if (node_group_addr(m->address, dg->g, addr, sizeof addr) != 0)
                continue;
            log_info("node", "data group %u: adding node %llu at %s", dg->g,
                     (unsigned long long)m->id, addr);
            rv = raft_add(&dg->raft, &dg->change, m->id, addr, change_cb);
        } else if (s->role != RAFT_VOTER) {
            rv = raft_assign(&dg->raft, &dg->change, m->id, RAFT_VOTER, change_cb);
        } else {
            continue;
        }
        if (rv == 0)
            dg->changing = 1;
        return;
    }
    /* Members the metadata group no longer has (only once it has some). */
    for (unsigned i = 0; meta->n > 0 && i < cur->n; i++) {
        const struct raft_server *s = &cur->servers[i];
        if (find(meta, s->id) != NULL || s->id == n->id)
            continue;
        log_info("node", "data group %u: removing node %llu", dg->g,
                 (unsigned long long)s->id);
        if (raft_remove(&dg->raft, &dg->change, s->id, change_cb) == 0)
            dg->changing = 1;
        return;
    }
}

static void recorded(void *data, int status, const struct meta_fsm_result *res)
{
    (void)data;
    if (status != 0 || res->status != 0)
        log_debug("node", "recording %s: %s", GROUPS_KEY,
                  dlog_strerror(status != 0 ? status : res->status));
}

/* The metadata leader records G once (docs/cluster.md, "Data groups"). */
static void record_groups(struct node *n)
{
    char v[16];
    struct bytes cur, cmd;

    if (raft_state(&n->raft) != RAFT_LEADER || n->registering ||
        raft_last_applied(&n->raft) < n->raft.commit_index)
        return;
    bytes_init(&cur);
    if (meta_fsm_kv_get(n->fsm, GROUPS_KEY, &cur, NULL) == 0) {
        if (cur.len >= sizeof v ||
            (size_t)snprintf(v, sizeof v, "%u", n->ngroups) != cur.len ||
            memcmp(v, cur.p, cur.len) != 0)
            log_warn("node", "this node hosts %u data groups, the cluster records %.*s",
                     n->ngroups, (int)(cur.len < 16 ? cur.len : 16), (const char *)cur.p);
        bytes_free(&cur);
        n->groups_recorded = 1;
        return;
    }
    bytes_free(&cur);
    snprintf(v, sizeof v, "%u", n->ngroups);
    bytes_init(&cmd);
    if (meta_cmd_kv_put(&cmd, clock_wall_ms(), GROUPS_KEY, v, strlen(v),
                        META_KV_CREATE) != 0) {
        bytes_free(&cmd);
        return;
    }
    n->groups_recorded = 1; /* once: a failed proposal is retried at the next start */
    node_propose(n, &cmd, recorded, NULL);
}

void node_data_tick(struct node *n)
{
    if (n->stopping)
        return;
    if (!n->groups_recorded)
        record_groups(n);
    node_xfer_tick(n);
    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dgroup *dg = &n->groups[g];
        if (data_fsm_behind(dg->fsm))
            data_fsm_catch_up(dg->fsm);
        follow_meta(dg);
    }
    node_groups_tick(n);
    node_leaders_tick(n);
    node_data_wake(n);
}
