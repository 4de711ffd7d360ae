/*
 * Truncation and retention (DESIGN.md invariant 6): only positions below the
 * truncation point go; reading below it gives DLOG_ETRUNCATED, never wrong
 * data; whole sealed segments below it are deleted.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "core_suites.h"
#include "core_util.h"

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

static void setup(struct core_env *e, char *name, const char *tag,
                  const struct dlog_stream_config *cfg)
{
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, cfg);
}

/*
 * Opens a reader at d and reads: asserts DLOG_ETRUNCATED comes from the open
 * or from the first read, and that no record is returned.
 */
static void expect_truncated(struct dlog_ns *ns, const char *name, int start,
                             struct dlog_dlsn d, uint64_t txid)
{
    struct dlog_reader_options o;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&o);
    o.start = start;
    o.start_dlsn = d;
    o.start_txid = txid;
    int rv = dlog_reader_open(ns, name, &o, &r);
    if (rv == 0) {
        struct dlog_record rec;
        rv = dlog_read_next(r, &rec, 1000);
        if (rv == 1)
            ck_abort_msg("read a record (" CORE_DLSN_FMT ") from " CORE_DLSN_FMT
                         ", below the truncation point",
                         CORE_DLSN_ARGS(rec.dlsn), CORE_DLSN_ARGS(d));
        ck_assert_str_ne(dlog_reader_errmsg(r), "");
        dlog_reader_close(r);
    }
    ck_assert_msg(rv == DLOG_ETRUNCATED,
                  "reading from " CORE_DLSN_FMT ": %s, expected "
                  "DLOG_ETRUNCATED",
                  CORE_DLSN_ARGS(d), dlog_errname(rv));
}

static struct dlog_stream_info *describe(struct dlog_ns *ns, const char *name)
{
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(ns, dlog_stream_describe(ns, name, &info));
    return info;
}

/* Reads from start to the end; asserts they are records [first, last] of tag. */
static void expect_suffix(struct dlog_ns *ns, const char *name, int start,
                          struct dlog_dlsn d, size_t len, uint64_t tag, size_t first,
                          size_t last, const struct dlog_dlsn *acks)
{
    struct dlog_reader *r = core_reader(ns, name, start, d, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, 0, 10000, &recs, &n);
    ck_assert_msg(rv >= 0, "read: %s: %s", dlog_errname(rv), dlog_reader_errmsg(r));
    ck_assert_msg(n == last - first + 1, "read %zu records, expected %zu..%zu", n, first,
                  last);
    core_check_recs(recs, n, len, tag, first, acks + first);
    core_recs_free(recs, n);
    dlog_reader_close(r);
}

