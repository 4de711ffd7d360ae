/*
 * Framing ("Frames" in docs/protocol.md): a 4-byte big-endian length L,
 * then L bytes of msgpack. L is at least 1 and at most the receiver's
 * max_frame; a bad length cannot be skipped, since nothing after it can be
 * trusted to start a frame, so the connection is closed.
 */
#include <stdint.h>
#include <string.h>

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

int wire_hello_answer(const struct wire_hello *h, uint64_t request_id,
                      const char *server_name, size_t max_frame, struct wire_msg *rep)
{
    int ok = h->min_version <= WIRE_VERSION_MAX && h->max_version >= WIRE_VERSION_MIN;

    memset(rep, 0, sizeof *rep);
    rep->version = 1; /* HELLO is always version 1 */
    rep->type = WIRE_HELLO;
    rep->is_reply = 1;
    rep->request_id = request_id;
    if (!ok) {
        rep->status = DLOG_EPROTO;
        rep->err.message = "no protocol version in common";
        rep->err.min_version = WIRE_VERSION_MIN;
        rep->err.max_version = WIRE_VERSION_MAX;
        return 0;
    }
    rep->u.hello_rep.version = WIRE_VERSION_MAX;
    rep->u.hello_rep.server_name = server_name;
    rep->u.hello_rep.max_frame = (uint32_t)max_frame;
    return 1;
}
