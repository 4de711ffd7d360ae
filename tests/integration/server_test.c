/*
 * Robustness of dlogd against bad and hostile clients, over real sockets:
 *
 *   server-test HOST PORT PID
 *
 * Each check misbehaves in one way and then shows that the server still
 * serves a well-behaved client (HELLO + PING + a write + a read):
 *   - malformed frames: garbage, wrong types, bad version, unknown type;
 *   - an oversized frame length;
 *   - a client that sends requests and never reads the replies: the
 *     server's resident memory stays bounded;
 *   - 1,000 concurrent connections, each answered;
 *   - a client killed in the middle of a request.
 * Prints "N passed, M failed" last.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "base/buf.h"
#include "base/clock.h"
#include "base/errmsg.h"
#include "wire/wire.h"

static const char *host;
static int port;
static pid_t server_pid;
static int passed, failed;
static uint64_t next_id = 1;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        if (cond) {                                                                      \
            passed++;                                                                    \
        } else {                                                                         \
            failed++;                                                                    \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                         \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
        }                                                                                \
    } while (0)

static int dial(void)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

static int send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = send(fd, c, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int recv_all(int fd, void *p, size_t n, int timeout_ms)
{
    uint64_t deadline = clock_deadline_ms(timeout_ms);
    char *c = p;
    while (n > 0) {
        struct pollfd pfd = {fd, POLLIN, 0};
        int64_t left = clock_ms_left(deadline);
        if (left == 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        ssize_t k = recv(fd, c, n, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

static int send_msg(int fd, struct wire_msg *m)
{
    char err[DLOG_ERRMSG_SIZE];
    struct bytes out;
    bytes_init(&out);
    m->version = 1;
    if (m->request_id == 0)
        m->request_id = next_id++;
    int rv = wire_encode(m, NULL, &out, err);
    if (rv == 0)
        rv = send_all(fd, out.p, out.len);
    else
        fprintf(stderr, "encode: %s\n", err);
    bytes_free(&out);
    return rv;
}

/* Receive one reply into *m (free with wire_msg_free) and its frame *buf. */
static int recv_msg(int fd, struct wire_msg *m, uint8_t **buf, int timeout_ms)
{
    uint8_t pre[4];
    char err[DLOG_ERRMSG_SIZE];
    memset(m, 0, sizeof *m);
    *buf = NULL;
    if (recv_all(fd, pre, 4, timeout_ms) != 0)
        return -1;
    uint32_t len = get_u32be(pre);
    *buf = malloc((size_t)len + 4);
    if (*buf == NULL)
        return -1;
    memcpy(*buf, pre, 4);
    if (recv_all(fd, *buf + 4, len, timeout_ms) != 0)
        return -1;
    int rv = wire_decode(*buf, (size_t)len + 4, NULL, m, err);
    return rv < 0 ? -1 : rv; /* WIRE_UNKNOWN_TYPE: the envelope is read */
}

/* One request, one reply; returns the reply's status or a large positive
 * number on transport failure. */
static int call(int fd, struct wire_msg *req, struct wire_msg *rep, uint8_t **buf)
{
    if (send_msg(fd, req) != 0)
        return 1000;
    if (recv_msg(fd, rep, buf, 10000) != 0)
        return 1001;
    if (rep->request_id != req->request_id)
        return 1002;
    return rep->status;
}

static int hello(int fd)
{
    struct wire_msg m, r;
    uint8_t *buf;
    memset(&m, 0, sizeof m);
    m.type = WIRE_HELLO;
    m.u.hello.min_version = 1;
    m.u.hello.max_version = 1;
    m.u.hello.client_name = "server-test";
    int rv = call(fd, &m, &r, &buf);
    wire_msg_free(&r);
    free(buf);
    return rv;
}

