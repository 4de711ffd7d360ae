/*
 * fault-writer: the writer, the checker and two probes of
 * tests/integration/cluster-fault-test.sh.
 *
 *   fault-writer write URI STREAM TOKEN RATE INFLIGHT
 *       Writes one-record writes "fw TOKEN N" (N = 1, 2, 3, ... in submit
 *       order) to STREAM through a shared writer, RATE writes/s (0: as
 *       fast as the writes complete), at most INFLIGHT unanswered, until
 *       SIGTERM or SIGINT. It goes on after failures: a failed write is
 *       logged and the next one is written; a writer whose error sticks
 *       (fenced, say) is closed and opened again. One line per answer, in
 *       the order the answers arrive, flushed:
 *         ack N DLSN T        acknowledged at DLSN; T: CLOCK_MONOTONIC, ns
 *         fail N ERROR T      failed (may or may not be stored)
 *       and "open-failed ERROR T" when opening the namespace or the writer
 *       fails (it is retried), then "end submitted S acked A failed F" at
 *       the end (unanswered writes after a 20 s drain count as failed).
 *
 *   fault-writer check URI STREAM TOKEN ACKLOG
 *       Reads STREAM from its head to its last record and checks it against
 *       ACKLOG (the output of write): every acknowledged N is read exactly
 *       once, at its acknowledged DLSN, and the acknowledged records are
 *       read in the order of their ack lines; an unacknowledged N is read
 *       at most once; every record read is "fw TOKEN N" with 1 <= N <= S;
 *       DLSNs grow. Prints "read R acked A found F missing M dup D
 *       unacked-stored U of X foreign O disorder Z", "epochs E1 E2 ..."
 *       (the epochs of the segments holding acknowledged records) and
 *       "digest H" (of every DLSN and payload read, to compare replicas).
 *       Exit status 0 if all holds, 1 if not, 2 if it could not read.
 *
 *   fault-writer now
 *       Prints CLOCK_MONOTONIC in ns (the clock of the ack lines).
 *
 *   fault-writer leader ADDR[,ADDR...] GROUP
 *       Prints the listen address of the leader of data group GROUP: asks
 *       each node (node calls, no redirect followed) for a read it cannot
 *       serve from its replica (min_applied = max), so that a follower
 *       redirects it to the leader. Exit status 1 if no node names one.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "base/buf.h"
#include "wire/wire.h"

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {(time_t)(ns / 1000000000ULL), (long)(ns % 1000000000ULL)};
    nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------------ write */

struct wreq {
    struct dlog_write_req req; /* first */
    uint64_t n;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static uint64_t inflight, nacked, nfailed;
static int broken; /* the writer's error sticks: reopen it */
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static int sticky(int status)
{
    return status != DLOG_EUNAVAILABLE && status != DLOG_ETIMEDOUT &&
           status != DLOG_EOVERCAPACITY;
}

static void on_written(struct dlog_write_req *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    char d[DLOG_DLSN_STRLEN];
    uint64_t t = now_ns();

    pthread_mutex_lock(&mu);
    if (status == 0) {
        printf("ack %" PRIu64 " %s %" PRIu64 "\n", w->n,
               dlog_dlsn_format(req->first, d, sizeof d), t);
        nacked++;
    } else {
        printf("fail %" PRIu64 " %s %" PRIu64 "\n", w->n, dlog_strerror(status), t);
        nfailed++;
        if (sticky(status))
            broken = 1;
    }
    fflush(stdout);
    inflight--;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    free(w);
}

static void open_failed(int rv, const char *what, const char *msg)
{
    pthread_mutex_lock(&mu);
    printf("open-failed %s %" PRIu64 "\n", dlog_strerror(rv), now_ns());
    fflush(stdout);
    pthread_mutex_unlock(&mu);
    fprintf(stderr, "fault-writer: %s: %s: %s\n", what, dlog_strerror(rv), msg);
}

/* Waits until at most `most` writes are unanswered, or the deadline (0: none). */
static int wait_inflight(uint64_t most, uint64_t deadline)
{
    pthread_mutex_lock(&mu);
    while (inflight > most) {
        if (deadline != 0 && now_ns() >= deadline)
            break;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 100 * 1000000L; /* rechecks the deadline and the stop flag */
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cv, &mu, &ts);
        if (deadline == 0 && stop)
            break;
    }
    int ok = inflight <= most;
    pthread_mutex_unlock(&mu);
    return ok;
}

