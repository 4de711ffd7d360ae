/*
 * Where a state machine starts when it opens (runs on the apply thread,
 * before the first apply).
 *
 * Snapshot mode: the candidates are the local snapshot files and the
 * announced shared snapshots. They are tried newest first; one is used
 * when the stream can still be read from its DLSN (not truncated past
 * it), every chunk's checksum verifies, and restore succeeds. A corrupt
 * candidate is skipped for the next older one. With no candidate, the
 * replay starts at the head of the stream, which must not be truncated.
 *
 * On-disk mode: the application's state is already at the DLSN that
 * applied_dlsn returns, D. The framework restores its own state (the
 * exactly-once table) from the newest local snapshot at or below D and
 * rebuilds the rest of the table from the records up to D without
 * applying them; applying starts after D. An empty application state (D
 * is the head) bootstraps from the newest shared snapshot when there is
 * one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "sm/sm_internal.h"

static const char *fmt_dlsn(struct dlog_dlsn d, char *buf)
{
    return dlog_dlsn_format(d, buf, DLOG_DLSN_STRLEN);
}

int sm_open_reader(struct dlog_sm *sm)
{
    struct dlog_reader_options ro;
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_DLSN;
    /* Segments are numbered from 1: {1,0,0} is the very first position,
     * so a stream truncated at all gives DLOG_ETRUNCATED, never a silent
     * start past lost records. */
    ro.start_dlsn = dlsn_is_head(sm->applied) ? (struct dlog_dlsn){1, 0, 0} : sm->applied;
    if (sm->reader != NULL) {
        dlog_reader_close(sm->reader);
        sm->reader = NULL;
    }
    int rv = dlog_reader_open(sm->ns, sm->stream, &ro, &sm->reader);
    if (rv != 0) {
        char d[DLOG_DLSN_STRLEN];
        return sm_fail(sm, rv, "cannot replay '%s' from %s: %s", sm->stream,
                       fmt_dlsn(ro.start_dlsn, d), dlog_errmsg(sm->ns));
    }
    return 0;
}

struct cand {
    struct dlog_dlsn dlsn;
    const struct snap_file *file; /* local, or */
    const struct pub_info *pub;   /* shared */
};

static int newest_cand_first(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    int c = dlog_dlsn_cmp(y->dlsn, x->dlsn);
    if (c != 0)
        return c;
    return (x->file == NULL) - (y->file == NULL); /* local before shared */
}

static void set_applied(struct dlog_sm *sm, struct dlog_dlsn d)
{
    pthread_mutex_lock(&sm->mu);
    sm->applied = d;
    pthread_mutex_unlock(&sm->mu);
}

/*
 * Tries the candidates newest first. Returns 0 when one was restored (the
 * reader is open after it), 1 when none was usable and the state is still
 * untouched, or an error.
 */
static int try_candidates(struct dlog_sm *sm, struct cand *v, size_t n, int app)
{
    char d[DLOG_DLSN_STRLEN];
    int dirty = 0; /* a restore failed half-way: the state is not the empty one */
    if (n > 1)
        qsort(v, n, sizeof *v, newest_cand_first);
    for (size_t i = 0; i < n; i++) {
        const char *what = v[i].file != NULL ? "local" : "shared";
        fmt_dlsn(v[i].dlsn, d);
        /* Can the stream be replayed from there? */
        set_applied(sm, v[i].dlsn);
        int rv = sm_open_reader(sm);
        if (rv == DLOG_ETRUNCATED) {
            log_info(SM_LOG, "'%s': %s snapshot at %s is older than the truncation point",
                     sm->stream, what, d);
            continue;
        }
        if (rv != 0)
            return rv;
        rv = v[i].file != NULL ? snap_local_verify(sm, v[i].file, app)
                               : shared_verify(sm, v[i].pub);
        if (rv == 0) {
            dirty = 1;
            rv = v[i].file != NULL ? snap_local_restore(sm, v[i].file, app)
                                   : shared_restore(sm, v[i].pub, app);
        }
        if (rv == 0) {
            log_info(SM_LOG, "'%s': restored the %s snapshot at %s", sm->stream, what, d);
            return 0;
        }
        if (rv != DLOG_ECORRUPT && rv != DLOG_ETRUNCATED && rv != DLOG_EIO)
            return sm_fail(sm, rv, "restore the %s snapshot at %s of '%s': %s", what, d,
                           sm->stream, dlog_strerror(rv));
        log_warn(SM_LOG, "'%s': %s snapshot at %s is unusable (%s); trying an older one",
                 sm->stream, what, d, dlog_strerror(rv));
    }
    set_applied(sm, DLOG_DLSN_HEAD);
    sm->total = 0;
    if (sm->reader != NULL) {
        dlog_reader_close(sm->reader);
        sm->reader = NULL;
    }
    if (dirty)
        return sm_fail(sm, DLOG_ECORRUPT,
                       "'%s': a snapshot failed while being restored and no other one "
                       "could replace it",
                       sm->stream);
    return 1;
}

