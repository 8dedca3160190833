/* libFuzzer harness: grpc-timeout parsing (core/grpc.c), fed arbitrary header
 * values.
 * Invariant: a value is accepted only if it has the grammar of PROTOCOL-HTTP2
 * (TimeoutValue: 1 to 8 ASCII digits; TimeoutUnit: one of H M S m u n), and
 * then the milliseconds are the value's, rounded up (the largest, 99999999H,
 * fits in 64 bits: no cap).
 * SPDX-License-Identifier: MIT */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The expected milliseconds of an accepted value, computed independently. */
static uint64_t expect_ms(const uint8_t *v, size_t len)
{
    uint64_t n = 0;

    for (size_t i = 0; i + 1 < len; i++)
        n = n * 10 + (uint64_t)(v[i] - '0');
    switch (v[len - 1]) {
    case 'H':
        return n * 3600 * 1000;
    case 'M':
        return n * 60 * 1000;
    case 'S':
        return n * 1000;
    case 'm':
        return n;
    case 'u':
        return n / 1000 + (n % 1000 != 0);
    default: /* 'n' */
        return n / 1000000 + (n % 1000000 != 0);
    }
}

static int fits_grammar(const uint8_t *v, size_t len)
{
    if (len < 2 || len > 9 || memchr("HMSmun", v[len - 1], 6) == NULL || v[len - 1] == '\0')
        return 0;
    for (size_t i = 0; i + 1 < len; i++)
        if (v[i] < '0' || v[i] > '9')
            return 0;
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* A copy of exactly |size| bytes, so that reading past it is caught. */
    uint8_t *v = malloc(size ? size : 1);
    uint64_t ms = 0xdeadbeef;
    int rc;

    if (v == NULL)
        abort();
    memcpy(v, data, size);
    rc = grpc_timeout_parse(v, size, &ms);
    if (rc == 0) {
        uint64_t want;

        if (!fits_grammar(v, size)) {
            fprintf(stderr, "fuzz check failed: grpc_timeout_parse accepted '%.*s'\n", (int)size,
                    (const char *)v);
            abort();
        }
        want = expect_ms(v, size);
        if (ms != want) {
            fprintf(stderr,
                    "fuzz check failed: grpc_timeout_parse('%.*s') = %llu ms, expected %llu\n",
                    (int)size, (const char *)v, (unsigned long long)ms, (unsigned long long)want);
            abort();
        }
    } else if (rc != -1) {
        abort();
    }
    free(v);
    return 0;
}
