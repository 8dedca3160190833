/* Unit tests for proxy/auth.c: JWTs minted here by libjwt itself with HS256,
 * RS256 and ES256 keys that the openssl CLI generates into a per-test temp
 * dir (no key is ever committed); static tokens; exempt paths; the header
 * list forwarded after a successful check.
 * Invariant: no network and no sleeps; "now" is passed in, so expiry is
 * tested without waiting.
 * SPDX-License-Identifier: MIT */
#include "proxy/auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jwt.h>

#include "conf/conf.h"

#define SECRET  "0123456789abcdef0123456789abcdef-hs256-test-secret"
#define SECRET2 "fedcba9876543210fedcba9876543210-another-secret"
#define NOW     1700000000.0

static char dir[256];

static void setup(void)
{
    const char *t = getenv("TMPDIR");

    snprintf(dir, sizeof(dir), "%s/sy-auth-XXXXXX", t != NULL && *t != '\0' ? t : "/tmp");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[512];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

TestSuite(auth, .init = setup, .fini = teardown, .timeout = 60);

/* ---- keys, files, configurations ---- */

static void path_of(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void run(const char *fmt, ...)
{
    char cmd[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(cmd, sizeof(cmd), fmt, ap);
    va_end(ap);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

/* <dir>/NAME.key (private, PEM) and <dir>/NAME.pub (SPKI PEM). */
static void gen_rsa(const char *name, int bits)
{
    run("cd '%s' && openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:%d -out %s.key "
        "2>/dev/null && openssl pkey -in %s.key -pubout -out %s.pub 2>/dev/null",
        dir, bits, name, name, name);
}

static void gen_ec(const char *name, const char *curve)
{
    run("cd '%s' && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:%s -out %s.key "
        "2>/dev/null && openssl pkey -in %s.key -pubout -out %s.pub 2>/dev/null",
        dir, curve, name, name, name);
}

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    FILE *f;
    char *buf = calloc(1, 65536);

    path_of(path, sizeof(path), name);
    f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    *len = fread(buf, 1, 65535, f);
    fclose(f);
    return buf;
}

static void write_file(const char *name, const char *text)
{
    char path[512];
    FILE *f;

    path_of(path, sizeof(path), name);
    f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static struct conf *load(const char *auth_section)
{
    char text[4096], err[1024] = "";
    struct conf *c = NULL;

    snprintf(text, sizeof(text), "[cluster.a]\ntargets = 127.0.0.1:1\n[auth]\n%s", auth_section);
    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), 0, "conf: %s", err);
    cr_assert_eq(proxy_auth_attach(c, err, sizeof(err)), 0, "attach: %s", err);
    return c;
}

/* Loads an [auth] section whose verifier must fail to build; returns the message. */
static void load_fails(const char *auth_section, char *err, size_t errlen)
{
    char text[4096];
    struct conf *c = NULL;

    snprintf(text, sizeof(text), "[cluster.a]\ntargets = 127.0.0.1:1\n[auth]\n%s", auth_section);
    err[0] = '\0';
    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, errlen), 0, "conf: %s", err);
    cr_assert_eq(proxy_auth_attach(c, err, errlen), -1, "expected the verifier to fail");
    cr_assert_null(c->auth.verifier);
    conf_free(c);
}

static struct conf *load_secret(const char *extra)
{
    char sect[2048];

    snprintf(sect, sizeof(sect), "mode = jwt\nsecret = " SECRET "\n%s", extra ? extra : "");
    return load(sect);
}

static struct conf *load_pubkey(const char *name, const char *extra)
{
    char sect[2048];

    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/%s\n%s", dir, name,
             extra ? extra : "");
    return load(sect);
}

