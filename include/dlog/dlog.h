/*
 * dlog — replicated log service and replicated-state-machine framework.
 *
 * This is the umbrella public header. One API, several backends chosen by
 * the namespace URI given to dlog_open():
 *
 *   "mem:"            everything in memory, for tests (one process)
 *   "file:DIR"        durable, on LMDB in DIR; several processes may open
 *                     the same DIR at once
 *   "dlog://h:p,..."  a dlogd server (dlogd --role local) or cluster: the
 *                     first host:port that answers; on a lost connection
 *                     the library reconnects, cycling through the list
 *   "cluster://h:p,..." the nodes of a cluster (dlogd --role node): the core
 *                     runs in this process, over node calls to the
 *                     metadata group and the data groups (docs/cluster.md)
 *
 * Conventions
 * - Functions return 0 (or a count) on success and a negative dlog_err code
 *   (include/dlog/err.h) on failure. After a failure, dlog_errmsg(ns) (or
 *   dlog_writer_errmsg / dlog_reader_errmsg) says in words what went wrong;
 *   the message lives until the next call on the same object.
 * - Blocking calls may be made from any thread. Handles (namespace, writer,
 *   reader) are thread-safe unless a function says otherwise.
 * - Async calls take a caller-allocated request (struct dlog_write_req,
 *   struct dlog_read_req) that must stay valid until its callback has run;
 *   the callback runs exactly once. With dlog_options.loop set, callbacks
 *   run on that libuv loop's thread; without a loop, write callbacks run on
 *   the writer's internal thread and async reads are not available.
 * - Records passed to dlog_write* are copied before the call returns: the
 *   caller may reuse its memory at once.
 */
#ifndef DLOG_DLOG_H
#define DLOG_DLOG_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/err.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DLOG_VERSION_MAJOR 0
#define DLOG_VERSION_MINOR 1
#define DLOG_VERSION_PATCH 0
/* The library's version string, such as "0.1.0". */
const char *dlog_version(void);

struct uv_loop_s; /* libuv's uv_loop_t; uv.h is only needed for async calls */

/* ------------------------------------------------------------------------
 * Positions
 * ------------------------------------------------------------------------ */

/*
 * A DLSN is a record's position in its stream: (log segment sequence number,
 * entry id within the segment, slot within the entry). DLSNs are totally
 * ordered and never reused. Segments are numbered from 1 and entries from 0,
 * so the first record of a new stream is 1/0/0 and {0,0,0} (DLOG_DLSN_HEAD)
 * is below every record.
 */
struct dlog_dlsn {
    uint64_t seg;
    uint64_t entry;
    uint32_t slot;
};

#define DLOG_DLSN_HEAD ((struct dlog_dlsn){0, 0, 0})
#define DLOG_DLSN_MAX  ((struct dlog_dlsn){UINT64_MAX, UINT64_MAX, UINT32_MAX})
/* Room for "seg/entry/slot" with a terminating NUL. */
#define DLOG_DLSN_STRLEN 64

/* <0, 0, >0 as a is below, equal to or above b. */
int dlog_dlsn_cmp(struct dlog_dlsn a, struct dlog_dlsn b);
/* Writes "seg/entry/slot" into buf (DLOG_DLSN_STRLEN bytes); returns buf. */
char *dlog_dlsn_format(struct dlog_dlsn d, char *buf, size_t size);
/* Parses "seg/entry/slot"; 0 or DLOG_EINVAL (out unchanged). */
int dlog_dlsn_parse(const char *s, struct dlog_dlsn *out);

/* ------------------------------------------------------------------------
 * Records and buffers
 * ------------------------------------------------------------------------ */

/*
 * A record. On write, the caller fills payload/len, optionally key/key_len,
 * and txid (ignored when the stream assigns txids). On read, dlog fills all
 * fields; the pointers are owned by the reader and stay valid until the next
 * read call on that reader, or its close.
 */
