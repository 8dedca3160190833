/* Backend codec: one HTTP/2 client connection (nghttp2 client role) to one
 * endpoint, and the streams on it. It knows nothing of calls: each stream
 * reports to whoever opened it through proxy_be_stream_ops, and the
 * connection reports to its pool through proxy_be_owner_ops.
 * Invariant: a stream reports its end (on_close) exactly once, and nothing
 * after; a stream reset by its opener (proxy_be_reset) reports nothing.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_BE_H
#define PROXY_BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <nghttp2/nghttp2.h>

#include "proxy/conn.h"
#include "proxy/head.h"

struct evbuffer;
struct proxy_be_conn;
struct tls_be;

/** How an opened stream ended, from the backend's point of view. */
enum proxy_be_end {
    PROXY_BE_END_COMPLETE = 0, /* the response ended (END_STREAM) */
    PROXY_BE_END_NOT_SENT,     /* our HEADERS never left: connect failure, session refused */
    PROXY_BE_END_REFUSED, /* REFUSED_STREAM or above a GOAWAY's last-stream-id: not processed */
    PROXY_BE_END_RESET,   /* the backend reset the stream after it saw it */
    PROXY_BE_END_LOST,    /* the connection was lost with the stream open */
    PROXY_BE_END_COUNT
};

/** What a stream tells its opener. |ctx| is the pointer given to proxy_be_open(). */
struct proxy_be_stream_ops {
    /** Our HEADERS were written: the backend may see the request from now on. */
    void (*on_sent)(void *ctx);
    /** Response headers (1xx skipped): |h| is valid during the call only.
     *  |end|: trailers-only (END_STREAM on these headers). */
    void (*on_head)(void *ctx, struct proxy_head *h, bool end);
    /** A chunk of response body; |n| bytes count against the stream window
     *  until credited with proxy_be_credit(). */
    void (*on_data)(void *ctx, const uint8_t *p, size_t n);
    /** Trailers: |h| is valid during the call only. The stream ends next. */
    void (*on_trailers)(void *ctx, struct proxy_head *h);
    /** The stream ended; |h2err| is the RST_STREAM/GOAWAY code (0 for a complete
     *  response), |why| a sentence for messages. */
    void (*on_close)(void *ctx, enum proxy_be_end end, uint32_t h2err, const char *why);
    /** Request body: how many bytes can be sent now, and whether they are the
     *  last (|*eof|). */
    size_t (*req_avail)(void *ctx, bool *eof);
    /** Moves |n| request bytes (n <= req_avail) to |out|. */
    void (*req_write)(void *ctx, struct evbuffer *out, size_t n);
};

/** What a connection tells its owner (the pool). */
struct proxy_be_owner_ops {
    /** The connection is ready (connected) or has stream capacity again. */
    void (*on_capacity)(void *owner, struct proxy_be_conn *bc);
    /** The connect or TLS handshake failed (|why|); streams got on_close first. */
    void (*on_connect_failed)(void *owner, struct proxy_be_conn *bc, const char *why);
    /** The connection is being freed; the owner forgets it. */
    void (*on_gone)(void *owner, struct proxy_be_conn *bc);
};

/** Settings of a new backend connection (copied). */
struct proxy_be_settings {
    struct sockaddr_storage addr;
    socklen_t addrlen;
    const char *addr_str; /* for logs; borrowed, must outlive the connection */
    struct tls_be *tls;   /* NULL: h2c; else borrowed for the SSL_new */
    const char *tls_host; /* the name to verify (TLS) */
    uint32_t connect_timeout_ms;
    uint32_t max_streams;   /* our own cap; the peer's SETTINGS may lower it */
    uint32_t stream_window; /* SETTINGS_INITIAL_WINDOW_SIZE we advertise */
    uint32_t keepalive_ms, keepalive_timeout_ms;
};

/** One stream's state inside the codec. The opener provides the storage
 *  (e.g. embedded in its attempt, from a free list) and keeps it valid until
 *  on_close or proxy_be_reset(); zero it before the first use. */
struct proxy_be_stream {
    const struct proxy_be_stream_ops *ops;
    void *ctx;
    struct proxy_be_conn *bc;
    int32_t sid;
    struct proxy_head rhead;             /* response headers or trailers being received */
    bool sent;                           /* HEADERS written */
    bool not_sent;                       /* nghttp2 gave up on our HEADERS */
    bool got_head;                       /* final response headers arrived */
    bool complete;                       /* END_STREAM arrived */
    struct proxy_be_stream *next, *prev; /* in the connection's list */
};

/** Per-worker, shared by every backend connection of the worker. */
struct proxy_be_env {
    struct event_base *base;
    struct proxy_flusher *fl;
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
};

/** Builds |env|'s nghttp2 callbacks and options. */
void proxy_be_env_init(struct proxy_be_env *env, struct event_base *base, struct proxy_flusher *fl);
void proxy_be_env_deinit(struct proxy_be_env *env);

/** Opens a connection with |s| for |owner| (borrowed, must outlive it).
 *  Connecting starts at once; streams may be opened before it completes.
 *  Returns NULL when no socket could be created (logged). */
struct proxy_be_conn *proxy_be_conn_new(struct proxy_be_env *env, const struct proxy_be_settings *s,
                                        const struct proxy_be_owner_ops *ops, void *owner);

/** Whether |bc| can take one more stream now. */
bool proxy_be_has_capacity(const struct proxy_be_conn *bc);

/** Number of open streams on |bc|. */
uint32_t proxy_be_nstreams(const struct proxy_be_conn *bc);

/** Whether |bc| is still connecting. */
bool proxy_be_connecting(const struct proxy_be_conn *bc);

/** Opens stream |st| (storage of the caller) on |bc|, sending |h| as the
 *  request head; the body is pulled through |ops|, and |ops| hears what
 *  happens with |ctx|. Returns 0, or -1 (nothing was opened, nothing will be
 *  reported). |h|'s strings are not copied (its fields are marked NO_COPY):
 *  they must stay valid and unchanged until the stream closes (on_close) or
 *  is reset (proxy_be_reset) — the HEADERS frame is packed in the next flush,
 *  or later while the connection connects or the stream waits. */
int proxy_be_open(struct proxy_be_conn *bc, struct proxy_be_stream *st, struct proxy_head *h,
                  const struct proxy_be_stream_ops *ops, void *ctx);

/** More request body (or its end) is available on |st|. */
void proxy_be_resume(struct proxy_be_stream *st);

/** Gives |n| bytes of window back to the backend for |st|: its stream window
 *  when |stream|, else the connection window. */
void proxy_be_credit(struct proxy_be_stream *st, size_t n, bool stream);

/** Resets |st| with |h2err| (CANCEL, NO_ERROR, ...) and forgets it: it
 *  reports nothing more and its storage is free when this returns. */
void proxy_be_reset(struct proxy_be_stream *st, uint32_t h2err);

/** Closes |bc| now: its open streams end (reported lost, or not sent), with
 *  |why| in their messages. */
void proxy_be_shutdown(struct proxy_be_conn *bc, const char *why);

/** Asks |bc| to close once it has no stream (e.g. its pool is unused). */
void proxy_be_close_idle(struct proxy_be_conn *bc);

/** Frees |bc| now (worker exit): open streams get on_close(LOST). */
void proxy_be_conn_free(struct proxy_be_conn *bc);

/** Name of |end| for logs ("complete", "refused", ...). */
const char *proxy_be_end_name(enum proxy_be_end end);

#endif
