/*
 * Unit tests: the metadata FSM (src/node/meta_fsm*.c) and its commands
 * (src/node/meta_cmd.c), applied directly, without Raft: stream commands
 * against meta_mem.c (same codes, same messages), keyed values, leases on
 * command time only, revisions, corrupt commands and snapshots, and the
 * libraft adapter's buffer ownership. test_meta_fsm_raft.c runs the FSM in
 * 3-server clusters; main() here runs both suites.
 */
#define _GNU_SOURCE /* memmem */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>

#include "base/crc32c.h"
#include "meta/meta.h"
#include "meta_fsm_util.h"

/* ------------------------------------------------------------ helpers */

static struct meta_fsm *fsm_open(void)
{
    struct meta_fsm *fsm = NULL;

    ck_assert_int_eq(meta_fsm_new(&fsm), 0);
    ck_assert_ptr_nonnull(fsm);
    return fsm;
}

static struct meta_fsm_result create_rec(struct meta_fsm *fsm,
                                         const struct meta_stream *s)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_stream_create(&b, 1, s), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result create(struct meta_fsm *fsm, const char *name)
{
    struct meta_stream s;

    util_stream_init(&s, name);
    return create_rec(fsm, &s);
}

static struct meta_fsm_result update(struct meta_fsm *fsm, const struct meta_stream *s)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_stream_update(&b, 1, s), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result sremove(struct meta_fsm *fsm, const char *name,
                                      uint64_t ver)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_stream_remove(&b, 1, name, ver), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result put(struct meta_fsm *fsm, const char *key,
                                  const char *value, uint64_t ver)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, key, value, strlen(value), ver), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result kremove(struct meta_fsm *fsm, const char *key, uint64_t ver)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_kv_remove(&b, 1, key, ver), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result acquire(struct meta_fsm *fsm, uint64_t now, const char *key,
                                      const char *owner, uint64_t ttl)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_lease_acquire(&b, now, key, owner, ttl), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

static struct meta_fsm_result release(struct meta_fsm *fsm, uint64_t now, const char *key,
                                      const char *owner)
{
    struct bytes b;
    struct meta_fsm_result res;

    bytes_init(&b);
    ck_assert_int_eq(meta_cmd_lease_release(&b, now, key, owner), 0);
    res = util_apply(fsm, &b);
    bytes_free(&b);
    return res;
}

/* The value of key as a C string in buf (at most cap - 1 bytes). */
static int get_str(struct meta_fsm *fsm, const char *key, char *buf, size_t cap,
                   uint64_t *ver)
{
    struct bytes v;
    int rv;

    bytes_init(&v);
    rv = meta_fsm_kv_get(fsm, key, &v, ver);
    if (rv == 0) {
        ck_assert_uint_lt(v.len, cap);
        if (v.len > 0) /* an empty value may have no buffer at all */
            memcpy(buf, v.p, v.len);
        buf[v.len] = '\0';
    }
    bytes_free(&v);
    return rv;
}

/* The holder of a lease key as stored, or "" when the key is absent. */
static const char *holder_of(struct meta_fsm *fsm, const char *key, uint64_t *expiry)
{
    static char owner[META_LEASE_OWNER_MAX + 1];
    struct bytes v;

    bytes_init(&v);
    owner[0] = '\0';
    *expiry = 0;
    if (meta_fsm_kv_get(fsm, key, &v, NULL) == 0)
        ck_assert_int_eq(meta_fsm_lease_decode(v.p, v.len, owner, expiry), 0);
    bytes_free(&v);
    return owner;
}

/* Rewrites the CRC trailer of an encoding after a test edited its bytes. */
static void fix_crc(struct bytes *b)
{
    put_u32be(b->p + b->len - 4, crc32c(b->p, b->len - 4));
}

/* ------------------------------------------------------------ streams */

