/*
 * The state-machine framework: open and close, and the apply thread
 * (DESIGN.md "State-machine framework"; proposals and barriers are in
 * sm_propose.c).
 *
 * Invariant 7: "A state machine applies each record exactly once, in log
 * order, across snapshots and restarts; two replicas that applied the
 * same prefix hold the same state." One apply thread per state machine
 * tails the stream with a dlog_reader (bulk blocking reads, with a short
 * timeout so that close is prompt) and feeds each record, in order, to
 * apply. Records at or below the last applied DLSN (the snapshot's, after
 * a restore) are skipped, never applied twice; a fatal apply error stops
 * the thread at that record, never past it.
 *
 * Proposals go through one shared dlog_writer per state machine. The
 * proposer registers its request under a nonce before writing, and the
 * apply thread completes it when it applies the record that carries this
 * instance's origin and that nonce — so the completion carries the local
 * apply's result whether the write acknowledgement or the apply comes
 * first.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "sm/sm_internal.h"

#define READ_BATCH    128
#define READ_SLICE_MS 50 /* the apply thread notices close within this */

void dlog_sm_options_init(struct dlog_sm_options *o)
{
    memset(o, 0, sizeof *o);
    o->version = DLOG_SM_OPTIONS_VERSION;
    o->keep_snapshots = 3;
    o->auto_truncate = 1;
    o->create = 1;
}

int sm_fail(struct dlog_sm *sm, int code, const char *fmt, ...)
{
    char buf[DLOG_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&sm->mu);
    if (sm->err == 0) /* the fatal error's message stays */
        errmsg_copy(sm->errmsg, buf);
    pthread_mutex_unlock(&sm->mu);
    return code;
}

/* A copy of the current message, for logging from any thread. */
static const char *errmsg_now(struct dlog_sm *sm, char *buf)
{
    pthread_mutex_lock(&sm->mu);
    errmsg_copy(buf, sm->errmsg);
    pthread_mutex_unlock(&sm->mu);
    return buf;
}

int sm_on_apply_thread(struct dlog_sm *sm)
{
    return sm->thread_started && pthread_equal(pthread_self(), sm->thread);
}

/*
 * A public call in progress holds the state machine open: close waits until
 * every such call has left (calls that wait wake up on close and return
 * DLOG_ECLOSED). enter fails once the replica is closing or stopped.
 */
int sm_enter(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    int rv = sm->err != 0 ? sm->err : (sm->closing || sm->stopped) ? DLOG_ECLOSED : 0;
    if (rv == 0)
        sm->waiters++;
    pthread_mutex_unlock(&sm->mu);
    return rv;
}

void sm_leave(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    sm->waiters--;
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
}

/* ------------------------------------------------------------ errors */

/* Stops the replica: records the error, fails every pending proposal. */
static void stop_fatal(struct dlog_sm *sm, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void stop_fatal(struct dlog_sm *sm, int code, const char *fmt, ...)
{
    char buf[DLOG_ERRMSG_SIZE];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&sm->mu);
    if (sm->err == 0) {
        sm->err = code;
        errmsg_copy(sm->errmsg, buf);
    }
    struct dlog_propose_req *list = pend_take_all(sm);
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    log_error(SM_LOG, "'%s' stopped: %s", sm->stream, buf);
    while (list != NULL) {
        struct dlog_propose_req *req = list;
        list = req->next_;
        req->next_ = NULL;
        req->cb(req, code, NULL, 0);
    }
}

int dlog_sm_error(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    int rv = sm->err;
    pthread_mutex_unlock(&sm->mu);
    return rv;
}

const char *dlog_sm_errmsg(struct dlog_sm *sm)
{
    return sm != NULL ? sm->errmsg : "no state machine";
}

struct dlog_dlsn dlog_sm_applied(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    struct dlog_dlsn d = sm->applied;
    pthread_mutex_unlock(&sm->mu);
    return d;
}

uint64_t dlog_sm_applied_count(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    uint64_t n = sm->applied_count;
    pthread_mutex_unlock(&sm->mu);
    return n;
}

/* ------------------------------------------------------------ applying */

/* Completes this instance's proposal `nonce`, if it is still pending. */
void sm_complete(struct dlog_sm *sm, uint64_t nonce, struct dlog_dlsn at, int status,
                 const void *res, size_t len)
{
    pthread_mutex_lock(&sm->mu);
    struct dlog_propose_req *req = pend_remove(sm, nonce);
    pthread_mutex_unlock(&sm->mu);
    if (req != NULL) {
        req->dlsn = at;
        req->cb(req, status, res, len);
    }
}

