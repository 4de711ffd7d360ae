/*
 * Limits and quotas in the embedded backend: where they are stored, and the
 * metrics the proxies report (docs/rate-limiting.md).
 *
 * A stream's limits live in its metadata record (cfg.limits), changed by a
 * compare-and-set like every other change; the namespace's live under the
 * key "ns/limits". The metrics are the proxies' latest reports
 * ("rl/report/<proxy>"), summed here; this process enforces nothing but the
 * quota (writer.c) — rates are the proxy's business.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "core/embedded.h"
#include "meta/meta_rl.h"

#define CAS_TRIES 1000

int ns_limits_load(struct embedded *e, struct dlog_limits *l, char *errmsg)
{
    struct bytes v;
    int rv;

    memset(l, 0, sizeof *l);
    l->version = DLOG_LIMITS_VERSION;
    if (e->meta->version < 2)
        return 0;
    bytes_init(&v);
    rv = e->meta->kv_get(e->meta, RL_KEY_NS_LIMITS, &v, NULL);
    if (rv == DLOG_ENOTFOUND)
        rv = 0;
    else if (rv != 0)
        errmsg_printf(errmsg, "namespace limits: %s", e->meta->errmsg);
    else if ((rv = meta_limits_decode(v.p, v.len, l)) != 0)
        errmsg_printf(errmsg, "namespace limits: the stored value is corrupt");
    bytes_free(&v);
    return rv;
}

int ns_usage(struct embedded *e, uint64_t *used, char *errmsg)
{
    char **names;
    size_t n;
    int rv = e->meta->list(e->meta, &names, &n);

    *used = 0;
    if (rv != 0) {
        errmsg_printf(errmsg, "list: %s", e->meta->errmsg);
        return rv;
    }
    for (size_t i = 0; i < n; i++) {
        struct meta_stream ms;
        if (stream_load(e, names[i], &ms, errmsg) != 0)
            continue; /* deleted meanwhile */
        *used += stream_usage(e, &ms);
        meta_stream_clear(&ms);
    }
    dlog_stream_list_free(names);
    return 0;
}

int emb_limits_set(struct dlog_ns *ns, const char *name, const struct dlog_limits *l)
{
    struct embedded *e = embedded_of(ns);
    int rv;

    if (name == NULL) {
        struct bytes v;
        uint64_t ver = META_KV_ANY;

        bytes_init(&v);
        rv = meta_limits_encode(l, &v);
        if (rv == 0 &&
            (rv = e->meta->kv_put(e->meta, RL_KEY_NS_LIMITS, v.p, v.len, &ver)))
            errmsg_printf(ns->errmsg, "namespace limits: %s", e->meta->errmsg);
        bytes_free(&v);
        return rv;
    }
    for (int tries = 0; tries < CAS_TRIES; tries++) {
        struct meta_stream ms;

        rv = stream_load(e, name, &ms, ns->errmsg);
        if (rv != 0)
            return rv;
        ms.cfg.limits = *l;
        rv = e->meta->update(e->meta, &ms);
        meta_stream_clear(&ms);
        if (rv != DLOG_ECONFLICT) {
            if (rv != 0)
                errmsg_printf(ns->errmsg, "limits '%s': %s", name, e->meta->errmsg);
            return rv;
        }
    }
    errmsg_printf(ns->errmsg, "limits '%s': too many concurrent changes", name);
    return DLOG_ECONFLICT;
}

int emb_limits_get(struct dlog_ns *ns, const char *name, struct dlog_limits *l)
{
    return embedded_limits_load(ns, name, l, ns->errmsg);
}

int embedded_limits_load(struct dlog_ns *ns, const char *name, struct dlog_limits *l,
                         char *errmsg)
{
    struct embedded *e = embedded_of(ns);
    struct meta_stream ms;
    int rv;

    if (name == NULL)
        return ns_limits_load(e, l, errmsg);
    rv = stream_load(e, name, &ms, errmsg);
    if (rv != 0)
        return rv;
    *l = ms.cfg.limits;
    l->version = DLOG_LIMITS_VERSION;
    meta_stream_clear(&ms);
    return 0;
}

static void add_item(struct dlog_proxy_stats *d, const struct rl_report_item *it)
{
    d->share_records += it->share_records;
    d->share_bytes += it->share_bytes;
    d->demand_records += it->demand_records;
    d->demand_bytes += it->demand_bytes;
    d->rate_records += it->rate_records;
    d->rate_bytes += it->rate_bytes;
    d->admitted += it->admitted;
    d->rejected += it->rejected;
    d->delayed += it->delayed;
    d->soft_exceeded += it->soft_exceeded;
}

/* Fills st->proxies from the reports that mention key. */
static int collect_reports(struct embedded *e, const char *key,
                           struct dlog_limit_stats *st, char *errmsg)
{
    struct meta_kv *items;
    size_t n;
    uint64_t now = clock_wall_ms();
    int rv;

    if (e->meta->version < 2)
        return 0;
    rv = e->meta->kv_list(e->meta, RL_PREFIX_REPORT, &items, &n);
    if (rv != 0) {
        errmsg_printf(errmsg, "reports: %s", e->meta->errmsg);
        return rv;
    }
    if (n > 0 && (st->proxies = calloc(n, sizeof *st->proxies)) == NULL) {
        meta_kv_list_free(items, n);
        return DLOG_ENOMEM;
    }
    snprintf(st->total.proxy, sizeof st->total.proxy, "total");
    for (size_t i = 0; i < n; i++) {
        struct rl_report r;

        if (rl_report_decode(items[i].value.p, items[i].value.len, &r) != 0)
            continue; /* a corrupt report says nothing */
        for (size_t j = 0; j < r.n; j++) {
            struct dlog_proxy_stats *d;

            if (strcmp(r.items[j].key, key) != 0)
                continue;
            d = &st->proxies[st->nproxies++];
            snprintf(d->proxy, sizeof d->proxy, "%s", r.proxy);
            d->age_ms = now > r.wall_ms ? now - r.wall_ms : 0;
            add_item(d, &r.items[j]);
            add_item(&st->total, &r.items[j]);
            break;
        }
        rl_report_clear(&r);
    }
    meta_kv_list_free(items, n);
    return 0;
}

int emb_limits_stats(struct dlog_ns *ns, const char *name, struct dlog_limit_stats **out)
{
    struct embedded *e = embedded_of(ns);
    struct dlog_limit_stats *st = calloc(1, sizeof *st);
    int rv;

    if (st == NULL)
        return DLOG_ENOMEM;
    if (name != NULL) {
        struct meta_stream ms;

        rv = stream_load(e, name, &ms, ns->errmsg);
        if (rv == 0) {
            st->limits = ms.cfg.limits;
            st->limits.version = DLOG_LIMITS_VERSION;
            st->used_bytes = stream_usage(e, &ms);
            meta_stream_clear(&ms);
        }
    } else {
        rv = ns_limits_load(e, &st->limits, ns->errmsg);
        if (rv == 0)
            rv = ns_usage(e, &st->used_bytes, ns->errmsg);
    }
    if (rv == 0)
        rv = collect_reports(e, name != NULL ? name : "", st, ns->errmsg);
    if (rv != 0) {
        dlog_limit_stats_free(st);
        return rv;
    }
    *out = st;
    return 0;
}