struct dlog_record {
    const void *payload;
    size_t len;
    const void *key; /* may be NULL when key_len is 0 */
    size_t key_len;
    uint64_t txid;
    uint32_t flags;        /* reserved, 0 */
    struct dlog_dlsn dlsn; /* set on read and in write results */
};

/*
 * A growable byte buffer, used for results (state machines) and projected
 * payloads. dlog_buf_append grows it with realloc; whoever owns the buffer
 * frees p with dlog_buf_free.
 */
struct dlog_buf {
    void *p;
    size_t len;
    size_t cap;
};
int dlog_buf_append(struct dlog_buf *b, const void *p, size_t n);
void dlog_buf_free(struct dlog_buf *b);

/* ------------------------------------------------------------------------
 * Namespace
 * ------------------------------------------------------------------------ */

struct dlog_ns; /* a namespace: a set of streams sharing one metadata store */

#define DLOG_OPTIONS_VERSION 1
struct dlog_options {
    uint32_t version; /* DLOG_OPTIONS_VERSION */
    /*
     * The loop on which async callbacks run. NULL: no async reads, and
     * write callbacks run on the writer's own thread. The loop must outlive
     * the namespace; after dlog_close, run the loop until its handles close.
     */
    struct uv_loop_s *loop;
    /* file: the LMDB map size in bytes (sparse); 0 means 1 TiB. */
    uint64_t map_size;
    /* file: 1 to acknowledge without fsync (for benchmarks only); default 0. */
    int no_sync;
};
void dlog_options_init(struct dlog_options *o);

/*
 * Opens the namespace at uri (see the top of this file). opts may be NULL
 * for defaults. "file:DIR" creates DIR if missing. On success *ns is a new
 * handle that the caller closes with dlog_close. On failure *ns is NULL and,
 * when errmsg is not NULL, a message is written to it (DLOG_ERRMSG_LEN).
 * "dlog://..." gives DLOG_EUNAVAILABLE when no host answers within 5 s.
 * Its handles fail calls with DLOG_EUNAVAILABLE when the server cannot be
 * reached for 5 s (a request waits that long for a reconnection).
 */
#define DLOG_ERRMSG_LEN 256
int dlog_open(const char *uri, const struct dlog_options *opts, struct dlog_ns **ns,
              char *errmsg);
/*
 * Closes the namespace. Writers and readers still open are closed first
 * (their pending writes are flushed). With a loop, the namespace's libuv
 * handles close on the loop's next iteration.
 */
void dlog_close(struct dlog_ns *ns);
/* The last error message on ns. Valid until the next call on ns. */
const char *dlog_errmsg(struct dlog_ns *ns);

/* ------------------------------------------------------------------------
 * Streams
 * ------------------------------------------------------------------------ */

/*
 * Stream names: 1 to 255 bytes of [A-Za-z0-9._-/], not starting with '.'
 * or '/', without "..", and without "//". Invalid names get DLOG_ENAME.
 */
#define DLOG_STREAM_NAME_MAX 255
int dlog_stream_name_valid(const char *name);

enum dlog_compression {
    DLOG_COMPRESS_NONE = 0,
    DLOG_COMPRESS_LZ4 = 1,
    DLOG_COMPRESS_ZSTD = 2,
};

#define DLOG_ENTRY_MAX          (1024 * 1024) /* bytes of records in one entry */
#define DLOG_RECORD_MAX_DEFAULT (64ULL * 1024 * 1024)
#define DLOG_RECORD_MAX_LIMIT   (1024ULL * 1024 * 1024)

/*
 * Rate limits and the data-size quota of one stream, or of a whole
 * namespace (docs/rate-limiting.md). Every field 0 means "no limit".
 *
 * Rates are global: when several proxies write one stream (or namespace),
 * a coordinator divides each rate among them, max-min fairly by demand.
 * Rate limits are enforced by the proxy (dlogd); an embedded namespace
 * ("file:", "mem:") stores them but writes without a proxy in the way. The
 * quota is enforced by every writer, embedded ones included.
 */
