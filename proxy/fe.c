/* Frontend codec (fe.h): nghttp2 server sessions, the limits that protect
 * switchyard from clients (stream limits, header and idle timeouts, flood
 * and early-end budgets, stream id rules), and the client side of calls.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "fe"
#include "proxy/fe.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "conf/conf.h"
#include "core/alloc.h"
#include "core/log.h"
#include "core/tls.h"
#include "proxy/call.h"
#include "proxy/conn.h"
#include "proxy/h1.h"
#include "proxy/h2mem.h"

/* Our connection window. Connection-level credit is returned as soon as
 * request bytes are buffered (flow.h); each stream's window bounds what it
 * can hold. */
#define FE_CONN_WINDOW (4 * 1024 * 1024)
/* Frames nghttp2 may hold for one connection before it counts as a flood
 * (Envoy's max_outbound_frames is 10000). */
#define FE_MAX_OUTBOUND_QUEUE 10000
/* Streams that end early (reset by either side, or closed before their
 * response was complete): a burst of this many, refilled at FE_EARLY_RATE per
 * second, then GOAWAY(ENHANCE_YOUR_CALM). Covers Rapid Reset (CVE-2023-44487)
 * and the streams switchyard itself has to reset ("MadeYouReset",
 * CVE-2025-8671), with nghttp2's own reset limit's numbers. */
#define FE_EARLY_BURST 1000
#define FE_EARLY_RATE  33
/* Stream ids switchyard reset lately: the client may still send a HEADERS
 * frame on them (trailers in flight), which is not a protocol error. */
#define FE_RECENT_RESETS 64
/* After the last frame (GOAWAY) of a connection: how long its input is still
 * read and dropped so that closing does not reset it (see proxy_conn_linger). */
#define FE_LINGER_MS 2000
/* A connection with no stream that read nothing for this long gives its
 * frame buffer's pages back (proxy_h2mem_trim); checked this often. Not at
 * once: a client between two calls would fault the page in again each call. */
#define FE_TRIM_IDLE_MS  2000
#define FE_TRIM_EVERY_MS 1000

struct proxy_fe_conn {
    struct proxy_conn c; /* first: a proxy_conn * of a client is a proxy_fe_conn * */
    struct proxy_fe_env *env;
    struct proxy_fe_conn *next, *prev; /* in env->conns */
    struct proxy_call_side *calls;     /* the calls of its streams */
    /* The last stream looked up (call_of): its id (0: none) and the call
     * nghttp2 holds for it. Callbacks come for the same stream in runs (each
     * field of a header block, a DATA frame's chunk and end). */
    int32_t last_sid;
    struct proxy_call *last_call;
    char peer[BAL_ADDRSTRLEN];
    uint32_t nstreams;
    struct proxy_h2mem_owner h2mem; /* the session's allocator (its frame buffer) */
    struct event *tick;             /* header_timeout, idle_timeout, keepalive: on_tick() */
    bool tick_armed;                /* |tick| is pending, for |tick_at_ms| */
    uint64_t tick_at_ms;
    uint64_t hdr_since_ms;    /* when |nhdr_pending| last left 0 (or the connection began) */
    uint64_t idle_since_ms;   /* when |nstreams| last fell to 0 (or the connection began) */
    struct event *goaway_lag; /* the second GOAWAY of a drain (created by conn_drain) */
    struct event *age_timer;  /* max_connection_age, then its grace */
    bool aged;                /* max_connection_age passed: GOAWAY sent, grace running */
    bool goaway_sent;         /* the final GOAWAY with last-stream-id */
    bool settings_seen;       /* the client's first SETTINGS arrived */
    bool settings_patched;    /* our SETTINGS went out with the advertised stream limit */
    bool read_paused;         /* output backlog: not reading until it drains */
    uint32_t max_streams;     /* the MAX_CONCURRENT_STREAMS the client was told */
    uint32_t nhdr_pending;    /* streams whose request headers are not complete */
    uint32_t refused;         /* streams refused over the limit */
    uint32_t empty_frames;    /* consecutive empty DATA frames without END_STREAM */
    /* early-end budget (token bucket) */
    double early_tokens;
    uint64_t early_ms;
    /* stream id rules (RFC 9113 §5.1.1) */
    int32_t max_sid;
    int32_t *recent_rst; /* FE_RECENT_RESETS of them, allocated at the first reset */
    uint32_t nrecent;
};

static const struct proxy_call_side_ops side_ops;

static struct proxy_fe_conn *fe_of(void *user_data)
{
    return user_data;
}

static const struct conf_proxy *conf_of(const struct proxy_fe_conn *fc)
{
    return &fc->env->calls->snap->conf->proxy;
}

