/* Namespace and stream administration: create, list, describe, delete, bad input. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core_suites.h"
#include "core_util.h"

static uint64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* 1 if name is in the NULL-terminated list. */
static int listed(char **names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

START_TEST(test_version)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", DLOG_VERSION_MAJOR, DLOG_VERSION_MINOR,
             DLOG_VERSION_PATCH);
    ck_assert_str_eq(dlog_version(), want);
}
END_TEST

START_TEST(test_create_list_describe_delete)
{
    struct core_env e;
    char base[128], a[160], b[160], c[160];
    core_env_open(&e, NULL);
    core_stream_name(base, "admin");
    /* Created out of order; listed in byte order ('-' < '/' < 'a'). */
    snprintf(a, sizeof a, "%s/b", base);
    snprintf(b, sizeof b, "%s-a", base);
    snprintf(c, sizeof c, "%s/a", base);
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 17;
    cfg.segment_max_bytes = 1 << 20;
    cfg.max_record_bytes = 3 << 20;
    uint64_t before = wall_ms();
    core_create(e.ns, a, &cfg);
    core_create(e.ns, b, NULL);
    core_create(e.ns, c, NULL);
    uint64_t after = wall_ms();

    char **names = NULL;
    size_t count = 0;
    CORE_NS_OK(e.ns, dlog_stream_list(e.ns, &names, &count));
    ck_assert_ptr_nonnull(names);
    ck_assert_ptr_null(names[count]);
    ck_assert(listed(names, count, a) && listed(names, count, b) &&
              listed(names, count, c));
    for (size_t i = 1; i < count; i++)
        ck_assert_msg(strcmp(names[i - 1], names[i]) < 0,
                      "list not in byte order: %s, %s", names[i - 1], names[i]);
    dlog_stream_list_free(names);

    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, a, &info));
    ck_assert_ptr_nonnull(info);
    ck_assert_str_eq(info->name, a);
    ck_assert_uint_eq(info->config.segment_max_records, 17);
    ck_assert_uint_eq(info->config.segment_max_bytes, 1 << 20);
    ck_assert_uint_eq(info->config.max_record_bytes, 3 << 20);
    ck_assert_int_eq(info->config.auto_txid, 0);
    ck_assert_uint_eq(info->records, 0);
    ck_assert_uint_eq(info->bytes, 0);
    ck_assert_uint_ge(info->created_ms + 1000, before);
    ck_assert_uint_le(info->created_ms, after + 1000);
    uint64_t id_a = info->id;
    dlog_stream_info_free(info);

    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, b, &info));
    ck_assert_uint_ne(info->id, id_a);
    dlog_stream_info_free(info);

    struct dlog_dlsn d;
    CORE_ASSERT_ERR(dlog_stream_first_dlsn(e.ns, a, &d), DLOG_EEOF);
    CORE_ASSERT_ERR(dlog_stream_last_dlsn(e.ns, a, &d), DLOG_EEOF);

    /* Delete: gone from describe and list; a second delete fails. */
    CORE_NS_OK(e.ns, dlog_stream_delete(e.ns, a));
    CORE_ASSERT_ERR(dlog_stream_describe(e.ns, a, &info), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_stream_delete(e.ns, a), DLOG_ENOTFOUND);
    CORE_NS_OK(e.ns, dlog_stream_list(e.ns, &names, &count));
    ck_assert(!listed(names, count, a));
    ck_assert(listed(names, count, b) && listed(names, count, c));
    dlog_stream_list_free(names);
    core_env_close(&e);
}
END_TEST

START_TEST(test_delete_drops_data)
{
    struct core_env e;
    char name[128];
    core_env_open(&e, NULL);
    core_stream_name(name, "del");
    core_create(e.ns, name, NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 5, 100, 7, 0, 1, NULL);
    CORE_ASSERT_OK(dlog_writer_close(w));
    CORE_NS_OK(e.ns, dlog_stream_delete(e.ns, name));

    /* The same name again is a new, empty stream. */
    core_create(e.ns, name, NULL);
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->records, 0);
    dlog_stream_info_free(info);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    dlog_reader_close(r);
    struct dlog_dlsn d;
    CORE_ASSERT_ERR(dlog_stream_last_dlsn(e.ns, name, &d), DLOG_EEOF);
    core_env_close(&e);
}
END_TEST

