/*
 * The metadata group's node calls (types 0x40..0x5f; wire_msgs.h and
 * docs/protocol.md, "Node calls"): their bodies, encoded, decoded and
 * checked. The envelope and error replies are the general code's; this
 * file only knows the body of each request and success reply.
 */
#include <string.h>

#include <msgpack.h>

#include <dlog/err.h>

#include "base/errmsg.h"
#include "wire/wire_int.h"

/* ---------------------------------------------------------------- packing */

void wire_node_pack_request(msgpack_packer *pk, const struct wire_msg *m)
{
    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
        msgpack_pack_array(pk, 1);
        wire_pack_bin(pk, m->u.meta_record.record, m->u.meta_record.len, 0);
        break;
    case WIRE_META_GET:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_GET:
    case WIRE_META_KV_REMOVE:
        msgpack_pack_array(pk, 3);
        wire_pack_str(pk, m->u.meta_key.key);
        msgpack_pack_uint64(pk, m->u.meta_key.version);
        msgpack_pack_uint64(pk, m->u.meta_key.min_revision);
        break;
    case WIRE_META_KV_PUT:
        msgpack_pack_array(pk, 3);
        wire_pack_str(pk, m->u.meta_kv_put.key);
        wire_pack_bin(pk, m->u.meta_kv_put.value, m->u.meta_kv_put.len, 0);
        msgpack_pack_uint64(pk, m->u.meta_kv_put.version);
        break;
    case WIRE_META_LIST:
    case WIRE_META_KV_LIST:
        msgpack_pack_array(pk, 4);
        wire_pack_str(pk, m->u.meta_list.prefix);
        wire_pack_str(pk, m->u.meta_list.start_after);
        msgpack_pack_uint32(pk, m->u.meta_list.limit);
        msgpack_pack_uint64(pk, m->u.meta_list.min_revision);
        break;
    case WIRE_META_REVISION:
        msgpack_pack_array(pk, 1);
        wire_pack_bool(pk, m->u.meta_revision.barrier);
        break;
    case WIRE_NODE_JOIN:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, m->u.node_join.id);
        wire_pack_str(pk, m->u.node_join.raft_address);
        wire_pack_str(pk, m->u.node_join.listen_address);
        break;
    case WIRE_NODE_REMOVE:
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, m->u.node_remove.id);
        break;
    default: /* CLUSTER_STATUS, CLUSTER_GROUPS */
        msgpack_pack_array(pk, 0);
        break;
    }
}

void wire_node_pack_reply(msgpack_packer *pk, const struct wire_msg *m)
{
    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_PUT:
    case WIRE_META_KV_REMOVE:
        msgpack_pack_array(pk, 3);
        msgpack_pack_uint64(pk, m->u.meta_write_rep.version);
        msgpack_pack_uint64(pk, m->u.meta_write_rep.id);
        msgpack_pack_uint64(pk, m->u.meta_write_rep.revision);
        break;
    case WIRE_META_GET:
        msgpack_pack_array(pk, 2);
        wire_pack_bin(pk, m->u.meta_get_rep.record, m->u.meta_get_rep.len, 0);
        msgpack_pack_uint64(pk, m->u.meta_get_rep.revision);
        break;
    case WIRE_META_KV_GET:
        msgpack_pack_array(pk, 3);
        wire_pack_bin(pk, m->u.meta_value_rep.value, m->u.meta_value_rep.len, 0);
        msgpack_pack_uint64(pk, m->u.meta_value_rep.version);
        msgpack_pack_uint64(pk, m->u.meta_value_rep.revision);
        break;
    case WIRE_META_LIST: {
        const struct wire_meta_list_rep *r = &m->u.meta_list_rep;
        msgpack_pack_array(pk, 3);
        msgpack_pack_array(pk, (uint32_t)r->count);
        for (size_t i = 0; i < r->count; i++)
            wire_pack_str(pk, r->names[i]);
        wire_pack_bool(pk, r->more);
        msgpack_pack_uint64(pk, r->revision);
        break;
    }
    case WIRE_META_KV_LIST: {
        const struct wire_meta_kv_list_rep *r = &m->u.meta_kv_list_rep;
        msgpack_pack_array(pk, 3);
        msgpack_pack_array(pk, (uint32_t)r->count);
        for (size_t i = 0; i < r->count; i++) {
            msgpack_pack_array(pk, 3);
            wire_pack_str(pk, r->items[i].key);
            wire_pack_bin(pk, r->items[i].value, r->items[i].len, 0);
            msgpack_pack_uint64(pk, r->items[i].version);
        }
        wire_pack_bool(pk, r->more);
        msgpack_pack_uint64(pk, r->revision);
        break;
    }
    case WIRE_META_REVISION:
        msgpack_pack_array(pk, 1);
        msgpack_pack_uint64(pk, m->u.meta_revision_rep.revision);
        break;
    case WIRE_CLUSTER_STATUS: {
        const struct wire_cluster_status_rep *r = &m->u.cluster_status_rep;
        msgpack_pack_array(pk, 9);
        msgpack_pack_uint64(pk, r->id);
        msgpack_pack_uint32(pk, r->state);
        msgpack_pack_uint64(pk, r->leader_id);
        wire_pack_str(pk, r->leader_address);
        msgpack_pack_uint64(pk, r->term);
        msgpack_pack_uint64(pk, r->commit_index);
        msgpack_pack_uint64(pk, r->applied_index);
        msgpack_pack_uint64(pk, r->revision);
        msgpack_pack_array(pk, (uint32_t)r->nmembers);
        for (size_t i = 0; i < r->nmembers; i++) {
            msgpack_pack_array(pk, 4);
            msgpack_pack_uint64(pk, r->members[i].id);
            wire_pack_str(pk, r->members[i].raft_address);
            wire_pack_str(pk, r->members[i].listen_address);
            msgpack_pack_uint32(pk, r->members[i].role);
        }
        break;
    }
    case WIRE_CLUSTER_GROUPS:
        wire_groups_pack_reply(pk, m);
        break;
    default: /* NODE_JOIN, NODE_REMOVE */
        msgpack_pack_array(pk, 0);
        break;
    }
}

