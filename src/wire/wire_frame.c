/*
 * Framing ("Frames" in docs/protocol.md): a 4-byte big-endian length L,
 * then L bytes of msgpack. L is at least 1 and at most the receiver's
 * max_frame; a bad length cannot be skipped, since nothing after it can be
 * trusted to start a frame, so the connection is closed.
 */
#include <stdint.h>

#include <dlog/err.h>

#include "wire/wire_int.h"

int wire_frame_check(const uint8_t *buf, size_t avail, size_t max_frame,
                     size_t *frame_len, char *errmsg)
{
    uint32_t len;

    if (max_frame == 0 || max_frame > UINT32_MAX)
        max_frame = max_frame == 0 ? WIRE_MAX_FRAME_DEFAULT : UINT32_MAX;
    if (max_frame > SIZE_MAX - WIRE_FRAME_PREFIX) /* 32-bit: prefix + length must fit */
        max_frame = SIZE_MAX - WIRE_FRAME_PREFIX;
    if (avail < WIRE_FRAME_PREFIX) {
        *frame_len = WIRE_FRAME_PREFIX;
        return 0;
    }
    len = get_u32be(buf);
    if (len == 0)
        return wire_fail(errmsg, DLOG_EPROTO,
                         "frame length 0: a frame holds an envelope");
    if (len > max_frame)
        return wire_fail(errmsg, DLOG_EPROTO,
                         "frame length %lu exceeds the maximum of %zu",
                         (unsigned long)len, max_frame);
    *frame_len = WIRE_FRAME_PREFIX + (size_t)len;
    return avail >= *frame_len ? 1 : 0;
}
