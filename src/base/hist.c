/*
 * Log-linear latency histogram (see hist.h), after HdrHistogram.
 *
 * 3 significant digits need a relative bucket width below 1/1000, so each
 * power-of-two range is cut into SUB_HALF = 1024 equal sub-buckets:
 *
 *   values [0, 2048)                 : bucket 0, width 1 (exact)
 *   values [1024 << b, 2048 << b)    : bucket b >= 1, width 2^b
 *
 * A value's relative error is at most width / lowest = 2^b / (1024 * 2^b)
 * = 1/1024 < 0.1%, and half that when reported at the bucket's midpoint.
 * Counter index = b * 1024 + (v >> b), contiguous from 0. Buckets reach
 * 2^42 ns (about 73 minutes); longer values are counted in the last
 * counter. min, max, count and sum are kept exactly.
 */
#include "hist.h"

#include <stdlib.h>
#include <string.h>

#define SUB_BITS 11                     /* 2048 sub-buckets in bucket 0 */
#define SUB_HALF (1u << (SUB_BITS - 1)) /* 1024 */
#define TOP_BIT  42                     /* values below 2^42 ns are bucketed */
#define NBUCKETS (TOP_BIT - SUB_BITS + 1)
#define NCOUNTS  ((NBUCKETS + 1) * SUB_HALF)

struct hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t sum_lo; /* 128-bit sum of samples, for the mean */
    uint64_t sum_hi;
    uint64_t counts[NCOUNTS];
};

static size_t value_index(uint64_t v)
{
    unsigned b;

    if (v >= (1ULL << TOP_BIT))
        return NCOUNTS - 1;
    /* The highest set bit of v, but at least SUB_BITS - 1. */
    b = (unsigned)(63 - __builtin_clzll(v | ((1ULL << SUB_BITS) - 1))) - (SUB_BITS - 1);
    return (size_t)b * SUB_HALF + (size_t)(v >> b);
}

/* The midpoint of counter idx's range of values. */
static uint64_t index_value(size_t idx)
{
    unsigned b = idx < 2 * SUB_HALF ? 0 : (unsigned)(idx / SUB_HALF) - 1;
    uint64_t sub = idx - (size_t)b * SUB_HALF;

    return (sub << b) + ((1ULL << b) >> 1);
}

struct hist *hist_new(void)
{
    struct hist *h = malloc(sizeof *h);

    if (h == NULL)
        return NULL;
    hist_reset(h);
    return h;
}

void hist_free(struct hist *h)
{
    free(h);
}

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static void add_sum(struct hist *h, uint64_t lo, uint64_t hi)
{
    h->sum_lo += lo;
    h->sum_hi += hi + (h->sum_lo < lo);
}

void hist_record(struct hist *h, uint64_t ns)
{
    h->counts[value_index(ns)]++;
    h->count++;
    add_sum(h, ns, 0);
    if (ns < h->min)
        h->min = ns;
    if (ns > h->max)
        h->max = ns;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->count == 0)
        return;
    for (size_t i = 0; i < NCOUNTS; i++)
        dst->counts[i] += src->counts[i];
    dst->count += src->count;
    add_sum(dst, src->sum_lo, src->sum_hi);
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t hist_count(const struct hist *h)
{
    return h->count;
}

uint64_t hist_min(const struct hist *h)
{
    return h->count == 0 ? 0 : h->min;
}

uint64_t hist_max(const struct hist *h)
{
    return h->max;
}

double hist_mean(const struct hist *h)
{
    if (h->count == 0)
        return 0.0;
    return ((double)h->sum_hi * 18446744073709551616.0 + (double)h->sum_lo) /
           (double)h->count;
}

/*
 * The sample of rank ceil(q * count) (1-based) in sorted order, so q = 0 is
 * the minimum and q = 1 the maximum, both exact; any other rank is reported
 * as its counter's midpoint, clamped to [min, max].
 */
uint64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0, v;
    double r;

    if (h->count == 0)
        return 0;
    if (!(q > 0.0)) /* also NaN */
        q = 0.0;
    if (q > 1.0)
        q = 1.0;
    r = q * (double)h->count;
    rank = (uint64_t)r;
    if ((double)rank < r)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    /* The smallest and largest samples are known exactly. */
    if (rank == 1)
        return h->min;
    if (rank == h->count)
        return h->max;

    for (size_t i = 0; i < NCOUNTS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            v = index_value(i);
            if (v < h->min)
                v = h->min;
            if (v > h->max)
                v = h->max;
            return v;
        }
    }
    return h->max; /* not reached: the counts add up to count */
}
