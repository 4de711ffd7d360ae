/*
 * Stream ownership among proxies: see owner.h.
 */
#include "proxy/owner.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/errmsg.h"
#include "base/log.h"

#define PX_PREFIX  "px/"
#define OWN_PREFIX "own/"

/* Another proxy as this one last saw its px key. */
struct peer {
    char id[OWNER_ID_MAX + 1];
    char addr[OWNER_ADDR_MAX + 1];
    uint64_t version; /* of its px key */
    uint64_t seen_ns; /* when the version last moved (or first seen) */
    struct peer *next;
};

/* A stream this proxy owns. */
struct owned {
    uint64_t id;
    int lost; /* found with another owner (or none) */
    struct owned *next;
};

struct owner {
    struct dlog_meta_ops *meta;
    char self[OWNER_ID_MAX + 1];
    char addr[OWNER_ADDR_MAX + 1];
    char px_key[META_KEY_MAX + 1];
    uint64_t interval_ms, lease_ms;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    /* under mu */
    int stop;
    int store_down;   /* the last heartbeat failed */
    uint64_t last_ns; /* when the last round ended */
    struct peer *peers;
    struct owned *owned;
    unsigned lost_gen;
};

static void own_key(uint64_t id, char *key, size_t len)
{
    snprintf(key, len, OWN_PREFIX "%" PRIu64, id);
}

/* "<holder>\n<user epoch>" → holder and epoch; -1 if malformed. */
static int own_decode(const struct bytes *v, char *holder, uint64_t *user_epoch)
{
    const char *p = (const char *)v->p;
    const char *nl = v->len > 0 ? memchr(p, '\n', v->len) : NULL;
    if (nl == NULL || nl == p || (size_t)(nl - p) > OWNER_ID_MAX)
        return -1;
    size_t n = (size_t)(nl - p), rest = v->len - n - 1;
    char num[24];
    if (rest == 0 || rest >= sizeof num)
        return -1;
    memcpy(num, nl + 1, rest);
    num[rest] = '\0';
    char *end;
    unsigned long long e = strtoull(num, &end, 10);
    if (*end != '\0')
        return -1;
    memcpy(holder, p, n);
    holder[n] = '\0';
    *user_epoch = e;
    return 0;
}

static int own_put(struct owner *o, uint64_t id, uint64_t user_epoch, uint64_t *version)
{
    char key[META_KEY_MAX + 1], val[OWNER_ID_MAX + 32];
    own_key(id, key, sizeof key);
    int n = snprintf(val, sizeof val, "%s\n%" PRIu64, o->self, user_epoch);
    return o->meta->kv_put(o->meta, key, val, (size_t)n, version);
}

/* ---------------------------------------------------------------- peers (under mu) */

static struct peer *peer_find(struct owner *o, const char *id)
{
    for (struct peer *p = o->peers; p != NULL; p = p->next)
        if (strcmp(p->id, id) == 0)
            return p;
    return NULL;
}

static int peer_alive(const struct owner *o, const struct peer *p, uint64_t now)
{
    return p != NULL && now - p->seen_ns < o->lease_ms * NS_PER_MS;
}

/* Seen renewing lately (a live proxy's key moves every interval; allow for
 * the two periods drifting): worth sending a client to. */
static int peer_fresh(const struct owner *o, const struct peer *p, uint64_t now)
{
    return now - p->seen_ns < o->interval_ms * NS_PER_MS * 5 / 2;
}

/* The px keys just listed replace what was known; versions that moved
 * refresh their seen time. */
static void peers_update(struct owner *o, const struct meta_kv *items, size_t n)
{
    uint64_t now = clock_now_ns();
    struct peer *old = o->peers, *fresh = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *id = items[i].key + strlen(PX_PREFIX);
        if (*id == '\0' || strlen(id) > OWNER_ID_MAX || strcmp(id, o->self) == 0)
            continue;
        struct peer *p = NULL, **pp;
        for (pp = &old; *pp != NULL; pp = &(*pp)->next)
            if (strcmp((*pp)->id, id) == 0) {
                p = *pp;
                *pp = p->next;
                break;
            }
        if (p == NULL && (p = calloc(1, sizeof *p)) != NULL) {
            snprintf(p->id, sizeof p->id, "%s", id);
            p->seen_ns = now;
            p->version = items[i].version;
        }
        if (p == NULL)
            continue; /* out of memory: unknown, so never taken over from */
        if (p->version != items[i].version) {
            p->version = items[i].version;
            p->seen_ns = now;
        }
        size_t len = items[i].value.len < OWNER_ADDR_MAX ? items[i].value.len : 0;
        memcpy(p->addr, items[i].value.p, len);
        p->addr[len] = '\0';
        p->next = fresh;
        fresh = p;
    }
    while (old != NULL) { /* their keys are gone: removed at a graceful stop */
        struct peer *p = old;
        old = p->next;
        free(p);
    }
    o->peers = fresh;
}

