/* The stats filter: per-worker Prometheus counters per method and the access
 * log, counted when a call is done.
 * Invariant: only the owning worker writes its counters, without atomics or
 * locks; the main thread sees them only through copies (proxy_stats_report).
 * Access log writes never block the worker: a line that does not fit the
 * bounded buffer is dropped and counted.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "stats"
#include "proxy/filters/filters.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/log.h"
#include "proxy/call.h"

const double proxy_hist_bounds[PROXY_HIST_NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* Above this much unwritten access log a worker drops lines (and counts them)
 * rather than grow or block. */
#define ALOG_MAX (4 * 1024 * 1024)

/* The `method` labels of one worker: open addressing over names. */
struct proxy_stats {
    struct proxy_mstat *m; /* [0, nm) named; m[cap] is "other" */
    size_t nm, cap;
    uint32_t *tab; /* index + 1; 0 = empty */
    size_t tabsize;
};

struct stats_worker {
    struct proxy_call_env *env;
    struct proxy_stats st;
    struct evbuffer *alog;    /* access log lines not written yet */
    uint64_t alog_dropped;    /* lines dropped because the log could not keep up */
    uint64_t episode_dropped; /* dropped since the log last kept up (0: keeping up) */
    struct event *alog_ready; /* the log's fd is writable again (armed on EAGAIN) */
};

static void stats_init(struct proxy_stats *st, size_t cap)
{
    size_t ts = 16;

    while (ts < cap * 2)
        ts *= 2;
    st->cap = cap;
    st->nm = 0;
    st->m = xcalloc(cap + 1, sizeof(*st->m));
    st->tab = xcalloc(ts, sizeof(*st->tab));
    st->tabsize = ts;
    st->m[cap].name = xstrdup("other");
}

static void stats_deinit(struct proxy_stats *st)
{
    for (size_t i = 0; i < st->nm; i++)
        free(st->m[i].name);
    if (st->m != NULL)
        free(st->m[st->cap].name);
    free(st->m);
    free(st->tab);
    memset(st, 0, sizeof(*st));
}

/* FNV-1a */
static uint32_t hash(const uint8_t *p, size_t len)
{
    uint32_t h = 2166136261u;

    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 16777619u;
    }
    return h;
}

static struct proxy_mstat *method_slot(struct proxy_stats *st, const uint8_t *path, size_t len)
{
    size_t mask = st->tabsize - 1;
    size_t i = hash(path, len) & mask;

    for (;; i = (i + 1) & mask) {
        uint32_t k = st->tab[i];
        struct proxy_mstat *m;

        if (k == 0)
            break;
        m = &st->m[k - 1];
        if (strlen(m->name) == len && memcmp(m->name, path, len) == 0)
            return m;
    }
    /* A new label: bounded by max_method_labels, the rest share "other". */
    if (st->nm == st->cap)
        return &st->m[st->cap];
    st->m[st->nm].name = xstrndup((const char *)path, len);
    st->tab[i] = (uint32_t)++st->nm;
    return &st->m[st->nm - 1];
}

static void json_str(struct evbuffer *b, const uint8_t *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";

    evbuffer_add(b, "\"", 1);
    for (size_t i = 0; i < len; i++) {
        uint8_t c = s[i];

        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};

            evbuffer_add(b, e, 2);
        } else if (c < 0x20 || c >= 0x7f) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};

            evbuffer_add(b, e, 6);
        } else {
            evbuffer_add(b, &c, 1);
        }
    }
    evbuffer_add(b, "\"", 1);
}

/* Text lines are space-separated: anything a client controls is printed with
 * non-printable bytes and spaces escaped, so one call is always one line. */
static void text_str(struct evbuffer *b, const uint8_t *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\')
            evbuffer_add_printf(b, "\\x%02x", s[i]);
        else
            evbuffer_add(b, &s[i], 1);
    }
}

