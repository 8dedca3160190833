/* What a worker reports to the main thread (admin /status and /metrics): a
 * copy of its counters, made on the worker and handed over through an atomic
 * mailbox.
 * Invariant: plain data; a report owns every string in it.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_REPORT_H
#define PROXY_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "balancer/bal.h"
#include "core/grpc.h"

/* Call durations, in seconds: from half a millisecond to four hours, so
 * long-lived streams land in a bucket of their own instead of +Inf. */
#define PROXY_HIST_NB 22
extern const double proxy_hist_bounds[PROXY_HIST_NB]; /* seconds, ascending */

/* go-grpc-prometheus's grpc_type, derived from the messages seen each way
 * (the wire does not say): more than one request message makes it a client
 * stream, more than one response message a server stream, both a bidi
 * stream, neither a unary call. */
enum proxy_grpc_type {
    PROXY_TYPE_UNARY = 0,
    PROXY_TYPE_CLIENT_STREAM,
    PROXY_TYPE_SERVER_STREAM,
    PROXY_TYPE_BIDI_STREAM,
    PROXY_TYPE_COUNT
};

/** A histogram: per bucket (not cumulative), the last one +Inf. */
struct proxy_hist {
    uint64_t bucket[PROXY_HIST_NB + 1];
    uint64_t count;
    double sum; /* seconds */
};

/** Calls of one method label. The old families (grpc_requests_total,
 *  grpc_request_duration_seconds) are the sums over the types. */
struct proxy_mstat {
    char *name; /* "/pkg.Svc/Method"; "other" for the overflow slot */
    uint64_t handled[PROXY_TYPE_COUNT][GRPC_CODE_COUNT];
    uint64_t msg_in[PROXY_TYPE_COUNT], msg_out[PROXY_TYPE_COUNT];
    struct proxy_hist dur[PROXY_TYPE_COUNT];
};

/** Attempts of one (cluster, endpoint): switchyard_upstream_*. */
struct proxy_upstat {
    char cluster[128];
    char endpoint[BAL_ADDRSTRLEN];
    uint64_t by_code[GRPC_CODE_COUNT]; /* the attempt's outcome as a gRPC code */
    struct proxy_hist dur;             /* merged per cluster in /metrics */
};

/** One backend pool of a worker (an endpoint of a cluster). */
struct proxy_ep_report {
    uint32_t id;
    uint64_t active_calls, calls_total;
    uint32_t conns;
    char cluster[128];
    char addr[BAL_ADDRSTRLEN];
    uint32_t waiting;          /* attempts queued for stream capacity */
    uint64_t connect_failures; /* ever */
    bool removed;              /* no longer in the snapshot: its calls are draining */
};

/* Retry reasons counted per cluster: a gRPC status code (a policy retry on
 * that status), or PROXY_RETRY_UNSEEN (a transparent retry of an attempt no
 * backend saw). */
#define PROXY_RETRY_UNSEEN  GRPC_CODE_COUNT
#define PROXY_RETRY_REASONS (GRPC_CODE_COUNT + 1)

/** One cluster's retry counters on a worker. */
struct proxy_cluster_report {
    char name[128];
    uint64_t retries[PROXY_RETRY_REASONS];
    uint64_t hedges;
    uint64_t budget_exhausted; /* retries and hedges the budget refused */
};

/** A worker's counters, copied on the worker and handed to the main thread. */
struct proxy_report {
    struct proxy_mstat *m; /* names are copies */
    size_t nm;
    struct proxy_upstat *up;
    size_t nup;
    uint64_t self_health[2][GRPC_CODE_COUNT]; /* switchyard's own Health/Check, /Watch */
    uint64_t unlabelled;                      /* calls counted as "other" since start */
    struct proxy_ep_report *eps;
    size_t neps;
    uint32_t fe_conns;
    uint32_t be_conns;
    uint64_t alog_dropped; /* access log lines dropped because the log could not keep up */
    size_t pools;          /* backend pools alive */
    struct proxy_cluster_report *clusters;
    size_t nclusters;
};

/** Frees |r| and what it owns. NULL is a no-op. */
void proxy_report_free(struct proxy_report *r);

#endif