static void consumed(struct dlog_sm *sm, const struct dlog_record *rec, int applied)
{
    pthread_mutex_lock(&sm->mu);
    sm->applied = rec->dlsn;
    if (applied)
        sm->applied_count++;
    pthread_mutex_unlock(&sm->mu);
    sm->total++;
    sm->since_records++;
    sm->since_bytes += rec->len;
}

/* Applies one record; returns 0, or a fatal error (the replica stopped). */
static int process(struct dlog_sm *sm, const struct dlog_record *rec)
{
    struct envelope e;
    char d[DLOG_DLSN_STRLEN];
    if (dlsn_le(rec->dlsn, sm->applied))
        return 0; /* already in the restored state */
    env_decode(rec, &e);
    int mine = e.origin == sm->instance && e.origin != 0;
    if (e.client_id != 0) {
        struct dedup_ent *de = dedup_find(&sm->dd, e.client_id);
        if (de != NULL && e.seq <= de->seq) {
            /* A retry: applied once already; answer with the first result. */
            consumed(sm, rec, 0);
            if (mine && e.seq == de->seq)
                sm_complete(sm, e.nonce, de->dlsn, 0, de->res, de->len);
            else if (mine)
                sm_complete(sm, e.nonce, rec->dlsn, DLOG_ECONFLICT, NULL, 0);
            return 0;
        }
    }
    if (!dlsn_is_head(sm->scan_until) && dlsn_le(rec->dlsn, sm->scan_until)) {
        /* On-disk mode: the application has this record; rebuild the table. */
        int rv = e.client_id
                     ? dedup_put(&sm->dd, e.client_id, e.seq, rec->dlsn, 0, NULL, 0)
                     : 0;
        if (rv != 0) {
            stop_fatal(sm, rv, "exactly-once table: %s", dlog_strerror(rv));
            return rv;
        }
        consumed(sm, rec, 0);
        return 0;
    }
    struct dlog_record cmd = *rec;
    struct dlog_buf result = {0};
    cmd.payload = e.cmd;
    cmd.len = e.len;
    int rv = sm->cb->apply(sm->app, &cmd, &result);
    if (rv < 0) {
        dlog_buf_free(&result);
        stop_fatal(sm, rv, "apply of the record at %s failed: %s",
                   dlog_dlsn_format(rec->dlsn, d, sizeof d), dlog_strerror(rv));
        return rv;
    }
    if (e.client_id != 0) {
        rv = dedup_put(&sm->dd, e.client_id, e.seq, rec->dlsn, 1, result.p, result.len);
        if (rv != 0) {
            dlog_buf_free(&result);
            stop_fatal(sm, rv, "exactly-once table after %s: %s",
                       dlog_dlsn_format(rec->dlsn, d, sizeof d), dlog_strerror(rv));
            return rv;
        }
    }
    consumed(sm, rec, 1);
    if (mine)
        sm_complete(sm, e.nonce, rec->dlsn, 0, result.p, result.len);
    dlog_buf_free(&result);
    return 0;
}

static int can_snapshot(struct dlog_sm *sm)
{
    return sm->dir_fd >= 0 || (sm->o.shared_snapshots && sm->cb->snapshot != NULL);
}

static int snapshot_due(struct dlog_sm *sm)
{
    return can_snapshot(sm) && ((sm->o.snapshot_every_records > 0 &&
                                 sm->since_records >= sm->o.snapshot_every_records) ||
                                (sm->o.snapshot_every_bytes > 0 &&
                                 sm->since_bytes >= sm->o.snapshot_every_bytes));
}

int sm_take_snapshot(struct dlog_sm *sm)
{
    int rv = 0, prv = 0;
    char msg[DLOG_ERRMSG_SIZE];
    if (!can_snapshot(sm))
        return sm_fail(sm, DLOG_EINVAL, "'%s': no snapshot_dir and no shared snapshots",
                       sm->stream);
    if (!sm->ondisk && sm->cb->snapshot == NULL)
        return sm_fail(sm, DLOG_EINVAL, "'%s': no snapshot callback", sm->stream);
    sm->since_records = sm->since_bytes = 0;
    if (dlsn_is_head(sm->applied))
        return 0; /* nothing applied: nothing to keep */
    int took = 0;
    if (sm->dir_fd >= 0 && dlog_dlsn_cmp(sm->applied, sm->last_local) != 0) {
        rv = snap_local_take(sm, !sm->ondisk);
        took = rv == 0;
    }
    if (sm->o.shared_snapshots && sm->cb->snapshot != NULL &&
        dlog_dlsn_cmp(sm->applied, sm->last_pub) != 0) {
        struct pub_info pi;
        prv = shared_publish(sm, &pi);
        if (prv == 0)
            prv = trunc_announce(sm, &pi);
        if (prv == 0)
            sm->last_pub = pi.dlsn;
    }
    if (took) {
        /* Report the oldest snapshot kept before deleting older ones. */
        int trv = trunc_report(sm);
        if (trv == 0)
            snap_local_prune(sm);
        else
            log_warn(SM_LOG, "'%s': report: %s", sm->stream, errmsg_now(sm, msg));
    }
    if (rv == 0 && prv == 0) {
        int trv = trunc_run(sm);
        if (trv != 0)
            log_warn(SM_LOG, "'%s': truncation: %s", sm->stream, dlog_strerror(trv));
    }
    return rv != 0 ? rv : prv;
}

