/*
 * kv_server — connections, pipelining, proposals and read barriers on one
 * libuv loop. See kv_server.h for the threads and the ordering rules.
 *
 * Lifetimes:
 *  - struct kv_op is one request and its pending reply. It belongs to its
 *    connection's FIFO from parse until its reply is copied out in flush().
 *    While a proposal or barrier is in flight for it (op->state ==
 *    OP_ISSUED) another thread holds a pointer to it, so neither the op
 *    nor its connection is freed until the completion came back
 *    (conn->inflight counts those).
 *  - struct kv_conn is freed when its handle is closed AND conn->inflight
 *    is 0, whichever happens last.
 *  - The server outlives every connection; see kv_server.h for shutdown.
 */
#include "kv_server.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kv_cmd.h"
#include "kv_commands.h"
#include "resp.h"

/* Backpressure: stop reading a connection above these, resume below half. */
#define MAX_PENDING     1024               /* requests awaiting their reply */
#define MAX_WRITE_QUEUE (16 * 1024 * 1024) /* reply bytes not yet sent */
#define READ_CHUNK      65536
/* Proposal failures worth a retry with the same (client id, seq): the
 * framework's exactly-once rule makes the retry safe. */
#define PROPOSE_TRIES  3
#define TIMER_MS       100
#define PURGE_EVERY_MS 1000

enum { OP_QUEUED = 0, OP_ISSUED = 1, OP_DONE = 2 };

struct kv_conn;

struct kv_op {
    struct kv_op *next;  /* connection FIFO */
    struct kv_op *qnext; /* barrier queue or completion queue */
    struct kv_server *srv;
    struct kv_conn *conn; /* NULL for the server's own PURGE proposals */
    struct resp_cmd *cmd; /* owned; freed with the op */
    const struct kv_command *def;
    int kind;
    int state;
    int is_quit;
    int status; /* written by another thread before the op is queued back */
    int tries;
    uint64_t seq;
    struct dlog_buf reply; /* the RESP reply, sent in FIFO order */
    struct dlog_buf enc;   /* a write's encoded command (kept for retries) */
    struct dlog_propose_req preq;
};

struct kv_conn {
    uv_tcp_t tcp;
    struct kv_server *srv;
    struct kv_conn *prev, *next; /* the server's list */
    struct kv_conn *tnext;       /* "touched" list during completions */
    int touched;
    struct resp_parser parser;
    char *in; /* received bytes not yet parsed */
    size_t in_len, in_cap;
    struct kv_op *head, *tail; /* FIFO of requests awaiting their reply */
    struct kv_op *issue;       /* first request not issued yet */
    unsigned npending;
    unsigned writes_inflight, reads_inflight, inflight;
    int closing, closed, paused, quit_parsed, in_process, again;
    struct kv_session sess;
    uint64_t client_id; /* for exactly-once proposals */
    uint64_t seq;
};

struct write_req {
    uv_write_t req;
    struct kv_conn *conn;
    int close_after;
    struct dlog_buf buf;
};

struct kv_server {
    uv_loop_t *loop;
    struct dlog_sm *sm;
    struct kv_state *state;
    struct kv_server_options opts;
    char host[256], stream[256], replica_id[256];
    uv_tcp_t listener;
    uv_async_t async;
    uv_timer_t timer;
    uv_work_t sync_work;
    int sync_busy;
    int port;
    struct kv_conn *conns;
    struct kv_scans *scans;
    uint64_t id_base, next_id;
    uint64_t start_ms, last_purge_ms;
    int purge_inflight;
    int stopping;

    /* Shared with the barrier thread and the apply thread. */
    pthread_mutex_t mu;
    pthread_cond_t cond;
    struct kv_op *bq_head, *bq_tail;     /* reads waiting for a barrier */
    struct kv_op *done_head, *done_tail; /* completions for the loop */
    int bstop;
    pthread_t bthread;
    int bthread_started;

