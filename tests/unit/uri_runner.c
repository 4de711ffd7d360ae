#define _GNU_SOURCE
#include "uri_runner.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    if (remove(path) != 0)
        perror(path);
    return 0;
}

void uri_runner_rm_rf(const char *dir)
{
    nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Runs every suite against uri; returns the number of failed checks. */
static int run_uri(const char *prog, const char *uri, const uri_suite_fn *suites,
                   size_t nsuites)
{
    printf("==== %s: backend URI %s\n", prog, uri);
    fflush(stdout);
    SRunner *sr = srunner_create(NULL);
    for (size_t i = 0; i < nsuites; i++)
        srunner_add_suite(sr, suites[i]());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    printf("==== %s: %s: %d checks, %d failed\n", prog, uri, run, failed);
    fflush(stdout);
    return failed;
}

int uri_runner_main(const char *prog, void (*set_uri)(const char *uri),
                    const uri_suite_fn *suites, size_t nsuites)
{
    const char *env = getenv("DLOG_TEST_URIS");
    const char *t = getenv("TMPDIR");
    char *list = strdup(env != NULL && env[0] != '\0' ? env : "mem: file:");
    int failed = 0, runs = 0;

    if (list == NULL)
        return 1;
    for (char *save = NULL, *tok = strtok_r(list, " \t\n", &save); tok != NULL;
         tok = strtok_r(NULL, " \t\n", &save)) {
        char uri[4096];
        char tmpdir[128] = "";
        if (strcmp(tok, "file:") == 0) {
            snprintf(tmpdir, sizeof tmpdir, "%s/dlog-test-XXXXXX",
                     t != NULL && strlen(t) < 100 ? t : "/tmp");
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
        set_uri(uri);
        failed += run_uri(prog, uri, suites, nsuites);
        runs++;
        if (tmpdir[0] != '\0')
            uri_runner_rm_rf(tmpdir);
    }
    free(list);
    if (runs == 0) {
        fprintf(stderr, "%s: DLOG_TEST_URIS names no backend\n", prog);
        return 1;
    }
    return failed == 0 ? 0 : 1;
}
