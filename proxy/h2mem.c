/* nghttp2's allocator with a per-thread cache of small blocks (h2mem.h).
 * SPDX-License-Identifier: MIT */
#include "proxy/h2mem.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Classes of 16-byte steps up to 512 bytes; larger blocks are not cached. */
#define STEP     16u
#define NCLASSES 32u
#define HDR      16u

/* The header before every block: its class (NCLASSES: not cached), then,
 * while cached, the next cached block of its class, else for a large block
 * its size. */
struct hdr {
    uint32_t cls;
    uint32_t pad;
    union {
        struct hdr *next;
        size_t size;
    } u;
};

_Static_assert(sizeof(struct hdr) == HDR, "the header keeps blocks 16-byte aligned");

static _Thread_local struct {
    struct hdr *head[NCLASSES];
    size_t bytes;
} cache;

static size_t class_bytes(uint32_t cls)
{
    return ((size_t)cls + 1) * STEP;
}

static void *h2_malloc(size_t size, void *ud)
{
    uint32_t cls = size == 0 ? 0 : (uint32_t)((size - 1) / STEP);
    struct hdr *h;

    (void)ud;
    if (size <= (size_t)NCLASSES * STEP) {
        h = cache.head[cls];
        if (h != NULL) {
            UNPOISON(h + 1, class_bytes(cls));
            cache.head[cls] = h->u.next;
            cache.bytes -= class_bytes(cls);
            return h + 1;
        }
        h = malloc(HDR + class_bytes(cls));
        if (h == NULL)
            return NULL;
        h->cls = cls;
        return h + 1;
    }
    if (size > SIZE_MAX - HDR || (h = malloc(HDR + size)) == NULL)
        return NULL;
    h->cls = NCLASSES;
    h->u.size = size;
    return h + 1;
}

static void h2_free(void *ptr, void *ud)
{
    struct hdr *h;

    (void)ud;
    if (ptr == NULL)
        return;
    h = (struct hdr *)ptr - 1;
    if (h->cls < NCLASSES && cache.bytes + class_bytes(h->cls) <= H2MEM_CACHE_MAX) {
        h->u.next = cache.head[h->cls];
        cache.head[h->cls] = h;
        cache.bytes += class_bytes(h->cls);
        POISON(ptr, class_bytes(h->cls));
        return;
    }
    free(h);
}

static void *h2_calloc(size_t n, size_t size, void *ud)
{
    void *p;

    if (size != 0 && n > SIZE_MAX / size)
        return NULL;
    p = h2_malloc(n * size, ud);
    if (p != NULL)
        memset(p, 0, n * size);
    return p;
}

static void *h2_realloc(void *ptr, size_t size, void *ud)
{
    struct hdr *h;
    size_t have;
    void *q;

    if (ptr == NULL)
        return h2_malloc(size, ud);
    h = (struct hdr *)ptr - 1;
    have = h->cls < NCLASSES ? class_bytes(h->cls) : h->u.size;
    if (size <= have && (h->cls < NCLASSES || size > (size_t)NCLASSES * STEP))
        return ptr; /* fits where it is */
    q = h2_malloc(size, ud);
    if (q == NULL)
        return NULL;
    memcpy(q, ptr, have < size ? have : size);
    h2_free(ptr, ud);
    return q;
}

static nghttp2_mem mem = {
    .mem_user_data = NULL,
    .malloc = h2_malloc,
    .free = h2_free,
    .calloc = h2_calloc,
    .realloc = h2_realloc,
};

nghttp2_mem *proxy_h2mem(void)
{
    return &mem;
}

void proxy_h2mem_release(void)
{
    for (uint32_t i = 0; i < NCLASSES; i++) {
        while (cache.head[i] != NULL) {
            struct hdr *h = cache.head[i];

            UNPOISON(h + 1, class_bytes(i));
            cache.head[i] = h->u.next;
            free(h);
        }
    }
    cache.bytes = 0;
}

size_t proxy_h2mem_cached(void)
{
    return cache.bytes;
}
