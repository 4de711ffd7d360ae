/*
 * The embedded backend: namespace open/close for "mem:", "file:DIR" and
 * "cluster://H:P,..." (the core over meta_raft and seg_raft),
 * and its vtable.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/embedded.h"

/*
 * LMDB allows one environment handle per file per process: a second
 * mdb_env_open of the same file, once closed, drops the first one's locks.
 * So the file: stores are shared by every namespace of this process that
 * opens the same directory, counted by references. This registry is the
 * only process-wide state of the backend.
 */
struct shared_stores {
    char *dir; /* realpath */
    struct dlog_meta_ops *meta;
    struct dlog_seg_ops *seg;
    int refs;
    struct shared_stores *next;
};
static pthread_mutex_t registry_mu = PTHREAD_MUTEX_INITIALIZER;
static struct shared_stores *registry;

static void release_stores(struct shared_stores *sh)
{
    pthread_mutex_lock(&registry_mu);
    if (--sh->refs == 0) {
        for (struct shared_stores **pp = &registry; *pp; pp = &(*pp)->next)
            if (*pp == sh) {
                *pp = sh->next;
                break;
            }
        sh->seg->close(sh->seg);
        sh->meta->close(sh->meta);
        free(sh->dir);
        free(sh);
    }
    pthread_mutex_unlock(&registry_mu);
}

static uint32_t emb_notify_seq(struct dlog_ns *ns)
{
    struct embedded *e = embedded_of(ns);
    return e->seg->notify_seq(e->seg);
}

static int emb_notify_wait(struct dlog_ns *ns, uint32_t seen, int timeout_ms)
{
    struct embedded *e = embedded_of(ns);
    return e->seg->notify_wait(e->seg, seen, timeout_ms);
}

static void emb_close(struct dlog_ns *ns)
{
    struct embedded *e = embedded_of(ns);
    if (e == NULL)
        return;
    if (e->shared != NULL) {
        release_stores(e->shared);
    } else {
        if (e->seg != NULL)
            e->seg->close(e->seg);
        if (e->meta != NULL)
            e->meta->close(e->meta);
    }
    free(e);
    ns->impl = NULL;
}

static const struct dlog_backend_ops embedded_ops = {
    .version = DLOG_BACKEND_VERSION,
    .name = "embedded",
    .close = emb_close,
    .stream_create = emb_create,
    .stream_delete = emb_delete,
    .stream_list = emb_list,
    .stream_describe = emb_describe,
    .stream_truncate = emb_truncate,
    .stream_apply_retention = emb_retention,
    .writer_open = ewriter_open,
    .write = ewriter_write,
    .writer_flush = ewriter_flush,
    .writer_close = ewriter_close,
    .reader_open = ereader_open,
    .read = ereader_read,
    .reader_close = ereader_close,
    .notify_seq = emb_notify_seq,
    .notify_wait = emb_notify_wait,
    .limits_set = emb_limits_set,
    .limits_get = emb_limits_get,
    .limits_stats = emb_limits_stats,
};

/* mkdir -p; 0 or -1 with errno. */
static int ensure_dir(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0755) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        errno = ENOTDIR;
    }
    return -1;
}

static int open_file_stores(const char *dir, struct dlog_ns *ns, struct embedded *e,
                            char *errmsg)
{
    char path[4096], *real = realpath(dir, NULL);
    int rv = 0;
    if (real == NULL) {
        errmsg_printf(errmsg, "cannot resolve %s: %s", dir, strerror(errno));
        return DLOG_ENOTDIR;
    }
    pthread_mutex_lock(&registry_mu);
    struct shared_stores *sh = registry;
    while (sh != NULL && strcmp(sh->dir, real) != 0)
        sh = sh->next;
    if (sh == NULL) {
        sh = calloc(1, sizeof *sh);
        if (sh == NULL) {
            rv = DLOG_ENOMEM;
            goto out;
        }
        snprintf(path, sizeof path, "%s/meta", real);
        rv = meta_lmdb_open(path, 0, &sh->meta, errmsg);
        if (rv == 0) {
            snprintf(path, sizeof path, "%s/data", real);
            rv = seg_lmdb_open(path, ns->opts.map_size, ns->opts.no_sync, &sh->seg,
                               errmsg);
            if (rv != 0)
                sh->meta->close(sh->meta);
        }
        if (rv != 0) {
            free(sh);
            goto out;
        }
        sh->dir = real;
        real = NULL;
        sh->next = registry;
        registry = sh;
    }
    sh->refs++;
    e->shared = sh;
    e->meta = sh->meta;
    e->seg = sh->seg;
out:
    pthread_mutex_unlock(&registry_mu);
    free(real);
    return rv;
}

struct dlog_meta_ops *embedded_meta(struct dlog_ns *ns)
{
    return ns->ops == &embedded_ops ? embedded_of(ns)->meta : NULL;
}

int embedded_open(const char *uri, struct dlog_ns *ns, char *errmsg)
{
    struct embedded *e = calloc(1, sizeof *e);
    int rv;
    if (e == NULL)
        return DLOG_ENOMEM;
    ns->impl = e;
    ns->ops = &embedded_ops;
    if (strcmp(uri, "mem:") == 0) {
        rv = meta_mem_open(&e->meta);
        if (rv == 0)
            rv = seg_mem_open(&e->seg);
        if (rv != 0)
            errmsg_copy(errmsg, "mem: out of memory");
    } else if (strncmp(uri, "file:", 5) == 0 && uri[5] != '\0') {
        const char *dir = uri + 5;
        char path[4096];
        if (strlen(dir) > 4000) {
            errmsg_copy(errmsg, "file: path too long");
            rv = DLOG_EINVAL;
            goto err;
        }
        for (int i = 0; i < 3; i++) {
            snprintf(path, sizeof path,
                     i == 0   ? "%s"
                     : i == 1 ? "%s/meta"
                              : "%s/data",
                     dir);
            if (ensure_dir(path) != 0) {
                errmsg_printf(errmsg, "cannot create directory %s: %s", path,
                              strerror(errno));
                rv = errno == ENOSPC ? DLOG_ENOSPC : DLOG_ENOTDIR;
                goto err;
            }
        }
        rv = open_file_stores(dir, ns, e, errmsg);
    } else if (strncmp(uri, "cluster://", 10) == 0 && uri[10] != '\0') {
        /* Cluster mode: the metadata group and the data groups of the nodes
         * named (docs/cluster.md); the core runs here, over node calls. */
        rv = meta_raft_open(uri + 10, &e->meta, errmsg);
        if (rv == 0)
            rv = seg_raft_open(uri + 10, &e->seg, errmsg);
    } else {
        errmsg_printf(
            errmsg,
            "unrecognised namespace URI '%.100s' (use mem:, file:DIR, cluster://H:P,...)",
            uri);
        rv = DLOG_EURI;
    }
    if (rv == 0)
        return 0;
err:
    emb_close(ns);
    return rv;
}
