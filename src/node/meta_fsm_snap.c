/*
 * Snapshots of the metadata FSM: the whole state in one buffer, as libraft
 * hands snapshots around as whole in-memory buffers (DESIGN.md, "libraft
 * notes"); the metadata of a namespace is small.
 *
 * DESIGN.md says "msgpack snapshots"; this is the binary encoding of
 * meta_codec.c instead, because a stream is stored as its meta_stream_encode
 * record (the one encoding every durable metadata store keeps, with its own
 * CRC) and the varint cursor gives strict bounds checks without a msgpack
 * zone to manage.
 *
 * Format version 1 (integers are unsigned LEB128 varints unless said;
 * "bytes" is a varint length followed by that many bytes):
 *
 *   4 bytes  SNAP_MAGIC
 *   u8       format version (SNAP_FORMAT)
 *   revision, next_stream_id
 *   nstreams, then per stream in name order: record (bytes)
 *   nkv, then per key in key order: key (bytes), version, value (bytes)
 *   u32be    CRC-32C of every byte before it
 *
 * Tables are written in their (sorted) order, so equal states give equal
 * bytes. A restore checks everything a state must satisfy (order, limits,
 * ids below the next id) and builds the new state aside, so that a bad
 * snapshot leaves the current one untouched.
 */
#include "node/meta_fsm_int.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/crc32c.h"

#define SNAP_MAGIC  "DLMF"
#define SNAP_FORMAT 1

/* ---------------------------------------------------------------- encode */

static int put_run(struct bytes *out, const void *p, size_t len)
{
    int rv = bytes_put_uvarint(out, len);

    return rv != 0 ? rv : bytes_append(out, p, len);
}

static int put_streams(const struct fsm_state *st, struct bytes *out, struct bytes *rec)
{
    int rv = bytes_put_uvarint(out, st->nstreams);

    for (size_t i = 0; rv == 0 && i < st->nstreams; i++) {
        bytes_reset(rec);
        rv = meta_stream_encode(st->streams[i], rec);
        if (rv == 0)
            rv = put_run(out, rec->p, rec->len);
    }
    return rv;
}

static int put_kv(const struct fsm_state *st, struct bytes *out)
{
    int rv = bytes_put_uvarint(out, st->nkv);

    for (size_t i = 0; rv == 0 && i < st->nkv; i++) {
        const struct fsm_kv *e = &st->kv[i];

        rv = put_run(out, e->key, e->key_len);
        if (rv == 0)
            rv = bytes_put_uvarint(out, e->version);
        if (rv == 0)
            rv = put_run(out, e->value, e->len);
    }
    return rv;
}

int meta_fsm_snapshot(const struct meta_fsm *fsm, struct bytes *out)
{
    const struct fsm_state *st = &fsm->st;
    size_t start = out->len;
    struct bytes rec;
    int rv;

    bytes_init(&rec);
    rv = bytes_append(out, SNAP_MAGIC, 4);
    if (rv == 0)
        rv = bytes_put_u8(out, SNAP_FORMAT);
    if (rv == 0)
        rv = bytes_put_uvarint(out, st->revision);
    if (rv == 0)
        rv = bytes_put_uvarint(out, st->next_stream_id);
    if (rv == 0)
        rv = put_streams(st, out, &rec);
    if (rv == 0)
        rv = put_kv(st, out);
    if (rv == 0)
        rv = bytes_put_u32be(out, crc32c(out->p + start, out->len - start));
    bytes_free(&rec);
    if (rv != 0) {
        out->len = start;
        /* Every record in the state was valid when stored: only memory runs out. */
        return DLOG_ENOMEM;
    }
    return 0;
}

/* ---------------------------------------------------------------- decode */

static int get_run(struct cursor *c, const uint8_t **p, size_t *len)
{
    uint64_t n;

    if (cursor_get_uvarint(c, &n) != 0 || n > c->len || cursor_get_bytes(c, n, p) != 0)
        return DLOG_ECORRUPT;
    *len = (size_t)n;
    return 0;
}

