/* A finished OpenTelemetry span as switchyard records it, and the bounded
 * per-worker queue it waits in until the exporter (otlp.h) takes it. The
 * trace filter fills spans; the exporter on the main thread empties the
 * queues, which it finds through each worker's call env (env->spans).
 * Invariant: a queue has one producer (its worker) and one consumer (the
 * main thread) and never blocks either: a full queue drops the span and
 * counts it.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_SPAN_H
#define PROXY_SPAN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* OTLP SpanKind and Status.code values. */
#define PROXY_SPAN_KIND_SERVER  2
#define PROXY_SPAN_KIND_CLIENT  3
#define PROXY_SPAN_STATUS_UNSET 0
#define PROXY_SPAN_STATUS_ERROR 2

#define PROXY_SPAN_MAX_EVENTS 4

/** An event on a span ("retry", "ejection"), with one attribute. */
struct proxy_span_event {
    uint64_t time_ns; /* Unix time */
    char name[24];
    char key[40]; /* "" when none */
    char value[64];
};

/** A finished span, as the trace filter fills it in a queue slot. Strings
 *  are NUL-terminated and valid UTF-8; "" means absent. */
struct proxy_span {
    uint8_t trace_id[16];
    uint8_t span_id[8];
    uint8_t parent_id[8];
    bool has_parent;
    uint8_t kind;              /* PROXY_SPAN_KIND_* */
    uint8_t status;            /* PROXY_SPAN_STATUS_* */
    int16_t grpc_status;       /* rpc.grpc.status_code; -1: none */
    uint32_t attempt;          /* CLIENT: the attempt's number (0 first); SERVER: attempts made */
    uint64_t start_ns, end_ns; /* Unix time */
    char name[128];            /* "package.Service/Method" */
    char status_msg[128];
    char peer_addr[64]; /* network.peer.address (the client, or the endpoint) */
    uint16_t peer_port;
    char server_addr[128]; /* server.address (the :authority host, or the endpoint) */
    uint16_t server_port;
    char cluster[64];
    char endpoint[64];
    uint8_t nevents;
    struct proxy_span_event events[PROXY_SPAN_MAX_EVENTS];
};

/** A bounded single-producer single-consumer queue of spans. */
struct proxy_span_ring {
    struct proxy_span *slot;
    uint64_t cap;
    _Atomic uint64_t head;    /* next slot the consumer reads */
    _Atomic uint64_t tail;    /* next slot the producer fills */
    _Atomic uint64_t dropped; /* spans that found the queue full */
};

/** Allocates |r|'s |cap| slots. */
void proxy_span_ring_init(struct proxy_span_ring *r, uint32_t cap);
void proxy_span_ring_deinit(struct proxy_span_ring *r);

/** Producer: the slot to fill for the next span (zeroed), or NULL when the
 *  queue is full (the span is counted as dropped). Publish it with
 *  proxy_span_ring_commit(). */
struct proxy_span *proxy_span_ring_reserve(struct proxy_span_ring *r);
void proxy_span_ring_commit(struct proxy_span_ring *r);

/** Consumer: moves up to |max| spans into |out|; returns how many. */
size_t proxy_span_ring_pop(struct proxy_span_ring *r, struct proxy_span *out, size_t max);

/** Consumer: spans waiting. */
uint64_t proxy_span_ring_len(struct proxy_span_ring *r);

#endif
