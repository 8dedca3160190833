/* UTF-8 checks for text that leaves the process in a format that must be
 * valid UTF-8: JSON (logs, traces), Prometheus label values.
 * Invariant: pure functions, no allocation; any thread.
 * SPDX-License-Identifier: MIT */
#ifndef CORE_UTF8_H
#define CORE_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Whether the |n| bytes at |p| are well-formed UTF-8 (RFC 3629: no
 *  overlong forms, no surrogates, nothing above U+10FFFF). NUL bytes count
 *  as valid. */
bool utf8_valid(const uint8_t *p, size_t n);

/** Copies the |n| bytes at |p| into |out| (|outlen| bytes, NUL-terminated)
 *  with every byte that is not part of a well-formed sequence, and every
 *  NUL, replaced by U+FFFD; stops at a character boundary when |out| is
 *  full. Returns the length written (without the NUL). |outlen| >= 1. */
size_t utf8_clean(const uint8_t *p, size_t n, char *out, size_t outlen);

#endif
