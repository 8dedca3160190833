/* Unit tests for core/grpc.c: the method path check (grpc_path_is_canonical),
 * status names and parsing, grpc-timeout and grpc-message encoding.
 * Invariant: no network, no sleeps; each case names why a path is or is not
 * canonical (PROTOCOL-HTTP2.md "Path": "/" Service-Name "/" method name).
 * SPDX-License-Identifier: MIT */
#include "core/grpc.h"

#include <string.h>

#include <criterion/criterion.h>

TestSuite(grpc, .timeout = 10);

static bool canon(const char *p)
{
    return grpc_path_is_canonical((const uint8_t *)p, strlen(p));
}

#define assert_canonical(p)     cr_assert(canon(p), "'%s' should be canonical", p)
#define assert_not_canonical(p) cr_assert(!canon(p), "'%s' should not be canonical", p)

Test(grpc, path_service_and_method)
{
    assert_canonical("/grpc.health.v1.Health/Check");
    assert_canonical("/sy.test.Echo/Unary");
    assert_canonical("/Svc/M");
    assert_canonical("/a/b");
    /* names are IDL-specific: any other visible ASCII is allowed */
    assert_canonical("/pkg.v1.My_Svc/Get-It");
    assert_canonical("/pkg..Svc/M"); /* ".." inside a name is not a segment */
    assert_canonical("/.hidden/...");
    assert_canonical("/a/b.");
    assert_canonical("/svc/m;x=1");
}

Test(grpc, path_shape)
{
    assert_not_canonical("");
    assert_not_canonical("/");
    assert_not_canonical("//");
    assert_not_canonical("/a");
    assert_not_canonical("/a/");
    assert_not_canonical("//b");
    assert_not_canonical("/a//b");
    assert_not_canonical("a/b/c");
    assert_not_canonical("*");
    assert_not_canonical("/a/b/");
    assert_not_canonical("/a/b/c");
    assert_not_canonical("/grpc.health.v1.Health/Check/");
    cr_assert(!grpc_path_is_canonical(NULL, 0));
}

Test(grpc, path_dot_segments)
{
    assert_not_canonical("/grpc.health.v1.Health/../x.Svc/M"); /* issue 12.9 */
    assert_not_canonical("/./b");
    assert_not_canonical("/a/.");
    assert_not_canonical("/../b");
    assert_not_canonical("/a/..");
    assert_not_canonical("/./.");
}

Test(grpc, path_encoding_query_fragment)
{
    assert_not_canonical("/grpc.health.v1.Health/%2e%2e");
    assert_not_canonical("/a%2Fb/c");
    assert_not_canonical("/a/b%");
    assert_not_canonical("/a/b?x=1");
    assert_not_canonical("/a/b?");
    assert_not_canonical("/a/b#f");
    assert_not_canonical("/a?/b");
}

Test(grpc, path_bytes)
{
    static const char *const bad[] = {"/a/b c",   "/a/b\t",      "/a/b\r\n", "/a/b\x7f",
                                      "/a\x01/b", "/a/\xc3\xa9", "/\xff/b"};

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_not_canonical(bad[i]);
    /* a NUL inside the given length is a control byte, not an end */
    cr_assert(!grpc_path_is_canonical((const uint8_t *)"/a/b\0c", 6));
    /* only |len| bytes are looked at */
    cr_assert(grpc_path_is_canonical((const uint8_t *)"/a/b/c", 4));
}

/* ---- grpc-timeout (PROTOCOL-HTTP2.md: TimeoutValue is 1 to 8 digits) ---- */

static int timeout_of(const char *v, uint64_t *ms)
{
    return grpc_timeout_parse((const uint8_t *)v, strlen(v), ms);
}

Test(grpc, timeout_units)
{
    static const struct {
        const char *v;
        uint64_t ms;
    } ok[] = {
        {"1H", 3600000},
        {"2M", 120000},
        {"3S", 3000},
        {"250m", 250},
        {"1500u", 2}, /* rounded up: a deadline is never shortened */
        {"1n", 1},
        {"999999n", 1},
        {"1000000n", 1},
        {"1000001n", 2},
        {"99999999H", 99999999ull * 3600000}, /* the largest: no overflow */
    };

    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        uint64_t ms = 7;

        cr_assert_eq(timeout_of(ok[i].v, &ms), 0, "%s", ok[i].v);
        cr_assert_eq(ms, ok[i].ms, "%s: %llu ms", ok[i].v, (unsigned long long)ms);
    }
}

Test(grpc, timeout_zero_is_a_deadline_that_has_passed)
{
    uint64_t ms = 7;

    cr_assert_eq(timeout_of("0m", &ms), 0, "0 is a valid value, not 'no deadline'");
    cr_assert_eq(ms, 0);
    cr_assert_eq(timeout_of("0S", &ms), 0);
    cr_assert_eq(ms, 0);
    cr_assert_eq(timeout_of("0n", &ms), 0);
    cr_assert_eq(ms, 0);
}

