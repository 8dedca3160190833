/* Integration tests of [auth]: a real switchyard in front of a sy-backend (the
 * echo service) and a fake h2 server that records the request headers it
 * gets (tests/support/fakehealth), gRPC C core clients sending bearer tokens
 * as metadata. JWTs are minted here with libjwt; keys are made by the openssl
 * CLI in the test's temp dir and never committed.
 * Invariant: every test ends by stopping its switchyard with SIGTERM and
 * requiring exit 0 (ASan: no leak on the auth path), then greps everything
 * switchyard wrote for the secret and the tokens.
 * SPDX-License-Identifier: MIT */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <jwt.h>

#include "tests/peers/gclient.h"
#include "tests/support/fakehealth.h"
#include "tests/support/support.h"

#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */
#define SECRET  "it-is-a-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
#define ISSUER  "https://idp.sy.test"
#define AUD     "sy-api"

static struct sup_backend be;
static struct fhs_server *fake;
static struct sup_proxy px;
static char secret_path[512];

static void start_peers(void)
{
    memset(&px, 0, sizeof(px));
    cr_assert_eq(sup_start_backend(&be, "b0", NULL), 0, "sy-backend did not start");
    fake = fhs_start(FHS_SERVING, 0);
    cr_assert_not_null(fake, "the header-recording server did not start");
    cr_assert_eq(sup_write_file("jwt.secret", SECRET "\n", secret_path, sizeof(secret_path)), 0);
}

static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc) && sup_stop(px.proc, PROXY_T) != 0)
        sup_dump_log(px.proc, 60);
    fhs_stop(fake);
    fake = NULL;
    sup_stop_all();
}

TestSuite(auth, .init = start_peers, .fini = stop_all, .timeout = 120);

/* ---- switchyard ---- */

static char alog_path[512];
static const char *echo_routes = "/sy.test."; /* a test may route everything ("/") there */

/* |auth| is the [auth] section's body. */
static void start_proxy(const char *auth)
{
    char text[4096];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    snprintf(alog_path, sizeof(alog_path), "%s/access.log", sup_tmpdir());
    snprintf(text, sizeof(text),
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 5s\n"
             "log_level = debug\n"
             "access_log = %s\n"
             "[admin]\n"
             "listen = off\n"
             "[auth]\n"
             "%s\n"
             "[cluster.echo]\n"
             "targets = %s\n"
             "routes = %s\n"
             "health_check = off\n"
             "[cluster.fake]\n"
             "targets = %s\n"
             "routes = /sy.auth.Fake/\n"
             "health_check = off\n",
             port, alog_path, auth, be.addr, echo_routes, fhs_addr(fake));
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
}

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

/* Nothing switchyard wrote (stdout, stderr, access log) holds |s|. */
static void assert_never_written(const char *s, const char *what)
{
    cr_assert_not(sup_file_contains(px.proc->err_path, s), "%s in switchyard's stderr", what);
    cr_assert_not(sup_file_contains(px.proc->out_path, s), "%s in switchyard's stdout", what);
    cr_assert_not(sup_file_contains(alog_path, s), "%s in the access log", what);
}

/* ---- tokens ---- */

