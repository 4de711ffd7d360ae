/*
 * kv_snapshot — the snapshot and restore callbacks of dlog-kv: they stream
 * the whole LMDB keyspace (shared snapshots, to bootstrap a new or rebuilt
 * replica; see sm.h's on-disk mode).
 */
#include <stdlib.h>
#include <string.h>

#include "kv_state_int.h"

#define SNAP_MAGIC    "DLKVSNP1"
#define SNAP_END      0xffffffffu
#define RESTORE_BATCH 10000 /* keys per LMDB transaction while restoring */

/*
 * Snapshot format: "DLKVSNP1", then per key: u32 klen, u32 vlen (LE), key,
 * stored value (expiry header included); then u32 0xffffffff and the u64
 * key count. Written through a 64 KiB buffer.
 */
struct snapw {
    struct dlog_snapshot_writer *w;
    unsigned char buf[65536];
    size_t n;
};

static int sw_put(struct snapw *sw, const void *p, size_t n)
{
    if (sw->n + n > sizeof(sw->buf)) {
        int rc = dlog_snapshot_write(sw->w, sw->buf, sw->n);
        sw->n = 0;
        if (rc != 0) {
            return rc;
        }
        if (n > sizeof(sw->buf)) {
            return dlog_snapshot_write(sw->w, p, n);
        }
    }
    memcpy(sw->buf + sw->n, p, n);
    sw->n += n;
    return 0;
}

int kv_state_snapshot_cb(void *app, struct dlog_snapshot_writer *w)
{
    struct kv_state *s = app;
    struct snapw *sw = malloc(sizeof(*sw));
    MDB_txn *txn = NULL;
    MDB_cursor *cur = NULL;
    MDB_val k, v;
    uint64_t count = 0;
    int rc;

    if (sw == NULL) {
        return DLOG_ENOMEM;
    }
    sw->w = w;
    sw->n = 0;
    if ((rc = from_mdb(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))) != 0 ||
        (rc = from_mdb(mdb_cursor_open(txn, s->kv, &cur))) != 0) {
        goto out;
    }
    if ((rc = sw_put(sw, SNAP_MAGIC, 8)) != 0) {
        goto out;
    }
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        unsigned char hdr[8];
        if (v.mv_size > UINT32_MAX - 1) {
            rc = DLOG_ETOOBIG;
            goto out;
        }
        uint32_t kl = (uint32_t)k.mv_size, vl = (uint32_t)v.mv_size;
        for (int i = 0; i < 4; i++) {
            hdr[i] = (unsigned char)(kl >> (8 * i));
            hdr[4 + i] = (unsigned char)(vl >> (8 * i));
        }
        if ((rc = sw_put(sw, hdr, 8)) != 0 || (rc = sw_put(sw, k.mv_data, kl)) != 0 ||
            (rc = sw_put(sw, v.mv_data, vl)) != 0) {
            goto out;
        }
        count++;
    }
    if (mrc != MDB_NOTFOUND) {
        rc = from_mdb(mrc);
        goto out;
    }
    unsigned char tail[12] = {0xff, 0xff, 0xff, 0xff};
    put_le64(tail + 4, count);
    if ((rc = sw_put(sw, tail, sizeof(tail))) == 0 && sw->n > 0) {
        rc = dlog_snapshot_write(w, sw->buf, sw->n);
    }
    if (rc == 0) {
        atomic_fetch_add(&s->snapshots, 1);
    }
out:
    if (cur != NULL) {
        mdb_cursor_close(cur);
    }
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    free(sw);
    return rc;
}

/* Starts a restore: empties the keyspace and marks it half-restored. */
static int restore_begin(struct kv_state *s)
{
    MDB_txn *txn;
    MDB_val ak = mval(META_APPLIED, strlen(META_APPLIED));
    MDB_val rk = mval(META_RESTORING, strlen(META_RESTORING)), one = mval("1", 1);
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc != 0) {
        return from_mdb(rc);
    }
    if ((rc = mdb_drop(txn, s->kv, 0)) == 0 && (rc = mdb_drop(txn, s->ttl, 0)) == 0 &&
        ((rc = mdb_del(txn, s->meta, &ak, NULL)) == 0 || rc == MDB_NOTFOUND) &&
        (rc = mdb_put(txn, s->meta, &rk, &one, 0)) == 0) {
        return from_mdb(mdb_txn_commit(txn));
    }
    mdb_txn_abort(txn);
    return from_mdb(rc);
}

