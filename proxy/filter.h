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

    /** Request headers are complete and valid gRPC. May edit the request
     *  head (proxy_call_req_head) or answer the call. Optional. */
    enum proxy_filter_rc (*on_request_head)(struct proxy_call *call, void *st, void *ws);
    /** The client finished its request (END_STREAM), after on_request_head. Optional. */
    void (*on_request_end)(struct proxy_call *call, void *st, void *ws);
    /** Response headers are about to go to the client (also switchyard's own
     *  answers); |h| may be edited. Optional. */
    void (*on_response_head)(struct proxy_call *call, void *st, void *ws, struct proxy_head *h);
    /** The call is over (the client stream closed); its outcome is final.
     *  Optional. */
    void (*on_done)(struct proxy_call *call, void *st, void *ws);
};

#endif
