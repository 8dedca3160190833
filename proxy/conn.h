/* One HTTP/2 connection's plumbing, the same for both sides: the socket and
 * its events, the read loop that feeds nghttp2, the keepalive PINGs, and the
 * single nghttp2_session_send() per loop turn, followed by the write.
 * A plain connection does its own I/O on the socket: reads of up to
 * PROXY_IO_CHUNK go straight from the worker's read buffer into nghttp2 (no
 * input buffer per connection), and the flush pass writes the output at
 * once, arming EV_WRITE only when the socket would block (a bufferevent arms
 * and disarms EV_WRITE around every write, and reads 4 KiB at a time). A TLS
 * connection keeps a bufferevent_openssl for the record layer.
 * Invariant: a connection is freed only by the flush pass (never while
 * nghttp2 is on the stack for it): mark it dead with proxy_conn_close_soon().
 * The owner (fe or be) hears about its connection through proxy_conn_ops.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_CONN_H
#define PROXY_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/util.h>
#include <nghttp2/nghttp2.h>
#include <openssl/ssl.h>

struct event;
struct event_base;
struct bufferevent;
struct evbuffer;
struct proxy_conn;

/* Above this much pending output a connection stops producing frames. */
#define PROXY_OUTPUT_HIGH (256 * 1024)
#define PROXY_OUTPUT_LOW  (64 * 1024)
/* Largest single read or write on a socket. */
#define PROXY_IO_CHUNK (256 * 1024)

/** What the owner of a connection is told. Every hook is optional except
 *  |destroy|. */
struct proxy_conn_ops {
    /** Bytes were read and fed to nghttp2 without a fatal error. */
    void (*after_read)(struct proxy_conn *c);
    /** nghttp2 failed the connection while reading (|rv|, an NGHTTP2_ERR_*). */
    void (*on_read_error)(struct proxy_conn *c, int rv);
    /** The connect (and TLS handshake) completed. */
    void (*on_connected)(struct proxy_conn *c);
    /** EOF, a socket or TLS error, or a timeout (BEV_EVENT_* in |what|). */
    void (*on_io_error)(struct proxy_conn *c, short what);
    /** The output buffer fell to the low watermark (PROXY_OUTPUT_LOW, or
     *  what proxy_conn_notify_drained() set) from above it. */
    void (*on_drained)(struct proxy_conn *c);
    /** After this loop turn's session_send, for a connection still alive. */
    void (*after_flush)(struct proxy_conn *c);
    /** Frees the owner; the connection is dead and nothing is on the stack. */
    void (*destroy)(struct proxy_conn *c);
    /** For a connection without an nghttp2 session (c->session NULL): the
     *  bytes read are the owner's to parse (the HTTP/1.1 codec, or a client
     *  whose protocol is not known yet). Returns 0, -1 to close the
     *  connection, or 1 when the owner has just created c->session: what is
     *  left of |in| is then fed to it. Optional. */
    int (*on_input)(struct proxy_conn *c, struct evbuffer *in);
    /** The flush pass of a connection without a session, instead of
     *  nghttp2_session_send(): write what is ready. Optional. */
    void (*flush)(struct proxy_conn *c);
};

/** The connections one worker flushes at the end of each loop turn. */
struct proxy_flusher {
    struct proxy_conn *dirty;
    struct event *ev;
    void (*after)(void *arg); /* run after each flush pass (e.g. the access log) */
    void *after_arg;
    uint8_t *rbuf; /* PROXY_IO_CHUNK bytes: every plain HTTP/2 read of this thread */
};

struct proxy_conn {
    const struct proxy_conn_ops *ops;
    struct proxy_flusher *fl;
    struct event_base *base;
    struct bufferevent *bev; /* TLS only */
    /* plain: the socket, its events and buffers */
    evutil_socket_t fd;
    struct event *rev, *wev; /* wev: created and armed when output waits (or connecting) */
    struct evbuffer *out;
    struct evbuffer *in; /* bytes read for ops->on_input, created on first use */
    size_t wm_low;       /* ops->on_drained when the output falls to this */
    bool connecting;
    int connect_err; /* connect() failed at once: reported from the loop */
    nghttp2_session *session;
    const char *side; /* "client" or "backend", for logs */
    const char *peer; /* the address, for logs (borrowed from the owner) */
    struct proxy_conn *next_dirty;
    bool dirty;
    bool dead; /* to be freed by the flush pass; no more I/O */
    bool hold; /* not connected yet: frames stay in nghttp2 so that a failed
                  connect leaves every stream unsent */
    bool tls;
    bool lingering;        /* closing: our FIN is out, input is read and dropped */
    uint64_t linger_until; /* loop ms when a lingering connection closes anyway */
    /* keepalive: PING when nothing was read for ka_interval_ms */
    uint64_t last_rx_ms;
    struct event *ka_timer; /* NULL when the owner steps keepalive from its own timer */
    uint32_t ka_interval_ms, ka_timeout_ms;
    uint64_t ping_sent_ms;
    bool ping_out;
};

/** Sets up |fl| on |base|: one event that runs the flush pass. */
void proxy_flusher_init(struct proxy_flusher *fl, struct event_base *base);
void proxy_flusher_deinit(struct proxy_flusher *fl);

