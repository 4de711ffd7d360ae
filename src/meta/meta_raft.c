/*
 * The metadata store of cluster mode ("raft"): dlog_meta_ops (version 2)
 * by node calls to the metadata Raft group (docs/protocol.md, "Node
 * calls"), over the blocking client of net/rpc.h, which follows leader
 * redirects and retries other nodes until its deadline.
 *
 * Reads carry the highest revision this store has seen in any reply, so a
 * replica that has not applied that far redirects them to the leader:
 * a caller reads its own writes whichever node answers. Other processes'
 * writes: the store starts at the leader's revision (a barrier at open),
 * so it sees everything written before it was opened, and a stream a
 * replica says does not exist is asked for again after a barrier, since
 * it may just have been created elsewhere.
 *
 * Writes whose outcome is unknown. A write sent to a leader that then
 * crashed or lost its leadership may or may not be committed by the next
 * leader (Raft thesis 6.3). Such a write is not sent again blindly, which
 * could apply it twice or turn its success into a conflict; instead the
 * store asks the current leader for a barrier (after which every entry of
 * an earlier term is applied or lost for good: a leader commits entries of
 * earlier terms only by committing one of its own, and terms never
 * decrease along a log), reads the object back and decides:
 *   - unchanged (same version, or still absent): it was lost; send again;
 *   - exactly the write's result (version + 1 and the same content): it
 *     was applied; report success;
 *   - anything else: another writer changed the object; report
 *     DLOG_ECONFLICT (DLOG_EEXIST for a create). If that other writer had
 *     read this write's result first, the write did apply although the
 *     caller is told otherwise: only a durable (client, sequence) table in
 *     the FSM could tell these apart (TODO: exactly-once metadata writes).
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "meta/meta.h"
#include "net/rpc.h"

#define PAGE        1000 /* names or keys per list call */
#define RESOLVE_MAX 5    /* rounds of resolving an unknown outcome */

struct meta_raft {
    struct dlog_meta_ops ops;
    struct net_rpc *rpc;
    pthread_mutex_t mu; /* seen */
    uint64_t seen;      /* the highest revision seen in a reply */
};

static struct meta_raft *impl(struct dlog_meta_ops *m)
{
    return m->impl;
}

static void saw(struct meta_raft *r, uint64_t rev)
{
    pthread_mutex_lock(&r->mu);
    if (rev > r->seen)
        r->seen = rev;
    pthread_mutex_unlock(&r->mu);
}

static uint64_t seen(struct meta_raft *r)
{
    uint64_t v;

    pthread_mutex_lock(&r->mu);
    v = r->seen;
    pthread_mutex_unlock(&r->mu);
    return v;
}

/*
 * One call. 0 with *rep to free, or the error (the server's status too,
 * with rep freed); DLOG_ETIMEDOUT means "outcome unknown" (sent, then the
 * connection failed, or the leader lost its leadership).
 */
static int call(struct meta_raft *r, struct wire_msg *req, int idempotent,
                struct net_rpc_reply *rep)
{
    char *errmsg = r->ops.errmsg;
    int rv = net_rpc_call(r->rpc, req, idempotent ? NET_RPC_IDEMPOTENT : 0, rep, errmsg);

    if (rv != 0)
        return rv;
    rv = rep->msg.status;
    if (rv != 0) {
        errmsg_copy(errmsg,
                    rep->msg.err.message ? rep->msg.err.message : dlog_strerror(rv));
        net_rpc_reply_free(rep);
    }
    return rv;
}

static void req_init(struct wire_msg *m, uint32_t type)
{
    memset(m, 0, sizeof *m);
    m->type = type;
}

/* A barrier on the leader: afterwards, every earlier write is applied or
 * lost for good, and reads at the returned revision see the outcome. */
static int barrier(struct meta_raft *r)
{
    struct net_rpc_reply rep;
    struct wire_msg m;
    int rv;

    req_init(&m, WIRE_META_REVISION);
    m.u.meta_revision.barrier = 1;
    rv = call(r, &m, 1, &rep);
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_revision_rep.revision);
    net_rpc_reply_free(&rep);
    return 0;
}

/* ---------------------------------------------------------------- streams */

static int get(struct dlog_meta_ops *m, const char *name, struct meta_stream *out)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    int rv;

    memset(out, 0, sizeof *out);
    req_init(&q, WIRE_META_GET);
    q.u.meta_key = (struct wire_meta_key){name, 0, seen(r)};
    rv = call(r, &q, 1, &rep);
    if (rv == DLOG_ENOTFOUND && barrier(r) == 0) { /* created elsewhere just now? */
        q.u.meta_key.min_revision = seen(r);
        rv = call(r, &q, 1, &rep);
    }
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_get_rep.revision);
    rv = meta_stream_decode(rep.msg.u.meta_get_rep.record, rep.msg.u.meta_get_rep.len,
                            out);
    net_rpc_reply_free(&rep);
    if (rv != 0)
        return errmsg_fail(m->errmsg, rv, "get %s: the record does not decode", name);
    return 0;
}

