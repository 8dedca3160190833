/* Attempts: one backend stream of a call (attempt.h).
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "attempt"
#include "proxy/attempt.h"

#include <stddef.h>

#include "core/log.h"

static const char *const outcome_names[PROXY_ATTEMPT_OUTCOME_COUNT] = {
    "complete", "not_sent", "refused", "reset", "lost",
};

const char *proxy_attempt_outcome_name(enum proxy_attempt_outcome o)
{
    return o < PROXY_ATTEMPT_OUTCOME_COUNT ? outcome_names[o] : "?";
}

static struct proxy_attempt *of_stream(void *ctx)
{
    return ctx;
}

struct proxy_attempt_result proxy_attempt_result_of(enum proxy_be_end end, uint32_t h2err,
                                                    const char *why)
{
    static const enum proxy_attempt_outcome map[PROXY_BE_END_COUNT] = {
        [PROXY_BE_END_COMPLETE] = PROXY_ATTEMPT_COMPLETE,
        [PROXY_BE_END_NOT_SENT] = PROXY_ATTEMPT_NOT_SENT,
        [PROXY_BE_END_REFUSED] = PROXY_ATTEMPT_REFUSED,
        [PROXY_BE_END_RESET] = PROXY_ATTEMPT_RESET,
        [PROXY_BE_END_LOST] = PROXY_ATTEMPT_LOST,
    };
    enum proxy_attempt_outcome o = end < PROXY_BE_END_COUNT ? map[end] : PROXY_ATTEMPT_LOST;

    return (struct proxy_attempt_result){
        .outcome = o,
        /* What was never sent, and what REFUSED_STREAM says was not
         * processed (RFC 9113 §8.7), is the only thing known unseen. */
        .reached = o != PROXY_ATTEMPT_NOT_SENT && o != PROXY_ATTEMPT_REFUSED,
        .h2err = h2err,
        .why = why,
    };
}

/* Ends |a| and reports |r|: the last thing its owner hears. */
static void finish_with(struct proxy_attempt *a, const struct proxy_attempt_result *r)
{
    a->state = PROXY_ATTEMPT_IDLE;
    if (a->pool != NULL)
        proxy_pool_attempt_end(a->pool);
    a->pool = NULL;
    a->req = NULL;
    a->ops->on_end(a, r);
}

/* Ends |a| before any stream existed (the pool could not serve it). */
static void finish_unsent(struct proxy_attempt *a, const char *why)
{
    struct proxy_attempt_result r = proxy_attempt_result_of(PROXY_BE_END_NOT_SENT, 0, why);

    finish_with(a, &r);
}

/* ---- what the stream reports ---- */

static void on_sent(void *ctx)
{
    struct proxy_attempt *a = of_stream(ctx);

    if (a->state == PROXY_ATTEMPT_OPEN)
        a->state = PROXY_ATTEMPT_SENT;
}

static void on_head(void *ctx, struct proxy_head *h, bool end)
{
    struct proxy_attempt *a = of_stream(ctx);

    a->state = PROXY_ATTEMPT_RESPONDING;
    a->ops->on_head(a, h, end);
}

static void on_data(void *ctx, const uint8_t *p, size_t n)
{
    struct proxy_attempt *a = of_stream(ctx);

    a->ops->on_data(a, p, n);
}

static void on_trailers(void *ctx, struct proxy_head *h)
{
    struct proxy_attempt *a = of_stream(ctx);

    a->ops->on_trailers(a, h);
}

static void on_close(void *ctx, enum proxy_be_end end, uint32_t h2err, const char *why)
{
    struct proxy_attempt_result r = proxy_attempt_result_of(end, h2err, why);

    finish_with(of_stream(ctx), &r);
}

static size_t req_avail(void *ctx, bool *eof)
{
    struct proxy_attempt *a = of_stream(ctx);

    return a->ops->req_avail(a, eof);
}

