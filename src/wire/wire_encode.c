/*
 * Encoding struct wire_msg into frames (see wire.h and docs/protocol.md).
 *
 * The message is checked first with wire_msg_check, the decoder's own
 * rules, so nothing is sent that a peer would refuse. msgpack-c's packer
 * then writes through a sink: into a struct bytes (wire_encode), or into
 * a list of pieces for writev where byte fields of ref_min bytes or more
 * are referenced in place instead of copied (wire_encode_iov). msgpack-c
 * always picks the shortest encoding of an integer, string or array
 * header, so a message has exactly one encoding: the hex examples of the
 * specification are what this file produces.
 */
#include <stdlib.h>
#include <string.h>

#include <msgpack.h>

#include <dlog/err.h>

#include "wire/wire_int.h"

/* A piece of an iov frame: head.p[off..off+len) when ext is NULL. */
struct wire_piece_ {
    const void *ext;
    size_t off;
    size_t len;
};

/* No msgpack header is longer than 9 bytes, and msgpack-c writes headers
 * from its own stack: only writes of this size or more are byte fields
 * (str or bin bodies of the message), which are safe to reference. */
#define REF_MIN_FLOOR 64

struct sink {
    struct bytes *head;
    struct wire_iov *v; /* NULL: copy everything into head */
    size_t ref_min;
    int err; /* sticky: DLOG_ENOMEM */
};

static int add_piece(struct sink *s, const void *ext, size_t off, size_t len)
{
    struct wire_iov *v = s->v;
    struct wire_piece_ *p;

    if (ext == NULL && v->npieces_ > 0) {
        p = &v->pieces_[v->npieces_ - 1];
        if (p->ext == NULL && p->off + p->len == off) {
            p->len += len; /* extends the copied run */
            return 0;
        }
    }
    if (v->npieces_ == v->cap_) {
        size_t cap = v->cap_ > 0 ? 2 * v->cap_ : 16;
        p = realloc(v->pieces_, cap * sizeof *p);
        if (p == NULL)
            return DLOG_ENOMEM;
        v->pieces_ = p;
        v->cap_ = cap;
    }
    v->pieces_[v->npieces_++] = (struct wire_piece_){ext, off, len};
    return 0;
}

static int sink_write(void *data, const char *buf, size_t len)
{
    struct sink *s = data;
    size_t off = s->head->len;

    if (s->err != 0)
        return -1;
    if (s->v != NULL && len >= s->ref_min) {
        if (add_piece(s, buf, 0, len) != 0)
            goto nomem;
        s->v->total += len;
        return 0;
    }
    if (bytes_append(s->head, buf, len) != 0)
        goto nomem;
    if (s->v != NULL) {
        if (add_piece(s, NULL, off, len) != 0)
            goto nomem;
        s->v->total += len;
    }
    return 0;
nomem:
    s->err = DLOG_ENOMEM;
    return -1;
}

/* ---------------------------------------------------------------- values */

void wire_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    msgpack_pack_str(pk, n);
    if (n > 0)
        msgpack_pack_str_body(pk, s, n);
}

/* A bin; with nil_ok, an empty one is sent as nil ("absent"). */
void wire_pack_bin(msgpack_packer *pk, const void *p, size_t len, int nil_ok)
{
    if (nil_ok && len == 0) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_bin(pk, len);
    if (len > 0)
        msgpack_pack_bin_body(pk, p, len);
}

