#include "seg/entry.h"

#include <lz4.h>
#include <string.h>
#include <zstd.h>

#include <dlog/dlog.h>

#include "base/crc32c.h"

void entry_builder_init(struct entry_builder *b)
{
    bytes_init(&b->buf);
    entry_builder_reset(b);
}

void entry_builder_free(struct entry_builder *b)
{
    bytes_free(&b->buf);
}

void entry_builder_reset(struct entry_builder *b)
{
    bytes_reset(&b->buf);
    b->count = 0;
    b->base_txid = 0;
    b->last_txid = 0;
    b->flags = 0;
}

static size_t uvarint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

size_t entry_record_size(size_t key_len, size_t len, uint32_t rflags)
{
    /* flags + txid delta (at most 10) + lengths (+ total) + bytes */
    return 1 + 10 + uvarint_len(key_len) + uvarint_len(len) +
           ((rflags & REC_F_FRAG_FIRST) ? 10 : 0) + key_len + len;
}

int entry_builder_add(struct entry_builder *b, uint32_t rflags, uint64_t txid,
                      const void *key, size_t key_len, const void *payload, size_t len,
                      uint64_t total)
{
    int rv;
    if (b->buf.len == 0) {
        rv = bytes_reserve(&b->buf,
                           ENTRY_HDR_SIZE + entry_record_size(key_len, len, rflags));
        if (rv != 0)
            return rv;
        memset(b->buf.p, 0, ENTRY_HDR_SIZE);
        b->buf.len = ENTRY_HDR_SIZE;
        b->base_txid = txid;
    }
    if (txid < b->base_txid)
        return DLOG_ETXID;
    rv = bytes_reserve(&b->buf, entry_record_size(key_len, len, rflags));
    if (rv != 0)
        return rv;
    bytes_put_uvarint(&b->buf, rflags);
    bytes_put_uvarint(&b->buf, txid - b->base_txid);
    bytes_put_uvarint(&b->buf, key_len);
    bytes_put_uvarint(&b->buf, len);
    if (rflags & REC_F_FRAG_FIRST)
        bytes_put_uvarint(&b->buf, total);
    if (key_len > 0)
        bytes_append(&b->buf, key, key_len);
    if (len > 0)
        bytes_append(&b->buf, payload, len);
    b->count++;
    if (txid > b->last_txid)
        b->last_txid = txid;
    return 0;
}

static void write_hdr(uint8_t *p, uint8_t flags, uint32_t count, uint32_t stored,
                      uint32_t raw, uint64_t base, uint64_t last)
{
    p[0] = (uint8_t)(ENTRY_MAGIC >> 8);
    p[1] = (uint8_t)(ENTRY_MAGIC & 0xff);
    p[2] = ENTRY_FORMAT;
    p[3] = flags;
    put_u32be(p + 8, count);
    put_u32be(p + 12, stored);
    put_u32be(p + 16, raw);
    put_u32be(p + 20, 0);
    put_u64be(p + 24, base);
    put_u64be(p + 32, last);
    put_u32be(p + 4, crc32c(p + 8, (size_t)ENTRY_HDR_SIZE - 8 + stored));
}

/* Compress src into dst (after a header gap); returns stored size or 0. */
static size_t compress_into(int compression, const uint8_t *src, size_t n,
                            struct bytes *dst)
{
    size_t bound = compression == DLOG_COMPRESS_LZ4 ? (size_t)LZ4_compressBound((int)n)
                                                    : ZSTD_compressBound(n);
    bytes_reset(dst);
    if (bytes_reserve(dst, ENTRY_HDR_SIZE + bound) != 0)
        return 0;
    uint8_t *out = dst->p + ENTRY_HDR_SIZE;
    size_t got;
    if (compression == DLOG_COMPRESS_LZ4) {
        int r = LZ4_compress_default((const char *)src, (char *)out, (int)n, (int)bound);
        got = r > 0 ? (size_t)r : 0;
    } else {
        size_t r = ZSTD_compress(out, bound, src, n, 1);
        got = ZSTD_isError(r) ? 0 : r;
    }
    if (got == 0 || got >= n)
        return 0;
    dst->len = ENTRY_HDR_SIZE + got;
    return got;
}

int entry_builder_finish(struct entry_builder *b, int compression, uint8_t eflags,
                         struct bytes *tmp, const uint8_t **out, size_t *outlen)
{
    if (b->count == 0)
        return DLOG_EINVAL;
    size_t raw = entry_builder_raw(b);
    if (compression != DLOG_COMPRESS_NONE && tmp != NULL && raw >= 256) {
        size_t stored = compress_into(compression, b->buf.p + ENTRY_HDR_SIZE, raw, tmp);
        if (stored > 0) {
            write_hdr(tmp->p, (uint8_t)(eflags | (compression & ENTRY_F_COMPRESS_MASK)),
                      b->count, (uint32_t)stored, (uint32_t)raw, b->base_txid,
                      b->last_txid);
            *out = tmp->p;
            *outlen = tmp->len;
            return 0;
        }
    }
    write_hdr(b->buf.p, eflags, b->count, (uint32_t)raw, (uint32_t)raw, b->base_txid,
              b->last_txid);
    *out = b->buf.p;
    *outlen = b->buf.len;
    return 0;
}

