/* Calls: one client stream. A call owns the request head, the filter chain's
 * per-call state, the deadline, the two body flows and the response it has
 * committed to; it alone decides what a failed attempt means (retry, refuse,
 * fail). Its frontend (the client-side codec) feeds it through the functions
 * below and hears back through proxy_call_side_ops; filters answer or edit it
 * through the same functions.
 * Invariant: state only moves forward (HEAD → FILTERING → ROUTED → STREAMING
 * → FINAL → DONE, skipping as needed); once FINAL nothing more is sent to the
 * client but what is already queued; a call is freed only by
 * proxy_call_side_closed().
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_CALL_H
#define PROXY_CALL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "balancer/bal.h"
#include "balancer/outlier.h"
#include "proxy/attempt.h"
#include "proxy/filter.h"
#include "proxy/head.h"
#include "proxy/pool.h"
#include "proxy/report.h"
#include "proxy/retry.h"

struct evbuffer;
struct event_base;
struct proxy_call;
struct proxy_span_ring;

/* Attempts one call may make in all (transparent retries). */
#define PROXY_MAX_TRIES 24

enum proxy_call_state {
    PROXY_CALL_HEAD = 0,  /* request headers arriving */
    PROXY_CALL_FILTERING, /* head complete: validation and filters; a filter may answer */
    PROXY_CALL_ROUTED,    /* routed to a cluster; attempts run; nothing sent to the client */
    PROXY_CALL_STREAMING, /* response headers sent; the body flows */
    PROXY_CALL_FINAL,     /* the end is decided and queued (trailers, trailers-only, reset) */
    PROXY_CALL_DONE,      /* the client stream closed; being freed */
    PROXY_CALL_STATE_COUNT
};

/** Per-call storage that belongs to the frontend: which connection and
 *  stream the call is, and the links of the connection's list of calls. */
struct proxy_call_side {
    struct proxy_call *call; /* back pointer, set by proxy_call_new() */
    void *conn;
    int32_t sid;
    struct proxy_call_side *next, *prev;
};

/** The client side of a call (the frontend codec: HTTP/2 today). Every hook
 *  gets the call's struct proxy_call_side. */
struct proxy_call_side_ops {
    /** Sends the response head; |end|: nothing follows (trailers-only or an
     *  HTTP error). Otherwise the body and trailers are pulled with
     *  proxy_call_resp_*(). Returns 0 or -1. */
    int (*send_head)(struct proxy_call_side *side, const nghttp2_nv *nv, size_t n, bool end);
    /** More response body, or its end, can be pulled. */
    void (*resume)(struct proxy_call_side *side);
    /** Resets the client stream with |h2err|. */
    void (*reset)(struct proxy_call_side *side, uint32_t h2err);
    /** Request flow control: |n| bytes back to the client's connection window
     *  (!|stream|) or stream window. */
    void (*credit)(struct proxy_call_side *side, size_t n, bool stream);
};

/** One worker's state for one cluster: the policy's, the retry budget, and
 *  counters for /metrics. Follows its cluster by name across snapshots. */
struct proxy_cluster_state {
    struct bal_lb lb;
    struct bal_outlier outlier; /* outlier detection's counts (this worker's) */
    struct proxy_retry_budget budget;
    uint64_t retries[PROXY_RETRY_REASONS];
    uint64_t hedges;
    uint64_t budget_exhausted; /* retries and hedges the budget refused */
};

/** What every call of one worker shares: its loop, snapshot, pools, filter
 *  chain and free lists. Owned by the worker; calls borrow it. */
