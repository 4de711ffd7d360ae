/*
 * The dispatcher delivers async completions on the namespace's libuv loop.
 * Other threads queue finished write requests and ask for a pass; a pass
 * on the loop thread runs their callbacks and retries pending async reads.
 * A notifier thread waits on the backend's change counter while async reads
 * are pending and wakes the loop when data may have arrived (or every
 * DISPATCH_TICK_MS, for read deadlines).
 *
 * Lifetime: created by dlog_open when opts.loop is set; dispatch_close (on
 * the loop thread, from dlog_close) stops the notifier, runs what is still
 * queued, and uv_close's the async handle; its memory is freed in the close
 * callback, so the caller must run the loop afterwards.
 */
#ifndef DLOG_CORE_DISPATCH_H
#define DLOG_CORE_DISPATCH_H

#include <dlog/dlog.h>

#define DISPATCH_TICK_MS 20

struct dispatch;

int dispatch_open(struct dlog_ns *ns, struct dispatch **out);
void dispatch_close(struct dispatch *d);
/* Any thread: queue a finished write request for its callback. */
void dispatch_write_done(struct dispatch *d, struct dlog_write_req *req);
/* Any thread: queue an async read (tried on the loop's next pass). */
void dispatch_read(struct dispatch *d, struct dlog_read_req *req);
/* Loop thread: withdraw r's pending read, completing it with DLOG_ECANCELED. */
void dispatch_cancel_reader(struct dispatch *d, struct dlog_reader *r);

#endif
