/*
 * The write proxy's request handling (see proxy.h). One pconn per client
 * connection; requests are handled in arrival order, and their replies go
 * out as they complete, so writes and long-poll reads may finish out of
 * order (matched by request id on the client).
 *
 * Lifetimes: a pconn is counted by references: one for the connection
 * itself (dropped in its close callback) and one for each write or read in
 * flight; it is freed when the count reaches zero, so a completion that
 * arrives after its client left finds the pconn and drops the reply.
 */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/errmsg.h"
#include "base/log.h"
#include "core/embedded.h"
#include "net/net.h"
#include "proxy/limiter.h"
#include "proxy/owner.h"
#include "wire/wire.h"

#define READERS_PER_CONN   4
#define READER_FETCH_BYTES (1024 * 1024)
#define READ_MAX_BYTES     (8u * 1024 * 1024)
#define ACKED_RING         64

struct pwriter {
    char stream[DLOG_STREAM_NAME_MAX + 1];
    uint64_t epoch;
    struct dlog_writer *w;
    /* With ownership (proxy.h): the one writer of a stream this proxy owns. */
    int owned;
    uint64_t stream_id;
    uint64_t user_epoch; /* clients may write at user_epoch..epoch */
    int fenced;          /* a write came back DLOG_EFENCED: someone took over */
    int acked;           /* a write at this epoch has been acknowledged */
    struct pwriter *next;
};

/* The first reply to a producer's write, kept to answer its retries. */
/* The result of one producer write, kept for its retries. */
struct presult {
    uint64_t seq; /* 0: unused */
    int pending;  /* in flight */
    int status;
    struct dlog_dlsn first, last;
    uint64_t first_txid;
};

/* The last PRODUCER_WINDOW results of a producer, so that pipelined
 * writes resent after a reconnection get their own first answers. */
#define PRODUCER_WINDOW 256

struct producer {
    char stream[DLOG_STREAM_NAME_MAX + 1];
    uint64_t id;
    uint64_t seq; /* the last sequence accepted */
    struct presult win[PRODUCER_WINDOW];
    struct pwait *waiters; /* retries that arrived while their write was in flight */
    struct producer *next;
};

static struct presult *presult_find(struct producer *pr, uint64_t seq)
{
    struct presult *r = &pr->win[seq % PRODUCER_WINDOW];
    return r->seq == seq ? r : NULL;
}

struct pconn;

struct pwait {
    struct pconn *c;
    uint64_t request_id;
    uint64_t seq;
    struct pwait *next;
};

struct preader {
    struct pconn *c;
    struct dlog_reader *r;
    char stream[DLOG_STREAM_NAME_MAX + 1];
    struct dlog_dlsn pos; /* where its next record is */
    uint64_t min_txid;
    struct dlog_dlsn end;
    uint8_t *prefix;
    size_t prefix_len;
    int busy;
    uint64_t used; /* for eviction */
    struct dlog_read_req req;
    struct dlog_record *recs;
    size_t max;
    uint64_t request_id;
    uint32_t max_bytes;
    struct preader *next;
};

struct pconn {
    struct proxy *p;
    struct net_conn *nc;
    int refs;
    int closed;
    int hello;
    struct preader *readers;
    int nreaders;
    uint64_t tick;
    const uint8_t *frame; /* the frame being handled (on_frame only) */
    size_t frame_len;
    struct pconn *prev, *next;
};

/* A WRITE held back by the rate limiter until its tokens have accrued: a
 * copy of its frame, decoded again when it is due. */
struct pdelay {
    struct pconn *c; /* counted */
    uint8_t *frame;
    size_t len;
    int admitted;      /* its tokens are taken (else it waits for its owner) */
    uint64_t since_ns; /* when it was first put aside */
    uint64_t due_ns;   /* clock_now_ns() when it may go */
    struct pdelay *next;
};

/* The writes of one stream waiting for their tokens, in arrival order, and
 * one timer, armed while the queue is not empty, for its head. A write that
 * arrives while the queue is not empty joins its tail even if its tokens
 * are there, so a stream's writes leave in the order they came. */
struct pqueue {
    uv_timer_t timer;
    struct proxy *p;
    char stream[DLOG_STREAM_NAME_MAX + 1];
    struct pdelay *head, *tail;
    struct pqueue *next; /* in p->queues */
};

struct proxy {
    uv_loop_t *loop;
    struct dlog_ns *ns;
    struct net_server *srv;
    struct wire_limits lim;
    char name[WIRE_MAX_PEER_NAME + 1];
    struct pwriter *writers;
    struct producer *producers;
    struct pconn *conns;
    struct limiter *limiter; /* NULL: no rate limits (a remote namespace) */
    struct owner *owner;     /* NULL: no ownership (one proxy, local mode) */
    unsigned lost_gen;       /* owner_lost_gen when last looked at */
    uint64_t lease_ms;
    struct pqueue *queues;
    /* While on_queue_due hands a put-aside request back to its handler: its
     * first time aside, and that putting it aside again keeps it at the
     * head of its queue. */
    uint64_t redo_since;
    /* The last (stream, epoch) pairs whose first acknowledgement was logged. */
    struct {
        uint64_t stream_id, epoch;
    } acked[ACKED_RING];
    size_t acked_next;
    unsigned long accepted, open;
    int stopping;
    int freeing;
};

struct pwrite {
    struct dlog_write_req req;
    struct pconn *c;
    uint64_t request_id;
    struct producer *prod;
    uint64_t seq;
    int owned; /* went to an owned writer: of stream, at epoch */
    uint64_t stream_id;
    uint64_t epoch;
    char stream[DLOG_STREAM_NAME_MAX + 1];
};

static void conn_unref(struct pconn *c)
{
    if (--c->refs > 0)
        return;
    struct proxy *p = c->p;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    if (p->freeing && p->conns == NULL)
        free(p);
}

/* ---------------------------------------------------------------- replies */

static void send_msg(struct pconn *c, const struct wire_msg *m)
{
    char errmsg[DLOG_ERRMSG_SIZE];
    struct bytes out;
    if (c->closed)
        return;
    size_t want = 256;
    if (m->type == WIRE_READ && m->status == 0)
        for (size_t i = 0; i < m->u.read_rep.nrecs; i++)
            want += m->u.read_rep.recs[i].len + m->u.read_rep.recs[i].key_len + 40;
    if (bytes_init_rbuf(&out, want) != 0) {
        net_conn_close(c->nc, DLOG_ENOMEM);
        return;
    }
    int rv = wire_encode(m, &c->p->lim, &out, errmsg);
    if (rv != 0) {
        log_error("proxy", "%s: cannot encode a reply: %s", c->nc->peer, errmsg);
        bytes_free(&out);
        net_conn_close(c->nc, DLOG_EINTERNAL);
        return;
    }
    struct rbuf *b = rbuf_adopt(&out); /* the frame is sent without a copy */
    net_conn_send(c->nc, b);
    rbuf_unref(b);
}