/** Initialises |c| around a new bufferevent on |fd| (-1: not connected yet,
 *  see proxy_conn_connect()): plain when |ssl| is NULL, else TLS (taken),
 *  accepting or connecting. Sets read/write sizes and watermarks, enables
 *  reading. The session is created by the owner afterwards (c->session).
 *  Returns 0, or -1 (nothing to free but |fd|, which the caller closes). */
int proxy_conn_init(struct proxy_conn *c, const struct proxy_conn_ops *ops,
                    struct proxy_flusher *fl, struct event_base *base, evutil_socket_t fd, SSL *ssl,
                    bool accepting, const char *side, const char *peer);

/** Starts connecting |c| (initialised with fd -1) to |sa|, failing after
 *  |timeout_ms| (reported through on_io_error with BEV_EVENT_TIMEOUT).
 *  Returns 0, or -1 when no socket could be created. */
int proxy_conn_connect(struct proxy_conn *c, const struct sockaddr *sa, int salen,
                       uint32_t timeout_ms);

/** Moves |src|'s bufferevent (socket, TLS state, bytes read and not yet
 *  parsed) to |dst|, a zeroed connection of another owner with |ops|: the
 *  protocol of a client became known after accept (HTTP/1.1 sniffed, or
 *  ALPN). |src| keeps no socket; its owner closes it (proxy_conn_close_soon).
 *  Call proxy_conn_read_input(|dst|) for the bytes already read. */
void proxy_conn_take(struct proxy_conn *dst, struct proxy_conn *src,
                     const struct proxy_conn_ops *ops, const char *side, const char *peer);

/** Handles the bytes waiting in |c|'s input buffer as a read would (to the
 *  session, or to ops->on_input). Not from inside that parser's callbacks. */
void proxy_conn_read_input(struct proxy_conn *c);

/** Starts (|on|) or stops reading from |c|'s socket. */
void proxy_conn_read_enable(struct proxy_conn *c, bool on);

/** ops->on_drained (and a flush pass) once the output falls to |low| bytes
 *  (PROXY_OUTPUT_LOW until set; 0: when everything is written). */
void proxy_conn_notify_drained(struct proxy_conn *c, size_t low);

/** Frees the session, the socket (and its bufferevent) and the timers. */
void proxy_conn_deinit(struct proxy_conn *c);

/** Marks |c| to be flushed once this loop turn's callbacks are done. Safe from
 *  any callback of the worker. */
void proxy_conn_schedule(struct proxy_conn *c);

/** Marks |c| dead and schedules it: the flush pass frees it. */
void proxy_conn_close_soon(struct proxy_conn *c);

/** Closes |c| gracefully once its output is flushed: sends FIN, then reads
 *  and drops what the peer still sends until it closes too or |ms| passes
 *  (nginx's lingering close). Closing at once with unread input would send a
 *  TCP RST, which can destroy our last frames (GOAWAY) before the peer reads
 *  them. Closes at once when the output is not empty. */
void proxy_conn_linger(struct proxy_conn *c, uint32_t ms);

/** The nghttp2 send callback of both sides: appends to the output buffer,
 *  NGHTTP2_ERR_WOULDBLOCK above PROXY_OUTPUT_HIGH. |user_data| is the conn. */
ssize_t proxy_conn_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                           void *user_data);

/** Whether |c|'s output buffer is too full to produce more frames. */
bool proxy_conn_output_full(const struct proxy_conn *c);

/** The output evbuffer of |c|. */
struct evbuffer *proxy_conn_output(const struct proxy_conn *c);

/** Starts PINGing |c| when nothing was read for |interval_ms| (0: never); no
 *  ACK within |timeout_ms| closes it. With |own_timer| false the owner calls
 *  proxy_conn_keepalive_step() by the time it returns instead (an owner with
 *  a timer of its own: one event a connection fewer). Returns when the first
 *  step is due (loop ms; UINT64_MAX: never). */
uint64_t proxy_conn_keepalive_start(struct proxy_conn *c, uint32_t interval_ms, uint32_t timeout_ms,
                                    bool own_timer);

/** Keepalive at the loop's time: sends the PING that is due, or closes |c|
 *  when its ACK is late. Returns when to step again (loop ms; UINT64_MAX:
 *  never). Early steps do nothing. */
uint64_t proxy_conn_keepalive_step(struct proxy_conn *c);

/** A PING ACK arrived on |c|. Returns when the next keepalive step is due
 *  (loop ms; UINT64_MAX: none): an owner that steps keepalive arms for it. */
uint64_t proxy_conn_ping_acked(struct proxy_conn *c);

/** Milliseconds of a monotonic clock, from the loop's cached time (no
 *  syscall but one clock_gettime a second of loop time, or after the wall
 *  clock stepped): for durations and deadlines. */
uint64_t proxy_loop_ms(struct event_base *base);

/** Milliseconds since the epoch, the loop's cached wall clock (token
 *  expiry). */
uint64_t proxy_loop_wall_ms(struct event_base *base);

/** Arms timer |ev| to fire at loop time |due| (proxy_loop_ms of its base;
 *  at once when that has passed). */
void proxy_timer_at(struct event *ev, uint64_t due);

/** Writes up to |len| bytes straight to the socket of a plain connection,
 *  without blocking (a last GOAWAY before closing). */
void proxy_conn_write_now(struct proxy_conn *c, const uint8_t *data, size_t len);

#endif
