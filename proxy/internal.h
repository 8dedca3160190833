/* proxy internals shared by main.c, worker.c, fe.c, be.c and call.c.
 * Invariant: everything here except struct runtime's published snapshot
 * mailboxes is owned and touched by exactly one thread: a worker's objects by
 * that worker, the runtime by the main thread.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_INTERNAL_H
#define PROXY_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <nghttp2/nghttp2.h>

#include "balancer/bal.h"
#include "conf/conf.h"
#include "core/grpc.h"
#include "proxy/proxy.h"
#include "core/tls.h"

/* Flow-control windows we advertise on both sides. Per stream this is also
 * the most a stream can have buffered in each direction (RFC 9113 §5.2). */
#define PROXY_STREAM_WINDOW (256 * 1024)
#define PROXY_CONN_WINDOW   (4 * 1024 * 1024)
/* Above this much pending output a connection stops producing frames. */
#define PROXY_OUTPUT_HIGH (256 * 1024)
#define PROXY_OUTPUT_LOW  (64 * 1024)
/* Largest single read or write on a socket. */
#define PROXY_IO_CHUNK (256 * 1024)
/* Frames nghttp2 may hold for one connection before it counts as a flood
 * (Envoy's max_outbound_frames is 10000). */
#define PROXY_MAX_OUTBOUND_QUEUE 10000
#define PROXY_MAX_TRIES          17

struct proxy_worker;
struct proxy_call;
struct proxy_pool;

TAILQ_HEAD(proxy_call_list, proxy_call);

/* What fe.c and be.c connections have in common: a session, a socket and a
 * place in the worker's list of connections to flush this loop iteration. */
enum proxy_conn_kind {
    PROXY_CONN_FE = 0,
    PROXY_CONN_BE,
};

struct proxy_conn {
    enum proxy_conn_kind kind;
    struct proxy_worker *w;
    struct bufferevent *bev;
    nghttp2_session *session;
    struct proxy_conn *next_dirty; /* in w->dirty while |dirty| */
    bool dirty;
    bool dead; /* to be freed by the flush pass; no more I/O */
    bool hold; /* not connected yet: keep frames in nghttp2 (and request bytes in
                  the calls) so a failed connect leaves every call retryable */
    /* keepalive (worker.c): PING when nothing was read for a while */
    uint64_t last_rx_ms;
    struct event *ka_timer;     /* every keepalive interval */
    struct event *ka_ack_timer; /* keepalive_timeout after our PING */
    uint32_t ka_interval_ms, ka_timeout_ms;
    bool ping_out;
};

struct proxy_fe_conn {
    struct proxy_conn c; /* first: a proxy_conn * is a proxy_fe_conn * for FE */
    TAILQ_ENTRY(proxy_fe_conn) link;
    struct proxy_call_list calls;
    char peer[BAL_ADDRSTRLEN];
    uint32_t nstreams;
    struct event *idle_timer;
    struct event *goaway_timer;
    struct event *hdr_timer; /* header_timeout */
    bool goaway_sent;        /* the final GOAWAY with last-stream-id */
    bool settings_seen;      /* the client's first SETTINGS arrived */
    bool settings_patched;   /* our SETTINGS went out with the advertised stream limit */
    bool read_paused;        /* output backlog: not reading until it drains */
    uint32_t max_streams;    /* the MAX_CONCURRENT_STREAMS the client was told */
    uint32_t nhdr_pending;   /* streams whose request headers are not complete */
    uint32_t refused;        /* streams refused over the limit */
    uint32_t empty_frames;   /* consecutive empty DATA frames without END_STREAM */
    bool tls;                /* accepted on listen_tls (c.bev is a TLS bufferevent) */
};

enum proxy_be_state {
    PROXY_BE_CONNECTING = 0, /* TCP connect in progress; requests already submitted wait */
    PROXY_BE_READY,          /* connected; may take new streams */
    PROXY_BE_GOAWAY,         /* peer sent GOAWAY: no new streams, close when idle */
    PROXY_BE_STATE_COUNT
};

struct proxy_be_conn {
    struct proxy_conn c;
    struct proxy_pool *pool;
    TAILQ_ENTRY(proxy_be_conn) link;
    struct proxy_call_list calls; /* calls holding a reference to this connection */
    enum proxy_be_state state;
    uint32_t nstreams; /* open streams */
};

TAILQ_HEAD(proxy_be_list, proxy_be_conn);