static void fe_calm_down(struct proxy_fe_conn *fc, const char *why);
static int fe_h2_start(struct proxy_fe_conn *fc);

/* The call of stream |sid|, as nghttp2 holds it (NULL: none). */
static struct proxy_call *call_of(struct proxy_fe_conn *fc, int32_t sid)
{
    if (sid != fc->last_sid) {
        fc->last_call = nghttp2_session_get_stream_user_data(fc->c.session, sid);
        fc->last_sid = sid;
    }
    return fc->last_call;
}

static void timer_arm(struct event *ev, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    event_add(ev, &tv);
}

/* |fc|'s tick must fire by loop time |due|. Armed only when it would fire
 * later or not at all: a tick that fires early looks and arms itself again. */
static void tick_need(struct proxy_fe_conn *fc, uint64_t due)
{
    if (fc->tick_armed && fc->tick_at_ms <= due)
        return;
    fc->tick_armed = true;
    fc->tick_at_ms = due;
    proxy_timer_at(fc->tick, due);
}

/* ---- calls of the connection ---- */

static void link_call(struct proxy_fe_conn *fc, struct proxy_call_side *sd)
{
    sd->prev = NULL;
    sd->next = fc->calls;
    if (fc->calls != NULL)
        fc->calls->prev = sd;
    fc->calls = sd;
}

static void unlink_call(struct proxy_fe_conn *fc, struct proxy_call_side *sd)
{
    if (sd->prev != NULL)
        sd->prev->next = sd->next;
    else
        fc->calls = sd->next;
    if (sd->next != NULL)
        sd->next->prev = sd->prev;
    sd->next = sd->prev = NULL;
}

static void remember_reset(struct proxy_fe_conn *fc, int32_t sid)
{
    if (fc->recent_rst == NULL) /* most connections never reset a stream */
        fc->recent_rst = xcalloc(FE_RECENT_RESETS, sizeof(*fc->recent_rst));
    fc->recent_rst[fc->nrecent++ % FE_RECENT_RESETS] = sid;
}

static bool reset_lately(const struct proxy_fe_conn *fc, int32_t sid)
{
    uint32_t n = fc->nrecent < FE_RECENT_RESETS ? fc->nrecent : FE_RECENT_RESETS;

    for (uint32_t i = 0; i < n; i++) {
        if (fc->recent_rst[i] == sid)
            return true;
    }
    return false;
}

/* One stream ended early: take a token, or GOAWAY once the budget is spent. */
static void early_end(struct proxy_fe_conn *fc)
{
    uint64_t now = proxy_loop_ms(fc->c.base);

    fc->early_tokens += (double)(now - fc->early_ms) * FE_EARLY_RATE / 1000.0;
    if (fc->early_tokens > FE_EARLY_BURST)
        fc->early_tokens = FE_EARLY_BURST;
    fc->early_ms = now;
    if (fc->early_tokens >= 1) {
        fc->early_tokens -= 1;
        return;
    }
    fe_calm_down(fc, "too many streams ending early (reset or abandoned)");
}

/* ---- nghttp2 server callbacks ---- */

static int on_begin_frame(nghttp2_session *session, const nghttp2_frame_hd *hd, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    nghttp2_stream *st;

    if (hd->type != NGHTTP2_HEADERS || (hd->stream_id & 1) == 0 || fc->goaway_sent)
        return 0;
    if (hd->stream_id > fc->max_sid) {
        fc->max_sid = hd->stream_id;
        return 0;
    }
    /* A HEADERS frame on a stream id at or below the highest seen: fine for
     * an open stream (trailers), or one we reset lately (in flight). Otherwise
     * the id is closed or was skipped: RFC 9113 §5.1.1 makes that a connection
     * error, which nghttp2 1.52 leaves unreported. */
    st = nghttp2_session_find_stream(session, hd->stream_id);
    if ((st != NULL && nghttp2_stream_get_state(st) != NGHTTP2_STREAM_STATE_CLOSED) ||
        reset_lately(fc, hd->stream_id))
        return 0;
    log_info("client %s: HEADERS on closed or skipped stream %d (highest %d); closing", fc->peer,
             hd->stream_id, fc->max_sid);
    fc->goaway_sent = true;
    nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR);
    proxy_conn_schedule(&fc->c);
    return 0;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call;
    struct proxy_call_side *sd;

    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    if (fc->nstreams >= fc->max_streams || fc->env->calls->snap == NULL) {
        /* Over the limit we advertised: refuse this stream alone (RFC 9113
         * §5.1.2); nghttp2 itself was told a higher limit so that it does not
         * fail the whole connection. Its header block is still decoded. */
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_REFUSED_STREAM);
        remember_reset(fc, frame->hd.stream_id);
        if (++fc->refused > 1000 + 10 * fc->max_streams)
            fe_calm_down(fc, "too many streams over the limit");
        return 0;
    }
    call = proxy_call_new(fc->env->calls, &side_ops, fc, frame->hd.stream_id, fc->peer);
    sd = proxy_call_side(call);
    link_call(fc, sd);
    fc->nstreams++;
    if (fc->nhdr_pending++ == 0) {
        fc->hdr_since_ms = proxy_loop_ms(fc->c.base);
        tick_need(fc, fc->hdr_since_ms + conf_of(fc)->header_timeout_ms);
    }
    nghttp2_session_set_stream_user_data(session, frame->hd.stream_id, call);
    fc->last_sid = frame->hd.stream_id;
    fc->last_call = call;
    return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call = call_of(fc, frame->hd.stream_id);

    (void)session;
    (void)flags;
    /* gRPC clients send no trailers; only the request header block is kept. */
    if (call == NULL || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    proxy_call_head_field(call, name, value);
    return 0;
}

