/*
 * Private to src/node/node*.c: the node's state and the helpers its files
 * share (lifecycle in node.c, the RPC server in node_rpc.c, proposals in
 * node_propose.c, membership in node_members.c, the joining worker in
 * node_join.c).
 */
#ifndef DLOG_NODE_NODE_INT_H
#define DLOG_NODE_NODE_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include <raft.h>
#include <raft/uv.h>

#include "base/buf.h"
#include "base/errmsg.h"
#include "net/net.h"
#include "node/data_fsm.h"
#include "node/group_load.h"
#include "node/meta_fsm.h"
#include "node/raft_tcp.h"
#include "node/node.h"
#include "wire/wire.h"

#define NODE_ADDR_MAX 301 /* "host:port" and its NUL */

/* A client connection; freed when it is closed and no proposal holds it. */
struct nconn {
    struct node *n;
    struct net_conn *nc; /* NULL once closed */
    int hello;
    int refs;                  /* 1 for the open connection, +1 per pending proposal */
    int linked;                /* in n->conns; 0 once the node stopped serving */
    struct nconn *next, *prev; /* in n->conns */
};

/* A state transfer into one data group's FSM (node_xfer.c). The loop
 * owns every field but those marked; the transfer thread writes those,
 * and the loop reads them once `finished` is set. */
#define XFER_PEERS_MAX 16
struct dxfer {
    int running; /* a thread was started and not joined yet */
    uv_thread_t thread;
    atomic_int finished; /* set by the thread as its last act */
    uint64_t started_ns;
    uint64_t next_try_ns; /* after a failed round */
    /* the thread's inputs, set before it starts */
    struct data_fsm_state want;
    unsigned npeers;
    uint64_t ids[XFER_PEERS_MAX];
    char addrs[XFER_PEERS_MAX][NODE_ADDR_MAX];
    /* the thread's outputs */
    int rv;
    uint64_t source; /* the node the state came from */
    uint64_t bytes;  /* entry bytes loaded */
    char errmsg[DLOG_ERRMSG_SIZE];
};

/* A replica of one data group (node_data.c). */
struct dgroup {
    struct node *n;
    unsigned g;
    char raft_addr[NODE_ADDR_MAX];
    struct raft_io io;
    struct raft_tcp transport;
    struct raft_fsm fsm_inner;   /* data_fsm_raft_fsm's */
    struct raft_fsm fsm_adapter; /* what raft calls: fsm_inner behind the framing */
    struct data_fsm *fsm;
    struct raft raft;
    int raft_inited, io_inited, transport_inited;
    int raft_closing;
    unsigned inflight; /* proposals not yet called back */
    int changing;      /* a membership change is in flight */
    struct raft_change change;
    uint64_t applied;          /* what the FSM's LMDB holds, as its notify said (loop) */
    _Atomic uint64_t notified; /* the notify's index, from the writer thread */
    struct dxfer xfer;

    /* the in-memory Raft log's budget (node/log_policy.h); 0: fixed counts */
    uint64_t log_memory;
    uint64_t mean16;       /* mean entry size, 1/16 bytes */
    unsigned since_policy; /* entries applied since the counts were set */
    int fixed_threshold, fixed_trailing;

    /* load (node_groups.c): bytes of APPEND commands applied here since
     * the process started, sampled on the tick */
    uint64_t appended;
    struct group_load load;

    /* leadership transfer (node_leaders.c) */
    struct raft_transfer transfer;
    int transferring;    /* raft_transfer called, its callback not yet */
    raft_id transfer_to; /* its target */
};

struct dsess; /* a SEG_DUMP session (node_xfer.c) */
struct dpark; /* a read held for write-behind (node_data_rpc.c) */

/* A SEG_WAIT long-poll (node_data_rpc.c). */
struct dwait {
    struct nconn *c;
    uint64_t request_id;
    uint64_t deadline_ns;
    size_t n;
    uint64_t *applied;
    struct dwait *next;
};