START_TEST(test_stream_create_get_list)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    struct meta_stream s;
    char **names;
    size_t n;

    r = create(fsm, "orders");
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(r.type, META_CMD_STREAM_CREATE);
    ck_assert_uint_eq(r.stream_id, 1);
    ck_assert_uint_eq(r.version, 1);
    ck_assert_str_eq(r.errmsg, "");
    r = create(fsm, "audit");
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.stream_id, 2);

    r = create(fsm, "orders");
    ck_assert_int_eq(r.status, DLOG_EEXIST);
    ck_assert_str_eq(r.errmsg, "create orders: stream already exists");
    ck_assert_uint_eq(r.revision, 2);

    ck_assert_int_eq(meta_fsm_get(fsm, "orders", &s), 0);
    ck_assert_uint_eq(s.id, 1);
    ck_assert_uint_eq(s.version, 1);
    ck_assert_uint_eq(s.cfg.segment_max_bytes, 256ULL << 20);
    meta_stream_clear(&s);
    ck_assert_int_eq(meta_fsm_get(fsm, "nope", &s), DLOG_ENOTFOUND);
    ck_assert_int_eq(meta_fsm_get(fsm, NULL, &s), DLOG_ENOTFOUND);
    ck_assert_int_eq(meta_fsm_get(fsm, "", &s), DLOG_ENOTFOUND);
    ck_assert_ptr_nonnull(strstr(meta_fsm_errmsg(fsm), "get"));

    ck_assert_int_eq(meta_fsm_list(fsm, &names, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(names[0], "audit");
    ck_assert_str_eq(names[1], "orders");
    ck_assert_ptr_null(names[2]);
    dlog_stream_list_free(names);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_stream_update_cas)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    struct meta_stream s, got;

    ck_assert_int_eq(create(fsm, "s").status, 0);
    ck_assert_int_eq(meta_fsm_get(fsm, "s", &s), 0);
    s.epoch = 7;
    r = update(fsm, &s);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.version, 2);

    /* The same record again is stale now. */
    s.epoch = 8;
    r = update(fsm, &s);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_uint_eq(r.version, 2);
    ck_assert_str_eq(r.errmsg, "update s: stored version 2, id 1; given 1, id 1: "
                               "version conflict: the object changed concurrently");
    ck_assert_int_eq(meta_fsm_get(fsm, "s", &got), 0);
    ck_assert_uint_eq(got.epoch, 7);
    ck_assert_uint_eq(got.version, 2);
    meta_stream_clear(&got);

    /* Removed and created again: same name and version, another id. */
    ck_assert_int_eq(sremove(fsm, "s", 0).status, 0);
    ck_assert_int_eq(create(fsm, "s").status, 0);
    s.version = 1;
    ck_assert_int_eq(update(fsm, &s).status, DLOG_ECONFLICT);
    s.id = 2;
    ck_assert_int_eq(update(fsm, &s).status, 0);

    util_stream_init(&s, "ghost");
    ck_assert_int_eq(update(fsm, &s).status, DLOG_ENOTFOUND);
    meta_stream_clear(&s);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_stream_remove_version)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    struct meta_stream s;

    ck_assert_int_eq(create(fsm, "a").status, 0);
    ck_assert_int_eq(meta_fsm_get(fsm, "a", &s), 0);
    ck_assert_int_eq(update(fsm, &s).status, 0);
    r = sremove(fsm, "a", 1);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_uint_eq(r.version, 2);
    r = sremove(fsm, "a", 2);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.stream_id, 1);
    ck_assert_int_eq(sremove(fsm, "a", 0).status, DLOG_ENOTFOUND);
    ck_assert_int_eq(sremove(fsm, "", 0).status, DLOG_ENOTFOUND);
    /* Ids are never reused. */
    r = create(fsm, "a");
    ck_assert_uint_eq(r.stream_id, 2);
    meta_stream_clear(&s);
    meta_fsm_free(fsm);
}
END_TEST

/* A small deterministic generator for the differential test. */
static uint64_t rnd_state;
static unsigned rnd(unsigned n)
{
    rnd_state = rnd_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rnd_state >> 33) % n);
}

/* One random stream operation on both stores; codes and messages must agree. */
static void diff_step(struct dlog_meta_ops *m, struct meta_fsm *fsm)
{
    static const char *const names[] = {"a", "b", "c/d", "e"};
    const char *name = names[rnd(4)];
    struct meta_fsm_result r;
    struct meta_stream s, s2;
    int want;

    switch (rnd(3)) {
    case 0:
        util_stream_init(&s, name);
        s.epoch = rnd(5);
        r = create_rec(fsm, &s);
        want = m->create(m, &s);
        ck_assert_int_eq(r.status, want);
        if (want == 0)
            ck_assert_uint_eq(r.stream_id, s.id);
        break;
    case 1:
        if (m->get(m, name, &s) != 0)
            util_stream_init(&s, name);
        s.epoch += 1;
        if (rnd(4) == 0)
            s.version++;
        if (rnd(4) == 0)
            s.version--;
        if (rnd(4) == 0)
            s.id++;
        ck_assert_int_eq(meta_stream_copy(&s2, &s), 0);
        want = m->update(m, &s2);
        r = update(fsm, &s);
        ck_assert_int_eq(r.status, want);
        if (want == 0)
            ck_assert_uint_eq(r.version, s2.version);
        meta_stream_clear(&s);
        meta_stream_clear(&s2);
        break;
    default: {
        uint64_t ver = rnd(4);

        want = m->remove(m, name, ver);
        r = sremove(fsm, name, ver);
        ck_assert_int_eq(r.status, want);
        break;
    }
    }
    if (want != 0)
        ck_assert_str_eq(r.errmsg, m->errmsg);
}

