/*
 * kv_server — dlog-kv's Redis-protocol TCP server on one libuv loop.
 *
 * Threads and ownership:
 *  - The loop thread owns every connection, parses requests, runs local
 *    commands and reads, and writes replies.
 *  - Writes go through dlog_sm_propose (asynchronous). Its callback runs on
 *    the state machine's apply thread; it copies the result into the
 *    request's op and hands the op back to the loop through a mutex-guarded
 *    queue and a uv_async_t.
 *  - Linearizable reads first probe the barrier with a zero timeout
 *    (dlog_sm_barrier(sm, 0) does not block: it reads the stream's last
 *    DLSN and compares); when this replica is caught up the read runs at
 *    once. Otherwise it waits for a read barrier run by a dedicated barrier
 *    thread. One barrier serves every read queued before it started (group
 *    commit for reads); its result goes back to the loop through the same
 *    queue.
 *  - The loop never blocks on the log.
 *
 * Ordering: each connection answers in request order (a FIFO of pending
 * replies; a reply leaves only when every earlier one has). A read waits
 * for the connection's earlier writes to be applied, and a write waits for
 * the connection's earlier reads to be evaluated, so a pipeline behaves as
 * if its commands ran one at a time, as with Redis.
 */
#ifndef KV_SERVER_H
#define KV_SERVER_H

#include <stdint.h>

#include <uv.h>

#include <dlog/dlog.h>
#include <dlog/sm.h>

#include "kv_state.h"

struct kv_server;

#define KV_SERVER_OPTIONS_VERSION 1
struct kv_server_options {
    uint32_t version;       /* KV_SERVER_OPTIONS_VERSION */
    const char *host;       /* listen address; default "127.0.0.1" */
    int port;               /* 0: any free port (see kv_server_port) */
    int stale_reads;        /* 1: reads skip the barrier unless CLIENT STALE OFF */
    int barrier_timeout_ms; /* a barrier longer than this fails the reads; 5000 */
    int sync_interval_ms;   /* LMDB sync period (kv_state_sync); 100; <0: never */
    const char *stream;     /* for INFO */
    const char *replica_id; /* for INFO */
};
void kv_server_options_init(struct kv_server_options *o);

/*
 * Starts listening on loop. sm and state must outlive the server. On error
 * returns a dlog_err with a message in errmsg (DLOG_ERRMSG_LEN bytes).
 */
int kv_server_start(uv_loop_t *loop, struct dlog_sm *sm, struct kv_state *state,
                    const struct kv_server_options *o, struct kv_server **out,
                    char *errmsg);
/* The port actually bound. */
int kv_server_port(struct kv_server *s);

/*
 * Shutting down, in this order (on the loop thread):
 *   1. kv_server_stop: stops accepting, closes every connection, stops
 *      timers and the barrier thread (waits for a barrier in progress).
 *   2. dlog_sm_close(sm): in-flight proposals complete with DLOG_ECLOSED
 *      (their callbacks may still touch the server, so it is still alive).
 *   3. kv_server_close: drains the completions, closes the last handles;
 *      then run the loop until it has no more handles.
 *   4. kv_server_free.
 */
void kv_server_stop(struct kv_server *s);
void kv_server_close(struct kv_server *s);
void kv_server_free(struct kv_server *s);

/* Numbers for INFO. Loop thread. */
struct kv_server_stats {
    int port;
    uint64_t uptime_s;
    uint64_t connected_clients;
    uint64_t total_connections;
    uint64_t total_commands;
    uint64_t proposals;
    uint64_t proposal_errors;
    uint64_t proposal_retries;
    uint64_t writes_inflight; /* proposed, not yet applied here */
    uint64_t reads_inflight;  /* waiting for a read barrier */
    uint64_t barriers;
    uint64_t barrier_reads;
    uint64_t stale_reads;
    uint64_t fast_reads; /* linearizable, the replica was already caught up */
    int stale_default;
    const char *stream;
    const char *replica_id;
    struct dlog_dlsn applied;
    uint64_t applied_since_start;
    int sm_error;
};
void kv_server_get_stats(struct kv_server *s, struct kv_server_stats *out);

#endif /* KV_SERVER_H */