    /* Stats (loop thread unless atomic). */
    uint64_t connected, total_connections, commands, proposals, proposal_errors,
        proposal_retries, stale_reads;
    uint64_t writes_inflight, reads_inflight; /* across connections */
    uint64_t fast_reads;                      /* linearizable reads that needed no wait */
    atomic_uint_fast64_t barriers, barrier_reads;
};

static void issue(struct kv_conn *conn);
static void process_input(struct kv_conn *conn);
static void conn_close(struct kv_conn *conn);
static void on_write(uv_write_t *req, int status);
static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf);
static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

void kv_server_options_init(struct kv_server_options *o)
{
    memset(o, 0, sizeof(*o));
    o->version = KV_SERVER_OPTIONS_VERSION;
    o->host = "127.0.0.1";
    o->barrier_timeout_ms = 5000;
    o->sync_interval_ms = 100;
    o->stream = "";
    o->replica_id = "";
}

/* splitmix64: spreads a counter into well-mixed 64-bit ids. */
static uint64_t mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ULL;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* ------------------------------------------------------------------ ops */

static void op_free(struct kv_op *op)
{
    resp_cmd_free(op->cmd);
    dlog_buf_free(&op->reply);
    dlog_buf_free(&op->enc);
    free(op);
}

static void op_fail(struct kv_op *op, const char *what, int rc)
{
    op->reply.len = 0;
    if (resp_add_errorf(&op->reply, "ERR %s: %s", what, dlog_strerror(rc)) != 0) {
        op->reply.len = 0;
    }
    op->state = OP_DONE;
}

/* Queues a finished op for the loop (any thread). */
static void complete(struct kv_server *srv, struct kv_op *op)
{
    pthread_mutex_lock(&srv->mu);
    op->qnext = NULL;
    if (srv->done_tail != NULL) {
        srv->done_tail->qnext = op;
    } else {
        srv->done_head = op;
    }
    srv->done_tail = op;
    pthread_mutex_unlock(&srv->mu);
    uv_async_send(&srv->async);
}

/* Propose callback: runs on the apply thread (or wherever sm.h says). */
static void on_proposed(struct dlog_propose_req *req, int status, const void *result,
                        size_t len)
{
    struct kv_op *op = req->data;
    op->status = status;
    op->reply.len = 0;
    if (status == 0 && len > 0 && dlog_buf_append(&op->reply, result, len) != 0) {
        op->status = DLOG_ENOMEM;
    }
    complete(op->srv, op);
}

static int propose(struct kv_server *srv, struct kv_op *op, uint64_t client_id)
{
    memset(&op->preq, 0, sizeof(op->preq));
    op->preq.data = op;
    op->tries++;
    return dlog_sm_propose(srv->sm, &op->preq, client_id, op->conn ? op->seq : 0,
                           op->enc.p, op->enc.len, on_proposed);
}

/* Proposes a PURGE of expired keys when the earliest expiry has passed. */
static void maybe_purge(struct kv_server *srv, uint64_t now)
{
    uint64_t first = 0;
    if (srv->purge_inflight || now - srv->last_purge_ms < PURGE_EVERY_MS) {
        return;
    }
    srv->last_purge_ms = now;
    if (kv_read_begin(srv->state) != 0) {
        return;
    }
    int rc = kv_read_first_expiry(srv->state, &first);
    kv_read_end(srv->state);
    if (rc != 0 || first == 0 || first > now) {
        return;
    }
    struct kv_op *op = calloc(1, sizeof(*op));
    struct kv_cmd kc = {.op = KV_OP_PURGE, .now_ms = now};
    if (op == NULL || kv_cmd_encode(&kc, &op->enc) != 0) {
        if (op != NULL) {
            op_free(op);
        }
        return;
    }
    op->kind = KV_WRITE;
    op->srv = srv;
    if (propose(srv, op, 0) != 0) {
        op_free(op);
        return;
    }
    srv->purge_inflight = 1;
}

/* ------------------------------------------------------------------ barrier thread */

