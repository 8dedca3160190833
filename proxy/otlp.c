/* The OTLP/HTTP exporter (otlp.h). The exporter runs on
 * the main thread's loop with libevent's HTTP client: every export_interval
 * it takes up to batch_size spans from the workers' queues, encodes them
 * with jansson and POSTs them; while a request is in flight nothing more is
 * taken, so a slow or absent collector only fills the queues, whose
 * overflow is dropped and counted on the workers' side.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "otlp"
#include "proxy/otlp.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#include "core/alloc.h"
#include "core/log.h"
#include "proxy/internal.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "0.1.0"
#endif

/* ---- the encoding (OTLP spec, "JSON Protobuf Encoding") ---- */

static json_t *hex(const uint8_t *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char buf[33];

    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = digits[p[i] >> 4];
        buf[2 * i + 1] = digits[p[i] & 15];
    }
    return json_stringn(buf, 2 * n);
}

/* 64-bit integers are decimal strings in OTLP JSON. */
static json_t *u64(uint64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRIu64, v);
    return json_string(buf);
}

static void attr_str(json_t *attrs, const char *key, const char *v)
{
    if (v == NULL || v[0] == '\0')
        return;
    json_array_append_new(attrs,
                          json_pack("{s:s, s:{s:s}}", "key", key, "value", "stringValue", v));
}

static void attr_int(json_t *attrs, const char *key, int64_t v)
{
    char buf[24];

    snprintf(buf, sizeof(buf), "%" PRId64, v);
    json_array_append_new(attrs, json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", buf));
}

/* "pkg.Service/Method" -> rpc.service, rpc.method */
static void attr_rpc(json_t *attrs, const char *name)
{
    const char *slash = strrchr(name, '/');
    char svc[128];

    attr_str(attrs, "rpc.system", "grpc");
    if (slash == NULL)
        return;
    snprintf(svc, sizeof(svc), "%.*s", (int)(slash - name), name);
    attr_str(attrs, "rpc.service", svc);
    attr_str(attrs, "rpc.method", slash + 1);
}

static json_t *span_json(const struct proxy_span *s)
{
    json_t *j = json_object(), *attrs = json_array(), *events = json_array();

    json_object_set_new(j, "traceId", hex(s->trace_id, 16));
    json_object_set_new(j, "spanId", hex(s->span_id, 8));
    if (s->has_parent)
        json_object_set_new(j, "parentSpanId", hex(s->parent_id, 8));
    json_object_set_new(j, "name", json_string(s->name));
    json_object_set_new(j, "kind", json_integer(s->kind));
    json_object_set_new(j, "startTimeUnixNano", u64(s->start_ns));
    json_object_set_new(j, "endTimeUnixNano", u64(s->end_ns));
    attr_rpc(attrs, s->name);
    if (s->grpc_status >= 0)
        attr_int(attrs, "rpc.grpc.status_code", s->grpc_status);
    attr_str(attrs, "server.address", s->server_addr);
    if (s->server_port > 0)
        attr_int(attrs, "server.port", s->server_port);
    attr_str(attrs, "network.peer.address", s->peer_addr);
    if (s->peer_port > 0)
        attr_int(attrs, "network.peer.port", s->peer_port);
    attr_str(attrs, "switchyard.cluster", s->cluster);
    attr_str(attrs, "switchyard.endpoint", s->endpoint);
    attr_int(attrs,
             s->kind == PROXY_SPAN_KIND_CLIENT ? "switchyard.attempt" : "switchyard.attempts",
             s->attempt);
    json_object_set_new(j, "attributes", attrs);
    for (size_t i = 0; i < s->nevents && i < PROXY_SPAN_MAX_EVENTS; i++) {
        const struct proxy_span_event *e = &s->events[i];
        json_t *ej = json_object(), *ea = json_array();

        json_object_set_new(ej, "timeUnixNano", u64(e->time_ns));
        json_object_set_new(ej, "name", json_string(e->name));
        attr_str(ea, e->key, e->value);
        json_object_set_new(ej, "attributes", ea);
        json_array_append_new(events, ej);
    }
    if (json_array_size(events) > 0)
        json_object_set_new(j, "events", events);
    else
        json_decref(events);
    if (s->status != PROXY_SPAN_STATUS_UNSET)
        json_object_set_new(j, "status",
                            json_pack("{s:i, s:s}", "code", s->status, "message", s->status_msg));
    else
        json_object_set_new(j, "status", json_object());
    return j;
}

char *proxy_otlp_encode(const struct proxy_span *spans, size_t n, const char *service, size_t *len)
{
    json_t *spans_j = json_array(), *root, *rattrs = json_array();
    char *out;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(spans_j, span_json(&spans[i]));
    attr_str(rattrs, "service.name", service);
    attr_str(rattrs, "telemetry.sdk.name", "switchyard");
    attr_str(rattrs, "telemetry.sdk.language", "c");
    attr_str(rattrs, "telemetry.sdk.version", SWITCHYARD_VERSION);
    root = json_pack("{s:[{s:{s:o}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource",
                     "attributes", rattrs, "scopeSpans", "scope", "name", "switchyard", "version",
                     SWITCHYARD_VERSION, "spans", spans_j);
    if (root == NULL)
        core_oom();
    out = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    if (out == NULL)
        core_oom();
    *len = strlen(out);
    return out;
}

/* ---- the exporter ---- */

struct proxy_otlp {
    struct runtime *rt;
    struct event *timer;
    struct event *again; /* another batch now: the queues hold more than one */
    struct evdns_base *dns;
    struct evhttp_connection *conn;
    char *host; /* what |conn| was made for */
    uint16_t port;
    bool inflight;
    size_t inflight_n;
    bool failing; /* the last request failed: logged once per episode */
    struct proxy_span *batch;
    size_t batch_cap;
    uint64_t exported, dropped_export, dropped_off, requests_ok, requests_failed;
};

/* The span queue of worker |w| (the trace filter's), or NULL. */
static struct proxy_span_ring *worker_ring(struct proxy_worker *w)
{
    return w->calls.spans;
}

static uint64_t queued(struct runtime *rt)
{
    uint64_t n = 0;

    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_span_ring *r = worker_ring(&rt->workers[i]);

        if (r != NULL)
            n += proxy_span_ring_len(r);
    }
    return n;
}