static void headers_complete(struct proxy_fe_conn *fc)
{
    fc->nhdr_pending--; /* the tick lapses by itself (on_tick) */
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

    (void)session;
    switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
        if (!(frame->hd.flags & NGHTTP2_FLAG_ACK))
            fc->settings_seen = true;
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK) {
            uint64_t due = proxy_conn_ping_acked(&fc->c);

            if (due != UINT64_MAX)
                tick_need(fc, due);
        }
        return 0;
    case NGHTTP2_DATA:
        /* Empty DATA without END_STREAM does nothing but cost us work
         * (CVE-2019-9518); nghttp2 1.52 does not count them. */
        if (frame->hd.length == 0 && !end) {
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
    call = call_of(fc, frame->hd.stream_id);
    if (call == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST) {
        headers_complete(fc);
        proxy_call_head_done(call, end);
    } else if (end) {
        proxy_call_req_end(call);
    }
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t sid,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct proxy_call *call = call_of(fe_of(user_data), sid);

    (void)flags;
    if (call == NULL) {
        /* Nobody takes these bytes: the credit goes back at once. */
        nghttp2_session_consume(session, sid, len);
        return 0;
    }
    proxy_call_req_data(call, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call;

    if (frame->hd.type == NGHTTP2_RST_STREAM) {
        remember_reset(fc, frame->hd.stream_id);
        return 0;
    }
    if ((frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA) ||
        !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
        return 0;
    call = call_of(fc, frame->hd.stream_id);
    /* The response is complete but the client is still sending: like gRPC
     * servers, end the stream with RST_STREAM(NO_ERROR) (RFC 9113 §8.1). */
    if (call != NULL && !proxy_call_req_ended(call))
        nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, frame->hd.stream_id,
                                  NGHTTP2_NO_ERROR);
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call = call_of(fc, sid);
    bool early;

    if (call == NULL)
        return 0;
    nghttp2_session_set_stream_user_data(session, sid, NULL);
    fc->last_sid = 0;
    unlink_call(fc, proxy_call_side(call));
    fc->nstreams--;
    if (proxy_call_state(call) == PROXY_CALL_HEAD)
        headers_complete(fc);
    /* Whoever reset it, and for whatever reason: the same budget. */
    early = error_code != NGHTTP2_NO_ERROR || proxy_call_state(call) < PROXY_CALL_FINAL;
    /* Cancels the backend stream if it is still open (client RST_STREAM). */
    proxy_call_side_closed(call, error_code);
    if (early)
        early_end(fc);
    if (fc->nstreams == 0) {
        /* Noted even with idle_timeout off: a reload may turn it on. */
        fc->idle_since_ms = proxy_loop_ms(fc->c.base);
        if (conf_of(fc)->idle_timeout_ms > 0)
            tick_need(fc, fc->idle_since_ms + conf_of(fc)->idle_timeout_ms);
    }
    /* Never NGHTTP2_ERR_CALLBACK_FAILURE here (CVE-2023-35945). */
    return 0;
}

/* Our first frame is the SETTINGS frame. nghttp2 was given a stream limit
 * above the one we mean (see proxy_fe_accept); the client is told the real
 * one here, so nghttp2 never turns one stream too many into a connection
 * error and on_begin_headers() refuses it alone. */
static ssize_t send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                       void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    uint8_t buf[9 + 6 * 8];
    size_t plen;
    ssize_t rv;

    fc->h2mem.trimmed = false; /* the frame buffer holds this frame */
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

/* Response body source: no copy here (NGHTTP2_DATA_FLAG_NO_COPY); the bytes
 * move from the call's buffer to the socket's in send_data_cb. */
static ssize_t read_cb(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct proxy_call *call = call_of(fe_of(user_data), sid);
    bool eof = false;
    size_t avail, n;

    (void)buf;
    (void)source;
    if (call == NULL)
        return NGHTTP2_ERR_DEFERRED;
    avail = proxy_call_resp_avail(call, &eof);
    n = avail < length ? avail : length;
    if (n == 0 && !eof)
        return NGHTTP2_ERR_DEFERRED;
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && eof) {
        const struct proxy_head *t = proxy_call_resp_trailers(call);

        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (t->n > 0 && nghttp2_submit_trailer(session, sid, t->nv, t->n) == 0)
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
    }
    return (ssize_t)n;
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    struct proxy_fe_conn *fc = fe_of(user_data);
    struct proxy_call *call = call_of(fc, frame->hd.stream_id);
    struct evbuffer *out = proxy_conn_output(&fc->c);

    (void)session;
    (void)source;
    fc->h2mem.trimmed = false; /* |framehd| is in the frame buffer */
    if (proxy_conn_output_full(&fc->c))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (call == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    evbuffer_add(out, framehd, 9);
    if (length > 0)
        proxy_call_resp_write(call, out, length);
    return 0;
}

/* ---- the client side of calls ---- */

static struct proxy_fe_conn *conn_of(const struct proxy_call_side *sd)
{
    return sd->conn;
}

static int side_send_head(struct proxy_call_side *sd, const nghttp2_nv *nv, size_t n, bool end)
{
    struct proxy_fe_conn *fc = conn_of(sd);
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = read_cb};
    int rv = nghttp2_submit_response(fc->c.session, sd->sid, nv, n, end ? NULL : &prd);

    proxy_conn_schedule(&fc->c);
    return rv == 0 ? 0 : -1;
}