/*
 * Takes every queued read, runs one barrier for all of them, hands them
 * back. A read queued while a barrier runs waits for the next one: a
 * barrier only covers records written before it started.
 */
static void *barrier_main(void *arg)
{
    struct kv_server *srv = arg;
    pthread_mutex_lock(&srv->mu);
    for (;;) {
        while (srv->bq_head == NULL && !srv->bstop) {
            pthread_cond_wait(&srv->cond, &srv->mu);
        }
        if (srv->bstop) {
            break;
        }
        struct kv_op *batch = srv->bq_head, *last = srv->bq_tail;
        srv->bq_head = srv->bq_tail = NULL;
        pthread_mutex_unlock(&srv->mu);

        int rc = dlog_sm_barrier(srv->sm, srv->opts.barrier_timeout_ms);
        uint64_t n = 0;
        for (struct kv_op *op = batch; op != NULL; op = op->qnext) {
            op->status = rc;
            n++;
        }
        atomic_fetch_add(&srv->barriers, 1);
        atomic_fetch_add(&srv->barrier_reads, n);

        pthread_mutex_lock(&srv->mu);
        if (srv->done_tail != NULL) {
            srv->done_tail->qnext = batch;
        } else {
            srv->done_head = batch;
        }
        srv->done_tail = last;
        uv_async_send(&srv->async);
    }
    pthread_mutex_unlock(&srv->mu);
    return NULL;
}

static void barrier_enqueue(struct kv_server *srv, struct kv_op *op)
{
    pthread_mutex_lock(&srv->mu);
    op->qnext = NULL;
    if (srv->bq_tail != NULL) {
        srv->bq_tail->qnext = op;
    } else {
        srv->bq_head = op;
    }
    srv->bq_tail = op;
    pthread_cond_signal(&srv->cond);
    pthread_mutex_unlock(&srv->mu);
}

/* ------------------------------------------------------------------ running commands */

static void ctx_init(struct kv_ctx *ctx, struct kv_conn *conn)
{
    ctx->srv = conn->srv;
    ctx->state = conn->srv->state;
    ctx->sess = &conn->sess;
    ctx->scans = conn->srv->scans;
    ctx->now_ms = kv_now_ms();
}

/* Runs op's command function into op->reply (and op->enc for writes). */
static void run_fn(struct kv_op *op)
{
    struct kv_ctx ctx;
    ctx_init(&ctx, op->conn);
    if (op->def->fn(&ctx, op->cmd, &op->reply, &op->enc) != 0) {
        op->reply.len = 0;
        op->enc.len = 0;
        if (resp_add_error(&op->reply, "ERR out of memory") != 0) {
            op->reply.len = 0;
        }
    }
}

/* Evaluates a read now, in its own read view. */
static void read_now(struct kv_op *op)
{
    int rc = kv_read_begin(op->conn->srv->state);
    if (rc != 0) {
        op_fail(op, "read", rc);
        return;
    }
    run_fn(op);
    kv_read_end(op->conn->srv->state);
    op->state = OP_DONE;
}

static int op_stale(struct kv_conn *conn)
{
    return conn->sess.stale >= 0 ? conn->sess.stale : conn->srv->opts.stale_reads;
}

/*
 * Issues the connection's requests in order, as far as the ordering rules
 * allow (kv_server.h): a read waits for earlier writes, a write for earlier
 * reads. Then sends the replies that are ready.
 */
