/* libFuzzer harness: call authentication (proxy/auth.c, proxy_auth_request)
 * with the four kinds of verifier: JWT with an HS256 secret, JWT with an RSA
 * public key (RS256), JWT with an EC P-256 key (ES256), and static tokens.
 * The verifiers are built once, in LLVMFuzzerInitialize, from real [auth]
 * sections (conf_load_string + proxy_auth_attach).
 * Input: byte 0 picks the verifier ('H', 'R', 'E', 'T'; other bytes modulo
 * 4), then lines: the first is the :path, each further one a header field
 * "name: value" (name up to the first ':' after its first byte). Seeds hold
 * real tokens: JWTs signed with the keys below (their private halves were
 * thrown away once the seeds were minted) and one of the static tokens.
 * SY_FUZZ_VERBOSE=1 prints each input's verdict (to check new seeds).
 * Invariant checked on every input, besides memory safety: a refusal returns
 * no list; a pass never goes to a non-canonical :path, and off the exempt
 * services needs exactly one authorization field; the forwarded list never
 * carries authorization when strip_authorization = on, nor an x-jwt-* field
 * the client sent.
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/conf.h"
#include "core/grpc.h"
#include "proxy/auth.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "now" for every input: the seeds' tokens expire at 1700000600. */
#define NOW       1700000000.0
#define SECRET    "0123456789abcdef0123456789abcdef-fuzz-hs256-secret"
#define MAXFIELDS 32

static const char rsa_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                              "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtRuNCEZLVbKZfYtZaaDp\n"
                              "+8Pg2gioJiJvV2mWI89tuqegTxS7kQBb+FeV2jgTQEnpsqxt2llfefW8cXPklqcz\n"
                              "t7XCRqBC0CTDOK9KfTuTgBNvhssl4U6MqI+WRVYwuvp/OHjB5m5JNx6L2DfAZTTO\n"
                              "KGvJlb6WAQGsxPt3FwosbR1KXiCe1ZObaMI2RCIdWv5kiRla6INaT7DMN3Ocrvq+\n"
                              "RGeuFgIq6NCQRC0ZL23J9Af52wlFW60fiRABfpNzotBN/QLxev/ed5Z2en5M/aeo\n"
                              "mkfPV8JBuqgHZAGtDvmVQWHax3LEPgALqzJRTPNtbrTBTgvR8PK/A/eIT20m2mJs\n"
                              "ZQIDAQAB\n"
                              "-----END PUBLIC KEY-----\n";

static const char ec_pub[] = "-----BEGIN PUBLIC KEY-----\n"
                             "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE6RB/4CnxYMnBnKlrD+thHxy9cBEy\n"
                             "4Ko7iE+slO/Obj6kFDRwnKE47MbCk84XDzIBe9wr/hF0Nj+PROhogbzkWw==\n"
                             "-----END PUBLIC KEY-----\n";

static const char tokens[] = "# fuzz tokens\n"
                             "tok-0123456789abcdef\n"
                             "second.token_value-~+/=\n";

enum {
    V_HS,
    V_RS,
    V_ES,
    V_TOKEN,
    V_COUNT
};

static struct conf *confs[V_COUNT];
static bool verbose; /* SY_FUZZ_VERBOSE=1: each input's verdict on stderr, to check seeds */

static void die(const char *what, const char *err)
{
    fprintf(stderr, "fuzz check failed: %s: %s\n", what, err);
    abort();
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write", path);
}

static struct conf *build(const char *auth)
{
    char text[2048], err[512];
    struct conf *c = NULL;

    snprintf(text, sizeof(text), "[cluster.a]\ntargets = 127.0.0.1:1\nroutes = /\n[auth]\n%s",
             auth);
    if (conf_load_string(text, "fuzz.ini", &c, err, sizeof(err)) != 0)
        die("conf", err);
    if (proxy_auth_attach(c, err, sizeof(err)) != 0 || c->auth.verifier == NULL)
        die("verifier", err);
    return c;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *t = getenv("TMPDIR");
    char dir[256], rsa[300], ec[300], tok[300], sect[1024];

    (void)argc;
    (void)argv;
    verbose = getenv("SY_FUZZ_VERBOSE") != NULL && strcmp(getenv("SY_FUZZ_VERBOSE"), "1") == 0;
    snprintf(dir, sizeof(dir), "%s/sy-fuzz-auth-XXXXXX", t != NULL && *t != '\0' ? t : "/tmp");
    if (mkdtemp(dir) == NULL)
        die("mkdtemp", dir);
    snprintf(rsa, sizeof(rsa), "%s/rsa.pub", dir);
    snprintf(ec, sizeof(ec), "%s/ec.pub", dir);
    snprintf(tok, sizeof(tok), "%s/tokens", dir);
    write_file(rsa, rsa_pub);
    write_file(ec, ec_pub);
    write_file(tok, tokens);

    confs[V_HS] = build("mode = jwt\nsecret = " SECRET "\n"
                        "issuer = https://issuer.test\naudience = sy-test, other\n"
                        "forward_claims = sub, role, n, Groups\nstrip_authorization = on\n"
                        "exempt = /grpc.health.v1.Health/, /pub.v1.Public/Get\n");
    snprintf(sect, sizeof(sect),
             "mode = jwt\npublic_key_file = %s\nalgorithms = RS256\n"
             "issuer = https://issuer.test\naudience = sy-test\nleeway = 0\n"
             "forward_claims = sub, groups\n",
             rsa);
    confs[V_RS] = build(sect);
    snprintf(sect, sizeof(sect), "mode = jwt\npublic_key_file = %s\nforward_claims = sub\n", ec);
    confs[V_ES] = build(sect);
    snprintf(sect, sizeof(sect), "mode = token\ntokens_file = %s\nstrip_authorization = on\n", tok);
    confs[V_TOKEN] = build(sect);

