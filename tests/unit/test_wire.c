/*
 * test-wire: the wire protocol (src/wire). Round trips of every message,
 * malformed frames and the errors they get, the encoder's own checks, the
 * hex examples of docs/protocol.md and docs-zh/protocol.md, and single-byte
 * mutations of every sample frame.
 *
 * Usage: test-wire               run the Check suite
 *        test-wire --corpus DIR  write the sample frames into DIR as files
 *                                (the seed corpus of tests/fuzz/fuzz_wire.c)
 * The spec is found at $top_srcdir/docs/protocol.md, else docs/protocol.md
 * or ../docs/protocol.md from the current directory.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/err.h>

#include "base/buf.h"
#include "base/errmsg.h"
#include "wire/wire.h"

/* ----------------------------------------------------------------- samples */

static const struct dlog_dlsn D100 = {1, 0, 0};
static const struct dlog_dlsn D123 = {1, 2, 3};

static uint8_t big_payload[100 * 1024];

static struct dlog_record write_recs[3] = {
    {.payload = "hello", .len = 5, .key = "user-1", .key_len = 6, .txid = 10},
    {.payload = "", .len = 0, .txid = 11},
    {.payload = big_payload,
     .len = sizeof big_payload,
     .key = "k",
     .key_len = 1,
     .txid = 12},
};

static struct dlog_record read_recs[2] = {
    {.payload = "a", .len = 1, .txid = 1, .dlsn = {1, 0, 0}},
    {.payload = "bcd",
     .len = 3,
     .key = "key",
     .key_len = 3,
     .txid = 2,
     .dlsn = {1, 0, 1}},
};

static const char *const list_names[] = {"a", "orders", "shop/eu/orders"};

static struct dlog_segment_info segs[2] = {
    {.seq = 1,
     .state = DLOG_SEGMENT_SEALED,
     .epoch = 1,
     .first = {1, 0, 0},
     .last = {1, 9, 3},
     .first_txid = 1,
     .last_txid = 40,
     .records = 40,
     .entries = 10,
     .bytes = 4096,
     .created_ms = 1700000000000ULL,
     .sealed_ms = 1700000060000ULL},
    {.seq = 2,
     .state = DLOG_SEGMENT_OPEN,
     .epoch = 2,
     .first = {2, 0, 0},
     .last = {2, 0, 0},
     .first_txid = 41,
     .last_txid = 41,
     .records = 1,
     .entries = 1,
     .bytes = 100,
     .created_ms = 1700000060001ULL},
};

static struct dlog_stream_config sample_config(void)
{
    struct dlog_stream_config c;

    memset(&c, 0, sizeof c);
    c.version = DLOG_STREAM_CONFIG_VERSION;
    c.segment_max_bytes = 256ULL << 20;
    c.segment_max_age_ms = 3600000;
    c.segment_max_records = 1000000;
    c.retention_age_ms = 7ULL * 86400000;
    c.retention_bytes = 1ULL << 40;
    c.compression = DLOG_COMPRESS_ZSTD;
    c.max_record_bytes = 64ULL << 20;
    c.auto_txid = 1;
    c.limits.version = DLOG_LIMITS_VERSION;
    c.limits.records_per_sec = 5000;
    c.limits.bytes_per_sec = 10ULL << 20;
    c.limits.soft_records_per_sec = 4000;
    c.limits.burst_ms = 200;
    c.limits.max_wait_ms = 50;
    c.limits.quota_bytes = 1ULL << 30;
    c.limits.quota_policy = DLOG_QUOTA_TRUNCATE;
    return c;
}

static struct dlog_proxy_stats sample_pstats[2] = {
    {"p1", 120, 2000, 4 << 20, 2100, 4200000, 1990, 3980000, 10000, 500, 3, 7},
    {"proxy-two:7001", 40, 3000, 6 << 20, 9000, 18000000, 3000, 6000000, 20000, 9000, 0,
     0},
};

static struct wire_msg req(uint32_t type, uint64_t id)
{
    struct wire_msg m;

    memset(&m, 0, sizeof m);
    m.version = 1;
    m.type = type;
    m.request_id = id;
    return m;
}

static struct wire_msg rep(uint32_t type, uint64_t id, int status)
{
    struct wire_msg m = req(type, id);

    m.is_reply = 1;
    m.status = status;
    return m;
}

#define MAX_SAMPLES 200

/* Fills out[] with valid messages covering every type and shape; returns
 * how many. They point at static data. */
