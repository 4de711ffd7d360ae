/*
 * Placement of new segments on data groups (DESIGN.md, "Placement": "a new
 * segment is placed on a data group chosen by load ... so a stream moves
 * between groups at segment boundaries without copying data").
 *
 * The choice is a pure function of what the nodes report per group, so
 * that it can be tested alone: the least loaded group, loads compared in
 * steps of `step` bytes/s (so idle and nearly idle groups tie); among
 * those, the one storing the fewest segments; then the lowest group id.
 * Groups without a known leader are chosen only when none has one.
 */
#ifndef DLOG_SEG_PLACE_H
#define DLOG_SEG_PLACE_H

#include <stddef.h>
#include <stdint.h>

/* Loads within one step of 16 KiB/s count as equal. */
#define PLACE_LOAD_STEP (16u * 1024)

/* What is known of one data group. */
struct place_group {
    uint64_t load_bps; /* bytes/s of appends applied lately */
    uint64_t segments; /* segments it stores */
    int has_leader;    /* 1: a leader is known */
};

/* The index of the group to place a new segment on (0..n-1), or -1 when
 * n is 0. step 0 compares loads exactly. */
int place_choose(const struct place_group *g, size_t n, uint64_t step);

#endif
