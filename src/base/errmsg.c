/*
 * Error messages in words on long-lived objects (see errmsg.h). Every
 * function here writes at most DLOG_ERRMSG_SIZE bytes into buf, always
 * NUL-terminates it, and never fails: an over-long message is truncated.
 */
#include "errmsg.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <dlog/err.h>

/* Copy src (NUL-terminated) to dst + *off, truncating at DLOG_ERRMSG_SIZE. */
static void append(char *dst, size_t *off, const char *src)
{
    size_t room = DLOG_ERRMSG_SIZE - 1 - *off;
    size_t n = strlen(src);

    if (n > room)
        n = room;
    memcpy(dst + *off, src, n);
    *off += n;
    dst[*off] = '\0';
}

static void vformat(char *buf, const char *fmt, va_list ap)
{
    int n = vsnprintf(buf, DLOG_ERRMSG_SIZE, fmt, ap);

    if (n < 0) /* an encoding error: leave a defined, empty message */
        buf[0] = '\0';
}

void errmsg_printf(char *buf, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vformat(buf, fmt, ap);
    va_end(ap);
}

void errmsg_wrapf(char *buf, const char *fmt, ...)
{
    char old[DLOG_ERRMSG_SIZE];
    char ctx[DLOG_ERRMSG_SIZE];
    size_t off = 0;
    va_list ap;

    /* fmt's arguments may point into buf itself: format before writing. */
    off = strnlen(buf, sizeof old - 1);
    memcpy(old, buf, off);
    old[off] = '\0';
    off = 0;
    va_start(ap, fmt);
    vformat(ctx, fmt, ap);
    va_end(ap);

    buf[0] = '\0';
    append(buf, &off, ctx);
    append(buf, &off, ": ");
    append(buf, &off, old);
}

void errmsg_copy(char *buf, const char *src)
{
    size_t off = 0;

    buf[0] = '\0';
    if (src != NULL)
        append(buf, &off, src);
}

int errmsg_fail(char *buf, int code, const char *fmt, ...)
{
    char ctx[DLOG_ERRMSG_SIZE];
    size_t off = 0;
    va_list ap;

    va_start(ap, fmt);
    vformat(ctx, fmt, ap);
    va_end(ap);

    buf[0] = '\0';
    append(buf, &off, ctx);
    append(buf, &off, ": ");
    append(buf, &off, dlog_strerror(code));
    return code;
}
