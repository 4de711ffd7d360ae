/*
 * The data groups' node calls (wire_msgs.h, "data node calls";
 * docs/protocol.md): writes proposed on the group's leader and answered
 * from the apply callback with the FSM's result; reads served by any
 * replica up to its applied index; SEG_WAIT long-polls answered when a
 * group applies past what the caller has seen.
 *
 * Raft (thesis 6.3), as for metadata writes: a leader that loses its
 * leadership before an entry commits cannot tell whether a later leader
 * commits it, so such a write is answered DLOG_ETIMEDOUT ("outcome
 * unknown"), never an error that invites sending it again.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/data_cmd.h"
#include "node/node_int.h"

#define FRAME_HEAD     8
#define READ_MAX_BYTES (8u << 20) /* per SEG_READ reply */

static void info_to_wire(const struct seg_info *i, struct wire_seg_info *w)
{
    w->fence_epoch = i->fence_epoch;
    w->sealed = i->sealed ? 1 : 0;
    w->next_entry = i->next_entry;
    w->records = i->records;
    w->bytes = i->bytes;
    w->first_txid = i->first_txid;
    w->last_txid = i->last_txid;
    w->created_ms = i->created_ms;
    w->last_rec_entry = i->last_rec_entry;
    w->last_rec_slot = i->last_rec_slot;
}

/* Redirects a call on group dg to its leader, or answers DLOG_EUNAVAILABLE. */
static void redirect(struct nconn *c, const struct wire_msg *m, struct dgroup *dg)
{
    struct node *n = c->n;
    char addr[NODE_ADDR_MAX], msg[DLOG_ERRMSG_SIZE];
    raft_id leader = 0;
    const char *raft_addr = NULL;

    raft_leader(&dg->raft, &leader, &raft_addr);
    if (leader == 0 || leader == n->id) {
        errmsg_printf(msg, "data group %u: %s", dg->g,
                      leader == 0 ? "no leader is known: an election may be running"
                                  : "this replica is not ready yet");
        node_send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE, msg, NULL);
        return;
    }
    if (node_listen_of(n, leader, addr, sizeof addr) != 0) {
        errmsg_printf(msg,
                      "data group %u: node %llu leads, its address is not known here",
                      dg->g, (unsigned long long)leader);
        node_send_error(c, m->type, m->request_id, DLOG_EUNAVAILABLE, msg, NULL);
        return;
    }
    errmsg_printf(msg, "node %llu leads data group %u", (unsigned long long)leader,
                  dg->g);
    node_send_error(c, m->type, m->request_id, DLOG_ENOTLEADER, msg, addr);
}

/* ---------------------------------------------------------------- writes */

struct dprop {
    struct raft_apply req;
    struct dgroup *dg;
    struct nconn *c;
    uint32_t type;
    uint64_t request_id;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct dprop *p = req->data;
    const struct data_fsm_result *res = result;
    struct wire_msg rep;

    p->dg->inflight--;
    if (status != 0) {
        int rv = node_raft_err(status);
        node_send_error(
            p->c, p->type, p->request_id, rv,
            rv == DLOG_ETIMEDOUT
                ? "leadership lost before the write committed: outcome unknown"
                : raft_strerror(status),
            NULL);
    } else if (res == NULL) {
        node_send_error(p->c, p->type, p->request_id, DLOG_EINTERNAL, "no FSM result",
                        NULL);
    } else if (res->status != 0) {
        node_send_error(p->c, p->type, p->request_id, res->status, res->errmsg, NULL);
    } else {
        node_rep_init(&rep, p->type, p->request_id, 0);
        rep.u.seg_rep.applied = res->index;
        rep.u.seg_rep.first_entry = res->first_entry;
        rep.u.seg_rep.first_txid = res->first_txid;
        if (p->type != WIRE_SEG_REMOVE)
            info_to_wire(&res->info, &rep.u.seg_rep.info);
        node_send(p->c, &rep);
    }
    nconn_unref(p->c);
    free(p);
}