int kv_state_restore_cb(void *app, struct dlog_snapshot_reader *r)
{
    struct kv_state *s = app;
    MDB_txn *txn = NULL;
    unsigned char magic[8], hdr[8];
    char *buf = NULL;
    size_t bufcap = 0;
    uint64_t count = 0, batch = 0;
    int rc;

    if ((rc = dlog_snapshot_read_full(r, magic, 8)) != 0) {
        return rc == DLOG_EEOF ? DLOG_ECORRUPT : rc;
    }
    if (memcmp(magic, SNAP_MAGIC, 8) != 0) {
        return DLOG_ECORRUPT;
    }
    if ((rc = restore_begin(s)) != 0) {
        return rc;
    }
    for (;;) {
        if ((rc = dlog_snapshot_read_full(r, hdr, 4)) != 0) {
            goto fail;
        }
        uint32_t kl = (uint32_t)hdr[0] | (uint32_t)hdr[1] << 8 | (uint32_t)hdr[2] << 16 |
                      (uint32_t)hdr[3] << 24;
        if (kl == SNAP_END) {
            break;
        }
        if ((rc = dlog_snapshot_read_full(r, hdr + 4, 4)) != 0) {
            goto fail;
        }
        uint32_t vl = (uint32_t)hdr[4] | (uint32_t)hdr[5] << 8 | (uint32_t)hdr[6] << 16 |
                      (uint32_t)hdr[7] << 24;
        if (kl == 0 || kl > KV_MAX_KEY || vl < 8 || vl > KV_MAX_VALUE + 8) {
            rc = DLOG_ECORRUPT;
            goto fail;
        }
        if ((size_t)kl + vl > bufcap) {
            char *nb = realloc(buf, (size_t)kl + vl);
            if (nb == NULL) {
                rc = DLOG_ENOMEM;
                goto fail;
            }
            buf = nb;
            bufcap = (size_t)kl + vl;
        }
        if ((rc = dlog_snapshot_read_full(r, buf, (size_t)kl + vl)) != 0) {
            goto fail;
        }
        if (txn == NULL && (rc = from_mdb(mdb_txn_begin(s->env, NULL, 0, &txn))) != 0) {
            goto fail;
        }
        struct kv_arg key = {buf, kl};
        uint64_t exp = get_le64((unsigned char *)buf + kl);
        MDB_val k = mval(buf, kl), v = mval(buf + kl, vl);
        if ((rc = from_mdb(mdb_put(txn, s->kv, &k, &v, 0))) != 0 ||
            (exp != 0 &&
             (rc = from_mdb(kv_state_ttl_index(s, txn, &key, exp, 1))) != 0)) {
            goto fail;
        }
        count++;
        if (++batch == RESTORE_BATCH) {
            rc = from_mdb(mdb_txn_commit(txn));
            txn = NULL;
            batch = 0;
            if (rc != 0) {
                goto fail;
            }
        }
    }
    if ((rc = dlog_snapshot_read_full(r, hdr, 8)) != 0) {
        goto fail;
    }
    if (get_le64(hdr) != count) {
        rc = DLOG_ECORRUPT;
        goto fail;
    }
    if (txn == NULL && (rc = from_mdb(mdb_txn_begin(s->env, NULL, 0, &txn))) != 0) {
        goto fail;
    }
    /* Done: the state is the snapshot's, at the snapshot's DLSN (stored in
     * the same transaction that clears the "restoring" mark). */
    MDB_val rk = mval(META_RESTORING, strlen(META_RESTORING));
    if ((rc = from_mdb(mdb_del(txn, s->meta, &rk, NULL))) != 0 ||
        (rc = from_mdb(kv_state_put_applied(s, txn, dlog_snapshot_dlsn(r)))) != 0) {
        goto fail;
    }
    rc = from_mdb(mdb_txn_commit(txn));
    txn = NULL;
    free(buf);
    if (rc == 0) {
        atomic_fetch_add(&s->restores, 1);
        atomic_fetch_add(&s->dirty, 1);
    }
    return rc;
fail:
    /* The "restoring" mark stays: the next open empties the keyspace. */
    if (txn != NULL) {
        mdb_txn_abort(txn);
    }
    free(buf);
    return rc == DLOG_EEOF ? DLOG_ECORRUPT : rc;
}
