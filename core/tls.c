/* TLS contexts for the frontend listener and the TLS clusters (see tls.h).
 * Invariant: contexts are built once per conf on the main thread and are
 * read-only afterwards; SSL objects made from them hold their own reference
 * to the context (SSL_new), so a conf freed after a reload never pulls a
 * context from under a live connection.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "tls"
#include "core/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "conf/conf.h"
#include "core/log.h"

/* ALPN protocol list, wire format (RFC 7301 §3.1): gRPC is HTTP/2 only. */
static const unsigned char alpn_h2[] = {2, 'h', '2'};
/* With [proxy] http1 = on the listener also speaks HTTP/1.1 (gRPC-Web from
 * browsers): h2 first, so a client offering both gets HTTP/2. */
static const unsigned char alpn_h2_h11[] = {2, 'h', '2', 8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
static const bool http1_on = true, http1_off = false;

/* TLS 1.2 suites RFC 9113 §9.2.2 allows: ephemeral key exchange, AEAD only.
 * TLS 1.3 suites are all fine and keep OpenSSL's defaults. */
static const char tls12_ciphers[] = "ECDHE+AESGCM:ECDHE+CHACHA20";

struct tls_be {
    atomic_uint refs;
    SSL_CTX *ctx;
    char *server_name; /* tls_server_name, or NULL: the target's host */
    bool verify;
};

struct proxy_tls {
    SSL_CTX *fe;        /* NULL without listen_tls */
    struct tls_be **be; /* per cluster; NULL entries for plaintext clusters */
    size_t nbe;
};

/* ---- errors in words ---- */

/* What a PEM file given to a key is expected to hold. */
enum pem_want {
    PEM_CERT, /* a certificate chain, leaf first */
    PEM_KEY,  /* one private key */
    PEM_CA,   /* one or more CA certificates */
};

#define PEM_MAX (1024 * 1024) /* bigger than any certificate bundle we should load */

/* OpenSSL's reason for the first queued error, in its own words ("no start
 * line", "key values mismatch") rather than ERR_error_string()'s
 * "error:0480006C:PEM routines::no start line". Clears the queue. */
static void openssl_reason(char *buf, size_t len)
{
    unsigned long e = ERR_get_error();
    const char *r = e != 0 ? ERR_reason_error_string(e) : NULL;
    const char *lib = e != 0 ? ERR_lib_error_string(e) : NULL;

    if (e == 0)
        snprintf(buf, len, "OpenSSL gave no reason");
    else if (r != NULL && lib != NULL)
        snprintf(buf, len, "OpenSSL: %s, in %s", r, lib);
    else if (r != NULL)
        snprintf(buf, len, "OpenSSL: %s", r);
    else /* error strings not loaded: still say something a search finds */
        snprintf(buf, len, "OpenSSL error %08lX (library %d, reason %d)", e, ERR_GET_LIB(e),
                 ERR_GET_REASON(e));
    ERR_clear_error();
}

/* The first "-----BEGIN LABEL-----" label in |text| into |label|, or "". */
static void first_pem_label(const char *text, char *label, size_t len)
{
    const char *b = strstr(text, "-----BEGIN "), *e;

    label[0] = '\0';
    if (b == NULL)
        return;
    b += 11;
    e = strstr(b, "-----");
    if (e == NULL || (size_t)(e - b) >= len || memchr(b, '\n', (size_t)(e - b)) != NULL)
        return;
    memcpy(label, b, (size_t)(e - b));
    label[e - b] = '\0';
}

/* Looks at |path| before OpenSSL does, so that the usual mistakes read as
 * what they are. Returns 0 when the file looks like |want| (OpenSSL may
 * still refuse it), or -1 with the problem in |why|. */
static int pem_precheck(const char *path, enum pem_want want, char *why, size_t len)
{
    FILE *f;
    struct stat st;
    char *text, label[64];
    size_t n;
    int rc = 0;

    if (stat(path, &st) != 0) {
        snprintf(why, len, "%s", errno == ENOENT ? "no such file" : strerror(errno));
        return -1;
    }
    if (S_ISDIR(st.st_mode)) {
        snprintf(why, len, "is a directory, not a PEM file");
        return -1;
    }
    f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(why, len, "cannot open: %s", strerror(errno));
        return -1;
    }
    text = malloc(PEM_MAX + 1);
    if (text == NULL) {
        log_error("out of memory");
        abort();
    }
    n = fread(text, 1, PEM_MAX, f);
    fclose(f);
    text[n] = '\0';
    first_pem_label(text, label, sizeof(label));
    if (n == 0) {
        snprintf(why, len, "the file is empty");
        rc = -1;
    } else if (memchr(text, '\0', n) != NULL || (unsigned char)text[0] == 0x30) {
        snprintf(why, len,
                 "not PEM (binary, DER perhaps: convert it with `openssl %s -inform der`)",
                 want == PEM_KEY ? "pkey" : "x509");
        rc = -1;
    } else if (want == PEM_KEY) {
        if (strstr(text, "-----BEGIN ENCRYPTED PRIVATE KEY-----") != NULL ||
            strstr(text, "Proc-Type: 4,ENCRYPTED") != NULL) {
            snprintf(why, len,
                     "the private key is encrypted and switchyard cannot ask for its "
                     "passphrase (decrypt it with `openssl pkey`)");
            rc = -1;
        } else if (strstr(text, "PRIVATE KEY-----") == NULL) {
            if (strcmp(label, "CERTIFICATE") == 0)
                snprintf(why, len,
                         "holds a certificate, not a private key (tls_cert and "
                         "tls_key swapped?)");
            else if (label[0] != '\0')
                snprintf(why, len, "not a PEM private key: it holds a \"%s\" block", label);
            else
                snprintf(why, len, "not a PEM private key (no -----BEGIN PRIVATE KEY----- line)");
            rc = -1;
        }
    } else if (strstr(text, "-----BEGIN CERTIFICATE-----") == NULL &&
               strstr(text, "-----BEGIN TRUSTED CERTIFICATE-----") == NULL) {
        if (strstr(text, "PRIVATE KEY-----") != NULL && want == PEM_CERT)
            snprintf(why, len,
                     "holds a private key, not a certificate (tls_cert and tls_key "
                     "swapped?)");
        else if (label[0] != '\0')
            snprintf(why, len, "not a PEM certificate: it holds a \"%s\" block", label);
        else
            snprintf(why, len, "not a PEM certificate (no -----BEGIN CERTIFICATE----- line)");
        rc = -1;
    }
    free(text);
    return rc;
}

