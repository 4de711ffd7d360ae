/*
 * The load of a data group as one replica measures it: bytes of appends
 * applied per second over the last few seconds (the placement's measure,
 * docs/cluster.md, "Placement"). Samples of a running total are kept one
 * second apart in a small ring; the rate is the total's growth since the
 * oldest sample kept. Pure (the caller passes the time), so it is tested
 * alone; not thread-safe (the node's loop thread owns it).
 */
#ifndef DLOG_NODE_GROUP_LOAD_H
#define DLOG_NODE_GROUP_LOAD_H

#include <stdint.h>

#define GROUP_LOAD_SLOTS     5    /* samples kept: about 5 s of history */
#define GROUP_LOAD_SAMPLE_MS 1000 /* between two samples */

struct group_load {
    uint64_t ms[GROUP_LOAD_SLOTS];
    uint64_t total[GROUP_LOAD_SLOTS];
    unsigned head; /* the slot of the newest sample */
    unsigned n;    /* samples kept, 0..GROUP_LOAD_SLOTS */
};

/* Records (now_ms, total) when the newest sample is GROUP_LOAD_SAMPLE_MS
 * old or more (or there is none); otherwise does nothing. */
void group_load_sample(struct group_load *l, uint64_t now_ms, uint64_t total);

/* Bytes per second between the oldest sample kept and (now_ms, total); 0
 * without samples, without time passed, or when the total went down (the
 * counter restarted). */
uint64_t group_load_bps(const struct group_load *l, uint64_t now_ms, uint64_t total);

#endif
