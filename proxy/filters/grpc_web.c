/* The gRPC-Web filter (gRPC PROTOCOL-WEB.md): a gRPC-Web request from a
 * browser (HTTP/1.1 or HTTP/2) becomes an ordinary gRPC call to the backend,
 * and its answer a gRPC-Web response: the content type rewritten both ways,
 * trailers moved into the body as a frame with flag 0x80, base64 both ways
 * for application/grpc-web-text. Binary bodies pass through untouched (the
 * one copy of the call); only -text and the trailer frame are converted.
 * Invariant: a call is gRPC-Web exactly when |web| is set by
 * on_request_early; every other call is left alone. Conversions use the
 * stack or the worker's buffer, never a per-call allocation.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "grpc_web"
#include "proxy/filters/grpc_web.h"

#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/grpc.h"
#include "proxy/call.h"
#include "proxy/filters/filters.h"

/* ---- filter ---- */

/* Per-call state. */
struct gw_call {
    bool web;   /* a gRPC-Web call */
    bool text;  /* application/grpc-web-text: base64 bodies */
    bool proto; /* the request said +proto: so does the response */
    struct grpc_web_b64 dec;
    struct grpc_scan scan; /* request framing, to tell a truncated last message */
};

/* Per-worker: one buffer for trailer frames, grown as needed. */
struct gw_worker {
    uint8_t *buf;
    size_t cap;
};

static uint8_t *worker_buf(struct gw_worker *w, size_t n)
{
    if (n > w->cap) {
        w->buf = xreallocarray(w->buf, n, 1);
        w->cap = n;
    }
    return w->buf;
}

static void worker_deinit(void *ws)
{
    struct gw_worker *w = ws;

    free(w->buf);
    w->buf = NULL;
}

static bool has_prefix(const nghttp2_nv *f, const char *s, size_t n)
{
    return f->valuelen >= n && strncasecmp((const char *)f->value, s, n) == 0;
}

static enum proxy_filter_rc on_request_early(struct proxy_call *call, void *st, void *ws)
{
    struct gw_call *gc = st;
    struct proxy_head *h = proxy_call_req_head(call);
    const nghttp2_nv *ct = proxy_head_get(h, "content-type", 12);
    const char *rest;
    size_t restlen;

    (void)ws;
    if (ct == NULL || !has_prefix(ct, "application/grpc-web", 20))
        return PROXY_FILTER_CONTINUE;
    rest = (const char *)ct->value + 20;
    restlen = ct->valuelen - 20;
    if (restlen >= 5 && strncasecmp(rest, "-text", 5) == 0) {
        gc->text = true;
        rest += 5;
        restlen -= 5;
    }
    if (restlen >= 6 && strncasecmp(rest, "+proto", 6) == 0) {
        gc->proto = true;
        rest += 6;
        restlen -= 6;
    }
    /* Parameters (";charset=...") are fine; another codec (+json) is not. */
    if ((restlen > 0 && rest[0] != ';' && rest[0] != ' ') ||
        !proxy_call_env(call)->snap->conf->proxy.grpc_web) {
        proxy_call_respond_http(call, "415");
        return PROXY_FILTER_STOP;
    }
    gc->web = true;
    /* gRPC over HTTP/2 for the backend (PROTOCOL-HTTP2.md). */
    if (gc->proto)
        proxy_head_set(h, "content-type", 12, "application/grpc+proto", 22);
    else
        proxy_head_set(h, "content-type", 12, "application/grpc", 16);
    proxy_head_set(h, "te", 2, "trailers", 8);
    /* The body's length changes (base64) and HTTP/2 frames it anyway. */
    proxy_head_del(h, "content-length", 14);
    return PROXY_FILTER_CONTINUE;
}

/* The request ends: a message cut short would reach the backend as a
 * protocol error; say so here. */
static bool request_truncated(struct proxy_call *call, struct gw_call *gc)
{
    if (gc->text && !grpc_web_b64_complete(&gc->dec)) {
        proxy_call_fail(call, GRPC_INVALID_ARGUMENT,
                        "switchyard: grpc-web-text request ends inside a base64 quantum");
        return true;
    }
    if (gc->scan.need != 0 || gc->scan.hlen != 0) {
        proxy_call_fail(call, GRPC_INVALID_ARGUMENT,
                        "switchyard: gRPC-Web request ends inside a message (truncated frame)");
        return true;
    }
    return false;
}

