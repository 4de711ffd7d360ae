/*
 * test-ratelimit: token buckets, soft/hard limits and max-min allocation,
 * all on the fake clock. Exit status 0 when all checks pass, 1 otherwise.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "base/clock.h"
#include "proxy/maxmin.h"
#include "proxy/ratelimit.h"

#include <dlog/err.h>

static uint64_t fake_now;

static void fake_setup(void)
{
    fake_now = 1000 * NS_PER_SEC;
    clock_set_fake(&fake_now);
}

static void fake_teardown(void)
{
    clock_set_fake(NULL);
}

/* Takes n units at a time every step_ns for dur_ns; returns units admitted. */
static uint64_t drive(struct rl_bucket *b, uint64_t n, uint64_t step_ns, uint64_t dur_ns)
{
    uint64_t got = 0, end = fake_now + dur_ns;

    for (; fake_now < end; fake_now += step_ns)
        while (rl_bucket_take(b, n))
            got += n;
    return got;
}

static void check_near(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;

    ck_assert_msg(diff * 100 <= want, "got %llu, want %llu +-1%%",
                  (unsigned long long)got, (unsigned long long)want);
}

START_TEST(test_bucket_rate)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 1000, 100);
    check_near(drive(&b, 1, NS_PER_MS, 10 * NS_PER_SEC), 1000 * 10 + 100);
}
END_TEST

START_TEST(test_bucket_rate_bytes)
{
    struct rl_bucket b;

    /* 1 MB/s in 4 KiB takes, stepping 100 us. */
    rl_bucket_init(&b, 1000000, 65536);
    check_near(drive(&b, 4096, 100 * NS_PER_US, 10 * NS_PER_SEC), 1000000 * 10 + 65536);
}
END_TEST

START_TEST(test_bucket_slow_rate_fraction)
{
    struct rl_bucket b;

    /* 3 per second: fractional tokens must accumulate across calls. */
    rl_bucket_init(&b, 3, 2); /* burst 2: the cap never clips a fraction */
    ck_assert_int_eq(rl_bucket_take(&b, 2), 1);
    /* 1430 steps of 7 ms: the last one at 10.003 s, when 30 have accrued. */
    ck_assert_uint_eq(drive(&b, 1, 7 * NS_PER_MS, 10010 * NS_PER_MS), 30);
}
END_TEST

START_TEST(test_bucket_burst)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 10, 50);
    ck_assert_int_eq(rl_bucket_take(&b, 50), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
    fake_now += 100 * NS_PER_MS; /* one token */
    ck_assert_int_eq(rl_bucket_take(&b, 2), 0);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

START_TEST(test_bucket_idle_capped)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 100, 20);
    ck_assert_int_eq(rl_bucket_take(&b, 20), 1);
    fake_now += 3600 * NS_PER_SEC;               /* an hour idle: still only burst */
    ck_assert_int_eq(rl_bucket_take(&b, 21), 1); /* a full bucket, into debt */
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);  /* so it held 20, not more */
    fake_now += 210 * NS_PER_MS;
    ck_assert_int_eq(rl_bucket_take(&b, 20), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

START_TEST(test_bucket_huge_values)
{
    struct rl_bucket b;

    /* Products beyond 64 bits must neither overflow nor wrap. */
    rl_bucket_init(&b, UINT64_MAX, UINT64_MAX);
    ck_assert_int_eq(rl_bucket_take(&b, UINT64_MAX), 1);
    fake_now += UINT64_MAX / 4;
    ck_assert_int_eq(rl_bucket_take(&b, UINT64_MAX), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

START_TEST(test_bucket_set_rate)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 100, 10);
    check_near(drive(&b, 1, NS_PER_MS, 10 * NS_PER_SEC), 100 * 10 + 10);
    rl_bucket_set(&b, 1000, 10);
    check_near(drive(&b, 1, NS_PER_MS, 10 * NS_PER_SEC), 1000 * 10);
}
END_TEST

START_TEST(test_bucket_set_caps_tokens)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 100, 100);
    rl_bucket_set(&b, 100, 10);
    ck_assert_int_eq(rl_bucket_take(&b, 10), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

START_TEST(test_bucket_set_refills_at_old_rate)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 10, 100);
    ck_assert_int_eq(rl_bucket_take(&b, 100), 1);
    fake_now += NS_PER_SEC; /* 10 tokens at the old rate, not 1000 */
    rl_bucket_set(&b, 1000, 100);
    ck_assert_int_eq(rl_bucket_take(&b, 11), 0);
    ck_assert_int_eq(rl_bucket_take(&b, 10), 1);
}
END_TEST

