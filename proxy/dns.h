/* DNS resolution of name targets with c-ares on the main thread's loop.
 * Invariant: dns.c is the only user of ares.h; it writes answers into
 * rt->eps and calls proxy_snapshot_changed(), nothing else.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_DNS_H
#define PROXY_DNS_H

#include <stdint.h>

struct runtime;

/** Starts resolving every DNS-name target of rt->conf (and re-resolving it
 *  every dns_refresh). Stores its state in rt->dns. Returns 0, or -1 (logged)
 *  when the resolver cannot be set up. Main thread. */
int proxy_dns_start(struct runtime *rt);

/** Cancels lookups and frees rt->dns. Safe when never started. */
void proxy_dns_stop(struct runtime *rt);

/** Pure timing rules, exported for unit tests. Milliseconds until the next
 *  lookup after a good answer whose shortest TTL is |ttl_s| seconds (negative:
 *  unknown): |refresh_ms|, or the TTL when shorter but not below |min_ttl_ms|,
 *  minus up to 10% jitter taken from |rnd| (never below that floor). */
uint32_t proxy_dns_refresh_ms(uint32_t refresh_ms, uint32_t min_ttl_ms, long ttl_s, uint32_t rnd);

/** Milliseconds until the retry after |failures| (>= 1) failed lookups in a
 *  row: 1 s doubling each time, at most |refresh_ms|, minus up to 10% jitter. */
uint32_t proxy_dns_retry_ms(uint32_t refresh_ms, uint32_t failures, uint32_t rnd);

#endif
