/*
 * A latency histogram for benchmarks: log-linear buckets (HdrHistogram
 * style, 3 significant digits, 1 ns to ~1 hour), fixed memory, O(1)
 * record, mergeable. Values are nanoseconds. Not thread-safe: keep one per
 * thread and hist_merge them.
 */
#ifndef DLOG_BASE_HIST_H
#define DLOG_BASE_HIST_H

#include <stdint.h>

struct hist;

/* NULL on out of memory. */
struct hist *hist_new(void);
void hist_free(struct hist *h);
void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t ns);
/* Add every sample of src into dst. */
void hist_merge(struct hist *dst, const struct hist *src);
uint64_t hist_count(const struct hist *h);
uint64_t hist_min(const struct hist *h);
uint64_t hist_max(const struct hist *h); /* exact */
double hist_mean(const struct hist *h);
/* The value at quantile q in [0,1] (0.5 = p50, 0.999 = p999), within 0.1%; 0 if empty. */
uint64_t hist_quantile(const struct hist *h, double q);

#endif
