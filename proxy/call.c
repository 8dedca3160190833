/* Calls: the link between a frontend stream and a backend stream, routing,
 * retries, deadlines, gRPC error answers and the coupled flow control.
 * Invariant: request bytes are credited back to the client (consume) only once
 * written towards the backend, and response bytes to the backend only once
 * written towards the client, so each stream buffers at most one window per
 * direction.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "call"
#include "proxy/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/auth.h"
#include "core/grpc.h"
#include "core/log.h"

static void on_deadline(evutil_socket_t fd, short what, void *arg);

struct proxy_call *proxy_call_new(struct proxy_worker *w, struct proxy_fe_conn *fe, int32_t sid)
{
    struct proxy_call *call = w->free_calls;

    if (call != NULL) {
        w->free_calls = call->next_free;
    } else {
        call = calloc(1, sizeof(*call));
        if (call == NULL) {
            log_error("out of memory");
            abort();
        }
        call->w = w;
        call->req_buf = evbuffer_new();
        call->resp_buf = evbuffer_new();
        call->deadline = event_new(w->base, -1, 0, on_deadline, call);
        if (call->req_buf == NULL || call->resp_buf == NULL || call->deadline == NULL) {
            log_error("out of memory");
            abort();
        }
    }
    call->next_free = NULL;
    call->fe = fe;
    call->fe_sid = sid;
    call->status = -1;
    call->start_ns = proxy_mono_ns();
    return call;
}

void proxy_rcbuf_push(nghttp2_rcbuf ***arr, size_t *n, size_t *cap, nghttp2_rcbuf *name,
                      nghttp2_rcbuf *value)
{
    if (*n + 2 > *cap) {
        size_t ncap = *cap == 0 ? 32 : *cap * 2;
        nghttp2_rcbuf **a = reallocarray(*arr, ncap, sizeof(*a));

        if (a == NULL) {
            log_error("out of memory");
            abort();
        }
        *arr = a;
        *cap = ncap;
    }
    /* Held, not copied: nghttp2 keeps the bytes alive until the decref. */
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    (*arr)[(*n)++] = name;
    (*arr)[(*n)++] = value;
}

void proxy_call_release_rhdr(struct proxy_call *call)
{
    for (size_t i = 0; i < call->nrhdr; i++)
        nghttp2_rcbuf_decref(call->rhdr[i]);
    call->nrhdr = 0;
}

void proxy_call_detach_be(struct proxy_call *call, uint32_t err)
{
    struct proxy_be_conn *bc = call->be;
    size_t unsent = evbuffer_get_length(call->resp_buf);

    if (call->waiting != NULL) {
        TAILQ_REMOVE(&call->waiting->waiting, call, be_link);
        call->waiting = NULL;
    }
    if (bc == NULL)
        return;
    bc->pool->active_calls--;
    if (call->cluster < call->w->nlb) /* h-bal hookup */
        bal_attempt_end(&call->w->lb[call->cluster], bc->pool->id);
    proxy_call_release_rhdr(call);
    if (call->be_open) {
        nghttp2_session_set_stream_user_data(bc->c.session, call->be_sid, NULL);
        nghttp2_submit_rst_stream(bc->c.session, NGHTTP2_FLAG_NONE, call->be_sid, err);
        call->be_open = false;
        bc->nstreams--;
    }
    /* Buffered response bytes will not be credited by a send any more. */
    if (unsent > 0)
        nghttp2_session_consume(bc->c.session, call->be_sid, unsent);
    TAILQ_REMOVE(&bc->calls, call, be_link);
    call->be = NULL;
    proxy_conn_schedule(&bc->c);
}

