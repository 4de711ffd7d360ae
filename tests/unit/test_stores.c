/*
 * Unit tests: the metadata stores (meta_mem.c, meta_lmdb.c, meta_codec.c)
 * and the in-memory segment store (seg_mem.c).
 *
 * The metadata cases run on both stores (loop index 0: mem, 1: lmdb in a
 * fresh mktemp directory). The cross-process cases fork real processes:
 * LMDB forbids opening one environment twice in one process (closing the
 * second copy drops the first one's POSIX locks), so a second meta_lmdb_open
 * in the same process would not be a faithful "second process".
 */
#include <check.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "meta/meta.h"
#include "seg/entry.h"
#include "seg/seg.h"

Suite *stores_suite(void);

/* ------------------------------------------------------------ helpers */

static char tmpdir[64];

static void tmpdir_make(void)
{
    strcpy(tmpdir, "/tmp/dlog-stores-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void tmpdir_remove(void)
{
    static const char *const files[] = {"data.mdb", "lock.mdb"};
    char path[128];

    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, files[i]);
        unlink(path);
    }
    ck_assert_int_eq(rmdir(tmpdir), 0);
}

/* which: 0 mem, 1 lmdb (in tmpdir, which the caller made). */
static struct dlog_meta_ops *meta_open(int which)
{
    struct dlog_meta_ops *m = NULL;
    char err[DLOG_ERRMSG_SIZE] = "";

    if (which == 0)
        ck_assert_int_eq(meta_mem_open(&m), 0);
    else
        ck_assert_msg(meta_lmdb_open(tmpdir, 0, &m, err) == 0, "open: %s", err);
    ck_assert_ptr_nonnull(m);
    ck_assert_uint_eq(m->version, META_OPS_VERSION);
    return m;
}

static void names_free(char **names)
{
    for (char **p = names; *p != NULL; p++)
        free(*p);
    free(names);
}

static void stream_init(struct meta_stream *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->cfg.version = DLOG_STREAM_CONFIG_VERSION;
    s->cfg.segment_max_bytes = 256ULL << 20;
    s->cfg.max_record_bytes = DLOG_RECORD_MAX_DEFAULT;
    s->created_ms = 1700000000000ULL;
    s->next_seq = 1;
}

static struct meta_segment segment(uint64_t seq, uint32_t state)
{
    struct meta_segment g = {
        .seq = seq,
        .state = state,
        .epoch = seq + 1,
        .entries = seq * 10,
        .records = seq * 100,
        .bytes = seq * 1000 + 1,
        .first_txid = seq * 7,
        .last_txid = UINT64_MAX - seq,
        .created_ms = 1700000000000ULL + seq,
        .sealed_ms = state ? 1700000001000ULL + seq : 0,
    };
    return g;
}

static void assert_streams_equal(const struct meta_stream *a, const struct meta_stream *b)
{
    ck_assert_uint_eq(a->id, b->id);
    ck_assert_str_eq(a->name, b->name);
    ck_assert_uint_eq(a->version, b->version);
    ck_assert_uint_eq(a->epoch, b->epoch);
    ck_assert_uint_eq(a->cfg.version, b->cfg.version);
    ck_assert_uint_eq(a->cfg.segment_max_bytes, b->cfg.segment_max_bytes);
    ck_assert_uint_eq(a->cfg.segment_max_age_ms, b->cfg.segment_max_age_ms);
    ck_assert_uint_eq(a->cfg.segment_max_records, b->cfg.segment_max_records);
    ck_assert_uint_eq(a->cfg.retention_age_ms, b->cfg.retention_age_ms);
    ck_assert_uint_eq(a->cfg.retention_bytes, b->cfg.retention_bytes);
    ck_assert_uint_eq(a->cfg.compression, b->cfg.compression);
    ck_assert_uint_eq(a->cfg.max_record_bytes, b->cfg.max_record_bytes);
    ck_assert_int_eq(a->cfg.auto_txid, b->cfg.auto_txid);
    ck_assert_int_eq(memcmp(&a->cfg.limits, &b->cfg.limits, sizeof a->cfg.limits), 0);
    ck_assert_uint_eq(a->created_ms, b->created_ms);
    ck_assert_uint_eq(a->trunc.seg, b->trunc.seg);
    ck_assert_uint_eq(a->trunc.entry, b->trunc.entry);
    ck_assert_uint_eq(a->trunc.slot, b->trunc.slot);
    ck_assert_uint_eq(a->next_seq, b->next_seq);
    ck_assert_uint_eq(a->nseg, b->nseg);
    for (uint32_t i = 0; i < a->nseg; i++) {
        const struct meta_segment *x = &a->segs[i], *y = &b->segs[i];
        ck_assert_uint_eq(x->seq, y->seq);
        ck_assert_uint_eq(x->state, y->state);
        ck_assert_uint_eq(x->epoch, y->epoch);
        ck_assert_uint_eq(x->entries, y->entries);
        ck_assert_uint_eq(x->records, y->records);
        ck_assert_uint_eq(x->bytes, y->bytes);
        ck_assert_uint_eq(x->first_txid, y->first_txid);
        ck_assert_uint_eq(x->last_txid, y->last_txid);
        ck_assert_uint_eq(x->created_ms, y->created_ms);
        ck_assert_uint_eq(x->sealed_ms, y->sealed_ms);
    }
}

/* A stream using every field, with nseg segments. */
static void stream_full(struct meta_stream *s, uint32_t nseg)
{
    stream_init(s, "ns/full.stream-1");
    s->id = 42;
    s->version = 7;
    s->epoch = 1ULL << 40;
    s->cfg.segment_max_age_ms = 3600000;
    s->cfg.segment_max_records = 1000000;
    s->cfg.retention_age_ms = 86400000;
    s->cfg.retention_bytes = 1ULL << 33;
    s->cfg.compression = DLOG_COMPRESS_ZSTD;
    s->cfg.auto_txid = 1;
    dlog_limits_init(&s->cfg.limits);
    s->cfg.limits.records_per_sec = 5000;
    s->cfg.limits.bytes_per_sec = 10ULL << 20;
    s->cfg.limits.soft_records_per_sec = 4000;
    s->cfg.limits.soft_bytes_per_sec = 8ULL << 20;
    s->cfg.limits.burst_ms = 250;
    s->cfg.limits.max_wait_ms = 40;
    s->cfg.limits.quota_bytes = 1ULL << 34;
    s->cfg.limits.quota_policy = DLOG_QUOTA_TRUNCATE;
    s->trunc = (struct dlog_dlsn){3, 17, 2};
    s->next_seq = nseg + 1;
    for (uint32_t i = 1; i <= nseg; i++) {
        struct meta_segment g = segment(i, i < nseg);
        ck_assert_int_eq(meta_stream_push_segment(s, &g), 0);
    }
}

