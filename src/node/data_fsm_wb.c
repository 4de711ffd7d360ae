/*
 * Write-behind for the data FSM (data_fsm.h, "Durability"; cfg.write_behind).
 *
 * Without it every applied command is one LMDB transaction committed with
 * an fdatasync on the Raft loop's thread: two flushes on every append's
 * path (the Raft log's, then LMDB's), and the loop blocked during the
 * second. The Raft log is already the durable copy of every command, so
 * here LMDB is written behind it:
 *
 *   - The applying thread decides each command's result against the model:
 *     the segment records as applied, that is LMDB's plus the changes of
 *     the commands still queued (the overlay). Only segment records are
 *     needed to decide any result; entries are written by the writer only.
 *     It then queues a copy of the command and answers at once.
 *   - The writer thread takes everything queued, applies it again with the
 *     same code (fsm_run_cmd) in one LMDB transaction, and commits it
 *     (MDB_NOMETASYNC: the data pages are flushed, a power loss can undo
 *     only the last commit, never corrupt the environment). It checks that
 *     every status and the digest came out as the model said, then drops
 *     the overlay records those commands last changed and rings the change
 *     counter (cfg.notify): readers see a command once it is in LMDB.
 *
 * A crash loses at most the queued commands, which are in the Raft log
 * after LMDB's applied index: libraft feeds them again on restart. Before
 * a snapshot, a restore or a load the queue is drained (fsm_wb_drain), so
 * LMDB is at least as new as any snapshot libraft keeps.
 *
 * The overlay stays small: a record leaves it once the writer has
 * committed the last command that changed it (usually within a few ms), so
 * it holds the segments written in the last commit or two, and is
 * searched linearly. The queue is bounded by WB_MAX_BYTES: past it the
 * applying thread waits for the writer (back-pressure on a slow disk).
 *
 * Locking: wb->mu guards the queue, the overlay, dur and the flags. The
 * model's LMDB reads happen after an overlay miss, outside the lock: a
 * record missing from the overlay has no queued change, and the writer
 * only ever moves LMDB forward to states that already contain it.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/data_fsm_int.h"

#define WB_MAX_BYTES (64u << 20) /* queued command bytes before apply waits */
#define WB_RETRY_MS  1000        /* a failed commit is tried again after this */

/* A command waiting for the writer, with what the model made of it. */
struct wb_cmd {
    struct wb_cmd *next;
    uint64_t index;
    uint64_t hash; /* the digest after it */
    int status;
    size_t len;
    uint8_t bytes[];
};

/* A segment record as queued commands left it. */
struct wb_seg {
    uint64_t stream, seq;
    uint64_t last; /* index of the last queued command that changed it */
    int present;   /* 0: removed */
    struct seg_info info;
    struct fsm_once slots[FSM_ONCE_SLOTS];
};

struct fsm_wb {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work; /* the writer: something queued, or stop */
    pthread_cond_t cv_done; /* the applying thread: a commit, or a failure */
    struct wb_cmd *head, *tail;
    size_t queued_bytes; /* of commands queued or being committed */
    uint64_t applying;   /* the index the model is applying */
    struct wb_seg *segs;
    size_t nsegs, cap;
    struct data_fsm_state dur; /* LMDB's state, as the writer committed it */
    int failed;                /* the last commit's local failure, 0 after a good one */
    int broken;                /* the writer disagreed with the model: a bug */
    int hold;                  /* tests: take nothing new (fsm_wb_hold) */
    int stop;
    char errmsg[DLOG_ERRMSG_SIZE]; /* the writer's words */
};

/* ---------------------------------------------------------------- overlay */

static struct wb_seg *find(struct fsm_wb *w, uint64_t stream, uint64_t seq)
{
    for (size_t i = 0; i < w->nsegs; i++)
        if (w->segs[i].stream == stream && w->segs[i].seq == seq)
            return &w->segs[i];
    return NULL;
}

