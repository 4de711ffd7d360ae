/*
 * Decoding frames into struct wire_msg (see wire.h and docs/protocol.md).
 *
 * Three passes, each of which may refuse the frame:
 *   1. wire_scan walks the msgpack bytes without allocating and bounds
 *      every count, the nesting and the number of values (wire_scan.c);
 *   2. msgpack-c's msgpack_unpack builds the object tree in a temporary
 *      zone; str and bin objects point into the frame (msgpack-c never
 *      copies them), so payloads are not copied;
 *   3. the functions below check every msgpack type and array length
 *      against the message's layout and fill the struct; then
 *      wire_msg_check (wire_check.c) checks the values, exactly as the
 *      encoder does.
 * Strings are copied, NUL-terminated, into the message's own zone (names
 * are short, and C callers need the terminator); arrays of records, names
 * and segments are allocated there too. The temporary tree is freed before
 * returning.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <msgpack.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "wire/wire_int.h"

/* struct wire_dec (wire_int.h) is shared with wire_node.c. */
#define dec wire_dec

/* ---------------------------------------------------------------- helpers */

static const char *kind(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return "uint";
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "negative int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bin";
    case MSGPACK_OBJECT_ARRAY:
        return "array";
    case MSGPACK_OBJECT_MAP:
        return "map";
    default:
        return "ext";
    }
}

static int want(struct dec *d, const msgpack_object *o, const char *field,
                const char *what)
{
    return wire_fail(d->errmsg, DLOG_EPROTO, "%s: expected %s, got %s", field, what,
                     kind(o));
}

/* Prefixes the message with field and passes rv on. */
static int wrap(struct dec *d, int rv, const char *field)
{
    if (rv != 0 && rv != DLOG_ENOMEM)
        errmsg_wrapf(d->errmsg, "%s", field);
    return rv;
}

static void *alloc(struct dec *d, size_t n)
{
    if (d->mem == NULL) {
        d->mem = msgpack_zone_new(n > 4096 ? n : 4096);
        if (d->mem == NULL)
            return NULL;
    }
    return msgpack_zone_malloc(d->mem, n > 0 ? n : 1);
}

static int nomem(struct dec *d)
{
    return wire_fail(d->errmsg, DLOG_ENOMEM, "out of memory decoding a frame");
}

/* An array of exactly n values. */
static int array(struct dec *d, const msgpack_object *o, const char *field, uint32_t n,
                 const msgpack_object **items)
{
    *items = NULL;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return want(d, o, field, "array");
    if (o->via.array.size != n)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: array of %lu values, expected %lu",
                         field, (unsigned long)o->via.array.size, (unsigned long)n);
    *items = o->via.array.ptr;
    return 0;
}

/* An array of at most max values, checked before anything is allocated. */
static int list(struct dec *d, const msgpack_object *o, const char *field, uint32_t max,
                const msgpack_object **items, size_t *n)
{
    *items = NULL;
    *n = 0;
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return want(d, o, field, "array");
    if (o->via.array.size > max)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: %lu values, at most %lu", field,
                         (unsigned long)o->via.array.size, (unsigned long)max);
    *items = o->via.array.ptr;
    *n = o->via.array.size;
    return 0;
}

static int uint_max(struct dec *d, const msgpack_object *o, const char *field,
                    uint64_t max, uint64_t *v)
{
    if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return want(d, o, field, "uint");
    if (o->via.u64 > max)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: %llu is above %llu", field,
                         (unsigned long long)o->via.u64, (unsigned long long)max);
    *v = o->via.u64;
    return 0;
}

static int u64(struct dec *d, const msgpack_object *o, const char *field, uint64_t *v)
{
    return uint_max(d, o, field, UINT64_MAX, v);
}

static int u32(struct dec *d, const msgpack_object *o, const char *field, uint32_t *v)
{
    uint64_t x = 0;
    int rv = uint_max(d, o, field, UINT32_MAX, &x);

    *v = (uint32_t)x;
    return rv;
}

static int boolean(struct dec *d, const msgpack_object *o, const char *field, int *v)
{
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return want(d, o, field, "bool");
    *v = o->via.boolean ? 1 : 0;
    return 0;
}

/* A str of at most max bytes without NUL, copied NUL-terminated. */
static int str(struct dec *d, const msgpack_object *o, const char *field, size_t max,
               const char **out)
{
    char *s;

    if (o->type != MSGPACK_OBJECT_STR)
        return want(d, o, field, "str");
    if (o->via.str.size > max)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: %lu bytes, at most %zu", field,
                         (unsigned long)o->via.str.size, max);
    /* msgpack-c may leave ptr NULL for an empty str: size 0 touches nothing. */
    if (o->via.str.size > 0 && memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: contains a NUL byte", field);
    s = alloc(d, (size_t)o->via.str.size + 1);
    if (s == NULL)
        return nomem(d);
    if (o->via.str.size > 0)
        memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    *out = s;
    return 0;
}

