/*
 * The state machine of a data group (DESIGN.md, "Cluster mode"): the
 * deterministic core that every replica of a Raft data group runs, free of
 * networking so that it can be tested on raft/fixture.h.
 *
 * State. Everything lives in one LMDB environment (cfg.dir), never in
 * memory:
 *   "entries"  (stream u64be, seq u64be, entry u64be) -> entry bytes
 *   "segs"     (stream u64be, seq u64be) -> struct seg_info, 10 x u64be
 *   "meta"     "state" -> struct data_fsm_state (the last applied Raft
 *              index, a chained digest of every command applied, counts)
 *              "xfer"  -> the state being loaded, while a transfer from a
 *              peer is under way (see data_fsm_load_begin)
 * The effects of a command and the new applied index are written in the
 * same LMDB transaction. A command whose index is at or below the stored
 * applied index is skipped, so after a restart libraft may re-feed the
 * commands that follow its last snapshot and the state is unchanged.
 *
 * Commands (node/data_cmd.h) are the segment store calls of seg/seg.h, with
 * exactly their semantics and error codes: OPEN (a no-op when the segment
 * exists), APPEND (all or nothing; DLOG_ENOTFOUND, DLOG_ESEALED,
 * DLOG_EFENCED, DLOG_EINVAL for no entries, DLOG_ECORRUPT for a malformed
 * entry header, DLOG_ETXID), FENCE (raises, never lowers; DLOG_ENOTFOUND),
 * SEAL (idempotent; DLOG_EFENCED below the fence, DLOG_ENOTFOUND), REMOVE
 * (idempotent). A command's status is part of the replicated result: it is
 * the same on every replica, is folded into the digest, and the applied
 * index advances whatever it is. Malformed command bytes give DLOG_EPROTO
 * and change nothing else.
 *
 * Determinism: applying reads no clock and no randomness (a segment's
 * created_ms comes inside OPEN). Local failures are not results: when LMDB
 * itself fails (DLOG_EIO, DLOG_ENOSPC, DLOG_ENOMEM) the transaction is
 * aborted, data_fsm_apply returns the error and the command is not applied;
 * libraft retries it later or takes the replica out of service. A replica
 * never records a different outcome from its peers.
 *
 * Durability: the Raft log is the durable copy of every command, so LMDB is
 * opened with MDB_NOMETASYNC (data pages are fsync'd at each commit, the
 * meta page is not: a power loss can undo at most the last committed
 * transaction, never corrupt the environment). MDB_NOSYNC is never used.
 * Before a Raft snapshot is handed to libraft the environment is fully
 * synced (mdb_env_sync), so LMDB is always at least as new as the newest
 * snapshot libraft has stored; the commands after it are in the Raft log.
 * With cfg.write_behind, commits happen on a writer thread, many commands
 * to one commit, behind apply (data_fsm_wb.c); a crash loses only queued
 * commands, which are after LMDB's applied index in the Raft log.
 *
 * Snapshots are small. libraft keeps its log in memory until a snapshot and
 * moves snapshots around as whole buffers, so the Raft snapshot holds no
 * data: only DATA_FSM_SNAP_SIZE bytes of struct data_fsm_state (format
 * version, applied index, digest, counts). A replica that restores a
 * snapshot ahead of its LMDB fetches the contents out of band from a peer
 * through cfg.fetch, in chunks (see "state transfer" below); with state
 * this cheap the snapshot threshold can be low.
 *
 * Threads: apply, restore, behind, catch_up, the load functions and the
 * raft adapter run on one thread at a time (the group's Raft loop; a load
 * may run on another thread while f is behind, see data_fsm_fetch_fn).
 * read, info, state, dump, the dumpers and the notify functions may run on
 * any thread at any time: they use LMDB read transactions (MVCC), so they
 * see exactly the state at some applied index, never a half-applied
 * command. (errmsg then holds the words of whichever call failed last.)
 */
