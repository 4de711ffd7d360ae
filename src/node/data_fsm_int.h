/*
 * Internals shared by the data FSM's files: data_fsm.c (open, reads,
 * restore), data_fsm_apply.c (commands), data_fsm_xfer.c (dump and load),
 * data_fsm_raft.c (the libraft adapter). Not for other modules.
 *
 * Convention inside these files: a helper returns 0, a DLOG_E* code (a
 * command's deterministic status), or any other non-zero value: an LMDB
 * code (MDB_* codes are negative, below DLOG_ERR_MIN) or an errno value, a
 * local failure that fsm_lmdb_err translates at the boundary.
 */
#ifndef DLOG_NODE_DATA_FSM_INT_H
#define DLOG_NODE_DATA_FSM_INT_H

#include <lmdb.h>
#include <stdatomic.h>

#include <dlog/err.h>

#include "base/doorbell.h"

struct fsm_wb;
#include "node/data_fsm.h"

struct data_fsm {
    char *dir;
    data_fsm_fetch_fn fetch;
    void *fetch_arg;
    data_fsm_notify_fn notify;
    void *notify_arg;

    MDB_env *env;
    MDB_dbi entries;
    MDB_dbi segs;
    MDB_dbi meta;

    /* The stored state, mirrored in memory; written only on the applying
     * thread, after the transaction that stored it has committed. */
    struct data_fsm_state st;
    /* Behind a restored snapshot (or a partial transfer): LMDB must reach
     * `want` (by cfg.fetch) before anything more is applied. Set and
     * cleared on the applying thread; a load on another thread (only while
     * behind) reads it, and sets it only if it was not set. */
    atomic_int behind;
    struct data_fsm_state want;

    /* Write-behind (data_fsm_wb.c), NULL when commands are committed as
     * they are applied. With it, st.applied and st.hash run ahead of LMDB
     * (its counts do not: they are the writer's, valid once drained). */
    struct fsm_wb *wb;

    struct raft *raft;             /* the adapter's, see data_fsm_raft_bind */
    struct data_fsm_result result; /* the adapter's *result */
    atomic_int loading;            /* a data_fsm_load is open */

    struct doorbell bell;
    char errmsg[DLOG_ERRMSG_SIZE];
};

#define FSM_SEGREC_SIZE 80
/* A segment record may carry, after its 80 bytes, the last append of each
 * of up to FSM_ONCE_SLOTS writers (APPEND_ONCE): writer, append_seq,
 * first_entry, first_txid, u64be each. */
#define FSM_ONCE_SLOTS       DATA_FSM_ONCE_SLOTS
#define FSM_SEGREC_ONCE_SIZE (FSM_SEGREC_SIZE + FSM_ONCE_SLOTS * 32)
#define FSM_STATE_SIZE       48
#define FSM_KEY_SEG          16
#define FSM_KEY_ENTRY        24

void fsm_seg_key(uint8_t k[FSM_KEY_SEG], uint64_t stream, uint64_t seq);
void fsm_entry_key(uint8_t k[FSM_KEY_ENTRY], uint64_t stream, uint64_t seq, uint64_t id);
void fsm_info_encode(const struct seg_info *i, uint8_t p[FSM_SEGREC_SIZE]);
/* 0 or DLOG_ECORRUPT. */
int fsm_info_decode(const void *p, size_t len, struct seg_info *i);

/* The segment's state: 0, DLOG_ENOTFOUND or an LMDB code (MDB_CORRUPTED
 * for a record that does not decode). Sets no message. */
int fsm_get_info(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 struct seg_info *out);
/* Keeps the record's APPEND_ONCE slots. */
int fsm_put_info(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 const struct seg_info *i);

#define fsm_once data_fsm_once
/* A stored segment record's slots (zeros for a record without them). */
void fsm_once_decode(const void *v, size_t len, struct fsm_once slots[FSM_ONCE_SLOTS]);
/* The segment's slots (zeros when it has none): 0, DLOG_ENOTFOUND or an
 * LMDB code. */
int fsm_get_once(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 struct fsm_once slots[FSM_ONCE_SLOTS]);
/* Writes the segment's state with these slots. */
int fsm_put_info_once(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                      const struct seg_info *i,
                      const struct fsm_once slots[FSM_ONCE_SLOTS]);
