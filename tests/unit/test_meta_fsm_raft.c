/*
 * Deterministic cluster tests of the metadata FSM on libraft's fixture
 * (raft/fixture.h): three servers in one process, simulated time, network
 * and disks, each server running its own struct meta_fsm through the
 * adapter of meta_fsm_raft.c. No sockets, no sleeps.
 *
 * Each server's FSM is wrapped by a checking FSM that, at every applied
 * index on every replica:
 * - records the first replica's result for the index and requires every
 *   other replica to get the very same one (status, versions, revision,
 *   lease holder and expiry, message);
 * - checks the lease invariant: a lease goes to another owner only if the
 *   previous holder's lease has expired at the command's now_ms, so no two
 *   owners ever hold the same unexpired lease;
 * - counts commands whose key starts with "stale/" (proposed on a leader
 *   cut off from the others: none may ever be applied).
 * At the end of each test all replicas must hold byte-identical snapshots.
 */
#include <check.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/fixture.h>

#include "meta_fsm_util.h"

#define N         3
#define MAX_INDEX 4096
#define WAIT_MS   20000

struct cluster;

/* What the first replica to apply an index got. */
struct applied {
    int set;
    struct meta_fsm_result res;
};

struct server {
    struct cluster *cl;
    unsigned i;
    struct meta_fsm *fsm;
    struct raft_fsm inner; /* meta_fsm_raft_init's */
    struct raft_fsm outer; /* the checking wrapper given to raft */
    unsigned snapshots, restores;
};

struct cluster {
    struct raft_fixture f;
    struct server s[N];
    struct applied *log; /* by raft index */
    uint64_t skew[N];    /* each server's clock ahead of the fixture's */
    unsigned stale_applied;
    unsigned grants, takeovers, renewals; /* lease acquisitions, first replica */
};

/* A proposal and its outcome, as the leader's raft_apply callback saw it. */
struct prop {
    struct raft_apply req;
    bool done;
    int status;
    struct meta_fsm_result res;
};

/* ------------------------------------------------------ checking FSM */

/* The lease stored at a command's key before it is applied. */
struct lease_seen {
    bool lease;
    char owner[META_LEASE_OWNER_MAX + 1];
    uint64_t expiry;
};

static void lease_read(struct meta_fsm *fsm, const struct meta_cmd_slice *key,
                       struct lease_seen *seen)
{
    char k[META_KEY_MAX + 1];
    struct bytes v;

    memset(seen, 0, sizeof *seen);
    if (key->len == 0 || key->len > META_KEY_MAX)
        return;
    memcpy(k, key->p, key->len);
    k[key->len] = '\0';
    bytes_init(&v);
    if (meta_fsm_kv_get(fsm, k, &v, NULL) == 0)
        seen->lease = meta_fsm_lease_decode(v.p, v.len, seen->owner, &seen->expiry) == 0;
    bytes_free(&v);
}

static bool slice_is(const struct meta_cmd_slice *s, const char *str)
{
    return s->len == strlen(str) && memcmp(s->p, str, s->len) == 0;
}

/* The lease invariant for one applied LEASE_ACQUIRE. */
static void check_acquire(struct cluster *cl, bool first, const struct meta_cmd *cmd,
                          const struct lease_seen *before,
                          const struct meta_fsm_result *res)
{
    if (res->status != 0) {
        /* Refused only while someone else holds it (or it is no lease). */
        if (res->status == DLOG_ECONFLICT && before->lease) {
            ck_assert(!slice_is(&cmd->owner, before->owner));
            ck_assert_uint_gt(before->expiry, cmd->now_ms);
        }
        return;
    }
    ck_assert(slice_is(&cmd->owner, res->holder));
    ck_assert_uint_eq(res->expiry_ms, cmd->now_ms + cmd->ttl_ms);
    if (before->lease && !slice_is(&cmd->owner, before->owner))
        ck_assert_msg(before->expiry <= cmd->now_ms,
                      "lease granted to %s at %llu while %s holds it until %llu",
                      res->holder, (unsigned long long)cmd->now_ms, before->owner,
                      (unsigned long long)before->expiry);
    if (first) {
        cl->grants++;
        if (before->lease && slice_is(&cmd->owner, before->owner))
            cl->renewals++;
        else if (before->lease)
            cl->takeovers++;
    }
}

