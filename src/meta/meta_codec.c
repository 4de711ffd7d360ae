/*
 * Stream records: helpers and the binary encoding every durable metadata
 * store keeps (meta_lmdb.c as the LMDB value, later the Raft FSM snapshot).
 *
 * Encoding, version 1 (integers are unsigned LEB128 varints unless said):
 *
 *   u8      format version (META_CODEC_VERSION)
 *   id, version, epoch, created_ms
 *   name length (1 .. DLOG_STREAM_NAME_MAX), name bytes (no NUL inside)
 *   cfg: version, segment_max_bytes, segment_max_age_ms,
 *        segment_max_records, retention_age_ms, retention_bytes,
 *        compression, max_record_bytes, auto_txid (as a uint32)
 *   trunc: seg, entry, slot
 *   next_seq
 *   nseg, then per segment: seq, state, epoch, entries, records, bytes,
 *        first_txid, last_txid, created_ms, sealed_ms
 *   (version 2) cfg.limits: version, records_per_sec, bytes_per_sec,
 *        soft_records_per_sec, soft_bytes_per_sec, burst_ms, max_wait_ms,
 *        quota_bytes, quota_policy
 *   (version 3) per segment, in the order above: place (a uint32)
 *   u32be   CRC-32C of every byte before it
 *
 * The encoder writes version 3 when a segment has a place, else version 2
 * (so records of streams that never met placement keep their old bytes);
 * the decoder reads 1 (no limits: all 0), 2 (no places: all 0) and 3. A
 * new field means a new format version; the decoder refuses versions it
 * does not know, trailing bytes and a bad CRC with DLOG_ECORRUPT, so a torn
 * or foreign value is never taken for a stream.
 */
#include "meta/meta.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/crc32c.h"

#define META_CODEC_VERSION 3
#define LIMITS_FIELDS      9
/* Each segment field takes at least one byte. */
#define SEG_MIN_BYTES 10

void meta_stream_clear(struct meta_stream *s)
{
    free(s->segs);
    s->segs = NULL;
    s->nseg = 0;
}

int meta_stream_copy(struct meta_stream *dst, const struct meta_stream *src)
{
    struct meta_segment *segs = NULL;

    if (src->nseg > 0) {
        segs = malloc((size_t)src->nseg * sizeof *segs);
        if (segs == NULL)
            return DLOG_ENOMEM;
        memcpy(segs, src->segs, (size_t)src->nseg * sizeof *segs);
    }
    *dst = *src;
    dst->segs = segs;
    return 0;
}

int meta_stream_push_segment(struct meta_stream *s, const struct meta_segment *g)
{
    struct meta_segment *segs;

    if (s->nseg == UINT32_MAX)
        return DLOG_ENOMEM;
    segs = realloc(s->segs, ((size_t)s->nseg + 1) * sizeof *segs);
    if (segs == NULL)
        return DLOG_ENOMEM;
    segs[s->nseg] = *g;
    s->segs = segs;
    s->nseg++;
    return 0;
}

struct meta_segment *meta_stream_last(struct meta_stream *s)
{
    return s->nseg == 0 ? NULL : &s->segs[s->nseg - 1];
}

