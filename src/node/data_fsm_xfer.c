/*
 * Moving a data FSM's contents between replicas out of band
 * (node/data_fsm.h, "state transfer"): dumpers on the peer, the load here.
 * This is what lets the Raft snapshot carry no data.
 *
 * Memory. A dumper reads LMDB's pages in place and a load commits every
 * DATA_FSM_LOAD_TXN_BYTES (LMDB keeps a write transaction's dirty pages in
 * memory until its commit), so neither side ever holds more than a chunk,
 * whatever the size of the contents.
 *
 * Crash safety of a load in several transactions: the first one empties
 * the store, zeroes the state record and writes the "xfer" marker; the
 * last one writes the state and deletes the marker. In between, the marker
 * says the contents are partial, and data_fsm_open starts such an FSM
 * behind (node/data_fsm.c), so it fetches everything again.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "node/data_fsm_int.h"

/* ---------------------------------------------------------------- dumping */

struct data_fsm_dumper {
    struct data_fsm *f;
    MDB_txn *txn;
    MDB_cursor *segs, *ents;
};

int data_fsm_dumper_open(struct data_fsm *f, struct data_fsm_state *st,
                         struct data_fsm_dumper **out)
{
    struct data_fsm_dumper *d = calloc(1, sizeof *d);
    int rc;

    *out = NULL;
    if (d == NULL)
        return DLOG_ENOMEM;
    d->f = f;
    rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &d->txn);
    if (rc == 0)
        rc = fsm_get_state(f, d->txn, st);
    if (rc == 0)
        rc = mdb_cursor_open(d->txn, f->segs, &d->segs);
    if (rc == 0)
        rc = mdb_cursor_open(d->txn, f->entries, &d->ents);
    if (rc != 0) {
        data_fsm_dumper_close(d);
        return fsm_lmdb_err(f, rc, "dump");
    }
    *out = d;
    return 0;
}

void data_fsm_dumper_close(struct data_fsm_dumper *d)
{
    if (d == NULL)
        return;
    if (d->segs != NULL)
        mdb_cursor_close(d->segs);
    if (d->ents != NULL)
        mdb_cursor_close(d->ents);
    if (d->txn != NULL)
        mdb_txn_abort(d->txn);
    free(d);
}

/*
 * Positions cur on the first key after `after` (klen bytes), or on the
 * first key when after is NULL: 0, or MDB_NOTFOUND at the end.
 */
static int seek_after(MDB_cursor *cur, const uint8_t *after, size_t klen, MDB_val *key,
                      MDB_val *val)
{
    int rc;

    if (after == NULL)
        return mdb_cursor_get(cur, key, val, MDB_FIRST);
    key->mv_size = klen;
    key->mv_data = (void *)after;
    rc = mdb_cursor_get(cur, key, val, MDB_SET_RANGE);
    if (rc == 0 && key->mv_size == klen && memcmp(key->mv_data, after, klen) == 0)
        rc = mdb_cursor_get(cur, key, val, MDB_NEXT);
    return rc;
}

