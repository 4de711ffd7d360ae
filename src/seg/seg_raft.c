/*
 * The segment store of cluster mode: dlog_seg_ops by the data groups' node
 * calls (wire_msgs.h, "data node calls"; docs/cluster.md), over blocking
 * clients of net/rpc.h, which follow leader redirects and retry other
 * nodes until their deadline, so a leader change shows as latency.
 *
 * Placement (DESIGN.md, "Placement"; seg/place.h): place() picks the
 * group of a new segment by the load the nodes report (CLUSTER_GROUPS:
 * bytes/s of appends applied per group, and segments stored), asked at
 * most once per PLACE_REFRESH_MS; between two asks each choice counts one
 * more segment on its group, so a burst of rolls spreads. The core records
 * the token (group + 1) in the segment's metadata and hands it back with
 * locate() whenever it loads the stream; this store keeps the tokens in a
 * map (seg/seg_where.h) and sends each call to its segment's group. A
 * segment without a token (written by an older version) lives on data
 * group (stream id mod G), the old rule. G is learnt from the nodes (a
 * SEG_WAIT reply lists every group).
 *
 * Consistency: every reply carries a Raft index of its group (a write's
 * own, or the answering replica's applied index); reads and INFO send the
 * highest one seen, so a lagging replica redirects them to the leader and
 * a caller reads its own writes.
 *
 * Tailing: notify_seq is a counter of this store, bumped whenever it sees
 * a group's index move; notify_wait long-polls a node with SEG_WAIT for
 * any group to apply past what this store has seen. A spurious wake-up
 * costs the caller one read, a missed one cannot happen: the counter moves
 * with the indices, under one lock.
 *
 * Appends are applied once. Each carries the calling thread's writer id (a
 * random number drawn once per thread) and the thread's next append
 * sequence; the data group's FSM answers a repeat of a writer's last append
 * with the first one's results (data_fsm.h). So when the connection fails
 * after an append was sent (the leader crashed), or the leader answers
 * that it lost leadership before the outcome was known (DLOG_ETIMEDOUT),
 * the same append is sent again, to the new leader, until APPEND_RETRY_MS
 * have passed; only then does the call return DLOG_ETIMEDOUT, outcome
 * unknown. A thread makes one call at a time, so its appends are
 * sequential, as the FSM's once-only rule needs.
 *
 * Threads: every call is synchronous and thread-safe; each takes a client
 * from a small per-group pool, so calls on different threads run at once.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "net/rpc.h"
#include "seg/place.h"
#include "seg/seg.h"
#include "seg/seg_where.h"

#define POOL_MAX         8
#define READ_MAX_BYTES   (8u << 20)
#define WAIT_SLACK_MS    3000  /* the RPC deadline beyond a wait's own */
#define APPEND_RETRY_MS  15000 /* resending an append of unknown outcome */
#define PLACE_REFRESH_MS 1000  /* how old the loads placement uses may be */
#define PLACE_ASK_MS     2000  /* the deadline of asking for them */
/* An append is one Raft entry, which libraft keeps in memory and sends in
 * one message: heartbeats queue behind it, so an entry that takes longer
 * than an election timeout to reach the followers costs the group its
 * leader, again and again. Larger appends (a record of more than about
 * this size) are refused. */
#define APPEND_MAX_BYTES (16u << 20)

struct pool {
    struct net_rpc *idle[POOL_MAX];
    int n;
};

struct seg_raft {
    struct dlog_seg_ops ops;
    char *addrs;
    unsigned ngroups;
    pthread_mutex_t mu;
    struct pool *pools; /* ngroups + 1 (the last for waits) */
    uint64_t *seen;     /* per group: the highest index seen */
    uint32_t counter;
    struct seg_where where;    /* located segments (under mu) */
    struct place_group *loads; /* per group, as last asked (under mu) */
    uint64_t loads_at_ns;      /* when last asked; 0: never */
    pthread_mutex_t place_mu;  /* one ask for loads at a time */
};

static struct seg_raft *impl(struct dlog_seg_ops *s)
{
    return s->impl;
}

static struct net_rpc *take(struct seg_raft *r, unsigned pool, char *errmsg)
{
    struct net_rpc *c = NULL;

    pthread_mutex_lock(&r->mu);
    if (r->pools[pool].n > 0)
        c = r->pools[pool].idle[--r->pools[pool].n];
    pthread_mutex_unlock(&r->mu);
    if (c == NULL &&
        net_rpc_open(r->addrs, "libdlog seg_raft " PACKAGE_VERSION, &c, errmsg) != 0)
        return NULL;
    return c;
}

