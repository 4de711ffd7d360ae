/*
 * crash-writer: the writer half of tests/integration/crash-test.sh.
 *
 *   crash-writer URI STREAM SEED
 *       Opens STREAM (creating it if needed) with an exclusive writer and
 *       appends records forever: mostly small ones, and now and then one of
 *       2-5 MiB, with several async writes in flight. For each acknowledged
 *       record it prints "DLSN<TAB>txid<TAB>len" from the write callback and
 *       flushes, so that when it is killed (SIGKILL) only acknowledged
 *       records have been printed. txids are chosen here: the stream's last
 *       txid + 1, + 2, ...
 *
 *   crash-writer --verify URI STREAM ACKFILE
 *       Reads the whole stream and checks: DLSNs and txids strictly
 *       increasing; every record's payload is whole (every byte is a
 *       function of its txid and offset, and it starts with its txid and
 *       length); every acknowledged (DLSN, txid, len) in ACKFILE is in the
 *       stream, exactly once; acknowledged DLSNs grow with the txids (the
 *       order writes were submitted). Exit status 0 if all hold, 1 if not.
 *
 * Every record payload: bytes 0-7 txid and 8-15 length (little-endian),
 * then pattern bytes.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <dlog/dlog.h>

#define MiB       (1024 * 1024)
#define IN_FLIGHT 8
#define HDR       16

static uint64_t mix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* The byte at offset i (>= HDR) of record txid: depends on both. */
static inline uint8_t pattern(uint64_t seed, size_t i)
{
    return (uint8_t)((seed >> ((i & 7) * 8)) ^ (uint8_t)(i >> 3) ^ (uint8_t)(i >> 11));
}

static void fill(uint8_t *p, size_t len, uint64_t txid)
{
    uint64_t seed = mix(txid);
    put64(p, txid);
    put64(p + 8, len);
    for (size_t i = HDR; i < len; i++)
        p[i] = pattern(seed, i);
}

/* 0 if whole; else the offset of the first bad byte + 1. */
static size_t check(const uint8_t *p, size_t len, uint64_t txid)
{
    if (len < HDR)
        return 1;
    if (get64(p) != txid)
        return 1;
    if (get64(p + 8) != len)
        return 9;
    uint64_t seed = mix(txid);
    for (size_t i = HDR; i < len; i++)
        if (p[i] != pattern(seed, i))
            return i + 1;
    return 0;
}

/* ------------------------------------------------------------------ writer */

