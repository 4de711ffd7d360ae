/*
 * The remote backend's vtable, and its stream admin calls: each one is a
 * blocking request/reply; STREAM_LIST and STREAM_DESCRIBE are paged and
 * asked again while the server says `more`. A reply's contents are copied
 * out on the loop thread (on_reply) while the caller waits. Errors carry
 * the server's message into ns->errmsg.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client.h"

#define LIST_PAGE    1000 /* names per STREAM_LIST reply */
#define SEGMENT_PAGE 1000 /* segments per STREAM_DESCRIBE reply */

/* A blocking call with an optional reply hook; ns->errmsg on failure. */
static int call(struct dlog_ns *ns, struct wire_msg *m,
                int (*on_reply)(struct creq *, const struct wire_msg *), void *data)
{
    struct creq q;
    memset(&q, 0, sizeof q);
    q.on_reply = on_reply;
    q.data = data;
    int rv = client_call(client_of(ns), &q, m, ns->errmsg);
    client_req_clear(&q);
    return rv;
}

static int cl_create(struct dlog_ns *ns, const char *name,
                     const struct dlog_stream_config *cfg)
{
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_CREATE;
    m.u.create.stream = name;
    m.u.create.has_config = 1;
    m.u.create.config = *cfg;
    return call(ns, &m, NULL, NULL);
}

static int cl_delete(struct dlog_ns *ns, const char *name)
{
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_DELETE;
    m.u.del.stream = name;
    return call(ns, &m, NULL, NULL);
}

static int cl_truncate(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn)
{
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_TRUNCATE;
    m.u.truncate.stream = name;
    m.u.truncate.dlsn = dlsn;
    return call(ns, &m, NULL, NULL);
}

static int retention_reply(struct creq *q, const struct wire_msg *rep)
{
    uint32_t n = rep->u.retention_rep.deleted;
    *(int *)q->data = n > INT32_MAX ? INT32_MAX : (int)n;
    return 0;
}

static int cl_retention(struct dlog_ns *ns, const char *name)
{
    struct wire_msg m;
    int deleted = 0;
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_RETENTION;
    m.u.retention.stream = name;
    int rv = call(ns, &m, retention_reply, &deleted);
    return rv != 0 ? rv : deleted;
}

/* ---------------------------------------------------------------- list */

struct list_acc {
    char **names; /* NULL-terminated when n > 0 */
    size_t n, cap;
    int more;
};

static int list_reply(struct creq *q, const struct wire_msg *rep)
{
    struct list_acc *a = q->data;
    const struct wire_list_rep *lr = &rep->u.list_rep;
    if (a->n + lr->count + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 16;
        while (cap < a->n + lr->count + 1)
            cap *= 2;
        char **nn = realloc(a->names, cap * sizeof *nn);
        if (nn == NULL)
            return DLOG_ENOMEM;
        a->names = nn;
        a->cap = cap;
    }
    a->names[a->n] = NULL;
    for (size_t i = 0; i < lr->count; i++) {
        a->names[a->n] = strdup(lr->names[i]);
        if (a->names[a->n] == NULL)
            return DLOG_ENOMEM;
        a->names[++a->n] = NULL;
    }
    a->more = lr->more && lr->count > 0;
    return 0;
}

static int cl_list(struct dlog_ns *ns, char ***out, size_t *count)
{
    struct list_acc a = {NULL, 0, 0, 1};
    int rv = 0;
    while (a.more && rv == 0) {
        struct wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_STREAM_LIST;
        m.u.list.start_after = a.n > 0 ? a.names[a.n - 1] : "";
        m.u.list.limit = LIST_PAGE;
        rv = call(ns, &m, list_reply, &a);
    }
    if (rv == 0 && a.names == NULL && (a.names = calloc(1, sizeof *a.names)) == NULL)
        rv = DLOG_ENOMEM;
    if (rv != 0) {
        for (size_t i = 0; i < a.n; i++)
            free(a.names[i]);
        free(a.names);
        return rv;
    }
    *out = a.names;
    *count = a.n;
    return 0;
}

/* ---------------------------------------------------------------- describe */

struct describe_acc {
    struct dlog_stream_info *info; /* made from the first page */
    size_t cap;                    /* segments allocated */
    uint64_t after;                /* the last segment seen */
    int more;
};

static int describe_reply(struct creq *q, const struct wire_msg *rep)
{
    struct describe_acc *a = q->data;
    const struct wire_describe_rep *d = &rep->u.describe_rep;
    size_t page = d->info.nsegments;
    if (a->info == NULL) {
        a->info = calloc(1, sizeof *a->info);
        if (a->info == NULL)
            return DLOG_ENOMEM;
        *a->info = d->info;
        a->info->segments = NULL;
        a->info->nsegments = 0;
    }
    struct dlog_stream_info *info = a->info;
    if (info->nsegments + page > a->cap) {
        size_t cap = a->cap ? a->cap : 8;
        if (d->total_segments > cap && d->total_segments <= 100ULL * WIRE_MAX_SEGMENTS)
            cap = (size_t)d->total_segments; /* a hint: the stream may change meanwhile */
        while (cap < info->nsegments + page)
            cap *= 2;
        struct dlog_segment_info *s = realloc(info->segments, cap * sizeof *s);
        if (s == NULL)
            return DLOG_ENOMEM;
        info->segments = s;
        a->cap = cap;
    }
    if (page > 0) {
        memcpy(info->segments + info->nsegments, d->info.segments,
               page * sizeof *d->info.segments);
        a->after = d->info.segments[page - 1].seq;
    }
    info->nsegments += page;
    a->more = d->more && page > 0;
    return 0;
}

