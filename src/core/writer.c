/*
 * The embedded writer: group commit on a flush thread.
 *
 * dlog_write encodes records straight into the entry being filled (one
 * copy), so the caller's memory is free on return. The flush thread takes
 * the whole pending batch when it reaches batch_bytes, when linger_us has
 * passed since its first record, or on flush/close, and appends all of its
 * entries in one segment-store call: one durable commit (one fsync pair
 * for LMDB) covers many entries. While a batch commits, the next fills.
 *
 * Acknowledgement order: batches commit in order and their requests
 * complete in submit order, so a writer's DLSNs grow in submit order
 * (invariant 2). A fenced writer's batch fails whole with DLOG_EFENCED and
 * the error sticks: nothing from an old epoch is acknowledged (invariant 4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "core/embedded.h"
#include "core/quota.h"
#include "seg/entry.h"

#define KEY_MAX (64 * 1024)

struct wentry {
    struct entry_builder b;
    struct bytes ctmp; /* compressed copy */
    uint8_t eflags;
    /* after the append */
    int ok;
    uint64_t seg, id, base;
};

struct batch {
    struct wentry *ents;
    size_t nents; /* in use */
    size_t cap;   /* allocated (builders initialised) */
    struct dlog_write_req *head, *tail;
    size_t bytes;
    uint64_t nreq;
    uint64_t first_ns;
};

struct ewriter {
    struct dlog_writer base;
    struct embedded *e;
    char name[DLOG_STREAM_NAME_MAX + 1];
    uint64_t stream_id;
    struct dlog_stream_config cfg;
    struct dlog_writer_options opts;
    uint64_t seg;            /* current open segment; flush thread only after open */
    struct seg_info seginfo; /* its state as of our last append */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv_work;
    pthread_cond_t cv_done;
    struct batch *cur;
    struct batch *spare;
    size_t pending_bytes;
    uint64_t queued, done;
    int flush_req;
    int closing;
    int err; /* sticky: DLOG_EFENCED, DLOG_ENOTFOUND */
    uint64_t last_txid;
    struct iovec *iov;
    size_t iov_cap;
    size_t entry_max; /* records section limit: DLOG_ENTRY_MAX or less */
    struct wquota quota;
    int quota_ok; /* quota initialised */
};

static struct batch *batch_new(void)
{
    return calloc(1, sizeof(struct batch));
}

static void batch_reset(struct batch *b)
{
    for (size_t i = 0; i < b->nents; i++)
        entry_builder_reset(&b->ents[i].b);
    b->nents = 0;
    b->head = b->tail = NULL;
    b->bytes = 0;
    b->nreq = 0;
    b->first_ns = 0;
}

static void batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; i < b->cap; i++) {
        entry_builder_free(&b->ents[i].b);
        bytes_free(&b->ents[i].ctmp);
    }
    free(b->ents);
    free(b);
}

/* A fresh entry at the end of the batch. */
static struct wentry *batch_push(struct batch *b, uint8_t eflags)
{
    if (b->nents == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8;
        struct wentry *n = realloc(b->ents, cap * sizeof *n);
        if (n == NULL)
            return NULL;
        for (size_t i = b->cap; i < cap; i++) {
            entry_builder_init(&n[i].b);
            bytes_init(&n[i].ctmp);
        }
        b->ents = n;
        b->cap = cap;
    }
    struct wentry *we = &b->ents[b->nents++];
    entry_builder_reset(&we->b);
    we->eflags = eflags;
    return we;
}

/*
 * Encode one record into the batch; sets *ent and *slot to where it (its
 * first fragment) landed. With auto txids the txid written is the slot,
 * and the segment store adds the stream's base when it appends.
 */