/* Per worker, per endpoint id: the backend connections to one address. */
struct proxy_pool {
    struct proxy_worker *w;
    uint32_t id;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_str[BAL_ADDRSTRLEN];
    uint32_t max_conns;
    uint32_t max_streams;
    uint32_t connect_timeout_ms;
    struct proxy_be_list conns;
    uint32_t nconns;
    struct proxy_call_list waiting; /* calls waiting for stream capacity */
    uint64_t down_until_ms;         /* soft-skipped by picks until then (connect failures) */
    uint32_t fails;                 /* consecutive connect failures */
    bool removed;                   /* gone from the snapshot: drain */
    uint64_t active_calls;          /* calls attached to a connection of this pool */
    uint64_t calls_total;           /* calls ever sent here */
    struct tls_be *tls;       /* owned reference: new connections speak TLS; NULL: h2c */
    char tls_host[256];             /* the target's host, the default name to verify */
};

TAILQ_HEAD(proxy_fe_list, proxy_fe_conn);

struct proxy_rebind {
    bool plain, tls;            /* which listener changes */
    evutil_socket_t fd, fd_tls; /* the new sockets; -1 when that listener is now off */
};

/* ---- per-worker counters (stats.c) ----
 * Written only by their worker, on the call path, without atomics; the main
 * thread never reads them directly but asks for a copy (struct proxy_report). */
#define PROXY_HIST_NB 14
extern const double proxy_hist_bounds[PROXY_HIST_NB]; /* seconds, ascending */

struct proxy_mstat {
    char *name; /* "/pkg.Svc/Method"; "other" for the overflow slot */
    uint64_t by_code[GRPC_CODE_COUNT];
    uint64_t bucket[PROXY_HIST_NB + 1]; /* per bucket (not cumulative); last = +Inf */
    uint64_t count;
    double sum; /* seconds */
};

struct proxy_stats {
    struct proxy_mstat *m; /* [0, nm) named; m[cap] is "other" */
    size_t nm, cap;
    uint32_t *tab; /* open addressing over names: index + 1; 0 = empty */
    size_t tabsize;
};

struct proxy_ep_report {
    uint32_t id;
    uint64_t active_calls, calls_total;
    uint32_t conns;
    char addr[BAL_ADDRSTRLEN]; /* the pool's address: /status shows endpoints a reload
                                  removed under it while their calls drain */
};

/** A worker's counters, copied on the worker and handed to the main thread. */
struct proxy_report {
    struct proxy_mstat *m; /* names are copies */
    size_t nm;
    struct proxy_ep_report *eps;
    size_t neps;
    uint32_t fe_conns;
    uint32_t be_conns;
};

struct proxy_worker {
    struct runtime *rt;
    int index;
    pthread_t thread;
    struct event_base *base;
    struct evconnlistener *listener;     /* listen; NULL when off */
    struct evconnlistener *listener_tls; /* listen_tls, or NULL */
    /* new listening sockets after a reload changed listen/listen_tls: the main
     * thread binds them, the worker swaps them in with the next snapshot */
    _Atomic(struct proxy_rebind *) rebind;
    nghttp2_session_callbacks *fe_cbs;
    nghttp2_session_callbacks *be_cbs;
    nghttp2_option *fe_opt;
    nghttp2_option *be_opt;

    /* snapshot mailbox: the main thread stores, the worker takes */
    _Atomic(struct bal_snapshot *) pending;
    struct event *ev_snapshot;
    struct bal_snapshot *snap;
    struct bal_lb *lb; /* one per cluster of |snap| */
    size_t nlb;

    struct proxy_pool **pools; /* indexed by endpoint id */
    size_t npools;

    struct proxy_fe_list fes;
    uint32_t nfes;
    struct proxy_conn *dirty; /* connections to flush */
    struct event *ev_flush;
    struct proxy_call *free_calls;
    uint64_t conn_refused; /* client connections closed at max_connections */
    nghttp2_nv *nv;        /* scratch header array for submits; grows, never shrinks */
    size_t nvcap;

    struct proxy_stats stats;
    struct evbuffer *alog;   /* access log lines not written yet */
    uint64_t alog_dropped;   /* lines dropped because the log could not keep up */
    struct event *ev_report; /* main thread asks for a proxy_report */
    _Atomic(struct proxy_report *) report;

