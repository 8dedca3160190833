/* Body buffers and the per-stream credit rule (flow.h).
 * SPDX-License-Identifier: MIT */
#include "proxy/flow.h"

#include <event2/buffer.h>

#include "core/alloc.h"

void proxy_flow_init(struct proxy_flow *f)
{
    *f = (struct proxy_flow){0};
    f->buf = evbuffer_new();
    if (f->buf == NULL)
        core_oom();
}

void proxy_flow_deinit(struct proxy_flow *f)
{
    if (f->buf != NULL)
        evbuffer_free(f->buf);
    f->buf = NULL;
}

void proxy_flow_set_src(struct proxy_flow *f, const struct proxy_flow_src_ops *ops, void *src)
{
    f->ops = src != NULL ? ops : NULL;
    f->src = src;
    if (src == NULL)
        f->held = 0; /* nobody left to credit */
}

static void credit(struct proxy_flow *f, size_t n, bool stream)
{
    if (n > 0 && f->src != NULL)
        f->ops->credit(f->src, n, stream);
}

void proxy_flow_received(struct proxy_flow *f, size_t n)
{
    f->in += n;
    credit(f, n, false);
    if (f->src != NULL)
        f->held += n;
}

void proxy_flow_add(struct proxy_flow *f, const void *data, size_t len)
{
    if (len > 0 && evbuffer_add(f->buf, data, len) != 0)
        core_oom();
    f->added += len;
}

size_t proxy_flow_pending(const struct proxy_flow *f)
{
    return evbuffer_get_length(f->buf);
}

/* |n| bytes were written on for the first time: one source byte per byte;
 * whatever a transforming filter made of the rest is credited once every
 * added byte has been written. */
static void credit_written(struct proxy_flow *f, size_t n)
{
    size_t c = n < f->held ? n : f->held;

    if (f->out == f->added)
        c = f->held;
    f->held -= c;
    credit(f, c, true);
}

void proxy_flow_write(struct proxy_flow *f, struct evbuffer *out, size_t n)
{
    if (n == 0)
        return;
    evbuffer_remove_buffer(f->buf, out, n);
    f->base += n;
    f->out += n;
    credit_written(f, n);
}

void proxy_flow_keep(struct proxy_flow *f)
{
    f->keep = true;
}

void proxy_flow_unkeep(struct proxy_flow *f, uint64_t from)
{
    if (!f->keep)
        return;
    f->keep = false;
    if (from > f->base) {
        evbuffer_drain(f->buf, (size_t)(from - f->base));
        f->base = from;
    }
    if (f->out < from)
        f->out = from;
}

size_t proxy_flow_avail_at(const struct proxy_flow *f, uint64_t off)
{
    return off >= f->base && off < f->added ? (size_t)(f->added - off) : 0;
}

void proxy_flow_write_at(struct proxy_flow *f, uint64_t off, struct evbuffer *out, size_t n)
{
    struct evbuffer_ptr pos;
    uint64_t end = off + n;

    if (n == 0)
        return;
    if (!f->keep) {
        proxy_flow_write(f, out, n); /* |off| is the buffer's start */
        return;
    }
    /* Replay: copy (the second copy of these bytes, the price of being able
     * to send them again), keep the originals. */
    evbuffer_ptr_set(f->buf, &pos, (size_t)(off - f->base), EVBUFFER_PTR_SET);
    while (n > 0) {
        struct evbuffer_iovec v[4];
        int k = evbuffer_peek(f->buf, (ev_ssize_t)n, &pos, v, 4);

        if (k <= 0)
            break;
        for (int i = 0; i < k && i < 4 && n > 0; i++) {
            size_t take = v[i].iov_len < n ? v[i].iov_len : n;

            if (evbuffer_add(out, v[i].iov_base, take) != 0)
                core_oom();
            n -= take;
            evbuffer_ptr_set(f->buf, &pos, take, EVBUFFER_PTR_ADD);
        }
    }
    if (end > f->out) {
        size_t fresh = (size_t)(end - f->out);

        f->out = end;
        credit_written(f, fresh);
    }
}

void proxy_flow_credit_held(struct proxy_flow *f, size_t n)
{
    size_t c = n < f->held ? n : f->held;

    f->held -= c;
    credit(f, c, true);
}

void proxy_flow_release(struct proxy_flow *f)
{
    size_t c = f->held;

    evbuffer_drain(f->buf, evbuffer_get_length(f->buf));
    f->base = f->added;
    f->held = 0;
    credit(f, c, true);
}

void proxy_flow_reset(struct proxy_flow *f)
{
    struct evbuffer *b = f->buf;

    evbuffer_drain(b, evbuffer_get_length(b));
    *f = (struct proxy_flow){0};
    f->buf = b;
}