START_TEST(test_bucket_wait)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 10, 10);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 10), 0);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 11),
                      0); /* larger than the bucket: when full */
    ck_assert_int_eq(rl_bucket_take(&b, 10), 1);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 1), 100 * NS_PER_MS);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 5), 500 * NS_PER_MS);
    fake_now += 499 * NS_PER_MS;
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 5), NS_PER_MS);
    ck_assert_int_eq(rl_bucket_take(&b, 5), 0);
    fake_now += NS_PER_MS;
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 5), 0);
    ck_assert_int_eq(rl_bucket_take(&b, 5), 1);
}
END_TEST

/* A take larger than the bucket waits for a full bucket, then leaves a debt
 * that later takes wait out: the long-run rate holds. */
START_TEST(test_bucket_oversized_debt)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 10, 10);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 25), 0); /* not full */
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 25), 100 * NS_PER_MS);
    fake_now += 100 * NS_PER_MS;
    ck_assert_int_eq(rl_bucket_take(&b, 25), 1); /* tokens now -15 */
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 1), 1600 * NS_PER_MS);
    fake_now += 1599 * NS_PER_MS;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
    fake_now += NS_PER_MS;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
    /* A forced take (a reservation) goes into debt too. */
    rl_bucket_force(&b, 5);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 1), 600 * NS_PER_MS);
}
END_TEST

START_TEST(test_bucket_wait_rounds_up)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 3, 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
    /* 1e9 / 3 = 333333333.3 ns: waiting the rounded-up time must be enough. */
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, 1), 333333334);
    fake_now += 333333333;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
    fake_now += 1;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
}
END_TEST

START_TEST(test_bucket_unlimited)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 0, 0);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(rl_bucket_take(&b, 1000000), 1);
    ck_assert_uint_eq(rl_bucket_wait_ns(&b, UINT64_MAX), 0);
    rl_bucket_set(&b, 10, 10);
    ck_assert_int_eq(rl_bucket_take(&b, 10), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

START_TEST(test_bucket_clock_backwards)
{
    struct rl_bucket b;

    rl_bucket_init(&b, 10, 10);
    ck_assert_int_eq(rl_bucket_take(&b, 10), 1);
    fake_now -= NS_PER_SEC;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
    fake_now += NS_PER_SEC + 100 * NS_PER_MS;
    ck_assert_int_eq(rl_bucket_take(&b, 1), 1);
    ck_assert_int_eq(rl_bucket_take(&b, 1), 0);
}
END_TEST

static const struct rl_limit_conf conf = {
    .soft_records_rate = 10,
    .soft_records_burst = 10,
    .soft_bytes_rate = 1000,
    .soft_bytes_burst = 1000,
    .hard_records_rate = 20,
    .hard_records_burst = 20,
    .hard_bytes_rate = 2000,
    .hard_bytes_burst = 2000,
};

START_TEST(test_limit_soft_then_hard)
{
    struct rl_limit l;
    int i;

    rl_limit_init(&l, &conf);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(rl_limit_admit(&l, 1, 10), RL_ADMIT);
    for (i = 0; i < 10; i++)
        ck_assert_int_eq(rl_limit_admit(&l, 1, 10), RL_ADMIT_SOFT);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 10), RL_REJECT);
    ck_assert_uint_eq(l.admitted, 20);
    ck_assert_uint_eq(l.soft_exceeded, 10);
    ck_assert_uint_eq(l.rejected, 1);
}
END_TEST

