/*
 * dlogctl — the command-line tool: create, list, describe, write, read, tail,
 * truncate and delete the streams of a namespace.
 *
 *   dlogctl [-u URI] COMMAND [ARGS]
 *
 * The namespace URI comes from -u, else $DLOG_URI, else "file:./dlog-data".
 * Each command is one row of the table at the bottom of this file and one
 * cmd_* function; they share the option helpers below. Exit status: 0 on
 * success, 1 on runtime errors, 2 on usage errors (bad options, invalid
 * stream names, unknown commands).
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <dlog/dlog.h>

#include "cmd/dlogctl_cluster.h"

#define DEFAULT_URI        "file:./dlog-data"
#define EXIT_RUNTIME       1
#define EXIT_USAGE         2
#define CONTINUE           (-1)  /* from option helpers: keep parsing */
#define WRITE_INFLIGHT_MAX 10000 /* records in flight in `write` */
#define WRITE_BATCH_MAX    65536 /* records per dlog_write */
#define READ_BATCH         256   /* records per dlog_read */
#define TAIL_WAIT_MS       250   /* how long `tail` blocks per read */
#define PROGRESS_MS        500

struct command;

/* What every command handler gets: the URI, the command, the namespace. */
struct ctl {
    const char *uri;
    const struct command *cmd;
    struct dlog_ns *ns; /* opened by open_ns, closed by main */
};

struct command {
    const char *name;
    int (*run)(struct ctl *c, int argc, char **argv);
    const char *args;    /* after the command name in the usage line */
    const char *summary; /* one line, for `dlogctl --help` */
    const char *options; /* the option list for `dlogctl COMMAND --help` */
};

static const struct command *find_command(const char *name);
static void print_main_usage(FILE *f);

/* Set by SIGINT/SIGTERM while `tail` runs. */
static volatile sig_atomic_t stop_requested;

/* ------------------------------------------------------------------------
 * Messages and errors
 * ------------------------------------------------------------------------ */

/* "dlogctl: CMD: <message>" and a hint; returns EXIT_USAGE. */
static int usage_error(const struct ctl *c, const char *fmt, ...)
{
    const char *name = c->cmd->name, *sep = name[0] != '\0' ? " " : "";
    va_list ap;

    fprintf(stderr, "dlogctl: %s%s", name, name[0] != '\0' ? ": " : "");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nTry 'dlogctl%s%s --help'.\n", sep, name);
    return EXIT_USAGE;
}

/*
 * "dlogctl: CMD: WHAT: <dlog_strerror> (detail)"; returns the exit status:
 * bad names, URIs and arguments are usage errors, the rest runtime errors.
 */
static int dlog_error(const struct ctl *c, const char *what, int rc, const char *detail)
{
    const char *msg = dlog_strerror(rc);
    fprintf(stderr, "dlogctl: %s: %s: %s", c->cmd->name, what, msg);
    if (detail != NULL && detail[0] != '\0' && strcmp(detail, msg) != 0)
        fprintf(stderr, " (%s)", detail);
    fputc('\n', stderr);
    if (rc == DLOG_ENAME || rc == DLOG_EURI || rc == DLOG_EINVAL)
        return EXIT_USAGE;
    return EXIT_RUNTIME;
}

static void print_command_usage(FILE *f, const struct command *cmd)
{
    if (cmd->run == NULL) {
        print_main_usage(f); /* no command yet: dlogctl --help */
        return;
    }
    fprintf(f, "Usage: dlogctl [-u URI] %s %s\n%s\n", cmd->name, cmd->args, cmd->summary);
    fprintf(f, "\nOptions:\n%s", cmd->options);
    fprintf(f,
            "  -u, --uri=URI        the namespace (default: $DLOG_URI, else %s)\n"
            "  -h, --help           show this help\n",
            DEFAULT_URI);
}

/* Opens the namespace; 0 or an exit status (after printing the error). */
static int open_ns(struct ctl *c)
{
    char msg[DLOG_ERRMSG_LEN] = "";
    int rc = dlog_open(c->uri, NULL, &c->ns, msg);
    if (rc != 0) {
        c->ns = NULL;
        return dlog_error(c, c->uri, rc, msg);
    }
    return 0;
}

static const char *fmt_dlsn(struct dlog_dlsn d, char *buf)
{
    return dlog_dlsn_format(d, buf, DLOG_DLSN_STRLEN);
}

/* ------------------------------------------------------------------------
 * Option parsing helpers
 * ------------------------------------------------------------------------ */

/* clang-format off */
#define COMMON_OPTIONS {"help", no_argument, NULL, 'h'}, {"uri", required_argument, NULL, 'u'}
#define COMMON_SHORT ":hu:"
/* clang-format on */

/*
 * Handles the options every command shares and getopt's errors. Returns
 * CONTINUE to keep parsing, or the exit status the command should return.
 */
static int common_option(struct ctl *c, int opt, char **argv)
{
    switch (opt) {
    case 'h':
        print_command_usage(stdout, c->cmd);
        return 0;
    case 'u':
        c->uri = optarg;
        return CONTINUE;
    case 0: /* a flag option: getopt_long has set it */
        return CONTINUE;
    case ':':
        return usage_error(c, "option '%s' needs a value", argv[optind - 1]);
    default:
        if (optopt != 0)
            return usage_error(c, "unknown option '-%c'", optopt);
        return usage_error(c, "unknown option '%s'", argv[optind - 1]);
    }
}

/* Checks that exactly nargs positional arguments, named by names, remain. */
static int positional(struct ctl *c, int argc, char **argv, int nargs,
                      const char *const *names)
{
    int n = argc - optind;
    if (n < nargs)
        return usage_error(c, "missing %s", names[n]);
    if (n > nargs)
        return usage_error(c, "unexpected argument '%s'", argv[optind + nargs]);
    return CONTINUE;
}

static const char *const STREAM_ARG[] = {"STREAM"};

/*
 * Parses a non-negative decimal number. With sizes, a K, M or G suffix
 * multiplies by 1024, 1024^2 or 1024^3. Returns 0 or -1.
 */
static int parse_number(const char *s, int size, uint64_t *out)
{
    static const char suffixes[] = "KMG";
    const char *sfx;
    char *end;
    unsigned long long v;
    uint64_t mult = 1;

    if (s[0] < '0' || s[0] > '9')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno != 0)
        return -1;
    if (size && *end != '\0' && end[1] == '\0' &&
        (sfx = strchr(suffixes, toupper((unsigned char)*end))) != NULL) {
        mult = 1ULL << (10 * (sfx - suffixes + 1));
        end++;
    }
    if (*end != '\0' || v > UINT64_MAX / mult)
        return -1;
    *out = (uint64_t)v * mult;
    return 0;
}

/* parse_number for an option's value, with the usage error on failure. */
static int opt_number(struct ctl *c, const char *opt, int size, uint64_t *out)
{
    if (parse_number(optarg, size, out) != 0)
        return usage_error(c, "--%s: invalid %s '%s'", opt, size ? "size" : "number",
                           optarg);
    return CONTINUE;
}

static int opt_dlsn(struct ctl *c, const char *opt, const char *s, struct dlog_dlsn *out)
{
    if (dlog_dlsn_parse(s, out) != 0)
        return usage_error(c, "%s: invalid DLSN '%s' (expected SEG/ENTRY/SLOT)", opt, s);
    return CONTINUE;
}

