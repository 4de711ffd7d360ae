/*
 * dlogd — the dlog server.
 *
 *   dlogd --role local --data DIR [--listen 127.0.0.1:7000] [--config FILE]
 *         [--pid-file FILE] [--log-level debug|info|warn|error]
 *   dlogd --role node --id N --listen HOST:PORT --raft HOST:PORT --data DIR
 *         (--bootstrap [--peers ID@HOST:PORT,...] | --join HOST:PORT[,...])
 *
 * Role "local" serves a file:DIR namespace (metadata, segments and the
 * write proxy in one process, one port). Role "node" hosts a replica of a
 * cluster's metadata Raft group and answers node calls (src/node/node.h).
 * The roles proxy and broker come later and are refused with a clear
 * message.
 *
 * The configuration file is INI (read with libinih): keys role, data,
 * listen, pid-file, log-level, max-frame in a [dlogd] section (or before
 * any section). Flags override the file.
 *
 * On SIGINT or SIGTERM it stops accepting requests, makes every write it
 * received durable or fails it, sends the replies, and exits 0.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <ini.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include <dlog/dlog.h>

#include "base/errmsg.h"
#include "base/log.h"
#include "net/net.h"
#include "node/node.h"
#include "proxy/proxy.h"

struct config {
    char role[32];
    char data[4096];
    char listen[300];
    char pid_file[4096];
    char log_level[16];
    unsigned long max_frame;
    char proxy_id[64];
    char limits[8];            /* "on" (default) or "off" */
    unsigned long interval_ms; /* rate-limit reports; 0: default */
    unsigned long lease_ms;    /* rate-limit grant lease; 0: default */
    /* role node */
    unsigned long long id;
    char raft[300];
    char join[1024];
    char peers[4096];
    int bootstrap;
    unsigned long groups;                                  /* data groups; 0: 1 */
    unsigned long data_snap_threshold, data_snap_trailing; /* 0: the node's defaults */
    unsigned long data_log_memory_mb, data_log_segment_mb; /* 0: the node's defaults */
    /* role proxy: the cluster; role broker: the proxy's listen address */
    char cluster[1024];
    char proxy_listen[300];
    char advertise[300];          /* proxy/broker: the address redirects name */
    unsigned long owner_lease_ms; /* proxy/broker: ownership lease; 0: default */
};

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: dlogd --role local --data DIR [options]\n"
        "       dlogd --role node --id N --listen HOST:PORT --raft HOST:PORT --data DIR\n"
        "             (--bootstrap [--peers ID@HOST:PORT,...] | --join HOST:PORT[,...])\n"
        "             [--groups G]\n"
        "       dlogd --role proxy --cluster cluster://HOST:PORT,... [--listen "
        "HOST:PORT]\n"
        "       dlogd --role broker (node options) --proxy-listen HOST:PORT\n"
        "\n"
        "Serves a dlog namespace over the wire protocol (docs/protocol.md), or\n"
        "runs a node of a cluster (docs/cluster.md).\n"
        "\n"
        "  --role ROLE          local (metadata + segments + proxy in one process),\n"
        "                       node (a replica of the metadata and data groups),\n"
        "                       proxy (the wire protocol over a cluster), or\n"
        "                       broker (node + proxy in one process)\n"
        "  --groups G           node: data groups (default 1; the same on every node);\n"
        "                       group g uses the --raft port + 1 + g\n"
        "  --data-log-memory-mb N  node: each data group's Raft log kept in memory,\n"
        "                       about (default 128); sets the two counts below from\n"
        "                       the mean entry size\n"
        "  --data-log-segment-mb N  node: data groups' Raft log segment files\n"
        "                       in MiB (default 8)\n"
        "  --data-snapshot-threshold N  node: data groups' Raft entries between\n"
        "                       snapshots (default: from --data-log-memory-mb)\n"
        "  --data-snapshot-trailing N   node: entries kept after a snapshot (default:\n"
        "                       from --data-log-memory-mb); a replica further behind\n"
        "                       loads the contents from a peer\n"
        "  --cluster URI        proxy: the cluster's nodes, cluster://HOST:PORT,...\n"
        "  --proxy-listen H:P   broker: where the proxy listens (--listen: node calls)\n"
        "  --data DIR           the namespace's (local) or the node's directory\n"
        "                       (created if missing)\n"
        "  --id N               node: this node's id (>= 1, unique, never reused)\n"
        "  --raft HOST:PORT     node: the address of Raft traffic (a real port; other\n"
        "                       nodes connect to it)\n"
        "  --bootstrap          node: start a new cluster (ignored if DIR holds one)\n"
        "  --peers LIST         node, with --bootstrap: ID@HOST:PORT,... the Raft\n"
        "                       addresses of all first members (default: this node)\n"
        "  --join ADDRS         node: listen addresses of members to ask to add this\n"
        "                       node as a voter (asked again at every start)\n"
        "  --listen HOST:PORT   address to listen on (default 127.0.0.1:7000; port 0\n"
        "                       picks a free one). Only loopback unless told otherwise\n"
        "  --config FILE        INI file with the same keys (role, data, listen,\n"
        "                       pid-file, log-level, max-frame, proxy-id, limits,\n"
        "                       limit-interval-ms, limit-lease-ms); flags win\n"
        "  --pid-file FILE      write the process id to FILE, removed at exit\n"
        "  --log-level LEVEL    debug, info, warn (default) or error; or DLOG_LOG\n"
        "  --max-frame BYTES    largest frame accepted (default 70 MiB)\n"
        "  --proxy-id ID        this proxy's name among the namespace's proxies, for\n"
        "                       rate-limit shares (default HOST:PORT:PID)\n"
        "  --limits on|off      enforce rate limits (default on; docs/rate-limiting.md)\n"
        "  --limit-interval-ms N  rate-limit report period (default 250)\n"
        "  --limit-lease-ms N   rate-limit share lease (default 3000)\n"
        "  --advertise HOST:PORT  proxy, broker: the address other proxies send this\n"
        "                       one's clients to (default the listen address)\n"
        "  --owner-lease-ms N   proxy, broker: a proxy silent this long loses its\n"
        "                       streams to the others (default 2000)\n"
        "  -h, --help           this help\n"
        "  -V, --version        the version\n"
        "\n"
        "On start it prints \"dlogd: listening on HOST:PORT\" on stdout. A node's\n"
        "listen address takes node calls (dlogctl cluster status -u URI).\n");
}

