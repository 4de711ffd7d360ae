/*
 * Monotonic time, wall time and deadlines (see clock.h).
 *
 * A deadline is an absolute clock_now_ns() value; UINT64_MAX means "none".
 * The one piece of global state is the fake clock pointer, read and written
 * atomically; the pointed-to value is read atomically too, so a test thread
 * may advance it while another thread reads it.
 */
#include "clock.h"

#include <stdint.h>
#include <time.h>

/* How far ahead clock_abs_timespec puts "no deadline": about ten years.
 * Callers that wait without a deadline re-check their condition in a loop,
 * so any distant time works; this one stays far from time_t overflow. */
#define FAR_FUTURE_NS (10ULL * 365 * 24 * 3600 * NS_PER_SEC)

static const uint64_t *g_fake;

static uint64_t ts_to_ns(const struct timespec *ts)
{
    return (uint64_t)ts->tv_sec * NS_PER_SEC + (uint64_t)ts->tv_nsec;
}

uint64_t clock_now_ns(void)
{
    const uint64_t *fake = __atomic_load_n(&g_fake, __ATOMIC_ACQUIRE);
    struct timespec ts;

    if (fake != NULL)
        return __atomic_load_n(fake, __ATOMIC_ACQUIRE);
    /* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts_to_ns(&ts);
}

uint64_t clock_wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / NS_PER_MS;
}

void clock_set_fake(const uint64_t *t)
{
    __atomic_store_n(&g_fake, t, __ATOMIC_RELEASE);
}

uint64_t clock_deadline_ms(int64_t timeout_ms)
{
    uint64_t now, add;

    if (timeout_ms < 0)
        return UINT64_MAX;
    now = clock_now_ns();
    /* Saturate below UINT64_MAX: a huge timeout is still a deadline. */
    if ((uint64_t)timeout_ms > (UINT64_MAX - 1) / NS_PER_MS)
        return UINT64_MAX - 1;
    add = (uint64_t)timeout_ms * NS_PER_MS;
    if (now >= UINT64_MAX - 1 || add > UINT64_MAX - 1 - now)
        return UINT64_MAX - 1;
    return now + add;
}

int64_t clock_ms_left(uint64_t deadline)
{
    uint64_t now, left;

    if (deadline == UINT64_MAX)
        return -1;
    now = clock_now_ns();
    if (now >= deadline)
        return 0;
    /* Round up: with 0.4 ms left the deadline has not passed, and a wait of
     * 0 ms would spin. */
    left = (deadline - now + NS_PER_MS - 1) / NS_PER_MS;
    return left > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)left;
}

void clock_abs_timespec(uint64_t deadline, struct timespec *ts)
{
    uint64_t left = FAR_FUTURE_NS;
    struct timespec now;

    if (deadline != UINT64_MAX) {
        uint64_t mono = clock_now_ns();
        left = deadline > mono ? deadline - mono : 0;
        if (left > FAR_FUTURE_NS)
            left = FAR_FUTURE_NS;
    }
    /* pthread_cond_timedwait measures against CLOCK_REALTIME by default:
     * carry the time left on the monotonic clock over to the wall clock. */
    clock_gettime(CLOCK_REALTIME, &now);
    left += (uint64_t)now.tv_nsec;
    ts->tv_sec = now.tv_sec + (time_t)(left / NS_PER_SEC);
    ts->tv_nsec = (long)(left % NS_PER_SEC);
}
