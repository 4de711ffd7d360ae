/*
 * kv_commands — what each Redis command does in dlog-kv. See kv_commands.h.
 *
 * Error strings are Redis's own (server.c, t_string.c, object.c), so that
 * clients and scripts that test for them keep working.
 */
#include "kv_commands.h"

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kv_cmd.h"
#include "kv_glob.h"

#define ENOMEM_IF(x) ((x) != 0 ? DLOG_ENOMEM : 0)

int kv_argis(const struct resp_cmd *c, int i, const char *s)
{
    return c->argvlen[i] == strlen(s) && strcasecmp(c->argv[i], s) == 0;
}

static struct kv_arg arg(const struct resp_cmd *c, int i)
{
    struct kv_arg a = {c->argv[i], c->argvlen[i]};
    return a;
}

static int err_syntax(struct dlog_buf *out)
{
    return ENOMEM_IF(resp_add_error(out, "ERR syntax error"));
}

static int err_not_int(struct dlog_buf *out)
{
    return ENOMEM_IF(resp_add_error(out, "ERR value is not an integer or out of range"));
}

static int err_internal(struct dlog_buf *out, int rc)
{
    return ENOMEM_IF(resp_add_errorf(out, "ERR dlog-kv: %s", dlog_strerror(rc)));
}

/* dlog-kv keys are 1..KV_MAX_KEY bytes (LMDB's key limit). */
static int bad_key(const struct resp_cmd *c, int i, struct dlog_buf *out, int *rc)
{
    if (c->argvlen[i] >= 1 && c->argvlen[i] <= KV_MAX_KEY) {
        return 0;
    }
    *rc = ENOMEM_IF(
        resp_add_errorf(out, "ERR dlog-kv keys must be 1 to %d bytes long", KV_MAX_KEY));
    return 1;
}

static int encode(const struct kv_ctx *ctx, struct kv_cmd *kc, struct dlog_buf *enc)
{
    kc->now_ms = ctx->now_ms;
    return kv_cmd_encode(kc, enc) == 0 ? 0 : DLOG_ENOMEM;
}

/* ------------------------------------------------------------------ writes */

/* SET key value [NX|XX] [EX seconds|PX milliseconds] */
static int cmd_set(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                   struct dlog_buf *enc)
{
    struct kv_arg args[2] = {arg(c, 1), arg(c, 2)};
    struct kv_cmd kc = {.op = KV_OP_SET, .nargs = 2, .args = args};
    int rc = 0, have_ex = 0;

    if (bad_key(c, 1, out, &rc)) {
        return rc;
    }
    for (int i = 3; i < c->argc; i++) {
        if (kv_argis(c, i, "nx") && !(kc.flags & KV_F_XX)) {
            kc.flags |= KV_F_NX;
        } else if (kv_argis(c, i, "xx") && !(kc.flags & KV_F_NX)) {
            kc.flags |= KV_F_XX;
        } else if ((kv_argis(c, i, "ex") || kv_argis(c, i, "px")) && !have_ex &&
                   i + 1 < c->argc) {
            long long v;
            int ms = kv_argis(c, i, "px");
            have_ex = 1;
            if (!resp_parse_ll(c->argv[i + 1], c->argvlen[i + 1], &v)) {
                return err_not_int(out);
            }
            /* The absolute expiry is fixed here, by the proposer; apply
             * compares it with the proposer's clock carried in the command. */
            uint64_t now = ctx->now_ms;
            if (v <= 0 || (!ms && (unsigned long long)v > (UINT64_MAX - now) / 1000) ||
                (ms && (unsigned long long)v > UINT64_MAX - now)) {
                return ENOMEM_IF(
                    resp_add_error(out, "ERR invalid expire time in 'set' command"));
            }
            kc.flags |= KV_F_EXPIRE;
            kc.expire_at_ms = now + (uint64_t)v * (ms ? 1 : 1000);
            i++;
        } else {
            return err_syntax(out);
        }
    }
    return encode(ctx, &kc, enc);
}

static int cmd_getset(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    struct kv_arg args[2] = {arg(c, 1), arg(c, 2)};
    struct kv_cmd kc = {.op = KV_OP_GETSET, .nargs = 2, .args = args};
    int rc = 0;
    if (bad_key(c, 1, out, &rc)) {
        return rc;
    }
    return encode(ctx, &kc, enc);
}