struct proxy_call_env {
    struct event_base *base;
    const struct bal_snapshot *snap; /* the worker's current snapshot (never NULL once running) */
    struct proxy_cluster_state *cs;  /* per cluster of |snap| */
    size_t ncs;
    size_t nworkers; /* the retry budget's floor is shared by the workers */
    struct proxy_pools *pools;
    const struct proxy_filter *const *filters;
    size_t nfilters;
    void **filter_ws;   /* per filter: its worker state */
    size_t *fstate_off; /* per filter: offset of its state in a call's */
    size_t fstate_size; /* per call, all filters */
    bool draining;
    struct proxy_call *free_calls;
    struct proxy_attempt *free_attempts;
    const struct timeval *idle_tv; /* common timeout for stream_idle_timeout, or NULL */
    int alog_fd;                   /* the access log (-1: off) */
    struct proxy_span_ring
        *spans; /* the trace filter's span queue (the exporter reads it), or NULL */
    /* Outlier detection asks for endpoint |ep_id| (|addr|) of |cluster| to be
     * ejected for |why| (the worker posts it to the main thread); NULL: off. */
    void (*eject)(void *arg, const char *cluster, uint32_t ep_id, const char *addr,
                  enum bal_outlier_verdict why);
    void *eject_arg;
    /* How attempts start: proxy_attempt_start(), or a test's stand-in (the
     * seam that lets the call's state machine run without sockets). */
    int (*start_attempt)(struct proxy_attempt *a, struct proxy_pool *pool, struct proxy_head *req,
                         uint32_t ep_id, const char **why);
};

/* ---- for the frontend ---- */

/** A new call on |env| for stream |sid| of frontend connection |conn|; |ops|
 *  reach the client, |peer| (borrowed while the connection lives) names it.
 *  From a free list. */
struct proxy_call *proxy_call_new(struct proxy_call_env *env, const struct proxy_call_side_ops *ops,
                                  void *conn, int32_t sid, const char *peer);

/** The frontend's storage in |call|. */
struct proxy_call_side *proxy_call_side(struct proxy_call *call);

/** One request header field (rcbufs of the client's session, held). */
void proxy_call_head_field(struct proxy_call *call, nghttp2_rcbuf *name, nghttp2_rcbuf *value);

/** One request header field given as bytes (copied): for frontends whose
 *  parser has no rcbufs (HTTP/1.1), and tests. */
void proxy_call_head_add(struct proxy_call *call, const char *name, size_t nlen, const char *value,
                         size_t vlen);

/** The request head is complete (|end|: END_STREAM came with it): validate,
 *  run the filters, route, start the first attempt. */
void proxy_call_head_done(struct proxy_call *call, bool end);

/** Request body bytes from the client (the one copy of the payload). */
void proxy_call_req_data(struct proxy_call *call, const uint8_t *p, size_t n);

/** The client ended its request (END_STREAM after the head). */
void proxy_call_req_end(struct proxy_call *call);

/** Response body bytes ready for the client, and whether the end (trailers)
 *  comes after them (|*eof|). */
size_t proxy_call_resp_avail(struct proxy_call *call, bool *eof);

/** Moves |n| response bytes (n <= avail) to |out|. */
void proxy_call_resp_write(struct proxy_call *call, struct evbuffer *out, size_t n);

/** The trailers to end the response with (n == 0: END_STREAM on DATA). */
const struct proxy_head *proxy_call_resp_trailers(struct proxy_call *call);

/** The client stream is closed (|h2err|: why, 0 when it ended normally). The
 *  call ends: attempts are cancelled, filters hear on_done, the call goes back
 *  to the free list. The side must not use |call| afterwards. */
void proxy_call_side_closed(struct proxy_call *call, uint32_t h2err);

/** Whether the call still wants request bytes (else the frontend credits and
 *  drops them). */
bool proxy_call_wants_request(const struct proxy_call *call);

/** Frees |env|'s free lists of calls and attempts (worker exit, after every
 *  call ended). */
void proxy_call_env_deinit(struct proxy_call_env *env);

/* ---- for filters (and the frontend) ---- */

/** Request bytes a transforming filter made (gRPC-framed): checked against
 *  max_message_size and sent on to the attempts. */
void proxy_call_req_emit(struct proxy_call *call, const uint8_t *p, size_t n);

/** Response bytes a transforming filter made, for the client. */
void proxy_call_resp_emit(struct proxy_call *call, const uint8_t *p, size_t n);

/** A filter took |n| received request (response) bytes into its own storage
 *  (a whole message it converts, bounded by max_message_size): their stream
 *  window goes back to the client (backend) now, since they will never be
 *  written on as they are. */
void proxy_call_req_credit(struct proxy_call *call, size_t n);
void proxy_call_resp_credit(struct proxy_call *call, size_t n);

/** Sends the response head a filter held back (on_response_head returned
 *  PROXY_FILTER_STOP), or a head of its own; |end|: nothing follows. The other
 *  filters do not see it again. */
void proxy_call_send_head(struct proxy_call *call, struct proxy_head *h, bool end);