/* Every replica gets at index what the first one got. */
static bool record(struct cluster *cl, raft_index index,
                   const struct meta_fsm_result *res)
{
    struct applied *a;

    ck_assert_uint_lt(index, MAX_INDEX);
    a = &cl->log[index];
    if (!a->set) {
        a->set = 1;
        a->res = *res;
        return true;
    }
    ck_assert_int_eq(a->res.status, res->status);
    ck_assert_int_eq(a->res.type, res->type);
    ck_assert_uint_eq(a->res.revision, res->revision);
    ck_assert_uint_eq(a->res.version, res->version);
    ck_assert_uint_eq(a->res.stream_id, res->stream_id);
    ck_assert_uint_eq(a->res.expiry_ms, res->expiry_ms);
    ck_assert_str_eq(a->res.holder, res->holder);
    ck_assert_str_eq(a->res.errmsg, res->errmsg);
    return false;
}

static int outer_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct server *sv = rf->data;
    struct cluster *cl = sv->cl;
    /* libraft applies entry last_applied + 1 and only then moves last_applied. */
    raft_index index = raft_last_applied(raft_fixture_get(&cl->f, sv->i)) + 1;
    struct lease_seen before = {0};
    struct meta_cmd cmd;
    bool decoded, first;
    int rv;

    decoded = meta_cmd_decode(buf->base, buf->len, &cmd) == 0;
    if (decoded && cmd.type == META_CMD_LEASE_ACQUIRE)
        lease_read(sv->fsm, &cmd.key, &before);
    rv = sv->inner.apply(&sv->inner, buf, result);
    if (rv != 0)
        return rv;
    first = record(cl, index, *result);
    if (decoded && cmd.type == META_CMD_LEASE_ACQUIRE)
        check_acquire(cl, first, &cmd, &before, *result);
    if (decoded && cmd.key.len >= 6 && memcmp(cmd.key.p, "stale/", 6) == 0)
        cl->stale_applied++;
    return 0;
}

static int outer_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n)
{
    struct server *sv = rf->data;

    sv->snapshots++;
    return sv->inner.snapshot(&sv->inner, bufs, n);
}

static int outer_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n)
{
    struct server *sv = rf->data;

    return sv->inner.snapshot_finalize(&sv->inner, bufs, n);
}

static int outer_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct server *sv = rf->data;
    int rv = sv->inner.restore(&sv->inner, buf);

    if (rv == 0)
        sv->restores++;
    return rv;
}

/* ----------------------------------------------------------- cluster */

/* Three servers, bootstrapped and started, server 0 elected. threshold 0
 * keeps libraft's default snapshot threshold. */
static struct cluster *cl_start(unsigned threshold, unsigned trailing)
{
    struct cluster *cl = calloc(1, sizeof *cl);
    struct raft_configuration conf;

    ck_assert_ptr_nonnull(cl);
    cl->log = calloc(MAX_INDEX, sizeof *cl->log);
    ck_assert_ptr_nonnull(cl->log);
    ck_assert_int_eq(raft_fixture_initialize(&cl->f), 0);
    for (unsigned i = 0; i < N; i++) {
        struct server *sv = &cl->s[i];

        sv->cl = cl;
        sv->i = i;
        ck_assert_int_eq(meta_fsm_new(&sv->fsm), 0);
        meta_fsm_raft_init(&sv->inner, sv->fsm);
        sv->outer = sv->inner;
        sv->outer.data = sv;
        sv->outer.apply = outer_apply;
        sv->outer.snapshot = outer_snapshot;
        sv->outer.snapshot_finalize = outer_finalize;
        sv->outer.restore = outer_restore;
        ck_assert_int_eq(raft_fixture_grow(&cl->f, &sv->outer), 0);
    }
    ck_assert_int_eq(raft_fixture_configuration(&cl->f, N, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&cl->f, &conf), 0);
    raft_configuration_close(&conf);
    for (unsigned i = 0; threshold > 0 && i < N; i++) {
        raft_set_snapshot_threshold(raft_fixture_get(&cl->f, i), threshold);
        raft_set_snapshot_trailing(raft_fixture_get(&cl->f, i), trailing);
    }
    ck_assert_int_eq(raft_fixture_start(&cl->f), 0);
    raft_fixture_elect(&cl->f, 0);
    return cl;
}