static int cmd_append(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    struct kv_arg args[2] = {arg(c, 1), arg(c, 2)};
    struct kv_cmd kc = {.op = KV_OP_APPEND, .nargs = 2, .args = args};
    int rc = 0;
    if (bad_key(c, 1, out, &rc)) {
        return rc;
    }
    return encode(ctx, &kc, enc);
}

/* INCR, DECR, INCRBY, DECRBY: one encoded op, INCRBY delta. */
static int incr_common(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                       struct dlog_buf *enc, int sign, int has_arg)
{
    struct kv_arg key = arg(c, 1);
    struct kv_cmd kc = {.op = KV_OP_INCRBY, .nargs = 1, .args = &key, .delta = sign};
    int rc = 0;
    if (bad_key(c, 1, out, &rc)) {
        return rc;
    }
    if (has_arg) {
        long long v;
        if (!resp_parse_ll(c->argv[2], c->argvlen[2], &v)) {
            return err_not_int(out);
        }
        if (sign < 0 && v == LLONG_MIN) {
            return ENOMEM_IF(resp_add_error(out, "ERR decrement would overflow"));
        }
        kc.delta = sign * v;
    }
    return encode(ctx, &kc, enc);
}

static int cmd_incr(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    return incr_common(ctx, c, out, enc, 1, 0);
}
static int cmd_decr(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    return incr_common(ctx, c, out, enc, -1, 0);
}
static int cmd_incrby(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    return incr_common(ctx, c, out, enc, 1, 1);
}
static int cmd_decrby(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    return incr_common(ctx, c, out, enc, -1, 1);
}

/* DEL and MSET: arguments 1..argc-1 as they are. */
static int multi_common(struct kv_ctx *ctx, const struct resp_cmd *c,
                        struct dlog_buf *out, struct dlog_buf *enc, int op)
{
    size_t n = (size_t)c->argc - 1;
    int rc = 0;
    for (int i = 1; i < c->argc; i += op == KV_OP_MSET ? 2 : 1) {
        if (bad_key(c, i, out, &rc)) {
            return rc;
        }
    }
    struct kv_arg *args = malloc(n * sizeof(*args));
    if (args == NULL) {
        return DLOG_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        args[i] = arg(c, (int)i + 1);
    }
    struct kv_cmd kc = {.op = op, .nargs = n, .args = args};
    rc = encode(ctx, &kc, enc);
    free(args);
    return rc;
}

static int cmd_del(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                   struct dlog_buf *enc)
{
    return multi_common(ctx, c, out, enc, KV_OP_DEL);
}

static int cmd_mset(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    if (c->argc % 2 == 0) {
        return ENOMEM_IF(
            resp_add_error(out, "ERR wrong number of arguments for 'mset' command"));
    }
    return multi_common(ctx, c, out, enc, KV_OP_MSET);
}

static int cmd_flushdb(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                       struct dlog_buf *enc)
{
    if (c->argc > 2 ||
        (c->argc == 2 && !kv_argis(c, 1, "async") && !kv_argis(c, 1, "sync"))) {
        return err_syntax(out);
    }
    struct kv_cmd kc = {.op = KV_OP_FLUSHDB};
    return encode(ctx, &kc, enc);
}

/* ------------------------------------------------------------------ reads */

static int cmd_get(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                   struct dlog_buf *enc)
{
    const void *v;
    size_t n;
    int rc = kv_read_get(ctx->state, ctx->now_ms, c->argv[1], c->argvlen[1], &v, &n);
    if (rc == DLOG_ENOTFOUND) {
        return ENOMEM_IF(resp_add_nil(out));
    }
    return rc ? err_internal(out, rc) : ENOMEM_IF(resp_add_bulk(out, v, n));
}

static int cmd_mget(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    if (resp_add_array(out, c->argc - 1) != 0) {
        return DLOG_ENOMEM;
    }
    for (int i = 1; i < c->argc; i++) {
        const void *v;
        size_t n;
        int rc = kv_read_get(ctx->state, ctx->now_ms, c->argv[i], c->argvlen[i], &v, &n);
        if (rc == 0) {
            rc = resp_add_bulk(out, v, n);
        } else {
            /* Redis answers nil for anything it cannot return as a string. */
            rc = resp_add_nil(out);
        }
        if (rc != 0) {
            return DLOG_ENOMEM;
        }
    }
    return 0;
}

