/* Backend: per-endpoint pools of HTTP/2 client connections to the replicas.
 * Invariant: a pool never has more than max_connections connections nor more
 * streams on one than min(max_streams_per_connection, the peer's
 * SETTINGS_MAX_CONCURRENT_STREAMS); calls beyond wait on the pool, not in
 * nghttp2's unbounded queue.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "be"
#include "proxy/internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent_ssl.h>

#include "core/grpc.h"
#include "core/log.h"
#include "core/tls.h"

static const char *const be_state_names[PROXY_BE_STATE_COUNT] = {"connecting", "ready", "goaway"};

static uint32_t stream_limit(const struct proxy_be_conn *bc)
{
    uint32_t peer =
        nghttp2_session_get_remote_settings(bc->c.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

    return peer < bc->pool->max_streams ? peer : bc->pool->max_streams;
}

static bool has_capacity(const struct proxy_be_conn *bc)
{
    return !bc->c.dead && bc->state != PROXY_BE_GOAWAY && bc->nstreams < stream_limit(bc) &&
           nghttp2_session_check_request_allowed(bc->c.session);
}

/* ---- nghttp2 client callbacks ---- */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);

    (void)flags;
    (void)user_data;
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        proxy_rcbuf_push(&call->rhdr, &call->nrhdr, &call->rhdrcap, name, value);
    } else {
        nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
        nghttp2_vec v = nghttp2_rcbuf_get_buf(value);

        /* Trailers are kept past this callback, so they are copied. */
        proxy_call_add_trailer(call, n.base, n.len, v.base, v.len);
        if (n.len == 11 && memcmp(n.base, "grpc-status", 11) == 0)
            call->status = proxy_parse_status(v.base, v.len);
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_call *call;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

    switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
        /* No new streams here; those above last-stream-id are closed with
         * REFUSED_STREAM by nghttp2 and retried elsewhere. */
        log_info("backend %s sent GOAWAY (%s, last stream %d)", bc->pool->addr_str,
                 nghttp2_http2_strerror(frame->goaway.error_code), frame->goaway.last_stream_id);
        bc->state = PROXY_BE_GOAWAY;
        return 0;
    case NGHTTP2_SETTINGS:
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            proxy_conn_ping_acked(&bc->c);
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_RESPONSE) {
        /* 1xx responses are not used by gRPC; drop them. */
        if (call->nrhdr >= 2) {
            nghttp2_vec st = nghttp2_rcbuf_get_buf(call->rhdr[1]);

            if (st.len == 3 && st.base[0] == '1' && !end) {
                proxy_call_release_rhdr(call);
                return 0;
            }
        }
        if (end)
            call->be_complete = true;
        proxy_call_submit_response(call, end);
        proxy_call_release_rhdr(call);
        return 0;
    }
    if (end) {
        call->be_complete = true;
        call->resp_eof = true;
        proxy_call_resume_fe(call);
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t sid,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, sid);

    (void)flags;
    (void)user_data;
    proxy_call_data_in(call, session, sid, data, len, false);
    return 0;
}

static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int lib_error,
                             void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_call *call;

    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    log_debug("backend %s: request not sent: %s", bc->pool->addr_str, nghttp2_strerror(lib_error));
    call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call != NULL)
        call->be_not_sent = true;
    /* nghttp2 closes the stream next; it never reached the backend and is
     * treated as refused there. */
    return 0;
}

static void pool_wake(struct proxy_pool *pool);

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, sid);
    char why[128];

    if (call == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, sid, NULL);
    call->be_open = false;
    bc->nstreams--;
    if (call->be_complete)
        return 0; /* a complete response is never discarded, whatever the reset says */
    if ((error_code == NGHTTP2_REFUSED_STREAM || call->be_not_sent) && call->req_sent == 0 &&
        !call->resp_started) {
        /* REFUSED_STREAM (e.g. above a GOAWAY's last-stream-id) or a stream
         * that never got a byte of the request out: it never reached the
         * backend, so another endpoint may take it. */
        snprintf(why, sizeof(why), "%s refused the stream (%s)", bc->pool->addr_str,
                 nghttp2_http2_strerror(error_code));
        proxy_call_retry_or_fail(call, why);
        return 0;
    }
    snprintf(why, sizeof(why), "backend %s reset the stream (%s)", bc->pool->addr_str,
             nghttp2_http2_strerror(error_code));
    if (error_code == NGHTTP2_REFUSED_STREAM && !call->resp_started) {
        /* Refused after request bytes left (we keep no replay copy): pass the
         * refusal on, which gRPC clients retry transparently. */
        proxy_call_refuse(call);
        return 0;
    }
    proxy_call_fail(call, GRPC_UNAVAILABLE, why);
    return 0;
}

