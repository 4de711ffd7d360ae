/*
 * The embedded reader.
 *
 * A reader fetches runs of entries (up to fetch_bytes) from the segment
 * store into its own buffer, verifies each entry's CRC, and hands out
 * records pointing into that buffer; the memory stays valid until the next
 * read call. It walks across segment boundaries using the stream's segment
 * list: a sealed segment whose entries are exhausted leads to the next one.
 * At the end of the open segment it waits on the store's doorbell, which
 * every append rings (in every process), so tailing readers hear of new
 * entries at once.
 *
 * Large records arrive as runs of fragment entries; the reader reassembles
 * them in a separate buffer and returns them whole, and drops a run that
 * does not end in a last fragment (invariant 5).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "core/embedded.h"
#include "core/transform.h"
#include "seg/entry.h"

struct fent {
    uint64_t id;
    size_t off;
    size_t len;
};

struct ereader {
    struct dlog_reader base;
    struct embedded *e;
    char name[DLOG_STREAM_NAME_MAX + 1];
    struct dlog_reader_options opts;
    uint8_t *prefix;       /* copy of opts.key_prefix */
    struct meta_stream ms; /* cached stream record */
    /* fetch state */
    uint64_t fseg;   /* segment being fetched */
    uint64_t fentry; /* next entry id to fetch */
    struct bytes batch;
    struct fent *ents;
    size_t nents, ients, ents_cap;
    /* decode state */
    int in_entry;
    struct entry_iter it;
    uint64_t cur_id;
    uint32_t slot;
    struct bytes scratch; /* decompressed records of the current entry */
    int scratch_used;     /* a returned record points into scratch */
    /* large record reassembly */
    int assembling;
    struct bytes reasm;
    struct bytes rkey;
    uint64_t rtotal, rtxid;
    struct dlog_dlsn rdlsn;
    struct dlog_buf proj;
    uint64_t skip_txid;         /* DLOG_START_TXID: skip records below */
    struct dlog_dlsn skip_dlsn; /* skip records below (start position) */
};

static int reload(struct ereader *r)
{
    struct meta_stream ms;
    int rv = stream_load(r->e, r->name, &ms, r->base.errmsg);
    if (rv != 0)
        return rv;
    meta_stream_clear(&r->ms);
    r->ms = ms;
    return 0;
}

static int visit(void *arg, uint64_t id, const void *p, size_t len)
{
    struct ereader *r = arg;
    if (r->nents == r->ents_cap) {
        size_t cap = r->ents_cap ? r->ents_cap * 2 : 64;
        struct fent *n = realloc(r->ents, cap * sizeof *n);
        if (n == NULL)
            return 1;
        r->ents = n;
        r->ents_cap = cap;
    }
    if (bytes_append(&r->batch, p, len) != 0)
        return 1;
    r->ents[r->nents++] = (struct fent){id, r->batch.len - len, len};
    return 0;
}

static int truncated(struct ereader *r, struct dlog_dlsn at)
{
    char a[DLOG_DLSN_STRLEN], t[DLOG_DLSN_STRLEN];
    errmsg_printf(r->base.errmsg, "position %s is below the truncation point %s of '%s'",
                  dlog_dlsn_format(at, a, sizeof a),
                  dlog_dlsn_format(r->ms.trunc, t, sizeof t), r->name);
    return DLOG_ETRUNCATED;
}

/*
 * Fetch the next run of entries into the batch. Returns 1 when entries
 * were fetched, 0 when there is nothing more for now, or an error.
 */
