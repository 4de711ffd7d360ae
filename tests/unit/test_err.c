/* Unit tests: error codes (err.c) and error messages (errmsg.c). */
#include <limits.h>
#include <string.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "suites.h"

#define NCODES (1 - DLOG_ERR_MIN)

START_TEST(test_err_messages_distinct)
{
    for (int a = DLOG_ERR_MIN; a <= 0; a++) {
        const char *ma = dlog_strerror(a);
        ck_assert_ptr_nonnull(ma);
        ck_assert_uint_gt(strlen(ma), 0);
        ck_assert_str_ne(ma, "unknown error");
        for (int b = DLOG_ERR_MIN; b < a; b++)
            ck_assert_str_ne(ma, dlog_strerror(b));
    }
}
END_TEST

START_TEST(test_err_names_distinct)
{
    for (int a = DLOG_ERR_MIN; a <= 0; a++) {
        const char *na = dlog_errname(a);
        ck_assert_ptr_nonnull(na);
        ck_assert_uint_gt(strlen(na), strlen("DLOG_"));
        ck_assert_int_eq(strncmp(na, "DLOG_", 5), 0);
        ck_assert_str_ne(na, "DLOG_E?");
        for (int b = DLOG_ERR_MIN; b < a; b++)
            ck_assert_str_ne(na, dlog_errname(b));
    }
}
END_TEST

/* The enum, names and messages all come from the one table. */
START_TEST(test_err_table_matches_enum)
{
    static const struct {
        int code;
        const char *name;
        const char *msg;
    } table[] = {
#define ROW(name, value, msg) {DLOG_##name, "DLOG_" #name, msg},
        DLOG_ERR_MAP(ROW)
#undef ROW
    };
    ck_assert_int_eq((int)(sizeof table / sizeof table[0]), NCODES);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        ck_assert_int_eq(table[i].code, -(int)i); /* dense, from 0 down */
        ck_assert_str_eq(dlog_errname(table[i].code), table[i].name);
        ck_assert_str_eq(dlog_strerror(table[i].code), table[i].msg);
    }
    ck_assert_str_eq(dlog_errname(DLOG_EFENCED), "DLOG_EFENCED");
    ck_assert_str_eq(dlog_strerror(DLOG_OK), "success");
    ck_assert_str_eq(dlog_errname(DLOG_ERR_MIN), "DLOG_EURI");
}
END_TEST

START_TEST(test_err_unknown_codes)
{
    const int bad[] = {1, 42, DLOG_ERR_MIN - 1, -1000, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_str_eq(dlog_strerror(bad[i]), "unknown error");
        ck_assert_str_eq(dlog_errname(bad[i]), "DLOG_E?");
    }
}
END_TEST

START_TEST(test_errmsg_printf_truncates)
{
    char buf[DLOG_ERRMSG_SIZE + 8];
    char longs[600];

    memset(buf, 'Z', sizeof buf);
    memset(longs, 'x', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    errmsg_printf(buf, "open %s: %d", "seg-1", 7);
    ck_assert_str_eq(buf, "open seg-1: 7");

    memset(buf, 'Z', sizeof buf);
    errmsg_printf(buf, "%s", longs);
    ck_assert_uint_eq(strlen(buf), DLOG_ERRMSG_SIZE - 1);
    for (size_t i = DLOG_ERRMSG_SIZE; i < sizeof buf; i++)
        ck_assert_int_eq(buf[i], 'Z'); /* nothing written past the size */

    errmsg_copy(buf, "plain");
    ck_assert_str_eq(buf, "plain");
    errmsg_copy(buf, NULL);
    ck_assert_str_eq(buf, "");
    errmsg_copy(buf, longs);
    ck_assert_uint_eq(strlen(buf), DLOG_ERRMSG_SIZE - 1);
}
END_TEST

START_TEST(test_errmsg_wrap_and_fail)
{
    char buf[DLOG_ERRMSG_SIZE];
    char longs[400];

    errmsg_printf(buf, "disk full");
    errmsg_wrapf(buf, "append to %s", "s1");
    ck_assert_str_eq(buf, "append to s1: disk full");
    errmsg_wrapf(buf, "writer %d", 3);
    ck_assert_str_eq(buf, "writer 3: append to s1: disk full");

    /* The context may be built from the current message itself. */
    errmsg_printf(buf, "abc");
    errmsg_wrapf(buf, "[%s]", buf);
    ck_assert_str_eq(buf, "[abc]: abc");

    /* A long context still leaves a terminated, bounded message. */
    memset(longs, 'c', sizeof longs - 1);
    longs[sizeof longs - 1] = '\0';
    errmsg_wrapf(buf, "%s", longs);
    ck_assert_uint_eq(strlen(buf), DLOG_ERRMSG_SIZE - 1);
    ck_assert_int_eq(buf[0], 'c');

    ck_assert_int_eq(errmsg_fail(buf, DLOG_EFENCED, "write %s", "s2"), DLOG_EFENCED);
    ck_assert_str_eq(buf, "write s2: writer fenced: a newer writer owns the stream");
    ck_assert_int_eq(errmsg_fail(buf, 99, "x"), 99);
    ck_assert_str_eq(buf, "x: unknown error");
}
END_TEST

Suite *err_suite(void)
{
    Suite *s = suite_create("err");
    TCase *tc = tcase_create("codes");

    tcase_add_test(tc, test_err_messages_distinct);
    tcase_add_test(tc, test_err_names_distinct);
    tcase_add_test(tc, test_err_table_matches_enum);
    tcase_add_test(tc, test_err_unknown_codes);
    suite_add_tcase(s, tc);

    tc = tcase_create("errmsg");
    tcase_add_test(tc, test_errmsg_printf_truncates);
    tcase_add_test(tc, test_errmsg_wrap_and_fail);
    suite_add_tcase(s, tc);
    return s;
}