/* The stored state (zeros when none): 0 or an LMDB code (MDB_CORRUPTED). */
int fsm_get_state(struct data_fsm *f, MDB_txn *txn, struct data_fsm_state *out);
int fsm_put_state(struct data_fsm *f, MDB_txn *txn, const struct data_fsm_state *st);

/* rv is a local failure (LMDB or errno), not 0 or a DLOG_E* code. */
static inline int fsm_is_local(int rv)
{
    return rv > 0 || rv < DLOG_ERR_MIN;
}

/* Translates an LMDB (or errno) code into a DLOG_E* code, with words. */
int fsm_lmdb_err(struct data_fsm *f, int rc, const char *what);
/* The same, with the words in errmsg (DLOG_ERRMSG_SIZE bytes). */
int fsm_lmdb_err_to(struct data_fsm *f, char *errmsg, int rc, const char *what);
/* The stored transfer marker: 0 and *out (*found 1 or 0), or an LMDB code. */
int fsm_get_xfer(struct data_fsm *f, MDB_txn *txn, struct data_fsm_state *out,
                 int *found);
int fsm_put_xfer(struct data_fsm *f, MDB_txn *txn, const struct data_fsm_state *st);
int fsm_del_xfer(struct data_fsm *f, MDB_txn *txn);
/* Turns a helper's result (0, DLOG_E*, LMDB code) into 0 or a DLOG_E* code. */
int fsm_result(struct data_fsm *f, int rv, const char *what);

/* After a commit that changed the contents: ring the bell, call notify. */
void fsm_changed(struct data_fsm *f, uint64_t index);

/* While behind: call cfg.fetch and check it reached f->want. */
int fsm_catch_up(struct data_fsm *f);

/* Where a command's reads and writes go: an LMDB write transaction, or,
 * with txn NULL, the write-behind model (segment records only; entries are
 * the writer's). errmsg gets the words of a local failure. */
struct fsm_store {
    struct data_fsm *f;
    MDB_txn *txn;
    char *errmsg; /* DLOG_ERRMSG_SIZE bytes */
};

/* Applies one command against s, advancing st's applied index and digest
 * (and, in LMDB, its counts); fills res. 0 (whatever res->status), or a
 * local failure (DLOG_E*, words in s->errmsg): nothing to keep then. */
int fsm_run_cmd(struct fsm_store *s, uint64_t index, const void *cmd, size_t len,
                struct data_fsm_state *st, struct data_fsm_result *res);

/* ---- write-behind (data_fsm_wb.c); the model's calls run on the applying
 * thread. */
/* Starts the writer thread: 0 or DLOG_ENOMEM. */
int fsm_wb_start(struct data_fsm *f);
/* Commits what is queued, stops the thread, frees f->wb. */
void fsm_wb_stop(struct data_fsm *f);
/* Applies in the model and queues the command for the writer. */
int fsm_wb_apply(struct data_fsm *f, uint64_t index, const void *cmd, size_t len,
                 struct data_fsm_result *res);
/* Waits until LMDB holds every applied command; then f->st is the stored
 * state, counts included. 0, or the writer's failure (DLOG_EIO, ...). */
int fsm_wb_drain(struct data_fsm *f);
/* The segment's record as applied (pending changes over LMDB): 0,
 * DLOG_ENOTFOUND, or an LMDB code. slots may be NULL. */
int fsm_wb_get(struct data_fsm *f, uint64_t stream, uint64_t seq, struct seg_info *i,
               struct fsm_once slots[FSM_ONCE_SLOTS]);
/* Records a segment's new record (slots NULL: it keeps its own). */
int fsm_wb_put(struct data_fsm *f, uint64_t stream, uint64_t seq,
               const struct seg_info *i, const struct fsm_once *slots);
/* 1 when nothing applied is left to write (any thread). */
int fsm_wb_idle(struct data_fsm *f);
/* Tests: while hold is 1 the writer commits nothing new, so the model
 * alone answers (a drain ends the hold). */
void fsm_wb_hold(struct data_fsm *f, int hold);
/* After a load replaced LMDB's contents: the writer starts from f->st. */
void fsm_wb_reset(struct data_fsm *f);
/* Records that the segment is gone. */
int fsm_wb_remove(struct data_fsm *f, uint64_t stream, uint64_t seq);

#endif
