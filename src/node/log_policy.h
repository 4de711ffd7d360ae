/*
 * How much Raft log a data group keeps in memory (docs/operations.md,
 * "Memory and the Raft log").
 *
 * libraft 0.15 keeps every log entry in memory from `trailing` entries
 * before its last snapshot up to the newest, and counts both the snapshot
 * threshold and the trailing in entries. A data group's entries range from
 * a hundred bytes to 16 MiB, so fixed counts bound nothing: 1024 + 16384
 * entries of 64 KiB is over a gigabyte. This policy turns a byte budget
 * into the two counts from the mean size of the entries applied so far:
 * half of the budget for the entries since the last snapshot, half for
 * the trailing ones, each count clamped to [LOG_POLICY_MIN,
 * LOG_POLICY_MAX] (so a node holds about the budget, up to 1.2 times it
 * with the stagger below).
 *
 * Snapshots are cheap in dlog (a few dozen bytes), but each one makes
 * libraft close its open log segment, and closing a segment stalls the
 * node's loop for tens of milliseconds (io_destroy of the segment's AIO
 * context waits for the kernel). Replicas applying the same entries would
 * reach the same threshold at the same index and stall together, leaving
 * the leader without a quorum for that time; the threshold is therefore
 * staggered by node id, +1/8 per node (id mod 4), so that at most one
 * replica in most groups of three pauses at a time.
 *
 * Pure: the caller keeps the mean and applies the counts with
 * raft_set_snapshot_threshold/raft_set_snapshot_trailing.
 */
#ifndef DLOG_NODE_LOG_POLICY_H
#define DLOG_NODE_LOG_POLICY_H

#include <stdint.h>

#define LOG_POLICY_MIN 256u
#define LOG_POLICY_MAX 65536u

/* The mean entry size: an exponentially weighted mean with weight 1/64,
 * in 1/16 byte units (mean16 = 16 x bytes); 0 starts from the first. */
uint64_t log_policy_mean16(uint64_t mean16, uint64_t entry_bytes);

/* The snapshot threshold and trailing counts for a budget of
 * memory_bytes, a mean entry of mean16 / 16 bytes, on node node_id. */
void log_policy_counts(uint64_t memory_bytes, uint64_t mean16, uint64_t node_id,
                       unsigned *threshold, unsigned *trailing);

#endif
