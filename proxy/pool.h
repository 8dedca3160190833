/* Backend pools: per worker, the connections to one endpoint on behalf of one
 * cluster. Keyed by (cluster name, endpoint id, address), so a cluster's TLS
 * and stream settings never leak to another cluster listing the same address,
 * and a recycled endpoint id never reaches an old address.
 * Invariant: a pool never opens more than max_connections connections; calls
 * beyond the streams they allow wait in the pool's own bounded queue, never in
 * nghttp2's. A pool no longer in the snapshot closes its idle connections and
 * is freed once it has neither connections nor waiters.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_POOL_H
#define PROXY_POOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/bal.h"
#include "proxy/be.h"

struct conf;
struct proxy_pool;

/* Calls one pool keeps waiting for stream capacity; more are refused. */
#define PROXY_POOL_MAX_WAITING 4096

/** Something waiting for a connection with stream capacity (an attempt). */
struct proxy_pool_waiter {
    /** A connection with capacity for one stream: open it now. */
    void (*ready)(struct proxy_pool_waiter *wt, struct proxy_be_conn *bc);
    /** The pool cannot serve it (every connect failed, or the pool went). */
    void (*failed)(struct proxy_pool_waiter *wt, const char *why);
    struct proxy_pool *pool; /* set while queued */
    struct proxy_pool_waiter *next, *prev;
};

/** A worker's pools. */
struct proxy_pools {
    struct proxy_be_env *env;  /* borrowed */
    struct proxy_pool **by_id; /* heads of per-endpoint-id lists */
    size_t nids;
    size_t npools; /* pools alive */
};

/** What a worker reports of one pool. */
struct proxy_pool_info {
    uint32_t ep_id;
    const char *cluster; /* borrowed until the next pool change */
    const char *addr;
    uint64_t active; /* attempts on its connections or queued */
    uint64_t total;  /* attempts ever started */
    uint32_t conns;
    uint32_t waiting;          /* attempts queued for stream capacity */
    uint64_t connect_failures; /* connection attempts that failed, ever */
    bool removed;              /* no longer in the snapshot: draining */
};

void proxy_pools_init(struct proxy_pools *t, struct proxy_be_env *env);

/** Frees every pool and connection (worker exit; every call is gone). */
void proxy_pools_deinit(struct proxy_pools *t);

/** The pool of endpoint |ep| of cluster |cl| (in snapshot |s|), created on
 *  first use; its settings follow |s|'s configuration. */
struct proxy_pool *proxy_pool_get(struct proxy_pools *t, const struct bal_snapshot *s,
                                  const struct bal_cluster *cl, const struct bal_endpoint *ep);

/** The pool of endpoint |ep| of cluster |cl| if there is one (no creation). */
struct proxy_pool *proxy_pool_find(const struct proxy_pools *t, const struct bal_cluster *cl,
                                   const struct bal_endpoint *ep);

/** Finds a connection of |p| with capacity for one stream (opening one when
 *  allowed). Returns 0 with |*bc| set (open the stream now), 1 when |wt| was
 *  queued (wt->ready or wt->failed comes later), or -1 when the pool cannot
 *  take it (queue full, no socket): |why| says why. */
int proxy_pool_acquire(struct proxy_pool *p, struct proxy_pool_waiter *wt,
                       struct proxy_be_conn **bc, const char **why);

/** Takes |wt| out of its pool's queue (no-op when not queued). */
void proxy_pool_cancel(struct proxy_pool_waiter *wt);

/** Whether |p| had connect failures recently (picks avoid it softly). */
bool proxy_pool_is_down(const struct proxy_pool *p, uint64_t now_ms);

/** Counts an attempt starting or ending on |p| (active calls, totals). */
void proxy_pool_attempt_start(struct proxy_pool *p);
void proxy_pool_attempt_end(struct proxy_pool *p);

/** A new snapshot |s|: pools whose (cluster, endpoint) left it drain and are
 *  freed once unused; pools that came back are reused. */
void proxy_pools_sweep(struct proxy_pools *t, const struct bal_snapshot *s);

/** Calls |fn| for every pool. */
void proxy_pools_each(const struct proxy_pools *t,
                      void (*fn)(const struct proxy_pool_info *pi, void *arg), void *arg);

#endif