static void rep_init(struct wire_msg *rep, uint32_t type, uint64_t request_id, int status)
{
    memset(rep, 0, sizeof *rep);
    rep->version = 1;
    rep->type = type;
    rep->is_reply = 1;
    rep->request_id = request_id;
    rep->status = status;
}

static void send_error(struct pconn *c, uint32_t type, uint64_t request_id, int status,
                       const char *message)
{
    struct wire_msg rep;
    rep_init(&rep, type, request_id, status);
    rep.err.message = message != NULL && *message ? message : dlog_strerror(status);
    send_msg(c, &rep);
}

/* ---------------------------------------------------------------- writers */

static struct pwriter *find_writer(struct proxy *p, const char *stream, uint64_t epoch)
{
    for (struct pwriter *pw = p->writers; pw != NULL; pw = pw->next)
        if (pw->epoch == epoch && strcmp(pw->stream, stream) == 0)
            return pw;
    return NULL;
}

/* Open a writer (shared or exclusive) and remember it under its epoch. */
static int open_writer(struct proxy *p, const char *stream, int mode,
                       struct pwriter **out, char *errmsg)
{
    struct dlog_writer_options o;
    struct dlog_writer *w;
    dlog_writer_options_init(&o);
    o.mode = mode;
    int rv = dlog_writer_open(p->ns, stream, &o, &w);
    if (rv != 0) {
        errmsg_copy(errmsg, dlog_errmsg(p->ns));
        return rv;
    }
    struct pwriter *pw = find_writer(p, stream, dlog_writer_epoch(w));
    if (pw != NULL) { /* a shared writer at this epoch exists already */
        dlog_writer_close(w);
        *out = pw;
        return 0;
    }
    if (mode == DLOG_WRITER_EXCLUSIVE) { /* older epochs are fenced now */
        for (struct pwriter **pp = &p->writers; *pp != NULL;) {
            struct pwriter *old = *pp;
            if (strcmp(old->stream, stream) == 0 && old->epoch < dlog_writer_epoch(w)) {
                *pp = old->next;
                dlog_writer_close(old->w);
                free(old);
            } else {
                pp = &old->next;
            }
        }
    }
    pw = calloc(1, sizeof *pw);
    if (pw == NULL) {
        dlog_writer_close(w);
        return DLOG_ENOMEM;
    }
    snprintf(pw->stream, sizeof pw->stream, "%s", stream);
    pw->epoch = dlog_writer_epoch(w);
    pw->w = w;
    pw->next = p->writers;
    p->writers = pw;
    *out = pw;
    return 0;
}

/* ---------------------------------------------------------------- ownership */

static void delay_req(struct pconn *c, const struct wire_msg *m, const char *stream,
                      uint64_t wait_ns, int admitted);
static int stream_queued(struct proxy *p, const char *stream);

static void send_redirect(struct pconn *c, uint32_t type, uint64_t request_id,
                          const char *addr, const char *message)
{
    struct wire_msg rep;
    rep_init(&rep, type, request_id, DLOG_ENOTOWNER);
    rep.err.message = message;
    rep.err.address = addr;
    send_msg(c, &rep);
}

static struct pwriter *owned_writer(struct proxy *p, const char *stream)
{
    for (struct pwriter *pw = p->writers; pw != NULL; pw = pw->next)
        if (pw->owned && strcmp(pw->stream, stream) == 0)
            return pw;
    return NULL;
}

/* Unlinks w and closes it: its writes in flight complete first. */
static void drop_writer(struct proxy *p, struct pwriter *w)
{
    for (struct pwriter **pp = &p->writers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == w) {
            *pp = w->next;
            break;
        }
    dlog_writer_close(w->w);
    free(w);
}

/* Closes the writers of the streams the owner thread found taken by other
 * proxies since the last look. */
static void drop_lost(struct proxy *p)
{
    unsigned gen = owner_lost_gen(p->owner);
    if (gen == p->lost_gen)
        return;
    p->lost_gen = gen;
    for (struct pwriter *pw = p->writers, *next; pw != NULL; pw = next) {
        next = pw->next;
        if (pw->owned && !owner_owns(p->owner, pw->stream_id)) {
            log_info("proxy", "%s: gave up '%s' (epoch %llu)", owner_self(p->owner),
                     pw->stream, (unsigned long long)pw->epoch);
            drop_writer(p, pw);
        }
    }
}

/*
 * The writer of stream that this proxy owns, for the request m being
 * handled: taking the stream over when it has no live owner, and opening
 * it then with an exclusive writer (a new epoch, which fences the previous
 * owner). NULL when m has been answered (a redirect to the owner, or an
 * error) or put aside until its dead owner's lease has run out.
 */
static struct pwriter *own_stream(struct pconn *c, const struct wire_msg *m,
                                  const char *stream)
{
    struct proxy *p = c->p;
    struct dlog_meta_ops *meta = embedded_meta(p->ns);
    char errmsg[DLOG_ERRMSG_SIZE] = "", msg[DLOG_ERRMSG_SIZE];
    struct meta_stream ms;
    struct owner_claim cl;

    drop_lost(p);
    struct pwriter *w = owned_writer(p, stream);
    if (w != NULL && !w->fenced)
        return w;
    if (w != NULL)
        drop_writer(p, w);
    memset(&ms, 0, sizeof ms);
    int rv = meta->get(meta, stream, &ms);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv,
                   rv == DLOG_ENOTFOUND ? "no such stream" : meta->errmsg);
        return NULL;
    }
    uint64_t id = ms.id, epoch = ms.epoch;
    meta_stream_clear(&ms);
    rv = owner_claim(p->owner, id, epoch, &cl, errmsg);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, errmsg);
        return NULL;
    }
    if (cl.state == OWNER_OTHER) {
        errmsg_printf(msg, "stream '%s' is owned by proxy %s at %s", stream, cl.holder,
                      cl.addr);
        send_redirect(c, m->type, m->request_id, cl.addr, msg);
        return NULL;
    }
    if (cl.state == OWNER_WAIT) {
        uint64_t now = clock_now_ns(), since = p->redo_since ? p->redo_since : now;
        if (now - since > 3 * p->lease_ms * NS_PER_MS) {
            errmsg_printf(msg, "stream '%s': its owner %s neither answers nor lets go",
                          stream, cl.holder);
            send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE, msg);
            return NULL;
        }
        uint64_t ms_wait = cl.wait_ms < 50 ? 50 : cl.wait_ms > 250 ? 250 : cl.wait_ms;
        delay_req(c, m, stream, ms_wait * NS_PER_MS, 0);
        return NULL;
    }
    rv = open_writer(p, stream, DLOG_WRITER_EXCLUSIVE, &w, errmsg);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, errmsg);
        return NULL;
    }
    w->owned = 1;
    w->stream_id = id;
    w->user_epoch = cl.user_epoch;
    log_info("proxy", "%s: owner of '%s' at epoch %llu%s%s", owner_self(p->owner), stream,
             (unsigned long long)w->epoch,
             cl.taken && cl.holder[0] ? ", taken from " : "", cl.taken ? cl.holder : "");
    return w;
}

