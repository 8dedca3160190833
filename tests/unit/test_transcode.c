/* Unit tests of REST transcoding's path templates (proxy/filters/
 * transcode_path.c) and its status mapping: parsing errors, matching,
 * captures, precedence, percent-decoding. No sockets, no protobuf.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <string.h>

#include "proxy/filters/transcode_path.h"

static struct tc_template parse_ok(const char *s)
{
    struct tc_template t;
    char err[256];

    cr_assert_eq(tc_template_parse(s, strlen(s), &t, err, sizeof(err)), 0, "%s: %s", s, err);
    return t;
}

static void parse_bad(const char *s, const char *why)
{
    struct tc_template t;
    char err[256] = "";

    cr_assert_eq(tc_template_parse(s, strlen(s), &t, err, sizeof(err)), -1, "%s parsed", s);
    cr_assert(strstr(err, why) != NULL, "%s: '%s' lacks '%s'", s, err, why);
}

/* Matches |path| and checks the captures against |want| (NULL-terminated). */
static int match(const char *tpl, const char *path, const char *const *want)
{
    struct tc_template t = parse_ok(tpl);
    struct tc_capture caps[TC_MAX_VARS];
    int score = tc_template_match(&t, path, strlen(path), caps);

    for (uint32_t i = 0; score >= 0 && want != NULL && i < t.nvars; i++) {
        cr_assert_not_null(want[i]);
        cr_assert_eq(caps[i].n, strlen(want[i]), "%s on %s: capture %u is '%.*s'", tpl, path, i,
                     (int)caps[i].n, caps[i].p);
        cr_assert_eq(memcmp(caps[i].p, want[i], caps[i].n), 0);
    }
    tc_template_deinit(&t);
    return score;
}

TestSuite(transcode, .timeout = 10);

Test(transcode, parse_errors)
{
    parse_bad("v1/users", "starts with '/'");
    parse_bad("/v1/{id", "expected '}'");
    parse_bad("/v1/{1id}", "field name");
    parse_bad("/v1/**/x", "'**' must be the last");
    parse_bad("/v1/{a=x/{b}}", "inside a variable");
    parse_bad("/v1/{a}/{a}", "given twice");
    parse_bad("/v1/users:", "verb");
    parse_bad("/v1//x", "expected a segment");
    parse_bad("/v1/x?y", "unexpected '?'");
}

Test(transcode, matching_and_captures)
{
    cr_assert(match("/v1/users/{id}", "/v1/users/7", (const char *const[]){"7", NULL}) >= 0);
    cr_assert(match("/v1/users/{id}", "/v1/users/7/x", NULL) < 0);
    cr_assert(match("/v1/users/{id}", "/v1/users/", NULL) < 0);
    cr_assert(match("/v1/users/{id}", "/v1/users", NULL) < 0);
    cr_assert(match("/v1/{user.name=orgs/*/users/*}", "/v1/orgs/a/users/b",
                    (const char *const[]){"orgs/a/users/b", NULL}) >= 0);
    cr_assert(match("/v1/{name=shelves/*}/books/{book}", "/v1/shelves/s1/books/b2",
                    (const char *const[]){"shelves/s1", "b2", NULL}) >= 0);
    cr_assert(match("/v1/{path=blobs/**}", "/v1/blobs/a/b/c",
                    (const char *const[]){"blobs/a/b/c", NULL}) >= 0);
    cr_assert(match("/v1/{path=blobs/**}", "/v1/blobs", (const char *const[]){"blobs", NULL}) >= 0);
    cr_assert(match("/v1/{path=blobs/**}", "/v1/blobs/a//b", NULL) < 0);
    cr_assert(match("/v1/users:watch", "/v1/users:watch", NULL) >= 0);
    cr_assert(match("/v1/users:watch", "/v1/users", NULL) < 0);
    cr_assert(match("/v1/users/{id}:ping", "/v1/users/3:ping", (const char *const[]){"3", NULL}) >=
              0);
    /* without a verb in the template, ':' is part of the segment */
    cr_assert(match("/v1/users/{id}", "/v1/users/3:ping", (const char *const[]){"3:ping", NULL}) >=
              0);
    cr_assert(match("/", "/", NULL) >= 0);
    cr_assert(match("/", "/x", NULL) < 0);
}

Test(transcode, literals_rank_above_wildcards)
{
    int lit = match("/v1/users/me", "/v1/users/me", NULL);
    int var = match("/v1/users/{id}", "/v1/users/me", NULL);
    int dstar = match("/v1/{rest=**}", "/v1/users", NULL);
    int star = match("/v1/{a}/{b}", "/v1/users/me", NULL);

    cr_assert_gt(lit, var);
    cr_assert_gt(var, star);
    cr_assert_geq(dstar, 0);
}

Test(transcode, percent_decoding)
{
    char out[64];
    long n;

    n = tc_pct_decode("a%20b%2Fc", 9, out, false, false);
    cr_assert_eq(n, 5);
    cr_assert_eq(memcmp(out, "a b/c", 5), 0);
    n = tc_pct_decode("a%20b%2fc", 9, out, true, false); /* several segments: %2F stays */
    cr_assert_eq(n, 7);
    cr_assert_eq(memcmp(out, "a b%2fc", 7), 0);
    n = tc_pct_decode("x+y", 3, out, false, true);
    cr_assert_eq(memcmp(out, "x y", 3), 0);
    cr_assert_eq(tc_pct_decode("%2", 2, out, false, false), -1);
    cr_assert_eq(tc_pct_decode("%zz", 3, out, false, false), -1);
}

Test(transcode, http_status_of_grpc_codes)
{
    static const int want[] = {200, 499, 500, 400, 504, 404, 409, 403, 429,
                               400, 409, 400, 501, 500, 503, 500, 401};

    for (int c = 0; c < 17; c++)
        cr_assert_eq(tc_http_status(c), want[c], "code %d", c);
    cr_assert_eq(tc_http_status(99), 500);
    cr_assert_eq(tc_http_status(-1), 500);
}
