/* A real DNS server for integration tests: dnsmasq on a free loopback port,
 * answering only from a hosts file the test rewrites (then SIGHUP).
 * Invariant: dnsmasq is started through sup_spawn(), so it is in the support
 * registry (PR_SET_PDEATHSIG, stopped by PID in sup_stop_all()); it never
 * forwards a query: every name not in the hosts file gets NXDOMAIN.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_DNSMASQ_H
#define TESTS_SUPPORT_DNSMASQ_H

#include <stdbool.h>
#include <stddef.h>

#include "tests/support/support.h"

/** A dnsmasq started by sup_dnsmasq_start(). */
struct sup_dnsmasq {
    struct sup_proc *proc; /* NULL before the start and after sup_dnsmasq_stop() */
    int port;              /* UDP and TCP on 127.0.0.1 */
    char addr[32];         /* "127.0.0.1:PORT", for [proxy] dns_servers */
    char hosts[512];       /* the hosts file it reads */
    int reloads;           /* hosts file reads seen in its log so far */
};

/** Returns $SY_DNSMASQ, or "dnsmasq" found in /usr/sbin, /sbin or $PATH. */
const char *sup_dnsmasq_bin(void);

/** Writes |hosts| (lines "IP NAME") to a new hosts file and starts dnsmasq on
 *  127.0.0.1 at a free port: no upstream server, no /etc/hosts, TTL 1 s,
 *  NXDOMAIN for every other name, queries logged to its stderr. Waits until it
 *  serves (10 s). Fills |d|. Returns 0 or -1 (the reason is printed). */
int sup_dnsmasq_start(struct sup_dnsmasq *d, const char *hosts);

/** Replaces the hosts file with |hosts| (atomically: write and rename), sends
 *  SIGHUP and waits (|timeout_ms|) until dnsmasq logged that it read the new
 *  file. Returns 0, or -1 when it did not (or is not running). */
int sup_dnsmasq_set_hosts(struct sup_dnsmasq *d, const char *hosts, int timeout_ms);

/** Stops dnsmasq (SIGTERM, then SIGKILL) and waits for it. Returns its exit
 *  status as sup_stop() does; 0 when it was not running. */
int sup_dnsmasq_stop(struct sup_dnsmasq *d);

/** Starts dnsmasq again after sup_dnsmasq_stop(), on the same port and hosts
 *  file (rewritten with |hosts| first unless NULL). Returns 0 or -1. */
int sup_dnsmasq_restart(struct sup_dnsmasq *d, const char *hosts);

#endif