/* An option whose value is one of names (n of them): sets *out to its index. */
static int opt_choice(struct ctl *c, const char *opt, const char *const *names, int n,
                      int *out)
{
    int i;
    for (i = 0; i < n; i++) {
        if (strcmp(optarg, names[i]) == 0) {
            *out = i;
            return CONTINUE;
        }
    }
    return usage_error(c, "--%s: unknown value '%s'; try --help", opt, optarg);
}

static const char *const FORMATS[] = {"lines", "raw"};
/* In the order of enum dlog_compression. */
static const char *const COMPRESSIONS[] = {"none", "lz4", "zstd"};

/* ------------------------------------------------------------------------
 * create, delete, list, truncate, retention
 * ------------------------------------------------------------------------ */

enum {
    OPT_SEGMENT_BYTES = 256, /* the numeric options of create, up to OPT_MAX_RECORD */
    OPT_SEGMENT_AGE,
    OPT_SEGMENT_RECORDS,
    OPT_RETENTION_AGE,
    OPT_RETENTION_BYTES,
    OPT_MAX_RECORD,
    OPT_COMPRESSION,
    OPT_AUTO_TXID,
    OPT_JSON,
    OPT_FORMAT,
    OPT_TXID_START,
    OPT_KEY,
    OPT_BATCH,
    OPT_FROM,
    OPT_FROM_TXID,
    OPT_TO,
    OPT_KEY_PREFIX,
    OPT_COUNT,
    /* limits and quotas, in the order of limit_fields[] */
    OPT_RPS,
    OPT_BPS,
    OPT_SOFT_RPS,
    OPT_SOFT_BPS,
    OPT_BURST,
    OPT_MAX_WAIT,
    OPT_QUOTA_BYTES,
    OPT_QUOTA_POLICY,
    OPT_NAMESPACE,
};

#define LIMIT_OPTIONS                                                                    \
    {"records-per-sec", required_argument, NULL, OPT_RPS},                               \
        {"bytes-per-sec", required_argument, NULL, OPT_BPS},                             \
        {"soft-records-per-sec", required_argument, NULL, OPT_SOFT_RPS},                 \
        {"soft-bytes-per-sec", required_argument, NULL, OPT_SOFT_BPS},                   \
        {"burst-ms", required_argument, NULL, OPT_BURST},                                \
    {                                                                                    \
        "max-wait-ms", required_argument, NULL, OPT_MAX_WAIT                             \
    }

static const char *const POLICIES[] = {"reject", "truncate"};

/* The field of l an OPT_RPS..OPT_QUOTA_BYTES option sets. */
static uint64_t *limit_field(struct dlog_limits *l, int opt)
{
    uint64_t *f[] = {&l->records_per_sec,    &l->bytes_per_sec, &l->soft_records_per_sec,
                     &l->soft_bytes_per_sec, &l->burst_ms,      &l->max_wait_ms,
                     &l->quota_bytes};
    return f[opt - OPT_RPS];
}

/* Handles a limit or quota option into l; CONTINUE, or not one of them (-1). */
static int limit_option(struct ctl *c, int opt, const char *name, struct dlog_limits *l)
{
    int choice = 0, rc;

    if (opt >= OPT_RPS && opt <= OPT_QUOTA_BYTES)
        return opt_number(c, name, strstr(name, "bytes") != NULL, limit_field(l, opt));
    if (opt == OPT_QUOTA_POLICY) {
        rc = opt_choice(c, name, POLICIES, 2, &choice);
        l->quota_policy = (uint32_t)choice;
        return rc;
    }
    return -1;
}

static int cmd_create(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_OPTIONS,
        {"segment-bytes", required_argument, NULL, OPT_SEGMENT_BYTES},
        {"segment-age-ms", required_argument, NULL, OPT_SEGMENT_AGE},
        {"segment-records", required_argument, NULL, OPT_SEGMENT_RECORDS},
        {"retention-age-ms", required_argument, NULL, OPT_RETENTION_AGE},
        {"retention-bytes", required_argument, NULL, OPT_RETENTION_BYTES},
        {"compression", required_argument, NULL, OPT_COMPRESSION},
        {"max-record-bytes", required_argument, NULL, OPT_MAX_RECORD},
        {"auto-txid", no_argument, NULL, OPT_AUTO_TXID},
        LIMIT_OPTIONS,
        {"quota-bytes", required_argument, NULL, OPT_QUOTA_BYTES},
        {"quota-policy", required_argument, NULL, OPT_QUOTA_POLICY},
        {NULL, 0, NULL, 0},
    };
    struct dlog_stream_config cfg;
    uint64_t *numbers[OPT_MAX_RECORD - OPT_SEGMENT_BYTES + 1];
    int opt, li, comp = 0, rc = CONTINUE;

    dlog_stream_config_init(&cfg);
    numbers[OPT_SEGMENT_BYTES - OPT_SEGMENT_BYTES] = &cfg.segment_max_bytes;
    numbers[OPT_SEGMENT_AGE - OPT_SEGMENT_BYTES] = &cfg.segment_max_age_ms;
    numbers[OPT_SEGMENT_RECORDS - OPT_SEGMENT_BYTES] = &cfg.segment_max_records;
    numbers[OPT_RETENTION_AGE - OPT_SEGMENT_BYTES] = &cfg.retention_age_ms;
    numbers[OPT_RETENTION_BYTES - OPT_SEGMENT_BYTES] = &cfg.retention_bytes;
    numbers[OPT_MAX_RECORD - OPT_SEGMENT_BYTES] = &cfg.max_record_bytes;
    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, &li)) != -1) {
        if (opt >= OPT_SEGMENT_BYTES && opt <= OPT_MAX_RECORD) {
            /* The "...-bytes" options are sizes: they take K, M, G. */
            rc = opt_number(c, opts[li].name, strstr(opts[li].name, "bytes") != NULL,
                            numbers[opt - OPT_SEGMENT_BYTES]);
        } else if (opt == OPT_COMPRESSION) {
            rc = opt_choice(c, "compression", COMPRESSIONS, 3, &comp);
            cfg.compression = (uint32_t)comp;
        } else if (opt == OPT_AUTO_TXID) {
            cfg.auto_txid = 1;
        } else if (opt >= OPT_RPS && opt <= OPT_QUOTA_POLICY) {
            rc = limit_option(c, opt, opts[li].name, &cfg.limits);
        } else {
            rc = common_option(c, opt, argv);
        }
    }
    if (rc != CONTINUE || (rc = positional(c, argc, argv, 1, STREAM_ARG)) != CONTINUE)
        return rc;
    if (cfg.max_record_bytes > DLOG_RECORD_MAX_LIMIT)
        return usage_error(c, "--max-record-bytes: at most %llu",
                           (unsigned long long)DLOG_RECORD_MAX_LIMIT);
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_stream_create(c->ns, argv[optind], &cfg)) != 0)
        return dlog_error(c, argv[optind], rc, dlog_errmsg(c->ns));
    return 0;
}

/*
 * The shape of the commands that take only STREAM (and maybe one more
 * argument): parses the common options and opens the namespace.
 */
static int simple_args(struct ctl *c, int argc, char **argv, int nargs,
                       const char *const *names)
{
    static const struct option opts[] = {COMMON_OPTIONS, {NULL, 0, NULL, 0}};
    int opt, rc = CONTINUE;

    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, NULL)) != -1)
        rc = common_option(c, opt, argv);
    if (rc != CONTINUE || (rc = positional(c, argc, argv, nargs, names)) != CONTINUE)
        return rc;
    return open_ns(c);
}

