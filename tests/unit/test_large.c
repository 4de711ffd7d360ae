/*
 * Large records (DESIGN.md invariant 5): a record above the 1 MiB entry
 * limit is split into fragments and is visible to readers whole or not at
 * all; records above the stream's max_record_bytes are refused.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

#define MiB (1024 * 1024)

static void setup(struct core_env *e, char *name, const char *tag, uint64_t max_record)
{
    struct dlog_stream_config cfg = core_cfg();
    if (max_record != 0)
        cfg.max_record_bytes = max_record;
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, &cfg);
}

static uint8_t *make_payload(size_t len, uint64_t tag, uint64_t i)
{
    uint8_t *p = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(p);
    core_payload(p, len, tag, i);
    return p;
}

START_TEST(test_64mib_round_trip)
{
    struct core_env e;
    char name[128];
    const size_t big = DLOG_RECORD_MAX_DEFAULT; /* 64 MiB, the default limit */
    if (core_backend_is_cluster()) {
        /* One append is one Raft entry: refused with a clear error above
         * 16 MiB, and nothing is stored; 12 MiB goes through. */
        setup(&e, name, "big64", 0);
        uint8_t *p = make_payload(big, 1, 1);
        struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
        struct dlog_dlsn d;
        CORE_ASSERT_ERR(core_write1(w, p, big, 1, &d), DLOG_ETOOBIG);
        CORE_ASSERT_OK(core_write1(w, p, 12u << 20, 1, &d));
        struct dlog_reader *r =
            core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
        struct dlog_record rec;
        ck_assert_int_eq(dlog_read_next(r, &rec, 30000), 1);
        ck_assert_uint_eq(rec.len, 12u << 20);
        ck_assert(memcmp(rec.payload, p, rec.len) == 0);
        CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
        dlog_reader_close(r);
        CORE_ASSERT_OK(dlog_writer_close(w));
        free(p);
        core_env_close(&e);
        return;
    }
    setup(&e, name, "big64", 0);
    uint8_t *p = make_payload(big, 1, 1);
    uint64_t sum = core_checksum(p, big);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_dlsn d[3];
    core_write_sync_n(w, 1, 100, 1, 0, 1, &d[0]);
    CORE_ASSERT_OK(core_write1(w, p, big, 2, &d[1]));
    core_write_sync_n(w, 1, 100, 1, 2, 3, &d[2]);
    CORE_ASSERT_DLSN_LT(d[0], d[1]);
    CORE_ASSERT_DLSN_LT(d[1], d[2]);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct dlog_record rec;
    ck_assert_int_eq(dlog_read_next(r, &rec, 10000), 1);
    ck_assert(core_payload_ok(rec.payload, rec.len, 1, 0));
    ck_assert_int_eq(dlog_read_next(r, &rec, 30000), 1);
    ck_assert_uint_eq(rec.len, big);
    ck_assert_uint_eq(rec.txid, 2);
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d[1]);
    ck_assert_msg(memcmp(rec.payload, p, big) == 0, "64 MiB payload differs");
    ck_assert_uint_eq(core_checksum(rec.payload, rec.len), sum);
    ck_assert_int_eq(dlog_read_next(r, &rec, 10000), 1);
    ck_assert_uint_eq(rec.len, 100);
    ck_assert(core_payload_ok(rec.payload, rec.len, 1, 2));
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d[2]);
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    dlog_reader_close(r);

    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->records, 3);
    ck_assert_uint_ge(info->bytes, big);
    dlog_stream_info_free(info);
    CORE_ASSERT_OK(dlog_writer_close(w));
    free(p);
    core_env_close(&e);
}
END_TEST

