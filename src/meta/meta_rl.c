/*
 * Encodings of the rate-limit records: see meta_rl.h.
 */
#include "meta/meta_rl.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/crc32c.h"

#define FMT_LIMITS 1
#define FMT_REPORT 2
#define FMT_GRANT  3

static int put_all(struct bytes *b, const uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rv = bytes_put_uvarint(b, v[i]);
        if (rv != 0)
            return rv;
    }
    return 0;
}

static int get_all(struct cursor *c, uint64_t *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (cursor_get_uvarint(c, &v[i]) != 0)
            return DLOG_ECORRUPT;
    return 0;
}

static int put_str(struct bytes *b, const char *s)
{
    size_t n = strlen(s);
    int rv = bytes_put_uvarint(b, n);
    return rv != 0 ? rv : bytes_append(b, s, n);
}

/* A string of at most max bytes without NUL into dst (max + 1 bytes). */
static int get_str(struct cursor *c, char *dst, size_t max)
{
    uint64_t n;
    const uint8_t *p;

    if (cursor_get_uvarint(c, &n) != 0 || n > max || cursor_get_bytes(c, n, &p) != 0 ||
        memchr(p, '\0', n) != NULL)
        return DLOG_ECORRUPT;
    memcpy(dst, p, n);
    dst[n] = '\0';
    return 0;
}

/* Starts a record: its format byte. */
static size_t begin(struct bytes *out, uint8_t fmt, int *rv)
{
    size_t start = out->len;
    *rv = bytes_put_u8(out, fmt);
    return start;
}

/* Ends a record started at start with its CRC; undoes it on failure. */
static int finish(struct bytes *out, size_t start, int rv)
{
    if (rv == 0)
        rv = bytes_put_u32be(out, crc32c(out->p + start, out->len - start));
    if (rv != 0)
        out->len = start;
    return rv;
}

/* Checks the CRC and the format byte; c gets the body. */
static int open_rec(const void *p, size_t len, uint8_t fmt, struct cursor *c)
{
    const uint8_t *b = p;

    if (len < 5 || b[0] != fmt || crc32c(b, len - 4) != get_u32be(b + len - 4))
        return DLOG_ECORRUPT;
    c->p = b + 1;
    c->len = len - 5;
    return 0;
}

int meta_limits_encode(const struct dlog_limits *l, struct bytes *out)
{
    const uint64_t f[] = {
        l->records_per_sec,    l->bytes_per_sec, l->soft_records_per_sec,
        l->soft_bytes_per_sec, l->burst_ms,      l->max_wait_ms,
        l->quota_bytes,        l->quota_policy};
    int rv;
    size_t start = begin(out, FMT_LIMITS, &rv);

    if (rv == 0)
        rv = put_all(out, f, sizeof f / sizeof f[0]);
    return finish(out, start, rv);
}

int meta_limits_decode(const void *p, size_t len, struct dlog_limits *l)
{
    struct cursor c;
    uint64_t f[8];

    if (open_rec(p, len, FMT_LIMITS, &c) != 0 || get_all(&c, f, 8) != 0 || c.len != 0 ||
        f[7] > UINT32_MAX)
        return DLOG_ECORRUPT;
    memset(l, 0, sizeof *l);
    l->version = DLOG_LIMITS_VERSION;
    l->records_per_sec = f[0];
    l->bytes_per_sec = f[1];
    l->soft_records_per_sec = f[2];
    l->soft_bytes_per_sec = f[3];
    l->burst_ms = f[4];
    l->max_wait_ms = f[5];
    l->quota_bytes = f[6];
    l->quota_policy = (uint32_t)f[7];
    return 0;
}

#define REPORT_FIELDS 10

int rl_report_encode(const struct rl_report *r, struct bytes *out)
{
    int rv;
    size_t start = begin(out, FMT_REPORT, &rv);

    if (rv == 0)
        rv = put_str(out, r->proxy);
    if (rv == 0) {
        const uint64_t h[] = {r->seq, r->wall_ms, r->n};
        rv = put_all(out, h, 3);
    }
    for (size_t i = 0; rv == 0 && i < r->n; i++) {
        const struct rl_report_item *it = &r->items[i];
        const uint64_t f[REPORT_FIELDS] = {
            it->demand_records, it->demand_bytes,  it->rate_records, it->rate_bytes,
            it->share_records,  it->share_bytes,   it->admitted,     it->rejected,
            it->delayed,        it->soft_exceeded,
        };
        rv = put_str(out, it->key);
        if (rv == 0)
            rv = put_all(out, f, REPORT_FIELDS);
    }
    return finish(out, start, rv);
}