/* ---------------------------------------------------------------- the thread */

/* One round: the heartbeat, the other proxies, the streams owned. */
static void round_once(struct owner *o)
{
    uint64_t ver = META_KV_ANY;
    int rv = o->meta->kv_put(o->meta, o->px_key, o->addr, strlen(o->addr), &ver);
    uint64_t now = clock_now_ns();
    pthread_mutex_lock(&o->mu);
    if (rv != 0 && !o->store_down)
        log_warn("proxy", "%s: cannot renew %s: %s (%s)", o->self, o->px_key,
                 dlog_strerror(rv), o->meta->errmsg);
    /* While this proxy could not renew its own key, or its rounds were late
     * (a stalled process), the others' keys standing still proves nothing:
     * their silence is counted from now. */
    if (rv == 0 && (o->store_down || (o->last_ns != 0 &&
                                      now - o->last_ns > 2 * o->interval_ms * NS_PER_MS)))
        for (struct peer *p = o->peers; p != NULL; p = p->next)
            p->seen_ns = now;
    o->store_down = rv != 0;
    pthread_mutex_unlock(&o->mu);
    struct meta_kv *items = NULL;
    size_t n = 0;
    rv = o->meta->kv_list(o->meta, PX_PREFIX, &items, &n);
    if (rv == 0) {
        pthread_mutex_lock(&o->mu);
        peers_update(o, items, n);
        pthread_mutex_unlock(&o->mu);
        meta_kv_list_free(items, n);
    }
    pthread_mutex_lock(&o->mu);
    o->last_ns = clock_now_ns();
    pthread_mutex_unlock(&o->mu);
    /* The streams owned: still ours? */
    pthread_mutex_lock(&o->mu);
    size_t cnt = 0;
    for (struct owned *w = o->owned; w != NULL; w = w->next)
        cnt += !w->lost;
    uint64_t *ids = cnt ? malloc(cnt * sizeof *ids) : NULL;
    size_t k = 0;
    for (struct owned *w = o->owned; w != NULL && ids != NULL; w = w->next)
        if (!w->lost)
            ids[k++] = w->id;
    pthread_mutex_unlock(&o->mu);
    for (size_t i = 0; i < k; i++) {
        char key[META_KEY_MAX + 1], holder[OWNER_ID_MAX + 1] = "";
        struct bytes v;
        uint64_t ue;
        own_key(ids[i], key, sizeof key);
        bytes_init(&v);
        rv = o->meta->kv_get(o->meta, key, &v, NULL);
        int mine =
            rv == 0 && own_decode(&v, holder, &ue) == 0 && strcmp(holder, o->self) == 0;
        bytes_free(&v);
        if (mine || (rv != 0 && rv != DLOG_ENOTFOUND))
            continue; /* ours, or the store cannot tell now */
        pthread_mutex_lock(&o->mu);
        for (struct owned *w = o->owned; w != NULL; w = w->next)
            if (w->id == ids[i] && !w->lost) {
                w->lost = 1;
                o->lost_gen++;
                log_info("proxy", "%s: stream %" PRIu64 " is owned by %s now", o->self,
                         ids[i], holder[0] ? holder : "nobody");
            }
        pthread_mutex_unlock(&o->mu);
    }
    free(ids);
}

static void *owner_main(void *arg)
{
    struct owner *o = arg;
    pthread_mutex_lock(&o->mu);
    while (!o->stop) {
        struct timespec ts;
        clock_abs_timespec(clock_deadline_ms((int64_t)o->interval_ms), &ts);
        pthread_cond_timedwait(&o->cv, &o->mu, &ts);
        if (o->stop)
            break;
        pthread_mutex_unlock(&o->mu);
        round_once(o);
        pthread_mutex_lock(&o->mu);
    }
    pthread_mutex_unlock(&o->mu);
    return NULL;
}

/* ---------------------------------------------------------------- entry points */

int owner_open(struct dlog_meta_ops *m, const char *self, const char *addr,
               uint64_t interval_ms, uint64_t lease_ms, struct owner **out, char *errmsg)
{
    if (strlen(self) == 0 || strlen(self) > OWNER_ID_MAX || strchr(self, '\n') != NULL) {
        errmsg_printf(errmsg, "proxy id '%.80s': 1..%d bytes, no newline", self,
                      OWNER_ID_MAX);
        return DLOG_EINVAL;
    }
    struct owner *o = calloc(1, sizeof *o);
    if (o == NULL)
        return DLOG_ENOMEM;
    o->meta = m;
    snprintf(o->self, sizeof o->self, "%s", self);
    snprintf(o->addr, sizeof o->addr, "%s", addr);
    snprintf(o->px_key, sizeof o->px_key, PX_PREFIX "%s", self);
    o->lease_ms = lease_ms ? lease_ms : OWNER_LEASE_MS;
    o->interval_ms = interval_ms ? interval_ms : o->lease_ms / 4;
    pthread_mutex_init(&o->mu, NULL);
    pthread_cond_init(&o->cv, NULL); /* clock_abs_timespec is CLOCK_REALTIME based */
    round_once(o);
    if (interval_ms == 0) { /* rounds by owner_tick */
        *out = o;
        return 0;
    }
    if (pthread_create(&o->thread, NULL, owner_main, o) != 0) {
        owner_close(o, 0);
        return DLOG_ENOMEM;
    }
    o->started = 1;
    *out = o;
    return 0;
}

