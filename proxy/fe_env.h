/* The client side of a worker: what its two frontend codecs share, the
 * HTTP/2 one (proxy/fe.c, which owns it) and the HTTP/1.1 one (proxy/h1.c,
 * which fe.c hands connections to). A header of its own so that h1.c needs
 * nothing of fe.c: fe.c calls h1.c, never the other way round.
 * Invariant: nconns counts the connections of both lists; whichever codec
 * frees a connection calls on_gone.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FE_ENV_H
#define PROXY_FE_ENV_H

#include <stdbool.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

struct event_base;
struct proxy_flusher;
struct proxy_call_env;
struct proxy_fe_conn;
struct proxy_h1_conn;

/** A worker's frontend: shared by its client connections. */
struct proxy_fe_env {
    struct event_base *base;
    struct proxy_flusher *fl;
    struct proxy_call_env *calls; /* borrowed: the worker's */
    nghttp2_session_callbacks *cbs;
    nghttp2_option *opt;
    struct proxy_fe_conn *conns; /* open connections */
    struct proxy_h1_conn *h1;    /* open HTTP/1.1 connections (proxy/h1.c) */
    uint32_t nconns;             /* both kinds */
    uint32_t max_conns;          /* this worker's share of max_connections */
    uint64_t refused;            /* connections closed at max_connections */
    int worker;                  /* index, for logs */
    bool draining;
    struct event *trim_timer;   /* gives idle connections' frame buffers back (fe.c) */
    void (*on_gone)(void *arg); /* a connection was freed (the worker may finish a drain) */
    void *gone_arg;
};

#endif