/* WRITER_OPEN with ownership: the owned writer's epoch, or for an exclusive
 * open a new epoch that clients' older writers cannot write at anymore. */
static struct pwriter *owned_open(struct pconn *c, const struct wire_msg *m)
{
    struct proxy *p = c->p;
    const struct wire_writer_open *o = &m->u.writer_open;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    if (!p->redo_since && stream_queued(p, o->stream)) {
        delay_req(c, m, o->stream, 0, 0);
        return NULL;
    }
    struct pwriter *w = own_stream(c, m, o->stream);
    if (w == NULL || o->mode != DLOG_WRITER_EXCLUSIVE)
        return w;
    uint64_t id = w->stream_id;
    int rv = open_writer(p, o->stream, DLOG_WRITER_EXCLUSIVE, &w, errmsg); /* fences w */
    if (rv == 0) {
        w->owned = 1;
        w->stream_id = id;
        w->user_epoch = w->epoch;
        rv = owner_set_user_epoch(p->owner, id, w->epoch, errmsg);
        if (rv != 0)
            w->fenced = 1; /* not ours anymore: the next request finds out */
    }
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, errmsg);
        return NULL;
    }
    return w;
}

static void handle_writer_open(struct pconn *c, const struct wire_msg *m)
{
    struct proxy *p = c->p;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    struct pwriter *pw;
    const struct wire_writer_open *o = &m->u.writer_open;
    int rv = 0;
    if (p->owner != NULL) {
        if ((pw = owned_open(c, m)) == NULL)
            return; /* answered or put aside */
    } else {
        rv = open_writer(p, o->stream, (int)o->mode, &pw, errmsg);
    }
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, errmsg);
        return;
    }
    struct dlog_stream_info *info = NULL;
    rv = dlog_stream_describe(p->ns, o->stream, &info);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, dlog_errmsg(p->ns));
        return;
    }
    struct wire_msg rep;
    rep_init(&rep, m->type, m->request_id, 0);
    rep.u.writer_open_rep.epoch = pw->epoch;
    rep.u.writer_open_rep.last_txid = info->last_txid;
    rep.u.writer_open_rep.config = info->config;
    dlog_stream_info_free(info);
    send_msg(c, &rep);
}

static struct producer *find_producer(struct proxy *p, const char *stream, uint64_t id)
{
    for (struct producer *pr = p->producers; pr != NULL; pr = pr->next)
        if (pr->id == id && strcmp(pr->stream, stream) == 0)
            return pr;
    return NULL;
}

static void send_write_rep(struct pconn *c, uint64_t request_id, int status,
                           const struct dlog_dlsn *first, const struct dlog_dlsn *last,
                           uint64_t first_txid, int duplicate, const char *message)
{
    if (status != 0) {
        send_error(c, WIRE_WRITE, request_id, status, message);
        return;
    }
    struct wire_msg rep;
    rep_init(&rep, WIRE_WRITE, request_id, 0);
    rep.u.write_rep.first = *first;
    rep.u.write_rep.last = *last;
    rep.u.write_rep.first_txid = first_txid;
    rep.u.write_rep.duplicate = duplicate;
    send_msg(c, &rep);
}

/* Logs the first acknowledgement of stream at epoch by this proxy: tests
 * check that no two proxies are ever acknowledged at one epoch. */
static void note_acked(struct proxy *p, struct pwriter *w, const char *stream,
                       uint64_t stream_id, uint64_t epoch)
{
    if (w != NULL && w->acked)
        return;
    if (w != NULL)
        w->acked = 1;
    /* A writer being dropped is no longer listed: the last epochs logged
     * keep the line from repeating. */
    for (size_t i = 0; i < ACKED_RING; i++)
        if (p->acked[i].epoch == epoch && p->acked[i].stream_id == stream_id)
            return;
    p->acked[p->acked_next].stream_id = stream_id;
    p->acked[p->acked_next].epoch = epoch;
    p->acked_next = (p->acked_next + 1) % ACKED_RING;
    log_info("proxy", "proxy %s: acknowledged '%s' at epoch %llu", owner_self(p->owner),
             stream, (unsigned long long)epoch);
}

/*
 * A write of an owned writer completed. DLOG_EFENCED means another proxy
 * took the stream over: nothing of the write was stored, so the client is
 * sent to the new owner to write it there (DLOG_ENOTOWNER, its address in
 * redirect), or told to retry (DLOG_EUNAVAILABLE, *moved set).
 */
static int owned_done(struct proxy *p, struct pwrite *pw, int status, char *redirect,
                      size_t len, int *moved)
{
    struct pwriter *w = NULL;
    for (struct pwriter *x = p->writers; x != NULL && w == NULL; x = x->next)
        if (x->owned && x->epoch == pw->epoch && strcmp(x->stream, pw->stream) == 0)
            w = x;
    if (status == 0)
        note_acked(p, w, pw->stream, pw->stream_id, pw->epoch);
    if (status != DLOG_EFENCED)
        return status;
    if (w != NULL)
        w->fenced = 1;
    *moved = 1;
    if (owner_lookup(p->owner, pw->stream_id, redirect, len))
        return DLOG_ENOTOWNER;
    return DLOG_EUNAVAILABLE;
}

static void on_write_done(struct dlog_write_req *req, int status)
{
    struct pwrite *pw = (struct pwrite *)req;
    struct pconn *c = pw->c;
    char redirect[OWNER_ADDR_MAX + 1] = "";
    int moved = 0;
    if (pw->owned)
        status = owned_done(c->p, pw, status, redirect, sizeof redirect, &moved);
    if (status == DLOG_ENOTOWNER)
        send_redirect(c, WIRE_WRITE, pw->request_id, redirect,
                      "the stream was taken over by another proxy");
    else if (moved)
        send_write_rep(c, pw->request_id, status, NULL, NULL, 0, 0,
                       "the stream was taken over by another proxy: retry");
    else
        send_write_rep(c, pw->request_id, status, &req->first, &req->last,
                       req->first_txid, 0, status ? dlog_strerror(status) : NULL);
    struct producer *pr = pw->prod;
    struct presult *r = pr != NULL ? presult_find(pr, pw->seq) : NULL;
    if (r != NULL) {
        /* Kept whatever the outcome: a resend of a failed WRITE gets the
         * same failure (the client then starts a new producer). */
        r->pending = 0;
        r->status = status;
        r->first = req->first;
        r->last = req->last;
        r->first_txid = req->first_txid;
        for (struct pwait **pp = &pr->waiters; *pp != NULL;) {
            struct pwait *wt = *pp;
            if (wt->seq != pw->seq) {
                pp = &wt->next;
                continue;
            }
            *pp = wt->next;
            send_write_rep(wt->c, wt->request_id, status, &r->first, &r->last,
                           r->first_txid, 1, status ? dlog_strerror(status) : NULL);
            conn_unref(wt->c);
            free(wt);
        }
    }
    free(pw);
    conn_unref(c);
}

