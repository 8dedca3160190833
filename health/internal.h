/* health internals shared by hc.c, state.c, codec.c and the unit tests: the
 * per-endpoint rise/fall state machine and the grpc.health.v1 codec.
 * Invariant: everything declared here is pure (no I/O, no clock, no logging),
 * so it is tested without sockets or timers.
 * SPDX-License-Identifier: MIT */
#ifndef HEALTH_INTERNAL_H
#define HEALTH_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- state machine (state.c) ---- */

/** What one probe (or one Watch update) says about an endpoint. */
enum hc_result {
    HC_RES_PASS = 0,      /* HTTP 200, grpc-status 0, SERVING */
    HC_RES_FAIL,          /* ambiguous failure, counted toward unhealthy_threshold: timeout,
                             reset, other grpc-status, bad framing, undecodable message */
    HC_RES_DOWN,          /* clean negative answer, out at once: NOT_SERVING, UNKNOWN,
                             SERVICE_UNKNOWN, grpc-status NOT_FOUND, connection refused, GOAWAY
                             with an error code (a graceful one is no result: hc.c) */
    HC_RES_UNIMPLEMENTED, /* grpc-status UNIMPLEMENTED: a PASS or a DOWN per
                             health_unimplemented */
    HC_RES_COUNT
};

/** Health of one endpoint as far as active checking knows. */
enum hc_state {
    HC_ST_UNCHECKED = 0, /* new and never checked, out of rotation (health_initial =
                            unhealthy); the first pass alone brings it in (as Envoy) */
    HC_ST_HEALTHY,       /* in rotation; the last result was a pass (or it started healthy) */
    HC_ST_FALLING,       /* in rotation, with 1..unhealthy_threshold-1 failures in a row */
    HC_ST_UNHEALTHY,     /* out of rotation */
    HC_ST_RISING,        /* out of rotation, with 1..healthy_threshold-1 passes in a row */
    HC_STATE_COUNT
};

/** The thresholds of one cluster (health_* keys). */
struct hc_sm_conf {
    uint32_t healthy_threshold;   /* >= 1 */
    uint32_t unhealthy_threshold; /* >= 1 */
    bool unimplemented_healthy;   /* health_unimplemented = healthy */
};

struct hc_sm {
    enum hc_state state;
    uint32_t count; /* results in a row toward the next transition (FALLING, RISING) */
};

/** Starts |m|: HEALTHY when |in_rotation| (health_initial = healthy, or kept
 *  across a reload), else UNHEALTHY when |checked| (it was taken out before),
 *  else UNCHECKED. */
void hc_sm_init(struct hc_sm *m, bool in_rotation, bool checked);

/** Feeds one result to |m|; every transition goes through here. Returns the
 *  new state (which may equal the old one). */
enum hc_state hc_sm_feed(struct hc_sm *m, const struct hc_sm_conf *c, enum hc_result r);

/** Whether an endpoint in state |s| may take calls. */
bool hc_state_in_rotation(enum hc_state s);

/** "unchecked", "healthy", "falling", "unhealthy", "rising"; "?" out of range. */
const char *hc_state_name(enum hc_state s);

/** "pass", "fail", "down", "unimplemented"; "?" out of range. */
const char *hc_result_name(enum hc_result r);

/** |ms| with +-10% of random jitter (so endpoints do not probe in lockstep),
 *  at least 1. |rng| is an xorshift64 state (never 0), advanced here. */
uint32_t hc_jitter(uint32_t ms, uint64_t *rng);

/** Reconnect delay after |fails| (>= 1) connections in a row ended without an
 *  answer: |interval_ms| doubled per further failure, capped at
 *  max(|interval_ms|, HC_BACKOFF_CAP_MS). */
uint32_t hc_backoff(uint32_t interval_ms, uint32_t fails);
#define HC_BACKOFF_CAP_MS 5000

/* ---- codec (codec.c): gRPC message framing and grpc.health.v1 messages ---- */

#define HC_FRAME_HDR 5    /* compressed flag + 4-byte big-endian length (PROTOCOL-HTTP2) */
#define HC_MAX_MSG   1024 /* a HealthCheckResponse is 2 bytes; more is treated as bad framing */

/* ServingStatus values of grpc.health.v1.HealthCheckResponse. */
enum {
    HC_SERVING_UNKNOWN = 0,
    HC_SERVING_SERVING = 1,
    HC_SERVING_NOT_SERVING = 2,
    HC_SERVING_SERVICE_UNKNOWN = 3, /* Watch only */
};

/* gRPC status codes the checker tells apart. */
enum {
    HC_GRPC_OK = 0,
    HC_GRPC_NOT_FOUND = 5,
    HC_GRPC_UNIMPLEMENTED = 12,
};

/** Outcome of decoding one framed message. */
enum hc_frame_rc {
    HC_FRAME_OK = 0,     /* one message decoded; |*used| bytes consumed */
    HC_FRAME_PARTIAL,    /* fewer bytes than the frame needs: wait for more */
    HC_FRAME_COMPRESSED, /* compressed flag set (we never ask for compression) */
    HC_FRAME_TOO_BIG,    /* declared length above HC_MAX_MSG */
    HC_FRAME_BAD_PROTO,  /* the payload is not a HealthCheckResponse */
};

/** Writes HealthCheckRequest{service = |service|} as one uncompressed gRPC
 *  message (5-byte prefix + protobuf) into |out|. Returns the length, or 0
 *  when |cap| is too small. */
size_t hc_codec_request_encode(const char *service, uint8_t *out, size_t cap);

/** Decodes the first framed HealthCheckResponse in |buf| (|len| bytes).
 *  On HC_FRAME_OK stores its ServingStatus in |*status| (values outside the
 *  enum are passed through) and the frame's size in |*used|. */
enum hc_frame_rc hc_codec_response_decode(const uint8_t *buf, size_t len, int *status,
                                          size_t *used);

/** "compressed flag set", ...; for reasons. */
const char *hc_frame_rc_name(enum hc_frame_rc rc);

/** Formats |ms| as a grpc-timeout value ("250m"; at most 8 digits, so long
 *  values go to seconds or more, rounded up) into |buf|. Returns |buf|. */
char *hc_codec_timeout(uint32_t ms, char *buf, size_t len);

/* gRPC status names: grpc_code_name() of core/grpc.h, shared with the proxy. */

/** "SERVING", "NOT_SERVING", "UNKNOWN", "SERVICE_UNKNOWN", or "?". */
const char *hc_serving_name(int status);

/** Maps one ServingStatus (a Check answer or a Watch update) to a result. */
enum hc_result hc_result_of_serving(int status);

/** One complete unary Check answer as the checker saw it. */
struct hc_answer {
    int http_status;          /* :status; 0 when none arrived */
    const char *content_type; /* NUL-terminated, NULL when absent */
    int grpc_status;          /* from trailers (or trailers-only headers); -1 when absent */
    const char *grpc_message; /* NUL-terminated, may be NULL */
    const uint8_t *body;      /* the DATA payload, all of it */
    size_t body_len;
};

/** Classifies a complete Check answer (PROTOCOL-HTTP2 and health.proto):
 *  writes a readable reason ("SERVING", "NOT_SERVING", "grpc-status 13
 *  INTERNAL: msg", "HTTP 503", ...) into |why| and returns the result. */
enum hc_result hc_classify(const struct hc_answer *a, char *why, size_t whylen);

#endif
