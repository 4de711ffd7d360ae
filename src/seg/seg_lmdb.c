/*
 * The LMDB segment store ("file:DIR"): entries and segment states in one
 * LMDB environment, DIR/data. Several processes may open it at once; LMDB
 * serialises write transactions across them, which is what makes entry ids
 * unique and fencing atomic: the fence check and the append are in the
 * same write transaction. An append is acknowledged only after its
 * transaction is committed with LMDB's default (fully synced) flags.
 *
 * DBs:   "entries"  (stream u64be, seq u64be, entry u64be) -> entry bytes
 *        "segs"     (stream u64be, seq u64be) -> struct seg_info, 8 x u64be
 * After every change the doorbell in DIR/data/notify is rung, waking
 * tailing readers in every process.
 */
#include <errno.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/doorbell.h"
#include "seg/entry.h"
#include "seg/seg.h"

struct seg_lmdb {
    MDB_env *env;
    MDB_dbi entries;
    MDB_dbi segs;
    struct doorbell bell;
};

#define SEGREC_SIZE 80

static void seg_key(uint8_t k[16], uint64_t stream, uint64_t seq)
{
    put_u64be(k, stream);
    put_u64be(k + 8, seq);
}

static void entry_key(uint8_t k[24], uint64_t stream, uint64_t seq, uint64_t id)
{
    seg_key(k, stream, seq);
    put_u64be(k + 16, id);
}

static void info_encode(const struct seg_info *i, uint8_t *p)
{
    put_u64be(p, i->fence_epoch);
    put_u64be(p + 8, (uint64_t)i->sealed);
    put_u64be(p + 16, i->next_entry);
    put_u64be(p + 24, i->records);
    put_u64be(p + 32, i->bytes);
    put_u64be(p + 40, i->first_txid);
    put_u64be(p + 48, i->last_txid);
    put_u64be(p + 56, i->created_ms);
    put_u64be(p + 64, i->last_rec_entry);
    put_u64be(p + 72, i->last_rec_slot);
}

static int info_decode(const MDB_val *v, struct seg_info *i)
{
    const uint8_t *p = v->mv_data;
    if (v->mv_size != SEGREC_SIZE)
        return DLOG_ECORRUPT;
    i->fence_epoch = get_u64be(p);
    i->sealed = (int)get_u64be(p + 8);
    i->next_entry = get_u64be(p + 16);
    i->records = get_u64be(p + 24);
    i->bytes = get_u64be(p + 32);
    i->first_txid = get_u64be(p + 40);
    i->last_txid = get_u64be(p + 48);
    i->created_ms = get_u64be(p + 56);
    i->last_rec_entry = get_u64be(p + 64);
    i->last_rec_slot = (uint32_t)get_u64be(p + 72);
    return 0;
}

/* Translate an LMDB (or errno) code at the boundary. */
static int lmdb_err(struct dlog_seg_ops *s, int rc, const char *what)
{
    int code = DLOG_EIO;
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        code = DLOG_ENOSPC;
    else if (rc == ENOMEM)
        code = DLOG_ENOMEM;
    errmsg_printf(s->errmsg, "lmdb segment store: %s: %s", what, mdb_strerror(rc));
    return code;
}

