/*
 * etcd-load — puts into etcd through its v3 JSON gateway (POST /v3/kv/put)
 * over keep-alive HTTP/1.1 connections, for tests/bench/run-etcd.sh.
 *
 * Two modes:
 *
 *   closed loop  (default) every connection sends its next put as soon as
 *                the previous one is answered: the peak puts/s that
 *                --conns connections get.
 *   open loop    --rate R: puts are due at fixed times (R per second in
 *                all); a due put goes out on an idle connection, or waits
 *                in a queue until one is free. Its latency runs from the
 *                time it was due, not from when it was sent, so a server
 *                that falls behind shows in the percentiles (no coordinated
 *                omission).
 *
 * Each put writes a --size byte value (random bytes, filled once) under one
 * of --keys keys, in turn. A put counts as acknowledged when etcd answers
 * 200 with a response header; anything else is an error. One libuv loop,
 * one thread. Human-readable lines go to stdout; with --json the last line
 * is one JSON object. Exit status 0, or 1 when setup failed or a put failed.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <uv.h>

#include "base/clock.h"
#include "base/hist.h"

#define MAX_ENDPOINTS 16
#define RBUF_SIZE     (64 * 1024)
#define REQ_MAX       4096
#define TICK_MS       1     /* open loop: how often due puts are sent */
#define DRAIN_MS      30000 /* after the duration, wait this long for replies */

struct opts {
    char *endpoints[MAX_ENDPOINTS];
    unsigned nendpoints;
    unsigned conns;
    double duration;
    double rate; /* puts/s in all; 0: closed loop */
    size_t size;
    unsigned keys;
    const char *prefix;
    int json;
};

struct load;

struct conn {
    uv_tcp_t tcp;
    uv_connect_t creq;
    uv_write_t wreq;
    struct load *L;
    unsigned idx;
    int connected;
    int busy; /* a put is in flight */
    int closing;
    uint64_t t0; /* its start (due time in open loop, send time otherwise) */
    char req[REQ_MAX];
    char rbuf[RBUF_SIZE];
    size_t rlen;
};