#ifndef DLOG_NODE_DATA_FSM_H
#define DLOG_NODE_DATA_FSM_H

#include <stddef.h>
#include <stdint.h>

#include "base/errmsg.h"
#include "seg/seg.h"

struct raft;
struct raft_fsm;
struct data_fsm;

/*
 * What identifies a data FSM's contents. Two replicas with equal `applied`
 * and `hash` hold the same entries and segment states: the hash chains, in
 * log order, the Raft index, a CRC-32C of the bytes and the status of every
 * command applied (and is copied along when contents are fetched).
 */
struct data_fsm_state {
    uint64_t applied;  /* last applied Raft index (0: none) */
    uint64_t hash;     /* chained digest of every applied command */
    uint64_t segments; /* segments stored */
    uint64_t entries;  /* entries stored, over all segments */
    uint64_t bytes;    /* bytes of those entries */
};

/* The Raft snapshot: magic, format, the five fields, CRC-32C, 64 bytes. */
#define DATA_FSM_SNAP_SIZE   64
#define DATA_FSM_SNAP_MAGIC  0x44465334u /* "DFS4" */
#define DATA_FSM_SNAP_FORMAT 1
void data_fsm_snap_encode(const struct data_fsm_state *st,
                          uint8_t out[DATA_FSM_SNAP_SIZE]);
/* 0, or DLOG_ECORRUPT when p is not a snapshot of this format. */
int data_fsm_snap_decode(const void *p, size_t len, struct data_fsm_state *st);

/*
 * Bring f's LMDB up to (at least) the state `want`, from a peer, with the
 * load functions below fed by a peer's dump. Called on the applying thread
 * by the restore path, and while f is still behind again before each apply
 * and by data_fsm_catch_up. Return 0 once f holds a state at or past
 * want (f checks), or a DLOG_E* code (f stays behind and calls again
 * later: fail fast, the Raft loop waits meanwhile).
 *
 * A fetch may be asynchronous: it starts the transfer on another thread
 * and returns DLOG_EUNAVAILABLE while it runs; a later call (an apply, the
 * node's timer) returns 0 once the transfer has committed. While f is
 * behind, that thread may call the load functions: the applying thread
 * then applies nothing (every apply asks fetch first) and touches none of
 * what the load writes.
 *
 * The node's implementation (node_xfer.c) asks a peer that has applied at
 * least want->applied -- the leader first, then the other replicas -- for
 * its contents in chunks (SEG_DUMP, docs/protocol.md), all from one LMDB
 * read transaction pinned on the peer for the transfer (a
 * data_fsm_dumper), and loads each chunk as it arrives: memory stays
 * bounded by a chunk whatever the size of the contents. The peer may be
 * ahead of want (its applies go on); that is fine: commands up to its
 * applied index are committed, and they are skipped when libraft feeds them.
 */
typedef int (*data_fsm_fetch_fn)(void *arg, struct data_fsm *f,
                                 const struct data_fsm_state *want);

/* Called once LMDB holds the commands up to index (after each applied,
 * not skipped, command; with write-behind after each commit, on the
 * writer's thread) and after a load. */
typedef void (*data_fsm_notify_fn)(void *arg, uint64_t index);

#define DATA_FSM_CONFIG_VERSION 2
struct data_fsm_config {
    uint32_t version;  /* DATA_FSM_CONFIG_VERSION */
    const char *dir;   /* LMDB directory; must exist; copied */
    uint64_t map_size; /* LMDB map size; 0: 1 TiB */
    data_fsm_fetch_fn fetch;
    void *fetch_arg;
    data_fsm_notify_fn notify;
    void *notify_arg;
    /* 1: LMDB is written behind the applying thread (data_fsm_wb.c): apply
     * decides results from the segment records and returns; a writer
     * thread commits many commands per transaction. Reads, notify and
     * data_fsm_state then trail apply by a commit (data_fsm_sync waits).
     * 0: each command is committed as it is applied. */
    int write_behind;
};

