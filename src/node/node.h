/*
 * A node of a dlog cluster (DESIGN.md, "Cluster mode"): the process that
 * hosts a replica of the metadata Raft group and answers node calls
 * (docs/protocol.md, "Node calls") on its listen address.
 *
 * - The group runs on libraft over raft_uv (its log and snapshots in
 *   DATA/meta-raft) and raft_uv_tcp (on the raft address), with the
 *   metadata FSM (meta_fsm.h) as its state machine.
 * - Writes are proposed by the leader: it stamps its wall clock into the
 *   command (meta_cmd.h), calls raft_apply, and replies from the apply
 *   callback with the FSM's result. Followers answer DLOG_ENOTLEADER with
 *   the leader's listen address, or DLOG_EUNAVAILABLE when none is known.
 * - Reads are served by any replica from its FSM (up to its applied index).
 * - Every node's listen address is kept in the group itself, under the key
 *   "nodes/<id>", so that any replica can name the leader's.
 *
 * Threads: everything runs on the loop given to node_start, except the
 * joining worker, which runs on the loop's threadpool.
 */
#ifndef DLOG_NODE_NODE_H
#define DLOG_NODE_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct node;

/* The key prefix under which nodes record their listen address. */
#define NODE_KEY_PREFIX "nodes/"

struct node_options {
    uint64_t id;                 /* >= 1, unique in the cluster, never reused */
    const char *listen;          /* "host:port" of node calls (port 0: any) */
    const char *raft;            /* "host:port" of Raft traffic (a real port) */
    const char *data;            /* directory; DATA/meta-raft holds the group */
    int bootstrap;               /* start a new group (ignored when DATA has one) */
    const char *peers;           /* with bootstrap: "ID@HOST:PORT,..." raft addresses of
                                    every first member (this node included); NULL: only
                                    this node */
    const char *join;            /* "host:port[,...]" of members to ask to add this node;
                                    NULL: none */
    size_t max_frame;            /* 0: the default */
    const char *server_name;     /* in HELLO replies; NULL: "dlogd node" */
    unsigned election_ms;        /* 0: 1000 */
    unsigned heartbeat_ms;       /* 0: 100 */
    unsigned snapshot_threshold; /* entries between snapshots; 0: 4096 */
    unsigned snapshot_trailing;  /* entries kept after one; 0: 1024 */
    unsigned groups;             /* data groups hosted (each node hosts every group
                                    for now); 0: 1. Group g's Raft address is the
                                    raft address's port + 1 + g */
    unsigned data_snapshot_threshold; /* data groups: entries between snapshots;
                                         0: from data_log_memory_mb */
    unsigned data_snapshot_trailing;  /* data groups: entries kept after one; 0: from
                                         data_log_memory_mb */
    unsigned data_log_memory_mb;      /* data groups: Raft log kept in memory, about;
                                         0: 128 */
    unsigned data_log_segment_mb;     /* data groups: Raft log segment files; 0: 8 */
};

/*
 * Opens the group and starts serving on loop. 0, or DLOG_EINVAL (bad
 * options), DLOG_EIO (cannot listen, cannot open the Raft directory),
 * DLOG_ENOMEM, with a message in errmsg. On failure nothing is left
 * running. Stop it with node_stop.
 */
int node_start(uv_loop_t *loop, const struct node_options *o, struct node **out,
               char *errmsg);
/* The port node calls are served on. */
int node_listen_port(const struct node *n);

/*
 * Stops: no more node calls are taken, connections close, the joining
 * worker is told to stop, and the Raft group is closed once its appended
 * entries are stored (libraft's raft_close can abort while appends are
 * in flight; see TESTING.md). cb runs on the loop when everything is
 * closed; n is freed after it returns. Call once.
 */
void node_stop(struct node *n, void (*cb)(void *data), void *data);

#endif
