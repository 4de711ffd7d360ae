/*
 * The loop thread's side of the client (see client.h): the queues of
 * requests, reply matching, the connection and its re-establishment.
 *
 * Lists. The loop thread takes requests from client.c (client_conn_take)
 * and moves them to `inflight` (sent, in send order, and in a hash table by
 * request id) when the connection is ready, or to `waiting` (with a
 * deadline) when it is not. A reply takes its request off inflight. When
 * the connection drops, inflight requests fail, or go back to the front of
 * waiting when they are to be resent; waiting is sent in order once the
 * next HELLO succeeds. So the WRITEs of one writer reach the server in the
 * order they were queued, across reconnections too.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "client/client_int.h"

#define TICK_MS   50 /* how often waiting requests' deadlines are checked */
#define TABLE_MIN 256

static const struct net_conn_cbs conn_cbs;
static void on_timer(uv_timer_t *t);
static void on_tick(uv_timer_t *t);

/* ---------------------------------------------------------------- lists */

static void ql_push(struct qlist *l, struct creq *q)
{
    q->next_ = NULL;
    q->prev_ = l->tail;
    if (l->tail != NULL)
        l->tail->next_ = q;
    else
        l->head = q;
    l->tail = q;
}

static void ql_remove(struct qlist *l, struct creq *q)
{
    if (q->prev_ != NULL)
        q->prev_->next_ = q->next_;
    else
        l->head = q->next_;
    if (q->next_ != NULL)
        q->next_->prev_ = q->prev_;
    else
        l->tail = q->prev_;
    q->next_ = q->prev_ = NULL;
}

/* Put all of src in front of dst. */
static void ql_prepend(struct qlist *dst, struct qlist *src)
{
    if (src->head == NULL)
        return;
    if (dst->head != NULL) {
        src->tail->next_ = dst->head;
        dst->head->prev_ = src->tail;
    } else {
        dst->tail = src->tail;
    }
    dst->head = src->head;
    src->head = src->tail = NULL;
}

/* ---------------------------------------------------------------- id table */

static int table_grow(struct client *c)
{
    size_t n = c->table == NULL ? TABLE_MIN : 2 * (c->tmask + 1);
    struct creq **t = calloc(n, sizeof *t);
    if (t == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; c->table != NULL && i <= c->tmask; i++)
        for (struct creq *q = c->table[i], *next; q != NULL; q = next) {
            next = q->hnext_;
            q->hnext_ = t[q->id & (n - 1)];
            t[q->id & (n - 1)] = q;
        }
    free(c->table);
    c->table = t;
    c->tmask = n - 1;
    return 0;
}

static int table_put(struct client *c, struct creq *q)
{
    if ((c->table == NULL || c->tcount > c->tmask) && table_grow(c) != 0 &&
        c->table == NULL)
        return DLOG_ENOMEM;
    q->hnext_ = c->table[q->id & c->tmask];
    c->table[q->id & c->tmask] = q;
    c->tcount++;
    return 0;
}

static struct creq *table_take(struct client *c, uint64_t id)
{
    if (c->table == NULL)
        return NULL;
    for (struct creq **pp = &c->table[id & c->tmask]; *pp != NULL; pp = &(*pp)->hnext_)
        if ((*pp)->id == id) {
            struct creq *q = *pp;
            *pp = q->hnext_;
            c->tcount--;
            return q;
        }
    return NULL;
}

static void table_clear(struct client *c)
{
    if (c->table != NULL)
        memset(c->table, 0, (c->tmask + 1) * sizeof *c->table);
    c->tcount = 0;
}

/* ---------------------------------------------------------------- loop: sending */

static void set_lasterr(struct client *c, const char *msg)
{
    pthread_mutex_lock(&c->mu);
    errmsg_copy(c->lasterr, msg);
    pthread_mutex_unlock(&c->mu);
}

