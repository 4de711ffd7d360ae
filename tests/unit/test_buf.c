/* Unit tests: rbuf, bytes, cursor and iovec helpers (buf.c). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "suites.h"

/* ------------------------------------------------------------------ rbuf */

START_TEST(test_rbuf_new_copy_ref)
{
    struct rbuf *b = rbuf_new(16);
    struct rbuf *c;

    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, 0);
    ck_assert_uint_eq(b->cap, 16);
    ck_assert_int_eq(b->refs, 1);
    ck_assert_ptr_eq(rbuf_ref(b), b);
    ck_assert_int_eq(b->refs, 2);
    rbuf_unref(b);
    ck_assert_int_eq(b->refs, 1);
    rbuf_unref(b); /* freed: ASan reports a leak or double free otherwise */

    c = rbuf_copy("hello", 5);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, 5);
    ck_assert_mem_eq(c->data, "hello", 5);
    rbuf_unref(c);

    c = rbuf_copy(NULL, 0);
    ck_assert_ptr_nonnull(c);
    ck_assert_uint_eq(c->len, 0);
    rbuf_unref(c);

    rbuf_unref(NULL);
    ck_assert_ptr_null(rbuf_new(SIZE_MAX)); /* size overflow, not abort */
    ck_assert_ptr_null(rbuf_new(SIZE_MAX - 8));
}
END_TEST

#define REF_ROUNDS 200000

static void *ref_churn(void *arg)
{
    struct rbuf *b = arg;

    for (int i = 0; i < REF_ROUNDS; i++) {
        rbuf_ref(b);
        rbuf_unref(b);
    }
    return NULL;
}

/*
 * Drops the caller's reference: the last thread to drop one frees the
 * buffer. Returns the buffer when its bytes read back intact, else NULL.
 */
static void *ref_drop(void *arg)
{
    struct rbuf *b = arg;
    int ok = memcmp(b->data, "shared", 6) == 0;

    rbuf_unref(b);
    return ok ? arg : NULL;
}

START_TEST(test_rbuf_refs_two_threads)
{
    struct rbuf *b = rbuf_copy("shared", 6);
    pthread_t t1, t2;
    void *r1, *r2;

    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(pthread_create(&t1, NULL, ref_churn, b), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, ref_churn, b), 0);
    for (int i = 0; i < REF_ROUNDS; i++) {
        rbuf_ref(b);
        rbuf_unref(b);
    }
    ck_assert_int_eq(pthread_join(t1, NULL), 0);
    ck_assert_int_eq(pthread_join(t2, NULL), 0);
    ck_assert_int_eq(__atomic_load_n(&b->refs, __ATOMIC_SEQ_CST), 1);

    /* Two owners drop concurrently; exactly one frees (no leak, no double free). */
    rbuf_ref(b);
    ck_assert_int_eq(pthread_create(&t1, NULL, ref_drop, b), 0);
    ck_assert_int_eq(pthread_create(&t2, NULL, ref_drop, b), 0);
    ck_assert_int_eq(pthread_join(t1, &r1), 0);
    ck_assert_int_eq(pthread_join(t2, &r2), 0);
    ck_assert_ptr_eq(r1, b);
    ck_assert_ptr_eq(r2, b);
}
END_TEST

/* ----------------------------------------------------------------- bytes */