START_TEST(test_sizes_around_entry_limit)
{
    struct core_env e;
    char name[128];
    const size_t sizes[] = {
        100,     MiB - 4096, 7,   MiB - 64,     MiB - 1,     MiB, 1,
        MiB + 1, MiB + 4096, 100, 2 * MiB + 17, 3 * MiB - 1, 50,
    };
    enum { N = sizeof sizes / sizeof sizes[0] };
    struct dlog_dlsn d[N];
    setup(&e, name, "around1m", 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    for (size_t i = 0; i < N; i++) {
        uint8_t *p = make_payload(sizes[i], 2, i);
        int rv = core_write1(w, p, sizes[i], i + 1, &d[i]);
        ck_assert_msg(rv == 0, "write of %zu bytes: %s: %s", sizes[i], dlog_errname(rv),
                      dlog_writer_errmsg(w));
        if (i > 0)
            CORE_ASSERT_DLSN_LT(d[i - 1], d[i]);
        free(p);
    }
    /* Read back with a small fetch size: fragments span several fetches. */
    struct dlog_reader_options o;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&o);
    o.fetch_bytes = 64 * 1024;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    for (size_t i = 0; i < N; i++) {
        struct dlog_record rec;
        int rv = dlog_read_next(r, &rec, 10000);
        ck_assert_msg(rv == 1, "record %zu: %s: %s", i, dlog_errname(rv),
                      dlog_reader_errmsg(r));
        ck_assert_msg(rec.len == sizes[i], "record %zu: %zu bytes, wrote %zu", i, rec.len,
                      sizes[i]);
        ck_assert_msg(core_payload_ok(rec.payload, rec.len, 2, i), "record %zu damaged",
                      i);
        CORE_ASSERT_DLSN_EQ(rec.dlsn, d[i]);
        ck_assert_uint_eq(rec.txid, i + 1);
    }
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

static void noop_cb(struct dlog_write_req *req, int status)
{
    int *called = req->data;
    *called = 1;
}

START_TEST(test_too_big)
{
    struct core_env e;
    char name[128];
    setup(&e, name, "toobig", 2 * MiB);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    uint8_t *p = make_payload(2 * MiB + 1, 3, 0);
    CORE_ASSERT_OK(core_write1(w, p, 2 * MiB, 1, NULL)); /* the limit itself */
    CORE_ASSERT_ERR(core_write1(w, p, 2 * MiB + 1, 2, NULL), DLOG_ETOOBIG);
    ck_assert_str_ne(dlog_writer_errmsg(w), "");
    struct dlog_write_req req;
    int called = 0;
    memset(&req, 0, sizeof req);
    req.data = &called;
    struct dlog_record rec = {.payload = p, .len = 2 * MiB + 1, .txid = 2};
    CORE_ASSERT_ERR(dlog_write(w, &req, &rec, 1, noop_cb), DLOG_ETOOBIG);
    /* One oversize record refuses the whole write. */
    struct dlog_record two[2] = {{.payload = p, .len = 10, .txid = 3},
                                 {.payload = p, .len = 2 * MiB + 1, .txid = 4}};
    CORE_ASSERT_ERR(dlog_write_sync(w, two, 2, NULL), DLOG_ETOOBIG);
    CORE_ASSERT_OK(core_write1(w, p, 10, 5, NULL));
    CORE_ASSERT_OK(dlog_writer_flush(w));
    ck_assert(!called);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    ck_assert_int_ge(core_read_recs(r, 0, 10000, &recs, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_uint_eq(recs[0].len, 2 * MiB);
    ck_assert(core_payload_ok(recs[0].payload, recs[0].len, 3, 0));
    ck_assert_uint_eq(recs[1].len, 10);
    ck_assert_uint_eq(recs[1].txid, 5);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    free(p);
    core_env_close(&e);
}
END_TEST

START_TEST(test_too_big_default)
{
    struct core_env e;
    char name[128];
    setup(&e, name, "toobigdef", 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    size_t len = DLOG_RECORD_MAX_DEFAULT + 1;
    uint8_t *p =
        calloc(1, (size_t)DLOG_RECORD_MAX_LIMIT + 1); /* untouched: costs nothing */
    ck_assert_ptr_nonnull(p);
    CORE_ASSERT_ERR(core_write1(w, p, len, 1, NULL), DLOG_ETOOBIG);
    CORE_ASSERT_ERR(core_write1(w, p, (size_t)DLOG_RECORD_MAX_LIMIT + 1, 1, NULL),
                    DLOG_ETOOBIG);
    free(p);
    struct dlog_dlsn d;
    CORE_ASSERT_ERR(dlog_stream_last_dlsn(e.ns, name, &d), DLOG_EEOF);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

/* A reader tailing while a large record is written never sees part of it. */
struct big_tail {
    struct dlog_reader *r;
    int rv;
    size_t lens[3];
    int ok[3];
};

static void *big_tail_main(void *arg)
{
    struct big_tail *t = arg;
    for (int i = 0; i < 3; i++) {
        struct dlog_record rec;
        int rv = dlog_read_next(t->r, &rec, 20000);
        if (rv != 1) {
            t->rv = rv;
            return NULL;
        }
        t->lens[i] = rec.len;
        t->ok[i] = core_payload_ok(rec.payload, rec.len, 4, (uint64_t)i);
    }
    return NULL;
}

START_TEST(test_tailing_reader_sees_whole)
{
    struct core_env e;
    char name[128];
    const size_t big = 12 * MiB + 5;
    setup(&e, name, "bigtail", 0);
    struct dlog_reader_options o;
    struct big_tail t;
    memset(&t, 0, sizeof t);
    dlog_reader_options_init(&o);
    o.fetch_bytes = 256 * 1024;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &t.r));
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, big_tail_main, &t), 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    uint8_t *p = make_payload(big, 4, 1);
    core_write_sync_n(w, 1, 10, 4, 0, 1, NULL);
    CORE_ASSERT_OK(core_write1(w, p, big, 2, NULL));
    core_write_sync_n(w, 1, 10, 4, 2, 3, NULL);
    pthread_join(th, NULL);
    ck_assert_msg(t.rv == 0, "tailing reader: %s", dlog_errname(t.rv));
    ck_assert_uint_eq(t.lens[0], 10);
    ck_assert_uint_eq(t.lens[1], big);
    ck_assert_uint_eq(t.lens[2], 10);
    ck_assert(t.ok[0] && t.ok[1] && t.ok[2]);
    dlog_reader_close(t.r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    free(p);
    core_env_close(&e);
}
END_TEST

START_TEST(test_start_inside_fragments)
{
    struct core_env e;
    char name[128];
    const size_t big = 3 * MiB + 100;
    struct dlog_dlsn d[3];
    setup(&e, name, "bigstart", 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    uint8_t *p = make_payload(big, 5, 1);
    core_write_sync_n(w, 1, 10, 5, 0, 1, &d[0]);
    CORE_ASSERT_OK(core_write1(w, p, big, 2, &d[1]));
    core_write_sync_n(w, 1, 10, 5, 2, 3, &d[2]);
    /* The large record took several entries. */
    ck_assert_uint_eq(d[2].seg, d[1].seg);
    ck_assert_uint_ge(d[2].entry, d[1].entry + 4);

    /* Starting inside the fragments gives the next whole record, not a piece. */
    struct dlog_dlsn inside = {d[1].seg, d[1].entry + 1, 0};
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_DLSN, inside, 0);
    struct dlog_record rec;
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_msg(rec.len == 10 && core_payload_ok(rec.payload, rec.len, 5, 2),
                  "read a %zu-byte record at " CORE_DLSN_FMT
                  " from inside a large record",
                  rec.len, CORE_DLSN_ARGS(rec.dlsn));
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d[2]);
    dlog_reader_close(r);

    /* At the large record's own DLSN: the whole record. */
    r = core_reader(e.ns, name, DLOG_START_DLSN, d[1], 0);
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_uint_eq(rec.len, big);
    ck_assert(core_payload_ok(rec.payload, rec.len, 5, 1));
    dlog_reader_close(r);

    /* By txid, too. */
    r = core_reader(e.ns, name, DLOG_START_TXID, DLOG_DLSN_HEAD, 2);
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_uint_eq(rec.len, big);
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d[1]);
    dlog_reader_close(r);

    /* end at the large record: it is returned whole, then DLOG_EEOF. */
    struct dlog_reader_options o;
    dlog_reader_options_init(&o);
    o.end = d[1];
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_uint_eq(rec.len, 10);
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_uint_eq(rec.len, big);
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 100), DLOG_EEOF);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    free(p);
    core_env_close(&e);
}
END_TEST