/* Writes "FILE:LINE: [SECT] KEY: PATH: WHY" into |err| and returns -1. */
static int fail_file(char *err, size_t errlen, const struct conf *c, const char *sect,
                     const char *key, const char *path, const char *why)
{
    int line = conf_key_line(c, sect, key);

    if (line > 0)
        snprintf(err, errlen, "%s:%d: [%s] %s: %s: %s", c->path, line, sect, key, path, why);
    else
        snprintf(err, errlen, "%s: [%s] %s: %s: %s", c->path, sect, key, path, why);
    return -1;
}

/* The same after an OpenSSL call failed on |path|: the precheck's finding
 * when it has one, else OpenSSL's reason in words. */
static int fail_load(char *err, size_t errlen, const struct conf *c, const char *sect,
                     const char *key, const char *path, enum pem_want want)
{
    char why[300], ossl[200];

    openssl_reason(ossl, sizeof(ossl));
    if (pem_precheck(path, want, why, sizeof(why)) == 0) {
        snprintf(why, sizeof(why), "%s could not be loaded (%s)",
                 want == PEM_KEY    ? "the private key"
                 : want == PEM_CERT ? "the certificate chain"
                                    : "the CA certificates",
                 ossl);
    }
    return fail_file(err, errlen, c, sect, key, path, why);
}

/* For failures that are not about a file (a context, the cipher list). */
static int fail(char *err, size_t errlen, const struct conf *c, const char *sect, const char *key,
                const char *what)
{
    char why[200];

    openssl_reason(why, sizeof(why));
    snprintf(err, errlen, "%s: [%s] %s: cannot set up %s: %s", c->path, sect, key, what, why);
    return -1;
}

/* Loads the certificate chain |cert| and its key |key| into |ctx|. */
static int no_passphrase(char *buf, int size, int rwflag, void *arg)
{
    (void)buf;
    (void)size;
    (void)rwflag;
    (void)arg;
    return 0; /* no passphrase: an encrypted key fails to load, pem_precheck() says why */
}