/* Segments are ascending by seq: binary search. */
struct meta_segment *meta_stream_find(struct meta_stream *s, uint64_t seq)
{
    size_t lo = 0, hi = s->nseg;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (s->segs[mid].seq == seq)
            return &s->segs[mid];
        if (s->segs[mid].seq < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---------------------------------------------------------------- encode */

static int put_all(struct bytes *b, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rv = bytes_put_uvarint(b, v[i]);
        if (rv != 0)
            return rv;
    }
    return 0;
}

/*
 * Appends the encoding of s to out (out->len grows; earlier bytes are kept).
 * 0, DLOG_EINVAL (name empty or not NUL-terminated) or DLOG_ENOMEM; on
 * failure out->len is restored.
 */
int meta_stream_encode(const struct meta_stream *s, struct bytes *out)
{
    size_t start = out->len;
    size_t name_len = strnlen(s->name, sizeof s->name);
    int rv;

    if (name_len == 0 || name_len > DLOG_STREAM_NAME_MAX)
        return DLOG_EINVAL;

    const uint64_t head[] = {s->id, s->version, s->epoch, s->created_ms, name_len};
    const uint64_t tail[] = {
        s->cfg.version,
        s->cfg.segment_max_bytes,
        s->cfg.segment_max_age_ms,
        s->cfg.segment_max_records,
        s->cfg.retention_age_ms,
        s->cfg.retention_bytes,
        s->cfg.compression,
        s->cfg.max_record_bytes,
        (uint32_t)s->cfg.auto_txid,
        s->trunc.seg,
        s->trunc.entry,
        s->trunc.slot,
        s->next_seq,
        s->nseg,
    };

    int placed = 0;
    for (uint32_t i = 0; i < s->nseg && !placed; i++)
        placed = s->segs[i].place != 0;
    rv = bytes_put_u8(out, placed ? META_CODEC_VERSION : 2);
    if (rv == 0)
        rv = put_all(out, head, sizeof head / sizeof head[0]);
    if (rv == 0)
        rv = bytes_append(out, s->name, name_len);
    if (rv == 0)
        rv = put_all(out, tail, sizeof tail / sizeof tail[0]);
    for (uint32_t i = 0; rv == 0 && i < s->nseg; i++) {
        const struct meta_segment *g = &s->segs[i];
        const uint64_t f[SEG_MIN_BYTES] = {
            g->seq,   g->state,      g->epoch,     g->entries,    g->records,
            g->bytes, g->first_txid, g->last_txid, g->created_ms, g->sealed_ms,
        };
        rv = put_all(out, f, SEG_MIN_BYTES);
    }
    if (rv == 0) {
        const struct dlog_limits *l = &s->cfg.limits;
        const uint64_t lim[LIMITS_FIELDS] = {
            l->version,
            l->records_per_sec,
            l->bytes_per_sec,
            l->soft_records_per_sec,
            l->soft_bytes_per_sec,
            l->burst_ms,
            l->max_wait_ms,
            l->quota_bytes,
            l->quota_policy,
        };
        rv = put_all(out, lim, LIMITS_FIELDS);
    }
    for (uint32_t i = 0; rv == 0 && placed && i < s->nseg; i++)
        rv = bytes_put_uvarint(out, s->segs[i].place);
    if (rv == 0)
        rv = bytes_put_u32be(out, crc32c(out->p + start, out->len - start));
    if (rv != 0) {
        out->len = start;
        return rv;
    }
    return 0;
}

/* ---------------------------------------------------------------- decode */

static int get_all(struct cursor *c, uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cursor_get_uvarint(c, &v[i]) != 0)
            return DLOG_ECORRUPT;
    return 0;
}

/*
 * Decodes len bytes at p into *s, which is overwritten (clear it first if
 * it holds segments). On success s->segs is malloc'd (or NULL when nseg is
 * 0) and the caller frees it with meta_stream_clear. On failure (DLOG_ECORRUPT,
 * DLOG_ENOMEM) *s is zeroed and owns nothing.
 */
