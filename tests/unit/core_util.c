/* Helpers shared by the core suites; see core_util.h. */
#include "core_util.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------ backend */

static char base_uri[CORE_URI_MAX] = "mem:";

void core_set_base_uri(const char *uri)
{
    snprintf(base_uri, sizeof base_uri, "%s", uri);
}

const char *core_base_uri(void)
{
    return base_uri;
}

int core_backend_is_mem(void)
{
    return strncmp(base_uri, "mem:", 4) == 0;
}

int core_backend_is_file(void)
{
    return strncmp(base_uri, "file:", 5) == 0;
}

int core_backend_is_cluster(void)
{
    return strncmp(base_uri, "cluster:", 8) == 0;
}

int core_backend_durable(void)
{
    return !core_backend_is_mem();
}

int core_backend_multiprocess(void)
{
    return !core_backend_is_mem();
}

void core_note(const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    printf("  note: %s\n", buf);
    fflush(stdout);
}

TCase *core_tcase(const char *name, int timeout_s)
{
    TCase *tc = tcase_create(name);
    const char *env = getenv("CK_DEFAULT_TIMEOUT");
    double t = timeout_s;
    if (env != NULL && atof(env) > t)
        t = atof(env);
    tcase_set_timeout(tc, t);
    return tc;
}

/* ------------------------------------------------------------------ namespace */

static unsigned long counter;

void core_env_open(struct core_env *e, const struct dlog_options *opts)
{
    memset(e, 0, sizeof *e);
    if (opts != NULL) {
        e->opts = *opts;
        e->has_opts = 1;
    }
    if (core_backend_is_file()) {
        /* The base directory exists (main made it); each test gets its own. */
        snprintf(e->dir, sizeof e->dir, "%s/ns-%ld-%lu", base_uri + 5, (long)getpid(),
                 ++counter);
        snprintf(e->uri, sizeof e->uri, "file:%s", e->dir);
    } else {
        snprintf(e->uri, sizeof e->uri, "%s", base_uri);
    }
    core_env_reopen(e);
}

void core_env_reopen(struct core_env *e)
{
    char errmsg[DLOG_ERRMSG_LEN] = "";
    core_env_close(e);
    int rv = dlog_open(e->uri, e->has_opts ? &e->opts : NULL, &e->ns, errmsg);
    ck_assert_msg(rv == 0, "dlog_open(%s): %s: %s", e->uri, dlog_errname(rv), errmsg);
    ck_assert_ptr_nonnull(e->ns);
}

void core_env_close(struct core_env *e)
{
    if (e->ns != NULL) {
        dlog_close(e->ns);
        e->ns = NULL;
    }
}

const char *core_stream_name(char *buf, const char *tag)
{
    snprintf(buf, 128, "t/%s-%ld-%lu", tag, (long)getpid(), ++counter);
    return buf;
}

struct dlog_stream_config core_cfg(void)
{
    struct dlog_stream_config c;
    dlog_stream_config_init(&c);
    c.auto_txid = 0;
    c.compression = DLOG_COMPRESS_NONE;
    return c;
}

void core_create(struct dlog_ns *ns, const char *name,
                 const struct dlog_stream_config *cfg)
{
    struct dlog_stream_config c = core_cfg();
    if (cfg == NULL)
        cfg = &c;
    CORE_NS_OK(ns, dlog_stream_create(ns, name, cfg));
}

struct dlog_writer *core_writer(struct dlog_ns *ns, const char *stream, int mode)
{
    struct dlog_writer_options o;
    struct dlog_writer *w = NULL;
    dlog_writer_options_init(&o);
    o.mode = mode;
    CORE_NS_OK(ns, dlog_writer_open(ns, stream, &o, &w));
    ck_assert_ptr_nonnull(w);
    return w;
}

struct dlog_reader *core_reader(struct dlog_ns *ns, const char *stream, int start,
                                struct dlog_dlsn dlsn, uint64_t txid)
{
    struct dlog_reader_options o;
    struct dlog_reader *r = NULL;
    dlog_reader_options_init(&o);
    o.start = start;
    o.start_dlsn = dlsn;
    o.start_txid = txid;
    CORE_NS_OK(ns, dlog_reader_open(ns, stream, &o, &r));
    ck_assert_ptr_nonnull(r);
    return r;
}

/* ------------------------------------------------------------------ payloads */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static uint64_t payload_seed(uint64_t tag, uint64_t i)
{
    return splitmix64(tag * 0xD6E8FEB86659FD93ULL ^ splitmix64(i));
}

void core_payload(void *buf, size_t len, uint64_t tag, uint64_t i)
{
    uint8_t *p = buf;
    uint64_t seed = payload_seed(tag, i);
    for (size_t off = 0; off < len; off += 8) {
        uint64_t v = splitmix64(seed + off);
        size_t n = len - off < 8 ? len - off : 8;
        for (size_t k = 0; k < n; k++)
            p[off + k] = (uint8_t)(v >> (8 * k));
    }
}

