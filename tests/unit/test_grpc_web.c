/* Unit tests of the gRPC-Web codec (proxy/filters/grpc_web_codec.c): base64
 * across chunks and padded segments, refusals, the trailer frame.
 * SPDX-License-Identifier: MIT */
#include "proxy/filters/grpc_web.h"

#include <string.h>

#include <criterion/criterion.h>

TestSuite(grpc_web, .timeout = 10);

/* Decodes |text| fed in pieces of |chunk| bytes; returns the length or -1. */
static long decode(const char *text, size_t chunk, uint8_t *out, bool *complete)
{
    struct grpc_web_b64 d = {.n = 0};
    size_t n = strlen(text);
    long w = 0;

    for (size_t off = 0; off < n; off += chunk) {
        size_t k = n - off < chunk ? n - off : chunk;
        long r = grpc_web_b64_decode(&d, (const uint8_t *)text + off, k, out + w);

        if (r < 0)
            return -1;
        w += r;
    }
    *complete = grpc_web_b64_complete(&d);
    return w;
}

Test(grpc_web, base64_in_any_chunking_and_padded_segments)
{
    /* two gRPC messages, each base64'd on its own: "abcd" (padded) then "xy" */
    static const char text[] = "AAAAAAYKBGFiY2Q=AAAAAAQKAnh5";
    static const uint8_t want[] = {0,   0, 0, 0, 6, 0x0a, 4,    'a', 'b', 'c',
                                   'd', 0, 0, 0, 0, 4,    0x0a, 2,   'x', 'y'};
    uint8_t out[64];
    bool complete;

    for (size_t chunk = 1; chunk <= sizeof(text); chunk++) {
        long n = decode(text, chunk, out, &complete);

        cr_assert_eq(n, (long)sizeof(want), "chunk %zu: %ld bytes", chunk, n);
        cr_assert_arr_eq(out, want, sizeof(want), "chunk %zu", chunk);
        cr_assert(complete);
    }
}

Test(grpc_web, base64_refusals)
{
    uint8_t out[64];
    bool complete;

    cr_assert_eq(decode("AA*A", 4, out, &complete), -1, "a character outside the alphabet");
    cr_assert_eq(decode("A===", 4, out, &complete), -1, "three padding characters");
    cr_assert_eq(decode("AA=A", 4, out, &complete), -1, "padding before data");
    cr_assert_eq(decode("=AAA", 4, out, &complete), -1, "padding first");
    cr_assert_eq(decode("AAAA\n", 4, out, &complete), -1, "a line break");
    cr_assert_eq(decode("AAAAAA", 4, out, &complete), 3, "a truncated quantum decodes what it can");
    cr_assert(!complete, "a truncated quantum is not complete");
}

Test(grpc_web, base64_encode_round_trip)
{
    uint8_t in[256], enc[GRPC_WEB_B64_ENCODED(256)], out[GRPC_WEB_B64_DECODED(352)];

    for (size_t i = 0; i < sizeof(in); i++)
        in[i] = (uint8_t)(i * 7 + 3);
    for (size_t n = 0; n <= sizeof(in); n++) {
        struct grpc_web_b64 d = {.n = 0};
        size_t e = grpc_web_b64_encode(in, n, enc);
        long w = grpc_web_b64_decode(&d, enc, e, out);

        cr_assert_eq(e, GRPC_WEB_B64_ENCODED(n));
        cr_assert_eq(w, (long)n, "%zu bytes came back as %ld", n, w);
        cr_assert(n == 0 || memcmp(in, out, n) == 0);
        cr_assert(grpc_web_b64_complete(&d));
    }
    cr_assert_eq(grpc_web_b64_encode((const uint8_t *)"hi", 2, enc), 4);
    cr_assert_arr_eq(enc, "aGk=", 4);
}

Test(grpc_web, trailer_frame)
{
    nghttp2_nv nv[] = {
        {(uint8_t *)":status", (uint8_t *)"200", 7, 3, 0},
        {(uint8_t *)"grpc-status", (uint8_t *)"0", 11, 1, 0},
        {(uint8_t *)"x-id", (uint8_t *)"b0", 4, 2, 0},
    };
    static const char body[] = "grpc-status:0\r\nx-id:b0\r\n";
    uint8_t out[64];
    size_t n = grpc_web_trailer_frame_size(nv, 3);

    cr_assert_eq(n, 5 + sizeof(body) - 1);
    cr_assert_eq(grpc_web_trailer_frame(nv, 3, out), n);
    cr_assert_eq(out[0], 0x80);
    cr_assert_eq(out[1] << 24 | out[2] << 16 | out[3] << 8 | out[4], (int)(sizeof(body) - 1));
    cr_assert_arr_eq(out + 5, body, sizeof(body) - 1);
}
