/*
 * dlog state-machine framework.
 *
 * An application registers apply, snapshot and restore callbacks; dlog
 * replays a stream (the state machine's replicated write-ahead log)
 * through them deterministically, in log order, exactly once per record
 * (DESIGN.md invariant 7). Every replica that opens the same stream with
 * the same callbacks holds the same state after applying the same prefix.
 *
 * Built on the public API only (dlog.h), so it runs unchanged on every
 * backend: "mem:", "file:DIR", and later "dlog://…".
 *
 * Threads: each open state machine has one apply thread. apply, snapshot,
 * restore and applied_dlsn run on it, one at a time, never concurrently
 * with each other. A proposal's completion callback runs on the apply
 * thread when the local replica applied the command; when the write itself
 * fails it runs on the writer's thread (the namespace loop's thread if the
 * namespace has a loop), and on dlog_sm_close it runs on the closing
 * thread. Callbacks must not block for long and must not call
 * dlog_sm_close, dlog_sm_propose_sync, dlog_sm_barrier or dlog_sm_snapshot
 * on their own state machine (those return DLOG_EBUSY from the apply
 * thread). Every other function may be called from any thread.
 *
 * Companion streams: "<stream>.snap" holds shared snapshots and
 * "<stream>.replicas" the replicas' snapshot reports (see auto_truncate);
 * both are created when first needed, so stream names used with a state
 * machine must leave room for the 9-byte suffix.
 */
#ifndef DLOG_SM_H
#define DLOG_SM_H

#include <dlog/dlog.h>

#ifdef __cplusplus
extern "C" {
#endif

struct dlog_sm;
struct dlog_snapshot_writer;
struct dlog_snapshot_reader;

/*
 * Streamed snapshot I/O: the state is never one buffer in memory. The
 * framework cuts what the application writes into chunks, each with a
 * CRC32C, and verifies every chunk before handing its bytes back.
 *
 * dlog_snapshot_write appends n bytes (0 or an error). dlog_snapshot_read
 * reads up to n bytes and returns how many (0 at the end) or an error
 * (DLOG_ECORRUPT when a checksum does not match). The writer and reader are
 * valid only during the snapshot or restore callback they were given to.
 */
int dlog_snapshot_write(struct dlog_snapshot_writer *w, const void *p, size_t n);
long dlog_snapshot_read(struct dlog_snapshot_reader *r, void *p, size_t n);
/* Reads exactly n bytes: 0, DLOG_EEOF when the snapshot ends first, or an error. */
int dlog_snapshot_read_full(struct dlog_snapshot_reader *r, void *p, size_t n);
/* The DLSN of the last record the snapshot being restored includes (for
 * on-disk mode: persist it with the restored state). */
struct dlog_dlsn dlog_snapshot_dlsn(const struct dlog_snapshot_reader *r);

#define DLOG_SM_CALLBACKS_VERSION 1
struct dlog_sm_callbacks {
    uint32_t version; /* DLOG_SM_CALLBACKS_VERSION */
    /*
     * Apply one command (rec->payload, rec->len) at rec->dlsn. rec is the
     * command only: the framework's envelope (client id, sequence) is
     * already removed. Append the result, if any, to *result, which starts
     * empty; the framework owns and frees it. Return 0 when applied — a
     * deterministic rejection of an invalid command is also 0, with the
     * rejection described in the result — or a negative dlog_err for a
     * fatal error: the replica then stops applying, fails its pending
     * proposals, reports the error (dlog_sm_error), and never skips the
     * record (a reopen applies it again). apply must be deterministic: the
     * same commands in the same order give the same state and results.
     */
    int (*apply)(void *app, const struct dlog_record *rec, struct dlog_buf *result);
    /* Write the whole state to w. May be NULL when snapshots are off. */
    int (*snapshot)(void *app, struct dlog_snapshot_writer *w);
    /* Replace the whole state with the one read from r. May be NULL when
     * snapshots are off. */
    int (*restore)(void *app, struct dlog_snapshot_reader *r);
    /*
     * On-disk mode (optional, may be NULL): the application persists its
     * state together with the DLSN of the last record applied, atomically
     * (for example in the same LMDB transaction as the state change), no
     * later than when apply returns. On open the framework asks for that
     * DLSN and replays from just after it instead of restoring a snapshot.
     * *out = DLOG_DLSN_HEAD for an empty state. Return 0 or a negative
     * dlog_err. In this mode local snapshots hold only the framework's own
     * state (the exactly-once table), and snapshot/restore are used only
     * for shared snapshots (to bootstrap an empty replica).
     */
    int (*applied_dlsn)(void *app, struct dlog_dlsn *out);
};

#define DLOG_SM_OPTIONS_VERSION 1
struct dlog_sm_options {
    uint32_t version; /* DLOG_SM_OPTIONS_VERSION */
    /*
     * This replica's name, unique among the stream's replicas and stable
     * across its restarts; used for truncation coordination. Default:
     * "<hostname>:<snapshot_dir's real path>". Only replicas with a
     * snapshot_dir register (hold back truncation); see auto_truncate.
     */
    const char *replica_id;
    /* Directory for local snapshots (created if missing; locked while the
     * state machine is open); NULL: none. */
    const char *snapshot_dir;
    /* Take a snapshot every N records or bytes applied (0: never). */
    uint64_t snapshot_every_records;
    uint64_t snapshot_every_bytes;
    /* Local snapshots kept (newest first); default 3. */
    int keep_snapshots;
    /* Also publish snapshots to the companion stream "<stream>.snap", so an
     * empty replica can bootstrap from it. */
    int shared_snapshots;
    /*
     * After each snapshot, truncate the stream below the oldest snapshot
     * every registered replica still keeps (1, default) or never (0). A
     * replica with a snapshot_dir registers when it opens and reports each
     * snapshot in "<stream>.replicas"; a registered replica without a
     * snapshot yet holds truncation back. While shared snapshots exist the
     * stream also keeps every record after the newest one.
     */
    int auto_truncate;
    /* Create the stream if it does not exist (default 1). */
    int create;
    /* Bytes of snapshot per record of "<stream>.snap" (0: 8 MiB); bigger
     * snapshots span several records. Capped by the companion stream's
     * max_record_bytes. */
    uint64_t shared_part_bytes;
};
void dlog_sm_options_init(struct dlog_sm_options *o);

/*
 * Opens a state machine on stream: restores (on-disk DLSN, newest valid
 * local snapshot, or newest valid shared snapshot, whichever is newest and
 * can be replayed from), replays the stream up to its current end, then
 * keeps applying new records as they arrive. Returns when the replay is
 * done. A snapshot that fails its checksum is skipped for an older one.
 * cb and app must outlive the state machine; opts may be NULL for defaults
 * and its strings are copied.
 *
 * Errors: DLOG_EINVAL, DLOG_ENAME, DLOG_ENOTFOUND (no stream and create is
 * 0), DLOG_EBUSY (snapshot_dir is used by another open state machine),
 * DLOG_ETRUNCATED (the stream is truncated past every usable snapshot),
 * DLOG_ECORRUPT, or the fatal error of an apply during the replay. The
 * reason is logged (component "sm").
 */
int dlog_sm_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_sm_callbacks *cb, void *app,
                 const struct dlog_sm_options *opts, struct dlog_sm **sm);
