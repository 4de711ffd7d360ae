/*
 * Levelled logging (see log.h).
 *
 * Global state, by design: the level and the output fd. Both are plain ints
 * read and written with __atomic builtins, so any thread may log or change
 * them. DLOG_LOG is read once, under pthread_once, on the first call that
 * needs the level; a level set with log_set_level before that wins over the
 * environment.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* Longest line written, newline included. Below PIPE_BUF (4096), so a line
 * written to a pipe is never interleaved with another writer's line. */
#define LOG_LINE_MAX 2048

#define LEVEL_UNSET (-1)

static int g_level = LEVEL_UNSET;
static int g_fd = 2;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};
static const char *const level_tags[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int log_parse_level(const char *s)
{
    if (s == NULL)
        return -1;
    for (int i = LOG_DEBUG; i <= LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0)
            return i;
    }
    return -1;
}

/* Write all of p[0..n) to fd with one write(2) unless interrupted or short. */
static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return; /* nowhere to report a logging failure */
        }
        p += w;
        n -= (size_t)w;
    }
}

static void init_from_env(void)
{
    const char *env = getenv("DLOG_LOG");
    int level = LOG_WARN;

    if (env != NULL && env[0] != '\0') {
        int parsed = log_parse_level(env);
        if (parsed >= 0) {
            level = parsed;
        } else {
            static const char msg[] =
                "WARN log: DLOG_LOG is not one of debug|info|warn|error|off; "
                "using warn\n";
            write_all(__atomic_load_n(&g_fd, __ATOMIC_RELAXED), msg, sizeof msg - 1);
        }
    }
    /* Keep a level set by log_set_level before the first read. */
    int unset = LEVEL_UNSET;
    __atomic_compare_exchange_n(&g_level, &unset, level, 0, __ATOMIC_RELEASE,
                                __ATOMIC_RELAXED);
}

enum log_level log_level(void)
{
    int level = __atomic_load_n(&g_level, __ATOMIC_ACQUIRE);

    if (level == LEVEL_UNSET) {
        pthread_once(&g_once, init_from_env);
        level = __atomic_load_n(&g_level, __ATOMIC_ACQUIRE);
    }
    return (enum log_level)level;
}

void log_set_level(enum log_level level)
{
    if ((int)level < LOG_DEBUG || level > LOG_OFF)
        return; /* not a level: keep the current one */
    __atomic_store_n(&g_level, (int)level, __ATOMIC_RELEASE);
}

void log_set_fd(int fd)
{
    __atomic_store_n(&g_fd, fd, __ATOMIC_RELAXED);
}

void log_emit(enum log_level level, const char *component, const char *fmt, ...)
{
    char line[LOG_LINE_MAX];
    size_t len;
    va_list ap;
    int n;

    if ((int)level < LOG_DEBUG || level >= LOG_OFF || level < log_level())
        return;
    if (component == NULL)
        component = "dlog";

    n = snprintf(line, sizeof line, "%s %s: ", level_tags[level], component);
    if (n < 0)
        return;
    len = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;

    va_start(ap, fmt);
    n = vsnprintf(line + len, sizeof line - len, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof line - len) {
        /* Truncated: mark it, and keep room for the newline. */
        len = sizeof line - 5;
        memcpy(line + len, "...", 3);
        len += 3;
    } else {
        len += (size_t)n;
    }
    if (len > 0 && line[len - 1] == '\n')
        len--; /* the caller's own newline: do not double it */
    line[len++] = '\n';

    write_all(__atomic_load_n(&g_fd, __ATOMIC_RELAXED), line, len);
}