START_TEST(test_limit_bytes_levels)
{
    struct rl_limit l;

    rl_limit_init(&l, &conf);
    /* Larger than the soft bucket: taken whole while it is full (soft -1). */
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1001), RL_ADMIT);     /* hard 999 left */
    ck_assert_int_eq(rl_limit_admit(&l, 1, 999), RL_ADMIT_SOFT); /* soft still -1 */
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1), RL_REJECT);
    fake_now += 500 * NS_PER_MS; /* hard +1000, soft +500 */
    ck_assert_int_eq(rl_limit_admit(&l, 1, 502), RL_ADMIT_SOFT);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 498), RL_ADMIT);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1), RL_REJECT);
    ck_assert_uint_eq(l.admitted, 4);
    ck_assert_uint_eq(l.soft_exceeded, 2);
    ck_assert_uint_eq(l.rejected, 2);
}
END_TEST

START_TEST(test_limit_reject_takes_nothing)
{
    struct rl_limit l;

    rl_limit_init(&l, &conf);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1), RL_ADMIT);
    /* Records fit the hard level but bytes do not: records must stay. */
    ck_assert_int_eq(rl_limit_admit(&l, 19, 2000), RL_REJECT);
    ck_assert_int_eq(rl_limit_admit(&l, 19, 100), RL_ADMIT_SOFT);
    ck_assert_uint_eq(l.rejected, 1);
    ck_assert_uint_eq(l.admitted, 2);
}
END_TEST

START_TEST(test_limit_refill_and_rates)
{
    struct rl_limit l;
    uint64_t ok = 0, soft = 0;

    rl_limit_init(&l, &conf);
    for (uint64_t end = fake_now + 10 * NS_PER_SEC; fake_now < end;
         fake_now += NS_PER_MS) {
        int r;
        while ((r = rl_limit_admit(&l, 1, 1)) != RL_REJECT)
            r == RL_ADMIT ? ok++ : soft++;
    }
    check_near(ok + soft, 20 * 10 + 20);
    check_near(ok, 10 * 10 + 10);
    ck_assert_uint_eq(l.admitted, ok + soft);
    ck_assert_uint_eq(l.soft_exceeded, soft);
}
END_TEST

START_TEST(test_limit_unlimited_and_set)
{
    struct rl_limit l;
    struct rl_limit_conf c = {0};

    rl_limit_init(&l, &c);
    for (int i = 0; i < 1000; i++)
        ck_assert_int_eq(rl_limit_admit(&l, 100, 100000), RL_ADMIT);
    c.hard_records_rate = 1;
    c.hard_records_burst = 1;
    rl_limit_set(&l, &c);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1), RL_ADMIT);
    ck_assert_int_eq(rl_limit_admit(&l, 1, 1), RL_REJECT);
    ck_assert_uint_eq(l.admitted, 1001);
}
END_TEST

static void alloc_eq(uint64_t total, const uint64_t *demand, size_t n,
                     const uint64_t *want)
{
    uint64_t share[8], sum = 0;

    ck_assert_int_eq(maxmin_allocate(total, demand, n, share), 0);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(share[i] == want[i], "share[%zu] = %llu, want %llu", i,
                      (unsigned long long)share[i], (unsigned long long)want[i]);
        sum += share[i];
    }
    ck_assert_uint_le(sum, total);
}

START_TEST(test_maxmin_equal)
{
    alloc_eq(90, (const uint64_t[]){100, 100, 100}, 3, (const uint64_t[]){30, 30, 30});
    /* The remainder of an uneven split is not lost and not exceeded. */
    alloc_eq(100, (const uint64_t[]){100, 100, 100}, 3, (const uint64_t[]){34, 33, 33});
}
END_TEST

START_TEST(test_maxmin_unequal)
{
    alloc_eq(100, (const uint64_t[]){10, 50, 80}, 3, (const uint64_t[]){10, 45, 45});
    alloc_eq(100, (const uint64_t[]){80, 10, 50}, 3, (const uint64_t[]){45, 10, 45});
    alloc_eq(100, (const uint64_t[]){5, 20, 30, 90}, 4,
             (const uint64_t[]){5, 20, 30, 45});
    alloc_eq(10, (const uint64_t[]){1, 100, 100, 100}, 4, (const uint64_t[]){1, 3, 3, 3});
}
END_TEST

START_TEST(test_maxmin_leftover)
{
    /* All met: 40 left over, split equally on top (13 each, 1 to the first). */
    alloc_eq(100, (const uint64_t[]){10, 20, 30}, 3, (const uint64_t[]){24, 33, 43});
    alloc_eq(60, (const uint64_t[]){10, 20, 30}, 3, (const uint64_t[]){10, 20, 30});
}
END_TEST