static char *mint(jwt_alg_t alg, const void *key, size_t keylen, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* A JWT with the claims |fmt| (JSON, printf-style) signed with |alg| and |key|. */
static char *mint(jwt_alg_t alg, const void *key, size_t keylen, const char *fmt, ...)
{
    char json[1024];
    jwt_t *j = NULL;
    va_list ap;
    char *tok;

    va_start(ap, fmt);
    vsnprintf(json, sizeof(json), fmt, ap);
    va_end(ap);
    cr_assert_eq(jwt_new(&j), 0);
    cr_assert_eq(jwt_add_grants_json(j, json), 0, "claims %s", json);
    if (alg != JWT_ALG_NONE)
        cr_assert_eq(jwt_set_alg(j, alg, key, (int)keylen), 0);
    tok = jwt_encode_str(j);
    cr_assert_not_null(tok);
    jwt_free(j);
    return tok;
}

static long now_s(void)
{
    return (long)time(NULL);
}

/* A valid HS256 token for |sub| (one hour left). */
static char *good_token(const char *sub)
{
    return mint(JWT_ALG_HS256, SECRET, strlen(SECRET),
                "{\"sub\":\"%s\",\"role\":\"admin\",\"iss\":\"" ISSUER "\",\"aud\":\"" AUD
                "\",\"exp\":%ld}",
                sub, now_s() + 3600);
}

/* One Echo unary call with |authz| as authorization (NULL: none) to |path|
 * (NULL: the echo service). */
static int call(const char *path, const char *authz, const struct gc_md *extra, size_t nextra,
                struct gc_result *r)
{
    struct gc_opts o;
    struct gc_md md[4];
    size_t n = 0;

    gc_opts_init(&o, GC_UNARY);
    o.method = path;
    if (authz != NULL)
        md[n++] = (struct gc_md){"authorization", authz};
    for (size_t i = 0; i < nextra && n < 4; i++)
        md[n++] = extra[i];
    o.md = md;
    o.nmd = n;
    return gc_call(px.addr, &o, r);
}

static int call_bearer(const char *tok, struct gc_result *r)
{
    char authz[4096];

    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    return call(NULL, authz, NULL, 0, r);
}

static void assert_unauthenticated(const struct gc_result *r, const char *reason)
{
    char want[256];

    snprintf(want, sizeof(want), "switchyard: %s", reason);
    cr_assert_eq(r->status, 16, "want UNAUTHENTICATED (%s), got %d (%s)", reason, r->status,
                 r->message);
    cr_assert_str_eq(r->message, want);
    cr_assert_not(strstr(r->message, SECRET), "the secret is in the answer");
}

static uint64_t backend_calls(void)
{
    struct gc_stats st;

    cr_assert_eq(gc_stats(be.addr, false, &st), 0);
    return st.calls_started;
}

static const char jwt_auth[] = "mode = jwt\n"
                               "secret_file = %s\n"
                               "issuer = " ISSUER "\n"
                               "audience = " AUD ", other-api\n"
                               "leeway = 10s\n"
                               "forward_claims = sub, role\n"
                               "strip_authorization = on\n";

static void start_jwt_proxy(void)
{
    char auth[1024];

    snprintf(auth, sizeof(auth), jwt_auth, secret_path);
    start_proxy(auth);
}

/* ---- tests ---- */

Test(auth, valid_token_reaches_the_backend)
{
    struct gc_result r;
    char *tok = good_token("alice");

    start_jwt_proxy();
    cr_assert_eq(call_bearer(tok, &r), 0, "status %d (%s)", r.status, r.message);
    cr_assert(r.sizes_ok && r.content_ok);
    cr_assert_str_eq(r.backend_id, "b0");
    stop_proxy_clean();
    assert_never_written(SECRET, "the secret");
    assert_never_written(tok, "the token");
    free(tok);
}

Test(auth, invalid_credentials_get_unauthenticated_and_never_reach_a_backend)
{
    struct gc_result r;
    uint64_t before;
    long t = now_s();
    char *toks[8];
    int n = 0;

    start_jwt_proxy();
    before = backend_calls();

    call(NULL, NULL, NULL, 0, &r);
    assert_unauthenticated(&r, "missing authorization header");
    call(NULL, "Basic dXNlcjpwYXNz", NULL, 0, &r);
    assert_unauthenticated(&r, "malformed authorization header (expected: Bearer <token>)");
    call(NULL, "Bearer not-a-jwt", NULL, 0, &r);
    assert_unauthenticated(&r, "malformed token");

    toks[n] = mint(JWT_ALG_HS256, SECRET, strlen(SECRET),
                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"exp\":%ld}", t - 60);
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "token expired");

    toks[n] = mint(JWT_ALG_HS256, SECRET, strlen(SECRET),
                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"nbf\":%ld}", t + 600);
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "token not yet valid");

    toks[n] = mint(JWT_ALG_HS256, "another-secret-another-secret-0123456789", 40,
                   "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\",\"exp\":%ld}", t + 600);
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "bad signature");

    toks[n] = mint(JWT_ALG_HS256, SECRET, strlen(SECRET),
                   "{\"iss\":\"https://evil.test\",\"aud\":\"" AUD "\",\"exp\":%ld}", t + 600);
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "wrong issuer");

    toks[n] = mint(JWT_ALG_HS256, SECRET, strlen(SECRET),
                   "{\"iss\":\"" ISSUER "\",\"aud\":[\"billing\"],\"exp\":%ld}", t + 600);
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "wrong audience");

    toks[n] = mint(JWT_ALG_NONE, NULL, 0, "{\"iss\":\"" ISSUER "\",\"aud\":\"" AUD "\"}");
    call_bearer(toks[n++], &r);
    assert_unauthenticated(&r, "token algorithm not allowed");

    cr_assert_eq(backend_calls(), before, "a refused call reached the backend");
    /* the access log shows them as UNAUTHENTICATED */
    stop_proxy_clean();
    cr_assert(sup_file_contains(alog_path, " UNAUTHENTICATED "),
              "no UNAUTHENTICATED in the access log");
    assert_never_written(SECRET, "the secret");
    for (int i = 0; i < n; i++) {
        assert_never_written(toks[i], "a token");
        free(toks[i]);
    }
}