static void serve_snapshot_requests(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    uint64_t req = sm->snap_req;
    int want = req > sm->snap_done;
    pthread_mutex_unlock(&sm->mu);
    if (!want)
        return;
    int rv = sm_take_snapshot(sm);
    pthread_mutex_lock(&sm->mu);
    sm->snap_done = req;
    sm->snap_rv = rv;
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
}

static void *apply_main(void *arg)
{
    struct dlog_sm *sm = arg;
    char msg[DLOG_ERRMSG_SIZE];
    struct dlog_record *recs = calloc(READ_BATCH, sizeof *recs);
    int rv = recs == NULL ? DLOG_ENOMEM : sm_recover(sm);
    if (rv == 0 && sm->registered && trunc_report(sm) != 0)
        log_warn(SM_LOG, "'%s': cannot register: %s", sm->stream, errmsg_now(sm, msg));
    pthread_mutex_lock(&sm->mu);
    sm->ready = 1;
    sm->ready_rv = rv;
    sm->stopped = rv != 0;
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    if (rv != 0) {
        free(recs);
        return NULL;
    }
    int fatal = 0;
    for (;;) {
        pthread_mutex_lock(&sm->mu);
        int closing = sm->closing;
        pthread_mutex_unlock(&sm->mu);
        if (closing)
            break;
        serve_snapshot_requests(sm);
        int n = dlog_read(sm->reader, recs, READ_BATCH, READ_SLICE_MS);
        if (n == DLOG_ETIMEDOUT)
            continue;
        if (n < 0) {
            stop_fatal(sm, n, "read '%s': %s", sm->stream,
                       dlog_reader_errmsg(sm->reader));
            fatal = 1;
            break;
        }
        for (int i = 0; i < n && !fatal; i++) {
            fatal = process(sm, &recs[i]) != 0;
            if (!fatal && snapshot_due(sm) && sm_take_snapshot(sm) != 0)
                log_warn(SM_LOG, "'%s': snapshot failed: %s", sm->stream,
                         errmsg_now(sm, msg));
        }
        if (fatal)
            break;
        pthread_mutex_lock(&sm->mu);
        sm->covered = dlog_reader_position(sm->reader);
        pthread_cond_broadcast(&sm->cv);
        pthread_mutex_unlock(&sm->mu);
    }
    /* On-disk mode: keep the exactly-once table for the next open. */
    if (!fatal && sm->ondisk && sm->dir_fd >= 0 &&
        dlog_dlsn_cmp(sm->applied, sm->last_local) != 0 && !dlsn_is_head(sm->applied)) {
        if (snap_local_take(sm, 0) == 0 && trunc_report(sm) == 0)
            snap_local_prune(sm);
    }
    free(recs);
    pthread_mutex_lock(&sm->mu);
    sm->stopped = 1;
    pthread_cond_broadcast(&sm->cv);
    pthread_mutex_unlock(&sm->mu);
    return NULL;
}

/* ------------------------------------------------------------ open and close */

static char *dupstr(const char *a, const char *b)
{
    size_t na = strlen(a), nb = b ? strlen(b) : 0;
    char *s = malloc(na + nb + 1);
    if (s != NULL) {
        memcpy(s, a, na);
        if (nb > 0)
            memcpy(s + na, b, nb);
        s[na + nb] = '\0';
    }
    return s;
}

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v || v == 0)
        v = clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&v;
    return v != 0 ? v : 1;
}