/*
 * Opens (creating if empty) the FSM stored in cfg->dir; cfg is copied.
 * Returns 0 and *out, or DLOG_EINVAL, DLOG_ENOMEM, DLOG_EIO, DLOG_ECORRUPT
 * with words in errmsg (DLOG_ERRMSG_SIZE bytes). One FSM per directory per
 * process (an LMDB rule). A directory left by an interrupted transfer (its
 * marker, see data_fsm_load_begin) opens behind: nothing is applied until
 * a fetch has loaded a whole state again.
 */
int data_fsm_open(const struct data_fsm_config *cfg, struct data_fsm **out, char *errmsg);
/* Closes f; nothing may use it any more, nor the raft_fsm made from it. */
void data_fsm_close(struct data_fsm *f);
/* Words about f's last failure; valid until f's next call. */
const char *data_fsm_errmsg(const struct data_fsm *f);

/* What applying one command did. */
struct data_fsm_result {
    uint64_t index;       /* its Raft index */
    int skipped;          /* 1: at or below the applied index, not applied again */
    int op;               /* enum data_cmd_op, 0 if malformed */
    int status;           /* 0 or the DLOG_E* code of the segment store call */
    uint64_t first_entry; /* APPEND: id given to the first entry */
    uint64_t first_txid;  /* APPEND: txid of its first record (after auto txids) */
    struct seg_info info; /* the segment afterwards, when it exists */
    char errmsg[DLOG_ERRMSG_SIZE]; /* words for a non-zero status */
};

/*
 * Applies the command cmd[0..len) at Raft index `index` and fills *res.
 * Returns 0 when the command was applied (whatever res->status) or skipped;
 * otherwise a local failure (DLOG_EIO, DLOG_ENOSPC, DLOG_ENOMEM, or
 * DLOG_EUNAVAILABLE while f is behind a restored snapshot and cfg.fetch
 * still fails) and nothing changed. cmd is only read during the call.
 */
int data_fsm_apply(struct data_fsm *f, uint64_t index, const void *cmd, size_t len,
                   struct data_fsm_result *res);

/*
 * Reconciles f with a snapshot's state: nothing to do when LMDB is at or
 * ahead of it (the usual case after a restart); otherwise (behind, or at the
 * same index with another digest) f is marked behind and cfg.fetch is
 * called. Returns 0 when f is now at or ahead of `snap`, or the fetch's
 * error: f then stays behind and apply calls fetch again. Once a fetch has
 * brought f up to date, cfg.notify is called with the new applied index
 * (on the applying thread).
 */
int data_fsm_restore(struct data_fsm *f, const struct data_fsm_state *snap);
/* 1 while f is behind a restored snapshot (fetch pending), else 0. */
int data_fsm_behind(const struct data_fsm *f);
/*
 * While behind, calls cfg.fetch again; 0 when f is not (or no longer)
 * behind, else the fetch's error. libraft calls apply only when its commit
 * index moves, so in a quiet group nothing else retries: the node calls
 * this on a timer, on the applying thread, while data_fsm_behind(f). Until
 * then libraft's last applied index runs ahead of f's, so reads and
 * "applied up to" answers use data_fsm_state, never raft_last_applied.
 */
int data_fsm_catch_up(struct data_fsm *f);

/*
 * Reads, as seg.h's read and info, from the local LMDB: what has been
 * applied here (a replica serves reads up to its applied index). visit
 * gets entry memory valid only during the call. read returns the number of
 * entries visited or DLOG_ENOTFOUND / DLOG_EIO; info 0 or the same codes.
 */
int data_fsm_read(struct data_fsm *f, uint64_t stream, uint64_t seq, uint64_t from,
                  size_t max_bytes, seg_visit_fn visit, void *arg);
