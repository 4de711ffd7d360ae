/*
 * Stream metadata operations of the embedded backend: admin (create,
 * delete, list, describe, truncate, retention) and the protocols writers
 * use to move through segments (open, roll, epoch bump).
 *
 * Every change of a stream record is a compare-and-set in the metadata
 * store, retried on DLOG_ECONFLICT; every step that touches the segment
 * store is idempotent, so a crash between steps is recovered by the next
 * writer repeating them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/embedded.h"

#define CAS_RETRIES 1000

/* Tells the segment store where each segment of ms lives (seg.h,
 * locate): every call on a segment follows a load of its stream. */
static int locate_all(struct embedded *e, const struct meta_stream *ms, char *errmsg)
{
    if (e->seg->locate == NULL)
        return 0;
    for (uint32_t i = 0; i < ms->nseg; i++) {
        /* place 0 too: it drops a token a lost roll of ours may have left */
        int rv = e->seg->locate(e->seg, ms->id, ms->segs[i].seq, ms->segs[i].place);
        if (rv != 0) {
            errmsg_printf(errmsg, "stream '%s': %s", ms->name, e->seg->errmsg);
            return rv;
        }
    }
    return 0;
}

/* A new segment's place (seg.h, place): 0 when the store has one place. */
static uint32_t place_new(struct embedded *e, uint64_t stream)
{
    return e->seg->place != NULL ? e->seg->place(e->seg, stream) : 0;
}

int stream_load(struct embedded *e, const char *name, struct meta_stream *ms,
                char *errmsg)
{
    memset(ms, 0, sizeof *ms);
    int rv = e->meta->get(e->meta, name, ms);
    if (rv == DLOG_ENOTFOUND)
        errmsg_printf(errmsg, "stream '%s' not found", name);
    else if (rv != 0)
        errmsg_printf(errmsg, "stream '%s': %s", name, e->meta->errmsg);
    if (rv == 0) {
        rv = locate_all(e, ms, errmsg);
        if (rv != 0)
            meta_stream_clear(ms);
    }
    return rv;
}

static int seg_err(struct embedded *e, int rv, char *errmsg, const char *what)
{
    errmsg_printf(errmsg, "%s: %s", what, e->seg->errmsg);
    return rv;
}

int stream_open_segment(struct embedded *e, const char *name, uint64_t epoch,
                        uint64_t *seq, char *errmsg)
{
    struct meta_stream ms;
    int rv = stream_load(e, name, &ms, errmsg);
    if (rv != 0)
        return rv;
    struct meta_segment *last = meta_stream_last(&ms);
    if (last == NULL || last->state != DLOG_SEGMENT_OPEN) {
        meta_stream_clear(&ms);
        errmsg_printf(errmsg, "stream '%s' has no open segment", name);
        return DLOG_EINTERNAL;
    }
    rv = e->seg->open(e->seg, ms.id, last->seq, last->epoch, last->last_txid);
    if (rv != 0)
        rv = seg_err(e, rv, errmsg, "open segment");
    *seq = last->seq;
    meta_stream_clear(&ms);
    return rv;
}

