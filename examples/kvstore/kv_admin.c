/*
 * kv_admin — the commands about the server rather than the data: CLIENT,
 * INFO and COMMAND (enough of it for redis-cli 7's hints). Loop thread.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "kv_commands.h"
#include "kv_server.h"

#define ENOMEM_IF(x) ((x) != 0 ? DLOG_ENOMEM : 0)

static int err_syntax(struct dlog_buf *out)
{
    return ENOMEM_IF(resp_add_error(out, "ERR syntax error"));
}

static const char *const client_help[] = {
    "CLIENT <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
    "GETNAME",
    "    Return the name of the current connection.",
    "ID",
    "    Return the ID of the current connection.",
    "SETNAME <name>",
    "    Assign the name <name> to the current connection.",
    "STALE [ON|OFF]",
    "    dlog-kv: ON serves this connection's reads from the local replica "
    "without a read barrier (fast, possibly stale); OFF (the default unless "
    "--stale-reads) makes them linearizable. Without an argument, report the mode.",
    "HELP",
    "    Print this help.",
};

int kv_cmd_client(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                  struct dlog_buf *enc)
{
    struct kv_session *s = ctx->sess;
    if (kv_argis(c, 1, "setname") && c->argc == 3) {
        for (size_t i = 0; i < c->argvlen[2]; i++) {
            unsigned char ch = (unsigned char)c->argv[2][i];
            if (ch < '!' || ch > '~') {
                return ENOMEM_IF(resp_add_error(out, "ERR Client names cannot contain "
                                                     "spaces, newlines or special "
                                                     "characters."));
            }
        }
        free(s->name);
        s->name = NULL;
        if (c->argvlen[2] > 0 && (s->name = strdup(c->argv[2])) == NULL) {
            return DLOG_ENOMEM;
        }
        return ENOMEM_IF(resp_add_status(out, "OK"));
    }
    if (kv_argis(c, 1, "getname") && c->argc == 2) {
        return ENOMEM_IF(s->name ? resp_add_cstr(out, s->name) : resp_add_nil(out));
    }
    if (kv_argis(c, 1, "id") && c->argc == 2) {
        return ENOMEM_IF(resp_add_int(out, (long long)s->id));
    }
    if (kv_argis(c, 1, "setinfo") && c->argc == 4) {
        return ENOMEM_IF(resp_add_status(out, "OK")); /* accepted, not kept */
    }
    if (kv_argis(c, 1, "stale") && c->argc <= 3) {
        if (c->argc == 3) {
            if (kv_argis(c, 2, "on")) {
                s->stale = 1;
            } else if (kv_argis(c, 2, "off")) {
                s->stale = 0;
            } else {
                return err_syntax(out);
            }
            return ENOMEM_IF(resp_add_status(out, "OK"));
        }
        struct kv_server_stats st;
        kv_server_get_stats(ctx->srv, &st);
        int on = s->stale >= 0 ? s->stale : st.stale_default;
        return ENOMEM_IF(resp_add_status(out, on ? "ON" : "OFF"));
    }
    if (kv_argis(c, 1, "help") && c->argc == 2) {
        size_t n = sizeof(client_help) / sizeof(client_help[0]);
        int rc = resp_add_array(out, (long long)n);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            rc = resp_add_status(out, client_help[i]);
        }
        return ENOMEM_IF(rc);
    }
    return ENOMEM_IF(resp_add_errorf(out,
                                     "ERR unknown subcommand or wrong number of "
                                     "arguments for '%.128s'. Try CLIENT HELP.",
                                     c->argv[1]));
}

/* INFO [section ...] */
static int want_section(const struct resp_cmd *c, const char *name)
{
    if (c->argc == 1) {
        return 1;
    }
    for (int i = 1; i < c->argc; i++) {
        if (kv_argis(c, i, name) || kv_argis(c, i, "all") ||
            kv_argis(c, i, "everything") || kv_argis(c, i, "default")) {
            return 1;
        }
    }
    return 0;
}