    atomic_bool drain_requested;
    struct event *ev_drain;
    bool draining;
    bool done_reported;
    struct proxy_call_list watchers; /* selfhealth.c: open Health/Watch calls */
};

/* One proxied call: a frontend stream and, once dispatched, a backend stream.
 * Owned by the frontend connection; freed when the frontend stream closes. */
struct proxy_call {
    struct proxy_call *next_free;
    struct proxy_worker *w;
    struct proxy_fe_conn *fe;
    int32_t fe_sid;
    TAILQ_ENTRY(proxy_call) fe_link;

    struct proxy_be_conn *be;        /* the connection this call references, or NULL */
    struct proxy_pool *waiting;      /* the pool whose wait list holds it, or NULL */
    int32_t be_sid;                  /* backend stream id; valid while |be| */
    bool be_open;                    /* backend stream not yet closed */
    bool be_not_sent;                /* nghttp2 could not send our HEADERS (e.g. after GOAWAY) */
    TAILQ_ENTRY(proxy_call) be_link; /* in be->calls or waiting->waiting */

    /* request: headers as received (rcbufs of the frontend session) */
    nghttp2_rcbuf **hdr; /* name, value, name, value, ... */
    size_t nhdr;         /* rcbufs held, 2 per field */
    size_t hdrcap;
    size_t hdr_bytes;
    const uint8_t *path; /* points into an rcbuf of |hdr| */
    size_t pathlen;
    const uint8_t *method;
    size_t methodlen;
    const uint8_t *ctype;
    size_t ctypelen;
    uint32_t timeout_ms; /* from grpc-timeout, 0 = none */
    bool hdr_done;       /* request headers complete */
    bool hdr_too_big;    /* over max_header_list_size: answered RESOURCE_EXHAUSTED */
    struct grpc_scan req_scan, resp_scan; /* message framing, for max_message_size */
    bool bad_timeout;

    struct evbuffer *req_buf; /* received from the client, not yet sent to the backend */
    uint64_t req_sent;        /* request body bytes written to a backend */
    bool req_eof;             /* the client sent END_STREAM */

    /* response */
    nghttp2_rcbuf **rhdr; /* response header fields of the HEADERS frame being received */
    size_t nrhdr;
    size_t rhdrcap;
    struct evbuffer *resp_buf; /* received from the backend, not yet sent to the client */
    char *trl;                 /* trailers, as "name\0value\0..." */
    size_t trllen;
    size_t trlcap;
    size_t ntrl;
    bool resp_started; /* response HEADERS submitted to the client */
    bool resp_eof;     /* nothing more will be added to resp_buf; trailers in |trl| */
    bool resp_done;    /* END_STREAM submitted to the client */
    bool be_complete;  /* the backend ended its response (END_STREAM) */

    uint32_t cluster; /* index in the worker's snapshot |gen|, valid once routed */
    uint64_t gen;     /* generation of the snapshot |cluster| indexes */
    bool routed;
    uint32_t tried[PROXY_MAX_TRIES];
    uint32_t ntried;
    uint32_t ep_id;         /* endpoint of the last attempt (valid when ntried > 0) */
    int status;             /* gRPC status the client got; -1 not known yet */
    uint64_t start_ns;      /* CLOCK_MONOTONIC at the request headers */
    uint64_t bytes_in;      /* request payload bytes from the client */
    uint64_t bytes_out;     /* response payload bytes to the client */
    char why[160];          /* the last reason an attempt failed, for the final message */
    struct event *deadline; /* created once per call object */

    /* switchyard's own health service (selfhealth.c) */
    bool self_health;                   /* answered by selfhealth.c, never routed */
    bool self_watch;                    /* a Watch, on w->watchers */
    int self_sent;                      /* the ServingStatus the Watch sent last */
    TAILQ_ENTRY(proxy_call) watch_link; /* in w->watchers while |self_watch| */

    /* [auth] (auth.c): the request fields to forward instead of |hdr| when
     * authentication changed them (authorization stripped, x-jwt-* claims
     * added); one malloc'd block pointing into |hdr|'s rcbufs and itself.
     * NULL for every call [auth] leaves as it is. */
    nghttp2_nv *fwd_nv;
    size_t nfwd_nv;
};

/* ---- worker.c ---- */
/** Marks |c| to be flushed (nghttp2_session_send) once this loop iteration's
 *  callbacks are done. Safe from any callback of this worker. */
