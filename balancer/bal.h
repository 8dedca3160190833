/* switchyard balancer: endpoints with stable identity, immutable refcounted
 * cluster snapshots, routing by :path prefix and the pick policies.
 * Invariant: a sealed bal_snapshot is never written again; it is shared by the
 * main thread and every worker and freed by whoever drops the last reference.
 * Policy state that changes per pick lives in a struct bal_lb, one per worker
 * and cluster, touched only by its worker.
 * SPDX-License-Identifier: MIT */
#ifndef BALANCER_BAL_H
#define BALANCER_BAL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "conf/conf.h"

enum {
    BAL_ENOENDPOINT = -1, /* the cluster has no endpoint in rotation */
    BAL_EEXHAUSTED = -2,  /* endpoints exist, but every one was refused by the skip callback */
};

#define BAL_ADDRSTRLEN 64

/** One resolved address of a cluster, as seen in one snapshot. */
struct bal_endpoint {
    uint32_t id; /* stable identity: the same address keeps its id across snapshots */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    char addr_str[BAL_ADDRSTRLEN]; /* "127.0.0.1:50051", "[::1]:50051" */
    const char *origin;            /* the target spec it came from (owned by the snapshot) */
    bool in_rotation;              /* may receive new calls */
    bool healthy;                  /* health checking says so (drained or ejected aside) */
    bool ejected;                  /* out by outlier detection */
    uint32_t weight;               /* its target's weight=N, 1..1000 (0 is taken as 1) */
    uint64_t since_ms; /* CLOCK_MONOTONIC ms when it entered the rotation, for slow_start;
                          0: not known or not in rotation (full weight) */
};

struct bal_ring; /* ring_hash's ring of a cluster (balancer/internal.h) */

struct bal_cluster {
    const char *name; /* borrowed from the conf */
    uint32_t index;   /* position in the snapshot and in the conf */
    const struct conf_cluster *conf;
    struct bal_endpoint *endpoints; /* in configured order */
    size_t nendpoints;
    uint32_t *rotation; /* indices into |endpoints| of those in rotation, in order */
    size_t nrotation;
    const char *unresolved; /* a target that has no address yet (for error messages), or NULL */
    bool panic;             /* healthy share below panic_threshold: every endpoint in rotation */
    int32_t active; /* pick_first: index into |endpoints| of the process-wide choice, made when
                       the snapshot was built; -1: none (then the first in rotation) */
    const struct bal_ring *ring; /* ring_hash: built by bal_snapshot_seal(); else NULL */
};

struct bal_route {
    const char *prefix; /* borrowed from the conf */
    size_t len;
    uint32_t cluster;
};

struct bal_snapshot {
    atomic_uint refs;
    void (*on_free)(void *arg); /* called when the snapshot is freed (e.g. releases its conf) */
    void *on_free_arg;
    /* What the owner hangs on the snapshot for the workers before publishing
     * it (the REST transcoding table), released with |ext_free| (when not
     * NULL) as the snapshot is freed, before |on_free|. */
    void *ext;
    void (*ext_free)(void *ext);
    uint64_t generation;
    const struct conf *conf; /* borrowed: must outlive the snapshot */
    struct bal_cluster *clusters;
    size_t nclusters;
    struct bal_route *routes; /* longest prefix first */
    size_t nroutes;
};

/** Per-worker, per-cluster policy state: a handle to embed (an array of them
 *  is fine) and to treat as opaque; only balancer/ looks behind |st|. A zeroed
 *  one is "not set up": bal_lb_deinit() and bal_attempt_*() accept it. */
struct bal_lb {
    struct bal_lb_state *st;
};

/** How much a pick should avoid an endpoint. */
enum bal_skip {
    BAL_SKIP_NO = 0, /* usable */
    BAL_SKIP_SOFT,   /* avoid unless nothing else is usable (e.g. recent connect failure) */
    BAL_SKIP_HARD,   /* never (e.g. already tried by this call) */
};
typedef enum bal_skip (*bal_skip_cb)(const struct bal_endpoint *ep, void *arg);

/** What a pick needs to know about the call. */
struct bal_pick_req {
    bal_skip_cb skip;   /* may refuse endpoints; NULL: none refused */
    void *arg;          /* for |skip| */
    const uint8_t *key; /* ring_hash: the bytes to hash (hash_on); NULL: no key, random */
    size_t keylen;
    uint64_t now_ms; /* CLOCK_MONOTONIC ms (slow_start); the epoch of bal_endpoint.since_ms */
    bool again;      /* another attempt of a call picked before (a retry or a hedge):
                        round_robin picks without moving its rotation, so that calls
                        with two picks do not pin their first on one endpoint */
};