void rl_report_clear(struct rl_report *r)
{
    free(r->items);
    r->items = NULL;
    r->n = 0;
}

int rl_report_decode(const void *p, size_t len, struct rl_report *r)
{
    struct cursor c;
    uint64_t h[3];

    memset(r, 0, sizeof *r);
    if (open_rec(p, len, FMT_REPORT, &c) != 0 ||
        get_str(&c, r->proxy, RL_PROXY_ID_MAX) != 0 || get_all(&c, h, 3) != 0 ||
        h[2] > RL_MAX_ITEMS)
        return DLOG_ECORRUPT;
    r->seq = h[0];
    r->wall_ms = h[1];
    if (h[2] > 0 && (r->items = calloc(h[2], sizeof *r->items)) == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < h[2]; i++) {
        struct rl_report_item *it = &r->items[i];
        uint64_t f[REPORT_FIELDS];

        if (get_str(&c, it->key, DLOG_STREAM_NAME_MAX) != 0 ||
            get_all(&c, f, REPORT_FIELDS) != 0)
            goto bad;
        it->demand_records = f[0];
        it->demand_bytes = f[1];
        it->rate_records = f[2];
        it->rate_bytes = f[3];
        it->share_records = f[4];
        it->share_bytes = f[5];
        it->admitted = f[6];
        it->rejected = f[7];
        it->delayed = f[8];
        it->soft_exceeded = f[9];
    }
    r->n = h[2];
    if (c.len == 0)
        return 0;
bad:
    rl_report_clear(r);
    return DLOG_ECORRUPT;
}

int rl_grant_encode(const struct rl_grant *g, struct bytes *out)
{
    int rv;
    size_t start = begin(out, FMT_GRANT, &rv);

    if (rv == 0) {
        const uint64_t h[] = {g->seq, g->lease_ms, g->nproxies, g->n};
        rv = put_all(out, h, 4);
    }
    for (size_t i = 0; rv == 0 && i < g->n; i++) {
        const uint64_t f[] = {g->items[i].share_records, g->items[i].share_bytes};
        rv = put_str(out, g->items[i].key);
        if (rv == 0)
            rv = put_all(out, f, 2);
    }
    return finish(out, start, rv);
}

void rl_grant_clear(struct rl_grant *g)
{
    free(g->items);
    g->items = NULL;
    g->n = 0;
}

int rl_grant_decode(const void *p, size_t len, struct rl_grant *g)
{
    struct cursor c;
    uint64_t h[4];

    memset(g, 0, sizeof *g);
    if (open_rec(p, len, FMT_GRANT, &c) != 0 || get_all(&c, h, 4) != 0 ||
        h[2] > UINT32_MAX || h[3] > RL_MAX_ITEMS)
        return DLOG_ECORRUPT;
    g->seq = h[0];
    g->lease_ms = h[1];
    g->nproxies = (uint32_t)h[2];
    if (h[3] > 0 && (g->items = calloc(h[3], sizeof *g->items)) == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < h[3]; i++) {
        uint64_t f[2];

        if (get_str(&c, g->items[i].key, DLOG_STREAM_NAME_MAX) != 0 ||
            get_all(&c, f, 2) != 0)
            goto bad;
        g->items[i].share_records = f[0];
        g->items[i].share_bytes = f[1];
    }
    g->n = h[3];
    if (c.len == 0)
        return 0;
bad:
    rl_grant_clear(g);
    return DLOG_ECORRUPT;
}

const struct rl_grant_item *rl_grant_find(const struct rl_grant *g, const char *key)
{
    for (size_t i = 0; i < g->n; i++)
        if (strcmp(g->items[i].key, key) == 0)
            return &g->items[i];
    return NULL;
}