/* A JWT with the claims |json| signed with |alg| and |key|; the caller frees it. */
static char *mint(jwt_alg_t alg, const void *key, size_t keylen, const char *json)
{
    jwt_t *j = NULL;
    char *tok;

    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, json), 0, "bad claims %s", json);
    cr_assert_eq(jwt_set_alg(j, alg, key, (int)keylen), 0, "jwt_set_alg %s", jwt_alg_str(alg));
    tok = jwt_encode_str(j);
    cr_assert_not_null(tok);
    jwt_free(j);
    return tok;
}

static char *mint_hs(const char *secret, const char *json)
{
    return mint(JWT_ALG_HS256, secret, strlen(secret), json);
}

static char *mint_with(const char *keyname, jwt_alg_t alg, const char *json)
{
    size_t len;
    char *key = slurp(keyname, &len);
    char *tok = mint(alg, key, len, json);

    free(key);
    return tok;
}

/* ---- requests ---- */

#define MAXF 16

struct req {
    nghttp2_nv nv[MAXF];
    size_t n;
    char bearer[PROXY_AUTH_MAX_TOKEN + 16];
    nghttp2_nv *out;
    size_t nout;
};

static void add(struct req *r, const char *name, const char *value)
{
    cr_assert_lt(r->n, MAXF);
    r->nv[r->n++] = (nghttp2_nv){(uint8_t *)name, (uint8_t *)value, strlen(name), strlen(value),
                                 NGHTTP2_NV_FLAG_NONE};
}

/* A gRPC request to |path|, with "authorization: |authz|" unless it is NULL. */
static void req_init(struct req *r, const char *path, const char *authz)
{
    memset(r, 0, sizeof(*r));
    add(r, ":method", "POST");
    add(r, ":scheme", "http");
    add(r, ":path", path);
    add(r, ":authority", "sy.test");
    add(r, "content-type", "application/grpc");
    add(r, "te", "trailers");
    if (authz != NULL)
        add(r, "authorization", authz);
}

static void req_bearer(struct req *r, const char *path, const char *token)
{
    req_init(r, path, NULL);
    snprintf(r->bearer, sizeof(r->bearer), "Bearer %s", token);
    add(r, "authorization", r->bearer);
}

static int check_at(const struct conf *c, struct req *r, double now)
{
    const char *path = NULL;

    for (size_t i = 0; i < r->n; i++)
        if (strcmp((const char *)r->nv[i].name, ":path") == 0)
            path = (const char *)r->nv[i].value;
    free(r->out);
    r->out = NULL;
    return proxy_auth_request(c->auth.verifier, (const uint8_t *)path, strlen(path), r->nv, r->n,
                              now, &r->out, &r->nout);
}

static int check(const struct conf *c, struct req *r)
{
    return check_at(c, r, NOW);
}

/* The token |tok| on /sy.test.Echo/Unary; frees |tok|. */
static int check_token(const struct conf *c, char *tok, double now)
{
    struct req r;
    int rc;

    req_bearer(&r, "/sy.test.Echo/Unary", tok);
    rc = check_at(c, &r, now);
    free(r.out);
    free(tok);
    return rc;
}

static const char *field(const struct req *r, const char *name)
{
    for (size_t i = 0; i < r->nout; i++)
        if (r->out[i].namelen == strlen(name) && memcmp(r->out[i].name, name, strlen(name)) == 0)
            return (const char *)r->out[i].value;
    return NULL;
}

static int count(const struct req *r, const char *name)
{
    int n = 0;

    for (size_t i = 0; i < r->nout; i++)
        n += r->out[i].namelen == strlen(name) && memcmp(r->out[i].name, name, strlen(name)) == 0;
    return n;
}

#define assert_status(got, want)                                                                   \
    cr_assert_eq((got), (want), "got %d (%s), want %d (%s)", (got), proxy_auth_reason(got),        \
                 (want), proxy_auth_reason(want))

/* ---- HS256 ---- */

Test(auth, hs256_valid_token_passes_unchanged)
{
    struct conf *c = load_secret(NULL);
    struct req r;
    char *tok = mint_hs(SECRET, "{\"sub\":\"alice\",\"exp\":1700000600}");

    req_bearer(&r, "/sy.test.Echo/Unary", tok);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_null(r.out, "nothing to strip or add: the fields go as received");
    free(tok);
    conf_free(c);
}

