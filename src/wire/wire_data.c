/*
 * The data groups' node calls (types 0x60..0x7f; wire_msgs.h and
 * docs/protocol.md, "Data node calls"): their bodies, encoded, decoded and
 * checked. As in wire_node.c, the envelope and error replies are the
 * general code's.
 */
#include <string.h>

#include <msgpack.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "wire/wire_int.h"

/* ---------------------------------------------------------------- packing */

static void pk_info(msgpack_packer *pk, const struct wire_seg_info *i)
{
    msgpack_pack_array(pk, 10);
    msgpack_pack_uint64(pk, i->fence_epoch);
    msgpack_pack_uint32(pk, i->sealed);
    msgpack_pack_uint64(pk, i->next_entry);
    msgpack_pack_uint64(pk, i->records);
    msgpack_pack_uint64(pk, i->bytes);
    msgpack_pack_uint64(pk, i->first_txid);
    msgpack_pack_uint64(pk, i->last_txid);
    msgpack_pack_uint64(pk, i->created_ms);
    msgpack_pack_uint64(pk, i->last_rec_entry);
    msgpack_pack_uint32(pk, i->last_rec_slot);
}

static void pk_u64s(msgpack_packer *pk, const uint64_t *v, size_t n)
{
    msgpack_pack_array(pk, (uint32_t)n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_uint64(pk, v[i]);
}

/* The fields of each request after [group, stream, seq]. */
static uint32_t nfields(uint32_t type)
{
    switch (type) {
    case WIRE_SEG_OPEN:
        return 5;
    case WIRE_SEG_APPEND:
        return 8;
    case WIRE_SEG_READ:
        return 6;
    case WIRE_SEG_INFO:
    case WIRE_SEG_FENCE:
    case WIRE_SEG_SEAL:
        return 4;
    case WIRE_SEG_REMOVE:
        return 3;
    default: /* SEG_WAIT */
        return 2;
    }
}

void wire_data_pack_request(msgpack_packer *pk, const struct wire_msg *m)
{
    const struct wire_seg_req *r = &m->u.seg;

    if (m->type == WIRE_SEG_WAIT) {
        msgpack_pack_array(pk, 2);
        pk_u64s(pk, m->u.seg_wait.applied, m->u.seg_wait.n);
        msgpack_pack_uint32(pk, m->u.seg_wait.timeout_ms);
        return;
    }
    if (m->type == WIRE_SEG_DUMP) {
        const struct wire_seg_dump *q = &m->u.seg_dump;
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint32(pk, q->group);
        msgpack_pack_uint64(pk, q->session);
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint32(pk, q->kind);
        msgpack_pack_uint64(pk, q->stream);
        msgpack_pack_uint64(pk, q->seq);
        msgpack_pack_uint64(pk, q->entry);
        msgpack_pack_uint64(pk, q->max_bytes);
        msgpack_pack_uint64(pk, q->min_applied);
        return;
    }
    msgpack_pack_array(pk, nfields(m->type));
    msgpack_pack_uint32(pk, r->group);
    msgpack_pack_uint64(pk, r->stream);
    msgpack_pack_uint64(pk, r->seq);
    switch (m->type) {
    case WIRE_SEG_OPEN:
        msgpack_pack_uint64(pk, r->epoch);
        msgpack_pack_uint64(pk, r->start_txid);
        break;
    case WIRE_SEG_APPEND:
        msgpack_pack_uint64(pk, r->epoch);
        msgpack_pack_uint32(pk, r->flags);
        msgpack_pack_array(pk, (uint32_t)r->n);
        for (size_t i = 0; i < r->n; i++) {
            msgpack_pack_bin(pk, r->entries[i].iov_len);
            if (r->entries[i].iov_len > 0)
                msgpack_pack_bin_body(pk, r->entries[i].iov_base, r->entries[i].iov_len);
        }
        msgpack_pack_uint64(pk, r->writer);
        msgpack_pack_uint64(pk, r->append_seq);
        break;
    case WIRE_SEG_READ:
        msgpack_pack_uint64(pk, r->from);
        msgpack_pack_uint64(pk, r->max_bytes);
        msgpack_pack_uint64(pk, r->min_applied);
        break;
    case WIRE_SEG_INFO:
        msgpack_pack_uint64(pk, r->min_applied);
        break;
    case WIRE_SEG_FENCE:
    case WIRE_SEG_SEAL:
        msgpack_pack_uint64(pk, r->epoch);
        break;
    default: /* SEG_REMOVE */
        break;
    }
}

void wire_data_pack_reply(msgpack_packer *pk, const struct wire_msg *m)
{
    switch (m->type) {
    case WIRE_SEG_READ: {
        const struct wire_seg_read_rep *r = &m->u.seg_read_rep;
        msgpack_pack_array(pk, 2);
        msgpack_pack_uint64(pk, r->applied);
        msgpack_pack_array(pk, (uint32_t)r->n);
        for (size_t i = 0; i < r->n; i++) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint64(pk, r->entries[i].id);
            msgpack_pack_bin(pk, r->entries[i].len);
            if (r->entries[i].len > 0)
                msgpack_pack_bin_body(pk, r->entries[i].p, r->entries[i].len);
        }
        break;
    }
    case WIRE_SEG_WAIT:
        msgpack_pack_array(pk, 1);
        pk_u64s(pk, m->u.seg_wait_rep.applied, m->u.seg_wait_rep.n);
        break;
    case WIRE_SEG_DUMP: {
        const struct wire_seg_dump_rep *r = &m->u.seg_dump_rep;
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint64(pk, r->session);
        msgpack_pack_array(pk, 5);
        msgpack_pack_uint64(pk, r->applied);
        msgpack_pack_uint64(pk, r->hash);
        msgpack_pack_uint64(pk, r->segments);
        msgpack_pack_uint64(pk, r->entries);
        msgpack_pack_uint64(pk, r->bytes);
        msgpack_pack_array(pk, (uint32_t)r->nsegs);
        for (size_t i = 0; i < r->nsegs; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_uint64(pk, r->segs[i].stream);
            msgpack_pack_uint64(pk, r->segs[i].seq);
            pk_info(pk, &r->segs[i].info);
            msgpack_pack_array(pk, r->segs[i].nonce);
            for (uint32_t s = 0; s < r->segs[i].nonce; s++)
                pk_u64s(pk, r->segs[i].once[s], 4);
        }
        msgpack_pack_array(pk, (uint32_t)r->nents);
        for (size_t i = 0; i < r->nents; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_uint64(pk, r->ents[i].stream);
            msgpack_pack_uint64(pk, r->ents[i].seq);
            msgpack_pack_uint64(pk, r->ents[i].entry);
            msgpack_pack_bin(pk, r->ents[i].len);
            if (r->ents[i].len > 0)
                msgpack_pack_bin_body(pk, r->ents[i].p, r->ents[i].len);
        }
        wire_pack_bool(pk, r->done);
        break;
    }
    default: {
        const struct wire_seg_rep *r = &m->u.seg_rep;
        msgpack_pack_array(pk, 4);
        msgpack_pack_uint64(pk, r->applied);
        msgpack_pack_uint64(pk, r->first_entry);
        msgpack_pack_uint64(pk, r->first_txid);
        pk_info(pk, &r->info);
        break;
    }
    }
}

