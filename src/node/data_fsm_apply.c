/*
 * Applying data-group commands (node/data_fsm.h): each is one segment store
 * call of seg/seg.h with the semantics of seg_lmdb.c. fsm_run_cmd runs
 * one against a store (data_fsm_int.h): an LMDB write transaction, which
 * also records the new applied index and digest, or the write-behind model
 * (data_fsm_wb.c), which keeps segment records only and decides the same
 * results without writing entries.
 *
 * A command's checks all come before its first write, so a refused
 * command (its status non-zero) leaves the contents untouched while its
 * index and digest are still recorded, in the same commit.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/crc32c.h"
#include "node/data_cmd.h"
#include "node/data_fsm_int.h"
#include "seg/entry.h"

/* splitmix64's finaliser: a bijective 64-bit mix. */
static uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

/* The digest after applying cmd at index with status. */
static uint64_t chain(uint64_t h, uint64_t index, const void *cmd, size_t len, int status)
{
    uint32_t crc = len > 0 ? crc32c(cmd, len) : 0;

    h = mix64(h ^ index);
    return mix64(h ^ (((uint64_t)crc << 32) | (uint32_t)status));
}

static int fail(struct data_fsm_result *res, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct data_fsm_result *res, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(res->errmsg, sizeof res->errmsg, fmt, ap);
    va_end(ap);
    return code;
}

/* ---------------------------------------------------------------- stores */

static int store_get_info(struct fsm_store *s, uint64_t stream, uint64_t seq,
                          struct seg_info *i)
{
    if (s->txn == NULL)
        return fsm_wb_get(s->f, stream, seq, i, NULL);
    return fsm_get_info(s->f, s->txn, stream, seq, i);
}

static int store_get_once(struct fsm_store *s, uint64_t stream, uint64_t seq,
                          struct fsm_once slots[FSM_ONCE_SLOTS])
{
    struct seg_info i;

    if (s->txn == NULL)
        return fsm_wb_get(s->f, stream, seq, &i, slots);
    return fsm_get_once(s->f, s->txn, stream, seq, slots);
}

/* slots NULL: the record keeps the ones it has. */
static int store_put(struct fsm_store *s, uint64_t stream, uint64_t seq,
                     const struct seg_info *i, const struct fsm_once *slots)
{
    if (s->txn == NULL)
        return fsm_wb_put(s->f, stream, seq, i, slots);
    if (slots == NULL)
        return fsm_put_info(s->f, s->txn, stream, seq, i);
    return fsm_put_info_once(s->f, s->txn, stream, seq, i, slots);
}

/* ---------------------------------------------------------------- commands */

static int get_info(struct fsm_store *s, const struct data_cmd *c, struct seg_info *i,
                    struct data_fsm_result *res)
{
    int rv = store_get_info(s, c->stream, c->seq, i);

    if (rv == DLOG_ENOTFOUND)
        return fail(res, rv, "%s: segment %llu of stream %llu not found",
                    data_cmd_op_name(c->op), (unsigned long long)c->seq,
                    (unsigned long long)c->stream);
    return rv;
}

/* seg.h open: create fenced at epoch, carrying start_txid; a no-op if it exists. */
static int do_open(struct fsm_store *s, const struct data_cmd *c,
                   struct data_fsm_state *st, struct data_fsm_result *res)
{
    struct seg_info i;
    int rv = store_get_info(s, c->stream, c->seq, &i);

    if (rv == 0) {
        res->info = i;
        return 0;
    }
    if (rv != DLOG_ENOTFOUND)
        return rv;
    memset(&i, 0, sizeof i);
    i.fence_epoch = c->epoch;
    i.last_txid = c->start_txid;
    i.created_ms = c->created_ms; /* the proposer's clock, never ours */
    rv = store_put(s, c->stream, c->seq, &i, NULL);
    if (rv != 0)
        return rv;
    st->segments++;
    res->info = i;
    return 0;
}

/*
 * One entry of an append, advancing *i. With `stored` (the entry's copy in
 * LMDB) an auto txid is written into it.
 *
 * Txids (DESIGN.md, invariant 2): "txids are non-decreasing (a smaller txid
 * is refused with a clear error)". An entry may start at the segment's last
 * txid (a continuation fragment carries its record's txid), not below it.
 */