/* The candidates: local files (when files is not NULL) and shared snapshots. */
static int gather(struct dlog_sm *sm, struct snap_file *files, size_t nfiles,
                  const struct registry *g, struct dlog_dlsn at_most, struct cand **out,
                  size_t *n)
{
    *out = calloc(nfiles + g->npubs + 1, sizeof **out);
    *n = 0;
    if (*out == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < nfiles; i++)
        if (dlsn_le(files[i].dlsn, at_most))
            (*out)[(*n)++] = (struct cand){files[i].dlsn, &files[i], NULL};
    for (size_t i = 0; i < g->npubs; i++)
        if (dlsn_le(g->pubs[i].dlsn, at_most))
            (*out)[(*n)++] = (struct cand){g->pubs[i].dlsn, NULL, &g->pubs[i]};
    return 0;
}

static int recover_snapshots(struct dlog_sm *sm)
{
    struct snap_file *files = NULL;
    size_t nfiles = 0, n = 0;
    struct registry g;
    struct cand *v = NULL;
    char msg[DLOG_ERRMSG_SIZE];
    memset(&g, 0, sizeof g);
    int rv = 0;
    if (sm->cb->restore != NULL) {
        rv = snap_list(sm, &files, &nfiles);
        if (rv == 0 && (rv = registry_read(sm->ns, sm->rep_stream, &g, msg)) != 0)
            sm_fail(sm, rv, "%s", msg);
        if (rv == 0)
            rv = gather(sm, files, nfiles, &g, DLOG_DLSN_MAX, &v, &n);
        if (rv == 0)
            rv = try_candidates(sm, v, n, 1);
    } else {
        rv = 1;
    }
    if (rv == 1) /* nothing restored: replay everything */
        rv = sm_open_reader(sm);
    free(v);
    free(files);
    registry_free(&g);
    return rv;
}

static int recover_ondisk(struct dlog_sm *sm)
{
    struct dlog_dlsn d = DLOG_DLSN_HEAD;
    struct snap_file *files = NULL;
    size_t nfiles = 0, n = 0;
    struct registry g;
    struct cand *v = NULL;
    char msg[DLOG_ERRMSG_SIZE], ds[DLOG_DLSN_STRLEN];
    memset(&g, 0, sizeof g);
    int rv = sm->cb->applied_dlsn(sm->app, &d);
    if (rv < 0)
        return sm_fail(sm, rv, "applied_dlsn: %s", dlog_strerror(rv));
    /* An empty application: the newest shared snapshot, if any. */
    if (dlsn_is_head(d) && sm->cb->restore != NULL) {
        if ((rv = registry_read(sm->ns, sm->rep_stream, &g, msg)) != 0)
            return sm_fail(sm, rv, "%s", msg);
        rv = gather(sm, NULL, 0, &g, DLOG_DLSN_MAX, &v, &n);
        if (rv == 0)
            rv = try_candidates(sm, v, n, 1);
        free(v);
        v = NULL;
        registry_free(&g);
        if (rv != 1)
            return rv;
    }
    /* The exactly-once table: the newest local snapshot at or below D. */
    memset(&g, 0, sizeof g);
    rv = snap_list(sm, &files, &nfiles);
    if (rv == 0)
        rv = gather(sm, files, nfiles, &g, d, &v, &n);
    if (rv == 0)
        rv = try_candidates(sm, v, n, 0);
    free(v);
    if (rv == 1)
        rv = sm_open_reader(sm);
    if (rv == DLOG_ETRUNCATED && !dlsn_is_head(d)) {
        /* The records before D are gone: start at D with what we have. */
        log_warn(SM_LOG,
                 "'%s': the exactly-once table before %s cannot be rebuilt "
                 "(stream truncated); retries of older proposals may apply again",
                 sm->stream, fmt_dlsn(d, ds));
        set_applied(sm, d);
        rv = sm_open_reader(sm);
    }
    free(files);
    if (rv != 0)
        return rv;
    sm->scan_until = d;
    return 0;
}

int sm_recover(struct dlog_sm *sm)
{
    int rv = sm->ondisk ? recover_ondisk(sm) : recover_snapshots(sm);
    if (rv == 0) {
        char a[DLOG_DLSN_STRLEN];
        log_debug(SM_LOG, "'%s': replaying from %s", sm->stream,
                  fmt_dlsn(sm->applied, a));
    }
    return rv;
}