static int cmd_exists(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    long long n = 0;
    for (int i = 1; i < c->argc; i++) {
        const void *v;
        size_t len;
        int rc =
            kv_read_get(ctx->state, ctx->now_ms, c->argv[i], c->argvlen[i], &v, &len);
        if (rc == 0) {
            n++;
        } else if (rc != DLOG_ENOTFOUND) {
            return err_internal(out, rc);
        }
    }
    return ENOMEM_IF(resp_add_int(out, n));
}

static int cmd_strlen(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    const void *v;
    size_t n = 0;
    int rc = kv_read_get(ctx->state, ctx->now_ms, c->argv[1], c->argvlen[1], &v, &n);
    if (rc != 0 && rc != DLOG_ENOTFOUND) {
        return err_internal(out, rc);
    }
    return ENOMEM_IF(resp_add_int(out, rc == 0 ? (long long)n : 0));
}

static int cmd_dbsize(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    uint64_t n = 0;
    int rc = kv_read_dbsize(ctx->state, &n);
    return rc ? err_internal(out, rc) : ENOMEM_IF(resp_add_int(out, (long long)n));
}

/* KEYS and SCAN collect matching keys into a side buffer, then reply. */
struct collect {
    const char *pat; /* NULL: every key */
    size_t patlen;
    struct dlog_buf elems;
    long long n;
    /* SCAN only */
    long long count; /* keys to examine in this call */
    long long examined;
    uint64_t skip;    /* fallback for a forgotten cursor: keys to pass */
    const char *from; /* the cursor's last key: skip it if met first */
    size_t fromlen;
    int more; /* stopped with keys left */
    char last[KV_MAX_KEY];
    size_t lastlen;
};

static int collect_key(struct collect *col, const void *key, size_t klen)
{
    if (col->pat != NULL && !kv_glob_match(col->pat, col->patlen, key, klen)) {
        return 0;
    }
    col->n++;
    return resp_add_bulk(&col->elems, key, klen) ? DLOG_ENOMEM : 0;
}

static int keys_visit(void *arg, const void *key, size_t klen)
{
    return collect_key(arg, key, klen);
}

static int cmd_keys(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    struct collect col = {.pat = c->argv[1], .patlen = c->argvlen[1]};
    if (col.patlen == 1 && col.pat[0] == '*') {
        col.pat = NULL;
    }
    int rc = kv_read_keys(ctx->state, ctx->now_ms, NULL, 0, keys_visit, &col);
    if (rc == 0) {
        rc = resp_add_array(out, col.n);
        if (rc == 0 && col.elems.len > 0) {
            rc = dlog_buf_append(out, col.elems.p, col.elems.len);
        }
        rc = ENOMEM_IF(rc);
    } else if (rc != DLOG_ENOMEM) {
        out->len = 0;
        rc = err_internal(out, rc);
    }
    dlog_buf_free(&col.elems);
    return rc;
}

/*
 * SCAN cursors. A cursor is (tag << 40) | keys passed so far, tag a random
 * 23-bit number. The server remembers the last key each recent cursor
 * returned (256 of them, oldest forgotten first) and resumes just after it,
 * so keys present for the whole scan are returned exactly once even while
 * other keys come and go. A forgotten cursor still works by passing its
 * count of keys again (then a key added or deleted meanwhile before the
 * cursor can shift the scan by that many keys).
 */
#define SCAN_SLOTS    256
#define SCAN_POS_BITS 40
struct scan_slot {
    uint64_t cursor;
    size_t klen;
    char key[KV_MAX_KEY];
};
struct kv_scans {
    struct scan_slot slot[SCAN_SLOTS];
    unsigned next;
    uint64_t rng;
};

struct kv_scans *kv_scans_new(void)
{
    struct kv_scans *sc = calloc(1, sizeof(*sc));
    if (sc != NULL) {
        sc->rng = kv_now_ms() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    }
    return sc;
}

void kv_scans_free(struct kv_scans *sc)
{
    free(sc);
}

static uint64_t scan_tag(struct kv_scans *sc)
{
    /* xorshift64 */
    sc->rng ^= sc->rng << 13;
    sc->rng ^= sc->rng >> 7;
    sc->rng ^= sc->rng << 17;
    return ((sc->rng >> 20) & 0x7fffff) | 1;
}