static void handle_write(struct pconn *c, const struct wire_msg *m, int admitted)
{
    struct proxy *p = c->p;
    const struct wire_write *wm = &m->u.write;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    struct producer *pr = NULL;
    if (p->stopping) {
        send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE, "server shutting down");
        return;
    }
    struct pwriter *w = NULL;
    if (p->owner != NULL) {
        /* Behind the stream's writes put aside, in order. */
        if (!p->redo_since && stream_queued(p, wm->stream)) {
            delay_req(c, m, wm->stream, 0, admitted);
            return;
        }
        if ((w = own_stream(c, m, wm->stream)) == NULL)
            return;
        if (wm->epoch > w->epoch) { /* our epoch is behind: someone took over */
            w->fenced = 1;
            if ((w = own_stream(c, m, wm->stream)) == NULL)
                return;
        }
        if (wm->epoch < w->user_epoch || wm->epoch > w->epoch) {
            send_error(c, m->type, m->request_id,
                       wm->epoch < w->user_epoch ? DLOG_EFENCED : DLOG_EINVAL,
                       wm->epoch < w->user_epoch
                           ? "writer fenced: a newer exclusive writer owns the stream"
                           : "unknown epoch");
            return;
        }
    } else if ((w = find_writer(p, wm->stream, wm->epoch)) == NULL) {
        /* Not opened here (another proxy, or before a restart): join the
         * stream's current epoch if it is the writer's. */
        int rv = open_writer(p, wm->stream, DLOG_WRITER_SHARED, &w, errmsg);
        if (rv != 0) {
            send_error(c, m->type, m->request_id, rv, errmsg);
            return;
        }
        if (w->epoch != wm->epoch) {
            send_error(c, m->type, m->request_id,
                       w->epoch > wm->epoch ? DLOG_EFENCED : DLOG_EINVAL,
                       w->epoch > wm->epoch
                           ? "writer fenced: a newer writer owns the stream"
                           : "unknown epoch");
            return;
        }
    }
    if (wm->producer_id != 0) {
        pr = find_producer(p, wm->stream, wm->producer_id);
        if (pr != NULL && wm->sequence > pr->seq + 1) {
            char msg[128];
            snprintf(msg, sizeof msg, "producer sequence %llu skips ahead: expected %llu",
                     (unsigned long long)wm->sequence, (unsigned long long)pr->seq + 1);
            send_error(c, m->type, m->request_id, DLOG_ECONFLICT, msg);
            return;
        }
        if (pr != NULL && wm->sequence <= pr->seq) {
            struct presult *r = presult_find(pr, wm->sequence);
            if (r == NULL) { /* applied before the window: no positions kept */
                struct dlog_dlsn zero = DLOG_DLSN_HEAD;
                send_write_rep(c, m->request_id, 0, &zero, &zero, 0, 1, NULL);
                return;
            }
            if (r->pending) { /* answer when the first attempt completes */
                struct pwait *wt = malloc(sizeof *wt);
                if (wt == NULL) {
                    send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL);
                    return;
                }
                wt->c = c;
                wt->request_id = m->request_id;
                wt->seq = wm->sequence;
                wt->next = pr->waiters;
                pr->waiters = wt;
                c->refs++;
                return;
            }
            send_write_rep(c, m->request_id, r->status, &r->first, &r->last,
                           r->first_txid, 1, dlog_strerror(r->status));
            return;
        }
        if (pr == NULL) {
            pr = calloc(1, sizeof *pr);
            if (pr == NULL) {
                send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL);
                return;
            }
            snprintf(pr->stream, sizeof pr->stream, "%s", wm->stream);
            pr->id = wm->producer_id;
            pr->next = p->producers;
            p->producers = pr;
        }
    }
    if (!admitted && p->limiter != NULL) {
        uint64_t bytes = 0, wait_ns = 0;
        for (size_t i = 0; i < wm->nrecs; i++)
            bytes += wm->recs[i].len + wm->recs[i].key_len;
        /* A producer's write is refused rather than delayed: a retry must
         * not find it both waiting here and resent. */
        if (wm->producer_id != 0 && stream_queued(p, wm->stream)) {
            send_error(c, m->type, m->request_id, DLOG_EOVERCAPACITY,
                       "rate limit: earlier writes of the stream are waiting for their "
                       "tokens, and a producer's write is refused rather than delayed");
            return;
        }
        int lim = limiter_admit(p->limiter, wm->stream, wm->nrecs, bytes,
                                wm->producer_id == 0, &wait_ns, errmsg);
        if (lim == LIM_REJECT) {
            send_error(c, m->type, m->request_id, DLOG_EOVERCAPACITY, errmsg);
            return;
        }
        if (lim == LIM_DELAY || stream_queued(p, wm->stream)) {
            delay_req(c, m, wm->stream, wait_ns, 1);
            return;
        }
    }
    struct pwrite *pw = calloc(1, sizeof *pw);
    if (pw == NULL) {
        send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL);
        return;
    }
    pw->c = c;
    pw->request_id = m->request_id;
    if (w->owned) {
        pw->owned = 1;
        pw->stream_id = w->stream_id;
        pw->epoch = w->epoch;
        snprintf(pw->stream, sizeof pw->stream, "%s", w->stream);
    }
    int rv = dlog_write(w->w, &pw->req, wm->recs, wm->nrecs, on_write_done);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, dlog_writer_errmsg(w->w));
        free(pw);
        return;
    }
    if (pr != NULL) {
        struct presult *r = &pr->win[wm->sequence % PRODUCER_WINDOW];
        memset(r, 0, sizeof *r);
        r->seq = wm->sequence;
        r->pending = 1;
        pr->seq = wm->sequence;
        pw->prod = pr;
        pw->seq = wm->sequence;
    }
    c->refs++;
}

static void on_queue_due(uv_timer_t *t);

static struct pqueue *find_queue(struct proxy *p, const char *stream)
{
    for (struct pqueue *q = p->queues; q != NULL; q = q->next)
        if (strcmp(q->stream, stream) == 0)
            return q;
    return NULL;
}