static int cmd_delete(struct ctl *c, int argc, char **argv)
{
    int rc = simple_args(c, argc, argv, 1, STREAM_ARG);
    if (rc != 0)
        return rc;
    if ((rc = dlog_stream_delete(c->ns, argv[optind])) != 0)
        return dlog_error(c, argv[optind], rc, dlog_errmsg(c->ns));
    return 0;
}

static int cmd_list(struct ctl *c, int argc, char **argv)
{
    char **names;
    size_t n, i;
    int rc = simple_args(c, argc, argv, 0, NULL);

    if (rc != 0)
        return rc;
    if ((rc = dlog_stream_list(c->ns, &names, &n)) != 0)
        return dlog_error(c, c->uri, rc, dlog_errmsg(c->ns));
    for (i = 0; i < n; i++)
        printf("%s\n", names[i]);
    dlog_stream_list_free(names);
    return 0;
}

static int cmd_truncate(struct ctl *c, int argc, char **argv)
{
    static const char *const names[] = {"STREAM", "DLSN"};
    struct dlog_dlsn at;
    int rc = simple_args(c, argc, argv, 2, names);

    if (rc != 0)
        return rc;
    if ((rc = opt_dlsn(c, "DLSN", argv[optind + 1], &at)) != CONTINUE)
        return rc;
    if ((rc = dlog_stream_truncate(c->ns, argv[optind], at)) != 0)
        return dlog_error(c, argv[optind], rc, dlog_errmsg(c->ns));
    return 0;
}

static int cmd_retention(struct ctl *c, int argc, char **argv)
{
    int rc = simple_args(c, argc, argv, 1, STREAM_ARG);

    if (rc != 0)
        return rc;
    if ((rc = dlog_stream_apply_retention(c->ns, argv[optind])) < 0)
        return dlog_error(c, argv[optind], rc, dlog_errmsg(c->ns));
    printf("%d segment%s deleted\n", rc, rc == 1 ? "" : "s");
    return 0;
}

/* ------------------------------------------------------------------------
 * describe
 * ------------------------------------------------------------------------ */

static const char *compression_name(uint32_t comp)
{
    return comp < 3 ? COMPRESSIONS[comp] : "unknown";
}

static const char *fmt_time(uint64_t ms, char *buf, size_t size)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (ms == 0 || gmtime_r(&t, &tm) == NULL ||
        strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, size, "-");
    return buf;
}

/* A JSON string; stream names are plain ASCII but escape anyway. */
static void json_string(const char *s)
{
    putchar('"');
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            printf("\\%c", ch);
        else if (ch < 0x20)
            printf("\\u%04x", ch);
        else
            putchar(ch);
    }
    putchar('"');
}

/* A DLSN as a JSON string, or null when there is no such record. */
static void json_dlsn(struct dlog_dlsn d, int present)
{
    char b[DLOG_DLSN_STRLEN];
    if (present)
        printf("\"%s\"", fmt_dlsn(d, b));
    else
        printf("null");
}

static void describe_json(const struct dlog_stream_info *in)
{
    const struct dlog_stream_config *k = &in->config;
    size_t i;

    printf("{\"name\": ");
    json_string(in->name);
    printf(", \"id\": %" PRIu64 ", \"created_ms\": %" PRIu64 ", \"epoch\": %" PRIu64
           ",\n \"records\": %" PRIu64 ", \"bytes\": %" PRIu64 ", \"first\": ",
           in->id, in->created_ms, in->epoch, in->records, in->bytes);
    json_dlsn(in->first, in->records > 0);
    printf(", \"last\": ");
    json_dlsn(in->last, in->records > 0);
    printf(", \"last_txid\": %" PRIu64 ", \"truncated\": ", in->last_txid);
    json_dlsn(in->truncated, 1);
    printf(",\n \"config\": {\"segment_max_bytes\": %" PRIu64
           ", \"segment_max_age_ms\": %" PRIu64 ", \"segment_max_records\": %" PRIu64
           ", \"retention_age_ms\": %" PRIu64 ", \"retention_bytes\": %" PRIu64
           ", \"compression\": \"%s\", \"max_record_bytes\": %" PRIu64
           ", \"auto_txid\": %s},\n \"limits\": {\"records_per_sec\": %" PRIu64
           ", \"bytes_per_sec\": %" PRIu64 ", \"soft_records_per_sec\": %" PRIu64
           ", \"soft_bytes_per_sec\": %" PRIu64 ", \"burst_ms\": %" PRIu64
           ", \"max_wait_ms\": %" PRIu64 ", \"quota_bytes\": %" PRIu64
           ", \"quota_policy\": \"%s\", \"used_bytes\": %" PRIu64 "},\n \"segments\": [",
           k->segment_max_bytes, k->segment_max_age_ms, k->segment_max_records,
           k->retention_age_ms, k->retention_bytes, compression_name(k->compression),
           k->max_record_bytes, k->auto_txid ? "true" : "false",
           k->limits.records_per_sec, k->limits.bytes_per_sec,
           k->limits.soft_records_per_sec, k->limits.soft_bytes_per_sec,
           k->limits.burst_ms, k->limits.max_wait_ms, k->limits.quota_bytes,
           POLICIES[k->limits.quota_policy <= 1 ? k->limits.quota_policy : 0], in->bytes);
    for (i = 0; i < in->nsegments; i++) {
        const struct dlog_segment_info *s = &in->segments[i];
        printf("%s\n  {\"seq\": %" PRIu64 ", \"state\": \"%s\", \"epoch\": %" PRIu64
               ", \"first\": ",
               i ? "," : "", s->seq, s->state == DLOG_SEGMENT_OPEN ? "open" : "sealed",
               s->epoch);
        json_dlsn(s->first, s->records > 0);
        printf(", \"last\": ");
        json_dlsn(s->last, s->records > 0);
        printf(", \"first_txid\": %" PRIu64 ", \"last_txid\": %" PRIu64
               ", \"records\": %" PRIu64 ", \"entries\": %" PRIu64 ", \"bytes\": %" PRIu64
               ", \"created_ms\": %" PRIu64 ", \"sealed_ms\": %" PRIu64 "}",
               s->first_txid, s->last_txid, s->records, s->entries, s->bytes,
               s->created_ms, s->sealed_ms);
    }
    printf("%s]}\n", in->nsegments ? "\n " : "");
}

