/*
 * test-raft-tcp: libraft's TCP transport as the node wraps it
 * (node/raft_tcp.h). One transport connects to another on 127.0.0.1
 * through a real libuv loop; both ends of the connection must have
 * TCP_NODELAY set (libraft's own transport leaves Nagle on), the peer's
 * id and address must come through, and errors and closing must still be
 * libraft's. Exit status 0 when all checks pass, 1 otherwise.
 */
#include <check.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <uv.h>

#include "node/raft_tcp.h"

struct run {
    uv_loop_t loop;
    uv_timer_t deadline;
    struct raft_tcp a, b;
    struct raft_uv_connect req;
    uv_stream_t *accepted, *connected;
    raft_id accepted_id;
    char accepted_addr[64];
    int connect_status, connect_done, closed, timed_out;
};

static int port_of_free(void)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    socklen_t len = sizeof sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;

    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
    port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

static int nodelay_of(uv_stream_t *s)
{
    uv_os_fd_t fd;
    int v = 0;
    socklen_t len = sizeof v;

    ck_assert_int_eq(uv_fileno((uv_handle_t *)s, &fd), 0);
    ck_assert_int_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &v, &len), 0);
    return v != 0;
}

static void on_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    struct run *r = t->data;

    r->accepted = stream;
    r->accepted_id = id;
    snprintf(r->accepted_addr, sizeof r->accepted_addr, "%s", address);
}

static void on_connect(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct run *r = req->data;

    r->connect_done = 1;
    r->connect_status = status;
    r->connected = stream;
}

static void on_deadline(uv_timer_t *t)
{
    struct run *r = t->data;

    r->timed_out = 1;
    uv_stop(&r->loop);
}

static void on_closed(struct raft_uv_transport *t)
{
    struct run *r = t->data;

    r->closed++;
}

static void on_stream_closed(uv_handle_t *h)
{
    free(h);
}

/* Runs the loop until cond holds or 10 s pass. */
#define RUN_UNTIL(r, cond)                                                               \
    do {                                                                                 \
        while (!(cond) && !(r)->timed_out)                                               \
            uv_run(&(r)->loop, UV_RUN_ONCE);                                             \
        ck_assert_msg(!(r)->timed_out, "timed out waiting for " #cond);                  \
    } while (0)

START_TEST(test_both_ends_nodelay)
{
    struct run *r = calloc(1, sizeof *r);
    char addr_a[64], addr_b[64];

    snprintf(addr_a, sizeof addr_a, "127.0.0.1:%d", port_of_free());
    snprintf(addr_b, sizeof addr_b, "127.0.0.1:%d", port_of_free());
    ck_assert_int_eq(uv_loop_init(&r->loop), 0);
    uv_timer_init(&r->loop, &r->deadline);
    r->deadline.data = r;
    uv_timer_start(&r->deadline, on_deadline, 10000, 0);

    ck_assert_int_eq(raft_tcp_init(&r->a, &r->loop), 0);
    ck_assert_int_eq(raft_tcp_init(&r->b, &r->loop), 0);
    r->a.iface.data = r;
    r->b.iface.data = r;
    ck_assert_int_eq(r->a.iface.init(&r->a.iface, 1, addr_a), 0);
    ck_assert_int_eq(r->b.iface.init(&r->b.iface, 2, addr_b), 0);
    ck_assert_int_eq(r->a.iface.listen(&r->a.iface, on_accept), 0);

    r->req.data = r;
    ck_assert_int_eq(r->b.iface.connect(&r->b.iface, &r->req, 1, addr_a, on_connect), 0);
    RUN_UNTIL(r, r->connect_done && r->accepted != NULL);
    ck_assert_int_eq(r->connect_status, 0);
    ck_assert_ptr_nonnull(r->connected);
    /* the handshake came through the wrapper unchanged */
    ck_assert_uint_eq(r->accepted_id, 2);
    ck_assert_str_eq(r->accepted_addr, addr_b);
    /* both ends without Nagle */
    ck_assert(nodelay_of(r->connected));
    ck_assert(nodelay_of(r->accepted));

    uv_close((uv_handle_t *)r->connected, on_stream_closed);
    uv_close((uv_handle_t *)r->accepted, on_stream_closed);
    r->a.iface.close(&r->a.iface, on_closed);
    r->b.iface.close(&r->b.iface, on_closed);
    RUN_UNTIL(r, r->closed == 2);
    raft_tcp_close(&r->a);
    raft_tcp_close(&r->b);
    uv_close((uv_handle_t *)&r->deadline, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&r->loop), 0);
    free(r);
}
END_TEST

START_TEST(test_errors_pass_through)
{
    struct run *r = calloc(1, sizeof *r);
    char addr_a[64];

    snprintf(addr_a, sizeof addr_a, "127.0.0.1:%d", port_of_free());
    ck_assert_int_eq(uv_loop_init(&r->loop), 0);
    uv_timer_init(&r->loop, &r->deadline);
    r->deadline.data = r;
    uv_timer_start(&r->deadline, on_deadline, 10000, 0);
    ck_assert_int_eq(raft_tcp_init(&r->a, &r->loop), 0);
    r->a.iface.data = r;
    ck_assert_int_eq(r->a.iface.init(&r->a.iface, 1, addr_a), 0);

    /* a connection nobody accepts fails through the callback, or at once
     * with libraft's words; either way the wrapper forwards it */
    r->req.data = r;
    int rv = r->a.iface.connect(&r->a.iface, &r->req, 2, "127.0.0.1:1", on_connect);
    if (rv == 0) {
        RUN_UNTIL(r, r->connect_done);
        ck_assert_int_ne(r->connect_status, 0);
    } else {
        ck_assert_str_ne(r->a.iface.errmsg, "");
    }
    r->a.iface.close(&r->a.iface, on_closed);
    RUN_UNTIL(r, r->closed == 1);
    raft_tcp_close(&r->a);
    uv_close((uv_handle_t *)&r->deadline, NULL);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&r->loop), 0);
    free(r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("raft-tcp");
    TCase *tc = tcase_create("transport");
    SRunner *sr;
    int failed;

    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_both_ends_nodelay);
    tcase_add_test(tc, test_errors_pass_through);
    suite_add_tcase(s, tc);
    sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