/* Drops the records whose last change is in LMDB now. */
static void prune(struct fsm_wb *w, uint64_t durable)
{
    size_t k = 0;

    for (size_t i = 0; i < w->nsegs; i++)
        if (w->segs[i].last > durable)
            w->segs[k++] = w->segs[i];
    w->nsegs = k;
}

int fsm_wb_get(struct data_fsm *f, uint64_t stream, uint64_t seq, struct seg_info *i,
               struct fsm_once slots[FSM_ONCE_SLOTS])
{
    struct fsm_wb *w = f->wb;
    struct wb_seg *s;
    MDB_txn *txn;
    int rv;

    pthread_mutex_lock(&w->mu);
    s = find(w, stream, seq);
    if (s != NULL) {
        rv = s->present ? 0 : DLOG_ENOTFOUND;
        if (rv == 0) {
            *i = s->info;
            if (slots != NULL)
                memcpy(slots, s->slots, sizeof s->slots);
        }
        pthread_mutex_unlock(&w->mu);
        return rv;
    }
    pthread_mutex_unlock(&w->mu);
    rv = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn);
    if (rv != 0)
        return rv;
    rv = fsm_get_info(f, txn, stream, seq, i);
    if (rv == 0 && slots != NULL)
        rv = fsm_get_once(f, txn, stream, seq, slots);
    mdb_txn_abort(txn);
    return rv;
}

/*
 * Records the change of (stream, seq) by the command being applied: its
 * new record i with slots (NULL: the ones it has), or, with i NULL, its
 * removal. Finding the record and changing it happen under one lock, so
 * the writer cannot drop it in between (its `last` becomes this command).
 * Only this thread adds records, so one missing here stays missing while
 * LMDB is read for its slots.
 */