void wire_pack_bool(msgpack_packer *pk, int v)
{
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

static void dlsn(msgpack_packer *pk, struct dlog_dlsn d)
{
    msgpack_pack_array(pk, 3);
    msgpack_pack_uint64(pk, d.seg);
    msgpack_pack_uint64(pk, d.entry);
    msgpack_pack_uint32(pk, d.slot);
}

static void limits(msgpack_packer *pk, const struct dlog_limits *l)
{
    msgpack_pack_array(pk, 8);
    msgpack_pack_uint64(pk, l->records_per_sec);
    msgpack_pack_uint64(pk, l->bytes_per_sec);
    msgpack_pack_uint64(pk, l->soft_records_per_sec);
    msgpack_pack_uint64(pk, l->soft_bytes_per_sec);
    msgpack_pack_uint64(pk, l->burst_ms);
    msgpack_pack_uint64(pk, l->max_wait_ms);
    msgpack_pack_uint64(pk, l->quota_bytes);
    msgpack_pack_uint32(pk, l->quota_policy);
}

static void proxy_stats(msgpack_packer *pk, const struct dlog_proxy_stats *p)
{
    msgpack_pack_array(pk, 12);
    wire_pack_str(pk, p->proxy);
    msgpack_pack_uint64(pk, p->age_ms);
    msgpack_pack_uint64(pk, p->share_records);
    msgpack_pack_uint64(pk, p->share_bytes);
    msgpack_pack_uint64(pk, p->demand_records);
    msgpack_pack_uint64(pk, p->demand_bytes);
    msgpack_pack_uint64(pk, p->rate_records);
    msgpack_pack_uint64(pk, p->rate_bytes);
    msgpack_pack_uint64(pk, p->admitted);
    msgpack_pack_uint64(pk, p->rejected);
    msgpack_pack_uint64(pk, p->delayed);
    msgpack_pack_uint64(pk, p->soft_exceeded);
}

static void config(msgpack_packer *pk, const struct dlog_stream_config *c)
{
    msgpack_pack_array(pk, 9);
    msgpack_pack_uint64(pk, c->segment_max_bytes);
    msgpack_pack_uint64(pk, c->segment_max_age_ms);
    msgpack_pack_uint64(pk, c->segment_max_records);
    msgpack_pack_uint64(pk, c->retention_age_ms);
    msgpack_pack_uint64(pk, c->retention_bytes);
    msgpack_pack_uint32(pk, c->compression);
    msgpack_pack_uint64(pk, c->max_record_bytes);
    wire_pack_bool(pk, c->auto_txid);
    limits(pk, &c->limits);
}

static void records(msgpack_packer *pk, const struct dlog_record *recs, size_t n,
                    int with_dlsn)
{
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++) {
        msgpack_pack_array(pk, with_dlsn ? 5 : 4);
        if (with_dlsn)
            dlsn(pk, recs[i].dlsn);
        wire_pack_bin(pk, recs[i].payload, recs[i].len, 0);
        wire_pack_bin(pk, recs[i].key, recs[i].key_len, 1);
        msgpack_pack_uint64(pk, recs[i].txid);
        msgpack_pack_uint32(pk, recs[i].flags);
    }
}

static void segment(msgpack_packer *pk, const struct dlog_segment_info *s)
{
    msgpack_pack_array(pk, 12);
    msgpack_pack_uint64(pk, s->seq);
    msgpack_pack_uint32(pk, (uint32_t)s->state);
    msgpack_pack_uint64(pk, s->epoch);
    dlsn(pk, s->first);
    dlsn(pk, s->last);
    msgpack_pack_uint64(pk, s->first_txid);
    msgpack_pack_uint64(pk, s->last_txid);
    msgpack_pack_uint64(pk, s->records);
    msgpack_pack_uint64(pk, s->entries);
    msgpack_pack_uint64(pk, s->bytes);
    msgpack_pack_uint64(pk, s->created_ms);
    msgpack_pack_uint64(pk, s->sealed_ms);
}

static void describe_rep(msgpack_packer *pk, const struct wire_describe_rep *r)
{
    const struct dlog_stream_info *info = &r->info;

    msgpack_pack_array(pk, 3);
    msgpack_pack_array(pk, 12);
    wire_pack_str(pk, info->name);
    msgpack_pack_uint64(pk, info->id);
    config(pk, &info->config);
    msgpack_pack_uint64(pk, info->epoch);
    dlsn(pk, info->truncated);
    dlsn(pk, info->first);
    dlsn(pk, info->last);
    msgpack_pack_uint64(pk, info->last_txid);
    msgpack_pack_uint64(pk, info->records);
    msgpack_pack_uint64(pk, info->bytes);
    msgpack_pack_uint64(pk, info->created_ms);
    msgpack_pack_uint64(pk, r->total_segments);
    msgpack_pack_array(pk, (uint32_t)info->nsegments);
    for (size_t i = 0; i < info->nsegments; i++)
        segment(pk, &info->segments[i]);
    wire_pack_bool(pk, r->more);
}

