/*
 * api_example.c — a tour of the dlog C API, shown in full in docs/api.md.
 *
 * Opens a file: namespace in the directory argv[1] (or in a new temporary
 * directory, removed at the end), creates a stream, writes records with the
 * blocking API (dlog_write_sync) and with the async API on a libuv loop
 * (dlog_write), reads everything back with a blocking reader, reads the
 * records whose key starts with "eu/" with an async reader on the loop, and
 * checks that what it read is what it wrote. Exits 0 on success, 1 with a
 * message on stderr otherwise.
 *
 * Build: cc api_example.c $(pkg-config --cflags --libs dlog libuv)
 *
 * docs/api.md shows this file in full; tests/integration/api-example-test.sh
 * checks that the two stay the same, byte for byte.
 */
#define _XOPEN_SOURCE 700 /* mkdtemp, nftw */

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/dlog.h>
#include <uv.h>

#define STREAM  "shop/orders"
#define PREFIX  "eu/"
#define NSYNC   3 /* orders[0..NSYNC-1] are written blocking, the rest async */
#define NORDERS (sizeof orders / sizeof orders[0])

static const struct order {
    const char *key;
    const char *payload;
} orders[] = {
    {"eu/1001", "2 x espresso"}, {"us/1002", "1 x bagel"},  {"eu/1003", "3 x croissant"},
    {"us/1004", "1 x muffin"},   {"eu/1005", "2 x tea"},    {"eu/1006", "1 x strudel"},
    {"us/1007", "4 x donut"},    {"eu/1008", "1 x gelato"},
};

/* One async write: the request dlog fills in, and what the callback saw. */
struct awrite {
    struct dlog_write_req req; /* owned by us; untouched until the callback */
    int *pending;              /* writes not yet called back */
    int status;
};

/* The state of the async reader: what it has matched so far. */
struct aread {
    struct dlog_read_req req;
    struct dlog_record recs[4];
    struct dlog_reader *r;
    const struct dlog_dlsn *at; /* where the blocking read found each order */
    size_t next;                /* index in orders of the next record expected */
    size_t got;                 /* records received */
    int done;                   /* 1 when finished, successfully or not */
    int status; /* 0, a dlog error that stopped the reader, or 1: a mismatch */
};

/* Reports a failed call: its code's message, then dlog's words for it. */
static int fail(const char *what, int rv, const char *msg)
{
    fprintf(stderr, "api-example: %s: %s: %s\n", what, dlog_strerror(rv), msg);
    return -1;
}

/* Reports a check that did not hold. */
static int wrong(const char *what)
{
    fprintf(stderr, "api-example: %s\n", what);
    return -1;
}

static int same(const struct dlog_record *rec, const struct order *o)
{
    return rec->key_len == strlen(o->key) &&
           memcmp(rec->key, o->key, rec->key_len) == 0 &&
           rec->len == strlen(o->payload) &&
           memcmp(rec->payload, o->payload, rec->len) == 0;
}

static struct dlog_record record_of(const struct order *o)
{
    struct dlog_record rec = {
        .payload = o->payload,
        .len = strlen(o->payload),
        .key = o->key,
        .key_len = strlen(o->key),
    };
    return rec;
}

/* 1. The blocking way: one write of NSYNC records, returning once durable. */
static int write_blocking(struct dlog_writer *w, struct dlog_dlsn *acks)
{
    struct dlog_record recs[NSYNC];
    char pos[DLOG_DLSN_STRLEN];
    for (size_t i = 0; i < NSYNC; i++)
        recs[i] = record_of(&orders[i]);
    int rv = dlog_write_sync(w, recs, NSYNC, &acks[0]);
    if (rv != 0)
        return fail("dlog_write_sync", rv, dlog_writer_errmsg(w));
    printf("sync write: %d records, first at %s\n", NSYNC,
           dlog_dlsn_format(acks[0], pos, sizeof pos));
    return 0;
}

/* Runs on the loop's thread, inside uv_run, once per request. */
static void on_write(struct dlog_write_req *req, int status)
{
    struct awrite *aw = req->data;
    char pos[DLOG_DLSN_STRLEN];
    aw->status = status;
    if (status == 0)
        printf("async write: txid %llu at %s\n", (unsigned long long)req->first_txid,
               dlog_dlsn_format(req->first, pos, sizeof pos));
    (*aw->pending)--;
}

/* 2. The async way: queue every write, then run the loop until all are acked. */
static int write_async(uv_loop_t *loop, struct dlog_writer *w, struct dlog_dlsn *acks)
{
    struct awrite aw[NORDERS];
    int pending = 0, rv = 0;
    for (size_t i = NSYNC; i < NORDERS; i++) {
        struct dlog_record rec = record_of(&orders[i]); /* copied by dlog_write */
        aw[i].req.data = &aw[i];
        aw[i].pending = &pending;
        rv = dlog_write(w, &aw[i].req, &rec, 1, on_write);
        if (rv != 0) {
            fail("dlog_write", rv, dlog_writer_errmsg(w));
            break; /* no callback for this one; wait for those queued */
        }
        pending++;
    }
    while (pending > 0)
        uv_run(loop, UV_RUN_ONCE);
    for (size_t i = NSYNC; i < NORDERS && rv == 0; i++) {
        if (aw[i].status != 0)
            return fail("async write", aw[i].status, dlog_writer_errmsg(w));
        if (aw[i].req.first_txid != i + 1) /* the stream assigns txids 1, 2, ... */
            return wrong("async write: unexpected txid");
        acks[i] = aw[i].req.first;
    }
    return rv != 0 ? -1 : 0;
}

