/*
 * The API side of the remote backend's machinery (see client.h): building
 * and queueing requests, waiting for them, the change counter, and the
 * namespace's open and close with its loop thread. The loop's side of the
 * queues and the connection is in client_conn.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "client/client_int.h"

/* ---------------------------------------------------------------- requests */

int client_req_init(struct client *c, struct creq *q, struct wire_msg *m, char *errmsg)
{
    struct wire_limits lim;
    struct bytes b;
    wire_limits_init(&lim);
    pthread_mutex_lock(&c->mu);
    m->request_id = ++c->next_id;
    lim.max_frame = c->max_frame;
    pthread_mutex_unlock(&c->mu);
    m->version = WIRE_VERSION_MAX;
    m->is_reply = 0;
    m->status = 0;
    /* Size the buffer once: a WRITE is its records plus a few bytes each. */
    size_t want = 256;
    if (m->type == WIRE_WRITE)
        for (size_t i = 0; i < m->u.write.nrecs; i++)
            want += m->u.write.recs[i].len + m->u.write.recs[i].key_len + 32;
    if (bytes_init_rbuf(&b, want) != 0)
        return DLOG_ENOMEM;
    int rv = wire_encode(m, &lim, &b, errmsg);
    if (rv != 0) {
        bytes_free(&b);
        if (rv == DLOG_ETOOBIG)
            errmsg_printf(errmsg,
                          "%s request exceeds the server's frame limit of %zu bytes",
                          wire_type_name(m->type), lim.max_frame);
        return rv;
    }
    q->id = m->request_id;
    q->type = m->type;
    q->frame = rbuf_adopt(&b);
    return 0;
}

void client_req_clear(struct creq *q)
{
    rbuf_unref(q->frame);
    q->frame = NULL;
}

void client_complete(struct client *c, struct creq *q, int status, const char *msg)
{
    q->status = status;
    if (status != 0)
        errmsg_copy(q->errmsg, msg != NULL ? msg : dlog_strerror(status));
    if (q->cb != NULL) {
        q->cb(q);
        return;
    }
    pthread_mutex_lock(&c->mu);
    q->done_ = 1;
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
}

int client_submit(struct client *c, struct creq *q)
{
    pthread_mutex_lock(&c->mu);
    if (c->stopping) {
        pthread_mutex_unlock(&c->mu);
        errmsg_copy(q->errmsg, "the namespace is closing");
        return DLOG_ECLOSED;
    }
    q->done_ = 0;
    q->rep = NULL;
    q->next_ = NULL;
    if (c->subq.tail != NULL)
        c->subq.tail->next_ = q;
    else
        c->subq.head = q;
    c->subq.tail = q;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    return 0;
}

int client_wait(struct client *c, struct creq *q)
{
    pthread_mutex_lock(&c->mu);
    while (!q->done_)
        pthread_cond_wait(&c->cv, &c->mu);
    pthread_mutex_unlock(&c->mu);
    return q->status;
}

int client_on_loop(struct client *c)
{
    return pthread_equal(pthread_self(), c->thread);
}

int client_call(struct client *c, struct creq *q, struct wire_msg *m, char *errmsg)
{
    if (client_on_loop(c)) {
        errmsg_printf(errmsg,
                      "blocking call from a write callback on the client's thread");
        return DLOG_EBUSY;
    }
    int rv = client_req_init(c, q, m, errmsg);
    if (rv == DLOG_ENOMEM)
        errmsg_printf(errmsg, "out of memory encoding a request");
    if (rv != 0)
        return rv;
    rv = client_submit(c, q);
    if (rv == 0)
        rv = client_wait(c, q);
    if (rv != 0)
        errmsg_copy(errmsg, q->errmsg);
    return rv;
}

int client_ready(struct client *c, uint64_t *down_ms)
{
    pthread_mutex_lock(&c->mu);
    int ready = c->state == CONN_READY;
    uint64_t now = clock_now_ns();
    if (down_ms != NULL)
        *down_ms = ready || now < c->down_since ? 0 : (now - c->down_since) / NS_PER_MS;
    pthread_mutex_unlock(&c->mu);
    return ready;
}

/* ---------------------------------------------------------------- notify */

void client_notify(struct client *c)
{
    pthread_mutex_lock(&c->nmu);
    c->nseq++;
    pthread_cond_broadcast(&c->ncv);
    pthread_mutex_unlock(&c->nmu);
}

uint32_t client_notify_seq(struct client *c)
{
    pthread_mutex_lock(&c->nmu);
    uint32_t s = c->nseq;
    pthread_mutex_unlock(&c->nmu);
    return s;
}

int client_notify_wait(struct client *c, uint32_t seen, int timeout_ms)
{
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    struct timespec ts;
    clock_abs_timespec(deadline, &ts);
    pthread_mutex_lock(&c->nmu);
    while (c->nseq == seen && clock_ms_left(deadline) != 0)
        pthread_cond_timedwait(&c->ncv, &c->nmu, &ts);
    pthread_mutex_unlock(&c->nmu);
    return 0;
}

/* ---------------------------------------------------------------- the loop */

