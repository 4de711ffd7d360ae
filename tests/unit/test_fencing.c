/*
 * Fencing (DESIGN.md invariant 4): once a new exclusive writer has opened a
 * stream, no append from an older epoch is acknowledged, and a fenced
 * writer's records are never readable.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

static void setup(struct core_env *e, char *name, const char *tag, uint64_t seg_records)
{
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    if (seg_records != 0)
        cfg.segment_max_records = seg_records;
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, &cfg);
}

static int write_str(struct dlog_writer *w, const char *s)
{
    return core_write1(w, s, strlen(s), 0, NULL);
}

/* Reads the whole stream as strings joined by ','. */
static void read_joined(struct dlog_ns *ns, const char *name, char *out, size_t size)
{
    struct dlog_reader *r = core_reader(ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, 0, 10000, &recs, &n);
    ck_assert_msg(rv >= 0, "read: %s", dlog_errname(rv));
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%.*s", i > 0 ? "," : "", (int)recs[i].len,
                 (const char *)recs[i].payload);
    }
    core_recs_free(recs, n);
    dlog_reader_close(r);
}

static int flag_set(void *arg)
{
    return __atomic_load_n((int *)arg, __ATOMIC_ACQUIRE);
}

static void flag_cb(struct dlog_write_req *req, int status)
{
    req->status = status;
    __atomic_store_n((int *)req->data, 1, __ATOMIC_RELEASE);
}

START_TEST(test_exclusive_fences_older)
{
    struct core_env e;
    char name[128], all[256];
    setup(&e, name, "fence", 0);
    struct dlog_writer *w1 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t e1 = dlog_writer_epoch(w1);
    CORE_ASSERT_OK(write_str(w1, "a1"));
    CORE_ASSERT_OK(write_str(w1, "a2"));

    struct dlog_writer *w2 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t e2 = dlog_writer_epoch(w2);
    ck_assert_uint_gt(e2, e1);
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->epoch, e2);
    dlog_stream_info_free(info);

    /* The old writer is fenced, blocking or async, and stays fenced. */
    CORE_ASSERT_ERR(write_str(w1, "b1"), DLOG_EFENCED);
    ck_assert_str_ne(dlog_writer_errmsg(w1), "");
    struct dlog_write_req req;
    struct dlog_record rec = {.payload = "b2", .len = 2};
    int done = 0;
    memset(&req, 0, sizeof req);
    req.data = &done;
    int rv = dlog_write(w1, &req, &rec, 1, flag_cb);
    if (rv == 0) {
        dlog_writer_flush(w1);
        ck_assert_msg(core_wait_until(flag_set, &done, 5000), "callback never ran");
        rv = req.status;
    }
    CORE_ASSERT_ERR(rv, DLOG_EFENCED);
    CORE_ASSERT_OK(write_str(w2, "c1"));
    CORE_ASSERT_ERR(write_str(w1, "b3"), DLOG_EFENCED);
    CORE_ASSERT_OK(write_str(w2, "c2"));
    ck_assert_uint_eq(dlog_writer_epoch(w1), e1);

    read_joined(e.ns, name, all, sizeof all);
    ck_assert_str_eq(all, "a1,a2,c1,c2");
    dlog_writer_close(w1); /* may report DLOG_EFENCED */
    CORE_ASSERT_OK(dlog_writer_close(w2));

    /* A third exclusive writer fences the second. */
    struct dlog_writer *w3 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    ck_assert_uint_gt(dlog_writer_epoch(w3), e2);
    CORE_ASSERT_OK(write_str(w3, "d1"));
    CORE_ASSERT_OK(dlog_writer_close(w3));
    read_joined(e.ns, name, all, sizeof all);
    ck_assert_str_eq(all, "a1,a2,c1,c2,d1");
    core_env_close(&e);
}
END_TEST

START_TEST(test_shared_writer_fenced)
{
    struct core_env e;
    char name[128], all[256];
    setup(&e, name, "fenceshared", 0);
    struct dlog_writer *s1 = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    CORE_ASSERT_OK(write_str(s1, "s1"));
    struct dlog_writer *x = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    ck_assert_uint_gt(dlog_writer_epoch(x), dlog_writer_epoch(s1));
    CORE_ASSERT_ERR(write_str(s1, "s1-late"), DLOG_EFENCED);
    CORE_ASSERT_OK(write_str(x, "x1"));
    /* A shared writer opened now writes at the new epoch. */
    struct dlog_writer *s2 = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    ck_assert_uint_eq(dlog_writer_epoch(s2), dlog_writer_epoch(x));
    CORE_ASSERT_OK(write_str(s2, "s2"));
    read_joined(e.ns, name, all, sizeof all);
    ck_assert_str_eq(all, "s1,x1,s2");
    dlog_writer_close(s1);
    CORE_ASSERT_OK(dlog_writer_close(s2));
    CORE_ASSERT_OK(dlog_writer_close(x));
    core_env_close(&e);
}
END_TEST

