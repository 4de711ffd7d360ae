/*
 * The durable metadata store ("file:DIR") on LMDB.
 *
 * One environment in DIR (data.mdb, lock.mdb) with two named databases:
 *
 *   "streams"   stream name (no NUL) -> meta_stream_encode() bytes
 *   "counters"  "next_id"            -> u64be, the id the next stream gets
 *               "revision"           -> u64be, bumped by every change
 *   "kv"        key (no NUL)         -> u64be version, then the value
 *
 * Several processes may open the same DIR at once. No lock of our own is
 * needed between them: every operation is one LMDB transaction, and LMDB
 * serialises write transactions across processes with its robust mutex in
 * lock.mdb, so an update's get + compare + put is atomic against every other
 * writer, in this process or another. Read transactions see a snapshot.
 * Commits use LMDB's default (fully synced) mode: a returned update is
 * durable.
 *
 * LMDB rules this file keeps (lmdb.h): MDB_NOTLS so that a read transaction
 * is not tied to a reader slot per thread; mdb_env_set_mapsize only while
 * no transaction of this process is open, hence the rwlock around every
 * transaction when another process has grown the map (MDB_MAP_RESIZED);
 * stale reader slots of dead processes are cleared at open. Every LMDB error
 * is translated here: MDB_MAP_FULL to DLOG_ENOSPC, the rest to DLOG_EIO
 * (or DLOG_ENOMEM), with mdb_strerror's words in m->errmsg.
 *
 * Note (lmdb.h, "Caveats"): one process must not open the same environment
 * twice at once; closing the second copy drops the first one's POSIX locks.
 * Open each DIR once per process and share the handle.
 */
#include "meta/meta.h"
#include "meta/meta_kv.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <lmdb.h>

#include <dlog/err.h>

#define DEFAULT_MAP_SIZE (1ULL << 30)  /* 1 GiB */
#define MAX_MAP_SIZE     (64ULL << 30) /* 64 GiB */
#define NEXT_ID_KEY      "next_id"
#define REVISION_KEY     "revision"

struct lm {
    struct dlog_meta_ops ops; /* first: ops->impl points back here */
    MDB_env *env;
    MDB_dbi streams;
    MDB_dbi counters;
    MDB_dbi kv;
    /* Read-held during every transaction; write-held to adopt a new map size. */
    pthread_rwlock_t resize;
    pthread_mutex_t errmu; /* guards ops.errmsg */
};

static int xlate(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_MAP_FULL:
    case ENOSPC:
        return DLOG_ENOSPC;
    case ENOMEM:
        return DLOG_ENOMEM;
    default:
        return DLOG_EIO;
    }
}

/* Sets m->errmsg to "<context>: <lmdb's words>" and returns the dlog code. */
static int fail_mdb(struct lm *l, int rc, const char *what, const char *name)
{
    int code = xlate(rc);

    pthread_mutex_lock(&l->errmu);
    errmsg_printf(l->ops.errmsg, "%s%s%.*s: %s", what, name != NULL ? " " : "",
                  DLOG_STREAM_NAME_MAX, name != NULL ? name : "", mdb_strerror(rc));
    pthread_mutex_unlock(&l->errmu);
    return code;
}

/* Sets m->errmsg to "<context>: <dlog_strerror(code)>" and returns code. */
static int fail(struct lm *l, int code, const char *what, const char *name)
{
    pthread_mutex_lock(&l->errmu);
    errmsg_fail(l->ops.errmsg, code, "%s%s%.*s", what, name != NULL ? " " : "",
                DLOG_STREAM_NAME_MAX, name != NULL ? name : "");
    pthread_mutex_unlock(&l->errmu);
    return code;
}

static int name_ok(const char *name)
{
    size_t len = name == NULL ? 0 : strnlen(name, DLOG_STREAM_NAME_MAX + 1);
    return len > 0 && len <= DLOG_STREAM_NAME_MAX;
}

static MDB_val name_key(const char *name)
{
    MDB_val k = {strlen(name), (void *)name};
    return k;
}

