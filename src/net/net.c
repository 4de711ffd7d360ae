/* Length-prefixed frames over libuv TCP, with backpressure. */
#include "net/net.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

struct net_server {
    uv_tcp_t tcp;
    uv_loop_t *loop;
    size_t max_frame;
    net_accept_cb on_accept;
    void *data;
};

struct write_req {
    uv_write_t w;
    struct net_conn *c;
    size_t n;
    size_t bytes;
    struct rbuf *bufs[];
};

static int uv_to_dlog(int uverr)
{
    switch (uverr) {
    case UV_ENOMEM:
        return DLOG_ENOMEM;
    case UV_EOF:
        return 0;
    case UV_ECANCELED:
        return DLOG_ECANCELED;
    default:
        return DLOG_EUNAVAILABLE;
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    struct net_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    if (c->cbs != NULL && c->cbs->on_close != NULL)
        c->cbs->on_close(c, c->close_status);
    for (size_t i = 0; i < c->npend; i++)
        rbuf_unref(c->pend[i]);
    free(c->pend);
    bytes_free(&c->in);
    free(c);
}

void net_conn_close(struct net_conn *c, int status)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->close_status = status;
    c->open_handles = 1;
    if (c->flush_init) {
        c->open_handles++;
        uv_close((uv_handle_t *)&c->flush, on_conn_closed);
    }
    uv_close((uv_handle_t *)&c->tcp, on_conn_closed);
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct net_conn *c = h->data;
    (void)hint;
    size_t want = 64 * 1024;
    if (bytes_reserve(&c->in, want) != 0) {
        buf->base = NULL;
        buf->len = 0;
        return;
    }
    buf->base = (char *)c->in.p + c->in.len;
    buf->len = c->in.cap - c->in.len;
}

/* Deliver every whole frame in c->in; keep the partial tail. */
static void cut_frames(struct net_conn *c)
{
    size_t off = 0;
    while (!c->closing && c->in.len - off >= 4) {
        uint32_t len = get_u32be(c->in.p + off);
        if (len > c->max_frame) {
            errmsg_printf(c->errmsg, "frame of %u bytes exceeds the limit of %zu", len,
                          c->max_frame);
            net_conn_close(c, DLOG_EPROTO);
            return;
        }
        if (c->in.len - off - 4 < len) {
            /* Make room for the whole frame in one buffer. */
            if (off == 0 && bytes_reserve(&c->in, (size_t)len + 4 - c->in.len) != 0) {
                net_conn_close(c, DLOG_ENOMEM);
                return;
            }
            break;
        }
        c->cbs->on_frame(c, c->in.p + off + 4, len);
        off += 4 + (size_t)len;
    }
    if (off > 0 && !c->closing) {
        memmove(c->in.p, c->in.p + off, c->in.len - off);
        c->in.len -= off;
    }
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct net_conn *c = s->data;
    (void)buf;
    if (n < 0) {
        net_conn_close(c, uv_to_dlog((int)n));
        return;
    }
    if (n == 0)
        return;
    c->in.len += (size_t)n;
    cut_frames(c);
}

static void start_reading(struct net_conn *c)
{
    if (!c->reading && !c->closing && !c->held) {
        if (uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) == 0)
            c->reading = 1;
    }
}

static void stop_reading(struct net_conn *c)
{
    if (c->reading) {
        uv_read_stop((uv_stream_t *)&c->tcp);
        c->reading = 0;
    }
}

static void write_cb(uv_write_t *w, int status)
{
    struct write_req *wr = (struct write_req *)w;
    struct net_conn *c = wr->c;
    c->outq -= wr->bytes;
    for (size_t i = 0; i < wr->n; i++)
        rbuf_unref(wr->bufs[i]);
    free(wr);
    if (status < 0) {
        net_conn_close(c, uv_to_dlog(status));
        return;
    }
    if (c->close_when_sent && c->outq == 0) {
        net_conn_close(c, 0);
        return;
    }
    if (c->paused && !c->held && c->outq <= NET_OUTQ_LOW) {
        c->paused = 0;
        start_reading(c);
    }
}

