/*
 * Stream commands of the metadata FSM: create, update (compare-and-set on
 * version and id) and remove. Codes and messages are meta_mem.c's, so a
 * caller cannot tell the stores apart by their answers.
 */
#include "node/meta_fsm_int.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

/*
 * The stream record carried by a command into a new heap record in *out.
 * 0, DLOG_ECORRUPT (the record does not decode: an outcome) or DLOG_ENOMEM.
 */
static int decode_record(const struct meta_cmd *cmd, struct meta_stream **out,
                         struct meta_fsm_result *res)
{
    struct meta_stream *s = malloc(sizeof *s);
    int rv;

    *out = NULL;
    if (s == NULL)
        return fsm_fail(res, DLOG_ENOMEM, "%s", meta_cmd_type_name((int)cmd->type));
    rv = meta_stream_decode(cmd->stream.p, cmd->stream.len, s);
    if (rv != 0) {
        free(s);
        return fsm_fail(res, rv, "%s: stream record", meta_cmd_type_name((int)cmd->type));
    }
    *out = s;
    return 0;
}

static size_t name_len(const struct meta_stream *s)
{
    return strnlen(s->name, sizeof s->name);
}

int fsm_apply_stream_create(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res)
{
    struct meta_stream *s;
    size_t i;
    int found, rv;

    rv = decode_record(cmd, &s, res);
    if (rv != 0)
        return rv;
    if (!fsm_name_ok((const uint8_t *)s->name, name_len(s))) {
        rv = fsm_fail(res, DLOG_EINVAL, "create %.*s: bad name", DLOG_STREAM_NAME_MAX,
                      s->name);
        goto err;
    }
    i = fsm_stream_find(st, (const uint8_t *)s->name, name_len(s), &found);
    if (found) {
        rv = fsm_fail(res, DLOG_EEXIST, "create %s", s->name);
        goto err;
    }
    if (fsm_stream_reserve(st) != 0) {
        rv = fsm_fail(res, DLOG_ENOMEM, "create %s", s->name);
        goto err;
    }
    s->id = st->next_stream_id++;
    s->version = 1;
    fsm_stream_insert(st, i, s);
    res->stream_id = s->id;
    res->version = 1;
    return 0;

err:
    fsm_stream_free(s);
    return rv;
}

/*
 * Compare-and-set. As in meta_mem.c, the id must match besides the
 * version: a stream deleted and created again under the same name starts
 * over at version 1, and an update read from the old one must not land on
 * the new one.
 */
int fsm_apply_stream_update(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res)
{
    struct meta_stream *s, *old;
    size_t i;
    int found, rv;

    rv = decode_record(cmd, &s, res);
    if (rv != 0)
        return rv;
    i = fsm_stream_find(st, (const uint8_t *)s->name, name_len(s), &found);
    if (!fsm_name_ok((const uint8_t *)s->name, name_len(s)) || !found) {
        rv = fsm_fail(res, DLOG_ENOTFOUND, "update %.*s", DLOG_STREAM_NAME_MAX, s->name);
        goto err;
    }
    old = st->streams[i];
    if (old->version != s->version || old->id != s->id) {
        rv = fsm_fail(res, DLOG_ECONFLICT,
                      "update %s: stored version %llu, id %llu; given %llu, id %llu",
                      s->name, (unsigned long long)old->version,
                      (unsigned long long)old->id, (unsigned long long)s->version,
                      (unsigned long long)s->id);
        res->version = old->version;
        goto err;
    }
    s->version++;
    st->streams[i] = s;
    fsm_stream_free(old);
    res->stream_id = s->id;
    res->version = s->version;
    return 0;

err:
    fsm_stream_free(s);
    return rv;
}

int fsm_apply_stream_remove(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res)
{
    const struct meta_stream *s;
    size_t i = 0;
    int found = 0;

    if (fsm_name_ok(cmd->key.p, cmd->key.len))
        i = fsm_stream_find(st, cmd->key.p, cmd->key.len, &found);
    if (!found)
        return fsm_fail(res, DLOG_ENOTFOUND, "remove %.*s", SLICE_ARG(cmd->key));
    s = st->streams[i];
    if (cmd->version != 0 && s->version != cmd->version) {
        res->version = s->version;
        return fsm_fail(res, DLOG_ECONFLICT, "remove %s: stored version %llu, given %llu",
                        s->name, (unsigned long long)s->version,
                        (unsigned long long)cmd->version);
    }
    res->stream_id = s->id;
    fsm_stream_erase(st, i);
    return 0;
}