/* ---------------------------------------------------------------- decoding */

static int dec_request(struct wire_dec *d, struct wire_msg *m, const msgpack_object *body)
{
    const msgpack_object *b;
    int rv;

    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
        rv = wire_dec_array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = wire_dec_bin(d, &b[0], "record", WIRE_MAX_META_RECORD,
                              &m->u.meta_record.record, &m->u.meta_record.len);
        return rv;
    case WIRE_META_GET:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_GET:
    case WIRE_META_KV_REMOVE:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = wire_dec_str(d, &b[0], "key", WIRE_MAX_META_KEY, &m->u.meta_key.key);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[1], "version", &m->u.meta_key.version);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "min_revision", &m->u.meta_key.min_revision);
        return rv;
    case WIRE_META_KV_PUT:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = wire_dec_str(d, &b[0], "key", WIRE_MAX_META_KEY, &m->u.meta_kv_put.key);
        if (rv == 0)
            rv = wire_dec_bin(d, &b[1], "value", WIRE_MAX_META_VALUE,
                              &m->u.meta_kv_put.value, &m->u.meta_kv_put.len);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "version", &m->u.meta_kv_put.version);
        return rv;
    case WIRE_META_LIST:
    case WIRE_META_KV_LIST:
        rv = wire_dec_array(d, body, "body", 4, &b);
        if (rv == 0)
            rv = wire_dec_str(d, &b[0], "prefix", WIRE_MAX_META_KEY,
                              &m->u.meta_list.prefix);
        if (rv == 0)
            rv = wire_dec_str(d, &b[1], "start_after", WIRE_MAX_META_KEY,
                              &m->u.meta_list.start_after);
        if (rv == 0)
            rv = wire_dec_u32(d, &b[2], "limit", &m->u.meta_list.limit);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[3], "min_revision", &m->u.meta_list.min_revision);
        return rv;
    case WIRE_META_REVISION:
        rv = wire_dec_array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = wire_dec_bool(d, &b[0], "barrier", &m->u.meta_revision.barrier);
        return rv;
    case WIRE_NODE_JOIN:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "id", &m->u.node_join.id);
        if (rv == 0)
            rv = wire_dec_str(d, &b[1], "raft_address", WIRE_MAX_ADDRESS,
                              &m->u.node_join.raft_address);
        if (rv == 0)
            rv = wire_dec_str(d, &b[2], "listen_address", WIRE_MAX_ADDRESS,
                              &m->u.node_join.listen_address);
        return rv;
    case WIRE_NODE_REMOVE:
        rv = wire_dec_array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "id", &m->u.node_remove.id);
        return rv;
    case WIRE_CLUSTER_STATUS:
    case WIRE_CLUSTER_GROUPS:
        return wire_dec_array(d, body, "body", 0, &b);
    default:
        return wire_fail(d->errmsg, DLOG_EPROTO, "type 0x%02x is not a request",
                         (unsigned)m->type);
    }
}

