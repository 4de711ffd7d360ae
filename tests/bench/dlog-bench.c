/*
 * dlog-bench — throughput and latency of dlog writers and readers.
 *
 * Three modes:
 *
 *   write/read   --writers N threads, each with its own shared-mode
 *                dlog_writer, submit async dlog_write requests (bounded by
 *                --inflight); --readers M threads read the stream from the
 *                head with bulk dlog_read until they have seen every
 *                acknowledged record. With --writers 0 the readers read an
 *                existing --stream: pure read throughput.
 *   tail latency --tail-latency: a forked child process opens the namespace
 *                itself and tails the stream; the parent writes one small
 *                record per millisecond carrying its CLOCK_MONOTONIC write
 *                start time, and the child measures now - that time.
 *                With --rate R the writers are paced (open loop): R records
 *                per second in all, each dlog_write due at a fixed time and
 *                its latency counted from that time, so queueing behind a
 *                slow server shows in the percentiles.
 *   baseline     --baseline disk: the same bytes appended to a plain file
 *                with write() + fdatasync() per batch, for the ratio the
 *                targets are stated in (DESIGN.md, "Facts measured").
 *
 * Human-readable lines go to stdout; with --json the last line is one JSON
 * object. Exit status: 0 on success, 1 when setup failed or any write or read
 * failed. A watchdog (--timeout) ends a run that hangs.
 *
 * Threads and ownership: the write callbacks run on each dlog_writer's own
 * thread (no libuv loop); each bench writer's counters, free list and
 * histogram are guarded by that writer's mutex. Request slots are freed only
 * after every callback has run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "base/clock.h"
#include "base/hist.h"

#define MB                     1e6              /* MB/s are 10^6 bytes per second */
#define READ_MAX               1024             /* records per dlog_read */
#define READ_POLL_MS           100              /* dlog_read timeout while waiting */
#define READ_IDLE_NS           (5 * NS_PER_SEC) /* readers give up after this idle */
#define TAIL_IDLE_MS           10000            /* the tailing child gives up after */
#define TAIL_MAGIC             0x646c6f6762656e63ULL /* "dlogbenc" */
#define TAIL_PAYLOAD           24 /* magic, write start time, sequence */
#define TAIL_DEFAULT_COUNT     2000
#define BASELINE_DEFAULT_BATCH (1024 * 1024)

struct opts {
    const char *uri;
    const char *stream; /* NULL: create a unique stream, delete it at the end */
    int create;         /* create --stream (kept at the end) */
    unsigned writers;
    unsigned readers;
    int readers_set;
    size_t size;
    int size_set;
    double duration;    /* seconds, when count == 0 */
    uint64_t count;     /* records per writer (or per reader with --writers 0) */
    size_t batch_bytes; /* 0: library default */
    long linger_us;     /* -1: library default */
    unsigned rpw;       /* records per dlog_write */
    unsigned inflight;
    double rate; /* records/s in all writers (open loop); 0: as fast as possible */
    int baseline_disk;
    int tail;
    int json;
    double timeout; /* watchdog seconds; 0: derived from the run */
};

struct bench;

/* One outstanding dlog_write: the request and when it was submitted. */
struct wslot {
    struct dlog_write_req req;
    struct bwriter *w;
    struct wslot *next;
    uint64_t t0;
    uint32_t n;
};

struct bwriter {
    struct bench *b;
    unsigned idx;
    pthread_t tid;
    struct dlog_writer *dw;
    const struct dlog_record *recs;
    struct wslot *slots;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    /* Guarded by mu (written by the callback thread). */
    struct wslot *free_slots;
    unsigned inflight;
    struct hist *hist;
    uint64_t acked;  /* records acknowledged */
    uint64_t failed; /* write requests that failed */
    uint64_t t_last; /* time of the last acknowledgement */
    int first_err;
    /* Writer thread only. */
    uint64_t submitted;
    uint64_t late; /* --rate: writes sent 1 ms or more after they were due */
    char errmsg[DLOG_ERRMSG_LEN];
};

struct breader {
    struct bench *b;
    unsigned idx;
    pthread_t tid;
    struct dlog_reader *dr;
    struct dlog_record *recs;
    struct hist *hist; /* duration of dlog_read calls that returned records */
    uint64_t got;
    uint64_t bytes;
    uint64_t errors;
    uint64_t t_last;
    int short_read;
    int first_err;
    char errmsg[DLOG_ERRMSG_LEN];
};

struct bench {
    struct opts o;
    struct dlog_ns *ns;
    char stream[DLOG_STREAM_NAME_MAX + 1];
    int own_stream;    /* created here: check record sizes, delete at end */
    uint64_t existing; /* records in the stream before the run */
    unsigned char *payload;
    struct dlog_record *recs;
    pthread_barrier_t start;
    uint64_t t_start;
    atomic_int writers_done;
    atomic_uint_fast64_t read_target; /* records each reader must read */
    struct bwriter *w;
    struct breader *r;
};

static volatile sig_atomic_t g_child_pid;

