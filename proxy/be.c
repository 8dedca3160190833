/* Backend codec: HTTP/2 client connections to the endpoints (be.h).
 * Invariant: a connection never carries more streams than min(our
 * max_streams, the peer's SETTINGS_MAX_CONCURRENT_STREAMS); a stream's
 * storage belongs to its opener and is linked here only while it is open.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "be"
#include "proxy/be.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>

#include "core/alloc.h"
#include "core/log.h"
#include "core/tls.h"
#include "proxy/h2mem.h"

/* Our connection window. Connection-level credit is returned as soon as
 * bytes are buffered (flow.h), so this only needs to cover a bandwidth-delay
 * product; the per-stream window bounds what one stream can hold. */
#define BE_CONN_WINDOW (4 * 1024 * 1024)

enum be_state {
    BE_CONNECTING = 0, /* TCP connect (and TLS handshake) in progress */
    BE_READY,          /* may take new streams */
    BE_GOAWAY,         /* peer sent GOAWAY: no new streams, close when idle */
    BE_STATE_COUNT
};

static const char *const be_state_names[BE_STATE_COUNT] = {"connecting", "ready", "goaway"};

static const char *const end_names[PROXY_BE_END_COUNT] = {"complete", "not sent", "refused",
                                                          "reset", "lost"};

struct proxy_be_conn {
    struct proxy_conn c; /* first: a proxy_conn * of a backend is a proxy_be_conn * */
    struct proxy_be_env *env;
    const struct proxy_be_owner_ops *ops;
    void *owner;
    enum be_state state;
    uint32_t max_streams;
    uint32_t nstreams;
    struct proxy_be_stream *streams; /* open streams we report to */
    bool close_idle;                 /* close once no stream is open */
    bool capacity;                   /* a stream ended: tell the owner after the flush */
    bool failed;                     /* be_fail() ran */
    /* The last stream looked up (stream_of): its id (0: none) and what
     * nghttp2 holds for it. Callbacks come for the same stream in runs (each
     * field of a header block, a DATA frame's chunk and end). */
    int32_t last_sid;
    struct proxy_be_stream *last_st;
    char addr[64];
};

const char *proxy_be_end_name(enum proxy_be_end end)
{
    return end < PROXY_BE_END_COUNT ? end_names[end] : "?";
}

/* ---- stream list ---- */

static void link_stream(struct proxy_be_conn *bc, struct proxy_be_stream *st)
{
    st->prev = NULL;
    st->next = bc->streams;
    if (bc->streams != NULL)
        bc->streams->prev = st;
    bc->streams = st;
    bc->nstreams++;
}

static void unlink_stream(struct proxy_be_conn *bc, struct proxy_be_stream *st)
{
    if (st->prev != NULL)
        st->prev->next = st->next;
    else
        bc->streams = st->next;
    if (st->next != NULL)
        st->next->prev = st->prev;
    st->next = st->prev = NULL;
    st->bc = NULL;
    if (bc->last_sid == st->sid)
        bc->last_sid = 0; /* its storage goes back to the opener */
    bc->nstreams--;
    bc->capacity = true;
    proxy_conn_schedule(&bc->c);
}

/* Detaches |st| and tells its opener how it ended: the last thing it hears. */
static void stream_end(struct proxy_be_conn *bc, struct proxy_be_stream *st, enum proxy_be_end end,
                       uint32_t h2err, const char *why)
{
    const struct proxy_be_stream_ops *ops = st->ops;
    void *ctx = st->ctx;

    if (st->sid > 0 && !bc->failed)
        nghttp2_session_set_stream_user_data(bc->c.session, st->sid, NULL);
    proxy_head_clear(&st->rhead); /* rcbufs of this session */
    unlink_stream(bc, st);
    ops->on_close(ctx, end, h2err, why);
}

