/*
 * The remote backend ("dlog://host:port[,host:port...]"): the public API
 * over the wire protocol (src/wire, docs/protocol.md) to a dlogd
 * (DESIGN.md: "Backend"). client.c and client_conn.c hold the machinery
 * below; client_ops.c the vtable and stream admin; client_writer.c and
 * client_reader.c the handles.
 *
 * Threads. Each namespace runs one background thread with its own libuv
 * loop, which owns the connection. An API call, on any thread, encodes its
 * request into a frame (client_req_init assigns the request id), queues it
 * (client_submit) and wakes the loop with uv_async_send; the loop sends it
 * and matches the reply by request id. A blocking call then waits on a
 * condition variable (client_wait); an async one (a WRITE) gets a callback
 * on the loop thread.
 *
 * Connection. client_open connects to the first host that answers (HELLO
 * first) within CLIENT_WAIT_MS. When the connection drops, the loop
 * reconnects with exponential backoff (CLIENT_BACKOFF_MIN_MS doubling up
 * to CLIENT_BACKOFF_MAX_MS), cycling through the hosts. Requests in flight
 * at the drop fail with DLOG_EUNAVAILABLE, except those marked resend,
 * which are sent once more after the reconnection: the WRITEs of a writer
 * with a producer id (with the same producer id and sequence, so the server
 * applies them at most once) and READs (which carry their position).
 * Requests made while disconnected wait for the reconnection up to their
 * deadline (CLIENT_WAIT_MS by default), then fail.
 *
 * Redirects. A proxy that does not own a stream answers WRITER_OPEN and
 * WRITE with DLOG_ENOTOWNER and the owner's address (docs/protocol.md,
 * "Redirects"). Nothing was done, so the client sends the request again
 * there: it stops sending, lets the requests in flight come back (up to
 * CLIENT_DRAIN_MS), moves the connection to that address (added to the
 * host list) and sends the redirected requests first, in their original
 * order, then the rest. While ownership moves (the owner named may have
 * just died), a request may be redirected again and again, for up to
 * CLIENT_WAIT_MS after its first redirect, and at most
 * CLIENT_MAX_REDIRECTS times; then it fails with DLOG_ENOTOWNER.
 */
#ifndef DLOG_CLIENT_CLIENT_H
#define DLOG_CLIENT_CLIENT_H

#include <stdint.h>

#include "base/buf.h"
#include "core/core.h"
#include "wire/wire.h"

#define CLIENT_WAIT_MS        5000 /* connect at open; wait for a reconnection */
#define CLIENT_BACKOFF_MIN_MS 50   /* reconnect backoff: doubles up to the max */
#define CLIENT_BACKOFF_MAX_MS 2000
#define CLIENT_CONNECT_MS     2000 /* one attempt: TCP connect and HELLO */
#define CLIENT_MAX_REDIRECTS  100  /* per request, then DLOG_ENOTOWNER */
#define CLIENT_DRAIN_MS       1000 /* before a redirect: replies in flight */
#define CLIENT_MAX_HOSTS      64   /* the URI's and those redirected to */

struct client;

/*
 * One request. The caller allocates it (zeroed), fills cb/on_reply/data/
 * resend and the deadline if it wants, and calls client_req_init then
 * client_submit. Exactly one completion follows: cb on the loop thread, or,
 * without cb, the end of client_wait. After it, the caller owns the request
 * again and releases it with client_req_clear.
 *
 * Replies are decoded on the loop thread straight from the connection's
 * buffer and live only there: a caller takes what it needs in on_reply (a
 * blocking caller is waiting meanwhile, so on_reply may fill its memory)
 * or in cb, through q->rep.
 */
struct creq {
    /* set by the caller */
    void (*cb)(struct creq *q); /* async completion on the loop thread; may free q */
    /* Loop thread, for a reply with status 0, before the completion: copy
     * what is needed out of rep; a non-zero return becomes the status. */
    int (*on_reply)(struct creq *q, const struct wire_msg *rep);
    void *data;
    int resend;        /* 1: send once more after a reconnection */
    uint64_t deadline; /* clock_now_ns() deadline for waiting to be sent;
                          0: CLIENT_WAIT_MS after submission */
    int expire_status; /* status when the deadline passes; 0: DLOG_EUNAVAILABLE */
    /* set by client_req_init */
    uint64_t id;
    uint32_t type;
    struct rbuf *frame; /* the encoded request, length prefix included */
    /* the outcome */
    int status;                    /* 0, the reply's status, or a local error */
    const struct wire_msg *rep;    /* in cb only: the reply, or NULL (no reply) */
    char errmsg[DLOG_ERRMSG_SIZE]; /* words when status != 0 */
    /* private to client.c */
    int done_;
    int resent_;
    int redirects_;        /* times sent elsewhere by DLOG_ENOTOWNER */
    uint64_t redirect_ns_; /* clock_now_ns() at the first */
    struct creq *next_, *prev_, *hnext_;
};

/* The namespace's client (ns->impl). */
static inline struct client *client_of(struct dlog_ns *ns)
{
    return ns->impl;
}

/* Any thread: gives m a request id, encodes it into q->frame (q->type and
 * q->id set). DLOG_EINVAL / DLOG_ETOOBIG / DLOG_ENOMEM with errmsg. */
int client_req_init(struct client *c, struct creq *q, struct wire_msg *m, char *errmsg);
/* Any thread: hands q to the loop; exactly one completion follows. Or
 * DLOG_ECLOSED when the namespace is closing: no completion then. */
int client_submit(struct client *c, struct creq *q);
/* Any thread but the loop's: waits for q (submitted without cb); returns
 * q->status. */
int client_wait(struct client *c, struct creq *q);
/* Releases what q holds (its frame); q itself stays the caller's. */
void client_req_clear(struct creq *q);

/*
 * A blocking round trip: init, submit, wait; q->on_reply has taken what the
 * reply held. Release q with client_req_clear, also on failure. On failure
 * errmsg gets the server's message (or the local one). DLOG_EBUSY when
 * called on the loop thread (from a write callback).
 */
int client_call(struct client *c, struct creq *q, struct wire_msg *m, char *errmsg);

/* 1 when the calling thread is the client's loop thread. */
int client_on_loop(struct client *c);
/* 1 when connected (HELLO done); else *down_ms says for how long not. */
int client_ready(struct client *c, uint64_t *down_ms);

/* The change counter behind notify_seq/notify_wait: bumped on every WRITE
 * reply and every READ reply with records. */
void client_notify(struct client *c);
uint32_t client_notify_seq(struct client *c);
int client_notify_wait(struct client *c, uint32_t seen, int timeout_ms);

/* The backend vtable (client_ops.c). */
extern const struct dlog_backend_ops client_ops;
/* Stops the loop thread and frees the client (ops->close). */
void client_close(struct dlog_ns *ns);

/* Writers and readers (client_writer.c, client_reader.c). */
int cwriter_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_writer_options *opts, struct dlog_writer **out);
int cwriter_write(struct dlog_writer *w, struct dlog_write_req *req,
                  const struct dlog_record *recs, size_t n);
int cwriter_flush(struct dlog_writer *w);
int cwriter_close(struct dlog_writer *w);
int creader_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_reader_options *opts, struct dlog_reader **out);
int creader_read(struct dlog_reader *r, struct dlog_record *recs, size_t max,
                 int timeout_ms);
void creader_close(struct dlog_reader *r);

#endif
