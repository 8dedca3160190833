/* Call authentication: bearer JWTs (libjwt verifies the signature; the alg
 * allow-list, exp/nbf/iss/aud and the forwarded claims are checked here) and
 * static bearer tokens.
 * Invariant: the alg of a JWT is checked against the allow-list before libjwt
 * sees the token, so neither "none" nor an HS* token keyed with a public key
 * (alg confusion, RFC 8725 §2.1) ever reaches a signature check; and nothing
 * taken from an unverified token is trusted or forwarded.
 * SPDX-License-Identifier: MIT */
#include "proxy/auth.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "conf/conf.h"
#include "core/grpc.h"

#define DIGEST_LEN      32   /* SHA-256 of each static token */
#define MAX_CLAIM_VALUE 1024 /* a forwarded claim longer than this is left out */

struct fwd_claim {
    const char *claim; /* borrowed from the conf: the JSON member name */
    char *header;      /* "x-jwt-" + the claim in lower case */
    size_t headerlen;
};

struct proxy_auth {
    enum conf_auth_mode mode;
    bool strip_authorization;
    char *const *exempt; /* borrowed from the conf */
    size_t nexempt;

    /* jwt */
    const unsigned char *key; /* the HS* secret (borrowed) or |pem| */
    size_t keylen;
    char *pem;                      /* the public key as SPKI PEM, whatever the file held */
    bool allowed[JWT_ALG_TERM + 1]; /* by jwt_alg_t; [JWT_ALG_NONE] and [JWT_ALG_INVAL] never set */
    const char *issuer;             /* borrowed; NULL: not checked */
    char *const *audiences;         /* borrowed */
    size_t naudiences;
    double leeway_s;
    struct fwd_claim *claims;
    size_t nclaims;

    /* token */
    unsigned char (*digests)[DIGEST_LEN];
    size_t ndigests;
};

static const char *const reasons[PROXY_AUTH_STATUS_COUNT] = {
    [PROXY_AUTH_OK] = "ok",
    [PROXY_AUTH_ENOTCONF] = "authentication is not configured",
    [PROXY_AUTH_EMISSING] = "missing authorization header",
    [PROXY_AUTH_EMALFORMED] = "malformed authorization header (expected: Bearer <token>)",
    [PROXY_AUTH_EBADTOKEN] = "malformed token",
    [PROXY_AUTH_EALG] = "token algorithm not allowed",
    [PROXY_AUTH_ESIGNATURE] = "bad signature",
    [PROXY_AUTH_EEXPIRED] = "token expired",
    [PROXY_AUTH_ENOTYET] = "token not yet valid",
    [PROXY_AUTH_EISSUER] = "wrong issuer",
    [PROXY_AUTH_EAUDIENCE] = "wrong audience",
    [PROXY_AUTH_EUNKNOWN] = "unknown token",
    [PROXY_AUTH_EPATH] = "malformed :path (expected /package.Service/Method)",
};

const char *proxy_auth_reason(int status)
{
    if (status < 0 || status >= PROXY_AUTH_STATUS_COUNT)
        return "authentication failed";
    return reasons[status];
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        abort(); /* OOM: we are an application (STYLE.md) */
    return p;
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- building (main thread) ---- */

static void sha256(const void *data, size_t len, unsigned char out[DIGEST_LEN])
{
    unsigned int n = DIGEST_LEN;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1)
        abort(); /* only fails on allocation */
}

/* Parses the PEM of public_key_file: an SPKI public key, or the public key of
 * a certificate. */
static EVP_PKEY *read_public_key(const char *pem, size_t len)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *pk;
    X509 *x;

    if (bio == NULL)
        abort();
    pk = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
    if (pk == NULL) {
        (void)BIO_reset(bio);
        x = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        if (x != NULL) {
            pk = X509_get_pubkey(x);
            X509_free(x);
        }
    }
    BIO_free(bio);
    ERR_clear_error(); /* the failed attempts' errors: nobody will read them */
    return pk;
}

/* The SPKI PEM of |pk|: the one form libjwt 1.10 verifies with. */
static char *write_public_key(EVP_PKEY *pk, size_t *len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *data, *out;
    long n;

    if (bio == NULL || PEM_write_bio_PUBKEY(bio, pk) != 1)
        abort();
    n = BIO_get_mem_data(bio, &data);
    out = xcalloc(1, (size_t)n + 1);
    memcpy(out, data, (size_t)n);
    *len = (size_t)n;
    BIO_free(bio);
    return out;
}

