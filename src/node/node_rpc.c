/*
 * The node's RPC server: node calls on the listen address, the same frames
 * and HELLO as dlogd's proxy (docs/protocol.md). Reads are answered here
 * from the local FSM; writes go to node_propose.c, membership calls to
 * node_members.c.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/log.h"
#include "node/node_int.h"

static const struct net_conn_cbs conn_cbs;

/* ---------------------------------------------------------------- replies */

void node_rep_init(struct wire_msg *m, uint32_t type, uint64_t request_id, int status)
{
    memset(m, 0, sizeof *m);
    m->version = WIRE_VERSION_MAX;
    m->type = type;
    m->is_reply = 1;
    m->request_id = request_id;
    m->status = status;
}

void node_send(struct nconn *c, const struct wire_msg *rep)
{
    char errmsg[DLOG_ERRMSG_SIZE];
    struct bytes b;
    struct rbuf *buf;
    int rv;

    if (c->nc == NULL || c->nc->closing)
        return;
    if (bytes_init_rbuf(&b, 256) != 0) {
        net_conn_close(c->nc, DLOG_ENOMEM);
        return;
    }
    rv = wire_encode(rep, &c->n->lim, &b, errmsg);
    if (rv != 0) {
        bytes_free(&b);
        log_warn("node", "cannot encode a %s reply: %s", wire_type_name(rep->type),
                 errmsg);
        if (rep->status == 0) /* say so to the client instead */
            node_send_error(c, rep->type, rep->request_id,
                            rv == DLOG_ETOOBIG ? rv : DLOG_EINTERNAL, errmsg, NULL);
        return;
    }
    buf = rbuf_adopt(&b);
    if (buf == NULL) {
        net_conn_close(c->nc, DLOG_ENOMEM);
        return;
    }
    if (net_conn_send(c->nc, buf) != 0)
        log_debug("node", "reply dropped: connection closing");
    rbuf_unref(buf);
}

void node_send_error(struct nconn *c, uint32_t type, uint64_t request_id, int status,
                     const char *message, const char *address)
{
    struct wire_msg rep;

    node_rep_init(&rep, type, request_id, status);
    rep.err.message =
        message != NULL && message[0] != '\0' ? message : dlog_strerror(status);
    rep.err.address = address;
    node_send(c, &rep);
}

/* ---------------------------------------------------------------- connections */

void nconn_ref(struct nconn *c)
{
    c->refs++;
}

void nconn_unref(struct nconn *c)
{
    if (--c->refs == 0)
        free(c);
}

static void unlink_conn(struct nconn *c)
{
    if (!c->linked)
        return;
    c->linked = 0;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else if (c->n->conns == c)
        c->n->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    c->next = c->prev = NULL;
}

static void on_close(struct net_conn *nc, int status)
{
    struct nconn *c = nc->data;

    (void)status;
    if (c == NULL) /* refused at accept */
        return;
    c->nc = NULL;
    unlink_conn(c);
    nconn_unref(c);
}

static void on_accept(struct net_server *s, struct net_conn *nc)
{
    struct node *n = net_server_data(s);
    struct nconn *c = calloc(1, sizeof *c);

    if (c == NULL) {
        nc->cbs = &conn_cbs;
        nc->data = NULL;
        net_conn_close(nc, DLOG_ENOMEM);
        return;
    }
    c->n = n;
    c->nc = nc;
    c->refs = 1;
    c->linked = 1;
    c->next = n->conns;
    if (n->conns != NULL)
        n->conns->prev = c;
    n->conns = c;
    nc->data = c;
    nc->cbs = &conn_cbs;
}

/* ---------------------------------------------------------------- reads */

/* 1 if this replica may answer a read that wants min_revision; otherwise
 * it has redirected the request. */
static int fresh_enough(struct nconn *c, const struct wire_msg *m, uint64_t min_rev)
{
    if (meta_fsm_revision(c->n->fsm) >= min_rev)
        return 1;
    node_redirect(c, m);
    return 0;
}

