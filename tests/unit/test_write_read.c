/*
 * Writing and reading (DESIGN.md invariants 1-3 and 8): acknowledged DLSNs
 * grow in submit order, readers see every record once and in order across
 * segment rolls and reopens, txid rules, start positions, timeouts.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

/* A namespace and a fresh stream with cfg (NULL: core_cfg()). */
static void setup(struct core_env *e, char *name, const char *tag,
                  const struct dlog_stream_config *cfg)
{
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, cfg);
}

static struct dlog_stream_config rolling(uint64_t max_records, uint64_t max_bytes)
{
    struct dlog_stream_config c = core_cfg();
    if (max_records != 0)
        c.segment_max_records = max_records;
    if (max_bytes != 0)
        c.segment_max_bytes = max_bytes;
    return c;
}

/* Records the status and raises the int flag at req->data. */
static void status_cb(struct dlog_write_req *req, int status)
{
    req->status = status;
    __atomic_store_n((int *)req->data, 1, __ATOMIC_RELEASE);
}

static int flag_set(void *arg)
{
    return __atomic_load_n((int *)arg, __ATOMIC_ACQUIRE);
}

/* Waits (5 s at most) for status_cb of req to have run; returns its status. */
static int req_wait(struct dlog_write_req *req)
{
    ck_assert_msg(core_wait_until(flag_set, req->data, 5000), "write callback never ran");
    return req->status;
}

static size_t count_segments(struct dlog_ns *ns, const char *name)
{
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(ns, dlog_stream_describe(ns, name, &info));
    size_t n = info->nsegments;
    dlog_stream_info_free(info);
    return n;
}

START_TEST(test_write_read_basic)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[100];
    setup(&e, name, "basic", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_n(w, 100, 200, 1, 0, 1, acks);
    /* The first record of a new stream is 1/0/0. */
    CORE_ASSERT_DLSN_EQ(acks[0], ((struct dlog_dlsn){1, 0, 0}));

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 100, 10000);
    core_check_recs(recs, 100, 200, 1, 0, acks);
    for (size_t i = 0; i < 100; i++)
        ck_assert_uint_eq(recs[i].txid, 1 + i);
    /* Nothing more. */
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    core_recs_free(recs, 100);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_sync_write_dlsns)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[30];
    setup(&e, name, "sync", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 30, 33, 2, 0, 1, acks);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 30, 10000);
    core_check_recs(recs, 30, 33, 2, 0, acks);
    core_recs_free(recs, 30);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_multi_record_write)
{
    struct core_env e;
    char name[128];
    struct dlog_record recs[10];
    char bufs[10][40];
    setup(&e, name, "multi", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 2, 40, 3, 0, 1, NULL);
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < 10; i++) {
        core_payload(bufs[i], sizeof bufs[i], 3, 2 + i);
        recs[i].payload = bufs[i];
        recs[i].len = sizeof bufs[i];
        recs[i].txid = 3 + i;
    }
    struct dlog_dlsn first;
    CORE_ASSERT_OK(dlog_write_sync(w, recs, 10, &first));
    core_write_sync_n(w, 2, 40, 3, 12, 13, NULL);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *got = core_read_exact(r, 14, 10000);
    core_check_recs(got, 14, 40, 3, 0, NULL);
    CORE_ASSERT_DLSN_EQ(got[2].dlsn, first);
    for (int i = 0; i < 14; i++)
        ck_assert_uint_eq(got[i].txid, 1 + i);
    /* One small write is one entry: consecutive slots. */
    for (int i = 3; i < 12; i++) {
        ck_assert_uint_eq(got[i].dlsn.seg, first.seg);
        ck_assert_uint_eq(got[i].dlsn.entry, first.entry);
        ck_assert_uint_eq(got[i].dlsn.slot, got[i - 1].dlsn.slot + 1);
    }
    core_recs_free(got, 14);
    dlog_reader_close(r);

    /* Async: first/last/first_txid of a multi-record write. */
    struct dlog_write_req req;
    int done = 0;
    memset(&req, 0, sizeof req);
    req.data = &done;
    for (int i = 0; i < 10; i++)
        recs[i].txid = 100 + i;
    CORE_ASSERT_OK(dlog_write(w, &req, recs, 10, status_cb));
    CORE_ASSERT_OK(dlog_writer_flush(w));
    CORE_ASSERT_OK(req_wait(&req));
    ck_assert_uint_eq(req.first_txid, 100);
    CORE_ASSERT_DLSN_LT(req.first, req.last);
    ck_assert_uint_eq(req.last.slot, req.first.slot + 9);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_segment_rolls_by_records)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[60];
    struct dlog_stream_config cfg = rolling(7, 0);
    setup(&e, name, "rollrec", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 30, 64, 4, 0, 1, acks);
    /* One record per entry: a roll after every 7 records. */
    ck_assert_uint_ge(count_segments(e.ns, name), 30 / 7);
    /* Pipelined writes are batched into entries; rolls fall between entries. */
    core_write_n(w, 30, 64, 4, 30, 31, acks + 30);
    ck_assert_uint_gt(acks[59].seg, acks[0].seg);
    for (size_t i = 1; i < 60; i++)
        ck_assert_uint_le(acks[i].seg - acks[i - 1].seg, 1);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 60, 10000);
    core_check_recs(recs, 60, 64, 4, 0, acks);
    core_recs_free(recs, 60);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_segment_rolls_by_bytes)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[40];
    struct dlog_stream_config cfg = rolling(0, 4096);
    setup(&e, name, "rollbytes", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 40, 1000, 5, 0, 1, acks);
    ck_assert_uint_ge(count_segments(e.ns, name), 40 / 5);

    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    for (size_t i = 0; i + 1 < info->nsegments; i++) {
        ck_assert_int_eq(info->segments[i].state, DLOG_SEGMENT_SEALED);
        /* A segment rolls once it reaches the limit: at most one record over. */
        ck_assert_uint_lt(info->segments[i].bytes, 4096 + 1100);
    }
    dlog_stream_info_free(info);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 40, 10000);
    core_check_recs(recs, 40, 1000, 5, 0, acks);
    core_recs_free(recs, 40);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

