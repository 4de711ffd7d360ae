/*
 * The snapshot format and local snapshot files.
 *
 * The format (sm_internal.h) is streamed both ways: the writer cuts what
 * it is given into chunks of at most SNAP_CHUNK bytes, each followed by
 * nothing and preceded by its length and CRC32C; the reader checks each
 * chunk before returning a byte of it, and a trailer with the totals and a
 * CRC of all data detects a file cut short. A snapshot is therefore never
 * one buffer in memory, whatever the size of the state.
 *
 * Local files are written as ".tmp-snap-..." in snapshot_dir, fsync'd,
 * renamed to "snap-<seg>-<entry>-<slot>.dsnap" (hex, so names sort by
 * DLSN) and the directory fsync'd: a crash leaves either the old set or
 * the new one, never a half file under a snapshot's name.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/crc32c.h"
#include "base/log.h"
#include "sm/sm_internal.h"

static const char snap_magic[8] = {'D', 'L', 'O', 'G', 'S', 'N', 'A', 'P'};
#define SNAP_VERSION 1

static int io_err(int e)
{
    return e == ENOSPC || e == EDQUOT ? DLOG_ENOSPC : DLOG_EIO;
}

static int write_all(int fd, const void *p, size_t n)
{
    const uint8_t *b = p;
    while (n > 0) {
        ssize_t k = write(fd, b, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return io_err(k < 0 ? errno : EIO);
        b += k;
        n -= (size_t)k;
    }
    return 0;
}

/* ------------------------------------------------------------ writer */

static int emit(struct dlog_snapshot_writer *w, const void *p, size_t n)
{
    if (w->err == 0 && w->fd >= 0)
        w->err = write_all(w->fd, p, n);
    if (w->err == 0 && w->pub != NULL)
        w->err = pub_append(w->pub, p, n);
    return w->err;
}

static int flush_chunk(struct dlog_snapshot_writer *w)
{
    uint8_t h[8];
    if (w->len == 0 || w->err != 0)
        return w->err;
    put_u32be(h, (uint32_t)w->len);
    put_u32be(h + 4, crc32c(w->chunk, w->len));
    w->all_crc = crc32c_extend(w->all_crc, w->chunk, w->len);
    w->total += w->len;
    w->nchunks++;
    if (emit(w, h, 8) == 0)
        emit(w, w->chunk, w->len);
    w->len = 0;
    return w->err;
}

int snap_writer_init(struct dlog_snapshot_writer *w, int fd, struct sm_pub *pub,
                     const struct snap_header *h)
{
    uint8_t b[SNAP_HDR];
    memset(w, 0, sizeof *w);
    w->fd = fd;
    w->pub = pub;
    w->chunk = malloc(SNAP_CHUNK);
    if (w->chunk == NULL)
        return w->err = DLOG_ENOMEM;
    memcpy(b, snap_magic, 8);
    put_u32be(b + 8, SNAP_VERSION);
    put_u32be(b + 12, h->flags);
    put_u64be(b + 16, h->dlsn.seg);
    put_u64be(b + 24, h->dlsn.entry);
    put_u32be(b + 32, h->dlsn.slot);
    put_u64be(b + 36, h->total);
    put_u64be(b + 44, h->stream_id);
    put_u64be(b + 52, h->wall_ms);
    put_u32be(b + 60, crc32c(b, 60));
    return emit(w, b, SNAP_HDR);
}

int dlog_snapshot_write(struct dlog_snapshot_writer *w, const void *p, size_t n)
{
    const uint8_t *b = p;
    if (w == NULL || (n > 0 && p == NULL))
        return DLOG_EINVAL;
    while (n > 0 && w->err == 0) {
        size_t k = SNAP_CHUNK - w->len;
        if (k > n)
            k = n;
        memcpy(w->chunk + w->len, b, k);
        w->len += k;
        b += k;
        n -= k;
        if (w->len == SNAP_CHUNK)
            flush_chunk(w);
    }
    return w->err;
}

int snap_writer_finish(struct dlog_snapshot_writer *w)
{
    uint8_t t[SNAP_TRAILER];
    if (flush_chunk(w) != 0)
        return w->err;
    put_u32be(t, 0);
    put_u64be(t + 8, w->total);
    put_u64be(t + 16, w->nchunks);
    put_u32be(t + 24, w->all_crc);
    put_u32be(t + 4, crc32c(t + 8, 20));
    return emit(w, t, SNAP_TRAILER);
}

