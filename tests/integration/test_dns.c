/* Integration tests of DNS targets: a real dnsmasq on a loopback port answers
 * svc.sy.test with 127.0.0.2, .3 and .4 (a sy-backend listens on each, on one
 * port); switchyard resolves the name through it with a short dns_refresh and
 * the test rewrites dnsmasq's hosts file (then SIGHUP) to move the set.
 * Invariant: every process is started through tests/support (stopped by PID,
 * PR_SET_PDEATHSIG); each test ends with SIGTERM to switchyard and requires
 * exit 0 (it is built with ASan: a leak or memory error fails the test).
 * Health checking is off in every config: these tests are about DNS alone.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "tests/peers/gclient.h"
#include "tests/support/dnsmasq.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define NB      3
#define ALL     0x7   /* bit i: backend i (127.0.0.(2+i)) is in the hosts file */
#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */
#define WAIT_T  30000 /* ms to wait for a DNS change to show in calls (slow, shared machine) */
#define NAME    "svc.sy.test"

struct ipbackend {
    struct sup_proc *proc;
    char ip[16];   /* 127.0.0.2 .. 127.0.0.4 */
    char id[8];    /* "b2" .. "b4" */
    char addr[32]; /* ip:port */
};

static struct sup_dnsmasq dq;
static struct ipbackend be[NB];
static int bport; /* the one port every backend listens on */
static struct sup_proxy px;

/* ---- fixture ---- */

static const char *hosts_text(unsigned mask)
{
    static char buf[256];
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 0; i < NB; i++) {
        if (mask & (1u << i))
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "127.0.0.%d %s\n", 2 + i, NAME);
    }
    return buf;
}

/* True once |ip|:|port| accepts a TCP connection. */
static bool accepts(const char *ip, int port)
{
    struct sockaddr_in sin = {0};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ok;

    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    inet_pton(AF_INET, ip, &sin.sin_addr);
    ok = fd >= 0 && connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* Starts sy-backend "b<2+i>" on 127.0.0.<2+i>:|bport|. */
static bool start_backend(int i)
{
    const char *argv[8];

    snprintf(be[i].ip, sizeof(be[i].ip), "127.0.0.%d", 2 + i % NB);
    snprintf(be[i].id, sizeof(be[i].id), "b%d", 2 + i % NB);
    snprintf(be[i].addr, sizeof(be[i].addr), "127.0.0.%d:%d", 2 + i % NB, bport);
    argv[0] = sup_backend_bin();
    argv[1] = "--listen";
    argv[2] = be[i].addr;
    argv[3] = "--id";
    argv[4] = be[i].id;
    argv[5] = "--quiet";
    argv[6] = NULL;
    be[i].proc = sup_spawn(be[i].id, argv);
    return be[i].proc != NULL;
}

static bool backends_up(void)
{
    long end = sup_now_ms() + 10000;

    for (int i = 0; i < NB; i++) {
        while (!accepts(be[i].ip, bport)) {
            if (!sup_alive(be[i].proc) || sup_now_ms() > end)
                return false;
            sup_sleep_ms(10);
        }
    }
    return true;
}

static void setup(void)
{
    memset(&px, 0, sizeof(px));
    memset(be, 0, sizeof(be));
    cr_assert_eq(sup_dnsmasq_start(&dq, hosts_text(ALL)), 0, "dnsmasq did not start");
    /* One port on three addresses: retry when some other process has it. */
    for (int attempt = 0;; attempt++) {
        bport = sup_free_port();
        cr_assert_gt(bport, 0);
        for (int i = 0; i < NB; i++)
            cr_assert(start_backend(i), "cannot spawn %s", sup_backend_bin());
        if (backends_up())
            break;
        for (int i = 0; i < NB; i++)
            sup_kill(be[i].proc);
        cr_assert_lt(attempt, 3, "sy-backends on 127.0.0.2-4:%d did not start", bport);
    }
}

/* Criterion ignores assertions in .fini; each test ends with
 * stop_proxy_clean(), so this only cleans up after a failed test. */
static void teardown(void)
{
    if (px.proc && sup_alive(px.proc)) {
        int st = sup_stop(px.proc, PROXY_T);

        if (st != 0) {
            fprintf(stderr, "switchyard exited with status %d on SIGTERM at teardown\n", st);
            sup_dump_log(px.proc, 60);
        }
    }
    sup_stop_all();
}

TestSuite(dns, .init = setup, .fini = teardown, .timeout = 180);

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 80);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