Test(auth, expired_within_and_beyond_leeway)
{
    struct conf *c = load_secret(NULL); /* leeway 30s */

    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":1699999940}"), NOW),
                  PROXY_AUTH_EEXPIRED);
    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":1699999990}"), NOW), PROXY_AUTH_OK);
    /* RFC 7519 §4.1.4: now must be before exp (+ leeway) */
    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":1699999970}"), NOW),
                  PROXY_AUTH_EEXPIRED);
    conf_free(c);

    c = load_secret("leeway = 0\n");
    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":1699999999}"), NOW),
                  PROXY_AUTH_EEXPIRED);
    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":1700000001.5}"), NOW), PROXY_AUTH_OK);
    conf_free(c);
}

Test(auth, not_yet_valid)
{
    struct conf *c = load_secret(NULL);

    assert_status(check_token(c, mint_hs(SECRET, "{\"nbf\":1700000120}"), NOW), PROXY_AUTH_ENOTYET);
    assert_status(check_token(c, mint_hs(SECRET, "{\"nbf\":1700000010}"), NOW), PROXY_AUTH_OK);
    assert_status(check_token(c, mint_hs(SECRET, "{\"nbf\":\"soon\"}"), NOW), PROXY_AUTH_EBADTOKEN);
    assert_status(check_token(c, mint_hs(SECRET, "{\"exp\":\"never\"}"), NOW),
                  PROXY_AUTH_EBADTOKEN);
    conf_free(c);
}

Test(auth, bad_signature)
{
    struct conf *c = load_secret(NULL);
    char *tok = mint_hs(SECRET, "{\"sub\":\"alice\"}");
    char *forged = mint_hs(SECRET, "{\"sub\":\"admin\"}");
    char *dot, *fdot;

    assert_status(check_token(c, mint_hs(SECRET2, "{\"sub\":\"alice\"}"), NOW),
                  PROXY_AUTH_ESIGNATURE);
    /* alice's signature on admin's claims */
    dot = strrchr(tok, '.');
    fdot = strrchr(forged, '.');
    cr_assert_eq(strlen(dot), strlen(fdot));
    memcpy(fdot, dot, strlen(dot));
    assert_status(check_token(c, forged, NOW), PROXY_AUTH_ESIGNATURE);
    /* a signature cut off */
    dot[1] = '\0';
    assert_status(check_token(c, tok, NOW), PROXY_AUTH_ESIGNATURE);
    conf_free(c);
}

Test(auth, alg_none_is_refused)
{
    struct conf *c = load_secret(NULL);
    jwt_t *j = NULL;
    char *tok;
    char buf[512];

    /* libjwt mints an unsigned token: {"alg":"none"}.{...}. */
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grant(j, "sub", "mallory"), 0);
    tok = jwt_encode_str(j);
    jwt_free(j);
    cr_assert_not_null(tok);
    cr_assert_eq(tok[strlen(tok) - 1], '.');
    snprintf(buf, sizeof(buf), "%s", tok);
    assert_status(check_token(c, tok, NOW), PROXY_AUTH_EALG);
    /* with a made-up signature too */
    strcat(buf, "c2lnbmF0dXJl");
    assert_status(check_token(c, strdup(buf), NOW), PROXY_AUTH_EALG);
    /* "None" is not an algorithm name either (alg names are case-sensitive) */
    assert_status(check_token(c, strdup("eyJhbGciOiJOb25lIn0.eyJzdWIiOiJtIn0.c2ln"), NOW),
                  PROXY_AUTH_EBADTOKEN);
    conf_free(c);
}

