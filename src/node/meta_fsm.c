/*
 * The metadata FSM: its tables, reads and the apply dispatcher. The
 * command handlers live in meta_fsm_stream.c, meta_fsm_kv.c and
 * meta_fsm_lease.c; snapshots in meta_fsm_snap.c; the libraft adapter in
 * meta_fsm_raft.c.
 *
 * Streams are an array of pointers sorted by name, keys an array of
 * entries sorted by key (both by binary search, like meta_mem.c): the
 * metadata of a namespace is small, and sorted tables make snapshots and
 * listings deterministic without a sort.
 */
#include "node/meta_fsm_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

int meta_fsm_new(struct meta_fsm **out)
{
    struct meta_fsm *fsm = calloc(1, sizeof *fsm);

    *out = NULL;
    if (fsm == NULL)
        return DLOG_ENOMEM;
    fsm->st.next_stream_id = 1;
    *out = fsm;
    return 0;
}

void fsm_state_clear(struct fsm_state *st)
{
    for (size_t i = 0; i < st->nstreams; i++)
        fsm_stream_free(st->streams[i]);
    free(st->streams);
    for (size_t i = 0; i < st->nkv; i++) {
        free(st->kv[i].key);
        free(st->kv[i].value);
    }
    free(st->kv);
    memset(st, 0, sizeof *st);
    st->next_stream_id = 1;
}

void meta_fsm_free(struct meta_fsm *fsm)
{
    if (fsm == NULL)
        return;
    fsm_state_clear(&fsm->st);
    free(fsm);
}

uint64_t meta_fsm_revision(const struct meta_fsm *fsm)
{
    return fsm->st.revision;
}

const char *meta_fsm_errmsg(const struct meta_fsm *fsm)
{
    return fsm->errmsg;
}

int fsm_fail(struct meta_fsm_result *res, int code, const char *fmt, ...)
{
    char what[DLOG_ERRMSG_SIZE];
    va_list ap;

    va_start(ap, fmt);
    if (vsnprintf(what, sizeof what, fmt, ap) < 0)
        what[0] = '\0';
    va_end(ap);
    res->status = errmsg_fail(res->errmsg, code, "%s", what);
    return code;
}

/* ---------------------------------------------------------------- names */

static int no_nul(const uint8_t *p, size_t len)
{
    return len == 0 || memchr(p, '\0', len) == NULL;
}

int fsm_name_ok(const uint8_t *p, size_t len)
{
    return len > 0 && len <= DLOG_STREAM_NAME_MAX && no_nul(p, len);
}

int fsm_key_ok(const uint8_t *p, size_t len)
{
    return len > 0 && len <= META_KEY_MAX && no_nul(p, len);
}

/* memcmp order, a prefix first: strcmp's order for strings without NUL. */
static int compare(const void *a, size_t alen, const void *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);

    if (c != 0)
        return c;
    return alen < blen ? -1 : alen > blen;
}

/* Room for one more element of size sz in *v (n used, *cap allocated). */
static int reserve(void **v, size_t n, size_t *cap, size_t sz)
{
    size_t ncap;
    void *nv;

    if (n < *cap)
        return 0;
    ncap = *cap == 0 ? 8 : *cap * 2;
    if (ncap > SIZE_MAX / sz)
        return DLOG_ENOMEM;
    nv = realloc(*v, ncap * sz);
    if (nv == NULL)
        return DLOG_ENOMEM;
    *v = nv;
    *cap = ncap;
    return 0;
}

/* --------------------------------------------------------------- streams */

void fsm_stream_free(struct meta_stream *s)
{
    if (s != NULL) {
        meta_stream_clear(s);
        free(s);
    }
}