int kv_cmd_info(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                struct dlog_buf *enc)
{
    struct kv_server_stats st;
    struct kv_state_stats ks;
    char text[4096], dlsn[DLOG_DLSN_STRLEN], stored[DLOG_DLSN_STRLEN];
    size_t n = 0;
    uint64_t keys = 0, expires = 0;
    struct dlog_dlsn applied = DLOG_DLSN_HEAD;

    kv_server_get_stats(ctx->srv, &st);
    kv_state_stats(ctx->state, &ks);
    if (kv_read_begin(ctx->state) == 0) {
        kv_read_dbsize(ctx->state, &keys);
        kv_read_expires(ctx->state, &expires);
        kv_read_applied(ctx->state, &applied);
        kv_read_end(ctx->state);
    }
#define ADD(...)                                                                         \
    do {                                                                                 \
        int k_ = snprintf(text + n, sizeof(text) - n, __VA_ARGS__);                      \
        if (k_ > 0 && (size_t)k_ < sizeof(text) - n) {                                   \
            n += (size_t)k_;                                                             \
        }                                                                                \
    } while (0)
    if (want_section(c, "server")) {
        ADD("# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n"
            "dlog_kv_version:%s\r\nprocess_id:%ld\r\ntcp_port:%d\r\n"
            "uptime_in_seconds:%" PRIu64 "\r\n\r\n",
            dlog_version(), (long)getpid(), st.port, st.uptime_s);
    }
    if (want_section(c, "clients")) {
        ADD("# Clients\r\nconnected_clients:%" PRIu64 "\r\n\r\n", st.connected_clients);
    }
    if (want_section(c, "replication")) {
        ADD("# Replication\r\nrole:replica\r\ndlog_stream:%s\r\ndlog_replica_id:%s\r\n"
            "applied_dlsn:%s\r\nstored_applied_dlsn:%s\r\n"
            "applied_since_start:%" PRIu64 "\r\nstale_reads_default:%s\r\n"
            "replica_error:%s\r\n\r\n",
            st.stream, st.replica_id, dlog_dlsn_format(st.applied, dlsn, sizeof(dlsn)),
            dlog_dlsn_format(applied, stored, sizeof(stored)), st.applied_since_start,
            st.stale_default ? "on" : "off",
            st.sm_error ? dlog_strerror(st.sm_error) : "none");
    }
    if (want_section(c, "stats")) {
        ADD("# Stats\r\ntotal_connections_received:%" PRIu64 "\r\n"
            "total_commands_processed:%" PRIu64 "\r\nproposals:%" PRIu64 "\r\n"
            "proposal_errors:%" PRIu64 "\r\nproposal_retries:%" PRIu64 "\r\n"
            "writes_in_flight:%" PRIu64 "\r\nreads_in_flight:%" PRIu64 "\r\n"
            "read_barriers:%" PRIu64 "\r\nbarrier_reads:%" PRIu64 "\r\n"
            "stale_reads:%" PRIu64 "\r\nfast_linearizable_reads:%" PRIu64 "\r\n"
            "applied_records:%" PRIu64 "\r\n"
            "rejected_commands:%" PRIu64 "\r\nsnapshots_taken:%" PRIu64 "\r\n"
            "snapshots_restored:%" PRIu64 "\r\n\r\n",
            st.total_connections, st.total_commands, st.proposals, st.proposal_errors,
            st.proposal_retries, st.writes_inflight, st.reads_inflight, st.barriers,
            st.barrier_reads, st.stale_reads, st.fast_reads, ks.applies, ks.apply_errors,
            ks.snapshots, ks.restores);
    }
    if (want_section(c, "keyspace")) {
        ADD("# Keyspace\r\n");
        if (keys > 0) {
            ADD("db0:keys=%" PRIu64 ",expires=%" PRIu64 ",avg_ttl=0\r\n", keys, expires);
        }
    }
#undef ADD
    while (n >= 4 && memcmp(text + n - 4, "\r\n\r\n", 4) == 0) {
        n -= 2; /* no blank line at the very end */
    }
    return ENOMEM_IF(resp_add_bulk(out, text, n));
}

/* ------------------------------------------------------------------ COMMAND */

/* Appends a space-separated word list as an array of status strings. */
static int add_words(struct dlog_buf *out, const char *words)
{
    char tmp[256];
    long long n = 0;
    snprintf(tmp, sizeof(tmp), "%s", words);
    for (char *s = tmp, *save = NULL, *w; (w = strtok_r(s, " ", &save)) != NULL;
         s = NULL) {
        n++;
    }
    int rc = resp_add_array(out, n);
    snprintf(tmp, sizeof(tmp), "%s", words);
    for (char *s = tmp, *save = NULL, *w;
         rc == 0 && (w = strtok_r(s, " ", &save)) != NULL; s = NULL) {
        rc = resp_add_status(out, w);
    }
    return rc;
}

/* COMMAND INFO entry: Redis 7's ten fields. */
static int add_info(struct dlog_buf *out, const struct kv_command *k)
{
    /* Every encoder returns 0 or DLOG_ENOMEM: OR them, check once. */
    int rc = resp_add_array(out, 10);
    rc |= resp_add_cstr(out, k->name);
    rc |= resp_add_int(out, k->arity);
    rc |= add_words(out, k->flags);
    rc |= resp_add_int(out, k->first_key);
    rc |= resp_add_int(out, k->last_key);
    rc |= resp_add_int(out, k->key_step);
    for (int i = 0; i < 4; i++) {
        rc |= resp_add_array(out, 0); /* ACL categories, tips, key specs, subcommands */
    }
    return rc;
}

