/* Unit tests: monotonic clock, fake clock and deadlines (clock.c). */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "base/clock.h"
#include "suites.h"

/* Remove any fake clock a failed test may have left installed. */
static void teardown_clock(void)
{
    clock_set_fake(NULL);
}

static uint64_t realtime_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

START_TEST(test_clock_monotonic)
{
    uint64_t first = clock_now_ns(), prev = first, now = first;
    struct timespec ts;

    ck_assert_uint_gt(first, 0);
    /* Never goes back, and moves within a bounded amount of work. */
    for (long i = 0; i < 50000000 && now == first; i++) {
        now = clock_now_ns();
        ck_assert_uint_ge(now, prev);
        prev = now;
    }
    ck_assert_uint_gt(now, first);

    /* It is CLOCK_MONOTONIC: bracketed by two direct readings. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t lo = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
    now = clock_now_ns();
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t hi = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
    ck_assert_uint_ge(now, lo);
    ck_assert_uint_le(now, hi);
}
END_TEST

START_TEST(test_clock_wall)
{
    uint64_t ms = clock_wall_ms();
    uint64_t rt = realtime_ns() / NS_PER_MS;

    ck_assert_uint_gt(ms, 1577836800000ull); /* after 2020-01-01 */
    ck_assert_uint_le(ms, rt);
    ck_assert_uint_ge(ms + 1000, rt);
}
END_TEST

START_TEST(test_clock_fake)
{
    uint64_t t = 5 * NS_PER_SEC;

    clock_set_fake(&t);
    ck_assert_uint_eq(clock_now_ns(), 5 * NS_PER_SEC);
    ck_assert_uint_eq(clock_now_ns(), 5 * NS_PER_SEC); /* frozen */
    t += 7;
    ck_assert_uint_eq(clock_now_ns(), 5 * NS_PER_SEC + 7);
    t = 0;
    ck_assert_uint_eq(clock_now_ns(), 0);

    clock_set_fake(NULL);
    uint64_t a = clock_now_ns();
    ck_assert_uint_gt(a, 0);
    ck_assert_uint_ge(clock_now_ns(), a);
}
END_TEST

START_TEST(test_clock_no_deadline)
{
    ck_assert_uint_eq(clock_deadline_ms(-1), UINT64_MAX);
    ck_assert_uint_eq(clock_deadline_ms(INT64_MIN), UINT64_MAX);
    ck_assert_int_eq(clock_ms_left(UINT64_MAX), -1);
    ck_assert_int_eq(clock_ms_left(clock_deadline_ms(-5)), -1);
}
END_TEST

START_TEST(test_clock_deadline_math)
{
    uint64_t t = 1000 * NS_PER_MS;
    uint64_t d;

    clock_set_fake(&t);
    d = clock_deadline_ms(250);
    ck_assert_uint_eq(d, 1250 * NS_PER_MS);
    ck_assert_int_eq(clock_ms_left(d), 250);
    ck_assert_uint_eq(clock_deadline_ms(0), t);
    ck_assert_int_eq(clock_ms_left(clock_deadline_ms(0)), 0);

    t += 100 * NS_PER_MS;
    ck_assert_int_eq(clock_ms_left(d), 150);
    t += 1; /* a part of a millisecond left counts as a whole one */
    ck_assert_int_eq(clock_ms_left(d), 150);
    t = d - 1;
    ck_assert_int_eq(clock_ms_left(d), 1);
    t = d;
    ck_assert_int_eq(clock_ms_left(d), 0);
    t = d + 5 * NS_PER_MS;
    ck_assert_int_eq(clock_ms_left(d), 0);

    /* Huge timeouts saturate instead of wrapping, and stay deadlines. */
    d = clock_deadline_ms(INT64_MAX);
    ck_assert_uint_gt(d, t);
    ck_assert_uint_ne(d, UINT64_MAX);
    ck_assert_int_gt(clock_ms_left(d), 0);
    t = UINT64_MAX - 10;
    d = clock_deadline_ms(1);
    ck_assert_uint_ge(d, t);
    ck_assert_uint_ne(d, UINT64_MAX);
    clock_set_fake(NULL);
}
END_TEST

START_TEST(test_clock_abs_timespec)
{
    uint64_t t = 77 * NS_PER_SEC;
    struct timespec ts;
    uint64_t before, after, got;

    /* On a frozen fake clock exactly 200 ms are left, whatever the load. */
    clock_set_fake(&t);
    before = realtime_ns();
    clock_abs_timespec(clock_deadline_ms(200), &ts);
    after = realtime_ns();
    got = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
    ck_assert_int_ge(ts.tv_nsec, 0);
    ck_assert_int_lt(ts.tv_nsec, (long)NS_PER_SEC);
    ck_assert_uint_ge(got, before + 200 * NS_PER_MS);
    ck_assert_uint_le(got, after + 200 * NS_PER_MS);
    clock_set_fake(NULL);

    /* A passed deadline maps to about now. */
    before = realtime_ns();
    clock_abs_timespec(0, &ts);
    after = realtime_ns();
    got = (uint64_t)ts.tv_sec * NS_PER_SEC + (uint64_t)ts.tv_nsec;
    ck_assert_uint_ge(got, before);
    ck_assert_uint_le(got, after);

    /* No deadline: far in the future (more than a year). */
    clock_abs_timespec(UINT64_MAX, &ts);
    ck_assert_int_lt(ts.tv_nsec, (long)NS_PER_SEC);
    ck_assert_int_gt(ts.tv_sec, (time_t)(realtime_ns() / NS_PER_SEC) + 366 * 24 * 3600);
}
END_TEST

/* The reason for clock_abs_timespec: a condition wait that ends at a deadline. */
START_TEST(test_clock_cond_timedwait)
{
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
    uint64_t start = clock_now_ns();
    uint64_t deadline = clock_deadline_ms(30);
    struct timespec ts;
    int rv = 0;

    clock_abs_timespec(deadline, &ts);
    pthread_mutex_lock(&mu);
    while (rv == 0 || rv == EINTR) /* nobody signals: only the timeout ends it */
        rv = pthread_cond_timedwait(&cv, &mu, &ts);
    pthread_mutex_unlock(&mu);
    ck_assert_int_eq(rv, ETIMEDOUT);
    /* Wall and monotonic clocks tick together here; allow 2 ms of skew. */
    ck_assert_uint_ge(clock_now_ns(), start + 28 * NS_PER_MS);
    ck_assert_int_le(clock_ms_left(deadline), 2);
    pthread_cond_destroy(&cv);
    pthread_mutex_destroy(&mu);
}
END_TEST

Suite *clock_suite(void)
{
    Suite *s = suite_create("clock");
    TCase *tc = tcase_create("clock");

    tcase_add_checked_fixture(tc, NULL, teardown_clock);
    tcase_add_test(tc, test_clock_monotonic);
    tcase_add_test(tc, test_clock_wall);
    tcase_add_test(tc, test_clock_fake);
    tcase_add_test(tc, test_clock_no_deadline);
    tcase_add_test(tc, test_clock_deadline_math);
    tcase_add_test(tc, test_clock_abs_timespec);
    tcase_add_test(tc, test_clock_cond_timedwait);
    suite_add_tcase(s, tc);
    return s;
}
