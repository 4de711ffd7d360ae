/*
 * The rate-limit coordinator: see coord.h.
 */
#include "proxy/coord.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "core/embedded.h"
#include "meta/meta_rl.h"
#include "proxy/maxmin.h"

#define MAX_PROXIES 1024

/* A proxy as the coordinator last saw it. */
struct seen {
    char id[RL_PROXY_ID_MAX + 1];
    uint64_t seq;     /* its report's sequence number */
    uint64_t seen_ns; /* when that number last moved, on our clock */
};

struct coord {
    char self[RL_PROXY_ID_MAX + 1];
    uint64_t lease_ms;
    int leader;
    uint64_t lease_version; /* of rl/coordinator as last seen */
    uint64_t lease_seen_ns; /* when that version last moved */
    uint64_t grant_seq;
    struct seen *seen;
    size_t nseen;
};

int coord_new(const char *self, uint64_t lease_ms, struct coord **out)
{
    struct coord *c = calloc(1, sizeof *c);

    *out = NULL;
    if (c == NULL)
        return DLOG_ENOMEM;
    snprintf(c->self, sizeof c->self, "%s", self);
    c->lease_ms = lease_ms;
    *out = c;
    return 0;
}

void coord_free(struct coord *c)
{
    if (c != NULL)
        free(c->seen);
    free(c);
}

int coord_is_leader(const struct coord *c)
{
    return c->leader;
}

/*
 * The lease on rl/coordinator: its value is the holder's id, and the holder
 * rewrites it every round, so its version moves. Another proxy takes it
 * over (compare-and-set on the version it saw) once the version has stood
 * still for a whole lease on its clock.
 */
static int hold_lease(struct coord *c, struct dlog_meta_ops *m)
{
    struct bytes v;
    uint64_t ver = 0, now = clock_now_ns();
    int rv, mine;

    bytes_init(&v);
    rv = m->kv_get(m, RL_KEY_COORD, &v, &ver);
    mine = rv == 0 && v.len == strlen(c->self) && memcmp(v.p, c->self, v.len) == 0;
    bytes_free(&v);
    if (rv == DLOG_ENOTFOUND) {
        ver = META_KV_CREATE;
    } else if (rv != 0) {
        return c->leader = 0;
    } else if (!mine) {
        if (ver != c->lease_version) {
            c->lease_version = ver;
            c->lease_seen_ns = now;
            return c->leader = 0;
        }
        if (now - c->lease_seen_ns < c->lease_ms * NS_PER_MS)
            return c->leader = 0;
        log_info("limiter", "%s: the coordinator stopped renewing; taking over", c->self);
    }
    rv = m->kv_put(m, RL_KEY_COORD, c->self, strlen(c->self), &ver);
    if (rv == 0) {
        if (!c->leader)
            log_info("limiter", "%s: coordinating the rate limits", c->self);
        c->lease_version = ver;
        c->lease_seen_ns = now;
    }
    return c->leader = rv == 0;
}

static struct seen *seen_of(struct coord *c, const char *id)
{
    for (size_t i = 0; i < c->nseen; i++)
        if (strcmp(c->seen[i].id, id) == 0)
            return &c->seen[i];
    if (c->nseen >= MAX_PROXIES)
        return NULL;
    struct seen *v = realloc(c->seen, (c->nseen + 1) * sizeof *v);
    if (v == NULL)
        return NULL;
    c->seen = v;
    struct seen *s = &c->seen[c->nseen++];
    memset(s, 0, sizeof *s);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->seen_ns = clock_now_ns();
    return s;
}

/* Removes a dead proxy's report and grant, and forgets it. */
static void bury(struct coord *c, struct dlog_meta_ops *m, struct seen *s,
                 uint64_t version)
{
    char key[RL_PROXY_ID_MAX + 16];

    log_info("limiter", "proxy %s stopped reporting; its shares go to the others", s->id);
    snprintf(key, sizeof key, RL_PREFIX_REPORT "%s", s->id);
    m->kv_remove(m, key, version);
    snprintf(key, sizeof key, RL_PREFIX_GRANT "%s", s->id);
    m->kv_remove(m, key, META_KV_ANY);
    *s = c->seen[--c->nseen];
}

/* The live proxies' reports (decoded), burying the dead. */
static size_t live_reports(struct coord *c, struct dlog_meta_ops *m,
                           struct rl_report *out)
{
    struct meta_kv *items;
    size_t n = 0, live = 0;
    uint64_t now = clock_now_ns();