static int change(struct data_fsm *f, uint64_t stream, uint64_t seq,
                  const struct seg_info *i, const struct fsm_once *slots)
{
    struct fsm_wb *w = f->wb;
    struct fsm_once kept[FSM_ONCE_SLOTS];
    struct seg_info info;
    struct wb_seg *p;
    int rv;

    memset(kept, 0, sizeof kept);
    pthread_mutex_lock(&w->mu);
    p = find(w, stream, seq);
    pthread_mutex_unlock(&w->mu);
    if (p == NULL && i != NULL && slots == NULL) {
        rv = fsm_wb_get(f, stream, seq, &info, kept);
        if (rv == DLOG_ENOTFOUND)
            memset(kept, 0, sizeof kept);
        else if (rv != 0)
            return rv;
    }
    pthread_mutex_lock(&w->mu);
    p = find(w, stream, seq);
    if (p == NULL) {
        if (w->nsegs == w->cap) {
            size_t cap = w->cap ? 2 * w->cap : 16;
            struct wb_seg *segs = realloc(w->segs, cap * sizeof *segs);
            if (segs == NULL) {
                pthread_mutex_unlock(&w->mu);
                return ENOMEM;
            }
            w->segs = segs;
            w->cap = cap;
        }
        p = &w->segs[w->nsegs++];
        memset(p, 0, sizeof *p);
        p->stream = stream;
        p->seq = seq;
        memcpy(p->slots, kept, sizeof kept);
    }
    if (i != NULL) {
        p->info = *i;
        if (slots != NULL)
            memcpy(p->slots, slots, sizeof p->slots);
        p->present = 1;
    } else {
        memset(&p->info, 0, sizeof p->info);
        memset(p->slots, 0, sizeof p->slots);
        p->present = 0;
    }
    p->last = w->applying;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int fsm_wb_put(struct data_fsm *f, uint64_t stream, uint64_t seq,
               const struct seg_info *i, const struct fsm_once *slots)
{
    return change(f, stream, seq, i, slots);
}

int fsm_wb_remove(struct data_fsm *f, uint64_t stream, uint64_t seq)
{
    return change(f, stream, seq, NULL, NULL);
}

/* ---------------------------------------------------------------- writer */

/* Applies the batch to LMDB in one transaction, from state *st. */
static int commit_batch(struct data_fsm *f, struct fsm_wb *w, struct wb_cmd *b,
                        struct data_fsm_state *st)
{
    struct fsm_store s = {f, NULL, w->errmsg};
    struct data_fsm_result *res = malloc(sizeof *res);
    int rc, rv = 0;

    if (res == NULL)
        return errmsg_fail(w->errmsg, DLOG_ENOMEM, "data fsm %s: write-behind: no memory",
                           f->dir);
    rc = mdb_txn_begin(f->env, NULL, 0, &s.txn);
    if (rc != 0) {
        free(res);
        return fsm_lmdb_err_to(f, w->errmsg, rc, "write-behind");
    }
    for (struct wb_cmd *c = b; c != NULL && rv == 0; c = c->next) {
        if (c->index <= st->applied)
            continue;
        rv = fsm_run_cmd(&s, c->index, c->bytes, c->len, st, res);
        if (rv == 0 && (res->status != c->status || st->hash != c->hash)) {
            errmsg_printf(w->errmsg,
                          "data fsm %s: write-behind: the command at %llu gave status %d "
                          "in LMDB and %d in the model",
                          f->dir, (unsigned long long)c->index, res->status, c->status);
            w->broken = 1;
            rv = DLOG_EIO;
        }
    }
    free(res);
    if (rv == 0 && (rc = fsm_put_state(f, s.txn, st)) != 0)
        rv = fsm_lmdb_err_to(f, w->errmsg, rc, "write-behind");
    if (rv != 0) {
        mdb_txn_abort(s.txn);
        return rv;
    }
    rc = mdb_txn_commit(s.txn);
    if (rc != 0)
        return fsm_lmdb_err_to(f, w->errmsg, rc, "write-behind: commit");
    return 0;
}

static void free_cmds(struct wb_cmd *c)
{
    while (c != NULL) {
        struct wb_cmd *next = c->next;
        free(c);
        c = next;
    }
}

static void *writer_main(void *arg)
{
    struct data_fsm *f = arg;
    struct fsm_wb *w = f->wb;

    pthread_mutex_lock(&w->mu);
    for (;;) {
        while ((w->head == NULL || w->hold) && !w->stop)
            pthread_cond_wait(&w->cv_work, &w->mu);
        if (w->head == NULL || w->broken)
            break;
        struct wb_cmd *batch = w->head, *last = w->tail;
        size_t bytes = w->queued_bytes;
        struct data_fsm_state st = w->dur;
        w->head = w->tail = NULL;
        pthread_mutex_unlock(&w->mu);

        int rv = commit_batch(f, w, batch, &st);

        pthread_mutex_lock(&w->mu);
        if (rv != 0) {
            /* Put it back in front and try again later: the commands are
             * acknowledged, LMDB must get them (or a restart replays them). */
            last->next = w->head;
            w->head = batch;
            if (w->tail == NULL)
                w->tail = last;
            if (!w->failed || w->broken)
                log_error("data-fsm", "%s", w->errmsg);
            w->failed = rv;
            pthread_cond_broadcast(&w->cv_done);
            if (w->broken || w->stop)
                break;
            struct timespec ts;
            clock_abs_timespec(clock_now_ns() + (uint64_t)WB_RETRY_MS * NS_PER_MS, &ts);
            pthread_cond_timedwait(&w->cv_work, &w->mu, &ts);
            continue;
        }
        if (w->failed)
            log_info("data-fsm", "%s: write-behind: committed again", f->dir);
        w->failed = 0;
        pthread_mutex_unlock(&w->mu);
        /* Readers first (LMDB has it), then the applying side: a drain
         * returns after the change counter moved. */
        fsm_changed(f, st.applied);
        free_cmds(batch);
        pthread_mutex_lock(&w->mu);
        w->dur = st;
        w->queued_bytes -= bytes < w->queued_bytes ? bytes : w->queued_bytes;
        prune(w, st.applied);
        pthread_cond_broadcast(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* ---------------------------------------------------------------- the applying side */

int fsm_wb_apply(struct data_fsm *f, uint64_t index, const void *cmd, size_t len,
                 struct data_fsm_result *res)
{
    struct fsm_wb *w = f->wb;
    struct fsm_store s = {f, NULL, f->errmsg};
    struct data_fsm_state st = f->st;
    struct wb_cmd *c = malloc(sizeof *c + len);
    int rv;

    if (c == NULL)
        return errmsg_fail(f->errmsg, DLOG_ENOMEM, "data fsm %s: apply: no memory",
                           f->dir);
    pthread_mutex_lock(&w->mu);
    while (w->queued_bytes > WB_MAX_BYTES && !w->broken)
        pthread_cond_wait(&w->cv_done, &w->mu);
    if (w->broken) {
        errmsg_copy(f->errmsg, w->errmsg);
        pthread_mutex_unlock(&w->mu);
        free(c);
        return DLOG_EIO;
    }
    w->applying = index;
    pthread_mutex_unlock(&w->mu);

    rv = fsm_run_cmd(&s, index, cmd, len, &st, res);
    if (rv != 0) {
        free(c);
        return rv;
    }
    c->next = NULL;
    c->index = index;
    c->hash = st.hash;
    c->status = res->status;
    c->len = len;
    if (len > 0)
        memcpy(c->bytes, cmd, len);
    pthread_mutex_lock(&w->mu);
    if (w->tail != NULL)
        w->tail->next = c;
    else
        w->head = c;
    w->tail = c;
    w->queued_bytes += sizeof *c + len;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    f->st.applied = st.applied;
    f->st.hash = st.hash;
    return 0;
}

int fsm_wb_drain(struct data_fsm *f)
{
    struct fsm_wb *w = f->wb;
    int rv;

    if (w == NULL)
        return 0;
    pthread_mutex_lock(&w->mu);
    w->hold = 0;
    pthread_cond_signal(&w->cv_work);
    while ((w->head != NULL || w->dur.applied < f->st.applied) && !w->failed &&
           !w->broken)
        pthread_cond_wait(&w->cv_done, &w->mu);
    rv = w->broken ? DLOG_EIO : w->failed;
    if (rv != 0)
        errmsg_copy(f->errmsg, w->errmsg);
    else
        f->st = w->dur; /* the same index and digest, with the counts */
    pthread_mutex_unlock(&w->mu);
    return rv;
}

int fsm_wb_idle(struct data_fsm *f)
{
    struct fsm_wb *w = f->wb;
    int idle;

    if (w == NULL)
        return 1;
    pthread_mutex_lock(&w->mu);
    idle = w->head == NULL && w->queued_bytes == 0;
    pthread_mutex_unlock(&w->mu);
    return idle;
}

void fsm_wb_hold(struct data_fsm *f, int hold)
{
    struct fsm_wb *w = f->wb;

    pthread_mutex_lock(&w->mu);
    w->hold = hold;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
}

void fsm_wb_reset(struct data_fsm *f)
{
    struct fsm_wb *w = f->wb;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->dur = f->st;
    w->nsegs = 0;
    pthread_mutex_unlock(&w->mu);
}

/* Frees w once no thread uses it: commands left (only after a failure:
 * libraft replays them), the overlay, the lock. */
static void wb_free(struct fsm_wb *w)
{
    free_cmds(w->head);
    free(w->segs);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    free(w);
}

int fsm_wb_start(struct data_fsm *f)
{
    struct fsm_wb *w = calloc(1, sizeof *w);

    if (w == NULL)
        return DLOG_ENOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    w->dur = f->st;
    f->wb = w;
    if (pthread_create(&w->thread, NULL, writer_main, f) != 0) {
        f->wb = NULL;
        wb_free(w);
        return DLOG_ENOMEM;
    }
    return 0;
}

void fsm_wb_stop(struct data_fsm *f)
{
    struct fsm_wb *w = f->wb;

    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1; /* the writer commits what is queued first */
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    wb_free(w);
    f->wb = NULL;
}