static void issue(struct kv_conn *conn)
{
    struct kv_server *srv = conn->srv;
    struct kv_op *op;

    while (!conn->closing && (op = conn->issue) != NULL) {
        if (op->state == OP_DONE) {
            conn->issue = op->next;
            continue;
        }
        if ((op->kind == KV_READ && conn->writes_inflight > 0) ||
            (op->kind == KV_WRITE && conn->reads_inflight > 0)) {
            break;
        }
        conn->issue = op->next;
        switch (op->kind) {
        case KV_LOCAL:
            run_fn(op);
            op->state = OP_DONE;
            break;
        case KV_READ:
            if (op_stale(conn)) {
                srv->stale_reads++;
                read_now(op);
            } else if (dlog_sm_barrier(srv->sm, 0) == 0) {
                /* Fast path: a barrier with a zero timeout never blocks (one
                 * LMDB read of the stream's last DLSN). When this replica has
                 * already applied everything written before now, the read is
                 * linearizable at once; otherwise the barrier thread waits. */
                srv->fast_reads++;
                read_now(op);
            } else {
                op->state = OP_ISSUED;
                srv->reads_inflight++;
                conn->reads_inflight++;
                conn->inflight++;
                barrier_enqueue(srv, op);
            }
            break;
        case KV_WRITE: {
            run_fn(op);
            if (op->reply.len > 0) {
                op->state = OP_DONE; /* rejected before proposing */
                break;
            }
            op->seq = ++conn->seq;
            int rc = propose(srv, op, conn->client_id);
            if (rc != 0) {
                srv->proposal_errors++;
                op_fail(op, "propose", rc);
                break;
            }
            srv->proposals++;
            srv->writes_inflight++;
            op->state = OP_ISSUED;
            conn->writes_inflight++;
            conn->inflight++;
            break;
        }
        }
    }
    /* flush */
    if (conn->closing) {
        return;
    }
    struct dlog_buf out = {0};
    int close_after = 0, oom = 0;
    while ((op = conn->head) != NULL && op->state == OP_DONE) {
        if (dlog_buf_append(&out, op->reply.p, op->reply.len) != 0) {
            oom = 1;
        }
        close_after |= op->is_quit;
        conn->head = op->next;
        if (conn->head == NULL) {
            conn->tail = NULL;
        }
        if (conn->issue == op) {
            conn->issue = op->next;
        }
        conn->npending--;
        op_free(op);
    }
    if (oom) {
        dlog_buf_free(&out);
        conn_close(conn);
        return;
    }
    if (out.len > 0) {
        struct write_req *wr = malloc(sizeof(*wr));
        if (wr == NULL) {
            dlog_buf_free(&out);
            conn_close(conn);
            return;
        }
        wr->conn = conn;
        wr->close_after = close_after;
        wr->buf = out;
        uv_buf_t b = uv_buf_init(out.p, (unsigned)out.len);
        if (uv_write(&wr->req, (uv_stream_t *)&conn->tcp, &b, 1, on_write) != 0) {
            dlog_buf_free(&wr->buf);
            free(wr);
            conn_close(conn);
            return;
        }
    }
    /* Backpressure: pause above the limits, resume below half of them. */
    size_t wq = uv_stream_get_write_queue_size((uv_stream_t *)&conn->tcp);
    if (!conn->paused && (conn->npending >= MAX_PENDING || wq > MAX_WRITE_QUEUE)) {
        conn->paused = 1;
        uv_read_stop((uv_stream_t *)&conn->tcp);
    } else if (conn->paused && !conn->quit_parsed && conn->npending < MAX_PENDING / 2 &&
               wq < MAX_WRITE_QUEUE / 2) {
        conn->paused = 0;
        uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read);
        if (conn->in_len > 0) {
            if (conn->in_process) {
                conn->again = 1;
            } else {
                process_input(conn);
            }
        }
    }
}

/* ------------------------------------------------------------------ completions */

static int retryable(int status)
{
    return status == DLOG_ETIMEDOUT || status == DLOG_EUNAVAILABLE ||
           status == DLOG_EOVERCAPACITY || status == DLOG_EBUSY;
}

static void conn_free(struct kv_conn *conn)
{
    struct kv_op *op = conn->head;
    while (op != NULL) {
        struct kv_op *next = op->next;
        op_free(op);
        op = next;
    }
    resp_parser_free(&conn->parser);
    free(conn->in);
    free(conn->sess.name);
    free(conn);
}

