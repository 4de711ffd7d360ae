/* DLSN: compare, format, parse (backend-independent, runs on every URI anyway). */
#include <stdio.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

static struct dlog_dlsn D(uint64_t seg, uint64_t entry, uint32_t slot) {
    struct dlog_dlsn d = {seg, entry, slot};
    return d;
}

START_TEST(test_cmp_order)
{
    /* Ordered by segment, then entry, then slot. */
    struct dlog_dlsn v[] = {
        D(0, 0, 0),          D(0, 0, 1),
        D(0, 1, 0),          D(1, 0, 0),
        D(1, 0, 1),          D(1, 0, UINT32_MAX),
        D(1, 1, 0),          D(1, UINT64_MAX, 0),
        D(2, 0, 0),          D(UINT64_MAX - 1, UINT64_MAX, UINT32_MAX),
        D(UINT64_MAX, 0, 0), D(UINT64_MAX, UINT64_MAX, UINT32_MAX),
    };
    size_t n = sizeof v / sizeof v[0];
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            int c = dlog_dlsn_cmp(v[i], v[j]);
            if (i < j)
                ck_assert_msg(c < 0, "cmp(#%zu, #%zu) = %d, expected < 0", i, j, c);
            else if (i > j)
                ck_assert_msg(c > 0, "cmp(#%zu, #%zu) = %d, expected > 0", i, j, c);
            else
                ck_assert_int_eq(c, 0);
        }
}
END_TEST

START_TEST(test_cmp_head_max)
{
    ck_assert_int_eq(dlog_dlsn_cmp(DLOG_DLSN_HEAD, D(0, 0, 0)), 0);
    ck_assert_int_lt(dlog_dlsn_cmp(DLOG_DLSN_HEAD, D(1, 0, 0)), 0);
    ck_assert_int_gt(dlog_dlsn_cmp(DLOG_DLSN_MAX, D(UINT64_MAX, UINT64_MAX, 0)), 0);
    ck_assert_int_eq(dlog_dlsn_cmp(DLOG_DLSN_MAX, DLOG_DLSN_MAX), 0);
    /* Differences that overflow a naive subtraction. */
    ck_assert_int_gt(dlog_dlsn_cmp(D(UINT64_MAX, 0, 0), D(0, 0, 0)), 0);
    ck_assert_int_lt(dlog_dlsn_cmp(D(0, 0, 0), D(0, 0, UINT32_MAX)), 0);
    ck_assert_int_gt(dlog_dlsn_cmp(D(5, UINT64_MAX, 0), D(5, 1, 0)), 0);
}
END_TEST

START_TEST(test_format)
{
    char buf[DLOG_DLSN_STRLEN];
    ck_assert_ptr_eq(dlog_dlsn_format(D(1, 2, 3), buf, sizeof buf), buf);
    ck_assert_str_eq(buf, "1/2/3");
    dlog_dlsn_format(DLOG_DLSN_HEAD, buf, sizeof buf);
    ck_assert_str_eq(buf, "0/0/0");
    dlog_dlsn_format(DLOG_DLSN_MAX, buf, sizeof buf);
    ck_assert_str_eq(buf, "18446744073709551615/18446744073709551615/4294967295");
    /* A short buffer is truncated and still terminated. */
    char small[6];
    memset(small, 'x', sizeof small);
    dlog_dlsn_format(D(123, 456, 789), small, sizeof small);
    ck_assert_int_eq(small[5], '\0');
    ck_assert_int_eq(strncmp(small, "123/4", 5), 0);
}
END_TEST

