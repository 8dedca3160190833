/* Call filters: the features that plug into every call (auth, switchyard's
 * own health service, stats; later gRPC-Web, transcoding, tracing). A filter
 * is a table of hooks with per-call and per-worker state; the worker builds
 * the chain once and call.c runs it without naming any filter.
 * Invariant: hooks run on the worker's thread, in chain order, and never free
 * the call; a filter that answers a call itself (proxy_call_fail,
 * proxy_call_respond_*) returns PROXY_FILTER_STOP from on_request_head.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTER_H
#define PROXY_FILTER_H

#include <stddef.h>

#include <stdbool.h>
#include <stdint.h>

struct proxy_attempt;
struct proxy_attempt_result;
struct proxy_call;
struct proxy_call_env;
struct proxy_head;

enum proxy_filter_rc {
    PROXY_FILTER_CONTINUE = 0, /* go on: next filter, then routing */
    PROXY_FILTER_STOP,         /* this filter answers the call: nothing is routed */
};

struct proxy_filter {
    const char *name;
    size_t call_state;   /* bytes of per-call state, zeroed when a call starts */
    size_t worker_state; /* bytes of per-worker state, zeroed before worker_init */

    /** The worker starts (|ws|: its state) / stops. Optional. */
    void (*worker_init)(void *ws, struct proxy_call_env *env);
    void (*worker_deinit)(void *ws);
    /** The worker's snapshot or its draining state changed. Optional. */
    void (*on_snapshot)(void *ws, struct proxy_call_env *env);

    /** Request headers are complete, before switchyard checks that the call is
     *  gRPC (POST, application/grpc, a canonical method path): a filter that
     *  bridges another protocol (gRPC-Web, REST, a CORS preflight) rewrites
     *  the head into a gRPC request (:method, :path, content-type: the call
     *  reads them again afterwards) or answers the call itself (then returns
     *  PROXY_FILTER_STOP). Optional. */
    enum proxy_filter_rc (*on_request_early)(struct proxy_call *call, void *st, void *ws);
    /** Request headers are complete and valid gRPC. May edit the request
     *  head (proxy_call_req_head) or answer the call. Optional. */
    enum proxy_filter_rc (*on_request_head)(struct proxy_call *call, void *st, void *ws);
    /** The client finished its request (END_STREAM), after on_request_head. Optional. */
    void (*on_request_end)(struct proxy_call *call, void *st, void *ws);
    /** Request body bytes from the client, as received. A filter that
     *  transforms the body (gRPC-Web text, JSON) returns true and hands the
     *  gRPC-framed result to proxy_call_req_emit() (now or later; |end|: the
     *  client sent its last byte); false leaves the bytes to the next filter
     *  and then to the call. Flow control counts the received bytes either
     *  way. Optional. */
    bool (*on_request_data)(struct proxy_call *call, void *st, void *ws, const uint8_t *p, size_t n,
                            bool end);
    /** Response headers are about to go to the client (also switchyard's own
     *  answers); |h| may be edited (|end|: a trailers-only response). A filter
     *  that needs to see more before answering (an HTTP status from the
     *  trailers, say) returns PROXY_FILTER_STOP: it keeps what it needs of |h|
     *  and sends a head of its own later with proxy_call_send_head(), once.
     *  Optional. */
    enum proxy_filter_rc (*on_response_head)(struct proxy_call *call, void *st, void *ws,
                                             struct proxy_head *h, bool end);
    /** Response body bytes (gRPC-framed) from the committed attempt or
     *  switchyard's own answer. A filter that transforms them returns true and
     *  hands the result to proxy_call_resp_emit(); false leaves them as they
     *  are. Optional. */
    bool (*on_response_data)(struct proxy_call *call, void *st, void *ws, const uint8_t *p,
                             size_t n);
    /** The trailers that end the response, about to follow the body; a filter
     *  may edit them, or emit them as body bytes (gRPC-Web) and empty |t|.
     *  Not called for a trailers-only response (that is on_response_head).
     *  Optional. */
    void (*on_response_trailers)(struct proxy_call *call, void *st, void *ws, struct proxy_head *t);
    /** An attempt is about to start: |head| is what this attempt sends and may
     *  be edited (trace context, ...). Optional. */
    void (*on_attempt_start)(struct proxy_call *call, void *st, void *ws,
                             const struct proxy_attempt *a, struct proxy_head *head);
    /** An attempt is over (|r|; cancelled attempts report PROXY_ATTEMPT_RESET
     *  with h2err CANCEL and reached as the attempt knew it). Optional. */
    void (*on_attempt_end)(struct proxy_call *call, void *st, void *ws,
                           const struct proxy_attempt *a, const struct proxy_attempt_result *r);
    /** The call is over (the client stream closed); its outcome is final.
     *  Optional. */
    void (*on_done)(struct proxy_call *call, void *st, void *ws);
};

#endif
