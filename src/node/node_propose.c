/*
 * Writes to the metadata group: the leader turns a node call into a
 * command (meta_cmd.h), stamped with its own wall clock, proposes it with
 * raft_apply and replies from the apply callback with the FSM's result.
 *
 * Raft (thesis 6.3): a leader that loses its leadership before an entry
 * commits cannot tell whether a later leader will commit it. Such a
 * proposal is answered DLOG_ETIMEDOUT ("outcome unknown"), never
 * DLOG_EUNAVAILABLE, so that clients do not blindly send it again; see
 * meta_raft.c for how they find out.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/meta_cmd.h"
#include "node/node_int.h"

struct proposal {
    struct raft_apply req;
    struct node *n;
    node_done_cb done;
    void *data;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct proposal *p = req->data;

    p->n->inflight--;
    if (status == 0)
        p->done(p->data, 0, result);
    else
        p->done(p->data, node_raft_err(status), NULL);
    free(p);
}

void node_propose(struct node *n, struct bytes *cmd, node_done_cb done, void *data)
{
    struct raft_buffer buf;
    struct proposal *p;
    int rv;

    if (raft_state(&n->raft) != RAFT_LEADER || n->stopping) {
        bytes_free(cmd);
        done(data, DLOG_ENOTLEADER, NULL);
        return;
    }
    p = malloc(sizeof *p);
    rv = p != NULL ? node_frame(cmd, &buf) : DLOG_ENOMEM;
    bytes_free(cmd);
    if (rv != 0) {
        free(p);
        done(data, DLOG_ENOMEM, NULL);
        return;
    }
    p->req.data = p;
    p->n = n;
    p->done = done;
    p->data = data;
    rv = raft_apply(&n->raft, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        done(data, rv == RAFT_NOTLEADER ? DLOG_ENOTLEADER : node_raft_err(rv), NULL);
        return;
    }
    n->inflight++;
}

/* ---------------------------------------------------------------- node calls */

struct wreq {
    struct nconn *c;
    uint32_t type;
    uint64_t request_id;
};

static void write_done(void *data, int status, const struct meta_fsm_result *res)
{
    struct wreq *w = data;
    struct wire_msg rep;

    if (status == DLOG_ENOTLEADER) {
        struct wire_msg m;
        memset(&m, 0, sizeof m);
        m.type = w->type;
        m.request_id = w->request_id;
        node_redirect(w->c, &m);
    } else if (status == DLOG_ETIMEDOUT) {
        node_send_error(w->c, w->type, w->request_id, status,
                        "leadership lost before the write committed: outcome unknown",
                        NULL);
    } else if (status != 0) {
        node_send_error(w->c, w->type, w->request_id, status, NULL, NULL);
    } else if (res->status != 0) {
        node_send_error(w->c, w->type, w->request_id, res->status, res->errmsg, NULL);
    } else {
        node_rep_init(&rep, w->type, w->request_id, 0);
        rep.u.meta_write_rep.version = res->version;
        rep.u.meta_write_rep.id = res->stream_id;
        rep.u.meta_write_rep.revision = res->revision;
        node_send(w->c, &rep);
    }
    nconn_unref(w->c);
    free(w);
}

/* The command of a write node call into out. */
static int encode_write(const struct wire_msg *m, uint64_t now, struct bytes *out,
                        char *errmsg)
{
    struct meta_stream s;
    int rv;

    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
        memset(&s, 0, sizeof s);
        rv = meta_stream_decode(m->u.meta_record.record, m->u.meta_record.len, &s);
        if (rv != 0)
            return errmsg_fail(errmsg, DLOG_EINVAL, "the stream record does not decode");
        rv = m->type == WIRE_META_CREATE ? meta_cmd_stream_create(out, now, &s)
                                         : meta_cmd_stream_update(out, now, &s);
        meta_stream_clear(&s);
        break;
    case WIRE_META_REMOVE:
        rv = meta_cmd_stream_remove(out, now, m->u.meta_key.key, m->u.meta_key.version);
        break;
    case WIRE_META_KV_PUT:
        rv = meta_cmd_kv_put(out, now, m->u.meta_kv_put.key, m->u.meta_kv_put.value,
                             m->u.meta_kv_put.len, m->u.meta_kv_put.version);
        break;
    case WIRE_META_KV_REMOVE:
        rv = meta_cmd_kv_remove(out, now, m->u.meta_key.key, m->u.meta_key.version);
        break;
    default:
        rv = DLOG_EINVAL;
    }
    if (rv != 0)
        errmsg_printf(errmsg, "cannot encode the command: %s", dlog_strerror(rv));
    return rv;
}

void node_handle_write(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    char errmsg[DLOG_ERRMSG_SIZE];
    struct bytes cmd;
    struct wreq *w;
    int rv;

    if (raft_state(&n->raft) != RAFT_LEADER) {
        node_redirect(c, m);
        return;
    }
    bytes_init(&cmd);
    /* The leader's clock, once, in the command (DESIGN.md: time rules). */
    rv = encode_write(m, clock_wall_ms(), &cmd, errmsg);
    w = rv == 0 ? malloc(sizeof *w) : NULL;
    if (w == NULL) {
        bytes_free(&cmd);
        node_send_error(c, m->type, m->request_id, rv != 0 ? rv : DLOG_ENOMEM,
                        rv != 0 ? errmsg : NULL, NULL);
        return;
    }
    w->c = c;
    w->type = m->type;
    w->request_id = m->request_id;
    nconn_ref(c);
    node_propose(n, &cmd, write_done, w);
}

/* ---------------------------------------------------------------- barrier */

struct breq {
    struct raft_barrier req;
    struct nconn *c;
    struct node *n;
    uint64_t request_id;
};

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct breq *b = req->data;
    struct wire_msg rep;

    b->n->inflight--;
    if (status != 0) {
        node_send_error(b->c, WIRE_META_REVISION, b->request_id, DLOG_EUNAVAILABLE,
                        "leadership lost during the barrier", NULL);
    } else {
        node_rep_init(&rep, WIRE_META_REVISION, b->request_id, 0);
        rep.u.meta_revision_rep.revision = meta_fsm_revision(b->n->fsm);
        node_send(b->c, &rep);
    }
    nconn_unref(b->c);
    free(b);
}

void node_handle_barrier(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct breq *b;
    int rv;

    if (raft_state(&n->raft) != RAFT_LEADER) {
        node_redirect(c, m);
        return;
    }
    b = malloc(sizeof *b);
    if (b == NULL) {
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return;
    }
    b->req.data = b;
    b->c = c;
    b->n = n;
    b->request_id = m->request_id;
    rv = raft_barrier(&n->raft, &b->req, barrier_cb);
    if (rv != 0) {
        free(b);
        if (rv == RAFT_NOTLEADER)
            node_redirect(c, m);
        else
            node_send_error(c, m->type, m->request_id, node_raft_err(rv),
                            raft_errmsg(&n->raft), NULL);
        return;
    }
    nconn_ref(c);
    n->inflight++;
}
