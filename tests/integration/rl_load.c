/*
 * rl_load: offers a paced load of one-record writes to a stream and checks
 * what happened to every write (tests/integration/ratelimit-test.sh).
 *
 *   rl_load URI STREAM THREADS RATE SIZE SECONDS [--no-check]
 *
 * THREADS writers each offer RATE records/s of SIZE bytes for SECONDS.
 * Every write's outcome is counted: acknowledged, refused with
 * DLOG_EOVERCAPACITY, or another error. Each second a line
 * "sec N acked A rejected R other O" goes to stdout (flushed), then a
 * summary "total acked A rejected R other O"; then, unless --no-check, the
 * stream is read back and "check read N acked-found F dups D foreign X
 * disorder O" tells whether every acknowledged record is there exactly
 * once, and how many records of a writer came before one it wrote earlier.
 * With RL_BASE=K in the environment the writers are numbered from K, so
 * several rl_load processes can share a stream; each checks its own
 * records and skips the others'. Exits 0
 * unless it could not run. Pacing sleeps until each write's time is due.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlog/dlog.h>

#define MAX_THREADS 16
#define MAX_SECONDS 600

static struct dlog_ns *ns;
static const char *stream;
static long rate, size, seconds;
static uint64_t start_ns;
static _Atomic uint64_t acked[MAX_SECONDS + 2], rejected[MAX_SECONDS + 2],
    other[MAX_SECONDS + 2];
static uint8_t *ackmap[MAX_THREADS]; /* per thread, one byte per sequence */
static long base;                    /* the number of this process's first writer */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long second_of(uint64_t t)
{
    long s = (long)((t - start_ns) / 1000000000ULL);
    return s > MAX_SECONDS ? MAX_SECONDS + 1 : s;
}

struct wreq {
    struct dlog_write_req req;
    long thread, seq;
};

static void on_done(struct dlog_write_req *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    long s = second_of(now_ns());
    if (status == 0) {
        atomic_fetch_add(&acked[s], 1);
        ackmap[w->thread][w->seq] = 1;
    } else if (status == DLOG_EOVERCAPACITY) {
        atomic_fetch_add(&rejected[s], 1);
    } else {
        atomic_fetch_add(&other[s], 1);
    }
    free(w);
}

static void *writer_main(void *arg)
{
    long t = (long)arg, n = rate * seconds;
    struct dlog_writer *w = NULL;
    struct dlog_writer_options o;
    char *buf = calloc(1, (size_t)size);

    dlog_writer_options_init(&o);
    o.linger_us = 0;
    if (buf == NULL || dlog_writer_open(ns, stream, &o, &w) != 0) {
        fprintf(stderr, "rl_load: writer %ld: %s\n", t, dlog_errmsg(ns));
        free(buf);
        return NULL;
    }
    for (long i = 0; i < n; i++) {
        uint64_t due = start_ns + (uint64_t)i * 1000000000ULL / (uint64_t)rate,
                 now = now_ns();
        if (due > now) {
            struct timespec ts = {(time_t)((due - now) / 1000000000ULL),
                                  (long)((due - now) % 1000000000ULL)};
            nanosleep(&ts, NULL); /* pacing: the write is not due yet */
        }
        struct wreq *r = calloc(1, sizeof *r);
        if (r == NULL)
            break;
        r->thread = t;
        r->seq = i;
        snprintf(buf, (size_t)size, "%ld %ld ", base + t, i);
        struct dlog_record rec = {.payload = buf, .len = (size_t)size};
        int rv = dlog_write(w, &r->req, &rec, 1, on_done);
        if (rv != 0) {
            free(r);
            atomic_fetch_add(&other[second_of(now_ns())], 1);
            if (rv == DLOG_ECLOSED || rv == DLOG_EFENCED)
                break;
        }
    }
    dlog_writer_flush(w);
    dlog_writer_close(w);
    free(buf);
    return NULL;
}