/* ------------------------------------------------------------- codec */

START_TEST(test_codec_helpers)
{
    struct meta_stream s, c;

    stream_full(&s, 5);
    ck_assert_uint_eq(s.nseg, 5);
    ck_assert_uint_eq(meta_stream_last(&s)->seq, 5);
    for (uint64_t q = 1; q <= 5; q++)
        ck_assert_uint_eq(meta_stream_find(&s, q)->seq, q);
    ck_assert_ptr_null(meta_stream_find(&s, 0));
    ck_assert_ptr_null(meta_stream_find(&s, 6));

    ck_assert_int_eq(meta_stream_copy(&c, &s), 0);
    ck_assert_ptr_ne(c.segs, s.segs);
    assert_streams_equal(&c, &s);
    c.segs[0].records = 1;
    ck_assert_uint_ne(s.segs[0].records, 1);

    meta_stream_clear(&s);
    ck_assert_ptr_null(s.segs);
    ck_assert_uint_eq(s.nseg, 0);
    ck_assert_ptr_null(meta_stream_last(&s));
    ck_assert_ptr_null(meta_stream_find(&s, 1));
    meta_stream_clear(&s); /* twice is fine */
    meta_stream_clear(&c);
}
END_TEST

START_TEST(test_codec_round_trip)
{
    for (uint32_t nseg = 0; nseg <= 3; nseg++) {
        struct meta_stream s, d;
        struct bytes b;

        stream_full(&s, nseg);
        bytes_init(&b);
        ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
        ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
        assert_streams_equal(&d, &s);
        meta_stream_clear(&d);

        /* Encoding appends: a prefix stays, and the value after it decodes. */
        size_t first = b.len;
        ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
        ck_assert_uint_eq(b.len, 2 * first);
        ck_assert_int_eq(memcmp(b.p, b.p + first, first), 0);
        ck_assert_int_eq(meta_stream_decode(b.p + first, first, &d), 0);
        assert_streams_equal(&d, &s);
        meta_stream_clear(&d);
        bytes_free(&b);
        meta_stream_clear(&s);
    }
}
END_TEST

START_TEST(test_codec_name_max)
{
    struct meta_stream s, d;
    struct bytes b;

    stream_init(&s, "");
    memset(s.name, 'x', DLOG_STREAM_NAME_MAX);
    s.name[DLOG_STREAM_NAME_MAX] = '\0';
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
    ck_assert_uint_eq(strlen(d.name), DLOG_STREAM_NAME_MAX);
    meta_stream_clear(&d);

    /* Empty or unterminated names are refused. */
    bytes_reset(&b);
    s.name[0] = '\0';
    ck_assert_int_eq(meta_stream_encode(&s, &b), DLOG_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    memset(s.name, 'x', sizeof s.name);
    ck_assert_int_eq(meta_stream_encode(&s, &b), DLOG_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    bytes_free(&b);
}
END_TEST

START_TEST(test_codec_truncated)
{
    struct meta_stream s, d;
    struct bytes b;

    stream_full(&s, 3);
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    for (size_t len = 0; len < b.len; len++) {
        /* An exact-size heap copy, so ASan catches any read past len. */
        uint8_t *p = malloc(len == 0 ? 1 : len);
        memcpy(p, b.p, len);
        ck_assert_int_eq(meta_stream_decode(p, len, &d), DLOG_ECORRUPT);
        ck_assert_ptr_null(d.segs);
        free(p);
    }
    /* Trailing garbage too. */
    ck_assert_int_eq(bytes_put_u8(&b, 0), 0);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    bytes_free(&b);
    meta_stream_clear(&s);
}
END_TEST

START_TEST(test_codec_garbage)
{
    struct meta_stream s, d;
    struct bytes b;
    uint8_t junk[512];

    stream_full(&s, 2);
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    /* Every single-bit flip is caught. */
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.p[i] ^= (uint8_t)(1u << bit);
            ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
            b.p[i] ^= (uint8_t)(1u << bit);
        }
    }
    /* Random bytes. */
    srand(1);
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)rand() % sizeof junk;
        for (size_t i = 0; i < len; i++)
            junk[i] = (uint8_t)rand();
        junk[0] = 1; /* the right version byte, to get further */
        ck_assert_int_eq(meta_stream_decode(junk, len, &d), DLOG_ECORRUPT);
    }
    bytes_free(&b);
    meta_stream_clear(&s);
}
END_TEST

/* Rewrites the CRC trailer after patching, to reach the field checks. */
static void fix_crc(struct bytes *b)
{
    put_u32be(b->p + b->len - 4, crc32c(b->p, b->len - 4));
}

START_TEST(test_codec_bad_fields)
{
    struct meta_stream s, d;
    struct bytes b;

    /* id, version, epoch, created_ms each one varint byte: name at 6. */
    stream_init(&s, "ab");
    s.id = 1;
    s.version = 1;
    s.epoch = 1;
    s.created_ms = 1;
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    ck_assert_uint_eq(b.p[5], 2);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);

    b.p[7] = '\0'; /* NUL inside the name */
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    b.p[7] = 'b';
    b.p[5] = 0; /* empty name */
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    b.p[5] = 2;
    b.p[0] = 4; /* unknown format version (3 added segment places) */
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    b.p[0] = 2;
    /* nseg (before the 9 one-byte limits fields and the CRC) far above what
     * the bytes can hold. */
    size_t at = b.len - 4 - 9 - 1;
    ck_assert_uint_eq(b.p[at], 0);
    b.p[at] = 0x7f;
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    b.p[at] = 0;
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
    meta_stream_clear(&d);

    /* A version 1 record (no limits) still decodes, with no limits. */
    b.p[0] = 1;
    memmove(b.p + at + 1, b.p + b.len - 4, 4);
    b.len -= 9;
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
    ck_assert_str_eq(d.name, "ab");
    ck_assert_uint_eq(d.cfg.limits.records_per_sec, 0);
    meta_stream_clear(&d);
    /* ... but a version 2 record cut short of its limits does not. */
    b.p[0] = 2;
    fix_crc(&b);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), DLOG_ECORRUPT);
    bytes_free(&b);
}
END_TEST

