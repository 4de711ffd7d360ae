/*
 * The writers' data-size quota check: see quota.h.
 */
#include "core/quota.h"

#include <string.h>

#include "base/clock.h"

#define REFRESH_NS 1000000000ULL /* re-read limits and usage every second */

int wquota_init(struct wquota *q)
{
    memset(q, 0, sizeof *q);
    return pthread_mutex_init(&q->mu, NULL) == 0 ? 0 : DLOG_ENOMEM;
}

void wquota_destroy(struct wquota *q)
{
    pthread_mutex_destroy(&q->mu);
}

/*
 * Re-reads both limits and the bytes retained. Bytes still queued are read
 * first and counted as admitted since: some may be stored by the time the
 * usage is read and count twice, which errs on the safe side.
 */
static int refresh(struct wquota *q, struct embedded *e, const char *name,
                   const struct wquota_writer *w, char *errmsg)
{
    struct meta_stream ms;
    uint64_t pending = w->pending(w->arg);
    int rv = stream_load(e, name, &ms, errmsg);

    if (rv != 0)
        return rv;
    q->stream = ms.cfg.limits;
    q->stream_used = stream_usage(e, &ms);
    meta_stream_clear(&ms);
    rv = ns_limits_load(e, &q->ns, errmsg);
    q->ns_used = 0;
    if (rv == 0 && q->ns.quota_bytes > 0)
        rv = ns_usage(e, &q->ns_used, errmsg);
    if (rv != 0)
        return rv;
    q->since = pending;
    q->refreshed_ns = clock_now_ns();
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
    if (q->refreshed_ns == 0 || clock_now_ns() - q->refreshed_ns > REFRESH_NS)
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
    if (rv == 0)
        q->since += need;
    pthread_mutex_unlock(&q->mu);
    return rv;
}