static size_t samples(struct wire_msg *out)
{
    size_t n = 0;
    struct wire_msg m;

    memset(big_payload, 0xab, sizeof big_payload);

    /* connection */
    m = req(WIRE_HELLO, 1);
    m.u.hello = (struct wire_hello){1, 1, "dlogctl 0.1.0", NULL, 0};
    out[n++] = m;
    m.u.hello = (struct wire_hello){1, 3, "", "secret-token", 12};
    out[n++] = m;
    m = rep(WIRE_HELLO, 1, 0);
    m.u.hello_rep =
        (struct wire_hello_rep){1, "dlogd 0.1.0 node-1", WIRE_MAX_FRAME_DEFAULT};
    out[n++] = m;
    m = rep(WIRE_HELLO, 1, DLOG_EPROTO);
    m.err = (struct wire_error){"no common protocol version", NULL, 1, 1};
    out[n++] = m;
    m = req(WIRE_PING, 2);
    m.u.ping.nonce = UINT64_MAX;
    out[n++] = m;
    m = rep(WIRE_PING, 2, 0);
    m.u.ping.nonce = 0;
    out[n++] = m;

    /* streams */
    m = req(WIRE_STREAM_CREATE, 3);
    m.u.create.stream = "orders";
    out[n++] = m;
    m.u.create.stream = "shop/eu/orders";
    m.u.create.has_config = 1;
    m.u.create.config = sample_config();
    out[n++] = m;
    out[n++] = rep(WIRE_STREAM_CREATE, 3, 0);
    m = rep(WIRE_STREAM_CREATE, 3, DLOG_EEXIST);
    m.err.message = "stream orders already exists";
    out[n++] = m;
    m = req(WIRE_STREAM_DELETE, 4);
    m.u.del.stream = "orders";
    out[n++] = m;
    out[n++] = rep(WIRE_STREAM_DELETE, 4, 0);
    m = req(WIRE_STREAM_LIST, 5);
    m.u.list = (struct wire_list){"", WIRE_MAX_LIST};
    out[n++] = m;
    m.u.list = (struct wire_list){"orders", 2};
    out[n++] = m;
    m = rep(WIRE_STREAM_LIST, 5, 0);
    m.u.list_rep = (struct wire_list_rep){list_names, 3, 1};
    out[n++] = m;
    m.u.list_rep = (struct wire_list_rep){NULL, 0, 0};
    out[n++] = m;
    m = req(WIRE_STREAM_DESCRIBE, 6);
    m.u.describe = (struct wire_describe){"orders", 0, 100};
    out[n++] = m;
    m = rep(WIRE_STREAM_DESCRIBE, 6, 0);
    snprintf(m.u.describe_rep.info.name, sizeof m.u.describe_rep.info.name, "orders");
    m.u.describe_rep.info.id = 77;
    m.u.describe_rep.info.config = sample_config();
    m.u.describe_rep.info.epoch = 2;
    m.u.describe_rep.info.truncated = (struct dlog_dlsn){1, 0, 0};
    m.u.describe_rep.info.first = (struct dlog_dlsn){1, 0, 0};
    m.u.describe_rep.info.last = (struct dlog_dlsn){2, 0, 0};
    m.u.describe_rep.info.last_txid = 41;
    m.u.describe_rep.info.records = 41;
    m.u.describe_rep.info.bytes = 4196;
    m.u.describe_rep.info.created_ms = 1700000000000ULL;
    m.u.describe_rep.info.nsegments = 2;
    m.u.describe_rep.info.segments = segs;
    m.u.describe_rep.total_segments = 5;
    m.u.describe_rep.more = 1;
    out[n++] = m;
    m.u.describe_rep.info.nsegments = 0;
    m.u.describe_rep.info.segments = NULL;
    m.u.describe_rep.more = 0;
    out[n++] = m;
    m = req(WIRE_STREAM_TRUNCATE, 7);
    m.u.truncate = (struct wire_truncate){"orders", D123};
    out[n++] = m;
    out[n++] = rep(WIRE_STREAM_TRUNCATE, 7, 0);
    m = req(WIRE_STREAM_RETENTION, 8);
    m.u.retention.stream = "orders";
    out[n++] = m;
    m = rep(WIRE_STREAM_RETENTION, 8, 0);
    m.u.retention_rep.deleted = 3;
    out[n++] = m;

    /* limits */
    m = req(WIRE_LIMITS_SET, 30);
    m.u.limits_set.stream = "orders";
    m.u.limits_set.limits = sample_config().limits;
    out[n++] = m;
    m.u.limits_set.stream = ""; /* the namespace */
    out[n++] = m;
    out[n++] = rep(WIRE_LIMITS_SET, 30, 0);
    m = req(WIRE_LIMITS_GET, 31);
    m.u.limits_req.stream = "orders";
    out[n++] = m;
    m = rep(WIRE_LIMITS_GET, 31, 0);
    m.u.limits_rep.limits = sample_config().limits;
    out[n++] = m;
    m = req(WIRE_LIMITS_STATS, 32);
    m.u.limits_req.stream = "";
    out[n++] = m;
    m = rep(WIRE_LIMITS_STATS, 32, 0);
    m.u.limits_stats_rep.stats.limits = sample_config().limits;
    m.u.limits_stats_rep.stats.used_bytes = 123456789;
    m.u.limits_stats_rep.stats.total = sample_pstats[0];
    snprintf(m.u.limits_stats_rep.stats.total.proxy, 64, "total");
    m.u.limits_stats_rep.stats.nproxies = 2;
    m.u.limits_stats_rep.stats.proxies = sample_pstats;
    out[n++] = m;

    /* writers */
    m = req(WIRE_WRITER_OPEN, 9);
    m.u.writer_open = (struct wire_writer_open){"orders", DLOG_WRITER_EXCLUSIVE};
    out[n++] = m;
    m.u.writer_open.mode = DLOG_WRITER_SHARED;
    out[n++] = m;
    m = rep(WIRE_WRITER_OPEN, 9, 0);
    m.u.writer_open_rep = (struct wire_writer_open_rep){4, 41, sample_config()};
    out[n++] = m;
    m = req(WIRE_WRITE, 10);
    m.u.write = (struct wire_write){"orders", 4, 0, 0, write_recs, 2};
    out[n++] = m;
    m.u.write = (struct wire_write){"orders", 4, 0xfeedfacecafebeefULL, 1, write_recs, 2};
    out[n++] = m;
    m.u.write = (struct wire_write){"orders", 5, 1, UINT64_MAX, write_recs, 3};
    out[n++] = m;
    m = rep(WIRE_WRITE, 10, 0);
    m.u.write_rep = (struct wire_write_rep){D100, D123, 10, 0};
    out[n++] = m;
    m.u.write_rep.duplicate = 1;
    out[n++] = m;
    m = rep(WIRE_WRITE, 10, DLOG_EFENCED);
    m.err.message = "epoch 4 is fenced by epoch 5";
    out[n++] = m;
    m = rep(WIRE_WRITE, 10, DLOG_ENOTOWNER);
    m.err = (struct wire_error){"owned by proxy-2", "10.0.0.2:7000", 0, 0};
    out[n++] = m;
    m = rep(WIRE_WRITE, 10, DLOG_ENOTLEADER);
    m.err = (struct wire_error){"leader is node-3", "[::1]:7001", 0, 0};
    out[n++] = m;
    m = req(WIRE_WRITER_FLUSH, 11);
    m.u.flush = (struct wire_writer_req){"orders", 4};
    out[n++] = m;
    out[n++] = rep(WIRE_WRITER_FLUSH, 11, 0);
    m = req(WIRE_WRITER_CLOSE, 12);
    m.u.close = (struct wire_writer_req){"orders", 4};
    out[n++] = m;
    out[n++] = rep(WIRE_WRITER_CLOSE, 12, 0);
    m = req(WIRE_HEARTBEAT, 13);
    m.u.heartbeat = (struct wire_writer_req){"orders", 4};
    out[n++] = m;
    m = rep(WIRE_HEARTBEAT, 13, 0);
    m.u.heartbeat_rep = (struct wire_heartbeat_rep){4, D123, 12};
    out[n++] = m;
    m = req(WIRE_RELEASE, 14);
    m.u.release.stream = "orders";
    out[n++] = m;
    out[n++] = rep(WIRE_RELEASE, 14, 0);

    /* readers */
    for (uint32_t k = DLOG_START_HEAD; k <= DLOG_START_TXID; k++) {
        m = req(WIRE_READER_OPEN, 15 + k);
        m.u.reader_open =
            (struct wire_reader_open){"orders", k, k == DLOG_START_DLSN ? D123 : D100,
                                      k == DLOG_START_TXID ? 1000 : 0};
        out[n++] = m;
    }
    m = rep(WIRE_READER_OPEN, 15, 0);
    m.u.reader_open_rep = (struct wire_reader_open_rep){D123, 1000};
    out[n++] = m;
    m = req(WIRE_READ, 20);
    m.u.read =
        (struct wire_read){"orders", D100, 0, 100, 1 << 20, 5000, NULL, 0, DLOG_DLSN_MAX};
    out[n++] = m;
    m.u.read = (struct wire_read){"orders",         D123,       7,
                                  WIRE_MAX_RECORDS, UINT32_MAX, WIRE_MAX_WAIT_MS,
                                  "user-",          5,          D123};
    out[n++] = m;
    m = rep(WIRE_READ, 20, 0);
    m.u.read_rep = (struct wire_read_rep){read_recs, 2, {1, 0, 2}};
    out[n++] = m;
    m.u.read_rep = (struct wire_read_rep){NULL, 0, {1, 5, 0}};
    out[n++] = m;
    m = rep(WIRE_READ, 20, DLOG_ETIMEDOUT);
    m.err.message = "no record within 5000 ms";
    out[n++] = m;
    m = rep(WIRE_READ, 20, DLOG_ETRUNCATED);
    m.err.message = "position 1/0/0 is below the truncation point 1/2/3";
    out[n++] = m;

    /* metadata node calls */
    m = req(WIRE_META_CREATE, 40);
    m.u.meta_record = (struct wire_meta_record){"\x01record-bytes", 13};
    out[n++] = m;
    m = rep(WIRE_META_CREATE, 40, 0);
    m.u.meta_write_rep = (struct wire_meta_write_rep){1, 77, 1234};
    out[n++] = m;
    m = rep(WIRE_META_CREATE, 40, DLOG_ENOTLEADER);
    m.err = (struct wire_error){"node 2 leads", "127.0.0.1:7102", 0, 0};
    out[n++] = m;
    m = req(WIRE_META_UPDATE, 41);
    m.u.meta_record = (struct wire_meta_record){big_payload, 300};
    out[n++] = m;
    m = rep(WIRE_META_UPDATE, 41, 0);
    m.u.meta_write_rep = (struct wire_meta_write_rep){UINT64_MAX, 0, 0};
    out[n++] = m;
    m = req(WIRE_META_GET, 42);
    m.u.meta_key = (struct wire_meta_key){"orders", 0, 99};
    out[n++] = m;
    m = rep(WIRE_META_GET, 42, 0);
    m.u.meta_get_rep = (struct wire_meta_get_rep){"rec", 3, 100};
    out[n++] = m;
    m = req(WIRE_META_REMOVE, 43);
    m.u.meta_key = (struct wire_meta_key){"orders", 3, 0};
    out[n++] = m;
    m = rep(WIRE_META_REMOVE, 43, 0);
    m.u.meta_write_rep = (struct wire_meta_write_rep){0, 0, 101};
    out[n++] = m;
    m = req(WIRE_META_KV_GET, 44);
    m.u.meta_key = (struct wire_meta_key){"ns/limits", 0, 0};
    out[n++] = m;
    m = rep(WIRE_META_KV_GET, 44, 0);
    m.u.meta_value_rep = (struct wire_meta_value_rep){"v", 1, 7, 101};
    out[n++] = m;
    m.u.meta_value_rep = (struct wire_meta_value_rep){NULL, 0, 1, 1};
    out[n++] = m;
    m = req(WIRE_META_KV_PUT, 45);
    m.u.meta_kv_put = (struct wire_meta_kv_put){"counter", "42", 2, 41};
    out[n++] = m;
    m.u.meta_kv_put = (struct wire_meta_kv_put){"empty", NULL, 0, UINT64_MAX};
    out[n++] = m;
    m = rep(WIRE_META_KV_PUT, 45, 0);
    m.u.meta_write_rep = (struct wire_meta_write_rep){42, 0, 102};
    out[n++] = m;
    m = rep(WIRE_META_KV_PUT, 45, DLOG_ECONFLICT);
    m.err.message = "counter: version 41 expected, 42 stored";
    out[n++] = m;
    m = req(WIRE_META_KV_REMOVE, 46);
    m.u.meta_key = (struct wire_meta_key){"counter", UINT64_MAX, 0};
    out[n++] = m;
    m = rep(WIRE_META_KV_REMOVE, 46, 0);
    m.u.meta_write_rep = (struct wire_meta_write_rep){0, 0, 103};
    out[n++] = m;
    m = req(WIRE_META_LIST, 47);
    m.u.meta_list = (struct wire_meta_list){"", "", WIRE_MAX_LIST, 0};
    out[n++] = m;
    m = rep(WIRE_META_LIST, 47, 0);
    m.u.meta_list_rep = (struct wire_meta_list_rep){list_names, 3, 1, 103};
    out[n++] = m;
    m = req(WIRE_META_KV_LIST, 48);
    m.u.meta_list = (struct wire_meta_list){"nodes/", "nodes/1", 100, 7};
    out[n++] = m;
    {
        static const struct wire_kv kvs[2] = {{"nodes/1", "127.0.0.1:7001", 14, 1},
                                              {"nodes/2", NULL, 0, 3}};
        m = rep(WIRE_META_KV_LIST, 48, 0);
        m.u.meta_kv_list_rep = (struct wire_meta_kv_list_rep){kvs, 2, 0, 9};
        out[n++] = m;
        m.u.meta_kv_list_rep = (struct wire_meta_kv_list_rep){NULL, 0, 0, 0};
        out[n++] = m;
    }
    m = req(WIRE_META_REVISION, 49);
    m.u.meta_revision.barrier = 1;
    out[n++] = m;
    m = rep(WIRE_META_REVISION, 49, 0);
    m.u.meta_revision_rep.revision = 104;
    out[n++] = m;
    m = req(WIRE_NODE_JOIN, 50);
    m.u.node_join = (struct wire_node_join){3, "127.0.0.1:9003", "127.0.0.1:7003"};
    out[n++] = m;
    out[n++] = rep(WIRE_NODE_JOIN, 50, 0);
    m = req(WIRE_NODE_REMOVE, 51);
    m.u.node_remove.id = 3;
    out[n++] = m;
    out[n++] = rep(WIRE_NODE_REMOVE, 51, 0);
    out[n++] = req(WIRE_CLUSTER_STATUS, 52);
    {
        static const struct wire_member members[3] = {
            {1, "127.0.0.1:9001", "127.0.0.1:7001", 1},
            {2, "127.0.0.1:9002", "127.0.0.1:7002", 1},
            {3, "127.0.0.1:9003", "", 2}};
        m = rep(WIRE_CLUSTER_STATUS, 52, 0);
        m.u.cluster_status_rep = (struct wire_cluster_status_rep){
            2, 1, 1, "127.0.0.1:7001", 5, 120, 119, 104, members, 3};
        out[n++] = m;
        m.u.cluster_status_rep =
            (struct wire_cluster_status_rep){1, 0, 0, "", 0, 0, 0, 0, NULL, 0};
        out[n++] = m;
    }
    out[n++] = req(WIRE_CLUSTER_GROUPS, 53);
    {
        static const struct wire_group_member gm[3] = {{1, 1}, {2, 1}, {3, 2}};
        static const struct wire_group_status gs[2] = {
            {0, 3, 2, 7, 130, 129, 4, 900, 123456, 65536, gm, 3},
            {2, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0}};
        m = rep(WIRE_CLUSTER_GROUPS, 53, 0);
        m.u.cluster_groups_rep = (struct wire_cluster_groups_rep){2, gs, 2};
        out[n++] = m;
        m.u.cluster_groups_rep = (struct wire_cluster_groups_rep){1, NULL, 0};
        out[n++] = m;
    }

    /* data groups' node calls */
    {
        static const char e0[] = "entry-0", e1[] = "entry-one";
        static const struct iovec ents[2] = {{(void *)e0, 7}, {(void *)e1, 9}};
        static const struct wire_seg_entry rents[2] = {{4, e0, 7}, {5, e1, 9}};
        static const uint64_t applied[2] = {120, 7};
        static const struct wire_seg_info info = {
            3, 1, 10, 12, 4096, 1, 12, 1700000000000, 9, 2};
        static const uint32_t types[] = {WIRE_SEG_OPEN, WIRE_SEG_APPEND,
                                         WIRE_SEG_INFO, WIRE_SEG_FENCE,
                                         WIRE_SEG_SEAL, WIRE_SEG_REMOVE};
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            m = req(types[i], 60 + i);
            m.u.seg = (struct wire_seg_req){.group = 1, .stream = 42, .seq = 3};
            if (types[i] != WIRE_SEG_REMOVE && types[i] != WIRE_SEG_INFO)
                m.u.seg.epoch = 2;
            if (types[i] == WIRE_SEG_OPEN)
                m.u.seg.start_txid = 99;
            if (types[i] == WIRE_SEG_APPEND) {
                m.u.seg.flags = 1;
                m.u.seg.entries = ents;
                m.u.seg.n = 2;
            }
            if (types[i] == WIRE_SEG_INFO)
                m.u.seg.min_applied = 118;
            out[n++] = m;
            m = rep(types[i], 60 + i, 0);
            m.u.seg_rep =
                (struct wire_seg_rep){121, types[i] == WIRE_SEG_APPEND ? 8 : 0,
                                      types[i] == WIRE_SEG_APPEND ? 11 : 0, info};
            out[n++] = m;
        }
        m = rep(WIRE_SEG_APPEND, 61, DLOG_ENOTLEADER);
        m.err.message = "node 2 leads data group 1";
        m.err.address = "127.0.0.1:7002";
        out[n++] = m;
        m = req(WIRE_SEG_READ, 70);
        m.u.seg = (struct wire_seg_req){.group = 0,
                                        .stream = 42,
                                        .seq = 3,
                                        .from = 4,
                                        .max_bytes = 1 << 20,
                                        .min_applied = 121};
        out[n++] = m;
        m = rep(WIRE_SEG_READ, 70, 0);
        m.u.seg_read_rep = (struct wire_seg_read_rep){122, rents, 2};
        out[n++] = m;
        m.u.seg_read_rep = (struct wire_seg_read_rep){122, NULL, 0};
        out[n++] = m;
        m = req(WIRE_SEG_WAIT, 71);
        m.u.seg_wait = (struct wire_seg_wait){applied, 2, 5000};
        out[n++] = m;
        m = rep(WIRE_SEG_WAIT, 71, 0);
        m.u.seg_wait_rep = (struct wire_seg_wait_rep){applied, 2};
        out[n++] = m;
        static const struct wire_dump_seg dsegs[2] = {
            {42, 3, info, {{0x77, 2, 5, 11}, {0x99, 1, 4, 9}}, 2},
            {43, 1, info, {{0}}, 0}};
        static const struct wire_dump_entry dents[2] = {{42, 3, 0, e0, 7},
                                                        {42, 3, 1, e1, 9}};
        m = req(WIRE_SEG_DUMP, 72);
        m.u.seg_dump = (struct wire_seg_dump){1, 0, 0, 0, 0, 0, 4 << 20, 118};
        out[n++] = m;
        m.u.seg_dump = (struct wire_seg_dump){1, 9, 3, 42, 3, 1, 4 << 20, 118};
        out[n++] = m;
        m = rep(WIRE_SEG_DUMP, 72, 0);
        m.u.seg_dump_rep = (struct wire_seg_dump_rep){
            9, 121, 0xfeedface12345678ULL, 2, 20, 4096, dsegs, 2, dents, 2, 0};
        out[n++] = m;
        m.u.seg_dump_rep =
            (struct wire_seg_dump_rep){0, 121, 1, 2, 20, 4096, NULL, 0, NULL, 0, 1};
        out[n++] = m;
        m = rep(WIRE_SEG_DUMP, 72, DLOG_ENOTFOUND);
        m.err.message = "no transfer session 9 here";
        out[n++] = m;
    }

    /* a connection-level error */
    m = rep(WIRE_ERROR, 0, DLOG_EPROTO);
    m.err.message = "envelope: expected array, got uint";
    out[n++] = m;
    if (n > MAX_SAMPLES) /* no ck_assert: --corpus runs this outside Check */
        abort();
    return n;
}

/* ------------------------------------------------------------- comparing */

static int str_eq(const char *a, const char *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return strcmp(a, b) == 0;
}