START_TEST(test_stream_against_mem)
{
    struct meta_fsm *fsm = fsm_open();
    struct dlog_meta_ops *m;
    char **n1, **n2;
    size_t c1, c2;

    ck_assert_int_eq(meta_mem_open(&m), 0);
    rnd_state = 42;
    for (int i = 0; i < 2000; i++)
        diff_step(m, fsm);
    ck_assert_int_eq(m->list(m, &n1, &c1), 0);
    ck_assert_int_eq(meta_fsm_list(fsm, &n2, &c2), 0);
    ck_assert_uint_eq(c1, c2);
    for (size_t i = 0; i < c1; i++) {
        struct meta_stream a, b;

        ck_assert_str_eq(n1[i], n2[i]);
        ck_assert_int_eq(m->get(m, n1[i], &a), 0);
        ck_assert_int_eq(meta_fsm_get(fsm, n1[i], &b), 0);
        ck_assert_uint_eq(a.id, b.id);
        ck_assert_uint_eq(a.version, b.version);
        ck_assert_uint_eq(a.epoch, b.epoch);
        meta_stream_clear(&a);
        meta_stream_clear(&b);
    }
    dlog_stream_list_free(n1);
    dlog_stream_list_free(n2);
    m->close(m);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_encode_args)
{
    struct meta_stream s;
    struct bytes b;

    bytes_init(&b);
    util_stream_init(&s, "");
    /* meta_mem.c says DLOG_EINVAL for a bad name at create: so does encoding. */
    ck_assert_int_eq(meta_cmd_stream_create(&b, 1, &s), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_stream_create(&b, 1, NULL), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_stream_remove(&b, 1, NULL, 0), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, NULL, "x", 1, 0), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "k", NULL, 1, 0), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_kv_remove(&b, 1, NULL, 0), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_lease_acquire(&b, 1, "k", NULL, 1), DLOG_EINVAL);
    ck_assert_int_eq(meta_cmd_lease_release(&b, 1, NULL, "o"), DLOG_EINVAL);
    ck_assert_uint_eq(b.len, 0);
    ck_assert_str_eq(meta_cmd_type_name(META_CMD_KV_PUT), "KV_PUT");
    ck_assert_str_eq(meta_cmd_type_name(0), "?");
    ck_assert_str_eq(meta_cmd_type_name(99), "?");
    bytes_free(&b);
}
END_TEST

/* ----------------------------------------------------------------- kv */

