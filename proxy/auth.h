/* Call authentication ([auth]): a verifier built once per configuration on the
 * main thread, then read by every worker for each call.
 * Invariant: a struct proxy_auth is immutable once proxy_auth_new() returned
 * it; verifying never opens a file, takes a lock or writes to it, so workers
 * share one without synchronisation. Secrets never appear in a message.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_AUTH_H
#define PROXY_AUTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct conf;

/* Longest bearer token looked at (a JWT with a few claims is well under 2 KiB). */
#define PROXY_AUTH_MAX_TOKEN 8192

/** Why a call was refused; the text of each is proxy_auth_reason()'s. */
enum proxy_auth_status {
    PROXY_AUTH_OK = 0,
    PROXY_AUTH_ENOTCONF,   /* mode is not off but no verifier was built: refuse */
    PROXY_AUTH_EMISSING,   /* no authorization header */
    PROXY_AUTH_EMALFORMED, /* not exactly one "authorization: Bearer <token68>" */
    PROXY_AUTH_EBADTOKEN,  /* not a JWS compact serialization with JSON header and claims */
    PROXY_AUTH_EALG,       /* alg is "none", not allowed, or does not fit the key */
    PROXY_AUTH_ESIGNATURE, /* the signature does not verify with the configured key */
    PROXY_AUTH_EEXPIRED,   /* exp + leeway has passed */
    PROXY_AUTH_ENOTYET,    /* nbf - leeway is still ahead */
    PROXY_AUTH_EISSUER,    /* iss differs from [auth] issuer */
    PROXY_AUTH_EAUDIENCE,  /* aud names none of [auth] audience */
    PROXY_AUTH_EUNKNOWN,   /* token mode: not one of tokens_file's */
    PROXY_AUTH_EPATH,      /* :path is not a canonical gRPC path (grpc_path_is_canonical()) */
    PROXY_AUTH_STATUS_COUNT
};

struct proxy_auth;

/** Builds the verifier of |c|'s [auth] section: parses the public key (an SPKI
 *  PEM or a certificate; RSA of at least 2048 bits, or EC P-256/P-384/P-521),
 *  derives the allowed algorithms, hashes the tokens. |c| is borrowed and must
 *  outlive the verifier. Main thread (may be slow: key parsing). Returns the
 *  verifier, or NULL with one line in |err| ("FILE: [auth] KEY: ...") that
 *  never contains key material. */
struct proxy_auth *proxy_auth_new(const struct conf *c, char *err, size_t errlen);

/** Frees |a| and wipes its key material. NULL is a no-op. Any thread. */
void proxy_auth_free(struct proxy_auth *a);

/** Builds the verifier of |c| and hangs it on c->auth.verifier, to be freed by
 *  conf_free() with |c|. Call right after conf_load_file(), before |c| is
 *  shared (snapshots carry the conf, so the verifier reaches every worker and
 *  lives as long as the last call path that can see the conf). Nothing is
 *  attached when mode = off. Returns 0, or -1 with a message in |err|. */
int proxy_auth_attach(struct conf *c, char *err, size_t errlen);

/** Authenticates one request. |nv| are its |n| header fields as received;
 *  |path| its :path. now is the wall clock in seconds since the epoch.
 *  A :path that is not a canonical gRPC path (core/grpc.h) is refused with
 *  PROXY_AUTH_EPATH, exempt or not, so that no other spelling of a path can
 *  pass for an exempt one. A :path equal to an [auth] exempt method, or
 *  under an exempt service (/pkg.Service/), is not verified. On PROXY_AUTH_OK,
 *  |*out| is either NULL (forward |nv| as it is) or a new list of |*nout|
 *  fields to forward instead (the caller free()s the one block): |nv| less
 *  the fields switchyard owns (authorization with strip_authorization; in jwt
 *  mode every client-sent x-jwt-*, so a client cannot pose as someone), plus
 *  one x-jwt-<claim> per forward_claims claim the verified token has (a
 *  claim whose value cannot be a header value is left out). The list points
 *  into |nv|'s buffers, which must outlive it, and into its own block.
 *  Otherwise returns the reason and leaves |*out| NULL. Any thread; no locks,
 *  no file access. */
int proxy_auth_request(const struct proxy_auth *a, const uint8_t *path, size_t pathlen,
                       const nghttp2_nv *nv, size_t n, double now, nghttp2_nv **out, size_t *nout);

/** The text for |status|, e.g. "token expired"; never a secret. */
const char *proxy_auth_reason(int status);

#endif