int data_fsm_info(struct data_fsm *f, uint64_t stream, uint64_t seq,
                  struct seg_info *out);
/* The stored state (applied index, digest, counts). 0 or DLOG_EIO. */
int data_fsm_state(struct data_fsm *f, struct data_fsm_state *out);
/* Waits until LMDB holds every applied command (write-behind; at once
 * otherwise). On the applying thread. 0, or the writer's failure. */
int data_fsm_sync(struct data_fsm *f);

/*
 * The change counter, rung after every applied command and every load:
 * a tailing reader reads notify_seq, reads entries, and if it found
 * nothing new waits with notify_wait (0, or DLOG_ETIMEDOUT; <0: no limit).
 */
uint32_t data_fsm_notify_seq(struct data_fsm *f);
int data_fsm_notify_wait(struct data_fsm *f, uint32_t seen, int timeout_ms);

/* ---------------------------------------------------- state transfer */

enum data_fsm_item_kind {
    DATA_FSM_ITEM_STATE = 1, /* first: the state the items add up to */
    DATA_FSM_ITEM_SEG = 2,   /* then every segment, in key order */
    DATA_FSM_ITEM_ENTRY = 3, /* then every entry, in key order */
};

/* The last APPEND_ONCE of one writer to a segment (writer 0: a free slot);
 * a segment keeps DATA_FSM_ONCE_SLOTS of them, and they are part of its
 * state (a replica without them would apply a repeat its peers refuse). */
#define DATA_FSM_ONCE_SLOTS 4
struct data_fsm_once {
    uint64_t writer, append_seq, first_entry, first_txid;
};

struct data_fsm_item {
    int kind;
    struct data_fsm_state state;                    /* STATE */
    uint64_t stream, seq;                           /* SEG, ENTRY */
    struct seg_info info;                           /* SEG */
    struct data_fsm_once once[DATA_FSM_ONCE_SLOTS]; /* SEG */
    uint64_t entry;                                 /* ENTRY: its id */
    const void *p; /* ENTRY: the bytes, valid during the visit */
    size_t len;
};

/* Visit one item; 0 to go on, a DLOG_E* code to stop the dump with it. */
typedef int (*data_fsm_dump_fn)(void *arg, const struct data_fsm_item *it);

/*
 * Visits f's whole contents as of one applied index: a STATE item, then the
 * SEG items, then the ENTRY items, from one LMDB read transaction (applies
 * go on meanwhile). Returns 0, visit's non-zero code, or DLOG_EIO.
 */
int data_fsm_dump(struct data_fsm *f, data_fsm_dump_fn visit, void *arg);

/*
 * A position in a dump: after nothing (kind 0), after the segment
 * (stream, seq) (kind DATA_FSM_ITEM_SEG), or after the entry (stream, seq,
 * entry) (kind DATA_FSM_ITEM_ENTRY). Keys are visited in ascending order,
 * segments before entries, so a position names where a dump resumes.
 */
struct data_fsm_pos {
    int kind;
    uint64_t stream, seq, entry;
};

/*
 * A dump in chunks, for state transfer: open pins one LMDB read
 * transaction (the contents as of one applied index, *st) until close,
 * whatever is applied meanwhile; each next call visits the SEG and ENTRY
 * items after *pos (no STATE item), at least one and then until max_bytes
 * of keys and values have been visited, and moves *pos past the last one
 * visited. Entry bytes given to visit stay valid until close (they are
 * LMDB's pages of the pinned transaction).
 *
 * next returns 0 when items may follow, 1 when the dump is complete (no
 * item after *pos), visit's non-zero code, or DLOG_EIO / DLOG_ECORRUPT.
 * open returns 0 or DLOG_EIO, DLOG_ENOMEM. A dumper may be used from any
 * thread, one call at a time; close every dumper before data_fsm_close.
 * A pinned transaction keeps LMDB from reusing the pages it sees: close
 * idle dumpers (the node drops a transfer idle for 30 s).
 */
