/* Header blocks: rcbuf references and an arena behind an nghttp2_nv array.
 * SPDX-License-Identifier: MIT */
#include "proxy/head.h"

#include "core/alloc.h"

struct proxy_head_chunk {
    struct proxy_head_chunk *next;
    size_t size, used;
    char data[];
};

void proxy_head_clear(struct proxy_head *h)
{
    struct proxy_head_chunk *keep = h->chunks;

    for (size_t i = 0; i < h->nrc; i++)
        nghttp2_rcbuf_decref(h->rc[i]);
    h->nrc = 0;
    h->n = 0;
    h->bytes = 0;
    h->edits++;
    /* The newest chunk is the largest: keep it for the next use of the block. */
    if (keep != NULL) {
        struct proxy_head_chunk *c = keep->next;

        while (c != NULL) {
            struct proxy_head_chunk *next = c->next;

            free(c);
            c = next;
        }
        keep->next = NULL;
        keep->used = 0;
    }
}

void proxy_head_deinit(struct proxy_head *h)
{
    proxy_head_clear(h);
    free(h->nv);
    free(h->rc);
    free(h->chunks);
    *h = (struct proxy_head){0};
}

static nghttp2_nv *push(struct proxy_head *h)
{
    h->edits++;
    if (h->n == h->cap) {
        h->cap = h->cap == 0 ? 16 : h->cap * 2;
        h->nv = xreallocarray(h->nv, h->cap, sizeof(*h->nv));
    }
    return &h->nv[h->n++];
}

void proxy_head_add_rc(struct proxy_head *h, nghttp2_rcbuf *name, nghttp2_rcbuf *value)
{
    nghttp2_vec n = nghttp2_rcbuf_get_buf(name);
    nghttp2_vec v = nghttp2_rcbuf_get_buf(value);

    if (h->nrc + 2 > h->rccap) {
        h->rccap = h->rccap == 0 ? 32 : h->rccap * 2;
        h->rc = xreallocarray(h->rc, h->rccap, sizeof(*h->rc));
    }
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
    h->rc[h->nrc++] = name;
    h->rc[h->nrc++] = value;
    *push(h) = (nghttp2_nv){n.base, v.base, n.len, v.len, NGHTTP2_NV_FLAG_NONE};
    h->bytes += n.len + v.len + PROXY_HEAD_FIELD_OVERHEAD;
}

/* |len| arena bytes that never move: a new chunk when the newest is full. */
static char *arena_take(struct proxy_head *h, size_t len)
{
    struct proxy_head_chunk *c = h->chunks;

    if (c == NULL || c->size - c->used < len) {
        size_t size = c == NULL ? 512 : c->size * 2;

        while (size < len)
            size *= 2;
        c = malloc(sizeof(*c) + size);
        if (c == NULL)
            core_oom();
        c->size = size;
        c->used = 0;
        c->next = h->chunks;
        h->chunks = c;
    }
    c->used += len;
    return c->data + c->used - len;
}

void proxy_head_add(struct proxy_head *h, const char *name, size_t nlen, const char *value,
                    size_t vlen)
{
    char *p = arena_take(h, nlen + vlen + 2);

    memcpy(p, name, nlen);
    p[nlen] = '\0';
    memcpy(p + nlen + 1, value, vlen);
    p[nlen + 1 + vlen] = '\0';
    *push(h) =
        (nghttp2_nv){(uint8_t *)p, (uint8_t *)p + nlen + 1, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    h->bytes += nlen + vlen + PROXY_HEAD_FIELD_OVERHEAD;
}

void proxy_head_add_static(struct proxy_head *h, const char *name, const char *value)
{
    size_t nlen = strlen(name), vlen = strlen(value);

    *push(h) = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, nlen, vlen, NGHTTP2_NV_FLAG_NONE};
    h->bytes += nlen + vlen + PROXY_HEAD_FIELD_OVERHEAD;
}

const nghttp2_nv *proxy_head_get(const struct proxy_head *h, const char *name, size_t nlen)
{
    for (size_t i = 0; i < h->n; i++) {
        if (proxy_nv_is(&h->nv[i], name, nlen))
            return &h->nv[i];
    }
    return NULL;
}

size_t proxy_head_del(struct proxy_head *h, const char *name, size_t nlen)
{
    size_t k = 0, gone = 0;

    /* The memory behind removed fields stays until the block is cleared. */
    h->edits++;
    for (size_t i = 0; i < h->n; i++) {
        if (proxy_nv_is(&h->nv[i], name, nlen)) {
            h->bytes -= h->nv[i].namelen + h->nv[i].valuelen + PROXY_HEAD_FIELD_OVERHEAD;
            gone++;
            continue;
        }
        h->nv[k++] = h->nv[i];
    }
    h->n = k;
    return gone;
}

nghttp2_nv *proxy_head_set(struct proxy_head *h, const char *name, size_t nlen, const char *value,
                           size_t vlen)
{
    size_t first = h->n, k;
    char *p;

    for (size_t i = 0; i < h->n; i++) {
        if (proxy_nv_is(&h->nv[i], name, nlen)) {
            first = i;
            break;
        }
    }
    if (first == h->n) {
        proxy_head_add(h, name, nlen, value, vlen);
        return &h->nv[h->n - 1];
    }
    /* In place, so pseudo-header fields stay first (RFC 9113 §8.3). */
    h->edits++;
    p = arena_take(h, vlen + 1);
    memcpy(p, value, vlen);
    p[vlen] = '\0';
    h->bytes = h->bytes - h->nv[first].valuelen + vlen;
    h->nv[first].value = (uint8_t *)p;
    h->nv[first].valuelen = vlen;
    k = first + 1;
    for (size_t i = first + 1; i < h->n; i++) {
        if (proxy_nv_is(&h->nv[i], name, nlen)) {
            h->bytes -= h->nv[i].namelen + h->nv[i].valuelen + PROXY_HEAD_FIELD_OVERHEAD;
            continue;
        }
        h->nv[k++] = h->nv[i];
    }
    h->n = k;
    return &h->nv[first];
}

void proxy_head_copy(struct proxy_head *dst, const struct proxy_head *src)
{
    for (size_t i = 0; i < src->n; i++)
        proxy_head_add(dst, (const char *)src->nv[i].name, src->nv[i].namelen,
                       (const char *)src->nv[i].value, src->nv[i].valuelen);
}

void proxy_head_replace(struct proxy_head *h, const nghttp2_nv *nv, size_t n)
{
    nghttp2_nv *old = h->nv;

    /* A new array: |nv| may be the current one. Its strings stay valid (the
     * arena never moves), so they are copied from where they are. */
    h->nv = NULL;
    h->n = h->cap = 0;
    h->bytes = 0;
    h->edits++;
    for (size_t i = 0; i < n; i++)
        proxy_head_add(h, (const char *)nv[i].name, nv[i].namelen, (const char *)nv[i].value,
                       nv[i].valuelen);
    free(old);
}

void proxy_head_borrow(struct proxy_head *dst, const struct proxy_head *src)
{
    proxy_head_clear(dst);
    if (src->n > dst->cap) {
        dst->cap = src->n;
        dst->nv = xreallocarray(dst->nv, dst->cap, sizeof(*dst->nv));
    }
    memcpy(dst->nv, src->nv, src->n * sizeof(*src->nv));
    dst->edits++;
    dst->n = src->n;
    dst->bytes = src->bytes;
}