/* ------------------------------------------------------- meta stores */

static void meta_setup(int which)
{
    if (which == 1)
        tmpdir_make();
}

static void meta_teardown(int which)
{
    if (which == 1)
        tmpdir_remove();
}

START_TEST(test_meta_create_get)
{
    struct dlog_meta_ops *m;
    struct meta_stream s, t, g;

    meta_setup(_i);
    m = meta_open(_i);
    stream_full(&s, 2);
    s.id = 0;
    s.version = 0;
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_uint_eq(s.id, 1);
    ck_assert_uint_eq(s.version, 1);

    ck_assert_int_eq(m->get(m, s.name, &g), 0);
    assert_streams_equal(&g, &s);
    meta_stream_clear(&g);

    /* A duplicate name; the record is unchanged. */
    stream_init(&t, s.name);
    ck_assert_int_eq(m->create(m, &t), DLOG_EEXIST);
    ck_assert_str_ne(m->errmsg, "");
    ck_assert_uint_eq(t.id, 0);
    ck_assert_int_eq(m->get(m, s.name, &g), 0);
    assert_streams_equal(&g, &s);
    meta_stream_clear(&g);

    /* Ids count up. */
    stream_init(&t, "other");
    ck_assert_int_eq(m->create(m, &t), 0);
    ck_assert_uint_eq(t.id, 2);
    ck_assert_uint_eq(t.version, 1);

    ck_assert_int_eq(m->get(m, "missing", &g), DLOG_ENOTFOUND);
    ck_assert_str_ne(m->errmsg, "");
    ck_assert_int_eq(m->get(m, "", &g), DLOG_ENOTFOUND);
    stream_init(&t, "");
    ck_assert_int_eq(m->create(m, &t), DLOG_EINVAL);

    meta_stream_clear(&s);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

START_TEST(test_meta_list)
{
    static const char *in[] = {"b", "a.b", "A", "a-c", "a", "a/z", "zz", "a/b/c"};
    const size_t n = sizeof in / sizeof in[0];
    const char *sorted[sizeof in / sizeof in[0]];
    struct dlog_meta_ops *m;
    struct meta_stream s;
    char **names;
    size_t count = 99;

    meta_setup(_i);
    m = meta_open(_i);
    ck_assert_int_eq(m->list(m, &names, &count), 0);
    ck_assert_uint_eq(count, 0);
    ck_assert_ptr_null(names[0]);
    names_free(names);

    for (size_t i = 0; i < n; i++) {
        stream_init(&s, in[i]);
        ck_assert_int_eq(m->create(m, &s), 0);
        sorted[i] = in[i];
    }
    qsort(sorted, n, sizeof sorted[0], cmp_str);
    ck_assert_int_eq(m->list(m, &names, &count), 0);
    ck_assert_uint_eq(count, n);
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(names[i], sorted[i]);
    ck_assert_ptr_null(names[n]);
    names_free(names);

    ck_assert_int_eq(m->remove(m, "a", 0), 0);
    ck_assert_int_eq(m->list(m, &names, &count), 0);
    ck_assert_uint_eq(count, n - 1);
    for (size_t i = 0; i < count; i++)
        ck_assert_str_ne(names[i], "a");
    names_free(names);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

START_TEST(test_meta_update_cas)
{
    struct dlog_meta_ops *m;
    struct meta_stream s, stale, g;
    struct meta_segment seg1 = segment(1, DLOG_SEGMENT_OPEN);

    meta_setup(_i);
    m = meta_open(_i);
    stream_init(&s, "cas");
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_int_eq(meta_stream_copy(&stale, &s), 0);

    /* Roll a segment and bump the epoch. */
    s.epoch = 1;
    ck_assert_int_eq(meta_stream_push_segment(&s, &seg1), 0);
    s.next_seq = 2;
    ck_assert_int_eq(m->update(m, &s), 0);
    ck_assert_uint_eq(s.version, 2);
    ck_assert_int_eq(m->get(m, "cas", &g), 0);
    assert_streams_equal(&g, &s);
    meta_stream_clear(&g);

    /* A stale writer loses and changes nothing. */
    stale.epoch = 9;
    ck_assert_int_eq(m->update(m, &stale), DLOG_ECONFLICT);
    ck_assert_str_ne(m->errmsg, "");
    ck_assert_uint_eq(stale.version, 1);
    ck_assert_int_eq(m->get(m, "cas", &g), 0);
    ck_assert_uint_eq(g.epoch, 1);
    ck_assert_uint_eq(g.version, 2);
    ck_assert_uint_eq(g.nseg, 1);
    meta_stream_clear(&g);

    /* Seal the segment. */
    meta_stream_last(&s)->state = DLOG_SEGMENT_SEALED;
    ck_assert_int_eq(m->update(m, &s), 0);
    ck_assert_uint_eq(s.version, 3);
    ck_assert_int_eq(m->get(m, "cas", &g), 0);
    ck_assert_uint_eq(g.segs[0].state, DLOG_SEGMENT_SEALED);
    meta_stream_clear(&g);

    /* Missing streams. */
    struct meta_stream x;
    stream_init(&x, "nope");
    x.version = 1;
    ck_assert_int_eq(m->update(m, &x), DLOG_ENOTFOUND);

    meta_stream_clear(&s);
    meta_stream_clear(&stale);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

START_TEST(test_meta_remove)
{
    struct dlog_meta_ops *m;
    struct meta_stream s, old, g;

    meta_setup(_i);
    m = meta_open(_i);
    stream_init(&s, "rm");
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_int_eq(m->update(m, &s), 0); /* version 2 */
    ck_assert_int_eq(m->remove(m, "rm", 1), DLOG_ECONFLICT);
    ck_assert_int_eq(m->remove(m, "rm", 3), DLOG_ECONFLICT);
    ck_assert_int_eq(m->get(m, "rm", &g), 0);
    meta_stream_clear(&g);
    ck_assert_int_eq(m->remove(m, "rm", 2), 0);
    ck_assert_int_eq(m->get(m, "rm", &g), DLOG_ENOTFOUND);
    ck_assert_int_eq(m->remove(m, "rm", 0), DLOG_ENOTFOUND);

    /* Created again: a new id, version 1; an update from the old one fails. */
    old = s;
    old.version = 1;
    stream_init(&s, "rm");
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_uint_gt(s.id, old.id);
    ck_assert_uint_eq(s.version, 1);
    ck_assert_int_eq(m->update(m, &old), DLOG_ECONFLICT);
    ck_assert_int_eq(m->remove(m, "rm", 0), 0);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

/* Concurrent compare-and-set loops: every increment lands exactly once. */
#define CAS_THREADS 4
#define CAS_ROUNDS  25

static int cas_increment(struct dlog_meta_ops *m, const char *name, int rounds)
{
    for (int done = 0; done < rounds;) {
        struct meta_stream s;
        int rv = m->get(m, name, &s);
        if (rv != 0)
            return rv;
        s.epoch++;
        rv = m->update(m, &s);
        meta_stream_clear(&s);
        if (rv == 0)
            done++;
        else if (rv != DLOG_ECONFLICT)
            return rv;
    }
    return 0;
}

static void *cas_thread(void *arg)
{
    struct dlog_meta_ops *m = arg;
    return (void *)(intptr_t)cas_increment(m, "counter", CAS_ROUNDS);
}

START_TEST(test_meta_threads_cas)
{
    struct dlog_meta_ops *m;
    struct meta_stream s;
    pthread_t t[CAS_THREADS];

    meta_setup(_i);
    m = meta_open(_i);
    stream_init(&s, "counter");
    ck_assert_int_eq(m->create(m, &s), 0);
    for (int i = 0; i < CAS_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, cas_thread, m), 0);
    for (int i = 0; i < CAS_THREADS; i++) {
        void *rv;
        ck_assert_int_eq(pthread_join(t[i], &rv), 0);
        ck_assert_int_eq((int)(intptr_t)rv, 0);
    }
    ck_assert_int_eq(m->get(m, "counter", &s), 0);
    ck_assert_uint_eq(s.epoch, CAS_THREADS * CAS_ROUNDS);
    ck_assert_uint_eq(s.version, 1 + CAS_THREADS * CAS_ROUNDS);
    meta_stream_clear(&s);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

/* Key/value part (version 2): compare-and-set, listing, revisions. */
START_TEST(test_meta_kv)
{
    struct dlog_meta_ops *m;
    struct meta_kv *items;
    struct bytes val;
    struct meta_stream s;
    uint64_t ver, rev0, rev1;
    size_t n;

    meta_setup(_i);
    m = meta_open(_i);
    ck_assert_uint_ge(m->version, 2);
    bytes_init(&val);
    ck_assert_int_eq(m->revision(m, &rev0), 0);

    ck_assert_int_eq(m->kv_get(m, "rl/a", &val, &ver), DLOG_ENOTFOUND);
    ver = META_KV_CREATE;
    ck_assert_int_eq(m->kv_put(m, "rl/a", "one", 3, &ver), 0);
    ck_assert_uint_eq(ver, 1);
    ver = META_KV_CREATE; /* exists now */
    ck_assert_int_eq(m->kv_put(m, "rl/a", "two", 3, &ver), DLOG_ECONFLICT);
    ver = 7; /* wrong version: nothing written */
    ck_assert_int_eq(m->kv_put(m, "rl/a", "two", 3, &ver), DLOG_ECONFLICT);
    ver = 3;
    ck_assert_int_eq(m->kv_put(m, "rl/none", "x", 1, &ver), DLOG_ENOTFOUND);
    ver = 1;
    ck_assert_int_eq(m->kv_put(m, "rl/a", "two", 3, &ver), 0);
    ck_assert_uint_eq(ver, 2);
    ver = META_KV_ANY;
    ck_assert_int_eq(m->kv_put(m, "rl/b", "", 0, &ver), 0);
    ck_assert_uint_eq(ver, 1);
    ver = META_KV_ANY;
    ck_assert_int_eq(m->kv_put(m, "ns/limits", "L", 1, &ver), 0);

    ck_assert_int_eq(m->kv_get(m, "rl/a", &val, &ver), 0);
    ck_assert_uint_eq(ver, 2);
    ck_assert_uint_eq(val.len, 3);
    ck_assert_mem_eq(val.p, "two", 3);

    /* Listing by prefix, in byte order. */
    ck_assert_int_eq(m->kv_list(m, "rl/", &items, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(items[0].key, "rl/a");
    ck_assert_uint_eq(items[0].version, 2);
    ck_assert_str_eq(items[1].key, "rl/b");
    ck_assert_uint_eq(items[1].value.len, 0);
    meta_kv_list_free(items, n);
    ck_assert_int_eq(m->kv_list(m, "", &items, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0].key, "ns/limits");
    meta_kv_list_free(items, n);
    ck_assert_int_eq(m->kv_list(m, "zz", &items, &n), 0);
    ck_assert_uint_eq(n, 0);
    meta_kv_list_free(items, n);

    /* Bad input changes nothing. */
    char big[META_KEY_MAX + 2];
    memset(big, 'k', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ver = META_KV_ANY;
    ck_assert_int_eq(m->kv_put(m, big, "x", 1, &ver), DLOG_EINVAL);
    ck_assert_int_eq(m->kv_put(m, "", "x", 1, &ver), DLOG_EINVAL);
    ck_assert_int_eq(m->kv_put(m, "rl/c", "x", META_VALUE_MAX + 1, &ver), DLOG_EINVAL);

    /* Removal with and without a version. */
    ck_assert_int_eq(m->kv_remove(m, "rl/a", 1), DLOG_ECONFLICT);
    ck_assert_int_eq(m->kv_remove(m, "rl/a", 2), 0);
    ck_assert_int_eq(m->kv_remove(m, "rl/a", META_KV_ANY), DLOG_ENOTFOUND);
    ck_assert_int_eq(m->kv_remove(m, "rl/b", META_KV_ANY), 0);
    ck_assert_int_eq(m->kv_get(m, "rl/a", &val, NULL), DLOG_ENOTFOUND);

    /* Every successful change moved the revision: 4 puts, 2 removes. */
    ck_assert_int_eq(m->revision(m, &rev1), 0);
    ck_assert_uint_eq(rev1, rev0 + 6);
    /* Stream changes move it too; a failed one does not. */
    stream_init(&s, "revs");
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_int_eq(m->create(m, &s), DLOG_EEXIST);
    ck_assert_int_eq(m->update(m, &s), 0);
    ck_assert_int_eq(m->remove(m, "revs", 0), 0);
    ck_assert_int_eq(m->revision(m, &rev0), 0);
    ck_assert_uint_eq(rev0, rev1 + 3);
    meta_stream_clear(&s);

    bytes_free(&val);
    m->close(m);
    meta_teardown(_i);
}
END_TEST

/* ------------------------------------------------------- lmdb only */

START_TEST(test_lmdb_reopen)
{
    struct dlog_meta_ops *m;
    struct meta_stream s, g;

    tmpdir_make();
    m = meta_open(1);
    stream_full(&s, 3);
    ck_assert_int_eq(m->create(m, &s), 0);
    m->close(m);

    m = meta_open(1);
    ck_assert_int_eq(m->get(m, s.name, &g), 0);
    assert_streams_equal(&g, &s);
    meta_stream_clear(&g);
    meta_stream_clear(&s);
    stream_init(&s, "second");
    ck_assert_int_eq(m->create(m, &s), 0);
    ck_assert_uint_eq(s.id, 2); /* the counter survived */
    {
        uint64_t ver = META_KV_CREATE, rev;
        struct bytes val;

        bytes_init(&val);
        ck_assert_int_eq(m->kv_put(m, "k", "v", 1, &ver), 0);
        ck_assert_int_eq(m->revision(m, &rev), 0);
        m->close(m);
        m = meta_open(1);
        ck_assert_int_eq(m->kv_get(m, "k", &val, &ver), 0);
        ck_assert_uint_eq(ver, 1);
        ck_assert_mem_eq(val.p, "v", 1);
        ck_assert_int_eq(m->revision(m, &ver), 0);
        ck_assert_uint_eq(ver, rev); /* kept across a reopen */
        bytes_free(&val);
    }
    m->close(m);
    tmpdir_remove();
}
END_TEST

START_TEST(test_lmdb_open_errors)
{
    struct dlog_meta_ops *m = (void *)1;
    char err[DLOG_ERRMSG_SIZE] = "";

    ck_assert_int_eq(meta_lmdb_open("/nonexistent/dlog/dir", 0, &m, err), DLOG_ENOTDIR);
    ck_assert_ptr_null(m);
    ck_assert_str_ne(err, "");
    ck_assert_int_eq(meta_lmdb_open("/nonexistent/dlog/dir", 0, &m, NULL), DLOG_ENOTDIR);
}
END_TEST

/* Runs fn in a child process; returns its exit status (0 on success). */
static int in_child(int (*fn)(void *), void *arg)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn(arg) == 0 ? 0 : 1);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* The child: sees the parent's stream, updates it, adds its own. */
static int child_writes(void *arg)
{
    struct dlog_meta_ops *m;
    struct meta_stream s;
    int rv;

    (void)arg;
    if (meta_lmdb_open(tmpdir, 0, &m, NULL) != 0)
        return -1;
    rv = m->get(m, "parent", &s);
    if (rv == 0) {
        s.epoch = 5;
        rv = m->update(m, &s);
        meta_stream_clear(&s);
    }
    if (rv == 0) {
        stream_init(&s, "child");
        rv = m->create(m, &s);
    }
    m->close(m);
    return rv;
}

START_TEST(test_lmdb_two_processes)
{
    struct dlog_meta_ops *m;
    struct meta_stream s, g;
    char **names;
    size_t count;

    tmpdir_make();
    m = meta_open(1);
    stream_init(&s, "parent");
    ck_assert_int_eq(m->create(m, &s), 0);

    ck_assert_int_eq(in_child(child_writes, NULL), 0);

    /* The parent's open handle sees the child's writes. */
    ck_assert_int_eq(m->get(m, "parent", &g), 0);
    ck_assert_uint_eq(g.epoch, 5);
    ck_assert_uint_eq(g.version, 2);
    meta_stream_clear(&g);
    ck_assert_int_eq(m->get(m, "child", &g), 0);
    ck_assert_uint_eq(g.id, 2);
    meta_stream_clear(&g);
    ck_assert_int_eq(m->list(m, &names, &count), 0);
    ck_assert_uint_eq(count, 2);
    ck_assert_str_eq(names[0], "child");
    ck_assert_str_eq(names[1], "parent");
    names_free(names);
    /* The parent's copy is stale now. */
    ck_assert_int_eq(m->update(m, &s), DLOG_ECONFLICT);
    m->close(m);
    tmpdir_remove();
}
END_TEST

static int child_cas(void *arg)
{
    struct dlog_meta_ops *m;
    int rv;

    (void)arg;
    if (meta_lmdb_open(tmpdir, 0, &m, NULL) != 0)
        return -1;
    rv = cas_increment(m, "counter", CAS_ROUNDS);
    m->close(m);
    return rv;
}

/* Two processes race compare-and-set loops on one stream. */
START_TEST(test_lmdb_processes_cas)
{
    struct dlog_meta_ops *m;
    struct meta_stream s;
    pid_t pid[2];

    tmpdir_make();
    m = meta_open(1);
    stream_init(&s, "counter");
    ck_assert_int_eq(m->create(m, &s), 0);
    for (int i = 0; i < 2; i++) {
        pid[i] = fork();
        ck_assert_int_ge(pid[i], 0);
        if (pid[i] == 0)
            _exit(child_cas(NULL) == 0 ? 0 : 1);
    }
    for (int i = 0; i < 2; i++) {
        int status;
        ck_assert_int_eq(waitpid(pid[i], &status, 0), pid[i]);
        ck_assert(WIFEXITED(status));
        ck_assert_int_eq(WEXITSTATUS(status), 0);
    }
    ck_assert_int_eq(m->get(m, "counter", &s), 0);
    ck_assert_uint_eq(s.epoch, 2 * CAS_ROUNDS);
    ck_assert_uint_eq(s.version, 1 + 2 * CAS_ROUNDS);
    meta_stream_clear(&s);
    m->close(m);
    tmpdir_remove();
}
END_TEST

/* ------------------------------------------------------------ seg_mem */

/* A heap copy of an entry of n records with txids txid, txid+1, ... */
static struct iovec make_entry(uint64_t txid, int n, uint8_t eflags)
{
    struct entry_builder b;
    const uint8_t *p;
    size_t len;
    struct iovec iov;
    char payload[32];

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

static void free_entries(struct iovec *v, int n)
{
    for (int i = 0; i < n; i++)
        free(v[i].iov_base);
}

struct collected {
    int n;
    uint64_t ids[16];
    struct entry_hdr hdr[16];
    size_t len[16];
    int stop_after; /* 0: never */
};

static int collect(void *arg, uint64_t id, const void *p, size_t len)
{
    struct collected *c = arg;

    ck_assert_int_lt(c->n, 16);
    ck_assert_int_eq(entry_verify(p, len), 0);
    ck_assert_int_eq(entry_parse_hdr(p, len, &c->hdr[c->n]), 0);
    c->ids[c->n] = id;
    c->len[c->n] = len;
    c->n++;
    return c->stop_after != 0 && c->n >= c->stop_after;
}

static struct dlog_seg_ops *seg_open(void)
{
    struct dlog_seg_ops *s;
    ck_assert_int_eq(seg_mem_open(&s), 0);
    ck_assert_uint_eq(s->version, SEG_OPS_VERSION);
    return s;
}

START_TEST(test_seg_append_read)
{
    struct dlog_seg_ops *s = seg_open();
    struct iovec e[3] = {make_entry(11, 2, 0), make_entry(13, 1, 0),
                         make_entry(13, 3, 0)};
    struct seg_append a = {.epoch = 5, .entries = e, .n = 2};
    struct seg_info info;
    struct collected c = {0};

    ck_assert_int_eq(s->open(s, 1, 1, 5, 10), 0);
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 5);
    ck_assert_uint_eq(info.last_txid, 10);
    ck_assert_uint_eq(info.first_txid, 0);
    ck_assert_uint_eq(info.next_entry, 0);
    ck_assert_int_eq(info.sealed, 0);
    ck_assert_uint_gt(info.created_ms, 0);

    ck_assert_int_eq(s->append(s, 1, 1, &a), 0);
    ck_assert_uint_eq(a.first_entry, 0);
    ck_assert_uint_eq(a.first_txid, 11);
    ck_assert_uint_eq(a.info.next_entry, 2);
    ck_assert_uint_eq(a.info.records, 3);
    ck_assert_uint_eq(a.info.bytes, e[0].iov_len + e[1].iov_len);
    ck_assert_uint_eq(a.info.first_txid, 11);
    ck_assert_uint_eq(a.info.last_txid, 13);

    /* A txid equal to the last one is allowed (non-decreasing). */
    a.entries = &e[2];
    a.n = 1;
    ck_assert_int_eq(s->append(s, 1, 1, &a), 0);
    ck_assert_uint_eq(a.first_entry, 2);
    ck_assert_uint_eq(a.first_txid, 13);
    ck_assert_uint_eq(a.info.records, 6);
    ck_assert_uint_eq(a.info.first_txid, 11);
    ck_assert_uint_eq(a.info.last_txid, 15);

    /* open on an existing segment changes nothing. */
    ck_assert_int_eq(s->open(s, 1, 1, 9, 99), 0);
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 5);
    ck_assert_uint_eq(info.next_entry, 3);

    ck_assert_int_eq(s->read(s, 1, 1, 0, SIZE_MAX, collect, &c), 3);
    ck_assert_int_eq(c.n, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_uint_eq(c.ids[i], (uint64_t)i);
        ck_assert_uint_eq(c.len[i], e[i].iov_len);
    }
    ck_assert_uint_eq(c.hdr[2].base_txid, 13);

    /* max_bytes: at least one entry, then stop once reached. */
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(s->read(s, 1, 1, 1, 1, collect, &c), 1);
    ck_assert_uint_eq(c.ids[0], 1);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(s->read(s, 1, 1, 0, e[0].iov_len + 1, collect, &c), 2);
    memset(&c, 0, sizeof c);
    c.stop_after = 1;
    ck_assert_int_eq(s->read(s, 1, 1, 0, SIZE_MAX, collect, &c), 1);
    memset(&c, 0, sizeof c);
    ck_assert_int_eq(s->read(s, 1, 1, 3, SIZE_MAX, collect, &c), 0);
    ck_assert_int_eq(s->read(s, 1, 1, 1000, SIZE_MAX, collect, &c), 0);

    /* Other segments are separate. */
    ck_assert_int_eq(s->read(s, 1, 2, 0, SIZE_MAX, collect, &c), DLOG_ENOTFOUND);
    ck_assert_int_eq(s->read(s, 2, 1, 0, SIZE_MAX, collect, &c), DLOG_ENOTFOUND);
    ck_assert_int_eq(s->info(s, 0, 1, &info), DLOG_ENOTFOUND);
    a.entries = e;
    ck_assert_int_eq(s->append(s, 2, 1, &a), DLOG_ENOTFOUND);
    ck_assert_str_ne(s->errmsg, "");
    ck_assert_int_eq(s->open(s, 2, 1, 1, 0), 0);
    ck_assert_int_eq(s->open(s, 1, 0, 1, 0), 0);
    ck_assert_int_eq(s->append(s, 2, 1, &a), 0);
    ck_assert_uint_eq(a.first_entry, 0);
    ck_assert_int_eq(s->info(s, 1, 0, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);

    free_entries(e, 3);
    s->close(s);
}
END_TEST

START_TEST(test_seg_all_or_nothing)
{
    struct dlog_seg_ops *s = seg_open();
    struct iovec e[3] = {make_entry(20, 1, 0), make_entry(21, 1, 0), make_entry(5, 1, 0)};
    struct seg_append a = {.epoch = 1, .entries = e, .n = 3};
    struct seg_info info;
    uint8_t junk[64] = {0};
    uint32_t seq0;

    ck_assert_int_eq(s->open(s, 7, 1, 1, 10), 0);
    seq0 = s->notify_seq(s);
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_ETXID);
    ck_assert_str_ne(s->errmsg, "");
    ck_assert_int_eq(s->info(s, 7, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);
    ck_assert_uint_eq(info.records, 0);
    ck_assert_uint_eq(info.bytes, 0);
    ck_assert_uint_eq(info.last_txid, 10);
    ck_assert_uint_eq(s->notify_seq(s), seq0);

    /* Below the carried last txid. */
    a.entries = &e[2];
    a.n = 1;
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_ETXID);

    /* A malformed entry after a good one. */
    struct iovec bad[2] = {e[0], {junk, sizeof junk}};
    a.entries = bad;
    a.n = 2;
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_ECORRUPT);
    bad[1].iov_len = 3;
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_ECORRUPT);
    /* A header whose length does not match. */
    bad[1] = e[1];
    bad[1].iov_len--;
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_ECORRUPT);
    ck_assert_int_eq(s->info(s, 7, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);

    a.n = 0;
    ck_assert_int_eq(s->append(s, 7, 1, &a), DLOG_EINVAL);

    /* The good two go in. */
    a.entries = e;
    a.n = 2;
    ck_assert_int_eq(s->append(s, 7, 1, &a), 0);
    ck_assert_uint_eq(a.info.next_entry, 2);
    ck_assert_uint_eq(a.info.last_txid, 21);
    ck_assert_uint_ne(s->notify_seq(s), seq0);
    free_entries(e, 3);
    s->close(s);
}
END_TEST

START_TEST(test_seg_auto_txid)
{
    struct dlog_seg_ops *s = seg_open();
    /* Writers' own txids (1, 1..2) are replaced. */
    struct iovec e[4] = {make_entry(1, 2, 0), make_entry(1, 1, 0),
                         make_entry(1, 1, ENTRY_F_FRAGMENT),
                         make_entry(1, 1, ENTRY_F_FRAGMENT | ENTRY_F_CONT)};
    uint8_t *orig = malloc(e[0].iov_len);
    struct seg_append a = {
        .epoch = 1, .entries = e, .n = 2, .flags = SEG_APPEND_AUTO_TXID};
    struct collected c = {0};

    memcpy(orig, e[0].iov_base, e[0].iov_len);
    ck_assert_int_eq(s->open(s, 1, 3, 1, 100), 0);
    ck_assert_int_eq(s->append(s, 1, 3, &a), 0);
    ck_assert_uint_eq(a.first_entry, 0);
    ck_assert_uint_eq(a.first_txid, 101);
    ck_assert_uint_eq(a.info.first_txid, 101);
    ck_assert_uint_eq(a.info.last_txid, 103);
    /* The caller's bytes are untouched: the store renumbers its copy. */
    ck_assert_int_eq(memcmp(orig, e[0].iov_base, e[0].iov_len), 0);

    /* A fragmented record: the continuation shares the first one's txid. */
    a.entries = &e[2];
    a.n = 2;
    ck_assert_int_eq(s->append(s, 1, 3, &a), 0);
    ck_assert_uint_eq(a.first_entry, 2);
    ck_assert_uint_eq(a.first_txid, 104);
    ck_assert_uint_eq(a.info.last_txid, 104);
    /* A large record counts once, however many fragments it has. */
    ck_assert_uint_eq(a.info.records, 4);

    ck_assert_int_eq(s->read(s, 1, 3, 0, SIZE_MAX, collect, &c), 4);
    ck_assert_uint_eq(c.hdr[0].base_txid, 101);
    ck_assert_uint_eq(c.hdr[0].last_txid, 102);
    ck_assert_uint_eq(c.hdr[1].base_txid, 103);
    ck_assert_uint_eq(c.hdr[1].last_txid, 103);
    ck_assert_uint_eq(c.hdr[2].base_txid, 104);
    ck_assert_uint_eq(c.hdr[3].base_txid, 104);
    ck_assert_uint_eq(c.hdr[3].flags & ENTRY_F_CONT, ENTRY_F_CONT);

    free(orig);
    free_entries(e, 4);
    s->close(s);
}
END_TEST

START_TEST(test_seg_fence_seal)
{
    struct dlog_seg_ops *s = seg_open();
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct seg_append a = {.epoch = 2, .entries = e, .n = 1};
    struct seg_info info;
    uint32_t seq0;

    ck_assert_int_eq(s->open(s, 1, 1, 1, 0), 0);
    ck_assert_int_eq(s->fence(s, 1, 1, 3), 0);
    ck_assert_int_eq(s->fence(s, 1, 1, 2), 0); /* never lowers */
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_uint_eq(info.fence_epoch, 3);
    ck_assert_int_eq(s->append(s, 1, 1, &a), DLOG_EFENCED);
    ck_assert_str_ne(s->errmsg, "");
    a.epoch = 4;
    ck_assert_int_eq(s->append(s, 1, 1, &a), 0);
    ck_assert_int_eq(s->fence(s, 9, 9, 3), DLOG_ENOTFOUND);

    ck_assert_int_eq(s->seal(s, 1, 1, 2, &info), DLOG_EFENCED);
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_int_eq(info.sealed, 0);
    seq0 = s->notify_seq(s);
    memset(&info, 0, sizeof info);
    ck_assert_int_eq(s->seal(s, 1, 1, 3, &info), 0);
    ck_assert_int_eq(info.sealed, 1);
    ck_assert_uint_eq(info.next_entry, 1);
    ck_assert_uint_eq(info.last_txid, 1);
    ck_assert_uint_ne(s->notify_seq(s), seq0);
    memset(&info, 0, sizeof info);
    ck_assert_int_eq(s->seal(s, 1, 1, 5, &info), 0); /* idempotent */
    ck_assert_int_eq(info.sealed, 1);
    ck_assert_uint_eq(info.next_entry, 1);
    ck_assert_int_eq(s->append(s, 1, 1, &a), DLOG_ESEALED);
    ck_assert_int_eq(s->seal(s, 1, 2, 5, &info), DLOG_ENOTFOUND);
    free_entries(e, 1);
    s->close(s);
}
END_TEST

START_TEST(test_seg_remove_notify)
{
    struct dlog_seg_ops *s = seg_open();
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct seg_append a = {.epoch = 0, .entries = e, .n = 1};
    struct seg_info info;
    struct collected c = {0};
    uint32_t seq0, seq1;

    ck_assert_int_eq(s->open(s, 1, 1, 0, 0), 0);
    seq0 = s->notify_seq(s);
    ck_assert_int_eq(s->notify_wait(s, seq0, 0), DLOG_ETIMEDOUT);
    ck_assert_int_eq(s->notify_wait(s, seq0, 20), DLOG_ETIMEDOUT);
    ck_assert_int_eq(s->append(s, 1, 1, &a), 0);
    seq1 = s->notify_seq(s);
    ck_assert_uint_ne(seq1, seq0);
    ck_assert_int_eq(s->notify_wait(s, seq0, 1000), 0);

    ck_assert_int_eq(s->remove(s, 1, 1), 0);
    ck_assert_uint_ne(s->notify_seq(s), seq1);
    ck_assert_int_eq(s->info(s, 1, 1, &info), DLOG_ENOTFOUND);
    ck_assert_int_eq(s->read(s, 1, 1, 0, SIZE_MAX, collect, &c), DLOG_ENOTFOUND);
    ck_assert_int_eq(s->append(s, 1, 1, &a), DLOG_ENOTFOUND);
    ck_assert_int_eq(s->remove(s, 1, 1), 0); /* idempotent */
    ck_assert_int_eq(s->remove(s, 5, 5), 0);

    /* Opened again: empty. */
    ck_assert_int_eq(s->open(s, 1, 1, 0, 7), 0);
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, 0);
    ck_assert_uint_eq(info.last_txid, 7);
    free_entries(e, 1);
    s->close(s);
}
END_TEST

struct waiter {
    struct dlog_seg_ops *s;
    uint32_t seen;
    int rv;
};

static void *wait_thread(void *arg)
{
    struct waiter *w = arg;
    w->rv = w->s->notify_wait(w->s, w->seen, 10000);
    return NULL;
}

/* A tailing reader waiting in another thread wakes on an append. */
START_TEST(test_seg_wakeup)
{
    struct dlog_seg_ops *s = seg_open();
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct seg_append a = {.epoch = 0, .entries = e, .n = 1};
    struct waiter w = {s, 0, -1};
    pthread_t t;

    ck_assert_int_eq(s->open(s, 1, 1, 0, 0), 0);
    w.seen = s->notify_seq(s);
    ck_assert_int_eq(pthread_create(&t, NULL, wait_thread, &w), 0);
    ck_assert_int_eq(s->append(s, 1, 1, &a), 0);
    ck_assert_int_eq(pthread_join(t, NULL), 0);
    ck_assert_int_eq(w.rv, 0);
    free_entries(e, 1);
    s->close(s);
}
END_TEST

/* Many threads append to one segment: ids are dense and counts add up. */
#define APPEND_THREADS 4
#define APPEND_ROUNDS  200

static void *append_thread(void *arg)
{
    struct dlog_seg_ops *s = arg;
    struct iovec e[1] = {make_entry(1, 1, 0)};
    struct seg_append a = {
        .epoch = 0, .entries = e, .n = 1, .flags = SEG_APPEND_AUTO_TXID};
    intptr_t rv = 0;

    for (int i = 0; i < APPEND_ROUNDS && rv == 0; i++)
        rv = s->append(s, 1, 1, &a);
    free_entries(e, 1);
    return (void *)rv;
}

START_TEST(test_seg_threads)
{
    struct dlog_seg_ops *s = seg_open();
    pthread_t t[APPEND_THREADS];
    struct seg_info info;

    ck_assert_int_eq(s->open(s, 1, 1, 0, 0), 0);
    for (int i = 0; i < APPEND_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, append_thread, s), 0);
    for (int i = 0; i < APPEND_THREADS; i++) {
        void *rv;
        ck_assert_int_eq(pthread_join(t[i], &rv), 0);
        ck_assert_int_eq((int)(intptr_t)rv, 0);
    }
    ck_assert_int_eq(s->info(s, 1, 1, &info), 0);
    ck_assert_uint_eq(info.next_entry, APPEND_THREADS * APPEND_ROUNDS);
    ck_assert_uint_eq(info.records, APPEND_THREADS * APPEND_ROUNDS);
    ck_assert_uint_eq(info.first_txid, 1);
    ck_assert_uint_eq(info.last_txid, APPEND_THREADS * APPEND_ROUNDS);
    s->close(s);
}
END_TEST

Suite *stores_suite(void)
{
    Suite *s = suite_create("stores");
    TCase *tc;

    tc = tcase_create("codec");
    tcase_add_test(tc, test_codec_helpers);
    tcase_add_test(tc, test_codec_round_trip);
    tcase_add_test(tc, test_codec_name_max);
    tcase_add_test(tc, test_codec_truncated);
    tcase_add_test(tc, test_codec_garbage);
    tcase_add_test(tc, test_codec_bad_fields);
    suite_add_tcase(s, tc);

    /* Loop index 0: meta_mem, 1: meta_lmdb. */
    tc = tcase_create("meta");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_meta_create_get, 0, 2);
    tcase_add_loop_test(tc, test_meta_list, 0, 2);
    tcase_add_loop_test(tc, test_meta_update_cas, 0, 2);
    tcase_add_loop_test(tc, test_meta_remove, 0, 2);
    tcase_add_loop_test(tc, test_meta_threads_cas, 0, 2);
    tcase_add_loop_test(tc, test_meta_kv, 0, 2);
    suite_add_tcase(s, tc);

    tc = tcase_create("meta_lmdb");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lmdb_reopen);
    tcase_add_test(tc, test_lmdb_open_errors);
    tcase_add_test(tc, test_lmdb_two_processes);
    tcase_add_test(tc, test_lmdb_processes_cas);
    suite_add_tcase(s, tc);

    tc = tcase_create("seg_mem");
    tcase_add_test(tc, test_seg_append_read);
    tcase_add_test(tc, test_seg_all_or_nothing);
    tcase_add_test(tc, test_seg_auto_txid);
    tcase_add_test(tc, test_seg_fence_seal);
    tcase_add_test(tc, test_seg_remove_notify);
    tcase_add_test(tc, test_seg_wakeup);
    tcase_add_test(tc, test_seg_threads);
    suite_add_tcase(s, tc);
    return s;
}