Test(auth, algorithms_allow_list)
{
    struct conf *c = load_secret("algorithms = HS256\n");

    cr_assert_str_eq(c->auth.algorithms[0], "HS256");
    assert_status(check_token(c, mint(JWT_ALG_HS384, SECRET, strlen(SECRET), "{}"), NOW),
                  PROXY_AUTH_EALG);
    assert_status(check_token(c, mint(JWT_ALG_HS256, SECRET, strlen(SECRET), "{}"), NOW),
                  PROXY_AUTH_OK);
    conf_free(c);
    /* without algorithms, a secret allows HS256, HS384 and HS512 */
    c = load_secret(NULL);
    assert_status(check_token(c, mint(JWT_ALG_HS512, SECRET, strlen(SECRET), "{}"), NOW),
                  PROXY_AUTH_OK);
    conf_free(c);
}

/* ---- RS256 / ES256 ---- */

Test(auth, rs256_and_es256_valid)
{
    struct conf *c;

    gen_rsa("rsa", 2048);
    gen_ec("ec", "P-256");
    c = load_pubkey("rsa.pub", NULL);
    assert_status(check_token(c, mint_with("rsa.key", JWT_ALG_RS256, "{\"sub\":\"r\"}"), NOW),
                  PROXY_AUTH_OK);
    assert_status(check_token(c, mint_with("rsa.key", JWT_ALG_RS512, "{\"sub\":\"r\"}"), NOW),
                  PROXY_AUTH_OK);
    /* an ES256 token cannot be checked with an RSA key */
    assert_status(check_token(c, mint_with("ec.key", JWT_ALG_ES256, "{\"sub\":\"e\"}"), NOW),
                  PROXY_AUTH_EALG);
    conf_free(c);

    c = load_pubkey("ec.pub", NULL);
    assert_status(check_token(c, mint_with("ec.key", JWT_ALG_ES256, "{\"sub\":\"e\"}"), NOW),
                  PROXY_AUTH_OK);
    assert_status(check_token(c, mint_with("rsa.key", JWT_ALG_RS256, "{\"sub\":\"r\"}"), NOW),
                  PROXY_AUTH_EALG);
    conf_free(c);
}

Test(auth, rs256_signed_by_another_key)
{
    struct conf *c;

    gen_rsa("rsa", 2048);
    gen_rsa("other", 2048);
    c = load_pubkey("rsa.pub", NULL);
    assert_status(check_token(c, mint_with("other.key", JWT_ALG_RS256, "{\"sub\":\"x\"}"), NOW),
                  PROXY_AUTH_ESIGNATURE);
    conf_free(c);
}

/* RFC 8725 §2.1: an HS256 token "signed" with the public key as HMAC secret.
 * libjwt 1.10 accepts it when handed that key; the allow-list must not. */
Test(auth, hs256_token_against_rsa_key_is_alg_confusion)
{
    struct conf *c;
    size_t len;
    char *pub;
    char *tok;
    jwt_t *j = NULL;

    gen_rsa("rsa", 2048);
    c = load_pubkey("rsa.pub", NULL);
    pub = slurp("rsa.pub", &len);
    tok = mint(JWT_ALG_HS256, pub, len, "{\"sub\":\"mallory\"}");
    cr_assert_eq(jwt_decode(&j, tok, (unsigned char *)pub, (int)len), 0,
                 "libjwt itself takes the forged token; the test would prove nothing");
    jwt_free(j);
    assert_status(check_token(c, tok, NOW), PROXY_AUTH_EALG);
    free(pub);
    conf_free(c);
}

Test(auth, certificate_as_public_key_and_es384)
{
    struct conf *c;

    gen_ec("ec", "P-384");
    run("cd '%s' && openssl req -new -x509 -key ec.key -subj /CN=issuer -days 1 -out ec.crt "
        "2>/dev/null",
        dir);
    c = load_pubkey("ec.crt", NULL);
    assert_status(check_token(c, mint_with("ec.key", JWT_ALG_ES384, "{}"), NOW), PROXY_AUTH_OK);
    conf_free(c);
}

