/*
 * The remote writer. dlog_writer_open sends WRITER_OPEN and learns the
 * epoch, the stream's last txid and its config. Each dlog_write becomes
 * one WRITE {stream, epoch, producer_id, sequence, records}, encoded (so
 * copied) before the call returns; the server batches writes into entries,
 * so linger_us and batch_bytes have no client-side effect. Completions
 * arrive on the client's loop thread and go through core_write_done.
 *
 * Order: a writer queues its WRITEs under its own lock, so they leave in
 * submit order and their sequence numbers follow that order; the server
 * applies one writer's WRITEs in arrival order, so acknowledged DLSNs grow
 * in submit order (invariant 2).
 *
 * Exactly-once: with a producer id, WRITE n carries sequence n, and a WRITE
 * in flight when the connection drops is sent once more after the
 * reconnection; the server answers a repeated (producer id, sequence)
 * with the first attempt's result (duplicate = 1) instead of appending it
 * again. Without a producer id such writes fail with DLOG_EUNAVAILABLE and
 * may or may not have been applied.
 *
 * A write re-sent after a reconnection may be answered as a duplicate with
 * first/last DLOG_DLSN_HEAD: the server keeps the positions of a producer's
 * last write only (docs/protocol.md, "Exactly-once producers").
 *
 * Sticky errors: once a WRITE fails with DLOG_EFENCED (a newer epoch owns
 * the stream) or DLOG_ENOTFOUND, the error sticks and later writes fail at
 * once (invariant 4: nothing from an old epoch is acknowledged). So does
 * any error the server gives a producer's WRITE: the server does not
 * consume a failed sequence, so the WRITEs behind it fail with
 * DLOG_ECONFLICT, and renumbering them is not safe while the server may
 * still apply them; the application reopens the writer with a new id.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "client/client.h"

#define KEY_MAX WIRE_MAX_KEY

struct cwriter {
    struct dlog_writer base;
    struct client *c;
    char name[DLOG_STREAM_NAME_MAX + 1];
    struct dlog_stream_config cfg;
    size_t max_pending;
    uint64_t producer_id;
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a write completed, or closing */
    /* under mu */
    uint64_t seq;          /* the last sequence sent (producer only) */
    uint64_t last_txid;    /* client-side txid check */
    size_t pending_bytes;  /* of writes not yet completed */
    uint64_t queued, done; /* writes queued and completed */
    int err;               /* sticky: EFENCED, ENOTFOUND, a refused producer WRITE */
    int closing;
};

/* One WRITE in flight. */
struct cwrite {
    struct creq q; /* first */
    struct cwriter *w;
    struct dlog_write_req *req;
    size_t bytes;
};

/* Loop thread: the reply to a WRITE (or its failure). */
static void write_done(struct creq *q)
{
    struct cwrite *cw = (struct cwrite *)q;
    struct cwriter *w = cw->w;
    struct dlog_write_req *req = cw->req;
    size_t bytes = cw->bytes;
    int status = q->status;
    int server_refused = q->rep != NULL && status != 0;
    if (status == 0) {
        const struct wire_write_rep *r = &q->rep->u.write_rep;
        req->first = r->first;
        req->last = r->last;
        req->first_txid = r->first_txid;
    } else {
        pthread_mutex_lock(&w->mu);
        errmsg_copy(w->base.errmsg, q->errmsg);
        pthread_mutex_unlock(&w->mu);
    }
    req->status = status;
    client_req_clear(q);
    free(cw);
    /* A producer's sequence stops at a WRITE the server refused (it does not
     * consume a failed sequence, and the WRITEs behind it get
     * DLOG_ECONFLICT): its writer fails from then on, like a fenced one. */
    if (status == DLOG_EFENCED || status == DLOG_ENOTFOUND ||
        (w->producer_id != 0 && server_refused)) {
        pthread_mutex_lock(&w->mu);
        if (w->err == 0)
            log_warn("client", "writer of '%s': %s", w->name, dlog_strerror(status));
        if (w->err == 0 || status == DLOG_EFENCED)
            w->err = status;
        pthread_mutex_unlock(&w->mu);
    }
    /* The callback first: once done reaches queued, flush and close return. */
    core_write_done(w->base.ns, req);
    pthread_mutex_lock(&w->mu);
    w->pending_bytes -= bytes;
    w->done++;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

/* The error a new write gets at once, with its message; 0 if none. */
static int refuse(struct cwriter *w)
{
    if (w->err == DLOG_EFENCED)
        errmsg_printf(w->base.errmsg, "writer fenced: a newer writer owns '%s'", w->name);
    else if (w->err != 0 && w->producer_id != 0)
        errmsg_printf(w->base.errmsg,
                      "an earlier write of producer %llu to '%s' failed (%s): reopen the "
                      "writer with a new producer id",
                      (unsigned long long)w->producer_id, w->name, dlog_strerror(w->err));
    else if (w->err != 0)
        errmsg_printf(w->base.errmsg, "writer of '%s' failed: %s", w->name,
                      dlog_strerror(w->err));
    else if (w->closing)
        errmsg_printf(w->base.errmsg, "writer is closing");
    return w->err ? w->err : w->closing ? DLOG_ECLOSED : 0;
}

static int check_records(struct cwriter *w, const struct dlog_record *recs, size_t n,
                         size_t *bytes)
{
    *bytes = 0;
    if (n > WIRE_MAX_RECORDS) {
        errmsg_printf(w->base.errmsg, "%zu records in one write; at most %d", n,
                      WIRE_MAX_RECORDS);
        return DLOG_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len + recs[i].key_len > w->cfg.max_record_bytes) {
            errmsg_printf(w->base.errmsg,
                          "record of %zu bytes exceeds the stream's maximum of %llu",
                          recs[i].len + recs[i].key_len,
                          (unsigned long long)w->cfg.max_record_bytes);
            return DLOG_ETOOBIG;
        }
        if (recs[i].key_len > KEY_MAX) {
            errmsg_printf(w->base.errmsg, "key of %zu bytes exceeds %d", recs[i].key_len,
                          KEY_MAX);
            return DLOG_ETOOBIG;
        }
        *bytes += recs[i].len + recs[i].key_len + 1;
    }
    return 0;
}

