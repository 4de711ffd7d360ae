/*
 * dlog-counter: a replicated counter on the state-machine framework.
 * Usage: dlog-counter URI STREAM incr [N] | get | demo
 * A command is a big-endian 64-bit delta; its result is the new value.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/sm.h>

static void put64(uint8_t *p, int64_t v)
{
    for (int i = 7; i >= 0; i--, v = (int64_t)((uint64_t)v >> 8))
        p[i] = (uint8_t)v;
}

static int64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static int apply(void *app, const struct dlog_record *rec, struct dlog_buf *result)
{
    int64_t *c = app;
    uint8_t out[8];
    if (rec->len != 8) /* a deterministic rejection is a result, not an error */
        return dlog_buf_append(result, "bad command", 11);
    *c += get64(rec->payload);
    put64(out, *c);
    return dlog_buf_append(result, out, 8);
}

static int snapshot(void *app, struct dlog_snapshot_writer *w)
{
    uint8_t b[8];
    put64(b, *(int64_t *)app);
    return dlog_snapshot_write(w, b, 8);
}

static int restore(void *app, struct dlog_snapshot_reader *r)
{
    uint8_t b[8];
    int rv = dlog_snapshot_read_full(r, b, 8);
    if (rv == 0)
        *(int64_t *)app = get64(b);
    return rv;
}

static const struct dlog_sm_callbacks callbacks = {
    .version = DLOG_SM_CALLBACKS_VERSION,
    .apply = apply,
    .snapshot = snapshot,
    .restore = restore,
};

static struct dlog_sm *open_replica(struct dlog_ns *ns, const char *stream, int64_t *c)
{
    struct dlog_sm_options o;
    struct dlog_sm *sm = NULL;
    dlog_sm_options_init(&o);
    o.shared_snapshots = 1; /* late joiners start from the newest snapshot */
    o.snapshot_every_records = 100;
    int rv = dlog_sm_open(ns, stream, &callbacks, c, &o, &sm);
    if (rv != 0)
        fprintf(stderr, "dlog_sm_open: %s\n", dlog_strerror(rv));
    return sm;
}

/* Proposes +delta; prints and returns the new value (or exits). */
static int64_t add(struct dlog_sm *sm, uint64_t client, uint64_t seq, int64_t delta)
{
    uint8_t cmd[8];
    struct dlog_buf res = {0};
    put64(cmd, delta);
    int rv = dlog_sm_propose_sync(sm, client, seq, cmd, sizeof cmd, &res);
    if (rv != 0 || res.len != 8) {
        fprintf(stderr, "propose: %s\n", rv ? dlog_strerror(rv) : "rejected");
        exit(1);
    }
    int64_t v = get64(res.p);
    dlog_buf_free(&res);
    return v;
}

static int demo(struct dlog_ns *ns, const char *stream)
{
    int64_t c[4] = {0};
    struct dlog_sm *r[4];
    for (int i = 0; i < 3; i++)
        if ((r[i] = open_replica(ns, stream, &c[i])) == NULL)
            return 1;
    for (int i = 1; i <= 9; i++) /* client 42 proposes through every replica */
        printf("replica %d: +%d -> %" PRId64 "\n", i % 3, i, add(r[i % 3], 42, i, i));
    printf("retry of seq 9 on replica 1 -> %" PRId64 " (applied once)\n",
           add(r[1], 42, 9, 9));
    for (int i = 0; i < 3; i++) {
        dlog_sm_barrier(r[i], 5000); /* linearizable local read */
        printf("replica %d reads %" PRId64 "\n", i, c[i]);
    }
    dlog_sm_snapshot(r[0]); /* published to "<stream>.snap" */
    add(r[2], 0, 0, 100);
    if ((r[3] = open_replica(ns, stream, &c[3])) == NULL)
        return 1;
    printf("late replica reads %" PRId64 " after applying %" PRIu64 " record(s)\n", c[3],
           dlog_sm_applied_count(r[3]));
    for (int i = 0; i < 4; i++)
        dlog_sm_close(r[i]);
    return 0;
}

int main(int argc, char **argv)
{
    char err[DLOG_ERRMSG_LEN];
    struct dlog_ns *ns;
    int64_t c = 0;
    if (argc < 4) {
        fprintf(stderr, "usage: %s URI STREAM incr [N] | get | demo\n", argv[0]);
        return 2;
    }
    if (dlog_open(argv[1], NULL, &ns, err) != 0) {
        fprintf(stderr, "dlog_open %s: %s\n", argv[1], err);
        return 1;
    }
    int rv = 0;
    if (strcmp(argv[3], "demo") == 0) {
        rv = demo(ns, argv[2]);
    } else {
        struct dlog_sm *sm = open_replica(ns, argv[2], &c);
        if (sm == NULL)
            rv = 1;
        else if (strcmp(argv[3], "incr") == 0)
            printf("%" PRId64 "\n",
                   add(sm, 0, 0, argc > 4 ? strtoll(argv[4], NULL, 10) : 1));
        else if (dlog_sm_barrier(sm, 5000) == 0)
            printf("%" PRId64 "\n", c);
        else
            rv = 1;
        dlog_sm_close(sm);
    }
    dlog_close(ns);
    return rv;
}
