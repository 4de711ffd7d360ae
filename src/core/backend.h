/*
 * The backend interface behind the public API (DESIGN.md: "Backend").
 * dlog_open picks one by URI: the embedded backend (src/core/embedded.c,
 * "mem:" and "file:DIR") now; the remote backend (src/client/, "dlog://")
 * later. Versioned struct of function pointers; members are only appended.
 */
#ifndef DLOG_CORE_BACKEND_H
#define DLOG_CORE_BACKEND_H

#include <dlog/dlog.h>

#define DLOG_BACKEND_VERSION 2
struct dlog_backend_ops {
    uint32_t version;
    const char *name;
    void (*close)(struct dlog_ns *ns);
    int (*stream_create)(struct dlog_ns *ns, const char *name,
                         const struct dlog_stream_config *cfg);
    int (*stream_delete)(struct dlog_ns *ns, const char *name);
    int (*stream_list)(struct dlog_ns *ns, char ***names, size_t *count);
    int (*stream_describe)(struct dlog_ns *ns, const char *name,
                           struct dlog_stream_info **info);
    int (*stream_truncate)(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn);
    int (*stream_apply_retention)(struct dlog_ns *ns, const char *name);
    int (*writer_open)(struct dlog_ns *ns, const char *stream,
                       const struct dlog_writer_options *opts, struct dlog_writer **w);
    int (*write)(struct dlog_writer *w, struct dlog_write_req *req,
                 const struct dlog_record *recs, size_t n);
    int (*writer_flush)(struct dlog_writer *w);
    int (*writer_close)(struct dlog_writer *w);
    int (*reader_open)(struct dlog_ns *ns, const char *stream,
                       const struct dlog_reader_options *opts, struct dlog_reader **r);
    /* Non-blocking when timeout_ms == 0. */
    int (*read)(struct dlog_reader *r, struct dlog_record *recs, size_t max,
                int timeout_ms);
    void (*reader_close)(struct dlog_reader *r);
    /* The counter rung when any stream changes, and a wait on it (tailing). */
    uint32_t (*notify_seq)(struct dlog_ns *ns);
    int (*notify_wait)(struct dlog_ns *ns, uint32_t seen, int timeout_ms);

    /* Version 2: rate limits and quotas; name NULL means the namespace. */
    int (*limits_set)(struct dlog_ns *ns, const char *name, const struct dlog_limits *l);
    int (*limits_get)(struct dlog_ns *ns, const char *name, struct dlog_limits *l);
    int (*limits_stats)(struct dlog_ns *ns, const char *name,
                        struct dlog_limit_stats **out);
};

#endif
