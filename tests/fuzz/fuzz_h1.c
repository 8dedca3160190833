/* libFuzzer harness: the HTTP/1.1 intake (proxy/h1.c's proxy_h1_parse():
 * http_parser with switchyard's settings and checks, as a connection runs
 * them, without sockets or calls).
 * Input: the first byte picks how the rest is fed (0: whole, else chunks of
 * 1..255 bytes, as reads would split it); the rest is what a client sent.
 * Invariants: the outcome (requests accepted, or the refusal's status, but
 * for 400 against 431, see below) is the same however the bytes are split;
 * a refusal is one of the statuses a
 * connection answers (400, 405, 426, 431, 505); no request is accepted
 * whose head exceeds the limit.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/h1.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what, int a, int b)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s (%d, %d)\n", what, a, b);
        abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct proxy_h1_limits whole = {.max_header_bytes = 2048, .chunk = 0};
    struct proxy_h1_limits split = whole;
    uint8_t *copy;
    int sw, ss, rw, rs;

    if (size < 1)
        return 0;
    split.chunk = data[0];
    /* A copy of exactly the input, so that reading past it is caught. */
    copy = malloc(size - 1 ? size - 1 : 1);
    if (copy == NULL)
        abort();
    memcpy(copy, data + 1, size - 1);
    rw = proxy_h1_parse(copy, size - 1, &whole, &sw);
    rs = proxy_h1_parse(copy, size - 1, &split, &ss);
    check(rw == rs, "requests accepted differ when split", rw, rs);
    /* http_parser reports header bytes at the end of a field or of the bytes
     * it was given: split input reaches the size limit (431) before a bad
     * byte later in the same field (400) that whole input meets first. Both
     * refuse; any other difference is a bug. */
    check(sw == ss || ((sw == 400 || sw == 431) && (ss == 400 || ss == 431)),
          "refusal status differs when split", sw, ss);
    if (rw < 0)
        check(sw == 400 || sw == 405 || sw == 426 || sw == 431 || sw == 505,
              "unexpected refusal status", sw, 0);
    else
        check(sw == 0, "status set on success", sw, 0);
    free(copy);
    return 0;
}
