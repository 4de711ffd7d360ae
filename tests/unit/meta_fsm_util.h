/*
 * Helpers shared by the metadata FSM's test files (test_meta_fsm.c,
 * test_meta_fsm_raft.c): commands applied straight to an FSM, stream
 * records, and comparing two states through their snapshot bytes.
 */
#ifndef DLOG_TESTS_UNIT_META_FSM_UTIL_H
#define DLOG_TESTS_UNIT_META_FSM_UTIL_H

#include <check.h>
#include <stdio.h>
#include <string.h>

#include <dlog/dlog.h>
#include <dlog/err.h>

#include "base/buf.h"
#include "node/meta_cmd.h"
#include "node/meta_fsm.h"

Suite *meta_fsm_suite(void);
Suite *meta_fsm_raft_suite(void);

/* A stream record named name with a plausible config and no segments. */
static inline void util_stream_init(struct meta_stream *s, const char *name)
{
    memset(s, 0, sizeof *s);
    snprintf(s->name, sizeof s->name, "%s", name);
    s->cfg.version = DLOG_STREAM_CONFIG_VERSION;
    s->cfg.segment_max_bytes = 256ULL << 20;
    s->cfg.max_record_bytes = DLOG_RECORD_MAX_DEFAULT;
    s->created_ms = 1700000000000ULL;
}

/* Applies the command in *cmd to fsm (it must be applied, whatever its
 * outcome), empties *cmd and returns the result. */
static inline struct meta_fsm_result util_apply(struct meta_fsm *fsm, struct bytes *cmd)
{
    struct meta_fsm_result res;

    ck_assert_int_eq(meta_fsm_apply(fsm, cmd->p, cmd->len, &res), 0);
    bytes_reset(cmd);
    return res;
}

/* The snapshot bytes of fsm into *out (bytes_init'ed; the caller frees). */
static inline void util_snapshot(struct meta_fsm *fsm, struct bytes *out)
{
    bytes_init(out);
    ck_assert_int_eq(meta_fsm_snapshot(fsm, out), 0);
}

/* 1 if a and b hold the same state (equal snapshot bytes). */
static inline int util_same_state(struct meta_fsm *a, struct meta_fsm *b)
{
    struct bytes sa, sb;
    int same;

    util_snapshot(a, &sa);
    util_snapshot(b, &sb);
    same = sa.len == sb.len && memcmp(sa.p, sb.p, sa.len) == 0;
    bytes_free(&sa);
    bytes_free(&sb);
    return same;
}

#endif
