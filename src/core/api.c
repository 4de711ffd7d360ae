/*
 * The public API: argument checks shared by every backend, then a call
 * through the namespace's backend vtable.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/dlog.h>

#include "base/clock.h"
#include "core/core.h"
#include "core/dispatch.h"

const char *dlog_version(void)
{
    return PACKAGE_VERSION;
}

void dlog_options_init(struct dlog_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = DLOG_OPTIONS_VERSION;
}

void dlog_stream_config_init(struct dlog_stream_config *c)
{
    memset(c, 0, sizeof *c);
    c->version = DLOG_STREAM_CONFIG_VERSION;
    c->segment_max_bytes = 256ULL * 1024 * 1024;
    c->max_record_bytes = DLOG_RECORD_MAX_DEFAULT;
}

void dlog_limits_init(struct dlog_limits *l)
{
    memset(l, 0, sizeof *l);
    l->version = DLOG_LIMITS_VERSION;
}

/* 0, or DLOG_EINVAL with the reason in errmsg. */
static int limits_check(const struct dlog_limits *l, char *errmsg)
{
    if (l->soft_records_per_sec > 0 && l->records_per_sec > 0 &&
        l->soft_records_per_sec > l->records_per_sec)
        return errmsg_fail(errmsg, DLOG_EINVAL,
                           "soft records/s level %llu is above the hard level %llu",
                           (unsigned long long)l->soft_records_per_sec,
                           (unsigned long long)l->records_per_sec);
    if (l->soft_bytes_per_sec > 0 && l->bytes_per_sec > 0 &&
        l->soft_bytes_per_sec > l->bytes_per_sec)
        return errmsg_fail(errmsg, DLOG_EINVAL,
                           "soft bytes/s level %llu is above the hard level %llu",
                           (unsigned long long)l->soft_bytes_per_sec,
                           (unsigned long long)l->bytes_per_sec);
    if (l->quota_policy > DLOG_QUOTA_TRUNCATE)
        return errmsg_fail(errmsg, DLOG_EINVAL, "unknown quota policy %u",
                           l->quota_policy);
    if (l->burst_ms > 3600 * 1000 || l->max_wait_ms > 3600 * 1000)
        return errmsg_fail(errmsg, DLOG_EINVAL,
                           "burst_ms and max_wait_ms must be at most an hour");
    return 0;
}

void dlog_writer_options_init(struct dlog_writer_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = DLOG_WRITER_OPTIONS_VERSION;
    o->linger_us = 500;
    o->batch_bytes = 1024 * 1024;
    o->max_pending_bytes = 64 * 1024 * 1024;
}

void dlog_reader_options_init(struct dlog_reader_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = DLOG_READER_OPTIONS_VERSION;
    o->end = DLOG_DLSN_MAX;
    o->fetch_bytes = 4 * 1024 * 1024;
}

int dlog_stream_name_valid(const char *name)
{
    if (name == NULL)
        return 0;
    size_t n = strlen(name);
    if (n == 0 || n > DLOG_STREAM_NAME_MAX || name[0] == '.' || name[0] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/';
        if (!ok)
            return 0;
    }
    return strstr(name, "..") == NULL && strstr(name, "//") == NULL;
}

#define CHECK_NAME(ns, name)                                                             \
    do {                                                                                 \
        if (!dlog_stream_name_valid(name)) {                                             \
            errmsg_printf((ns)->errmsg, "invalid stream name '%.64s'",                   \
                          (name) ? (name) : "(null)");                                   \
            return DLOG_ENAME;                                                           \
        }                                                                                \
    } while (0)