static int get_info(MDB_txn *txn, struct seg_lmdb *l, uint64_t stream, uint64_t seq,
                    struct seg_info *out)
{
    uint8_t k[16];
    seg_key(k, stream, seq);
    MDB_val key = {sizeof k, k}, val;
    int rc = mdb_get(txn, l->segs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DLOG_ENOTFOUND;
    if (rc != 0)
        return rc;
    return info_decode(&val, out);
}

static int put_info(MDB_txn *txn, struct seg_lmdb *l, uint64_t stream, uint64_t seq,
                    const struct seg_info *i)
{
    uint8_t k[16], v[SEGREC_SIZE];
    seg_key(k, stream, seq);
    info_encode(i, v);
    MDB_val key = {sizeof k, k}, val = {sizeof v, v};
    return mdb_put(txn, l->segs, &key, &val, 0);
}

/* An error code of LMDB or the OS (positive errno, or LMDB's own negative
 * codes), as opposed to a dlog_err code (-1 .. -29). */
#define IS_LMDB_ERR(rv) ((rv) > 0 || ((rv) >= MDB_KEYEXIST && (rv) <= MDB_LAST_ERRCODE))

/* Runs fn inside a write txn; commits on 0, aborts otherwise. */
#define WITH_WRITE_TXN(s, l, txn, what, body)                                            \
    do {                                                                                 \
        int rc_ = mdb_txn_begin((l)->env, NULL, 0, &(txn));                              \
        if (rc_ != 0)                                                                    \
            return lmdb_err((s), rc_, what);                                             \
        int rv_ = (body);                                                                \
        if (IS_LMDB_ERR(rv_)) {                                                          \
            mdb_txn_abort(txn);                                                          \
            return lmdb_err((s), rv_, what);                                             \
        }                                                                                \
        if (rv_ < 0) {                                                                   \
            mdb_txn_abort(txn);                                                          \
            return rv_;                                                                  \
        }                                                                                \
        rc_ = mdb_txn_commit(txn);                                                       \
        if (rc_ != 0)                                                                    \
            return lmdb_err((s), rc_, what);                                             \
    } while (0)

static int do_open(MDB_txn *txn, struct seg_lmdb *l, uint64_t stream, uint64_t seq,
                   uint64_t epoch, uint64_t start_txid)
{
    struct seg_info i;
    int rv = get_info(txn, l, stream, seq, &i);
    if (rv != DLOG_ENOTFOUND)
        return rv;
    memset(&i, 0, sizeof i);
    i.fence_epoch = epoch;
    i.last_txid = start_txid;
    i.created_ms = clock_wall_ms();
    return put_info(txn, l, stream, seq, &i);
}

static int sl_open(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                   uint64_t start_txid)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    WITH_WRITE_TXN(s, l, txn, "open segment",
                   do_open(txn, l, stream, seq, epoch, start_txid));
    doorbell_ring(&l->bell);
    return 0;
}

static int check_writable(struct dlog_seg_ops *s, const struct seg_info *i,
                          uint64_t epoch, uint64_t stream, uint64_t seq)
{
    if (i->sealed) {
        errmsg_printf(s->errmsg, "segment %llu of stream %llu is sealed",
                      (unsigned long long)seq, (unsigned long long)stream);
        return DLOG_ESEALED;
    }
    if (epoch < i->fence_epoch) {
        errmsg_printf(s->errmsg, "epoch %llu is fenced by epoch %llu",
                      (unsigned long long)epoch, (unsigned long long)i->fence_epoch);
        return DLOG_EFENCED;
    }
    return 0;
}

static int do_append(struct dlog_seg_ops *s, MDB_txn *txn, struct seg_lmdb *l,
                     uint64_t stream, uint64_t seq, struct seg_append *a)
{
    struct seg_info i;
    int rv = get_info(txn, l, stream, seq, &i);
    if (rv == DLOG_ENOTFOUND)
        errmsg_printf(s->errmsg, "segment %llu of stream %llu not found",
                      (unsigned long long)seq, (unsigned long long)stream);
    if (rv != 0)
        return rv;
    rv = check_writable(s, &i, a->epoch, stream, seq);
    if (rv != 0)
        return rv;
    a->first_entry = i.next_entry;
    for (int n = 0; n < a->n; n++) {
        struct entry_hdr h;
        size_t len = a->entries[n].iov_len;
        rv = entry_parse_hdr(a->entries[n].iov_base, len, &h);
        if (rv != 0) {
            errmsg_printf(s->errmsg, "append: malformed entry header");
            return rv;
        }
        uint8_t k[24];
        entry_key(k, stream, seq, i.next_entry);
        MDB_val key = {sizeof k, k}, val = {len, NULL};
        int rc = mdb_put(txn, l->entries, &key, &val, MDB_RESERVE);
        if (rc != 0)
            return rc;
        memcpy(val.mv_data, a->entries[n].iov_base, len);
        uint64_t base = h.base_txid;
        if (a->flags & SEG_APPEND_AUTO_TXID) {
            base = (h.flags & ENTRY_F_CONT) ? i.last_txid : i.last_txid + 1;
            entry_set_base_txid(val.mv_data, len, base);
        } else if (base < i.last_txid) {
            errmsg_printf(s->errmsg, "txid %llu is below the stream's last txid %llu",
                          (unsigned long long)base, (unsigned long long)i.last_txid);
            return DLOG_ETXID;
        }
        uint64_t last = base + (h.last_txid - h.base_txid);
        if (n == 0)
            a->first_txid = base;
        if (i.records == 0)
            i.first_txid = base;
        i.records += (h.flags & ENTRY_F_CONT) ? 0 : h.count; /* a large record once */
        i.bytes += len;
        i.last_txid = last;
        if (!(h.flags & ENTRY_F_CONT)) {
            i.last_rec_entry = i.next_entry;
            i.last_rec_slot = h.count - 1;
        }
        i.next_entry++;
    }
    a->info = i;
    return put_info(txn, l, stream, seq, &i);
}

