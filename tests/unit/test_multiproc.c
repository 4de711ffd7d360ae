/*
 * Several processes on one namespace (file:, and later dlog://): a reader
 * in one process tails what a writer in another appends (invariant 3),
 * writers in two processes get unique, ordered positions (invariant 2), and
 * an exclusive writer in one process fences a writer in another (4).
 *
 * The child is forked before the parent opens anything (so it inherits no
 * LMDB environment or library thread), opens the namespace itself, never
 * calls Check, reports through its exit status, and leaves with _exit. An
 * alarm bounds its life; the parent always reaps it.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core_suites.h"
#include "core_util.h"

#define MiB (1024 * 1024)

struct child {
    pid_t pid;
    int go[2];   /* parent -> child: start */
    int done[2]; /* child -> parent: a byte when its step is done */
};

/* Waits for one byte on fd (the child's side); 0 on success. */
static int wait_byte(int fd)
{
    char c;
    ssize_t n;
    do
        n = read(fd, &c, 1);
    while (n < 0 && errno == EINTR);
    return n == 1 ? 0 : -1;
}

static void send_byte(int fd)
{
    char c = 'g';
    ssize_t n;
    do
        n = write(fd, &c, 1);
    while (n < 0 && errno == EINTR);
}

/* Forks; the child runs fn(uri, stream, arg) after the go byte and _exits with its
 * result. */
static void spawn(struct child *c, int (*fn)(const char *, const char *, struct child *),
                  const char *uri, const char *stream)
{
    ck_assert_int_eq(pipe(c->go), 0);
    ck_assert_int_eq(pipe(c->done), 0);
    fflush(stdout);
    fflush(stderr);
    c->pid = fork();
    ck_assert_int_ge(c->pid, 0);
    if (c->pid == 0) {
        alarm(60);
        close(c->go[1]);
        close(c->done[0]);
        int rv = wait_byte(c->go[0]) == 0 ? fn(uri, stream, c) : 99;
        _exit(rv);
    }
    close(c->go[0]);
    close(c->done[1]);
}

