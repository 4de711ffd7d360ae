/*
 * The rules of docs/protocol.md that concern values rather than msgpack
 * types, in one place for both directions: wire_encode refuses to send a
 * message that breaks one (DLOG_EINVAL) and wire_decode refuses to accept it
 * (DLOG_EPROTO), so the two can never disagree about what is valid.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "wire/wire_int.h"

int wire_fail(char *errmsg, int code, const char *fmt, ...)
{
    char buf[DLOG_ERRMSG_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    errmsg_copy(errmsg, buf);
    return code;
}

void wire_limits_init(struct wire_limits *lim)
{
    lim->max_frame = WIRE_MAX_FRAME_DEFAULT;
    lim->max_objects = WIRE_MAX_OBJECTS;
}

struct wire_limits wire_limits_get(const struct wire_limits *lim)
{
    struct wire_limits l;

    wire_limits_init(&l);
    if (lim != NULL) {
        if (lim->max_frame > 0)
            l.max_frame = lim->max_frame < UINT32_MAX ? lim->max_frame : UINT32_MAX;
        if (lim->max_objects > 0)
            l.max_objects = lim->max_objects;
    }
    return l;
}

const char *wire_type_name(unsigned type)
{
    switch (type & ~(unsigned)WIRE_REPLY) {
#define TYPE_NAME_CASE(name, value)                                                      \
    case value:                                                                          \
        return #name;
        WIRE_TYPE_MAP(TYPE_NAME_CASE)
#undef TYPE_NAME_CASE
    default:
        return NULL;
    }
}

int wire_type_known(unsigned type)
{
    return type < WIRE_REPLY && wire_type_name(type) != NULL;
}

int wire_status_ok(int status)
{
    return status <= 0 && status >= DLOG_ERR_MIN;
}

int wire_address_ok(const char *s, size_t len)
{
    size_t colon = len;
    uint32_t port = 0;

    if (len < 3 || len > WIRE_MAX_ADDRESS || memchr(s, '\0', len) != NULL)
        return 0;
    while (colon > 0 && s[colon - 1] != ':')
        colon--;
    if (colon < 2 || colon == len || len - colon > 5) /* host, ':', 1-5 digits */
        return 0;
    for (size_t i = colon; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        port = port * 10 + (uint32_t)(s[i] - '0');
    }
    return port >= 1 && port <= 65535;
}

/* ------------------------------------------------------------- fields */

/* A NUL-terminated string of min..max bytes. */
int wire_check_text(char *errmsg, const char *field, const char *s, size_t min,
                    size_t max)
{
    size_t n;

    if (s == NULL)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: missing", field);
    n = strnlen(s, max + 1);
    if (n < min || n > max)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: %s%zu bytes, expected %zu..%zu", field,
                         n > max ? "over " : "", n > max ? max : n, min, max);
    return 0;
}

static int name(char *errmsg, const char *field, const char *s)
{
    return wire_check_text(errmsg, field, s, 1, WIRE_MAX_NAME);
}

/* Bytes: p may be NULL only when len is 0. */
static int bytes(char *errmsg, const char *field, const void *p, size_t len, size_t max)
{
    if (len > max)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: %zu bytes, at most %zu", field, len,
                         max);
    if (p == NULL && len > 0)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: NULL with length %zu", field, len);
    return 0;
}

static int range(char *errmsg, const char *field, uint64_t v, uint64_t min, uint64_t max)
{
    if (v < min || v > max)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: %llu is out of range %llu..%llu",
                         field, (unsigned long long)v, (unsigned long long)min,
                         (unsigned long long)max);
    return 0;
}

static int limits(char *errmsg, const struct dlog_limits *l)
{
    return range(errmsg, "limits.quota_policy", l->quota_policy, DLOG_QUOTA_REJECT,
                 DLOG_QUOTA_TRUNCATE);
}

static int config(char *errmsg, const struct dlog_stream_config *c)
{
    int rv = range(errmsg, "config.compression", c->compression, DLOG_COMPRESS_NONE,
                   DLOG_COMPRESS_ZSTD);

    if (rv == 0)
        rv = range(errmsg, "config.auto_txid", (uint64_t)(unsigned)c->auto_txid, 0, 1);
    if (rv == 0)
        rv = limits(errmsg, &c->limits);
    return rv;
}

/* A stream name, or "" for the namespace. */
static int name_or_ns(char *errmsg, const char *field, const char *s)
{
    return s != NULL && s[0] == '\0' ? 0 : name(errmsg, field, s);
}