/* 1 if stored is s with the given id and version (their other fields
 * equal, byte for byte once encoded). */
static int same_record(const struct meta_stream *stored, const struct meta_stream *s,
                       uint64_t id, uint64_t version)
{
    struct meta_stream t;
    struct bytes a, b;
    int eq = 0;

    if (stored->id != id || stored->version != version)
        return 0;
    if (meta_stream_copy(&t, s) != 0)
        return 0;
    t.id = id;
    t.version = version;
    bytes_init(&a);
    bytes_init(&b);
    if (meta_stream_encode(&t, &a) == 0 && meta_stream_encode(stored, &b) == 0)
        eq = a.len == b.len && memcmp(a.p, b.p, a.len) == 0;
    bytes_free(&a);
    bytes_free(&b);
    meta_stream_clear(&t);
    return eq;
}

/* A stream write (create, update, remove) and the resolution of an unknown
 * outcome. */
static int stream_write(struct dlog_meta_ops *m, uint32_t type, struct meta_stream *s,
                        const char *name, uint64_t version)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    struct bytes rec;
    struct meta_stream cur;
    int rv;

    bytes_init(&rec);
    if (s != NULL && meta_stream_encode(s, &rec) != 0) {
        bytes_free(&rec);
        return errmsg_fail(m->errmsg, DLOG_EINVAL, "stream %s: cannot encode", name);
    }
    for (int round = 0;; round++) {
        req_init(&q, type);
        if (s != NULL)
            q.u.meta_record = (struct wire_meta_record){rec.p, rec.len};
        else
            q.u.meta_key = (struct wire_meta_key){name, version, 0};
        rv = call(r, &q, 0, &rep);
        if (rv != DLOG_ETIMEDOUT)
            break;
        if (round == RESOLVE_MAX) {
            errmsg_wrapf(m->errmsg, "stream %s: outcome still unknown", name);
            break;
        }
        /* Outcome unknown: see the top of this file. */
        rv = barrier(r);
        if (rv == 0)
            rv = get(m, name, &cur);
        if (rv == DLOG_ENOTFOUND) {
            if (type == WIRE_META_REMOVE) {
                rv = 0; /* gone: ours or someone's, the caller's wish holds */
                break;
            }
            continue; /* a create was lost; an update will get ENOTFOUND */
        }
        if (rv != 0)
            break;
        if (type == WIRE_META_CREATE && cur.version == 1 &&
            same_record(&cur, s, cur.id, 1)) {
            s->id = cur.id;
            s->version = 1;
            meta_stream_clear(&cur);
            bytes_free(&rec);
            return 0;
        }
        if (type == WIRE_META_UPDATE && same_record(&cur, s, s->id, s->version + 1)) {
            s->version++;
            meta_stream_clear(&cur);
            bytes_free(&rec);
            return 0;
        }
        if (type == WIRE_META_UPDATE && cur.version == s->version) {
            meta_stream_clear(&cur);
            continue; /* lost */
        }
        if (type == WIRE_META_REMOVE && (version == 0 || cur.version == version)) {
            meta_stream_clear(&cur);
            continue; /* lost */
        }
        meta_stream_clear(&cur);
        rv = type == WIRE_META_CREATE ? DLOG_EEXIST : DLOG_ECONFLICT;
        errmsg_printf(m->errmsg, "stream %s changed concurrently", name);
        break;
    }
    bytes_free(&rec);
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_write_rep.revision);
    if (type == WIRE_META_CREATE) {
        s->id = rep.msg.u.meta_write_rep.id;
        s->version = rep.msg.u.meta_write_rep.version;
    } else if (type == WIRE_META_UPDATE) {
        s->version = rep.msg.u.meta_write_rep.version;
    }
    net_rpc_reply_free(&rep);
    return 0;
}

static int create(struct dlog_meta_ops *m, struct meta_stream *s)
{
    return stream_write(m, WIRE_META_CREATE, s, s->name, 0);
}

static int update(struct dlog_meta_ops *m, struct meta_stream *s)
{
    return stream_write(m, WIRE_META_UPDATE, s, s->name, s->version);
}

static int remove_stream(struct dlog_meta_ops *m, const char *name, uint64_t version)
{
    return stream_write(m, WIRE_META_REMOVE, NULL, name, version);
}

