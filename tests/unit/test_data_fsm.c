/*
 * test-data-fsm: the state machine of a data group (src/node/data_fsm.h).
 *
 * This file: the command codec, apply semantics against seg.h (as
 * seg_lmdb.c and the seg_mem cases of test_stores.c), skipping after a
 * restart, the change counter, state transfer, restore, the snapshot format
 * and the raft_fsm adapter's ownership rules. test_data_fsm_cluster.c runs
 * three replicas on raft/fixture.h. Exit status 0 when all checks pass.
 */
#include <pthread.h>
#include <raft.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlog/err.h>

#include "data_fsm_util.h"
#include "node/data_fsm_int.h"
#include "seg/entry.h"

static char dir[64];
static char dir_a[96], dir_b[96];

static void setup(void)
{
    tdir_make(dir, sizeof dir, "dlog-dfsm");
    tdir_sub(dir_a, sizeof dir_a, dir, "a");
    tdir_sub(dir_b, sizeof dir_b, dir, "b");
}

static void teardown(void)
{
    tdir_remove(dir);
}

struct collected {
    int n;
    uint64_t ids[64];
    struct entry_hdr hdr[64];
    size_t len[64];
    int stop_after; /* 0: never */
};

static int collect(void *arg, uint64_t id, const void *p, size_t len)
{
    struct collected *c = arg;

    ck_assert_int_lt(c->n, 64);
    ck_assert_int_eq(entry_verify(p, len), 0);
    ck_assert_int_eq(entry_parse_hdr(p, len, &c->hdr[c->n]), 0);
    c->ids[c->n] = id;
    c->len[c->n] = len;
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

/* ------------------------------------------------------------ codec */

START_TEST(test_codec_round_trip)
{
    struct iovec e[2] = {make_entry(5, 2, 0), make_entry(7, 1, 0)};
    struct data_cmd in[5] = {
        cmd_open(1, 2, 3, 4, 1700000000000ULL),
        cmd_append(UINT64_MAX, 9, 8, SEG_APPEND_AUTO_TXID, e, 2),
        cmd_simple(DATA_CMD_FENCE, 1, 2, 77),
        cmd_simple(DATA_CMD_SEAL, 1, 2, 78),
        cmd_simple(DATA_CMD_REMOVE, 1, 2, 0),
    };

    for (int k = 0; k < 5; k++) {
        struct bytes b = cmd_bytes(&in[k]);
        struct data_cmd out;

        ck_assert_uint_eq(b.len, data_cmd_size(&in[k]));
        ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), 0);
        ck_assert_int_eq(out.op, in[k].op);
        ck_assert_uint_eq(out.stream, in[k].stream);
        ck_assert_uint_eq(out.seq, in[k].seq);
        ck_assert_uint_eq(out.epoch, in[k].epoch);
        ck_assert_uint_eq(out.start_txid, in[k].start_txid);
        ck_assert_uint_eq(out.created_ms, in[k].created_ms);
        ck_assert_uint_eq(out.flags, in[k].flags);
        ck_assert_uint_eq(out.n, in[k].n);
        if (out.op == DATA_CMD_APPEND) {
            struct data_cmd_iter it;
            const uint8_t *p;
            size_t len;
            uint32_t n = 0;

            data_cmd_iter_init(&it, &out);
            while (data_cmd_iter_next(&it, &p, &len)) {
                ck_assert_uint_eq(len, e[n].iov_len);
                ck_assert_int_eq(memcmp(p, e[n].iov_base, len), 0);
                n++;
            }
            ck_assert_uint_eq(n, 2);
        }
        /* Every truncation and one trailing byte are malformed. */
        for (size_t len = 0; len < b.len; len++)
            ck_assert_int_eq(data_cmd_decode(b.p, len, &out), DLOG_EPROTO);
        ck_assert_int_eq(bytes_put_u8(&b, 0), 0);
        ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
        bytes_free(&b);
    }

    /* The raft_malloc'd form. */
    struct raft_buffer rb;
    ck_assert_int_eq(data_cmd_encode(&in[1], &rb), 0);
    ck_assert_uint_eq(rb.len, data_cmd_size(&in[1]));
    struct data_cmd out;
    ck_assert_int_eq(data_cmd_decode(rb.base, rb.len, &out), 0);
    ck_assert_uint_eq(out.n, 2);
    raft_free(rb.base);
    free_entries(e, 2);
}
END_TEST

START_TEST(test_codec_malformed)
{
    struct data_cmd c = cmd_simple(DATA_CMD_FENCE, 1, 1, 1), out;
    struct bytes b = cmd_bytes(&c);
    struct raft_buffer rb;

    b.p[0] = DATA_CMD_VERSION + 1; /* unknown version */
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    b.p[0] = DATA_CMD_VERSION;
    b.p[1] = 0; /* unknown ops */
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    b.p[1] = 6;
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    ck_assert_int_eq(data_cmd_decode(NULL, 0, &out), DLOG_EPROTO);
    bytes_free(&b);

    /* An APPEND claiming more entries, or longer ones, than it holds. */
    struct iovec e[1] = {make_entry(1, 1, 0)};
    c = cmd_append(1, 1, 1, 0, e, 1);
    b = cmd_bytes(&c);
    put_u32be(b.p + 2 + 24 + 4, 2);
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    put_u32be(b.p + 2 + 24 + 4, 0); /* fewer: bytes left over */
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    put_u32be(b.p + 2 + 24 + 4, 1);
    put_u32be(b.p + 2 + 24 + 8, 0xffffffffu);
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &out), DLOG_EPROTO);
    bytes_free(&b);

    /* What cannot be encoded. */
    c.op = 99;
    ck_assert_uint_eq(data_cmd_size(&c), 0);
    ck_assert_int_eq(data_cmd_encode(&c, &rb), DLOG_EINVAL);
    c = cmd_append(1, 1, 1, 0, NULL, 3);
    ck_assert_uint_eq(data_cmd_size(&c), 0);
    free_entries(e, 1);
}
END_TEST

/* ------------------------------------------------------------ apply */