/* A whole number 1..max into *out: 0, or -1 (no sign, no junk, no overflow). */
static int parse_count(const char *value, unsigned long max, unsigned long *out)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(value, &end, 10);
    if (errno != 0 || end == value || *end != '\0' || value[0] == '-' || v < 1 || v > max)
        return -1;
    *out = v;
    return 0;
}

static int set_key(struct config *c, const char *key, const char *value)
{
#define COPY(field) snprintf(c->field, sizeof c->field, "%s", value)
    if (strcmp(key, "role") == 0)
        COPY(role);
    else if (strcmp(key, "data") == 0)
        COPY(data);
    else if (strcmp(key, "listen") == 0)
        COPY(listen);
    else if (strcmp(key, "pid-file") == 0 || strcmp(key, "pid_file") == 0)
        COPY(pid_file);
    else if (strcmp(key, "log-level") == 0 || strcmp(key, "log_level") == 0)
        COPY(log_level);
    else if (strcmp(key, "proxy-id") == 0 || strcmp(key, "proxy_id") == 0) {
        if (value[0] == '\0' || strlen(value) >= sizeof c->proxy_id)
            return -1;
        COPY(proxy_id);
    } else if (strcmp(key, "limits") == 0) {
        if (strcmp(value, "on") != 0 && strcmp(value, "off") != 0)
            return -1;
        COPY(limits);
    } else if (strcmp(key, "advertise") == 0) {
        char h[256];
        int port;
        if (strlen(value) >= sizeof c->advertise ||
            net_parse_hostport(value, h, sizeof h, &port) != 0 || port == 0)
            return -1;
        COPY(advertise);
    } else if (strcmp(key, "owner-lease-ms") == 0) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || v < 100 || v > 600000)
            return -1;
        c->owner_lease_ms = v;
    } else if (strcmp(key, "limit-interval-ms") == 0 ||
               strcmp(key, "limit-lease-ms") == 0) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || v < 10 || v > 600000)
            return -1;
        if (key[6] == 'i')
            c->interval_ms = v;
        else
            c->lease_ms = v;
    } else if (strcmp(key, "id") == 0) {
        char *end;
        errno = 0;
        c->id = strtoull(value, &end, 10);
        if (errno != 0 || *end != '\0' || c->id == 0 || value[0] == '-')
            return -1;
    } else if (strcmp(key, "raft") == 0) {
        if (strlen(value) >= sizeof c->raft)
            return -1;
        COPY(raft);
    } else if (strcmp(key, "join") == 0) {
        if (strlen(value) >= sizeof c->join)
            return -1;
        COPY(join);
    } else if (strcmp(key, "groups") == 0) {
        return parse_count(value, 1024, &c->groups);
    } else if (strcmp(key, "data-snapshot-threshold") == 0) {
        return parse_count(value, 100000000, &c->data_snap_threshold);
    } else if (strcmp(key, "data-snapshot-trailing") == 0) {
        return parse_count(value, 100000000, &c->data_snap_trailing);
    } else if (strcmp(key, "data-log-memory-mb") == 0) {
        return parse_count(value, 65536, &c->data_log_memory_mb);
    } else if (strcmp(key, "data-log-segment-mb") == 0) {
        return parse_count(value, 65536, &c->data_log_segment_mb);
    } else if (strcmp(key, "cluster") == 0) {
        if (strlen(value) >= sizeof c->cluster)
            return -1;
        COPY(cluster);
    } else if (strcmp(key, "proxy-listen") == 0 || strcmp(key, "proxy_listen") == 0) {
        if (strlen(value) >= sizeof c->proxy_listen)
            return -1;
        COPY(proxy_listen);
    } else if (strcmp(key, "peers") == 0) {
        if (strlen(value) >= sizeof c->peers)
            return -1;
        COPY(peers);
    } else if (strcmp(key, "bootstrap") == 0) {
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0 ||
            strcmp(value, "1") == 0)
            c->bootstrap = 1;
        else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0 ||
                 strcmp(value, "0") == 0)
            c->bootstrap = 0;
        else
            return -1;
    } else if (strcmp(key, "max-frame") == 0 || strcmp(key, "max_frame") == 0) {
        char *end;
        errno = 0;
        c->max_frame = strtoul(value, &end, 10);
        if (errno != 0 || *end != '\0' || c->max_frame < 65536)
            return -1;
    } else
        return -1;
    return 0;