Test(auth, own_health_service_is_exempt)
{
    int st = -1;
    struct gc_result r;

    start_jwt_proxy();
    cr_assert_eq(gc_health_check(px.addr, "", &st), 0, "switchyard's own Health/Check");
    cr_assert_eq(st, 1, "SERVING");
    /* the echo service is not exempt */
    call(NULL, NULL, NULL, 0, &r);
    assert_unauthenticated(&r, "missing authorization header");
    stop_proxy_clean();
}

/* Issue 12.9: a path that only spells its way under the exempt health
 * service is refused before anything looks at it (the auth filter, routing),
 * with or without a good token, even when every path would route to the
 * backend. proxy_auth_request() refuses such a path too (test_auth's unit
 * tests); the call refuses it first, with or without [auth]. */
Test(auth, traversal_past_an_exempt_service_is_refused_and_never_reaches_a_backend)
{
    static const char *const paths[] = {
        "/grpc.health.v1.Health/../sy.test.Echo/Unary",
        "/grpc.health.v1.Health/%2e%2e/sy.test.Echo/Unary",
        "/grpc.health.v1.Health/Check/../../sy.test.Echo/Unary",
        "/grpc.health.v1.Health//sy.test.Echo/Unary",
        "/grpc.health.v1.Health/./../sy.test.Echo/Unary",
    };
    char *tok = good_token("alice");
    char authz[2048];
    struct gc_result r;
    uint64_t before;
    int st = -1;

    echo_routes = "/";
    start_jwt_proxy();
    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    before = backend_calls();
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        for (int with_token = 0; with_token < 2; with_token++) {
            call(paths[i], with_token ? authz : NULL, NULL, 0, &r);
            cr_assert_eq(r.status, 12, "%s: want UNIMPLEMENTED, got %d (%s)", paths[i], r.status,
                         r.message);
            cr_assert(strstr(r.message, "malformed method path") != NULL, "%s: %s", paths[i],
                      r.message);
        }
    }
    cr_assert_eq(backend_calls(), before, "%llu refused calls reached the backend",
                 (unsigned long long)(backend_calls() - before));
    /* the exempt service and the canonical path with a token still work */
    cr_assert_eq(gc_health_check(px.addr, "", &st), 0, "switchyard's own Health/Check");
    cr_assert_eq(call(NULL, authz, NULL, 0, &r), 0, "status %d (%s)", r.status, r.message);
    cr_assert_eq(backend_calls(), before + 1);
    stop_proxy_clean();
    free(tok);
}

