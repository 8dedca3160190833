/* The call filters switchyard ships, in the order a worker chains them, and
 * what the stats filter hands over for the worker's report.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTERS_FILTERS_H
#define PROXY_FILTERS_FILTERS_H

#include "proxy/filter.h"
#include "proxy/report.h"

/** REST/JSON transcoding of google.api.http bindings ([cluster.NAME] transcode). */
extern const struct proxy_filter proxy_filter_transcode;
/** CORS for web pages of other origins ([proxy] cors_origins): preflights
 *  answered, headers on every answer, errors included. */
extern const struct proxy_filter proxy_filter_cors;
/** gRPC-Web ([proxy] grpc_web): browsers' requests bridged to gRPC. */
extern const struct proxy_filter proxy_filter_grpc_web;
/** [auth]: verifies the caller before anything answers or routes the call. */
extern const struct proxy_filter proxy_filter_auth;
/** switchyard's own grpc.health.v1.Health (Check and Watch). */
extern const struct proxy_filter proxy_filter_selfhealth;
/** W3C trace context and OpenTelemetry spans (call and attempts). */
extern const struct proxy_filter proxy_filter_trace;
/** Prometheus counters per method and the access log. */
extern const struct proxy_filter proxy_filter_stats;

struct proxy_call;

/** Copies the stats filter's counters (|ws|: its worker state) into |r|. */
void proxy_stats_report(void *ws, struct proxy_report *r);

/** Writes buffered access-log lines of |ws| (at worker exit). */
void proxy_stats_flush(void *ws);

#endif