START_TEST(test_fence_across_segments)
{
    /* The old writer's open segment is sealed or fenced: the new writer goes on past it.
     */
    struct core_env e;
    char name[128];
    struct dlog_dlsn a[5], c[5];
    setup(&e, name, "fenceseg", 3);
    struct dlog_writer *w1 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    core_write_sync_n(w1, 5, 20, 1, 0, 0, a);
    struct dlog_writer *w2 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    CORE_ASSERT_ERR(core_write1(w1, "zz", 2, 0, NULL), DLOG_EFENCED);
    core_write_sync_n(w2, 5, 20, 1, 5, 0, c);
    CORE_ASSERT_DLSN_LT(a[4], c[0]);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    ck_assert_int_ge(core_read_recs(r, 0, 5000, &recs, &n), 0);
    ck_assert_uint_eq(n, 10);
    core_check_recs(recs, 5, 20, 1, 0, a);
    core_check_recs(recs + 5, 5, 20, 1, 5, c);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    dlog_writer_close(w1);
    CORE_ASSERT_OK(dlog_writer_close(w2));
    core_env_close(&e);
}
END_TEST

/* ------------------------------------------------- writes in flight at the fence */

enum { INFLIGHT = 300 };

struct ifreq {
    struct dlog_write_req req; /* first */
    int done;
    char payload[24];
};

static void if_cb(struct dlog_write_req *req, int status)
{
    struct ifreq *r = (struct ifreq *)req;
    r->req.status = status;
    __atomic_store_n(&r->done, 1, __ATOMIC_RELEASE);
}

static int all_done(void *arg)
{
    struct ifreq *v = arg;
    for (int i = 0; i < INFLIGHT; i++)
        if (!__atomic_load_n(&v[i].done, __ATOMIC_ACQUIRE))
            return 0;
    return 1;
}

START_TEST(test_fence_writes_in_flight)
{
    struct core_env e;
    char name[128];
    static struct ifreq reqs[INFLIGHT];
    setup(&e, name, "fenceflight", 50);
    struct dlog_writer *w1 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    memset(reqs, 0, sizeof reqs);
    for (int i = 0; i < INFLIGHT / 2; i++) {
        snprintf(reqs[i].payload, sizeof reqs[i].payload, "old-%d", i);
        struct dlog_record rec = {.payload = reqs[i].payload,
                                  .len = strlen(reqs[i].payload)};
        CORE_ASSERT_OK(dlog_write(w1, &reqs[i].req, &rec, 1, if_cb));
    }
    /* The fence lands while those are in flight. */
    struct dlog_writer *w2 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    /* Everything w1 submits from now on must fail. */
    for (int i = INFLIGHT / 2; i < INFLIGHT; i++) {
        snprintf(reqs[i].payload, sizeof reqs[i].payload, "old-%d", i);
        struct dlog_record rec = {.payload = reqs[i].payload,
                                  .len = strlen(reqs[i].payload)};
        int rv = dlog_write(w1, &reqs[i].req, &rec, 1, if_cb);
        if (rv != 0) {
            CORE_ASSERT_ERR(rv, DLOG_EFENCED);
            reqs[i].req.status = rv;
            reqs[i].done = 1;
        }
    }
    CORE_ASSERT_OK(write_str(w2, "new"));
    dlog_writer_flush(w1);
    ck_assert_msg(core_wait_until(all_done, reqs, 20000), "callbacks missing");

    size_t acked = 0;
    for (int i = 0; i < INFLIGHT; i++) {
        int st = reqs[i].req.status;
        ck_assert_msg(st == 0 || st == DLOG_EFENCED, "write %d: %s", i, dlog_errname(st));
        if (i >= INFLIGHT / 2)
            ck_assert_msg(st == DLOG_EFENCED,
                          "write %d, submitted after the fence, got %s", i,
                          dlog_errname(st));
        if (st == 0) {
            /* Acknowledged writes are a prefix of the submitted ones. */
            ck_assert_msg(acked == (size_t)i, "write %d acknowledged after a fenced one",
                          i);
            acked++;
        }
    }
    /* The log holds exactly the acknowledged old writes, then "new". */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    ck_assert_int_ge(core_read_recs(r, 0, 10000, &recs, &n), 0);
    ck_assert_msg(n == acked + 1, "%zu records readable, %zu old writes acknowledged", n,
                  acked);
    for (size_t i = 0; i < acked; i++) {
        ck_assert_uint_eq(recs[i].len, strlen(reqs[i].payload));
        ck_assert_mem_eq(recs[i].payload, reqs[i].payload, recs[i].len);
        CORE_ASSERT_DLSN_EQ(recs[i].dlsn, reqs[i].req.first);
    }
    ck_assert_uint_eq(recs[acked].len, 3);
    ck_assert_mem_eq(recs[acked].payload, "new", 3);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    dlog_writer_close(w1);
    CORE_ASSERT_OK(dlog_writer_close(w2));
    core_env_close(&e);
}
END_TEST