/* ---------------------------------------------------------------- decoding */

static int dec_u64s(struct wire_dec *d, const msgpack_object *o, const char *field,
                    const uint64_t **out, size_t *n)
{
    const msgpack_object *items;
    uint64_t *v;
    int rv = wire_dec_list(d, o, field, WIRE_MAX_GROUPS, &items, n);

    if (rv != 0)
        return rv;
    v = wire_dec_alloc(d, (*n > 0 ? *n : 1) * sizeof *v);
    if (v == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < *n; i++) {
        rv = wire_dec_u64(d, &items[i], field, &v[i]);
        if (rv != 0)
            return rv;
    }
    *out = v;
    return 0;
}

static int dec_entries(struct wire_dec *d, const msgpack_object *o,
                       struct wire_seg_req *r)
{
    const msgpack_object *items;
    struct iovec *iov;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "entries", WIRE_MAX_RECORDS, &items, &n);

    if (rv != 0)
        return rv;
    iov = wire_dec_alloc(d, (n > 0 ? n : 1) * sizeof *iov);
    if (iov == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const void *p;
        size_t len;
        rv = wire_dec_bin(d, &items[i], "entry", WIRE_MAX_ENTRY, &p, &len);
        if (rv != 0)
            return wire_dec_wrap(d, rv, "entries");
        iov[i].iov_base = (void *)p;
        iov[i].iov_len = len;
    }
    r->entries = iov;
    r->n = n;
    return 0;
}

