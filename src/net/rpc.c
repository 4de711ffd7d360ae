/*
 * The blocking node-call client (rpc.h): sockets, poll() with deadlines,
 * HELLO, redirects and retries.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include "net/rpc.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/errmsg.h"
#include "base/log.h"
#include "net/net.h"

#define MAX_ADDRS      64
#define ADDR_MAX       (WIRE_MAX_ADDRESS + 1)
#define CONNECT_MS     1000 /* one connection attempt, HELLO included */
#define BACKOFF_MIN_MS 20
#define BACKOFF_MAX_MS 500

struct net_rpc {
    pthread_mutex_t mu;
    char (*addrs)[ADDR_MAX];
    int naddrs;
    char *addrlist;
    char client_name[WIRE_MAX_PEER_NAME + 1];
    unsigned timeout_ms;
    /* under mu */
    int fd;              /* -1: not connected */
    char cur[ADDR_MAX];  /* the address fd is connected to */
    int next;            /* the index of the next address to try */
    char hint[ADDR_MAX]; /* a leader named by a redirect; "" if none */
    size_t max_frame;    /* the server's, from HELLO */
    uint64_t next_id;
};

/* ---------------------------------------------------------------- helpers */

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Milliseconds left until deadline (ns, monotonic), at least 0. */
static int left_ms(uint64_t deadline)
{
    uint64_t now = clock_now_ns();

    if (now >= deadline)
        return 0;
    return (int)((deadline - now + NS_PER_MS - 1) / NS_PER_MS);
}

/* Waits for fd to be ready for events; 0, or DLOG_ETIMEDOUT / DLOG_EIO. */
static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        struct pollfd p = {fd, events, 0};
        int ms = left_ms(deadline);
        int rv;

        if (ms == 0)
            return DLOG_ETIMEDOUT;
        rv = poll(&p, 1, ms);
        if (rv > 0)
            return 0;
        if (rv == 0)
            return DLOG_ETIMEDOUT;
        if (errno != EINTR)
            return DLOG_EIO;
    }
}

static int send_all(int fd, const uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rv = wait_fd(fd, POLLOUT, deadline);
            if (rv != 0)
                return rv;
            continue;
        }
        return DLOG_EIO;
    }
    return 0;
}

static int recv_all(int fd, uint8_t *p, size_t len, uint64_t deadline)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, MSG_DONTWAIT);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n == 0)
            return DLOG_EIO; /* closed by the peer */
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rv = wait_fd(fd, POLLIN, deadline);
            if (rv != 0)
                return rv;
            continue;
        }
        return DLOG_EIO;
    }
    return 0;
}

/* Reads one frame into a malloc'd buffer (prefix included). */
static int read_frame(int fd, size_t max_frame, uint64_t deadline, uint8_t **out,
                      size_t *outlen)
{
    uint8_t prefix[WIRE_FRAME_PREFIX];
    uint32_t len;
    uint8_t *buf;
    int rv = recv_all(fd, prefix, sizeof prefix, deadline);

    if (rv != 0)
        return rv;
    len = get_u32be(prefix);
    if (len == 0 || len > max_frame)
        return DLOG_EPROTO;
    buf = malloc((size_t)len + WIRE_FRAME_PREFIX);
    if (buf == NULL)
        return DLOG_ENOMEM;
    memcpy(buf, prefix, sizeof prefix);
    rv = recv_all(fd, buf + WIRE_FRAME_PREFIX, len, deadline);
    if (rv != 0) {
        free(buf);
        return rv;
    }
    *out = buf;
    *outlen = (size_t)len + WIRE_FRAME_PREFIX;
    return 0;
}

static void disconnect(struct net_rpc *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->cur[0] = '\0';
}

/* ---------------------------------------------------------------- connecting */

