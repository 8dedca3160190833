/* grpc.health.v1 messages on the wire: gRPC length-prefixed framing
 * (PROTOCOL-HTTP2.md, "Length-Prefixed-Message") around the protobuf-c code
 * generated from health.proto, and the reading of a Check answer.
 * Invariant: I/O-free and log-free; every input is untrusted bytes.
 * SPDX-License-Identifier: MIT */
#include "health/internal.h"

#include <stdio.h>
#include <string.h>

#include "core/grpc.h"
#include "grpc/health/v1/health.pb-c.h"

const char *hc_serving_name(int status)
{
    switch (status) {
    case HC_SERVING_UNKNOWN:
        return "UNKNOWN";
    case HC_SERVING_SERVING:
        return "SERVING";
    case HC_SERVING_NOT_SERVING:
        return "NOT_SERVING";
    case HC_SERVING_SERVICE_UNKNOWN:
        return "SERVICE_UNKNOWN";
    default:
        return "?";
    }
}

const char *hc_frame_rc_name(enum hc_frame_rc rc)
{
    switch (rc) {
    case HC_FRAME_OK:
        return "ok";
    case HC_FRAME_PARTIAL:
        return "truncated response message";
    case HC_FRAME_COMPRESSED:
        return "compressed response message (none was asked for)";
    case HC_FRAME_TOO_BIG:
        return "response message too large";
    case HC_FRAME_BAD_PROTO:
        return "undecodable HealthCheckResponse";
    }
    return "?";
}

size_t hc_codec_request_encode(const char *service, uint8_t *out, size_t cap)
{
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    size_t n;

    req.service = (char *)service;
    n = grpc__health__v1__health_check_request__get_packed_size(&req);
    if (n > UINT32_MAX || cap < HC_FRAME_HDR || n > cap - HC_FRAME_HDR)
        return 0;
    out[0] = 0; /* not compressed */
    out[1] = (uint8_t)(n >> 24);
    out[2] = (uint8_t)(n >> 16);
    out[3] = (uint8_t)(n >> 8);
    out[4] = (uint8_t)n;
    grpc__health__v1__health_check_request__pack(&req, out + HC_FRAME_HDR);
    return n + HC_FRAME_HDR;
}

enum hc_frame_rc hc_codec_response_decode(const uint8_t *buf, size_t len, int *status, size_t *used)
{
    Grpc__Health__V1__HealthCheckResponse *rep;
    uint32_t n;

    if (len < HC_FRAME_HDR)
        return HC_FRAME_PARTIAL;
    n = (uint32_t)buf[1] << 24 | (uint32_t)buf[2] << 16 | (uint32_t)buf[3] << 8 | buf[4];
    /* The flag byte is 0 or 1 (compressed); anything else is a framing error. */
    if (buf[0] != 0)
        return buf[0] == 1 ? HC_FRAME_COMPRESSED : HC_FRAME_BAD_PROTO;
    if (n > HC_MAX_MSG)
        return HC_FRAME_TOO_BIG;
    if (len - HC_FRAME_HDR < n)
        return HC_FRAME_PARTIAL;
    rep = grpc__health__v1__health_check_response__unpack(NULL, n, buf + HC_FRAME_HDR);
    if (rep == NULL)
        return HC_FRAME_BAD_PROTO;
    *status = (int)rep->status;
    *used = HC_FRAME_HDR + n;
    grpc__health__v1__health_check_response__free_unpacked(rep, NULL);
    return HC_FRAME_OK;
}

char *hc_codec_timeout(uint32_t ms, char *buf, size_t len)
{
    /* PROTOCOL-HTTP2: TimeoutValue is a positive integer of at most 8 digits. */
    if (ms == 0)
        ms = 1;
    if (ms <= 99999999u)
        snprintf(buf, len, "%um", ms);
    else
        snprintf(buf, len, "%uS", ms / 1000u + (ms % 1000u != 0)); /* no overflow */
    return buf;
}

enum hc_result hc_result_of_serving(int status)
{
    switch (status) {
    case HC_SERVING_SERVING:
        return HC_RES_PASS;
    case HC_SERVING_NOT_SERVING:
    case HC_SERVING_UNKNOWN:
    case HC_SERVING_SERVICE_UNKNOWN:
        return HC_RES_DOWN; /* a clean "no" from the endpoint itself */
    default:
        return HC_RES_FAIL;
    }
}

static void why_status(const struct hc_answer *a, char *why, size_t whylen)
{
    if (a->grpc_message != NULL && a->grpc_message[0] != '\0')
        snprintf(why, whylen, "grpc-status %d %s: %s", a->grpc_status,
                 grpc_code_name(a->grpc_status), a->grpc_message);
    else
        snprintf(why, whylen, "grpc-status %d %s", a->grpc_status, grpc_code_name(a->grpc_status));
}

enum hc_result hc_classify(const struct hc_answer *a, char *why, size_t whylen)
{
    enum hc_frame_rc rc;
    int status = -1;
    size_t used = 0;

    if (a->http_status == 0) {
        snprintf(why, whylen, "response without :status");
        return HC_RES_FAIL;
    }
    if (a->http_status != 200) {
        snprintf(why, whylen, "HTTP status %d", a->http_status);
        return HC_RES_FAIL;
    }
    if (a->content_type == NULL || strncmp(a->content_type, "application/grpc", 16) != 0) {
        snprintf(why, whylen, "content-type '%s' is not gRPC",
                 a->content_type != NULL ? a->content_type : "");
        return HC_RES_FAIL;
    }
    if (a->grpc_status < 0) {
        snprintf(why, whylen, "response without grpc-status");
        return HC_RES_FAIL;
    }
    if (a->grpc_status != HC_GRPC_OK) {
        why_status(a, why, whylen);
        if (a->grpc_status == HC_GRPC_NOT_FOUND)
            return HC_RES_DOWN; /* the endpoint does not know health_service */
        if (a->grpc_status == HC_GRPC_UNIMPLEMENTED)
            return HC_RES_UNIMPLEMENTED;
        return HC_RES_FAIL;
    }
    if (a->body_len == 0) {
        snprintf(why, whylen, "grpc-status 0 without a response message");
        return HC_RES_FAIL;
    }
    rc = hc_codec_response_decode(a->body, a->body_len, &status, &used);
    if (rc != HC_FRAME_OK) {
        snprintf(why, whylen, "%s", hc_frame_rc_name(rc));
        return HC_RES_FAIL;
    }
    if (used != a->body_len) {
        /* A unary method answers exactly one message. */
        snprintf(why, whylen, "more than one response message");
        return HC_RES_FAIL;
    }
    if (hc_result_of_serving(status) == HC_RES_FAIL)
        snprintf(why, whylen, "unknown serving status %d", status);
    else
        snprintf(why, whylen, "%s", hc_serving_name(status));
    return hc_result_of_serving(status);
}