/* ---- configuration ---- */

struct dconf {
    const char *targets;     /* NULL: svc.sy.test:PORT */
    const char *refresh;     /* NULL: 200ms */
    const char *log_level;   /* NULL: info */
    bool system_resolvers;   /* no dns_servers line */
    const char *dns_servers; /* NULL: dnsmasq's address */
    const char *extra;       /* more text after [cluster.echo], or NULL */
    const char *admin;       /* [admin] listen; NULL: off */
};

/* The config text for |c|, listening on |port|, into |text|. */
static void conf_build(const struct dconf *c, int port, char *text, size_t len)
{
    char targets[256], servers[64] = "";

    if (c->targets)
        snprintf(targets, sizeof(targets), "%s", c->targets);
    else
        snprintf(targets, sizeof(targets), "%s:%d", NAME, bport);
    if (!c->system_resolvers)
        snprintf(servers, sizeof(servers), "dns_servers = %s\n",
                 c->dns_servers ? c->dns_servers : dq.addr);
    snprintf(text, len,
             "[proxy]\n"
             "listen = 127.0.0.1:%d\n"
             "workers = 2\n"
             "drain_timeout = 10s\n"
             "log_level = %s\n"
             "%s"
             "\n"
             "[admin]\n"
             "listen = %s\n"
             "\n"
             "[cluster.echo]\n"
             "targets = %s\n"
             "routes = /sy.test.\n"
             "health_check = off\n"
             "dns_refresh = %s\n"
             "dns_min_ttl = 100ms\n"
             "%s\n",
             port, c->log_level ? c->log_level : "info", servers, c->admin ? c->admin : "off",
             targets, c->refresh ? c->refresh : "200ms", c->extra ? c->extra : "");
}

static void start_proxy(const struct dconf *c)
{
    char text[2048];
    int port = sup_free_port();

    cr_assert_gt(port, 0);
    conf_build(c, port, text, sizeof(text));
    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text, PROXY_T), 0,
                 "switchyard did not start (%s -c %s)", sup_proxy_bin(), px.conf);
}

/* ---- helpers ---- */

static int backend_index(const char *id)
{
    for (int i = 0; i < NB; i++) {
        if (strcmp(be[i].id, id) == 0)
            return i;
    }
    return -1;
}

/* One unary call on |ch|: the index of the backend that served it, -1 if it
 * failed (|r| says why), -2 if an unknown backend answered. */
static int call_once(struct gc_chan *ch, struct gc_result *r)
{
    struct gc_opts o;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 32;
    o.timeout_ms = 5000;
    if (gc_chan_call(ch, &o, r) != 0)
        return -1;
    cr_assert(r->sizes_ok && r->content_ok, "a reply was corrupted");
    return backend_index(r->backend_id) >= 0 ? backend_index(r->backend_id) : -2;
}

/* Runs |n| calls; every one must succeed. Counts them per backend in |per|. */
static void calls_ok(struct gc_chan *ch, int n, int *per)
{
    memset(per, 0, NB * sizeof(*per));
    for (int i = 0; i < n; i++) {
        struct gc_result r;
        int b = call_once(ch, &r);

        cr_assert_geq(b, 0, "call %d failed: status %d (%s)", i, r.status, r.message);
        per[b]++;
    }
}

/* Calls until the backends in |mask| have all served one since the start and
 * the last |streak| calls stayed inside |mask|. Returns the elapsed ms, or -1
 * after |timeout_ms|. Failed calls count as outside |mask|. |*last_out| (if
 * not NULL) gets the ms from the start to the end of the last call outside
 * |mask| (0: none). */