static void cl_close(struct cluster *cl)
{
    /* The FSMs outlive the raft instances: closing flushes pending snapshot
     * writes, which end in snapshot_finalize. */
    raft_fixture_close(&cl->f);
    for (unsigned i = 0; i < N; i++)
        meta_fsm_free(cl->s[i].fsm);
    free(cl->log);
    free(cl);
}

static struct raft *srv(struct cluster *cl, unsigned i)
{
    return raft_fixture_get(&cl->f, i);
}

static unsigned leader(struct cluster *cl)
{
    unsigned l = raft_fixture_leader_index(&cl->f);

    ck_assert_uint_lt(l, N);
    return l;
}

/* The leader's wall clock, for stamping a command it proposes. */
static uint64_t now_on(struct cluster *cl, unsigned i)
{
    return raft_fixture_time(&cl->f) + cl->skew[i];
}

static void prop_cb(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;

    p->done = true;
    p->status = status;
    if (status == 0)
        p->res = *(const struct meta_fsm_result *)result;
}

/* Proposes the command in *cmd on server i (emptying *cmd); 0 or a RAFT_* code. */
static int propose(struct cluster *cl, unsigned i, struct bytes *cmd, struct prop *p)
{
    struct raft_buffer buf;
    int rv;

    memset(p, 0, sizeof *p);
    p->req.data = p;
    ck_assert_int_eq(meta_fsm_raft_buffer(cmd->p, cmd->len, &buf), 0);
    bytes_reset(cmd);
    rv = raft_apply(srv(cl, i), &p->req, &buf, 1, prop_cb);
    if (rv != 0)
        raft_free(buf.base);
    return rv;
}

static bool prop_done(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct prop *)arg)->done;
}

/* Proposes on the leader, steps until it is applied there, returns the result. */
static struct meta_fsm_result run(struct cluster *cl, struct bytes *cmd)
{
    struct prop p;

    ck_assert_int_eq(propose(cl, leader(cl), cmd, &p), 0);
    ck_assert(raft_fixture_step_until(&cl->f, prop_done, &p, WAIT_MS));
    ck_assert_int_eq(p.status, 0);
    return p.res;
}

/* Steps until every server applied all the leader applied; then all the
 * replicas must hold identical state. */
static void converge(struct cluster *cl)
{
    raft_index idx;

    ck_assert(raft_fixture_step_until_has_leader(&cl->f, WAIT_MS));
    idx = raft_last_applied(srv(cl, leader(cl)));
    ck_assert(raft_fixture_step_until_applied(&cl->f, N, idx, WAIT_MS));
    for (unsigned i = 1; i < N; i++)
        ck_assert_msg(util_same_state(cl->s[0].fsm, cl->s[i].fsm),
                      "server %u differs from server 0", i);
    for (unsigned i = 0; i < N; i++)
        ck_assert_uint_eq(meta_fsm_revision(cl->s[i].fsm),
                          meta_fsm_revision(cl->s[0].fsm));
}

/*
 * Cuts server i off from the others, both ways (cut), or heals it. Messages
 * are dropped silently ("saturated" links) rather than failing to send
 * ("disconnected"): the fixture's leader detection only leaves saturated
 * servers out, so with disconnected ones it would never see a stable new
 * leader while the old one is cut off.
 */
static void isolate(struct cluster *cl, unsigned i, bool cut)
{
    for (unsigned j = 0; j < N; j++) {
        if (j == i)
            continue;
        if (cut) {
            raft_fixture_saturate(&cl->f, i, j);
            raft_fixture_saturate(&cl->f, j, i);
        } else {
            raft_fixture_desaturate(&cl->f, i, j);
            raft_fixture_desaturate(&cl->f, j, i);
        }
    }
}