static void handle_write(struct nconn *c, const struct wire_msg *m, struct dgroup *dg)
{
    const struct wire_seg_req *r = &m->u.seg;
    struct data_cmd cmd;
    struct raft_buffer buf;
    struct dprop *p;
    size_t size;
    int rv;

    if (raft_state(&dg->raft) != RAFT_LEADER) {
        redirect(c, m, dg);
        return;
    }
    memset(&cmd, 0, sizeof cmd);
    cmd.stream = r->stream;
    cmd.seq = r->seq;
    cmd.epoch = r->epoch;
    switch (m->type) {
    case WIRE_SEG_OPEN:
        cmd.op = DATA_CMD_OPEN;
        cmd.start_txid = r->start_txid;
        cmd.created_ms = clock_wall_ms(); /* the leader's clock, in the command */
        break;
    case WIRE_SEG_APPEND:
        cmd.op = r->writer != 0 ? DATA_CMD_APPEND_ONCE : DATA_CMD_APPEND;
        cmd.writer = r->writer;
        cmd.append_seq = r->append_seq;
        cmd.flags = r->flags;
        cmd.n = (uint32_t)r->n;
        cmd.entries = r->entries;
        break;
    case WIRE_SEG_FENCE:
        cmd.op = DATA_CMD_FENCE;
        break;
    case WIRE_SEG_SEAL:
        cmd.op = DATA_CMD_SEAL;
        break;
    default:
        cmd.op = DATA_CMD_REMOVE;
        break;
    }
    size = data_cmd_size(&cmd);
    if (size == 0) {
        node_send_error(c, m->type, m->request_id, DLOG_EINVAL,
                        "cannot encode the command", NULL);
        return;
    }
    /* Framed as node.c's node_frame: length, command, zeros to a multiple of 8. */
    buf.len = FRAME_HEAD + ((size + 7) & ~(size_t)7);
    buf.base = raft_malloc(buf.len);
    p = malloc(sizeof *p);
    if (buf.base == NULL || p == NULL) {
        raft_free(buf.base);
        free(p);
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return;
    }
    put_u64be(buf.base, size);
    data_cmd_write(&cmd, (uint8_t *)buf.base + FRAME_HEAD);
    /* Only the padding needs zeros (the command fills the rest). */
    memset((uint8_t *)buf.base + FRAME_HEAD + size, 0, buf.len - FRAME_HEAD - size);
    p->req.data = p;
    p->dg = dg;
    p->c = c;
    p->type = m->type;
    p->request_id = m->request_id;
    rv = raft_apply(&dg->raft, &p->req, &buf, 1, apply_cb);
    if (rv != 0) {
        raft_free(buf.base);
        free(p);
        if (rv == RAFT_NOTLEADER)
            redirect(c, m, dg);
        else
            node_send_error(c, m->type, m->request_id, node_raft_err(rv),
                            raft_errmsg(&dg->raft), NULL);
        return;
    }
    nconn_ref(c);
    dg->inflight++;
}

/* ---------------------------------------------------------------- reads */

/*
 * A read held until this replica's LMDB has what it must see. With
 * write-behind (data_fsm_wb.c) a command is applied, and its writer
 * answered, a commit before LMDB holds it; a read right after it (wanting
 * that index) waits here rather than being sent elsewhere.
 */
struct dpark {
    struct nconn *c;
    struct wire_msg m; /* SEG_READ or SEG_INFO: scalars only, copied */
    uint64_t deadline_ns;
    struct dpark *next;
};

#define PARK_MS 5000 /* then answered as before: redirected, or EUNAVAILABLE */

static int park(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct dpark *p = malloc(sizeof *p);

    if (p == NULL)
        return 0;
    p->c = c;
    p->m = *m;
    p->deadline_ns = clock_now_ns() + (uint64_t)PARK_MS * NS_PER_MS;
    nconn_ref(c);
    p->next = n->parks;
    n->parks = p;
    return 1;
}

/* 1 if this replica may answer a read wanting min_applied; otherwise it
 * has held the request (may_park: the index is applied here, LMDB is a
 * commit behind) or redirected it. */
static int fresh_enough(struct nconn *c, const struct wire_msg *m, struct dgroup *dg,
                        int may_park)
{
    int behind = data_fsm_behind(dg->fsm);

    if (!behind && dg->applied >= m->u.seg.min_applied)
        return 1;
    if (may_park && !behind && raft_last_applied(&dg->raft) >= m->u.seg.min_applied &&
        park(c, m))
        return 0;
    redirect(c, m, dg);
    return 0;
}

struct collect {
    struct bytes data;
    struct wire_seg_entry *ents;
    size_t n, cap;
    int err;
};

static int visit(void *arg, uint64_t id, const void *p, size_t len)
{
    struct collect *col = arg;

    if (col->n == col->cap) {
        size_t cap = col->cap ? col->cap * 2 : 64;
        struct wire_seg_entry *e = realloc(col->ents, cap * sizeof *e);
        if (e == NULL) {
            col->err = DLOG_ENOMEM;
            return 1;
        }
        col->ents = e;
        col->cap = cap;
    }
    /* offsets for now: data may move while it grows */
    col->ents[col->n] =
        (struct wire_seg_entry){id, (const void *)(uintptr_t)col->data.len, len};
    if (bytes_append(&col->data, p, len) != 0) {
        col->err = DLOG_ENOMEM;
        return 1;
    }
    col->n++;
    return col->n >= WIRE_MAX_RECORDS;
}

static void handle_read(struct nconn *c, const struct wire_msg *m, struct dgroup *dg,
                        int may_park)
{
    const struct wire_seg_req *r = &m->u.seg;
    struct collect col;
    struct wire_msg rep;
    uint64_t applied = dg->applied;
    int rv;

    if (!fresh_enough(c, m, dg, may_park))
        return;
    memset(&col, 0, sizeof col);
    bytes_init(&col.data);
    rv = data_fsm_read(dg->fsm, r->stream, r->seq, r->from,
                       r->max_bytes < READ_MAX_BYTES ? r->max_bytes : READ_MAX_BYTES,
                       visit, &col);
    if (rv >= 0 && col.err != 0)
        rv = col.err;
    if (rv < 0) {
        node_send_error(c, m->type, m->request_id, rv,
                        rv == DLOG_ENOMEM ? NULL : data_fsm_errmsg(dg->fsm), NULL);
    } else {
        for (size_t i = 0; i < col.n; i++)
            col.ents[i].p = col.data.p + (uintptr_t)col.ents[i].p;
        node_rep_init(&rep, m->type, m->request_id, 0);
        rep.u.seg_read_rep = (struct wire_seg_read_rep){applied, col.ents, col.n};
        node_send(c, &rep);
    }
    free(col.ents);
    bytes_free(&col.data);
}

