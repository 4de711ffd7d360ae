/*
 * The Check suites of the base layer's unit test program (test-base). Each
 * tests/unit/test_<module>.c defines one; test_base_main.c runs them all.
 */
#ifndef DLOG_TESTS_UNIT_SUITES_H
#define DLOG_TESTS_UNIT_SUITES_H

#include <check.h>

Suite *err_suite(void);
Suite *buf_suite(void);
Suite *clock_suite(void);
Suite *crc32c_suite(void);
Suite *hist_suite(void);
Suite *log_suite(void);
Suite *stores_suite(void);

#endif