static int add_record(struct ewriter *w, struct batch *b, const struct dlog_record *r,
                      size_t *ent, uint32_t *slot)
{
    int autotx = w->cfg.auto_txid;
    size_t rs = entry_record_size(r->key_len, r->len, 0);
    if (rs <= DLOG_ENTRY_MAX) {
        struct wentry *we = b->nents ? &b->ents[b->nents - 1] : NULL;
        if (we == NULL || we->eflags != 0 ||
            entry_builder_raw(&we->b) + rs > w->entry_max ||
            (w->cfg.segment_max_records > 0 && we->b.count >= w->cfg.segment_max_records))
            we = batch_push(b, 0);
        if (we == NULL)
            return DLOG_ENOMEM;
        *ent = b->nents - 1;
        *slot = we->b.count;
        return entry_builder_add(&we->b, 0, autotx ? we->b.count : r->txid, r->key,
                                 r->key_len, r->payload, r->len, 0);
    }
    /* A large record: fragment entries, each one record. */
    const uint8_t *p = r->payload;
    size_t off = 0;
    int first = 1;
    while (off < r->len) {
        size_t room = DLOG_ENTRY_MAX - 64 - (first ? r->key_len : 0);
        size_t chunk = r->len - off < room ? r->len - off : room;
        uint32_t rf = (first ? REC_F_FRAG_FIRST : 0) |
                      (off + chunk == r->len ? REC_F_FRAG_LAST : 0);
        struct wentry *we = batch_push(b, ENTRY_F_FRAGMENT | (first ? 0 : ENTRY_F_CONT));
        if (we == NULL)
            return DLOG_ENOMEM;
        if (first) {
            *ent = b->nents - 1;
            *slot = 0;
        }
        int rv =
            entry_builder_add(&we->b, rf, autotx ? 0 : r->txid, first ? r->key : NULL,
                              first ? r->key_len : 0, p + off, chunk, r->len);
        if (rv != 0)
            return rv;
        off += chunk;
        first = 0;
    }
    return 0;
}

static uint64_t quota_pending(void *arg)
{
    struct ewriter *w = arg;
    pthread_mutex_lock(&w->mu);
    uint64_t n = w->pending_bytes;
    pthread_mutex_unlock(&w->mu);
    return n;
}

static int quota_drain(void *arg)
{
    return ewriter_flush(&((struct ewriter *)arg)->base);
}

int ewriter_write(struct dlog_writer *wb, struct dlog_write_req *req,
                  const struct dlog_record *recs, size_t n)
{
    struct ewriter *w = (struct ewriter *)wb;
    size_t bytes = 0, stored = 0;
    for (size_t i = 0; i < n; i++) {
        if (recs[i].len + recs[i].key_len > w->cfg.max_record_bytes) {
            errmsg_printf(wb->errmsg,
                          "record of %zu bytes exceeds the stream's maximum of %llu",
                          recs[i].len + recs[i].key_len,
                          (unsigned long long)w->cfg.max_record_bytes);
            return DLOG_ETOOBIG;
        }
        if (recs[i].key_len > KEY_MAX) {
            errmsg_printf(wb->errmsg, "key of %zu bytes exceeds %d", recs[i].key_len,
                          KEY_MAX);
            return DLOG_ETOOBIG;
        }
        bytes += recs[i].len + recs[i].key_len;
        stored += entry_record_size(recs[i].key_len, recs[i].len, 0);
    }
    /* An upper bound of what it stores: it may start an entry of its own, and
     * a large record one per fragment. */
    stored += ENTRY_HDR_SIZE * (1 + bytes / DLOG_ENTRY_MAX);
    const struct wquota_writer qw = {quota_pending, quota_drain, w};
    int rv = wquota_admit(&w->quota, w->e, w->name, stored, &qw, wb->errmsg);
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&w->mu);
    rv = w->err ? w->err : w->closing ? DLOG_ECLOSED : 0;
    if (rv == 0 && !w->cfg.auto_txid) {
        uint64_t last = w->last_txid;
        for (size_t i = 0; i < n && rv == 0; i++) {
            if (recs[i].txid < last) {
                errmsg_printf(wb->errmsg,
                              "txid %llu is below the writer's last txid %llu",
                              (unsigned long long)recs[i].txid, (unsigned long long)last);
                rv = DLOG_ETXID;
            }
            last = recs[i].txid;
        }
    }
    while (rv == 0 && w->pending_bytes > w->opts.max_pending_bytes && !w->err) {
        pthread_cond_wait(&w->cv_done, &w->mu);
        rv = w->err ? w->err : w->closing ? DLOG_ECLOSED : 0;
    }
    if (rv != 0) {
        if (rv == DLOG_EFENCED)
            errmsg_printf(wb->errmsg, "writer fenced: a newer writer owns the stream");
        else if (rv == DLOG_ECLOSED)
            errmsg_printf(wb->errmsg, "writer is closing");
        pthread_mutex_unlock(&w->mu);
        return rv;
    }
    struct batch *b = w->cur;
    size_t nents0 = b->nents, raw0 = 0;
    uint32_t count0 = 0;
    uint64_t ltx0 = 0;
    if (nents0 > 0) {
        raw0 = b->ents[nents0 - 1].b.buf.len;
        count0 = b->ents[nents0 - 1].b.count;
        ltx0 = b->ents[nents0 - 1].b.last_txid;
    }
    size_t fe = 0, le = 0;
    uint32_t fs = 0, ls = 0;
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = add_record(w, b, &recs[i], i == 0 ? &fe : &le, i == 0 ? &fs : &ls);
        if (i == 0) {
            le = fe;
            ls = fs;
        }
    }
    if (rv != 0) {
        /* Undo: drop what this call added (out of memory only). */
        for (size_t i = nents0; i < b->nents; i++)
            entry_builder_reset(&b->ents[i].b);
        b->nents = nents0;
        if (nents0 > 0) {
            b->ents[nents0 - 1].b.buf.len = raw0;
            b->ents[nents0 - 1].b.count = count0;
            b->ents[nents0 - 1].b.last_txid = ltx0;
        }
        pthread_mutex_unlock(&w->mu);
        errmsg_printf(wb->errmsg, "out of memory queueing a write");
        return rv;
    }
    if (!w->cfg.auto_txid)
        w->last_txid = recs[n - 1].txid;
    req->first_txid = recs[0].txid;
    req->priv_[0] = fe;
    req->priv_[1] = fs;
    req->priv_[2] = le;
    req->priv_[3] = ls;
    req->next_ = NULL;
    if (b->tail)
        b->tail->next_ = req;
    else
        b->head = req;
    b->tail = req;
    b->nreq++;
    if (b->bytes == 0)
        b->first_ns = clock_now_ns();
    b->bytes += bytes + n;
    w->pending_bytes += bytes + n;
    w->queued++;
    if (b->nreq == 1 || b->bytes >= w->opts.batch_bytes)
        pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