/* Early in the next loop iteration: everything queued goes out in one writev. */
static void on_flush(uv_idle_t *h)
{
    struct net_conn *c = h->data;
    uv_idle_stop(h);
    c->flush_active = 0;
    if (c->npend == 0 || c->closing)
        return;
    uv_buf_t stackbufs[64], *bufs = stackbufs;
    struct write_req *wr = malloc(sizeof *wr + c->npend * sizeof(struct rbuf *));
    if (c->npend > 64)
        bufs = malloc(c->npend * sizeof *bufs);
    if (wr == NULL || bufs == NULL) {
        free(wr);
        if (bufs != stackbufs)
            free(bufs);
        net_conn_close(c, DLOG_ENOMEM);
        return;
    }
    wr->c = c;
    wr->n = c->npend;
    wr->bytes = 0;
    for (size_t i = 0; i < c->npend; i++) {
        wr->bufs[i] = c->pend[i];
        wr->bytes += c->pend[i]->len;
        bufs[i] = uv_buf_init((char *)c->pend[i]->data, (unsigned)c->pend[i]->len);
    }
    c->npend = 0;
    int rv = uv_write(&wr->w, (uv_stream_t *)&c->tcp, bufs, (unsigned)wr->n, write_cb);
    if (bufs != stackbufs)
        free(bufs);
    if (rv != 0) {
        c->outq -= wr->bytes;
        for (size_t i = 0; i < wr->n; i++)
            rbuf_unref(wr->bufs[i]);
        free(wr);
        net_conn_close(c, uv_to_dlog(rv));
    }
}

int net_conn_send(struct net_conn *c, struct rbuf *buf)
{
    if (c->closing)
        return DLOG_ECLOSED;
    if (c->npend == c->pend_cap) {
        size_t cap = c->pend_cap ? c->pend_cap * 2 : 16;
        struct rbuf **p = realloc(c->pend, cap * sizeof *p);
        if (p == NULL)
            return DLOG_ENOMEM;
        c->pend = p;
        c->pend_cap = cap;
    }
    if (!c->flush_init) {
        uv_idle_init(c->loop, &c->flush);
        c->flush.data = c;
        c->flush_init = 1;
    }
    if (!c->flush_active) {
        uv_idle_start(&c->flush, on_flush);
        c->flush_active = 1;
    }
    c->pend[c->npend++] = rbuf_ref(buf);
    c->outq += buf->len;
    if (c->outq > NET_OUTQ_HIGH && !c->paused) {
        /* The peer is not reading: stop taking its requests. */
        c->paused = 1;
        stop_reading(c);
    }
    return 0;
}

void net_conn_close_when_sent(struct net_conn *c)
{
    stop_reading(c);
    c->held = 1;
    c->close_when_sent = 1;
    if (c->outq == 0)
        net_conn_close(c, 0);
}

void net_conn_pause(struct net_conn *c, int pause)
{
    c->held = pause;
    if (pause)
        stop_reading(c);
    else if (!c->paused)
        start_reading(c);
}

static struct net_conn *conn_new(uv_loop_t *loop, size_t max_frame)
{
    struct net_conn *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    c->loop = loop;
    c->max_frame = max_frame ? max_frame : NET_FRAME_MAX_DEFAULT;
    bytes_init(&c->in);
    uv_tcp_init(loop, &c->tcp);
    c->tcp.data = c;
    return c;
}

static void peer_name(struct net_conn *c)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof ip);
            port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        }
    }
    snprintf(c->peer, sizeof c->peer, "%s:%d", ip, port);
}