int core_payload_ok(const void *buf, size_t len, uint64_t tag, uint64_t i)
{
    const uint8_t *p = buf;
    uint64_t seed = payload_seed(tag, i);
    if (len > 0 && p == NULL)
        return 0;
    for (size_t off = 0; off < len; off += 8) {
        uint64_t v = splitmix64(seed + off);
        size_t n = len - off < 8 ? len - off : 8;
        for (size_t k = 0; k < n; k++)
            if (p[off + k] != (uint8_t)(v >> (8 * k)))
                return 0;
    }
    return 1;
}

uint64_t core_checksum(const void *p, size_t len)
{
    const uint8_t *b = p;
    uint64_t h = 0xCBF29CE484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= b[i];
        h *= 0x100000001B3ULL;
    }
    return h;
}

/* ------------------------------------------------------------------ write and read */

#define MAX_IN_FLIGHT 64

struct batch {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t inflight;
    size_t done;
    size_t calls; /* callbacks run (to catch a callback run twice) */
    struct dlog_write_req *reqs;
};

static void batch_cb(struct dlog_write_req *req, int status)
{
    struct batch *b = req->data;
    pthread_mutex_lock(&b->mu);
    req->status = status;
    b->inflight--;
    b->done++;
    b->calls++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Waits until at most `limit` writes are in flight; 0 on timeout. */
static int batch_wait(struct batch *b, size_t limit, uint64_t deadline_ms)
{
    int ok = 1;
    pthread_mutex_lock(&b->mu);
    while (b->inflight > limit) {
        uint64_t now = core_now_ms();
        if (now >= deadline_ms) {
            ok = 0;
            break;
        }
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t left = deadline_ms - now;
        if (left > 100)
            left = 100;
        ts.tv_nsec += (long)(left * 1000000);
        ts.tv_sec += ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        pthread_cond_timedwait(&b->cv, &b->mu, &ts);
    }
    pthread_mutex_unlock(&b->mu);
    return ok;
}

void core_write_n(struct dlog_writer *w, size_t n, size_t len, uint64_t tag,
                  uint64_t first_index, uint64_t first_txid, struct dlog_dlsn *dlsns)
{
    struct batch b;
    uint8_t *buf = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(buf);
    memset(&b, 0, sizeof b);
    pthread_mutex_init(&b.mu, NULL);
    pthread_cond_init(&b.cv, NULL);
    b.reqs = calloc(n, sizeof *b.reqs);
    ck_assert_ptr_nonnull(b.reqs);
    uint64_t deadline = core_now_ms() + 60000;

    for (size_t i = 0; i < n; i++) {
        struct dlog_record rec;
        memset(&rec, 0, sizeof rec);
        core_payload(buf, len, tag, first_index + i);
        rec.payload = buf;
        rec.len = len;
        rec.txid = first_txid == 0 ? 0 : first_txid + i;
        ck_assert_msg(batch_wait(&b, MAX_IN_FLIGHT - 1, deadline),
                      "writes not acknowledged within 60 s");
        b.reqs[i].data = &b;
        b.reqs[i].status = 1; /* not completed yet */
        pthread_mutex_lock(&b.mu);
        b.inflight++;
        pthread_mutex_unlock(&b.mu);
        int rv = dlog_write(w, &b.reqs[i], &rec, 1, batch_cb);
        if (rv != 0) {
            pthread_mutex_lock(&b.mu);
            b.inflight--;
            pthread_mutex_unlock(&b.mu);
        }
        ck_assert_msg(rv == 0, "dlog_write #%zu: %s: %s", i, dlog_errname(rv),
                      dlog_writer_errmsg(w));
    }
    int frv = dlog_writer_flush(w);
    ck_assert_msg(batch_wait(&b, 0, deadline), "writes not acknowledged within 60 s");
    ck_assert_msg(frv == 0, "dlog_writer_flush: %s: %s", dlog_errname(frv),
                  dlog_writer_errmsg(w));
    ck_assert_uint_eq(b.calls, n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(b.reqs[i].status == 0, "write #%zu failed: %s", i,
                      dlog_errname(b.reqs[i].status));
        CORE_ASSERT_DLSN_EQ(b.reqs[i].first, b.reqs[i].last);
        if (i > 0)
            CORE_ASSERT_DLSN_LT(b.reqs[i - 1].first, b.reqs[i].first);
        if (first_txid != 0)
            ck_assert_uint_eq(b.reqs[i].first_txid, first_txid + i);
        if (dlsns != NULL)
            dlsns[i] = b.reqs[i].first;
    }
    free(b.reqs);
    free(buf);
    pthread_mutex_destroy(&b.mu);
    pthread_cond_destroy(&b.cv);
}

int core_write1(struct dlog_writer *w, const void *p, size_t len, uint64_t txid,
                struct dlog_dlsn *dlsn)
{
    struct dlog_record rec;
    memset(&rec, 0, sizeof rec);
    rec.payload = p;
    rec.len = len;
    rec.txid = txid;
    return dlog_write_sync(w, &rec, 1, dlsn);
}

void core_write_sync_n(struct dlog_writer *w, size_t n, size_t len, uint64_t tag,
                       uint64_t first_index, uint64_t first_txid, struct dlog_dlsn *dlsns)
{
    uint8_t *buf = malloc(len > 0 ? len : 1);
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    ck_assert_ptr_nonnull(buf);
    for (size_t i = 0; i < n; i++) {
        struct dlog_dlsn d = DLOG_DLSN_MAX;
        core_payload(buf, len, tag, first_index + i);
        int rv = core_write1(w, buf, len, first_txid == 0 ? 0 : first_txid + i, &d);
        ck_assert_msg(rv == 0, "dlog_write_sync #%zu: %s: %s", i, dlog_errname(rv),
                      dlog_writer_errmsg(w));
        if (i > 0)
            CORE_ASSERT_DLSN_LT(prev, d);
        prev = d;
        if (dlsns != NULL)
            dlsns[i] = d;
    }
    free(buf);
}

void core_recs_free(struct core_rec *v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(v[i].payload);
        free(v[i].key);
    }
    free(v);
}