void proxy_conn_schedule(struct proxy_conn *c);
uint64_t proxy_now_ms(struct proxy_worker *w);
/** The worker's scratch array of at least |n| header fields, filled from the
 *  rcbuf pairs |rc| (name, value, ...). Valid until the next call. */
nghttp2_nv *proxy_worker_nv(struct proxy_worker *w, nghttp2_rcbuf **rc, size_t n);
/** Returns the pool of endpoint |ep| of cluster |cl|, creating it. */
struct proxy_pool *proxy_pool_get(struct proxy_worker *w, const struct bal_cluster *cl,
                                  const struct bal_endpoint *ep);
/** Feeds everything in |in| to |c|'s session and drains it. Returns 0 or the
 *  fatal nghttp2 error (then |in| is emptied). */
int proxy_conn_feed(struct proxy_conn *c, struct evbuffer *in);
/** Starts PINGing |c| when nothing was read for |interval_ms| (0: never);
 *  no ACK within |timeout_ms| closes it. */
void proxy_conn_keepalive_start(struct proxy_conn *c, uint32_t interval_ms, uint32_t timeout_ms);
void proxy_conn_keepalive_stop(struct proxy_conn *c);
/** A PING ACK arrived on |c|. */
void proxy_conn_ping_acked(struct proxy_conn *c);
/** The worker's pool for endpoint |id|, or NULL. */
struct proxy_pool *proxy_pool_find(struct proxy_worker *w, uint32_t id);
/** Called when a frontend connection is gone; may finish a drain. */
void proxy_worker_fe_gone(struct proxy_worker *w);

/* ---- listen.c ---- */
/** Binds |w|'s listeners for |pc| (SO_REUSEPORT). Returns 0 or -1 (logged). */
int proxy_listen_start(struct proxy_worker *w, const struct conf_proxy *pc);
/** Closes |w|'s listeners (drain, exit); open connections stay. */
void proxy_listen_stop(struct proxy_worker *w);
/** Swaps in the sockets a reload bound for |w| (proxy_workers_rebind()). */
void proxy_listen_apply_rebind(struct proxy_worker *w);

/* ---- fe.c ---- */
nghttp2_session_callbacks *proxy_fe_callbacks_new(void);
/** Takes the accepted |fd|; |tls|: it came from listen_tls, so it speaks TLS
 *  with the worker's current snapshot's context. */
void proxy_fe_accept(struct proxy_worker *w, evutil_socket_t fd, const struct sockaddr *sa,
                     int socklen, bool tls);
void proxy_fe_conn_free(struct proxy_fe_conn *fc);
/** Starts the graceful shutdown of |fc|: GOAWAY(2^31-1) now, the final GOAWAY later. */
void proxy_fe_conn_drain(struct proxy_fe_conn *fc);
/** Called after each flush; closes a frontend connection that is finished. */
void proxy_fe_conn_after_flush(struct proxy_fe_conn *fc);

/* ---- be.c ---- */
nghttp2_session_callbacks *proxy_be_callbacks_new(void);
/** Sends |call| on a connection of |pool| with stream capacity, opening one if
 *  allowed, else queues it on the pool. Returns 0, or -1 when the request
 *  could not be submitted (the call is untouched). */
int proxy_pool_submit(struct proxy_pool *pool, struct proxy_call *call);
/** Closes idle connections of a pool that left the snapshot; frees it when empty.
 *  Returns true when the pool was freed. */
bool proxy_pool_reap(struct proxy_pool *pool);
void proxy_pool_free(struct proxy_pool *pool);
void proxy_be_conn_free(struct proxy_be_conn *bc);
void proxy_be_conn_after_flush(struct proxy_be_conn *bc);

/* ---- selfhealth.c: switchyard's own grpc.health.v1.Health ---- */
/** Whether |call| (request headers complete) is for switchyard's own health
 *  service, which is answered before routing. */
bool proxy_selfhealth_match(const struct proxy_call *call);
/** Answers |call| (Check) or keeps it open to stream updates (Watch). */
void proxy_selfhealth_start(struct proxy_call *call);
/** The request of a call taken by proxy_selfhealth_start() is complete
 *  (END_STREAM arrived after its headers): answer it now. */
void proxy_selfhealth_request_end(struct proxy_call *call);
/** The worker's snapshot or draining state changed: Watch streams get the new status. */
void proxy_selfhealth_update(struct proxy_worker *w);
/** |call| is being freed: forget it. */
void proxy_selfhealth_call_gone(struct proxy_call *call);