struct node {
    uv_loop_t *loop;
    uint64_t id;
    char listen[NODE_ADDR_MAX]; /* as announced (the real port) */
    char raft_addr[NODE_ADDR_MAX];
    char dir[4096];
    char join[1024];
    char name[WIRE_MAX_PEER_NAME + 1];
    struct wire_limits lim;

    /* Raft */
    struct raft_io io;
    struct raft_tcp transport;
    struct raft_fsm fsm_inner;   /* meta_fsm_raft_init's */
    struct raft_fsm fsm_adapter; /* what raft calls: fsm_inner, logged */
    struct meta_fsm *fsm;
    struct raft raft;
    int raft_inited, io_inited, transport_inited;

    /* RPC server */
    struct net_server *server;
    int port;
    struct nconn *conns;

    /* background work */
    uv_timer_t tick;   /* registration, join, and the close wait */
    unsigned inflight; /* proposals and changes not yet called back */
    int registering;   /* a proposal of our own "nodes/<id>" is in flight */
    int join_running;
    atomic_int stop_flag; /* read by the joining worker */
    uv_work_t join_work;
    char join_targets[4096]; /* the worker's addresses, set before it starts */
    char join_err[DLOG_ERRMSG_SIZE];
    int join_status;

    /* data groups */
    unsigned ngroups;
    struct dgroup *groups;
    unsigned rafts_open; /* the metadata group's and the data groups' not closed */
    struct dwait *waits;
    struct dpark *parks;    /* reads held until LMDB catches up (write-behind) */
    uv_async_t data_async;  /* a data FSM's notify, from its writer thread */
    int groups_recorded;    /* "cluster/groups" checked or proposed */
    struct dsess *sessions; /* SEG_DUMP sessions served */
    unsigned nsessions;
    uint64_t last_session;    /* ids: from the start time, so a restart gives new ones */
    uint64_t balance_next_ns; /* node_leaders.c: the next look at the leaders */
    raft_id balance_shun;     /* a target that did not take over... */
    uint64_t balance_shun_ns; /* ...is left alone until then */

    /* stopping */
    int stopping;
    int raft_closing;
    uint64_t stop_deadline;
    void (*stop_cb)(void *data);
    void *stop_data;
};

/* node_rpc.c */
int node_rpc_start(struct node *n, const char *host, int port, char *errmsg);
/* Stops listening and closes every connection. */
void node_rpc_stop(struct node *n);
void nconn_ref(struct nconn *c);
void nconn_unref(struct nconn *c);
/* Sends a reply on c unless it is closed. */
void node_send(struct nconn *c, const struct wire_msg *rep);
/* Sends an error reply (address: for DLOG_ENOTLEADER, else NULL). */
void node_send_error(struct nconn *c, uint32_t type, uint64_t request_id, int status,
                     const char *message, const char *address);
void node_rep_init(struct wire_msg *m, uint32_t type, uint64_t request_id, int status);

/* node_members.c */
/* The listen address of node id from the FSM into buf; 0 or DLOG_ENOTFOUND. */
int node_listen_of(struct node *n, uint64_t id, char *buf, size_t size);
/* Answers DLOG_ENOTLEADER (naming the leader's listen address) or
 * DLOG_EUNAVAILABLE to a request this node cannot serve. */
void node_redirect(struct nconn *c, const struct wire_msg *m);
void node_handle_join(struct nconn *c, const struct wire_msg *m);
void node_handle_remove(struct nconn *c, const struct wire_msg *m);
void node_handle_status(struct nconn *c, const struct wire_msg *m);
/* On the tick: make sure this node's listen address is recorded. */
void node_members_tick(struct node *n);

/* node_propose.c */
/* Handles a metadata write on the leader: proposes it and replies from
 * the apply callback. */