struct not_leader {
    unsigned old;
};

/* A server other than arg->old leads. */
static bool other_leads(struct raft_fixture *f, void *arg)
{
    unsigned old = ((struct not_leader *)arg)->old;

    for (unsigned i = 0; i < N; i++)
        if (i != old && raft_state(raft_fixture_get(f, i)) == RAFT_LEADER)
            return true;
    return false;
}

/* Isolates the leader until another server leads, then heals the network;
 * returns the new leader. The old one's uncommitted entries are dropped. */
static unsigned change_leader(struct cluster *cl)
{
    struct not_leader arg = {leader(cl)};
    unsigned l;

    isolate(cl, arg.old, true);
    ck_assert(raft_fixture_step_until(&cl->f, other_leads, &arg, WAIT_MS));
    isolate(cl, arg.old, false);
    ck_assert(raft_fixture_step_until_has_leader(&cl->f, WAIT_MS));
    l = leader(cl);
    ck_assert_uint_ne(l, arg.old);
    return l;
}

/* ------------------------------------------------------ command makers */

static struct meta_fsm_result c_create(struct cluster *cl, const char *name)
{
    struct meta_stream s;
    struct bytes b;
    struct meta_fsm_result r;

    util_stream_init(&s, name);
    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_stream_create(&b, now_on(cl, leader(cl)), &s), 0);
    r = run(cl, &b);
    bytes_free(&b);
    return r;
}

static struct meta_fsm_result c_put(struct cluster *cl, const char *key,
                                    const char *value, uint64_t version)
{
    struct bytes b;
    struct meta_fsm_result r;

    bytes_init(&b);
    ck_assert_int_eq(
        meta_cmd_kv_put(&b, now_on(cl, leader(cl)), key, value, strlen(value), version),
        0);
    r = run(cl, &b);
    bytes_free(&b);
    return r;
}

static struct meta_fsm_result c_acquire(struct cluster *cl, const char *key,
                                        const char *owner, uint64_t ttl)
{
    struct bytes b;
    struct meta_fsm_result r;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_lease_acquire(&b, now_on(cl, leader(cl)), key, owner, ttl),
                     0);
    r = run(cl, &b);
    bytes_free(&b);
    return r;
}

static struct meta_fsm_result c_release(struct cluster *cl, const char *key,
                                        const char *owner)
{
    struct bytes b;
    struct meta_fsm_result r;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_lease_release(&b, now_on(cl, leader(cl)), key, owner), 0);
    r = run(cl, &b);
    bytes_free(&b);
    return r;
}

/* n puts of distinct keys "<prefix><i>". */
static void c_puts(struct cluster *cl, const char *prefix, unsigned n)
{
    char key[64];

    for (unsigned i = 0; i < n; i++) {
        snprintf(key, sizeof key, "%s%u", prefix, i);
        ck_assert_int_eq(c_put(cl, key, key, META_KV_ANY).status, 0);
    }
}

/* --------------------------------------------------------------- tests */