#define DLOG_LIMITS_VERSION 1
enum dlog_quota_policy {
    DLOG_QUOTA_REJECT = 0,   /* a write over the quota fails with DLOG_EQUOTA */
    DLOG_QUOTA_TRUNCATE = 1, /* the oldest sealed segments are deleted to make room */
};
struct dlog_limits {
    uint32_t version;         /* DLOG_LIMITS_VERSION */
    uint64_t records_per_sec; /* hard level: above it DLOG_EOVERCAPACITY (or a delay) */
    uint64_t bytes_per_sec;   /* hard level, payload + key bytes */
    uint64_t soft_records_per_sec; /* soft level: writes above it are counted */
    uint64_t soft_bytes_per_sec;
    uint64_t burst_ms;    /* bucket size as time at the rate; 0 takes the default, 200 */
    uint64_t max_wait_ms; /* 0: refuse above the hard level; else delay up to this long */
    uint64_t quota_bytes; /* bytes retained (live segments); 0 = unlimited */
    uint32_t quota_policy; /* enum dlog_quota_policy */
};
#define DLOG_BURST_MS_DEFAULT 200
void dlog_limits_init(struct dlog_limits *l);

#define DLOG_STREAM_CONFIG_VERSION 2
struct dlog_stream_config {
    uint32_t version;             /* DLOG_STREAM_CONFIG_VERSION */
    uint64_t segment_max_bytes;   /* roll after this many bytes; default 256 MiB */
    uint64_t segment_max_age_ms;  /* roll after this age; 0 = never (default) */
    uint64_t segment_max_records; /* roll after this many records; 0 = never */
    uint64_t retention_age_ms;    /* delete sealed segments older; 0 = keep */
    uint64_t retention_bytes;     /* keep at most this many bytes; 0 = no limit */
    uint32_t compression;         /* enum dlog_compression */
    uint64_t max_record_bytes;    /* default 64 MiB, at most 1 GiB */
    int auto_txid;                /* 1: dlog assigns txids 1, 2, 3, ... */
    /* Version 2. */
    struct dlog_limits limits; /* change later with dlog_limits_set */
};
void dlog_stream_config_init(struct dlog_stream_config *c);

/* cfg may be NULL for defaults. DLOG_EEXIST if the name is taken. */
int dlog_stream_create(struct dlog_ns *ns, const char *name,
                       const struct dlog_stream_config *cfg);
/* Deletes the stream and its data; open writers and readers get DLOG_ENOTFOUND. */
int dlog_stream_delete(struct dlog_ns *ns, const char *name);
/*
 * Lists stream names in byte order. *names is a NULL-terminated array the
 * caller frees with dlog_stream_list_free.
 */
int dlog_stream_list(struct dlog_ns *ns, char ***names, size_t *count);
void dlog_stream_list_free(char **names);

enum dlog_segment_state {
    DLOG_SEGMENT_OPEN = 0,
    DLOG_SEGMENT_SEALED = 1,
};

struct dlog_segment_info {
    uint64_t seq;
    int state;              /* enum dlog_segment_state */
    uint64_t epoch;         /* the epoch of the writer that opened it */
    struct dlog_dlsn first; /* first record (meaningless when records == 0) */
    struct dlog_dlsn last;  /* last record */
    uint64_t first_txid;
    uint64_t last_txid;
    uint64_t records;
    uint64_t entries;
    uint64_t bytes;      /* stored entry bytes */
    uint64_t created_ms; /* wall clock */
    uint64_t sealed_ms;  /* wall clock, 0 while open */
};

struct dlog_stream_info {
    char name[DLOG_STREAM_NAME_MAX + 1];
    uint64_t id;
    struct dlog_stream_config config;
    uint64_t epoch;             /* current writer epoch */
    struct dlog_dlsn truncated; /* reads below this get DLOG_ETRUNCATED */
    struct dlog_dlsn first;     /* first readable record (if records > 0) */
    struct dlog_dlsn last;      /* last record (if records > 0) */
    uint64_t last_txid;
    uint64_t records; /* records in live segments */
    uint64_t bytes;   /* bytes in live segments */
    uint64_t created_ms;
    size_t nsegments;
    struct dlog_segment_info *segments; /* ascending by seq */
};
/* *info is allocated; free with dlog_stream_info_free. */
int dlog_stream_describe(struct dlog_ns *ns, const char *name,
                         struct dlog_stream_info **info);