int stream_roll(struct embedded *e, const char *name, uint64_t epoch, uint64_t cur,
                uint64_t *seq, char *errmsg)
{
    /* The place chosen for a new seq is kept across retries of the same
     * seq, so a lost compare-and-set leaves no empty segment behind on
     * another group. */
    uint64_t placed_seq = 0;
    uint32_t placed = 0;

    for (int tries = 0; tries < CAS_RETRIES; tries++) {
        struct meta_stream ms;
        int rv = stream_load(e, name, &ms, errmsg);
        if (rv != 0)
            return rv;
        if (ms.epoch > epoch) {
            meta_stream_clear(&ms);
            errmsg_printf(errmsg, "writer at epoch %llu fenced by epoch %llu",
                          (unsigned long long)epoch, (unsigned long long)ms.epoch);
            return DLOG_EFENCED;
        }
        struct meta_segment *last = meta_stream_last(&ms);
        if (last->seq > cur) { /* someone else rolled */
            uint64_t id = ms.id, e0 = last->epoch, t = last->last_txid;
            *seq = last->seq;
            meta_stream_clear(&ms);
            return e->seg->open(e->seg, id, *seq, e0, t);
        }
        struct seg_info info;
        rv = e->seg->seal(e->seg, ms.id, last->seq, epoch, &info);
        if (rv == DLOG_ENOTFOUND) { /* created in meta, never opened: empty */
            memset(&info, 0, sizeof info);
            info.last_txid = last->last_txid;
            rv = 0;
        }
        if (rv != 0) {
            meta_stream_clear(&ms);
            return seg_err(e, rv, errmsg, "seal segment");
        }
        uint64_t now = clock_wall_ms();
        last->state = DLOG_SEGMENT_SEALED;
        last->entries = info.next_entry;
        last->records = info.records;
        last->bytes = info.bytes;
        last->first_txid = info.first_txid;
        last->last_txid = info.last_txid;
        last->sealed_ms = now;
        struct meta_segment g = {0};
        g.seq = ms.next_seq++;
        g.state = DLOG_SEGMENT_OPEN;
        g.epoch = epoch;
        g.last_txid = info.last_txid;
        g.created_ms = now;
        if (placed_seq != g.seq) {
            placed = place_new(e, ms.id);
            placed_seq = g.seq;
        }
        g.place = placed;
        rv = e->seg->locate != NULL ? e->seg->locate(e->seg, ms.id, g.seq, g.place) : 0;
        if (rv == 0)
            rv = e->seg->open(e->seg, ms.id, g.seq, epoch, info.last_txid);
        if (rv == 0)
            rv = e->seg->fence(e->seg, ms.id, g.seq, epoch);
        if (rv != 0) {
            meta_stream_clear(&ms);
            return seg_err(e, rv, errmsg, "open segment");
        }
        rv = meta_stream_push_segment(&ms, &g);
        if (rv == 0)
            rv = e->meta->update(e->meta, &ms);
        meta_stream_clear(&ms);
        if (rv == DLOG_ECONFLICT)
            continue;
        if (rv != 0) {
            errmsg_printf(errmsg, "roll stream '%s': %s", name, e->meta->errmsg);
            return rv;
        }
        *seq = g.seq;
        return 0;
    }
    errmsg_printf(errmsg, "roll stream '%s': too many concurrent updates", name);
    return DLOG_ECONFLICT;
}

int stream_bump_epoch(struct embedded *e, const char *name, uint64_t *epoch,
                      uint64_t *seq, char *errmsg)
{
    for (int tries = 0; tries < CAS_RETRIES; tries++) {
        struct meta_stream ms;
        int rv = stream_load(e, name, &ms, errmsg);
        if (rv != 0)
            return rv;
        ms.epoch++;
        struct meta_segment *last = meta_stream_last(&ms);
        uint64_t id = ms.id, s = last->seq, e0 = last->epoch, t = last->last_txid;
        uint64_t newepoch = ms.epoch;
        struct seg_info info;
        /* Fenced first, so no older writer appends to the open segment from
         * now on (and none adds segments once meta has the new epoch). A
         * fence for an update that then conflicts is harmless: the retry
         * fences higher. */
        rv = e->seg->open(e->seg, id, s, e0, t);
        if (rv == 0)
            rv = e->seg->fence(e->seg, id, s, newepoch);
        if (rv == 0)
            rv = e->seg->info(e->seg, id, s, &info);
        if (rv != 0) {
            meta_stream_clear(&ms);
            return seg_err(e, rv, errmsg, "fence segment");
        }
        if (info.next_entry == 0) /* empty: it is the new epoch's segment */
            last->epoch = newepoch;
        rv = e->meta->update(e->meta, &ms);
        meta_stream_clear(&ms);
        if (rv == DLOG_ECONFLICT)
            continue;
        if (rv != 0) {
            errmsg_printf(errmsg, "bump epoch of '%s': %s", name, e->meta->errmsg);
            return rv;
        }
        *epoch = newepoch;
        *seq = s;
        /* A segment holds the records of one epoch: the older epoch's
         * segment is sealed and the new epoch starts its own. */
        if (info.next_entry > 0) {
            rv = stream_roll(e, name, newepoch, s, seq, errmsg);
            if (rv == DLOG_EFENCED) { /* a newer writer came in between: this */
                *seq = s;             /* one opens, and its writes are fenced */
                rv = 0;
            }
            return rv;
        }
        return 0;
    }
    errmsg_printf(errmsg, "bump epoch of '%s': too many concurrent updates", name);
    return DLOG_ECONFLICT;
}

/* Remove the segments' data once metadata no longer lists them. */
static void drop_segments(struct embedded *e, uint64_t id, const uint64_t *seqs, int n)
{
    for (int i = 0; i < n; i++)
        e->seg->remove(e->seg, id, seqs[i]);
}

/*
 * Cut the sealed segments below `keep` (an index into ms->segs) out of the
 * record; their seqs go to *dropped (malloc'd).
 */
