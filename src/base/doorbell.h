/*
 * A doorbell: a 32-bit counter that writers ring after making data durable
 * and readers wait on. Built on Linux futexes, so a doorbell in a shared
 * mmap'd file wakes waiters in every process that maps it (that is how a
 * tailing reader in another process hears of new entries within
 * microseconds), and a private one serves a single process.
 */
#ifndef DLOG_BASE_DOORBELL_H
#define DLOG_BASE_DOORBELL_H

#include <stddef.h>
#include <stdint.h>

struct doorbell {
    uint32_t *word; /* the counter, in the mapping or in `local` */
    void *map;      /* shared mapping, or NULL */
    size_t maplen;
    int shared; /* 1: FUTEX_* without the private flag */
    uint32_t local;
};

/* A process-private doorbell. */
void doorbell_init(struct doorbell *d);
/*
 * A doorbell shared through the file at path (created if missing).
 * Returns 0 or DLOG_EIO.
 */
int doorbell_open_file(struct doorbell *d, const char *path);
void doorbell_close(struct doorbell *d);
/* The current count (acquire). */
uint32_t doorbell_read(const struct doorbell *d);
/* Increment and wake every waiter. */
void doorbell_ring(struct doorbell *d);
/*
 * Wait until the count differs from seen or timeout_ms passes (<0: no
 * limit). Returns 0 when the count changed (or a spurious wake: callers
 * re-check their condition), DLOG_ETIMEDOUT otherwise.
 */
int doorbell_wait(struct doorbell *d, uint32_t seen, int timeout_ms);

#endif