START_TEST(test_apply_open_append_read)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[3] = {make_entry(11, 2, 0), make_entry(13, 1, 0),
                         make_entry(13, 3, 0)};
    struct data_cmd c;
    struct data_fsm_result r;
    struct data_fsm_state st;
    struct seg_info info;
    struct collected col = {0};
    uint64_t ix = 1;

    c = cmd_open(1, 1, 5, 10, 1700000000123ULL);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(r.op, DATA_CMD_OPEN);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 5);
    ck_assert_uint_eq(info.last_txid, 10);
    ck_assert_uint_eq(info.first_txid, 0);
    ck_assert_uint_eq(info.next_entry, 0);
    ck_assert_int_eq(info.sealed, 0);
    /* The proposer's clock, carried in the command. */
    ck_assert_uint_eq(info.created_ms, 1700000000123ULL);

    c = cmd_append(1, 1, 5, 0, e, 2);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 0);
    ck_assert_uint_eq(r.first_txid, 11);
    ck_assert_uint_eq(r.info.next_entry, 2);
    ck_assert_uint_eq(r.info.records, 3);
    ck_assert_uint_eq(r.info.bytes, e[0].iov_len + e[1].iov_len);
    ck_assert_uint_eq(r.info.first_txid, 11);
    ck_assert_uint_eq(r.info.last_txid, 13);
    ck_assert_uint_eq(r.info.last_rec_entry, 1);
    ck_assert_uint_eq(r.info.last_rec_slot, 0);

    /* A txid equal to the last one is allowed (non-decreasing). */
    c = cmd_append(1, 1, 5, 0, &e[2], 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 2);
    ck_assert_uint_eq(r.first_txid, 13);
    ck_assert_uint_eq(r.info.records, 6);
    ck_assert_uint_eq(r.info.last_txid, 15);
    ck_assert_uint_eq(r.info.last_rec_slot, 2);

    /* OPEN of an existing segment changes nothing. */
    c = cmd_open(1, 1, 9, 99, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.info.fence_epoch, 5);
    ck_assert_uint_eq(r.info.next_entry, 3);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 5);
    ck_assert_uint_eq(info.created_ms, 1700000000123ULL);

    ck_assert_int_eq(data_fsm_read(f, 1, 1, 0, SIZE_MAX, collect, &col), 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(col.ids[i], (uint64_t)i);
        ck_assert_uint_eq(col.len[i], e[i].iov_len);
    }
    ck_assert_uint_eq(col.hdr[2].base_txid, 13);
    /* max_bytes: at least one entry, then stop once reached. */
    memset(&col, 0, sizeof col);
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 1, 1, collect, &col), 1);
    ck_assert_uint_eq(col.ids[0], 1);
    memset(&col, 0, sizeof col);
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 0, e[0].iov_len + 1, collect, &col), 2);
    memset(&col, 0, sizeof col);
    col.stop_after = 1;
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 0, SIZE_MAX, collect, &col), 1);
    memset(&col, 0, sizeof col);
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 3, SIZE_MAX, collect, &col), 0);
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 1000, SIZE_MAX, collect, &col), 0);

    /* Other segments are separate. */
    ck_assert_int_eq(data_fsm_read(f, 1, 2, 0, SIZE_MAX, collect, &col), DLOG_ENOTFOUND);
    ck_assert_str_ne(data_fsm_errmsg(f), "");
    ck_assert_int_eq(data_fsm_info(f, 2, 1, &info), DLOG_ENOTFOUND);
    c = cmd_append(2, 1, 5, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ENOTFOUND);
    ck_assert_str_ne(r.errmsg, "");
    c = cmd_open(2, 1, 0, 0, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_append(2, 1, 0, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 0);

    /* The stored state counts what is stored and is at the last index. */
    ck_assert_int_eq(test_fsm_state(f, &st), 0);
    ck_assert_uint_eq(st.applied, ix - 1);
    ck_assert_uint_eq(st.segments, 2);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.bytes, e[0].iov_len * 2 + e[1].iov_len + e[2].iov_len);
    free_entries(e, 3);
    data_fsm_close(f);
}
END_TEST

START_TEST(test_apply_all_or_nothing)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[3] = {make_entry(20, 1, 0), make_entry(21, 1, 0), make_entry(5, 1, 0)};
    struct data_cmd c;
    struct data_fsm_result r;
    struct data_fsm_state st0, st;
    struct seg_info info;
    uint8_t junk[64] = {0};
    uint32_t d0;
    uint64_t ix = 1;

    c = cmd_open(7, 1, 1, 10, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(test_fsm_state(f, &st0), 0);
    d0 = fsm_contents(f);

    /* The third entry's txid is below the second's last: nothing goes in,
     * yet the command is applied (its index and digest move on). */
    c = cmd_append(7, 1, 1, 0, e, 3);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ETXID);
    ck_assert_str_ne(r.errmsg, "");
    ck_assert_uint_eq(r.first_entry, 0);
    ck_assert_int_eq(data_fsm_info(f, 7, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);
    ck_assert_uint_eq(info.records, 0);
    ck_assert_uint_eq(info.bytes, 0);
    ck_assert_uint_eq(info.last_txid, 10);
    ck_assert_int_eq(test_fsm_state(f, &st), 0);
    ck_assert_uint_eq(st.applied, 2);
    ck_assert_uint_ne(st.hash, st0.hash);
    ck_assert_uint_eq(st.entries, 0);

    /* Below the carried last txid. */
    c = cmd_append(7, 1, 1, 0, &e[2], 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ETXID);

    /* A malformed entry after a good one; a short one; a length mismatch. */
    struct iovec bad[2] = {e[0], {junk, sizeof junk}};
    c = cmd_append(7, 1, 1, 0, bad, 2);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ECORRUPT);
    bad[1].iov_len = 3;
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ECORRUPT);
    bad[1] = e[1];
    bad[1].iov_len--;
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ECORRUPT);
    /* No entries at all. */
    c = cmd_append(7, 1, 1, 0, e, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_EINVAL);

    /* The contents never changed. */
    ck_assert_uint_eq(fsm_contents(f), d0);
    ck_assert_int_eq(data_fsm_info(f, 7, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);

    /* The good two go in. */
    c = cmd_append(7, 1, 1, 0, e, 2);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.info.next_entry, 2);
    ck_assert_uint_eq(r.info.last_txid, 21);
    ck_assert_uint_eq(r.info.first_txid, 20);
    free_entries(e, 3);
    data_fsm_close(f);
}
END_TEST

START_TEST(test_apply_auto_txid)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    /* Writers' own txids (1, 1..2) are replaced. */
    struct iovec e[4] = {make_entry(1, 2, 0), make_entry(1, 1, 0),
                         make_entry(1, 1, ENTRY_F_FRAGMENT),
                         make_entry(1, 1, ENTRY_F_FRAGMENT | ENTRY_F_CONT)};
    uint8_t *orig = malloc(e[0].iov_len);
    struct data_cmd c;
    struct data_fsm_result r;
    struct collected col = {0};

    memcpy(orig, e[0].iov_base, e[0].iov_len);
    c = cmd_open(1, 3, 1, 100, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, 1, &c, &r), 0);
    c = cmd_append(1, 3, 1, SEG_APPEND_AUTO_TXID, e, 2);
    ck_assert_int_eq(fsm_apply_cmd(f, 2, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 0);
    ck_assert_uint_eq(r.first_txid, 101);
    ck_assert_uint_eq(r.info.first_txid, 101);
    ck_assert_uint_eq(r.info.last_txid, 103);
    /* The command's bytes are untouched: the FSM renumbers its copy. */
    ck_assert_int_eq(memcmp(orig, e[0].iov_base, e[0].iov_len), 0);

    /* A fragmented record: the continuation shares the first one's txid. */
    c = cmd_append(1, 3, 1, SEG_APPEND_AUTO_TXID, &e[2], 2);
    ck_assert_int_eq(fsm_apply_cmd(f, 3, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 2);
    ck_assert_uint_eq(r.first_txid, 104);
    ck_assert_uint_eq(r.info.last_txid, 104);
    /* A large record counts once, however many fragments it has. */
    ck_assert_uint_eq(r.info.records, 4);
    ck_assert_uint_eq(r.info.last_rec_entry, 2);

    /* Stored entries carry the new txids with a valid CRC (collect verifies). */
    ck_assert_int_eq(data_fsm_read(f, 1, 3, 0, SIZE_MAX, collect, &col), 4);
    ck_assert_uint_eq(col.hdr[0].base_txid, 101);
    ck_assert_uint_eq(col.hdr[0].last_txid, 102);
    ck_assert_uint_eq(col.hdr[1].base_txid, 103);
    ck_assert_uint_eq(col.hdr[2].base_txid, 104);
    ck_assert_uint_eq(col.hdr[3].base_txid, 104);

    /* Overflowing txids are refused. */
    c = cmd_open(1, 4, 1, UINT64_MAX, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, 4, &c, &r), 0);
    c = cmd_append(1, 4, 1, SEG_APPEND_AUTO_TXID, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, 5, &c, &r), DLOG_ETXID);
    free(orig);
    free_entries(e, 4);
    data_fsm_close(f);
}
END_TEST