void snap_writer_free(struct dlog_snapshot_writer *w)
{
    free(w->chunk);
    w->chunk = NULL;
}

/* ------------------------------------------------------------ reader */

/* Exactly n bytes, where the end of the source is corruption. */
static int src_full(struct dlog_snapshot_reader *r, void *p, size_t n)
{
    int rv = r->src(r->arg, p, n);
    return rv == DLOG_EEOF ? DLOG_ECORRUPT : rv;
}

int snap_reader_init(struct dlog_snapshot_reader *r, snap_src_fn src, void *arg)
{
    uint8_t b[SNAP_HDR];
    memset(r, 0, sizeof *r);
    r->src = src;
    r->arg = arg;
    int rv = src_full(r, b, SNAP_HDR);
    if (rv != 0)
        return r->err = rv;
    if (memcmp(b, snap_magic, 8) != 0 || get_u32be(b + 60) != crc32c(b, 60) ||
        get_u32be(b + 8) != SNAP_VERSION)
        return r->err = DLOG_ECORRUPT;
    r->hdr.flags = get_u32be(b + 12);
    r->hdr.dlsn =
        (struct dlog_dlsn){get_u64be(b + 16), get_u64be(b + 24), get_u32be(b + 32)};
    r->hdr.total = get_u64be(b + 36);
    r->hdr.stream_id = get_u64be(b + 44);
    r->hdr.wall_ms = get_u64be(b + 52);
    r->chunk = malloc(SNAP_CHUNK);
    if (r->chunk == NULL)
        return r->err = DLOG_ENOMEM;
    return 0;
}

void snap_reader_free(struct dlog_snapshot_reader *r)
{
    free(r->chunk);
    r->chunk = NULL;
}

/* Loads the next chunk, or reads and checks the trailer. */
static int next_chunk(struct dlog_snapshot_reader *r)
{
    uint8_t h[8];
    int rv = src_full(r, h, 8);
    if (rv != 0)
        return r->err = rv;
    uint32_t len = get_u32be(h), crc = get_u32be(h + 4);
    if (len == 0) {
        uint8_t t[20];
        if ((rv = src_full(r, t, 20)) != 0)
            return r->err = rv;
        if (crc != crc32c(t, 20) || get_u64be(t) != r->total ||
            get_u64be(t + 8) != r->nchunks || get_u32be(t + 16) != r->all_crc)
            return r->err = DLOG_ECORRUPT;
        r->eof = 1;
        return 0;
    }
    if (len > SNAP_CHUNK)
        return r->err = DLOG_ECORRUPT;
    if ((rv = src_full(r, r->chunk, len)) != 0)
        return r->err = rv;
    if (crc32c(r->chunk, len) != crc)
        return r->err = DLOG_ECORRUPT;
    r->all_crc = crc32c_extend(r->all_crc, r->chunk, len);
    r->total += len;
    r->nchunks++;
    r->len = len;
    r->off = 0;
    return 0;
}

long dlog_snapshot_read(struct dlog_snapshot_reader *r, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    if (r == NULL || (n > 0 && p == NULL))
        return DLOG_EINVAL;
    if (n > LONG_MAX)
        n = LONG_MAX;
    while (got < n) {
        if (r->err != 0)
            return r->err;
        if (r->off < r->len) {
            size_t k = r->len - r->off;
            if (k > n - got)
                k = n - got;
            memcpy(b + got, r->chunk + r->off, k);
            r->off += k;
            got += k;
            continue;
        }
        if (r->eof || got > 0)
            break;
        next_chunk(r);
    }
    return (long)got;
}

int dlog_snapshot_read_full(struct dlog_snapshot_reader *r, void *p, size_t n)
{
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        long k = dlog_snapshot_read(r, b + got, n - got);
        if (k < 0)
            return (int)k;
        if (k == 0)
            return DLOG_EEOF;
        got += (size_t)k;
    }
    return 0;
}

struct dlog_dlsn dlog_snapshot_dlsn(const struct dlog_snapshot_reader *r)
{
    return r != NULL ? r->hdr.dlsn : DLOG_DLSN_HEAD;
}

int snap_reader_drain(struct dlog_snapshot_reader *r)
{
    while (!r->eof) {
        r->off = r->len;
        if (next_chunk(r) != 0)
            return r->err;
    }
    return 0;
}

/* ------------------------------------------------------------ state */