static int scan_visit(void *arg, const void *key, size_t klen)
{
    struct collect *col = arg;
    if (col->from != NULL) {
        int same = klen == col->fromlen && memcmp(key, col->from, klen) == 0;
        col->from = NULL;
        if (same) {
            return 0;
        }
    }
    if (col->skip > 0) {
        col->skip--;
        return 0;
    }
    if (col->examined == col->count) {
        col->more = 1;
        return 1;
    }
    col->examined++;
    memcpy(col->last, key, klen);
    col->lastlen = klen;
    return collect_key(col, key, klen);
}

/* SCAN cursor [MATCH pattern] [COUNT count] [TYPE type] */
static int cmd_scan(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    struct collect col = {.count = 10};
    struct kv_scans *sc = ctx->scans;
    int only_none = 0;
    unsigned long long cursor = 0;
    char *end = NULL;

    if (c->argvlen[1] == 0 || !isdigit((unsigned char)c->argv[1][0])) {
        return ENOMEM_IF(resp_add_error(out, "ERR invalid cursor"));
    }
    cursor = strtoull(c->argv[1], &end, 10);
    if (end != c->argv[1] + c->argvlen[1]) {
        return ENOMEM_IF(resp_add_error(out, "ERR invalid cursor"));
    }
    for (int i = 2; i < c->argc; i += 2) {
        if (i + 1 >= c->argc) {
            return err_syntax(out);
        }
        if (kv_argis(c, i, "match")) {
            col.pat = c->argv[i + 1];
            col.patlen = c->argvlen[i + 1];
            if (col.patlen == 1 && col.pat[0] == '*') {
                col.pat = NULL;
            }
        } else if (kv_argis(c, i, "count")) {
            long long n;
            if (!resp_parse_ll(c->argv[i + 1], c->argvlen[i + 1], &n)) {
                return err_not_int(out);
            }
            if (n < 1) {
                return err_syntax(out);
            }
            col.count = n;
        } else if (kv_argis(c, i, "type")) {
            only_none = !kv_argis(c, i + 1, "string"); /* every key is a string */
        } else {
            return err_syntax(out);
        }
    }
    uint64_t passed = cursor & ((1ULL << SCAN_POS_BITS) - 1);
    const char *from = NULL;
    size_t fromlen = 0;
    if (cursor != 0) {
        for (int i = 0; i < SCAN_SLOTS; i++) {
            if (sc->slot[i].cursor == cursor) {
                from = sc->slot[i].key;
                fromlen = sc->slot[i].klen;
                break;
            }
        }
        if (from == NULL) {
            col.skip = passed;
        }
    }
    col.from = from;
    col.fromlen = fromlen;
    int rc = kv_read_keys(ctx->state, ctx->now_ms, from, fromlen, scan_visit, &col);
    if (rc < 0 || rc > 1) {
        dlog_buf_free(&col.elems);
        return rc == DLOG_ENOMEM ? rc : err_internal(out, rc);
    }
    uint64_t next = 0;
    if (col.more) {
        uint64_t pos = passed + (uint64_t)col.examined;
        if (pos >= (1ULL << SCAN_POS_BITS)) {
            pos = (1ULL << SCAN_POS_BITS) - 1;
        }
        next = (scan_tag(sc) << SCAN_POS_BITS) | pos;
        struct scan_slot *slot = &sc->slot[sc->next++ % SCAN_SLOTS];
        slot->cursor = next;
        slot->klen = col.lastlen;
        memcpy(slot->key, col.last, col.lastlen);
    }
    char num[32];
    int nn = snprintf(num, sizeof(num), "%" PRIu64, next);
    rc = resp_add_array(out, 2);
    if (rc == 0) {
        rc = resp_add_bulk(out, num, (size_t)nn);
    }
    if (rc == 0) {
        rc = resp_add_array(out, only_none ? 0 : col.n);
    }
    if (rc == 0 && !only_none && col.elems.len > 0) {
        rc = dlog_buf_append(out, col.elems.p, col.elems.len);
    }
    dlog_buf_free(&col.elems);
    return ENOMEM_IF(rc);
}

/* ------------------------------------------------------------------ local */

static int cmd_ping(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    if (c->argc > 2) {
        return ENOMEM_IF(
            resp_add_error(out, "ERR wrong number of arguments for 'ping' command"));
    }
    if (c->argc == 2) {
        return ENOMEM_IF(resp_add_bulk(out, c->argv[1], c->argvlen[1]));
    }
    return ENOMEM_IF(resp_add_status(out, "PONG"));
}

static int cmd_echo(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    return ENOMEM_IF(resp_add_bulk(out, c->argv[1], c->argvlen[1]));
}