static void call_reset(struct proxy_call *call)
{
    struct evbuffer *req = call->req_buf, *resp = call->resp_buf;
    struct event *deadline = call->deadline;
    nghttp2_rcbuf **hdr = call->hdr, **rhdr = call->rhdr;
    size_t hdrcap = call->hdrcap, rhdrcap = call->rhdrcap, trlcap = call->trlcap;
    char *trl = call->trl;
    struct proxy_worker *w = call->w;

    /* Keep the buffers and arrays: the next call on this worker reuses them. */
    memset(call, 0, sizeof(*call));
    call->w = w;
    call->req_buf = req;
    call->resp_buf = resp;
    call->deadline = deadline;
    call->hdr = hdr;
    call->hdrcap = hdrcap;
    call->rhdr = rhdr;
    call->rhdrcap = rhdrcap;
    call->trl = trl;
    call->trlcap = trlcap;
}

void proxy_call_free(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    size_t unsent = evbuffer_get_length(call->req_buf);

    proxy_selfhealth_call_gone(call);
    proxy_call_detach_be(call, call->be_complete ? NGHTTP2_NO_ERROR : NGHTTP2_CANCEL);
    event_del(call->deadline);
    if (call->status < 0 && !call->resp_done)
        call->status = GRPC_CANCELLED; /* the client went away or reset the stream */
    proxy_stats_call_done(call);
    if (call->fe != NULL && unsent > 0)
        nghttp2_session_consume(call->fe->c.session, call->fe_sid, unsent);
    evbuffer_drain(call->req_buf, evbuffer_get_length(call->req_buf));
    evbuffer_drain(call->resp_buf, evbuffer_get_length(call->resp_buf));
    for (size_t i = 0; i < call->nhdr; i++)
        nghttp2_rcbuf_decref(call->hdr[i]);
    free(call->fwd_nv);
    call_reset(call);
    call->next_free = w->free_calls;
    w->free_calls = call;
}

void proxy_call_destroy(struct proxy_call *call)
{
    evbuffer_free(call->req_buf);
    evbuffer_free(call->resp_buf);
    event_free(call->deadline);
    free(call->hdr);
    free(call->rhdr);
    free(call->trl);
    free(call);
}

/* ---- answers made by the proxy ---- */

static void schedule_fe(struct proxy_call *call)
{
    if (call->fe != NULL)
        proxy_conn_schedule(&call->fe->c);
}

static void respond_http(struct proxy_call *call, const char *status)
{
    nghttp2_nv nva[] = {
        {(uint8_t *)":status", (uint8_t *)status, 7, 3, NGHTTP2_NV_FLAG_NONE},
    };

    call->resp_started = call->resp_done = true;
    call->status = GRPC_UNKNOWN; /* not a gRPC call */
    nghttp2_submit_response(call->fe->c.session, call->fe_sid, nva, 1, NULL);
    schedule_fe(call);
}

void proxy_call_add_trailer(struct proxy_call *call, const uint8_t *name, size_t nlen,
                            const uint8_t *value, size_t vlen)
{
    size_t need = call->trllen + nlen + vlen + 2;

    if (need > call->trlcap) {
        size_t cap = call->trlcap == 0 ? 256 : call->trlcap;
        char *n;

        while (cap < need)
            cap *= 2;
        n = realloc(call->trl, cap);
        if (n == NULL) {
            log_error("out of memory");
            abort();
        }
        call->trl = n;
        call->trlcap = cap;
    }
    memcpy(call->trl + call->trllen, name, nlen);
    call->trl[call->trllen + nlen] = '\0';
    memcpy(call->trl + call->trllen + nlen + 1, value, vlen);
    call->trl[call->trllen + nlen + 1 + vlen] = '\0';
    call->trllen = need;
    call->ntrl++;
}