static void give(struct seg_raft *r, unsigned pool, struct net_rpc *c)
{
    pthread_mutex_lock(&r->mu);
    if (r->pools[pool].n < POOL_MAX) {
        r->pools[pool].idle[r->pools[pool].n++] = c;
        c = NULL;
    }
    pthread_mutex_unlock(&r->mu);
    net_rpc_close(c);
}

/* Records that group g reached index; bumps the counter when it moved. */
static void saw(struct seg_raft *r, unsigned g, uint64_t index)
{
    pthread_mutex_lock(&r->mu);
    if (g < r->ngroups && index > r->seen[g]) {
        r->seen[g] = index;
        r->counter++;
    }
    pthread_mutex_unlock(&r->mu);
}

static uint64_t seen(struct seg_raft *r, unsigned g)
{
    uint64_t v;

    pthread_mutex_lock(&r->mu);
    v = r->seen[g];
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* The group of segment (stream, seq) into *g: its located token, else
 * the old rule. 0, or DLOG_ECORRUPT for a token naming a group the
 * cluster does not have. */
static int group_of(struct seg_raft *r, uint64_t stream, uint64_t seq, unsigned *g)
{
    uint32_t token;

    pthread_mutex_lock(&r->mu);
    token = seg_where_get(&r->where, stream, seq);
    pthread_mutex_unlock(&r->mu);
    if (token == 0) {
        *g = (unsigned)(stream % r->ngroups);
        return 0;
    }
    if (token > r->ngroups)
        return errmsg_fail(r->ops.errmsg, DLOG_ECORRUPT,
                           "segment %llu/%llu is placed on data group %u, the cluster "
                           "has %u",
                           (unsigned long long)stream, (unsigned long long)seq, token - 1,
                           r->ngroups);
    *g = token - 1;
    return 0;
}

/*
 * One call on pool `pool`. 0 with *rep to free, or the error (the
 * server's status too, with rep freed and its words in errmsg).
 */
static int call(struct seg_raft *r, unsigned pool, struct wire_msg *req, int idempotent,
                unsigned timeout_ms, struct net_rpc_reply *rep)
{
    char *errmsg = r->ops.errmsg;
    struct net_rpc *c = take(r, pool, errmsg);
    int rv;

    if (c == NULL)
        return DLOG_ENOMEM;
    net_rpc_set_timeout(c, timeout_ms ? timeout_ms : NET_RPC_TIMEOUT_MS);
    rv = net_rpc_call(c, req, idempotent ? NET_RPC_IDEMPOTENT : 0, rep, errmsg);
    give(r, pool, c);
    if (rv != 0)
        return rv;
    rv = rep->msg.status;
    if (rv != 0) {
        errmsg_copy(errmsg,
                    rep->msg.err.message ? rep->msg.err.message : dlog_strerror(rv));
        net_rpc_reply_free(rep);
    }
    return rv;
}

static void req_init(struct wire_msg *m, uint32_t type, unsigned g, uint64_t stream,
                     uint64_t seq)
{
    memset(m, 0, sizeof *m);
    m->type = type;
    m->u.seg.group = g;
    m->u.seg.stream = stream;
    m->u.seg.seq = seq;
}

static void info_of(const struct wire_seg_info *w, struct seg_info *i)
{
    i->fence_epoch = w->fence_epoch;
    i->sealed = (int)w->sealed;
    i->next_entry = w->next_entry;
    i->records = w->records;
    i->bytes = w->bytes;
    i->first_txid = w->first_txid;
    i->last_txid = w->last_txid;
    i->created_ms = w->created_ms;
    i->last_rec_entry = w->last_rec_entry;
    i->last_rec_slot = w->last_rec_slot;
}

/* A write; *out gets the reply's body. idempotent: safe to send again. */
static int write_call(struct seg_raft *r, struct wire_msg *q, int idempotent,
                      struct wire_seg_rep *out)
{
    struct net_rpc_reply rep;
    unsigned g = q->u.seg.group;
    int rv = call(r, g, q, idempotent, 0, &rep);

    if (rv != 0)
        return rv;
    saw(r, g, rep.msg.u.seg_rep.applied);
    if (out != NULL)
        *out = rep.msg.u.seg_rep;
    net_rpc_reply_free(&rep);
    return 0;
}

/* ---------------------------------------------------------------- ops */

/* OPEN is a no-op on an existing segment, FENCE only raises, SEAL and
 * REMOVE are idempotent: these may be sent again after a lost reply. */
static int op_open(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                   uint64_t start_txid)
{
    struct seg_raft *r = impl(s);
    struct wire_msg q;
    unsigned g;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_OPEN, g, stream, seq);
    q.u.seg.epoch = epoch;
    q.u.seg.start_txid = start_txid;
    return write_call(r, &q, 1, NULL);
}