/* Reads the stream and matches every record to an acknowledged write. */
static void check(long threads)
{
    struct dlog_reader *r;
    struct dlog_reader_options o;
    uint64_t nread = 0, found = 0, dups = 0, foreign = 0, disorder = 0;
    long last[MAX_THREADS];

    for (long t = 0; t < MAX_THREADS; t++)
        last[t] = -1;

    dlog_reader_options_init(&o);
    o.start = DLOG_START_HEAD;
    if (dlog_reader_open(ns, stream, &o, &r) != 0) {
        printf("check failed: %s\n", dlog_errmsg(ns));
        return;
    }
    for (;;) {
        struct dlog_record rec;
        int rv = dlog_read_next(r, &rec, 0);
        if (rv != 1)
            break;
        long t = -1, i = -1;
        char tmp[64];
        size_t len = rec.len < sizeof tmp - 1 ? rec.len : sizeof tmp - 1;
        memcpy(tmp, rec.payload, len);
        tmp[len] = '\0';
        nread++;
        if (sscanf(tmp, "%ld %ld", &t, &i) != 2) {
            foreign++;
            continue;
        }
        if (t < base || t >= base + threads)
            continue; /* another process's writer */
        t -= base;
        if (i < 0 || i >= rate * seconds) {
            foreign++;
            continue;
        }
        if (i < last[t])
            disorder++;
        last[t] = i;
        if (ackmap[t][i] == 1) {
            ackmap[t][i] = 2;
            found++;
        } else if (ackmap[t][i] == 2) {
            dups++;
        } else {
            foreign++; /* stored but never acknowledged: allowed only for errors */
        }
    }
    dlog_reader_close(r);
    printf("check read %llu acked-found %llu dups %llu foreign %llu disorder %llu\n",
           (unsigned long long)nread, (unsigned long long)found, (unsigned long long)dups,
           (unsigned long long)foreign, (unsigned long long)disorder);
}

int main(int argc, char **argv)
{
    pthread_t th[MAX_THREADS];
    char err[DLOG_ERRMSG_LEN];
    long threads;

    if (argc < 7) {
        fprintf(stderr,
                "usage: rl_load URI STREAM THREADS RATE SIZE SECONDS [--no-check]\n");
        return 2;
    }
    stream = argv[2];
    base = getenv("RL_BASE") != NULL ? atol(getenv("RL_BASE")) : 0;
    threads = atol(argv[3]);
    rate = atol(argv[4]);
    size = atol(argv[5]);
    seconds = atol(argv[6]);
    if (threads < 1 || threads > MAX_THREADS || rate < 1 || size < 32 || seconds < 1 ||
        seconds > MAX_SECONDS) {
        fprintf(stderr, "rl_load: bad arguments\n");
        return 2;
    }
    if (dlog_open(argv[1], NULL, &ns, err) != 0) {
        fprintf(stderr, "rl_load: %s: %s\n", argv[1], err);
        return 1;
    }
    for (long t = 0; t < threads; t++)
        ackmap[t] = calloc((size_t)(rate * seconds), 1);
    start_ns = now_ns();
    for (long t = 0; t < threads; t++)
        pthread_create(&th[t], NULL, writer_main, (void *)t);
    /* The per-second lines, as each second ends. */
    for (long s = 0; s < seconds; s++) {
        uint64_t due = start_ns + (uint64_t)(s + 1) * 1000000000ULL, now = now_ns();
        if (due > now) {
            struct timespec ts = {(time_t)((due - now) / 1000000000ULL),
                                  (long)((due - now) % 1000000000ULL)};
            nanosleep(&ts, NULL); /* until the second is over */
        }
        printf("sec %ld acked %llu rejected %llu other %llu\n", s,
               (unsigned long long)acked[s], (unsigned long long)rejected[s],
               (unsigned long long)other[s]);
        fflush(stdout);
    }
    for (long t = 0; t < threads; t++)
        pthread_join(th[t], NULL);
    uint64_t a = 0, rj = 0, o = 0;
    for (long s = 0; s <= MAX_SECONDS + 1; s++)
        a += acked[s], rj += rejected[s], o += other[s];
    printf("total acked %llu rejected %llu other %llu\n", (unsigned long long)a,
           (unsigned long long)rj, (unsigned long long)o);
    fflush(stdout);
    if (argc < 8 || strcmp(argv[7], "--no-check") != 0)
        check(threads);
    for (long t = 0; t < threads; t++)
        free(ackmap[t]);
    dlog_close(ns);
    return 0;
}