static int stream_queued(struct proxy *p, const char *stream)
{
    struct pqueue *q = p->queues != NULL ? find_queue(p, stream) : NULL;
    return q != NULL && q->head != NULL;
}

static void delay_free(struct pdelay *d)
{
    conn_unref(d->c);
    free(d->frame);
    free(d);
}

static void arm(struct pqueue *q)
{
    uint64_t now = clock_now_ns(), due = q->head->due_ns;
    uint64_t ms = due > now ? (due - now + 999999) / 1000000 : 0;
    uv_timer_start(&q->timer, on_queue_due, ms, 0);
}

/* Sends every write at the head of the queue whose time has come. */
static void on_queue_due(uv_timer_t *t)
{
    struct pqueue *q = t->data;
    uint64_t now = clock_now_ns();

    while (q->head != NULL && q->head->due_ns <= now + 500000) {
        struct pdelay *d = q->head;
        struct wire_msg m;
        char errmsg[DLOG_ERRMSG_SIZE];

        q->head = d->next;
        if (q->head == NULL)
            q->tail = NULL;
        memset(&m, 0, sizeof m);
        if (!d->c->closed &&
            wire_decode_body(d->frame, d->len, &q->p->lim, &m, errmsg) == 0) {
            q->p->redo_since = d->since_ns;
            d->c->frame = d->frame; /* for putting it aside again */
            d->c->frame_len = d->len;
            if (m.type == WIRE_WRITER_OPEN)
                handle_writer_open(d->c, &m);
            else
                handle_write(d->c, &m, d->admitted);
            d->c->frame = NULL;
            q->p->redo_since = 0;
        }
        wire_msg_free(&m);
        delay_free(d);
    }
    if (q->head != NULL)
        arm(q);
}

/*
 * Puts the request being handled (a WRITE, or with ownership a
 * WRITER_OPEN) aside behind its stream's earlier ones, to be handled again
 * in wait_ns or after them: a write whose tokens are taken already
 * (admitted), or a request waiting for the stream's dead owner to lose it.
 * One handed back by on_queue_due and put aside again keeps its place at
 * the head.
 */
static void delay_req(struct pconn *c, const struct wire_msg *m, const char *stream,
                      uint64_t wait_ns, int admitted)
{
    struct proxy *p = c->p;
    struct pqueue *q = find_queue(p, stream);
    struct pdelay *d = calloc(1, sizeof *d);

    if (q == NULL && d != NULL && (q = calloc(1, sizeof *q)) != NULL) {
        q->p = p;
        snprintf(q->stream, sizeof q->stream, "%s", stream);
        uv_timer_init(p->loop, &q->timer);
        q->timer.data = q;
        q->next = p->queues;
        p->queues = q;
    }
    if (q == NULL || d == NULL || (d->frame = malloc(c->frame_len)) == NULL) {
        free(d);
        send_error(c, m->type, m->request_id, DLOG_ENOMEM,
                   "out of memory delaying a write");
        return;
    }
    memcpy(d->frame, c->frame, c->frame_len);
    d->len = c->frame_len;
    d->c = c;
    c->refs++;
    d->admitted = admitted;
    d->since_ns = p->redo_since ? p->redo_since : clock_now_ns();
    d->due_ns = clock_now_ns() + wait_ns;
    if (p->redo_since) { /* back to the head */
        d->next = q->head;
        q->head = d;
        if (q->tail == NULL)
            q->tail = d;
        arm(q);
        return;
    }
    if (q->tail != NULL && q->tail->due_ns > d->due_ns)
        d->due_ns = q->tail->due_ns;
    if (q->tail != NULL) {
        q->tail->next = d;
        q->tail = d;
    } else {
        q->head = q->tail = d;
        arm(q);
    }
}

static void on_queue_closed(uv_handle_t *h)
{
    free(h->data);
}

static void handle_writer_req(struct pconn *c, const struct wire_msg *m)
{
    const struct wire_writer_req *wr = &m->u.flush;
    struct pwriter *w = c->p->owner != NULL ? owned_writer(c->p, wr->stream)
                                            : find_writer(c->p, wr->stream, wr->epoch);
    struct wire_msg rep;
    int rv = 0;
    if (m->type == WIRE_HEARTBEAT) {
        struct dlog_stream_info *info;
        rv = dlog_stream_describe(c->p->ns, wr->stream, &info);
        if (rv != 0) {
            send_error(c, m->type, m->request_id, rv, dlog_errmsg(c->p->ns));
            return;
        }
        rep_init(&rep, m->type, m->request_id, 0);
        rep.u.heartbeat_rep.epoch = info->epoch;
        rep.u.heartbeat_rep.last = info->records ? info->last : DLOG_DLSN_HEAD;
        rep.u.heartbeat_rep.last_txid = info->last_txid;
        dlog_stream_info_free(info);
        send_msg(c, &rep);
        return;
    }
    /* FLUSH and CLOSE: the proxy's writers are shared; make what this
     * writer sent durable (every earlier WRITE has been queued). */
    if (w != NULL)
        rv = dlog_writer_flush(w->w);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, dlog_writer_errmsg(w->w));
        return;
    }
    rep_init(&rep, m->type, m->request_id, 0);
    send_msg(c, &rep);
}

/* ---------------------------------------------------------------- readers */

static void reader_free(struct preader *pr)
{
    if (pr->r != NULL)
        dlog_reader_close(pr->r); /* a pending read completes with ECANCELED */
    free(pr->prefix);
    free(pr->recs);
    free(pr);
}

static void conn_drop_reader(struct pconn *c, struct preader *pr)
{
    for (struct preader **pp = &c->readers; *pp != NULL; pp = &(*pp)->next)
        if (*pp == pr) {
            *pp = pr->next;
            c->nreaders--;
            break;
        }
    reader_free(pr);
}

static int min_txid_filter(void *arg, const struct dlog_record *rec)
{
    struct preader *pr = arg;
    return rec->txid >= pr->min_txid;
}

