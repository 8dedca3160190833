/* Frontend codec: client-facing HTTP/2 connections (h2c with prior knowledge,
 * or TLS with ALPN h2), nghttp2 server role. Each request stream becomes a
 * call; the codec feeds it and implements its side (proxy_call_side_ops).
 * Invariant: a frontend connection owns the calls of its streams; every call
 * ends (proxy_call_side_closed) when its stream closes or the connection
 * goes, and a connection is freed only by the flush pass.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FE_H
#define PROXY_FE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <event2/util.h>

#include "proxy/fe_env.h"

struct event_base;
struct proxy_flusher;
struct proxy_call_env;

/** Builds |env|'s nghttp2 callbacks and options. */
void proxy_fe_env_init(struct proxy_fe_env *env, struct event_base *base, struct proxy_flusher *fl,
                       struct proxy_call_env *calls, int worker);

/** Frees every connection (worker exit) and the callbacks. */
void proxy_fe_env_deinit(struct proxy_fe_env *env);

/** Takes the accepted |fd|; |tls|: it came from listen_tls and speaks TLS with
 *  the current snapshot's context. */
void proxy_fe_accept(struct proxy_fe_env *env, evutil_socket_t fd, const struct sockaddr *sa,
                     bool tls);

/** Starts the graceful shutdown of every connection: GOAWAY(2^31-1) now, the
 *  final GOAWAY about a second later; connections close when their streams
 *  are done. */
void proxy_fe_drain(struct proxy_fe_env *env);

#endif
