/*
 * The messages of the dlog wire protocol, version 1, as C structs
 * (docs/protocol.md is the specification; section names are quoted below).
 *
 * One struct wire_msg holds one frame: the envelope (version, type,
 * request id, and for replies the status) and a union with the body of the
 * message its type names. The same struct is filled by the caller before
 * wire_encode and by wire_decode.
 *
 * Ownership of decoded messages (wire_decode): byte fields (payloads, keys,
 * key prefixes, auth tokens) point into the frame buffer given to
 * wire_decode, without a copy; strings (names, messages, addresses) and
 * arrays (records, names, segments) live in memory owned by the message.
 * Everything stays valid until wire_msg_free(msg) and, for byte fields,
 * while the frame buffer is unchanged: keep both for as long as the decoded
 * message is used.
 */
#ifndef DLOG_WIRE_MSGS_H
#define DLOG_WIRE_MSGS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include <dlog/dlog.h>

/* Message types ("Message catalogue"). A reply's type is its request's type
 * with WIRE_REPLY set. Types 0x40..0x5f are reserved for the metadata
 * group's node calls and 0x60..0x7f for the data groups'. */
#define WIRE_TYPE_MAP(X)                                                                 \
    X(ERROR, 0x00) /* only as a reply (0x80): a connection-level error */                \
    X(HELLO, 0x01)                                                                       \
    X(PING, 0x02)                                                                        \
    X(STREAM_CREATE, 0x10)                                                               \
    X(STREAM_DELETE, 0x11)                                                               \
    X(STREAM_LIST, 0x12)                                                                 \
    X(STREAM_DESCRIBE, 0x13)                                                             \
    X(STREAM_TRUNCATE, 0x14)                                                             \
    X(STREAM_RETENTION, 0x15)                                                            \
    X(LIMITS_SET, 0x16)                                                                  \
    X(LIMITS_GET, 0x17)                                                                  \
    X(LIMITS_STATS, 0x18)                                                                \
    X(WRITER_OPEN, 0x20)                                                                 \
    X(WRITE, 0x21)                                                                       \
    X(WRITER_FLUSH, 0x22)                                                                \
    X(WRITER_CLOSE, 0x23)                                                                \
    X(HEARTBEAT, 0x24)                                                                   \
    X(RELEASE, 0x25)                                                                     \
    X(READER_OPEN, 0x30)                                                                 \
    X(READ, 0x31)                                                                        \
    X(META_CREATE, 0x40)                                                                 \
    X(META_GET, 0x41)                                                                    \
    X(META_LIST, 0x42)                                                                   \
    X(META_UPDATE, 0x43)                                                                 \
    X(META_REMOVE, 0x44)                                                                 \
    X(META_KV_GET, 0x45)                                                                 \
    X(META_KV_PUT, 0x46)                                                                 \
    X(META_KV_REMOVE, 0x47)                                                              \
    X(META_KV_LIST, 0x48)                                                                \
    X(META_REVISION, 0x49)                                                               \
    X(NODE_JOIN, 0x4a)                                                                   \
    X(NODE_REMOVE, 0x4b)                                                                 \
    X(CLUSTER_STATUS, 0x4c)                                                              \
    X(CLUSTER_GROUPS, 0x50)                                                              \
    X(SEG_OPEN, 0x60)                                                                    \
    X(SEG_APPEND, 0x61)                                                                  \
    X(SEG_READ, 0x62)                                                                    \
    X(SEG_INFO, 0x63)                                                                    \
    X(SEG_FENCE, 0x64)                                                                   \
    X(SEG_SEAL, 0x65)                                                                    \
    X(SEG_REMOVE, 0x66)                                                                  \
    X(SEG_WAIT, 0x67)                                                                    \
    X(SEG_DUMP, 0x68)

enum wire_type {
#define WIRE__TYPE_ENUM(name, value) WIRE_##name = value,
    WIRE_TYPE_MAP(WIRE__TYPE_ENUM)
#undef WIRE__TYPE_ENUM
};

#define WIRE_REPLY 0x80 /* the reply bit of the type byte */

