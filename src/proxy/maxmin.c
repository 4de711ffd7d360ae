/*
 * Max-min fairness by water-filling, and share leases.
 */
#include "proxy/maxmin.h"

#include <dlog/err.h>

/*
 * Water-filling: raise a common level until capacity runs out; a demand
 * below the level is met in full and leaves the rest to the others.
 *
 * Each pass computes level = remaining / k over the k unmet demands and
 * meets every demand <= level. The level only rises between passes, so a
 * demand met in one pass is met in the final allocation too. A pass that
 * meets none ends it: each unmet demand gets the level, and the remainder
 * (< k) goes one unit each to the lowest indexes. O(n^2) at worst, fine for
 * the number of proxies. Entries with share[i] == demand[i] are met; a zero
 * demand is met from the start.
 */
int maxmin_allocate(uint64_t total, const uint64_t *demand, size_t n, uint64_t *share)
{
    uint64_t rem = total;
    size_t i;

    if (n == 0)
        return 0;
    if (demand == NULL || share == NULL)
        return DLOG_EINVAL;
    for (i = 0; i < n; i++)
        share[i] = 0;
    for (;;) {
        uint64_t level;
        size_t k = 0;
        int met = 0;

        for (i = 0; i < n; i++)
            k += share[i] < demand[i];
        if (k == 0)
            break;
        level = rem / k;
        for (i = 0; i < n; i++) {
            if (share[i] < demand[i] && demand[i] <= level) {
                share[i] = demand[i];
                rem -= demand[i];
                met = 1;
            }
        }
        if (met)
            continue;
        rem -= level * k;
        for (i = 0; i < n; i++) {
            if (share[i] < demand[i]) {
                share[i] = level + (rem > 0);
                rem -= rem > 0;
            }
        }
        return 0;
    }
    /* Every demand met: split what is left equally on top. */
    for (i = 0; i < n; i++)
        share[i] += rem / n + (i < rem % n);
    return 0;
}

uint64_t maxmin_effective_share(uint64_t granted, uint64_t lease_expiry_ns,
                                uint64_t now_ns, uint64_t global, size_t nproxies)
{
    if (now_ns < lease_expiry_ns)
        return granted;
    return global / (nproxies == 0 ? 1 : nproxies);
}

void mm_lease_grant(struct mm_lease *l, uint64_t share, uint64_t now_ns, uint64_t ttl_ns)
{
    l->granted = share;
    l->expiry_ns = ttl_ns > UINT64_MAX - now_ns ? UINT64_MAX : now_ns + ttl_ns;
}

uint64_t mm_lease_share(const struct mm_lease *l, uint64_t now_ns, uint64_t global,
                        size_t nproxies)
{
    return maxmin_effective_share(l->granted, l->expiry_ns, now_ns, global, nproxies);
}
