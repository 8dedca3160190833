/* OpenTelemetry spans leaving switchyard: the exporter on the main thread
 * that takes the workers' span queues (span.h) and sends batches over OTLP/HTTP with the JSON
 * encoding (OTLP spec, "JSON Protobuf Encoding": lowerCamelCase keys, hex trace and span ids, enums
 * as integers, 64-bit integers as decimal strings). Invariant: a queue has one producer (its
 * worker) and one consumer (the main thread) and never blocks either: a full queue drops the span
 * and counts it; the exporter has at most one request in flight and never makes a worker wait.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_OTLP_H
#define PROXY_OTLP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "proxy/span.h"

struct runtime;

/** The OTLP/HTTP JSON body (an ExportTraceServiceRequest) for |n| spans of
 *  service |service|. Returns a new string (free()) and its length. Pure. */
char *proxy_otlp_encode(const struct proxy_span *spans, size_t n, const char *service, size_t *len);

/** What the exporter did, for /metrics. */
struct proxy_otlp_stats {
    uint64_t exported;       /* spans the collector accepted */
    uint64_t dropped_queue;  /* spans a worker's full queue dropped */
    uint64_t dropped_export; /* spans in requests that failed */
    uint64_t dropped_off;    /* spans left queued when export was turned off */
    uint64_t requests_ok, requests_failed;
    uint64_t queued; /* waiting in the workers' queues now */
};

/** Starts the exporter on the main loop of |rt| (after the workers were
 *  created; it reads their queues). It follows rt->conf: an otlp_endpoint
 *  set, changed or removed by a reload takes effect at the next tick.
 *  Returns 0. */
int proxy_otlp_start(struct runtime *rt);

/** Stops it (a request in flight is abandoned). NULL-safe on rt->otlp. */
void proxy_otlp_stop(struct runtime *rt);

/** Fills |st|. Main thread. */
void proxy_otlp_stats(struct runtime *rt, struct proxy_otlp_stats *st);

#endif