/* Fills a->allowed for a public key and checks [auth] algorithms against it. */
static int setup_public_key(struct proxy_auth *a, const struct conf *c, char *err, size_t errlen)
{
    const struct conf_auth *ca = &c->auth;
    EVP_PKEY *pk = read_public_key(ca->public_key, ca->public_key_len);
    jwt_alg_t fit[3];
    size_t nfit = 0;
    const char *kind;
    int rc = -1;

    if (pk == NULL) {
        seterr(err, errlen,
               "%s: [auth] public_key_file: expected a PEM public key (-----BEGIN PUBLIC "
               "KEY-----) or certificate in %s (from a private key: openssl pkey -in KEY "
               "-pubout)",
               c->path, ca->public_key_file);
        return -1;
    }
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_RSA) {
        kind = "an RSA key";
        if (EVP_PKEY_get_bits(pk) < 2048) {
            seterr(err, errlen,
                   "%s: [auth] public_key_file: expected an RSA key of at least 2048 bits in "
                   "%s, got %d",
                   c->path, ca->public_key_file, EVP_PKEY_get_bits(pk));
            goto out;
        }
        fit[nfit++] = JWT_ALG_RS256;
        fit[nfit++] = JWT_ALG_RS384;
        fit[nfit++] = JWT_ALG_RS512;
    } else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC) {
        char group[64] = "";

        kind = "an EC key";
        EVP_PKEY_get_group_name(pk, group, sizeof(group), NULL);
        /* RFC 7518 §3.4: each ES algorithm is tied to one curve */
        if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
            fit[nfit++] = JWT_ALG_ES256;
        else if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
            fit[nfit++] = JWT_ALG_ES384;
        else if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
            fit[nfit++] = JWT_ALG_ES512;
        if (nfit == 0) {
            seterr(err, errlen,
                   "%s: [auth] public_key_file: expected an EC key on P-256, P-384 or P-521 in "
                   "%s, got curve %s",
                   c->path, ca->public_key_file, group[0] != '\0' ? group : "unknown");
            goto out;
        }
    } else {
        seterr(err, errlen,
               "%s: [auth] public_key_file: expected an RSA or EC public key in %s (RS256, "
               "ES256, ...)",
               c->path, ca->public_key_file);
        goto out;
    }
    if (ca->nalgorithms == 0) {
        for (size_t i = 0; i < nfit; i++)
            a->allowed[fit[i]] = true;
    }
    for (size_t i = 0; i < ca->nalgorithms; i++) {
        jwt_alg_t alg = jwt_str_alg(ca->algorithms[i]);
        bool ok = false;

        for (size_t j = 0; j < nfit; j++)
            ok = ok || fit[j] == alg;
        if (!ok) {
            seterr(err, errlen, "%s: [auth] algorithms: %s does not fit %s (%s has %s)", c->path,
                   ca->algorithms[i], ca->public_key_file, ca->public_key_file, kind);
            goto out;
        }
        a->allowed[alg] = true;
    }
    a->pem = write_public_key(pk, &a->keylen);
    a->key = (const unsigned char *)a->pem;
    rc = 0;
out:
    EVP_PKEY_free(pk);
    return rc;
}

static void setup_secret(struct proxy_auth *a, const struct conf_auth *ca)
{
    a->key = (const unsigned char *)ca->secret;
    a->keylen = ca->secret_len;
    if (ca->nalgorithms == 0) {
        a->allowed[JWT_ALG_HS256] = a->allowed[JWT_ALG_HS384] = a->allowed[JWT_ALG_HS512] = true;
        return;
    }
    for (size_t i = 0; i < ca->nalgorithms; i++) { /* conf checked they are HS* */
        jwt_alg_t alg = jwt_str_alg(ca->algorithms[i]);

        if (alg == JWT_ALG_HS256 || alg == JWT_ALG_HS384 || alg == JWT_ALG_HS512)
            a->allowed[alg] = true;
    }
}