int snap_write_state(struct dlog_sm *sm, struct dlog_snapshot_writer *w, int app)
{
    int rv = dedup_save(&sm->dd, w);
    if (rv == 0 && app) {
        rv = sm->cb->snapshot(sm->app, w);
        if (rv > 0)
            rv = 0;
    }
    if (rv == 0)
        rv = w->err;
    return rv != 0 ? rv : snap_writer_finish(w);
}

int snap_restore_state(struct dlog_sm *sm, struct dlog_snapshot_reader *r, int app)
{
    if (r->hdr.stream_id != sm->stream_id) {
        log_warn(SM_LOG, "'%s': snapshot of another stream (id %" PRIu64 ") ignored",
                 sm->stream, r->hdr.stream_id);
        return DLOG_ECORRUPT;
    }
    if (app && !(r->hdr.flags & SNAP_F_APP))
        return DLOG_ECORRUPT;
    int rv = dedup_load(&sm->dd, r);
    if (rv == 0 && app) {
        rv = sm->cb->restore(sm->app, r);
        if (rv > 0)
            rv = 0;
        if (r->err != 0)
            rv = r->err; /* corruption found while the app read: try another */
    }
    if (rv != 0)
        return rv;
    pthread_mutex_lock(&sm->mu);
    sm->applied = r->hdr.dlsn;
    pthread_mutex_unlock(&sm->mu);
    sm->total = r->hdr.total;
    return 0;
}

/* ------------------------------------------------------------ local files */