static int cmd_select(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                      struct dlog_buf *enc)
{
    long long db;
    if (!resp_parse_ll(c->argv[1], c->argvlen[1], &db)) {
        return err_not_int(out);
    }
    if (db != 0) {
        return ENOMEM_IF(resp_add_error(out, "ERR DB index is out of range"));
    }
    return ENOMEM_IF(resp_add_status(out, "OK"));
}

static int cmd_quit(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                    struct dlog_buf *enc)
{
    ctx->sess->quit = 1;
    return ENOMEM_IF(resp_add_status(out, "OK"));
}

/* ------------------------------------------------------------------ table */

#define ARGS(...)                                                                        \
    .args = (const struct kv_argdoc[]){__VA_ARGS__},                                     \
    .nargs = sizeof((const struct kv_argdoc[]){__VA_ARGS__}) / sizeof(struct kv_argdoc)
#define KEY                                                                              \
    {                                                                                    \
        "key", "key", NULL, 0                                                            \
    }
#define KEYS_                                                                            \
    {                                                                                    \
        "key", "key", NULL, KV_ARG_MULTI                                                 \
    }

static const struct kv_command table[] = {
    {"append", 3, KV_WRITE, cmd_append, "Appends a string to the value of a key.",
     "string", "write denyoom", 1, 1, 1, ARGS(KEY, {"value", "string", NULL, 0})},
    {"client", -2, KV_LOCAL, kv_cmd_client,
     "Connection commands: SETNAME, GETNAME, ID, STALE (dlog-kv), HELP.", "connection",
     "noscript loading stale", 0, 0, 0,
     ARGS({"subcommand", "string", NULL, 0},
          {"arg", "string", NULL, KV_ARG_OPT | KV_ARG_MULTI})},
    {"command", -1, KV_LOCAL, kv_cmd_command, "Returns information about commands.",
     "server", "loading stale", 0, 0, 0,
     ARGS({"subcommand", "string", NULL, KV_ARG_OPT},
          {"arg", "string", NULL, KV_ARG_OPT | KV_ARG_MULTI})},
    {"dbsize", 1, KV_READ, cmd_dbsize, "Returns the number of keys in the database.",
     "server", "readonly fast", 0, 0, 0, .args = NULL, .nargs = 0},
    {"decr", 2, KV_WRITE, cmd_decr, "Decrements the integer value of a key by one.",
     "string", "write denyoom fast", 1, 1, 1, ARGS(KEY)},
    {"decrby", 3, KV_WRITE, cmd_decrby,
     "Decrements the integer value of a key by a number.", "string", "write denyoom fast",
     1, 1, 1, ARGS(KEY, {"decrement", "integer", NULL, 0})},
    {"del", -2, KV_WRITE, cmd_del, "Deletes one or more keys.", "generic", "write", 1, -1,
     1, ARGS(KEYS_)},
    {"echo", 2, KV_LOCAL, cmd_echo, "Returns the given string.", "connection", "fast", 0,
     0, 0, ARGS({"message", "string", NULL, 0})},
    {"exists", -2, KV_READ, cmd_exists, "Determines whether one or more keys exist.",
     "generic", "readonly fast", 1, -1, 1, ARGS(KEYS_)},
    {"flushdb", -1, KV_WRITE, cmd_flushdb, "Removes all keys (through the log).",
     "server", "write", 0, 0, 0,
     ARGS({"async", "pure-token", "ASYNC", KV_ARG_OPT},
          {"sync", "pure-token", "SYNC", KV_ARG_OPT})},
    {"get", 2, KV_READ, cmd_get, "Returns the string value of a key.", "string",
     "readonly fast", 1, 1, 1, ARGS(KEY)},
    {"getset", 3, KV_WRITE, cmd_getset,
     "Returns the previous string value of a key after setting it to a new value.",
     "string", "write denyoom fast", 1, 1, 1, ARGS(KEY, {"value", "string", NULL, 0})},
    {"incr", 2, KV_WRITE, cmd_incr, "Increments the integer value of a key by one.",
     "string", "write denyoom fast", 1, 1, 1, ARGS(KEY)},
    {"incrby", 3, KV_WRITE, cmd_incrby,
     "Increments the integer value of a key by a number.", "string", "write denyoom fast",
     1, 1, 1, ARGS(KEY, {"increment", "integer", NULL, 0})},
    {"info", -1, KV_LOCAL, kv_cmd_info,
     "Returns information and statistics about the server.", "server", "loading stale", 0,
     0, 0, ARGS({"section", "string", NULL, KV_ARG_OPT | KV_ARG_MULTI})},
    {"keys", 2, KV_READ, cmd_keys, "Returns all key names that match a pattern.",
     "generic", "readonly", 0, 0, 0, ARGS({"pattern", "pattern", NULL, 0})},
    {"mget", -2, KV_READ, cmd_mget,
     "Atomically returns the string values of one or more "
     "keys.",
     "string", "readonly fast", 1, -1, 1, ARGS(KEYS_)},
    {"mset", -3, KV_WRITE, cmd_mset,
     "Atomically creates or modifies the string values of "
     "one or more keys.",
     "string", "write denyoom", 1, -1, 2,
     /* shown as "key value [key value ...]" */
     ARGS({"key", "key", NULL, 0}, {"value", "string", NULL, 0},
          {"key value", "string", NULL, KV_ARG_OPT | KV_ARG_MULTI})},
    {"ping", -1, KV_LOCAL, cmd_ping, "Returns the server's liveliness response.",
     "connection", "fast", 0, 0, 0, ARGS({"message", "string", NULL, KV_ARG_OPT})},
    {"quit", -1, KV_LOCAL, cmd_quit, "Closes the connection.", "connection",
     "noscript loading stale fast", 0, 0, 0, .args = NULL, .nargs = 0},
    {"scan", -2, KV_READ, cmd_scan, "Iterates over the key names in the database.",
     "generic", "readonly", 0, 0, 0,
     ARGS({"cursor", "integer", NULL, 0}, {"pattern", "pattern", "MATCH", KV_ARG_OPT},
          {"count", "integer", "COUNT", KV_ARG_OPT},
          {"type", "string", "TYPE", KV_ARG_OPT})},
    {"select", 2, KV_LOCAL, cmd_select, "Changes the selected database (only 0 exists).",
     "connection", "loading stale fast", 0, 0, 0, ARGS({"index", "integer", NULL, 0})},
    {"set", -3, KV_WRITE, cmd_set,
     "Sets the string value of a key, ignoring its type. The key is created if it "
     "doesn't exist.",
     "string", "write denyoom", 1, 1, 1,
     ARGS(KEY, {"value", "string", NULL, 0}, {"nx", "pure-token", "NX", KV_ARG_OPT},
          {"xx", "pure-token", "XX", KV_ARG_OPT},
          {"seconds", "integer", "EX", KV_ARG_OPT},
          {"milliseconds", "integer", "PX", KV_ARG_OPT})},
    {"strlen", 2, KV_READ, cmd_strlen, "Returns the length of a string value.", "string",
     "readonly fast", 1, 1, 1, ARGS(KEY)},
};
#define NCOMMANDS (sizeof(table) / sizeof(table[0]))

