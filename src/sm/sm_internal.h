/*
 * The state-machine framework's private header (DESIGN.md "State-machine
 * framework"). Built on the public API (dlog.h) and src/base only.
 *
 * Files:
 *   sm.c          open/close, the apply thread
 *   sm_propose.c  propose, read barriers, snapshot requests
 *   sm_dedup.c    the proposal envelope, the exactly-once table, pending proposals
 *   snapshot.c    the snapshot format (chunks with CRC32C) and local snapshot files
 *   sm_shared.c   shared snapshots in "<stream>.snap"
 *   sm_recover.c  choosing where to start on open
 *   sm_trunc.c    replica reports in "<stream>.replicas" and truncation
 *
 * Ownership: everything the apply thread touches without the lock (the
 * dedup table, the reader, the companion writers, the snapshot counters)
 * belongs to the apply thread; fields under "guarded by mu" are shared.
 */
#ifndef DLOG_SM_SM_INTERNAL_H
#define DLOG_SM_SM_INTERNAL_H

#include <pthread.h>
#include <stdint.h>

#include <dlog/sm.h>

#include "base/buf.h"
#include "base/errmsg.h"

#define SM_LOG    "sm"
#define SM_ID_MAX 1024 /* bytes of a replica id */

/* ------------------------------------------------------------ envelope */

/*
 * Every proposal is stored as one record:
 *   u8 magic 0xD1, u8 version 1, u64 origin, u64 nonce, u64 client_id,
 *   u64 seq (big-endian), then the command.
 * origin identifies the proposing state machine instance (random per open)
 * and nonce the proposal within it, so the proposer recognises its own
 * record when it applies it. Records that do not start with the magic and
 * version (written by a plain dlog_writer) are applied whole, without
 * exactly-once.
 */
#define ENV_MAGIC   0xD1
#define ENV_VERSION 1
#define ENV_HDR     34

struct envelope {
    uint64_t origin;
    uint64_t nonce;
    uint64_t client_id;
    uint64_t seq;
    const void *cmd;
    size_t len;
};

void env_encode(uint8_t *hdr, uint64_t origin, uint64_t nonce, uint64_t client_id,
                uint64_t seq);
/* Fills *e from a record; a record without an envelope gives origin 0. */
void env_decode(const struct dlog_record *rec, struct envelope *e);

/* ------------------------------------------------------------ dedup table */

/*
 * The exactly-once table: client_id -> (last seq, its DLSN, its result).
 * Deterministic state: every replica builds the same table from the same
 * prefix, and snapshots carry it. Open addressing on client_id (0 = empty).
 */
struct dedup_ent {
    uint64_t client; /* 0: free slot */
    uint64_t seq;
    struct dlog_dlsn dlsn;
    uint8_t known; /* 0: applied, result unknown (on-disk scan after a crash) */
    uint32_t len;
    uint8_t *res;
};

struct dedup {
    struct dedup_ent *t;
    size_t cap; /* power of two, or 0 */
    size_t n;
};

void dedup_init(struct dedup *d);
void dedup_free(struct dedup *d);
struct dedup_ent *dedup_find(struct dedup *d, uint64_t client);
/* Record (seq, result) for client, replacing its previous entry. */
int dedup_put(struct dedup *d, uint64_t client, uint64_t seq, struct dlog_dlsn dlsn,
              int known, const void *res, size_t len);
/* Serialise (sorted by client id, so equal tables give equal bytes). */
int dedup_save(struct dedup *d, struct dlog_snapshot_writer *w);
/* Replace *d with the table read from r. */
int dedup_load(struct dedup *d, struct dlog_snapshot_reader *r);

/* ------------------------------------------------------------ pending */

#define PEND_BUCKETS 256

/* Pending proposals by nonce; the caller holds sm->mu. */
void pend_insert(struct dlog_sm *sm, struct dlog_propose_req *req, uint64_t nonce);
struct dlog_propose_req *pend_remove(struct dlog_sm *sm, uint64_t nonce);
/* Unlink every pending proposal into a list (through next_). */
struct dlog_propose_req *pend_take_all(struct dlog_sm *sm);

/* ------------------------------------------------------------ snapshots */

/*
 * A snapshot is a byte stream, the same in a local file and in the shared
 * stream:
 *   header  (64 bytes) "DLOGSNAP", u32 version, u32 flags, DLSN (u64 seg,
 *           u64 entry, u32 slot), u64 records consumed in the state's
 *           lifetime, u64 stream id, u64 wall ms, u32 CRC32C of the above
 *   chunks  u32 len (1..SNAP_CHUNK), u32 CRC32C(data), data
 *   trailer u32 0, u32 CRC32C of the next 20 bytes, u64 data bytes,
 *           u64 chunks, u32 CRC32C of all data bytes
 * The data is the framework's section (the dedup table) then, when flags
 * has SNAP_F_APP, the application's snapshot.
 */
