/* Where the transcoding table comes from (transcode.h): per `transcode = on`
 * cluster, its descriptor set file or what gRPC server reflection of its
 * endpoints answered; the table is rebuilt from all of them whenever one
 * changes, and handed to the snapshot.
 * Invariant: main thread only. A source keeps its last good descriptors
 * (file bytes or reflected files) until new ones replace them, so a failed
 * refetch never takes REST routes away.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "transcode"
#include "proxy/filters/transcode.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "balancer/epset.h"
#include "conf/conf.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/tls.h"
#include "proxy/conn.h"
#include "proxy/reflect.h"

#define RETRY_MIN_MS 500
#define RETRY_MAX_MS 30000
#define MAX_DESC     (64 * 1024 * 1024) /* a descriptor set file */

struct rest_src {
    struct proxy_rest *rest;
    char *cluster;   /* its name */
    uint32_t index;  /* in the conf */
    bool reflection; /* else a file */
    bool ndjson;
    /* file */
    uint8_t *set;
    size_t setlen;
    /* reflection: the last answer (owned copies), the fetch running */
    struct tc_bytes *files;
    size_t nfiles;
    bool fetched; /* |files| is an answer (possibly of zero services) */
    struct proxy_reflect *fetch;
    size_t next_ep;   /* the endpoint to ask next, by position in the cluster */
    uint32_t backoff; /* ms before the next round, after a round failed */
    struct event *retry;
    char last_why[256];
};

struct proxy_rest {
    struct event_base *base;
    struct bal_epset *const *eps;
    void (*changed)(void *arg);
    void *arg;
    const struct conf *conf;
    struct proxy_flusher fl;
    struct rest_src **src;
    size_t nsrc;
    struct tc_table *table;
};

static int read_file(const char *path, uint8_t **out, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    size_t n = 0, cap = 0;

    if (f == NULL) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t got;

        if (n == cap) {
            cap = cap == 0 ? 65536 : cap * 2;
            if (cap > MAX_DESC + 1) {
                snprintf(err, errlen, "%s is larger than %d bytes", path, MAX_DESC);
                free(buf);
                fclose(f);
                return -1;
            }
            buf = xreallocarray(buf, cap, 1);
        }
        got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        free(buf);
        fclose(f);
        return -1;
    }
    fclose(f);
    *out = buf;
    *len = n;
    return 0;
}

/* "FILE:LINE: [cluster.NAME] descriptors: " before |why|. */
static void key_err(const struct conf *c, const struct conf_cluster *cc, const char *why, char *err,
                    size_t errlen)
{
    char sect[160];

    snprintf(sect, sizeof(sect), "cluster.%s", cc->name);
    snprintf(err, errlen, "%s:%d: [%s] descriptors: %s", c->path,
             conf_key_line(c, sect, "descriptors"), sect, why);
}

/* Reads and checks the descriptor set of |cc| into |*set|. */
static int load_set(const struct conf *c, const struct conf_cluster *cc, uint8_t **set, size_t *len,
                    char *err, size_t errlen)
{
    char why[512];
    struct tc_pool *p;

    if (read_file(cc->descriptors, set, len, why, sizeof(why)) != 0) {
        key_err(c, cc, why, err, errlen);
        return -1;
    }
    p = tc_pool_from_set(*set, *len, why, sizeof(why));
    if (p == NULL) {
        char msg[600];

        snprintf(msg, sizeof(msg), "%s: %s", cc->descriptors, why);
        key_err(c, cc, msg, err, errlen);
        free(*set);
        *set = NULL;
        return -1;
    }
    tc_pool_free(p);
    return 0;
}

static bool is_reflection(const struct conf_cluster *cc)
{
    return strcmp(cc->descriptors, "reflection") == 0;
}

/* Loads the REST module (transcode_pb.h) when a cluster of |c| transcodes;
 * else loads nothing: a switchyard without REST never maps libprotobuf. */
static int need_module(const struct conf *c, char *err, size_t errlen)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];
        char sect[160], why[1200];

        if (!cc->transcode)
            continue;
        if (tc_module_load(why, sizeof(why)) == 0)
            return 0;
        snprintf(sect, sizeof(sect), "cluster.%s", cc->name);
        snprintf(err, errlen, "%s:%d: [%s] transcode: %s", c->path,
                 conf_key_line(c, sect, "transcode"), sect, why);
        return -1;
    }
    return 0;
}