/* "<hostname>:<real path of snapshot_dir>", cut to SM_ID_MAX bytes. */
static char *default_replica_id(const char *dir)
{
    char host[256] = "localhost", id[SM_ID_MAX + 1];
    char *real = realpath(dir, NULL);
    if (gethostname(host, sizeof host - 1) != 0)
        strcpy(host, "localhost");
    host[sizeof host - 1] = '\0';
    snprintf(id, sizeof id, "%s:%s", host, real != NULL ? real : dir);
    free(real);
    return dupstr(id, NULL);
}

static void sm_free(struct dlog_sm *sm)
{
    if (sm->writer != NULL)
        dlog_writer_close(sm->writer); /* flushes: write callbacks run now */
    struct dlog_propose_req *list = pend_take_all(sm);
    while (list != NULL) {
        struct dlog_propose_req *req = list;
        list = req->next_;
        req->next_ = NULL;
        req->cb(req, DLOG_ECLOSED, NULL, 0);
    }
    if (sm->reader != NULL)
        dlog_reader_close(sm->reader);
    if (sm->snap_writer != NULL)
        dlog_writer_close(sm->snap_writer);
    if (sm->rep_writer != NULL)
        dlog_writer_close(sm->rep_writer);
    if (sm->dir_fd >= 0)
        close(sm->dir_fd); /* releases the flock */
    dedup_free(&sm->dd);
    pthread_mutex_destroy(&sm->mu);
    pthread_cond_destroy(&sm->cv);
    free(sm->stream);
    free(sm->snap_stream);
    free(sm->rep_stream);
    free(sm->replica_id);
    free(sm->snapshot_dir);
    free(sm);
}

/* Stops the apply thread (after waking every waiter) and frees. */
static void sm_shutdown(struct dlog_sm *sm)
{
    pthread_mutex_lock(&sm->mu);
    sm->closing = 1;
    pthread_cond_broadcast(&sm->cv);
    while (sm->waiters > 0)
        pthread_cond_wait(&sm->cv, &sm->mu);
    pthread_mutex_unlock(&sm->mu);
    if (sm->thread_started)
        pthread_join(sm->thread, NULL);
    sm_free(sm);
}

void dlog_sm_close(struct dlog_sm *sm)
{
    if (sm == NULL)
        return;
    if (sm_on_apply_thread(sm)) {
        log_error(SM_LOG, "dlog_sm_close called from a callback of '%s': ignored",
                  sm->stream);
        return;
    }
    sm_shutdown(sm);
}

static int check_args(struct dlog_ns *ns, const char *stream,
                      const struct dlog_sm_callbacks *cb, const struct dlog_sm_options *o,
                      char *msg)
{
    if (ns == NULL || stream == NULL || cb == NULL || cb->apply == NULL) {
        errmsg_copy(msg, "ns, stream, cb and cb->apply are required");
        return DLOG_EINVAL;
    }
    if (cb->version != DLOG_SM_CALLBACKS_VERSION ||
        o->version != DLOG_SM_OPTIONS_VERSION) {
        errmsg_copy(msg, "unknown version of dlog_sm_callbacks or dlog_sm_options");
        return DLOG_EINVAL;
    }
    if (!dlog_stream_name_valid(stream) || strlen(stream) + 9 > DLOG_STREAM_NAME_MAX) {
        errmsg_printf(msg, "invalid stream name '%.64s' (companions add 9 bytes)",
                      stream);
        return DLOG_ENAME;
    }
    int snaps = o->snapshot_every_records > 0 || o->snapshot_every_bytes > 0 ||
                o->shared_snapshots;
    if (snaps && cb->applied_dlsn == NULL &&
        (cb->snapshot == NULL || cb->restore == NULL)) {
        errmsg_copy(msg, "snapshots need the snapshot and restore callbacks");
        return DLOG_EINVAL;
    }
    if (o->shared_snapshots && (cb->snapshot == NULL || cb->restore == NULL)) {
        errmsg_copy(msg, "shared snapshots need the snapshot and restore callbacks");
        return DLOG_EINVAL;
    }
    if (o->replica_id != NULL &&
        (o->replica_id[0] == '\0' || strlen(o->replica_id) > SM_ID_MAX)) {
        errmsg_printf(msg, "replica_id must be 1 to %d bytes", SM_ID_MAX);
        return DLOG_EINVAL;
    }
    return 0;
}