int data_fsm_dumper_next(struct data_fsm_dumper *d, struct data_fsm_pos *pos,
                         size_t max_bytes, data_fsm_dump_fn visit, void *arg)
{
    struct data_fsm *f = d->f;
    struct data_fsm_item it;
    uint8_t k[FSM_KEY_ENTRY];
    MDB_val key, val;
    size_t bytes = 0;
    int rc = MDB_NOTFOUND, rv;

    if (pos->kind != 0 && pos->kind != DATA_FSM_ITEM_SEG &&
        pos->kind != DATA_FSM_ITEM_ENTRY)
        return errmsg_fail(f->errmsg, DLOG_EINVAL, "data fsm %s: dump: bad position",
                           f->dir);
    if (pos->kind != DATA_FSM_ITEM_ENTRY) {
        if (pos->kind == DATA_FSM_ITEM_SEG)
            fsm_seg_key(k, pos->stream, pos->seq);
        memset(&it, 0, sizeof it);
        it.kind = DATA_FSM_ITEM_SEG;
        for (rc = seek_after(d->segs, pos->kind ? k : NULL, FSM_KEY_SEG, &key, &val);
             rc == 0; rc = mdb_cursor_get(d->segs, &key, &val, MDB_NEXT)) {
            if (bytes >= max_bytes)
                return 0;
            if (key.mv_size != FSM_KEY_SEG ||
                fsm_info_decode(val.mv_data, val.mv_size, &it.info) != 0)
                return fsm_lmdb_err(f, MDB_CORRUPTED, "dump");
            fsm_once_decode(val.mv_data, val.mv_size, it.once);
            it.stream = get_u64be(key.mv_data);
            it.seq = get_u64be((const uint8_t *)key.mv_data + 8);
            rv = visit(arg, &it);
            if (rv != 0)
                return rv;
            *pos = (struct data_fsm_pos){DATA_FSM_ITEM_SEG, it.stream, it.seq, 0};
            bytes += key.mv_size + val.mv_size;
        }
        if (rc != MDB_NOTFOUND)
            return fsm_lmdb_err(f, rc, "dump");
    }
    if (pos->kind == DATA_FSM_ITEM_ENTRY)
        fsm_entry_key(k, pos->stream, pos->seq, pos->entry);
    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_ENTRY;
    for (rc = seek_after(d->ents, pos->kind == DATA_FSM_ITEM_ENTRY ? k : NULL,
                         FSM_KEY_ENTRY, &key, &val);
         rc == 0; rc = mdb_cursor_get(d->ents, &key, &val, MDB_NEXT)) {
        const uint8_t *kp = key.mv_data;
        if (bytes >= max_bytes)
            return 0;
        if (key.mv_size != FSM_KEY_ENTRY)
            return fsm_lmdb_err(f, MDB_CORRUPTED, "dump");
        it.stream = get_u64be(kp);
        it.seq = get_u64be(kp + 8);
        it.entry = get_u64be(kp + 16);
        it.p = val.mv_data;
        it.len = val.mv_size;
        rv = visit(arg, &it);
        if (rv != 0)
            return rv;
        *pos = (struct data_fsm_pos){DATA_FSM_ITEM_ENTRY, it.stream, it.seq, it.entry};
        bytes += key.mv_size + val.mv_size;
    }
    if (rc != MDB_NOTFOUND)
        return fsm_lmdb_err(f, rc, "dump");
    return 1;
}

int data_fsm_dump(struct data_fsm *f, data_fsm_dump_fn visit, void *arg)
{
    struct data_fsm_dumper *d;
    struct data_fsm_pos pos = {0, 0, 0, 0};
    struct data_fsm_item it;
    int rv;

    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_STATE;
    rv = data_fsm_dumper_open(f, &it.state, &d);
    if (rv != 0)
        return rv;
    rv = visit(arg, &it);
    if (rv == 0)
        rv = data_fsm_dumper_next(d, &pos, SIZE_MAX, visit, arg);
    data_fsm_dumper_close(d);
    return rv == 1 ? 0 : rv;
}

/* ---------------------------------------------------------------- loading */

struct data_fsm_load {
    struct data_fsm *f;
    char *errmsg;
    MDB_txn *txn;     /* the open chunk, or NULL */
    size_t txn_bytes; /* written in it */
    int marked;       /* the marker is written: f's contents are partial */
    int set_behind;   /* f was not behind: the load marked it so */
    int last_kind;    /* of the previous item: they come in kind order */
    struct data_fsm_state want;
    /* What the items added up to. */
    uint64_t segments, entries, bytes;
    uint64_t seg_entries, seg_bytes; /* sums of the segments' own counts */
    /* The segment of the previous ENTRY item. */
    int have_seg;
    uint64_t stream, seq;
    struct seg_info info;
};

int data_fsm_load_begin(struct data_fsm *f, char *errmsg, struct data_fsm_load **out)
{
    struct data_fsm_load *ld;
    int expect = 0;

    *out = NULL;
    if (errmsg == NULL)
        errmsg = f->errmsg;
    if (!atomic_compare_exchange_strong(&f->loading, &expect, 1))
        return errmsg_fail(errmsg, DLOG_EBUSY, "data fsm %s: a load is already open",
                           f->dir);
    /* Write-behind: nothing may be left to write over the loaded contents
     * (a load runs while f is behind, after the restore drained it; this
     * may be another thread, so it only checks). */
    if (!fsm_wb_idle(f)) {
        atomic_store(&f->loading, 0);
        return errmsg_fail(errmsg, DLOG_EBUSY,
                           "data fsm %s: applied commands are still being written",
                           f->dir);
    }
    ld = calloc(1, sizeof *ld);
    if (ld == NULL) {
        atomic_store(&f->loading, 0);
        return DLOG_ENOMEM;
    }
    ld->f = f;
    ld->errmsg = errmsg;
    *out = ld;
    return 0;
}

