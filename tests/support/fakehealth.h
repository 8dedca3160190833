/* A fake grpc.health.v1 server for integration tests: one thread on
 * 127.0.0.1 speaking h2c through nghttp2 (server role), answering Check and
 * Watch the way a test scripts it, including the ways a real server fails:
 * never answering, compressed or undecodable messages, error statuses,
 * UNIMPLEMENTED, GOAWAY.
 * Invariant: the mode is read and written under one mutex, so a test may
 * change it while the server runs; the thread waits only in poll() on its
 * sockets and a stop pipe, so fhs_stop() always ends it promptly.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_FAKEHEALTH_H
#define TESTS_SUPPORT_FAKEHEALTH_H

#include <stdbool.h>

enum fhs_mode {
    FHS_SERVING = 0, /* Check: SERVING; Watch: SERVING, then updates on fhs_set() */
    FHS_NOT_SERVING, /* Check: NOT_SERVING; Watch: NOT_SERVING */
    FHS_STATUS,      /* trailers-only answer with grpc-status |code| */
    FHS_COMPRESSED,  /* a SERVING message with the compressed flag set */
    FHS_BAD_MESSAGE, /* grpc-status 0 with a message that is not a HealthCheckResponse */
    FHS_SILENT,      /* accept and read, never write a byte (a hung server) */
    FHS_GOAWAY,      /* answer each request with GOAWAY(NO_ERROR) and close */
    FHS_MODE_COUNT
};

struct fhs_server;

/** Starts a server on a free loopback port in |mode| (|code| is the
 *  grpc-status of FHS_STATUS). Returns NULL on failure; stop it with
 *  fhs_stop(). */
struct fhs_server *fhs_start(enum fhs_mode mode, int code);

/** Changes how |s| answers from now on; open Watch streams get an update when
 *  the mode is FHS_SERVING or FHS_NOT_SERVING. */
void fhs_set(struct fhs_server *s, enum fhs_mode mode, int code);

/** With |on|, Watch is answered UNIMPLEMENTED (grpc-status 12), as by a
 *  server that only has Check. */
void fhs_watch_unimplemented(struct fhs_server *s, bool on);

/** Returns the port / "127.0.0.1:PORT" (owned by |s|) |s| listens on. */
int fhs_port(const struct fhs_server *s);
const char *fhs_addr(const struct fhs_server *s);

/** Counters: connections accepted, Check and Watch requests received. */
int fhs_conns(struct fhs_server *s);
int fhs_checks(struct fhs_server *s);
int fhs_watches(struct fhs_server *s);

/** Returns true when some request carried header |name| with |value|. */
bool fhs_saw_header(struct fhs_server *s, const char *name, const char *value);

/** Stops |s|, closes its sockets and frees it. NULL is a no-op. */
void fhs_stop(struct fhs_server *s);

#endif
