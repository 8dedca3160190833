/* The gRPC-Web codec (gRPC PROTOCOL-WEB.md): base64 of the -text variants,
 * decoded across chunks and padded segments, and the trailer frame (flag
 * 0x80) that carries trailers in the response body. I/O-free, no
 * allocation: the filter (grpc_web.c) and the fuzz harness use it.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_FILTERS_GRPC_WEB_H
#define PROXY_FILTERS_GRPC_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

/** Decoder state: the characters of a quantum not complete yet. Zero it to
 *  start. */
struct grpc_web_b64 {
    uint8_t q[4];
    uint8_t n;
};

/** Decodes the base64 text |p| (|n| bytes) into |out|, which has room for
 *  GRPC_WEB_B64_DECODED(n) bytes. A quantum split across calls is kept in
 *  |d|; a padded quantum ("xx==", "xxx=") ends a segment and the next
 *  quantum starts a new one (clients pad each chunk they send). Returns the
 *  bytes written, or -1 at a character outside the base64 alphabet or
 *  misplaced padding. */
long grpc_web_b64_decode(struct grpc_web_b64 *d, const uint8_t *p, size_t n, uint8_t *out);
#define GRPC_WEB_B64_DECODED(n) (((n) + 3) / 4 * 3 + 3)

/** Whether the text ended on a quantum boundary (else it is truncated). */
bool grpc_web_b64_complete(const struct grpc_web_b64 *d);

/** Encodes |n| bytes of |p| as padded base64 into |out| (room for
 *  GRPC_WEB_B64_ENCODED(n) bytes); returns the length written. */
size_t grpc_web_b64_encode(const uint8_t *p, size_t n, uint8_t *out);
#define GRPC_WEB_B64_ENCODED(n) (((n) + 2) / 3 * 4)

/** The size of the trailer frame for |n| fields |nv| (pseudo-fields are
 *  left out): 5 + "name:value\r\n" per field. */
size_t grpc_web_trailer_frame_size(const nghttp2_nv *nv, size_t n);

/** Writes that frame into |out| (room for grpc_web_trailer_frame_size());
 *  returns its length. */
size_t grpc_web_trailer_frame(const nghttp2_nv *nv, size_t n, uint8_t *out);

#endif