/* Loads the certificate chain |cert| and its key |key| into |ctx|. The files
 * are looked at first, so that OpenSSL never meets an encrypted key (it
 * would prompt on the terminal) and the usual mistakes read as such. */
static int load_pair(SSL_CTX *ctx, const struct conf *c, const char *sect, const char *cert,
                     const char *key, char *err, size_t errlen)
{
    char why[600];
    unsigned long e;

    SSL_CTX_set_default_passwd_cb(ctx, no_passphrase);
    if (pem_precheck(cert, PEM_CERT, why, sizeof(why)) != 0)
        return fail_file(err, errlen, c, sect, "tls_cert", cert, why);
    if (pem_precheck(key, PEM_KEY, why, sizeof(why)) != 0)
        return fail_file(err, errlen, c, sect, "tls_key", key, why);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        return fail_load(err, errlen, c, sect, "tls_cert", cert, PEM_CERT);
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) == 1 &&
        SSL_CTX_check_private_key(ctx) == 1)
        return 0;
    /* OpenSSL 3 reports a mismatch from SSL_CTX_use_PrivateKey_file() itself
     * (X509_R_KEY_VALUES_MISMATCH), older ones from the check. */
    e = ERR_peek_error();
    if (SSL_CTX_get0_privatekey(ctx) != NULL ||
        (ERR_GET_LIB(e) == ERR_LIB_X509 && ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)) {
        ERR_clear_error();
        snprintf(why, sizeof(why), "the key does not match the certificate in tls_cert (%s)", cert);
        return fail_file(err, errlen, c, sect, "tls_key", key, why);
    }
    return fail_load(err, errlen, c, sect, "tls_key", key, PEM_KEY);
}

static void tls_free(void *arg)
{
    struct proxy_tls *t = arg;

    if (t == NULL)
        return;
    SSL_CTX_free(t->fe);
    for (size_t i = 0; i < t->nbe; i++)
        tls_be_unref(t->be[i]);
    free(t->be);
    free(t);
}

/* ---- frontend ---- */

/* Refuses a ClientHello without ALPN at all: the ALPN callback below is not
 * called then, and gRPC over TLS requires h2 negotiated by ALPN (gRPC
 * PROTOCOL-HTTP2, "Protocol negotiation"). */
static int on_client_hello(SSL *ssl, int *al, void *arg)
{
    const unsigned char *ext;
    size_t extlen;
    const char *peer = SSL_get_app_data(ssl);

    /* With HTTP/1.1 on, no ALPN means HTTP/1.1 (RFC 7301 §3.2). */
    if (*(const bool *)arg ||
        SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_application_layer_protocol_negotiation, &ext,
                                  &extlen) == 1)
        return SSL_CLIENT_HELLO_SUCCESS;
    log_warn("client %s: TLS refused: no ALPN in the ClientHello; h2 is required (alert "
             "no_application_protocol)",
             peer != NULL ? peer : "?");
    *al = SSL_AD_NO_APPLICATION_PROTOCOL;
    return SSL_CLIENT_HELLO_ERROR;
}

static void alpn_list(const unsigned char *in, unsigned inlen, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (unsigned i = 0; i < inlen && o + 1 < len;) {
        unsigned n = in[i++];

        if (n > inlen - i)
            break;
        o += (size_t)snprintf(buf + o, len - o, "%s%.*s", o > 0 ? "," : "", (int)n,
                              (const char *)in + i);
        if (o >= len)
            break;
        i += n;
    }
}