/* 3. Read the whole stream back from its head with blocking reads. */
static int read_blocking(struct dlog_ns *ns, const struct dlog_dlsn *acks,
                         struct dlog_dlsn *at)
{
    struct dlog_reader *r;
    struct dlog_record recs[3];
    struct dlog_dlsn prev = DLOG_DLSN_HEAD;
    char pos[DLOG_DLSN_STRLEN];
    size_t got = 0;
    int rv = dlog_reader_open(ns, STREAM, NULL, &r); /* NULL: from the head */
    if (rv != 0)
        return fail("dlog_reader_open", rv, dlog_errmsg(ns));
    /* Up to 3 records per call; 0 ms: stop (DLOG_ETIMEDOUT) at the end. */
    while ((rv = dlog_read(r, recs, 3, 0)) > 0) {
        for (int i = 0; i < rv; i++, got++) {
            const struct dlog_record *rec = &recs[i];
            printf("read: %s txid %llu %.*s %.*s\n",
                   dlog_dlsn_format(rec->dlsn, pos, sizeof pos),
                   (unsigned long long)rec->txid, (int)rec->key_len,
                   (const char *)rec->key, (int)rec->len, (const char *)rec->payload);
            if (got >= NORDERS || !same(rec, &orders[got]) || rec->txid != got + 1 ||
                dlog_dlsn_cmp(prev, rec->dlsn) >= 0 ||
                ((got == 0 || got >= NSYNC) &&
                 dlog_dlsn_cmp(rec->dlsn, acks[got]) != 0)) {
                dlog_reader_close(r);
                return wrong("read: a record differs from the one written");
            }
            prev = at[got] = rec->dlsn;
        }
    }
    if (rv != DLOG_ETIMEDOUT) { /* DLOG_ETIMEDOUT: nothing more for now */
        fail("dlog_read", rv, dlog_reader_errmsg(r));
        dlog_reader_close(r);
        return -1;
    }
    dlog_reader_close(r);
    if (got != NORDERS)
        return wrong("read: records are missing");
    return 0;
}

/* The index of the next order whose key has the prefix, from i on. */
static size_t next_prefixed(size_t i)
{
    while (i < NORDERS && strncmp(orders[i].key, PREFIX, strlen(PREFIX)) != 0)
        i++;
    return i;
}

/* Runs on the loop's thread; recs stay valid until the next read call. */
static void on_read(struct dlog_read_req *req, int status)
{
    struct aread *ar = req->data;
    char pos[DLOG_DLSN_STRLEN];
    if (status < 0) {
        ar->status = status;
        ar->done = 1;
        return;
    }
    for (int i = 0; i < status; i++) {
        const struct dlog_record *rec = &ar->recs[i];
        printf("async read: %s %.*s\n", dlog_dlsn_format(rec->dlsn, pos, sizeof pos),
               (int)rec->key_len, (const char *)rec->key);
        if (ar->next >= NORDERS || !same(rec, &orders[ar->next]) ||
            dlog_dlsn_cmp(rec->dlsn, ar->at[ar->next]) != 0) {
            ar->status = 1; /* not a dlog error: a check failed */
            ar->done = 1;
            return;
        }
        ar->got++;
        ar->next = next_prefixed(ar->next + 1);
    }
    if (ar->next == NORDERS) {
        ar->done = 1;
        return;
    }
    /* More to come: read again, waiting (tailing) up to 1 s for new records. */
    int rv = dlog_read_async(ar->r, &ar->req, ar->recs, 4, 1000, on_read);
    if (rv != 0) {
        ar->status = rv;
        ar->done = 1;
    }
}

/* 4. Read the records whose key starts with PREFIX, async on the loop. */
static int read_async(uv_loop_t *loop, struct dlog_ns *ns, const struct dlog_dlsn *at)
{
    struct dlog_reader_options ro;
    struct aread ar = {.at = at, .next = next_prefixed(0)};
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_HEAD;
    ro.key_prefix = PREFIX; /* copied at open */
    ro.key_prefix_len = strlen(PREFIX);
    int rv = dlog_reader_open(ns, STREAM, &ro, &ar.r);
    if (rv != 0)
        return fail("dlog_reader_open", rv, dlog_errmsg(ns));
    ar.req.data = &ar;
    rv = dlog_read_async(ar.r, &ar.req, ar.recs, 4, 1000, on_read);
    if (rv != 0) {
        fail("dlog_read_async", rv, dlog_reader_errmsg(ar.r));
        dlog_reader_close(ar.r);
        return -1;
    }
    while (!ar.done)
        uv_run(loop, UV_RUN_ONCE);
    if (ar.status > 0)
        wrong("async read: a record differs from the one written");
    else if (ar.status < 0)
        fail("async read", ar.status, dlog_reader_errmsg(ar.r));
    dlog_reader_close(ar.r);
    if (ar.status != 0)
        return -1;
    printf("async read: %zu records with key prefix \"%s\"\n", ar.got, PREFIX);
    return 0;
}

