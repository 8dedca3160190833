/* The main thread's live view of every cluster's endpoints: which addresses
 * each target resolved to and whether each endpoint is healthy. Snapshots for
 * the workers are built from it; DNS and health checking only write here.
 * It also keeps what must be decided once for the whole process: pick_first's
 * choice of endpoint per cluster, which survives snapshot rebuilds and reloads.
 * Invariant: main thread only; a struct bal_ep keeps its address (pointer)
 * from its addition until its removal, so observers may hold it.
 * SPDX-License-Identifier: MIT */
#ifndef BALANCER_EPSET_H
#define BALANCER_EPSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "balancer/bal.h"
#include "conf/conf.h"

/** One endpoint: one address of one target of one cluster. */
struct bal_ep {
    uint32_t id;      /* address identity (bal_registry), shared by clusters */
    uint32_t cluster; /* index in conf->clusters */
    uint32_t target;  /* index in the cluster's targets */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_str[BAL_ADDRSTRLEN];
    bool healthy;               /* may take calls, as far as health checking says */
    bool drained;               /* taken out by an operator (POST /drain): never in rotation */
    char reason[160];           /* why it is in its current state ("initial", "NOT_SERVING", ...) */
    uint64_t since_ms;          /* CLOCK_MONOTONIC ms of the last transition (0: never changed) */
    void *hc;                   /* the health checker's state for this endpoint; owned by health/ */
    uint32_t weight;            /* its target's weight (1..1000) */
    uint64_t rotation_since_ms; /* CLOCK_MONOTONIC ms when it last became healthy (added healthy,
                                   or a transition to healthy); slow_start ramps from here */
    /* outlier detection (gRFC A50): ejected while ejected_until_ms > 0 */
    uint64_t ejected_until_ms; /* CLOCK_MONOTONIC ms the ejection ends; 0: not ejected */
    uint32_t ejections;        /* the multiplier of the next ejection's time */
    uint64_t ejections_total;  /* times ejected since it was added */
    uint64_t ejected_by[3];    /* the same by enum bal_outlier_verdict (0 unused) */
    uint64_t back_since_ms;    /* when its last ejection ended (the multiplier decays) */
    char eject_reason[96];     /* why it was ejected last */
};

typedef void (*bal_ep_cb)(struct bal_ep *ep, void *arg);

struct bal_epset;

/** A set for |c| (borrowed; must outlive the set). IP-literal targets are
 *  added at once; DNS names have no address until bal_epset_set_addrs().
 *  New endpoints start healthy when the cluster has health_check = off or
 *  health_initial = healthy, otherwise unhealthy ("awaiting first check"). */
struct bal_epset *bal_epset_new(const struct conf *c, struct bal_registry *reg);

/** Frees |s|, calling the removal observer for every endpoint first. NULL is a no-op. */
void bal_epset_free(struct bal_epset *s);

/** Installs observers: |on_add| after an endpoint joined, |on_del| just before
 *  it is removed and freed. Calls |on_add| for every endpoint already there. */
void bal_epset_observe(struct bal_epset *s, bal_ep_cb on_add, bal_ep_cb on_del, void *arg);

/** Replaces the addresses of target |t| of cluster |cl| with |addrs| (|n| of
 *  them; each entry's length in |lens|). Addresses already there keep their
 *  endpoint and state; new ones are added; vanished ones are removed (the
 *  workers drain them). An address another target of the same cluster already
 *  has is not added twice. Marks the target resolved. Returns how many
 *  endpoints were added plus removed (0: nothing changed). */
int bal_epset_set_addrs(struct bal_epset *s, uint32_t cl, uint32_t t,
                        const struct sockaddr_storage *addrs, const socklen_t *lens, size_t n);

/** After a reload: gives |dst| (a new set, for a new conf) what |src| (the
 *  old one) knew. Name targets whose cluster name and spec are unchanged get
 *  their last addresses; endpoints of an unchanged cluster name and address
 *  keep their drained mark, and their health state unless health checking
 *  was turned off or on for that cluster. A cluster that stays pick_first
 *  keeps its choice. Observers of |dst| see the additions. */
void bal_epset_carry(struct bal_epset *dst, const struct bal_epset *src);

/** Whether target |t| of cluster |cl| ever got addresses (literals: always). */
bool bal_epset_target_resolved(const struct bal_epset *s, uint32_t cl, uint32_t t);

/** Sets the health of |ep|; |reason| is copied. Returns true when the state
 *  changed (then a new snapshot is due). |now_ms| (CLOCK_MONOTONIC ms) is
 *  recorded on a change, and as |rotation_since_ms| when |ep| became healthy. */
bool bal_epset_set_healthy(struct bal_epset *s, struct bal_ep *ep, bool healthy, const char *reason,
                           uint64_t now_ms);

/** Marks |ep| drained by an operator (out of rotation whatever its health,
 *  also in panic mode) or not. The mark stays while the endpoint exists,
 *  across DNS answers and reloads (bal_epset_carry()). Returns true when it
 *  changed (then a new snapshot is due). */
bool bal_epset_set_drained(struct bal_epset *s, struct bal_ep *ep, bool drained);

/** Ejects |ep| (outlier detection) until CLOCK_MONOTONIC |until_ms|, for
 *  |reason| (copied), or with |until_ms| 0 lets it back. Out of rotation while
 *  ejected, whatever its health; kept across reloads. Returns true when it
 *  changed. */
bool bal_epset_set_ejected(struct bal_epset *s, struct bal_ep *ep, uint64_t until_ms,
                           const char *reason);

/** Iteration, in cluster, then target, then address order. */
size_t bal_epset_count(const struct bal_epset *s);
struct bal_ep *bal_epset_at(const struct bal_epset *s, size_t i);

/** Builds a sealed snapshot (one reference, the caller's). Endpoints are in
 *  rotation when healthy and not drained; when a cluster's healthy share of
 *  its endpoints that are not drained is below its panic_threshold percent,
 *  all of those are (Envoy's panic mode).
 *  Endpoints carry their target's weight and, when healthy, when they entered
 *  the rotation. For pick_first clusters it makes the process-wide choice
 *  (bal_cluster.active) and records it in |s|: the endpoint chosen before if
 *  it is still in rotation (unless pick_first_failback = on and an earlier one
 *  is), otherwise the first in rotation in target/DNS order. */
struct bal_snapshot *bal_epset_snapshot(struct bal_epset *s, uint64_t generation);

/** pick_first: the id of cluster |cl|'s chosen endpoint in |*id|, as of the
 *  last snapshot built. Returns false when there is none. */
bool bal_epset_pick_first(const struct bal_epset *s, uint32_t cl, uint32_t *id);

#endif
