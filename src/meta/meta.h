/*
 * The metadata store interface (DESIGN.md: "Metadata store").
 *
 * Holds each stream's record: id, config, epoch, truncation point and its
 * list of log segments. Every record carries a version and every update is
 * a compare-and-set on it, so several writers (threads or processes) agree
 * on segment rolls and epochs without locks.
 *
 * Implementations: meta_mem.c ("mem:"), meta_lmdb.c ("file:DIR"), later
 * meta_raft.c (the metadata Raft group) and an etcd one. Versioned struct of
 * function pointers; new members are only ever appended. Calls are
 * synchronous and thread-safe.
 */
#ifndef DLOG_META_META_H
#define DLOG_META_META_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>

#include "base/buf.h"
#include "base/errmsg.h"

struct meta_segment {
    uint64_t seq;
    uint32_t state;      /* enum dlog_segment_state */
    uint64_t epoch;      /* the epoch whose writer writes it (an epoch bump seals a
                            segment with records and opens one of its own) */
    uint64_t entries;    /* when sealed: entries 0 .. entries-1 */
    uint64_t records;    /* when sealed */
    uint64_t bytes;      /* when sealed */
    uint64_t first_txid; /* when sealed */
    uint64_t last_txid;  /* when sealed; when open, the stream's last txid at open */
    uint64_t created_ms;
    uint64_t sealed_ms;
    /* Where the segment store keeps its entries: the token its place()
     * gave (seg/seg.h; in cluster mode the data group + 1), or 0 when not
     * recorded (segments of older versions, stores without placement):
     * the store's default rule applies. */
    uint32_t place;
};

struct meta_stream {
    uint64_t id;
    char name[DLOG_STREAM_NAME_MAX + 1];
    uint64_t version;
    uint64_t epoch;
    struct dlog_stream_config cfg;
    uint64_t created_ms;
    struct dlog_dlsn trunc; /* truncation point */
    uint64_t next_seq;      /* sequence number of the next new segment */
    uint32_t nseg;
    struct meta_segment *segs; /* ascending; owned (malloc) */
};

/* Frees s->segs; s itself is the caller's. */
void meta_stream_clear(struct meta_stream *s);
/* Deep copy; 0 or DLOG_ENOMEM. */
int meta_stream_copy(struct meta_stream *dst, const struct meta_stream *src);
/* Add a segment at the end; 0 or DLOG_ENOMEM. */
int meta_stream_push_segment(struct meta_stream *s, const struct meta_segment *g);
/* The last segment, or NULL. */
struct meta_segment *meta_stream_last(struct meta_stream *s);
struct meta_segment *meta_stream_find(struct meta_stream *s, uint64_t seq);

/* Binary encoding of a stream record (meta_codec.c). */
int meta_stream_encode(const struct meta_stream *s, struct bytes *out);
int meta_stream_decode(const void *p, size_t len, struct meta_stream *s);

/*
 * Small keyed values beside the streams (version 2 of the interface):
 * namespace settings ("ns/limits"), rate-limit demand reports and grants
 * ("rl/..."), coordinator leases. Keys are 1..META_KEY_MAX bytes of text
 * without NUL; values at most META_VALUE_MAX bytes. Every key carries a
 * version (1 when created, +1 per put), and every put is a compare-and-set.
 */
#define META_KEY_MAX   256
#define META_VALUE_MAX (64 * 1024)
/* kv_put's expected version: the key must not exist yet. */
#define META_KV_CREATE 0
/* kv_put's and kv_remove's expected version: whatever is stored. */
#define META_KV_ANY UINT64_MAX

/* One key of a kv_list answer; key and value are owned by the list. */
struct meta_kv {
    char *key;
    struct bytes value;
    uint64_t version;
};
void meta_kv_list_free(struct meta_kv *items, size_t n);

#define META_OPS_VERSION 2
struct dlog_meta_ops {
    uint32_t version;
    void *impl;
    char errmsg[DLOG_ERRMSG_SIZE];

    /* Store a new stream: assigns s->id and sets s->version to 1.
     * DLOG_EEXIST if the name is taken. */
    int (*create)(struct dlog_meta_ops *m, struct meta_stream *s);
    /* Fill *out (caller clears it with meta_stream_clear). DLOG_ENOTFOUND. */
    int (*get)(struct dlog_meta_ops *m, const char *name, struct meta_stream *out);
    /* Names in byte order, NULL-terminated; free with dlog_stream_list_free. */
    int (*list)(struct dlog_meta_ops *m, char ***names, size_t *count);
    /* Compare-and-set: stored version must equal s->version, which becomes
     * s->version + 1. DLOG_ECONFLICT or DLOG_ENOTFOUND otherwise. */
    int (*update)(struct dlog_meta_ops *m, struct meta_stream *s);
    /* Delete if the stored version equals version (0: any). */
    int (*remove)(struct dlog_meta_ops *m, const char *name, uint64_t version);
    void (*close)(struct dlog_meta_ops *m);

    /* Version 2. */

    /* The value of key into *value (bytes_init'ed by the caller, who frees
     * it) and its version into *version (may be NULL). DLOG_ENOTFOUND. */
    int (*kv_get)(struct dlog_meta_ops *m, const char *key, struct bytes *value,
                  uint64_t *version);
    /* Compare-and-set: *version is the version expected (META_KV_CREATE,
     * META_KV_ANY or a stored version); on success it becomes the new one.
     * DLOG_ECONFLICT (the stored version differs, or the key exists for
     * META_KV_CREATE), DLOG_ENOTFOUND (expected a version, found nothing),
     * DLOG_EINVAL (bad key, value too large). */
    int (*kv_put)(struct dlog_meta_ops *m, const char *key, const void *value, size_t len,
                  uint64_t *version);
    /* Deletes key if its version equals version (META_KV_ANY: any).
     * DLOG_ENOTFOUND, DLOG_ECONFLICT. */
    int (*kv_remove)(struct dlog_meta_ops *m, const char *key, uint64_t version);
    /* Every key starting with prefix ("" for all), in byte order, into an
     * array the caller frees with meta_kv_list_free. */
    int (*kv_list)(struct dlog_meta_ops *m, const char *prefix, struct meta_kv **items,
                   size_t *count);
    /*
     * The store's revision: a counter that grows on every successful change
     * (streams and keys). Watching is comparing revisions: a caller that
     * remembers the revision it last read state at and finds a larger one
     * re-reads. Cheap enough to call every few milliseconds.
     */
    int (*revision)(struct dlog_meta_ops *m, uint64_t *rev);
};

int meta_mem_open(struct dlog_meta_ops **out);
/* dir must exist; files: dir/data.mdb, dir/lock.mdb. */
int meta_lmdb_open(const char *dir, uint64_t map_size, struct dlog_meta_ops **out,
                   char *errmsg);

/*
 * The metadata Raft group of a cluster (meta_raft.c), reached by node calls
 * at addrs, "host:port,host:port,..." (the nodes' listen addresses; any
 * subset that includes a live member will do). Connects lazily: opening
 * checks the addresses only. Each call follows leader redirects and
 * retries other nodes for up to a few seconds (meta_raft_set_timeout), so
 * a leader change is seen as latency. Calls are synchronous and
 * thread-safe (one at a time per store). 0, DLOG_EINVAL (bad addresses,
 * errmsg says which), DLOG_ENOMEM.
 */
int meta_raft_open(const char *addrs, struct dlog_meta_ops **out, char *errmsg);
/* The deadline of each later call of a store from meta_raft_open, in ms. */
void meta_raft_set_timeout(struct dlog_meta_ops *m, unsigned ms);

#endif
