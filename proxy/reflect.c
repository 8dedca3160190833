/* gRPC server reflection client (reflect.h). One stream per request (each
 * ServerReflectionInfo call sends one request and reads its answer): first
 * list_services, then file_containing_symbol per service, then
 * file_by_filename for every import not received yet, until the set of files
 * is closed under imports. v1 first; UNIMPLEMENTED (or HTTP 404) on the
 * first request switches to v1alpha, whose messages are the same.
 * Invariant: |done| is set once, when the callback runs; afterwards every
 * event is ignored and the connection is on its way out.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "reflect"
#include "proxy/reflect.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core/alloc.h"
#include "core/grpc.h"
#include "core/log.h"
#include "core/tls.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "proxy/conn.h"

#define PATH_V1      "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
#define PATH_V1ALPHA "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"
#define MAX_FILES    4096
#define MAX_ANSWER   (64 * 1024 * 1024) /* one response message */

enum req_kind {
    REQ_LIST,
    REQ_SYMBOL,
    REQ_FILE
};

struct rstream {
    struct proxy_reflect *r;
    enum req_kind kind;
    uint8_t *req; /* the framed request */
    size_t reqlen, reqoff;
    struct evbuffer *body;
    int http_status;
    int grpc_status;
};

struct rfile {
    char *name;
    uint8_t *p;
    size_t n;
};

struct proxy_reflect {
    struct proxy_conn conn;
    proxy_reflect_cb cb;
    void *arg;
    char authority[256];
    char peer[64];
    bool tls;
    bool v1alpha;
    bool done;
    int inflight;
    struct rfile *files;
    size_t nfiles, capfiles;
    char **asked; /* file names requested (or received) */
    size_t nasked, capasked;
    struct event *timer;
};

static void finish(struct proxy_reflect *r, const char *why)
{
    struct tc_bytes *v;

    if (r->done)
        return;
    r->done = true;
    if (r->timer != NULL)
        event_del(r->timer);
    if (r->cb != NULL) {
        if (why != NULL) {
            r->cb(r->arg, NULL, 0, why);
        } else {
            v = xcalloc(r->nfiles + 1, sizeof(*v));
            for (size_t i = 0; i < r->nfiles; i++)
                v[i] = (struct tc_bytes){r->files[i].p, r->files[i].n};
            r->cb(r->arg, v, r->nfiles, NULL);
            free(v);
        }
    }
    proxy_conn_close_soon(&r->conn);
}

static bool asked(const struct proxy_reflect *r, const char *name)
{
    for (size_t i = 0; i < r->nasked; i++) {
        if (strcmp(r->asked[i], name) == 0)
            return true;
    }
    return false;
}

static void ask_add(struct proxy_reflect *r, const char *name)
{
    if (r->nasked == r->capasked) {
        r->capasked = r->capasked == 0 ? 16 : r->capasked * 2;
        r->asked = xreallocarray(r->asked, r->capasked, sizeof(*r->asked));
    }
    r->asked[r->nasked++] = xstrdup(name);
}