/* ------------------------------------------------- racing exclusive writers */

enum { RACERS = 4, ROUNDS = 6, PER_ROUND = 12, MAX_OPENS = RACERS * ROUNDS };

/* A logical clock: its ticks order events across threads (happens-before). */
static uint64_t lclock;
static uint64_t tick(void)
{
    return __atomic_add_fetch(&lclock, 1, __ATOMIC_SEQ_CST);
}

struct payload {
    uint32_t thread, round, i, pad;
    uint64_t epoch;
};

struct outcome {
    struct payload p;
    uint64_t start; /* tick before the write call */
    int status;
    struct dlog_dlsn dlsn;
};

struct racer {
    struct dlog_ns *ns;
    const char *name;
    uint32_t id;
    int rv; /* an unexpected error */
    uint64_t epochs[ROUNDS];
    uint64_t opened[ROUNDS]; /* tick after the open returned */
    int nopen;
    struct outcome out[ROUNDS * PER_ROUND];
    int nout;
};

static void *racer_main(void *arg)
{
    struct racer *r = arg;
    for (int round = 0; round < ROUNDS; round++) {
        struct dlog_writer_options o;
        struct dlog_writer *w = NULL;
        dlog_writer_options_init(&o);
        o.mode = DLOG_WRITER_EXCLUSIVE;
        int rv = dlog_writer_open(r->ns, r->name, &o, &w);
        if (rv != 0) {
            r->rv = rv;
            return NULL;
        }
        uint64_t ep = dlog_writer_epoch(w);
        r->opened[r->nopen] = tick();
        r->epochs[r->nopen++] = ep;
        for (int i = 0; i < PER_ROUND; i++) {
            struct outcome *oc = &r->out[r->nout++];
            oc->p = (struct payload){r->id, (uint32_t)round, (uint32_t)i, 0, ep};
            struct dlog_record rec = {.payload = &oc->p, .len = sizeof oc->p};
            oc->start = tick();
            oc->status = dlog_write_sync(w, &rec, 1, &oc->dlsn);
            if (oc->status == DLOG_EFENCED)
                break;
            if (oc->status != 0) {
                r->rv = oc->status;
                dlog_writer_close(w);
                return NULL;
            }
        }
        dlog_writer_close(w);
    }
    return NULL;
}

START_TEST(test_racing_exclusive_writers)
{
    struct core_env e;
    char name[128];
    static struct racer rs[RACERS];
    pthread_t th[RACERS];
    setup(&e, name, "race", 20);
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < RACERS; i++) {
        rs[i].ns = e.ns;
        rs[i].name = name;
        rs[i].id = (uint32_t)i;
        ck_assert_int_eq(pthread_create(&th[i], NULL, racer_main, &rs[i]), 0);
    }
    for (int i = 0; i < RACERS; i++)
        pthread_join(th[i], NULL);

    uint64_t epochs[MAX_OPENS], opened[MAX_OPENS];
    int nopen = 0, acked = 0, fenced = 0;
    for (int i = 0; i < RACERS; i++) {
        ck_assert_msg(rs[i].rv == 0, "racer %d: %s", i, dlog_errname(rs[i].rv));
        for (int k = 0; k < rs[i].nopen; k++) {
            epochs[nopen] = rs[i].epochs[k];
            opened[nopen++] = rs[i].opened[k];
        }
    }
    /* Every exclusive open got its own epoch. */
    for (int a = 0; a < nopen; a++)
        for (int b = a + 1; b < nopen; b++)
            ck_assert_msg(epochs[a] != epochs[b], "two exclusive writers got epoch %llu",
                          (unsigned long long)epochs[a]);

    /*
     * No write that started after a newer writer's open had returned was
     * acknowledged.
     */
    for (int i = 0; i < RACERS; i++)
        for (int k = 0; k < rs[i].nout; k++) {
            const struct outcome *oc = &rs[i].out[k];
            if (oc->status != 0) {
                fenced++;
                continue;
            }
            acked++;
            for (int o = 0; o < nopen; o++)
                ck_assert_msg(!(epochs[o] > oc->p.epoch && opened[o] < oc->start),
                              "a write at epoch %llu was acknowledged after the open of "
                              "epoch %llu had returned",
                              (unsigned long long)oc->p.epoch,
                              (unsigned long long)epochs[o]);
        }

    /* The log: acknowledged writes exactly, epochs never going down. */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    ck_assert_int_ge(core_read_recs(r, 0, 10000, &recs, &n), 0);
    ck_assert_msg(n == (size_t)acked, "%zu records readable, %d acknowledged", n, acked);
    for (size_t k = 0; k < n; k++) {
        struct payload p;
        ck_assert_uint_eq(recs[k].len, sizeof p);
        memcpy(&p, recs[k].payload, sizeof p);
        if (k > 0) {
            struct payload q;
            memcpy(&q, recs[k - 1].payload, sizeof q);
            ck_assert_msg(p.epoch >= q.epoch,
                          "record %zu at epoch %llu follows one at epoch %llu", k,
                          (unsigned long long)p.epoch, (unsigned long long)q.epoch);
        }
        ck_assert_uint_lt(p.thread, RACERS);
        /* It is an acknowledged write, at the acknowledged DLSN. */
        const struct outcome *oc = NULL;
        for (int j = 0; j < rs[p.thread].nout && oc == NULL; j++) {
            const struct outcome *c = &rs[p.thread].out[j];
            if (c->p.round == p.round && c->p.i == p.i)
                oc = c;
        }
        ck_assert_msg(oc != NULL && oc->status == 0,
                      "record %zu (thread %u round %u #%u) was never acknowledged", k,
                      p.thread, p.round, p.i);
        CORE_ASSERT_DLSN_EQ(recs[k].dlsn, oc->dlsn);
    }
    core_note("racing writers on %s: %d opens, %d writes acknowledged, %d fenced",
              core_base_uri(), nopen, acked, fenced);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

