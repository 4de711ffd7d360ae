/* Unit tests: levelled logging (log.c), captured through a pipe. */
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/log.h"
#include "suites.h"

static int pipe_fds[2] = {-1, -1};

static void setup_log(void)
{
    ck_assert_int_eq(pipe(pipe_fds), 0);
    /* Reads return what is there and never block the test. */
    ck_assert_int_eq(fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK), 0);
    log_set_fd(pipe_fds[1]);
}

static void teardown_log(void)
{
    log_set_fd(2);
    log_set_level(LOG_WARN);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    pipe_fds[0] = pipe_fds[1] = -1;
}

/* Everything written to the pipe so far, NUL-terminated; returns its length. */
static size_t drain(char *buf, size_t size)
{
    size_t len = 0;
    ssize_t n;

    while (len < size - 1 && (n = read(pipe_fds[0], buf + len, size - 1 - len)) > 0)
        len += (size_t)n;
    buf[len] = '\0';
    return len;
}

START_TEST(test_log_parse_level)
{
    ck_assert_int_eq(log_parse_level("debug"), LOG_DEBUG);
    ck_assert_int_eq(log_parse_level("info"), LOG_INFO);
    ck_assert_int_eq(log_parse_level("warn"), LOG_WARN);
    ck_assert_int_eq(log_parse_level("error"), LOG_ERROR);
    ck_assert_int_eq(log_parse_level("off"), LOG_OFF);
    ck_assert_int_eq(log_parse_level("DEBUG"), LOG_DEBUG); /* any case */
    ck_assert_int_eq(log_parse_level("Error"), LOG_ERROR);
    ck_assert_int_eq(log_parse_level(""), -1);
    ck_assert_int_eq(log_parse_level("verbose"), -1);
    ck_assert_int_eq(log_parse_level("warn "), -1);
    ck_assert_int_eq(log_parse_level("deb"), -1);
    ck_assert_int_eq(log_parse_level(NULL), -1);
}
END_TEST

START_TEST(test_log_set_level)
{
    for (int l = LOG_DEBUG; l <= LOG_OFF; l++) {
        log_set_level((enum log_level)l);
        ck_assert_int_eq(log_level(), l);
    }
    log_set_level(LOG_INFO);
    log_set_level((enum log_level)42); /* not a level: ignored */
    ck_assert_int_eq(log_level(), LOG_INFO);
    log_set_level((enum log_level) - 3);
    ck_assert_int_eq(log_level(), LOG_INFO);
}
END_TEST

START_TEST(test_log_format)
{
    char out[512];

    log_set_level(LOG_DEBUG);
    log_emit(LOG_WARN, "seg", "x=%d %s", 42, "y");
    ck_assert_uint_eq(drain(out, sizeof out), strlen("WARN seg: x=42 y\n"));
    ck_assert_str_eq(out, "WARN seg: x=42 y\n");

    log_debug("meta", "d");
    log_info("proxy", "i");
    log_warn("core", "w");
    log_error("wire", "e");
    drain(out, sizeof out);
    ck_assert_str_eq(out, "DEBUG meta: d\nINFO proxy: i\nWARN core: w\nERROR wire: e\n");

    /* The caller's newline is not doubled; no component gives "dlog". */
    log_emit(LOG_ERROR, NULL, "bye\n");
    drain(out, sizeof out);
    ck_assert_str_eq(out, "ERROR dlog: bye\n");
}
END_TEST

START_TEST(test_log_below_level_not_emitted)
{
    char out[512];

    log_set_level(LOG_WARN);
    log_debug("c", "debug %d", 1);
    log_info("c", "info %d", 2);
    log_emit(LOG_INFO, "c", "direct %d", 3); /* log_emit filters too */
    ck_assert_uint_eq(drain(out, sizeof out), 0);
    log_warn("c", "warn %d", 4);
    log_error("c", "error %d", 5);
    drain(out, sizeof out);
    ck_assert_str_eq(out, "WARN c: warn 4\nERROR c: error 5\n");

    log_set_level(LOG_ERROR);
    log_warn("c", "hidden");
    log_error("c", "shown");
    drain(out, sizeof out);
    ck_assert_str_eq(out, "ERROR c: shown\n");

    log_set_level(LOG_OFF);
    log_error("c", "hidden");
    log_emit(LOG_ERROR, "c", "hidden");
    log_emit(LOG_OFF, "c", "not a message level");
    ck_assert_uint_eq(drain(out, sizeof out), 0);

    /* Arguments of a filtered macro call are not evaluated. */
    int calls = 0;
    log_debug("c", "%d", ++calls);
    ck_assert_int_eq(calls, 0);
}
END_TEST

