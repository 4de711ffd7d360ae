/*
 * Limits and quotas through the public API (docs/rate-limiting.md): limits
 * are stored and read back, bad limits change nothing, and the data-size
 * quota stops writes within one entry of it, with DLOG_EQUOTA, until a
 * truncation frees room (or truncates by itself under the truncate policy).
 * Rates are enforced by the proxy: tests/integration/ratelimit-test.sh.
 */
#include <stdio.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

#define REC_LEN 100

static void limits_eq(const struct dlog_limits *a, const struct dlog_limits *b)
{
    ck_assert_uint_eq(a->records_per_sec, b->records_per_sec);
    ck_assert_uint_eq(a->bytes_per_sec, b->bytes_per_sec);
    ck_assert_uint_eq(a->soft_records_per_sec, b->soft_records_per_sec);
    ck_assert_uint_eq(a->soft_bytes_per_sec, b->soft_bytes_per_sec);
    ck_assert_uint_eq(a->burst_ms, b->burst_ms);
    ck_assert_uint_eq(a->max_wait_ms, b->max_wait_ms);
    ck_assert_uint_eq(a->quota_bytes, b->quota_bytes);
    ck_assert_uint_eq(a->quota_policy, b->quota_policy);
}

START_TEST(test_limits_set_get)
{
    struct core_env e;
    char name[128];
    struct dlog_limits l, got;
    struct dlog_stream_config cfg = core_cfg();

    core_env_open(&e, NULL);
    core_stream_name(name, "limits");
    /* Set at create. */
    cfg.limits.records_per_sec = 5000;
    cfg.limits.bytes_per_sec = 10 << 20;
    cfg.limits.quota_bytes = 1 << 30;
    core_create(e.ns, name, &cfg);
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, name, &got));
    limits_eq(&got, &cfg.limits);

    /* Changed at run time; describe shows the new ones. */
    dlog_limits_init(&l);
    l.records_per_sec = 100;
    l.soft_records_per_sec = 80;
    l.bytes_per_sec = 1 << 20;
    l.soft_bytes_per_sec = 1 << 19;
    l.burst_ms = 50;
    l.max_wait_ms = 20;
    l.quota_bytes = 12345;
    l.quota_policy = DLOG_QUOTA_TRUNCATE;
    CORE_NS_OK(e.ns, dlog_limits_set(e.ns, name, &l));
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, name, &got));
    limits_eq(&got, &l);
    struct dlog_stream_info *info;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    limits_eq(&info->config.limits, &l);
    dlog_stream_info_free(info);

    /* Bad limits are refused and change nothing. */
    struct dlog_limits bad = l;
    bad.soft_records_per_sec = 200; /* above the hard level */
    CORE_ASSERT_ERR(dlog_limits_set(e.ns, name, &bad), DLOG_EINVAL);
    ck_assert_str_ne(dlog_errmsg(e.ns), "");
    bad = l;
    bad.quota_policy = 7;
    CORE_ASSERT_ERR(dlog_limits_set(e.ns, name, &bad), DLOG_EINVAL);
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, name, &got));
    limits_eq(&got, &l);
    CORE_ASSERT_ERR(dlog_limits_set(e.ns, "t/no-such-stream", &l), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_limits_get(e.ns, "bad..name", &got), DLOG_ENAME);
    cfg.limits.soft_bytes_per_sec = cfg.limits.bytes_per_sec + 1;
    core_stream_name(name, "limits-bad");
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, &cfg), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_limits_get(e.ns, name, &got), DLOG_ENOTFOUND);

    /* The namespace's limits: none until set (a server's namespace is shared
     * by every test, and is put back as it was). */
    int fresh = core_backend_is_mem() || core_backend_is_file();
    struct dlog_limits before;
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, NULL, &before));
    if (fresh) {
        ck_assert_uint_eq(before.records_per_sec, 0);
        ck_assert_uint_eq(before.quota_bytes, 0);
    }
    dlog_limits_init(&l);
    l.bytes_per_sec = 3 << 20;
    l.quota_bytes = 5ULL << 30;
    CORE_NS_OK(e.ns, dlog_limits_set(e.ns, NULL, &l));
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, NULL, &got));
    limits_eq(&got, &l);

    /* Stats: the limits and the bytes retained. */
    struct dlog_limit_stats *st;
    CORE_NS_OK(e.ns, dlog_limits_stats(e.ns, NULL, &st));
    limits_eq(&st->limits, &l);
    if (fresh)
        ck_assert_uint_eq(st->used_bytes, 0);
    dlog_limit_stats_free(st);
    CORE_NS_OK(e.ns, dlog_limits_set(e.ns, NULL, &before));
    core_env_close(&e);
}
END_TEST