static long calls_until_x(struct gc_chan *ch, unsigned mask, int streak, int timeout_ms,
                          long *last_out)
{
    long start = sup_now_ms();
    unsigned seen = 0;
    int inside = 0;

    if (last_out)
        *last_out = 0;
    while (sup_now_ms() - start < timeout_ms) {
        struct gc_result r;
        int b = call_once(ch, &r);

        if (b >= 0 && (mask & (1u << b))) {
            seen |= 1u << b;
            inside++;
        } else {
            inside = 0;
            if (last_out)
                *last_out = sup_now_ms() - start;
        }
        if (seen == mask && inside >= streak)
            return sup_now_ms() - start;
        if (b < 0)
            sup_sleep_ms(10); /* failing fast: do not spin */
    }
    return -1;
}

static long calls_until(struct gc_chan *ch, unsigned mask, int streak, int timeout_ms)
{
    return calls_until_x(ch, mask, streak, timeout_ms, NULL);
}

/* Calls until one lands on backend |i|; returns the ms it took, or -1. */
static long calls_until_on(struct gc_chan *ch, int i, int timeout_ms)
{
    long start = sup_now_ms();

    while (sup_now_ms() - start < timeout_ms) {
        struct gc_result r;
        int b = call_once(ch, &r);

        if (b == i)
            return sup_now_ms() - start;
        if (b < 0)
            sup_sleep_ms(10);
    }
    return -1;
}

static int log_count(const char *needle)
{
    char *text = sup_read_file(px.proc->err_path);
    int n = 0;

    if (text == NULL)
        return 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        n++;
    free(text);
    return n;
}

struct log_wait {
    const char *needle;
    int want; /* at least this many occurrences */
};

static bool log_has(void *arg)
{
    const struct log_wait *w = arg;

    return log_count(w->needle) >= w->want || !sup_alive(px.proc);
}

/* Waits until switchyard's log holds |needle| |want| times; fails otherwise. */
static void wait_log(const char *needle, int want)
{
    struct log_wait w = {needle, want};

    if (!sup_poll(log_has, &w, WAIT_T) || !sup_alive(px.proc)) {
        sup_dump_log(px.proc, 60);
        cr_assert_fail("switchyard never logged '%s' %d time(s)", needle, want);
    }
}

static void set_hosts_text(const char *text)
{
    cr_assert_eq(sup_dnsmasq_set_hosts(&dq, text, 10000), 0,
                 "dnsmasq did not reload its hosts file");
}

static void set_hosts(unsigned mask)
{
    cr_assert_eq(sup_dnsmasq_set_hosts(&dq, hosts_text(mask), 10000), 0,
                 "dnsmasq did not reload its hosts file");
}

/* Active Echo calls on backend |i|, or -1 if its stats cannot be read. */
static long active_on(int i)
{
    struct gc_stats s;

    if (gc_stats(be[i].addr, false, &s) != 0)
        return -1;
    return (long)s.calls_active;
}

struct bg_call {
    struct gc_opts o;
    struct gc_result r;
};

static void *bg_call_run(void *arg)
{
    struct bg_call *c = arg;

    gc_call(px.addr, &c->o, &c->r);
    return NULL;
}

struct active_wait {
    int found; /* the backend with an active call, or -1 */
};

static bool some_active(void *arg)
{
    struct active_wait *w = arg;

    for (int i = 0; i < NB; i++) {
        if (active_on(i) > 0) {
            w->found = i;
            return true;
        }
    }
    return false;
}

/* ---- tests ---- */

Test(dns, round_robin_across_every_address)
{
    struct dconf c = {0};
    struct gc_chan *ch;
    int per[NB];
    char needle[128];

    start_proxy(&c);
    for (int i = 0; i < NB; i++) {
        snprintf(needle, sizeof(needle), NAME ":%d: added %s", bport, be[i].addr);
        wait_log(needle, 1);
    }
    ch = gc_chan_new(px.addr);
    cr_assert_geq(calls_until(ch, ALL, 3, WAIT_T), 0, "calls never reached all three addresses");
    /* One connection is served by one worker, whose cursor goes round. */
    calls_ok(ch, 30, per);
    for (int i = 0; i < NB; i++)
        cr_assert_eq(per[i], 10, "%s got %d of 30 calls (%d, %d, %d)", be[i].id, per[i], per[0],
                     per[1], per[2]);
    gc_chan_free(ch);
    stop_proxy_clean();
}

