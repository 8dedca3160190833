/* Integration tests of TLS on both sides: the frontend TLS listener (ALPN h2
 * required, mutual TLS, certificate reload on SIGHUP) and TLS to backends
 * (mutual TLS, name verification, health checks), against a real switchyard, gRPC C core
 * clients and sy-backends on loopback. Certificates are made by the openssl
 * CLI in the per-test temp dir; no key is ever committed.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tests/peers/gclient.h"
#include "tests/peers/gclient_tls.h"
#include "tests/support/support.h"

#define PROXY_T 20000

static struct sup_proxy px;
static struct sup_backend be;
static char dir[512];

static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc))
        sup_stop(px.proc, PROXY_T);
    sup_stop_all();
}

/* A CA, two server certificates (serials 1001 and 2002; SAN IP 127.0.0.1,
 * localhost, backend.test) and a client certificate, all EC P-256. */
static void make_certs(void)
{
    static const char script[] =
        "set -e; cd \"$1\"\n"
        "K='-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes'\n"
        "openssl req -x509 $K -keyout ca.key -out ca.pem -days 2 -subj '/CN=switchyard test CA' "
        "2>/dev/null\n"
        "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:backend.test\\n"
        "extendedKeyUsage=serverAuth,clientAuth\\n' > server.ext\n"
        "printf 'subjectAltName=DNS:test-client\\nextendedKeyUsage=clientAuth\\n' > client.ext\n"
        "for n in server:1001:server client:3003:client server2:2002:server; do\n"
        "  f=${n%%:*}; r=${n#*:}; s=${r%%:*}; e=${r#*:}\n"
        "  openssl req $K -keyout $f.key -out $f.csr -subj \"/CN=$f\" 2>/dev/null\n"
        "  openssl x509 -req -in $f.csr -CA ca.pem -CAkey ca.key -set_serial $s -days 2 "
        "-extfile $e.ext -out $f.pem 2>/dev/null\n"
        "done\n"
        "cp server.pem cur.pem; cp server.key cur.key\n";
    const char *argv[] = {"/bin/sh", "-c", script, "sh", dir, NULL};
    struct sup_proc *p = NULL;
    int st;

    snprintf(dir, sizeof(dir), "%s", sup_tmpdir());
    st = sup_run("mkcerts", argv, 60000, &p);
    if (st != 0 && p)
        sup_dump_log(p, 20);
    cr_assert_eq(st, 0, "making test certificates failed (%d)", st);
}

static const char *path(const char *name)
{
    static char buf[8][600];
    static int i;
    char *b = buf[i++ % 8];

    snprintf(b, 600, "%s/%s", dir, name);
    return b;
}

static void setup(void)
{
    memset(&px, 0, sizeof(px));
    memset(&be, 0, sizeof(be));
    make_certs();
}

TestSuite(tls, .init = setup, .fini = stop_all, .timeout = 120);

/* Starts switchyard with a TLS listener on |tls_port| and the extra [proxy]
 * lines |proxy_extra|, routing to |target| with the extra [cluster] lines
 * |cluster_extra|. */
static void start_proxy(int tls_port, const char *proxy_extra, const char *target,
                        const char *cluster_extra)
{
    char text[4096];
    int port = sup_free_port();
    int admin = sup_free_port();

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nlisten_tls = 127.0.0.1:%d\nworkers = 2\n"
             "tls_cert = %s\ntls_key = %s\n%s\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\n%s%s\n",
             port, tls_port, path("cur.pem"), path("cur.key"), proxy_extra, admin, target,
             strstr(cluster_extra, "health_check") != NULL ? "" : "health_check = off\n",
             cluster_extra);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start");
    cr_assert_eq(sup_wait_port(px.proc, tls_port, PROXY_T), 0, "TLS listener not ready");
}

static void start_plain_backend(void)
{
    cr_assert_eq(sup_start_backend(&be, "b0", NULL), 0, "sy-backend did not start");
}

/* ---- a raw OpenSSL client ---- */

