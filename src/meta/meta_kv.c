/*
 * Key/value helpers of the metadata stores: see meta_kv.h.
 */
#include "meta/meta_kv.h"

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

int meta_kv_key_ok(const char *key)
{
    size_t len = key == NULL ? 0 : strnlen(key, META_KEY_MAX + 1);
    return len > 0 && len <= META_KEY_MAX;
}

int meta_kv_cas_check(int found, uint64_t stored, uint64_t expect)
{
    if (expect == META_KV_ANY)
        return 0;
    if (expect == META_KV_CREATE)
        return found ? DLOG_ECONFLICT : 0;
    if (!found)
        return DLOG_ENOTFOUND;
    return stored == expect ? 0 : DLOG_ECONFLICT;
}

void meta_kv_list_free(struct meta_kv *items, size_t n)
{
    if (items == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(items[i].key);
        bytes_free(&items[i].value);
    }
    free(items);
}

void kvtab_init(struct kvtab *t)
{
    memset(t, 0, sizeof *t);
}

void kvtab_free(struct kvtab *t)
{
    meta_kv_list_free(t->v, t->n);
    kvtab_init(t);
}

/* Index of key, or where it would go; *found says which. */
static size_t kvtab_search(const struct kvtab *t, const char *key, int *found)
{
    size_t lo = 0, hi = t->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(t->v[mid].key, key);

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

struct meta_kv *kvtab_find(struct kvtab *t, const char *key)
{
    int found;
    size_t i = kvtab_search(t, key, &found);
    return found ? &t->v[i] : NULL;
}

int kvtab_set(struct kvtab *t, const char *key, const void *value, size_t len,
              uint64_t version)
{
    struct bytes nv;
    int found;
    size_t i = kvtab_search(t, key, &found);

    bytes_init(&nv);
    if (bytes_append(&nv, value, len) != 0)
        return DLOG_ENOMEM;
    if (found) {
        bytes_free(&t->v[i].value);
        t->v[i].value = nv;
        t->v[i].version = version;
        return 0;
    }
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 8;
        struct meta_kv *v = realloc(t->v, cap * sizeof *v);
        if (v == NULL) {
            bytes_free(&nv);
            return DLOG_ENOMEM;
        }
        t->v = v;
        t->cap = cap;
    }
    char *k = strdup(key);
    if (k == NULL) {
        bytes_free(&nv);
        return DLOG_ENOMEM;
    }
    memmove(&t->v[i + 1], &t->v[i], (t->n - i) * sizeof t->v[0]);
    t->v[i].key = k;
    t->v[i].value = nv;
    t->v[i].version = version;
    t->n++;
    return 0;
}

void kvtab_del(struct kvtab *t, const char *key)
{
    int found;
    size_t i = kvtab_search(t, key, &found);

    if (!found)
        return;
    free(t->v[i].key);
    bytes_free(&t->v[i].value);
    memmove(&t->v[i], &t->v[i + 1], (t->n - i - 1) * sizeof t->v[0]);
    t->n--;
}

int kvtab_list(struct kvtab *t, const char *prefix, struct meta_kv **items, size_t *count)
{
    size_t plen = strlen(prefix), n = 0, cap = 0;
    struct meta_kv *out = NULL;
    int found;

    *items = NULL;
    *count = 0;
    for (size_t i = kvtab_search(t, prefix, &found); i < t->n; i++) {
        if (strncmp(t->v[i].key, prefix, plen) != 0)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct meta_kv *v = realloc(out, nc * sizeof *v);
            if (v == NULL)
                goto nomem;
            out = v;
            cap = nc;
        }
        out[n].key = strdup(t->v[i].key);
        bytes_init(&out[n].value);
        out[n].version = t->v[i].version;
        if (out[n].key == NULL) {
            n++;
            goto nomem;
        }
        n++;
        if (bytes_append(&out[n - 1].value, t->v[i].value.p, t->v[i].value.len) != 0)
            goto nomem;
    }
    *items = out;
    *count = n;
    return 0;
nomem:
    meta_kv_list_free(out, n);
    return DLOG_ENOMEM;
}
