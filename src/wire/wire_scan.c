/*
 * The structural pre-check of a frame's msgpack bytes (see wire_scan in
 * wire.h).
 *
 * Why: msgpack-c allocates an array's or map's element slots (24 bytes
 * each) as soon as it reads the header, trusting the count it announces.
 * A 6-byte frame "dd ff ff ff ff ..." would make it ask for 96 GiB. This
 * walk reads every header without allocating, and refuses a count larger
 * than the bytes left (every value takes at least one byte), nesting deeper
 * than WIRE_MAX_DEPTH, more than max_objects values, ext types, the unused
 * byte 0xc1, a value cut short, and bytes after the value. What passes
 * costs msgpack-c at most 24 bytes per value and max_objects values.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "wire/wire.h"

/* Writes the message into errmsg and returns DLOG_EPROTO. */
static int fail(char *errmsg, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char *errmsg, const char *fmt, ...)
{
    char buf[DLOG_ERRMSG_SIZE];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    errmsg_copy(errmsg, buf);
    return DLOG_EPROTO;
}

/* Reads an n-byte big-endian unsigned integer at p (n is 1, 2 or 4). */
static uint32_t be(const uint8_t *p, unsigned n)
{
    uint32_t v = 0;

    for (unsigned i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int wire_scan(const uint8_t *p, size_t len, size_t max_objects, char *errmsg)
{
    /* left[d]: values still expected in the container open at depth d;
     * left[0] counts the single top-level value. */
    uint64_t left[WIRE_MAX_DEPTH + 1];
    unsigned depth = 0;
    size_t pos = 0;
    size_t objects = 0;

    left[0] = 1;
    for (;;) {
        uint8_t b;
        size_t skip = 0;   /* bytes of payload after the header */
        unsigned lenb = 0; /* bytes of a str/bin length field */
        uint64_t count = 0;
        int container = 0;
        size_t at = pos;

        while (depth > 0 && left[depth] == 0)
            depth--;
        if (left[depth] == 0)
            break; /* the top-level value is complete */
        left[depth]--;
        if (pos >= len)
            return fail(errmsg, "msgpack value truncated at byte %zu", pos);
        if (++objects > max_objects)
            return fail(errmsg, "more than %zu msgpack values in a frame", max_objects);
        b = p[pos++];
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool: the header is the value */
        } else if (b >= 0x80 && b <= 0x8f) {
            count = 2u * (b & 0x0fu);
            container = 1;
        } else if (b >= 0x90 && b <= 0x9f) {
            count = b & 0x0fu;
            container = 1;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1fu;
        } else {
            switch (b) {
            case 0xc4: /* bin 8, 16, 32 */
            case 0xd9: /* str 8, 16, 32 */
                lenb = 1;
                break;
            case 0xc5:
            case 0xda:
                lenb = 2;
                break;
            case 0xc6:
            case 0xdb:
                lenb = 4;
                break;
            case 0xcc: /* uint 8 */
            case 0xd0: /* int 8 */
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xca: /* float 32 */
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcb: /* float 64 */
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xdc: /* array 16, 32 */
            case 0xde: /* map 16, 32 */
                lenb = 2;
                container = 1;
                break;
            case 0xdd:
            case 0xdf:
                lenb = 4;
                container = 1;
                break;
            case 0xc1:
                return fail(errmsg, "invalid msgpack byte 0xc1 at byte %zu", at);
            default: /* 0xc7..0xc9, 0xd4..0xd8: ext */
                return fail(errmsg,
                            "msgpack ext type (0x%02x) at byte %zu is not allowed", b,
                            at);
            }
        }
        if (lenb > 0) {
            if (len - pos < lenb)
                return fail(errmsg, "msgpack header truncated at byte %zu", at);
            count = be(p + pos, lenb);
            pos += lenb;
            if (container) {
                if (b == 0xde || b == 0xdf)
                    count *= 2; /* a map holds a key and a value per entry */
            } else {
                skip = (size_t)count;
            }
        }
        if (container) {
            if (count > len - pos)
                return fail(errmsg,
                            "msgpack %s at byte %zu announces %llu values but "
                            "only %zu bytes follow",
                            (b >= 0x90 && b <= 0x9f) || b == 0xdc || b == 0xdd ? "array"
                                                                               : "map",
                            at, (unsigned long long)count, len - pos);
            if (count > 0) {
                if (depth + 1 > WIRE_MAX_DEPTH)
                    return fail(errmsg, "msgpack nested deeper than %d at byte %zu",
                                WIRE_MAX_DEPTH, at);
                left[++depth] = count;
            }
        } else if (skip > 0) {
            if (skip > len - pos)
                return fail(errmsg, "msgpack value at byte %zu needs %zu bytes, %zu left",
                            at, skip, len - pos);
            pos += skip;
        }
    }
    if (pos != len)
        return fail(errmsg, "%zu bytes of trailing garbage after the msgpack value",
                    len - pos);
    return 0;
}
