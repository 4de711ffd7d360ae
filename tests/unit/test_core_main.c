/*
 * test-core: the core library's suites, run once per backend URI.
 *
 * The URIs come from DLOG_TEST_URIS (space-separated), by default
 * "mem: file:". "file:" alone means a fresh temporary directory, made here
 * and removed at the end; "file:DIR" is used as given (each test makes its
 * own namespace directory inside it). Later "dlog://..." URIs run the same
 * suites against a server. Exits non-zero if any check failed in any run.
 */
#define _GNU_SOURCE
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_suites.h"
#include "core_util.h"

static Suite *(*const suites[])(void) = {
    dlsn_suite,     stream_suite,  write_read_suite, fencing_suite, large_suite,
    truncate_suite, corrupt_suite, multiproc_suite,  async_suite,   transform_suite,
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        perror(path);
    return 0;
}

static void rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs every suite against uri; returns the number of failed checks. */
static int run_uri(const char *uri)
{
    printf("==== test-core: backend URI %s\n", uri);
    fflush(stdout);
    core_set_base_uri(uri);
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < sizeof suites / sizeof suites[0]; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    printf("==== test-core: %s: %d checks, %d failed\n", uri, run, failed);
    fflush(stdout);
    return failed;
}

int main(void)
{
    const char *env = getenv("DLOG_TEST_URIS");
    char *list = strdup(env != NULL && env[0] != '\0' ? env : "mem: file:");
    int failed = 0, runs = 0;

    if (list == NULL)
        return 1;
    for (char *save = NULL, *tok = strtok_r(list, " \t\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char uri[CORE_URI_MAX];
        char tmpdir[64] = "";
        if (strcmp(tok, "file:") == 0) {
            const char *t = getenv("TMPDIR");
            snprintf(tmpdir, sizeof tmpdir, "%s/dlog-test-XXXXXX",
                     t != NULL && strlen(t) < 40 ? t : "/tmp");
            if (mkdtemp(tmpdir) == NULL) {
                perror("mkdtemp");
                failed++;
                continue;
            }
            snprintf(uri, sizeof uri, "file:%s", tmpdir);
        } else {
            snprintf(uri, sizeof uri, "%s", tok);
            if (strncmp(uri, "file:", 5) == 0)
                mkdir(uri + 5, 0700); /* may exist */
        }
        failed += run_uri(uri);
        runs++;
        if (tmpdir[0] != '\0')
            rm_rf(tmpdir);
    }
    free(list);
    if (runs == 0) {
        fprintf(stderr, "test-core: DLOG_TEST_URIS names no backend\n");
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