void dlog_stream_info_free(struct dlog_stream_info *info);

/*
 * Positions of a stream without its segment list: first and last record,
 * last txid. DLOG_EEOF when the stream has no records.
 */
int dlog_stream_first_dlsn(struct dlog_ns *ns, const char *name, struct dlog_dlsn *out);
int dlog_stream_last_dlsn(struct dlog_ns *ns, const char *name, struct dlog_dlsn *out);
int dlog_stream_last_txid(struct dlog_ns *ns, const char *name, uint64_t *out);

/*
 * Marks every position below dlsn as truncated and deletes the whole sealed
 * segments that lie below it. Reads below dlsn then return DLOG_ETRUNCATED.
 * The truncation point only moves forward (a lower dlsn is a no-op).
 */
int dlog_stream_truncate(struct dlog_ns *ns, const char *name, struct dlog_dlsn dlsn);
/*
 * Applies the stream's retention rules now (writers also apply them when a
 * segment rolls). Returns the number of segments deleted.
 */
int dlog_stream_apply_retention(struct dlog_ns *ns, const char *name);

/* ------------------------------------------------------------------------
 * Rate limits and quotas
 * ------------------------------------------------------------------------ */

/*
 * Sets the limits of stream name, or of the namespace when name is NULL.
 * Proxies pick the change up within a second, without a restart.
 * DLOG_EINVAL for a soft level above its hard level or a bad policy.
 */
int dlog_limits_set(struct dlog_ns *ns, const char *name, const struct dlog_limits *l);
/* The limits of stream name, or of the namespace (NULL); all 0 if never set. */
int dlog_limits_get(struct dlog_ns *ns, const char *name, struct dlog_limits *l);

/* One proxy's view of one limit, as it last reported it. */
struct dlog_proxy_stats {
    char proxy[64];          /* the proxy's id */
    uint64_t age_ms;         /* since its last report */
    uint64_t share_records;  /* its share of the hard records/s level */
    uint64_t share_bytes;    /* its share of the hard bytes/s level */
    uint64_t demand_records; /* records/s offered to it (admitted or not) */
    uint64_t demand_bytes;   /* bytes/s offered */
    uint64_t rate_records;   /* records/s admitted */
    uint64_t rate_bytes;     /* bytes/s admitted */
    uint64_t admitted;       /* writes admitted since the proxy started */
    uint64_t rejected;       /* writes refused with DLOG_EOVERCAPACITY */
    uint64_t delayed;        /* writes admitted after a delay */
    uint64_t soft_exceeded;  /* writes admitted above the soft level */
};

/* The limits, usage and per-proxy metrics of a stream (or the namespace). */
struct dlog_limit_stats {
    struct dlog_limits limits;
    uint64_t used_bytes;           /* bytes retained now (the quota's measure) */
    struct dlog_proxy_stats total; /* sums over the proxies (proxy "total") */
    size_t nproxies;
    struct dlog_proxy_stats *proxies;
};
/* *out is allocated; free with dlog_limit_stats_free. */
int dlog_limits_stats(struct dlog_ns *ns, const char *name,
                      struct dlog_limit_stats **out);
void dlog_limit_stats_free(struct dlog_limit_stats *s);

/* ------------------------------------------------------------------------
 * Writers
 * ------------------------------------------------------------------------ */

struct dlog_writer;

enum dlog_writer_mode {
    DLOG_WRITER_SHARED = 0,    /* writes at the stream's current epoch */
    DLOG_WRITER_EXCLUSIVE = 1, /* bumps the epoch: older writers get DLOG_EFENCED */
};