    /* Everything was read at load time; nothing on disk is needed any more. */
    unlink(rsa);
    unlink(ec);
    unlink(tok);
    rmdir(dir);
    return 0;
}

/* Copies |len| bytes of |p| into a block of exactly that size. */
static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
    uint8_t *q = malloc(len ? len : 1);

    if (q == NULL)
        abort();
    memcpy(q, p, len);
    return q;
}

static bool points_into(const uint8_t *p, const nghttp2_nv *nv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if ((p >= nv[i].name && p <= nv[i].name + nv[i].namelen) ||
            (p >= nv[i].value && p <= nv[i].value + nv[i].valuelen))
            return true;
    return false;
}

static bool is_exempt_path(const struct conf *c, const uint8_t *path, size_t len)
{
    for (size_t i = 0; i < c->auth.nexempt; i++) {
        const char *e = c->auth.exempt[i];
        size_t elen = strlen(e);

        if (e[elen - 1] == '/' ? len > elen && memcmp(path, e, elen) == 0
                               : len == elen && memcmp(path, e, elen) == 0)
            return true;
    }
    return false;
}

static void check(const struct conf *c, const uint8_t *path, size_t pathlen, const nghttp2_nv *nv,
                  size_t n)
{
    nghttp2_nv *out = (nghttp2_nv *)1;
    size_t nout = 99, nauth = 0;
    int rc = proxy_auth_request(c->auth.verifier, path, pathlen, nv, n, NOW, &out, &nout);

    if (rc < 0 || rc >= PROXY_AUTH_STATUS_COUNT)
        die("status out of range", proxy_auth_reason(rc));
    if (verbose)
        fprintf(stderr, "fuzz_auth: %.*s with %zu fields: %s, %zu forwarded\n", (int)pathlen,
                (const char *)path, n, proxy_auth_reason(rc), nout);
    if (rc != PROXY_AUTH_OK) {
        if (out != NULL || nout != 0)
            die("a refusal returned a list", proxy_auth_reason(rc));
        return;
    }
    if (!grpc_path_is_canonical(path, pathlen))
        die("passed a non-canonical :path", "");
    for (size_t i = 0; i < n; i++)
        nauth += nv[i].namelen == 13 && memcmp(nv[i].name, "authorization", 13) == 0;
    if (nauth != 1 && !is_exempt_path(c, path, pathlen))
        die("passed without exactly one authorization field", "");
    for (size_t i = 0; out != NULL && i < nout; i++) {
        const nghttp2_nv *f = &out[i];
        volatile uint8_t sink = 0;

        for (size_t k = 0; k < f->namelen; k++)
            sink ^= f->name[k];
        for (size_t k = 0; k < f->valuelen; k++)
            sink ^= f->value[k];
        (void)sink;
        if (c->auth.strip_authorization && f->namelen == 13 &&
            memcmp(f->name, "authorization", 13) == 0)
            die("authorization forwarded with strip_authorization = on", "");
        if (c->auth.mode == CONF_AUTH_JWT && f->namelen >= 6 && memcmp(f->name, "x-jwt-", 6) == 0 &&
            points_into(f->name, nv, n))
            die("a client's x-jwt-* field forwarded", "");
    }
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char pick[] = "HRET";
    uint8_t *fields[2 * MAXFIELDS];
    nghttp2_nv nv[MAXFIELDS];
    const uint8_t *p, *end, *nl;
    uint8_t *path;
    size_t n = 0, nf = 0, pathlen;
    const char *sel;
    int v;

    if (size < 1)
        return 0;
    sel = data[0] != '\0' ? strchr(pick, data[0]) : NULL;
    v = sel != NULL ? (int)(sel - pick) : data[0] % V_COUNT;
    p = data + 1;
    end = data + size;
    nl = memchr(p, '\n', (size_t)(end - p));
    pathlen = (size_t)((nl != NULL ? nl : end) - p);
    path = dup_exact(p, pathlen);
    p = nl != NULL ? nl + 1 : end;
    while (p < end && n < MAXFIELDS) {
        const uint8_t *line_end, *colon;
        size_t linelen;

        nl = memchr(p, '\n', (size_t)(end - p));
        line_end = nl != NULL ? nl : end;
        linelen = (size_t)(line_end - p);
        colon = linelen > 1 ? memchr(p + 1, ':', linelen - 1) : NULL;
        if (colon == NULL)
            colon = line_end;
        fields[nf] = dup_exact(p, (size_t)(colon - p));
        nv[n].name = fields[nf++];
        nv[n].namelen = (size_t)(colon - p);
        if (colon < line_end && colon + 1 < line_end && colon[1] == ' ')
            colon++;
        p = colon < line_end ? colon + 1 : line_end;
        fields[nf] = dup_exact(p, (size_t)(line_end - p));
        nv[n].value = fields[nf++];
        nv[n].valuelen = (size_t)(line_end - p);
        nv[n].flags = NGHTTP2_NV_FLAG_NONE;
        n++;
        p = nl != NULL ? nl + 1 : end;
    }
    check(confs[v], path, pathlen, nv, n);
    for (size_t i = 0; i < nf; i++)
        free(fields[i]);
    free(path);
    return 0;
}