/* Should the open segment roll, judged by its state after an append? */
static int roll_due(const struct ewriter *w, const struct seg_info *i)
{
    const struct dlog_stream_config *c = &w->cfg;
    return i->bytes >= c->segment_max_bytes ||
           (c->segment_max_records > 0 && i->records >= c->segment_max_records) ||
           (c->segment_max_age_ms > 0 &&
            clock_wall_ms() >= i->created_ms + c->segment_max_age_ms);
}

/* Records an entry adds to its segment's count (a large record counts once). */
static uint64_t entry_records(const struct wentry *we)
{
    return (we->eflags & ENTRY_F_CONT) ? 0 : we->b.count;
}

/* Would adding recs/bytes to the open segment overflow its limits? */
static int overflows(const struct ewriter *w, uint64_t recs, uint64_t bytes)
{
    const struct dlog_stream_config *c = &w->cfg;
    return bytes > c->segment_max_bytes ||
           (c->segment_max_records > 0 && recs > c->segment_max_records);
}

static int roll(struct ewriter *w)
{
    uint64_t next;
    int rv = stream_roll(w->e, w->name, w->base.epoch, w->seg, &next, w->base.errmsg);
    if (rv != 0)
        return rv;
    w->seg = next;
    memset(&w->seginfo, 0, sizeof w->seginfo);
    w->seginfo.created_ms = clock_wall_ms();
    if (w->cfg.retention_age_ms > 0 || w->cfg.retention_bytes > 0)
        stream_retain(w->e, w->name, w->base.errmsg);
    return 0;
}

/*
 * Append entries [i, j) to the open segment, following rolls made by other
 * writers; fills the entries' positions and base txids.
 */
static int append_group(struct ewriter *w, struct batch *b, size_t i, size_t j)
{
    struct embedded *e = w->e;
    struct seg_append a;
    int rv;
    for (int tries = 0;; tries++) {
        memset(&a, 0, sizeof a);
        a.epoch = w->base.epoch;
        a.entries = w->iov + i;
        a.n = (int)(j - i);
        a.flags = w->cfg.auto_txid ? SEG_APPEND_AUTO_TXID : 0;
        rv = e->seg->append(e->seg, w->stream_id, w->seg, &a);
        if ((rv != DLOG_ESEALED && rv != DLOG_ENOTFOUND) || tries > 100)
            break;
        /* Sealed by another writer's roll, or deleted: move on. */
        rv = roll(w);
        if (rv != 0)
            return rv;
    }
    if (rv != 0) {
        errmsg_printf(w->base.errmsg, "append to '%s': %s", w->name, e->seg->errmsg);
        return rv;
    }
    uint64_t base = a.first_txid, prev_last = 0;
    for (size_t k = i; k < j; k++) {
        struct wentry *we = &b->ents[k];
        if (k > i)
            base = (we->eflags & ENTRY_F_CONT) ? prev_last : prev_last + 1;
        if (!w->cfg.auto_txid)
            base = we->b.base_txid;
        we->seg = w->seg;
        we->id = a.first_entry + (k - i);
        we->base = base;
        we->ok = 1;
        prev_last = base + (we->b.last_txid - we->b.base_txid);
    }
    w->seginfo = a.info;
    if (roll_due(w, &a.info))
        roll(w); /* if it fails, the next append finds out */
    return 0;
}