Test(dns, removed_address_drains_then_comes_back)
{
    struct dconf c = {0};
    struct active_wait aw = {-1};
    struct bg_call bg;
    struct gc_chan *ch;
    pthread_t t;
    char needle[128];
    int per[NB], v;
    long ms;

    start_proxy(&c);
    ch = gc_chan_new(px.addr);
    cr_assert_geq(calls_until(ch, ALL, 3, WAIT_T), 0, "calls never reached all three addresses");

    /* A long server-stream: 150 replies, one every 100 ms. */
    gc_opts_init(&bg.o, GC_SERVER_STREAM);
    bg.o.response_count = 150;
    bg.o.response_size = 64;
    bg.o.delay_ms = 100;
    bg.o.timeout_ms = 120000;
    cr_assert_eq(pthread_create(&t, NULL, bg_call_run, &bg), 0);
    cr_assert(sup_poll(some_active, &aw, WAIT_T), "the stream never reached a backend");
    v = aw.found;

    /* Its address leaves DNS: no new call goes there, the stream goes on. */
    set_hosts(ALL & ~(1u << v));
    snprintf(needle, sizeof(needle), NAME ":%d: removed %s", bport, be[v].addr);
    wait_log(needle, 1);
    cr_assert_geq(calls_until(ch, ALL & ~(1u << v), 6, WAIT_T), 0,
                  "calls kept going to the removed %s", be[v].addr);
    calls_ok(ch, 30, per);
    cr_assert_eq(per[v], 0, "%s got %d of 30 calls after it left DNS", be[v].id, per[v]);
    {
        /* a new connection (maybe on the other worker) avoids it too */
        struct gc_chan *ch2 = gc_chan_new(px.addr);

        calls_ok(ch2, 12, per);
        cr_assert_eq(per[v], 0, "%s got %d calls on a new connection", be[v].id, per[v]);
        gc_chan_free(ch2);
    }
    cr_assert_eq(active_on(v), 1,
                 "the stream on %s was no longer running after the removal took effect "
                 "(finished too early on a slow machine?)",
                 be[v].id);
    pthread_join(t, NULL);
    cr_assert_eq(bg.r.status, 0, "the stream to the removed address ended with %d (%s)",
                 bg.r.status, bg.r.message);
    cr_assert_eq(bg.r.replies, 150);
    cr_assert(bg.r.seq_ok && bg.r.sizes_ok && bg.r.content_ok);
    cr_assert_str_eq(bg.r.backend_id, be[v].id);

    /* It comes back: it gets calls again. */
    set_hosts(ALL);
    snprintf(needle, sizeof(needle), NAME ":%d: added %s", bport, be[v].addr);
    ms = calls_until_on(ch, v, WAIT_T);
    cr_assert_geq(ms, 0, "%s never got a call after it came back", be[v].id);
    wait_log(needle, 2);
    calls_ok(ch, 30, per);
    for (int i = 0; i < NB; i++)
        cr_assert_geq(per[i], 8, "%s got %d of 30 calls (%d, %d, %d)", be[i].id, per[i], per[0],
                      per[1], per[2]);
    gc_chan_free(ch);
    stop_proxy_clean();
}

