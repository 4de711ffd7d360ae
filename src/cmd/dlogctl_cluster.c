/*
 * dlogctl cluster — node calls to a cluster's nodes (docs/cluster.md):
 *
 *   dlogctl -u cluster://H:P,H:P cluster status
 *   dlogctl -u cluster://H:P cluster add-node --id N --raft H:P --listen H:P
 *   dlogctl -u cluster://H:P cluster remove-node ID
 *   dlogctl -u cluster://H:P cluster groups [--no-streams]   (dlogctl_groups.c)
 *
 * status asks one node for the members of the metadata group, then asks
 * every member for its own view, and prints one line per node in
 * "key value" pairs, easy to read and to grep:
 *
 *   cluster members 3 leader 2 leader_address 127.0.0.1:7002 term 4
 *   node 1 state follower role voter term 4 applied 37 commit 37 revision 12
 *        listen 127.0.0.1:7001 raft 127.0.0.1:9001   (one line)
 *   groups node 1 applied 120,7 commit 120,7 leaders 1,2 load 0,4096
 *        (per data group as node 1 sees it: applied and commit index,
 *        leader, bytes/s of appends)
 *   node 3 unreachable listen 127.0.0.1:7003 raft 127.0.0.1:9003
 *
 * This is the only part of dlogctl below the public API: it speaks node
 * calls through the blocking client of src/net/rpc.h.
 */
#ifdef HAVE_CONFIG_H
#include "config.h"
#endif

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/dlog.h>

#include "base/errmsg.h"
#include "cmd/dlogctl_cluster.h"
#include "net/rpc.h"

#define STATUS_MS 3000

static const char *state_name(uint32_t s)
{
    static const char *const names[] = {"unavailable", "follower", "candidate", "leader"};
    return s < 4 ? names[s] : "?";
}

static const char *role_name(uint32_t r)
{
    static const char *const names[] = {"standby", "voter", "spare"};
    return r < 3 ? names[r] : "?";
}

/* The addresses of a cluster URI: "cluster://a,b" or "a,b". */
static const char *addrs_of(const char *uri)
{
    if (strncmp(uri, "cluster://", 10) == 0)
        return uri + 10;
    return uri;
}

static int open_rpc(const char *addrs, unsigned ms, struct net_rpc **r)
{
    char msg[DLOG_ERRMSG_SIZE] = "";
    int rv = net_rpc_open(addrs, "dlogctl " PACKAGE_VERSION, r, msg);

    if (rv != 0) {
        fprintf(stderr, "dlogctl: cluster: %s: %s\n", addrs, msg);
        return rv;
    }
    net_rpc_set_timeout(*r, ms);
    return 0;
}

/* Calls req on addrs; 0 with *rep, or prints the error. */
static int call(const char *addrs, unsigned ms, struct wire_msg *req,
                struct net_rpc_reply *rep, int quiet)
{
    char msg[DLOG_ERRMSG_SIZE] = "";
    struct net_rpc *r;
    int rv = open_rpc(addrs, ms, &r);

    if (rv != 0)
        return rv;
    rv = net_rpc_call(r, req, NET_RPC_IDEMPOTENT, rep, msg);
    net_rpc_close(r);
    if (rv == 0 && rep->msg.status != 0) {
        rv = rep->msg.status;
        errmsg_copy(msg, rep->msg.err.message ? rep->msg.err.message : "");
        net_rpc_reply_free(rep);
    }
    if (rv != 0 && !quiet)
        fprintf(stderr, "dlogctl: cluster: %s: %s (%s)\n", wire_type_name(req->type),
                dlog_strerror(rv), msg);
    return rv;
}

/* "%c%llu" of one field of each group, separated by commas. */
#define PRINT_GROUPS(label, field)                                                       \
    do {                                                                                 \
        printf(" %s", label);                                                            \
        for (size_t g_ = 0; g_ < r->ngroups; g_++)                                       \
            printf("%c%llu", g_ == 0 ? ' ' : ',',                                        \
                   (unsigned long long)r->groups[g_].field);                             \
    } while (0)

/* One line about the data groups on node id: "groups node ID applied
 * A0,A1,... commit ... leaders ... load ..." (CLUSTER_GROUPS), or with
 * the applied indexes only from a node that does not know that call (a
 * SEG_WAIT that returns at once). */
static void data_groups(uint64_t id, const char *listen)
{
    struct wire_msg q;
    struct net_rpc_reply rep;
    uint64_t zero = 0;

    memset(&q, 0, sizeof q);
    q.type = WIRE_CLUSTER_GROUPS;
    if (call(listen, 1000, &q, &rep, 1) == 0) {
        const struct wire_cluster_groups_rep *r = &rep.msg.u.cluster_groups_rep;
        printf("groups node %llu", (unsigned long long)id);
        PRINT_GROUPS("applied", applied_index);
        PRINT_GROUPS("commit", commit_index);
        PRINT_GROUPS("leaders", leader_id);
        PRINT_GROUPS("load", load_bps);
        printf("\n");
        net_rpc_reply_free(&rep);
        return;
    }
    memset(&q, 0, sizeof q);
    q.type = WIRE_SEG_WAIT;
    q.u.seg_wait = (struct wire_seg_wait){&zero, 1, 0};
    if (call(listen, 1000, &q, &rep, 1) != 0)
        return;
    printf("groups node %llu applied", (unsigned long long)id);
    for (size_t g = 0; g < rep.msg.u.seg_wait_rep.n; g++)
        printf("%c%llu", g == 0 ? ' ' : ',',
               (unsigned long long)rep.msg.u.seg_wait_rep.applied[g]);
    printf("\n");
    net_rpc_reply_free(&rep);
}

