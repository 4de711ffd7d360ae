/*
 * group_load.h: a ring of one-second samples of a running total.
 */
#include "node/group_load.h"

void group_load_sample(struct group_load *l, uint64_t now_ms, uint64_t total)
{
    if (l->n > 0 && now_ms < l->ms[l->head] + GROUP_LOAD_SAMPLE_MS)
        return;
    l->head = l->n == 0 ? 0 : (l->head + 1) % GROUP_LOAD_SLOTS;
    l->ms[l->head] = now_ms;
    l->total[l->head] = total;
    if (l->n < GROUP_LOAD_SLOTS)
        l->n++;
}

uint64_t group_load_bps(const struct group_load *l, uint64_t now_ms, uint64_t total)
{
    unsigned oldest;

    if (l->n == 0)
        return 0;
    oldest = (l->head + GROUP_LOAD_SLOTS + 1 - l->n) % GROUP_LOAD_SLOTS;
    if (now_ms <= l->ms[oldest] || total < l->total[oldest])
        return 0;
    return (total - l->total[oldest]) * 1000 / (now_ms - l->ms[oldest]);
}
