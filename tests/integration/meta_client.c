/*
 * meta-client — drives the cluster's metadata store (meta_raft.c) for
 * tests/integration/cluster-meta-test.sh.
 *
 *   meta-client ADDRS cas KEY SECONDS   compare-and-set increments of KEY
 *       for SECONDS or until SIGTERM, plus a stream created and updated now and then;
 * prints "acked N streams S updates U failed F" at the end, where N counts the increments
 * acknowledged (kv_put returned 0) meta-client ADDRS get KEY           prints the value
 * and version of KEY meta-client ADDRS dump              prints every key, then the
 * revision
 *
 * Exit status 0, or 1 with a message when a call failed in a way the
 * store promises not to fail (any error but DLOG_ECONFLICT, or a value
 * that is not the last one this client wrote).
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <dlog/err.h>

#include "base/clock.h"
#include "meta/meta.h"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
    (void)sig;
    stop = 1;
}

static uint64_t parse_u64(const struct bytes *v)
{
    char buf[32];
    size_t n = v->len < sizeof buf - 1 ? v->len : sizeof buf - 1;

    memcpy(buf, v->p, n);
    buf[n] = '\0';
    return strtoull(buf, NULL, 10);
}

/* Creates stream NAME or bumps its epoch; counts what succeeded. */
static int stream_step(struct dlog_meta_ops *m, unsigned i, unsigned *streams,
                       unsigned *updates)
{
    struct meta_stream s;
    int rv;

    memset(&s, 0, sizeof s);
    rv = m->get(m, "cas-stream", &s);
    if (rv == DLOG_ENOTFOUND) {
        memset(&s, 0, sizeof s);
        snprintf(s.name, sizeof s.name, "cas-stream");
        s.cfg.version = DLOG_STREAM_CONFIG_VERSION;
        s.cfg.limits.version = DLOG_LIMITS_VERSION;
        s.next_seq = 1;
        s.created_ms = i;
        rv = m->create(m, &s);
        if (rv == 0)
            (*streams)++;
        return rv == DLOG_EEXIST ? 0 : rv;
    }
    if (rv != 0)
        return rv;
    s.epoch++;
    rv = m->update(m, &s);
    meta_stream_clear(&s);
    if (rv == 0)
        (*updates)++;
    return rv == DLOG_ECONFLICT ? 0 : rv;
}

static int cas(struct dlog_meta_ops *m, const char *key, unsigned seconds)
{
    uint64_t end = clock_now_ns() + (uint64_t)seconds * NS_PER_SEC;
    unsigned acked = 0, failed = 0, streams = 0, updates = 0, i = 0;
    uint64_t expect_value = 0, version;
    struct bytes v;
    char buf[32];
    int rv;

    bytes_init(&v);
    signal(SIGTERM, on_term);
    while (clock_now_ns() < end && !stop) {
        uint64_t cur = 0, ver = META_KV_CREATE;

        i++;
        rv = m->kv_get(m, key, &v, &ver);
        if (rv == 0) {
            cur = parse_u64(&v);
        } else if (rv == DLOG_ENOTFOUND) {
            ver = META_KV_CREATE;
        } else {
            fprintf(stderr, "kv_get %s: %s (%s)\n", key, dlog_strerror(rv), m->errmsg);
            failed++;
            continue;
        }
        if (cur != expect_value) {
            fprintf(stderr,
                    "read %" PRIu64 ", but this client's last acked value is "
                    "%" PRIu64 "\n",
                    cur, expect_value);
            bytes_free(&v);
            return 1;
        }
        snprintf(buf, sizeof buf, "%" PRIu64, cur + 1);
        version = ver;
        rv = m->kv_put(m, key, buf, strlen(buf), &version);
        if (rv == 0) {
            acked++;
            expect_value = cur + 1;
        } else if (rv != DLOG_ECONFLICT) {
            fprintf(stderr, "kv_put %s: %s (%s)\n", key, dlog_strerror(rv), m->errmsg);
            failed++;
        }
        if (i % 10 == 0) {
            rv = stream_step(m, i, &streams, &updates);
            if (rv != 0) {
                fprintf(stderr, "stream: %s (%s)\n", dlog_strerror(rv), m->errmsg);
                failed++;
            }
        }
    }
    bytes_free(&v);
    printf("acked %u streams %u updates %u failed %u\n", acked, streams, updates, failed);
    return 0;
}

int main(int argc, char **argv)
{
    struct dlog_meta_ops *m;
    char errmsg[DLOG_ERRMSG_SIZE] = "";
    int rv;

    if (argc < 3) {
        fprintf(stderr, "usage: meta-client ADDRS cas KEY SECONDS | get KEY | dump\n");
        return 2;
    }
    rv = meta_raft_open(argv[1], &m, errmsg);
    if (rv != 0) {
        fprintf(stderr, "meta_raft_open: %s\n", errmsg);
        return 1;
    }
    meta_raft_set_timeout(m, 10000);
    if (strcmp(argv[2], "cas") == 0 && argc == 5) {
        rv = cas(m, argv[3], (unsigned)atoi(argv[4]));
    } else if (strcmp(argv[2], "get") == 0 && argc == 4) {
        struct bytes v;
        uint64_t version = 0;
        bytes_init(&v);
        rv = m->kv_get(m, argv[3], &v, &version);
        if (rv == 0)
            printf("%.*s %" PRIu64 "\n", (int)v.len, (const char *)v.p, version);
        else
            fprintf(stderr, "kv_get: %s (%s)\n", dlog_strerror(rv), m->errmsg);
        bytes_free(&v);
        rv = rv != 0;
    } else if (strcmp(argv[2], "dump") == 0) {
        struct meta_kv *items;
        size_t n;
        uint64_t revision = 0;
        rv = m->kv_list(m, "", &items, &n);
        if (rv == 0) {
            for (size_t i = 0; i < n; i++)
                printf("%s=%.*s (v%" PRIu64 ")\n", items[i].key, (int)items[i].value.len,
                       (const char *)items[i].value.p, items[i].version);
            meta_kv_list_free(items, n);
            rv = m->revision(m, &revision);
            printf("revision %" PRIu64 "\n", revision);
        }
        if (rv != 0)
            fprintf(stderr, "dump: %s (%s)\n", dlog_strerror(rv), m->errmsg);
        rv = rv != 0;
    } else {
        fprintf(stderr, "meta-client: bad arguments\n");
        rv = 2;
    }
    m->close(m);
    return rv;
}