/* Drains the completion queue: proposals applied, barriers passed. */
static void on_async(uv_async_t *h)
{
    struct kv_server *srv = h->data;
    struct kv_conn *touched = NULL;
    int view = 0;

    pthread_mutex_lock(&srv->mu);
    struct kv_op *list = srv->done_head;
    srv->done_head = srv->done_tail = NULL;
    pthread_mutex_unlock(&srv->mu);

    while (list != NULL) {
        struct kv_op *op = list;
        list = op->qnext;
        struct kv_conn *conn = op->conn;
        if (conn == NULL) { /* the server's PURGE */
            srv->purge_inflight = 0;
            op_free(op);
            continue;
        }
        conn->inflight--;
        if (op->kind == KV_WRITE) {
            srv->writes_inflight--;
            conn->writes_inflight--;
            if (op->status != 0 && retryable(op->status) && op->tries < PROPOSE_TRIES &&
                !conn->closing && !srv->stopping) {
                srv->proposal_retries++;
                if (propose(srv, op, conn->client_id) == 0) {
                    srv->writes_inflight++;
                    conn->writes_inflight++;
                    conn->inflight++;
                    continue;
                }
            }
            if (op->status != 0) {
                srv->proposal_errors++;
                op_fail(op, "propose", op->status);
            }
            op->state = OP_DONE;
        } else {
            srv->reads_inflight--;
            conn->reads_inflight--;
            if (op->status != 0) {
                op_fail(op,
                        op->status == DLOG_ETIMEDOUT
                            ? "read barrier (try again, or CLIENT STALE ON)"
                            : "read barrier",
                        op->status);
            } else if (!conn->closing) {
                /* One read view for every read this barrier released. */
                if (!view && kv_read_begin(srv->state) == 0) {
                    view = 1;
                }
                if (view) {
                    run_fn(op);
                    op->state = OP_DONE;
                } else {
                    op_fail(op, "read", DLOG_EIO);
                }
            }
            op->state = OP_DONE;
        }
        if (conn->closing) {
            if (conn->inflight == 0 && conn->closed) {
                conn_free(conn);
            }
        } else if (!conn->touched) {
            conn->touched = 1;
            conn->tnext = touched;
            touched = conn;
        }
    }
    if (view) {
        kv_read_end(srv->state);
    }
    while (touched != NULL) {
        struct kv_conn *conn = touched;
        touched = conn->tnext;
        conn->touched = 0;
        issue(conn);
    }
}

/* ------------------------------------------------------------------ connections */

static void on_write(uv_write_t *req, int status)
{
    struct write_req *wr = (struct write_req *)req;
    struct kv_conn *conn = wr->conn;
    int close_after = wr->close_after;
    dlog_buf_free(&wr->buf);
    free(wr);
    if (status != 0 || close_after) {
        conn_close(conn);
    } else if (conn->paused && !conn->closing) {
        issue(conn); /* may resume reading */
    }
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    struct kv_conn *conn = h->data;
    if (conn->in_cap - conn->in_len < READ_CHUNK) {
        size_t cap = conn->in_len + READ_CHUNK;
        char *p = realloc(conn->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
            return;
        }
        conn->in = p;
        conn->in_cap = cap;
    }
    *buf = uv_buf_init(conn->in + conn->in_len, (unsigned)(conn->in_cap - conn->in_len));
}

static void new_op(struct kv_conn *conn, struct resp_cmd *cmd)
{
    struct kv_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        resp_cmd_free(cmd);
        conn_close(conn);
        return;
    }
    op->srv = conn->srv;
    op->conn = conn;
    op->cmd = cmd;
    if (cmd != NULL) {
        op->def = kv_command_lookup(cmd);
        int ok = kv_command_check(op->def, cmd, &op->reply);
        if (ok == 1) {
            op->kind = op->def->kind;
            op->is_quit = strcmp(op->def->name, "quit") == 0;
            conn->quit_parsed |= op->is_quit;
        } else {
            op->state = OP_DONE;
        }
        conn->srv->commands++;
    }
    if (conn->tail != NULL) {
        conn->tail->next = op;
    } else {
        conn->head = op;
    }
    conn->tail = op;
    if (conn->issue == NULL) {
        conn->issue = op;
    }
    conn->npending++;
}