/* This thread's appender id: random, non-zero, drawn at its first append. */
static _Thread_local uint64_t tl_writer, tl_append_seq;

static uint64_t thread_writer(void)
{
    while (tl_writer == 0) {
        uint64_t v = 0;
        if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
            v = clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
        tl_writer = v;
    }
    return tl_writer;
}

static int op_append(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                     struct seg_append *a)
{
    struct seg_raft *r = impl(s);
    struct wire_msg q;
    struct wire_seg_rep rep;
    uint64_t deadline = clock_deadline_ms(APPEND_RETRY_MS);
    unsigned g;
    int rv;

    if (a->n < 1)
        return errmsg_fail(s->errmsg, DLOG_EINVAL, "append: no entries");
    size_t total = 0;
    for (int i = 0; i < a->n; i++)
        total += a->entries[i].iov_len;
    if (total > APPEND_MAX_BYTES)
        return errmsg_fail(
            s->errmsg, DLOG_ETOOBIG,
            "append of %zu bytes: cluster mode takes at most %u MiB in one "
            "append (one record, with its framing)",
            total, APPEND_MAX_BYTES >> 20);
    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_APPEND, g, stream, seq);
    q.u.seg.epoch = a->epoch;
    q.u.seg.flags = a->flags;
    q.u.seg.entries = a->entries;
    q.u.seg.n = (size_t)a->n;
    q.u.seg.writer = thread_writer();
    q.u.seg.append_seq = ++tl_append_seq;
    /* Safe to send again: a repeat gets the first attempt's results. */
    do
        rv = write_call(r, &q, 1, &rep);
    while (rv == DLOG_ETIMEDOUT && clock_ms_left(deadline) > 0);
    if (rv == DLOG_ETIMEDOUT)
        errmsg_wrapf(s->errmsg, "append to data group %u: outcome unknown", g);
    if (rv != 0)
        return rv;
    a->first_entry = rep.first_entry;
    a->first_txid = rep.first_txid;
    info_of(&rep.info, &a->info);
    return 0;
}

static int op_read(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t from,
                   size_t max_bytes, seg_visit_fn visit, void *arg)
{
    struct seg_raft *r = impl(s);
    struct net_rpc_reply rep;
    struct wire_msg q;
    unsigned g;
    size_t i;
    int rv;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_READ, g, stream, seq);
    q.u.seg.from = from;
    q.u.seg.max_bytes = max_bytes == 0               ? 1
                        : max_bytes < READ_MAX_BYTES ? max_bytes
                                                     : READ_MAX_BYTES;
    q.u.seg.min_applied = seen(r, g);
    rv = call(r, g, &q, 1, 0, &rep);
    if (rv != 0)
        return rv;
    saw(r, g, rep.msg.u.seg_read_rep.applied);
    for (i = 0; i < rep.msg.u.seg_read_rep.n; i++) {
        const struct wire_seg_entry *e = &rep.msg.u.seg_read_rep.entries[i];
        if (visit(arg, e->id, e->p, e->len) != 0) {
            i++;
            break;
        }
    }
    net_rpc_reply_free(&rep);
    return (int)i;
}

static int op_info(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                   struct seg_info *out)
{
    struct seg_raft *r = impl(s);
    struct net_rpc_reply rep;
    struct wire_msg q;
    unsigned g;
    int rv;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_INFO, g, stream, seq);
    q.u.seg.min_applied = seen(r, g);
    rv = call(r, g, &q, 1, 0, &rep);
    if (rv != 0)
        return rv;
    saw(r, g, rep.msg.u.seg_rep.applied);
    info_of(&rep.msg.u.seg_rep.info, out);
    net_rpc_reply_free(&rep);
    return 0;
}

static int op_fence(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch)
{
    struct seg_raft *r = impl(s);
    struct wire_msg q;
    unsigned g;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_FENCE, g, stream, seq);
    q.u.seg.epoch = epoch;
    return write_call(r, &q, 1, NULL);
}

