/* kv_cmd — encoding and decoding of write commands. See kv_cmd.h. */
#include "kv_cmd.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

uint64_t kv_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------------ encode */

static int put_varint(struct dlog_buf *b, uint64_t v)
{
    unsigned char tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    return dlog_buf_append(b, tmp, n);
}

static int put_bytes(struct dlog_buf *b, const struct kv_arg *a)
{
    int rc = put_varint(b, a->len);
    return rc ? rc : dlog_buf_append(b, a->p, a->len);
}

/* How many arguments each op carries (nargs), or -1 for "n, given". */
static int op_nargs(int op)
{
    switch (op) {
    case KV_OP_SET:
    case KV_OP_GETSET:
    case KV_OP_APPEND:
        return 2;
    case KV_OP_INCRBY:
        return 1;
    case KV_OP_DEL:
    case KV_OP_MSET:
        return -1;
    case KV_OP_FLUSHDB:
    case KV_OP_PURGE:
        return 0;
    default:
        return -2;
    }
}

int kv_cmd_encode(const struct kv_cmd *c, struct dlog_buf *out)
{
    int want = op_nargs(c->op);
    if (want == -2 || (want >= 0 && c->nargs != (size_t)want) ||
        (c->op == KV_OP_MSET && c->nargs % 2 != 0) || (want == -1 && c->nargs == 0)) {
        return DLOG_EINVAL;
    }
    unsigned char hdr[3] = {KV_CMD_VERSION, (unsigned char)c->op,
                            (unsigned char)c->flags};
    int rc = dlog_buf_append(out, hdr, sizeof(hdr));
    if (rc == 0) {
        rc = put_varint(out, c->now_ms);
    }
    if (rc == 0 && c->op == KV_OP_SET && (c->flags & KV_F_EXPIRE)) {
        rc = put_varint(out, c->expire_at_ms);
    }
    if (rc == 0 && c->op == KV_OP_INCRBY) {
        /* zigzag: small negative deltas stay small */
        uint64_t z = ((uint64_t)c->delta << 1) ^ (uint64_t)(c->delta >> 63);
        rc = put_varint(out, z);
    }
    if (rc == 0 && want == -1) {
        rc = put_varint(out, c->op == KV_OP_MSET ? c->nargs / 2 : c->nargs);
    }
    for (size_t i = 0; rc == 0 && i < c->nargs; i++) {
        rc = put_bytes(out, &c->args[i]);
    }
    return rc;
}

/* ------------------------------------------------------------------ decode */

struct rd {
    const unsigned char *p, *end;
};

static int get_varint(struct rd *r, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (r->p == r->end) {
            return -1;
        }
        unsigned char b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int get_bytes(struct rd *r, struct kv_arg *a)
{
    uint64_t n;
    if (get_varint(r, &n) != 0 || n > (uint64_t)(r->end - r->p)) {
        return -1;
    }
    a->p = (const char *)r->p;
    a->len = (size_t)n;
    r->p += n;
    return 0;
}

void kv_cmd_free(struct kv_cmd *c)
{
    free(c->args);
    c->args = NULL;
    c->nargs = 0;
}

int kv_cmd_decode(const void *p, size_t n, struct kv_cmd *c)
{
    struct rd r = {p, (const unsigned char *)p + n};
    uint64_t v = 0;

    memset(c, 0, sizeof(*c));
    if (n < 3 || r.p[0] != KV_CMD_VERSION) {
        return DLOG_EPROTO;
    }
    c->op = r.p[1];
    c->flags = r.p[2];
    r.p += 3;
    int want = op_nargs(c->op);
    if (want == -2 || get_varint(&r, &c->now_ms) != 0) {
        goto bad;
    }
    if (c->op == KV_OP_SET && (c->flags & KV_F_EXPIRE) &&
        get_varint(&r, &c->expire_at_ms) != 0) {
        goto bad;
    }
    if (c->op == KV_OP_INCRBY) {
        if (get_varint(&r, &v) != 0) {
            goto bad;
        }
        c->delta = (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
    }
    if (want == -1) {
        /* Each argument takes at least one byte: bound n before allocating. */
        if (get_varint(&r, &v) != 0 || v == 0 || v > (uint64_t)(r.end - r.p)) {
            goto bad;
        }
        c->nargs = (size_t)(c->op == KV_OP_MSET ? v * 2 : v);
    } else {
        c->nargs = (size_t)want;
    }
    if (c->nargs > 0) {
        c->args = calloc(c->nargs, sizeof(*c->args));
        if (c->args == NULL) {
            c->nargs = 0;
            return DLOG_ENOMEM;
        }
    }
    for (size_t i = 0; i < c->nargs; i++) {
        if (get_bytes(&r, &c->args[i]) != 0) {
            goto bad;
        }
    }
    if (r.p != r.end) {
        goto bad;
    }
    return 0;
bad:
    kv_cmd_free(c);
    return DLOG_EPROTO;
}
