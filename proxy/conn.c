/* Connection plumbing shared by the frontend and the backend (conn.h): the
 * bufferevent, the read loop, keepalive and the one flush per loop turn.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "conn"
#include "proxy/conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>

#include "core/alloc.h"
#include "core/clock.h"
#include "core/log.h"

/* Largest read into a connection's own input buffer (HTTP/1.1, or before the
 * protocol is known): bytes that may sit there while the owner waits. */
#define INPUT_CHUNK (16 * 1024)

uint64_t proxy_loop_wall_ms(struct event_base *base)
{
    struct timeval tv;

    event_base_gettimeofday_cached(base, &tv);
    return (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
}

/* The loop's cached time is wall-clock time: a settimeofday or an NTP step
 * moves it. Deadlines want a clock that does not move so, and reading
 * CLOCK_MONOTONIC at every use costs more than the cache: the cached time
 * is taken relative to a CLOCK_MONOTONIC reading, and the reading is taken
 * again when the cached time goes back or is more than a second past it. */
static _Thread_local struct {
    uint64_t wall, mono;
    bool set;
} loop_clock;

uint64_t proxy_loop_ms(struct event_base *base)
{
    uint64_t wall = proxy_loop_wall_ms(base);

    if (loop_clock.set && wall >= loop_clock.wall && wall - loop_clock.wall < 1000)
        return loop_clock.mono + (wall - loop_clock.wall);
    loop_clock.wall = wall;
    loop_clock.mono = core_mono_ms();
    loop_clock.set = true;
    return loop_clock.mono;
}

/* ---- the flush pass ---- */

static void conn_write(struct proxy_conn *c);

/* One flush per loop turn: every connection touched since the last one gets
 * one nghttp2_session_send(), then its output is written (plain sockets), and
 * connections marked dead are freed here, where no nghttp2 callback is on the
 * stack. Freeing one may touch others, so loop until nothing is left. */
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
        if (!c->dead && c->bev == NULL)
            conn_write(c);
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
    free(fl->rbuf);
    fl->rbuf = NULL;
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

/* ---- input ---- */

/* Feeds |n| bytes to nghttp2. Returns 0 or the fatal nghttp2 error. */
static int feed_mem(struct proxy_conn *c, const uint8_t *p, size_t n)
{
    ssize_t rv = nghttp2_session_mem_recv(c->session, p, n);

    return rv < 0 ? (int)rv : 0;
}

/* Feeds every byte of |in| to nghttp2 straight from its chains (no pullup,
 * no copy). Returns 0 or the fatal nghttp2 error. */
static int feed(struct proxy_conn *c, struct evbuffer *in)
{
    while (evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec vec[16];
        int n = evbuffer_peek(in, -1, NULL, vec, 16);
        size_t total = 0;

        for (int i = 0; i < n && i < 16; i++) {
            int rv = feed_mem(c, vec[i].iov_base, vec[i].iov_len);

            if (rv != 0) {
                evbuffer_drain(in, evbuffer_get_length(in));
                return rv;
            }
            total += vec[i].iov_len;
        }
        evbuffer_drain(in, total);
    }
    return 0;
}

/* What follows a read that nghttp2 took (|rv|: its verdict). */
static void after_feed(struct proxy_conn *c, int rv)
{
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

static struct evbuffer *input_of(struct proxy_conn *c)
{
    if (c->bev != NULL)
        return bufferevent_get_input(c->bev);
    if (c->in == NULL && (c->in = evbuffer_new()) == NULL)
        core_oom();
    return c->in;
}

void proxy_conn_read_input(struct proxy_conn *c)
{
    struct evbuffer *in;
    int rv;

    if (c->dead || (c->bev == NULL && c->in == NULL))
        return;
    in = input_of(c);
    if (c->lingering) {
        evbuffer_drain(in, evbuffer_get_length(in));
        if (proxy_loop_ms(c->base) >= c->linger_until)
            proxy_conn_close_soon(c);
        return;
    }
    c->last_rx_ms = proxy_loop_ms(c->base);
    if (c->session == NULL) {
        /* Not HTTP/2 (yet): the owner parses. */
        rv = c->ops->on_input != NULL ? c->ops->on_input(c, in) : 0;
        if (rv < 0)
            proxy_conn_close_soon(c);
        if (rv <= 0 || c->dead || c->session == NULL) {
            proxy_conn_schedule(c);
            return;
        }
    }
    rv = feed(c, in);
    if (c->bev == NULL && c->in != NULL) {
        /* HTTP/2 reads go through the thread's buffer from now on: an idle
         * connection keeps no input buffer. */
        evbuffer_free(c->in);
        c->in = NULL;
    }
    after_feed(c, rv);
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

/* A socket error or EOF (|what|: BEV_EVENT_*), with errno as the syscall
 * left it. */
static void io_error(struct proxy_conn *c, short what)
{
    if (c->lingering) {
        proxy_conn_close_soon(c); /* the peer closed, or the linger timed out */
        return;
    }
    if (c->ops->on_io_error != NULL)
        c->ops->on_io_error(c, what);
    else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
        proxy_conn_close_soon(c);
}

/* A plain socket is readable (or its read timeout, set while lingering,
 * passed). One read per wakeup: what is left wakes the loop again. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    struct evbuffer_iovec v[2];
    ssize_t n;

    if (c->dead)
        return;
    if (what & EV_TIMEOUT) {
        io_error(c, BEV_EVENT_TIMEOUT | BEV_EVENT_READING);
        return;
    }
    if (c->session != NULL || c->lingering) {
        /* HTTP/2: straight from the thread's read buffer into nghttp2, which
         * copies what it keeps (DATA goes to the calls' flows: the one copy). */
        if (c->fl->rbuf == NULL)
            c->fl->rbuf = xcalloc(1, PROXY_IO_CHUNK);
        n = recv(fd, c->fl->rbuf, PROXY_IO_CHUNK, 0);
        if (n > 0 && c->lingering) {
            if (proxy_loop_ms(c->base) >= c->linger_until)
                proxy_conn_close_soon(c);
            return;
        }
        if (n > 0) {
            c->last_rx_ms = proxy_loop_ms(c->base);
            after_feed(c, feed_mem(c, c->fl->rbuf, (size_t)n));
            return;
        }
    } else {
        /* The owner parses (protocol not known yet, HTTP/1.1): into the
         * connection's input buffer, without a copy. */
        struct evbuffer *in = input_of(c);
        int nv = evbuffer_reserve_space(in, INPUT_CHUNK, v, 2);

        if (nv < 1)
            core_oom();
        n = readv(fd, (struct iovec *)v, nv);
        if (n > 0) {
            size_t left = (size_t)n;

            for (int i = 0; i < nv; i++) {
                size_t k = left < v[i].iov_len ? left : v[i].iov_len;

                v[i].iov_len = k;
                left -= k;
            }
            evbuffer_commit_space(in, v, nv);
            proxy_conn_read_input(c);
            return;
        }
        evbuffer_commit_space(in, v, 0);
    }
    if (n == 0)
        io_error(c, BEV_EVENT_EOF | BEV_EVENT_READING);
    else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        io_error(c, BEV_EVENT_ERROR | BEV_EVENT_READING);
}

/* ---- output ---- */

static void drained(struct proxy_conn *c)
{
    if (c->ops->on_drained != NULL)
        c->ops->on_drained(c);
    /* Frames held back (send_cb said WOULDBLOCK) can go now. */
    proxy_conn_schedule(c);
}

static void on_writable(evutil_socket_t fd, short what, void *arg);

/* |c|'s write event, created at its first use: most connections' sockets
 * take every write whole, and an idle connection holds one event less. */
static struct event *wev_of(struct proxy_conn *c)
{
    if (c->wev == NULL &&
        (c->wev = event_new(c->base, c->fd, EV_WRITE | EV_PERSIST, on_writable, c)) == NULL)
        core_oom();
    return c->wev;
}

static bool wev_pending(const struct proxy_conn *c)
{
    return c->wev != NULL && event_pending(c->wev, EV_WRITE, NULL);
}

static void wev_stop(struct proxy_conn *c)
{
    if (wev_pending(c))
        event_del(c->wev);
}

/* Writes what the output holds, now: EV_WRITE is armed only when the socket
 * takes less than everything. */
static void conn_write(struct proxy_conn *c)
{
    size_t before = evbuffer_get_length(c->out), after;
    int n;

    if (c->fd < 0 || c->connecting)
        return;
    if (before == 0) {
        wev_stop(c); /* nothing to write: no wakeups for it */
        return;
    }
    n = evbuffer_write(c->out, c->fd);
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        io_error(c, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
        return;
    }
    after = evbuffer_get_length(c->out);
    if (after > 0) {
        if (!wev_pending(c))
            event_add(wev_of(c), NULL);
    } else {
        wev_stop(c);
    }
    if (before > c->wm_low && after <= c->wm_low)
        drained(c);
}

/* A plain socket is writable: the rest of the output, or the end of a
 * connect (or its timeout). */
static void on_writable(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;
    int one = 1, err = 0;
    socklen_t len = sizeof(err);

    if (c->dead)
        return;
    if (!c->connecting) {
        conn_write(c);
        return;
    }
    if (what & EV_TIMEOUT) {
        io_error(c, BEV_EVENT_TIMEOUT | BEV_EVENT_WRITING);
        return;
    }
    if (c->connect_err != 0)
        err = c->connect_err;
    else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    if (err == EINPROGRESS)
        return;
    if (err != 0) {
        errno = err;
        io_error(c, BEV_EVENT_ERROR | BEV_EVENT_WRITING);
        return;
    }
    c->connecting = false;
    wev_stop(c);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    event_add(c->rev, NULL);
    if (c->ops->on_connected != NULL)
        c->ops->on_connected(c);
    proxy_conn_schedule(c); /* what was held while connecting */
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
    io_error(c, what);
}

/* The read event of plain socket |c->fd|; its write event comes with the
 * first write the socket does not take whole (wev_of). */
static void events_new(struct proxy_conn *c)
{
    c->rev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, on_readable, c);
    c->wev = NULL;
    if (c->rev == NULL)
        core_oom();
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
    c->fd = -1;
    c->wm_low = PROXY_OUTPUT_LOW;
    c->last_rx_ms = proxy_loop_ms(base);
    if (ssl == NULL) {
        if ((c->out = evbuffer_new()) == NULL)
            core_oom();
        if (fd >= 0) {
            c->fd = fd;
            evutil_make_socket_nonblocking(fd);
            events_new(c);
            event_add(c->rev, NULL);
        }
        return 0;
    }
    c->bev = bufferevent_openssl_socket_new(
        base, fd, ssl, accepting ? BUFFEREVENT_SSL_ACCEPTING : BUFFEREVENT_SSL_CONNECTING, flags);
    if (c->bev == NULL) {
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
    return 0;
}

int proxy_conn_connect(struct proxy_conn *c, const struct sockaddr *sa, int salen,
                       uint32_t timeout_ms)
{
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};

    c->hold = true;
    if (c->bev != NULL) {
        /* While connecting, the write timeout is the connect timeout. */
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        return bufferevent_socket_connect(c->bev, sa, salen);
    }
    c->fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    events_new(c);
    wev_of(c);
    c->connecting = true;
    /* The outcome, even an immediate one, is reported from the loop (the
     * caller is not ready for callbacks yet): EV_WRITE with the connect
     * timeout. */
    if (connect(c->fd, sa, (socklen_t)salen) != 0 && errno != EINPROGRESS) {
        c->connect_err = errno;
        event_add(c->wev, &tv);
        event_active(c->wev, EV_WRITE, 0);
        return 0;
    }
    event_add(c->wev, &tv);
    return 0;
}

