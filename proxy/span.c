/* The span queues (span.h): single-producer single-consumer rings.
 * SPDX-License-Identifier: MIT */
#include "proxy/span.h"

#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

void proxy_span_ring_init(struct proxy_span_ring *r, uint32_t cap)
{
    r->slot = xcalloc(cap, sizeof(*r->slot));
    r->cap = cap;
    atomic_init(&r->head, 0);
    atomic_init(&r->tail, 0);
    atomic_init(&r->dropped, 0);
}

void proxy_span_ring_deinit(struct proxy_span_ring *r)
{
    free(r->slot);
    r->slot = NULL;
    r->cap = 0;
}

struct proxy_span *proxy_span_ring_reserve(struct proxy_span_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&r->head, memory_order_acquire);
    struct proxy_span *s;

    if (r->cap == 0 || tail - head >= r->cap) {
        atomic_fetch_add_explicit(&r->dropped, 1, memory_order_relaxed);
        return NULL;
    }
    s = &r->slot[tail % r->cap];
    memset(s, 0, offsetof(struct proxy_span, events)); /* events are filled by count */
    return s;
}

void proxy_span_ring_commit(struct proxy_span_ring *r)
{
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_relaxed);

    /* Release: the slot's contents are visible before the new tail. */
    atomic_store_explicit(&r->tail, tail + 1, memory_order_release);
}

size_t proxy_span_ring_pop(struct proxy_span_ring *r, struct proxy_span *out, size_t max)
{
    uint64_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
    uint64_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
    size_t n = 0;

    while (head + n < tail && n < max) {
        out[n] = r->slot[(head + n) % r->cap];
        n++;
    }
    /* Release: the copies are done before the producer may reuse the slots. */
    atomic_store_explicit(&r->head, head + n, memory_order_release);
    return n;
}

uint64_t proxy_span_ring_len(struct proxy_span_ring *r)
{
    return atomic_load_explicit(&r->tail, memory_order_acquire) -
           atomic_load_explicit(&r->head, memory_order_relaxed);
}
