/*
 * The state machine of the metadata Raft group (DESIGN.md, "Cluster mode"):
 * streams, small keyed values and leases, held in memory, changed only by
 * applying commands (meta_cmd.h) in log order. No networking and no clock:
 * the result of a command depends only on the state and the command bytes,
 * so every replica that applied the same prefix of the log holds the same
 * state (DESIGN.md, invariant 7) and their snapshots are byte-identical.
 *
 * The semantics are those of the metadata store interface (meta/meta.h):
 * a failed command returns the code meta_mem.c returns for the same
 * operation and changes nothing; a successful one bumps the revision by
 * one. Streams and keys are kept sorted, by name and key in byte order.
 *
 * Not thread-safe: one thread (the Raft loop's) calls everything.
 */
#ifndef DLOG_NODE_META_FSM_H
#define DLOG_NODE_META_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/errmsg.h"
#include "meta/meta.h"
#include "node/meta_cmd.h"

struct meta_fsm;
struct raft_fsm;
struct raft_buffer;

/* A new, empty state (revision 0, next stream id 1) into *out; 0 or
 * DLOG_ENOMEM. Free it with meta_fsm_free. */
int meta_fsm_new(struct meta_fsm **out);
/* Frees fsm and everything it holds; NULL is ignored. Any struct raft
 * using it through meta_fsm_raft_init must be closed first. */
void meta_fsm_free(struct meta_fsm *fsm);

/* What applying one command did. Plain data: copy it freely. */
struct meta_fsm_result {
    int status;        /* 0 or a negative DLOG_E* code (the command's outcome) */
    int type;          /* enum meta_cmd_type, or 0 if the bytes did not decode */
    uint64_t revision; /* the state's revision after the command */
    /* On success: the new version of the stream or key (0 once removed).
     * On DLOG_ECONFLICT: the version stored. */
    uint64_t version;
    uint64_t stream_id; /* STREAM_CREATE: the id assigned */
    /* LEASE_ACQUIRE: the holder and expiry after the command (on success
     * the caller, on DLOG_ECONFLICT the one holding it; "" and 0 when the
     * key holds a value that is not a lease). LEASE_RELEASE: the holder on
     * DLOG_ECONFLICT. */
    char holder[META_LEASE_OWNER_MAX + 1];
    uint64_t expiry_ms;
    char errmsg[DLOG_ERRMSG_SIZE]; /* "" on success, else what went wrong */
};

/*
 * Applies the command in len bytes at p (read during the call only).
 *
 * Returns 0 when the command was applied, which includes every outcome a
 * replica must agree on: res->status is 0 or the DLOG_E* code the command
 * failed with (DLOG_EEXIST, DLOG_ENOTFOUND, DLOG_ECONFLICT, DLOG_EINVAL;
 * DLOG_ECORRUPT or DLOG_EPROTO for bytes that are not a command this code
 * knows), and a failed command changes nothing.
 *
 * Returns DLOG_ENOMEM (res->status too) when memory ran out: then the
 * command was NOT applied and the state is unchanged, so the caller must
 * apply the same command again before any other (libraft does: it retries
 * the entry on its next apply pass).
 */
int meta_fsm_apply(struct meta_fsm *fsm, const void *p, size_t len,
                   struct meta_fsm_result *res);

/*
 * Reads, the same as the dlog_meta_ops members of the same names. On
 * failure the message is in meta_fsm_errmsg(fsm) until the next call.
 */

/* Deep copy of the stream into *out (the caller clears it with
 * meta_stream_clear). DLOG_ENOTFOUND, DLOG_ENOMEM. */
int meta_fsm_get(struct meta_fsm *fsm, const char *name, struct meta_stream *out);
/* Names in byte order, NULL-terminated, into a malloc'd array the caller
 * frees with dlog_stream_list_free; DLOG_ENOMEM. */
int meta_fsm_list(struct meta_fsm *fsm, char ***names, size_t *count);
/* The value of key into *value (bytes_init'ed by the caller, who frees it;
 * its old content is replaced) and its version into *version (may be
 * NULL). DLOG_ENOTFOUND, DLOG_ENOMEM. */
int meta_fsm_kv_get(struct meta_fsm *fsm, const char *key, struct bytes *value,
                    uint64_t *version);
/* Every key starting with prefix ("" for all), in byte order, into an array
 * the caller frees with meta_kv_list_free (NULL when there are none). */
int meta_fsm_kv_list(struct meta_fsm *fsm, const char *prefix, struct meta_kv **items,
                     size_t *count);
/* The revision: 0 when new, +1 per successful command. */
uint64_t meta_fsm_revision(const struct meta_fsm *fsm);
/* The message of the last failed read; owned by fsm. */
const char *meta_fsm_errmsg(const struct meta_fsm *fsm);

/*
 * Leases are keys whose value is a lease record (holder, expiry). A lease
 * is held while expiry_ms > the now_ms of the command looking at it.
 * meta_fsm_lease_decode reads a value got from meta_fsm_kv_get: 0, or
 * DLOG_ECORRUPT if it is not a lease record. owner gets the holder,
 * NUL-terminated (META_LEASE_OWNER_MAX + 1 bytes).
 */
int meta_fsm_lease_decode(const void *p, size_t len, char *owner, uint64_t *expiry_ms);

/*
 * Snapshots: the whole state in one buffer. Encoding is deterministic:
 * two states are equal exactly when their snapshots are equal bytes.
 */

/* Appends the encoding of the state to out (out->len grows; restored on
 * failure); 0 or DLOG_ENOMEM. */
int meta_fsm_snapshot(const struct meta_fsm *fsm, struct bytes *out);
/* Replaces the whole state with the one encoded in len bytes at p (read
 * during the call only). 0; DLOG_ECORRUPT (torn, bad CRC, inconsistent),
 * DLOG_EPROTO (a format version this code does not know), DLOG_ENOMEM; on
 * failure the state is unchanged. */
int meta_fsm_restore(struct meta_fsm *fsm, const void *p, size_t len);

/*
 * libraft adapter (meta_fsm_raft.c). Fills *rf (version 2 of struct
 * raft_fsm) so that a struct raft drives fsm; rf and fsm must outlive the
 * raft instance (until its close callback). Buffer ownership:
 *
 * - apply: the entry's buffer stays libraft's. *result points at a struct
 *   meta_fsm_result inside fsm, valid only until the next apply: a
 *   raft_apply callback must copy what it needs. Followers never see it.
 *   An outcome (even a corrupt command) returns 0; only out-of-memory
 *   returns RAFT_NOMEM, and libraft then retries the same entry later.
 * - snapshot: the buffers are fsm's (malloc) until snapshot_finalize,
 *   which frees them; libraft only reads them in between.
 * - restore: on success fsm takes buf->base and releases it with
 *   raft_free; on failure (RAFT_CORRUPT, RAFT_NOMEM) libraft keeps it.
 */
void meta_fsm_raft_init(struct raft_fsm *rf, struct meta_fsm *fsm);
/* A copy of len bytes at p in memory from raft_malloc, as raft_apply wants
 * (it takes ownership when it returns 0; otherwise raft_free buf->base).
 * 0 or DLOG_ENOMEM. */
int meta_fsm_raft_buffer(const void *p, size_t len, struct raft_buffer *buf);

#endif