START_TEST(test_large_in_multi_record_write)
{
    struct core_env e;
    char name[128];
    const size_t sizes[4] = {20, MiB + MiB / 2, 30, 2 * MiB + 3};
    uint8_t *bufs[4];
    struct dlog_record recs[4];
    setup(&e, name, "bigmulti", 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < 4; i++) {
        bufs[i] = make_payload(sizes[i], 6, (uint64_t)i);
        recs[i].payload = bufs[i];
        recs[i].len = sizes[i];
        recs[i].txid = 10 + (uint64_t)i;
    }
    struct dlog_dlsn first;
    CORE_ASSERT_OK(dlog_write_sync(w, recs, 4, &first));
    core_write_n(w, 30, 300 * 1024, 7, 0, 20, NULL); /* batches above one entry */

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *got = core_read_exact(r, 34, 20000);
    CORE_ASSERT_DLSN_EQ(got[0].dlsn, first);
    for (int i = 0; i < 4; i++) {
        ck_assert_uint_eq(got[i].len, sizes[i]);
        ck_assert(core_payload_ok(got[i].payload, got[i].len, 6, (uint64_t)i));
        ck_assert_uint_eq(got[i].txid, 10 + (uint64_t)i);
        if (i > 0)
            CORE_ASSERT_DLSN_LT(got[i - 1].dlsn, got[i].dlsn);
    }
    core_check_recs(got + 4, 30, 300 * 1024, 7, 0, NULL);
    core_recs_free(got, 34);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    for (int i = 0; i < 4; i++)
        free(bufs[i]);
    core_env_close(&e);
}
END_TEST

Suite *large_suite(void)
{
    Suite *s = suite_create("large");
    TCase *tc = core_tcase("large", CORE_TIMEOUT);
    tcase_add_test(tc, test_sizes_around_entry_limit);
    tcase_add_test(tc, test_too_big);
    tcase_add_test(tc, test_too_big_default);
    tcase_add_test(tc, test_tailing_reader_sees_whole);
    tcase_add_test(tc, test_start_inside_fragments);
    tcase_add_test(tc, test_large_in_multi_record_write);
    suite_add_tcase(s, tc);
    tc = core_tcase("huge", 180);
    tcase_add_test(tc, test_64mib_round_trip);
    suite_add_tcase(s, tc);
    return s;
}
