/*
 * test-place: placement of new segments on data groups (docs/cluster.md,
 * "Placement"): the choice (seg/place.h), the map of where segments live
 * (seg/seg_where.h), a group's load as a replica measures it
 * (node/group_load.h), and a stream record carrying its segments' places
 * (meta_codec.c, version 3; version 2 records read with no places). Exit
 * status 0 when all checks pass, 1 otherwise.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "meta/meta.h"
#include "node/group_load.h"
#include "seg/place.h"
#include "seg/seg_where.h"

#define KIB 1024u

/* ---------------------------------------------------------------- choice */

START_TEST(test_choose_least_load)
{
    struct place_group g[3] = {
        {200 * KIB, 1, 1},
        {20 * KIB, 9, 1},
        {100 * KIB, 0, 1},
    };

    ck_assert_int_eq(place_choose(g, 0, PLACE_LOAD_STEP), -1);
    ck_assert_int_eq(place_choose(g, 1, PLACE_LOAD_STEP), 0);
    /* the load decides before the segments */
    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 1);
}
END_TEST

START_TEST(test_choose_ties)
{
    /* within one step of 16 KiB/s the loads tie: fewest segments wins */
    struct place_group g[3] = {
        {1 * KIB, 4, 1},
        {15 * KIB, 2, 1},
        {0, 3, 1},
    };

    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 1);
    /* compared exactly (step 0), the idle group wins */
    ck_assert_int_eq(place_choose(g, 3, 0), 2);
    /* equal loads and segments: the lowest id */
    g[0].segments = g[1].segments = g[2].segments = 5;
    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 0);
    /* a load just past a step boundary is one step up */
    g[0].load_bps = PLACE_LOAD_STEP;
    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 1);
}
END_TEST

START_TEST(test_choose_leaderless_last)
{
    struct place_group g[3] = {
        {0, 0, 0},
        {900 * KIB, 50, 1},
        {0, 0, 0},
    };

    /* a group without a known leader is chosen only when all are so */
    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 1);
    g[1].has_leader = 0;
    ck_assert_int_eq(place_choose(g, 3, PLACE_LOAD_STEP), 0);
}
END_TEST

/* A run of choices, each counted as one more segment on its group (as
 * seg_raft does between two asks): idle groups fill in turn, the busy one
 * gets nothing. */
START_TEST(test_choose_spreads)
{
    struct place_group g[3] = {
        {0, 0, 1},
        {500 * KIB, 0, 1},
        {0, 0, 1},
    };
    unsigned got[3] = {0, 0, 0};

    for (int i = 0; i < 10; i++) {
        int c = place_choose(g, 3, PLACE_LOAD_STEP);
        ck_assert_int_ge(c, 0);
        got[c]++;
        g[c].segments++;
    }
    ck_assert_uint_eq(got[0], 5);
    ck_assert_uint_eq(got[1], 0);
    ck_assert_uint_eq(got[2], 5);
}
END_TEST

/* ---------------------------------------------------------------- map */

START_TEST(test_where_basic)
{
    struct seg_where w;

    memset(&w, 0, sizeof w);
    ck_assert_uint_eq(seg_where_get(&w, 1, 1), 0);
    ck_assert_int_eq(seg_where_put(&w, 1, 1, 0), 0); /* removing nothing */
    ck_assert_int_eq(seg_where_put(&w, 1, 1, 3), 0);
    ck_assert_int_eq(seg_where_put(&w, 1, 2, 1), 0);
    ck_assert_int_eq(seg_where_put(&w, 2, 1, 2), 0);
    ck_assert_uint_eq(seg_where_get(&w, 1, 1), 3);
    ck_assert_uint_eq(seg_where_get(&w, 1, 2), 1);
    ck_assert_uint_eq(seg_where_get(&w, 2, 1), 2);
    ck_assert_uint_eq(seg_where_get(&w, 2, 2), 0);
    ck_assert_int_eq(seg_where_put(&w, 1, 1, 7), 0); /* replaced */
    ck_assert_uint_eq(seg_where_get(&w, 1, 1), 7);
    ck_assert_uint_eq(w.n, 3);
    ck_assert_int_eq(seg_where_put(&w, 1, 1, 0), 0); /* forgotten */
    ck_assert_uint_eq(seg_where_get(&w, 1, 1), 0);
    ck_assert_uint_eq(w.n, 2);
    seg_where_free(&w);
    ck_assert_uint_eq(seg_where_get(&w, 1, 2), 0);
}
END_TEST

/* Many segments, half of them removed in an interleaved order: every
 * remaining one is still found (removal shifts runs back correctly). */
START_TEST(test_where_many)
{
    struct seg_where w;
    const uint64_t streams = 50, seqs = 400;

    memset(&w, 0, sizeof w);
    for (uint64_t s = 1; s <= streams; s++)
        for (uint64_t q = 1; q <= seqs; q++)
            ck_assert_int_eq(seg_where_put(&w, s, q, (uint32_t)((s * 7 + q) % 5 + 1)), 0);
    ck_assert_uint_eq(w.n, streams * seqs);
    for (uint64_t s = 1; s <= streams; s++)
        for (uint64_t q = 1; q <= seqs; q++)
            if ((s + q) % 2 == 0)
                ck_assert_int_eq(seg_where_put(&w, s, q, 0), 0);
    ck_assert_uint_eq(w.n, streams * seqs / 2);
    for (uint64_t s = 1; s <= streams; s++)
        for (uint64_t q = 1; q <= seqs; q++)
            ck_assert_uint_eq(seg_where_get(&w, s, q),
                              (s + q) % 2 == 0 ? 0 : (uint32_t)((s * 7 + q) % 5 + 1));
    seg_where_free(&w);
}
END_TEST

