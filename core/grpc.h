/* gRPC-over-HTTP/2 protocol helpers (PROTOCOL-HTTP2.md): status codes,
 * grpc-timeout, the method path, grpc-message encoding. I/O-free.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_GRPC_H
#define CORE_GRPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum grpc_code {
    GRPC_OK = 0,
    GRPC_CANCELLED = 1,
    GRPC_UNKNOWN = 2,
    GRPC_INVALID_ARGUMENT = 3,
    GRPC_DEADLINE_EXCEEDED = 4,
    GRPC_NOT_FOUND = 5,
    GRPC_ALREADY_EXISTS = 6,
    GRPC_PERMISSION_DENIED = 7,
    GRPC_RESOURCE_EXHAUSTED = 8,
    GRPC_FAILED_PRECONDITION = 9,
    GRPC_ABORTED = 10,
    GRPC_OUT_OF_RANGE = 11,
    GRPC_UNIMPLEMENTED = 12,
    GRPC_INTERNAL = 13,
    GRPC_UNAVAILABLE = 14,
    GRPC_DATA_LOSS = 15,
    GRPC_UNAUTHENTICATED = 16,
    GRPC_CODE_COUNT
};

/** "OK", "CANCELLED", ...; "UNKNOWN" for values out of range. */
const char *grpc_code_name(int code);

/** Parses a grpc-timeout value ("1S", "250m", "100u": 1 to 8 digits and one
 *  of H M S m u n). Stores milliseconds, rounded up (so only a zero value
 *  gives 0: a deadline that has passed already). The largest value,
 *  99999999H, fits. Returns 0, or -1 when the value is malformed. */
int grpc_timeout_parse(const uint8_t *v, size_t len, uint64_t *ms);

/** Longest value grpc_timeout_format() writes ("99999999S"), no NUL. */
#define GRPC_TIMEOUT_MAX 9

/** Writes |ms| as a grpc-timeout value into |out| (no NUL) and returns its
 *  length: "<ms>m" up to 8 digits, beyond that whole seconds rounded up
 *  ("<s>S"), then hours ("<h>H"); a value past 99999999H is written as that.
 *  Parsing the result gives back |ms|, or the smallest larger value the
 *  coarser unit can say. */
size_t grpc_timeout_format(uint64_t ms, char out[GRPC_TIMEOUT_MAX]);

/** Parses a grpc-status value (1 to 3 ASCII digits). Returns it, or -1. */
int grpc_status_parse(const uint8_t *v, size_t len);

/** Whether the |len| bytes at |path| are a canonical gRPC method path
 *  (PROTOCOL-HTTP2.md, "Path": "/" Service-Name "/" method name): exactly two
 *  segments after the leading '/', neither of them empty, "." or "..", made
 *  of visible ASCII (0x21-0x7E) other than '%' (no percent-encoding) and '?'
 *  or '#' (no query or fragment). Names are otherwise IDL-specific, so any
 *  other visible character is allowed. A path that is not canonical could be
 *  read differently by a hop that normalises it, so it must be refused before
 *  it is matched against prefixes (auth exempt entries, routes). Pure; any
 *  thread. |path| may be NULL when |len| is 0. */
bool grpc_path_is_canonical(const uint8_t *path, size_t len);

/** Percent-encodes |msg| for grpc-message into |out| (NUL-terminated,
 *  truncated to fit). Returns the length written. */
size_t grpc_message_encode(const char *msg, char *out, size_t outlen);

/** Follows the gRPC message framing (1-byte compressed flag, 4-byte length,
 *  then the message) of one direction of a call, across DATA chunks. */
struct grpc_scan {
    uint32_t need; /* message bytes still to come */
    uint8_t hdr[5];
    uint8_t hlen;  /* prefix bytes collected */
    uint64_t msgs; /* messages begun (prefixes read): for metrics */
};

/** Feeds |len| bytes. Returns 0, or -1 as soon as a prefix declares a message
 *  longer than |max| (0: no limit). Zero the struct to start. */
int grpc_scan_feed(struct grpc_scan *s, const uint8_t *p, size_t len, uint32_t max);

#endif
