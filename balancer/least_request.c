/* least_request: power of N choices (Mitzenmacher; Envoy's LEAST_REQUEST,
 * HAProxy's random(2), grpc-go's A48). With equal weights, draw
 * least_request_choices distinct endpoints in rotation at random and take the
 * one with the fewest active attempts. With unequal weights (configured, or
 * ramping under slow_start), do as Envoy: every endpoint's weight becomes
 * weight / (active + 1), and the pick is a weighted random draw over those.
 * Invariant: active counts are this worker's only (bal_attempt_start/end);
 * with W workers each sees about 1/W of the load, which ranks endpoints the
 * same way.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "balancer/internal.h"

struct lr {
    uint32_t *active; /* per endpoint index: attempts started and not ended */
};

static int lr_pick(struct bal_lb_state *lb, const struct bal_cluster *c,
                   const struct bal_pick_req *r)
{
    struct lr *lr = bal_policy_state(lb);
    size_t n = c->nrotation;
    uint32_t k =
        c->conf != NULL && c->conf->least_request_choices >= 2 ? c->conf->least_request_choices : 2;
    uint32_t best = BAL_NO_INDEX, soft = BAL_NO_INDEX, accepted = 0;
    double total = 0, x;

    if (bal_equal_weights(lb, r->now_ms)) {
        /* Distinct draws from the rotation (a partial Fisher-Yates shuffle of
         * a copy) until k accepted ones; a refused draw does not count. The
         * first drawn wins ties, so an idle cluster is spread at random. */
        memcpy(lb->cand, c->rotation, n * sizeof(*lb->cand));
        for (uint32_t i = 0; i < n && accepted < k; i++) {
            uint32_t j = i + bal_rand_below(lb, (uint32_t)(n - i));
            uint32_t idx = lb->cand[j];

            lb->cand[j] = lb->cand[i];
            lb->cand[i] = idx;
            switch (bal_skip_of(&c->endpoints[idx], r)) {
            case BAL_SKIP_NO:
                accepted++;
                if (best == BAL_NO_INDEX || lr->active[idx] < lr->active[best])
                    best = idx;
                break;
            case BAL_SKIP_SOFT:
                if (soft == BAL_NO_INDEX || lr->active[idx] < lr->active[soft])
                    soft = idx;
                break;
            case BAL_SKIP_HARD:
                break;
            }
        }
        if (best != BAL_NO_INDEX)
            return (int)best;
        return soft != BAL_NO_INDEX ? (int)soft : BAL_EEXHAUSTED;
    }
    n = bal_candidates(lb, c, r);
    if (n == 0)
        return BAL_EEXHAUSTED;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = lb->cand[i];

        total += (double)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms) /
                 ((double)lr->active[idx] + 1);
    }
    x = (double)(bal_rand(lb) >> 11) * 0x1.0p-53 * total;
    for (size_t i = 0; i < n; i++) {
        uint32_t idx = lb->cand[i];
        double w = (double)bal_slow_start_weight(c, &c->endpoints[idx], r->now_ms) /
                   ((double)lr->active[idx] + 1);

        if (x < w)
            return (int)idx;
        x -= w;
    }
    return (int)lb->cand[n - 1]; /* rounding left |x| just past the last one */
}

static void lr_init(struct bal_lb_state *lb, const struct bal_cluster *c)
{
    struct lr *lr = bal_policy_state(lb);

    lr->active = bal_xcalloc(c->nendpoints, sizeof(*lr->active));
}

static void lr_deinit(struct bal_lb_state *lb)
{
    struct lr *lr = bal_policy_state(lb);

    free(lr->active);
}

static void lr_update(struct bal_lb_state *lb, const struct bal_cluster *c, const uint32_t *old_of)
{
    struct lr *lr = bal_policy_state(lb);

    lr->active =
        bal_remap(lr->active, lb->c->nendpoints, sizeof(*lr->active), c->nendpoints, old_of);
}

static void lr_attempt_start(struct bal_lb_state *lb, uint32_t idx)
{
    struct lr *lr = bal_policy_state(lb);

    lr->active[idx]++;
}

static void lr_attempt_end(struct bal_lb_state *lb, uint32_t idx)
{
    struct lr *lr = bal_policy_state(lb);

    if (lr->active[idx] > 0) /* its start may predate a reset (policy change) */
        lr->active[idx]--;
}

const struct bal_ops bal_least_request_ops = {
    .name = "least_request",
    .state_size = sizeof(struct lr),
    .init = lr_init,
    .deinit = lr_deinit,
    .pick = lr_pick,
    .attempt_start = lr_attempt_start,
    .attempt_end = lr_attempt_end,
    .update = lr_update,
};
