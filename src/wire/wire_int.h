/*
 * Private to src/wire: what the frame, check, decode and encode files share.
 */
#ifndef DLOG_WIRE_INT_H
#define DLOG_WIRE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "wire/wire.h"

/* Formats into errmsg (DLOG_ERRMSG_SIZE bytes) and returns code. */
int wire_fail(char *errmsg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The limits to use: *lim, or the defaults when lim is NULL. */
struct wire_limits wire_limits_get(const struct wire_limits *lim);

/* 1 if version is one this code speaks. */
static inline int wire_version_ok(uint32_t version)
{
    return version >= WIRE_VERSION_MIN && version <= WIRE_VERSION_MAX;
}

/* 1 if type (without WIRE_REPLY) is a message of version 1. */
int wire_type_known(unsigned type);

/* 1 if status is a dlog_err code of protocol version 1. */
int wire_status_ok(int status);

/* 1 if s[0..len) is "host:port": a non-empty host, a port 1..65535. */
int wire_address_ok(const char *s, size_t len);

/*
 * Checks every rule of docs/protocol.md that a struct wire_msg can break
 * (limits, ranges, enum values, which fields a status needs), the same for
 * the encoder (before packing) and the decoder (after reading the types).
 * DLOG_EINVAL and a message naming the field when one is broken.
 */
int wire_msg_check(const struct wire_msg *m, char *errmsg);

#endif
