/* Reader transforms: key-prefix filter, filter callback, projection. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_suites.h"
#include "core_util.h"

struct krec {
    const char *key; /* NULL: no key */
    size_t key_len;
    const char *payload;
};

/* A stream with keyed records; their DLSNs go to acks. */
static void setup_keyed(struct core_env *e, char *name, const char *tag,
                        const struct krec *v, size_t n, struct dlog_dlsn *acks)
{
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    cfg.segment_max_records = 4; /* transforms across segment rolls */
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, &cfg);
    struct dlog_writer *w = core_writer(e->ns, name, DLOG_WRITER_SHARED);
    for (size_t i = 0; i < n; i++) {
        struct dlog_record rec = {.payload = v[i].payload,
                                  .len = strlen(v[i].payload),
                                  .key = v[i].key,
                                  .key_len = v[i].key_len};
        CORE_ASSERT_OK(dlog_write_sync(w, &rec, 1, &acks[i]));
    }
    CORE_ASSERT_OK(dlog_writer_close(w));
}

static const struct krec keyed[] = {
    {"a/1", 3, "p0"},   {"b/1", 3, "p1"},   {"a/2", 3, "p2"},   {"ab", 2, "p3"},
    {"a", 1, "p4"},     {NULL, 0, "p5"},    {"a/", 2, "p6"},    {"A/1", 3, "p7"},
    {"a/\0x", 4, "p8"}, {"\0\1z", 3, "p9"}, {"\0\2", 2, "p10"}, {"a/3/deep", 8, "p11"},
};
#define NKEYED (sizeof keyed / sizeof keyed[0])

/* Reads everything through opts; returns the payload strings joined by ','. */
static void read_through(struct dlog_ns *ns, const char *name,
                         struct dlog_reader_options *o, char *out, size_t size,
                         struct dlog_dlsn *dlsns)
{
    struct dlog_reader *r = NULL;
    CORE_NS_OK(ns, dlog_reader_open(ns, name, o, &r));
    struct core_rec *recs = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, 0, 10000, &recs, &n);
    ck_assert_msg(rv >= 0, "read: %s: %s", dlog_errname(rv), dlog_reader_errmsg(r));
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(out);
        snprintf(out + len, size - len, "%s%.*s", i > 0 ? "," : "", (int)recs[i].len,
                 (const char *)recs[i].payload);
        if (dlsns != NULL)
            dlsns[i] = recs[i].dlsn;
        if (i > 0)
            CORE_ASSERT_DLSN_LT(recs[i - 1].dlsn, recs[i].dlsn);
    }
    core_recs_free(recs, n);
    dlog_reader_close(r);
}

START_TEST(test_key_prefix)
{
    struct core_env e;
    char name[128], got[512];
    struct dlog_dlsn acks[NKEYED], seen[NKEYED];
    setup_keyed(&e, name, "keyprefix", keyed, NKEYED, acks);
    struct dlog_reader_options o;
    dlog_reader_options_init(&o);

    /* No prefix: everything. */
    read_through(e.ns, name, &o, got, sizeof got, NULL);
    ck_assert_str_eq(got, "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,p10,p11");

    char prefix[8] = "a/";
    o.key_prefix = prefix;
    o.key_prefix_len = 2;
    read_through(e.ns, name, &o, got, sizeof got, seen);
    ck_assert_str_eq(got, "p0,p2,p6,p8,p11");
    /* The kept records keep their positions. */
    CORE_ASSERT_DLSN_EQ(seen[0], acks[0]);
    CORE_ASSERT_DLSN_EQ(seen[1], acks[2]);
    CORE_ASSERT_DLSN_EQ(seen[4], acks[11]);

    /* A binary prefix is bytes, not a C string. */
    o.key_prefix = "\0\1";
    o.key_prefix_len = 2;
    read_through(e.ns, name, &o, got, sizeof got, NULL);
    ck_assert_str_eq(got, "p9");
    o.key_prefix = "a/\0";
    o.key_prefix_len = 3;
    read_through(e.ns, name, &o, got, sizeof got, NULL);
    ck_assert_str_eq(got, "p8");

    /* The prefix is copied at open. */
    struct dlog_reader *r = NULL;
    o.key_prefix = prefix;
    o.key_prefix_len = 2;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    memcpy(prefix, "b/", 2);
    struct dlog_record rec;
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert(rec.len == 2 && memcmp(rec.payload, "p0", 2) == 0);
    ck_assert(rec.key_len == 3 && memcmp(rec.key, "a/1", 3) == 0);
    dlog_reader_close(r);

    /* A prefix nothing matches: the read times out, then a match arrives. */
    o.key_prefix = "zz";
    o.key_prefix_len = 2;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    uint64_t t0 = core_now_ms();
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 200), DLOG_ETIMEDOUT);
    ck_assert_uint_lt(core_now_ms() - t0, 3000);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_record zz[2] = {{.payload = "no", .len = 2, .key = "zy", .key_len = 2},
                                {.payload = "yes", .len = 3, .key = "zz9", .key_len = 3}};
    CORE_ASSERT_OK(dlog_write_sync(w, zz, 2, NULL));
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert(rec.len == 3 && memcmp(rec.payload, "yes", 3) == 0);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