static ssize_t on_read_req(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t len,
                           uint32_t *flags, nghttp2_data_source *src, void *user_data)
{
    struct rstream *s = src->ptr;
    size_t n = s->reqlen - s->reqoff;

    (void)session;
    (void)sid;
    (void)user_data;
    if (n > len)
        n = len;
    memcpy(buf, s->req + s->reqoff, n);
    s->reqoff += n;
    if (s->reqoff == s->reqlen)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

/* Sends one ServerReflectionRequest on a stream of its own. */
static int request(struct proxy_reflect *r, enum req_kind kind, const char *arg)
{
    Grpc__Reflection__V1__ServerReflectionRequest q =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
    struct rstream *s = xcalloc(1, sizeof(*s));
    const char *path = r->v1alpha ? PATH_V1ALPHA : PATH_V1;
    nghttp2_nv nv[] = {
        {(uint8_t *)":method", (uint8_t *)"POST", 7, 4, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":scheme", (uint8_t *)(r->tls ? "https" : "http"), 7, r->tls ? 5 : 4,
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":path", (uint8_t *)path, 5, strlen(path), NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)":authority", (uint8_t *)r->authority, 10, strlen(r->authority),
         NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"te", (uint8_t *)"trailers", 2, 8, NGHTTP2_NV_FLAG_NONE},
        {(uint8_t *)"user-agent", (uint8_t *)"switchyard-reflection", 10, 21, NGHTTP2_NV_FLAG_NONE},
    };
    nghttp2_data_provider dp = {.source.ptr = s, .read_callback = on_read_req};
    size_t n;
    int32_t sid;

    switch (kind) {
    case REQ_LIST:
        q.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
        q.list_services = (char *)"";
        break;
    case REQ_SYMBOL:
        q.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
        q.file_containing_symbol = (char *)arg;
        break;
    case REQ_FILE:
        q.message_request_case =
            GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
        q.file_by_filename = (char *)arg;
        break;
    }
    n = grpc__reflection__v1__server_reflection_request__get_packed_size(&q);
    s->r = r;
    s->kind = kind;
    s->req = xcalloc(1, n + 5);
    s->req[1] = (uint8_t)(n >> 24);
    s->req[2] = (uint8_t)(n >> 16);
    s->req[3] = (uint8_t)(n >> 8);
    s->req[4] = (uint8_t)n;
    grpc__reflection__v1__server_reflection_request__pack(&q, s->req + 5);
    s->reqlen = n + 5;
    s->body = evbuffer_new();
    s->grpc_status = -1;
    sid = nghttp2_submit_request(r->conn.session, NULL, nv, sizeof(nv) / sizeof(nv[0]), &dp, s);
    if (sid < 0 || s->body == NULL) {
        if (s->body != NULL)
            evbuffer_free(s->body);
        free(s->req);
        free(s);
        return -1;
    }
    r->inflight++;
    proxy_conn_schedule(&r->conn);
    return 0;
}

struct deps_ctx {
    char *self;
    char **deps;
    size_t ndeps;
};

static void on_dep(const char *name, bool self, void *arg)
{
    struct deps_ctx *d = arg;

    if (self) {
        free(d->self);
        d->self = xstrdup(name);
        return;
    }
    d->deps = xreallocarray(d->deps, d->ndeps + 1, sizeof(*d->deps));
    d->deps[d->ndeps++] = xstrdup(name);
}

static bool have_file(const struct proxy_reflect *r, const char *name)
{
    for (size_t i = 0; i < r->nfiles; i++) {
        if (strcmp(r->files[i].name, name) == 0)
            return true;
    }
    return false;
}

/* One FileDescriptorResponse: keep the files new to us, ask for their
 * imports we have neither received nor asked for. */
static int take_files(struct proxy_reflect *r,
                      const Grpc__Reflection__V1__FileDescriptorResponse *f)
{
    int rc = 0;

    for (size_t i = 0; i < f->n_file_descriptor_proto && rc == 0; i++) {
        const ProtobufCBinaryData *b = &f->file_descriptor_proto[i];
        struct deps_ctx d = {0};

        if (tc_file_deps(b->data, b->len, on_dep, &d) != 0 || d.self == NULL) {
            rc = -1;
        } else if (!have_file(r, d.self)) {
            if (r->nfiles == MAX_FILES) {
                rc = -1;
            } else {
                if (r->nfiles == r->capfiles) {
                    r->capfiles = r->capfiles == 0 ? 16 : r->capfiles * 2;
                    r->files = xreallocarray(r->files, r->capfiles, sizeof(*r->files));
                }
                r->files[r->nfiles].name = xstrdup(d.self);
                r->files[r->nfiles].p = xcalloc(1, b->len + 1);
                memcpy(r->files[r->nfiles].p, b->data, b->len);
                r->files[r->nfiles].n = b->len;
                r->nfiles++;
                if (!asked(r, d.self))
                    ask_add(r, d.self);
            }
        }
        for (size_t j = 0; j < d.ndeps; j++) {
            if (rc == 0 && !asked(r, d.deps[j]) && !have_file(r, d.deps[j])) {
                ask_add(r, d.deps[j]);
                rc = request(r, REQ_FILE, d.deps[j]);
            }
            free(d.deps[j]);
        }
        free(d.deps);
        free(d.self);
    }
    return rc;
}