int proxy_rest_check(const struct conf *c, char *err, size_t errlen)
{
    if (need_module(c, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < c->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];
        uint8_t *set;
        size_t len;

        if (!cc->transcode || is_reflection(cc))
            continue;
        if (load_set(c, cc, &set, &len, err, errlen) != 0)
            return -1;
        free(set);
    }
    return 0;
}

/* ---- the table ---- */

struct warn_ctx {
    const char *cluster;
};

static void on_warn(const char *why, void *arg)
{
    const struct warn_ctx *w = arg;

    log_warn("cluster %s: REST rule left out: %s", w->cluster, why);
}

static void rebuild_table(struct proxy_rest *r)
{
    struct tc_table *t = tc_table_new();
    bool any = false;

    for (size_t i = 0; i < r->nsrc; i++) {
        struct rest_src *s = r->src[i];
        struct warn_ctx w = {.cluster = s->cluster};
        struct tc_pool *p = NULL;
        char why[512];
        size_t n;

        any = true;
        if (!s->reflection)
            p = tc_pool_from_set(s->set, s->setlen, why, sizeof(why));
        else if (s->fetched)
            p = tc_pool_from_files(s->files, s->nfiles, why, sizeof(why));
        else
            continue; /* no answer yet */
        if (p == NULL) {
            log_error("cluster %s: descriptors unusable: %s", s->cluster, why);
            continue;
        }
        n = tc_table_add_pool(t, p, s->ndjson, on_warn, &w);
        log_info("cluster %s: %zu REST binding(s) from %s", s->cluster, n,
                 s->reflection ? "server reflection" : "the descriptor set");
    }
    tc_table_unref(r->table);
    r->table = any ? t : NULL;
    if (!any)
        tc_table_unref(t);
}

/* ---- reflection ---- */

static void fetch_next(struct rest_src *s);

static void src_files_free(struct rest_src *s)
{
    for (size_t i = 0; i < s->nfiles; i++)
        free((void *)s->files[i].p);
    free(s->files);
    s->files = NULL;
    s->nfiles = 0;
}

