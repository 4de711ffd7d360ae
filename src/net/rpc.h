/*
 * A small blocking RPC client for node calls (docs/protocol.md, "Node
 * calls"): one TCP connection at a time to one of a list of servers, the
 * same frames and HELLO as every dlog client, and one request in flight.
 *
 * Unlike src/client (the public API's remote backend, with its own loop
 * thread and pipelining), this is for callers that want an answer now:
 * the metadata store of cluster mode (meta_raft.c), dlogctl's cluster
 * commands, a node joining its group. It uses plain sockets and poll(),
 * no loop, so it may be called from any thread, including a libuv
 * threadpool worker.
 *
 * Servers answer node calls on the leader only; net_rpc_call follows the
 * redirects (DLOG_ENOTLEADER with an address) and retries, on another
 * server after a backoff, when a connection fails or a server answers
 * DLOG_EUNAVAILABLE (no leader known), until the call's deadline. So a
 * leader change is seen by the caller as latency, not as an error, except
 * for the one case where the outcome of a write is not known (see
 * net_rpc_call).
 *
 * Threads: every function is thread-safe; calls on one client are
 * serialised (one connection, one request at a time).
 */
#ifndef DLOG_NET_RPC_H
#define DLOG_NET_RPC_H

#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

struct net_rpc;

#define NET_RPC_TIMEOUT_MS 8000 /* default deadline of one call */
#define NET_RPC_REDIRECTS  8    /* redirects followed in a row before a backoff */

/*
 * A client for addrs, "host:port[,host:port...]" (1..64 addresses), not
 * connected yet (the first call connects). client_name goes into HELLO
 * (copied). 0, DLOG_EINVAL (a bad address, with errmsg) or DLOG_ENOMEM.
 * Close it with net_rpc_close.
 */
int net_rpc_open(const char *addrs, const char *client_name, struct net_rpc **out,
                 char *errmsg);
/* Closes the connection and frees r; no call may be running. NULL is ignored. */
void net_rpc_close(struct net_rpc *r);
/* The deadline of each later call, in milliseconds (default NET_RPC_TIMEOUT_MS). */
void net_rpc_set_timeout(struct net_rpc *r, unsigned ms);
/* The addresses the client was opened with ("h:p,h:p"); owned by r. */
const char *net_rpc_addrs(const struct net_rpc *r);

/* A reply. msg's byte fields point into frame: both live until
 * net_rpc_reply_free. */
struct net_rpc_reply {
    struct wire_msg msg;
    uint8_t *frame;
    size_t len;
};
void net_rpc_reply_free(struct net_rpc_reply *rep);

/* Flags of net_rpc_call. */
#define NET_RPC_IDEMPOTENT 1u /* safe to send again after a lost connection */

/*
 * Sends req (its version and request_id are set here; its other fields are
 * read during the call only) and waits for the reply, until the deadline.
 *
 * Returns 0 when a server answered: rep->msg holds the reply, whose status
 * is the server's answer (0, or a code such as DLOG_ECONFLICT, with a
 * message in rep->msg.err.message); free it with net_rpc_reply_free.
 * Redirects (DLOG_ENOTLEADER) and DLOG_EUNAVAILABLE answers are followed
 * and retried here, never returned, until the deadline.
 *
 * Otherwise returns, with a message in errmsg and nothing to free:
 * - DLOG_EUNAVAILABLE: no server took the request before the deadline
 *   (none reachable, no leader elected); it was never delivered whole.
 * - DLOG_ETIMEDOUT: without NET_RPC_IDEMPOTENT, the request was sent whole
 *   and its connection failed (or the deadline passed) before the reply:
 *   it may or may not have been carried out. Idempotent requests are sent
 *   again instead, until the deadline, and then give DLOG_EUNAVAILABLE.
 * - DLOG_EINVAL / DLOG_ETOOBIG: req cannot be encoded; DLOG_ENOMEM.
 */
int net_rpc_call(struct net_rpc *r, struct wire_msg *req, unsigned flags,
                 struct net_rpc_reply *rep, char *errmsg);

#endif