static int append_step(const struct data_cmd *c, struct seg_info *i, uint32_t n,
                       const uint8_t *p, size_t len, uint8_t *stored,
                       struct data_fsm_result *res)
{
    struct entry_hdr h;
    uint64_t base, span;

    if (entry_parse_hdr(p, len, &h) != 0)
        return fail(res, DLOG_ECORRUPT,
                    "APPEND to segment %llu of stream %llu: entry %u "
                    "is malformed",
                    (unsigned long long)c->seq, (unsigned long long)c->stream, n);
    span = h.last_txid - h.base_txid;
    if (c->flags & SEG_APPEND_AUTO_TXID) {
        base = (h.flags & ENTRY_F_CONT) ? i->last_txid : i->last_txid + 1;
        if (base < i->last_txid || span > UINT64_MAX - base)
            return fail(res, DLOG_ETXID,
                        "APPEND to segment %llu of stream %llu: txids "
                        "overflow",
                        (unsigned long long)c->seq, (unsigned long long)c->stream);
        if (stored != NULL)
            entry_set_base_txid(stored, len, base);
    } else if (h.base_txid < i->last_txid) {
        return fail(res, DLOG_ETXID, "txid %llu is below the stream's last txid %llu",
                    (unsigned long long)h.base_txid, (unsigned long long)i->last_txid);
    } else {
        base = h.base_txid;
    }
    if (n == 0)
        res->first_txid = base;
    if (i->records == 0)
        i->first_txid = base;
    i->records += (h.flags & ENTRY_F_CONT) ? 0 : h.count; /* a large record once */
    i->bytes += len;
    i->last_txid = base + span;
    if (!(h.flags & ENTRY_F_CONT)) {
        i->last_rec_entry = i->next_entry;
        i->last_rec_slot = h.count - 1;
    }
    i->next_entry++;
    return 0;
}

/*
 * APPEND_ONCE: the writer's slot in the segment's record. A repeat of the
 * writer's last append is answered with that append's results (and
 * *repeat set) before any other rule, since the segment may have been
 * fenced or sealed since; an older one is refused. *slot is where this
 * append's results go (the writer's, a free one, or the oldest).
 */
static int once_check(struct fsm_store *s, const struct data_cmd *c,
                      struct fsm_once slots[FSM_ONCE_SLOTS], int *slot, int *repeat,
                      struct data_fsm_result *res)
{
    int rv = store_get_once(s, c->stream, c->seq, slots);
    if (rv != 0)
        return rv;
    *slot = -1;
    for (int s = 0; s < FSM_ONCE_SLOTS && *slot < 0; s++)
        if (slots[s].writer == c->writer)
            *slot = s;
    if (*slot >= 0 && c->append_seq == slots[*slot].append_seq) {
        res->first_entry = slots[*slot].first_entry;
        res->first_txid = slots[*slot].first_txid;
        *repeat = 1;
        return 0;
    }
    if (*slot >= 0 && c->append_seq < slots[*slot].append_seq)
        return fail(res, DLOG_ECONFLICT,
                    "APPEND to segment %llu of stream %llu: append %llu of writer %llx "
                    "is older than its last, %llu",
                    (unsigned long long)c->seq, (unsigned long long)c->stream,
                    (unsigned long long)c->append_seq, (unsigned long long)c->writer,
                    (unsigned long long)slots[*slot].append_seq);
    for (int s = 0; s < FSM_ONCE_SLOTS && *slot < 0; s++)
        if (slots[s].writer == 0)
            *slot = s;
    if (*slot < 0) { /* the writer whose last append is the oldest gives way */
        *slot = 0;
        for (int s = 1; s < FSM_ONCE_SLOTS; s++)
            if (slots[s].first_entry < slots[*slot].first_entry)
                *slot = s;
    }
    return 0;
}

/* seg.h append: all n entries or none (APPEND_ONCE: and once only). The
 * model store writes no entries: it decides the results only. */
static int do_append(struct fsm_store *s, const struct data_cmd *c,
                     struct data_fsm_state *st, struct data_fsm_result *res)
{
    struct seg_info i, t;
    struct data_cmd_iter it;
    struct fsm_once slots[FSM_ONCE_SLOTS];
    const uint8_t *p;
    size_t len;
    uint64_t bytes = 0;
    uint32_t n;
    int slot = -1, repeat = 0;
    int rv = get_info(s, c, &i, res);

