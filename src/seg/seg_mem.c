/*
 * The in-memory segment store ("mem:"), for tests and the embedded mem
 * backend. Semantics as in seg.h, shared with seg_lmdb.c.
 *
 * Segments live in an array sorted by (stream, seq); each holds its state
 * (struct seg_info) and a growable array of its entries, every one a private
 * copy (struct rbuf) of the bytes given to append. One mutex guards it all;
 * read holds it while visiting, so a visit callback must only copy the
 * bytes out and never call back into the store. The doorbell is private to
 * the process and is rung, outside the mutex, after every append, seal and
 * remove.
 */
#include "seg/seg.h"

#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/doorbell.h"
#include "seg/entry.h"

struct segment {
    uint64_t stream;
    uint64_t seq;
    struct seg_info info;
    struct rbuf **ents; /* info.next_entry of them */
    size_t cap;
};

struct mem {
    struct dlog_seg_ops ops; /* first: ops->impl points back here */
    pthread_mutex_t mu;
    struct segment **v; /* sorted by (stream, seq) */
    size_t n, cap;
    struct doorbell bell;
};

static int key_cmp(const struct segment *g, uint64_t stream, uint64_t seq)
{
    if (g->stream != stream)
        return g->stream < stream ? -1 : 1;
    if (g->seq != seq)
        return g->seq < seq ? -1 : 1;
    return 0;
}

