/*
 * test-data-fsm, cluster part: three replicas of a data group on
 * raft/fixture.h (in-memory I/O, simulated time, no sockets, no sleeps),
 * each with its own LMDB directory under one mkdtemp directory.
 *
 * Every replica's apply is wrapped to record each command's status by
 * Raft index, so the tests can check that every replica decided the same
 * (fencing included), besides comparing contents by digest.
 */
#include <raft.h>
#include <raft/fixture.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "data_fsm_util.h"

#define N_SERVERS 3
#define MAX_INDEX 4096
#define MAX_PROPS 1024
#define STEP_MS   60000 /* simulated time allowed for one wait */

struct server {
    char dir[96];
    struct data_fsm *fsm;
    struct raft_fsm rf;
    /* The status each command got here, by index (+1, so 0: not applied). */
    int status[MAX_INDEX];
    int applied;   /* commands applied (not skipped) */
    int fetches;   /* calls of the fetch hook */
    int fail;      /* fetch calls still to fail */
    uint64_t want; /* the index the last fetch was asked for */
};

struct prop {
    struct raft_apply req;
    int done;
    int status;
    struct data_fsm_result res;
};

struct cluster {
    struct raft_fixture f;
    char dir[64];
    struct server s[N_SERVERS];
    int (*apply)(struct raft_fsm *, const struct raft_buffer *, void **);
    struct prop props[MAX_PROPS];
    int nprops;
    int source; /* the replica fetch copies from */
};

/* Check forks each test; its fixture and replicas live here. */
static struct cluster *C;

static int server_of(struct raft_fsm *rf)
{
    for (int i = 0; i < N_SERVERS; i++)
        if (rf == &C->s[i].rf)
            return i;
    ck_abort_msg("unknown raft_fsm");
    return -1;
}

/* The adapter's apply, recording what it decided. */
static int recording_apply(struct raft_fsm *rf, const struct raft_buffer *buf,
                           void **result)
{
    struct server *s = &C->s[server_of(rf)];
    int rv = C->apply(rf, buf, result);

    if (rv == 0) {
        const struct data_fsm_result *r = *result;
        ck_assert_uint_lt(r->index, MAX_INDEX);
        if (!r->skipped) {
            ck_assert_int_eq(s->status[r->index], 0);
            s->status[r->index] = r->status + 1;
            s->applied++;
        }
    }
    return rv;
}

/* The out-of-band transfer, in-process: copy the source replica's LMDB. In
 * a node this goes over the network (see data_fsm_fetch_fn). */
static int fetch(void *arg, struct data_fsm *f, const struct data_fsm_state *want)
{
    struct server *s = arg;

    s->fetches++;
    s->want = want->applied;
    if (s->fail > 0) {
        s->fail--;
        return DLOG_EUNAVAILABLE;
    }
    return fsm_copy(C->s[C->source].fsm, f);
}

static void cluster_start(unsigned threshold, unsigned trailing)
{
    struct raft_configuration conf;

    C = calloc(1, sizeof *C);
    ck_assert_ptr_nonnull(C);
    tdir_make(C->dir, sizeof C->dir, "dlog-dfsm-cluster");
    ck_assert_int_eq(raft_fixture_initialize(&C->f), 0);
    for (int i = 0; i < N_SERVERS; i++) {
        struct server *s = &C->s[i];
        char name[8];
        snprintf(name, sizeof name, "r%d", i);
        tdir_sub(s->dir, sizeof s->dir, C->dir, name);
        s->fsm = fsm_open(s->dir, fetch, s);
        data_fsm_raft_fsm(s->fsm, &s->rf);
        C->apply = s->rf.apply;
        s->rf.apply = recording_apply;
        ck_assert_int_eq(raft_fixture_grow(&C->f, &s->rf), 0);
        struct raft *r = raft_fixture_get(&C->f, (unsigned)i);
        data_fsm_raft_bind(s->fsm, r);
        raft_set_snapshot_threshold(r, threshold);
        raft_set_snapshot_trailing(r, trailing);
    }
    ck_assert_int_eq(raft_fixture_configuration(&C->f, N_SERVERS, &conf), 0);
    ck_assert_int_eq(raft_fixture_bootstrap(&C->f, &conf), 0);
    raft_configuration_close(&conf);
    ck_assert_int_eq(raft_fixture_start(&C->f), 0);
}

