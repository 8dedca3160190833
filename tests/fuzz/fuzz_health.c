/* libFuzzer harness: the grpc.health.v1 response decoder (health/codec.c) as
 * the checker uses it: a Watch body decoded message after message, and a
 * whole Check answer classified.
 * Input: byte 0 picks the answer's :status (200 or another), byte 1 its
 * grpc-status (-1: none), byte 2 its content-type; the rest is the DATA
 * payload. Seeds are real answers of the gRPC C core's health service.
 * Invariant: the decoder never reads past |len|, consumes at least a frame
 * header and at most |len| per message, and every reason is a C string.
 * SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "health/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void watch_body(const uint8_t *body, size_t len)
{
    size_t off = 0;

    while (off < len) {
        size_t used = 0;
        int status = -1;
        enum hc_frame_rc rc = hc_codec_response_decode(body + off, len - off, &status, &used);

        if (rc != HC_FRAME_OK) {
            if (hc_frame_rc_name(rc) == NULL)
                abort();
            return;
        }
        if (used < HC_FRAME_HDR || used > len - off) {
            fprintf(stderr, "fuzz check failed: decode used %zu of %zu bytes\n", used, len - off);
            abort();
        }
        (void)hc_result_of_serving(status);
        (void)hc_serving_name(status);
        off += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ctypes[] = {"application/grpc", "application/grpc+proto", "text/html",
                                         NULL};
    static const int grpc_statuses[] = {-1, 0, 2, 5, 12, 13, 14, 1000};
    struct hc_answer a = {0};
    uint8_t *body;
    size_t len;
    char why[160];
    enum hc_result r;

    if (size < 3)
        return 0;
    len = size - 3;
    body = malloc(len ? len : 1); /* exactly |len| bytes: an overread is caught */
    if (body == NULL)
        abort();
    memcpy(body, data + 3, len);

    watch_body(body, len);

    a.http_status = data[0] < 200 ? 200 : data[0] < 230 ? 503 : data[0] < 250 ? 0 : 404;
    a.grpc_status = grpc_statuses[data[1] % (sizeof(grpc_statuses) / sizeof(grpc_statuses[0]))];
    a.content_type = ctypes[data[2] % 4];
    a.grpc_message = (data[2] & 4) ? "fuzz" : NULL;
    a.body = body;
    a.body_len = len;
    memset(why, 'x', sizeof(why));
    r = hc_classify(&a, why, sizeof(why));
    if (r < 0 || r >= HC_RES_COUNT || memchr(why, '\0', sizeof(why)) == NULL)
        abort();
    free(body);
    return 0;
}