static int sl_append(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                     struct seg_append *a)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    WITH_WRITE_TXN(s, l, txn, "append", do_append(s, txn, l, stream, seq, a));
    doorbell_ring(&l->bell);
    return 0;
}

static int sl_read(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t from,
                   size_t max_bytes, seg_visit_fn visit, void *arg)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    struct seg_info i;
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return lmdb_err(s, rc, "read");
    int rv = get_info(txn, l, stream, seq, &i);
    if (rv != 0) {
        mdb_txn_abort(txn);
        return IS_LMDB_ERR(rv) ? lmdb_err(s, rv, "read") : rv;
    }
    rc = mdb_cursor_open(txn, l->entries, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return lmdb_err(s, rc, "read");
    }
    uint8_t k[24];
    entry_key(k, stream, seq, from);
    MDB_val key = {sizeof k, k}, val;
    int count = 0;
    size_t bytes = 0;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0) {
        const uint8_t *kp = key.mv_data;
        if (key.mv_size != 24 || memcmp(kp, k, 16) != 0)
            break;
        count++;
        bytes += val.mv_size;
        if (visit(arg, get_u64be(kp + 16), val.mv_data, val.mv_size) != 0 ||
            bytes >= max_bytes)
            break;
        rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return lmdb_err(s, rc, "read");
    return count;
}

static int sl_info(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq,
                   struct seg_info *out)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    int rc = mdb_txn_begin(l->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0)
        return lmdb_err(s, rc, "info");
    int rv = get_info(txn, l, stream, seq, out);
    mdb_txn_abort(txn);
    return IS_LMDB_ERR(rv) ? lmdb_err(s, rv, "info") : rv;
}

static int do_fence(MDB_txn *txn, struct seg_lmdb *l, uint64_t stream, uint64_t seq,
                    uint64_t epoch)
{
    struct seg_info i;
    int rv = get_info(txn, l, stream, seq, &i);
    if (rv != 0)
        return rv;
    if (epoch <= i.fence_epoch)
        return 0;
    i.fence_epoch = epoch;
    return put_info(txn, l, stream, seq, &i);
}

static int sl_fence(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    WITH_WRITE_TXN(s, l, txn, "fence", do_fence(txn, l, stream, seq, epoch));
    doorbell_ring(&l->bell);
    return 0;
}

static int do_seal(struct dlog_seg_ops *s, MDB_txn *txn, struct seg_lmdb *l,
                   uint64_t stream, uint64_t seq, uint64_t epoch, struct seg_info *out)
{
    struct seg_info i;
    int rv = get_info(txn, l, stream, seq, &i);
    if (rv != 0)
        return rv;
    if (epoch < i.fence_epoch) {
        errmsg_printf(s->errmsg, "seal: epoch %llu is fenced by epoch %llu",
                      (unsigned long long)epoch, (unsigned long long)i.fence_epoch);
        return DLOG_EFENCED;
    }
    if (out != NULL)
        *out = i;
    if (i.sealed)
        return 0;
    i.sealed = 1;
    if (out != NULL)
        *out = i;
    return put_info(txn, l, stream, seq, &i);
}

static int sl_seal(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq, uint64_t epoch,
                   struct seg_info *out)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    WITH_WRITE_TXN(s, l, txn, "seal", do_seal(s, txn, l, stream, seq, epoch, out));
    doorbell_ring(&l->bell);
    return 0;
}