/* A thread that tails a stream for `want` records. */
struct tailer {
    struct dlog_reader *r;
    size_t want;
    int timeout_ms;
    struct core_rec *recs;
    size_t n;
    int rv;
};

static int tail_read(struct tailer *t)
{
    struct dlog_record batch[32];
    uint64_t deadline = core_now_ms() + (uint64_t)t->timeout_ms;
    t->recs = calloc(t->want, sizeof *t->recs);
    while (t->n < t->want) {
        uint64_t now = core_now_ms();
        if (now >= deadline)
            return DLOG_ETIMEDOUT;
        size_t max = t->want - t->n < 32 ? t->want - t->n : 32;
        int rv = dlog_read(t->r, batch, max, (int)(deadline - now));
        if (rv == DLOG_ETIMEDOUT)
            continue;
        if (rv < 0)
            return rv;
        if ((size_t)rv > max)
            return DLOG_EINTERNAL;
        for (int i = 0; i < rv; i++) {
            struct core_rec *c = &t->recs[t->n++];
            c->dlsn = batch[i].dlsn;
            c->txid = batch[i].txid;
            c->len = batch[i].len;
            c->payload = malloc(c->len + 1);
            memcpy(c->payload, batch[i].payload, c->len);
        }
    }
    return 0;
}

static void *tailer_main(void *arg)
{
    struct tailer *t = arg;
    t->rv = tail_read(t);
    return NULL;
}

