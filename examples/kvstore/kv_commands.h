/*
 * kv_commands — the Redis command table of dlog-kv: arity, kind, and the
 * function that runs each command, plus the COMMAND and INFO replies.
 *
 * Three kinds of command:
 *  - KV_LOCAL: answered by this server alone (PING, ECHO, CLIENT, INFO ...);
 *  - KV_READ: evaluated against the local LMDB state in a read view, after
 *    a read barrier unless the connection reads stale;
 *  - KV_WRITE: validated and encoded (kv_cmd.h) by the proposer, then
 *    proposed through the log; the reply is what apply returned.
 *
 * The server (kv_server.c) decides when each runs; this file only knows
 * what each does. Everything here runs on the loop thread.
 */
#ifndef KV_COMMANDS_H
#define KV_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>

#include "kv_state.h"
#include "resp.h"

struct kv_server;

enum kv_kind {
    KV_LOCAL = 0,
    KV_READ = 1,
    KV_WRITE = 2,
};

/* Per-connection state that commands can see and change. */
struct kv_session {
    uint64_t id; /* CLIENT ID */
    char *name;  /* CLIENT SETNAME (heap, NULL if unset); freed with the connection */
    int stale;   /* -1: server default; 0/1: CLIENT STALE OFF/ON */
    int quit;    /* QUIT seen: close after the reply */
};

/* SCAN cursors remembered by the server; see kv_scans_new. */
struct kv_scans;
struct kv_scans *kv_scans_new(void);
void kv_scans_free(struct kv_scans *sc);

/* What a command runs with. */
struct kv_ctx {
    struct kv_server *srv;
    struct kv_state *state;
    struct kv_session *sess;
    struct kv_scans *scans;
    uint64_t now_ms; /* wall clock when the command runs */
};

/*
 * Runs a command. LOCAL and READ commands write their reply into out (a
 * READ runs inside kv_read_begin/kv_read_end). A WRITE command either
 * appends its encoded form (kv_cmd.h) to enc and leaves out empty, or
 * rejects the command by writing an error into out. Returns 0 or
 * DLOG_ENOMEM (out and enc then hold garbage the caller discards).
 */
typedef int (*kv_command_fn)(struct kv_ctx *ctx, const struct resp_cmd *c,
                             struct dlog_buf *out, struct dlog_buf *enc);

/* One argument in COMMAND DOCS: the part of Redis's schema that redis-cli
 * uses for its hints. */
#define KV_ARG_OPT   1
#define KV_ARG_MULTI 2
struct kv_argdoc {
    const char *name;
    const char *type; /* key, string, integer, pattern, pure-token */
    const char *token;
    unsigned flags; /* KV_ARG_* */
};

struct kv_command {
    const char *name; /* lower case */
    int arity;        /* Redis's: n exact argc, -n at least n */
    int kind;         /* enum kv_kind */
    kv_command_fn fn;
    /* For COMMAND DOCS / COMMAND INFO. */
    const char *summary;
    const char *group;
    const char *flags; /* space-separated COMMAND INFO flags */
    int first_key, last_key, key_step;
    const struct kv_argdoc *args;
    int nargs;
};

/* The command named c->argv[0] (any case), or NULL. */
const struct kv_command *kv_command_lookup(const struct resp_cmd *c);

/*
 * Checks that c can run as cmd (cmd NULL: unknown). Returns 1 when it can;
 * otherwise writes Redis's error ("unknown command", "wrong number of
 * arguments") into out and returns 0 (or DLOG_ENOMEM).
 */
int kv_command_check(const struct kv_command *cmd, const struct resp_cmd *c,
                     struct dlog_buf *out);

/* The whole table (for COMMAND), *n entries, in name order. */
const struct kv_command *kv_command_table(size_t *n);

/* 1 when argument i of c is s, in any case. */
int kv_argis(const struct resp_cmd *c, int i, const char *s);

/* The server commands, in kv_admin.c. */
int kv_cmd_client(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                  struct dlog_buf *enc);
int kv_cmd_info(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                struct dlog_buf *enc);
int kv_cmd_command(struct kv_ctx *ctx, const struct resp_cmd *c, struct dlog_buf *out,
                   struct dlog_buf *enc);

#endif /* KV_COMMANDS_H */
