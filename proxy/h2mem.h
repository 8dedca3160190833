/* nghttp2's allocator for switchyard's sessions: small blocks are kept for
 * reuse by the thread that frees them, so a call's few dozen header buffers,
 * streams and frames stop costing glibc's slow path (its per-thread cache
 * holds 7 blocks per size, a burst of 16 calls needs hundreds).
 * Every block carries a 16-byte header with its size class. A thread keeps at
 * most H2MEM_CACHE_MAX bytes; a cached block is poisoned under ASan, so a use
 * after free is still reported.
 * Threads: each thread has its own cache (thread-local), so no locks; a block
 * may be freed by another thread than the one that allocated it (slots too).
 * Leaf: includes nothing of proxy/.
 * SPDX-License-Identifier: MIT */
#ifndef SWITCHYARD_PROXY_H2MEM_H
#define SWITCHYARD_PROXY_H2MEM_H

#include <nghttp2/nghttp2.h>

#include <stdbool.h>
#include <stddef.h>

/* Bytes of freed blocks one thread keeps for reuse. */
#define H2MEM_CACHE_MAX (256 * 1024)

/* The page-sized and larger blocks a session allocates when it is created
 * (nghttp2 1.52: its stream map, 4 KiB, and its outgoing frame buffer, 16 KiB)
 * live in page-aligned slots of their own, so that an idle connection can
 * give their pages back to the kernel (proxy_h2mem_trim): the frame buffer's
 * when no frame is in it, the map's when it is all zero (no stream). The next
 * write faults in a zero page. Slots come from one address range reserved for
 * the process (PROT_NONE until used), so a free tells them from heap blocks
 * by address; a slot is zero when handed out (fresh, or given back when
 * freed), so calloc skips the memset. Taking and returning a slot (a few
 * times per connection) holds a mutex. */
#define H2MEM_SLOT       (20 * 1024)
#define H2MEM_SLOT_BIG   4096       /* the smallest block that gets a slot */
#define H2MEM_FRAMES_MIN (8 * 1024) /* a slotted block this large: the frame buffer */
#define H2MEM_OWNER_MAX  2

/** One session's view of the allocator: what it allocated while being
 *  created (its frame buffer). Lives as long as the session. */
struct proxy_h2mem_owner {
    nghttp2_mem mem; /* proxy_h2mem()'s functions, with this owner as user data */
    void *slots[H2MEM_OWNER_MAX];
    size_t sizes[H2MEM_OWNER_MAX];
    bool creating; /* blocks of H2MEM_SLOT_BIG or more get a slot and are noted */
    bool trimmed;  /* proxy_h2mem_trim() ran and nothing was written since */
};

/** The allocator to pass to nghttp2_session_*_new3(). Static: never freed. */
nghttp2_mem *proxy_h2mem(void);

/** Sets up |o| and returns its allocator, for nghttp2_session_*_new3();
 *  call proxy_h2mem_created() after the session is created. */
nghttp2_mem *proxy_h2mem_owner_init(struct proxy_h2mem_owner *o);

/** The session of |o| is created (or creating it failed). */
void proxy_h2mem_created(struct proxy_h2mem_owner *o);

/** Gives back the pages of |o|'s frame buffer, and of its other slotted
 *  blocks that hold only zero bytes. Only while the session has no frame in
 *  the buffer: nghttp2_session_want_write() is 0 (nothing queued, nothing
 *  half sent). Returns the bytes given back (0: nothing to give). */
size_t proxy_h2mem_trim(struct proxy_h2mem_owner *o);

/** Makes libevent allocate through the same cache (event_set_mem_functions:
 *  its buffer chains, two per message, are 1 KiB blocks glibc's own cache
 *  keeps too few of). Call first thing in main(), before libevent allocates. */
void proxy_h2mem_for_libevent(void);

/** Frees the blocks this thread keeps. Call before a thread that used the
 *  allocator ends (its cache would be lost), and at exit. */
void proxy_h2mem_release(void);

/** Bytes this thread keeps for reuse (for tests). */
size_t proxy_h2mem_cached(void);

#endif