static int list(struct dlog_meta_ops *m, char ***names, size_t *count)
{
    struct meta_raft *r = impl(m);
    char **v = NULL, last[DLOG_STREAM_NAME_MAX + 1] = "";
    size_t n = 0, cap = 0;
    int rv = 0, more = 1;

    while (more && rv == 0) {
        struct net_rpc_reply rep;
        struct wire_msg q;
        const struct wire_meta_list_rep *l;

        req_init(&q, WIRE_META_LIST);
        q.u.meta_list = (struct wire_meta_list){"", last, PAGE, seen(r)};
        rv = call(r, &q, 1, &rep);
        if (rv != 0)
            break;
        l = &rep.msg.u.meta_list_rep;
        saw(r, l->revision);
        if (n + l->count + 1 > cap) {
            size_t ncap = (n + l->count + 1) * 2;
            char **nv = realloc(v, ncap * sizeof *nv);
            if (nv == NULL)
                rv = DLOG_ENOMEM;
            else {
                v = nv;
                cap = ncap;
            }
        }
        for (size_t i = 0; rv == 0 && i < l->count; i++) {
            v[n] = strdup(l->names[i]);
            if (v[n] == NULL)
                rv = DLOG_ENOMEM;
            else
                n++;
        }
        if (rv == 0 && l->count > 0)
            snprintf(last, sizeof last, "%s", l->names[l->count - 1]);
        more = l->more && l->count > 0;
        net_rpc_reply_free(&rep);
    }
    if (rv == 0 && v == NULL) {
        v = malloc(sizeof *v);
        if (v == NULL)
            rv = DLOG_ENOMEM;
    }
    if (rv != 0) {
        for (size_t i = 0; i < n; i++)
            free(v[i]);
        free(v);
        return rv;
    }
    v[n] = NULL;
    *names = v;
    *count = n;
    return 0;
}

/* ---------------------------------------------------------------- keys */

static int kv_get(struct dlog_meta_ops *m, const char *key, struct bytes *value,
                  uint64_t *version)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    int rv;

    req_init(&q, WIRE_META_KV_GET);
    q.u.meta_key = (struct wire_meta_key){key, 0, seen(r)};
    rv = call(r, &q, 1, &rep);
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_value_rep.revision);
    bytes_reset(value);
    rv =
        bytes_append(value, rep.msg.u.meta_value_rep.value, rep.msg.u.meta_value_rep.len);
    if (rv == 0 && version != NULL)
        *version = rep.msg.u.meta_value_rep.version;
    net_rpc_reply_free(&rep);
    return rv;
}

/* After a barrier: 1 if key holds exactly value at version want (0: any
 * version), 0 if not, or an error. *cur gets the stored version (0 when
 * absent). */
static int kv_holds(struct dlog_meta_ops *m, const char *key, const void *value,
                    size_t len, uint64_t *cur)
{
    struct bytes v;
    int rv;

    bytes_init(&v);
    *cur = 0;
    rv = kv_get(m, key, &v, cur);
    if (rv == 0)
        rv = v.len == len && (len == 0 || memcmp(v.p, value, len) == 0);
    else if (rv == DLOG_ENOTFOUND)
        rv = 0;
    bytes_free(&v);
    return rv;
}

static int kv_put(struct dlog_meta_ops *m, const char *key, const void *value, size_t len,
                  uint64_t *version)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    uint64_t expect = *version, cur;
    int rv;

    for (int round = 0;; round++) {
        req_init(&q, WIRE_META_KV_PUT);
        q.u.meta_kv_put = (struct wire_meta_kv_put){key, value, len, expect};
        rv = call(r, &q, 0, &rep);
        if (rv != DLOG_ETIMEDOUT)
            break;
        if (round == RESOLVE_MAX) {
            errmsg_wrapf(m->errmsg, "put %s: outcome still unknown", key);
            return rv;
        }
        /* Outcome unknown: see the top of this file. */
        rv = barrier(r);
        if (rv == 0)
            rv = kv_holds(m, key, value, len, &cur);
        if (rv < 0)
            return rv;
        if (rv == 1 && (expect == META_KV_ANY ||
                        cur == (expect == META_KV_CREATE ? 1 : expect + 1))) {
            *version = cur;
            return 0;
        }
        if (expect == META_KV_ANY || cur == expect)
            continue; /* lost (cur 0: absent, as a create expects) */
        if (cur == 0)
            continue; /* absent: sending again gives the right answer */
        return errmsg_fail(m->errmsg, DLOG_ECONFLICT, "put %s: changed concurrently",
                           key);
    }
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_write_rep.revision);
    *version = rep.msg.u.meta_write_rep.version;
    net_rpc_reply_free(&rep);
    return 0;
}

