/*
 * The data FSM: opening its LMDB environment, the read path, the change
 * counter, and reconciling with a restored snapshot (node/data_fsm.h).
 * Commands are in data_fsm_apply.c, state transfer in data_fsm_xfer.c, the
 * libraft adapter in data_fsm_raft.c.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "base/log.h"
#include "node/data_fsm_int.h"

#define STATE_FORMAT 1
static const char state_key[] = "state";
static const char xfer_key[] = "xfer"; /* a transfer is under way */

void fsm_seg_key(uint8_t k[FSM_KEY_SEG], uint64_t stream, uint64_t seq)
{
    put_u64be(k, stream);
    put_u64be(k + 8, seq);
}

void fsm_entry_key(uint8_t k[FSM_KEY_ENTRY], uint64_t stream, uint64_t seq, uint64_t id)
{
    fsm_seg_key(k, stream, seq);
    put_u64be(k + 16, id);
}

void fsm_info_encode(const struct seg_info *i, uint8_t p[FSM_SEGREC_SIZE])
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

int fsm_info_decode(const void *v, size_t len, struct seg_info *i)
{
    const uint8_t *p = v;

    if (len != FSM_SEGREC_SIZE && len != FSM_SEGREC_ONCE_SIZE)
        return DLOG_ECORRUPT;
    i->fence_epoch = get_u64be(p);
    i->sealed = get_u64be(p + 8) != 0;
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

int fsm_get_info(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 struct seg_info *out)
{
    uint8_t k[FSM_KEY_SEG];
    MDB_val key = {sizeof k, k}, val;
    int rc;

    fsm_seg_key(k, stream, seq);
    rc = mdb_get(txn, f->segs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DLOG_ENOTFOUND;
    if (rc != 0)
        return rc;
    /* Stored garbage is a local failure, not a command's result. */
    return fsm_info_decode(val.mv_data, val.mv_size, out) == 0 ? 0 : MDB_CORRUPTED;
}

int fsm_get_once(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 struct fsm_once slots[FSM_ONCE_SLOTS])
{
    uint8_t k[FSM_KEY_SEG];
    MDB_val key = {sizeof k, k}, val;
    int rc;

    memset(slots, 0, FSM_ONCE_SLOTS * sizeof *slots);
    fsm_seg_key(k, stream, seq);
    rc = mdb_get(txn, f->segs, &key, &val);
    if (rc == MDB_NOTFOUND)
        return DLOG_ENOTFOUND;
    if (rc != 0)
        return rc;
    fsm_once_decode(val.mv_data, val.mv_size, slots);
    return 0;
}

void fsm_once_decode(const void *v, size_t len, struct fsm_once slots[FSM_ONCE_SLOTS])
{
    memset(slots, 0, FSM_ONCE_SLOTS * sizeof *slots);
    if (len != FSM_SEGREC_ONCE_SIZE)
        return;
    const uint8_t *p = (const uint8_t *)v + FSM_SEGREC_SIZE;
    for (int s = 0; s < FSM_ONCE_SLOTS; s++, p += 32) {
        slots[s].writer = get_u64be(p);
        slots[s].append_seq = get_u64be(p + 8);
        slots[s].first_entry = get_u64be(p + 16);
        slots[s].first_txid = get_u64be(p + 24);
    }
}

int fsm_put_info_once(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                      const struct seg_info *i,
                      const struct fsm_once slots[FSM_ONCE_SLOTS])
{
    uint8_t k[FSM_KEY_SEG], v[FSM_SEGREC_ONCE_SIZE];
    MDB_val key = {sizeof k, k}, val = {sizeof v, v};
    uint8_t *p = v + FSM_SEGREC_SIZE;

    fsm_seg_key(k, stream, seq);
    fsm_info_encode(i, v);
    for (int s = 0; s < FSM_ONCE_SLOTS; s++, p += 32) {
        put_u64be(p, slots[s].writer);
        put_u64be(p + 8, slots[s].append_seq);
        put_u64be(p + 16, slots[s].first_entry);
        put_u64be(p + 24, slots[s].first_txid);
    }
    return mdb_put(txn, f->segs, &key, &val, 0);
}

int fsm_put_info(struct data_fsm *f, MDB_txn *txn, uint64_t stream, uint64_t seq,
                 const struct seg_info *i)
{
    uint8_t k[FSM_KEY_SEG], v[FSM_SEGREC_SIZE];
    MDB_val key = {sizeof k, k}, val = {sizeof v, v};
    struct fsm_once slots[FSM_ONCE_SLOTS];
    int rc = fsm_get_once(f, txn, stream, seq, slots);

    if (rc == 0 && slots[0].writer != 0) /* the slots stay with the segment */
        return fsm_put_info_once(f, txn, stream, seq, i, slots);
    if (rc != 0 && rc != DLOG_ENOTFOUND)
        return rc;
    fsm_seg_key(k, stream, seq);
    fsm_info_encode(i, v);
    return mdb_put(txn, f->segs, &key, &val, 0);
}

/* A state record under key k: zeros and *found 0 when absent. */
static int get_rec(struct data_fsm *f, MDB_txn *txn, const char *k,
                   struct data_fsm_state *out, int *found)
{
    MDB_val key = {strlen(k), (void *)k}, val;
    const uint8_t *p;
    int rc;

    memset(out, 0, sizeof *out);
    *found = 0;
    rc = mdb_get(txn, f->meta, &key, &val);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc != 0)
        return rc;
    p = val.mv_data;
    if (val.mv_size != FSM_STATE_SIZE || get_u32be(p) != STATE_FORMAT)
        return MDB_CORRUPTED;
    out->applied = get_u64be(p + 8);
    out->hash = get_u64be(p + 16);
    out->segments = get_u64be(p + 24);
    out->entries = get_u64be(p + 32);
    out->bytes = get_u64be(p + 40);
    *found = 1;
    return 0;
}

static int put_rec(struct data_fsm *f, MDB_txn *txn, const char *k,
                   const struct data_fsm_state *st)
{
    uint8_t v[FSM_STATE_SIZE];
    MDB_val key = {strlen(k), (void *)k}, val = {sizeof v, v};

    put_u32be(v, STATE_FORMAT);
    put_u32be(v + 4, 0);
    put_u64be(v + 8, st->applied);
    put_u64be(v + 16, st->hash);
    put_u64be(v + 24, st->segments);
    put_u64be(v + 32, st->entries);
    put_u64be(v + 40, st->bytes);
    return mdb_put(txn, f->meta, &key, &val, 0);
}

int fsm_get_state(struct data_fsm *f, MDB_txn *txn, struct data_fsm_state *out)
{
    int found;

    return get_rec(f, txn, state_key, out, &found);
}

int fsm_put_state(struct data_fsm *f, MDB_txn *txn, const struct data_fsm_state *st)
{
    return put_rec(f, txn, state_key, st);
}

int fsm_get_xfer(struct data_fsm *f, MDB_txn *txn, struct data_fsm_state *out, int *found)
{
    return get_rec(f, txn, xfer_key, out, found);
}

int fsm_put_xfer(struct data_fsm *f, MDB_txn *txn, const struct data_fsm_state *st)
{
    return put_rec(f, txn, xfer_key, st);
}

int fsm_del_xfer(struct data_fsm *f, MDB_txn *txn)
{
    MDB_val key = {sizeof xfer_key - 1, (void *)xfer_key};
    int rc = mdb_del(txn, f->meta, &key, NULL);

    return rc == MDB_NOTFOUND ? 0 : rc;
}

int fsm_lmdb_err_to(struct data_fsm *f, char *errmsg, int rc, const char *what)
{
    int code = DLOG_EIO;

    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        code = DLOG_ENOSPC;
    else if (rc == ENOMEM)
        code = DLOG_ENOMEM;
    else if (rc == MDB_CORRUPTED)
        code = DLOG_ECORRUPT;
    errmsg_printf(errmsg, "data fsm %s: %s: %s", f->dir, what, mdb_strerror(rc));
    return code;
}

int fsm_lmdb_err(struct data_fsm *f, int rc, const char *what)
{
    return fsm_lmdb_err_to(f, f->errmsg, rc, what);
}

int fsm_result(struct data_fsm *f, int rv, const char *what)
{
    return fsm_is_local(rv) ? fsm_lmdb_err(f, rv, what) : rv;
}

void fsm_changed(struct data_fsm *f, uint64_t index)
{
    doorbell_ring(&f->bell);
    if (f->notify != NULL)
        f->notify(f->notify_arg, index);
}

const char *data_fsm_errmsg(const struct data_fsm *f)
{
    return f->errmsg;
}

int data_fsm_open(const struct data_fsm_config *cfg, struct data_fsm **out, char *errmsg)
{
    struct data_fsm *f = NULL;
    MDB_txn *txn = NULL;
    int rc = 0, rv = DLOG_EIO, partial = 0;

    *out = NULL;
    if (cfg == NULL || cfg->version != DATA_FSM_CONFIG_VERSION || cfg->dir == NULL) {
        errmsg_copy(errmsg, "data fsm: bad configuration");
        return DLOG_EINVAL;
    }
    f = calloc(1, sizeof *f);
    if (f == NULL || (f->dir = strdup(cfg->dir)) == NULL) {
        rv = DLOG_ENOMEM;
        errmsg_copy(errmsg, "data fsm: out of memory");
        goto err;
    }
    f->fetch = cfg->fetch;
    f->fetch_arg = cfg->fetch_arg;
    f->notify = cfg->notify;
    f->notify_arg = cfg->notify_arg;
    doorbell_init(&f->bell);

    rc = mdb_env_create(&f->env);
    if (rc != 0)
        goto lmdb_fail;
    if ((rc = mdb_env_set_maxdbs(f->env, 4)) != 0 ||
        (rc = mdb_env_set_maxreaders(f->env, 1024)) != 0 ||
        (rc = mdb_env_set_mapsize(f->env,
                                  cfg->map_size ? cfg->map_size : (1ULL << 40))) != 0)
        goto lmdb_fail;
    /* MDB_NOMETASYNC, never MDB_NOSYNC: see the header comment. */
    rc = mdb_env_open(f->env, f->dir, MDB_NOTLS | MDB_NORDAHEAD | MDB_NOMETASYNC, 0644);
    if (rc != 0)
        goto lmdb_fail;
    int dead;
    mdb_reader_check(f->env, &dead);
    rc = mdb_txn_begin(f->env, NULL, 0, &txn);
    if (rc != 0)
        goto lmdb_fail;
    if ((rc = mdb_dbi_open(txn, "entries", MDB_CREATE, &f->entries)) != 0 ||
        (rc = mdb_dbi_open(txn, "segs", MDB_CREATE, &f->segs)) != 0 ||
        (rc = mdb_dbi_open(txn, "meta", MDB_CREATE, &f->meta)) != 0) {
        mdb_txn_abort(txn);
        goto lmdb_fail;
    }
    rc = fsm_get_state(f, txn, &f->st);
    if (rc == 0)
        rc = fsm_get_xfer(f, txn, &f->want, &partial);
    if (rc == 0)
        rc = mdb_txn_commit(txn);
    else
        mdb_txn_abort(txn);
    if (rc == MDB_CORRUPTED) {
        errmsg_printf(errmsg, "data fsm %s: unknown state record format", cfg->dir);
        rv = DLOG_ECORRUPT;
        goto err;
    }
    if (rc != 0)
        goto lmdb_fail;
    if (partial) {
        /* A transfer was cut short (a crash): the contents are partial. */
        atomic_store(&f->behind, 1);
        log_warn("data-fsm",
                 "%s: a transfer of the state at index %llu was interrupted: "
                 "loading it again before applying",
                 f->dir, (unsigned long long)f->want.applied);
    }
    if (cfg->write_behind && fsm_wb_start(f) != 0) {
        errmsg_printf(errmsg, "data fsm %s: cannot start the writer thread", cfg->dir);
        rv = DLOG_ENOMEM;
        goto err;
    }
    *out = f;
    return 0;

lmdb_fail:
    errmsg_printf(errmsg, "data fsm %s: %s", cfg->dir, mdb_strerror(rc));
    if (rc == MDB_MAP_FULL || rc == ENOSPC)
        rv = DLOG_ENOSPC;
    else if (rc == ENOMEM)
        rv = DLOG_ENOMEM;
err:
    if (f != NULL) {
        if (f->env != NULL)
            mdb_env_close(f->env);
        free(f->dir);
        free(f);
    }
    return rv;
}

void data_fsm_close(struct data_fsm *f)
{
    if (f == NULL)
        return;
    fsm_wb_stop(f);
    mdb_env_close(f->env);
    doorbell_close(&f->bell);
    free(f->dir);
    free(f);
}

/* A read transaction; 0 or a DLOG_E* code. */
static int read_begin(struct data_fsm *f, MDB_txn **txn, const char *what)
{
    int rc = mdb_txn_begin(f->env, NULL, MDB_RDONLY, txn);
    return rc == 0 ? 0 : fsm_lmdb_err(f, rc, what);
}

static int not_found(struct data_fsm *f, int rv, uint64_t stream, uint64_t seq)
{
    if (rv == DLOG_ENOTFOUND)
        errmsg_printf(f->errmsg, "segment %llu of stream %llu not found",
                      (unsigned long long)seq, (unsigned long long)stream);
    return rv;
}

int data_fsm_read(struct data_fsm *f, uint64_t stream, uint64_t seq, uint64_t from,
                  size_t max_bytes, seg_visit_fn visit, void *arg)
{
    MDB_txn *txn;
    MDB_cursor *cur = NULL;
    struct seg_info info;
    uint8_t k[FSM_KEY_ENTRY];
    MDB_val key = {sizeof k, k}, val;
    size_t bytes = 0;
    int count = 0, rc;
    int rv = read_begin(f, &txn, "read");

    if (rv != 0)
        return rv;
    rv = fsm_get_info(f, txn, stream, seq, &info);
    if (rv != 0) {
        mdb_txn_abort(txn);
        return not_found(f, fsm_result(f, rv, "read"), stream, seq);
    }
    rc = mdb_cursor_open(txn, f->entries, &cur);
    if (rc != 0) {
        mdb_txn_abort(txn);
        return fsm_lmdb_err(f, rc, "read");
    }
    fsm_entry_key(k, stream, seq, from);
    rc = mdb_cursor_get(cur, &key, &val, MDB_SET_RANGE);
    while (rc == 0 && count < INT32_MAX) {
        const uint8_t *kp = key.mv_data;
        if (key.mv_size != FSM_KEY_ENTRY || memcmp(kp, k, FSM_KEY_SEG) != 0)
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
        return fsm_lmdb_err(f, rc, "read");
    return count;
}

int data_fsm_info(struct data_fsm *f, uint64_t stream, uint64_t seq, struct seg_info *out)
{
    MDB_txn *txn;
    int rv = read_begin(f, &txn, "info");

    if (rv != 0)
        return rv;
    rv = fsm_get_info(f, txn, stream, seq, out);
    mdb_txn_abort(txn);
    return not_found(f, fsm_result(f, rv, "info"), stream, seq);
}

int data_fsm_state(struct data_fsm *f, struct data_fsm_state *out)
{
    MDB_txn *txn;
    int rv = read_begin(f, &txn, "state");

    if (rv != 0)
        return rv;
    rv = fsm_get_state(f, txn, out);
    mdb_txn_abort(txn);
    return fsm_result(f, rv, "state");
}

int data_fsm_sync(struct data_fsm *f)
{
    return fsm_wb_drain(f);
}

uint32_t data_fsm_notify_seq(struct data_fsm *f)
{
    return doorbell_read(&f->bell);
}

int data_fsm_notify_wait(struct data_fsm *f, uint32_t seen, int timeout_ms)
{
    return doorbell_wait(&f->bell, seen, timeout_ms);
}

/* f->st is at or ahead of want (the same contents when at the same index). */
static int reached(const struct data_fsm_state *st, const struct data_fsm_state *want)
{
    return st->applied > want->applied ||
           (st->applied == want->applied && st->hash == want->hash);
}

/* Behind no more: f's state reached f->want (by a load). */
static void caught_up(struct data_fsm *f)
{
    atomic_store(&f->behind, 0);
    log_info("data-fsm", "%s: fetched the state at index %llu (snapshot %llu)", f->dir,
             (unsigned long long)f->st.applied, (unsigned long long)f->want.applied);
    fsm_changed(f, f->st.applied);
}

int fsm_catch_up(struct data_fsm *f)
{
    int rv;

    /* A load that committed on its own (another thread's, or a caller's
     * outside fetch): f->st is its state once no load is open. */
    if (!atomic_load(&f->loading) && reached(&f->st, &f->want)) {
        caught_up(f);
        return 0;
    }
    if (f->fetch == NULL) {
        errmsg_printf(f->errmsg,
                      "data fsm %s: at index %llu, behind the snapshot at %llu, "
                      "and no fetch hook",
                      f->dir, (unsigned long long)f->st.applied,
                      (unsigned long long)f->want.applied);
        return DLOG_EUNAVAILABLE;
    }
    rv = f->fetch(f->fetch_arg, f, &f->want);
    if (rv != 0) {
        errmsg_printf(f->errmsg, "data fsm %s: fetching the state at index %llu: %s",
                      f->dir, (unsigned long long)f->want.applied, dlog_strerror(rv));
        return rv < 0 ? rv : DLOG_EUNAVAILABLE;
    }
    if (!reached(&f->st, &f->want)) {
        errmsg_printf(f->errmsg,
                      "data fsm %s: fetch brought index %llu, not the snapshot's %llu",
                      f->dir, (unsigned long long)f->st.applied,
                      (unsigned long long)f->want.applied);
        return DLOG_EUNAVAILABLE;
    }
    caught_up(f);
    return 0;
}

/*
 * Raft (Figure 5.3, InstallSnapshot): "8. Reset state machine using
 * snapshot contents". Here the contents stay in LMDB: a state at or beyond
 * the snapshot's index is kept (the commands after the snapshot are then
 * skipped as libraft feeds them), an older one is replaced by a peer's.
 */
int data_fsm_restore(struct data_fsm *f, const struct data_fsm_state *snap)
{
    int rv = fsm_wb_drain(f); /* f->st is then LMDB's */

    if (rv != 0)
        return rv;
    if (!atomic_load(&f->behind)) {
        if (reached(&f->st, snap))
            return 0;
        if (f->st.applied == snap->applied)
            log_error("data-fsm",
                      "%s: at index %llu the digest is %016llx, the snapshot's %016llx: "
                      "fetching the contents again",
                      f->dir, (unsigned long long)snap->applied,
                      (unsigned long long)f->st.hash, (unsigned long long)snap->hash);
        f->want = *snap;
        atomic_store(&f->behind, 1);
    } else if (snap->applied > f->want.applied) {
        f->want = *snap;
    }
    return fsm_catch_up(f);
}

int data_fsm_behind(const struct data_fsm *f)
{
    return atomic_load(&((struct data_fsm *)f)->behind);
}

int data_fsm_catch_up(struct data_fsm *f)
{
    if (!atomic_load(&f->behind))
        return 0;
    if (atomic_load(&f->loading))
        return DLOG_EBUSY;
    return fsm_catch_up(f);
}
