/*
 * test-owner: stream ownership among proxies (src/proxy/owner.c) on an
 * in-memory metadata store and the fake clock, rounds run by hand: claims,
 * redirects, takeover only after a silent lease, the loser noticing, the
 * user epoch, graceful release, and the rules that keep a proxy from
 * calling others dead when it could not look. Exit status 0 when all
 * checks pass, 1 otherwise.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "meta/meta.h"
#include "proxy/owner.h"

#include <dlog/err.h>

#define LEASE_MS 3000
#define STEP_MS  750 /* a round: a quarter of the lease */

static uint64_t fake_now;
static struct dlog_meta_ops *meta;
static char errmsg[DLOG_ERRMSG_SIZE];

static void setup(void)
{
    fake_now = 1000 * NS_PER_SEC;
    clock_set_fake(&fake_now);
    ck_assert_int_eq(meta_mem_open(&meta), 0);
}

static void teardown(void)
{
    meta->close(meta);
    clock_set_fake(NULL);
}

static struct owner *open_owner(const char *id, const char *addr)
{
    struct owner *o = NULL;
    ck_assert_int_eq(owner_open(meta, id, addr, 0, LEASE_MS, &o, errmsg), 0);
    return o;
}

static void advance(uint64_t ms)
{
    fake_now += ms * NS_PER_MS;
}

static struct owner_claim claim(struct owner *o, uint64_t id, uint64_t epoch)
{
    struct owner_claim cl;
    ck_assert_int_eq(owner_claim(o, id, epoch, &cl, errmsg), 0);
    return cl;
}

/* a and b run rounds for ms (b only when b_alive). */
static void run(struct owner *a, struct owner *b, int b_alive, uint64_t ms)
{
    for (uint64_t t = 0; t < ms; t += STEP_MS) {
        advance(STEP_MS);
        owner_tick(a);
        if (b_alive)
            owner_tick(b);
    }
}

START_TEST(first_claim_and_redirect)
{
    struct owner *a = open_owner("A", "127.0.0.1:7001");
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    struct owner_claim cl = claim(a, 5, 3);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_int_eq(cl.taken, 1);
    ck_assert_uint_eq(cl.user_epoch, 3);
    ck_assert(owner_owns(a, 5));
    /* A again: still A's, not taken again. */
    cl = claim(a, 5, 4);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_int_eq(cl.taken, 0);
    ck_assert_uint_eq(cl.user_epoch, 3);
    /* B: A is alive and renewing, so B redirects there. */
    run(a, b, 1, STEP_MS);
    cl = claim(b, 5, 4);
    ck_assert_int_eq(cl.state, OWNER_OTHER);
    ck_assert_str_eq(cl.holder, "A");
    ck_assert_str_eq(cl.addr, "127.0.0.1:7001");
    ck_assert(!owner_owns(b, 5));
    /* Another stream is B's for the asking. */
    ck_assert_int_eq(claim(b, 6, 1).state, OWNER_SELF);
    owner_close(a, 0);
    owner_close(b, 0);
}
END_TEST

START_TEST(takeover_after_silent_lease)
{
    struct owner *a = open_owner("A", "127.0.0.1:7001");
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    ck_assert_int_eq(claim(a, 5, 3).state, OWNER_SELF);
    run(b, a, 1, 2 * STEP_MS);
    unsigned gen = owner_lost_gen(a);
    /* A goes silent (killed). Within the lease B waits: not redirected to a
     * proxy that stopped renewing (B saw its last renewal one round late,
     * so 4 rounds make 3 of silence), and not taken either. */
    run(b, a, 0, 4 * STEP_MS);
    struct owner_claim cl = claim(b, 5, 3);
    ck_assert_int_eq(cl.state, OWNER_WAIT);
    ck_assert_uint_gt(cl.wait_ms, 0);
    ck_assert_uint_le(cl.wait_ms, LEASE_MS);
    /* After a whole lease of silence B takes it, keeping the user epoch. */
    run(b, a, 0, LEASE_MS);
    cl = claim(b, 5, 9);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_int_eq(cl.taken, 1);
    ck_assert_str_eq(cl.holder, "A");
    ck_assert_uint_eq(cl.user_epoch, 3);
    /* A comes back (a stalled process): its next round finds it lost. */
    ck_assert(owner_owns(a, 5));
    owner_tick(a);
    ck_assert_uint_ne(owner_lost_gen(a), gen);
    ck_assert(!owner_owns(a, 5));
    /* ...and its claim now sends clients to B. */
    run(a, b, 1, STEP_MS);
    cl = claim(a, 5, 9);
    ck_assert_int_eq(cl.state, OWNER_OTHER);
    ck_assert_str_eq(cl.holder, "B");
    ck_assert_str_eq(cl.addr, "127.0.0.1:7002");
    owner_close(a, 0);
    owner_close(b, 0);
}
END_TEST