nghttp2_session_callbacks *proxy_be_callbacks_new(void)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        abort();
    nghttp2_session_callbacks_set_send_callback(cbs, proxy_conn_send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, proxy_call_send_data_cb);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

/* ---- connection I/O ---- */

/* The connection failed: every call that never got a byte out is retried on
 * another endpoint, the others end with UNAVAILABLE. */
static void be_fail(struct proxy_be_conn *bc, const char *reason)
{
    struct proxy_pool *pool = bc->pool;
    struct proxy_call *call;
    char why[160];

    if (bc->c.dead)
        return;
    bc->c.dead = true;
    if (bc->state == PROXY_BE_CONNECTING) {
        uint64_t backoff = 100ull << (pool->fails < 6 ? pool->fails : 6);

        pool->fails++;
        pool->down_until_ms = proxy_now_ms(pool->w) + backoff;
        if (pool->fails == 1)
            log_warn("backend %s: connect failed: %s", pool->addr_str, reason);
        snprintf(why, sizeof(why), "connect to %s failed: %s", pool->addr_str, reason);
    } else {
        log_info("backend %s: connection lost (%s) with %u streams open", pool->addr_str, reason,
                 bc->nstreams);
        snprintf(why, sizeof(why), "connection to backend %s lost: %s", pool->addr_str, reason);
    }
    while ((call = TAILQ_FIRST(&bc->calls)) != NULL) {
        bool open = call->be_open && !call->be_complete;
        bool untouched = call->req_sent == 0 && !call->resp_started;

        proxy_call_release_rhdr(call);
        TAILQ_REMOVE(&bc->calls, call, be_link);
        pool->active_calls--;
        call->be = NULL;
        call->be_open = false;
        if (!open)
            continue;
        if (untouched)
            proxy_call_retry_or_fail(call, why);
        else
            proxy_call_fail(call, GRPC_UNAVAILABLE, why);
    }
    bc->nstreams = 0;
    proxy_conn_schedule(&bc->c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct proxy_be_conn *bc = arg;
    int rv;

    if (bc->c.dead)
        return;
    rv = proxy_conn_feed(&bc->c, bufferevent_get_input(bev));
    if (rv != 0) {
        be_fail(bc, nghttp2_strerror(rv));
        return;
    }
    proxy_conn_schedule(&bc->c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    proxy_conn_schedule(&((struct proxy_be_conn *)arg)->c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct proxy_be_conn *bc = arg;
    int one = 1;

    if ((what & BEV_EVENT_CONNECTED) && bc->pool->tls != NULL &&
        !tls_is_h2(bufferevent_openssl_get_ssl(bev))) {
        be_fail(bc, "TLS: the backend did not negotiate h2 by ALPN");
        return;
    }
    if (what & BEV_EVENT_CONNECTED) {
        if (bc->pool->tls != NULL) /* gRPC servers may close without close_notify */
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bufferevent_set_timeouts(bev, NULL, NULL);
        bc->state = PROXY_BE_READY;
        bc->c.hold = false;
        bc->pool->fails = 0;
        bc->pool->down_until_ms = 0;
        log_debug("backend %s: connected", bc->pool->addr_str);
        proxy_conn_schedule(&bc->c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        be_fail(bc, "timed out");
    } else if (what & BEV_EVENT_EOF) {
        be_fail(bc, "closed by peer");
    } else if ((what & BEV_EVENT_ERROR) && bc->pool->tls != NULL) {
        char why[128];

        /* A failed handshake counts like a failed connect (state CONNECTING). */
        be_fail(bc, tls_error(bev, why, sizeof(why)));
    } else if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();

        be_fail(bc, evutil_socket_error_to_string(err));
    }
}

static struct proxy_be_conn *be_conn_new(struct proxy_pool *pool)
{
    struct proxy_worker *w = pool->w;
    struct proxy_be_conn *bc = calloc(1, sizeof(*bc));
    struct timeval tv = {.tv_sec = pool->connect_timeout_ms / 1000,
                         .tv_usec = (pool->connect_timeout_ms % 1000) * 1000};
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PROXY_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };

    if (bc == NULL) {
        log_error("out of memory");
        abort();
    }
    bc->c.kind = PROXY_CONN_BE;
    bc->c.w = w;
    bc->pool = pool;
    bc->state = PROXY_BE_CONNECTING;
    bc->c.hold = true;
    TAILQ_INIT(&bc->calls);
    if (pool->tls != NULL) {
        /* ALPN h2, SNI and the name to verify are set on the SSL object;
         * BEV_EVENT_CONNECTED comes once the handshake is done. */
        SSL *ssl = tls_be_ssl_new(pool->tls, pool->tls_host);

        bc->c.bev =
            ssl == NULL
                ? NULL
                : bufferevent_openssl_socket_new(w->base, -1, ssl, BUFFEREVENT_SSL_CONNECTING,
                                                 BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    } else {
        bc->c.bev =
            bufferevent_socket_new(w->base, -1, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    }
    if (bc->c.bev == NULL ||
        nghttp2_session_client_new2(&bc->c.session, w->be_cbs, bc, w->be_opt) != 0) {
        if (bc->c.bev != NULL)
            bufferevent_free(bc->c.bev);
        free(bc);
        return NULL;
    }
    nghttp2_submit_settings(bc->c.session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(bc->c.session, NGHTTP2_FLAG_NONE, 0, PROXY_CONN_WINDOW);
    bufferevent_setcb(bc->c.bev, on_read, on_write, on_event, bc);
    bufferevent_set_max_single_read(bc->c.bev, PROXY_IO_CHUNK);
    bufferevent_set_max_single_write(bc->c.bev, PROXY_IO_CHUNK);
    bufferevent_setwatermark(bc->c.bev, EV_WRITE, PROXY_OUTPUT_LOW, 0);
    /* While connecting, the write timeout is the connect timeout. */
    bufferevent_set_timeouts(bc->c.bev, NULL, &tv);
    bufferevent_enable(bc->c.bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&pool->conns, bc, link);
    pool->nconns++;
    {
        /* gRPC servers answer pings more frequent than every 5 minutes
         * without calls with GOAWAY(too_many_pings): backends are pinged at
         * most every 5m10s whatever keepalive_time says. */
        const struct conf_proxy *pc = &w->snap->conf->proxy;
        uint32_t ka = pc->keepalive_time_ms;

        proxy_conn_keepalive_start(&bc->c, ka == 0 ? 0 : (ka < 310000 ? 310000 : ka),
                                   pc->keepalive_timeout_ms);
    }
    if (bufferevent_socket_connect(bc->c.bev, (struct sockaddr *)&pool->addr, (int)pool->addrlen) !=
        0) {
        /* Socket creation failed outright; report like any connect failure. */
        be_fail(bc, "cannot create socket");
        return bc;
    }
    log_debug("backend %s: connecting (%u/%u)", pool->addr_str, pool->nconns, pool->max_conns);
    return bc;
}

static int be_submit(struct proxy_be_conn *bc, struct proxy_call *call)
{
    size_t n = call->nhdr / 2;
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = proxy_call_read_cb};
    int32_t sid;

    /* Forwarded as received: nghttp2 already enforced RFC 9113 §8.2-8.3
     * (pseudo-headers first, no connection-specific fields, te: trailers). */
    if (call->fwd_nv != NULL) /* [auth] stripped or added fields (call.c) */
        sid = nghttp2_submit_request(bc->c.session, NULL, call->fwd_nv, call->nfwd_nv, &prd, call);
    else
        sid = nghttp2_submit_request(bc->c.session, NULL, proxy_worker_nv(call->w, call->hdr, n), n,
                                     &prd, call);
    if (sid < 0) {
        log_warn("backend %s: submit: %s", bc->pool->addr_str, nghttp2_strerror(sid));
        return -1;
    }
    call->be = bc;
    call->be_sid = sid;
    call->be_open = true;
    bc->nstreams++;
    bc->pool->active_calls++;
    if (call->cluster < call->w->nlb) /* h-bal hookup: least_request counts attempts */
        bal_attempt_start(&call->w->lb[call->cluster], bc->pool->id);
    bc->pool->calls_total++;
    TAILQ_INSERT_TAIL(&bc->calls, call, be_link);
    proxy_conn_schedule(&bc->c);
    return 0;
}

int proxy_pool_submit(struct proxy_pool *pool, struct proxy_call *call)
{
    struct proxy_be_conn *bc;

    TAILQ_FOREACH(bc, &pool->conns, link)
    {
        if (has_capacity(bc))
            return be_submit(bc, call);
    }
    if (pool->nconns < pool->max_conns) {
        bc = be_conn_new(pool);
        if (bc == NULL || bc->c.dead)
            return -1;
        return be_submit(bc, call);
    }
    /* Every connection is full: wait here for a stream to close. */
    TAILQ_INSERT_TAIL(&pool->waiting, call, be_link);
    call->waiting = pool;
    return 0;
}

static void pool_wake(struct proxy_pool *pool)
{
    struct proxy_call *call;

    while ((call = TAILQ_FIRST(&pool->waiting)) != NULL) {
        struct proxy_be_conn *bc;
        bool placed = false;

        TAILQ_FOREACH(bc, &pool->conns, link)
        {
            if (has_capacity(bc)) {
                TAILQ_REMOVE(&pool->waiting, call, be_link);
                call->waiting = NULL;
                if (be_submit(bc, call) != 0)
                    proxy_call_retry_or_fail(call, "cannot submit the request");
                placed = true;
                break;
            }
        }
        if (placed)
            continue;
        if (pool->nconns >= pool->max_conns)
            return;
        TAILQ_REMOVE(&pool->waiting, call, be_link);
        call->waiting = NULL;
        if (proxy_pool_submit(pool, call) != 0)
            proxy_call_retry_or_fail(call, "cannot open a backend connection");
    }
}

void proxy_be_conn_after_flush(struct proxy_be_conn *bc)
{
    struct proxy_pool *pool = bc->pool;

    if ((!nghttp2_session_want_read(bc->c.session) && !nghttp2_session_want_write(bc->c.session)) ||
        ((bc->state == PROXY_BE_GOAWAY || pool->removed) && bc->nstreams == 0)) {
        log_debug("backend %s: closing connection (%s)", pool->addr_str, be_state_names[bc->state]);
        bc->c.dead = true;
        return;
    }
    if (!TAILQ_EMPTY(&pool->waiting))
        pool_wake(pool);
}

void proxy_be_conn_free(struct proxy_be_conn *bc)
{
    struct proxy_pool *pool = bc->pool;
    struct proxy_call *call;

    while ((call = TAILQ_FIRST(&bc->calls)) != NULL) {
        bool open = call->be_open && !call->be_complete;

        proxy_call_release_rhdr(call);
        TAILQ_REMOVE(&bc->calls, call, be_link);
        pool->active_calls--;
        call->be = NULL;
        call->be_open = false;
        if (open)
            proxy_call_fail(call, GRPC_UNAVAILABLE, "backend connection closed");
    }
    TAILQ_REMOVE(&pool->conns, bc, link);
    pool->nconns--;
    proxy_conn_keepalive_stop(&bc->c);
    nghttp2_session_del(bc->c.session);
    bufferevent_free(bc->c.bev);
    free(bc);
    /* Calls that waited for this pool's capacity may open a new connection. */
    if (!TAILQ_EMPTY(&pool->waiting))
        pool_wake(pool);
}

bool proxy_pool_reap(struct proxy_pool *pool)
{
    struct proxy_be_conn *bc;

    TAILQ_FOREACH(bc, &pool->conns, link)
    {
        if (bc->nstreams == 0 && !bc->c.dead) {
            bc->c.dead = true;
            proxy_conn_schedule(&bc->c);
        }
    }
    return false;
}

void proxy_pool_free(struct proxy_pool *pool)
{
    struct proxy_call *call;

    if (pool == NULL)
        return;
    while ((call = TAILQ_FIRST(&pool->waiting)) != NULL) {
        TAILQ_REMOVE(&pool->waiting, call, be_link);
        call->waiting = NULL;
    }
    /* At worker exit: the calls are gone already, the wait list is empty. */
    while (!TAILQ_EMPTY(&pool->conns))
        proxy_be_conn_free(TAILQ_FIRST(&pool->conns));
    tls_be_unref(pool->tls);
    free(pool);
}