#undef COPY
}

static int ini_cb(void *user, const char *section, const char *key, const char *value)
{
    if (section[0] != '\0' && strcmp(section, "dlogd") != 0) {
        fprintf(stderr, "dlogd: config: unknown section [%s]\n", section);
        return 0;
    }
    if (set_key(user, key, value) != 0) {
        fprintf(stderr, "dlogd: config: bad key or value: %s = %s\n", key, value);
        return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- running */

struct server {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct dlog_ns *ns;
    struct proxy *proxy;
    int stopping;
};

static void on_signal(uv_signal_t *h, int signum)
{
    struct server *s = h->data;
    if (s->stopping)
        return;
    s->stopping = 1;
    log_warn("dlogd", "signal %d: shutting down", signum);
    proxy_shutdown(s->proxy);
    dlog_close(s->ns); /* delivers the last write completions */
    s->ns = NULL;
    proxy_free(s->proxy);
    s->proxy = NULL;
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static int run(const struct config *c, const char *ns_uri, const char *role)
{
    struct server s;
    char errmsg[DLOG_ERRMSG_LEN] = "", host[256], uri[4200];
    int port, rv;
    memset(&s, 0, sizeof s);
    if (net_parse_hostport(c->listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "dlogd: --listen: expected HOST:PORT, got '%s'\n", c->listen);
        return 2;
    }
    uv_loop_init(&s.loop);
    struct dlog_options o;
    dlog_options_init(&o);
    o.loop = &s.loop;
    snprintf(uri, sizeof uri, "%s", ns_uri);
    rv = dlog_open(uri, &o, &s.ns, errmsg);
    if (rv != 0) {
        fprintf(stderr, "dlogd: cannot open %s: %s (%s)\n", uri, dlog_strerror(rv),
                errmsg);
        uv_loop_close(&s.loop);
        return 1;
    }
    struct proxy_options po = {
        .host = host,
        .port = port,
        .max_frame = c->max_frame,
        .server_name = "dlogd " PACKAGE_VERSION,
        .no_limits = strcmp(c->limits, "off") == 0,
        .proxy_id = c->proxy_id[0] ? c->proxy_id : NULL,
        .limit_interval_ms = c->interval_ms,
        .limit_lease_ms = c->lease_ms,
        .ownership = strcmp(role, "local") != 0,
        .advertise = c->advertise[0] ? c->advertise : NULL,
        .owner_lease_ms = c->owner_lease_ms,
    };
    rv = proxy_start(&s.loop, s.ns, &po, &s.proxy, errmsg);
    if (rv != 0) {
        fprintf(stderr, "dlogd: %s\n", errmsg);
        dlog_close(s.ns);
        uv_run(&s.loop, UV_RUN_DEFAULT);
        uv_loop_close(&s.loop);
        return 1;
    }
    if (strncmp(host, "127.", 4) != 0 && strcmp(host, "::1") != 0)
        log_warn("dlogd", "listening on %s, which is not a loopback address", host);
    if (c->pid_file[0] != '\0') {
        FILE *f = fopen(c->pid_file, "w");
        if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
            fprintf(stderr, "dlogd: cannot write pid file %s: %s\n", c->pid_file,
                    strerror(errno));
            return 1;
        }
    }
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_start(&s.sigint, on_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_signal, SIGTERM);
    printf("dlogd: listening on %s:%d (role %s, %s)\n", host, proxy_port(s.proxy), role,
           uri);
    fflush(stdout);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&s.loop);
    if (rv != 0)
        log_warn("dlogd", "loop closed with handles open: %s", uv_strerror(rv));
    if (c->pid_file[0] != '\0')
        unlink(c->pid_file);
    log_info("dlogd", "stopped");
    return 0;
}

/* ---------------------------------------------------------------- role node */

struct node_server {
    uv_loop_t loop;
    uv_signal_t sigint, sigterm;
    struct node *node;
    int stopping;
};

static void on_node_stopped(void *data)
{
    struct node_server *s = data;

    s->node = NULL;
    log_info("dlogd", "node stopped");
}

static void on_node_signal(uv_signal_t *h, int signum)
{
    struct node_server *s = h->data;

    if (s->stopping)
        return;
    s->stopping = 1;
    log_warn("dlogd", "signal %d: shutting down", signum);
    node_stop(s->node, on_node_stopped, s);
    uv_close((uv_handle_t *)&s->sigint, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
}

static int write_pid_file(const char *path)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        fprintf(stderr, "dlogd: cannot write pid file %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

static int run_node(const struct config *c)
{
    struct node_server s;
    struct node_options o;
    char errmsg[DLOG_ERRMSG_LEN] = "", host[256];
    int port, rv;

    memset(&s, 0, sizeof s);
    if (net_parse_hostport(c->listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "dlogd: --listen: expected HOST:PORT, got '%s'\n", c->listen);
        return 2;
    }
    memset(&o, 0, sizeof o);
    o.id = c->id;
    o.listen = c->listen;
    o.raft = c->raft;
    o.data = c->data;
    o.bootstrap = c->bootstrap;
    o.peers = c->peers[0] ? c->peers : NULL;
    o.join = c->join[0] ? c->join : NULL;
    o.max_frame = c->max_frame;
    o.server_name = "dlogd " PACKAGE_VERSION " node";
    o.groups = (unsigned)c->groups;
    o.data_snapshot_threshold = (unsigned)c->data_snap_threshold;
    o.data_snapshot_trailing = (unsigned)c->data_snap_trailing;
    o.data_log_memory_mb = (unsigned)c->data_log_memory_mb;
    o.data_log_segment_mb = (unsigned)c->data_log_segment_mb;
    uv_loop_init(&s.loop);
    rv = node_start(&s.loop, &o, &s.node, errmsg);
    if (rv != 0) {
        fprintf(stderr, "dlogd: node: %s (%s)\n", errmsg, dlog_strerror(rv));
        uv_run(&s.loop, UV_RUN_DEFAULT); /* what node_start opened closes */
        uv_loop_close(&s.loop);
        return 1;
    }
    if (strncmp(host, "127.", 4) != 0 && strcmp(host, "::1") != 0)
        log_warn("dlogd", "listening on %s, which is not a loopback address", host);
    if (c->pid_file[0] != '\0' && write_pid_file(c->pid_file) != 0)
        return 1;
    s.sigint.data = s.sigterm.data = &s;
    uv_signal_init(&s.loop, &s.sigint);
    uv_signal_init(&s.loop, &s.sigterm);
    uv_signal_start(&s.sigint, on_node_signal, SIGINT);
    uv_signal_start(&s.sigterm, on_node_signal, SIGTERM);
    printf("dlogd: listening on %s:%d (role node, id %llu, raft %s, data %s)\n",
           host[0] ? host : "127.0.0.1", node_listen_port(s.node), c->id, c->raft,
           c->data);
    fflush(stdout);
    uv_run(&s.loop, UV_RUN_DEFAULT);
    rv = uv_loop_close(&s.loop);
    if (rv != 0)
        log_warn("dlogd", "loop closed with handles open: %s", uv_strerror(rv));
    if (c->pid_file[0] != '\0')
        unlink(c->pid_file);
    log_info("dlogd", "stopped");
    return 0;
}

/* ---------------------------------------------------------------- role broker */

/*
 * A broker is a node and a proxy in one process. The proxy makes blocking
 * calls (admin calls on its loop, appends on writer threads) to the
 * cluster, this node included, so the node runs on a loop of its own, on
 * its own thread; the proxy reaches it over loopback like any client.
 */
struct broker_node {
    uv_loop_t loop;
    uv_async_t stop;
    struct node *node;
    pthread_t thread;
};

static void *broker_node_main(void *arg)
{
    struct broker_node *b = arg;

    uv_run(&b->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void on_broker_stop(uv_async_t *h)
{
    struct broker_node *b = h->data;

    node_stop(b->node, NULL, NULL);
    uv_close((uv_handle_t *)&b->stop, NULL);
}

static int run_broker(const struct config *c)
{
    struct broker_node b;
    struct node_options o;
    struct config pc = *c;
    char errmsg[DLOG_ERRMSG_LEN] = "", host[256], uri[600];
    int port, rv;

    memset(&b, 0, sizeof b);
    if (net_parse_hostport(c->listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "dlogd: --listen: expected HOST:PORT, got '%s'\n", c->listen);
        return 2;
    }
    memset(&o, 0, sizeof o);
    o.id = c->id;
    o.listen = c->listen;
    o.raft = c->raft;
    o.data = c->data;
    o.bootstrap = c->bootstrap;
    o.peers = c->peers[0] ? c->peers : NULL;
    o.join = c->join[0] ? c->join : NULL;
    o.max_frame = c->max_frame;
    o.server_name = "dlogd " PACKAGE_VERSION " broker";
    o.groups = (unsigned)c->groups;
    o.data_snapshot_threshold = (unsigned)c->data_snap_threshold;
    o.data_snapshot_trailing = (unsigned)c->data_snap_trailing;
    o.data_log_memory_mb = (unsigned)c->data_log_memory_mb;
    o.data_log_segment_mb = (unsigned)c->data_log_segment_mb;
    uv_loop_init(&b.loop);
    rv = node_start(&b.loop, &o, &b.node, errmsg);
    if (rv != 0) {
        fprintf(stderr, "dlogd: node: %s (%s)\n", errmsg, dlog_strerror(rv));
        uv_run(&b.loop, UV_RUN_DEFAULT);
        uv_loop_close(&b.loop);
        return 1;
    }
    uv_async_init(&b.loop, &b.stop, on_broker_stop);
    b.stop.data = &b;
    if (pthread_create(&b.thread, NULL, broker_node_main, &b) != 0) {
        fprintf(stderr, "dlogd: cannot start the node's thread\n");
        return 1;
    }
    printf("dlogd: node %llu on %s:%d (raft %s, data %s)\n", c->id,
           host[0] ? host : "127.0.0.1", node_listen_port(b.node), c->raft, c->data);
    snprintf(uri, sizeof uri, "cluster://%s:%d", host[0] ? host : "127.0.0.1",
             node_listen_port(b.node));
    snprintf(pc.listen, sizeof pc.listen, "%s", c->proxy_listen);
    rv = run(&pc, uri, "broker");
    uv_async_send(&b.stop);
    pthread_join(b.thread, NULL);
    uv_loop_close(&b.loop);
    return rv;
}

int main(int argc, char **argv)
{
    struct config c;
    struct config flags;
    const char *config_file = NULL;
    memset(&c, 0, sizeof c);
    memset(&flags, 0, sizeof flags);
    enum { OPT_LOG_MEMORY = 0x100, OPT_LOG_SEGMENT }; /* long options without a letter */
    static const struct option longopts[] = {
        {"role", required_argument, NULL, 'r'},
        {"data", required_argument, NULL, 'd'},
        {"listen", required_argument, NULL, 'l'},
        {"config", required_argument, NULL, 'c'},
        {"pid-file", required_argument, NULL, 'p'},
        {"log-level", required_argument, NULL, 'L'},
        {"max-frame", required_argument, NULL, 'm'},
        {"proxy-id", required_argument, NULL, 'i'},
        {"limits", required_argument, NULL, 'R'},
        {"limit-interval-ms", required_argument, NULL, 'I'},
        {"limit-lease-ms", required_argument, NULL, 'E'},
        {"id", required_argument, NULL, 'N'},
        {"raft", required_argument, NULL, 'T'},
        {"join", required_argument, NULL, 'J'},
        {"peers", required_argument, NULL, 'P'},
        {"bootstrap", no_argument, NULL, 'B'},
        {"groups", required_argument, NULL, 'G'},
        {"data-snapshot-threshold", required_argument, NULL, 'H'},
        {"data-snapshot-trailing", required_argument, NULL, 'K'},
        {"data-log-memory-mb", required_argument, NULL, OPT_LOG_MEMORY},
        {"data-log-segment-mb", required_argument, NULL, OPT_LOG_SEGMENT},
        {"cluster", required_argument, NULL, 'C'},
        {"proxy-listen", required_argument, NULL, 'X'},
        {"advertise", required_argument, NULL, 'A'},
        {"owner-lease-ms", required_argument, NULL, 'O'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "hV", longopts, NULL)) != -1) {
        const char *key = NULL;
        switch (opt) {
        case 'r':
            key = "role";
            break;
        case 'd':
            key = "data";
            break;
        case 'l':
            key = "listen";
            break;
        case 'p':
            key = "pid-file";
            break;
        case 'L':
            key = "log-level";
            break;
        case 'm':
            key = "max-frame";
            break;
        case 'i':
            key = "proxy-id";
            break;
        case 'R':
            key = "limits";
            break;
        case 'I':
            key = "limit-interval-ms";
            break;
        case 'E':
            key = "limit-lease-ms";
            break;
        case 'N':
            key = "id";
            break;
        case 'T':
            key = "raft";
            break;
        case 'J':
            key = "join";
            break;
        case 'P':
            key = "peers";
            break;
        case 'B':
            flags.bootstrap = 1;
            break;
        case 'G':
            key = "groups";
            break;
        case 'H':
            key = "data-snapshot-threshold";
            break;
        case 'K':
            key = "data-snapshot-trailing";
            break;
        case OPT_LOG_MEMORY:
            key = "data-log-memory-mb";
            break;
        case OPT_LOG_SEGMENT:
            key = "data-log-segment-mb";
            break;
        case 'C':
            key = "cluster";
            break;
        case 'X':
            key = "proxy-listen";
            break;
        case 'A':
            key = "advertise";
            break;
        case 'O':
            key = "owner-lease-ms";
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("dlogd %s\n", dlog_version());
            return 0;
        default:
            usage(stderr);
            return 2;
        }
        if (key != NULL && set_key(&flags, key, optarg) != 0) {
            fprintf(stderr, "dlogd: --%s: bad value '%s'\n", key, optarg);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "dlogd: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    snprintf(c.role, sizeof c.role, "local");
    snprintf(c.listen, sizeof c.listen, "127.0.0.1:7000");
    if (config_file != NULL) {
        int rv = ini_parse(config_file, ini_cb, &c);
        if (rv != 0) {
            if (rv < 0)
                fprintf(stderr, "dlogd: cannot read config file %s\n", config_file);
            else
                fprintf(stderr, "dlogd: config file %s: error on line %d\n", config_file,
                        rv);
            return 2;
        }
    }
    /* Flags win over the file. */
#define OVERRIDE(field)                                                                  \
    if (flags.field[0] != '\0')                                                          \
    memcpy(c.field, flags.field, sizeof c.field)
    OVERRIDE(role);
    OVERRIDE(data);
    OVERRIDE(listen);
    OVERRIDE(pid_file);
    OVERRIDE(log_level);
    OVERRIDE(proxy_id);
    OVERRIDE(limits);
    OVERRIDE(raft);
    OVERRIDE(join);
    OVERRIDE(peers);
    OVERRIDE(cluster);
    OVERRIDE(proxy_listen);
    OVERRIDE(advertise);
#undef OVERRIDE
    if (flags.owner_lease_ms != 0)
        c.owner_lease_ms = flags.owner_lease_ms;
    if (flags.groups != 0)
        c.groups = flags.groups;
    if (flags.data_snap_threshold != 0)
        c.data_snap_threshold = flags.data_snap_threshold;
    if (flags.data_snap_trailing != 0)
        c.data_snap_trailing = flags.data_snap_trailing;
    if (flags.data_log_memory_mb != 0)
        c.data_log_memory_mb = flags.data_log_memory_mb;
    if (flags.data_log_segment_mb != 0)
        c.data_log_segment_mb = flags.data_log_segment_mb;
    if (flags.id != 0)
        c.id = flags.id;
    if (flags.bootstrap)
        c.bootstrap = 1;
    if (flags.max_frame != 0)
        c.max_frame = flags.max_frame;
    if (flags.interval_ms != 0)
        c.interval_ms = flags.interval_ms;
    if (flags.lease_ms != 0)
        c.lease_ms = flags.lease_ms;
    if (c.log_level[0] != '\0') {
        int lvl = log_parse_level(c.log_level);
        if (lvl < 0) {
            fprintf(stderr, "dlogd: unknown log level '%s'\n", c.log_level);
            return 2;
        }
        log_set_level((enum log_level)lvl);
    }
    if (strcmp(c.role, "node") == 0 || strcmp(c.role, "broker") == 0) {
        if (c.id == 0 || c.raft[0] == '\0' || c.data[0] == '\0') {
            fprintf(stderr,
                    "dlogd: role %s needs --id N, --raft HOST:PORT and "
                    "--data DIR\n",
                    c.role);
            return 2;
        }
        if (c.role[0] == 'b' && c.proxy_listen[0] == '\0') {
            fprintf(stderr, "dlogd: role broker needs --proxy-listen HOST:PORT\n");
            return 2;
        }
        if (!c.bootstrap && c.join[0] == '\0')
            log_warn("dlogd", "neither --bootstrap nor --join: the node waits to be "
                              "added (or restarts as a member)");
        signal(SIGPIPE, SIG_IGN);
        return c.role[0] == 'b' ? run_broker(&c) : run_node(&c);
    }
    if (strcmp(c.role, "proxy") == 0) {
        char uri[1100];
        if (c.cluster[0] == '\0') {
            fprintf(stderr, "dlogd: role proxy needs --cluster cluster://H:P,...\n");
            return 2;
        }
        snprintf(uri, sizeof uri, "%s%s",
                 strncmp(c.cluster, "cluster://", 10) == 0 ? "" : "cluster://",
                 c.cluster);
        signal(SIGPIPE, SIG_IGN);
        return run(&c, uri, "proxy");
    }
    if (strcmp(c.role, "local") != 0) {
        fprintf(stderr, "dlogd: unknown role '%s' (local, node, proxy, broker)\n",
                c.role);
        return 2;
    }
    if (c.data[0] == '\0') {
        fprintf(stderr, "dlogd: --data DIR is required\n");
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    {
        char uri[4200];
        snprintf(uri, sizeof uri, "file:%s", c.data);
        return run(&c, uri, "local");
    }
}
