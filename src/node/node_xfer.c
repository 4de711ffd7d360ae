/*
 * State transfer between the replicas of a data group (docs/cluster.md,
 * "Catching up"; node/data_fsm.h, "state transfer"; docs/protocol.md,
 * "SEG_DUMP"). A replica that restored a Raft snapshot ahead of its LMDB
 * must load the contents the snapshot stands for from a peer.
 *
 * Serving (on the loop): SEG_DUMP opens a session -- a data_fsm_dumper,
 * one LMDB read transaction pinned for the whole transfer, so every chunk
 * comes from the same applied index while applies go on -- and answers
 * chunks of at most max_bytes after the position the caller names. The
 * position travels in every request, so a request sent again after a lost
 * reply gets the same answer. A session ends with its last chunk, or when
 * idle for SESS_IDLE_MS; at most SESS_MAX are open (a pinned transaction
 * keeps LMDB from reusing pages).
 *
 * Fetching (the FSM's cfg.fetch, on the loop; the transfer on a thread of
 * its own): fetch starts a thread and answers DLOG_EUNAVAILABLE ("not yet",
 * which keeps a libraft follower in service) until the load commits; the
 * FSM then sees its state reached and is caught up without calling fetch
 * again. The thread asks the group's leader first, then the other
 * replicas, each through the blocking client (net/rpc.h): the first reply
 * names a session and the state it stands for, each chunk is written into
 * LMDB as it arrives (data_fsm_load_*: committed per chunk, so memory stays
 * at about two chunks whatever the size of the contents). A peer that is
 * behind, unreachable or loses the session is dropped for the next one; a
 * failed round is tried again after a backoff. A crash mid-way leaves the
 * FSM's marker, and the next start fetches again from scratch.
 *
 * Threads: the transfer thread touches only its struct dxfer, the FSM's
 * load functions (allowed while the FSM is behind) and the node's
 * stop_flag; the loop reads its results once `finished` is set, and joins
 * it there (node_xfer_reap) or when the node closes.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "base/log.h"
#include "net/rpc.h"
#include "node/node_int.h"

#define SESS_MAX     8
#define SESS_IDLE_MS 30000
#define CHUNK_BYTES  (4u << 20) /* max_bytes asked for per SEG_DUMP */
#define CALL_MS      5000       /* per SEG_DUMP (node_stop waits for the thread) */
#define RETRY_MS     1000       /* before a new round after a failed one */
#define RESTARTS     2          /* sessions lost on one peer before moving on */

/* ---------------------------------------------------------------- serving */

struct dsess {
    uint64_t id;
    unsigned g;
    struct data_fsm_dumper *d;
    struct data_fsm_state st;
    uint64_t used_ns;
    struct dsess *next;
};

static void sess_free(struct dsess *s)
{
    data_fsm_dumper_close(s->d);
    free(s);
}

static void sess_drop(struct node *n, struct dsess *s)
{
    for (struct dsess **pp = &n->sessions; *pp != NULL; pp = &(*pp)->next)
        if (*pp == s) {
            *pp = s->next;
            n->nsessions--;
            sess_free(s);
            return;
        }
}