static int op_seal(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                   struct seg_info *out)
{
    struct seg_raft *r = impl(s);
    struct wire_msg q;
    struct wire_seg_rep rep;
    unsigned g;
    int rv;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_SEAL, g, stream, seq);
    q.u.seg.epoch = epoch;
    rv = write_call(r, &q, 1, &rep);
    if (rv == 0 && out != NULL)
        info_of(&rep.info, out);
    return rv;
}

static int op_remove(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq)
{
    struct seg_raft *r = impl(s);
    struct wire_msg q;
    unsigned g;
    int rv;

    if (group_of(r, stream, seq, &g) != 0)
        return DLOG_ECORRUPT;
    req_init(&q, WIRE_SEG_REMOVE, g, stream, seq);
    rv = write_call(r, &q, 1, NULL);
    if (rv == 0) { /* gone for good: forget where it was */
        pthread_mutex_lock(&r->mu);
        seg_where_put(&r->where, stream, seq, 0);
        pthread_mutex_unlock(&r->mu);
    }
    return rv;
}

/* ---------------------------------------------------------------- placement */

/* Asks a node for every group's load into r->loads; 0 or an error. */
static int ask_loads(struct seg_raft *r)
{
    struct net_rpc_reply rep;
    struct wire_msg q;
    struct place_group *fresh;
    int rv;

    memset(&q, 0, sizeof q);
    q.type = WIRE_CLUSTER_GROUPS;
    rv = call(r, r->ngroups, &q, 1, PLACE_ASK_MS, &rep);
    if (rv != 0)
        return rv;
    fresh = calloc(r->ngroups, sizeof *fresh);
    if (fresh == NULL) {
        net_rpc_reply_free(&rep);
        return DLOG_ENOMEM;
    }
    for (size_t i = 0; i < rep.msg.u.cluster_groups_rep.ngroups; i++) {
        const struct wire_group_status *w = &rep.msg.u.cluster_groups_rep.groups[i];
        if (w->group >= r->ngroups)
            continue;
        fresh[w->group] =
            (struct place_group){w->load_bps, w->segments, w->leader_id != 0};
    }
    net_rpc_reply_free(&rep);
    pthread_mutex_lock(&r->mu);
    free(r->loads);
    r->loads = fresh;
    pthread_mutex_unlock(&r->mu);
    return 0;
}

static uint32_t op_place(struct dlog_seg_ops *s, uint64_t stream)
{
    struct seg_raft *r = impl(s);
    uint64_t now = clock_now_ns();
    uint32_t token = 0;
    int stale, g;

    (void)stream;
    pthread_mutex_lock(&r->place_mu);
    pthread_mutex_lock(&r->mu);
    stale = r->loads_at_ns == 0 || now - r->loads_at_ns >= PLACE_REFRESH_MS * NS_PER_MS;
    if (stale) /* asked, whatever the outcome: a failure is not retried at once */
        r->loads_at_ns = now ? now : 1;
    pthread_mutex_unlock(&r->mu);
    if (stale)
        ask_loads(r); /* on failure the older loads, if any, serve */
    pthread_mutex_lock(&r->mu);
    if (r->loads != NULL) {
        g = place_choose(r->loads, r->ngroups, PLACE_LOAD_STEP);
        if (g >= 0) {
            r->loads[g].segments++; /* until the next ask */
            token = (uint32_t)g + 1;
        }
    }
    pthread_mutex_unlock(&r->mu);
    pthread_mutex_unlock(&r->place_mu);
    return token; /* 0 (the old rule) when nothing is known */
}

static int op_locate(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                     uint32_t token)
{
    struct seg_raft *r = impl(s);
    int rv;

    pthread_mutex_lock(&r->mu);
    rv = seg_where_put(&r->where, stream, seq, token);
    pthread_mutex_unlock(&r->mu);
    if (rv != 0)
        errmsg_printf(s->errmsg, "out of memory locating segment %llu/%llu",
                      (unsigned long long)stream, (unsigned long long)seq);
    return rv;
}

