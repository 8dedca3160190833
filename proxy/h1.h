/* Frontend codec for HTTP/1.1 (gRPC-Web, and later REST, from browsers and
 * plain HTTP clients) on the same listeners as HTTP/2: a connection that the
 * HTTP/2 frontend found not to open with the client preface (or whose TLS
 * handshake chose ALPN http/1.1) is handed over here. Parsing is Node's
 * http_parser (Debian's libhttp-parser); each request becomes a call, fed
 * and answered through proxy_call_side_ops like an HTTP/2 stream.
 * Invariant: a connection serves one request at a time (pipelined requests
 * wait in the input buffer, the parser paused); a call ends
 * (proxy_call_side_closed) only from the flush pass or the connection's
 * destruction, never while call code is on the stack.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_H1_H
#define PROXY_H1_H

#include <stddef.h>
#include <stdint.h>

struct proxy_conn;
struct proxy_fe_env;

/** Takes the client connection |from| (its socket, TLS state and the bytes
 *  read so far) into a new HTTP/1.1 connection of |env|, counted in
 *  env->nconns; |peer| is copied. The caller closes |from| afterwards
 *  (proxy_conn_close_soon), which no longer owns a socket. */
void proxy_h1_take(struct proxy_fe_env *env, struct proxy_conn *from, const char *peer);

/** Graceful shutdown: idle connections close now, the others after the
 *  response in progress (sent with Connection: close when it can be). */
void proxy_h1_drain(struct proxy_fe_env *env);

/** Frees every HTTP/1.1 connection of |env| (worker exit); their calls end. */
void proxy_h1_free_all(struct proxy_fe_env *env);

/** The request limits of one HTTP/1.1 parse, for proxy_h1_parse(). */
struct proxy_h1_limits {
    uint32_t max_header_bytes; /* request line + fields, name + value + 32 each */
    size_t chunk;              /* feed at most this many bytes at a time (0: all), as reads
                                  would split them */
};

/** Parses |len| bytes of |data| as a sequence of HTTP/1.1 requests without a
 *  connection or calls (the fuzz harness's entry: the same parser settings
 *  and checks as a connection). Returns how many complete requests were
 *  accepted, or -1 when the input is refused (the status a connection would
 *  answer in |*status|, e.g. 400, 431, 426, 505). */
int proxy_h1_parse(const uint8_t *data, size_t len, const struct proxy_h1_limits *lim, int *status);

#endif