/* An epoch bump gives the new epoch a segment of its own: an empty open
 * segment is relabelled, one holding records is sealed, so describe tells
 * which epoch wrote each segment's records. */
START_TEST(test_epoch_gets_own_segment)
{
    struct core_env e;
    char name[128];
    struct dlog_stream_info *info = NULL;
    setup(&e, name, "own-seg", 0);
    struct dlog_writer *w1 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t e1 = dlog_writer_epoch(w1);
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->nsegments, 1); /* empty: relabelled, not rolled */
    ck_assert_uint_eq(info->segments[0].epoch, e1);
    dlog_stream_info_free(info);
    CORE_ASSERT_OK(write_str(w1, "a"));
    struct dlog_writer *w2 = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t e2 = dlog_writer_epoch(w2);
    CORE_ASSERT_OK(write_str(w2, "b"));
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->nsegments, 2);
    ck_assert_uint_eq(info->segments[0].epoch, e1);
    ck_assert_int_eq(info->segments[0].state, DLOG_SEGMENT_SEALED);
    ck_assert_uint_eq(info->segments[0].records, 1);
    ck_assert_uint_eq(info->segments[1].epoch, e2);
    ck_assert_uint_eq(info->segments[1].records, 1);
    dlog_stream_info_free(info);
    ck_assert_int_eq(write_str(w1, "old"), DLOG_EFENCED);
    dlog_writer_close(w1);
    CORE_ASSERT_OK(dlog_writer_close(w2));
    core_env_close(&e);
}
END_TEST

START_TEST(test_epoch_survives_reopen)
{
    CORE_REQUIRE(core_backend_durable(), "data does not outlive the namespace");
    struct core_env e;
    char name[128];
    setup(&e, name, "epochreopen", 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t e1 = dlog_writer_epoch(w);
    CORE_ASSERT_OK(write_str(w, "before"));
    core_env_reopen(&e); /* closes w */
    w = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    ck_assert_uint_gt(dlog_writer_epoch(w), e1);
    CORE_ASSERT_OK(write_str(w, "after"));
    CORE_ASSERT_OK(dlog_writer_close(w));
    char all[64];
    read_joined(e.ns, name, all, sizeof all);
    ck_assert_str_eq(all, "before,after");
    core_env_close(&e);
}
END_TEST

Suite *fencing_suite(void)
{
    Suite *s = suite_create("fencing");
    TCase *tc = core_tcase("fencing", CORE_TIMEOUT);
    tcase_add_test(tc, test_exclusive_fences_older);
    tcase_add_test(tc, test_shared_writer_fenced);
    tcase_add_test(tc, test_fence_across_segments);
    tcase_add_test(tc, test_fence_writes_in_flight);
    tcase_add_test(tc, test_racing_exclusive_writers);
    tcase_add_test(tc, test_epoch_survives_reopen);
    tcase_add_test(tc, test_epoch_gets_own_segment);
    suite_add_tcase(s, tc);
    return s;
}