/* The message's name, such as "WRITE", or NULL for an unknown type. The
 * reply bit is ignored. */
const char *wire_type_name(unsigned type);

/* ------------------------------------------------------------ connection */

/* HELLO request: the first frame on a connection. */
struct wire_hello {
    uint32_t min_version;    /* the versions the client speaks, 1..255 */
    uint32_t max_version;    /* >= min_version */
    const char *client_name; /* 0..WIRE_MAX_PEER_NAME bytes, e.g. "dlogctl 0.1.0" */
    const void *token;       /* auth token, NULL when absent */
    size_t token_len;        /* 0..WIRE_MAX_TOKEN */
};

/* HELLO reply (status 0). */
struct wire_hello_rep {
    uint32_t version;        /* the version both sides use from now on */
    const char *server_name; /* 0..WIRE_MAX_PEER_NAME bytes */
    uint32_t max_frame;      /* the largest frame the server accepts */
};

/* PING request and reply: the reply echoes the nonce. */
struct wire_ping {
    uint64_t nonce;
};

/* -------------------------------------------------------------- streams */

/* A request that names one stream: STREAM_DELETE, STREAM_RETENTION, RELEASE. */
struct wire_stream_req {
    const char *stream;
};

struct wire_create {
    const char *stream;
    int has_config; /* 0: nil on the wire, the server's defaults */
    struct dlog_stream_config config;
};

struct wire_list {
    const char *start_after; /* "" lists from the first name */
    uint32_t limit;          /* 1..WIRE_MAX_LIST names per reply */
};

struct wire_list_rep {
    const char *const *names; /* count names in byte order */
    size_t count;
    int more; /* 1: more names follow the last one; ask again */
};

struct wire_describe {
    const char *stream;
    uint64_t seg_after;    /* segments with seq > seg_after; 0 = from the first */
    uint32_t max_segments; /* 0..WIRE_MAX_SEGMENTS */
};

/*
 * STREAM_DESCRIBE reply: info.segments / info.nsegments hold this reply's
 * page of segments (ascending by seq); more says whether segments follow.
 */
struct wire_describe_rep {
    struct dlog_stream_info info;
    uint64_t total_segments; /* segments the stream has in all */
    int more;
};

struct wire_truncate {
    const char *stream;
    struct dlog_dlsn dlsn;
};

struct wire_retention_rep {
    uint32_t deleted; /* segments deleted, 0..INT32_MAX */
};

/* --------------------------------------------------------------- limits */

/* LIMITS_SET request; stream "" names the namespace. */
struct wire_limits_set {
    const char *stream;
    struct dlog_limits limits;
};

/* LIMITS_GET and LIMITS_STATS requests; stream "" names the namespace. */
struct wire_limits_req {
    const char *stream;
};

/* LIMITS_GET reply. */
struct wire_limits_rep {
    struct dlog_limits limits;
};

/* LIMITS_STATS reply: stats.proxies holds stats.nproxies entries
 * (0..WIRE_MAX_PROXIES). */
struct wire_limits_stats_rep {
    struct dlog_limit_stats stats;
};

/* -------------------------------------------------------------- writers */

struct wire_writer_open {
    const char *stream;
    uint32_t mode; /* enum dlog_writer_mode */
};

struct wire_writer_open_rep {
    uint64_t epoch;     /* the epoch every WRITE of this writer carries */
    uint64_t last_txid; /* the stream's last txid when the writer opened */
    struct dlog_stream_config config;
};

/*
 * WRITE request. producer_id 0 means no exactly-once producer (nil on the
 * wire); otherwise sequence >= 1 numbers this write among the producer's
 * writes to the stream. Records' dlsn fields are not sent; recs[i].key is
 * NULL when key_len is 0.
 */
struct wire_write {
    const char *stream;
    uint64_t epoch;
    uint64_t producer_id;
    uint64_t sequence;
    const struct dlog_record *recs; /* 1..WIRE_MAX_RECORDS */
    size_t nrecs;
};

struct wire_write_rep {
    struct dlog_dlsn first;
    struct dlog_dlsn last;
    uint64_t first_txid;
    int duplicate; /* 1: an earlier WRITE with this producer sequence was applied */
};