/*
 * Begins a transaction holding l->resize for reading; txn_end releases it.
 * When another process has grown the map beyond ours (MDB_MAP_RESIZED),
 * adopt its size with no transaction of ours open, then retry.
 */
static int txn_begin(struct lm *l, unsigned flags, MDB_txn **txn)
{
    for (int tries = 0;; tries++) {
        int rc;

        pthread_rwlock_rdlock(&l->resize);
        rc = mdb_txn_begin(l->env, NULL, flags, txn);
        if (rc == 0)
            return 0;
        pthread_rwlock_unlock(&l->resize);
        if (rc != MDB_MAP_RESIZED || tries >= 3)
            return rc;
        pthread_rwlock_wrlock(&l->resize);
        rc = mdb_env_set_mapsize(l->env, 0);
        pthread_rwlock_unlock(&l->resize);
        if (rc != 0)
            return rc;
    }
}

static void txn_abort(struct lm *l, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&l->resize);
}

static int txn_commit(struct lm *l, MDB_txn *txn)
{
    int rc = mdb_txn_commit(txn); /* frees txn, also on failure */
    pthread_rwlock_unlock(&l->resize);
    return rc;
}

/* Decodes a stored value and checks that it belongs to name. */
static int decode(struct lm *l, const MDB_val *v, const char *name,
                  struct meta_stream *out)
{
    int rv = meta_stream_decode(v->mv_data, v->mv_size, out);

    if (rv == 0 && strcmp(out->name, name) != 0) {
        meta_stream_clear(out);
        rv = DLOG_ECORRUPT;
    }
    if (rv != 0) {
        pthread_mutex_lock(&l->errmu);
        errmsg_fail(l->ops.errmsg, rv, "decode stream record %.*s", DLOG_STREAM_NAME_MAX,
                    name);
        pthread_mutex_unlock(&l->errmu);
    }
    return rv;
}

/* Encodes s with the given id and version and puts it under its name. */
static int put_stream(struct lm *l, MDB_txn *txn, const struct meta_stream *s,
                      uint64_t id, uint64_t version, const char *what)
{
    struct meta_stream tmp = *s; /* shallow: segs are only read */
    struct bytes b;
    MDB_val k = name_key(s->name), v;
    int rc, rv;

    tmp.id = id;
    tmp.version = version;
    bytes_init(&b);
    rv = meta_stream_encode(&tmp, &b);
    if (rv != 0) {
        bytes_free(&b);
        return fail(l, rv, what, s->name);
    }
    v.mv_size = b.len;
    v.mv_data = b.p;
    rc = mdb_put(txn, l->streams, &k, &v, 0);
    bytes_free(&b);
    if (rc != 0)
        return fail_mdb(l, rc, what, s->name);
    return 0;
}

/* Reads the revision counter inside txn (0 when absent). */
static int get_rev(struct lm *l, MDB_txn *txn, uint64_t *rev)
{
    MDB_val k = {sizeof REVISION_KEY - 1, REVISION_KEY}, v;
    int rc = mdb_get(txn, l->counters, &k, &v);

    *rev = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc == 0 && v.mv_size == 8)
        *rev = get_u64be(v.mv_data);
    return rc;
}

/* Bumps the revision counter inside write txn: an MDB error code or 0. */
static int bump_rev(struct lm *l, MDB_txn *txn)
{
    MDB_val k = {sizeof REVISION_KEY - 1, REVISION_KEY}, v;
    uint8_t buf[8];
    uint64_t rev;
    int rc = get_rev(l, txn, &rev);

    if (rc != 0)
        return rc;
    put_u64be(buf, rev + 1);
    v.mv_size = sizeof buf;
    v.mv_data = buf;
    return mdb_put(txn, l->counters, &k, &v, 0);
}

