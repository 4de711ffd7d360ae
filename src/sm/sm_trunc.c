/*
 * Truncation coordination through the companion stream
 * "<stream>.replicas".
 *
 * DistributedLog leaves truncation to the application: "the application
 * [...] is responsible for truncating the log [...] once it has taken a
 * snapshot" (DistributedLog docs, "Log Retention"). Here the framework
 * does it for every replica at once. Each replica with a snapshot_dir
 * registers and, after each snapshot, reports the oldest snapshot it keeps
 * (REPORT); shared snapshots are announced when complete (PUBLISH); a
 * replica that left for good is removed (FORGET). After a snapshot, a
 * replica with auto_truncate reads the registry and truncates:
 *
 *   the stream   below min(oldest snapshot of every registered replica,
 *                newest shared snapshot) — every replica can restart from
 *                any snapshot it keeps, and an empty one from the newest
 *                shared snapshot; nothing while a registered replica has
 *                no snapshot yet;
 *   ".snap"      below the first part of the older of the two newest
 *                announced snapshots;
 *   ".replicas"  below the oldest record still needed: each replica's
 *                latest REPORT and the two newest PUBLISH records.
 *
 * Records: u8 0xD3, u8 version 1, u8 type, u16 id length, id, then
 *   REPORT  DLSN restorable (u64 seg, u64 entry, u32 slot)
 *   PUBLISH DLSN snapshot, DLSN first part in ".snap", u64 snapshot id
 *   FORGET  nothing more
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "sm/sm_internal.h"

#define REP_MAGIC   0xD3
#define REP_VERSION 1
enum { REP_REPORT = 1, REP_PUBLISH = 2, REP_FORGET = 3 };
#define PUBS_KEPT 2

/* A record being built; replica ids are at most SM_ID_MAX bytes. */
struct rep_rec {
    uint8_t b[SM_ID_MAX + 64];
    size_t len;
};

static void put_dlsn(struct rep_rec *r, struct dlog_dlsn d)
{
    put_u64be(r->b + r->len, d.seg);
    put_u64be(r->b + r->len + 8, d.entry);
    put_u32be(r->b + r->len + 16, d.slot);
    r->len += 20;
}

static int get_dlsn(struct cursor *c, struct dlog_dlsn *d)
{
    uint32_t slot;
    if (cursor_get_u64be(c, &d->seg) || cursor_get_u64be(c, &d->entry) ||
        cursor_get_u32be(c, &slot))
        return DLOG_EPROTO;
    d->slot = slot;
    return 0;
}

static int start_record(struct rep_rec *r, int type, const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > SM_ID_MAX)
        return DLOG_EINVAL;
    r->b[0] = REP_MAGIC;
    r->b[1] = REP_VERSION;
    r->b[2] = (uint8_t)type;
    r->b[3] = (uint8_t)(n >> 8);
    r->b[4] = (uint8_t)n;
    memcpy(r->b + 5, id, n);
    r->len = 5 + n;
    return 0;
}

static int write_rec(struct dlog_writer *w, const struct rep_rec *r)
{
    struct dlog_record rec;
    memset(&rec, 0, sizeof rec);
    rec.payload = r->b;
    rec.len = r->len;
    return dlog_write_sync(w, &rec, 1, NULL);
}

int sm_companion_writer(struct dlog_sm *sm, const char *name, uint64_t max_record,
                        struct dlog_writer **w)
{
    struct dlog_stream_config cfg;
    dlog_stream_config_init(&cfg);
    cfg.auto_txid = 1;
    if (max_record > cfg.max_record_bytes)
        cfg.max_record_bytes =
            max_record < DLOG_RECORD_MAX_LIMIT ? max_record : DLOG_RECORD_MAX_LIMIT;
    int rv = dlog_stream_create(sm->ns, name, &cfg);
    if (rv != 0 && rv != DLOG_EEXIST)
        return sm_fail(sm, rv, "create '%s': %s", name, dlog_errmsg(sm->ns));
    rv = dlog_writer_open(sm->ns, name, NULL, w);
    if (rv != 0)
        return sm_fail(sm, rv, "open a writer on '%s': %s", name, dlog_errmsg(sm->ns));
    return 0;
}

static int rep_write(struct dlog_sm *sm, const struct rep_rec *r)
{
    int rv = 0;
    if (sm->rep_writer == NULL)
        rv = sm_companion_writer(sm, sm->rep_stream, 0, &sm->rep_writer);
    if (rv == 0 && (rv = write_rec(sm->rep_writer, r)) != 0)
        sm_fail(sm, rv, "write to '%s': %s", sm->rep_stream,
                dlog_writer_errmsg(sm->rep_writer));
    return rv;
}

