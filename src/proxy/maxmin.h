/*
 * Max-min fair division of a global limit among proxies, and leases on the
 * shares handed out. Pure functions: no clock reads, no allocation.
 */
#ifndef DLOG_PROXY_MAXMIN_H
#define DLOG_PROXY_MAXMIN_H

#include <stddef.h>
#include <stdint.h>

/*
 * Divides total among n demands max-min fairly (water-filling) and writes
 * share[0..n). Each gets min(demand, fair level); what the small demands
 * leave is redistributed among the rest. Shares never sum to more than
 * total. When every demand is met, the unused capacity is split equally on
 * top of every share (a lower index gets the odd unit of a remainder), so
 * proxies have headroom for growth. demand and share stay the caller's; they
 * may be NULL only when n is 0. Returns 0, or DLOG_EINVAL.
 */
int maxmin_allocate(uint64_t total, const uint64_t *demand, size_t n, uint64_t *share);

/* A share granted to a proxy until expiry_ns (monotonic clock). */
struct mm_lease {
    uint64_t granted;
    uint64_t expiry_ns;
};

/*
 * The share a proxy may use at now_ns: the granted share while the lease
 * holds (now_ns < lease_expiry_ns), and once it lapses the safe share
 * global / nproxies, which cannot oversubscribe global whatever the others
 * do (nproxies 0 is taken as 1).
 */
uint64_t maxmin_effective_share(uint64_t granted, uint64_t lease_expiry_ns,
                                uint64_t now_ns, uint64_t global, size_t nproxies);

/* Records a grant of share valid for ttl_ns from now_ns (saturating). */
void mm_lease_grant(struct mm_lease *l, uint64_t share, uint64_t now_ns, uint64_t ttl_ns);
/* maxmin_effective_share() for a lease. */
uint64_t mm_lease_share(const struct mm_lease *l, uint64_t now_ns, uint64_t global,
                        size_t nproxies);

#endif
