/* Frontend: client-facing h2c (prior knowledge) connections, nghttp2 server role.
 * Invariant: a frontend connection owns its calls; every call is freed when its
 * frontend stream closes or the connection goes, never while nghttp2 is on the
 * stack for the connection (frees happen in the worker's flush pass).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "fe"
#include "proxy/internal.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>

#include "core/grpc.h"
#include "core/log.h"
#include "core/tls.h"

static struct proxy_fe_conn *fe_of(void *user_data)
{
    return user_data;
}

static void fe_close_soon(struct proxy_fe_conn *fc);
static void fe_calm_down(struct proxy_fe_conn *fc, const char *why);

static void hdr_timer_arm(struct proxy_fe_conn *fc)
{
    uint32_t ms = fc->c.w->snap->conf->proxy.header_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    event_add(fc->hdr_timer, &tv);
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (fc->nstreams >= fc->max_streams) {
        /* Over the limit we advertised: refuse this stream alone (RFC 9113
         * §5.1.2); nghttp2 itself was told a higher limit so that it does not
         * fail the whole connection. Its header block is still decoded. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        if (++fc->refused > 1000 + 10 * fc->max_streams)
            fe_calm_down(fc, "too many streams over the limit");
        return 0;
    }
    call = proxy_call_new(fc->c.w, fc, frame->hd.stream_id);
    TAILQ_INSERT_TAIL(&fc->calls, call, fe_link);
    fc->nstreams++;
    if (fc->nhdr_pending++ == 0)
        hdr_timer_arm(fc);
    if (fc->idle_timer != NULL)
        event_del(fc->idle_timer);
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    return 0;
}

static bool name_is(const nghttp2_vec *v, const char *s, size_t len)
{
    return v->len == len && memcmp(v->base, s, len) == 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);

    (void)flags;
    (void)user_data;
    /* gRPC clients send no trailers; only the request header block is kept. */
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    /* nghttp2 1.52 does not enforce the SETTINGS_MAX_HEADER_LIST_SIZE we
     * advertise: count name + value + 32 per field (RFC 9113 §6.5.2) and stop
     * keeping fields past it; HPACK decoding goes on so the connection stays
     * in sync, and the call is answered RESOURCE_EXHAUSTED. */
    call->hdr_bytes += n.len + v.len + 32;
    if (call->hdr_too_big || call->hdr_bytes > call->w->snap->conf->proxy.max_header_list_size) {
        call->hdr_too_big = true;
        return 0;
    }
    proxy_rcbuf_push(&call->hdr, &call->nhdr, &call->hdrcap, name, value);
    if (n.len > 0 && n.base[0] == ':') {
        if (name_is(&n, ":path", 5)) {
            call->path = v.base;
            call->pathlen = v.len;
        } else if (name_is(&n, ":method", 7)) {
            call->method = v.base;
            call->methodlen = v.len;
        }
    } else if (name_is(&n, "content-type", 12)) {
        call->ctype = v.base;
        call->ctypelen = v.len;
    } else if (name_is(&n, "grpc-timeout", 12)) {
        if (grpc_timeout_parse(v.base, v.len, &call->timeout_ms) != 0)
            call->bad_timeout = true;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call;

    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK) && !fc->settings_seen) {
            fc->settings_seen = true;
            if (fc->nhdr_pending == 0)
                event_del(fc->hdr_timer);
        }
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            proxy_conn_ping_acked(&fc->c);
        return 0;
    case NGHTTP2_DATA:
        /* Empty DATA without END_STREAM does nothing but cost us work
         * (CVE-2019-9518); nghttp2 1.52 does not count them. */
        if (frame->hd.length == 0 && !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
            if (++fc->empty_frames > 100)
                fe_calm_down(fc, "empty DATA frames flood");
        } else {
            fc->empty_frames = 0;
        }
        break;
    case NGHTTP2_HEADERS:
        break;
    default:
        return 0;
    }
    call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)
        call->req_eof = true;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        call->hdr_done = true;
        if (--fc->nhdr_pending == 0 && fc->settings_seen)
            event_del(fc->hdr_timer);
        if (call->hdr_too_big)
            proxy_call_fail(call, GRPC_RESOURCE_EXHAUSTED,
                            "switchyard: request headers exceed max_header_list_size");
        else
            proxy_call_start(call);
    } else if (call->req_eof && call->self_health)
        proxy_selfhealth_request_end(call);
    else if (call->req_eof)
        proxy_call_resume_be(call);
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t sid,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, sid);

    (void)flags;
    (void)user_data;
    proxy_call_data_in(call, session, sid, data, len, true);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_call *call;

    (void)user_data;
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    call = nghttp2_session_get_stream_user_data(session, frame->hd.stream_id);
    /* The response is complete but the client is still sending: like gRPC
     * servers, end the stream with RST_STREAM(NO_ERROR) (RFC 9113 §8.1). */
    if (call != NULL && !call->req_eof)
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static void arm_idle(struct proxy_fe_conn *fc)
{
    uint32_t ms = fc->c.w->snap->conf->proxy.idle_timeout_ms;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    if (fc->idle_timer != NULL && ms > 0)
        event_add(fc->idle_timer, &tv);
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call = nghttp2_session_get_stream_user_data(session, sid);

    (void)error_code;
    if (call == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, sid, NULL);
    TAILQ_REMOVE(&fc->calls, call, fe_link);
    fc->nstreams--;
    if (!call->hdr_done && --fc->nhdr_pending == 0 && fc->settings_seen)
        event_del(fc->hdr_timer);
    /* Cancels the backend stream if it is still open (client RST_STREAM). */
    proxy_call_free(call);
    if (fc->nstreams == 0)
        arm_idle(fc);
    /* Never NGHTTP2_ERR_CALLBACK_FAILURE here (CVE-2023-35945). */
    return 0;
}