START_TEST(test_kv_put_cas)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    char buf[64];
    uint64_t ver;

    r = put(fsm, "ns/limits", "v1", META_KV_CREATE);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.version, 1);
    r = put(fsm, "ns/limits", "again", META_KV_CREATE);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_uint_eq(r.version, 1);
    r = put(fsm, "ns/limits", "v2", META_KV_ANY);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.version, 2);
    r = put(fsm, "ns/limits", "v3", 2);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.version, 3);
    r = put(fsm, "ns/limits", "stale", 2);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_uint_eq(r.version, 3);
    ck_assert_str_eq(r.errmsg, "kv_put ns/limits: stored version 3, given 2: "
                               "version conflict: the object changed concurrently");
    ck_assert_int_eq(get_str(fsm, "ns/limits", buf, sizeof buf, &ver), 0);
    ck_assert_str_eq(buf, "v3");
    ck_assert_uint_eq(ver, 3);

    /* Expecting a version of a key that does not exist. */
    ck_assert_int_eq(put(fsm, "rl/x", "v", 5).status, DLOG_ENOTFOUND);
    ck_assert_int_eq(get_str(fsm, "rl/x", buf, sizeof buf, NULL), DLOG_ENOTFOUND);
    /* META_KV_ANY creates. */
    r = put(fsm, "rl/x", "", META_KV_ANY);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.version, 1);
    ck_assert_int_eq(get_str(fsm, "rl/x", buf, sizeof buf, &ver), 0);
    ck_assert_str_eq(buf, "");
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_kv_limits)
{
    struct meta_fsm *fsm = fsm_open();
    char key[META_KEY_MAX + 2];
    char *big = malloc(META_VALUE_MAX + 1);
    struct meta_fsm_result r;
    struct bytes b;

    ck_assert_ptr_nonnull(big);
    memset(big, 'v', META_VALUE_MAX + 1);
    memset(key, 'k', sizeof key);
    key[META_KEY_MAX] = '\0';
    bytes_init(&b);

    ck_assert_int_eq(put(fsm, key, "ok", META_KV_ANY).status, 0);
    key[META_KEY_MAX] = 'k';
    key[META_KEY_MAX + 1] = '\0';
    r = put(fsm, key, "long key", META_KV_ANY);
    ck_assert_int_eq(r.status, DLOG_EINVAL);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "bad key"));
    ck_assert_int_eq(put(fsm, "", "empty key", META_KV_ANY).status, DLOG_EINVAL);

    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "big", big, META_VALUE_MAX, 0), 0);
    ck_assert_int_eq(util_apply(fsm, &b).status, 0);
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "big2", big, META_VALUE_MAX + 1, 0), 0);
    r = util_apply(fsm, &b);
    ck_assert_int_eq(r.status, DLOG_EINVAL);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "65537 bytes"));

    /* A NUL inside a key can only come from a foreign encoder. */
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "ab", "v", 1, 0), 0);
    ck_assert_ptr_nonnull(memchr(b.p, 'b', b.len));
    *(uint8_t *)memchr(b.p, 'b', b.len) = '\0';
    fix_crc(&b);
    ck_assert_int_eq(util_apply(fsm, &b).status, DLOG_EINVAL);

    ck_assert_uint_eq(meta_fsm_revision(fsm), 2);
    bytes_free(&b);
    free(big);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_kv_remove)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    uint64_t ver;
    char buf[16];

    ck_assert_int_eq(put(fsm, "k", "1", META_KV_CREATE).status, 0);
    ck_assert_int_eq(put(fsm, "k", "2", 1).status, 0);
    r = kremove(fsm, "k", 1);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_uint_eq(r.version, 2);
    ck_assert_int_eq(kremove(fsm, "k", META_KV_CREATE).status, DLOG_ECONFLICT);
    ck_assert_int_eq(kremove(fsm, "k", 2).status, 0);
    ck_assert_int_eq(kremove(fsm, "k", META_KV_ANY).status, DLOG_ENOTFOUND);
    ck_assert_int_eq(kremove(fsm, "", META_KV_ANY).status, DLOG_ENOTFOUND);
    /* Created again: starts over at version 1. */
    ck_assert_int_eq(put(fsm, "k", "3", META_KV_CREATE).version, 1);
    ck_assert_int_eq(kremove(fsm, "k", META_KV_ANY).status, 0);
    ck_assert_int_eq(get_str(fsm, "k", buf, sizeof buf, &ver), DLOG_ENOTFOUND);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_kv_list_prefix)
{
    static const char *const keys[] = {"b", "a/c", "ab", "a/b", "a", "a/\xc3\xa9", "a0"};
    struct meta_fsm *fsm = fsm_open();
    struct meta_kv *items;
    size_t n;

    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_int_eq(put(fsm, keys[i], keys[i], META_KV_CREATE).status, 0);
    ck_assert_int_eq(put(fsm, "a/b", "x", 1).status, 0);

    ck_assert_int_eq(meta_fsm_kv_list(fsm, "a/", &items, &n), 0);
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(items[0].key, "a/b");
    ck_assert_uint_eq(items[0].version, 2);
    ck_assert_uint_eq(items[0].value.len, 1);
    ck_assert_int_eq(items[0].value.p[0], 'x');
    ck_assert_str_eq(items[1].key, "a/c");
    ck_assert_str_eq(items[2].key, "a/\xc3\xa9"); /* bytes above 0x7f sort last */
    meta_kv_list_free(items, n);

    ck_assert_int_eq(meta_fsm_kv_list(fsm, "", &items, &n), 0);
    ck_assert_uint_eq(n, 7);
    const char *order[] = {"a", "a/b", "a/c", "a/\xc3\xa9", "a0", "ab", "b"};
    for (size_t i = 0; i < n; i++)
        ck_assert_str_eq(items[i].key, order[i]);
    meta_kv_list_free(items, n);

    ck_assert_int_eq(meta_fsm_kv_list(fsm, "zz", &items, &n), 0);
    ck_assert_uint_eq(n, 0);
    ck_assert_ptr_null(items);
    ck_assert_int_eq(meta_fsm_kv_list(fsm, "ab", &items, &n), 0);
    ck_assert_uint_eq(n, 1);
    meta_kv_list_free(items, n);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_revision)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_stream s;
    uint64_t rev = 0;

    ck_assert_uint_eq(meta_fsm_revision(fsm), 0);
    /* Each success adds one... */
    ck_assert_uint_eq(create(fsm, "s").revision, ++rev);
    ck_assert_uint_eq(put(fsm, "k", "v", META_KV_CREATE).revision, ++rev);
    ck_assert_uint_eq(acquire(fsm, 10, "lease/x", "A", 5).revision, ++rev);
    ck_assert_uint_eq(acquire(fsm, 11, "lease/x", "A", 5).revision, ++rev);
    ck_assert_int_eq(meta_fsm_get(fsm, "s", &s), 0);
    ck_assert_uint_eq(update(fsm, &s).revision, ++rev);
    /* ...each failure nothing. */
    ck_assert_uint_eq(create(fsm, "s").revision, rev);
    ck_assert_uint_eq(update(fsm, &s).revision, rev);
    ck_assert_uint_eq(put(fsm, "k", "v", META_KV_CREATE).revision, rev);
    ck_assert_uint_eq(kremove(fsm, "nope", META_KV_ANY).revision, rev);
    ck_assert_uint_eq(acquire(fsm, 12, "lease/x", "B", 5).revision, rev);
    ck_assert_uint_eq(release(fsm, 12, "lease/x", "B").revision, rev);
    ck_assert_uint_eq(sremove(fsm, "s", 1).revision, rev);
    ck_assert_uint_eq(meta_fsm_revision(fsm), rev);
    ck_assert_uint_eq(release(fsm, 12, "lease/x", "A").revision, ++rev);
    ck_assert_uint_eq(sremove(fsm, "s", 0).revision, ++rev);
    ck_assert_uint_eq(kremove(fsm, "k", 1).revision, ++rev);
    ck_assert_uint_eq(meta_fsm_revision(fsm), 8);
    meta_stream_clear(&s);
    meta_fsm_free(fsm);
}
END_TEST