START_TEST(test_apply_fence_seal)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct data_cmd c;
    struct data_fsm_result r;
    struct seg_info info;
    uint64_t ix = 1;

    c = cmd_open(1, 1, 1, 0, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_simple(DATA_CMD_FENCE, 1, 1, 3);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.info.fence_epoch, 3);
    c = cmd_simple(DATA_CMD_FENCE, 1, 1, 2); /* never lowers */
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.info.fence_epoch, 3);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 3);

    c = cmd_append(1, 1, 2, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_EFENCED);
    ck_assert_str_ne(r.errmsg, "");
    ck_assert_uint_eq(r.info.fence_epoch, 3);
    c = cmd_append(1, 1, 4, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_simple(DATA_CMD_FENCE, 9, 9, 3);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ENOTFOUND);

    c = cmd_simple(DATA_CMD_SEAL, 1, 1, 2);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_EFENCED);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_int_eq(info.sealed, 0);
    c = cmd_simple(DATA_CMD_SEAL, 1, 1, 3);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(r.info.sealed, 1);
    ck_assert_uint_eq(r.info.next_entry, 1);
    ck_assert_uint_eq(r.info.last_txid, 1);
    c = cmd_simple(DATA_CMD_SEAL, 1, 1, 5); /* idempotent */
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(r.info.sealed, 1);
    ck_assert_uint_eq(r.info.next_entry, 1);

    /* A sealed segment refuses appends, even at a newer epoch. */
    c = cmd_append(1, 1, 9, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ESEALED);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 1);
    c = cmd_simple(DATA_CMD_SEAL, 1, 2, 5);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ENOTFOUND);
    free_entries(e, 1);
    data_fsm_close(f);
}
END_TEST

/* APPEND_ONCE: a writer's repeated append is applied once, answered with
 * the first results, even after a fence; an older one is refused; the
 * slots survive FENCE and give way oldest first. */
static struct data_cmd cmd_once(uint64_t epoch, uint64_t writer, uint64_t aseq,
                                struct iovec *e)
{
    struct data_cmd c = cmd_append(1, 1, epoch, SEG_APPEND_AUTO_TXID, e, 1);
    c.op = DATA_CMD_APPEND_ONCE;
    c.writer = writer;
    c.append_seq = aseq;
    return c;
}