int wire_node_decode_request(struct wire_dec *d, struct wire_msg *m,
                             const msgpack_object *body)
{
    return dec_request(d, m, body);
}

static int dec_names(struct wire_dec *d, const msgpack_object *o,
                     struct wire_meta_list_rep *r)
{
    const msgpack_object *items;
    const char **names;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "names", WIRE_MAX_LIST, &items, &n);

    if (rv != 0)
        return rv;
    names = wire_dec_alloc(d, n * sizeof *names);
    if (names == NULL)
        return DLOG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        rv = wire_dec_str(d, &items[i], "name", WIRE_MAX_NAME, &names[i]);
        if (rv != 0)
            return wire_dec_wrap(d, rv, "names");
    }
    r->names = names;
    r->count = n;
    return 0;
}

static int dec_kvs(struct wire_dec *d, const msgpack_object *o,
                   struct wire_meta_kv_list_rep *r)
{
    const msgpack_object *items, *f;
    struct wire_kv *kv;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "items", WIRE_MAX_LIST, &items, &n);

    if (rv != 0)
        return rv;
    kv = wire_dec_alloc(d, n * sizeof *kv);
    if (kv == NULL)
        return DLOG_ENOMEM;
    memset(kv, 0, n * sizeof *kv);
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = wire_dec_array(d, &items[i], "item", 3, &f);
        if (rv == 0)
            rv = wire_dec_str(d, &f[0], "key", WIRE_MAX_META_KEY, &kv[i].key);
        if (rv == 0)
            rv = wire_dec_bin(d, &f[1], "value", WIRE_MAX_META_VALUE, &kv[i].value,
                              &kv[i].len);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[2], "version", &kv[i].version);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "items");
    r->items = kv;
    r->count = n;
    return 0;
}

static int dec_members(struct wire_dec *d, const msgpack_object *o,
                       struct wire_cluster_status_rep *r)
{
    const msgpack_object *items, *f;
    struct wire_member *mb;
    size_t n = 0;
    int rv = wire_dec_list(d, o, "members", WIRE_MAX_MEMBERS, &items, &n);

    if (rv != 0)
        return rv;
    mb = wire_dec_alloc(d, n * sizeof *mb);
    if (mb == NULL)
        return DLOG_ENOMEM;
    memset(mb, 0, n * sizeof *mb);
    for (size_t i = 0; i < n && rv == 0; i++) {
        rv = wire_dec_array(d, &items[i], "member", 4, &f);
        if (rv == 0)
            rv = wire_dec_u64(d, &f[0], "id", &mb[i].id);
        if (rv == 0)
            rv = wire_dec_str(d, &f[1], "raft_address", WIRE_MAX_ADDRESS,
                              &mb[i].raft_address);
        if (rv == 0)
            rv = wire_dec_str(d, &f[2], "listen_address", WIRE_MAX_ADDRESS,
                              &mb[i].listen_address);
        if (rv == 0)
            rv = wire_dec_u32(d, &f[3], "role", &mb[i].role);
    }
    if (rv != 0)
        return wire_dec_wrap(d, rv, "members");
    r->members = mb;
    r->nmembers = n;
    return 0;
}

