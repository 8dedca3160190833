/* nghttp2's allocator with a per-thread cache of small blocks (h2mem.h).
 * SPDX-License-Identifier: MIT */
#include "proxy/h2mem.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <event2/event.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* Classes of 16-byte steps up to 512 bytes, then 1 and 2 KiB (libevent's
 * buffer chains are powers of two from 1 KiB); larger blocks are not cached
 * (nor rounded up: nghttp2's 2,928-byte session struct would take 4 KiB, and
 * an idle connection 1.2 KiB more). */
#define STEP      16u
#define NSTEPPED  32u
#define NCLASSES  34u
#define CLASS_MAX 2048u
#define HDR       16u

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
    return cls < NSTEPPED ? ((size_t)cls + 1) * STEP
                          : (size_t)(NSTEPPED * STEP) << (cls - NSTEPPED + 1);
}

/* The class of a block of |size| bytes (at most CLASS_MAX). */
static uint32_t class_of(size_t size)
{
    if (size <= NSTEPPED * STEP)
        return size == 0 ? 0 : (uint32_t)((size - 1) / STEP);
    return size <= 1024 ? NSTEPPED : NSTEPPED + 1;
}

/* ---- slots (frame buffers), see h2mem.h ---- */

/* Address space reserved for slots (not memory: PROT_NONE until used). */
#define ARENA_BYTES ((size_t)4 << 30)
#define ARENA_SLOTS (ARENA_BYTES / H2MEM_SLOT)
/* Slots made usable (mprotect) at a time. */
#define SLOT_STEP 64u

static struct {
    pthread_mutex_t mu;
    pthread_once_t once;
    _Atomic(uintptr_t) lo; /* 0: no arena (not reserved yet, or reserving failed) */
    size_t ready;          /* slots usable so far */
    size_t next;           /* slots handed out at least once */
    uint32_t *free;        /* returned slots */
    size_t nfree, freecap;
} arena = {.mu = PTHREAD_MUTEX_INITIALIZER, .once = PTHREAD_ONCE_INIT};