/* -------------------------------------------------------------- leases */

START_TEST(test_lease_acquire_renew_expire)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    uint64_t expiry;

    r = acquire(fsm, 1000, "lease/coord", "A", 100);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.holder, "A");
    ck_assert_uint_eq(r.expiry_ms, 1100);
    ck_assert_uint_eq(r.version, 1);

    r = acquire(fsm, 1050, "lease/coord", "B", 100);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_str_eq(r.holder, "A");
    ck_assert_uint_eq(r.expiry_ms, 1100);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "held by A until 1100"));

    /* Renewal extends from the command's time. */
    r = acquire(fsm, 1080, "lease/coord", "A", 100);
    ck_assert_int_eq(r.status, 0);
    ck_assert_uint_eq(r.expiry_ms, 1180);
    ck_assert_uint_eq(r.version, 2);
    ck_assert_int_eq(acquire(fsm, 1179, "lease/coord", "B", 100).status, DLOG_ECONFLICT);

    /* Expired at exactly its expiry: B takes it over. */
    r = acquire(fsm, 1180, "lease/coord", "B", 50);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.holder, "B");
    ck_assert_uint_eq(r.expiry_ms, 1230);
    ck_assert_uint_eq(r.version, 3);
    ck_assert_str_eq(holder_of(fsm, "lease/coord", &expiry), "B");
    ck_assert_uint_eq(expiry, 1230);

    /* Only now_ms counts: a command stamped earlier sees B's lease held even
     * though the wall clock of this process is far past every expiry. */
    r = acquire(fsm, 1200, "lease/coord", "A", 100);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_str_eq(r.holder, "B");
    /* And an old lease is free to a command stamped after it. */
    ck_assert_int_eq(acquire(fsm, 5000, "lease/other", "C", 10).status, 0);
    ck_assert_int_eq(acquire(fsm, 5010, "lease/other", "A", 10).status, 0);
    ck_assert_str_eq(holder_of(fsm, "lease/other", &expiry), "A");
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_lease_release)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    uint64_t expiry;

    ck_assert_int_eq(release(fsm, 10, "lease/x", "A").status, DLOG_ENOTFOUND);
    ck_assert_int_eq(acquire(fsm, 10, "lease/x", "A", 100).status, 0);
    r = release(fsm, 20, "lease/x", "B");
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_str_eq(r.holder, "A");
    ck_assert_uint_eq(r.expiry_ms, 110);
    r = release(fsm, 20, "lease/x", "A");
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.holder, "");
    ck_assert_str_eq(holder_of(fsm, "lease/x", &expiry), "");
    /* Released: B takes it at once, long before A's expiry. */
    ck_assert_int_eq(acquire(fsm, 21, "lease/x", "B", 100).status, 0);
    /* An expired lease may still be released by its holder... */
    ck_assert_int_eq(release(fsm, 500, "lease/x", "B").status, 0);
    /* ...but not by another owner. */
    ck_assert_int_eq(acquire(fsm, 600, "lease/x", "C", 1).status, 0);
    ck_assert_int_eq(release(fsm, 700, "lease/x", "A").status, DLOG_ECONFLICT);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_lease_bad_args)
{
    struct meta_fsm *fsm = fsm_open();
    char owner[META_LEASE_OWNER_MAX + 2];
    struct meta_fsm_result r;

    memset(owner, 'o', sizeof owner);
    owner[META_LEASE_OWNER_MAX] = '\0';
    ck_assert_int_eq(acquire(fsm, 1, "l", owner, 1).status, 0);
    owner[META_LEASE_OWNER_MAX] = 'o';
    owner[META_LEASE_OWNER_MAX + 1] = '\0';
    ck_assert_int_eq(acquire(fsm, 1, "l2", owner, 1).status, DLOG_EINVAL);
    ck_assert_int_eq(acquire(fsm, 1, "l2", "", 1).status, DLOG_EINVAL);
    ck_assert_int_eq(acquire(fsm, 1, "", "A", 1).status, DLOG_EINVAL);
    r = acquire(fsm, 1, "l2", "A", 0);
    ck_assert_int_eq(r.status, DLOG_EINVAL);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "ttl"));
    ck_assert_int_eq(acquire(fsm, UINT64_MAX - 5, "l2", "A", 6).status, DLOG_EINVAL);
    ck_assert_int_eq(acquire(fsm, UINT64_MAX - 5, "l2", "A", 5).status, 0);
    ck_assert_uint_eq(meta_fsm_revision(fsm), 2);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_lease_not_a_lease)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    char owner[META_LEASE_OWNER_MAX + 1];
    uint64_t expiry;

    ck_assert_int_eq(put(fsm, "ns/limits", "plain value", META_KV_CREATE).status, 0);
    r = acquire(fsm, 1, "ns/limits", "A", 10);
    ck_assert_int_eq(r.status, DLOG_ECONFLICT);
    ck_assert_str_eq(r.holder, "");
    ck_assert_ptr_nonnull(strstr(r.errmsg, "not a lease"));
    ck_assert_int_eq(release(fsm, 1, "ns/limits", "A").status, DLOG_ECONFLICT);
    ck_assert_int_eq(meta_fsm_lease_decode("plain", 5, owner, &expiry), DLOG_ECORRUPT);
    ck_assert_int_eq(meta_fsm_lease_decode(NULL, 0, owner, &expiry), DLOG_ECORRUPT);

    /* A lease is a key like any other: a CAS put can overwrite it. */
    ck_assert_int_eq(acquire(fsm, 1, "lease/y", "A", 10).status, 0);
    ck_assert_int_eq(put(fsm, "lease/y", "x", 1).status, 0);
    ck_assert_int_eq(acquire(fsm, 2, "lease/y", "B", 10).status, DLOG_ECONFLICT);
    meta_fsm_free(fsm);
}
END_TEST