/* A bin of at most max bytes, not copied; with nil_ok, nil is "absent".
 * Absent and empty both give NULL, 0. */
static int bin(struct dec *d, const msgpack_object *o, const char *field, size_t max,
               int nil_ok, const void **p, size_t *len)
{
    *p = NULL;
    *len = 0;
    if (nil_ok && o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_BIN)
        return want(d, o, field, nil_ok ? "bin or nil" : "bin");
    if (o->via.bin.size > max)
        return wire_fail(d->errmsg, DLOG_EPROTO, "%s: %lu bytes, at most %zu", field,
                         (unsigned long)o->via.bin.size, max);
    if (o->via.bin.size > 0) {
        *p = o->via.bin.ptr;
        *len = o->via.bin.size;
    }
    return 0;
}

/* DLSN: [seg, entry, slot]. */
static int dlsn(struct dec *d, const msgpack_object *o, const char *field,
                struct dlog_dlsn *out)
{
    const msgpack_object *f;
    int rv = array(d, o, field, 3, &f);

    if (rv != 0)
        return rv;
    rv = u64(d, &f[0], "seg", &out->seg);
    if (rv == 0)
        rv = u64(d, &f[1], "entry", &out->entry);
    if (rv == 0)
        rv = u32(d, &f[2], "slot", &out->slot);
    return wrap(d, rv, field);
}

/* LIMITS: [records_per_sec, bytes_per_sec, soft_records_per_sec,
 *          soft_bytes_per_sec, burst_ms, max_wait_ms, quota_bytes,
 *          quota_policy]. */
static int limits(struct dec *d, const msgpack_object *o, const char *field,
                  struct dlog_limits *l)
{
    static const char *const names[7] = {
        "records_per_sec", "bytes_per_sec", "soft_records_per_sec", "soft_bytes_per_sec",
        "burst_ms",        "max_wait_ms",   "quota_bytes",
    };
    uint64_t *dst[7] = {
        &l->records_per_sec,    &l->bytes_per_sec, &l->soft_records_per_sec,
        &l->soft_bytes_per_sec, &l->burst_ms,      &l->max_wait_ms,
        &l->quota_bytes};
    const msgpack_object *f;
    int rv;

    memset(l, 0, sizeof *l);
    l->version = DLOG_LIMITS_VERSION;
    rv = array(d, o, field, 8, &f);
    if (rv != 0)
        return rv;
    for (int i = 0; rv == 0 && i < 7; i++)
        rv = u64(d, &f[i], names[i], dst[i]);
    if (rv == 0)
        rv = u32(d, &f[7], "quota_policy", &l->quota_policy);
    return wrap(d, rv, field);
}

/* PROXY_STATS: [proxy, age_ms, share_records, share_bytes, demand_records,
 *               demand_bytes, rate_records, rate_bytes, admitted, rejected,
 *               delayed, soft_exceeded]. */
static int proxy_stats(struct dec *d, const msgpack_object *o, const char *field,
                       struct dlog_proxy_stats *p)
{
    uint64_t *dst[11] = {&p->age_ms,         &p->share_records, &p->share_bytes,
                         &p->demand_records, &p->demand_bytes,  &p->rate_records,
                         &p->rate_bytes,     &p->admitted,      &p->rejected,
                         &p->delayed,        &p->soft_exceeded};
    const msgpack_object *f;
    const char *id = NULL;
    int rv = array(d, o, field, 12, &f);

    memset(p, 0, sizeof *p);
    if (rv != 0)
        return rv;
    rv = str(d, &f[0], "proxy", WIRE_MAX_PROXY_ID, &id);
    if (rv == 0)
        memcpy(p->proxy, id, strlen(id) + 1);
    for (int i = 0; rv == 0 && i < 11; i++)
        rv = u64(d, &f[i + 1], "counter", dst[i]);
    return wrap(d, rv, field);
}

/* CONFIG: [segment_max_bytes, segment_max_age_ms, segment_max_records,
 *          retention_age_ms, retention_bytes, compression, max_record_bytes,
 *          auto_txid, limits: LIMITS]; 8 values (no limits) are accepted from
 *          peers that predate the limits. */
static int config(struct dec *d, const msgpack_object *o, const char *field,
                  struct dlog_stream_config *c)
{
    const msgpack_object *f;
    int rv = o->type == MSGPACK_OBJECT_ARRAY && o->via.array.size == 8
                 ? array(d, o, field, 8, &f)
                 : array(d, o, field, 9, &f);

