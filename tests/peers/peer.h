/* Wire helpers shared by the test peers (sy-backend, the gclient library):
 * protobuf-c <-> grpc_byte_buffer, the payload pattern and status names.
 * Invariant: payload bytes that a peer generates are always byte i = i % 251,
 * so a receiver can check that a proxy neither reorders nor corrupts data.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_PEERS_PEER_H
#define TESTS_PEERS_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <grpc/byte_buffer.h>
#include <protobuf-c/protobuf-c.h>

/* Metadata key carrying the backend's --id in initial and trailing metadata. */
#define PEER_BACKEND_ID_KEY "x-backend-id"

/* Largest message either peer accepts (both ways); tests use up to 16 MiB. */
#define PEER_MAX_MESSAGE (64 * 1024 * 1024)
/* Metadata either way (tests send 25 KB of custom metadata through switchyard). */
#define PEER_MAX_METADATA (256 * 1024)

/** Serialises |m| into a new byte buffer (the caller destroys it with
 *  grpc_byte_buffer_destroy()). Never returns NULL; aborts on OOM. */
grpc_byte_buffer *peer_pack(const ProtobufCMessage *m);

/** Parses |bb| (borrowed) as a message of type |d|. Returns a new message that
 *  the caller frees with protobuf_c_message_free_unpacked(m, NULL), or NULL
 *  when |bb| is not a valid encoding. */
ProtobufCMessage *peer_unpack(const ProtobufCMessageDescriptor *d, grpc_byte_buffer *bb);

/** Fills |p[0..n)| with the test pattern: byte i = i % 251. */
void peer_fill(uint8_t *p, size_t n);

/** Returns true when |p[0..n)| holds the test pattern. */
bool peer_check(const uint8_t *p, size_t n);

/** Returns the canonical name of gRPC status |code| ("OK", "CANCELLED", ...),
 *  or "?" for a code outside 0..16. */
const char *peer_status_name(int code);

/** Returns the name of a grpc.health.v1 ServingStatus value, or "?". */
const char *peer_serving_name(int status);

/** Parses a ServingStatus name (case-insensitive, e.g. "SERVING",
 *  "not_serving") into |*status|. Returns 0, or -1 if |s| names none. */
int peer_serving_parse(const char *s, int *status);

#endif
