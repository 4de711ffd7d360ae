/*
 * Shared snapshots in the companion stream "<stream>.snap", so that a
 * replica with an empty disk bootstraps from the newest one and replays
 * only the records after it.
 *
 * A snapshot is published as a run of records, each up to
 * shared_part_bytes (8 MiB by default: dlog stores such large records as
 * fragment entries, visible whole or not at all) with a small header
 * (sm_internal.h). Parts are written in order by one writer, so they
 * appear in order; other replicas' parts may interleave and are told apart
 * by the snapshot id. Only when every part is durable does the publisher
 * announce the snapshot (PUBLISH in "<stream>.replicas"), so an announced
 * snapshot is complete unless the companion has been truncated since.
 */
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/log.h"
#include "sm/sm_internal.h"

#define PART_DEFAULT (8ULL * 1024 * 1024)
#define READ_WAIT_MS 2000 /* parts are durable before the announcement */

/* ------------------------------------------------------------ publish */

static int flush_part(struct sm_pub *p, int last)
{
    struct dlog_sm *sm = p->sm;
    struct dlog_record rec;
    struct dlog_dlsn at;
    if (p->err != 0)
        return p->err;
    if (p->buf.len == 0) { /* an empty last part */
        uint8_t h[PUB_HDR] = {0};
        if (bytes_append(&p->buf, h, PUB_HDR) != 0)
            return p->err = DLOG_ENOMEM;
    }
    uint8_t *h = p->buf.p;
    h[0] = PUB_MAGIC;
    h[1] = PUB_VERSION;
    put_u64be(h + 2, p->id);
    put_u32be(h + 10, p->part);
    h[14] = last ? PUB_F_LAST : 0;
    memset(&rec, 0, sizeof rec);
    rec.payload = p->buf.p;
    rec.len = p->buf.len;
    int rv = dlog_write_sync(sm->snap_writer, &rec, 1, &at);
    if (rv != 0) {
        sm_fail(sm, rv, "publish snapshot part %u to '%s': %s", p->part, sm->snap_stream,
                dlog_writer_errmsg(sm->snap_writer));
        return p->err = rv;
    }
    if (p->part == 0)
        p->first = at;
    p->part++;
    bytes_reset(&p->buf);
    return 0;
}

int pub_append(struct sm_pub *p, const void *data, size_t n)
{
    const uint8_t *b = data;
    while (n > 0 && p->err == 0) {
        if (p->buf.len == 0) {
            uint8_t h[PUB_HDR] = {0};
            if (bytes_append(&p->buf, h, PUB_HDR) != 0)
                return p->err = DLOG_ENOMEM;
        }
        size_t room = p->part_max + PUB_HDR - p->buf.len;
        size_t k = n < room ? n : room;
        if (bytes_append(&p->buf, b, k) != 0)
            return p->err = DLOG_ENOMEM;
        b += k;
        n -= k;
        if (p->buf.len == p->part_max + PUB_HDR)
            flush_part(p, 0);
    }
    return p->err;
}

int shared_publish(struct dlog_sm *sm, struct pub_info *out)
{
    uint64_t part = sm->o.shared_part_bytes ? sm->o.shared_part_bytes : PART_DEFAULT;
    if (part > DLOG_RECORD_MAX_LIMIT - PUB_HDR)
        part = DLOG_RECORD_MAX_LIMIT - PUB_HDR;
    int rv = 0;
    if (sm->snap_writer == NULL)
        rv = sm_companion_writer(sm, sm->snap_stream, part + PUB_HDR, &sm->snap_writer);
    if (rv != 0)
        return rv;
    /* An existing companion may take smaller records. */
    struct dlog_stream_info *info;
    if (dlog_stream_describe(sm->ns, sm->snap_stream, &info) == 0) {
        if (info->config.max_record_bytes < part + PUB_HDR)
            part = info->config.max_record_bytes > PUB_HDR + 4096
                       ? info->config.max_record_bytes - PUB_HDR
                       : 4096;
        dlog_stream_info_free(info);
    }
    struct sm_pub p;
    memset(&p, 0, sizeof p);
    p.sm = sm;
    p.id = sm->instance ^ (++sm->next_pub_id * 0x9E3779B97F4A7C15ULL);
    p.part_max = (size_t)part;
    bytes_init(&p.buf);
    struct dlog_snapshot_writer w;
    struct snap_header h = {.flags = SNAP_F_APP,
                            .dlsn = sm->applied,
                            .total = sm->total,
                            .stream_id = sm->stream_id,
                            .wall_ms = clock_wall_ms()};
    rv = snap_writer_init(&w, -1, &p, &h);
    if (rv == 0)
        rv = snap_write_state(sm, &w, 1);
    snap_writer_free(&w);
    if (rv == 0)
        rv = flush_part(&p, 1);
    bytes_free(&p.buf);
    if (rv != 0)
        return rv;
    memset(out, 0, sizeof *out);
    out->dlsn = h.dlsn;
    out->first = p.first;
    out->id = p.id;
    return 0;
}