static int stats_rep(char *errmsg, const struct dlog_limit_stats *st)
{
    int rv = limits(errmsg, &st->limits);

    if (rv == 0 && st->nproxies > WIRE_MAX_PROXIES)
        rv = wire_fail(errmsg, DLOG_EINVAL, "proxies: %zu, at most %d", st->nproxies,
                       WIRE_MAX_PROXIES);
    if (rv == 0 && st->proxies == NULL && st->nproxies > 0)
        rv = wire_fail(errmsg, DLOG_EINVAL, "proxies: NULL");
    for (size_t i = 0; rv == 0 && i <= st->nproxies; i++) {
        const struct dlog_proxy_stats *p = i == 0 ? &st->total : &st->proxies[i - 1];
        if (memchr(p->proxy, '\0', sizeof p->proxy) == NULL)
            rv = wire_fail(errmsg, DLOG_EINVAL, "proxies[%zu].proxy: not NUL-terminated",
                           i);
    }
    return rv;
}

static int records(char *errmsg, const struct dlog_record *recs, size_t n, size_t min)
{
    int rv;

    if (n < min || n > WIRE_MAX_RECORDS)
        return wire_fail(errmsg, DLOG_EINVAL, "records: %zu records, expected %zu..%d", n,
                         min, WIRE_MAX_RECORDS);
    if (recs == NULL && n > 0)
        return wire_fail(errmsg, DLOG_EINVAL, "records: NULL");
    for (size_t i = 0; i < n; i++) {
        rv = bytes(errmsg, "payload", recs[i].payload, recs[i].len, UINT32_MAX);
        if (rv == 0)
            rv = bytes(errmsg, "key", recs[i].key, recs[i].key_len, WIRE_MAX_KEY);
        if (rv == 0 && recs[i].flags != 0)
            rv = wire_fail(errmsg, DLOG_EINVAL, "flags: 0x%x, must be 0 in version 1",
                           (unsigned)recs[i].flags);
        if (rv != 0) {
            errmsg_wrapf(errmsg, "records[%zu]", i);
            return rv;
        }
    }
    return 0;
}

static int describe_rep(char *errmsg, const struct wire_describe_rep *r)
{
    const struct dlog_stream_info *info = &r->info;
    int rv;

    if (memchr(info->name, '\0', sizeof info->name) == NULL)
        return wire_fail(errmsg, DLOG_EINVAL, "info.name: not NUL-terminated");
    rv = name(errmsg, "info.name", info->name);
    if (rv == 0)
        rv = config(errmsg, &info->config);
    if (rv == 0 && info->nsegments > WIRE_MAX_SEGMENTS)
        rv = wire_fail(errmsg, DLOG_EINVAL, "segments: %zu segments, at most %d",
                       info->nsegments, WIRE_MAX_SEGMENTS);
    if (rv == 0 && info->segments == NULL && info->nsegments > 0)
        rv = wire_fail(errmsg, DLOG_EINVAL, "segments: NULL");
    for (size_t i = 0; rv == 0 && i < info->nsegments; i++) {
        if (info->segments[i].state != DLOG_SEGMENT_OPEN &&
            info->segments[i].state != DLOG_SEGMENT_SEALED)
            rv = wire_fail(errmsg, DLOG_EINVAL, "segments[%zu].state: %d is not 0 or 1",
                           i, info->segments[i].state);
    }
    return rv;
}

/* ------------------------------------------------------------- bodies */