Test(dns, dns_server_down_keeps_last_good_set)
{
    struct dconf c = {.log_level = "debug"};
    struct gc_chan *ch;
    char needle[160];
    int per[NB];

    start_proxy(&c);
    ch = gc_chan_new(px.addr);
    cr_assert_geq(calls_until(ch, ALL, 3, WAIT_T), 0, "calls never reached all three addresses");

    cr_assert_eq(sup_dnsmasq_stop(&dq), 0, "dnsmasq did not exit cleanly");
    snprintf(needle, sizeof(needle), "cannot resolve " NAME ":%d", bport);
    wait_log(needle, 1);
    cr_assert_eq(log_count("keeping its last 3 address(es)"), 1);
    /* Several retries later, still one warning: logged once per change. */
    wait_log("lookup failed again", 3);
    cr_assert_eq(log_count(needle), 1, "the failure was logged %d times", log_count(needle));
    calls_ok(ch, 30, per);
    for (int i = 0; i < NB; i++)
        cr_assert_eq(per[i], 10, "%s got %d of 30 calls while DNS is down", be[i].id, per[i]);

    /* DNS comes back with two addresses: the set follows. */
    cr_assert_eq(sup_dnsmasq_restart(&dq, hosts_text(0x3)), 0, "dnsmasq did not restart");
    wait_log("resolves again", 1);
    cr_assert_geq(calls_until(ch, 0x3, 6, WAIT_T), 0, "calls kept going to %s", be[2].addr);
    calls_ok(ch, 20, per);
    cr_assert_eq(per[2], 0);
    gc_chan_free(ch);
    stop_proxy_clean();
}

Test(dns, unknown_name_gives_unavailable_naming_it)
{
    char targets[128], extra[256], needle[160];
    struct dconf c = {.extra = extra, .targets = targets};
    struct gc_chan *ch;
    struct gc_opts o;
    struct gc_result r;

    /* cluster echo: only a name that does not exist; cluster mixed: that
     * name and svc.sy.test, so it works with what resolves. */
    snprintf(targets, sizeof(targets), "nx.sy.test:%d", bport);
    snprintf(extra, sizeof(extra),
             "[cluster.mixed]\n"
             "targets = nx.sy.test:%d, %s:%d\n"
             "routes = /sy.test.Echo/ServerStream\n"
             "health_check = off\n"
             "dns_refresh = 200ms\n",
             bport, NAME, bport);
    start_proxy(&c);
    snprintf(needle, sizeof(needle),
             "cluster echo: cannot resolve nx.sy.test:%d: Domain name not found", bport);
    wait_log(needle, 1);
    snprintf(needle, sizeof(needle), "cluster mixed: cannot resolve nx.sy.test:%d", bport);
    wait_log(needle, 1);

    ch = gc_chan_new(px.addr);
    for (int i = 0; i < 5; i++) {
        cr_assert_eq(call_once(ch, &r), -1);
        cr_assert_eq(r.status, 14, "status %d (%s)", r.status, r.message);
        snprintf(needle, sizeof(needle), "nx.sy.test:%d", bport);
        cr_assert(strstr(r.message, needle) != NULL && strstr(r.message, "unresolved") != NULL,
                  "grpc-message '%s' does not name the unresolved target", r.message);
    }
    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 3;
    for (int i = 0; i < 6; i++) {
        cr_assert_eq(gc_chan_call(ch, &o, &r), 0, "mixed cluster: status %d (%s)", r.status,
                     r.message);
        cr_assert_geq(backend_index(r.backend_id), 0);
    }
    gc_chan_free(ch);
    cr_assert(sup_alive(px.proc));
    stop_proxy_clean();
}

Test(dns, system_resolver_reads_etc_hosts)
{
    char targets[64];
    struct dconf c = {.targets = targets, .system_resolvers = true, .extra = "dns_family = v4\n"};
    struct sup_backend local;
    struct gc_chan *ch;
    struct gc_result r;

    /* "localhost" is in /etc/hosts on every Debian machine. */
    cr_assert_eq(sup_start_backend(&local, "b1", NULL), 0);
    snprintf(targets, sizeof(targets), "localhost:%d", local.port);
    start_proxy(&c);
    wait_log("resolving target names with the system resolvers", 1);
    ch = gc_chan_new(px.addr);
    for (long end = sup_now_ms() + WAIT_T;;) {
        struct gc_opts o;

        gc_opts_init(&o, GC_UNARY);
        if (gc_chan_call(ch, &o, &r) == 0)
            break;
        cr_assert_lt(sup_now_ms(), end, "localhost never resolved: %d (%s)", r.status, r.message);
        sup_sleep_ms(20);
    }
    cr_assert_str_eq(r.backend_id, "b1");
    gc_chan_free(ch);
    stop_proxy_clean();
}