/* ------------------------------------------------------------ read back */

struct pub_src {
    struct dlog_reader *r;
    uint64_t id;
    uint32_t next_part;
    int last_seen;
    const uint8_t *p;
    size_t left;
};

static int pub_src_read(void *arg, void *dst, size_t n)
{
    struct pub_src *s = arg;
    uint8_t *b = dst;
    size_t got = 0;
    while (got < n) {
        if (s->left == 0) {
            if (s->last_seen)
                return got == 0 ? DLOG_EEOF : DLOG_ECORRUPT;
            struct dlog_record rec;
            int rv = dlog_read(s->r, &rec, 1, READ_WAIT_MS);
            if (rv == DLOG_ETIMEDOUT || rv == DLOG_EEOF)
                return DLOG_ECORRUPT; /* parts missing */
            if (rv < 0)
                return rv;
            const uint8_t *h = rec.payload;
            if (rec.len < PUB_HDR || h[0] != PUB_MAGIC || h[1] != PUB_VERSION ||
                get_u64be(h + 2) != s->id)
                continue; /* another snapshot's part */
            if (get_u32be(h + 10) != s->next_part)
                return DLOG_ECORRUPT;
            s->next_part++;
            s->last_seen = h[14] & PUB_F_LAST;
            s->p = h + PUB_HDR;
            s->left = rec.len - PUB_HDR;
            continue;
        }
        size_t k = s->left < n - got ? s->left : n - got;
        memcpy(b + got, s->p, k);
        s->p += k;
        s->left -= k;
        got += k;
    }
    return 0;
}

/* Opens a reader on the publication; checks its header. */
static int open_pub(struct dlog_sm *sm, const struct pub_info *pi, struct pub_src *s,
                    struct dlog_snapshot_reader *r)
{
    struct dlog_reader_options ro;
    memset(s, 0, sizeof *s);
    memset(r, 0, sizeof *r);
    dlog_reader_options_init(&ro);
    ro.start = DLOG_START_DLSN;
    ro.start_dlsn = pi->first;
    int rv = dlog_reader_open(sm->ns, sm->snap_stream, &ro, &s->r);
    if (rv != 0)
        return rv;
    s->id = pi->id;
    rv = snap_reader_init(r, pub_src_read, s);
    if (rv == 0 && (dlog_dlsn_cmp(r->hdr.dlsn, pi->dlsn) != 0 ||
                    r->hdr.stream_id != sm->stream_id || !(r->hdr.flags & SNAP_F_APP)))
        rv = DLOG_ECORRUPT;
    return rv;
}

static void close_pub(struct pub_src *s, struct dlog_snapshot_reader *r)
{
    snap_reader_free(r);
    if (s->r != NULL)
        dlog_reader_close(s->r);
}

int shared_verify(struct dlog_sm *sm, const struct pub_info *pi)
{
    struct pub_src s;
    struct dlog_snapshot_reader r;
    int rv = open_pub(sm, pi, &s, &r);
    if (rv == 0)
        rv = snap_reader_drain(&r);
    close_pub(&s, &r);
    return rv;
}

int shared_restore(struct dlog_sm *sm, const struct pub_info *pi, int app)
{
    struct pub_src s;
    struct dlog_snapshot_reader r;
    int rv = open_pub(sm, pi, &s, &r);
    if (rv == 0)
        rv = snap_restore_state(sm, &r, app);
    close_pub(&s, &r);
    if (rv == 0) {
        log_info(SM_LOG, "'%s': restored the shared snapshot at %llu/%llu/%u", sm->stream,
                 (unsigned long long)pi->dlsn.seg, (unsigned long long)pi->dlsn.entry,
                 pi->dlsn.slot);
    }
    return rv;
}
