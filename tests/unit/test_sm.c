/*
 * test-sm: the state-machine framework (include/dlog/sm.h), run once per
 * backend URI.
 *
 * The URIs come from DLOG_TEST_URIS (space-separated), by default
 * "mem: file:". "file:" alone means a fresh temporary directory, made here
 * and removed at the end; "file:DIR" is used as given. Each test uses its
 * own stream (and, on file:, its own namespace directory) and its own
 * snapshot directories under a temporary directory of the run.
 *
 * The state machine under test ("tsm") keeps NREG registers; the command
 * 'A' reg v sets reg = reg * 31 + v, which does not commute, so replicas
 * that applied different orders, skipped or repeated a record end with
 * different hashes. 'R' is rejected (a result), 'F' is a fatal error when
 * the replica is told so. Its snapshot carries optional filler bytes whose
 * pattern restore checks, to make snapshots span many chunks and parts.
 *
 * Threads other than the test's own never call ck_assert: they record what
 * they saw, and the test thread asserts. Nothing sleeps to wait: waits are
 * on conditions, pipes or polls, each with a deadline.
 */
#define _GNU_SOURCE
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlog/sm.h>

#include "uri_runner.h"

#define NREG         16
#define TEST_TIMEOUT 60

/* ------------------------------------------------------------------ run setup */

static char base_uri[4096] = "mem:";
static char tmp_base[256]; /* snapshot directories of this run */
static unsigned long counter;

static int backend_is_mem(void)
{
    return strncmp(base_uri, "mem:", 4) == 0;
}

