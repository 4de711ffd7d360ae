/*
 * The async API: with dlog_options.loop set, write callbacks and
 * dlog_read_async completions run on that libuv loop's thread, inside
 * uv_run; without a loop, write callbacks run on the writer's thread and
 * async reads are refused.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "core_suites.h"
#include "core_util.h"

struct aenv {
    uv_loop_t loop;
    struct core_env e;
    pthread_t loop_thread;
    int in_run; /* 1 while run_until is inside uv_run */
    char name[128];
};

static void aenv_open(struct aenv *a, const char *tag,
                      const struct dlog_stream_config *cfg)
{
    struct dlog_options o;
    memset(a, 0, sizeof *a);
    ck_assert_int_eq(uv_loop_init(&a->loop), 0);
    a->loop_thread = pthread_self();
    dlog_options_init(&o);
    ck_assert_uint_eq(o.version, DLOG_OPTIONS_VERSION);
    o.loop = &a->loop;
    core_env_open(&a->e, &o);
    core_stream_name(a->name, tag);
    core_create(a->e.ns, a->name, cfg);
}

static int loop_dead(void *arg)
{
    return !uv_loop_alive(arg);
}

/* Closes the namespace, lets its handles close, and checks the loop is clean. */
static void aenv_close(struct aenv *a)
{
    core_env_close(&a->e);
    uint64_t deadline = core_now_ms() + 5000;
    while (uv_loop_alive(&a->loop) && core_now_ms() < deadline)
        uv_run(&a->loop, UV_RUN_NOWAIT);
    ck_assert_msg(loop_dead(&a->loop), "the namespace left active handles on the loop");
    ck_assert_msg(uv_loop_close(&a->loop) == 0,
                  "uv_loop_close: the namespace left handles on the loop");
}

struct runctx {
    struct aenv *a;
    int (*pred)(void *);
    void *arg;
    uint64_t deadline;
    int met;
};

static void run_tick(uv_timer_t *t)
{
    struct runctx *rc = t->data;
    if (rc->pred != NULL && rc->pred(rc->arg)) {
        rc->met = 1;
        uv_stop(t->loop);
    } else if (core_now_ms() >= rc->deadline) {
        uv_stop(t->loop);
    }
}

/*
 * Runs the loop until pred(arg) holds (checked every 2 ms on the loop) or
 * timeout_ms passes; pred NULL runs it for timeout_ms. Returns 1 if pred held.
 */
static int run_until(struct aenv *a, int (*pred)(void *), void *arg, int timeout_ms)
{
    uv_timer_t t;
    struct runctx rc = {a, pred, arg, core_now_ms() + (uint64_t)timeout_ms, 0};
    if (pred != NULL && pred(arg))
        return 1;
    ck_assert_int_eq(uv_timer_init(&a->loop, &t), 0);
    t.data = &rc;
    ck_assert_int_eq(uv_timer_start(&t, run_tick, 2, 2), 0);
    a->in_run = 1;
    uv_run(&a->loop, UV_RUN_DEFAULT);
    a->in_run = 0;
    uv_timer_stop(&t);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&a->loop, UV_RUN_NOWAIT); /* runs the close */
    if (pred != NULL && !rc.met)
        rc.met = pred(arg) != 0;
    return rc.met;
}

/* ------------------------------------------------------------ writes */

struct wreq {
    struct dlog_write_req req; /* first */
    struct aenv *a;
    int calls;
    int status;
    int on_loop; /* ran on the loop thread, inside uv_run */
};

static void wreq_cb(struct dlog_write_req *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    w->calls++;
    w->status = status;
    w->on_loop = pthread_equal(pthread_self(), w->a->loop_thread) && w->a->in_run;
}

struct wset {
    struct wreq *v;
    int n;
};

static int wset_done(void *arg)
{
    struct wset *s = arg;
    for (int i = 0; i < s->n; i++)
        if (s->v[i].calls == 0)
            return 0;
    return 1;
}

/* Writes n records (tag, from index first) with dlog_write on the loop; checks callbacks.
 */