static int run_write(const char *uri, const char *stream, const char *token, long rate,
                     long max_inflight)
{
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    char errmsg[DLOG_ERRMSG_LEN], payload[128];
    uint64_t n = 0, start = now_ns();
    int rv;

    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop && ns == NULL) {
        errmsg[0] = '\0';
        if ((rv = dlog_open(uri, NULL, &ns, errmsg)) != 0) {
            open_failed(rv, "open", errmsg);
            sleep_ns(200 * 1000000ULL); /* a retry's backoff */
        }
    }
    while (!stop) {
        if (w == NULL) {
            struct dlog_writer_options o;
            dlog_writer_options_init(&o);
            o.linger_us = 0;
            if ((rv = dlog_writer_open(ns, stream, &o, &w)) != 0) {
                open_failed(rv, "writer", dlog_errmsg(ns));
                w = NULL;
                sleep_ns(100 * 1000000ULL); /* a retry's backoff */
                continue;
            }
            pthread_mutex_lock(&mu);
            broken = 0;
            pthread_mutex_unlock(&mu);
        }
        if (rate > 0) { /* pacing: write n + 1 is due at start + n / rate */
            uint64_t due = start + n * 1000000000ULL / (uint64_t)rate, t = now_ns();
            if (due > t)
                sleep_ns(due - t);
        }
        if (!wait_inflight((uint64_t)max_inflight - 1, 0))
            break;
        pthread_mutex_lock(&mu);
        int reopen = broken;
        pthread_mutex_unlock(&mu);
        if (reopen) { /* its error sticks: let its writes finish, then reopen */
            wait_inflight(0, now_ns() + 20 * 1000000000ULL);
            dlog_writer_close(w);
            w = NULL;
            continue;
        }
        struct wreq *r = calloc(1, sizeof *r);
        if (r == NULL)
            return 2;
        r->n = ++n;
        int len = snprintf(payload, sizeof payload, "fw %s %" PRIu64, token, n);
        struct dlog_record rec = {.payload = payload, .len = (size_t)len};
        pthread_mutex_lock(&mu);
        inflight++;
        pthread_mutex_unlock(&mu);
        if ((rv = dlog_write(w, &r->req, &rec, 1, on_written)) != 0)
            on_written(&r->req, rv); /* not queued: a failure like the others */
    }
    /* Let the last writes be answered (bounded), then report. */
    int drained = wait_inflight(0, now_ns() + 20 * 1000000000ULL);
    pthread_mutex_lock(&mu);
    printf("end submitted %" PRIu64 " acked %" PRIu64 " failed %" PRIu64 "\n", n, nacked,
           nfailed + inflight);
    fflush(stdout);
    pthread_mutex_unlock(&mu);
    if (drained) { /* otherwise a write still refers to the writer: exit without closing
                    */
        if (w != NULL)
            dlog_writer_close(w);
        dlog_close(ns);
    }
    return 0;
}

/* ------------------------------------------------------------------ check */

struct ackrec {
    struct dlog_dlsn dlsn;
    uint64_t idx; /* its ack line's rank, from 1; 0: not acknowledged */
    uint64_t seen;
};

/* FNV-1a over the bytes, continued from h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

/* The ack log: recs[1..*max] (calloc'd), by N. */
static struct ackrec *load_log(const char *path, uint64_t *max, uint64_t *nacks)
{
    FILE *f = fopen(path, "r");
    char line[512], word[32], d[DLOG_DLSN_STRLEN];
    uint64_t n, submitted = 0, cap = 1024;
    struct ackrec *v = calloc(cap, sizeof *v);