START_TEST(test_apply_append_once)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[1] = {make_entry(1, 3, 0)};
    struct data_cmd c, d;
    struct data_fsm_result r;
    struct seg_info info;
    uint64_t ix = 1;

    /* The codec carries writer and sequence; zero is not a writer. */
    c = cmd_once(1, 77, 1, e);
    struct bytes b = cmd_bytes(&c);
    ck_assert_int_eq(data_cmd_decode(b.p, b.len, &d), 0);
    ck_assert_int_eq(d.op, DATA_CMD_APPEND_ONCE);
    ck_assert_uint_eq(d.writer, 77);
    ck_assert_uint_eq(d.append_seq, 1);
    bytes_free(&b);
    c.writer = 0;
    ck_assert_uint_eq(data_cmd_size(&c), 0);

    c = cmd_open(1, 1, 1, 0, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_once(1, 77, 1, e);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 0);
    ck_assert_uint_eq(r.first_txid, 1);
    /* The reply was lost; the same append again: same answer, no copy. */
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 0);
    ck_assert_uint_eq(r.first_txid, 1);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 1);
    ck_assert_uint_eq(info.records, 3);
    /* The writer's next append goes in; then its old one is refused. */
    c = cmd_once(1, 77, 2, e);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 1);
    ck_assert_uint_eq(r.first_txid, 4);
    c = cmd_once(1, 77, 1, e);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ECONFLICT);
    /* A fence (another writer took over) keeps the slot: the repeat of the
     * last append still answers as applied, a new one is fenced. */
    c = cmd_simple(DATA_CMD_FENCE, 1, 1, 5);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_once(1, 77, 2, e);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 1);
    c = cmd_once(1, 77, 3, e);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_EFENCED);
    /* Four more writers: the oldest slot (writer 77's) gives way. */
    for (uint64_t w = 100; w < 104; w++) {
        c = cmd_once(5, w, 1, e);
        ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    }
    c = cmd_once(5, 77, 2, e); /* forgotten: taken as new */
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 6);
    c = cmd_once(5, 103, 1, e); /* still known */
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 5);
    ck_assert_int_eq(data_fsm_info(f, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 7);
    ck_assert_uint_eq(info.fence_epoch, 5);
    /* A replica loaded by state transfer holds the slots too: the repeat
     * is answered, not stored again, there as here. */
    struct data_fsm *g = fsm_open(dir_b, NULL, NULL);
    ck_assert_int_eq(fsm_copy(f, g), 0);
    c = cmd_once(5, 103, 1, e);
    ck_assert_int_eq(fsm_apply_cmd(g, ix, &c, &r), 0);
    ck_assert_uint_eq(r.first_entry, 5);
    ck_assert_int_eq(data_fsm_info(g, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 7);
    data_fsm_close(g);
    free_entries(e, 1);
    data_fsm_close(f);
}
END_TEST

START_TEST(test_apply_remove)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[2] = {make_entry(1, 1, 0), make_entry(2, 3, 0)};
    struct data_cmd c;
    struct data_fsm_result r;
    struct data_fsm_state st;
    struct seg_info info;
    struct collected col = {0};
    uint64_t ix = 1;

    for (uint64_t seq = 1; seq <= 3; seq++) {
        c = cmd_open(1, seq, 0, 0, 0);
        ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
        c = cmd_append(1, seq, 0, 0, e, 2);
        ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    }
    c = cmd_simple(DATA_CMD_REMOVE, 1, 2, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(data_fsm_info(f, 1, 2, &info), DLOG_ENOTFOUND);
    ck_assert_int_eq(data_fsm_read(f, 1, 2, 0, SIZE_MAX, collect, &col), DLOG_ENOTFOUND);
    c = cmd_append(1, 2, 0, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), DLOG_ENOTFOUND);
    /* The neighbours are intact. */
    ck_assert_int_eq(data_fsm_read(f, 1, 1, 0, SIZE_MAX, collect, &col), 2);
    ck_assert_int_eq(data_fsm_read(f, 1, 3, 0, SIZE_MAX, collect, &col), 2);
    ck_assert_int_eq(test_fsm_state(f, &st), 0);
    ck_assert_uint_eq(st.segments, 2);
    ck_assert_uint_eq(st.entries, 4);
    ck_assert_uint_eq(st.bytes, 2 * (e[0].iov_len + e[1].iov_len));

    /* Idempotent, also for what never existed. */
    c = cmd_simple(DATA_CMD_REMOVE, 1, 2, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_simple(DATA_CMD_REMOVE, 5, 5, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_int_eq(test_fsm_state(f, &st), 0);
    ck_assert_uint_eq(st.segments, 2);

    /* Opened again: empty. */
    c = cmd_open(1, 2, 0, 7, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    ck_assert_uint_eq(r.info.next_entry, 0);
    ck_assert_uint_eq(r.info.last_txid, 7);
    memset(&col, 0, sizeof col);
    ck_assert_int_eq(data_fsm_read(f, 1, 2, 0, SIZE_MAX, collect, &col), 0);

    for (uint64_t seq = 1; seq <= 3; seq++) {
        c = cmd_simple(DATA_CMD_REMOVE, 1, seq, 0);
        ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    }
    ck_assert_int_eq(test_fsm_state(f, &st), 0);
    ck_assert_uint_eq(st.segments, 0);
    ck_assert_uint_eq(st.entries, 0);
    ck_assert_uint_eq(st.bytes, 0);
    free_entries(e, 2);
    data_fsm_close(f);
}
END_TEST

/* Corrupt command bytes: DLOG_EPROTO, the contents unchanged. */
START_TEST(test_apply_corrupt_command)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct iovec e[2] = {make_entry(1, 2, 0), make_entry(3, 1, 0)};
    struct data_cmd c;
    struct data_fsm_result r;
    struct data_fsm_state st0, st;
    struct seg_info info;
    uint64_t ix = 1;
    uint32_t seq0;

    c = cmd_open(4, 4, 1, 0, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);
    c = cmd_append(4, 4, 1, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, ix++, &c, &r), 0);

    c = cmd_append(4, 4, 1, 0, &e[1], 1);
    struct bytes b = cmd_bytes(&c);
    uint32_t dig = 0;
    for (int k = 0; k < 6; k++) {
        struct bytes m;
        bytes_init(&m);
        ck_assert_int_eq(bytes_append(&m, b.p, b.len), 0);
        switch (k) {
        case 0:
            m.len -= 1;
            break; /* truncated */
        case 1:
            m.p[0] ^= 0x80;
            break; /* version */
        case 2:
            m.p[1] = 0x7f;
            break; /* op */
        case 3:
            put_u32be(m.p + 30, 2);
            break; /* entry count */
        case 4:
            bytes_put_u8(&m, 0);
            break; /* trailing */
        default:
            memset(m.p, 0xa5, m.len);
            break; /* garbage */
        }
        ck_assert_int_eq(test_fsm_state(f, &st0), 0);
        dig = fsm_contents(f);
        seq0 = data_fsm_notify_seq(f);
        ck_assert_int_eq(data_fsm_apply(f, ix, m.p, m.len, &r), 0);
        ck_assert_int_eq(r.status, DLOG_EPROTO);
        ck_assert_int_eq(r.op, 0);
        ck_assert_str_ne(r.errmsg, "");
        ck_assert_int_eq(test_fsm_state(f, &st), 0);
        ck_assert_uint_eq(st.applied, ix);
        ck_assert_uint_ne(st.hash, st0.hash);
        ck_assert_uint_eq(st.entries, st0.entries);
        ck_assert_uint_eq(st.bytes, st0.bytes);
        ck_assert_uint_eq(st.segments, st0.segments);
        ck_assert_uint_ne(data_fsm_notify_seq(f), seq0);
        ck_assert_uint_eq(fsm_contents(f), dig);
        ck_assert_int_eq(data_fsm_info(f, 4, 4, &info), 0);
        ck_assert_uint_eq(info.next_entry, 1);
        ix++;
        bytes_free(&m);
    }
    /* An empty command. */
    ck_assert_int_eq(data_fsm_apply(f, ix++, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, DLOG_EPROTO);
    /* The intact command still works. */
    ck_assert_int_eq(data_fsm_apply(f, ix++, b.p, b.len, &r), 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.first_entry, 1);
    bytes_free(&b);
    free_entries(e, 2);
    data_fsm_close(f);
}
END_TEST

/* ------------------------------------------------------------ restart */

#define N_CMDS 40

/* The i-th command of a fixed history (entries built on demand). */
static struct bytes history_cmd(int i)
{
    struct data_cmd c;
    struct bytes b;

    if (i == 0) {
        c = cmd_open(3, 1, 1, 0, 1700000000000ULL);
        return cmd_bytes(&c);
    }
    if (i == N_CMDS / 2) {
        c = cmd_simple(DATA_CMD_FENCE, 3, 1, 2);
        return cmd_bytes(&c);
    }
    struct iovec e[3] = {make_entry((uint64_t)i * 10, 1, 0),
                         make_entry((uint64_t)i * 10 + 1, 2, 0),
                         make_entry((uint64_t)i * 10 + 3, 1, 0)};
    /* Some at the old epoch: refused after the fence. */
    c = cmd_append(3, 1, (i % 3 == 0) ? 1 : 2, 0, e, 3);
    b = cmd_bytes(&c);
    free_entries(e, 3);
    return b;
}

static void apply_history(struct data_fsm *f, uint64_t first_index, int from, int to,
                          int expect_skipped)
{
    for (int i = from; i < to; i++) {
        struct bytes b = history_cmd(i);
        struct data_fsm_result r;
        ck_assert_int_eq(data_fsm_apply(f, first_index + (uint64_t)i, b.p, b.len, &r), 0);
        ck_assert_int_eq(r.skipped, expect_skipped);
        bytes_free(&b);
    }
}

START_TEST(test_restart_skips_applied)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct data_fsm_state st, st2;
    struct data_fsm_result r;
    uint32_t dig, seq0;

    /* Raft indices start past the configuration entry. */
    apply_history(f, 2, 0, N_CMDS, 0);
    dig = fsm_digest(f, &st);
    ck_assert_uint_eq(st.applied, 2 + N_CMDS - 1);
    data_fsm_close(f);

    /* Reopened: the same state, read back from LMDB. */
    f = fsm_open(dir_a, NULL, NULL);
    ck_assert_uint_eq(fsm_digest(f, &st2), dig);
    ck_assert_uint_eq(st2.applied, st.applied);
    ck_assert_uint_eq(st2.hash, st.hash);

    /* libraft feeds again what followed its last snapshot: all skipped. */
    seq0 = data_fsm_notify_seq(f);
    apply_history(f, 2, N_CMDS / 4, N_CMDS, 1);
    ck_assert_uint_eq(fsm_digest(f, &st2), dig);
    ck_assert_uint_eq(st2.hash, st.hash);
    ck_assert_uint_eq(data_fsm_notify_seq(f), seq0);
    /* Skipping goes by index alone: other bytes at an applied index too. */
    struct iovec e[1] = {make_entry(1000, 1, 0)};
    struct data_cmd c = cmd_append(3, 1, 9, 0, e, 1);
    struct bytes b = cmd_bytes(&c);
    ck_assert_int_eq(data_fsm_apply(f, st.applied, b.p, b.len, &r), 0);
    ck_assert_int_eq(r.skipped, 1);
    ck_assert_uint_eq(fsm_digest(f, NULL), dig);
    /* The next index is applied. */
    ck_assert_int_eq(data_fsm_apply(f, st.applied + 1, b.p, b.len, &r), 0);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(test_fsm_state(f, &st2), 0);
    ck_assert_uint_eq(st2.applied, st.applied + 1);
    bytes_free(&b);
    free_entries(e, 1);
    data_fsm_close(f);

    /* A replica that applied the same history in one go holds the same. */
    struct data_fsm *g = fsm_open(dir_b, NULL, NULL);
    apply_history(g, 2, 0, N_CMDS, 0);
    ck_assert_uint_eq(fsm_digest(g, &st2), dig);
    ck_assert_uint_eq(st2.hash, st.hash);
    data_fsm_close(g);
}
END_TEST

/* The digest depends on the indices: a shifted history is another one. */
START_TEST(test_digest_covers_index)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct data_fsm *g = fsm_open(dir_b, NULL, NULL);
    struct data_fsm_state a, b;

    apply_history(f, 2, 0, 8, 0);
    apply_history(g, 3, 0, 8, 0);
    ck_assert_int_eq(test_fsm_state(f, &a), 0);
    ck_assert_int_eq(test_fsm_state(g, &b), 0);
    ck_assert_uint_eq(a.entries, b.entries);
    ck_assert_uint_ne(a.hash, b.hash);
    data_fsm_close(f);
    data_fsm_close(g);
}
END_TEST

/* ------------------------------------------------------------ write-behind */

/* A deterministic mixed history over 3 streams x 3 segments: opens,
 * appends (auto txids or not, at several epochs), APPEND_ONCE from 5
 * writers (more than the 4 slots: eviction) with repeats and older ones,
 * fences, seals, removes and reopens. */
static struct bytes mixed_cmd(uint64_t *rng, uint64_t once_seq[5], uint64_t *txid)
{
    struct data_cmd c;
    struct bytes b;
    uint64_t r;