void owner_tick(struct owner *o)
{
    round_once(o);
}

const char *owner_self(const struct owner *o)
{
    return o->self;
}

void owner_close(struct owner *o, int release)
{
    if (o == NULL)
        return;
    if (o->started) {
        pthread_mutex_lock(&o->mu);
        o->stop = 1;
        pthread_cond_signal(&o->cv);
        pthread_mutex_unlock(&o->mu);
        pthread_join(o->thread, NULL);
    }
    while (o->owned != NULL) {
        struct owned *w = o->owned;
        o->owned = w->next;
        if (release && !w->lost)
            owner_release(o, w->id);
        free(w);
    }
    if (release)
        o->meta->kv_remove(o->meta, o->px_key, META_KV_ANY);
    while (o->peers != NULL) {
        struct peer *p = o->peers;
        o->peers = p->next;
        free(p);
    }
    pthread_mutex_destroy(&o->mu);
    pthread_cond_destroy(&o->cv);
    free(o);
}

/* Remembers stream id as owned (under mu). */
static int note_owned(struct owner *o, uint64_t id)
{
    struct owned *w;
    for (w = o->owned; w != NULL; w = w->next)
        if (w->id == id) {
            w->lost = 0;
            return 0;
        }
    if ((w = calloc(1, sizeof *w)) == NULL)
        return DLOG_ENOMEM;
    w->id = id;
    w->next = o->owned;
    o->owned = w;
    return 0;
}

int owner_claim(struct owner *o, uint64_t stream_id, uint64_t epoch_now,
                struct owner_claim *out, char *errmsg)
{
    char key[META_KEY_MAX + 1];
    own_key(stream_id, key, sizeof key);
    memset(out, 0, sizeof *out);
    for (int attempt = 0; attempt < 4; attempt++) {
        struct bytes v;
        uint64_t ver = 0, ue = epoch_now;
        bytes_init(&v);
        int rv = o->meta->kv_get(o->meta, key, &v, &ver);
        if (rv == 0 && own_decode(&v, out->holder, &ue) != 0) {
            log_warn("proxy", "%s: %s holds a malformed owner; taking it over", o->self,
                     key);
            out->holder[0] = '\0';
            ue = epoch_now;
        }
        bytes_free(&v);
        if (rv == DLOG_ENOTFOUND) {
            ver = META_KV_CREATE;
            out->holder[0] = '\0';
        } else if (rv != 0) {
            errmsg_printf(errmsg, "reading the owner of stream %" PRIu64 ": %s",
                          stream_id, o->meta->errmsg);
            return rv;
        }
        pthread_mutex_lock(&o->mu);
        int mine = strcmp(out->holder, o->self) == 0;
        struct peer *p = out->holder[0] && !mine ? peer_find(o, out->holder) : NULL;
        uint64_t now = clock_now_ns();
        /* An owner at this proxy's own address is an earlier life of this
         * proxy (it held the port this one listens on): dead for sure. */
        if (p != NULL && strcmp(p->addr, o->addr) == 0)
            p = NULL;
        if (p != NULL && peer_alive(o, p, now)) {
            uint64_t left = p->seen_ns + o->lease_ms * NS_PER_MS - now;
            if (p->addr[0] != '\0' && peer_fresh(o, p, now)) {
                out->state = OWNER_OTHER;
                snprintf(out->addr, sizeof out->addr, "%s", p->addr);
            } else {
                out->state = OWNER_WAIT;
                out->wait_ms = left / NS_PER_MS + 1;
            }
            pthread_mutex_unlock(&o->mu);
            return 0;
        }
        if (mine) {
            rv = note_owned(o, stream_id);
            pthread_mutex_unlock(&o->mu);
            if (rv != 0)
                return rv;
            out->state = OWNER_SELF;
            out->user_epoch = ue;
            return 0;
        }
        pthread_mutex_unlock(&o->mu);
        /* No owner, or a dead one: take it, against the version read. */
        rv = own_put(o, stream_id, ue, &ver);
        if (rv == DLOG_ECONFLICT || rv == DLOG_ENOTFOUND)
            continue; /* someone else moved first: look again */
        if (rv != 0) {
            errmsg_printf(errmsg, "taking stream %" PRIu64 ": %s", stream_id,
                          o->meta->errmsg);
            return rv;
        }
        if (out->holder[0] != '\0')
            log_info("proxy", "%s: took stream %" PRIu64 " over from %s", o->self,
                     stream_id, out->holder);
        pthread_mutex_lock(&o->mu);
        rv = note_owned(o, stream_id);
        pthread_mutex_unlock(&o->mu);
        if (rv != 0)
            return rv;
        out->state = OWNER_SELF;
        out->taken = 1;
        out->user_epoch = ue;
        return 0;
    }
    errmsg_printf(errmsg, "the owner of stream %" PRIu64 " keeps changing", stream_id);
    return DLOG_EUNAVAILABLE;
}