static void side_resume(struct proxy_call_side *sd)
{
    struct proxy_fe_conn *fc = conn_of(sd);

    nghttp2_session_resume_data(fc->c.session, sd->sid);
    proxy_conn_schedule(&fc->c);
}

static void side_reset(struct proxy_call_side *sd, uint32_t h2err)
{
    struct proxy_fe_conn *fc = conn_of(sd);

    nghttp2_submit_rst_stream(fc->c.session, NGHTTP2_FLAG_NONE, sd->sid, h2err);
    proxy_conn_schedule(&fc->c);
}

static void side_credit(struct proxy_call_side *sd, size_t n, bool stream)
{
    struct proxy_fe_conn *fc = conn_of(sd);

    if (stream)
        nghttp2_session_consume_stream(fc->c.session, sd->sid, n);
    else
        nghttp2_session_consume_connection(fc->c.session, n);
    proxy_conn_schedule(&fc->c);
}

static const struct proxy_call_side_ops side_ops = {
    .send_head = side_send_head,
    .resume = side_resume,
    .reset = side_reset,
    .credit = side_credit,
};

/* ---- connection ---- */

/* A client abusing the protocol: GOAWAY(ENHANCE_YOUR_CALM), then close once it
 * is written (after_flush). Its calls end; others are untouched. */
static void fe_calm_down(struct proxy_fe_conn *fc, const char *why)
{
    if (fc->goaway_sent || fc->c.dead || fc->c.session == NULL)
        return;
    log_warn("client %s: %s; closing with ENHANCE_YOUR_CALM", fc->peer, why);
    fc->goaway_sent = true;
    nghttp2_session_terminate_session(fc->c.session, NGHTTP2_ENHANCE_YOUR_CALM);
    proxy_conn_schedule(&fc->c);
}

static void on_read_error(struct proxy_conn *c, int rv)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;

    /* Fatal for the connection only: a protocol error, a flood nghttp2 caught
     * (NGHTTP2_ERR_FLOODED), too many CONTINUATIONs, ... */
    log_info("client %s: %s; closing", fc->peer, nghttp2_strerror(rv));
    if (rv == NGHTTP2_ERR_FLOODED) {
        /* Say why before closing, best effort: one write straight to the
         * socket; a client that floods without reading gets the close alone. */
        static const uint8_t goaway[17] = {
            0, 0, 8, NGHTTP2_GOAWAY, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, NGHTTP2_ENHANCE_YOUR_CALM};

        proxy_conn_write_now(c, goaway, sizeof(goaway));
    }
    proxy_conn_close_soon(c);
}