static int dec_dump_request(struct wire_dec *d, struct wire_seg_dump *q,
                            const msgpack_object *body)
{
    const msgpack_object *b, *a;
    int rv = wire_dec_array(d, body, "body", 5, &b);

    if (rv == 0)
        rv = wire_dec_u32(d, &b[0], "group", &q->group);
    if (rv == 0)
        rv = wire_dec_u64(d, &b[1], "session", &q->session);
    if (rv == 0)
        rv = wire_dec_array(d, &b[2], "after", 4, &a);
    if (rv == 0)
        rv = wire_dec_u32(d, &a[0], "after.kind", &q->kind);
    if (rv == 0)
        rv = wire_dec_u64(d, &a[1], "after.stream", &q->stream);
    if (rv == 0)
        rv = wire_dec_u64(d, &a[2], "after.seq", &q->seq);
    if (rv == 0)
        rv = wire_dec_u64(d, &a[3], "after.entry", &q->entry);
    if (rv == 0)
        rv = wire_dec_u64(d, &b[3], "max_bytes", &q->max_bytes);
    if (rv == 0)
        rv = wire_dec_u64(d, &b[4], "min_applied", &q->min_applied);
    return rv;
}

int wire_data_decode_request(struct wire_dec *d, struct wire_msg *m,
                             const msgpack_object *body)
{
    struct wire_seg_req *r = &m->u.seg;
    const msgpack_object *b;
    int rv;

    if (m->type == WIRE_SEG_WAIT) {
        rv = wire_dec_array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = dec_u64s(d, &b[0], "applied", &m->u.seg_wait.applied, &m->u.seg_wait.n);
        if (rv == 0)
            rv = wire_dec_u32(d, &b[1], "timeout_ms", &m->u.seg_wait.timeout_ms);
        return rv;
    }
    if (m->type == WIRE_SEG_DUMP)
        return dec_dump_request(d, &m->u.seg_dump, body);
    if (m->type > WIRE_SEG_WAIT)
        return wire_fail(d->errmsg, DLOG_EPROTO, "type 0x%02x is not a request",
                         (unsigned)m->type);
    uint32_t want = nfields(m->type);
    if (m->type == WIRE_SEG_APPEND && body->type == MSGPACK_OBJECT_ARRAY &&
        body->via.array.size == 6)
        want = 6; /* without writer and append_seq */
    rv = wire_dec_array(d, body, "body", want, &b);
    if (rv == 0)
        rv = wire_dec_u32(d, &b[0], "group", &r->group);
    if (rv == 0)
        rv = wire_dec_u64(d, &b[1], "stream", &r->stream);
    if (rv == 0)
        rv = wire_dec_u64(d, &b[2], "seq", &r->seq);
    if (rv != 0)
        return rv;
    switch (m->type) {
    case WIRE_SEG_OPEN:
        rv = wire_dec_u64(d, &b[3], "epoch", &r->epoch);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[4], "start_txid", &r->start_txid);
        return rv;
    case WIRE_SEG_APPEND:
        rv = wire_dec_u64(d, &b[3], "epoch", &r->epoch);
        if (rv == 0)
            rv = wire_dec_u32(d, &b[4], "flags", &r->flags);
        if (rv == 0)
            rv = dec_entries(d, &b[5], r);
        if (rv == 0 && want == 8)
            rv = wire_dec_u64(d, &b[6], "writer", &r->writer);
        if (rv == 0 && want == 8)
            rv = wire_dec_u64(d, &b[7], "append_seq", &r->append_seq);
        return rv;
    case WIRE_SEG_READ:
        rv = wire_dec_u64(d, &b[3], "from", &r->from);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[4], "max_bytes", &r->max_bytes);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[5], "min_applied", &r->min_applied);
        return rv;
    case WIRE_SEG_INFO:
        return wire_dec_u64(d, &b[3], "min_applied", &r->min_applied);
    case WIRE_SEG_FENCE:
    case WIRE_SEG_SEAL:
        return wire_dec_u64(d, &b[3], "epoch", &r->epoch);
    default: /* SEG_REMOVE */
        return 0;
    }
}

