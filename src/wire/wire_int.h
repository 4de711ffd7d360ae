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

/* A NUL-terminated string of min..max bytes (wire_check.c, also used by
 * wire_node.c): 0, or DLOG_EINVAL with the field named in errmsg. */
int wire_check_text(char *errmsg, const char *field, const char *s, size_t min,
                    size_t max);

struct msgpack_packer;

/* Packing helpers (wire_encode.c), shared with wire_node.c: a str; a bin,
 * sent as nil when empty and nil_ok ("absent"); a bool. */
void wire_pack_str(struct msgpack_packer *pk, const char *s);
void wire_pack_bin(struct msgpack_packer *pk, const void *p, size_t len, int nil_ok);
void wire_pack_bool(struct msgpack_packer *pk, int v);

/*
 * Decoding (wire_decode.c), shared with wire_node.c: the state of one
 * decode, and its field readers. Each returns 0 or DLOG_EPROTO /
 * DLOG_ENOMEM with a message naming the field in d->errmsg. Strings are
 * copied into the message's memory; bins point into the frame.
 */
struct msgpack_object;
struct msgpack_zone;
struct wire_dec {
    struct msgpack_zone *mem; /* the message's memory, made on first use */
    char *errmsg;
    int typed; /* the envelope's type has been read */
};
int wire_dec_array(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                   uint32_t n, const struct msgpack_object **items);
int wire_dec_list(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                  uint32_t max, const struct msgpack_object **items, size_t *n);
int wire_dec_u64(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                 uint64_t *v);
int wire_dec_u32(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                 uint32_t *v);
int wire_dec_bool(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                  int *v);
int wire_dec_str(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                 size_t max, const char **out);
int wire_dec_bin(struct wire_dec *d, const struct msgpack_object *o, const char *field,
                 size_t max, const void **p, size_t *len);
/* n bytes of the message's memory; NULL (and DLOG_ENOMEM in errmsg). */
void *wire_dec_alloc(struct wire_dec *d, size_t n);
/* Prefixes the message with field and passes rv on. */
int wire_dec_wrap(struct wire_dec *d, int rv, const char *field);

/*
 * The metadata group's node calls (wire_node.c), types 0x40..0x5f: their
 * bodies in the three directions, called by the general code for those
 * types only. The packers take a msgpack_packer.
 */
struct msgpack_packer;
void wire_node_pack_request(struct msgpack_packer *pk, const struct wire_msg *m);
void wire_node_pack_reply(struct msgpack_packer *pk, const struct wire_msg *m);
int wire_node_decode_request(struct wire_dec *d, struct wire_msg *m,
                             const struct msgpack_object *body);
int wire_node_decode_reply(struct wire_dec *d, struct wire_msg *m,
                           const struct msgpack_object *body);
int wire_node_check_request(const struct wire_msg *m, char *errmsg);
int wire_node_check_reply(const struct wire_msg *m, char *errmsg);

/* The CLUSTER_GROUPS reply (wire_groups.c), called by wire_node.c. */
void wire_groups_pack_reply(struct msgpack_packer *pk, const struct wire_msg *m);
int wire_groups_decode_reply(struct wire_dec *d, struct wire_msg *m,
                             const struct msgpack_object *body);
int wire_groups_check_reply(const struct wire_msg *m, char *errmsg);

/* The data groups' node calls (wire_data.c), types 0x60..0x7f: as above. */
void wire_data_pack_request(struct msgpack_packer *pk, const struct wire_msg *m);
void wire_data_pack_reply(struct msgpack_packer *pk, const struct wire_msg *m);
int wire_data_decode_request(struct wire_dec *d, struct wire_msg *m,
                             const struct msgpack_object *body);
int wire_data_decode_reply(struct wire_dec *d, struct wire_msg *m,
                           const struct msgpack_object *body);
int wire_data_check_request(const struct wire_msg *m, char *errmsg);
int wire_data_check_reply(const struct wire_msg *m, char *errmsg);

#endif