static void handle_get(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct meta_stream s;
    struct bytes b;
    struct wire_msg rep;
    int rv;

    if (!fresh_enough(c, m, m->u.meta_key.min_revision))
        return;
    memset(&s, 0, sizeof s);
    rv = meta_fsm_get(n->fsm, m->u.meta_key.key, &s);
    if (rv != 0) {
        node_send_error(c, m->type, m->request_id, rv, meta_fsm_errmsg(n->fsm), NULL);
        return;
    }
    bytes_init(&b);
    rv = meta_stream_encode(&s, &b);
    meta_stream_clear(&s);
    if (rv != 0) {
        bytes_free(&b);
        node_send_error(c, m->type, m->request_id, rv, "cannot encode the stream", NULL);
        return;
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.meta_get_rep.record = b.p;
    rep.u.meta_get_rep.len = b.len;
    rep.u.meta_get_rep.revision = meta_fsm_revision(n->fsm);
    node_send(c, &rep);
    bytes_free(&b);
}

static void handle_kv_get(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct bytes v;
    struct wire_msg rep;
    uint64_t version = 0;
    int rv;

    if (!fresh_enough(c, m, m->u.meta_key.min_revision))
        return;
    bytes_init(&v);
    rv = meta_fsm_kv_get(n->fsm, m->u.meta_key.key, &v, &version);
    if (rv != 0) {
        bytes_free(&v);
        node_send_error(c, m->type, m->request_id, rv, meta_fsm_errmsg(n->fsm), NULL);
        return;
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.meta_value_rep.value = v.p;
    rep.u.meta_value_rep.len = v.len;
    rep.u.meta_value_rep.version = version;
    rep.u.meta_value_rep.revision = meta_fsm_revision(n->fsm);
    node_send(c, &rep);
    bytes_free(&v);
}

static void handle_list(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct wire_msg rep;
    char **names = NULL;
    size_t count = 0, first, num;
    int rv;

    if (!fresh_enough(c, m, m->u.meta_list.min_revision))
        return;
    if (m->u.meta_list.prefix[0] != '\0') {
        node_send_error(c, m->type, m->request_id, DLOG_EINVAL,
                        "META_LIST takes no prefix", NULL);
        return;
    }
    rv = meta_fsm_list(n->fsm, &names, &count);
    if (rv != 0) {
        node_send_error(c, m->type, m->request_id, rv, meta_fsm_errmsg(n->fsm), NULL);
        return;
    }
    first = 0;
    while (first < count && m->u.meta_list.start_after[0] != '\0' &&
           strcmp(names[first], m->u.meta_list.start_after) <= 0)
        first++;
    num = count - first < m->u.meta_list.limit ? count - first : m->u.meta_list.limit;
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.meta_list_rep.names = (const char *const *)names + first;
    rep.u.meta_list_rep.count = num;
    rep.u.meta_list_rep.more = first + num < count;
    rep.u.meta_list_rep.revision = meta_fsm_revision(n->fsm);
    node_send(c, &rep);
    dlog_stream_list_free(names);
}

static void handle_kv_list(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct wire_msg rep;
    struct meta_kv *items = NULL;
    struct wire_kv *out = NULL;
    size_t count = 0, first, num;
    int rv;

    if (!fresh_enough(c, m, m->u.meta_list.min_revision))
        return;
    rv = meta_fsm_kv_list(n->fsm, m->u.meta_list.prefix, &items, &count);
    if (rv != 0) {
        node_send_error(c, m->type, m->request_id, rv, meta_fsm_errmsg(n->fsm), NULL);
        return;
    }
    first = 0;
    while (first < count && m->u.meta_list.start_after[0] != '\0' &&
           strcmp(items[first].key, m->u.meta_list.start_after) <= 0)
        first++;
    num = count - first < m->u.meta_list.limit ? count - first : m->u.meta_list.limit;
    out = calloc(num > 0 ? num : 1, sizeof *out);
    if (out == NULL) {
        meta_kv_list_free(items, count);
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return;
    }
    for (size_t i = 0; i < num; i++) {
        const struct meta_kv *kv = &items[first + i];
        out[i] = (struct wire_kv){kv->key, kv->value.p, kv->value.len, kv->version};
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.meta_kv_list_rep.items = out;
    rep.u.meta_kv_list_rep.count = num;
    rep.u.meta_kv_list_rep.more = first + num < count;
    rep.u.meta_kv_list_rep.revision = meta_fsm_revision(n->fsm);
    node_send(c, &rep);
    free(out);
    meta_kv_list_free(items, count);
}

static void handle_revision(struct nconn *c, const struct wire_msg *m)
{
    struct wire_msg rep;

    if (m->u.meta_revision.barrier) {
        node_handle_barrier(c, m);
        return;
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.meta_revision_rep.revision = meta_fsm_revision(c->n->fsm);
    node_send(c, &rep);
}

/* ---------------------------------------------------------------- dispatch */

static void handle_hello(struct nconn *c, const struct wire_msg *m)
{
    struct wire_msg rep;
    int ok = wire_hello_answer(&m->u.hello, m->request_id, c->n->name,
                               c->n->lim.max_frame, &rep);

    node_send(c, &rep);
    if (!ok)
        net_conn_close_when_sent(c->nc);
    c->hello = ok;
}

static void handle(struct nconn *c, const struct wire_msg *m)
{
    if (m->is_reply) {
        node_send_error(c, WIRE_ERROR, 0, DLOG_EPROTO, "a client sent a reply", NULL);
        net_conn_close_when_sent(c->nc);
        return;
    }
    if (m->type == WIRE_HELLO) {
        handle_hello(c, m);
        return;
    }
    if (!c->hello) {
        node_send_error(c, m->type, m->request_id, DLOG_EPROTO, "HELLO must come first",
                        NULL);
        return;
    }
    switch (m->type) {
    case WIRE_PING: {
        struct wire_msg rep;
        node_rep_init(&rep, m->type, m->request_id, 0);
        rep.u.ping.nonce = m->u.ping.nonce;
        node_send(c, &rep);
        break;
    }
    case WIRE_META_GET:
        handle_get(c, m);
        break;
    case WIRE_META_KV_GET:
        handle_kv_get(c, m);
        break;
    case WIRE_META_LIST:
        handle_list(c, m);
        break;
    case WIRE_META_KV_LIST:
        handle_kv_list(c, m);
        break;
    case WIRE_META_REVISION:
        handle_revision(c, m);
        break;
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_PUT:
    case WIRE_META_KV_REMOVE:
        node_handle_write(c, m);
        break;
    case WIRE_NODE_JOIN:
        node_handle_join(c, m);
        break;
    case WIRE_NODE_REMOVE:
        node_handle_remove(c, m);
        break;
    case WIRE_CLUSTER_STATUS:
        node_handle_status(c, m);
        break;
    case WIRE_CLUSTER_GROUPS:
        node_handle_groups(c, m);
        break;
    default:
        if (WIRE_IS_DATA_NODE(m->type)) {
            node_data_handle(c, m);
            break;
        }
        node_send_error(c, m->type, m->request_id, DLOG_ENOTSUP,
                        "a node serves node calls only (use a proxy for streams)", NULL);
    }
}

static void on_frame(struct net_conn *nc, const uint8_t *frame, size_t len)
{
    struct nconn *c = nc->data;
    struct wire_msg m;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    int rv;

    if (c == NULL || !c->linked)
        return;
    rv = wire_decode_body(frame, len, &c->n->lim, &m, errmsg);
    if (rv == WIRE_BAD_VERSION) {
        struct wire_msg rep;
        node_rep_init(&rep, m.type, m.request_id, DLOG_EPROTO);
        rep.err.message = "unsupported protocol version";
        rep.err.min_version = WIRE_VERSION_MIN;
        rep.err.max_version = WIRE_VERSION_MAX;
        node_send(c, &rep);
    } else if (rv == WIRE_UNKNOWN_TYPE) {
        node_send_error(c, m.type, m.request_id, DLOG_EPROTO, "unknown message type",
                        NULL);
    } else if (rv < 0) {
        log_debug("node", "%s: bad frame: %s", nc->peer, errmsg);
        if (m.request_id != 0) {
            node_send_error(c, m.type, m.request_id, rv == DLOG_ENOMEM ? rv : DLOG_EPROTO,
                            errmsg, NULL);
        } else {
            node_send_error(c, WIRE_ERROR, 0, DLOG_EPROTO, errmsg, NULL);
            net_conn_close_when_sent(nc);
        }
    } else if (c->n->stopping) {
        node_send_error(c, m.type, m.request_id, DLOG_EUNAVAILABLE,
                        "the node is stopping", NULL);
    } else {
        handle(c, &m);
    }
    wire_msg_free(&m);
}

static const struct net_conn_cbs conn_cbs = {on_frame, on_close, NULL};

/* ---------------------------------------------------------------- server */

int node_rpc_start(struct node *n, const char *host, int port, char *errmsg)
{
    int rv = net_server_start(n->loop, host[0] ? host : "127.0.0.1", port,
                              n->lim.max_frame, on_accept, n, &n->server, errmsg);

    if (rv != 0)
        return rv;
    n->port = net_server_port(n->server);
    return 0;
}

void node_rpc_stop(struct node *n)
{
    if (n->server != NULL)
        net_server_stop(n->server);
    n->server = NULL;
    while (n->conns != NULL) {
        struct nconn *c = n->conns;
        unlink_conn(c);
        if (c->nc != NULL)
            net_conn_close_when_sent(c->nc);
    }
}