static void describe_table(const struct dlog_stream_info *in)
{
    const struct dlog_stream_config *k = &in->config;
    char b1[DLOG_DLSN_STRLEN], b2[DLOG_DLSN_STRLEN], t[64];
    size_t i;

    printf("stream:      %s (id %" PRIu64 ")\n", in->name, in->id);
    printf("created:     %s\n", fmt_time(in->created_ms, t, sizeof t));
    printf("epoch:       %" PRIu64 "\n", in->epoch);
    printf("records:     %" PRIu64 " (%" PRIu64 " bytes)\n", in->records, in->bytes);
    if (in->records > 0)
        printf("range:       %s .. %s\n", fmt_dlsn(in->first, b1),
               fmt_dlsn(in->last, b2));
    printf("last txid:   %" PRIu64 "\n", in->last_txid);
    printf("truncated:   %s\n", fmt_dlsn(in->truncated, b1));
    printf("config:      segment-bytes=%" PRIu64 " segment-age-ms=%" PRIu64
           " segment-records=%" PRIu64 "\n"
           "             retention-age-ms=%" PRIu64 " retention-bytes=%" PRIu64 "\n"
           "             compression=%s max-record-bytes=%" PRIu64 " auto-txid=%s\n",
           k->segment_max_bytes, k->segment_max_age_ms, k->segment_max_records,
           k->retention_age_ms, k->retention_bytes, compression_name(k->compression),
           k->max_record_bytes, k->auto_txid ? "yes" : "no");
    printf("limits:      records/s=%" PRIu64 " (soft %" PRIu64 ") bytes/s=%" PRIu64
           " (soft %" PRIu64 ") max-wait-ms=%" PRIu64 "\n",
           k->limits.records_per_sec, k->limits.soft_records_per_sec,
           k->limits.bytes_per_sec, k->limits.soft_bytes_per_sec, k->limits.max_wait_ms);
    if (k->limits.quota_bytes > 0)
        printf("quota:       %" PRIu64 " of %" PRIu64
               " bytes used (%.1f%%), %s when full\n",
               in->bytes, k->limits.quota_bytes,
               100.0 * (double)in->bytes / (double)k->limits.quota_bytes,
               k->limits.quota_policy == DLOG_QUOTA_TRUNCATE ? "truncate" : "reject");
    else
        printf("quota:       none (%" PRIu64 " bytes used)\n", in->bytes);
    printf("segments:    %zu\n\n", in->nsegments);
    printf("%6s  %-6s  %-16s  %-16s  %10s  %10s  %10s  %8s  %12s\n", "SEQ", "STATE",
           "FIRST", "LAST", "FIRST-TXID", "LAST-TXID", "RECORDS", "ENTRIES", "BYTES");
    for (i = 0; i < in->nsegments; i++) {
        const struct dlog_segment_info *s = &in->segments[i];
        int any = s->records > 0;
        printf("%6" PRIu64 "  %-6s  %-16s  %-16s  %10" PRIu64 "  %10" PRIu64
               "  %10" PRIu64 "  %8" PRIu64 "  %12" PRIu64 "\n",
               s->seq, s->state == DLOG_SEGMENT_OPEN ? "open" : "sealed",
               any ? fmt_dlsn(s->first, b1) : "-", any ? fmt_dlsn(s->last, b2) : "-",
               s->first_txid, s->last_txid, s->records, s->entries, s->bytes);
    }
}

/* ------------------------------------------------------------------------
 * limit, quota, limits
 * ------------------------------------------------------------------------ */

/*
 * Parses the options of limit and quota (common ones, --namespace and the
 * given limit options) over the current limits of the stream or namespace,
 * which it reads first: only the values given change. *name is NULL for the
 * namespace. CONTINUE, or an exit code.
 */
static int limits_args(struct ctl *c, int argc, char **argv, const struct option *opts,
                       struct dlog_limits *l, const char **name, int *given)
{
    struct dlog_limits set;
    uint64_t mask = 0;
    int opt, li, ns = 0, rc = CONTINUE;

    memset(&set, 0, sizeof set);
    *given = 0;
    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, &li)) != -1) {
        if (opt == OPT_NAMESPACE) {
            ns = 1;
        } else if (opt >= OPT_RPS && opt <= OPT_QUOTA_POLICY) {
            rc = limit_option(c, opt, opts[li].name, &set);
            mask |= 1ULL << (opt - OPT_RPS);
            (*given)++;
        } else {
            rc = common_option(c, opt, argv);
        }
    }
    if (rc != CONTINUE ||
        (rc = positional(c, argc, argv, ns ? 0 : 1, STREAM_ARG)) != CONTINUE)
        return rc;
    *name = ns ? NULL : argv[optind];
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_limits_get(c->ns, *name, l)) != 0)
        return dlog_error(c, *name ? *name : c->uri, rc, dlog_errmsg(c->ns));
    for (int o = OPT_RPS; o <= OPT_QUOTA_BYTES; o++)
        if (mask & (1ULL << (o - OPT_RPS)))
            *limit_field(l, o) = *limit_field(&set, o);
    if (mask & (1ULL << (OPT_QUOTA_POLICY - OPT_RPS)))
        l->quota_policy = set.quota_policy;
    return CONTINUE;
}

static void print_limits(const struct dlog_limits *l)
{
    printf("records/s      %llu (soft %llu)\n", (unsigned long long)l->records_per_sec,
           (unsigned long long)l->soft_records_per_sec);
    printf("bytes/s        %llu (soft %llu)\n", (unsigned long long)l->bytes_per_sec,
           (unsigned long long)l->soft_bytes_per_sec);
    printf("burst ms       %llu\n",
           (unsigned long long)(l->burst_ms ? l->burst_ms : DLOG_BURST_MS_DEFAULT));
    printf("max wait ms    %llu%s\n", (unsigned long long)l->max_wait_ms,
           l->max_wait_ms ? "" : " (refuse above the hard level)");
    printf("quota bytes    %llu (%s)\n", (unsigned long long)l->quota_bytes,
           POLICIES[l->quota_policy <= 1 ? l->quota_policy : 0]);
}

static int set_limits(struct ctl *c, const char *name, const struct dlog_limits *l)
{
    int rc = dlog_limits_set(c->ns, name, l);
    if (rc != 0)
        return dlog_error(c, name ? name : c->uri, rc, dlog_errmsg(c->ns));
    print_limits(l);
    return 0;
}

static int cmd_limit(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS,
                                         LIMIT_OPTIONS,
                                         {"namespace", no_argument, NULL, OPT_NAMESPACE},
                                         {NULL, 0, NULL, 0}};
    struct dlog_limits l;
    const char *name;
    int given, rc = limits_args(c, argc, argv, opts, &l, &name, &given);

    if (rc != CONTINUE)
        return rc;
    if (given == 0) { /* nothing to change: show them */
        print_limits(&l);
        return 0;
    }
    return set_limits(c, name, &l);
}

static int cmd_quota(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_OPTIONS,
        {"bytes", required_argument, NULL, OPT_QUOTA_BYTES},
        {"policy", required_argument, NULL, OPT_QUOTA_POLICY},
        {"namespace", no_argument, NULL, OPT_NAMESPACE},
        {NULL, 0, NULL, 0}};
    struct dlog_limits l;
    const char *name;
    int given, rc = limits_args(c, argc, argv, opts, &l, &name, &given);

    if (rc != CONTINUE)
        return rc;
    if (given == 0)
        return usage_error(c, "give --bytes N (0: unlimited) and/or --policy");
    return set_limits(c, name, &l);
}

static void print_pstats(const struct dlog_proxy_stats *p, int total)
{
    printf("%-24s %10llu %10llu %10llu %12llu %10llu %10llu %8llu %8llu", p->proxy,
           (unsigned long long)p->share_records, (unsigned long long)p->demand_records,
           (unsigned long long)p->rate_records, (unsigned long long)p->rate_bytes,
           (unsigned long long)p->admitted, (unsigned long long)p->rejected,
           (unsigned long long)p->delayed, (unsigned long long)p->soft_exceeded);
    if (total)
        printf("\n");
    else
        printf(" %6llu\n", (unsigned long long)p->age_ms);
}