    if (rv != 0)
        return rv;
    memset(c, 0, sizeof *c);
    c->version = DLOG_STREAM_CONFIG_VERSION;
    c->limits.version = DLOG_LIMITS_VERSION;
    rv = u64(d, &f[0], "segment_max_bytes", &c->segment_max_bytes);
    if (rv == 0)
        rv = u64(d, &f[1], "segment_max_age_ms", &c->segment_max_age_ms);
    if (rv == 0)
        rv = u64(d, &f[2], "segment_max_records", &c->segment_max_records);
    if (rv == 0)
        rv = u64(d, &f[3], "retention_age_ms", &c->retention_age_ms);
    if (rv == 0)
        rv = u64(d, &f[4], "retention_bytes", &c->retention_bytes);
    if (rv == 0)
        rv = u32(d, &f[5], "compression", &c->compression);
    if (rv == 0)
        rv = u64(d, &f[6], "max_record_bytes", &c->max_record_bytes);
    if (rv == 0)
        rv = boolean(d, &f[7], "auto_txid", &c->auto_txid);
    if (rv == 0 && o->via.array.size == 9)
        rv = limits(d, &f[8], "limits", &c->limits);
    return wrap(d, rv, field);
}

/* The records of a WRITE ([payload, key, txid, flags] each) or of a READ
 * reply ([dlsn, payload, key, txid, flags] each). */
static int records(struct dec *d, const msgpack_object *o, int with_dlsn,
                   const struct dlog_record **out, size_t *n)
{
    const msgpack_object *items;
    struct dlog_record *recs;
    int rv = list(d, o, "records", WIRE_MAX_RECORDS, &items, n);

    if (rv != 0)
        return rv;
    recs = alloc(d, *n * sizeof *recs);
    if (recs == NULL)
        return nomem(d);
    memset(recs, 0, *n * sizeof *recs);
    for (size_t i = 0; i < *n; i++) {
        const msgpack_object *f;
        struct dlog_record *r = &recs[i];
        unsigned k = with_dlsn ? 1 : 0;

        rv = array(d, &items[i], "record", 4 + k, &f);
        if (rv == 0 && with_dlsn)
            rv = dlsn(d, &f[0], "dlsn", &r->dlsn);
        if (rv == 0)
            rv = bin(d, &f[k], "payload", UINT32_MAX, 0, &r->payload, &r->len);
        if (rv == 0)
            rv = bin(d, &f[k + 1], "key", WIRE_MAX_KEY, 1, &r->key, &r->key_len);
        if (rv == 0)
            rv = u64(d, &f[k + 2], "txid", &r->txid);
        if (rv == 0)
            rv = u32(d, &f[k + 3], "flags", &r->flags);
        if (rv != 0) {
            if (rv != DLOG_ENOMEM)
                errmsg_wrapf(d->errmsg, "records[%zu]", i);
            return rv;
        }
    }
    *out = recs;
    return 0;
}

/* SEGMENT: [seq, state, epoch, first, last, first_txid, last_txid, records,
 *           entries, bytes, created_ms, sealed_ms]. */
static int segment(struct dec *d, const msgpack_object *o, struct dlog_segment_info *s)
{
    const msgpack_object *f;
    uint64_t state = 0;
    int rv = array(d, o, "segment", 12, &f);

    if (rv == 0)
        rv = u64(d, &f[0], "seq", &s->seq);
    if (rv == 0)
        rv = uint_max(d, &f[1], "state", DLOG_SEGMENT_SEALED, &state);
    s->state = (int)state;
    if (rv == 0)
        rv = u64(d, &f[2], "epoch", &s->epoch);
    if (rv == 0)
        rv = dlsn(d, &f[3], "first", &s->first);
    if (rv == 0)
        rv = dlsn(d, &f[4], "last", &s->last);
    if (rv == 0)
        rv = u64(d, &f[5], "first_txid", &s->first_txid);
    if (rv == 0)
        rv = u64(d, &f[6], "last_txid", &s->last_txid);
    if (rv == 0)
        rv = u64(d, &f[7], "records", &s->records);
    if (rv == 0)
        rv = u64(d, &f[8], "entries", &s->entries);
    if (rv == 0)
        rv = u64(d, &f[9], "bytes", &s->bytes);
    if (rv == 0)
        rv = u64(d, &f[10], "created_ms", &s->created_ms);
    if (rv == 0)
        rv = u64(d, &f[11], "sealed_ms", &s->sealed_ms);
    return rv;
}

/* STREAM_DESCRIBE reply: [info, segments, more], where info is [name, id,
 * config, epoch, truncated, first, last, last_txid, records, bytes,
 * created_ms, total_segments]. */
static int describe_rep(struct dec *d, const msgpack_object *body,
                        struct wire_describe_rep *r)
{
    struct dlog_stream_info *info = &r->info;
    const msgpack_object *b, *f, *segs;
    const char *name = NULL;
    size_t n = 0;
    int rv = array(d, body, "body", 3, &b);