static void on_async(uv_async_t *a)
{
    struct client *c = a->data;
    pthread_mutex_lock(&c->mu);
    struct creq *list = c->subq.head;
    c->subq.head = c->subq.tail = NULL;
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    while (list != NULL) {
        struct creq *q = list;
        list = q->next_;
        if (stopping)
            client_complete(c, q, DLOG_ECLOSED, "the namespace is closing");
        else
            client_conn_take(c, q);
    }
    if (stopping && !uv_is_closing((uv_handle_t *)&c->async)) {
        client_conn_stop(c);
        uv_close((uv_handle_t *)&c->async, NULL);
    }
}

static void *loop_main(void *arg)
{
    struct client *c = arg;
    uv_run(&c->loop, UV_RUN_DEFAULT);
    return NULL;
}

/* ---------------------------------------------------------------- open and close */

static int parse_uri(struct client *c, const char *uri, char *errmsg)
{
    const char *list = uri + strlen("dlog://");
    size_t n = 1;
    for (const char *s = list; *s; s++)
        n += *s == ',';
    c->hosts = calloc(n, sizeof *c->hosts);
    if (c->hosts == NULL)
        return DLOG_ENOMEM;
    for (const char *p = list;;) {
        const char *end = strchr(p, ',');
        size_t len = end != NULL ? (size_t)(end - p) : strlen(p);
        char one[HOST_MAX + 16];
        struct host *h = &c->hosts[c->nhosts];
        if (end == NULL && len > 0 && p[len - 1] == '/') /* "dlog://h:p/" */
            len--;
        if (len == 0 || len >= sizeof one)
            goto bad;
        memcpy(one, p, len);
        one[len] = '\0';
        if (net_parse_hostport(one, h->name, sizeof h->name, &h->port) != 0 ||
            h->port == 0)
            goto bad;
        c->nhosts++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    snprintf(c->hostlist, sizeof c->hostlist, "%s", list);
    return 0;
bad:
    errmsg_printf(errmsg,
                  "bad namespace URI '%.100s': use dlog://host:port[,host:port...]", uri);
    return DLOG_EURI;
}

static void client_free(struct client *c)
{
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->nmu);
    pthread_cond_destroy(&c->ncv);
    free(c->table);
    free(c->hosts);
    free(c);
}

/* Stop the loop thread: fail what is left, close the handles, join. */
static void client_stop(struct client *c)
{
    pthread_mutex_lock(&c->mu);
    c->stopping = 1;
    pthread_mutex_unlock(&c->mu);
    uv_async_send(&c->async);
    pthread_join(c->thread, NULL);
    int rv = uv_loop_close(&c->loop);
    if (rv != 0)
        log_error("client", "uv_loop_close: %s", uv_strerror(rv));
}

int client_open(const char *uri, struct dlog_ns *ns, char *errmsg)
{
    struct client *c = calloc(1, sizeof *c);
    int rv;
    if (c == NULL)
        return DLOG_ENOMEM;
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->cv, NULL);
    pthread_mutex_init(&c->nmu, NULL);
    pthread_cond_init(&c->ncv, NULL);
    c->ns = ns;
    c->max_frame = WIRE_MAX_FRAME_DEFAULT;
    c->down_since = clock_now_ns();
    rv = parse_uri(c, uri, errmsg);
    if (rv != 0)
        goto err;
    if (uv_loop_init(&c->loop) != 0) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    uv_async_init(&c->loop, &c->async, on_async);
    c->async.data = c;
    client_conn_init(c);
    /* The loop thread blocks every signal: the application's handlers run
     * on its own threads, and a write to a closed connection gives EPIPE
     * there instead of killing the process with SIGPIPE. */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int perr = pthread_create(&c->thread, NULL, loop_main, c);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (perr != 0) {
        uv_close((uv_handle_t *)&c->async, NULL);
        uv_close((uv_handle_t *)&c->timer, NULL);
        uv_close((uv_handle_t *)&c->tick, NULL);
        uv_run(&c->loop, UV_RUN_DEFAULT);
        uv_loop_close(&c->loop);
        rv = DLOG_ENOMEM;
        goto err;
    }
    /* Wait for the first HELLO. */
    uint64_t deadline = clock_deadline_ms(CLIENT_WAIT_MS);
    struct timespec ts;
    clock_abs_timespec(deadline, &ts);
    pthread_mutex_lock(&c->mu);
    while (!c->ever_ready && !c->fatal && clock_ms_left(deadline) != 0)
        pthread_cond_timedwait(&c->cv, &c->mu, &ts);
    int ok = c->ever_ready, fatal = c->fatal;
    char last[DLOG_ERRMSG_SIZE];
    errmsg_copy(last, c->lasterr);
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        client_stop(c);
        if (fatal != 0) {
            errmsg_copy(errmsg, last);
            rv = fatal;
        } else {
            errmsg_printf(errmsg, "no dlogd answered at %s within %d ms: %s", c->hostlist,
                          CLIENT_WAIT_MS, last[0] ? last : "no reply");
            rv = DLOG_EUNAVAILABLE;
        }
        goto err;
    }
    ns->impl = c;
    ns->ops = &client_ops;
    return 0;
err:
    client_free(c);
    ns->impl = NULL;
    return rv;
}

void client_close(struct dlog_ns *ns)
{
    struct client *c = client_of(ns);
    if (c == NULL)
        return;
    client_stop(c);
    client_free(c);
    ns->impl = NULL;
}
