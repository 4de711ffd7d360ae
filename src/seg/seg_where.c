/*
 * seg_where.h: open addressing with linear probing; removal shifts the
 * following entries of the run back (no tombstones), so lookups stay short
 * however many segments come and go.
 */
#include "seg/seg_where.h"

#include <stdlib.h>

#include <dlog/err.h>

struct seg_where_slot {
    uint64_t stream;
    uint64_t seq;
    uint32_t token; /* 0: free */
};

#define MIN_CAP 64

static size_t hash(uint64_t stream, uint64_t seq, size_t cap)
{
    uint64_t h = stream * 0x9E3779B97F4A7C15ull ^ (seq + 0x632BE59BD9B4E019ull);

    h ^= h >> 29;
    h *= 0xBF58476D1CE4E5B9ull;
    h ^= h >> 32;
    return (size_t)h & (cap - 1);
}

/* The slot of (stream, seq), or the free slot where it would go. */
static size_t find(const struct seg_where *w, uint64_t stream, uint64_t seq)
{
    size_t i = hash(stream, seq, w->cap);

    while (w->slots[i].token != 0 &&
           (w->slots[i].stream != stream || w->slots[i].seq != seq))
        i = (i + 1) & (w->cap - 1);
    return i;
}

static int grow(struct seg_where *w)
{
    size_t cap = w->cap ? w->cap * 2 : MIN_CAP;
    struct seg_where old = *w;

    w->slots = calloc(cap, sizeof *w->slots);
    if (w->slots == NULL) {
        *w = old;
        return DLOG_ENOMEM;
    }
    w->cap = cap;
    for (size_t i = 0; i < old.cap; i++)
        if (old.slots[i].token != 0)
            w->slots[find(w, old.slots[i].stream, old.slots[i].seq)] = old.slots[i];
    free(old.slots);
    return 0;
}

static void del(struct seg_where *w, size_t i)
{
    size_t j = i;

    w->slots[i].token = 0;
    w->n--;
    for (;;) {
        size_t home;
        j = (j + 1) & (w->cap - 1);
        if (w->slots[j].token == 0)
            return;
        home = hash(w->slots[j].stream, w->slots[j].seq, w->cap);
        /* Leave j alone when its home lies cyclically in (i, j]. */
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        w->slots[i] = w->slots[j];
        w->slots[j].token = 0;
        i = j;
    }
}

int seg_where_put(struct seg_where *w, uint64_t stream, uint64_t seq, uint32_t token)
{
    size_t i;

    if (token == 0) {
        if (w->cap > 0) {
            i = find(w, stream, seq);
            if (w->slots[i].token != 0)
                del(w, i);
        }
        return 0;
    }
    if ((w->n + 1) * 4 > w->cap * 3 && grow(w) != 0)
        return DLOG_ENOMEM;
    i = find(w, stream, seq);
    if (w->slots[i].token == 0)
        w->n++;
    w->slots[i] = (struct seg_where_slot){stream, seq, token};
    return 0;
}

uint32_t seg_where_get(const struct seg_where *w, uint64_t stream, uint64_t seq)
{
    if (w->cap == 0)
        return 0;
    return w->slots[find(w, stream, seq)].token;
}

void seg_where_free(struct seg_where *w)
{
    free(w->slots);
    w->slots = NULL;
    w->cap = w->n = 0;
}