    if (rv != 0)
        return rv;
    rv = array(d, &b[0], "info", 12, &f);
    if (rv == 0) {
        rv = str(d, &f[0], "name", WIRE_MAX_NAME, &name);
        if (rv == 0)
            snprintf(info->name, sizeof info->name, "%s", name);
        if (rv == 0)
            rv = u64(d, &f[1], "id", &info->id);
        if (rv == 0)
            rv = config(d, &f[2], "config", &info->config);
        if (rv == 0)
            rv = u64(d, &f[3], "epoch", &info->epoch);
        if (rv == 0)
            rv = dlsn(d, &f[4], "truncated", &info->truncated);
        if (rv == 0)
            rv = dlsn(d, &f[5], "first", &info->first);
        if (rv == 0)
            rv = dlsn(d, &f[6], "last", &info->last);
        if (rv == 0)
            rv = u64(d, &f[7], "last_txid", &info->last_txid);
        if (rv == 0)
            rv = u64(d, &f[8], "records", &info->records);
        if (rv == 0)
            rv = u64(d, &f[9], "bytes", &info->bytes);
        if (rv == 0)
            rv = u64(d, &f[10], "created_ms", &info->created_ms);
        if (rv == 0)
            rv = u64(d, &f[11], "total_segments", &r->total_segments);
        rv = wrap(d, rv, "info");
    }
    if (rv == 0)
        rv = list(d, &b[1], "segments", WIRE_MAX_SEGMENTS, &segs, &n);
    if (rv == 0 && n > 0) {
        info->segments = alloc(d, n * sizeof *info->segments);
        if (info->segments == NULL)
            return nomem(d);
        memset(info->segments, 0, n * sizeof *info->segments);
        info->nsegments = n;
        for (size_t i = 0; rv == 0 && i < n; i++) {
            rv = segment(d, &segs[i], &info->segments[i]);
            if (rv != 0 && rv != DLOG_ENOMEM)
                errmsg_wrapf(d->errmsg, "segments[%zu]", i);
        }
    }
    if (rv == 0)
        rv = boolean(d, &b[2], "more", &r->more);
    return rv;
}

/* ----------------------------------------------------------------- bodies */

/* [stream, epoch]: WRITER_FLUSH, WRITER_CLOSE, HEARTBEAT. */
static int writer_req(struct dec *d, const msgpack_object *b, struct wire_writer_req *r)
{
    int rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &r->stream);

    if (rv == 0)
        rv = u64(d, &b[1], "epoch", &r->epoch);
    return rv;
}

static int hello_req(struct dec *d, const msgpack_object *b, struct wire_hello *h)
{
    int rv = u32(d, &b[0], "min_version", &h->min_version);

    if (rv == 0)
        rv = u32(d, &b[1], "max_version", &h->max_version);
    if (rv == 0)
        rv = str(d, &b[2], "client_name", WIRE_MAX_PEER_NAME, &h->client_name);
    if (rv == 0)
        rv = bin(d, &b[3], "token", WIRE_MAX_TOKEN, 1, &h->token, &h->token_len);
    return rv;
}

static int write_req(struct dec *d, const msgpack_object *b, struct wire_write *w)
{
    int rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &w->stream);

    if (rv == 0)
        rv = u64(d, &b[1], "epoch", &w->epoch);
    if (rv == 0 && b[2].type != MSGPACK_OBJECT_NIL) {
        const msgpack_object *p;

        /* producer: nil, or [producer_id, sequence] */
        if (b[2].type != MSGPACK_OBJECT_ARRAY)
            return want(d, &b[2], "producer", "array or nil");
        rv = array(d, &b[2], "producer", 2, &p);
        if (rv == 0)
            rv = uint_max(d, &p[0], "producer_id", UINT64_MAX, &w->producer_id);
        if (rv == 0 && w->producer_id == 0)
            rv = wire_fail(d->errmsg, DLOG_EPROTO,
                           "producer_id: 0 is reserved (send nil)");
        if (rv == 0)
            rv = u64(d, &p[1], "sequence", &w->sequence);
        rv = wrap(d, rv, "producer");
    }
    if (rv == 0)
        rv = records(d, &b[3], 0, &w->recs, &w->nrecs);
    return rv;
}

static int reader_open_req(struct dec *d, const msgpack_object *b,
                           struct wire_reader_open *r)
{
    const msgpack_object *s;
    int rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &r->stream);

    /* start: [kind, dlsn, txid] */
    if (rv == 0)
        rv = array(d, &b[1], "start", 3, &s);
    if (rv == 0) {
        rv = u32(d, &s[0], "kind", &r->start);
        if (rv == 0)
            rv = dlsn(d, &s[1], "dlsn", &r->start_dlsn);
        if (rv == 0)
            rv = u64(d, &s[2], "txid", &r->start_txid);
        rv = wrap(d, rv, "start");
    }
    return rv;
}

