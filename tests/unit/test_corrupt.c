/*
 * Corruption (DESIGN.md invariants 6 and 8, "never wrong data"): a byte
 * flipped in a stored entry makes the read fail with DLOG_ECORRUPT; no
 * damaged payload is ever returned.
 *
 * file: only. The file: backend keeps entries as LMDB values in
 * DIR/data/data.mdb (metadata in DIR/meta/data.mdb). The test finds a
 * record's payload bytes in the data file (in every copy LMDB may have left
 * in its pages) and flips one bit of each, with the namespace closed.
 */
#define _GNU_SOURCE /* memmem */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core_suites.h"
#include "core_util.h"

#define MiB (1024 * 1024)

/*
 * Flips one bit in every occurrence of needle (at offset `at` inside it) in
 * the file at path. Returns the number flipped.
 */
static int flip_in_file(const char *path, const void *needle, size_t nlen, size_t at)
{
    int fd = open(path, O_RDWR);
    if (fd < 0)
        return 0;
    struct stat st;
    int flipped = 0;
    if (fstat(fd, &st) == 0 && st.st_size > 0) {
        uint8_t *m =
            mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (m != MAP_FAILED) {
            uint8_t *p = m, *end = m + st.st_size;
            while ((p = memmem(p, (size_t)(end - p), needle, nlen)) != NULL) {
                p[at] ^= 0x10;
                flipped++;
                p += nlen;
            }
            msync(m, (size_t)st.st_size, MS_SYNC);
            munmap(m, (size_t)st.st_size);
        }
    }
    close(fd);
    return flipped;
}

/* Flips in every regular file under dir (data.mdb normally; any layout works). */
static int flip_under(const char *dir, const void *needle, size_t nlen, size_t at)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL)
        return 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        char path[8192];
        struct stat st;
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        if (lstat(path, &st) != 0)
            continue;
        if (S_ISDIR(st.st_mode))
            n += flip_under(path, needle, nlen, at);
        else if (S_ISREG(st.st_mode))
            n += flip_in_file(path, needle, nlen, at);
    }
    closedir(d);
    return n;
}

static void setup(struct core_env *e, char *name, const char *tag)
{
    struct dlog_stream_config cfg =
        core_cfg(); /* no compression: payloads stored as is */
    core_env_open(e, NULL);
    core_stream_name(name, tag);
    core_create(e->ns, name, &cfg);
}

/*
 * Reads from the head: every record returned must be one of the first
 * `good` records, intact, in order; then the read must fail with
 * DLOG_ECORRUPT.
 */
static void expect_corrupt_after(struct dlog_ns *ns, const char *name, size_t len,
                                 uint64_t tag, size_t good)
{
    struct dlog_reader *r = core_reader(ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    size_t n = 0;
    int rv;
    for (;;) {
        struct dlog_record rec;
        rv = dlog_read_next(r, &rec, 2000);
        if (rv != 1)
            break;
        ck_assert_msg(n < good, "record %zu was returned although it is corrupt", n);
        ck_assert_msg(rec.len == len && core_payload_ok(rec.payload, rec.len, tag, n),
                      "record %zu came back damaged", n);
        n++;
    }
    ck_assert_msg(rv == DLOG_ECORRUPT,
                  "after %zu good records: %s (%s), expected "
                  "DLOG_ECORRUPT",
                  n, dlog_errname(rv), dlog_reader_errmsg(r));
    ck_assert_str_ne(dlog_reader_errmsg(r), "");
    /* The error sticks: no damaged data on a retry either. */
    struct dlog_record rec;
    rv = dlog_read_next(r, &rec, 100);
    ck_assert_msg(rv < 0, "a retry after DLOG_ECORRUPT returned a record");
    dlog_reader_close(r);
}

START_TEST(test_flipped_byte_small_record)
{
    CORE_REQUIRE(core_backend_is_file(), "the test edits the file: backend's files");
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[10];
    setup(&e, name, "corrupt");
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 10, 256, 1, 0, 1, acks); /* one entry each */
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);

    /* Record 5's payload bytes 100..163 are unique to it. */
    uint8_t p[256];
    core_payload(p, sizeof p, 1, 5);
    int flipped = flip_under(e.dir, p + 100, 64, 20);
    ck_assert_msg(flipped >= 1, "record 5's payload not found under %s", e.dir);

    core_env_reopen(&e);
    expect_corrupt_after(e.ns, name, 256, 1, 5);
    /* Straight at the damaged record. */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_DLSN, acks[5], 0);
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 1000), DLOG_ECORRUPT);
    dlog_reader_close(r);
    /* The entries after it are intact and readable. */
    r = core_reader(e.ns, name, DLOG_START_DLSN, acks[6], 0);
    ck_assert_int_eq(dlog_read_next(r, &rec, 1000), 1);
    ck_assert(rec.len == 256 && core_payload_ok(rec.payload, rec.len, 1, 6));
    CORE_ASSERT_DLSN_EQ(rec.dlsn, acks[6]);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

START_TEST(test_flipped_byte_batched_entry)
{
    CORE_REQUIRE(core_backend_is_file(), "the test edits the file: backend's files");
    struct core_env e;
    char name[128];
    setup(&e, name, "corruptbatch");
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    /* 20 records in one write: one entry; damage to one fails them all. */
    struct dlog_record recs[20];
    static uint8_t bufs[20][100];
    memset(recs, 0, sizeof recs);
    for (int i = 0; i < 20; i++) {
        core_payload(bufs[i], 100, 2, (uint64_t)i);
        recs[i].payload = bufs[i];
        recs[i].len = 100;
        recs[i].txid = 1;
    }
    CORE_ASSERT_OK(dlog_write_sync(w, recs, 20, NULL));
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
    ck_assert_int_ge(flip_under(e.dir, bufs[13] + 10, 48, 47), 1);
    core_env_reopen(&e);
    expect_corrupt_after(e.ns, name, 100, 2, 0);
    core_env_close(&e);
}
END_TEST

START_TEST(test_flipped_byte_large_record)
{
    CORE_REQUIRE(core_backend_is_file(), "the test edits the file: backend's files");
    struct core_env e;
    char name[128];
    const size_t big = 3 * MiB + 1000;
    setup(&e, name, "corruptbig");
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 1, big, 3, 0, 1, NULL);
    uint8_t *p = malloc(big);
    ck_assert_ptr_nonnull(p);
    core_payload(p, big, 3, 0); /* the bytes just written */
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
    /* Damage the middle of the third fragment. */
    ck_assert_int_ge(flip_under(e.dir, p + 2 * MiB + 4096, 64, 5), 1);
    free(p);
    core_env_reopen(&e);
    /* Never the record with a bad byte, never a piece of it. */
    expect_corrupt_after(e.ns, name, big, 3, 0);
    core_env_close(&e);
}
END_TEST

Suite *corrupt_suite(void)
{
    Suite *s = suite_create("corrupt");
    TCase *tc = core_tcase("corrupt", CORE_TIMEOUT);
    tcase_add_test(tc, test_flipped_byte_small_record);
    tcase_add_test(tc, test_flipped_byte_batched_entry);
    tcase_add_test(tc, test_flipped_byte_large_record);
    suite_add_tcase(s, tc);
    return s;
}