    *max = *nacks = 0;
    if (f == NULL || v == NULL) {
        perror(path);
        exit(2);
    }
    while (fgets(line, sizeof line, f) != NULL) {
        if (sscanf(line, "end submitted %" SCNu64, &submitted) == 1)
            continue;
        if (sscanf(line, "%31s %" SCNu64 " %63s", word, &n, d) != 3 || n == 0)
            continue;
        if (n >= cap) {
            uint64_t nc = cap;
            while (nc <= n)
                nc *= 2;
            struct ackrec *nv = realloc(v, nc * sizeof *v);
            if (nv == NULL)
                exit(2);
            memset(nv + cap, 0, (nc - cap) * sizeof *v);
            v = nv;
            cap = nc;
        }
        if (n > *max)
            *max = n;
        if (strcmp(word, "ack") == 0) {
            if (v[n].idx != 0 || dlog_dlsn_parse(d, &v[n].dlsn) != 0) {
                fprintf(stderr, "check: bad or repeated ack line: %s", line);
                exit(2);
            }
            v[n].idx = ++*nacks;
        }
    }
    fclose(f);
    if (submitted > *max) { /* writes never answered: no line at all */
        if (submitted >= cap) {
            struct ackrec *nv = realloc(v, (submitted + 1) * sizeof *v);
            if (nv == NULL)
                exit(2);
            memset(nv + cap, 0, (submitted + 1 - cap) * sizeof *v);
            v = nv;
        }
        *max = submitted;
    }
    return v;
}