/* Byte fields: absent (NULL) and empty are the same on the wire. */
static int mem_eq(const void *a, size_t alen, const void *b, size_t blen)
{
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int dlsn_eq(struct dlog_dlsn a, struct dlog_dlsn b)
{
    return a.seg == b.seg && a.entry == b.entry && a.slot == b.slot;
}

static int config_eq(const struct dlog_stream_config *a,
                     const struct dlog_stream_config *b)
{
    return a->segment_max_bytes == b->segment_max_bytes &&
           a->segment_max_age_ms == b->segment_max_age_ms &&
           a->segment_max_records == b->segment_max_records &&
           a->retention_age_ms == b->retention_age_ms &&
           a->retention_bytes == b->retention_bytes && a->compression == b->compression &&
           a->max_record_bytes == b->max_record_bytes && a->auto_txid == b->auto_txid &&
           memcmp(&a->limits, &b->limits, sizeof a->limits) == 0;
}

static int pstats_eq(const struct dlog_proxy_stats *a, const struct dlog_proxy_stats *b)
{
    return memcmp(a, b, sizeof *a) == 0;
}

static int recs_eq(const struct dlog_record *a, const struct dlog_record *b, size_t n,
                   int with_dlsn)
{
    for (size_t i = 0; i < n; i++) {
        if (!mem_eq(a[i].payload, a[i].len, b[i].payload, b[i].len) ||
            !mem_eq(a[i].key, a[i].key_len, b[i].key, b[i].key_len) ||
            a[i].txid != b[i].txid || a[i].flags != b[i].flags ||
            (with_dlsn && !dlsn_eq(a[i].dlsn, b[i].dlsn)))
            return 0;
    }
    return 1;
}

static int seg_eq(const struct dlog_segment_info *a, const struct dlog_segment_info *b)
{
    return a->seq == b->seq && a->state == b->state && a->epoch == b->epoch &&
           dlsn_eq(a->first, b->first) && dlsn_eq(a->last, b->last) &&
           a->first_txid == b->first_txid && a->last_txid == b->last_txid &&
           a->records == b->records && a->entries == b->entries && a->bytes == b->bytes &&
           a->created_ms == b->created_ms && a->sealed_ms == b->sealed_ms;
}

/* Field by field: 1 if a and b are the same message. */
static int seg_info_eq(const struct wire_seg_info *a, const struct wire_seg_info *b)
{
    return a->fence_epoch == b->fence_epoch && a->sealed == b->sealed &&
           a->next_entry == b->next_entry && a->records == b->records &&
           a->bytes == b->bytes && a->first_txid == b->first_txid &&
           a->last_txid == b->last_txid && a->created_ms == b->created_ms &&
           a->last_rec_entry == b->last_rec_entry && a->last_rec_slot == b->last_rec_slot;
}

static int msg_eq(const struct wire_msg *a, const struct wire_msg *b)
{
    if (a->version != b->version || a->type != b->type || a->is_reply != b->is_reply ||
        a->request_id != b->request_id || a->status != b->status)
        return 0;
    if (a->is_reply && a->status != 0) {
        int versions = a->type == WIRE_HELLO && a->status == DLOG_EPROTO;
        return str_eq(a->err.message, b->err.message) &&
               str_eq(a->err.address, b->err.address) &&
               (!versions || (a->err.min_version == b->err.min_version &&
                              a->err.max_version == b->err.max_version));
    }
    if (!a->is_reply) {
        switch (a->type) {
        case WIRE_HELLO:
            return a->u.hello.min_version == b->u.hello.min_version &&
                   a->u.hello.max_version == b->u.hello.max_version &&
                   str_eq(a->u.hello.client_name, b->u.hello.client_name) &&
                   mem_eq(a->u.hello.token, a->u.hello.token_len, b->u.hello.token,
                          b->u.hello.token_len);
        case WIRE_PING:
            return a->u.ping.nonce == b->u.ping.nonce;
        case WIRE_STREAM_CREATE:
            return str_eq(a->u.create.stream, b->u.create.stream) &&
                   a->u.create.has_config == b->u.create.has_config &&
                   (!a->u.create.has_config ||
                    config_eq(&a->u.create.config, &b->u.create.config));
        case WIRE_STREAM_DELETE:
        case WIRE_STREAM_RETENTION:
        case WIRE_RELEASE:
            return str_eq(a->u.del.stream, b->u.del.stream);
        case WIRE_STREAM_LIST:
            return str_eq(a->u.list.start_after, b->u.list.start_after) &&
                   a->u.list.limit == b->u.list.limit;
        case WIRE_STREAM_DESCRIBE:
            return str_eq(a->u.describe.stream, b->u.describe.stream) &&
                   a->u.describe.seg_after == b->u.describe.seg_after &&
                   a->u.describe.max_segments == b->u.describe.max_segments;
        case WIRE_STREAM_TRUNCATE:
            return str_eq(a->u.truncate.stream, b->u.truncate.stream) &&
                   dlsn_eq(a->u.truncate.dlsn, b->u.truncate.dlsn);
        case WIRE_LIMITS_SET:
            return str_eq(a->u.limits_set.stream, b->u.limits_set.stream) &&
                   memcmp(&a->u.limits_set.limits, &b->u.limits_set.limits,
                          sizeof a->u.limits_set.limits) == 0;
        case WIRE_LIMITS_GET:
        case WIRE_LIMITS_STATS:
            return str_eq(a->u.limits_req.stream, b->u.limits_req.stream);
        case WIRE_WRITER_OPEN:
            return str_eq(a->u.writer_open.stream, b->u.writer_open.stream) &&
                   a->u.writer_open.mode == b->u.writer_open.mode;
        case WIRE_WRITE:
            return str_eq(a->u.write.stream, b->u.write.stream) &&
                   a->u.write.epoch == b->u.write.epoch &&
                   a->u.write.producer_id == b->u.write.producer_id &&
                   a->u.write.sequence == b->u.write.sequence &&
                   a->u.write.nrecs == b->u.write.nrecs &&
                   recs_eq(a->u.write.recs, b->u.write.recs, a->u.write.nrecs, 0);
        case WIRE_WRITER_FLUSH:
        case WIRE_WRITER_CLOSE:
        case WIRE_HEARTBEAT:
            return str_eq(a->u.flush.stream, b->u.flush.stream) &&
                   a->u.flush.epoch == b->u.flush.epoch;
        case WIRE_READER_OPEN:
            return str_eq(a->u.reader_open.stream, b->u.reader_open.stream) &&
                   a->u.reader_open.start == b->u.reader_open.start &&
                   dlsn_eq(a->u.reader_open.start_dlsn, b->u.reader_open.start_dlsn) &&
                   a->u.reader_open.start_txid == b->u.reader_open.start_txid;
        case WIRE_META_CREATE:
        case WIRE_META_UPDATE:
            return mem_eq(a->u.meta_record.record, a->u.meta_record.len,
                          b->u.meta_record.record, b->u.meta_record.len);
        case WIRE_META_GET:
        case WIRE_META_REMOVE:
        case WIRE_META_KV_GET:
        case WIRE_META_KV_REMOVE:
            return str_eq(a->u.meta_key.key, b->u.meta_key.key) &&
                   a->u.meta_key.version == b->u.meta_key.version &&
                   a->u.meta_key.min_revision == b->u.meta_key.min_revision;
        case WIRE_META_KV_PUT:
            return str_eq(a->u.meta_kv_put.key, b->u.meta_kv_put.key) &&
                   mem_eq(a->u.meta_kv_put.value, a->u.meta_kv_put.len,
                          b->u.meta_kv_put.value, b->u.meta_kv_put.len) &&
                   a->u.meta_kv_put.version == b->u.meta_kv_put.version;
        case WIRE_META_LIST:
        case WIRE_META_KV_LIST:
            return str_eq(a->u.meta_list.prefix, b->u.meta_list.prefix) &&
                   str_eq(a->u.meta_list.start_after, b->u.meta_list.start_after) &&
                   a->u.meta_list.limit == b->u.meta_list.limit &&
                   a->u.meta_list.min_revision == b->u.meta_list.min_revision;
        case WIRE_META_REVISION:
            return a->u.meta_revision.barrier == b->u.meta_revision.barrier;
        case WIRE_NODE_JOIN:
            return a->u.node_join.id == b->u.node_join.id &&
                   str_eq(a->u.node_join.raft_address, b->u.node_join.raft_address) &&
                   str_eq(a->u.node_join.listen_address, b->u.node_join.listen_address);
        case WIRE_NODE_REMOVE:
            return a->u.node_remove.id == b->u.node_remove.id;
        case WIRE_SEG_OPEN:
        case WIRE_SEG_APPEND:
        case WIRE_SEG_READ:
        case WIRE_SEG_INFO:
        case WIRE_SEG_FENCE:
        case WIRE_SEG_SEAL:
        case WIRE_SEG_REMOVE: {
            const struct wire_seg_req *x = &a->u.seg, *y = &b->u.seg;
            if (x->group != y->group || x->stream != y->stream || x->seq != y->seq ||
                x->epoch != y->epoch || x->start_txid != y->start_txid ||
                x->flags != y->flags || x->n != y->n || x->from != y->from ||
                x->max_bytes != y->max_bytes || x->min_applied != y->min_applied)
                return 0;
            for (size_t i = 0; i < x->n; i++)
                if (!mem_eq(x->entries[i].iov_base, x->entries[i].iov_len,
                            y->entries[i].iov_base, y->entries[i].iov_len))
                    return 0;
            return 1;
        }
        case WIRE_SEG_WAIT:
            return a->u.seg_wait.n == b->u.seg_wait.n &&
                   a->u.seg_wait.timeout_ms == b->u.seg_wait.timeout_ms &&
                   memcmp(a->u.seg_wait.applied, b->u.seg_wait.applied,
                          a->u.seg_wait.n * sizeof(uint64_t)) == 0;
        case WIRE_SEG_DUMP:
            return memcmp(&a->u.seg_dump, &b->u.seg_dump, sizeof a->u.seg_dump) == 0;
        case WIRE_CLUSTER_STATUS:
        case WIRE_CLUSTER_GROUPS:
            return 1;
        case WIRE_READ:
            return str_eq(a->u.read.stream, b->u.read.stream) &&
                   dlsn_eq(a->u.read.position, b->u.read.position) &&
                   a->u.read.min_txid == b->u.read.min_txid &&
                   a->u.read.max_records == b->u.read.max_records &&
                   a->u.read.max_bytes == b->u.read.max_bytes &&
                   a->u.read.wait_ms == b->u.read.wait_ms &&
                   mem_eq(a->u.read.key_prefix, a->u.read.key_prefix_len,
                          b->u.read.key_prefix, b->u.read.key_prefix_len) &&
                   dlsn_eq(a->u.read.end, b->u.read.end);
        default:
            return 0;
        }
    }
    switch (a->type) {
    case WIRE_HELLO:
        return a->u.hello_rep.version == b->u.hello_rep.version &&
               str_eq(a->u.hello_rep.server_name, b->u.hello_rep.server_name) &&
               a->u.hello_rep.max_frame == b->u.hello_rep.max_frame;
    case WIRE_PING:
        return a->u.ping.nonce == b->u.ping.nonce;
    case WIRE_STREAM_LIST:
        if (a->u.list_rep.count != b->u.list_rep.count ||
            a->u.list_rep.more != b->u.list_rep.more)
            return 0;
        for (size_t i = 0; i < a->u.list_rep.count; i++)
            if (!str_eq(a->u.list_rep.names[i], b->u.list_rep.names[i]))
                return 0;
        return 1;
    case WIRE_STREAM_DESCRIBE: {
        const struct dlog_stream_info *x = &a->u.describe_rep.info;
        const struct dlog_stream_info *y = &b->u.describe_rep.info;
        if (strcmp(x->name, y->name) != 0 || x->id != y->id ||
            !config_eq(&x->config, &y->config) || x->epoch != y->epoch ||
            !dlsn_eq(x->truncated, y->truncated) || !dlsn_eq(x->first, y->first) ||
            !dlsn_eq(x->last, y->last) || x->last_txid != y->last_txid ||
            x->records != y->records || x->bytes != y->bytes ||
            x->created_ms != y->created_ms || x->nsegments != y->nsegments ||
            a->u.describe_rep.total_segments != b->u.describe_rep.total_segments ||
            a->u.describe_rep.more != b->u.describe_rep.more)
            return 0;
        for (size_t i = 0; i < x->nsegments; i++)
            if (!seg_eq(&x->segments[i], &y->segments[i]))
                return 0;
        return 1;
    }
    case WIRE_STREAM_RETENTION:
        return a->u.retention_rep.deleted == b->u.retention_rep.deleted;
    case WIRE_LIMITS_GET:
        return memcmp(&a->u.limits_rep.limits, &b->u.limits_rep.limits,
                      sizeof a->u.limits_rep.limits) == 0;
    case WIRE_LIMITS_STATS: {
        const struct dlog_limit_stats *x = &a->u.limits_stats_rep.stats;
        const struct dlog_limit_stats *y = &b->u.limits_stats_rep.stats;
        if (memcmp(&x->limits, &y->limits, sizeof x->limits) != 0 ||
            x->used_bytes != y->used_bytes || !pstats_eq(&x->total, &y->total) ||
            x->nproxies != y->nproxies)
            return 0;
        for (size_t i = 0; i < x->nproxies; i++)
            if (!pstats_eq(&x->proxies[i], &y->proxies[i]))
                return 0;
        return 1;
    }
    case WIRE_WRITER_OPEN:
        return a->u.writer_open_rep.epoch == b->u.writer_open_rep.epoch &&
               a->u.writer_open_rep.last_txid == b->u.writer_open_rep.last_txid &&
               config_eq(&a->u.writer_open_rep.config, &b->u.writer_open_rep.config);
    case WIRE_WRITE:
        return dlsn_eq(a->u.write_rep.first, b->u.write_rep.first) &&
               dlsn_eq(a->u.write_rep.last, b->u.write_rep.last) &&
               a->u.write_rep.first_txid == b->u.write_rep.first_txid &&
               a->u.write_rep.duplicate == b->u.write_rep.duplicate;
    case WIRE_HEARTBEAT:
        return a->u.heartbeat_rep.epoch == b->u.heartbeat_rep.epoch &&
               dlsn_eq(a->u.heartbeat_rep.last, b->u.heartbeat_rep.last) &&
               a->u.heartbeat_rep.last_txid == b->u.heartbeat_rep.last_txid;
    case WIRE_READER_OPEN:
        return dlsn_eq(a->u.reader_open_rep.position, b->u.reader_open_rep.position) &&
               a->u.reader_open_rep.min_txid == b->u.reader_open_rep.min_txid;
    case WIRE_META_CREATE:
    case WIRE_META_UPDATE:
    case WIRE_META_REMOVE:
    case WIRE_META_KV_PUT:
    case WIRE_META_KV_REMOVE:
        return memcmp(&a->u.meta_write_rep, &b->u.meta_write_rep,
                      sizeof a->u.meta_write_rep) == 0;
    case WIRE_META_GET:
        return mem_eq(a->u.meta_get_rep.record, a->u.meta_get_rep.len,
                      b->u.meta_get_rep.record, b->u.meta_get_rep.len) &&
               a->u.meta_get_rep.revision == b->u.meta_get_rep.revision;
    case WIRE_META_KV_GET:
        return mem_eq(a->u.meta_value_rep.value, a->u.meta_value_rep.len,
                      b->u.meta_value_rep.value, b->u.meta_value_rep.len) &&
               a->u.meta_value_rep.version == b->u.meta_value_rep.version &&
               a->u.meta_value_rep.revision == b->u.meta_value_rep.revision;
    case WIRE_META_LIST: {
        const struct wire_meta_list_rep *x = &a->u.meta_list_rep,
                                        *y = &b->u.meta_list_rep;
        if (x->count != y->count || x->more != y->more || x->revision != y->revision)
            return 0;
        for (size_t i = 0; i < x->count; i++)
            if (!str_eq(x->names[i], y->names[i]))
                return 0;
        return 1;
    }
    case WIRE_META_KV_LIST: {
        const struct wire_meta_kv_list_rep *x = &a->u.meta_kv_list_rep;
        const struct wire_meta_kv_list_rep *y = &b->u.meta_kv_list_rep;
        if (x->count != y->count || x->more != y->more || x->revision != y->revision)
            return 0;
        for (size_t i = 0; i < x->count; i++)
            if (!str_eq(x->items[i].key, y->items[i].key) ||
                !mem_eq(x->items[i].value, x->items[i].len, y->items[i].value,
                        y->items[i].len) ||
                x->items[i].version != y->items[i].version)
                return 0;
        return 1;
    }
    case WIRE_META_REVISION:
        return a->u.meta_revision_rep.revision == b->u.meta_revision_rep.revision;
    case WIRE_CLUSTER_STATUS: {
        const struct wire_cluster_status_rep *x = &a->u.cluster_status_rep;
        const struct wire_cluster_status_rep *y = &b->u.cluster_status_rep;
        if (x->id != y->id || x->state != y->state || x->leader_id != y->leader_id ||
            !str_eq(x->leader_address, y->leader_address) || x->term != y->term ||
            x->commit_index != y->commit_index || x->applied_index != y->applied_index ||
            x->revision != y->revision || x->nmembers != y->nmembers)
            return 0;
        for (size_t i = 0; i < x->nmembers; i++)
            if (x->members[i].id != y->members[i].id ||
                !str_eq(x->members[i].raft_address, y->members[i].raft_address) ||
                !str_eq(x->members[i].listen_address, y->members[i].listen_address) ||
                x->members[i].role != y->members[i].role)
                return 0;
        return 1;
    }
    case WIRE_CLUSTER_GROUPS: {
        const struct wire_cluster_groups_rep *x = &a->u.cluster_groups_rep;
        const struct wire_cluster_groups_rep *y = &b->u.cluster_groups_rep;
        if (x->id != y->id || x->ngroups != y->ngroups)
            return 0;
        for (size_t i = 0; i < x->ngroups; i++) {
            const struct wire_group_status *g = &x->groups[i], *h = &y->groups[i];
            if (g->group != h->group || g->state != h->state ||
                g->leader_id != h->leader_id || g->term != h->term ||
                g->commit_index != h->commit_index ||
                g->applied_index != h->applied_index || g->segments != h->segments ||
                g->entries != h->entries || g->bytes != h->bytes ||
                g->load_bps != h->load_bps || g->nmembers != h->nmembers)
                return 0;
            for (size_t j = 0; j < g->nmembers; j++)
                if (g->members[j].id != h->members[j].id ||
                    g->members[j].role != h->members[j].role)
                    return 0;
        }
        return 1;
    }
    case WIRE_SEG_READ: {
        const struct wire_seg_read_rep *x = &a->u.seg_read_rep, *y = &b->u.seg_read_rep;
        if (x->applied != y->applied || x->n != y->n)
            return 0;
        for (size_t i = 0; i < x->n; i++)
            if (x->entries[i].id != y->entries[i].id ||
                !mem_eq(x->entries[i].p, x->entries[i].len, y->entries[i].p,
                        y->entries[i].len))
                return 0;
        return 1;
    }
    case WIRE_SEG_DUMP: {
        const struct wire_seg_dump_rep *x = &a->u.seg_dump_rep, *y = &b->u.seg_dump_rep;
        if (x->session != y->session || x->applied != y->applied || x->hash != y->hash ||
            x->segments != y->segments || x->entries != y->entries ||
            x->bytes != y->bytes || x->nsegs != y->nsegs || x->nents != y->nents ||
            x->done != y->done)
            return 0;
        for (size_t i = 0; i < x->nsegs; i++)
            if (x->segs[i].stream != y->segs[i].stream ||
                x->segs[i].seq != y->segs[i].seq ||
                !seg_info_eq(&x->segs[i].info, &y->segs[i].info))
                return 0;
        for (size_t i = 0; i < x->nents; i++)
            if (x->ents[i].stream != y->ents[i].stream ||
                x->ents[i].seq != y->ents[i].seq ||
                x->ents[i].entry != y->ents[i].entry ||
                !mem_eq(x->ents[i].p, x->ents[i].len, y->ents[i].p, y->ents[i].len))
                return 0;
        return 1;
    }
    case WIRE_SEG_WAIT:
        return a->u.seg_wait_rep.n == b->u.seg_wait_rep.n &&
               (a->u.seg_wait_rep.n == 0 ||
                memcmp(a->u.seg_wait_rep.applied, b->u.seg_wait_rep.applied,
                       a->u.seg_wait_rep.n * sizeof(uint64_t)) == 0);
    case WIRE_SEG_OPEN:
    case WIRE_SEG_APPEND:
    case WIRE_SEG_INFO:
    case WIRE_SEG_FENCE:
    case WIRE_SEG_SEAL:
    case WIRE_SEG_REMOVE:
        return a->u.seg_rep.applied == b->u.seg_rep.applied &&
               a->u.seg_rep.first_entry == b->u.seg_rep.first_entry &&
               a->u.seg_rep.first_txid == b->u.seg_rep.first_txid &&
               seg_info_eq(&a->u.seg_rep.info, &b->u.seg_rep.info);
    case WIRE_READ:
        return a->u.read_rep.nrecs == b->u.read_rep.nrecs &&
               dlsn_eq(a->u.read_rep.next, b->u.read_rep.next) &&
               recs_eq(a->u.read_rep.recs, b->u.read_rep.recs, a->u.read_rep.nrecs, 1);
    default: /* empty bodies */
        return 1;
    }
}

/* ----------------------------------------------------------------- helpers */

static char err[DLOG_ERRMSG_SIZE];

/* Encodes m into b (reset first); fails the test on error. */
static void encode_ok(const struct wire_msg *m, struct bytes *b)
{
    int rv;

    bytes_reset(b);
    rv = wire_encode(m, NULL, b, err);
    ck_assert_msg(rv == 0, "encode %s: %d %s", wire_type_name(m->type), rv, err);
}

/* Parses "94 01 cc 81 ..." (spaces optional) into b; 0 or -1. */
static int unhex(const char *s, struct bytes *b)
{
    bytes_reset(b);
    while (*s != '\0') {
        unsigned v;

        if (*s == ' ' || *s == '\n' || *s == '\t') {
            s++;
            continue;
        }
        if (sscanf(s, "%2x", &v) != 1 || s[1] == '\0' || s[1] == ' ')
            return -1;
        if (bytes_put_u8(b, (uint8_t)v) != 0)
            return -1;
        s += 2;
    }
    return 0;
}

/* Wraps the msgpack bytes body[0..len) into a frame in b. */
static void frame_of(const uint8_t *body, size_t len, struct bytes *b)
{
    bytes_reset(b);
    ck_assert_int_eq(bytes_put_u32be(b, (uint32_t)len), 0);
    ck_assert_int_eq(bytes_append(b, body, len), 0);
}

/* Decodes a frame made of the hex msgpack bytes; returns wire_decode's
 * result with err holding the message. */
static int decode_hex(const char *hex, struct wire_msg *m)
{
    struct bytes body, f;
    int rv;

    bytes_init(&body);
    bytes_init(&f);
    ck_assert_msg(unhex(hex, &body) == 0, "bad hex in test: %s", hex);
    frame_of(body.p, body.len, &f);
    rv = wire_decode(f.p, f.len, NULL, m, err);
    wire_msg_free(m);
    bytes_free(&body);
    bytes_free(&f);
    return rv;
}

/* ------------------------------------------------------------- round trips */

START_TEST(test_round_trip_every_message)
{
    struct wire_msg s[MAX_SAMPLES];
    size_t n = samples(s);
    struct bytes a, b;
    unsigned seen_req[128] = {0}, seen_rep[128] = {0};

    bytes_init(&a);
    bytes_init(&b);
    for (size_t i = 0; i < n; i++) {
        struct wire_msg d;
        int rv;

        encode_ok(&s[i], &a);
        rv = wire_decode(a.p, a.len, NULL, &d, err);
        ck_assert_msg(rv == 0, "sample %zu (%s): decode: %d %s", i,
                      wire_type_name(s[i].type), rv, err);
        ck_assert_msg(msg_eq(&s[i], &d), "sample %zu (%s %s) differs after a round trip",
                      i, wire_type_name(s[i].type), s[i].is_reply ? "reply" : "request");
        encode_ok(&d, &b);
        ck_assert_uint_eq(a.len, b.len);
        ck_assert_mem_eq(a.p, b.p, a.len);
        wire_msg_free(&d);
        wire_msg_free(&d); /* twice is safe */
        (s[i].is_reply ? seen_rep : seen_req)[s[i].type]++;
    }
    /* Every type of the catalogue, both ways (ERROR only as a reply). */
    for (unsigned t = 0; t < 128; t++) {
        if (wire_type_name(t) == NULL)
            continue;
        ck_assert_msg(t == WIRE_ERROR || seen_req[t] > 0,
                      "no sample request of type 0x%02x", t);
        ck_assert_msg(seen_rep[t] > 0, "no sample reply of type 0x%02x", t);
    }
    bytes_free(&a);
    bytes_free(&b);
}
END_TEST

/* Payloads and keys of a decoded message point into the frame. */
START_TEST(test_decode_zero_copy)
{
    struct wire_msg s[MAX_SAMPLES], m = req(WIRE_WRITE, 1), d;
    struct bytes f;

    samples(s); /* fills big_payload */
    m.u.write = (struct wire_write){"s", 1, 0, 0, write_recs, 3};
    bytes_init(&f);
    encode_ok(&m, &f);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), 0);
    ck_assert_uint_eq(d.u.write.nrecs, 3);
    for (size_t i = 0; i < 3; i++) {
        const uint8_t *p = d.u.write.recs[i].payload;
        if (d.u.write.recs[i].len > 0)
            ck_assert(p > f.p && p + d.u.write.recs[i].len <= f.p + f.len);
        else
            ck_assert_ptr_null(p);
    }
    ck_assert_ptr_null(d.u.write.recs[1].key); /* nil */
    ck_assert(d.u.write.recs[0].key > (const void *)f.p);
    /* Names are copies, NUL-terminated. */
    ck_assert(d.u.write.stream < (const char *)f.p ||
              d.u.write.stream >= (const char *)f.p + f.len);
    ck_assert_str_eq(d.u.write.stream, "s");
    wire_msg_free(&d);
    bytes_free(&f);
}
END_TEST