static int dec_info(struct wire_dec *d, const msgpack_object *o, struct wire_seg_info *i)
{
    const msgpack_object *f;
    int rv = wire_dec_array(d, o, "info", 10, &f);

    if (rv == 0)
        rv = wire_dec_u64(d, &f[0], "fence_epoch", &i->fence_epoch);
    if (rv == 0)
        rv = wire_dec_u32(d, &f[1], "sealed", &i->sealed);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[2], "next_entry", &i->next_entry);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[3], "records", &i->records);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[4], "bytes", &i->bytes);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[5], "first_txid", &i->first_txid);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[6], "last_txid", &i->last_txid);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[7], "created_ms", &i->created_ms);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[8], "last_rec_entry", &i->last_rec_entry);
    if (rv == 0)
        rv = wire_dec_u32(d, &f[9], "last_rec_slot", &i->last_rec_slot);
    return rv;
}

static int dec_read_entries(struct wire_dec *d, const msgpack_object *o,
                            struct wire_seg_read_rep *r)
{
    const msgpack_object *items, *f;
    struct wire_seg_entry *e;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "entries", WIRE_MAX_RECORDS, &items, &n);

    if (rv != 0)
        return rv;
    e = wire_dec_alloc(d, (n > 0 ? n : 1) * sizeof *e);
    if (e == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = wire_dec_array(d, &items[i], "entry", 2, &f);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[0], "id", &e[i].id);
        if (rv == 0)
            rv = wire_dec_bin(d, &f[1], "bytes", WIRE_MAX_ENTRY, &e[i].p, &e[i].len);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "entries");
    r->entries = e;
    r->n = n;
    return 0;
}

/* A dump segment's once slots: up to WIRE_DUMP_ONCE_SLOTS [4 uints]. */
static int dec_once(struct wire_dec *d, const msgpack_object *o, struct wire_dump_seg *s)
{
    const msgpack_object *items, *f;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "once", WIRE_DUMP_ONCE_SLOTS, &items, &n);

    for (size_t k = 0; k < n && rv == 0; k++) {
        rv = wire_dec_array(d, &items[k], "once slot", 4, &f);
        for (int j = 0; j < 4 && rv == 0; j++)
            rv = wire_dec_u64(d, &f[j], "once slot", &s->once[k][j]);
    }
    s->nonce = (uint32_t)n;
    return rv;
}

static int dec_dump_reply(struct wire_dec *d, struct wire_seg_dump_rep *r,
                          const msgpack_object *body)
{
    const msgpack_object *b, *st, *items, *f;
    struct wire_dump_seg *segs;
    struct wire_dump_entry *ents;
    size_t n = 0;
    int rv = wire_dec_array(d, body, "body", 5, &b);

    if (rv == 0)
        rv = wire_dec_u64(d, &b[0], "session", &r->session);
    if (rv == 0)
        rv = wire_dec_array(d, &b[1], "state", 5, &st);
    if (rv == 0)
        rv = wire_dec_u64(d, &st[0], "state.applied", &r->applied);
    if (rv == 0)
        rv = wire_dec_u64(d, &st[1], "state.hash", &r->hash);
    if (rv == 0)
        rv = wire_dec_u64(d, &st[2], "state.segments", &r->segments);
    if (rv == 0)
        rv = wire_dec_u64(d, &st[3], "state.entries", &r->entries);
    if (rv == 0)
        rv = wire_dec_u64(d, &st[4], "state.bytes", &r->bytes);
    if (rv == 0)
        rv = wire_dec_list(d, &b[2], "segs", WIRE_MAX_DUMP_ITEMS, &items, &n);
    if (rv != 0)
        return rv;
    segs = wire_dec_alloc(d, (n > 0 ? n : 1) * sizeof *segs);
    if (segs == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < n && rv == 0; i++) {
        uint32_t nf =
            items[i].type == MSGPACK_OBJECT_ARRAY && items[i].via.array.size == 4 ? 4 : 3;
        memset(&segs[i], 0, sizeof segs[i]);
        rv = wire_dec_array(d, &items[i], "seg", nf, &f);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[0], "stream", &segs[i].stream);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[1], "seq", &segs[i].seq);
        if (rv == 0)
            rv = dec_info(d, &f[2], &segs[i].info);
        if (rv == 0 && nf == 4)
            rv = dec_once(d, &f[3], &segs[i]);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "segs");
    r->segs = segs;
    r->nsegs = n;
    rv = wire_dec_list(d, &b[3], "entries", WIRE_MAX_DUMP_ITEMS, &items, &n);
    if (rv != 0)
        return rv;
    ents = wire_dec_alloc(d, (n > 0 ? n : 1) * sizeof *ents);
    if (ents == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = wire_dec_array(d, &items[i], "entry", 4, &f);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[0], "stream", &ents[i].stream);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[1], "seq", &ents[i].seq);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[2], "entry", &ents[i].entry);
        if (rv == 0)
            rv =
                wire_dec_bin(d, &f[3], "bytes", WIRE_MAX_ENTRY, &ents[i].p, &ents[i].len);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "entries");
    r->ents = ents;
    r->nents = n;
    return wire_dec_bool(d, &b[4], "done", &r->done);
}