static void loop_write(struct aenv *a, struct dlog_writer *w, int n, uint64_t tag,
                       uint64_t first, struct dlog_dlsn *acks)
{
    struct wset s = {calloc((size_t)n, sizeof(struct wreq)), n};
    char buf[120];
    ck_assert_ptr_nonnull(s.v);
    for (int i = 0; i < n; i++) {
        core_payload(buf, sizeof buf, tag, first + (uint64_t)i);
        struct dlog_record rec = {.payload = buf, .len = sizeof buf};
        s.v[i].a = a;
        CORE_ASSERT_OK(dlog_write(w, &s.v[i].req, &rec, 1, wreq_cb));
    }
    ck_assert_msg(run_until(a, wset_done, &s, 20000), "write callbacks missing");
    for (int i = 0; i < n; i++) {
        ck_assert_int_eq(s.v[i].calls, 1);
        ck_assert_msg(s.v[i].status == 0, "write %d: %s", i, dlog_errname(s.v[i].status));
        ck_assert_msg(s.v[i].on_loop, "write callback %d ran off the loop thread", i);
        if (i > 0)
            CORE_ASSERT_DLSN_LT(s.v[i - 1].req.first, s.v[i].req.first);
        if (acks != NULL)
            acks[i] = s.v[i].req.first;
    }
    /* Nothing runs twice later. */
    run_until(a, NULL, NULL, 20);
    for (int i = 0; i < n; i++)
        ck_assert_int_eq(s.v[i].calls, 1);
    free(s.v);
}

START_TEST(test_write_callbacks_on_loop)
{
    struct aenv a;
    struct dlog_dlsn acks[50];
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    cfg.segment_max_records = 16;
    aenv_open(&a, "asyncw", &cfg);
    struct dlog_writer *w = core_writer(a.e.ns, a.name, DLOG_WRITER_SHARED);
    loop_write(&a, w, 50, 1, 0, acks);

    /* The same records, read back (blocking reads, any thread). */
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct core_rec *recs = core_read_exact(r, 50, 10000);
    core_check_recs(recs, 50, 120, 1, 0, acks);
    for (int i = 0; i < 50; i++)
        ck_assert_uint_eq(recs[i].txid, (uint64_t)i + 1);
    core_recs_free(recs, 50);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    aenv_close(&a);
}
END_TEST

/* ------------------------------------------------------------ reads */

struct rreq {
    struct dlog_read_req req; /* first */
    struct aenv *a;
    struct dlog_record recs[16];
    int calls;
    int status;
    int on_loop;
    uint64_t done_ms;
    /* copies of what the callback saw (recs' memory is the reader's) */
    uint64_t txid[16];
    int ok[16];
    uint64_t tag, first;
};

static void rreq_cb(struct dlog_read_req *req, int status)
{
    struct rreq *r = (struct rreq *)req;
    r->calls++;
    r->status = status;
    r->on_loop = pthread_equal(pthread_self(), r->a->loop_thread) && r->a->in_run;
    r->done_ms = core_now_ms();
    for (int i = 0; i < status && i < 16; i++) {
        r->txid[i] = r->recs[i].txid;
        r->ok[i] = core_payload_ok(r->recs[i].payload, r->recs[i].len, r->tag,
                                   r->first + (uint64_t)i);
    }
}

static int rreq_done(void *arg)
{
    return ((struct rreq *)arg)->calls > 0;
}

START_TEST(test_read_async_existing)
{
    struct aenv a;
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    aenv_open(&a, "asyncr", &cfg);
    struct dlog_writer *w = core_writer(a.e.ns, a.name, DLOG_WRITER_SHARED);
    loop_write(&a, w, 10, 2, 0, NULL);
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    static struct rreq rr;
    int got = 0;
    while (got < 10) {
        memset(&rr, 0, sizeof rr);
        rr.a = &a;
        rr.tag = 2;
        rr.first = (uint64_t)got;
        CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, 5000, rreq_cb));
        ck_assert_msg(run_until(&a, rreq_done, &rr, 10000), "read callback missing");
        ck_assert_int_eq(rr.calls, 1);
        ck_assert_msg(rr.status >= 1 && rr.status <= 10 - got, "read: %d (%s)", rr.status,
                      dlog_errname(rr.status));
        ck_assert(rr.on_loop);
        for (int i = 0; i < rr.status; i++) {
            ck_assert_uint_eq(rr.txid[i], (uint64_t)(got + i + 1));
            ck_assert(rr.ok[i]);
        }
        got += rr.status;
    }
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    aenv_close(&a);
}
END_TEST

struct bg_write {
    struct dlog_writer *w;
    int rv;
};

