/*
 * test-base: runs every suite declared in suites.h. Exit status 0 when all
 * checks pass, 1 otherwise. CK_FORK, CK_RUN_SUITE and CK_RUN_CASE work as
 * usual to run tests in-process or to pick one suite or case.
 */
#include <stdlib.h>

#include "suites.h"

int main(void)
{
    Suite *(*const suites[])(void) = {
        err_suite,  buf_suite, clock_suite,  crc32c_suite,
        hist_suite, log_suite, stores_suite,
    };
    SRunner *sr = srunner_create(NULL);
    int failed;

    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