static int request(const struct wire_msg *m, char *errmsg)
{
    if (WIRE_IS_DATA_NODE(m->type))
        return wire_data_check_request(m, errmsg);
    if (WIRE_IS_META_NODE(m->type))
        return wire_node_check_request(m, errmsg);
    switch (m->type) {
    case WIRE_HELLO: {
        const struct wire_hello *h = &m->u.hello;
        int rv = range(errmsg, "min_version", h->min_version, 1, 255);
        if (rv == 0)
            rv = range(errmsg, "max_version", h->max_version, h->min_version, 255);
        if (rv == 0)
            rv = wire_check_text(errmsg, "client_name", h->client_name, 0,
                                 WIRE_MAX_PEER_NAME);
        if (rv == 0)
            rv = bytes(errmsg, "token", h->token, h->token_len, WIRE_MAX_TOKEN);
        return rv;
    }
    case WIRE_PING:
        return 0;
    case WIRE_STREAM_CREATE: {
        int rv = name(errmsg, "stream", m->u.create.stream);
        if (rv == 0 && m->u.create.has_config)
            rv = config(errmsg, &m->u.create.config);
        return rv;
    }
    case WIRE_STREAM_DELETE:
    case WIRE_STREAM_RETENTION:
    case WIRE_RELEASE:
        /* del, retention and release are the same struct */
        return name(errmsg, "stream", m->u.del.stream);
    case WIRE_STREAM_LIST: {
        int rv = wire_check_text(errmsg, "start_after", m->u.list.start_after, 0,
                                 WIRE_MAX_NAME);
        if (rv == 0)
            rv = range(errmsg, "limit", m->u.list.limit, 1, WIRE_MAX_LIST);
        return rv;
    }
    case WIRE_STREAM_DESCRIBE: {
        int rv = name(errmsg, "stream", m->u.describe.stream);
        if (rv == 0)
            rv = range(errmsg, "max_segments", m->u.describe.max_segments, 0,
                       WIRE_MAX_SEGMENTS);
        return rv;
    }
    case WIRE_STREAM_TRUNCATE:
        return name(errmsg, "stream", m->u.truncate.stream);
    case WIRE_LIMITS_SET: {
        int rv = name_or_ns(errmsg, "stream", m->u.limits_set.stream);
        if (rv == 0)
            rv = limits(errmsg, &m->u.limits_set.limits);
        return rv;
    }
    case WIRE_LIMITS_GET:
    case WIRE_LIMITS_STATS:
        return name_or_ns(errmsg, "stream", m->u.limits_req.stream);
    case WIRE_WRITER_OPEN: {
        int rv = name(errmsg, "stream", m->u.writer_open.stream);
        if (rv == 0)
            rv = range(errmsg, "mode", m->u.writer_open.mode, DLOG_WRITER_SHARED,
                       DLOG_WRITER_EXCLUSIVE);
        return rv;
    }
    case WIRE_WRITE: {
        const struct wire_write *w = &m->u.write;
        int rv = name(errmsg, "stream", w->stream);
        if (rv == 0 && w->producer_id != 0 && w->sequence == 0)
            rv = wire_fail(errmsg, DLOG_EINVAL, "producer: sequence must be >= 1");
        if (rv == 0 && w->producer_id == 0 && w->sequence != 0)
            rv = wire_fail(errmsg, DLOG_EINVAL,
                           "producer: a sequence needs a producer id");
        if (rv == 0)
            rv = records(errmsg, w->recs, w->nrecs, 1);
        return rv;
    }
    case WIRE_WRITER_FLUSH:
    case WIRE_WRITER_CLOSE:
    case WIRE_HEARTBEAT:
        /* flush, close and heartbeat are the same struct */
        return name(errmsg, "stream", m->u.flush.stream);
    case WIRE_READER_OPEN: {
        int rv = name(errmsg, "stream", m->u.reader_open.stream);
        if (rv == 0)
            rv = range(errmsg, "start.kind", m->u.reader_open.start, DLOG_START_HEAD,
                       DLOG_START_TXID);
        return rv;
    }
    case WIRE_READ: {
        const struct wire_read *r = &m->u.read;
        int rv = name(errmsg, "stream", r->stream);
        if (rv == 0)
            rv = range(errmsg, "max_records", r->max_records, 1, WIRE_MAX_RECORDS);
        if (rv == 0)
            rv = range(errmsg, "max_bytes", r->max_bytes, 1, UINT32_MAX);
        if (rv == 0)
            rv = range(errmsg, "wait_ms", r->wait_ms, 0, WIRE_MAX_WAIT_MS);
        if (rv == 0)
            rv = bytes(errmsg, "key_prefix", r->key_prefix, r->key_prefix_len,
                       WIRE_MAX_KEY);
        return rv;
    }
    default:
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x is not a request", m->type);
    }
}