static void *bg_write_main(void *arg)
{
    struct bg_write *b = arg;
    char buf[120];
    core_payload(buf, sizeof buf, 3, 1);
    struct dlog_record rec = {.payload = buf, .len = sizeof buf};
    b->rv = dlog_write_sync(b->w, &rec, 1, NULL);
    return NULL;
}

START_TEST(test_read_async_tails)
{
    struct aenv a;
    struct dlog_stream_config cfg = core_cfg();
    cfg.auto_txid = 1;
    aenv_open(&a, "asynctail", &cfg);
    struct dlog_writer *w = core_writer(a.e.ns, a.name, DLOG_WRITER_SHARED);
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    static struct rreq rr;

    /* 1: a record written later on the loop (async write). */
    memset(&rr, 0, sizeof rr);
    rr.a = &a;
    rr.tag = 3;
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, 15000, rreq_cb));
    run_until(&a, NULL, NULL, 50);
    ck_assert_msg(rr.calls == 0, "an async read on an empty stream completed: %s",
                  dlog_errname(rr.status));
    loop_write(&a, w, 1, 3, 0, NULL);
    ck_assert_msg(run_until(&a, rreq_done, &rr, 10000), "tailing read never completed");
    ck_assert_int_eq(rr.status, 1);
    ck_assert(rr.on_loop);
    ck_assert(rr.ok[0]);
    ck_assert_uint_eq(rr.txid[0], 1);

    /* 2: a record written by another thread with a blocking write. */
    memset(&rr, 0, sizeof rr);
    rr.a = &a;
    rr.tag = 3;
    rr.first = 1;
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, 15000, rreq_cb));
    run_until(&a, NULL, NULL, 20);
    ck_assert_int_eq(rr.calls, 0);
    struct bg_write b = {w, 1};
    pthread_t th;
    ck_assert_int_eq(pthread_create(&th, NULL, bg_write_main, &b), 0);
    int done = run_until(&a, rreq_done, &rr, 10000);
    pthread_join(th, NULL);
    ck_assert_msg(b.rv == 0, "background write: %s", dlog_errname(b.rv));
    ck_assert_msg(done, "tailing read never saw the other thread's record");
    ck_assert_int_eq(rr.status, 1);
    ck_assert(rr.on_loop);
    ck_assert(rr.ok[0]);
    ck_assert_uint_eq(rr.txid[0], 2);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    aenv_close(&a);
}
END_TEST

START_TEST(test_read_async_timeout)
{
    struct aenv a;
    aenv_open(&a, "asynctimeout", NULL);
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    static struct rreq rr;
    memset(&rr, 0, sizeof rr);
    rr.a = &a;
    uint64_t t0 = core_now_ms();
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, 150, rreq_cb));
    ck_assert_msg(run_until(&a, rreq_done, &rr, 5000), "timed read never completed");
    CORE_ASSERT_ERR(rr.status, DLOG_ETIMEDOUT);
    ck_assert(rr.on_loop);
    ck_assert_msg(rr.done_ms - t0 >= 140, "a 150 ms async read timed out after %llu ms",
                  (unsigned long long)(rr.done_ms - t0));
    /* A timeout of 0 does not wait. */
    memset(&rr, 0, sizeof rr);
    rr.a = &a;
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, 0, rreq_cb));
    ck_assert(run_until(&a, rreq_done, &rr, 1000));
    CORE_ASSERT_ERR(rr.status, DLOG_ETIMEDOUT);
    dlog_reader_close(r);
    aenv_close(&a);
}
END_TEST

START_TEST(test_read_async_cancel_and_busy)
{
    struct aenv a;
    aenv_open(&a, "asynccancel", NULL);
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    static struct rreq rr, second;
    memset(&rr, 0, sizeof rr);
    memset(&second, 0, sizeof second);
    rr.a = second.a = &a;
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, -1, rreq_cb));
    /* One read in flight per reader. */
    int rv = dlog_read_async(r, &second.req, second.recs, 16, -1, rreq_cb);
    ck_assert_msg(rv < 0, "a second async read on one reader was accepted");
    run_until(&a, NULL, NULL, 20);
    ck_assert_int_eq(rr.calls, 0);
    /* Closing the reader completes the read with DLOG_ECANCELED. */
    dlog_reader_close(r);
    ck_assert_msg(run_until(&a, rreq_done, &rr, 5000), "canceled read never completed");
    ck_assert_int_eq(rr.calls, 1);
    CORE_ASSERT_ERR(rr.status, DLOG_ECANCELED);
    ck_assert_int_eq(second.calls, 0);
    run_until(&a, NULL, NULL, 20);
    ck_assert_int_eq(rr.calls, 1);
    aenv_close(&a);
}
END_TEST

