/*
 * The writers' data-size quota check: see quota.h.
 */
#include "core/quota.h"

#include <stdio.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"

#define REFRESH_MS 1000 /* re-read limits and usage every second */

int wquota_init(struct wquota *q)
{
    memset(q, 0, sizeof *q);
    if (pthread_mutex_init(&q->mu, NULL) != 0)
        return DLOG_ENOMEM;
    pthread_cond_init(&q->cv, NULL); /* clock_abs_timespec is CLOCK_REALTIME based */
    return 0;
}

void wquota_destroy(struct wquota *q)
{
    if (q->started) {
        pthread_mutex_lock(&q->mu);
        q->stop = 1;
        pthread_cond_signal(&q->cv);
        pthread_mutex_unlock(&q->mu);
        pthread_join(q->thread, NULL);
    }
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
}

/* What a refresh reads, outside the lock. */
struct qread {
    struct dlog_limits stream, ns;
    uint64_t stream_used, ns_used;
};

static int read_usage(struct embedded *e, const char *name, struct qread *r, char *errmsg)
{
    struct meta_stream ms;
    int rv = stream_load(e, name, &ms, errmsg);

    if (rv != 0)
        return rv;
    r->stream = ms.cfg.limits;
    r->stream_used = stream_usage(e, &ms);
    meta_stream_clear(&ms);
    rv = ns_limits_load(e, &r->ns, errmsg);
    r->ns_used = 0;
    if (rv == 0 && r->ns.quota_bytes > 0)
        rv = ns_usage(e, &r->ns_used, errmsg);
    return rv;
}

/*
 * Re-reads both limits and the bytes retained, with q->mu held on entry
 * and exit but not during the reads. Bytes still queued at the start, and
 * every byte admitted during the reads, count as admitted since: some may
 * be stored by the time the usage is read and count twice, which errs on
 * the safe side.
 */
static int refresh_locked(struct wquota *q, struct embedded *e, const char *name,
                          uint64_t (*pending)(void *), void *arg, char *errmsg)
{
    struct qread r;
    uint64_t admitted0 = q->admitted;
    pthread_mutex_unlock(&q->mu);
    uint64_t queued = pending(arg);
    int rv = read_usage(e, name, &r, errmsg);
    pthread_mutex_lock(&q->mu);
    if (rv != 0)
        return rv;
    q->stream = r.stream;
    q->ns = r.ns;
    q->stream_used = r.stream_used;
    q->ns_used = r.ns_used;
    q->since = queued + (q->admitted - admitted0);
    q->refreshed_ns = clock_now_ns();
    return 0;
}

static int refresh(struct wquota *q, struct embedded *e, const char *name,
                   const struct wquota_writer *w, char *errmsg)
{
    return refresh_locked(q, e, name, w->pending, w->arg, errmsg);
}

static void *refresher_main(void *arg)
{
    struct wquota *q = arg;
    char errmsg[DLOG_ERRMSG_SIZE];
    uint64_t seen = 0;
    pthread_mutex_lock(&q->mu);
    while (!q->stop) {
        struct timespec ts;
        clock_abs_timespec(clock_deadline_ms(REFRESH_MS), &ts);
        pthread_cond_timedwait(&q->cv, &q->mu, &ts);
        if (q->stop)
            break;
        if (q->refreshed_ns == 0 || q->admitted == seen)
            continue; /* an idle writer reads nothing (a refusal re-reads first) */
        seen = q->admitted;
        int rv = refresh_locked(q, q->e, q->name, q->cbs.pending, q->cbs.arg, errmsg);
        if (rv != 0) /* the last values stand; the next round tries again */
            log_debug("writer", "stream '%s': quota refresh: %s", q->name, errmsg);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int wquota_start(struct wquota *q, struct embedded *e, const char *name,
                 const struct wquota_writer *w, char *errmsg)
{
    q->e = e;
    snprintf(q->name, sizeof q->name, "%s", name);
    q->cbs.pending = w->pending;
    q->cbs.arg = w->arg;
    (void)errmsg; /* the first write reads the usage (wquota_admit) */
    if (pthread_create(&q->thread, NULL, refresher_main, q) != 0)
        return DLOG_ENOMEM;
    q->started = 1;
    return 0;
}

static int over_stream(const struct wquota *q, uint64_t need)
{
    return q->stream.quota_bytes > 0 &&
           q->stream_used + q->since + need > q->stream.quota_bytes;
}

static int over_ns(const struct wquota *q, uint64_t need)
{
    return q->ns.quota_bytes > 0 && q->ns_used + q->since + need > q->ns.quota_bytes;
}

/* Exact usage with nothing in flight, then the truncating policies. */
static int settle(struct wquota *q, struct embedded *e, const char *name, uint64_t need,
                  const struct wquota_writer *w, char *errmsg)
{
    int rv = w->drain(w->arg);

    if (rv == 0)
        rv = refresh(q, e, name, w, errmsg);
    if (rv == 0 && over_stream(q, need) &&
        q->stream.quota_policy == DLOG_QUOTA_TRUNCATE) {
        rv = stream_make_room(e, name, q->stream.quota_bytes, need, errmsg);
        if (rv >= 0)
            rv = refresh(q, e, name, w, errmsg);
    }
    if (rv == 0 && over_ns(q, need) && q->ns.quota_policy == DLOG_QUOTA_TRUNCATE) {
        /* This stream gives up what the namespace is over by. */
        uint64_t over = q->ns_used + need - q->ns.quota_bytes;
        uint64_t keep = q->stream_used > over ? q->stream_used - over : 0;
        rv = stream_make_room(e, name, keep + need, need, errmsg);
        if (rv >= 0)
            rv = refresh(q, e, name, w, errmsg);
    }
    return rv < 0 ? rv : 0;
}

int wquota_admit(struct wquota *q, struct embedded *e, const char *name, uint64_t need,
                 const struct wquota_writer *w, char *errmsg)
{
    int rv = 0;

    pthread_mutex_lock(&q->mu);
    if (q->refreshed_ns == 0) /* not started: read now */
        rv = refresh(q, e, name, w, errmsg);
    if (rv == 0 && (over_stream(q, need) || over_ns(q, need)))
        rv = settle(q, e, name, need, w, errmsg);
    if (rv == 0 && over_stream(q, need))
        rv = errmsg_fail(
            errmsg, DLOG_EQUOTA, "stream '%s' quota: %llu bytes retained + %llu > %llu",
            name, (unsigned long long)(q->stream_used + q->since),
            (unsigned long long)need, (unsigned long long)q->stream.quota_bytes);
    else if (rv == 0 && over_ns(q, need))
        rv = errmsg_fail(errmsg, DLOG_EQUOTA,
                         "namespace quota: %llu bytes retained + %llu > %llu",
                         (unsigned long long)(q->ns_used + q->since),
                         (unsigned long long)need, (unsigned long long)q->ns.quota_bytes);
    if (rv == 0) {
        q->since += need;
        q->admitted += need;
    }
    pthread_mutex_unlock(&q->mu);
    return rv;
}