static bool on_request_data(struct proxy_call *call, void *st, void *ws, const uint8_t *p, size_t n,
                            bool end)
{
    struct gw_call *gc = st;
    uint8_t out[GRPC_WEB_B64_DECODED(4096)];

    (void)ws;
    if (!gc->web)
        return false;
    if (!gc->text) {
        /* Binary: forwarded as it is; only the framing is followed. */
        grpc_scan_feed(&gc->scan, p, n, 0);
        if (end)
            request_truncated(call, gc);
        return false;
    }
    while (n > 0 && proxy_call_state(call) < PROXY_CALL_FINAL) {
        size_t take = n < 4096 ? n : 4096;
        long w = grpc_web_b64_decode(&gc->dec, p, take, out);

        if (w < 0) {
            proxy_call_fail(call, GRPC_INVALID_ARGUMENT,
                            "switchyard: grpc-web-text request body is not valid base64");
            return true;
        }
        grpc_scan_feed(&gc->scan, out, (size_t)w, 0);
        proxy_call_req_emit(call, out, (size_t)w);
        p += take;
        n -= take;
    }
    if (end && proxy_call_state(call) < PROXY_CALL_FINAL)
        request_truncated(call, gc);
    return true;
}

static enum proxy_filter_rc on_response_head(struct proxy_call *call, void *st, void *ws,
                                             struct proxy_head *h, bool end)
{
    struct gw_call *gc = st;
    const nghttp2_nv *ct;
    char v[48];
    size_t vl;

    (void)call;
    (void)ws;
    (void)end;
    if (!gc->web)
        return PROXY_FILTER_CONTINUE;
    ct = proxy_head_get(h, "content-type", 12);
    if (ct == NULL || !has_prefix(ct, "application/grpc", 16))
        return PROXY_FILTER_CONTINUE; /* an HTTP error (405, 415): as it is */
    vl = (size_t)snprintf(v, sizeof(v), "application/grpc-web%s%s", gc->text ? "-text" : "",
                          gc->proto ? "+proto" : "");
    proxy_head_set(h, "content-type", 12, v, vl);
    proxy_head_del(h, "content-length", 14);
    /* Trailers-only (|end|): grpc-status and grpc-message stay headers, as
     * gRPC-Web clients read them there. */
    return PROXY_FILTER_CONTINUE;
}

static bool on_response_data(struct proxy_call *call, void *st, void *ws, const uint8_t *p,
                             size_t n)
{
    struct gw_call *gc = st;
    uint8_t out[GRPC_WEB_B64_ENCODED(3072)];

    (void)ws;
    if (!gc->web || !gc->text)
        return false;
    /* Each piece padded on its own: clients decode padded segments, and a
     * message is never held back waiting for the bytes of the next. */
    while (n > 0) {
        size_t take = n < 3072 ? n : 3072;

        proxy_call_resp_emit(call, out, grpc_web_b64_encode(p, take, out));
        p += take;
        n -= take;
    }
    return true;
}

static void on_response_trailers(struct proxy_call *call, void *st, void *ws, struct proxy_head *t)
{
    struct gw_call *gc = st;
    size_t len;
    uint8_t *buf;

    if (!gc->web)
        return;
    len = grpc_web_trailer_frame_size(t->nv, t->n);
    if (gc->text) {
        buf = worker_buf(ws, len + GRPC_WEB_B64_ENCODED(len));
        grpc_web_trailer_frame(t->nv, t->n, buf);
        proxy_call_resp_emit(call, buf + len, grpc_web_b64_encode(buf, len, buf + len));
    } else {
        buf = worker_buf(ws, len);
        proxy_call_resp_emit(call, buf, grpc_web_trailer_frame(t->nv, t->n, buf));
    }
    /* The body carries them now: no HTTP trailers. */
    proxy_head_clear(t);
}

const struct proxy_filter proxy_filter_grpc_web = {
    .name = "grpc_web",
    .call_state = sizeof(struct gw_call),
    .worker_state = sizeof(struct gw_worker),
    .worker_deinit = worker_deinit,
    .on_request_early = on_request_early,
    .on_request_data = on_request_data,
    .on_response_head = on_response_head,
    .on_response_data = on_response_data,
    .on_response_trailers = on_response_trailers,
};
