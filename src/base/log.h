/*
 * Logging with levels. The level comes from the environment variable
 * DLOG_LOG (debug|info|warn|error|off), read once on first use; the default
 * is warn. Lines go to stderr as "LEVEL component: message". Thread-safe:
 * one write(2) per line.
 */
#ifndef DLOG_BASE_LOG_H
#define DLOG_BASE_LOG_H

enum log_level { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_OFF };

/* The current level (reads DLOG_LOG on first call). */
enum log_level log_level(void);

/* Override the level (for programs' --log-level flags and tests). */
void log_set_level(enum log_level level);

/* Parse "debug", "info", "warn", "error", "off"; returns -1 if unknown. */
int log_parse_level(const char *s);

/* Redirect output to fd (default 2); for tests. */
void log_set_fd(int fd);

void log_emit(enum log_level level, const char *component, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define DLOG_LOGF(lvl, comp, ...)                                                        \
    do {                                                                                 \
        if ((lvl) >= log_level())                                                        \
            log_emit((lvl), (comp), __VA_ARGS__);                                        \
    } while (0)
#define log_debug(comp, ...) DLOG_LOGF(LOG_DEBUG, comp, __VA_ARGS__)
#define log_info(comp, ...)  DLOG_LOGF(LOG_INFO, comp, __VA_ARGS__)
#define log_warn(comp, ...)  DLOG_LOGF(LOG_WARN, comp, __VA_ARGS__)
#define log_error(comp, ...) DLOG_LOGF(LOG_ERROR, comp, __VA_ARGS__)

#endif