START_TEST(test_tail_across_rolls)
{
    struct core_env e;
    char name[128];
    enum { N = 300 };
    struct dlog_dlsn acks[N];
    struct dlog_stream_config cfg = rolling(16, 0);
    setup(&e, name, "tail", &cfg);
    struct tailer t1 = {0}, t2 = {0};
    t1.r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    t2.r = core_reader(e.ns, name, DLOG_START_TAIL, DLOG_DLSN_HEAD, 0);
    t1.want = t2.want = N;
    t1.timeout_ms = t2.timeout_ms = 30000;
    pthread_t th1, th2;
    ck_assert_int_eq(pthread_create(&th1, NULL, tailer_main, &t1), 0);
    ck_assert_int_eq(pthread_create(&th2, NULL, tailer_main, &t2), 0);

    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_n(w, N / 2, 300, 6, 0, 1, acks);
    core_write_sync_n(w, N / 2, 300, 6, N / 2, 1 + N / 2, acks + N / 2);
    pthread_join(th1, NULL);
    pthread_join(th2, NULL);
    ck_assert_msg(t1.rv == 0, "tailer 1: %s after %zu records", dlog_errname(t1.rv),
                  t1.n);
    ck_assert_msg(t2.rv == 0, "tailer 2: %s after %zu records", dlog_errname(t2.rv),
                  t2.n);
    core_check_recs(t1.recs, N, 300, 6, 0, acks);
    core_check_recs(t2.recs, N, 300, 6, 0, acks);

    /* A third reader, opened after the fact, sees the same. */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, N, 10000);
    core_check_recs(recs, N, 300, 6, 0, acks);
    ck_assert_uint_ge(count_segments(e.ns, name), (N / 2) / 16);
    core_recs_free(recs, N);
    core_recs_free(t1.recs, N);
    core_recs_free(t2.recs, N);
    dlog_reader_close(r);
    dlog_reader_close(t1.r);
    dlog_reader_close(t2.r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_reopen_durable)
{
    CORE_REQUIRE(core_backend_durable(), "data does not outlive the namespace");
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[80];
    struct dlog_stream_config cfg = rolling(16, 0);
    setup(&e, name, "reopen", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_n(w, 60, 128, 7, 0, 100, acks);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_reopen(&e);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 60, 10000);
    core_check_recs(recs, 60, 128, 7, 0, acks);
    for (size_t i = 0; i < 60; i++)
        ck_assert_uint_eq(recs[i].txid, 100 + i);
    core_recs_free(recs, 60);
    uint64_t txid = 0;
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &txid));
    ck_assert_uint_eq(txid, 159);
    struct dlog_dlsn last;
    CORE_NS_OK(e.ns, dlog_stream_last_dlsn(e.ns, name, &last));
    CORE_ASSERT_DLSN_EQ(last, acks[59]);

    /* A new writer goes on after the old records; a smaller txid is refused. */
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    char buf[8] = "late";
    CORE_ASSERT_ERR(core_write1(w, buf, sizeof buf, 158, NULL), DLOG_ETXID);
    core_write_sync_n(w, 20, 128, 7, 60, 160, acks + 60);
    CORE_ASSERT_DLSN_LT(acks[59], acks[60]);
    recs = core_read_exact(r, 20, 10000);
    core_check_recs(recs, 20, 128, 7, 60, acks + 60);
    core_recs_free(recs, 20);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));

    /* And all 80 survive another reopen, without the writer closing first. */
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_env_reopen(&e); /* closes w */
    r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    recs = core_read_exact(r, 80, 10000);
    core_check_recs(recs, 80, 128, 7, 0, acks);
    core_recs_free(recs, 80);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

START_TEST(test_txid_rules)
{
    struct core_env e;
    char name[128];
    char buf[16] = "payload";
    struct dlog_dlsn d;
    setup(&e, name, "txid", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 10, NULL));
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 10, NULL)); /* equal is fine */
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 12, NULL));
    d = DLOG_DLSN_HEAD;
    CORE_ASSERT_ERR(core_write1(w, buf, sizeof buf, 11, &d), DLOG_ETXID);
    ck_assert_str_ne(dlog_writer_errmsg(w), "");
    /* Async: refused at once or through the callback, never stored. */
    struct dlog_write_req req;
    struct dlog_record rec = {.payload = buf, .len = sizeof buf, .txid = 3};
    int done = 0;
    memset(&req, 0, sizeof req);
    req.data = &done;
    int rv = dlog_write(w, &req, &rec, 1, status_cb);
    if (rv == 0) {
        dlog_writer_flush(w);
        rv = req_wait(&req);
    }
    CORE_ASSERT_ERR(rv, DLOG_ETXID);
    /* A batch whose txids go down is refused whole. */
    struct dlog_record two[2] = {{.payload = buf, .len = 4, .txid = 20},
                                 {.payload = buf, .len = 4, .txid = 19}};
    CORE_ASSERT_ERR(dlog_write_sync(w, two, 2, NULL), DLOG_ETXID);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 13, NULL));
    CORE_ASSERT_OK(dlog_writer_close(w));

    /* Another writer is held to the stream's last txid too. */
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    CORE_ASSERT_ERR(core_write1(w, buf, sizeof buf, 12, NULL), DLOG_ETXID);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 13, NULL));
    CORE_ASSERT_OK(dlog_writer_close(w));

    uint64_t last = 0;
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &last));
    ck_assert_uint_eq(last, 13);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 5, 5000);
    uint64_t want[] = {10, 10, 12, 13, 13};
    for (int i = 0; i < 5; i++)
        ck_assert_uint_eq(recs[i].txid, want[i]);
    struct dlog_record more;
    CORE_ASSERT_ERR(dlog_read_next(r, &more, 0), DLOG_ETIMEDOUT);
    core_recs_free(recs, 5);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