int wire_node_decode_reply(struct wire_dec *d, struct wire_msg *m,
                           const msgpack_object *body)
{
    const msgpack_object *b;
    int rv;

    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_PUT:
    case WIRE_META_KV_REMOVE:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "version", &m->u.meta_write_rep.version);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[1], "id", &m->u.meta_write_rep.id);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "revision", &m->u.meta_write_rep.revision);
        return rv;
    case WIRE_META_GET:
        rv = wire_dec_array(d, body, "body", 2, &b);
        if (rv == 0)
            rv = wire_dec_bin(d, &b[0], "record", WIRE_MAX_META_RECORD,
                              &m->u.meta_get_rep.record, &m->u.meta_get_rep.len);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[1], "revision", &m->u.meta_get_rep.revision);
        return rv;
    case WIRE_META_KV_GET:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = wire_dec_bin(d, &b[0], "value", WIRE_MAX_META_VALUE,
                              &m->u.meta_value_rep.value, &m->u.meta_value_rep.len);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[1], "version", &m->u.meta_value_rep.version);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "revision", &m->u.meta_value_rep.revision);
        return rv;
    case WIRE_META_LIST:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = dec_names(d, &b[0], &m->u.meta_list_rep);
        if (rv == 0)
            rv = wire_dec_bool(d, &b[1], "more", &m->u.meta_list_rep.more);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "revision", &m->u.meta_list_rep.revision);
        return rv;
    case WIRE_META_KV_LIST:
        rv = wire_dec_array(d, body, "body", 3, &b);
        if (rv == 0)
            rv = dec_kvs(d, &b[0], &m->u.meta_kv_list_rep);
        if (rv == 0)
            rv = wire_dec_bool(d, &b[1], "more", &m->u.meta_kv_list_rep.more);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "revision", &m->u.meta_kv_list_rep.revision);
        return rv;
    case WIRE_META_REVISION:
        rv = wire_dec_array(d, body, "body", 1, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "revision", &m->u.meta_revision_rep.revision);
        return rv;
    case WIRE_CLUSTER_STATUS: {
        struct wire_cluster_status_rep *r = &m->u.cluster_status_rep;
        rv = wire_dec_array(d, body, "body", 9, &b);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[0], "id", &r->id);
        if (rv == 0)
            rv = wire_dec_u32(d, &b[1], "state", &r->state);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[2], "leader_id", &r->leader_id);
        if (rv == 0)
            rv = wire_dec_str(d, &b[3], "leader_address", WIRE_MAX_ADDRESS,
                              &r->leader_address);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[4], "term", &r->term);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[5], "commit_index", &r->commit_index);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[6], "applied_index", &r->applied_index);
        if (rv == 0)
            rv = wire_dec_u64(d, &b[7], "revision", &r->revision);
        if (rv == 0)
            rv = dec_members(d, &b[8], r);
        return rv;
    }
    case WIRE_CLUSTER_GROUPS:
        return wire_groups_decode_reply(d, m, body);
    default: /* NODE_JOIN, NODE_REMOVE: empty */
        return wire_dec_array(d, body, "body", 0, &b);
    }
}

/* ---------------------------------------------------------------- checking */

static int blob(char *errmsg, const char *field, const void *p, size_t len, size_t min,
                size_t max)
{
    if (len < min || len > max)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: %zu bytes, expected %zu..%zu", field,
                         len, min, max);
    if (p == NULL && len > 0)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: NULL with length %zu", field, len);
    return 0;
}

/* "host:port", or "" when empty_ok. */
static int address(char *errmsg, const char *field, const char *s, int empty_ok)
{
    if (s == NULL)
        return wire_fail(errmsg, DLOG_EINVAL, "%s: missing", field);
    if (empty_ok && s[0] == '\0')
        return 0;
    if (!wire_address_ok(s, strnlen(s, WIRE_MAX_ADDRESS + 1)))
        return wire_fail(errmsg, DLOG_EINVAL, "%s: expected \"host:port\"", field);
    return 0;
}

int wire_node_check_request(const struct wire_msg *m, char *errmsg)
{
    int rv;

    switch (m->type) {
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
        return blob(errmsg, "record", m->u.meta_record.record, m->u.meta_record.len, 1,
                    WIRE_MAX_META_RECORD);
    case WIRE_META_GET:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_GET:
    case WIRE_META_KV_REMOVE:
        return wire_check_text(errmsg, "key", m->u.meta_key.key, 1, WIRE_MAX_META_KEY);
    case WIRE_META_KV_PUT:
        rv = wire_check_text(errmsg, "key", m->u.meta_kv_put.key, 1, WIRE_MAX_META_KEY);
        if (rv == 0)
            rv = blob(errmsg, "value", m->u.meta_kv_put.value, m->u.meta_kv_put.len, 0,
                      WIRE_MAX_META_VALUE);
        return rv;
    case WIRE_META_LIST:
    case WIRE_META_KV_LIST:
        rv = wire_check_text(errmsg, "prefix", m->u.meta_list.prefix, 0,
                             WIRE_MAX_META_KEY);
        if (rv == 0)
            rv = wire_check_text(errmsg, "start_after", m->u.meta_list.start_after, 0,
                                 WIRE_MAX_META_KEY);
        if (rv == 0 && (m->u.meta_list.limit < 1 || m->u.meta_list.limit > WIRE_MAX_LIST))
            rv = wire_fail(errmsg, DLOG_EINVAL, "limit: %u is out of range 1..%d",
                           (unsigned)m->u.meta_list.limit, WIRE_MAX_LIST);
        return rv;
    case WIRE_META_REVISION:
        return m->u.meta_revision.barrier == 0 || m->u.meta_revision.barrier == 1
                   ? 0
                   : wire_fail(errmsg, DLOG_EINVAL, "barrier: must be 0 or 1");
    case WIRE_NODE_JOIN:
        rv = m->u.node_join.id == 0 ? wire_fail(errmsg, DLOG_EINVAL, "id: must be >= 1")
                                    : 0;
        if (rv == 0)
            rv = address(errmsg, "raft_address", m->u.node_join.raft_address, 0);
        if (rv == 0)
            rv = address(errmsg, "listen_address", m->u.node_join.listen_address, 0);
        return rv;
    case WIRE_NODE_REMOVE:
        return m->u.node_remove.id == 0
                   ? wire_fail(errmsg, DLOG_EINVAL, "id: must be >= 1")
                   : 0;
    case WIRE_CLUSTER_STATUS:
    case WIRE_CLUSTER_GROUPS:
        return 0;
    default:
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x is not a request", m->type);
    }
}

