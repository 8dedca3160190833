/* TLS for both sides: the frontend listener's context (ALPN h2 required,
 * or h2 and http/1.1 with [proxy] http1 = on; optional client
 * certificates) and one client context per TLS cluster
 * (ALPN h2, SNI, chain and name verification, optional client certificate).
 * Invariant: every context is built on the main thread from one conf, before
 * the conf is shared, and never changed afterwards; workers only SSL_new()
 * from them (thread-safe), so a reload (a new conf) swaps contexts without
 * locks: new handshakes use the new ones, open connections keep theirs.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_TLS_H
#define CORE_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct bufferevent;
struct conf;

/** A TLS cluster's client settings: its context and the name to verify.
 *  Refcounted, so that a backend pool can keep it across reloads. */
struct tls_be;

/** Builds the TLS contexts |c| asks for (listen_tls, clusters with tls = on),
 *  loading every certificate and key, and hangs them on c->tls (released by
 *  conf_free()). Call on the main thread after conf_load_*() and before the
 *  conf is shared. Returns 0 (also when no TLS is configured), or -1 with one
 *  line in |err| naming the file, the section, the key and OpenSSL's reason.
 *  Never logs. */
int tls_attach(struct conf *c, char *err, size_t errlen);

/** The frontend context of |c| (borrowed: lives as long as |c|), or NULL
 *  when there is no TLS listener. */
SSL_CTX *tls_fe_ctx(const struct conf *c);

/** Creates the server-side SSL object of one accepted client connection.
 *  |peer| (borrowed: must outlive the SSL object) names the client in the log
 *  line written when it is refused for its ALPN offer. Returns NULL on
 *  failure (out of memory). Worker threads. */
SSL *tls_fe_ssl_new(SSL_CTX *ctx, const char *peer);

/** The client settings of cluster |index| of |c| (borrowed), or NULL when that
 *  cluster does not use TLS. */
struct tls_be *tls_be_get(const struct conf *c, size_t index);
/** Takes one more reference to |tb| (NULL allowed); returns it. Thread-safe. */
struct tls_be *tls_be_ref(struct tls_be *tb);
/** Drops one reference; the last frees it. NULL is a no-op. Thread-safe. */
void tls_be_unref(struct tls_be *tb);

/** Creates the client-side SSL object of one backend connection to |host|
 *  (the target's host: a name or an IP literal) with SNI and the name to
 *  verify set: tls_server_name when configured, else |host| (an IP literal
 *  is verified against the certificate's IP SANs and sends no SNI, RFC 6066
 *  §3). Returns NULL on failure. Any thread. */
SSL *tls_be_ssl_new(struct tls_be *tb, const char *host);

/** Whether the handshake of |ssl| selected ALPN "h2". */
bool tls_is_h2(const SSL *ssl);

/** Describes why the TLS connection of |bev| failed (the verification
 *  result, else OpenSSL's queued errors, else "connection closed during the
 *  handshake") into |buf|; returns |buf|. */
const char *tls_error(struct bufferevent *bev, char *buf, size_t len);

#endif
