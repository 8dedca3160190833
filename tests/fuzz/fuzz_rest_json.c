/* libFuzzer harness: REST transcoding's intake (proxy/filters/transcode*):
 * a request's path and query matched against the bindings of the test
 * descriptor set (build/rest/user.pb, or $SY_FUZZ_REST_DESC) and its JSON body
 * turned into a binary message with libprotobuf's JSON parser, then that
 * message back to JSON.
 * Input: METHOD " " PATH[?QUERY] "\n" BODY.
 * Invariant: a request that builds is one uncompressed gRPC message whose
 * length prefix is exact, and which converts back to JSON as its own type
 * (CreateUser takes and returns a User, so its request must print as one).
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/filters/transcode.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct tc_table *table;
static const struct tc_binding *create; /* POST /v1/users: User in, User out */

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz check failed: %s\n", what);
        abort();
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("SY_FUZZ_REST_DESC");
    FILE *f;
    static uint8_t buf[1 << 20];
    size_t n;
    char err[256];
    struct tc_pool *pool;

    (void)argc;
    (void)argv;
    if (path == NULL)
        path = "build/rest/user.pb";
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz_rest_json: cannot open %s (make rest-peer builds it)\n", path);
        abort();
    }
    n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    pool = tc_pool_from_set(buf, n, err, sizeof(err));
    check(pool != NULL, "the descriptor set builds");
    table = tc_table_new();
    check(tc_table_add_pool(table, pool, false, NULL, NULL) > 0, "bindings");
    for (size_t i = 0; i < table->nb; i++) {
        if (strcmp(table->b[i].grpc_path, "/sy.user.v1.UserService/CreateUser") == 0)
            create = &table->b[i];
    }
    check(create != NULL, "CreateUser is bound");
    return 0;
}

/* Query parameters as the filter splits them (no decoding: the harness
 * wants the raw bytes to reach protobuf's parser). */
static size_t split_query(const char *q, size_t n, struct tc_param *out, size_t max)
{
    size_t np = 0;
    const char *s = q, *end = q + n;

    while (s < end && np < max) {
        const char *amp = memchr(s, '&', (size_t)(end - s));
        const char *e = amp != NULL ? amp : end;
        const char *eq = memchr(s, '=', (size_t)(e - s));

        if (e > s)
            out[np++] =
                (struct tc_param){s, (size_t)((eq != NULL ? eq : e) - s), eq != NULL ? eq + 1 : e,
                                  eq != NULL ? (size_t)(e - eq - 1) : 0};
        s = e + 1;
    }
    return np;
}

static void round_trip(const struct tc_binding *b, struct evbuffer *msg)
{
    size_t len = evbuffer_get_length(msg);
    const uint8_t *p = evbuffer_pullup(msg, -1);
    struct evbuffer *json = evbuffer_new();
    char err[512];
    uint32_t n;

    check(len >= 5 && p[0] == 0, "one uncompressed message");
    n = (uint32_t)p[1] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 8 | p[4];
    check(n == len - 5, "exact length prefix");
    if (b == create)
        check(tc_response_json(b->method, "", p + 5, n, json, err, sizeof(err)) == 0,
              "a built User prints as JSON");
    evbuffer_free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size);
    size_t line = nl != NULL ? (size_t)(nl - s) : size;
    const char *sp = memchr(s, ' ', line);
    const char *body = nl != NULL ? nl + 1 : "";
    size_t blen = nl != NULL ? size - line - 1 : 0;
    const struct tc_binding *b = NULL;
    struct tc_capture caps[TC_MAX_VARS];
    struct tc_param params[64];
    size_t np = 0, plen;
    const char *path, *q;
    struct evbuffer *msg;
    char err[512];

    if (sp == NULL)
        return 0;
    path = sp + 1;
    plen = line - (size_t)(path - s);
    q = memchr(path, '?', plen);
    if (tc_table_match(table, s, (size_t)(sp - s), path, q != NULL ? (size_t)(q - path) : plen, &b,
                       caps) != TC_MATCH)
        return 0;
    for (uint32_t i = 0; i < b->tpl.nvars; i++)
        params[np++] = (struct tc_param){b->tpl.text + b->tpl.vars[i].off, b->tpl.vars[i].len,
                                         caps[i].p, caps[i].n};
    if (q != NULL)
        np += split_query(q + 1, plen - (size_t)(q + 1 - path), params + np, 64 - np);
    msg = evbuffer_new();
    if (tc_request_build(b->method, b->body, body, blen, params, np, msg, err, sizeof(err)) == 0)
        round_trip(b, msg);
    else
        check(strlen(err) > 0, "a failure says why");
    evbuffer_free(msg);
    return 0;
}