static int refill(struct ereader *r)
{
    struct embedded *e = r->e;
    r->nents = r->ients = 0;
    bytes_reset(&r->batch);
    r->scratch_used = 0;
    for (int hops = 0; hops < 1000; hops++) {
        struct dlog_dlsn at = {r->fseg, r->fentry, 0};
        if (dlog_dlsn_cmp(at, r->ms.trunc) < 0 &&
            !(r->ms.trunc.seg == at.seg && r->ms.trunc.entry == at.entry))
            return truncated(r, at);
        struct meta_segment *g = meta_stream_find(&r->ms, r->fseg);
        if (g == NULL) {
            int rv = reload(r);
            if (rv != 0)
                return rv;
            if (dlog_dlsn_cmp(at, r->ms.trunc) < 0)
                return truncated(r, at);
            g = meta_stream_find(&r->ms, r->fseg);
            if (g == NULL) {
                struct meta_segment *last = meta_stream_last(&r->ms);
                if (r->fseg > last->seq)
                    return 0; /* not created yet */
                /* A gap (segments are never skipped, but be safe): next one. */
                for (uint32_t i = 0; i < r->ms.nseg; i++)
                    if (r->ms.segs[i].seq > r->fseg) {
                        r->fseg = r->ms.segs[i].seq;
                        r->fentry = 0;
                        break;
                    }
                continue;
            }
        }
        int n = e->seg->read(e->seg, r->ms.id, r->fseg, r->fentry, r->opts.fetch_bytes,
                             visit, r);
        if (n < 0 && n != DLOG_ENOTFOUND) {
            errmsg_printf(r->base.errmsg, "read '%s': %s", r->name, e->seg->errmsg);
            return n;
        }
        if (n > 0) {
            if (r->nents == 0)
                return DLOG_ENOMEM;
            r->fentry = r->ents[r->nents - 1].id + 1;
            return 1;
        }
        /* Nothing here: move on if this segment is finished. */
        struct seg_info si;
        int rv = e->seg->info(e->seg, r->ms.id, r->fseg, &si);
        if (rv == DLOG_ENOTFOUND) {
            /* Not opened yet (a new stream) or deleted by truncation. */
            int rv2 = reload(r);
            if (rv2 != 0)
                return rv2;
            if (meta_stream_find(&r->ms, r->fseg) != NULL)
                return 0;
            continue;
        }
        if (rv != 0)
            return rv;
        if (!si.sealed || si.next_entry > r->fentry)
            return 0;
        /* Sealed and read to its end: the next segment, once listed. */
        struct meta_segment *next = NULL;
        for (int pass = 0; pass < 2 && next == NULL; pass++) {
            for (uint32_t i = 0; i < r->ms.nseg; i++)
                if (r->ms.segs[i].seq > r->fseg) {
                    next = &r->ms.segs[i];
                    break;
                }
            if (next == NULL && pass == 0 && (rv = reload(r)) != 0)
                return rv;
        }
        if (next == NULL)
            return 0; /* the roll is in progress */
        r->fseg = next->seq;
        r->fentry = 0;
    }
    return 0;
}

/* Does rec pass the key prefix and the filter? */
static int keep(struct ereader *r, const struct dlog_record *rec)
{
    size_t pl = r->opts.key_prefix_len;
    if (pl > 0 && (rec->key_len < pl || memcmp(rec->key, r->prefix, pl) != 0))
        return 0;
    if (r->opts.filter != NULL && !r->opts.filter(r->opts.filter_arg, rec))
        return 0;
    return 1;
}

enum { NR_GOT = 1, NR_EMPTY = 0, NR_STOP = 2 };

/*
 * Decode the next record. Returns NR_GOT with *rec, NR_EMPTY when the batch
 * is used up, NR_STOP when the caller must return what it has first (the
 * next step would overwrite memory a returned record points into), or an
 * error.
 */
