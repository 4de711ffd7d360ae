/*
 * The segment store interface (DESIGN.md: "Segment store").
 *
 * A segment store keeps the entries of log segments, keyed by (stream id,
 * segment sequence number, entry id), together with each segment's state:
 * its fence epoch, whether it is sealed, its next entry id and its counts.
 * It knows nothing of stream names or segment lists; those are metadata.
 *
 * Implementations: seg_mem.c (tests, "mem:"), seg_lmdb.c ("file:DIR",
 * fsync'd), seg_raft.c (the data groups of a cluster, "cluster://"). Like struct raft_io,
 * the interface is a versioned struct of function pointers; new members are only ever
 * appended.
 *
 * Calls are synchronous and thread-safe: a successful append is durable
 * when it returns (fsync'd, or committed by a quorum). The core calls them
 * from writer threads, never from a libuv loop thread.
 */
#ifndef DLOG_SEG_SEG_H
#define DLOG_SEG_SEG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/errmsg.h"

struct seg_info {
    uint64_t fence_epoch; /* appends below this epoch get DLOG_EFENCED */
    int sealed;
    uint64_t next_entry; /* entries are 0 .. next_entry-1 */
    uint64_t records;
    uint64_t bytes;
    uint64_t first_txid; /* 0 while empty */
    uint64_t last_txid;  /* of the stream so far (carried from the previous segment) */
    uint64_t created_ms;
    /* Position of the last record: the last entry that is not a
     * continuation fragment, and its last slot. Meaningless while empty. */
    uint64_t last_rec_entry;
    uint32_t last_rec_slot;
};

/* seg_append.flags */
#define SEG_APPEND_AUTO_TXID 0x1 /* assign txids from last_txid + 1 */

struct seg_append {
    uint64_t epoch;
    const struct iovec *entries; /* each a complete entry (seg/entry.h) */
    int n;
    uint32_t flags;
    /* results */
    uint64_t first_entry; /* the id given to entries[0]; the rest follow */
    uint64_t first_txid;  /* txid of the first record (after auto assignment) */
    struct seg_info info; /* the segment's state after the append */
};

/* Visit one stored entry; return 0 to go on, non-zero to stop. */
typedef int (*seg_visit_fn)(void *arg, uint64_t entry_id, const void *p, size_t len);

#define SEG_OPS_VERSION 2
struct dlog_seg_ops {
    uint32_t version;
    void *impl;
    char errmsg[DLOG_ERRMSG_SIZE];

    /* Create segment (stream, seq) fenced at epoch, carrying start_txid as
     * its last txid; a no-op if it exists. */
    int (*open)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                uint64_t start_txid);
    /*
     * Atomically append a->n entries: all or none. Errors: DLOG_ENOTFOUND,
     * DLOG_ESEALED, DLOG_EFENCED (a->epoch below the fence), DLOG_ETXID (a
     * txid below the segment's last), DLOG_ENOSPC, DLOG_EIO.
     */
    int (*append)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                  struct seg_append *a);
    /*
     * Visit entries from entry id `from` in order, until max_bytes have been
     * visited (at least one entry), the end, or visit returns non-zero. The
     * entry memory is valid only during the visit. Returns the number of
     * entries visited, or an error (DLOG_ENOTFOUND when the segment does
     * not exist).
     */
    int (*read)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t from,
                size_t max_bytes, seg_visit_fn visit, void *arg);
    int (*info)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                struct seg_info *out);
    /* Raise the fence to epoch (never lowers it). */
    int (*fence)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch);
    /* Seal (idempotent) unless fenced above epoch; *out gets the final state. */
    int (*seal)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                struct seg_info *out);
    /* Delete the segment and its entries (idempotent). */
    int (*remove)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq);
    /* The change counter, rung after every append, seal and remove. */
    uint32_t (*notify_seq)(struct dlog_seg_ops *s);
    /* Wait until notify_seq differs from seen; 0 or DLOG_ETIMEDOUT. */
    int (*notify_wait)(struct dlog_seg_ops *s, uint32_t seen, int timeout_ms);
    void (*close)(struct dlog_seg_ops *s);

    /*
     * Version 2: placement, for stores that spread segments over several
     * places (seg_raft: data groups). Both may be NULL (one place only).
     *
     * place chooses where a new segment goes and returns it as a token
     * (1..UINT32_MAX; 0: "the default rule", also the answer when the store
     * cannot tell); it binds nothing. The caller records the token in the
     * segment's metadata (meta_segment.place) and calls locate before its
     * first call on the segment. stream is the stream id when known, else 0.
     *
     * locate tells the store where segment (stream, seq) lives: the token
     * recorded in metadata (0, DLOG_ENOMEM). The store keeps it for every later call on
     * that segment (a later locate replaces it; remove forgets it). A segment never
     * located lives where the default rule puts it (seg_raft: data group stream id mod
     * G), which is where older versions put every segment. Callers locate every placed
     * segment of a stream record they load, before using it.
     */
    uint32_t (*place)(struct dlog_seg_ops *s, uint64_t stream);
    int (*locate)(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint32_t token);
};

int seg_mem_open(struct dlog_seg_ops **out);
/* dir must exist; files: dir/data.mdb, dir/lock.mdb, dir/notify. */
int seg_lmdb_open(const char *dir, uint64_t map_size, int no_sync,
                  struct dlog_seg_ops **out, char *errmsg);
/* Cluster mode (seg_raft.c): the data groups of the nodes at addrs,
 * "host:port[,...]" (their listen addresses). Asks a node how many data
 * groups there are: 0, DLOG_EUNAVAILABLE (no node answers), DLOG_EINVAL,
 * DLOG_ENOMEM, with words in errmsg. */
int seg_raft_open(const char *addrs, struct dlog_seg_ops **out, char *errmsg);

#endif