static int open_reader(struct pconn *c, const char *stream,
                       const struct dlog_reader_options *o, const void *prefix,
                       size_t prefix_len, uint64_t min_txid, struct preader **out)
{
    /* Evict the least recently used idle reader past the limit. */
    if (c->nreaders >= READERS_PER_CONN) {
        struct preader *old = NULL;
        for (struct preader *x = c->readers; x != NULL; x = x->next)
            if (!x->busy && (old == NULL || x->used < old->used))
                old = x;
        if (old == NULL)
            return DLOG_EBUSY;
        conn_drop_reader(c, old);
    }
    struct preader *pr = calloc(1, sizeof *pr);
    if (pr == NULL)
        return DLOG_ENOMEM;
    pr->c = c;
    snprintf(pr->stream, sizeof pr->stream, "%s", stream);
    pr->min_txid = min_txid;
    pr->end = o->end;
    if (prefix_len > 0) {
        pr->prefix = malloc(prefix_len);
        if (pr->prefix == NULL) {
            free(pr);
            return DLOG_ENOMEM;
        }
        memcpy(pr->prefix, prefix, prefix_len);
        pr->prefix_len = prefix_len;
    }
    struct dlog_reader_options ro = *o;
    ro.fetch_bytes = READER_FETCH_BYTES;
    ro.key_prefix = pr->prefix;
    ro.key_prefix_len = pr->prefix_len;
    if (min_txid > 0 && o->start != DLOG_START_TXID) {
        ro.filter = min_txid_filter;
        ro.filter_arg = pr;
    }
    int rv = dlog_reader_open(c->p->ns, stream, &ro, &pr->r);
    if (rv != 0) {
        free(pr->prefix);
        free(pr);
        return rv;
    }
    pr->pos = dlog_reader_position(pr->r);
    pr->next = c->readers;
    c->readers = pr;
    c->nreaders++;
    *out = pr;
    return 0;
}

static void handle_reader_open(struct pconn *c, const struct wire_msg *m)
{
    const struct wire_reader_open *ro = &m->u.reader_open;
    struct dlog_reader_options o;
    struct preader *pr;
    dlog_reader_options_init(&o);
    o.start = (int)ro->start;
    o.start_dlsn = ro->start_dlsn;
    o.start_txid = ro->start_txid;
    int rv = open_reader(c, ro->stream, &o, NULL, 0,
                         ro->start == DLOG_START_TXID ? ro->start_txid : 0, &pr);
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, dlog_errmsg(c->p->ns));
        return;
    }
    pr->used = ++c->tick;
    struct wire_msg rep;
    rep_init(&rep, m->type, m->request_id, 0);
    rep.u.reader_open_rep.position = pr->pos;
    rep.u.reader_open_rep.min_txid = ro->start == DLOG_START_TXID ? ro->start_txid : 0;
    send_msg(c, &rep);
}

static void on_read_done(struct dlog_read_req *req, int status)
{
    struct preader *pr = req->data;
    struct pconn *c = pr->c;
    pr->busy = 0;
    if (status == DLOG_ECANCELED) { /* the reader is being closed */
        conn_unref(c);
        return;
    }
    struct wire_msg rep;
    if (status == DLOG_ETIMEDOUT) { /* the long-poll ended without a record */
        send_error(c, WIRE_READ, pr->request_id, status, "no record within the wait");
        conn_unref(c);
        return;
    }
    if (status < 0) {
        send_error(c, WIRE_READ, pr->request_id, status, dlog_reader_errmsg(pr->r));
        conn_drop_reader(c, pr);
        conn_unref(c);
        return;
    }
    size_t n = status > 0 ? (size_t)status : 0, bytes = 0, keep = 0;
    while (keep < n && (keep == 0 || bytes + req->recs[keep].len <= pr->max_bytes)) {
        bytes += req->recs[keep].len + req->recs[keep].key_len;
        keep++;
    }
    rep_init(&rep, WIRE_READ, pr->request_id, 0);
    rep.u.read_rep.recs = req->recs;
    rep.u.read_rep.nrecs = keep;
    if (keep == n) {
        pr->pos = dlog_reader_position(pr->r);
    } else { /* the rest is read again by the next READ, from a new reader */
        struct dlog_dlsn d = req->recs[keep - 1].dlsn;
        pr->pos = (struct dlog_dlsn){d.seg, d.entry, d.slot + 1};
        pr->used = 0;
        pr->end = DLOG_DLSN_HEAD; /* never matches again */
    }
    rep.u.read_rep.next = pr->pos;
    send_msg(c, &rep);
    conn_unref(c);
}

static int same_bytes(const void *a, size_t na, const void *b, size_t nb)
{
    return na == nb && (na == 0 || memcmp(a, b, na) == 0);
}

static void handle_read(struct pconn *c, const struct wire_msg *m)
{
    const struct wire_read *rd = &m->u.read;
    struct preader *pr = NULL;
    for (struct preader *x = c->readers; x != NULL; x = x->next)
        if (!x->busy && strcmp(x->stream, rd->stream) == 0 &&
            dlog_dlsn_cmp(x->pos, rd->position) == 0 && x->min_txid == rd->min_txid &&
            dlog_dlsn_cmp(x->end, rd->end) == 0 &&
            same_bytes(x->prefix, x->prefix_len, rd->key_prefix, rd->key_prefix_len)) {
            pr = x;
            break;
        }
    if (pr == NULL) {
        struct dlog_reader_options o;
        dlog_reader_options_init(&o);
        o.start = DLOG_START_DLSN;
        o.start_dlsn = rd->position;
        o.end = rd->end;
        int rv = open_reader(c, rd->stream, &o, rd->key_prefix, rd->key_prefix_len,
                             rd->min_txid, &pr);
        if (rv != 0) {
            send_error(c, m->type, m->request_id, rv, dlog_errmsg(c->p->ns));
            return;
        }
    }
    if (pr->max < rd->max_records) {
        struct dlog_record *recs = realloc(pr->recs, rd->max_records * sizeof *recs);
        if (recs == NULL) {
            send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL);
            return;
        }
        pr->recs = recs;
        pr->max = rd->max_records;
    }
    pr->used = ++c->tick;
    pr->busy = 1;
    pr->request_id = m->request_id;
    pr->max_bytes = rd->max_bytes < READ_MAX_BYTES ? rd->max_bytes : READ_MAX_BYTES;
    pr->req.data = pr;
    int rv = dlog_read_async(pr->r, &pr->req, pr->recs, rd->max_records, (int)rd->wait_ms,
                             on_read_done);
    if (rv != 0) {
        pr->busy = 0;
        send_error(c, m->type, m->request_id, rv, dlog_reader_errmsg(pr->r));
        return;
    }
    c->refs++;
}

/* ---------------------------------------------------------------- admin */