static int next_record(struct ereader *r, struct dlog_record *rec, size_t have)
{
    for (;;) {
        if (r->in_entry) {
            struct entry_rec er;
            int rv = entry_iter_next(&r->it, &er);
            if (rv < 0) {
                errmsg_printf(r->base.errmsg, "corrupt entry %llu/%llu in '%s'",
                              (unsigned long long)r->fseg, (unsigned long long)r->cur_id,
                              r->name);
                return DLOG_ECORRUPT;
            }
            if (rv == 0) {
                r->in_entry = 0;
                r->base.pos = (struct dlog_dlsn){r->fseg, r->cur_id + 1, 0};
                continue;
            }
            struct dlog_dlsn at = {r->fseg, r->cur_id, r->slot++};
            if (r->it.h.flags & ENTRY_F_FRAGMENT) {
                if (er.flags & REC_F_FRAG_FIRST) {
                    bytes_reset(&r->reasm);
                    bytes_reset(&r->rkey);
                    if (bytes_reserve(&r->reasm, er.total) != 0 ||
                        bytes_append(&r->rkey, er.key, er.key_len) != 0)
                        return DLOG_ENOMEM;
                    r->assembling = 1;
                    r->rtotal = er.total;
                    r->rtxid = er.txid;
                    r->rdlsn = at;
                } else if (!r->assembling) {
                    continue; /* the tail of a record that began before us */
                }
                if (r->reasm.len + er.len > r->rtotal) {
                    log_warn("reader", "'%s': oversized fragment run dropped", r->name);
                    r->assembling = 0;
                    continue;
                }
                bytes_append(&r->reasm, er.payload, er.len);
                if (!(er.flags & REC_F_FRAG_LAST))
                    continue;
                r->assembling = 0;
                if (r->reasm.len != r->rtotal) {
                    log_warn("reader", "'%s': short fragment run dropped", r->name);
                    continue;
                }
                rec->payload = r->reasm.p;
                rec->len = r->reasm.len;
                rec->key = r->rkey.len ? r->rkey.p : NULL;
                rec->key_len = r->rkey.len;
                rec->txid = r->rtxid;
                rec->dlsn = r->rdlsn;
            } else {
                rec->payload = er.payload;
                rec->len = er.len;
                rec->key = er.key_len ? er.key : NULL;
                rec->key_len = er.key_len;
                rec->txid = er.txid;
                rec->dlsn = at;
                if (r->it.h.flags & ENTRY_F_COMPRESS_MASK)
                    r->scratch_used = 1;
            }
            rec->flags = 0;
            r->base.pos = (struct dlog_dlsn){rec->dlsn.seg, r->cur_id, r->slot};
            if (dlog_dlsn_cmp(rec->dlsn, r->skip_dlsn) < 0 || rec->txid < r->skip_txid)
                continue;
            r->skip_txid = 0;
            return NR_GOT;
        }
        if (r->ients == r->nents)
            return NR_EMPTY;
        struct fent *f = &r->ents[r->ients];
        struct entry_hdr h;
        if (entry_parse_hdr(r->batch.p + f->off, f->len, &h) != 0) {
            errmsg_printf(r->base.errmsg, "corrupt entry %llu/%llu in '%s'",
                          (unsigned long long)r->fseg, (unsigned long long)f->id,
                          r->name);
            return DLOG_ECORRUPT;
        }
        /* A fragment run that does not continue is dropped (writer died). */
        if (r->assembling && !(h.flags & ENTRY_F_CONT)) {
            log_warn("reader", "'%s': incomplete large record dropped", r->name);
            r->assembling = 0;
        }
        if ((h.flags & ENTRY_F_COMPRESS_MASK) && r->scratch_used && have > 0)
            return NR_STOP;
        if (r->skip_txid > 0 && h.last_txid < r->skip_txid &&
            !(h.flags & ENTRY_F_FRAGMENT)) {
            r->ients++;
            r->base.pos = (struct dlog_dlsn){r->fseg, f->id + 1, 0};
            continue;
        }
        int rv = entry_iter_init(&r->it, r->batch.p + f->off, f->len, &r->scratch);
        if (rv != 0) {
            errmsg_printf(r->base.errmsg, "entry %llu/%llu of '%s': %s",
                          (unsigned long long)r->fseg, (unsigned long long)f->id, r->name,
                          rv == DLOG_ECORRUPT ? "checksum mismatch" : dlog_strerror(rv));
            return rv;
        }
        r->ients++;
        r->in_entry = 1;
        r->cur_id = f->id;
        r->slot = 0;
    }
}

