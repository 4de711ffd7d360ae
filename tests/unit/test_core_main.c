/*
 * test-core: the core library's suites, run once per backend URI.
 *
 * The URIs come from DLOG_TEST_URIS (space-separated), by default
 * "mem: file:". "file:" alone means a fresh temporary directory, made here
 * and removed at the end; "file:DIR" is used as given (each test makes its
 * own namespace directory inside it). Later "dlog://..." URIs run the same
 * suites against a server. Exits non-zero if any check failed in any run.
 */
#include <stdio.h>

#include "core_suites.h"
#include "core_util.h"
#include "uri_runner.h"

static const uri_suite_fn suites[] = {
    dlsn_suite,  stream_suite,    write_read_suite, fencing_suite,
    large_suite, truncate_suite,  corrupt_suite,    multiproc_suite,
    async_suite, transform_suite, limits_suite,
};

static void set_uri(const char *uri)
{
    core_set_base_uri(uri);
}

int main(void)
{
    return uri_runner_main("test-core", set_uri, suites,
                           sizeof suites / sizeof suites[0]);
}