    *rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
    r = *rng >> 33;
    uint64_t stream = 1 + r % 3, seq = 1 + (r / 3) % 3, epoch = 1 + (r / 9) % 3;
    unsigned kind = (unsigned)((r / 27) % 20);
    if (kind < 2)
        c = cmd_open(stream, seq, epoch, *txid, 1700000000000ULL + r % 1000);
    else if (kind == 2)
        c = cmd_simple(DATA_CMD_FENCE, stream, seq, epoch);
    else if (kind == 3)
        c = cmd_simple(DATA_CMD_SEAL, stream, seq, epoch);
    else if (kind == 4)
        c = cmd_simple(DATA_CMD_REMOVE, stream, seq, epoch);
    if (kind <= 4)
        return cmd_bytes(&c);
    int n = 1 + (int)(r / 540) % 3;
    struct iovec e[3];
    for (int k = 0; k < n; k++) {
        e[k] = make_entry(*txid, 1 + k, 0);
        *txid += 1 + (uint64_t)k;
    }
    c = cmd_append(stream, seq, epoch, (r & 1) ? SEG_APPEND_AUTO_TXID : 0, e,
                   (uint32_t)n);
    if (kind >= 12) { /* APPEND_ONCE */
        unsigned w = kind % 5;
        c.op = DATA_CMD_APPEND_ONCE;
        c.writer = 11 + w;
        if (kind == 12 && once_seq[w] > 1)
            c.append_seq = once_seq[w] - 1; /* older: refused */
        else if (kind == 13 && once_seq[w] > 0)
            c.append_seq = once_seq[w]; /* a repeat: answered from the slot */
        else
            c.append_seq = ++once_seq[w];
    }
    b = cmd_bytes(&c);
    free_entries(e, n);
    return b;
}

static void assert_same_info(const struct seg_info *x, const struct seg_info *y)
{
    ck_assert_uint_eq(x->fence_epoch, y->fence_epoch);
    ck_assert_int_eq(x->sealed, y->sealed);
    ck_assert_uint_eq(x->next_entry, y->next_entry);
    ck_assert_uint_eq(x->records, y->records);
    ck_assert_uint_eq(x->bytes, y->bytes);
    ck_assert_uint_eq(x->first_txid, y->first_txid);
    ck_assert_uint_eq(x->last_txid, y->last_txid);
    ck_assert_uint_eq(x->created_ms, y->created_ms);
    ck_assert_uint_eq(x->last_rec_entry, y->last_rec_entry);
    ck_assert_uint_eq(x->last_rec_slot, y->last_rec_slot);
}

/*
 * The model decides what LMDB would: the same history applied to a replica
 * committing each command and to one whose writer is held (every result
 * comes from the model's overlay, nothing from LMDB), gives the same result
 * for every command; held, the second shows nothing new to readers; once
 * drained, both hold the same contents, state and digest; closing commits
 * what is queued.
 */
START_TEST(test_write_behind_model)
{
    enum { N = 400 };
    struct data_fsm *a = fsm_open_wb(dir_a, NULL, NULL, 0);
    struct data_fsm *b = fsm_open_wb(dir_b, NULL, NULL, 1);
    struct data_fsm_state sa, sb;
    struct data_fsm_result ra, rb;
    uint64_t rng = 42, once_seq[5] = {0}, txid = 1;
    int refused = 0;

    fsm_wb_hold(b, 1);
    for (int i = 0; i < N; i++) {
        struct bytes c = mixed_cmd(&rng, once_seq, &txid);
        uint64_t ix = 2 + (uint64_t)i;
        ck_assert_int_eq(data_fsm_apply(a, ix, c.p, c.len, &ra), 0);
        ck_assert_int_eq(data_fsm_apply(b, ix, c.p, c.len, &rb), 0);
        ck_assert_int_eq(rb.status, ra.status);
        ck_assert_int_eq(rb.op, ra.op);
        ck_assert_uint_eq(rb.first_entry, ra.first_entry);
        ck_assert_uint_eq(rb.first_txid, ra.first_txid);
        assert_same_info(&rb.info, &ra.info);
        refused += ra.status != 0;
        bytes_free(&c);
    }
    /* the history has both kinds of outcome */
    ck_assert_int_gt(refused, N / 10);
    ck_assert_int_lt(refused, N - N / 10);

    /* Held: LMDB (what readers see) has none of it yet. */
    ck_assert_int_eq(data_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, 0);

    /* Drained: the same everywhere. */
    ck_assert_int_eq(data_fsm_sync(b), 0);
    ck_assert_int_eq(data_fsm_state(a, &sa), 0);
    ck_assert_int_eq(data_fsm_state(b, &sb), 0);
    ck_assert_int_eq(memcmp(&sa, &sb, sizeof sa), 0);
    ck_assert_uint_eq(sb.applied, 2 + N - 1);
    ck_assert_uint_eq(fsm_digest(b, NULL), fsm_digest(a, NULL));

    /* Queued commands are committed at close. */
    fsm_wb_hold(b, 1);
    for (int i = N; i < N + 50; i++) {
        struct bytes c = mixed_cmd(&rng, once_seq, &txid);
        ck_assert_int_eq(data_fsm_apply(a, 2 + (uint64_t)i, c.p, c.len, &ra), 0);
        ck_assert_int_eq(data_fsm_apply(b, 2 + (uint64_t)i, c.p, c.len, &rb), 0);
        ck_assert_int_eq(rb.status, ra.status);
        bytes_free(&c);
    }
    data_fsm_close(b);
    b = fsm_open_wb(dir_b, NULL, NULL, 1);
    ck_assert_int_eq(data_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, 2 + N + 50 - 1);
    ck_assert_uint_eq(fsm_digest(b, NULL), fsm_digest(a, NULL));
    data_fsm_close(a);
    data_fsm_close(b);
}
END_TEST

/* ------------------------------------------------------------ notify */

struct notes {
    int n;
    uint64_t last;
};

static void on_notify(void *arg, uint64_t index)
{
    struct notes *nt = arg;
    nt->n++;
    nt->last = index;
}

struct waiter {
    struct data_fsm *f;
    uint32_t seen;
    int rv;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    w->rv = data_fsm_notify_wait(w->f, w->seen, 10000);
    return NULL;
}