/* ---------------------------------------------------------------- bodies */

static void request(msgpack_packer *pk, const struct wire_msg *m)
{
    if (WIRE_IS_DATA_NODE(m->type)) {
        wire_data_pack_request(pk, m);
        return;
    }
    if (WIRE_IS_META_NODE(m->type)) {
        wire_node_pack_request(pk, m);
        return;
    }
    switch (m->type) {
    case WIRE_HELLO:
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint32(pk, m->u.hello.min_version);
        msgpack_pack_uint32(pk, m->u.hello.max_version);
        wire_pack_str(pk, m->u.hello.client_name);
        wire_pack_bin(pk, m->u.hello.token, m->u.hello.token_len, 1);
        break;
    case WIRE_PING:
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, m->u.ping.nonce);
        break;
    case WIRE_STREAM_CREATE:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.create.stream);
        if (m->u.create.has_config)
            config(pk, &m->u.create.config);
        else
            msgpack_pack_nil(pk);
        break;
    case WIRE_STREAM_DELETE:
    case WIRE_STREAM_RETENTION:
    case WIRE_RELEASE:
        msgpack_pack_array(pk, 1);
        wire_pack_str(pk, m->u.del.stream);
        break;
    case WIRE_STREAM_LIST:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.list.start_after);
        msgpack_pack_uint32(pk, m->u.list.limit);
        break;
    case WIRE_STREAM_DESCRIBE:
        msgpack_pack_array(pk, 3);
        wire_pack_str(pk, m->u.describe.stream);
        msgpack_pack_uint64(pk, m->u.describe.seg_after);
        msgpack_pack_uint32(pk, m->u.describe.max_segments);
        break;
    case WIRE_STREAM_TRUNCATE:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.truncate.stream);
        dlsn(pk, m->u.truncate.dlsn);
        break;
    case WIRE_LIMITS_SET:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.limits_set.stream);
        limits(pk, &m->u.limits_set.limits);
        break;
    case WIRE_LIMITS_GET:
    case WIRE_LIMITS_STATS:
        msgpack_pack_array(pk, 1);
        wire_pack_str(pk, m->u.limits_req.stream);
        break;
    case WIRE_WRITER_OPEN:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.writer_open.stream);
        msgpack_pack_uint32(pk, m->u.writer_open.mode);
        break;
    case WIRE_WRITE:
        msgpack_pack_array(pk, 4);
        wire_pack_str(pk, m->u.write.stream);
        msgpack_pack_uint64(pk, m->u.write.epoch);
        if (m->u.write.producer_id != 0) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint64(pk, m->u.write.producer_id);
            msgpack_pack_uint64(pk, m->u.write.sequence);
        } else {
            msgpack_pack_nil(pk);
        }
        records(pk, m->u.write.recs, m->u.write.nrecs, 0);
        break;
    case WIRE_WRITER_FLUSH:
    case WIRE_WRITER_CLOSE:
    case WIRE_HEARTBEAT:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.flush.stream);
        msgpack_pack_uint64(pk, m->u.flush.epoch);
        break;
    case WIRE_READER_OPEN:
        msgpack_pack_array(pk, 2);
        wire_pack_str(pk, m->u.reader_open.stream);
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, m->u.reader_open.start);
        dlsn(pk, m->u.reader_open.start_dlsn);
        msgpack_pack_uint64(pk, m->u.reader_open.start_txid);
        break;
    case WIRE_READ:
        msgpack_pack_array(pk, 8);
        wire_pack_str(pk, m->u.read.stream);
        dlsn(pk, m->u.read.position);
        msgpack_pack_uint64(pk, m->u.read.min_txid);
        msgpack_pack_uint32(pk, m->u.read.max_records);
        msgpack_pack_uint32(pk, m->u.read.max_bytes);
        msgpack_pack_uint32(pk, m->u.read.wait_ms);
        wire_pack_bin(pk, m->u.read.key_prefix, m->u.read.key_prefix_len, 1);
        dlsn(pk, m->u.read.end);
        break;
    default: /* wire_msg_check accepts no other type */
        break;
    }
}

