/* round_robin: smooth weighted round robin (nginx's ngx_http_upstream_get_peer):
 * each pick adds every candidate's weight to its running score, takes the
 * highest and subtracts the total from it. Weights 5:1:1 give a a b a c a a:
 * the heavy endpoint never gets a burst longer than its weight.
 * Invariant: per worker, so no state is shared between threads; each worker
 * starts at a random phase of the cycle so they do not all begin together.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>

#include "balancer/internal.h"

#define MAX_PHASE 1024 /* picks skipped at init for the random phase, at most */

struct rr {
    int64_t *score; /* per endpoint index: nginx's current_weight, in thousandths */
};

/* One round of nginx's algorithm over the rotation, assuming |r| accepts
 * everyone: the common case, with one skip call instead of one per endpoint.
 * Returns the pick, or BAL_NO_INDEX with the scores as they were. */
static uint32_t rr_pick_all(struct bal_lb_state *lb, const struct bal_cluster *c,
                            const struct bal_pick_req *r)
{
    struct rr *rr = bal_policy_state(lb);
    int64_t total = 0;
    uint32_t best = BAL_NO_INDEX;

    for (size_t i = 0; i < c->nrotation; i++) {
        uint32_t idx = c->rotation[i];
        int64_t w = (int64_t)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms);

        rr->score[idx] += w;
        total += w;
        if (best == BAL_NO_INDEX || rr->score[idx] > rr->score[best])
            best = idx;
    }
    if (bal_skip_of(&c->endpoints[best], r) == BAL_SKIP_NO) {
        rr->score[best] -= total;
        return best;
    }
    for (size_t i = 0; i < c->nrotation; i++) {
        uint32_t idx = c->rotation[i];

        rr->score[idx] -= (int64_t)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms);
    }
    return BAL_NO_INDEX;
}

/* A pick that leaves the scores as they are: the candidate the next round
 * would favour most. For another attempt of a call (bal_pick_req.again). */
static int rr_peek(struct bal_lb_state *lb, const struct bal_cluster *c,
                   const struct bal_pick_req *r)
{
    struct rr *rr = bal_policy_state(lb);
    size_t n = bal_candidates(lb, c, r);
    uint32_t best = BAL_NO_INDEX;
    int64_t best_score = 0;

    if (n == 0)
        return BAL_EEXHAUSTED;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = lb->cand[i];
        int64_t v =
            rr->score[idx] + (int64_t)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms);

        if (best == BAL_NO_INDEX || v > best_score) {
            best = idx;
            best_score = v;
        }
    }
    return (int)best;
}

static int rr_pick(struct bal_lb_state *lb, const struct bal_cluster *c,
                   const struct bal_pick_req *r)
{
    struct rr *rr = bal_policy_state(lb);
    size_t n;
    int64_t total = 0;
    uint32_t best;

    if (r->again)
        return rr_peek(lb, c, r);
    best = rr_pick_all(lb, c, r);

    if (best != BAL_NO_INDEX)
        return (int)best;
    n = bal_candidates(lb, c, r);
    if (n == 0)
        return BAL_EEXHAUSTED;
    /* Refused endpoints sit this round out, as nginx skips tried peers. */
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = lb->cand[i];
        int64_t w = (int64_t)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms);

        rr->score[idx] += w;
        total += w;
        if (best == BAL_NO_INDEX || rr->score[idx] > rr->score[best])
            best = idx;
    }
    rr->score[best] -= total;
    return (int)best;
}

static void rr_init(struct bal_lb_state *lb, const struct bal_cluster *c)
{
    struct rr *rr = bal_policy_state(lb);
    static const struct bal_pick_req none = {0};
    uint64_t cycle = 0;
    uint32_t phase;

    rr->score = bal_xcalloc(c->nendpoints, sizeof(*rr->score));
    for (size_t i = 0; i < c->nrotation; i++)
        cycle += bal_weight(&c->endpoints[c->rotation[i]]);
    if (cycle == 0)
        return;
    /* A random point of the cycle: N workers do not all start on the
     * heaviest endpoint (the sequence is nginx's, shifted). */
    phase = bal_rand_below(lb, (uint32_t)(cycle < MAX_PHASE ? cycle : MAX_PHASE));
    for (uint32_t i = 0; i < phase; i++)
        rr_pick(lb, c, &none);
}

static void rr_deinit(struct bal_lb_state *lb)
{
    struct rr *rr = bal_policy_state(lb);

    free(rr->score);
}

static void rr_update(struct bal_lb_state *lb, const struct bal_cluster *c, const uint32_t *old_of)
{
    struct rr *rr = bal_policy_state(lb);

    rr->score = bal_remap(rr->score, lb->c->nendpoints, sizeof(*rr->score), c->nendpoints, old_of);
}

const struct bal_ops bal_round_robin_ops = {
    .name = "round_robin",
    .state_size = sizeof(struct rr),
    .init = rr_init,
    .deinit = rr_deinit,
    .pick = rr_pick,
    .update = rr_update,
};