static int run_check(const char *uri, const char *stream, const char *token,
                     const char *ackpath)
{
    uint64_t max, nacks, nread = 0, found = 0, missing = 0, dup = 0, unacked = 0,
                         unacked_stored = 0, foreign = 0, disorder = 0, last_idx = 0;
    uint64_t digest = 0xcbf29ce484222325ULL;
    struct ackrec *v = load_log(ackpath, &max, &nacks);
    char errmsg[DLOG_ERRMSG_LEN] = "", a[DLOG_DLSN_STRLEN], b[DLOG_DLSN_STRLEN];
    struct dlog_ns *ns = NULL;
    struct dlog_stream_info *info = NULL;
    struct dlog_reader *r = NULL;
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    size_t errors = 0;
    int rv;

#define FAIL(...)                                                                        \
    do {                                                                                 \
        if (errors++ < 20)                                                               \
            fprintf(stderr, "check: " __VA_ARGS__);                                      \
    } while (0)

    if ((rv = dlog_open(uri, NULL, &ns, errmsg)) != 0) {
        fprintf(stderr, "check: open %s: %s: %s\n", uri, dlog_strerror(rv), errmsg);
        return 2;
    }
    if ((rv = dlog_stream_describe(ns, stream, &info)) != 0) {
        fprintf(stderr, "check: describe: %s: %s\n", dlog_strerror(rv), dlog_errmsg(ns));
        return 2;
    }
    struct dlog_reader_options o;
    dlog_reader_options_init(&o);
    o.start = DLOG_START_HEAD;
    o.end = info->last;
    if (info->records > 0 && (rv = dlog_reader_open(ns, stream, &o, &r)) != 0) {
        fprintf(stderr, "check: reader: %s: %s\n", dlog_strerror(rv), dlog_errmsg(ns));
        return 2;
    }
    size_t tlen = strlen(token);
    /* Up to the last record (a reader past its end waits for the next one). */
    while (r != NULL && (nread == 0 || dlog_dlsn_cmp(prev, info->last) < 0)) {
        struct dlog_record recs[256];
        rv = dlog_read(r, recs, 256, 10000);
        if (rv == DLOG_EEOF)
            break;
        if (rv < 0) {
            fprintf(stderr, "check: read after %" PRIu64 " records: %s: %s\n", nread,
                    dlog_strerror(rv), dlog_reader_errmsg(r));
            return 2;
        }
        for (int i = 0; i < rv; i++) {
            const struct dlog_record *rec = &recs[i];
            char p[128];
            uint64_t n = 0;
            size_t len = rec->len < sizeof p - 1 ? rec->len : sizeof p - 1;
            memcpy(p, rec->payload, len);
            p[len] = '\0';
            nread++;
            digest = fnv(digest, dlog_dlsn_format(rec->dlsn, a, sizeof a), strlen(a));
            digest = fnv(digest, rec->payload, rec->len);
            if (nread > 1 && dlog_dlsn_cmp(prev, rec->dlsn) >= 0)
                FAIL("DLSN %s follows %s\n", a, dlog_dlsn_format(prev, b, sizeof b));
            prev = rec->dlsn;
            if (rec->len >= sizeof p || strncmp(p, "fw ", 3) != 0 ||
                strncmp(p + 3, token, tlen) != 0 || p[3 + tlen] != ' ' ||
                sscanf(p + 4 + tlen, "%" SCNu64, &n) != 1 || n == 0 || n > max) {
                foreign++;
                FAIL("a record not written by this writer at %s: '%s'\n", a, p);
                continue;
            }
            struct ackrec *x = &v[n];
            if (++x->seen > 1) {
                dup++;
                FAIL("record %" PRIu64 " read again at %s\n", n, a);
                continue;
            }
            if (x->idx == 0)
                continue;
            if (dlog_dlsn_cmp(x->dlsn, rec->dlsn) != 0)
                FAIL("record %" PRIu64 " acknowledged at %s, read at %s\n", n,
                     dlog_dlsn_format(x->dlsn, b, sizeof b), a);
            if (x->idx < last_idx) {
                disorder++;
                FAIL("record %" PRIu64 " (ack %" PRIu64 ") read after ack %" PRIu64 "\n",
                     n, x->idx, last_idx);
            }
            last_idx = x->idx;
        }
    }
    /* Epochs of the segments holding acknowledged records. */
    int *epoch_hit = calloc(info->nsegments + 1, sizeof *epoch_hit);
    if (epoch_hit == NULL)
        return 2;
    for (uint64_t n = 1; n <= max; n++) {
        struct ackrec *x = &v[n];
        if (x->idx == 0) {
            unacked++;
            if (x->seen > 0)
                unacked_stored++;
            continue;
        }
        if (x->seen == 0) {
            missing++;
            FAIL("acknowledged record %" PRIu64 " at %s is missing\n", n,
                 dlog_dlsn_format(x->dlsn, a, sizeof a));
        } else {
            found++;
        }
        for (size_t s = 0; s < info->nsegments; s++)
            if (info->segments[s].seq == x->dlsn.seg)
                epoch_hit[s] = 1;
    }
    printf("read %" PRIu64 " acked %" PRIu64 " found %" PRIu64 " missing %" PRIu64
           " dup %" PRIu64 " unacked-stored %" PRIu64 " of %" PRIu64 " foreign %" PRIu64
           " disorder %" PRIu64 "\n",
           nread, nacks, found, missing, dup, unacked_stored, unacked, foreign, disorder);
    printf("epochs");
    uint64_t last_epoch = UINT64_MAX;
    for (size_t s = 0; s < info->nsegments; s++)
        if (epoch_hit[s] && info->segments[s].epoch != last_epoch) {
            last_epoch = info->segments[s].epoch;
            printf(" %" PRIu64, last_epoch);
        }
    printf("\ndigest %016" PRIx64 "\n", digest);
    free(epoch_hit);
    free(v);
    if (r != NULL)
        dlog_reader_close(r);
    dlog_stream_info_free(info);
    dlog_close(ns);
    return errors == 0 ? 0 : 1;
}

/* ------------------------------------------------------------------ leader */

static int send_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = recv(fd, p, n, 0);
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* One request, one reply (in *frame, to free); 0 or -1. */
static int exchange(int fd, struct wire_msg *m, uint64_t id, uint8_t **frame,
                    struct wire_msg *rep)
{
    struct bytes out;
    uint8_t pre[WIRE_FRAME_PREFIX];
    char errmsg[DLOG_ERRMSG_LEN];