    if (rv != 0)
        return rv;
    res->info = i;
    if (c->op == DATA_CMD_APPEND_ONCE) {
        rv = once_check(s, c, slots, &slot, &repeat, res);
        if (rv != 0 || repeat)
            return rv;
    }
    if (i.sealed)
        return fail(res, DLOG_ESEALED, "segment %llu of stream %llu is sealed",
                    (unsigned long long)c->seq, (unsigned long long)c->stream);
    if (c->epoch < i.fence_epoch)
        return fail(res, DLOG_EFENCED, "epoch %llu is fenced by epoch %llu",
                    (unsigned long long)c->epoch, (unsigned long long)i.fence_epoch);
    if (c->n == 0)
        return fail(res, DLOG_EINVAL, "APPEND to segment %llu of stream %llu: no entries",
                    (unsigned long long)c->seq, (unsigned long long)c->stream);

    /* Check every entry on a copy first: a refused append leaves no trace. */
    t = i;
    data_cmd_iter_init(&it, c);
    for (n = 0; data_cmd_iter_next(&it, &p, &len); n++) {
        rv = append_step(c, &t, n, p, len, NULL, res);
        if (rv != 0)
            return rv;
    }

    res->first_entry = i.next_entry;
    data_cmd_iter_init(&it, c);
    for (n = 0; data_cmd_iter_next(&it, &p, &len); n++) {
        uint8_t k[FSM_KEY_ENTRY];
        MDB_val key = {sizeof k, k}, val = {len, NULL};

        if (s->txn != NULL) {
            fsm_entry_key(k, c->stream, c->seq, i.next_entry);
            rv = mdb_put(s->txn, s->f->entries, &key, &val, MDB_RESERVE);
            if (rv != 0)
                return rv;
            memcpy(val.mv_data, p, len);
        }
        rv = append_step(c, &i, n, p, len, val.mv_data, res);
        if (rv != 0) /* checked above; only a bug gets here */
            return EINVAL;
        bytes += len;
    }
    if (slot >= 0)
        slots[slot] = (struct fsm_once){c->writer, c->append_seq, res->first_entry,
                                        res->first_txid};
    rv = store_put(s, c->stream, c->seq, &i, slot >= 0 ? slots : NULL);
    if (rv != 0)
        return rv;
    st->entries += n;
    st->bytes += bytes;
    res->info = i;
    return 0;
}

/* seg.h fence: raise the fence to epoch, never lower it. */
static int do_fence(struct fsm_store *s, const struct data_cmd *c,
                    struct data_fsm_result *res)
{
    struct seg_info i;
    int rv = get_info(s, c, &i, res);

    if (rv != 0)
        return rv;
    if (c->epoch > i.fence_epoch) {
        i.fence_epoch = c->epoch;
        rv = store_put(s, c->stream, c->seq, &i, NULL);
    }
    res->info = i;
    return rv;
}

/* seg.h seal: idempotent, unless fenced above epoch. */
static int do_seal(struct fsm_store *s, const struct data_cmd *c,
                   struct data_fsm_result *res)
{
    struct seg_info i;
    int rv = get_info(s, c, &i, res);

    if (rv != 0)
        return rv;
    res->info = i;
    if (c->epoch < i.fence_epoch)
        return fail(res, DLOG_EFENCED, "SEAL: epoch %llu is fenced by epoch %llu",
                    (unsigned long long)c->epoch, (unsigned long long)i.fence_epoch);
    if (i.sealed)
        return 0;
    i.sealed = 1;
    res->info = i;
    return store_put(s, c->stream, c->seq, &i, NULL);
}

/* seg.h remove: delete the segment and its entries (idempotent). The
 * model only forgets the segment's record (counts are the writer's). */
static int do_remove(struct fsm_store *s, const struct data_cmd *c,
                     struct data_fsm_state *st)
{
    uint8_t k[FSM_KEY_ENTRY];
    MDB_val key = {FSM_KEY_SEG, k}, val;
    MDB_cursor *cur;
    MDB_txn *txn = s->txn;
    struct data_fsm *f = s->f;
    uint64_t entries = 0, bytes = 0;
    int rc;

