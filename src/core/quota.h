/*
 * The data-size quota, enforced by every writer before it queues a write
 * (docs/rate-limiting.md, "Quotas").
 *
 * A writer keeps the stream's and the namespace's limits and the bytes each
 * retains as of its last refresh, and counts what it admits since. A thread
 * of the writer's refreshes them every second, so a write never waits for
 * the metadata store while the estimate leaves room: it costs a mutex (a
 * proxy writes on its loop thread; a metadata leader election must not
 * stall it). A refresh that fails keeps the last values. When a write would cross a quota
 * the writer first drains its queue (so nothing it wrote is in flight), reads the exact
 * usage, applies the policy (truncate the oldest sealed segments, or refuse), and refuses
 * with DLOG_EQUOTA if the write still does not fit. So with one writer a
 * stream stops within one entry of its quota; several writers of one
 * namespace can overshoot the namespace quota by what they write in a
 * second.
 */
#ifndef DLOG_CORE_QUOTA_H
#define DLOG_CORE_QUOTA_H

#include <pthread.h>
#include <stdint.h>

#include "core/embedded.h"

struct wquota {
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* stop */
    uint64_t refreshed_ns; /* clock_now_ns() of the last refresh; 0: never */
    struct dlog_limits stream, ns;
    uint64_t stream_used, ns_used; /* bytes retained at the refresh */
    uint64_t since;                /* bytes admitted since the refresh */
    uint64_t admitted;             /* bytes admitted, ever */
    /* the refresher (wquota_start) */
    struct embedded *e;
    char name[DLOG_STREAM_NAME_MAX + 1];
    struct wquota_writer_cbs {
        uint64_t (*pending)(void *arg);
        void *arg;
    } cbs;
    pthread_t thread;
    int started, stop;
};

/* Callbacks into the writer: its queued bytes, and a wait until they are stored. */
struct wquota_writer {
    uint64_t (*pending)(void *arg);
    int (*drain)(void *arg);
    void *arg;
};

int wquota_init(struct wquota *q);
/* Starts the refresher thread (its first round a second from now; the
 * first write reads the usage itself). w is copied; w->pending must stay
 * callable until wquota_destroy. */
int wquota_start(struct wquota *q, struct embedded *e, const char *name,
                 const struct wquota_writer *w, char *errmsg);
/* Stops the refresher (if started) and frees q. */
void wquota_destroy(struct wquota *q);

/*
 * Admits need more bytes to stream name: 0, DLOG_EQUOTA (with the reason in
 * errmsg), or the error of a metadata read or of draining the writer.
 */
int wquota_admit(struct wquota *q, struct embedded *e, const char *name, uint64_t need,
                 const struct wquota_writer *w, char *errmsg);

#endif