START_TEST(test_bytes_build)
{
    static const uint8_t want[] = {0xab, 0x01, 0x02, 0x03, 0x04, 0x01, 0x02, 0x03,
                                   0x04, 0x05, 0x06, 0x07, 0x08, 'x',  'y'};
    struct bytes b;
    size_t cap;

    bytes_init(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_int_eq(bytes_put_u8(&b, 0xab), 0);
    ck_assert_int_eq(bytes_put_u32be(&b, 0x01020304u), 0);
    ck_assert_int_eq(bytes_put_u64be(&b, 0x0102030405060708ull), 0);
    ck_assert_int_eq(bytes_append(&b, "xy", 2), 0);
    ck_assert_int_eq(bytes_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(b.len, sizeof want);
    ck_assert_mem_eq(b.p, want, sizeof want);

    /* Growth keeps the contents. */
    for (int i = 0; i < 10000; i++)
        ck_assert_int_eq(bytes_put_u8(&b, (uint8_t)i), 0);
    ck_assert_uint_eq(b.len, sizeof want + 10000);
    ck_assert_uint_ge(b.cap, b.len);
    ck_assert_mem_eq(b.p, want, sizeof want);
    for (int i = 0; i < 10000; i++)
        ck_assert_uint_eq(b.p[sizeof want + (size_t)i], (uint8_t)i);

    cap = b.cap;
    bytes_reset(&b);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, cap);
    ck_assert_int_eq(bytes_reserve(&b, cap), 0);
    ck_assert_uint_eq(b.cap, cap); /* already room: no reallocation */

    /* Impossible sizes fail with DLOG_ENOMEM instead of aborting. */
    ck_assert_int_eq(bytes_put_u8(&b, 1), 0);
    ck_assert_int_eq(bytes_reserve(&b, SIZE_MAX), DLOG_ENOMEM);
    ck_assert_int_eq(bytes_reserve(&b, SIZE_MAX / 2 + 1), DLOG_ENOMEM);
    ck_assert_int_eq(bytes_reserve(&b, SIZE_MAX - 1), DLOG_ENOMEM);
    ck_assert_uint_eq(b.len, 1);

    bytes_free(&b);
    ck_assert_ptr_null(b.p);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_uint_eq(b.cap, 0);
}
END_TEST

START_TEST(test_be_helpers)
{
    uint8_t p[8];

    put_u32be(p, 0xdeadbeefu);
    ck_assert_uint_eq(p[0], 0xde);
    ck_assert_uint_eq(p[3], 0xef);
    ck_assert_uint_eq(get_u32be(p), 0xdeadbeefu);
    put_u64be(p, 0x0011223344556677ull);
    ck_assert_uint_eq(p[0], 0x00);
    ck_assert_uint_eq(p[7], 0x77);
    ck_assert_uint_eq(get_u64be(p), 0x0011223344556677ull);
}
END_TEST

/* ---------------------------------------------------------------- varint */

START_TEST(test_uvarint_round_trip)
{
    static const struct {
        uint64_t v;
        size_t len;
    } cases[] = {
        {0, 1},           {1, 1},
        {127, 1},         {128, 2},
        {300, 2},         {16383, 2},
        {16384, 3},       {(1ull << 21) - 1, 3},
        {1ull << 21, 4},  {UINT32_MAX, 5},
        {1ull << 35, 6},  {(1ull << 56) - 1, 8},
        {1ull << 56, 9},  {(1ull << 63) - 1, 9},
        {1ull << 63, 10}, {UINT64_MAX, 10},
    };
    struct bytes b;
    struct cursor c;
    uint64_t v;

    bytes_init(&b);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bytes_reset(&b);
        ck_assert_int_eq(bytes_put_uvarint(&b, cases[i].v), 0);
        ck_assert_uint_eq(b.len, cases[i].len);
        c = (struct cursor){b.p, b.len};
        ck_assert_int_eq(cursor_get_uvarint(&c, &v), 0);
        ck_assert_uint_eq(v, cases[i].v);
        ck_assert_uint_eq(c.len, 0);
    }
    /* 300 is the LEB128 example: 0xAC 0x02. */
    bytes_reset(&b);
    ck_assert_int_eq(bytes_put_uvarint(&b, 300), 0);
    ck_assert_uint_eq(b.p[0], 0xac);
    ck_assert_uint_eq(b.p[1], 0x02);

    /* A stream of pseudo-random values of every width decodes in order. */
    bytes_reset(&b);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ck_assert_int_eq(bytes_put_uvarint(&b, x >> (i % 64)), 0);
    }
    c = (struct cursor){b.p, b.len};
    x = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 1000; i++) {
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        ck_assert_int_eq(cursor_get_uvarint(&c, &v), 0);
        ck_assert_uint_eq(v, x >> (i % 64));
    }
    ck_assert_uint_eq(c.len, 0);
    bytes_free(&b);
}
END_TEST

/* Every failing read returns DLOG_EPROTO and leaves the cursor as it was. */
static void expect_bad_uvarint(const uint8_t *p, size_t len)
{
    struct cursor c = {p, len};
    uint64_t v = 12345;

    ck_assert_int_eq(cursor_get_uvarint(&c, &v), DLOG_EPROTO);
    ck_assert_ptr_eq(c.p, p);
    ck_assert_uint_eq(c.len, len);
    ck_assert_uint_eq(v, 12345);
}

