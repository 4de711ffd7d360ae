/*
 * kv_state — dlog-kv's replicated state: the keyspace in LMDB, the apply
 * callback that executes write commands (kv_cmd.h) against it, and the
 * snapshot/restore callbacks that stream its contents.
 *
 * On-disk mode of sm.h: every apply writes the key change AND the DLSN of
 * the record in the same LMDB transaction, and applied_dlsn reads that DLSN
 * back, so after a restart the framework replays only what LMDB lacks.
 *
 * Durability. The stream is the durable copy of every command, so LMDB need
 * not fsync each apply. By default the environment is opened MDB_NOSYNC |
 * MDB_WRITEMAP (a commit is a few memory writes, no system call) and the
 * server calls kv_state_sync every 100 ms: a killed process loses nothing
 * (committed pages are in the shared page cache), and after a machine
 * crash the last applies are simply replayed. If a machine crash leaves
 * the environment unreadable, kv_state_open moves it aside and starts
 * empty, and the framework rebuilds it from the shared snapshot and the
 * stream (tests/integration/kv-redis-test.sh destroys a state to check
 * this). sync_always = 1 makes every apply fsync instead, without
 * MDB_WRITEMAP.
 *
 * LMDB layout (environment DIR/state, three databases):
 *   kv    key -> u64 expire_at_ms (little endian; 0 = never) + value bytes
 *   ttl   u64 expire_at_ms (big endian) + key -> "" (keys with an expiry)
 *   meta  "applied" -> DLSN (u64 seg, u64 entry, u32 slot, little endian)
 *         "ident"   -> the stream name this state belongs to
 *         "restoring" -> present while a restore is half done
 *
 * Threads: apply, snapshot and restore run on the state machine's apply
 * thread; the kv_read_* functions run on one other thread (the server's
 * loop). LMDB gives readers a consistent view while apply commits.
 */
#ifndef KV_STATE_H
#define KV_STATE_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>
#include <dlog/sm.h>

/* LMDB's key limit is 511 bytes; the ttl index adds 8. */
#define KV_MAX_KEY 500
/* Redis's proto-max-bulk-len: no value grows beyond it (APPEND). */
#define KV_MAX_VALUE (512ULL * 1024 * 1024)

struct kv_state;

#define KV_STATE_OPTIONS_VERSION 1
struct kv_state_options {
    uint32_t version;  /* KV_STATE_OPTIONS_VERSION */
    const char *dir;   /* data directory; the environment is DIR/state */
    const char *ident; /* the stream name, checked against the stored one */
    int sync_always;   /* 1: fsync every apply (see above); default 0 */
    uint64_t map_size; /* LMDB map size (sparse); 0: 64 GiB */
};

/*
 * Opens (creating if needed) the state in opts->dir. On failure returns a
 * dlog_err and writes a message into errmsg (DLOG_ERRMSG_LEN bytes).
 * *recovered is set to 1 when an unreadable environment was moved aside.
 */
int kv_state_open(const struct kv_state_options *opts, struct kv_state **out,
                  int *recovered, char *errmsg);
/* Syncs and closes. The state machine using it must be closed first. */
void kv_state_close(struct kv_state *s);

/* The sm.h callbacks; their app argument is the struct kv_state. */
extern const struct dlog_sm_callbacks kv_state_callbacks;

/* Flushes LMDB to disk if anything was applied since the last call. Any
 * thread; blocking (fdatasync). 0 or a dlog_err. */
int kv_state_sync(struct kv_state *s);

/* Counters for INFO. Any thread. */
struct kv_state_stats {
    uint64_t applies;      /* records applied since open */
    uint64_t apply_errors; /* commands rejected deterministically */
    uint64_t restores;
    uint64_t snapshots;
};
void kv_state_stats(struct kv_state *s, struct kv_state_stats *out);

/* ---- reads (one thread at a time; the server's loop) ----
 *
 * kv_read_begin opens a read view; every pointer a kv_read_* call returns
 * points into LMDB's map and stays valid until kv_read_end. Keys whose
 * expiry is at or before now_ms are reported as missing.
 * (Each read view is one LMDB read transaction.)
 */
int kv_read_begin(struct kv_state *s);
void kv_read_end(struct kv_state *s);

/* 0 with *val and *len set, DLOG_ENOTFOUND, or another dlog_err. */
int kv_read_get(struct kv_state *s, uint64_t now_ms, const void *key, size_t klen,
                const void **val, size_t *len);
/* Keys stored, including expired ones not yet purged (like Redis). */
int kv_read_dbsize(struct kv_state *s, uint64_t *n);
/* Keys with an expiry. */
int kv_read_expires(struct kv_state *s, uint64_t *n);
/* The DLSN of the last applied record, as stored with the state. */
int kv_read_applied(struct kv_state *s, struct dlog_dlsn *out);
/* The earliest expiry stored (0 when no key has one). */
int kv_read_first_expiry(struct kv_state *s, uint64_t *out);

/*
 * Visits live keys in byte order, starting at the first key >= from (from
 * NULL: the first key), until fn returns non-zero (that value is returned)
 * or the keys end (0 returned). fn must not call other kv_read_* functions.
 */
typedef int (*kv_visit_fn)(void *arg, const void *key, size_t klen);
int kv_read_keys(struct kv_state *s, uint64_t now_ms, const void *from, size_t fromlen,
                 kv_visit_fn fn, void *arg);

#endif /* KV_STATE_H */