static void req_write(void *ctx, struct evbuffer *out, size_t n)
{
    struct proxy_attempt *a = of_stream(ctx);

    a->req_sent += n;
    a->ops->req_write(a, out, n);
}

static const struct proxy_be_stream_ops stream_ops = {
    .on_sent = on_sent,
    .on_head = on_head,
    .on_data = on_data,
    .on_trailers = on_trailers,
    .on_close = on_close,
    .req_avail = req_avail,
    .req_write = req_write,
};

/* ---- the pool's answer ---- */

static void open_on(struct proxy_attempt *a, struct proxy_be_conn *bc)
{
    if (proxy_be_open(bc, &a->st, a->req, &stream_ops, a) != 0) {
        finish_unsent(a, "the backend connection took no new stream");
        return;
    }
    a->state = PROXY_ATTEMPT_OPEN;
}

static void on_ready(struct proxy_pool_waiter *wt, struct proxy_be_conn *bc)
{
    struct proxy_attempt *a =
        (struct proxy_attempt *)((char *)wt - offsetof(struct proxy_attempt, wt));

    open_on(a, bc);
}

static void on_failed(struct proxy_pool_waiter *wt, const char *why)
{
    struct proxy_attempt *a =
        (struct proxy_attempt *)((char *)wt - offsetof(struct proxy_attempt, wt));

    finish_unsent(a, why);
}

void proxy_attempt_init(struct proxy_attempt *a, const struct proxy_attempt_ops *ops, void *owner)
{
    a->ops = ops;
    a->owner = owner;
    a->state = PROXY_ATTEMPT_IDLE;
    a->req_sent = 0;
    a->status = -1;
    a->wt.ready = on_ready;
    a->wt.failed = on_failed;
}

void proxy_attempt_deinit(struct proxy_attempt *a)
{
    proxy_head_deinit(&a->st.rhead);
    proxy_head_deinit(&a->head);
}

int proxy_attempt_start(struct proxy_attempt *a, struct proxy_pool *pool, struct proxy_head *req,
                        uint32_t ep_id, const char **why)
{
    struct proxy_be_conn *bc = NULL;
    int rc;

    a->req = req;
    a->ep_id = ep_id;
    a->req_sent = 0;
    rc = proxy_pool_acquire(pool, &a->wt, &bc, why);
    if (rc < 0) {
        a->req = NULL;
        return -1;
    }
    a->pool = pool;
    proxy_pool_attempt_start(pool);
    if (rc == 1) {
        a->state = PROXY_ATTEMPT_QUEUED;
        return 0;
    }
    if (proxy_be_open(bc, &a->st, req, &stream_ops, a) != 0) {
        proxy_pool_attempt_end(pool);
        a->pool = NULL;
        a->req = NULL;
        *why = "the backend connection took no new stream";
        return -1;
    }
    a->state = PROXY_ATTEMPT_OPEN;
    return 0;
}

void proxy_attempt_cancel(struct proxy_attempt *a, uint32_t h2err)
{
    switch (a->state) {
    case PROXY_ATTEMPT_IDLE:
        return;
    case PROXY_ATTEMPT_QUEUED:
        proxy_pool_cancel(&a->wt);
        break;
    default:
        proxy_be_reset(&a->st, h2err);
        break;
    }
    a->state = PROXY_ATTEMPT_IDLE;
    if (a->pool != NULL)
        proxy_pool_attempt_end(a->pool);
    a->pool = NULL;
    a->req = NULL;
}

void proxy_attempt_resume(struct proxy_attempt *a)
{
    if (a->state >= PROXY_ATTEMPT_OPEN)
        proxy_be_resume(&a->st);
}

void proxy_attempt_credit(struct proxy_attempt *a, size_t n, bool stream)
{
    if (a->state >= PROXY_ATTEMPT_OPEN)
        proxy_be_credit(&a->st, n, stream);
}