static void handle_info(struct nconn *c, const struct wire_msg *m, struct dgroup *dg,
                        int may_park)
{
    struct seg_info info;
    struct wire_msg rep;
    uint64_t applied = dg->applied;
    int rv;

    if (!fresh_enough(c, m, dg, may_park))
        return;
    rv = data_fsm_info(dg->fsm, m->u.seg.stream, m->u.seg.seq, &info);
    if (rv != 0) {
        node_send_error(c, m->type, m->request_id, rv, data_fsm_errmsg(dg->fsm), NULL);
        return;
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    rep.u.seg_rep.applied = applied;
    info_to_wire(&info, &rep.u.seg_rep.info);
    node_send(c, &rep);
}

/* ---------------------------------------------------------------- waits */

static int wait_ready(struct node *n, const struct dwait *w)
{
    for (size_t g = 0; g < w->n && g < n->ngroups; g++)
        if (n->groups[g].applied > w->applied[g])
            return 1;
    return 0;
}

static void wait_answer(struct node *n, struct dwait *w)
{
    struct wire_msg rep;
    uint64_t applied[WIRE_MAX_GROUPS];

    for (unsigned g = 0; g < n->ngroups; g++)
        applied[g] = n->groups[g].applied;
    node_rep_init(&rep, WIRE_SEG_WAIT, w->request_id, 0);
    rep.u.seg_wait_rep = (struct wire_seg_wait_rep){applied, n->ngroups};
    node_send(w->c, &rep);
    nconn_unref(w->c);
    free(w->applied);
    free(w);
}

void node_data_wake(struct node *n)
{
    uint64_t now = clock_now_ns();

    /* Held reads whose index LMDB now has, or whose time is up: answered
     * again, without holding them a second time. */
    for (struct dpark **pp = &n->parks; *pp != NULL;) {
        struct dpark *p = *pp;
        struct dgroup *dg = &n->groups[p->m.u.seg.group];
        if (p->c->nc != NULL && !n->stopping && dg->applied < p->m.u.seg.min_applied &&
            now < p->deadline_ns) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        if (p->c->nc != NULL) {
            if (p->m.type == WIRE_SEG_READ)
                handle_read(p->c, &p->m, dg, 0);
            else
                handle_info(p->c, &p->m, dg, 0);
        }
        nconn_unref(p->c);
        free(p);
    }

    for (struct dwait **pp = &n->waits; *pp != NULL;) {
        struct dwait *w = *pp;
        if (n->stopping || w->c->nc == NULL || wait_ready(n, w) ||
            now >= w->deadline_ns) {
            *pp = w->next;
            wait_answer(n, w);
        } else {
            pp = &w->next;
        }
    }
}

static void handle_wait(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct dwait *w = calloc(1, sizeof *w);

    if (w != NULL)
        w->applied = malloc(m->u.seg_wait.n * sizeof *w->applied);
    if (w == NULL || w->applied == NULL) {
        free(w);
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
        return;
    }
    memcpy(w->applied, m->u.seg_wait.applied, m->u.seg_wait.n * sizeof *w->applied);
    w->n = m->u.seg_wait.n;
    w->c = c;
    w->request_id = m->request_id;
    w->deadline_ns = clock_now_ns() + (uint64_t)m->u.seg_wait.timeout_ms * NS_PER_MS;
    nconn_ref(c);
    if (wait_ready(n, w) || m->u.seg_wait.timeout_ms == 0) {
        wait_answer(n, w);
        return;
    }
    w->next = n->waits;
    n->waits = w;
}

/* ---------------------------------------------------------------- dispatch */

void node_data_handle(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct dgroup *dg;
    char msg[DLOG_ERRMSG_SIZE];

    if (m->type == WIRE_SEG_WAIT) {
        handle_wait(c, m);
        return;
    }
    if (m->type == WIRE_SEG_DUMP) {
        node_xfer_handle(c, m); /* node_xfer.c */
        return;
    }
    if (m->u.seg.group >= n->ngroups) {
        errmsg_printf(msg, "no data group %u here (this node hosts %u)",
                      (unsigned)m->u.seg.group, n->ngroups);
        node_send_error(c, m->type, m->request_id, DLOG_EINVAL, msg, NULL);
        return;
    }
    dg = &n->groups[m->u.seg.group];
    switch (m->type) {
    case WIRE_SEG_READ:
        handle_read(c, m, dg, 1);
        break;
    case WIRE_SEG_INFO:
        handle_info(c, m, dg, 1);
        break;
    default:
        handle_write(c, m, dg);
        break;
    }
}