static int do_remove(MDB_txn *txn, struct seg_lmdb *l, uint64_t stream, uint64_t seq)
{
    uint8_t k[24];
    seg_key(k, stream, seq);
    MDB_val key = {16, k};
    int rc = mdb_del(txn, l->segs, &key, NULL);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    MDB_cursor *cur;
    rc = mdb_cursor_open(txn, l->entries, &cur);
    if (rc != 0)
        return rc;
    entry_key(k, stream, seq, 0);
    MDB_val ek = {24, k}, val;
    rc = mdb_cursor_get(cur, &ek, &val, MDB_SET_RANGE);
    while (rc == 0 && ek.mv_size == 24 && memcmp(ek.mv_data, k, 16) == 0) {
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        rc = mdb_cursor_get(cur, &ek, &val, MDB_GET_CURRENT);
        if (rc == EINVAL) /* deleted the last item */
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int sl_remove(struct dlog_seg_ops *s, uint64_t stream, uint64_t seq)
{
    struct seg_lmdb *l = s->impl;
    MDB_txn *txn;
    WITH_WRITE_TXN(s, l, txn, "remove", do_remove(txn, l, stream, seq));
    doorbell_ring(&l->bell);
    return 0;
}

static uint32_t sl_notify_seq(struct dlog_seg_ops *s)
{
    struct seg_lmdb *l = s->impl;
    return doorbell_read(&l->bell);
}

static int sl_notify_wait(struct dlog_seg_ops *s, uint32_t seen, int timeout_ms)
{
    struct seg_lmdb *l = s->impl;
    return doorbell_wait(&l->bell, seen, timeout_ms);
}

static void sl_close(struct dlog_seg_ops *s)
{
    struct seg_lmdb *l = s->impl;
    mdb_env_close(l->env);
    doorbell_close(&l->bell);
    free(l);
    free(s);
}

int seg_lmdb_open(const char *dir, uint64_t map_size, int no_sync,
                  struct dlog_seg_ops **out, char *errmsg)
{
    struct dlog_seg_ops *s = calloc(1, sizeof *s);
    struct seg_lmdb *l = calloc(1, sizeof *l);
    MDB_txn *txn = NULL;
    char path[4096];
    int rc, rv = DLOG_EIO;
    *out = NULL;
    if (s == NULL || l == NULL) {
        rv = DLOG_ENOMEM;
        errmsg_copy(errmsg, "out of memory");
        goto err;
    }
    doorbell_init(&l->bell);
    rc = mdb_env_create(&l->env);
    if (rc != 0)
        goto lmdb_fail;
    mdb_env_set_maxdbs(l->env, 4);
    mdb_env_set_maxreaders(l->env, 1024);
    rc = mdb_env_set_mapsize(l->env, map_size ? map_size : (1ULL << 40));
    if (rc != 0)
        goto lmdb_fail;
    rc = mdb_env_open(l->env, dir, MDB_NOTLS | MDB_NORDAHEAD | (no_sync ? MDB_NOSYNC : 0),
                      0644);
    if (rc != 0)
        goto lmdb_fail;
    int dead;
    mdb_reader_check(l->env, &dead);
    rc = mdb_txn_begin(l->env, NULL, 0, &txn);
    if (rc != 0)
        goto lmdb_fail;
    rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &l->entries);
    if (rc == 0)
        rc = mdb_dbi_open(txn, "segs", MDB_CREATE, &l->segs);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc != 0)
        goto lmdb_fail;
    snprintf(path, sizeof path, "%s/notify", dir);
    if (doorbell_open_file(&l->bell, path) != 0) {
        errmsg_printf(errmsg, "cannot map %s: %s", path, strerror(errno));
        goto err;
    }
    s->version = SEG_OPS_VERSION;
    s->impl = l;
    s->open = sl_open;
    s->append = sl_append;
    s->read = sl_read;
    s->info = sl_info;
    s->fence = sl_fence;
    s->seal = sl_seal;
    s->remove = sl_remove;
    s->notify_seq = sl_notify_seq;
    s->notify_wait = sl_notify_wait;
    s->close = sl_close;
    *out = s;
    return 0;

lmdb_fail:
    errmsg_printf(errmsg, "lmdb segment store %s: %s", dir, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        rv = DLOG_ENOSPC;
err:
    if (l != NULL && l->env != NULL)
        mdb_env_close(l->env);
    free(l);
    free(s);
    return rv;
}