struct dlog_dlsn trunc_restorable(struct dlog_sm *sm)
{
    struct snap_file *v;
    size_t n;
    struct dlog_dlsn d = DLOG_DLSN_HEAD;
    if (sm->dir_fd < 0 || snap_list(sm, &v, &n) != 0)
        return d;
    size_t keep = sm->o.keep_snapshots > 0 ? (size_t)sm->o.keep_snapshots : 1;
    if (n > 0)
        d = v[(n < keep ? n : keep) - 1].dlsn; /* the oldest left after pruning */
    free(v);
    return d;
}

int trunc_report(struct dlog_sm *sm)
{
    struct rep_rec r;
    if (!sm->registered)
        return 0;
    int rv = start_record(&r, REP_REPORT, sm->replica_id);
    if (rv != 0)
        return rv;
    put_dlsn(&r, trunc_restorable(sm));
    return rep_write(sm, &r);
}

int trunc_announce(struct dlog_sm *sm, const struct pub_info *pi)
{
    struct rep_rec r;
    int rv = start_record(&r, REP_PUBLISH, sm->replica_id);
    if (rv != 0)
        return rv;
    put_dlsn(&r, pi->dlsn);
    put_dlsn(&r, pi->first);
    put_u64be(r.b + r.len, pi->id);
    r.len += 8;
    return rep_write(sm, &r);
}

/* ------------------------------------------------------------ the registry */

void registry_free(struct registry *g)
{
    for (size_t i = 0; i < g->nreps; i++)
        free(g->reps[i].id);
    free(g->reps);
    free(g->pubs);
    memset(g, 0, sizeof *g);
}

static struct rep_entry *find_rep(struct registry *g, const char *id, size_t n)
{
    for (size_t i = 0; i < g->nreps; i++)
        if (strlen(g->reps[i].id) == n && memcmp(g->reps[i].id, id, n) == 0)
            return &g->reps[i];
    return NULL;
}

static int apply_rep(struct registry *g, const struct dlog_record *rec, size_t *pcap,
                     size_t *rcap)
{
    struct cursor c = {rec->payload, rec->len};
    uint8_t magic, ver, type, hi, lo;
    const uint8_t *id;
    if (cursor_get_u8(&c, &magic) || cursor_get_u8(&c, &ver) ||
        cursor_get_u8(&c, &type) || cursor_get_u8(&c, &hi) || cursor_get_u8(&c, &lo) ||
        magic != REP_MAGIC || ver != REP_VERSION)
        return 0; /* not ours: ignore */
    size_t n = ((size_t)hi << 8) | lo;
    if (cursor_get_bytes(&c, n, &id))
        return 0;
    struct rep_entry *e = find_rep(g, (const char *)id, n);
    if (type == REP_FORGET) {
        if (e != NULL) {
            free(e->id);
            *e = g->reps[--g->nreps];
        }
        return 0;
    }
    if (type == REP_REPORT) {
        struct dlog_dlsn d;
        if (get_dlsn(&c, &d))
            return 0;
        if (e == NULL) {
            if (g->nreps == *rcap) {
                size_t cap = *rcap ? *rcap * 2 : 8;
                struct rep_entry *v = realloc(g->reps, cap * sizeof *v);
                if (v == NULL)
                    return DLOG_ENOMEM;
                g->reps = v;
                *rcap = cap;
            }
            e = &g->reps[g->nreps];
            if ((e->id = malloc(n + 1)) == NULL)
                return DLOG_ENOMEM;
            memcpy(e->id, id, n);
            e->id[n] = '\0';
            g->nreps++;
        }
        e->restorable = d;
        e->at = rec->dlsn;
        return 0;
    }
    if (type == REP_PUBLISH) {
        struct pub_info pi;
        if (get_dlsn(&c, &pi.dlsn) || get_dlsn(&c, &pi.first) ||
            cursor_get_u64be(&c, &pi.id))
            return 0;
        pi.at = rec->dlsn;
        if (g->npubs == *pcap) {
            size_t cap = *pcap ? *pcap * 2 : 8;
            struct pub_info *v = realloc(g->pubs, cap * sizeof *v);
            if (v == NULL)
                return DLOG_ENOMEM;
            g->pubs = v;
            *pcap = cap;
        }
        g->pubs[g->npubs++] = pi;
    }
    return 0;
}

static int newest_pub_first(const void *a, const void *b)
{
    const struct pub_info *x = a, *y = b;
    int c = dlog_dlsn_cmp(y->dlsn, x->dlsn);
    return c != 0 ? c : dlog_dlsn_cmp(y->at, x->at);
}