Test(auth, empty_exempt_protects_the_health_service_too)
{
    char auth[1024];
    int st = -1;

    snprintf(auth, sizeof(auth), "mode = jwt\nsecret_file = %s\nexempt =\n", secret_path);
    start_proxy(auth);
    cr_assert_eq(gc_health_check(px.addr, "", &st), 16);
    stop_proxy_clean();
}

Test(auth, claims_are_forwarded_and_authorization_stripped)
{
    struct gc_result r;
    char *tok = good_token("alice");
    char authz[2048];
    static const struct gc_md spoof[] = {{"x-jwt-sub", "root"}, {"x-request-id", "req-7"}};

    start_jwt_proxy();
    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    call("/sy.auth.Fake/Check", authz, spoof, 2, &r);
    cr_assert_eq(r.status, 0, "status %d (%s)", r.status, r.message);
    cr_assert(fhs_saw_header(fake, "x-jwt-sub", "alice"), "x-jwt-sub did not arrive");
    cr_assert(fhs_saw_header(fake, "x-jwt-role", "admin"), "x-jwt-role did not arrive");
    cr_assert(fhs_saw_header(fake, "x-request-id", "req-7"), "other metadata must go on");
    cr_assert_not(fhs_saw_header(fake, "x-jwt-sub", "root"), "the client's x-jwt-sub went on");
    cr_assert_not(fhs_saw_header(fake, "authorization", authz), "authorization was not stripped");
    /* an unauthenticated call never gets there */
    call("/sy.auth.Fake/Check", NULL, spoof, 2, &r);
    cr_assert_eq(r.status, 16);
    stop_proxy_clean();
    assert_never_written(SECRET, "the secret");
    free(tok);
}

Test(auth, without_strip_authorization_goes_on)
{
    struct gc_result r;
    char *tok = good_token("bob");
    char auth[1024], authz[2048];

    snprintf(auth, sizeof(auth), "mode = jwt\nsecret_file = %s\n", secret_path);
    start_proxy(auth);
    snprintf(authz, sizeof(authz), "Bearer %s", tok);
    call("/sy.auth.Fake/Check", authz, NULL, 0, &r);
    cr_assert_eq(r.status, 0, "status %d (%s)", r.status, r.message);
    cr_assert(fhs_saw_header(fake, "authorization", authz));
    cr_assert_not(fhs_saw_header(fake, "x-jwt-sub", "bob"), "no forward_claims: no x-jwt-*");
    stop_proxy_clean();
    free(tok);
}

Test(auth, static_tokens)
{
    char auth[1024], path[512];
    struct gc_result r;

    cr_assert_eq(sup_write_file("tokens", "# CI robots\nci-robot-token-1\n\nops.token/2==\n", path,
                                sizeof(path)),
                 0);
    snprintf(auth, sizeof(auth), "mode = token\ntokens_file = %s\n", path);
    start_proxy(auth);
    cr_assert_eq(call_bearer("ci-robot-token-1", &r), 0, "status %d (%s)", r.status, r.message);
    cr_assert_eq(call_bearer("ops.token/2==", &r), 0, "status %d (%s)", r.status, r.message);
    call_bearer("ci-robot-token-2", &r);
    assert_unauthenticated(&r, "unknown token");
    call(NULL, NULL, NULL, 0, &r);
    assert_unauthenticated(&r, "missing authorization header");
    stop_proxy_clean();
    assert_never_written("ci-robot-token-1", "a static token");
    assert_never_written("ops.token/2==", "a static token");
}

/* Both key kinds from the openssl CLI; SIGHUP after the key file changed
 * switches to the new key, and a bad file on reload keeps the old one. */
