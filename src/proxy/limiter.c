/*
 * The proxy's rate limiter: see limiter.h.
 */
#include "proxy/limiter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errmsg.h"
#include "base/log.h"
#include "core/embedded.h"
#include "meta/meta_rl.h"
#include "proxy/coord.h"
#include "proxy/ratelimit.h"

#define NBUCKETS         1024
#define ACTIVE_NS        (60ULL * NS_PER_SEC) /* reported while written within this */
#define DEFAULT_INTERVAL 250
#define DEFAULT_LEASE    3000

/* One limit as this proxy runs it: a stream's, or the namespace's (key ""). */
struct lentry {
    char key[DLOG_STREAM_NAME_MAX + 1];
    struct dlog_limits conf; /* the global levels */
    int limited;             /* conf has a rate */
    struct rl_limit lim;     /* buckets at this proxy's share */
    uint64_t share_r, share_b;
    /* counters since start, and offered/admitted since the last report */
    uint64_t admitted, rejected, delayed, soft_exceeded;
    uint64_t off_r, off_b, adm_r, adm_b;
    uint64_t demand_r, demand_b, rate_r, rate_b; /* per second, last interval */
    uint64_t used_ns;                            /* last write */
    struct lentry *next;
};

struct limiter {
    struct dlog_ns *ns;
    struct dlog_meta_ops *meta;
    char id[RL_PROXY_ID_MAX + 1];
    uint64_t interval_ms, lease_ms;
    pthread_mutex_t mu;
    struct lentry *tab[NBUCKETS];
    struct lentry nsent; /* the namespace's limit */
    uint32_t nproxies;   /* live proxies as last seen (>= 1) */
    /* grant state (thread only, applied under mu) */
    struct rl_grant grant;
    uint64_t grant_version, grant_until_ns;
    uint64_t rev; /* metadata revision the limits were read at */
    uint64_t report_seq, last_report_ns;
    struct coord *coord;
    pthread_t thread;
    pthread_cond_t cv;
    int stop;
};

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (uint8_t)*s++) * 16777619u;
    return h % NBUCKETS;
}

static int has_rate(const struct dlog_limits *c)
{
    return c->records_per_sec > 0 || c->bytes_per_sec > 0;
}

/* The bucket size for a rate: burst_ms worth, at least one unit. */
static uint64_t burst_of(uint64_t rate, uint64_t burst_ms)
{
    unsigned __int128 b =
        (unsigned __int128)rate * (burst_ms ? burst_ms : DLOG_BURST_MS_DEFAULT);
    b /= 1000;
    return b == 0 ? 1 : b > UINT64_MAX ? UINT64_MAX : (uint64_t)b;
}

/* A soft level scaled like its hard level's share (or split N ways). */
static uint64_t soft_share(uint64_t soft, uint64_t hard, uint64_t share, uint32_t n)
{
    if (soft == 0)
        return 0;
    if (hard == 0)
        return soft / (n ? n : 1) ? soft / (n ? n : 1) : 1;
    unsigned __int128 s = (unsigned __int128)soft * share / hard;
    return s == 0 ? 1 : (uint64_t)s;
}

/* Sets e's buckets from its conf and shares. Under mu. */
static void apply_shares(struct lentry *e, uint64_t share_r, uint64_t share_b, uint32_t n,
                         int init)
{
    const struct dlog_limits *c = &e->conf;
    struct rl_limit_conf lc;

    e->share_r = c->records_per_sec ? (share_r ? share_r : 1) : 0;
    e->share_b = c->bytes_per_sec ? (share_b ? share_b : 1) : 0;
    memset(&lc, 0, sizeof lc);
    lc.hard_records_rate = e->share_r;
    lc.hard_records_burst = burst_of(e->share_r, c->burst_ms);
    lc.hard_bytes_rate = e->share_b;
    lc.hard_bytes_burst = burst_of(e->share_b, c->burst_ms);
    lc.soft_records_rate =
        soft_share(c->soft_records_per_sec, c->records_per_sec, e->share_r, n);
    lc.soft_records_burst = burst_of(lc.soft_records_rate, c->burst_ms);
    lc.soft_bytes_rate =
        soft_share(c->soft_bytes_per_sec, c->bytes_per_sec, e->share_b, n);
    lc.soft_bytes_burst = burst_of(lc.soft_bytes_rate, c->burst_ms);
    if (init) {
        uint64_t a = e->admitted, r = e->rejected, s = e->soft_exceeded;
        rl_limit_init(&e->lim, &lc);
        e->admitted = a, e->rejected = r, e->soft_exceeded = s;
    } else {
        rl_limit_set(&e->lim, &lc);
    }
}