static void cluster_stop(void)
{
    raft_fixture_close(&C->f);
    for (int i = 0; i < N_SERVERS; i++)
        data_fsm_close(C->s[i].fsm);
    tdir_remove(C->dir);
    free(C);
    C = NULL;
}

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct prop *p = req->data;

    p->done = 1;
    p->status = status;
    if (status == 0) {
        ck_assert_ptr_nonnull(result);
        p->res = *(const struct data_fsm_result *)result; /* valid only now */
    }
}

/* Proposes c on server i (which must lead); the entry's index is p->req.index. */
static struct prop *propose(unsigned i, const struct data_cmd *c)
{
    struct raft_buffer buf;
    struct prop *p;

    ck_assert_int_lt(C->nprops, MAX_PROPS);
    p = &C->props[C->nprops++];
    p->req.data = p;
    ck_assert_int_eq(data_cmd_encode(c, &buf), 0);
    ck_assert_int_eq(raft_apply(raft_fixture_get(&C->f, i), &p->req, &buf, 1, apply_cb),
                     0);
    return p;
}

static bool prop_done(struct raft_fixture *f, void *arg)
{
    (void)f;
    return ((struct prop *)arg)->done;
}

static void wait_done(struct prop *p)
{
    ck_assert_msg(raft_fixture_step_until(&C->f, prop_done, p, STEP_MS),
                  "proposal at %llu never completed", (unsigned long long)p->req.index);
}

/* Proposes on the leader and waits for its result there. */
static struct prop *run(unsigned leader, const struct data_cmd *c)
{
    struct prop *p = propose(leader, c);
    wait_done(p);
    ck_assert_int_eq(p->status, 0);
    ck_assert_uint_eq(p->res.index, p->req.index);
    return p;
}

static void wait_applied(unsigned i, raft_index index)
{
    ck_assert_msg(raft_fixture_step_until_applied(&C->f, i, index, STEP_MS),
                  "server %u never applied %llu (at %llu)", i, (unsigned long long)index,
                  (unsigned long long)raft_last_applied(raft_fixture_get(&C->f, i)));
}

/* Entries in the in-memory log of server i. */
static size_t log_entries(unsigned i)
{
    const struct raft_log *l = &raft_fixture_get(&C->f, i)->log;
    return l->back >= l->front ? l->back - l->front : l->size - l->front + l->back;
}

/* All replicas hold the same: state (index, digest, counts) and contents. */
static void assert_identical(void)
{
    struct data_fsm_state st0, st;
    uint32_t d0 = fsm_digest(C->s[0].fsm, &st0);

    for (int i = 1; i < N_SERVERS; i++) {
        uint32_t d = fsm_digest(C->s[i].fsm, &st);
        ck_assert_uint_eq(st.applied, st0.applied);
        ck_assert_uint_eq(st.hash, st0.hash);
        ck_assert_uint_eq(st.segments, st0.segments);
        ck_assert_uint_eq(st.entries, st0.entries);
        ck_assert_uint_eq(st.bytes, st0.bytes);
        ck_assert_uint_eq(d, d0);
    }
}

/* Every index applied on two replicas got the same status on both. */
static void assert_same_decisions(void)
{
    for (int x = 0; x < MAX_INDEX; x++)
        for (int i = 1; i < N_SERVERS; i++)
            if (C->s[0].status[x] != 0 && C->s[i].status[x] != 0)
                ck_assert_msg(C->s[0].status[x] == C->s[i].status[x],
                              "index %d: status %d on 0, %d on %d", x,
                              C->s[0].status[x] - 1, C->s[i].status[x] - 1, i);
}