/* Writes one record at a time until the first error; returns it and counts. */
static int write_until_error(struct dlog_writer *w, uint64_t *txid, size_t *ok,
                             size_t max)
{
    char buf[REC_LEN];
    int rv = 0;

    for (*ok = 0; *ok < max; (*ok)++) {
        core_payload(buf, sizeof buf, 77, *txid);
        rv = core_write1(w, buf, sizeof buf, *txid, NULL);
        if (rv != 0)
            return rv;
        (*txid)++;
    }
    return 0;
}

static uint64_t used_bytes(struct dlog_ns *ns, const char *name)
{
    struct dlog_limit_stats *st;
    CORE_NS_OK(ns, dlog_limits_stats(ns, name, &st));
    uint64_t u = st->used_bytes;
    dlog_limit_stats_free(st);
    return u;
}

START_TEST(test_quota_reject)
{
    struct core_env e;
    char name[128];
    struct dlog_stream_config cfg = core_cfg();
    struct dlog_writer *w;
    uint64_t txid = 1, quota = 64 * 1024;
    size_t ok, total = 0;

    core_env_open(&e, NULL);
    core_stream_name(name, "quota");
    cfg.segment_max_bytes = 8 * 1024; /* several segments, so truncation frees room */
    cfg.limits.quota_bytes = quota;
    core_create(e.ns, name, &cfg);
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);

    int rv = write_until_error(w, &txid, &ok, 100000);
    total += ok;
    ck_assert_msg(rv == DLOG_EQUOTA, "expected DLOG_EQUOTA, got %s", dlog_errname(rv));
    ck_assert_str_ne(dlog_writer_errmsg(w), "");
    /* Stopped at the quota, within one entry. */
    uint64_t used = used_bytes(e.ns, name);
    ck_assert_uint_le(used, quota);
    ck_assert_uint_ge(used + 2 * (REC_LEN + 64), quota);
    /* Refused again; the writer is not broken, just full. */
    CORE_ASSERT_ERR(write_until_error(w, &txid, &ok, 10), DLOG_EQUOTA);
    ck_assert_uint_eq(ok, 0);

    /* Truncation frees room: writes go on. */
    struct dlog_dlsn last;
    CORE_NS_OK(e.ns, dlog_stream_last_dlsn(e.ns, name, &last));
    CORE_NS_OK(e.ns, dlog_stream_truncate(e.ns, name, last));
    ck_assert_uint_lt(used_bytes(e.ns, name), quota / 2);
    rv = write_until_error(w, &txid, &ok, 100000);
    ck_assert_int_eq(rv, DLOG_EQUOTA);
    ck_assert_uint_gt(ok, 100);
    total += ok;

    /* A bigger quota at run time lets the writer on. */
    struct dlog_limits l;
    CORE_NS_OK(e.ns, dlog_limits_get(e.ns, name, &l));
    l.quota_bytes = 2 * quota;
    CORE_NS_OK(e.ns, dlog_limits_set(e.ns, name, &l));
    rv = write_until_error(w, &txid, &ok, 100000);
    ck_assert_int_eq(rv, DLOG_EQUOTA);
    ck_assert_uint_gt(ok, 100);
    total += ok;
    ck_assert_uint_le(used_bytes(e.ns, name), 2 * quota);
    CORE_NS_OK(e.ns, dlog_writer_close(w));

    /* Every acknowledged record is there: the last one is the last written. */
    uint64_t last_txid;
    CORE_NS_OK(e.ns, dlog_stream_last_txid(e.ns, name, &last_txid));
    ck_assert_uint_eq(last_txid, txid - 1);
    ck_assert_uint_eq(total, txid - 1);
    core_env_close(&e);
}
END_TEST

