/*
 * Stream ownership among the proxies of a cluster (DESIGN.md: a proxy
 * "owns streams (lease from metadata)"; docs/architecture.md, "Ownership").
 *
 * One proxy at a time writes a stream: its owner. The metadata store holds
 *   px/<proxy-id>     the proxy's address "host:port"; the proxy rewrites it
 *                     every interval, so its version moves while it lives
 *   own/<stream-id>   "<proxy-id>\n<user-epoch>": the stream's owner, and
 *                     the lowest writer epoch a client may still write at
 * A proxy is alive, to an observer, while its px key keeps moving: once the
 * key stands still for lease_ms on the observer's own monotonic clock (or
 * is gone), its streams may be taken. Liveness is never judged by comparing
 * the clocks of two hosts; a proxy that has just started waits a whole
 * lease before it calls anyone dead, and so does one that could not renew
 * its own key for a while (the metadata group was electing a leader, or
 * the process stalled): the others' silence then proves nothing. Clients
 * are redirected only to an owner seen renewing within the last 2.5
 * intervals; a request for a stream whose owner has gone quiet waits at
 * the proxy until the owner renews or its lease runs out.
 *
 * Taking a stream over is a compare-and-set of own/<id> against the version
 * read, so two proxies cannot both win. The winner then opens the stream
 * with an exclusive writer, which bumps the epoch and fences the old
 * owner's writer in the data group: nothing the old owner writes after that
 * is acknowledged (invariant 4), and no two proxies are ever acknowledged
 * at the same epoch.
 *
 * The user epoch: a client writer keeps the epoch it opened at. A takeover
 * bumps the epoch without the client asking, so the owner accepts a WRITE
 * at any epoch from the user epoch up to its own; only an exclusive
 * WRITER_OPEN from a client raises the user epoch (and so fences the
 * clients' older writers, as on a single server).
 *
 * Threads: a background thread renews px/<self>, watches the other
 * proxies' keys and re-reads the owner of every stream this proxy owns,
 * every interval. The other functions are called on the proxy's loop
 * thread; owner_claim, owner_set_user_epoch and owner_release make
 * blocking metadata calls. The meta ops must be safe to share between
 * threads (every dlog_meta_ops implementation is).
 */
#ifndef DLOG_PROXY_OWNER_H
#define DLOG_PROXY_OWNER_H

#include <stddef.h>
#include <stdint.h>

#include "meta/meta.h"

#define OWNER_ID_MAX   63  /* a proxy id, text */
#define OWNER_ADDR_MAX 300 /* "host:port" (WIRE_MAX_ADDRESS) */
/* The default lease: a writer goes on about 3 s after its proxy died (the
 * lease, a round to notice, the takeover's metadata writes). */
#define OWNER_LEASE_MS 2000

struct owner;

/* What owner_claim found. */
enum owner_state {
    OWNER_SELF,  /* this proxy owns the stream (took it now if taken) */
    OWNER_OTHER, /* a live proxy owns it: redirect the client to addr */
    OWNER_WAIT,  /* its owner has not been seen dead for a lease yet */
};

struct owner_claim {
    int state;           /* enum owner_state */
    int taken;           /* OWNER_SELF: 1 when the stream changed hands now */
    uint64_t user_epoch; /* OWNER_SELF: the lowest epoch clients may write at */
    char holder[OWNER_ID_MAX + 1];
    char addr[OWNER_ADDR_MAX + 1]; /* OWNER_OTHER: the owner's address */
    uint64_t wait_ms;              /* OWNER_WAIT: how long until it may be taken */
};

/*
 * Starts the heartbeat thread after one synchronous round (the first
 * heartbeat and the first look at the other proxies), so a proxy is known
 * to the others before it serves. self and addr are copied. interval_ms
 * must be well below lease_ms (a quarter is the default); 0 starts no
 * thread: the caller runs the rounds with owner_tick (tests, on a fake
 * clock). m stays the caller's and must outlive the owner.
 */
int owner_open(struct dlog_meta_ops *m, const char *self, const char *addr,
               uint64_t interval_ms, uint64_t lease_ms, struct owner **out, char *errmsg);
/*
 * Stops the thread. With release set (a graceful stop, after the proxy's
 * writers are closed), deletes own/ of every stream it owns and its px key,
 * so other proxies take them at once instead of after a lease.
 */
void owner_close(struct owner *o, int release);
/* One round by hand (an owner opened with interval_ms 0). */
void owner_tick(struct owner *o);
const char *owner_self(const struct owner *o);

/*
 * Who owns stream id, taking it over when its owner is dead or there is
 * none. epoch_now is the stream's current epoch: the user epoch of a
 * stream owned for the first time. 0 with *out filled, or an error of the
 * metadata store with errmsg.
 */
int owner_claim(struct owner *o, uint64_t stream_id, uint64_t epoch_now,
                struct owner_claim *out, char *errmsg);
/* Raises the user epoch of a stream this proxy owns (a client opened an
 * exclusive writer). DLOG_ENOTOWNER when it is not this proxy's anymore. */
int owner_set_user_epoch(struct owner *o, uint64_t stream_id, uint64_t epoch,
                         char *errmsg);
/* Gives up a stream this proxy owns (idempotent). */
void owner_release(struct owner *o, uint64_t stream_id);

/*
 * A counter that moves whenever the thread finds that a stream this proxy
 * owned has another owner now; then owner_owns tells which ones.
 */
unsigned owner_lost_gen(struct owner *o);
int owner_owns(struct owner *o, uint64_t stream_id);
/* The address of the live proxy holding stream id, as last read (for a
 * redirect after this proxy's writer was fenced). 1 if known. */
int owner_lookup(struct owner *o, uint64_t stream_id, char *addr, size_t len);

#endif