static void setup_claims(struct proxy_auth *a, const struct conf_auth *ca)
{
    a->claims = xcalloc(ca->nforward_claims, sizeof(*a->claims));
    a->nclaims = ca->nforward_claims;
    for (size_t i = 0; i < a->nclaims; i++) {
        const char *name = ca->forward_claims[i];
        size_t len = strlen(name);
        struct fwd_claim *fc = &a->claims[i];

        fc->claim = name;
        fc->headerlen = 6 + len;
        fc->header = xcalloc(1, fc->headerlen + 1);
        memcpy(fc->header, "x-jwt-", 6);
        /* RFC 9113 §8.2.1: field names are lower case on HTTP/2 */
        for (size_t j = 0; j < len; j++)
            fc->header[6 + j] = (char)tolower((unsigned char)name[j]);
    }
}

struct proxy_auth *proxy_auth_new(const struct conf *c, char *err, size_t errlen)
{
    const struct conf_auth *ca = &c->auth;
    struct proxy_auth *a = xcalloc(1, sizeof(*a));

    a->mode = ca->mode;
    a->strip_authorization = ca->strip_authorization;
    a->exempt = ca->exempt;
    a->nexempt = ca->nexempt;
    if (ca->mode == CONF_AUTH_JWT) {
        a->issuer = ca->issuer;
        a->audiences = ca->audiences;
        a->naudiences = ca->naudiences;
        a->leeway_s = ca->leeway_ms / 1000.0;
        if (ca->public_key != NULL) {
            if (setup_public_key(a, c, err, errlen) != 0) {
                proxy_auth_free(a);
                return NULL;
            }
        } else if (ca->secret != NULL) {
            setup_secret(a, ca);
        } else {
            seterr(err, errlen, "%s: [auth]: mode = jwt without a key", c->path);
            proxy_auth_free(a);
            return NULL;
        }
        setup_claims(a, ca);
    } else if (ca->mode == CONF_AUTH_TOKEN) {
        a->digests = xcalloc(ca->ntokens, sizeof(*a->digests));
        a->ndigests = ca->ntokens;
        for (size_t i = 0; i < ca->ntokens; i++)
            sha256(ca->tokens[i], strlen(ca->tokens[i]), a->digests[i]);
    }
    return a;
}

void proxy_auth_free(struct proxy_auth *a)
{
    if (a == NULL)
        return;
    if (a->pem != NULL) {
        OPENSSL_cleanse(a->pem, a->keylen);
        free(a->pem);
    }
    for (size_t i = 0; i < a->nclaims; i++)
        free(a->claims[i].header);
    free(a->claims);
    if (a->digests != NULL) {
        OPENSSL_cleanse(a->digests, a->ndigests * DIGEST_LEN);
        free(a->digests);
    }
    free(a);
}

static void verifier_free(void *v)
{
    proxy_auth_free(v);
}

int proxy_auth_attach(struct conf *c, char *err, size_t errlen)
{
    struct proxy_auth *a;

    if (c->auth.mode == CONF_AUTH_OFF)
        return 0;
    a = proxy_auth_new(c, err, errlen);
    if (a == NULL)
        return -1;
    c->auth.verifier = a;
    c->auth.verifier_free = verifier_free;
    return 0;
}

/* ---- verifying (workers) ---- */

/* |path| is canonical (checked first): an entry ending in '/' is a whole
 * service, whose prefix leaves exactly one method segment; any other entry is
 * one method, matched exactly (conf.c allows only these two forms). */
static bool is_exempt(const struct proxy_auth *a, const uint8_t *path, size_t len)
{
    for (size_t i = 0; i < a->nexempt; i++) {
        const char *e = a->exempt[i];
        size_t elen = strlen(e);

        if ((elen > 0 && e[elen - 1] == '/') ? len > elen && memcmp(path, e, elen) == 0
                                             : len == elen && memcmp(path, e, elen) == 0)
            return true;
    }
    return false;
}

static bool name_is(const nghttp2_nv *f, const char *s, size_t len)
{
    return f->namelen == len && memcmp(f->name, s, len) == 0;
}

static bool is_b64url(int c)
{
    return isalnum(c) || c == '-' || c == '_';
}

/* RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is
 * case-insensitive (RFC 9110 §11.1). Stores the token in |tok|/|toklen|. */
