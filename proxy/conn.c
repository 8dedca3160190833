/* Connection plumbing shared by the frontend and the backend (conn.h): the
 * bufferevent, the read loop, keepalive and the one flush per loop turn.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "conn"
#include "proxy/conn.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "core/log.h"

uint64_t proxy_loop_ms(struct event_base *base)
{
    struct timeval tv;

    event_base_gettimeofday_cached(base, &tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* ---- the flush pass ---- */

/* One flush per loop turn: every connection touched since the last one gets
 * one nghttp2_session_send(), and connections marked dead are freed here,
 * where no nghttp2 callback is on the stack. Freeing one may touch others, so
 * loop until nothing is left. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_flusher *fl = arg;

    (void)fd;
    (void)what;
    while (fl->dirty != NULL) {
        struct proxy_conn *c = fl->dirty;

        fl->dirty = c->next_dirty;
        c->next_dirty = NULL;
        c->dirty = false;
        if (!c->dead && !c->hold && c->session != NULL && nghttp2_session_send(c->session) != 0)
            c->dead = true;
        else if (!c->dead && c->session == NULL && c->ops->flush != NULL)
            c->ops->flush(c);
        if (!c->dead && c->ops->after_flush != NULL)
            c->ops->after_flush(c);
        /* A callback of this send may have scheduled |c| again: then it is
         * still on the list and is freed when the loop reaches it. */
        if (c->dead && !c->dirty)
            c->ops->destroy(c);
    }
    if (fl->after != NULL)
        fl->after(fl->after_arg);
}

void proxy_flusher_init(struct proxy_flusher *fl, struct event_base *base)
{
    *fl = (struct proxy_flusher){0};
    fl->ev = event_new(base, -1, 0, on_flush, fl);
}

void proxy_flusher_deinit(struct proxy_flusher *fl)
{
    if (fl->ev != NULL)
        event_free(fl->ev);
    fl->ev = NULL;
    fl->dirty = NULL;
}

void proxy_conn_schedule(struct proxy_conn *c)
{
    struct proxy_flusher *fl = c->fl;

    if (c->dirty)
        return;
    c->dirty = true;
    c->next_dirty = fl->dirty;
    if (fl->dirty == NULL)
        event_active(fl->ev, EV_WRITE, 0);
    fl->dirty = c;
}

void proxy_conn_close_soon(struct proxy_conn *c)
{
    c->dead = true;
    proxy_conn_schedule(c);
}

/* ---- I/O ---- */

/* Feeds every byte read to nghttp2 straight from libevent's chains (no
 * pullup, no copy). Loops until empty: the read callback does not fire again
 * for bytes already read. Returns 0 or the fatal nghttp2 error. */
static int feed(struct proxy_conn *c, struct evbuffer *in)
{
    c->last_rx_ms = proxy_loop_ms(c->base);
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec vec[16];
        int n = evbuffer_peek(in, -1, NULL, vec, 16);
        size_t total = 0;

        for (int i = 0; i < n && i < 16; i++) {
            ssize_t rv = nghttp2_session_mem_recv(c->session, vec[i].iov_base, vec[i].iov_len);

            if (rv < 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return (int)rv;
            }
            total += (size_t)rv;
        }
        evbuffer_drain(in, total);
    }
    return 0;
}

void proxy_conn_read_input(struct proxy_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    int rv;

    if (c->dead)
        return;
    if (c->lingering) {
        evbuffer_drain(in, evbuffer_get_length(in));
        if (proxy_loop_ms(c->base) >= c->linger_until)
            proxy_conn_close_soon(c);
        return;
    }
    if (c->session == NULL) {
        /* Not HTTP/2 (yet): the owner parses. */
        c->last_rx_ms = proxy_loop_ms(c->base);
        rv = c->ops->on_input != NULL ? c->ops->on_input(c, in) : 0;
        if (rv < 0)
            proxy_conn_close_soon(c);
        if (rv <= 0 || c->dead || c->session == NULL) {
            proxy_conn_schedule(c);
            return;
        }
    }
    rv = feed(c, in);
    if (rv != 0) {
        if (c->ops->on_read_error != NULL)
            c->ops->on_read_error(c, rv);
        else
            proxy_conn_close_soon(c);
        return;
    }
    if (c->ops->after_read != NULL)
        c->ops->after_read(c);
    proxy_conn_schedule(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    proxy_conn_read_input(arg);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct proxy_conn *c = arg;

    (void)bev;
    if (c->ops->on_drained != NULL)
        c->ops->on_drained(c);
    /* Output fell below the low watermark: frames held back can go now. */
    proxy_conn_schedule(c);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct proxy_conn *c = arg;

    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;

        if (c->tls) /* gRPC peers often close without close_notify: EOF, not an error */
            bufferevent_openssl_set_allow_dirty_shutdown(bev, 1);
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        bufferevent_set_timeouts(bev, NULL, NULL);
        if (c->ops->on_connected != NULL)
            c->ops->on_connected(c);
        return;
    }
    if (c->lingering) {
        proxy_conn_close_soon(c); /* the peer closed, or the linger timed out */
        return;
    }
    if (c->ops->on_io_error != NULL)
        c->ops->on_io_error(c, what);
    else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        proxy_conn_close_soon(c);
}