/* Parses what was received into requests and issues them. */
static void process_input(struct kv_conn *conn)
{
    if (conn->in_process) {
        return;
    }
    conn->in_process = 1;
    do {
        size_t off = 0;
        conn->again = 0;
        while (!conn->closing && !conn->quit_parsed && conn->npending < MAX_PENDING &&
               off < conn->in_len) {
            size_t used = 0;
            struct resp_cmd *cmd = NULL;
            int r = resp_parse(&conn->parser, conn->in + off, conn->in_len - off, &used,
                               &cmd);
            off += used;
            if (r == RESP_AGAIN) {
                break;
            }
            if (r == RESP_EPROTO) {
                /* Answer with the error, then close (as Redis does). */
                new_op(conn, NULL);
                if (conn->tail != NULL && conn->tail->cmd == NULL) {
                    struct kv_op *op = conn->tail;
                    if (resp_add_error(&op->reply, conn->parser.errmsg) != 0) {
                        op->reply.len = 0;
                    }
                    op->state = OP_DONE;
                    op->is_quit = 1;
                }
                conn->quit_parsed = 1;
                off = conn->in_len;
                break;
            }
            new_op(conn, cmd);
        }
        if (off > 0 && !conn->closing) {
            memmove(conn->in, conn->in + off, conn->in_len - off);
            conn->in_len -= off;
        }
        if (conn->quit_parsed && !conn->closing) {
            uv_read_stop((uv_stream_t *)&conn->tcp);
            conn->in_len = 0;
        }
        if (!conn->closing) {
            issue(conn);
        }
    } while (conn->again && !conn->closing);
    conn->in_process = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct kv_conn *conn = s->data;
    if (nread < 0) {
        conn_close(conn); /* EOF or error */
        return;
    }
    conn->in_len += (size_t)nread;
    process_input(conn);
}

static void on_conn_closed(uv_handle_t *h)
{
    struct kv_conn *conn = h->data;
    struct kv_server *srv = conn->srv;
    if (conn->prev != NULL) {
        conn->prev->next = conn->next;
    } else {
        srv->conns = conn->next;
    }
    if (conn->next != NULL) {
        conn->next->prev = conn->prev;
    }
    conn->closed = 1;
    if (conn->inflight == 0) {
        conn_free(conn);
    }
}

static void conn_close(struct kv_conn *conn)
{
    if (conn->closing) {
        return;
    }
    conn->closing = 1;
    conn->srv->connected--;
    uv_read_stop((uv_stream_t *)&conn->tcp);
    uv_close((uv_handle_t *)&conn->tcp, on_conn_closed);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct kv_server *srv = server->data;
    if (status != 0 || srv->stopping) {
        return;
    }
    struct kv_conn *conn = calloc(1, sizeof(*conn));
    if (conn == NULL) {
        return;
    }
    conn->srv = srv;
    resp_parser_init(&conn->parser, NULL);
    conn->sess.stale = -1;
    conn->sess.id = ++srv->next_id;
    conn->client_id = mix64(srv->id_base + conn->sess.id) | 1; /* never 0 */
    if (uv_tcp_init(srv->loop, &conn->tcp) != 0) {
        free(conn);
        return;
    }
    conn->tcp.data = conn;
    srv->connected++;
    srv->total_connections++;
    conn->next = srv->conns;
    if (srv->conns != NULL) {
        srv->conns->prev = conn;
    }
    srv->conns = conn;
    if (uv_accept(server, (uv_stream_t *)&conn->tcp) != 0) {
        conn_close(conn);
        return;
    }
    uv_tcp_nodelay(&conn->tcp, 1);
    if (uv_read_start((uv_stream_t *)&conn->tcp, on_alloc, on_read) != 0) {
        conn_close(conn);
    }
}