START_TEST(test_delete_with_open_handles)
{
    struct core_env e;
    char name[128];
    core_env_open(&e, NULL);
    core_stream_name(name, "delopen");
    core_create(e.ns, name, NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    core_write_sync_n(w, 1, 10, 8, 0, 1, NULL);
    struct dlog_record rec;
    ck_assert_int_eq(dlog_read_next(r, &rec, 5000), 1);

    CORE_NS_OK(e.ns, dlog_stream_delete(e.ns, name));
    char buf[10] = "x";
    CORE_ASSERT_ERR(core_write1(w, buf, sizeof buf, 2, NULL), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 1000), DLOG_ENOTFOUND);
    dlog_reader_close(r);
    dlog_writer_close(w); /* may report the error again; it must not crash */
    core_env_close(&e);
}
END_TEST

START_TEST(test_create_duplicate)
{
    struct core_env e;
    char name[128];
    core_env_open(&e, NULL);
    core_stream_name(name, "dup");
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 5;
    core_create(e.ns, name, &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 3, 50, 9, 0, 1, NULL);
    CORE_ASSERT_OK(dlog_writer_close(w));

    struct dlog_stream_config other = core_cfg();
    other.segment_max_records = 99;
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, &other), DLOG_EEXIST);
    ck_assert_str_ne(dlog_errmsg(e.ns), "");
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, NULL), DLOG_EEXIST);

    /* The existing stream is untouched. */
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->config.segment_max_records, 5);
    ck_assert_uint_eq(info->records, 3);
    dlog_stream_info_free(info);
    core_env_close(&e);
}
END_TEST

START_TEST(test_unknown_stream)
{
    struct core_env e;
    char name[128];
    core_env_open(&e, NULL);
    core_stream_name(name, "nosuch");
    struct dlog_stream_info *info = NULL;
    struct dlog_writer *w = NULL;
    struct dlog_reader *r = NULL;
    struct dlog_dlsn d;
    uint64_t txid;

    CORE_ASSERT_ERR(dlog_stream_describe(e.ns, name, &info), DLOG_ENOTFOUND);
    ck_assert_str_ne(dlog_errmsg(e.ns), "");
    CORE_ASSERT_ERR(dlog_stream_delete(e.ns, name), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_writer_open(e.ns, name, NULL, &w), DLOG_ENOTFOUND);
    ck_assert_ptr_null(w);
    CORE_ASSERT_ERR(dlog_reader_open(e.ns, name, NULL, &r), DLOG_ENOTFOUND);
    ck_assert_ptr_null(r);
    CORE_ASSERT_ERR(dlog_stream_first_dlsn(e.ns, name, &d), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_stream_last_dlsn(e.ns, name, &d), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_stream_last_txid(e.ns, name, &txid), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_stream_truncate(e.ns, name, DLOG_DLSN_HEAD), DLOG_ENOTFOUND);
    CORE_ASSERT_ERR(dlog_stream_apply_retention(e.ns, name), DLOG_ENOTFOUND);
    core_env_close(&e);
}
END_TEST

static const char *const bad_names[] = {
    "",      ".",      "..",    ".hidden", "/abs",
    "a//b",  "a/../b", "a..b",  "a b",     "a\tb",
    "a\nb",  "a:b",    "a*b",   "a\\b",    "\xc3\xa9t\xc3\xa9",
    "a\x7f", "a?b",    "a%2fb",
};