int proxy_conn_init(struct proxy_conn *c, const struct proxy_conn_ops *ops,
                    struct proxy_flusher *fl, struct event_base *base, evutil_socket_t fd, SSL *ssl,
                    bool accepting, const char *side, const char *peer)
{
    int flags = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;

    c->ops = ops;
    c->fl = fl;
    c->base = base;
    c->side = side;
    c->peer = peer;
    c->tls = ssl != NULL;
    if (ssl != NULL)
        c->bev = bufferevent_openssl_socket_new(
            base, fd, ssl, accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING,
            flags);
    else
        c->bev = bufferevent_socket_new(base, fd, flags);
    if (c->bev == NULL) {
        if (ssl != NULL)
            SSL_free(ssl);
        return -1;
    }
    bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
    /* libevent reads and writes at most 16 KiB per call by default: a 64 KiB
     * message would take 4 syscalls each way. */
    bufferevent_set_max_single_read(c->bev, PROXY_IO_CHUNK);
    bufferevent_set_max_single_write(c->bev, PROXY_IO_CHUNK);
    bufferevent_setwatermark(c->bev, EV_WRITE, PROXY_OUTPUT_LOW, 0);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    c->last_rx_ms = proxy_loop_ms(base);
    return 0;
}

int proxy_conn_connect(struct proxy_conn *c, const struct sockaddr *sa, int salen,
                       uint32_t timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    c->hold = true;
    /* While connecting, the write timeout is the connect timeout. */
    bufferevent_set_timeouts(c->bev, NULL, &tv);
    return bufferevent_socket_connect(c->bev, sa, salen);
}

void proxy_conn_take(struct proxy_conn *dst, struct proxy_conn *src,
                     const struct proxy_conn_ops *ops, const char *side, const char *peer)
{
    dst->ops = ops;
    dst->fl = src->fl;
    dst->base = src->base;
    dst->bev = src->bev;
    dst->tls = src->tls;
    dst->side = side;
    dst->peer = peer;
    dst->last_rx_ms = src->last_rx_ms;
    src->bev = NULL;
    bufferevent_setcb(dst->bev, on_read, on_write, on_event, dst);
}

void proxy_conn_deinit(struct proxy_conn *c)
{
    if (c->ka_timer != NULL)
        event_free(c->ka_timer);
    if (c->ka_ack_timer != NULL)
        event_free(c->ka_ack_timer);
    c->ka_timer = c->ka_ack_timer = NULL;
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    c->session = NULL;
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
}

void proxy_conn_linger(struct proxy_conn *c, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};

    if (c->lingering || c->dead)
        return;
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
        shutdown(bufferevent_getfd(c->bev), SHUT_WR) != 0) {
        proxy_conn_close_soon(c);
        return;
    }
    c->lingering = true;
    c->linger_until = proxy_loop_ms(c->base) + ms;
    if (c->ka_timer != NULL)
        event_del(c->ka_timer);
    if (c->ka_ack_timer != NULL)
        event_del(c->ka_ack_timer);
    /* Reading again: a read that finds nothing for |ms| closes too. */
    bufferevent_set_timeouts(c->bev, &tv, NULL);
    bufferevent_disable(c->bev, EV_WRITE);
    bufferevent_enable(c->bev, EV_READ);
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

bool proxy_conn_output_full(const struct proxy_conn *c)
{
    return evbuffer_get_length(bufferevent_get_output(c->bev)) >= PROXY_OUTPUT_HIGH;
}

struct evbuffer *proxy_conn_output(const struct proxy_conn *c)
{
    return bufferevent_get_output(c->bev);
}

void proxy_conn_write_now(struct proxy_conn *c, const uint8_t *data, size_t len)
{
    /* Only when nothing is pending, so it cannot land inside a half-written
     * frame; TLS needs the record layer, so only plain connections. */
    if (c->tls || evbuffer_get_length(bufferevent_get_output(c->bev)) != 0)
        return;
    if (send(bufferevent_getfd(c->bev), data, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("%s %s: last frame not sent", c->side, c->peer);
}

/* ---- keepalive ---- */

static void on_ka_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    struct timeval tv;

    (void)fd;
    (void)what;
    if (c->dead || c->ping_out || c->hold || c->session == NULL)
        return;
    if (proxy_loop_ms(c->base) - c->last_rx_ms < c->ka_interval_ms)
        return;
    if (nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
        return;
    c->ping_out = true;
    tv.tv_sec = c->ka_timeout_ms / 1000;
    tv.tv_usec = (c->ka_timeout_ms % 1000) * 1000;
    event_add(c->ka_ack_timer, &tv);
    proxy_conn_schedule(c);
}

static void on_ka_ack_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)fd;
    (void)what;
    if (!c->ping_out || c->dead)
        return;
    log_info("%s %s: no PING ACK within %u ms; closing", c->side, c->peer, c->ka_timeout_ms);
    proxy_conn_close_soon(c);
}

void proxy_conn_keepalive_start(struct proxy_conn *c, uint32_t interval_ms, uint32_t timeout_ms)
{
    struct timeval tv = {.tv_sec = interval_ms / 1000, .tv_usec = (interval_ms % 1000) * 1000};

    if (interval_ms == 0)
        return;
    c->ka_interval_ms = interval_ms;
    c->ka_timeout_ms = timeout_ms;
    c->ka_timer = event_new(c->base, -1, EV_PERSIST, on_ka_timer, c);
    c->ka_ack_timer = event_new(c->base, -1, 0, on_ka_ack_timer, c);
    event_add(c->ka_timer, &tv);
}

void proxy_conn_ping_acked(struct proxy_conn *c)
{
    c->ping_out = false;
    if (c->ka_ack_timer != NULL)
        event_del(c->ka_ack_timer);
}
