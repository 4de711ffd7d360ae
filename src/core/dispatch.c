#include "core/dispatch.h"

#include <stdlib.h>
#include <uv.h>

#include "base/clock.h"
#include "core/core.h"

struct dispatch {
    struct dlog_ns *ns;
    uv_async_t *async; /* freed in its close callback */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct dlog_write_req *wdone, *wdone_tail; /* finished writes */
    struct dlog_read_req *reads;               /* pending async reads */
    int nreads;
    int stop;
    pthread_t notifier;
};

static void run_writes(struct dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    struct dlog_write_req *w = d->wdone;
    d->wdone = d->wdone_tail = NULL;
    pthread_mutex_unlock(&d->mu);
    while (w != NULL) {
        struct dlog_write_req *next = w->next_;
        w->cb(w, w->status);
        w = next;
    }
}

/* Try each pending read once; complete those with data, errors or expired. */
static void run_reads(struct dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    struct dlog_read_req *list = d->reads;
    d->reads = NULL;
    d->nreads = 0;
    pthread_mutex_unlock(&d->mu);
    struct dlog_read_req *keep = NULL;
    while (list != NULL) {
        struct dlog_read_req *req = list;
        list = req->next_;
        struct dlog_reader *r = req->reader_;
        int rv = d->ns->ops->read(r, req->recs, req->max, 0);
        if (rv == DLOG_ETIMEDOUT && clock_ms_left(req->deadline_) != 0) {
            req->next_ = keep;
            keep = req;
            continue;
        }
        r->pending = NULL;
        req->status = rv;
        req->cb(req, rv);
    }
    if (keep != NULL) {
        pthread_mutex_lock(&d->mu);
        while (keep != NULL) {
            struct dlog_read_req *n = keep->next_;
            keep->next_ = d->reads;
            d->reads = keep;
            d->nreads++;
            keep = n;
        }
        pthread_cond_signal(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
}

static void on_async(uv_async_t *h)
{
    struct dispatch *d = h->data;
    if (d == NULL)
        return;
    run_writes(d);
    run_reads(d);
}

static void *notifier_main(void *arg)
{
    struct dispatch *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        if (d->nreads == 0) {
            pthread_cond_wait(&d->cv, &d->mu);
            continue;
        }
        pthread_mutex_unlock(&d->mu);
        uint32_t seen = d->ns->ops->notify_seq(d->ns);
        d->ns->ops->notify_wait(d->ns, seen, DISPATCH_TICK_MS);
        uv_async_send(d->async);
        pthread_mutex_lock(&d->mu);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

int dispatch_open(struct dlog_ns *ns, struct dispatch **out)
{
    struct dispatch *d = calloc(1, sizeof *d);
    uv_async_t *a = calloc(1, sizeof *a);
    if (d == NULL || a == NULL)
        goto nomem;
    if (uv_async_init(ns->opts.loop, a, on_async) != 0)
        goto nomem;
    a->data = d;
    d->async = a;
    d->ns = ns;
    pthread_mutex_init(&d->mu, NULL);
    pthread_cond_init(&d->cv, NULL);
    if (pthread_create(&d->notifier, NULL, notifier_main, d) != 0) {
        uv_close((uv_handle_t *)a, (uv_close_cb)free);
        pthread_mutex_destroy(&d->mu);
        pthread_cond_destroy(&d->cv);
        free(d);
        return DLOG_ENOMEM;
    }
    *out = d;
    return 0;
nomem:
    free(d);
    free(a);
    return DLOG_ENOMEM;
}

void dispatch_close(struct dispatch *d)
{
    pthread_mutex_lock(&d->mu);
    d->stop = 1;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->notifier, NULL);
    run_writes(d);
    /* Reads still pending belong to readers that dlog_close has canceled. */
    d->async->data = NULL;
    uv_close((uv_handle_t *)d->async, (uv_close_cb)free);
    pthread_mutex_destroy(&d->mu);
    pthread_cond_destroy(&d->cv);
    free(d);
}

void dispatch_write_done(struct dispatch *d, struct dlog_write_req *req)
{
    req->next_ = NULL;
    pthread_mutex_lock(&d->mu);
    if (d->wdone_tail != NULL)
        d->wdone_tail->next_ = req;
    else
        d->wdone = req;
    d->wdone_tail = req;
    pthread_mutex_unlock(&d->mu);
    uv_async_send(d->async);
}

void dispatch_read(struct dispatch *d, struct dlog_read_req *req)
{
    pthread_mutex_lock(&d->mu);
    req->next_ = d->reads;
    d->reads = req;
    d->nreads++;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    uv_async_send(d->async);
}

void dispatch_cancel_reader(struct dispatch *d, struct dlog_reader *r)
{
    struct dlog_read_req *found = NULL;
    pthread_mutex_lock(&d->mu);
    for (struct dlog_read_req **pp = &d->reads; *pp != NULL; pp = &(*pp)->next_) {
        if ((*pp)->reader_ == r) {
            found = *pp;
            *pp = found->next_;
            d->nreads--;
            break;
        }
    }
    pthread_mutex_unlock(&d->mu);
    r->pending = NULL;
    if (found != NULL) {
        found->status = DLOG_ECANCELED;
        found->cb(found, DLOG_ECANCELED);
    }
}
