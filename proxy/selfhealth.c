/* switchyard's own grpc.health.v1.Health, Check and Watch, answered by each
 * worker before routing from its snapshot and its draining state. Service ""
 * is SERVING while every cluster has an endpoint in rotation; each cluster
 * name is a service of its own; everything is NOT_SERVING while draining.
 * Invariant: a Watch call is on w->watchers exactly while call->self_watch.
 * The request message stays in call->req_buf until the call ends (its flow
 * control credit is returned then), so a Watch keeps no copy of its service
 * name and decoding allocates nothing (a stack arena for protobuf-c).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "selfhealth"
#include "proxy/internal.h"

#include <stdalign.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "core/log.h"

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"
#define FRAME_HDR  5    /* gRPC Length-Prefixed-Message: flag + 4-byte length */
#define MAX_REQ    1024 /* a HealthCheckRequest is one service name */

#define SERVING         GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

static bool path_is(const struct proxy_call *call, const char *p, size_t len)
{
    return call->pathlen == len && memcmp(call->path, p, len) == 0;
}

bool proxy_selfhealth_match(const struct proxy_call *call)
{
    return path_is(call, CHECK_PATH, sizeof(CHECK_PATH) - 1) ||
           path_is(call, WATCH_PATH, sizeof(WATCH_PATH) - 1);
}

/* ---- status ---- */

/* The ServingStatus of |svc| on |w| now, or -1 for an unknown service. */
static int status_of(const struct proxy_worker *w, const char *svc)
{
    const struct bal_snapshot *s = w->snap;
    bool all = true;

    if (s == NULL)
        return svc[0] == '\0' ? NOT_SERVING : -1;
    for (size_t i = 0; i < s->nclusters; i++) {
        bool up = s->clusters[i].nrotation > 0 && !w->draining;

        if (svc[0] != '\0' && strcmp(s->clusters[i].name, svc) == 0)
            return up ? SERVING : NOT_SERVING;
        all = all && up;
    }
    if (svc[0] != '\0')
        return -1;
    return all && !w->draining ? SERVING : NOT_SERVING;
}

/* protobuf-c allocations go to a stack buffer: nothing to free, no malloc. */
struct arena {
    alignas(max_align_t) uint8_t mem[4 * MAX_REQ];
    size_t used;
};

static void *arena_alloc(void *data, size_t size)
{
    struct arena *a = data;
    size_t off = (a->used + alignof(max_align_t) - 1) & ~(alignof(max_align_t) - 1);

    if (off > sizeof(a->mem) || size > sizeof(a->mem) - off)
        return NULL;
    a->used = off + size;
    return a->mem + off;
}

static void arena_free(void *data, void *ptr)
{
    (void)data;
    (void)ptr;
}

/* Decodes the one HealthCheckRequest of |call| and stores the status of its
 * service in |*status| (-1: unknown service). Returns 0, or a gRPC status
 * code with |why| when the request is not exactly one such message. */
static int request_status(struct proxy_call *call, int *status, const char **why)
{
    struct evbuffer *b = call->req_buf;
    size_t len = evbuffer_get_length(b);
    struct arena a = {.used = 0};
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &a};
    Grpc__Health__V1__HealthCheckRequest *req;
    uint8_t hdr[FRAME_HDR];
    const uint8_t *p;
    uint32_t n;

    if (len < FRAME_HDR) {
        *why = "switchyard: no HealthCheckRequest";
        return GRPC_INVALID_ARGUMENT;
    }
    evbuffer_copyout(b, hdr, FRAME_HDR);
    n = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
    if (hdr[0] != 0) {
        /* We never advertise grpc-accept-encoding, so nothing may be compressed. */
        *why = "switchyard: compressed request not supported";
        return GRPC_UNIMPLEMENTED;
    }
    if (n > MAX_REQ) {
        *why = "switchyard: HealthCheckRequest too large";
        return GRPC_RESOURCE_EXHAUSTED;
    }
    if (len != FRAME_HDR + n) {
        *why = len < FRAME_HDR + n ? "switchyard: truncated HealthCheckRequest"
                                   : "switchyard: more than one request message";
        return GRPC_INVALID_ARGUMENT;
    }
    p = evbuffer_pullup(b, (ev_ssize_t)len); /* small; contiguous once, then a no-op */
    req =
        p != NULL ? grpc__health__v1__health_check_request__unpack(&alloc, n, p + FRAME_HDR) : NULL;
    if (req == NULL) {
        *why = "switchyard: cannot decode HealthCheckRequest";
        return GRPC_INVALID_ARGUMENT;
    }
    *status = status_of(call->w, req->service != NULL ? req->service : "");
    return GRPC_OK;
}