void proxy_conn_take(struct proxy_conn *dst, struct proxy_conn *src,
                     const struct proxy_conn_ops *ops, const char *side, const char *peer)
{
    dst->ops = ops;
    dst->fl = src->fl;
    dst->base = src->base;
    dst->tls = src->tls;
    dst->side = side;
    dst->peer = peer;
    dst->last_rx_ms = src->last_rx_ms;
    dst->wm_low = PROXY_OUTPUT_LOW;
    dst->fd = -1;
    if (src->bev != NULL) {
        dst->bev = src->bev;
        src->bev = NULL;
        bufferevent_setcb(dst->bev, on_read, on_write, on_event, dst);
        return;
    }
    /* |src|'s events may be on the stack (this runs from its read): they
     * stay with |src|, stopped, and go when it does. */
    dst->fd = src->fd;
    dst->out = src->out;
    dst->in = src->in;
    src->fd = -1;
    src->out = src->in = NULL;
    event_del(src->rev);
    wev_stop(src);
    events_new(dst);
    event_add(dst->rev, NULL);
    if (evbuffer_get_length(dst->out) > 0)
        event_add(wev_of(dst), NULL);
}

void proxy_conn_deinit(struct proxy_conn *c)
{
    if (c->ka_timer != NULL)
        event_free(c->ka_timer);
    c->ka_timer = NULL;
    if (c->session != NULL)
        nghttp2_session_del(c->session);
    c->session = NULL;
    if (c->bev != NULL)
        bufferevent_free(c->bev);
    c->bev = NULL;
    if (c->rev != NULL)
        event_free(c->rev);
    if (c->wev != NULL)
        event_free(c->wev);
    c->rev = c->wev = NULL;
    if (c->fd >= 0)
        evutil_closesocket(c->fd);
    c->fd = -1;
    if (c->out != NULL)
        evbuffer_free(c->out);
    if (c->in != NULL)
        evbuffer_free(c->in);
    c->out = c->in = NULL;
}