int wire_data_decode_reply(struct wire_dec *d, struct wire_msg *m,
                           const msgpack_object *body)
{
    const msgpack_object *b;
    int rv;

    switch (m->type) {
    case WIRE_SEG_READ:
        rv = wire_dec_array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "applied", &m->u.seg_read_rep.applied);
        if (rv == 0)
            rv = dec_read_entries(d, &b[1], &m->u.seg_read_rep);
        return rv;
    case WIRE_SEG_WAIT:
        rv = wire_dec_array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = dec_u64s(d, &b[0], "applied", &m->u.seg_wait_rep.applied,
                          &m->u.seg_wait_rep.n);
        return rv;
    case WIRE_SEG_DUMP:
        return dec_dump_reply(d, &m->u.seg_dump_rep, body);
    default:
        rv = wire_dec_array(d, body, "body", 4, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "applied", &m->u.seg_rep.applied);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[1], "first_entry", &m->u.seg_rep.first_entry);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "first_txid", &m->u.seg_rep.first_txid);
        if (rv == 0)
            rv = dec_info(d, &b[3], &m->u.seg_rep.info);
        return rv;
    }
}

/* ---------------------------------------------------------------- checking */

static int check_dump_request(const struct wire_seg_dump *q, char *errmsg)
{
    if (q->group >= WIRE_MAX_GROUPS)
        return wire_fail(errmsg, DLOG_EINVAL, "group: %u is not below %d",
                         (unsigned)q->group, WIRE_MAX_GROUPS);
    if (q->kind != 0 && q->kind != 2 && q->kind != 3)
        return wire_fail(errmsg, DLOG_EINVAL, "after.kind: %u is not 0, 2 or 3",
                         (unsigned)q->kind);
    if ((q->kind == 0 && (q->stream != 0 || q->seq != 0 || q->entry != 0)) ||
        (q->kind == 2 && q->entry != 0))
        return wire_fail(errmsg, DLOG_EINVAL, "after: fields set beyond its kind %u",
                         (unsigned)q->kind);
    if (q->session == 0 && q->kind != 0)
        return wire_fail(errmsg, DLOG_EINVAL, "after: a new session starts at kind 0");
    if (q->max_bytes > WIRE_MAX_DUMP_BYTES)
        return wire_fail(errmsg, DLOG_EINVAL, "max_bytes: %llu is over %u",
                         (unsigned long long)q->max_bytes, WIRE_MAX_DUMP_BYTES);
    if (q->max_bytes == 0 && q->session != 0)
        return wire_fail(errmsg, DLOG_EINVAL,
                         "max_bytes: 0 (the state only) needs session 0");
    return 0;
}

static int check_dump_reply(const struct wire_seg_dump_rep *r, char *errmsg)
{
    if (r->nsegs > WIRE_MAX_DUMP_ITEMS || (r->segs == NULL && r->nsegs > 0))
        return wire_fail(errmsg, DLOG_EINVAL, "segs: %zu, at most %d", r->nsegs,
                         WIRE_MAX_DUMP_ITEMS);
    if (r->nents > WIRE_MAX_DUMP_ITEMS || (r->ents == NULL && r->nents > 0))
        return wire_fail(errmsg, DLOG_EINVAL, "entries: %zu, at most %d", r->nents,
                         WIRE_MAX_DUMP_ITEMS);
    if (r->done != 0 && r->done != 1)
        return wire_fail(errmsg, DLOG_EINVAL, "done: must be 0 or 1");
    if (r->session == 0 && (r->nsegs > 0 || r->nents > 0 || !r->done))
        return wire_fail(errmsg, DLOG_EINVAL,
                         "session: 0 (the state only) with items or not done");
    for (size_t i = 0; i < r->nsegs; i++)
        if (r->segs[i].info.sealed > 1)
            return wire_fail(errmsg, DLOG_EINVAL, "segs[%zu].info.sealed: must be 0 or 1",
                             i);
    for (size_t i = 0; i < r->nents; i++)
        if (r->ents[i].len < 1 || r->ents[i].len > WIRE_MAX_ENTRY || r->ents[i].p == NULL)
            return wire_fail(errmsg, DLOG_EINVAL, "entries[%zu]: %zu bytes", i,
                             r->ents[i].len);
    return 0;
}