/* The stream of |sid|, as nghttp2 holds it (NULL: detached or none). */
static struct proxy_be_stream *stream_of(struct proxy_be_conn *bc, int32_t sid)
{
    if (sid != bc->last_sid) {
        bc->last_st = nghttp2_session_get_stream_user_data(bc->c.session, sid);
        bc->last_sid = sid;
    }
    return bc->last_st;
}

/* ---- nghttp2 client callbacks ---- */

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, nghttp2_rcbuf *name,
                     nghttp2_rcbuf *value, uint8_t flags, void *user_data)
{
    struct proxy_be_stream *st = stream_of(user_data, frame->hd.stream_id);

    (void)session;
    (void)flags;
    if (st == NULL || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    /* Held, not copied; passed up when the block is complete (on_frame_recv). */
    proxy_head_add_rc(&st->rhead, name, value);
    return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_be_stream *st;
    bool end = frame->hd.flags & NGHTTP2_FLAG_END_STREAM;

    (void)session;
    switch (frame->hd.type) {
    case NGHTTP2_GOAWAY:
        /* No new streams here; those above last-stream-id are closed with
         * REFUSED_STREAM by nghttp2 and reported as refused. */
        log_info("backend %s sent GOAWAY (%s, last stream %d)", bc->addr,
                 nghttp2_http2_strerror(frame->goaway.error_code), frame->goaway.last_stream_id);
        bc->state = BE_GOAWAY;
        return 0;
    case NGHTTP2_PING:
        if (frame->hd.flags & NGHTTP2_FLAG_ACK)
            proxy_conn_ping_acked(&bc->c);
        return 0;
    case NGHTTP2_SETTINGS:
        /* A larger MAX_CONCURRENT_STREAMS may let waiting calls in. */
        bc->capacity = true;
        return 0;
    case NGHTTP2_HEADERS:
    case NGHTTP2_DATA:
        break;
    default:
        return 0;
    }
    st = stream_of(bc, frame->hd.stream_id);
    if (st == NULL)
        return 0;
    if (frame->hd.type == NGHTTP2_HEADERS) {
        if (frame->headers.cat == NGHTTP2_HCAT_RESPONSE ||
            (frame->headers.cat == NGHTTP2_HCAT_HEADERS && !st->got_head)) {
            /* 1xx responses are not used by gRPC; drop them (RFC 9113 §8.1). */
            const nghttp2_nv *status = proxy_head_get(&st->rhead, ":status", 7);

            if (status != NULL && status->valuelen == 3 && status->value[0] == '1' && !end) {
                proxy_head_clear(&st->rhead);
                return 0;
            }
            st->got_head = true;
            if (end)
                st->complete = true;
            st->ops->on_head(st->ctx, &st->rhead, end);
        } else {
            st->complete = true;
            st->ops->on_trailers(st->ctx, &st->rhead);
        }
        /* The opener may have reset the stream from the callback (which
         * cleared the head, and took |st| off this connection). */
        if (st->bc == bc && st->sid == frame->hd.stream_id)
            proxy_head_clear(&st->rhead);
        return 0;
    }
    if (end)
        st->complete = true;
    return 0;
}

static int on_data_chunk_recv(nghttp2_session *session, uint8_t flags, int32_t sid,
                              const uint8_t *data, size_t len, void *user_data)
{
    struct proxy_be_stream *st = stream_of(user_data, sid);

    (void)flags;
    if (st == NULL) {
        /* Nobody takes these bytes: the credit goes back at once. */
        nghttp2_session_consume(session, sid, len);
        return 0;
    }
    st->ops->on_data(st->ctx, data, len);
    return 0;
}

static int on_frame_send(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
    struct proxy_be_stream *st;

    (void)session;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    st = stream_of(user_data, frame->hd.stream_id);
    if (st != NULL && !st->sent) {
        st->sent = true;
        st->ops->on_sent(st->ctx);
    }
    return 0;
}

static int on_frame_not_send(nghttp2_session *session, const nghttp2_frame *frame, int lib_error,
                             void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_be_stream *st;

    (void)session;
    if (frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    log_debug("backend %s: request not sent: %s", bc->addr, nghttp2_strerror(lib_error));
    st = stream_of(user_data, frame->hd.stream_id);
    if (st != NULL)
        st->not_sent = true; /* nghttp2 closes the stream next */
    return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t sid, uint32_t error_code,
                           void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_be_stream *st = stream_of(bc, sid);
    enum proxy_be_end end;
    char why[160];

    (void)session;
    if (st == NULL)
        return 0;
    if (st->complete) {
        /* A complete response is never discarded, whatever a reset after it says. */
        end = PROXY_BE_END_COMPLETE;
        snprintf(why, sizeof(why), "response complete");
    } else if (st->not_sent || !st->sent) {
        end = PROXY_BE_END_NOT_SENT;
        snprintf(why, sizeof(why), "%s did not take the request (%s)", bc->addr,
                 nghttp2_http2_strerror(error_code));
    } else if (error_code == NGHTTP2_REFUSED_STREAM) {
        /* RFC 9113 §8.7: REFUSED_STREAM (also what nghttp2 reports for streams
         * above a GOAWAY's last-stream-id) means not processed at all. */
        end = PROXY_BE_END_REFUSED;
        snprintf(why, sizeof(why), "%s refused the stream", bc->addr);
    } else {
        end = PROXY_BE_END_RESET;
        snprintf(why, sizeof(why), "backend %s reset the stream (%s)", bc->addr,
                 nghttp2_http2_strerror(error_code));
    }
    stream_end(bc, st, end, error_code, why);
    /* Never NGHTTP2_ERR_CALLBACK_FAILURE here (CVE-2023-35945). */
    return 0;
}

/* Request body source: nothing is copied here (NGHTTP2_DATA_FLAG_NO_COPY); the
 * bytes move from the opener's buffer to the socket's in send_data. */
static ssize_t read_cb(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    struct proxy_be_stream *st = stream_of(user_data, sid);
    bool eof = false;
    size_t avail, n;

    (void)buf;
    (void)source;
    (void)session;
    if (st == NULL)
        return NGHTTP2_ERR_DEFERRED; /* forgotten; our RST_STREAM closes it */
    avail = st->ops->req_avail(st->ctx, &eof);
    n = avail < length ? avail : length;
    if (n == 0 && !eof)
        return NGHTTP2_ERR_DEFERRED;
    if (n > 0)
        *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == avail && eof)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

static int send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                        size_t length, nghttp2_data_source *source, void *user_data)
{
    struct proxy_be_conn *bc = user_data;
    struct proxy_be_stream *st = stream_of(user_data, frame->hd.stream_id);
    struct evbuffer *out = proxy_conn_output(&bc->c);

    (void)session;
    (void)source;
    if (proxy_conn_output_full(&bc->c))
        return NGHTTP2_ERR_WOULDBLOCK;
    if (st == NULL)
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* forgotten meanwhile: reset it */
    evbuffer_add(out, framehd, 9);
    if (length > 0)
        st->ops->req_write(st->ctx, out, length);
    return 0;
}

void proxy_be_env_init(struct proxy_be_env *env, struct event_base *base, struct proxy_flusher *fl)
{
    nghttp2_session_callbacks *cbs;

    env->base = base;
    env->fl = fl;
    if (nghttp2_session_callbacks_new(&cbs) != 0 || nghttp2_option_new(&env->opt) != 0)
        core_oom();
    nghttp2_session_callbacks_set_send_callback(cbs, proxy_conn_send_cb);
    nghttp2_session_callbacks_set_send_data_callback(cbs, send_data_cb);
    nghttp2_session_callbacks_set_on_header_callback2(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs, on_frame_not_send);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    env->cbs = cbs;
    /* Flow control is ours (flow.h): nothing is credited until we say so. */
    nghttp2_option_set_no_auto_window_update(env->opt, 1);
    nghttp2_option_set_peer_max_concurrent_streams(env->opt, 100);
    /* Request heads up to max_header_list_size (1 MiB at most) must fit. */
    nghttp2_option_set_max_send_header_block_length(env->opt, 2 * 1024 * 1024);
}

void proxy_be_env_deinit(struct proxy_be_env *env)
{
    if (env->cbs != NULL)
        nghttp2_session_callbacks_del(env->cbs);
    nghttp2_option_del(env->opt);
    env->cbs = NULL;
    env->opt = NULL;
}

/* ---- connection ---- */

/* The connection is over: every open stream is told (not sent, or lost; or
 * complete), the owner hears of a failed connect first, so that a call retried
 * from a stream's report already avoids this endpoint, and the connection is
 * freed by the flush pass. */
static void be_fail(struct proxy_be_conn *bc, const char *reason)
{
    bool connecting = bc->state == BE_CONNECTING;
    char why[192];

    if (bc->failed)
        return;
    if (connecting)
        snprintf(why, sizeof(why), "connect to %s failed: %s", bc->addr, reason);
    else
        snprintf(why, sizeof(why), "connection to backend %s lost: %s", bc->addr, reason);
    if (!connecting && bc->nstreams > 0)
        log_info("backend %s: connection lost (%s) with %u streams open", bc->addr, reason,
                 bc->nstreams);
    /* Detach every stream from the session first: nghttp2 must not call back
     * into storage its openers may reuse once told. */
    for (struct proxy_be_stream *st = bc->streams; st != NULL; st = st->next) {
        if (st->sid > 0)
            nghttp2_session_set_stream_user_data(bc->c.session, st->sid, NULL);
    }
    bc->failed = true;
    bc->last_sid = 0;
    if (connecting && bc->ops->on_connect_failed != NULL)
        bc->ops->on_connect_failed(bc->owner, bc, reason);
    while (bc->streams != NULL) {
        struct proxy_be_stream *st = bc->streams;
        enum proxy_be_end end = st->complete                  ? PROXY_BE_END_COMPLETE
                                : (!st->sent || st->not_sent) ? PROXY_BE_END_NOT_SENT
                                                              : PROXY_BE_END_LOST;

        stream_end(bc, st, end, NGHTTP2_INTERNAL_ERROR, why);
    }
    proxy_conn_close_soon(&bc->c);
}

static void on_read_error(struct proxy_conn *c, int rv)
{
    be_fail((struct proxy_be_conn *)c, nghttp2_strerror(rv));
}

static void on_connected(struct proxy_conn *c)
{
    struct proxy_be_conn *bc = (struct proxy_be_conn *)c;

    if (c->tls && !tls_is_h2(bufferevent_openssl_get_ssl(c->bev))) {
        be_fail(bc, "TLS: the backend did not negotiate h2 by ALPN");
        return;
    }
    bc->state = BE_READY;
    c->hold = false;
    log_debug("backend %s: connected", bc->addr);
    bc->capacity = true;
    proxy_conn_schedule(c);
}

static void on_io_error(struct proxy_conn *c, short what)
{
    struct proxy_be_conn *bc = (struct proxy_be_conn *)c;

    if (what & BEV_EVENT_TIMEOUT) {
        be_fail(bc, "timed out");
    } else if (what & BEV_EVENT_EOF) {
        be_fail(bc, "closed by peer");
    } else if ((what & BEV_EVENT_ERROR) && c->tls) {
        char why[128];

        /* A failed handshake counts like a failed connect (state CONNECTING). */
        be_fail(bc, tls_error(c->bev, why, sizeof(why)));
    } else if (what & BEV_EVENT_ERROR) {
        be_fail(bc, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    }
}

static void after_flush(struct proxy_conn *c)
{
    struct proxy_be_conn *bc = (struct proxy_be_conn *)c;

    if ((!nghttp2_session_want_read(c->session) && !nghttp2_session_want_write(c->session)) ||
        ((bc->state == BE_GOAWAY || (bc->close_idle && bc->state == BE_READY)) &&
         bc->nstreams == 0)) {
        log_debug("backend %s: closing connection (%s)", bc->addr, be_state_names[bc->state]);
        be_fail(bc, "closed by switchyard");
        return;
    }
    if (bc->capacity && bc->state == BE_READY) {
        bc->capacity = false;
        if (proxy_be_has_capacity(bc))
            bc->ops->on_capacity(bc->owner, bc);
    }
}

static void destroy(struct proxy_conn *c)
{
    struct proxy_be_conn *bc = (struct proxy_be_conn *)c;

    be_fail(bc, "closed"); /* no-op unless streams are left (worker exit) */
    bc->ops->on_gone(bc->owner, bc);
    proxy_conn_deinit(c);
    free(bc);
}

static const struct proxy_conn_ops be_conn_ops = {
    .on_read_error = on_read_error,
    .on_connected = on_connected,
    .on_io_error = on_io_error,
    .after_flush = after_flush,
    .destroy = destroy,
};

struct proxy_be_conn *proxy_be_conn_new(struct proxy_be_env *env, const struct proxy_be_settings *s,
                                        const struct proxy_be_owner_ops *ops, void *owner)
{
    struct proxy_be_conn *bc = xcalloc(1, sizeof(*bc));
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, s->stream_window},
        {NGHTTP2_SETTINGS_NO_RFC7540_PRIORITIES, 1},
    };
    SSL *ssl = NULL;
    uint32_t ka = s->keepalive_ms;

    bc->env = env;
    bc->ops = ops;
    bc->owner = owner;
    bc->state = BE_CONNECTING;
    bc->max_streams = s->max_streams;
    snprintf(bc->addr, sizeof(bc->addr), "%s", s->addr_str);
    if (s->tls != NULL) {
        /* ALPN h2, SNI and the name to verify are set on the SSL object;
         * BEV_EVENT_CONNECTED comes once the handshake is done. */
        ssl = tls_be_ssl_new(s->tls, s->tls_host);
        if (ssl == NULL) {
            log_warn("backend %s: cannot set up TLS", bc->addr);
            free(bc);
            return NULL;
        }
    }
    if (proxy_conn_init(&bc->c, &be_conn_ops, env->fl, env->base, -1, ssl, false, "backend",
                        bc->addr) != 0 ||
        nghttp2_session_client_new3(&bc->c.session, env->cbs, bc, env->opt, proxy_h2mem()) != 0) {
        log_warn("backend %s: cannot set up a connection", bc->addr);
        proxy_conn_deinit(&bc->c);
        free(bc);
        return NULL;
    }
    nghttp2_submit_settings(bc->c.session, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0]));
    nghttp2_session_set_local_window_size(bc->c.session, NGHTTP2_FLAG_NONE, 0, BE_CONN_WINDOW);
    /* gRPC servers answer pings more frequent than every 5 minutes without
     * calls with GOAWAY(too_many_pings): backends are pinged at most every
     * 5m10s whatever keepalive_time says. */
    proxy_conn_keepalive_start(&bc->c, ka == 0 ? 0 : (ka < 310000 ? 310000 : ka),
                               s->keepalive_timeout_ms, true);
    if (proxy_conn_connect(&bc->c, (const struct sockaddr *)&s->addr, (int)s->addrlen,
                           s->connect_timeout_ms) != 0) {
        /* Socket creation failed outright: report like any connect failure,
         * from the flush pass (the caller has not linked anything yet). */
        bc->failed = true;
        log_warn("backend %s: cannot create a socket", bc->addr);
        proxy_conn_deinit(&bc->c);
        free(bc);
        return NULL;
    }
    log_debug("backend %s: connecting", bc->addr);
    return bc;
}