START_TEST(test_auto_txid)
{
    struct core_env e;
    char name[128];
    char buf[8] = "auto";
    struct dlog_stream_config cfg = rolling(4, 0);
    cfg.auto_txid = 1;
    setup(&e, name, "autotxid", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 0, NULL));
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 999, NULL)); /* ignored */
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 0, NULL));
    struct dlog_record three[3] = {{.payload = buf, .len = 1},
                                   {.payload = buf, .len = 2},
                                   {.payload = buf, .len = 3}};
    struct dlog_write_req req;
    int done = 0;
    memset(&req, 0, sizeof req);
    req.data = &done;
    CORE_ASSERT_OK(dlog_write(w, &req, three, 3, status_cb));
    CORE_ASSERT_OK(dlog_writer_flush(w));
    CORE_ASSERT_OK(req_wait(&req));
    ck_assert_uint_eq(req.first_txid, 4);
    core_write_n(w, 10, 16, 8, 0, 0, NULL);
    CORE_ASSERT_OK(dlog_writer_close(w));

    uint64_t last = 0;
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &last));
    ck_assert_uint_eq(last, 16);
    if (core_backend_durable())
        core_env_reopen(&e);
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 1, NULL));
    CORE_ASSERT_OK(dlog_writer_close(w));

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 17, 5000);
    for (size_t i = 0; i < 17; i++)
        ck_assert_msg(recs[i].txid == i + 1, "record %zu has txid %llu", i,
                      (unsigned long long)recs[i].txid);
    core_check_recs(recs + 6, 10, 16, 8, 0, NULL);
    core_recs_free(recs, 17);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

/* The index of the first record read from a reader at a start position, or -1. */
static struct core_rec *read_from(struct dlog_ns *ns, const char *name, int start,
                                  struct dlog_dlsn d, uint64_t txid, size_t want)
{
    struct dlog_reader *r = core_reader(ns, name, start, d, txid);
    struct core_rec *recs = core_read_exact(r, want, 5000);
    struct dlog_record rec;
    int rv = dlog_read_next(r, &rec, 0);
    ck_assert_msg(rv == DLOG_ETIMEDOUT, "read %zu records, then %d (%s)", want, rv,
                  dlog_errname(rv));
    dlog_reader_close(r);
    return recs;
}

START_TEST(test_start_positions)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[10];
    struct dlog_stream_config cfg = rolling(3, 0);
    setup(&e, name, "start", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    char buf[32];
    for (int i = 0; i < 10; i++) {
        core_payload(buf, sizeof buf, 9, (uint64_t)i);
        CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 10 * (uint64_t)(i + 1), &acks[i]));
    }

    struct core_rec *recs;
    recs = read_from(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0, 10);
    core_check_recs(recs, 10, 32, 9, 0, acks);
    core_recs_free(recs, 10);
    /* At a record's DLSN. */
    recs = read_from(e.ns, name, DLOG_START_DLSN, acks[4], 0, 6);
    core_check_recs(recs, 6, 32, 9, 4, acks + 4);
    core_recs_free(recs, 6);
    /* Between records: the next one. */
    struct dlog_dlsn between = acks[4];
    between.slot++;
    recs = read_from(e.ns, name, DLOG_START_DLSN, between, 0, 5);
    core_check_recs(recs, 5, 32, 9, 5, acks + 5);
    core_recs_free(recs, 5);
    /* DLSN head: everything. */
    recs = read_from(e.ns, name, DLOG_START_DLSN, DLOG_DLSN_HEAD, 0, 10);
    core_check_recs(recs, 10, 32, 9, 0, acks);
    core_recs_free(recs, 10);
    /* By txid: the first record with txid >= start_txid. */
    recs = read_from(e.ns, name, DLOG_START_TXID, DLOG_DLSN_HEAD, 45, 6);
    core_check_recs(recs, 6, 32, 9, 4, acks + 4);
    ck_assert_uint_eq(recs[0].txid, 50);
    core_recs_free(recs, 6);
    recs = read_from(e.ns, name, DLOG_START_TXID, DLOG_DLSN_HEAD, 10, 10);
    core_check_recs(recs, 10, 32, 9, 0, acks);
    core_recs_free(recs, 10);
    recs = read_from(e.ns, name, DLOG_START_TXID, DLOG_DLSN_HEAD, 100, 1);
    core_check_recs(recs, 1, 32, 9, 9, acks + 9);
    core_recs_free(recs, 1);

    /* Past the last txid and at the tail: only later records. */
    struct dlog_reader *rt =
        core_reader(e.ns, name, DLOG_START_TXID, DLOG_DLSN_HEAD, 101);
    struct dlog_reader *tail =
        core_reader(e.ns, name, DLOG_START_TAIL, DLOG_DLSN_HEAD, 0);
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(rt, &rec, 0), DLOG_ETIMEDOUT);
    CORE_ASSERT_ERR(dlog_read_next(tail, &rec, 0), DLOG_ETIMEDOUT);
    struct dlog_dlsn d11;
    core_payload(buf, sizeof buf, 9, 10);
    CORE_ASSERT_OK(core_write1(w, buf, sizeof buf, 110, &d11));
    ck_assert_int_eq(dlog_read_next(rt, &rec, 5000), 1);
    ck_assert_uint_eq(rec.txid, 110);
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d11);
    ck_assert_int_eq(dlog_read_next(tail, &rec, 5000), 1);
    ck_assert_uint_eq(rec.txid, 110);
    ck_assert(core_payload_ok(rec.payload, rec.len, 9, 10));
    /* The position moved past the record read. */
    CORE_ASSERT_DLSN_LT(d11, dlog_reader_position(tail));
    dlog_reader_close(rt);
    dlog_reader_close(tail);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_end_position)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[10];
    setup(&e, name, "end", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 10, 20, 10, 0, 1, acks);
    struct dlog_reader_options o;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&o);
    ck_assert_int_eq(dlog_dlsn_cmp(o.end, DLOG_DLSN_MAX), 0);
    o.end = acks[4];
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    struct core_rec *recs = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, 10, 5000, &recs, &n);
    CORE_ASSERT_ERR(rv, DLOG_EEOF);
    ck_assert_uint_eq(n, 5);
    core_check_recs(recs, 5, 20, 10, 0, acks);
    core_recs_free(recs, n);
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 100), DLOG_EEOF);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

