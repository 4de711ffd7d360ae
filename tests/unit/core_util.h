/*
 * Helpers shared by the core suites (tests/unit/test-core).
 *
 * Every suite runs once per backend URI (see test_core_main.c). A test never
 * names a backend itself: it asks core_env_open() for a fresh namespace on
 * the backend of the current run, and core_stream_name() for a stream name
 * no other test uses, so the same test later runs against "dlog://..." too.
 *
 * Threads other than the test's own must not call ck_assert (Check fails a
 * test from its own thread only, and CK_FORK=no would longjmp across
 * threads): they record what they saw and the test thread asserts on it.
 */
#ifndef DLOG_TESTS_CORE_UTIL_H
#define DLOG_TESTS_CORE_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>

/* ------------------------------------------------------------------ backend */

/* The base URI of this run ("mem:", "file:/tmp/dlog-test-XXXXXX", ...). */
void core_set_base_uri(const char *uri);
const char *core_base_uri(void);
/* Kinds of backend, for the few tests that depend on one. */
int core_backend_is_mem(void);
int core_backend_is_file(void);
/* cluster://: appends are Raft entries, at most 16 MiB each. */
int core_backend_is_cluster(void);
/* 1 if data outlives every handle (a reopened namespace sees it). */
int core_backend_durable(void);
/* 1 if several processes can open the namespace at once. */
int core_backend_multiprocess(void);

/*
 * Skips the rest of a test (with a note on stdout) unless cond holds. Use
 * only for properties of the backend, never to hide a failure.
 */
#define CORE_REQUIRE(cond, why)                                                          \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            core_note("skipped on %s: %s", core_base_uri(), (why));                      \
            return;                                                                      \
        }                                                                                \
    } while (0)

void core_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------------ namespace */

#define CORE_URI_MAX 4096 /* a base URI's size */

struct core_env {
    char uri[CORE_URI_MAX + 128]; /* this test's namespace URI */
    char dir[CORE_URI_MAX + 64];  /* file: its directory; "" otherwise */
    struct dlog_options opts;
    int has_opts;
    struct dlog_ns *ns;
};

/*
 * Makes a fresh namespace URI on the current backend (file: a new
 * directory under the run's base directory) and opens it with opts (may be
 * NULL). Asserts success.
 */
void core_env_open(struct core_env *e, const struct dlog_options *opts);
/* Closes e->ns (if open) and opens the same URI again. */
void core_env_reopen(struct core_env *e);
/* Closes e->ns if open. */
void core_env_close(struct core_env *e);

/* A stream name unique in this run: "t/<tag>-<pid>-<n>". buf has 128 bytes. */
const char *core_stream_name(char *buf, const char *tag);

/* A config with the library defaults, explicit txids and no compression. */
struct dlog_stream_config core_cfg(void);
/* Creates the stream (cfg may be NULL: core_cfg()); asserts success. */
void core_create(struct dlog_ns *ns, const char *name,
                 const struct dlog_stream_config *cfg);

struct dlog_writer *core_writer(struct dlog_ns *ns, const char *stream, int mode);
/* A reader from start (enum dlog_start); dlsn/txid are used when relevant. */
struct dlog_reader *core_reader(struct dlog_ns *ns, const char *stream, int start,
                                struct dlog_dlsn dlsn, uint64_t txid);

/* ------------------------------------------------------------------ payloads */

/*
 * Deterministic payload bytes for record i of a test tagged tag: every byte
 * depends on (tag, i, offset), so a torn, shifted or swapped payload fails
 * core_payload_ok().
 */
void core_payload(void *buf, size_t len, uint64_t tag, uint64_t i);
int core_payload_ok(const void *buf, size_t len, uint64_t tag, uint64_t i);
/* A 64-bit FNV-1a checksum. */
uint64_t core_checksum(const void *p, size_t len);

/* ------------------------------------------------------------------ write and read */

/*
 * Writes n records of len bytes (payload core_payload(tag, first_index + i)),
 * one record per async write, keeping up to 64 writes in flight, then
 * flushes. txid of record i is first_txid + i, or 0 when first_txid is 0
 * (for auto-txid streams). The acknowledged DLSNs go to dlsns[i] (may be
 * NULL). Asserts every write succeeded and that the DLSNs are strictly
 * increasing in submit order.
 */
void core_write_n(struct dlog_writer *w, size_t n, size_t len, uint64_t tag,
                  uint64_t first_index, uint64_t first_txid, struct dlog_dlsn *dlsns);
/* Same with blocking dlog_write_sync, one call per record. */
void core_write_sync_n(struct dlog_writer *w, size_t n, size_t len, uint64_t tag,
                       uint64_t first_index, uint64_t first_txid,
                       struct dlog_dlsn *dlsns);