#define SNAP_HDR     64
#define SNAP_TRAILER 28
#define SNAP_CHUNK   (64 * 1024)
#define SNAP_F_APP   0x1 /* holds the application's state */

struct snap_header {
    uint32_t flags;
    struct dlog_dlsn dlsn;
    uint64_t total; /* records consumed by the state's lifetime */
    uint64_t stream_id;
    uint64_t wall_ms;
};

struct sm_pub;

struct dlog_snapshot_writer {
    int fd;             /* local file, or -1 */
    struct sm_pub *pub; /* shared publication, or NULL */
    uint8_t *chunk;     /* SNAP_CHUNK bytes */
    size_t len;         /* bytes pending in chunk */
    uint64_t total;     /* data bytes */
    uint64_t nchunks;
    uint32_t all_crc;
    int err; /* sticky */
};

/* Reads exactly n bytes from a source: 0, DLOG_EEOF (clean end before any
 * byte), DLOG_ECORRUPT (end in the middle) or an I/O error. */
typedef int (*snap_src_fn)(void *arg, void *p, size_t n);

struct dlog_snapshot_reader {
    snap_src_fn src;
    void *arg;
    struct snap_header hdr;
    uint8_t *chunk;
    size_t len, off;
    int eof;
    int err; /* sticky */
    uint64_t total, nchunks;
    uint32_t all_crc;
};

/* Writer to fd and/or pub; emits the header. */
int snap_writer_init(struct dlog_snapshot_writer *w, int fd, struct sm_pub *pub,
                     const struct snap_header *h);
/* Flushes the last chunk and writes the trailer. */
int snap_writer_finish(struct dlog_snapshot_writer *w);
void snap_writer_free(struct dlog_snapshot_writer *w);
/* Reader over a source; reads and checks the header (DLOG_ECORRUPT). */
int snap_reader_init(struct dlog_snapshot_reader *r, snap_src_fn src, void *arg);
void snap_reader_free(struct dlog_snapshot_reader *r);
/* Reads the rest of the stream, checking every CRC and the trailer. */
int snap_reader_drain(struct dlog_snapshot_reader *r);

/* Writes the whole snapshot of sm (dedup table, app state when app) to w. */
int snap_write_state(struct dlog_sm *sm, struct dlog_snapshot_writer *w, int app);
/* Restores sm from r: dedup table, then the app (when the header says so
 * and app is 1). Sets applied and the lifetime total. */
int snap_restore_state(struct dlog_sm *sm, struct dlog_snapshot_reader *r, int app);

/* Local snapshot files "snap-<seg>-<entry>-<slot>.dsnap" in snapshot_dir. */
struct snap_file {
    struct dlog_dlsn dlsn;
    char name[64];
};
/* Lists the snapshot files, newest first; *files is malloc'd. */
int snap_list(struct dlog_sm *sm, struct snap_file **files, size_t *n);
/* Writes a local snapshot of the current state (app: with the app's state). */
int snap_local_take(struct dlog_sm *sm, int app);
/* Checks a local file whole: 0 or DLOG_ECORRUPT. */
int snap_local_verify(struct dlog_sm *sm, const struct snap_file *f, int need_app);
/* Restores from a local file. */
int snap_local_restore(struct dlog_sm *sm, const struct snap_file *f, int app);
/* Deletes snapshots beyond keep_snapshots (and leftover temporary files). */
void snap_local_prune(struct dlog_sm *sm);
/* Locks (flock) and opens snapshot_dir; DLOG_EBUSY when in use. */
int snap_dir_open(struct dlog_sm *sm);

/* ------------------------------------------------------------ shared snapshots */

/*
 * A shared snapshot is the byte stream above cut into records of
 * "<stream>.snap", each with a 15-byte header: u8 0xD2, u8 version 1,
 * u64 snapshot id, u32 part number, u8 flags (1: last part). Several
 * replicas may publish at once, so their records may interleave; the id
 * tells them apart. A PUBLISH report in "<stream>.replicas" announces each
 * complete one.
 */
#define PUB_MAGIC   0xD2
#define PUB_VERSION 1
#define PUB_HDR     15
#define PUB_F_LAST  0x1

struct sm_pub {
    struct dlog_sm *sm;
    uint64_t id;
    uint32_t part;
    size_t part_max;
    struct bytes buf; /* header + data of the part being filled */
    struct dlog_dlsn first;
    int err;
};

/* A publication as announced in "<stream>.replicas". */
struct pub_info {
    struct dlog_dlsn dlsn;  /* the snapshot's DLSN in the main stream */
    struct dlog_dlsn first; /* its first record in "<stream>.snap" */
    uint64_t id;
    struct dlog_dlsn at; /* where the announcement is in .replicas */
};

int pub_append(struct sm_pub *p, const void *data, size_t n);
/* Publishes the current state to "<stream>.snap"; fills *out. */
int shared_publish(struct dlog_sm *sm, struct pub_info *out);
/* Checks a publication whole: 0, DLOG_ECORRUPT, DLOG_ETRUNCATED. */
int shared_verify(struct dlog_sm *sm, const struct pub_info *pi);
int shared_restore(struct dlog_sm *sm, const struct pub_info *pi, int app);