/* -------------------------------------------------------- bad commands */

/* One command of every type, appended to *all with their offsets. */
static size_t every_command(struct bytes *all, size_t *off)
{
    struct meta_stream s;
    struct meta_segment g = {.seq = 1, .epoch = 1};
    size_t n = 0;

    util_stream_init(&s, "s");
    ck_assert_int_eq(meta_stream_push_segment(&s, &g), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_stream_create(all, 7, &s), 0);
    off[n++] = all->len;
    s.id = 1;
    s.version = 1;
    ck_assert_int_eq(meta_cmd_stream_update(all, 7, &s), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_kv_put(all, 7, "k", "value", 5, META_KV_CREATE), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_lease_acquire(all, 7, "l", "owner", 100), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_lease_release(all, 8, "l", "owner"), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_kv_remove(all, 8, "k", 1), 0);
    off[n++] = all->len;
    ck_assert_int_eq(meta_cmd_stream_remove(all, 8, "s", 2), 0);
    off[n] = all->len;
    /* A byte after the last command, for the "trailing byte" case. */
    ck_assert_int_eq(bytes_put_u8(all, 0), 0);
    meta_stream_clear(&s);
    return n;
}

START_TEST(test_corrupt_commands)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    struct bytes all, before, after;
    size_t off[16], n;

    bytes_init(&all);
    n = every_command(&all, off);
    ck_assert_uint_eq(n, 7);
    /* Some state for the corrupt commands to leave alone. */
    ck_assert_int_eq(create(fsm, "s").status, 0);
    ck_assert_int_eq(put(fsm, "k", "v", META_KV_CREATE).status, 0);
    util_snapshot(fsm, &before);

    for (size_t c = 0; c < n; c++) {
        uint8_t *p = all.p + off[c];
        size_t len = off[c + 1] - off[c];

        /* Every single-bit flip. */
        for (size_t bit = 0; bit < len * 8; bit++) {
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
            ck_assert_int_eq(meta_fsm_apply(fsm, p, len, &r), 0);
            ck_assert_int_eq(r.status, DLOG_ECORRUPT);
            ck_assert_int_eq(r.type, 0);
            p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        }
        /* Every truncation, and a trailing byte. */
        for (size_t l = 0; l < len; l++) {
            ck_assert_int_eq(meta_fsm_apply(fsm, p, l, &r), 0);
            ck_assert_int_eq(r.status, DLOG_ECORRUPT);
        }
        ck_assert_int_eq(meta_fsm_apply(fsm, p, len + 1, &r), 0);
        ck_assert_int_eq(r.status, DLOG_ECORRUPT);
    }
    ck_assert_int_eq(meta_fsm_apply(fsm, NULL, 0, &r), 0);
    ck_assert_int_eq(r.status, DLOG_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(r.errmsg, "checksum"));

    util_snapshot(fsm, &after);
    ck_assert_uint_eq(before.len, after.len);
    ck_assert_mem_eq(before.p, after.p, before.len);
    ck_assert_uint_eq(meta_fsm_revision(fsm), 2);
    bytes_free(&before);
    bytes_free(&after);
    bytes_free(&all);
    meta_fsm_free(fsm);
}
END_TEST

START_TEST(test_unknown_commands)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_fsm_result r;
    struct meta_stream s;
    struct bytes b, rec;
    uint8_t *p;

    bytes_init(&b);
    bytes_init(&rec);
    /* Intact bytes of a type or format this code does not know. */
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "k", "v", 1, 0), 0);
    b.p[1] = 99;
    fix_crc(&b);
    r = util_apply(fsm, &b);
    ck_assert_int_eq(r.status, DLOG_EPROTO);
    ck_assert_int_eq(meta_cmd_kv_put(&b, 1, "k", "v", 1, 0), 0);
    b.p[0] = 2;
    fix_crc(&b);
    ck_assert_int_eq(util_apply(fsm, &b).status, DLOG_EPROTO);

    /* An intact command carrying a torn stream record. */
    util_stream_init(&s, "torn");
    ck_assert_int_eq(meta_stream_encode(&s, &rec), 0);
    ck_assert_int_eq(meta_cmd_stream_create(&b, 1, &s), 0);
    p = memmem(b.p, b.len, rec.p, rec.len);
    ck_assert_ptr_nonnull(p);
    p[rec.len - 1] ^= 1; /* the record's own CRC */
    fix_crc(&b);
    r = util_apply(fsm, &b);
    ck_assert_int_eq(r.status, DLOG_ECORRUPT);
    ck_assert_int_eq(r.type, META_CMD_STREAM_CREATE);
    ck_assert_int_eq(meta_fsm_get(fsm, "torn", &s), DLOG_ENOTFOUND);
    ck_assert_uint_eq(meta_fsm_revision(fsm), 0);
    bytes_free(&rec);
    bytes_free(&b);
    meta_fsm_free(fsm);
}
END_TEST