/* A request about one writer: WRITER_FLUSH, WRITER_CLOSE, HEARTBEAT. */
struct wire_writer_req {
    const char *stream;
    uint64_t epoch;
};

struct wire_heartbeat_rep {
    uint64_t epoch;        /* the stream's current epoch */
    struct dlog_dlsn last; /* the last record, DLOG_DLSN_HEAD when none */
    uint64_t last_txid;
};

/* -------------------------------------------------------------- readers */

struct wire_reader_open {
    const char *stream;
    uint32_t start; /* enum dlog_start */
    struct dlog_dlsn start_dlsn;
    uint64_t start_txid;
};

struct wire_reader_open_rep {
    struct dlog_dlsn position; /* where the first READ starts */
    uint64_t min_txid;         /* skip records with a smaller txid */
};

struct wire_read {
    const char *stream;
    struct dlog_dlsn position; /* the first record at or after it */
    uint64_t min_txid;
    uint32_t max_records;   /* 1..WIRE_MAX_RECORDS */
    uint32_t max_bytes;     /* >= 1: payload + key bytes per reply, soft */
    uint32_t wait_ms;       /* 0..WIRE_MAX_WAIT_MS: long-poll for the first record */
    const void *key_prefix; /* NULL when key_prefix_len is 0 */
    size_t key_prefix_len;  /* 0..WIRE_MAX_KEY */
    struct dlog_dlsn end;   /* DLOG_DLSN_MAX: no end */
};

struct wire_read_rep {
    const struct dlog_record *recs; /* 0..WIRE_MAX_RECORDS */
    size_t nrecs;
    struct dlog_dlsn next; /* the position the next READ starts at */
};

/* ------------------------------------------------------- metadata node calls */

/* 1 if type (without WIRE_REPLY) is one of the metadata group's node calls. */
#define WIRE_IS_META_NODE(type) ((type) >= 0x40 && (type) <= 0x5f)

/*
 * Node calls of the metadata group (docs/protocol.md, "Node calls"), served
 * by every `dlogd --role node`. Writes go to the group's leader (others
 * answer DLOG_ENOTLEADER with the leader's address, or DLOG_EUNAVAILABLE);
 * reads are served by any replica from what it has applied, and wait for
 * nothing: a read carrying min_revision > 0 is answered only by a replica
 * whose revision has reached it (others redirect to the leader or answer
 * DLOG_EUNAVAILABLE), which gives a client read-your-writes across replicas.
 *
 * Stream records travel as the bytes of meta_stream_encode (meta/meta.h),
 * opaque to this layer.
 */

/* META_CREATE and META_UPDATE requests: [record: bin]. */
struct wire_meta_record {
    const void *record; /* meta_stream_encode bytes, 1..WIRE_MAX_META_RECORD */
    size_t len;
};

/* Requests naming one stream or key: META_GET and META_REMOVE (a stream
 * name), META_KV_GET and META_KV_REMOVE (a key): [key: str, version: uint,
 * min_revision: uint]. version is the expected one for the removes (0 for
 * a stream: any; META_KV_ANY for a key: any) and 0 for the gets;
 * min_revision is 0 for the removes. */
struct wire_meta_key {
    const char *key; /* 1..WIRE_MAX_META_KEY bytes */
    uint64_t version;
    uint64_t min_revision;
};

/* META_KV_PUT request: [key: str, value: bin, version: uint]; version is the
 * expected one (0: create, UINT64_MAX: any). */
struct wire_meta_kv_put {
    const char *key;
    const void *value; /* NULL when len is 0 */
    size_t len;        /* 0..WIRE_MAX_META_VALUE */
    uint64_t version;
};

/* META_LIST and META_KV_LIST requests: [prefix: str, start_after: str,
 * limit: uint, min_revision: uint]. prefix is "" for META_LIST. */
struct wire_meta_list {
    const char *prefix;      /* 0..WIRE_MAX_META_KEY bytes */
    const char *start_after; /* "" lists from the first */
    uint32_t limit;          /* 1..WIRE_MAX_LIST */
    uint64_t min_revision;
};