void proxy_call_fail(struct proxy_call *call, int code, const char *msg)
{
    char codebuf[4], enc[512];

    proxy_call_detach_be(call, NGHTTP2_CANCEL);
    event_del(call->deadline);
    if (call->resp_done || call->fe == NULL)
        return;
    call->status = code;
    log_debug("call %.*s: %s: %s", (int)call->pathlen, (const char *)call->path,
              grpc_code_name(code), msg);
    snprintf(codebuf, sizeof(codebuf), "%d", code);
    grpc_message_encode(msg, enc, sizeof(enc));
    if (!call->resp_started) {
        /* Trailers-Only response (gRPC PROTOCOL-HTTP2: HTTP-Status Content-Type Trailers). */
        nghttp2_nv nva[] = {
            {(uint8_t *)":status", (uint8_t *)"200", 7, 3, NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"content-type", (uint8_t *)"application/grpc", 12, 16,
             NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-status", (uint8_t *)codebuf, 11, strlen(codebuf),
             NGHTTP2_NV_FLAG_NONE},
            {(uint8_t *)"grpc-message", (uint8_t *)enc, 12, strlen(enc), NGHTTP2_NV_FLAG_NONE},
        };

        call->resp_started = call->resp_done = true;
        nghttp2_submit_response(call->fe->c.session, call->fe_sid, nva, 4, NULL);
        schedule_fe(call);
        return;
    }
    /* Response headers went out already: end with trailers after whatever the
     * backend had sent (a response must not end with RST_STREAM(NO_ERROR),
     * which gRPC clients read as INTERNAL). */
    call->trllen = call->ntrl = 0;
    proxy_call_add_trailer(call, (const uint8_t *)"grpc-status", 11, (const uint8_t *)codebuf,
                           strlen(codebuf));
    proxy_call_add_trailer(call, (const uint8_t *)"grpc-message", 12, (const uint8_t *)enc,
                           strlen(enc));
    call->resp_eof = true;
    proxy_call_resume_fe(call);
}

void proxy_call_refuse(struct proxy_call *call)
{
    proxy_call_detach_be(call, NGHTTP2_CANCEL);
    event_del(call->deadline);
    if (call->resp_done || call->fe == NULL)
        return;
    call->resp_done = true;
    call->status = GRPC_UNAVAILABLE; /* what gRPC clients make of REFUSED_STREAM */
    nghttp2_submit_rst_stream(call->fe->c.session, NGHTTP2_FLAG_NONE, call->fe_sid,
                              NGHTTP2_REFUSED_STREAM);
    schedule_fe(call);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_call *call = arg;

    (void)fd;
    (void)what;
    /* The backend gets RST_STREAM(CANCEL), the client DEADLINE_EXCEEDED. */
    proxy_call_fail(call, GRPC_DEADLINE_EXCEEDED, "deadline exceeded (switchyard)");
}

/* ---- routing and dispatch ---- */

static bool has_prefix(const uint8_t *s, size_t len, const char *prefix)
{
    size_t plen = strlen(prefix);

    return len >= plen && memcmp(s, prefix, plen) == 0;
}

/* [auth]: the verifier hangs on the conf of the worker's snapshot
 * (proxy_auth_attach()); a conf without one refuses rather than letting calls
 * through. Returns false when the call was answered UNAUTHENTICATED. */
static bool authenticate(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    size_t n = call->nhdr / 2;
    char msg[128];
    int rc;

    rc = proxy_auth_request(w->snap->conf->auth.verifier, call->path, call->pathlen,
                            proxy_worker_nv(w, call->hdr, n), n, proxy_now_ms(w) / 1000.0,
                            &call->fwd_nv, &call->nfwd_nv);
    if (rc == PROXY_AUTH_OK)
        return true;
    snprintf(msg, sizeof(msg), "switchyard: %s", proxy_auth_reason(rc));
    proxy_call_fail(call, GRPC_UNAUTHENTICATED, msg);
    return false;
}

