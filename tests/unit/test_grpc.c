/* Unit tests for core/grpc.c: the method path check (grpc_path_is_canonical).
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
