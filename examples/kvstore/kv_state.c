/*
 * kv_state — opening the LMDB keyspace, and apply. See kv_state.h.
 * Snapshots are in kv_snapshot.c, reads in kv_read.c.
 *
 * Determinism (DESIGN.md invariant 7): apply reads nothing but the record
 * and the state. Time comes from the command (now_ms, expire_at_ms, both
 * set by the proposer); limits are compile-time constants; every data
 * dependent failure (not an integer, overflow, too long) is a reply, not a
 * skipped record. Only local faults (LMDB I/O, out of memory) make apply
 * return an error, and then the replica stops instead of diverging.
 */
#include "kv_state.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "kv_cmd.h"
#include "kv_state_int.h"
#include "resp.h"

/* ------------------------------------------------------------------ open */

/* Writes a message into errmsg (DLOG_ERRMSG_LEN bytes), cut if too long. */
static void errf(char *errmsg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void errf(char *errmsg, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errmsg, DLOG_ERRMSG_LEN, fmt, ap);
    va_end(ap);
}

static int open_env(struct kv_state *s, const struct kv_state_options *o, char *errmsg)
{
    MDB_txn *txn = NULL;
    unsigned flags =
        MDB_NOTLS | MDB_NORDAHEAD | (o->sync_always ? 0 : MDB_NOSYNC | MDB_WRITEMAP);
    int rc;

    if ((rc = mdb_env_create(&s->env)) != 0 ||
        (rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, o->map_size ? o->map_size : (64ULL << 30))) !=
            0 ||
        (rc = mdb_env_open(s->env, s->dir, flags, 0644)) != 0) {
        errf(errmsg, "lmdb %s: %s", s->dir, mdb_strerror(rc));
        goto err;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0 ||
        (rc = mdb_dbi_open(txn, "kv", MDB_CREATE, &s->kv)) != 0 ||
        (rc = mdb_dbi_open(txn, "ttl", MDB_CREATE, &s->ttl)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &s->meta)) != 0) {
        errf(errmsg, "lmdb %s: %s", s->dir, mdb_strerror(rc));
        goto err;
    }
    /* The state belongs to one stream: refuse another one's. */
    MDB_val k = mval(META_IDENT, strlen(META_IDENT)), v;
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == 0 &&
        (v.mv_size != strlen(o->ident) || memcmp(v.mv_data, o->ident, v.mv_size) != 0)) {
        errf(errmsg, "%s holds the state of stream '%.*s', not '%s'", s->dir,
             (int)(v.mv_size > 200 ? 200 : v.mv_size), (char *)v.mv_data, o->ident);
        mdb_txn_abort(txn);
        mdb_env_close(s->env);
        s->env = NULL;
        return DLOG_EINVAL;
    }
    if (rc == MDB_NOTFOUND) {
        v = mval(o->ident, strlen(o->ident));
        rc = mdb_put(txn, s->meta, &k, &v, 0);
    }
    /* A restore that was cut short leaves a partial keyspace: empty it, so
     * that the framework (seeing no applied DLSN) restores again. */
    MDB_val rk = mval(META_RESTORING, strlen(META_RESTORING));
    if (rc == 0 && (rc = mdb_get(txn, s->meta, &rk, &v)) == 0) {
        MDB_val ak = mval(META_APPLIED, strlen(META_APPLIED));
        if ((rc = mdb_drop(txn, s->kv, 0)) == 0 && (rc = mdb_drop(txn, s->ttl, 0)) == 0 &&
            ((rc = mdb_del(txn, s->meta, &ak, NULL)) == 0 || rc == MDB_NOTFOUND)) {
            rc = mdb_del(txn, s->meta, &rk, NULL);
        }
    } else if (rc == MDB_NOTFOUND) {
        rc = 0;
    }
    if (rc != 0 || (rc = mdb_txn_commit(txn)) != 0) {
        txn = NULL;
        errf(errmsg, "lmdb %s: %s", s->dir, mdb_strerror(rc));
        goto err;
    }
    txn = NULL;
    if ((rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn)) != 0) {
        errf(errmsg, "lmdb %s: %s", s->dir, mdb_strerror(rc));
        goto err;
    }
    mdb_txn_reset(s->rtxn);
    return 0;