static int lm_create(struct dlog_meta_ops *m, struct meta_stream *s)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_val k, v, ck = {sizeof NEXT_ID_KEY - 1, NEXT_ID_KEY};
    uint8_t idbuf[8];
    uint64_t id = 1;
    int rc, rv;

    if (!name_ok(s->name))
        return fail(l, DLOG_EINVAL, "create: bad stream name", NULL);
    k = name_key(s->name);
    rc = txn_begin(l, 0, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "create", s->name);
    rc = mdb_get(txn, l->streams, &k, &v);
    if (rc == 0) {
        rv = fail(l, DLOG_EEXIST, "create", s->name);
        goto abort;
    }
    if (rc != MDB_NOTFOUND)
        goto abort_mdb;
    rc = mdb_get(txn, l->counters, &ck, &v);
    if (rc == 0) {
        if (v.mv_size != 8) {
            rv = fail(l, DLOG_ECORRUPT, "create: bad next_id counter for", s->name);
            goto abort;
        }
        id = get_u64be(v.mv_data);
    } else if (rc != MDB_NOTFOUND) {
        goto abort_mdb;
    }
    rv = put_stream(l, txn, s, id, 1, "create");
    if (rv != 0)
        goto abort;
    put_u64be(idbuf, id + 1);
    v.mv_size = sizeof idbuf;
    v.mv_data = idbuf;
    rc = mdb_put(txn, l->counters, &ck, &v, 0);
    if (rc == 0)
        rc = bump_rev(l, txn);
    if (rc != 0)
        goto abort_mdb;
    rc = txn_commit(l, txn);
    if (rc != 0)
        return fail_mdb(l, rc, "create: commit", s->name);
    s->id = id;
    s->version = 1;
    return 0;

abort_mdb:
    rv = fail_mdb(l, rc, "create", s->name);
abort:
    txn_abort(l, txn);
    return rv;
}

static int lm_get(struct dlog_meta_ops *m, const char *name, struct meta_stream *out)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_val k, v;
    int rc, rv;

    if (!name_ok(name))
        return fail(l, DLOG_ENOTFOUND, "get", name);
    k = name_key(name);
    rc = txn_begin(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "get", name);
    rc = mdb_get(txn, l->streams, &k, &v);
    if (rc == MDB_NOTFOUND)
        rv = fail(l, DLOG_ENOTFOUND, "get", name);
    else if (rc != 0)
        rv = fail_mdb(l, rc, "get", name);
    else
        rv = decode(l, &v, name, out); /* v is valid until the txn ends */
    txn_abort(l, txn);
    return rv;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int lm_list(struct dlog_meta_ops *m, char ***names, size_t *count)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    char **vec = NULL;
    size_t n = 0, cap = 0;
    int rc, rv = 0;

    rc = txn_begin(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "list", NULL);
    rc = mdb_cursor_open(txn, l->streams, &cur);
    if (rc != 0)
        goto fail_mdb;
    /* LMDB's default key order is memcmp, shorter first: strcmp order. */
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (n + 1 >= cap) {
            size_t ncap = cap == 0 ? 16 : cap * 2;
            char **nv = realloc(vec, ncap * sizeof *nv);
            if (nv == NULL) {
                rv = fail(l, DLOG_ENOMEM, "list", NULL);
                goto out;
            }
            vec = nv;
            cap = ncap;
        }
        if (k.mv_size == 0 || k.mv_size > DLOG_STREAM_NAME_MAX ||
            memchr(k.mv_data, '\0', k.mv_size) != NULL) {
            rv = fail(l, DLOG_ECORRUPT, "list: bad key in streams", NULL);
            goto out;
        }
        vec[n] = strndup(k.mv_data, k.mv_size);
        if (vec[n] == NULL) {
            rv = fail(l, DLOG_ENOMEM, "list", NULL);
            goto out;
        }
        n++;
    }
    if (rc != MDB_NOTFOUND)
        goto fail_mdb;
    if (vec == NULL) {
        vec = malloc(sizeof *vec);
        if (vec == NULL) {
            rv = fail(l, DLOG_ENOMEM, "list", NULL);
            goto out;
        }
    }
    vec[n] = NULL;
    *names = vec;
    *count = n;
    vec = NULL;
    goto out;