START_TEST(test_cluster_replicates)
{
    struct cluster *cl = cl_start(0, 0);
    struct meta_fsm_result r;
    struct meta_stream s;
    struct bytes b;

    bytes_init(&b);
    ck_assert_uint_eq(c_create(cl, "orders").stream_id, 1);
    ck_assert_uint_eq(c_create(cl, "audit").stream_id, 2);
    ck_assert_int_eq(c_create(cl, "orders").status, DLOG_EEXIST);

    ck_assert_int_eq(meta_fsm_get(cl->s[leader(cl)].fsm, "orders", &s), 0);
    s.epoch = 3;
    ck_assert_int_eq(meta_cmd_stream_update(&b, now_on(cl, 0), &s), 0);
    ck_assert_uint_eq(run(cl, &b).version, 2);
    ck_assert_int_eq(meta_cmd_stream_update(&b, now_on(cl, 0), &s), 0);
    ck_assert_int_eq(run(cl, &b).status, DLOG_ECONFLICT);
    meta_stream_clear(&s);

    ck_assert_uint_eq(c_put(cl, "ns/limits", "a", META_KV_CREATE).version, 1);
    ck_assert_int_eq(c_put(cl, "ns/limits", "b", META_KV_CREATE).status, DLOG_ECONFLICT);
    ck_assert_uint_eq(c_put(cl, "ns/limits", "c", 1).version, 2);
    r = c_acquire(cl, "lease/coord", "proxy-1", 5000);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(c_acquire(cl, "lease/coord", "proxy-2", 5000).status,
                     DLOG_ECONFLICT);
    ck_assert_int_eq(meta_cmd_stream_remove(&b, now_on(cl, 0), "audit", 1), 0);
    ck_assert_int_eq(run(cl, &b).status, 0);

    converge(cl);
    /* Replicated for real: a follower has the update and the keys. */
    ck_assert_int_eq(meta_fsm_get(cl->s[2].fsm, "orders", &s), 0);
    ck_assert_uint_eq(s.epoch, 3);
    ck_assert_uint_eq(s.version, 2);
    meta_stream_clear(&s);
    ck_assert_int_eq(meta_fsm_get(cl->s[1].fsm, "audit", &s), DLOG_ENOTFOUND);
    ck_assert_uint_eq(meta_fsm_revision(cl->s[2].fsm), 7);
    ck_assert_uint_eq(cl->grants, 1);
    bytes_free(&b);
    cl_close(cl);
}
END_TEST

START_TEST(test_cluster_partition)
{
    struct cluster *cl = cl_start(0, 0);
    struct not_leader arg = {0};
    struct prop stale[3];
    struct bytes b, v;
    unsigned nl;
    char key[32];

    bytes_init(&b);
    c_puts(cl, "before/", 3);
    converge(cl);

    /* The leader, cut off, still takes proposals it can never commit. */
    isolate(cl, 0, true);
    for (unsigned i = 0; i < 3; i++) {
        snprintf(key, sizeof key, "stale/%u", i);
        ck_assert_int_eq(meta_cmd_kv_put(&b, now_on(cl, 0), key, "x", 1, META_KV_ANY), 0);
        ck_assert_int_eq(propose(cl, 0, &b, &stale[i]), 0);
    }
    ck_assert(raft_fixture_step_until(&cl->f, other_leads, &arg, WAIT_MS));
    ck_assert(raft_fixture_step_until_has_leader(&cl->f, WAIT_MS));
    nl = leader(cl);
    ck_assert_uint_ne(nl, 0);

    /* The majority moves on without it. */
    c_puts(cl, "after/", 4);
    ck_assert_int_eq(c_acquire(cl, "lease/coord", "proxy-2", 100000).status, 0);
    ck_assert_uint_lt(raft_last_applied(srv(cl, 0)), raft_last_applied(srv(cl, nl)));

    isolate(cl, 0, false);
    converge(cl);
    for (unsigned i = 0; i < 3; i++) {
        ck_assert(raft_fixture_step_until(&cl->f, prop_done, &stale[i], WAIT_MS));
        ck_assert_int_ne(stale[i].status, 0);
    }
    ck_assert_uint_eq(cl->stale_applied, 0);
    bytes_init(&v);
    for (unsigned i = 0; i < N; i++) {
        ck_assert_int_eq(meta_fsm_kv_get(cl->s[i].fsm, "stale/0", &v, NULL),
                         DLOG_ENOTFOUND);
        ck_assert_int_eq(meta_fsm_kv_get(cl->s[i].fsm, "after/3", &v, NULL), 0);
    }
    /* The healed server applies new commands too. */
    c_puts(cl, "healed/", 2);
    converge(cl);
    ck_assert_int_eq(meta_fsm_kv_get(cl->s[0].fsm, "healed/1", &v, NULL), 0);
    bytes_free(&v);
    bytes_free(&b);
    cl_close(cl);
}
END_TEST