/* ---- snapshots (built on the main thread) ---- */

/** Starts a snapshot for |c| with one empty cluster per conf cluster and the
 *  routes of the conf. |c| is borrowed and must outlive the snapshot. The
 *  snapshot has one reference, owned by the caller. */
struct bal_snapshot *bal_snapshot_new(const struct conf *c, uint64_t generation);

/** Appends a copy of |ep| to cluster |cluster| of an unsealed |s|; |origin| is
 *  copied. Endpoints keep the order of the calls. */
void bal_snapshot_add_endpoint(struct bal_snapshot *s, uint32_t cluster,
                               const struct bal_endpoint *ep);

/** Records that cluster |cluster| has a target |spec| without addresses yet
 *  (the first one wins); used in UNAVAILABLE messages. |spec| is copied. */
void bal_snapshot_set_unresolved(struct bal_snapshot *s, uint32_t cluster, const char *spec);

/** Computes the rotation arrays and, for ring_hash clusters, the ring. After
 *  this the snapshot is read-only. */
void bal_snapshot_seal(struct bal_snapshot *s);

/** Takes one more reference; returns |s|. Thread-safe. */
struct bal_snapshot *bal_snapshot_ref(struct bal_snapshot *s);

/** Drops one reference and frees |s| with the last one. NULL is a no-op.
 *  Thread-safe. */
void bal_snapshot_unref(struct bal_snapshot *s);

/* ---- routing and picking (workers; no locks, no allocation) ---- */

/** Returns the cluster whose route is the longest prefix of |path|, or NULL. */
const struct bal_cluster *bal_route(const struct bal_snapshot *s, const char *path, size_t len);

/** Sets up |lb| (zeroed or deinitialised) for cluster |c| with |c|'s policy.
 *  |seed| makes picks differ between workers (e.g. a random number). |c| is
 *  borrowed until the next bal_lb_update() or bal_lb_deinit(): keep its
 *  snapshot referenced. Allocates; not for the request path. */
void bal_lb_init(struct bal_lb *lb, const struct bal_cluster *c, uint64_t seed);

/** Frees what |lb| holds and zeroes it. A zeroed |lb| is a no-op. */
void bal_lb_deinit(struct bal_lb *lb);

/** Moves |lb| to |c|, the same cluster in a new snapshot (a zeroed |lb| is set
 *  up). Policy state of endpoints that stay (same id) is kept: active attempt
 *  counts, round-robin weights. When |c| has another policy (a reload), the
 *  state starts afresh. Allocates; call it when a worker takes a snapshot. */
void bal_lb_update(struct bal_lb *lb, const struct bal_cluster *c);

/** Picks an endpoint of |c| for a new attempt with the cluster's policy. |lb|
 *  must have been given |c| by bal_lb_init() or bal_lb_update(). Endpoints
 *  |r->skip| refuses hard are never returned; soft ones only when nothing else
 *  is left. Returns an index into c->endpoints, BAL_ENOENDPOINT when none is
 *  in rotation, or BAL_EEXHAUSTED when every endpoint in rotation was refused
 *  hard. Allocates nothing and takes no lock. */
int bal_pick(const struct bal_cluster *c, struct bal_lb *lb, const struct bal_pick_req *r);

/** An attempt starts on / ends at endpoint |ep_id| of |lb|'s cluster (for
 *  least_request: counts are per worker). Every start needs one end; an end
 *  whose start |lb| never saw (a reload reset it) is ignored. An id that is not
 *  in the cluster is ignored. O(1), no allocation. */
void bal_attempt_start(struct bal_lb *lb, uint32_t ep_id);
void bal_attempt_end(struct bal_lb *lb, uint32_t ep_id);

/* ---- endpoint identity (main thread) ---- */

/** Maps addresses to stable endpoint ids (0, 1, 2, ...). */
struct bal_registry *bal_registry_new(void);
void bal_registry_free(struct bal_registry *r);
/** Returns the id of |addr| and takes one reference to it; a new address gets
 *  an id nobody holds any more (or the next one). */
uint32_t bal_registry_id(struct bal_registry *r, const struct sockaddr *addr, socklen_t len);
/** Drops one reference to |id|; with the last one the id may go to another
 *  address (users that outlive it must compare addresses too). */
void bal_registry_release(struct bal_registry *r, uint32_t id);
/** How many ids exist (the highest ever held + 1). */
size_t bal_registry_size(const struct bal_registry *r);

/** Formats |addr| as "ip:port" or "[ip6]:port" into |buf|. Returns |buf|. */
char *bal_addr_str(const struct sockaddr *addr, char *buf, size_t len);

#endif
