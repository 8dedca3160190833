/* switchyard's own grpc.health.v1.Health, Check and Watch, answered by each
 * worker before routing from its snapshot and its draining state. Service ""
 * is SERVING while every cluster has an endpoint in rotation; each cluster
 * name is a service of its own; everything is NOT_SERVING while draining.
 * Invariant: a Watch call is on its worker's list exactly while its state says
 * |watch|. The request message stays in the call's request body until the
 * call ends, so a Watch keeps no copy of its service name and decoding
 * allocates nothing (a stack arena for protobuf-c).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "selfhealth"
#include "proxy/filters/filters.h"

#include <stdalign.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "conf/conf.h"
#include "core/grpc.h"
#include "core/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "proxy/call.h"

#define CHECK_PATH "/grpc.health.v1.Health/Check"
#define WATCH_PATH "/grpc.health.v1.Health/Watch"
#define FRAME_HDR  5    /* gRPC Length-Prefixed-Message: flag + 4-byte length */
#define MAX_REQ    1024 /* a HealthCheckRequest is one service name */

#define SERVING         GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
#define NOT_SERVING     GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
#define SERVICE_UNKNOWN GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN

struct sh_call {
    struct proxy_call *call;
    bool mine;  /* a Check or Watch this filter answers */
    bool watch; /* on the worker's list of Watch calls */
    int sent;   /* the ServingStatus a Watch sent last */
    struct sh_call *next, *prev;
};

struct sh_worker {
    struct proxy_call_env *env;
    struct sh_call *watchers;
};

static bool path_is(struct proxy_call *call, const char *p, size_t len)
{
    size_t pl;
    const uint8_t *path = proxy_call_path(call, &pl);

    return pl == len && memcmp(path, p, len) == 0;
}

/* ---- status ---- */

/* The ServingStatus of |svc| now, or -1 for an unknown service. Service ""
 * depends on the clusters with `required = yes` only, as /healthz does. */
static int status_of(const struct proxy_call_env *env, const char *svc)
{
    const struct bal_snapshot *s = env->snap;
    bool all = true;

    for (size_t i = 0; i < s->nclusters; i++) {
        bool up = s->clusters[i].nrotation > 0 && !env->draining;

        if (svc[0] != '\0' && strcmp(s->clusters[i].name, svc) == 0)
            return up ? SERVING : NOT_SERVING;
        all = all && (up || !s->clusters[i].conf->required);
    }
    if (svc[0] != '\0')
        return -1;
    return all && !env->draining ? SERVING : NOT_SERVING;
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
    struct evbuffer *b = proxy_call_req_body(call);
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
    *status = status_of(proxy_call_env(call), req->service != NULL ? req->service : "");
    return GRPC_OK;
}

/* ---- answers ---- */

static void send_message(struct proxy_call *call, int status)
{
    Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    uint8_t buf[FRAME_HDR + 16];
    size_t n;

    rep.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    n = grpc__health__v1__health_check_response__pack(&rep, buf + FRAME_HDR);
    buf[0] = 0;
    buf[1] = buf[2] = buf[3] = 0;
    buf[4] = (uint8_t)n; /* a varint field: a few bytes */
    proxy_call_respond_data(call, buf, FRAME_HDR + n);
}

static void watch_unlink(struct sh_worker *w, struct sh_call *sc)
{
    if (!sc->watch)
        return;
    if (sc->prev != NULL)
        sc->prev->next = sc->next;
    else
        w->watchers = sc->next;
    if (sc->next != NULL)
        sc->next->prev = sc->prev;
    sc->next = sc->prev = NULL;
    sc->watch = false;
}

/* A Watch ends when switchyard drains: the client has had NOT_SERVING, and an
 * open stream would hold the drain until drain_timeout. */
static void watch_end(struct sh_worker *w, struct sh_call *sc)
{
    watch_unlink(w, sc);
    proxy_call_fail(sc->call, GRPC_UNAVAILABLE, "switchyard is shutting down");
}

static void answer(struct proxy_call *call, struct sh_call *sc, struct sh_worker *w)
{
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
        proxy_call_respond_head(call);
        send_message(call, status);
        proxy_call_respond_end(call, GRPC_OK, NULL);
        return;
    }
    /* health.proto: an unknown service gets SERVICE_UNKNOWN and the call stays
     * open (a reload may add a cluster of that name). */
    sc->sent = status < 0 ? SERVICE_UNKNOWN : status;
    sc->watch = true;
    sc->prev = NULL;
    sc->next = w->watchers;
    if (w->watchers != NULL)
        w->watchers->prev = sc;
    w->watchers = sc;
    proxy_call_respond_head(call);
    send_message(call, sc->sent);
    if (w->env->draining)
        watch_end(w, sc);
}

/* ---- hooks ---- */

static enum proxy_filter_rc on_request_head(struct proxy_call *call, void *st, void *ws)
{
    struct sh_call *sc = st;

    (void)ws;
    if (!path_is(call, CHECK_PATH, sizeof(CHECK_PATH) - 1) &&
        !path_is(call, WATCH_PATH, sizeof(WATCH_PATH) - 1))
        return PROXY_FILTER_CONTINUE;
    sc->call = call;
    sc->mine = true;
    proxy_call_arm_deadline(call);
    if (path_is(call, WATCH_PATH, sizeof(WATCH_PATH) - 1))
        proxy_call_no_idle_timeout(call); /* quiet by design: it speaks on changes */
    /* The answer comes once the request message is complete (on_request_end). */
    return PROXY_FILTER_STOP;
}

static void on_request_end(struct proxy_call *call, void *st, void *ws)
{
    struct sh_call *sc = st;

    if (!sc->mine || proxy_call_state(call) >= PROXY_CALL_STREAMING)
        return;
    answer(call, sc, ws);
}

static void on_done(struct proxy_call *call, void *st, void *ws)
{
    (void)call;
    watch_unlink(ws, st);
}

static void worker_init(void *ws, struct proxy_call_env *env)
{
    struct sh_worker *w = ws;

    w->env = env;
}

static void on_snapshot(void *ws, struct proxy_call_env *env)
{
    struct sh_worker *w = ws;
    struct sh_call *sc = w->watchers;

    (void)env;
    while (sc != NULL) {
        struct sh_call *next = sc->next;
        const char *why = NULL;
        int status = -1;

        if (proxy_call_state(sc->call) >= PROXY_CALL_FINAL) {
            sc = next; /* ending already (deadline); unlinked when it is done */
            continue;
        }
        if (request_status(sc->call, &status, &why) == GRPC_OK) {
            if (status < 0)
                status = SERVICE_UNKNOWN;
            if (status != sc->sent) {
                sc->sent = status;
                send_message(sc->call, status);
            }
        }
        if (w->env->draining)
            watch_end(w, sc);
        sc = next;
    }
}

const struct proxy_filter proxy_filter_selfhealth = {
    .name = "selfhealth",
    .call_state = sizeof(struct sh_call),
    .worker_state = sizeof(struct sh_worker),
    .worker_init = worker_init,
    .on_snapshot = on_snapshot,
    .on_request_head = on_request_head,
    .on_request_end = on_request_end,
    .on_done = on_done,
};