static void reply(msgpack_packer *pk, const struct wire_msg *m)
{
    if (WIRE_IS_DATA_NODE(m->type)) {
        wire_data_pack_reply(pk, m);
        return;
    }
    if (WIRE_IS_META_NODE(m->type)) {
        wire_node_pack_reply(pk, m);
        return;
    }
    switch (m->type) {
    case WIRE_HELLO:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint32(pk, m->u.hello_rep.version);
        wire_pack_str(pk, m->u.hello_rep.server_name);
        msgpack_pack_uint32(pk, m->u.hello_rep.max_frame);
        break;
    case WIRE_PING:
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, m->u.ping.nonce);
        break;
    case WIRE_STREAM_LIST:
        msgpack_pack_array(pk, 2);
        msgpack_pack_array(pk, (uint32_t)m->u.list_rep.count);
        for (size_t i = 0; i < m->u.list_rep.count; i++)
            wire_pack_str(pk, m->u.list_rep.names[i]);
        wire_pack_bool(pk, m->u.list_rep.more);
        break;
    case WIRE_STREAM_DESCRIBE:
        describe_rep(pk, &m->u.describe_rep);
        break;
    case WIRE_STREAM_RETENTION:
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint32(pk, m->u.retention_rep.deleted);
        break;
    case WIRE_LIMITS_GET:
        msgpack_pack_array(pk, 1);
        limits(pk, &m->u.limits_rep.limits);
        break;
    case WIRE_LIMITS_STATS: {
        const struct dlog_limit_stats *st = &m->u.limits_stats_rep.stats;
        msgpack_pack_array(pk, 4);
        limits(pk, &st->limits);
        msgpack_pack_uint64(pk, st->used_bytes);
        proxy_stats(pk, &st->total);
        msgpack_pack_array(pk, (uint32_t)st->nproxies);
        for (size_t i = 0; i < st->nproxies; i++)
            proxy_stats(pk, &st->proxies[i]);
        break;
    }
    case WIRE_WRITER_OPEN:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, m->u.writer_open_rep.epoch);
        msgpack_pack_uint64(pk, m->u.writer_open_rep.last_txid);
        config(pk, &m->u.writer_open_rep.config);
        break;
    case WIRE_WRITE:
        msgpack_pack_array(pk, 4);
        dlsn(pk, m->u.write_rep.first);
        dlsn(pk, m->u.write_rep.last);
        msgpack_pack_uint64(pk, m->u.write_rep.first_txid);
        wire_pack_bool(pk, m->u.write_rep.duplicate);
        break;
    case WIRE_HEARTBEAT:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, m->u.heartbeat_rep.epoch);
        dlsn(pk, m->u.heartbeat_rep.last);
        msgpack_pack_uint64(pk, m->u.heartbeat_rep.last_txid);
        break;
    case WIRE_READER_OPEN:
        msgpack_pack_array(pk, 2);
        dlsn(pk, m->u.reader_open_rep.position);
        msgpack_pack_uint64(pk, m->u.reader_open_rep.min_txid);
        break;
    case WIRE_READ:
        msgpack_pack_array(pk, 2);
        records(pk, m->u.read_rep.recs, m->u.read_rep.nrecs, 1);
        dlsn(pk, m->u.read_rep.next);
        break;
    default: /* the replies with an empty body */
        msgpack_pack_array(pk, 0);
        break;
    }
}

static void error_reply(msgpack_packer *pk, const struct wire_msg *m)
{
    int redirect = m->status == DLOG_ENOTOWNER || m->status == DLOG_ENOTLEADER;
    int versions = m->type == WIRE_HELLO && m->status == DLOG_EPROTO;

    msgpack_pack_array(pk, 1 + (redirect ? 1 : 0) + (versions ? 2 : 0));
    wire_pack_str(pk, m->err.message);
    if (redirect)
        wire_pack_str(pk, m->err.address);
    if (versions) {
        msgpack_pack_uint32(pk, m->err.min_version);
        msgpack_pack_uint32(pk, m->err.max_version);
    }
}

