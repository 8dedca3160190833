/* dnsmasq for integration tests; see dnsmasq.h.
 * SPDX-License-Identifier: MIT */
#include "tests/support/dnsmasq.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *sup_dnsmasq_bin(void)
{
    static const char *const dirs[] = {"/usr/sbin/", "/sbin/", "/usr/local/sbin/"};
    static char found[256];
    const char *s = getenv("SY_DNSMASQ");

    if (s != NULL && *s != '\0')
        return s;
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(found, sizeof(found), "%sdnsmasq", dirs[i]);
        if (access(found, X_OK) == 0)
            return found;
    }
    return "dnsmasq"; /* sup_spawn() execs argv[0] as a path: exit 127 if absent */
}

/* How many times dnsmasq logged reading |d->hosts| ("read FILE - N names"). */
static int reads_logged(const struct sup_dnsmasq *d)
{
    char needle[600];
    char *text = sup_read_file(d->proc->err_path);
    int n = 0;

    if (text == NULL)
        return 0;
    snprintf(needle, sizeof(needle), "read %s - ", d->hosts);
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    free(text);
    return n;
}

static bool reloaded(void *arg)
{
    struct sup_dnsmasq *d = arg;

    return reads_logged(d) > d->reloads || !sup_alive(d->proc);
}

static int write_hosts(struct sup_dnsmasq *d, const char *hosts)
{
    char tmp[512];

    if (sup_write_file("dnsmasq-hosts.tmp", hosts, tmp, sizeof(tmp)) != 0)
        return -1;
    if (d->hosts[0] == '\0')
        snprintf(d->hosts, sizeof(d->hosts), "%s/dnsmasq-hosts", sup_tmpdir());
    /* rename(2): dnsmasq never reads a half-written file. */
    if (rename(tmp, d->hosts) != 0) {
        perror("support: rename hosts file");
        return -1;
    }
    return 0;
}

/* Spawns dnsmasq on d->port and waits until it serves. */
static int spawn(struct sup_dnsmasq *d)
{
    char port[32], hosts[600];
    const char *argv[24];
    int n = 0;

    snprintf(port, sizeof(port), "--port=%d", d->port);
    snprintf(hosts, sizeof(hosts), "--addn-hosts=%s", d->hosts);
    argv[n++] = sup_dnsmasq_bin();
    argv[n++] = "--no-daemon"; /* foreground, logs on stderr */
    argv[n++] = "--conf-file=/dev/null";
    argv[n++] = port;
    argv[n++] = "--listen-address=127.0.0.1";
    argv[n++] = "--bind-interfaces";
    argv[n++] = "--no-resolv";
    argv[n++] = "--no-hosts";
    argv[n++] = hosts;
    argv[n++] = "--local-ttl=1";
    argv[n++] = "--local=/#/"; /* every name is local: NXDOMAIN unless in the hosts file */
    argv[n++] = "--pid-file=";
    argv[n++] = "--log-queries";
    if (getuid() == 0)
        argv[n++] = "--user=root"; /* keep root: the temp dir is 0700 */
    argv[n] = NULL;
    d->reloads = 0;
    d->proc = sup_spawn("dnsmasq", argv);
    if (d->proc == NULL)
        return -1;
    if (sup_wait_port(d->proc, d->port, 10000) != 0)
        return -1;
    if (!sup_poll(reloaded, d, 10000) || !sup_alive(d->proc)) {
        fprintf(stderr, "support: dnsmasq never read %s\n", d->hosts);
        sup_dump_log(d->proc, 20);
        return -1;
    }
    d->reloads = reads_logged(d);
    return 0;
}

int sup_dnsmasq_start(struct sup_dnsmasq *d, const char *hosts)
{
    memset(d, 0, sizeof(*d));
    if (write_hosts(d, hosts) != 0)
        return -1;
    /* A free TCP port may still be taken for UDP: try a few. */
    for (int attempt = 0; attempt < 5; attempt++) {
        d->port = sup_free_port();
        if (d->port < 0)
            return -1;
        snprintf(d->addr, sizeof(d->addr), "127.0.0.1:%d", d->port);
        if (spawn(d) == 0)
            return 0;
        if (d->proc != NULL && sup_alive(d->proc)) {
            sup_stop(d->proc, 5000);
            break; /* running but not serving: not a port clash */
        }
    }
    d->proc = NULL;
    fprintf(stderr, "support: dnsmasq (%s) did not start\n", sup_dnsmasq_bin());
    return -1;
}

int sup_dnsmasq_set_hosts(struct sup_dnsmasq *d, const char *hosts, int timeout_ms)
{
    if (d->proc == NULL || !sup_alive(d->proc))
        return -1;
    if (write_hosts(d, hosts) != 0)
        return -1;
    if (sup_signal(d->proc, SIGHUP) != 0)
        return -1;
    if (!sup_poll(reloaded, d, timeout_ms) || !sup_alive(d->proc)) {
        fprintf(stderr, "support: dnsmasq did not re-read %s after SIGHUP\n", d->hosts);
        sup_dump_log(d->proc, 20);
        return -1;
    }
    d->reloads = reads_logged(d);
    return 0;
}

int sup_dnsmasq_stop(struct sup_dnsmasq *d)
{
    int st = 0;

    if (d->proc != NULL)
        st = sup_stop(d->proc, 5000);
    d->proc = NULL;
    return st;
}

int sup_dnsmasq_restart(struct sup_dnsmasq *d, const char *hosts)
{
    sup_dnsmasq_stop(d);
    if (hosts != NULL && write_hosts(d, hosts) != 0)
        return -1;
    /* The port was just released; a few tries cover a slow socket teardown. */
    for (int attempt = 0; attempt < 5; attempt++) {
        if (spawn(d) == 0)
            return 0;
        if (d->proc != NULL && sup_alive(d->proc))
            sup_stop(d->proc, 5000);
        sup_sleep_ms(200);
    }
    d->proc = NULL;
    fprintf(stderr, "support: dnsmasq did not restart on port %d\n", d->port);
    return -1;
}