static void update_tick(struct client *c)
{
    if (c->waiting.head != NULL && !c->tick_on) {
        uv_timer_start(&c->tick, on_tick, TICK_MS, TICK_MS);
        c->tick_on = 1;
    } else if (c->waiting.head == NULL && c->tick_on) {
        uv_timer_stop(&c->tick);
        c->tick_on = 0;
    }
}

static void wait_for_conn(struct client *c, struct creq *q)
{
    if (q->deadline == 0)
        q->deadline = clock_now_ns() + (uint64_t)CLIENT_WAIT_MS * NS_PER_MS;
    ql_push(&c->waiting, q);
}

/* Send q on the ready connection; it waits for a reconnection if that fails. */
static void send_req(struct client *c, struct creq *q)
{
    if (q->frame->len - WIRE_FRAME_PREFIX > c->max_frame) {
        char msg[DLOG_ERRMSG_SIZE];
        errmsg_printf(msg,
                      "%s request of %zu bytes exceeds the server's frame limit of %zu",
                      wire_type_name(q->type), q->frame->len, c->max_frame);
        client_complete(c, q, DLOG_ETOOBIG, msg);
        return;
    }
    int rv = net_conn_send(c->conn, q->frame);
    if (rv == DLOG_ENOMEM) {
        client_complete(c, q, rv, "out of memory sending a request");
        return;
    }
    if (rv != 0) { /* the connection is closing: on_close follows */
        wait_for_conn(c, q);
        return;
    }
    if (table_put(c, q) != 0) {
        client_complete(c, q, DLOG_ENOMEM, "out of memory sending a request");
        return;
    }
    ql_push(&c->inflight, q);
}

static void fail_list(struct client *c, struct qlist *l, int status, const char *msg)
{
    while (l->head != NULL) {
        struct creq *q = l->head;
        ql_remove(l, q);
        client_complete(c, q, status, msg);
    }
}

static void on_tick(uv_timer_t *t)
{
    struct client *c = t->data;
    uint64_t now = clock_now_ns();
    char msg[DLOG_ERRMSG_SIZE];
    for (struct creq *q = c->waiting.head, *next; q != NULL; q = next) {
        next = q->next_;
        if (now < q->deadline)
            continue;
        ql_remove(&c->waiting, q);
        int st = q->expire_status ? q->expire_status : DLOG_EUNAVAILABLE;
        pthread_mutex_lock(&c->mu);
        if (st == DLOG_EUNAVAILABLE)
            errmsg_printf(msg, "no connection to dlogd at %s: %s", c->hostlist,
                          c->lasterr[0] ? c->lasterr : "connecting");
        else
            errmsg_printf(msg, "timed out waiting for a connection to dlogd");
        pthread_mutex_unlock(&c->mu);
        client_complete(c, q, st, msg);
    }
    update_tick(c);
}

/* ---------------------------------------------------------------- loop: connection */

static void schedule_attempt(struct client *c, unsigned delay_ms)
{
    uv_timer_start(&c->timer, on_timer, delay_ms, 0);
}

/* The attempt failed: the next host, after the backoff, which doubles. */
static void retry_later(struct client *c, const char *msg)
{
    set_lasterr(c, msg);
    c->cur_host = (c->cur_host + 1) % c->nhosts;
    schedule_attempt(c, c->backoff_ms);
    c->backoff_ms = 2 * c->backoff_ms < CLIENT_BACKOFF_MAX_MS ? 2 * c->backoff_ms
                                                              : CLIENT_BACKOFF_MAX_MS;
}

