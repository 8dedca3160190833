/* libFuzzer harness: the gRPC-Web codec (proxy/filters/grpc_web_codec.c).
 * Input: the first byte picks the chunk size (1..64) the base64 text is fed
 * in; the rest is the body of an application/grpc-web-text request.
 * Invariants: decoding is the same whether the text comes whole or in
 * chunks (quanta split across chunks, padded segments); what decodes, once
 * encoded again, decodes to the same bytes; the input as raw bytes survives
 * encode then decode; a trailer frame built from fields cut out of the input
 * has the size announced, flag 0x80 and the length in its prefix.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/filters/grpc_web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct grpc_web_b64 whole = {.n = 0}, parts = {.n = 0}, again = {.n = 0};
    size_t chunk, n;
    uint8_t *a, *b, *enc, *c;
    long wa, wb = 0, wc;
    bool bad = false;

    if (size < 1)
        return 0;
    chunk = (size_t)(data[0] % 64) + 1;
    data++;
    size--;
    a = malloc(GRPC_WEB_B64_DECODED(size));
    b = malloc(GRPC_WEB_B64_DECODED(size) + 64);
    enc = malloc(GRPC_WEB_B64_ENCODED(size) + 4);
    c = malloc(GRPC_WEB_B64_DECODED(GRPC_WEB_B64_ENCODED(size)) + 4);
    check(a && b && enc && c, "malloc");
    wa = grpc_web_b64_decode(&whole, data, size, a);
    for (size_t off = 0; off < size && !bad; off += chunk) {
        n = size - off < chunk ? size - off : chunk;
        long w = grpc_web_b64_decode(&parts, data + off, n, b + wb);

        if (w < 0)
            bad = true;
        else
            wb += w;
    }
    check((wa < 0) == bad, "whole and chunked decoding disagree on validity");
    if (wa >= 0) {
        check(wa == wb && memcmp(a, b, (size_t)wa) == 0, "chunked decoding differs");
        check(grpc_web_b64_complete(&whole) == grpc_web_b64_complete(&parts), "end state differs");
        n = grpc_web_b64_encode(a, (size_t)wa, enc);
        check(n == GRPC_WEB_B64_ENCODED((size_t)wa), "encoded length");
        wc = grpc_web_b64_decode(&again, enc, n, c);
        check(wc == wa && memcmp(a, c, (size_t)wa) == 0 && grpc_web_b64_complete(&again),
              "decode(encode(decoded)) differs");
    }
    /* raw bytes round trip */
    n = grpc_web_b64_encode(data, size, enc);
    memset(&again, 0, sizeof(again));
    wc = grpc_web_b64_decode(&again, enc, n, c);
    check(wc == (long)size && memcmp(c, data, size) == 0, "decode(encode(bytes)) differs");
    /* a trailer frame from fields cut out of the input at ':' and '\n' */
    {
        nghttp2_nv nv[16];
        size_t nf = 0, start = 0, fl, len;
        uint8_t *frame;

        for (size_t i = 0; i <= size && nf < 16; i++) {
            if (i == size || data[i] == '\n') {
                const uint8_t *colon = memchr(data + start, ':', i - start);

                if (colon != NULL) {
                    nv[nf++] = (nghttp2_nv){(uint8_t *)data + start, (uint8_t *)colon + 1,
                                            (size_t)(colon - data - start),
                                            (size_t)(data + i - colon - 1), 0};
                }
                start = i + 1;
            }
        }
        fl = grpc_web_trailer_frame_size(nv, nf);
        frame = malloc(fl);
        check(frame != NULL, "malloc");
        len = grpc_web_trailer_frame(nv, nf, frame);
        check(len == fl, "trailer frame size");
        check(frame[0] == 0x80, "trailer frame flag");
        check(((size_t)frame[1] << 24 | (size_t)frame[2] << 16 | (size_t)frame[3] << 8 |
               frame[4]) == len - 5,
              "trailer frame length prefix");
        free(frame);
    }
    free(a);
    free(b);
    free(enc);
    free(c);
    return 0;
}