START_TEST(test_names)
{
    struct core_env e;
    char good[DLOG_STREAM_NAME_MAX + 2];
    core_env_open(&e, NULL);

    /* Valid names, including the longest. */
    const char *ok[] = {"a", "A", "0", "a.b", "a-b_c", "a/b/c", "x.", "a/.b", "a/b/"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        ck_assert_msg(dlog_stream_name_valid(ok[i]), "\"%s\" should be valid", ok[i]);
    char prefix[128];
    core_stream_name(prefix, "long");
    memset(good, 'x', sizeof good);
    memcpy(good, prefix, strlen(prefix));
    good[DLOG_STREAM_NAME_MAX] = '\0';
    ck_assert(dlog_stream_name_valid(good));
    CORE_NS_OK(e.ns, dlog_stream_create(e.ns, good, NULL));
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, good, &info));
    ck_assert_str_eq(info->name, good);
    dlog_stream_info_free(info);

    /* One byte too long. */
    good[DLOG_STREAM_NAME_MAX] = 'x';
    good[DLOG_STREAM_NAME_MAX + 1] = '\0';
    ck_assert(!dlog_stream_name_valid(good));
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, good, NULL), DLOG_ENAME);

    for (size_t i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        const char *n = bad_names[i];
        ck_assert_msg(!dlog_stream_name_valid(n), "\"%s\" should be invalid", n);
        int rv = dlog_stream_create(e.ns, n, NULL);
        ck_assert_msg(rv == DLOG_ENAME, "create(\"%s\") = %s, expected DLOG_ENAME", n,
                      dlog_errname(rv));
        ck_assert_str_ne(dlog_errmsg(e.ns), "");
        rv = dlog_stream_describe(e.ns, n, &info);
        ck_assert_msg(rv == DLOG_ENAME, "describe(\"%s\") = %s", n, dlog_errname(rv));
        struct dlog_writer *w = NULL;
        rv = dlog_writer_open(e.ns, n, NULL, &w);
        ck_assert_msg(rv == DLOG_ENAME, "writer_open(\"%s\") = %s", n, dlog_errname(rv));
        struct dlog_reader *r = NULL;
        rv = dlog_reader_open(e.ns, n, NULL, &r);
        ck_assert_msg(rv == DLOG_ENAME, "reader_open(\"%s\") = %s", n, dlog_errname(rv));
        rv = dlog_stream_delete(e.ns, n);
        ck_assert_msg(rv == DLOG_ENAME, "delete(\"%s\") = %s", n, dlog_errname(rv));
    }
    ck_assert(!dlog_stream_name_valid(NULL));
    int rv = dlog_stream_create(e.ns, NULL, NULL);
    ck_assert_msg(rv == DLOG_ENAME || rv == DLOG_EINVAL, "create(NULL) = %s",
                  dlog_errname(rv));

    /* None of the bad names left anything behind. */
    char **names = NULL;
    size_t count = 0;
    CORE_NS_OK(e.ns, dlog_stream_list(e.ns, &names, &count));
    for (size_t i = 0; i < count; i++)
        for (size_t j = 0; j < sizeof bad_names / sizeof bad_names[0]; j++)
            ck_assert_str_ne(names[i], bad_names[j]);
    dlog_stream_list_free(names);
    core_env_close(&e);
}
END_TEST

START_TEST(test_bad_config)
{
    struct core_env e;
    char name[128];
    struct dlog_stream_info *info = NULL;
    core_env_open(&e, NULL);
    core_stream_name(name, "cfg");

    struct dlog_stream_config cfg = core_cfg();
    cfg.max_record_bytes = DLOG_RECORD_MAX_LIMIT + 1;
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, &cfg), DLOG_EINVAL);
    ck_assert_str_ne(dlog_errmsg(e.ns), "");
    cfg.max_record_bytes = UINT64_MAX;
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, &cfg), DLOG_EINVAL);
    cfg = core_cfg();
    cfg.compression = 99;
    CORE_ASSERT_ERR(dlog_stream_create(e.ns, name, &cfg), DLOG_EINVAL);
    CORE_ASSERT_ERR(dlog_stream_describe(e.ns, name, &info), DLOG_ENOTFOUND);

    /* The limit itself is allowed. */
    cfg = core_cfg();
    cfg.max_record_bytes = DLOG_RECORD_MAX_LIMIT;
    CORE_NS_OK(e.ns, dlog_stream_create(e.ns, name, &cfg));
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->config.max_record_bytes, DLOG_RECORD_MAX_LIMIT);
    dlog_stream_info_free(info);
    core_env_close(&e);
}
END_TEST

START_TEST(test_default_config)
{
    struct core_env e;
    char name[128];
    struct dlog_stream_config def;
    struct dlog_stream_info *info = NULL;
    dlog_stream_config_init(&def);
    ck_assert_uint_eq(def.version, DLOG_STREAM_CONFIG_VERSION);
    ck_assert_uint_eq(def.max_record_bytes, DLOG_RECORD_MAX_DEFAULT);
    ck_assert_uint_eq(def.segment_max_bytes, 256ULL << 20);
    core_env_open(&e, NULL);
    core_stream_name(name, "defcfg");
    CORE_NS_OK(e.ns, dlog_stream_create(e.ns, name, NULL));
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->config.max_record_bytes, def.max_record_bytes);
    ck_assert_uint_eq(info->config.segment_max_bytes, def.segment_max_bytes);
    ck_assert_int_eq(info->config.auto_txid, def.auto_txid);
    dlog_stream_info_free(info);
    core_env_close(&e);
}
END_TEST