/* Takes up to |max| spans from the workers' queues, fairly: a share each,
 * then what is left. */
static size_t collect(struct proxy_otlp *o, size_t max)
{
    struct runtime *rt = o->rt;
    size_t n = 0, share;

    if (o->batch_cap < max) {
        free(o->batch);
        o->batch = xcalloc(max, sizeof(*o->batch));
        o->batch_cap = max;
    }
    share = rt->nworkers > 0 ? (max + rt->nworkers - 1) / rt->nworkers : max;
    for (int pass = 0; pass < 2 && n < max; pass++) {
        for (size_t i = 0; i < rt->nworkers && n < max; i++) {
            struct proxy_span_ring *r = worker_ring(&rt->workers[i]);
            size_t want = pass == 0 ? share : max - n;

            if (r == NULL)
                continue;
            if (want > max - n)
                want = max - n;
            n += proxy_span_ring_pop(r, o->batch + n, want);
        }
    }
    return n;
}

static void conn_drop(struct proxy_otlp *o)
{
    if (o->conn != NULL)
        evhttp_connection_free(o->conn); /* frees a request in flight, without its callback */
    o->conn = NULL;
    free(o->host);
    o->host = NULL;
    o->inflight = false;
}

static void on_response(struct evhttp_request *req, void *arg)
{
    struct proxy_otlp *o = arg;
    int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
    const struct conf_tracing *tr = &o->rt->conf->tracing;

    o->inflight = false;
    if (code >= 200 && code < 300) {
        o->exported += o->inflight_n;
        o->requests_ok++;
        if (o->failing)
            log_info("exporting spans to %s again", tr->otlp_endpoint);
        o->failing = false;
    } else {
        o->dropped_export += o->inflight_n;
        o->requests_failed++;
        if (!o->failing)
            log_warn("span export to %s failed (%s); %zu spans dropped, trying again each "
                     "export_interval",
                     tr->otlp_endpoint != NULL ? tr->otlp_endpoint : "(none)",
                     code == 0     ? "no answer: connection refused, reset or timed out"
                     : code == 404 ? "HTTP 404: check the path, usually /v1/traces"
                                   : "HTTP error",
                     o->inflight_n);
        o->failing = true;
    }
    o->inflight_n = 0;
    /* More than a batch waiting: send the next one now, not at the next tick. */
    if (tr->otlp_endpoint != NULL && queued(o->rt) >= tr->batch_size)
        event_active(o->again, EV_TIMEOUT, 0);
}

static bool is_ip(const char *h)
{
    struct in6_addr a;

    return inet_pton(AF_INET, h, &a) == 1 || inet_pton(AF_INET6, h, &a) == 1;
}

