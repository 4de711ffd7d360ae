/*
 * kv_cmd — the compact binary form of a dlog-kv write command, as it is
 * stored in the stream (the replicated state machine's log).
 *
 * The proposer turns a validated Redis command into a struct kv_cmd and
 * encodes it; every replica decodes the record and applies it. Everything
 * the apply needs is inside the record, including the proposer's clock
 * (now_ms) and absolute expiry times, so that every replica computes the
 * same result (DESIGN.md invariant 7): apply never reads a clock.
 *
 * Layout (all integers are unsigned LEB128 varints unless noted):
 *
 *   u8 version (1) | u8 op | u8 flags | now_ms | body
 *   SET      [expire_at_ms if KV_F_EXPIRE] key value
 *   GETSET   key value
 *   APPEND   key value
 *   INCRBY   delta (zigzag) key
 *   DEL      n key*n
 *   MSET     n (key value)*n
 *   FLUSHDB  -
 *   PURGE    -             (deletes keys whose expiry is <= now_ms)
 *   where key and value are: len bytes
 */
#ifndef KV_CMD_H
#define KV_CMD_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>

#define KV_CMD_VERSION 1

enum kv_opcode {
    KV_OP_SET = 1,
    KV_OP_GETSET = 2,
    KV_OP_APPEND = 3,
    KV_OP_INCRBY = 4,
    KV_OP_DEL = 5,
    KV_OP_MSET = 6,
    KV_OP_FLUSHDB = 7,
    KV_OP_PURGE = 8,
};

/* SET flags. */
#define KV_F_NX     0x01 /* only if the key does not exist */
#define KV_F_XX     0x02 /* only if the key exists */
#define KV_F_EXPIRE 0x04 /* expire_at_ms is set (EX / PX) */

/* One argument: bytes that belong to someone else (see kv_cmd_decode). */
struct kv_arg {
    const char *p;
    size_t len;
};

struct kv_cmd {
    int op;                /* enum kv_opcode */
    unsigned flags;        /* KV_F_* */
    uint64_t now_ms;       /* the proposer's wall clock, ms since the epoch */
    uint64_t expire_at_ms; /* with KV_F_EXPIRE: absolute expiry */
    int64_t delta;         /* INCRBY */
    size_t nargs;          /* keys (DEL), 2*pairs (MSET), 1 or 2 otherwise */
    struct kv_arg *args;   /* nargs entries */
};

/* Appends the encoding of c to out. 0 or DLOG_ENOMEM / DLOG_EINVAL. */
int kv_cmd_encode(const struct kv_cmd *c, struct dlog_buf *out);

/*
 * Decodes p[0..n) into c. c->args is allocated (free it with kv_cmd_free)
 * and its entries point into p, so p must outlive c. Returns 0, or
 * DLOG_EPROTO for a malformed or unknown command (c is then empty).
 */
int kv_cmd_decode(const void *p, size_t n, struct kv_cmd *c);
void kv_cmd_free(struct kv_cmd *c);

/* The wall clock in ms since the epoch (what proposers put in now_ms). */
uint64_t kv_now_ms(void);

#endif /* KV_CMD_H */
