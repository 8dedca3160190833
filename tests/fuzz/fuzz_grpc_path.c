/* libFuzzer harness: the gRPC method path check (core/grpc.c,
 * grpc_path_is_canonical), against a second, deliberately naive reading of
 * the same rule.
 * Invariant: both agree on every input, and an accepted path is exactly
 * "/" NAME "/" NAME with no byte outside visible ASCII, '%', '?' or '#'.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/grpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool name_ok(const uint8_t *s, size_t n)
{
    if (n == 0 || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < '!' || s[i] > '~' || s[i] == '/' || strchr("%?#", s[i]) != NULL)
            return false;
    return true;
}

/* Split at the second '/', then check each half. */
static bool reference(const uint8_t *p, size_t n)
{
    const uint8_t *slash;

    if (n == 0 || p[0] != '/')
        return false;
    slash = memchr(p + 1, '/', n - 1);
    if (slash == NULL)
        return false;
    return name_ok(p + 1, (size_t)(slash - p - 1)) &&
           name_ok(slash + 1, (size_t)(p + n - slash - 1));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *p = malloc(size ? size : 1); /* exactly |size| bytes: overreads are caught */
    bool got, want;

    if (p == NULL)
        abort();
    memcpy(p, data, size);
    got = grpc_path_is_canonical(size ? p : NULL, size);
    want = reference(p, size);
    if (got != want) {
        fprintf(stderr,
                "fuzz check failed: grpc_path_is_canonical('%.*s') = %d, the reference says %d\n",
                (int)size, (const char *)p, got, want);
        abort();
    }
    free(p);
    return 0;
}