struct filter_state {
    int calls;
    int bad; /* a record arrived without its fields */
};

/* Keeps records with an even txid. */
static int even_txid(void *arg, const struct dlog_record *rec)
{
    struct filter_state *f = arg;
    f->calls++;
    if (rec->payload == NULL || rec->len == 0 || rec->txid == 0 || rec->dlsn.seg == 0)
        f->bad++;
    return rec->txid % 2 == 0;
}

START_TEST(test_filter)
{
    struct core_env e;
    char name[128], got[512];
    struct dlog_dlsn acks[NKEYED];
    setup_keyed(&e, name, "filter", keyed, NKEYED, acks);
    struct dlog_reader_options o;
    struct filter_state f = {0, 0};
    dlog_reader_options_init(&o);
    o.filter = even_txid;
    o.filter_arg = &f;
    read_through(e.ns, name, &o, got, sizeof got, NULL);
    /* txids are 1.. (auto): even txids are p1, p3, ... */
    ck_assert_str_eq(got, "p1,p3,p5,p7,p9,p11");
    ck_assert_int_ge(f.calls, (int)NKEYED);
    ck_assert_int_eq(f.bad, 0);

    /* With a key prefix too: both must keep a record. */
    o.key_prefix = "a";
    o.key_prefix_len = 1;
    read_through(e.ns, name, &o, got, sizeof got, NULL);
    ck_assert_str_eq(got, "p3,p11");
    core_env_close(&e);
}
END_TEST

/* Replaces the payload with "<KEY>=<PAYLOAD upper-cased>#<txid>". */
static int shout(void *arg, const struct dlog_record *rec, struct dlog_buf *out)
{
    char tmp[128];
    int n = snprintf(tmp, sizeof tmp, "%.*s=", (int)rec->key_len,
                     rec->key != NULL ? (const char *)rec->key : "");
    for (size_t i = 0; i < rec->len && n < 100; i++)
        tmp[n++] = (char)toupper(((const unsigned char *)rec->payload)[i]);
    n +=
        snprintf(tmp + n, sizeof tmp - (size_t)n, "#%llu", (unsigned long long)rec->txid);
    (*(int *)arg)++;
    return dlog_buf_append(out, tmp, (size_t)n);
}