#define DLOG_WRITER_OPTIONS_VERSION 2
struct dlog_writer_options {
    uint32_t version;         /* DLOG_WRITER_OPTIONS_VERSION */
    int mode;                 /* enum dlog_writer_mode */
    uint32_t linger_us;       /* wait up to this long to fill an entry; default 500 */
    size_t batch_bytes;       /* flush at once when this much is pending; default 1 MiB */
    size_t max_pending_bytes; /* dlog_write blocks above this; default 64 MiB */
    /*
     * Version 2. dlog:// only (other backends ignore it): 0 (default) for
     * none; otherwise this writer's writes are exactly-once on the server.
     * They carry sequence numbers 1, 2, 3, ... under this producer id, and
     * a write in flight when the connection drops is sent once more after
     * the reconnection; the server applies a repeated (producer id,
     * sequence) once and answers it as a success, with the first result's
     * DLSNs, or with first/last DLOG_DLSN_HEAD when it no longer knows them
     * (it keeps the last write's only). Without a producer id such a write
     * fails with DLOG_EUNAVAILABLE and may or may not have been stored.
     * The sequence restarts at 1 with every dlog_writer_open, so use a
     * fresh id (a random non-zero 64-bit number) for each writer you open:
     * the server takes a reused id's early sequences for repeats and does
     * not store them. Any error the server gives a write of a producer
     * sticks: later writes fail at once, and the writer must be reopened
     * with a new id (the server does not consume a failed sequence, so the
     * writes behind it cannot be numbered safely).
     */
    uint64_t producer_id;
};
void dlog_writer_options_init(struct dlog_writer_options *o);

/* opts may be NULL for defaults. */
int dlog_writer_open(struct dlog_ns *ns, const char *stream,
                     const struct dlog_writer_options *opts, struct dlog_writer **w);
/* The epoch this writer writes at. */
uint64_t dlog_writer_epoch(struct dlog_writer *w);
const char *dlog_writer_errmsg(struct dlog_writer *w);

struct dlog_write_req;
typedef void (*dlog_write_cb)(struct dlog_write_req *req, int status);

/*
 * An async write request, allocated by the caller and untouched by it until
 * the callback. On success status is 0, first/last are the DLSNs of the
 * first and last record of the write, and first_txid the first record's
 * txid. On failure status is a dlog_err code and the records were not
 * written (a fenced writer's records are never acknowledged).
 */
struct dlog_write_req {
    void *data; /* the caller's */
    dlog_write_cb cb;
    struct dlog_dlsn first;
    struct dlog_dlsn last;
    uint64_t first_txid;
    int status;
    /* private to dlog */
    struct dlog_write_req *next_;
    uint64_t priv_[4];
};

/*
 * Queues n records (n >= 1) as one write. The records are copied. Returns 0
 * when queued (cb will run), or an error (cb will not run): DLOG_ETOOBIG,
 * DLOG_ETXID (a txid below this writer's last), DLOG_EFENCED, DLOG_ECLOSED.
 * Records of one write are stored in order and contiguously unless they
 * exceed one entry. May block while max_pending_bytes are unacknowledged.
 */
int dlog_write(struct dlog_writer *w, struct dlog_write_req *req,
               const struct dlog_record *recs, size_t n, dlog_write_cb cb);
/* Blocking write: returns when durable. first (may be NULL) gets the DLSN. */
int dlog_write_sync(struct dlog_writer *w, const struct dlog_record *recs, size_t n,
                    struct dlog_dlsn *first);
/* Blocks until every write queued before the call is acknowledged or failed. */
int dlog_writer_flush(struct dlog_writer *w);
/* Flushes, then closes and frees the writer. */
int dlog_writer_close(struct dlog_writer *w);

/* ------------------------------------------------------------------------
 * Readers
 * ------------------------------------------------------------------------ */

struct dlog_reader;

enum dlog_start {
    DLOG_START_HEAD = 0, /* the first record not truncated */
    DLOG_START_TAIL = 1, /* only records written after the open */
    DLOG_START_DLSN = 2, /* the first record at or after start_dlsn */
    DLOG_START_TXID = 3, /* the first record with txid >= start_txid */
};