/* ---- answers ---- */

static void add_message(struct proxy_call *call, int status)
{
    Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t buf[FRAME_HDR + 16];
    size_t n;

    rep.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    n = grpc__health__v1__health_check_response__pack(&rep, buf + FRAME_HDR);
    buf[0] = 0;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (uint8_t)n; /* a varint field: a few bytes */
    evbuffer_add(call->resp_buf, buf, FRAME_HDR + n);
}

/* Response headers; the body comes from call->resp_buf through the same data
 * provider as proxied responses (proxy_call_read_cb), trailers from call->trl. */
static void submit_headers(struct proxy_call *call)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = proxy_call_read_cb};

    call->resp_started = true;
    nghttp2_submit_response(call->fe->c.session, call->fe_sid, nva, 2, &prd);
    proxy_conn_schedule(&call->fe->c);
}

/* A Watch ends when switchyard drains: the client has had NOT_SERVING, and an
 * open stream would hold the drain until drain_timeout. */
static void watch_end(struct proxy_call *call)
{
    proxy_selfhealth_call_gone(call);
    proxy_call_fail(call, GRPC_UNAVAILABLE, "switchyard is shutting down");
}

static void answer(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    bool watch = path_is(call, WATCH_PATH, sizeof(WATCH_PATH) - 1);
    const char *why = NULL;
    int status = -1;
    int code = request_status(call, &status, &why);

    if (code != GRPC_OK) {
        proxy_call_fail(call, code, why);
        return;
    }
    if (!watch) {
        if (status < 0) {
            proxy_call_fail(call, GRPC_NOT_FOUND,
                            "switchyard: unknown service (known: \"\" and the cluster names)");
            return;
        }
        add_message(call, status);
        proxy_call_add_trailer(call, (const uint8_t *)"grpc-status", 11, (const uint8_t *)"0", 1);
        call->resp_eof = true;
        call->status = GRPC_OK;
        submit_headers(call);
        return;
    }
    /* health.proto: an unknown service gets SERVICE_UNKNOWN and the call stays
     * open (a reload may add a cluster of that name). */
    call->self_sent = status < 0 ? SERVICE_UNKNOWN : status;
    call->self_watch = true;
    TAILQ_INSERT_TAIL(&w->watchers, call, watch_link);
    add_message(call, call->self_sent);
    submit_headers(call);
    if (w->draining)
        watch_end(call);
}

void proxy_selfhealth_start(struct proxy_call *call)
{
    call->self_health = true;
    if (call->timeout_ms > 0) {
        struct timeval tv = {.tv_sec = call->timeout_ms / 1000,
                             .tv_usec = (call->timeout_ms % 1000) * 1000};

        event_add(call->deadline, &tv);
    }
    if (call->req_eof)
        answer(call);
    /* else proxy_selfhealth_request_end() answers once the request is complete */
}

void proxy_selfhealth_request_end(struct proxy_call *call)
{
    if (call->fe == NULL || call->resp_started || call->resp_done)
        return;
    answer(call);
}

void proxy_selfhealth_update(struct proxy_worker *w)
{
    struct proxy_call *call = TAILQ_FIRST(&w->watchers);

    while (call != NULL) {
        struct proxy_call *next = TAILQ_NEXT(call, watch_link);
        const char *why = NULL;
        int status = -1;

        if (call->resp_eof || call->resp_done || call->fe == NULL) {
            call = next; /* ending already (deadline); freed with its stream */
            continue;
        }
        if (request_status(call, &status, &why) == GRPC_OK) {
            if (status < 0)
                status = SERVICE_UNKNOWN;
            if (status != call->self_sent) {
                call->self_sent = status;
                add_message(call, status);
                proxy_call_resume_fe(call);
            }
        }
        if (w->draining)
            watch_end(call);
        call = next;
    }
}

void proxy_selfhealth_call_gone(struct proxy_call *call)
{
    if (!call->self_watch)
        return;
    TAILQ_REMOVE(&call->w->watchers, call, watch_link);
    call->self_watch = false;
}