static int cl_describe(struct dlog_ns *ns, const char *name,
                       struct dlog_stream_info **out)
{
    struct describe_acc a = {NULL, 0, 0, 1};
    int rv = 0;
    while (a.more && rv == 0) {
        struct wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_STREAM_DESCRIBE;
        m.u.describe.stream = name;
        m.u.describe.seg_after = a.after;
        m.u.describe.max_segments = SEGMENT_PAGE;
        rv = call(ns, &m, describe_reply, &a);
    }
    if (rv != 0) {
        dlog_stream_info_free(a.info);
        return rv;
    }
    *out = a.info;
    return 0;
}

/* ---------------------------------------------------------------- limits */

static int cl_limits_set(struct dlog_ns *ns, const char *name,
                         const struct dlog_limits *l)
{
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_LIMITS_SET;
    m.u.limits_set.stream = name != NULL ? name : "";
    m.u.limits_set.limits = *l;
    return call(ns, &m, NULL, NULL);
}

static int limits_reply(struct creq *q, const struct wire_msg *rep)
{
    *(struct dlog_limits *)q->data = rep->u.limits_rep.limits;
    return 0;
}

static int cl_limits_get(struct dlog_ns *ns, const char *name, struct dlog_limits *l)
{
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_LIMITS_GET;
    m.u.limits_req.stream = name != NULL ? name : "";
    return call(ns, &m, limits_reply, l);
}

/* Copies the reply's stats (whose proxies live in the reply) to the heap. */
static int stats_reply(struct creq *q, const struct wire_msg *rep)
{
    const struct dlog_limit_stats *src = &rep->u.limits_stats_rep.stats;
    struct dlog_limit_stats *st = calloc(1, sizeof *st);

    if (st == NULL)
        return DLOG_ENOMEM;
    *st = *src;
    st->proxies = NULL;
    if (src->nproxies > 0) {
        st->proxies = calloc(src->nproxies, sizeof *st->proxies);
        if (st->proxies == NULL) {
            free(st);
            return DLOG_ENOMEM;
        }
        memcpy(st->proxies, src->proxies, src->nproxies * sizeof *st->proxies);
    }
    *(struct dlog_limit_stats **)q->data = st;
    return 0;
}

static int cl_limits_stats(struct dlog_ns *ns, const char *name,
                           struct dlog_limit_stats **out)
{
    struct wire_msg m;
    struct dlog_limit_stats *st = NULL;
    memset(&m, 0, sizeof m);
    m.type = WIRE_LIMITS_STATS;
    m.u.limits_req.stream = name != NULL ? name : "";
    int rv = call(ns, &m, stats_reply, &st);
    if (rv != 0) {
        dlog_limit_stats_free(st);
        return rv;
    }
    *out = st;
    return 0;
}

/* ---------------------------------------------------------------- vtable */

static uint32_t cl_notify_seq(struct dlog_ns *ns)
{
    return client_notify_seq(client_of(ns));
}

/*
 * The dispatcher's async reads try ops->read with timeout 0 and otherwise
 * wait here for a change. A remote backend hears of changes only through
 * its own replies (its writes, reads that brought records), so changes made
 * by other clients are noticed when the dispatcher's tick (DISPATCH_TICK_MS)
 * retries the read: async tailing costs a READ with wait 0 per tick and
 * pending read.
 */
static int cl_notify_wait(struct dlog_ns *ns, uint32_t seen, int timeout_ms)
{
    return client_notify_wait(client_of(ns), seen, timeout_ms);
}

const struct dlog_backend_ops client_ops = {
    .version = DLOG_BACKEND_VERSION,
    .name = "remote",
    .close = client_close,
    .stream_create = cl_create,
    .stream_delete = cl_delete,
    .stream_list = cl_list,
    .stream_describe = cl_describe,
    .stream_truncate = cl_truncate,
    .stream_apply_retention = cl_retention,
    .writer_open = cwriter_open,
    .write = cwriter_write,
    .writer_flush = cwriter_flush,
    .writer_close = cwriter_close,
    .reader_open = creader_open,
    .read = creader_read,
    .reader_close = creader_close,
    .notify_seq = cl_notify_seq,
    .notify_wait = cl_notify_wait,
    .limits_set = cl_limits_set,
    .limits_get = cl_limits_get,
    .limits_stats = cl_limits_stats,
};