/* ---------------------------------------------------------------- load */

START_TEST(test_load_rate)
{
    struct group_load l;

    memset(&l, 0, sizeof l);
    ck_assert_uint_eq(group_load_bps(&l, 1000, 5000), 0); /* no sample */
    group_load_sample(&l, 1000, 0);
    ck_assert_uint_eq(group_load_bps(&l, 1000, 0), 0); /* no time passed */
    ck_assert_uint_eq(group_load_bps(&l, 1500, 50000), 100000);
    group_load_sample(&l, 1500, 50000); /* too soon: not kept */
    ck_assert_uint_eq(l.n, 1);
    /* 100 KiB/s for 10 s, sampled every 100 ms as the node's tick does */
    for (uint64_t t = 1000; t <= 11000; t += 100)
        group_load_sample(&l, t, (t - 1000) * 100 * KIB / 1000);
    ck_assert_uint_eq(l.n, GROUP_LOAD_SLOTS);
    ck_assert_uint_eq(group_load_bps(&l, 11000, 1000 * KIB), 100 * KIB);
    /* then quiet: the rate falls to 0 once the window has passed */
    for (uint64_t t = 11100; t <= 18000; t += 100)
        group_load_sample(&l, t, 1000 * KIB);
    ck_assert_uint_eq(group_load_bps(&l, 18000, 1000 * KIB), 0);
    /* a counter that went down (the node restarted): 0, not a huge rate */
    ck_assert_uint_eq(group_load_bps(&l, 18500, 10), 0);
}
END_TEST

START_TEST(test_load_window)
{
    struct group_load l;

    memset(&l, 0, sizeof l);
    /* 1 MiB in the first second, nothing after: the rate over the window
     * counts it until that sample leaves the ring */
    group_load_sample(&l, 0, 0);
    group_load_sample(&l, 1000, 1024 * KIB);
    ck_assert_uint_eq(group_load_bps(&l, 2000, 1024 * KIB), 512 * KIB);
    for (uint64_t t = 2000; t <= 4000; t += 1000)
        group_load_sample(&l, t, 1024 * KIB);
    /* samples 0..4 s kept: 1 MiB over 5 s */
    ck_assert_uint_eq(group_load_bps(&l, 5000, 1024 * KIB), 1024 * KIB / 5);
    group_load_sample(&l, 5000, 1024 * KIB); /* the 0 s sample leaves */
    ck_assert_uint_eq(group_load_bps(&l, 5000, 1024 * KIB), 0);
}
END_TEST

/* ---------------------------------------------------------------- records */

static void stream_with(struct meta_stream *s, const uint32_t *places, uint32_t n)
{
    memset(s, 0, sizeof *s);
    s->id = 42;
    s->version = 3;
    strcpy(s->name, "orders");
    s->next_seq = n + 1;
    for (uint32_t i = 0; i < n; i++) {
        struct meta_segment g = {0};
        g.seq = i + 1;
        g.state = i + 1 < n ? DLOG_SEGMENT_SEALED : DLOG_SEGMENT_OPEN;
        g.place = places[i];
        ck_assert_int_eq(meta_stream_push_segment(s, &g), 0);
    }
}

START_TEST(test_record_places)
{
    static const uint32_t places[4] = {0, 3, 1, UINT32_MAX};
    struct meta_stream s, d;
    struct bytes b;

    stream_with(&s, places, 4);
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    ck_assert_uint_eq(((const uint8_t *)b.p)[0], 3); /* format version 3 */
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
    ck_assert_uint_eq(d.nseg, 4);
    for (uint32_t i = 0; i < 4; i++)
        ck_assert_uint_eq(d.segs[i].place, places[i]);
    meta_stream_clear(&d);
    /* a truncated record is refused, not read without its places */
    ck_assert_int_eq(meta_stream_decode(b.p, b.len - 5, &d), DLOG_ECORRUPT);
    bytes_free(&b);
    meta_stream_clear(&s);
}
END_TEST

/* A record without places keeps the version 2 bytes older versions read,
 * and version 2 records read back with every place 0 (the old rule). */
START_TEST(test_record_without_places)
{
    static const uint32_t none[2] = {0, 0};
    struct meta_stream s, d;
    struct bytes b;

    stream_with(&s, none, 2);
    bytes_init(&b);
    ck_assert_int_eq(meta_stream_encode(&s, &b), 0);
    ck_assert_uint_eq(((const uint8_t *)b.p)[0], 2);
    ck_assert_int_eq(meta_stream_decode(b.p, b.len, &d), 0);
    ck_assert_uint_eq(d.nseg, 2);
    ck_assert_uint_eq(d.segs[0].place, 0);
    ck_assert_uint_eq(d.segs[1].place, 0);
    meta_stream_clear(&d);
    bytes_free(&b);
    meta_stream_clear(&s);
}
END_TEST

static Suite *place_suite(void)
{
    Suite *s = suite_create("place");
    TCase *tc = tcase_create("choose");

    tcase_add_test(tc, test_choose_least_load);
    tcase_add_test(tc, test_choose_ties);
    tcase_add_test(tc, test_choose_leaderless_last);
    tcase_add_test(tc, test_choose_spreads);
    suite_add_tcase(s, tc);
    tc = tcase_create("where");
    tcase_add_test(tc, test_where_basic);
    tcase_add_test(tc, test_where_many);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_load_rate);
    tcase_add_test(tc, test_load_window);
    suite_add_tcase(s, tc);
    tc = tcase_create("record");
    tcase_add_test(tc, test_record_places);
    tcase_add_test(tc, test_record_without_places);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(place_suite());
    int failed;

    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