static int cut_below(struct meta_stream *ms, uint32_t keep, uint64_t **dropped)
{
    *dropped = NULL;
    if (keep == 0)
        return 0;
    *dropped = malloc(keep * sizeof(uint64_t));
    if (*dropped == NULL)
        return DLOG_ENOMEM;
    for (uint32_t i = 0; i < keep; i++)
        (*dropped)[i] = ms->segs[i].seq;
    memmove(ms->segs, ms->segs + keep, (ms->nseg - keep) * sizeof *ms->segs);
    ms->nseg -= keep;
    struct dlog_dlsn first = {ms->segs[0].seq, 0, 0};
    if (dlog_dlsn_cmp(ms->trunc, first) < 0)
        ms->trunc = first;
    return (int)keep;
}

/*
 * Store ms with its sealed segments below index keep cut out, then delete
 * their data. Clears ms. Returns how many were deleted, or an error
 * (DLOG_ECONFLICT when the record changed: load it again and retry).
 */
static int commit_cut(struct embedded *e, struct meta_stream *ms, uint32_t keep)
{
    uint64_t *dropped;
    int n = cut_below(ms, keep, &dropped);
    int rv = n < 0 ? n : e->meta->update(e->meta, ms);
    uint64_t id = ms->id;
    meta_stream_clear(ms);
    if (rv == 0)
        drop_segments(e, id, dropped, n);
    free(dropped);
    return rv != 0 ? rv : n;
}

int emb_truncate(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn)
{
    struct embedded *e = embedded_of(ns);
    for (int tries = 0; tries < CAS_RETRIES; tries++) {
        struct meta_stream ms;
        int rv = stream_load(e, name, &ms, ns->errmsg);
        if (rv != 0)
            return rv;
        if (dlog_dlsn_cmp(dlsn, ms.trunc) <= 0) {
            meta_stream_clear(&ms);
            return 0;
        }
        struct meta_segment *last = meta_stream_last(&ms);
        if (dlsn.seg > last->seq) {
            meta_stream_clear(&ms);
            errmsg_printf(ns->errmsg, "truncate: %llu/... is beyond the stream's end",
                          (unsigned long long)dlsn.seg);
            return DLOG_EINVAL;
        }
        ms.trunc = dlsn;
        uint32_t keep = 0;
        while (keep + 1 < ms.nseg && ms.segs[keep].seq < dlsn.seg)
            keep++;
        rv = commit_cut(e, &ms, keep);
        if (rv == DLOG_ECONFLICT)
            continue;
        if (rv < 0) {
            errmsg_printf(ns->errmsg, "truncate '%s': %s", name, e->meta->errmsg);
            return rv;
        }
        return 0;
    }
    return DLOG_ECONFLICT;
}

uint64_t stream_usage(struct embedded *e, const struct meta_stream *ms)
{
    uint64_t total = 0;
    struct seg_info info;

    if (ms->nseg == 0)
        return 0;
    for (uint32_t i = 0; i + 1 < ms->nseg; i++)
        total += ms->segs[i].bytes;
    if (e->seg->info(e->seg, ms->id, ms->segs[ms->nseg - 1].seq, &info) == 0)
        total += info.bytes;
    return total;
}

int stream_make_room(struct embedded *e, const char *name, uint64_t quota, uint64_t need,
                     char *errmsg)
{
    for (int tries = 0; tries < CAS_RETRIES; tries++) {
        struct meta_stream ms;
        int rv = stream_load(e, name, &ms, errmsg);
        if (rv != 0)
            return rv;
        uint64_t now = clock_wall_ms(), total = stream_usage(e, &ms);
        uint32_t keep = 0;
        while (keep + 1 < ms.nseg) {
            const struct meta_segment *g = &ms.segs[keep];
            int old = ms.cfg.retention_age_ms > 0 &&
                      g->sealed_ms + ms.cfg.retention_age_ms <= now;
            int big = ms.cfg.retention_bytes > 0 && total > ms.cfg.retention_bytes;
            int full = quota > 0 && total + need > quota;
            if (!old && !big && !full)
                break;
            total -= g->bytes;
            keep++;
        }
        if (keep == 0) {
            meta_stream_clear(&ms);
            return 0;
        }
        rv = commit_cut(e, &ms, keep);
        if (rv == DLOG_ECONFLICT)
            continue;
        if (rv < 0)
            errmsg_printf(errmsg, "retention '%s': %s", name, e->meta->errmsg);
        return rv;
    }
    return DLOG_ECONFLICT;
}

int stream_retain(struct embedded *e, const char *name, char *errmsg)
{
    return stream_make_room(e, name, 0, 0, errmsg);
}

int emb_retention(struct dlog_ns *ns, const char *name)
{
    return stream_retain(embedded_of(ns), name, ns->errmsg);
}

