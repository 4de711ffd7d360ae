/*
 * The public handles, as every backend shares them. A backend allocates
 * its own larger struct with one of these as its first member.
 */
#ifndef DLOG_CORE_CORE_H
#define DLOG_CORE_CORE_H

#include <pthread.h>

#include <dlog/dlog.h>

#include "base/errmsg.h"
#include "core/backend.h"

struct dispatch;

struct dlog_ns {
    const struct dlog_backend_ops *ops;
    struct dlog_options opts;
    char errmsg[DLOG_ERRMSG_SIZE];
    void *impl;            /* the backend's */
    struct dispatch *disp; /* NULL without a loop */
    pthread_mutex_t lock;  /* guards the lists below */
    struct dlog_writer *writers;
    struct dlog_reader *readers;
};

struct dlog_writer {
    struct dlog_ns *ns;
    char errmsg[DLOG_ERRMSG_SIZE];
    uint64_t epoch;
    struct dlog_writer *next; /* in ns->writers */
};

struct dlog_reader {
    struct dlog_ns *ns;
    char errmsg[DLOG_ERRMSG_SIZE];
    struct dlog_dlsn pos;          /* next position */
    struct dlog_read_req *pending; /* async read in flight */
    struct dlog_reader *next;      /* in ns->readers */
};

/* Register and unregister handles in their namespace (api.c). */
void core_writer_link(struct dlog_ns *ns, struct dlog_writer *w);
void core_writer_unlink(struct dlog_ns *ns, struct dlog_writer *w);
void core_reader_link(struct dlog_ns *ns, struct dlog_reader *r);
void core_reader_unlink(struct dlog_ns *ns, struct dlog_reader *r);

/* Complete a write request: on the loop through the dispatcher, or inline. */
void core_write_done(struct dlog_ns *ns, struct dlog_write_req *req);

/* The callback of dlog_write_sync: always run inline, never via the loop. */
void core_sync_cb(struct dlog_write_req *req, int status);

/* Embedded backend entry point (embedded.c): "mem:" and "file:DIR". */
int embedded_open(const char *uri, struct dlog_ns *ns, char *errmsg);
/* Remote backend entry point (src/client/client.c): "dlog://host:port,...". */
int client_open(const char *uri, struct dlog_ns *ns, char *errmsg);

#endif
