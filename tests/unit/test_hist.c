/* Unit tests: latency histogram (hist.c). */
#include <stdint.h>

#include "base/hist.h"
#include "suites.h"

/* |got - want| <= 0.1% of want. */
#define ck_assert_within_0_1pct(got, want)                                               \
    do {                                                                                 \
        double g_ = (double)(got), w_ = (double)(want);                                  \
        double d_ = g_ > w_ ? g_ - w_ : w_ - g_;                                         \
        ck_assert_msg(d_ <= w_ * 0.001, "%s = %.0f, want %.0f within 0.1%%", #got, g_,   \
                      w_);                                                               \
    } while (0)

START_TEST(test_hist_empty)
{
    struct hist *h = hist_new();

    ck_assert_ptr_nonnull(h);
    ck_assert_uint_eq(hist_count(h), 0);
    ck_assert_uint_eq(hist_min(h), 0);
    ck_assert_uint_eq(hist_max(h), 0);
    ck_assert_double_eq(hist_mean(h), 0.0);
    ck_assert_uint_eq(hist_quantile(h, 0.5), 0);
    ck_assert_uint_eq(hist_quantile(h, 1.0), 0);
    hist_free(h);
    hist_free(NULL);
}
END_TEST

START_TEST(test_hist_uniform)
{
    struct hist *h = hist_new();

    ck_assert_ptr_nonnull(h);
    for (uint64_t v = 1; v <= 100000; v++)
        hist_record(h, v);
    ck_assert_uint_eq(hist_count(h), 100000);
    ck_assert_uint_eq(hist_min(h), 1);
    ck_assert_uint_eq(hist_max(h), 100000);
    ck_assert_double_eq_tol(hist_mean(h), 50000.5, 1e-6);
    ck_assert_within_0_1pct(hist_quantile(h, 0.5), 50000);
    ck_assert_within_0_1pct(hist_quantile(h, 0.9), 90000);
    ck_assert_within_0_1pct(hist_quantile(h, 0.99), 99000);
    ck_assert_within_0_1pct(hist_quantile(h, 0.999), 99900);
    ck_assert_within_0_1pct(hist_quantile(h, 0.01), 1000);
    ck_assert_uint_eq(hist_quantile(h, 0.0), 1);      /* exact min */
    ck_assert_uint_eq(hist_quantile(h, 1.0), 100000); /* exact max */
    ck_assert_uint_eq(hist_quantile(h, 2.0), 100000); /* clamped */
    ck_assert_uint_eq(hist_quantile(h, -1.0), 1);
    /* Below 2048 every value has its own bucket. */
    ck_assert_uint_eq(hist_quantile(h, 0.00123), 123);
    hist_free(h);
}
END_TEST

/* Powers of ten from 1 ns to 1000 s, 1000 samples each: every quantile
 * lands within 0.1% of the value it names, across all bucket sizes. */
START_TEST(test_hist_wide_range)
{
    struct hist *h = hist_new();
    uint64_t v = 1;

    ck_assert_ptr_nonnull(h);
    for (int d = 0; d <= 12; d++, v *= 10) {
        for (int i = 0; i < 1000; i++)
            hist_record(h, v);
    }
    v = 1;
    for (int d = 0; d <= 12; d++, v *= 10) {
        /* the median of the d-th block */
        double q = ((double)d * 1000 + 500) / 13000.0;
        ck_assert_within_0_1pct(hist_quantile(h, q), v);
    }
    ck_assert_uint_eq(hist_max(h), 1000000000000ull);

    /* A value with a long tail of digits still reads within 0.1%. */
    hist_reset(h);
    ck_assert_uint_eq(hist_count(h), 0);
    for (int i = 0; i < 10; i++)
        hist_record(h, 123456789);
    ck_assert_within_0_1pct(hist_quantile(h, 0.5), 123456789);
    ck_assert_uint_eq(hist_max(h), 123456789);
    ck_assert_uint_eq(hist_min(h), 123456789);

    /* Beyond the bucketed range (about 73 min): max and min stay exact. */
    hist_record(h, 3 * 3600 * 1000000000ull);
    ck_assert_uint_eq(hist_max(h), 3 * 3600 * 1000000000ull);
    ck_assert_uint_eq(hist_quantile(h, 1.0), 3 * 3600 * 1000000000ull);
    hist_record(h, UINT64_MAX);
    ck_assert_uint_eq(hist_max(h), UINT64_MAX);
    ck_assert_uint_eq(hist_count(h), 12);
    hist_free(h);
}
END_TEST

