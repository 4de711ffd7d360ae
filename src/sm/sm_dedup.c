/*
 * The proposal envelope, the exactly-once table and the pending proposals.
 *
 * Exactly-once follows the client sessions of the Raft dissertation
 * (Ongaro, 2014, §6.3): "each server's state machine [...] tracks the
 * latest serial number processed for the client, along with the
 * associated response. If a server receives a command whose serial number
 * has already been executed, it responds immediately without re-executing
 * the request." The table is decided at apply time, in log order, so every
 * replica holds the same table; it is part of every snapshot.
 */
#include <stdlib.h>
#include <string.h>

#include "sm/sm_internal.h"

/* ------------------------------------------------------------ envelope */

void env_encode(uint8_t *h, uint64_t origin, uint64_t nonce, uint64_t client_id,
                uint64_t seq)
{
    h[0] = ENV_MAGIC;
    h[1] = ENV_VERSION;
    put_u64be(h + 2, origin);
    put_u64be(h + 10, nonce);
    put_u64be(h + 18, client_id);
    put_u64be(h + 26, seq);
}

void env_decode(const struct dlog_record *rec, struct envelope *e)
{
    const uint8_t *p = rec->payload;
    memset(e, 0, sizeof *e);
    if (rec->len >= ENV_HDR && p[0] == ENV_MAGIC && p[1] == ENV_VERSION) {
        e->origin = get_u64be(p + 2);
        e->nonce = get_u64be(p + 10);
        e->client_id = get_u64be(p + 18);
        e->seq = get_u64be(p + 26);
        e->cmd = p + ENV_HDR;
        e->len = rec->len - ENV_HDR;
    } else {
        e->cmd = rec->payload;
        e->len = rec->len;
    }
}

/* ------------------------------------------------------------ dedup table */

void dedup_init(struct dedup *d)
{
    memset(d, 0, sizeof *d);
}

void dedup_free(struct dedup *d)
{
    for (size_t i = 0; i < d->cap; i++)
        free(d->t[i].res);
    free(d->t);
    dedup_init(d);
}

static size_t slot_of(uint64_t client, size_t cap)
{
    uint64_t h = client * 0x9E3779B97F4A7C15ULL;
    return (size_t)(h >> 17) & (cap - 1);
}

struct dedup_ent *dedup_find(struct dedup *d, uint64_t client)
{
    if (d->cap == 0 || client == 0)
        return NULL;
    for (size_t i = slot_of(client, d->cap);; i = (i + 1) & (d->cap - 1)) {
        if (d->t[i].client == client)
            return &d->t[i];
        if (d->t[i].client == 0)
            return NULL;
    }
}

static int grow(struct dedup *d)
{
    size_t cap = d->cap ? d->cap * 2 : 64;
    struct dedup_ent *t = calloc(cap, sizeof *t);
    if (t == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < d->cap; i++) {
        if (d->t[i].client == 0)
            continue;
        size_t j = slot_of(d->t[i].client, cap);
        while (t[j].client != 0)
            j = (j + 1) & (cap - 1);
        t[j] = d->t[i];
    }
    free(d->t);
    d->t = t;
    d->cap = cap;
    return 0;
}

int dedup_put(struct dedup *d, uint64_t client, uint64_t seq, struct dlog_dlsn dlsn,
              int known, const void *res, size_t len)
{
    if (len > UINT32_MAX)
        return DLOG_ETOOBIG;
    uint8_t *copy = NULL;
    if (len > 0) {
        copy = malloc(len);
        if (copy == NULL)
            return DLOG_ENOMEM;
        memcpy(copy, res, len);
    }
    struct dedup_ent *e = dedup_find(d, client);
    if (e == NULL) {
        if ((d->n + 1) * 10 > d->cap * 7 && grow(d) != 0) {
            free(copy);
            return DLOG_ENOMEM;
        }
        size_t i = slot_of(client, d->cap);
        while (d->t[i].client != 0)
            i = (i + 1) & (d->cap - 1);
        e = &d->t[i];
        e->client = client;
        d->n++;
    }
    free(e->res);
    e->seq = seq;
    e->dlsn = dlsn;
    e->known = (uint8_t)(known != 0);
    e->len = (uint32_t)len;
    e->res = copy;
    return 0;
}

/*
 * Section layout: u32 'DDUP', u64 count, then per client (ascending):
 * u64 client, u64 seq, u64 seg, u64 entry, u32 slot, u8 known, u32 len,
 * result bytes.
 */
#define DEDUP_MAGIC 0x44445550u
#define DEDUP_REC   41