static void handle_admin(struct pconn *c, const struct wire_msg *m)
{
    struct dlog_ns *ns = c->p->ns;
    struct wire_msg rep;
    int rv = 0;
    rep_init(&rep, m->type, m->request_id, 0);
    switch (m->type) {
    case WIRE_STREAM_CREATE:
        rv = dlog_stream_create(ns, m->u.create.stream,
                                m->u.create.has_config ? &m->u.create.config : NULL);
        break;
    case WIRE_STREAM_DELETE:
        rv = dlog_stream_delete(ns, m->u.del.stream);
        if (rv == 0) { /* forget its writers; their epochs are gone */
            for (struct pwriter **pp = &c->p->writers; *pp != NULL;) {
                struct pwriter *pw = *pp;
                if (strcmp(pw->stream, m->u.del.stream) == 0) {
                    *pp = pw->next;
                    dlog_writer_close(pw->w);
                    free(pw);
                } else {
                    pp = &pw->next;
                }
            }
        }
        break;
    case WIRE_STREAM_TRUNCATE:
        rv = dlog_stream_truncate(ns, m->u.truncate.stream, m->u.truncate.dlsn);
        break;
    case WIRE_STREAM_RETENTION:
        rv = dlog_stream_apply_retention(ns, m->u.retention.stream);
        if (rv >= 0) {
            rep.u.retention_rep.deleted = (uint32_t)rv;
            rv = 0;
        }
        break;
    case WIRE_STREAM_LIST: {
        char **names;
        size_t count;
        rv = dlog_stream_list(ns, &names, &count);
        if (rv != 0)
            break;
        size_t first = 0, limit = m->u.list.limit ? m->u.list.limit : WIRE_MAX_LIST;
        while (first < count && m->u.list.start_after[0] != '\0' &&
               strcmp(names[first], m->u.list.start_after) <= 0)
            first++;
        size_t n = count - first < limit ? count - first : limit;
        rep.u.list_rep.names = (const char *const *)names + first;
        rep.u.list_rep.count = n;
        rep.u.list_rep.more = first + n < count;
        send_msg(c, &rep);
        dlog_stream_list_free(names);
        return;
    }
    case WIRE_STREAM_DESCRIBE: {
        struct dlog_stream_info *info;
        rv = dlog_stream_describe(ns, m->u.describe.stream, &info);
        if (rv != 0)
            break;
        size_t first = 0, limit = m->u.describe.max_segments;
        if (limit == 0)
            limit = WIRE_MAX_SEGMENTS;
        while (first < info->nsegments &&
               info->segments[first].seq <= m->u.describe.seg_after)
            first++;
        size_t n = info->nsegments - first < limit ? info->nsegments - first : limit;
        rep.u.describe_rep.info = *info;
        rep.u.describe_rep.info.segments = info->segments + first;
        rep.u.describe_rep.info.nsegments = n;
        rep.u.describe_rep.more = first + n < info->nsegments;
        send_msg(c, &rep);
        dlog_stream_info_free(info);
        return;
    }
    case WIRE_LIMITS_SET: {
        const char *s = m->u.limits_set.stream;
        rv = dlog_limits_set(ns, s[0] != '\0' ? s : NULL, &m->u.limits_set.limits);
        break;
    }
    case WIRE_LIMITS_GET: {
        const char *s = m->u.limits_req.stream;
        rv = dlog_limits_get(ns, s[0] != '\0' ? s : NULL, &rep.u.limits_rep.limits);
        break;
    }
    case WIRE_LIMITS_STATS: {
        const char *s = m->u.limits_req.stream;
        struct dlog_limit_stats *st;
        rv = dlog_limits_stats(ns, s[0] != '\0' ? s : NULL, &st);
        if (rv != 0)
            break;
        rep.u.limits_stats_rep.stats = *st;
        if (st->nproxies > WIRE_MAX_PROXIES)
            rep.u.limits_stats_rep.stats.nproxies = WIRE_MAX_PROXIES;
        send_msg(c, &rep);
        dlog_limit_stats_free(st);
        return;
    }
    default:
        rv = DLOG_EINTERNAL;
    }
    if (rv != 0) {
        send_error(c, m->type, m->request_id, rv, dlog_errmsg(ns));
        return;
    }
    send_msg(c, &rep);
}

/* ---------------------------------------------------------------- dispatch */

static void handle_hello(struct pconn *c, const struct wire_msg *m)
{
    struct wire_msg rep;
    int ok = wire_hello_answer(&m->u.hello, m->request_id, c->p->name,
                               c->p->lim.max_frame, &rep);

    send_msg(c, &rep);
    if (!ok)
        net_conn_close_when_sent(c->nc);
    c->hello = ok;
}

static void handle(struct pconn *c, const struct wire_msg *m)
{
    if (m->is_reply) {
        send_error(c, WIRE_ERROR, 0, DLOG_EPROTO, "a client sent a reply");
        net_conn_close_when_sent(c->nc);
        return;
    }
    if (m->type == WIRE_HELLO) {
        handle_hello(c, m);
        return;
    }
    if (!c->hello) {
        send_error(c, m->type, m->request_id, DLOG_EPROTO, "HELLO must come first");
        return;
    }
    switch (m->type) {
    case WIRE_PING: {
        struct wire_msg rep;
        rep_init(&rep, m->type, m->request_id, 0);
        rep.u.ping.nonce = m->u.ping.nonce;
        send_msg(c, &rep);
        break;
    }
    case WIRE_STREAM_CREATE:
    case WIRE_STREAM_DELETE:
    case WIRE_STREAM_LIST:
    case WIRE_STREAM_DESCRIBE:
    case WIRE_STREAM_TRUNCATE:
    case WIRE_STREAM_RETENTION:
    case WIRE_LIMITS_SET:
    case WIRE_LIMITS_GET:
    case WIRE_LIMITS_STATS:
        handle_admin(c, m);
        break;
    case WIRE_WRITER_OPEN:
        handle_writer_open(c, m);
        break;
    case WIRE_WRITE:
        handle_write(c, m, 0);
        break;
    case WIRE_WRITER_FLUSH:
    case WIRE_WRITER_CLOSE:
    case WIRE_HEARTBEAT:
        handle_writer_req(c, m);
        break;
    case WIRE_RELEASE: { /* ownership leases come with cluster mode */
        struct wire_msg rep;
        rep_init(&rep, m->type, m->request_id, 0);
        send_msg(c, &rep);
        break;
    }
    case WIRE_READER_OPEN:
        handle_reader_open(c, m);
        break;
    case WIRE_READ:
        handle_read(c, m);
        break;
    default:
        send_error(c, m->type, m->request_id, DLOG_EPROTO, "unexpected message type");
    }
}

static void on_frame(struct net_conn *nc, const uint8_t *frame, size_t len)
{
    struct pconn *c = nc->data;
    struct wire_msg m;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    memset(&m, 0, sizeof m);
    int rv = wire_decode_body(frame, len, &c->p->lim, &m, errmsg);
    if (rv == WIRE_BAD_VERSION) {
        struct wire_msg rep;
        rep_init(&rep, m.type, m.request_id, DLOG_EPROTO);
        rep.err.message = "unsupported protocol version";
        rep.err.min_version = WIRE_VERSION_MIN;
        rep.err.max_version = WIRE_VERSION_MAX;
        send_msg(c, &rep);
    } else if (rv == WIRE_UNKNOWN_TYPE) {
        send_error(c, m.type, m.request_id, DLOG_EPROTO, "unknown message type");
    } else if (rv < 0) {
        log_debug("proxy", "%s: bad frame: %s", nc->peer, errmsg);
        if (m.request_id != 0) {
            send_error(c, m.type, m.request_id, rv == DLOG_ENOMEM ? rv : DLOG_EPROTO,
                       errmsg);
        } else {
            send_error(c, WIRE_ERROR, 0, DLOG_EPROTO, errmsg);
            net_conn_close_when_sent(nc);
        }
    } else {
        c->frame = frame;
        c->frame_len = len;
        handle(c, &m);
        c->frame = NULL;
    }
    wire_msg_free(&m);
}