struct data_fsm_dumper;
int data_fsm_dumper_open(struct data_fsm *f, struct data_fsm_state *st,
                         struct data_fsm_dumper **out);
int data_fsm_dumper_next(struct data_fsm_dumper *d, struct data_fsm_pos *pos,
                         size_t max_bytes, data_fsm_dump_fn visit, void *arg);
void data_fsm_dumper_close(struct data_fsm_dumper *d);

/*
 * Replacing f's contents with a dump, in several LMDB transactions so that
 * memory stays bounded whatever the contents' size:
 * - begin allocates the load (nothing is written yet); errmsg, when not
 *   NULL, is the caller's DLOG_ERRMSG_SIZE buffer for the load's words
 *   (it must outlive the load; NULL: f's own errmsg), so that a load on
 *   another thread does not share f's.
 * - the STATE item comes first: a state older than f's applied index is
 *   refused (DLOG_ECORRUPT, nothing changed); otherwise one transaction
 *   empties f, zeroes its stored state and writes a "transfer in
 *   progress" marker holding the STATE item.
 * - SEG then ENTRY items follow in the order a dump gives them; they are
 *   written as they come, committed every DATA_FSM_LOAD_TXN_BYTES and at
 *   each flush.
 * - commit checks that the items add up to the STATE item's counts and, in
 *   the same transaction as the last items, stores that state and removes
 *   the marker.
 * Once the marker is written, f holds a partial copy until a commit: a
 * failed item or commit, an abort, or a crash leaves the marker, and f
 * stays (or, reopened, starts) behind -- data_fsm_open reads the marker --
 * so the next fetch loads everything again. commit and abort free ld
 * (commit also on failure). Return 0 or DLOG_E*; DLOG_EBUSY from begin
 * while another load is open.
 *
 * Threads: on the applying thread, or, while f is behind, on one other
 * thread (see data_fsm_fetch_fn); never two loads at once.
 */
#define DATA_FSM_LOAD_TXN_BYTES (8u << 20)
struct data_fsm_load;
int data_fsm_load_begin(struct data_fsm *f, char *errmsg, struct data_fsm_load **out);
int data_fsm_load_item(struct data_fsm_load *ld, const struct data_fsm_item *it);
int data_fsm_load_flush(struct data_fsm_load *ld);
int data_fsm_load_commit(struct data_fsm_load *ld);
void data_fsm_load_abort(struct data_fsm_load *ld);

/* ---------------------------------------------------- libraft adapter */

/*
 * Fills *rf (version 1, data = f) with apply, snapshot and restore for
 * raft_init; then data_fsm_raft_bind tells f which struct raft drives it
 * (before raft_start). libraft 0.15 does not pass a command's index to
 * apply: the adapter takes raft_last_applied(r) + 1, which is what
 * replication.c is applying (it advances last_applied after apply returns,
 * and sets it to the snapshot index on restore; barriers and configuration
 * entries consume indices without reaching the FSM).
 *
 * Ownership (raft.h, src/replication.c and src/snapshot.c of 0.15):
 * - apply: buf belongs to libraft; *result points at a struct
 *   data_fsm_result inside f, valid until the next apply. libraft passes it
 *   to the raft_apply callback synchronously, right after apply, only on the
 *   server that proposed the command; the callback copies what it needs.
 *   A command's error is res->status, never apply's return value: libraft
 *   stops applying at a non-zero return and retries the same entry later.
 * - snapshot: one buffer, its array and its bytes from raft_malloc; with
 *   version 1 and no snapshot_finalize libraft frees both.
 * - restore: on success f owns buf->base and frees it (raft_free); on
 *   failure libraft does.
 */
void data_fsm_raft_fsm(struct data_fsm *f, struct raft_fsm *rf);
void data_fsm_raft_bind(struct data_fsm *f, struct raft *r);

#endif
