/*
 * Private to src/node/meta_fsm*.c: the layout of the metadata FSM's state
 * and the helpers its files share.
 */
#ifndef DLOG_NODE_META_FSM_INT_H
#define DLOG_NODE_META_FSM_INT_H

#include <stddef.h>
#include <stdint.h>

#include "node/meta_cmd.h"
#include "node/meta_fsm.h"

/* One key: key is malloc'd and NUL-terminated (key_len bytes before the
 * NUL, none of them NUL); value is malloc'd (NULL when len is 0). */
struct fsm_kv {
    char *key;
    size_t key_len;
    uint8_t *value;
    size_t len;
    uint64_t version;
};

/* Everything a snapshot holds; swapped whole by a restore. */
struct fsm_state {
    struct meta_stream **streams; /* sorted by name; each malloc'd, owned */
    size_t nstreams, cap_streams;
    struct fsm_kv *kv; /* sorted by key */
    size_t nkv, cap_kv;
    uint64_t next_stream_id; /* never reused, starts at 1 */
    uint64_t revision;
};

struct meta_fsm {
    struct fsm_state st;
    struct meta_fsm_result last; /* the raft adapter's result slot */
    char errmsg[DLOG_ERRMSG_SIZE];
};

/* Frees everything st holds and empties it (next id 1, revision 0). */
void fsm_state_clear(struct fsm_state *st);

/*
 * Tables (meta_fsm.c). Lookups take a byte run (from a command or a C
 * string), compared in unsigned byte order, shorter first on a tie.
 */

/* Index of name, or where it would go; *found says which. */
size_t fsm_stream_find(const struct fsm_state *st, const uint8_t *name, size_t len,
                       int *found);
/* Room for one more stream; 0 or DLOG_ENOMEM. */
int fsm_stream_reserve(struct fsm_state *st);
/* Puts s (owned from now on) at index i; room must be reserved. */
void fsm_stream_insert(struct fsm_state *st, size_t i, struct meta_stream *s);
/* Frees and takes out the stream at index i. */
void fsm_stream_erase(struct fsm_state *st, size_t i);
void fsm_stream_free(struct meta_stream *s);

size_t fsm_kv_find(const struct fsm_state *st, const uint8_t *key, size_t len,
                   int *found);
int fsm_kv_reserve(struct fsm_state *st);
/* Puts *e (its memory owned from now on) at index i; room must be reserved. */
void fsm_kv_insert(struct fsm_state *st, size_t i, const struct fsm_kv *e);
void fsm_kv_erase(struct fsm_state *st, size_t i);

/* 1 if a stream name of len bytes at p is valid: 1..DLOG_STREAM_NAME_MAX
 * bytes, no NUL. */
int fsm_name_ok(const uint8_t *p, size_t len);
/* 1 if a key is valid: 1..META_KEY_MAX bytes, no NUL. */
int fsm_key_ok(const uint8_t *p, size_t len);

/*
 * Command handlers (meta_fsm_stream.c, meta_fsm_kv.c, meta_fsm_lease.c).
 * Each fills res (status, outputs, errmsg) and returns res->status; on
 * success the state has changed (the caller bumps the revision), on any
 * failure it has not. DLOG_ENOMEM means "not applied", never an outcome.
 */
int fsm_apply_stream_create(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res);
int fsm_apply_stream_update(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res);
int fsm_apply_stream_remove(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res);
int fsm_apply_kv_put(struct fsm_state *st, const struct meta_cmd *cmd,
                     struct meta_fsm_result *res);
int fsm_apply_kv_remove(struct fsm_state *st, const struct meta_cmd *cmd,
                        struct meta_fsm_result *res);
int fsm_apply_lease_acquire(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res);
int fsm_apply_lease_release(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res);

/*
 * Stores value (len bytes) at key with the given version: replaces the
 * value of the entry at index i when found, else inserts a new entry there.
 * 0 or DLOG_ENOMEM (then nothing changed).
 */
int fsm_kv_store(struct fsm_state *st, size_t i, int found,
                 const struct meta_cmd_slice *key, const void *value, size_t len,
                 uint64_t version);

/* Sets res->status and res->errmsg and returns code. */
int fsm_fail(struct meta_fsm_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* printf arguments for "%.*s" showing a byte run of a command, cut at
 * DLOG_STREAM_NAME_MAX bytes (and at a NUL). */
#define SLICE_ARG(s)                                                                     \
    (int)((s).len < DLOG_STREAM_NAME_MAX ? (s).len : DLOG_STREAM_NAME_MAX),              \
        (const char *)((s).p != NULL ? (s).p : (const uint8_t *)"")

#endif