/* Connect to ip (numeric) for the current host. */
static void connect_ip(struct client *c, const char *ip)
{
    struct host *h = &c->hosts[c->cur_host];
    char msg[DLOG_ERRMSG_SIZE];
    int rv = net_connect(&c->loop, ip, h->port, WIRE_MAX_FRAME_DEFAULT, &conn_cbs, c,
                         &c->conn);
    if (rv != 0) {
        c->conn = NULL;
        errmsg_printf(msg, "cannot connect to %s:%d: %s", h->name, h->port,
                      dlog_strerror(rv));
        retry_later(c, msg);
        return;
    }
    pthread_mutex_lock(&c->mu);
    c->state = CONN_CONNECTING;
    pthread_mutex_unlock(&c->mu);
    schedule_attempt(c, CLIENT_CONNECT_MS); /* the attempt's timeout */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct client *c = req->data;
    struct host *h = &c->hosts[c->cur_host];
    char ip[INET6_ADDRSTRLEN] = "", msg[DLOG_ERRMSG_SIZE];
    c->resolving = 0;
    if (status == 0 && res != NULL) {
        if (res->ai_family == AF_INET)
            uv_ip4_name((const struct sockaddr_in *)res->ai_addr, ip, sizeof ip);
        else if (res->ai_family == AF_INET6)
            uv_ip6_name((const struct sockaddr_in6 *)res->ai_addr, ip, sizeof ip);
    }
    uv_freeaddrinfo(res);
    pthread_mutex_lock(&c->mu);
    int stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    if (stopping)
        return;
    if (ip[0] == '\0') {
        errmsg_printf(msg, "cannot resolve %s: %s", h->name,
                      status ? uv_strerror(status) : "no address");
        retry_later(c, msg);
        return;
    }
    connect_ip(c, ip);
}

/* One connection attempt to the current host: resolve its name, connect. */
static void attempt(struct client *c)
{
    struct host *h = &c->hosts[c->cur_host];
    struct in6_addr a6;
    struct in_addr a4;
    char msg[DLOG_ERRMSG_SIZE];
    if (strcmp(h->name, "localhost") == 0 || uv_inet_pton(AF_INET, h->name, &a4) == 0 ||
        uv_inet_pton(AF_INET6, h->name, &a6) == 0) {
        connect_ip(c, h->name);
        return;
    }
    struct addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    c->gai.data = c;
    int rv = uv_getaddrinfo(&c->loop, &c->gai, on_resolved, h->name, NULL, &hints);
    if (rv != 0) {
        errmsg_printf(msg, "cannot resolve %s: %s", h->name, uv_strerror(rv));
        retry_later(c, msg);
        return;
    }
    c->resolving = 1; /* on_resolved goes on */
}

static void on_timer(uv_timer_t *t)
{
    struct client *c = t->data;
    if (c->resolving)
        return;
    if (c->conn == NULL) {
        attempt(c);
    } else if (c->redirect_host >= 0 && c->state == CONN_READY) {
        errmsg_printf(c->conn->errmsg, "redirected; replies still in flight after %d ms",
                      CLIENT_DRAIN_MS);
        net_conn_close(c->conn, DLOG_EUNAVAILABLE);
    } else if (c->state == CONN_CONNECTING) {
        struct host *h = &c->hosts[c->cur_host];
        errmsg_printf(c->conn->errmsg, "%s:%d did not answer HELLO within %d ms", h->name,
                      h->port, CLIENT_CONNECT_MS);
        net_conn_close(c->conn, DLOG_EUNAVAILABLE);
    }
}

static void on_connect(struct net_conn *nc, int status)
{
    struct client *c = nc->data;
    if (status != 0)
        return; /* on_close follows */
    struct wire_msg m;
    struct creq q;
    char msg[DLOG_ERRMSG_SIZE];
    memset(&m, 0, sizeof m);
    memset(&q, 0, sizeof q);
    m.type = WIRE_HELLO;
    m.u.hello.min_version = WIRE_VERSION_MIN;
    m.u.hello.max_version = WIRE_VERSION_MAX;
    m.u.hello.client_name = "libdlog " PACKAGE_VERSION;
    int rv = client_req_init(c, &q, &m, msg);
    if (rv == 0) {
        c->hello_id = q.id;
        rv = net_conn_send(nc, q.frame);
        if (rv != 0)
            errmsg_printf(msg, "cannot send HELLO: %s", dlog_strerror(rv));
    }
    client_req_clear(&q);
    if (rv != 0) {
        errmsg_copy(nc->errmsg, msg);
        net_conn_close(nc, rv);
    }
}