/* Txids must not go down within the write nor below the writer's last. */
static int check_txids(struct cwriter *w, const struct dlog_record *recs, size_t n)
{
    uint64_t last = w->last_txid;
    if (w->cfg.auto_txid)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].txid < last) {
            errmsg_printf(w->base.errmsg,
                          "txid %llu is below the writer's last txid %llu",
                          (unsigned long long)recs[i].txid, (unsigned long long)last);
            return DLOG_ETXID;
        }
        last = recs[i].txid;
    }
    return 0;
}

/* Encode the WRITE (recs as the wire wants them: no flags, NULL empty keys). */
static int encode(struct cwriter *w, struct cwrite *cw, const struct dlog_record *recs,
                  size_t n)
{
    struct dlog_record *tmp = NULL;
    for (size_t i = 0; i < n && tmp == NULL; i++)
        if (recs[i].flags != 0 || (recs[i].key_len == 0 && recs[i].key != NULL)) {
            tmp = malloc(n * sizeof *tmp);
            if (tmp == NULL)
                return DLOG_ENOMEM;
            for (size_t j = 0; j < n; j++) {
                tmp[j] = recs[j];
                tmp[j].flags = 0;
                if (tmp[j].key_len == 0)
                    tmp[j].key = NULL;
            }
        }
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_WRITE;
    m.u.write.stream = w->name;
    m.u.write.epoch = w->base.epoch;
    m.u.write.producer_id = w->producer_id;
    m.u.write.sequence = w->producer_id != 0 ? w->seq + 1 : 0;
    m.u.write.recs = tmp != NULL ? tmp : recs;
    m.u.write.nrecs = n;
    int rv = client_req_init(w->c, &cw->q, &m, w->base.errmsg);
    free(tmp);
    return rv;
}

