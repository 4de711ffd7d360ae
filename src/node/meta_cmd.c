/*
 * The binary encoding of metadata-group commands (meta_cmd.h).
 *
 * Format version 1 (integers are unsigned LEB128 varints unless said;
 * "bytes" is a varint length followed by that many bytes):
 *
 *   u8      format version (META_CMD_FORMAT)
 *   u8      type (enum meta_cmd_type)
 *   now_ms
 *   the fields of the type, in this order:
 *     STREAM_CREATE, STREAM_UPDATE  stream (bytes: a meta_stream_encode record)
 *     STREAM_REMOVE                 name (bytes), version
 *     KV_PUT                        key (bytes), value (bytes), version
 *     KV_REMOVE                     key (bytes), version
 *     LEASE_ACQUIRE                 key (bytes), owner (bytes), ttl_ms
 *     LEASE_RELEASE                 key (bytes), owner (bytes)
 *   u32be   CRC-32C of every byte before it
 *
 * A new field or command means a new format version or type value; the
 * decoder refuses what it does not know, so a replica never half-applies a
 * command it does not understand. Stored in the Raft log, so the values of
 * this format never change once released.
 */
#include "node/meta_cmd.h"

#include <string.h>

#include <dlog/err.h>

#include "base/crc32c.h"

#define META_CMD_FORMAT 1
/* Most fields a command type has. */
#define FIELDS_MAX 3

enum field { F_END = 0, F_STREAM, F_KEY, F_VALUE, F_OWNER, F_VERSION, F_TTL };

/* The fields of each type, in encoding order; indexed by enum meta_cmd_type. */
static const enum field layout[][FIELDS_MAX + 1] = {
    [META_CMD_STREAM_CREATE] = {F_STREAM},
    [META_CMD_STREAM_UPDATE] = {F_STREAM},
    [META_CMD_STREAM_REMOVE] = {F_KEY, F_VERSION},
    [META_CMD_KV_PUT] = {F_KEY, F_VALUE, F_VERSION},
    [META_CMD_KV_REMOVE] = {F_KEY, F_VERSION},
    [META_CMD_LEASE_ACQUIRE] = {F_KEY, F_OWNER, F_TTL},
    [META_CMD_LEASE_RELEASE] = {F_KEY, F_OWNER},
};
#define TYPE_MAX META_CMD_LEASE_RELEASE

static const char *const type_names[] = {
    [META_CMD_STREAM_CREATE] = "STREAM_CREATE",
    [META_CMD_STREAM_UPDATE] = "STREAM_UPDATE",
    [META_CMD_STREAM_REMOVE] = "STREAM_REMOVE",
    [META_CMD_KV_PUT] = "KV_PUT",
    [META_CMD_KV_REMOVE] = "KV_REMOVE",
    [META_CMD_LEASE_ACQUIRE] = "LEASE_ACQUIRE",
    [META_CMD_LEASE_RELEASE] = "LEASE_RELEASE",
};

const char *meta_cmd_type_name(int type)
{
    if (type < META_CMD_STREAM_CREATE || type > TYPE_MAX)
        return "?";
    return type_names[type];
}

/* The slice of a string field, or NULL for a number field. */
static struct meta_cmd_slice *slice_of(struct meta_cmd *cmd, enum field f)
{
    switch (f) {
    case F_STREAM:
        return &cmd->stream;
    case F_KEY:
        return &cmd->key;
    case F_VALUE:
        return &cmd->value;
    case F_OWNER:
        return &cmd->owner;
    default:
        return NULL;
    }
}

static uint64_t *number_of(struct meta_cmd *cmd, enum field f)
{
    return f == F_VERSION ? &cmd->version : &cmd->ttl_ms;
}

/* ---------------------------------------------------------------- encode */

static int put_slice(struct bytes *out, const struct meta_cmd_slice *s)
{
    int rv = bytes_put_uvarint(out, s->len);

    if (rv == 0)
        rv = bytes_append(out, s->p, s->len);
    return rv;
}

/* Appends cmd, laid out by its type, to out; restores out->len on failure. */
static int encode(struct bytes *out, struct meta_cmd *cmd)
{
    size_t start = out->len;
    int rv;

    rv = bytes_put_u8(out, META_CMD_FORMAT);
    if (rv == 0)
        rv = bytes_put_u8(out, (uint8_t)cmd->type);
    if (rv == 0)
        rv = bytes_put_uvarint(out, cmd->now_ms);
    for (const enum field *f = layout[cmd->type]; rv == 0 && *f != F_END; f++) {
        const struct meta_cmd_slice *s = slice_of(cmd, *f);

        rv = s != NULL ? put_slice(out, s) : bytes_put_uvarint(out, *number_of(cmd, *f));
    }
    if (rv == 0)
        rv = bytes_put_u32be(out, crc32c(out->p + start, out->len - start));
    if (rv != 0)
        out->len = start;
    return rv;
}

static struct meta_cmd_slice str_slice(const char *s)
{
    return (struct meta_cmd_slice){(const uint8_t *)s, strlen(s)};
}