static struct dsess *sess_find(struct node *n, uint64_t id)
{
    for (struct dsess *s = n->sessions; s != NULL; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

/* The items of one reply, pointing into the session's pinned pages. */
struct chunk {
    struct wire_dump_seg *segs;
    size_t nsegs, segs_cap;
    struct wire_dump_entry *ents;
    size_t nents, ents_cap;
    int err;
};

#define CHUNK_FULL 2 /* the visitor's "no room": not a DLOG_E* code, not 1 */

static int grow(void **p, size_t *cap, size_t size)
{
    size_t c = *cap ? *cap * 2 : 256;
    void *q;

    if (c > WIRE_MAX_DUMP_ITEMS)
        c = WIRE_MAX_DUMP_ITEMS;
    q = realloc(*p, c * size);
    if (q == NULL)
        return DLOG_ENOMEM;
    *p = q;
    *cap = c;
    return 0;
}

static int chunk_visit(void *arg, const struct data_fsm_item *it)
{
    struct chunk *ch = arg;

    if (it->kind == DATA_FSM_ITEM_SEG) {
        if (ch->nsegs == WIRE_MAX_DUMP_ITEMS)
            return CHUNK_FULL;
        if (ch->nsegs == ch->segs_cap &&
            (ch->err = grow((void **)&ch->segs, &ch->segs_cap, sizeof *ch->segs)) != 0)
            return ch->err;
        struct wire_dump_seg *s = &ch->segs[ch->nsegs++];
        const struct seg_info *i = &it->info;
        s->stream = it->stream;
        s->seq = it->seq;
        s->info = (struct wire_seg_info){
            i->fence_epoch,    i->sealed ? 1 : 0, i->next_entry, i->records,
            i->bytes,          i->first_txid,     i->last_txid,  i->created_ms,
            i->last_rec_entry, i->last_rec_slot};
        s->nonce = 0;
        for (int k = 0; k < DATA_FSM_ONCE_SLOTS && it->once[k].writer != 0; k++) {
            const struct data_fsm_once *o = &it->once[k];
            s->once[k][0] = o->writer;
            s->once[k][1] = o->append_seq;
            s->once[k][2] = o->first_entry;
            s->once[k][3] = o->first_txid;
            s->nonce++;
        }
        return 0;
    }
    if (ch->nents == WIRE_MAX_DUMP_ITEMS)
        return CHUNK_FULL;
    if (ch->nents == ch->ents_cap &&
        (ch->err = grow((void **)&ch->ents, &ch->ents_cap, sizeof *ch->ents)) != 0)
        return ch->err;
    ch->ents[ch->nents++] =
        (struct wire_dump_entry){it->stream, it->seq, it->entry, it->p, it->len};
    return 0;
}

static void reply_state(struct wire_msg *rep, const struct data_fsm_state *st)
{
    rep->u.seg_dump_rep.applied = st->applied;
    rep->u.seg_dump_rep.hash = st->hash;
    rep->u.seg_dump_rep.segments = st->segments;
    rep->u.seg_dump_rep.entries = st->entries;
    rep->u.seg_dump_rep.bytes = st->bytes;
}

void node_xfer_handle(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    const struct wire_seg_dump *q = &m->u.seg_dump;
    struct data_fsm_pos pos = {(int)q->kind, q->stream, q->seq, q->entry};
    struct data_fsm_state st;
    struct chunk ch;
    struct wire_msg rep;
    struct dsess *s;
    struct dgroup *dg;
    char msg[DLOG_ERRMSG_SIZE];
    int rv;

    if (q->group >= n->ngroups) {
        errmsg_printf(msg, "no data group %u here (this node hosts %u)",
                      (unsigned)q->group, n->ngroups);
        node_send_error(c, m->type, m->request_id, DLOG_EINVAL, msg, NULL);
        return;
    }
    dg = &n->groups[q->group];
    if (data_fsm_behind(dg->fsm)) {
        errmsg_printf(msg, "data group %u: this replica is itself catching up", dg->g);
        node_send_error(c, m->type, m->request_id, DLOG_EBUSY, msg, NULL);
        return;
    }
    node_rep_init(&rep, m->type, m->request_id, 0);
    if (q->max_bytes == 0) { /* the state only */
        rv = data_fsm_state(dg->fsm, &st);
        if (rv != 0) {
            node_send_error(c, m->type, m->request_id, rv, data_fsm_errmsg(dg->fsm),
                            NULL);
            return;
        }
        reply_state(&rep, &st);
        rep.u.seg_dump_rep.done = 1;
        node_send(c, &rep);
        return;
    }
    if (q->session == 0) {
        if (n->nsessions >= SESS_MAX) {
            errmsg_printf(msg, "already %d transfers: try another replica", SESS_MAX);
            node_send_error(c, m->type, m->request_id, DLOG_EBUSY, msg, NULL);
            return;
        }
        s = calloc(1, sizeof *s);
        if (s == NULL) {
            node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
            return;
        }
        rv = data_fsm_dumper_open(dg->fsm, &s->st, &s->d);
        if (rv == 0 && s->st.applied < q->min_applied) {
            errmsg_printf(msg, "data group %u: applied %llu here, %llu wanted", dg->g,
                          (unsigned long long)s->st.applied,
                          (unsigned long long)q->min_applied);
            rv = DLOG_EBUSY;
        } else if (rv != 0) {
            errmsg_copy(msg, data_fsm_errmsg(dg->fsm));
        }
        if (rv != 0) {
            sess_free(s);
            node_send_error(c, m->type, m->request_id, rv, msg, NULL);
            return;
        }
        s->id = ++n->last_session;
        s->g = dg->g;
        s->next = n->sessions;
        n->sessions = s;
        n->nsessions++;
        log_info("node",
                 "data group %u: transfer session %llu at index %llu (%llu bytes)", dg->g,
                 (unsigned long long)s->id, (unsigned long long)s->st.applied,
                 (unsigned long long)s->st.bytes);
    } else {
        s = sess_find(n, q->session);
        if (s == NULL || s->g != dg->g) {
            errmsg_printf(msg,
                          "data group %u: no transfer session %llu here (over, or "
                          "idle too long)",
                          dg->g, (unsigned long long)q->session);
            node_send_error(c, m->type, m->request_id, DLOG_ENOTFOUND, msg, NULL);
            return;
        }
    }
    s->used_ns = clock_now_ns();
    memset(&ch, 0, sizeof ch);
    rv = data_fsm_dumper_next(s->d, &pos, q->max_bytes, chunk_visit, &ch);
    if (rv < 0) {
        node_send_error(c, m->type, m->request_id, rv,
                        rv == DLOG_ENOMEM ? NULL : data_fsm_errmsg(dg->fsm), NULL);
        sess_drop(n, s);
    } else {
        rep.u.seg_dump_rep.session = s->id;
        reply_state(&rep, &s->st);
        rep.u.seg_dump_rep.segs = ch.segs;
        rep.u.seg_dump_rep.nsegs = ch.nsegs;
        rep.u.seg_dump_rep.ents = ch.ents;
        rep.u.seg_dump_rep.nents = ch.nents;
        rep.u.seg_dump_rep.done = rv == 1;
        node_send(c, &rep); /* encodes (copies) before the session can go */
        if (rv == 1) {
            log_info("node", "data group %u: transfer session %llu sent", dg->g,
                     (unsigned long long)s->id);
            sess_drop(n, s);
        }
    }
    free(ch.segs);
    free(ch.ents);
}

/* ---------------------------------------------------------------- fetching */

/* One transfer from peer i; 0 once the load committed. */
static int transfer_from(struct dgroup *dg, unsigned i)
{
    struct node *n = dg->n;
    struct dxfer *x = &dg->xfer;
    struct data_fsm_load *ld = NULL;
    struct data_fsm_state src = {0};
    struct data_fsm_pos pos = {0, 0, 0, 0};
    struct data_fsm_item it;
    struct net_rpc *r = NULL;
    struct net_rpc_reply rep;
    struct wire_msg q;
    uint64_t session = 0;
    int restarts = 0, rv;

    rv = net_rpc_open(x->addrs[i], n->name, &r, x->errmsg);
    if (rv != 0)
        return rv;
    net_rpc_set_timeout(r, CALL_MS);
    for (;;) {
        const struct wire_seg_dump_rep *d;
        if (atomic_load(&n->stop_flag)) {
            rv = errmsg_fail(x->errmsg, DLOG_ECANCELED, "the node is stopping");
            break;
        }
        memset(&q, 0, sizeof q);
        q.type = WIRE_SEG_DUMP;
        q.u.seg_dump = (struct wire_seg_dump){
            dg->g,   session,   (uint32_t)pos.kind, pos.stream,
            pos.seq, pos.entry, CHUNK_BYTES,        x->want.applied};
        rv = net_rpc_call(r, &q, NET_RPC_IDEMPOTENT, &rep, x->errmsg);
        if (rv != 0)
            break;
        rv = rep.msg.status;
        if (rv == DLOG_ENOTFOUND && session != 0 && restarts < RESTARTS) {
            /* the session is gone (the peer restarted, or it was idle): again */
            net_rpc_reply_free(&rep);
            data_fsm_load_abort(ld);
            ld = NULL;
            session = 0;
            pos = (struct data_fsm_pos){0, 0, 0, 0};
            restarts++;
            continue;
        }
        if (rv != 0) {
            errmsg_copy(x->errmsg,
                        rep.msg.err.message ? rep.msg.err.message : dlog_strerror(rv));
            net_rpc_reply_free(&rep);
            break;
        }
        d = &rep.msg.u.seg_dump_rep;
        memset(&it, 0, sizeof it);
        it.state = (struct data_fsm_state){d->applied, d->hash, d->segments, d->entries,
                                           d->bytes};
        if (session == 0) {
            if (d->session == 0 || d->applied < x->want.applied)
                rv = errmsg_fail(x->errmsg, DLOG_EPROTO,
                                 "a session-less or stale first reply");
            else if ((rv = data_fsm_load_begin(dg->fsm, x->errmsg, &ld)) == 0) {
                it.kind = DATA_FSM_ITEM_STATE;
                rv = data_fsm_load_item(ld, &it);
                session = d->session;
                src = it.state;
            }
        } else if (d->session != session || memcmp(&it.state, &src, sizeof src) != 0) {
            rv = errmsg_fail(x->errmsg, DLOG_EPROTO, "the session's state changed");
        }
        for (size_t k = 0; rv == 0 && k < d->nsegs; k++) {
            const struct wire_dump_seg *s = &d->segs[k];
            const struct wire_seg_info *w = &s->info;
            it.kind = DATA_FSM_ITEM_SEG;
            it.stream = s->stream;
            it.seq = s->seq;
            it.info = (struct seg_info){.fence_epoch = w->fence_epoch,
                                        .sealed = (int)w->sealed,
                                        .next_entry = w->next_entry,
                                        .records = w->records,
                                        .bytes = w->bytes,
                                        .first_txid = w->first_txid,
                                        .last_txid = w->last_txid,
                                        .created_ms = w->created_ms,
                                        .last_rec_entry = w->last_rec_entry,
                                        .last_rec_slot = w->last_rec_slot};
            memset(it.once, 0, sizeof it.once);
            for (uint32_t o = 0; o < s->nonce && o < DATA_FSM_ONCE_SLOTS; o++)
                it.once[o] = (struct data_fsm_once){s->once[o][0], s->once[o][1],
                                                    s->once[o][2], s->once[o][3]};
            rv = data_fsm_load_item(ld, &it);
            pos = (struct data_fsm_pos){DATA_FSM_ITEM_SEG, s->stream, s->seq, 0};
        }
        for (size_t k = 0; rv == 0 && k < d->nents; k++) {
            const struct wire_dump_entry *e = &d->ents[k];
            it.kind = DATA_FSM_ITEM_ENTRY;
            it.stream = e->stream;
            it.seq = e->seq;
            it.entry = e->entry;
            it.p = e->p;
            it.len = e->len;
            rv = data_fsm_load_item(ld, &it);
            pos = (struct data_fsm_pos){DATA_FSM_ITEM_ENTRY, e->stream, e->seq, e->entry};
            x->bytes += e->len;
        }
        if (rv == 0)
            rv = data_fsm_load_flush(ld);
        int done = d->done;
        net_rpc_reply_free(&rep);
        if (rv != 0)
            break;
        if (done) {
            rv = data_fsm_load_commit(ld);
            ld = NULL;
            if (rv == 0)
                x->source = x->ids[i];
            break;
        }
    }
    data_fsm_load_abort(ld);
    net_rpc_close(r);
    return rv;
}

static void xfer_main(void *arg)
{
    struct dgroup *dg = arg;
    struct dxfer *x = &dg->xfer;
    int rv = DLOG_EUNAVAILABLE;

    for (unsigned i = 0; i < x->npeers && !atomic_load(&dg->n->stop_flag); i++) {
        rv = transfer_from(dg, i);
        if (rv == 0)
            break;
        log_warn("node", "data group %u: transfer from node %llu (%s): %s", dg->g,
                 (unsigned long long)x->ids[i], x->addrs[i], x->errmsg);
    }
    x->rv = rv;
    atomic_store(&x->finished, 1);
}

void node_xfer_reap(struct dgroup *dg)
{
    struct dxfer *x = &dg->xfer;
    double secs;

    if (!x->running || !atomic_load(&x->finished))
        return;
    uv_thread_join(&x->thread);
    x->running = 0;
    secs = (double)(clock_now_ns() - x->started_ns) / 1e9;
    if (x->rv == 0) {
        log_info("node",
                 "node %llu, data group %u: loaded the state at index >= %llu from node "
                 "%llu: %llu entry bytes in %.1f s",
                 (unsigned long long)dg->n->id, dg->g,
                 (unsigned long long)x->want.applied, (unsigned long long)x->source,
                 (unsigned long long)x->bytes, secs);
    } else {
        log_error("node",
                  "node %llu, data group %u: no peer gave the state at index %llu "
                  "(%s): trying again",
                  (unsigned long long)dg->n->id, dg->g,
                  (unsigned long long)x->want.applied, x->errmsg);
        x->next_try_ns = clock_now_ns() + (uint64_t)RETRY_MS * NS_PER_MS;
    }
}

/* The peers to ask, in order: the group's leader, then the other members. */
static void pick_peers(struct dgroup *dg)
{
    struct node *n = dg->n;
    struct dxfer *x = &dg->xfer;
    const struct raft_configuration *conf = &dg->raft.configuration;
    raft_id leader = 0;
    const char *leader_addr = NULL;

    raft_leader(&dg->raft, &leader, &leader_addr);
    x->npeers = 0;
    for (int pass = 0; pass < 2; pass++)
        for (unsigned i = 0; i < conf->n && x->npeers < XFER_PEERS_MAX; i++) {
            uint64_t id = conf->servers[i].id;
            if (id == n->id || (pass == 0) != (id == leader))
                continue;
            if (node_listen_of(n, id, x->addrs[x->npeers], sizeof x->addrs[0]) != 0)
                continue;
            x->ids[x->npeers++] = id;
        }
}

int node_xfer_fetch(void *arg, struct data_fsm *f, const struct data_fsm_state *want)
{
    struct dgroup *dg = arg;
    struct dxfer *x = &dg->xfer;
    uint64_t now = clock_now_ns();

    (void)f;
    node_xfer_reap(dg);
    if (x->running || dg->n->stopping || now < x->next_try_ns)
        return DLOG_EUNAVAILABLE;
    x->want = *want;
    pick_peers(dg);
    if (x->npeers == 0) {
        log_warn("node", "data group %u: behind the snapshot at %llu, and no peer known",
                 dg->g, (unsigned long long)want->applied);
        x->next_try_ns = now + (uint64_t)RETRY_MS * NS_PER_MS;
        return DLOG_EUNAVAILABLE;
    }
    x->rv = 0;
    x->bytes = 0;
    x->source = 0;
    x->errmsg[0] = '\0';
    x->started_ns = now;
    atomic_store(&x->finished, 0);
    if (uv_thread_create(&x->thread, xfer_main, dg) != 0) {
        x->next_try_ns = now + (uint64_t)RETRY_MS * NS_PER_MS;
        return DLOG_EUNAVAILABLE;
    }
    x->running = 1;
    log_info("node",
             "node %llu, data group %u: behind the snapshot at index %llu: loading the "
             "contents from node %llu%s",
             (unsigned long long)dg->n->id, dg->g, (unsigned long long)want->applied,
             (unsigned long long)x->ids[0], x->npeers > 1 ? " (or the others)" : "");
    return DLOG_EUNAVAILABLE;
}

int node_xfer_busy(struct node *n)
{
    for (unsigned g = 0; g < n->ngroups; g++)
        if (n->groups[g].xfer.running && !atomic_load(&n->groups[g].xfer.finished))
            return 1;
    return 0;
}

void node_xfer_tick(struct node *n)
{
    uint64_t now = clock_now_ns();

    for (struct dsess **pp = &n->sessions; *pp != NULL;) {
        struct dsess *s = *pp;
        if (now - s->used_ns > (uint64_t)SESS_IDLE_MS * NS_PER_MS || n->stopping) {
            log_warn("node", "data group %u: transfer session %llu idle: dropped", s->g,
                     (unsigned long long)s->id);
            *pp = s->next;
            n->nsessions--;
            sess_free(s);
        } else {
            pp = &s->next;
        }
    }
    for (unsigned g = 0; g < n->ngroups; g++)
        node_xfer_reap(&n->groups[g]);
}

void node_xfer_close(struct node *n)
{
    while (n->sessions != NULL) {
        struct dsess *s = n->sessions;
        n->sessions = s->next;
        sess_free(s);
    }
    n->nsessions = 0;
    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dxfer *x = &n->groups[g].xfer;
        if (x->running) {
            uv_thread_join(&x->thread); /* it sees stop_flag within CALL_MS */
            x->running = 0;
        }
    }
}