const struct kv_command *kv_command_table(size_t *n)
{
    *n = NCOMMANDS;
    return table;
}

const struct kv_command *kv_command_lookup(const struct resp_cmd *c)
{
    if (c->argc < 1 || c->argvlen[0] > 16) {
        return NULL;
    }
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (kv_argis(c, 0, table[i].name)) {
            return &table[i];
        }
    }
    return NULL;
}

int kv_command_check(const struct kv_command *cmd, const struct resp_cmd *c,
                     struct dlog_buf *out)
{
    if (cmd == NULL) {
        /* Redis: "unknown command '%.128s', with args beginning with: " and
         * each argument as "'%.*s' " while they fit in 128 bytes. */
        char args[256];
        size_t n = 0;
        args[0] = '\0';
        for (int i = 1; i < c->argc && n < 128; i++) {
            int room = (int)(128 - n);
            int len = (int)c->argvlen[i] < room - 3 ? (int)c->argvlen[i] : room - 3;
            if (len < 0) {
                break;
            }
            n += (size_t)snprintf(args + n, sizeof(args) - n, "'%.*s' ", len, c->argv[i]);
        }
        return resp_add_errorf(
                   out, "ERR unknown command '%.128s', with args beginning with: %s",
                   c->argv[0], args)
                   ? DLOG_ENOMEM
                   : 0;
    }
    if ((cmd->arity > 0 && c->argc != cmd->arity) || c->argc < -cmd->arity) {
        return resp_add_errorf(out, "ERR wrong number of arguments for '%s' command",
                               cmd->name)
                   ? DLOG_ENOMEM
                   : 0;
    }
    return 1;
}
