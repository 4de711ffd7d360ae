/*
 * Moving a data FSM's contents between replicas out of band
 * (node/data_fsm.h, "state transfer"): dump on the peer, load here. This is
 * what lets the Raft snapshot carry no data.
 */
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "node/data_fsm_int.h"

int data_fsm_dump(struct data_fsm *f, data_fsm_dump_fn visit, void *arg)
{
    struct data_fsm_item it;
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    MDB_val key, val;
    int rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, &txn);
    int rv = 0;

    if (rc != 0)
        return fsm_lmdb_err(f, rc, "dump");
    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_STATE;
    rc = fsm_get_state(f, txn, &it.state);
    if (rc != 0)
        goto out;
    rv = visit(arg, &it);
    if (rv != 0)
        goto out;

    rc = mdb_cursor_open(txn, f->segs, &cur);
    if (rc != 0)
        goto out;
    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_SEG;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        if (key.mv_size != FSM_KEY_SEG ||
            fsm_info_decode(val.mv_data, val.mv_size, &it.info) != 0) {
            rc = MDB_CORRUPTED;
            goto out;
        }
        it.stream = get_u64be(key.mv_data);
        it.seq = get_u64be((const uint8_t *)key.mv_data + 8);
        rv = visit(arg, &it);
        if (rv != 0)
            goto out;
    }
    if (rc != MDB_NOTFOUND)
        goto out;
    mdb_cursor_close(cur);

    rc = mdb_cursor_open(txn, f->entries, &cur);
    if (rc != 0) {
        cur = NULL;
        goto out;
    }
    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_ENTRY;
    for (rc = mdb_cursor_get(cur, &key, &val, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &key, &val, MDB_NEXT)) {
        const uint8_t *k = key.mv_data;
        if (key.mv_size != FSM_KEY_ENTRY) {
            rc = MDB_CORRUPTED;
            goto out;
        }
        it.stream = get_u64be(k);
        it.seq = get_u64be(k + 8);
        it.entry = get_u64be(k + 16);
        it.p = val.mv_data;
        it.len = val.mv_size;
        rv = visit(arg, &it);
        if (rv != 0)
            goto out;
    }
out:
    if (cur != NULL)
        mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    if (rv != 0)
        return rv;
    return rc == 0 || rc == MDB_NOTFOUND ? 0 : fsm_lmdb_err(f, rc, "dump");
}

struct data_fsm_load {
    struct data_fsm *f;
    MDB_txn *txn;
    int last_kind; /* of the previous item: they come in kind order */
    struct data_fsm_state want;
    /* What the items added up to. */
    uint64_t segments, entries, bytes;
    uint64_t seg_entries, seg_bytes; /* sums of the segments' own counts */
    /* The segment of the previous ENTRY item. */
    int have_seg;
    uint64_t stream, seq;
    struct seg_info info;
};

int data_fsm_load_begin(struct data_fsm *f, struct data_fsm_load **out)
{
    struct data_fsm_load *ld;
    int rc;

    *out = NULL;
    if (f->loading) {
        errmsg_printf(f->errmsg, "data fsm %s: a load is already open", f->dir);
        return DLOG_EBUSY;
    }
    ld = calloc(1, sizeof *ld);
    if (ld == NULL)
        return DLOG_ENOMEM;
    ld->f = f;
    rc = mdb_txn_begin(f->env, NULL, 0, &ld->txn);
    if (rc == 0 && (rc = mdb_drop(ld->txn, f->entries, 0)) == 0)
        rc = mdb_drop(ld->txn, f->segs, 0);
    if (rc != 0) {
        if (ld->txn != NULL)
            mdb_txn_abort(ld->txn);
        free(ld);
        return fsm_lmdb_err(f, rc, "load");
    }
    f->loading = 1;
    *out = ld;
    return 0;
}

static int bad(struct data_fsm_load *ld, const char *why)
{
    errmsg_printf(ld->f->errmsg, "data fsm %s: load: %s", ld->f->dir, why);
    return DLOG_ECORRUPT;
}

/* An entry must belong to a loaded segment, below its next entry id. */
static int check_entry(struct data_fsm_load *ld, const struct data_fsm_item *it)
{
    if (!ld->have_seg || ld->stream != it->stream || ld->seq != it->seq) {
        int rv = fsm_get_info(ld->f, ld->txn, it->stream, it->seq, &ld->info);
        if (rv == DLOG_ENOTFOUND)
            return bad(ld, "an entry of a segment not loaded");
        if (rv != 0)
            return fsm_result(ld->f, rv, "load");
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
    if (it->kind == DATA_FSM_ITEM_STATE) {
        ld->want = it->state;
        return 0;
    }
    if (it->kind == DATA_FSM_ITEM_SEG) {
        rc = fsm_put_info(f, ld->txn, it->stream, it->seq, &it->info);
        if (rc != 0)
            return fsm_lmdb_err(f, rc, "load");
        ld->segments++;
        ld->seg_entries += it->info.next_entry;
        ld->seg_bytes += it->info.bytes;
        return 0;
    }
    rc = check_entry(ld, it);
    if (rc != 0)
        return rc;
    uint8_t k[FSM_KEY_ENTRY];
    MDB_val key = {sizeof k, k}, val = {it->len, (void *)it->p};
    fsm_entry_key(k, it->stream, it->seq, it->entry);
    rc = mdb_put(ld->txn, f->entries, &key, &val, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST)
        return bad(ld, "an entry twice");
    if (rc != 0)
        return fsm_lmdb_err(f, rc, "load");
    ld->entries++;
    ld->bytes += it->len;
    return 0;
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
    else if (w->applied < f->st.applied)
        rv = bad(ld, "the state is older than the one stored here");
    else if ((rv = fsm_put_state(f, ld->txn, w)) != 0)
        rv = fsm_lmdb_err(f, rv, "load");
    else {
        rv = mdb_txn_commit(ld->txn);
        ld->txn = NULL; /* committed, or freed by the failed commit */
        if (rv != 0)
            rv = fsm_lmdb_err(f, rv, "load: commit");
    }
    if (rv != 0) {
        data_fsm_load_abort(ld);
        return rv;
    }
    f->st = *w;
    f->loading = 0;
    free(ld);
    fsm_changed(f, f->st.applied);
    return 0;
}

void data_fsm_load_abort(struct data_fsm_load *ld)
{
    if (ld == NULL)
        return;
    if (ld->txn != NULL)
        mdb_txn_abort(ld->txn);
    ld->f->loading = 0;
    free(ld);
}