/* Reaps the child within timeout_ms (then kills it); returns its exit status or -1. */
static int reap(struct child *c, int timeout_ms)
{
    uint64_t deadline = core_now_ms() + (uint64_t)timeout_ms;
    int st = 0;
    for (;;) {
        pid_t p = waitpid(c->pid, &st, WNOHANG);
        if (p == c->pid)
            break;
        if (p < 0)
            return -1;
        if (core_now_ms() > deadline) {
            kill(c->pid, SIGKILL);
            waitpid(c->pid, &st, 0);
            close(c->go[1]);
            close(c->done[0]);
            return -1;
        }
        core_nap_ms(2);
    }
    close(c->go[1]);
    close(c->done[0]);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ------------------------------------------------------------ child bodies */

enum { N_TAIL = 400, N_EACH = 150, BIG_AT = 200 };
#define BIG_LEN (2 * MiB + 333)

static size_t tail_len(size_t i)
{
    return i == BIG_AT ? BIG_LEN : 16 + (i * 37) % 2000;
}

static int child_open(const char *uri, struct dlog_ns **ns)
{
    char errmsg[DLOG_ERRMSG_LEN];
    return dlog_open(uri, NULL, ns, errmsg) == 0 ? 0 : 10;
}

/* Writes N_TAIL records, in batches and alone, one of them large. */
static int child_tail_writer(const char *uri, const char *stream, struct child *c)
{
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    int rv = child_open(uri, &ns);
    if (rv != 0)
        return rv;
    if (dlog_writer_open(ns, stream, NULL, &w) != 0)
        return 11;
    uint8_t *buf = malloc(BIG_LEN);
    static uint8_t small[8][2100];
    size_t i = 0;
    while (i < N_TAIL && rv == 0) {
        struct dlog_record recs[8];
        size_t n = (i % 3 == 0) ? 1 : 8;
        if (i + n > N_TAIL || (i < BIG_AT && i + n > BIG_AT) || i == BIG_AT)
            n = 1;
        memset(recs, 0, sizeof recs);
        for (size_t k = 0; k < n; k++) {
            size_t len = tail_len(i + k);
            uint8_t *p = len > sizeof small[k] ? buf : small[k];
            core_payload(p, len, 1, i + k);
            recs[k].payload = p;
            recs[k].len = len;
            recs[k].txid = 1 + i + k;
        }
        if (dlog_write_sync(w, recs, n, NULL) != 0)
            rv = 12;
        i += n;
    }
    free(buf);
    if (dlog_writer_close(w) != 0 && rv == 0)
        rv = 13;
    dlog_close(ns);
    return rv;
}

/* Writes N_EACH records of tag 2 in shared mode, checking its DLSNs grow. */
static int child_shared_writer(const char *uri, const char *stream, struct child *c)
{
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    int rv = child_open(uri, &ns);
    if (rv != 0)
        return rv;
    if (dlog_writer_open(ns, stream, NULL, &w) != 0)
        return 11;
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    for (size_t i = 0; i < N_EACH && rv == 0; i++) {
        uint8_t p[64];
        struct dlog_dlsn d;
        core_payload(p, sizeof p, 2, i);
        struct dlog_record rec = {.payload = p, .len = sizeof p};
        if (dlog_write_sync(w, &rec, 1, &d) != 0)
            rv = 12;
        else if (dlog_dlsn_cmp(prev, d) >= 0)
            rv = 14;
        prev = d;
    }
    if (dlog_writer_close(w) != 0 && rv == 0)
        rv = 13;
    dlog_close(ns);
    return rv;
}

/* Opens an exclusive writer, writes "child", reports, exits. */
static int child_fencer(const char *uri, const char *stream, struct child *c)
{
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    struct dlog_writer_options o;
    int rv = child_open(uri, &ns);
    if (rv != 0)
        return rv;
    dlog_writer_options_init(&o);
    o.mode = DLOG_WRITER_EXCLUSIVE;
    if (dlog_writer_open(ns, stream, &o, &w) != 0)
        return 11;
    struct dlog_record rec = {.payload = "child", .len = 5};
    if (dlog_write_sync(w, &rec, 1, NULL) != 0)
        rv = 12;
    if (dlog_writer_close(w) != 0 && rv == 0)
        rv = 13;
    dlog_close(ns);
    send_byte(c->done[1]);
    return rv;
}

/* ------------------------------------------------------------ tests */

START_TEST(test_child_writes_parent_tails)
{
    CORE_REQUIRE(core_backend_multiprocess(), "one process only");
    struct core_env e;
    struct child c;
    char name[128];
    /* The URI and name are fixed before the fork so both sides agree. */
    core_stream_name(name, "mp-tail");
    memset(&e, 0, sizeof e);
    core_env_open(&e, NULL);
    core_env_close(&e);
    spawn(&c, child_tail_writer, e.uri, name);

    core_env_reopen(&e);
    struct dlog_stream_config cfg = core_cfg();
    cfg.segment_max_records = 64; /* rolls happen while the parent tails */
    core_create(e.ns, name, &cfg);
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    send_byte(c.go[1]);

    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    for (size_t i = 0; i < N_TAIL; i++) {
        struct dlog_record rec;
        int rv = dlog_read_next(r, &rec, 20000);
        if (rv != 1) {
            int st = reap(&c, 1000);
            ck_abort_msg("record %zu: %s (%s); child exit %d", i, dlog_errname(rv),
                         dlog_reader_errmsg(r), st);
        }
        ck_assert_msg(rec.len == tail_len(i) &&
                          core_payload_ok(rec.payload, rec.len, 1, i),
                      "record %zu: %zu bytes, not the child's record %zu", i, rec.len, i);
        ck_assert_uint_eq(rec.txid, i + 1);
        if (i > 0)
            CORE_ASSERT_DLSN_LT(prev, rec.dlsn);
        prev = rec.dlsn;
    }
    struct dlog_record rec;
    int st = reap(&c, 20000);
    ck_assert_msg(st == 0, "child exited with %d", st);
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    dlog_reader_close(r);
    ck_assert_uint_ge(prev.seg, 1 + N_TAIL / 64 - 1);
    core_env_close(&e);
}
END_TEST

START_TEST(test_two_process_writers)
{
    CORE_REQUIRE(core_backend_multiprocess(), "one process only");
    struct core_env e;
    struct child c;
    char name[128];
    core_stream_name(name, "mp-two");
    memset(&e, 0, sizeof e);
    core_env_open(&e, NULL);
    core_env_close(&e);
    spawn(&c, child_shared_writer, e.uri, name);

    core_env_reopen(&e);
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    cfg.segment_max_records = 40;
    core_create(e.ns, name, &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    send_byte(c.go[1]);
    struct dlog_dlsn mine[N_EACH];
    core_write_sync_n(w, N_EACH, 64, 3, 0, 0, mine);
    int st = reap(&c, 30000);
    ck_assert_msg(st == 0, "child exited with %d", st);
    CORE_ASSERT_OK(dlog_writer_close(w));

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 2 * N_EACH, 10000);
    size_t nc = 0, np = 0;
    for (size_t k = 0; k < 2 * N_EACH; k++) {
        if (k > 0)
            CORE_ASSERT_DLSN_LT(recs[k - 1].dlsn, recs[k].dlsn);
        ck_assert_uint_eq(recs[k].txid, k + 1);
        if (np < N_EACH && core_payload_ok(recs[k].payload, recs[k].len, 3, np)) {
            CORE_ASSERT_DLSN_EQ(recs[k].dlsn, mine[np]);
            np++;
        } else {
            ck_assert_msg(nc < N_EACH &&
                              core_payload_ok(recs[k].payload, recs[k].len, 2, nc),
                          "record %zu is neither process's next record", k);
            nc++;
        }
    }
    ck_assert_uint_eq(np, N_EACH);
    ck_assert_uint_eq(nc, N_EACH);
    struct dlog_record rec;
    CORE_ASSERT_ERR(dlog_read_next(r, &rec, 0), DLOG_ETIMEDOUT);
    core_recs_free(recs, 2 * N_EACH);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

START_TEST(test_cross_process_fencing)
{
    CORE_REQUIRE(core_backend_multiprocess(), "one process only");
    struct core_env e;
    struct child c;
    char name[128];
    core_stream_name(name, "mp-fence");
    memset(&e, 0, sizeof e);
    core_env_open(&e, NULL);
    core_env_close(&e);
    spawn(&c, child_fencer, e.uri, name);

    core_env_reopen(&e);
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    core_create(e.ns, name, &cfg);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_EXCLUSIVE);
    uint64_t mine = dlog_writer_epoch(w);
    CORE_ASSERT_OK(core_write1(w, "parent-1", 8, 0, NULL));
    send_byte(c.go[1]);
    /* The child's exclusive open and write are done once its byte arrives. */
    char b;
    ssize_t got;
    do
        got = read(c.done[0], &b, 1);
    while (got < 0 && errno == EINTR);
    int st = reap(&c, 20000);
    ck_assert_msg(got == 1 && st == 0, "child exited with %d", st);

    CORE_ASSERT_ERR(core_write1(w, "parent-2", 8, 0, NULL), DLOG_EFENCED);
    dlog_writer_close(w);
    struct dlog_stream_info *info = NULL;
    CORE_NS_OK(e.ns, dlog_stream_describe(e.ns, name, &info));
    ck_assert_uint_gt(info->epoch, mine);
    dlog_stream_info_free(info);

    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = NULL;
    size_t n = 0;
    ck_assert_int_ge(core_read_recs(r, 0, 5000, &recs, &n), 0);
    ck_assert_uint_eq(n, 2);
    ck_assert(recs[0].len == 8 && memcmp(recs[0].payload, "parent-1", 8) == 0);
    ck_assert(recs[1].len == 5 && memcmp(recs[1].payload, "child", 5) == 0);
    core_recs_free(recs, n);
    dlog_reader_close(r);
    core_env_close(&e);
}
END_TEST

Suite *multiproc_suite(void)
{
    Suite *s = suite_create("multiproc");
    TCase *tc = core_tcase("multiproc", CORE_TIMEOUT);
    tcase_add_test(tc, test_child_writes_parent_tails);
    tcase_add_test(tc, test_two_process_writers);
    tcase_add_test(tc, test_cross_process_fencing);
    suite_add_tcase(s, tc);
    return s;
}