/** Ends the response after the body emitted so far, with the current
 *  trailers (possibly none), without the trailer hooks: for a filter that
 *  held a trailers-only head and answers with a body of its own. */
void proxy_call_resp_finish(struct proxy_call *call);

/** Ends the call towards the client with gRPC status |code| and |msg|:
 *  trailers-only when nothing was sent yet, trailers after the body sent so
 *  far when it ends on a message boundary, else RST_STREAM(INTERNAL_ERROR).
 *  Cancels every attempt (RST_STREAM CANCEL at the backend). No-op once FINAL. */
void proxy_call_fail(struct proxy_call *call, int code, const char *msg);

/** Answers a request that is not gRPC with HTTP |status| ("405", "415") and no body. */
void proxy_call_respond_http(struct proxy_call *call, const char *status);

/** Starts a gRPC response of switchyard's own (200, application/grpc); the
 *  body follows with proxy_call_respond_data(), the end with
 *  proxy_call_respond_end(). */
void proxy_call_respond_head(struct proxy_call *call);

/** Appends |n| bytes (whole gRPC messages) to the response body. */
void proxy_call_respond_data(struct proxy_call *call, const void *p, size_t n);

/** Ends switchyard's own response with grpc-status |code| (and |msg| when not NULL). */
void proxy_call_respond_end(struct proxy_call *call, int code, const char *msg);

/** The request head (editable before routing). */
struct proxy_head *proxy_call_req_head(struct proxy_call *call);

/** :path as received (valid while the call lives). */
const uint8_t *proxy_call_path(const struct proxy_call *call, size_t *len);

/** The request body received so far (switchyard's own answers read it). */
struct evbuffer *proxy_call_req_body(struct proxy_call *call);

/** Whether the client ended its request. */
bool proxy_call_req_ended(const struct proxy_call *call);

/** The state; the environment; the client's address. */
enum proxy_call_state proxy_call_state(const struct proxy_call *call);
struct proxy_call_env *proxy_call_env(const struct proxy_call *call);
const char *proxy_call_peer(const struct proxy_call *call);

/** The per-call state of filter |f| in |call|, or NULL when |f| is not in
 *  the chain: for a filter's own functions that others call with a call
 *  (an event on the call's trace, say) without naming the filter's state. */
void *proxy_call_filter_state(struct proxy_call *call, const struct proxy_filter *f);

/** Arms the call's deadline from its grpc-timeout (local answers use it too). */
void proxy_call_arm_deadline(struct proxy_call *call);

/** Exempts the call from stream_idle_timeout (switchyard's own Watch streams). */
void proxy_call_no_idle_timeout(struct proxy_call *call);

/** What the call became, for stats and logs. */
struct proxy_call_info {
    int status;           /* gRPC status the client got; -1 unknown */
    const char *cluster;  /* routed cluster, or NULL */
    const char *endpoint; /* the last attempt's address, or NULL */
    uint32_t attempts;
    uint64_t bytes_in, bytes_out;
    uint64_t msgs_in, msgs_out; /* gRPC messages begun: from the client, from the backend */
    uint64_t start_ns;
    bool local; /* answered by switchyard itself (a filter or an error before routing) */
};
void proxy_call_info(const struct proxy_call *call, struct proxy_call_info *info);

/** Name of |s| for logs. */
const char *proxy_call_state_name(enum proxy_call_state s);

/* ---- the decision (pure, for tests) ---- */

enum proxy_verdict {
    PROXY_VERDICT_DONE = 0, /* the attempt completed: nothing to decide */
    PROXY_VERDICT_RETRY,    /* try again (another endpoint) */
    PROXY_VERDICT_REFUSE,   /* pass the refusal on: RST_STREAM(REFUSED_STREAM) to the client */
    PROXY_VERDICT_FAIL,     /* end the call with UNAVAILABLE */
};

struct proxy_verdict_in {
    struct proxy_attempt_result r;
    bool committed;     /* response headers went to the client */
    bool replayable;    /* the request bytes this attempt sent are still at hand */
    uint32_t tries;     /* attempts no backend saw, this one included */
    uint32_t max_tries; /* for those: 1 + max_retries */
};

/** What an ended attempt means for its call. */
enum proxy_verdict proxy_call_verdict(const struct proxy_verdict_in *in);

#endif
