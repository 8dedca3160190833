/* Active health checking: grpc.health.v1.Health probes of every endpoint,
 * run on the main thread over our own HTTP/2 client connections.
 * Invariant: the checker only reads the config and writes endpoint health
 * into the bal_epset; it asks for a new snapshot through |changed|.
 * SPDX-License-Identifier: MIT */
#ifndef HEALTH_HC_H
#define HEALTH_HC_H

#include "balancer/epset.h"
#include "conf/conf.h"

struct event_base;
struct hc;

/** Called after one or more endpoints changed health (one call may cover
 *  several changes). */
typedef void (*hc_changed_cb)(void *arg);

/** Starts checking every endpoint of |eps| whose cluster has health_check = on,
 *  and every endpoint added later (it observes |eps|). |base|, |c| and |eps| are
 *  borrowed and must outlive the checker. Returns NULL (with |err|) on failure. */
struct hc *hc_new(struct event_base *base, const struct conf *c, struct bal_epset *eps,
                  hc_changed_cb changed, void *arg, char *err, size_t errlen);

/** Stops every probe and frees |h|. NULL is a no-op. */
void hc_free(struct hc *h);

/** What the admin endpoint shows of one endpoint's checks. */
struct hc_ep_info {
    bool checked;                  /* at least one probe finished */
    uint64_t last_check_ms;        /* CLOCK_MONOTONIC ms when the last probe finished */
    double last_latency_ms;        /* its round trip */
    uint32_t consecutive_failures; /* failed probes in a row */
    uint64_t passes, failures;     /* probes ever, by result */
};

/** Fills |out| for |ep| (all zero when |h| is NULL or |ep| is not checked). */
void hc_ep_info(const struct hc *h, const struct bal_ep *ep, struct hc_ep_info *out);

#endif