static int status(const char *addrs)
{
    struct wire_msg q;
    struct net_rpc_reply rep, one;
    const struct wire_cluster_status_rep *st;
    int rv, failed = 0;

    memset(&q, 0, sizeof q);
    q.type = WIRE_CLUSTER_STATUS;
    rv = call(addrs, STATUS_MS, &q, &rep, 0);
    if (rv != 0)
        return 1;
    st = &rep.msg.u.cluster_status_rep;
    printf("cluster members %zu leader %llu leader_address %s term %llu\n", st->nmembers,
           (unsigned long long)st->leader_id,
           st->leader_address[0] ? st->leader_address : "-",
           (unsigned long long)st->term);
    for (size_t i = 0; i < st->nmembers; i++) {
        const struct wire_member *mb = &st->members[i];
        const struct wire_cluster_status_rep *o;

        if (mb->listen_address[0] == '\0' ||
            call(mb->listen_address, 1000, &q, &one, 1) != 0) {
            printf("node %llu unreachable role %s listen %s raft %s\n",
                   (unsigned long long)mb->id, role_name(mb->role),
                   mb->listen_address[0] ? mb->listen_address : "-", mb->raft_address);
            failed = 1;
            continue;
        }
        o = &one.msg.u.cluster_status_rep;
        printf(
            "node %llu state %s role %s leader %llu term %llu applied %llu commit %llu "
            "revision %llu listen %s raft %s\n",
            (unsigned long long)mb->id, state_name(o->state), role_name(mb->role),
            (unsigned long long)o->leader_id, (unsigned long long)o->term,
            (unsigned long long)o->applied_index, (unsigned long long)o->commit_index,
            (unsigned long long)o->revision, mb->listen_address, mb->raft_address);
        net_rpc_reply_free(&one);
        data_groups(mb->id, mb->listen_address);
    }
    net_rpc_reply_free(&rep);
    return failed ? 1 : 0;
}

static int add_node(const char *addrs, int argc, char **argv)
{
    static const struct option opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"raft", required_argument, NULL, 'r'},
        {"listen", required_argument, NULL, 'l'},
        {NULL, 0, NULL, 0},
    };
    struct wire_msg q;
    struct net_rpc_reply rep;
    unsigned long long id = 0;
    const char *raft = NULL, *listen = NULL;
    int opt;

    optind = 0;
    while ((opt = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (opt == 'i')
            id = strtoull(optarg, NULL, 10);
        else if (opt == 'r')
            raft = optarg;
        else if (opt == 'l')
            listen = optarg;
        else
            return 2;
    }
    if (id == 0 || raft == NULL || listen == NULL) {
        fprintf(stderr, "dlogctl: cluster add-node: --id N --raft H:P --listen H:P\n");
        return 2;
    }
    memset(&q, 0, sizeof q);
    q.type = WIRE_NODE_JOIN;
    q.u.node_join = (struct wire_node_join){id, raft, listen};
    if (call(addrs, NET_RPC_TIMEOUT_MS, &q, &rep, 0) != 0)
        return 1;
    net_rpc_reply_free(&rep);
    printf("node %llu is a voter\n", id);
    return 0;
}

static int remove_node(const char *addrs, int argc, char **argv)
{
    struct wire_msg q;
    struct net_rpc_reply rep;
    unsigned long long id;
    char *end;

    if (argc != 2) {
        fprintf(stderr, "dlogctl: cluster remove-node: expected ID\n");
        return 2;
    }
    errno = 0;
    id = strtoull(argv[1], &end, 10);
    if (errno != 0 || *end != '\0' || id == 0) {
        fprintf(stderr, "dlogctl: cluster remove-node: bad id '%s'\n", argv[1]);
        return 2;
    }
    memset(&q, 0, sizeof q);
    q.type = WIRE_NODE_REMOVE;
    q.u.node_remove.id = id;
    if (call(addrs, NET_RPC_TIMEOUT_MS, &q, &rep, 0) != 0)
        return 1;
    net_rpc_reply_free(&rep);
    printf("node %llu removed\n", id);
    return 0;
}

int dlogctl_cluster(const char *uri, int argc, char **argv)
{
    const char *addrs = addrs_of(uri);

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        printf("Usage: dlogctl -u cluster://H:P[,H:P...] cluster status\n"
               "       dlogctl -u cluster://H:P cluster groups [--no-streams]\n"
               "       dlogctl -u cluster://H:P cluster add-node --id N --raft H:P "
               "--listen H:P\n"
               "       dlogctl -u cluster://H:P cluster remove-node ID\n"
               "\n"
               "status: each node's state, term, applied and commit index, and each\n"
               "  data group's applied and commit index, leader and load on it.\n"
               "groups: the metadata group and every data group: members, leader,\n"
               "  term, each replica's applied and commit index, segments, bytes and\n"
               "  load (bytes/s) per group, data groups led per node, and where each\n"
               "  stream's segments live (SEQ@GROUP; --no-streams leaves them out).\n");
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "status") == 0 && argc == 2)
        return status(addrs);
    if (strcmp(argv[1], "groups") == 0)
        return dlogctl_cluster_groups(addrs, argc - 1, argv + 1);
    if (strcmp(argv[1], "add-node") == 0)
        return add_node(addrs, argc - 1, argv + 1);
    if (strcmp(argv[1], "remove-node") == 0)
        return remove_node(addrs, argc - 1, argv + 1);
    fprintf(stderr, "dlogctl: cluster: unknown subcommand '%s'\n", argv[1]);
    return 2;
}