/* ----------------------------------------------------------- snapshots */

/* A state with streams (one with segments), keys, a lease and a gap in ids. */
static struct meta_fsm *populated(void)
{
    struct meta_fsm *fsm = fsm_open();
    struct meta_segment g = {.seq = 3, .epoch = 2, .entries = 10, .sealed_ms = 5};
    struct meta_stream s;

    ck_assert_int_eq(create(fsm, "b").status, 0);
    ck_assert_int_eq(create(fsm, "gone").status, 0);
    ck_assert_int_eq(create(fsm, "a").status, 0);
    ck_assert_int_eq(sremove(fsm, "gone", 0).status, 0);
    ck_assert_int_eq(meta_fsm_get(fsm, "b", &s), 0);
    ck_assert_int_eq(meta_stream_push_segment(&s, &g), 0);
    ck_assert_int_eq(update(fsm, &s).status, 0);
    meta_stream_clear(&s);
    ck_assert_int_eq(put(fsm, "ns/limits", "{}", META_KV_CREATE).status, 0);
    ck_assert_int_eq(put(fsm, "empty", "", META_KV_CREATE).status, 0);
    ck_assert_int_eq(acquire(fsm, 100, "lease/coord", "proxy-1", 1000).status, 0);
    return fsm;
}

START_TEST(test_snapshot_roundtrip)
{
    struct meta_fsm *a = populated(), *b = fsm_open(), *empty = fsm_open();
    struct meta_stream s;
    struct bytes snap;
    uint64_t expiry;

    util_snapshot(a, &snap);
    ck_assert(!util_same_state(a, b));
    ck_assert_int_eq(create(b, "other").status, 0); /* replaced whole */
    ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), 0);
    ck_assert(util_same_state(a, b));
    ck_assert_uint_eq(meta_fsm_revision(b), meta_fsm_revision(a));
    ck_assert_int_eq(meta_fsm_get(b, "other", &s), DLOG_ENOTFOUND);
    ck_assert_int_eq(meta_fsm_get(b, "b", &s), 0);
    ck_assert_uint_eq(s.nseg, 1);
    ck_assert_uint_eq(s.segs[0].entries, 10);
    ck_assert_uint_eq(s.version, 2);
    meta_stream_clear(&s);
    ck_assert_str_eq(holder_of(b, "lease/coord", &expiry), "proxy-1");
    ck_assert_uint_eq(expiry, 1100);

    /* The id counter came along: both give the next stream id 4. */
    ck_assert_uint_eq(create(a, "c").stream_id, 4);
    ck_assert_uint_eq(create(b, "c").stream_id, 4);
    ck_assert(util_same_state(a, b));

    /* An empty state round-trips too. */
    bytes_reset(&snap);
    ck_assert_int_eq(meta_fsm_snapshot(empty, &snap), 0);
    ck_assert_int_eq(meta_fsm_restore(a, snap.p, snap.len), 0);
    ck_assert(util_same_state(a, empty));
    ck_assert_uint_eq(create(a, "x").stream_id, 1);
    bytes_free(&snap);
    meta_fsm_free(a);
    meta_fsm_free(b);
    meta_fsm_free(empty);
}
END_TEST

START_TEST(test_snapshot_corrupt)
{
    struct meta_fsm *a = populated(), *b = fsm_open();
    struct bytes snap, before, after;
    uint8_t *ka, *kb;

    util_snapshot(a, &snap);
    ck_assert_int_eq(put(b, "mine", "1", META_KV_CREATE).status, 0);
    util_snapshot(b, &before);

    for (size_t bit = 0; bit < snap.len * 8; bit++) {
        snap.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), DLOG_ECORRUPT);
        snap.p[bit / 8] ^= (uint8_t)(1u << (bit % 8));
    }
    for (size_t l = 0; l < snap.len; l++)
        ck_assert_int_ne(meta_fsm_restore(b, snap.p, l), 0);

    /* Intact but inconsistent: two keys out of order. */
    ka = memmem(snap.p, snap.len,
                "\x05"
                "empty",
                6);
    kb = memmem(snap.p, snap.len, "\x09ns/limits", 10);
    ck_assert_ptr_nonnull(ka);
    ck_assert_ptr_nonnull(kb);
    ka[1] = 'z';
    fix_crc(&snap);
    ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), DLOG_ECORRUPT);
    ka[1] = 'e';
    /* Intact, of a format this code does not know. */
    snap.p[4] = 2;
    fix_crc(&snap);
    ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), DLOG_EPROTO);
    snap.p[4] = 1;
    snap.p[0] = 'X';
    fix_crc(&snap);
    ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), DLOG_ECORRUPT);
    snap.p[0] = 'D';
    fix_crc(&snap);

    /* Every failed restore left b as it was; the good one replaces it. */
    util_snapshot(b, &after);
    ck_assert_uint_eq(after.len, before.len);
    ck_assert_mem_eq(after.p, before.p, before.len);
    ck_assert_int_eq(meta_fsm_restore(b, snap.p, snap.len), 0);
    ck_assert(util_same_state(a, b));
    bytes_free(&after);
    bytes_free(&before);
    bytes_free(&snap);
    meta_fsm_free(a);
    meta_fsm_free(b);
}
END_TEST

