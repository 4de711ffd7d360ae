/*
 * Reader transforms shared by every backend: the projection callback.
 *
 * Projected payloads of one read call share one buffer (proj), which may
 * move while it grows; so transform_project leaves an offset in the
 * record, and transform_finish turns the offsets into pointers once the
 * call has all its records. The buffer is the reader's and is reset at the
 * start of each read call.
 */
#ifndef DLOG_CORE_TRANSFORM_H
#define DLOG_CORE_TRANSFORM_H

#include <dlog/dlog.h>

/* Replace rec's payload by its projection; 0 or the callback's error (with
 * a message in errmsg). */
int transform_project(const struct dlog_reader_options *o, struct dlog_record *rec,
                      struct dlog_buf *proj, char *errmsg);
/* Point the projected records of recs[0..n) into proj. */
void transform_finish(struct dlog_record *recs, size_t n, const struct dlog_buf *proj);

#endif
