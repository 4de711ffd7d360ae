/*
 * dlogctl cluster groups — the metadata group and every data group of a
 * cluster (docs/cluster.md, "Data groups"):
 *
 *   meta members 3 leader 1 term 2
 *   meta node 1 state leader term 2 applied 40 commit 40
 *   group 0 members 1,2,3 leader 2 term 3 segments 4 entries 120 bytes 40960 load 0
 *   group 0 node 1 state follower term 3 applied 130 commit 130
 *   group 0 node 3 unreachable
 *   leaders node 1 groups 1 node 2 groups 1 node 3 groups 1
 *   stream orders id 1 segments 1@0,2@2,3@1
 *
 * One line per group with what its leader's replica reports (members,
 * term, what its state machine stores, its load in bytes/s), then one per
 * replica as that node sees it; how many data groups each node leads; and
 * where each stream's segments live ("seq@group", from the metadata: the
 * group recorded at placement, or stream id mod G for segments placed by
 * older versions). --no-streams leaves the stream lines out.
 *
 * It asks CLUSTER_STATUS for the members, then CLUSTER_GROUPS of each
 * node, and reads the streams through meta_raft.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/dlog.h>

#include "base/errmsg.h"
#include "cmd/dlogctl_cluster.h"
#include "meta/meta.h"
#include "net/rpc.h"

#define ASK_MS 3000

static const char *state_name(uint32_t s)
{
    static const char *const names[] = {"unavailable", "follower", "candidate", "leader"};
    return s < 4 ? names[s] : "?";
}

/* One node call to addrs; 0 with *rep (free it), or a dlog code. */
static int ask(const char *addrs, uint32_t type, struct net_rpc_reply *rep, char *msg)
{
    struct wire_msg q;
    struct net_rpc *r;
    int rv = net_rpc_open(addrs, "dlogctl " PACKAGE_VERSION, &r, msg);

    if (rv != 0)
        return rv;
    net_rpc_set_timeout(r, ASK_MS);
    memset(&q, 0, sizeof q);
    q.type = type;
    rv = net_rpc_call(r, &q, NET_RPC_IDEMPOTENT, rep, msg);
    net_rpc_close(r);
    if (rv == 0 && rep->msg.status != 0) {
        rv = rep->msg.status;
        errmsg_copy(msg, rep->msg.err.message ? rep->msg.err.message : "");
        net_rpc_reply_free(rep);
    }
    return rv;
}

/* What each member answered to CLUSTER_GROUPS (ok 0: unreachable). */
struct view {
    uint64_t id;
    int ok;
    struct net_rpc_reply rep;
};

static const struct wire_group_status *group_in(const struct view *v, uint32_t g)
{
    if (!v->ok)
        return NULL;
    for (size_t i = 0; i < v->rep.msg.u.cluster_groups_rep.ngroups; i++)
        if (v->rep.msg.u.cluster_groups_rep.groups[i].group == g)
            return &v->rep.msg.u.cluster_groups_rep.groups[i];
    return NULL;
}

/* The report of group g to summarize: its leader's own, else the replica
 * with the highest term (then applied index). */
static const struct wire_group_status *best_of(const struct view *v, size_t nv,
                                               uint32_t g)
{
    const struct wire_group_status *best = NULL;

    for (size_t i = 0; i < nv; i++) {
        const struct wire_group_status *s = group_in(&v[i], g);
        if (s == NULL)
            continue;
        if (s->state == 3)
            return s;
        if (best == NULL || s->term > best->term ||
            (s->term == best->term && s->applied_index > best->applied_index))
            best = s;
    }
    return best;
}

static void print_meta(const struct wire_cluster_status_rep *st)
{
    printf("meta members %zu leader %llu term %llu\n", st->nmembers,
           (unsigned long long)st->leader_id, (unsigned long long)st->term);
    for (size_t i = 0; i < st->nmembers; i++) {
        const struct wire_member *mb = &st->members[i];
        struct net_rpc_reply one;
        char msg[DLOG_ERRMSG_SIZE] = "";

        if (mb->listen_address[0] == '\0' ||
            ask(mb->listen_address, WIRE_CLUSTER_STATUS, &one, msg) != 0) {
            printf("meta node %llu unreachable\n", (unsigned long long)mb->id);
            continue;
        }
        printf("meta node %llu state %s term %llu applied %llu commit %llu\n",
               (unsigned long long)mb->id, state_name(one.msg.u.cluster_status_rep.state),
               (unsigned long long)one.msg.u.cluster_status_rep.term,
               (unsigned long long)one.msg.u.cluster_status_rep.applied_index,
               (unsigned long long)one.msg.u.cluster_status_rep.commit_index);
        net_rpc_reply_free(&one);
    }
}