/* A count of items, each at least one byte long. */
static int get_count(struct cursor *c, size_t *n)
{
    uint64_t v;

    if (cursor_get_uvarint(c, &v) != 0 || v > c->len)
        return DLOG_ECORRUPT;
    *n = (size_t)v;
    return 0;
}

static int get_stream(struct cursor *c, struct fsm_state *st)
{
    const struct meta_stream *prev =
        st->nstreams > 0 ? st->streams[st->nstreams - 1] : NULL;
    struct meta_stream *s;
    const uint8_t *p;
    size_t len;
    int rv;

    if (get_run(c, &p, &len) != 0)
        return DLOG_ECORRUPT;
    if (fsm_stream_reserve(st) != 0 || (s = malloc(sizeof *s)) == NULL)
        return DLOG_ENOMEM;
    rv = meta_stream_decode(p, len, s);
    if (rv != 0) {
        free(s);
        return rv;
    }
    if ((prev != NULL && strcmp(prev->name, s->name) >= 0) || s->id == 0 ||
        s->id >= st->next_stream_id || s->version == 0) {
        fsm_stream_free(s);
        return DLOG_ECORRUPT;
    }
    fsm_stream_insert(st, st->nstreams, s);
    return 0;
}

static int get_key(struct cursor *c, struct fsm_state *st)
{
    struct meta_cmd_slice key, value;
    uint64_t version;
    int found;

    if (get_run(c, &key.p, &key.len) != 0 || cursor_get_uvarint(c, &version) != 0 ||
        get_run(c, &value.p, &value.len) != 0)
        return DLOG_ECORRUPT;
    if (!fsm_key_ok(key.p, key.len) || version == 0 || value.len > META_VALUE_MAX)
        return DLOG_ECORRUPT;
    /* Strictly ascending: the new key goes after every key so far. */
    if (fsm_kv_find(st, key.p, key.len, &found) != st->nkv || found)
        return DLOG_ECORRUPT;
    return fsm_kv_store(st, st->nkv, 0, &key, value.p, value.len, version);
}

/* The body (after magic and format) into st, which starts empty. */
static int get_state(struct cursor *c, struct fsm_state *st)
{
    size_t n;
    int rv;

    if (cursor_get_uvarint(c, &st->revision) != 0 ||
        cursor_get_uvarint(c, &st->next_stream_id) != 0 || st->next_stream_id == 0)
        return DLOG_ECORRUPT;
    if (get_count(c, &n) != 0)
        return DLOG_ECORRUPT;
    for (size_t i = 0; i < n; i++)
        if ((rv = get_stream(c, st)) != 0)
            return rv;
    if (get_count(c, &n) != 0)
        return DLOG_ECORRUPT;
    for (size_t i = 0; i < n; i++)
        if ((rv = get_key(c, st)) != 0)
            return rv;
    return c->len == 0 ? 0 : DLOG_ECORRUPT; /* no trailing bytes */
}

int meta_fsm_restore(struct meta_fsm *fsm, const void *p, size_t len)
{
    struct fsm_state st = {.next_stream_id = 1};
    struct cursor c = {p, len};
    const uint8_t *magic;
    uint8_t format;
    int rv;

    /* The CRC trailer first: it covers everything else. */
    if (p == NULL || len < 4 + 1 + 4 || crc32c(p, len - 4) != get_u32be(c.p + len - 4))
        return DLOG_ECORRUPT;
    c.len -= 4;
    (void)cursor_get_bytes(&c, 4, &magic);
    (void)cursor_get_u8(&c, &format);
    if (memcmp(magic, SNAP_MAGIC, 4) != 0)
        return DLOG_ECORRUPT;
    if (format != SNAP_FORMAT)
        return DLOG_EPROTO;
    rv = get_state(&c, &st);
    if (rv != 0) {
        fsm_state_clear(&st);
        return rv;
    }
    fsm_state_clear(&fsm->st);
    fsm->st = st;
    return 0;
}