START_TEST(test_close_namespace_with_read_in_flight)
{
    struct aenv a;
    aenv_open(&a, "asyncnsclose", NULL);
    struct dlog_reader *r =
        core_reader(a.e.ns, a.name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    static struct rreq rr;
    memset(&rr, 0, sizeof rr);
    rr.a = &a;
    CORE_ASSERT_OK(dlog_read_async(r, &rr.req, rr.recs, 16, -1, rreq_cb));
    run_until(&a, NULL, NULL, 10);
    /* dlog_close closes the reader: its read completes, once, on the loop. */
    core_env_close(&a.e);
    ck_assert_msg(run_until(&a, rreq_done, &rr, 5000),
                  "read never completed after close");
    ck_assert_int_eq(rr.calls, 1);
    ck_assert_msg(rr.status < 0, "read completed with %d records", rr.status);
    aenv_close(&a);
}
END_TEST

/* ------------------------------------------------------------ without a loop */

struct thread_cb {
    pthread_t main;
    int calls;
    int off_main;
    int status;
};

static void thread_cb(struct dlog_write_req *req, int status)
{
    struct thread_cb *t = req->data;
    t->status = status;
    t->off_main = !pthread_equal(pthread_self(), t->main);
    __atomic_add_fetch(&t->calls, 1, __ATOMIC_RELEASE);
}

static int thread_cb_done(void *arg)
{
    return __atomic_load_n(&((struct thread_cb *)arg)->calls, __ATOMIC_ACQUIRE) > 0;
}

static void never_cb(struct dlog_read_req *req, int status)
{
    *(int *)req->data = 1;
}

START_TEST(test_no_loop)
{
    struct core_env e;
    char name[128];
    core_env_open(&e, NULL);
    core_stream_name(name, "noloop");
    core_create(e.ns, name, NULL);
    struct dlog_writer *w = core_writer(e.ns, name, DLOG_WRITER_SHARED);
    struct thread_cb t = {pthread_self(), 0, 0, 1};
    struct dlog_write_req req;
    memset(&req, 0, sizeof req);
    req.data = &t;
    struct dlog_record rec = {.payload = "x", .len = 1, .txid = 1};
    CORE_ASSERT_OK(dlog_write(w, &req, &rec, 1, thread_cb));
    ck_assert(core_wait_until(thread_cb_done, &t, 10000));
    ck_assert_int_eq(t.status, 0);
    ck_assert_msg(t.off_main, "without a loop the callback ran on the caller's thread");

    /* Async reads need a loop. */
    struct dlog_reader *r = core_reader(e.ns, name, DLOG_START_HEAD, DLOG_DLSN_HEAD, 0);
    struct dlog_read_req rr;
    struct dlog_record recs[4];
    int called = 0;
    memset(&rr, 0, sizeof rr);
    rr.data = &called;
    int rv = dlog_read_async(r, &rr, recs, 4, 100, never_cb);
    ck_assert_msg(rv < 0, "dlog_read_async without a loop returned %d", rv);
    ck_assert_str_ne(dlog_reader_errmsg(r), "");
    /* The reader still works with blocking reads. */
    ck_assert_int_eq(dlog_read(r, recs, 4, 5000), 1);
    core_nap_ms(20);
    ck_assert(!called);
    dlog_reader_close(r);
    CORE_ASSERT_OK(dlog_writer_close(w));
    core_env_close(&e);
}
END_TEST

Suite *async_suite(void)
{
    Suite *s = suite_create("async");
    TCase *tc = core_tcase("async", CORE_TIMEOUT);
    tcase_add_test(tc, test_write_callbacks_on_loop);
    tcase_add_test(tc, test_read_async_existing);
    tcase_add_test(tc, test_read_async_tails);
    tcase_add_test(tc, test_read_async_timeout);
    tcase_add_test(tc, test_read_async_cancel_and_busy);
    tcase_add_test(tc, test_close_namespace_with_read_in_flight);
    tcase_add_test(tc, test_no_loop);
    suite_add_tcase(s, tc);
    return s;
}