static int read_req(struct dec *d, const msgpack_object *b, struct wire_read *r)
{
    int rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &r->stream);

    if (rv == 0)
        rv = dlsn(d, &b[1], "position", &r->position);
    if (rv == 0)
        rv = u64(d, &b[2], "min_txid", &r->min_txid);
    if (rv == 0)
        rv = u32(d, &b[3], "max_records", &r->max_records);
    if (rv == 0)
        rv = u32(d, &b[4], "max_bytes", &r->max_bytes);
    if (rv == 0)
        rv = u32(d, &b[5], "wait_ms", &r->wait_ms);
    if (rv == 0)
        rv = bin(d, &b[6], "key_prefix", WIRE_MAX_KEY, 1, &r->key_prefix,
                 &r->key_prefix_len);
    if (rv == 0)
        rv = dlsn(d, &b[7], "end", &r->end);
    return rv;
}

/* The body of a request of a known type. */
static int request(struct dec *d, struct wire_msg *m, const msgpack_object *body)
{
    static const uint8_t nfields[128] = {
        [WIRE_HELLO] = 4,
        [WIRE_PING] = 1,
        [WIRE_STREAM_CREATE] = 2,
        [WIRE_STREAM_DELETE] = 1,
        [WIRE_STREAM_LIST] = 2,
        [WIRE_STREAM_DESCRIBE] = 3,
        [WIRE_STREAM_TRUNCATE] = 2,
        [WIRE_STREAM_RETENTION] = 1,
        [WIRE_LIMITS_SET] = 2,
        [WIRE_LIMITS_GET] = 1,
        [WIRE_LIMITS_STATS] = 1,
        [WIRE_WRITER_OPEN] = 2,
        [WIRE_WRITE] = 4,
        [WIRE_WRITER_FLUSH] = 2,
        [WIRE_WRITER_CLOSE] = 2,
        [WIRE_HEARTBEAT] = 2,
        [WIRE_RELEASE] = 1,
        [WIRE_READER_OPEN] = 2,
        [WIRE_READ] = 8,
    };
    const msgpack_object *b;
    int rv;

    if (WIRE_IS_DATA_NODE(m->type))
        return wire_data_decode_request(d, m, body);
    if (WIRE_IS_META_NODE(m->type))
        return wire_node_decode_request(d, m, body);
    rv = array(d, body, "body", nfields[m->type], &b);
    if (rv != 0)
        return rv;
    switch (m->type) {
    case WIRE_HELLO:
        return hello_req(d, b, &m->u.hello);
    case WIRE_PING:
        return u64(d, &b[0], "nonce", &m->u.ping.nonce);
    case WIRE_STREAM_CREATE:
        rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.create.stream);
        if (rv == 0 && b[1].type != MSGPACK_OBJECT_NIL) {
            m->u.create.has_config = 1;
            rv = b[1].type == MSGPACK_OBJECT_ARRAY
                     ? config(d, &b[1], "config", &m->u.create.config)
                     : want(d, &b[1], "config", "array or nil");
        }
        return rv;
    case WIRE_STREAM_DELETE:
    case WIRE_STREAM_RETENTION:
    case WIRE_RELEASE:
        /* [stream]; del, retention and release are the same struct */
        return str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.del.stream);
    case WIRE_STREAM_LIST:
        rv = str(d, &b[0], "start_after", WIRE_MAX_NAME, &m->u.list.start_after);
        if (rv == 0)
            rv = u32(d, &b[1], "limit", &m->u.list.limit);
        return rv;
    case WIRE_STREAM_DESCRIBE:
        rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.describe.stream);
        if (rv == 0)
            rv = u64(d, &b[1], "seg_after", &m->u.describe.seg_after);
        if (rv == 0)
            rv = u32(d, &b[2], "max_segments", &m->u.describe.max_segments);
        return rv;
    case WIRE_STREAM_TRUNCATE:
        rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.truncate.stream);
        if (rv == 0)
            rv = dlsn(d, &b[1], "dlsn", &m->u.truncate.dlsn);
        return rv;
    case WIRE_LIMITS_SET:
        rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.limits_set.stream);
        if (rv == 0)
            rv = limits(d, &b[1], "limits", &m->u.limits_set.limits);
        return rv;
    case WIRE_LIMITS_GET:
    case WIRE_LIMITS_STATS:
        return str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.limits_req.stream);
    case WIRE_WRITER_OPEN:
        rv = str(d, &b[0], "stream", WIRE_MAX_NAME, &m->u.writer_open.stream);
        if (rv == 0)
            rv = u32(d, &b[1], "mode", &m->u.writer_open.mode);
        return rv;
    case WIRE_WRITE:
        return write_req(d, b, &m->u.write);
    case WIRE_WRITER_FLUSH:
    case WIRE_WRITER_CLOSE:
    case WIRE_HEARTBEAT:
        return writer_req(d, b, &m->u.flush);
    case WIRE_READER_OPEN:
        return reader_open_req(d, b, &m->u.reader_open);
    case WIRE_READ:
        return read_req(d, b, &m->u.read);
    default:
        return wire_fail(d->errmsg, DLOG_EPROTO, "type 0x%02x is not a request",
                         (unsigned)m->type);
    }
}