fail_mdb:
    rv = fail_mdb(l, rc, "list", NULL);
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    txn_abort(l, txn);
    if (vec != NULL)
        free_names(vec, n);
    return rv;
}

/*
 * Compare-and-set in one write transaction. As in meta_mem.c, the id must
 * match too, so that an update read from a deleted stream does not land on
 * a new stream of the same name (which starts over at version 1).
 */
static int lm_update(struct dlog_meta_ops *m, struct meta_stream *s)
{
    struct lm *l = m->impl;
    struct meta_stream cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc, rv;

    if (!name_ok(s->name))
        return fail(l, DLOG_ENOTFOUND, "update", s->name);
    k = name_key(s->name);
    rc = txn_begin(l, 0, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "update", s->name);
    rc = mdb_get(txn, l->streams, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = fail(l, DLOG_ENOTFOUND, "update", s->name);
        goto abort;
    }
    if (rc != 0) {
        rv = fail_mdb(l, rc, "update", s->name);
        goto abort;
    }
    rv = decode(l, &v, s->name, &cur);
    if (rv != 0)
        goto abort;
    meta_stream_clear(&cur);
    if (cur.version != s->version || cur.id != s->id) {
        pthread_mutex_lock(&l->errmu);
        errmsg_fail(l->ops.errmsg, DLOG_ECONFLICT,
                    "update %s: stored version %llu, id %llu; given %llu, id %llu",
                    s->name, (unsigned long long)cur.version, (unsigned long long)cur.id,
                    (unsigned long long)s->version, (unsigned long long)s->id);
        pthread_mutex_unlock(&l->errmu);
        rv = DLOG_ECONFLICT;
        goto abort;
    }
    rv = put_stream(l, txn, s, s->id, s->version + 1, "update");
    if (rv != 0)
        goto abort;
    rc = bump_rev(l, txn);
    if (rc != 0) {
        rv = fail_mdb(l, rc, "update", s->name);
        goto abort;
    }
    rc = txn_commit(l, txn);
    if (rc != 0)
        return fail_mdb(l, rc, "update: commit", s->name);
    s->version++;
    return 0;

abort:
    txn_abort(l, txn);
    return rv;
}

static int lm_remove(struct dlog_meta_ops *m, const char *name, uint64_t version)
{
    struct lm *l = m->impl;
    struct meta_stream cur;
    MDB_txn *txn;
    MDB_val k, v;
    int rc, rv;

    if (!name_ok(name))
        return fail(l, DLOG_ENOTFOUND, "remove", name);
    k = name_key(name);
    rc = txn_begin(l, 0, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "remove", name);
    rc = mdb_get(txn, l->streams, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = fail(l, DLOG_ENOTFOUND, "remove", name);
        goto abort;
    }
    if (rc != 0) {
        rv = fail_mdb(l, rc, "remove", name);
        goto abort;
    }
    if (version != 0) {
        rv = decode(l, &v, name, &cur);
        if (rv != 0)
            goto abort;
        meta_stream_clear(&cur);
        if (cur.version != version) {
            pthread_mutex_lock(&l->errmu);
            errmsg_fail(l->ops.errmsg, DLOG_ECONFLICT,
                        "remove %s: stored version %llu, given %llu", name,
                        (unsigned long long)cur.version, (unsigned long long)version);
            pthread_mutex_unlock(&l->errmu);
            rv = DLOG_ECONFLICT;
            goto abort;
        }
    }
    rc = mdb_del(txn, l->streams, &k, NULL);
    if (rc == 0)
        rc = bump_rev(l, txn);
    if (rc != 0) {
        rv = fail_mdb(l, rc, "remove", name);
        goto abort;
    }
    rc = txn_commit(l, txn);
    if (rc != 0)
        return fail_mdb(l, rc, "remove: commit", name);
    return 0;

abort:
    txn_abort(l, txn);
    return rv;
}

static MDB_val kv_key(const char *key)
{
    MDB_val k = {strlen(key), (void *)key};
    return k;
}

