/*
 * Helpers shared by test-data-fsm's files: temporary directories, entries,
 * commands, opening FSMs, and a digest of an FSM's whole contents.
 */
#ifndef DLOG_TESTS_UNIT_DATA_FSM_UTIL_H
#define DLOG_TESTS_UNIT_DATA_FSM_UTIL_H

#include <check.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "base/buf.h"
#include "node/data_cmd.h"
#include "node/data_fsm.h"

#define TEST_MAP_SIZE (256ULL << 20)

/* 1: fsm_open opens with cfg.write_behind (set by main between runs). */
extern int fsm_test_write_behind;

Suite *data_fsm_suite(void);
Suite *data_fsm_cluster_suite(void);

/* A fresh directory /tmp/<prefix>-XXXXXX, its path into buf. */
void tdir_make(char *buf, size_t size, const char *prefix);
/* dir/name, created. */
void tdir_sub(char *buf, size_t size, const char *dir, const char *name);
/* Removes dir and everything below it. */
void tdir_remove(const char *dir);

/* A heap copy of an entry of n records with txids txid, txid+1, ... */
struct iovec make_entry(uint64_t txid, int n, uint8_t eflags);
void free_entries(struct iovec *v, int n);

/* The encoding of c (the caller frees it with bytes_free). */
struct bytes cmd_bytes(const struct data_cmd *c);
struct data_cmd cmd_open(uint64_t stream, uint64_t seq, uint64_t epoch,
                         uint64_t start_txid, uint64_t created_ms);
struct data_cmd cmd_append(uint64_t stream, uint64_t seq, uint64_t epoch, uint32_t flags,
                           const struct iovec *e, uint32_t n);
struct data_cmd cmd_simple(int op, uint64_t stream, uint64_t seq, uint64_t epoch);

/* Opens the FSM in dir, failing the test otherwise. */
struct data_fsm *fsm_open(const char *dir, data_fsm_fetch_fn fetch, void *fetch_arg);
/* The same with cfg.write_behind as given. */
struct data_fsm *fsm_open_wb(const char *dir, data_fsm_fetch_fn fetch, void *fetch_arg,
                             int write_behind);

/* Applies c at index; returns res.status; fails the test on a local failure. */
int fsm_apply_cmd(struct data_fsm *f, uint64_t index, const struct data_cmd *c,
                  struct data_fsm_result *res);

/* A CRC-32C over every item data_fsm_dump gives; *st gets the state item. */
uint32_t fsm_digest(struct data_fsm *f, struct data_fsm_state *st);

/* data_fsm_state once LMDB holds every applied command (write-behind). */
int test_fsm_state(struct data_fsm *f, struct data_fsm_state *st);

/* The same over the SEG and ENTRY items only: the contents, without the
 * applied index and digest. */
uint32_t fsm_contents(struct data_fsm *f);

/* Replaces dst's contents with src's (dump into load). */
int fsm_copy(struct data_fsm *src, struct data_fsm *dst);

#endif