/* META_REVISION request: [barrier: bool]. With barrier, only the leader
 * answers, after a Raft barrier of its term has been applied: every write
 * proposed before (by any leader) is then applied or lost for good. */
struct wire_meta_revision {
    int barrier;
};

/* The reply to every metadata write (META_CREATE, META_UPDATE, META_REMOVE,
 * META_KV_PUT, META_KV_REMOVE): [version, id, revision]. version: the new
 * version of the stream or key (0 once removed); id: the stream id
 * META_CREATE assigned (0 otherwise); revision: the store's revision after
 * the write. */
struct wire_meta_write_rep {
    uint64_t version;
    uint64_t id;
    uint64_t revision;
};

/* META_GET reply: [record: bin, revision: uint]. */
struct wire_meta_get_rep {
    const void *record;
    size_t len;
    uint64_t revision; /* of the replica that answered */
};

/* META_KV_GET reply: [value: bin, version: uint, revision: uint]. */
struct wire_meta_value_rep {
    const void *value;
    size_t len;
    uint64_t version;
    uint64_t revision;
};

/* One key of a META_KV_LIST reply: [key, value, version]. */
struct wire_kv {
    const char *key;
    const void *value;
    size_t len;
    uint64_t version;
};

/* META_KV_LIST reply: [items: array, more: bool, revision: uint]. */
struct wire_meta_kv_list_rep {
    const struct wire_kv *items; /* 0..WIRE_MAX_LIST */
    size_t count;
    int more;
    uint64_t revision;
};

/* META_LIST reply: [names: array of str, more: bool, revision: uint]. */
struct wire_meta_list_rep {
    const char *const *names; /* 0..WIRE_MAX_LIST */
    size_t count;
    int more;
    uint64_t revision;
};

/* META_REVISION reply: [revision: uint]. */
struct wire_meta_revision_rep {
    uint64_t revision;
};

/* NODE_JOIN request: [id, raft_address, listen_address]: add the node as a
 * voter of the metadata group (or confirm it is one) and record its listen
 * address. Reply: []. */
struct wire_node_join {
    uint64_t id; /* >= 1 */
    const char *raft_address;
    const char *listen_address;
};

/* NODE_REMOVE request: [id]. Reply: []. */
struct wire_node_remove {
    uint64_t id;
};

/* A member of the metadata group in a CLUSTER_STATUS reply:
 * [id, raft_address, listen_address, role]. listen_address is "" when the
 * node has not registered one. */
struct wire_member {
    uint64_t id;
    const char *raft_address;
    const char *listen_address;
    uint32_t role; /* 0 standby, 1 voter, 2 spare (libraft's RAFT_STANDBY..) */
};

/* CLUSTER_STATUS request: []. Reply: [id, state, leader_id, leader_address,
 * term, commit_index, applied_index, revision, members]. state: 0
 * unavailable, 1 follower, 2 candidate, 3 leader; leader_address is the
 * leader's listen address, "" when unknown. */
struct wire_cluster_status_rep {
    uint64_t id;
    uint32_t state;
    uint64_t leader_id;
    const char *leader_address;
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t revision;
    const struct wire_member *members; /* 0..WIRE_MAX_MEMBERS */
    size_t nmembers;
};

/* A member of a data group in a CLUSTER_GROUPS reply: [id, role]. */
struct wire_group_member {
    uint64_t id;
    uint32_t role; /* as wire_member's */
};

/*
 * One data group as one replica sees it, in a CLUSTER_GROUPS reply:
 * [group, state, leader_id, term, commit_index, applied_index, segments,
 * entries, bytes, load_bps, members: array of [id, role]]. state is this
 * replica's (as in CLUSTER_STATUS); applied_index, segments, entries and
 * bytes are its state machine's (what it has applied and stores);
 * load_bps is the bytes per second of appends this replica applied over
 * the last few seconds (the placement's measure of load).
 */
