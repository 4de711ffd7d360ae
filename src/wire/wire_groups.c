/*
 * The body of the CLUSTER_GROUPS reply (0x50; wire_msgs.h and
 * docs/protocol.md, "Node calls"): one node's view of every data group it
 * hosts. Its request is empty and handled with CLUSTER_STATUS's in
 * wire_node.c, which calls these three for the reply.
 */
#include <string.h>

#include <msgpack.h>

#include <dlog/err.h>

#include "wire/wire_int.h"

#define GROUP_FIELDS 11

void wire_groups_pack_reply(msgpack_packer *pk, const struct wire_msg *m)
{
    const struct wire_cluster_groups_rep *r = &m->u.cluster_groups_rep;

    msgpack_pack_array(pk, 2);
    msgpack_pack_uint64(pk, r->id);
    msgpack_pack_array(pk, (uint32_t)r->ngroups);
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct wire_group_status *g = &r->groups[i];
        msgpack_pack_array(pk, GROUP_FIELDS);
        msgpack_pack_uint32(pk, g->group);
        msgpack_pack_uint32(pk, g->state);
        msgpack_pack_uint64(pk, g->leader_id);
        msgpack_pack_uint64(pk, g->term);
        msgpack_pack_uint64(pk, g->commit_index);
        msgpack_pack_uint64(pk, g->applied_index);
        msgpack_pack_uint64(pk, g->segments);
        msgpack_pack_uint64(pk, g->entries);
        msgpack_pack_uint64(pk, g->bytes);
        msgpack_pack_uint64(pk, g->load_bps);
        msgpack_pack_array(pk, (uint32_t)g->nmembers);
        for (size_t j = 0; j < g->nmembers; j++) {
            msgpack_pack_array(pk, 2);
            msgpack_pack_uint64(pk, g->members[j].id);
            msgpack_pack_uint32(pk, g->members[j].role);
        }
    }
}

static int dec_members(struct wire_dec *d, const msgpack_object *o,
                       struct wire_group_status *g)
{
    const msgpack_object *items, *f;
    struct wire_group_member *mb;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "members", WIRE_MAX_MEMBERS, &items, &n);

    if (rv != 0)
        return rv;
    mb = wire_dec_alloc(d, n * sizeof *mb);
    if (mb == NULL)
        return DLOG_ENOMEM;
    memset(mb, 0, n * sizeof *mb);
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = wire_dec_array(d, &items[i], "member", 2, &f);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[0], "id", &mb[i].id);
        if (rv == 0)
            rv = wire_dec_u32(d, &f[1], "role", &mb[i].role);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "members");
    g->members = mb;
    g->nmembers = n;
    return 0;
}

static int dec_group(struct wire_dec *d, const msgpack_object *o,
                     struct wire_group_status *g)
{
    const msgpack_object *f;
    int rv = wire_dec_array(d, o, "group", GROUP_FIELDS, &f);

    if (rv == 0)
        rv = wire_dec_u32(d, &f[0], "group", &g->group);
    if (rv == 0)
        rv = wire_dec_u32(d, &f[1], "state", &g->state);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[2], "leader_id", &g->leader_id);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[3], "term", &g->term);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[4], "commit_index", &g->commit_index);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[5], "applied_index", &g->applied_index);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[6], "segments", &g->segments);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[7], "entries", &g->entries);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[8], "bytes", &g->bytes);
    if (rv == 0)
        rv = wire_dec_u64(d, &f[9], "load_bps", &g->load_bps);
    if (rv == 0)
        rv = dec_members(d, &f[10], g);
    return rv;
}

int wire_groups_decode_reply(struct wire_dec *d, struct wire_msg *m,
                             const msgpack_object *body)
{
    struct wire_cluster_groups_rep *r = &m->u.cluster_groups_rep;
    const msgpack_object *b, *items;
    struct wire_group_status *gs;
    size_t n = 0;
    int rv = wire_dec_array(d, body, "body", 2, &b);

    if (rv == 0)
        rv = wire_dec_u64(d, &b[0], "id", &r->id);
    if (rv == 0)
        rv = wire_dec_list(d, &b[1], "groups", WIRE_MAX_GROUPS, &items, &n);
    if (rv != 0)
        return rv;
    gs = wire_dec_alloc(d, n * sizeof *gs);
    if (gs == NULL)
        return DLOG_ENOMEM;
    memset(gs, 0, n * sizeof *gs);
    for (size_t i = 0; i < n && rv == 0; i++)
        rv = dec_group(d, &items[i], &gs[i]);
    if (rv != 0)
        return wire_dec_wrap(d, rv, "groups");
    r->groups = gs;
    r->ngroups = n;
    return 0;
}

int wire_groups_check_reply(const struct wire_msg *m, char *errmsg)
{
    const struct wire_cluster_groups_rep *r = &m->u.cluster_groups_rep;

    if (r->ngroups > WIRE_MAX_GROUPS || (r->groups == NULL && r->ngroups > 0))
        return wire_fail(errmsg, DLOG_EINVAL, "groups: %zu, at most %d", r->ngroups,
                         WIRE_MAX_GROUPS);
    for (size_t i = 0; i < r->ngroups; i++) {
        const struct wire_group_status *g = &r->groups[i];
        if (g->group >= WIRE_MAX_GROUPS)
            return wire_fail(errmsg, DLOG_EINVAL, "groups[].group: %u, at most %d",
                             (unsigned)g->group, WIRE_MAX_GROUPS - 1);
        if (i > 0 && g->group <= r->groups[i - 1].group)
            return wire_fail(errmsg, DLOG_EINVAL, "groups[].group: %u is not ascending",
                             (unsigned)g->group);
        if (g->state > 3)
            return wire_fail(errmsg, DLOG_EINVAL, "groups[].state: %u is not 0..3",
                             (unsigned)g->state);
        if (g->nmembers > WIRE_MAX_MEMBERS || (g->members == NULL && g->nmembers > 0))
            return wire_fail(errmsg, DLOG_EINVAL, "groups[].members: %zu, at most %d",
                             g->nmembers, WIRE_MAX_MEMBERS);
        for (size_t j = 0; j < g->nmembers; j++) {
            if (g->members[j].id == 0)
                return wire_fail(errmsg, DLOG_EINVAL,
                                 "groups[].members[].id: must be >= 1");
            if (g->members[j].role > 2)
                return wire_fail(errmsg, DLOG_EINVAL,
                                 "groups[].members[].role: %u is not 0..2",
                                 (unsigned)g->members[j].role);
        }
    }
    return 0;
}