Test(grpc, timeout_format_round_trips)
{
    static const struct {
        uint64_t ms;
        const char *v;
        uint64_t back; /* what parsing it gives */
    } cases[] = {
        {0, "0m", 0},
        {1, "1m", 1},
        {30000, "30000m", 30000},
        {99999999, "99999999m", 99999999},
        {100000000, "100000S", 100000000},
        {100000001, "100001S", 100001000}, /* rounded up, never shortened */
        {99999999000ULL, "99999999S", 99999999000ULL},
        {99999999001ULL, "27778H", 27778ULL * 3600000},
        {UINT64_MAX, "99999999H", 99999999ULL * 3600000},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char v[GRPC_TIMEOUT_MAX];
        size_t n = grpc_timeout_format(cases[i].ms, v);
        uint64_t ms = 7;

        cr_assert(n <= GRPC_TIMEOUT_MAX);
        cr_assert_eq(n, strlen(cases[i].v), "%llu: length %zu", (unsigned long long)cases[i].ms, n);
        cr_assert(memcmp(v, cases[i].v, n) == 0, "%llu: %.*s, not %s",
                  (unsigned long long)cases[i].ms, (int)n, v, cases[i].v);
        cr_assert_eq(grpc_timeout_parse((const uint8_t *)v, n, &ms), 0);
        cr_assert_eq(ms, cases[i].back);
    }
}

Test(grpc, timeout_malformed)
{
    static const char *const bad[] = {
        "",
        "m",
        "1",
        "123456789S" /* 9 digits */,
        "1s" /* lower-case s is not a unit */,
        "-1S",
        "1.5S",
        " 1S",
        "1S ",
        "1x",
        "١S",
    };
    uint64_t ms;

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(timeout_of(bad[i], &ms), -1, "'%s' accepted", bad[i]);
}

/* ---- status codes ---- */

Test(grpc, status_names_and_parsing)
{
    cr_assert_str_eq(grpc_code_name(GRPC_OK), "OK");
    cr_assert_str_eq(grpc_code_name(GRPC_DEADLINE_EXCEEDED), "DEADLINE_EXCEEDED");
    cr_assert_str_eq(grpc_code_name(GRPC_UNAUTHENTICATED), "UNAUTHENTICATED");
    cr_assert_str_eq(grpc_code_name(17), "UNKNOWN", "out of range");
    cr_assert_str_eq(grpc_code_name(-1), "UNKNOWN");
    cr_assert_eq(grpc_status_parse((const uint8_t *)"14", 2), 14);
    cr_assert_eq(grpc_status_parse((const uint8_t *)"0", 1), 0);
    cr_assert_eq(grpc_status_parse((const uint8_t *)"", 0), -1);
    cr_assert_eq(grpc_status_parse((const uint8_t *)"1a", 2), -1);
    cr_assert_eq(grpc_status_parse((const uint8_t *)"1234", 4), -1);
}

Test(grpc, message_encoding)
{
    char out[64];

    grpc_message_encode("no route for /x", out, sizeof(out));
    cr_assert_str_eq(out, "no route for /x");
    grpc_message_encode("100% d\xc3\xa9j\xc3\xa0\n", out, sizeof(out));
    cr_assert_str_eq(out, "100%25 d%C3%A9j%C3%A0%0A");
    grpc_message_encode("abcdefgh", out, 5);
    cr_assert_str_eq(out, "abcd", "truncated to fit, NUL-terminated");
}

/* ---- message prefixes (grpc_scan) ---- */

/* Three messages (0, 3 and 300 bytes) fed whole, a byte at a time and in
 * every split into two pieces: three messages each way; a prefix over the
 * limit fails wherever it is split. */
Test(grpc, scan_counts_messages_however_the_bytes_arrive)
{
    uint8_t buf[5 + 0 + 5 + 3 + 5 + 300] = {0};
    size_t n = sizeof(buf);

    buf[4] = 0;                                      /* empty message */
    buf[5 + 4] = 3;                                  /* 3 bytes */
    buf[5 + 5 + 3 + 3] = 1, buf[5 + 5 + 3 + 4] = 44; /* 300 bytes */
    for (size_t split = 0; split <= n; split++) {
        struct grpc_scan s = {0};

        cr_assert_eq(grpc_scan_feed(&s, buf, split, 0), 0);
        cr_assert_eq(grpc_scan_feed(&s, buf + split, n - split, 0), 0);
        cr_assert_eq(s.msgs, 3, "split at %zu: %llu messages", split, (unsigned long long)s.msgs);
        cr_assert_eq(s.need, 0);
        cr_assert_eq(s.hlen, 0);
    }
    {
        struct grpc_scan s = {0};

        for (size_t i = 0; i < n; i++)
            cr_assert_eq(grpc_scan_feed(&s, buf + i, 1, 0), 0);
        cr_assert_eq(s.msgs, 3);
    }
    for (size_t split = 0; split <= n; split++) {
        struct grpc_scan s = {0};
        int rv = grpc_scan_feed(&s, buf, split, 299);

        if (rv == 0)
            rv = grpc_scan_feed(&s, buf + split, n - split, 299);
        cr_assert_eq(rv, -1, "split at %zu: 300 bytes > 299 not refused", split);
    }
}