/* Fails with code and "<what> <key>" in errmsg (keys can be longer than names). */
static int kv_fail(struct lm *l, int code, const char *what, const char *key)
{
    pthread_mutex_lock(&l->errmu);
    errmsg_fail(l->ops.errmsg, code, "%s %.*s", what, META_KEY_MAX,
                key != NULL ? key : "(null)");
    pthread_mutex_unlock(&l->errmu);
    return code;
}

/* Splits a stored kv value into its version and payload. */
static int kv_split(const MDB_val *v, uint64_t *version, const void **p, size_t *len)
{
    if (v->mv_size < 8)
        return DLOG_ECORRUPT;
    *version = get_u64be(v->mv_data);
    *p = (const uint8_t *)v->mv_data + 8;
    *len = v->mv_size - 8;
    return 0;
}

static int lm_kv_get(struct dlog_meta_ops *m, const char *key, struct bytes *value,
                     uint64_t *version)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_val k, v;
    const void *p;
    size_t len;
    uint64_t ver;
    int rc, rv;

    if (!meta_kv_key_ok(key))
        return kv_fail(l, DLOG_ENOTFOUND, "get key", key);
    k = kv_key(key);
    rc = txn_begin(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "get key", NULL);
    rc = mdb_get(txn, l->kv, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = kv_fail(l, DLOG_ENOTFOUND, "get key", key);
    } else if (rc != 0) {
        rv = fail_mdb(l, rc, "get key", NULL);
    } else if (kv_split(&v, &ver, &p, &len) != 0) {
        rv = kv_fail(l, DLOG_ECORRUPT, "get key", key);
    } else {
        bytes_reset(value);
        rv = bytes_append(value, p, len);
        if (rv != 0)
            rv = kv_fail(l, rv, "get key", key);
        else if (version != NULL)
            *version = ver;
    }
    txn_abort(l, txn);
    return rv;
}

static int lm_kv_put(struct dlog_meta_ops *m, const char *key, const void *value,
                     size_t len, uint64_t *version)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_val k, v;
    const void *p;
    size_t plen;
    uint64_t stored = 0;
    int rc, rv, found;

    if (!meta_kv_key_ok(key) || len > META_VALUE_MAX)
        return kv_fail(l, DLOG_EINVAL, "put: bad key or value too large:", key);
    k = kv_key(key);
    rc = txn_begin(l, 0, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "put key", NULL);
    rc = mdb_get(txn, l->kv, &k, &v);
    if (rc != 0 && rc != MDB_NOTFOUND)
        goto abort_mdb;
    found = rc == 0;
    if (found && kv_split(&v, &stored, &p, &plen) != 0) {
        rv = kv_fail(l, DLOG_ECORRUPT, "put key", key);
        goto abort;
    }
    rv = meta_kv_cas_check(found, stored, *version);
    if (rv != 0) {
        pthread_mutex_lock(&l->errmu);
        errmsg_fail(l->ops.errmsg, rv, "put %.*s: stored version %llu, expected %llu",
                    META_KEY_MAX, key, (unsigned long long)stored,
                    (unsigned long long)*version);
        pthread_mutex_unlock(&l->errmu);
        goto abort;
    }
    v.mv_size = 8 + len;
    v.mv_data = NULL;
    rc = mdb_put(txn, l->kv, &k, &v, MDB_RESERVE);
    if (rc != 0)
        goto abort_mdb;
    put_u64be(v.mv_data, stored + 1);
    if (len > 0)
        memcpy((uint8_t *)v.mv_data + 8, value, len);
    rc = bump_rev(l, txn);
    if (rc != 0)
        goto abort_mdb;
    rc = txn_commit(l, txn);
    if (rc != 0)
        return fail_mdb(l, rc, "put key: commit", NULL);
    *version = stored + 1;
    return 0;

abort_mdb:
    rv = fail_mdb(l, rc, "put key", NULL);
abort:
    txn_abort(l, txn);
    return rv;
}

