/*
 * Rate-limiting building blocks: token buckets refilled lazily from the
 * monotonic clock (clock_now_ns(), so tests can use the fake clock), and a
 * per-stream limit with a soft and a hard level for records/s and bytes/s.
 *
 * No timers: a bucket remembers when it was last refilled and catches up on
 * each call. Nothing here allocates or locks; the caller owns every struct
 * and serialises access to it.
 */
#ifndef DLOG_PROXY_RATELIMIT_H
#define DLOG_PROXY_RATELIMIT_H

#include <stdint.h>

/*
 * A token bucket. rate is in units per second, burst in units; rate 0 means
 * unlimited (every take succeeds). Tokens are kept scaled by 1e9 (units x
 * nanoseconds-per-second) so refilling needs no division.
 */
struct rl_bucket {
    uint64_t rate;    /* units per second; 0 = unlimited */
    uint64_t burst;   /* bucket size in units */
    __int128 tokens;  /* units x 1e9, <= burst x 1e9; below 0 after a take
                         larger than the bucket (a debt the refill repays) */
    uint64_t last_ns; /* clock_now_ns() of the last refill */
};

/* Starts full (tokens = burst) at clock_now_ns(). */
void rl_bucket_init(struct rl_bucket *b, uint64_t rate, uint64_t burst);
/* Changes rate and burst at run time: refills at the old rate up to now,
 * then caps the tokens at the new burst. A bucket that was unlimited (rate
 * 0) starts full at the new burst. */
void rl_bucket_set(struct rl_bucket *b, uint64_t rate, uint64_t burst);
/*
 * 1 if n units were admitted (and taken), 0 if not (nothing taken). A take
 * of more than the burst is admitted when the bucket is full and leaves it
 * in debt (tokens below 0), so large writes are not starved and the
 * long-run rate still holds.
 */
int rl_bucket_take(struct rl_bucket *b, uint64_t n);
/* Takes n units whatever the tokens (a reservation: the bucket may go into
 * debt, which later refills repay before anything else is admitted). */
void rl_bucket_force(struct rl_bucket *b, uint64_t n);
/* Nanoseconds until n units would be admitted: 0 if now. */
uint64_t rl_bucket_wait_ns(struct rl_bucket *b, uint64_t n);
/* The same at a clock_now_ns() reading the caller already has (one clock
 * read for several buckets). */
int rl_bucket_take_at(struct rl_bucket *b, uint64_t n, uint64_t now);
void rl_bucket_force_at(struct rl_bucket *b, uint64_t n, uint64_t now);
uint64_t rl_bucket_wait_ns_at(struct rl_bucket *b, uint64_t n, uint64_t now);

enum { RL_ADMIT = 0, RL_ADMIT_SOFT = 1, RL_REJECT = 2 };

/* Rates and bursts of one limit; a rate of 0 disables that bucket. */
struct rl_limit_conf {
    uint64_t soft_records_rate, soft_records_burst;
    uint64_t soft_bytes_rate, soft_bytes_burst;
    uint64_t hard_records_rate, hard_records_burst;
    uint64_t hard_bytes_rate, hard_bytes_burst;
};

struct rl_limit {
    struct rl_bucket soft_records, soft_bytes;
    struct rl_bucket hard_records, hard_bytes;
    uint64_t admitted;      /* requests admitted (RL_ADMIT or RL_ADMIT_SOFT) */
    uint64_t rejected;      /* requests refused (RL_REJECT) */
    uint64_t soft_exceeded; /* admitted requests over the soft level */
};

/* Initialises all four buckets full and zeroes the counters. */
void rl_limit_init(struct rl_limit *l, const struct rl_limit_conf *c);
/* Changes the levels at run time; counters and (capped) tokens are kept. */
void rl_limit_set(struct rl_limit *l, const struct rl_limit_conf *c);
/*
 * Admits a request of records records and bytes bytes: RL_REJECT if it is
 * over the hard level (nothing taken from any bucket), else it is taken from
 * the hard buckets and RL_ADMIT_SOFT if over the soft level (soft buckets
 * untouched, soft_exceeded counted) or RL_ADMIT (taken from the soft buckets).
 */
int rl_limit_admit(struct rl_limit *l, uint64_t records, uint64_t bytes);

#endif
