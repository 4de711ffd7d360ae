/*
 * The transport: length-prefixed frames over libuv TCP (DESIGN.md: src/net).
 *
 * A frame on the wire is a 4-byte big-endian length followed by that many
 * bytes (the msgpack message, src/wire). This layer only cuts the byte
 * stream into frames and queues frames for sending, with backpressure; it
 * never looks inside a frame.
 *
 * Threads: every function here runs on the loop thread that owns the
 * server or connection. Other threads hand work over with uv_async.
 *
 * Lifetimes: a connection lives until its close callback; frames passed to
 * on_frame are valid only during the callback. net_conn_send takes a
 * reference to the buffer and drops it once written.
 */
#ifndef DLOG_NET_NET_H
#define DLOG_NET_NET_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/buf.h"
#include "base/errmsg.h"

#define NET_FRAME_MAX_DEFAULT (70u * 1024 * 1024)
/* Stop reading from a peer while this much output waits for it. */
#define NET_OUTQ_HIGH (16u * 1024 * 1024)
#define NET_OUTQ_LOW  (4u * 1024 * 1024)

struct net_conn;

struct net_conn_cbs {
    /* A whole frame arrived (without its length prefix). */
    void (*on_frame)(struct net_conn *c, const uint8_t *frame, size_t len);
    /* The connection closed (peer gone, error, or net_conn_close); status
     * 0 or a dlog_err. After this the connection memory is freed. */
    void (*on_close)(struct net_conn *c, int status);
    /* Client side only: the connection is established (status 0) or
     * failed (then on_close follows). */
    void (*on_connect)(struct net_conn *c, int status);
};

struct net_conn {
    void *data; /* the owner's */
    uv_tcp_t tcp;
    uv_loop_t *loop;
    const struct net_conn_cbs *cbs;
    size_t max_frame;
    /* input: accumulates partial frames */
    struct bytes in;
    int reading;
    int paused; /* by backpressure */
    /* output: frames queued in one loop iteration go out in one writev */
    size_t outq;     /* bytes queued and not yet written */
    uv_idle_t flush; /* idle: also keeps the next poll from blocking */
    int flush_init, flush_active;
    struct rbuf **pend;
    size_t npend, pend_cap;
    int open_handles;
    int closing;
    int close_status;
    int close_when_sent;
    int held; /* paused by the owner, not by backpressure */
    uv_connect_t connect_req;
    char peer[64];
    char errmsg[DLOG_ERRMSG_SIZE];
};

struct net_server;
/* A new connection: fill c->data and c->cbs (required). */
typedef void (*net_accept_cb)(struct net_server *s, struct net_conn *c);

/*
 * Listens on host:port (port 0: the kernel picks; see net_server_port).
 * Returns 0, DLOG_EINVAL (bad address) or DLOG_EIO (bind/listen failed)
 * with a message in errmsg.
 */
int net_server_start(uv_loop_t *loop, const char *host, int port, size_t max_frame,
                     net_accept_cb on_accept, void *data, struct net_server **out,
                     char *errmsg);
int net_server_port(struct net_server *s);
void *net_server_data(struct net_server *s);
/* Stops listening; existing connections are not touched. Frees s later. */
void net_server_stop(struct net_server *s);

/* Connects to host:port; cbs->on_connect reports the outcome. */
int net_connect(uv_loop_t *loop, const char *host, int port, size_t max_frame,
                const struct net_conn_cbs *cbs, void *data, struct net_conn **out);

/*
 * Queues one frame, its 4-byte length prefix included (as wire_encode
 * makes it), and sends it as is. Takes its own reference on buf. Returns
 * 0, or DLOG_ECLOSED when the connection is closing (buf untouched).
 */
int net_conn_send(struct net_conn *c, struct rbuf *buf);
/* Bytes queued for sending. */
static inline size_t net_conn_outq(const struct net_conn *c)
{
    return c->outq;
}
/* Close with status (0 or a dlog_err); on_close runs later. Idempotent. */
void net_conn_close(struct net_conn *c, int status);
/* Stop reading and close once every queued frame has been written. */
void net_conn_close_when_sent(struct net_conn *c);
/* Stop (or resume) reading requests from the peer. */
void net_conn_pause(struct net_conn *c, int pause);

/* Parse "host:port" (host may be empty: 127.0.0.1). 0 or DLOG_EINVAL. */
int net_parse_hostport(const char *s, char *host, size_t hostlen, int *port);

#endif