int wire_data_check_request(const struct wire_msg *m, char *errmsg)
{
    const struct wire_seg_req *r = &m->u.seg;

    if (m->type == WIRE_SEG_WAIT) {
        const struct wire_seg_wait *w = &m->u.seg_wait;
        if (w->n < 1 || w->n > WIRE_MAX_GROUPS || w->applied == NULL)
            return wire_fail(errmsg, DLOG_EINVAL, "applied: %zu groups, expected 1..%d",
                             w->n, WIRE_MAX_GROUPS);
        if (w->timeout_ms > WIRE_MAX_WAIT_MS)
            return wire_fail(errmsg, DLOG_EINVAL, "timeout_ms: %u is over %d",
                             (unsigned)w->timeout_ms, WIRE_MAX_WAIT_MS);
        return 0;
    }
    if (m->type == WIRE_SEG_DUMP)
        return check_dump_request(&m->u.seg_dump, errmsg);
    if (m->type > WIRE_SEG_WAIT)
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x is not a request", m->type);
    if (r->group >= WIRE_MAX_GROUPS)
        return wire_fail(errmsg, DLOG_EINVAL, "group: %u is not below %d",
                         (unsigned)r->group, WIRE_MAX_GROUPS);
    if (m->type == WIRE_SEG_APPEND) {
        if (r->n < 1 || r->n > WIRE_MAX_RECORDS || r->entries == NULL)
            return wire_fail(errmsg, DLOG_EINVAL, "entries: %zu, expected 1..%d", r->n,
                             WIRE_MAX_RECORDS);
        for (size_t i = 0; i < r->n; i++)
            if (r->entries[i].iov_len < 1 || r->entries[i].iov_len > WIRE_MAX_ENTRY ||
                r->entries[i].iov_base == NULL)
                return wire_fail(errmsg, DLOG_EINVAL, "entries[%zu]: %zu bytes", i,
                                 r->entries[i].iov_len);
        if ((r->writer == 0) != (r->append_seq == 0))
            return wire_fail(errmsg, DLOG_EINVAL,
                             "writer and append_seq: both 0 or both non-zero");
    }
    if (m->type == WIRE_SEG_READ && r->max_bytes == 0)
        return wire_fail(errmsg, DLOG_EINVAL, "max_bytes: must be >= 1");
    return 0;
}

int wire_data_check_reply(const struct wire_msg *m, char *errmsg)
{
    switch (m->type) {
    case WIRE_SEG_READ: {
        const struct wire_seg_read_rep *r = &m->u.seg_read_rep;
        if (r->n > WIRE_MAX_RECORDS || (r->entries == NULL && r->n > 0))
            return wire_fail(errmsg, DLOG_EINVAL, "entries: %zu, at most %d", r->n,
                             WIRE_MAX_RECORDS);
        for (size_t i = 0; i < r->n; i++)
            if (r->entries[i].len < 1 || r->entries[i].len > WIRE_MAX_ENTRY ||
                r->entries[i].p == NULL)
                return wire_fail(errmsg, DLOG_EINVAL, "entries[%zu]: %zu bytes", i,
                                 r->entries[i].len);
        return 0;
    }
    case WIRE_SEG_DUMP:
        return check_dump_reply(&m->u.seg_dump_rep, errmsg);
    case WIRE_SEG_WAIT:
        if (m->u.seg_wait_rep.n > WIRE_MAX_GROUPS ||
            (m->u.seg_wait_rep.applied == NULL && m->u.seg_wait_rep.n > 0))
            return wire_fail(errmsg, DLOG_EINVAL, "applied: %zu groups, at most %d",
                             m->u.seg_wait_rep.n, WIRE_MAX_GROUPS);
        return 0;
    case WIRE_SEG_OPEN:
    case WIRE_SEG_APPEND:
    case WIRE_SEG_INFO:
    case WIRE_SEG_FENCE:
    case WIRE_SEG_SEAL:
    case WIRE_SEG_REMOVE:
        return m->u.seg_rep.info.sealed <= 1
                   ? 0
                   : wire_fail(errmsg, DLOG_EINVAL, "info.sealed: must be 0 or 1");
    default:
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x has no success reply",
                         m->type);
    }
}
