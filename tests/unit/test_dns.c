/* Unit tests of proxy/dns.c: the refresh and retry timing rules, and the
 * c-ares channel on a real event_base without a DNS server (an /etc/hosts
 * answer, and a lookup cancelled in flight by proxy_dns_stop()).
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "balancer/epset.h"
#include "conf/conf.h"
#include "proxy/dns.h"
#include "proxy/proxy.h"

/* main.c is not linked: count the calls instead. */
static int snapshot_changes;

void proxy_snapshot_changed(struct runtime *rt)
{
    (void)rt;
    snapshot_changes++;
}

TestSuite(proxy_dns);

/* ---- timing ---- */

Test(proxy_dns, refresh_is_dns_refresh_without_a_shorter_ttl)
{
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, -1, 0), 30000); /* no TTL known */
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, 60, 0), 30000); /* longer TTL */
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, 30, 0), 30000); /* equal */
    cr_assert_eq(proxy_dns_refresh_ms(200, 100, 1, 0), 200);       /* TTL 1 s > 200 ms */
    cr_assert_eq(proxy_dns_refresh_ms(1000, 100, 1, 0), 1000);
}

Test(proxy_dns, shorter_ttl_is_honoured_down_to_the_floor)
{
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, 10, 0), 10000);
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, 2, 0), 5000); /* clamped to dns_min_ttl */
    cr_assert_eq(proxy_dns_refresh_ms(30000, 5000, 0, 0), 5000); /* TTL 0 (Consul, /etc/hosts) */
    cr_assert_eq(proxy_dns_refresh_ms(30000, 0, 0, 0), 1);       /* never 0 ms: no busy loop */
    /* A floor above dns_refresh never makes the interval longer than it. */
    cr_assert_eq(proxy_dns_refresh_ms(2000, 5000, 1, 0), 2000);
}

Test(proxy_dns, jitter_shortens_by_at_most_ten_percent_and_keeps_the_floor)
{
    for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
        uint32_t d = proxy_dns_refresh_ms(30000, 5000, -1, rnd);
        uint32_t f = proxy_dns_refresh_ms(30000, 5000, 1, rnd);
        uint32_t t = proxy_dns_refresh_ms(30000, 5000, 20, rnd);

        cr_assert(d <= 30000 && d >= 27000, "refresh %u", d);
        cr_assert_eq(f, 5000, "the floor moved: %u", f);
        cr_assert(t <= 20000 && t >= 18000, "ttl refresh %u", t);
    }
}

Test(proxy_dns, retry_backs_off_up_to_dns_refresh)
{
    cr_assert_eq(proxy_dns_retry_ms(30000, 1, 0), 1000);
    cr_assert_eq(proxy_dns_retry_ms(30000, 2, 0), 2000);
    cr_assert_eq(proxy_dns_retry_ms(30000, 3, 0), 4000);
    cr_assert_eq(proxy_dns_retry_ms(30000, 5, 0), 16000);
    cr_assert_eq(proxy_dns_retry_ms(30000, 6, 0), 30000);
    cr_assert_eq(proxy_dns_retry_ms(30000, 1000000, 0), 30000); /* no shift overflow */
    cr_assert_eq(proxy_dns_retry_ms(200, 1, 0), 200);           /* short refresh: every 200 ms */
    for (uint32_t rnd = 0; rnd < 5000; rnd += 7) {
        uint32_t d = proxy_dns_retry_ms(30000, 3, rnd);

        cr_assert(d <= 4000 && d >= 3600, "retry %u", d);
    }
}

/* ---- the channel on an event loop ---- */

struct rig {
    struct runtime rt;
    struct conf *conf;
    struct bal_registry *reg;
};

static void rig_init(struct rig *g, const char *ini)
{
    char err[256];

    memset(g, 0, sizeof(*g));
    snapshot_changes = 0;
    cr_assert_eq(conf_load_string(ini, "test.ini", &g->conf, err, sizeof(err)), 0, "%s", err);
    g->rt.conf = g->conf;
    g->rt.base = event_base_new();
    g->reg = bal_registry_new();
    g->rt.reg = g->reg;
    g->rt.eps = bal_epset_new(g->conf, g->reg);
}

static void rig_deinit(struct rig *g)
{
    proxy_dns_stop(&g->rt);
    cr_assert_null(g->rt.dns);
    bal_epset_free(g->rt.eps);
    bal_registry_free(g->reg);
    event_base_free(g->rt.base);
    conf_free(g->conf);
}

Test(proxy_dns, literals_only_need_no_resolver)
{
    struct rig g;

    rig_init(&g, "[cluster.a]\ntargets = 127.0.0.1:5000\n");
    cr_assert_eq(proxy_dns_start(&g.rt), 0);
    cr_assert_null(g.rt.dns);
    rig_deinit(&g);
    proxy_dns_stop(&g.rt); /* twice, and never started: no-ops */
}

Test(proxy_dns, hosts_file_answer_becomes_endpoints)
{
    struct rig g;
    struct bal_snapshot *s;

    /* The system resolver configuration: "localhost" comes from /etc/hosts,
     * without any packet sent. */
    rig_init(&g, "[cluster.a]\ntargets = localhost:5000, 127.0.0.9:5001\ndns_family = v4\n");
    cr_assert_not(bal_epset_target_resolved(g.rt.eps, 0, 0));
    cr_assert_eq(proxy_dns_start(&g.rt), 0);
    cr_assert_not_null(g.rt.dns);
    for (int i = 0; i < 100 && !bal_epset_target_resolved(g.rt.eps, 0, 0); i++)
        event_base_loop(g.rt.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    cr_assert(bal_epset_target_resolved(g.rt.eps, 0, 0), "localhost did not resolve");
    cr_assert_geq(snapshot_changes, 1);
    s = bal_epset_snapshot(g.rt.eps, 1);
    cr_assert_null(s->clusters[0].unresolved);
    cr_assert_geq(s->clusters[0].nendpoints, 2);
    cr_assert_str_eq(s->clusters[0].endpoints[0].addr_str, "127.0.0.1:5000");
    cr_assert_str_eq(s->clusters[0].endpoints[0].origin, "localhost:5000");
    bal_snapshot_unref(s);
    rig_deinit(&g);
}

Test(proxy_dns, stop_cancels_a_lookup_in_flight)
{
    struct sockaddr_in sin = {0};
    socklen_t len = sizeof(sin);
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    char ini[256];
    struct rig g;

    /* A "server" that reads nothing and never answers. */
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&sin, &len), 0);
    snprintf(ini, sizeof(ini),
             "[proxy]\ndns_servers = 127.0.0.1:%d\n[cluster.a]\ntargets = a.sy.test:1, "
             "b.sy.test:2\n",
             ntohs(sin.sin_port));
    rig_init(&g, ini);
    cr_assert_eq(proxy_dns_start(&g.rt), 0);
    for (int i = 0; i < 10; i++)
        event_base_loop(g.rt.base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    cr_assert_not(bal_epset_target_resolved(g.rt.eps, 0, 0));
    /* Callbacks fire with ARES_EDESTRUCTION inside; ASan checks they touch
     * nothing freed and that nothing leaks. */
    rig_deinit(&g);
    cr_assert_eq(snapshot_changes, 0);
    close(fd);
}
