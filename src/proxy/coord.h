/*
 * The rate-limit coordinator (docs/rate-limiting.md, "Coordination"): one
 * proxy of a namespace, the holder of the "rl/coordinator" lease, divides
 * every limit among the live proxies. Each round it reads every report,
 * forgets the proxies whose report has not changed for a lease (and deletes
 * their report and grant), computes for each limit and level the max-min
 * fair shares of the proxies' demands (maxmin.c), and writes each proxy its
 * grant. In cluster mode the lease goes to the metadata leader's proxy.
 *
 * Liveness is judged on the coordinator's own monotonic clock (a report's
 * sequence number moved, or not), never by comparing clocks of two hosts.
 * Not thread-safe: the limiter's thread owns it.
 */
#ifndef DLOG_PROXY_COORD_H
#define DLOG_PROXY_COORD_H

#include <stdint.h>

#include <dlog/dlog.h>

#include "meta/meta.h"

struct coord;

int coord_new(const char *self, uint64_t lease_ms, struct coord **out);
void coord_free(struct coord *c);
/* Keeps or takes the lease; while held, divides the limits and writes the
 * grants. Errors are logged and retried next round. */
void coord_round(struct coord *c, struct dlog_ns *ns, struct dlog_meta_ops *meta,
                 uint64_t interval_ms);
/* 1 while this proxy holds the coordinator lease. */
int coord_is_leader(const struct coord *c);

#endif