Test(auth, public_key_errors_name_the_file)
{
    char err[1024], sect[1024];

    gen_rsa("rsa", 2048);
    gen_rsa("small", 1024);
    gen_ec("ec", "P-256");
    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/rsa.key\n", dir);
    load_fails(sect, err, sizeof(err));
    cr_assert_not_null(strstr(err, "t.ini: [auth] public_key_file: expected a PEM public key"),
                       "%s", err);
    cr_assert_not_null(strstr(err, "rsa.key"), "%s", err);
    cr_assert_null(strstr(err, "PRIVATE"), "%s", err);

    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/small.pub\n", dir);
    load_fails(sect, err, sizeof(err));
    cr_assert_not_null(strstr(err, "at least 2048 bits"), "%s", err);

    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/rsa.pub\nalgorithms = ES256\n",
             dir);
    load_fails(sect, err, sizeof(err));
    cr_assert_not_null(strstr(err, "t.ini: [auth] algorithms: ES256 does not fit"), "%s", err);

    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/ec.pub\nalgorithms = ES384\n",
             dir);
    load_fails(sect, err, sizeof(err));
    cr_assert_not_null(strstr(err, "ES384 does not fit"), "%s", err);

    write_file("junk.pem", "-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n");
    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s/junk.pem\n", dir);
    load_fails(sect, err, sizeof(err));
    cr_assert_not_null(strstr(err, "junk.pem"), "%s", err);
}

/* ---- issuer and audience ---- */

Test(auth, issuer)
{
    struct conf *c = load_secret("issuer = https://idp.example\n");

    assert_status(check_token(c, mint_hs(SECRET, "{\"iss\":\"https://idp.example\"}"), NOW),
                  PROXY_AUTH_OK);
    assert_status(check_token(c, mint_hs(SECRET, "{\"iss\":\"https://evil.example\"}"), NOW),
                  PROXY_AUTH_EISSUER);
    assert_status(check_token(c, mint_hs(SECRET, "{\"sub\":\"no iss\"}"), NOW), PROXY_AUTH_EISSUER);
    assert_status(check_token(c, mint_hs(SECRET, "{\"iss\":7}"), NOW), PROXY_AUTH_EISSUER);
    conf_free(c);
}

Test(auth, audience_string_or_array)
{
    struct conf *c = load_secret("audience = users-api, orders-api\n");

    assert_status(check_token(c, mint_hs(SECRET, "{\"aud\":\"orders-api\"}"), NOW), PROXY_AUTH_OK);
    assert_status(check_token(c, mint_hs(SECRET, "{\"aud\":[\"x\",\"users-api\"]}"), NOW),
                  PROXY_AUTH_OK);
    assert_status(check_token(c, mint_hs(SECRET, "{\"aud\":\"billing-api\"}"), NOW),
                  PROXY_AUTH_EAUDIENCE);
    assert_status(check_token(c, mint_hs(SECRET, "{\"aud\":[\"a\",\"b\"]}"), NOW),
                  PROXY_AUTH_EAUDIENCE);
    assert_status(check_token(c, mint_hs(SECRET, "{\"sub\":\"no aud\"}"), NOW),
                  PROXY_AUTH_EAUDIENCE);
    conf_free(c);
}

Test(auth, claims_checked_only_after_the_signature)
{
    struct conf *c = load_secret("issuer = good\n");

    /* a wrong issuer with a bad signature reports the signature */
    assert_status(check_token(c, mint_hs(SECRET2, "{\"iss\":\"bad\",\"exp\":1}"), NOW),
                  PROXY_AUTH_ESIGNATURE);
    conf_free(c);
}

/* ---- the authorization header ---- */