/* ------------------------------------------------------------------ timer: sync, purge
 */

static void sync_work(uv_work_t *w)
{
    struct kv_server *srv = w->data;
    kv_state_sync(srv->state);
}

static void sync_done(uv_work_t *w, int status)
{
    struct kv_server *srv = w->data;
    srv->sync_busy = 0;
}

static void on_timer(uv_timer_t *t)
{
    struct kv_server *srv = t->data;
    uint64_t now = kv_now_ms();
    if (srv->opts.sync_interval_ms >= 0 && !srv->sync_busy) {
        srv->sync_work.data = srv;
        if (uv_queue_work(srv->loop, &srv->sync_work, sync_work, sync_done) == 0) {
            srv->sync_busy = 1;
        }
    }
    maybe_purge(srv, now);
}

/* ------------------------------------------------------------------ start / stop */

static uint64_t random_u64(void)
{
    uint64_t v = 0;
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v)) {
            v = 0;
        }
        close(fd);
    }
    return v ^ kv_now_ms() ^ ((uint64_t)getpid() << 40);
}

int kv_server_start(uv_loop_t *loop, struct dlog_sm *sm, struct kv_state *state,
                    const struct kv_server_options *o, struct kv_server **out,
                    char *errmsg)
{
    struct kv_server *srv = calloc(1, sizeof(*srv));
    struct sockaddr_storage addr;
    int rc;

    *out = NULL;
    if (srv == NULL || (srv->scans = kv_scans_new()) == NULL) {
        free(srv);
        snprintf(errmsg, DLOG_ERRMSG_LEN, "out of memory");
        return DLOG_ENOMEM;
    }
    srv->loop = loop;
    srv->sm = sm;
    srv->state = state;
    srv->opts = *o;
    snprintf(srv->host, sizeof(srv->host), "%s", o->host ? o->host : "127.0.0.1");
    snprintf(srv->stream, sizeof(srv->stream), "%s", o->stream ? o->stream : "");
    snprintf(srv->replica_id, sizeof(srv->replica_id), "%s",
             o->replica_id ? o->replica_id : "");
    srv->opts.host = srv->host;
    srv->opts.stream = srv->stream;
    srv->opts.replica_id = srv->replica_id;
    srv->id_base = random_u64();
    srv->start_ms = kv_now_ms();
    pthread_mutex_init(&srv->mu, NULL);
    pthread_cond_init(&srv->cond, NULL);

    if (strchr(srv->host, ':') != NULL) {
        rc = uv_ip6_addr(srv->host, o->port, (struct sockaddr_in6 *)&addr);
    } else {
        rc = uv_ip4_addr(srv->host, o->port, (struct sockaddr_in *)&addr);
    }
    if (rc != 0) {
        snprintf(errmsg, DLOG_ERRMSG_LEN, "bad listen address '%.200s'", srv->host);
        rc = DLOG_EINVAL;
        goto err;
    }
    uv_tcp_init(loop, &srv->listener);
    srv->listener.data = srv;
    int uvrc;
    if ((uvrc = uv_tcp_bind(&srv->listener, (struct sockaddr *)&addr, 0)) != 0 ||
        (uvrc = uv_listen((uv_stream_t *)&srv->listener, 511, on_connection)) != 0) {
        snprintf(errmsg, DLOG_ERRMSG_LEN, "listen on %.100s:%d: %.100s", srv->host,
                 o->port, uv_strerror(uvrc));
        uv_close((uv_handle_t *)&srv->listener, NULL);
        rc = DLOG_EINVAL;
        goto err;
    }
    struct sockaddr_storage bound;
    int blen = sizeof(bound);
    uv_tcp_getsockname(&srv->listener, (struct sockaddr *)&bound, &blen);
    srv->port = bound.ss_family == AF_INET6
                    ? ntohs(((struct sockaddr_in6 *)&bound)->sin6_port)
                    : ntohs(((struct sockaddr_in *)&bound)->sin_port);

    uv_async_init(loop, &srv->async, on_async);
    srv->async.data = srv;
    uv_timer_init(loop, &srv->timer);
    srv->timer.data = srv;
    if (pthread_create(&srv->bthread, NULL, barrier_main, srv) != 0) {
        snprintf(errmsg, DLOG_ERRMSG_LEN, "cannot start the barrier thread");
        uv_close((uv_handle_t *)&srv->listener, NULL);
        uv_close((uv_handle_t *)&srv->async, NULL);
        uv_close((uv_handle_t *)&srv->timer, NULL);
        rc = DLOG_EINTERNAL;
        goto err;
    }
    srv->bthread_started = 1;
    uv_timer_start(&srv->timer, on_timer, TIMER_MS, TIMER_MS);
    *out = srv;
    return 0;
err:
    /* Let the handles opened so far close (the loop has no others yet). */
    uv_run(loop, UV_RUN_DEFAULT);
    kv_server_free(srv);
    return rc;
}

