/* A fake HTTP/1.1 server for integration tests: one thread on 127.0.0.1 that
 * answers every request with one canned response, or misbehaves on purpose
 * (raw bytes that are not HTTP, a chunked body, or never answering).
 * Invariant: the canned response is read and written under one mutex, so
 * a test may change it while the server runs; every connection is answered
 * and closed before the next one is accepted.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_FAKEHTTP_H
#define TESTS_SUPPORT_FAKEHTTP_H

#include <stdbool.h>

enum fh_mode {
    FH_NORMAL = 0, /* status line, Content-Type, Content-Length, body */
    FH_CHUNKED,    /* the same body with Transfer-Encoding: chunked (3-byte chunks) */
    FH_RAW,        /* the body bytes alone, no status line or headers */
    FH_SILENT,     /* read the request, never answer (the connection stays open) */
    FH_MODE_COUNT
};

struct fh_server;

/** Starts a server on a free loopback port answering |status| with |body|
 *  (copied; Content-Type application/json) in |mode|. Returns NULL on
 *  failure. Stop it with fh_stop(). */
struct fh_server *fh_start(enum fh_mode mode, int status, const char *body);

/** Returns the port |s| listens on. */
int fh_port(const struct fh_server *s);

/** Returns "127.0.0.1:PORT" of |s| (owned by |s|). */
const char *fh_addr(const struct fh_server *s);

/** Replaces the canned response of |s|; |body| is copied. */
void fh_set(struct fh_server *s, enum fh_mode mode, int status, const char *body);

/** Returns how many requests |s| has read completely so far. */
int fh_requests(struct fh_server *s);

/** Returns true when the last request |s| read contains |needle|. */
bool fh_last_request_contains(struct fh_server *s, const char *needle);

/** Stops |s|, closes its sockets and frees it. NULL is a no-op. */
void fh_stop(struct fh_server *s);

#endif