START_TEST(test_cluster_follower_restart)
{
    struct cluster *cl = cl_start(0, 0);

    c_puts(cl, "a/", 5);
    converge(cl);
    raft_fixture_kill(&cl->f, 2);
    c_puts(cl, "b/", 20);
    ck_assert(raft_fixture_step_until_applied(&cl->f, 1, raft_last_applied(srv(cl, 0)),
                                              WAIT_MS));
    ck_assert_uint_lt(raft_last_applied(srv(cl, 2)), raft_last_applied(srv(cl, 0)));
    ck_assert(!util_same_state(cl->s[0].fsm, cl->s[2].fsm));
    ck_assert(util_same_state(cl->s[0].fsm, cl->s[1].fsm));

    raft_fixture_revive(&cl->f, 2);
    converge(cl);
    ck_assert_uint_eq(cl->s[2].restores, 0); /* caught up from the log */
    ck_assert_uint_eq(meta_fsm_revision(cl->s[2].fsm), 25);
    cl_close(cl);
}
END_TEST

START_TEST(test_cluster_snapshot_install)
{
    struct cluster *cl = cl_start(8, 4);

    c_puts(cl, "a/", 5);
    converge(cl);
    raft_fixture_kill(&cl->f, 2);
    c_puts(cl, "b/", 60);
    ck_assert_uint_ge(cl->s[0].snapshots, 3);
    ck_assert_uint_eq(cl->s[2].restores, 0);

    raft_fixture_revive(&cl->f, 2);
    converge(cl);
    /* The leader's log no longer reached back far enough: server 2 got a
     * snapshot, and its state is the others'. */
    ck_assert_uint_ge(cl->s[2].restores, 1);
    ck_assert_uint_eq(meta_fsm_revision(cl->s[2].fsm), 65);

    /* Normal replication resumes after the install. */
    c_puts(cl, "c/", 10);
    ck_assert_int_eq(c_create(cl, "s").status, 0);
    converge(cl);
    ck_assert_uint_eq(meta_fsm_revision(cl->s[2].fsm), 76);
    cl_close(cl);
}
END_TEST

/* A deterministic generator for the lease workload. */
static uint64_t lrnd_state;
static unsigned lrnd(unsigned n)
{
    lrnd_state = lrnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((lrnd_state >> 33) % n);
}

START_TEST(test_cluster_leases)
{
    static const char *const owners[] = {"proxy-1", "proxy-2", "proxy-3"};
    static const char *const keys[] = {"lease/coord", "lease/rl"};
    struct cluster *cl = cl_start(16, 8);
    unsigned conflicts = 0, releases = 0;

    /* The servers' clocks disagree; only the proposing leader's counts. */
    cl->skew[1] = 120;
    cl->skew[2] = 35;
    lrnd_state = 7;
    for (unsigned step = 0; step < 200; step++) {
        const char *owner = owners[lrnd(3)];
        const char *key = keys[lrnd(2)];
        struct meta_fsm_result r;

        if (step == 70 || step == 140)
            change_leader(cl);
        if (lrnd(5) == 0) {
            r = c_release(cl, key, owner);
            releases += r.status == 0;
        } else {
            r = c_acquire(cl, key, owner, 200);
            conflicts += r.status == DLOG_ECONFLICT;
        }
        ck_assert(r.status == 0 || r.status == DLOG_ECONFLICT ||
                  r.status == DLOG_ENOTFOUND);
        raft_fixture_step_until_elapsed(&cl->f, lrnd(150));
    }
    converge(cl);
    /* Every rule got exercised. */
    ck_assert_uint_gt(conflicts, 0);
    ck_assert_uint_gt(releases, 0);
    ck_assert_uint_gt(cl->takeovers, 0);
    ck_assert_uint_gt(cl->renewals, 0);
    ck_assert_uint_gt(cl->s[0].snapshots + cl->s[1].snapshots + cl->s[2].snapshots, 0);
    cl_close(cl);
}
END_TEST

Suite *meta_fsm_raft_suite(void)
{
    Suite *s = suite_create("meta_fsm_raft");
    TCase *tc = tcase_create("cluster");

    tcase_add_test(tc, test_cluster_replicates);
    tcase_add_test(tc, test_cluster_partition);
    tcase_add_test(tc, test_cluster_follower_restart);
    tcase_add_test(tc, test_cluster_snapshot_install);
    tcase_add_test(tc, test_cluster_leases);
    suite_add_tcase(s, tc);
    return s;
}