/* A stream ended: what its answer says. */
static void stream_done(struct proxy_reflect *r, struct rstream *s)
{
    Grpc__Reflection__V1__ServerReflectionResponse *resp = NULL;
    size_t len = evbuffer_get_length(s->body);
    uint8_t hdr[5];
    uint32_t n = 0;
    char why[256];

    r->inflight--;
    if (r->done)
        return;
    if (s->kind == REQ_LIST && !r->v1alpha &&
        (s->grpc_status == GRPC_UNIMPLEMENTED || s->http_status == 404)) {
        /* An older server: v1alpha has the same messages. */
        r->v1alpha = true;
        if (request(r, REQ_LIST, NULL) != 0)
            finish(r, "cannot send a request");
        return;
    }
    if (s->http_status != 200) {
        snprintf(why, sizeof(why), "HTTP status %d", s->http_status);
        finish(r, why);
        return;
    }
    if (s->grpc_status != GRPC_OK) {
        snprintf(why, sizeof(why), "%s: grpc-status %d (%s)",
                 r->v1alpha ? "grpc.reflection.v1alpha" : "grpc.reflection.v1", s->grpc_status,
                 s->grpc_status >= 0 ? grpc_code_name(s->grpc_status) : "none");
        finish(r, why);
        return;
    }
    if (len >= 5) {
        evbuffer_copyout(s->body, hdr, 5);
        n = (uint32_t)hdr[1] << 24 | (uint32_t)hdr[2] << 16 | (uint32_t)hdr[3] << 8 | hdr[4];
    }
    if (len < 5 || hdr[0] != 0 || n > MAX_ANSWER || len < 5 + (size_t)n) {
        finish(r, "no reflection answer (or a compressed one)");
        return;
    }
    resp = grpc__reflection__v1__server_reflection_response__unpack(
        NULL, n, evbuffer_pullup(s->body, (ev_ssize_t)(5 + n)) + 5);
    if (resp == NULL) {
        finish(r, "a reflection answer does not decode");
        return;
    }
    switch (resp->message_response_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE:
        for (size_t i = 0; i < resp->list_services_response->n_service; i++) {
            const char *name = resp->list_services_response->service[i]->name;

            if (strncmp(name, "grpc.reflection.", 16) == 0)
                continue;
            if (request(r, REQ_SYMBOL, name) != 0) {
                finish(r, "cannot send a request");
                break;
            }
        }
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE:
        if (take_files(r, resp->file_descriptor_response) != 0)
            finish(r, "a file descriptor does not parse");
        break;
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE:
        snprintf(why, sizeof(why), "reflection error %d: %s", resp->error_response->error_code,
                 resp->error_response->error_message);
        finish(r, why);
        break;
    default:
        finish(r, "an unexpected reflection answer");
        break;
    }
    grpc__reflection__v1__server_reflection_response__free_unpacked(resp, NULL);
    if (!r->done && r->inflight == 0)
        finish(r, NULL);
}

/* ---- nghttp2 callbacks (client role) ---- */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags,
                     void *user_data)
{
    struct rstream *s = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    (void)flags;
    (void)user_data;
    if (s == NULL)
        return 0;
    if (namelen == 7 && memcmp(name, ":status", 7) == 0)
        s->http_status = (int)strtol((const char *)value, NULL, 10); /* NUL-terminated */
    else if (namelen == 11 && memcmp(name, "grpc-status", 11) == 0)
        s->grpc_status = grpc_status_parse(value, valuelen);
    return 0;
}

static int on_data(nghttp2_session *session, uint8_t flags, int32_t sid, const uint8_t *data,
                   size_t len, void *user_data)
{
    struct rstream *s = nghttp2_session_get_stream_user_data(session, sid);

    (void)flags;
    (void)user_data;
    if (s != NULL && evbuffer_get_length(s->body) + len <= MAX_ANSWER + 5)
        evbuffer_add(s->body, data, len);
    return 0;
}

static int on_close(nghttp2_session *session, int32_t sid, uint32_t error_code, void *user_data)
{
    struct rstream *s = nghttp2_session_get_stream_user_data(session, sid);
    struct proxy_reflect *r = user_data;

    if (s == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, sid, NULL);
    if (error_code != NGHTTP2_NO_ERROR && s->grpc_status < 0) {
        char why[96];

        snprintf(why, sizeof(why), "stream reset (%s)", nghttp2_http2_strerror(error_code));
        r->inflight--;
        finish(r, why);
    } else {
        stream_done(r, s);
    }
    evbuffer_free(s->body);
    free(s->req);
    free(s);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_reflect *r = user_data;

    (void)session;
    if (frame->hd.type == NGHTTP2_GOAWAY && r->inflight > 0 && frame->goaway.last_stream_id == 0)
        finish(r, "the endpoint sent GOAWAY");
    return 0;
}

