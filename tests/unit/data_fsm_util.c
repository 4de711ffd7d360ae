/*
 * Helpers of test-data-fsm (data_fsm_util.h).
 */
#define _GNU_SOURCE /* nftw */
#include "data_fsm_util.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "base/crc32c.h"
#include "seg/entry.h"

void tdir_make(char *buf, size_t size, const char *prefix)
{
    ck_assert_int_lt(snprintf(buf, size, "/tmp/%s-XXXXXX", prefix), (int)size);
    ck_assert_ptr_nonnull(mkdtemp(buf));
}

void tdir_sub(char *buf, size_t size, const char *dir, const char *name)
{
    ck_assert_int_lt(snprintf(buf, size, "%s/%s", dir, name), (int)size);
    ck_assert_int_eq(mkdir(buf, 0755), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void tdir_remove(const char *dir)
{
    ck_assert_int_eq(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

struct iovec make_entry(uint64_t txid, int n, uint8_t eflags)
{
    struct entry_builder b;
    const uint8_t *p;
    size_t len;
    struct iovec iov;
    char payload[48];

    entry_builder_init(&b);
    for (int i = 0; i < n; i++) {
        int plen = snprintf(payload, sizeof payload, "record %llu",
                            (unsigned long long)(txid + (uint64_t)i));
        uint32_t rflags = 0;
        if (eflags & ENTRY_F_FRAGMENT)
            rflags = (eflags & ENTRY_F_CONT) ? REC_F_FRAG_LAST : REC_F_FRAG_FIRST;
        ck_assert_int_eq(entry_builder_add(&b, rflags, txid + (uint64_t)i, "k", 1,
                                           payload, (size_t)plen, 2 * (uint64_t)plen),
                         0);
    }
    ck_assert_int_eq(entry_builder_finish(&b, DLOG_COMPRESS_NONE, eflags, NULL, &p, &len),
                     0);
    iov.iov_base = malloc(len);
    ck_assert_ptr_nonnull(iov.iov_base);
    memcpy(iov.iov_base, p, len);
    iov.iov_len = len;
    entry_builder_free(&b);
    return iov;
}

void free_entries(struct iovec *v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i].iov_base);
}

struct bytes cmd_bytes(const struct data_cmd *c)
{
    struct bytes b;

    bytes_init(&b);
    ck_assert_int_eq(data_cmd_encode_bytes(c, &b), 0);
    return b;
}

struct data_cmd cmd_open(uint64_t stream, uint64_t seq, uint64_t epoch,
                         uint64_t start_txid, uint64_t created_ms)
{
    struct data_cmd c = {.op = DATA_CMD_OPEN,
                         .stream = stream,
                         .seq = seq,
                         .epoch = epoch,
                         .start_txid = start_txid,
                         .created_ms = created_ms};
    return c;
}

struct data_cmd cmd_append(uint64_t stream, uint64_t seq, uint64_t epoch, uint32_t flags,
                           const struct iovec *e, uint32_t n)
{
    struct data_cmd c = {.op = DATA_CMD_APPEND,
                         .stream = stream,
                         .seq = seq,
                         .epoch = epoch,
                         .flags = flags,
                         .n = n,
                         .entries = e};
    return c;
}

struct data_cmd cmd_simple(int op, uint64_t stream, uint64_t seq, uint64_t epoch)
{
    struct data_cmd c = {.op = op, .stream = stream, .seq = seq, .epoch = epoch};
    return c;
}

int fsm_test_write_behind;

struct data_fsm *fsm_open(const char *dir, data_fsm_fetch_fn fetch, void *fetch_arg)
{
    return fsm_open_wb(dir, fetch, fetch_arg, fsm_test_write_behind);
}

struct data_fsm *fsm_open_wb(const char *dir, data_fsm_fetch_fn fetch, void *fetch_arg,
                             int write_behind)
{
    struct data_fsm_config cfg = {.version = DATA_FSM_CONFIG_VERSION,
                                  .dir = dir,
                                  .map_size = TEST_MAP_SIZE,
                                  .fetch = fetch,
                                  .fetch_arg = fetch_arg,
                                  .write_behind = write_behind};
    struct data_fsm *f = NULL;
    char err[DLOG_ERRMSG_SIZE] = "";

    ck_assert_msg(data_fsm_open(&cfg, &f, err) == 0, "open %s: %s", dir, err);
    ck_assert_ptr_nonnull(f);
    return f;
}

int fsm_apply_cmd(struct data_fsm *f, uint64_t index, const struct data_cmd *c,
                  struct data_fsm_result *res)
{
    struct bytes b = cmd_bytes(c);
    int rv = data_fsm_apply(f, index, b.p, b.len, res);

    ck_assert_msg(rv == 0, "apply at %llu: %s", (unsigned long long)index,
                  data_fsm_errmsg(f));
    bytes_free(&b);
    /* Write-behind: LMDB gets it before the test reads (and the writer's
     * check of the model's result fails the sync if they differ). */
    ck_assert_msg(data_fsm_sync(f) == 0, "sync: %s", data_fsm_errmsg(f));
    return res->status;
}

struct digest {
    uint32_t crc;
    int skip_state;
    struct data_fsm_state st;
};

static int digest_item(void *arg, const struct data_fsm_item *it)
{
    struct digest *d = arg;
    uint8_t hdr[1 + 3 * 8 + 10 * 8];

    memset(hdr, 0, sizeof hdr);
    hdr[0] = (uint8_t)it->kind;
    if (it->kind == DATA_FSM_ITEM_STATE) {
        d->st = it->state;
        if (d->skip_state)
            return 0;
        put_u64be(hdr + 1, it->state.applied);
        put_u64be(hdr + 9, it->state.hash);
        put_u64be(hdr + 17, it->state.entries);
    } else {
        put_u64be(hdr + 1, it->stream);
        put_u64be(hdr + 9, it->seq);
        put_u64be(hdr + 17, it->entry);
        if (it->kind == DATA_FSM_ITEM_SEG) {
            const struct seg_info *i = &it->info;
            const uint64_t v[10] = {
                i->fence_epoch,    (uint64_t)i->sealed, i->next_entry, i->records,
                i->bytes,          i->first_txid,       i->last_txid,  i->created_ms,
                i->last_rec_entry, i->last_rec_slot};
            for (int k = 0; k < 10; k++)
                put_u64be(hdr + 25 + 8 * k, v[k]);
        }
    }
    d->crc = crc32c_extend(d->crc, hdr, sizeof hdr);
    if (it->kind == DATA_FSM_ITEM_ENTRY)
        d->crc = crc32c_extend(d->crc, it->p, it->len);
    return 0;
}

uint32_t fsm_digest(struct data_fsm *f, struct data_fsm_state *st)
{
    struct digest d = {0};

    ck_assert_int_eq(data_fsm_sync(f), 0);
    ck_assert_int_eq(data_fsm_dump(f, digest_item, &d), 0);
    if (st != NULL)
        *st = d.st;
    return d.crc;
}

uint32_t fsm_contents(struct data_fsm *f)
{
    struct digest d = {0, 1, {0}};

    ck_assert_int_eq(data_fsm_sync(f), 0);
    ck_assert_int_eq(data_fsm_dump(f, digest_item, &d), 0);
    return d.crc;
}

static int load_item(void *arg, const struct data_fsm_item *it)
{
    return data_fsm_load_item(arg, it);
}

int test_fsm_state(struct data_fsm *f, struct data_fsm_state *st)
{
    int rv = data_fsm_sync(f);

    return rv != 0 ? rv : data_fsm_state(f, st);
}

int fsm_copy(struct data_fsm *src, struct data_fsm *dst)
{
    struct data_fsm_load *ld;
    int rv = data_fsm_sync(src); /* write-behind: its LMDB holds all it applied */

    if (rv != 0)
        return rv;
    rv = data_fsm_load_begin(dst, NULL, &ld);

    if (rv != 0)
        return rv;
    rv = data_fsm_dump(src, load_item, ld);
    if (rv != 0) {
        data_fsm_load_abort(ld);
        return rv;
    }
    return data_fsm_load_commit(ld);
}