/* The writev encoding holds the same bytes, and references large fields. */
START_TEST(test_encode_iov_matches)
{
    struct wire_msg s[MAX_SAMPLES];
    size_t n = samples(s);
    const size_t refs[] = {0, 1, 64, 100, 4096, SIZE_MAX};
    struct wire_iov v;
    struct bytes a, flat;

    wire_iov_init(&v);
    bytes_init(&a);
    bytes_init(&flat);
    for (size_t i = 0; i < n; i++) {
        encode_ok(&s[i], &a);
        for (size_t r = 0; r < sizeof refs / sizeof refs[0]; r++) {
            int referenced = 0;

            ck_assert_int_eq(wire_encode_iov(&s[i], NULL, refs[r], &v, err), 0);
            ck_assert_uint_eq(v.total, a.len);
            bytes_reset(&flat);
            for (size_t k = 0; k < v.niov; k++) {
                const uint8_t *base = v.iov[k].iov_base;
                if (base < v.head.p || base >= v.head.p + v.head.len)
                    referenced = 1;
                ck_assert_int_eq(bytes_append(&flat, base, v.iov[k].iov_len), 0);
            }
            ck_assert_uint_eq(flat.len, a.len);
            ck_assert_mem_eq(flat.p, a.p, a.len);
            if (s[i].type == WIRE_WRITE && !s[i].is_reply && s[i].u.write.nrecs == 3 &&
                refs[r] <= 4096)
                ck_assert_msg(referenced, "the 100 KiB payload should not be copied");
            if (refs[r] == SIZE_MAX)
                ck_assert_uint_eq(v.niov, 1);
        }
    }
    /* A failure leaves v empty. */
    s[0].u.hello.client_name = NULL;
    ck_assert_int_eq(wire_encode_iov(&s[0], NULL, 0, &v, err), DLOG_EINVAL);
    ck_assert_uint_eq(v.niov, 0);
    ck_assert_uint_eq(v.total, 0);
    wire_iov_free(&v);
    wire_iov_free(&v);
    bytes_free(&a);
    bytes_free(&flat);
}
END_TEST