/* ------------------------------------------------------- raft adapter */

START_TEST(test_raft_adapter)
{
    struct meta_fsm *a = populated(), *b = fsm_open();
    struct raft_fsm ra, rb;
    struct raft_buffer *bufs, cmd, copy;
    struct meta_fsm_result *res;
    unsigned n;
    void *result;
    struct bytes b0;

    meta_fsm_raft_init(&ra, a);
    meta_fsm_raft_init(&rb, b);
    ck_assert_int_eq(ra.version, 2);
    ck_assert_ptr_null(ra.snapshot_async);

    /* Snapshot: the buffers stay the FSM's until finalize frees them. */
    ck_assert_int_eq(ra.snapshot(&ra, &bufs, &n), 0);
    ck_assert_uint_eq(n, 1);
    /* Restore takes a raft_malloc'd buffer and frees it on success (under
     * ASan a leak or a double free here fails the test). */
    ck_assert_int_eq(meta_fsm_raft_buffer(bufs[0].base, bufs[0].len, &copy), 0);
    ck_assert_int_eq(rb.restore(&rb, &copy), 0);
    ck_assert(util_same_state(a, b));
    /* On failure the caller keeps and frees the buffer. */
    ck_assert_int_eq(meta_fsm_raft_buffer(bufs[0].base, bufs[0].len - 1, &copy), 0);
    ck_assert_int_eq(rb.restore(&rb, &copy), RAFT_CORRUPT);
    raft_free(copy.base);
    ck_assert_int_eq(ra.snapshot_finalize(&ra, &bufs, &n), 0);
    ck_assert_ptr_null(bufs);
    ck_assert_uint_eq(n, 0);

    /* Apply: outcomes return 0, with the result in the FSM's slot. */
    bytes_init(&b0);
    ck_assert_int_eq(meta_cmd_kv_put(&b0, 1, "ns/limits", "x", 1, META_KV_CREATE), 0);
    cmd.base = b0.p;
    cmd.len = b0.len;
    ck_assert_int_eq(rb.apply(&rb, &cmd, &result), 0);
    res = result;
    ck_assert_int_eq(res->status, DLOG_ECONFLICT);
    ck_assert_int_eq(res->type, META_CMD_KV_PUT);
    cmd.len = 3;
    ck_assert_int_eq(rb.apply(&rb, &cmd, &result), 0);
    ck_assert_ptr_eq(result, res);
    ck_assert_int_eq(res->status, DLOG_ECORRUPT);
    bytes_free(&b0);
    meta_fsm_free(a);
    meta_fsm_free(b);
}
END_TEST

Suite *meta_fsm_suite(void)
{
    Suite *s = suite_create("meta_fsm");
    TCase *tc = tcase_create("streams");

    tcase_add_test(tc, test_stream_create_get_list);
    tcase_add_test(tc, test_stream_update_cas);
    tcase_add_test(tc, test_stream_remove_version);
    tcase_add_test(tc, test_stream_against_mem);
    tcase_add_test(tc, test_encode_args);
    suite_add_tcase(s, tc);

    tc = tcase_create("kv");
    tcase_add_test(tc, test_kv_put_cas);
    tcase_add_test(tc, test_kv_limits);
    tcase_add_test(tc, test_kv_remove);
    tcase_add_test(tc, test_kv_list_prefix);
    tcase_add_test(tc, test_revision);
    suite_add_tcase(s, tc);

    tc = tcase_create("lease");
    tcase_add_test(tc, test_lease_acquire_renew_expire);
    tcase_add_test(tc, test_lease_release);
    tcase_add_test(tc, test_lease_bad_args);
    tcase_add_test(tc, test_lease_not_a_lease);
    suite_add_tcase(s, tc);

    tc = tcase_create("bytes");
    tcase_add_test(tc, test_corrupt_commands);
    tcase_add_test(tc, test_unknown_commands);
    tcase_add_test(tc, test_snapshot_roundtrip);
    tcase_add_test(tc, test_snapshot_corrupt);
    tcase_add_test(tc, test_raft_adapter);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(meta_fsm_suite());
    int failed;

    srunner_add_suite(sr, meta_fsm_raft_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