    if (txn == NULL)
        return fsm_wb_remove(f, c->stream, c->seq);
    fsm_seg_key(k, c->stream, c->seq);
    rc = mdb_del(txn, f->segs, &key, NULL);
    if (rc == 0)
        st->segments--;
    else if (rc != MDB_NOTFOUND)
        return rc;
    rc = mdb_cursor_open(txn, f->entries, &cur);
    if (rc != 0)
        return rc;
    fsm_entry_key(k, c->stream, c->seq, 0);
    key.mv_size = FSM_KEY_ENTRY;
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && key.mv_size == FSM_KEY_ENTRY &&
           memcmp(key.mv_data, k, FSM_KEY_SEG) == 0) {
        size_t len = val.mv_size;
        rc = mdb_cursor_del(cur, 0);
        if (rc != 0)
            break;
        entries++;
        bytes += len;
        rc = mdb_cursor_get(cur, &key, &val, MDB_GET_CURRENT);
        if (rc == EINVAL) /* deleted the last item */
            rc = MDB_NOTFOUND;
    }
    mdb_cursor_close(cur);
    if (rc != 0 && rc != MDB_NOTFOUND)
        return rc;
    st->entries -= entries;
    st->bytes -= bytes;
    return 0;
}

int fsm_run_cmd(struct fsm_store *s, uint64_t index, const void *cmd, size_t len,
                struct data_fsm_state *st, struct data_fsm_result *res)
{
    struct data_cmd c;
    int rv;

    memset(res, 0, sizeof *res);
    res->index = index;
    if (data_cmd_decode(cmd, len, &c) != 0) {
        rv = fail(res, DLOG_EPROTO, "malformed command (%zu bytes) at index %llu", len,
                  (unsigned long long)index);
    } else {
        res->op = c.op;
        switch (c.op) {
        case DATA_CMD_OPEN:
            rv = do_open(s, &c, st, res);
            break;
        case DATA_CMD_APPEND:
        case DATA_CMD_APPEND_ONCE:
            rv = do_append(s, &c, st, res);
            break;
        case DATA_CMD_FENCE:
            rv = do_fence(s, &c, res);
            break;
        case DATA_CMD_SEAL:
            rv = do_seal(s, &c, res);
            break;
        default:
            rv = do_remove(s, &c, st);
            break;
        }
        if (fsm_is_local(rv)) {
            memset(res, 0, sizeof *res);
            res->index = index;
            return fsm_lmdb_err_to(s->f, s->errmsg, rv, data_cmd_op_name(c.op));
        }
    }
    res->status = rv;
    if (rv == 0) {
        res->errmsg[0] = '\0';
    } else {
        res->first_entry = 0;
        res->first_txid = 0;
    }
    st->applied = index;
    st->hash = chain(st->hash, index, cmd, len, rv);
    return 0;
}

int data_fsm_apply(struct data_fsm *f, uint64_t index, const void *cmd, size_t len,
                   struct data_fsm_result *res)
{
    struct data_fsm_state st;
    struct fsm_store s = {f, NULL, f->errmsg};
    int rv;

    memset(res, 0, sizeof *res);
    res->index = index;
    /* Behind first: while a transfer runs on another thread the fetch says
     * so (DLOG_EUNAVAILABLE, which keeps a follower in service). */
    if (atomic_load(&f->behind)) {
        rv = fsm_catch_up(f);
        if (rv != 0)
            return rv;
    }
    if (atomic_load(&f->loading)) {
        errmsg_printf(f->errmsg, "data fsm %s: apply during a load", f->dir);
        return DLOG_EBUSY;
    }
    if (index <= f->st.applied) {
        res->skipped = 1;
        return 0;
    }
    if (f->wb != NULL)
        return fsm_wb_apply(f, index, cmd, len, res);
    rv = mdb_txn_begin(f->env, NULL, 0, &s.txn);
    if (rv != 0)
        return fsm_lmdb_err(f, rv, "apply");
    st = f->st;
    rv = fsm_run_cmd(&s, index, cmd, len, &st, res);
    if (rv == 0) {
        rv = fsm_put_state(f, s.txn, &st);
        if (rv != 0)
            rv = fsm_lmdb_err(f, rv, "apply");
    }
    if (rv != 0) {
        mdb_txn_abort(s.txn);
        return rv;
    }
    rv = mdb_txn_commit(s.txn);
    if (rv != 0)
        return fsm_lmdb_err(f, rv, "apply: commit");
    f->st = st;
    fsm_changed(f, index);
    return 0;
}
