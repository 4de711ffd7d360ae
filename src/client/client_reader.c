/*
 * The remote reader. READER_OPEN resolves the start (head, tail, DLSN,
 * txid) into a position and a minimum txid; from then on the reader is
 * stateless on the server: each dlog_read is one or more READs carrying
 * the position, and the reply's `next` becomes the new position.
 *
 * - Waiting: a READ long-polls up to wait_ms for its first record and
 *   ends with DLOG_ETIMEDOUT (or, from older servers, no records and next
 *   unchanged) when none came. Long or infinite timeouts are split into
 *   rounds of at most ROUND_MS, so a lost connection is noticed. A READ
 *   in flight when the connection drops is sent again once reconnected.
 * - A reply without records but with next moved means the server skipped
 *   records (key prefix, min txid): the reader reads on at once.
 * - Transforms: the key prefix travels in the READ and is applied by the
 *   server; the filter and projection callbacks are C code and run here,
 *   on the reading thread, over the records of the reply.
 * - Memory: the loop thread copies a reply's records into the reader's
 *   arena (reused from read to read) while the reader waits; the records
 *   returned point into it and stay valid until the next read call or the
 *   close (dlog.h's promise). Projected payloads live in the proj buffer.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "client/client.h"
#include "core/transform.h"

#define ROUND_MS  3000                /* the longest single long-poll */
#define FETCH_MAX (64u * 1024 * 1024) /* max_bytes per READ, at most */

struct creader {
    struct dlog_reader base;
    struct client *c;
    char name[DLOG_STREAM_NAME_MAX + 1];
    struct dlog_reader_options opts;
    uint8_t *prefix; /* copy of opts.key_prefix */
    uint64_t min_txid;
    /* the arena: the records of the last READ reply, and its next */
    struct dlog_record *recs;
    size_t nrecs, cap;
    struct bytes data; /* their keys and payloads */
    struct dlog_dlsn next;
    struct dlog_buf proj;
};

/* Loop thread, while the reader waits: copy the reply into the arena. */
static int read_reply(struct creq *q, const struct wire_msg *rep)
{
    struct creader *r = q->data;
    const struct wire_read_rep *rr = &rep->u.read_rep;
    size_t total = 0;
    for (size_t i = 0; i < rr->nrecs; i++)
        total += rr->recs[i].len + rr->recs[i].key_len;
    bytes_reset(&r->data);
    if (bytes_reserve(&r->data, total) != 0) /* then appends never move it */
        return DLOG_ENOMEM;
    if (rr->nrecs > r->cap) {
        struct dlog_record *v = realloc(r->recs, rr->nrecs * sizeof *v);
        if (v == NULL)
            return DLOG_ENOMEM;
        r->recs = v;
        r->cap = rr->nrecs;
    }
    for (size_t i = 0; i < rr->nrecs; i++) {
        const struct dlog_record *src = &rr->recs[i];
        struct dlog_record *dst = &r->recs[i];
        *dst = *src;
        dst->flags = 0;
        dst->key = NULL;
        dst->payload = ""; /* never NULL, as from the embedded reader */
        if (src->key_len > 0) {
            dst->key = r->data.p + r->data.len;
            bytes_append(&r->data, src->key, src->key_len);
        }
        if (src->len > 0) {
            dst->payload = r->data.p + r->data.len;
            bytes_append(&r->data, src->payload, src->len);
        }
    }
    r->nrecs = rr->nrecs;
    r->next = rr->next;
    return 0;
}

static int keep(struct creader *r, const struct dlog_record *rec)
{
    return r->opts.filter == NULL || r->opts.filter(r->opts.filter_arg, rec);
}

/*
 * Hand out the records of the arena (the last reply), filtered and
 * projected, into recs. Returns how many (0: all filtered out) or a projection error;
 * sets the position after what was consumed.
 */
static int deliver(struct creader *r, struct dlog_record *recs, size_t max)
{
    size_t n = 0, i;
    int rv = 0;
    for (i = 0; i < r->nrecs && n < max; i++) {
        struct dlog_record rec = r->recs[i];
        if (!keep(r, &rec))
            continue;
        if (r->opts.project != NULL &&
            (rv = transform_project(&r->opts, &rec, &r->proj, r->base.errmsg)) != 0) {
            /* Return what came before; the failing record fails the next
             * read. Alone, it is consumed (as the embedded reader does). */
            if (n > 0)
                r->base.pos = rec.dlsn;
            else
                r->base.pos = i + 1 < r->nrecs ? r->recs[i + 1].dlsn : r->next;
            break;
        }
        recs[n++] = rec;
    }
    if (rv == 0) /* all consumed, unless more came than asked for */
        r->base.pos = i < r->nrecs ? r->recs[i].dlsn : r->next;
    transform_finish(recs, n, &r->proj);
    return n > 0 ? (int)n : rv;
}

