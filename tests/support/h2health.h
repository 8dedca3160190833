/* A raw HTTP/2 grpc.health.v1 client for integration tests: one nghttp2
 * client session on one blocking socket, driven by the test thread. Unlike
 * the gRPC C core it lets a test open a stream before an event (SIGTERM) and
 * finish its request after it, on a connection that got GOAWAY, and it sends
 * requests a real client never would.
 * Invariant: nothing happens in the background; the connection moves only
 * inside hcl_* calls.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_H2HEALTH_H
#define TESTS_SUPPORT_H2HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HCL_MAX_UPDATES 32

/** What one stream got back. */
struct hcl_result {
    bool closed;     /* the stream ended (END_STREAM or reset) */
    uint32_t rst;    /* RST_STREAM error code when reset, else 0 */
    int http_status; /* :status; 0 when none */
    int grpc_status; /* -1 when none */
    char grpc_message[128];
    int statuses[HCL_MAX_UPDATES]; /* ServingStatus of each message, in order */
    int nstatuses;
    bool bad_message; /* a message that did not decode */
};

struct hcl;

/** Connects to 127.0.0.1:|port| and sends the preface and SETTINGS. Returns
 *  NULL on failure. */
struct hcl *hcl_connect(int port);

/** Closes the connection and frees |c|. NULL is a no-op. */
void hcl_close(struct hcl *c);

/** Opens a stream POSTing to /grpc.health.v1.Health/|method| ("Check" or
 *  "Watch") with HealthCheckRequest{|service|}. With |hold|, only the
 *  headers leave now and hcl_send_body() sends the message later. With
 *  |compressed|, the message carries the compressed flag. Returns the stream
 *  id, or -1. */
int32_t hcl_start(struct hcl *c, const char *method, const char *service, bool hold,
                  bool compressed);

/** Sends the held request message of stream |sid| (and END_STREAM). Returns 0
 *  or -1. */
int hcl_send_body(struct hcl *c, int32_t sid);

/** Runs the connection until stream |sid| has at least |nupdates| messages or
 *  has ended (|nupdates| < 0: until it ended), or |timeout_ms| passed.
 *  Returns 0 when the condition holds, -1 on timeout or connection loss. */
int hcl_wait(struct hcl *c, int32_t sid, int nupdates, int timeout_ms);

/** Runs the connection until a GOAWAY arrived. Returns 0, or -1 on timeout. */
int hcl_wait_goaway(struct hcl *c, int timeout_ms);

/** The result so far of stream |sid| (NULL when unknown). */
const struct hcl_result *hcl_result(const struct hcl *c, int32_t sid);

#endif
