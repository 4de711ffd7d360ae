/*
 * Runs Check suites once per backend URI, for the test programs whose
 * tests are parameterised by URI (test-core, test-sm).
 *
 * The URIs come from DLOG_TEST_URIS (space-separated), by default
 * "mem: file:". "file:" alone means a fresh temporary directory, made here
 * and removed after its run; "file:DIR" is used as given; "dlog://..." runs
 * the suites against a server. set_uri(uri) is called before each run.
 * Returns the program's exit status: 0 when every check of every run passed.
 */
#ifndef DLOG_TESTS_URI_RUNNER_H
#define DLOG_TESTS_URI_RUNNER_H

#include <check.h>
#include <stddef.h>

typedef Suite *(*uri_suite_fn)(void);

int uri_runner_main(const char *prog, void (*set_uri)(const char *uri),
                    const uri_suite_fn *suites, size_t nsuites);

/* rm -rf dir (for the programs' own temporary directories). */
void uri_runner_rm_rf(const char *dir);

#endif