static void on_hello(struct client *c, struct net_conn *nc, const struct wire_msg *m)
{
    struct host *h = &c->hosts[c->cur_host];
    if (m->status != 0) {
        errmsg_printf(nc->errmsg, "%s:%d refused HELLO: %s", h->name, h->port,
                      m->err.message ? m->err.message : dlog_strerror(m->status));
        pthread_mutex_lock(&c->mu);
        if (!c->ever_ready)
            c->fatal = m->status;
        pthread_mutex_unlock(&c->mu);
        net_conn_close(nc, m->status);
        return;
    }
    uv_timer_stop(&c->timer);
    c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
    pthread_mutex_lock(&c->mu);
    if (c->ever_ready)
        log_info("client", "reconnected to %s:%d", h->name, h->port);
    c->state = CONN_READY;
    c->ever_ready = 1;
    c->max_frame = m->u.hello_rep.max_frame;
    c->lasterr[0] = '\0';
    pthread_cond_broadcast(&c->cv);
    pthread_mutex_unlock(&c->mu);
    /* What waited goes out in order: resends first, then new requests. */
    struct qlist l = c->waiting;
    c->waiting.head = c->waiting.tail = NULL;
    while (l.head != NULL && c->conn == nc && !nc->closing) {
        struct creq *q = l.head;
        ql_remove(&l, q);
        send_req(c, q);
    }
    ql_prepend(&c->waiting, &l);
    update_tick(c);
}

/* Deliver a decoded reply to its request. */
static void on_reply(struct client *c, struct creq *q, const struct wire_msg *m)
{
    int status = m->status;
    const char *msg = m->err.message;
    if (status == 0 && q->on_reply != NULL) {
        status = q->on_reply(q, m);
        msg = status == DLOG_ENOMEM ? "out of memory taking a reply" : NULL;
    }
    if ((m->type == WIRE_WRITE && m->status == 0) ||
        (m->type == WIRE_READ && m->status == 0 && m->u.read_rep.nrecs > 0))
        client_notify(c);
    q->rep = m;
    client_complete(c, q, status, msg);
}

/* ---------------------------------------------------------------- loop: redirects */

/* The index of host "host:port" in the list, added if new; -1 if it cannot
 * be parsed or the list is full. */
static int host_index(struct client *c, const char *addr)
{
    struct host h;
    if (net_parse_hostport(addr, h.name, sizeof h.name, &h.port) != 0 || h.port == 0)
        return -1;
    for (int i = 0; i < c->nhosts; i++)
        if (c->hosts[i].port == h.port && strcmp(c->hosts[i].name, h.name) == 0)
            return i;
    if (c->nhosts >= CLIENT_MAX_HOSTS)
        return -1;
    struct host *n = realloc(c->hosts, (size_t)(c->nhosts + 1) * sizeof *n);
    if (n == NULL)
        return -1;
    c->hosts = n;
    c->hosts[c->nhosts] = h;
    return c->nhosts++;
}

/*
 * A DLOG_ENOTOWNER reply to q: q goes to the owner it names, with the other
 * requests redirected meanwhile, once the connection has drained. 0 when q
 * cannot be redirected (no usable address, too many redirects, closing):
 * its caller gets the status.
 */