START_TEST(test_notify)
{
    struct notes nt = {0};
    struct data_fsm_config cfg = {.version = DATA_FSM_CONFIG_VERSION,
                                  .dir = dir_a,
                                  .map_size = TEST_MAP_SIZE,
                                  .notify = on_notify,
                                  .notify_arg = &nt};
    struct data_fsm *f;
    char err[DLOG_ERRMSG_SIZE];
    struct data_fsm_result r;
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct data_cmd c;
    struct waiter w;
    pthread_t t;

    ck_assert_int_eq(data_fsm_open(&cfg, &f, err), 0);
    c = cmd_open(1, 1, 0, 0, 0);
    ck_assert_int_eq(fsm_apply_cmd(f, 5, &c, &r), 0);
    ck_assert_int_eq(nt.n, 1);
    ck_assert_uint_eq(nt.last, 5);
    w.f = f;
    w.seen = data_fsm_notify_seq(f);
    w.rv = -1;
    ck_assert_int_eq(data_fsm_notify_wait(f, w.seen, 0), DLOG_ETIMEDOUT);
    ck_assert_int_eq(data_fsm_notify_wait(f, w.seen, 20), DLOG_ETIMEDOUT);

    /* A tailing reader waiting in another thread wakes on an applied entry. */
    ck_assert_int_eq(pthread_create(&t, NULL, wait_thread, &w), 0);
    c = cmd_append(1, 1, 0, 0, e, 1);
    ck_assert_int_eq(fsm_apply_cmd(f, 6, &c, &r), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(w.rv, 0);
    ck_assert_int_eq(nt.n, 2);
    ck_assert_uint_eq(nt.last, 6);
    /* Skipped commands ring nothing. */
    ck_assert_int_eq(fsm_apply_cmd(f, 6, &c, &r), 0);
    ck_assert_int_eq(r.skipped, 1);
    ck_assert_int_eq(nt.n, 2);
    free_entries(e, 1);
    data_fsm_close(f);
}
END_TEST

/* ------------------------------------------------------------ transfer */

struct fetcher {
    struct data_fsm *src;
    int calls;
    int fail; /* this many calls fail first */
    uint64_t want;
};

static int fetch_from(void *arg, struct data_fsm *f, const struct data_fsm_state *want)
{
    struct fetcher *ft = arg;

    ft->calls++;
    ft->want = want->applied;
    if (ft->fail > 0) {
        ft->fail--;
        return DLOG_EUNAVAILABLE;
    }
    return fsm_copy(ft->src, f);
}

struct chunk_load {
    struct data_fsm_load *ld;
    int items;
};

/* Counts the items, loads none. */
static int drop_all(void *arg, const struct data_fsm_item *it)
{
    struct chunk_load *c = arg;

    (void)it;
    c->items++;
    return 0;
}

static int drop_entries(void *arg, const struct data_fsm_item *it)
{
    if (it->kind == DATA_FSM_ITEM_ENTRY && it->entry == 1)
        return 0; /* lose one */
    return data_fsm_load_item(arg, it);
}

START_TEST(test_transfer)
{
    struct data_fsm *a = fsm_open(dir_a, NULL, NULL);
    struct data_fsm *b = fsm_open(dir_b, NULL, NULL);
    struct data_fsm_state sa, sb;
    struct data_fsm_load *ld;
    struct data_fsm_item it;
    struct data_fsm_result r;
    uint32_t da, db;

    apply_history(a, 2, 0, N_CMDS, 0);
    apply_history(b, 2, 0, 5, 0);
    db = fsm_digest(b, &sb);
    da = fsm_digest(a, &sa);
    ck_assert_uint_ne(da, db);

    /* Apply is refused while a load is open; a load aborted before its
     * STATE item changed nothing. */
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld), 0);
    struct data_fsm_load *ld2 = (struct data_fsm_load *)1;
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld2), DLOG_EBUSY);
    ck_assert_ptr_null(ld2);
    ck_assert_int_eq(data_fsm_apply(b, 1000, "x", 1, &r), DLOG_EBUSY);
    data_fsm_load_abort(ld);
    ck_assert_uint_eq(fsm_digest(b, NULL), db);
    ck_assert_int_eq(data_fsm_behind(b), 0);

    /* An older state is refused before anything is written. */
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld), 0);
    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_STATE;
    it.state.applied = sb.applied - 1;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), DLOG_ECORRUPT);
    data_fsm_load_abort(ld);
    ck_assert_uint_eq(fsm_digest(b, NULL), db);
    ck_assert_int_eq(data_fsm_behind(b), 0);

    /* Out of order: an entry before the state. */
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld), 0);
    it.kind = DATA_FSM_ITEM_ENTRY;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), DLOG_ECORRUPT);
    data_fsm_load_abort(ld);
    ck_assert_uint_eq(fsm_digest(b, NULL), db);

    /* Items that do not add up are refused at the commit; b's old contents
     * are gone by then (the load writes as it goes), so it is left partial:
     * behind, its state zero, applying nothing. */
    char words[DLOG_ERRMSG_SIZE] = "";
    ck_assert_int_eq(data_fsm_load_begin(b, words, &ld), 0);
    ck_assert_int_eq(data_fsm_dump(a, drop_entries, ld), 0);
    ck_assert_int_eq(data_fsm_behind(b), 1);
    ck_assert_int_eq(data_fsm_load_commit(ld), DLOG_ECORRUPT);
    ck_assert_str_ne(words, "");
    ck_assert_int_eq(data_fsm_behind(b), 1);
    ck_assert_int_eq(test_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, 0);
    ck_assert_int_eq(data_fsm_apply(b, 1000, "x", 1, &r), DLOG_EUNAVAILABLE);

    /* An entry of a segment that is not there; an entry twice. */
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld), 0);
    it.kind = DATA_FSM_ITEM_STATE;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), 0);
    it.kind = DATA_FSM_ITEM_ENTRY;
    it.stream = 77;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), DLOG_ECORRUPT);
    data_fsm_load_abort(ld);
    ck_assert_int_eq(data_fsm_load_begin(b, NULL, &ld), 0);
    it.kind = DATA_FSM_ITEM_STATE;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), 0);
    it.kind = DATA_FSM_ITEM_SEG;
    it.stream = 77;
    it.info.next_entry = 5;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), 0);
    it.kind = DATA_FSM_ITEM_ENTRY;
    it.entry = 2;
    it.p = "xy";
    it.len = 2;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), 0);
    ck_assert_int_eq(data_fsm_load_item(ld, &it), DLOG_ECORRUPT);
    it.entry = 1;
    ck_assert_int_eq(data_fsm_load_item(ld, &it), DLOG_ECORRUPT);
    data_fsm_load_abort(ld);
    ck_assert_int_eq(data_fsm_behind(b), 1);

    /* A whole copy: identical; the next apply finds b caught up (no fetch
     * needed) and b then applies what follows. */
    ck_assert_int_eq(fsm_copy(a, b), 0);
    ck_assert_uint_eq(fsm_digest(b, &sb), da);
    ck_assert_uint_eq(sb.hash, sa.hash);
    apply_history(b, 2, 0, N_CMDS, 1);
    ck_assert_int_eq(data_fsm_behind(b), 0);
    ck_assert_uint_eq(fsm_digest(b, NULL), da);

    /* An older state is refused. */
    data_fsm_close(a);
    tdir_remove(dir_a);
    ck_assert_int_eq(mkdir(dir_a, 0755), 0);
    a = fsm_open(dir_a, NULL, NULL);
    apply_history(a, 2, 0, 3, 0);
    ck_assert_int_eq(fsm_copy(a, b), DLOG_ECORRUPT);
    ck_assert_uint_eq(fsm_digest(b, NULL), da);
    data_fsm_close(a);
    data_fsm_close(b);
}
END_TEST

/*
 * Contents for the chunked transfers: streams 1..4, two segments each,
 * entries of 1..3 records (about 100 bytes to a few KiB), so that chunks
 * cut through segments and the SEG/ENTRY boundary.
 */
static uint64_t apply_many(struct data_fsm *f, uint64_t index, int rounds)
{
    struct data_fsm_result r;
    struct data_cmd c;

    for (uint64_t s = 1; s <= 4; s++)
        for (uint64_t q = 1; q <= 2; q++) {
            c = cmd_open(s, q, 1, 0, 1700000000000ULL);
            if (fsm_apply_cmd(f, index++, &c, &r) != 0 && r.status != 0)
                ck_abort_msg("open: %s", r.errmsg);
        }
    for (int k = 0; k < rounds; k++)
        for (uint64_t s = 1; s <= 4; s++)
            for (uint64_t q = 1; q <= 2; q++) {
                struct iovec e[2] = {make_entry(0, 1 + k % 3, 0), make_entry(0, 1, 0)};
                c = cmd_append(s, q, 1, SEG_APPEND_AUTO_TXID, e, 2);
                ck_assert_int_eq(fsm_apply_cmd(f, index++, &c, &r), 0);
                free_entries(e, 2);
            }
    return index;
}

static int chunk_item(void *arg, const struct data_fsm_item *it)
{
    struct chunk_load *cl = arg;

    cl->items++;
    return data_fsm_load_item(cl->ld, it);
}

/*
 * Copies src into dst as the node does: a dumper pinned on src, chunks of
 * at most `chunk` bytes, each loaded and flushed; every third chunk is
 * asked for twice from the same position (a reply lost on the way: the
 * second answer is the same, and only one is loaded). Stops after
 * stop_after chunks without committing when stop_after > 0 (returns 1).
 */
