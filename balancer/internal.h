/* balancer internals shared by the policy files: the policy vtable, the
 * per-worker state every policy gets (random numbers, candidate scratch, the
 * id -> index map) and the ring of ring_hash.
 * Invariant: a struct bal_lb_state belongs to one worker; picks touch only it
 * and the read-only snapshot, and allocate nothing.
 * SPDX-License-Identifier: MIT */
#ifndef BALANCER_INTERNAL_H
#define BALANCER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "balancer/bal.h"

#define BAL_NO_INDEX UINT32_MAX

/** One load-balancing policy (h2o's and HAProxy's pattern: a table of ops).
 *  Each policy owns its state: |state_size| bytes after the common part of
 *  the struct bal_lb_state, zeroed before init(). Only pick() is required. */
struct bal_ops {
    const char *name;
    size_t state_size;
    /** Sets up the policy state of |lb| for |c| (lb->c is |c| already). */
    void (*init)(struct bal_lb_state *lb, const struct bal_cluster *c);
    /** Frees what init()/update() allocated. */
    void (*deinit)(struct bal_lb_state *lb);
    /** Same contract as bal_pick(); |c| has at least one endpoint in rotation. */
    int (*pick)(struct bal_lb_state *lb, const struct bal_cluster *c, const struct bal_pick_req *r);
    /** An attempt starts / ends on endpoint |idx| of lb->c. */
    void (*attempt_start)(struct bal_lb_state *lb, uint32_t idx);
    void (*attempt_end)(struct bal_lb_state *lb, uint32_t idx);
    /** |c| (same policy) replaces lb->c, which is still the old cluster;
     *  |old_of|[j] is the old index of new endpoint j (same id), or
     *  BAL_NO_INDEX. Keep the state of endpoints that stay. */
    void (*update)(struct bal_lb_state *lb, const struct bal_cluster *c, const uint32_t *old_of);
};

extern const struct bal_ops bal_round_robin_ops;
extern const struct bal_ops bal_pick_first_ops;
extern const struct bal_ops bal_least_request_ops;
extern const struct bal_ops bal_ring_hash_ops;
extern const struct bal_ops bal_random_ops;

struct bal_lb_state {
    const struct bal_ops *ops;
    int policy;                  /* enum conf_policy of |ops| */
    const struct bal_cluster *c; /* borrowed: the cluster last given */
    uint64_t rng;                /* splitmix64 state */
    uint32_t *idx_of_id;         /* endpoint id -> index in c->endpoints + 1; 0: not there */
    uint32_t nids;
    uint32_t *cand; /* scratch, c->nendpoints entries: candidate indices of one pick */
    uint32_t *seen; /* scratch, c->nendpoints entries: pick number that looked at it */
    uint32_t npick; /* picks so far (for |seen|) */
    /* the rotation's configured weights, for picks that do not scan it */
    uint64_t *cum;              /* c->nrotation prefix sums: cum[i] = weights of rotation[0..i] */
    bool equal_weights;         /* every endpoint in rotation has the same weight */
    uint64_t ramp_end_ms;       /* slow_start: no endpoint ramps from then on (0: none ramps) */
    max_align_t policy_state[]; /* |ops->state_size| bytes */
};

static inline void *bal_policy_state(struct bal_lb_state *lb)
{
    return lb->policy_state;
}

/** The next pseudo-random number of |lb| (splitmix64: fast, good enough for
 *  choosing endpoints, and reproducible from the seed in tests). */
static inline uint64_t bal_rand(struct bal_lb_state *lb)
{
    uint64_t z = (lb->rng += 0x9e3779b97f4a7c15ull);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/** A number in 0..n-1 (n > 0); Lemire's multiply-shift, bias below 2^-32. */
static inline uint32_t bal_rand_below(struct bal_lb_state *lb, uint32_t n)
{
    return (uint32_t)(((bal_rand(lb) >> 32) * (uint64_t)n) >> 32);
}

static inline enum bal_skip bal_skip_of(const struct bal_endpoint *ep, const struct bal_pick_req *r)
{
    return r->skip != NULL ? r->skip(ep, r->arg) : BAL_SKIP_NO;
}

static inline uint32_t bal_weight(const struct bal_endpoint *ep)
{
    return ep->weight != 0 ? ep->weight : 1;
}

/** |ep|'s weight in thousandths, ramped by slow_start: from 10 % when it
 *  entered the rotation, linearly to 100 % after the cluster's slow_start. */
static inline uint64_t bal_slow_start_weight(const struct bal_cluster *c,
                                             const struct bal_endpoint *ep, uint64_t now_ms)
{
    uint64_t w = (uint64_t)bal_weight(ep) * 1000;
    uint32_t window = c->conf != NULL ? c->conf->slow_start_ms : 0;
    uint64_t elapsed;

    if (window == 0 || ep->since_ms == 0 || now_ms >= ep->since_ms + window)
        return w;
    elapsed = now_ms > ep->since_ms ? now_ms - ep->since_ms : 0;
    /* Linear from 10 % to 100 % (Envoy's min_weight_percent default is 10). */
    return w * (100 + 900 * elapsed / window) / 1000;
}

/** Whether every endpoint in rotation weighs the same at |now_ms|: equal
 *  configured weights and no slow_start ramp running. */
static inline bool bal_equal_weights(const struct bal_lb_state *lb, uint64_t now_ms)
{
    return lb->equal_weights && now_ms >= lb->ramp_end_ms;
}

/** Fills lb->cand with the indices of the endpoints in rotation that |r|
 *  accepts, in rotation order; when it accepts none, with those it refuses
 *  softly. Returns how many (0: every one refused hard). Calls |r->skip| once
 *  per endpoint in rotation. */
size_t bal_candidates(struct bal_lb_state *lb, const struct bal_cluster *c,
                      const struct bal_pick_req *r);

/** A random candidate among |lb->cand[0..n)| (n > 0), weighted by the
 *  endpoints' weights. Returns its endpoint index. */
int bal_pick_weighted(struct bal_lb_state *lb, const struct bal_cluster *c, size_t n);

/** A random endpoint in rotation that |r| accepts (soft-refused ones only
 *  when it accepts none), weighted by configured weight; BAL_EEXHAUSTED.
 *  One draw and one |r->skip| call unless the draw is refused. */
int bal_pick_random(struct bal_lb_state *lb, const struct bal_cluster *c,
                    const struct bal_pick_req *r);

/** Copies the per-endpoint values of |old| (|old_n| entries) to a new array
 *  of |n| entries laid out as |old_of| says (missing: 0); frees |old|. */
void *bal_remap(void *old, size_t old_n, size_t size, size_t n, const uint32_t *old_of);

/** ring_hash: builds the ring of |c| (policy ring_hash) on the main thread. */
const struct bal_ring *bal_ring_build(const struct bal_cluster *c);
void bal_ring_free(const struct bal_ring *ring);

/** The 64-bit hash of ring_hash keys and points (MurmurHash64A, bytes read as
 *  little-endian, so every machine builds the same ring). */
uint64_t bal_hash64(const void *data, size_t len, uint64_t seed);

/** Allocation that aborts on failure (we are an application). */
void *bal_xcalloc(size_t n, size_t size);

#endif
