/*
 * Reference-counted buffers, growable byte vectors, bounds-checked cursors
 * and iovec helpers (see buf.h).
 */
#include "buf.h"

#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

/* The longest unsigned LEB128 encoding of a uint64_t: ceil(64 / 7) bytes. */
#define UVARINT_MAX_LEN 10

/* No object may exceed PTRDIFF_MAX bytes; malloc would fail anyway. */
#define OBJ_MAX ((size_t)PTRDIFF_MAX)

/* ------------------------------------------------------------------ rbuf */

struct rbuf *rbuf_new(size_t cap)
{
    struct rbuf *b;

    if (cap > OBJ_MAX - sizeof *b)
        return NULL;
    b = malloc(sizeof *b + cap);
    if (b == NULL)
        return NULL;
    b->len = 0;
    b->cap = cap;
    __atomic_store_n(&b->refs, 1, __ATOMIC_RELAXED);
    return b;
}

struct rbuf *rbuf_copy(const void *p, size_t len)
{
    struct rbuf *b = rbuf_new(len);

    if (b == NULL)
        return NULL;
    if (len > 0)
        memcpy(b->data, p, len);
    b->len = len;
    return b;
}

struct rbuf *rbuf_ref(struct rbuf *b)
{
    /* The caller holds a reference, so the count cannot reach 0 meanwhile:
     * no ordering is needed to take another one. */
    int old = __atomic_fetch_add(&b->refs, 1, __ATOMIC_RELAXED);
    assert(old > 0);
    (void)old;
    return b;
}

void rbuf_unref(struct rbuf *b)
{
    int left;

    if (b == NULL)
        return;
    /* Release: this thread's writes to the bytes happen before the free.
     * Acquire: the freeing thread sees every other thread's writes. */
    left = __atomic_sub_fetch(&b->refs, 1, __ATOMIC_ACQ_REL);
    assert(left >= 0);
    if (left == 0)
        free(b);
}

/* ----------------------------------------------------------------- bytes */

void bytes_init(struct bytes *b)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}

void bytes_free(struct bytes *b)
{
    free(b->p);
    bytes_init(b);
}

int bytes_reserve(struct bytes *b, size_t n)
{
    size_t want, cap;
    uint8_t *p;

    if (b->cap - b->len >= n)
        return 0;
    if (n > OBJ_MAX - b->len)
        return DLOG_ENOMEM;
    want = b->len + n;
    cap = b->cap < 64 ? 64 : b->cap;
    while (cap < want)
        cap = cap > OBJ_MAX / 2 ? want : cap * 2;
    p = realloc(b->p, cap);
    if (p == NULL)
        return DLOG_ENOMEM;
    b->p = p;
    b->cap = cap;
    return 0;
}

int bytes_append(struct bytes *b, const void *p, size_t n)
{
    int rv = bytes_reserve(b, n);

    if (rv != 0)
        return rv;
    if (n > 0)
        memcpy(b->p + b->len, p, n);
    b->len += n;
    return 0;
}

int bytes_put_u8(struct bytes *b, uint8_t v)
{
    return bytes_append(b, &v, 1);
}

int bytes_put_u32be(struct bytes *b, uint32_t v)
{
    uint8_t tmp[4];

    put_u32be(tmp, v);
    return bytes_append(b, tmp, sizeof tmp);
}

int bytes_put_u64be(struct bytes *b, uint64_t v)
{
    uint8_t tmp[8];

    put_u64be(tmp, v);
    return bytes_append(b, tmp, sizeof tmp);
}

/*
 * Unsigned LEB128: seven bits per byte, least significant group first; the
 * high bit of a byte is set when another byte follows.
 */
int bytes_put_uvarint(struct bytes *b, uint64_t v)
{
    uint8_t tmp[UVARINT_MAX_LEN];
    size_t n = 0;

    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    return bytes_append(b, tmp, n);
}

void bytes_reset(struct bytes *b)
{
    b->len = 0;
}