int emb_create(struct dlog_ns *ns, const char *name, const struct dlog_stream_config *cfg)
{
    struct embedded *e = embedded_of(ns);
    struct meta_stream ms;
    memset(&ms, 0, sizeof ms);
    strcpy(ms.name, name);
    ms.cfg = *cfg;
    ms.cfg.version = DLOG_STREAM_CONFIG_VERSION;
    ms.created_ms = clock_wall_ms();
    ms.next_seq = 2;
    struct meta_segment g = {0};
    g.seq = 1;
    g.state = DLOG_SEGMENT_OPEN;
    g.created_ms = ms.created_ms;
    g.place = place_new(e, 0);
    int rv = meta_stream_push_segment(&ms, &g);
    if (rv == 0)
        rv = e->meta->create(e->meta, &ms);
    if (rv == DLOG_EEXIST)
        errmsg_printf(ns->errmsg, "stream '%s' already exists", name);
    else if (rv != 0)
        errmsg_printf(ns->errmsg, "create '%s': %s", name, e->meta->errmsg);
    if (rv == 0)
        rv = locate_all(e, &ms, ns->errmsg);
    if (rv == 0) {
        rv = e->seg->open(e->seg, ms.id, 1, 0, 0);
        if (rv != 0)
            seg_err(e, rv, ns->errmsg, "create: open segment");
    }
    meta_stream_clear(&ms);
    return rv;
}

int emb_delete(struct dlog_ns *ns, const char *name)
{
    struct embedded *e = embedded_of(ns);
    struct meta_stream ms;
    int rv = stream_load(e, name, &ms, ns->errmsg);
    if (rv != 0)
        return rv;
    rv = e->meta->remove(e->meta, name, 0);
    if (rv == 0)
        for (uint32_t i = 0; i < ms.nseg; i++)
            e->seg->remove(e->seg, ms.id, ms.segs[i].seq);
    else
        errmsg_printf(ns->errmsg, "delete '%s': %s", name, e->meta->errmsg);
    meta_stream_clear(&ms);
    return rv;
}

int emb_list(struct dlog_ns *ns, char ***names, size_t *count)
{
    struct embedded *e = embedded_of(ns);
    int rv = e->meta->list(e->meta, names, count);
    if (rv != 0)
        errmsg_printf(ns->errmsg, "list: %s", e->meta->errmsg);
    return rv;
}

int emb_describe(struct dlog_ns *ns, const char *name, struct dlog_stream_info **out)
{
    struct embedded *e = embedded_of(ns);
    struct meta_stream ms;
    int rv = stream_load(e, name, &ms, ns->errmsg);
    if (rv != 0)
        return rv;
    struct dlog_stream_info *info = calloc(1, sizeof *info);
    if (info == NULL ||
        (info->segments = calloc(ms.nseg, sizeof *info->segments)) == NULL) {
        free(info);
        meta_stream_clear(&ms);
        return DLOG_ENOMEM;
    }
    snprintf(info->name, sizeof info->name, "%s", ms.name);
    info->id = ms.id;
    info->config = ms.cfg;
    info->epoch = ms.epoch;
    info->truncated = ms.trunc;
    info->created_ms = ms.created_ms;
    info->nsegments = ms.nseg;
    int have_first = 0;
    for (uint32_t i = 0; i < ms.nseg; i++) {
        const struct meta_segment *g = &ms.segs[i];
        struct dlog_segment_info *d = &info->segments[i];
        struct seg_info si;
        memset(&si, 0, sizeof si);
        if (e->seg->info(e->seg, ms.id, g->seq, &si) != 0) {
            si.last_txid = g->last_txid;
            si.created_ms = g->created_ms;
        }
        d->seq = g->seq;
        d->state = (int)g->state;
        d->epoch = g->epoch;
        d->records = si.records;
        d->entries = si.next_entry;
        d->bytes = si.bytes;
        d->first_txid = si.first_txid;
        d->last_txid = si.last_txid;
        d->created_ms = g->created_ms;
        d->sealed_ms = g->sealed_ms;
        d->first = (struct dlog_dlsn){g->seq, 0, 0};
        d->last = (struct dlog_dlsn){g->seq, si.last_rec_entry, si.last_rec_slot};
        info->records += si.records;
        info->bytes += si.bytes;
        if (si.last_txid > info->last_txid)
            info->last_txid = si.last_txid;
        if (si.records > 0) {
            if (!have_first) {
                info->first = d->first;
                if (dlog_dlsn_cmp(info->first, ms.trunc) < 0)
                    info->first = ms.trunc;
                have_first = 1;
            }
            info->last = d->last;
        }
    }
    meta_stream_clear(&ms);
    *out = info;
    return 0;
}