/* The body of a reply with status 0. */
static int reply(struct dec *d, struct wire_msg *m, const msgpack_object *body)
{
    const msgpack_object *b;
    int rv;

    if (WIRE_IS_DATA_NODE(m->type))
        return wire_data_decode_reply(d, m, body);
    if (WIRE_IS_META_NODE(m->type))
        return wire_node_decode_reply(d, m, body);
    switch (m->type) {
    case WIRE_HELLO:
        rv = array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = u32(d, &b[0], "version", &m->u.hello_rep.version);
        if (rv == 0)
            rv = str(d, &b[1], "server_name", WIRE_MAX_PEER_NAME,
                     &m->u.hello_rep.server_name);
        if (rv == 0)
            rv = u32(d, &b[2], "max_frame", &m->u.hello_rep.max_frame);
        return rv;
    case WIRE_PING:
        rv = array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = u64(d, &b[0], "nonce", &m->u.ping.nonce);
        return rv;
    case WIRE_STREAM_LIST: {
        const msgpack_object *items;
        const char **names;
        size_t n = 0;

        rv = array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = list(d, &b[0], "names", WIRE_MAX_LIST, &items, &n);
        if (rv != 0)
            return rv;
        names = alloc(d, n * sizeof *names);
        if (names == NULL)
            return nomem(d);
        for (size_t i = 0; i < n; i++) {
            rv = str(d, &items[i], "name", WIRE_MAX_NAME, &names[i]);
            if (rv != 0)
                return wrap(d, rv, "names");
        }
        m->u.list_rep.names = names;
        m->u.list_rep.count = n;
        return boolean(d, &b[1], "more", &m->u.list_rep.more);
    }
    case WIRE_STREAM_DESCRIBE:
        return describe_rep(d, body, &m->u.describe_rep);
    case WIRE_STREAM_RETENTION:
        rv = array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = u32(d, &b[0], "deleted", &m->u.retention_rep.deleted);
        return rv;
    case WIRE_LIMITS_GET:
        rv = array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = limits(d, &b[0], "limits", &m->u.limits_rep.limits);
        return rv;
    case WIRE_LIMITS_STATS: {
        struct dlog_limit_stats *st = &m->u.limits_stats_rep.stats;
        const msgpack_object *items;
        size_t n = 0;

        memset(st, 0, sizeof *st);
        rv = array(d, body, "body", 4, &b);
        if (rv == 0)
            rv = limits(d, &b[0], "limits", &st->limits);
        if (rv == 0)
            rv = u64(d, &b[1], "used_bytes", &st->used_bytes);
        if (rv == 0)
            rv = proxy_stats(d, &b[2], "total", &st->total);
        if (rv == 0)
            rv = list(d, &b[3], "proxies", WIRE_MAX_PROXIES, &items, &n);
        if (rv != 0 || n == 0)
            return rv;
        st->proxies = alloc(d, n * sizeof *st->proxies);
        if (st->proxies == NULL)
            return nomem(d);
        for (size_t i = 0; i < n && rv == 0; i++)
            rv = proxy_stats(d, &items[i], "proxies", &st->proxies[i]);
        st->nproxies = n;
        return rv;
    }
    case WIRE_WRITER_OPEN:
        rv = array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = u64(d, &b[0], "epoch", &m->u.writer_open_rep.epoch);
        if (rv == 0)
            rv = u64(d, &b[1], "last_txid", &m->u.writer_open_rep.last_txid);
        if (rv == 0)
            rv = config(d, &b[2], "config", &m->u.writer_open_rep.config);
        return rv;
    case WIRE_WRITE:
        rv = array(d, body, "body", 4, &b);
        if (rv == 0)
            rv = dlsn(d, &b[0], "first", &m->u.write_rep.first);
        if (rv == 0)
            rv = dlsn(d, &b[1], "last", &m->u.write_rep.last);
        if (rv == 0)
            rv = u64(d, &b[2], "first_txid", &m->u.write_rep.first_txid);
        if (rv == 0)
            rv = boolean(d, &b[3], "duplicate", &m->u.write_rep.duplicate);
        return rv;
    case WIRE_HEARTBEAT:
        rv = array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = u64(d, &b[0], "epoch", &m->u.heartbeat_rep.epoch);
        if (rv == 0)
            rv = dlsn(d, &b[1], "last", &m->u.heartbeat_rep.last);
        if (rv == 0)
            rv = u64(d, &b[2], "last_txid", &m->u.heartbeat_rep.last_txid);
        return rv;
    case WIRE_READER_OPEN:
        rv = array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = dlsn(d, &b[0], "position", &m->u.reader_open_rep.position);
        if (rv == 0)
            rv = u64(d, &b[1], "min_txid", &m->u.reader_open_rep.min_txid);
        return rv;
    case WIRE_READ:
        rv = array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = records(d, &b[0], 1, &m->u.read_rep.recs, &m->u.read_rep.nrecs);
        if (rv == 0)
            rv = dlsn(d, &b[1], "next", &m->u.read_rep.next);
        return rv;
    default: /* the replies with an empty body */
        return array(d, body, "body", 0, &b);
    }
}