/* ---------------------------------------------------------------- cursor */

int cursor_get_u8(struct cursor *c, uint8_t *v)
{
    if (c->len < 1)
        return DLOG_EPROTO;
    *v = c->p[0];
    c->p += 1;
    c->len -= 1;
    return 0;
}

int cursor_get_u32be(struct cursor *c, uint32_t *v)
{
    if (c->len < 4)
        return DLOG_EPROTO;
    *v = get_u32be(c->p);
    c->p += 4;
    c->len -= 4;
    return 0;
}

int cursor_get_u64be(struct cursor *c, uint64_t *v)
{
    if (c->len < 8)
        return DLOG_EPROTO;
    *v = get_u64be(c->p);
    c->p += 8;
    c->len -= 8;
    return 0;
}

/*
 * Malformed: the input ends inside the varint, more than 10 bytes carry the
 * continuation bit, or the 10th byte holds more than the one bit left of a
 * uint64_t (9 * 7 = 63 bits come before it).
 */
int cursor_get_uvarint(struct cursor *c, uint64_t *v)
{
    uint64_t x = 0;

    for (size_t i = 0; i < UVARINT_MAX_LEN; i++) {
        uint8_t byte;

        if (i >= c->len)
            return DLOG_EPROTO;
        byte = c->p[i];
        if (i == UVARINT_MAX_LEN - 1 && byte > 1)
            return DLOG_EPROTO;
        x |= (uint64_t)(byte & 0x7f) << (7 * i);
        if ((byte & 0x80) == 0) {
            *v = x;
            c->p += i + 1;
            c->len -= i + 1;
            return 0;
        }
    }
    return DLOG_EPROTO; /* unreachable: the 10th byte is at most 1 */
}

int cursor_get_bytes(struct cursor *c, size_t n, const uint8_t **p)
{
    if (c->len < n)
        return DLOG_EPROTO;
    *p = c->p;
    c->p += n;
    c->len -= n;
    return 0;
}

/* ------------------------------------------------------------------- iov */

size_t iov_total(const struct iovec *iov, int n)
{
    size_t total = 0;

    for (int i = 0; i < n; i++)
        total += iov[i].iov_len;
    return total;
}

size_t iov_copy_out(const struct iovec *iov, int n, size_t off, void *dst, size_t len)
{
    uint8_t *out = dst;
    size_t copied = 0;

    for (int i = 0; i < n && copied < len; i++) {
        size_t l = iov[i].iov_len;
        size_t take;

        if (off >= l) {
            off -= l;
            continue;
        }
        take = l - off;
        if (take > len - copied)
            take = len - copied;
        memcpy(out + copied, (const uint8_t *)iov[i].iov_base + off, take);
        copied += take;
        off = 0;
    }
    return copied;
}

/* Advancing past the end consumes every iovec and returns cnt. */
int iov_advance(struct iovec *iov, int cnt, size_t n)
{
    int i = 0;

    while (i < cnt && n >= iov[i].iov_len) {
        n -= iov[i].iov_len;
        i++;
    }
    if (i < cnt && n > 0) {
        iov[i].iov_base = (uint8_t *)iov[i].iov_base + n;
        iov[i].iov_len -= n;
    }
    return i;
}

int bytes_init_rbuf(struct bytes *b, size_t n)
{
    bytes_init(b);
    if (bytes_reserve(b, sizeof(struct rbuf) + n) != 0)
        return DLOG_ENOMEM;
    b->len = sizeof(struct rbuf);
    return 0;
}

struct rbuf *rbuf_adopt(struct bytes *b)
{
    _Static_assert(offsetof(struct rbuf, data) == sizeof(struct rbuf), "rbuf layout");
    struct rbuf *r = (struct rbuf *)(void *)b->p;
    r->len = b->len - sizeof *r;
    r->cap = b->cap - sizeof *r;
    __atomic_store_n(&r->refs, 1, __ATOMIC_RELEASE);
    bytes_init(b);
    return r;
}
