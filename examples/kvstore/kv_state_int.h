/*
 * kv_state_int.h — what kv_state.c, kv_snapshot.c and kv_read.c share:
 * the state's struct, its LMDB layout (kv_state.h) and small helpers.
 * Private to dlog-kv.
 */
#ifndef KV_STATE_INT_H
#define KV_STATE_INT_H

#include <errno.h>
#include <lmdb.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "kv_cmd.h"
#include "kv_state.h"

struct kv_state {
    MDB_env *env;
    MDB_dbi kv, ttl, meta;
    MDB_txn *rtxn;  /* the reader's view (kv_read_*), reset between reads */
    int rtxn_live;  /* rtxn is begun (not reset) */
    char dir[4096]; /* the environment's directory */
    atomic_uint_fast64_t applies, apply_errors, restores, snapshots;
    atomic_uint_fast64_t dirty; /* commits since the last sync */
};

#define META_APPLIED   "applied"
#define META_IDENT     "ident"
#define META_RESTORING "restoring"

/* ------------------------------------------------------------------ helpers */

/* LMDB error -> dlog_err (the boundary rule of STYLE.md). */
static inline int from_mdb(int rc)
{
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return DLOG_ENOTFOUND;
    case MDB_MAP_FULL:
    case MDB_TXN_FULL:
        return DLOG_ENOSPC;
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
        return DLOG_ECORRUPT;
    case ENOMEM:
        return DLOG_ENOMEM;
    case ENOSPC:
        return DLOG_ENOSPC;
    default:
        return DLOG_EIO;
    }
}

static inline void put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (8 * i));
    }
}
static inline uint64_t get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v |= (uint64_t)p[i] << (8 * i);
    }
    return v;
}
static inline void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) {
        p[i] = (unsigned char)(v >> (56 - 8 * i));
    }
}
static inline uint64_t get_be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) {
        v = (v << 8) | p[i];
    }
    return v;
}

static inline MDB_val mval(const void *p, size_t n)
{
    MDB_val v = {n, (void *)p};
    return v;
}

/* A stored value: the expiry header and the user's bytes. */
struct val {
    uint64_t expire; /* 0: none */
    const char *p;
    size_t len;
};

static inline int decode_val(const MDB_val *v, struct val *out)
{
    if (v->mv_size < 8) {
        return DLOG_ECORRUPT;
    }
    out->expire = get_le64(v->mv_data);
    out->p = (const char *)v->mv_data + 8;
    out->len = v->mv_size - 8;
    return 0;
}

static inline int expired(uint64_t expire, uint64_t now)
{
    return expire != 0 && expire <= now;
}

static inline int decode_dlsn(const MDB_val *v, struct dlog_dlsn *out)
{
    const unsigned char *d = v->mv_data;
    if (v->mv_size != 20) {
        return DLOG_ECORRUPT;
    }
    out->seg = get_le64(d);
    out->entry = get_le64(d + 8);
    out->slot = (uint32_t)d[16] | (uint32_t)d[17] << 8 | (uint32_t)d[18] << 16 |
                (uint32_t)d[19] << 24;
    return 0;
}

/* Adds (add 1) or removes the ttl index entry of key expiring at expire. */
int kv_state_ttl_index(struct kv_state *s, MDB_txn *txn, const struct kv_arg *key,
                       uint64_t expire, int add);
/* Stores the applied DLSN in txn (with the state change it goes with). */
int kv_state_put_applied(struct kv_state *s, MDB_txn *txn, struct dlog_dlsn dlsn);
/* The sm.h snapshot and restore callbacks (kv_snapshot.c). */
int kv_state_snapshot_cb(void *app, struct dlog_snapshot_writer *w);
int kv_state_restore_cb(void *app, struct dlog_snapshot_reader *r);

#endif /* KV_STATE_INT_H */