/* Creates (if asked) and looks up the stream; sets stream_id. */
static int find_stream(struct dlog_sm *sm)
{
    struct dlog_stream_info *info;
    if (sm->o.create) {
        struct dlog_stream_config cfg;
        dlog_stream_config_init(&cfg);
        cfg.auto_txid = 1;
        int rv = dlog_stream_create(sm->ns, sm->stream, &cfg);
        if (rv != 0 && rv != DLOG_EEXIST)
            return sm_fail(sm, rv, "create '%s': %s", sm->stream, dlog_errmsg(sm->ns));
    }
    int rv = dlog_stream_describe(sm->ns, sm->stream, &info);
    if (rv != 0)
        return sm_fail(sm, rv, "'%s': %s", sm->stream, dlog_errmsg(sm->ns));
    sm->stream_id = info->id;
    dlog_stream_info_free(info);
    return 0;
}

int dlog_sm_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_sm_callbacks *cb, void *app,
                 const struct dlog_sm_options *opts, struct dlog_sm **out)
{
    struct dlog_sm_options def;
    char msg[DLOG_ERRMSG_SIZE];
    if (out == NULL)
        return DLOG_EINVAL;
    *out = NULL;
    if (opts == NULL) {
        dlog_sm_options_init(&def);
        opts = &def;
    }
    int rv = check_args(ns, stream, cb, opts, msg);
    if (rv != 0) {
        log_warn(SM_LOG, "dlog_sm_open: %s", msg);
        return rv;
    }
    struct dlog_sm *sm = calloc(1, sizeof *sm);
    if (sm == NULL)
        return DLOG_ENOMEM;
    pthread_mutex_init(&sm->mu, NULL);
    pthread_cond_init(&sm->cv, NULL);
    sm->dir_fd = -1;
    dedup_init(&sm->dd);
    sm->ns = ns;
    sm->cb = cb;
    sm->app = app;
    sm->o = *opts;
    if (sm->o.keep_snapshots <= 0)
        sm->o.keep_snapshots = 3;
    sm->ondisk = cb->applied_dlsn != NULL;
    sm->instance = random_u64();
    sm->stream = dupstr(stream, NULL);
    sm->snap_stream = dupstr(stream, ".snap");
    sm->rep_stream = dupstr(stream, ".replicas");
    if (opts->snapshot_dir != NULL) {
        sm->snapshot_dir = dupstr(opts->snapshot_dir, NULL);
        sm->registered = 1;
    }
    if (sm->stream == NULL || sm->snap_stream == NULL || sm->rep_stream == NULL ||
        (opts->snapshot_dir != NULL && sm->snapshot_dir == NULL)) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    sm->o.snapshot_dir = sm->snapshot_dir;
    if ((rv = find_stream(sm)) != 0)
        goto err;
    if (sm->snapshot_dir != NULL && (rv = snap_dir_open(sm)) != 0)
        goto err;
    sm->replica_id = opts->replica_id != NULL   ? dupstr(opts->replica_id, NULL)
                     : sm->snapshot_dir != NULL ? default_replica_id(sm->snapshot_dir)
                                                : dupstr("replica", NULL);
    if (sm->replica_id == NULL) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    sm->o.replica_id = sm->replica_id;
    rv = dlog_writer_open(ns, stream, NULL, &sm->writer);
    if (rv != 0) {
        sm_fail(sm, rv, "open a writer on '%s': %s", stream, dlog_errmsg(ns));
        goto err;
    }
    if (pthread_create(&sm->thread, NULL, apply_main, sm) != 0) {
        rv = sm_fail(sm, DLOG_ENOMEM, "cannot start the apply thread");
        goto err;
    }
    sm->thread_started = 1;
    /* Recovery runs on the apply thread, like every callback. */
    pthread_mutex_lock(&sm->mu);
    while (!sm->ready)
        pthread_cond_wait(&sm->cv, &sm->mu);
    rv = sm->ready_rv;
    pthread_mutex_unlock(&sm->mu);
    if (rv != 0)
        goto err;
    /* Replay up to the stream's end as of now. */
    struct dlog_dlsn target;
    rv = dlog_stream_last_dlsn(ns, stream, &target);
    if (rv == DLOG_EEOF) {
        rv = 0; /* an empty stream: nothing to replay */
    } else if (rv != 0) {
        sm_fail(sm, rv, "'%s': %s", stream, dlog_errmsg(ns));
    } else if ((rv = sm_enter(sm)) == 0) {
        rv = sm_wait_covered(sm, target, -1);
        sm_leave(sm);
    }
    if (rv != 0)
        goto err;
    *out = sm;
    return 0;
err:
    errmsg_now(sm, msg);
    log_warn(SM_LOG, "dlog_sm_open '%s': %s (%s)", stream,
             msg[0] ? msg : dlog_strerror(rv), dlog_errname(rv));
    sm_shutdown(sm);
    return rv;
}