static int tcp_connect(const char *addr, uint64_t deadline, int *fdp, char *errmsg)
{
    char host[ADDR_MAX], portstr[16];
    struct addrinfo hints, *res = NULL;
    int port, fd = -1, rv, one = 1, err = 0;
    socklen_t elen = sizeof err;

    if (net_parse_hostport(addr, host, sizeof host, &port) != 0)
        return errmsg_fail(errmsg, DLOG_EINVAL, "bad address '%s'", addr);
    snprintf(portstr, sizeof portstr, "%d", port);
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rv = getaddrinfo(host, portstr, &hints, &res);
    if (rv != 0 || res == NULL)
        return errmsg_fail(errmsg, DLOG_EUNAVAILABLE, "cannot resolve %s: %s", host,
                           gai_strerror(rv));
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        freeaddrinfo(res);
        return errmsg_fail(errmsg, DLOG_EIO, "socket: %s", strerror(errno));
    }
    rv = connect(fd, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    if (rv != 0 && errno != EINPROGRESS) {
        errmsg_printf(errmsg, "cannot connect to %s: %s", addr, strerror(errno));
        close(fd);
        return DLOG_EUNAVAILABLE;
    }
    if (rv != 0) {
        rv = wait_fd(fd, POLLOUT, deadline);
        if (rv == 0 && (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 || err))
            rv = DLOG_EUNAVAILABLE;
        if (rv != 0) {
            errmsg_printf(errmsg, "cannot connect to %s: %s", addr,
                          err ? strerror(err) : "timed out");
            close(fd);
            return DLOG_EUNAVAILABLE;
        }
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    *fdp = fd;
    return 0;
}

/* One request and its reply on the connection; rep owns the frame. */
static int exchange(struct net_rpc *r, struct wire_msg *req, uint64_t deadline, int *sent,
                    struct net_rpc_reply *rep, char *errmsg)
{
    struct bytes out;
    int rv;

    *sent = 0;
    req->version = WIRE_VERSION_MAX;
    if (req->type == WIRE_HELLO)
        req->version = 1;
    req->request_id = ++r->next_id;
    req->is_reply = 0;
    bytes_init(&out);
    rv = wire_encode(req, NULL, &out, errmsg);
    if (rv != 0) {
        bytes_free(&out);
        return rv;
    }
    if (out.len - WIRE_FRAME_PREFIX > r->max_frame) {
        bytes_free(&out);
        return errmsg_fail(errmsg, DLOG_ETOOBIG,
                           "%s request of %zu bytes exceeds the server's frame limit",
                           wire_type_name(req->type), out.len);
    }
    rv = send_all(r->fd, out.p, out.len, deadline);
    bytes_free(&out);
    if (rv != 0)
        return errmsg_fail(errmsg, rv == DLOG_ETIMEDOUT ? rv : DLOG_EUNAVAILABLE,
                           "sending to %s: %s", r->cur, dlog_strerror(rv));
    *sent = 1;
    for (;;) {
        rv = read_frame(r->fd, WIRE_MAX_FRAME_DEFAULT, deadline, &rep->frame, &rep->len);
        if (rv != 0)
            return errmsg_fail(errmsg, rv == DLOG_ETIMEDOUT ? rv : DLOG_EUNAVAILABLE,
                               "waiting for %s's reply from %s: %s",
                               wire_type_name(req->type), r->cur, dlog_strerror(rv));
        rv = wire_decode(rep->frame, rep->len, NULL, &rep->msg, errmsg);
        if (rv == 0 && rep->msg.is_reply && rep->msg.request_id == req->request_id)
            return 0;
        if (rv == 0 && rep->msg.type == WIRE_ERROR)
            rv = errmsg_fail(errmsg, DLOG_EPROTO, "connection error from %s: %s", r->cur,
                             rep->msg.err.message);
        net_rpc_reply_free(rep);
        if (rv != 0)
            return rv < 0 ? rv : DLOG_EPROTO;
        /* a reply to an older request (timed out earlier): skip it */
    }
}

static int hello(struct net_rpc *r, uint64_t deadline, char *errmsg)
{
    struct wire_msg m;
    struct net_rpc_reply rep;
    int sent, rv;

    memset(&m, 0, sizeof m);
    memset(&rep, 0, sizeof rep);
    m.type = WIRE_HELLO;
    m.u.hello.min_version = WIRE_VERSION_MIN;
    m.u.hello.max_version = WIRE_VERSION_MAX;
    m.u.hello.client_name = r->client_name;
    r->max_frame = WIRE_MIN_FRAME_LIMIT;
    rv = exchange(r, &m, deadline, &sent, &rep, errmsg);
    if (rv != 0)
        return rv;
    if (rep.msg.type != WIRE_HELLO || rep.msg.status != 0) {
        errmsg_printf(errmsg, "%s refused HELLO: %s", r->cur,
                      rep.msg.err.message ? rep.msg.err.message : "bad reply");
        net_rpc_reply_free(&rep);
        return DLOG_EPROTO;
    }
    r->max_frame = rep.msg.u.hello_rep.max_frame;
    net_rpc_reply_free(&rep);
    return 0;
}

/* Connects to addr (HELLO included) unless already connected to it. */
static int connect_to(struct net_rpc *r, const char *addr, uint64_t deadline,
                      char *errmsg)
{
    uint64_t d = clock_now_ns() + (uint64_t)CONNECT_MS * NS_PER_MS;
    int rv;

    if (r->fd >= 0 && strcmp(r->cur, addr) == 0)
        return 0;
    disconnect(r);
    if (d > deadline)
        d = deadline;
    rv = tcp_connect(addr, d, &r->fd, errmsg);
    if (rv != 0)
        return rv;
    snprintf(r->cur, sizeof r->cur, "%s", addr);
    rv = hello(r, d, errmsg);
    if (rv != 0) {
        disconnect(r);
        return rv == DLOG_EPROTO ? rv : DLOG_EUNAVAILABLE;
    }
    return 0;
}

/* ---------------------------------------------------------------- API */

int net_rpc_open(const char *addrs, const char *client_name, struct net_rpc **out,
                 char *errmsg)
{
    struct net_rpc *r;
    const char *p = addrs;

    *out = NULL;
    if (addrs == NULL || addrs[0] == '\0')
        return errmsg_fail(errmsg, DLOG_EINVAL, "no address");
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return DLOG_ENOMEM;
    r->addrs = calloc(MAX_ADDRS, sizeof *r->addrs);
    r->addrlist = strdup(addrs);
    if (r->addrs == NULL || r->addrlist == NULL) {
        net_rpc_close(r);
        return DLOG_ENOMEM;
    }
    while (*p != '\0') {
        size_t n = strcspn(p, ",");
        char host[ADDR_MAX];
        int port;

        if (n > 0) {
            if (r->naddrs == MAX_ADDRS || n >= ADDR_MAX) {
                net_rpc_close(r);
                return errmsg_fail(errmsg, DLOG_EINVAL, "too many or too long addresses");
            }
            memcpy(r->addrs[r->naddrs], p, n);
            r->addrs[r->naddrs][n] = '\0';
            if (net_parse_hostport(r->addrs[r->naddrs], host, sizeof host, &port) != 0 ||
                port <= 0) {
                errmsg_printf(errmsg, "bad address '%s' (expected host:port)",
                              r->addrs[r->naddrs]);
                net_rpc_close(r);
                return DLOG_EINVAL;
            }
            r->naddrs++;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    if (r->naddrs == 0) {
        net_rpc_close(r);
        return errmsg_fail(errmsg, DLOG_EINVAL, "no address in '%s'", addrs);
    }
    snprintf(r->client_name, sizeof r->client_name, "%s",
             client_name != NULL ? client_name : "dlog-rpc");
    r->timeout_ms = NET_RPC_TIMEOUT_MS;
    r->fd = -1;
    r->next = (int)((uint64_t)clock_now_ns() % (uint64_t)r->naddrs);
    pthread_mutex_init(&r->mu, NULL);
    *out = r;
    return 0;
}

void net_rpc_close(struct net_rpc *r)
{
    if (r == NULL)
        return;
    if (r->addrs != NULL && r->naddrs > 0) {
        disconnect(r);
        pthread_mutex_destroy(&r->mu);
    }
    free(r->addrs);
    free(r->addrlist);
    free(r);
}

void net_rpc_set_timeout(struct net_rpc *r, unsigned ms)
{
    pthread_mutex_lock(&r->mu);
    r->timeout_ms = ms > 0 ? ms : NET_RPC_TIMEOUT_MS;
    pthread_mutex_unlock(&r->mu);
}

const char *net_rpc_addrs(const struct net_rpc *r)
{
    return r->addrlist;
}

void net_rpc_reply_free(struct net_rpc_reply *rep)
{
    wire_msg_free(&rep->msg);
    free(rep->frame);
    memset(rep, 0, sizeof *rep);
}

/* The address to try next: a redirect's, else the next of the list. */
static const char *pick(struct net_rpc *r, char *buf)
{
    if (r->hint[0] != '\0') {
        snprintf(buf, ADDR_MAX, "%s", r->hint);
        r->hint[0] = '\0';
        return buf;
    }
    if (r->fd >= 0) {
        snprintf(buf, ADDR_MAX, "%s", r->cur);
        return buf;
    }
    snprintf(buf, ADDR_MAX, "%s", r->addrs[r->next]);
    r->next = (r->next + 1) % r->naddrs;
    return buf;
}

static int call_locked(struct net_rpc *r, struct wire_msg *req, unsigned flags,
                       struct net_rpc_reply *rep, char *errmsg)
{
    uint64_t deadline = clock_now_ns() + (uint64_t)r->timeout_ms * NS_PER_MS;
    unsigned backoff = BACKOFF_MIN_MS;
    int redirects = 0, rv;
    char addr[ADDR_MAX], last[DLOG_ERRMSG_SIZE] = "no attempt";

    for (;;) {
        int sent = 0, wait = 0;

        if (left_ms(deadline) == 0)
            return errmsg_fail(
                errmsg, DLOG_EUNAVAILABLE, "%s: no answer from %s within %u ms: %s",
                wire_type_name(req->type), r->addrlist, r->timeout_ms, last);
        pick(r, addr);
        rv = connect_to(r, addr, deadline, last);
        if (rv == 0) {
            memset(rep, 0, sizeof *rep);
            rv = exchange(r, req, deadline, &sent, rep, last);
            if (rv == DLOG_EINVAL || rv == DLOG_ETOOBIG || rv == DLOG_ENOMEM) {
                errmsg_copy(errmsg, last);
                return rv;
            }
            if (rv != 0) {
                disconnect(r);
                if (sent && !(flags & NET_RPC_IDEMPOTENT))
                    return errmsg_fail(errmsg, DLOG_ETIMEDOUT, "%s: outcome unknown: %s",
                                       wire_type_name(req->type), last);
                wait = 1;
            } else if (rep->msg.status == DLOG_ENOTLEADER && rep->msg.err.address &&
                       strcmp(rep->msg.err.address, addr) != 0) {
                snprintf(r->hint, sizeof r->hint, "%s", rep->msg.err.address);
                errmsg_printf(last, "%s: redirected to %s", addr, r->hint);
                net_rpc_reply_free(rep);
                if (++redirects > NET_RPC_REDIRECTS) {
                    redirects = 0;
                    wait = 1;
                }
            } else if (rep->msg.status == DLOG_ENOTLEADER ||
                       rep->msg.status == DLOG_EUNAVAILABLE) {
                errmsg_printf(last, "%s: %s", addr,
                              rep->msg.err.message ? rep->msg.err.message
                                                   : dlog_strerror(rep->msg.status));
                net_rpc_reply_free(rep);
                disconnect(r); /* ask another node next */
                wait = 1;
            } else {
                return 0;
            }
        } else if (rv == DLOG_EPROTO) {
            wait = 1;
        } else {
            wait = 1;
        }
        if (wait) {
            int ms = left_ms(deadline);
            sleep_ms(backoff < (unsigned)ms ? backoff : (unsigned)ms);
            backoff = backoff * 2 < BACKOFF_MAX_MS ? backoff * 2 : BACKOFF_MAX_MS;
        }
    }
}

int net_rpc_call(struct net_rpc *r, struct wire_msg *req, unsigned flags,
                 struct net_rpc_reply *rep, char *errmsg)
{
    int rv;

    memset(rep, 0, sizeof *rep);
    pthread_mutex_lock(&r->mu);
    rv = call_locked(r, req, flags, rep, errmsg);
    pthread_mutex_unlock(&r->mu);
    if (rv != 0)
        memset(rep, 0, sizeof *rep);
    return rv;
}