void proxy_call_start(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    const struct bal_cluster *cl;
    char msg[256];

    if (call->methodlen != 4 || memcmp(call->method, "POST", 4) != 0) {
        respond_http(call, "405");
        return;
    }
    /* gRPC PROTOCOL-HTTP2: servers answer other content types with 415. */
    if (call->ctype == NULL || !has_prefix(call->ctype, call->ctypelen, "application/grpc")) {
        respond_http(call, "415");
        return;
    }
    /* Before anything answers or routes the call; one branch when off. */
    if (w->snap != NULL && w->snap->conf->auth.mode != CONF_AUTH_OFF && !authenticate(call))
        return;
    if (proxy_selfhealth_match(call)) {
        proxy_selfhealth_start(call);
        return;
    }
    cl = w->snap != NULL ? bal_route(w->snap, (const char *)call->path, call->pathlen) : NULL;
    if (cl == NULL) {
        snprintf(msg, sizeof(msg), "switchyard: no route for %.*s", (int)call->pathlen,
                 (const char *)call->path);
        proxy_call_fail(call, GRPC_UNIMPLEMENTED, msg);
        return;
    }
    call->cluster = cl->index;
    call->gen = w->snap->generation;
    call->routed = true;
    if (call->timeout_ms > 0) {
        struct timeval tv = {.tv_sec = call->timeout_ms / 1000,
                             .tv_usec = (call->timeout_ms % 1000) * 1000};

        event_add(call->deadline, &tv);
    }
    proxy_call_dispatch(call);
}

static enum bal_skip skip_endpoint(const struct bal_endpoint *ep, void *arg)
{
    struct proxy_call *call = arg;
    struct proxy_pool *pool;

    for (uint32_t i = 0; i < call->ntried; i++) {
        if (call->tried[i] == ep->id)
            return BAL_SKIP_HARD;
    }
    pool = proxy_pool_find(call->w, ep->id);
    if (pool != NULL && pool->down_until_ms > proxy_now_ms(call->w))
        return BAL_SKIP_SOFT;
    return BAL_SKIP_NO;
}

/* h-bal hookup (the call spine redoes this): what ring_hash hashes, per
 * hash_on: the first value of a request header, or the client's IP address
 * without the port. No key: the policy picks at random. */
static void pick_key(const struct proxy_call *call, const struct conf_cluster *cc,
                     struct bal_pick_req *req)
{
    if (cc->hash_on == CONF_HASH_PEER && call->fe != NULL) {
        const char *colon = strrchr(call->fe->peer, ':');

        req->key = (const uint8_t *)call->fe->peer;
        req->keylen = colon != NULL ? (size_t)(colon - call->fe->peer) : strlen(call->fe->peer);
        return;
    }
    if (cc->hash_on != CONF_HASH_HEADER)
        return;
    for (size_t i = 0; i + 1 < call->nhdr; i += 2) {
        nghttp2_vec name = nghttp2_rcbuf_get_buf(call->hdr[i]);

        if (name.len == strlen(cc->hash_header) &&
            memcmp(name.base, cc->hash_header, name.len) == 0) {
            nghttp2_vec value = nghttp2_rcbuf_get_buf(call->hdr[i + 1]);

            req->key = value.base;
            req->keylen = value.len;
            return;
        }
    }
}

