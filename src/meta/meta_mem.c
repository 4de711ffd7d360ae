/*
 * The in-memory metadata store ("mem:"), for tests and the embedded mem
 * backend. Streams live in an array sorted by name (strcmp order), each a
 * deep copy owned by the store; one mutex guards everything, including
 * m->errmsg. Ids come from a counter starting at 1 and are never reused.
 */
#include "meta/meta.h"
#include "meta/meta_kv.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

struct mem {
    struct dlog_meta_ops ops; /* first: ops->impl points back here */
    pthread_mutex_t mu;
    struct meta_stream **v; /* sorted by name */
    size_t n, cap;
    uint64_t next_id;
    struct kvtab kv;
    uint64_t rev; /* grows on every change */
};

/* printf arguments for "%.*s" showing a possibly NULL or over-long name. */
#define NAME_ARG(name) DLOG_STREAM_NAME_MAX, (name) != NULL ? (name) : "(null)"

static int name_ok(const char *name)
{
    size_t len = name == NULL ? 0 : strnlen(name, DLOG_STREAM_NAME_MAX + 1);
    return len > 0 && len <= DLOG_STREAM_NAME_MAX;
}

/* Index of name, or of where it would go; *found says which. */
static size_t search(struct mem *mm, const char *name, int *found)
{
    size_t lo = 0, hi = mm->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(mm->v[mid]->name, name);

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

static void free_stream(struct meta_stream *s)
{
    if (s != NULL) {
        meta_stream_clear(s);
        free(s);
    }
}

/* A heap deep copy of src, or NULL. */
static struct meta_stream *dup_stream(const struct meta_stream *src)
{
    struct meta_stream *s = malloc(sizeof *s);

    if (s == NULL)
        return NULL;
    if (meta_stream_copy(s, src) != 0) {
        free(s);
        return NULL;
    }
    return s;
}

static int mem_create(struct dlog_meta_ops *m, struct meta_stream *s)
{
    struct mem *mm = m->impl;
    struct meta_stream *copy = NULL;
    size_t i;
    int found, rv;

    pthread_mutex_lock(&mm->mu);
    if (!name_ok(s->name)) {
        rv = errmsg_fail(m->errmsg, DLOG_EINVAL, "create %.*s: bad name",
                         NAME_ARG(s->name));
        goto out;
    }
    i = search(mm, s->name, &found);
    if (found) {
        rv = errmsg_fail(m->errmsg, DLOG_EEXIST, "create %s", s->name);
        goto out;
    }
    if (mm->n == mm->cap) {
        size_t cap = mm->cap == 0 ? 8 : mm->cap * 2;
        struct meta_stream **v = realloc(mm->v, cap * sizeof *v);
        if (v == NULL) {
            rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "create %s", s->name);
            goto out;
        }
        mm->v = v;
        mm->cap = cap;
    }
    copy = dup_stream(s);
    if (copy == NULL) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "create %s", s->name);
        goto out;
    }
    copy->id = mm->next_id++;
    copy->version = 1;
    memmove(&mm->v[i + 1], &mm->v[i], (mm->n - i) * sizeof mm->v[0]);
    mm->v[i] = copy;
    mm->n++;
    s->id = copy->id;
    s->version = 1;
    mm->rev++;
    rv = 0;
out:
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_get(struct dlog_meta_ops *m, const char *name, struct meta_stream *out)
{
    struct mem *mm = m->impl;
    size_t i = 0;
    int found = 0, rv;

    pthread_mutex_lock(&mm->mu);
    if (name_ok(name))
        i = search(mm, name, &found);
    if (!found)
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "get %.*s", NAME_ARG(name));
    else if (meta_stream_copy(out, mm->v[i]) != 0)
        rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "get %s", name);
    else
        rv = 0;
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

static int mem_list(struct dlog_meta_ops *m, char ***names, size_t *count)
{
    struct mem *mm = m->impl;
    char **v;
    size_t i;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    v = malloc((mm->n + 1) * sizeof *v);
    if (v == NULL) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "list");
        goto out;
    }
    for (i = 0; i < mm->n; i++) {
        v[i] = strdup(mm->v[i]->name);
        if (v[i] == NULL) {
            free_names(v, i);
            rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "list");
            goto out;
        }
    }
    v[i] = NULL;
    *names = v;
    *count = i;
out:
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

/*
 * Compare-and-set. Besides the version, the id must match: a stream deleted
 * and created again under the same name starts over at version 1, and an
 * update read from the old one must not land on the new one.
 */
static int mem_update(struct dlog_meta_ops *m, struct meta_stream *s)
{
    struct mem *mm = m->impl;
    struct meta_stream *copy;
    size_t i;
    int found, rv;

    pthread_mutex_lock(&mm->mu);
    if (!name_ok(s->name)) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "update %.*s", NAME_ARG(s->name));
        goto out;
    }
    i = search(mm, s->name, &found);
    if (!found) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "update %s", s->name);
        goto out;
    }
    if (mm->v[i]->version != s->version || mm->v[i]->id != s->id) {
        rv = errmsg_fail(m->errmsg, DLOG_ECONFLICT,
                         "update %s: stored version %llu, id %llu; given %llu, id %llu",
                         s->name, (unsigned long long)mm->v[i]->version,
                         (unsigned long long)mm->v[i]->id, (unsigned long long)s->version,
                         (unsigned long long)s->id);
        goto out;
    }
    copy = dup_stream(s);
    if (copy == NULL) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "update %s", s->name);
        goto out;
    }
    copy->version = s->version + 1;
    free_stream(mm->v[i]);
    mm->v[i] = copy;
    s->version++;
    mm->rev++;
    rv = 0;