/* Writes |c| over the running proxy's config file and sends SIGHUP; waits
 * until the |nth| reload is logged. */
static void reload_proxy(const struct dconf *c, int nth)
{
    char text[2048], path[512];

    conf_build(c, px.port, text, sizeof(text));
    cr_assert_eq(sup_write_file("switchyard.ini", text, path, sizeof(path)), 0);
    cr_assert_str_eq(path, px.conf);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    wait_log("configuration reloaded", nth);
}

Test(dns, reload_keeps_resolved_addresses)
{
    struct dconf c = {0};
    struct gc_chan *ch;
    char needle[128], dead[32];
    int per[NB];

    start_proxy(&c);
    ch = gc_chan_new(px.addr);
    cr_assert_geq(calls_until(ch, ALL, 3, WAIT_T), 0, "calls never reached all three addresses");

    /* Same name, another refresh: the addresses carry over, nothing is
     * added or removed again, calls never fail. */
    c.refresh = "300ms";
    reload_proxy(&c, 1);
    calls_ok(ch, 30, per);
    for (int i = 0; i < NB; i++) {
        snprintf(needle, sizeof(needle), NAME ":%d: added %s", bport, be[i].addr);
        cr_assert_eq(log_count(needle), 1, "%s was added again after the reload", be[i].addr);
        cr_assert_geq(per[i], 8, "%s got %d of 30 calls", be[i].id, per[i]);
    }

    /* New DNS servers that do not answer: the carried set stays. */
    snprintf(dead, sizeof(dead), "127.0.0.1:%d", sup_free_port());
    c.dns_servers = dead;
    reload_proxy(&c, 2);
    wait_log("keeping its last 3 address(es)", 1);
    calls_ok(ch, 30, per);
    for (int i = 0; i < NB; i++)
        cr_assert_geq(per[i], 8, "%s got %d of 30 calls", be[i].id, per[i]);

    /* And back to dnsmasq, now with two addresses: the set follows. */
    cr_assert_eq(sup_dnsmasq_set_hosts(&dq, hosts_text(0x6), 10000), 0);
    c.dns_servers = NULL;
    reload_proxy(&c, 3);
    snprintf(needle, sizeof(needle), NAME ":%d: removed %s", bport, be[0].addr);
    wait_log(needle, 1);
    cr_assert_geq(calls_until(ch, 0x6, 6, WAIT_T), 0, "calls kept going to %s", be[0].addr);
    gc_chan_free(ch);
    stop_proxy_clean();
}

/* "200ms", "1s", "2m" -> milliseconds (the test's own SY_DNS_REFRESH). */
static long duration_ms(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (strcmp(end, "s") == 0)
        return v * 1000;
    if (strcmp(end, "m") == 0)
        return v * 60000;
    return v;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;

    return (x > y) - (x < y);
}

static void print_ms(const char *what, long *v, int n)
{
    fprintf(stderr, "  %s:", what);
    for (int k = 0; k < n; k++)
        fprintf(stderr, " %ld", v[k]);
    qsort(v, (size_t)n, sizeof(*v), cmp_long);
    fprintf(stderr, "  (min %ld, median %ld, max %ld)\n", v[0], v[n / 2], v[n - 1]);
}

/* How fast a DNS change reaches the data plane: from the SIGHUP that makes
 * dnsmasq serve the new set to the first call on an added address, and to
 * the point where calls stop going to a removed one. SY_DNS_REFRESH (default
 * 200ms) sets dns_refresh; dnsmasq's TTL is 1 s, dns_min_ttl 100ms. */