static nghttp2_session_callbacks *callbacks(void)
{
    static nghttp2_session_callbacks *cbs;

    if (cbs == NULL) { /* main thread only */
        nghttp2_session_callbacks_new(&cbs);
        nghttp2_session_callbacks_set_send_callback(cbs, proxy_conn_send_cb);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_close);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    }
    return cbs;
}

/* ---- the connection ---- */

static struct proxy_reflect *of_conn(struct proxy_conn *c)
{
    return (struct proxy_reflect *)((char *)c - offsetof(struct proxy_reflect, conn));
}

static void on_connected(struct proxy_conn *c)
{
    struct proxy_reflect *r = of_conn(c);

    c->hold = false;
    if (request(r, REQ_LIST, NULL) != 0)
        finish(r, "cannot send a request");
    proxy_conn_schedule(c);
}

static void on_io_error(struct proxy_conn *c, short what)
{
    struct proxy_reflect *r = of_conn(c);
    char why[160];

    if (c->tls && (what & BEV_EVENT_ERROR)) {
        char tls[128];

        snprintf(why, sizeof(why), "TLS: %s", tls_error(c->bev, tls, sizeof(tls)));
    } else {
        snprintf(why, sizeof(why), "%s",
                 what & BEV_EVENT_TIMEOUT ? "connect timed out"
                 : what & BEV_EVENT_EOF   ? "connection closed"
                                          : "connection failed");
    }
    finish(r, why);
    proxy_conn_close_soon(c);
}

static void on_read_error(struct proxy_conn *c, int rv)
{
    struct proxy_reflect *r = of_conn(c);
    char why[128];

    snprintf(why, sizeof(why), "HTTP/2: %s", nghttp2_strerror(rv));
    finish(r, why);
}

static void destroy(struct proxy_conn *c)
{
    struct proxy_reflect *r = of_conn(c);

    proxy_conn_deinit(c);
    for (size_t i = 0; i < r->nfiles; i++) {
        free(r->files[i].name);
        free(r->files[i].p);
    }
    free(r->files);
    for (size_t i = 0; i < r->nasked; i++)
        free(r->asked[i]);
    free(r->asked);
    if (r->timer != NULL)
        event_free(r->timer);
    free(r);
}

static const struct proxy_conn_ops reflect_ops = {
    .on_connected = on_connected,
    .on_io_error = on_io_error,
    .on_read_error = on_read_error,
    .destroy = destroy,
};

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    finish(arg, "timed out");
}

struct proxy_reflect *proxy_reflect_start(struct event_base *base, struct proxy_flusher *fl,
                                          const struct sockaddr *sa, socklen_t salen, SSL *ssl,
                                          const char *authority, uint32_t timeout_ms,
                                          proxy_reflect_cb cb, void *arg)
{
    struct proxy_reflect *r = xcalloc(1, sizeof(*r));
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    r->cb = cb;
    r->arg = arg;
    r->tls = ssl != NULL;
    snprintf(r->authority, sizeof(r->authority), "%s", authority);
    snprintf(r->peer, sizeof(r->peer), "%s", authority);
    if (proxy_conn_init(&r->conn, &reflect_ops, fl, base, -1, ssl, false, "reflection", r->peer) !=
        0) {
        free(r);
        return NULL;
    }
    if (nghttp2_session_client_new(&r->conn.session, callbacks(), r) != 0 ||
        nghttp2_submit_settings(r->conn.session, NGHTTP2_FLAG_NONE, iv, 1) != 0 ||
        proxy_conn_connect(&r->conn, sa, (int)salen, timeout_ms) != 0) {
        proxy_conn_deinit(&r->conn);
        free(r);
        return NULL;
    }
    r->timer = evtimer_new(base, on_timeout, r);
    evtimer_add(r->timer, &tv);
    return r;
}

void proxy_reflect_cancel(struct proxy_reflect *r)
{
    r->cb = NULL;
    r->done = true;
    if (r->timer != NULL)
        event_del(r->timer);
    proxy_conn_close_soon(&r->conn);
}
