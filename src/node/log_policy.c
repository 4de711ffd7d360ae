/*
 * The byte budget of a data group's in-memory Raft log (node/log_policy.h).
 */
#include "node/log_policy.h"

uint64_t log_policy_mean16(uint64_t mean16, uint64_t entry_bytes)
{
    uint64_t x = entry_bytes > (UINT64_MAX >> 8) ? (UINT64_MAX >> 8) : entry_bytes;

    if (mean16 == 0)
        return x * 16 > 0 ? x * 16 : 1;
    /* mean += (x - mean) / 64, in sixteenths */
    if (x * 16 >= mean16)
        return mean16 + (x * 16 - mean16) / 64;
    return mean16 - (mean16 - x * 16) / 64;
}

static unsigned clamp(uint64_t v)
{
    if (v < LOG_POLICY_MIN)
        return LOG_POLICY_MIN;
    if (v > LOG_POLICY_MAX)
        return LOG_POLICY_MAX;
    return (unsigned)v;
}

void log_policy_counts(uint64_t memory_bytes, uint64_t mean16, uint64_t node_id,
                       unsigned *threshold, unsigned *trailing)
{
    uint64_t mean = mean16 / 16 > 0 ? mean16 / 16 : 1;
    uint64_t half = memory_bytes / 2 / mean;

    unsigned base = clamp(half);

    *trailing = base;
    /* staggered: replicas of one group snapshot at different indexes */
    *threshold = base + (unsigned)((uint64_t)base * (node_id % 4) / 8);
}