struct probe {
    bool ok;       /* handshake done and switchyard's first HTTP/2 bytes read */
    bool http1;    /* they were an HTTP/1.1 response */
    long serial;   /* the server certificate's serial */
    char alpn[16]; /* negotiated */
    char err[256]; /* why it failed */
};

/* Connects to 127.0.0.1:|port| offering |alpn| (wire format, NULL: no ALPN
 * extension), trusting ca.pem, with the client certificate |cert| (NULL:
 * none); reads the server's first bytes (its SETTINGS) so that a refusal
 * after a TLS 1.3 handshake (a missing client certificate) shows too. */
static void probe(int port, const unsigned char *alpn, size_t alpnlen, const char *cert,
                  struct probe *pr)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    struct timeval tv = {.tv_sec = 5};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    SSL *ssl;
    char buf[64];

    memset(pr, 0, sizeof(*pr));
    pr->serial = -1;
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    cr_assert(ctx != NULL && fd >= 0);
    cr_assert_eq(SSL_CTX_load_verify_locations(ctx, path("ca.pem"), NULL), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (cert != NULL) {
        char key[600];

        snprintf(key, sizeof(key), "%.*s.key", (int)(strlen(cert) - 4), cert);
        cr_assert_eq(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
        cr_assert_eq(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    }
    if (alpn != NULL)
        cr_assert_eq(SSL_CTX_set_alpn_protos(ctx, alpn, (unsigned)alpnlen), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    ssl = SSL_new(ctx);
    SSL_set_fd(ssl, fd);
    ERR_clear_error();
    if (SSL_connect(ssl) == 1) {
        X509 *x = SSL_get1_peer_certificate(ssl);
        const unsigned char *p;
        unsigned n;

        if (x != NULL)
            pr->serial = ASN1_INTEGER_get(X509_get0_serialNumber(x));
        X509_free(x);
        SSL_get0_alpn_selected(ssl, &p, &n);
        snprintf(pr->alpn, sizeof(pr->alpn), "%.*s", (int)n, (const char *)p);
        if (strcmp(pr->alpn, "h2") != 0) /* HTTP/1.1: the client speaks first */
            SSL_write(ssl, "GET / HTTP/1.1\r\nhost: t\r\n\r\n", 27);
        pr->ok = SSL_read(ssl, buf, sizeof(buf)) > 0;
        pr->http1 = pr->ok && strncmp(buf, "HTTP/1.1 ", 9) == 0;
    }
    if (!pr->ok) {
        unsigned long e = ERR_peek_last_error();

        if (e != 0)
            ERR_error_string_n(e, pr->err, sizeof(pr->err));
        else
            snprintf(pr->err, sizeof(pr->err), "no data");
    }
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fd);
}

static const unsigned char alpn_h2[] = "\x02h2";
static const unsigned char alpn_h11[] = "\x08http/1.1";

static bool log_has(const char *needle)
{
    return sup_file_contains(px.proc->err_path, needle);
}

static bool log_has_pred(void *arg)
{
    return log_has(arg);
}

/* ---- frontend ---- */

Test(tls, frontend_call_with_the_right_ca)
{
    int tls_port = sup_free_port();
    char target[64];
    struct gc_opts o;
    struct gc_result r;
    struct gc_chan *ch;
    struct probe pr;

    start_plain_backend();
    start_proxy(tls_port, "", be.addr, "");
    snprintf(target, sizeof(target), "127.0.0.1:%d", tls_port);
    ch = gc_chan_new_tls(target, path("ca.pem"), NULL, NULL);
    for (int k = 0; k < GC_KIND_COUNT; k++) {
        gc_opts_init(&o, (enum gc_kind)k);
        o.request_size = 1000;
        o.request_count = 3;
        o.response_count = 3;
        gc_chan_call(ch, &o, &r);
        cr_assert_eq(r.status, 0, "%s over TLS: status %d (%s)", gc_kind_name((enum gc_kind)k),
                     r.status, r.message);
        cr_assert_str_eq(r.backend_id, "b0");
    }
    gc_chan_free(ch);
    /* the h2c listener serves next to it */
    gc_opts_init(&o, GC_UNARY);
    cr_assert_eq(gc_call(px.addr, &o, &r), 0, "h2c call: %d %s", r.status, r.message);
    probe(tls_port, alpn_h2, 3, NULL, &pr);
    cr_assert(pr.ok, "h2 probe failed: %s", pr.err);
    cr_assert_str_eq(pr.alpn, "h2");
    cr_assert_eq(pr.serial, 1001);
}

Test(tls, client_without_h2_alpn_is_refused)
{
    int tls_port = sup_free_port();
    struct probe pr;

    start_plain_backend();
    start_proxy(tls_port, "http1 = off\n", be.addr, "");
    probe(tls_port, alpn_h11, 9, NULL, &pr);
    cr_assert(!pr.ok, "a client offering only http/1.1 got through");
    cr_assert(strstr(pr.err, "no application protocol") != NULL, "client saw: %s", pr.err);
    cr_assert(sup_poll(log_has_pred, "ALPN offers 'http/1.1', not h2", 5000),
              "no log line about the ALPN refusal");
    probe(tls_port, NULL, 0, NULL, &pr);
    cr_assert(!pr.ok, "a client without ALPN got through");
    cr_assert(strstr(pr.err, "no application protocol") != NULL, "client saw: %s", pr.err);
    cr_assert(sup_poll(log_has_pred, "no ALPN in the ClientHello", 5000),
              "no log line about the missing ALPN");
    cr_assert(sup_alive(px.proc));
}

/* http1 = on (the default): ALPN http/1.1, or none, is HTTP/1.1 (gRPC-Web
 * from browsers); a client offering both gets h2. */
Test(tls, http1_alpn_is_accepted_with_http1_on)
{
    static const unsigned char both[] = "\x02h2\x08http/1.1";
    int tls_port = sup_free_port();
    struct probe pr;

    start_plain_backend();
    start_proxy(tls_port, "", be.addr, "");
    probe(tls_port, alpn_h11, 9, NULL, &pr);
    cr_assert(pr.ok, "http/1.1 probe failed: %s", pr.err);
    cr_assert_str_eq(pr.alpn, "http/1.1");
    cr_assert(pr.http1, "no HTTP/1.1 response over ALPN http/1.1");
    probe(tls_port, both, sizeof(both) - 1, NULL, &pr);
    cr_assert(pr.ok, "h2+http/1.1 probe failed: %s", pr.err);
    cr_assert_str_eq(pr.alpn, "h2");
    probe(tls_port, NULL, 0, NULL, &pr);
    cr_assert(pr.ok, "a client without ALPN was refused: %s", pr.err);
    cr_assert(pr.http1, "no HTTP/1.1 response without ALPN");
    cr_assert(sup_alive(px.proc));
}

Test(tls, mutual_tls_requires_a_client_certificate)
{
    int tls_port = sup_free_port();
    char target[64], extra[700];
    struct gc_opts o;
    struct gc_result r;
    struct gc_chan *ch;
    struct probe pr;

    start_plain_backend();
    snprintf(extra, sizeof(extra), "tls_client_ca = %s\ntls_min_version = 1.3\n", path("ca.pem"));
    start_proxy(tls_port, extra, be.addr, "");
    snprintf(target, sizeof(target), "127.0.0.1:%d", tls_port);
    gc_opts_init(&o, GC_UNARY);
    ch = gc_chan_new_tls(target, path("ca.pem"), path("client.pem"), path("client.key"));
    gc_chan_call(ch, &o, &r);
    gc_chan_free(ch);
    cr_assert_eq(r.status, 0, "with a client certificate: %d (%s)", r.status, r.message);

    ch = gc_chan_new_tls(target, path("ca.pem"), NULL, NULL);
    o.timeout_ms = 3000;
    gc_chan_call(ch, &o, &r);
    gc_chan_free(ch);
    cr_assert_eq(r.status, 14, "without a client certificate: %d (%s)", r.status, r.message);

    probe(tls_port, alpn_h2, 3, NULL, &pr);
    cr_assert(!pr.ok, "a client without a certificate got through");
    cr_assert(sup_poll(log_has_pred, "TLS handshake failed", 5000),
              "no log line about the refused client");
    probe(tls_port, alpn_h2, 3, path("client.pem"), &pr);
    cr_assert(pr.ok, "with a client certificate: %s", pr.err);
}

struct serial_wait {
    int port;
    long want;
};

static bool serial_is(void *arg)
{
    struct serial_wait *sw = arg;
    struct probe pr;

    probe(sw->port, alpn_h2, 3, NULL, &pr);
    return pr.ok && pr.serial == sw->want && strcmp(pr.alpn, "h2") == 0;
}

Test(tls, sighup_reloads_the_certificate_and_keeps_connections)
{
    int tls_port = sup_free_port();
    char target[64];
    struct gc_opts o;
    struct gc_result r;
    struct gc_chan *ch;
    struct serial_wait sw = {tls_port, 1001};

    start_plain_backend();
    start_proxy(tls_port, "", be.addr, "");
    snprintf(target, sizeof(target), "127.0.0.1:%d", tls_port);
    cr_assert(serial_is(&sw), "the first certificate is not served");
    ch = gc_chan_new_tls(target, path("ca.pem"), NULL, NULL);
    gc_opts_init(&o, GC_UNARY);
    gc_chan_call(ch, &o, &r);
    cr_assert_eq(r.status, 0, "before the reload: %d (%s)", r.status, r.message);

    {
        char *pem = sup_read_file(path("server2.pem"));
        char *key = sup_read_file(path("server2.key"));
        FILE *f = fopen(path("cur.key"), "w");

        cr_assert(pem != NULL && key != NULL && f != NULL);
        fputs(key, f);
        fclose(f);
        f = fopen(path("cur.pem"), "w");
        fputs(pem, f);
        fclose(f);
        free(pem);
        free(key);
    }
    sup_signal(px.proc, SIGHUP);
    sw.want = 2002;
    cr_assert(sup_poll(serial_is, &sw, 10000), "new handshakes do not get the new certificate");
    cr_assert(log_has("configuration reloaded"));
    /* the connection made before the reload still works */
    o.request_count = 2;
    gc_chan_call(ch, &o, &r);
    cr_assert_eq(r.status, 0, "old connection after the reload: %d (%s)", r.status, r.message);
    gc_chan_free(ch);
    /* and a new gRPC client verifies the new certificate */
    ch = gc_chan_new_tls(target, path("ca.pem"), NULL, NULL);
    gc_chan_call(ch, &o, &r);
    gc_chan_free(ch);
    cr_assert_eq(r.status, 0, "new connection after the reload: %d (%s)", r.status, r.message);
}

/* ---- backend ---- */

static void start_tls_backend(bool mtls)
{
    const char *extra[] = {"--tls-cert",      path("server.pem"), "--tls-key", path("server.key"),
                           "--tls-client-ca", path("ca.pem"),     NULL};

    if (!mtls)
        extra[4] = NULL;
    cr_assert_eq(sup_start_backend(&be, "tb0", extra), 0, "TLS sy-backend did not start");
}

Test(tls, backend_mutual_tls)
{
    char extra[1400];
    struct gc_opts o;
    struct gc_result r;

    start_tls_backend(true);
    snprintf(extra, sizeof(extra), "tls = on\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\n",
             path("ca.pem"), path("client.pem"), path("client.key"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    for (int k = 0; k < GC_KIND_COUNT; k++) {
        gc_opts_init(&o, (enum gc_kind)k);
        o.request_size = 5000;
        o.request_count = 2;
        o.response_count = 2;
        gc_call(px.addr, &o, &r);
        cr_assert_eq(r.status, 0, "%s to a TLS backend: %d (%s)", gc_kind_name((enum gc_kind)k),
                     r.status, r.message);
        cr_assert_str_eq(r.backend_id, "tb0");
    }
}

Test(tls, backend_without_client_certificate_is_refused)
{
    char extra[700];
    struct gc_opts o;
    struct gc_result r;

    start_tls_backend(true);
    snprintf(extra, sizeof(extra), "tls = on\ntls_ca = %s\n", path("ca.pem"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    gc_opts_init(&o, GC_UNARY);
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 14, "expected UNAVAILABLE, got %d (%s)", r.status, r.message);
}

Test(tls, backend_server_name)
{
    char extra[700];
    struct gc_opts o;
    struct gc_result r;

    start_tls_backend(false);
    snprintf(extra, sizeof(extra), "tls = on\ntls_ca = %s\ntls_server_name = wrong.test\n",
             path("ca.pem"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    gc_opts_init(&o, GC_UNARY);
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 14, "wrong server name: expected UNAVAILABLE, got %d (%s)", r.status,
                 r.message);
    cr_assert(strstr(r.message, "certificate verify failed") != NULL, "message: %s", r.message);
    sup_stop(px.proc, PROXY_T);

    /* the name the certificate has (SNI and verification) */
    snprintf(extra, sizeof(extra), "tls = on\ntls_ca = %s\ntls_server_name = backend.test\n",
             path("ca.pem"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 0, "right server name: %d (%s)", r.status, r.message);
}

/* `switchyard -t` on |text| must fail with a message that contains |want|
 * (and never OpenSSL's "error:0480006C:..." codes). */
static void expect_t_fails(const char *text, const char *want)
{
    char ini[600];
    const char *argv[] = {sup_proxy_bin(), "-t", "-c", ini, NULL};
    struct sup_proc *p = NULL;
    char *err;
    int st;

    snprintf(ini, sizeof(ini), "%s/bad.ini", dir);
    {
        FILE *f = fopen(ini, "w");

        cr_assert(f != NULL);
        fputs(text, f);
        fclose(f);
    }
    st = sup_run("switchyard-t", argv, PROXY_T, &p);
    cr_assert_not_null(p);
    err = sup_read_file(p->err_path);
    cr_assert_not_null(err);
    cr_expect_neq(st, 0, "switchyard -t accepted:\n%s", text);
    cr_expect(strstr(err, want) != NULL, "switchyard -t said:\n%swant: %s", err, want);
    cr_expect(strstr(err, "error:0") == NULL && strstr(err, "lib(") == NULL,
              "an OpenSSL error code, not words:\n%s", err);
    free(err);
}

Test(tls, switchyard_t_names_the_file_and_the_reason)
{
    char text[2000], want[800];
    const char *proxy = "[proxy]\nlisten_tls = 127.0.0.1:1\nlisten = off\ntls_cert = %s\n"
                        "tls_key = %s\n[cluster.a]\ntargets = 127.0.0.1:2\n";

    /* not a certificate at all */
    snprintf(text, sizeof(text), proxy, path("server.ext"), path("server.key"));
    snprintf(want, sizeof(want), "bad.ini:4: [proxy] tls_cert: %s: not a PEM certificate",
             path("server.ext"));
    expect_t_fails(text, want);

    /* a key of another certificate */
    snprintf(text, sizeof(text), proxy, path("server.pem"), path("server2.key"));
    snprintf(want, sizeof(want),
             "bad.ini:5: [proxy] tls_key: %s: the key does not match the certificate in "
             "tls_cert (%s)",
             path("server2.key"), path("server.pem"));
    expect_t_fails(text, want);

    /* certificate and key swapped */
    snprintf(text, sizeof(text), proxy, path("server.key"), path("server.pem"));
    snprintf(want, sizeof(want),
             "bad.ini:4: [proxy] tls_cert: %s: holds a private key, not a certificate",
             path("server.key"));
    expect_t_fails(text, want);

    /* a directory */
    snprintf(text, sizeof(text), proxy, dir, path("server.key"));
    snprintf(want, sizeof(want), "[proxy] tls_cert: %s: is a directory", dir);
    expect_t_fails(text, want);

    /* no such file */
    snprintf(text, sizeof(text), proxy, path("server.pem"), path("nonexistent.key"));
    expect_t_fails(text, "No such file or directory");

    /* a backend CA that is no certificate */
    snprintf(text, sizeof(text), "[cluster.a]\ntargets = 127.0.0.1:2\ntls = on\n\ntls_ca = %s\n",
             path("server.key"));
    snprintf(want, sizeof(want),
             "bad.ini:5: [cluster.a] tls_ca: %s: not a PEM certificate: it holds a \"PRIVATE "
             "KEY\" block",
             path("server.key"));
    expect_t_fails(text, want);

    /* a backend client certificate with the wrong key */
    snprintf(text, sizeof(text),
             "[cluster.a]\ntargets = 127.0.0.1:2\ntls = on\ntls_cert = %s\ntls_key = %s\n",
             path("client.pem"), path("server.key"));
    snprintf(want, sizeof(want), "bad.ini:5: [cluster.a] tls_key: %s: the key does not match",
             path("server.key"));
    expect_t_fails(text, want);
}

/* ---- health checks over TLS ---- */

Test(tls, health_checks_use_the_cluster_tls_settings)
{
    char extra[1400];
    struct gc_opts o;
    struct gc_result r;
    long t0;

    start_tls_backend(true);
    /* endpoints start unhealthy: a call succeeds only once a Check over
     * mutual TLS said SERVING */
    snprintf(extra, sizeof(extra),
             "tls = on\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\nhealth_check = on\n"
             "health_interval = 200ms\nhealth_timeout = 200ms\n",
             path("ca.pem"), path("client.pem"), path("client.key"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    gc_opts_init(&o, GC_UNARY);
    t0 = sup_now_ms();
    do {
        gc_call(px.addr, &o, &r);
        if (r.status != 0)
            sup_sleep_ms(100);
    } while (r.status != 0 && sup_now_ms() - t0 < 10000);
    cr_assert_eq(r.status, 0, "no healthy endpoint after 10 s: %d (%s)", r.status, r.message);
    cr_assert_str_eq(r.backend_id, "tb0");
    sup_stop(px.proc, PROXY_T);

    /* a name the certificate does not have: checks fail, the endpoint stays out */
    snprintf(extra, sizeof(extra),
             "tls = on\ntls_ca = %s\ntls_cert = %s\ntls_key = %s\nhealth_check = on\n"
             "health_interval = 200ms\nhealth_timeout = 200ms\ntls_server_name = wrong.test\n",
             path("ca.pem"), path("client.pem"), path("client.key"));
    start_proxy(sup_free_port(), "", be.addr, extra);
    sup_sleep_ms(1000);
    gc_call(px.addr, &o, &r);
    cr_assert_eq(r.status, 14, "expected UNAVAILABLE, got %d (%s)", r.status, r.message);
    cr_assert(sup_poll(log_has_pred, "certificate verify failed", 5000),
              "the health checker did not log why the endpoint is down");
}

/* Two clusters list the same address, one with backend TLS and one without:
 * each keeps its own connections, so the TLS cluster's calls succeed and the
 * plaintext cluster's calls never ride the TLS connection (they speak h2c to a
 * TLS port and fail), whatever order they come in. */
Test(tls, two_clusters_sharing_an_address_keep_their_own_tls_settings)
{
    char extra[1400];
    struct gc_opts secure, plain;
    struct gc_result r;

    start_tls_backend(false);
    snprintf(extra, sizeof(extra),
             "tls = on\ntls_ca = %s\n"
             "[cluster.plain]\ntargets = %s\nroutes = /sy.test.Echo/ServerStream\n"
             "health_check = off\nmax_retries = 0\n",
             path("ca.pem"), be.addr);
    start_proxy(sup_free_port(), "", be.addr, extra);
    gc_opts_init(&secure, GC_UNARY);
    gc_opts_init(&plain, GC_SERVER_STREAM);
    for (int i = 0; i < 6; i++) {
        gc_call(px.addr, &secure, &r);
        cr_assert_eq(r.status, 0, "round %d: the TLS cluster's call: %d (%s)", i, r.status,
                     r.message);
        cr_assert_str_eq(r.backend_id, "tb0");
        gc_call(px.addr, &plain, &r);
        cr_assert_eq(r.status, 14,
                     "round %d: the plaintext cluster's call reached the TLS "
                     "listener over TLS: %d (%s)",
                     i, r.status, r.message);
    }
}