static int by_client(const void *a, const void *b)
{
    const struct dedup_ent *x = *(const struct dedup_ent *const *)a;
    const struct dedup_ent *y = *(const struct dedup_ent *const *)b;
    return x->client < y->client ? -1 : x->client > y->client;
}

int dedup_save(struct dedup *d, struct dlog_snapshot_writer *w)
{
    uint8_t h[DEDUP_REC];
    struct dedup_ent **v = NULL;
    int rv = 0;
    if (d->n > 0 && (v = malloc(d->n * sizeof *v)) == NULL)
        return DLOG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < d->cap; i++)
        if (d->t[i].client != 0)
            v[k++] = &d->t[i];
    if (k > 0)
        qsort(v, k, sizeof *v, by_client);
    put_u32be(h, DEDUP_MAGIC);
    put_u64be(h + 4, k);
    rv = dlog_snapshot_write(w, h, 12);
    for (size_t i = 0; i < k && rv == 0; i++) {
        const struct dedup_ent *e = v[i];
        put_u64be(h, e->client);
        put_u64be(h + 8, e->seq);
        put_u64be(h + 16, e->dlsn.seg);
        put_u64be(h + 24, e->dlsn.entry);
        put_u32be(h + 32, e->dlsn.slot);
        h[36] = e->known;
        put_u32be(h + 37, e->len);
        rv = dlog_snapshot_write(w, h, DEDUP_REC);
        if (rv == 0 && e->len > 0)
            rv = dlog_snapshot_write(w, e->res, e->len);
    }
    free(v);
    return rv;
}

int dedup_load(struct dedup *d, struct dlog_snapshot_reader *r)
{
    uint8_t h[DEDUP_REC];
    struct dedup n;
    int rv = dlog_snapshot_read_full(r, h, 12);
    if (rv != 0)
        return rv == DLOG_EEOF ? DLOG_ECORRUPT : rv;
    if (get_u32be(h) != DEDUP_MAGIC)
        return DLOG_ECORRUPT;
    uint64_t count = get_u64be(h + 4);
    dedup_init(&n);
    uint8_t *res = NULL;
    for (uint64_t i = 0; i < count && rv == 0; i++) {
        rv = dlog_snapshot_read_full(r, h, DEDUP_REC);
        if (rv != 0)
            break;
        uint64_t client = get_u64be(h);
        uint32_t len = get_u32be(h + 37);
        struct dlog_dlsn dl = {get_u64be(h + 16), get_u64be(h + 24), get_u32be(h + 32)};
        if (client == 0 || len > DLOG_RECORD_MAX_LIMIT) {
            rv = DLOG_ECORRUPT;
            break;
        }
        free(res);
        res = len > 0 ? malloc(len) : NULL;
        if (len > 0 && res == NULL) {
            rv = DLOG_ENOMEM;
            break;
        }
        if (len > 0 && (rv = dlog_snapshot_read_full(r, res, len)) != 0)
            break;
        rv = dedup_put(&n, client, get_u64be(h + 8), dl, h[36], res, len);
    }
    free(res);
    if (rv != 0) {
        dedup_free(&n);
        return rv == DLOG_EEOF ? DLOG_ECORRUPT : rv;
    }
    dedup_free(d);
    *d = n;
    return 0;
}

/* ------------------------------------------------------------ pending proposals */

/* priv_[0] holds a pending request's nonce. */
#define REQ_NONCE(req) ((req)->priv_[0])

void pend_insert(struct dlog_sm *sm, struct dlog_propose_req *req, uint64_t nonce)
{
    struct dlog_propose_req **b = &sm->pend[nonce % PEND_BUCKETS];
    REQ_NONCE(req) = nonce;
    req->next_ = *b;
    *b = req;
    sm->npending++;
}

struct dlog_propose_req *pend_remove(struct dlog_sm *sm, uint64_t nonce)
{
    for (struct dlog_propose_req **pp = &sm->pend[nonce % PEND_BUCKETS]; *pp;
         pp = &(*pp)->next_) {
        struct dlog_propose_req *req = *pp;
        if (REQ_NONCE(req) == nonce) {
            *pp = req->next_;
            req->next_ = NULL;
            sm->npending--;
            return req;
        }
    }
    return NULL;
}

struct dlog_propose_req *pend_take_all(struct dlog_sm *sm)
{
    struct dlog_propose_req *all = NULL;
    for (size_t i = 0; i < PEND_BUCKETS; i++) {
        while (sm->pend[i] != NULL) {
            struct dlog_propose_req *req = sm->pend[i];
            sm->pend[i] = req->next_;
            req->next_ = all;
            all = req;
        }
    }
    sm->npending = 0;
    return all;
}