/* ---- stats.c ---- */
void proxy_stats_init(struct proxy_stats *st, size_t cap);
void proxy_stats_deinit(struct proxy_stats *st);
/** Counts the finished |call| (metrics, access log line). Call before its
 *  headers are released. */
void proxy_stats_call_done(struct proxy_call *call);
/** Writes buffered access-log lines; once per loop iteration. */
void proxy_alog_flush(struct proxy_worker *w);
/** Builds a copy of |w|'s counters (the worker's thread). */
struct proxy_report *proxy_report_new(struct proxy_worker *w);
void proxy_report_free(struct proxy_report *r);
uint64_t proxy_mono_ns(void);
/** Parses a grpc-status value; -1 when malformed. */
int proxy_parse_status(const uint8_t *v, size_t len);

/* ---- call.c ---- */
struct proxy_call *proxy_call_new(struct proxy_worker *w, struct proxy_fe_conn *fe, int32_t sid);
/** Releases |call|: detaches it from the backend (cancelling an open backend
 *  stream), returns unsent flow-control credit, frees it to the free list. */
void proxy_call_free(struct proxy_call *call);
void proxy_call_destroy(struct proxy_call *call); /* really free(), at worker exit */
/** Request headers complete: validate, route, pick, submit. */
void proxy_call_start(struct proxy_call *call);
/** Picks an endpoint (skipping those tried) and submits; on no endpoint,
 *  answers UNAVAILABLE. */
void proxy_call_dispatch(struct proxy_call *call);
/** Ends the call towards the client with |code| and |msg| (trailers-only when
 *  nothing was sent yet, else trailers after what was received), and cancels
 *  the backend stream. */
void proxy_call_fail(struct proxy_call *call, int code, const char *msg);
/** Detaches |call| from its backend connection (RST_STREAM |err| if open).
 *  Returns unconsumed response credit to the backend session. */
void proxy_call_detach_be(struct proxy_call *call, uint32_t err);
/** The backend connection of |call| failed before the request could reach it,
 *  or refused the stream: retry on another endpoint if allowed, else fail. */
void proxy_call_retry_or_fail(struct proxy_call *call, const char *why);
/** Resets the frontend stream with REFUSED_STREAM (nothing was answered yet),
 *  which gRPC clients retry. */
void proxy_call_refuse(struct proxy_call *call);
/** A DATA chunk of |call| (NULL: detached) arrived on |session|: the request
 *  from the client when |request|, else the response from the backend.
 *  Buffers it and lets the other side send, or, for a finished call or a
 *  message over max_message_size (answered RESOURCE_EXHAUSTED), gives the
 *  flow-control credit back at once. Called from on_data_chunk_recv. */
void proxy_call_data_in(struct proxy_call *call, nghttp2_session *session, int32_t sid,
                        const uint8_t *data, size_t len, bool request);
/** More response bytes or the response end arrived: let the frontend send. */
void proxy_call_resume_fe(struct proxy_call *call);
/** More request bytes or the request end arrived: let the backend send. */
void proxy_call_resume_be(struct proxy_call *call);
/** Submits the response HEADERS held in call->rhdr to the client. */
int proxy_call_submit_response(struct proxy_call *call, bool end_stream);
void proxy_call_release_rhdr(struct proxy_call *call);
/** Appends one header field (a name and a value rcbuf, both increfed) to the
 *  growable array |*arr| of |*n| entries and capacity |*cap|. */
void proxy_rcbuf_push(nghttp2_rcbuf ***arr, size_t *n, size_t *cap, nghttp2_rcbuf *name,
                      nghttp2_rcbuf *value);
/** Appends one trailer field. */
void proxy_call_add_trailer(struct proxy_call *call, const uint8_t *name, size_t nlen,
                            const uint8_t *value, size_t vlen);
/** nghttp2 data callbacks shared by both sides. */
ssize_t proxy_call_read_cb(nghttp2_session *session, int32_t sid, uint8_t *buf, size_t length,
                           uint32_t *flags, nghttp2_data_source *source, void *user_data);
int proxy_call_send_data_cb(nghttp2_session *session, nghttp2_frame *frame, const uint8_t *framehd,
                            size_t length, nghttp2_data_source *source, void *user_data);
ssize_t proxy_conn_send_cb(nghttp2_session *session, const uint8_t *data, size_t length, int flags,
                           void *user_data);

#endif