/*
 * Finish the batch's entries and append them. Entries go in groups that keep
 * the open segment within its size and record limits (a roll in between),
 * and a large record's fragments always go in one append. Sets each
 * request's status and positions.
 */
static int commit(struct ewriter *w, struct batch *b)
{
    int rv = 0;
    for (size_t i = 0; i < b->nents; i++)
        b->ents[i].ok = 0;
    if (b->nents > w->iov_cap) {
        struct iovec *iov = realloc(w->iov, b->nents * sizeof *iov);
        if (iov == NULL) {
            rv = DLOG_ENOMEM;
            goto done;
        }
        w->iov = iov;
        w->iov_cap = b->nents;
    }
    for (size_t i = 0; i < b->nents && rv == 0; i++) {
        const uint8_t *p;
        size_t len;
        rv = entry_builder_finish(&b->ents[i].b, (int)w->cfg.compression,
                                  b->ents[i].eflags, &b->ents[i].ctmp, &p, &len);
        w->iov[i].iov_base = (void *)p;
        w->iov[i].iov_len = len;
    }
    size_t i = 0;
    while (rv == 0 && i < b->nents) {
        uint64_t recs = w->seginfo.records, bytes = w->seginfo.bytes;
        size_t j = i;
        while (j < b->nents) {
            size_t k = j + 1; /* a fragment run is one unit */
            while (k < b->nents && (b->ents[k].eflags & ENTRY_F_CONT))
                k++;
            uint64_t ur = 0, ub = 0;
            for (size_t x = j; x < k; x++) {
                ur += entry_records(&b->ents[x]);
                ub += w->iov[x].iov_len;
            }
            if (overflows(w, recs + ur, bytes + ub)) {
                if (j > i)
                    break;
                if (recs > 0 || bytes > 0) { /* start it in a fresh segment */
                    rv = roll(w);
                    if (rv != 0)
                        break;
                    recs = bytes = 0;
                }
            }
            recs += ur;
            bytes += ub;
            j = k;
        }
        if (rv == 0)
            rv = append_group(w, b, i, j);
        i = j;
    }
done:
    for (struct dlog_write_req *r = b->head; r != NULL; r = r->next_) {
        struct wentry *fe = &b->ents[r->priv_[0]], *le = &b->ents[r->priv_[2]];
        if (!fe->ok || !le->ok) {
            r->status = rv != 0 ? rv : DLOG_EIO;
            continue;
        }
        r->status = 0;
        r->first = (struct dlog_dlsn){fe->seg, fe->id, (uint32_t)r->priv_[1]};
        r->last = (struct dlog_dlsn){le->seg, le->id, (uint32_t)r->priv_[3]};
        if (w->cfg.auto_txid) /* the entry's base plus the slot */
            r->first_txid = fe->base + (fe->eflags ? 0 : r->priv_[1]);
    }
    return rv;
}

static int batch_ready(struct ewriter *w, uint64_t now)
{
    struct batch *b = w->cur;
    return b->nreq > 0 &&
           (b->bytes >= w->opts.batch_bytes || w->flush_req || w->closing ||
            now >= b->first_ns + (uint64_t)w->opts.linger_us * NS_PER_US);
}

