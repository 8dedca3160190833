/* The stats filter: per-worker Prometheus counters (per method label, per
 * cluster and endpoint, switchyard's own health probes apart) and the
 * access log, counted when a call (or an attempt) is done.
 * Method labels (issue 12.6, metrics poisoning): a method path becomes a
 * label only once a backend answered it with a gRPC status other than
 * UNIMPLEMENTED, so paths a client makes up (unrouted, refused, unknown to
 * the backend, not UTF-8) all count as "other" and can never use up the
 * labels that real methods need; a method that has its label keeps it
 * whatever its later calls end with. At most max_method_labels per worker.
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
#include <jansson.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/clock.h"
#include "core/grpc.h"
#include "core/log.h"
#include "core/utf8.h"
#include "proxy/call.h"

const double proxy_hist_bounds[PROXY_HIST_NB] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,  0.25, 0.5,  1,
    2.5,    5,     10,     30,    60,   300,   900,  1800, 3600, 7200, 14400};

/* Above this much unwritten access log a worker drops lines (and counts them)
 * rather than grow or block. */
#define ALOG_MAX (4 * 1024 * 1024)

/* (cluster, endpoint) pairs a worker counts apart; more share the last. */
#define MAX_UPSTREAMS 4096

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"

/* Attempts of a call whose start time is kept (for the attempt histogram). */
#define MAX_ATTEMPTS 8

/* The method labels of one worker: open addressing over names. */
struct proxy_stats {
    struct proxy_mstat *m; /* [0, nm) named; m[cap] is "other" */
    size_t nm, cap;
    uint32_t *tab; /* index + 1; 0 = empty */
    size_t tabsize;
};

struct stats_call {
    bool backend_answered; /* an attempt completed with the backend's status */
    uint64_t att_start[MAX_ATTEMPTS];
};

struct stats_worker {
    struct proxy_call_env *env;
    struct proxy_stats st;
    struct proxy_upstat *up; /* by (cluster, endpoint), linear: a handful per worker */
    size_t nup, capup;
    uint64_t self_health[2][GRPC_CODE_COUNT];
    uint64_t unlabelled;
    struct evbuffer *alog;    /* access log lines not written yet */
    uint64_t alog_dropped;    /* lines dropped because the log could not keep up */
    uint64_t episode_dropped; /* dropped since the log last kept up (0: keeping up) */
    struct event *alog_ready; /* the log's fd is writable again (armed on EAGAIN) */
};

static void hist_add(struct proxy_hist *h, double secs)
{
    size_t b = 0;

    while (b < PROXY_HIST_NB && secs > proxy_hist_bounds[b])
        b++;
    h->bucket[b]++;
    h->count++;
    h->sum += secs;
}

/* ---- method labels ---- */

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

/* The label of |path|: its own when it has one, or when |may_add| and there
 * is room; "other" otherwise. */
static struct proxy_mstat *method_slot(struct proxy_stats *st, const uint8_t *path, size_t len,
                                       bool may_add)
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
    if (!may_add || st->nm == st->cap)
        return &st->m[st->cap];
    st->m[st->nm].name = xstrndup((const char *)path, len);
    st->tab[i] = (uint32_t)++st->nm;
    return &st->m[st->nm - 1];
}

static enum proxy_grpc_type grpc_type(const struct proxy_call_info *ci)
{
    bool cs = ci->msgs_in > 1, ss = ci->msgs_out > 1;

    return cs && ss ? PROXY_TYPE_BIDI_STREAM
           : cs     ? PROXY_TYPE_CLIENT_STREAM
           : ss     ? PROXY_TYPE_SERVER_STREAM
                    : PROXY_TYPE_UNARY;
}

/* ---- per (cluster, endpoint) ---- */

static struct proxy_upstat *upstream(struct stats_worker *w, const char *cluster, const char *ep)
{
    struct proxy_upstat *u;

    for (size_t i = 0; i < w->nup; i++) {
        if (strcmp(w->up[i].endpoint, ep) == 0 && strcmp(w->up[i].cluster, cluster) == 0)
            return &w->up[i];
    }
    if (w->nup == MAX_UPSTREAMS)
        return &w->up[w->nup - 1];
    if (w->nup == w->capup) {
        w->capup = w->capup == 0 ? 16 : w->capup * 2;
        w->up = xreallocarray(w->up, w->capup, sizeof(*w->up));
    }
    u = &w->up[w->nup++];
    memset(u, 0, sizeof(*u));
    snprintf(u->cluster, sizeof(u->cluster), "%s", cluster);
    snprintf(u->endpoint, sizeof(u->endpoint), "%s", ep);
    return u;
}