/* A well-behaved client: hello, ping, write, read back. 0 when all fine. */
static int healthy(void)
{
    static int n;
    char stream[64], payload[64];
    struct wire_msg m, r;
    uint8_t *buf = NULL;
    int fd = dial(), rv = -1;
    if (fd < 0 || hello(fd) != 0)
        goto out;
    snprintf(stream, sizeof stream, "healthy-%ld-%d", (long)getpid(), n++);
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_CREATE;
    m.u.create.stream = stream;
    if (call(fd, &m, &r, &buf) != 0)
        goto out;
    wire_msg_free(&r), free(buf), buf = NULL;
    memset(&m, 0, sizeof m);
    m.type = WIRE_WRITER_OPEN;
    m.u.writer_open.stream = stream;
    if (call(fd, &m, &r, &buf) != 0)
        goto out;
    uint64_t epoch = r.u.writer_open_rep.epoch;
    wire_msg_free(&r), free(buf), buf = NULL;
    snprintf(payload, sizeof payload, "still serving %d", n);
    struct dlog_record rec = {.payload = payload, .len = strlen(payload), .txid = 1};
    memset(&m, 0, sizeof m);
    m.type = WIRE_WRITE;
    m.u.write.stream = stream;
    m.u.write.epoch = epoch;
    m.u.write.recs = &rec;
    m.u.write.nrecs = 1;
    if (call(fd, &m, &r, &buf) != 0)
        goto out;
    wire_msg_free(&r), free(buf), buf = NULL;
    memset(&m, 0, sizeof m);
    m.type = WIRE_READ;
    m.u.read.stream = stream;
    m.u.read.max_records = 10;
    m.u.read.max_bytes = 1 << 20;
    m.u.read.end = DLOG_DLSN_MAX;
    if (call(fd, &m, &r, &buf) != 0)
        goto out;
    if (r.u.read_rep.nrecs == 1 && r.u.read_rep.recs[0].len == strlen(payload) &&
        memcmp(r.u.read_rep.recs[0].payload, payload, strlen(payload)) == 0)
        rv = 0;
out:
    wire_msg_free(&r);
    free(buf);
    if (fd >= 0)
        close(fd);
    return rv;
}

static long server_rss_kb(void)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof path, "/proc/%ld/status", (long)server_pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL)
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    return kb;
}

static int server_alive(void)
{
    return kill(server_pid, 0) == 0;
}

/* ---------------------------------------------------------------- checks */

static void check_malformed(void)
{
    static const uint8_t garbage[] = {0, 0, 0, 5, 0xc1, 0xc1, 0xff, 0x00, 0x12};
    static const uint8_t not_array[] = {0, 0, 0, 1, 0x2a};
    /* [1, 0x10, 7, "not a map or array body"] : a STREAM_CREATE whose body is a string */
    static const uint8_t bad_body[] = {0,    0,    0,    8,   0x94, 0x01,
                                       0x10, 0x07, 0xa3, 'a', 'b',  'c'};
    /* [9, 0x02, 8, [1]] : version 9 */
    static const uint8_t bad_version[] = {0, 0, 0, 6, 0x94, 0x09, 0x02, 0x08, 0x91, 0x01};
    /* [1, 0x3f, 9, []] : unknown type */
    static const uint8_t bad_type[] = {0, 0, 0, 5, 0x94, 0x01, 0x3f, 0x09, 0x90};
    struct wire_msg r;
    uint8_t *buf;

    /* A HELLO with no version in common: DLOG_EPROTO naming the versions
     * the server speaks, then the server closes the connection. */
    int fd = dial();
    struct wire_msg h;
    memset(&h, 0, sizeof h);
    h.type = WIRE_HELLO;
    h.u.hello.min_version = 2;
    h.u.hello.max_version = 9;
    h.u.hello.client_name = "server-test";
    CHECK(fd >= 0 && call(fd, &h, &r, &buf) == DLOG_EPROTO && r.err.min_version == 1 &&
              r.err.max_version == 1,
          "a HELLO with no version in common gets DLOG_EPROTO and the versions spoken");
    wire_msg_free(&r), free(buf);
    char closed;
    CHECK(recv(fd, &closed, 1, 0) <= 0, "and the connection is closed after it");
    close(fd);

    fd = dial();
    CHECK(fd >= 0 && hello(fd) == 0, "connect and hello");
    CHECK(send_all(fd, bad_body, sizeof bad_body) == 0 &&
              recv_msg(fd, &r, &buf, 5000) == 0 && r.request_id == 7 &&
              r.status == DLOG_EPROTO,
          "a malformed body gets DLOG_EPROTO for its request id");
    wire_msg_free(&r), free(buf);
    CHECK(send_all(fd, bad_version, sizeof bad_version) == 0 &&
              recv_msg(fd, &r, &buf, 5000) == 0 && r.request_id == 8 &&
              r.status == DLOG_EPROTO,
          "an unknown version gets DLOG_EPROTO");
    wire_msg_free(&r), free(buf);
    /* The reply's type is the unknown one, so this decoder reads only its
     * envelope; that the server answered request 9 and kept the connection
     * is what counts. */
    CHECK(send_all(fd, bad_type, sizeof bad_type) == 0 &&
              recv_msg(fd, &r, &buf, 5000) == WIRE_UNKNOWN_TYPE && r.request_id == 9 &&
              r.is_reply,
          "an unknown message type gets an error reply");
    wire_msg_free(&r), free(buf);
    /* The connection is still usable after request-level errors. */
    struct wire_msg m;
    memset(&m, 0, sizeof m);
    m.type = WIRE_PING;
    m.u.ping.nonce = 42;
    CHECK(call(fd, &m, &r, &buf) == 0 && r.u.ping.nonce == 42, "ping after errors");
    wire_msg_free(&r), free(buf);
    /* Garbage without a readable request id: an ERROR, then the server closes. */
    CHECK(send_all(fd, garbage, sizeof garbage) == 0 &&
              recv_msg(fd, &r, &buf, 5000) == 0 && r.status == DLOG_EPROTO,
          "garbage gets a connection-level error");
    wire_msg_free(&r), free(buf);
    char c;
    CHECK(recv(fd, &c, 1, 0) <= 0, "and the connection is closed");
    close(fd);

    fd = dial();
    CHECK(fd >= 0 && send_all(fd, not_array, sizeof not_array) == 0 &&
              recv_msg(fd, &r, &buf, 5000) == 0 && r.status == DLOG_EPROTO,
          "a frame that is not an array is refused");
    wire_msg_free(&r), free(buf);
    close(fd);
    CHECK(healthy() == 0 && server_alive(),
          "the server serves others after malformed frames");
}