/* Our first frame is the SETTINGS frame. nghttp2 was given a stream limit
 * above the one we mean (see proxy_fe_accept); the client is told the real
 * one here, so nghttp2 never turns one stream too many into a connection
 * error and on_begin_headers() refuses it alone. */
static ssize_t fe_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                          void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    uint8_t buf[9 + 6 * 8];
    size_t plen;
    ssize_t rv;

    if (fc->settings_patched)
        return proxy_conn_send_cb(session, data, length, flags, user_data);
    plen = (size_t)data[0] << 16 | (size_t)data[1] << 8 | data[2];
    if (length < 9 || data[3] != NGHTTP2_SETTINGS || (data[4] & NGHTTP2_FLAG_ACK) ||
        length != 9 + plen || length > sizeof(buf))
        return proxy_conn_send_cb(session, data, length, flags, user_data);
    memcpy(buf, data, length);
    for (size_t off = 9; off + 6 <= length; off += 6) {
        if ((buf[off] << 8 | buf[off + 1]) == NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS) {
            buf[off + 2] = (uint8_t)(fc->max_streams >> 24);
            buf[off + 3] = (uint8_t)(fc->max_streams >> 16);
            buf[off + 4] = (uint8_t)(fc->max_streams >> 8);
            buf[off + 5] = (uint8_t)fc->max_streams;
        }
    }
    rv = proxy_conn_send_cb(session, buf, length, flags, user_data);
    if (rv > 0)
        fc->settings_patched = true;
    return rv;
}

nghttp2_session_callbacks *proxy_fe_callbacks_new(void)
{
    nghttp2_session_callbacks *cbs;

    if (nghttp2_session_callbacks_new(&cbs) != 0)
        abort();
    nghttp2_session_callbacks_set_send_callback(cbs, fe_send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, proxy_call_send_data_cb);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    return cbs;
}

/* ---- I/O ---- */

static void fe_close_soon(struct proxy_fe_conn *fc)
{
    fc->c.dead = true;
    proxy_conn_schedule(&fc->c);
}

