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
    uint64_t epoch;      /* epoch of the writer that opened it */
    uint64_t entries;    /* when sealed: entries 0 .. entries-1 */
    uint64_t records;    /* when sealed */
    uint64_t bytes;      /* when sealed */
    uint64_t first_txid; /* when sealed */
    uint64_t last_txid;  /* when sealed; when open, the stream's last txid at open */
    uint64_t created_ms;
    uint64_t sealed_ms;
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

#define META_OPS_VERSION 1
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
};

int meta_mem_open(struct dlog_meta_ops **out);
/* dir must exist; files: dir/data.mdb, dir/lock.mdb. */
int meta_lmdb_open(const char *dir, uint64_t map_size, struct dlog_meta_ops **out,
                   char *errmsg);

#endif