/* The share of one level: granted while the lease holds, else level / N. */
static uint64_t share_of(const struct limiter *l, const struct rl_grant_item *g,
                         uint64_t level, int records, uint64_t now)
{
    if (level == 0)
        return 0;
    if (g != NULL && now < l->grant_until_ns)
        return records ? g->share_records : g->share_bytes;
    return level / l->nproxies ? level / l->nproxies : 1;
}

/* Recomputes e's shares from the current grant. Under mu. */
static void reshare(struct limiter *l, struct lentry *e, int init)
{
    uint64_t now = clock_now_ns();
    const struct rl_grant_item *g = rl_grant_find(&l->grant, e->key);

    apply_shares(e, share_of(l, g, e->conf.records_per_sec, 1, now),
                 share_of(l, g, e->conf.bytes_per_sec, 0, now), l->nproxies, init);
}

static void set_conf(struct limiter *l, struct lentry *e, const struct dlog_limits *c)
{
    int was = e->limited;

    e->conf = *c;
    e->limited = has_rate(c);
    reshare(l, e, !was);
}

/* Reads a limit's levels: the stream's, or the namespace's for key "". */
static int load_conf(struct limiter *l, const char *key, struct dlog_limits *c)
{
    char errmsg[DLOG_ERRMSG_SIZE];
    int rv = embedded_limits_load(l->ns, key[0] ? key : NULL, c, errmsg);

    if (rv == DLOG_ENOTFOUND) { /* deleted: no limit */
        dlog_limits_init(c);
        rv = 0;
    }
    return rv;
}