static bool parse_bearer(const uint8_t *v, size_t len, const uint8_t **tok, size_t *toklen)
{
    size_t i = 6, start;

    if (len < 8 || strncasecmp((const char *)v, "Bearer", 6) != 0 || v[6] != ' ')
        return false;
    while (i < len && v[i] == ' ')
        i++;
    start = i;
    while (i < len && (isalnum(v[i]) || strchr("-._~+/", v[i]) != NULL))
        i++;
    if (i == start)
        return false;
    while (i < len && v[i] == '=')
        i++;
    *tok = v + start;
    *toklen = i - start;
    while (i < len && (v[i] == ' ' || v[i] == '\t'))
        i++;
    return i == len && *toklen <= PROXY_AUTH_MAX_TOKEN;
}

/* Base64url without padding (RFC 7515 §2). Returns the decoded length, or -1. */
static long b64url_decode(const uint8_t *s, size_t len, unsigned char *out, size_t cap)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;

    if (len % 4 == 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int c = s[i], v;

        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '-')
            v = 62;
        else if (c == '_')
            v = 63;
        else
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n == cap)
                return -1;
            out[n++] = (unsigned char)(acc >> bits);
        }
    }
    return (long)n;
}

/* Decodes one JWS segment into a JSON object; duplicate members are refused
 * so that no two parsers can read the token differently. */
static json_t *segment_json(const uint8_t *s, size_t len)
{
    unsigned char buf[PROXY_AUTH_MAX_TOKEN];
    long n = b64url_decode(s, len, buf, sizeof(buf));
    json_t *j;

    if (n <= 0)
        return NULL;
    j = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (j != NULL && !json_is_object(j)) {
        json_decref(j);
        return NULL;
    }
    return j;
}

/* RFC 7515 §4.1.1: alg values are case-sensitive; libjwt 1.10's own lookup
 * is not, so names are matched here. Returns JWT_ALG_INVAL for others. */
static jwt_alg_t alg_from_name(const char *name)
{
    for (int i = JWT_ALG_NONE; i < JWT_ALG_TERM; i++) {
        const char *s = jwt_alg_str((jwt_alg_t)i);

        if (s != NULL && strcmp(s, name) == 0)
            return (jwt_alg_t)i;
    }
    return JWT_ALG_INVAL;
}

static bool aud_matches(const struct proxy_auth *a, const json_t *aud)
{
    for (size_t i = 0; i < a->naudiences; i++) {
        if (json_is_string(aud) && strcmp(json_string_value(aud), a->audiences[i]) == 0)
            return true;
        if (json_is_array(aud)) {
            size_t k;
            json_t *v;

            json_array_foreach(aud, k, v)
            {
                if (json_is_string(v) && strcmp(json_string_value(v), a->audiences[i]) == 0)
                    return true;
            }
        }
    }
    return false;
}

/* RFC 7519 §4.1: exp, nbf (NumericDate, with leeway), iss, aud. */
static int check_claims(const struct proxy_auth *a, const json_t *claims, double now)
{
    const json_t *exp = json_object_get(claims, "exp");
    const json_t *nbf = json_object_get(claims, "nbf");
    const json_t *iss = json_object_get(claims, "iss");

    if ((exp != NULL && !json_is_number(exp)) || (nbf != NULL && !json_is_number(nbf)))
        return PROXY_AUTH_EBADTOKEN;
    if (exp != NULL && now >= json_number_value(exp) + a->leeway_s)
        return PROXY_AUTH_EEXPIRED;
    if (nbf != NULL && now + a->leeway_s < json_number_value(nbf))
        return PROXY_AUTH_ENOTYET;
    if (a->issuer != NULL &&
        (!json_is_string(iss) || strcmp(json_string_value(iss), a->issuer) != 0))
        return PROXY_AUTH_EISSUER;
    if (a->naudiences > 0 && !aud_matches(a, json_object_get(claims, "aud")))
        return PROXY_AUTH_EAUDIENCE;
    return PROXY_AUTH_OK;
}

/* Verifies the compact JWS |tok| and stores its claims in |*claims| (the
 * caller decrefs them) on success. */