/* ------------------------------------------------------------ truncation */

/* The registry read back from "<stream>.replicas". */
struct rep_entry {
    char *id;
    struct dlog_dlsn restorable; /* oldest snapshot it keeps (HEAD: none) */
    struct dlog_dlsn at;         /* its latest report's position */
};

struct registry {
    struct rep_entry *reps;
    size_t nreps;
    struct pub_info *pubs; /* newest first */
    size_t npubs;
};

void registry_free(struct registry *g);
/* Reads "<stream>.replicas" (a missing stream is an empty registry). */
int registry_read(struct dlog_ns *ns, const char *rep_stream, struct registry *g,
                  char *errmsg);
/* Registers / reports this replica's restorable point. */
int trunc_report(struct dlog_sm *sm);
/* Announces a publication. */
int trunc_announce(struct dlog_sm *sm, const struct pub_info *pi);
/* Truncates the stream and its companions as the registry allows. */
int trunc_run(struct dlog_sm *sm);
/* The oldest DLSN this replica can restore from (HEAD: none). */
struct dlog_dlsn trunc_restorable(struct dlog_sm *sm);
/* Opens (creating if missing) a companion writer. */
int sm_companion_writer(struct dlog_sm *sm, const char *name, uint64_t max_record,
                        struct dlog_writer **w);

/* ------------------------------------------------------------ the state machine */

struct dlog_sm {
    struct dlog_ns *ns;
    char *stream;
    char *snap_stream; /* "<stream>.snap" */
    char *rep_stream;  /* "<stream>.replicas" */
    const struct dlog_sm_callbacks *cb;
    void *app;
    struct dlog_sm_options o; /* strings point into the copies below */
    char *replica_id;
    char *snapshot_dir;
    int dir_fd;        /* the locked snapshot_dir, or -1 */
    int ondisk;        /* cb->applied_dlsn != NULL */
    int registered;    /* has a snapshot_dir: reports to the registry */
    uint64_t instance; /* origin of this instance's proposals */
    uint64_t stream_id;
    struct dlog_writer *writer; /* proposals; thread-safe */

    /* apply thread only */
    pthread_t thread;
    int thread_started;
    struct dlog_reader *reader;
    struct dlog_writer *snap_writer;
    struct dlog_writer *rep_writer;
    struct dedup dd;
    struct dlog_dlsn scan_until; /* on-disk: below this, rebuild dedup only */
    uint64_t total;              /* records consumed in the state's lifetime */
    uint64_t since_records, since_bytes;
    struct dlog_dlsn last_local, last_pub; /* DLSNs of the newest snapshots taken */
    uint64_t next_pub_id;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* guarded by mu */
    struct dlog_dlsn applied; /* last record consumed */
    struct dlog_dlsn covered; /* every position below this is consumed */
    uint64_t applied_count;
    int err;
    char errmsg[DLOG_ERRMSG_SIZE];
    int ready, ready_rv;
    int closing;
    int stopped; /* the apply loop has ended */
    int waiters; /* public calls in progress (enter/leave) */
    uint64_t snap_req, snap_done;
    int snap_rv;
    uint64_t next_nonce;
    struct dlog_propose_req *pend[PEND_BUCKETS];
    size_t npending;
};

/* sm.c: shared with sm_propose.c. */
/* Counts a public call in progress (close waits for it); fails once closing. */
int sm_enter(struct dlog_sm *sm);
void sm_leave(struct dlog_sm *sm);
int sm_on_apply_thread(struct dlog_sm *sm);
/* Completes this instance's pending proposal `nonce`, if still pending. */
void sm_complete(struct dlog_sm *sm, uint64_t nonce, struct dlog_dlsn at, int status,
                 const void *res, size_t len);
/* sm_propose.c: waits (inside sm_enter) until target is consumed. */
int sm_wait_covered(struct dlog_sm *sm, struct dlog_dlsn target, int timeout_ms);
/* Sets sm->errmsg (under mu) and returns code. */
int sm_fail(struct dlog_sm *sm, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Open the apply reader at sm->applied (or the stream's start). */
int sm_open_reader(struct dlog_sm *sm);
/* Chooses the starting state and opens the reader (sm_recover.c). */
int sm_recover(struct dlog_sm *sm);
/* Takes a snapshot now (apply thread). */
int sm_take_snapshot(struct dlog_sm *sm);
/* a <= b, a < b */
static inline int dlsn_le(struct dlog_dlsn a, struct dlog_dlsn b)
{
    return dlog_dlsn_cmp(a, b) <= 0;
}
static inline int dlsn_is_head(struct dlog_dlsn a)
{
    return a.seg == 0 && a.entry == 0 && a.slot == 0;
}

#endif