START_TEST(test_maxmin_zero)
{
    alloc_eq(90, (const uint64_t[]){0, 0, 0}, 3, (const uint64_t[]){30, 30, 30});
    alloc_eq(0, (const uint64_t[]){10, 20}, 2, (const uint64_t[]){0, 0});
    alloc_eq(2, (const uint64_t[]){10, 10, 10}, 3, (const uint64_t[]){1, 1, 0});
    ck_assert_int_eq(maxmin_allocate(100, NULL, 0, NULL), 0);
    ck_assert_int_eq(maxmin_allocate(100, NULL, 3, NULL), DLOG_EINVAL);
}
END_TEST

START_TEST(test_maxmin_single)
{
    alloc_eq(100, (const uint64_t[]){250}, 1, (const uint64_t[]){100});
    alloc_eq(100, (const uint64_t[]){25}, 1, (const uint64_t[]){100});
    alloc_eq(UINT64_MAX, (const uint64_t[]){UINT64_MAX, UINT64_MAX}, 2,
             (const uint64_t[]){UINT64_MAX / 2 + 1, UINT64_MAX / 2});
}
END_TEST

START_TEST(test_lease_expiry)
{
    struct mm_lease l;

    ck_assert_uint_eq(maxmin_effective_share(70, 1000, 999, 100, 4), 70);
    ck_assert_uint_eq(maxmin_effective_share(70, 1000, 1000, 100, 4), 25);
    ck_assert_uint_eq(maxmin_effective_share(70, 1000, 5000, 100, 0), 100);
    mm_lease_grant(&l, 60, 100 * NS_PER_SEC, 5 * NS_PER_SEC);
    ck_assert_uint_eq(mm_lease_share(&l, 104 * NS_PER_SEC, 90, 3), 60);
    ck_assert_uint_eq(mm_lease_share(&l, 105 * NS_PER_SEC, 90, 3), 30);
    mm_lease_grant(&l, 60, UINT64_MAX - 1, 5 * NS_PER_SEC);
    ck_assert_uint_eq(mm_lease_share(&l, UINT64_MAX - 1, 90, 3), 60);
}
END_TEST

static Suite *ratelimit_suite(void)
{
    Suite *s = suite_create("ratelimit");
    TCase *b = tcase_create("bucket");
    TCase *l = tcase_create("limit");
    TCase *m = tcase_create("maxmin");

    tcase_add_checked_fixture(b, fake_setup, fake_teardown);
    tcase_add_test(b, test_bucket_rate);
    tcase_add_test(b, test_bucket_rate_bytes);
    tcase_add_test(b, test_bucket_slow_rate_fraction);
    tcase_add_test(b, test_bucket_burst);
    tcase_add_test(b, test_bucket_idle_capped);
    tcase_add_test(b, test_bucket_huge_values);
    tcase_add_test(b, test_bucket_set_rate);
    tcase_add_test(b, test_bucket_set_caps_tokens);
    tcase_add_test(b, test_bucket_oversized_debt);
    tcase_add_test(b, test_bucket_set_refills_at_old_rate);
    tcase_add_test(b, test_bucket_wait);
    tcase_add_test(b, test_bucket_wait_rounds_up);
    tcase_add_test(b, test_bucket_unlimited);
    tcase_add_test(b, test_bucket_clock_backwards);
    suite_add_tcase(s, b);

    tcase_add_checked_fixture(l, fake_setup, fake_teardown);
    tcase_add_test(l, test_limit_soft_then_hard);
    tcase_add_test(l, test_limit_bytes_levels);
    tcase_add_test(l, test_limit_reject_takes_nothing);
    tcase_add_test(l, test_limit_refill_and_rates);
    tcase_add_test(l, test_limit_unlimited_and_set);
    suite_add_tcase(s, l);

    tcase_add_test(m, test_maxmin_equal);
    tcase_add_test(m, test_maxmin_unequal);
    tcase_add_test(m, test_maxmin_leftover);
    tcase_add_test(m, test_maxmin_zero);
    tcase_add_test(m, test_maxmin_single);
    tcase_add_test(m, test_lease_expiry);
    suite_add_tcase(s, m);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(ratelimit_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
