/*
 * Reference-counted byte buffers and iovec helpers.
 *
 * A struct rbuf is one heap allocation holding a header and `cap` bytes.
 * rbuf_new returns it with one reference; rbuf_ref adds one; rbuf_unref
 * drops one and frees the buffer when none remain. References may be
 * taken and dropped from any thread (atomic counter). The bytes are not
 * protected: the owner writes them before sharing, and shared buffers are
 * treated as read-only.
 *
 * struct bytes is a growable, singly-owned byte vector used to build
 * encodings (entries, frames); bytes_free releases it.
 */
#ifndef DLOG_BASE_BUF_H
#define DLOG_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct rbuf {
    int refs;       /* atomic */
    size_t len;     /* bytes in use */
    size_t cap;     /* bytes allocated after the header */
    uint8_t data[]; /* cap bytes */
};

/* A new buffer of cap bytes (len 0), one reference; NULL on out of memory. */
struct rbuf *rbuf_new(size_t cap);
/* A new buffer holding a copy of len bytes at p; NULL on out of memory. */
struct rbuf *rbuf_copy(const void *p, size_t len);
struct rbuf *rbuf_ref(struct rbuf *b);

void rbuf_unref(struct rbuf *b); /* NULL is ignored */

struct bytes {
    uint8_t *p;
    size_t len;
    size_t cap;
};

void bytes_init(struct bytes *b);
void bytes_free(struct bytes *b);
/* Ensure room for n more bytes; 0 or DLOG_ENOMEM. */
int bytes_reserve(struct bytes *b, size_t n);
int bytes_append(struct bytes *b, const void *p, size_t n);
int bytes_put_u8(struct bytes *b, uint8_t v);
int bytes_put_u32be(struct bytes *b, uint32_t v);
int bytes_put_u64be(struct bytes *b, uint64_t v);
/* Unsigned LEB128 varint. */
int bytes_put_uvarint(struct bytes *b, uint64_t v);
void bytes_reset(struct bytes *b); /* len = 0, keeps memory */

/*
 * Building an rbuf in place: bytes_init_rbuf(b, n) empties b and leaves room
 * for an rbuf header in front, with space for n bytes after it; append the
 * content with the bytes_* functions; rbuf_adopt(b) then turns b's memory
 * into an rbuf holding that content (one reference, no copy) and resets b.
 */
int bytes_init_rbuf(struct bytes *b, size_t n);
struct rbuf *rbuf_adopt(struct bytes *b);

/* Big-endian load/store helpers. */
static inline void put_u32be(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}
static inline uint32_t get_u32be(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) |
           (uint32_t)p[3];
}
static inline void put_u64be(uint8_t *p, uint64_t v)
{
    put_u32be(p, (uint32_t)(v >> 32));
    put_u32be(p + 4, (uint32_t)v);
}
static inline uint64_t get_u64be(const uint8_t *p)
{
    return ((uint64_t)get_u32be(p) << 32) | get_u32be(p + 4);
}

/*
 * A bounds-checked reader over a byte range. Every get_* returns 0, or
 * DLOG_EPROTO when the range is too short or a varint is malformed, and
 * then leaves the cursor unchanged.
 */
struct cursor {
    const uint8_t *p;
    size_t len; /* bytes left */
};
int cursor_get_u8(struct cursor *c, uint8_t *v);
int cursor_get_u32be(struct cursor *c, uint32_t *v);
int cursor_get_u64be(struct cursor *c, uint64_t *v);
int cursor_get_uvarint(struct cursor *c, uint64_t *v);
/* Point *p at the next n bytes (no copy). */
int cursor_get_bytes(struct cursor *c, size_t n, const uint8_t **p);

/* Total length of an iovec array. */
size_t iov_total(const struct iovec *iov, int n);
/*
 * Copy up to len bytes starting at byte offset off of the iovec array into
 * dst; returns the number copied.
 */
size_t iov_copy_out(const struct iovec *iov, int n, size_t off, void *dst, size_t len);
/*
 * Advance the array by n bytes in place: consumed iovecs are skipped and a
 * partly consumed one is adjusted. Returns the new start index into iov.
 */
int iov_advance(struct iovec *iov, int cnt, size_t n);

#endif