static uint32_t stream_limit(const struct proxy_be_conn *bc)
{
    uint32_t peer =
        nghttp2_session_get_remote_settings(bc->c.session, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);

    return peer < bc->max_streams ? peer : bc->max_streams;
}

bool proxy_be_has_capacity(const struct proxy_be_conn *bc)
{
    return !bc->c.dead && !bc->failed && !bc->close_idle && bc->state != BE_GOAWAY &&
           bc->nstreams < stream_limit(bc) && nghttp2_session_check_request_allowed(bc->c.session);
}

uint32_t proxy_be_nstreams(const struct proxy_be_conn *bc)
{
    return bc->nstreams;
}

bool proxy_be_connecting(const struct proxy_be_conn *bc)
{
    return bc->state == BE_CONNECTING && !bc->failed;
}

int proxy_be_open(struct proxy_be_conn *bc, struct proxy_be_stream *st, struct proxy_head *h,
                  const struct proxy_be_stream_ops *ops, void *ctx)
{
    nghttp2_data_provider prd = {.source.ptr = NULL, .read_callback = read_cb};
    int32_t sid;

    st->ops = ops;
    st->ctx = ctx;
    st->sent = st->not_sent = st->got_head = st->complete = false;
    /* Forwarded as the call holds it: nghttp2 already enforced RFC 9113
     * §8.2-8.3 on the way in (pseudo-headers first, no connection-specific
     * fields, te: trailers). nghttp2 copies no string (NO_COPY; names are
     * lowercase, head.h): it reads them when it packs the HEADERS frame in
     * this connection's flush. Until then |h| stays as it is (be.h) unless
     * the stream is reset first (proxy_be_reset: nghttp2 then drops the
     * queued HEADERS unread) or the connection fails (no frame is packed). */
    for (size_t i = 0; i < h->n; i++)
        h->nv[i].flags |= NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE;
    sid = nghttp2_submit_request(bc->c.session, NULL, h->nv, h->n, &prd, st);
    if (sid < 0) {
        log_warn("backend %s: submit: %s", bc->addr, nghttp2_strerror(sid));
        return -1;
    }
    st->bc = bc;
    st->sid = sid;
    if (bc->last_sid == sid)
        bc->last_sid = 0; /* looked up before it was opened */
    link_stream(bc, st);
    proxy_conn_schedule(&bc->c);
    return 0;
}