static void export_batch(struct proxy_otlp *o)
{
    struct runtime *rt = o->rt;
    const struct conf_tracing *tr = &rt->conf->tracing;
    struct evhttp_request *req;
    struct timeval tv;
    size_t n, len;
    char *body, hosthdr[300];

    if (o->inflight)
        return;
    if (tr->otlp_endpoint == NULL) {
        /* Export was turned off by a reload: what is queued goes. */
        while ((n = collect(o, 1024)) > 0)
            o->dropped_off += n;
        conn_drop(o);
        return;
    }
    if (o->conn != NULL && (strcmp(o->host, tr->otlp_host) != 0 || o->port != tr->otlp_port))
        conn_drop(o);
    n = collect(o, tr->batch_size);
    if (n == 0)
        return;
    if (o->conn == NULL) {
        /* A name is resolved by evdns, never by a blocking getaddrinfo(). */
        if (!is_ip(tr->otlp_host) && o->dns == NULL)
            o->dns = evdns_base_new(rt->base, EVDNS_BASE_INITIALIZE_NAMESERVERS);
        o->conn = evhttp_connection_base_new(rt->base, is_ip(tr->otlp_host) ? NULL : o->dns,
                                             tr->otlp_host, tr->otlp_port);
        if (o->conn == NULL) {
            o->dropped_export += n;
            o->requests_failed++;
            return;
        }
        o->host = xstrdup(tr->otlp_host);
        o->port = tr->otlp_port;
        evhttp_connection_set_retries(o->conn, 0);
    }
    tv.tv_sec = tr->export_timeout_ms / 1000;
    tv.tv_usec = (tr->export_timeout_ms % 1000) * 1000;
    evhttp_connection_set_timeout_tv(o->conn, &tv);
    body = proxy_otlp_encode(o->batch, n, tr->service_name, &len);
    req = evhttp_request_new(on_response, o);
    if (req == NULL)
        core_oom();
    snprintf(hosthdr, sizeof(hosthdr), strchr(tr->otlp_host, ':') ? "[%s]:%u" : "%s:%u",
             tr->otlp_host, tr->otlp_port);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Host", hosthdr);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_add_header(evhttp_request_get_output_headers(req), "User-Agent",
                      "switchyard/" SWITCHYARD_VERSION);
    evbuffer_add(evhttp_request_get_output_buffer(req), body, len);
    free(body);
    o->inflight = true;
    o->inflight_n = n;
    if (evhttp_make_request(o->conn, req, EVHTTP_REQ_POST, tr->otlp_path) != 0) {
        /* evhttp freed |req| */
        o->inflight = false;
        o->inflight_n = 0;
        o->dropped_export += n;
        o->requests_failed++;
        conn_drop(o);
    }
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_otlp *o = arg;
    uint32_t ms = o->rt->conf->tracing.export_interval_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    (void)fd;
    (void)what;
    export_batch(o);
    event_add(o->timer, &tv);
}

static void on_again(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    export_batch(arg);
}

int proxy_otlp_start(struct runtime *rt)
{
    struct proxy_otlp *o = xcalloc(1, sizeof(*o));
    struct timeval tv = {0, 0};

    o->rt = rt;
    o->timer = evtimer_new(rt->base, on_tick, o);
    o->again = event_new(rt->base, -1, 0, on_again, o);
    if (o->timer == NULL || o->again == NULL)
        core_oom();
    event_add(o->timer, &tv);
    rt->otlp = o;
    if (rt->conf->tracing.otlp_endpoint != NULL)
        log_info("tracing: spans go to %s (OTLP/HTTP JSON), sample_ratio %g",
                 rt->conf->tracing.otlp_endpoint, rt->conf->tracing.sample_ratio);
    return 0;
}

void proxy_otlp_stop(struct runtime *rt)
{
    struct proxy_otlp *o = rt->otlp;

    if (o == NULL)
        return;
    conn_drop(o);
    if (o->dns != NULL)
        evdns_base_free(o->dns, 0);
    event_free(o->timer);
    event_free(o->again);
    free(o->batch);
    free(o);
    rt->otlp = NULL;
}

void proxy_otlp_stats(struct runtime *rt, struct proxy_otlp_stats *st)
{
    struct proxy_otlp *o = rt->otlp;

    memset(st, 0, sizeof(*st));
    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_span_ring *r = worker_ring(&rt->workers[i]);

        if (r != NULL)
            st->dropped_queue += atomic_load_explicit(&r->dropped, memory_order_relaxed);
    }
    if (o == NULL)
        return;
    st->exported = o->exported;
    st->dropped_export = o->dropped_export;
    st->dropped_off = o->dropped_off;
    st->requests_ok = o->requests_ok;
    st->requests_failed = o->requests_failed;
    st->queued = queued(rt);
}