size_t fsm_stream_find(const struct fsm_state *st, const uint8_t *name, size_t len,
                       int *found)
{
    size_t lo = 0, hi = st->nstreams;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *have = st->streams[mid]->name;
        int c = compare(have, strlen(have), name, len);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

int fsm_stream_reserve(struct fsm_state *st)
{
    void *v = st->streams;
    int rv = reserve(&v, st->nstreams, &st->cap_streams, sizeof st->streams[0]);

    st->streams = v;
    return rv;
}

void fsm_stream_insert(struct fsm_state *st, size_t i, struct meta_stream *s)
{
    memmove(&st->streams[i + 1], &st->streams[i],
            (st->nstreams - i) * sizeof st->streams[0]);
    st->streams[i] = s;
    st->nstreams++;
}

void fsm_stream_erase(struct fsm_state *st, size_t i)
{
    fsm_stream_free(st->streams[i]);
    memmove(&st->streams[i], &st->streams[i + 1],
            (st->nstreams - i - 1) * sizeof st->streams[0]);
    st->nstreams--;
}

/* ------------------------------------------------------------------ keys */

size_t fsm_kv_find(const struct fsm_state *st, const uint8_t *key, size_t len, int *found)
{
    size_t lo = 0, hi = st->nkv;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = compare(st->kv[mid].key, st->kv[mid].key_len, key, len);

        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

int fsm_kv_reserve(struct fsm_state *st)
{
    void *v = st->kv;
    int rv = reserve(&v, st->nkv, &st->cap_kv, sizeof st->kv[0]);

    st->kv = v;
    return rv;
}

void fsm_kv_insert(struct fsm_state *st, size_t i, const struct fsm_kv *e)
{
    memmove(&st->kv[i + 1], &st->kv[i], (st->nkv - i) * sizeof st->kv[0]);
    st->kv[i] = *e;
    st->nkv++;
}

void fsm_kv_erase(struct fsm_state *st, size_t i)
{
    free(st->kv[i].key);
    free(st->kv[i].value);
    memmove(&st->kv[i], &st->kv[i + 1], (st->nkv - i - 1) * sizeof st->kv[0]);
    st->nkv--;
}

/* ----------------------------------------------------------------- apply */

typedef int (*handler)(struct fsm_state *st, const struct meta_cmd *cmd,
                       struct meta_fsm_result *res);

static const handler handlers[] = {
    [META_CMD_STREAM_CREATE] = fsm_apply_stream_create,
    [META_CMD_STREAM_UPDATE] = fsm_apply_stream_update,
    [META_CMD_STREAM_REMOVE] = fsm_apply_stream_remove,
    [META_CMD_KV_PUT] = fsm_apply_kv_put,
    [META_CMD_KV_REMOVE] = fsm_apply_kv_remove,
    [META_CMD_LEASE_ACQUIRE] = fsm_apply_lease_acquire,
    [META_CMD_LEASE_RELEASE] = fsm_apply_lease_release,
};

int meta_fsm_apply(struct meta_fsm *fsm, const void *p, size_t len,
                   struct meta_fsm_result *res)
{
    struct meta_cmd cmd;
    int rv;

    memset(res, 0, sizeof *res);
    rv = meta_cmd_decode(p, len, &cmd);
    if (rv != 0) {
        fsm_fail(res, rv, "command of %zu bytes", len);
    } else {
        res->type = (int)cmd.type;
        rv = handlers[cmd.type](&fsm->st, &cmd, res);
        if (rv == 0)
            fsm->st.revision++;
    }
    res->revision = fsm->st.revision;
    /* Running out of memory is this replica's trouble, not the command's
     * outcome: report it as "not applied" so that it is applied again. */
    return rv == DLOG_ENOMEM ? DLOG_ENOMEM : 0;
}

/* ----------------------------------------------------------------- reads */

static void names_free(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

int meta_fsm_get(struct meta_fsm *fsm, const char *name, struct meta_stream *out)
{
    size_t len = name == NULL ? 0 : strnlen(name, DLOG_STREAM_NAME_MAX + 1);
    size_t i = 0;
    int found = 0;

    if (fsm_name_ok((const uint8_t *)name, len))
        i = fsm_stream_find(&fsm->st, (const uint8_t *)name, len, &found);
    if (!found)
        return errmsg_fail(fsm->errmsg, DLOG_ENOTFOUND, "get %.*s", DLOG_STREAM_NAME_MAX,
                           name != NULL ? name : "(null)");
    if (meta_stream_copy(out, fsm->st.streams[i]) != 0)
        return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "get %s", name);
    return 0;
}

int meta_fsm_list(struct meta_fsm *fsm, char ***names, size_t *count)
{
    size_t n = fsm->st.nstreams;
    char **v = malloc((n + 1) * sizeof *v);

    if (v == NULL)
        return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "list");
    for (size_t i = 0; i < n; i++) {
        v[i] = strdup(fsm->st.streams[i]->name);
        if (v[i] == NULL) {
            names_free(v, i);
            return errmsg_fail(fsm->errmsg, DLOG_ENOMEM, "list");
        }
    }
    v[n] = NULL;
    *names = v;
    *count = n;
    return 0;
}
