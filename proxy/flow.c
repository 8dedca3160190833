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
}

size_t proxy_flow_pending(const struct proxy_flow *f)
{
    return evbuffer_get_length(f->buf);
}

void proxy_flow_write(struct proxy_flow *f, struct evbuffer *out, size_t n)
{
    size_t c;

    if (n == 0)
        return;
    evbuffer_remove_buffer(f->buf, out, n);
    f->out += n;
    /* One source byte per byte written; whatever a transforming filter made of
     * the rest is credited once the buffer is empty. */
    c = n < f->held ? n : f->held;
    if (evbuffer_get_length(f->buf) == 0)
        c = f->held;
    f->held -= c;
    credit(f, c, true);
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