START_TEST(test_quota_truncate_policy)
{
    struct core_env e;
    char name[128];
    struct dlog_stream_config cfg = core_cfg();
    struct dlog_writer *w;
    uint64_t txid = 1, quota = 32 * 1024;
    size_t ok;

    core_env_open(&e, NULL);
    core_stream_name(name, "quota-trunc");
    cfg.segment_max_bytes = 4 * 1024;
    cfg.limits.quota_bytes = quota;
    cfg.limits.quota_policy = DLOG_QUOTA_TRUNCATE;
    core_create(e.ns, name, &cfg);
    w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    /* Ten times the quota: never refused, old segments go instead. */
    CORE_NS_OK(e.ns, write_until_error(w, &txid, &ok, 10 * quota / REC_LEN));
    CORE_NS_OK(e.ns, dlog_writer_flush(w));
    ck_assert_uint_le(used_bytes(e.ns, name), quota);
    struct dlog_dlsn first;
    CORE_NS_OK(e.ns, dlog_stream_first_dlsn(e.ns, name, &first));
    ck_assert_uint_gt(first.seg, 1); /* the first segments were deleted */
    CORE_NS_OK(e.ns, dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_quota_namespace)
{
    struct core_env e;
    char a[128], b[128];
    struct dlog_writer *wa, *wb;
    struct dlog_limits l;
    uint64_t ta = 1, tb = 1, quota = 48 * 1024;
    size_t oka, okb;

    CORE_REQUIRE(core_backend_is_mem() || core_backend_is_file(),
                 "the namespace of a server is shared by every test");
    core_env_open(&e, NULL);
    core_stream_name(a, "nsq-a");
    core_stream_name(b, "nsq-b");
    core_create(e.ns, a, NULL);
    core_create(e.ns, b, NULL);
    dlog_limits_init(&l);
    l.quota_bytes = quota;
    CORE_NS_OK(e.ns, dlog_limits_set(e.ns, NULL, &l));
    wa = core_writer(e.ns, a, DLOG_WRITER_SHARED);
    wb = core_writer(e.ns, b, DLOG_WRITER_SHARED);
    /* Half the quota in a, then b fills the rest. */
    CORE_NS_OK(e.ns, write_until_error(wa, &ta, &oka, quota / 2 / (REC_LEN + 16)));
    CORE_NS_OK(e.ns, dlog_writer_close(wa));
    CORE_ASSERT_ERR(write_until_error(wb, &tb, &okb, 100000), DLOG_EQUOTA);
    ck_assert_uint_gt(okb, 10);
    uint64_t used = used_bytes(e.ns, NULL);
    ck_assert_uint_le(used, quota);
    ck_assert_uint_ge(used + 2 * (REC_LEN + 64), quota);
    /* a is full too now: a writer reads the usage when it opens (and every
     * second after, so writers of other streams may overshoot by a second's
     * writes; see quota.h). */
    wa = core_writer(e.ns, a, DLOG_WRITER_SHARED);
    CORE_ASSERT_ERR(write_until_error(wa, &ta, &oka, 100000), DLOG_EQUOTA);
    ck_assert_uint_eq(oka, 0);
    ck_assert_uint_le(used_bytes(e.ns, NULL), quota);
    CORE_NS_OK(e.ns, dlog_writer_close(wa));
    CORE_NS_OK(e.ns, dlog_writer_close(wb));
    core_env_close(&e);
}
END_TEST

Suite *limits_suite(void)
{
    Suite *s = suite_create("limits");
    TCase *tc = tcase_create("limits");

    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_limits_set_get);
    tcase_add_test(tc, test_quota_reject);
    tcase_add_test(tc, test_quota_truncate_policy);
    tcase_add_test(tc, test_quota_namespace);
    suite_add_tcase(s, tc);
    return s;
}