static int kv_remove(struct dlog_meta_ops *m, const char *key, uint64_t version)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    uint64_t cur;
    int rv;

    for (int round = 0;; round++) {
        req_init(&q, WIRE_META_KV_REMOVE);
        q.u.meta_key = (struct wire_meta_key){key, version, 0};
        rv = call(r, &q, 0, &rep);
        if (rv != DLOG_ETIMEDOUT)
            break;
        if (round == RESOLVE_MAX)
            return rv;
        rv = barrier(r);
        if (rv == 0)
            rv = kv_holds(m, key, NULL, 0, &cur);
        if (rv < 0)
            return rv;
        if (cur == 0)
            return 0; /* gone */
        if (version == META_KV_ANY || cur == version)
            continue; /* lost */
        return errmsg_fail(m->errmsg, DLOG_ECONFLICT, "remove %s: changed concurrently",
                           key);
    }
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_write_rep.revision);
    net_rpc_reply_free(&rep);
    return 0;
}

static int kv_list(struct dlog_meta_ops *m, const char *prefix, struct meta_kv **items,
                   size_t *count)
{
    struct meta_raft *r = impl(m);
    struct meta_kv *v = NULL;
    char last[META_KEY_MAX + 1] = "";
    size_t n = 0, cap = 0;
    int rv = 0, more = 1;

    *items = NULL;
    *count = 0;
    while (more && rv == 0) {
        struct net_rpc_reply rep;
        struct wire_msg q;
        const struct wire_meta_kv_list_rep *l;

        req_init(&q, WIRE_META_KV_LIST);
        q.u.meta_list = (struct wire_meta_list){prefix, last, PAGE, seen(r)};
        rv = call(r, &q, 1, &rep);
        if (rv != 0)
            break;
        l = &rep.msg.u.meta_kv_list_rep;
        saw(r, l->revision);
        if (n + l->count > cap) {
            size_t ncap = (n + l->count) * 2;
            struct meta_kv *nv = realloc(v, ncap * sizeof *nv);
            if (nv == NULL)
                rv = DLOG_ENOMEM;
            else {
                v = nv;
                cap = ncap;
            }
        }
        for (size_t i = 0; rv == 0 && i < l->count; i++) {
            struct meta_kv *e = &v[n];
            e->key = strdup(l->items[i].key);
            bytes_init(&e->value);
            e->version = l->items[i].version;
            if (e->key == NULL ||
                bytes_append(&e->value, l->items[i].value, l->items[i].len) != 0) {
                free(e->key);
                bytes_free(&e->value);
                rv = DLOG_ENOMEM;
            } else {
                n++;
            }
        }
        if (rv == 0 && l->count > 0)
            snprintf(last, sizeof last, "%s", l->items[l->count - 1].key);
        more = l->more && l->count > 0;
        net_rpc_reply_free(&rep);
    }
    if (rv != 0) {
        meta_kv_list_free(v, n);
        return rv;
    }
    *items = v;
    *count = n;
    return 0;
}

static int revision(struct dlog_meta_ops *m, uint64_t *rev)
{
    struct meta_raft *r = impl(m);
    struct net_rpc_reply rep;
    struct wire_msg q;
    int rv;

    req_init(&q, WIRE_META_REVISION);
    rv = call(r, &q, 1, &rep);
    if (rv != 0)
        return rv;
    saw(r, rep.msg.u.meta_revision_rep.revision);
    net_rpc_reply_free(&rep);
    /* Never backwards, even when a lagging replica answered. */
    *rev = seen(r);
    return 0;
}

static void close_ops(struct dlog_meta_ops *m)
{
    struct meta_raft *r = impl(m);

    net_rpc_close(r->rpc);
    pthread_mutex_destroy(&r->mu);
    free(r);
}

int meta_raft_open(const char *addrs, struct dlog_meta_ops **out, char *errmsg)
{
    struct meta_raft *r = calloc(1, sizeof *r);
    int rv;

    *out = NULL;
    if (r == NULL)
        return DLOG_ENOMEM;
    rv = net_rpc_open(addrs, "libdlog meta_raft " PACKAGE_VERSION, &r->rpc, errmsg);
    if (rv != 0) {
        free(r);
        return rv;
    }
    pthread_mutex_init(&r->mu, NULL);
    /* Best effort: without a leader now, reads start from what they find. */
    barrier(r);
    r->ops.version = META_OPS_VERSION;
    r->ops.impl = r;
    r->ops.create = create;
    r->ops.get = get;
    r->ops.list = list;
    r->ops.update = update;
    r->ops.remove = remove_stream;
    r->ops.close = close_ops;
    r->ops.kv_get = kv_get;
    r->ops.kv_put = kv_put;
    r->ops.kv_remove = kv_remove;
    r->ops.kv_list = kv_list;
    r->ops.revision = revision;
    *out = &r->ops;
    return 0;
}

void meta_raft_set_timeout(struct dlog_meta_ops *m, unsigned ms)
{
    net_rpc_set_timeout(impl(m)->rpc, ms);
}