static void on_connection(uv_stream_t *ls, int status)
{
    struct net_server *s = ls->data;
    if (status < 0)
        return;
    struct net_conn *c = conn_new(s->loop, s->max_frame);
    if (c == NULL)
        return;
    if (uv_accept(ls, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_name(c);
    s->on_accept(s, c);
    if (c->cbs == NULL) {
        net_conn_close(c, DLOG_EINTERNAL);
        return;
    }
    start_reading(c);
}

int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || (size_t)(colon - s) >= hostlen)
        return DLOG_EINVAL;
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || p < 0 || p > 65535)
        return DLOG_EINVAL;
    if (colon == s) {
        snprintf(host, hostlen, "127.0.0.1");
    } else {
        const char *h = s;
        size_t n = (size_t)(colon - s);
        if (h[0] == '[' && n >= 2 && h[n - 1] == ']') {
            h++;
            n -= 2;
        }
        memcpy(host, h, n);
        host[n] = '\0';
    }
    *port = (int)p;
    return 0;
}

static int resolve(const char *host, int port, struct sockaddr_storage *ss)
{
    if (strcmp(host, "localhost") == 0)
        host = "127.0.0.1";
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)ss) == 0)
        return 0;
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)ss) == 0)
        return 0;
    return DLOG_EINVAL;
}

int net_server_start(uv_loop_t *loop, const char *host, int port, size_t max_frame,
                     net_accept_cb on_accept, void *data, struct net_server **out,
                     char *errmsg)
{
    struct sockaddr_storage ss;
    if (resolve(host, port, &ss) != 0) {
        errmsg_printf(errmsg, "invalid listen address %s (use an IP address)", host);
        return DLOG_EINVAL;
    }
    struct net_server *s = calloc(1, sizeof *s);
    if (s == NULL)
        return DLOG_ENOMEM;
    s->loop = loop;
    s->max_frame = max_frame ? max_frame : NET_FRAME_MAX_DEFAULT;
    s->on_accept = on_accept;
    s->data = data;
    uv_tcp_init(loop, &s->tcp);
    s->tcp.data = s;
    int rv = uv_tcp_bind(&s->tcp, (struct sockaddr *)&ss, 0);
    if (rv == 0)
        rv = uv_listen((uv_stream_t *)&s->tcp, 1024, on_connection);
    if (rv != 0) {
        errmsg_printf(errmsg, "listen on %s:%d: %s", host, port, uv_strerror(rv));
        uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
        return DLOG_EIO;
    }
    *out = s;
    return 0;
}

int net_server_port(struct net_server *s)
{
    struct sockaddr_storage ss;
    int len = sizeof ss;
    if (uv_tcp_getsockname(&s->tcp, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
}

void *net_server_data(struct net_server *s)
{
    return s->data;
}

void net_server_stop(struct net_server *s)
{
    uv_close((uv_handle_t *)&s->tcp, (uv_close_cb)free);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct net_conn *c = req->data;
    if (status < 0) {
        errmsg_printf(c->errmsg, "connect: %s", uv_strerror(status));
        if (c->cbs->on_connect != NULL)
            c->cbs->on_connect(c, DLOG_EUNAVAILABLE);
        net_conn_close(c, DLOG_EUNAVAILABLE);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    peer_name(c);
    start_reading(c);
    if (c->cbs->on_connect != NULL)
        c->cbs->on_connect(c, 0);
}

int net_connect(uv_loop_t *loop, const char *host, int port, size_t max_frame,
                const struct net_conn_cbs *cbs, void *data, struct net_conn **out)
{
    struct sockaddr_storage ss;
    if (resolve(host, port, &ss) != 0)
        return DLOG_EINVAL;
    struct net_conn *c = conn_new(loop, max_frame);
    if (c == NULL)
        return DLOG_ENOMEM;
    c->cbs = cbs;
    c->data = data;
    c->connect_req.data = c;
    int rv = uv_tcp_connect(&c->connect_req, &c->tcp, (struct sockaddr *)&ss, connect_cb);
    if (rv != 0) {
        uv_close((uv_handle_t *)&c->tcp, (uv_close_cb)free);
        bytes_free(&c->in);
        return DLOG_EUNAVAILABLE;
    }
    *out = c;
    return 0;
}
