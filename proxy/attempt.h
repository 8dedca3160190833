/* Attempts: one backend stream of a call, 0..N per call (transparent retries
 * now; retry policies and hedging build on it). An attempt reports what
 * happened, including whether the backend may have seen the request; it never
 * decides what that means for the call.
 * Invariant: an attempt reports its end (on_end) exactly once unless its owner
 * cancels it first; after on_end or proxy_attempt_cancel() it holds nothing
 * (no pool slot, no stream) and may be reused.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_ATTEMPT_H
#define PROXY_ATTEMPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/be.h"
#include "proxy/head.h"
#include "proxy/pool.h"

struct evbuffer;
struct proxy_attempt;

enum proxy_attempt_state {
    PROXY_ATTEMPT_IDLE = 0,   /* not started, or over */
    PROXY_ATTEMPT_QUEUED,     /* waiting in its pool for stream capacity */
    PROXY_ATTEMPT_OPEN,       /* stream opened, our HEADERS not written yet */
    PROXY_ATTEMPT_SENT,       /* HEADERS written: the backend may see the request */
    PROXY_ATTEMPT_RESPONDING, /* response headers arrived */
    PROXY_ATTEMPT_STATE_COUNT
};

/** How an attempt ended. */
enum proxy_attempt_outcome {
    PROXY_ATTEMPT_COMPLETE = 0, /* the backend ended its response */
    PROXY_ATTEMPT_NOT_SENT,     /* never reached the backend: no connection, HEADERS never left */
    PROXY_ATTEMPT_REFUSED,      /* REFUSED_STREAM / above GOAWAY last-stream-id: not processed */
    PROXY_ATTEMPT_RESET,        /* the backend reset the stream after seeing it */
    PROXY_ATTEMPT_LOST,         /* the connection was lost after the request left */
    PROXY_ATTEMPT_OUTCOME_COUNT
};

struct proxy_attempt_result {
    enum proxy_attempt_outcome outcome;
    bool reached; /* the backend may have seen (and acted on) the request */
    uint32_t h2err;
    const char *why; /* a sentence for messages; valid during on_end only */
    bool cancelled;  /* switchyard cancelled it (not the backend's doing) */
};

/** What an attempt tells its owner (the call). */
struct proxy_attempt_ops {
    /** Response headers; |end|: trailers-only. |h| is valid during the call. */
    void (*on_head)(struct proxy_attempt *a, struct proxy_head *h, bool end);
    /** Response body bytes; credit them with proxy_attempt_credit(). */
    void (*on_data)(struct proxy_attempt *a, const uint8_t *p, size_t n);
    /** Response trailers; |h| is valid during the call. */
    void (*on_trailers)(struct proxy_attempt *a, struct proxy_head *h);
    /** The attempt is over (|r|); it may be reused once this returns. */
    void (*on_end)(struct proxy_attempt *a, const struct proxy_attempt_result *r);
    /** Request body bytes available to this attempt now, and whether they end it. */
    size_t (*req_avail)(struct proxy_attempt *a, bool *eof);
    /** Moves |n| request bytes (n <= req_avail) to |out|. */
    void (*req_write)(struct proxy_attempt *a, struct evbuffer *out, size_t n);
};

struct proxy_attempt {
    const struct proxy_attempt_ops *ops;
    void *owner;
    enum proxy_attempt_state state;
    struct proxy_pool *pool;
    struct proxy_head *req; /* what it sends (e.g. |head|), borrowed while started (be.h) */
    struct proxy_head head; /* the owner's per-attempt request head (its storage) */
    uint32_t ep_id;
    char endpoint[BAL_ADDRSTRLEN]; /* its address, for logs, metrics and spans */
    uint32_t number;               /* 0 for the first attempt of a call */
    int status;                    /* the gRPC status the backend answered, once known; -1 before */
    uint64_t req_sent;             /* request body bytes this attempt wrote */
    bool ejected; /* its outcome ejected its endpoint (outlier detection); set before the
                   * filters hear of its end */
    struct proxy_be_stream st;
    struct proxy_pool_waiter wt;
    struct proxy_attempt *next; /* owner's list, or a free list */
};

/** Initialises |a| (zeroed storage) for |ops| and |owner|. */
void proxy_attempt_init(struct proxy_attempt *a, const struct proxy_attempt_ops *ops, void *owner);

/** Frees what |a|'s storage holds (at worker exit); |a| must be idle. */
void proxy_attempt_deinit(struct proxy_attempt *a);

/** Starts |a| on |pool| sending |req| (borrowed until the end). Returns 0
 *  (running: a report comes later), or -1 with |why| when it could not start
 *  at all (nothing was sent; nothing will be reported). */
int proxy_attempt_start(struct proxy_attempt *a, struct proxy_pool *pool, struct proxy_head *req,
                        uint32_t ep_id, const char **why);

/** Cancels |a|: RST_STREAM |h2err| to the backend when its stream is open,
 *  leaves the queue otherwise. No report follows. */
void proxy_attempt_cancel(struct proxy_attempt *a, uint32_t h2err);

/** More request body (or its end) is available. */
void proxy_attempt_resume(struct proxy_attempt *a);

/** |n| response bytes were buffered (|stream| false) or written on (true). */
void proxy_attempt_credit(struct proxy_attempt *a, size_t n, bool stream);

/** What a backend stream's end means for its attempt: the outcome, and
 *  whether the backend may have seen the request. Pure. */
struct proxy_attempt_result proxy_attempt_result_of(enum proxy_be_end end, uint32_t h2err,
                                                    const char *why);

/** Name of |o| for logs and metrics labels ("complete", "refused", ...). */
const char *proxy_attempt_outcome_name(enum proxy_attempt_outcome o);

#endif
