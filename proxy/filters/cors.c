/* The CORS filter (Fetch standard, "CORS protocol"): with [proxy]
 * cors_origins set, switchyard answers the preflight (OPTIONS with
 * Access-Control-Request-Method) itself, and every answer to an allowed
 * origin, switchyard's own errors included, carries Access-Control-Allow-Origin
 * and exposes grpc-status, grpc-message and the response's own metadata.
 * Invariant: nothing is added to any call while cors_origins is empty, or
 * to a call without an Origin that is allowed.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "cors"
#include "proxy/filters/filters.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "proxy/call.h"

/* What gRPC-Web clients read from a response besides its body. */
#define EXPOSE_ALWAYS "grpc-status,grpc-message,grpc-status-details-bin"

struct cors_call {
    const uint8_t *origin; /* into the request head: stable while the call lives */
    size_t originlen;
    bool allowed;   /* the origin may read the answer */
    bool any;       /* cors_origins = *: "*" rather than the origin */
    bool preflight; /* answered here */
};

/* Per-worker: one buffer for the expose list, grown as needed. */
struct cors_worker {
    char *buf;
    size_t cap;
};

static void worker_deinit(void *ws)
{
    struct cors_worker *w = ws;

    free(w->buf);
    w->buf = NULL;
}

static const struct conf_proxy *conf_of(struct proxy_call *call)
{
    return &proxy_call_env(call)->snap->conf->proxy;
}

static bool origin_allowed(const struct conf_proxy *pc, const uint8_t *o, size_t n, bool *any)
{
    *any = false;
    for (size_t i = 0; i < pc->ncors_origins; i++) {
        const char *c = pc->cors_origins[i];

        if (strcmp(c, "*") == 0) {
            *any = true;
            return true;
        }
        if (strlen(c) == n && memcmp(c, o, n) == 0)
            return true;
    }
    return false;
}

static enum proxy_filter_rc on_request_early(struct proxy_call *call, void *st, void *ws)
{
    struct cors_call *cc = st;
    const struct conf_proxy *pc = conf_of(call);
    struct proxy_head *h = proxy_call_req_head(call);
    const nghttp2_nv *origin, *method, *acrm;

    (void)ws;
    if (pc->ncors_origins == 0 || (origin = proxy_head_get(h, "origin", 6)) == NULL)
        return PROXY_FILTER_CONTINUE;
    cc->origin = origin->value;
    cc->originlen = origin->valuelen;
    cc->allowed = origin_allowed(pc, origin->value, origin->valuelen, &cc->any);
    method = proxy_head_get(h, ":method", 7);
    acrm = proxy_head_get(h, "access-control-request-method", 29);
    if (method == NULL || acrm == NULL || method->valuelen != 7 ||
        memcmp(method->value, "OPTIONS", 7) != 0)
        return PROXY_FILTER_CONTINUE;
    /* A preflight: answered here, never routed. An origin not allowed gets
     * no CORS headers, which the browser reads as a refusal. */
    cc->preflight = true;
    proxy_call_respond_http(call, cc->allowed ? "204" : "403");
    return PROXY_FILTER_STOP;
}

static bool standard_field(const nghttp2_nv *f)
{
    static const char *const skip[] = {
        "content-type", "content-length",          "date", "server", "vary", "grpc-status",
        "grpc-message", "grpc-status-details-bin", NULL};

    if (f->namelen == 0 || f->name[0] == ':' ||
        (f->namelen >= 15 && memcmp(f->name, "access-control-", 15) == 0))
        return true;
    for (size_t i = 0; skip[i] != NULL; i++) {
        if (f->namelen == strlen(skip[i]) && memcmp(f->name, skip[i], f->namelen) == 0)
            return true;
    }
    return false;
}

/* Access-Control-Expose-Headers: the gRPC fields and every metadata key of
 * |h| (a trailers-only answer carries its metadata here). */
static void add_expose(struct cors_worker *w, struct proxy_head *h)
{
    size_t len = sizeof(EXPOSE_ALWAYS) - 1, need = len + 1;

    for (size_t i = 0; i < h->n; i++) {
        if (!standard_field(&h->nv[i]))
            need += h->nv[i].namelen + 1;
    }
    if (need > w->cap) {
        w->buf = xreallocarray(w->buf, need, 1);
        w->cap = need;
    }
    memcpy(w->buf, EXPOSE_ALWAYS, len);
    for (size_t i = 0; i < h->n; i++) {
        if (standard_field(&h->nv[i]))
            continue;
        w->buf[len++] = ',';
        memcpy(w->buf + len, h->nv[i].name, h->nv[i].namelen);
        len += h->nv[i].namelen;
    }
    proxy_head_add(h, "access-control-expose-headers", 29, w->buf, len);
}

static enum proxy_filter_rc on_response_head(struct proxy_call *call, void *st, void *ws,
                                             struct proxy_head *h, bool end)
{
    struct cors_call *cc = st;
    struct proxy_head *req = proxy_call_req_head(call);
    char age[16];

    (void)end;
    if (!cc->allowed)
        return PROXY_FILTER_CONTINUE;
    if (cc->any) {
        proxy_head_add_static(h, "access-control-allow-origin", "*");
    } else {
        proxy_head_add(h, "access-control-allow-origin", 27, (const char *)cc->origin,
                       cc->originlen);
        proxy_head_add_static(h, "vary", "origin");
    }
    if (!cc->preflight) {
        add_expose(ws, h);
        return PROXY_FILTER_CONTINUE;
    }
    {
        const nghttp2_nv *acrh = proxy_head_get(req, "access-control-request-headers", 30);

        proxy_head_add_static(h, "access-control-allow-methods", "GET, POST, PUT, PATCH, DELETE");
        /* Any request header the page asks for: the origin is trusted, and
         * gRPC metadata keys are the application's own. */
        if (acrh != NULL)
            proxy_head_add(h, "access-control-allow-headers", 28, (const char *)acrh->value,
                           acrh->valuelen);
        snprintf(age, sizeof(age), "%u", conf_of(call)->cors_max_age_ms / 1000);
        proxy_head_add(h, "access-control-max-age", 22, age, strlen(age));
    }
    return PROXY_FILTER_CONTINUE;
}

const struct proxy_filter proxy_filter_cors = {
    .name = "cors",
    .call_state = sizeof(struct cors_call),
    .worker_state = sizeof(struct cors_worker),
    .worker_deinit = worker_deinit,
    .on_request_early = on_request_early,
    .on_response_head = on_response_head,
};