/* Exponential-like: 2^k recorded 2^(20-k) times; half the samples are 1. */
START_TEST(test_hist_skewed)
{
    struct hist *h = hist_new();
    uint64_t total = 0;

    ck_assert_ptr_nonnull(h);
    for (int k = 0; k <= 20; k++) {
        for (uint64_t i = 0; i < (1ull << (20 - k)); i++) {
            hist_record(h, 1ull << k);
            total++;
        }
    }
    ck_assert_uint_eq(hist_count(h), total);
    ck_assert_uint_eq(hist_quantile(h, 0.5), 1);
    ck_assert_uint_eq(hist_quantile(h, 0.7), 2);
    ck_assert_uint_eq(hist_quantile(h, 0.8), 4);
    ck_assert_within_0_1pct(hist_quantile(h, 0.9999), 1u << 13);
    ck_assert_uint_eq(hist_max(h), 1u << 20);
    /* mean = sum / count = 21 * 2^20 / (2^21 - 1) */
    ck_assert_double_eq_tol(hist_mean(h), 21.0 * 1048576.0 / (double)total, 1e-9);
    hist_free(h);
}
END_TEST

START_TEST(test_hist_merge)
{
    struct hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *empty = hist_new();

    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(all);
    ck_assert_ptr_nonnull(empty);
    for (uint64_t v = 1; v <= 100000; v++) {
        hist_record(v % 2 ? a : b, v * 1000);
        hist_record(all, v * 1000);
    }
    hist_merge(a, b);
    ck_assert_uint_eq(hist_count(a), 100000);
    ck_assert_uint_eq(hist_min(a), 1000);
    ck_assert_uint_eq(hist_max(a), 100000000);
    ck_assert_double_eq_tol(hist_mean(a), hist_mean(all), 1e-6);
    for (double q = 0.0; q <= 1.0; q += 0.05)
        ck_assert_uint_eq(hist_quantile(a, q), hist_quantile(all, q));
    ck_assert_within_0_1pct(hist_quantile(a, 0.5), 50000000);
    ck_assert_uint_eq(hist_quantile(a, 1.0), 100000000);

    /* Merging an empty histogram changes nothing; merging into one copies. */
    hist_merge(a, empty);
    ck_assert_uint_eq(hist_count(a), 100000);
    ck_assert_uint_eq(hist_min(a), 1000);
    hist_merge(empty, b);
    ck_assert_uint_eq(hist_count(empty), hist_count(b));
    ck_assert_uint_eq(hist_min(empty), 2000);
    ck_assert_uint_eq(hist_max(empty), 100000000);
    ck_assert_uint_eq(hist_quantile(empty, 0.5), hist_quantile(b, 0.5));
    hist_free(a);
    hist_free(b);
    hist_free(all);
    hist_free(empty);
}
END_TEST

Suite *hist_suite(void)
{
    Suite *s = suite_create("hist");
    TCase *tc = tcase_create("hist");

    tcase_add_test(tc, test_hist_empty);
    tcase_add_test(tc, test_hist_uniform);
    tcase_add_test(tc, test_hist_wide_range);
    tcase_add_test(tc, test_hist_skewed);
    tcase_add_test(tc, test_hist_merge);
    suite_add_tcase(s, tc);
    return s;
}