struct wire_group_status {
    uint32_t group; /* 0..WIRE_MAX_GROUPS-1, ascending in a reply */
    uint32_t state;
    uint64_t leader_id; /* 0 when unknown */
    uint64_t term;
    uint64_t commit_index;
    uint64_t applied_index;
    uint64_t segments;
    uint64_t entries;
    uint64_t bytes;
    uint64_t load_bps;
    const struct wire_group_member *members; /* 0..WIRE_MAX_MEMBERS */
    size_t nmembers;
};

/* CLUSTER_GROUPS request: []. Reply: [id, groups: array], the answering
 * node's id and its view of every data group it hosts, ascending. */
struct wire_cluster_groups_rep {
    uint64_t id;
    const struct wire_group_status *groups; /* 0..WIRE_MAX_GROUPS */
    size_t ngroups;
};

/* ---------------------------------------------------------- data node calls */

/* 1 if type (without WIRE_REPLY) is one of the data groups' node calls. */
#define WIRE_IS_DATA_NODE(type) ((type) >= 0x60 && (type) <= 0x7f)

#define WIRE_MAX_GROUPS 1024        /* data groups of a cluster */
#define WIRE_MAX_ENTRY  (64u << 20) /* one segment entry (seg/entry.h) */

/*
 * Node calls of the data groups (docs/protocol.md, "Data node calls"): the
 * segment store calls of seg/seg.h on data group `group`. Writes (OPEN,
 * APPEND, FENCE, SEAL, REMOVE) go to the group's leader, which proposes
 * them and answers once they are applied (others answer DLOG_ENOTLEADER
 * with the leader's listen address, or DLOG_EUNAVAILABLE). READ and INFO
 * are served by any replica that has applied at least min_applied (others
 * redirect to the leader). Bodies:
 *   SEG_OPEN    [group, stream, seq, epoch, start_txid]
 *   SEG_APPEND  [group, stream, seq, epoch, flags, entries: array of bin,
 *                writer, append_seq] (the last two optional: a request of
 *                6 fields has writer 0)
 *   SEG_READ    [group, stream, seq, from, max_bytes, min_applied]
 *   SEG_INFO    [group, stream, seq, min_applied]
 *   SEG_FENCE   [group, stream, seq, epoch]
 *   SEG_SEAL    [group, stream, seq, epoch]
 *   SEG_REMOVE  [group, stream, seq]
 *   SEG_WAIT    [applied: array of uint, timeout_ms]
 *   SEG_DUMP    see struct wire_seg_dump below
 */
struct wire_seg_req {
    uint32_t group;              /* 0..WIRE_MAX_GROUPS-1 */
    uint64_t stream;             /* stream id */
    uint64_t seq;                /* segment sequence number */
    uint64_t epoch;              /* OPEN, APPEND, FENCE, SEAL */
    uint64_t start_txid;         /* OPEN */
    uint32_t flags;              /* APPEND: SEG_APPEND_* */
    const struct iovec *entries; /* APPEND: 1..WIRE_MAX_RECORDS complete entries */
    size_t n;
    uint64_t writer;      /* APPEND: 0, or the appender's id, with... */
    uint64_t append_seq;  /* ...its sequence: a repeat is applied once */
    uint64_t from;        /* READ: the first entry id */
    uint64_t max_bytes;   /* READ: stop after this many bytes (at least one entry) */
    uint64_t min_applied; /* READ, INFO: answer only from a replica this far */
};

/* A segment's state (seg/seg.h's struct seg_info): an array of 10 uints. */
struct wire_seg_info {
    uint64_t fence_epoch;
    uint32_t sealed; /* 0 or 1 */
    uint64_t next_entry;
    uint64_t records;
    uint64_t bytes;
    uint64_t first_txid;
    uint64_t last_txid;
    uint64_t created_ms;
    uint64_t last_rec_entry;
    uint32_t last_rec_slot;
};

/* The reply to every data call but READ and WAIT: [applied, first_entry,
 * first_txid, info]. applied: the Raft index of the write (writes) or the
 * replica's applied index (INFO); first_entry, first_txid: APPEND's results
 * (0 otherwise); info: the segment afterwards (zeros once removed). */
struct wire_seg_rep {
    uint64_t applied;
    uint64_t first_entry;
    uint64_t first_txid;
    struct wire_seg_info info;
};