struct slot {
    struct dlog_write_req req; /* first */
    uint64_t txid;
    size_t len;
    int busy;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static struct slot slots[IN_FLIGHT];
static int busy;

static void write_cb(struct dlog_write_req *req, int status)
{
    struct slot *s = (struct slot *)req;
    char d[DLOG_DLSN_STRLEN];
    if (status != 0) {
        fprintf(stderr, "crash-writer: write of txid %" PRIu64 " failed: %s\n", s->txid,
                dlog_strerror(status));
        _exit(3);
    }
    pthread_mutex_lock(&mu);
    dlog_dlsn_format(req->first, d, sizeof d);
    printf("%s\t%" PRIu64 "\t%zu\n", d, s->txid, s->len);
    fflush(stdout);
    s->busy = 0;
    busy--;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

static int open_ns(const char *uri, struct dlog_ns **ns)
{
    char errmsg[DLOG_ERRMSG_LEN] = "";
    int rv = dlog_open(uri, NULL, ns, errmsg);
    if (rv != 0)
        fprintf(stderr, "crash-writer: open %s: %s: %s\n", uri, dlog_strerror(rv),
                errmsg);
    return rv;
}

static int run_writer(const char *uri, const char *stream, uint64_t seed)
{
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    if (open_ns(uri, &ns) != 0)
        return 2;
    struct dlog_stream_config cfg;
    dlog_stream_config_init(&cfg);
    cfg.auto_txid = 0;
    cfg.compression = DLOG_COMPRESS_NONE;
    cfg.segment_max_bytes = 16 * MiB; /* rolls now and then */
    int rv = dlog_stream_create(ns, stream, &cfg);
    if (rv != 0 && rv != DLOG_EEXIST) {
        fprintf(stderr, "crash-writer: create: %s: %s\n", dlog_strerror(rv),
                dlog_errmsg(ns));
        return 2;
    }
    uint64_t txid = 0;
    rv = dlog_stream_last_txid(ns, stream, &txid);
    if (rv != 0 && rv != DLOG_EEOF) {
        fprintf(stderr, "crash-writer: last txid: %s: %s\n", dlog_strerror(rv),
                dlog_errmsg(ns));
        return 2;
    }
    struct dlog_writer_options wo;
    dlog_writer_options_init(&wo);
    wo.mode = DLOG_WRITER_EXCLUSIVE;
    rv = dlog_writer_open(ns, stream, &wo, &w);
    if (rv != 0) {
        fprintf(stderr, "crash-writer: writer: %s: %s\n", dlog_strerror(rv),
                dlog_errmsg(ns));
        return 2;
    }
    uint8_t *buf = malloc(5 * MiB);
    if (buf == NULL)
        return 2;
    uint64_t r = mix(seed);
    for (;;) {
        size_t len;
        r = mix(r);
        if (r % 40 == 0)
            len = 2 * MiB + (size_t)((r >> 8) % (3 * MiB + 1)); /* 2-5 MiB */
        else
            len = HDR + (size_t)((r >> 8) % 1500);
        txid++;
        fill(buf, len, txid);
        pthread_mutex_lock(&mu);
        while (busy == IN_FLIGHT)
            pthread_cond_wait(&cv, &mu);
        struct slot *s = NULL;
        for (int i = 0; i < IN_FLIGHT && s == NULL; i++)
            if (!slots[i].busy)
                s = &slots[i];
        s->busy = 1;
        busy++;
        s->txid = txid;
        s->len = len;
        pthread_mutex_unlock(&mu);
        struct dlog_record rec = {.payload = buf, .len = len, .txid = txid};
        memset(&s->req, 0, sizeof s->req);
        rv = dlog_write(w, &s->req, &rec, 1, write_cb);
        if (rv != 0) {
            fprintf(stderr, "crash-writer: dlog_write: %s: %s\n", dlog_strerror(rv),
                    dlog_writer_errmsg(w));
            _exit(3);
        }
    }
}

/* ------------------------------------------------------------------ verify */

struct ack {
    struct dlog_dlsn dlsn;
    uint64_t txid;
    size_t len;
};

static int ack_by_txid(const void *a, const void *b)
{
    const struct ack *x = a, *y = b;
    return x->txid < y->txid ? -1 : x->txid > y->txid;
}

static struct ack *load_acks(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    struct ack *v = NULL;
    size_t cap = 0;
    char line[256];
    *n = 0;
    if (f == NULL) {
        perror(path);
        return NULL;
    }
    while (fgets(line, sizeof line, f) != NULL) {
        size_t l = strlen(line);
        if (l == 0 || line[l - 1] != '\n')
            break; /* a torn last line (the writer was killed while printing) */
        char d[DLOG_DLSN_STRLEN];
        unsigned long long txid, len;
        if (sscanf(line, "%63s %llu %llu", d, &txid, &len) != 3) {
            fprintf(stderr, "verify: bad ack line: %s", line);
            continue;
        }
        if (*n == cap) {
            cap = cap * 2 + 1024;
            v = realloc(v, cap * sizeof *v);
            if (v == NULL)
                exit(2);
        }
        if (dlog_dlsn_parse(d, &v[*n].dlsn) != 0) {
            fprintf(stderr, "verify: bad DLSN in ack line: %s", line);
            continue;
        }
        v[*n].txid = txid;
        v[*n].len = (size_t)len;
        (*n)++;
    }
    fclose(f);
    return v;
}

static int run_verify(const char *uri, const char *stream, const char *ackfile)
{
    size_t nacks = 0, errors = 0;
    char a[DLOG_DLSN_STRLEN], b[DLOG_DLSN_STRLEN];
    struct ack *acks = load_acks(ackfile, &nacks);
    if (acks == NULL && nacks == 0 && access(ackfile, R_OK) != 0)
        return 1;
#define FAIL(...)                                                                        \
    do {                                                                                 \
        if (errors++ < 20)                                                               \
            fprintf(stderr, "verify: " __VA_ARGS__);                                     \
    } while (0)

    /* Acknowledged DLSNs grow with the txids (submit order), none twice. */
    qsort(acks, nacks, sizeof *acks, ack_by_txid);
    for (size_t i = 1; i < nacks; i++) {
        if (acks[i].txid == acks[i - 1].txid)
            FAIL("txid %" PRIu64 " acknowledged twice\n", acks[i].txid);
        else if (dlog_dlsn_cmp(acks[i - 1].dlsn, acks[i].dlsn) >= 0)
            FAIL("ack of txid %" PRIu64 " at %s is not above txid %" PRIu64 "'s at %s\n",
                 acks[i].txid, dlog_dlsn_format(acks[i].dlsn, a, sizeof a),
                 acks[i - 1].txid, dlog_dlsn_format(acks[i - 1].dlsn, b, sizeof b));
    }

    struct dlog_ns *ns = NULL;
    struct dlog_reader *r = NULL;
    if (open_ns(uri, &ns) != 0)
        return 1;
    int rv = dlog_reader_open(ns, stream, NULL, &r);
    if (rv != 0) {
        fprintf(stderr, "verify: reader: %s: %s\n", dlog_strerror(rv), dlog_errmsg(ns));
        dlog_close(ns);
        return 1;
    }
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    uint64_t prev_txid = 0, nrec = 0, bytes = 0;
    size_t k = 0; /* next ack to find */
    for (;;) {
        struct dlog_record recs[64];
        rv = dlog_read(r, recs, 64, 0);
        if (rv == DLOG_ETIMEDOUT)
            break;
        if (rv < 0) {
            FAIL("read after %" PRIu64 " records: %s: %s\n", nrec, dlog_strerror(rv),
                 dlog_reader_errmsg(r));
            break;
        }
        for (int i = 0; i < rv; i++) {
            const struct dlog_record *rec = &recs[i];
            if (nrec > 0 && dlog_dlsn_cmp(prev, rec->dlsn) >= 0)
                FAIL("DLSN %s follows %s\n", dlog_dlsn_format(rec->dlsn, a, sizeof a),
                     dlog_dlsn_format(prev, b, sizeof b));
            if (rec->txid <= prev_txid)
                FAIL("txid %" PRIu64 " follows %" PRIu64 "\n", rec->txid, prev_txid);
            size_t bad = check(rec->payload, rec->len, rec->txid);
            if (bad != 0)
                FAIL("record txid %" PRIu64 " at %s (%zu bytes) is damaged or torn at "
                     "byte %zu\n",
                     rec->txid, dlog_dlsn_format(rec->dlsn, a, sizeof a), rec->len,
                     bad - 1);
            /* Acks below this position must have matched already. */
            while (k < nacks && dlog_dlsn_cmp(acks[k].dlsn, rec->dlsn) < 0) {
                FAIL("acknowledged txid %" PRIu64 " at %s is missing\n", acks[k].txid,
                     dlog_dlsn_format(acks[k].dlsn, a, sizeof a));
                k++;
            }
            if (k < nacks && dlog_dlsn_cmp(acks[k].dlsn, rec->dlsn) == 0) {
                if (acks[k].txid != rec->txid || acks[k].len != rec->len)
                    FAIL("at %s: acknowledged txid %" PRIu64 " len %zu, stored txid "
                         "%" PRIu64 " len %zu\n",
                         dlog_dlsn_format(rec->dlsn, a, sizeof a), acks[k].txid,
                         acks[k].len, rec->txid, rec->len);
                k++;
            }
            prev = rec->dlsn;
            prev_txid = rec->txid;
            nrec++;
            bytes += rec->len;
        }
    }
    for (; k < nacks; k++)
        FAIL("acknowledged txid %" PRIu64 " at %s is missing (past the end)\n",
             acks[k].txid, dlog_dlsn_format(acks[k].dlsn, a, sizeof a));
    dlog_reader_close(r);
    dlog_close(ns);
    free(acks);
    fprintf(stderr, "verify: %" PRIu64 " records (%" PRIu64 " MiB), %zu acks: %s\n", nrec,
            bytes / MiB, nacks, errors == 0 ? "OK" : "FAILED");
    return errors == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 5 && strcmp(argv[1], "--verify") == 0)
        return run_verify(argv[2], argv[3], argv[4]);
    if (argc == 4)
        return run_writer(argv[1], argv[2], strtoull(argv[3], NULL, 10));
    fprintf(stderr, "usage: crash-writer URI STREAM SEED\n"
                    "       crash-writer --verify URI STREAM ACKFILE\n");
    return 2;
}