int dlog_open(const char *uri, const struct dlog_options *opts, struct dlog_ns **out,
              char *errmsg)
{
    char scratch[DLOG_ERRMSG_SIZE];
    if (errmsg == NULL)
        errmsg = scratch;
    errmsg[0] = '\0';
    if (out != NULL)
        *out = NULL;
    if (out == NULL || uri == NULL) {
        errmsg_copy(errmsg, "dlog_open: uri and ns are required");
        return DLOG_EINVAL;
    }
    *out = NULL;
    struct dlog_ns *ns = calloc(1, sizeof *ns);
    if (ns == NULL)
        return DLOG_ENOMEM;
    if (opts != NULL)
        ns->opts = *opts;
    else
        dlog_options_init(&ns->opts);
    pthread_mutex_init(&ns->lock, NULL);
    int rv = strncmp(uri, "dlog://", 7) == 0 ? client_open(uri, ns, errmsg)
                                             : embedded_open(uri, ns, errmsg);
    if (rv != 0)
        goto err;
    if (ns->opts.loop != NULL) {
        rv = dispatch_open(ns, &ns->disp);
        if (rv != 0) {
            ns->ops->close(ns);
            errmsg_copy(errmsg, "cannot start the dispatcher");
            goto err;
        }
    }
    *out = ns;
    return 0;
err:
    pthread_mutex_destroy(&ns->lock);
    free(ns);
    return rv;
}

void dlog_close(struct dlog_ns *ns)
{
    if (ns == NULL)
        return;
    for (;;) {
        pthread_mutex_lock(&ns->lock);
        struct dlog_reader *r = ns->readers;
        pthread_mutex_unlock(&ns->lock);
        if (r == NULL)
            break;
        dlog_reader_close(r);
    }
    for (;;) {
        pthread_mutex_lock(&ns->lock);
        struct dlog_writer *w = ns->writers;
        pthread_mutex_unlock(&ns->lock);
        if (w == NULL)
            break;
        dlog_writer_close(w);
    }
    if (ns->disp != NULL)
        dispatch_close(ns->disp);
    ns->ops->close(ns);
    pthread_mutex_destroy(&ns->lock);
    free(ns);
}

const char *dlog_errmsg(struct dlog_ns *ns)
{
    return ns != NULL ? ns->errmsg : "no namespace";
}

void core_writer_link(struct dlog_ns *ns, struct dlog_writer *w)
{
    pthread_mutex_lock(&ns->lock);
    w->next = ns->writers;
    ns->writers = w;
    pthread_mutex_unlock(&ns->lock);
}