START_TEST(test_describe_after_writes)
{
    struct core_env e;
    char name[128];
    struct dlog_dlsn acks[25];
    core_env_open(&e, NULL);
    core_stream_name(name, "desc");
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 10;
    core_create(e.ns, name, &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    core_write_sync_n(w, 25, 100, 10, 0, 1000, acks);

    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_eq(info->records, 25);
    ck_assert_uint_ge(info->bytes, 25 * 100);
    CORE_ASSERT_DLSN_EQ(info->first, acks[0]);
    CORE_ASSERT_DLSN_EQ(info->last, acks[24]);
    ck_assert_uint_eq(info->last_txid, 1024);
    ck_assert_uint_ge(info->nsegments, 3);
    uint64_t total = 0;
    for (size_t i = 0; i < info->nsegments; i++) {
        const struct dlog_segment_info *g = &info->segments[i];
        if (i > 0)
            ck_assert_uint_gt(g->seq, info->segments[i - 1].seq);
        if (i + 1 < info->nsegments)
            ck_assert_int_eq(g->state, DLOG_SEGMENT_SEALED);
        if (g->state == DLOG_SEGMENT_SEALED)
            ck_assert_uint_ge(g->sealed_ms, g->created_ms);
        ck_assert_uint_le(g->records, 10);
        if (g->records > 0) {
            ck_assert_uint_eq(g->first.seg, g->seq);
            ck_assert_uint_eq(g->last.seg, g->seq);
            ck_assert_uint_le(g->first_txid, g->last_txid);
        }
        total += g->records;
    }
    ck_assert_uint_eq(total, 25);
    ck_assert_uint_eq(info->segments[0].first_txid, 1000);
    dlog_stream_info_free(info);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

START_TEST(test_open_bad_uri)
{
    struct dlog_ns *ns = (struct dlog_ns *)1;
    char errmsg[DLOG_ERRMSG_LEN] = "";
    CORE_ASSERT_ERR(dlog_open("nosuchscheme:x", NULL, &ns, errmsg), DLOG_EURI);
    ck_assert_ptr_null(ns);
    ck_assert_str_ne(errmsg, "");
    ns = (struct dlog_ns *)1;
    CORE_ASSERT_ERR(dlog_open("", NULL, &ns, NULL), DLOG_EURI);
    ck_assert_ptr_null(ns);
    ns = (struct dlog_ns *)1;
    int rv = dlog_open(NULL, NULL, &ns, errmsg);
    ck_assert_msg(rv == DLOG_EINVAL || rv == DLOG_EURI, "dlog_open(NULL) = %s",
                  dlog_errname(rv));
    ck_assert_ptr_null(ns);
}
END_TEST

START_TEST(test_open_file_not_dir)
{
    CORE_REQUIRE(core_backend_is_file(), "a file: path");
    char path[CORE_URI_MAX + 64], uri[CORE_URI_MAX + 128], errmsg[DLOG_ERRMSG_LEN] = "";
    struct dlog_ns *ns = NULL;
    snprintf(path, sizeof path, "%s/plain-%ld", core_base_uri() + 5, (long)getpid());
    int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "not a dir", 9), 9);
    close(fd);
    snprintf(uri, sizeof uri, "file:%s", path);
    CORE_ASSERT_ERR(dlog_open(uri, NULL, &ns, errmsg), DLOG_ENOTDIR);
    ck_assert_ptr_null(ns);
    ck_assert_str_ne(errmsg, "");
    unlink(path);
}
END_TEST

Suite *stream_suite(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = core_tcase("admin", CORE_TIMEOUT);
    tcase_add_test(tc, test_version);
    tcase_add_test(tc, test_create_list_describe_delete);
    tcase_add_test(tc, test_delete_drops_data);
    tcase_add_test(tc, test_delete_with_open_handles);
    tcase_add_test(tc, test_create_duplicate);
    tcase_add_test(tc, test_describe_after_writes);
    tcase_add_test(tc, test_default_config);
    suite_add_tcase(s, tc);
    tc = core_tcase("bad_input", CORE_TIMEOUT);
    tcase_add_test(tc, test_unknown_stream);
    tcase_add_test(tc, test_names);
    tcase_add_test(tc, test_bad_config);
    tcase_add_test(tc, test_open_bad_uri);
    tcase_add_test(tc, test_open_file_not_dir);
    suite_add_tcase(s, tc);
    return s;
}