int entry_parse_hdr(const void *p, size_t len, struct entry_hdr *h)
{
    const uint8_t *q = p;
    if (len < ENTRY_HDR_SIZE)
        return DLOG_ECORRUPT;
    if (((uint32_t)q[0] << 8 | q[1]) != ENTRY_MAGIC || q[2] != ENTRY_FORMAT)
        return DLOG_ECORRUPT;
    h->flags = q[3];
    h->crc = get_u32be(q + 4);
    h->count = get_u32be(q + 8);
    h->stored_len = get_u32be(q + 12);
    h->raw_len = get_u32be(q + 16);
    h->base_txid = get_u64be(q + 24);
    h->last_txid = get_u64be(q + 32);
    if ((size_t)h->stored_len != len - ENTRY_HDR_SIZE || h->count == 0 ||
        (h->flags & ENTRY_F_COMPRESS_MASK) > DLOG_COMPRESS_ZSTD ||
        h->raw_len > 64u * 1024 * 1024 || h->last_txid < h->base_txid)
        return DLOG_ECORRUPT;
    return 0;
}

int entry_verify(const void *p, size_t len)
{
    struct entry_hdr h;
    int rv = entry_parse_hdr(p, len, &h);
    if (rv != 0)
        return rv;
    if (crc32c((const uint8_t *)p + 8, len - 8) != h.crc)
        return DLOG_ECORRUPT;
    return 0;
}

void entry_set_base_txid(void *p, size_t len, uint64_t base)
{
    uint8_t *q = p;
    uint64_t old_base = get_u64be(q + 24), old_last = get_u64be(q + 32);
    put_u64be(q + 24, base);
    put_u64be(q + 32, base + (old_last - old_base));
    put_u32be(q + 4, crc32c(q + 8, len - 8));
}

int entry_iter_init(struct entry_iter *it, const void *p, size_t len,
                    struct bytes *scratch)
{
    int rv = entry_verify(p, len);
    if (rv != 0)
        return rv;
    entry_parse_hdr(p, len, &it->h);
    it->left = it->h.count;
    const uint8_t *sec = (const uint8_t *)p + ENTRY_HDR_SIZE;
    int comp = it->h.flags & ENTRY_F_COMPRESS_MASK;
    if (comp == DLOG_COMPRESS_NONE) {
        if (it->h.raw_len != it->h.stored_len)
            return DLOG_ECORRUPT;
        it->c.p = sec;
        it->c.len = it->h.stored_len;
        return 0;
    }
    bytes_reset(scratch);
    if (bytes_reserve(scratch, it->h.raw_len) != 0)
        return DLOG_ENOMEM;
    size_t got;
    if (comp == DLOG_COMPRESS_LZ4) {
        int r = LZ4_decompress_safe((const char *)sec, (char *)scratch->p,
                                    (int)it->h.stored_len, (int)it->h.raw_len);
        got = r < 0 ? (size_t)-1 : (size_t)r;
    } else {
        size_t r = ZSTD_decompress(scratch->p, it->h.raw_len, sec, it->h.stored_len);
        got = ZSTD_isError(r) ? (size_t)-1 : r;
    }
    if (got != it->h.raw_len)
        return DLOG_ECORRUPT;
    scratch->len = got;
    it->c.p = scratch->p;
    it->c.len = got;
    return 0;
}

int entry_iter_next(struct entry_iter *it, struct entry_rec *r)
{
    uint64_t flags, delta, klen, plen;
    const uint8_t *kp, *pp;
    if (it->left == 0)
        return it->c.len == 0 ? 0 : DLOG_ECORRUPT;
    if (cursor_get_uvarint(&it->c, &flags) || cursor_get_uvarint(&it->c, &delta) ||
        cursor_get_uvarint(&it->c, &klen) || cursor_get_uvarint(&it->c, &plen))
        return DLOG_ECORRUPT;
    r->total = 0;
    if ((flags & REC_F_FRAG_FIRST) && cursor_get_uvarint(&it->c, &r->total))
        return DLOG_ECORRUPT;
    if (klen > it->c.len || cursor_get_bytes(&it->c, (size_t)klen, &kp) ||
        cursor_get_bytes(&it->c, (size_t)plen, &pp))
        return DLOG_ECORRUPT;
    if (delta > it->h.last_txid - it->h.base_txid)
        return DLOG_ECORRUPT;
    r->flags = (uint32_t)flags;
    r->txid = it->h.base_txid + delta;
    r->key = kp;
    r->key_len = (size_t)klen;
    r->payload = pp;
    r->len = (size_t)plen;
    it->left--;
    return 1;
}