void proxy_be_resume(struct proxy_be_stream *st)
{
    struct proxy_be_conn *bc = st->bc;

    if (bc == NULL)
        return;
    nghttp2_session_resume_data(bc->c.session, st->sid);
    proxy_conn_schedule(&bc->c);
}

void proxy_be_credit(struct proxy_be_stream *st, size_t n, bool stream)
{
    struct proxy_be_conn *bc = st->bc;

    if (bc == NULL || n == 0 || bc->failed)
        return;
    if (stream)
        nghttp2_session_consume_stream(bc->c.session, st->sid, n);
    else
        nghttp2_session_consume_connection(bc->c.session, n);
    proxy_conn_schedule(&bc->c);
}

void proxy_be_reset(struct proxy_be_stream *st, uint32_t h2err)
{
    struct proxy_be_conn *bc = st->bc;

    if (bc == NULL)
        return;
    if (!bc->failed) {
        nghttp2_session_set_stream_user_data(bc->c.session, st->sid, NULL);
        nghttp2_submit_rst_stream(bc->c.session, NGHTTP2_FLAG_NONE, st->sid, h2err);
    }
    proxy_head_clear(&st->rhead);
    unlink_stream(bc, st);
}

void proxy_be_shutdown(struct proxy_be_conn *bc, const char *why)
{
    be_fail(bc, why);
}

void proxy_be_close_idle(struct proxy_be_conn *bc)
{
    bc->close_idle = true;
    proxy_conn_schedule(&bc->c);
}

void proxy_be_conn_free(struct proxy_be_conn *bc)
{
    destroy(&bc->c);
}