static int cmd_limits(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {COMMON_OPTIONS,
                                         {"namespace", no_argument, NULL, OPT_NAMESPACE},
                                         {"json", no_argument, NULL, OPT_JSON},
                                         {NULL, 0, NULL, 0}};
    struct dlog_limit_stats *st;
    const char *name;
    int opt, ns = 0, json = 0, rc = CONTINUE;

    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == OPT_NAMESPACE)
            ns = 1;
        else if (opt == OPT_JSON)
            json = 1;
        else
            rc = common_option(c, opt, argv);
    }
    if (rc != CONTINUE ||
        (rc = positional(c, argc, argv, ns ? 0 : 1, STREAM_ARG)) != CONTINUE)
        return rc;
    name = ns ? NULL : argv[optind];
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_limits_stats(c->ns, name, &st)) != 0)
        return dlog_error(c, name ? name : c->uri, rc, dlog_errmsg(c->ns));
    if (json) {
        const struct dlog_limits *l = &st->limits;
        printf("{\"records_per_sec\":%llu,\"bytes_per_sec\":%llu,"
               "\"soft_records_per_sec\":%llu,\"soft_bytes_per_sec\":%llu,"
               "\"burst_ms\":%llu,\"max_wait_ms\":%llu,\"quota_bytes\":%llu,"
               "\"quota_policy\":\"%s\",\"used_bytes\":%llu,\"proxies\":[",
               (unsigned long long)l->records_per_sec,
               (unsigned long long)l->bytes_per_sec,
               (unsigned long long)l->soft_records_per_sec,
               (unsigned long long)l->soft_bytes_per_sec, (unsigned long long)l->burst_ms,
               (unsigned long long)l->max_wait_ms, (unsigned long long)l->quota_bytes,
               POLICIES[l->quota_policy <= 1 ? l->quota_policy : 0],
               (unsigned long long)st->used_bytes);
        for (size_t i = 0; i <= st->nproxies; i++) {
            const struct dlog_proxy_stats *p =
                i < st->nproxies ? &st->proxies[i] : &st->total;
            printf("%s{\"proxy\":\"%s\",\"age_ms\":%llu,\"share_records\":%llu,"
                   "\"share_bytes\":%llu,\"demand_records\":%llu,\"demand_bytes\":%llu,"
                   "\"rate_records\":%llu,\"rate_bytes\":%llu,\"admitted\":%llu,"
                   "\"rejected\":%llu,\"delayed\":%llu,\"soft_exceeded\":%llu}",
                   i ? "," : "", p->proxy, (unsigned long long)p->age_ms,
                   (unsigned long long)p->share_records,
                   (unsigned long long)p->share_bytes,
                   (unsigned long long)p->demand_records,
                   (unsigned long long)p->demand_bytes,
                   (unsigned long long)p->rate_records, (unsigned long long)p->rate_bytes,
                   (unsigned long long)p->admitted, (unsigned long long)p->rejected,
                   (unsigned long long)p->delayed, (unsigned long long)p->soft_exceeded);
        }
        printf("]}\n");
    } else {
        print_limits(&st->limits);
        printf("used bytes     %llu", (unsigned long long)st->used_bytes);
        if (st->limits.quota_bytes > 0)
            printf(" (%.1f%% of the quota)",
                   100.0 * (double)st->used_bytes / (double)st->limits.quota_bytes);
        printf("\n\n%-24s %10s %10s %10s %12s %10s %10s %8s %8s %6s\n", "proxy",
               "share r/s", "demand r/s", "rate r/s", "rate B/s", "admitted", "rejected",
               "delayed", "soft", "age ms");
        for (size_t i = 0; i < st->nproxies; i++)
            print_pstats(&st->proxies[i], 0);
        print_pstats(&st->total, 1);
    }
    dlog_limit_stats_free(st);
    return 0;
}

static int cmd_describe(struct ctl *c, int argc, char **argv)
{
    static const struct option opts[] = {
        COMMON_OPTIONS, {"json", no_argument, NULL, OPT_JSON}, {NULL, 0, NULL, 0}};
    struct dlog_stream_info *info;
    int opt, json = 0, rc = CONTINUE;

    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, NULL)) != -1) {
        if (opt == OPT_JSON)
            json = 1;
        else
            rc = common_option(c, opt, argv);
    }
    if (rc != CONTINUE || (rc = positional(c, argc, argv, 1, STREAM_ARG)) != CONTINUE)
        return rc;
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_stream_describe(c->ns, argv[optind], &info)) != 0)
        return dlog_error(c, argv[optind], rc, dlog_errmsg(c->ns));
    if (json)
        describe_json(info);
    else
        describe_table(info);
    dlog_stream_info_free(info);
    return 0;
}

/* ------------------------------------------------------------------------
 * write
 * ------------------------------------------------------------------------ */

/* One dlog_write in flight; req is first so a req pointer is a slot pointer. */
struct wslot {
    struct dlog_write_req req;
    uint64_t nrec;
    uint64_t bytes;
    int status;
    int done;
};

/*
 * The writes in flight: a ring of slots, submitted at tail by the main
 * thread, finished in any order by callbacks on the writer's thread, and
 * retired at head in submission order (so acks print in order).
 */
struct wstate {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct wslot *ring;
    size_t nring;
    uint64_t head; /* oldest slot not retired */
    uint64_t tail; /* next slot to submit */
    int acks;
    int status; /* the first failure, or 0 */
    uint64_t acked_records;
    uint64_t acked_bytes;
};

/* Retires finished slots in order, printing acks. Called with mu held. */
static void retire(struct wstate *x)
{
    char b[DLOG_DLSN_STRLEN];
    int printed = 0;

    while (x->head < x->tail) {
        struct wslot *s = &x->ring[x->head % x->nring];
        if (!s->done)
            break;
        if (s->status == 0) {
            x->acked_records += s->nrec;
            x->acked_bytes += s->bytes;
            if (x->acks) {
                printf("%s\t%" PRIu64 "\n", fmt_dlsn(s->req.first, b), s->req.first_txid);
                printed = 1;
            }
        } else if (x->status == 0) {
            x->status = s->status;
        }
        x->head++;
    }
    if (printed)
        fflush(stdout);
    pthread_cond_broadcast(&x->cv);
}

/* Runs on the writer's thread; never calls back into the writer. */
static void on_written(struct dlog_write_req *req, int status)
{
    struct wstate *x = req->data;
    struct wslot *s = (struct wslot *)req;

    pthread_mutex_lock(&x->mu);
    s->status = status;
    s->done = 1;
    retire(x);
    pthread_mutex_unlock(&x->mu);
}

/* The records' source: stdin as lines or length-prefixed records. */
struct input {
    FILE *f;
    int raw;
    uint64_t max_len; /* the stream's max_record_bytes */
    char *line;       /* getline's buffer */
    size_t line_cap;
};

static int input_error(struct ctl *c, const char *what)
{
    fprintf(stderr, "dlogctl: %s: stdin: %s\n", c->cmd->name, what);
    return -1;
}

/*
 * Reads one record into the end of arena: a line without its newline, or a
 * 4-byte big-endian length and that many bytes. Returns 1, 0 at the end of
 * the input, or -1 after printing why the input is bad.
 */
