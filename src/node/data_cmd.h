/*
 * The commands of a data group's state machine (node/data_fsm.h) and their
 * encoding: the bytes a proposer hands to raft_apply, which every replica
 * decodes and applies in log order.
 *
 * One command is one segment store call (seg/seg.h). Layout, integers
 * big-endian:
 *
 *   off size field
 *     0    1 codec version (DATA_CMD_VERSION)
 *     1    1 op (enum data_cmd_op)
 *     2    . the op's fields:
 *   OPEN    stream u64, seq u64, epoch u64, start_txid u64, created_ms u64
 *   APPEND  stream u64, seq u64, epoch u64, flags u32, n u32,
 *           then n times: length u32, entry bytes (seg/entry.h)
 *   APPEND_ONCE  stream u64, seq u64, epoch u64, flags u32, n u32,
 *           writer u64, append_seq u64, then the entries as APPEND: an
 *           append the FSM applies once however often it is proposed
 *           (data_fsm.h, "Appends applied once")
 *   FENCE   stream u64, seq u64, epoch u64
 *   SEAL    stream u64, seq u64, epoch u64
 *   REMOVE  stream u64, seq u64
 *
 * A command is exactly as long as its fields: trailing bytes, an unknown
 * version or op, or a length running past the end make it malformed. The
 * time a segment was created travels inside OPEN (created_ms, the
 * proposer's clock), so that applying a command never reads a clock.
 */
#ifndef DLOG_NODE_DATA_CMD_H
#define DLOG_NODE_DATA_CMD_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/buf.h"

struct raft_buffer;

#define DATA_CMD_VERSION 1

enum data_cmd_op {
    DATA_CMD_OPEN = 1,
    DATA_CMD_APPEND = 2,
    DATA_CMD_FENCE = 3,
    DATA_CMD_SEAL = 4,
    DATA_CMD_REMOVE = 5,
    DATA_CMD_APPEND_ONCE = 6,
};

struct data_cmd {
    int op; /* enum data_cmd_op */
    uint64_t stream;
    uint64_t seq;
    uint64_t epoch;      /* all but REMOVE */
    uint64_t start_txid; /* OPEN */
    uint64_t created_ms; /* OPEN */
    uint32_t flags;      /* APPEND: SEG_APPEND_* */
    uint32_t n;          /* APPEND: number of entries */
    uint64_t writer;     /* APPEND_ONCE: the appender (non-zero) */
    uint64_t append_seq; /* APPEND_ONCE: its sequence (non-zero) */
    /* APPEND, when encoding: the n entries, borrowed for the call. */
    const struct iovec *entries;
    /* APPEND, when decoded: the n (length, bytes) pairs, pointing into the
     * decoded buffer (valid as long as it is); walk them with
     * data_cmd_iter_init and data_cmd_iter_next. */
    const uint8_t *body;
    size_t body_len;
};

/*
 * The encoded size of c, or 0 when c cannot be encoded (unknown op, an
 * APPEND whose entries are missing or longer than UINT32_MAX bytes each).
 */
size_t data_cmd_size(const struct data_cmd *c);

/* Writes c into dst, which holds data_cmd_size(c) bytes (non-zero). */
void data_cmd_write(const struct data_cmd *c, uint8_t *dst);

/*
 * Encodes c into a buffer allocated with raft_malloc, ready for raft_apply
 * (which takes ownership on success; otherwise free it with raft_free).
 * Returns 0, DLOG_EINVAL or DLOG_ENOMEM.
 */
int data_cmd_encode(const struct data_cmd *c, struct raft_buffer *out);

/* Encodes c into b (appended; for tests and tools). 0, DLOG_EINVAL, DLOG_ENOMEM. */
int data_cmd_encode_bytes(const struct data_cmd *c, struct bytes *b);

/*
 * Decodes the len bytes at p into *c, checking every length. An APPEND's
 * body points into p. Returns 0 or DLOG_EPROTO (malformed).
 */
int data_cmd_decode(const void *p, size_t len, struct data_cmd *c);

/* Walks the entries of a decoded APPEND. */
struct data_cmd_iter {
    struct cursor c;
    uint32_t left;
};
void data_cmd_iter_init(struct data_cmd_iter *it, const struct data_cmd *c);
/* 1 and the next entry in *p / *len (pointing into the command), 0 at the end. */
int data_cmd_iter_next(struct data_cmd_iter *it, const uint8_t **p, size_t *len);

/* "OPEN", "APPEND", ... or "?" for an unknown op. */
const char *data_cmd_op_name(int op);

#endif
