/*
 * Spreading the data groups' leaders over the nodes (DESIGN.md, "Data
 * groups": "leaders spread across nodes"; docs/cluster.md). Whoever
 * bootstraps the data groups leads them all at first, and an election
 * after a failure can pile them up again; a leader does every group's
 * proposing and replicating, so one node would do all the work.
 *
 * Rule, looked at once per BALANCE_EVERY_MS by each node on its own: count
 * how many data groups each voter of the metadata group leads, as this
 * node's replicas see it (every node hosts every group, so it knows every
 * leader). When this node leads L groups and some voter V leads at most
 * L - 2, it hands one of its groups (the lowest id that qualifies) to the
 * V leading fewest (then the lowest id) with raft_transfer. A group whose
 * leader this node does not know (an election runs) counts for nobody. Each move
 * lowers the sum of the squared counts, so the moves stop; with G groups
 * and N nodes every node ends with floor(G/N) or ceil(G/N) (the counts
 * differ by at most 1).
 *
 * Only when it is safe and cheap: the group quiet (no proposal in flight, every entry
 * applied, no membership change), the target a voter that answered within
 * the election timeout (libraft's recent_recv) and at most CATCH_UP_SLACK
 * entries behind; one transfer per node at a time. While a transfer runs
 * libraft refuses new proposals (RAFT_NOTLEADER): the node answers
 * DLOG_EUNAVAILABLE and clients retry. A target that did not take over
 * within the election timeout is not chosen again for BALANCE_SHUN_MS.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>

#include "base/clock.h"
#include "base/log.h"
#include "node/node_int.h"

#define BALANCE_EVERY_MS 1000
#define BALANCE_SHUN_MS  10000
#define CATCH_UP_SLACK   1024

static void transfer_cb(struct raft_transfer *req)
{
    struct dgroup *dg = req->data;
    struct node *n = dg->n;
    raft_id leader = 0;
    const char *addr = NULL;

    dg->transferring = 0;
    raft_leader(&dg->raft, &leader, &addr);
    if (leader == dg->transfer_to) {
        log_info("node", "data group %u: node %llu leads it now", dg->g,
                 (unsigned long long)leader);
        return;
    }
    if (n->stopping)
        return;
    log_info("node", "data group %u: node %llu did not take the leadership over", dg->g,
             (unsigned long long)dg->transfer_to);
    n->balance_shun = dg->transfer_to;
    n->balance_shun_ns = clock_now_ns() + BALANCE_SHUN_MS * NS_PER_MS;
}

/* The position of id among the metadata group's voters, or -1. */
static int voter_index(const struct raft_configuration *meta, raft_id id)
{
    for (unsigned i = 0; i < meta->n; i++)
        if (meta->servers[i].id == id)
            return meta->servers[i].role == RAFT_VOTER ? (int)i : -1;
    return -1;
}

/* The voter group dg (led here) should go to, or 0. count: per metadata
 * position, the groups each leads; mine: this node's count. */
static raft_id pick_target(struct node *n, struct dgroup *dg, const unsigned *count,
                           unsigned mine, uint64_t now)
{
    const struct raft_configuration *conf = &dg->raft.configuration;
    raft_index last = raft_last_index(&dg->raft);
    raft_id best = 0;
    unsigned best_count = 0;

    for (unsigned i = 0; i < conf->n; i++) {
        const struct raft_server *s = &conf->servers[i];
        const struct raft_progress *p = &dg->raft.leader_state.progress[i];
        int mi;

        if (s->id == n->id || s->role != RAFT_VOTER)
            continue;
        mi = voter_index(&n->raft.configuration, s->id);
        if (mi < 0 || count[mi] + 2 > mine)
            continue;
        if (s->id == n->balance_shun && now < n->balance_shun_ns)
            continue;
        if (!p->recent_recv || p->match_index + CATCH_UP_SLACK < last)
            continue;
        if (best == 0 || count[mi] < best_count ||
            (count[mi] == best_count && s->id < best)) {
            best = s->id;
            best_count = count[mi];
        }
    }
    return best;
}

void node_leaders_tick(struct node *n)
{
    const struct raft_configuration *meta = &n->raft.configuration;
    uint64_t now = clock_now_ns();
    unsigned *count, mine, least;
    int me;

    if (n->stopping || n->ngroups < 2 || now < n->balance_next_ns)
        return;
    n->balance_next_ns = now + BALANCE_EVERY_MS * NS_PER_MS;
    me = voter_index(meta, n->id);
    if (me < 0 || meta->n < 2)
        return;
    for (unsigned g = 0; g < n->ngroups; g++)
        if (n->groups[g].transferring)
            return;
    count = calloc(meta->n, sizeof *count);
    if (count == NULL)
        return;
    for (unsigned g = 0; g < n->ngroups; g++) {
        raft_id leader = 0;
        const char *addr = NULL;
        int mi;

        raft_leader(&n->groups[g].raft, &leader, &addr);
        if (leader == 0)
            continue; /* not known here: counted as nobody's */
        mi = voter_index(meta, leader);
        if (mi >= 0)
            count[mi]++;
    }
    mine = count[me];
    least = mine;
    for (unsigned i = 0; i < meta->n; i++)
        if (meta->servers[i].role == RAFT_VOTER && count[i] < least)
            least = count[i];
    if (mine < least + 2) { /* balanced, as far as this node is concerned */
        free(count);
        return;
    }
    for (unsigned g = 0; g < n->ngroups; g++) {
        struct dgroup *dg = &n->groups[g];
        raft_id to;
        int rv;

        if (raft_state(&dg->raft) != RAFT_LEADER || dg->changing || dg->inflight > 0 ||
            raft_last_applied(&dg->raft) < dg->raft.commit_index ||
            data_fsm_behind(dg->fsm))
            continue;
        to = pick_target(n, dg, count, mine, now);
        if (to == 0) {
            log_debug("node",
                      "data group %u: this node leads %u groups, another %u, "
                      "but no voter can take it now",
                      g, mine, least);
            continue;
        }
        dg->transfer.data = dg;
        rv = raft_transfer(&dg->raft, &dg->transfer, to, transfer_cb);
        if (rv != 0) {
            log_debug("node", "data group %u: raft_transfer to node %llu: %s", g,
                      (unsigned long long)to, raft_strerror(rv));
            continue;
        }
        log_info("node",
                 "data group %u: handing the leadership to node %llu (this node leads "
                 "%u groups, it %u)",
                 g, (unsigned long long)to, mine, count[voter_index(meta, to)]);
        dg->transferring = 1;
        dg->transfer_to = to;
        break;
    }
    free(count);
}
