/*
 * The metadata FSM behind libraft's struct raft_fsm (version 2: apply,
 * snapshot, restore, snapshot_finalize). dlog codes become RAFT_* codes
 * here and nowhere else.
 *
 * Buffer ownership, as libraft 0.15 has it (raft.h on struct raft_fsm and
 * its src/replication.c, src/snapshot.c):
 *
 * - apply gets a log entry's buffer, which stays libraft's. The result
 *   pointer goes to the raft_apply callback on the leader only, straight
 *   after apply returns; on followers libraft drops it. So it points at a
 *   slot in the FSM, never at memory to free. A non-zero return makes
 *   libraft stop applying at that entry and retry it later: right for
 *   out-of-memory, fatal for an outcome (the replica would stall forever),
 *   so every outcome returns 0 with its code inside the result.
 * - snapshot with snapshot_finalize set (version >= 2): the buffers stay
 *   the FSM's; libraft reads them until it calls snapshot_finalize, which
 *   frees them here. They are plain malloc memory, never raft_malloc's.
 * - restore: on success the FSM owns buf->base and must raft_free it; on
 *   failure libraft frees it.
 */
#include "node/meta_fsm_int.h"

#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include <dlog/err.h>

static int to_raft(int rv)
{
    switch (rv) {
    case 0:
        return 0;
    case DLOG_ENOMEM:
        return RAFT_NOMEM;
    case DLOG_ECORRUPT:
        return RAFT_CORRUPT;
    default:
        return RAFT_MALFORMED;
    }
}

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct meta_fsm *fsm = rf->data;
    int rv = meta_fsm_apply(fsm, buf->base, buf->len, &fsm->last);

    *result = rv == 0 ? &fsm->last : NULL;
    return to_raft(rv);
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct meta_fsm *fsm = rf->data;
    struct raft_buffer *v = malloc(sizeof *v);
    struct bytes b;

    *bufs = NULL;
    *n_bufs = 0;
    if (v == NULL)
        return RAFT_NOMEM;
    bytes_init(&b);
    if (meta_fsm_snapshot(fsm, &b) != 0) {
        free(v);
        return RAFT_NOMEM;
    }
    v[0].base = b.p;
    v[0].len = b.len;
    *bufs = v;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[],
                                 unsigned *n_bufs)
{
    (void)rf;
    if (*bufs != NULL) {
        for (unsigned i = 0; i < *n_bufs; i++)
            free((*bufs)[i].base);
        free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    return 0;
}

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct meta_fsm *fsm = rf->data;
    int rv = meta_fsm_restore(fsm, buf->base, buf->len);

    if (rv != 0)
        return to_raft(rv);
    raft_free(buf->base);
    return 0;
}

void meta_fsm_raft_init(struct raft_fsm *rf, struct meta_fsm *fsm)
{
    memset(rf, 0, sizeof *rf);
    rf->version = 2;
    rf->data = fsm;
    rf->apply = fsm_apply;
    rf->snapshot = fsm_snapshot;
    rf->restore = fsm_restore;
    rf->snapshot_finalize = fsm_snapshot_finalize;
}

int meta_fsm_raft_buffer(const void *p, size_t len, struct raft_buffer *buf)
{
    buf->len = len;
    buf->base = raft_malloc(len > 0 ? len : 1);
    if (buf->base == NULL)
        return DLOG_ENOMEM;
    if (len > 0)
        memcpy(buf->base, p, len);
    return 0;
}