/* An APPEND of n entries of one record each, txids from txid. */
static struct prop *run_append(unsigned leader, uint64_t epoch, uint64_t txid, int n)
{
    struct iovec e[16];
    struct data_cmd c;
    struct prop *p;

    ck_assert_int_le(n, 16);
    for (int k = 0; k < n; k++)
        e[k] = make_entry(txid + (uint64_t)k, 1, 0);
    c = cmd_append(1, 1, epoch, 0, e, (uint32_t)n);
    p = propose(leader, &c);
    free_entries(e, n);
    return p;
}

/* ------------------------------------------------------------ tests */

START_TEST(test_cluster_replicates)
{
    struct data_cmd c;
    struct prop *p = NULL;
    uint64_t txid = 1;

    cluster_start(1024, 128);
    raft_fixture_elect(&C->f, 0);
    ck_assert_uint_eq(raft_fixture_leader_index(&C->f), 0);

    c = cmd_open(1, 1, 1, 0, 1700000000000ULL);
    p = run(0, &c);
    ck_assert_int_eq(p->res.status, 0);
    ck_assert_int_eq(p->res.op, DATA_CMD_OPEN);

    /* 50 commands of 8 entries, a few in flight at a time. */
    for (int round = 0; round < 10; round++) {
        struct prop *batch[5];
        for (int k = 0; k < 5; k++) {
            batch[k] = run_append(0, 1, txid, 8);
            txid += 8;
        }
        for (int k = 0; k < 5; k++) {
            wait_done(batch[k]);
            ck_assert_int_eq(batch[k]->status, 0);
            ck_assert_int_eq(batch[k]->res.status, 0);
            ck_assert_uint_eq(batch[k]->res.first_entry, (uint64_t)(round * 5 + k) * 8);
        }
        p = batch[4];
    }
    ck_assert_uint_eq(p->res.info.next_entry, 400);
    ck_assert_uint_eq(p->res.info.last_txid, 400);
    wait_applied(N_SERVERS, p->req.index); /* all of them */
    assert_identical();
    assert_same_decisions();
    for (int i = 0; i < N_SERVERS; i++) {
        struct seg_info info;
        ck_assert_int_eq(C->s[i].applied, 51);
        ck_assert_int_eq(data_fsm_info(C->s[i].fsm, 1, 1, &info), 0);
        ck_assert_uint_eq(info.next_entry, 400);
        /* The stored applied index is libraft's. */
        struct data_fsm_state st;
        ck_assert_int_eq(test_fsm_state(C->s[i].fsm, &st), 0);
        ck_assert_uint_eq(st.applied, raft_last_applied(raft_fixture_get(&C->f, i)));
        ck_assert_int_eq(C->s[i].fetches, 0);
    }
    cluster_stop();
}
END_TEST

static bool new_leader(struct raft_fixture *f, void *arg)
{
    unsigned old = *(unsigned *)arg, l = raft_fixture_leader_index(f);
    return l < N_SERVERS && l != old;
}

static bool old_leader_caught_up(struct raft_fixture *f, void *arg)
{
    struct prop *p = arg;
    return p->done &&
           raft_last_applied(raft_fixture_get(f, 0)) >= C->props[C->nprops - 1].req.index;
}

/*
 * DistributedLog fencing across a leader change: the old leader, cut off,
 * still takes an append at epoch 1 that never commits; the new leader's
 * log fences the segment at epoch 2, and from then on every replica
 * refuses epoch 1 the same way.
 */
