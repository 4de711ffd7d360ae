/*
 * The placement rule of place.h: least load (in steps), then fewest
 * segments, then lowest id; groups with a leader first.
 */
#include "seg/place.h"

/* <0 when a is the better place, >0 when b is, 0 never (ids differ). */
static int cmp(const struct place_group *a, size_t ia, const struct place_group *b,
               size_t ib, uint64_t step)
{
    uint64_t la = step ? a->load_bps / step : a->load_bps;
    uint64_t lb = step ? b->load_bps / step : b->load_bps;

    if ((a->has_leader != 0) != (b->has_leader != 0))
        return a->has_leader ? -1 : 1;
    if (la != lb)
        return la < lb ? -1 : 1;
    if (a->segments != b->segments)
        return a->segments < b->segments ? -1 : 1;
    return ia < ib ? -1 : 1;
}

int place_choose(const struct place_group *g, size_t n, uint64_t step)
{
    size_t best = 0;

    if (n == 0)
        return -1;
    for (size_t i = 1; i < n; i++)
        if (cmp(&g[i], i, &g[best], best, step) < 0)
            best = i;
    return (int)best;
}