/* ------------------------------------------------------------------------
 * Small helpers
 * ------------------------------------------------------------------------ */

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("dlog-bench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_alarm(int sig)
{
    static const char msg[] = "dlog-bench: watchdog: the run took longer than "
                              "--timeout seconds; giving up\n";
    pid_t child = (pid_t)g_child_pid;

    (void)sig;
    if (child > 0)
        kill(child, SIGKILL);
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

static void watchdog_arm(double seconds)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    alarm(seconds < 1 ? 1 : seconds > UINT_MAX ? UINT_MAX : (unsigned)seconds);
}

static void fill_random(unsigned char *p, size_t n)
{
    uint64_t x = clock_now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    size_t i;

    for (i = 0; i < n; i++) {
        /* xorshift64* */
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        p[i] = (unsigned char)((x * 0x2545f4914f6cdd1dULL) >> 56);
    }
}

static double us(uint64_t ns)
{
    return (double)ns / 1e3;
}

static double secs(uint64_t ns)
{
    return (double)ns / 1e9;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Whole-string unsigned number; 0 on success. */
static int parse_u64(const char *s, const char *flag, uint64_t max, uint64_t *out)
{
    char *end;
    unsigned long long v;

    errno = 0;
    if (*s == '-' || *s == '\0')
        goto bad;
    v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v > max)
        goto bad;
    *out = v;
    return 0;
bad:
    fail("%s: '%s' is not a number in [0, %" PRIu64 "]", flag, s, max);
    return -1;
}

static int parse_seconds(const char *s, const char *flag, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || end == s || !(v > 0) || v > 1e7) {
        fail("%s: '%s' is not a positive number of seconds", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(
        f, "usage: dlog-bench [options]\n"
           "\n"
           "Measures dlog write and read throughput and latency.\n"
           "\n"
           "  -u, --uri URI            namespace (default file:/tmp/dlog-bench)\n"
           "      --stream NAME        use this existing stream (default: create a\n"
           "                           uniquely named one and delete it at the end)\n"
           "      --create             create --stream NAME first (kept at the end)\n"
           "      --writers N          writer threads (default 1)\n"
           "      --readers N          reader threads reading from the head (default 0)\n"
           "      --size BYTES         record size (default 100; --tail-latency: 24)\n"
           "      --duration SECONDS   how long writers write (default 5)\n"
           "      --count N            records per writer instead of a duration; with\n"
           "                           --writers 0: records each reader reads; with\n"
           "                           --tail-latency: records (default 2000)\n"
           "      --batch-bytes N      writer batch_bytes option (library default);\n"
           "                           also the baseline's batch size (default 1 MiB)\n"
           "      --linger-us N        writer linger_us option (library default)\n"
           "      --records-per-write N  records per dlog_write call (default 64)\n"
           "      --inflight N         outstanding dlog_write requests per writer\n"
           "                           (default 256)\n"
           "      --rate R             open loop: R records/s in all writers, each\n"
           "                           dlog_write due at a fixed time and its latency\n"
           "                           counted from then (default: as fast as the\n"
           "                           writers go)\n"
           "      --baseline disk      also append the same bytes to a plain file with\n"
           "                           write()+fdatasync() per batch; print the ratio\n"
           "      --tail-latency       measure a tailing reader in another process\n"
           "      --json               print one JSON object as the last line\n"
           "      --timeout SECONDS    watchdog: give up after this long (default:\n"
           "                           derived from the run)\n"
           "  -h, --help               this help\n"
           "\n"
           "MB/s are 10^6 bytes per second of record payload; latencies are in us.\n"
           "Exit status: 0 on success, 1 if setup, a write or a read failed.\n");
}

enum {
    OPT_STREAM = 256,
    OPT_CREATE,
    OPT_WRITERS,
    OPT_READERS,
    OPT_SIZE,
    OPT_DURATION,
    OPT_COUNT,
    OPT_BATCH_BYTES,
    OPT_LINGER_US,
    OPT_RPW,
    OPT_INFLIGHT,
    OPT_RATE,
    OPT_BASELINE,
    OPT_TAIL,
    OPT_JSON,
    OPT_TIMEOUT,
};

/* 0: run; 1: exit 0 (help); -1: exit 1. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"uri", required_argument, NULL, 'u'},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"create", no_argument, NULL, OPT_CREATE},
        {"writers", required_argument, NULL, OPT_WRITERS},
        {"readers", required_argument, NULL, OPT_READERS},
        {"size", required_argument, NULL, OPT_SIZE},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"count", required_argument, NULL, OPT_COUNT},
        {"batch-bytes", required_argument, NULL, OPT_BATCH_BYTES},
        {"linger-us", required_argument, NULL, OPT_LINGER_US},
        {"records-per-write", required_argument, NULL, OPT_RPW},
        {"inflight", required_argument, NULL, OPT_INFLIGHT},
        {"rate", required_argument, NULL, OPT_RATE},
        {"baseline", required_argument, NULL, OPT_BASELINE},
        {"tail-latency", no_argument, NULL, OPT_TAIL},
        {"json", no_argument, NULL, OPT_JSON},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int duration_set = 0;
    uint64_t v;
    int c;

    memset(o, 0, sizeof *o);
    o->uri = "file:/tmp/dlog-bench";
    o->writers = 1;
    o->size = 100;
    o->duration = 5;
    o->linger_us = -1;
    o->rpw = 64;
    o->inflight = 256;

    while ((c = getopt_long(argc, argv, "u:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'u':
            o->uri = optarg;
            break;
        case OPT_STREAM:
            o->stream = optarg;
            break;
        case OPT_CREATE:
            o->create = 1;
            break;
        case OPT_WRITERS:
            if (parse_u64(optarg, "--writers", 1024, &v) != 0)
                return -1;
            o->writers = (unsigned)v;
            break;
        case OPT_READERS:
            if (parse_u64(optarg, "--readers", 1024, &v) != 0)
                return -1;
            o->readers = (unsigned)v;
            o->readers_set = 1;
            break;
        case OPT_SIZE:
            if (parse_u64(optarg, "--size", DLOG_RECORD_MAX_LIMIT, &v) != 0)
                return -1;
            o->size = (size_t)v;
            o->size_set = 1;
            break;
        case OPT_DURATION:
            if (parse_seconds(optarg, "--duration", &o->duration) != 0)
                return -1;
            duration_set = 1;
            break;
        case OPT_COUNT:
            if (parse_u64(optarg, "--count", UINT64_MAX / 2, &v) != 0)
                return -1;
            if (v == 0) {
                fail("--count: must be at least 1");
                return -1;
            }
            o->count = v;
            break;
        case OPT_BATCH_BYTES:
            if (parse_u64(optarg, "--batch-bytes", SIZE_MAX / 2, &v) != 0)
                return -1;
            o->batch_bytes = (size_t)v;
            break;
        case OPT_LINGER_US:
            if (parse_u64(optarg, "--linger-us", UINT32_MAX, &v) != 0)
                return -1;
            o->linger_us = (long)v;
            break;
        case OPT_RPW:
            if (parse_u64(optarg, "--records-per-write", 1u << 20, &v) != 0)
                return -1;
            if (v == 0) {
                fail("--records-per-write: must be at least 1");
                return -1;
            }
            o->rpw = (unsigned)v;
            break;
        case OPT_INFLIGHT:
            if (parse_u64(optarg, "--inflight", 1u << 20, &v) != 0)
                return -1;
            if (v == 0) {
                fail("--inflight: must be at least 1");
                return -1;
            }
            o->inflight = (unsigned)v;
            break;
        case OPT_RATE: {
            char *end;

            errno = 0;
            o->rate = strtod(optarg, &end);
            if (errno != 0 || end == optarg || *end != '\0' || !(o->rate >= 1) ||
                o->rate > 1e9) {
                fail("--rate: '%s' is not a number of records/s in [1, 1e9]", optarg);
                return -1;
            }
            break;
        }
        case OPT_BASELINE:
            if (strcmp(optarg, "disk") != 0) {
                fail("--baseline: only 'disk' is supported, not '%s'", optarg);
                return -1;
            }
            o->baseline_disk = 1;
            break;
        case OPT_TAIL:
            o->tail = 1;
            break;
        case OPT_JSON:
            o->json = 1;
            break;
        case OPT_TIMEOUT:
            if (parse_seconds(optarg, "--timeout", &o->timeout) != 0)
                return -1;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fail("unexpected argument '%s' (see --help)", argv[optind]);
        return -1;
    }
    if (o->count != 0 && duration_set) {
        fail("--count and --duration exclude each other");
        return -1;
    }
    if (o->create && o->stream == NULL) {
        fail("--create needs --stream NAME");
        return -1;
    }
    if (o->stream != NULL && !dlog_stream_name_valid(o->stream)) {
        fail("--stream: '%s' is not a valid stream name", o->stream);
        return -1;
    }
    if (o->tail) {
        if (o->readers_set || o->baseline_disk || o->writers != 1 || o->rate > 0) {
            fail("--tail-latency runs one writer and one tailing process; it takes "
                 "no --writers, --readers, --rate or --baseline");
            return -1;
        }
        if (strncmp(o->uri, "mem:", 4) == 0) {
            fail("--tail-latency reads from another process: mem: is private to "
                 "one process, use a file: URI");
            return -1;
        }
        if (o->count == 0)
            o->count = TAIL_DEFAULT_COUNT;
        if (!o->size_set || o->size < TAIL_PAYLOAD)
            o->size = TAIL_PAYLOAD;
        return 0;
    }
    if (o->writers == 0 && o->readers == 0) {
        fail("nothing to do: --writers 0 and --readers 0");
        return -1;
    }
    if (o->writers == 0 && o->stream == NULL) {
        fail("--writers 0 reads an existing stream: give --stream NAME");
        return -1;
    }
    if (o->writers == 0 && o->rate > 0) {
        fail("--rate paces writers: it needs writers");
        return -1;
    }
    if (o->writers == 0 && o->baseline_disk) {
        fail("--baseline disk compares writes: it needs writers");
        return -1;
    }
    if (o->writers > 0 && o->size == 0) {
        fail("--size: must be at least 1");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Writers
 * ------------------------------------------------------------------------ */

static void write_cb(struct dlog_write_req *req, int status)
{
    struct wslot *s = req->data;
    struct bwriter *w = s->w;
    uint64_t now = clock_now_ns();

    pthread_mutex_lock(&w->mu);
    if (status == 0) {
        w->acked += s->n;
        hist_record(w->hist, now - s->t0);
        w->t_last = now;
    } else {
        if (w->failed++ == 0)
            w->first_err = status;
    }
    s->next = w->free_slots;
    w->free_slots = s;
    w->inflight--;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->mu);
}

static void *writer_main(void *arg)
{
    struct bwriter *w = arg;
    struct bench *b = w->b;
    uint64_t left = b->o.count;
    uint64_t deadline, k = 0, due = 0;
    double interval = 0; /* --rate: ns between this writer's dlog_write calls */
    struct wslot *s;
    int rv;

    pthread_barrier_wait(&b->start);
    deadline =
        b->o.count != 0 ? UINT64_MAX : b->t_start + (uint64_t)(b->o.duration * 1e9);
    if (b->o.rate > 0)
        interval = (double)b->o.rpw * b->o.writers * 1e9 / b->o.rate;
    for (;;) {
        uint32_t n = b->o.rpw;

        if (b->o.rate > 0) {
            /* The k-th call is due at a fixed time; the writers are staggered
             * over one interval. No catch-up is skipped: a late call goes out
             * at once and its latency counts from when it was due. */
            uint64_t now = clock_now_ns();

            due = b->t_start +
                  (uint64_t)(((double)k + (double)w->idx / b->o.writers) * interval);
            k++;
            if (due >= deadline)
                break;
            if (due > now)
                sleep_ns(due - now);
        }

        if (b->o.count != 0) {
            if (left == 0)
                break;
            if (left < n)
                n = (uint32_t)left;
        } else if (clock_now_ns() >= deadline) {
            break;
        }
        pthread_mutex_lock(&w->mu);
        while (w->free_slots == NULL && w->failed == 0)
            pthread_cond_wait(&w->cond, &w->mu);
        if (w->failed != 0) { /* stop at the first failure (e.g. fenced) */
            pthread_mutex_unlock(&w->mu);
            break;
        }
        s = w->free_slots;
        w->free_slots = s->next;
        w->inflight++;
        pthread_mutex_unlock(&w->mu);

        s->n = n;
        s->req.data = s;
        s->t0 = clock_now_ns();
        if (b->o.rate > 0) {
            if (s->t0 > due && s->t0 - due >= NS_PER_MS)
                w->late++;
            s->t0 = due;
        }
        rv = dlog_write(w->dw, &s->req, w->recs, n, write_cb);
        if (rv != 0) {
            /* The callback will not run: take the slot back ourselves. */
            snprintf(w->errmsg, sizeof w->errmsg, "%s", dlog_writer_errmsg(w->dw));
            pthread_mutex_lock(&w->mu);
            if (w->failed++ == 0)
                w->first_err = rv;
            s->next = w->free_slots;
            w->free_slots = s;
            w->inflight--;
            pthread_mutex_unlock(&w->mu);
            break;
        }
        w->submitted += n;
        left -= b->o.count != 0 ? n : 0;
    }

    /* Push out what lingers, then wait for every callback (the watchdog
     * bounds this wait). */
    rv = dlog_writer_flush(w->dw);
    if (rv != 0 && w->errmsg[0] == '\0')
        snprintf(w->errmsg, sizeof w->errmsg, "flush: %s: %s", dlog_strerror(rv),
                 dlog_writer_errmsg(w->dw));
    pthread_mutex_lock(&w->mu);
    while (w->inflight > 0)
        pthread_cond_wait(&w->cond, &w->mu);
    if (rv != 0 && w->failed == 0) {
        w->failed = 1;
        w->first_err = rv;
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

static int writer_setup(struct bench *b, struct bwriter *w, unsigned idx)
{
    struct dlog_writer_options wo;
    unsigned i;
    int rv;

    w->b = b;
    w->idx = idx;
    w->recs = b->recs;
    w->first_err = 0;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cond, NULL);
    w->hist = hist_new();
    w->slots = calloc(b->o.inflight, sizeof *w->slots);
    if (w->hist == NULL || w->slots == NULL) {
        fail("writer %u: out of memory", idx);
        return -1;
    }
    for (i = 0; i < b->o.inflight; i++) {
        w->slots[i].w = w;
        w->slots[i].next = w->free_slots;
        w->free_slots = &w->slots[i];
    }
    dlog_writer_options_init(&wo);
    wo.mode = DLOG_WRITER_SHARED;
    if (b->o.batch_bytes != 0)
        wo.batch_bytes = b->o.batch_bytes;
    if (b->o.linger_us >= 0)
        wo.linger_us = (uint32_t)b->o.linger_us;
    rv = dlog_writer_open(b->ns, b->stream, &wo, &w->dw);
    if (rv != 0) {
        fail("writer %u: dlog_writer_open %s: %s (%s)", idx, b->stream, dlog_strerror(rv),
             dlog_errmsg(b->ns));
        w->dw = NULL;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------ */

static int dlsn_below(const struct dlog_dlsn *a, const struct dlog_dlsn *b)
{
    if (a->seg != b->seg)
        return a->seg < b->seg;
    if (a->entry != b->entry)
        return a->entry < b->entry;
    return a->slot < b->slot;
}

static void reader_error(struct breader *r, int rv, const char *what)
{
    r->errors++;
    if (r->first_err == 0) {
        r->first_err = rv;
        snprintf(r->errmsg, sizeof r->errmsg, "%s", what);
    }
}

static void *reader_main(void *arg)
{
    struct breader *r = arg;
    struct bench *b = r->b;
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    uint64_t idle_since = 0;
    int rv, i;

    pthread_barrier_wait(&b->start);
    for (;;) {
        uint64_t target = atomic_load(&b->read_target);
        int done = atomic_load(&b->writers_done);
        uint64_t t0, now;
        size_t max;

        if (done && r->got >= target)
            break;
        max = READ_MAX;
        if (target != UINT64_MAX && target > r->got && target - r->got < max)
            max = (size_t)(target - r->got); /* stop at exactly --count */
        t0 = clock_now_ns();
        rv = dlog_read(r->dr, r->recs, max, READ_POLL_MS);
        now = clock_now_ns();
        if (rv > 0) {
            hist_record(r->hist, now - t0);
            for (i = 0; i < rv; i++) {
                const struct dlog_record *rec = &r->recs[i];

                r->bytes += rec->len;
                if (b->own_stream && rec->len != b->o.size)
                    reader_error(r, DLOG_ECORRUPT, "a record has the wrong length");
                if ((r->got > 0 || i > 0) && !dlsn_below(&prev, &rec->dlsn))
                    reader_error(r, DLOG_ECORRUPT, "DLSNs out of order");
                prev = rec->dlsn;
            }
            r->got += (uint64_t)rv;
            r->t_last = now;
            idle_since = 0;
            continue;
        }
        if (rv == DLOG_ETIMEDOUT) {
            /* Waiting for writers is fine; once they are done, give up after
             * READ_IDLE_NS without a record. */
            if (!done)
                continue;
            if (idle_since == 0)
                idle_since = now;
            else if (now - idle_since >= READ_IDLE_NS) {
                r->short_read = target != UINT64_MAX;
                break;
            }
            continue;
        }
        if (rv == DLOG_EEOF)
            break;
        reader_error(r, rv, dlog_reader_errmsg(r->dr));
        break;
    }
    return NULL;
}

static int reader_setup(struct bench *b, struct breader *r, unsigned idx)
{
    struct dlog_reader_options ro;
    int rv;

    r->b = b;
    r->idx = idx;
    r->hist = hist_new();
    r->recs = calloc(READ_MAX, sizeof *r->recs);
    if (r->hist == NULL || r->recs == NULL) {
        fail("reader %u: out of memory", idx);
        return -1;
    }
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_HEAD;
    rv = dlog_reader_open(b->ns, b->stream, &ro, &r->dr);
    if (rv != 0) {
        fail("reader %u: dlog_reader_open %s: %s (%s)", idx, b->stream, dlog_strerror(rv),
             dlog_errmsg(b->ns));
        r->dr = NULL;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * Baseline: plain appends with fdatasync
 * ------------------------------------------------------------------------ */

/*
 * Appends total bytes to a new file next to the namespace's data (the
 * directory of a file: URI, else /tmp) in batches of batch bytes, with
 * fdatasync() after each batch; removes the file. *mbps gets MB/s.
 */
static int baseline_disk(const char *uri, uint64_t total, size_t batch, double *mbps)
{
    char path[PATH_MAX];
    const char *dir = "/tmp";
    unsigned char *buf = NULL;
    uint64_t left = total, t0, t1;
    int fd = -1, rc = -1;

    if (strncmp(uri, "file:", 5) == 0 && uri[5] != '\0')
        dir = uri + 5;
    if ((size_t)snprintf(path, sizeof path, "%s/dlog-bench-baseline.%ld", dir,
                         (long)getpid()) >= sizeof path) {
        fail("baseline: path too long");
        return -1;
    }
    buf = malloc(batch);
    if (buf == NULL) {
        fail("baseline: out of memory");
        return -1;
    }
    fill_random(buf, batch);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) {
        fail("baseline: open %s: %s", path, strerror(errno));
        goto out;
    }
    t0 = clock_now_ns();
    while (left > 0) {
        size_t n = left < batch ? (size_t)left : batch, off = 0;

        while (off < n) {
            ssize_t k = write(fd, buf + off, n - off);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                fail("baseline: write %s: %s", path, strerror(errno));
                goto out;
            }
            off += (size_t)k;
        }
        if (fdatasync(fd) != 0) {
            fail("baseline: fdatasync %s: %s", path, strerror(errno));
            goto out;
        }
        left -= n;
    }
    t1 = clock_now_ns();
    *mbps = (double)total / MB / secs(t1 - t0 > 0 ? t1 - t0 : 1);
    rc = 0;
out:
    if (fd >= 0) {
        close(fd);
        unlink(path);
    }
    free(buf);
    return rc;
}

/* ------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------ */

struct result {
    const char *mode; /* "write", "read", "tail" */
    size_t size;      /* record size (read mode: the mean) */
    uint64_t records;
    uint64_t bytes;
    uint64_t elapsed_ns;
    struct hist *lat;             /* may be NULL; else p50/p99/p999 come from it */
    uint64_t p50, p99, p999, max; /* ns, when lat is NULL */
    uint64_t errors;
    int have_read;
    uint64_t read_records;
    uint64_t read_bytes;
    uint64_t read_elapsed_ns;
    uint64_t late; /* --rate: writes sent 1 ms or more after they were due */
    int have_baseline;
    double baseline_mbps;
    int have_write_lat; /* tail mode: the parent's dlog_write_sync latency */
    uint64_t write_p50, write_p99;
    int have_vis; /* tail mode: acknowledged to seen by the other process */
    uint64_t vis_p50, vis_p99, vis_p999, vis_max;
};

static double rate(uint64_t n, uint64_t ns)
{
    return ns == 0 ? 0.0 : (double)n / secs(ns);
}

static void report(const struct bench *b, struct result *res)
{
    double rps = rate(res->records, res->elapsed_ns);
    double mbps = rate(res->bytes, res->elapsed_ns) / MB;
    double rrps = rate(res->read_records, res->read_elapsed_ns);
    double rmbps = rate(res->read_bytes, res->read_elapsed_ns) / MB;
    double ratio =
        res->have_baseline && res->baseline_mbps > 0 ? mbps / res->baseline_mbps : 0.0;

    if (res->lat != NULL) {
        res->p50 = hist_quantile(res->lat, 0.5);
        res->p99 = hist_quantile(res->lat, 0.99);
        res->p999 = hist_quantile(res->lat, 0.999);
        res->max = hist_max(res->lat);
    }
    printf("%s: %" PRIu64 " records, %.1f MB in %.2f s: %.0f records/s, %.1f MB/s\n",
           res->mode, res->records, (double)res->bytes / MB, secs(res->elapsed_ns), rps,
           mbps);
    printf("%s latency (us): p50 %.1f  p99 %.1f  p999 %.1f  max %.1f\n",
           strcmp(res->mode, "tail") == 0
               ? "tail (write start to read in another process)"
           : strcmp(res->mode, "read") == 0 ? "read call"
                                            : "write (submit to callback)",
           us(res->p50), us(res->p99), us(res->p999), us(res->max));
    if (b->o.rate > 0 && strcmp(res->mode, "write") == 0)
        printf("rate: %.0f records/s offered (open loop, latency from when each write "
               "was due); %" PRIu64 " writes sent 1 ms or more late\n",
               b->o.rate, res->late);
    if (res->have_write_lat)
        printf("dlog_write_sync latency (us): p50 %.1f  p99 %.1f\n", us(res->write_p50),
               us(res->write_p99));
    if (res->have_vis)
        printf("visibility: acknowledged to read in the other process (us): p50 %.1f  "
               "p99 %.1f  p999 %.1f  max %.1f\n",
               us(res->vis_p50), us(res->vis_p99), us(res->vis_p999), us(res->vis_max));
    if (res->have_read && strcmp(res->mode, "read") != 0)
        printf("read: %" PRIu64 " records in %.2f s: %.0f records/s, %.1f MB/s\n",
               res->read_records, secs(res->read_elapsed_ns), rrps, rmbps);
    if (res->have_baseline)
        printf("baseline disk (write+fdatasync per batch): %.1f MB/s; "
               "dlog/baseline ratio %.3f\n",
               res->baseline_mbps, ratio);
    printf("errors: %" PRIu64 "\n", res->errors);
    if (!b->o.json) {
        fflush(stdout);
        return;
    }
    printf("{\"mode\":\"%s\",\"stream\":\"%s\",\"writers\":%u,\"readers\":%u,"
           "\"size\":%zu,\"records\":%" PRIu64 ",\"seconds\":%.3f,"
           "\"records_per_sec\":%.0f,\"mb_per_sec\":%.2f,"
           "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
           "\"errors\":%" PRIu64,
           res->mode, b->stream, b->o.tail ? 1 : b->o.writers,
           b->o.tail ? 1 : b->o.readers, res->size, res->records, secs(res->elapsed_ns),
           rps, mbps, us(res->p50), us(res->p99), us(res->p999), us(res->max),
           res->errors);
    if (b->o.rate > 0 && strcmp(res->mode, "write") == 0)
        printf(",\"rate\":%.0f,\"late_writes\":%" PRIu64, b->o.rate, res->late);
    if (res->have_read)
        printf(",\"read_records_per_sec\":%.0f,\"read_mb_per_sec\":%.2f", rrps, rmbps);
    if (res->have_baseline)
        printf(",\"baseline_mb_per_sec\":%.2f,\"ratio\":%.4f", res->baseline_mbps, ratio);
    if (res->have_write_lat)
        printf(",\"write_p50_us\":%.1f,\"write_p99_us\":%.1f", us(res->write_p50),
               us(res->write_p99));
    if (res->have_vis)
        printf(
            ",\"visible_p50_us\":%.1f,\"visible_p99_us\":%.1f,\"visible_p999_us\":%.1f",
            us(res->vis_p50), us(res->vis_p99), us(res->vis_p999));
    printf("}\n");
    fflush(stdout);
}

/* ------------------------------------------------------------------------
 * Namespace and stream set-up
 * ------------------------------------------------------------------------ */

static int open_ns(struct bench *b)
{
    char errmsg[DLOG_ERRMSG_LEN] = "";
    int rv;

    rv = dlog_open(b->o.uri, NULL, &b->ns, errmsg);
    if (rv != 0) {
        fail("dlog_open %s: %s (%s)", b->o.uri, dlog_strerror(rv), errmsg);
        b->ns = NULL;
        return -1;
    }
    return 0;
}

/* Creates the unique stream or checks the given one; 0 or -1. */
static int setup_stream(struct bench *b)
{
    struct dlog_stream_info *info = NULL;
    int rv;

    if (b->o.stream != NULL)
        snprintf(b->stream, sizeof b->stream, "%s", b->o.stream);
    else if (b->stream[0] == '\0') /* run_tail names it before the fork */
        snprintf(b->stream, sizeof b->stream, "dlog-bench-%ld-%" PRIu64, (long)getpid(),
                 clock_wall_ms());
    b->own_stream = b->o.stream == NULL;
    if (b->own_stream || b->o.create) {
        rv = dlog_stream_create(b->ns, b->stream, NULL);
        if (rv != 0) {
            fail("dlog_stream_create %s: %s (%s)", b->stream, dlog_strerror(rv),
                 dlog_errmsg(b->ns));
            b->own_stream = 0;
            return -1;
        }
        return 0;
    }
    rv = dlog_stream_describe(b->ns, b->stream, &info);
    if (rv != 0) {
        fail("stream %s: %s (%s)%s", b->stream, dlog_strerror(rv), dlog_errmsg(b->ns),
             rv == DLOG_ENOTFOUND ? "; --create makes it" : "");
        return -1;
    }
    b->existing = info->records;
    dlog_stream_info_free(info);
    return 0;
}

static void teardown_stream(struct bench *b)
{
    int rv;

    if (b->ns == NULL || !b->own_stream)
        return;
    rv = dlog_stream_delete(b->ns, b->stream);
    if (rv != 0)
        fail("dlog_stream_delete %s: %s (%s)", b->stream, dlog_strerror(rv),
             dlog_errmsg(b->ns));
}

/* ------------------------------------------------------------------------
 * Write/read mode
 * ------------------------------------------------------------------------ */

static int run_rw(struct bench *b)
{
    struct result res;
    struct hist *wlat = NULL, *rlat = NULL;
    unsigned nw = b->o.writers, nr = b->o.readers, i, started_w = 0, started_r = 0;
    unsigned opened_w = 0, opened_r = 0;
    uint64_t errors = 0, t_end;
    int barrier = 0, rc = 1;
    size_t k;

    memset(&res, 0, sizeof res);
    atomic_init(&b->writers_done, 0);
    atomic_init(&b->read_target, UINT64_MAX);
    if (open_ns(b) != 0)
        return 1;
    if (setup_stream(b) != 0)
        goto out;

    if (nw > 0) {
        b->payload = malloc(b->o.size * b->o.rpw);
        b->recs = calloc(b->o.rpw, sizeof *b->recs);
        if (b->payload == NULL || b->recs == NULL) {
            fail("out of memory for %u records of %zu bytes", b->o.rpw, b->o.size);
            goto out;
        }
        fill_random(b->payload, b->o.size * b->o.rpw);
        for (k = 0; k < b->o.rpw; k++) {
            b->recs[k].payload = b->payload + k * b->o.size;
            b->recs[k].len = b->o.size;
        }
    }
    b->w = calloc(nw ? nw : 1, sizeof *b->w);
    b->r = calloc(nr ? nr : 1, sizeof *b->r);
    wlat = hist_new();
    rlat = hist_new();
    if (b->w == NULL || b->r == NULL || wlat == NULL || rlat == NULL) {
        fail("out of memory");
        goto out;
    }
    for (i = 0; i < nw; i++, opened_w++)
        if (writer_setup(b, &b->w[i], i) != 0) {
            opened_w++; /* its mutex, hist and slots were set up */
            goto out;
        }
    for (i = 0; i < nr; i++, opened_r++)
        if (reader_setup(b, &b->r[i], i) != 0) {
            opened_r++;
            goto out;
        }
    if (nw == 0) {
        /* Read-only: the given count, or everything in the stream. */
        atomic_store(&b->read_target, b->o.count ? b->o.count : b->existing);
        atomic_store(&b->writers_done, 1);
    }

    if (pthread_barrier_init(&b->start, NULL, nw + nr + 1) != 0) {
        fail("pthread_barrier_init failed");
        goto out;
    }
    barrier = 1;
    for (i = 0; i < nw; i++, started_w++)
        if (pthread_create(&b->w[i].tid, NULL, writer_main, &b->w[i]) != 0)
            break;
    for (i = 0; i < nr && started_w == nw; i++, started_r++)
        if (pthread_create(&b->r[i].tid, NULL, reader_main, &b->r[i]) != 0)
            break;
    if (started_w != nw || started_r != nr) {
        /* Threads wait on the barrier forever: nothing sane to unwind. */
        fail("pthread_create failed");
        _exit(1);
    }
    b->t_start = clock_now_ns();
    pthread_barrier_wait(&b->start);

    /* Writers. */
    t_end = b->t_start;
    for (i = 0; i < nw; i++) {
        struct bwriter *w = &b->w[i];

        pthread_join(w->tid, NULL);
        res.records += w->acked;
        res.late += w->late;
        hist_merge(wlat, w->hist);
        if (w->t_last > t_end)
            t_end = w->t_last;
        if (w->failed != 0) {
            errors += w->failed;
            fail("writer %u: %" PRIu64 " writes failed, first: %s%s%s", i, w->failed,
                 dlog_strerror(w->first_err), w->errmsg[0] ? " — " : "", w->errmsg);
        }
    }
    if (nw > 0) {
        /* Readers start at the head: what was there plus what was acked. */
        atomic_store(&b->read_target, b->existing + res.records);
        atomic_store(&b->writers_done, 1);
    }
    res.bytes = res.records * b->o.size;
    res.elapsed_ns = t_end - b->t_start;
    res.lat = wlat;
    res.mode = "write";

    /* Readers. */
    t_end = b->t_start;
    for (i = 0; i < nr; i++) {
        struct breader *r = &b->r[i];

        pthread_join(r->tid, NULL);
        res.read_records += r->got;
        res.read_bytes += r->bytes;
        hist_merge(rlat, r->hist);
        if (r->t_last > t_end)
            t_end = r->t_last;
        if (r->errors != 0) {
            errors += r->errors;
            fail("reader %u: %" PRIu64 " errors, first: %s (%s)", i, r->errors,
                 dlog_strerror(r->first_err), r->errmsg);
        }
        if (r->short_read) {
            errors++;
            fail("reader %u: read %" PRIu64 " of %" PRIu64 " records, then nothing "
                 "for %d s",
                 i, r->got, (uint64_t)atomic_load(&b->read_target),
                 (int)(READ_IDLE_NS / NS_PER_SEC));
        }
    }
    if (nr > 0) {
        res.have_read = 1;
        res.read_elapsed_ns = t_end - b->t_start;
    }
    if (nw == 0) {
        /* Pure read throughput: the headline numbers are the readers'. */
        res.mode = "read";
        res.records = res.read_records;
        res.bytes = res.read_bytes;
        res.elapsed_ns = res.read_elapsed_ns;
        res.lat = rlat;
    }
    res.size = res.records ? (size_t)(res.bytes / res.records) : b->o.size;
    res.errors = errors;

    if (b->o.baseline_disk && res.bytes > 0) {
        size_t batch = b->o.batch_bytes ? b->o.batch_bytes : BASELINE_DEFAULT_BATCH;

        if (baseline_disk(b->o.uri, res.bytes, batch, &res.baseline_mbps) != 0)
            res.errors++;
        else
            res.have_baseline = 1;
    }

    printf("dlog-bench %s: uri=%s stream=%s writers=%u readers=%u size=%zu",
           dlog_version(), b->o.uri, b->stream, nw, nr, res.size);
    if (nw > 0)
        printf(" records/write=%u inflight=%u", b->o.rpw, b->o.inflight);
    printf("\n");
    report(b, &res);
    rc = res.errors != 0 ? 1 : 0;

out:
    for (i = 0; i < opened_r; i++) {
        if (b->r[i].dr != NULL)
            dlog_reader_close(b->r[i].dr);
        hist_free(b->r[i].hist);
        free(b->r[i].recs);
    }
    for (i = 0; i < opened_w; i++) {
        struct bwriter *w = &b->w[i];

        if (w->dw != NULL) {
            int rv = dlog_writer_close(w->dw);
            if (rv != 0 && rc == 0) {
                fail("writer %u: dlog_writer_close: %s", i, dlog_strerror(rv));
                rc = 1;
            }
        }
        hist_free(w->hist);
        free(w->slots);
        pthread_cond_destroy(&w->cond);
        pthread_mutex_destroy(&w->mu);
    }
    if (barrier)
        pthread_barrier_destroy(&b->start);
    teardown_stream(b);
    dlog_close(b->ns);
    hist_free(wlat);
    hist_free(rlat);
    free(b->w);
    free(b->r);
    free(b->recs);
    free(b->payload);
    return rc;
}

/* ------------------------------------------------------------------------
 * Tail latency: a tailing reader in another process
 * ------------------------------------------------------------------------ */

enum { MSG_READY = 1, MSG_RESULT = 2 };

/* Child to parent, one write() each (smaller than PIPE_BUF: atomic). */
struct tail_msg {
    int type;
    int err; /* 0, or the dlog_err that ended the child's run */
    uint64_t count, lost, bad, p50, p99, p999, max;
    char errmsg[DLOG_ERRMSG_LEN];
};

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;

    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Reads exactly n bytes within timeout_ms; 0, or -1 on EOF, error or timeout. */
static int read_full(int fd, void *p, size_t n, int timeout_ms)
{
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    char *c = p;

    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = clock_ms_left(deadline);
        ssize_t k;
        int rv;

        if (left == 0)
            return -1;
        rv = poll(&pfd, 1, left > INT_MAX ? INT_MAX : (int)left);
        if (rv < 0 && errno == EINTR)
            continue;
        if (rv <= 0)
            return -1;
        k = read(fd, c, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static void child_fail(struct tail_msg *m, int err, const char *what, const char *detail)
{
    m->err = err;
    snprintf(m->errmsg, sizeof m->errmsg, "%s: %s%s%s", what, dlog_strerror(err),
             detail && *detail ? " — " : "", detail ? detail : "");
}

/*
 * The tailing process: waits for the parent's go (the stream exists), opens
 * the namespace and a reader at the tail, says READY, then reads count
 * records, recording now - (write start time in the payload) for each, and
 * sends the RESULT. Returns the exit status.
 */
static int tail_child(const struct opts *o, const char *stream, int go_fd, int res_fd)
{
    struct tail_msg m;
    struct dlog_ns *ns = NULL;
    struct dlog_reader *r = NULL;
    struct dlog_reader_options ro;
    struct dlog_record *recs = NULL;
    struct hist *h = hist_new();
    char errmsg[DLOG_ERRMSG_LEN] = "";
    uint64_t got = 0, expect = 0, idle_since = 0;
    uint64_t *seen_ns = calloc(o->count ? o->count : 1, sizeof *seen_ns);
    char go;
    int rv, i;

    memset(&m, 0, sizeof m);
    recs = calloc(READ_MAX, sizeof *recs);
    if (h == NULL || recs == NULL || seen_ns == NULL) {
        child_fail(&m, DLOG_ENOMEM, "tail", NULL);
        goto send;
    }
    if (read_full(go_fd, &go, 1, -1) != 0) /* the parent went away */
        goto send_nothing;
    rv = dlog_open(o->uri, NULL, &ns, errmsg);
    if (rv != 0) {
        ns = NULL;
        child_fail(&m, rv, "tail: dlog_open", errmsg);
        goto send;
    }
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_TAIL;
    rv = dlog_reader_open(ns, stream, &ro, &r);
    if (rv != 0) {
        r = NULL;
        child_fail(&m, rv, "tail: dlog_reader_open", dlog_errmsg(ns));
        goto send;
    }
    m.type = MSG_READY;
    if (write_all(res_fd, &m, sizeof m) != 0)
        goto send_nothing;

    while (got < o->count) {
        uint64_t now;

        rv = dlog_read(r, recs, READ_MAX, 1000);
        now = clock_now_ns();
        if (rv == DLOG_ETIMEDOUT) {
            if (idle_since == 0)
                idle_since = now;
            else if (now - idle_since >= (uint64_t)TAIL_IDLE_MS * NS_PER_MS) {
                child_fail(&m, rv, "tail: no record for 10 s", NULL);
                break;
            }
            continue;
        }
        if (rv < 0) {
            child_fail(&m, rv, "tail: dlog_read", dlog_reader_errmsg(r));
            break;
        }
        idle_since = 0;
        for (i = 0; i < rv; i++) {
            uint64_t f[3];

            got++;
            if (recs[i].len < TAIL_PAYLOAD) {
                m.bad++;
                continue;
            }
            memcpy(f, recs[i].payload, sizeof f);
            if (f[0] != TAIL_MAGIC || f[1] > now) {
                m.bad++;
                continue;
            }
            hist_record(h, now - f[1]);
            if (f[2] < o->count)
                seen_ns[f[2]] = now;
            if (f[2] > expect)
                m.lost += f[2] - expect;
            expect = f[2] + 1;
        }
    }
    m.count = hist_count(h);
    m.p50 = hist_quantile(h, 0.5);
    m.p99 = hist_quantile(h, 0.99);
    m.p999 = hist_quantile(h, 0.999);
    m.max = hist_max(h);
send:
    m.type = MSG_RESULT;
    /* The result, then when each record was seen, for the visibility figure. */
    if (write_all(res_fd, &m, sizeof m) == 0 && seen_ns != NULL)
        write_all(res_fd, seen_ns, o->count * sizeof *seen_ns);
send_nothing:
    free(seen_ns);
    if (r != NULL)
        dlog_reader_close(r);
    if (ns != NULL)
        dlog_close(ns);
    hist_free(h);
    free(recs);
    return m.err != 0 ? 1 : 0;
}

static int run_tail(struct bench *b)
{
    struct result res;
    struct tail_msg m;
    struct dlog_writer *w = NULL;
    struct hist *wlat = hist_new();
    unsigned char *payload = NULL;
    struct dlog_record rec;
    int go_pipe[2] = {-1, -1}, res_pipe[2] = {-1, -1};
    uint64_t i, t_first = 0, t_last = 0, next;
    pid_t pid = -1;
    int rv, rc = 1, status, got_result = 0;

    struct dlog_writer_options wo;
    uint64_t *ack_ns = calloc(b->o.count ? b->o.count : 1, sizeof *ack_ns);
    uint64_t *seen_ns = calloc(b->o.count ? b->o.count : 1, sizeof *seen_ns);

    memset(&res, 0, sizeof res);
    payload = calloc(1, b->o.size);
    if (wlat == NULL || payload == NULL || ack_ns == NULL || seen_ns == NULL) {
        fail("out of memory");
        goto out;
    }
    fill_random(payload, b->o.size);
    /* The name is fixed before the fork so both processes know it. */
    if (b->o.stream == NULL)
        snprintf(b->stream, sizeof b->stream, "dlog-bench-tail-%ld-%" PRIu64,
                 (long)getpid(), clock_wall_ms());
    else
        snprintf(b->stream, sizeof b->stream, "%s", b->o.stream);
    if (pipe2(go_pipe, O_CLOEXEC) != 0 || pipe2(res_pipe, O_CLOEXEC) != 0) {
        fail("pipe: %s", strerror(errno));
        goto out;
    }
    /* Fork before this process touches dlog: the child starts clean. */
    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fail("fork: %s", strerror(errno));
        goto out;
    }
    if (pid == 0) {
        close(go_pipe[1]);
        close(res_pipe[0]);
        g_child_pid = 0;
        watchdog_arm(b->o.timeout);
        _exit(tail_child(&b->o, b->stream, go_pipe[0], res_pipe[1]));
    }
    g_child_pid = pid;
    close(go_pipe[0]);
    go_pipe[0] = -1;
    close(res_pipe[1]);
    res_pipe[1] = -1;

    if (open_ns(b) != 0)
        goto out;
    if (setup_stream(b) != 0)
        goto out;
    /* One record at a time: no linger, each write commits at once. */
    dlog_writer_options_init(&wo);
    wo.linger_us = 0;
    rv = dlog_writer_open(b->ns, b->stream, &wo, &w);
    if (rv != 0) {
        w = NULL;
        fail("dlog_writer_open %s: %s (%s)", b->stream, dlog_strerror(rv),
             dlog_errmsg(b->ns));
        goto out;
    }
    if (write_all(go_pipe[1], "g", 1) != 0 ||
        read_full(res_pipe[0], &m, sizeof m, 60000) != 0) {
        fail("the tailing process did not start");
        goto out;
    }
    if (m.type != MSG_READY) {
        fail("the tailing process failed: %s", m.errmsg);
        goto out;
    }

    /* One record about every millisecond; no catch-up bursts when late. */
    memset(&rec, 0, sizeof rec);
    rec.payload = payload;
    rec.len = b->o.size;
    next = clock_now_ns();
    for (i = 0; i < b->o.count; i++) {
        uint64_t f[3], t0, now = clock_now_ns();

        if (next > now)
            sleep_ns(next - now);
        t0 = clock_now_ns();
        f[0] = TAIL_MAGIC;
        f[1] = t0;
        f[2] = i;
        memcpy(payload, f, sizeof f);
        rv = dlog_write_sync(w, &rec, 1, NULL);
        t_last = clock_now_ns();
        if (i == 0)
            t_first = t0;
        if (rv != 0) {
            fail("dlog_write_sync: %s (%s)", dlog_strerror(rv), dlog_writer_errmsg(w));
            res.errors++;
            break;
        }
        res.records++;
        ack_ns[i] = t_last;
        hist_record(wlat, t_last - t0);
        next += NS_PER_MS;
        if (next < t_last)
            next = t_last;
    }

    got_result =
        read_full(res_pipe[0], &m, sizeof m, TAIL_IDLE_MS + 20000) == 0 &&
        m.type == MSG_RESULT &&
        read_full(res_pipe[0], seen_ns, b->o.count * sizeof *seen_ns, 20000) == 0;
    if (got_result) {
        /* Visibility: from the acknowledgement (the record is durable) to the
         * other process reading it; the reader may even be first (0). */
        struct hist *vis = hist_new();
        if (vis != NULL) {
            for (i = 0; i < res.records; i++)
                if (ack_ns[i] != 0 && seen_ns[i] != 0)
                    hist_record(vis, seen_ns[i] > ack_ns[i] ? seen_ns[i] - ack_ns[i] : 0);
            res.have_vis = hist_count(vis) > 0;
            res.vis_p50 = hist_quantile(vis, 0.5);
            res.vis_p99 = hist_quantile(vis, 0.99);
            res.vis_p999 = hist_quantile(vis, 0.999);
            res.vis_max = hist_max(vis);
            hist_free(vis);
        }
    }
    if (!got_result) {
        fail("no result from the tailing process");
        res.errors++;
        memset(&m, 0, sizeof m);
    } else if (m.err != 0) {
        fail("the tailing process failed: %s", m.errmsg);
        res.errors++;
    }
    if (got_result && m.err == 0 && m.count + m.bad < res.records) {
        fail("the tailing process saw %" PRIu64 " of %" PRIu64 " records",
             m.count + m.bad, res.records);
        res.errors++;
    }
    if (m.lost != 0 || m.bad != 0) {
        fail("the tailing process saw %" PRIu64 " gaps and %" PRIu64 " bad records",
             m.lost, m.bad);
        res.errors++;
    }
    res.mode = "tail";
    res.size = b->o.size;
    res.bytes = res.records * b->o.size;
    res.elapsed_ns = t_last - t_first;
    res.p50 = m.p50;
    res.p99 = m.p99;
    res.p999 = m.p999;
    res.max = m.max;
    res.have_write_lat = 1;
    res.write_p50 = hist_quantile(wlat, 0.5);
    res.write_p99 = hist_quantile(wlat, 0.99);
    printf("dlog-bench %s: uri=%s stream=%s tail-latency count=%" PRIu64 " size=%zu "
           "(tailed by pid %ld, %" PRIu64 " records measured)\n",
           dlog_version(), b->o.uri, b->stream, b->o.count, b->o.size, (long)pid,
           m.count);
    report(b, &res);
    rc = res.errors != 0 ? 1 : 0;

out:
    if (go_pipe[1] >= 0)
        close(go_pipe[1]); /* a child still waiting for go sees EOF */
    if (pid > 0) {
        /* A child that sent its result ends by itself; one that did not (it
         * may wait for go or for records) is stopped. */
        if (!got_result)
            kill(pid, SIGKILL);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
        g_child_pid = 0;
    }
    if (w != NULL)
        dlog_writer_close(w);
    teardown_stream(b);
    if (b->ns != NULL)
        dlog_close(b->ns);
    if (go_pipe[0] >= 0) /* only when the fork failed */
        close(go_pipe[0]);
    if (res_pipe[0] >= 0)
        close(res_pipe[0]);
    if (res_pipe[1] >= 0)
        close(res_pipe[1]);
    hist_free(wlat);
    free(payload);
    free(ack_ns);
    free(seen_ns);
    return rc;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct bench b;
    double timeout;
    int rv;

    memset(&b, 0, sizeof b);
    rv = parse_args(argc, argv, &b.o);
    if (rv != 0)
        return rv > 0 ? 0 : 1;
    signal(SIGPIPE, SIG_IGN);

    /* Bounded: the watchdog ends a run that hangs. */
    timeout = b.o.timeout;
    if (timeout == 0) {
        if (b.o.tail)
            timeout = (double)b.o.count * 0.005 + 120;
        else if (b.o.count != 0)
            timeout = 1800;
        else
            timeout = 2 * b.o.duration + 600;
        b.o.timeout = timeout;
    }
    watchdog_arm(timeout);

    return b.o.tail ? run_tail(&b) : run_rw(&b);
}