/* One entry of a SEG_READ reply: [id, bytes]. */
struct wire_seg_entry {
    uint64_t id;
    const void *p;
    size_t len; /* 1..WIRE_MAX_ENTRY */
};

/* SEG_READ reply: [applied, entries: array]. */
struct wire_seg_read_rep {
    uint64_t applied;                     /* the answering replica's applied index */
    const struct wire_seg_entry *entries; /* 0..WIRE_MAX_RECORDS */
    size_t n;
};

/* SEG_WAIT request: answered when the replica has applied, in some group
 * g < n, past applied[g], or after timeout_ms (0..WIRE_MAX_WAIT_MS) with
 * the same reply: [applied: array of uint], the replica's applied index of
 * every group it hosts. */
struct wire_seg_wait {
    const uint64_t *applied; /* 1..WIRE_MAX_GROUPS */
    size_t n;
    uint32_t timeout_ms;
};

struct wire_seg_wait_rep {
    const uint64_t *applied; /* 0..WIRE_MAX_GROUPS */
    size_t n;
};

/*
 * SEG_DUMP (docs/protocol.md, "SEG_DUMP"): a replica's contents in chunks,
 * for a replica that restored a Raft snapshot ahead of its own store
 * (node/data_fsm.h, "state transfer"). Served by the replica asked, never
 * redirected. Request: [group, session, after: [kind, stream, seq, entry],
 * max_bytes, min_applied].
 * - session 0 opens a transfer session (one read transaction pinned on the
 *   server until the dump is complete or the session is idle for 30 s);
 *   the reply names it, later requests pass it back.
 * - after is the position to go on from: kind 0 (the start; stream, seq,
 *   entry 0), 2 (after segment stream/seq; entry 0) or 3 (after entry
 *   stream/seq/entry): the last item of the previous reply, so a request
 *   sent again after a lost reply gets the same answer.
 * - max_bytes: 1..WIRE_MAX_DUMP_BYTES, the reply holds at least one item
 *   and stops once it has this many bytes of keys and values; 0 (with
 *   session 0) asks for the state only, with no session.
 * - min_applied: the server refuses (DLOG_EBUSY) when its state is older,
 *   or when it is itself behind; DLOG_ENOTFOUND names a session that is
 *   gone (start again); DLOG_EBUSY also when it serves too many sessions.
 * Reply: [session, state: [applied, hash, segments, entries, bytes],
 * segs: array of [stream, seq, info], entries: array of [stream, seq,
 * entry, bytes], done]: every segment comes before every entry, each in
 * key order; done is true when nothing follows the last item.
 */
#define WIRE_MAX_DUMP_BYTES (32u << 20) /* max_bytes of one SEG_DUMP */
#define WIRE_MAX_DUMP_ITEMS 65536       /* segs, and entries, in one reply */

struct wire_seg_dump {
    uint32_t group;   /* 0..WIRE_MAX_GROUPS-1 */
    uint64_t session; /* 0: open one */
    uint32_t kind;    /* after: 0, 2 (a segment) or 3 (an entry) */
    uint64_t stream;  /* after: kind 2, 3 */
    uint64_t seq;     /* after: kind 2, 3 */
    uint64_t entry;   /* after: kind 3 */
    uint64_t max_bytes;
    uint64_t min_applied;
};

#define WIRE_DUMP_ONCE_SLOTS 4
/* One segment of a dump: [stream, seq, info, once], once an array of up to
 * WIRE_DUMP_ONCE_SLOTS [writer, append_seq, first_entry, first_txid] (the
 * segment's last APPEND_ONCE per writer; may be absent: no slots). */
struct wire_dump_seg {
    uint64_t stream, seq;
    struct wire_seg_info info;
    uint64_t once[WIRE_DUMP_ONCE_SLOTS][4];
    uint32_t nonce;
};

struct wire_dump_entry {
    uint64_t stream, seq, entry;
    const void *p;
    size_t len; /* 1..WIRE_MAX_ENTRY */
};