static void after_read(struct proxy_conn *c)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;

    if (c->session == NULL)
        return; /* protocol not known yet */
    /* nghttp2 1.52 does not cap its queue of frames to send (pings, settings
     * ACKs, RST_STREAMs a client provokes): we do. */
    if (nghttp2_session_get_outbound_queue_size(c->session) > FE_MAX_OUTBOUND_QUEUE) {
        fe_calm_down(fc, "outbound frame queue flood");
        return;
    }
    /* A client that does not read its responses is not read from either, so
     * it cannot make us buffer without bound (ping/settings floods): nothing
     * more is parsed until it drains its side. */
    if (evbuffer_get_length(proxy_conn_output(c)) > 4 * PROXY_OUTPUT_HIGH) {
        proxy_conn_read_enable(c, false);
        fc->read_paused = true;
    }
}

static void on_drained(struct proxy_conn *c)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;

    if (fc->read_paused && !fc->goaway_sent) {
        fc->read_paused = false;
        proxy_conn_read_enable(c, true);
    }
}

/* TLS: the handshake is done. The ClientHello and ALPN callbacks (core/tls.c)
 * refuse clients without h2; this is the last line of defence before nghttp2
 * sees bytes. */
static void on_connected(struct proxy_conn *c)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;
    SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

    if (!tls_is_h2(ssl)) {
        if (conf_of(fc)->http1) {
            /* ALPN http/1.1 (or none): the HTTP/1.1 frontend takes it. */
            log_debug("client %s: TLS %s established, HTTP/1.1", fc->peer, SSL_get_version(ssl));
            proxy_h1_take(fc->env, c, fc->peer);
            proxy_conn_close_soon(c);
            return;
        }
        log_warn("client %s: TLS refused: h2 was not negotiated by ALPN", fc->peer);
        proxy_conn_close_soon(c);
        return;
    }
    log_debug("client %s: TLS %s established", fc->peer, SSL_get_version(ssl));
    if (c->session == NULL && fe_h2_start(fc) != 0)
        proxy_conn_close_soon(c);
    else
        proxy_conn_read_input(c); /* bytes that came with the handshake */
}

/* The client preface (RFC 9113 §3.4). */
static const uint8_t h2_preface[24] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/* A cleartext connection before its protocol is known (http1 = on): HTTP/2
 * when it opens with the client preface, else HTTP/1.1, handed over to
 * proxy/h1.c with the bytes read so far. */
static int on_input(struct proxy_conn *c, struct evbuffer *in)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;
    uint8_t head[sizeof(h2_preface)];
    size_t n = evbuffer_get_length(in);

    if (c->tls)
        return 0; /* decided by ALPN in on_connected() */
    n = n < sizeof(head) ? n : sizeof(head);
    evbuffer_copyout(in, head, n);
    if (memcmp(head, h2_preface, n) == 0 && n < sizeof(head))
        return 0; /* so far the preface: wait for the rest */
    if (memcmp(head, h2_preface, n) == 0 || !conf_of(fc)->http1)
        return fe_h2_start(fc) == 0 ? 1 : -1; /* nghttp2 refuses a bad preface */
    proxy_h1_take(fc->env, c, fc->peer);
    proxy_conn_close_soon(c);
    return 0;
}

static void on_io_error(struct proxy_conn *c, short what)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;
    char why[256];

    if (c->tls && !SSL_is_init_finished(bufferevent_openssl_get_ssl(c->bev)) &&
        (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        log_info("client %s: TLS handshake failed: %s", fc->peer,
                 tls_error(c->bev, why, sizeof(why)));
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        log_debug("client %s: connection closed (%s)", fc->peer,
                  (what & BEV_EVENT_EOF) ? "eof" : "error");
        proxy_conn_close_soon(c);
    }
}

static void after_flush(struct proxy_conn *c)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;
    bool finished;

    if (c->session == NULL)
        return;
    finished =
        (!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) ||
        (fc->goaway_sent && fc->nstreams == 0);
    if (!finished)
        return;
    if (evbuffer_get_length(proxy_conn_output(c)) == 0) {
        proxy_conn_linger(c, FE_LINGER_MS);
        return;
    }
    /* Let the last frames (GOAWAY) reach the client before closing. */
    proxy_conn_read_enable(c, false);
    proxy_conn_notify_drained(c, 0);
}