/* Stops the apply thread and frees the state machine. Pending proposals
 * and barriers complete with DLOG_ECLOSED. In on-disk mode with a
 * snapshot_dir, the framework's state is saved first. */
void dlog_sm_close(struct dlog_sm *sm);

/* ---- proposals ---- */

struct dlog_propose_req;
/*
 * status 0: the command was applied at req->dlsn and result/len is what
 * the local apply returned (valid only during the callback). Otherwise a
 * dlog_err and the command may or may not have been applied.
 */
typedef void (*dlog_propose_cb)(struct dlog_propose_req *req, int status,
                                const void *result, size_t len);
struct dlog_propose_req {
    void *data; /* the caller's */
    dlog_propose_cb cb;
    struct dlog_dlsn dlsn;
    /* private */
    struct dlog_propose_req *next_;
    uint64_t priv_[4];
};

/*
 * Proposes a command: writes it to the stream and completes (cb, exactly
 * once, unless this returns an error) when the local replica has applied
 * it. req must stay valid until then. The command is copied.
 *
 * client_id/seq (client_id 0: none) make it exactly-once. The framework
 * keeps, per client, the last sequence applied and its result (a part of
 * the replicated state, in every snapshot). A client numbers its commands
 * with increasing seq; a retry with the same pair is applied at most once
 * and gets the first result (req->dlsn is where it was first applied); a
 * pair below the client's last applied seq is not applied and completes
 * with DLOG_ECONFLICT. In on-disk mode, after a crash (not a clean close),
 * retries of commands applied since the last snapshot are still applied
 * at most once but complete with an empty result.
 */
int dlog_sm_propose(struct dlog_sm *sm, struct dlog_propose_req *req, uint64_t client_id,
                    uint64_t seq, const void *cmd, size_t len, dlog_propose_cb cb);
/* Blocking propose; *result (may be NULL) gets a copy of the result (its
 * len is reset first; the caller frees it with dlog_buf_free). */
int dlog_sm_propose_sync(struct dlog_sm *sm, uint64_t client_id, uint64_t seq,
                         const void *cmd, size_t len, struct dlog_buf *result);

/* ---- reads ---- */

/*
 * Read barrier: blocks until this replica has applied every record written
 * to the stream before the call (then a local read is linearizable), or
 * timeout_ms passes (DLOG_ETIMEDOUT; <0 waits forever). Returns the
 * replica's fatal error if it has stopped, DLOG_ECLOSED when closed.
 */
int dlog_sm_barrier(struct dlog_sm *sm, int timeout_ms);
/* The DLSN of the last record applied (DLOG_DLSN_HEAD if none). */
struct dlog_dlsn dlog_sm_applied(struct dlog_sm *sm);
/* Records given to apply since open (not counting duplicates). */
uint64_t dlog_sm_applied_count(struct dlog_sm *sm);

/* ---- snapshots and errors ---- */

/* Takes a snapshot now (blocking): local (snapshot_dir) and shared
 * (shared_snapshots), then reports it and truncates as auto_truncate says.
 * DLOG_EINVAL when the state machine has nowhere to put a snapshot. */
int dlog_sm_snapshot(struct dlog_sm *sm);
/* 0 while healthy; the fatal error that stopped the replica otherwise. */
int dlog_sm_error(struct dlog_sm *sm);
/* The fatal error in words, else the last failed call's message ("" if
 * none). Valid until the next call on sm. */
const char *dlog_sm_errmsg(struct dlog_sm *sm);

/*
 * Removes a replica that left for good from the stream's registry, so that
 * it no longer holds truncation back. The replica must not be open.
 */
int dlog_sm_forget(struct dlog_ns *ns, const char *stream, const char *replica_id);

#ifdef __cplusplus
}
#endif
#endif /* DLOG_SM_H */