Test(auth, missing_and_malformed_header)
{
    struct conf *c = load_secret(NULL);
    char *tok = mint_hs(SECRET, "{}");
    char buf[1024];
    struct req r;
    static const char *const bad[] = {
        "Basic dXNlcjpwYXNz", "Bearer",      "Bearer ",   "Bearertoken",
        "Bearer a b",         "Bearer a\"b", "Token abc",
    };

    req_init(&r, "/sy.test.Echo/Unary", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        req_init(&r, "/sy.test.Echo/Unary", bad[i]);
        assert_status(check(c, &r), PROXY_AUTH_EMALFORMED);
    }
    /* two authorization fields are ambiguous, even if one is good */
    snprintf(buf, sizeof(buf), "Bearer %s", tok);
    req_init(&r, "/sy.test.Echo/Unary", buf);
    add(&r, "authorization", buf);
    assert_status(check(c, &r), PROXY_AUTH_EMALFORMED);
    /* scheme is case-insensitive, extra spaces are fine */
    snprintf(buf, sizeof(buf), "bearer   %s ", tok);
    req_init(&r, "/sy.test.Echo/Unary", buf);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    /* not a JWT */
    req_init(&r, "/sy.test.Echo/Unary", "Bearer abc.def");
    assert_status(check(c, &r), PROXY_AUTH_EBADTOKEN);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer a.b.c.d.e");
    assert_status(check(c, &r), PROXY_AUTH_EBADTOKEN);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer bm90IGpzb24.e30.c2ln");
    assert_status(check(c, &r), PROXY_AUTH_EBADTOKEN);
    free(tok);
    conf_free(c);
}

Test(auth, over_long_token_is_malformed)
{
    struct conf *c = load_secret(NULL);
    struct req r;
    char *big = malloc(PROXY_AUTH_MAX_TOKEN + 2);

    memset(big, 'a', PROXY_AUTH_MAX_TOKEN + 1);
    big[PROXY_AUTH_MAX_TOKEN + 1] = '\0';
    req_bearer(&r, "/sy.test.Echo/Unary", big);
    assert_status(check(c, &r), PROXY_AUTH_EMALFORMED);
    free(big);
    conf_free(c);
}

/* ---- forwarding ---- */

Test(auth, forward_claims_strip_and_spoofed_headers)
{
    struct conf *c = load_secret("forward_claims = sub, Groups, admin, tenant, bad, missing\n"
                                 "strip_authorization = on\n");
    char *tok = mint_hs(SECRET, "{\"sub\":\"alice\",\"Groups\":[\"a\",\"b\"],\"admin\":true,"
                                "\"tenant\":42,\"bad\":\"line\\nbreak\"}");
    struct req r;

    req_bearer(&r, "/sy.test.Echo/Unary", tok);
    add(&r, "x-jwt-sub", "root"); /* a client posing as root */
    add(&r, "x-request-id", "r1");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_not_null(r.out);
    cr_assert_null(field(&r, "authorization"), "authorization must be stripped");
    cr_assert_eq(count(&r, "x-jwt-sub"), 1, "the client's x-jwt-sub must be gone");
    cr_assert_str_eq(field(&r, "x-jwt-sub"), "alice");
    cr_assert_str_eq(field(&r, "x-jwt-groups"), "[\"a\",\"b\"]");
    cr_assert_str_eq(field(&r, "x-jwt-admin"), "true");
    cr_assert_str_eq(field(&r, "x-jwt-tenant"), "42");
    cr_assert_null(field(&r, "x-jwt-bad"), "a claim that is no field value is left out");
    cr_assert_null(field(&r, "x-jwt-missing"));
    cr_assert_str_eq(field(&r, "x-request-id"), "r1");
    /* pseudo-headers stay first, in order (RFC 9113 §8.3) */
    cr_assert_eq(memcmp(r.out[0].name, ":method", 7), 0);
    cr_assert_eq(memcmp(r.out[2].name, ":path", 5), 0);
    cr_assert_eq(r.nout, 6 + 1 + 4);
    free(r.out);
    free(tok);
    conf_free(c);
}

