/* A whole switchyard runtime inside a fuzz harness (fuzz_fe, fuzz_admin): the
 * configuration, endpoint set, snapshot, REST table, health checker, outlier
 * box, span exporter, one worker built by proxy/worker.c (its filter chain,
 * pools and frontend, exactly as the proxy runs them) and the admin listener,
 * set up the way proxy/main.c's run() does. The worker's thread is not
 * started: the harness turns both loops itself, on its own thread.
 * Invariant: no TCP or UDP socket is opened: the worker has no listener
 * (the harness hands it connections with proxy_fe_accept();
 * [proxy] listen is dropped after the load), the admin listens on an abstract AF_UNIX address of
 * this process, endpoints get the addresses the harness gives (targets that
 * are DNS names stay unresolved), health checks are off and tracing has no
 * OTLP endpoint.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_FUZZ_RUNTIME_H
#define TESTS_FUZZ_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "proxy/internal.h"

/** A runtime and where its admin listens. */
struct fz_rt {
    struct runtime rt;
    struct sockaddr_un admin; /* the admin listener's address */
    socklen_t admin_len;      /* 0: [admin] listen = off */
};

/** An abstract AF_UNIX address "sy-fuzz-|name|-PID" in |*sa|; returns its length. */
socklen_t fz_unix_addr(struct sockaddr_un *sa, const char *name);

/** Builds |f| (zeroed) from INI text |ini| as proxy/main.c does, with one
 *  worker without a listener (whatever |ini|'s [proxy] listen says) and the admin
 *  (unless [admin] listen = off) on the abstract AF_UNIX address of
 *  "|name|-admin". Target i of every cluster
 *  gets address |backends|[i % |nbackends|] (|lens| their lengths) instead of
 *  its own when |nbackends| > 0 (the INI's targets must then be IP literals). Aborts with the
 * reason when anything fails. Turns the loops until the worker has taken the first snapshot. */
void fz_rt_init(struct fz_rt *f, const char *name, const char *ini,
                const struct sockaddr_un *backends, const socklen_t *lens, size_t nbackends);

/** The worker. */
struct proxy_worker *fz_rt_worker(struct fz_rt *f);

/** One non-blocking turn of the main loop, then one of the worker's. */
void fz_rt_turn(struct fz_rt *f);

/** Whether |s| (one line, no newline) is a line of Prometheus' text
 *  exposition format 0.0.4: a HELP or TYPE comment, or NAME{LABELS} VALUE
 *  with label values in valid, escaped UTF-8. */
bool fz_metrics_line(const char *s);

#endif
