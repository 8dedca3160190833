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

#define PROXY_HIST_NB 14
extern const double proxy_hist_bounds[PROXY_HIST_NB]; /* seconds, ascending */

/** Calls of one method (one `method` label). */
struct proxy_mstat {
    char *name; /* "/pkg.Svc/Method"; "other" for the overflow slot */
    uint64_t by_code[GRPC_CODE_COUNT];
    uint64_t bucket[PROXY_HIST_NB + 1]; /* per bucket (not cumulative); last = +Inf */
    uint64_t count;
    double sum; /* seconds */
};

/** One backend pool of a worker (an endpoint of a cluster). */
struct proxy_ep_report {
    uint32_t id;
    uint64_t active_calls, calls_total;
    uint32_t conns;
    char cluster[128];
    char addr[BAL_ADDRSTRLEN];
    bool removed; /* no longer in the snapshot: its calls are draining */
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
