/*
 * The entry: what one append stores, a batch of records written atomically.
 * This is the storage and replication format, shared by every segment store
 * (mem, lmdb, raft) and by the core's writer and reader.
 *
 * Layout (integers big-endian):
 *
 *   off size field
 *     0    2 magic 0x444C ("DL")
 *     2    1 format version (1)
 *     3    1 flags: bits 0-1 compression (enum dlog_compression),
 *                   ENTRY_F_FRAGMENT, ENTRY_F_CONT
 *     4    4 CRC-32C of bytes 8 .. end
 *     8    4 record count
 *    12    4 stored length of the records section (after compression)
 *    16    4 raw length of the records section (before compression)
 *    20    4 reserved, 0
 *    24    8 base txid (the txid of the first record)
 *    32    8 last txid
 *    40    . records section
 *
 * Each record in the (uncompressed) records section:
 *   uvarint flags (REC_F_*), uvarint txid - base txid, uvarint key length,
 *   uvarint payload length, [uvarint total length if REC_F_FRAG_FIRST],
 *   key bytes, payload bytes.
 *
 * A record larger than one entry is split into fragment entries, each with
 * ENTRY_F_FRAGMENT and a single record; the first carries REC_F_FRAG_FIRST
 * and the record's total length, the last REC_F_FRAG_LAST, the others (and
 * the last) ENTRY_F_CONT. Fragments of one record are appended atomically
 * and contiguously; readers reassemble them and drop an incomplete run.
 */
#ifndef DLOG_SEG_ENTRY_H
#define DLOG_SEG_ENTRY_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define ENTRY_MAGIC           0x444C
#define ENTRY_FORMAT          1
#define ENTRY_HDR_SIZE        40
#define ENTRY_F_COMPRESS_MASK 0x03
#define ENTRY_F_FRAGMENT      0x04
#define ENTRY_F_CONT          0x08

#define REC_F_FRAG_FIRST 0x01
#define REC_F_FRAG_LAST  0x02

/* Largest stored entry: a full records section plus header and slack. */
#define ENTRY_MAX_STORED (1024 * 1024 + 64 * 1024)

struct entry_hdr {
    uint8_t flags;
    uint32_t crc;
    uint32_t count;
    uint32_t stored_len;
    uint32_t raw_len;
    uint64_t base_txid;
    uint64_t last_txid;
};

/* Builds one entry. The records section grows in buf after a header gap. */
struct entry_builder {
    struct bytes buf;
    uint32_t count;
    uint64_t base_txid;
    uint64_t last_txid;
    uint8_t flags;
};

void entry_builder_init(struct entry_builder *b);
void entry_builder_free(struct entry_builder *b);
/* Empties the builder, keeping its memory. */
void entry_builder_reset(struct entry_builder *b);
/* Bytes the records section holds so far. */
static inline size_t entry_builder_raw(const struct entry_builder *b)
{
    return b->buf.len < ENTRY_HDR_SIZE ? 0 : b->buf.len - ENTRY_HDR_SIZE;
}
/* The encoded size a record adds (to decide whether it fits). */
size_t entry_record_size(size_t key_len, size_t len, uint32_t rflags);
/*
 * Appends a record. rflags are REC_F_*; total is the whole record's length
 * for REC_F_FRAG_FIRST. txid must be >= the first record's txid.
 */
int entry_builder_add(struct entry_builder *b, uint32_t rflags, uint64_t txid,
                      const void *key, size_t key_len, const void *payload, size_t len,
                      uint64_t total);
/*
 * Finishes the entry: compresses the records section when that helps,
 * writes the header and CRC. eflags are ENTRY_F_FRAGMENT/CONT. On success
 * *out points at the entry (inside the builder, or inside tmp when
 * compressed) and *outlen is its size; both stay valid until the builder or
 * tmp changes.
 */
int entry_builder_finish(struct entry_builder *b, int compression, uint8_t eflags,
                         struct bytes *tmp, const uint8_t **out, size_t *outlen);

/* Parses and sanity-checks the header (not the CRC). 0 or DLOG_ECORRUPT. */
int entry_parse_hdr(const void *p, size_t len, struct entry_hdr *h);
/* Checks header and CRC. 0 or DLOG_ECORRUPT. */
int entry_verify(const void *p, size_t len);
/* Rewrites the txids to base..base+(last-base) and the CRC (auto txids). */
void entry_set_base_txid(void *p, size_t len, uint64_t base);

struct entry_rec {
    uint32_t flags;
    uint64_t txid;
    const uint8_t *key;
    size_t key_len;
    const uint8_t *payload;
    size_t len;
    uint64_t total; /* REC_F_FRAG_FIRST only */
};

struct entry_iter {
    struct cursor c;
    struct entry_hdr h;
    uint32_t left;
};

/*
 * Verifies the entry at p (header and CRC) and prepares to iterate its
 * records. A compressed section is inflated into scratch, which must then
 * outlive the iteration. Returns 0, DLOG_ECORRUPT or DLOG_ENOMEM.
 */
int entry_iter_init(struct entry_iter *it, const void *p, size_t len,
                    struct bytes *scratch);
/* 1 and *r filled, 0 at the end, DLOG_ECORRUPT on a malformed record. */
int entry_iter_next(struct entry_iter *it, struct entry_rec *r);

#endif