START_TEST(test_uvarint_malformed)
{
    uint8_t p[16];
    struct cursor c;
    uint64_t v;

    expect_bad_uvarint(NULL, 0);
    p[0] = 0x80; /* continuation, then nothing */
    expect_bad_uvarint(p, 1);
    memset(p, 0xff, 9);
    expect_bad_uvarint(p, 9); /* nine continuation bytes and the end */

    /* 11 bytes: 10 continuation bytes then a terminator. */
    memset(p, 0x80, 10);
    p[10] = 0x00;
    expect_bad_uvarint(p, 11);
    memset(p, 0x80, 16);
    expect_bad_uvarint(p, 16);

    /* 10 bytes whose last carries more than the 64th bit: overflow. */
    memset(p, 0xff, 9);
    p[9] = 0x02;
    expect_bad_uvarint(p, 10);
    p[9] = 0x7f;
    expect_bad_uvarint(p, 10);
    p[9] = 0x81; /* the 64th bit plus a continuation */
    expect_bad_uvarint(p, 12);

    /* The largest legal encoding, followed by more data. */
    p[9] = 0x01;
    p[10] = 0x05;
    c = (struct cursor){p, 11};
    ck_assert_int_eq(cursor_get_uvarint(&c, &v), 0);
    ck_assert_uint_eq(v, UINT64_MAX);
    ck_assert_uint_eq(c.len, 1);
    ck_assert_int_eq(cursor_get_uvarint(&c, &v), 0);
    ck_assert_uint_eq(v, 5);

    /* Non-minimal but in-range encodings decode to their value. */
    p[0] = 0x81;
    p[1] = 0x00;
    c = (struct cursor){p, 2};
    ck_assert_int_eq(cursor_get_uvarint(&c, &v), 0);
    ck_assert_uint_eq(v, 1);
}
END_TEST

/* ---------------------------------------------------------------- cursor */

START_TEST(test_cursor_reads)
{
    static const uint8_t in[] = {0x7f, 0x01, 0x02, 0x03, 0x04, 0x10, 0x20, 0x30,
                                 0x40, 0x50, 0x60, 0x70, 0x80, 'a',  'b',  'c'};
    struct cursor c = {in, sizeof in};
    const uint8_t *p;
    uint8_t u8;
    uint32_t u32;
    uint64_t u64;

    ck_assert_int_eq(cursor_get_u8(&c, &u8), 0);
    ck_assert_uint_eq(u8, 0x7f);
    ck_assert_int_eq(cursor_get_u32be(&c, &u32), 0);
    ck_assert_uint_eq(u32, 0x01020304u);
    ck_assert_int_eq(cursor_get_u64be(&c, &u64), 0);
    ck_assert_uint_eq(u64, 0x1020304050607080ull);
    ck_assert_int_eq(cursor_get_bytes(&c, 0, &p), 0);
    ck_assert_ptr_eq(p, in + 13);
    ck_assert_int_eq(cursor_get_bytes(&c, 3, &p), 0);
    ck_assert_mem_eq(p, "abc", 3);
    ck_assert_uint_eq(c.len, 0);
    ck_assert_ptr_eq(c.p, in + sizeof in);
}
END_TEST

