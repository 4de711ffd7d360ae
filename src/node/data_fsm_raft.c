/*
 * The libraft adapter of the data FSM (node/data_fsm.h): struct raft_fsm's
 * apply, snapshot and restore over data_fsm_apply and data_fsm_restore, and
 * the small snapshot format.
 *
 * libraft 0.15 facts this file relies on (src/replication.c, src/snapshot.c,
 * src/recv.c of that release):
 * - replicationApply() stops at an entry whose apply fails, leaves
 *   last_applied below it and tries it again at the next commit; on a
 *   follower the failure of the apply triggered by an AppendEntries
 *   heartbeat is returned to recvCb(), which takes the server out of service
 *   (convertToUnavailable) for any code but RAFT_NOCONNECTION.
 * - installSnapshotCb() truncates the log to the snapshot before restore
 *   runs, and after a failed restore the next InstallSnapshot for the same
 *   index is taken as already installed: a follower whose restore failed
 *   would never apply again. So restore fails only for a buffer that is not
 *   a snapshot; when the contents cannot be fetched yet, restore succeeds,
 *   the FSM stays "behind" and every apply first retries the fetch.
 * - After an apply fails, replicationApply() runs again only when the
 *   commit index moves: hence data_fsm_catch_up for the node's timer.
 * test-data-fsm checks the first two (mutating the code either way makes
 * its fetch-failure case fail).
 */
#include <raft.h>
#include <string.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "node/data_fsm_int.h"

void data_fsm_snap_encode(const struct data_fsm_state *st,
                          uint8_t out[DATA_FSM_SNAP_SIZE])
{
    memset(out, 0, DATA_FSM_SNAP_SIZE);
    put_u32be(out, DATA_FSM_SNAP_MAGIC);
    put_u32be(out + 4, DATA_FSM_SNAP_FORMAT);
    put_u64be(out + 8, st->applied);
    put_u64be(out + 16, st->hash);
    put_u64be(out + 24, st->segments);
    put_u64be(out + 32, st->entries);
    put_u64be(out + 40, st->bytes);
    /* 48..59 reserved, zero; the CRC covers everything before it. */
    put_u32be(out + 60, crc32c(out, 60));
}

int data_fsm_snap_decode(const void *p, size_t len, struct data_fsm_state *st)
{
    const uint8_t *q = p;

    if (p == NULL || len != DATA_FSM_SNAP_SIZE || get_u32be(q) != DATA_FSM_SNAP_MAGIC ||
        get_u32be(q + 4) != DATA_FSM_SNAP_FORMAT || get_u32be(q + 60) != crc32c(q, 60))
        return DLOG_ECORRUPT;
    st->applied = get_u64be(q + 8);
    st->hash = get_u64be(q + 16);
    st->segments = get_u64be(q + 24);
    st->entries = get_u64be(q + 32);
    st->bytes = get_u64be(q + 40);
    return 0;
}

static int to_raft(int rv)
{
    switch (rv) {
    case DLOG_ENOMEM:
        return RAFT_NOMEM;
    case DLOG_ENOSPC:
        return RAFT_NOSPACE;
    case DLOG_EUNAVAILABLE:
        /* Behind a snapshot, the peers unreachable: the one code that keeps
         * a follower in service (see above); apply is retried. */
        return RAFT_NOCONNECTION;
    default:
        return RAFT_IOERR;
    }
}

static int rf_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct data_fsm *f = rf->data;
    int rv;

    *result = NULL;
    if (f->raft == NULL) {
        errmsg_printf(f->errmsg, "data fsm %s: apply before data_fsm_raft_bind", f->dir);
        return RAFT_INVALID;
    }
    rv = data_fsm_apply(f, (uint64_t)raft_last_applied(f->raft) + 1, buf->base, buf->len,
                        &f->result);
    if (rv != 0) {
        log_warn("data-fsm", "%s: apply at %llu: %s", f->dir,
                 (unsigned long long)raft_last_applied(f->raft) + 1, f->errmsg);
        return to_raft(rv);
    }
    *result = &f->result;
    return 0;
}

static int rf_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct data_fsm *f = rf->data;
    struct raft_buffer *b;
    int rc;

    *bufs = NULL;
    *n_bufs = 0;
    /* No snapshot of contents we do not have: libraft retries later. */
    if (atomic_load(&f->behind))
        return RAFT_BUSY;
    /* Write-behind: LMDB first gets every command applied so far. */
    if (fsm_wb_drain(f) != 0) {
        log_warn("data-fsm", "%s: snapshot put off: %s", f->dir, f->errmsg);
        return RAFT_BUSY;
    }
    /* Make LMDB durable up to here before libraft stores a snapshot that
     * lets it drop the log below (MDB_NOMETASYNC defers the meta page). */
    rc = mdb_env_sync(f->env, 1);
    if (rc != 0) {
        fsm_lmdb_err(f, rc, "snapshot: sync");
        return RAFT_IOERR;
    }
    b = raft_malloc(sizeof *b);
    if (b == NULL)
        return RAFT_NOMEM;
    b->base = raft_malloc(DATA_FSM_SNAP_SIZE);
    if (b->base == NULL) {
        raft_free(b);
        return RAFT_NOMEM;
    }
    b->len = DATA_FSM_SNAP_SIZE;
    /* The state may be ahead of the index libraft files this under (after a
     * restart, while it feeds again commands we skip): a replica restoring
     * it then fetches at least this state, which is just as correct. */
    data_fsm_snap_encode(&f->st, b->base);
    *bufs = b;
    *n_bufs = 1;
    return 0;
}

static int rf_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct data_fsm *f = rf->data;
    struct data_fsm_state snap;
    int rv;

    if (data_fsm_snap_decode(buf->base, buf->len, &snap) != 0) {
        errmsg_printf(f->errmsg, "data fsm %s: restore: not a snapshot (%zu bytes)",
                      f->dir, buf->len);
        return RAFT_MALFORMED; /* libraft frees buf */
    }
    rv = data_fsm_restore(f, &snap);
    if (rv != 0)
        log_warn("data-fsm", "%s: restore at %llu: %s; will retry before applying",
                 f->dir, (unsigned long long)snap.applied, f->errmsg);
    raft_free(buf->base); /* ours on success */
    return 0;
}

void data_fsm_raft_fsm(struct data_fsm *f, struct raft_fsm *rf)
{
    memset(rf, 0, sizeof *rf);
    rf->version = 1;
    rf->data = f;
    rf->apply = rf_apply;
    rf->snapshot = rf_snapshot;
    rf->restore = rf_restore;
}

void data_fsm_raft_bind(struct data_fsm *f, struct raft *r)
{
    f->raft = r;
}