/* Index of (stream, seq), or of where it would go; *found says which. */
static size_t search(struct mem *mm, uint64_t stream, uint64_t seq, int *found)
{
    size_t lo = 0, hi = mm->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = key_cmp(mm->v[mid], stream, seq);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static struct segment *find(struct mem *mm, uint64_t stream, uint64_t seq)
{
    int found;
    size_t i = search(mm, stream, seq, &found);
    return found ? mm->v[i] : NULL;
}

static void free_segment(struct segment *g)
{
    for (uint64_t i = 0; i < g->info.next_entry; i++)
        rbuf_unref(g->ents[i]);
    free(g->ents);
    free(g);
}

/* Sets the errmsg (mutex held) and returns code. */
static int fail(struct mem *mm, int code, const char *what, uint64_t stream, uint64_t seq)
{
    return errmsg_fail(mm->ops.errmsg, code, "%s segment %llu/%llu", what,
                       (unsigned long long)stream, (unsigned long long)seq);
}

static int mem_open(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                    uint64_t start_txid)
{
    struct mem *mm = s->impl;
    struct segment *g;
    size_t i;
    int found, rv = 0;

    pthread_mutex_lock(&mm->mu);
    i = search(mm, stream, seq, &found);
    if (found)
        goto out;
    if (mm->n == mm->cap) {
        size_t cap = mm->cap == 0 ? 16 : mm->cap * 2;
        struct segment **v = realloc(mm->v, cap * sizeof *v);
        if (v == NULL) {
            rv = fail(mm, DLOG_ENOMEM, "open", stream, seq);
            goto out;
        }
        mm->v = v;
        mm->cap = cap;
    }
    g = calloc(1, sizeof *g);
    if (g == NULL) {
        rv = fail(mm, DLOG_ENOMEM, "open", stream, seq);
        goto out;
    }
    g->stream = stream;
    g->seq = seq;
    g->info.fence_epoch = epoch;
    g->info.last_txid = start_txid;
    g->info.created_ms = clock_wall_ms();
    memmove(&mm->v[i + 1], &mm->v[i], (mm->n - i) * sizeof mm->v[0]);
    mm->v[i] = g;
    mm->n++;
out:
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

/*
 * All or nothing: every entry is checked and copied (and, with
 * SEG_APPEND_AUTO_TXID, renumbered) into `copies` before the segment
 * changes, so a failure leaves it as it was.
 *
 * Txids (DESIGN.md, invariant 2): "txids are non-decreasing (a smaller txid
 * is refused with a clear error)". An entry may start at the segment's
 * last txid (the continuation of a fragmented record carries the same
 * txid) but not below it.
 */
static int mem_append(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                      struct seg_append *a)
{
    struct mem *mm = s->impl;
    struct segment *g;
    struct rbuf **copies = NULL;
    uint64_t last, records = 0, bytes = 0, first_txid = 0;
    int n = 0, rv;

    pthread_mutex_lock(&mm->mu);
    g = find(mm, stream, seq);
    if (g == NULL) {
        rv = fail(mm, DLOG_ENOTFOUND, "append to", stream, seq);
        goto out;
    }
    if (g->info.sealed) {
        rv = fail(mm, DLOG_ESEALED, "append to", stream, seq);
        goto out;
    }
    if (a->epoch < g->info.fence_epoch) {
        rv = errmsg_fail(s->errmsg, DLOG_EFENCED,
                         "append to segment %llu/%llu at epoch %llu, fenced at %llu",
                         (unsigned long long)stream, (unsigned long long)seq,
                         (unsigned long long)a->epoch,
                         (unsigned long long)g->info.fence_epoch);
        goto out;
    }
    if (a->n <= 0 || a->entries == NULL) {
        rv = fail(mm, DLOG_EINVAL, "append (no entries) to", stream, seq);
        goto out;
    }
    /* Make room first: growing the array changes nothing visible. */
    if (g->info.next_entry + (uint64_t)a->n > g->cap) {
        size_t cap = g->cap == 0 ? 64 : g->cap;
        while (cap < g->info.next_entry + (uint64_t)a->n)
            cap *= 2;
        struct rbuf **e = realloc(g->ents, cap * sizeof *e);
        if (e == NULL) {
            rv = fail(mm, DLOG_ENOMEM, "append to", stream, seq);
            goto out;
        }
        g->ents = e;
        g->cap = cap;
    }
    copies = malloc((size_t)a->n * sizeof *copies);
    if (copies == NULL) {
        rv = fail(mm, DLOG_ENOMEM, "append to", stream, seq);
        goto out;
    }

    last = g->info.last_txid;
    uint64_t lre = 0;
    uint32_t lrs = 0;
    int have_lr = 0;
    for (n = 0; n < a->n; n++) {
        const struct iovec *iov = &a->entries[n];
        struct entry_hdr h;
        uint64_t base, span;

        if (iov->iov_base == NULL ||
            entry_parse_hdr(iov->iov_base, iov->iov_len, &h) != 0) {
            rv = errmsg_fail(s->errmsg, DLOG_ECORRUPT,
                             "append to segment %llu/%llu: entry %d is malformed",
                             (unsigned long long)stream, (unsigned long long)seq, n);
            goto out;
        }
        copies[n] = rbuf_copy(iov->iov_base, iov->iov_len);
        if (copies[n] == NULL) {
            rv = fail(mm, DLOG_ENOMEM, "append to", stream, seq);
            goto out;
        }
        span = h.last_txid - h.base_txid;
        if (a->flags & SEG_APPEND_AUTO_TXID) {
            /* A continuation fragment carries its record's txid. */
            base = (h.flags & ENTRY_F_CONT) ? last : last + 1;
            if (base < last || span > UINT64_MAX - base) {
                rv = errmsg_fail(s->errmsg, DLOG_ETXID,
                                 "append to segment %llu/%llu: txids overflow",
                                 (unsigned long long)stream, (unsigned long long)seq);
                n++; /* copies[n] is ours to free */
                goto out;
            }
            entry_set_base_txid(copies[n]->data, copies[n]->len, base);
        } else if (h.base_txid < last) {
            rv = errmsg_fail(s->errmsg, DLOG_ETXID,
                             "append to segment %llu/%llu: entry %d starts at txid "
                             "%llu, below the last txid %llu",
                             (unsigned long long)stream, (unsigned long long)seq, n,
                             (unsigned long long)h.base_txid, (unsigned long long)last);
            n++;
            goto out;
        } else {
            base = h.base_txid;
        }
        if (n == 0)
            first_txid = base;
        if (!(h.flags & ENTRY_F_CONT)) {
            lre = g->info.next_entry + (uint64_t)n;
            lrs = h.count - 1;
            have_lr = 1;
        }
        last = base + span > last ? base + span : last;
        records += (h.flags & ENTRY_F_CONT) ? 0 : h.count; /* a large record once */
        bytes += iov->iov_len;
    }

    /* Commit. */
    a->first_entry = g->info.next_entry;
    a->first_txid = first_txid;
    memcpy(&g->ents[g->info.next_entry], copies, (size_t)a->n * sizeof *copies);
    if (g->info.records == 0)
        g->info.first_txid = first_txid;
    g->info.next_entry += (uint64_t)a->n;
    g->info.records += records;
    g->info.bytes += bytes;
    g->info.last_txid = last;
    if (have_lr) {
        g->info.last_rec_entry = lre;
        g->info.last_rec_slot = lrs;
    }
    a->info = g->info;
    n = 0; /* the copies now belong to the segment */
    rv = 0;
out:
    for (int i = 0; i < n; i++)
        rbuf_unref(copies[i]);
    free(copies);
    pthread_mutex_unlock(&mm->mu);
    if (rv == 0)
        doorbell_ring(&mm->bell);
    return rv;
}

static int mem_read(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t from,
                    size_t max_bytes, seg_visit_fn visit, void *arg)
{
    struct mem *mm = s->impl;
    struct segment *g;
    size_t total = 0;
    int count = 0;

    pthread_mutex_lock(&mm->mu);
    g = find(mm, stream, seq);
    if (g == NULL) {
        count = fail(mm, DLOG_ENOTFOUND, "read", stream, seq);
        goto out;
    }
    for (uint64_t id = from; id < g->info.next_entry && count < INT_MAX; id++) {
        const struct rbuf *e = g->ents[id];

        if (count > 0 && total >= max_bytes)
            break;
        count++;
        total += e->len;
        if (visit(arg, id, e->data, e->len) != 0)
            break;
    }
out:
    pthread_mutex_unlock(&mm->mu);
    return count;
}

static int mem_info(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                    struct seg_info *out)
{
    struct mem *mm = s->impl;
    struct segment *g;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    g = find(mm, stream, seq);
    if (g == NULL)
        rv = fail(mm, DLOG_ENOTFOUND, "info of", stream, seq);
    else
        *out = g->info;
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_fence(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                     uint64_t epoch)
{
    struct mem *mm = s->impl;
    struct segment *g;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    g = find(mm, stream, seq);
    if (g == NULL)
        rv = fail(mm, DLOG_ENOTFOUND, "fence", stream, seq);
    else if (epoch > g->info.fence_epoch)
        g->info.fence_epoch = epoch;
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_seal(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                    struct seg_info *out)
{
    struct mem *mm = s->impl;
    struct segment *g;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    g = find(mm, stream, seq);
    if (g == NULL) {
        rv = fail(mm, DLOG_ENOTFOUND, "seal", stream, seq);
    } else if (epoch < g->info.fence_epoch) {
        rv = errmsg_fail(s->errmsg, DLOG_EFENCED,
                         "seal segment %llu/%llu at epoch %llu, fenced at %llu",
                         (unsigned long long)stream, (unsigned long long)seq,
                         (unsigned long long)epoch,
                         (unsigned long long)g->info.fence_epoch);
    } else {
        g->info.sealed = 1;
        if (out != NULL)
            *out = g->info;
    }
    pthread_mutex_unlock(&mm->mu);
    if (rv == 0)
        doorbell_ring(&mm->bell);
    return rv;
}

static int mem_remove(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq)
{
    struct mem *mm = s->impl;
    struct segment *g = NULL;
    size_t i;
    int found;

    pthread_mutex_lock(&mm->mu);
    i = search(mm, stream, seq, &found);
    if (found) {
        g = mm->v[i];
        memmove(&mm->v[i], &mm->v[i + 1], (mm->n - i - 1) * sizeof mm->v[0]);
        mm->n--;
    }
    pthread_mutex_unlock(&mm->mu);
    if (g != NULL)
        free_segment(g);
    doorbell_ring(&mm->bell);
    return 0;
}

static uint32_t mem_notify_seq(struct dlog_seg_ops *s)
{
    struct mem *mm = s->impl;
    return doorbell_read(&mm->bell);
}

static int mem_notify_wait(struct dlog_seg_ops *s, uint32_t seen, int timeout_ms)
{
    struct mem *mm = s->impl;
    return doorbell_wait(&mm->bell, seen, timeout_ms);
}

static void mem_close(struct dlog_seg_ops *s)
{
    struct mem *mm;

    if (s == NULL)
        return;
    mm = s->impl;
    for (size_t i = 0; i < mm->n; i++)
        free_segment(mm->v[i]);
    free(mm->v);
    pthread_mutex_destroy(&mm->mu);
    free(mm);
}

int seg_mem_open(struct dlog_seg_ops **out)
{
    struct mem *mm = calloc(1, sizeof *mm);

    *out = NULL;
    if (mm == NULL)
        return DLOG_ENOMEM;
    if (pthread_mutex_init(&mm->mu, NULL) != 0) {
        free(mm);
        return DLOG_ENOMEM;
    }
    doorbell_init(&mm->bell); /* after calloc: the word points into mm */
    mm->ops.version = SEG_OPS_VERSION;
    mm->ops.impl = mm;
    mm->ops.open = mem_open;
    mm->ops.append = mem_append;
    mm->ops.read = mem_read;
    mm->ops.info = mem_info;
    mm->ops.fence = mem_fence;
    mm->ops.seal = mem_seal;
    mm->ops.remove = mem_remove;
    mm->ops.notify_seq = mem_notify_seq;
    mm->ops.notify_wait = mem_notify_wait;
    mm->ops.close = mem_close;
    *out = &mm->ops;
    return 0;
}
