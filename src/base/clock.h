/*
 * Monotonic and wall-clock time. Durations and deadlines use the monotonic
 * clock (CLOCK_MONOTONIC), never the wall clock; wall time (CLOCK_REALTIME)
 * is only recorded for humans and for retention by age.
 *
 * A replaceable clock lets tests run time-dependent code (token buckets,
 * leases) on a fake clock: clock_set_fake(&t) makes clock_now_ns return t
 * until clock_set_fake(NULL).
 */
#ifndef DLOG_BASE_CLOCK_H
#define DLOG_BASE_CLOCK_H

#include <stdint.h>

#define NS_PER_US  1000ULL
#define NS_PER_MS  1000000ULL
#define NS_PER_SEC 1000000000ULL

/* Monotonic nanoseconds since an arbitrary point (or the fake clock). */
uint64_t clock_now_ns(void);
/* Wall-clock milliseconds since the Unix epoch. */
uint64_t clock_wall_ms(void);
/*
 * Install (or with NULL remove) a fake monotonic clock read from *t. *t stays
 * the caller's and must stay valid until clock_set_fake(NULL); the caller may
 * change it at any time (it is read atomically).
 */
void clock_set_fake(const uint64_t *t);
/* A deadline timeout_ms from now; timeout_ms < 0 means no deadline (UINT64_MAX). */
uint64_t clock_deadline_ms(int64_t timeout_ms);
/* Milliseconds left until deadline, 0 if passed, -1 for no deadline. */
int64_t clock_ms_left(uint64_t deadline);
/*
 * Fill a struct timespec (CLOCK_REALTIME based) for pthread_cond_timedwait at
 * deadline. A passed deadline gives about now; UINT64_MAX (no deadline) gives
 * a time years ahead, so waiters without a deadline loop on their condition.
 */
struct timespec;
void clock_abs_timespec(uint64_t deadline, struct timespec *ts);

#endif