int owner_set_user_epoch(struct owner *o, uint64_t stream_id, uint64_t epoch,
                         char *errmsg)
{
    char key[META_KEY_MAX + 1], holder[OWNER_ID_MAX + 1];
    own_key(stream_id, key, sizeof key);
    for (int attempt = 0; attempt < 4; attempt++) {
        struct bytes v;
        uint64_t ver = 0, ue = 0;
        bytes_init(&v);
        int rv = o->meta->kv_get(o->meta, key, &v, &ver);
        int mine =
            rv == 0 && own_decode(&v, holder, &ue) == 0 && strcmp(holder, o->self) == 0;
        bytes_free(&v);
        if (rv != 0 && rv != DLOG_ENOTFOUND) {
            errmsg_printf(errmsg, "reading the owner of stream %" PRIu64 ": %s",
                          stream_id, o->meta->errmsg);
            return rv;
        }
        if (!mine) {
            errmsg_printf(errmsg, "stream %" PRIu64 " is not owned by this proxy anymore",
                          stream_id);
            return DLOG_ENOTOWNER;
        }
        if (ue >= epoch)
            return 0;
        rv = own_put(o, stream_id, epoch, &ver);
        if (rv == 0)
            return 0;
        if (rv != DLOG_ECONFLICT) {
            errmsg_printf(errmsg, "writing the owner of stream %" PRIu64 ": %s",
                          stream_id, o->meta->errmsg);
            return rv;
        }
    }
    errmsg_printf(errmsg, "the owner of stream %" PRIu64 " keeps changing", stream_id);
    return DLOG_EUNAVAILABLE;
}

void owner_release(struct owner *o, uint64_t stream_id)
{
    char key[META_KEY_MAX + 1], holder[OWNER_ID_MAX + 1];
    struct bytes v;
    uint64_t ver = 0, ue;
    own_key(stream_id, key, sizeof key);
    bytes_init(&v);
    int rv = o->meta->kv_get(o->meta, key, &v, &ver);
    if (rv == 0 && own_decode(&v, holder, &ue) == 0 && strcmp(holder, o->self) == 0)
        o->meta->kv_remove(o->meta, key, ver); /* a conflict: someone took it */
    bytes_free(&v);
    pthread_mutex_lock(&o->mu);
    for (struct owned **pp = &o->owned; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->id == stream_id) {
            struct owned *w = *pp;
            *pp = w->next;
            free(w);
            break;
        }
    pthread_mutex_unlock(&o->mu);
}

unsigned owner_lost_gen(struct owner *o)
{
    pthread_mutex_lock(&o->mu);
    unsigned g = o->lost_gen;
    pthread_mutex_unlock(&o->mu);
    return g;
}

int owner_owns(struct owner *o, uint64_t stream_id)
{
    int yes = 0;
    pthread_mutex_lock(&o->mu);
    for (struct owned *w = o->owned; w != NULL; w = w->next)
        if (w->id == stream_id)
            yes = !w->lost;
    pthread_mutex_unlock(&o->mu);
    return yes;
}

int owner_lookup(struct owner *o, uint64_t stream_id, char *addr, size_t len)
{
    char key[META_KEY_MAX + 1], holder[OWNER_ID_MAX + 1];
    struct bytes v;
    uint64_t ue;
    int found = 0;
    own_key(stream_id, key, sizeof key);
    bytes_init(&v);
    if (o->meta->kv_get(o->meta, key, &v, NULL) == 0 &&
        own_decode(&v, holder, &ue) == 0 && strcmp(holder, o->self) != 0) {
        pthread_mutex_lock(&o->mu);
        struct peer *p = peer_find(o, holder);
        if (p != NULL && peer_alive(o, p, clock_now_ns()) && p->addr[0] != '\0') {
            snprintf(addr, len, "%s", p->addr);
            found = 1;
        }
        pthread_mutex_unlock(&o->mu);
    }
    bytes_free(&v);
    return found;
}
