/*
 * kv_read — reads of the keyspace for the server's loop thread: one LMDB
 * read transaction (MDB_NOTLS), renewed for each read view. See kv_state.h.
 */
#include "kv_state_int.h"

int kv_read_begin(struct kv_state *s)
{
    if (s->rtxn_live) {
        return 0;
    }
    int rc = mdb_txn_renew(s->rtxn);
    if (rc != 0) {
        return from_mdb(rc);
    }
    s->rtxn_live = 1;
    return 0;
}

void kv_read_end(struct kv_state *s)
{
    if (s->rtxn_live) {
        mdb_txn_reset(s->rtxn);
        s->rtxn_live = 0;
    }
}

int kv_read_get(struct kv_state *s, uint64_t now_ms, const void *key, size_t klen,
                const void **val, size_t *len)
{
    struct val cur;
    MDB_val k = mval(key, klen), v;
    if (klen == 0 || klen > KV_MAX_KEY) {
        return DLOG_ENOTFOUND;
    }
    int rc = mdb_get(s->rtxn, s->kv, &k, &v);
    if (rc != 0) {
        return from_mdb(rc);
    }
    if ((rc = decode_val(&v, &cur)) != 0) {
        return rc;
    }
    if (expired(cur.expire, now_ms)) {
        return DLOG_ENOTFOUND;
    }
    *val = cur.p;
    *len = cur.len;
    return 0;
}

int kv_read_dbsize(struct kv_state *s, uint64_t *n)
{
    MDB_stat st;
    int rc = mdb_stat(s->rtxn, s->kv, &st);
    if (rc == 0) {
        *n = st.ms_entries;
    }
    return from_mdb(rc);
}

int kv_read_expires(struct kv_state *s, uint64_t *n)
{
    MDB_stat st;
    int rc = mdb_stat(s->rtxn, s->ttl, &st);
    if (rc == 0) {
        *n = st.ms_entries;
    }
    return from_mdb(rc);
}

int kv_read_applied(struct kv_state *s, struct dlog_dlsn *out)
{
    MDB_val k = mval(META_APPLIED, strlen(META_APPLIED)), v;
    int rc = mdb_get(s->rtxn, s->meta, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *out = DLOG_DLSN_HEAD;
        return 0;
    }
    return rc == 0 ? decode_dlsn(&v, out) : from_mdb(rc);
}

int kv_read_first_expiry(struct kv_state *s, uint64_t *out)
{
    MDB_cursor *cur;
    MDB_val k, v;
    int rc = mdb_cursor_open(s->rtxn, s->ttl, &cur);
    if (rc != 0) {
        return from_mdb(rc);
    }
    rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    *out = rc == 0 && k.mv_size >= 8 ? get_be64(k.mv_data) : 0;
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : from_mdb(rc);
}

int kv_read_keys(struct kv_state *s, uint64_t now_ms, const void *from, size_t fromlen,
                 kv_visit_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val k = mval(from, fromlen), v;
    int rc = mdb_cursor_open(s->rtxn, s->kv, &cur);
    if (rc != 0) {
        return from_mdb(rc);
    }
    if (from != NULL && fromlen > 0) {
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    } else {
        rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    }
    int ret = 0;
    for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        struct val val;
        if (decode_val(&v, &val) != 0) {
            ret = DLOG_ECORRUPT;
            break;
        }
        if (expired(val.expire, now_ms)) {
            continue;
        }
        if ((ret = fn(arg, k.mv_data, k.mv_size)) != 0) {
            break;
        }
    }
    mdb_cursor_close(cur);
    if (ret == 0 && rc != 0 && rc != MDB_NOTFOUND) {
        ret = from_mdb(rc);
    }
    return ret;
}
