/*
 * Proposals, read barriers and snapshot requests: the calls other threads
 * make on an open state machine (see sm.c for the apply thread).
 *
 * A proposal registers its request under a fresh nonce before it writes
 * the record, so that the apply thread finds it whichever comes first, the
 * write acknowledgement or the apply. A read barrier waits until the
 * replica has consumed the stream up to the last DLSN at the time of the
 * call: every write acknowledged before the call is at or below it.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "sm/sm_internal.h"

/* ------------------------------------------------------------ waiting */

/* Has the replica consumed every record up to and including target? */
static int covers(struct dlog_sm *sm, struct dlog_dlsn target)
{
    return dlsn_le(target, sm->applied) || dlog_dlsn_cmp(target, sm->covered) < 0;
}

/* The caller is inside enter/leave. */
int sm_wait_covered(struct dlog_sm *sm, struct dlog_dlsn target, int timeout_ms)
{
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    int rv;
    pthread_mutex_lock(&sm->mu);
    for (;;) {
        if (sm->err != 0) {
            rv = sm->err;
            break;
        }
        if (covers(sm, target)) {
            rv = 0;
            break;
        }
        if (sm->closing || sm->stopped) {
            rv = DLOG_ECLOSED;
            break;
        }
        if (clock_ms_left(deadline) == 0) {
            rv = DLOG_ETIMEDOUT;
            break;
        }
        struct timespec ts;
        clock_abs_timespec(deadline, &ts);
        pthread_cond_timedwait(&sm->cv, &sm->mu, &ts);
    }
    pthread_mutex_unlock(&sm->mu);
    return rv;
}

int dlog_sm_barrier(struct dlog_sm *sm, int timeout_ms)
{
    struct dlog_dlsn target;
    if (sm == NULL)
        return DLOG_EINVAL;
    if (sm_on_apply_thread(sm))
        return DLOG_EBUSY;
    int rv = sm_enter(sm);
    if (rv != 0)
        return rv;
    /* Everything written before this call is at or below the last DLSN. */
    rv = dlog_stream_last_dlsn(sm->ns, sm->stream, &target);
    if (rv == 0)
        rv = sm_wait_covered(sm, target, timeout_ms);
    else if (rv == DLOG_EEOF)
        rv = 0; /* nothing written yet */
    else
        sm_fail(sm, rv, "barrier: %s", dlog_errmsg(sm->ns));
    sm_leave(sm);
    return rv;
}

int dlog_sm_snapshot(struct dlog_sm *sm)
{
    if (sm == NULL)
        return DLOG_EINVAL;
    if (sm_on_apply_thread(sm))
        return DLOG_EBUSY;
    int rv = sm_enter(sm);
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&sm->mu);
    uint64_t my = ++sm->snap_req;
    for (;;) {
        if (sm->snap_done >= my) {
            rv = sm->snap_rv;
            break;
        }
        if (sm->err != 0 || sm->closing || sm->stopped) {
            rv = sm->err != 0 ? sm->err : DLOG_ECLOSED;
            break;
        }
        pthread_cond_wait(&sm->cv, &sm->mu);
    }
    pthread_mutex_unlock(&sm->mu);
    sm_leave(sm);
    return rv;
}

/* ------------------------------------------------------------ proposals */

struct wreq {
    struct dlog_write_req w;
    struct dlog_sm *sm;
    uint64_t nonce;
};

static void write_cb(struct dlog_write_req *w, int status)
{
    struct wreq *wr = (struct wreq *)w;
    struct dlog_sm *sm = wr->sm;
    if (status != 0) {
        /* Not written, so never applied: fail it now. */
        sm_complete(sm, wr->nonce, DLOG_DLSN_HEAD, status, NULL, 0);
    }
    free(wr);
}

int dlog_sm_propose(struct dlog_sm *sm, struct dlog_propose_req *req, uint64_t client_id,
                    uint64_t seq, const void *cmd, size_t len, dlog_propose_cb cb)
{
    if (sm == NULL || req == NULL || cb == NULL || (len > 0 && cmd == NULL))
        return DLOG_EINVAL;
    if (len > SIZE_MAX - ENV_HDR)
        return DLOG_ETOOBIG;
    uint8_t *buf = malloc(ENV_HDR + len);
    struct wreq *wr = malloc(sizeof *wr);
    if (buf == NULL || wr == NULL) {
        free(buf);
        free(wr);
        return DLOG_ENOMEM;
    }
    pthread_mutex_lock(&sm->mu);
    int rv = sm->err != 0 ? sm->err : (sm->closing || sm->stopped) ? DLOG_ECLOSED : 0;
    uint64_t nonce = ++sm->next_nonce;
    if (rv == 0) {
        sm->waiters++; /* enter: close waits until dlog_write returned */
        req->cb = cb;
        req->dlsn = DLOG_DLSN_HEAD;
        pend_insert(sm, req, nonce);
    }
    pthread_mutex_unlock(&sm->mu);
    if (rv != 0) {
        free(buf);
        free(wr);
        return rv;
    }
    env_encode(buf, sm->instance, nonce, client_id, seq);
    if (len > 0)
        memcpy(buf + ENV_HDR, cmd, len);
    struct dlog_record rec;
    memset(&rec, 0, sizeof rec);
    rec.payload = buf;
    rec.len = ENV_HDR + len;
    memset(wr, 0, sizeof *wr);
    wr->sm = sm;
    wr->nonce = nonce;
    rv = dlog_write(sm->writer, &wr->w, &rec, 1, write_cb);
    free(buf);
    if (rv != 0) {
        free(wr);
        pthread_mutex_lock(&sm->mu);
        struct dlog_propose_req *still = pend_remove(sm, nonce);
        pthread_mutex_unlock(&sm->mu);
        if (still == NULL)
            rv = 0; /* already failed by a stop: its callback ran */
        else
            sm_fail(sm, rv, "propose: %s", dlog_writer_errmsg(sm->writer));
    }
    sm_leave(sm);
    return rv;
}

struct psync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    struct dlog_buf *out;
};

static void psync_cb(struct dlog_propose_req *req, int status, const void *res,
                     size_t len)
{
    struct psync *ps = req->data;
    if (status == 0 && ps->out != NULL) {
        ps->out->len = 0;
        if (len > 0 && dlog_buf_append(ps->out, res, len) != 0)
            status = DLOG_ENOMEM;
    }
    pthread_mutex_lock(&ps->mu);
    ps->status = status;
    ps->done = 1;
    pthread_cond_signal(&ps->cv);
    pthread_mutex_unlock(&ps->mu);
}

int dlog_sm_propose_sync(struct dlog_sm *sm, uint64_t client_id, uint64_t seq,
                         const void *cmd, size_t len, struct dlog_buf *result)
{
    struct psync ps = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, result};
    struct dlog_propose_req req;
    if (sm == NULL)
        return DLOG_EINVAL;
    if (sm_on_apply_thread(sm))
        return DLOG_EBUSY;
    memset(&req, 0, sizeof req);
    req.data = &ps;
    int rv = dlog_sm_propose(sm, &req, client_id, seq, cmd, len, psync_cb);
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&ps.mu);
    while (!ps.done)
        pthread_cond_wait(&ps.cv, &ps.mu);
    pthread_mutex_unlock(&ps.mu);
    pthread_mutex_destroy(&ps.mu);
    pthread_cond_destroy(&ps.cv);
    return ps.status;
}
