/*
 * dlog-kv — a replicated key-value store that speaks the Redis protocol,
 * built on dlog's state-machine framework (dlog/sm.h).
 *
 * Every replica opens the same stream of the same namespace. Writes are
 * proposed to the stream and applied, in log order, by every replica to its
 * own LMDB copy of the keyspace; reads are answered locally after a read
 * barrier (linearizable) or at once (stale reads, when asked for).
 *
 *   dlog-kv --log file:/tmp/ns --stream kv --data /tmp/r1 --listen 127.0.0.1:6381
 *
 * Files: main.c (options, start, signals), kv_server.c (connections,
 * pipelining, proposals, barriers), kv_commands.c (the Redis commands),
 * kv_state.c (LMDB state, apply, snapshots), kv_cmd.c (command records),
 * resp.c (the protocol), kv_glob.c (KEYS/SCAN patterns).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#include <dlog/dlog.h>
#include <dlog/sm.h>

#include "kv_server.h"
#include "kv_state.h"

struct app {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    uv_timer_t health;
    struct dlog_ns *ns;
    struct dlog_sm *sm;
    struct kv_state *state;
    struct kv_server *srv;
    int stopping;
    int exit_code;
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "Usage: dlog-kv --log URI --data DIR [options]\n"
        "\n"
        "A replicated key-value store speaking the Redis protocol (RESP2), built on\n"
        "a dlog stream. Start several replicas on the same --log and --stream, each\n"
        "with its own --data and --listen; connect with redis-cli -p PORT.\n"
        "\n"
        "Options:\n"
        "  --log URI             dlog namespace: file:DIR, mem: (one process), ...\n"
        "  --stream NAME         the stream holding the commands (default: kv)\n"
        "  --data DIR            this replica's state (LMDB) and snapshots\n"
        "  --listen HOST:PORT    address to serve (default 127.0.0.1:6380;\n"
        "                        port 0 picks a free one, printed at start)\n"
        "  --replica-id ID       this replica's name among the stream's replicas,\n"
        "                        stable across restarts (default: HOST:DIR/snapshots)\n"
        "  --snapshot-every N    take a snapshot every N commands applied\n"
        "                        (default 100000; 0: never)\n"
        "  --stale-reads         serve reads without a read barrier by default\n"
        "                        (per connection: CLIENT STALE ON|OFF)\n"
        "  --sync MODE           periodic (default: LMDB synced every 100 ms; the\n"
        "                        stream is the durable copy) or always (fsync\n"
        "                        every applied command)\n"
        "  --barrier-timeout MS  fail a linearizable read after MS (default 5000)\n"
        "  --help                show this help\n"
        "  --version             show the version\n"
        "\n"
        "Reads are linearizable by default: each read waits for a read barrier, so\n"
        "it sees every write acknowledged by any replica before it was sent.\n"
        "SIGINT or SIGTERM stops the server cleanly.\n");
}

/* The framework's default replica id (sm.h): "<hostname>:<snapshot dir>". */
static void default_replica_id(const char *snapdir, char *out, size_t size)
{
    char hostname[256] = "localhost", real[PATH_MAX];
    gethostname(hostname, sizeof(hostname) - 1);
    hostname[sizeof(hostname) - 1] = '\0';
    snprintf(out, size, "%s:%s", hostname, realpath(snapdir, real) ? real : snapdir);
}

static int parse_listen(const char *s, char *host, size_t hostsize, int *port)
{
    const char *colon = strrchr(s, ':');
    char *end;
    if (colon == NULL || colon == s || (size_t)(colon - s) >= hostsize) {
        return -1;
    }
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || colon[1] == '\0' || p < 0 || p > 65535) {
        return -1;
    }
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (n >= 2 && h[0] == '[' && h[n - 1] == ']') { /* [::1]:6380 */
        h++;
        n -= 2;
    }
    memcpy(host, h, n);
    host[n] = '\0';
    *port = (int)p;
    return 0;
}