static void alog_line(struct stats_worker *w, struct proxy_call *call,
                      const struct proxy_call_info *ci, double secs)
{
    const struct conf *c = w->env->snap->conf;
    struct evbuffer *b = w->alog;
    const char *cluster = ci->cluster != NULL ? ci->cluster : "-";
    const char *ep = ci->endpoint != NULL ? ci->endpoint : "-";
    const char *peer = proxy_call_peer(call);
    size_t pathlen;
    const uint8_t *path = proxy_call_path(call, &pathlen);
    char ts[64];
    struct timeval tv;
    struct tm tm;
    size_t n;

    if (evbuffer_get_length(b) > ALOG_MAX) {
        /* Never block, never grow: count what is lost, say so once. */
        if (w->episode_dropped++ == 0)
            log_warn("the access log cannot keep up (its reader or disk is stalled); dropping "
                     "lines until it does");
        w->alog_dropped++;
        return;
    }
    event_base_gettimeofday_cached(w->env->base, &tv);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    if (c->proxy.access_log_json) {
        evbuffer_add_printf(b, "{\"time\":\"%s\",\"peer\":\"%s\",\"method\":", ts, peer);
        json_str(b, path, pathlen);
        evbuffer_add_printf(b,
                            ",\"cluster\":\"%s\",\"endpoint\":\"%s\",\"status\":\"%s\","
                            "\"code\":%d,\"duration_ms\":%.3f,\"bytes_in\":%llu,"
                            "\"bytes_out\":%llu}\n",
                            cluster, ep, ci->status >= 0 ? grpc_code_name(ci->status) : "-",
                            ci->status, secs * 1000, (unsigned long long)ci->bytes_in,
                            (unsigned long long)ci->bytes_out);
    } else {
        evbuffer_add_printf(b, "%s %s ", ts, peer);
        text_str(b, path, pathlen);
        evbuffer_add_printf(b, " %s %s %s %.3fms in=%llu out=%llu\n", cluster, ep,
                            ci->status >= 0 ? grpc_code_name(ci->status) : "-", secs * 1000,
                            (unsigned long long)ci->bytes_in, (unsigned long long)ci->bytes_out);
    }
}

static uint64_t mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void on_done(struct proxy_call *call, void *st, void *ws)
{
    struct stats_worker *w = ws;
    struct proxy_call_info ci;
    struct proxy_mstat *m;
    size_t pathlen, b = 0;
    const uint8_t *path = proxy_call_path(call, &pathlen);
    double secs;

    (void)st;
    proxy_call_info(call, &ci);
    secs = (double)(mono_ns() - ci.start_ns) / 1e9;
    m = method_slot(&w->st, path, pathlen);
    if (ci.status >= 0 && ci.status < GRPC_CODE_COUNT)
        m->by_code[ci.status]++;
    else
        m->by_code[GRPC_UNKNOWN]++;
    while (b < PROXY_HIST_NB && secs > proxy_hist_bounds[b])
        b++;
    m->bucket[b]++;
    m->count++;
    m->sum += secs;
    if (w->env->alog_fd >= 0)
        alog_line(w, call, &ci, secs);
}

static void on_alog_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    proxy_stats_flush(arg);
}

void proxy_stats_flush(void *ws)
{
    struct stats_worker *w = ws;
    int fd = w->env->alog_fd;

    while (fd >= 0 && evbuffer_get_length(w->alog) > 0) {
        int n = evbuffer_write(w->alog, fd);

        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                /* The descriptor is non-blocking: come back when it drains. */
                if (w->alog_ready == NULL)
                    w->alog_ready = event_new(w->env->base, fd, EV_WRITE, on_alog_ready, w);
                if (w->alog_ready != NULL)
                    event_add(w->alog_ready, NULL);
                return;
            }
            /* The log is broken (disk full, closed pipe): drop, don't spin. */
            evbuffer_drain(w->alog, evbuffer_get_length(w->alog));
            w->alog_dropped++;
            return;
        }
    }
    if (w->episode_dropped > 0) {
        log_info("the access log keeps up again; %llu line(s) were dropped",
                 (unsigned long long)w->episode_dropped);
        w->episode_dropped = 0;
    }
}

static void worker_init(void *ws, struct proxy_call_env *env)
{
    struct stats_worker *w = ws;

    w->env = env;
    stats_init(&w->st, env->snap->conf->admin.max_method_labels);
    w->alog = evbuffer_new();
    if (w->alog == NULL)
        core_oom();
}

static void worker_deinit(void *ws)
{
    struct stats_worker *w = ws;

    if (w->alog_ready != NULL)
        event_free(w->alog_ready);
    w->alog_ready = NULL;
    if (w->alog != NULL) {
        proxy_stats_flush(w);
        evbuffer_free(w->alog);
    }
    stats_deinit(&w->st);
}

void proxy_stats_report(void *ws, struct proxy_report *r)
{
    struct stats_worker *w = ws;
    const struct proxy_stats *st = &w->st;

    r->nm = st->nm + 1;
    r->m = xcalloc(r->nm, sizeof(*r->m));
    for (size_t i = 0; i < st->nm; i++) {
        r->m[i] = st->m[i];
        r->m[i].name = xstrdup(st->m[i].name);
    }
    r->m[st->nm] = st->m[st->cap];
    r->m[st->nm].name = xstrdup("other");
    r->alog_dropped = w->alog_dropped;
}

void proxy_report_free(struct proxy_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nm; i++)
        free(r->m[i].name);
    free(r->m);
    free(r->eps);
    free(r->clusters);
    free(r);
}

const struct proxy_filter proxy_filter_stats = {
    .name = "stats",
    .worker_state = sizeof(struct stats_worker),
    .worker_init = worker_init,
    .worker_deinit = worker_deinit,
    .on_done = on_done,
};
