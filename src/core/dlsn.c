/* DLSN compare, format and parse; dlog_buf. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dlog/dlog.h>

int dlog_dlsn_cmp(struct dlog_dlsn a, struct dlog_dlsn b)
{
    if (a.seg != b.seg)
        return a.seg < b.seg ? -1 : 1;
    if (a.entry != b.entry)
        return a.entry < b.entry ? -1 : 1;
    if (a.slot != b.slot)
        return a.slot < b.slot ? -1 : 1;
    return 0;
}

char *dlog_dlsn_format(struct dlog_dlsn d, char *buf, size_t size)
{
    snprintf(buf, size, "%" PRIu64 "/%" PRIu64 "/%" PRIu32, d.seg, d.entry, d.slot);
    return buf;
}

/* Parse one decimal component; *end gets the first byte after it. */
static int parse_u64(const char *s, uint64_t max, uint64_t *out, const char **end)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *e;
    unsigned long long v = strtoull(s, &e, 10);
    if (errno != 0 || v > max)
        return -1;
    *out = v;
    *end = e;
    return 0;
}

int dlog_dlsn_parse(const char *s, struct dlog_dlsn *out)
{
    uint64_t seg, entry, slot;
    const char *p;
    if (s == NULL || out == NULL)
        return DLOG_EINVAL;
    if (parse_u64(s, UINT64_MAX, &seg, &p) || *p != '/' ||
        parse_u64(p + 1, UINT64_MAX, &entry, &p) || *p != '/' ||
        parse_u64(p + 1, UINT32_MAX, &slot, &p) || *p != '\0')
        return DLOG_EINVAL;
    out->seg = seg;
    out->entry = entry;
    out->slot = (uint32_t)slot;
    return 0;
}

int dlog_buf_append(struct dlog_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        void *q = realloc(b->p, cap);
        if (q == NULL)
            return DLOG_ENOMEM;
        b->p = q;
        b->cap = cap;
    }
    if (n > 0)
        memcpy((char *)b->p + b->len, p, n);
    b->len += n;
    return 0;
}

void dlog_buf_free(struct dlog_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