int meta_stream_decode(const void *p, size_t len, struct meta_stream *s)
{
    struct cursor c = {p, len};
    const uint8_t *name;
    uint8_t ver;
    uint32_t crc;
    uint64_t head[5], tail[14];
    int rv = DLOG_ECORRUPT;

    memset(s, 0, sizeof *s);
    /* The CRC trailer first: it covers everything else. */
    if (len < 1 + 4)
        return DLOG_ECORRUPT;
    crc = get_u32be((const uint8_t *)p + len - 4);
    if (crc32c(p, len - 4) != crc)
        return DLOG_ECORRUPT;
    c.len -= 4;

    if (cursor_get_u8(&c, &ver) != 0 || ver < 1 || ver > META_CODEC_VERSION)
        return DLOG_ECORRUPT;
    if (get_all(&c, head, 5) != 0)
        return DLOG_ECORRUPT;
    if (head[4] == 0 || head[4] > DLOG_STREAM_NAME_MAX ||
        cursor_get_bytes(&c, (size_t)head[4], &name) != 0 ||
        memchr(name, '\0', (size_t)head[4]) != NULL)
        return DLOG_ECORRUPT;
    if (get_all(&c, tail, 14) != 0)
        return DLOG_ECORRUPT;
    /* u32 fields must fit; nseg is bounded by the bytes that remain. */
    if (tail[0] > UINT32_MAX || tail[6] > UINT32_MAX || tail[8] > UINT32_MAX ||
        tail[11] > UINT32_MAX || tail[13] > UINT32_MAX ||
        tail[13] > c.len / SEG_MIN_BYTES)
        return DLOG_ECORRUPT;

    s->id = head[0];
    s->version = head[1];
    s->epoch = head[2];
    s->created_ms = head[3];
    memcpy(s->name, name, (size_t)head[4]);
    s->name[head[4]] = '\0';
    s->cfg.version = (uint32_t)tail[0];
    s->cfg.segment_max_bytes = tail[1];
    s->cfg.segment_max_age_ms = tail[2];
    s->cfg.segment_max_records = tail[3];
    s->cfg.retention_age_ms = tail[4];
    s->cfg.retention_bytes = tail[5];
    s->cfg.compression = (uint32_t)tail[6];
    s->cfg.max_record_bytes = tail[7];
    s->cfg.auto_txid = (int)(uint32_t)tail[8];
    s->trunc.seg = tail[9];
    s->trunc.entry = tail[10];
    s->trunc.slot = (uint32_t)tail[11];
    s->next_seq = tail[12];

    uint32_t nseg = (uint32_t)tail[13];
    if (nseg > 0) {
        s->segs = calloc(nseg, sizeof *s->segs);
        if (s->segs == NULL) {
            rv = DLOG_ENOMEM;
            goto err;
        }
    }
    for (uint32_t i = 0; i < nseg; i++) {
        uint64_t f[SEG_MIN_BYTES];
        struct meta_segment *g = &s->segs[i];

        if (get_all(&c, f, SEG_MIN_BYTES) != 0 || f[1] > UINT32_MAX)
            goto err;
        g->seq = f[0];
        g->state = (uint32_t)f[1];
        g->epoch = f[2];
        g->entries = f[3];
        g->records = f[4];
        g->bytes = f[5];
        g->first_txid = f[6];
        g->last_txid = f[7];
        g->created_ms = f[8];
        g->sealed_ms = f[9];
    }
    s->nseg = nseg;
    if (ver >= 2) {
        uint64_t f[LIMITS_FIELDS];
        struct dlog_limits *l = &s->cfg.limits;

        if (get_all(&c, f, LIMITS_FIELDS) != 0 || f[0] > UINT32_MAX || f[8] > UINT32_MAX)
            goto err;
        l->version = (uint32_t)f[0];
        l->records_per_sec = f[1];
        l->bytes_per_sec = f[2];
        l->soft_records_per_sec = f[3];
        l->soft_bytes_per_sec = f[4];
        l->burst_ms = f[5];
        l->max_wait_ms = f[6];
        l->quota_bytes = f[7];
        l->quota_policy = (uint32_t)f[8];
    }
    for (uint32_t i = 0; ver >= 3 && i < nseg; i++) {
        uint64_t place;
        if (cursor_get_uvarint(&c, &place) != 0 || place > UINT32_MAX)
            goto err;
        s->segs[i].place = (uint32_t)place;
    }
    if (c.len != 0) /* trailing bytes */
        goto err;
    return 0;

err:
    free(s->segs);
    memset(s, 0, sizeof *s);
    return rv;
}