START_TEST(test_log_long_line)
{
    static char big[5000];
    static char out[8192];
    size_t len;

    memset(big, 'x', sizeof big - 1);
    log_set_level(LOG_INFO);
    log_info("long", "%s", big);
    len = drain(out, sizeof out);
    ck_assert_uint_gt(len, 1000);
    ck_assert_uint_le(len, 4096); /* at most PIPE_BUF: an atomic pipe write */
    ck_assert_int_eq(strncmp(out, "INFO long: xxx", 14), 0);
    ck_assert_int_eq(out[len - 1], '\n');
    ck_assert_ptr_eq(strchr(out, '\n'), out + len - 1); /* one line */
    ck_assert_int_eq(strncmp(out + len - 4, "...", 3), 0);
}
END_TEST

#define LOG_THREADS 4
#define LOG_LINES   200

static void *log_many(void *arg)
{
    long id = (long)arg;

    for (int i = 0; i < LOG_LINES; i++)
        log_warn("thr", "thread %ld line %03d end", id, i);
    return NULL;
}

/* Concurrent lines never interleave: each is one write(2). */
START_TEST(test_log_threads)
{
    static char out[64 * 1024];
    pthread_t t[LOG_THREADS];
    int seen[LOG_THREADS] = {0};
    size_t len;
    char *line, *save = NULL;

    log_set_level(LOG_INFO);
    for (long i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, log_many, (void *)i), 0);
    for (int i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(pthread_join(t[i], NULL), 0);
    len = drain(out, sizeof out);
    ck_assert_uint_gt(len, 0);
    ck_assert_int_eq(out[len - 1], '\n');

    for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        long id;
        int n, end = 0;
        ck_assert_int_eq(
            sscanf(line, "WARN thr: thread %ld line %d end%n", &id, &n, &end), 2);
        ck_assert_int_eq(end, (int)strlen(line));
        ck_assert(id >= 0 && id < LOG_THREADS);
        ck_assert_int_eq(n, seen[id]); /* each thread's lines in order */
        seen[id]++;
    }
    for (int i = 0; i < LOG_THREADS; i++)
        ck_assert_int_eq(seen[i], LOG_LINES);
}
END_TEST

/*
 * In a fresh child process: set DLOG_LOG to env (unless NULL), optionally
 * call log_set_level(preset) first, and exit with log_level().
 */
static int level_in_child(const char *env, int preset)
{
    int status;
    pid_t pid = fork();

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        if (env != NULL)
            setenv("DLOG_LOG", env, 1);
        else
            unsetenv("DLOG_LOG");
        if (preset >= 0)
            log_set_level((enum log_level)preset);
        _exit((int)log_level());
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* DLOG_LOG is read once, on first use. Needs a process that has not logged
 * yet: skipped in-process under CK_FORK=no. */
START_TEST(test_log_env)
{
    char out[512];
    const char *fork_env = getenv("CK_FORK");

    if (fork_env != NULL && strcmp(fork_env, "no") == 0)
        return;
    /* This test's process has not used the logger: its children start fresh. */
    ck_assert_int_eq(level_in_child(NULL, -1), LOG_WARN); /* the default */
    ck_assert_int_eq(level_in_child("debug", -1), LOG_DEBUG);
    ck_assert_int_eq(level_in_child("OFF", -1), LOG_OFF);
    ck_assert_int_eq(level_in_child("error", LOG_INFO), LOG_INFO); /* set wins */
    ck_assert_uint_eq(drain(out, sizeof out), 0);
    ck_assert_int_eq(level_in_child("loud", -1), LOG_WARN);
    drain(out, sizeof out);
    ck_assert_ptr_nonnull(strstr(out, "DLOG_LOG")); /* and says why */

    setenv("DLOG_LOG", "info", 1);
    ck_assert_int_eq(log_level(), LOG_INFO);
    setenv("DLOG_LOG", "error", 1);
    ck_assert_int_eq(log_level(), LOG_INFO); /* read once */
    unsetenv("DLOG_LOG");
}
END_TEST

Suite *log_suite(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");

    tcase_add_checked_fixture(tc, setup_log, teardown_log);
    tcase_add_test(tc, test_log_parse_level);
    tcase_add_test(tc, test_log_set_level);
    tcase_add_test(tc, test_log_format);
    tcase_add_test(tc, test_log_below_level_not_emitted);
    tcase_add_test(tc, test_log_long_line);
    tcase_add_test(tc, test_log_threads);
    tcase_add_test(tc, test_log_env);
    suite_add_tcase(s, tc);
    return s;
}