int creader_read(struct dlog_reader *rb, struct dlog_record *recs, size_t max,
                 int timeout_ms)
{
    struct creader *r = (struct creader *)rb;
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    r->nrecs = 0;
    r->proj.len = 0;
    for (;;) {
        int64_t left = clock_ms_left(deadline);
        uint64_t down_ms;
        if (left == 0 && !client_ready(r->c, &down_ms)) {
            /* Nothing can be read now; after a long outage, say so. */
            if (down_ms >= CLIENT_WAIT_MS) {
                errmsg_printf(rb->errmsg, "no connection to dlogd for %llu ms",
                              (unsigned long long)down_ms);
                return DLOG_EUNAVAILABLE;
            }
            errmsg_printf(rb->errmsg, "no record within %d ms (reconnecting)",
                          timeout_ms);
            return DLOG_ETIMEDOUT;
        }
        struct wire_msg m;
        struct creq q;
        memset(&m, 0, sizeof m);
        memset(&q, 0, sizeof q);
        q.on_reply = read_reply;
        q.data = r;
        /* A READ carries its position and changes nothing on the server:
         * one in flight when the connection drops is sent again after the
         * reconnection, like a request made while disconnected, instead of
         * failing at once with DLOG_EUNAVAILABLE. */
        q.resend = 1;
        m.type = WIRE_READ;
        m.u.read.stream = r->name;
        m.u.read.position = rb->pos;
        m.u.read.min_txid = r->min_txid;
        m.u.read.max_records = max < WIRE_MAX_RECORDS ? (uint32_t)max : WIRE_MAX_RECORDS;
        m.u.read.max_bytes =
            r->opts.fetch_bytes < FETCH_MAX ? (uint32_t)r->opts.fetch_bytes : FETCH_MAX;
        m.u.read.wait_ms = left < 0 || left > ROUND_MS ? ROUND_MS : (uint32_t)left;
        m.u.read.key_prefix = r->opts.key_prefix_len > 0 ? r->prefix : NULL;
        m.u.read.key_prefix_len = r->opts.key_prefix_len;
        m.u.read.end = r->opts.end;
        if (left >= 0 && left < CLIENT_WAIT_MS) { /* a reconnection may not take longer */
            q.deadline = clock_now_ns() + (uint64_t)left * NS_PER_MS;
            q.expire_status = DLOG_ETIMEDOUT;
        }
        int rv = client_call(r->c, &q, &m, rb->errmsg);
        client_req_clear(&q);
        if (rv == DLOG_ETIMEDOUT) { /* the long-poll (or our wait) ended empty */
            r->nrecs = 0;
            r->next = rb->pos;
        } else if (rv != 0) {
            r->nrecs = 0;
            return rv;
        }
        int moved = r->nrecs > 0 || dlog_dlsn_cmp(r->next, rb->pos) != 0;
        if (r->nrecs > 0)
            r->min_txid = 0; /* txids do not go down: the rest is above it */
        rv = deliver(r, recs, max);
        if (rv != 0)
            return rv; /* the arena holds the records until the next read */
        if (moved)
            continue; /* everything was filtered out: read on */
        if (clock_ms_left(deadline) == 0) {
            errmsg_printf(rb->errmsg, "no record within %d ms", timeout_ms);
            return DLOG_ETIMEDOUT;
        }
    }
}

static int open_reply(struct creq *q, const struct wire_msg *rep)
{
    struct creader *r = q->data;
    r->base.pos = rep->u.reader_open_rep.position;
    r->min_txid = rep->u.reader_open_rep.min_txid;
    return 0;
}

void creader_close(struct dlog_reader *rb)
{
    struct creader *r = (struct creader *)rb;
    free(r->recs);
    bytes_free(&r->data);
    dlog_buf_free(&r->proj);
    free(r->prefix);
    free(r);
}

int creader_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_reader_options *opts, struct dlog_reader **out)
{
    struct creader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return DLOG_ENOMEM;
    r->base.ns = ns;
    r->c = client_of(ns);
    r->opts = *opts;
    if (r->opts.fetch_bytes == 0)
        r->opts.fetch_bytes = 4 * 1024 * 1024;
    snprintf(r->name, sizeof r->name, "%s", stream);
    if (opts->key_prefix_len > 0) {
        if (opts->key_prefix_len > WIRE_MAX_KEY) {
            free(r);
            errmsg_printf(ns->errmsg, "key prefix of %zu bytes exceeds %d",
                          opts->key_prefix_len, WIRE_MAX_KEY);
            return DLOG_EINVAL;
        }
        r->prefix = malloc(opts->key_prefix_len);
        if (r->prefix == NULL) {
            free(r);
            return DLOG_ENOMEM;
        }
        memcpy(r->prefix, opts->key_prefix, opts->key_prefix_len);
    }
    r->opts.key_prefix = r->prefix;

    struct wire_msg m;
    struct creq q;
    memset(&m, 0, sizeof m);
    memset(&q, 0, sizeof q);
    m.type = WIRE_READER_OPEN;
    m.u.reader_open.stream = stream;
    m.u.reader_open.start = (uint32_t)opts->start;
    m.u.reader_open.start_dlsn = opts->start_dlsn;
    m.u.reader_open.start_txid = opts->start_txid;
    q.on_reply = open_reply;
    q.data = r;
    int rv = client_call(r->c, &q, &m, ns->errmsg);
    client_req_clear(&q);
    if (rv != 0) {
        creader_close(&r->base);
        return rv;
    }
    *out = &r->base;
    return 0;
}