START_TEST(test_truncate)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[60];
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 10;
    setup(&e, name, "trunc", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 50, 64, 1, 0, 1, acks); /* one entry each: 10 per segment */
    struct dlog_stream_info *info = describe(e.ns, name);
    size_t before = info->nsegments;
    ck_assert_uint_ge(before, 5);
    dlog_stream_info_free(info);

    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, acks[25]));
    info = describe(e.ns, name);
    CORE_ASSERT_DLSN_EQ(info->truncated, acks[25]);
    CORE_ASSERT_DLSN_EQ(info->first, acks[25]);
    CORE_ASSERT_DLSN_EQ(info->last, acks[49]);
    /* Whole segments below the point are gone; the one holding it is kept. */
    ck_assert_uint_lt(info->nsegments, before);
    for (size_t i = 0; i < info->nsegments; i++) {
        const struct dlog_segment_info *g = &info->segments[i];
        if (g->records > 0)
            ck_assert_msg(dlog_dlsn_cmp(g->last, acks[25]) >= 0,
                          "segment %llu lies wholly below the truncation point",
                          (unsigned long long)g->seq);
    }
    ck_assert_uint_eq(info->segments[0].seq, acks[25].seg);
    ck_assert_uint_ge(info->records, 25);
    ck_assert_uint_le(info->records, 30);
    dlog_stream_info_free(info);
    struct dlog_dlsn first;
    CORE_NS_OK(e.ns, dlog_stream_first_dlsn(e.ns, name, &first));
    CORE_ASSERT_DLSN_EQ(first, acks[25]);

    /* Below the point: in deleted segments and in the kept one. */
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[0], 0);
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[15], 0);
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[24], 0);
    /* At and above it: intact. HEAD starts at the first record not truncated. */
    expect_suffix(e.ns, name, DLOG_START_DLSN, acks[25], 64, 1, 25, 49, acks);
    expect_suffix(e.ns, name, DLOG_START_DLSN, acks[40], 64, 1, 40, 49, acks);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 64, 1, 25, 49, acks);

    /* Lower points are no-ops. */
    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, acks[10]));
    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, DLOG_DLSN_HEAD));
    info = describe(e.ns, name);
    CORE_ASSERT_DLSN_EQ(info->truncated, acks[25]);
    dlog_stream_info_free(info);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 64, 1, 25, 49, acks);

    /* Writes go on; a further truncation moves the point. */
    core_write_n(w, 10, 64, 1, 50, 51, acks + 50);
    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, acks[47]));
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[30], 0);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 64, 1, 47, 59, acks);
    CORE_ASSERT_OK(dlog_writer_close(w));

    if (core_backend_durable()) {
        core_env_reopen(&e);
        info = describe(e.ns, name);
        CORE_ASSERT_DLSN_EQ(info->truncated, acks[47]);
        dlog_stream_info_free(info);
        expect_truncated(e.ns, name, DLOG_START_DLSN, acks[46], 0);
        expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 64, 1, 47, 59, acks);
    }
    core_env_close(&e);
}
END_TEST

START_TEST(test_truncate_inside_open_segment)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[8];
    setup(&e, name, "truncopen", NULL); /* one segment, never rolled */
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 8, 30, 2, 0, 1, acks);
    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, acks[7]));
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[3], 0);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 30, 2, 7, 7, acks);
    /* The open segment keeps taking writes. */
    core_write_sync_n(w, 1, 30, 2, 8, 9, NULL);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_DLSN, acks[7], 0);
    struct core_rec *recs = core_read_exact(r, 2, 5000);
    core_check_recs(recs, 2, 30, 2, 7, NULL);
    core_recs_free(recs, 2);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_retention_bytes)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[50];
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 5;
    cfg.retention_bytes = 5000;
    setup(&e, name, "retbytes", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 50, 200, 3, 0, 1, acks);
    CORE_ASSERT_OK(dlog_writer_close(w));
    int n = dlog_stream_apply_retention(e.ns, name);
    ck_assert_msg(n >= 0, "apply_retention: %s", dlog_errname(n));

    struct dlog_stream_info *info = describe(e.ns, name);
    ck_assert_msg(info->bytes <= cfg.retention_bytes || info->nsegments == 1,
                  "%llu bytes kept in %zu segments, retention_bytes %llu",
                  (unsigned long long)info->bytes, info->nsegments,
                  (unsigned long long)cfg.retention_bytes);
    ck_assert_uint_ge(info->nsegments, 1);
    /* Whole segments, oldest first, and no more than needed. */
    uint64_t seg_bytes = info->segments[0].bytes;
    ck_assert_uint_gt(info->bytes + seg_bytes, cfg.retention_bytes);
    ck_assert_uint_gt(info->segments[0].seq, acks[0].seg);
    CORE_ASSERT_DLSN_EQ(info->last, acks[49]);
    struct dlog_dlsn first = info->first;
    dlog_stream_info_free(info);

    /* What is left is a suffix of the stream; before it is truncated. */
    size_t k = 0;
    while (k < 50 && dlog_dlsn_cmp(acks[k], first) != 0)
        k++;
    ck_assert_msg(k < 50, "first DLSN " CORE_DLSN_FMT " was never written",
                  CORE_DLSN_ARGS(first));
    ck_assert_uint_gt(k, 0);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 200, 3, k, 49, acks);
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[0], 0);
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[k - 1], 0);
    /* Applying again deletes nothing more. */
    ck_assert_int_eq(dlog_stream_apply_retention(e.ns, name), 0);
    core_env_close(&e);
}
END_TEST

struct age_wait {
    struct dlog_ns *ns;
    const char *name;
    int deleted;
    int err;
};