static int backend_multiprocess(void)
{
    return !backend_is_mem();
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls pred(arg) about every millisecond until it holds or timeout_ms passes. */
static int wait_until(int (*pred)(void *), void *arg, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (pred(arg))
            return 1;
        if (now_ms() >= deadline)
            return 0;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
}

#define OK(expr)                                                                         \
    do {                                                                                 \
        int rv_ = (expr);                                                                \
        ck_assert_msg(rv_ == 0, "%s returned %d (%s)", #expr, rv_, dlog_errname(rv_));   \
    } while (0)

#define ERR(expr, code)                                                                  \
    do {                                                                                 \
        int rv_ = (expr);                                                                \
        ck_assert_msg(rv_ == (code), "%s returned %d (%s), expected %s", #expr, rv_,     \
                      dlog_errname(rv_), dlog_errname(code));                            \
    } while (0)

#define DLSN_FMT     "%llu/%llu/%u"
#define DLSN_ARGS(d) (unsigned long long)(d).seg, (unsigned long long)(d).entry, (d).slot

/* ------------------------------------------------------------------ per-test env */

struct env {
    char uri[4200];
    char stream[128];
    char snaps[512]; /* this test's directory for snapshot dirs */
    struct dlog_ns *ns;
};

static void ns_open(struct env *e)
{
    char err[DLOG_ERRMSG_LEN];
    int rv = dlog_open(e->uri, NULL, &e->ns, err);
    ck_assert_msg(rv == 0, "dlog_open %s: %s", e->uri, err);
}

static void env_init(struct env *e, const char *tag)
{
    memset(e, 0, sizeof *e);
    counter++;
    if (strncmp(base_uri, "file:", 5) == 0)
        snprintf(e->uri, sizeof e->uri, "file:%s/ns-%ld-%lu", base_uri + 5,
                 (long)getpid(), counter);
    else
        snprintf(e->uri, sizeof e->uri, "%s", base_uri);
    snprintf(e->stream, sizeof e->stream, "sm/%s-%ld-%lu", tag, (long)getpid(), counter);
    snprintf(e->snaps, sizeof e->snaps, "%s/%s-%ld-%lu", tmp_base, tag, (long)getpid(),
             counter);
    ck_assert_int_eq(mkdir(e->snaps, 0755), 0);
}

static void env_open(struct env *e, const char *tag)
{
    env_init(e, tag);
    ns_open(e);
}

/* A durable backend's namespace is closed and opened again; mem: stays. */
static void env_reopen(struct env *e)
{
    if (backend_is_mem())
        return;
    dlog_close(e->ns);
    ns_open(e);
}

static void env_close(struct env *e)
{
    if (e->ns != NULL)
        dlog_close(e->ns);
    e->ns = NULL;
}

static const char *snapdir(struct env *e, char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "%s/%s", e->snaps, name);
    return buf;
}

/* ------------------------------------------------------------------ the test state
 * machine */

struct tsm {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t reg[NREG];
    uint64_t napply;   /* apply calls (fatal ones not counted) */
    uint64_t nrestore; /* restore calls that succeeded */
    uint64_t nsnapshot;
    size_t filler; /* extra snapshot bytes */
    int fatal_on;  /* 'F' is fatal (else rejected) */
    int gate_closed;
    int gate_waiting;           /* apply is waiting at the gate */
    struct dlog_dlsn disk_dlsn; /* on-disk mode: persisted with the state */
    uint64_t n_applied_dlsn;
    struct dlog_dlsn first; /* first record applied since tsm_mark */
    int have_first;
};

static void tsm_init(struct tsm *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    pthread_cond_init(&t->cv, NULL);
}

static void tsm_destroy(struct tsm *t)
{
    pthread_mutex_destroy(&t->mu);
    pthread_cond_destroy(&t->cv);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

static int t_apply(void *app, const struct dlog_record *rec, struct dlog_buf *result)
{
    struct tsm *t = app;
    const uint8_t *p = rec->payload;
    uint8_t out[8];
    int rv = 0;
    pthread_mutex_lock(&t->mu);
    if (t->gate_closed) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_sec += 20; /* bounded: a failing test must not hang */
        t->gate_waiting = 1;
        pthread_cond_broadcast(&t->cv);
        while (t->gate_closed && pthread_cond_timedwait(&t->cv, &t->mu, &ts) == 0)
            ;
        t->gate_waiting = 0;
    }
    if (rec->len == 10 && p[0] == 'A') {
        uint64_t *r = &t->reg[p[1] % NREG];
        *r = *r * 31 + get64(p + 2);
        put64(out, *r);
        rv = dlog_buf_append(result, out, 8);
    } else if (rec->len == 1 && p[0] == 'F' && t->fatal_on) {
        pthread_mutex_unlock(&t->mu);
        return DLOG_EIO;
    } else {
        rv = dlog_buf_append(result, "rejected", 8);
    }
    t->napply++;
    t->disk_dlsn = rec->dlsn;
    if (!t->have_first) {
        t->first = rec->dlsn;
        t->have_first = 1;
    }
    pthread_mutex_unlock(&t->mu);
    return rv;
}

static uint8_t filler_byte(size_t i)
{
    return (uint8_t)(i * 7 + (i >> 9));
}

static int t_snapshot(void *app, struct dlog_snapshot_writer *w)
{
    struct tsm *t = app;
    uint8_t b[1000];
    pthread_mutex_lock(&t->mu);
    int rv = 0;
    put64(b, t->filler);
    rv = dlog_snapshot_write(w, b, 8);
    for (int i = 0; i < NREG && rv == 0; i++) {
        put64(b, t->reg[i]);
        rv = dlog_snapshot_write(w, b, 8); /* small writes: the framework buffers */
    }
    for (size_t off = 0; off < t->filler && rv == 0; off += sizeof b) {
        size_t n = t->filler - off < sizeof b ? t->filler - off : sizeof b;
        for (size_t i = 0; i < n; i++)
            b[i] = filler_byte(off + i);
        rv = dlog_snapshot_write(w, b, n);
    }
    t->nsnapshot++;
    pthread_mutex_unlock(&t->mu);
    return rv;
}

static int t_restore(void *app, struct dlog_snapshot_reader *r)
{
    struct tsm *t = app;
    uint8_t b[1000];
    uint64_t reg[NREG];
    int rv = dlog_snapshot_read_full(r, b, 8);
    size_t filler = rv == 0 ? (size_t)get64(b) : 0;
    for (int i = 0; i < NREG && rv == 0; i++) {
        rv = dlog_snapshot_read_full(r, b, 8);
        reg[i] = get64(b);
    }
    for (size_t off = 0; off < filler && rv == 0; off += sizeof b) {
        size_t n = filler - off < sizeof b ? filler - off : sizeof b;
        rv = dlog_snapshot_read_full(r, b, n);
        for (size_t i = 0; i < n && rv == 0; i++)
            if (b[i] != filler_byte(off + i))
                rv = DLOG_ECORRUPT;
    }
    if (rv == 0 && dlog_snapshot_read(r, b, 1) != 0)
        rv = DLOG_ECORRUPT; /* the snapshot must end here */
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&t->mu);
    memcpy(t->reg, reg, sizeof reg);
    t->disk_dlsn = dlog_snapshot_dlsn(r);
    t->nrestore++;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static int t_applied_dlsn(void *app, struct dlog_dlsn *out)
{
    struct tsm *t = app;
    pthread_mutex_lock(&t->mu);
    *out = t->disk_dlsn;
    t->n_applied_dlsn++;
    pthread_mutex_unlock(&t->mu);
    return 0;
}

static const struct dlog_sm_callbacks cb_snap = {
    .version = DLOG_SM_CALLBACKS_VERSION,
    .apply = t_apply,
    .snapshot = t_snapshot,
    .restore = t_restore,
};

static const struct dlog_sm_callbacks cb_disk = {
    .version = DLOG_SM_CALLBACKS_VERSION,
    .apply = t_apply,
    .snapshot = t_snapshot,
    .restore = t_restore,
    .applied_dlsn = t_applied_dlsn,
};

static uint64_t tsm_hash(struct tsm *t)
{
    uint64_t h = 1469598103934665603ULL;
    pthread_mutex_lock(&t->mu);
    for (int i = 0; i < NREG; i++)
        for (int k = 0; k < 8; k++) {
            h ^= (t->reg[i] >> (8 * k)) & 0xff;
            h *= 1099511628211ULL;
        }
    pthread_mutex_unlock(&t->mu);
    return h;
}

static uint64_t tsm_get(struct tsm *t, const uint64_t *field)
{
    pthread_mutex_lock(&t->mu);
    uint64_t v = *field;
    pthread_mutex_unlock(&t->mu);
    return v;
}

/* Forget the first applied record, to see where the next one is. */
static void tsm_mark(struct tsm *t)
{
    pthread_mutex_lock(&t->mu);
    t->have_first = 0;
    pthread_mutex_unlock(&t->mu);
}

static void gate(struct tsm *t, int closed)
{
    pthread_mutex_lock(&t->mu);
    t->gate_closed = closed;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static int at_gate(void *arg)
{
    struct tsm *t = arg;
    pthread_mutex_lock(&t->mu);
    int w = t->gate_waiting;
    pthread_mutex_unlock(&t->mu);
    return w;
}

static void cmd_add(uint8_t *c, unsigned reg, uint64_t v)
{
    c[0] = 'A';
    c[1] = (uint8_t)reg;
    put64(c + 2, v);
}

/* Proposes 'A' reg v; asserts success and returns the result (the new value). */
static uint64_t add(struct dlog_sm *sm, uint64_t client, uint64_t seq, unsigned reg,
                    uint64_t v)
{
    uint8_t c[10];
    struct dlog_buf res = {0};
    cmd_add(c, reg, v);
    int rv = dlog_sm_propose_sync(sm, client, seq, c, sizeof c, &res);
    ck_assert_msg(rv == 0, "propose: %s: %s", dlog_errname(rv), dlog_sm_errmsg(sm));
    ck_assert_uint_eq(res.len, 8);
    uint64_t out = get64(res.p);
    dlog_buf_free(&res);
    return out;
}

/* n proposals of a fixed pattern (client 0). */
static void add_n(struct dlog_sm *sm, int n, uint64_t tag)
{
    for (int i = 0; i < n; i++)
        add(sm, 0, 0, (unsigned)(i + tag), tag * 1000 + (uint64_t)i);
}

struct open_args {
    const char *snapshot_dir;
    uint64_t every;
    int keep;
    int shared;
    int auto_truncate;
    uint64_t part;
    const char *replica_id;
};

static int open_sm(struct env *e, const struct dlog_sm_callbacks *cb, struct tsm *t,
                   const struct open_args *a, struct dlog_sm **sm)
{
    struct dlog_sm_options o;
    dlog_sm_options_init(&o);
    if (a != NULL) {
        o.snapshot_dir = a->snapshot_dir;
        o.snapshot_every_records = a->every;
        if (a->keep > 0)
            o.keep_snapshots = a->keep;
        o.shared_snapshots = a->shared;
        o.auto_truncate = a->auto_truncate;
        o.shared_part_bytes = a->part;
        o.replica_id = a->replica_id;
    }
    return dlog_sm_open(e->ns, e->stream, cb, t, &o, sm);
}

static struct dlog_sm *must_open(struct env *e, const struct dlog_sm_callbacks *cb,
                                 struct tsm *t, const struct open_args *a)
{
    struct dlog_sm *sm = NULL;
    int rv = open_sm(e, cb, t, a, &sm);
    ck_assert_msg(rv == 0, "dlog_sm_open: %s", dlog_errname(rv));
    return sm;
}

/* The list of snapshot files in dir, newest first; returns the count. */
static int list_snaps(const char *dir, char names[][64], int max)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ls -1r %s 2>/dev/null | grep '^snap-.*\\.dsnap$'", dir);
    FILE *f = popen(cmd, "r");
    int n = 0;
    if (f == NULL)
        return 0;
    while (n < max && fgets(names[n], 64, f) != NULL) {
        names[n][strcspn(names[n], "\n")] = '\0';
        n++;
    }
    pclose(f);
    return n;
}

static struct dlog_dlsn snap_dlsn(const char *name)
{
    unsigned long long s, e;
    unsigned int slot;
    ck_assert_int_eq(sscanf(name, "snap-%llx-%llx-%x.dsnap", &s, &e, &slot), 3);
    return (struct dlog_dlsn){s, e, slot};
}

static struct dlog_dlsn truncation_point(struct env *e)
{
    struct dlog_stream_info *info;
    OK(dlog_stream_describe(e->ns, e->stream, &info));
    struct dlog_dlsn d = info->truncated;
    dlog_stream_info_free(info);
    return d;
}

/* ------------------------------------------------------------------ 1. threads */

#define WORKERS    3
#define PER_WORKER 150

struct worker {
    struct dlog_sm *sm;
    uint64_t client;
    unsigned seed;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int inflight;
    int err;
};

struct areq {
    struct dlog_propose_req req;
    struct worker *w;
};

static void async_done(struct dlog_propose_req *req, int status, const void *res,
                       size_t len)
{
    struct areq *a = (struct areq *)req;
    struct worker *w = a->w;
    pthread_mutex_lock(&w->mu);
    if (status != 0 || len != 8)
        w->err = status != 0 ? status : DLOG_EPROTO;
    w->inflight--;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    free(a);
    (void)res;
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int k = 0; k < PER_WORKER && w->err == 0; k++) {
        uint8_t c[10];
        cmd_add(c, (unsigned)rand_r(&w->seed), (uint64_t)rand_r(&w->seed));
        uint64_t seq = (uint64_t)k + 1;
        if (k % 3 == 0) { /* some async, several in flight */
            struct areq *a = calloc(1, sizeof *a);
            if (a == NULL) {
                w->err = DLOG_ENOMEM;
                break;
            }
            a->w = w;
            pthread_mutex_lock(&w->mu);
            while (w->inflight >= 8)
                pthread_cond_wait(&w->cv, &w->mu);
            w->inflight++;
            pthread_mutex_unlock(&w->mu);
            int rv =
                dlog_sm_propose(w->sm, &a->req, w->client, seq, c, sizeof c, async_done);
            if (rv != 0) {
                free(a);
                pthread_mutex_lock(&w->mu);
                w->inflight--;
                w->err = rv;
                pthread_mutex_unlock(&w->mu);
            }
        } else {
            struct dlog_buf res = {0};
            int rv = dlog_sm_propose_sync(w->sm, w->client, seq, c, sizeof c, &res);
            if (rv != 0 || res.len != 8)
                w->err = rv != 0 ? rv : DLOG_EPROTO;
            dlog_buf_free(&res);
        }
    }
    pthread_mutex_lock(&w->mu);
    while (w->inflight > 0)
        pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

START_TEST(test_threads_identical)
{
    struct env e;
    struct tsm t[WORKERS + 1];
    struct dlog_sm *sm[WORKERS + 1];
    struct worker w[WORKERS];
    pthread_t th[WORKERS];
    char dir[WORKERS][1024];
    env_open(&e, "threads");
    for (int i = 0; i < WORKERS; i++) {
        char name[16];
        snprintf(name, sizeof name, "r%d", i);
        struct open_args a = {.snapshot_dir = snapdir(&e, dir[i], sizeof dir[i], name),
                              .every = 37 + (uint64_t)i * 11,
                              .shared = i == 0,
                              .auto_truncate = 1};
        tsm_init(&t[i]);
        sm[i] = must_open(&e, &cb_snap, &t[i], &a);
    }
    for (int i = 0; i < WORKERS; i++) {
        memset(&w[i], 0, sizeof w[i]);
        w[i].sm = sm[i];
        w[i].client = 100 + (uint64_t)i;
        w[i].seed = 7u * (unsigned)i + 1;
        pthread_mutex_init(&w[i].mu, NULL);
        pthread_cond_init(&w[i].cv, NULL);
        ck_assert_int_eq(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < WORKERS; i++) {
        pthread_join(th[i], NULL);
        ck_assert_msg(w[i].err == 0, "worker %d: %s", i, dlog_errname(w[i].err));
        pthread_mutex_destroy(&w[i].mu);
        pthread_cond_destroy(&w[i].cv);
    }
    for (int i = 0; i < WORKERS; i++)
        OK(dlog_sm_barrier(sm[i], 20000));
    uint64_t h = tsm_hash(&t[0]);
    for (int i = 0; i < WORKERS; i++) {
        ck_assert_msg(tsm_hash(&t[i]) == h, "replica %d differs", i);
        ck_assert_int_eq(dlog_dlsn_cmp(dlog_sm_applied(sm[i]), dlog_sm_applied(sm[0])),
                         0);
        ck_assert_int_eq(dlog_sm_error(sm[i]), 0);
    }
    /* Each replica applied every proposal exactly once. */
    for (int i = 0; i < WORKERS; i++)
        ck_assert_uint_eq(tsm_get(&t[i], &t[i].napply), WORKERS * PER_WORKER);
    ck_assert_uint_gt(tsm_get(&t[0], &t[0].nsnapshot), 0);
    /* A fresh replica that starts from the shared snapshot and replays agrees. */
    tsm_init(&t[WORKERS]);
    sm[WORKERS] = must_open(&e, &cb_snap, &t[WORKERS], NULL);
    ck_assert_msg(tsm_hash(&t[WORKERS]) == h, "late replica differs");
    for (int i = 0; i <= WORKERS; i++) {
        dlog_sm_close(sm[i]);
        tsm_destroy(&t[i]);
    }
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 2. processes */

#define PROCS    3
#define PER_PROC 80

static int write_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads exactly n bytes before the deadline; 0 or -1. */
static int read_deadline(int fd, void *p, size_t n, uint64_t deadline)
{
    char *b = p;
    while (n > 0) {
        uint64_t now = now_ms();
        if (now >= deadline)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(deadline - now));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        ssize_t k = read(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

struct child {
    pid_t pid;
    int up[2];   /* child -> parent */
    int down[2]; /* parent -> child */
};

/* The child's life: never calls Check; reports through the pipe and exit status. */
static int child_main(struct env *e, int idx, int up, int down)
{
    struct dlog_sm_options o;
    struct dlog_sm *sm = NULL;
    struct tsm t;
    char err[DLOG_ERRMSG_LEN], dir[1024], name[16], c;
    uint64_t forever = now_ms() + 60000;
    if (dlog_open(e->uri, NULL, &e->ns, err) != 0)
        return 10;
    tsm_init(&t);
    snprintf(name, sizeof name, "p%d", idx);
    dlog_sm_options_init(&o);
    o.snapshot_dir = snapdir(e, dir, sizeof dir, name);
    o.snapshot_every_records = 41;
    o.auto_truncate = 0; /* the parent replays everything at the end */
    if (dlog_sm_open(e->ns, e->stream, &cb_snap, &t, &o, &sm) != 0)
        return 11;
    if (write_all(up, "r", 1) != 0 || read_deadline(down, &c, 1, forever) != 0)
        return 12;
    unsigned seed = 31u * (unsigned)idx + 5;
    for (int k = 0; k < PER_PROC; k++) {
        uint8_t cmd[10];
        struct dlog_buf res = {0};
        cmd_add(cmd, (unsigned)rand_r(&seed), (uint64_t)rand_r(&seed));
        int rv = dlog_sm_propose_sync(sm, 1000 + (uint64_t)idx, (uint64_t)k + 1, cmd,
                                      sizeof cmd, &res);
        dlog_buf_free(&res);
        if (rv != 0)
            return 13;
    }
    if (write_all(up, "d", 1) != 0 || read_deadline(down, &c, 1, forever) != 0)
        return 14;
    if (dlog_sm_barrier(sm, 30000) != 0)
        return 15;
    uint8_t out[16];
    put64(out, tsm_hash(&t));
    put64(out + 8, tsm_get(&t, &t.napply));
    if (write_all(up, out, sizeof out) != 0)
        return 16;
    dlog_sm_close(sm);
    dlog_close(e->ns);
    tsm_destroy(&t);
    return 0;
}

static void kill_all(struct child *ch, int n)
{
    for (int i = 0; i < n; i++)
        if (ch[i].pid > 0) {
            kill(ch[i].pid, SIGKILL);
            waitpid(ch[i].pid, NULL, 0);
            ch[i].pid = 0;
        }
}

/* Sends one byte to every child, then reads one from each; 0 when all answered. */
static int step(struct child *ch, const char *send, char expect, uint64_t deadline)
{
    for (int i = 0; i < PROCS; i++) {
        char c = 0;
        if (send != NULL && write_all(ch[i].down[1], send, 1) != 0)
            return -1;
        if (expect != 0 &&
            (read_deadline(ch[i].up[0], &c, 1, deadline) != 0 || c != expect))
            return -1;
    }
    return 0;
}

START_TEST(test_processes_identical)
{
    struct env e;
    struct child ch[PROCS];
    uint64_t hash[PROCS], counts[PROCS];
    if (!backend_multiprocess()) {
        printf("  note: skipped on %s: one process only\n", base_uri);
        return;
    }
    env_init(&e, "procs"); /* the parent opens nothing before forking */
    memset(ch, 0, sizeof ch);
    fflush(stdout);
    fflush(stderr);
    for (int i = 0; i < PROCS; i++) {
        ck_assert_int_eq(pipe(ch[i].up), 0);
        ck_assert_int_eq(pipe(ch[i].down), 0);
        ch[i].pid = fork();
        ck_assert_int_ge(ch[i].pid, 0);
        if (ch[i].pid == 0) {
            alarm(60);
            for (int j = 0; j <= i; j++) {
                close(ch[j].up[0]);
                close(ch[j].down[1]);
            }
            _exit(child_main(&e, i, ch[i].up[1], ch[i].down[0]));
        }
        close(ch[i].up[1]);
        close(ch[i].down[0]);
    }
    uint64_t deadline = now_ms() + 50000;
    int ok = step(ch, NULL, 'r', deadline) == 0 && /* all open */
             step(ch, "g", 'd', deadline) == 0;    /* all proposed */
    if (ok)
        ok = step(ch, "h", 0, deadline) == 0; /* now barrier and hash */
    for (int i = 0; ok && i < PROCS; i++) {
        uint8_t b[16];
        ok = read_deadline(ch[i].up[0], b, sizeof b, deadline) == 0;
        hash[i] = get64(b);
        counts[i] = get64(b + 8);
    }
    for (int i = 0; i < PROCS; i++) {
        int st = -1;
        if (ok) {
            while (now_ms() < deadline && waitpid(ch[i].pid, &st, WNOHANG) == 0) {
                struct pollfd pfd = {ch[i].up[0], POLLIN, 0};
                poll(&pfd, 1, 10); /* the pipe closes when the child exits */
            }
            ok = WIFEXITED(st) && WEXITSTATUS(st) == 0;
            if (!ok)
                printf("  child %d: status %d\n", i, st);
            ch[i].pid = st == -1 ? ch[i].pid : 0;
        }
    }
    kill_all(ch, PROCS);
    for (int i = 0; i < PROCS; i++) {
        close(ch[i].up[0]);
        close(ch[i].down[1]);
    }
    ck_assert_msg(ok, "a child failed or timed out");
    for (int i = 0; i < PROCS; i++) {
        ck_assert_msg(hash[i] == hash[0], "process %d's state differs", i);
        ck_assert_uint_eq(counts[i], PROCS * PER_PROC); /* each applied once */
    }
    /* A replica that replays the whole stream here agrees. */
    struct tsm t;
    tsm_init(&t);
    ns_open(&e);
    struct dlog_sm *sm = must_open(&e, &cb_snap, &t, NULL);
    ck_assert_uint_eq(tsm_get(&t, &t.napply), PROCS * PER_PROC);
    ck_assert_msg(tsm_hash(&t) == hash[0], "the replayed state differs");
    dlog_sm_close(sm);
    tsm_destroy(&t);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 3. restart */

START_TEST(test_restart_from_snapshot)
{
    struct env e;
    struct tsm t;
    char dir[1024];
    env_open(&e, "restart");
    struct open_args a = {.snapshot_dir = snapdir(&e, dir, sizeof dir, "a"),
                          .every = 50,
                          .auto_truncate = 1};
    tsm_init(&t);
    t.filler = 150 * 1000; /* three chunks */
    struct dlog_sm *sm = must_open(&e, &cb_snap, &t, &a);
    add_n(sm, 230, 1);
    uint64_t h = tsm_hash(&t);
    struct dlog_dlsn applied = dlog_sm_applied(sm);
    ck_assert_uint_eq(tsm_get(&t, &t.nsnapshot), 4);
    dlog_sm_close(sm);
    tsm_destroy(&t);

    env_reopen(&e);
    tsm_init(&t);
    t.filler = 150 * 1000;
    sm = must_open(&e, &cb_snap, &t, &a);
    ck_assert_msg(tsm_hash(&t) == h, "state after restart differs");
    ck_assert_uint_eq(tsm_get(&t, &t.nrestore), 1);
    /* Restored at record 200, replayed only the last 30. */
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 30);
    ck_assert_uint_eq(tsm_get(&t, &t.napply), 30);
    ck_assert_int_eq(dlog_dlsn_cmp(dlog_sm_applied(sm), applied), 0);
    /* The stream is truncated below the oldest snapshot kept. */
    struct dlog_dlsn tp = truncation_point(&e);
    ck_assert_msg(dlog_dlsn_cmp(tp, (struct dlog_dlsn){1, 0, 0}) > 0,
                  "not truncated: " DLSN_FMT, DLSN_ARGS(tp));
    /* It goes on from there. */
    add(sm, 0, 0, 3, 3);
    OK(dlog_sm_barrier(sm, 10000));
    dlog_sm_close(sm);
    tsm_destroy(&t);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 4. shared snapshots
 */

START_TEST(test_shared_bootstrap)
{
    struct env e;
    struct tsm ta, tb, tc;
    char dir[1024], dirb[1024];
    env_open(&e, "shared");
    struct open_args a = {.snapshot_dir = snapdir(&e, dir, sizeof dir, "a"),
                          .shared = 1,
                          .part = 4096, /* many records per snapshot */
                          .auto_truncate = 0};
    tsm_init(&ta);
    ta.filler = 100 * 1000;
    struct dlog_sm *sa = must_open(&e, &cb_snap, &ta, &a);
    add_n(sa, 200, 2);
    OK(dlog_sm_snapshot(sa));
    struct dlog_dlsn s = dlog_sm_applied(sa);
    add_n(sa, 20, 3);
    uint64_t h = tsm_hash(&ta);
    /* Cut the stream below the snapshot: a replay from the head cannot work. */
    OK(dlog_stream_truncate(e.ns, e.stream, s));
    struct dlog_reader_options ro;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_DLSN;
    ro.start_dlsn = (struct dlog_dlsn){1, 0, 0};
    ERR(dlog_reader_open(e.ns, e.stream, &ro, &r), DLOG_ETRUNCATED);
    /* An empty replica (empty snapshot_dir) bootstraps from the shared one. */
    struct open_args b = {.snapshot_dir = snapdir(&e, dirb, sizeof dirb, "b"),
                          .auto_truncate = 0};
    tsm_init(&tb);
    tb.filler = 100 * 1000;
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, &b);
    ck_assert_msg(tsm_hash(&tb) == h, "bootstrapped state differs");
    ck_assert_uint_eq(tsm_get(&tb, &tb.nrestore), 1);
    ck_assert_uint_eq(dlog_sm_applied_count(sb), 20);
    /* So does one without any snapshot_dir, and it keeps up with new writes. */
    tsm_init(&tc);
    struct dlog_sm *sc = must_open(&e, &cb_snap, &tc, NULL);
    ck_assert_msg(tsm_hash(&tc) == h, "second bootstrapped state differs");
    add(sc, 0, 0, 5, 5);
    OK(dlog_sm_barrier(sa, 10000));
    OK(dlog_sm_barrier(sb, 10000));
    ck_assert(tsm_hash(&ta) == tsm_hash(&tc) && tsm_hash(&tb) == tsm_hash(&tc));
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    dlog_sm_close(sc);
    tsm_destroy(&ta);
    tsm_destroy(&tb);
    tsm_destroy(&tc);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 5. exactly-once */

struct result {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    int status;
    uint8_t res[8];
    size_t len;
};

static void result_cb(struct dlog_propose_req *req, int status, const void *res,
                      size_t len)
{
    struct result *r = req->data;
    pthread_mutex_lock(&r->mu);
    r->status = status;
    r->len = len;
    if (len <= sizeof r->res && len > 0)
        memcpy(r->res, res, len);
    r->done = 1;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
}

static void result_init(struct result *r)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
}

/* Waits (deadline 20 s) for the callback; returns its status. */
static int result_wait(struct result *r)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += 20;
    pthread_mutex_lock(&r->mu);
    while (!r->done && pthread_cond_timedwait(&r->cv, &r->mu, &ts) == 0)
        ;
    int done = r->done;
    pthread_mutex_unlock(&r->mu);
    ck_assert_msg(done, "no completion within 20 s");
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    return r->status;
}

START_TEST(test_exactly_once)
{
    struct env e;
    struct tsm ta, tb;
    char dir[1024];
    uint8_t c[10], other[10];
    struct dlog_buf res = {0};
    env_open(&e, "once");
    struct open_args a = {.snapshot_dir = snapdir(&e, dir, sizeof dir, "a"),
                          .auto_truncate = 1};
    tsm_init(&ta);
    tsm_init(&tb);
    struct dlog_sm *sa = must_open(&e, &cb_snap, &ta, &a);
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, NULL);
    uint64_t first = add(sa, 7, 1, 3, 11);
    ck_assert_uint_eq(tsm_get(&ta, &ta.napply), 1);
    /* The same (client, seq) again, through either replica: not applied again. */
    ck_assert_uint_eq(add(sa, 7, 1, 3, 11), first);
    ck_assert_uint_eq(add(sb, 7, 1, 3, 11), first);
    cmd_add(other, 4, 99); /* even with another command: the first result */
    OK(dlog_sm_propose_sync(sa, 7, 1, other, sizeof other, &res));
    ck_assert_uint_eq(get64(res.p), first);
    OK(dlog_sm_barrier(sa, 10000));
    OK(dlog_sm_barrier(sb, 10000));
    ck_assert_uint_eq(tsm_get(&ta, &ta.napply), 1);
    ck_assert_uint_eq(tsm_get(&tb, &tb.napply), 1);
    /* The next seq is applied; an older one is refused. */
    uint64_t second = add(sb, 7, 2, 3, 12);
    ck_assert_uint_ne(second, first);
    cmd_add(c, 3, 11);
    ERR(dlog_sm_propose_sync(sa, 7, 1, c, sizeof c, &res), DLOG_ECONFLICT);
    /* Two retries in flight at once, through both replicas: applied once. */
    struct result r1, r2;
    struct dlog_propose_req q1, q2;
    result_init(&r1);
    result_init(&r2);
    memset(&q1, 0, sizeof q1);
    memset(&q2, 0, sizeof q2);
    q1.data = &r1;
    q2.data = &r2;
    cmd_add(c, 9, 5);
    OK(dlog_sm_propose(sa, &q1, 9, 1, c, sizeof c, result_cb));
    OK(dlog_sm_propose(sb, &q2, 9, 1, c, sizeof c, result_cb));
    OK(result_wait(&r1));
    OK(result_wait(&r2));
    ck_assert(r1.len == 8 && r2.len == 8 && memcmp(r1.res, r2.res, 8) == 0);
    ck_assert_int_eq(dlog_dlsn_cmp(q1.dlsn, q2.dlsn), 0); /* where it was applied */
    OK(dlog_sm_barrier(sa, 10000));
    OK(dlog_sm_barrier(sb, 10000));
    ck_assert_uint_eq(tsm_get(&ta, &ta.napply), 3);
    ck_assert_uint_eq(tsm_get(&tb, &tb.napply), 3);
    ck_assert(tsm_hash(&ta) == tsm_hash(&tb));
    /* The table is in the snapshot: after a restart a retry is still deduplicated. */
    OK(dlog_sm_snapshot(sa));
    dlog_sm_close(sa);
    tsm_destroy(&ta);
    tsm_init(&ta);
    sa = must_open(&e, &cb_snap, &ta, &a);
    ck_assert_uint_eq(tsm_get(&ta, &ta.nrestore), 1);
    ck_assert_uint_eq(dlog_sm_applied_count(sa), 0);
    ck_assert_uint_eq(add(sa, 7, 2, 3, 12), second);
    ck_assert_uint_eq(dlog_sm_applied_count(sa), 0);
    dlog_buf_free(&res);
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    tsm_destroy(&ta);
    tsm_destroy(&tb);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 6. barrier */

START_TEST(test_read_barrier)
{
    struct env e;
    struct tsm ta, tb;
    env_open(&e, "barrier");
    tsm_init(&ta);
    tsm_init(&tb);
    struct dlog_sm *sa = must_open(&e, &cb_snap, &ta, NULL);
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, NULL);
    OK(dlog_sm_barrier(sb, 1000)); /* an empty stream: at once */
    /* B is slow: its apply waits at a gate. A write through A completes. */
    gate(&tb, 1);
    uint64_t v = add(sa, 0, 0, 2, 77);
    ck_assert_msg(wait_until(at_gate, &tb, 10000), "B never reached the record");
    /* A barrier on B cannot complete before B applied the write. */
    ERR(dlog_sm_barrier(sb, 100), DLOG_ETIMEDOUT);
    ck_assert_uint_eq(tsm_get(&tb, &tb.napply), 0);
    gate(&tb, 0);
    OK(dlog_sm_barrier(sb, 10000));
    /* After the barrier a local read on B sees A's write. */
    ck_assert_uint_eq(tsm_get(&tb, &tb.reg[2]), v);
    ck_assert_uint_eq(tsm_get(&tb, &tb.napply), 1);
    /* Many writes, then a barrier each: always the latest value. */
    for (int i = 0; i < 20; i++) {
        v = add(i % 2 ? sa : sb, 0, 0, 2, (uint64_t)i);
        OK(dlog_sm_barrier(i % 2 ? sb : sa, 10000));
        ck_assert_uint_eq(tsm_get(i % 2 ? &tb : &ta, i % 2 ? &tb.reg[2] : &ta.reg[2]), v);
    }
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    tsm_destroy(&ta);
    tsm_destroy(&tb);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 7. corrupt snapshot
 */

static void flip_byte(const char *path, long where)
{
    int fd = open(path, O_RDWR);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    if (st.st_size == 0) { /* already broken */
        close(fd);
        return;
    }
    off_t off = where >= 0 ? where : st.st_size / 2;
    uint8_t b;
    ck_assert_int_eq(pread(fd, &b, 1, off), 1);
    b ^= 0x40;
    ck_assert_int_eq(pwrite(fd, &b, 1, off), 1);
    close(fd);
}

START_TEST(test_corrupt_snapshot_fallback)
{
    struct env e;
    struct tsm t;
    char dir[1024], names[8][64], path[2048];
    env_open(&e, "corrupt");
    struct open_args a = {
        .snapshot_dir = snapdir(&e, dir, sizeof dir, "a"), .keep = 3, .auto_truncate = 1};
    tsm_init(&t);
    t.filler = 80 * 1000;
    struct dlog_sm *sm = must_open(&e, &cb_snap, &t, &a);
    add_n(sm, 100, 4);
    OK(dlog_sm_snapshot(sm));
    add_n(sm, 50, 5);
    OK(dlog_sm_snapshot(sm));
    add_n(sm, 10, 6);
    uint64_t h = tsm_hash(&t);
    dlog_sm_close(sm);
    tsm_destroy(&t);
    ck_assert_int_eq(list_snaps(dir, names, 8), 2);

    /*
     * One byte flipped in the newest: in a register (file offset 100: the
     * 64-byte header, a chunk header, the empty exactly-once table, the
     * filler length, reg[0]), which the application could not notice. Its
     * chunk's CRC fails, and the older snapshot is used.
     */
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    flip_byte(path, 100);
    env_reopen(&e);
    tsm_init(&t);
    t.filler = 80 * 1000;
    sm = must_open(&e, &cb_snap, &t, &a);
    ck_assert_msg(tsm_hash(&t) == h, "state after the fallback differs");
    ck_assert_uint_eq(tsm_get(&t, &t.nrestore), 1);
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 60); /* from record 100 */
    dlog_sm_close(sm);
    tsm_destroy(&t);

    /* The broken one cut to nothing: still the older one. */
    ck_assert_int_eq(truncate(path, 0), 0);
    tsm_init(&t);
    t.filler = 80 * 1000;
    sm = must_open(&e, &cb_snap, &t, &a);
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 60);
    OK(dlog_sm_snapshot(sm)); /* snapshot at 160, the newest again */
    dlog_sm_close(sm);
    tsm_destroy(&t);
    /* A byte of the newest one's header (at 160) flipped: the same. */
    ck_assert_int_eq(list_snaps(dir, names, 8), 3);
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    flip_byte(path, 20);
    tsm_init(&t);
    t.filler = 80 * 1000;
    sm = must_open(&e, &cb_snap, &t, &a);
    ck_assert_msg(tsm_hash(&t) == h, "state after the header fallback differs");
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 60);
    dlog_sm_close(sm);
    tsm_destroy(&t);

    /* Every snapshot damaged, the stream truncated: an error, never a wrong state. */
    int n = list_snaps(dir, names, 8);
    for (int i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        flip_byte(path, -1);
    }
    tsm_init(&t);
    t.filler = 80 * 1000;
    ck_assert_msg(dlog_dlsn_cmp(truncation_point(&e), (struct dlog_dlsn){1, 0, 0}) > 0,
                  "the stream should be truncated");
    sm = NULL;
    ERR(open_sm(&e, &cb_snap, &t, &a, &sm), DLOG_ETRUNCATED);
    ck_assert_ptr_null(sm);
    tsm_destroy(&t);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 8. apply errors */

START_TEST(test_apply_errors)
{
    struct env e;
    struct tsm ta, tb;
    struct dlog_buf res = {0};
    env_open(&e, "errors");
    tsm_init(&ta);
    tsm_init(&tb);
    ta.fatal_on = 1;
    struct dlog_sm *sa = must_open(&e, &cb_snap, &ta, NULL);
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, NULL);
    add(sa, 0, 0, 1, 1);
    /* A rejection is a result. */
    OK(dlog_sm_propose_sync(sa, 0, 0, "R", 1, &res));
    ck_assert(res.len == 8 && memcmp(res.p, "rejected", 8) == 0);
    ck_assert_int_eq(dlog_sm_error(sa), 0);
    /* A fatal error stops A; queued proposals fail with it. */
    gate(&ta, 1);
    struct result r1, r2;
    struct dlog_propose_req q1, q2;
    uint8_t c[10];
    result_init(&r1);
    result_init(&r2);
    memset(&q1, 0, sizeof q1);
    memset(&q2, 0, sizeof q2);
    q1.data = &r1;
    q2.data = &r2;
    cmd_add(c, 1, 2);
    OK(dlog_sm_propose(sa, &q1, 0, 0, "F", 1, result_cb));
    OK(dlog_sm_propose(sa, &q2, 0, 0, c, sizeof c, result_cb));
    gate(&ta, 0);
    ERR(result_wait(&r1), DLOG_EIO);
    ERR(result_wait(&r2), DLOG_EIO);
    ERR(dlog_sm_error(sa), DLOG_EIO);
    ck_assert_msg(strstr(dlog_sm_errmsg(sa), "apply") != NULL, "errmsg: %s",
                  dlog_sm_errmsg(sa));
    struct dlog_dlsn stopped = dlog_sm_applied(sa);
    ERR(dlog_sm_propose_sync(sa, 0, 0, c, sizeof c, &res), DLOG_EIO);
    ERR(dlog_sm_barrier(sa, 1000), DLOG_EIO);
    /* B (for which 'F' is a rejection) goes on; A never skips the record. */
    add(sb, 0, 0, 1, 3);
    OK(dlog_sm_barrier(sb, 10000));
    ck_assert_int_eq(dlog_dlsn_cmp(dlog_sm_applied(sa), stopped), 0);
    ck_assert_uint_eq(tsm_get(&ta, &ta.napply), 2);
    dlog_sm_close(sa);
    /* Reopened with the same bug: the same error, at the same record. */
    struct dlog_sm *again = NULL;
    tsm_destroy(&ta);
    tsm_init(&ta);
    ta.fatal_on = 1;
    ERR(open_sm(&e, &cb_snap, &ta, NULL, &again), DLOG_EIO);
    ck_assert_ptr_null(again);
    /* Fixed: it applies the record and catches up with B. */
    tsm_destroy(&ta);
    tsm_init(&ta);
    sa = must_open(&e, &cb_snap, &ta, NULL);
    ck_assert(tsm_hash(&ta) == tsm_hash(&tb));
    ck_assert_uint_eq(tsm_get(&ta, &ta.napply), tsm_get(&tb, &tb.napply));
    dlog_buf_free(&res);
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    tsm_destroy(&ta);
    tsm_destroy(&tb);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 9. on-disk mode */

START_TEST(test_ondisk_mode)
{
    struct env e;
    struct tsm t, tb; /* t's memory plays the application's disk */
    char dir[1024];
    env_open(&e, "ondisk");
    struct open_args a = {.snapshot_dir = snapdir(&e, dir, sizeof dir, "a"),
                          .every = 25,
                          .auto_truncate = 1};
    /* B keeps snapshots too: the stream gets truncated. */
    char dirb[1024];
    struct open_args b = {.snapshot_dir = snapdir(&e, dirb, sizeof dirb, "b"),
                          .every = 10,
                          .auto_truncate = 1};
    tsm_init(&t);
    tsm_init(&tb);
    struct dlog_sm *sm = must_open(&e, &cb_disk, &t, &a);
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, &b);
    ck_assert_uint_eq(tsm_get(&t, &t.n_applied_dlsn), 1);
    for (int i = 0; i < 60; i++)
        add(sm, 5, (uint64_t)i + 1, (unsigned)i, (uint64_t)i);
    uint64_t last = add(sm, 6, 1, 1, 1);
    dlog_sm_close(sm);
    struct dlog_dlsn disk = t.disk_dlsn;
    ck_assert_uint_eq(t.nsnapshot,
                      0); /* local snapshots hold only the framework's state */

    /* Written while A is down. */
    add_n(sb, 20, 7);
    dlog_sm_close(sb);
    tsm_destroy(&tb);
    env_reopen(&e);
    tsm_init(&tb);
    sb = must_open(&e, &cb_snap, &tb, &b);
    uint64_t before = tsm_get(&t, &t.napply);
    tsm_mark(&t);
    sm = must_open(&e, &cb_disk, &t, &a);
    ck_assert_uint_eq(tsm_get(&t, &t.n_applied_dlsn), 2);
    ck_assert_uint_eq(tsm_get(&t, &t.nrestore), 0);
    /* Only the records after the persisted DLSN were applied. */
    ck_assert_uint_eq(tsm_get(&t, &t.napply) - before, 20);
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 20);
    ck_assert_msg(dlog_dlsn_cmp(t.first, disk) > 0, "replayed " DLSN_FMT " <= " DLSN_FMT,
                  DLSN_ARGS(t.first), DLSN_ARGS(disk));
    ck_assert(tsm_hash(&t) == tsm_hash(&tb));
    /* The exactly-once table survived the reopen: a retry is not applied. */
    ck_assert_uint_eq(add(sm, 6, 1, 1, 1), last);
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 20);
    add(sm, 8, 1, 2, 2);
    dlog_sm_close(sm);

    /*
     * A crash before the close-time snapshot of the framework's state: drop
     * the newest file. The table is rebuilt from the records up to the
     * application's DLSN, which are read but not applied again.
     */
    char names[8][64], path[2048];
    ck_assert_int_ge(list_snaps(dir, names, 8), 2);
    snprintf(path, sizeof path, "%s/%s", dir, names[0]);
    ck_assert_int_eq(unlink(path), 0);
    before = tsm_get(&t, &t.napply);
    sm = must_open(&e, &cb_disk, &t, &a);
    ck_assert_uint_eq(tsm_get(&t, &t.napply), before);
    ck_assert_uint_eq(dlog_sm_applied_count(sm), 0);
    uint8_t c[10];
    struct dlog_buf res = {0};
    cmd_add(c, 2, 2);
    OK(dlog_sm_propose_sync(sm, 8, 1, c, sizeof c, &res)); /* applied once... */
    ck_assert_uint_eq(res.len, 0); /* ...but its result was not kept */
    ck_assert_uint_eq(tsm_get(&t, &t.napply), before);
    ck_assert_uint_eq(add(sm, 5, 60, 59, 59), add(sb, 5, 60, 59, 59)); /* known ones */
    ck_assert_uint_eq(tsm_get(&t, &t.napply), before);
    dlog_buf_free(&res);
    dlog_sm_close(sm);
    dlog_sm_close(sb);
    tsm_destroy(&t);
    tsm_destroy(&tb);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ 10. truncation */