Test(auth, without_options_only_client_x_jwt_headers_go)
{
    struct conf *c = load_secret(NULL);
    char *tok = mint_hs(SECRET, "{\"sub\":\"alice\"}");
    struct req r;

    req_bearer(&r, "/sy.test.Echo/Unary", tok);
    add(&r, "x-jwt-sub", "root");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_not_null(r.out);
    cr_assert_null(field(&r, "x-jwt-sub"));
    cr_assert_not_null(field(&r, "authorization"), "strip_authorization is off");
    free(r.out);
    free(tok);
    conf_free(c);
}

/* ---- static tokens ---- */

Test(auth, token_mode)
{
    char sect[1024];
    struct conf *c;
    struct req r;

    write_file("tokens", "# deploy bots\n\n  tok-one_1  \nsecond/Token+==\n# tok-three\n");
    snprintf(sect, sizeof(sect), "mode = token\ntokens_file = %s/tokens\n", dir);
    c = load(sect);
    cr_assert_eq(c->auth.ntokens, 2);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-one_1");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_null(r.out);
    req_init(&r, "/sy.test.Echo/Unary", "BEARER second/Token+==");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-three");
    assert_status(check(c, &r), PROXY_AUTH_EUNKNOWN);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-one");
    assert_status(check(c, &r), PROXY_AUTH_EUNKNOWN);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-one_12");
    assert_status(check(c, &r), PROXY_AUTH_EUNKNOWN);
    req_init(&r, "/sy.test.Echo/Unary", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    /* x-jwt-* belongs to jwt mode only */
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-one_1");
    add(&r, "x-jwt-sub", "whatever");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_null(r.out);
    conf_free(c);

    snprintf(sect, sizeof(sect),
             "mode = token\ntokens_file = %s/tokens\nstrip_authorization = on\n", dir);
    c = load(sect);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-one_1");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_not_null(r.out);
    cr_assert_eq(r.nout, 6);
    cr_assert_null(field(&r, "authorization"));
    free(r.out);
    conf_free(c);
}

/* ---- exempt paths ---- */

Test(auth, exempt_paths)
{
    struct conf *c = load_secret("strip_authorization = on\n");
    struct req r;

    req_init(&r, "/grpc.health.v1.Health/Check", NULL);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_null(r.out);
    /* a bad credential on an exempt path is not looked at, but still stripped */
    req_init(&r, "/grpc.health.v1.Health/Watch", "Bearer garbage");
    assert_status(check(c, &r), PROXY_AUTH_OK);
    cr_assert_not_null(r.out);
    cr_assert_null(field(&r, "authorization"));
    free(r.out);
    /* a service name, not a substring: another service whose name contains it */
    req_init(&r, "/x.grpc.health.v1.Health/Check", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    req_init(&r, "/x/grpc.health.v1.Health/Check", NULL); /* three segments */
    assert_status(check(c, &r), PROXY_AUTH_EPATH);
    conf_free(c);

    c = load_secret("exempt = /pub.v1.Public/, /sy.test.Echo/Unary\n");
    req_init(&r, "/sy.test.Echo/Unary", NULL);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    req_init(&r, "/pub.v1.Public/Get", NULL);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    req_init(&r, "/grpc.health.v1.Health/Check", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING); /* the default is replaced */
    /* a method entry is one method, a service entry a whole service name */
    req_init(&r, "/sy.test.Echo/UnaryX", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    req_init(&r, "/sy.test.Echo/Un", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    req_init(&r, "/pub.v1.PublicX/Get", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    conf_free(c);

    c = load_secret("exempt =\n");
    req_init(&r, "/grpc.health.v1.Health/Check", NULL);
    assert_status(check(c, &r), PROXY_AUTH_EMISSING);
    conf_free(c);
}

/* Issue 12.9: a path that is not canonical is refused before the exempt
 * entries are looked at, whatever the credential. */
Test(auth, non_canonical_paths_are_refused_even_under_exempt)
{
    static const char *const paths[] = {
        "/grpc.health.v1.Health/../sy.test.Echo/Unary",
        "/grpc.health.v1.Health/./Check",
        "/grpc.health.v1.Health//Check",
        "/grpc.health.v1.Health/Check/",
        "/grpc.health.v1.Health/Check/../../sy.test.Echo/Unary",
        "/grpc.health.v1.Health/%2e%2e",
        "/grpc.health.v1.Health/Check?x=/sy.test.Echo/Unary",
        "/grpc.health.v1.Health/Check#x",
        "/sy.test.Echo/../sy.test.Echo/Unary",
        "/sy.test.Echo/Un\xc3\xa4ry",
        "/",
        "*",
    };
    struct conf *c = load_secret("strip_authorization = on\n");
    struct conf *t;
    char *tok = mint_hs(SECRET, "{\"sub\":\"alice\",\"exp\":1700000600}");
    char tokens[512], sect[600];
    struct req r;

    path_of(tokens, sizeof(tokens), "tokens");
    write_file("tokens", "tok-0123456789abcdef\n");
    snprintf(sect, sizeof(sect), "mode = token\ntokens_file = %s\n", tokens);
    t = load(sect);
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        req_init(&r, paths[i], NULL);
        assert_status(check(c, &r), PROXY_AUTH_EPATH);
        cr_assert_null(r.out);
        req_bearer(&r, paths[i], tok); /* a good token does not make the path good */
        assert_status(check(c, &r), PROXY_AUTH_EPATH);
        cr_assert_null(r.out);
        req_init(&r, paths[i], "Bearer tok-0123456789abcdef");
        assert_status(check(t, &r), PROXY_AUTH_EPATH);
    }
    /* the same token on the canonical path passes */
    req_bearer(&r, "/sy.test.Echo/Unary", tok);
    assert_status(check(c, &r), PROXY_AUTH_OK);
    free(r.out);
    req_init(&r, "/sy.test.Echo/Unary", "Bearer tok-0123456789abcdef");
    assert_status(check(t, &r), PROXY_AUTH_OK);
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EPATH),
                     "malformed :path (expected /package.Service/Method)");
    free(tok);
    conf_free(c);
    conf_free(t);
}

/* ---- lifecycle ---- */

Test(auth, off_attaches_nothing_and_null_verifier_refuses)
{
    struct conf *c = load("mode = off\nsecret_file = /nonexistent\n");
    struct req r;

    cr_assert_null(c->auth.verifier);
    req_init(&r, "/sy.test.Echo/Unary", NULL);
    assert_status(check(c, &r), PROXY_AUTH_ENOTCONF);
    conf_free(c);
    proxy_auth_free(NULL);
}

Test(auth, reasons_name_no_secret)
{
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EEXPIRED), "token expired");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_ENOTYET), "token not yet valid");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_ESIGNATURE), "bad signature");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EISSUER), "wrong issuer");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EAUDIENCE), "wrong audience");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EMISSING), "missing authorization header");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_EUNKNOWN), "unknown token");
    cr_assert_str_eq(proxy_auth_reason(-1), "authentication failed");
    cr_assert_str_eq(proxy_auth_reason(PROXY_AUTH_STATUS_COUNT), "authentication failed");
    for (int i = 0; i < PROXY_AUTH_STATUS_COUNT; i++)
        cr_assert_not_null(proxy_auth_reason(i));
}

Test(auth, the_wall_clock_is_what_the_caller_passes)
{
    struct conf *c = load_secret("leeway = 0\n");
    double now = (double)time(NULL);
    char claims[128];

    snprintf(claims, sizeof(claims), "{\"exp\":%.0f,\"nbf\":%.0f}", now + 60, now - 60);
    assert_status(check_token(c, mint_hs(SECRET, claims), now), PROXY_AUTH_OK);
    assert_status(check_token(c, mint_hs(SECRET, claims), now + 61), PROXY_AUTH_EEXPIRED);
    assert_status(check_token(c, mint_hs(SECRET, claims), now - 61), PROXY_AUTH_ENOTYET);
    conf_free(c);
}
