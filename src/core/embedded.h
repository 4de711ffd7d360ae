/*
 * The embedded backend: src/core over a metadata store and a segment store,
 * in the application's own process. "mem:" uses meta_mem + seg_mem;
 * "file:DIR" uses meta_lmdb (DIR/meta) + seg_lmdb (DIR/data);
 * "cluster://H:P,..." uses meta_raft + seg_raft (node calls to a cluster).
 */
#ifndef DLOG_CORE_EMBEDDED_H
#define DLOG_CORE_EMBEDDED_H

#include "core/core.h"
#include "meta/meta.h"
#include "seg/seg.h"

struct shared_stores;

struct embedded {
    struct dlog_meta_ops *meta;
    struct dlog_seg_ops *seg;
    struct shared_stores *shared; /* file: stores shared within the process */
};

static inline struct embedded *embedded_of(struct dlog_ns *ns)
{
    return ns->impl;
}

/* The metadata store of an embedded namespace, or NULL for another backend
 * (the proxy keeps its rate-limit reports there). Owned by ns. */
struct dlog_meta_ops *embedded_meta(struct dlog_ns *ns);

/* stream.c: metadata operations shared by admin, writers and readers. */

/* Load a stream's record; DLOG_ENOTFOUND with a message in errmsg. */
int stream_load(struct embedded *e, const char *name, struct meta_stream *ms,
                char *errmsg);
/*
 * Make sure the stream's open segment exists in the segment store and
 * return its seq (writer open, and recovery after a crash mid-roll).
 */
int stream_open_segment(struct embedded *e, const char *name, uint64_t epoch,
                        uint64_t *seq, char *errmsg);
/*
 * Roll the stream: seal the open segment `cur` (if it is still the open
 * one) and add a new open segment, at the writer's epoch. If another writer
 * already rolled past cur, just return the current open segment.
 * DLOG_EFENCED when the stream's epoch has moved past epoch.
 */
int stream_roll(struct embedded *e, const char *name, uint64_t epoch, uint64_t cur,
                uint64_t *seq, char *errmsg);
/* Bump the epoch (exclusive writers) and fence the open segment. */
int stream_bump_epoch(struct embedded *e, const char *name, uint64_t *epoch,
                      uint64_t *seq, char *errmsg);
/* Apply retention; returns the number of segments deleted or an error. */
int stream_retain(struct embedded *e, const char *name, char *errmsg);
/* Retention, and also delete the oldest sealed segments while the bytes
 * retained plus need exceed quota (0: no quota). As stream_retain. */
int stream_make_room(struct embedded *e, const char *name, uint64_t quota, uint64_t need,
                     char *errmsg);
/* The bytes a stream retains: its sealed segments and the open one. */
uint64_t stream_usage(struct embedded *e, const struct meta_stream *ms);

/* limits.c: the limits part of the backend vtable, and the namespace's
 * limits and usage for the writers' quota checks. */
int emb_limits_set(struct dlog_ns *ns, const char *name, const struct dlog_limits *l);
int emb_limits_get(struct dlog_ns *ns, const char *name, struct dlog_limits *l);
int emb_limits_stats(struct dlog_ns *ns, const char *name, struct dlog_limit_stats **out);
/* The namespace's limits (all 0 when never set). */
int ns_limits_load(struct embedded *e, struct dlog_limits *l, char *errmsg);
/* The bytes every stream of the namespace retains. */
int ns_usage(struct embedded *e, uint64_t *used, char *errmsg);
/* dlog_limits_get for an embedded namespace, with its own errmsg instead of
 * ns's, so that another thread (the proxy's limiter) may call it. */
int embedded_limits_load(struct dlog_ns *ns, const char *name, struct dlog_limits *l,
                         char *errmsg);

/* stream.c: the admin part of the backend vtable. */
int emb_create(struct dlog_ns *ns, const char *name,
               const struct dlog_stream_config *cfg);
int emb_delete(struct dlog_ns *ns, const char *name);
int emb_list(struct dlog_ns *ns, char ***names, size_t *count);
int emb_describe(struct dlog_ns *ns, const char *name, struct dlog_stream_info **out);
int emb_truncate(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn);
int emb_retention(struct dlog_ns *ns, const char *name);

/* writer.c, reader.c */
int ewriter_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_writer_options *opts, struct dlog_writer **w);
int ewriter_write(struct dlog_writer *w, struct dlog_write_req *req,
                  const struct dlog_record *recs, size_t n);
int ewriter_flush(struct dlog_writer *w);
int ewriter_close(struct dlog_writer *w);
int ereader_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_reader_options *opts, struct dlog_reader **r);
int ereader_read(struct dlog_reader *r, struct dlog_record *recs, size_t max,
                 int timeout_ms);
void ereader_close(struct dlog_reader *r);

#endif