static uint32_t op_notify_seq(struct dlog_seg_ops *s)
{
    struct seg_raft *r = impl(s);
    uint32_t v;

    pthread_mutex_lock(&r->mu);
    v = r->counter;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/* SEG_WAIT with the indices seen; 0 with the nodes' indices noted. */
static int wait_call(struct seg_raft *r, uint64_t *applied, unsigned timeout_ms)
{
    struct net_rpc_reply rep;
    struct wire_msg q;
    int rv;

    memset(&q, 0, sizeof q);
    q.type = WIRE_SEG_WAIT;
    q.u.seg_wait = (struct wire_seg_wait){applied, r->ngroups, timeout_ms};
    rv = call(r, r->ngroups, &q, 1, timeout_ms + WAIT_SLACK_MS, &rep);
    if (rv != 0)
        return rv;
    for (size_t g = 0; g < rep.msg.u.seg_wait_rep.n && g < r->ngroups; g++)
        saw(r, (unsigned)g, rep.msg.u.seg_wait_rep.applied[g]);
    net_rpc_reply_free(&rep);
    return 0;
}

static int op_notify_wait(struct dlog_seg_ops *s, uint32_t seen_counter, int timeout_ms)
{
    struct seg_raft *r = impl(s);
    uint64_t applied[WIRE_MAX_GROUPS];
    int changed, rv;

    pthread_mutex_lock(&r->mu);
    changed = r->counter != seen_counter;
    memcpy(applied, r->seen, r->ngroups * sizeof *applied);
    pthread_mutex_unlock(&r->mu);
    if (changed)
        return 0;
    if (timeout_ms < 0 || timeout_ms > WIRE_MAX_WAIT_MS)
        timeout_ms = WIRE_MAX_WAIT_MS;
    rv = wait_call(r, applied, (unsigned)timeout_ms);
    if (rv != 0)
        return rv == DLOG_EUNAVAILABLE ? DLOG_ETIMEDOUT : rv;
    return op_notify_seq(s) != seen_counter ? 0 : DLOG_ETIMEDOUT;
}

static void op_close(struct dlog_seg_ops *s)
{
    struct seg_raft *r = impl(s);

    for (unsigned p = 0; r->pools != NULL && p <= r->ngroups; p++)
        for (int i = 0; i < r->pools[p].n; i++)
            net_rpc_close(r->pools[p].idle[i]);
    free(r->pools);
    free(r->seen);
    free(r->addrs);
    free(r->loads);
    seg_where_free(&r->where);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->place_mu);
    free(r);
}

int seg_raft_open(const char *addrs, struct dlog_seg_ops **out, char *errmsg)
{
    struct seg_raft *r = calloc(1, sizeof *r);
    struct net_rpc_reply rep;
    struct net_rpc *c = NULL;
    struct wire_msg q;
    uint64_t zero = 0;
    int rv;

    *out = NULL;
    if (r == NULL)
        return DLOG_ENOMEM;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->place_mu, NULL);
    r->ops.impl = r;
    r->addrs = strdup(addrs);
    if (r->addrs == NULL) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    /* How many groups: a SEG_WAIT that returns at once lists them. */
    rv = net_rpc_open(addrs, "libdlog seg_raft " PACKAGE_VERSION, &c, errmsg);
    if (rv != 0)
        goto err;
    memset(&q, 0, sizeof q);
    q.type = WIRE_SEG_WAIT;
    q.u.seg_wait = (struct wire_seg_wait){&zero, 1, 0};
    rv = net_rpc_call(c, &q, NET_RPC_IDEMPOTENT, &rep, errmsg);
    if (rv == 0) {
        rv = rep.msg.status;
        if (rv != 0)
            errmsg_printf(errmsg, "cannot learn the data groups: %s",
                          rep.msg.err.message ? rep.msg.err.message : dlog_strerror(rv));
        else if (rep.msg.u.seg_wait_rep.n == 0)
            rv = errmsg_fail(errmsg, DLOG_EPROTO, "the nodes host no data group");
        else
            r->ngroups = (unsigned)rep.msg.u.seg_wait_rep.n;
        net_rpc_reply_free(&rep);
    }
    if (rv != 0)
        goto err;
    r->pools = calloc(r->ngroups + 1, sizeof *r->pools);
    r->seen = calloc(r->ngroups, sizeof *r->seen);
    if (r->pools == NULL || r->seen == NULL) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    r->pools[0].idle[r->pools[0].n++] = c;
    r->ops.version = SEG_OPS_VERSION;
    r->ops.impl = r;
    r->ops.open = op_open;
    r->ops.append = op_append;
    r->ops.read = op_read;
    r->ops.info = op_info;
    r->ops.fence = op_fence;
    r->ops.seal = op_seal;
    r->ops.remove = op_remove;
    r->ops.notify_seq = op_notify_seq;
    r->ops.notify_wait = op_notify_wait;
    r->ops.close = op_close;
    r->ops.place = op_place;
    r->ops.locate = op_locate;
    *out = &r->ops;
    return 0;
err:
    net_rpc_close(c);
    r->ngroups = 0;
    op_close(&r->ops);
    return rv;
}