static int read_input(struct ctl *c, struct input *in, struct dlog_buf *arena,
                      size_t *len)
{
    unsigned char hdr[4];
    char buf[16384];
    size_t n, chunk;

    if (!in->raw) {
        ssize_t got = getline(&in->line, &in->line_cap, in->f);
        if (got < 0)
            return ferror(in->f) ? input_error(c, strerror(errno)) : 0;
        n = (size_t)got;
        if (n > 0 && in->line[n - 1] == '\n')
            n--;
        if (dlog_buf_append(arena, in->line, n) != 0)
            return input_error(c, dlog_strerror(DLOG_ENOMEM));
        *len = n;
        return 1;
    }
    n = fread(hdr, 1, sizeof hdr, in->f);
    if (n == 0 && !ferror(in->f))
        return 0;
    if (n != sizeof hdr)
        return input_error(c,
                           ferror(in->f) ? strerror(errno) : "truncated length prefix");
    n = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3];
    if (n > in->max_len)
        return input_error(c, dlog_strerror(DLOG_ETOOBIG));
    for (*len = n; n > 0; n -= chunk) {
        chunk = n < sizeof buf ? n : sizeof buf;
        if (fread(buf, 1, chunk, in->f) != chunk)
            return input_error(c, ferror(in->f) ? strerror(errno) : "truncated record");
        if (dlog_buf_append(arena, buf, chunk) != 0)
            return input_error(c, dlog_strerror(DLOG_ENOMEM));
    }
    return 1;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* "\rN records, X MB, Y MB/s" on stderr; a newline when final. */
static void show_progress(struct wstate *x, uint64_t start_ms, int final)
{
    uint64_t recs, bytes;
    double secs = (double)(now_ms() - start_ms) / 1000.0, mb;

    pthread_mutex_lock(&x->mu);
    recs = x->acked_records;
    bytes = x->acked_bytes;
    pthread_mutex_unlock(&x->mu);
    mb = (double)bytes / (1024.0 * 1024.0);
    fprintf(stderr, "\r%" PRIu64 " records, %.1f MB, %.1f MB/s   %s", recs, mb,
            secs > 0 ? mb / secs : 0.0, final ? "\n" : "");
}

struct write_args {
    int raw, acks, exclusive, have_txid, batch;
    uint64_t txid;
    const char *key;
};

/*
 * The input loop: batches of records from stdin, each one dlog_write with
 * its own slot, at most WRITE_INFLIGHT_MAX records in flight. Returns 0, a
 * dlog error from dlog_write, or 1 for bad input.
 */
static int write_loop(struct ctl *c, struct dlog_writer *w, struct wstate *x,
                      const struct write_args *a, int auto_txid, uint64_t max_len)
{
    struct input in = {stdin, a->raw, max_len, NULL, 0};
    struct dlog_buf arena = {NULL, 0, 0};
    struct dlog_record *recs = calloc((size_t)a->batch, sizeof *recs);
    size_t *lens = calloc((size_t)a->batch, sizeof *lens);
    size_t key_len = a->key != NULL ? strlen(a->key) : 0;
    int progress = isatty(STDERR_FILENO), eof = 0, rc = 0, got = 0, i, n, frc;
    uint64_t txid = a->txid, start = now_ms(), shown = start;

    if (recs == NULL || lens == NULL) {
        rc = DLOG_ENOMEM;
        goto out;
    }
    while (!eof) {
        size_t off = 0;
        struct wslot *s;

        arena.len = 0;
        for (n = 0; n < a->batch; n++) {
            if ((got = read_input(c, &in, &arena, &lens[n])) <= 0)
                break;
        }
        if (got < 0) {
            rc = 1;
            break;
        }
        eof = got == 0;
        if (n == 0)
            break;
        for (i = 0; i < n; i++) {
            recs[i] = (struct dlog_record){.payload = (char *)arena.p + off,
                                           .len = lens[i],
                                           .key = a->key,
                                           .key_len = key_len,
                                           .txid = auto_txid ? 0 : txid++};
            off += lens[i];
        }

        pthread_mutex_lock(&x->mu);
        while (x->tail - x->head >= x->nring && x->status == 0)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->status != 0) {
            pthread_mutex_unlock(&x->mu);
            break;
        }
        s = &x->ring[x->tail++ % x->nring];
        memset(s, 0, sizeof *s);
        s->nrec = (uint64_t)n;
        s->bytes = arena.len;
        s->req.data = x;
        pthread_mutex_unlock(&x->mu);

        if ((rc = dlog_write(w, &s->req, recs, (size_t)n, on_written)) != 0) {
            pthread_mutex_lock(&x->mu);
            s->status = rc;
            s->done = 1;
            retire(x);
            pthread_mutex_unlock(&x->mu);
            break;
        }
        if (progress && now_ms() - shown >= PROGRESS_MS) {
            show_progress(x, start, 0);
            shown = now_ms();
        }
    }
out:
    /* Every write is then durable or failed; wait for the last callbacks. */
    frc = dlog_writer_flush(w);
    pthread_mutex_lock(&x->mu);
    while (x->head < x->tail)
        pthread_cond_wait(&x->cv, &x->mu);
    if (rc == 0)
        rc = x->status != 0 ? x->status : frc;
    pthread_mutex_unlock(&x->mu);
    if (progress)
        show_progress(x, start, 1);
    dlog_buf_free(&arena);
    free(in.line);
    free(recs);
    free(lens);
    return rc;
}

static int cmd_write(struct ctl *c, int argc, char **argv)
{
    struct write_args a = {.batch = 1};
    const struct option opts[] = {
        COMMON_OPTIONS,
        {"format", required_argument, NULL, OPT_FORMAT},
        {"acks", no_argument, &a.acks, 1},
        {"exclusive", no_argument, &a.exclusive, 1},
        {"txid-start", required_argument, NULL, OPT_TXID_START},
        {"key", required_argument, NULL, OPT_KEY},
        {"batch", required_argument, NULL, OPT_BATCH},
        {NULL, 0, NULL, 0},
    };
    struct wstate x = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
    struct dlog_writer_options wo;
    struct dlog_stream_info *info = NULL;
    struct dlog_writer *w = NULL;
    const char *stream;
    uint64_t v = 1, max_len;
    int opt, rc = CONTINUE, wrc;

    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, NULL)) != -1) {
        switch (opt) {
        case OPT_FORMAT:
            rc = opt_choice(c, "format", FORMATS, 2, &a.raw);
            break;
        case OPT_KEY:
            a.key = optarg;
            break;
        case OPT_TXID_START:
            a.have_txid = 1;
            rc = opt_number(c, "txid-start", 0, &a.txid);
            break;
        case OPT_BATCH:
            if ((rc = opt_number(c, "batch", 0, &v)) == CONTINUE &&
                (v < 1 || v > WRITE_BATCH_MAX))
                rc = usage_error(c, "--batch: expected 1 to %d", WRITE_BATCH_MAX);
            a.batch = (int)v;
            break;
        default:
            rc = common_option(c, opt, argv);
        }
    }
    if (rc != CONTINUE || (rc = positional(c, argc, argv, 1, STREAM_ARG)) != CONTINUE)
        return rc;
    stream = argv[optind];
    if (a.acks)
        a.batch = 1; /* one DLSN per write: each ack line is one record */
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_stream_describe(c->ns, stream, &info)) != 0)
        return dlog_error(c, stream, rc, dlog_errmsg(c->ns));
    if (info->config.auto_txid && a.have_txid) {
        dlog_stream_info_free(info);
        return usage_error(c, "--txid-start: stream '%s' assigns its own txids", stream);
    }
    if (!a.have_txid)
        a.txid = info->last_txid + 1;

    x.acks = a.acks;
    x.nring = (size_t)(WRITE_INFLIGHT_MAX / a.batch);
    if (x.nring < 4)
        x.nring = 4;
    if ((x.ring = calloc(x.nring, sizeof *x.ring)) == NULL) {
        rc = dlog_error(c, stream, DLOG_ENOMEM, NULL);
        goto out;
    }
    dlog_writer_options_init(&wo);
    wo.mode = a.exclusive ? DLOG_WRITER_EXCLUSIVE : DLOG_WRITER_SHARED;
    if ((wrc = dlog_writer_open(c->ns, stream, &wo, &w)) != 0) {
        rc = dlog_error(c, stream, wrc, dlog_errmsg(c->ns));
        goto out;
    }
    max_len = info->config.max_record_bytes;
    if (max_len == 0)
        max_len = DLOG_RECORD_MAX_DEFAULT;
    wrc = write_loop(c, w, &x, &a, info->config.auto_txid, max_len);
    if (wrc < 0)
        rc = dlog_error(c, stream, wrc, dlog_writer_errmsg(w));
    else
        rc = wrc; /* 0, or 1 after bad input was reported */
    if ((wrc = dlog_writer_close(w)) != 0 && rc == 0)
        rc = dlog_error(c, stream, wrc, NULL);