int wire_node_check_reply(const struct wire_msg *m, char *errmsg)
{
    int rv = 0;

    switch (m->type) {
    case WIRE_META_GET:
        return blob(errmsg, "record", m->u.meta_get_rep.record, m->u.meta_get_rep.len, 1,
                    WIRE_MAX_META_RECORD);
    case WIRE_META_KV_GET:
        return blob(errmsg, "value", m->u.meta_value_rep.value, m->u.meta_value_rep.len,
                    0, WIRE_MAX_META_VALUE);
    case WIRE_META_LIST: {
        const struct wire_meta_list_rep *r = &m->u.meta_list_rep;
        if (r->count > WIRE_MAX_LIST || (r->names == NULL && r->count > 0))
            return wire_fail(errmsg, DLOG_EINVAL, "names: %zu, at most %d", r->count,
                             WIRE_MAX_LIST);
        for (size_t i = 0; rv == 0 && i < r->count; i++)
            rv = wire_check_text(errmsg, "names[]", r->names[i], 1, WIRE_MAX_NAME);
        return rv;
    }
    case WIRE_META_KV_LIST: {
        const struct wire_meta_kv_list_rep *r = &m->u.meta_kv_list_rep;
        if (r->count > WIRE_MAX_LIST || (r->items == NULL && r->count > 0))
            return wire_fail(errmsg, DLOG_EINVAL, "items: %zu, at most %d", r->count,
                             WIRE_MAX_LIST);
        for (size_t i = 0; rv == 0 && i < r->count; i++) {
            rv = wire_check_text(errmsg, "items[].key", r->items[i].key, 1,
                                 WIRE_MAX_META_KEY);
            if (rv == 0)
                rv = blob(errmsg, "items[].value", r->items[i].value, r->items[i].len, 0,
                          WIRE_MAX_META_VALUE);
        }
        return rv;
    }
    case WIRE_CLUSTER_STATUS: {
        const struct wire_cluster_status_rep *r = &m->u.cluster_status_rep;
        if (r->state > 3)
            return wire_fail(errmsg, DLOG_EINVAL, "state: %u is not 0..3",
                             (unsigned)r->state);
        rv = address(errmsg, "leader_address", r->leader_address, 1);
        if (rv == 0 &&
            (r->nmembers > WIRE_MAX_MEMBERS || (r->members == NULL && r->nmembers > 0)))
            rv = wire_fail(errmsg, DLOG_EINVAL, "members: %zu, at most %d", r->nmembers,
                           WIRE_MAX_MEMBERS);
        for (size_t i = 0; rv == 0 && i < r->nmembers; i++) {
            rv = address(errmsg, "members[].raft_address", r->members[i].raft_address, 0);
            if (rv == 0)
                rv = address(errmsg, "members[].listen_address",
                             r->members[i].listen_address, 1);
            if (rv == 0 && r->members[i].role > 2)
                rv = wire_fail(errmsg, DLOG_EINVAL, "members[].role: %u is not 0..2",
                               (unsigned)r->members[i].role);
        }
        return rv;
    }
    case WIRE_CLUSTER_GROUPS:
        return wire_groups_check_reply(m, errmsg);
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_PUT:
    case WIRE_META_KV_REMOVE:
    case WIRE_META_REVISION:
    case WIRE_NODE_JOIN:
    case WIRE_NODE_REMOVE:
        return 0;
    default:
        return wire_fail(errmsg, DLOG_EINVAL, "type 0x%02x has no success reply",
                         m->type);
    }
}
