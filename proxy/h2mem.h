/* nghttp2's allocator for switchyard's sessions: small blocks are kept for
 * reuse by the thread that frees them, so a call's few dozen header buffers,
 * streams and frames stop costing glibc's slow path (its per-thread cache
 * holds 7 blocks per size, a burst of 16 calls needs hundreds).
 * Every block carries a 16-byte header with its size class. A thread keeps at
 * most H2MEM_CACHE_MAX bytes; a cached block is poisoned under ASan, so a use
 * after free is still reported.
 * Threads: each thread has its own cache (thread-local), so no locks; a block
 * may be freed by another thread than the one that allocated it.
 * Leaf: includes nothing of proxy/.
 * SPDX-License-Identifier: MIT */
#ifndef SWITCHYARD_PROXY_H2MEM_H
#define SWITCHYARD_PROXY_H2MEM_H

#include <nghttp2/nghttp2.h>

/* Bytes of freed blocks one thread keeps for reuse. */
#define H2MEM_CACHE_MAX (256 * 1024)

/** The allocator to pass to nghttp2_session_*_new3(). Static: never freed. */
nghttp2_mem *proxy_h2mem(void);

/** Frees the blocks this thread keeps. Call before a thread that used the
 *  allocator ends (its cache would be lost), and at exit. */
void proxy_h2mem_release(void);

/** Bytes this thread keeps for reuse (for tests). */
size_t proxy_h2mem_cached(void);

#endif
