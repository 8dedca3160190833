/* A header block (request head, response head or trailers) as a list of
 * nghttp2_nv fields, ready to submit. Fields received from a session are held
 * as rcbufs (not copied); fields added by switchyard or copied out of a
 * session live in the block's own arena.
 * Invariant: every nv entry points either into an rcbuf the block holds a
 * reference to, into its arena, or into static storage, and stays valid until
 * the block is cleared: the arena grows by chunks and never moves, so a
 * pointer taken from a field (e.g. :path) outlives later edits.
 * Names are lowercase, as HTTP/2 wants them: a session's fields are (nghttp2
 * rejects others), h1.c lowercases what it reads, and switchyard's own names
 * are written so. be.c hands request heads to nghttp2 uncopied (be.h), and
 * nghttp2 lowercases only what it copies.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_HEAD_H
#define PROXY_HEAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <nghttp2/nghttp2.h>

/* RFC 9113 §6.5.2: the size of a header list counts 32 octets per field. */
#define PROXY_HEAD_FIELD_OVERHEAD 32

struct proxy_head_chunk;

struct proxy_head {
    nghttp2_nv *nv; /* the fields, in order */
    size_t n, cap;
    nghttp2_rcbuf **rc; /* references held */
    size_t nrc, rccap;
    struct proxy_head_chunk *chunks; /* the arena: copies, newest chunk first */
    size_t bytes;                    /* name + value + 32 per field, as RFC 9113 §6.5.2 counts */
    uint32_t edits; /* bumped by every change of the fields: whether a filter touched them */
};

/** Empties |h| (drops its rcbuf references) but keeps its arrays for reuse. */
void proxy_head_clear(struct proxy_head *h);

/** Frees what |h| holds; |h| may be reused after proxy_head_clear(). */
void proxy_head_deinit(struct proxy_head *h);

/** Appends a field received from a session, holding |name| and |value|
 *  (increfed here) until the block is cleared. The rcbufs must not outlive
 *  their session: clear the block before the session is deleted. */
void proxy_head_add_rc(struct proxy_head *h, nghttp2_rcbuf *name, nghttp2_rcbuf *value);

/** Appends a field, copying |name| and |value| into the arena. */
void proxy_head_add(struct proxy_head *h, const char *name, size_t nlen, const char *value,
                    size_t vlen);

/** Appends a field whose name and value are static strings (not copied). */
void proxy_head_add_static(struct proxy_head *h, const char *name, const char *value);

/** The first field named |name| (|nlen| bytes, lowercase), or NULL. */
const nghttp2_nv *proxy_head_get(const struct proxy_head *h, const char *name, size_t nlen);

/** Removes every field named |name|; returns how many. */
size_t proxy_head_del(struct proxy_head *h, const char *name, size_t nlen);

/** Replaces the value of every field named |name| with a copy of |value|, or
 *  appends the field when there is none; returns the field (valid until the
 *  next edit of |h|). */
nghttp2_nv *proxy_head_set(struct proxy_head *h, const char *name, size_t nlen, const char *value,
                           size_t vlen);

/** Replaces every field of |h| with copies of the |n| fields |nv| (which may
 *  point into |h|, its nv array included). Earlier pointers stay valid until
 *  the block is cleared. */
void proxy_head_replace(struct proxy_head *h, const nghttp2_nv *nv, size_t n);

/** Makes |dst| the same list of fields as |src| without copying or holding
 *  anything: |dst| points into |src| and must be cleared before |src| is.
 *  Edits to |dst| (set, add, del) copy into |dst|'s own arena and leave |src|
 *  as it is. */
void proxy_head_borrow(struct proxy_head *dst, const struct proxy_head *src);

/** Copies every field of |src| into |dst|'s arena (for fields that must
 *  outlive the session they came from). */
void proxy_head_copy(struct proxy_head *dst, const struct proxy_head *src);

/** Whether nv field |f| is named |name| (|nlen| bytes). */
static inline bool proxy_nv_is(const nghttp2_nv *f, const char *name, size_t nlen)
{
    return f->namelen == nlen && memcmp(f->name, name, nlen) == 0;
}

#endif
