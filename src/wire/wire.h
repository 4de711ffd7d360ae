/*
 * The dlog wire protocol: frames and the msgpack encoding of every message
 * (docs/protocol.md is the specification).
 *
 * A frame is a 4-byte big-endian length L, then L bytes holding exactly one
 * msgpack array: [version, type, request_id, body] for a request,
 * [version, type|0x80, request_id, status, body] for a reply.
 *
 * Layering: this module uses only src/base and msgpack-c. It knows the
 * shapes and limits of messages, not what they mean: a well-formed WRITE
 * to a stream that does not exist decodes fine, and the server's core says
 * DLOG_ENOTFOUND.
 *
 * Errors: every function returns 0 (or a positive result documented below)
 * or a negative dlog_err code, and then writes what went wrong into errmsg
 * (DLOG_ERRMSG_SIZE bytes), such as "WRITE request: body: records[3]: key:
 * expected bin or nil, got str". Bad input gives DLOG_EPROTO; decoding
 * never reads outside the given bytes, never aborts, and frees everything
 * it allocated when it fails.
 */
#ifndef DLOG_WIRE_H
#define DLOG_WIRE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/buf.h"
#include "wire/wire_msgs.h"

/* Protocol versions this code speaks ("Versioning"). */
#define WIRE_VERSION_MIN 1
#define WIRE_VERSION_MAX 1

/* Framing ("Frames"). */
#define WIRE_FRAME_PREFIX      4 /* bytes of the big-endian length */
#define WIRE_MAX_FRAME_DEFAULT (70u * 1024 * 1024)
#define WIRE_MIN_FRAME_LIMIT   (64u * 1024) /* the least max_frame a peer may announce */

/* Field limits ("Limits"). */
#define WIRE_MAX_NAME        255         /* stream names: DLOG_STREAM_NAME_MAX */
#define WIRE_MAX_PEER_NAME   128         /* client and server names */
#define WIRE_MAX_MESSAGE     1024        /* error messages */
#define WIRE_MAX_ADDRESS     300         /* "host:port" in redirects */
#define WIRE_MAX_TOKEN       4096        /* auth tokens */
#define WIRE_MAX_KEY         65536       /* record keys and key prefixes */
#define WIRE_MAX_RECORDS     65536       /* records per WRITE or READ reply */
#define WIRE_MAX_LIST        10000       /* names per STREAM_LIST reply */
#define WIRE_MAX_SEGMENTS    10000       /* segments per STREAM_DESCRIBE reply */
#define WIRE_MAX_PROXIES     1024        /* proxies per LIMITS_STATS reply */
#define WIRE_MAX_PROXY_ID    63          /* a proxy's id in LIMITS_STATS */
#define WIRE_MAX_WAIT_MS     600000      /* READ long-poll, 10 minutes */
#define WIRE_MAX_META_KEY    256         /* metadata keys (META_KEY_MAX) */
#define WIRE_MAX_META_VALUE  65536       /* metadata values (META_VALUE_MAX) */
#define WIRE_MAX_META_RECORD (64u << 20) /* an encoded stream record */
#define WIRE_MAX_MEMBERS     1024        /* members per CLUSTER_STATUS reply */
#define WIRE_MAX_DEPTH       8           /* msgpack nesting, the envelope being depth 1 */
#define WIRE_MAX_OBJECTS     (1u << 20)  /* msgpack values per frame */

/* Positive results of wire_decode: the frame is well-formed up to its type
 * and request id (msg->version/type/is_reply/request_id are set), but this
 * code cannot read its body. A server replies DLOG_EPROTO to the request id
 * and keeps the connection. Never returned to users of the public API. */
#define WIRE_BAD_VERSION  1 /* msg->version is not one this code speaks */
#define WIRE_UNKNOWN_TYPE 2 /* msg->type is not a message of msg->version */

/* Limits a decoder enforces and an encoder respects. */
struct wire_limits {
    size_t max_frame;   /* bytes after the length prefix; default WIRE_MAX_FRAME_DEFAULT,
                           at most UINT32_MAX */
    size_t max_objects; /* msgpack values per frame; default WIRE_MAX_OBJECTS */
};

/* Sets the defaults. Functions below take NULL for the defaults too. */
void wire_limits_init(struct wire_limits *lim);

/* ---------------------------------------------------------------- frames */