struct blocked_read {
    struct dlog_reader *r;
    int rv;
    uint64_t txid;
    int ok;
};

static void *blocked_read_main(void *arg)
{
    struct blocked_read *b = arg;
    struct dlog_record rec;
    b->rv = dlog_read_next(b->r, &rec, -1);
    if (b->rv == 1) {
        b->txid = rec.txid;
        b->ok = core_payload_ok(rec.payload, rec.len, 11, 0);
    }
    return NULL;
}

START_TEST(test_read_timeout)
{
    struct core_env e;
    char name[128];
    setup(&e, name, "timeout", NULL);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct dlog_record recs[4];
    uint64_t t0 = core_now_ms();
    CORE_ASSERT_ERR(dlog_read(r, recs, 4, 0), DLOG_ETIMEDOUT);
    ck_assert_uint_lt(core_now_ms() - t0, 1000);
    t0 = core_now_ms();
    CORE_ASSERT_ERR(dlog_read(r, recs, 4, 200), DLOG_ETIMEDOUT);
    uint64_t took = core_now_ms() - t0;
    ck_assert_msg(took >= 190 && took < 3000, "a 200 ms read timed out after %llu ms",
                  (unsigned long long)took);
    dlog_reader_close(r);

    /* A read that waits forever returns when a record comes. */
    struct blocked_read b = {0};
    b.r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, blocked_read_main, &b), 0);
    core_nap_ms(50); /* let it block (the test passes either way) */
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 1, 77, 11, 0, 42, NULL);
    pthread_join(th, NULL);
    ck_assert_int_eq(b.rv, 1);
    ck_assert_uint_eq(b.txid, 42);
    ck_assert(b.ok);
    dlog_reader_close(b.r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_first_last)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[12], d;
    uint64_t txid;
    struct dlog_stream_config cfg = rolling(5, 0);
    setup(&e, name, "firstlast", &cfg);
    CORE_ASSERT_ERR(dlog_stream_first_dlsn(e.ns, name, &d), DLOG_EEOF);
    CORE_ASSERT_ERR(dlog_stream_last_dlsn(e.ns, name, &d), DLOG_EEOF);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 6, 10, 12, 0, 5, acks);
    CORE_NS_OK(e.ns, dlog_stream_first_dlsn(e.ns, name, &d));
    CORE_ASSERT_DLSN_EQ(d, acks[0]);
    CORE_NS_OK(e.ns, dlog_stream_last_dlsn(e.ns, name, &d));
    CORE_ASSERT_DLSN_EQ(d, acks[5]);
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &txid));
    ck_assert_uint_eq(txid, 10);
    core_write_n(w, 6, 10, 12, 6, 11, acks + 6);
    CORE_NS_OK(e.ns, dlog_stream_first_dlsn(e.ns, name, &d));
    CORE_ASSERT_DLSN_EQ(d, acks[0]);
    CORE_NS_OK(e.ns, dlog_stream_last_dlsn(e.ns, name, &d));
    CORE_ASSERT_DLSN_EQ(d, acks[11]);
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &txid));
    ck_assert_uint_eq(txid, 16);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_last_txid_empty)
{
    /* dlog.h: first/last DLSN and last txid give DLOG_EEOF without records. */
    struct core_env e;
    char name[128];
    uint64_t txid = 12345;
    setup(&e, name, "txidempty", NULL);
    CORE_ASSERT_ERR(dlog_stream_last_txid(e.ns, name, &txid), DLOG_EEOF);
    core_env_close(&e);
}
END_TEST