static int verify_jwt(const struct proxy_auth *a, const uint8_t *tok, size_t len, double now,
                      json_t **claims)
{
    const uint8_t *dot1 = memchr(tok, '.', len), *dot2;
    char buf[PROXY_AUTH_MAX_TOKEN + 1];
    json_t *head, *body;
    const json_t *typ;
    jwt_alg_t alg;
    jwt_t *jwt = NULL;
    int rc;

    *claims = NULL;
    if (dot1 == NULL)
        return PROXY_AUTH_EBADTOKEN;
    dot2 = memchr(dot1 + 1, '.', (size_t)(tok + len - dot1 - 1));
    /* header.claims.signature (RFC 7515 §7.1); five parts would be a JWE */
    if (dot2 == NULL || dot1 == tok || dot2 == dot1 + 1 ||
        memchr(dot2 + 1, '.', (size_t)(tok + len - dot2 - 1)) != NULL)
        return PROXY_AUTH_EBADTOKEN;
    for (size_t i = 0; i < len; i++)
        if (tok[i] != '.' && !is_b64url(tok[i]))
            return PROXY_AUTH_EBADTOKEN;

    head = segment_json(tok, (size_t)(dot1 - tok));
    if (head == NULL)
        return PROXY_AUTH_EBADTOKEN;
    alg = json_is_string(json_object_get(head, "alg"))
              ? alg_from_name(json_string_value(json_object_get(head, "alg")))
              : JWT_ALG_INVAL;
    typ = json_object_get(head, "typ");
    rc = PROXY_AUTH_OK;
    if (alg == JWT_ALG_INVAL)
        rc = PROXY_AUTH_EBADTOKEN;
    else if (typ != NULL && (!json_is_string(typ) || strcasecmp(json_string_value(typ), "JWT")))
        rc = PROXY_AUTH_EBADTOKEN; /* libjwt 1.10 takes typ JWT only */
    else if (json_object_get(head, "crit") != NULL)
        rc = PROXY_AUTH_EBADTOKEN; /* RFC 7515 §4.1.11: extensions we would have to know */
    else if (alg == JWT_ALG_NONE || !a->allowed[alg])
        rc = PROXY_AUTH_EALG;
    json_decref(head);
    if (rc != PROXY_AUTH_OK)
        return rc;
    if (dot2 + 1 == tok + len)
        return PROXY_AUTH_ESIGNATURE; /* an allowed alg with no signature */
    body = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (body == NULL)
        return PROXY_AUTH_EBADTOKEN;

    /* libjwt needs a C string; the key decides the algorithm family and the
     * allow-list above has already ruled out the ones that do not fit it. */
    memcpy(buf, tok, len);
    buf[len] = '\0';
    rc = jwt_decode(&jwt, buf, a->key, (int)a->keylen);
    /* A failed verification leaves errors on this thread's OpenSSL queue,
     * where SSL_get_error() on the same worker would misread them later. */
    ERR_clear_error();
    if (rc != 0 || jwt == NULL) {
        json_decref(body);
        return PROXY_AUTH_ESIGNATURE;
    }
    rc = jwt_get_alg(jwt) == alg ? check_claims(a, body, now) : PROXY_AUTH_EALG;
    jwt_free(jwt);
    if (rc != PROXY_AUTH_OK) {
        json_decref(body);
        return rc;
    }
    *claims = body;
    return PROXY_AUTH_OK;
}

/* Constant time over the whole set: neither which token matched nor how much
 * of one did shows in the timing. */
static int verify_static(const struct proxy_auth *a, const uint8_t *tok, size_t len)
{
    unsigned char d[DIGEST_LEN];
    int found = 0;

    sha256(tok, len, d);
    for (size_t i = 0; i < a->ndigests; i++)
        found |= CRYPTO_memcmp(d, a->digests[i], DIGEST_LEN) == 0;
    return found ? PROXY_AUTH_OK : PROXY_AUTH_EUNKNOWN;
}

/* A value fit for an HTTP/2 field (RFC 9113 §8.2.1): visible ASCII and inner
 * spaces, no leading or trailing whitespace. */
static bool is_field_value(const char *s, size_t len)
{
    if (len > MAX_CLAIM_VALUE || (len > 0 && (s[0] == ' ' || s[len - 1] == ' ')))
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    return true;
}

/* Strings go as they are; numbers, booleans, arrays and objects as compact
 * JSON. Returns a new string, or NULL when the claim cannot be a field value. */