/* Several frames back to back, split at every byte, as a connection would
 * see them. */
START_TEST(test_frame_stream)
{
    struct wire_msg s[MAX_SAMPLES];
    size_t n = samples(s);
    struct bytes all;
    size_t frames = 0, off = 0, need;

    bytes_init(&all);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(wire_encode(&s[i], NULL, &all, err), 0);
    while (off < all.len) {
        struct wire_msg d;
        /* Fewer bytes than the frame: "need more", never an error. */
        for (size_t k = 0; k < 8 && off + k < all.len; k++) {
            int rv = wire_frame_check(all.p + off, k, 0, &need, err);
            ck_assert_int_eq(rv, 0);
            if (k < WIRE_FRAME_PREFIX)
                ck_assert_uint_eq(need, WIRE_FRAME_PREFIX);
        }
        ck_assert_int_eq(wire_frame_check(all.p + off, all.len - off, 0, &need, err), 1);
        ck_assert_int_eq(wire_frame_check(all.p + off, need - 1, 0, &need, err), 0);
        ck_assert_int_eq(wire_decode(all.p + off, need, NULL, &d, err), 0);
        ck_assert(msg_eq(&s[frames], &d));
        wire_msg_free(&d);
        off += need;
        frames++;
    }
    ck_assert_uint_eq(frames, n);
    bytes_free(&all);
}
END_TEST

/* ------------------------------------------------------------ bad frames */

struct bad {
    const char *hex; /* the msgpack bytes after the length prefix */
    int rv;
    const char *msg; /* a substring of the error message */
};

static const struct bad bad_frames[] = {
    /* envelope */
    {"01", DLOG_EPROTO, "envelope: expected array, got uint"},
    {"81 01 02", DLOG_EPROTO, "envelope: expected array, got map"},
    {"92 01 02", DLOG_EPROTO, "envelope: array of 2 values"},
    {"95 01 02 05 91 01 00", DLOG_EPROTO, "expected 4 for a request"},
    {"94 01 cc 82 05 91 01", DLOG_EPROTO, "expected 5 for a reply"},
    {"94 a1 31 02 05 91 01", DLOG_EPROTO, "version: expected uint, got str"},
    {"94 02 02 05 91 01", WIRE_BAD_VERSION, "protocol version 2 is not supported"},
    {"94 00 02 05 91 01", WIRE_BAD_VERSION, "protocol version 0 is not supported"},
    {"94 ce ff ff ff ff 02 05 90", WIRE_BAD_VERSION, "version 4294967295"},
    {"94 01 7f 05 91 01", WIRE_UNKNOWN_TYPE, "unknown message type 0x7f"},
    {"94 01 00 05 90", WIRE_UNKNOWN_TYPE, "unknown message type 0x00"},
    {"95 01 cc ff 05 00 90", WIRE_UNKNOWN_TYPE, "unknown message type 0xff"},
    {"94 01 cd 01 00 05 90", DLOG_EPROTO, "type: 256 is above 255"},
    {"94 01 02 00 91 01", DLOG_EPROTO, "request_id 0 is reserved"},
    {"94 01 02 ff 91 01", DLOG_EPROTO, "request_id: expected uint, got negative int"},
    {"94 01 02 cb 3f f0 00 00 00 00 00 00 91 01", DLOG_EPROTO, "got float"},
    /* bodies: wrong array lengths and types */
    {"94 01 02 05 92 01 02", DLOG_EPROTO,
     "PING request: body: array of 2 values, expected 1"},
    {"94 01 02 05 90", DLOG_EPROTO, "body: array of 0 values, expected 1"},
    {"94 01 02 05 81 01 02", DLOG_EPROTO, "body: expected array, got map"},
    {"94 01 02 05 91 ca 00 00 00 00", DLOG_EPROTO, "nonce: expected uint, got float"},
    {"94 01 02 05 91 c3", DLOG_EPROTO, "nonce: expected uint, got bool"},
    {"94 01 21 02 94 c4 06 6f 72 64 65 72 73 03 c0 91 94 c4 02 68 69 c0 2a 00",
     DLOG_EPROTO, "WRITE request: stream: expected str, got bin"},
    {"94 01 21 02 94 a1 73 03 c0 91 94 a2 68 69 c0 2a 00", DLOG_EPROTO,
     "records[0]: payload: expected bin, got str"},
    {"94 01 21 02 94 a1 73 03 c0 91 94 c4 02 68 69 a1 6b 2a 00", DLOG_EPROTO,
     "records[0]: key: expected bin or nil, got str"},
    {"94 01 21 02 94 a1 73 03 c0 91 93 c4 02 68 69 c0 2a", DLOG_EPROTO,
     "records[0]: record: array of 3 values, expected 4"},
    {"94 01 21 02 94 a1 73 03 c0 91 94 c4 00 c0 2a 01", DLOG_EPROTO,
     "records[0]: flags: 0x1, must be 0"},
    {"94 01 21 02 94 a1 73 03 c0 90", DLOG_EPROTO,
     "records: 0 records, expected 1..65536"},
    {"94 01 21 02 94 a1 73 ff c0 91 94 c4 00 c0 2a 00", DLOG_EPROTO,
     "epoch: expected uint, got negative int"},
    {"94 01 21 02 94 a1 73 03 92 00 01 91 94 c4 00 c0 2a 00", DLOG_EPROTO,
     "producer: producer_id: 0 is reserved"},
    {"94 01 21 02 94 a1 73 03 92 07 00 91 94 c4 00 c0 2a 00", DLOG_EPROTO,
     "producer: sequence must be >= 1"},
    {"94 01 21 02 94 a1 73 03 a1 70 91 94 c4 00 c0 2a 00", DLOG_EPROTO,
     "producer: expected array or nil, got str"},
    {"94 01 21 02 94 a1 73 03 93 07 01 01 91 94 c4 00 c0 2a 00", DLOG_EPROTO,
     "producer: array of 3 values, expected 2"},
    /* names */
    {"94 01 11 02 91 a3 61 00 62", DLOG_EPROTO, "stream: contains a NUL byte"},
    {"94 01 11 02 91 a0", DLOG_EPROTO,
     "STREAM_DELETE request: stream: 0 bytes, expected 1..255"},
    {"94 01 11 02 91 c0", DLOG_EPROTO, "stream: expected str, got nil"},
    /* positions and ranges */
    {"94 01 14 02 92 a1 73 92 01 00", DLOG_EPROTO, "dlsn: array of 2 values, expected 3"},
    {"94 01 14 02 92 a1 73 93 01 00 cf 00 00 00 01 00 00 00 00", DLOG_EPROTO,
     "dlsn: slot: 4294967296 is above 4294967295"},
    {"94 01 31 02 98 a1 73 93 01 00 00 00 00 01 13 c0 93 00 00 00", DLOG_EPROTO,
     "max_records: 0 is out of range 1..65536"},
    {"94 01 31 02 98 a1 73 93 01 00 00 00 01 01 ce 00 09 27 c1 c0 93 00 00 00",
     DLOG_EPROTO, "READ request: wait_ms: 600001 is out of range 0..600000"},
    {"94 01 31 02 98 a1 73 93 01 00 00 00 01 01 ce 00 09 27 c2 c0 93 00 00 00",
     DLOG_EPROTO, "wait_ms: 600002 is out of range 0..600000"},
    {"94 01 31 02 98 a1 73 93 01 00 00 00 01 00 00 c0 93 00 00 00", DLOG_EPROTO,
     "max_bytes: 0 is out of range"},
    {"94 01 31 02 98 a1 73 93 01 00 00 00 01 01 00 a1 6b 93 00 00 00", DLOG_EPROTO,
     "key_prefix: expected bin or nil, got str"},
    {"94 01 20 02 92 a1 73 02", DLOG_EPROTO, "mode: 2 is out of range 0..1"},
    {"94 01 30 02 92 a1 73 93 04 93 00 00 00 00", DLOG_EPROTO,
     "start.kind: 4 is out of range 0..3"},
    {"94 01 30 02 92 a1 73 92 00 93 00 00 00", DLOG_EPROTO,
     "start: array of 2 values, expected 3"},
    {"94 01 12 02 92 a0 00", DLOG_EPROTO, "limit: 0 is out of range 1..10000"},
    {"94 01 13 02 93 a1 73 00 cd 27 11", DLOG_EPROTO,
     "max_segments: 10001 is out of range"},
    {"94 01 10 02 92 a1 73 98 01 00 00 00 00 03 01 c2", DLOG_EPROTO,
     "config.compression: 3 is out of range 0..2"},
    {"94 01 10 02 92 a1 73 98 01 00 00 00 00 00 01 00", DLOG_EPROTO,
     "config: auto_txid: expected bool, got uint"},
    {"94 01 10 02 92 a1 73 a1 78", DLOG_EPROTO, "config: expected array or nil, got str"},
    {"94 01 01 01 94 02 01 a0 c0", DLOG_EPROTO, "max_version: 1 is out of range 2..255"},
    {"94 01 01 01 94 00 01 a0 c0", DLOG_EPROTO, "min_version: 0 is out of range 1..255"},
    {"94 01 01 01 94 01 01 a0 a1 74", DLOG_EPROTO, "token: expected bin or nil, got str"},
    /* replies */
    {"95 01 cc 82 05 01 91 01", DLOG_EPROTO, "status: 1 is not a dlog_err code"},
    {"95 01 cc 82 05 e2 91 a1 78", DLOG_EPROTO, "status: -30 is not a dlog_err code"},
    {"95 01 cc 82 05 d2 80 00 00 00 91 a1 78", DLOG_EPROTO, "status: -2147483648 is not"},
    {"95 01 cc 82 05 a1 30 91 01", DLOG_EPROTO, "status: expected int, got str"},
    {"95 01 cc a1 04 f3 91 a0", DLOG_EPROTO, "message: 0 bytes, expected 1..1024"},
    {"95 01 cc a1 04 f3 92 a1 78 a1 79", DLOG_EPROTO,
     "body: array of 2 values, expected 1"},
    {"95 01 cc a1 04 f0 91 a1 78", DLOG_EPROTO, "body: array of 1 values, expected 2"},
    {"95 01 cc a1 04 f0 92 a1 78 a6 6e 6f 68 6f 73 74", DLOG_EPROTO,
     "address: a redirect needs"},
    {"95 01 cc a1 04 ef 92 a1 78 a2 68 3a", DLOG_EPROTO, "address: a redirect"},
    {"95 01 cc a1 04 ef 92 a1 78 a7 68 3a 37 30 30 30 30", DLOG_EPROTO, "address"},
    {"95 01 cc a1 04 ef 92 a1 78 a7 68 3a 36 35 35 33 36", DLOG_EPROTO, "address"},
    {"95 01 cc 81 01 ee 91 a1 78", DLOG_EPROTO,
     "HELLO reply: body: array of 1 values, "
     "expected 3"},
    {"95 01 cc 81 01 00 93 01 a0 cd 04 00", DLOG_EPROTO,
     "max_frame: 1024 is out of range"},
    {"95 01 cc 80 05 ee 91 a1 78", DLOG_EPROTO, "request_id 0 goes with type ERROR"},
    {"95 01 cc a1 00 00 94 93 01 00 00 93 01 00 00 00 c2", DLOG_EPROTO,
     "request_id 0 goes with type ERROR"},
    {"95 01 cc 80 00 00 90", DLOG_EPROTO, "an ERROR reply needs a status"},
    {"95 01 cc a1 05 00 94 93 01 00 00 93 01 00 00 00 00", DLOG_EPROTO,
     "duplicate: expected bool, got uint"},
    {"95 01 cc 91 05 00 91 91 a1 78", DLOG_EPROTO,
     "STREAM_DELETE reply: body: array of 1"},
    {"95 01 cc 93 05 00 93 9c a1 73 00 98 01 00 00 00 00 00 01 c2 00 93 00 00 00 93 00 "
     "00 "
     "00 93 00 00 00 00 00 00 00 00 91 9c 01 02 00 93 00 00 00 93 00 00 00 00 00 00 00 "
     "00 "
     "00 00 c2",
     DLOG_EPROTO, "segments[0]: state: 2 is above 1"},
    {"95 01 cc b1 05 00 92 91 95 93 01 00 00 c4 00 c0 00 00 92 01 00", DLOG_EPROTO,
     "READ reply: next: array of 2 values, expected 3"},
    {"95 01 cc 92 05 00 92 91 c4 01 61 c2", DLOG_EPROTO,
     "names: name: expected str, got bin"},
    {"95 01 cc 95 05 00 91 ce 80 00 00 00", DLOG_EPROTO,
     "deleted: 2147483648 is out of "
     "range"},
    /* msgpack structure */
    {"94 01 02 05 91 d4 01 00", DLOG_EPROTO, "msgpack ext type (0xd4)"},
    {"94 01 02 05 91 c1", DLOG_EPROTO, "invalid msgpack byte 0xc1 at byte 5"},
    {"94 01 02 05 91 c7 01 01 00", DLOG_EPROTO, "msgpack ext type (0xc7)"},
    {"94 01 02 05 91 01 00", DLOG_EPROTO, "1 bytes of trailing garbage"},
    {"94 01 02 05 91", DLOG_EPROTO, "announces 1 values but only 0 bytes follow"},
    {"94 01 02 05 92 91 01", DLOG_EPROTO, "msgpack value truncated at byte 7"},
    {"94 01 02 05 91 cd 12", DLOG_EPROTO, "needs 2 bytes, 1 left"},
    {"94 01 02 05 91 dc 00", DLOG_EPROTO, "msgpack header truncated"},
    {"94 01 02 05 91 91 91 91 91 91 91 91 01", DLOG_EPROTO, "nested deeper than 8"},
    {"94 01 02 05 91 db ff ff ff ff", DLOG_EPROTO, "needs 4294967295 bytes"},
    {"94 01 02 05 91 c6 ff ff ff ff 00", DLOG_EPROTO, "needs 4294967295 bytes"},
    {"94 01 02 05 91 dd ff ff ff ff", DLOG_EPROTO, "announces 4294967295 values"},
    {"94 01 02 05 91 df ff ff ff ff 00 00", DLOG_EPROTO, "announces 8589934590 values"},
    {"94 01 21 02 94 a1 73 03 c0 dd 00 01 00 00 c0", DLOG_EPROTO,
     "announces 65536 values"},
    {"dd ff ff ff ff 01 02 05", DLOG_EPROTO, "announces 4294967295 values but only 3"},
};

