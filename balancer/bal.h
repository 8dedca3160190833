/* switchyard balancer: endpoints with stable identity, immutable refcounted
 * cluster snapshots, routing by :path prefix and the pick policies.
 * Invariant: a sealed bal_snapshot is never written again; it is shared by the
 * main thread and every worker and freed by whoever drops the last reference.
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
};

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
    uint64_t generation;
    const struct conf *conf; /* borrowed: must outlive the snapshot */
    struct bal_cluster *clusters;
    size_t nclusters;
    struct bal_route *routes; /* longest prefix first */
    size_t nroutes;
};

/** Per-worker, per-cluster policy state. Zero it, then seed |rr_next| with a
 *  random value so the workers do not all start on the same endpoint. */
struct bal_lb {
    uint32_t rr_next; /* round_robin: next position in the rotation */
    uint32_t pf_id;   /* pick_first: id of the endpoint we stick to */
    bool pf_set;      /* pick_first: |pf_id| is valid */
};

/** How much a pick should avoid an endpoint. */
enum bal_skip {
    BAL_SKIP_NO = 0, /* usable */
    BAL_SKIP_SOFT,   /* avoid unless nothing else is usable (e.g. recent connect failure) */
    BAL_SKIP_HARD,   /* never (e.g. already tried by this call) */
};
typedef enum bal_skip (*bal_skip_cb)(const struct bal_endpoint *ep, void *arg);

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

/** Computes the rotation arrays. After this the snapshot is read-only. */
void bal_snapshot_seal(struct bal_snapshot *s);

/** Takes one more reference; returns |s|. Thread-safe. */
struct bal_snapshot *bal_snapshot_ref(struct bal_snapshot *s);

/** Drops one reference and frees |s| with the last one. NULL is a no-op.
 *  Thread-safe. */
void bal_snapshot_unref(struct bal_snapshot *s);

/* ---- routing and picking (workers; no locks, no allocation) ---- */

/** Returns the cluster whose route is the longest prefix of |path|, or NULL. */
const struct bal_cluster *bal_route(const struct bal_snapshot *s, const char *path, size_t len);

/** Picks an endpoint of |c| for a new call with the cluster's policy, using and
 *  updating |st|. |skip| (may be NULL) can refuse endpoints. Returns an index
 *  into c->endpoints, BAL_ENOENDPOINT when none is in rotation, or
 *  BAL_EEXHAUSTED when every endpoint in rotation was refused hard. */
int bal_pick(const struct bal_cluster *c, struct bal_lb *st, bal_skip_cb skip, void *arg);

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