static void destroy(struct proxy_conn *c)
{
    struct proxy_fe_conn *fc = (struct proxy_fe_conn *)c;
    struct proxy_fe_env *env = fc->env;

    while (fc->calls != NULL) {
        struct proxy_call_side *sd = fc->calls;

        unlink_call(fc, sd);
        nghttp2_session_set_stream_user_data(c->session, sd->sid, NULL);
        fc->last_sid = 0;
        /* The client is gone: its backend streams are cancelled, and the
         * call releases its rcbufs before the session that owns them goes. */
        proxy_call_side_closed(sd->call, NGHTTP2_CANCEL);
    }
    if (fc->tick != NULL)
        event_free(fc->tick);
    if (fc->goaway_lag != NULL)
        event_free(fc->goaway_lag);
    free(fc->recent_rst);
    if (fc->age_timer != NULL)
        event_free(fc->age_timer);
    proxy_conn_deinit(c);
    if (fc->prev != NULL)
        fc->prev->next = fc->next;
    else
        env->conns = fc->next;
    if (fc->next != NULL)
        fc->next->prev = fc->prev;
    env->nconns--;
    free(fc);
    if (env->on_gone != NULL)
        env->on_gone(env->gone_arg);
}

static const struct proxy_conn_ops fe_conn_ops = {
    .after_read = after_read,
    .on_read_error = on_read_error,
    .on_connected = on_connected,
    .on_io_error = on_io_error,
    .on_drained = on_drained,
    .after_flush = after_flush,
    .destroy = destroy,
    .on_input = on_input,
};

static void send_final_goaway(struct proxy_fe_conn *fc)
{
    if (fc->goaway_sent || fc->c.dead)
        return;
    if (fc->c.session == NULL) { /* no protocol yet: nothing to say */
        proxy_conn_close_soon(&fc->c);
        return;
    }
    fc->goaway_sent = true;
    nghttp2_submit_goaway(fc->c.session, NGHTTP2_FLAG_NONE,
                          nghttp2_session_get_last_proc_stream_id(fc->c.session), NGHTTP2_NO_ERROR,
                          NULL, 0);
    proxy_conn_schedule(&fc->c);
}

static void on_goaway_lag(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    send_final_goaway(arg);
}

/* One timer a connection for header_timeout, idle_timeout and keepalive
 * (proxy_conn_keepalive_step). None is
 * stopped when what it watches ends (an event_add and an event_del a call):
 * the tick fires at the earliest deadline it was asked for and looks.
 * Nothing outstanding: it lapses. A head begun or a last stream ended since:
 * armed again for that deadline. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_fe_conn *fc = arg;
    const struct conf_proxy *pc = conf_of(fc);
    uint64_t now = proxy_loop_ms(fc->c.base), next = UINT64_MAX, due;

    (void)fd;
    (void)what;
    fc->tick_armed = false;
    if (fc->c.dead)
        return;
    /* Within 10 ms counts as due: the loop's clock and the timer's differ. */
    if (!fc->settings_seen || fc->nhdr_pending > 0) {
        due = fc->hdr_since_ms + pc->header_timeout_ms;
        if (now + 10 >= due) {
            log_info("client %s: header_timeout (%s)", fc->peer,
                     fc->settings_seen ? "request headers incomplete" : "no HTTP/2 preface");
            proxy_conn_close_soon(&fc->c);
            return;
        }
        next = due;
    }
    if (fc->nstreams == 0 && pc->idle_timeout_ms > 0 && !fc->goaway_sent) {
        due = fc->idle_since_ms + pc->idle_timeout_ms;
        if (now + 10 >= due) {
            log_debug("client %s: idle timeout", fc->peer);
            send_final_goaway(fc);
        } else if (due < next) {
            next = due;
        }
    }
    due = proxy_conn_keepalive_step(&fc->c);
    if (fc->c.dead)
        return;
    if (due < next)
        next = due;
    if (next != UINT64_MAX)
        tick_need(fc, next);
}

static void conn_drain(struct proxy_fe_conn *fc)
{
    /* Two-step GOAWAY (RFC 9113 §6.8): 2^31-1 first so requests in flight are
     * still accepted, then the real last-stream-id about a round trip later. */
    if (fc->c.dead || fc->goaway_sent)
        return;
    if (fc->c.session == NULL) {
        proxy_conn_close_soon(&fc->c);
        return;
    }
    nghttp2_submit_shutdown_notice(fc->c.session);
    if (fc->goaway_lag == NULL &&
        (fc->goaway_lag = event_new(fc->env->base, -1, 0, on_goaway_lag, fc)) == NULL)
        core_oom();
    timer_arm(fc->goaway_lag, 1000);
    proxy_conn_schedule(&fc->c);
}

/* max_connection_age: GOAWAY, so that long-lived clients reconnect (to
 * another proxy replica, say) and the load spreads; the calls running get
 * max_connection_age_grace to finish, then the connection closes. */