/* Stream admin: create (deleting a stream left by an earlier run), list. */
static int create_stream(struct dlog_ns *ns)
{
    struct dlog_stream_config cfg;
    char **names;
    size_t count;
    dlog_stream_config_init(&cfg);
    cfg.auto_txid = 1;           /* dlog assigns txids 1, 2, 3, ... */
    cfg.segment_max_records = 4; /* small segments, to see DLSNs cross them */
    int rv = dlog_stream_create(ns, STREAM, &cfg);
    if (rv == DLOG_EEXIST) {
        printf("deleting the stream %s of an earlier run\n", STREAM);
        rv = dlog_stream_delete(ns, STREAM);
        if (rv == 0)
            rv = dlog_stream_create(ns, STREAM, &cfg);
    }
    if (rv != 0)
        return fail("dlog_stream_create", rv, dlog_errmsg(ns));
    rv = dlog_stream_list(ns, &names, &count);
    if (rv != 0)
        return fail("dlog_stream_list", rv, dlog_errmsg(ns));
    for (size_t i = 0; i < count; i++)
        printf("stream: %s\n", names[i]);
    dlog_stream_list_free(names);
    return 0;
}

static int describe_stream(struct dlog_ns *ns)
{
    struct dlog_stream_info *info;
    char last[DLOG_DLSN_STRLEN];
    int rv = dlog_stream_describe(ns, STREAM, &info);
    if (rv != 0)
        return fail("dlog_stream_describe", rv, dlog_errmsg(ns));
    printf("describe: %llu records in %zu segments, last at %s, last txid %llu\n",
           (unsigned long long)info->records, info->nsegments,
           dlog_dlsn_format(info->last, last, sizeof last),
           (unsigned long long)info->last_txid);
    rv = info->records == NORDERS && info->last_txid == NORDERS ? 0 : -1;
    dlog_stream_info_free(info);
    if (rv != 0)
        return wrong("describe: unexpected record count or last txid");
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int main(int argc, char **argv)
{
    char tmp[] = "/tmp/dlog-api-example.XXXXXX";
    char uri[4200], errmsg[DLOG_ERRMSG_LEN];
    const char *dir = argc > 1 ? argv[1] : mkdtemp(tmp);
    struct dlog_options opts;
    struct dlog_dlsn acks[NORDERS], at[NORDERS];
    struct dlog_ns *ns = NULL;
    struct dlog_writer *w = NULL;
    uv_loop_t loop;
    int rv, ok = 0;

    if (dir == NULL) {
        perror("api-example: mkdtemp");
        return 1;
    }
    if (uv_loop_init(&loop) != 0) {
        fprintf(stderr, "api-example: uv_loop_init failed\n");
        return 1;
    }
    snprintf(uri, sizeof uri, "file:%s", dir);
    dlog_options_init(&opts);
    opts.loop = &loop; /* async callbacks run on this loop, inside uv_run */
    rv = dlog_open(uri, &opts, &ns, errmsg);
    if (rv != 0) {
        fprintf(stderr, "api-example: dlog_open %s: %s (%s)\n", uri, dlog_strerror(rv),
                errmsg);
        goto out;
    }
    printf("namespace: %s\n", uri);
    if (create_stream(ns) != 0)
        goto out;

    rv = dlog_writer_open(ns, STREAM, NULL, &w); /* NULL: shared, default batching */
    if (rv != 0) {
        fail("dlog_writer_open", rv, dlog_errmsg(ns));
        goto out;
    }
    if (write_blocking(w, acks) != 0 || write_async(&loop, w, acks) != 0)
        goto out;
    rv = dlog_writer_close(w); /* flushes first; nothing is pending here */
    w = NULL;
    if (rv != 0) {
        fail("dlog_writer_close", rv, "the last writes failed");
        goto out;
    }

    if (describe_stream(ns) != 0 || read_blocking(ns, acks, at) != 0 ||
        read_async(&loop, ns, at) != 0)
        goto out;
    ok = 1;
out:
    if (w != NULL)
        dlog_writer_close(w);
    dlog_close(ns);                /* closes what is still open; NULL is a no-op */
    uv_run(&loop, UV_RUN_DEFAULT); /* lets the namespace's handles close */
    if (uv_loop_close(&loop) != 0) {
        fprintf(stderr, "api-example: handles left on the loop\n");
        ok = 0;
    }
    if (argc <= 1)
        nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (!ok) {
        fprintf(stderr, "api-example: FAILED\n");
        return 1;
    }
    printf("OK: %zu records written and read back\n", NORDERS);
    return 0;
}