int cwriter_write(struct dlog_writer *wb, struct dlog_write_req *req,
                  const struct dlog_record *recs, size_t n)
{
    struct cwriter *w = (struct cwriter *)wb;
    size_t bytes;
    int rv = check_records(w, recs, n, &bytes);
    if (rv != 0)
        return rv;
    int on_loop = client_on_loop(w->c);
    pthread_mutex_lock(&w->mu);
    rv = refuse(w);
    if (rv == 0)
        rv = check_txids(w, recs, n);
    /* Backpressure; never on the loop thread, which completes the writes. */
    while (rv == 0 && w->pending_bytes > w->max_pending && !on_loop) {
        pthread_cond_wait(&w->cv, &w->mu);
        rv = refuse(w);
    }
    struct cwrite *cw = NULL;
    if (rv == 0) {
        cw = calloc(1, sizeof *cw);
        if (cw == NULL) {
            errmsg_printf(wb->errmsg, "out of memory queueing a write");
            rv = DLOG_ENOMEM;
        }
    }
    if (rv == 0)
        rv = encode(w, cw, recs, n);
    if (rv == 0) {
        cw->w = w;
        cw->req = req;
        cw->bytes = bytes;
        cw->q.cb = write_done;
        cw->q.resend = w->producer_id != 0;
        rv = client_submit(w->c, &cw->q); /* under mu: WRITEs leave in order */
        if (rv != 0)
            errmsg_copy(wb->errmsg, cw->q.errmsg);
    }
    if (rv != 0) {
        if (cw != NULL)
            client_req_clear(&cw->q);
        free(cw);
        pthread_mutex_unlock(&w->mu);
        return rv;
    }
    if (w->producer_id != 0)
        w->seq++;
    if (!w->cfg.auto_txid)
        w->last_txid = recs[n - 1].txid;
    w->pending_bytes += bytes;
    w->queued++;
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Wait until every write queued so far has completed; the sticky error. */
static int drain(struct cwriter *w)
{
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->queued;
    while (w->done < target)
        pthread_cond_wait(&w->cv, &w->mu);
    int rv = refuse(w);
    pthread_mutex_unlock(&w->mu);
    return rv == DLOG_ECLOSED ? 0 : rv;
}

/* WRITER_FLUSH or WRITER_CLOSE. */
static int writer_req(struct cwriter *w, uint32_t type)
{
    struct wire_msg m;
    struct creq q;
    memset(&m, 0, sizeof m);
    memset(&q, 0, sizeof q);
    m.type = type;
    m.u.flush.stream = w->name;
    m.u.flush.epoch = w->base.epoch;
    int rv = client_call(w->c, &q, &m, w->base.errmsg);
    client_req_clear(&q);
    return rv;
}

int cwriter_flush(struct dlog_writer *wb)
{
    struct cwriter *w = (struct cwriter *)wb;
    if (client_on_loop(w->c)) {
        errmsg_printf(wb->errmsg,
                      "dlog_writer_flush from a write callback would deadlock");
        return DLOG_EBUSY;
    }
    int rv = drain(w);
    if (rv != 0)
        return rv;
    /* Acknowledged writes are durable already: without a connection the
     * extra round trip would only wait for the reconnection, and fail. */
    if (!client_ready(w->c, NULL))
        return 0;
    return writer_req(w, WIRE_WRITER_FLUSH);
}

static void cwriter_free(struct cwriter *w)
{
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

int cwriter_close(struct dlog_writer *wb)
{
    struct cwriter *w = (struct cwriter *)wb;
    if (client_on_loop(w->c)) {
        errmsg_printf(wb->errmsg,
                      "dlog_writer_close from a write callback would deadlock");
        return DLOG_EBUSY;
    }
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_broadcast(&w->cv); /* writers blocked on backpressure give up */
    pthread_mutex_unlock(&w->mu);
    /* WRITER_CLOSE makes the writer's writes durable on the server (a flush);
     * skipped without a connection, as in cwriter_flush. */
    int rv = drain(w);
    if (rv == 0 && client_ready(w->c, NULL))
        rv = writer_req(w, WIRE_WRITER_CLOSE);
    cwriter_free(w);
    return rv == DLOG_EFENCED ? 0 : rv; /* a fenced writer closes cleanly */
}

static int open_reply(struct creq *q, const struct wire_msg *rep)
{
    *(struct wire_writer_open_rep *)q->data = rep->u.writer_open_rep;
    return 0;
}

int cwriter_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_writer_options *opts, struct dlog_writer **out)
{
    struct client *c = client_of(ns);
    struct wire_writer_open_rep r;
    struct wire_msg m;
    struct creq q;
    memset(&m, 0, sizeof m);
    memset(&q, 0, sizeof q);
    m.type = WIRE_WRITER_OPEN;
    m.u.writer_open.stream = stream;
    m.u.writer_open.mode = (uint32_t)opts->mode;
    q.on_reply = open_reply;
    q.data = &r;
    int rv = client_call(c, &q, &m, ns->errmsg);
    client_req_clear(&q);
    if (rv != 0)
        return rv;
    struct cwriter *w = calloc(1, sizeof *w);
    if (w == NULL)
        return DLOG_ENOMEM;
    w->base.ns = ns;
    w->base.epoch = r.epoch;
    w->c = c;
    w->cfg = r.config;
    w->last_txid = r.config.auto_txid ? 0 : r.last_txid;
    snprintf(w->name, sizeof w->name, "%s", stream);
    w->max_pending = opts->max_pending_bytes ? opts->max_pending_bytes : 64 * 1024 * 1024;
    /* producer_id came with version 2 of the options. */
    w->producer_id = opts->version >= 2 ? opts->producer_id : 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    *out = &w->base;
    return 0;
}
