/*
 * Keyed values of the metadata FSM: the put and remove commands
 * (compare-and-set on the key's version, meta.h) and the reads.
 *
 * From meta.h: "Every key carries a version (1 when created, +1 per put),
 * and every put is a compare-and-set." kv_put's expected version is
 * META_KV_CREATE (the key must not exist), META_KV_ANY (whatever is
 * stored, or nothing) or a stored version.
 */
#include "node/meta_fsm_int.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

int fsm_kv_store(struct fsm_state *st, size_t i, int found,
                 const struct meta_cmd_slice *key, const void *value, size_t len,
                 uint64_t version)
{
    struct fsm_kv e = {.len = len, .version = version};

    /* Everything that can fail first, so that a failure changes nothing. */
    if (!found && fsm_kv_reserve(st) != 0)
        return DLOG_ENOMEM;
    if (len > 0) {
        e.value = malloc(len);
        if (e.value == NULL)
            return DLOG_ENOMEM;
        memcpy(e.value, value, len);
    }
    if (found) {
        free(st->kv[i].value);
        st->kv[i].value = e.value;
        st->kv[i].len = len;
        st->kv[i].version = version;
        return 0;
    }
    e.key = malloc(key->len + 1);
    if (e.key == NULL) {
        free(e.value);
        return DLOG_ENOMEM;
    }
    memcpy(e.key, key->p, key->len);
    e.key[key->len] = '\0';
    e.key_len = key->len;
    fsm_kv_insert(st, i, &e);
    return 0;
}

/* The version a put must give the key, or a failure in res. */
static int put_version(const struct fsm_kv *have, const struct meta_cmd *cmd,
                       uint64_t *version, struct meta_fsm_result *res)
{
    uint64_t want = cmd->version;

    if (have == NULL) {
        if (want != META_KV_CREATE && want != META_KV_ANY)
            return fsm_fail(res, DLOG_ENOTFOUND, "kv_put %.*s: expected version %llu",
                            SLICE_ARG(cmd->key), (unsigned long long)want);
        *version = 1;
        return 0;
    }
    if (want != META_KV_ANY && want != have->version) {
        res->version = have->version;
        return fsm_fail(res, DLOG_ECONFLICT, "kv_put %s: stored version %llu, given %llu",
                        have->key, (unsigned long long)have->version,
                        (unsigned long long)want);
    }
    *version = have->version + 1;
    return 0;
}

int fsm_apply_kv_put(struct fsm_state *st, const struct meta_cmd *cmd,
                     struct meta_fsm_result *res)
{
    uint64_t version = 0;
    size_t i;
    int found, rv;

    if (!fsm_key_ok(cmd->key.p, cmd->key.len))
        return fsm_fail(res, DLOG_EINVAL, "kv_put: bad key (%zu bytes; 1..%d, no NUL)",
                        cmd->key.len, META_KEY_MAX);
    if (cmd->value.len > META_VALUE_MAX)
        return fsm_fail(res, DLOG_EINVAL, "kv_put %.*s: value of %zu bytes, limit %d",
                        SLICE_ARG(cmd->key), cmd->value.len, META_VALUE_MAX);
    i = fsm_kv_find(st, cmd->key.p, cmd->key.len, &found);
    rv = put_version(found ? &st->kv[i] : NULL, cmd, &version, res);
    if (rv != 0)
        return rv;
    rv = fsm_kv_store(st, i, found, &cmd->key, cmd->value.p, cmd->value.len, version);
    if (rv != 0)
        return fsm_fail(res, rv, "kv_put %.*s", SLICE_ARG(cmd->key));
    res->version = version;
    return 0;
}

int fsm_apply_kv_remove(struct fsm_state *st, const struct meta_cmd *cmd,
                        struct meta_fsm_result *res)
{
    const struct fsm_kv *e;
    size_t i = 0;
    int found = 0;

    if (fsm_key_ok(cmd->key.p, cmd->key.len))
        i = fsm_kv_find(st, cmd->key.p, cmd->key.len, &found);
    if (!found)
        return fsm_fail(res, DLOG_ENOTFOUND, "kv_remove %.*s", SLICE_ARG(cmd->key));
    e = &st->kv[i];
    if (cmd->version != META_KV_ANY && cmd->version != e->version) {
        res->version = e->version;
        return fsm_fail(res, DLOG_ECONFLICT,
                        "kv_remove %s: stored version %llu, given %llu", e->key,
                        (unsigned long long)e->version, (unsigned long long)cmd->version);
    }
    fsm_kv_erase(st, i);
    return 0;
}

/* ----------------------------------------------------------------- reads */

int meta_fsm_kv_get(struct meta_fsm *fsm, const char *key, struct bytes *value,
                    uint64_t *version)
{
    size_t len = key == NULL ? 0 : strnlen(key, META_KEY_MAX + 1);
    const struct fsm_kv *e;
    size_t i = 0;
    int found = 0;

    if (fsm_key_ok((const uint8_t *)key, len))
        i = fsm_kv_find(&fsm->st, (const uint8_t *)key, len, &found);
    if (!found)
        return errmsg_fail(fsm->errmsg, DLOG_ENOTFOUND, "kv_get %.*s", META_KEY_MAX,
                           key != NULL ? key : "(null)");
    e = &fsm->st.kv[i];
    bytes_reset(value);
    if (bytes_append(value, e->value, e->len) != 0)
        return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "kv_get %s", e->key);
    if (version != NULL)
        *version = e->version;
    return 0;
}

/* Deep copy of e into *out; 0 or DLOG_ENOMEM (then *out owns nothing). */
static int copy_kv(const struct fsm_kv *e, struct meta_kv *out)
{
    memset(out, 0, sizeof *out);
    bytes_init(&out->value);
    out->key = strdup(e->key);
    if (out->key == NULL || bytes_append(&out->value, e->value, e->len) != 0) {
        free(out->key);
        bytes_free(&out->value);
        out->key = NULL;
        return DLOG_ENOMEM;
    }
    out->version = e->version;
    return 0;
}

int meta_fsm_kv_list(struct meta_fsm *fsm, const char *prefix, struct meta_kv **items,
                     size_t *count)
{
    const struct fsm_state *st = &fsm->st;
    struct meta_kv *v = NULL;
    size_t plen, first, end, n = 0;
    int found;

    if (prefix == NULL)
        prefix = "";
    plen = strlen(prefix);
    *items = NULL;
    *count = 0;
    /* Keys with the prefix are one run, starting where the prefix would go. */
    first = fsm_kv_find(st, (const uint8_t *)prefix, plen, &found);
    for (end = first; end < st->nkv; end++)
        if (st->kv[end].key_len < plen || memcmp(st->kv[end].key, prefix, plen) != 0)
            break;
    if (end > first) {
        v = calloc(end - first, sizeof *v);
        if (v == NULL)
            return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "kv_list");
    }
    for (; n < end - first; n++) {
        if (copy_kv(&st->kv[first + n], &v[n]) != 0) {
            meta_kv_list_free(v, n);
            return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "kv_list");
        }
    }
    *items = v;
    *count = n;
    return 0;
}