static int bad(struct data_fsm_load *ld, const char *why)
{
    errmsg_printf(ld->errmsg, "data fsm %s: load: %s", ld->f->dir, why);
    return DLOG_ECORRUPT;
}

static int lmdb_fail(struct data_fsm_load *ld, int rc, const char *what)
{
    return fsm_lmdb_err_to(ld->f, ld->errmsg, rc, what);
}

/* The current chunk's transaction, begun if none is open. */
static int txn_of(struct data_fsm_load *ld)
{
    int rc;

    if (ld->txn != NULL)
        return 0;
    rc = mdb_txn_begin(ld->f->env, NULL, 0, &ld->txn);
    if (rc != 0) {
        ld->txn = NULL;
        return lmdb_fail(ld, rc, "load");
    }
    ld->txn_bytes = 0;
    return 0;
}

/*
 * The STATE item: refuse an older state, then empty f and mark it
 * partial, in one committed transaction.
 */
static int load_state(struct data_fsm_load *ld, const struct data_fsm_state *st)
{
    struct data_fsm *f = ld->f;
    static const struct data_fsm_state zero;
    int rc, rv;

    if (st->applied < f->st.applied)
        return bad(ld, "the state is older than the one stored here");
    ld->want = *st;
    rv = txn_of(ld);
    if (rv != 0)
        return rv;
    if ((rc = mdb_drop(ld->txn, f->entries, 0)) != 0 ||
        (rc = mdb_drop(ld->txn, f->segs, 0)) != 0 ||
        (rc = fsm_put_state(f, ld->txn, &zero)) != 0 ||
        (rc = fsm_put_xfer(f, ld->txn, st)) != 0) {
        mdb_txn_abort(ld->txn);
        ld->txn = NULL;
        return lmdb_fail(ld, rc, "load");
    }
    rc = mdb_txn_commit(ld->txn);
    ld->txn = NULL;
    if (rc != 0)
        return lmdb_fail(ld, rc, "load: commit");
    ld->marked = 1;
    f->st = zero; /* the stored state's mirror: read while f is behind only
                   * once no load is open (data_fsm_fetch_fn) */
    fsm_wb_reset(f);
    /* From here f holds a partial copy: it must not apply anything until
     * a load commits. The node's loads run while f is behind already. */
    if (!atomic_load(&f->behind)) {
        f->want = *st;
        atomic_store(&f->behind, 1);
        ld->set_behind = 1;
    }
    return 0;
}

/* An entry must belong to a loaded segment, below its next entry id. */
static int check_entry(struct data_fsm_load *ld, const struct data_fsm_item *it)
{
    if (!ld->have_seg || ld->stream != it->stream || ld->seq != it->seq) {
        int rv = fsm_get_info(ld->f, ld->txn, it->stream, it->seq, &ld->info);
        if (rv == DLOG_ENOTFOUND)
            return bad(ld, "an entry of a segment not loaded");
        if (rv != 0)
            return fsm_is_local(rv) ? lmdb_fail(ld, rv, "load") : rv;
        ld->have_seg = 1;
        ld->stream = it->stream;
        ld->seq = it->seq;
    }
    if (it->entry >= ld->info.next_entry)
        return bad(ld, "an entry beyond its segment's end");
    return 0;
}

