/*
 * libraft's TCP transport with TCP_NODELAY (node/raft_tcp.h).
 *
 * Each entry point forwards to the wrapped raft_uv_tcp; the two callbacks
 * that hand a stream to libraft (accept, connect) set TCP_NODELAY on it
 * first. raft_uv_tcp keeps its `data` field across init, which is how its
 * callbacks find the wrapper.
 */
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "node/raft_tcp.h"

/* An outgoing connection in progress: libraft's request and callback. */
struct tcp_connect {
    struct raft_uv_connect req; /* given to raft_uv_tcp */
    struct raft_uv_connect *outer;
    raft_uv_connect_cb cb;
};

static struct raft_tcp *of_tcp(struct raft_uv_transport *tcp)
{
    return tcp->data;
}

static void nodelay(struct uv_stream_s *stream)
{
    /* Best effort: a stream without it is slower, not wrong. */
    if (stream != NULL && stream->type == UV_TCP)
        uv_tcp_nodelay((uv_tcp_t *)stream, 1);
}

static void copy_errmsg(struct raft_tcp *t)
{
    memcpy(t->iface.errmsg, t->tcp.errmsg, sizeof t->iface.errmsg);
}

static int t_init(struct raft_uv_transport *iface, raft_id id, const char *address)
{
    struct raft_tcp *t = iface->impl;
    int rv = t->tcp.init(&t->tcp, id, address);

    if (rv != 0)
        copy_errmsg(t);
    return rv;
}

static void on_accept(struct raft_uv_transport *tcp, raft_id id, const char *address,
                      struct uv_stream_s *stream)
{
    struct raft_tcp *t = of_tcp(tcp);

    nodelay(stream);
    t->accept_cb(&t->iface, id, address, stream);
}

static int t_listen(struct raft_uv_transport *iface, raft_uv_accept_cb cb)
{
    struct raft_tcp *t = iface->impl;
    int rv;

    t->accept_cb = cb;
    rv = t->tcp.listen(&t->tcp, on_accept);
    if (rv != 0)
        copy_errmsg(t);
    return rv;
}

static void on_connect(struct raft_uv_connect *req, struct uv_stream_s *stream,
                       int status)
{
    struct tcp_connect *c = req->data;
    struct raft_uv_connect *outer = c->outer;
    raft_uv_connect_cb cb = c->cb;

    free(c);
    if (status == 0)
        nodelay(stream);
    cb(outer, stream, status);
}

static int t_connect(struct raft_uv_transport *iface, struct raft_uv_connect *req,
                     raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct raft_tcp *t = iface->impl;
    struct tcp_connect *c = calloc(1, sizeof *c);
    int rv;

    if (c == NULL)
        return RAFT_NOMEM;
    c->req.data = c;
    c->outer = req;
    c->cb = cb;
    req->cb = cb;
    rv = t->tcp.connect(&t->tcp, &c->req, id, address, on_connect);
    if (rv != 0) { /* no callback will come */
        copy_errmsg(t);
        free(c);
    }
    return rv;
}

static void on_close(struct raft_uv_transport *tcp)
{
    struct raft_tcp *t = of_tcp(tcp);

    t->close_cb(&t->iface);
}

static void t_close(struct raft_uv_transport *iface, raft_uv_transport_close_cb cb)
{
    struct raft_tcp *t = iface->impl;

    t->close_cb = cb;
    t->tcp.close(&t->tcp, on_close);
}

int raft_tcp_init(struct raft_tcp *t, struct uv_loop_s *loop)
{
    int rv;

    memset(t, 0, sizeof *t);
    t->tcp.data = t; /* raft_uv_tcp_init keeps it */
    rv = raft_uv_tcp_init(&t->tcp, loop);
    if (rv != 0)
        return rv;
    t->iface.impl = t;
    t->iface.init = t_init;
    t->iface.listen = t_listen;
    t->iface.connect = t_connect;
    t->iface.close = t_close;
    return 0;
}

void raft_tcp_close(struct raft_tcp *t)
{
    raft_uv_tcp_close(&t->tcp);
}