static int chunked_copy(struct data_fsm *src, struct data_fsm *dst, size_t chunk,
                        int stop_after, struct data_fsm_state *st)
{
    struct data_fsm_dumper *d;
    struct data_fsm_pos pos = {0, 0, 0, 0}, again;
    struct data_fsm_item it;
    struct chunk_load cl = {NULL, 0}, lost = {NULL, 0};
    int rv, chunks = 0;

    memset(&it, 0, sizeof it);
    it.kind = DATA_FSM_ITEM_STATE;
    ck_assert_int_eq(data_fsm_dumper_open(src, &it.state, &d), 0);
    if (st != NULL)
        *st = it.state;
    ck_assert_int_eq(data_fsm_load_begin(dst, NULL, &cl.ld), 0);
    ck_assert_int_eq(data_fsm_load_item(cl.ld, &it), 0);
    do {
        if (chunks % 3 == 2) {
            /* the lost reply: visited, never loaded */
            again = pos;
            rv = data_fsm_dumper_next(d, &again, chunk, drop_all, &lost);
            ck_assert_int_ge(rv, 0);
        }
        cl.items = 0;
        again = pos;
        rv = data_fsm_dumper_next(d, &pos, chunk, chunk_item, &cl);
        ck_assert_int_ge(rv, 0);
        ck_assert_int_ge(cl.items, rv == 0 ? 1 : 0);
        ck_assert_int_eq(data_fsm_load_flush(cl.ld), 0);
        chunks++;
        if (stop_after > 0 && chunks == stop_after) {
            data_fsm_dumper_close(d);
            return 1;
        }
    } while (rv == 0);
    data_fsm_dumper_close(d);
    ck_assert_int_gt(chunks, chunk <= 4096 ? 3 : 0);
    return data_fsm_load_commit(cl.ld);
}

START_TEST(test_transfer_chunked)
{
    struct data_fsm *a = fsm_open(dir_a, NULL, NULL);
    struct data_fsm *b = fsm_open(dir_b, NULL, NULL);
    struct data_fsm_state sa, sb, st;
    uint64_t next = apply_many(a, 1, 30);
    uint32_t da = fsm_digest(a, &sa);

    /* Chunk sizes from "one item each" up: the same copy every time. */
    const size_t sizes[] = {1, 700, 4096, 65536};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        ck_assert_int_eq(chunked_copy(a, b, sizes[k], 0, &st), 0);
        ck_assert_uint_eq(fsm_digest(b, &sb), da);
        ck_assert_uint_eq(sb.applied, sa.applied);
        ck_assert_int_eq(data_fsm_catch_up(b), 0);
    }

    /* One consistent point: applies on the source while a dumper is open
     * do not show in it. */
    struct data_fsm_dumper *d;
    struct data_fsm_pos pos = {0, 0, 0, 0};
    struct chunk_load none = {NULL, 0};
    ck_assert_int_eq(data_fsm_dumper_open(a, &st, &d), 0);
    ck_assert_int_eq(data_fsm_dumper_next(d, &pos, 1000, drop_all, &none), 0);
    next = apply_many(a, next, 2);
    int seen_before = none.items;
    while (data_fsm_dumper_next(d, &pos, 1000, drop_all, &none) == 0)
        ;
    data_fsm_dumper_close(d);
    ck_assert_uint_eq(st.applied, sa.applied);
    ck_assert_uint_eq((uint64_t)none.items, sa.segments + sa.entries);
    ck_assert_int_gt(none.items, seen_before);
    /* The dump's positions: a bad kind is refused. */
    ck_assert_int_eq(data_fsm_dumper_open(a, &st, &d), 0);
    pos.kind = 9;
    ck_assert_int_eq(data_fsm_dumper_next(d, &pos, 1000, drop_all, &none), DLOG_EINVAL);
    data_fsm_dumper_close(d);
    (void)next;
    data_fsm_close(a);
    data_fsm_close(b);
}
END_TEST

/*
 * A transfer cut short by a crash: a child process loads a few chunks and
 * exits without committing. The directory then opens behind (the marker),
 * with no state and nothing applied; a fetch loads everything again, and
 * then b applies what follows like its source.
 */
START_TEST(test_transfer_interrupted)
{
    struct data_fsm *a = fsm_open(dir_a, NULL, NULL);
    struct data_fsm *b = fsm_open(dir_b, NULL, NULL);
    struct data_fsm_state sa, sb, snap;
    struct data_fsm_result r;
    uint64_t next;
    pid_t pid;
    int status;

    apply_many(b, 1, 2); /* b has something of its own to lose */
    data_fsm_close(b);
    next = apply_many(a, 1, 20);
    fsm_digest(a, &sa);

    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        b = fsm_open(dir_b, NULL, NULL);
        _exit(chunked_copy(a, b, 2000, 4, NULL) == 1 ? 0 : 1);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    struct fetcher ft = {a, 0, 0, 0};
    b = fsm_open(dir_b, fetch_from, &ft);
    ck_assert_int_eq(data_fsm_behind(b), 1);
    ck_assert_int_eq(test_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, 0);
    ck_assert_uint_gt(fsm_contents(b), 0); /* partial, not empty */
    /* Snapshots are refused while partial. */
    struct raft_fsm rf;
    struct raft_buffer *bufs;
    unsigned n;
    data_fsm_raft_fsm(b, &rf);
    ck_assert_int_eq(rf.snapshot(&rf, &bufs, &n), RAFT_BUSY);

    /* libraft restores its last snapshot at start (older than the source's
     * state here): the fetch runs and loads the whole state again. */
    snap = sa;
    snap.applied -= 5;
    ck_assert_int_eq(data_fsm_restore(b, &snap), 0);
    ck_assert_int_eq(ft.calls, 1);
    ck_assert_int_eq(data_fsm_behind(b), 0);
    ck_assert_uint_eq(fsm_digest(b, &sb), fsm_digest(a, NULL));
    ck_assert_uint_eq(sb.applied, sa.applied);
    data_fsm_close(b);

    /* Reopened: complete, not behind; it applies what follows as a does. */
    b = fsm_open(dir_b, fetch_from, &ft);
    ck_assert_int_eq(data_fsm_behind(b), 0);
    struct data_cmd c = cmd_simple(DATA_CMD_SEAL, 2, 1, 1);
    ck_assert_int_eq(fsm_apply_cmd(a, next, &c, &r), 0);
    ck_assert_int_eq(fsm_apply_cmd(b, next, &c, &r), 0);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert_uint_eq(fsm_digest(b, NULL), fsm_digest(a, NULL));
    ck_assert_int_eq(ft.calls, 1);
    data_fsm_close(a);
    data_fsm_close(b);
}
END_TEST

/* ------------------------------------------------------------ restore */