err:
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    if (s->env != NULL) {
        mdb_env_close(s->env);
        s->env = NULL;
    }
    return from_mdb(rc) == DLOG_ECORRUPT ? DLOG_ECORRUPT : from_mdb(rc);
}

int kv_state_open(const struct kv_state_options *o, struct kv_state **out, int *recovered,
                  char *errmsg)
{
    struct kv_state *s = calloc(1, sizeof(*s));
    int rc;

    *out = NULL;
    *recovered = 0;
    errmsg[0] = '\0';
    if (s == NULL) {
        errf(errmsg, "out of memory");
        return DLOG_ENOMEM;
    }
    if (mkdir(o->dir, 0755) != 0 && errno != EEXIST) {
        errf(errmsg, "mkdir %s: %s", o->dir, strerror(errno));
        free(s);
        return DLOG_ENOTDIR;
    }
    if ((size_t)snprintf(s->dir, sizeof(s->dir), "%s/state", o->dir) >= sizeof(s->dir)) {
        errf(errmsg, "data directory path too long");
        free(s);
        return DLOG_EINVAL;
    }
    if (mkdir(s->dir, 0755) != 0 && errno != EEXIST) {
        errf(errmsg, "mkdir %s: %s", s->dir, strerror(errno));
        free(s);
        return DLOG_ENOTDIR;
    }
    rc = open_env(s, o, errmsg);
    if (rc == DLOG_ECORRUPT) {
        /* Recovery path for MDB_NOSYNC after a machine crash: keep the
         * damaged environment for inspection, start empty, and let the
         * framework restore a snapshot and replay the stream. */
        char aside[4200];
        snprintf(aside, sizeof(aside), "%s.corrupt.%lld", s->dir, (long long)time(NULL));
        if (rename(s->dir, aside) != 0 || mkdir(s->dir, 0755) != 0) {
            errf(errmsg, "cannot move corrupt %s aside: %s", s->dir, strerror(errno));
            free(s);
            return DLOG_ECORRUPT;
        }
        *recovered = 1;
        rc = open_env(s, o, errmsg);
    }
    if (rc != 0) {
        free(s);
        return rc;
    }
    *out = s;
    return 0;
}

void kv_state_close(struct kv_state *s)
{
    if (s == NULL) {
        return;
    }
    if (s->rtxn != NULL) {
        mdb_txn_abort(s->rtxn);
    }
    mdb_env_sync(s->env, 1);
    mdb_env_close(s->env);
    free(s);
}

int kv_state_sync(struct kv_state *s)
{
    uint64_t d = atomic_load(&s->dirty);
    if (d == 0) {
        return 0;
    }
    int rc = mdb_env_sync(s->env, 1);
    if (rc == 0) {
        atomic_fetch_sub(&s->dirty, d);
    }
    return from_mdb(rc);
}

void kv_state_stats(struct kv_state *s, struct kv_state_stats *out)
{
    out->applies = atomic_load(&s->applies);
    out->apply_errors = atomic_load(&s->apply_errors);
    out->restores = atomic_load(&s->restores);
    out->snapshots = atomic_load(&s->snapshots);
}

/* ------------------------------------------------------------------ apply */

/* The live value of key in txn (expired counts as missing). */
static int get_live(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                    uint64_t now, struct val *out, int *had_expired)
{
    MDB_val k = mval(key->p, key->len), v;
    int rc = mdb_get(txn, s->kv, &k, &v);
    *had_expired = 0;
    if (rc != 0) {
        return rc;
    }
    if (decode_val(&v, out) != 0) {
        return MDB_CORRUPTED;
    }
    if (expired(out->expire, now)) {
        *had_expired = 1;
        return MDB_NOTFOUND;
    }
    return 0;
}