out:
    dlog_stream_info_free(info);
    free(x.ring);
    return rc;
}

/* ------------------------------------------------------------------------
 * read and tail
 * ------------------------------------------------------------------------ */

struct read_args {
    struct dlog_reader_options ro;
    int have_from, with_dlsn, with_txid, raw;
    uint64_t count; /* 0: no limit */
};

static int read_options(struct ctl *c, int argc, char **argv, struct read_args *a)
{
    const struct option opts[] = {
        COMMON_OPTIONS,
        {"from", required_argument, NULL, OPT_FROM},
        {"from-txid", required_argument, NULL, OPT_FROM_TXID},
        {"to", required_argument, NULL, OPT_TO},
        {"with-dlsn", no_argument, &a->with_dlsn, 1},
        {"with-txid", no_argument, &a->with_txid, 1},
        {"key-prefix", required_argument, NULL, OPT_KEY_PREFIX},
        {"format", required_argument, NULL, OPT_FORMAT},
        {"count", required_argument, NULL, OPT_COUNT},
        {NULL, 0, NULL, 0},
    };
    int opt, rc = CONTINUE;

    dlog_reader_options_init(&a->ro);
    while (rc == CONTINUE &&
           (opt = getopt_long(argc, argv, COMMON_SHORT, opts, NULL)) != -1) {
        switch (opt) {
        case OPT_FROM:
        case OPT_FROM_TXID:
            if (a->have_from++)
                return usage_error(c, "give one of --from and --from-txid");
            if (opt == OPT_FROM_TXID) {
                a->ro.start = DLOG_START_TXID;
                rc = opt_number(c, "from-txid", 0, &a->ro.start_txid);
            } else if (strcmp(optarg, "head") == 0) {
                a->ro.start = DLOG_START_HEAD;
            } else if (strcmp(optarg, "tail") == 0) {
                a->ro.start = DLOG_START_TAIL;
            } else {
                a->ro.start = DLOG_START_DLSN;
                rc = opt_dlsn(c, "--from", optarg, &a->ro.start_dlsn);
            }
            break;
        case OPT_TO:
            rc = opt_dlsn(c, "--to", optarg, &a->ro.end);
            break;
        case OPT_KEY_PREFIX:
            a->ro.key_prefix = optarg;
            a->ro.key_prefix_len = strlen(optarg);
            break;
        case OPT_FORMAT:
            rc = opt_choice(c, "format", FORMATS, 2, &a->raw);
            break;
        case OPT_COUNT:
            rc = opt_number(c, "count", 0, &a->count);
            break;
        default:
            rc = common_option(c, opt, argv);
        }
    }
    if (rc != CONTINUE || (rc = positional(c, argc, argv, 1, STREAM_ARG)) != CONTINUE)
        return rc;
    if (a->raw && (a->with_dlsn || a->with_txid))
        return usage_error(c, "--with-dlsn and --with-txid need --format=lines");
    return CONTINUE;
}

/* Prints one record: [DLSN\t][txid\t]payload\n, or length-prefixed raw. */
static void print_record(const struct read_args *a, const struct dlog_record *r)
{
    char b[DLOG_DLSN_STRLEN];

    if (a->raw) {
        unsigned char hdr[4] = {(unsigned char)(r->len >> 24),
                                (unsigned char)(r->len >> 16),
                                (unsigned char)(r->len >> 8), (unsigned char)r->len};
        fwrite(hdr, 1, sizeof hdr, stdout);
    } else {
        if (a->with_dlsn)
            printf("%s\t", fmt_dlsn(r->dlsn, b));
        if (a->with_txid)
            printf("%" PRIu64 "\t", r->txid);
    }
    fwrite(r->payload, 1, r->len, stdout);
    if (!a->raw)
        putchar('\n');
}

static void on_stop_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/*
 * Reads until the end of the stream (a non-waiting read times out), --to or
 * --count; when following, waits for more until SIGINT/SIGTERM instead.
 */
static int read_or_tail(struct ctl *c, int argc, char **argv, int follow)
{
    struct read_args a = {.count = 0};
    struct dlog_record recs[READ_BATCH];
    struct dlog_reader *r = NULL;
    const char *stream;
    uint64_t got = 0;
    int rc, n, i;

    if ((rc = read_options(c, argc, argv, &a)) != CONTINUE)
        return rc;
    stream = argv[optind];
    if (follow) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = on_stop_signal; /* no SA_RESTART: waits end early */
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    if ((rc = open_ns(c)) != 0)
        return rc;
    if ((rc = dlog_reader_open(c->ns, stream, &a.ro, &r)) != 0)
        return dlog_error(c, stream, rc, dlog_errmsg(c->ns));
    rc = 0;
    while (!stop_requested && (a.count == 0 || got < a.count)) {
        size_t max = READ_BATCH;
        if (a.count != 0 && a.count - got < max)
            max = (size_t)(a.count - got);
        n = dlog_read(r, recs, max, follow ? TAIL_WAIT_MS : 0);
        if (n == DLOG_ETIMEDOUT && follow)
            continue;
        if (n == DLOG_ETIMEDOUT || n == DLOG_EEOF)
            break;
        if (n < 0) {
            fflush(stdout);
            rc = dlog_error(c, stream, n, dlog_reader_errmsg(r));
            break;
        }
        for (i = 0; i < n; i++)
            print_record(&a, &recs[i]);
        got += (uint64_t)n;
        if (follow)
            fflush(stdout);
    }
    dlog_reader_close(r);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "dlogctl: %s: stdout: %s\n", c->cmd->name, strerror(errno));
        if (rc == 0)
            rc = EXIT_RUNTIME;
    }
    return rc;
}

static int cmd_read(struct ctl *c, int argc, char **argv)
{
    return read_or_tail(c, argc, argv, 0);
}

static int cmd_tail(struct ctl *c, int argc, char **argv)
{
    return read_or_tail(c, argc, argv, 1);
}

/* ------------------------------------------------------------------------
 * help, the command table and main
 * ------------------------------------------------------------------------ */

static int cmd_cluster(struct ctl *c, int argc, char **argv)
{
    return dlogctl_cluster(c->uri, argc, argv);
}