static void copy_rec(struct core_rec *dst, const struct dlog_record *src)
{
    memset(dst, 0, sizeof *dst);
    dst->dlsn = src->dlsn;
    dst->txid = src->txid;
    dst->len = src->len;
    dst->key_len = src->key_len;
    if (src->len > 0) {
        dst->payload = malloc(src->len);
        ck_assert_ptr_nonnull(dst->payload);
        ck_assert_ptr_nonnull(src->payload);
        memcpy(dst->payload, src->payload, src->len);
    }
    if (src->key_len > 0) {
        dst->key = malloc(src->key_len);
        ck_assert_ptr_nonnull(dst->key);
        ck_assert_ptr_nonnull(src->key);
        memcpy(dst->key, src->key, src->key_len);
    }
}

int core_read_recs(struct dlog_reader *r, size_t want, int timeout_ms,
                   struct core_rec **out, size_t *nread)
{
    struct dlog_record batch[64];
    struct core_rec *v = NULL;
    size_t n = 0, cap = 0;
    uint64_t deadline = core_now_ms() + (uint64_t)timeout_ms;
    int rv = 0;

    for (;;) {
        size_t max = 64;
        int wait = 0;
        if (want > 0) {
            if (n >= want)
                break;
            if (want - n < max)
                max = want - n;
            uint64_t now = core_now_ms();
            wait = now >= deadline ? 0 : (int)(deadline - now);
        }
        rv = dlog_read(r, batch, max, wait);
        if (rv == DLOG_ETIMEDOUT) {
            if (want == 0 || core_now_ms() >= deadline) {
                rv = 0;
                break;
            }
            continue;
        }
        if (rv < 0)
            break;
        ck_assert_msg(rv >= 1 && (size_t)rv <= max, "dlog_read returned %d (max %zu)", rv,
                      max);
        if (n + (size_t)rv > cap) {
            cap = cap * 2 + (size_t)rv + 16;
            v = realloc(v, cap * sizeof *v);
            ck_assert_ptr_nonnull(v);
        }
        for (int i = 0; i < rv; i++)
            copy_rec(&v[n++], &batch[i]);
        rv = 0;
        if (want == 0 && core_now_ms() > deadline)
            break;
    }
    *out = v;
    if (nread != NULL)
        *nread = n;
    return rv < 0 ? rv : (int)n;
}

struct core_rec *core_read_exact(struct dlog_reader *r, size_t want, int timeout_ms)
{
    struct core_rec *v = NULL;
    size_t n = 0;
    int rv = core_read_recs(r, want, timeout_ms, &v, &n);
    ck_assert_msg(rv >= 0, "reading %zu records: %s after %zu: %s", want,
                  dlog_errname(rv), n, dlog_reader_errmsg(r));
    ck_assert_msg(n == want, "read %zu of %zu records within %d ms", n, want, timeout_ms);
    return v;
}

void core_check_recs(const struct core_rec *recs, size_t n, size_t len, uint64_t tag,
                     uint64_t first_index, const struct dlog_dlsn *dlsns)
{
    for (size_t i = 0; i < n; i++) {
        if (len != SIZE_MAX)
            ck_assert_msg(recs[i].len == len, "record #%zu: len %zu, expected %zu", i,
                          recs[i].len, len);
        ck_assert_msg(core_payload_ok(recs[i].payload, recs[i].len, tag, first_index + i),
                      "record #%zu at " CORE_DLSN_FMT
                      ": payload is not record %llu's (gap, duplicate or damage)",
                      i, CORE_DLSN_ARGS(recs[i].dlsn),
                      (unsigned long long)(first_index + i));
        if (i > 0)
            CORE_ASSERT_DLSN_LT(recs[i - 1].dlsn, recs[i].dlsn);
        if (dlsns != NULL)
            CORE_ASSERT_DLSN_EQ(recs[i].dlsn, dlsns[i]);
    }
}

/* ------------------------------------------------------------------ time */

uint64_t core_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void core_nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

int core_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms)
{
    uint64_t deadline = core_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        if (pred(arg))
            return 1;
        if (core_now_ms() >= deadline)
            return pred(arg) ? 1 : 0;
        core_nap_ms(1);
    }
}