static int reply(const struct wire_msg *m, char *errmsg)
{
    if (WIRE_IS_DATA_NODE(m->type))
        return wire_data_check_reply(m, errmsg);
    if (WIRE_IS_META_NODE(m->type))
        return wire_node_check_reply(m, errmsg);
    switch (m->type) {
    case WIRE_HELLO: {
        const struct wire_hello_rep *h = &m->u.hello_rep;
        int rv = range(errmsg, "version", h->version, 1, 255);
        if (rv == 0)
            rv = wire_check_text(errmsg, "server_name", h->server_name, 0,
                                 WIRE_MAX_PEER_NAME);
        if (rv == 0)
            rv = range(errmsg, "max_frame", h->max_frame, WIRE_MIN_FRAME_LIMIT,
                       UINT32_MAX);
        return rv;
    }
    case WIRE_STREAM_LIST: {
        const struct wire_list_rep *l = &m->u.list_rep;
        if (l->count > WIRE_MAX_LIST)
            return wire_fail(errmsg, DLOG_EINVAL, "names: %zu names, at most %d",
                             l->count, WIRE_MAX_LIST);
        if (l->names == NULL && l->count > 0)
            return wire_fail(errmsg, DLOG_EINVAL, "names: NULL");
        for (size_t i = 0; i < l->count; i++) {
            int rv = name(errmsg, "name", l->names[i]);
            if (rv != 0) {
                errmsg_wrapf(errmsg, "names[%zu]", i);
                return rv;
            }
        }
        return 0;
    }
    case WIRE_STREAM_DESCRIBE:
        return describe_rep(errmsg, &m->u.describe_rep);
    case WIRE_STREAM_RETENTION:
        return range(errmsg, "deleted", m->u.retention_rep.deleted, 0, INT32_MAX);
    case WIRE_LIMITS_GET:
        return limits(errmsg, &m->u.limits_rep.limits);
    case WIRE_LIMITS_STATS:
        return stats_rep(errmsg, &m->u.limits_stats_rep.stats);
    case WIRE_WRITER_OPEN:
        return config(errmsg, &m->u.writer_open_rep.config);
    case WIRE_READ:
        return records(errmsg, m->u.read_rep.recs, m->u.read_rep.nrecs, 0);
    case WIRE_PING:
    case WIRE_STREAM_CREATE:
    case WIRE_STREAM_DELETE:
    case WIRE_STREAM_TRUNCATE:
    case WIRE_LIMITS_SET:
    case WIRE_WRITE:
    case WIRE_WRITER_FLUSH:
    case WIRE_WRITER_CLOSE:
    case WIRE_HEARTBEAT:
    case WIRE_RELEASE:
    case WIRE_READER_OPEN:
        return 0;
    default:
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x has no success reply",
                         m->type);
    }
}

static int error_body(const struct wire_msg *m, char *errmsg)
{
    const struct wire_error *e = &m->err;
    int rv = wire_check_text(errmsg, "message", e->message, 1, WIRE_MAX_MESSAGE);

    if (rv == 0 && (m->status == DLOG_ENOTOWNER || m->status == DLOG_ENOTLEADER)) {
        if (e->address == NULL || !wire_address_ok(e->address, strlen(e->address)))
            rv = wire_fail(errmsg, DLOG_EINVAL,
                           "address: a redirect needs \"host:port\" (port 1..65535, "
                           "at most %d bytes)",
                           WIRE_MAX_ADDRESS);
    }
    if (rv == 0 && m->type == WIRE_HELLO && m->status == DLOG_EPROTO) {
        rv = range(errmsg, "min_version", e->min_version, 1, 255);
        if (rv == 0)
            rv = range(errmsg, "max_version", e->max_version, e->min_version, 255);
    }
    return rv;
}

int wire_msg_check(const struct wire_msg *m, char *errmsg)
{
    int rv;

    if (!wire_version_ok(m->version))
        return wire_fail(errmsg, DLOG_EINVAL, "version %u is not supported (%d..%d)",
                         (unsigned)m->version, WIRE_VERSION_MIN, WIRE_VERSION_MAX);
    /* An error reply has the same body whatever its type, so a server can
     * answer a request of a type it does not know. */
    if (!wire_type_known(m->type) &&
        !(m->is_reply && m->status != 0 && m->type < WIRE_REPLY))
        return wire_fail(errmsg, DLOG_EINVAL, "unknown message type 0x%02x",
                         (unsigned)m->type);
    if (m->type == WIRE_HELLO && m->version != 1)
        return wire_fail(errmsg, DLOG_EINVAL, "HELLO is always sent as version 1");
    if (!m->is_reply) {
        if (m->type == WIRE_ERROR)
            return wire_fail(errmsg, DLOG_EINVAL, "ERROR is only a reply");
        if (m->request_id == 0)
            return wire_fail(errmsg, DLOG_EINVAL, "request_id 0 is reserved");
        rv = request(m, errmsg);
    } else {
        if (!wire_status_ok(m->status))
            return wire_fail(errmsg, DLOG_EINVAL, "status %d is not a dlog_err code",
                             m->status);
        if ((m->type == WIRE_ERROR) != (m->request_id == 0))
            return wire_fail(errmsg, DLOG_EINVAL,
                             "request_id 0 goes with type ERROR and only with it");
        if (m->type == WIRE_ERROR && m->status == 0)
            return wire_fail(errmsg, DLOG_EINVAL, "an ERROR reply needs a status");
        rv = m->status != 0 ? error_body(m, errmsg) : reply(m, errmsg);
    }
    return rv;
}