int ereader_read(struct dlog_reader *rb, struct dlog_record *recs, size_t max,
                 int timeout_ms)
{
    struct ereader *r = (struct ereader *)rb;
    struct embedded *e = r->e;
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    size_t n = 0;
    r->proj.len = 0;
    for (;;) {
        uint32_t seen = e->seg->notify_seq(e->seg);
        int rv = 0;
        while (n < max) {
            rv = next_record(r, &recs[n], n);
            if (rv != NR_GOT)
                break;
            struct dlog_record *rec = &recs[n];
            if (dlog_dlsn_cmp(rec->dlsn, r->opts.end) > 0) {
                rv = DLOG_EEOF;
                break;
            }
            if (!keep(r, rec))
                continue;
            if (r->opts.project != NULL) {
                int prv = transform_project(&r->opts, rec, &r->proj, r->base.errmsg);
                if (prv != 0)
                    return prv;
            }
            int whole = rec->payload == r->reasm.p && r->reasm.len > 0 &&
                        rec->len == r->reasm.len;
            n++;
            if (whole)
                break; /* the reassembly buffer is reused by the next large record */
        }
        if (n > 0) {
            transform_finish(recs, n, &r->proj);
            return (int)n;
        }
        if (rv < 0)
            return rv;
        if (rv == NR_EMPTY) {
            rv = refill(r);
            if (rv < 0)
                return rv;
            if (rv > 0)
                continue;
        }
        /* Nothing to read: wait for the doorbell. */
        int64_t left = clock_ms_left(deadline);
        if (left == 0) {
            errmsg_printf(r->base.errmsg, "no record within %d ms", timeout_ms);
            return DLOG_ETIMEDOUT;
        }
        int slice = left < 0 || left > 1000 ? 1000 : (int)left;
        e->seg->notify_wait(e->seg, seen, slice);
        /* Meta may have changed (truncation, new segments): check on wake. */
        if (reload(r) != 0)
            return DLOG_ENOTFOUND;
    }
}

static void ereader_free(struct ereader *r)
{
    meta_stream_clear(&r->ms);
    bytes_free(&r->batch);
    bytes_free(&r->scratch);
    bytes_free(&r->reasm);
    bytes_free(&r->rkey);
    dlog_buf_free(&r->proj);
    free(r->ents);
    free(r->prefix);
    free(r);
}

void ereader_close(struct dlog_reader *rb)
{
    ereader_free((struct ereader *)rb);
}

int ereader_open(struct dlog_ns *ns, const char *stream,
                 const struct dlog_reader_options *opts, struct dlog_reader **out)
{
    struct embedded *e = embedded_of(ns);
    struct ereader *r = calloc(1, sizeof *r);
    if (r == NULL)
        return DLOG_ENOMEM;
    r->base.ns = ns;
    r->e = e;
    r->opts = *opts;
    if (r->opts.fetch_bytes == 0)
        r->opts.fetch_bytes = 4 * 1024 * 1024;
    snprintf(r->name, sizeof r->name, "%s", stream);
    if (opts->key_prefix_len > 0) {
        r->prefix = malloc(opts->key_prefix_len);
        if (r->prefix == NULL) {
            free(r);
            return DLOG_ENOMEM;
        }
        memcpy(r->prefix, opts->key_prefix, opts->key_prefix_len);
    }
    r->opts.key_prefix = r->prefix;
    int rv = stream_load(e, stream, &r->ms, ns->errmsg);
    if (rv != 0) {
        ereader_free(r);
        return rv;
    }
    struct meta_segment *first = &r->ms.segs[0], *last = meta_stream_last(&r->ms);
    struct dlog_dlsn start = {first->seq, 0, 0};
    if (dlog_dlsn_cmp(start, r->ms.trunc) < 0)
        start = r->ms.trunc;
    switch (opts->start) {
    case DLOG_START_TAIL: {
        struct seg_info si;
        memset(&si, 0, sizeof si);
        e->seg->info(e->seg, r->ms.id, last->seq, &si);
        start = (struct dlog_dlsn){last->seq, si.next_entry, 0};
        break;
    }
    case DLOG_START_DLSN:
        start = opts->start_dlsn;
        if (start.seg == 0)
            start = (struct dlog_dlsn){first->seq, 0, 0};
        if (dlog_dlsn_cmp(start, r->ms.trunc) < 0) {
            rv = truncated(r, start);
            errmsg_copy(ns->errmsg, r->base.errmsg);
            ereader_free(r);
            return rv;
        }
        break;
    case DLOG_START_TXID:
        r->skip_txid = opts->start_txid;
        for (uint32_t i = 0; i + 1 < r->ms.nseg; i++) /* skip whole sealed segments */
            if (r->ms.segs[i].last_txid < opts->start_txid &&
                dlog_dlsn_cmp((struct dlog_dlsn){r->ms.segs[i + 1].seq, 0, 0}, start) > 0)
                start = (struct dlog_dlsn){r->ms.segs[i + 1].seq, 0, 0};
        break;
    default:
        break;
    }
    r->fseg = start.seg;
    r->fentry = start.entry;
    r->skip_dlsn = start;
    r->base.pos = start;
    *out = &r->base;
    return 0;
}