static char *claim_value(const json_t *v, size_t *len)
{
    char *s = json_is_string(v) ? strdup(json_string_value(v))
                                : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);

    if (s == NULL)
        return NULL;
    *len = strlen(s);
    if (!is_field_value(s, *len)) {
        free(s);
        return NULL;
    }
    return s;
}

static bool is_owned_field(const struct proxy_auth *a, const nghttp2_nv *f)
{
    if (a->strip_authorization && name_is(f, "authorization", 13))
        return true;
    return a->mode == CONF_AUTH_JWT && f->namelen >= 6 && memcmp(f->name, "x-jwt-", 6) == 0;
}

/* Builds the forwarded list: |nv| less the owned fields, then the claims. */
static void forward_list(const struct proxy_auth *a, const nghttp2_nv *nv, size_t n,
                         const json_t *claims, nghttp2_nv **out, size_t *nout)
{
    char *vals[CONF_AUTH_MAX_CLAIMS];
    size_t vlens[CONF_AUTH_MAX_CLAIMS], nvals = 0, extra = 0, keep = 0, k = 0;
    nghttp2_nv *list;
    char *p;

    for (size_t i = 0; i < n; i++)
        keep += !is_owned_field(a, &nv[i]);
    for (size_t i = 0; claims != NULL && i < a->nclaims && i < CONF_AUTH_MAX_CLAIMS; i++) {
        const json_t *v = json_object_get(claims, a->claims[i].claim);

        vals[i] = v != NULL ? claim_value(v, &vlens[i]) : NULL;
        if (vals[i] != NULL)
            extra += a->claims[i].headerlen + vlens[i] + 2;
        nvals = i + 1;
    }
    if (keep == n && extra == 0)
        return; /* nothing to change: the fields go as received */
    list = xcalloc(1, (n + nvals) * sizeof(*list) + extra);
    p = (char *)(list + n + nvals);
    for (size_t i = 0; i < n; i++)
        if (!is_owned_field(a, &nv[i]))
            list[k++] = nv[i];
    for (size_t i = 0; i < nvals; i++) {
        const struct fwd_claim *fc = &a->claims[i];

        if (vals[i] == NULL)
            continue;
        memcpy(p, fc->header, fc->headerlen + 1);
        memcpy(p + fc->headerlen + 1, vals[i], vlens[i] + 1);
        list[k++] = (nghttp2_nv){(uint8_t *)p, (uint8_t *)p + fc->headerlen + 1, fc->headerlen,
                                 vlens[i], NGHTTP2_NV_FLAG_NONE};
        p += fc->headerlen + vlens[i] + 2;
        free(vals[i]);
    }
    *out = list;
    *nout = k;
}

int proxy_auth_request(const struct proxy_auth *a, const uint8_t *path, size_t pathlen,
                       const nghttp2_nv *nv, size_t n, double now, nghttp2_nv **out, size_t *nout)
{
    const nghttp2_nv *authz = NULL;
    const uint8_t *tok;
    size_t toklen, count = 0;
    json_t *claims = NULL;
    int rc;

    *out = NULL;
    *nout = 0;
    if (a == NULL)
        return PROXY_AUTH_ENOTCONF;
    if (a->mode == CONF_AUTH_OFF)
        return PROXY_AUTH_OK;
    /* Issue 12.9: /grpc.health.v1.Health/../x.Svc/M is under an exempt
     * prefix as bytes, but a hop that normalises it calls x.Svc/M. */
    if (!grpc_path_is_canonical(path, pathlen))
        return PROXY_AUTH_EPATH;
    if (!is_exempt(a, path, pathlen)) {
        for (size_t i = 0; i < n; i++) {
            if (name_is(&nv[i], "authorization", 13)) {
                authz = &nv[i];
                count++;
            }
        }
        if (count == 0)
            return PROXY_AUTH_EMISSING;
        /* Two credentials are ambiguous: which one would a backend read? */
        if (count > 1 || !parse_bearer(authz->value, authz->valuelen, &tok, &toklen))
            return PROXY_AUTH_EMALFORMED;
        rc = a->mode == CONF_AUTH_JWT ? verify_jwt(a, tok, toklen, now, &claims)
                                      : verify_static(a, tok, toklen);
        if (rc != PROXY_AUTH_OK)
            return rc;
    }
    forward_list(a, nv, n, claims, out, nout);
    json_decref(claims);
    return PROXY_AUTH_OK;
}