static int lm_kv_remove(struct dlog_meta_ops *m, const char *key, uint64_t version)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    MDB_val k, v;
    const void *p;
    size_t plen;
    uint64_t stored;
    int rc, rv;

    if (!meta_kv_key_ok(key))
        return kv_fail(l, DLOG_ENOTFOUND, "remove key", key);
    k = kv_key(key);
    rc = txn_begin(l, 0, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "remove key", NULL);
    rc = mdb_get(txn, l->kv, &k, &v);
    if (rc == MDB_NOTFOUND) {
        rv = kv_fail(l, DLOG_ENOTFOUND, "remove key", key);
        goto abort;
    }
    if (rc != 0)
        goto abort_mdb;
    if (kv_split(&v, &stored, &p, &plen) != 0) {
        rv = kv_fail(l, DLOG_ECORRUPT, "remove key", key);
        goto abort;
    }
    if (version != META_KV_ANY && version != stored) {
        rv = kv_fail(l, DLOG_ECONFLICT, "remove key (version differs)", key);
        goto abort;
    }
    rc = mdb_del(txn, l->kv, &k, NULL);
    if (rc == 0)
        rc = bump_rev(l, txn);
    if (rc != 0)
        goto abort_mdb;
    rc = txn_commit(l, txn);
    if (rc != 0)
        return fail_mdb(l, rc, "remove key: commit", NULL);
    return 0;

abort_mdb:
    rv = fail_mdb(l, rc, "remove key", NULL);
abort:
    txn_abort(l, txn);
    return rv;
}

static int lm_kv_list(struct dlog_meta_ops *m, const char *prefix, struct meta_kv **items,
                      size_t *count)
{
    struct lm *l = m->impl;
    struct meta_kv *out = NULL;
    size_t n = 0, cap = 0, plen;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    int rc, rv = 0;

    *items = NULL;
    *count = 0;
    if (prefix == NULL)
        prefix = "";
    plen = strlen(prefix);
    rc = txn_begin(l, MDB_RDONLY, &txn);
    if (rc != 0)
        return fail_mdb(l, rc, "list keys", NULL);
    rc = mdb_cursor_open(txn, l->kv, &cur);
    if (rc != 0)
        goto done;
    k.mv_size = plen;
    k.mv_data = (void *)prefix;
    for (rc = plen ? mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE)
                   : mdb_cursor_get(cur, &k, &v, MDB_FIRST);
         rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        const void *p;
        size_t len;
        struct meta_kv *e;

        if (k.mv_size < plen || memcmp(k.mv_data, prefix, plen) != 0)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct meta_kv *nv = realloc(out, nc * sizeof *nv);
            if (nv == NULL) {
                rv = DLOG_ENOMEM;
                break;
            }
            out = nv;
            cap = nc;
        }
        e = &out[n];
        bytes_init(&e->value);
        e->key = malloc(k.mv_size + 1);
        if (e->key == NULL) {
            rv = DLOG_ENOMEM;
            break;
        }
        n++;
        memcpy(e->key, k.mv_data, k.mv_size);
        e->key[k.mv_size] = '\0';
        if (kv_split(&v, &e->version, &p, &len) != 0) {
            rv = DLOG_ECORRUPT;
            break;
        }
        if (bytes_append(&e->value, p, len) != 0) {
            rv = DLOG_ENOMEM;
            break;
        }
    }
done:
    if (cur != NULL)
        mdb_cursor_close(cur);
    txn_abort(l, txn);
    if (rv == 0 && rc != 0 && rc != MDB_NOTFOUND)
        rv = fail_mdb(l, rc, "list keys", NULL);
    else if (rv != 0)
        rv = kv_fail(l, rv, "list keys under", prefix);
    if (rv == 0) {
        *items = out;
        *count = n;
        return 0;
    }
    meta_kv_list_free(out, n);
    return rv;
}

static int lm_revision(struct dlog_meta_ops *m, uint64_t *rev)
{
    struct lm *l = m->impl;
    MDB_txn *txn;
    int rc = txn_begin(l, MDB_RDONLY, &txn);

    if (rc != 0)
        return fail_mdb(l, rc, "revision", NULL);
    rc = get_rev(l, txn, rev);
    txn_abort(l, txn);
    return rc != 0 ? fail_mdb(l, rc, "revision", NULL) : 0;
}

