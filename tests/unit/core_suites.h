/*
 * The core library's Check suites. test_core_main.c runs each of them once
 * per backend URI; a suite takes its namespace from core_util.h, never from
 * a backend it names itself.
 */
#ifndef DLOG_TESTS_CORE_SUITES_H
#define DLOG_TESTS_CORE_SUITES_H

#include <check.h>

Suite *dlsn_suite(void);
Suite *stream_suite(void);
Suite *write_read_suite(void);
Suite *fencing_suite(void);
Suite *large_suite(void);
Suite *truncate_suite(void);
Suite *corrupt_suite(void);
Suite *multiproc_suite(void);
Suite *async_suite(void);
Suite *transform_suite(void);
Suite *limits_suite(void);

#endif