START_TEST(test_truncation)
{
    struct env e;
    struct tsm ta, tb, tc;
    char da[1024], db[1024], dc[1024], names[8][64];
    env_open(&e, "trunc");
    struct open_args a = {.snapshot_dir = snapdir(&e, da, sizeof da, "a"),
                          .every = 40,
                          .keep = 2,
                          .auto_truncate = 1,
                          .replica_id = "A"};
    struct open_args b = a, c = a;
    b.snapshot_dir = snapdir(&e, db, sizeof db, "b");
    b.replica_id = "B";
    b.every = 0; /* B snapshots only when asked */
    c.snapshot_dir = snapdir(&e, dc, sizeof dc, "c");
    c.replica_id = "C";
    c.every = 0;
    tsm_init(&ta);
    tsm_init(&tb);
    tsm_init(&tc);
    struct dlog_sm *sa = must_open(&e, &cb_snap, &ta, &a);
    struct dlog_sm *sb = must_open(&e, &cb_snap, &tb, &b);
    /* C registers, then goes away without a snapshot. */
    struct dlog_sm *sc = must_open(&e, &cb_snap, &tc, &c);
    dlog_sm_close(sc);
    tsm_destroy(&tc);
    add_n(sa, 200, 8);
    OK(dlog_sm_barrier(sb, 10000));
    OK(dlog_sm_snapshot(sb));
    OK(dlog_sm_snapshot(sa));
    /* Registered replicas without a snapshot (C) hold truncation back. */
    ck_assert_int_le(dlog_dlsn_cmp(truncation_point(&e), (struct dlog_dlsn){1, 0, 0}), 0);
    OK(dlog_sm_forget(e.ns, e.stream, "C"));
    add_n(sa, 80, 9);
    OK(dlog_sm_snapshot(sa)); /* waits for A's own snapshot at 280 and its truncation */
    /* Now below the oldest snapshot both A and B still keep. */
    struct dlog_dlsn tp = truncation_point(&e);
    ck_assert_msg(dlog_dlsn_cmp(tp, (struct dlog_dlsn){1, 0, 0}) > 0,
                  "not truncated: " DLSN_FMT, DLSN_ARGS(tp));
    int na = list_snaps(da, names, 8);
    ck_assert_int_eq(na, 2);
    ck_assert_int_le(dlog_dlsn_cmp(tp, snap_dlsn(names[na - 1])), 0);
    ck_assert_int_eq(list_snaps(db, names, 8), 1);
    ck_assert_int_eq(dlog_dlsn_cmp(tp, snap_dlsn(names[0])), 0); /* B's only one */
    /* B holds it there until B has newer snapshots. */
    add_n(sa, 80, 10);
    OK(dlog_sm_snapshot(sa));
    ck_assert_int_eq(dlog_dlsn_cmp(truncation_point(&e), tp), 0);
    OK(dlog_sm_barrier(sb, 10000));
    OK(dlog_sm_snapshot(sb));
    add_n(sa, 40, 11);
    OK(dlog_sm_barrier(sb, 10000));
    OK(dlog_sm_snapshot(sb)); /* B's snapshot reports and truncates again */
    struct dlog_dlsn tp2 = truncation_point(&e);
    ck_assert_msg(dlog_dlsn_cmp(tp2, tp) > 0, "truncation did not move");
    /* Both restart from their own snapshots. */
    OK(dlog_sm_barrier(sb, 10000));
    uint64_t h = tsm_hash(&ta);
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    tsm_destroy(&ta);
    tsm_destroy(&tb);
    env_reopen(&e);
    tsm_init(&ta);
    tsm_init(&tb);
    sa = must_open(&e, &cb_snap, &ta, &a);
    sb = must_open(&e, &cb_snap, &tb, &b);
    ck_assert(tsm_hash(&ta) == h && tsm_hash(&tb) == h);
    ck_assert(tsm_get(&ta, &ta.nrestore) == 1 && tsm_get(&tb, &tb.nrestore) == 1);
    dlog_sm_close(sa);
    dlog_sm_close(sb);
    tsm_destroy(&ta);
    tsm_destroy(&tb);

    /* auto_truncate = 0: snapshots, but the stream keeps everything. */
    struct env e2;
    env_open(&e2, "notrunc");
    struct open_args d = {.snapshot_dir = snapdir(&e2, da, sizeof da, "d"), .every = 20};
    tsm_init(&ta);
    sa = must_open(&e2, &cb_snap, &ta, &d);
    add_n(sa, 100, 12);
    OK(dlog_sm_snapshot(sa)); /* the one at 100 is done (no new one is needed) */
    ck_assert_uint_eq(tsm_get(&ta, &ta.nsnapshot), 5);
    ck_assert_int_le(dlog_dlsn_cmp(truncation_point(&e2), (struct dlog_dlsn){1, 0, 0}),
                     0);
    dlog_sm_close(sa);
    tsm_destroy(&ta);
    env_close(&e2);
    env_close(&e);
}
END_TEST