START_TEST(test_cursor_bounds)
{
    static const uint8_t in[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    const uint8_t *p = NULL;
    struct cursor c;
    uint8_t u8 = 0;
    uint32_t u32 = 0;
    uint64_t u64 = 0;

    c = (struct cursor){in, 0};
    ck_assert_int_eq(cursor_get_u8(&c, &u8), DLOG_EPROTO);
    ck_assert_int_eq(cursor_get_bytes(&c, 1, &p), DLOG_EPROTO);
    ck_assert_int_eq(cursor_get_bytes(&c, 0, &p), 0);

    c = (struct cursor){in, 3};
    ck_assert_int_eq(cursor_get_u32be(&c, &u32), DLOG_EPROTO);
    ck_assert_uint_eq(c.len, 3);
    ck_assert_ptr_eq(c.p, in);

    c = (struct cursor){in, 7};
    ck_assert_int_eq(cursor_get_u64be(&c, &u64), DLOG_EPROTO);
    ck_assert_int_eq(cursor_get_bytes(&c, 8, &p), DLOG_EPROTO);
    ck_assert_int_eq(cursor_get_bytes(&c, SIZE_MAX, &p), DLOG_EPROTO);
    ck_assert_uint_eq(c.len, 7);
    ck_assert_ptr_eq(c.p, in);
    ck_assert_uint_eq(u32, 0);
    ck_assert_uint_eq(u64, 0);

    /* Exactly enough succeeds, and then nothing more does. */
    ck_assert_int_eq(cursor_get_u32be(&c, &u32), 0);
    ck_assert_int_eq(cursor_get_u32be(&c, &u32), DLOG_EPROTO);
    ck_assert_int_eq(cursor_get_bytes(&c, 3, &p), 0);
    ck_assert_int_eq(cursor_get_u8(&c, &u8), DLOG_EPROTO);
    ck_assert_uint_eq(c.len, 0);
}
END_TEST

/* ------------------------------------------------------------------- iov */

START_TEST(test_iov_total_and_copy_out)
{
    char a[] = "abc", d[] = "defgh", g[] = "ij";
    struct iovec iov[] = {
        {a, 3}, {NULL, 0}, {d, 5}, {g, 2}, {NULL, 0},
    };
    char out[16];

    ck_assert_uint_eq(iov_total(iov, 5), 10);
    ck_assert_uint_eq(iov_total(iov, 0), 0);

    memset(out, 0, sizeof out);
    ck_assert_uint_eq(iov_copy_out(iov, 5, 0, out, sizeof out), 10);
    ck_assert_str_eq(out, "abcdefghij");

    memset(out, 0, sizeof out);
    ck_assert_uint_eq(iov_copy_out(iov, 5, 2, out, 5), 5); /* spans three */
    ck_assert_str_eq(out, "cdefg");

    memset(out, 0, sizeof out);
    ck_assert_uint_eq(iov_copy_out(iov, 5, 3, out, 5), 5); /* starts on a boundary */
    ck_assert_str_eq(out, "defgh");

    memset(out, 0, sizeof out);
    ck_assert_uint_eq(iov_copy_out(iov, 5, 8, out, 100), 2); /* short at the end */
    ck_assert_str_eq(out, "ij");

    ck_assert_uint_eq(iov_copy_out(iov, 5, 10, out, 4), 0); /* at the end */
    ck_assert_uint_eq(iov_copy_out(iov, 5, 1000, out, 4), 0);
    ck_assert_uint_eq(iov_copy_out(iov, 5, 0, NULL, 0), 0);
    ck_assert_uint_eq(iov_copy_out(iov, 0, 0, out, 4), 0);
}
END_TEST

START_TEST(test_iov_advance)
{
    char a[] = "abc", d[] = "defgh", g[] = "ij";
    struct iovec base[] = {{a, 3}, {NULL, 0}, {d, 5}, {g, 2}};
    struct iovec iov[4];
    int i;

#define RESET() memcpy(iov, base, sizeof iov)
    RESET();
    ck_assert_int_eq(iov_advance(iov, 4, 0), 0); /* nothing consumed */
    ck_assert_ptr_eq(iov[0].iov_base, a);
    ck_assert_uint_eq(iov[0].iov_len, 3);

    RESET();
    ck_assert_int_eq(iov_advance(iov, 4, 2), 0); /* inside the first */
    ck_assert_ptr_eq(iov[0].iov_base, a + 2);
    ck_assert_uint_eq(iov[0].iov_len, 1);

    RESET();
    i = iov_advance(iov, 4, 3); /* exactly the first: the empty one goes too */
    ck_assert_int_eq(i, 2);
    ck_assert_ptr_eq(iov[2].iov_base, d);
    ck_assert_uint_eq(iov[2].iov_len, 5);

    RESET();
    i = iov_advance(iov, 4, 6); /* across */
    ck_assert_int_eq(i, 2);
    ck_assert_ptr_eq(iov[2].iov_base, d + 3);
    ck_assert_uint_eq(iov[2].iov_len, 2);
    ck_assert_uint_eq(iov_total(iov + i, 4 - i), 4);
    i += iov_advance(iov + i, 4 - i, 3); /* advancing again from the new start */
    ck_assert_int_eq(i, 3);
    ck_assert_ptr_eq(iov[3].iov_base, g + 1);
    ck_assert_uint_eq(iov[3].iov_len, 1);

    RESET();
    ck_assert_int_eq(iov_advance(iov, 4, 10), 4); /* all of it */
    RESET();
    ck_assert_int_eq(iov_advance(iov, 4, 11), 4); /* past the end: clamps */
    ck_assert_int_eq(iov_advance(iov, 0, 5), 0);
#undef RESET
}
END_TEST

Suite *buf_suite(void)
{
    Suite *s = suite_create("buf");
    TCase *tc = tcase_create("rbuf");

    tcase_add_test(tc, test_rbuf_new_copy_ref);
    tcase_add_test(tc, test_rbuf_refs_two_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("bytes");
    tcase_add_test(tc, test_bytes_build);
    tcase_add_test(tc, test_be_helpers);
    tcase_add_test(tc, test_uvarint_round_trip);
    tcase_add_test(tc, test_uvarint_malformed);
    suite_add_tcase(s, tc);

    tc = tcase_create("cursor");
    tcase_add_test(tc, test_cursor_reads);
    tcase_add_test(tc, test_cursor_bounds);
    suite_add_tcase(s, tc);

    tc = tcase_create("iov");
    tcase_add_test(tc, test_iov_total_and_copy_out);
    tcase_add_test(tc, test_iov_advance);
    suite_add_tcase(s, tc);
    return s;
}
