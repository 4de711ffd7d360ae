/*
 * Rate-limit records kept in the metadata store's keyed values, and their
 * encodings (docs/rate-limiting.md, "Coordination"):
 *
 *   "ns/limits"          the namespace's struct dlog_limits
 *   "rl/report/<proxy>"  a proxy's report: per limit, its demand, admitted
 *                        rate, counters and the share it is using
 *   "rl/grant/<proxy>"   the coordinator's grant to a proxy: per limit, the
 *                        share of each hard level, valid for lease_ms
 *   "rl/coordinator"     who coordinates, renewed every interval
 *
 * A limit is named by its key: the stream name, or "" for the namespace.
 * Encodings are unsigned varints with a format byte in front and a CRC-32C
 * behind; decoding refuses anything else with DLOG_ECORRUPT.
 */
#ifndef DLOG_META_META_RL_H
#define DLOG_META_META_RL_H

#include <stddef.h>
#include <stdint.h>

#include <dlog/dlog.h>

#include "base/buf.h"

#define RL_KEY_NS_LIMITS "ns/limits"
#define RL_PREFIX_REPORT "rl/report/"
#define RL_PREFIX_GRANT  "rl/grant/"
#define RL_KEY_COORD     "rl/coordinator"
#define RL_PROXY_ID_MAX  63
#define RL_MAX_ITEMS     4096 /* limits per report or grant */

int meta_limits_encode(const struct dlog_limits *l, struct bytes *out);
int meta_limits_decode(const void *p, size_t len, struct dlog_limits *l);

/* One limit in a proxy's report. */
struct rl_report_item {
    char key[DLOG_STREAM_NAME_MAX + 1];    /* stream, or "" for the namespace */
    uint64_t demand_records, demand_bytes; /* offered per second */
    uint64_t rate_records, rate_bytes;     /* admitted per second */
    uint64_t share_records, share_bytes;   /* the share in use */
    uint64_t admitted, rejected, delayed, soft_exceeded;
};

struct rl_report {
    char proxy[RL_PROXY_ID_MAX + 1];
    uint64_t seq;     /* grows with every report of this proxy */
    uint64_t wall_ms; /* the proxy's wall clock when it reported */
    size_t n;
    struct rl_report_item *items; /* owned (malloc) */
};

struct rl_grant_item {
    char key[DLOG_STREAM_NAME_MAX + 1];
    uint64_t share_records, share_bytes;
};

struct rl_grant {
    uint64_t seq;      /* grows with every grant of the coordinator */
    uint64_t lease_ms; /* valid this long after the proxy reads it */
    uint32_t nproxies; /* proxies alive when it was computed */
    size_t n;
    struct rl_grant_item *items; /* owned (malloc) */
};

int rl_report_encode(const struct rl_report *r, struct bytes *out);
/* *r is overwritten; free items with rl_report_clear. */
int rl_report_decode(const void *p, size_t len, struct rl_report *r);
void rl_report_clear(struct rl_report *r);

int rl_grant_encode(const struct rl_grant *g, struct bytes *out);
int rl_grant_decode(const void *p, size_t len, struct rl_grant *g);
void rl_grant_clear(struct rl_grant *g);
/* The item for key, or NULL. */
const struct rl_grant_item *rl_grant_find(const struct rl_grant *g, const char *key);

#endif