static void check_oversized(void)
{
    uint8_t pre[4] = {0x7f, 0xff, 0xff, 0xff}; /* 2 GiB announced */
    int fd = dial();
    char c;
    CHECK(fd >= 0 && hello(fd) == 0 && send_all(fd, pre, 4) == 0, "send a huge length");
    struct pollfd pfd = {fd, POLLIN, 0};
    int closed = poll(&pfd, 1, 5000) == 1 && recv(fd, &c, 1, 0) <= 0;
    CHECK(closed, "an oversized frame closes that connection");
    close(fd);
    CHECK(healthy() == 0 && server_alive(),
          "the server serves others after an oversized frame");
}

/* Many READs of a stream with 1 MiB records, and never read the replies. */
static void check_slow_reader(void)
{
    char stream[64];
    snprintf(stream, sizeof stream, "slow-reader-%ld", (long)getpid());
    struct wire_msg m, r;
    uint8_t *buf;
    int fd = dial();
    CHECK(fd >= 0 && hello(fd) == 0, "connect");
    memset(&m, 0, sizeof m);
    m.type = WIRE_STREAM_CREATE;
    m.u.create.stream = stream;
    CHECK(call(fd, &m, &r, &buf) == 0, "create");
    wire_msg_free(&r), free(buf);
    memset(&m, 0, sizeof m);
    m.type = WIRE_WRITER_OPEN;
    m.u.writer_open.stream = stream;
    CHECK(call(fd, &m, &r, &buf) == 0, "open writer");
    uint64_t epoch = r.u.writer_open_rep.epoch;
    wire_msg_free(&r), free(buf);
    size_t big = 1000 * 1000;
    char *payload = malloc(big);
    memset(payload, 'x', big);
    for (int i = 0; i < 8; i++) {
        struct dlog_record rec = {
            .payload = payload, .len = big, .txid = (uint64_t)i + 1};
        memset(&m, 0, sizeof m);
        m.type = WIRE_WRITE;
        m.u.write.stream = stream;
        m.u.write.epoch = epoch;
        m.u.write.recs = &rec;
        m.u.write.nrecs = 1;
        int st = call(fd, &m, &r, &buf);
        wire_msg_free(&r), free(buf);
        if (st != 0) {
            CHECK(0, "write %d: %d", i, st);
            break;
        }
    }
    free(payload);
    long before = server_rss_kb();
    /* 400 reads of 8 MB each = 3.2 GB of replies if the server kept them all. */
    int sent = 0;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    for (int i = 0; i < 400; i++) {
        memset(&m, 0, sizeof m);
        m.type = WIRE_READ;
        m.u.read.stream = stream;
        m.u.read.max_records = 100;
        m.u.read.max_bytes = 64 << 20;
        m.u.read.end = DLOG_DLSN_MAX;
        if (send_msg(fd, &m) != 0)
            break; /* the server stopped reading us: backpressure */
        sent++;
    }
    CHECK(healthy() == 0, "others are served while one client does not read");
    long after = server_rss_kb();
    fprintf(stderr, "  slow reader: %d requests sent, server RSS %ld kB -> %ld kB\n",
            sent, before, after);
    CHECK(after > 0 && after - before < 400 * 1024,
          "server memory stays bounded (grew %ld kB)", after - before);
    close(fd);
    CHECK(healthy() == 0 && server_alive(),
          "the server serves others after the slow client");
}