/* The body of a reply with a status: [message], [message, address] for a
 * redirect, [message, min_version, max_version] for a HELLO refused with
 * DLOG_EPROTO. */
static int error_reply(struct dec *d, struct wire_msg *m, const msgpack_object *body)
{
    int redirect = m->status == DLOG_ENOTOWNER || m->status == DLOG_ENOTLEADER;
    int versions = m->type == WIRE_HELLO && m->status == DLOG_EPROTO;
    const msgpack_object *b;
    int rv = array(d, body, "body", 1 + (redirect ? 1 : 0) + (versions ? 2 : 0), &b);

    if (rv == 0)
        rv = str(d, &b[0], "message", WIRE_MAX_MESSAGE, &m->err.message);
    if (rv == 0 && redirect)
        rv = str(d, &b[1], "address", WIRE_MAX_ADDRESS, &m->err.address);
    if (rv == 0 && versions)
        rv = u32(d, &b[1], "min_version", &m->err.min_version);
    if (rv == 0 && versions)
        rv = u32(d, &b[2], "max_version", &m->err.max_version);
    return rv;
}

/* --------------------------------------------------------------- envelope */

static int envelope(struct dec *d, struct wire_msg *m, const msgpack_object *root)
{
    const msgpack_object *e;
    uint64_t version = 0, type = 0, id = 0;
    uint32_t want_len;
    int rv;

    if (root->type != MSGPACK_OBJECT_ARRAY)
        return want(d, root, "envelope", "array");
    if (root->via.array.size < 3)
        return wire_fail(
            d->errmsg, DLOG_EPROTO,
            "envelope: array of %lu values, expected 4 (request) or 5 (reply)",
            (unsigned long)root->via.array.size);
    e = root->via.array.ptr;
    /* [version, type, request_id] starts the envelope in every version. */
    rv = uint_max(d, &e[0], "version", UINT32_MAX, &version);
    if (rv == 0)
        rv = uint_max(d, &e[1], "type", 255, &type);
    if (rv == 0)
        rv = u64(d, &e[2], "request_id", &id);
    if (rv != 0)
        return wrap(d, rv, "envelope");
    m->version = (uint32_t)version;
    m->type = (uint32_t)type & ~(uint32_t)WIRE_REPLY;
    m->is_reply = (type & WIRE_REPLY) != 0;
    d->typed = 1;
    if (!m->is_reply && id == 0)
        return wire_fail(d->errmsg, DLOG_EPROTO, "envelope: request_id 0 is reserved");
    m->request_id = id;
    if (!wire_version_ok(m->version))
        return wire_fail(
            d->errmsg, WIRE_BAD_VERSION,
            "protocol version %lu is not supported (this peer speaks %d..%d)",
            (unsigned long)m->version, WIRE_VERSION_MIN, WIRE_VERSION_MAX);
    want_len = m->is_reply ? 5 : 4;
    if (root->via.array.size != want_len)
        return wire_fail(d->errmsg, DLOG_EPROTO,
                         "envelope: array of %lu values, expected %lu for a %s",
                         (unsigned long)root->via.array.size, (unsigned long)want_len,
                         m->is_reply ? "reply" : "request");
    if (!wire_type_known(m->type) || (m->type == WIRE_ERROR && !m->is_reply))
        return wire_fail(d->errmsg, WIRE_UNKNOWN_TYPE,
                         "unknown message type 0x%02x in protocol version %lu",
                         (unsigned)type, (unsigned long)m->version);
    if (!m->is_reply)
        return request(d, m, &e[3]);
    if (e[3].type == MSGPACK_OBJECT_NEGATIVE_INTEGER && e[3].via.i64 >= DLOG_ERR_MIN)
        m->status = (int)e[3].via.i64;
    else if (e[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && e[3].via.u64 == 0)
        m->status = 0;
    else if (e[3].type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return wire_fail(d->errmsg, DLOG_EPROTO, "status: %lld is not a dlog_err code",
                         (long long)e[3].via.i64);
    else if (e[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return wire_fail(d->errmsg, DLOG_EPROTO, "status: %llu is not a dlog_err code",
                         (unsigned long long)e[3].via.u64);
    else
        return want(d, &e[3], "status", "int");
    return m->status != 0 ? error_reply(d, m, &e[4]) : reply(d, m, &e[4]);
}

/* ------------------------------------------------------ shared helpers */

int wire_dec_array(struct wire_dec *d, const msgpack_object *o, const char *field,
                   uint32_t n, const msgpack_object **items)
{
    return array(d, o, field, n, items);
}

int wire_dec_list(struct wire_dec *d, const msgpack_object *o, const char *field,
                  uint32_t max, const msgpack_object **items, size_t *n)
{
    return list(d, o, field, max, items, n);
}

int wire_dec_u64(struct wire_dec *d, const msgpack_object *o, const char *field,
                 uint64_t *v)
{
    return u64(d, o, field, v);
}

int wire_dec_u32(struct wire_dec *d, const msgpack_object *o, const char *field,
                 uint32_t *v)
{
    return u32(d, o, field, v);
}

int wire_dec_bool(struct wire_dec *d, const msgpack_object *o, const char *field, int *v)
{
    return boolean(d, o, field, v);
}

int wire_dec_str(struct wire_dec *d, const msgpack_object *o, const char *field,
                 size_t max, const char **out)
{
    return str(d, o, field, max, out);
}

int wire_dec_bin(struct wire_dec *d, const msgpack_object *o, const char *field,
                 size_t max, const void **p, size_t *len)
{
    return bin(d, o, field, max, 0, p, len);
}

void *wire_dec_alloc(struct wire_dec *d, size_t n)
{
    void *p = alloc(d, n);

    if (p == NULL)
        nomem(d);
    return p;
}

int wire_dec_wrap(struct wire_dec *d, int rv, const char *field)
{
    return wrap(d, rv, field);
}

/* ------------------------------------------------------------------- API */

void wire_msg_free(struct wire_msg *msg)
{
    if (msg->mem_ != NULL)
        msgpack_zone_free(msg->mem_);
    msg->mem_ = NULL;
}

int wire_decode_body(const uint8_t *p, size_t len, const struct wire_limits *lim,
                     struct wire_msg *msg, char *errmsg)
{
    struct wire_limits l = wire_limits_get(lim);
    struct dec d = {NULL, errmsg, 0};
    msgpack_zone tree;
    msgpack_object root;
    size_t off = 0;
    const char *name;
    int rv;

    memset(msg, 0, sizeof *msg);
    if (len == 0)
        return wire_fail(errmsg, DLOG_EPROTO, "empty frame");
    if (len > l.max_frame)
        return wire_fail(errmsg, DLOG_EPROTO,
                         "frame of %zu bytes exceeds the maximum of %zu", len,
                         l.max_frame);
    rv = wire_scan(p, len, l.max_objects, errmsg);
    if (rv != 0)
        return rv;
    if (!msgpack_zone_init(&tree, 8192))
        return nomem(&d);
    switch (msgpack_unpack((const char *)p, len, &off, &tree, &root)) {
    case MSGPACK_UNPACK_SUCCESS:
        rv = off == len
                 ? envelope(&d, msg, &root)
                 : wire_fail(errmsg, DLOG_EPROTO, "trailing bytes after the envelope");
        break;
    case MSGPACK_UNPACK_NOMEM_ERROR:
        rv = nomem(&d);
        break;
    default: /* wire_scan accepts nothing msgpack-c refuses; keep the check anyway */
        rv = wire_fail(errmsg, DLOG_EPROTO, "msgpack-c cannot parse the frame");
        break;
    }
    msgpack_zone_destroy(&tree);
    msg->mem_ = d.mem;
    if (rv == 0) {
        rv = wire_msg_check(msg, errmsg);
        if (rv != 0)
            rv = DLOG_EPROTO;
    }
    if (rv == DLOG_EPROTO && d.typed) {
        /* Name the message: "WRITE request: records[3]: key: ...". */
        name = wire_type_name(msg->type);
        if (name != NULL)
            errmsg_wrapf(errmsg, "%s %s", name, msg->is_reply ? "reply" : "request");
    }
    if (rv != 0) { /* nothing but the envelope is valid */
        wire_msg_free(msg);
        memset(&msg->u, 0, sizeof msg->u);
        memset(&msg->err, 0, sizeof msg->err);
    }
    return rv;
}

int wire_decode(const uint8_t *buf, size_t len, const struct wire_limits *lim,
                struct wire_msg *msg, char *errmsg)
{
    struct wire_limits l = wire_limits_get(lim);
    size_t frame_len = 0;
    int rv;

    memset(msg, 0, sizeof *msg);
    rv = wire_frame_check(buf, len, l.max_frame, &frame_len, errmsg);
    if (rv < 0)
        return rv;
    if (rv == 0)
        return wire_fail(errmsg, DLOG_EPROTO, "frame truncated: %zu of %zu bytes", len,
                         frame_len);
    if (frame_len != len)
        return wire_fail(errmsg, DLOG_EPROTO,
                         "%zu bytes of trailing garbage after a frame of %zu bytes",
                         len - frame_len, frame_len);
    return wire_decode_body(buf + WIRE_FRAME_PREFIX, len - WIRE_FRAME_PREFIX, &l, msg,
                            errmsg);
}