START_TEST(test_bad_frames)
{
    for (size_t i = 0; i < sizeof bad_frames / sizeof bad_frames[0]; i++) {
        const struct bad *b = &bad_frames[i];
        struct wire_msg m;
        int rv;

        err[0] = '\0';
        rv = decode_hex(b->hex, &m);
        ck_assert_msg(rv == b->rv, "case %zu (%s): got %d, want %d (%s)", i, b->hex, rv,
                      b->rv, err);
        ck_assert_msg(strstr(err, b->msg) != NULL,
                      "case %zu (%s): message \"%s\" lacks \"%s\"", i, b->hex, err,
                      b->msg);
        ck_assert_ptr_null(m.mem_);
    }
}
END_TEST

/* What a server needs to reply to a frame it cannot serve. */
START_TEST(test_bad_frame_headers)
{
    struct wire_msg m;

    ck_assert_int_eq(decode_hex("94 07 02 2a 91 01", &m), WIRE_BAD_VERSION);
    ck_assert_uint_eq(m.version, 7);
    ck_assert_uint_eq(m.type, WIRE_PING);
    ck_assert_uint_eq(m.request_id, 42);
    ck_assert_int_eq(m.is_reply, 0);

    ck_assert_int_eq(decode_hex("94 01 7e 2b 93 01 02 03", &m), WIRE_UNKNOWN_TYPE);
    ck_assert_uint_eq(m.version, 1);
    ck_assert_uint_eq(m.type, 0x7e);
    ck_assert_uint_eq(m.request_id, 43);

    /* A broken body still names the request to reply to. */
    ck_assert_int_eq(decode_hex("94 01 02 2c 91 a1 78", &m), DLOG_EPROTO);
    ck_assert_uint_eq(m.request_id, 44);
    /* A broken envelope does not. */
    ck_assert_int_eq(decode_hex("94 01 02 a1 78 91 01", &m), DLOG_EPROTO);
    ck_assert_uint_eq(m.request_id, 0);
    ck_assert_int_eq(decode_hex("01", &m), DLOG_EPROTO);
    ck_assert_uint_eq(m.request_id, 0);
}
END_TEST

/* Frames whose length prefix is wrong, or cut short, or followed by more. */
START_TEST(test_bad_lengths)
{
    struct wire_msg m = req(WIRE_PING, 1), d;
    struct wire_limits lim;
    struct bytes f;
    size_t need = 0;
    uint8_t zero[4] = {0, 0, 0, 0};
    uint8_t huge[4] = {0x04, 0x60, 0x00, 0x01}; /* 70 MiB + 1 */
    uint8_t max[4] = {0xff, 0xff, 0xff, 0xff};

    ck_assert_int_eq(wire_frame_check(zero, 4, 0, &need, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "frame length 0"));
    ck_assert_int_eq(wire_decode(zero, 4, NULL, &d, err), DLOG_EPROTO);
    ck_assert_int_eq(wire_frame_check(huge, 4, 0, &need, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(
        strstr(err, "frame length 73400321 exceeds the maximum of 73400320"));
    ck_assert_int_eq(wire_frame_check(max, 4, SIZE_MAX, &need, err), 0);
    ck_assert_uint_eq(need, 4 + (size_t)UINT32_MAX);
    ck_assert_int_eq(wire_decode(huge, 4, NULL, &d, err), DLOG_EPROTO);
    ck_assert_int_eq(wire_decode(huge, 0, NULL, &d, err), DLOG_EPROTO);
    ck_assert_int_eq(wire_decode(NULL, 0, NULL, &d, err), DLOG_EPROTO);
    ck_assert_int_eq(wire_decode_body(NULL, 0, NULL, &d, err), DLOG_EPROTO);

    bytes_init(&f);
    m.u.ping.nonce = 0x1234567890ULL;
    encode_ok(&m, &f);
    /* Truncated anywhere. */
    for (size_t k = 0; k < f.len; k++) {
        ck_assert_int_eq(wire_decode(f.p, k, NULL, &d, err), DLOG_EPROTO);
        ck_assert_int_eq(wire_frame_check(f.p, k, 0, &need, err), 0);
        ck_assert_uint_eq(need, k < 4 ? 4 : f.len);
    }
    /* A byte more than the frame. */
    ck_assert_int_eq(bytes_put_u8(&f, 0), 0);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "1 bytes of trailing garbage after a frame"));
    f.len--;
    /* A prefix that says more, or less, than the bytes there. */
    put_u32be(f.p, get_u32be(f.p) + 1);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "frame truncated"));
    put_u32be(f.p, get_u32be(f.p) - 2);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    put_u32be(f.p, get_u32be(f.p) + 1);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), 0);

    /* The decoder's caller sets the maximum. */
    wire_limits_init(&lim);
    lim.max_frame = f.len - 5;
    ck_assert_int_eq(wire_decode(f.p, f.len, &lim, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "exceeds the maximum"));
    ck_assert_int_eq(wire_frame_check(f.p, f.len, lim.max_frame, &need, err),
                     DLOG_EPROTO);
    lim.max_frame = f.len - 4;
    ck_assert_int_eq(wire_decode(f.p, f.len, &lim, &d, err), 0);
    /* And the number of msgpack values. */
    lim.max_objects = 4;
    ck_assert_int_eq(wire_decode(f.p, f.len, &lim, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "more than 4 msgpack values"));
    lim.max_objects = 6;
    ck_assert_int_eq(wire_decode(f.p, f.len, &lim, &d, err), 0);
    bytes_free(&f);
}
END_TEST

/* Counts above the message limits, with the values really there. */
START_TEST(test_bad_counts)
{
    struct bytes body, f;
    struct wire_msg d;
    static const uint8_t head[] = {0x94, 0x01, 0x21, 0x02, 0x94, 0xa1, 0x73, 0x03, 0xc0};

    bytes_init(&body);
    bytes_init(&f);
    /* 65537 records (nil each, so the scan passes): refused before any
     * allocation for them. */
    ck_assert_int_eq(bytes_append(&body, head, sizeof head), 0);
    ck_assert_int_eq(bytes_put_u8(&body, 0xdd), 0);
    ck_assert_int_eq(bytes_put_u32be(&body, WIRE_MAX_RECORDS + 1), 0);
    for (int i = 0; i < WIRE_MAX_RECORDS + 1; i++)
        ck_assert_int_eq(bytes_put_u8(&body, 0xc0), 0);
    frame_of(body.p, body.len, &f);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "records: 65537 values, at most 65536"));

    /* A stream name of 256 bytes. */
    bytes_reset(&body);
    ck_assert_int_eq(bytes_append(&body, "\x94\x01\x11\x02\x91\xd9\xff", 7), 0);
    for (int i = 0; i < 255; i++)
        ck_assert_int_eq(bytes_put_u8(&body, 'a'), 0);
    frame_of(body.p, body.len, &f);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), 0); /* 255: fine */
    wire_msg_free(&d);
    bytes_reset(&body);
    ck_assert_int_eq(bytes_append(&body, "\x94\x01\x11\x02\x91\xda\x01\x00", 8), 0);
    for (int i = 0; i < 256; i++)
        ck_assert_int_eq(bytes_put_u8(&body, 'a'), 0);
    frame_of(body.p, body.len, &f);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "stream: 256 bytes, at most 255"));

    /* A key of 65537 bytes. */
    bytes_reset(&body);
    ck_assert_int_eq(bytes_append(&body, head, sizeof head), 0);
    ck_assert_int_eq(bytes_append(&body, "\x91\x94\xc4\x00\xc6", 5), 0);
    ck_assert_int_eq(bytes_put_u32be(&body, WIRE_MAX_KEY + 1), 0);
    for (int i = 0; i < WIRE_MAX_KEY + 1; i++)
        ck_assert_int_eq(bytes_put_u8(&body, 'k'), 0);
    ck_assert_int_eq(bytes_append(&body, "\x01\x00", 2), 0);
    frame_of(body.p, body.len, &f);
    ck_assert_int_eq(wire_decode(f.p, f.len, NULL, &d, err), DLOG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err, "records[0]: key: 65537 bytes, at most 65536"));
    bytes_free(&body);
    bytes_free(&f);
}
END_TEST

/* ------------------------------------------------------------ the encoder */