static void check_many_connections(int n)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    int ok = 0, opened = 0;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < (rlim_t)n + 64) {
        rl.rlim_cur = rl.rlim_max < (rlim_t)n + 64 ? rl.rlim_max : (rlim_t)n + 64;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    for (int i = 0; i < n; i++) {
        fds[i] = dial();
        if (fds[i] >= 0)
            opened++;
    }
    /* Every connection sends HELLO and PING at once (pipelined), then reads. */
    for (int i = 0; i < n; i++) {
        if (fds[i] < 0)
            continue;
        struct wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = WIRE_HELLO;
        m.u.hello.min_version = m.u.hello.max_version = 1;
        m.u.hello.client_name = "many";
        send_msg(fds[i], &m);
        memset(&m, 0, sizeof m);
        m.type = WIRE_PING;
        m.u.ping.nonce = (uint64_t)i;
        send_msg(fds[i], &m);
    }
    for (int i = 0; i < n; i++) {
        struct wire_msg r1, r2;
        uint8_t *b1 = NULL, *b2 = NULL;
        if (fds[i] >= 0 && recv_msg(fds[i], &r1, &b1, 10000) == 0 && r1.status == 0 &&
            recv_msg(fds[i], &r2, &b2, 10000) == 0 && r2.status == 0 &&
            r2.u.ping.nonce == (uint64_t)i)
            ok++;
        if (fds[i] >= 0) {
            wire_msg_free(&r1), wire_msg_free(&r2);
            free(b1), free(b2);
        }
    }
    CHECK(opened == n, "%d of %d connections opened", opened, n);
    CHECK(ok == n, "%d of %d concurrent connections answered", ok, n);
    CHECK(healthy() == 0, "a new client is served while %d are connected", n);
    for (int i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(fds);
    CHECK(healthy() == 0 && server_alive(), "the server serves after they all left");
}

static void check_killed_client(void)
{
    for (int round = 0; round < 5; round++) {
        pid_t pid = fork();
        if (pid == 0) {
            int fd = dial();
            if (fd < 0 || hello(fd) != 0)
                _exit(1);
            /* Half of a WRITE frame, then wait to be killed. */
            uint8_t half[] = {0, 0, 0x10, 0, 0x94, 0x01, 0x21, 0x05, 0x87};
            send_all(fd, half, sizeof half);
            for (;;)
                pause();
        }
        /* Let it connect: wait until the server has a new connection, by
         * polling a healthy request (the kill below is the event). */
        CHECK(healthy() == 0, "serving while a client is mid-request");
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    CHECK(healthy() == 0 && server_alive(),
          "the server serves after clients were killed");
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: server-test HOST PORT SERVER_PID\n");
        return 2;
    }
    host = argv[1];
    port = atoi(argv[2]);
    server_pid = (pid_t)atol(argv[3]);
    signal(SIGPIPE, SIG_IGN);
    int conns = getenv("SERVER_TEST_CONNECTIONS")
                    ? atoi(getenv("SERVER_TEST_CONNECTIONS"))
                    : 1000;

    CHECK(healthy() == 0, "a healthy client is served");
    check_malformed();
    check_oversized();
    check_many_connections(conns);
    check_killed_client();
    check_slow_reader();
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