void core_writer_unlink(struct dlog_ns *ns, struct dlog_writer *w)
{
    pthread_mutex_lock(&ns->lock);
    for (struct dlog_writer **pp = &ns->writers; *pp; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    pthread_mutex_unlock(&ns->lock);
}

void core_reader_link(struct dlog_ns *ns, struct dlog_reader *r)
{
    pthread_mutex_lock(&ns->lock);
    r->next = ns->readers;
    ns->readers = r;
    pthread_mutex_unlock(&ns->lock);
}

void core_reader_unlink(struct dlog_ns *ns, struct dlog_reader *r)
{
    pthread_mutex_lock(&ns->lock);
    for (struct dlog_reader **pp = &ns->readers; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    pthread_mutex_unlock(&ns->lock);
}

struct sync_wait {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
};

void core_sync_cb(struct dlog_write_req *req, int status)
{
    struct sync_wait *sw = req->data;
    (void)status;
    pthread_mutex_lock(&sw->mu);
    sw->done = 1;
    pthread_cond_signal(&sw->cv);
    pthread_mutex_unlock(&sw->mu);
}

void core_write_done(struct dlog_ns *ns, struct dlog_write_req *req)
{
    if (ns->disp != NULL && req->cb != core_sync_cb)
        dispatch_write_done(ns->disp, req);
    else
        req->cb(req, req->status);
}

/* ---- streams ---- */

int dlog_stream_create(struct dlog_ns *ns, const char *name,
                       const struct dlog_stream_config *cfg)
{
    struct dlog_stream_config def;
    CHECK_NAME(ns, name);
    dlog_stream_config_init(&def);
    if (cfg != NULL && cfg->version < 2) /* no limits in a version 1 struct */
        memcpy(&def, cfg, offsetof(struct dlog_stream_config, limits));
    else if (cfg != NULL)
        def = *cfg;
    def.version = DLOG_STREAM_CONFIG_VERSION;
    def.limits.version = DLOG_LIMITS_VERSION;
    cfg = &def;
    if (limits_check(&cfg->limits, ns->errmsg) != 0)
        return DLOG_EINVAL;
    if (cfg->max_record_bytes == 0 || cfg->max_record_bytes > DLOG_RECORD_MAX_LIMIT ||
        cfg->compression > DLOG_COMPRESS_ZSTD || cfg->segment_max_bytes == 0) {
        errmsg_printf(ns->errmsg,
                      "invalid stream config: max_record_bytes must be 1..1 GiB, "
                      "compression none/lz4/zstd, segment_max_bytes > 0");
        return DLOG_EINVAL;
    }
    return ns->ops->stream_create(ns, name, cfg);
}

int dlog_stream_delete(struct dlog_ns *ns, const char *name)
{
    CHECK_NAME(ns, name);
    return ns->ops->stream_delete(ns, name);
}

int dlog_stream_list(struct dlog_ns *ns, char ***names, size_t *count)
{
    if (names == NULL)
        return DLOG_EINVAL;
    size_t dummy;
    return ns->ops->stream_list(ns, names, count ? count : &dummy);
}

void dlog_stream_list_free(char **names)
{
    if (names == NULL)
        return;
    for (char **p = names; *p != NULL; p++)
        free(*p);
    free(names);
}

int dlog_stream_describe(struct dlog_ns *ns, const char *name,
                         struct dlog_stream_info **info)
{
    CHECK_NAME(ns, name);
    if (info == NULL)
        return DLOG_EINVAL;
    return ns->ops->stream_describe(ns, name, info);
}

void dlog_stream_info_free(struct dlog_stream_info *info)
{
    if (info != NULL)
        free(info->segments);
    free(info);
}

/* ---- limits ---- */

int dlog_limits_set(struct dlog_ns *ns, const char *name, const struct dlog_limits *l)
{
    struct dlog_limits v;

    if (name != NULL)
        CHECK_NAME(ns, name);
    if (l == NULL)
        return errmsg_fail(ns->errmsg, DLOG_EINVAL, "limits: NULL");
    v = *l;
    v.version = DLOG_LIMITS_VERSION;
    if (limits_check(&v, ns->errmsg) != 0)
        return DLOG_EINVAL;
    if (ns->ops->version < 2 || ns->ops->limits_set == NULL)
        return errmsg_fail(ns->errmsg, DLOG_ENOTSUP, "this backend has no limits");
    return ns->ops->limits_set(ns, name, &v);
}

int dlog_limits_get(struct dlog_ns *ns, const char *name, struct dlog_limits *l)
{
    if (name != NULL)
        CHECK_NAME(ns, name);
    if (l == NULL)
        return errmsg_fail(ns->errmsg, DLOG_EINVAL, "limits: NULL");
    if (ns->ops->version < 2 || ns->ops->limits_get == NULL)
        return errmsg_fail(ns->errmsg, DLOG_ENOTSUP, "this backend has no limits");
    dlog_limits_init(l);
    return ns->ops->limits_get(ns, name, l);
}

int dlog_limits_stats(struct dlog_ns *ns, const char *name, struct dlog_limit_stats **out)
{
    if (name != NULL)
        CHECK_NAME(ns, name);
    if (out == NULL)
        return errmsg_fail(ns->errmsg, DLOG_EINVAL, "stats: NULL");
    *out = NULL;
    if (ns->ops->version < 2 || ns->ops->limits_stats == NULL)
        return errmsg_fail(ns->errmsg, DLOG_ENOTSUP, "this backend has no limits");
    return ns->ops->limits_stats(ns, name, out);
}

void dlog_limit_stats_free(struct dlog_limit_stats *s)
{
    if (s != NULL)
        free(s->proxies);
    free(s);
}

static int positions(struct dlog_ns *ns, const char *name, struct dlog_dlsn *first,
                     struct dlog_dlsn *last, uint64_t *txid)
{
    struct dlog_stream_info *info;
    int rv = dlog_stream_describe(ns, name, &info);
    if (rv != 0)
        return rv;
    if (txid != NULL)
        *txid = info->last_txid;
    if (info->records == 0) {
        dlog_stream_info_free(info);
        errmsg_printf(ns->errmsg, "stream '%s' has no records", name);
        return DLOG_EEOF;
    }
    if (first != NULL)
        *first = info->first;
    if (last != NULL)
        *last = info->last;
    dlog_stream_info_free(info);
    return 0;
}

int dlog_stream_first_dlsn(struct dlog_ns *ns, const char *name, struct dlog_dlsn *out)
{
    return positions(ns, name, out, NULL, NULL);
}

int dlog_stream_last_dlsn(struct dlog_ns *ns, const char *name, struct dlog_dlsn *out)
{
    return positions(ns, name, NULL, out, NULL);
}

int dlog_stream_last_txid(struct dlog_ns *ns, const char *name, uint64_t *out)
{
    return positions(ns, name, NULL, NULL, out);
}

int dlog_stream_truncate(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn)
{
    CHECK_NAME(ns, name);
    return ns->ops->stream_truncate(ns, name, dlsn);
}

int dlog_stream_apply_retention(struct dlog_ns *ns, const char *name)
{
    CHECK_NAME(ns, name);
    return ns->ops->stream_apply_retention(ns, name);
}

/* ---- writers ---- */

int dlog_writer_open(struct dlog_ns *ns, const char *stream,
                     const struct dlog_writer_options *opts, struct dlog_writer **w)
{
    struct dlog_writer_options def;
    CHECK_NAME(ns, stream);
    if (w == NULL)
        return DLOG_EINVAL;
    *w = NULL;
    if (opts == NULL) {
        dlog_writer_options_init(&def);
        opts = &def;
    }
    if (opts->mode != DLOG_WRITER_SHARED && opts->mode != DLOG_WRITER_EXCLUSIVE) {
        errmsg_printf(ns->errmsg, "invalid writer mode %d", opts->mode);
        return DLOG_EINVAL;
    }
    int rv = ns->ops->writer_open(ns, stream, opts, w);
    if (rv == 0)
        core_writer_link(ns, *w);
    return rv;
}

uint64_t dlog_writer_epoch(struct dlog_writer *w)
{
    return w->epoch;
}

const char *dlog_writer_errmsg(struct dlog_writer *w)
{
    return w != NULL ? w->errmsg : "no writer";
}

int dlog_write(struct dlog_writer *w, struct dlog_write_req *req,
               const struct dlog_record *recs, size_t n, dlog_write_cb cb)
{
    if (w == NULL || req == NULL || recs == NULL || n == 0 || cb == NULL ||
        n > UINT32_MAX)
        return DLOG_EINVAL;
    for (size_t i = 0; i < n; i++)
        if ((recs[i].len > 0 && recs[i].payload == NULL) ||
            (recs[i].key_len > 0 && recs[i].key == NULL)) {
            errmsg_printf(w->errmsg, "record %zu: NULL payload or key with a length", i);
            return DLOG_EINVAL;
        }
    req->cb = cb;
    req->status = 0;
    req->next_ = NULL;
    return w->ns->ops->write(w, req, recs, n);
}

int dlog_write_sync(struct dlog_writer *w, const struct dlog_record *recs, size_t n,
                    struct dlog_dlsn *first)
{
    struct sync_wait sw = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    struct dlog_write_req req;
    memset(&req, 0, sizeof req);
    req.data = &sw;
    int rv = dlog_write(w, &req, recs, n, core_sync_cb);
    if (rv != 0)
        return rv;
    rv = dlog_writer_flush(w);
    pthread_mutex_lock(&sw.mu);
    while (!sw.done)
        pthread_cond_wait(&sw.cv, &sw.mu);
    pthread_mutex_unlock(&sw.mu);
    if (req.status == 0 && first != NULL)
        *first = req.first;
    return req.status != 0 ? req.status : rv;
}

int dlog_writer_flush(struct dlog_writer *w)
{
    if (w == NULL)
        return DLOG_EINVAL;
    return w->ns->ops->writer_flush(w);
}

int dlog_writer_close(struct dlog_writer *w)
{
    if (w == NULL)
        return DLOG_EINVAL;
    struct dlog_ns *ns = w->ns;
    core_writer_unlink(ns, w);
    return ns->ops->writer_close(w);
}

/* ---- readers ---- */

int dlog_reader_open(struct dlog_ns *ns, const char *stream,
                     const struct dlog_reader_options *opts, struct dlog_reader **r)
{
    struct dlog_reader_options def;
    CHECK_NAME(ns, stream);
    if (r == NULL)
        return DLOG_EINVAL;
    *r = NULL;
    if (opts == NULL) {
        dlog_reader_options_init(&def);
        opts = &def;
    }
    if (opts->start < DLOG_START_HEAD || opts->start > DLOG_START_TXID ||
        (opts->key_prefix_len > 0 && opts->key_prefix == NULL)) {
        errmsg_printf(ns->errmsg, "invalid reader options");
        return DLOG_EINVAL;
    }
    int rv = ns->ops->reader_open(ns, stream, opts, r);
    if (rv == 0)
        core_reader_link(ns, *r);
    return rv;
}

const char *dlog_reader_errmsg(struct dlog_reader *r)
{
    return r != NULL ? r->errmsg : "no reader";
}

struct dlog_dlsn dlog_reader_position(struct dlog_reader *r)
{
    return r->pos;
}

int dlog_read(struct dlog_reader *r, struct dlog_record *recs, size_t max, int timeout_ms)
{
    if (r == NULL || recs == NULL || max == 0)
        return DLOG_EINVAL;
    if (r->pending != NULL) {
        errmsg_printf(r->errmsg, "an async read is in flight on this reader");
        return DLOG_EBUSY;
    }
    return r->ns->ops->read(r, recs, max, timeout_ms);
}

int dlog_read_next(struct dlog_reader *r, struct dlog_record *rec, int timeout_ms)
{
    return dlog_read(r, rec, 1, timeout_ms);
}

int dlog_read_async(struct dlog_reader *r, struct dlog_read_req *req,
                    struct dlog_record *recs, size_t max, int timeout_ms, dlog_read_cb cb)
{
    if (r == NULL || req == NULL || recs == NULL || max == 0 || cb == NULL)
        return DLOG_EINVAL;
    if (r->ns->disp == NULL) {
        errmsg_printf(r->errmsg, "async reads need a loop in dlog_options");
        return DLOG_ENOTSUP;
    }
    if (r->pending != NULL) {
        errmsg_printf(r->errmsg, "an async read is already in flight on this reader");
        return DLOG_EBUSY;
    }
    req->cb = cb;
    req->recs = recs;
    req->max = max;
    req->timeout_ms = timeout_ms;
    req->status = 0;
    req->reader_ = r;
    req->deadline_ = clock_deadline_ms(timeout_ms);
    r->pending = req;
    dispatch_read(r->ns->disp, req);
    return 0;
}

void dlog_reader_close(struct dlog_reader *r)
{
    if (r == NULL)
        return;
    struct dlog_ns *ns = r->ns;
    if (r->pending != NULL && ns->disp != NULL)
        dispatch_cancel_reader(ns->disp, r);
    core_reader_unlink(ns, r);
    ns->ops->reader_close(r);
}
