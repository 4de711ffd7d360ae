/*
 * Token buckets on the monotonic clock, and soft/hard per-stream limits.
 */
#include "proxy/ratelimit.h"

#include "base/clock.h"

#define SCALE ((__uint128_t)NS_PER_SEC)

/*
 * Lazy refill, the token-bucket rule:
 *
 *     tokens = min(burst, tokens + rate x elapsed)
 *
 * With tokens kept in units x 1e9 and elapsed in nanoseconds, rate x elapsed
 * (units/s x ns) is already in the scaled unit. Both factors are below 2^64,
 * so the product fits in 128 bits; the sum is capped before it can overflow.
 * A clock that reads earlier than last_ns adds nothing.
 */
static void refill(struct rl_bucket *b, uint64_t now)
{
    __int128 cap = (__int128)b->burst * (__int128)SCALE;

    if (now > b->last_ns) {
        __uint128_t add = (__uint128_t)b->rate * (now - b->last_ns);
        if (b->tokens >= cap || add >= (__uint128_t)(cap - b->tokens))
            b->tokens = cap;
        else
            b->tokens += (__int128)add;
        b->last_ns = now;
    }
}

void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst)
{
    b->rate = rate;
    b->burst = burst;
    b->tokens = (__int128)burst * (__int128)SCALE;
    b->last_ns = clock_now_ns();
}

void rl_bucket_set(struct rl_bucket *b, uint64_t rate, uint64_t burst)
{
    __int128 cap = (__int128)burst * (__int128)SCALE;

    refill(b, clock_now_ns());
    if (b->rate == 0) /* an unlimited bucket counts as full */
        b->tokens = cap;
    b->rate = rate;
    b->burst = burst;
    if (b->tokens > cap)
        b->tokens = cap;
}

/* The tokens a take of n needs: n, or the whole bucket when n is larger. */
static __int128 need_of(const struct rl_bucket *b, uint64_t n)
{
    return (__int128)(n < b->burst ? n : b->burst) * (__int128)SCALE;
}

/* Refills, then says whether n units may be taken (without taking them). */
static int has(struct rl_bucket *b, uint64_t n, uint64_t now)
{
    if (b->rate == 0)
        return 1;
    refill(b, now);
    return b->tokens >= need_of(b, n);
}

/* Takes n units; a take larger than the bucket leaves it in debt. */
static void take(struct rl_bucket *b, uint64_t n)
{
    if (b->rate != 0)
        b->tokens -= (__int128)n * (__int128)SCALE;
}

int rl_bucket_take_at(struct rl_bucket *b, uint64_t n, uint64_t now)
{
    if (!has(b, n, now))
        return 0;
    take(b, n);
    return 1;
}

int rl_bucket_take(struct rl_bucket *b, uint64_t n)
{
    return rl_bucket_take_at(b, n, clock_now_ns());
}

void rl_bucket_force_at(struct rl_bucket *b, uint64_t n, uint64_t now)
{
    if (b->rate == 0)
        return;
    refill(b, now);
    take(b, n);
}

void rl_bucket_force(struct rl_bucket *b, uint64_t n)
{
    rl_bucket_force_at(b, n, clock_now_ns());
}

/*
 * Time until has(n): the missing tokens over the rate, rounded up so that
 * waiting that long is always enough.
 */
uint64_t rl_bucket_wait_ns(struct rl_bucket *b, uint64_t n)
{
    return rl_bucket_wait_ns_at(b, n, clock_now_ns());
}

uint64_t rl_bucket_wait_ns_at(struct rl_bucket *b, uint64_t n, uint64_t now)
{
    __int128 need, wait;

    if (b->rate == 0)
        return 0;
    refill(b, now);
    need = need_of(b, n);
    if (b->tokens >= need)
        return 0;
    wait = (need - b->tokens + (__int128)b->rate - 1) / (__int128)b->rate;
    return wait >= (__int128)UINT64_MAX ? UINT64_MAX - 1 : (uint64_t)wait;
}

void rl_limit_init(struct rl_limit *l, const struct rl_limit_conf *c)
{
    rl_bucket_init(&l->soft_records, c->soft_records_rate, c->soft_records_burst);
    rl_bucket_init(&l->soft_bytes, c->soft_bytes_rate, c->soft_bytes_burst);
    rl_bucket_init(&l->hard_records, c->hard_records_rate, c->hard_records_burst);
    rl_bucket_init(&l->hard_bytes, c->hard_bytes_rate, c->hard_bytes_burst);
    l->admitted = 0;
    l->rejected = 0;
    l->soft_exceeded = 0;
}

void rl_limit_set(struct rl_limit *l, const struct rl_limit_conf *c)
{
    rl_bucket_set(&l->soft_records, c->soft_records_rate, c->soft_records_burst);
    rl_bucket_set(&l->soft_bytes, c->soft_bytes_rate, c->soft_bytes_burst);
    rl_bucket_set(&l->hard_records, c->hard_records_rate, c->hard_records_burst);
    rl_bucket_set(&l->hard_bytes, c->hard_bytes_rate, c->hard_bytes_burst);
}

/*
 * Hard level first: a request either fits both hard buckets or takes nothing
 * and is refused. Soft level second: if it fits both soft buckets it is taken
 * from them; if not it is still admitted, only counted, and the soft buckets
 * are left alone so that traffic at or under the soft rate keeps passing as
 * RL_ADMIT and only the excess is counted.
 */
int rl_limit_admit(struct rl_limit *l, uint64_t records, uint64_t bytes)
{
    uint64_t now = clock_now_ns();

    if (!has(&l->hard_records, records, now) || !has(&l->hard_bytes, bytes, now)) {
        l->rejected++;
        return RL_REJECT;
    }
    take(&l->hard_records, records);
    take(&l->hard_bytes, bytes);
    l->admitted++;
    if (!has(&l->soft_records, records, now) || !has(&l->soft_bytes, bytes, now)) {
        l->soft_exceeded++;
        return RL_ADMIT_SOFT;
    }
    take(&l->soft_records, records);
    take(&l->soft_bytes, bytes);
    return RL_ADMIT;
}