    if (m->kv_list(m, RL_PREFIX_REPORT, &items, &n) != 0)
        return 0;
    for (size_t i = 0; i < n && live < MAX_PROXIES; i++) {
        struct rl_report *r = &out[live];
        struct seen *s;

        if (rl_report_decode(items[i].value.p, items[i].value.len, r) != 0)
            continue;
        s = seen_of(c, r->proxy);
        if (s == NULL) {
            rl_report_clear(r);
            continue;
        }
        if (r->seq != s->seq) {
            s->seq = r->seq;
            s->seen_ns = now;
        }
        if (now - s->seen_ns >= c->lease_ms * NS_PER_MS) {
            if (c->leader)
                bury(c, m, s, items[i].version);
            rl_report_clear(r);
            continue;
        }
        live++;
    }
    meta_kv_list_free(items, n);
    return live;
}

/* Divides one limit's levels among the proxies that report it. */
static void divide(struct dlog_ns *ns, const char *key, struct rl_report *reps, size_t n,
                   struct rl_grant *grants)
{
    struct dlog_limits lim;
    uint64_t dr[MAX_PROXIES], db[MAX_PROXIES], sr[MAX_PROXIES], sb[MAX_PROXIES];
    size_t who[MAX_PROXIES], k = 0;
    char errmsg[DLOG_ERRMSG_SIZE];

    if (embedded_limits_load(ns, key[0] ? key : NULL, &lim, errmsg) != 0)
        return;
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < reps[i].n; j++) {
            if (strcmp(reps[i].items[j].key, key) == 0) {
                dr[k] = reps[i].items[j].demand_records;
                db[k] = reps[i].items[j].demand_bytes;
                who[k++] = i;
                break;
            }
        }
    }
    if (k == 0 || maxmin_allocate(lim.records_per_sec, dr, k, sr) != 0 ||
        maxmin_allocate(lim.bytes_per_sec, db, k, sb) != 0)
        return;
    for (size_t i = 0; i < k; i++) {
        struct rl_grant *g = &grants[who[i]];
        struct rl_grant_item *it = &g->items[g->n++];
        snprintf(it->key, sizeof it->key, "%s", key);
        it->share_records = sr[i];
        it->share_bytes = sb[i];
    }
}

static int key_done(struct rl_report *reps, size_t upto, size_t item, const char *key)
{
    for (size_t i = 0; i < upto; i++)
        for (size_t j = 0; j < reps[i].n; j++)
            if (strcmp(reps[i].items[j].key, key) == 0)
                return 1;
    for (size_t j = 0; j < item; j++)
        if (strcmp(reps[upto].items[j].key, key) == 0)
            return 1;
    return 0;
}

void coord_round(struct coord *c, struct dlog_ns *ns, struct dlog_meta_ops *m,
                 uint64_t interval_ms)
{
    struct rl_report *reps;
    struct rl_grant *grants;
    size_t n;

    (void)interval_ms;
    hold_lease(c, m);
    reps = calloc(MAX_PROXIES, sizeof *reps);
    grants = calloc(MAX_PROXIES, sizeof *grants);
    if (reps == NULL || grants == NULL)
        goto out;
    n = live_reports(c, m, reps);
    if (!c->leader)
        goto out;
    for (size_t i = 0; i < n; i++) {
        grants[i].items = calloc(reps[i].n + 1, sizeof *grants[i].items);
        if (grants[i].items == NULL)
            goto out;
    }
    /* Every limit some proxy reports, once. */
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < reps[i].n; j++)
            if (!key_done(reps, i, j, reps[i].items[j].key))
                divide(ns, reps[i].items[j].key, reps, n, grants);
    c->grant_seq++;
    for (size_t i = 0; i < n; i++) {
        char key[RL_PROXY_ID_MAX + 16];
        struct bytes b;
        uint64_t ver = META_KV_ANY;

        grants[i].seq = c->grant_seq;
        grants[i].lease_ms = c->lease_ms;
        grants[i].nproxies = (uint32_t)n;
        snprintf(key, sizeof key, RL_PREFIX_GRANT "%s", reps[i].proxy);
        bytes_init(&b);
        if (rl_grant_encode(&grants[i], &b) == 0 &&
            m->kv_put(m, key, b.p, b.len, &ver) != 0)
            log_warn("limiter", "grant for %s: %s", reps[i].proxy, m->errmsg);
        bytes_free(&b);
    }
out:
    for (size_t i = 0; reps != NULL && grants != NULL && i < MAX_PROXIES; i++) {
        rl_report_clear(&reps[i]);
        rl_grant_clear(&grants[i]);
    }
    free(reps);
    free(grants);
}