static void pack(msgpack_packer *pk, const struct wire_msg *m)
{
    msgpack_pack_array(pk, m->is_reply ? 5 : 4);
    msgpack_pack_uint32(pk, m->version);
    msgpack_pack_uint32(pk, m->type | (m->is_reply ? WIRE_REPLY : 0));
    msgpack_pack_uint64(pk, m->request_id);
    if (!m->is_reply)
        request(pk, m);
    else {
        msgpack_pack_int(pk, m->status);
        if (m->status != 0)
            error_reply(pk, m);
        else
            reply(pk, m);
    }
}

/* Packs m after a 4-byte placeholder for the prefix; returns the frame's
 * msgpack length through *len. */
static int encode(const struct wire_msg *m, const struct wire_limits *lim, struct sink *s,
                  size_t *len, char *errmsg)
{
    struct wire_limits l = wire_limits_get(lim);
    static const uint8_t zero[WIRE_FRAME_PREFIX];
    size_t start = s->head->len;
    msgpack_packer pk;
    int rv = wire_msg_check(m, errmsg);

    if (rv != 0)
        return rv;
    msgpack_packer_init(&pk, s, sink_write);
    sink_write(s, (const char *)zero, sizeof zero);
    pack(&pk, m);
    if (s->err != 0)
        return wire_fail(errmsg, DLOG_ENOMEM, "out of memory encoding a frame");
    *len = (s->v != NULL ? s->v->total : s->head->len - start) - WIRE_FRAME_PREFIX;
    if (*len > l.max_frame)
        return wire_fail(errmsg, DLOG_ETOOBIG,
                         "%s frame of %zu bytes exceeds the maximum of %zu",
                         wire_type_name(m->type), *len, l.max_frame);
    put_u32be(s->head->p + start, (uint32_t)*len);
    return 0;
}

int wire_encode(const struct wire_msg *msg, const struct wire_limits *lim,
                struct bytes *out, char *errmsg)
{
    struct sink s = {out, NULL, 0, 0};
    size_t start = out->len;
    size_t len;
    int rv = encode(msg, lim, &s, &len, errmsg);

    if (rv != 0)
        out->len = start;
    return rv;
}

/* ------------------------------------------------------------- iov frames */

void wire_iov_init(struct wire_iov *v)
{
    memset(v, 0, sizeof *v);
    bytes_init(&v->head);
}

void wire_iov_free(struct wire_iov *v)
{
    bytes_free(&v->head);
    free(v->iov);
    free(v->pieces_);
    wire_iov_init(v);
}

int wire_encode_iov(const struct wire_msg *msg, const struct wire_limits *lim,
                    size_t ref_min, struct wire_iov *v, char *errmsg)
{
    struct sink s = {&v->head, v, ref_min > REF_MIN_FLOOR ? ref_min : REF_MIN_FLOOR, 0};
    size_t len;
    int rv;

    bytes_reset(&v->head);
    v->npieces_ = 0;
    v->niov = 0;
    v->total = 0;
    rv = encode(msg, lim, &s, &len, errmsg);
    if (rv == 0 && v->npieces_ > 0) {
        struct iovec *iov = realloc(v->iov, v->npieces_ * sizeof *iov);

        if (iov == NULL) {
            rv = wire_fail(errmsg, DLOG_ENOMEM, "out of memory encoding a frame");
        } else {
            v->iov = iov;
            for (size_t i = 0; i < v->npieces_; i++) {
                const struct wire_piece_ *p = &v->pieces_[i];
                iov[i].iov_base =
                    p->ext != NULL ? (void *)(uintptr_t)p->ext : v->head.p + p->off;
                iov[i].iov_len = p->len;
            }
            v->niov = v->npieces_;
        }
    }
    if (rv != 0) {
        bytes_reset(&v->head);
        v->npieces_ = 0;
        v->niov = 0;
        v->total = 0;
    }
    return rv;
}