/* A client abusing the protocol: GOAWAY(ENHANCE_YOUR_CALM), then close once it
 * is written (proxy_fe_conn_after_flush). Its calls end; others are untouched. */
static void fe_calm_down(struct proxy_fe_conn *fc, const char *why)
{
    if (fc->goaway_sent || fc->c.dead)
        return;
    log_warn("client %s: %s; closing with ENHANCE_YOUR_CALM", fc->peer, why);
    fc->goaway_sent = true;
    nghttp2_session_terminate_session(fc->c.session, NGHTTP2_ENHANCE_YOUR_CALM);
    proxy_conn_schedule(&fc->c);
}

static void on_hdr_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_fe_conn *fc = arg;

    (void)fd;
    (void)what;
    if (!fc->settings_seen || fc->nhdr_pending > 0) {
        log_info("client %s: header_timeout (%s)", fc->peer,
                 fc->settings_seen ? "request headers incomplete" : "no HTTP/2 preface");
        fe_close_soon(fc);
    }
}

/* Feeds every byte read to nghttp2, without copying (evbuffer_peek). */
static void on_read(struct bufferevent *bev, void *arg)
{
    struct proxy_fe_conn *fc = arg;
    int rv;

    if (fc->c.dead)
        return;
    rv = proxy_conn_feed(&fc->c, bufferevent_get_input(bev));
    if (rv != 0) {
        /* Fatal for the connection only: a protocol error, a flood nghttp2
         * caught (NGHTTP2_ERR_FLOODED), too many CONTINUATIONs, ... */
        log_info("client %s: %s; closing", fc->peer, nghttp2_strerror(rv));
        if (rv == NGHTTP2_ERR_FLOODED && !fc->tls &&
            evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            /* Say why before closing (GOAWAY ENHANCE_YOUR_CALM), best effort:
             * one write straight to the socket. Only when nothing is pending
             * there, so it cannot land inside a half-written frame; a client
             * that floods without reading gets the close alone. */
            static const uint8_t goaway[17] = {
                0, 0, 8, NGHTTP2_GOAWAY,           0, 0, 0, 0, 0, 0, 0, 0, 0,
                0, 0, 0, NGHTTP2_ENHANCE_YOUR_CALM};

            if (send(bufferevent_getfd(bev), goaway, sizeof(goaway), MSG_DONTWAIT | MSG_NOSIGNAL) <
                0)
                log_debug("client %s: GOAWAY not sent", fc->peer);
        }
        fe_close_soon(fc);
        return;
    }
    /* nghttp2 1.52 does not cap its queue of frames to send (pings, settings
     * ACKs, RST_STREAMs a client provokes): we do. */
    if (nghttp2_session_get_outbound_queue_size(fc->c.session) > PROXY_MAX_OUTBOUND_QUEUE) {
        fe_calm_down(fc, "outbound frame queue flood");
        return;
    }
    /* A client that does not read its responses is not read from either, so
     * it cannot make us buffer without bound (ping/settings floods, zero
     * windows): nothing more is parsed until it drains its side. */
    if (evbuffer_get_length(bufferevent_get_output(bev)) > 4 * PROXY_OUTPUT_HIGH) {
        bufferevent_disable(bev, EV_READ);
        fc->read_paused = true;
    }
    proxy_conn_schedule(&fc->c);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct proxy_fe_conn *fc = arg;

    if (fc->read_paused && !fc->goaway_sent) {
        fc->read_paused = false;
        bufferevent_enable(bev, EV_READ);
    }
    /* Output fell below the low watermark: frames held back can go now. */
    proxy_conn_schedule(&fc->c);
}