START_TEST(test_projection)
{
    struct core_env e;
    char name[128];
    const struct krec v[] = {{"k1", 2, "hello"}, {"k2", 2, "world"}, {NULL, 0, "x"}};
    struct dlog_dlsn acks[3];
    setup_keyed(&e, name, "project", v, 3, acks);
    struct dlog_reader_options o;
    int calls = 0;
    dlog_reader_options_init(&o);
    o.project = shout;
    o.project_arg = &calls;
    struct dlog_reader *r = NULL;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    struct dlog_record recs[3];
    int n = 0;
    while (n < 3) {
        int rv = dlog_read(r, recs + n, 3 - (size_t)n, 5000);
        ck_assert_msg(rv >= 1, "read: %s", dlog_errname(rv));
        /* Check this batch now: its memory lives until the next read. */
        for (int i = n; i < n + rv; i++) {
            char want[64];
            snprintf(want, sizeof want, "%s=%s#%d", v[i].key ? v[i].key : "",
                     i == 0   ? "HELLO"
                     : i == 1 ? "WORLD"
                              : "X",
                     i + 1);
            ck_assert_uint_eq(recs[i].len, strlen(want));
            ck_assert_mem_eq(recs[i].payload, want, recs[i].len);
            /* Position, txid and key are the record's own. */
            CORE_ASSERT_DLSN_EQ(recs[i].dlsn, acks[i]);
            ck_assert_uint_eq(recs[i].txid, (uint64_t)i + 1);
            ck_assert_uint_eq(recs[i].key_len, v[i].key_len);
        }
        n += rv;
    }
    ck_assert_int_eq(calls, 3);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

static int fail_on_second(void *arg, const struct dlog_record *rec, struct dlog_buf *out)
{
    if (rec->txid == 2)
        return DLOG_EINVAL;
    return dlog_buf_append(out, "ok", 2);
}

/* Projects to the record's length and checksum (a large record to a few bytes). */
static int summarize(void *arg, const struct dlog_record *rec, struct dlog_buf *out)
{
    char tmp[64];
    int n = snprintf(tmp, sizeof tmp, "%zu:%016llx", rec->len,
                     (unsigned long long)core_checksum(rec->payload, rec->len));
    return dlog_buf_append(out, tmp, (size_t)n);
}

START_TEST(test_projection_errors_and_large)
{
    struct core_env e;
    char name[128];
    const struct krec v[] = {{NULL, 0, "one"}, {NULL, 0, "two"}, {NULL, 0, "three"}};
    struct dlog_dlsn acks[3];
    setup_keyed(&e, name, "projerr", v, 3, acks);
    struct dlog_reader_options o;
    struct dlog_reader *r = NULL;
    struct dlog_record rec;
    dlog_reader_options_init(&o);
    o.project = fail_on_second;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert(rec.len == 2 && memcmp(rec.payload, "ok", 2) == 0);
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 5000), DLOG_EINVAL);
    dlog_reader_close(r);

    /* A 3 MiB record projected to a summary. */
    size_t big = 3 * 1024 * 1024 + 7;
    uint8_t *p = malloc(big);
    ck_assert_ptr_nonnull(p);
    core_payload(p, big, 9, 0);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_dlsn d;
    CORE_ASSERT_OK(core_write1(w, p, big, 0, &d));
    CORE_ASSERT_OK(dlog_writer_close(w));
    char want[64];
    snprintf(want, sizeof want, "%zu:%016llx", big,
             (unsigned long long)core_checksum(p, big));
    free(p);
    dlog_reader_options_init(&o);
    o.start = DLOG_START_DLSN;
    o.start_dlsn = d;
    o.project = summarize;
    CORE_NS_OK(e.ns, dlog_reader_open(e.ns, name, &o, &r));
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);
    ck_assert_uint_eq(rec.len, strlen(want));
    ck_assert_mem_eq(rec.payload, want, rec.len);
    CORE_ASSERT_DLSN_EQ(rec.dlsn, d);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

Suite *transform_suite(void)
{
    Suite *s = suite_create("transform");
    TCase *tc = core_tcase("transform", CORE_TIMEOUT);
    tcase_add_test(tc, test_key_prefix);
    tcase_add_test(tc, test_filter);
    tcase_add_test(tc, test_projection);
    tcase_add_test(tc, test_projection_errors_and_large);
    suite_add_tcase(s, tc);
    return s;
}