static void on_attempt_start(struct proxy_call *call, void *st, void *ws,
                             const struct proxy_attempt *a, struct proxy_head *head)
{
    struct stats_call *sc = st;

    (void)call;
    (void)ws;
    (void)head;
    if (a->number < MAX_ATTEMPTS)
        sc->att_start[a->number] = core_mono_ns();
}

static void on_attempt_end(struct proxy_call *call, void *st, void *ws,
                           const struct proxy_attempt *a, const struct proxy_attempt_result *r)
{
    struct stats_call *sc = st;
    struct stats_worker *w = ws;
    struct proxy_call_info ci;
    struct proxy_upstat *u;
    int code;

    proxy_call_info(call, &ci);
    if (ci.cluster == NULL || a->endpoint[0] == '\0')
        return;
    /* What the attempt came to, as a gRPC code: the backend's status when it
     * answered (its own: with retries and hedges the call's may be another
     * attempt's); CANCELLED when its stream was cancelled (the client went, a
     * deadline, a hedge won); UNAVAILABLE when it failed on the way. */
    if (r->outcome == PROXY_ATTEMPT_COMPLETE) {
        code = a->status >= 0 && a->status < GRPC_CODE_COUNT ? a->status : GRPC_UNKNOWN;
        sc->backend_answered = true;
    } else if (a->status >= 0 && a->status < GRPC_CODE_COUNT) {
        code = a->status; /* trailers in, the stream closed by switchyard */
        sc->backend_answered = true;
    } else if (r->outcome == PROXY_ATTEMPT_RESET && r->h2err == NGHTTP2_CANCEL) {
        code = GRPC_CANCELLED;
    } else {
        code = GRPC_UNAVAILABLE;
    }
    u = upstream(w, ci.cluster, a->endpoint);
    u->by_code[code]++;
    if (a->number < MAX_ATTEMPTS && sc->att_start[a->number] != 0)
        hist_add(&u->dur, (double)(core_mono_ns() - sc->att_start[a->number]) / 1e9);
}

/* ---- the access log ---- */

/* Text lines are space-separated: anything a client controls is printed with
 * non-printable bytes and spaces escaped, so one call is always one line. */
static void text_str(struct evbuffer *b, const uint8_t *s, size_t len)
{
    if (len == 0) {
        evbuffer_add(b, "-", 1);
        return;
    }
    for (size_t i = 0; i < len; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '\\')
            evbuffer_add_printf(b, "\\x%02x", s[i]);
        else
            evbuffer_add(b, &s[i], 1);
    }
}

/* A request header's value, or NULL. */
static const nghttp2_nv *req_field(struct proxy_call *call, const char *name)
{
    return proxy_head_get(proxy_call_req_head(call), name, strlen(name));
}

/* The trace id of the call's traceparent (set or checked by the trace
 * filter), into |out| (33 bytes); false when it has none. */
static bool trace_id(struct proxy_call *call, char *out)
{
    const nghttp2_nv *f = req_field(call, "traceparent");

    if (f == NULL || f->valuelen < 35 || f->value[2] != '-')
        return false;
    memcpy(out, f->value + 3, 32);
    out[32] = '\0';
    return true;
}

static json_t *json_bytes(const uint8_t *p, size_t n)
{
    char buf[1024];

    if (p == NULL)
        return json_null();
    utf8_clean(p, n, buf, sizeof(buf));
    return json_string(buf);
}

static json_t *json_field(struct proxy_call *call, const char *name)
{
    const nghttp2_nv *f = req_field(call, name);

    return f != NULL ? json_bytes(f->value, f->valuelen) : json_null();
}

