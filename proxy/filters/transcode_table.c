/* The REST transcoding table (transcode.h): bindings from google.api.http
 * rules, matched by verb and path template.
 * Invariant: after tc_table_add_pool() returns the table is only read;
 * matching allocates nothing.
 * SPDX-License-Identifier: MIT */
#include "proxy/filters/transcode.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/alloc.h"

struct tc_table *tc_table_new(void)
{
    struct tc_table *t = xcalloc(1, sizeof(*t));

    atomic_init(&t->refs, 1);
    return t;
}

struct add_ctx {
    struct tc_table *t;
    const struct tc_pool *pool;
    bool ndjson;
    size_t added;
    void (*warn)(const char *why, void *arg);
    void *arg;
};

static void warnf(struct add_ctx *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warnf(struct add_ctx *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    if (a->warn == NULL)
        return;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    a->warn(buf, a->arg);
}

static void on_bad(const char *why, void *arg)
{
    warnf(arg, "%s", why);
}

static void on_rule(const struct tc_rule *r, void *arg)
{
    struct add_ctx *a = arg;
    struct tc_table *t = a->t;
    struct tc_binding b = {0};
    char err[256];

    if (r->client_streaming) {
        warnf(a, "%s: %s %s: client-streaming methods are not transcoded", r->grpc_path, r->verb,
              r->pattern);
        return;
    }
    if (tc_template_parse(r->pattern, strlen(r->pattern), &b.tpl, err, sizeof(err)) != 0) {
        warnf(a, "%s: %s %s: bad path template: %s", r->grpc_path, r->verb, r->pattern, err);
        return;
    }
    for (uint32_t i = 0; i < b.tpl.nvars; i++) {
        const struct tc_var *v = &b.tpl.vars[i];

        if (!tc_method_has_field(r->method, b.tpl.text + v->off, v->len)) {
            warnf(a, "%s: %s %s: variable '%.*s' is not a field the path can set", r->grpc_path,
                  r->verb, r->pattern, (int)v->len, b.tpl.text + v->off);
            tc_template_deinit(&b.tpl);
            return;
        }
    }
    b.verb = xstrdup(r->verb);
    b.method = r->method;
    b.grpc_path = xstrdup(r->grpc_path);
    b.body = xstrdup(r->body);
    b.response_body = xstrdup(r->response_body);
    b.server_streaming = r->server_streaming;
    b.client_streaming = r->client_streaming;
    b.ndjson = a->ndjson;
    b.pool = a->pool;
    if (t->nb == t->cap) {
        t->cap = t->cap == 0 ? 16 : t->cap * 2;
        t->b = xreallocarray(t->b, t->cap, sizeof(*t->b));
    }
    t->b[t->nb++] = b;
    a->added++;
}

size_t tc_table_add_pool(struct tc_table *t, struct tc_pool *pool, bool ndjson,
                         void (*warn)(const char *why, void *arg), void *arg)
{
    struct add_ctx a = {.t = t, .pool = pool, .ndjson = ndjson, .warn = warn, .arg = arg};

    t->pools = xreallocarray(t->pools, t->npools + 1, sizeof(*t->pools));
    t->pools[t->npools++] = pool;
    tc_pool_rules(pool, on_rule, on_bad, &a);
    return a.added;
}

struct tc_table *tc_table_ref(struct tc_table *t)
{
    if (t != NULL)
        atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void tc_table_unref(struct tc_table *t)
{
    if (t == NULL || atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < t->nb; i++) {
        struct tc_binding *b = &t->b[i];

        free(b->verb);
        free(b->grpc_path);
        free(b->body);
        free(b->response_body);
        tc_template_deinit(&b->tpl);
    }
    free(t->b);
    for (size_t i = 0; i < t->npools; i++)
        tc_pool_free(t->pools[i]);
    free(t->pools);
    free(t);
}

enum tc_match tc_table_match(const struct tc_table *t, const char *verb, size_t vlen,
                             const char *path, size_t plen, const struct tc_binding **out,
                             struct tc_capture *caps)
{
    struct tc_capture tmp[TC_MAX_VARS];
    int best = -1;
    bool path_known = false;

    for (size_t i = 0; i < t->nb; i++) {
        const struct tc_binding *b = &t->b[i];
        bool same = strlen(b->verb) == vlen && memcmp(b->verb, verb, vlen) == 0;
        int score = tc_template_match(&b->tpl, path, plen, tmp);

        if (score < 0)
            continue;
        path_known = true;
        if (same && score > best) {
            best = score;
            *out = b;
            memcpy(caps, tmp, sizeof(tmp[0]) * b->tpl.nvars);
        }
    }
    if (best >= 0)
        return TC_MATCH;
    return path_known ? TC_WRONG_METHOD : TC_NOT_FOUND;
}
