/* One direction of a call's body: the bytes received from one side and not
 * yet written to the other, and the flow-control credit rule.
 * The credit rule: the sender's *connection* window is credited as soon as
 * bytes are buffered here, its *stream* window only as they are written on.
 * So a stream that cannot be written on (its reader is stalled) holds at most
 * its own stream window of bytes here, and never the connection window other
 * streams of that connection need. A filter may transform bytes on their way
 * in (gRPC-Web, JSON): credit counts source bytes; when the buffer runs empty
 * everything still held is credited.
 * Invariant: held <= bytes received from the source that were not credited
 * at stream level; no credit is ever given twice.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FLOW_H
#define PROXY_FLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;

/** Where the bytes of a flow come from: the side that gets the credit. */
struct proxy_flow_src_ops {
    /** |n| bytes of window back to the sender: its connection window when
     *  !|stream|, else its stream window. Called from any callback. */
    void (*credit)(void *src, size_t n, bool stream);
};

struct proxy_flow {
    struct evbuffer *buf; /* owned: received, not yet written on */
    const struct proxy_flow_src_ops *ops;
    void *src;      /* NULL: no source (detached, or a local answer) */
    size_t held;    /* source bytes not credited at stream level yet */
    uint64_t in;    /* source bytes received, in total */
    uint64_t out;   /* bytes written on, in total (the furthest reader's, when keeping) */
    uint64_t added; /* bytes added, in total */
    uint64_t base;  /* offset (in |added| terms) of the buffer's first byte */
    bool keep;      /* replay: written bytes stay for other readers (retries, hedges) */
    bool eof;       /* the source has ended: nothing more will be added */
};

/** Initialises |f| with an empty buffer and no source. */
void proxy_flow_init(struct proxy_flow *f);

/** Frees the buffer; gives back nothing (the source must be gone). */
void proxy_flow_deinit(struct proxy_flow *f);

/** Sets (or, with NULL, drops) the source credits go to. Dropping it first
 *  credits nothing: call proxy_flow_release() before when the source lives on. */
void proxy_flow_set_src(struct proxy_flow *f, const struct proxy_flow_src_ops *ops, void *src);

/** |n| source bytes arrived: credits the source's connection window now and
 *  holds the stream credit. The bytes themselves are added with
 *  proxy_flow_add() (as received or transformed). */
void proxy_flow_received(struct proxy_flow *f, size_t n);

/** Copies |len| bytes into the buffer (the one copy of the payload). */
void proxy_flow_add(struct proxy_flow *f, const void *data, size_t len);

/** Bytes waiting to be written on. */
size_t proxy_flow_pending(const struct proxy_flow *f);

/** Moves |n| buffered bytes (n <= pending) to |out| without copying and
 *  credits the source's stream window for them. */
void proxy_flow_write(struct proxy_flow *f, struct evbuffer *out, size_t n);

/** Credits the source's stream window for |n| held bytes (at most what is
 *  held) that will not be written on as they are: a filter keeps them. */
void proxy_flow_credit_held(struct proxy_flow *f, size_t n);

/** Replay: from now on (the flow must still be empty) written bytes stay, and
 *  each reader (attempt) reads from its own offset with proxy_flow_*_at. */
void proxy_flow_keep(struct proxy_flow *f);

/** Ends replay: bytes before |from| (the one reader left's offset) go, and
 *  the flow moves bytes again (proxy_flow_write from |from| on). */
void proxy_flow_unkeep(struct proxy_flow *f, uint64_t from);

/** Bytes a reader at offset |off| may write now. */
size_t proxy_flow_avail_at(const struct proxy_flow *f, uint64_t off);

/** Writes |n| bytes from offset |off| to |out|: copied while keeping (the
 *  bytes stay for another reader), moved otherwise (then |off| is the
 *  buffer's start). Credits the source's stream window for bytes no reader
 *  had written before. */
void proxy_flow_write_at(struct proxy_flow *f, uint64_t off, struct evbuffer *out, size_t n);

/** Drops every buffered byte and credits all that is held (the other side will
 *  never take them: the call ended or the direction is no longer wanted). */
void proxy_flow_release(struct proxy_flow *f);

/** Empties |f| for reuse by another call: no source, no bytes, no eof. */
void proxy_flow_reset(struct proxy_flow *f);

#endif