/* One blocking write of one record; returns dlog_write_sync's result. */
int core_write1(struct dlog_writer *w, const void *p, size_t len, uint64_t txid,
                struct dlog_dlsn *dlsn);

/* A record copied out of a reader. */
struct core_rec {
    struct dlog_dlsn dlsn;
    uint64_t txid;
    size_t len;
    uint8_t *payload; /* malloc'd (NULL when len is 0) */
    size_t key_len;
    uint8_t *key;
};
void core_recs_free(struct core_rec *v, size_t n);

/*
 * Reads records into a growing array (*out, freed with core_recs_free)
 * until `want` records arrived (want 0: until the reader is caught up, that
 * is a read with timeout 0 gives DLOG_ETIMEDOUT), or timeout_ms passed.
 * Returns the count, or the first error other than DLOG_ETIMEDOUT (then
 * *out holds what was read before it and *nread its count).
 */
int core_read_recs(struct dlog_reader *r, size_t want, int timeout_ms,
                   struct core_rec **out, size_t *nread);
/* Reads exactly `want` records within timeout_ms; asserts. */
struct core_rec *core_read_exact(struct dlog_reader *r, size_t want, int timeout_ms);

/*
 * Checks that recs are the records [first_index, first_index + n) written
 * by core_write_n with this tag and len (len SIZE_MAX: any), in order, with
 * strictly increasing DLSNs equal to dlsns[] when dlsns is not NULL.
 */
void core_check_recs(const struct core_rec *recs, size_t n, size_t len, uint64_t tag,
                     uint64_t first_index, const struct dlog_dlsn *dlsns);

/* ------------------------------------------------------------------ time */

uint64_t core_now_ms(void);
/*
 * Polls pred(arg) (every millisecond or so) until it returns non-zero or
 * timeout_ms passes. Returns 1 if it held, 0 on timeout.
 */
int core_wait_until(int (*pred)(void *arg), void *arg, int timeout_ms);
/* Sleeps ms milliseconds (only to let something else run; never as a wait). */
void core_nap_ms(int ms);

/* ------------------------------------------------------------------ asserts */

#define CORE_ASSERT_OK(expr)                                                             \
    do {                                                                                 \
        int core_rv_ = (expr);                                                           \
        ck_assert_msg(core_rv_ == 0, "%s returned %d (%s)", #expr, core_rv_,             \
                      dlog_errname(core_rv_));                                           \
    } while (0)

/* Like CORE_ASSERT_OK, with dlog_errmsg(ns) in the failure message. */
#define CORE_NS_OK(ns, expr)                                                             \
    do {                                                                                 \
        int core_rv_ = (expr);                                                           \
        ck_assert_msg(core_rv_ == 0, "%s returned %d (%s): %s", #expr, core_rv_,         \
                      dlog_errname(core_rv_), dlog_errmsg(ns));                          \
    } while (0)

#define CORE_ASSERT_ERR(expr, code)                                                      \
    do {                                                                                 \
        int core_rv_ = (expr);                                                           \
        ck_assert_msg(core_rv_ == (code), "%s returned %d (%s), expected %s", #expr,     \
                      core_rv_, dlog_errname(core_rv_), dlog_errname(code));             \
    } while (0)

#define CORE_DLSN_FMT "%llu/%llu/%lu"
#define CORE_DLSN_ARGS(d)                                                                \
    (unsigned long long)(d).seg, (unsigned long long)(d).entry, (unsigned long)(d).slot

#define CORE_ASSERT_DLSN_EQ(a, b)                                                        \
    do {                                                                                 \
        struct dlog_dlsn core_a_ = (a), core_b_ = (b);                                   \
        ck_assert_msg(dlog_dlsn_cmp(core_a_, core_b_) == 0,                              \
                      "%s = " CORE_DLSN_FMT " != %s = " CORE_DLSN_FMT, #a,               \
                      CORE_DLSN_ARGS(core_a_), #b, CORE_DLSN_ARGS(core_b_));             \
    } while (0)

#define CORE_ASSERT_DLSN_LT(a, b)                                                        \
    do {                                                                                 \
        struct dlog_dlsn core_a_ = (a), core_b_ = (b);                                   \
        ck_assert_msg(dlog_dlsn_cmp(core_a_, core_b_) < 0,                               \
                      "%s = " CORE_DLSN_FMT " is not below %s = " CORE_DLSN_FMT, #a,     \
                      CORE_DLSN_ARGS(core_a_), #b, CORE_DLSN_ARGS(core_b_));             \
    } while (0)

/*
 * A test case whose Check timeout is timeout_s seconds, or the
 * CK_DEFAULT_TIMEOUT of the environment when that is longer (valgrind runs).
 */
TCase *core_tcase(const char *name, int timeout_s);
#define CORE_TIMEOUT 60

#endif
