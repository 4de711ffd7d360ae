/*
 * CLUSTER_GROUPS (0x50; docs/protocol.md, "Node calls"): this node's view
 * of every data group it hosts -- state, leader, term, commit and applied
 * index, what its state machine stores, the load, the members -- for
 * `dlogctl cluster groups` and for placing new segments (seg/seg_raft.c).
 *
 * Load (docs/cluster.md, "Placement"): every replica counts the bytes of
 * the APPEND and APPEND_ONCE commands it applies (the command's size,
 * entries and a few bytes of header; a repeated APPEND_ONCE counts again,
 * which only matters if repeats are frequent), and samples the count
 * once a second on the tick (node/group_load.h). Every replica applies
 * the same commands, so any node's figures will do; they start from 0
 * when the node restarts.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "node/node_int.h"

void node_groups_applied(struct dgroup *dg, size_t cmd_bytes)
{
    dg->appended += cmd_bytes;
}

void node_groups_tick(struct node *n)
{
    uint64_t now = clock_now_ns() / NS_PER_MS;

    for (unsigned g = 0; g < n->ngroups; g++)
        group_load_sample(&n->groups[g].load, now, n->groups[g].appended);
}

/* Fills *w with group dg; its members go to mb (dg's configuration size). */
static void describe(struct dgroup *dg, uint64_t now_ms, struct wire_group_status *w,
                     struct wire_group_member *mb)
{
    const struct raft_configuration *conf = &dg->raft.configuration;
    struct data_fsm_state st;
    raft_id leader = 0;
    const char *leader_addr = NULL;

    memset(&st, 0, sizeof st);
    if (data_fsm_state(dg->fsm, &st) != 0)
        st.applied = dg->applied;
    raft_leader(&dg->raft, &leader, &leader_addr);
    for (unsigned i = 0; i < conf->n; i++)
        mb[i] = (struct wire_group_member){conf->servers[i].id,
                                           (uint32_t)conf->servers[i].role};
    *w = (struct wire_group_status){
        .group = dg->g,
        .state = (uint32_t)raft_state(&dg->raft),
        .leader_id = leader,
        .term = dg->raft.current_term,
        .commit_index = dg->raft.commit_index,
        .applied_index = st.applied,
        .segments = st.segments,
        .entries = st.entries,
        .bytes = st.bytes,
        .load_bps = group_load_bps(&dg->load, now_ms, dg->appended),
        .members = mb,
        .nmembers = conf->n,
    };
}

void node_handle_groups(struct nconn *c, const struct wire_msg *m)
{
    struct node *n = c->n;
    struct wire_group_status *gs;
    struct wire_group_member **mbs;
    struct wire_msg rep;
    uint64_t now = clock_now_ns() / NS_PER_MS;
    int rv = 0;

    gs = calloc(n->ngroups > 0 ? n->ngroups : 1, sizeof *gs);
    mbs = calloc(n->ngroups > 0 ? n->ngroups : 1, sizeof *mbs);
    for (unsigned g = 0; gs != NULL && mbs != NULL && g < n->ngroups; g++) {
        unsigned nm = n->groups[g].raft.configuration.n;
        mbs[g] = calloc(nm > 0 ? nm : 1, sizeof *mbs[g]);
        if (mbs[g] == NULL) {
            rv = DLOG_ENOMEM;
            break;
        }
        describe(&n->groups[g], now, &gs[g], mbs[g]);
    }
    if (gs == NULL || mbs == NULL || rv != 0) {
        node_send_error(c, m->type, m->request_id, DLOG_ENOMEM, NULL, NULL);
    } else {
        node_rep_init(&rep, m->type, m->request_id, 0);
        rep.u.cluster_groups_rep =
            (struct wire_cluster_groups_rep){n->id, gs, n->ngroups};
        node_send(c, &rep);
    }
    for (unsigned g = 0; mbs != NULL && g < n->ngroups; g++)
        free(mbs[g]);
    free(mbs);
    free(gs);
}