static void on_age_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_fe_conn *fc = arg;

    (void)fd;
    (void)what;
    if (!fc->aged) {
        uint32_t grace = conf_of(fc)->max_connection_age_grace_ms;

        fc->aged = true;
        log_debug("client %s: max_connection_age reached; GOAWAY", fc->peer);
        conn_drain(fc);
        /* at least the second GOAWAY's round trip */
        timer_arm(fc->age_timer, grace > 1500 ? grace : 1500);
        return;
    }
    if (fc->nstreams > 0)
        log_info("client %s: max_connection_age_grace over with %u stream(s) open; closing",
                 fc->peer, fc->nstreams);
    proxy_conn_close_soon(&fc->c);
}

/* Every FE_TRIM_EVERY_MS while the worker has connections: those idle for
 * FE_TRIM_IDLE_MS (no stream, nothing read, no frame queued or half sent)
 * give their frame buffer's pages back: an idle connection then holds its
 * session's state and no frame bytes. */
static void on_trim_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_fe_env *env = arg;
    uint64_t now = proxy_loop_ms(env->base);

    (void)fd;
    (void)what;
    for (struct proxy_fe_conn *fc = env->conns; fc != NULL; fc = fc->next) {
        if (fc->c.session == NULL || fc->c.dead || fc->nstreams > 0 || fc->h2mem.trimmed ||
            now - fc->c.last_rx_ms < FE_TRIM_IDLE_MS || nghttp2_session_want_write(fc->c.session))
            continue;
        proxy_h2mem_trim(&fc->h2mem);
    }
    if (env->conns != NULL)
        timer_arm(env->trim_timer, FE_TRIM_EVERY_MS);
}

void proxy_fe_drain(struct proxy_fe_env *env)
{
    env->draining = true;
    for (struct proxy_fe_conn *fc = env->conns; fc != NULL; fc = fc->next)
        conn_drain(fc);
    proxy_h1_drain(env);
}

/* The TLS object of a client on the TLS listener, or NULL. */
static SSL *tls_new(struct proxy_fe_conn *fc)
{
    SSL_CTX *ctx = tls_fe_ctx(fc->env->calls->snap->conf);

    if (ctx == NULL) { /* a reload dropped listen_tls; the listener stays until restart */
        log_warn("client %s: TLS listener without tls_cert in the running configuration", fc->peer);
        return NULL;
    }
    return tls_fe_ssl_new(ctx, fc->peer);
}

/* The connection speaks HTTP/2: its session, our SETTINGS, keepalive. With
 * http1 = on this waits for the client preface (or ALPN h2), so that an
 * HTTP/1.1 client never receives HTTP/2 frames. */
static int fe_h2_start(struct proxy_fe_conn *fc)
{
    const struct conf_proxy *pc = conf_of(fc);
    uint32_t limit = fc->max_streams;
    /* What nghttp2 enforces itself: above it, nghttp2 1.52 fails the whole
     * connection. The client is told |limit| (send_cb). */
    uint32_t lib_limit = limit > 1073741823u ? 2147483647u : limit + (limit < 100 ? 100 : limit);
    uint64_t due;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, lib_limit},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, pc->stream_buffer},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, pc->max_header_list_size},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    int rv = nghttp2_session_server_new3(&fc->c.session, fc->env->cbs, fc, fc->env->opt,
                                         proxy_h2mem_owner_init(&fc->h2mem));

    proxy_h2mem_created(&fc->h2mem);
    if (rv != 0) {
        log_error("client %s: cannot set up the HTTP/2 session", fc->peer);
        return -1;
    }
    if (pc->max_connection_age_ms > 0) {
        /* +-10 % jitter, so that connections opened together do not all
         * reconnect together. */
        double f = 0.9 + 0.2 * ((double)random() / ((double)RAND_MAX + 1.0));

        fc->age_timer = event_new(fc->env->base, -1, 0, on_age_timer, fc);
        timer_arm(fc->age_timer, (uint32_t)((double)pc->max_connection_age_ms * f));
    }
    /* Keepalive is stepped by the tick (on_tick): no timer of its own. */
    due =
        proxy_conn_keepalive_start(&fc->c, pc->keepalive_time_ms, pc->keepalive_timeout_ms, false);
    if (due != UINT64_MAX)
        tick_need(fc, due);
    nghttp2_submit_settings(fc->c.session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(fc->c.session, NGHTTP2_FLAG_NONE, 0, FE_CONN_WINDOW);
    proxy_conn_schedule(&fc->c);
    return 0;
}

