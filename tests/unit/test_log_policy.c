/*
 * test-log-policy: the byte budget of a data group's in-memory Raft log
 * (node/log_policy.h): the mean entry size, the counts it gives, their
 * bounds, and the stagger between nodes. Exit status 0 when all checks
 * pass, 1 otherwise.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>

#include "node/log_policy.h"

#define MIB (1024u * 1024u)

START_TEST(test_mean_follows_entries)
{
    uint64_t m = log_policy_mean16(0, 1000);

    ck_assert_uint_eq(m, 1000 * 16); /* the first entry is the mean */
    for (int i = 0; i < 2000; i++)
        m = log_policy_mean16(m, 30000);
    /* after many entries of 30,000 bytes the mean is within 1% of it */
    ck_assert_uint_ge(m / 16, 29700);
    ck_assert_uint_le(m / 16, 30000);
    for (int i = 0; i < 2000; i++)
        m = log_policy_mean16(m, 100);
    ck_assert_uint_ge(m / 16, 100);
    ck_assert_uint_le(m / 16, 110);
    /* one huge entry moves it by 1/64 only, and nothing overflows */
    m = log_policy_mean16(16 * 100, UINT64_MAX);
    ck_assert_uint_gt(m, 16 * 100);
    ck_assert_uint_eq(log_policy_mean16(0, 0), 1); /* never 0 once started */
}
END_TEST

START_TEST(test_counts_from_budget)
{
    unsigned th, tr;

    /* 128 MiB for entries of 32 KiB: 2048 entries since the snapshot and
     * 2048 kept after it (node 4: no stagger) */
    log_policy_counts(128 * MIB, 32768 * 16, 4, &th, &tr);
    ck_assert_uint_eq(th, 2048);
    ck_assert_uint_eq(tr, 2048);
    /* entries twice as large: half as many */
    log_policy_counts(128 * MIB, 65536 * 16, 4, &th, &tr);
    ck_assert_uint_eq(tr, 1024);
    /* tiny entries: capped, so the count stays bounded */
    log_policy_counts(128 * MIB, 100 * 16, 4, &th, &tr);
    ck_assert_uint_eq(tr, LOG_POLICY_MAX);
    ck_assert_uint_eq(th, LOG_POLICY_MAX);
    /* huge entries: never below the floor */
    log_policy_counts(128 * MIB, (uint64_t)16 * MIB * 16, 4, &th, &tr);
    ck_assert_uint_eq(tr, LOG_POLICY_MIN);
    ck_assert_uint_eq(th, LOG_POLICY_MIN);
    /* a mean below 1 byte is read as 1 */
    log_policy_counts(MIB, 0, 4, &th, &tr);
    ck_assert_uint_eq(tr, LOG_POLICY_MAX);
}
END_TEST

START_TEST(test_nodes_staggered)
{
    unsigned th[4], tr[4];

    for (unsigned id = 1; id <= 3; id++)
        log_policy_counts(128 * MIB, 32768 * 16, id, &th[id], &tr[id]);
    /* the trailing is the same everywhere; the thresholds differ, so the
     * replicas of a group do not all snapshot at the same index */
    ck_assert_uint_eq(tr[1], tr[2]);
    ck_assert_uint_eq(tr[2], tr[3]);
    ck_assert_uint_eq(th[1], 2048 + 256);
    ck_assert_uint_eq(th[2], 2048 + 512);
    ck_assert_uint_eq(th[3], 2048 + 768);
    /* still staggered at the cap */
    log_policy_counts(128 * MIB, 16, 1, &th[1], &tr[1]);
    log_policy_counts(128 * MIB, 16, 2, &th[2], &tr[2]);
    ck_assert_uint_gt(th[2], th[1]);
    ck_assert_uint_gt(th[1], LOG_POLICY_MAX - 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log-policy");
    TCase *tc = tcase_create("policy");
    SRunner *sr;
    int failed;

    tcase_add_test(tc, test_mean_follows_entries);
    tcase_add_test(tc, test_counts_from_budget);
    tcase_add_test(tc, test_nodes_staggered);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