out:
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_remove(struct dlog_meta_ops *m, const char *name, uint64_t version)
{
    struct mem *mm = m->impl;
    size_t i = 0;
    int found = 0, rv;

    pthread_mutex_lock(&mm->mu);
    if (name_ok(name))
        i = search(mm, name, &found);
    if (!found) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "remove %.*s", NAME_ARG(name));
    } else if (version != 0 && mm->v[i]->version != version) {
        rv = errmsg_fail(
            m->errmsg, DLOG_ECONFLICT, "remove %s: stored version %llu, given %llu", name,
            (unsigned long long)mm->v[i]->version, (unsigned long long)version);
    } else {
        free_stream(mm->v[i]);
        memmove(&mm->v[i], &mm->v[i + 1], (mm->n - i - 1) * sizeof mm->v[0]);
        mm->n--;
        mm->rev++;
        rv = 0;
    }
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_kv_get(struct dlog_meta_ops *m, const char *key, struct bytes *value,
                      uint64_t *version)
{
    struct mem *mm = m->impl;
    struct meta_kv *e;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    e = meta_kv_key_ok(key) ? kvtab_find(&mm->kv, key) : NULL;
    if (e == NULL) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "key %.*s", META_KEY_MAX,
                         key != NULL ? key : "(null)");
    } else {
        bytes_reset(value);
        if (bytes_append(value, e->value.p, e->value.len) != 0)
            rv = errmsg_fail(m->errmsg, DLOG_ENOMEM, "key %s", key);
        else if (version != NULL)
            *version = e->version;
    }
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_kv_put(struct dlog_meta_ops *m, const char *key, const void *value,
                      size_t len, uint64_t *version)
{
    struct mem *mm = m->impl;
    struct meta_kv *e;
    uint64_t next;
    int rv;

    pthread_mutex_lock(&mm->mu);
    if (!meta_kv_key_ok(key) || len > META_VALUE_MAX) {
        rv = errmsg_fail(m->errmsg, DLOG_EINVAL, "put: bad key or value over %d bytes",
                         META_VALUE_MAX);
        goto out;
    }
    e = kvtab_find(&mm->kv, key);
    rv = meta_kv_cas_check(e != NULL, e != NULL ? e->version : 0, *version);
    if (rv != 0) {
        rv = errmsg_fail(m->errmsg, rv, "put %s: stored version %llu, expected %llu", key,
                         (unsigned long long)(e != NULL ? e->version : 0),
                         (unsigned long long)*version);
        goto out;
    }
    next = e != NULL ? e->version + 1 : 1;
    rv = kvtab_set(&mm->kv, key, value, len, next);
    if (rv != 0) {
        rv = errmsg_fail(m->errmsg, rv, "put %s", key);
        goto out;
    }
    *version = next;
    mm->rev++;
out:
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_kv_remove(struct dlog_meta_ops *m, const char *key, uint64_t version)
{
    struct mem *mm = m->impl;
    struct meta_kv *e;
    int rv = 0;

    pthread_mutex_lock(&mm->mu);
    e = meta_kv_key_ok(key) ? kvtab_find(&mm->kv, key) : NULL;
    if (e == NULL) {
        rv = errmsg_fail(m->errmsg, DLOG_ENOTFOUND, "remove key %.*s", META_KEY_MAX,
                         key != NULL ? key : "(null)");
    } else if (version != META_KV_ANY && version != e->version) {
        rv = errmsg_fail(m->errmsg, DLOG_ECONFLICT,
                         "remove key %s: stored version %llu, given %llu", key,
                         (unsigned long long)e->version, (unsigned long long)version);
    } else {
        kvtab_del(&mm->kv, key);
        mm->rev++;
    }
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_kv_list(struct dlog_meta_ops *m, const char *prefix,
                       struct meta_kv **items, size_t *count)
{
    struct mem *mm = m->impl;
    int rv;

    pthread_mutex_lock(&mm->mu);
    rv = kvtab_list(&mm->kv, prefix != NULL ? prefix : "", items, count);
    if (rv != 0)
        rv = errmsg_fail(m->errmsg, rv, "list keys");
    pthread_mutex_unlock(&mm->mu);
    return rv;
}

static int mem_revision(struct dlog_meta_ops *m, uint64_t *rev)
{
    struct mem *mm = m->impl;

    pthread_mutex_lock(&mm->mu);
    *rev = mm->rev;
    pthread_mutex_unlock(&mm->mu);
    return 0;
}

static void mem_close(struct dlog_meta_ops *m)
{
    struct mem *mm;

    if (m == NULL)
        return;
    mm = m->impl;
    for (size_t i = 0; i < mm->n; i++)
        free_stream(mm->v[i]);
    free(mm->v);
    kvtab_free(&mm->kv);
    pthread_mutex_destroy(&mm->mu);
    free(mm);
}

int meta_mem_open(struct dlog_meta_ops **out)
{
    struct mem *mm = calloc(1, sizeof *mm);

    *out = NULL;
    if (mm == NULL)
        return DLOG_ENOMEM;
    if (pthread_mutex_init(&mm->mu, NULL) != 0) {
        free(mm);
        return DLOG_ENOMEM;
    }
    mm->next_id = 1;
    kvtab_init(&mm->kv);
    mm->ops.version = META_OPS_VERSION;
    mm->ops.impl = mm;
    mm->ops.create = mem_create;
    mm->ops.get = mem_get;
    mm->ops.list = mem_list;
    mm->ops.update = mem_update;
    mm->ops.remove = mem_remove;
    mm->ops.close = mem_close;
    mm->ops.kv_get = mem_kv_get;
    mm->ops.kv_put = mem_kv_put;
    mm->ops.kv_remove = mem_kv_remove;
    mm->ops.kv_list = mem_kv_list;
    mm->ops.revision = mem_revision;
    *out = &mm->ops;
    return 0;
}
