/*
 * The write proxy: serves the wire protocol (src/wire) over the transport
 * (src/net) on top of a namespace opened through the public API, which in
 * local mode is the embedded backend on file:DIR.
 *
 * - Writes from every client to one stream at one epoch share one
 *   dlog_writer, so they share entries and fsyncs (the proxy's batching).
 * - An exclusive WRITER_OPEN opens an exclusive dlog_writer, bumping the
 *   stream's epoch; later WRITEs carry that epoch and go to it.
 * - Producer sequences make WRITE exactly-once for as long as this proxy
 *   runs: a repeated (producer, sequence) gets the first reply again.
 * - With ownership (a cluster's proxies, owner.h), WRITER_OPEN and WRITE go
 *   to the stream's owner: another proxy answers DLOG_ENOTOWNER with the
 *   owner's address, and takes the stream over (at a new epoch) once the
 *   owner has been silent for a lease. Reads and admin calls are served
 *   by any proxy.
 * - READ is stateless on the wire (it carries its position); readers are
 *   cached per connection while their position matches, and waits are
 *   long-polls on the namespace loop (dlog_read_async).
 *
 * Threads: everything runs on the namespace's loop thread; the namespace
 * must have been opened with that loop (dlog_options.loop).
 */
#ifndef DLOG_PROXY_PROXY_H
#define DLOG_PROXY_PROXY_H

#include <stddef.h>
#include <uv.h>

#include <dlog/dlog.h>

struct proxy;

struct proxy_options {
    const char *host;        /* listen address; default 127.0.0.1 */
    int port;                /* 0: the kernel picks (see proxy_port) */
    size_t max_frame;        /* default WIRE_MAX_FRAME_DEFAULT */
    const char *server_name; /* sent in HELLO replies */
    /* Rate limits (docs/rate-limiting.md), for an embedded namespace. */
    int no_limits;        /* 1: admit every write */
    const char *proxy_id; /* this proxy among the namespace's; default host:port:pid */
    uint64_t limit_interval_ms; /* report period; default 250 */
    uint64_t limit_lease_ms;    /* grant lease; default 3000 */
    /* Ownership (owner.h), for the proxies of a cluster: a stream is written
     * by one proxy at a time; the others redirect its writers there. */
    int ownership;
    const char *advertise; /* "host:port" clients are sent to; default the
                              listen address */
    uint64_t
        owner_lease_ms; /* a silent owner loses its streams; default OWNER_LEASE_MS */
};

/* Listens and serves ns on loop. 0, or an error with a message in errmsg. */
int proxy_start(uv_loop_t *loop, struct dlog_ns *ns, const struct proxy_options *o,
                struct proxy **out, char *errmsg);
int proxy_port(struct proxy *p);
/* Connections served so far and open now. */
void proxy_stats(struct proxy *p, unsigned long *accepted, unsigned long *open);

/*
 * Graceful stop, in two steps around dlog_close:
 * proxy_shutdown stops accepting and reading requests, and closes the
 * proxy's writers: every write received is then either durable and its
 * reply queued, or failed. Then the caller closes the namespace, which
 * delivers the last completions. proxy_free then closes each connection
 * once its replies are sent; run the loop until it returns, and the proxy
 * is freed when the last connection has closed.
 */
void proxy_shutdown(struct proxy *p);
void proxy_free(struct proxy *p);

#endif
