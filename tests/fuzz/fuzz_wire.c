/*
 * libFuzzer target for the wire protocol's frame and message decoder
 * (src/wire). Build and run it with tests/fuzz/run-fuzz.sh, or by hand:
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Isrc \
 *       tests/fuzz/fuzz_wire.c src/wire/*.c src/base/buf.c src/base/errmsg.c \
 *       src/base/err.c -lmsgpackc -o fuzz-wire
 *   ./fuzz-wire -max_total_time=60 corpus-copy/
 *
 * The seed corpus, tests/fuzz/corpus/, holds one file per sample message of
 * the unit test and a few files of several frames back to back; it is
 * written by `tests/unit/test-wire --corpus tests/fuzz/corpus`.
 *
 * The input is read twice: as the bytes arriving on a connection (frames
 * back to back, each decoded from its own buffer of exactly its size, so
 * AddressSanitizer sees any read past it), and as the msgpack bytes of one
 * frame without its prefix. Besides crashes, leaks and undefined behaviour,
 * it aborts when the decoder and the encoder disagree: every message that
 * decodes must encode, decode again to the same bytes, and encode for
 * writev to the same bytes.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "base/errmsg.h"
#include "wire/wire.h"

#define FUZZ_MAX_FRAME (1u << 20)

static void fail(const char *what, const char *errmsg)
{
    fprintf(stderr, "fuzz_wire: %s: %s\n", what, errmsg);
    abort();
}

/* A decoded message must survive encode -> decode -> encode unchanged. */
static void round_trip(const struct wire_msg *m, const struct wire_limits *lim)
{
    char errmsg[DLOG_ERRMSG_SIZE];
    struct bytes a, b, flat;
    struct wire_iov v;
    struct wire_msg m2;
    int rv;

    bytes_init(&a);
    bytes_init(&b);
    bytes_init(&flat);
    wire_iov_init(&v);
    rv = wire_encode(m, NULL, &a, errmsg);
    if (rv == DLOG_ENOMEM)
        goto out;
    if (rv != 0)
        fail("a decoded message does not encode", errmsg);
    rv = wire_decode(a.p, a.len, lim, &m2, errmsg);
    if (rv == DLOG_ENOMEM)
        goto out;
    if (rv != 0)
        fail("an encoded message does not decode", errmsg);
    rv = wire_encode(&m2, NULL, &b, errmsg);
    wire_msg_free(&m2);
    if (rv == DLOG_ENOMEM)
        goto out;
    if (rv != 0 || a.len != b.len || memcmp(a.p, b.p, a.len) != 0)
        fail("encode(decode(encode(m))) differs from encode(m)", errmsg);
    rv = wire_encode_iov(m, NULL, 64, &v, errmsg);
    if (rv == DLOG_ENOMEM)
        goto out;
    if (rv != 0)
        fail("wire_encode_iov refuses what wire_encode takes", errmsg);
    for (size_t i = 0; i < v.niov; i++)
        if (bytes_append(&flat, v.iov[i].iov_base, v.iov[i].iov_len) != 0)
            goto out;
    if (flat.len != a.len || v.total != a.len || memcmp(flat.p, a.p, a.len) != 0)
        fail("wire_encode_iov differs from wire_encode", "");
out:
    bytes_free(&a);
    bytes_free(&b);
    bytes_free(&flat);
    wire_iov_free(&v);
}

static void check_result(int rv, const struct wire_msg *m, const char *errmsg)
{
    if (rv == DLOG_EPROTO || rv == WIRE_BAD_VERSION || rv == WIRE_UNKNOWN_TYPE ||
        rv == DLOG_ENOMEM) {
        if (errmsg[0] == '\0')
            fail("an error without a message", "");
        if (m->mem_ != NULL)
            fail("memory kept after an error", errmsg);
        return;
    }
    if (rv != 0)
        fail("unexpected result", errmsg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char errmsg[DLOG_ERRMSG_SIZE];
    struct wire_limits lim;
    struct wire_msg m;
    size_t off = 0, need = 0;
    int rv;

    wire_limits_init(&lim);
    lim.max_frame = FUZZ_MAX_FRAME;

    /* 1. A connection's bytes: frames back to back. */
    while (off < size) {
        uint8_t *frame;

        rv = wire_frame_check(data + off, size - off, lim.max_frame, &need, errmsg);
        if (rv <= 0)
            break; /* needs more bytes, or a length that closes the connection */
        frame = malloc(need);
        if (frame == NULL)
            break;
        memcpy(frame, data + off, need);
        errmsg[0] = '\0';
        rv = wire_decode(frame, need, &lim, &m, errmsg);
        check_result(rv, &m, errmsg);
        if (rv == 0) {
            round_trip(&m, &lim);
            wire_msg_free(&m);
        }
        free(frame);
        off += need;
    }

    /* 2. The whole input as the msgpack bytes of one frame. */
    errmsg[0] = '\0';
    rv = wire_decode_body(data, size, &lim, &m, errmsg);
    check_result(rv, &m, errmsg);
    if (rv == 0) {
        round_trip(&m, &lim);
        wire_msg_free(&m);
    }
    return 0;
}