/* COMMAND DOCS entry: name, then a map (flat array in RESP2). */
static int add_docs(struct dlog_buf *out, const struct kv_command *k)
{
    int rc = resp_add_cstr(out, k->name);
    rc |= resp_add_array(out, 8);
    rc |= resp_add_cstr(out, "summary");
    rc |= resp_add_cstr(out, k->summary);
    rc |= resp_add_cstr(out, "since");
    rc |= resp_add_cstr(out, "1.0.0");
    rc |= resp_add_cstr(out, "group");
    rc |= resp_add_cstr(out, k->group);
    rc |= resp_add_cstr(out, "arguments");
    rc |= resp_add_array(out, k->nargs);
    for (int i = 0; i < k->nargs; i++) {
        /* redis-cli needs "name" and "type"; flags are status strings. */
        const struct kv_argdoc *a = &k->args[i];
        int nf = (a->flags & KV_ARG_OPT ? 1 : 0) + (a->flags & KV_ARG_MULTI ? 1 : 0);
        rc |= resp_add_array(out, 2 * (2 + (a->token ? 1 : 0) + (nf ? 1 : 0)));
        rc |= resp_add_cstr(out, "name");
        rc |= resp_add_cstr(out, a->name);
        rc |= resp_add_cstr(out, "type");
        rc |= resp_add_cstr(out, a->type);
        if (a->token) {
            rc |= resp_add_cstr(out, "token");
            rc |= resp_add_cstr(out, a->token);
        }
        if (nf) {
            rc |= resp_add_cstr(out, "flags");
            rc |= resp_add_array(out, nf);
            if (a->flags & KV_ARG_OPT) {
                rc |= resp_add_status(out, "optional");
            }
            if (a->flags & KV_ARG_MULTI) {
                rc |= resp_add_status(out, "multiple");
            }
        }
    }
    return rc;
}

static const struct kv_command *find_name(const char *name, size_t len)
{
    size_t ntable;
    const struct kv_command *table = kv_command_table(&ntable);
    for (size_t i = 0; i < ntable; i++) {
        if (strlen(table[i].name) == len && strncasecmp(table[i].name, name, len) == 0) {
            return &table[i];
        }
    }
    return NULL;
}

/* COMMAND, COMMAND COUNT | LIST | INFO [name...] | DOCS [name...] */
int kv_cmd_command(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                   struct dlog_buf *enc)
{
    size_t ntable;
    const struct kv_command *table = kv_command_table(&ntable);
    int rc = 0;
    if (c->argc == 1) {
        rc = resp_add_array(out, (long long)ntable);
        for (size_t i = 0; rc == 0 && i < ntable; i++) {
            rc = add_info(out, &table[i]);
        }
        return ENOMEM_IF(rc);
    }
    if (kv_argis(c, 1, "count") && c->argc == 2) {
        return ENOMEM_IF(resp_add_int(out, (long long)ntable));
    }
    if (kv_argis(c, 1, "list") && c->argc == 2) {
        rc = resp_add_array(out, (long long)ntable);
        for (size_t i = 0; rc == 0 && i < ntable; i++) {
            rc = resp_add_cstr(out, table[i].name);
        }
        return ENOMEM_IF(rc);
    }
    if (kv_argis(c, 1, "info")) {
        if (c->argc == 2) {
            rc = resp_add_array(out, (long long)ntable);
            for (size_t i = 0; rc == 0 && i < ntable; i++) {
                rc = add_info(out, &table[i]);
            }
            return ENOMEM_IF(rc);
        }
        rc = resp_add_array(out, c->argc - 2);
        for (int i = 2; rc == 0 && i < c->argc; i++) {
            const struct kv_command *k = find_name(c->argv[i], c->argvlen[i]);
            rc = k ? add_info(out, k) : resp_add_nil(out);
        }
        return ENOMEM_IF(rc);
    }
    if (kv_argis(c, 1, "docs")) {
        long long n = 0;
        if (c->argc == 2) {
            rc = resp_add_array(out, 2 * (long long)ntable);
            for (size_t i = 0; rc == 0 && i < ntable; i++) {
                rc = add_docs(out, &table[i]);
            }
            return ENOMEM_IF(rc);
        }
        for (int i = 2; i < c->argc; i++) {
            n += find_name(c->argv[i], c->argvlen[i]) != NULL;
        }
        rc = resp_add_array(out, 2 * n);
        for (int i = 2; rc == 0 && i < c->argc; i++) {
            const struct kv_command *k = find_name(c->argv[i], c->argvlen[i]);
            if (k != NULL) {
                rc = add_docs(out, k);
            }
        }
        return ENOMEM_IF(rc);
    }
    return ENOMEM_IF(resp_add_errorf(out,
                                     "ERR unknown subcommand or wrong number of "
                                     "arguments for '%.128s'. Try COMMAND HELP.",
                                     c->argv[1]));
}