/* ------------------------------------------------------------------ misc */

START_TEST(test_api_errors)
{
    struct env e;
    struct tsm t;
    struct dlog_sm *sm = NULL, *sm2 = NULL;
    char dir[1024];
    env_open(&e, "api");
    tsm_init(&t);
    struct dlog_sm_callbacks bad = cb_snap;
    bad.apply = NULL;
    ERR(dlog_sm_open(e.ns, e.stream, &bad, &t, NULL, &sm), DLOG_EINVAL);
    ERR(dlog_sm_open(e.ns, "bad name", &cb_snap, &t, NULL, &sm), DLOG_ENAME);
    struct dlog_sm_options o;
    dlog_sm_options_init(&o);
    o.create = 0;
    ERR(dlog_sm_open(e.ns, "sm/missing", &cb_snap, &t, &o, &sm), DLOG_ENOTFOUND);
    /* One snapshot_dir, one state machine. */
    struct open_args a = {.snapshot_dir = snapdir(&e, dir, sizeof dir, "a")};
    sm = must_open(&e, &cb_snap, &t, &a);
    struct tsm t2;
    tsm_init(&t2);
    ERR(open_sm(&e, &cb_snap, &t2, &a, &sm2), DLOG_EBUSY);
    /* The snapshot and read streams pass small and odd sizes through. */
    add(sm, 0, 0, 1, 2);
    OK(dlog_sm_snapshot(sm));
    dlog_sm_close(sm);
    OK(open_sm(&e, &cb_snap, &t2, NULL, &sm2));
    ck_assert(tsm_hash(&t2) == tsm_hash(&t));
    /* No snapshot place: dlog_sm_snapshot says so. */
    ERR(dlog_sm_snapshot(sm2), DLOG_EINVAL);
    dlog_sm_close(sm2);
    tsm_destroy(&t);
    tsm_destroy(&t2);
    env_close(&e);
}
END_TEST