void proxy_fe_accept(struct proxy_fe_env *env, evutil_socket_t fd, const struct sockaddr *sa,
                     bool tls)
{
    const struct conf_proxy *pc = &env->calls->snap->conf->proxy;
    struct proxy_fe_conn *fc;
    SSL *ssl = NULL;
    int one = 1;
    uint32_t limit = pc->max_concurrent_streams;

    if (env->draining) {
        evutil_closesocket(fd);
        return;
    }
    if (env->nconns >= env->max_conns) {
        if (env->refused++ % 1000 == 0)
            log_warn("worker %d: max_connections reached; closing new client connections",
                     env->worker);
        evutil_closesocket(fd);
        return;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    fc = xcalloc(1, sizeof(*fc));
    fc->env = env;
    fc->max_streams = limit;
    fc->early_tokens = FE_EARLY_BURST;
    fc->early_ms = proxy_loop_ms(env->base);
    bal_addr_str(sa, fc->peer, sizeof(fc->peer));
    if ((fc->tick = event_new(env->base, -1, 0, on_tick, fc)) == NULL)
        core_oom();
    if (tls && (ssl = tls_new(fc)) == NULL) {
        evutil_closesocket(fd);
        event_free(fc->tick);
        free(fc);
        return;
    }
    if (proxy_conn_init(&fc->c, &fe_conn_ops, env->fl, env->base, fd, ssl, true, "client",
                        fc->peer) != 0 ||
        (!pc->http1 && fe_h2_start(fc) != 0)) {
        log_error("client %s: cannot set up the connection", fc->peer);
        if (fc->c.bev == NULL && fc->c.fd < 0)
            evutil_closesocket(fd);
        proxy_conn_deinit(&fc->c);
        event_free(fc->tick);
        free(fc);
        return;
    }
    /* The preface and SETTINGS (or a request head) must come within header_timeout. */
    fc->hdr_since_ms = fc->idle_since_ms = proxy_loop_ms(env->base);
    tick_need(fc, fc->hdr_since_ms + pc->header_timeout_ms);
    fc->next = env->conns;
    if (env->conns != NULL)
        env->conns->prev = fc;
    env->conns = fc;
    env->nconns++;
    if (pc->idle_timeout_ms > 0)
        tick_need(fc, fc->idle_since_ms + pc->idle_timeout_ms);
    if (!evtimer_pending(env->trim_timer, NULL))
        timer_arm(env->trim_timer, FE_TRIM_EVERY_MS);
    log_debug("client %s: connected (worker %d)", fc->peer, env->worker);
    proxy_conn_schedule(&fc->c);
}

void proxy_fe_env_init(struct proxy_fe_env *env, struct event_base *base, struct proxy_flusher *fl,
                       struct proxy_call_env *calls, int worker)
{
    nghttp2_session_callbacks *cbs;

    *env = (struct proxy_fe_env){0};
    env->base = base;
    env->fl = fl;
    env->calls = calls;
    env->worker = worker;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&env->opt) != 0 ||
        (env->trim_timer = evtimer_new(base, on_trim_timer, env)) == NULL)
        core_oom();
    nghttp2_session_callbacks_set_send_callback(cbs, send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    nghttp2_session_callbacks_set_on_begin_frame_callback(cbs, on_begin_frame);
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    env->cbs = cbs;
    /* Flow control is ours (flow.h): nothing is credited until we say so. */
    nghttp2_option_set_no_auto_window_update(env->opt, 1);
    /* Rapid Reset (CVE-2023-44487) and CONTINUATION flood (CVE-2024-28182)
     * guards of Debian's nghttp2, set explicitly: a client past them gets
     * GOAWAY and its connection is closed once nghttp2 stops wanting I/O. */
    nghttp2_option_set_stream_reset_rate_limit(env->opt, FE_EARLY_BURST, FE_EARLY_RATE);
    nghttp2_option_set_max_continuations(env->opt, 8);
    nghttp2_option_set_max_outbound_ack(env->opt, 1000);
    /* Response heads and trailers up to max_header_list_size must fit. */
    nghttp2_option_set_max_send_header_block_length(env->opt, 2 * 1024 * 1024);
}

void proxy_fe_env_deinit(struct proxy_fe_env *env)
{
    proxy_h1_free_all(env);
    while (env->conns != NULL) {
        env->on_gone = NULL;
        destroy(&env->conns->c);
    }
    if (env->trim_timer != NULL)
        event_free(env->trim_timer);
    env->trim_timer = NULL;
    if (env->cbs != NULL)
        nghttp2_session_callbacks_del(env->cbs);
    nghttp2_option_del(env->opt);
    env->cbs = NULL;
    env->opt = NULL;
}
