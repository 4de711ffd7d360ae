/*
 * Encoding and strict decoding of data-group commands (node/data_cmd.h).
 */
#include "node/data_cmd.h"

#include <raft.h>
#include <string.h>

#include <dlog/err.h>

/* Fixed part of each op after the 2-byte prefix. */
static size_t fixed_size(int op)
{
    switch (op) {
    case DATA_CMD_OPEN:
        return 5 * 8;
    case DATA_CMD_APPEND:
        return 3 * 8 + 4 + 4;
    case DATA_CMD_APPEND_ONCE:
        return 5 * 8 + 4 + 4;
    case DATA_CMD_FENCE:
    case DATA_CMD_SEAL:
        return 3 * 8;
    case DATA_CMD_REMOVE:
        return 2 * 8;
    default:
        return 0;
    }
}

size_t data_cmd_size(const struct data_cmd *c)
{
    size_t size = fixed_size(c->op);

    if (size == 0)
        return 0;
    size += 2;
    if (c->op != DATA_CMD_APPEND && c->op != DATA_CMD_APPEND_ONCE)
        return size;
    if (c->op == DATA_CMD_APPEND_ONCE && (c->writer == 0 || c->append_seq == 0))
        return 0;
    if (c->n > 0 && c->entries == NULL)
        return 0;
    for (uint32_t i = 0; i < c->n; i++) {
        size_t len = c->entries[i].iov_len;
        if (len > UINT32_MAX || (len > 0 && c->entries[i].iov_base == NULL))
            return 0;
        if (len + 4 > SIZE_MAX - size)
            return 0;
        size += 4 + len;
    }
    return size;
}

void data_cmd_write(const struct data_cmd *c, uint8_t *dst)
{
    uint8_t *p = dst;

    *p++ = DATA_CMD_VERSION;
    *p++ = (uint8_t)c->op;
    put_u64be(p, c->stream);
    put_u64be(p + 8, c->seq);
    p += 16;
    if (c->op == DATA_CMD_REMOVE)
        return;
    put_u64be(p, c->epoch);
    p += 8;
    if (c->op == DATA_CMD_OPEN) {
        put_u64be(p, c->start_txid);
        put_u64be(p + 8, c->created_ms);
        return;
    }
    if (c->op != DATA_CMD_APPEND && c->op != DATA_CMD_APPEND_ONCE)
        return;
    put_u32be(p, c->flags);
    put_u32be(p + 4, c->n);
    p += 8;
    if (c->op == DATA_CMD_APPEND_ONCE) {
        put_u64be(p, c->writer);
        put_u64be(p + 8, c->append_seq);
        p += 16;
    }
    for (uint32_t i = 0; i < c->n; i++) {
        size_t len = c->entries[i].iov_len;
        put_u32be(p, (uint32_t)len);
        if (len > 0)
            memcpy(p + 4, c->entries[i].iov_base, len);
        p += 4 + len;
    }
}

int data_cmd_encode(const struct data_cmd *c, struct raft_buffer *out)
{
    size_t size = data_cmd_size(c);

    out->base = NULL;
    out->len = 0;
    if (size == 0)
        return DLOG_EINVAL;
    out->base = raft_malloc(size);
    if (out->base == NULL)
        return DLOG_ENOMEM;
    data_cmd_write(c, out->base);
    out->len = size;
    return 0;
}

int data_cmd_encode_bytes(const struct data_cmd *c, struct bytes *b)
{
    size_t size = data_cmd_size(c);
    int rv;

    if (size == 0)
        return DLOG_EINVAL;
    rv = bytes_reserve(b, size);
    if (rv != 0)
        return rv;
    data_cmd_write(c, b->p + b->len);
    b->len += size;
    return 0;
}

/* Checks the n (length, bytes) pairs of an APPEND fill the cursor exactly. */
static int check_body(struct cursor c, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len;
        const uint8_t *p;
        if (cursor_get_u32be(&c, &len) != 0 || cursor_get_bytes(&c, len, &p) != 0)
            return DLOG_EPROTO;
    }
    return c.len == 0 ? 0 : DLOG_EPROTO;
}

int data_cmd_decode(const void *p, size_t len, struct data_cmd *c)
{
    struct cursor cur = {p, len};
    uint8_t version, op;
    int rv = 0;

    memset(c, 0, sizeof *c);
    if (p == NULL || cursor_get_u8(&cur, &version) != 0 || version != DATA_CMD_VERSION ||
        cursor_get_u8(&cur, &op) != 0 || fixed_size(op) == 0)
        return DLOG_EPROTO;
    c->op = op;
    /* Each get returns 0 or DLOG_EPROTO and then leaves the cursor alone:
     * OR-ing them keeps "some field was short". */
    rv |= cursor_get_u64be(&cur, &c->stream);
    rv |= cursor_get_u64be(&cur, &c->seq);
    if (op != DATA_CMD_REMOVE)
        rv |= cursor_get_u64be(&cur, &c->epoch);
    if (op == DATA_CMD_OPEN) {
        rv |= cursor_get_u64be(&cur, &c->start_txid);
        rv |= cursor_get_u64be(&cur, &c->created_ms);
    } else if (op == DATA_CMD_APPEND || op == DATA_CMD_APPEND_ONCE) {
        rv |= cursor_get_u32be(&cur, &c->flags);
        rv |= cursor_get_u32be(&cur, &c->n);
        if (op == DATA_CMD_APPEND_ONCE) {
            rv |= cursor_get_u64be(&cur, &c->writer);
            rv |= cursor_get_u64be(&cur, &c->append_seq);
            if (rv == 0 && (c->writer == 0 || c->append_seq == 0))
                rv = DLOG_EPROTO;
        }
        if (rv == 0 && check_body(cur, c->n) != 0)
            rv = DLOG_EPROTO;
        if (rv == 0) {
            c->body = cur.p;
            c->body_len = cur.len;
            cur.len = 0;
        }
    }
    if (rv != 0 || cur.len != 0) {
        memset(c, 0, sizeof *c);
        return DLOG_EPROTO;
    }
    return 0;
}

void data_cmd_iter_init(struct data_cmd_iter *it, const struct data_cmd *c)
{
    it->c.p = c->body;
    it->c.len = c->body_len;
    it->left = c->op == DATA_CMD_APPEND || c->op == DATA_CMD_APPEND_ONCE ? c->n : 0;
}

int data_cmd_iter_next(struct data_cmd_iter *it, const uint8_t **p, size_t *len)
{
    uint32_t n;

    /* data_cmd_decode checked the lengths; a failure here means a caller's
     * struct data_cmd did not come from it. */
    if (it->left == 0 || cursor_get_u32be(&it->c, &n) != 0 ||
        cursor_get_bytes(&it->c, n, p) != 0)
        return 0;
    it->left--;
    *len = n;
    return 1;
}

const char *data_cmd_op_name(int op)
{
    switch (op) {
    case DATA_CMD_OPEN:
        return "OPEN";
    case DATA_CMD_APPEND:
        return "APPEND";
    case DATA_CMD_FENCE:
        return "FENCE";
    case DATA_CMD_SEAL:
        return "SEAL";
    case DATA_CMD_REMOVE:
        return "REMOVE";
    case DATA_CMD_APPEND_ONCE:
        return "APPEND_ONCE";
    default:
        return "?";
    }
}
