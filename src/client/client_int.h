/*
 * Private to src/client: the namespace's client, shared by client.c (the
 * API side: requests, open, close) and client_conn.c (the loop thread's
 * side: queues, the connection, reconnection).
 */
#ifndef DLOG_CLIENT_CLIENT_INT_H
#define DLOG_CLIENT_CLIENT_INT_H

#include <uv.h>

#include "client/client.h"
#include "net/net.h"

#define HOST_MAX 256
enum { CONN_DOWN, CONN_CONNECTING, CONN_READY };

struct host {
    char name[HOST_MAX];
    int port;
};

struct qlist {
    struct creq *head, *tail;
};

struct client {
    struct dlog_ns *ns;
    struct host *hosts;
    int nhosts;
    char hostlist[512]; /* for messages */
    pthread_t thread;
    uv_loop_t loop;
    uv_async_t async;
    uv_timer_t timer;     /* DOWN: the next attempt; CONNECTING: its timeout */
    uv_timer_t tick;      /* deadlines of waiting requests */
    uv_getaddrinfo_t gai; /* resolving a host name (when resolving) */

    pthread_mutex_t mu;
    pthread_cond_t cv; /* request completions and state changes */
    /* under mu */
    struct qlist subq;
    int stopping;
    int state;
    int ever_ready;
    int fatal;           /* a HELLO refusal before the first success */
    uint64_t down_since; /* clock_now_ns() when the connection was lost */
    size_t max_frame;    /* the server's, from HELLO */
    char lasterr[DLOG_ERRMSG_SIZE];
    uint64_t next_id;

    pthread_mutex_t nmu; /* the change counter */
    pthread_cond_t ncv;
    uint32_t nseq;

    /* loop thread only */
    struct net_conn *conn;
    int resolving;
    int cur_host;
    uint64_t hello_id;
    unsigned backoff_ms;
    struct qlist waiting;
    struct qlist inflight;   /* doubly linked through prev_ */
    struct qlist redirected; /* sent back by DLOG_ENOTOWNER, to go to... */
    int redirect_host;       /* ...this host, once inflight drains; -1: none */
    struct creq **table;
    size_t tmask, tcount;
    int tick_on;
};

/* client.c, loop thread: deliver q's outcome (status, and msg in words
 * when not 0); q is not touched afterwards. */
void client_complete(struct client *c, struct creq *q, int status, const char *msg);

/* client_conn.c. Before the loop runs: its timers, and the first attempt. */
void client_conn_init(struct client *c);
/* Loop thread: send q, or keep it until the connection is ready. */
void client_conn_take(struct client *c, struct creq *q);
/* Loop thread, at close: fail every request, close the connection and the
 * timers. */
void client_conn_stop(struct client *c);

#endif