    m->version = 1;
    m->request_id = id;
    bytes_init(&out);
    if (wire_encode(m, NULL, &out, errmsg) != 0 || send_all(fd, out.p, out.len) != 0) {
        bytes_free(&out);
        return -1;
    }
    bytes_free(&out);
    if (recv_all(fd, pre, sizeof pre) != 0)
        return -1;
    size_t len =
        (size_t)pre[0] << 24 | (size_t)pre[1] << 16 | (size_t)pre[2] << 8 | pre[3];
    if (len == 0 || len > WIRE_MAX_FRAME_DEFAULT || (*frame = malloc(len + 4)) == NULL)
        return -1;
    memcpy(*frame, pre, sizeof pre);
    if (recv_all(fd, *frame + 4, len) != 0 ||
        wire_decode(*frame, len + 4, NULL, rep, errmsg) != 0 || rep->request_id != id) {
        free(*frame);
        *frame = NULL;
        return -1;
    }
    return 0;
}

/* The leader address node addr redirects a read of group g to, in out. */
static int ask(const char *addr, unsigned g, char *out, size_t size)
{
    char host[64];
    int port, fd, rv = -1;
    struct sockaddr_in sa;
    struct timeval tv = {1, 0};
    struct wire_msg m, rep;
    uint8_t *frame = NULL;

    if (sscanf(addr, "%63[^:]:%d", host, &port) != 2)
        return -1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1 ||
        (fd = socket(AF_INET, SOCK_STREAM, 0)) < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    memset(&m, 0, sizeof m);
    memset(&rep, 0, sizeof rep);
    m.type = WIRE_HELLO;
    m.u.hello.min_version = WIRE_VERSION_MIN;
    m.u.hello.max_version = WIRE_VERSION_MAX;
    m.u.hello.client_name = "fault-writer leader";
    if (exchange(fd, &m, 1, &frame, &rep) != 0 || rep.status != 0)
        goto out;
    wire_msg_free(&rep);
    free(frame);
    frame = NULL;
    memset(&m, 0, sizeof m);
    m.type = WIRE_SEG_INFO;
    m.u.seg.group = g;
    m.u.seg.min_applied = UINT64_MAX;
    if (exchange(fd, &m, 2, &frame, &rep) != 0)
        goto out;
    if (rep.status == DLOG_ENOTLEADER && rep.err.address != NULL) {
        snprintf(out, size, "%s", rep.err.address);
        rv = 0;
    }
out:
    wire_msg_free(&rep);
    free(frame);
    close(fd);
    return rv;
}

/* The address most followers name (a majority of those that answered). */
static int run_leader(const char *addrs, unsigned g)
{
    char list[4096], names[64][128];
    int votes[64], n = 0, best = -1;

    snprintf(list, sizeof list, "%s", addrs);
    for (char *save = NULL, *a = strtok_r(list, ",", &save); a != NULL;
         a = strtok_r(NULL, ",", &save)) {
        char who[128];
        if (ask(a, g, who, sizeof who) != 0)
            continue;
        int k;
        for (k = 0; k < n && strcmp(names[k], who) != 0; k++)
            ;
        if (k == n && n < 64) {
            snprintf(names[n], sizeof names[n], "%s", who);
            votes[n++] = 0;
        }
        if (k < n && ++votes[k] > (best < 0 ? 0 : votes[best]))
            best = k;
    }
    if (best < 0)
        return 1;
    printf("%s\n", names[best]);
    return 0;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOFBF, 1 << 16);
    if (argc == 7 && strcmp(argv[1], "write") == 0)
        return run_write(argv[2], argv[3], argv[4], atol(argv[5]),
                         atol(argv[6]) > 0 ? atol(argv[6]) : 1);
    if (argc == 6 && strcmp(argv[1], "check") == 0)
        return run_check(argv[2], argv[3], argv[4], argv[5]);
    if (argc == 2 && strcmp(argv[1], "now") == 0) {
        printf("%" PRIu64 "\n", now_ns());
        return 0;
    }
    if (argc == 4 && strcmp(argv[1], "leader") == 0)
        return run_leader(argv[2], (unsigned)atoi(argv[3]));
    fprintf(stderr, "usage: fault-writer write URI STREAM TOKEN RATE INFLIGHT\n"
                    "       fault-writer check URI STREAM TOKEN ACKLOG\n"
                    "       fault-writer now\n"
                    "       fault-writer leader ADDR[,ADDR...] GROUP\n");
    return 2;
}