void node_handle_write(struct nconn *c, const struct wire_msg *m);
/* META_REVISION with barrier, on the leader. */
void node_handle_barrier(struct nconn *c, const struct wire_msg *m);
/*
 * Proposes the encoded command cmd (its memory is taken over: freed here
 * whatever happens). When applied, done(data, status, result) runs with
 * status 0 and the FSM's result (valid during the call), or a dlog code
 * (DLOG_ENOTLEADER: not proposed; DLOG_ETIMEDOUT: proposed, outcome
 * unknown; DLOG_ENOMEM). done may run before node_propose returns.
 */
typedef void (*node_done_cb)(void *data, int status, const struct meta_fsm_result *res);
void node_propose(struct node *n, struct bytes *cmd, node_done_cb done, void *data);

/* node_join.c */
/* Starts the worker asking targets to add this node, unless one runs. */
void node_join_start(struct node *n, const char *targets);

/* node.c: cmd framed for the log (see there) into buf, from raft_malloc;
 * 0 or DLOG_ENOMEM. */
int node_frame(const struct bytes *cmd, struct raft_buffer *buf);

/* node_data.c: the data groups' lifecycle and membership. */
/* Opens every data group (DATA/group-<g>/raft and /fsm); 0 or an error
 * with errmsg. */
int node_data_start(struct node *n, const struct node_options *o, char *errmsg);
/* 1 when no data group has a proposal or an unstored entry pending. */
int node_data_quiet(struct node *n);
/* raft_close of every data group; each close calls node_raft_closed. */
void node_data_close(struct node *n);
/* Frees what node_data_start allocated (after every group closed). */
void node_data_free(struct node *n);
/* On the tick: membership of the data groups follows the metadata group's
 * voters; FSMs behind a snapshot retry their fetch; waits time out. */
void node_data_tick(struct node *n);
/* "host:port+1+g": group g's raft address for a node whose metadata raft
 * address is meta; 0 or DLOG_EINVAL. */
int node_group_addr(const char *meta, unsigned g, char *buf, size_t size);
/* One of the node's Raft groups has closed. */
void node_raft_closed(struct node *n);

/* node_data_rpc.c: the data groups' node calls. */
void node_data_handle(struct nconn *c, const struct wire_msg *m);
/* Answers the waits whose condition holds (all of them when stopping). */
void node_data_wake(struct node *n);
/* n->data_async's callback: takes the groups' notified indexes, wakes. */
void node_data_notified(uv_async_t *a);

/* node_xfer.c: state transfer between a data group's replicas. */
/* SEG_DUMP: serves a chunk of this replica's contents. */
void node_xfer_handle(struct nconn *c, const struct wire_msg *m);
/* The FSM's cfg.fetch (arg: the struct dgroup): starts a transfer thread,
 * answers DLOG_EUNAVAILABLE while it runs. */
int node_xfer_fetch(void *arg, struct data_fsm *f, const struct data_fsm_state *want);
/* Joins dg's transfer thread once it has finished, and logs its outcome. */
void node_xfer_reap(struct dgroup *dg);
/* 1 while a transfer thread runs (node_stop waits for it). */
int node_xfer_busy(struct node *n);
/* On the tick: drops idle sessions (all of them once stopping), reaps
 * finished transfers. */
void node_xfer_tick(struct node *n);
/* Closes every session and joins every transfer thread (before the FSMs
 * close). */
void node_xfer_close(struct node *n);
/* node_groups.c: CLUSTER_GROUPS, and the data groups' load. */
void node_handle_groups(struct nconn *c, const struct wire_msg *m);
/* On the tick: samples each group's appended bytes. */
void node_groups_tick(struct node *n);
/* Counts the bytes of an applied APPEND command of group dg. */
void node_groups_applied(struct dgroup *dg, size_t cmd_bytes);

/* node_leaders.c: spreads the data groups' leaders over the nodes. */
void node_leaders_tick(struct node *n);

/* Translates a libraft code (a proposal's outcome) to a dlog one. */
int node_raft_err(int rv);

#endif