/* TLS only: the handshake is done (CONNECTED) or failed. */
static void on_tls_event(struct proxy_fe_conn *fc, struct bufferevent *bev, short what)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    char why[256];

    if (what & BEV_EVENT_CONNECTED) {
        /* The ClientHello and ALPN callbacks (tls.c) refuse clients without
         * h2; this is the last line of defence before nghttp2 sees bytes. */
        if (!tls_is_h2(ssl)) {
            log_warn("client %s: TLS refused: h2 was not negotiated by ALPN", fc->peer);
            fe_close_soon(fc);
            return;
        }
        /* gRPC clients often close without close_notify: that is EOF, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        log_debug("client %s: TLS %s established", fc->peer, SSL_get_version(ssl));
        return;
    }
    if (!SSL_is_init_finished(ssl) && (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        log_info("client %s: TLS handshake failed: %s", fc->peer,
                 tls_error(bev, why, sizeof(why)));
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct proxy_fe_conn *fc = arg;

    if (fc->tls)
        on_tls_event(fc, bev, what);
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        log_debug("client %s: connection closed (%s)", fc->peer,
                  (what & BEV_EVENT_EOF) ? "eof" : "error");
        fe_close_soon(fc);
    }
}

static void send_final_goaway(struct proxy_fe_conn *fc)
{
    if (fc->goaway_sent || fc->c.dead)
        return;
    fc->goaway_sent = true;
    nghttp2_submit_goaway(fc->c.session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(fc->c.session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    proxy_conn_schedule(&fc->c);
}

static void on_goaway_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_final_goaway(arg);
}

static void on_idle_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_fe_conn *fc = arg;

    (void)fd;
    (void)what;
    if (fc->nstreams == 0) {
        log_debug("client %s: idle timeout", fc->peer);
        send_final_goaway(fc);
    }
}

void proxy_fe_conn_drain(struct proxy_fe_conn *fc)
{
    /* Two-step GOAWAY (RFC 9113 §6.8): 2^31-1 first so requests in flight are
     * still accepted, then the real last-stream-id about a round trip later. */
    struct timeval tv = {.tv_sec = 1, .tv_usec = 0};

    if (fc->c.dead || fc->goaway_sent)
        return;
    nghttp2_submit_shutdown_notice(fc->c.session);
    event_add(fc->goaway_timer, &tv);
    proxy_conn_schedule(&fc->c);
}

void proxy_fe_conn_after_flush(struct proxy_fe_conn *fc)
{
    struct evbuffer *out = bufferevent_get_output(fc->c.bev);
    bool finished =
        (!nghttp2_session_want_read(fc->c.session) && !nghttp2_session_want_write(fc->c.session)) ||
        (fc->goaway_sent && fc->nstreams == 0);

    if (!finished)
        return;
    if (evbuffer_get_length(out) == 0) {
        fc->c.dead = true;
        return;
    }
    /* Let the last frames (GOAWAY) reach the client before closing. */
    bufferevent_disable(fc->c.bev, EV_READ);
    bufferevent_setwatermark(fc->c.bev, EV_WRITE, 0, 0);
}

/* The TLS bufferevent of a client on the TLS listener, or NULL. */
static struct bufferevent *tls_bev_new(struct proxy_fe_conn *fc, evutil_socket_t fd)
{
    struct proxy_worker *w = fc->c.w;
    SSL_CTX *ctx = tls_fe_ctx(w->snap->conf);
    SSL *ssl;