START_TEST(test_encode_refuses)
{
    struct wire_msg s[MAX_SAMPLES];
    struct wire_limits lim;
    struct bytes out;
    char longname[300];
    char longmsg[WIRE_MAX_MESSAGE + 2];
    struct dlog_record r = {.payload = "x", .len = 1};
    struct wire_msg m;

    samples(s);
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    memset(longmsg, 'm', sizeof longmsg - 1);
    longmsg[sizeof longmsg - 1] = '\0';
    bytes_init(&out);
    ck_assert_int_eq(bytes_append(&out, "keep", 4), 0);

#define REFUSE(msg, code, text)                                                          \
    do {                                                                                 \
        int rv_ = wire_encode(&(msg), NULL, &out, err);                                  \
        ck_assert_msg(rv_ == (code), "%s: got %d (%s)", text, rv_, err);                 \
        ck_assert_msg(strstr(err, text) != NULL, "\"%s\" lacks \"%s\"", err, text);      \
        ck_assert_uint_eq(out.len, 4);                                                   \
    } while (0)

    m = req(WIRE_STREAM_DELETE, 1);
    m.u.del.stream = longname;
    REFUSE(m, DLOG_EINVAL, "stream: over 255 bytes");
    m.u.del.stream = "";
    REFUSE(m, DLOG_EINVAL, "stream: 0 bytes");
    m.u.del.stream = NULL;
    REFUSE(m, DLOG_EINVAL, "stream: missing");
    m.u.del.stream = "s";
    m.request_id = 0;
    REFUSE(m, DLOG_EINVAL, "request_id 0 is reserved");
    m.request_id = 1;
    m.version = 2;
    REFUSE(m, DLOG_EINVAL, "version 2 is not supported");
    m.version = 1;
    m.type = 0x7f;
    REFUSE(m, DLOG_EINVAL, "unknown message type 0x7f");
    m.type = WIRE_ERROR;
    REFUSE(m, DLOG_EINVAL, "ERROR is only a reply");

    m = req(WIRE_WRITE, 1);
    m.u.write = (struct wire_write){"s", 1, 0, 0, &r, 0};
    REFUSE(m, DLOG_EINVAL, "records: 0 records");
    m.u.write.nrecs = WIRE_MAX_RECORDS + 1;
    REFUSE(m, DLOG_EINVAL, "records: 65537 records");
    m.u.write.nrecs = 1;
    m.u.write.sequence = 3;
    REFUSE(m, DLOG_EINVAL, "a sequence needs a producer id");
    m.u.write.producer_id = 9;
    m.u.write.sequence = 0;
    REFUSE(m, DLOG_EINVAL, "sequence must be >= 1");
    m.u.write.sequence = 1;
    r.key_len = WIRE_MAX_KEY + 1;
    r.key = big_payload;
    REFUSE(m, DLOG_EINVAL, "records[0]: key: 65537 bytes");
    r.key = NULL;
    r.key_len = 1;
    REFUSE(m, DLOG_EINVAL, "key: NULL with length 1");
    r.key_len = 0;
    r.flags = 2;
    REFUSE(m, DLOG_EINVAL, "flags: 0x2");
    r.flags = 0;

    m = rep(WIRE_WRITE, 1, DLOG_ENOTOWNER);
    m.err.message = "moved";
    REFUSE(m, DLOG_EINVAL, "address: a redirect needs");
    m.err.address = "host:0";
    REFUSE(m, DLOG_EINVAL, "address");
    m.err.address = ":7000";
    REFUSE(m, DLOG_EINVAL, "address");
    m.err.address = "h:7000";
    ck_assert_int_eq(wire_encode(&m, NULL, &out, err), 0);
    out.len = 4;
    m.err.message = "";
    REFUSE(m, DLOG_EINVAL, "message: 0 bytes");
    m.err.message = longmsg;
    REFUSE(m, DLOG_EINVAL, "message: over 1024 bytes");
    m.status = 1;
    REFUSE(m, DLOG_EINVAL, "status 1 is not a dlog_err code");
    m.status = DLOG_ERR_MIN - 1;
    REFUSE(m, DLOG_EINVAL, "is not a dlog_err code");
    m = rep(WIRE_WRITE, 0, DLOG_EIO);
    m.err.message = "x";
    REFUSE(m, DLOG_EINVAL, "request_id 0 goes with type ERROR");
    m = rep(WIRE_ERROR, 0, 0);
    REFUSE(m, DLOG_EINVAL, "an ERROR reply needs a status");
    m = rep(WIRE_HELLO, 1, DLOG_EPROTO);
    m.err.message = "x";
    REFUSE(m, DLOG_EINVAL, "min_version: 0 is out of range");
    m = rep(WIRE_HELLO, 1, 0);
    m.u.hello_rep = (struct wire_hello_rep){1, "", 1000};
    REFUSE(m, DLOG_EINVAL, "max_frame: 1000 is out of range");
    m = rep(WIRE_STREAM_DESCRIBE, 1, 0);
    memset(m.u.describe_rep.info.name, 'n', sizeof m.u.describe_rep.info.name);
    REFUSE(m, DLOG_EINVAL, "info.name: not NUL-terminated");
    snprintf(m.u.describe_rep.info.name, sizeof m.u.describe_rep.info.name, "s");
    m.u.describe_rep.info.segments = segs;
    m.u.describe_rep.info.nsegments = WIRE_MAX_SEGMENTS + 1;
    REFUSE(m, DLOG_EINVAL, "segments: 10001 segments");
    segs[1].state = 5;
    m.u.describe_rep.info.nsegments = 2;
    REFUSE(m, DLOG_EINVAL, "segments[1].state: 5 is not 0 or 1");
    segs[1].state = DLOG_SEGMENT_OPEN;
    m.u.describe_rep.info.config.compression = 9;
    REFUSE(m, DLOG_EINVAL, "config.compression: 9");

    /* Node calls. */
    m = req(WIRE_META_KV_PUT, 1);
    m.u.meta_kv_put = (struct wire_meta_kv_put){"", "v", 1, 0};
    REFUSE(m, DLOG_EINVAL, "key: 0 bytes");
    m.u.meta_kv_put = (struct wire_meta_kv_put){"k", NULL, 3, 0};
    REFUSE(m, DLOG_EINVAL, "value: NULL with length 3");
    m.u.meta_kv_put =
        (struct wire_meta_kv_put){"k", big_payload, WIRE_MAX_META_VALUE + 1, 0};
    REFUSE(m, DLOG_EINVAL, "value: 65537 bytes");
    m = req(WIRE_META_CREATE, 1);
    REFUSE(m, DLOG_EINVAL, "record: 0 bytes");
    m = req(WIRE_META_KV_LIST, 1);
    m.u.meta_list = (struct wire_meta_list){"", "", 0, 0};
    REFUSE(m, DLOG_EINVAL, "limit: 0 is out of range");
    m = req(WIRE_NODE_JOIN, 1);
    m.u.node_join = (struct wire_node_join){0, "h:1", "h:2"};
    REFUSE(m, DLOG_EINVAL, "id: must be >= 1");
    m.u.node_join = (struct wire_node_join){1, "h", "h:2"};
    REFUSE(m, DLOG_EINVAL, "raft_address: expected");
    m = rep(WIRE_CLUSTER_STATUS, 1, 0);
    m.u.cluster_status_rep =
        (struct wire_cluster_status_rep){1, 4, 0, "", 0, 0, 0, 0, NULL, 0};
    REFUSE(m, DLOG_EINVAL, "state: 4 is not 0..3");
    m = req(WIRE_SEG_DUMP, 1);
    m.u.seg_dump = (struct wire_seg_dump){WIRE_MAX_GROUPS, 0, 0, 0, 0, 0, 1, 0};
    REFUSE(m, DLOG_EINVAL, "group: 1024 is not below");
    m.u.seg_dump = (struct wire_seg_dump){0, 5, 1, 0, 0, 0, 1, 0};
    REFUSE(m, DLOG_EINVAL, "after.kind: 1 is not 0, 2 or 3");
    m.u.seg_dump = (struct wire_seg_dump){0, 5, 2, 1, 1, 7, 1, 0};
    REFUSE(m, DLOG_EINVAL, "after: fields set beyond its kind 2");
    m.u.seg_dump = (struct wire_seg_dump){0, 5, 0, 1, 0, 0, 1, 0};
    REFUSE(m, DLOG_EINVAL, "after: fields set beyond its kind 0");
    m.u.seg_dump = (struct wire_seg_dump){0, 0, 3, 1, 1, 1, 1, 0};
    REFUSE(m, DLOG_EINVAL, "after: a new session starts at kind 0");
    m.u.seg_dump = (struct wire_seg_dump){0, 5, 3, 1, 1, 1, WIRE_MAX_DUMP_BYTES + 1, 0};
    REFUSE(m, DLOG_EINVAL, "max_bytes: 33554433 is over");
    m.u.seg_dump = (struct wire_seg_dump){0, 5, 3, 1, 1, 1, 0, 0};
    REFUSE(m, DLOG_EINVAL, "max_bytes: 0 (the state only) needs session 0");
    {
        static const struct wire_dump_entry empty = {1, 1, 0, "", 0};
        static const struct wire_dump_seg badseg = {1, 1, {.sealed = 2}, {{0}}, 0};
        m = rep(WIRE_SEG_DUMP, 1, 0);
        m.u.seg_dump_rep =
            (struct wire_seg_dump_rep){.session = 3, .ents = &empty, .nents = 1};
        REFUSE(m, DLOG_EINVAL, "entries[0]: 0 bytes");
        m.u.seg_dump_rep =
            (struct wire_seg_dump_rep){.session = 3, .segs = &badseg, .nsegs = 1};
        REFUSE(m, DLOG_EINVAL, "segs[0].info.sealed: must be 0 or 1");
        m.u.seg_dump_rep = (struct wire_seg_dump_rep){.session = 3, .nents = 2};
        REFUSE(m, DLOG_EINVAL, "entries: 2, at most");
        m.u.seg_dump_rep = (struct wire_seg_dump_rep){.session = 0, .done = 0};
        REFUSE(m, DLOG_EINVAL, "session: 0 (the state only) with items or not done");
        m.u.seg_dump_rep = (struct wire_seg_dump_rep){.session = 3, .done = 2};
        REFUSE(m, DLOG_EINVAL, "done: must be 0 or 1");
    }

    {
        static const struct wire_group_member bad_role[1] = {{1, 3}};
        struct wire_group_status gs[2] = {{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0},
                                          {0, 1, 0, 0, 0, 0, 0, 0, 0, 0, NULL, 0}};
        m = rep(WIRE_CLUSTER_GROUPS, 1, 0);
        m.u.cluster_groups_rep = (struct wire_cluster_groups_rep){1, gs, 2};
        REFUSE(m, DLOG_EINVAL, "groups[].group: 0 is not ascending");
        gs[1].group = WIRE_MAX_GROUPS;
        REFUSE(m, DLOG_EINVAL, "groups[].group: 1024");
        gs[1].group = 1;
        gs[1].state = 4;
        REFUSE(m, DLOG_EINVAL, "groups[].state: 4 is not 0..3");
        gs[1].state = 1;
        gs[1].members = bad_role;
        gs[1].nmembers = 1;
        REFUSE(m, DLOG_EINVAL, "groups[].members[].role: 3 is not 0..2");
    }

    /* Larger than the frame limit: DLOG_ETOOBIG. */
    for (size_t i = 0; i < MAX_SAMPLES; i++) {
        m = s[i]; /* the WRITE with the 100 KiB payload */
        if (m.type == WIRE_WRITE && !m.is_reply && m.u.write.nrecs == 3)
            break;
    }
    ck_assert_uint_eq(m.type, WIRE_WRITE);
    ck_assert_uint_eq(m.u.write.nrecs, 3);
    wire_limits_init(&lim);
    lim.max_frame = 64 * 1024;
    ck_assert_int_eq(wire_encode(&m, &lim, &out, err), DLOG_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(err, "WRITE frame of"));
    ck_assert_uint_eq(out.len, 4);
    ck_assert_mem_eq(out.p, "keep", 4);
    lim.max_frame = 200 * 1024;
    ck_assert_int_eq(wire_encode(&m, &lim, &out, err), 0);
    ck_assert_mem_eq(out.p, "keep", 4); /* appended after what was there */
    ck_assert_uint_eq(get_u32be(out.p + 4), out.len - 8);
    bytes_free(&out);
#undef REFUSE
}
END_TEST

/* Integers in any msgpack width decode the same; encoders use the shortest. */
START_TEST(test_integer_widths)
{
    struct wire_msg m;
    struct bytes body, f;

    /* PING nonce 5 as uint 8, 16, 32, 64, and as the signed int types. */
    const char *const forms[] = {
        "94 01 02 05 91 05",
        "94 01 02 05 91 cc 05",
        "94 01 02 05 91 cd 00 05",
        "94 cf 00 00 00 00 00 00 00 01 d0 02 d1 00 05 91 ce 00 00 00 05",
        "94 01 02 05 91 cf 00 00 00 00 00 00 00 05",
        "94 01 02 05 91 d3 00 00 00 00 00 00 00 05",
    };
    bytes_init(&body);
    bytes_init(&f);
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        ck_assert_int_eq(unhex(forms[i], &body), 0);
        frame_of(body.p, body.len, &f);
        ck_assert_msg(wire_decode(f.p, f.len, NULL, &m, err) == 0, "%s: %s", forms[i],
                      err);
        ck_assert_uint_eq(m.u.ping.nonce, 5);
        ck_assert_uint_eq(m.request_id, 5);
        encode_ok(&m, &f);
        ck_assert_uint_eq(f.len, 4 + 6); /* re-encoded in the shortest form */
        wire_msg_free(&m);
    }
    /* str 8/16/32 and bin 8/16/32 all accepted. */
    ck_assert_int_eq(decode_hex("94 01 11 02 91 d9 01 73", &m), 0);
    ck_assert_int_eq(decode_hex("94 01 11 02 91 da 00 01 73", &m), 0);
    ck_assert_int_eq(decode_hex("94 01 11 02 91 db 00 00 00 01 73", &m), 0);
    ck_assert_int_eq(
        decode_hex("94 01 21 02 94 a1 73 03 c0 91 94 c6 00 00 00 01 78 c5 00 00 00 00",
                   &m),
        0);
    bytes_free(&body);
    bytes_free(&f);
}
END_TEST

/* ----------------------------------------------------- the spec's examples */

#define MAX_EXAMPLES 32

struct example {
    char name[64];
    struct bytes bytes;
};

/*
 * Reads the examples of a protocol.md: fenced blocks whose info string is
 * "hex NAME". Each line holds hex byte pairs, then optionally "#" and a
 * comment. Returns the number found, or -1 if the file cannot be read.
 */
