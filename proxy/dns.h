/* DNS resolution of name targets with c-ares on the main thread's loop.
 * Invariant: dns.c is the only user of ares.h; it writes answers into
 * rt->eps and calls proxy_snapshot_changed(), nothing else.
 * SPDX-License-Identifier: MIT */
#ifndef PROXY_DNS_H
#define PROXY_DNS_H

struct runtime;

/** Starts resolving every DNS-name target of rt->conf (and re-resolving it
 *  every dns_refresh). Stores its state in rt->dns. Returns 0, or -1 (logged)
 *  when the resolver cannot be set up. Main thread. */
int proxy_dns_start(struct runtime *rt);

/** Cancels lookups and frees rt->dns. Safe when never started. */
void proxy_dns_stop(struct runtime *rt);

#endif