int kv_state_ttl_index(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                       uint64_t expire, int add)
{
    unsigned char buf[8 + KV_MAX_KEY];
    put_be64(buf, expire);
    memcpy(buf + 8, key->p, key->len);
    MDB_val k = mval(buf, 8 + key->len), v = mval("", 0);
    int rc = add ? mdb_put(txn, s->ttl, &k, &v, 0) : mdb_del(txn, s->ttl, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Removes key (whose stored expiry is old_expire) from kv and ttl. */
static int del_key(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                   uint64_t old_expire)
{
    MDB_val k = mval(key->p, key->len);
    int rc = mdb_del(txn, s->kv, &k, NULL);
    if (rc == 0 && old_expire != 0) {
        rc = kv_state_ttl_index(s, txn, key, old_expire, 0);
    }
    return rc;
}

/*
 * Stores key = a ++ b with expiry expire, replacing a value whose expiry
 * was old_expire (0: none or no old value). a and b may point into the map
 * (the old value): MDB_RESERVE is not used when they might.
 */
static int put_key(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                   uint64_t expire, uint64_t old_expire, const void *a, size_t alen,
                   const void *b, size_t blen)
{
    int rc = 0;
    char *tmp = malloc(8 + alen + blen);
    if (tmp == NULL) {
        return ENOMEM;
    }
    put_le64((unsigned char *)tmp, expire);
    if (alen) {
        memcpy(tmp + 8, a, alen);
    }
    if (blen) {
        memcpy(tmp + 8 + alen, b, blen);
    }
    if (old_expire != 0 && old_expire != expire) {
        rc = kv_state_ttl_index(s, txn, key, old_expire, 0);
    }
    if (rc == 0 && expire != 0 && expire != old_expire) {
        rc = kv_state_ttl_index(s, txn, key, expire, 1);
    }
    if (rc == 0) {
        MDB_val k = mval(key->p, key->len), v = mval(tmp, 8 + alen + blen);
        rc = mdb_put(txn, s->kv, &k, &v, 0);
    }
    free(tmp);
    return rc;
}

/*
 * Looks key up for a write: *found 1 with *cur when live; an expired value
 * is deleted on the way (deterministic: "now" is the command's). *old_exp
 * is the expiry still stored for key afterwards (0 when none).
 */
static int lookup_for_write(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                            uint64_t now, struct val *cur, int *found, uint64_t *old_exp)
{
    int had_expired = 0;
    int rc = get_live(s, txn, key, now, cur, &had_expired);
    *found = 0;
    *old_exp = 0;
    if (rc == 0) {
        *found = 1;
        *old_exp = cur->expire;
        return 0;
    }
    if (rc == MDB_NOTFOUND && had_expired) {
        return del_key(s, txn, key, cur->expire);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int key_ok(const struct kv_arg *k)
{
    return k->len <= KV_MAX_KEY;
}

/* The value of an INCRBY target, Redis's rules (string2ll on the value). */
static int value_ll(const struct val *v, long long *out)
{
    return resp_parse_ll(v->p, v->len, out);
}

/*
 * Executes c in txn, writing the Redis reply into res. Returns 0 (also for
 * a rejected command, whose reply is an error) or an LMDB error code.
 * *rejected is set when the reply is an error.
 */
static int execute(struct kv_state *s, MDB_txn *txn, const struct kv_cmd *c,
                   struct dlog_buf *res, int *rejected)
{
    struct val cur;
    int found, rc = 0;
    uint64_t old_exp;
    const uint64_t now = c->now_ms;

    *rejected = 0;
    for (size_t i = 0; i < c->nargs; i++) {
        /* every argument is a key except values (odd ones of 2-arg ops) */
        int is_key = c->op == KV_OP_DEL || i % 2 == 0;
        if (is_key && !key_ok(&c->args[i])) {
            *rejected = 1;
            return resp_add_errorf(res, "ERR key is longer than %d bytes", KV_MAX_KEY)
                       ? ENOMEM
                       : 0;
        }
    }

    switch (c->op) {
    case KV_OP_SET:
    case KV_OP_GETSET: {
        const struct kv_arg *key = &c->args[0], *val = &c->args[1];
        if ((rc = lookup_for_write(s, txn, key, now, &cur, &found, &old_exp)) != 0) {
            return rc;
        }
        if ((c->flags & KV_F_NX) && found) {
            return resp_add_nil(res) ? ENOMEM : 0;
        }
        if ((c->flags & KV_F_XX) && !found) {
            return resp_add_nil(res) ? ENOMEM : 0;
        }
        if (c->op == KV_OP_GETSET) {
            /* The reply copies the old value before put_key replaces it. */
            rc = found ? resp_add_bulk(res, cur.p, cur.len) : resp_add_nil(res);
            if (rc != 0) {
                return ENOMEM;
            }
        }
        uint64_t exp = (c->flags & KV_F_EXPIRE) ? c->expire_at_ms : 0;
        if ((rc = put_key(s, txn, key, exp, old_exp, val->p, val->len, NULL, 0)) != 0) {
            return rc;
        }
        if (c->op == KV_OP_SET) {
            return resp_add_status(res, "OK") ? ENOMEM : 0;
        }
        return 0;
    }
    case KV_OP_APPEND: {
        const struct kv_arg *key = &c->args[0], *val = &c->args[1];
        if ((rc = lookup_for_write(s, txn, key, now, &cur, &found, &old_exp)) != 0) {
            return rc;
        }
        size_t have = found ? cur.len : 0;
        if (have + val->len > KV_MAX_VALUE) {
            *rejected = 1;
            return resp_add_error(res, "ERR string exceeds maximum allowed size "
                                       "(proto-max-bulk-len)")
                       ? ENOMEM
                       : 0;
        }
        rc = put_key(s, txn, key, old_exp, old_exp, found ? cur.p : NULL, have, val->p,
                     val->len);
        if (rc != 0) {
            return rc;
        }
        return resp_add_int(res, (long long)(have + val->len)) ? ENOMEM : 0;
    }
    case KV_OP_INCRBY: {
        const struct kv_arg *key = &c->args[0];
        long long v = 0;
        if ((rc = lookup_for_write(s, txn, key, now, &cur, &found, &old_exp)) != 0) {
            return rc;
        }
        if (found && !value_ll(&cur, &v)) {
            *rejected = 1;
            return resp_add_error(res, "ERR value is not an integer or out of range")
                       ? ENOMEM
                       : 0;
        }
        if ((c->delta < 0 && v < 0 && c->delta < LLONG_MIN - v) ||
            (c->delta > 0 && v > 0 && c->delta > LLONG_MAX - v)) {
            *rejected = 1;
            return resp_add_error(res, "ERR increment or decrement would overflow")
                       ? ENOMEM
                       : 0;
        }
        v += c->delta;
        char num[32];
        int n = snprintf(num, sizeof(num), "%lld", v);
        if ((rc = put_key(s, txn, key, old_exp, old_exp, num, (size_t)n, NULL, 0)) != 0) {
            return rc;
        }
        return resp_add_int(res, v) ? ENOMEM : 0;
    }
    case KV_OP_DEL: {
        long long n = 0;
        for (size_t i = 0; i < c->nargs; i++) {
            rc = lookup_for_write(s, txn, &c->args[i], now, &cur, &found, &old_exp);
            if (rc == 0 && found) {
                rc = del_key(s, txn, &c->args[i], old_exp);
                n++;
            }
            if (rc != 0) {
                return rc;
            }
        }
        return resp_add_int(res, n) ? ENOMEM : 0;
    }
    case KV_OP_MSET:
        for (size_t i = 0; i + 1 < c->nargs; i += 2) {
            rc = lookup_for_write(s, txn, &c->args[i], now, &cur, &found, &old_exp);
            if (rc == 0) {
                rc = put_key(s, txn, &c->args[i], 0, old_exp, c->args[i + 1].p,
                             c->args[i + 1].len, NULL, 0);
            }
            if (rc != 0) {
                return rc;
            }
        }
        return resp_add_status(res, "OK") ? ENOMEM : 0;
    case KV_OP_FLUSHDB:
        if ((rc = mdb_drop(txn, s->kv, 0)) != 0 || (rc = mdb_drop(txn, s->ttl, 0)) != 0) {
            return rc;
        }
        return resp_add_status(res, "OK") ? ENOMEM : 0;
    case KV_OP_PURGE: {
        /* Delete every key whose expiry is at or before the proposer's now:
         * walk the ttl index from its start. */
        MDB_cursor *cur_ttl;
        MDB_val k, v;
        long long n = 0;
        if ((rc = mdb_cursor_open(txn, s->ttl, &cur_ttl)) != 0) {
            return rc;
        }
        while ((rc = mdb_cursor_get(cur_ttl, &k, &v, MDB_FIRST)) == 0) {
            if (k.mv_size < 8 || get_be64(k.mv_data) > now) {
                break;
            }
            struct kv_arg key = {(const char *)k.mv_data + 8, k.mv_size - 8};
            MDB_val kk = mval(key.p, key.len);
            if ((rc = mdb_del(txn, s->kv, &kk, NULL)) != 0 && rc != MDB_NOTFOUND) {
                break;
            }
            if ((rc = mdb_cursor_del(cur_ttl, 0)) != 0) {
                break;
            }
            n++;
        }
        mdb_cursor_close(cur_ttl);
        if (rc != 0 && rc != MDB_NOTFOUND) {
            return rc;
        }
        return resp_add_int(res, n) ? ENOMEM : 0;
    }
    default:
        *rejected = 1;
        return resp_add_error(res, "ERR unknown command encoding") ? ENOMEM : 0;
    }
}

int kv_state_put_applied(struct kv_state *s, MDB_txn *txn, struct dlog_dlsn dlsn)
{
    unsigned char d[20];
    put_le64(d, dlsn.seg);
    put_le64(d + 8, dlsn.entry);
    for (int i = 0; i < 4; i++) {
        d[16 + i] = (unsigned char)(dlsn.slot >> (8 * i));
    }
    MDB_val k = mval(META_APPLIED, strlen(META_APPLIED)), v = mval(d, sizeof(d));
    return mdb_put(txn, s->meta, &k, &v, 0);
}

static int kv_apply(void *app, const struct dlog_record *rec, struct dlog_buf *result)
{
    struct kv_state *s = app;
    struct kv_cmd c;
    MDB_txn *txn = NULL;
    int rejected = 0;
    int rc = kv_cmd_decode(rec->payload, rec->len, &c);

    if (rc == DLOG_ENOMEM) {
        return rc;
    }
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0) {
        kv_cmd_free(&c);
        return from_mdb(rc);
    }
    if (c.op == 0) {
        /* Not a command this version understands: every replica rejects it
         * the same way and moves on. */
        rejected = 1;
        rc = resp_add_error(result, "ERR malformed command record") ? ENOMEM : 0;
    } else {
        rc = execute(s, txn, &c, result, &rejected);
    }
    if (rc == 0) {
        rc = kv_state_put_applied(s, txn, rec->dlsn);
    }
    kv_cmd_free(&c);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return from_mdb(rc);
    }
    if ((rc = mdb_txn_commit(txn)) != 0) {
        return from_mdb(rc);
    }
    atomic_fetch_add(&s->applies, 1);
    atomic_fetch_add(&s->dirty, 1);
    if (rejected) {
        atomic_fetch_add(&s->apply_errors, 1);
    }
    return 0;
}

static int kv_applied_dlsn(void *app, struct dlog_dlsn *out)
{
    struct kv_state *s = app;
    MDB_txn *txn;
    MDB_val k = mval(META_APPLIED, strlen(META_APPLIED)), v;
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        return from_mdb(rc);
    }
    rc = mdb_get(txn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = DLOG_DLSN_HEAD;
        rc = 0;
    } else if (rc == 0) {
        rc = decode_dlsn(&v, out);
    } else {
        rc = from_mdb(rc);
    }
    mdb_txn_abort(txn);
    return rc;
}

const struct dlog_sm_callbacks kv_state_callbacks = {
    .version = DLOG_SM_CALLBACKS_VERSION,
    .apply = kv_apply,
    .snapshot = kv_state_snapshot_cb,
    .restore = kv_state_restore_cb,
    .applied_dlsn = kv_applied_dlsn,
};