static void arena_reserve(void)
{
    void *p =
        mmap(NULL, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

    if (p != MAP_FAILED)
        atomic_store_explicit(&arena.lo, (uintptr_t)p, memory_order_release);
}

static bool is_slot(const void *ptr)
{
    uintptr_t lo = atomic_load_explicit(&arena.lo, memory_order_acquire);

    return lo != 0 && (uintptr_t)ptr - lo < ARENA_BYTES;
}

/* The slot paths run once per connection: out of line, so that the calls'
 * small blocks do not pay for their registers. */
#define COLD __attribute__((noinline, cold))

/* A slot, or NULL (no arena, or it is full: the caller uses the heap). */
static COLD void *slot_take(void)
{
    uintptr_t lo;
    void *p = NULL;

    pthread_once(&arena.once, arena_reserve);
    lo = atomic_load_explicit(&arena.lo, memory_order_acquire);
    if (lo == 0)
        return NULL;
    pthread_mutex_lock(&arena.mu);
    if (arena.nfree > 0) {
        p = (char *)lo + (size_t)arena.free[--arena.nfree] * H2MEM_SLOT;
    } else if (arena.next < ARENA_SLOTS) {
        if (arena.next == arena.ready &&
            mprotect((char *)lo + arena.ready * H2MEM_SLOT, (size_t)SLOT_STEP * H2MEM_SLOT,
                     PROT_READ | PROT_WRITE) == 0)
            arena.ready += SLOT_STEP;
        if (arena.next < arena.ready)
            p = (char *)lo + arena.next++ * H2MEM_SLOT;
    }
    pthread_mutex_unlock(&arena.mu);
    return p;
}

static COLD void slot_give(void *ptr, struct proxy_h2mem_owner *o)
{
    uintptr_t lo = atomic_load_explicit(&arena.lo, memory_order_acquire);

    for (size_t i = 0; o != NULL && i < H2MEM_OWNER_MAX; i++) {
        if (o->slots[i] == ptr)
            o->slots[i] = NULL;
    }
    /* Zero for the next owner (its calloc skips the memset), and no memory
     * held by a slot nobody uses. */
    if (madvise(ptr, H2MEM_SLOT, MADV_DONTNEED) != 0)
        memset(ptr, 0, H2MEM_SLOT);
    pthread_mutex_lock(&arena.mu);
    if (arena.nfree == arena.freecap) {
        size_t cap = arena.freecap == 0 ? 256 : arena.freecap * 2;
        uint32_t *f = realloc(arena.free, cap * sizeof(*f));

        if (f == NULL) { /* the slot stays out of use: nothing breaks */
            pthread_mutex_unlock(&arena.mu);
            return;
        }
        arena.free = f;
        arena.freecap = cap;
    }
    arena.free[arena.nfree++] = (uint32_t)(((uintptr_t)ptr - lo) / H2MEM_SLOT);
    pthread_mutex_unlock(&arena.mu);
}

/* A slot for |size| bytes noted in |o| (zero bytes), or NULL (the heap then). */
static COLD void *owner_slot(struct proxy_h2mem_owner *o, size_t size)
{
    for (size_t i = 0; i < H2MEM_OWNER_MAX; i++) {
        if (o->slots[i] == NULL) {
            o->sizes[i] = size;
            return o->slots[i] = slot_take();
        }
    }
    return NULL;
}

static bool wants_slot(const struct proxy_h2mem_owner *o, size_t size)
{
    return o != NULL && o->creating && size >= H2MEM_SLOT_BIG && size <= H2MEM_SLOT;
}

static void *h2_malloc(size_t size, void *ud)
{
    struct proxy_h2mem_owner *o = ud;
    uint32_t cls;
    struct hdr *h;

    if (wants_slot(o, size)) {
        void *p = owner_slot(o, size);

        if (p != NULL)
            return p;
    }
    if (size <= CLASS_MAX) {
        cls = class_of(size);
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

    if (ptr == NULL)
        return;
    if (is_slot(ptr)) {
        slot_give(ptr, ud);
        return;
    }
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
    if (wants_slot(ud, n * size) && (p = owner_slot(ud, n * size)) != NULL)
        return p; /* zero already: its pages stay untouched until written */
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
    if (is_slot(ptr)) {
        if (size <= H2MEM_SLOT)
            return ptr;
        if ((q = h2_malloc(size, NULL)) == NULL)
            return NULL;
        memcpy(q, ptr, H2MEM_SLOT);
        h2_free(ptr, ud);
        return q;
    }
    h = (struct hdr *)ptr - 1;
    have = h->cls < NCLASSES ? class_bytes(h->cls) : h->u.size;
    if (size <= have && (h->cls < NCLASSES || size > CLASS_MAX))
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

static void *lev_malloc(size_t n)
{
    return h2_malloc(n, NULL);
}

static void *lev_realloc(void *p, size_t n)
{
    return h2_realloc(p, n, NULL);
}

static void lev_free(void *p)
{
    h2_free(p, NULL);
}

void proxy_h2mem_for_libevent(void)
{
    event_set_mem_functions(lev_malloc, lev_realloc, lev_free);
}

nghttp2_mem *proxy_h2mem_owner_init(struct proxy_h2mem_owner *o)
{
    *o = (struct proxy_h2mem_owner){.mem = mem, .creating = true};
    o->mem.mem_user_data = o; /* nghttp2 keeps a copy of |mem| in the session */
    return &o->mem;
}

void proxy_h2mem_created(struct proxy_h2mem_owner *o)
{
    o->creating = false;
}

static bool all_zero(const void *p, size_t n)
{
    const uint64_t *w = p; /* a slot is page-aligned */
    uint64_t acc = 0;

    for (size_t i = 0; i < n / 8; i++)
        acc |= w[i];
    for (size_t i = n & ~(size_t)7; i < n; i++)
        acc |= ((const uint8_t *)p)[i];
    return acc == 0;
}

size_t proxy_h2mem_trim(struct proxy_h2mem_owner *o)
{
    size_t n = 0;

    if (o->trimmed)
        return 0;
    for (size_t i = 0; i < H2MEM_OWNER_MAX; i++) {
        /* Zero pages may replace a block whose content is dead (the frame
         * buffer, no frame in it) or zero already. A slot is page-aligned
         * and H2MEM_SLOT long; past the block's end it was never written. */
        if (o->slots[i] == NULL ||
            (o->sizes[i] < H2MEM_FRAMES_MIN && !all_zero(o->slots[i], o->sizes[i])))
            continue;
        if (madvise(o->slots[i], H2MEM_SLOT, MADV_DONTNEED) == 0)
            n += H2MEM_SLOT;
    }
    o->trimmed = true;
    return n;
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