static void alog_json(struct stats_worker *w, struct proxy_call *call,
                      const struct proxy_call_info *ci, double secs, const char *ts)
{
    const struct conf_proxy *pc = &w->env->snap->conf->proxy;
    json_t *j = json_object();
    char buf[8192], tid[33];
    size_t pathlen, n;
    const uint8_t *path = proxy_call_path(call, &pathlen);

    for (size_t i = 0; i < pc->naccess_log_fields; i++) {
        enum conf_alog_field f = pc->access_log_fields[i];
        const char *key = conf_alog_field_name(f);
        json_t *v = NULL;

        switch (f) {
        case CONF_ALOG_TIME:
            v = json_string(ts);
            break;
        case CONF_ALOG_PEER:
            v = json_bytes((const uint8_t *)proxy_call_peer(call), strlen(proxy_call_peer(call)));
            break;
        case CONF_ALOG_METHOD:
            v = json_bytes(path, pathlen);
            break;
        case CONF_ALOG_AUTHORITY:
            v = json_field(call, ":authority");
            break;
        case CONF_ALOG_USER_AGENT:
            v = json_field(call, "user-agent");
            break;
        case CONF_ALOG_REQUEST_ID:
            v = json_field(call, "x-request-id");
            break;
        case CONF_ALOG_TRACE_ID:
            v = trace_id(call, tid) ? json_string(tid) : json_null();
            break;
        case CONF_ALOG_CLUSTER:
            v = json_string(ci->cluster != NULL ? ci->cluster : "-");
            break;
        case CONF_ALOG_ENDPOINT:
            v = json_string(ci->endpoint != NULL ? ci->endpoint : "-");
            break;
        case CONF_ALOG_ATTEMPTS:
            v = json_integer(ci->attempts);
            break;
        case CONF_ALOG_STATUS:
            v = json_string(ci->status >= 0 ? grpc_code_name(ci->status) : "-");
            break;
        case CONF_ALOG_CODE:
            v = json_integer(ci->status);
            break;
        case CONF_ALOG_DURATION:
            v = json_real((double)(int64_t)(secs * 1e6 + 0.5) / 1000.0);
            break;
        case CONF_ALOG_BYTES_IN:
            v = json_integer((json_int_t)ci->bytes_in);
            break;
        case CONF_ALOG_BYTES_OUT:
            v = json_integer((json_int_t)ci->bytes_out);
            break;
        case CONF_ALOG_FIELD_COUNT:
            break;
        }
        if (v != NULL)
            json_object_set_new(j, key, v);
    }
    n = json_dumpb(j, buf, sizeof(buf) - 1,
                   JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_REAL_PRECISION(12));
    json_decref(j);
    if (n == 0 || n > sizeof(buf) - 1) {
        w->alog_dropped++; /* cannot happen with the field sizes above */
        return;
    }
    buf[n++] = '\n';
    evbuffer_add(w->alog, buf, n);
}

static void alog_text(struct stats_worker *w, struct proxy_call *call,
                      const struct proxy_call_info *ci, double secs, const char *ts)
{
    const struct conf_proxy *pc = &w->env->snap->conf->proxy;
    struct evbuffer *b = w->alog;
    size_t pathlen;
    const uint8_t *path = proxy_call_path(call, &pathlen);
    char tid[33];

    for (size_t i = 0; i < pc->naccess_log_fields; i++) {
        enum conf_alog_field f = pc->access_log_fields[i];
        const nghttp2_nv *h = NULL;

        if (i > 0)
            evbuffer_add(b, " ", 1);
        switch (f) {
        case CONF_ALOG_TIME:
            evbuffer_add(b, ts, strlen(ts));
            break;
        case CONF_ALOG_PEER:
            evbuffer_add_printf(b, "%s", proxy_call_peer(call));
            break;
        case CONF_ALOG_METHOD:
            text_str(b, path, pathlen);
            break;
        case CONF_ALOG_AUTHORITY:
        case CONF_ALOG_USER_AGENT:
        case CONF_ALOG_REQUEST_ID:
            h = req_field(call, f == CONF_ALOG_AUTHORITY    ? ":authority"
                                : f == CONF_ALOG_USER_AGENT ? "user-agent"
                                                            : "x-request-id");
            if (h != NULL)
                text_str(b, h->value, h->valuelen);
            else
                evbuffer_add(b, "-", 1);
            break;
        case CONF_ALOG_TRACE_ID:
            evbuffer_add_printf(b, "%s", trace_id(call, tid) ? tid : "-");
            break;
        case CONF_ALOG_CLUSTER:
            evbuffer_add_printf(b, "%s", ci->cluster != NULL ? ci->cluster : "-");
            break;
        case CONF_ALOG_ENDPOINT:
            evbuffer_add_printf(b, "%s", ci->endpoint != NULL ? ci->endpoint : "-");
            break;
        case CONF_ALOG_ATTEMPTS:
            evbuffer_add_printf(b, "attempts=%u", ci->attempts);
            break;
        case CONF_ALOG_STATUS:
            evbuffer_add_printf(b, "%s", ci->status >= 0 ? grpc_code_name(ci->status) : "-");
            break;
        case CONF_ALOG_CODE:
            evbuffer_add_printf(b, "code=%d", ci->status);
            break;
        case CONF_ALOG_DURATION:
            evbuffer_add_printf(b, "%.3fms", secs * 1000);
            break;
        case CONF_ALOG_BYTES_IN:
            evbuffer_add_printf(b, "in=%llu", (unsigned long long)ci->bytes_in);
            break;
        case CONF_ALOG_BYTES_OUT:
            evbuffer_add_printf(b, "out=%llu", (unsigned long long)ci->bytes_out);
            break;
        case CONF_ALOG_FIELD_COUNT:
            break;
        }
    }
    evbuffer_add(b, "\n", 1);
}