static int load_examples(const char *path, struct example *ex, int max)
{
    FILE *f = fopen(path, "r");
    char line[1024];
    int n = 0, in = 0;

    if (f == NULL)
        return -1;
    while (fgets(line, sizeof line, f) != NULL) {
        char *hash;

        if (!in && strncmp(line, "```hex ", 7) == 0 && n < max) {
            bytes_init(&ex[n].bytes);
            sscanf(line + 7, "%63s", ex[n].name);
            in = 1;
            continue;
        }
        if (in && strncmp(line, "```", 3) == 0) {
            in = 0;
            n++;
            continue;
        }
        if (!in)
            continue;
        hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        for (char *p = line; *p != '\0';) {
            unsigned v;
            if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') {
                p++;
                continue;
            }
            ck_assert_msg(sscanf(p, "%2x", &v) == 1 && p[1] != '\0' &&
                              (p[2] == ' ' || p[2] == '\n' || p[2] == '\0'),
                          "%s: example %s: bad hex at \"%s\"", path, ex[n].name, p);
            ck_assert_int_eq(bytes_put_u8(&ex[n].bytes, (uint8_t)v), 0);
            p += 2;
        }
    }
    fclose(f);
    ck_assert_msg(!in, "%s: example %s is not closed", path, ex[n].name);
    return n;
}

/* Finds a page of the spec: $top_srcdir/DIR/protocol.md or a relative path. */
static int find_spec(const char *dir, char *path, size_t size)
{
    const char *top = getenv("top_srcdir");
    const char *const prefixes[] = {top != NULL ? top : ".", ".", "..", "../.."};
    FILE *f;

    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        snprintf(path, size, "%s/%s/protocol.md", prefixes[i], dir);
        f = fopen(path, "r");
        if (f != NULL) {
            fclose(f);
            return 0;
        }
    }
    return -1;
}

static const struct example *example(const struct example *ex, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ex[i].name, name) == 0)
            return &ex[i];
    ck_abort_msg("docs/protocol.md has no example \"%s\"", name);
    return NULL;
}

/* The example decodes to want, and want encodes to the example. */
static void check_example(const struct example *ex, int n, const char *name,
                          const struct wire_msg *want)
{
    const struct example *e = example(ex, n, name);
    struct wire_msg d;
    struct bytes b;
    int rv;

    rv = wire_decode(e->bytes.p, e->bytes.len, NULL, &d, err);
    ck_assert_msg(rv == 0, "example %s: %d %s", name, rv, err);
    ck_assert_msg(msg_eq(want, &d), "example %s does not decode as documented", name);
    wire_msg_free(&d);
    bytes_init(&b);
    encode_ok(want, &b);
    ck_assert_msg(b.len == e->bytes.len && memcmp(b.p, e->bytes.p, b.len) == 0,
                  "example %s is not what the encoder writes", name);
    bytes_free(&b);
}

START_TEST(test_spec_examples)
{
    static struct example en[MAX_EXAMPLES], zh[MAX_EXAMPLES];
    char path[512];
    int nen, nzh;
    struct dlog_record rec = {
        .payload = "hi", .len = 2, .key = "k1", .key_len = 2, .txid = 42};
    struct dlog_record out = rec;
    struct wire_msg m, d;
    const struct example *e;

    ck_assert_msg(find_spec("docs", path, sizeof path) == 0,
                  "cannot find docs/protocol.md (set top_srcdir)");
    nen = load_examples(path, en, MAX_EXAMPLES);
    ck_assert_msg(find_spec("docs-zh", path, sizeof path) == 0,
                  "cannot find docs-zh/protocol.md (set top_srcdir)");
    nzh = load_examples(path, zh, MAX_EXAMPLES);
    /* The Chinese page shows the very same bytes. */
    ck_assert_int_eq(nen, nzh);
    ck_assert_int_ge(nen, 10);
    for (int i = 0; i < nen; i++) {
        ck_assert_str_eq(en[i].name, zh[i].name);
        ck_assert_msg(en[i].bytes.len == zh[i].bytes.len &&
                          memcmp(en[i].bytes.p, zh[i].bytes.p, en[i].bytes.len) == 0,
                      "example %s differs between docs and docs-zh", en[i].name);
    }

    m = req(WIRE_HELLO, 1);
    m.u.hello = (struct wire_hello){1, 1, "dlogctl", NULL, 0};
    check_example(en, nen, "hello-request", &m);

    m = rep(WIRE_HELLO, 1, 0);
    m.u.hello_rep = (struct wire_hello_rep){1, "dlogd", WIRE_MAX_FRAME_DEFAULT};
    check_example(en, nen, "hello-reply", &m);

    m = rep(WIRE_HELLO, 1, DLOG_EPROTO);
    m.err = (struct wire_error){"no common version", NULL, 1, 1};
    check_example(en, nen, "hello-refused", &m);

    m = req(WIRE_WRITE, 2);
    m.u.write = (struct wire_write){"orders", 3, 7, 1, &rec, 1};
    check_example(en, nen, "write-request", &m);

    m = rep(WIRE_WRITE, 2, 0);
    m.u.write_rep = (struct wire_write_rep){D100, D100, 42, 0};
    check_example(en, nen, "write-reply", &m);

    m = rep(WIRE_WRITE, 2, DLOG_ENOTOWNER);
    m.err = (struct wire_error){"owned by proxy-2", "10.0.0.2:7000", 0, 0};
    check_example(en, nen, "redirect-reply", &m);

    m = req(WIRE_READ, 3);
    m.u.read =
        (struct wire_read){"orders", D100, 0, 100, 1 << 20, 5000, NULL, 0, DLOG_DLSN_MAX};
    check_example(en, nen, "read-request", &m);

    out.dlsn = D100;
    m = rep(WIRE_READ, 3, 0);
    m.u.read_rep = (struct wire_read_rep){&out, 1, {1, 0, 1}};
    check_example(en, nen, "read-reply", &m);

    m = rep(WIRE_READ, 3, DLOG_ETIMEDOUT);
    m.err.message = "no record";
    check_example(en, nen, "timeout-reply", &m);

    m = req(WIRE_PING, 4);
    m.u.ping.nonce = 0x1234;
    check_example(en, nen, "ping-request", &m);

    m = rep(WIRE_ERROR, 0, DLOG_EPROTO);
    m.err.message = "bad frame";
    check_example(en, nen, "connection-error", &m);

    /* A frame of a version this peer does not speak: the server can still
     * read the type and the request id to reply to. */
    e = example(en, nen, "future-version");
    ck_assert_int_eq(wire_decode(e->bytes.p, e->bytes.len, NULL, &d, err),
                     WIRE_BAD_VERSION);
    ck_assert_uint_eq(d.version, 2);
    ck_assert_uint_eq(d.type, WIRE_PING);
    ck_assert_uint_eq(d.request_id, 5);

    for (int i = 0; i < nen; i++) {
        bytes_free(&en[i].bytes);
        bytes_free(&zh[i].bytes);
    }
}
END_TEST

/* ---------------------------------------------------------- robustness */

/* Decodes f; if it decodes, it must re-encode to a frame that decodes to
 * the same message. */
static void decode_any(const uint8_t *p, size_t len, struct bytes *tmp)
{
    struct wire_msg d, d2;
    int rv = wire_decode(p, len, NULL, &d, err);

    ck_assert(rv == 0 || rv == DLOG_EPROTO || rv == WIRE_BAD_VERSION ||
              rv == WIRE_UNKNOWN_TYPE);
    if (rv != 0) {
        ck_assert_uint_gt(strlen(err), 0);
        ck_assert_ptr_null(d.mem_);
        return;
    }
    bytes_reset(tmp);
    ck_assert_msg(wire_encode(&d, NULL, tmp, err) == 0, "decoded but not encodable: %s",
                  err);
    ck_assert_int_eq(wire_decode(tmp->p, tmp->len, NULL, &d2, err), 0);
    ck_assert(msg_eq(&d, &d2));
    wire_msg_free(&d);
    wire_msg_free(&d2);
}

START_TEST(test_mutations)
{
    struct wire_msg s[MAX_SAMPLES];
    size_t n = samples(s);
    struct bytes f, tmp;
    static const uint8_t values[] = {0x00, 0x01, 0x7f, 0x80, 0x90, 0x9f, 0xc0, 0xc1,
                                     0xc2, 0xc4, 0xcc, 0xcf, 0xd9, 0xdc, 0xdd, 0xff};

    bytes_init(&f);
    bytes_init(&tmp);
    for (size_t i = 0; i < n; i++) {
        encode_ok(&s[i], &f);
        if (f.len > 4096)
            continue;
        for (size_t k = WIRE_FRAME_PREFIX; k < f.len; k++) {
            uint8_t orig = f.p[k];
            for (size_t v = 0; v < sizeof values; v++) {
                f.p[k] = values[v];
                decode_any(f.p, f.len, &tmp);
            }
            f.p[k] = orig ^ 0x01;
            decode_any(f.p, f.len, &tmp);
            f.p[k] = orig;
        }
        /* Cut short, with the prefix fixed up: the msgpack ends early. */
        for (size_t k = WIRE_FRAME_PREFIX + 1; k < f.len; k++) {
            uint32_t len = get_u32be(f.p);
            put_u32be(f.p, (uint32_t)(k - WIRE_FRAME_PREFIX));
            decode_any(f.p, k, &tmp);
            put_u32be(f.p, len);
        }
    }
    bytes_free(&f);
    bytes_free(&tmp);
}
END_TEST

START_TEST(test_type_names)
{
    ck_assert_str_eq(wire_type_name(WIRE_WRITE), "WRITE");
    ck_assert_str_eq(wire_type_name(WIRE_WRITE | WIRE_REPLY), "WRITE");
    ck_assert_str_eq(wire_type_name(WIRE_ERROR | WIRE_REPLY), "ERROR");
    ck_assert_ptr_null(wire_type_name(0x7f));
    ck_assert_ptr_null(wire_type_name(0x3f));
    ck_assert_str_eq(wire_type_name(WIRE_META_KV_PUT), "META_KV_PUT");
    ck_assert_str_eq(wire_type_name(WIRE_CLUSTER_STATUS | WIRE_REPLY), "CLUSTER_STATUS");
    ck_assert_ptr_null(wire_type_name(0x5f));
}
END_TEST

/* ------------------------------------------------------------------- main */

static Suite *wire_suite(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("codec");

    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_round_trip_every_message);
    tcase_add_test(tc, test_decode_zero_copy);
    tcase_add_test(tc, test_encode_iov_matches);
    tcase_add_test(tc, test_frame_stream);
    tcase_add_test(tc, test_bad_frames);
    tcase_add_test(tc, test_bad_frame_headers);
    tcase_add_test(tc, test_bad_lengths);
    tcase_add_test(tc, test_bad_counts);
    tcase_add_test(tc, test_encode_refuses);
    tcase_add_test(tc, test_integer_widths);
    tcase_add_test(tc, test_spec_examples);
    tcase_add_test(tc, test_mutations);
    tcase_add_test(tc, test_type_names);
    suite_add_tcase(s, tc);
    return s;
}

/* Writes every sample as DIR/NN-TYPE-req.bin or -rep.bin, and a few
 * files holding several frames back to back. */
static int write_corpus(const char *dir)
{
    struct wire_msg s[MAX_SAMPLES];
    size_t n = samples(s);
    struct bytes f, all;
    char path[512];
    int rv = 0;

    bytes_init(&f);
    bytes_init(&all);
    for (size_t i = 0; i < n && rv == 0; i++) {
        FILE *out;
        const char *name = wire_type_name(s[i].type);

        bytes_reset(&f);
        if (wire_encode(&s[i], NULL, &f, err) != 0) {
            fprintf(stderr, "sample %zu: %s\n", i, err);
            rv = 1;
            break;
        }
        if (f.len > 8192) /* keep the corpus small: the 100 KiB write stays out */
            continue;
        if (bytes_append(&all, f.p, f.len) != 0)
            rv = 1;
        snprintf(path, sizeof path, "%s/%02zu-%s-%s.bin", dir, i, name,
                 s[i].is_reply ? "rep" : "req");
        out = fopen(path, "wb");
        if (out == NULL || fwrite(f.p, 1, f.len, out) != f.len) {
            fprintf(stderr, "%s: %s\n", path, strerror(errno));
            rv = 1;
        }
        if (out != NULL && fclose(out) != 0)
            rv = 1;
        if ((i + 1) % 8 == 0 && all.len > 0 && rv == 0) {
            snprintf(path, sizeof path, "%s/stream-%02zu.bin", dir, i / 8);
            out = fopen(path, "wb");
            if (out == NULL || fwrite(all.p, 1, all.len, out) != all.len)
                rv = 1;
            if (out != NULL && fclose(out) != 0)
                rv = 1;
            bytes_reset(&all);
        }
    }
    bytes_free(&f);
    bytes_free(&all);
    return rv;
}

int main(int argc, char **argv)
{
    SRunner *sr;
    int failed;

    if (argc == 3 && strcmp(argv[1], "--corpus") == 0)
        return write_corpus(argv[2]) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    if (argc != 1) {
        fprintf(stderr, "usage: %s [--corpus DIR]\n", argv[0]);
        return 2;
    }
    sr = srunner_create(wire_suite());
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