static struct lentry *find(struct limiter *l, const char *key)
{
    for (struct lentry *e = l->tab[hash(key)]; e != NULL; e = e->next)
        if (strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

/* The entry of stream, made (with its levels read) on first use. Called
 * and returns with mu held; drops it while it reads the levels. */
static struct lentry *entry(struct limiter *l, const char *stream)
{
    struct lentry *e = find(l, stream);
    struct dlog_limits c;

    if (e != NULL)
        return e;
    pthread_mutex_unlock(&l->mu);
    if (load_conf(l, stream, &c) != 0)
        dlog_limits_init(&c); /* unreadable now: unlimited until the next refresh */
    pthread_mutex_lock(&l->mu);
    e = find(l, stream);
    if (e == NULL && (e = calloc(1, sizeof *e)) != NULL) {
        uint32_t h = hash(stream);
        snprintf(e->key, sizeof e->key, "%s", stream);
        set_conf(l, e, &c);
        e->next = l->tab[h];
        l->tab[h] = e;
    }
    return e;
}

/* Nanoseconds until e's hard buckets hold this write (0: now). */
static uint64_t hard_wait(struct lentry *e, uint64_t records, uint64_t bytes,
                          uint64_t now)
{
    uint64_t a = rl_bucket_wait_ns_at(&e->lim.hard_records, records, now);
    uint64_t b = rl_bucket_wait_ns_at(&e->lim.hard_bytes, bytes, now);
    return a > b ? a : b;
}

static void take(struct lentry *e, uint64_t records, uint64_t bytes, uint64_t now)
{
    rl_bucket_force_at(&e->lim.hard_records, records, now);
    rl_bucket_force_at(&e->lim.hard_bytes, bytes, now);
    if (rl_bucket_take_at(&e->lim.soft_records, records, now) &&
        rl_bucket_take_at(&e->lim.soft_bytes, bytes, now))
        return;
    e->soft_exceeded++;
}

int limiter_admit(struct limiter *l, const char *stream, uint64_t records, uint64_t bytes,
                  int delay_ok, uint64_t *wait_ns, char *errmsg)
{
    struct lentry *s, *n = &l->nsent, *v[2];
    uint64_t w = 0, now;
    int k = 0, rv = LIM_ADMIT;

    *wait_ns = 0;
    pthread_mutex_lock(&l->mu);
    s = entry(l, stream);
    if (s != NULL && s->limited)
        v[k++] = s;
    if (n->limited)
        v[k++] = n;
    if (k == 0) {
        pthread_mutex_unlock(&l->mu);
        return LIM_ADMIT;
    }
    now = clock_now_ns();
    for (int i = 0; i < k; i++) {
        uint64_t x = hard_wait(v[i], records, bytes, now);
        v[i]->off_r += records;
        v[i]->off_b += bytes;
        v[i]->used_ns = now;
        w = x > w ? x : w;
    }
    if (w > 0) {
        uint64_t max = (s != NULL ? s->conf.max_wait_ms : 0) * NS_PER_MS;
        if (!delay_ok || w > max) {
            for (int i = 0; i < k; i++)
                v[i]->rejected++;
            errmsg_printf(
                errmsg,
                "rate limit: %llu records / %llu bytes over stream '%s''s share "
                "of its limit%s (retry in %llu ms)",
                (unsigned long long)records, (unsigned long long)bytes, stream,
                n->limited ? " or the namespace's" : "",
                (unsigned long long)((w + NS_PER_MS - 1) / NS_PER_MS));
            pthread_mutex_unlock(&l->mu);
            return LIM_REJECT;
        }
        rv = LIM_DELAY;
        *wait_ns = w;
    }
    for (int i = 0; i < k; i++) {
        take(v[i], records, bytes, now);
        v[i]->admitted++;
        v[i]->adm_r += records;
        v[i]->adm_b += bytes;
        if (rv == LIM_DELAY)
            v[i]->delayed++;
    }
    pthread_mutex_unlock(&l->mu);
    return rv;
}

/* ---------------------------------------------------------------- thread */

/* Re-reads every limit when the metadata revision moved. */
static void refresh_confs(struct limiter *l)
{
    uint64_t rev;

    if (l->meta->revision(l->meta, &rev) != 0 || rev == l->rev)
        return;
    l->rev = rev;
    struct dlog_limits c;
    if (load_conf(l, "", &c) == 0) {
        pthread_mutex_lock(&l->mu);
        set_conf(l, &l->nsent, &c);
        pthread_mutex_unlock(&l->mu);
    }
    for (int i = 0; i < NBUCKETS; i++) {
        for (struct lentry *e = l->tab[i]; e != NULL; e = e->next) {
            if (load_conf(l, e->key, &c) != 0)
                continue;
            pthread_mutex_lock(&l->mu);
            set_conf(l, e, &c);
            pthread_mutex_unlock(&l->mu);
        }
    }
}

static void item_of(const struct lentry *e, struct rl_report_item *it)
{
    snprintf(it->key, sizeof it->key, "%s", e->key);
    it->demand_records = e->demand_r;
    it->demand_bytes = e->demand_b;
    it->rate_records = e->rate_r;
    it->rate_bytes = e->rate_b;
    it->share_records = e->share_r;
    it->share_bytes = e->share_b;
    it->admitted = e->admitted;
    it->rejected = e->rejected;
    it->delayed = e->delayed;
    it->soft_exceeded = e->soft_exceeded;
}

/* Turns the interval's counts into rates (demand smoothed over ~2
 * intervals); 1 if e goes into the report. Under mu. */
static int roll_rates(struct lentry *e, uint64_t elapsed_ns, uint64_t now)
{
    if (!e->limited)
        return 0;
    if (elapsed_ns == 0)
        elapsed_ns = 1;
    uint64_t dr = (uint64_t)((unsigned __int128)e->off_r * NS_PER_SEC / elapsed_ns);
    uint64_t db = (uint64_t)((unsigned __int128)e->off_b * NS_PER_SEC / elapsed_ns);
    e->demand_r = (e->demand_r + dr) / 2 + ((e->demand_r + dr) & 1);
    e->demand_b = (e->demand_b + db) / 2 + ((e->demand_b + db) & 1);
    e->rate_r = (uint64_t)((unsigned __int128)e->adm_r * NS_PER_SEC / elapsed_ns);
    e->rate_b = (uint64_t)((unsigned __int128)e->adm_b * NS_PER_SEC / elapsed_ns);
    e->off_r = e->off_b = e->adm_r = e->adm_b = 0;
    return e->used_ns != 0 && now - e->used_ns < ACTIVE_NS;
}

static void report(struct limiter *l)
{
    struct rl_report r;
    struct bytes b;
    size_t cap = 16;
    uint64_t now = clock_now_ns(), elapsed = now - l->last_report_ns;
    char key[RL_PROXY_ID_MAX + sizeof RL_PREFIX_REPORT];

    memset(&r, 0, sizeof r);
    snprintf(r.proxy, sizeof r.proxy, "%s", l->id);
    r.seq = ++l->report_seq;
    r.wall_ms = clock_wall_ms();
    r.items = malloc(cap * sizeof *r.items);
    if (r.items == NULL)
        return;
    pthread_mutex_lock(&l->mu);
    l->last_report_ns = now;
    for (int i = -1; i < NBUCKETS; i++) {
        for (struct lentry *e = i < 0 ? &l->nsent : l->tab[i]; e != NULL;
             e = i < 0 ? NULL : e->next) {
            if (!roll_rates(e, elapsed, now) || r.n >= RL_MAX_ITEMS)
                continue;
            if (r.n == cap) {
                struct rl_report_item *v = realloc(r.items, 2 * cap * sizeof *v);
                if (v == NULL)
                    continue;
                r.items = v;
                cap *= 2;
            }
            item_of(e, &r.items[r.n++]);
        }
    }
    pthread_mutex_unlock(&l->mu);
    bytes_init(&b);
    snprintf(key, sizeof key, RL_PREFIX_REPORT "%s", l->id);
    uint64_t ver = META_KV_ANY;
    if (rl_report_encode(&r, &b) == 0 &&
        l->meta->kv_put(l->meta, key, b.p, b.len, &ver) != 0)
        log_warn("limiter", "report: %s", l->meta->errmsg);
    bytes_free(&b);
    rl_report_clear(&r);
}

/* Reads this proxy's grant (a new version renews the lease) and the number
 * of live proxies, then re-applies every share. */
static void read_grant(struct limiter *l)
{
    char key[RL_PROXY_ID_MAX + sizeof RL_PREFIX_GRANT];
    struct bytes v;
    struct meta_kv *items;
    size_t n = 0;
    uint64_t ver = 0;
    struct rl_grant g;
    int fresh = 0;

    memset(&g, 0, sizeof g);
    snprintf(key, sizeof key, RL_PREFIX_GRANT "%s", l->id);
    bytes_init(&v);
    if (l->meta->kv_get(l->meta, key, &v, &ver) == 0 && ver != l->grant_version &&
        rl_grant_decode(v.p, v.len, &g) == 0)
        fresh = 1;
    bytes_free(&v);
    int listed = l->meta->kv_list(l->meta, RL_PREFIX_REPORT, &items, &n) == 0;
    if (listed)
        meta_kv_list_free(items, n);
    pthread_mutex_lock(&l->mu);
    if (fresh) {
        rl_grant_clear(&l->grant);
        l->grant = g;
        l->grant_version = ver;
        l->grant_until_ns = clock_now_ns() + g.lease_ms * NS_PER_MS;
    }
    if (listed) /* unreadable: keep the last count, never fall to 1 */
        l->nproxies = n > 0 ? (uint32_t)n : 1;
    reshare(l, &l->nsent, 0);
    for (int i = 0; i < NBUCKETS; i++)
        for (struct lentry *e = l->tab[i]; e != NULL; e = e->next)
            if (e->limited)
                reshare(l, e, 0);
    pthread_mutex_unlock(&l->mu);
}

static void *limiter_main(void *arg)
{
    struct limiter *l = arg;

    pthread_mutex_lock(&l->mu);
    while (!l->stop) {
        struct timespec ts;
        clock_abs_timespec(clock_deadline_ms((int64_t)l->interval_ms), &ts);
        pthread_cond_timedwait(&l->cv, &l->mu, &ts);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        refresh_confs(l);
        report(l);
        coord_round(l->coord, l->ns, l->meta, l->interval_ms);
        read_grant(l);
        pthread_mutex_lock(&l->mu);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

int limiter_open(struct dlog_ns *ns, struct dlog_meta_ops *meta,
                 const struct limiter_options *o, struct limiter **out, char *errmsg)
{
    struct limiter *l;
    struct dlog_limits c;

    *out = NULL;
    if (meta == NULL || meta->version < 2)
        return errmsg_fail(errmsg, DLOG_ENOTSUP,
                           "rate limits need a metadata store with keys");
    if (o->proxy_id == NULL || o->proxy_id[0] == '\0' ||
        strlen(o->proxy_id) > RL_PROXY_ID_MAX)
        return errmsg_fail(errmsg, DLOG_EINVAL, "proxy id must be 1..%d bytes",
                           RL_PROXY_ID_MAX);
    l = calloc(1, sizeof *l);
    if (l == NULL)
        return DLOG_ENOMEM;
    l->ns = ns;
    l->meta = meta;
    snprintf(l->id, sizeof l->id, "%s", o->proxy_id);
    l->interval_ms = o->interval_ms ? o->interval_ms : DEFAULT_INTERVAL;
    l->lease_ms = o->lease_ms ? o->lease_ms : DEFAULT_LEASE;
    l->nproxies = 1;
    l->last_report_ns = clock_now_ns();
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL); /* clock_abs_timespec is CLOCK_REALTIME based */
    if (coord_new(l->id, l->lease_ms, &l->coord) != 0) {
        limiter_close(l);
        return DLOG_ENOMEM;
    }
    if (load_conf(l, "", &c) != 0)
        dlog_limits_init(&c);
    set_conf(l, &l->nsent, &c);
    if (pthread_create(&l->thread, NULL, limiter_main, l) != 0) {
        limiter_close(l);
        return errmsg_fail(errmsg, DLOG_ENOMEM, "cannot start the limiter thread");
    }
    *out = l;
    return 0;
}

void limiter_close(struct limiter *l)
{
    char key[RL_PROXY_ID_MAX + 16];

    if (l == NULL)
        return;
    if (l->thread) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cv);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
        /* A clean stop hands its share back at once. */
        snprintf(key, sizeof key, RL_PREFIX_REPORT "%s", l->id);
        l->meta->kv_remove(l->meta, key, META_KV_ANY);
        snprintf(key, sizeof key, RL_PREFIX_GRANT "%s", l->id);
        l->meta->kv_remove(l->meta, key, META_KV_ANY);
    }
    for (int i = 0; i < NBUCKETS; i++) {
        while (l->tab[i] != NULL) {
            struct lentry *e = l->tab[i];
            l->tab[i] = e->next;
            free(e);
        }
    }
    rl_grant_clear(&l->grant);
    coord_free(l->coord);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}

int limiter_is_coordinator(struct limiter *l)
{
    return coord_is_leader(l->coord);
}
