/*
 * Leases of the metadata FSM: a lease is a key whose value is a lease
 * record naming its holder and the time it expires.
 *
 * Time is the now_ms of the command being applied, the leader's clock when
 * it proposed the command (DESIGN.md, "Cluster mode": "Time-dependent rules
 * (leases) use the leader's timestamp carried inside the command, never the
 * applying node's clock, so every replica applies the same result"). A
 * lease is held while now_ms < expiry_ms.
 *
 * Acquire succeeds when the key is absent, when the lease has expired at
 * the command's now_ms, or when the caller already holds it (a renewal);
 * the lease then runs until now_ms + ttl_ms. Otherwise DLOG_ECONFLICT names
 * the holder. So at any point of the log at most one owner holds an
 * unexpired lease on a key. Release deletes the key if the caller holds it
 * (expired or not).
 *
 * Lease record, version 1:
 *   u8 LEASE_TAG, u8 LEASE_VERSION, u64be expiry_ms, owner (the rest:
 *   1..META_LEASE_OWNER_MAX bytes, no NUL)
 */
#include "node/meta_fsm_int.h"

#include <stdio.h>
#include <string.h>

#include <dlog/err.h>

#define LEASE_TAG     0xD1
#define LEASE_VERSION 1
#define LEASE_HEAD    10

static int owner_ok(const uint8_t *p, size_t len)
{
    return len > 0 && len <= META_LEASE_OWNER_MAX && memchr(p, '\0', len) == NULL;
}

int meta_fsm_lease_decode(const void *p, size_t len, char *owner, uint64_t *expiry_ms)
{
    const uint8_t *b = p;

    if (b == NULL || len <= LEASE_HEAD || b[0] != LEASE_TAG || b[1] != LEASE_VERSION ||
        !owner_ok(b + LEASE_HEAD, len - LEASE_HEAD))
        return DLOG_ECORRUPT;
    *expiry_ms = get_u64be(b + 2);
    memcpy(owner, b + LEASE_HEAD, len - LEASE_HEAD);
    owner[len - LEASE_HEAD] = '\0';
    return 0;
}

/* The lease record for owner until expiry_ms into buf (LEASE_HEAD +
 * META_LEASE_OWNER_MAX bytes); returns its length. */
static size_t lease_encode(uint8_t *buf, const struct meta_cmd_slice *owner,
                           uint64_t expiry_ms)
{
    buf[0] = LEASE_TAG;
    buf[1] = LEASE_VERSION;
    put_u64be(buf + 2, expiry_ms);
    memcpy(buf + LEASE_HEAD, owner->p, owner->len);
    return LEASE_HEAD + owner->len;
}

static int same_owner(const char *holder, const struct meta_cmd_slice *owner)
{
    return strlen(holder) == owner->len && memcmp(holder, owner->p, owner->len) == 0;
}

/* The key's lease into res->holder and res->expiry_ms, or the failure
 * "not a lease" (DLOG_ECONFLICT: it cannot be taken, and waiting will not
 * help). */
static int read_lease(const struct fsm_kv *e, const char *what,
                      struct meta_fsm_result *res)
{
    res->version = e->version;
    if (meta_fsm_lease_decode(e->value, e->len, res->holder, &res->expiry_ms) != 0) {
        res->holder[0] = '\0';
        res->expiry_ms = 0;
        return fsm_fail(res, DLOG_ECONFLICT,
                        "%s %s: the key holds a value that is not a lease", what, e->key);
    }
    return 0;
}

static int check_acquire(const struct meta_cmd *cmd, struct meta_fsm_result *res)
{
    if (!fsm_key_ok(cmd->key.p, cmd->key.len))
        return fsm_fail(res, DLOG_EINVAL,
                        "lease_acquire: bad key (%zu bytes; 1..%d, no NUL)", cmd->key.len,
                        META_KEY_MAX);
    if (!owner_ok(cmd->owner.p, cmd->owner.len))
        return fsm_fail(res, DLOG_EINVAL,
                        "lease_acquire %.*s: bad owner (%zu bytes; 1..%d, no NUL)",
                        SLICE_ARG(cmd->key), cmd->owner.len, META_LEASE_OWNER_MAX);
    if (cmd->ttl_ms == 0 || cmd->ttl_ms > UINT64_MAX - cmd->now_ms)
        return fsm_fail(res, DLOG_EINVAL, "lease_acquire %.*s: bad ttl %llu ms",
                        SLICE_ARG(cmd->key), (unsigned long long)cmd->ttl_ms);
    return 0;
}

int fsm_apply_lease_acquire(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res)
{
    uint8_t rec[LEASE_HEAD + META_LEASE_OWNER_MAX];
    uint64_t expiry = cmd->now_ms + cmd->ttl_ms, version = 1;
    size_t i, len;
    int found, rv;

    rv = check_acquire(cmd, res);
    if (rv != 0)
        return rv;
    i = fsm_kv_find(st, cmd->key.p, cmd->key.len, &found);
    if (found) {
        const struct fsm_kv *e = &st->kv[i];

        rv = read_lease(e, "lease_acquire", res);
        if (rv != 0)
            return rv;
        if (!same_owner(res->holder, &cmd->owner) && cmd->now_ms < res->expiry_ms)
            return fsm_fail(res, DLOG_ECONFLICT,
                            "lease_acquire %s: held by %s until %llu, now %llu", e->key,
                            res->holder, (unsigned long long)res->expiry_ms,
                            (unsigned long long)cmd->now_ms);
        version = e->version + 1;
    }
    len = lease_encode(rec, &cmd->owner, expiry);
    rv = fsm_kv_store(st, i, found, &cmd->key, rec, len, version);
    if (rv != 0)
        return fsm_fail(res, rv, "lease_acquire %.*s", SLICE_ARG(cmd->key));
    memcpy(res->holder, cmd->owner.p, cmd->owner.len);
    res->holder[cmd->owner.len] = '\0';
    res->expiry_ms = expiry;
    res->version = version;
    return 0;
}

int fsm_apply_lease_release(struct fsm_state *st, const struct meta_cmd *cmd,
                            struct meta_fsm_result *res)
{
    const struct fsm_kv *e;
    size_t i = 0;
    int found = 0, rv;

    if (fsm_key_ok(cmd->key.p, cmd->key.len))
        i = fsm_kv_find(st, cmd->key.p, cmd->key.len, &found);
    if (!found)
        return fsm_fail(res, DLOG_ENOTFOUND, "lease_release %.*s", SLICE_ARG(cmd->key));
    e = &st->kv[i];
    rv = read_lease(e, "lease_release", res);
    if (rv != 0)
        return rv;
    if (!same_owner(res->holder, &cmd->owner))
        return fsm_fail(res, DLOG_ECONFLICT, "lease_release %s: held by %s until %llu",
                        e->key, res->holder, (unsigned long long)res->expiry_ms);
    fsm_kv_erase(st, i);
    res->holder[0] = '\0';
    res->expiry_ms = 0;
    res->version = 0;
    return 0;
}