    if (ctx == NULL) { /* a reload dropped listen_tls; the listener stays until restart */
        log_warn("client %s: TLS listener without tls_cert in the running configuration", fc->peer);
        return NULL;
    }
    ssl = tls_fe_ssl_new(ctx, fc->peer);
    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(w->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
}

void proxy_fe_accept(struct proxy_worker *w, evutil_socket_t fd, const struct sockaddr *sa,
                     int socklen, bool tls)
{
    const struct conf_proxy *pc = &w->snap->conf->proxy;
    struct proxy_fe_conn *fc;
    int one = 1;
    uint32_t limit = pc->max_concurrent_streams;
    /* What nghttp2 enforces itself: above it, nghttp2 1.52 fails the whole
     * connection. The client is told |limit| (fe_send_cb). */
    uint32_t lib_limit = limit > 1073741823u ? 2147483647u : limit + (limit < 100 ? 100 : limit);
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lib_limit},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, PROXY_STREAM_WINDOW},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, pc->max_header_list_size},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };

    (void)socklen;
    if (w->draining) {
        evutil_closesocket(fd);
        return;
    }
    /* max_connections is shared evenly by the workers. */
    if (w->nfes >= (pc->max_connections + w->rt->nworkers - 1) / w->rt->nworkers) {
        if (w->conn_refused++ % 1000 == 0)
            log_warn("worker %d: max_connections reached; closing new client connections",
                     w->index);
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fc = calloc(1, sizeof(*fc));
    if (fc == NULL) {
        log_error("out of memory");
        abort();
    }
    fc->c.kind = PROXY_CONN_FE;
    fc->c.w = w;
    fc->max_streams = limit;
    TAILQ_INIT(&fc->calls);
    bal_addr_str(sa, fc->peer, sizeof(fc->peer));
    fc->tls = tls;
    if (tls)
        fc->c.bev = tls_bev_new(fc, fd);
    else
        fc->c.bev =
            bufferevent_socket_new(w->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (fc->c.bev == NULL ||
        nghttp2_session_server_new2(&fc->c.session, w->fe_cbs, fc, w->fe_opt) != 0) {
        log_error("client %s: cannot set up the connection", fc->peer);
        if (fc->c.bev != NULL)
            bufferevent_free(fc->c.bev);
        else
            evutil_closesocket(fd);
        free(fc);
        return;
    }
    fc->idle_timer = event_new(w->base, -1, 0, on_idle_timer, fc);
    fc->goaway_timer = event_new(w->base, -1, 0, on_goaway_timer, fc);
    fc->hdr_timer = event_new(w->base, -1, 0, on_hdr_timer, fc);
    hdr_timer_arm(fc); /* the preface and SETTINGS must come within header_timeout */
    proxy_conn_keepalive_start(&fc->c, pc->keepalive_time_ms, pc->keepalive_timeout_ms);
    nghttp2_submit_settings(fc->c.session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(fc->c.session, NGHTTP2_FLAG_NONE, 0, PROXY_CONN_WINDOW);
    bufferevent_setcb(fc->c.bev, on_read, on_write, on_event, fc);
    /* libevent reads and writes at most 16 KiB per call by default: a 64 KiB
     * message would take 4 syscalls each way. */
    bufferevent_set_max_single_read(fc->c.bev, PROXY_IO_CHUNK);
    bufferevent_set_max_single_write(fc->c.bev, PROXY_IO_CHUNK);
    bufferevent_setwatermark(fc->c.bev, EV_WRITE, PROXY_OUTPUT_LOW, 0);
    bufferevent_enable(fc->c.bev, EV_READ | EV_WRITE);
    TAILQ_INSERT_TAIL(&w->fes, fc, link);
    w->nfes++;
    arm_idle(fc);
    log_debug("client %s: connected (worker %d)", fc->peer, w->index);
    proxy_conn_schedule(&fc->c);
}

void proxy_fe_conn_free(struct proxy_fe_conn *fc)
{
    struct proxy_worker *w = fc->c.w;
    struct proxy_call *call;

    while ((call = TAILQ_FIRST(&fc->calls)) != NULL) {
        TAILQ_REMOVE(&fc->calls, call, fe_link);
        nghttp2_session_set_stream_user_data(fc->c.session, call->fe_sid, NULL);
        /* The client is gone: cancel its backend streams, release its rcbufs
         * before the session that owns them is deleted. */
        call->fe = NULL;
        proxy_call_free(call);
    }
    nghttp2_session_del(fc->c.session);
    bufferevent_free(fc->c.bev);
    if (fc->idle_timer != NULL)
        event_free(fc->idle_timer);
    if (fc->goaway_timer != NULL)
        event_free(fc->goaway_timer);
    if (fc->hdr_timer != NULL)
        event_free(fc->hdr_timer);
    proxy_conn_keepalive_stop(&fc->c);
    TAILQ_REMOVE(&w->fes, fc, link);
    w->nfes--;
    free(fc);
    proxy_worker_fe_gone(w);
}