static void shutdown_begin(struct app *a)
{
    if (a->stopping) {
        return;
    }
    a->stopping = 1;
    kv_server_stop(a->srv);
    uv_close((uv_handle_t *)&a->sigint, NULL);
    uv_close((uv_handle_t *)&a->sigterm, NULL);
    uv_close((uv_handle_t *)&a->health, NULL);
    uv_stop(&a->loop);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *a = h->data;
    fprintf(stderr, "dlog-kv: %s, stopping\n", signum == SIGINT ? "SIGINT" : "SIGTERM");
    shutdown_begin(a);
}

/* A replica whose apply failed has stopped applying: exit (non-zero) so
 * that a supervisor restarts it, rather than serve ever staler data. */
static void on_health(uv_timer_t *t)
{
    struct app *a = t->data;
    int err = dlog_sm_error(a->sm);
    if (err != 0) {
        fprintf(stderr, "dlog-kv: the replica stopped: %s (%s)\n", dlog_strerror(err),
                dlog_sm_errmsg(a->sm));
        a->exit_code = 1;
        shutdown_begin(a);
    }
}

int main(int argc, char **argv)
{
    enum {
        OPT_LOG = 1,
        OPT_STREAM,
        OPT_DATA,
        OPT_LISTEN,
        OPT_REPLICA,
        OPT_SNAP,
        OPT_STALE,
        OPT_SYNC,
        OPT_BTIMEOUT,
        OPT_HELP,
        OPT_VERSION
    };
    static const struct option longopts[] = {
        {"log", required_argument, NULL, OPT_LOG},
        {"stream", required_argument, NULL, OPT_STREAM},
        {"data", required_argument, NULL, OPT_DATA},
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"replica-id", required_argument, NULL, OPT_REPLICA},
        {"snapshot-every", required_argument, NULL, OPT_SNAP},
        {"stale-reads", no_argument, NULL, OPT_STALE},
        {"sync", required_argument, NULL, OPT_SYNC},
        {"barrier-timeout", required_argument, NULL, OPT_BTIMEOUT},
        {"help", no_argument, NULL, OPT_HELP},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    const char *uri = NULL, *stream = "kv", *data = NULL, *replica = NULL;
    char host[256] = "127.0.0.1", rid[PATH_MAX + 300], errmsg[DLOG_ERRMSG_LEN],
         snapdir[PATH_MAX];
    int port = 6380, stale = 0, sync_always = 0, btimeout = 5000, opt, rc;
    unsigned long long snap_every = 100000;
    char *end;
    struct app a;

    memset(&a, 0, sizeof(a));
    while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_LOG:
            uri = optarg;
            break;
        case OPT_STREAM:
            stream = optarg;
            break;
        case OPT_DATA:
            data = optarg;
            break;
        case OPT_LISTEN:
            if (parse_listen(optarg, host, sizeof(host), &port) != 0) {
                fprintf(stderr, "dlog-kv: --listen wants HOST:PORT, not '%s'\n", optarg);
                return 2;
            }
            break;
        case OPT_REPLICA:
            replica = optarg;
            break;
        case OPT_SNAP:
            errno = 0;
            snap_every = strtoull(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || optarg[0] == '-' || optarg[0] == '\0') {
                fprintf(stderr, "dlog-kv: --snapshot-every wants a number, not '%s'\n",
                        optarg);
                return 2;
            }
            break;
        case OPT_STALE:
            stale = 1;
            break;
        case OPT_SYNC:
            if (strcmp(optarg, "always") == 0) {
                sync_always = 1;
            } else if (strcmp(optarg, "periodic") != 0) {
                fprintf(stderr, "dlog-kv: --sync is 'periodic' or 'always'\n");
                return 2;
            }
            break;
        case OPT_BTIMEOUT:
            btimeout = (int)strtol(optarg, &end, 10);
            if (*end != '\0' || btimeout <= 0) {
                fprintf(stderr, "dlog-kv: --barrier-timeout wants milliseconds > 0\n");
                return 2;
            }
            break;
        case OPT_HELP:
            usage(stdout);
            return 0;
        case OPT_VERSION:
            printf("dlog-kv %s\n", dlog_version());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dlog-kv: unexpected argument '%s' (see --help)\n", argv[optind]);
        return 2;
    }
    if (uri == NULL || data == NULL) {
        fprintf(stderr, "dlog-kv: --log and --data are required (see --help)\n");
        return 2;
    }
    if (!dlog_stream_name_valid(stream)) {
        fprintf(stderr, "dlog-kv: invalid stream name '%s'\n", stream);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);

    /* 1. The local state (LMDB). */
    struct kv_state_options so = {.version = KV_STATE_OPTIONS_VERSION,
                                  .dir = data,
                                  .ident = stream,
                                  .sync_always = sync_always};
    int recovered = 0;
    if ((rc = kv_state_open(&so, &a.state, &recovered, errmsg)) != 0) {
        fprintf(stderr, "dlog-kv: %s\n", errmsg);
        return 1;
    }
    if (recovered) {
        fprintf(stderr,
                "dlog-kv: warning: the state in %s/state was unreadable; moved "
                "aside, rebuilding from the stream\n",
                data);
    }

    /* 2. The namespace and the state machine (replays what LMDB lacks). */
    if ((rc = dlog_open(uri, NULL, &a.ns, errmsg)) != 0) {
        fprintf(stderr, "dlog-kv: cannot open %s: %s\n", uri, errmsg);
        kv_state_close(a.state);
        return 1;
    }
    struct dlog_sm_options smo;
    dlog_sm_options_init(&smo);
    snprintf(snapdir, sizeof(snapdir), "%s/snapshots", data);
    smo.replica_id = replica; /* NULL: the framework's default */
    smo.snapshot_dir = snapdir;
    smo.snapshot_every_records = snap_every;
    smo.shared_snapshots = 1;
    if ((rc = dlog_sm_open(a.ns, stream, &kv_state_callbacks, a.state, &smo, &a.sm)) !=
        0) {
        fprintf(stderr, "dlog-kv: cannot open the state machine on '%s': %s (%s)\n",
                stream, dlog_strerror(rc), dlog_errmsg(a.ns));
        dlog_close(a.ns);
        kv_state_close(a.state);
        return 1;
    }

    if (replica == NULL) {
        default_replica_id(snapdir, rid, sizeof(rid));
        replica = rid;
    }

    /* 3. The server. */
    uv_loop_init(&a.loop);
    struct kv_server_options o;
    kv_server_options_init(&o);
    o.host = host;
    o.port = port;
    o.stale_reads = stale;
    o.barrier_timeout_ms = btimeout;
    o.stream = stream;
    o.replica_id = replica;
    rc = kv_server_start(&a.loop, a.sm, a.state, &o, &a.srv, errmsg);
    if (rc != 0) {
        fprintf(stderr, "dlog-kv: %s\n", errmsg);
        dlog_sm_close(a.sm);
        uv_loop_close(&a.loop);
        kv_state_close(a.state);
        dlog_close(a.ns);
        return 1;
    }
    uv_signal_init(&a.loop, &a.sigint);
    uv_signal_init(&a.loop, &a.sigterm);
    a.sigint.data = a.sigterm.data = &a;
    uv_signal_start(&a.sigint, on_signal, SIGINT);
    uv_signal_start(&a.sigterm, on_signal, SIGTERM);
    uv_timer_init(&a.loop, &a.health);
    a.health.data = &a;
    uv_timer_start(&a.health, on_health, 500, 500);

    char dl[DLOG_DLSN_STRLEN];
    fprintf(stderr,
            "dlog-kv: ready on %s:%d (stream %s, replica %s, applied %s, %s reads)\n",
            host, kv_server_port(a.srv), stream, replica,
            dlog_dlsn_format(dlog_sm_applied(a.sm), dl, sizeof(dl)),
            stale ? "stale" : "linearizable");
    fflush(stderr);
    uv_run(&a.loop, UV_RUN_DEFAULT);

    /* The order matters: see kv_server.h. */
    kv_server_stop(a.srv);
    dlog_sm_close(a.sm);
    kv_server_close(a.srv);
    uv_run(&a.loop, UV_RUN_DEFAULT);
    kv_server_free(a.srv);
    if (uv_loop_close(&a.loop) != 0) {
        fprintf(stderr, "dlog-kv: warning: libuv handles left open\n");
    }
    kv_state_close(a.state);
    dlog_close(a.ns);
    return a.exit_code;
}
