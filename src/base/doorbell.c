#include "base/doorbell.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dlog/err.h>

static long futex(uint32_t *uaddr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

void doorbell_init(struct doorbell *d)
{
    d->map = NULL;
    d->maplen = 0;
    d->shared = 0;
    d->local = 0;
    d->word = &d->local;
}

int doorbell_open_file(struct doorbell *d, const char *path)
{
    long page = sysconf(_SC_PAGESIZE);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return DLOG_EIO;
    struct stat st;
    if (fstat(fd, &st) != 0 || (st.st_size < page && ftruncate(fd, page) != 0)) {
        close(fd);
        return DLOG_EIO;
    }
    void *m = mmap(NULL, (size_t)page, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return DLOG_EIO;
    d->map = m;
    d->maplen = (size_t)page;
    d->shared = 1;
    d->local = 0;
    d->word = m;
    return 0;
}

void doorbell_close(struct doorbell *d)
{
    if (d->map != NULL)
        munmap(d->map, d->maplen);
    doorbell_init(d);
}

uint32_t doorbell_read(const struct doorbell *d)
{
    return __atomic_load_n(d->word, __ATOMIC_ACQUIRE);
}

void doorbell_ring(struct doorbell *d)
{
    __atomic_add_fetch(d->word, 1, __ATOMIC_ACQ_REL);
    futex(d->word, d->shared ? FUTEX_WAKE : FUTEX_WAKE_PRIVATE, INT32_MAX, NULL);
}

int doorbell_wait(struct doorbell *d, uint32_t seen, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (doorbell_read(d) != seen)
        return 0;
    if (timeout_ms == 0)
        return DLOG_ETIMEDOUT;
    if (timeout_ms > 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    long rv = futex(d->word, d->shared ? FUTEX_WAIT : FUTEX_WAIT_PRIVATE, seen, tsp);
    if (rv != 0 && errno == ETIMEDOUT)
        return DLOG_ETIMEDOUT;
    return 0;
}
