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
    X(READ, 0x31)

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
    } u;
    struct wire_error err; /* replies with status != 0 */
    void *mem_;            /* private: what wire_decode allocated */
};

#endif