/* Applies retention; true once no sealed segment is left. */
static int sealed_gone(void *arg)
{
    struct age_wait *a = arg;
    int n = dlog_stream_apply_retention(a->ns, a->name);
    if (n < 0) {
        a->err = n;
        return 1;
    }
    a->deleted += n;
    struct dlog_stream_info *info = NULL;
    if (dlog_stream_describe(a->ns, a->name, &info) != 0)
        return 1;
    int sealed = 0;
    for (size_t i = 0; i < info->nsegments; i++)
        sealed += info->segments[i].state == DLOG_SEGMENT_SEALED;
    dlog_stream_info_free(info);
    return sealed == 0;
}

START_TEST(test_retention_age)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[22];
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 5;
    cfg.retention_age_ms = 400;
    setup(&e, name, "retage", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 22, 50, 4, 0, 1, acks);
    CORE_ASSERT_OK(dlog_writer_close(w));

    /* Segments younger than the age survive an apply. */
    struct dlog_stream_info *pre = describe(e.ns, name);
    int n = dlog_stream_apply_retention(e.ns, name);
    uint64_t after = wall_ms();
    ck_assert_int_ge(n, 0);
    struct dlog_stream_info *post = describe(e.ns, name);
    for (size_t i = 0; i < pre->nsegments; i++) {
        const struct dlog_segment_info *g = &pre->segments[i];
        if (g->state != DLOG_SEGMENT_SEALED ||
            g->sealed_ms + cfg.retention_age_ms <= after)
            continue;
        int kept = 0;
        for (size_t j = 0; j < post->nsegments; j++)
            kept |= post->segments[j].seq == g->seq;
        ck_assert_msg(kept, "segment %llu, sealed %llu ms ago, was deleted by age",
                      (unsigned long long)g->seq,
                      (unsigned long long)(after - g->sealed_ms));
    }
    dlog_stream_info_free(pre);
    dlog_stream_info_free(post);

    /* Once old enough they all go, by apply_retention (nothing rolls any more). */
    struct age_wait a = {e.ns, name, n, 0};
    ck_assert_msg(core_wait_until(sealed_gone, &a, 10000),
                  "sealed segments older than retention_age_ms are still there");
    ck_assert_msg(a.err == 0, "apply_retention: %s", dlog_errname(a.err));
    ck_assert_int_ge(a.deleted, 1);

    /* The open segment's records (if any) are intact; older ones are truncated. */
    struct dlog_stream_info *info = describe(e.ns, name);
    ck_assert_uint_ge(info->nsegments, 1);
    int has_records = info->records > 0;
    struct dlog_dlsn first = info->first;
    dlog_stream_info_free(info);
    expect_truncated(e.ns, name, DLOG_START_DLSN, acks[0], 0);
    if (has_records) {
        size_t k = 0;
        while (k < 22 && dlog_dlsn_cmp(acks[k], first) != 0)
            k++;
        ck_assert_uint_lt(k, 22);
        ck_assert_uint_ge(k, 15);
        expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 50, 4, k, 21, acks);
    }
    core_env_close(&e);
}
END_TEST

START_TEST(test_no_retention_keeps_all)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[20];
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 4;
    setup(&e, name, "retnone", &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_n(w, 20, 50, 5, 0, 1, acks);
    CORE_ASSERT_OK(dlog_writer_close(w));
    ck_assert_int_eq(dlog_stream_apply_retention(e.ns, name), 0);
    expect_suffix(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 50, 5, 0, 19, acks);
    core_env_close(&e);
}
END_TEST

Suite *truncate_suite(void)
{
    Suite *s = suite_create("truncate");
    TCase *tc = core_tcase("truncate", CORE_TIMEOUT);
    tcase_add_test(tc, test_truncate);
    tcase_add_test(tc, test_truncate_inside_open_segment);
    suite_add_tcase(s, tc);
    tc = core_tcase("retention", CORE_TIMEOUT);
    tcase_add_test(tc, test_retention_bytes);
    tcase_add_test(tc, test_retention_age);
    tcase_add_test(tc, test_no_retention_keeps_all);
    suite_add_tcase(s, tc);
    return s;
}