/* Keep (1) or skip (0) a record. Runs on the reading thread. */
typedef int (*dlog_filter_fn)(void *arg, const struct dlog_record *rec);
/*
 * Replace a record's payload: write the new payload into out (owned by the
 * reader, reset before each read call) and return 0, or return a negative
 * dlog_err to fail the read.
 */
typedef int (*dlog_project_fn)(void *arg, const struct dlog_record *rec,
                               struct dlog_buf *out);

#define DLOG_READER_OPTIONS_VERSION 1
struct dlog_reader_options {
    uint32_t version; /* DLOG_READER_OPTIONS_VERSION */
    int start;        /* enum dlog_start */
    struct dlog_dlsn start_dlsn;
    uint64_t start_txid;
    /* Transforms: a key prefix (records with shorter or other keys are
     * skipped), a filter callback, a projection callback. */
    const void *key_prefix; /* copied at open */
    size_t key_prefix_len;
    dlog_filter_fn filter;
    void *filter_arg;
    dlog_project_fn project;
    void *project_arg;
    /* Stop (DLOG_EEOF) after this position; DLOG_DLSN_MAX (default) = never. */
    struct dlog_dlsn end;
    /* Bytes fetched from storage per round; default 4 MiB. */
    size_t fetch_bytes;
};
void dlog_reader_options_init(struct dlog_reader_options *o);

int dlog_reader_open(struct dlog_ns *ns, const char *stream,
                     const struct dlog_reader_options *opts, struct dlog_reader **r);
const char *dlog_reader_errmsg(struct dlog_reader *r);
/* The position of the next record this reader will return. */
struct dlog_dlsn dlog_reader_position(struct dlog_reader *r);

/*
 * Blocking bulk read: fills up to max records and returns how many (>= 1).
 * Waits up to timeout_ms for the first record (0: do not wait, <0: forever),
 * then returns DLOG_ETIMEDOUT. Other errors: DLOG_ETRUNCATED (the position
 * was truncated), DLOG_ECORRUPT, DLOG_EEOF (past opts.end), DLOG_ENOTFOUND
 * (stream deleted). The records' memory is valid until the next read call on
 * this reader or its close. A reader is used by one thread at a time.
 */
int dlog_read(struct dlog_reader *r, struct dlog_record *recs, size_t max,
              int timeout_ms);
/* dlog_read of one record: returns 1 or an error. */
int dlog_read_next(struct dlog_reader *r, struct dlog_record *rec, int timeout_ms);

struct dlog_read_req;
typedef void (*dlog_read_cb)(struct dlog_read_req *req, int status);
/*
 * An async read request. On completion status is the number of records
 * placed in recs (>= 1) or an error. recs' memory follows dlog_read's rule.
 */
struct dlog_read_req {
    void *data;
    dlog_read_cb cb;
    struct dlog_record *recs;
    size_t max;
    int status;
    int timeout_ms; /* <0 waits forever, like dlog_read */
    /* private */
    struct dlog_read_req *next_;
    struct dlog_reader *reader_;
    uint64_t deadline_;
};
/*
 * Reads up to max records into recs, waiting (tailing) until at least one is
 * there or timeout_ms passes (then DLOG_ETIMEDOUT). Needs a namespace loop;
 * cb runs on it. One read in flight per reader.
 */
int dlog_read_async(struct dlog_reader *r, struct dlog_read_req *req,
                    struct dlog_record *recs, size_t max, int timeout_ms,
                    dlog_read_cb cb);
/*
 * Closes the reader. An async read in flight completes with DLOG_ECANCELED,
 * inside this call: a reader that has used dlog_read_async is closed on the
 * namespace loop's thread (as is the namespace itself, with dlog_close).
 */
void dlog_reader_close(struct dlog_reader *r);

#ifdef __cplusplus
}
#endif
#endif /* DLOG_DLOG_H */