void proxy_conn_read_enable(struct proxy_conn *c, bool on)
{
    if (c->bev != NULL) {
        if (on)
            bufferevent_enable(c->bev, EV_READ);
        else
            bufferevent_disable(c->bev, EV_READ);
        return;
    }
    if (c->rev == NULL || c->connecting)
        return;
    if (on)
        event_add(c->rev, NULL);
    else
        event_del(c->rev);
}

void proxy_conn_notify_drained(struct proxy_conn *c, size_t low)
{
    if (c->bev != NULL)
        bufferevent_setwatermark(c->bev, EV_WRITE, low, 0);
    c->wm_low = low;
}

void proxy_conn_linger(struct proxy_conn *c, uint32_t ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    evutil_socket_t fd = c->bev != NULL ? bufferevent_getfd(c->bev) : c->fd;

    if (c->lingering || c->dead)
        return;
    if (evbuffer_get_length(proxy_conn_output(c)) > 0 || fd < 0 || shutdown(fd, SHUT_WR) != 0) {
        proxy_conn_close_soon(c);
        return;
    }
    c->lingering = true;
    c->linger_until = proxy_loop_ms(c->base) + ms;
    if (c->ka_timer != NULL)
        event_del(c->ka_timer);
    /* Reading again: a read that finds nothing for |ms| closes too. */
    if (c->bev != NULL) {
        bufferevent_set_timeouts(c->bev, &tv, NULL);
        bufferevent_disable(c->bev, EV_WRITE);
        bufferevent_enable(c->bev, EV_READ);
        return;
    }
    wev_stop(c);
    event_del(c->rev);
    event_add(c->rev, &tv);
}