START_TEST(test_cluster_fencing_after_partition)
{
    struct data_cmd c;
    struct prop *p, *stale, *fenced, *late;
    unsigned old = 0, nl;
    uint64_t txid = 1;

    cluster_start(1024, 128);
    raft_fixture_elect(&C->f, 0);
    c = cmd_open(1, 1, 1, 0, 1700000000000ULL);
    run(0, &c);
    p = run_append(0, 1, txid, 4);
    txid += 4;
    wait_done(p);
    ck_assert_int_eq(p->res.status, 0);
    wait_applied(N_SERVERS, p->req.index);

    /* Cut the leader off; it still believes it leads for a while. (The
     * fixture counts a "disconnected" server against a new leader's
     * stability, a "saturated" link it does not.) */
    for (unsigned j = 1; j < N_SERVERS; j++) {
        raft_fixture_saturate(&C->f, 0, j);
        raft_fixture_saturate(&C->f, j, 0);
    }
    stale = run_append(0, 1, 1000, 2);
    ck_assert_uint_eq(raft_last_index(raft_fixture_get(&C->f, 0)), stale->req.index);
    ck_assert_msg(raft_fixture_step_until(&C->f, new_leader, &old, STEP_MS),
                  "no new leader");
    nl = raft_fixture_leader_index(&C->f);
    ck_assert_uint_ne(nl, 0);
    ck_assert(!stale->done || stale->status != 0);

    /* The new writer fences epoch 1, appends at 2; epoch 1 is refused. */
    c = cmd_simple(DATA_CMD_FENCE, 1, 1, 2);
    p = run(nl, &c);
    ck_assert_int_eq(p->res.status, 0);
    ck_assert_uint_eq(p->res.info.fence_epoch, 2);
    p = run_append(nl, 2, txid, 3);
    txid += 3;
    wait_done(p);
    ck_assert_int_eq(p->res.status, 0);
    ck_assert_uint_eq(p->res.first_entry, 4);
    fenced = run_append(nl, 1, txid, 1);
    wait_done(fenced);
    ck_assert_int_eq(fenced->res.status, DLOG_EFENCED);
    c = cmd_simple(DATA_CMD_SEAL, 1, 1, 1);
    p = run(nl, &c);
    ck_assert_int_eq(p->res.status, DLOG_EFENCED);

    /* Heal: the old leader steps down, loses its uncommitted append, and
     * applies the new leader's log, refusals included. */
    for (unsigned j = 1; j < N_SERVERS; j++) {
        raft_fixture_desaturate(&C->f, 0, j);
        raft_fixture_desaturate(&C->f, j, 0);
    }
    late = run_append(nl, 1, txid, 1); /* an old writer, after the heal */
    wait_done(late);
    ck_assert_int_eq(late->res.status, DLOG_EFENCED);
    ck_assert_msg(raft_fixture_step_until(&C->f, old_leader_caught_up, stale, STEP_MS),
                  "the old leader never caught up");
    ck_assert_int_ne(stale->status, 0); /* RAFT_LEADERSHIPLOST: never acknowledged */
    wait_applied(N_SERVERS, late->req.index);

    assert_identical();
    assert_same_decisions();
    for (int i = 0; i < N_SERVERS; i++) {
        struct server *s = &C->s[i];
        struct seg_info info;
        ck_assert_int_eq(s->status[fenced->req.index], DLOG_EFENCED + 1);
        ck_assert_int_eq(s->status[late->req.index], DLOG_EFENCED + 1);
        ck_assert_int_eq(data_fsm_info(s->fsm, 1, 1, &info), 0);
        ck_assert_uint_eq(info.fence_epoch, 2);
        ck_assert_int_eq(info.sealed, 0);
        /* 4 entries at epoch 1, then 3 at epoch 2; the stale append is nowhere. */
        ck_assert_uint_eq(info.next_entry, 7);
        ck_assert_uint_eq(info.last_txid, 7);
    }
    cluster_stop();
}
END_TEST

static bool leader_applied(struct raft_fixture *f, void *arg)
{
    return raft_last_applied(raft_fixture_get(f, 0)) >= *(raft_index *)arg;
}

/*
 * A follower misses many commands while the leader takes a snapshot every
 * few of them, so the log it needs is gone: libraft sends it a snapshot,
 * which holds no data; the restore path fetches the contents out of band
 * and the replica ends identical. All the while libraft's in-memory logs
 * stay short.
 *
 * With failures, the fetch fails at the restore, at an explicit
 * data_fsm_catch_up and at the applies of the next commands: the replica
 * stays behind, applies nothing, stays in service (a failing apply must not
 * make libraft 0.15 take it out), and catches up at the next attempt.
 */
