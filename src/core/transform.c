#include "core/transform.h"

#include <stdint.h>

#include "base/errmsg.h"

#define PROJECTED (1u << 31) /* rec->flags: payload holds an offset into proj */

int transform_project(const struct dlog_reader_options *o, struct dlog_record *rec,
                      struct dlog_buf *proj, char *errmsg)
{
    struct dlog_buf out = {0};
    int rv = o->project(o->project_arg, rec, &out);
    if (rv == 0 && dlog_buf_append(proj, out.p, out.len) != 0)
        rv = DLOG_ENOMEM;
    size_t len = out.len;
    dlog_buf_free(&out);
    if (rv != 0) {
        errmsg_printf(errmsg, "projection failed: %s", dlog_strerror(rv));
        return rv;
    }
    rec->payload = (const void *)(uintptr_t)(proj->len - len);
    rec->len = len;
    rec->flags = PROJECTED;
    return 0;
}

void transform_finish(struct dlog_record *recs, size_t n, const struct dlog_buf *proj)
{
    for (size_t i = 0; i < n; i++)
        if (recs[i].flags & PROJECTED) {
            recs[i].payload = (const uint8_t *)proj->p + (uintptr_t)recs[i].payload;
            recs[i].flags = 0;
        }
}