int data_fsm_load_item(struct data_fsm_load *ld, const struct data_fsm_item *it)
{
    struct data_fsm *f = ld->f;
    int rc;

    if (it->kind < ld->last_kind || it->kind < DATA_FSM_ITEM_STATE ||
        it->kind > DATA_FSM_ITEM_ENTRY ||
        (it->kind == DATA_FSM_ITEM_STATE) == (ld->last_kind != 0))
        return bad(ld, "items out of order");
    ld->last_kind = it->kind;
    if (it->kind == DATA_FSM_ITEM_STATE)
        return load_state(ld, &it->state);
    rc = txn_of(ld);
    if (rc != 0)
        return rc;
    if (it->kind == DATA_FSM_ITEM_SEG) {
        uint8_t k[FSM_KEY_SEG], v[FSM_SEGREC_ONCE_SIZE];
        MDB_val key = {sizeof k, k}, val = {FSM_SEGREC_SIZE, v};
        fsm_seg_key(k, it->stream, it->seq);
        fsm_info_encode(&it->info, v);
        if (it->once[0].writer != 0) { /* the record as its source stores it */
            uint8_t *p = v + FSM_SEGREC_SIZE;
            for (int s = 0; s < FSM_ONCE_SLOTS; s++, p += 32) {
                put_u64be(p, it->once[s].writer);
                put_u64be(p + 8, it->once[s].append_seq);
                put_u64be(p + 16, it->once[s].first_entry);
                put_u64be(p + 24, it->once[s].first_txid);
            }
            val.mv_size = FSM_SEGREC_ONCE_SIZE;
        }
        /* Keys come in ascending order: MDB_APPEND checks it, and is fast. */
        rc = mdb_put(ld->txn, f->segs, &key, &val, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return bad(ld, "segments out of order or twice");
        if (rc != 0)
            return lmdb_fail(ld, rc, "load");
        ld->segments++;
        ld->seg_entries += it->info.next_entry;
        ld->seg_bytes += it->info.bytes;
        ld->txn_bytes += sizeof k + val.mv_size;
    } else {
        uint8_t k[FSM_KEY_ENTRY];
        MDB_val key = {sizeof k, k}, val = {it->len, (void *)it->p};
        rc = check_entry(ld, it);
        if (rc != 0)
            return rc;
        fsm_entry_key(k, it->stream, it->seq, it->entry);
        rc = mdb_put(ld->txn, f->entries, &key, &val, MDB_APPEND);
        if (rc == MDB_KEYEXIST)
            return bad(ld, "entries out of order or twice");
        if (rc != 0)
            return lmdb_fail(ld, rc, "load");
        ld->entries++;
        ld->bytes += it->len;
        ld->txn_bytes += sizeof k + it->len;
    }
    return ld->txn_bytes >= DATA_FSM_LOAD_TXN_BYTES ? data_fsm_load_flush(ld) : 0;
}

int data_fsm_load_flush(struct data_fsm_load *ld)
{
    int rc;

    if (ld->txn == NULL)
        return 0;
    rc = mdb_txn_commit(ld->txn);
    ld->txn = NULL;
    ld->have_seg = 0; /* its info was read in that transaction */
    return rc == 0 ? 0 : lmdb_fail(ld, rc, "load: commit");
}

int data_fsm_load_commit(struct data_fsm_load *ld)
{
    struct data_fsm *f = ld->f;
    const struct data_fsm_state *w = &ld->want;
    int rv;

    if (ld->last_kind == 0)
        rv = bad(ld, "no state item");
    else if (w->segments != ld->segments || w->entries != ld->entries ||
             w->bytes != ld->bytes || ld->seg_entries != ld->entries ||
             ld->seg_bytes != ld->bytes)
        rv = bad(ld, "the items do not add up to the state's counts");
    else if ((rv = txn_of(ld)) != 0)
        ;
    else if ((rv = fsm_put_state(f, ld->txn, w)) != 0 ||
             (rv = fsm_del_xfer(f, ld->txn)) != 0)
        rv = lmdb_fail(ld, rv, "load");
    else {
        rv = mdb_txn_commit(ld->txn);
        ld->txn = NULL; /* committed, or freed by the failed commit */
        if (rv != 0)
            rv = lmdb_fail(ld, rv, "load: commit");
    }
    if (rv != 0) {
        data_fsm_load_abort(ld);
        return rv;
    }
    /* Read on the applying thread only once f is no longer loading. */
    f->st = *w;
    fsm_wb_reset(f);
    if (ld->set_behind) /* a load on the applying thread, outside a fetch */
        atomic_store(&f->behind, 0);
    free(ld);
    atomic_store(&f->loading, 0);
    doorbell_ring(&f->bell);
    return 0;
}

void data_fsm_load_abort(struct data_fsm_load *ld)
{
    struct data_fsm *f;

    if (ld == NULL)
        return;
    f = ld->f;
    if (ld->txn != NULL)
        mdb_txn_abort(ld->txn);
    free(ld);
    atomic_store(&f->loading, 0);
}
