/*
 * Where segments live: a map (stream id, segment seq) -> placement token
 * (1..UINT32_MAX), kept by a segment store that spreads segments over
 * several places (seg_raft.c). Not thread-safe: the store locks around it.
 *
 * Memory: one slot of 24 bytes per segment located and not yet removed,
 * in a table that doubles when 3/4 full; seg_where_free releases it.
 */
#ifndef DLOG_SEG_SEG_WHERE_H
#define DLOG_SEG_SEG_WHERE_H

#include <stddef.h>
#include <stdint.h>

struct seg_where_slot;

struct seg_where {
    struct seg_where_slot *slots; /* cap slots, or NULL */
    size_t cap;                   /* 0 or a power of two */
    size_t n;                     /* used slots */
};

/* An empty map needs no call: zero it. Frees the table. */
void seg_where_free(struct seg_where *w);
/* Sets (stream, seq) to token; token 0 removes it. 0 or DLOG_ENOMEM (the
 * map is then unchanged). */
int seg_where_put(struct seg_where *w, uint64_t stream, uint64_t seq, uint32_t token);
/* The token of (stream, seq), or 0 when it has none. */
uint32_t seg_where_get(const struct seg_where *w, uint64_t stream, uint64_t seq);

#endif