static void alog_line(struct stats_worker *w, struct proxy_call *call,
                      const struct proxy_call_info *ci, double secs)
{
    char ts[64];
    struct timeval tv;
    struct tm tm;
    size_t n;

    if (evbuffer_get_length(w->alog) > ALOG_MAX) {
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
    if (w->env->snap->conf->proxy.access_log_json)
        alog_json(w, call, ci, secs, ts);
    else
        alog_text(w, call, ci, secs, ts);
}

/* ---- the call's end ---- */

static bool path_is(const uint8_t *p, size_t len, const char *s)
{
    return len == strlen(s) && memcmp(p, s, len) == 0;
}

static void on_done(struct proxy_call *call, void *st, void *ws)
{
    struct stats_call *sc = st;
    struct stats_worker *w = ws;
    struct proxy_call_info ci;
    size_t pathlen;
    const uint8_t *path = proxy_call_path(call, &pathlen);
    int code;
    double secs;

    proxy_call_info(call, &ci);
    secs = (double)(core_mono_ns() - ci.start_ns) / 1e9;
    code = ci.status >= 0 && ci.status < GRPC_CODE_COUNT ? ci.status : GRPC_UNKNOWN;
    if (ci.local && ci.cluster == NULL &&
        (path_is(path, pathlen, CHECK_PATH) || path_is(path, pathlen, WATCH_PATH))) {
        /* switchyard's own health service: probes, counted apart from calls. */
        w->self_health[path_is(path, pathlen, WATCH_PATH)][code]++;
    } else {
        /* A backend answered only a routed call, and the call routes only
         * canonical paths (call.c checks before routing; visible ASCII, so
         * valid UTF-8): such a path is safe as a label without checking again. */
        bool real = sc->backend_answered && code != GRPC_UNIMPLEMENTED;
        struct proxy_mstat *m = method_slot(&w->st, path, pathlen, real);
        enum proxy_grpc_type t = grpc_type(&ci);

        if (m == &w->st.m[w->st.cap])
            w->unlabelled++;
        m->handled[t][code]++;
        m->msg_in[t] += ci.msgs_in;
        m->msg_out[t] += ci.msgs_out;
        hist_add(&m->dur[t], secs);
    }
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
    free(w->up);
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
    r->nup = w->nup;
    r->up = xcalloc(w->nup, sizeof(*r->up));
    if (w->nup > 0)
        memcpy(r->up, w->up, w->nup * sizeof(*r->up));
    memcpy(r->self_health, w->self_health, sizeof(r->self_health));
    r->unlabelled = w->unlabelled;
    r->alog_dropped = w->alog_dropped;
}

void proxy_report_free(struct proxy_report *r)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nm; i++)
        free(r->m[i].name);
    free(r->m);
    free(r->up);
    free(r->eps);
    free(r->clusters);
    free(r);
}

const struct proxy_filter proxy_filter_stats = {
    .name = "stats",
    .call_state = sizeof(struct stats_call),
    .worker_state = sizeof(struct stats_worker),
    .worker_init = worker_init,
    .worker_deinit = worker_deinit,
    .on_attempt_start = on_attempt_start,
    .on_attempt_end = on_attempt_end,
    .on_done = on_done,
};