START_TEST(test_restore)
{
    struct fetcher ft = {0};
    struct data_fsm *a = fsm_open(dir_a, NULL, NULL);
    struct data_fsm *b = fsm_open(dir_b, fetch_from, &ft);
    struct data_fsm_state sa, sb, snap;
    struct data_fsm_result r;
    uint32_t da;

    ft.src = a;
    apply_history(a, 2, 0, N_CMDS, 0);
    apply_history(b, 2, 0, 10, 0);
    da = fsm_digest(a, &sa);

    /* A snapshot at or behind b's state: nothing to fetch. */
    ck_assert_int_eq(test_fsm_state(b, &snap), 0);
    ck_assert_int_eq(data_fsm_restore(b, &snap), 0);
    snap.applied--;
    ck_assert_int_eq(data_fsm_restore(b, &snap), 0);
    ck_assert_int_eq(ft.calls, 0);

    /* Ahead: fetch, failing twice. While behind, b applies nothing. */
    ft.fail = 2;
    snap = sa;
    ck_assert_int_eq(data_fsm_restore(b, &snap), DLOG_EUNAVAILABLE);
    ck_assert_int_eq(ft.calls, 1);
    ck_assert_uint_eq(ft.want, sa.applied);
    ck_assert_int_eq(data_fsm_behind(b), 1);
    struct bytes cmd = history_cmd(3);
    ck_assert_int_eq(data_fsm_apply(b, sa.applied + 1, cmd.p, cmd.len, &r),
                     DLOG_EUNAVAILABLE);
    ck_assert_int_eq(ft.calls, 2);
    ck_assert_int_eq(test_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, 11);
    /* The next apply fetches first, then applies. */
    ck_assert_int_eq(data_fsm_apply(b, sa.applied + 1, cmd.p, cmd.len, &r), 0);
    ck_assert_int_eq(ft.calls, 3);
    ck_assert_int_eq(data_fsm_behind(b), 0);
    ck_assert_int_eq(r.skipped, 0);
    ck_assert_int_eq(test_fsm_state(b, &sb), 0);
    ck_assert_uint_eq(sb.applied, sa.applied + 1);
    bytes_free(&cmd);

    /* The same index with another digest: fetched again. */
    struct data_fsm_state odd = sb;
    odd.hash ^= 1;
    ck_assert_int_eq(fsm_copy(b, a), 0); /* a now at b's state */
    ck_assert_int_eq(data_fsm_restore(b, &odd), DLOG_EUNAVAILABLE); /* a has sb.hash */
    ck_assert_int_eq(ft.calls, 4);
    ck_assert_int_eq(data_fsm_behind(b), 1);
    data_fsm_close(b);

    /* No fetch hook: the FSM stays behind. */
    b = fsm_open(dir_b, NULL, NULL);
    ck_assert_int_eq(data_fsm_behind(b), 0);
    snap.applied = 1000;
    ck_assert_int_eq(data_fsm_restore(b, &snap), DLOG_EUNAVAILABLE);
    ck_assert_int_eq(data_fsm_behind(b), 1);
    ck_assert_str_ne(data_fsm_errmsg(b), "");
    (void)da;
    data_fsm_close(a);
    data_fsm_close(b);
}
END_TEST

/* ------------------------------------------------------------ snapshot and adapter */

START_TEST(test_snapshot_format)
{
    struct data_fsm_state st = {12345, 0xdeadbeefcafef00dULL, 3, 400, 50000}, out;
    uint8_t buf[DATA_FSM_SNAP_SIZE];

    data_fsm_snap_encode(&st, buf);
    ck_assert_int_eq(data_fsm_snap_decode(buf, sizeof buf, &out), 0);
    ck_assert_int_eq(memcmp(&st, &out, sizeof st), 0);
    ck_assert_int_eq(data_fsm_snap_decode(buf, sizeof buf - 1, &out), DLOG_ECORRUPT);
    for (size_t i = 0; i < sizeof buf; i++) {
        buf[i] ^= 0x10;
        ck_assert_int_eq(data_fsm_snap_decode(buf, sizeof buf, &out), DLOG_ECORRUPT);
        buf[i] ^= 0x10;
    }
}
END_TEST

START_TEST(test_raft_adapter)
{
    struct data_fsm *f = fsm_open(dir_a, NULL, NULL);
    struct raft_fsm rf;
    struct raft_buffer *bufs, rb;
    unsigned n;
    void *result = (void *)1;
    struct data_fsm_state st, out;
    struct bytes b = history_cmd(0);

    data_fsm_raft_fsm(f, &rf);
    ck_assert_int_eq(rf.version, 1);
    ck_assert_ptr_eq(rf.data, f);
    /* Unbound: no index to apply at. */
    rb.base = b.p;
    rb.len = b.len;
    ck_assert_int_eq(rf.apply(&rf, &rb, &result), RAFT_INVALID);
    ck_assert_ptr_null(result);
    bytes_free(&b);

    apply_history(f, 2, 0, 6, 0);
    ck_assert_int_eq(test_fsm_state(f, &st), 0);

    /* snapshot: one small buffer, allocated with raft_malloc for libraft to free. */
    ck_assert_int_eq(rf.snapshot(&rf, &bufs, &n), 0);
    ck_assert_uint_eq(n, 1);
    ck_assert_uint_eq(bufs[0].len, DATA_FSM_SNAP_SIZE);
    ck_assert_int_eq(data_fsm_snap_decode(bufs[0].base, bufs[0].len, &out), 0);
    ck_assert_int_eq(memcmp(&st, &out, sizeof st), 0);

    /* restore of our own snapshot: f owns the buffer on success. */
    rb = bufs[0];
    raft_free(bufs);
    ck_assert_int_eq(rf.restore(&rf, &rb), 0);
    ck_assert_int_eq(data_fsm_behind(f), 0);

    /* Not a snapshot: refused, and the buffer stays the caller's. */
    rb.base = raft_malloc(10);
    rb.len = 10;
    memset(rb.base, 0, 10);
    ck_assert_int_eq(rf.restore(&rf, &rb), RAFT_MALFORMED);
    raft_free(rb.base);

    /* Ahead and unfetchable: accepted (libraft 0.15 cannot retry a failed
     * restore), the FSM behind, and snapshots refused until it catches up. */
    out.applied += 100;
    rb.base = raft_malloc(DATA_FSM_SNAP_SIZE);
    rb.len = DATA_FSM_SNAP_SIZE;
    data_fsm_snap_encode(&out, rb.base);
    ck_assert_int_eq(rf.restore(&rf, &rb), 0);
    ck_assert_int_eq(data_fsm_behind(f), 1);
    ck_assert_int_eq(rf.snapshot(&rf, &bufs, &n), RAFT_BUSY);
    data_fsm_close(f);
}
END_TEST

Suite *data_fsm_suite(void)
{
    Suite *s = suite_create("data_fsm");
    TCase *codec = tcase_create("codec");
    TCase *apply = tcase_create("apply");
    TCase *state = tcase_create("state");

    tcase_add_test(codec, test_codec_round_trip);
    tcase_add_test(codec, test_codec_malformed);
    tcase_add_test(codec, test_snapshot_format);
    suite_add_tcase(s, codec);

    tcase_add_checked_fixture(apply, setup, teardown);
    tcase_add_test(apply, test_apply_open_append_read);
    tcase_add_test(apply, test_apply_all_or_nothing);
    tcase_add_test(apply, test_apply_append_once);
    tcase_add_test(apply, test_apply_auto_txid);
    tcase_add_test(apply, test_apply_fence_seal);
    tcase_add_test(apply, test_apply_remove);
    tcase_add_test(apply, test_apply_corrupt_command);
    tcase_add_test(apply, test_notify);
    suite_add_tcase(s, apply);

    tcase_add_checked_fixture(state, setup, teardown);
    tcase_add_test(state, test_restart_skips_applied);
    tcase_add_test(state, test_digest_covers_index);
    tcase_add_test(state, test_transfer);
    tcase_add_test(state, test_transfer_chunked);
    tcase_add_test(state, test_transfer_interrupted);
    tcase_add_test(state, test_restore);
    tcase_add_test(state, test_raft_adapter);
    tcase_add_test(state, test_write_behind_model);
    suite_add_tcase(s, state);
    return s;
}

/* Every test runs twice: with each command committed as it is applied,
 * then with LMDB written behind (cfg.write_behind, data_fsm_wb.c), where
 * the results come from the model and the writer checks them again. */
int main(void)
{
    int failed = 0;

    for (fsm_test_write_behind = 0; fsm_test_write_behind <= 1; fsm_test_write_behind++) {
        SRunner *sr = srunner_create(data_fsm_suite());

        printf("write-behind %s\n", fsm_test_write_behind ? "on" : "off");
        srunner_add_suite(sr, data_fsm_cluster_suite());
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