static uint64_t next_rand(uint64_t *s)
{
    uint64_t x = (*s += 0x9E3779B97F4A7C15ULL);
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

START_TEST(test_parse_round_trip)
{
    uint64_t s = 42;
    char buf[DLOG_DLSN_STRLEN];
    struct dlog_dlsn fixed[] = {DLOG_DLSN_HEAD, DLOG_DLSN_MAX, D(1, 0, 0),
                                D(7, 0, UINT32_MAX)};
    for (size_t i = 0; i < 4 + 2000; i++) {
        struct dlog_dlsn d, back = D(9, 9, 9);
        if (i < 4) {
            d = fixed[i];
        } else {
            /* Mix small and full-width values. */
            uint64_t r = next_rand(&s);
            d.seg = (r & 1) ? next_rand(&s) : next_rand(&s) % 100;
            d.entry = (r & 2) ? next_rand(&s) : next_rand(&s) % 1000;
            d.slot = (r & 4) ? (uint32_t)next_rand(&s) : (uint32_t)(next_rand(&s) % 10);
        }
        dlog_dlsn_format(d, buf, sizeof buf);
        int rv = dlog_dlsn_parse(buf, &back);
        ck_assert_msg(rv == 0, "parse(\"%s\") = %s", buf, dlog_errname(rv));
        ck_assert_msg(dlog_dlsn_cmp(d, back) == 0, "\"%s\" parsed as " CORE_DLSN_FMT, buf,
                      CORE_DLSN_ARGS(back));
    }
}
END_TEST

START_TEST(test_parse_bad)
{
    static const char *bad[] = {
        "",
        "/",
        "//",
        "1",
        "1/2",
        "1/2/",
        "/1/2",
        "1//2",
        "1/2/3/4",
        "1/2/3/",
        "a/b/c",
        "1/2/x",
        "1/2/3x",
        "0x1/2/3",
        "1.5/2/3",
        "-1/2/3",
        "1/-2/3",
        "1/2/-3",
        " 1/2/3",
        "1/2/3 ",
        "1 /2/3",
        "1/2/3\n",
        "18446744073709551616/0/0", /* seg overflows u64 */
        "0/18446744073709551616/0",
        "0/0/4294967296", /* slot overflows u32 */
        "99999999999999999999999/0/0",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct dlog_dlsn out = D(11, 22, 33);
        int rv = dlog_dlsn_parse(bad[i], &out);
        ck_assert_msg(rv == DLOG_EINVAL, "parse(\"%s\") = %s, expected DLOG_EINVAL",
                      bad[i], dlog_errname(rv));
        ck_assert_msg(out.seg == 11 && out.entry == 22 && out.slot == 33,
                      "parse(\"%s\") failed but changed its output", bad[i]);
    }
    struct dlog_dlsn out = D(1, 1, 1);
    ck_assert_int_eq(dlog_dlsn_parse(NULL, &out), DLOG_EINVAL);
}
END_TEST

START_TEST(test_parse_limits)
{
    struct dlog_dlsn out;
    CORE_ASSERT_OK(
        dlog_dlsn_parse("18446744073709551615/18446744073709551615/4294967295", &out));
    ck_assert_int_eq(dlog_dlsn_cmp(out, DLOG_DLSN_MAX), 0);
    CORE_ASSERT_OK(dlog_dlsn_parse("0/0/0", &out));
    ck_assert_int_eq(dlog_dlsn_cmp(out, DLOG_DLSN_HEAD), 0);
    CORE_ASSERT_OK(dlog_dlsn_parse("12/0/7", &out));
    ck_assert_uint_eq(out.seg, 12);
    ck_assert_uint_eq(out.entry, 0);
    ck_assert_uint_eq(out.slot, 7);
}
END_TEST

Suite *dlsn_suite(void)
{
    Suite *s = suite_create("dlsn");
    TCase *tc = core_tcase("dlsn", CORE_TIMEOUT);
    tcase_add_test(tc, test_cmp_order);
    tcase_add_test(tc, test_cmp_head_max);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_parse_round_trip);
    tcase_add_test(tc, test_parse_bad);
    tcase_add_test(tc, test_parse_limits);
    suite_add_tcase(s, tc);
    return s;
}
