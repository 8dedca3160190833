/* A gRPC server reflection client (grpc.reflection.v1, falling back to
 * v1alpha) on the main thread: every service an endpoint lists, with the
 * files that define them and all their imports, for REST transcoding.
 * Invariant: one fetch is one HTTP/2 connection; it reports exactly once
 * (unless cancelled first) and frees itself afterwards, never while nghttp2
 * is on the stack (conn.h's flush pass frees it).
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_REFLECT_H
#define PROXY_REFLECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

#include "proxy/filters/transcode_pb.h"

struct event_base;
struct proxy_flusher;
struct proxy_reflect;

/** The outcome of a fetch: |n| serialized FileDescriptorProtos (valid during
 *  the call: copy what you keep), or n == 0 and |why| on failure. */
typedef void (*proxy_reflect_cb)(void *arg, const struct tc_bytes *files, size_t n,
                                 const char *why);

/** Connects to |sa| (TLS when |ssl| is not NULL; taken) and fetches the
 *  descriptors of every service it lists but reflection itself, failing
 *  after |timeout_ms|. |authority| is copied. |fl| flushes the connection (the
 *  main thread's flusher, borrowed). Returns the fetch, or NULL when it could
 *  not even start (then |cb| is not called). */
struct proxy_reflect *proxy_reflect_start(struct event_base *base, struct proxy_flusher *fl,
                                          const struct sockaddr *sa, socklen_t salen, SSL *ssl,
                                          const char *authority, uint32_t timeout_ms,
                                          proxy_reflect_cb cb, void *arg);

/** Cancels |r| (no report follows); it frees itself. Not from its own
 *  callback (it frees itself after reporting anyway). */
void proxy_reflect_cancel(struct proxy_reflect *r);

#endif