void proxy_call_dispatch(struct proxy_call *call)
{
    struct proxy_worker *w = call->w;
    const struct bal_cluster *cl;
    struct bal_pick_req req = {.skip = skip_endpoint, .arg = call}; /* h-bal hookup */
    int idx;
    char msg[320];

    if (call->gen != w->snap->generation) {
        /* A new snapshot since the last attempt (e.g. a reload): route again. */
        cl = bal_route(w->snap, (const char *)call->path, call->pathlen);
        if (cl == NULL) {
            proxy_call_fail(call, GRPC_UNAVAILABLE, "switchyard: the route went away in a reload");
            return;
        }
        call->cluster = cl->index;
        call->gen = w->snap->generation;
    }
    cl = &w->snap->clusters[call->cluster];
    req.now_ms = proxy_mono_ns() / 1000000; /* h-bal hookup: slow_start's clock */
    pick_key(call, cl->conf, &req);
    idx = bal_pick(cl, &w->lb[call->cluster], &req);
    if (idx == BAL_ENOENDPOINT) {
        if (cl->nendpoints == 0 && cl->unresolved != NULL)
            snprintf(msg, sizeof(msg), "switchyard: cluster %s has no endpoint: %s is unresolved",
                     cl->name, cl->unresolved);
        else
            snprintf(msg, sizeof(msg), "switchyard: no healthy endpoint in cluster %s", cl->name);
        proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
        return;
    }
    if (idx < 0) {
        snprintf(msg, sizeof(msg), "switchyard: no endpoint of cluster %s could take the call: %s",
                 cl->name, call->why);
        proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
        return;
    }
    call->ep_id = cl->endpoints[idx].id;
    call->tried[call->ntried++] = call->ep_id;
    if (proxy_pool_submit(proxy_pool_get(w, cl, &cl->endpoints[idx]), call) != 0)
        proxy_call_retry_or_fail(call, "cannot submit the request");
}

void proxy_call_retry_or_fail(struct proxy_call *call, const char *why)
{
    struct proxy_worker *w = call->w;
    uint32_t max = 0;
    char msg[320];

    proxy_call_detach_be(call, NGHTTP2_CANCEL);
    snprintf(call->why, sizeof(call->why), "%s", why);
    if (call->resp_done)
        return;
    if (call->gen == w->snap->generation)
        max = w->snap->clusters[call->cluster].conf->max_retries;
    else
        max = PROXY_MAX_TRIES; /* re-routed by dispatch; it applies the new cluster's limit */
    if (call->ntried <= max && call->ntried < PROXY_MAX_TRIES) {
        log_debug("call %.*s: retrying: %s", (int)call->pathlen, (const char *)call->path, why);
        proxy_call_dispatch(call);
        return;
    }
    snprintf(msg, sizeof(msg), "switchyard: %s", why);
    proxy_call_fail(call, GRPC_UNAVAILABLE, msg);
}

/* ---- data movement ---- */

void proxy_call_resume_fe(struct proxy_call *call)
{
    if (call->fe == NULL || !call->resp_started || call->resp_done)
        return;
    nghttp2_session_resume_data(call->fe->c.session, call->fe_sid);
    proxy_conn_schedule(&call->fe->c);
}

void proxy_call_resume_be(struct proxy_call *call)
{
    if (call->be == NULL || !call->be_open)
        return;
    nghttp2_session_resume_data(call->be->c.session, call->be_sid);
    proxy_conn_schedule(&call->be->c);
}

int proxy_call_submit_response(struct proxy_call *call, bool end_stream)
{
    size_t n = call->nrhdr / 2;
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = proxy_call_read_cb};
    int rv;

    if (call->fe == NULL || call->resp_started)
        return -1;
    call->resp_started = true;
    if (end_stream) {
        /* Trailers-Only: the status is among these headers. */
        for (size_t i = 0; i < n; i++) {
            nghttp2_vec name = nghttp2_rcbuf_get_buf(call->rhdr[2 * i]);
            nghttp2_vec value = nghttp2_rcbuf_get_buf(call->rhdr[2 * i + 1]);

            if (name.len == 11 && memcmp(name.base, "grpc-status", 11) == 0)
                call->status = proxy_parse_status(value.base, value.len);
        }
        call->resp_done = true;
        event_del(call->deadline);
    }
    rv = nghttp2_submit_response(call->fe->c.session, call->fe_sid,
                                 proxy_worker_nv(call->w, call->rhdr, n), n,
                                 end_stream ? NULL : &prd);
    proxy_conn_schedule(&call->fe->c);
    return rv;
}