static int redirect(struct client *c, struct creq *q, const struct wire_msg *m)
{
    int stopping;
    pthread_mutex_lock(&c->mu);
    stopping = c->stopping;
    pthread_mutex_unlock(&c->mu);
    uint64_t now = clock_now_ns();
    if (stopping || m->err.address == NULL || q->redirects_ >= CLIENT_MAX_REDIRECTS ||
        (q->redirects_ > 0 && now - q->redirect_ns_ > CLIENT_WAIT_MS * NS_PER_MS))
        return 0;
    int to = host_index(c, m->err.address);
    if (to < 0 || to == c->cur_host)
        return 0;
    if (q->redirects_++ == 0)
        q->redirect_ns_ = now;
    ql_push(&c->redirected, q);
    if (c->redirect_host < 0) {
        log_info("client", "redirected to %s: %s", m->err.address,
                 m->err.message ? m->err.message : "not the owner");
        uv_timer_start(&c->timer, on_timer, CLIENT_DRAIN_MS, 0);
    }
    c->redirect_host = to;
    return 1;
}

/* While redirecting: once nothing is in flight, leave for the new host. */
static void drained(struct client *c)
{
    if (c->redirect_host < 0 || c->inflight.head != NULL || c->conn == NULL)
        return;
    errmsg_printf(c->conn->errmsg, "redirected to %s:%d", c->hosts[c->redirect_host].name,
                  c->hosts[c->redirect_host].port);
    net_conn_close(c->conn, 0);
}

/* Requests in id order (the order they were made): a's and b's merged.
 * Both lists are short (the requests of one drain). */
static struct qlist merge_by_id(struct qlist a, struct qlist b)
{
    struct qlist out = {NULL, NULL};
    while (a.head != NULL || b.head != NULL) {
        struct qlist *from = b.head == NULL             ? &a
                             : a.head == NULL           ? &b
                             : a.head->id <= b.head->id ? &a
                                                        : &b;
        struct creq *q = from->head;
        ql_remove(from, q);
        ql_push(&out, q);
    }
    return out;
}

static void on_frame(struct net_conn *nc, const uint8_t *frame, size_t len)
{
    struct client *c = nc->data;
    struct wire_msg m;
    char msg[DLOG_ERRMSG_SIZE];
    /* Decoded in place: the reply's byte fields point into net's buffer,
     * valid during this call, which is when on_reply and cb run. */
    int rv = wire_decode_body(frame, len, NULL, &m, msg);
    if (rv == 0 && !m.is_reply) {
        errmsg_printf(msg, "a %s request from the server", wire_type_name(m.type));
        rv = DLOG_EPROTO;
    }
    if (rv == 0 && m.type == WIRE_ERROR) {
        errmsg_printf(msg, "server error: %s",
                      m.err.message ? m.err.message : dlog_strerror(m.status));
        rv = m.status ? m.status : DLOG_EPROTO;
    }
    if (rv == 0 && m.request_id == c->hello_id && m.type == WIRE_HELLO) {
        on_hello(c, nc, &m);
        wire_msg_free(&m);
        return;
    }
    struct creq *q = m.request_id != 0 ? table_take(c, m.request_id) : NULL;
    if (q == NULL) {
        if (rv != 0) { /* nothing to pin it on: the connection cannot be trusted */
            log_warn("client", "bad frame from %s: %s", nc->peer, msg);
            errmsg_copy(nc->errmsg, msg);
            net_conn_close(nc, rv < 0 ? rv : DLOG_EPROTO);
        } else {
            log_warn("client", "reply to unknown request %llu from %s",
                     (unsigned long long)m.request_id, nc->peer);
        }
        wire_msg_free(&m);
        return;
    }
    ql_remove(&c->inflight, q);
    if (rv != 0) {
        errmsg_wrapf(msg, "bad %s reply", wire_type_name(q->type));
        client_complete(c, q, rv < 0 ? rv : DLOG_EPROTO, msg);
    } else if (m.status != DLOG_ENOTOWNER || !redirect(c, q, &m)) {
        on_reply(c, q, &m);
    }
    wire_msg_free(&m);
    drained(c);
}

