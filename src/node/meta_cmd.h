/*
 * Commands of the metadata Raft group: what a leader proposes and every
 * replica's FSM applies (meta_fsm.h), in one compact binary encoding.
 *
 * Every command carries now_ms, the proposing leader's wall-clock time in
 * milliseconds, stamped once when the leader encodes it. Time rules (lease
 * expiry) read only that field, never the applying node's clock, so every
 * replica computes the same result (DESIGN.md, "Cluster mode").
 *
 * The encoders check only what the encoding needs (pointers present); the
 * rules of the store (names, key and value limits, versions) are checked
 * when the command is applied, so that a replica returns exactly the codes
 * the in-memory store (meta_mem.c) returns for the same operation.
 */
#ifndef DLOG_NODE_META_CMD_H
#define DLOG_NODE_META_CMD_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "meta/meta.h"

/* Command types; their values are part of the log format and never change. */
enum meta_cmd_type {
    META_CMD_STREAM_CREATE = 1,
    META_CMD_STREAM_UPDATE = 2,
    META_CMD_STREAM_REMOVE = 3,
    META_CMD_KV_PUT = 4,
    META_CMD_KV_REMOVE = 5,
    META_CMD_LEASE_ACQUIRE = 6,
    META_CMD_LEASE_RELEASE = 7,
};

/* The longest lease owner, in bytes (text without NUL). */
#define META_LEASE_OWNER_MAX 128

/*
 * Encoders. Each appends one command to out (out->len grows; earlier bytes
 * are kept) and returns 0, DLOG_EINVAL (a NULL pointer, or a stream record
 * meta_stream_encode refuses) or DLOG_ENOMEM; on failure out->len is
 * restored. Strings are read during the call only.
 */

/* Store s as a new stream; the applying FSM assigns its id and version 1. */
int meta_cmd_stream_create(struct bytes *out, uint64_t now_ms,
                           const struct meta_stream *s);
/* Replace the stream s->name if its stored version and id equal s's. */
int meta_cmd_stream_update(struct bytes *out, uint64_t now_ms,
                           const struct meta_stream *s);
/* Delete the stream if its stored version equals version (0: any). */
int meta_cmd_stream_remove(struct bytes *out, uint64_t now_ms, const char *name,
                           uint64_t version);
/* Compare-and-set key to len bytes at value (value may be NULL when len is
 * 0); version is the expected one (META_KV_CREATE, META_KV_ANY or stored). */
int meta_cmd_kv_put(struct bytes *out, uint64_t now_ms, const char *key,
                    const void *value, size_t len, uint64_t version);
/* Delete key if its version equals version (META_KV_ANY: any). */
int meta_cmd_kv_remove(struct bytes *out, uint64_t now_ms, const char *key,
                       uint64_t version);
/* Take or renew the lease key for owner until now_ms + ttl_ms. */
int meta_cmd_lease_acquire(struct bytes *out, uint64_t now_ms, const char *key,
                           const char *owner, uint64_t ttl_ms);
/* Give the lease key up, if owner holds it. */
int meta_cmd_lease_release(struct bytes *out, uint64_t now_ms, const char *key,
                           const char *owner);

/* A run of bytes inside a decoded command; not NUL-terminated. */
struct meta_cmd_slice {
    const uint8_t *p;
    size_t len;
};

/*
 * A decoded command. Every slice points into the bytes given to
 * meta_cmd_decode and is valid as long as they are; nothing is owned.
 */
struct meta_cmd {
    enum meta_cmd_type type;
    uint64_t now_ms;
    struct meta_cmd_slice stream; /* STREAM_CREATE, _UPDATE: meta_stream_encode bytes */
    struct meta_cmd_slice key;    /* stream name (STREAM_REMOVE), kv or lease key */
    struct meta_cmd_slice value;  /* KV_PUT */
    struct meta_cmd_slice owner;  /* LEASE_* */
    uint64_t version;             /* expected version: STREAM_REMOVE, KV_PUT, KV_REMOVE */
    uint64_t ttl_ms;              /* LEASE_ACQUIRE */
};

/*
 * Decodes len bytes at p into *cmd. 0; DLOG_ECORRUPT when the bytes are
 * torn, truncated, carry trailing bytes or fail their CRC; DLOG_EPROTO when
 * they are intact but of a format version or command type this code does
 * not know. On failure *cmd is zeroed. The embedded stream record is not
 * decoded here (see meta_stream_decode).
 */
int meta_cmd_decode(const void *p, size_t len, struct meta_cmd *cmd);

/* The name of a command type ("KV_PUT"), or "?"; static. */
const char *meta_cmd_type_name(int type);

#endif
