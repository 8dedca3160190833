/* gclient: a synchronous gRPC C core client for switchyard's tests, speaking
 * sy.test.Echo (all four call kinds), sy.test.Control and grpc.health.v1.
 * Invariant: gRPC is initialised lazily, once per process, on first use; a
 * process that never calls gc_* never starts gRPC threads (Criterion's runner
 * forks each test from such a process). Every function may be called from any
 * thread; each call uses its own completion queue.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_PEERS_GCLIENT_H
#define TESTS_PEERS_GCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gc_kind {
    GC_UNARY = 0,
    GC_CLIENT_STREAM,
    GC_SERVER_STREAM,
    GC_BIDI,
    GC_KIND_COUNT
};

/** One extra request metadata entry (lower-case key). */
struct gc_md {
    const char *key;
    const char *value;
};

/** What one Echo call does. Start from gc_opts_init(). */
struct gc_opts {
    enum gc_kind kind;
    const char *method;       /* :path; NULL = "/sy.test.Echo/<kind>" */
    const char *authority;    /* :authority; NULL = the channel's target */
    size_t request_size;      /* payload bytes in each request (test pattern) */
    int request_count;        /* requests sent before half-close (1) */
    uint32_t response_size;   /* reply payload bytes; 0 = echo (empty for client-stream) */
    uint32_t response_count;  /* server-stream: replies wanted (1) */
    uint32_t delay_ms;        /* backend waits this long before each reply */
    uint32_t fail_code;       /* non-zero: backend ends the call with this status */
    int timeout_ms;           /* deadline from the start of the call; 0 = none (10000) */
    int cancel_after_replies; /* cancel the call after this many replies; -1 = never */
    const struct gc_md *md;   /* extra request metadata, |nmd| entries */
    size_t nmd;
    bool wait_for_ready; /* wait for the channel to connect instead of failing */
};

/** What came back. Filled by every call function, also on failure. */
struct gc_result {
    int status;                  /* gRPC status code; -1 = the call could not start */
    char message[256];           /* grpc-message, or the core's error string */
    char backend_id[64];         /* x-backend-id from trailing metadata ("" if none) */
    char initial_backend_id[64]; /* x-backend-id from initial metadata */
    char reply_backend_id[64];   /* EchoReply.backend_id of the last reply */
    int replies;                 /* messages received */
    uint64_t bytes_received;     /* reply payload bytes, all replies */
    bool sizes_ok;               /* every reply parsed and had the expected payload size */
    bool content_ok;             /* every reply payload held the test pattern */
    bool seq_ok;                 /* EchoReply.seq counted 0, 1, 2, ... (not client-stream) */
    uint32_t last_seq;           /* EchoReply.seq of the last reply */
    uint64_t server_bytes;       /* EchoReply.bytes_received of the last reply */
    bool got_initial_md;         /* response headers arrived before the end of the call */
    int echo_md_initial;         /* x-echo-* entries in the initial metadata */
    int echo_md_trailing;        /* x-echo-* entries in the trailing metadata */
    bool echo_md_ok;             /* each came back with the value it was sent with */
    int trailers_extra;          /* x-trailer-* entries in the trailing metadata */
    long elapsed_ms;             /* from start to status */
    long deadline_ms;            /* x-deadline-ms trailer: the deadline the backend saw; -1 none */
    int previous_attempts; /* x-previous-attempts trailer (grpc-previous-rpc-attempts); 0 none */
};

/** Counters of one sy-backend (see StatsReply in echo.proto). */
struct gc_stats {
    char backend_id[64];
    uint64_t calls_started, calls_completed, calls_cancelled, calls_active;
    uint64_t unary, client_stream, server_stream, bidi;
    uint64_t messages_received, messages_sent, bytes_sent;
    uint64_t health_checks, health_watches;
};

/** Sets |o| to one unary-like call of |kind|: 1 request of 0 bytes, 1 reply,
 *  10 s deadline, no cancel, no delay. */
void gc_opts_init(struct gc_opts *o, enum gc_kind kind);

/** Returns the Echo method path of |kind|, e.g. "/sy.test.Echo/Bidi". */
const char *gc_kind_path(enum gc_kind kind);

/** Returns "unary", "client-stream", "server-stream" or "bidi". */
const char *gc_kind_name(enum gc_kind kind);

/** A channel: one HTTP/2 connection (its own subchannel pool, retries off,
 *  messages up to 64 MiB both ways) to |target| ("127.0.0.1:PORT"). */
struct gc_chan;

/** Returns a new channel to |target| (copied); free it with gc_chan_free().
 *  Never returns NULL. Does not connect until the first call. */
struct gc_chan *gc_chan_new(const char *target);

/** Closes and frees |ch|; gc_chan_free(NULL) is a no-op. */
void gc_chan_free(struct gc_chan *ch);

/** Runs one Echo call described by |o| on |ch| and waits for its status.
 *  Fills |r| and returns r->status (0 = OK). */
int gc_chan_call(struct gc_chan *ch, const struct gc_opts *o, struct gc_result *r);

/** Runs |n| calls described by |o| at once on |ch|. All |n| calls send their
 *  request headers and wait until every one has received response headers
 *  (or ended) before any request message is sent, so all are in flight
 *  together. Fills |results[0..n)|. Returns 0 when every call ended OK, the
 *  number of calls that did not, or -1 when some call ended before all had
 *  received response headers (they were not all concurrent). */
int gc_chan_concurrent(struct gc_chan *ch, int n, const struct gc_opts *o,
                       struct gc_result *results);

/** gc_chan_call() on a fresh channel to |target|. */
int gc_call(const char *target, const struct gc_opts *o, struct gc_result *r);

/** gc_chan_concurrent() on a fresh channel (one connection) to |target|. */
int gc_concurrent(const char *target, int n, const struct gc_opts *o, struct gc_result *results);

/** Reads the counters of the sy-backend at |target| into |s|, then zeroes
 *  them there when |reset|. Returns the gRPC status (0 = OK; |s| is then
 *  valid), -1 if the call could not start. */
int gc_stats(const char *target, bool reset, struct gc_stats *s);

/** Sets the grpc.health.v1 status of |service| on the sy-backend at |target|
 *  to |status| (1 SERVING, 2 NOT_SERVING, ...). Returns the gRPC status. */
int gc_set_health(const char *target, const char *service, int status);

/** grpc.health.v1.Health/Check of |service| at |target| (1 s deadline).
 *  Returns the gRPC status (0 OK, 5 NOT_FOUND, 14 UNAVAILABLE, ...) and on OK
 *  stores the ServingStatus in |*status|. */
int gc_health_check(const char *target, const char *service, int *status);

/** Called with each ServingStatus a Watch receives; return non-zero to end
 *  the watch. Runs on the watching thread and may call other gc_* functions. */
typedef int (*gc_watch_cb)(void *arg, int status);

/** grpc.health.v1.Health/Watch of |service| at |target|: calls |cb| per
 *  update until it returns non-zero (then returns 0) or the stream ends or
 *  |timeout_ms| passes (then returns the call's gRPC status, never 0). */
int gc_health_watch(const char *target, const char *service, int timeout_ms, gc_watch_cb cb,
                    void *arg);

/** Shuts gRPC down if this process initialised it; registered with atexit()
 *  on first use, callable earlier once no gc_* call runs. Idempotent. */
void gc_shutdown(void);

#endif
