/* Per-worker call accounting: Prometheus counters and the access log.
 * Invariant: only the owning worker writes its counters, without atomics or
 * locks; the main thread sees them only through copies (proxy_report_new).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "stats"
#include "proxy/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "core/log.h"

const double proxy_hist_bounds[PROXY_HIST_NB] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                 0.1,    0.25,  0.5,    1,     2.5,  5,     10};

/* Above this much unwritten access log a worker drops lines (and counts them)
 * rather than grow or block. */
#define ALOG_MAX (4 * 1024 * 1024)

uint64_t proxy_mono_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts); /* vDSO: no syscall */
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

int proxy_parse_status(const uint8_t *v, size_t len)
{
    int n = 0;

    if (len == 0 || len > 3)
        return -1;
    for (size_t i = 0; i < len; i++) {
        if (v[i] < '0' || v[i] > '9')
            return -1;
        n = n * 10 + (v[i] - '0');
    }
    return n;
}

void proxy_stats_init(struct proxy_stats *st, size_t cap)
{
    size_t ts = 16;

    while (ts < cap * 2)
        ts *= 2;
    st->cap = cap;
    st->nm = 0;
    st->m = calloc(cap + 1, sizeof(*st->m));
    st->tab = calloc(ts, sizeof(*st->tab));
    st->tabsize = ts;
    if (st->m == NULL || st->tab == NULL) {
        log_error("out of memory");
        abort();
    }
    st->m[cap].name = strdup("other");
}

void proxy_stats_deinit(struct proxy_stats *st)
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
    st->m[st->nm].name = strndup((const char *)path, len);
    if (st->m[st->nm].name == NULL)
        abort();
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

static void alog_line(struct proxy_call *call, double secs)
{
    struct proxy_worker *w = call->w;
    const struct conf *c = w->snap->conf;
    struct evbuffer *b = w->alog;
    const char *cluster = "-", *ep = "-";
    const char *peer = call->fe != NULL ? call->fe->peer : "-";
    struct proxy_pool *pool = call->ntried > 0 ? proxy_pool_find(w, call->ep_id) : NULL;
    char ts[64];
    struct timeval tv;
    struct tm tm;
    size_t n;

    if (evbuffer_get_length(b) > ALOG_MAX) {
        w->alog_dropped++;
        return;
    }
    if (call->routed && w->snap != NULL && call->cluster < w->snap->nclusters)
        cluster = w->snap->clusters[call->cluster].name;
    if (pool != NULL)
        ep = pool->addr_str;
    event_base_gettimeofday_cached(w->base, &tv);
    gmtime_r(&tv.tv_sec, &tm);
    n = strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof(ts) - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
    if (c->proxy.access_log_json) {
        evbuffer_add_printf(b, "{\"time\":\"%s\",\"peer\":\"%s\",\"method\":", ts, peer);
        json_str(b, call->path, call->pathlen);
        evbuffer_add_printf(b,
                            ",\"cluster\":\"%s\",\"endpoint\":\"%s\",\"status\":\"%s\","
                            "\"code\":%d,\"duration_ms\":%.3f,\"bytes_in\":%llu,"
                            "\"bytes_out\":%llu}\n",
                            cluster, ep, call->status >= 0 ? grpc_code_name(call->status) : "-",
                            call->status, secs * 1000, (unsigned long long)call->bytes_in,
                            (unsigned long long)call->bytes_out);
    } else {
        evbuffer_add_printf(b, "%s %s ", ts, peer);
        text_str(b, call->path, call->pathlen);
        evbuffer_add_printf(b, " %s %s %s %.3fms in=%llu out=%llu\n", cluster, ep,
                            call->status >= 0 ? grpc_code_name(call->status) : "-", secs * 1000,
                            (unsigned long long)call->bytes_in,
                            (unsigned long long)call->bytes_out);
    }
}

void proxy_stats_call_done(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    struct proxy_mstat *m;
    double secs;
    size_t b = 0;

    if (call->path == NULL)
        return; /* reset before its headers were complete: not a call */
    secs = (double)(proxy_mono_ns() - call->start_ns) / 1e9;
    m = method_slot(&w->stats, call->path, call->pathlen);
    if (call->status >= 0 && call->status < GRPC_CODE_COUNT)
        m->by_code[call->status]++;
    else
        m->by_code[GRPC_UNKNOWN]++;
    while (b < PROXY_HIST_NB && secs > proxy_hist_bounds[b])
        b++;
    m->bucket[b]++;
    m->count++;
    m->sum += secs;
    if (w->rt->alog_fd >= 0)
        alog_line(call, secs);
}

void proxy_alog_flush(struct proxy_worker *w)
{
    while (evbuffer_get_length(w->alog) > 0) {
        int n = evbuffer_write(w->alog, w->rt->alog_fd);

        if (n <= 0) {
            if (n < 0 && errno != EAGAIN && errno != EINTR) {
                /* The log is broken (disk full, closed pipe): drop, don't spin. */
                evbuffer_drain(w->alog, evbuffer_get_length(w->alog));
                w->alog_dropped++;
            }
            return;
        }
    }
}

struct proxy_report *proxy_report_new(struct proxy_worker *w)
{
    struct proxy_report *r = calloc(1, sizeof(*r));
    const struct proxy_stats *st = &w->stats;
    size_t k = 0;

    if (r == NULL)
        abort();
    r->nm = st->nm + 1;
    r->m = calloc(r->nm, sizeof(*r->m));
    if (r->m == NULL)
        abort();
    for (size_t i = 0; i < st->nm; i++) {
        r->m[i] = st->m[i];
        r->m[i].name = strdup(st->m[i].name);
    }
    r->m[st->nm] = st->m[st->cap];
    r->m[st->nm].name = strdup("other");
    r->fe_conns = w->nfes;
    for (size_t i = 0; i < w->npools; i++)
        k += w->pools[i] != NULL;
    r->eps = calloc(k + 1, sizeof(*r->eps));
    if (r->eps == NULL)
        abort();
    for (size_t i = 0; i < w->npools; i++) {
        const struct proxy_pool *p = w->pools[i];

        if (p == NULL)
            continue;
        r->eps[r->neps] =
            (struct proxy_ep_report){p->id, p->active_calls, p->calls_total, p->nconns, ""};
        memcpy(r->eps[r->neps++].addr, p->addr_str, sizeof(r->eps[0].addr));
        r->be_conns += p->nconns;
    }
    return r;
}

void proxy_report_free(struct proxy_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nm; i++)
        free(r->m[i].name);
    free(r->m);
    free(r->eps);
    free(r);
}
