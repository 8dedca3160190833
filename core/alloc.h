/* Allocation helpers: switchyard is an application, so running out of memory
 * aborts with a message instead of threading NULL checks through every caller
 * (h2o and redis do the same).
 * Invariant: none of these ever returns NULL.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_ALLOC_H
#define CORE_ALLOC_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline void core_oom(void)
{
    fputs("switchyard: out of memory\n", stderr);
    abort();
}

/** calloc() that aborts on failure; a zero count or size still returns a
 *  unique pointer. */
static inline void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL)
        core_oom();
    return p;
}

/** reallocarray() that aborts on failure. */
static inline void *xreallocarray(void *ptr, size_t n, size_t size)
{
    void *p = reallocarray(ptr, n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL)
        core_oom();
    return p;
}

/** strndup() that aborts on failure. */
static inline char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);

    if (d == NULL)
        core_oom();
    return d;
}

static inline char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

#endif