static void snapshot_install(int failures)
{
    enum { THRESHOLD = 16, TRAILING = 4, COMMANDS = 240, IN_FLIGHT = 8 };
    struct data_cmd c;
    struct prop *p = NULL;
    struct data_fsm_state st;
    struct server *s2;
    uint64_t txid = 1, before;
    size_t longest = 0;
    int commands = COMMANDS;

    cluster_start(THRESHOLD, TRAILING);
    s2 = &C->s[2];
    raft_fixture_elect(&C->f, 0);
    C->source = 0;
    c = cmd_open(1, 1, 1, 0, 1700000000000ULL);
    p = run(0, &c);
    wait_applied(N_SERVERS, p->req.index);
    before = raft_last_applied(raft_fixture_get(&C->f, 2));

    raft_fixture_kill(&C->f, 2);
    s2->fail = failures;
    for (int k = 0; k < COMMANDS; k += IN_FLIGHT) {
        struct prop *batch[IN_FLIGHT];
        for (int j = 0; j < IN_FLIGHT; j++) {
            batch[j] = run_append(0, 1, txid, 4);
            txid += 4;
        }
        for (int j = 0; j < IN_FLIGHT; j++) {
            wait_done(batch[j]);
            ck_assert_int_eq(batch[j]->res.status, 0);
        }
        p = batch[IN_FLIGHT - 1];
        for (unsigned i = 0; i < 2; i++)
            longest = log_entries(i) > longest ? log_entries(i) : longest;
    }
    wait_applied(1, p->req.index);
    ck_assert_int_eq(s2->applied, 1);

    /* Snapshots were taken, and the leader no longer has what 2 needs. */
    struct raft *leader = raft_fixture_get(&C->f, 0);
    ck_assert_uint_gt(leader->log.snapshot.last_index, before + TRAILING);
    ck_assert_uint_gt(raft_fixture_get(&C->f, 1)->log.snapshot.last_index, 0);

    raft_fixture_revive(&C->f, 2);
    wait_applied(2, p->req.index);
    ck_assert_uint_ge(raft_fixture_get(&C->f, 2)->log.snapshot.last_index, p->req.index);
    ck_assert_int_eq(s2->fetches, 1);
    ck_assert_uint_gt(s2->want, before);
    if (failures > 0) {
        /* libraft believes it applied; the FSM knows it did not. */
        ck_assert_int_eq(data_fsm_behind(s2->fsm), 1);
        ck_assert_int_eq(test_fsm_state(s2->fsm, &st), 0);
        ck_assert_uint_lt(st.applied, p->req.index);
        ck_assert_int_eq(data_fsm_catch_up(s2->fsm), DLOG_EUNAVAILABLE);
        ck_assert_int_eq(s2->fetches, 2);
        /* The next commands reach 2, whose applies fail (the rest of the
         * failures): the commit index of the second comes with a heartbeat,
         * the path where libraft 0.15 takes a follower out of service for
         * any apply error but RAFT_NOCONNECTION. */
        for (int k = 0; k < 8 && s2->fetches < failures; k++) {
            p = run_append(0, 1, txid, 4);
            txid += 4;
            commands++;
            wait_done(p);
            raft_index x = p->req.index;
            ck_assert(raft_fixture_step_until(&C->f, leader_applied, &x, STEP_MS));
            raft_fixture_step_until_elapsed(&C->f, 1000); /* heartbeats come and go */
        }
        ck_assert_int_eq(s2->fetches, failures);
        ck_assert_int_eq(data_fsm_behind(s2->fsm), 1);
        ck_assert_int_eq(raft_state(raft_fixture_get(&C->f, 2)), RAFT_FOLLOWER);
        ck_assert_uint_lt(raft_last_applied(raft_fixture_get(&C->f, 2)), p->req.index);
        /* The node's timer: catch up. */
        ck_assert_int_eq(data_fsm_catch_up(s2->fsm), 0);
    }
    ck_assert_int_eq(s2->fetches, 1 + failures);
    ck_assert_int_eq(data_fsm_behind(s2->fsm), 0);
    ck_assert_int_eq(data_fsm_catch_up(s2->fsm), 0);
    ck_assert_int_eq(s2->fetches, 1 + failures);
    /* Still in service, never RAFT_UNAVAILABLE. */
    ck_assert_int_eq(raft_state(raft_fixture_get(&C->f, 2)), RAFT_FOLLOWER);
    /* It applied nothing the fetch brought (only the OPEN before). */
    ck_assert_int_eq(s2->applied, 1);
    ck_assert_int_eq(C->s[0].fetches + C->s[1].fetches, 0);

    /* More commands reach all three the usual way. */
    p = run_append(0, 1, txid, 4);
    wait_done(p);
    wait_applied(N_SERVERS, p->req.index);
    ck_assert_int_eq(s2->applied, 2);
    assert_identical();
    assert_same_decisions();
    struct seg_info info;
    ck_assert_int_eq(data_fsm_info(s2->fsm, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, (uint64_t)(commands + 1) * 4);
    ck_assert_int_eq(test_fsm_state(s2->fsm, &st), 0);
    ck_assert_uint_eq(st.applied, raft_last_applied(raft_fixture_get(&C->f, 2)));

    /* Memory: the in-memory logs stayed near threshold + trailing. */
    for (unsigned i = 0; i < N_SERVERS; i++)
        longest = log_entries(i) > longest ? log_entries(i) : longest;
    ck_assert_uint_le(longest, THRESHOLD + TRAILING + IN_FLIGHT + 2);
    cluster_stop();
}

START_TEST(test_cluster_snapshot_install)
{
    snapshot_install(0);
}
END_TEST

START_TEST(test_cluster_snapshot_install_fetch_fails)
{
    snapshot_install(4);
}
END_TEST

/* The same commands, lower snapshot threshold: the log is short on every
 * replica and snapshots are taken; nothing needs fetching. */
START_TEST(test_cluster_log_stays_short)
{
    enum { THRESHOLD = 8, TRAILING = 2 };
    struct data_cmd c;
    struct prop *p;
    size_t longest = 0;

    cluster_start(THRESHOLD, TRAILING);
    raft_fixture_elect(&C->f, 0);
    c = cmd_open(1, 1, 1, 0, 0);
    run(0, &c);
    for (int k = 0; k < 200; k++) {
        p = run_append(0, 1, (uint64_t)k * 2 + 1, 2);
        wait_done(p);
        ck_assert_int_eq(p->res.status, 0);
        for (unsigned i = 0; i < N_SERVERS; i++)
            longest = log_entries(i) > longest ? log_entries(i) : longest;
    }
    wait_applied(N_SERVERS, p->req.index);
    for (unsigned i = 0; i < N_SERVERS; i++) {
        struct raft *r = raft_fixture_get(&C->f, i);
        ck_assert_uint_gt(r->log.snapshot.last_index, p->req.index - 2 * THRESHOLD);
        ck_assert_int_eq(C->s[i].fetches, 0);
    }
    ck_assert_uint_le(longest, THRESHOLD + TRAILING + 2);
    assert_identical();
    cluster_stop();
}
END_TEST

Suite *data_fsm_cluster_suite(void)
{
    Suite *s = suite_create("data_fsm_cluster");
    TCase *t = tcase_create("fixture");

    tcase_add_test(t, test_cluster_replicates);
    tcase_add_test(t, test_cluster_fencing_after_partition);
    tcase_add_test(t, test_cluster_snapshot_install);
    tcase_add_test(t, test_cluster_snapshot_install_fetch_fails);
    tcase_add_test(t, test_cluster_log_stays_short);
    suite_add_tcase(s, t);
    return s;
}