struct wire_seg_dump_rep {
    uint64_t session;                                 /* 0 only for a state-only answer */
    uint64_t applied, hash, segments, entries, bytes; /* the dump's state */
    const struct wire_dump_seg *segs;                 /* 0..WIRE_MAX_DUMP_ITEMS */
    size_t nsegs;
    const struct wire_dump_entry *ents; /* 0..WIRE_MAX_DUMP_ITEMS */
    size_t nents;
    int done; /* 0 or 1 */
};

/* ------------------------------------------------------------- replies */

/*
 * The body of every reply whose status is not 0. address is set for
 * DLOG_ENOTOWNER and DLOG_ENOTLEADER ("host:port" to retry at) and NULL
 * otherwise; min_version/max_version are set in a HELLO reply with status
 * DLOG_EPROTO (the versions the server speaks) and 0 otherwise.
 */
struct wire_error {
    const char *message; /* 1..WIRE_MAX_MESSAGE bytes */
    const char *address;
    uint32_t min_version;
    uint32_t max_version;
};

/* --------------------------------------------------------------- frames */

struct wire_msg {
    uint32_t version;    /* the envelope's protocol version */
    uint32_t type;       /* enum wire_type, without WIRE_REPLY */
    int is_reply;        /* 1: the type byte had WIRE_REPLY */
    uint64_t request_id; /* >= 1; 0 only in a connection-level ERROR reply */
    int status;          /* replies: 0 or a dlog_err code */
    union {
        struct wire_hello hello;
        struct wire_hello_rep hello_rep;
        struct wire_ping ping; /* PING request and reply */
        struct wire_create create;
        struct wire_stream_req del;
        struct wire_list list;
        struct wire_list_rep list_rep;
        struct wire_describe describe;
        struct wire_describe_rep describe_rep;
        struct wire_truncate truncate;
        struct wire_stream_req retention;
        struct wire_retention_rep retention_rep;
        struct wire_limits_set limits_set;
        struct wire_limits_req limits_req; /* LIMITS_GET and LIMITS_STATS */
        struct wire_limits_rep limits_rep;
        struct wire_limits_stats_rep limits_stats_rep;
        struct wire_writer_open writer_open;
        struct wire_writer_open_rep writer_open_rep;
        struct wire_write write;
        struct wire_write_rep write_rep;
        struct wire_writer_req flush;
        struct wire_writer_req close;
        struct wire_writer_req heartbeat;
        struct wire_heartbeat_rep heartbeat_rep;
        struct wire_stream_req release;
        struct wire_reader_open reader_open;
        struct wire_reader_open_rep reader_open_rep;
        struct wire_read read;
        struct wire_read_rep read_rep;
        struct wire_meta_record meta_record; /* META_CREATE, META_UPDATE */
        struct wire_meta_key meta_key; /* META_GET, META_REMOVE, META_KV_GET, _REMOVE */
        struct wire_meta_kv_put meta_kv_put;
        struct wire_meta_list meta_list; /* META_LIST, META_KV_LIST */
        struct wire_meta_revision meta_revision;
        struct wire_meta_write_rep meta_write_rep;
        struct wire_meta_get_rep meta_get_rep;
        struct wire_meta_value_rep meta_value_rep;
        struct wire_meta_kv_list_rep meta_kv_list_rep;
        struct wire_meta_list_rep meta_list_rep;
        struct wire_meta_revision_rep meta_revision_rep;
        struct wire_node_join node_join;
        struct wire_node_remove node_remove;
        struct wire_cluster_status_rep cluster_status_rep;
        struct wire_cluster_groups_rep cluster_groups_rep;
        struct wire_seg_req seg;     /* SEG_OPEN .. SEG_REMOVE requests */
        struct wire_seg_rep seg_rep; /* their replies but SEG_READ's */
        struct wire_seg_read_rep seg_read_rep;
        struct wire_seg_wait seg_wait;
        struct wire_seg_wait_rep seg_wait_rep;
        struct wire_seg_dump seg_dump;
        struct wire_seg_dump_rep seg_dump_rep;
    } u;
    struct wire_error err; /* replies with status != 0 */
    void *mem_;            /* private: what wire_decode allocated */
};

#endif