static Suite *sm_suite(void)
{
    Suite *s = suite_create("sm");
    struct {
        const char *name;
        const TTest *test;
    } cases[] = {
        {"threads", test_threads_identical},
        {"processes", test_processes_identical},
        {"restart", test_restart_from_snapshot},
        {"shared", test_shared_bootstrap},
        {"exactly_once", test_exactly_once},
        {"barrier", test_read_barrier},
        {"corrupt", test_corrupt_snapshot_fallback},
        {"apply_errors", test_apply_errors},
        {"ondisk", test_ondisk_mode},
        {"truncation", test_truncation},
        {"api", test_api_errors},
    };
    const char *env = getenv("CK_DEFAULT_TIMEOUT");
    double timeout = env != NULL && atof(env) > TEST_TIMEOUT ? atof(env) : TEST_TIMEOUT;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, timeout);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

/* ------------------------------------------------------------------ main */

static void set_uri(const char *uri)
{
    snprintf(base_uri, sizeof base_uri, "%s", uri);
}

int main(void)
{
    const char *t = getenv("TMPDIR");
    static const uri_suite_fn suites[] = {sm_suite};
    snprintf(tmp_base, sizeof tmp_base, "%s/dlog-sm-XXXXXX",
             t != NULL && strlen(t) < 100 ? t : "/tmp");
    if (mkdtemp(tmp_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    int rv = uri_runner_main("test-sm", set_uri, suites, 1);
    uri_runner_rm_rf(tmp_base);
    return rv;
}