static void on_close(struct net_conn *nc, int status)
{
    struct client *c = nc->data;
    struct host *h = &c->hosts[c->cur_host];
    char msg[DLOG_ERRMSG_SIZE];
    if (nc != c->conn)
        return;
    c->conn = NULL;
    uv_timer_stop(&c->timer);
    if (nc->errmsg[0] != '\0')
        errmsg_printf(msg, "%s", nc->errmsg);
    else
        errmsg_printf(msg, "connection to %s:%d closed: %s", h->name, h->port,
                      status ? dlog_strerror(status) : "by the server");
    pthread_mutex_lock(&c->mu);
    int was_ready = c->state == CONN_READY, stopping = c->stopping;
    if (was_ready)
        c->down_since = clock_now_ns();
    c->state = CONN_DOWN;
    errmsg_copy(c->lasterr, msg);
    pthread_mutex_unlock(&c->mu);
    int moving = c->redirect_host >= 0 && !stopping;
    if (was_ready && !moving)
        log_warn("client", "%s", msg);
    /* In flight: resend those marked so (once), fail the others. */
    struct qlist again = {NULL, NULL};
    table_clear(c);
    uint64_t deadline = clock_now_ns() + (uint64_t)CLIENT_WAIT_MS * NS_PER_MS;
    while (c->inflight.head != NULL) {
        struct creq *q = c->inflight.head;
        ql_remove(&c->inflight, q);
        if (q->resend && !q->resent_ && !stopping) {
            q->resent_ = 1;
            q->deadline = deadline;
            ql_push(&again, q);
        } else {
            client_complete(c, q, stopping ? DLOG_ECLOSED : DLOG_EUNAVAILABLE, msg);
        }
    }
    if (c->redirected.head != NULL) { /* first, in the order they were made */
        struct qlist r = c->redirected;
        c->redirected.head = c->redirected.tail = NULL;
        for (struct creq *q = r.head; q != NULL; q = q->next_)
            q->deadline = deadline;
        again = merge_by_id(r, again);
    }
    ql_prepend(&c->waiting, &again);
    update_tick(c);
    if (moving) { /* straight to the owner, no backoff */
        c->cur_host = c->redirect_host;
        c->redirect_host = -1;
        schedule_attempt(c, 0);
    } else if (!stopping) {
        c->redirect_host = -1;
        retry_later(c, msg);
    }
}

static const struct net_conn_cbs conn_cbs = {on_frame, on_close, on_connect};

/* ---------------------------------------------------------------- entry points */

void client_conn_init(struct client *c)
{
    uv_timer_init(&c->loop, &c->timer);
    uv_timer_init(&c->loop, &c->tick);
    c->timer.data = c->tick.data = c;
    c->backoff_ms = CLIENT_BACKOFF_MIN_MS;
    c->redirect_host = -1;
    schedule_attempt(c, 0); /* the first attempt, at once */
}

void client_conn_take(struct client *c, struct creq *q)
{
    if (c->state == CONN_READY && c->conn != NULL && c->redirect_host < 0)
        send_req(c, q);
    else
        wait_for_conn(c, q);
    update_tick(c);
}

void client_conn_stop(struct client *c)
{
    fail_list(c, &c->redirected, DLOG_ECLOSED, "the namespace is closing");
    fail_list(c, &c->waiting, DLOG_ECLOSED, "the namespace is closing");
    table_clear(c);
    fail_list(c, &c->inflight, DLOG_ECLOSED, "the namespace is closing");
    if (c->conn != NULL) { /* its on_close has nothing left to do */
        struct net_conn *nc = c->conn;
        c->conn = NULL;
        net_conn_close(nc, 0);
    }
    if (c->resolving)
        uv_cancel((uv_req_t *)&c->gai); /* on_resolved still runs */
    uv_close((uv_handle_t *)&c->timer, NULL);
    uv_close((uv_handle_t *)&c->tick, NULL);
}