static int mkdirs(const char *path)
{
    char buf[4096];
    if (strlen(path) >= sizeof buf)
        return -1;
    strcpy(buf, path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int snap_dir_open(struct dlog_sm *sm)
{
    if (mkdirs(sm->snapshot_dir) != 0)
        return sm_fail(sm, DLOG_ENOTDIR, "cannot create snapshot_dir %s: %s",
                       sm->snapshot_dir, strerror(errno));
    int fd = open(sm->snapshot_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return sm_fail(sm, DLOG_ENOTDIR, "cannot open snapshot_dir %s: %s",
                       sm->snapshot_dir, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(fd);
        return sm_fail(sm, e == EWOULDBLOCK ? DLOG_EBUSY : DLOG_EIO,
                       "snapshot_dir %s is in use by another state machine",
                       sm->snapshot_dir);
    }
    sm->dir_fd = fd;
    return 0;
}

static void file_name(char *buf, size_t size, const char *prefix, struct dlog_dlsn d)
{
    snprintf(buf, size, "%ssnap-%016" PRIx64 "-%016" PRIx64 "-%08" PRIx32 ".dsnap",
             prefix, d.seg, d.entry, d.slot);
}

static int parse_name(const char *name, struct dlog_dlsn *d)
{
    char check[64];
    unsigned long long seg, entry;
    unsigned int slot;
    if (strlen(name) != 5 + 16 + 1 + 16 + 1 + 8 + 6 ||
        sscanf(name, "snap-%16llx-%16llx-%8x.dsnap", &seg, &entry, &slot) != 3)
        return -1;
    *d = (struct dlog_dlsn){seg, entry, slot};
    file_name(check, sizeof check, "", *d);
    return strcmp(check, name) == 0 ? 0 : -1;
}

static int newest_first(const void *a, const void *b)
{
    const struct snap_file *x = a, *y = b;
    return dlog_dlsn_cmp(y->dlsn, x->dlsn);
}

int snap_list(struct dlog_sm *sm, struct snap_file **files, size_t *n)
{
    *files = NULL;
    *n = 0;
    if (sm->dir_fd < 0)
        return 0;
    int fd = dup(sm->dir_fd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return sm_fail(sm, DLOG_EIO, "cannot list %s: %s", sm->snapshot_dir,
                       strerror(errno));
    }
    rewinddir(dir);
    size_t cap = 0;
    struct snap_file *v = NULL;
    int rv = 0;
    struct dirent *de;
    while ((de = readdir(dir)) != NULL) {
        struct dlog_dlsn d;
        if (parse_name(de->d_name, &d) != 0)
            continue;
        if (*n == cap) {
            size_t nc = cap ? cap * 2 : 8;
            struct snap_file *nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                rv = DLOG_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[*n].dlsn = d;
        /* parse_name checked that de->d_name is exactly this name */
        file_name(v[*n].name, sizeof v[*n].name, "", d);
        (*n)++;
    }
    closedir(dir);
    if (rv != 0) {
        free(v);
        *n = 0;
        return rv;
    }
    if (*n > 0)
        qsort(v, *n, sizeof *v, newest_first);
    *files = v;
    return 0;
}

int snap_local_take(struct dlog_sm *sm, int app)
{
    char tmp[80], name[80];
    struct dlog_snapshot_writer w;
    struct snap_header h = {.flags = app ? SNAP_F_APP : 0,
                            .dlsn = sm->applied,
                            .total = sm->total,
                            .stream_id = sm->stream_id,
                            .wall_ms = clock_wall_ms()};
    file_name(tmp, sizeof tmp, ".tmp-", h.dlsn);
    file_name(name, sizeof name, "", h.dlsn);
    int fd = openat(sm->dir_fd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return sm_fail(sm, io_err(errno), "create %s/%s: %s", sm->snapshot_dir, tmp,
                       strerror(errno));
    int rv = snap_writer_init(&w, fd, NULL, &h);
    if (rv == 0)
        rv = snap_write_state(sm, &w, app);
    snap_writer_free(&w);
    if (rv == 0 && fsync(fd) != 0)
        rv = io_err(errno);
    if (close(fd) != 0 && rv == 0)
        rv = io_err(errno);
    if (rv == 0 && renameat(sm->dir_fd, tmp, sm->dir_fd, name) != 0)
        rv = io_err(errno);
    if (rv == 0 && fsync(sm->dir_fd) != 0)
        rv = io_err(errno);
    if (rv != 0) {
        unlinkat(sm->dir_fd, tmp, 0);
        return sm_fail(sm, rv, "write snapshot %s/%s: %s", sm->snapshot_dir, name,
                       dlog_strerror(rv));
    }
    sm->last_local = h.dlsn;
    return 0;
}

static int fd_src(void *arg, void *p, size_t n)
{
    int fd = *(int *)arg;
    uint8_t *b = p;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, b + got, n - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return DLOG_EIO;
        if (k == 0)
            return got == 0 ? DLOG_EEOF : DLOG_ECORRUPT;
        got += (size_t)k;
    }
    return 0;
}

/* Opens f and a reader on it; checks that the header matches the name. */
static int open_file(struct dlog_sm *sm, const struct snap_file *f, int *fd,
                     struct dlog_snapshot_reader *r)
{
    *fd = openat(sm->dir_fd, f->name, O_RDONLY | O_CLOEXEC);
    if (*fd < 0) {
        memset(r, 0, sizeof *r);
        return DLOG_EIO;
    }
    int rv = snap_reader_init(r, fd_src, fd);
    if (rv == 0 && dlog_dlsn_cmp(r->hdr.dlsn, f->dlsn) != 0)
        rv = DLOG_ECORRUPT;
    return rv;
}

int snap_local_verify(struct dlog_sm *sm, const struct snap_file *f, int need_app)
{
    struct dlog_snapshot_reader r;
    int fd;
    int rv = open_file(sm, f, &fd, &r);
    if (rv == 0 && need_app && !(r.hdr.flags & SNAP_F_APP))
        rv = DLOG_ECORRUPT;
    if (rv == 0 && r.hdr.stream_id != sm->stream_id)
        rv = DLOG_ECORRUPT;
    if (rv == 0)
        rv = snap_reader_drain(&r);
    snap_reader_free(&r);
    if (fd >= 0)
        close(fd);
    return rv;
}

int snap_local_restore(struct dlog_sm *sm, const struct snap_file *f, int app)
{
    struct dlog_snapshot_reader r;
    int fd;
    int rv = open_file(sm, f, &fd, &r);
    if (rv == 0)
        rv = snap_restore_state(sm, &r, app);
    snap_reader_free(&r);
    if (fd >= 0)
        close(fd);
    if (rv == 0)
        sm->last_local = f->dlsn;
    return rv;
}

void snap_local_prune(struct dlog_sm *sm)
{
    struct snap_file *v;
    size_t n;
    if (snap_list(sm, &v, &n) != 0)
        return;
    int keep = sm->o.keep_snapshots > 0 ? sm->o.keep_snapshots : 1;
    for (size_t i = (size_t)keep; i < n; i++)
        if (unlinkat(sm->dir_fd, v[i].name, 0) != 0)
            log_warn(SM_LOG, "cannot delete %s/%s: %s", sm->snapshot_dir, v[i].name,
                     strerror(errno));
    free(v);
    /* Temporary files left by a crash. */
    int fd = dup(sm->dir_fd);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (dir == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    rewinddir(dir);
    struct dirent *de;
    while ((de = readdir(dir)) != NULL)
        if (strncmp(de->d_name, ".tmp-snap-", 10) == 0)
            unlinkat(sm->dir_fd, de->d_name, 0);
    closedir(dir);
}