static void lm_close(struct dlog_meta_ops *m)
{
    struct lm *l;

    if (m == NULL)
        return;
    l = m->impl;
    mdb_env_close(l->env);
    pthread_rwlock_destroy(&l->resize);
    pthread_mutex_destroy(&l->errmu);
    free(l);
}

static void set_err(char *errmsg, const char *dir, const char *why)
{
    if (errmsg != NULL)
        errmsg_printf(errmsg, "metadata store %s: %s", dir, why);
}

int meta_lmdb_open(const char *dir, uint64_t map_size, struct dlog_meta_ops **out,
                   char *errmsg)
{
    struct lm *l;
    MDB_txn *txn;
    int rc, rv, dead = 0;

    *out = NULL;
    if (dir == NULL) {
        set_err(errmsg, "(null)", "no directory given");
        return DLOG_EINVAL;
    }
    l = calloc(1, sizeof *l);
    if (l == NULL) {
        set_err(errmsg, dir, dlog_strerror(DLOG_ENOMEM));
        return DLOG_ENOMEM;
    }
    if (pthread_rwlock_init(&l->resize, NULL) != 0) {
        free(l);
        set_err(errmsg, dir, "cannot create a lock");
        return DLOG_ENOMEM;
    }
    if (pthread_mutex_init(&l->errmu, NULL) != 0) {
        pthread_rwlock_destroy(&l->resize);
        free(l);
        set_err(errmsg, dir, "cannot create a lock");
        return DLOG_ENOMEM;
    }
    if (map_size == 0)
        map_size = DEFAULT_MAP_SIZE;
    else if (map_size > MAX_MAP_SIZE)
        map_size = MAX_MAP_SIZE;

    rc = mdb_env_create(&l->env);
    if (rc != 0) {
        l->env = NULL;
        goto fail_mdb;
    }
    if ((rc = mdb_env_set_maxdbs(l->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(l->env, (size_t)map_size)) != 0)
        goto fail_mdb;
    rc = mdb_env_open(l->env, dir, MDB_NOTLS, 0644);
    if (rc == ENOENT || rc == ENOTDIR) {
        rv = DLOG_ENOTDIR;
        set_err(errmsg, dir, mdb_strerror(rc));
        goto err;
    }
    if (rc != 0)
        goto fail_mdb;
    /* Free the reader slots of processes that died inside a transaction. */
    rc = mdb_reader_check(l->env, &dead);
    if (rc != 0)
        goto fail_mdb;
    /* Create the named databases (a write txn; other openers wait their turn). */
    rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc != 0)
        goto fail_mdb;
    if ((rc = mdb_dbi_open(txn, "streams", MDB_CREATE, &l->streams)) != 0 ||
        (rc = mdb_dbi_open(txn, "counters", MDB_CREATE, &l->counters)) != 0 ||
        (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &l->kv)) != 0) {
        mdb_txn_abort(txn);
        goto fail_mdb;
    }
    rc = mdb_txn_commit(txn);
    if (rc != 0)
        goto fail_mdb;

    l->ops.version = META_OPS_VERSION;
    l->ops.impl = l;
    l->ops.create = lm_create;
    l->ops.get = lm_get;
    l->ops.list = lm_list;
    l->ops.update = lm_update;
    l->ops.remove = lm_remove;
    l->ops.close = lm_close;
    l->ops.kv_get = lm_kv_get;
    l->ops.kv_put = lm_kv_put;
    l->ops.kv_remove = lm_kv_remove;
    l->ops.kv_list = lm_kv_list;
    l->ops.revision = lm_revision;
    *out = &l->ops;
    return 0;

fail_mdb:
    rv = xlate(rc);
    set_err(errmsg, dir, mdb_strerror(rc));
err:
    if (l->env != NULL)
        mdb_env_close(l->env);
    pthread_mutex_destroy(&l->errmu);
    pthread_rwlock_destroy(&l->resize);
    free(l);
    return rv;
}