int registry_read(struct dlog_ns *ns, const char *rep_stream, struct registry *g,
                  char *errmsg)
{
    struct dlog_reader *r;
    struct dlog_record recs[64];
    size_t pcap = 0, rcap = 0;
    memset(g, 0, sizeof *g);
    int rv = dlog_reader_open(ns, rep_stream, NULL, &r);
    if (rv == DLOG_ENOTFOUND)
        return 0;
    if (rv != 0) {
        errmsg_printf(errmsg, "read '%s': %s", rep_stream, dlog_errmsg(ns));
        return rv;
    }
    for (;;) {
        int n = dlog_read(r, recs, 64, 0);
        if (n == DLOG_ETIMEDOUT)
            break;
        if (n < 0) {
            errmsg_printf(errmsg, "read '%s': %s", rep_stream, dlog_reader_errmsg(r));
            rv = n;
            break;
        }
        for (int i = 0; i < n && rv == 0; i++)
            rv = apply_rep(g, &recs[i], &pcap, &rcap);
        if (rv != 0)
            break;
    }
    dlog_reader_close(r);
    if (rv != 0) {
        registry_free(g);
        return rv;
    }
    if (g->npubs > 1)
        qsort(g->pubs, g->npubs, sizeof *g->pubs, newest_pub_first);
    return 0;
}

/* ------------------------------------------------------------ truncation */

static int truncate_to(struct dlog_sm *sm, const char *name, struct dlog_dlsn d)
{
    if (dlsn_is_head(d))
        return 0;
    int rv = dlog_stream_truncate(sm->ns, name, d);
    if (rv != 0)
        return sm_fail(sm, rv, "truncate '%s': %s", name, dlog_errmsg(sm->ns));
    log_debug(SM_LOG, "truncated '%s' below %llu/%llu/%u", name,
              (unsigned long long)d.seg, (unsigned long long)d.entry, d.slot);
    return 0;
}

int trunc_run(struct dlog_sm *sm)
{
    struct registry g;
    char msg[DLOG_ERRMSG_SIZE];
    if (!sm->o.auto_truncate)
        return 0;
    int rv = registry_read(sm->ns, sm->rep_stream, &g, msg);
    if (rv != 0)
        return sm_fail(sm, rv, "%s", msg);
    struct dlog_dlsn tmain = DLOG_DLSN_HEAD, trep = DLOG_DLSN_MAX, tsnap = DLOG_DLSN_MAX;
    int blocked = 0, have = 0;
    for (size_t i = 0; i < g.nreps; i++) {
        const struct rep_entry *e = &g.reps[i];
        if (dlsn_is_head(e->restorable))
            blocked = 1; /* registered, no snapshot yet */
        else if (!have || dlog_dlsn_cmp(e->restorable, tmain) < 0)
            tmain = e->restorable, have = 1;
        if (dlog_dlsn_cmp(e->at, trep) < 0)
            trep = e->at;
    }
    if (g.npubs > 0 && (!have || dlog_dlsn_cmp(g.pubs[0].dlsn, tmain) < 0))
        tmain = g.pubs[0].dlsn;
    if (blocked)
        tmain = DLOG_DLSN_HEAD;
    for (size_t i = 0; i < g.npubs && i < PUBS_KEPT; i++) {
        if (dlog_dlsn_cmp(g.pubs[i].first, tsnap) < 0)
            tsnap = g.pubs[i].first;
        if (dlog_dlsn_cmp(g.pubs[i].at, trep) < 0)
            trep = g.pubs[i].at;
    }
    rv = truncate_to(sm, sm->stream, tmain);
    if (rv == 0 && g.npubs > 0)
        rv = truncate_to(sm, sm->snap_stream, tsnap);
    if (rv == 0 && (g.nreps > 0 || g.npubs > 0))
        rv = truncate_to(sm, sm->rep_stream, trep);
    registry_free(&g);
    return rv;
}

/* ------------------------------------------------------------ forget */

int dlog_sm_forget(struct dlog_ns *ns, const char *stream, const char *replica_id)
{
    char name[DLOG_STREAM_NAME_MAX + 16];
    struct rep_rec r;
    struct dlog_writer *w;
    if (ns == NULL || stream == NULL || replica_id == NULL)
        return DLOG_EINVAL;
    snprintf(name, sizeof name, "%s.replicas", stream);
    if (!dlog_stream_name_valid(name))
        return DLOG_ENAME;
    int rv = start_record(&r, REP_FORGET, replica_id);
    if (rv != 0)
        return rv;
    rv = dlog_writer_open(ns, name, NULL, &w);
    if (rv == DLOG_ENOTFOUND)
        return 0; /* nobody ever registered */
    if (rv != 0)
        return rv;
    rv = write_rec(w, &r);
    int crv = dlog_writer_close(w);
    return rv != 0 ? rv : crv;
}