static int on_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                          const unsigned char *in, unsigned int inlen, void *arg)
{
    const char *peer = SSL_get_app_data(ssl);
    bool http1 = *(const bool *)arg;
    char offered[128];

    if (SSL_select_next_proto((unsigned char **)out, outlen, http1 ? alpn_h2_h11 : alpn_h2,
                              http1 ? sizeof(alpn_h2_h11) : sizeof(alpn_h2), in,
                              inlen) == OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_OK;
    alpn_list(in, inlen, offered, sizeof(offered));
    log_warn("client %s: TLS refused: ALPN offers '%s', not %s (alert no_application_protocol)",
             peer != NULL ? peer : "?", offered, http1 ? "h2 or http/1.1" : "h2");
    /* OpenSSL answers this with the no_application_protocol alert (RFC 7301 §3.2). */
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int fe_ctx_new(const struct conf *c, SSL_CTX **out, char *err, size_t errlen)
{
    const struct conf_proxy *pc = &c->proxy;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

    *out = NULL;
    if (ctx == NULL)
        return fail(err, errlen, c, "proxy", "listen_tls", "a TLS context");
    SSL_CTX_set_min_proto_version(ctx, pc->tls_min_version == CONF_TLS_1_3 ? TLS1_3_VERSION
                                                                           : TLS1_2_VERSION);
    /* RFC 9113 §9.2.1: no compression, no renegotiation. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1) {
        SSL_CTX_free(ctx);
        return fail(err, errlen, c, "proxy", "listen_tls", "the TLS 1.2 cipher list");
    }
    if (load_pair(ctx, c, "proxy", pc->tls_cert, pc->tls_key, err, errlen) != 0) {
        SSL_CTX_free(ctx);
        return -1;
    }
    if (pc->tls_client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(pc->tls_client_ca);

        if (names == NULL || SSL_CTX_load_verify_locations(ctx, pc->tls_client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            SSL_CTX_free(ctx);
            return fail_load(err, errlen, c, "proxy", "tls_client_ca", pc->tls_client_ca, PEM_CA);
        }
        SSL_CTX_set_client_CA_list(ctx, names); /* takes |names| */
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        /* Resumed sessions skip certificate verification; OpenSSL refuses
         * them without a session id context when clients are verified. */
        SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"switchyard", 10);
    }
    /* ALPN on this and every context a reload builds (grpc-go #7709). */
    SSL_CTX_set_client_hello_cb(ctx, on_client_hello, (void *)(pc->http1 ? &http1_on : &http1_off));
    SSL_CTX_set_alpn_select_cb(ctx, on_alpn_select, (void *)(pc->http1 ? &http1_on : &http1_off));
    *out = ctx;
    return 0;
}

/* ---- backend ---- */

static int be_new(const struct conf *c, const struct conf_cluster *cl, struct tls_be **out,
                  char *err, size_t errlen)
{
    char sect[300];
    struct tls_be *tb;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    *out = NULL;
    snprintf(sect, sizeof(sect), "cluster.%s", cl->name);
    if (ctx == NULL)
        return fail(err, errlen, c, sect, "tls", "a TLS context");
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION);
    if (SSL_CTX_set_cipher_list(ctx, tls12_ciphers) != 1 ||
        SSL_CTX_set_alpn_protos(ctx, alpn_h2, sizeof(alpn_h2)) != 0) { /* 0 is success */
        SSL_CTX_free(ctx);
        return fail(err, errlen, c, sect, "tls", "the cipher list or ALPN");
    }
    if (cl->tls_ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, cl->tls_ca, NULL) != 1) {
            SSL_CTX_free(ctx);
            return fail_load(err, errlen, c, sect, "tls_ca", cl->tls_ca, PEM_CA);
        }
    } else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        SSL_CTX_free(ctx);
        return fail(err, errlen, c, sect, "tls_ca", "the system's trust store");
    }
    if (cl->tls_cert != NULL && load_pair(ctx, c, sect, cl->tls_cert, cl->tls_key, err, errlen)) {
        SSL_CTX_free(ctx);
        return -1;
    }
    SSL_CTX_set_verify(ctx, cl->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    tb = calloc(1, sizeof(*tb));
    if (tb == NULL) {
        log_error("out of memory");
        abort();
    }
    atomic_init(&tb->refs, 1);
    tb->ctx = ctx;
    tb->verify = cl->tls_verify;
    if (cl->tls_server_name != NULL) {
        tb->server_name = strdup(cl->tls_server_name);
        if (tb->server_name == NULL) {
            log_error("out of memory");
            abort();
        }
    }
    *out = tb;
    return 0;
}

struct tls_be *tls_be_ref(struct tls_be *tb)
{
    if (tb != NULL)
        atomic_fetch_add_explicit(&tb->refs, 1, memory_order_relaxed);
    return tb;
}