struct load {
    struct opts o;
    uv_loop_t loop;
    uv_timer_t tick;
    struct sockaddr_in addr[MAX_ENDPOINTS];
    struct conn *c;
    unsigned connected;
    unsigned failed_connects;
    char *value_b64;
    uint64_t key_next;
    uint64_t t_start;
    uint64_t deadline;
    int started;
    int stopping;
    /* open loop */
    uint64_t due;    /* puts that have become due so far */
    uint64_t *queue; /* due times of puts waiting for a connection (a ring) */
    size_t qcap, qhead, qlen;
    /* results */
    struct hist *hist;
    uint64_t ok;
    uint64_t errors;
    uint64_t t_last;
    uint64_t max_queue;
    char first_error[256];
};

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;

    fputs("etcd-load: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void note_error(struct load *L, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void note_error(struct load *L, const char *fmt, ...)
{
    va_list ap;

    if (L->errors++ == 0) {
        va_start(ap, fmt);
        vsnprintf(L->first_error, sizeof L->first_error, fmt, ap);
        va_end(ap);
    }
}

/* ------------------------------------------------------------------------
 * Encoding
 * ------------------------------------------------------------------------ */

static size_t b64_encode(const unsigned char *in, size_t n, char *out)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t i, o = 0;

    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = tab[v >> 6 & 63];
        out[o++] = tab[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        out[o++] = i + 1 < n ? tab[v >> 6 & 63] : '=';
        out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

/* The HTTP request of the next put into c->req; its length. */
static size_t build_put(struct load *L, struct conn *c)
{
    char key[64], key_b64[96], body[REQ_MAX];
    int kn, bn, rn;

    kn = snprintf(key, sizeof key, "%s%08" PRIu64, L->o.prefix, L->key_next % L->o.keys);
    L->key_next++;
    b64_encode((const unsigned char *)key, (size_t)kn, key_b64);
    bn = snprintf(body, sizeof body, "{\"key\":\"%s\",\"value\":\"%s\"}", key_b64,
                  L->value_b64);
    rn = snprintf(c->req, sizeof c->req,
                  "POST /v3/kv/put HTTP/1.1\r\n"
                  "Host: etcd\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: %d\r\n"
                  "\r\n"
                  "%s",
                  bn, body);
    return (size_t)rn;
}

/* ------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------ */

static void send_put(struct conn *c, uint64_t t0);
static void maybe_finish(struct load *L);

static void on_close(uv_handle_t *h)
{
    (void)h;
}

static void conn_close(struct conn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    c->busy = 0;
    uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_write(uv_write_t *req, int status)
{
    struct conn *c = req->data;

    if (status != 0 && !c->closing) {
        note_error(c->L, "write: %s", uv_strerror(status));
        conn_close(c);
        maybe_finish(c->L);
    }
}

static void send_put(struct conn *c, uint64_t t0)
{
    struct load *L = c->L;
    uv_buf_t buf;
    size_t n = build_put(L, c);
    int rv;

    c->busy = 1;
    c->t0 = t0;
    c->rlen = 0;
    buf = uv_buf_init(c->req, (unsigned)n);
    c->wreq.data = c;
    rv = uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write);
    if (rv != 0) {
        note_error(L, "uv_write: %s", uv_strerror(rv));
        conn_close(c);
    }
}

/*
 * Parses one complete response in c->rbuf: 1 complete (*status set), 0 not
 * yet, -1 malformed. Knows Content-Length and chunked bodies; *body, *blen
 * the body (of a Content-Length response; chunked bodies are not joined).
 */
static int parse_response(struct conn *c, int *status, const char **body, size_t *blen)
{
    char *end, *p, *line;
    size_t hlen, clen = 0;
    int have_clen = 0, chunked = 0;

    if (c->rlen >= RBUF_SIZE)
        return -1;
    c->rbuf[c->rlen] = '\0';
    end = strstr(c->rbuf, "\r\n\r\n");
    if (end == NULL)
        return 0;
    hlen = (size_t)(end - c->rbuf) + 4;
    if (sscanf(c->rbuf, "HTTP/1.%*d %d", status) != 1)
        return -1;
    for (line = strstr(c->rbuf, "\r\n"); line != NULL && line < end;
         line = strstr(line + 2, "\r\n")) {
        p = line + 2;
        if (strncasecmp(p, "Content-Length:", 15) == 0) {
            clen = strtoul(p + 15, NULL, 10);
            have_clen = 1;
        } else if (strncasecmp(p, "Transfer-Encoding:", 18) == 0) {
            chunked = strstr(p, "chunked") != NULL && strstr(p, "chunked") < end;
        }
    }
    if (have_clen) {
        if (c->rlen < hlen + clen)
            return 0;
        if (c->rlen != hlen + clen)
            return -1; /* one request in flight: nothing may follow */
        *body = c->rbuf + hlen;
        *blen = clen;
        return 1;
    }
    if (chunked) {
        size_t off = hlen;
        for (;;) {
            char *q;
            unsigned long n = strtoul(c->rbuf + off, &q, 16);
            char *crlf = strstr(c->rbuf + off, "\r\n");

            if (crlf == NULL)
                return 0;
            if (q == c->rbuf + off)
                return -1;
            off = (size_t)(crlf - c->rbuf) + 2 + n + 2;
            if (off > c->rlen)
                return 0;
            if (n == 0) {
                *body = c->rbuf + hlen;
                *blen = c->rlen - hlen;
                return 1;
            }
        }
    }
    return -1;
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;

    (void)suggested;
    /* One byte kept for the terminating NUL of parse_response. */
    *buf = uv_buf_init(c->rbuf + c->rlen, (unsigned)(RBUF_SIZE - 1 - c->rlen));
}

/* The connection is free: take a queued put, or (closed loop) a new one. */
static void conn_next(struct conn *c)
{
    struct load *L = c->L;
    uint64_t now = clock_now_ns();

    if (L->o.rate > 0) {
        if (L->qlen > 0) {
            uint64_t t0 = L->queue[L->qhead];
            L->qhead = (L->qhead + 1) % L->qcap;
            L->qlen--;
            send_put(c, t0);
        }
        return;
    }
    if (now < L->deadline)
        send_put(c, now);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = s->data;
    struct load *L = c->L;
    const char *body = NULL;
    size_t blen = 0;
    int status = 0, rv;

    (void)buf;
    if (nread < 0) {
        if (!c->closing) {
            if (c->busy || nread != UV_EOF)
                note_error(L, "read: %s", uv_strerror((int)nread));
            conn_close(c);
            maybe_finish(L);
        }
        return;
    }
    if (nread == 0)
        return;
    c->rlen += (size_t)nread;
    if (!c->busy) {
        note_error(L, "a response nobody asked for");
        conn_close(c);
        maybe_finish(L);
        return;
    }
    rv = parse_response(c, &status, &body, &blen);
    if (rv == 0)
        return;
    if (rv < 0) {
        note_error(L, "malformed HTTP response");
        conn_close(c);
        maybe_finish(L);
        return;
    }
    c->busy = 0;
    if (status == 200 && body != NULL && memmem(body, blen, "\"header\"", 8) != NULL &&
        memmem(body, blen, "\"error\"", 7) == NULL) {
        uint64_t now = clock_now_ns();
        L->ok++;
        hist_record(L->hist, now > c->t0 ? now - c->t0 : 0);
        L->t_last = now;
    } else {
        note_error(L, "HTTP %d: %.*s", status, (int)(blen > 200 ? 200 : blen),
                   body ? body : "");
    }
    c->rlen = 0;
    conn_next(c);
    maybe_finish(L);
}

/* Starts the clock once every connection is up (or has failed). */
static void maybe_start(struct load *L);

static void on_connect(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    struct load *L = c->L;
    int rv;

    if (status != 0) {
        L->failed_connects++;
        if (L->failed_connects == 1)
            fail("connect (connection %u): %s", c->idx, uv_strerror(status));
        conn_close(c);
        maybe_start(L);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    rv = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
    if (rv != 0) {
        L->failed_connects++;
        conn_close(c);
        maybe_start(L);
        return;
    }
    c->connected = 1;
    L->connected++;
    maybe_start(L);
}

/* ------------------------------------------------------------------------
 * Pacing and the end of the run
 * ------------------------------------------------------------------------ */

static int queue_push(struct load *L, uint64_t t0)
{
    if (L->qlen == L->qcap) {
        size_t ncap = L->qcap ? L->qcap * 2 : 4096, i;
        uint64_t *nq = malloc(ncap * sizeof *nq);

        if (nq == NULL)
            return -1;
        for (i = 0; i < L->qlen; i++)
            nq[i] = L->queue[(L->qhead + i) % L->qcap];
        free(L->queue);
        L->queue = nq;
        L->qcap = ncap;
        L->qhead = 0;
    }
    L->queue[(L->qhead + L->qlen) % L->qcap] = t0;
    L->qlen++;
    if (L->qlen > L->max_queue)
        L->max_queue = L->qlen;
    return 0;
}

static void on_tick(uv_timer_t *t)
{
    struct load *L = t->data;
    uint64_t now = clock_now_ns(), until = now < L->deadline ? now : L->deadline;
    uint64_t target = (uint64_t)((double)(until - L->t_start) * L->o.rate / 1e9);
    unsigned i;

    while (L->due < target) {
        uint64_t t0 = L->t_start + (uint64_t)((double)L->due * 1e9 / L->o.rate);
        L->due++;
        if (queue_push(L, t0) != 0) {
            note_error(L, "out of memory for the queue");
            break;
        }
    }
    for (i = 0; i < L->o.conns && L->qlen > 0; i++) {
        struct conn *c = &L->c[i];
        if (c->connected && !c->busy && !c->closing)
            conn_next(c);
    }
    if (now >= L->deadline) {
        uv_timer_stop(t);
        L->stopping = 1;
    }
    maybe_finish(L);
}

static void on_deadline(uv_timer_t *t)
{
    struct load *L = t->data;

    L->stopping = 1;
    uv_timer_stop(t);
    maybe_finish(L);
}

static void stop_all(struct load *L)
{
    unsigned i;

    if (!uv_is_closing((uv_handle_t *)&L->tick))
        uv_close((uv_handle_t *)&L->tick, on_close);
    for (i = 0; i < L->o.conns; i++)
        if (!L->c[i].closing)
            conn_close(&L->c[i]);
}

/* Ends the run when the duration is over and nothing is in flight. */
static void maybe_finish(struct load *L)
{
    unsigned i;

    /* stopping is set by the timer once the duration is over (and, in open
     * loop, every put due until then has been queued). */
    if (!L->started || !L->stopping)
        return;
    if (L->o.rate > 0 && L->qlen > 0) {
        /* Due puts still wait: send them if any connection is left. */
        for (i = 0; i < L->o.conns; i++)
            if (!L->c[i].closing)
                return;
        note_error(L, "%zu due puts never sent: every connection failed", L->qlen);
        L->qlen = 0;
    }
    for (i = 0; i < L->o.conns; i++)
        if (L->c[i].busy && !L->c[i].closing)
            return;
    stop_all(L);
}

static void maybe_start(struct load *L)
{
    unsigned i;

    if (L->started || L->connected + L->failed_connects < L->o.conns)
        return;
    L->started = 1;
    if (L->connected == 0) {
        stop_all(L);
        return;
    }
    L->t_start = clock_now_ns();
    L->deadline = L->t_start + (uint64_t)(L->o.duration * 1e9);
    L->tick.data = L;
    if (L->o.rate > 0) {
        uv_timer_start(&L->tick, on_tick, TICK_MS, TICK_MS);
        return;
    }
    uv_timer_start(&L->tick, on_deadline, (uint64_t)(L->o.duration * 1e3) + 1, 0);
    for (i = 0; i < L->o.conns; i++)
        if (L->c[i].connected)
            send_put(&L->c[i], clock_now_ns());
}

/* ------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------ */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: etcd-load --endpoints H:P[,H:P...] [options]\n"
            "\n"
            "Puts into etcd through its v3 JSON gateway (POST /v3/kv/put) over\n"
            "keep-alive HTTP/1.1 connections, one put in flight per connection.\n"
            "\n"
            "      --endpoints LIST   etcd client addresses (IPv4 host:port, comma-\n"
            "                         separated); connections are spread over them\n"
            "      --conns N          connections (default 64)\n"
            "      --duration SECONDS how long puts are sent (default 5)\n"
            "      --rate R           open loop: R puts/s in all, each timed from when\n"
            "                         it was due (default: closed loop, as fast as the\n"
            "                         connections go)\n"
            "      --size BYTES       value size (default 100; random bytes)\n"
            "      --keys N           distinct keys written in turn (default 100000)\n"
            "      --prefix P         key prefix (default etcd-load/)\n"
            "      --json             print one JSON object as the last line\n"
            "  -h, --help             this help\n"
            "\n"
            "Latencies are in us. Exit status: 0, or 1 if setup or a put failed.\n");
}

static int parse_num(const char *s, const char *flag, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || !(v >= min) || !(v <= max)) {
        fail("%s: '%s' is not a number in [%g, %g]", flag, s, min, max);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_ENDPOINTS = 256,
    OPT_CONNS,
    OPT_DURATION,
    OPT_RATE,
    OPT_SIZE,
    OPT_KEYS,
    OPT_PREFIX,
    OPT_JSON
};

static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"endpoints", required_argument, NULL, OPT_ENDPOINTS},
        {"conns", required_argument, NULL, OPT_CONNS},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"rate", required_argument, NULL, OPT_RATE},
        {"size", required_argument, NULL, OPT_SIZE},
        {"keys", required_argument, NULL, OPT_KEYS},
        {"prefix", required_argument, NULL, OPT_PREFIX},
        {"json", no_argument, NULL, OPT_JSON},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *tok, *save = NULL;
    double v;
    int c;

    memset(o, 0, sizeof *o);
    o->conns = 64;
    o->duration = 5;
    o->size = 100;
    o->keys = 100000;
    o->prefix = "etcd-load/";
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_ENDPOINTS:
            o->nendpoints = 0;
            for (tok = strtok_r(optarg, ",", &save); tok != NULL;
                 tok = strtok_r(NULL, ",", &save)) {
                if (o->nendpoints == MAX_ENDPOINTS) {
                    fail("--endpoints: at most %d", MAX_ENDPOINTS);
                    return -1;
                }
                o->endpoints[o->nendpoints++] = tok;
            }
            break;
        case OPT_CONNS:
            if (parse_num(optarg, "--conns", 1, 10000, &v) != 0)
                return -1;
            o->conns = (unsigned)v;
            break;
        case OPT_DURATION:
            if (parse_num(optarg, "--duration", 0.1, 3600, &v) != 0)
                return -1;
            o->duration = v;
            break;
        case OPT_RATE:
            if (parse_num(optarg, "--rate", 1, 1e7, &v) != 0)
                return -1;
            o->rate = v;
            break;
        case OPT_SIZE:
            if (parse_num(optarg, "--size", 1, 1024, &v) != 0)
                return -1;
            o->size = (size_t)v;
            break;
        case OPT_KEYS:
            if (parse_num(optarg, "--keys", 1, 1e8, &v) != 0)
                return -1;
            o->keys = (unsigned)v;
            break;
        case OPT_PREFIX:
            if (strlen(optarg) > 32) {
                fail("--prefix: at most 32 bytes");
                return -1;
            }
            o->prefix = optarg;
            break;
        case OPT_JSON:
            o->json = 1;
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
    if (o->nendpoints == 0) {
        fail("--endpoints is required (see --help)");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------ */

static int setup(struct load *L)
{
    unsigned char *raw;
    unsigned i;
    int rv;

    for (i = 0; i < L->o.nendpoints; i++) {
        char host[64];
        const char *colon = strrchr(L->o.endpoints[i], ':');
        size_t hl = colon ? (size_t)(colon - L->o.endpoints[i]) : 0;

        if (colon == NULL || hl == 0 || hl >= sizeof host) {
            fail("endpoint '%s' is not host:port", L->o.endpoints[i]);
            return -1;
        }
        memcpy(host, L->o.endpoints[i], hl);
        host[hl] = '\0';
        rv = uv_ip4_addr(host, atoi(colon + 1), &L->addr[i]);
        if (rv != 0) {
            fail("endpoint '%s': %s", L->o.endpoints[i], uv_strerror(rv));
            return -1;
        }
    }
    raw = malloc(L->o.size);
    L->value_b64 = malloc(L->o.size * 4 / 3 + 8);
    L->c = calloc(L->o.conns, sizeof *L->c);
    L->hist = hist_new();
    if (raw == NULL || L->value_b64 == NULL || L->c == NULL || L->hist == NULL) {
        free(raw);
        fail("out of memory");
        return -1;
    }
    srandom((unsigned)clock_now_ns() ^ (unsigned)getpid());
    for (i = 0; i < L->o.size; i++)
        raw[i] = (unsigned char)random();
    b64_encode(raw, L->o.size, L->value_b64);
    free(raw);
    if (uv_loop_init(&L->loop) != 0 || uv_timer_init(&L->loop, &L->tick) != 0) {
        fail("uv_loop_init failed");
        return -1;
    }
    for (i = 0; i < L->o.conns; i++) {
        struct conn *c = &L->c[i];

        c->L = L;
        c->idx = i;
        uv_tcp_init(&L->loop, &c->tcp);
        c->tcp.data = c;
        c->creq.data = c;
        rv = uv_tcp_connect(&c->creq, &c->tcp,
                            (const struct sockaddr *)&L->addr[i % L->o.nendpoints],
                            on_connect);
        if (rv != 0) {
            fail("connect: %s", uv_strerror(rv));
            L->failed_connects++;
            conn_close(c);
        }
    }
    return 0;
}

static void on_alarm(int sig)
{
    static const char msg[] = "etcd-load: watchdog: the run did not end; giving up\n";

    (void)sig;
    if (write(2, msg, sizeof msg - 1) < 0) {
        /* nothing more to do */
    }
    _exit(1);
}

int main(int argc, char **argv)
{
    static struct load L;
    double secs, rate;
    int rv;

    rv = parse_args(argc, argv, &L.o);
    if (rv != 0)
        return rv > 0 ? 0 : 1;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGALRM, on_alarm);
    alarm((unsigned)L.o.duration + 60 + DRAIN_MS / 1000);
    if (setup(&L) != 0)
        return 1;
    uv_run(&L.loop, UV_RUN_DEFAULT);
    uv_loop_close(&L.loop);
    if (L.connected == 0) {
        fail("no connection could be opened");
        return 1;
    }
    if (L.failed_connects > 0)
        note_error(&L, "%u connections failed to open", L.failed_connects);

    secs = L.t_last > L.t_start ? (double)(L.t_last - L.t_start) / 1e9 : 0;
    rate = secs > 0 ? (double)L.ok / secs : 0;
    printf("etcd-load: endpoints=%u conns=%u size=%zu %s", L.o.nendpoints, L.o.conns,
           L.o.size, L.o.rate > 0 ? "open loop" : "closed loop");
    if (L.o.rate > 0)
        printf(" rate=%.0f/s", L.o.rate);
    printf("\nputs: %" PRIu64 " in %.2f s: %.0f puts/s\n", L.ok, secs, rate);
    printf("latency (us): p50 %.1f  p99 %.1f  p999 %.1f  max %.1f%s\n",
           hist_quantile(L.hist, 0.5) / 1e3, hist_quantile(L.hist, 0.99) / 1e3,
           hist_quantile(L.hist, 0.999) / 1e3, hist_max(L.hist) / 1e3,
           L.o.rate > 0 ? " (from when each put was due)" : "");
    if (L.o.rate > 0)
        printf("queued puts waiting for a connection: at most %" PRIu64 "\n",
               L.max_queue);
    printf("errors: %" PRIu64 "%s%s\n", L.errors, L.errors ? ", first: " : "",
           L.first_error);
    if (L.o.json)
        printf(
            "{\"mode\":\"%s\",\"conns\":%u,\"size\":%zu,\"rate\":%.0f,\"puts\":%" PRIu64
            ",\"seconds\":%.3f,\"puts_per_sec\":%.0f,\"p50_us\":%.1f,\"p99_us\":%.1f,"
            "\"p999_us\":%.1f,\"max_us\":%.1f,\"max_queue\":%" PRIu64
            ",\"errors\":%" PRIu64 "}\n",
            L.o.rate > 0 ? "open" : "closed", L.o.conns, L.o.size, L.o.rate, L.ok, secs,
            rate, hist_quantile(L.hist, 0.5) / 1e3, hist_quantile(L.hist, 0.99) / 1e3,
            hist_quantile(L.hist, 0.999) / 1e3, hist_max(L.hist) / 1e3, L.max_queue,
            L.errors);
    hist_free(L.hist);
    free(L.c);
    free(L.queue);
    free(L.value_b64);
    return L.errors != 0 ? 1 : 0;
}