ssize_t proxy_conn_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                           void *user_data)
{
    struct proxy_conn *c = user_data;
    struct evbuffer *out = proxy_conn_output(c);

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
    return evbuffer_get_length(proxy_conn_output(c)) >= PROXY_OUTPUT_HIGH;
}

struct evbuffer *proxy_conn_output(const struct proxy_conn *c)
{
    return c->bev != NULL ? bufferevent_get_output(c->bev) : c->out;
}

void proxy_conn_write_now(struct proxy_conn *c, const uint8_t *data, size_t len)
{
    /* Only when nothing is pending, so it cannot land inside a half-written
     * frame; TLS needs the record layer, so only plain connections. */
    if (c->tls || c->fd < 0 || evbuffer_get_length(c->out) != 0)
        return;
    if (send(c->fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        log_debug("%s %s: last frame not sent", c->side, c->peer);
}

/* ---- keepalive ---- */

uint64_t proxy_conn_keepalive_step(struct proxy_conn *c)
{
    uint64_t now = proxy_loop_ms(c->base), due;

    if (c->ka_interval_ms == 0 || c->dead || c->lingering)
        return UINT64_MAX;
    /* Within 10 ms counts as due: the loop's clock and the timer's differ. */
    if (c->ping_out) {
        due = c->ping_sent_ms + c->ka_timeout_ms;
        if (now + 10 < due)
            return due;
        log_info("%s %s: no PING ACK within %u ms; closing", c->side, c->peer, c->ka_timeout_ms);
        proxy_conn_close_soon(c);
        return UINT64_MAX;
    }
    due = c->last_rx_ms + c->ka_interval_ms;
    if (now + 10 < due)
        return due;
    if (c->hold || c->session == NULL ||
        nghttp2_submit_ping(c->session, NGHTTP2_FLAG_NONE, NULL) != 0)
        return now + c->ka_interval_ms;
    c->ping_out = true;
    c->ping_sent_ms = now;
    proxy_conn_schedule(c);
    return now + c->ka_timeout_ms;
}

void proxy_timer_at(struct event *ev, uint64_t due)
{
    uint64_t now = proxy_loop_ms(event_get_base(ev));
    uint64_t ms = due > now ? due - now : 0;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};

    event_add(ev, &tv);
}

static void ka_arm(struct proxy_conn *c, uint64_t due)
{
    if (due != UINT64_MAX)
        proxy_timer_at(c->ka_timer, due);
}

/* A connection's own keepalive timer: one for both halves, the interval and
 * the wait for the ACK. It fires when the step is due and asks again. */
static void on_ka_timer(evutil_socket_t fd, short what, void *arg)
{
    struct proxy_conn *c = arg;

    (void)fd;
    (void)what;
    ka_arm(c, proxy_conn_keepalive_step(c));
}

uint64_t proxy_conn_keepalive_start(struct proxy_conn *c, uint32_t interval_ms, uint32_t timeout_ms,
                                    bool own_timer)
{
    uint64_t due = proxy_loop_ms(c->base) + interval_ms;

    if (interval_ms == 0)
        return UINT64_MAX;
    c->ka_interval_ms = interval_ms;
    c->ka_timeout_ms = timeout_ms;
    if (!own_timer)
        return due;
    if ((c->ka_timer = event_new(c->base, -1, 0, on_ka_timer, c)) == NULL)
        core_oom();
    ka_arm(c, due);
    return due;
}

uint64_t proxy_conn_ping_acked(struct proxy_conn *c)
{
    uint64_t due;

    if (!c->ping_out || c->ka_interval_ms == 0)
        return UINT64_MAX;
    c->ping_out = false;
    /* The next PING is due an interval after this ACK (a read), not at the
     * ACK's deadline, which may be later (keepalive_timeout > keepalive_time). */
    due = c->last_rx_ms + c->ka_interval_ms;
    if (c->ka_timer != NULL && !c->lingering)
        ka_arm(c, due);
    return due;
}