void tls_be_unref(struct tls_be *tb)
{
    if (tb == NULL || atomic_fetch_sub_explicit(&tb->refs, 1, memory_order_acq_rel) != 1)
        return;
    SSL_CTX_free(tb->ctx);
    free(tb->server_name);
    free(tb);
}

static bool is_ip(const char *s)
{
    unsigned char buf[sizeof(struct in6_addr)];

    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

SSL *tls_be_ssl_new(struct tls_be *tb, const char *host)
{
    const char *name = tb->server_name != NULL ? tb->server_name : host;
    SSL *ssl = SSL_new(tb->ctx);
    X509_VERIFY_PARAM *param;
    int ok = 1;

    if (ssl == NULL)
        return NULL;
    param = SSL_get0_param(ssl);
    if (is_ip(name)) {
        if (tb->verify)
            ok = X509_VERIFY_PARAM_set1_ip_asc(param, name);
    } else {
        /* SNI is the name we verify (RFC 6066 §3). */
        ok = SSL_set_tlsext_host_name(ssl, name);
        if (ok == 1 && tb->verify) {
            X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
            ok = X509_VERIFY_PARAM_set1_host(param, name, 0);
        }
    }
    if (ok != 1) {
        SSL_free(ssl);
        return NULL;
    }
    return ssl;
}

/* ---- shared ---- */

int tls_attach(struct conf *c, char *err, size_t errlen)
{
    struct proxy_tls *t;
    bool any = c->proxy.listen_tls != NULL;

    for (size_t i = 0; i < c->nclusters; i++)
        any = any || c->clusters[i].tls;
    if (!any)
        return 0;
    t = calloc(1, sizeof(*t));
    if (t == NULL || (t->be = calloc(c->nclusters, sizeof(*t->be))) == NULL) {
        log_error("out of memory");
        abort();
    }
    t->nbe = c->nclusters;
    ERR_clear_error();
    if (c->proxy.listen_tls != NULL && fe_ctx_new(c, &t->fe, err, errlen) != 0) {
        tls_free(t);
        return -1;
    }
    for (size_t i = 0; i < c->nclusters; i++) {
        if (c->clusters[i].tls && be_new(c, &c->clusters[i], &t->be[i], err, errlen) != 0) {
            tls_free(t);
            return -1;
        }
    }
    c->tls = t;
    c->tls_free = tls_free;
    return 0;
}

SSL_CTX *tls_fe_ctx(const struct conf *c)
{
    const struct proxy_tls *t = c->tls;

    return t != NULL ? t->fe : NULL;
}

struct tls_be *tls_be_get(const struct conf *c, size_t index)
{
    const struct proxy_tls *t = c->tls;

    return t != NULL && index < t->nbe ? t->be[index] : NULL;
}

SSL *tls_fe_ssl_new(SSL_CTX *ctx, const char *peer)
{
    SSL *ssl = SSL_new(ctx);

    if (ssl != NULL)
        SSL_set_app_data(ssl, (void *)peer);
    return ssl;
}

bool tls_is_h2(const SSL *ssl)
{
    const unsigned char *p = NULL;
    unsigned int len = 0;

    SSL_get0_alpn_selected(ssl, &p, &len);
    return len == 2 && memcmp(p, "h2", 2) == 0;
}

const char *tls_error(struct bufferevent *bev, char *buf, size_t len)
{
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    unsigned long e, last = 0;
    int serr = EVUTIL_SOCKET_ERROR();

    while ((e = bufferevent_get_openssl_error(bev)) != 0)
        last = e;
    if (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK) {
        snprintf(buf, len, "TLS: certificate verify failed: %s",
                 X509_verify_cert_error_string(SSL_get_verify_result(ssl)));
    } else if (last != 0) {
        const char *r = ERR_reason_error_string(last);

        /* "tlsv1 alert unknown ca", not "error:0A000418:SSL routines::..." */
        if (r != NULL)
            snprintf(buf, len, "TLS: %s", r);
        else
            snprintf(buf, len, "TLS: OpenSSL error %08lX", last);
    } else if (serr != 0) {
        snprintf(buf, len, "%s", evutil_socket_error_to_string(serr));
    } else {
        snprintf(buf, len, "TLS: connection closed during the handshake");
    }
    return buf;
}