static void on_reflected(void *arg, const struct tc_bytes *files, size_t n, const char *why)
{
    struct rest_src *s = arg;
    struct proxy_rest *r = s->rest;

    s->fetch = NULL;
    if (n == 0 && why != NULL) {
        snprintf(s->last_why, sizeof(s->last_why), "%s", why);
        log_debug("cluster %s: reflection: %s", s->cluster, why);
        s->next_ep++;
        fetch_next(s);
        return;
    }
    src_files_free(s);
    s->files = xcalloc(n + 1, sizeof(*s->files));
    for (size_t i = 0; i < n; i++) {
        uint8_t *p = xcalloc(1, files[i].n + 1);

        memcpy(p, files[i].p, files[i].n);
        s->files[i] = (struct tc_bytes){p, files[i].n};
    }
    s->nfiles = n;
    s->fetched = true;
    s->backoff = 0;
    s->next_ep = 0;
    log_info("cluster %s: server reflection answered with %zu file(s)", s->cluster, n);
    rebuild_table(r);
    r->changed(r->arg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    struct rest_src *s = arg;

    (void)fd;
    (void)what;
    s->next_ep = 0;
    fetch_next(s);
}

/* Asks the cluster's endpoints in turn; when a round fails, waits (doubling
 * up to RETRY_MAX_MS) and starts again: the endpoints may not be up yet. */
static void fetch_next(struct rest_src *s)
{
    struct proxy_rest *r = s->rest;
    const struct conf *c = r->conf;
    const struct conf_cluster *cc = &c->clusters[s->index];
    struct bal_epset *eps = *r->eps;
    size_t seen = 0;

    for (size_t i = 0; i < bal_epset_count(eps); i++) {
        struct bal_ep *ep = bal_epset_at(eps, i);
        const struct conf_target *t;
        struct tls_be *tb;
        SSL *ssl = NULL;
        char authority[300];

        if (ep->cluster != s->index || seen++ < s->next_ep)
            continue;
        t = &cc->targets[ep->target];
        tb = tls_be_get(c, s->index);
        if (tb != NULL && (ssl = tls_be_ssl_new(tb, t->host)) == NULL)
            continue;
        snprintf(authority, sizeof(authority), "%s", t->spec);
        s->fetch =
            proxy_reflect_start(r->base, &r->fl, (const struct sockaddr *)&ep->addr, ep->addrlen,
                                ssl, authority, cc->connect_timeout_ms + 5000, on_reflected, s);
        if (s->fetch != NULL) {
            log_debug("cluster %s: reflection from %s", s->cluster, ep->addr_str);
            return;
        }
        s->next_ep++;
    }
    /* A round without an answer. */
    s->backoff = s->backoff == 0 ? RETRY_MIN_MS : s->backoff * 2;
    if (s->backoff > RETRY_MAX_MS)
        s->backoff = RETRY_MAX_MS;
    if (seen == 0)
        snprintf(s->last_why, sizeof(s->last_why), "no endpoint (not resolved yet?)");
    if (!s->fetched || s->backoff >= RETRY_MAX_MS)
        log_warn("cluster %s: server reflection failed (%s); trying again in %u ms", s->cluster,
                 s->last_why, s->backoff);
    {
        struct timeval tv = {.tv_sec = s->backoff / 1000, .tv_usec = (s->backoff % 1000) * 1000};

        evtimer_add(s->retry, &tv);
    }
}

/* ---- life ---- */

static void src_free(struct rest_src *s)
{
    if (s == NULL)
        return;
    if (s->fetch != NULL)
        proxy_reflect_cancel(s->fetch);
    if (s->retry != NULL)
        event_free(s->retry);
    src_files_free(s);
    free(s->set);
    free(s->cluster);
    free(s);
}

struct proxy_rest *proxy_rest_new(struct event_base *base, struct bal_epset *const *eps,
                                  void (*changed)(void *arg), void *arg)
{
    struct proxy_rest *r = xcalloc(1, sizeof(*r));

    r->base = base;
    r->eps = eps;
    r->changed = changed;
    r->arg = arg;
    proxy_flusher_init(&r->fl, base);
    return r;
}

void proxy_rest_free(struct proxy_rest *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nsrc; i++)
        src_free(r->src[i]);
    free(r->src);
    tc_table_unref(r->table);
    /* Cancelled fetches are freed by the flush pass, which runs no more:
     * free their connections here. */
    while (r->fl.dirty != NULL) {
        struct proxy_conn *c = r->fl.dirty;

        r->fl.dirty = c->next_dirty;
        c->dirty = false;
        c->ops->destroy(c);
    }
    proxy_flusher_deinit(&r->fl);
    free(r);
}

int proxy_rest_apply(struct proxy_rest *r, const struct conf *c, char *err, size_t errlen)
{
    struct rest_src **src = NULL;
    size_t n = 0;

    if (need_module(c, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i < c->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];
        struct rest_src *s;

        if (!cc->transcode)
            continue;
        s = xcalloc(1, sizeof(*s));
        s->rest = r;
        s->cluster = xstrdup(cc->name);
        s->index = (uint32_t)i;
        s->ndjson = cc->stream_format == CONF_STREAM_NDJSON;
        s->reflection = is_reflection(cc);
        src = xreallocarray(src, n + 1, sizeof(*src));
        src[n++] = s;
        if (!s->reflection && load_set(c, cc, &s->set, &s->setlen, err, errlen) != 0) {
            for (size_t j = 0; j < n; j++)
                src_free(src[j]);
            free(src);
            return -1;
        }
    }
    /* Reflection answers carry over to the same cluster until new ones come. */
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; src[i]->reflection && j < r->nsrc; j++) {
            struct rest_src *o = r->src[j];

            if (o->reflection && o->fetched && strcmp(o->cluster, src[i]->cluster) == 0) {
                src[i]->files = o->files;
                src[i]->nfiles = o->nfiles;
                src[i]->fetched = true;
                o->files = NULL;
                o->nfiles = 0;
            }
        }
    }
    for (size_t i = 0; i < r->nsrc; i++)
        src_free(r->src[i]);
    free(r->src);
    r->src = src;
    r->nsrc = n;
    r->conf = c;
    rebuild_table(r);
    for (size_t i = 0; i < n; i++) {
        if (!src[i]->reflection)
            continue;
        src[i]->retry = evtimer_new(r->base, on_retry, src[i]);
        fetch_next(src[i]);
    }
    return 0;
}

struct tc_table *proxy_rest_table(struct proxy_rest *r)
{
    return tc_table_ref(r->table);
}