void proxy_call_data_in(struct proxy_call *call, nghttp2_session *session, int32_t sid,
                        const uint8_t *data, size_t len, bool request)
{
    bool drop = call == NULL || call->resp_done || (!request && call->resp_eof);

    if (!drop && grpc_scan_feed(request ? &call->req_scan : &call->resp_scan, data, len,
                                call->w->snap->conf->proxy.max_message_size) != 0) {
        proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                        request ? "switchyard: request message larger than max_message_size"
                                : "switchyard: response message larger than max_message_size");
        drop = true;
    }
    if (drop) {
        /* Nobody will send these bytes on: give the credit back now. */
        nghttp2_session_consume(session, sid, len);
        return;
    }
    /* The one copy of payload: out of the socket buffer into the call. */
    if (request) {
        evbuffer_add(call->req_buf, data, len);
        call->bytes_in += len;
        proxy_call_resume_be(call);
    } else {
        evbuffer_add(call->resp_buf, data, len);
        proxy_call_resume_fe(call);
    }
}

/* Data sources of both sessions. The frontend session reads the response, the
 * backend session the request; neither copies here (NGHTTP2_DATA_FLAG_NO_COPY):
 * the bytes move from the call's evbuffer to the socket's in send_data. */
ssize_t proxy_call_read_cb(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct proxy_conn *c = user_data;
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, sid);
    bool fe = c->kind == PROXY_CONN_FE;
    struct evbuffer *src;
    size_t avail, n;
    bool eof;

    (void)buf;
    (void)source;
    if (call == NULL)
        return NGHTTP2_ERR_DEFERRED; /* detached; our RST_STREAM closes it */
    src = fe ? call->resp_buf : call->req_buf;
    eof = fe ? call->resp_eof : call->req_eof;
    avail = evbuffer_get_length(src);
    n = avail < length ? avail : length;
    if (n == 0 && !eof)
        return NGHTTP2_ERR_DEFERRED;
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && eof) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (fe) {
            call->resp_done = true;
            event_del(call->deadline);
            if (call->ntrl > 0) {
                nghttp2_nv nva[32];
                size_t k = 0;
                const char *p = call->trl;

                for (size_t i = 0; i < call->ntrl && k < 32; i++) {
                    size_t nl = strlen(p), vl = strlen(p + nl + 1);

                    nva[k++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)p + nl + 1, nl, vl,
                                            NGHTTP2_NV_FLAG_NONE};
                    p += nl + vl + 2;
                }
                if (nghttp2_submit_trailer(session, sid, nva, k) == 0)
                    *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            }
        }
    }
    return (ssize_t)n;
}

int proxy_call_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                            size_t length, nghttp2_data_source *source, void *user_data)
{
    struct proxy_conn *c = user_data;
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    struct evbuffer *out = bufferevent_get_output(c->bev);

    (void)source;
    if (evbuffer_get_length(out) >= PROXY_OUTPUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* detached meanwhile: reset the stream */
    evbuffer_add(out, framehd, 9);
    if (length == 0)
        return 0;
    if (c->kind == PROXY_CONN_FE) {
        evbuffer_remove_buffer(call->resp_buf, out, length);
        call->bytes_out += length;
        if (call->be != NULL) {
            nghttp2_session_consume(call->be->c.session, call->be_sid, length);
            proxy_conn_schedule(&call->be->c);
        }
    } else {
        evbuffer_remove_buffer(call->req_buf, out, length);
        call->req_sent += length;
        if (call->fe != NULL) {
            nghttp2_session_consume(call->fe->c.session, call->fe_sid, length);
            proxy_conn_schedule(&call->fe->c);
        }
    }
    return 0;
}

ssize_t proxy_conn_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                           void *user_data)
{
    struct proxy_conn *c = user_data;
    struct evbuffer *out = bufferevent_get_output(c->bev);

    (void)session;
    (void)flags;
    /* Backpressure: a peer that does not read stops us producing frames. */
    if (evbuffer_get_length(out) >= PROXY_OUTPUT_HIGH)
        return NGHTTP2_ERR_WOULDBLOCK;
    if (evbuffer_add(out, data, length) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    return (ssize_t)length;
}