Test(dns, change_reaches_the_data_plane)
{
    const char *refresh = getenv("SY_DNS_REFRESH");
    struct dconf c = {.refresh = refresh && *refresh ? refresh : "200ms"};
    struct gc_chan *ch;
    enum {
        ROUNDS = 8
    };
    long add[ROUNDS], del[ROUNDS], period = duration_ms(c.refresh);

    srandom((unsigned)getpid());
    start_proxy(&c);
    ch = gc_chan_new(px.addr);
    cr_assert_geq(calls_until(ch, ALL, 3, WAIT_T), 0, "calls never reached all three addresses");
    for (int k = 0; k < ROUNDS; k++) {
        long t0, t1;

        /* A random pause, so the change falls anywhere in the refresh period
         * (otherwise the loop locks onto the proxy's lookup timer). */
        sup_sleep_ms((int)(random() % (period + 1)));
        t0 = sup_now_ms();
        set_hosts(0x3);
        t1 = sup_now_ms();
        /* removal: the last call on b4 before 12 calls in a row avoided it */
        cr_assert_geq(calls_until_x(ch, 0x3, 12, WAIT_T, &del[k]), 0,
                      "round %d: b4 kept getting calls", k);
        del[k] += t1 - t0;
        sup_sleep_ms((int)(random() % (period + 1)));
        t0 = sup_now_ms();
        set_hosts(ALL);
        add[k] = calls_until_on(ch, 2, WAIT_T);
        cr_assert_geq(add[k], 0, "round %d: b4 never came back", k);
        add[k] = sup_now_ms() - t0;
    }
    fprintf(stderr,
            "dns change -> data plane (dns_refresh=%s, dnsmasq ttl 1s, dns_min_ttl 100ms), "
            "ms from SIGHUP:\n",
            c.refresh);
    print_ms("address added, first call on it    ", add, ROUNDS);
    print_ms("address removed, last call on it   ", del, ROUNDS);
    gc_chan_free(ch);
    stop_proxy_clean();
}

/* DNS churn: a name whose 5 addresses change 40 times (200 address changes)
 * beside a backend that answers. Endpoint ids of addresses that left are
 * reused, and each worker frees the pool of an endpoint that left once it is
 * unused: neither grows with the churn. */
Test(dns, churn_keeps_pools_and_endpoint_ids_bounded)
{
    enum {
        ROUNDS = 40,
        PER = 5
    };
    struct dconf c = {0};
    char targets[128], admin_addr[32], hosts[512], needle[64];
    struct sup_http_resp m = {0};
    int admin = sup_free_port();
    double ids, pools;
    struct gc_opts o;

    snprintf(targets, sizeof(targets), "churn.sy.test:%d, %s", bport, be[0].addr);
    snprintf(admin_addr, sizeof(admin_addr), "127.0.0.1:%d", admin);
    c.targets = targets;
    c.refresh = "100ms";
    c.extra = "max_retries = 8";
    c.admin = admin_addr;
    start_proxy(&c);
    gc_opts_init(&o, GC_UNARY);
    for (int r = 0; r < ROUNDS; r++) {
        size_t n = 0;

        for (int k = 0; k < PER; k++)
            n += (size_t)snprintf(hosts + n, sizeof(hosts) - n, "127.0.1.%d churn.sy.test\n",
                                  1 + r * PER + k);
        set_hosts_text(hosts);
        snprintf(needle, sizeof(needle), "added 127.0.1.%d:", (r + 1) * PER);
        wait_log(needle, 1);
        /* Calls that pick the new (dead) endpoints create their pools, find
         * the connection refused and are retried on the live backend. */
        for (int k = 0; k < 2 * (PER + 1); k++) {
            struct gc_result res;

            gc_call(px.addr, &o, &res);
            cr_assert_eq(res.status, 0, "round %d: %s", r, res.message);
        }
    }
    cr_assert_eq(sup_http_get(admin, "/metrics", &m), 0);
    ids = sup_metric(m.body, "switchyard_endpoint_ids");
    pools = sup_metric(m.body, "switchyard_backend_pools");
    sup_http_resp_free(&m);
    cr_log_info("after %d address changes: %.0f endpoint ids, %.0f pools", ROUNDS * PER, ids,
                pools);
    /* Alive at once: the backend and at most two rounds' 5 addresses. */
    cr_assert(ids >= 1 && ids <= 1 + 2 * PER, "%.0f endpoint ids after the churn", ids);
    /* Per worker (2): the backend's pool and at most two rounds' worth. */
    cr_assert(pools >= 1 && pools <= 2 * (1 + 2 * PER), "%.0f backend pools after the churn",
              pools);
    stop_proxy_clean();
}