static int cmd_help(struct ctl *c, int argc, char **argv)
{
    const struct command *cmd;

    if (argc < 2) {
        print_main_usage(stdout);
        return 0;
    }
    if ((cmd = find_command(argv[1])) == NULL)
        return usage_error(c, "unknown command '%s'", argv[1]);
    print_command_usage(stdout, cmd);
    return 0;
}

#define READ_OPTIONS                                                                     \
    "  --from=DLSN|head|tail start at this record (default: head)\n"                     \
    "  --from-txid=N        start at the first record with txid >= N\n"                  \
    "  --to=DLSN            stop after this record\n"                                    \
    "  --count=N            stop after N records\n"                                      \
    "  --key-prefix=P       only records whose key starts with P\n"                      \
    "  --with-dlsn          print DLSN<TAB> before each record\n"                        \
    "  --with-txid          print txid<TAB> before each record (after the DLSN)\n"       \
    "  --format=lines|raw   one record per line (default), or each record as a\n"        \
    "                       4-byte big-endian length and its bytes\n"

static const struct command commands[] = {
    {"create", cmd_create, "STREAM [options]", "Creates a stream.",
     "  --segment-bytes=N    roll segments after N bytes (K, M, G suffixes)\n"
     "  --segment-age-ms=N   roll segments after N ms (0: never)\n"
     "  --segment-records=N  roll segments after N records (0: never)\n"
     "  --retention-age-ms=N delete sealed segments older than N ms (0: keep)\n"
     "  --retention-bytes=N  keep at most N bytes (K, M, G suffixes; 0: no limit)\n"
     "  --compression=none|lz4|zstd\n"
     "  --max-record-bytes=N the largest record (K, M, G suffixes; default 64M)\n"
     "  --auto-txid          dlog assigns txids 1, 2, 3, ...\n"
     "  --records-per-sec=N, --bytes-per-sec=N, --soft-records-per-sec=N,\n"
     "  --soft-bytes-per-sec=N, --burst-ms=N, --max-wait-ms=N\n"
     "                       rate limits, as for 'limit'\n"
     "  --quota-bytes=N      keep at most N bytes (K, M, G; 0: unlimited)\n"
     "  --quota-policy=reject|truncate  what a write over the quota does\n"},
    {"delete", cmd_delete, "STREAM", "Deletes a stream and its data.", ""},
    {"list", cmd_list, "", "Lists the streams, one per line.", ""},
    {"describe", cmd_describe, "STREAM [--json]",
     "Shows a stream's configuration, positions and segments.",
     "  --json               print JSON instead of a table\n"},
    {"write", cmd_write, "STREAM [options] < INPUT",
     "Appends records read from stdin to STREAM.",
     "  --format=lines|raw   one record per line (default), or each record as a\n"
     "                       4-byte big-endian length and its bytes\n"
     "  --acks               print DLSN<TAB>txid per record once it is durable\n"
     "                       (in order; implies --batch=1)\n"
     "  --exclusive          fence other writers of the stream\n"
     "  --txid-start=N       txid of the first record (default: last txid + 1)\n"
     "  --key=K              give every record the key K\n"
     "  --batch=N            records per write (default 1)\n"},
    {"read", cmd_read, "STREAM [options]", "Prints a stream's records up to its end.",
     READ_OPTIONS},
    {"tail", cmd_tail, "STREAM [options]",
     "Prints a stream's records and follows it until interrupted.", READ_OPTIONS},
    {"truncate", cmd_truncate, "STREAM DLSN",
     "Truncates every record below DLSN (SEG/ENTRY/SLOT).", ""},
    {"retention", cmd_retention, "STREAM",
     "Applies the stream's retention rules now; prints the segments deleted.", ""},
    {"limit", cmd_limit, "STREAM|--namespace [options]",
     "Shows or changes rate limits (docs/rate-limiting.md).",
     "  --records-per-sec=N  hard level: refuse (or delay) writes above it\n"
     "  --bytes-per-sec=N    hard level in bytes (K, M, G suffixes)\n"
     "  --soft-records-per-sec=N, --soft-bytes-per-sec=N\n"
     "                       soft levels: writes above them are counted\n"
     "  --burst-ms=N         bucket size as time at the rate (default 200)\n"
     "  --max-wait-ms=N      delay writes up to N ms instead of refusing (0: refuse)\n"
     "  --namespace          the namespace's limits instead of a stream's\n"
     "Only the values given change; 0 means unlimited.\n"},
    {"quota", cmd_quota, "STREAM|--namespace --bytes N [--policy P]",
     "Sets the data-size quota (bytes retained).",
     "  --bytes=N            at most N bytes retained (K, M, G; 0: unlimited)\n"
     "  --policy=reject|truncate  refuse writes over it (DLOG_EQUOTA), or delete\n"
     "                       the oldest sealed segments to make room\n"
     "  --namespace          the namespace's quota instead of a stream's\n"},
    {"limits", cmd_limits, "STREAM|--namespace [--json]",
     "Shows limits, quota usage and each proxy's share and counters.",
     "  --json               print JSON instead of a table\n"
     "  --namespace          the namespace's instead of a stream's\n"},
    {"cluster", cmd_cluster, "status|groups|add-node|remove-node [ARGS]",
     "Node calls to a cluster (-u cluster://H:P,...; docs/cluster.md).",
     "  status               every node's state, term, applied index, revision\n"
     "  groups [--no-streams]  every Raft group: members, leader, term, applied\n"
     "                       and commit index per replica; segments, bytes and\n"
     "                       load per data group; where each stream's segments live\n"
     "  add-node --id N --raft H:P --listen H:P   add a voter\n"
     "  remove-node ID       remove a node from the metadata group\n"},
    {"help", cmd_help, "[COMMAND]", "Shows help for dlogctl or one command.", ""},
};

static const struct command *find_command(const char *name)
{
    size_t i;
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++) {
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    }
    return NULL;
}

static void print_main_usage(FILE *f)
{
    size_t i;
    fprintf(f, "Usage: dlogctl [-u URI] COMMAND [ARGS]\n"
               "       dlogctl COMMAND --help | --help | --version\n\nCommands:\n");
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f,
            "\nOptions:\n"
            "  -u, --uri=URI  the namespace: file:DIR, mem: (default: $DLOG_URI,\n"
            "                 else %s)\n"
            "  -h, --help     show this help\n"
            "  -V, --version  show the version\n"
            "\nExit status: 0 on success, 1 on errors, 2 on usage errors.\n",
            DEFAULT_URI);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"uri", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    static const struct command top = {"", NULL, "", "", ""}; /* before COMMAND */
    struct ctl c = {.uri = getenv("DLOG_URI"), .cmd = &top};
    const struct command *cmd;
    int opt, first, rc;

    if (c.uri == NULL || c.uri[0] == '\0')
        c.uri = DEFAULT_URI;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "+:u:hV", opts, NULL)) != -1) {
        if (opt == 'V') {
            printf("dlogctl (dlog) %s\n", dlog_version());
            return 0;
        }
        if ((rc = common_option(&c, opt, argv)) != CONTINUE)
            return rc;
    }
    if (optind >= argc)
        return usage_error(&c, "missing COMMAND");
    if ((cmd = find_command(argv[optind])) == NULL)
        return usage_error(&c, "unknown command '%s'", argv[optind]);
    c.cmd = cmd;
    first = optind;
    optind = 0; /* GNU getopt: start afresh on the command's arguments */
    rc = c.cmd->run(&c, argc - first, argv + first);
    if (c.ns != NULL)
        dlog_close(c.ns);
    return rc;
}