int kv_server_port(struct kv_server *s)
{
    return s->port;
}

void kv_server_stop(struct kv_server *srv)
{
    if (srv->stopping) {
        return;
    }
    srv->stopping = 1;
    uv_close((uv_handle_t *)&srv->listener, NULL);
    uv_timer_stop(&srv->timer);
    uv_close((uv_handle_t *)&srv->timer, NULL);
    for (struct kv_conn *c = srv->conns; c != NULL; c = c->next) {
        conn_close(c);
    }
    if (srv->bthread_started) {
        pthread_mutex_lock(&srv->mu);
        srv->bstop = 1;
        pthread_cond_signal(&srv->cond);
        pthread_mutex_unlock(&srv->mu);
        pthread_join(srv->bthread, NULL);
        srv->bthread_started = 0;
        /* Reads that never got a barrier fail. */
        pthread_mutex_lock(&srv->mu);
        struct kv_op *op = srv->bq_head;
        srv->bq_head = srv->bq_tail = NULL;
        pthread_mutex_unlock(&srv->mu);
        while (op != NULL) {
            struct kv_op *next = op->qnext;
            op->status = DLOG_ECLOSED;
            complete(srv, op);
            op = next;
        }
    }
}

void kv_server_close(struct kv_server *srv)
{
    if (uv_is_closing((uv_handle_t *)&srv->async)) {
        return;
    }
    on_async(&srv->async); /* completions delivered by dlog_sm_close */
    uv_close((uv_handle_t *)&srv->async, NULL);
}

void kv_server_free(struct kv_server *srv)
{
    if (srv == NULL) {
        return;
    }
    kv_scans_free(srv->scans);
    pthread_mutex_destroy(&srv->mu);
    pthread_cond_destroy(&srv->cond);
    free(srv);
}

void kv_server_get_stats(struct kv_server *s, struct kv_server_stats *out)
{
    memset(out, 0, sizeof(*out));
    out->port = s->port;
    out->uptime_s = (kv_now_ms() - s->start_ms) / 1000;
    out->connected_clients = s->connected;
    out->total_connections = s->total_connections;
    out->total_commands = s->commands;
    out->proposals = s->proposals;
    out->proposal_errors = s->proposal_errors;
    out->proposal_retries = s->proposal_retries;
    out->writes_inflight = s->writes_inflight;
    out->reads_inflight = s->reads_inflight;
    out->barriers = atomic_load(&s->barriers);
    out->barrier_reads = atomic_load(&s->barrier_reads);
    out->stale_reads = s->stale_reads;
    out->fast_reads = s->fast_reads;
    out->stale_default = s->opts.stale_reads;
    out->stream = s->stream;
    out->replica_id = s->replica_id;
    out->applied = dlog_sm_applied(s->sm);
    out->applied_since_start = dlog_sm_applied_count(s->sm);
    out->sm_error = dlog_sm_error(s->sm);
}