static void *flush_main(void *arg)
{
    struct ewriter *w = arg;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        uint64_t now = clock_now_ns();
        if (!batch_ready(w, now)) {
            if (w->closing && w->cur->nreq == 0)
                break;
            if (w->cur->nreq == 0 || w->flush_req) {
                pthread_cond_wait(&w->cv_work, &w->mu);
            } else {
                struct timespec ts;
                clock_abs_timespec(
                    w->cur->first_ns + (uint64_t)w->opts.linger_us * NS_PER_US, &ts);
                pthread_cond_timedwait(&w->cv_work, &w->mu, &ts);
            }
            continue;
        }
        struct batch *b = w->cur;
        w->cur = w->spare != NULL ? w->spare : batch_new();
        w->spare = NULL;
        if (w->cur == NULL) { /* out of memory: keep the batch, retry later */
            w->cur = b;
            pthread_cond_wait(&w->cv_work, &w->mu);
            continue;
        }
        if (w->queued - w->done <= b->nreq)
            w->flush_req = 0;
        int rv = w->err;
        pthread_mutex_unlock(&w->mu);

        if (rv == 0) {
            rv = commit(w, b); /* sets each request's status */
        } else {
            for (struct dlog_write_req *r = b->head; r != NULL; r = r->next_)
                r->status = rv;
        }
        for (struct dlog_write_req *r = b->head, *next; r != NULL; r = next) {
            next = r->next_;
            core_write_done(w->base.ns, r);
        }

        pthread_mutex_lock(&w->mu);
        if (rv == DLOG_EFENCED || rv == DLOG_ENOTFOUND) {
            if (w->err == 0)
                log_warn("writer", "stream '%s': %s", w->name, dlog_strerror(rv));
            w->err = rv;
        }
        w->pending_bytes -= b->bytes;
        w->done += b->nreq;
        batch_reset(b);
        if (w->spare == NULL)
            w->spare = b;
        else
            batch_free(b);
        pthread_cond_broadcast(&w->cv_done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int ewriter_flush(struct dlog_writer *wb)
{
    struct ewriter *w = (struct ewriter *)wb;
    pthread_mutex_lock(&w->mu);
    uint64_t target = w->queued;
    if (w->done < target) {
        w->flush_req = 1;
        pthread_cond_signal(&w->cv_work);
    }
    while (w->done < target)
        pthread_cond_wait(&w->cv_done, &w->mu);
    int rv = w->err;
    pthread_mutex_unlock(&w->mu);
    return rv;
}

static void ewriter_free(struct ewriter *w)
{
    batch_free(w->cur);
    batch_free(w->spare);
    free(w->iov);
    if (w->quota_ok)
        wquota_destroy(&w->quota);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv_work);
    pthread_cond_destroy(&w->cv_done);
    free(w);
}

int ewriter_close(struct dlog_writer *wb)
{
    struct ewriter *w = (struct ewriter *)wb;
    pthread_mutex_lock(&w->mu);
    w->closing = 1;
    pthread_cond_signal(&w->cv_work);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    int rv = w->err == DLOG_EFENCED ? 0 : w->err;
    ewriter_free(w);
    return rv;
}

int ewriter_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_writer_options *opts, struct dlog_writer **out)
{
    struct embedded *e = embedded_of(ns);
    struct ewriter *w = calloc(1, sizeof *w);
    struct meta_stream ms;
    int rv;
    if (w == NULL)
        return DLOG_ENOMEM;
    w->base.ns = ns;
    w->e = e;
    w->opts = *opts;
    if (w->opts.batch_bytes == 0)
        w->opts.batch_bytes = 1024 * 1024;
    if (w->opts.max_pending_bytes == 0)
        w->opts.max_pending_bytes = 64 * 1024 * 1024;
    snprintf(w->name, sizeof w->name, "%s", stream);
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv_work, NULL);
    pthread_cond_init(&w->cv_done, NULL);
    w->cur = batch_new();
    if (w->cur == NULL || wquota_init(&w->quota) != 0) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    w->quota_ok = 1;
    rv = stream_load(e, stream, &ms, ns->errmsg);
    if (rv != 0)
        goto err;
    w->stream_id = ms.id;
    w->cfg = ms.cfg;
    w->base.epoch = ms.epoch;
    meta_stream_clear(&ms);
    /* Small segments get small entries, so rolls land near their limit. */
    w->entry_max = DLOG_ENTRY_MAX;
    if (w->cfg.segment_max_bytes < 2 * DLOG_ENTRY_MAX)
        w->entry_max =
            w->cfg.segment_max_bytes / 2 > 256 ? w->cfg.segment_max_bytes / 2 : 256;
    if (opts->mode == DLOG_WRITER_EXCLUSIVE)
        rv = stream_bump_epoch(e, stream, &w->base.epoch, &w->seg, ns->errmsg);
    else
        rv = stream_open_segment(e, stream, w->base.epoch, &w->seg, ns->errmsg);
    if (rv != 0)
        goto err;
    e->seg->info(e->seg, w->stream_id, w->seg, &w->seginfo);
    const struct wquota_writer qw = {quota_pending, quota_drain, w};
    rv = wquota_start(&w->quota, e, w->name, &qw, ns->errmsg);
    if (rv != 0)
        goto err;
    if (pthread_create(&w->thread, NULL, flush_main, w) != 0) {
        rv = DLOG_ENOMEM;
        goto err;
    }
    *out = &w->base;
    return 0;
err:
    ewriter_free(w);
    return rv;
}