static int encode_stream(struct bytes *out, enum meta_cmd_type type, uint64_t now_ms,
                         const struct meta_stream *s)
{
    struct meta_cmd cmd = {.type = type, .now_ms = now_ms};
    struct bytes rec;
    int rv;

    if (s == NULL)
        return DLOG_EINVAL;
    bytes_init(&rec);
    rv = meta_stream_encode(s, &rec);
    if (rv == 0) {
        cmd.stream = (struct meta_cmd_slice){rec.p, rec.len};
        rv = encode(out, &cmd);
    }
    bytes_free(&rec);
    return rv;
}

int meta_cmd_stream_create(struct bytes *out, uint64_t now_ms,
                           const struct meta_stream *s)
{
    return encode_stream(out, META_CMD_STREAM_CREATE, now_ms, s);
}

int meta_cmd_stream_update(struct bytes *out, uint64_t now_ms,
                           const struct meta_stream *s)
{
    return encode_stream(out, META_CMD_STREAM_UPDATE, now_ms, s);
}

int meta_cmd_stream_remove(struct bytes *out, uint64_t now_ms, const char *name,
                           uint64_t version)
{
    struct meta_cmd cmd = {.type = META_CMD_STREAM_REMOVE, .now_ms = now_ms};

    if (name == NULL)
        return DLOG_EINVAL;
    cmd.key = str_slice(name);
    cmd.version = version;
    return encode(out, &cmd);
}

int meta_cmd_kv_put(struct bytes *out, uint64_t now_ms, const char *key,
                    const void *value, size_t len, uint64_t version)
{
    struct meta_cmd cmd = {.type = META_CMD_KV_PUT, .now_ms = now_ms};

    if (key == NULL || (value == NULL && len > 0))
        return DLOG_EINVAL;
    cmd.key = str_slice(key);
    cmd.value = (struct meta_cmd_slice){value, len};
    cmd.version = version;
    return encode(out, &cmd);
}

int meta_cmd_kv_remove(struct bytes *out, uint64_t now_ms, const char *key,
                       uint64_t version)
{
    struct meta_cmd cmd = {.type = META_CMD_KV_REMOVE, .now_ms = now_ms};

    if (key == NULL)
        return DLOG_EINVAL;
    cmd.key = str_slice(key);
    cmd.version = version;
    return encode(out, &cmd);
}

int meta_cmd_lease_acquire(struct bytes *out, uint64_t now_ms, const char *key,
                           const char *owner, uint64_t ttl_ms)
{
    struct meta_cmd cmd = {.type = META_CMD_LEASE_ACQUIRE, .now_ms = now_ms};

    if (key == NULL || owner == NULL)
        return DLOG_EINVAL;
    cmd.key = str_slice(key);
    cmd.owner = str_slice(owner);
    cmd.ttl_ms = ttl_ms;
    return encode(out, &cmd);
}

int meta_cmd_lease_release(struct bytes *out, uint64_t now_ms, const char *key,
                           const char *owner)
{
    struct meta_cmd cmd = {.type = META_CMD_LEASE_RELEASE, .now_ms = now_ms};

    if (key == NULL || owner == NULL)
        return DLOG_EINVAL;
    cmd.key = str_slice(key);
    cmd.owner = str_slice(owner);
    return encode(out, &cmd);
}

/* ---------------------------------------------------------------- decode */

static int get_slice(struct cursor *c, struct meta_cmd_slice *s)
{
    uint64_t n;

    if (cursor_get_uvarint(c, &n) != 0 || n > c->len ||
        cursor_get_bytes(c, (size_t)n, &s->p) != 0)
        return DLOG_ECORRUPT;
    s->len = (size_t)n;
    return 0;
}

static int get_fields(struct cursor *c, struct meta_cmd *cmd)
{
    for (const enum field *f = layout[cmd->type]; *f != F_END; f++) {
        struct meta_cmd_slice *s = slice_of(cmd, *f);

        if (s != NULL ? get_slice(c, s) != 0
                      : cursor_get_uvarint(c, number_of(cmd, *f)) != 0)
            return DLOG_ECORRUPT;
    }
    return c->len == 0 ? 0 : DLOG_ECORRUPT; /* no trailing bytes */
}

int meta_cmd_decode(const void *p, size_t len, struct meta_cmd *cmd)
{
    struct cursor c = {p, len};
    uint8_t format, type;
    int rv;

    memset(cmd, 0, sizeof *cmd);
    /* The CRC trailer first: it covers everything else. */
    if (p == NULL || len < 2 + 1 + 4)
        return DLOG_ECORRUPT;
    if (crc32c(p, len - 4) != get_u32be((const uint8_t *)p + len - 4))
        return DLOG_ECORRUPT;
    c.len -= 4;
    (void)cursor_get_u8(&c, &format);
    (void)cursor_get_u8(&c, &type);
    if (format != META_CMD_FORMAT || type < META_CMD_STREAM_CREATE || type > TYPE_MAX)
        return DLOG_EPROTO;
    cmd->type = (enum meta_cmd_type)type;
    rv = cursor_get_uvarint(&c, &cmd->now_ms) != 0 ? DLOG_ECORRUPT : get_fields(&c, cmd);
    if (rv != 0)
        memset(cmd, 0, sizeof *cmd);
    return rv;
}