static void openssl(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void openssl(const char *fmt, ...)
{
    char cmd[1024], args[768];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(args, sizeof(args), fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof(cmd), "cd '%s' && ( %s ) 2>/dev/null", sup_tmpdir(), args);
    cr_assert_eq(system(cmd), 0, "failed: %s", cmd);
}

static char *mint_with(const char *keyfile, jwt_alg_t alg)
{
    char path[512];
    char *key, *tok;
    size_t len = 0;

    snprintf(path, sizeof(path), "%s/%s", sup_tmpdir(), keyfile);
    key = sup_read_file(path);
    cr_assert_not_null(key);
    len = strlen(key);
    tok = mint(alg, key, len, "{\"sub\":\"k\",\"exp\":%ld}", now_s() + 3600);
    free(key);
    return tok;
}

static bool reload_failed(void *err_path)
{
    return sup_file_contains(err_path, "reload failed");
}

struct status_wait {
    const char *tok;
    int want;
};

static bool status_is(void *arg)
{
    struct status_wait *w = arg;
    struct gc_result r;

    call_bearer(w->tok, &r);
    return r.status == w->want;
}

Test(auth, public_keys_and_reload)
{
    char auth[1024];
    struct gc_result r;
    char *rsa, *ec;
    struct status_wait w;

    openssl("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out rsa.key && "
            "openssl pkey -in rsa.key -pubout -out rsa.pub && "
            "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.key && "
            "openssl pkey -in ec.key -pubout -out ec.pub && cp rsa.pub current.pub");
    rsa = mint_with("rsa.key", JWT_ALG_RS256);
    ec = mint_with("ec.key", JWT_ALG_ES256);
    snprintf(auth, sizeof(auth), "mode = jwt\npublic_key_file = %s/current.pub\n", sup_tmpdir());
    start_proxy(auth);
    cr_assert_eq(call_bearer(rsa, &r), 0, "status %d (%s)", r.status, r.message);
    call_bearer(ec, &r);
    assert_unauthenticated(&r, "token algorithm not allowed");

    /* rotate to the EC key */
    openssl("cp ec.pub current.pub");
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    w = (struct status_wait){ec, 0};
    cr_assert(sup_poll(status_is, &w, 10000), "the new key was not taken on SIGHUP");
    call_bearer(rsa, &r);
    assert_unauthenticated(&r, "token algorithm not allowed");

    /* a private key by mistake: the reload fails and the EC key stays */
    openssl("cp rsa.key current.pub");
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_poll(reload_failed, px.proc->err_path, 10000));
    cr_assert_eq(call_bearer(ec, &r), 0, "status %d (%s)", r.status, r.message);
    stop_proxy_clean();
    cr_assert_not(sup_file_contains(px.proc->err_path, "PRIVATE KEY-----"),
                  "key material in the log");
    free(rsa);
    free(ec);
}

Test(auth, bad_secret_is_refused_without_showing_it)
{
    char auth[1024], path[512], ini[4096];
    const char *argv[5];
    struct sup_proc *p;
    int st;

    cr_assert_eq(sup_write_file("short.secret", "short-s3cr3t\n", path, sizeof(path)), 0);
    snprintf(auth, sizeof(auth),
             "[proxy]\nlisten = 127.0.0.1:1\n[admin]\nlisten = off\n[auth]\nmode = jwt\n"
             "secret_file = %s\n[cluster.a]\ntargets = 127.0.0.1:2\n",
             path);
    cr_assert_eq(sup_write_file("bad.ini", auth, ini, sizeof(ini)), 0);
    argv[0] = sup_proxy_bin();
    argv[1] = "-t";
    argv[2] = "-c";
    argv[3] = ini;
    argv[4] = NULL;
    st = sup_run("switchyard-t", argv, PROXY_T, &p);
    cr_assert_eq(st, 1, "switchyard -t exited %d", st);
    cr_assert(sup_file_contains(p->err_path, "[auth] secret_file: expected a secret of at least"));
    cr_assert_not(sup_file_contains(p->err_path, "s3cr3t"), "the secret is in the message");

    /* the same as a reload of a running switchyard */
    start_jwt_proxy();
    cr_assert_eq(sup_write_file("jwt.secret", "short-s3cr3t\n", path, sizeof(path)), 0);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_poll(reload_failed, px.proc->err_path, 10000));
    stop_proxy_clean();
    assert_never_written("s3cr3t", "the short secret");
    assert_never_written(SECRET, "the secret");
}