START_TEST(new_proxy_waits_a_lease)
{
    /* A dies before B ever ran: B has never seen A's key move, so it
     * gives A a whole lease from B's start, not from A's last renewal:
     * at first it sends clients to A, then, A's key standing still, it
     * holds them, and takes the stream when the lease is over. */
    struct owner *a = open_owner("A", "127.0.0.1:7001");
    ck_assert_int_eq(claim(a, 5, 1).state, OWNER_SELF);
    owner_close(a, 0);
    advance(10 * LEASE_MS);
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    ck_assert_int_eq(claim(b, 5, 1).state, OWNER_OTHER);
    for (int i = 0; i < 3; i++) { /* B's rounds go on */
        advance(STEP_MS);
        owner_tick(b);
    }
    ck_assert_int_eq(claim(b, 5, 1).state, OWNER_WAIT);
    advance(LEASE_MS - 3 * STEP_MS - 1);
    owner_tick(b);
    ck_assert_int_eq(claim(b, 5, 1).state, OWNER_WAIT);
    advance(2);
    owner_tick(b);
    ck_assert_int_eq(claim(b, 5, 1).state, OWNER_SELF);
    owner_close(b, 0);
}
END_TEST

START_TEST(earlier_life_at_same_address)
{
    /* A proxy restarted on its port with a new id: the stream's owner is
     * its earlier life, whose key still looks fresh. It is taken at once,
     * not redirected to (that would send the client back here). */
    struct owner *a = open_owner("A1", "127.0.0.1:7001");
    ck_assert_int_eq(claim(a, 5, 1).state, OWNER_SELF);
    owner_close(a, 0); /* killed: nothing released */
    struct owner *a2 = open_owner("A2", "127.0.0.1:7001");
    struct owner_claim cl = claim(a2, 5, 1);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_int_eq(cl.taken, 1);
    ck_assert_str_eq(cl.holder, "A1");
    owner_close(a2, 0);
}
END_TEST

START_TEST(late_rounds_prove_nothing)
{
    /* B's own rounds stall longer than a lease (a paused process, or a
     * metadata store it could not reach): A's silence over that time is
     * not counted. */
    struct owner *a = open_owner("A", "127.0.0.1:7001");
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    ck_assert_int_eq(claim(a, 5, 1).state, OWNER_SELF);
    run(b, a, 1, STEP_MS);
    advance(2 * LEASE_MS); /* nobody ran */
    owner_tick(a);
    owner_tick(b);
    ck_assert_int_eq(claim(b, 5, 1).state, OWNER_OTHER);
    owner_close(a, 0);
    owner_close(b, 0);
}
END_TEST

START_TEST(user_epoch_and_release)
{
    struct owner *a = open_owner("A", "127.0.0.1:7001");
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    ck_assert_int_eq(claim(a, 5, 2).state, OWNER_SELF);
    ck_assert_int_eq(owner_set_user_epoch(a, 5, 7, errmsg), 0);
    ck_assert_int_eq(owner_set_user_epoch(a, 5, 6, errmsg), 0); /* never lowers */
    ck_assert_uint_eq(claim(a, 5, 8).user_epoch, 7);
    ck_assert_int_eq(owner_set_user_epoch(b, 5, 9, errmsg), DLOG_ENOTOWNER);
    /* A stops gracefully: its streams and key go, and B takes at once
     * (after the round that sees A's key gone). */
    owner_close(a, 1);
    owner_tick(b);
    struct owner_claim cl = claim(b, 5, 8);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_uint_eq(cl.user_epoch, 8); /* no owner record left: from now */
    owner_release(b, 5);
    ck_assert(!owner_owns(b, 5));
    struct bytes v;
    bytes_init(&v);
    ck_assert_int_eq(meta->kv_get(meta, "own/5", &v, NULL), DLOG_ENOTFOUND);
    bytes_free(&v);
    owner_close(b, 0);
}
END_TEST

START_TEST(malformed_owner_record)
{
    uint64_t ver = META_KV_CREATE;
    ck_assert_int_eq(meta->kv_put(meta, "own/5", "no newline", 10, &ver), 0);
    struct owner *b = open_owner("B", "127.0.0.1:7002");
    struct owner_claim cl = claim(b, 5, 4);
    ck_assert_int_eq(cl.state, OWNER_SELF);
    ck_assert_uint_eq(cl.user_epoch, 4);
    owner_close(b, 0);
    struct owner *o = NULL;
    ck_assert_int_eq(owner_open(meta, "", "h:1", 0, LEASE_MS, &o, errmsg), DLOG_EINVAL);
    ck_assert_int_eq(owner_open(meta, "a\nb", "h:1", 0, LEASE_MS, &o, errmsg),
                     DLOG_EINVAL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("owner");
    TCase *tc = tcase_create("owner");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, first_claim_and_redirect);
    tcase_add_test(tc, takeover_after_silent_lease);
    tcase_add_test(tc, new_proxy_waits_a_lease);
    tcase_add_test(tc, earlier_life_at_same_address);
    tcase_add_test(tc, late_rounds_prove_nothing);
    tcase_add_test(tc, user_epoch_and_release);
    tcase_add_test(tc, malformed_owner_record);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
