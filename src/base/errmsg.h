/*
 * Error messages in words, kept on long-lived objects (namespace, writer,
 * reader, server connection). A function that fails sets its object's
 * errmsg and returns a dlog_err code; callers higher up may prefix context
 * with errmsg_wrapf, in the manner of canonical raft's ErrMsgWrapf.
 */
#ifndef DLOG_BASE_ERRMSG_H
#define DLOG_BASE_ERRMSG_H

#include <stddef.h>

#define DLOG_ERRMSG_SIZE 256

/* Format a message into buf (DLOG_ERRMSG_SIZE bytes), truncating safely. */
void errmsg_printf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the message already in buf with "<context>: ". */
void errmsg_wrapf(char *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Copy src into buf, truncating safely. src may be NULL (buf becomes ""). */
void errmsg_copy(char *buf, const char *src);

/*
 * Set buf to "<fmt...>: <dlog_strerror(code)>" and return code, so that
 * `return errmsg_fail(x->errmsg, rv, "open %s", path);` reads naturally.
 */
int errmsg_fail(char *buf, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
