/*
 * The proxy's rate limiter (docs/rate-limiting.md): admits each write
 * against its stream's limit and the namespace's, with token buckets
 * running at this proxy's share of each global limit, and keeps the shares
 * current.
 *
 * limiter_admit is called on the proxy's loop thread for every WRITE and
 * costs a hash lookup, a mutex and a few bucket updates (nothing at all for
 * a stream without limits in a namespace without limits). A thread of its
 * own wakes every interval to do the slow part against the metadata store:
 * re-read limits when the store's revision moved (the watch), report this
 * proxy's demand and metrics under "rl/report/<id>", read its grant from
 * "rl/grant/<id>", and, when it holds the "rl/coordinator" lease, divide
 * every limit among the live proxies max-min fairly (coord.c).
 */
#ifndef DLOG_PROXY_LIMITER_H
#define DLOG_PROXY_LIMITER_H

#include <stdint.h>

#include <dlog/dlog.h>

#include "meta/meta.h"

struct limiter;

struct limiter_options {
    const char *proxy_id; /* 1..63 bytes, unique among the namespace's proxies */
    uint64_t interval_ms; /* report and grant period; default 250 */
    uint64_t lease_ms;    /* grant lease, and when a silent proxy is dead; default 3000 */
};

/* Starts the limiter of a proxy serving ns, whose metadata store is meta
 * (both outlive the limiter). 0 or an error with a message in errmsg. */
int limiter_open(struct dlog_ns *ns, struct dlog_meta_ops *meta,
                 const struct limiter_options *o, struct limiter **out, char *errmsg);
/* Stops its thread and removes this proxy's report and grant. */
void limiter_close(struct limiter *l);

enum { LIM_ADMIT = 0, LIM_DELAY = 1, LIM_REJECT = 2 };

/*
 * Admits a write of records records and bytes bytes to stream: LIM_ADMIT;
 * LIM_DELAY with *wait_ns set, when the stream may wait (max_wait_ms) and
 * delay_ok — the tokens are then taken already, so the caller sends the
 * write after *wait_ns whatever happens meanwhile; or LIM_REJECT with the
 * reason in errmsg (DLOG_EOVERCAPACITY). Thread-safe.
 */
int limiter_admit(struct limiter *l, const char *stream, uint64_t records, uint64_t bytes,
                  int delay_ok, uint64_t *wait_ns, char *errmsg);

/* For tests and dlogd's log: 1 while this proxy is the coordinator. */
int limiter_is_coordinator(struct limiter *l);

#endif
