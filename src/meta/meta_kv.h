/*
 * Helpers shared by the metadata stores' key/value part (meta.h, version 2):
 * key and value checks, and an in-memory sorted table for the "mem:" store.
 */
#ifndef DLOG_META_META_KV_H
#define DLOG_META_META_KV_H

#include "meta/meta.h"

/* 1 if key is 1..META_KEY_MAX bytes (NULL is not a key). */
int meta_kv_key_ok(const char *key);

/*
 * The answer of a compare-and-set against what is stored: found says whether
 * the key exists, stored is its version then. 0 if a put expecting expect
 * may go ahead, else DLOG_ECONFLICT or DLOG_ENOTFOUND.
 */
int meta_kv_cas_check(int found, uint64_t stored, uint64_t expect);

/* An in-memory table of keys in byte order. Not thread-safe: the owner locks. */
struct kvtab {
    struct meta_kv *v; /* sorted by key; each key and value owned */
    size_t n, cap;
};

void kvtab_init(struct kvtab *t);
void kvtab_free(struct kvtab *t);
/* The entry for key, or NULL. The pointer is valid until the next change. */
struct meta_kv *kvtab_find(struct kvtab *t, const char *key);
/* Stores a copy of value under key with version *version (already checked
 * by the caller); 0 or DLOG_ENOMEM (then nothing changed). */
int kvtab_set(struct kvtab *t, const char *key, const void *value, size_t len,
              uint64_t version);
/* Removes key if present. */
void kvtab_del(struct kvtab *t, const char *key);
/* Deep copies of the keys starting with prefix. */
int kvtab_list(struct kvtab *t, const char *prefix, struct meta_kv **items,
               size_t *count);

#endif