/*
 * Looks at the bytes received so far on a connection, buf[0..avail).
 * Returns 1 when they start with a whole frame, whose total size
 * (prefix included) is then *frame_len; 0 when more bytes are needed, with
 * *frame_len the total size needed so far (WIRE_FRAME_PREFIX while the
 * prefix is incomplete); DLOG_EPROTO when the prefix announces 0 bytes or
 * more than max_frame (0: the default): the connection cannot be resynced
 * and must be closed.
 */
int wire_frame_check(const uint8_t *buf, size_t avail, size_t max_frame,
                     size_t *frame_len, char *errmsg);

/* ---------------------------------------------------------------- decode */

/*
 * Decodes one frame, buf[0..len), prefix included; len must be exactly
 * the prefix plus the length it announces. On 0, *msg holds the message
 * (see wire_msgs.h for what its pointers point at); release it with
 * wire_msg_free. On WIRE_BAD_VERSION and WIRE_UNKNOWN_TYPE, msg's
 * envelope fields are set and its body is not. On DLOG_EPROTO,
 * msg->request_id is the request id when the envelope could be read that
 * far (a server then replies DLOG_EPROTO to it), and 0 otherwise (a
 * server replies with a connection-level ERROR and closes). Other errors:
 * DLOG_ENOMEM. *msg is overwritten first (free a message before reusing
 * its struct); after any return, wire_msg_free(msg) is safe.
 */
int wire_decode(const uint8_t *buf, size_t len, const struct wire_limits *lim,
                struct wire_msg *msg, char *errmsg);

/* wire_decode of a frame's msgpack bytes alone, without the length prefix. */
int wire_decode_body(const uint8_t *p, size_t len, const struct wire_limits *lim,
                     struct wire_msg *msg, char *errmsg);

/* Frees what wire_decode allocated for msg; leaves the frame buffer alone.
 * Safe on a zeroed or already freed message. */
void wire_msg_free(struct wire_msg *msg);

/*
 * The structural pre-check wire_decode runs before msgpack-c builds its
 * object tree: p[0..len) must hold exactly one msgpack value, nested at most
 * WIRE_MAX_DEPTH deep, made of at most max_objects values, with every
 * length and count within the bytes that remain and no ext types. This
 * bounds the memory msgpack-c allocates (24 bytes per value) by the frame
 * size, whatever counts a frame claims. DLOG_EPROTO otherwise.
 */
int wire_scan(const uint8_t *p, size_t len, size_t max_objects, char *errmsg);

/* ---------------------------------------------------------------- encode */

/*
 * Appends msg as one frame (prefix included) to out. msg is validated with
 * the same rules as wire_decode: a field out of its limits gives
 * DLOG_EINVAL, a frame above lim->max_frame DLOG_ETOOBIG, and then out is
 * left as it was. Byte fields are copied into out. DLOG_ENOMEM on
 * allocation failure.
 */
int wire_encode(const struct wire_msg *msg, const struct wire_limits *lim,
                struct bytes *out, char *errmsg);

/*
 * A frame as a list of pieces to send with writev: copied bytes in head,
 * and byte fields of at least ref_min bytes referenced where they are
 * (payloads are then not copied; they must stay valid until sent).
 */
struct wire_iov {
    struct bytes head; /* every copied byte, in order */
    struct iovec *iov; /* niov pieces; iov_base may point into head.p */
    size_t niov;
    size_t cap_;                 /* private */
    struct wire_piece_ *pieces_; /* private */
    size_t npieces_;
    size_t total; /* bytes of the frame, prefix included */
};

void wire_iov_init(struct wire_iov *v);
void wire_iov_free(struct wire_iov *v);

/*
 * Encodes msg as one frame into v (which is reset first), copying byte
 * fields shorter than ref_min and referencing the others. Errors as
 * wire_encode's. v->iov is valid until the next call on v, and while the
 * message's byte fields are unchanged.
 */
int wire_encode_iov(const struct wire_msg *msg, const struct wire_limits *lim,
                    size_t ref_min, struct wire_iov *v, char *errmsg);

/*
 * The reply a server sends to a HELLO request h: fills *rep (which keeps
 * pointers to server_name) and returns 1 if the client speaks a version
 * this code speaks (a status 0 reply naming the version both use), or 0
 * (a DLOG_EPROTO reply listing the versions spoken: the server then closes
 * the connection once it is sent). Shared by every server (proxy, node).
 */
int wire_hello_answer(const struct wire_hello *h, uint64_t request_id,
                      const char *server_name, size_t max_frame, struct wire_msg *rep);

#endif