START_TEST(test_keys_and_empty_payload)
{
    struct core_env e;
    char name[128];
    setup(&e, name, "keys", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_record recs[3] = {
        {.payload = "v1", .len = 2, .key = "user/1", .key_len = 6, .txid = 1},
        {.payload = "", .len = 0, .key = "k", .key_len = 1, .txid = 2},
        {.payload = "no key", .len = 6, .txid = 3},
    };
    CORE_ASSERT_OK(dlog_write_sync(w, recs, 3, NULL));
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *got = core_read_exact(r, 3, 5000);
    ck_assert_uint_eq(got[0].key_len, 6);
    ck_assert_mem_eq(got[0].key, "user/1", 6);
    ck_assert_uint_eq(got[0].len, 2);
    ck_assert_mem_eq(got[0].payload, "v1", 2);
    ck_assert_uint_eq(got[1].len, 0);
    ck_assert_uint_eq(got[1].key_len, 1);
    ck_assert_uint_eq(got[2].key_len, 0);
    ck_assert_mem_eq(got[2].payload, "no key", 6);
    core_recs_free(got, 3);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_bad_write_read_args)
{
    struct core_env e;
    char name[128];
    setup(&e, name, "badargs", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_record rec = {.payload = "x", .len = 1, .txid = 1};
    struct dlog_write_req req;
    int called = 0;
    memset(&req, 0, sizeof req);
    req.data = &called;

    CORE_ASSERT_ERR(dlog_write_sync(w, NULL, 1, NULL), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_write_sync(w, &rec, 0, NULL), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_write(w, &req, &rec, 0, status_cb), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_write(w, NULL, &rec, 1, status_cb), DLOG_EINVAL);
    struct dlog_record bad = {.payload = NULL, .len = 10, .txid = 1};
    CORE_ASSERT_ERR(dlog_write_sync(w, &bad, 1, NULL), DLOG_EINVAL);
    struct dlog_record badkey = {
        .payload = "x", .len = 1, .key = NULL, .key_len = 3, .txid = 1};
    CORE_ASSERT_ERR(dlog_write_sync(w, &badkey, 1, NULL), DLOG_EINVAL);
    ck_assert_str_ne(dlog_writer_errmsg(w), "");
    /* A batch with one bad record stores none of them. */
    struct dlog_record mixed[2] = {rec, bad};
    CORE_ASSERT_ERR(dlog_write_sync(w, mixed, 2, NULL), DLOG_EINVAL);

    struct dlog_writer_options wo;
    struct dlog_writer *w2 = NULL;
    dlog_writer_options_init(&wo);
    wo.mode = 7;
    CORE_ASSERT_ERR(dlog_writer_open(e.ns, name, &wo, &w2), DLOG_EINVAL);
    ck_assert_ptr_null(w2);

    struct dlog_reader_options ro;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&ro);
    ro.start = 9;
    CORE_ASSERT_ERR(dlog_reader_open(e.ns, name, &ro, &r), DLOG_EINVAL);
    ck_assert_ptr_null(r);
    dlog_reader_options_init(&ro);
    ro.key_prefix = NULL;
    ro.key_prefix_len = 4;
    CORE_ASSERT_ERR(dlog_reader_open(e.ns, name, &ro, &r), DLOG_EINVAL);
    ck_assert_ptr_null(r);
    r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct dlog_record out[2];
    CORE_ASSERT_ERR(dlog_read(r, out, 0, 0), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_read(r, NULL, 2, 0), DLOG_EINVAL);

    /* Nothing was stored by the refused calls; the writer still works. */
    CORE_ASSERT_OK(dlog_write_sync(w, &rec, 1, NULL));
    ck_assert_msg(!called, "the callback of a refused write ran");
    ck_assert_int_eq(dlog_read(r, out, 2, 5000), 1);
    ck_assert_uint_eq(out[0].len, 1);
    CORE_ASSERT_ERR(dlog_read(r, out, 2, 0), DLOG_ETIMEDOUT);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

/* Writes still in flight when the writer closes are flushed, each callback once. */
struct flight {
    pthread_mutex_t mu;
    int calls[200];
    int status[200];
};

struct flight_req {
    struct dlog_write_req req; /* first: the callback gets &req */
    struct flight *f;
    int idx;
};

static void flight_cb2(struct dlog_write_req *req, int status)
{
    struct flight_req *fr = (struct flight_req *)req;
    pthread_mutex_lock(&fr->f->mu);
    fr->f->calls[fr->idx]++;
    fr->f->status[fr->idx] = status;
    pthread_mutex_unlock(&fr->f->mu);
}

START_TEST(test_close_with_writes_in_flight)
{
    struct core_env e;
    char name[128];
    static struct flight f;
    static struct flight_req reqs[200];
    memset(&f, 0, sizeof f);
    pthread_mutex_init(&f.mu, NULL);
    setup(&e, name, "inflight", NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    char buf[100];
    for (int i = 0; i < 200; i++) {
        core_payload(buf, sizeof buf, 13, (uint64_t)i);
        struct dlog_record rec = {.payload = buf, .len = sizeof buf, .txid = 1 + i};
        memset(&reqs[i], 0, sizeof reqs[i]);
        reqs[i].f = &f;
        reqs[i].idx = i;
        CORE_ASSERT_OK(dlog_write(w, &reqs[i].req, &rec, 1, flight_cb2));
    }
    dlog_writer_close(w);
    /* Close flushed: every callback ran exactly once, successfully, before it returned.
     */
    pthread_mutex_lock(&f.mu);
    for (int i = 0; i < 200; i++) {
        ck_assert_msg(f.calls[i] == 1, "write %d: callback ran %d times", i, f.calls[i]);
        ck_assert_msg(f.status[i] == 0, "write %d: status %s", i,
                      dlog_errname(f.status[i]));
        if (i > 0)
            CORE_ASSERT_DLSN_LT(reqs[i - 1].req.first, reqs[i].req.first);
    }
    pthread_mutex_unlock(&f.mu);
    /* Every acknowledged write is there (and nothing else). */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, 0, 10000, &recs, &n);
    ck_assert_msg(rv >= 0, "read: %s", dlog_errname(rv));
    ck_assert_uint_eq(n, 200);
    core_check_recs(recs, n, 100, 13, 0, NULL);
    for (size_t i = 0; i < n; i++)
        CORE_ASSERT_DLSN_EQ(recs[i].dlsn, reqs[i].req.first);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

/* Several threads, one writer each or one shared: DLSNs unique, each thread's order kept.
 */
struct wthread {
    struct dlog_writer *w;
    uint64_t tag;
    size_t n;
    struct dlog_dlsn *acks;
    int rv;
};

static void *wthread_main(void *arg)
{
    struct wthread *t = arg;
    char buf[64];
    t->rv = 0;
    for (size_t i = 0; i < t->n; i++) {
        core_payload(buf, sizeof buf, t->tag, i);
        struct dlog_record rec = {.payload = buf, .len = sizeof buf};
        int rv = dlog_write_sync(t->w, &rec, 1, &t->acks[i]);
        if (rv != 0) {
            t->rv = rv;
            return NULL;
        }
    }
    return NULL;
}

static int dlsn_qcmp(const void *a, const void *b)
{
    return dlog_dlsn_cmp(*(const struct dlog_dlsn *)a, *(const struct dlog_dlsn *)b);
}

static void concurrent_writers(int shared_handle)
{
    enum { T = 4, N = 60 };
    struct core_env e;
    char name[128];
    struct dlog_stream_config cfg = rolling(25, 0);
    cfg.auto_txid = 1;
    setup(&e, name, shared_handle ? "conc1" : "concN", &cfg);
    struct wthread t[T];
    pthread_t th[T];
    struct dlog_writer *one =
        shared_handle ? core_writer(e.ns, name, DLOG_WRITER_SHARED) : NULL;
    for (int i = 0; i < T; i++) {
        t[i].w = one != NULL ? one : core_writer(e.ns, name, DLOG_WRITER_SHARED);
        t[i].tag = 100 + (uint64_t)i;
        t[i].n = N;
        t[i].acks = calloc(N, sizeof *t[i].acks);
    }
    for (int i = 0; i < T; i++)
        ck_assert_int_eq(pthread_create(&th[i], NULL, wthread_main, &t[i]), 0);
    for (int i = 0; i < T; i++)
        pthread_join(th[i], NULL);
    struct dlog_dlsn all[T * N];
    for (int i = 0; i < T; i++) {
        ck_assert_msg(t[i].rv == 0, "writer thread %d: %s", i, dlog_errname(t[i].rv));
        for (size_t k = 0; k < N; k++) {
            if (k > 0)
                CORE_ASSERT_DLSN_LT(t[i].acks[k - 1], t[i].acks[k]);
            all[i * N + k] = t[i].acks[k];
        }
    }
    qsort(all, T * N, sizeof all[0], dlsn_qcmp);
    for (size_t k = 1; k < T * N; k++)
        ck_assert_msg(dlog_dlsn_cmp(all[k - 1], all[k]) != 0,
                      "DLSN " CORE_DLSN_FMT " acknowledged twice",
                      CORE_DLSN_ARGS(all[k]));

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, T * N, 10000);
    size_t next[T] = {0};
    for (size_t k = 0; k < T * N; k++) {
        CORE_ASSERT_DLSN_EQ(recs[k].dlsn, all[k]);
        ck_assert_uint_eq(recs[k].txid, k + 1);
        if (k > 0)
            CORE_ASSERT_DLSN_LT(recs[k - 1].dlsn, recs[k].dlsn);
        int who = -1;
        for (int i = 0; i < T && who < 0; i++)
            if (next[i] < N &&
                core_payload_ok(recs[k].payload, recs[k].len, t[i].tag, next[i]))
                who = i;
        ck_assert_msg(who >= 0, "record %zu is nobody's next record", k);
        CORE_ASSERT_DLSN_EQ(recs[k].dlsn, t[who].acks[next[who]]);
        next[who]++;
    }
    core_recs_free(recs, T * N);
    dlog_reader_close(r);
    for (int i = 0; i < T; i++) {
        if (one == NULL)
            CORE_ASSERT_OK(dlog_writer_close(t[i].w));
        free(t[i].acks);
    }
    if (one != NULL)
        CORE_ASSERT_OK(dlog_writer_close(one));
    core_env_close(&e);
}

START_TEST(test_threads_one_writer)
{
    concurrent_writers(1);
}
END_TEST

START_TEST(test_threads_many_writers)
{
    concurrent_writers(0);
}
END_TEST

Suite *write_read_suite(void)
{
    Suite *s = suite_create("write_read");
    TCase *tc = core_tcase("basic", CORE_TIMEOUT);
    tcase_add_test(tc, test_write_read_basic);
    tcase_add_test(tc, test_sync_write_dlsns);
    tcase_add_test(tc, test_multi_record_write);
    tcase_add_test(tc, test_keys_and_empty_payload);
    tcase_add_test(tc, test_first_last);
    tcase_add_test(tc, test_last_txid_empty);
    suite_add_tcase(s, tc);
    tc = core_tcase("segments", CORE_TIMEOUT);
    tcase_add_test(tc, test_segment_rolls_by_records);
    tcase_add_test(tc, test_segment_rolls_by_bytes);
    tcase_add_test(tc, test_tail_across_rolls);
    tcase_add_test(tc, test_reopen_durable);
    suite_add_tcase(s, tc);
    tc = core_tcase("txid", CORE_TIMEOUT);
    tcase_add_test(tc, test_txid_rules);
    tcase_add_test(tc, test_auto_txid);
    suite_add_tcase(s, tc);
    tc = core_tcase("positions", CORE_TIMEOUT);
    tcase_add_test(tc, test_start_positions);
    tcase_add_test(tc, test_end_position);
    tcase_add_test(tc, test_read_timeout);
    suite_add_tcase(s, tc);
    tc = core_tcase("misc", CORE_TIMEOUT);
    tcase_add_test(tc, test_bad_write_read_args);
    tcase_add_test(tc, test_close_with_writes_in_flight);
    tcase_add_test(tc, test_threads_one_writer);
    tcase_add_test(tc, test_threads_many_writers);
    suite_add_tcase(s, tc);
    return s;
}