static void on_close(struct net_conn *nc, int status)
{
    struct pconn *c = nc->data;
    struct proxy *p = c->p;
    log_debug("proxy", "%s: closed (%s)", nc->peer, dlog_strerror(status));
    c->closed = 1;
    p->open--;
    while (c->readers != NULL) {
        struct preader *pr = c->readers;
        c->readers = pr->next;
        reader_free(pr); /* its pending read drops its reference */
    }
    c->nreaders = 0;
    conn_unref(c);
}

static const struct net_conn_cbs conn_cbs = {on_frame, on_close, NULL};

static void on_accept(struct net_server *s, struct net_conn *nc)
{
    struct proxy *p = net_server_data(s);
    struct pconn *c = calloc(1, sizeof *c);
    if (c == NULL || p->stopping) {
        free(c);
        return; /* nc->cbs stays NULL: the transport closes it */
    }
    c->p = p;
    c->nc = nc;
    c->refs = 1;
    c->next = p->conns;
    if (p->conns != NULL)
        p->conns->prev = c;
    p->conns = c;
    p->accepted++;
    p->open++;
    nc->data = c;
    nc->cbs = &conn_cbs;
    log_debug("proxy", "%s: connected", nc->peer);
}

/* Ownership, once the port is known: this proxy's id and address. */
static int start_owner(struct proxy *p, struct dlog_meta_ops *meta,
                       const struct proxy_options *o, char *errmsg)
{
    char id[OWNER_ID_MAX + 1], addr[OWNER_ADDR_MAX + 1];
    const char *host = o->host ? o->host : "127.0.0.1";
    int port = net_server_port(p->srv);
    if (o->advertise != NULL)
        snprintf(addr, sizeof addr, "%s", o->advertise);
    else if (strchr(host, ':') != NULL)
        snprintf(addr, sizeof addr, "[%s]:%d", host, port);
    else
        snprintf(addr, sizeof addr, "%s:%d", host, port);
    if (o->proxy_id != NULL)
        snprintf(id, sizeof id, "%s", o->proxy_id);
    else
        snprintf(id, sizeof id, "%.40s:%ld", addr, (long)uv_os_getpid());
    p->lease_ms = o->owner_lease_ms ? o->owner_lease_ms : OWNER_LEASE_MS;
    return owner_open(meta, id, addr, p->lease_ms / 4, p->lease_ms, &p->owner, errmsg);
}

int proxy_start(uv_loop_t *loop, struct dlog_ns *ns, const struct proxy_options *o,
                struct proxy **out, char *errmsg)
{
    struct proxy *p = calloc(1, sizeof *p);
    if (p == NULL)
        return DLOG_ENOMEM;
    p->loop = loop;
    p->ns = ns;
    wire_limits_init(&p->lim);
    if (o->max_frame > 0)
        p->lim.max_frame = o->max_frame;
    snprintf(p->name, sizeof p->name, "%s", o->server_name ? o->server_name : "dlogd");
    int rv = 0;
    struct dlog_meta_ops *meta = embedded_meta(ns);
    if (meta != NULL && !o->no_limits) {
        struct limiter_options lo = {o->proxy_id, o->limit_interval_ms,
                                     o->limit_lease_ms};
        char id[64];
        if (lo.proxy_id == NULL) {
            snprintf(id, sizeof id, "%s:%d:%ld", o->host ? o->host : "127.0.0.1", o->port,
                     (long)uv_os_getpid());
            lo.proxy_id = id;
        }
        rv = limiter_open(ns, meta, &lo, &p->limiter, errmsg);
    }
    if (rv == 0)
        rv = net_server_start(loop, o->host ? o->host : "127.0.0.1", o->port,
                              p->lim.max_frame, on_accept, p, &p->srv, errmsg);
    if (rv == 0 && meta != NULL && o->ownership)
        rv = start_owner(p, meta, o, errmsg);
    if (rv != 0) {
        if (p->srv != NULL)
            net_server_stop(p->srv);
        limiter_close(p->limiter);
        free(p);
        return rv;
    }
    *out = p;
    return 0;
}

int proxy_port(struct proxy *p)
{
    return net_server_port(p->srv);
}

void proxy_stats(struct proxy *p, unsigned long *accepted, unsigned long *open)
{
    *accepted = p->accepted;
    *open = p->open;
}

void proxy_shutdown(struct proxy *p)
{
    p->stopping = 1;
    net_server_stop(p->srv);
    p->srv = NULL;
    limiter_close(p->limiter);
    p->limiter = NULL;
    while (p->queues != NULL) { /* never sent: their clients see the connection end */
        struct pqueue *q = p->queues;
        p->queues = q->next;
        while (q->head != NULL) {
            struct pdelay *d = q->head;
            q->head = d->next;
            delay_free(d);
        }
        uv_timer_stop(&q->timer);
        uv_close((uv_handle_t *)&q->timer, on_queue_closed);
    }
    for (struct pconn *c = p->conns; c != NULL; c = c->next) {
        if (!c->closed)
            net_conn_pause(c->nc, 1);
        while (c->readers != NULL) {
            struct preader *pr = c->readers;
            c->readers = pr->next;
            reader_free(pr);
        }
        c->nreaders = 0;
    }
    while (p->writers != NULL) {
        struct pwriter *pw = p->writers;
        p->writers = pw->next;
        dlog_writer_close(pw->w); /* flushes: every write is durable or failed */
        free(pw);
    }
    owner_close(p->owner, 1); /* other proxies may take the streams at once */
    p->owner = NULL;
}

void proxy_free(struct proxy *p)
{
    while (p->producers != NULL) {
        struct producer *pr = p->producers;
        p->producers = pr->next;
        while (pr->waiters != NULL) {
            struct pwait *wt = pr->waiters;
            pr->waiters = wt->next;
            conn_unref(wt->c);
            free(wt);
        }
        free(pr);
    }
    if (p->conns == NULL) {
        free(p);
        return;
    }
    p->freeing = 1;
    struct pconn *c = p->conns;
    while (c != NULL) {
        struct pconn *next = c->next;
        if (!c->closed)
            net_conn_close_when_sent(c->nc);
        c = next;
    }
}
