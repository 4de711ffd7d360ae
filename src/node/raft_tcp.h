/*
 * libraft's TCP transport with TCP_NODELAY on every connection.
 *
 * raft_uv_tcp (libraft 0.15) leaves Nagle's algorithm on. A Raft message
 * written while an earlier one is not yet acknowledged then waits for that
 * acknowledgement, which the peer may delay by up to 40 ms: an
 * AppendEntries (or its result) sat in the sender's buffer for tens of
 * milliseconds while every process was idle (docs/benchmarks.md). This
 * transport is raft_uv_tcp itself, wrapped: every stream it accepts or
 * connects gets uv_tcp_nodelay before libraft sees it. Nothing else
 * changes: addresses, the handshake, errors and closing are libraft's.
 *
 * Use it where raft_uv_tcp_init/raft_uv_tcp_close would be used: init it,
 * hand &t->iface to raft_uv_init, and after raft_close's callback (the
 * transport closed) call raft_tcp_close. The struct must stay at the same
 * address from raft_tcp_init to raft_tcp_close. All calls and callbacks
 * run on the loop's thread.
 */
#ifndef DLOG_NODE_RAFT_TCP_H
#define DLOG_NODE_RAFT_TCP_H

#include <raft.h>
#include <raft/uv.h>

struct raft_tcp {
    struct raft_uv_transport iface; /* what raft_uv_init gets */
    struct raft_uv_transport tcp;   /* libraft's raft_uv_tcp, wrapped */
    raft_uv_accept_cb accept_cb;
    raft_uv_transport_close_cb close_cb;
};

/* 0, or a RAFT_* code from raft_uv_tcp_init. */
int raft_tcp_init(struct raft_tcp *t, struct uv_loop_s *loop);

/* Frees what raft_uv_tcp allocated; after the transport's close. */
void raft_tcp_close(struct raft_tcp *t);

#endif