/* The group lines and the leaders line; the number of groups, or 0. */
static uint32_t print_groups(struct view *v, size_t nv)
{
    uint32_t ngroups = 0;

    for (size_t i = 0; i < nv; i++)
        for (size_t j = 0; v[i].ok && j < v[i].rep.msg.u.cluster_groups_rep.ngroups; j++)
            if (v[i].rep.msg.u.cluster_groups_rep.groups[j].group + 1 > ngroups)
                ngroups = v[i].rep.msg.u.cluster_groups_rep.groups[j].group + 1;
    for (uint32_t g = 0; g < ngroups; g++) {
        const struct wire_group_status *b = best_of(v, nv, g);

        if (b == NULL)
            continue;
        printf("group %u members ", g);
        for (size_t k = 0; k < b->nmembers; k++)
            printf("%s%llu%s", k ? "," : "", (unsigned long long)b->members[k].id,
                   b->members[k].role == 1 ? "" : "(spare)");
        printf(
            "%s leader %llu term %llu segments %llu entries %llu bytes %llu load %llu\n",
            b->nmembers ? "" : "-", (unsigned long long)b->leader_id,
            (unsigned long long)b->term, (unsigned long long)b->segments,
            (unsigned long long)b->entries, (unsigned long long)b->bytes,
            (unsigned long long)b->load_bps);
        for (size_t i = 0; i < nv; i++) {
            const struct wire_group_status *s = group_in(&v[i], g);
            if (s == NULL) {
                printf("group %u node %llu unreachable\n", g,
                       (unsigned long long)v[i].id);
                continue;
            }
            printf("group %u node %llu state %s term %llu applied %llu commit %llu\n", g,
                   (unsigned long long)v[i].id, state_name(s->state),
                   (unsigned long long)s->term, (unsigned long long)s->applied_index,
                   (unsigned long long)s->commit_index);
        }
    }
    printf("leaders");
    for (size_t i = 0; i < nv; i++) {
        unsigned led = 0;
        for (uint32_t g = 0; g < ngroups; g++) {
            const struct wire_group_status *b = best_of(v, nv, g);
            led += b != NULL && b->leader_id == v[i].id;
        }
        printf(" node %llu groups %u", (unsigned long long)v[i].id, led);
    }
    printf("\n");
    return ngroups;
}

/* One line per stream: where its segments live. 0 or 1 (an error). */
static int print_streams(const char *addrs, uint32_t ngroups)
{
    struct dlog_meta_ops *m = NULL;
    char msg[DLOG_ERRMSG_SIZE] = "";
    char **names = NULL;
    size_t count = 0;
    int rv = meta_raft_open(addrs, &m, msg);

    if (rv == 0 && (rv = m->list(m, &names, &count)) != 0)
        errmsg_copy(msg, m->errmsg);
    for (size_t i = 0; rv == 0 && i < count; i++) {
        struct meta_stream s;
        memset(&s, 0, sizeof s);
        if (m->get(m, names[i], &s) != 0)
            continue; /* deleted meanwhile */
        printf("stream %s id %llu segments", s.name, (unsigned long long)s.id);
        for (uint32_t k = 0; k < s.nseg; k++) {
            uint64_t g = s.segs[k].place != 0 ? s.segs[k].place - 1
                         : ngroups > 0        ? s.id % ngroups
                                              : 0;
            printf("%c%llu@%llu", k ? ',' : ' ', (unsigned long long)s.segs[k].seq,
                   (unsigned long long)g);
        }
        printf("%s\n", s.nseg ? "" : " -");
        meta_stream_clear(&s);
    }
    if (names != NULL)
        dlog_stream_list_free(names);
    if (m != NULL)
        m->close(m);
    if (rv != 0) {
        fprintf(stderr, "dlogctl: cluster groups: streams: %s (%s)\n", dlog_strerror(rv),
                msg);
        return 1;
    }
    return 0;
}

int dlogctl_cluster_groups(const char *addrs, int argc, char **argv)
{
    struct net_rpc_reply rep;
    const struct wire_cluster_status_rep *st;
    struct view *v;
    char msg[DLOG_ERRMSG_SIZE] = "";
    int streams = 1, failed = 0, rv;
    uint32_t ngroups;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--no-streams") == 0) {
            streams = 0;
        } else {
            fprintf(stderr, "dlogctl: cluster groups: unknown option '%s'\n", argv[i]);
            return 2;
        }
    }
    rv = ask(addrs, WIRE_CLUSTER_STATUS, &rep, msg);
    if (rv != 0) {
        fprintf(stderr, "dlogctl: cluster groups: CLUSTER_STATUS: %s (%s)\n",
                dlog_strerror(rv), msg);
        return 1;
    }
    st = &rep.msg.u.cluster_status_rep;
    print_meta(st);
    v = calloc(st->nmembers > 0 ? st->nmembers : 1, sizeof *v);
    if (v == NULL) {
        net_rpc_reply_free(&rep);
        fprintf(stderr, "dlogctl: cluster groups: out of memory\n");
        return 1;
    }
    for (size_t i = 0; i < st->nmembers; i++) {
        v[i].id = st->members[i].id;
        v[i].ok =
            st->members[i].listen_address[0] != '\0' &&
            ask(st->members[i].listen_address, WIRE_CLUSTER_GROUPS, &v[i].rep, msg) == 0;
        failed |= !v[i].ok;
    }
    ngroups = print_groups(v, st->nmembers);
    for (size_t i = 0; i < st->nmembers; i++)
        if (v[i].ok)
            net_rpc_reply_free(&v[i].rep);
    free(v);
    net_rpc_reply_free(&rep);
    if (streams && print_streams(addrs, ngroups) != 0)
        failed = 1;
    return failed ? 1 : 0;
}
