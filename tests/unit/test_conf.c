/* Unit tests for conf/: the INI schema, defaults, every validation error,
 * durations, ${ENV} expansion and target parsing.
 * Invariant: no network, no sleeps; each test runs in its own process, so
 * setenv() does not leak between tests.
 * SPDX-License-Identifier: MIT */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

TestSuite(conf, .timeout = 10);

#define MINIMAL "[cluster.a]\ntargets = 127.0.0.1:50061\n"

static struct conf *load_ok(const char *text)
{
    char err[1024] = "";
    struct conf *c = NULL;
    int rc = conf_load_string(text, "t.ini", &c, err, sizeof(err));

    cr_assert_eq(rc, 0, "unexpected error: %s", err);
    cr_assert_not_null(c);
    return c;
}

/* Loads |text|, expects a failure, and checks that the message starts with
 * |prefix| and contains every further string (NULL-terminated). */
static void expect_err(const char *text, const char *prefix, ...)
{
    char err[1024] = "";
    struct conf *c = (struct conf *)1;
    int rc = conf_load_string(text, "t.ini", &c, err, sizeof(err));
    va_list ap;
    const char *want;

    cr_assert_eq(rc, -1, "expected an error starting with '%s'", prefix);
    cr_assert_null(c);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "error '%s' does not start with '%s'",
                 err, prefix);
    va_start(ap, prefix);
    while ((want = va_arg(ap, const char *)) != NULL)
        cr_assert_not_null(strstr(err, want), "error '%s' lacks '%s'", err, want);
    va_end(ap);
}

static void expect_err_eq(const char *text, const char *want)
{
    char err[1024] = "";
    struct conf *c = NULL;

    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), -1);
    cr_assert_str_eq(err, want);
}

static const struct sockaddr_in *sin4(const struct sockaddr_storage *ss)
{
    cr_assert_eq(ss->ss_family, AF_INET);
    return (const struct sockaddr_in *)ss;
}

static const struct sockaddr_in6 *sin6(const struct sockaddr_storage *ss)
{
    cr_assert_eq(ss->ss_family, AF_INET6);
    return (const struct sockaddr_in6 *)ss;
}

static void assert_v4(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                      uint16_t port)
{
    struct in_addr a;

    cr_assert_eq(len, sizeof(struct sockaddr_in));
    cr_assert_eq(inet_pton(AF_INET, ip, &a), 1);
    cr_assert_eq(sin4(ss)->sin_addr.s_addr, a.s_addr);
    cr_assert_eq(ntohs(sin4(ss)->sin_port), port);
}

static void assert_v6(const struct sockaddr_storage *ss, socklen_t len, const char *ip,
                      uint16_t port)
{
    struct in6_addr a;

    cr_assert_eq(len, sizeof(struct sockaddr_in6));
    cr_assert_eq(inet_pton(AF_INET6, ip, &a), 1);
    cr_assert_eq(memcmp(&sin6(ss)->sin6_addr, &a, sizeof(a)), 0);
    cr_assert_eq(ntohs(sin6(ss)->sin6_port), port);
}

/* ---- valid files ---- */

Test(conf, full_file_sets_every_key)
{
    const char *text = "; a full configuration\n"
                       "[proxy]\n"
                       "listen = [::1]:6000\n"
                       "workers = 8\n"
                       "log_level = debug\n"
                       "access_log = /var/log/sy.log\n"
                       "drain_timeout = 45s\n"
                       "max_concurrent_streams = 2147483647\n"
                       "idle_timeout = 0\n"
                       "dns_servers = 10.0.0.2, [fd00::53]:5353, 127.0.0.1:5300\n"
                       "\n"
                       "[admin]\n"
                       "listen = 127.0.0.2:9000\n"
                       "\n"
                       "[cluster.users]\n"
                       "targets = users.svc.cluster.local:50051, 10.0.0.7:50052, [::1]:50053\n"
                       "policy = pick_first\n"
                       "routes = /user.v1.UserService/, /user.v2.\n"
                       "max_connections = 1024\n"
                       "max_streams_per_connection = 7\n"
                       "connect_timeout = 250ms\n"
                       "max_retries = 16\n"
                       "dns_refresh = 1m\n"
                       "dns_min_ttl = 0s\n"
                       "dns_family = v6\n"
                       "health_check = off\n"
                       "health_service = user.v1.UserService\n"
                       "health_authority = users.internal:443\n"
                       "health_mode = watch\n"
                       "health_interval = 1h\n"
                       "health_timeout = 1h\n"
                       "healthy_threshold = 1000\n"
                       "unhealthy_threshold = 3\n"
                       "health_initial = healthy\n"
                       "health_unimplemented = healthy\n"
                       "panic_threshold = 100\n"
                       "\n"
                       "[cluster.orders.v2-x_y]\n"
                       "targets = 127.0.0.1:1\n";
    struct conf *c = load_ok(text);
    const struct conf_cluster *u;

    cr_assert_str_eq(c->path, "t.ini");
    cr_assert_str_eq(c->proxy.listen, "[::1]:6000");
    assert_v6(&c->proxy.listen_addr, c->proxy.listen_addrlen, "::1", 6000);
    cr_assert_eq(c->proxy.workers, 8);
    cr_assert_eq(c->proxy.log_level, CONF_LOG_DEBUG);
    cr_assert_str_eq(c->proxy.access_log, "/var/log/sy.log");
    cr_assert_eq(c->proxy.drain_timeout_ms, 45000);
    cr_assert_eq(c->proxy.max_concurrent_streams, 2147483647u);
    cr_assert_eq(c->proxy.idle_timeout_ms, 0);
    cr_assert_eq(c->proxy.ndns_servers, 3);
    cr_assert_str_eq(c->proxy.dns_servers[0], "10.0.0.2:53");
    cr_assert_str_eq(c->proxy.dns_servers[1], "[fd00::53]:5353");
    cr_assert_str_eq(c->proxy.dns_servers[2], "127.0.0.1:5300");

    cr_assert_str_eq(c->admin.listen, "127.0.0.2:9000");
    assert_v4(&c->admin.listen_addr, c->admin.listen_addrlen, "127.0.0.2", 9000);

    cr_assert_eq(c->nclusters, 2);
    u = &c->clusters[0];
    cr_assert_str_eq(u->name, "users");
    cr_assert_eq(u->line, 15);
    cr_assert_eq(u->ntargets, 3);
    cr_assert_str_eq(u->targets[0].spec, "users.svc.cluster.local:50051");
    cr_assert_str_eq(u->targets[0].host, "users.svc.cluster.local");
    cr_assert_eq(u->targets[0].port, 50051);
    cr_assert_not(u->targets[0].is_literal);
    cr_assert_str_eq(u->targets[1].spec, "10.0.0.7:50052");
    cr_assert(u->targets[1].is_literal);
    assert_v4(&u->targets[1].addr, u->targets[1].addrlen, "10.0.0.7", 50052);
    cr_assert_str_eq(u->targets[2].spec, "[::1]:50053");
    cr_assert_str_eq(u->targets[2].host, "::1");
    assert_v6(&u->targets[2].addr, u->targets[2].addrlen, "::1", 50053);
    cr_assert_eq(u->policy, CONF_POLICY_PICK_FIRST);
    cr_assert_eq(u->nroutes, 2);
    cr_assert_str_eq(u->routes[0], "/user.v1.UserService/");
    cr_assert_str_eq(u->routes[1], "/user.v2.");
    cr_assert_eq(u->max_connections, 1024);
    cr_assert_eq(u->max_streams_per_connection, 7);
    cr_assert_eq(u->connect_timeout_ms, 250);
    cr_assert_eq(u->max_retries, 16);
    cr_assert_eq(u->dns_refresh_ms, 60000);
    cr_assert_eq(u->dns_min_ttl_ms, 0);
    cr_assert_eq(u->dns_family, CONF_DNS_V6);
    cr_assert_not(u->health_check);
    cr_assert_str_eq(u->health_service, "user.v1.UserService");
    cr_assert_str_eq(u->health_authority, "users.internal:443");
    cr_assert_eq(u->health_mode, CONF_HEALTH_WATCH);
    cr_assert_eq(u->health_interval_ms, 3600000);
    cr_assert_eq(u->health_timeout_ms, 3600000);
    cr_assert_eq(u->healthy_threshold, 1000);
    cr_assert_eq(u->unhealthy_threshold, 3);
    cr_assert(u->health_initial_healthy);
    cr_assert(u->health_unimplemented_healthy);
    cr_assert_eq(u->panic_threshold, 100);

    cr_assert_str_eq(c->clusters[1].name, "orders.v2-x_y");
    cr_assert_eq(c->clusters[1].line, 38);
    cr_assert_eq(c->clusters[1].nroutes, 1);
    cr_assert_str_eq(c->clusters[1].routes[0], "/"); /* default */
    conf_free(c);
}

Test(conf, defaults_for_every_optional_key)
{
    struct conf *c = load_ok(MINIMAL);
    const struct conf_cluster *cl = &c->clusters[0];

    cr_assert_str_eq(c->proxy.listen, "0.0.0.0:50051");
    assert_v4(&c->proxy.listen_addr, c->proxy.listen_addrlen, "0.0.0.0", 50051);
    cr_assert_eq(c->proxy.workers, 0);
    cr_assert_eq(c->proxy.log_level, CONF_LOG_INFO);
    cr_assert_str_eq(c->proxy.access_log, "off");
    cr_assert_eq(c->proxy.drain_timeout_ms, 30000);
    cr_assert_eq(c->proxy.max_concurrent_streams, 100);
    cr_assert_eq(c->proxy.idle_timeout_ms, 300000);
    cr_assert_null(c->proxy.dns_servers);
    cr_assert_eq(c->proxy.ndns_servers, 0);

    cr_assert_str_eq(c->admin.listen, "127.0.0.1:9901");
    assert_v4(&c->admin.listen_addr, c->admin.listen_addrlen, "127.0.0.1", 9901);

    cr_assert_eq(c->nclusters, 1);
    cr_assert_str_eq(cl->name, "a");
    cr_assert_eq(cl->line, 1);
    cr_assert_eq(cl->ntargets, 1);
    cr_assert_eq(cl->policy, CONF_POLICY_ROUND_ROBIN);
    cr_assert_eq(cl->nroutes, 1);
    cr_assert_str_eq(cl->routes[0], "/");
    cr_assert_eq(cl->max_connections, 4);
    cr_assert_eq(cl->max_streams_per_connection, 100);
    cr_assert_eq(cl->connect_timeout_ms, 2000);
    cr_assert_eq(cl->max_retries, 2);
    cr_assert_eq(cl->dns_refresh_ms, 30000);
    cr_assert_eq(cl->dns_min_ttl_ms, 5000);
    cr_assert_eq(cl->dns_family, CONF_DNS_AUTO);
    cr_assert(cl->health_check);
    cr_assert_str_eq(cl->health_service, "");
    cr_assert_null(cl->health_authority);
    cr_assert_eq(cl->health_mode, CONF_HEALTH_CHECK);
    cr_assert_eq(cl->health_interval_ms, 5000);
    cr_assert_eq(cl->health_timeout_ms, 1000);
    cr_assert_eq(cl->healthy_threshold, 1);
    cr_assert_eq(cl->unhealthy_threshold, 2);
    cr_assert_not(cl->health_initial_healthy);
    cr_assert_not(cl->health_unimplemented_healthy);
    cr_assert_eq(cl->panic_threshold, 0);
    conf_free(c);
}

Test(conf, empty_sections_keep_defaults)
{
    struct conf *c = load_ok("[proxy]\n[admin]\n" MINIMAL);

    cr_assert_str_eq(c->proxy.listen, "0.0.0.0:50051");
    cr_assert_str_eq(c->admin.listen, "127.0.0.1:9901");
    conf_free(c);
}

Test(conf, admin_listen_off)
{
    struct conf *c = load_ok("[admin]\nlisten = off\n" MINIMAL);

    cr_assert_null(c->admin.listen);
    cr_assert_eq(c->admin.listen_addrlen, 0);
    conf_free(c);
}

Test(conf, workers_auto_and_number)
{
    struct conf *c = load_ok("[proxy]\nworkers = auto\n" MINIMAL);

    cr_assert_eq(c->proxy.workers, 0);
    conf_free(c);
    c = load_ok("[proxy]\nworkers = 256\n" MINIMAL);
    cr_assert_eq(c->proxy.workers, 256);
    conf_free(c);
    c = load_ok("[proxy]\nworkers = 1\n" MINIMAL);
    cr_assert_eq(c->proxy.workers, 1);
    conf_free(c);
}

Test(conf, booleans_accept_every_spelling)
{
    static const char *const on[] = {"on", "ON", "true", "yes", "1", "True"};
    static const char *const off[] = {"off", "Off", "false", "no", "0", "NO"};
    char text[256];

    for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
        struct conf *c;

        snprintf(text, sizeof(text), MINIMAL "health_check = %s\n", on[i]);
        c = load_ok(text);
        cr_assert(c->clusters[0].health_check, "%s", on[i]);
        conf_free(c);
        snprintf(text, sizeof(text), MINIMAL "health_check = %s\n", off[i]);
        c = load_ok(text);
        cr_assert_not(c->clusters[0].health_check, "%s", off[i]);
        conf_free(c);
    }
}

Test(conf, enums_every_value)
{
    struct conf *c = load_ok("[proxy]\nlog_level = warn\n" MINIMAL "policy = round_robin\n"
                             "dns_family = v4\nhealth_mode = check\n"
                             "health_initial = unhealthy\nhealth_unimplemented = unhealthy\n");

    cr_assert_eq(c->proxy.log_level, CONF_LOG_WARN);
    cr_assert_eq(c->clusters[0].policy, CONF_POLICY_ROUND_ROBIN);
    cr_assert_eq(c->clusters[0].dns_family, CONF_DNS_V4);
    cr_assert_eq(c->clusters[0].health_mode, CONF_HEALTH_CHECK);
    cr_assert_not(c->clusters[0].health_initial_healthy);
    cr_assert_not(c->clusters[0].health_unimplemented_healthy);
    conf_free(c);
    c = load_ok("[proxy]\nlog_level = ERROR\n" MINIMAL "dns_family = auto\n");
    cr_assert_eq(c->proxy.log_level, CONF_LOG_ERROR);
    cr_assert_eq(c->clusters[0].dns_family, CONF_DNS_AUTO);
    conf_free(c);
    c = load_ok("[proxy]\nlog_level = info\n" MINIMAL);
    cr_assert_eq(c->proxy.log_level, CONF_LOG_INFO);
    conf_free(c);
}

Test(conf, access_log_values)
{
    struct conf *c = load_ok("[proxy]\naccess_log = -\n" MINIMAL);

    cr_assert_str_eq(c->proxy.access_log, "-");
    conf_free(c);
    c = load_ok("[proxy]\naccess_log = OFF\n" MINIMAL);
    cr_assert_str_eq(c->proxy.access_log, "off");
    conf_free(c);
}

Test(conf, health_service_may_be_empty_and_authority_empty_is_default)
{
    struct conf *c = load_ok(MINIMAL "health_service =\nhealth_authority =\n");

    cr_assert_str_eq(c->clusters[0].health_service, "");
    cr_assert_null(c->clusters[0].health_authority);
    conf_free(c);
}

Test(conf, health_timeout_equal_to_interval_is_fine)
{
    struct conf *c = load_ok(MINIMAL "health_interval = 2s\nhealth_timeout = 2000ms\n");

    cr_assert_eq(c->clusters[0].health_timeout_ms, 2000);
    conf_free(c);
}

Test(conf, several_clusters_with_disjoint_routes)
{
    struct conf *c = load_ok("[cluster.users]\ntargets = a.svc:1\nroutes = /user.v1.Users/\n"
                             "[cluster.default]\ntargets = b.svc:2\n");

    cr_assert_eq(c->nclusters, 2);
    cr_assert_str_eq(c->clusters[0].routes[0], "/user.v1.Users/");
    cr_assert_str_eq(c->clusters[1].routes[0], "/");
    conf_free(c);
}

Test(conf, comments_and_inline_comments)
{
    struct conf *c = load_ok("; semicolon comment\n"
                             "# hash comment\n"
                             "  ; indented comment\n"
                             "[proxy] ; comment after a header\n"
                             "workers = 3 ; inline comment\n"
                             "access_log = /tmp/a;b\n" /* ';' without a space before it is data */
                             "[cluster.a]\n"
                             "targets = 127.0.0.1:1 ; the only one\n"
                             "# a comment between keys\n"
                             "health_service = svc#1\n"); /* inline '#' is not a comment */

    cr_assert_eq(c->proxy.workers, 3);
    cr_assert_str_eq(c->proxy.access_log, "/tmp/a;b");
    cr_assert_eq(c->clusters[0].ntargets, 1);
    cr_assert_str_eq(c->clusters[0].health_service, "svc#1");
    conf_free(c);
}

Test(conf, whitespace_crlf_bom_and_colon_separator)
{
    struct conf *c = load_ok("\xEF\xBB\xBF[proxy]\r\n"
                             "  workers   =   5  \r\n"
                             "log_level: debug\r\n"
                             "\r\n"
                             "[cluster.a]\r\n"
                             "targets=127.0.0.1:1,127.0.0.1:2\r\n");

    cr_assert_eq(c->proxy.workers, 5);
    cr_assert_eq(c->proxy.log_level, CONF_LOG_DEBUG);
    cr_assert_eq(c->clusters[0].ntargets, 2);
    cr_assert_str_eq(c->clusters[0].targets[1].spec, "127.0.0.1:2");
    conf_free(c);
}

Test(conf, list_items_are_trimmed)
{
    struct conf *c = load_ok("[cluster.a]\ntargets =  a.svc:1 ,b.svc:2,\tc.svc:3\n"
                             "routes = /x/ , /y/\n");

    cr_assert_eq(c->clusters[0].ntargets, 3);
    cr_assert_str_eq(c->clusters[0].targets[0].spec, "a.svc:1");
    cr_assert_str_eq(c->clusters[0].targets[1].spec, "b.svc:2");
    cr_assert_str_eq(c->clusters[0].targets[2].spec, "c.svc:3");
    cr_assert_str_eq(c->clusters[0].routes[0], "/x/");
    cr_assert_str_eq(c->clusters[0].routes[1], "/y/");
    conf_free(c);
}

Test(conf, lists_continue_on_indented_lines)
{
    struct conf *c = load_ok("[cluster.a]\n"
                             "targets = a.svc:1, b.svc:2,\n"
                             "    c.svc:3\n"
                             "    ; a comment inside the list\n"
                             "    d.svc:4, e.svc:5\n"
                             "routes =\n"
                             "    /x/,\n"
                             "    /y/\n"
                             "[proxy]\n"
                             "dns_servers =\n"
                             "  10.0.0.1\n");
    const struct conf_cluster *cl = &c->clusters[0];

    cr_assert_eq(cl->ntargets, 5);
    cr_assert_str_eq(cl->targets[2].spec, "c.svc:3");
    cr_assert_str_eq(cl->targets[4].spec, "e.svc:5");
    cr_assert_eq(cl->nroutes, 2);
    cr_assert_str_eq(cl->routes[1], "/y/");
    cr_assert_eq(c->proxy.ndns_servers, 1);
    conf_free(c);
}

Test(conf, empty_dns_servers_means_system)
{
    struct conf *c = load_ok("[proxy]\ndns_servers =\n" MINIMAL);

    cr_assert_eq(c->proxy.ndns_servers, 0);
    conf_free(c);
}

/* ---- web keys (issue 15) ---- */

Test(conf, web_keys_defaults_and_values)
{
    struct conf *c = load_ok(MINIMAL);

    cr_assert(c->proxy.http1);
    cr_assert(c->proxy.grpc_web);
    cr_assert_eq(c->proxy.ncors_origins, 0);
    cr_assert_eq(c->proxy.cors_max_age_ms, 600000);
    conf_free(c);
    c = load_ok("[proxy]\nhttp1 = off\ngrpc_web = off\ncors_max_age = 30s\n"
                "cors_origins = https://app.example.com, http://localhost:8080\n" MINIMAL);
    cr_assert(!c->proxy.http1);
    cr_assert(!c->proxy.grpc_web);
    cr_assert_eq(c->proxy.cors_max_age_ms, 30000);
    cr_assert_eq(c->proxy.ncors_origins, 2);
    cr_assert_str_eq(c->proxy.cors_origins[0], "https://app.example.com");
    cr_assert_str_eq(c->proxy.cors_origins[1], "http://localhost:8080");
    conf_free(c);
    c = load_ok("[proxy]\ncors_origins = *\n" MINIMAL);
    cr_assert_eq(c->proxy.ncors_origins, 1);
    cr_assert_str_eq(c->proxy.cors_origins[0], "*");
    conf_free(c);
    c = load_ok("[proxy]\ncors_origins =\n" MINIMAL);
    cr_assert_eq(c->proxy.ncors_origins, 0);
    conf_free(c);
}

Test(conf, error_bad_cors_origins)
{
    expect_err("[proxy]\ncors_origins = app.example.com\n" MINIMAL,
               "t.ini:2: [proxy] cors_origins: expected * or origins", "got 'app.example.com'",
               NULL);
    expect_err("[proxy]\ncors_origins = https://a.example/path\n" MINIMAL,
               "t.ini:2: [proxy] cors_origins: expected * or origins", "no path", NULL);
    expect_err("[proxy]\ncors_origins = https://A.example\n" MINIMAL,
               "t.ini:2: [proxy] cors_origins: expected an origin in lower case", NULL);
    expect_err("[proxy]\ncors_origins = *, https://a.example\n" MINIMAL,
               "t.ini:2: [proxy] cors_origins: expected * alone", NULL);
    expect_err("[proxy]\ncors_origins = https://a.example, https://a.example\n" MINIMAL,
               "t.ini:2: [proxy] cors_origins: expected each origin once", NULL);
    expect_err("[proxy]\nhttp1 = maybe\n" MINIMAL, "t.ini:2: [proxy] http1: expected", NULL);
}

Test(conf, key_names_of_other_sections_are_unknown)
{
    expect_err("[admin]\nworkers = 2\n" MINIMAL, "t.ini:2: [admin] workers: unknown key", NULL);
    expect_err("[proxy]\ntargets = a:1\n" MINIMAL, "t.ini:2: [proxy] targets: unknown key", NULL);
}

/* ---- errors: structure ---- */

Test(conf, error_unknown_section)
{
    expect_err("[proxy]\n[frontend]\nlisten = 1.2.3.4:5\n" MINIMAL,
               "t.ini:2: [frontend]: unknown section", "[cluster.NAME]", NULL);
    /* a section with no keys is still checked */
    expect_err(MINIMAL "[cluster]\n", "t.ini:3: [cluster]: unknown section", NULL);
    expect_err(MINIMAL "[Proxy]\n", "t.ini:3: [Proxy]: unknown section", NULL);
}

Test(conf, error_unknown_key)
{
    expect_err("[proxy]\nlisten = 0.0.0.0:1\nlisen = 0.0.0.0:2\n" MINIMAL,
               "t.ini:3: [proxy] lisen: unknown key", "listen, workers", NULL);
    expect_err(MINIMAL "health_intervall = 5s\n",
               "t.ini:3: [cluster.a] health_intervall: unknown key", "health_interval", NULL);
}

Test(conf, error_unknown_key_suggests_the_closest)
{
    /* the exact wording of issue 19's example, list of keys kept */
    expect_err(MINIMAL "health_intervall = 5s\n",
               "t.ini:3: [cluster.a] health_intervall: unknown key (did you mean "
               "'health_interval'?); expected one of targets, policy, routes",
               NULL);
    expect_err(MINIMAL "helth_interval = 5s\n",
               "t.ini:3: [cluster.a] helth_interval:", "did you mean 'health_interval'?", NULL);
    expect_err(MINIMAL "health_itnerval = 5s\n",
               "t.ini:3: [cluster.a] health_itnerval:", "did you mean 'health_interval'?",
               NULL); /* two letters swapped */
    expect_err(MINIMAL "healthtimeout = 5s\n", "t.ini:3:", "did you mean 'health_timeout'?", NULL);
    expect_err(MINIMAL "target = 127.0.0.1:2\n", "t.ini:3:", "did you mean 'targets'?", NULL);
    expect_err("[proxy]\nlisen = 0.0.0.0:2\n" MINIMAL,
               "t.ini:2: [proxy] lisen:", "did you mean 'listen'?",
               "expected one of listen, workers, log_level", NULL);
    expect_err("[proxy]\nLog_Level = debug\n" MINIMAL,
               "t.ini:2: [proxy] Log_Level:", "did you mean 'log_level'? key names are lower case",
               NULL);
    expect_err("[auth]\nmdoe = jwt\n" MINIMAL, "t.ini:2: [auth] mdoe:", "did you mean 'mode'?",
               NULL);
    /* among the keys of that section only */
    expect_err("[admin]\nworkers = 2\n" MINIMAL, "t.ini:2: [admin] workers: unknown key",
               "(workers is a key of [proxy])", NULL);
    expect_err(MINIMAL "drain_timeout = 1s\n",
               "t.ini:3: [cluster.a] drain_timeout:", "(drain_timeout is a key of [proxy])", NULL);
}

Test(conf, error_unknown_key_without_a_close_one)
{
    char err[1024] = "";
    struct conf *c = NULL;

    cr_assert_eq(conf_load_string(MINIMAL "frobnicate = 1\n", "t.ini", &c, err, sizeof(err)), -1);
    cr_assert_null(strstr(err, "did you mean"), "%s", err);
    cr_assert_not_null(strstr(err, "unknown key; expected one of targets, policy"), "%s", err);
    /* nothing absurd for a short or very long name */
    cr_assert_eq(conf_load_string(MINIMAL "zq = 1\n", "t.ini", &c, err, sizeof(err)), -1);
    cr_assert_null(strstr(err, "did you mean"), "%s", err);
    cr_assert_eq(conf_load_string(MINIMAL "health_interval_health_interval_health_interval_x = "
                                          "1\n",
                                  "t.ini", &c, err, sizeof(err)),
                 -1);
    cr_assert_null(strstr(err, "did you mean"), "%s", err);
}

Test(conf, error_key_before_any_section)
{
    expect_err("listen = 0.0.0.0:1\n" MINIMAL, "t.ini:1: listen: expected a [proxy], [admin]",
               NULL);
}

Test(conf, error_duplicate_key)
{
    expect_err(MINIMAL "policy = pick_first\npolicy = round_robin\n",
               "t.ini:4: [cluster.a] policy: duplicate key; first set on line 3", NULL);
}

Test(conf, error_duplicate_sections)
{
    expect_err("[proxy]\n[admin]\n[proxy]\n" MINIMAL, "t.ini:3: [proxy]: duplicate section",
               "line 1", NULL);
    expect_err("[admin]\n[admin]\n" MINIMAL, "t.ini:2: [admin]: duplicate section", NULL);
}

Test(conf, error_duplicate_cluster)
{
    expect_err(MINIMAL "routes = /a/\n[cluster.a]\ntargets = 127.0.0.1:2\nroutes = /b/\n",
               "t.ini:4: [cluster.a]: duplicate cluster; first defined on line 1", NULL);
}

Test(conf, error_bad_cluster_name)
{
    expect_err("[cluster.]\ntargets = a:1\n", "t.ini:1: [cluster.]: expected a cluster name",
               "got ''", NULL);
    expect_err("[cluster.a b]\ntargets = a:1\n", "t.ini:1: [cluster.a b]: expected a cluster name",
               "got 'a b'", NULL);
    expect_err("[cluster.a/b]\ntargets = a:1\n", "t.ini:1: [cluster.a/b]:", NULL);
}

Test(conf, error_missing_targets_names_header_line)
{
    expect_err("[proxy]\nworkers = 2\n[cluster.users]\npolicy = pick_first\nroutes = /u/\n" MINIMAL,
               "t.ini:3: [cluster.users]: missing required key 'targets'", NULL);
    /* last section of the file, and a section without keys */
    expect_err(MINIMAL "routes = /a/\n[cluster.b]\n", "t.ini:4: [cluster.b]: missing required key",
               NULL);
}

Test(conf, error_no_cluster)
{
    expect_err_eq("[proxy]\nworkers = 2\n",
                  "t.ini: expected at least one [cluster.NAME] section, got none");
    expect_err("", "t.ini: expected at least one [cluster.NAME]", NULL);
    expect_err("; only a comment\n", "t.ini: expected at least one [cluster.NAME]", NULL);
}

Test(conf, error_syntax)
{
    expect_err(MINIMAL "just some words\n",
               "t.ini:3: expected 'key = value', a [section] header or a comment, "
               "got 'just some words'",
               NULL);
    expect_err("[proxy\n" MINIMAL, "t.ini:1: expected ']' to close the section header", "[proxy",
               NULL);
    expect_err("[proxy] workers = 2\n" MINIMAL, "t.ini:1: expected only a comment after ']'", NULL);
}

Test(conf, error_line_too_long)
{
    char text[600];

    snprintf(text, sizeof(text), MINIMAL "health_service = %0300d\n", 7);
    expect_err(text, "t.ini:3: expected a line of at most 199 characters", "continuation", NULL);
}

Test(conf, long_comment_lines_are_fine)
{
    char text[1200];
    struct conf *c;

    snprintf(text, sizeof(text), "; %0500d\n" MINIMAL "    # %0500d\npolicy = pick_first\n", 1, 2);
    c = load_ok(text);
    cr_assert_eq(c->clusters[0].policy, CONF_POLICY_PICK_FIRST);
    cr_assert_eq(c->clusters[0].ntargets, 1);
    conf_free(c);
}

Test(conf, line_of_exactly_199_characters)
{
    char text[600];
    struct conf *c;
    int pad = 199 - (int)strlen("health_service = ");

    snprintf(text, sizeof(text), MINIMAL "health_service = %0*d\n", pad, 0);
    c = load_ok(text);
    cr_assert_eq(strlen(c->clusters[0].health_service), (size_t)pad);
    conf_free(c);
    snprintf(text, sizeof(text), MINIMAL "health_service = %0*d\r\n", pad, 0);
    c = load_ok(text);
    conf_free(c);
    snprintf(text, sizeof(text), MINIMAL "health_service = %0*d\n", pad + 1, 0);
    expect_err(text, "t.ini:3: expected a line of at most 199 characters, got 200", NULL);
}

Test(conf, error_first_error_wins)
{
    expect_err("[proxy]\nworkers = x\nbogus\n[nope]\n",
               "t.ini:2: [proxy] workers: expected auto or an integer in 1..256, got 'x'", NULL);
    /* an earlier syntax error wins over a later key error */
    expect_err("[proxy]\nbogus\nworkers = x\n", "t.ini:2: expected 'key = value'", NULL);
}

/* ---- errors: values ---- */

Test(conf, error_exact_message_format)
{
    expect_err_eq("[proxy]\n\n[cluster.users]\ntargets = a:1\n"
                  "health_interval = fast\n",
                  "t.ini:5: [cluster.users] health_interval: expected a duration such as 250ms, "
                  "5s or 1m, got 'fast'");
}

Test(conf, error_bad_durations)
{
    expect_err(MINIMAL "connect_timeout = 5\n",
               "t.ini:3: [cluster.a] connect_timeout: expected a duration", "got '5'", NULL);
    expect_err(MINIMAL "dns_refresh = 1d\n",
               "t.ini:3: [cluster.a] dns_refresh: expected a duration", "got '1d'", NULL);
    expect_err("[proxy]\ndrain_timeout = -1s\n" MINIMAL,
               "t.ini:2: [proxy] drain_timeout: expected a duration", NULL);
    expect_err("[proxy]\nidle_timeout = 5000000h\n" MINIMAL,
               "t.ini:2: [proxy] idle_timeout: expected a duration of at most", "got '5000000h'",
               NULL);
    expect_err(MINIMAL "health_interval = 0s\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration of at least 1ms",
               "got '0s'", NULL);
    expect_err(MINIMAL "connect_timeout = 0\n", "t.ini:3: [cluster.a] connect_timeout:", NULL);
    expect_err(MINIMAL "dns_refresh = 0ms\n", "t.ini:3: [cluster.a] dns_refresh:", NULL);
    expect_err(MINIMAL "health_timeout = 0s\n", "t.ini:3: [cluster.a] health_timeout:", NULL);
}

Test(conf, error_bad_bool)
{
    expect_err(MINIMAL "health_check = maybe\n",
               "t.ini:3: [cluster.a] health_check: expected on or off, got 'maybe'", NULL);
    expect_err(MINIMAL "health_check =\n", "t.ini:3: [cluster.a] health_check: expected on or off",
               "got ''", NULL);
}

Test(conf, error_out_of_range_integers)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {MINIMAL "max_connections = 0\n", "t.ini:3: [cluster.a] max_connections: expected an "
                                          "integer in 1..1024, got '0'"},
        {MINIMAL "max_connections = 1025\n", "[cluster.a] max_connections: expected an integer "
                                             "in 1..1024, got '1025'"},
        {MINIMAL "max_connections = -1\n", "max_connections: expected an integer in 1..1024"},
        {MINIMAL "max_connections = 4x\n", "max_connections: expected an integer in 1..1024"},
        {MINIMAL "max_connections = 99999999999999999999999\n", "max_connections: expected"},
        {MINIMAL "max_streams_per_connection = 0\n", "expected an integer in 1..2147483647"},
        {MINIMAL "max_streams_per_connection = 2147483648\n", "in 1..2147483647"},
        {MINIMAL "max_retries = 17\n", "max_retries: expected an integer in 0..16, got '17'"},
        {MINIMAL "healthy_threshold = 0\n", "healthy_threshold: expected an integer in 1..1000"},
        {MINIMAL "unhealthy_threshold = 1001\n", "unhealthy_threshold: expected an integer in "
                                                 "1..1000, got '1001'"},
        {MINIMAL "panic_threshold = 101\n", "panic_threshold: expected an integer in 0..100"},
        {"[proxy]\nmax_concurrent_streams = 0\n" MINIMAL,
         "t.ini:2: [proxy] max_concurrent_streams: expected an integer in 1..2147483647"},
        {"[proxy]\nworkers = 0\n" MINIMAL, "t.ini:2: [proxy] workers: expected auto or an "
                                           "integer in 1..256, got '0'"},
        {"[proxy]\nworkers = 257\n" MINIMAL, "workers: expected auto or an integer in 1..256"},
        {"[proxy]\nworkers = many\n" MINIMAL, "workers: expected auto or an integer in 1..256"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char err[512] = "";
        struct conf *c = NULL;

        cr_assert_eq(conf_load_string(cases[i].text, "t.ini", &c, err, sizeof(err)), -1, "case %zu",
                     i);
        cr_assert_not_null(strstr(err, cases[i].want), "case %zu: '%s' lacks '%s'", i, err,
                           cases[i].want);
    }
}

Test(conf, error_bad_enums)
{
    expect_err(MINIMAL "policy = fastest\n",
               "t.ini:3: [cluster.a] policy: expected round_robin, pick_first, least_request, "
               "ring_hash or random, got 'fastest'",
               NULL);
    expect_err(MINIMAL "dns_family = ipv4\n",
               "t.ini:3: [cluster.a] dns_family: expected auto, v4 or v6, got 'ipv4'", NULL);
    expect_err(MINIMAL "health_mode = stream\n",
               "t.ini:3: [cluster.a] health_mode: expected check or watch, got 'stream'", NULL);
    expect_err(MINIMAL "health_initial = up\n",
               "t.ini:3: [cluster.a] health_initial: expected unhealthy or healthy, got 'up'",
               NULL);
    expect_err(MINIMAL "health_unimplemented = on\n",
               "t.ini:3: [cluster.a] health_unimplemented: expected unhealthy or healthy", NULL);
    expect_err("[proxy]\nlog_level = verbose\n" MINIMAL,
               "t.ini:2: [proxy] log_level: expected debug, info, warn or error, got 'verbose'",
               NULL);
}

Test(conf, error_bad_strings)
{
    expect_err("[proxy]\naccess_log =\n" MINIMAL,
               "t.ini:2: [proxy] access_log: expected -, off or a file path, got ''", NULL);
    expect_err(MINIMAL "health_authority = a b\n",
               "t.ini:3: [cluster.a] health_authority: expected a :authority", "got 'a b'", NULL);
}

Test(conf, error_bad_targets)
{
    static const struct {
        const char *target, *want;
    } cases[] = {
        {"10.0.0.1", "expected HOST:PORT (the port is required), got '10.0.0.1'"},
        {"users.svc", "(the port is required), got 'users.svc'"},
        {"10.0.0.1:0", "expected a port in 1..65535, got '10.0.0.1:0'"},
        {"10.0.0.1:70000", "expected a port in 1..65535, got '10.0.0.1:70000'"},
        {"10.0.0.1:", "expected a port in 1..65535, got '10.0.0.1:'"},
        {"10.0.0.1:http", "expected a port in 1..65535"},
        {"10.0.0.1:+80", "expected a port in 1..65535"},
        {"[::1:50051", "expected [IPv6]:PORT with a closing ']', got '[::1:50051'"},
        {"[::1]50051", "expected [IPv6]:PORT with ':PORT' right after ']'"},
        {"[::1]", "expected [IPv6]:PORT with ':PORT' right after ']'"},
        {"::1]:50051", "expected an IPv6 address in brackets such as [::1]:50051"},
        {"::1:50051", "expected an IPv6 address in brackets"},
        {"[]:1", "expected an IPv6 address inside [ ], got '[]:1'"},
        {"[10.0.0.1]:1", "expected an IPv6 address inside [ ]"},
        {"[fe80::1%eth0]:1", "expected an IPv6 address inside [ ]"},
        {":50051", "expected a host name or IP address before ':PORT', got ':50051'"},
        {"a..b:1", "expected a host name or IP address before ':PORT', got 'a..b:1'"},
        {"-a.svc:1", "expected a host name or IP address"},
        {"a-.svc:1", "expected a host name or IP address"},
        {"10.0.0.256:1", "expected a host name or IP address"},
        {"a/b:1", "expected a host name or IP address"},
        {"http://a:1", "expected a host name or IP address"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[256], err[512] = "";
        struct conf *c = NULL;

        snprintf(text, sizeof(text), "[cluster.a]\n\ntargets = 127.0.0.1:1, %s\n", cases[i].target);
        cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), -1, "%s",
                     cases[i].target);
        cr_assert_null(c);
        cr_assert_eq(strncmp(err, "t.ini:3: [cluster.a] targets: ", 30), 0, "'%s'", err);
        cr_assert_not_null(strstr(err, cases[i].want), "'%s' lacks '%s'", err, cases[i].want);
    }
}

Test(conf, error_target_lists)
{
    expect_err("[cluster.a]\ntargets =\n",
               "t.ini:2: [cluster.a] targets: expected at least one "
               "item, got ''",
               NULL);
    expect_err("[cluster.a]\ntargets = a:1,,b:2\n",
               "t.ini:2: [cluster.a] targets: expected a non-empty item between commas, "
               "got 'a:1,,b:2'",
               NULL);
    expect_err("[cluster.a]\ntargets = ,a:1\n",
               "t.ini:2: [cluster.a] targets: expected a "
               "non-empty item",
               NULL);
    expect_err("[cluster.a]\ntargets = a:1,\n",
               "t.ini:2: [cluster.a] targets: expected another item after the trailing ','", NULL);
    expect_err("[cluster.a]\ntargets = a:1,\npolicy = pick_first\n",
               "t.ini:2: [cluster.a] targets: expected another item", NULL);
    expect_err("[cluster.a]\ntargets = a:1, A:1\n",
               "t.ini:2: [cluster.a] targets: expected each target once, got 'A:1' twice", NULL);
    expect_err("[cluster.a]\ntargets = [::1]:5, [0::1]:5\n",
               "t.ini:2: [cluster.a] targets: expected each target once", NULL);
}

Test(conf, error_continuation_lines)
{
    expect_err(MINIMAL "policy = round_robin\n  pick_first\n",
               "t.ini:4: [cluster.a] policy: expected the value on one line", "got 'pick_first'",
               NULL);
    /* an indented key after a list is a continuation inih hands us, not a key */
    expect_err(MINIMAL "  policy = pick_first\n",
               "t.ini:3: [cluster.a] targets: expected more items", "do not indent keys", NULL);
    expect_err(MINIMAL "  [cluster.b]\n", "t.ini:3: [cluster.a] targets: expected more items",
               NULL);
    expect_err("[cluster.a]\ntargets = a:1,\n  ,b:2\n",
               "t.ini:3: [cluster.a] targets: expected a non-empty item", NULL);
}

Test(conf, error_bad_listen)
{
    expect_err("[proxy]\nlisten = localhost:50051\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected an IP address and port such as 0.0.0.0:50051",
               "got 'localhost:50051'", NULL);
    expect_err("[proxy]\nlisten = 0.0.0.0\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected an IP address and port", "got '0.0.0.0'", NULL);
    expect_err("[proxy]\nlisten = 50051\n" MINIMAL, "t.ini:2: [proxy] listen:", NULL);
    expect_err("[proxy]\nlisten = [::]50051\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected [IPv6]:PORT", NULL);
    expect_err("[proxy]\nlisten = 0.0.0.0:65536\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected a port in 1..65535", NULL);
    expect_err("[admin]\nlisten = disabled\n" MINIMAL, "t.ini:2: [admin] listen:", "or off", NULL);
}

Test(conf, error_listen_conflict)
{
    expect_err("[proxy]\nlisten = 0.0.0.0:7000\n[admin]\nlisten = 127.0.0.1:7000\n" MINIMAL,
               "t.ini:4: [admin] listen: expected an address other than [proxy] listen "
               "0.0.0.0:7000, got '127.0.0.1:7000'",
               NULL);
    expect_err("[proxy]\nlisten = [::]:9901\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected an address other than [admin] listen "
               "127.0.0.1:9901",
               NULL);
    /* same port on different addresses, or admin off, is fine */
    conf_free(load_ok("[proxy]\nlisten = 127.0.0.2:9901\n" MINIMAL));
    conf_free(load_ok("[proxy]\nlisten = [::1]:9901\n" MINIMAL));
    conf_free(load_ok("[proxy]\nlisten = 0.0.0.0:9901\n[admin]\nlisten = off\n" MINIMAL));
}

Test(conf, error_bad_routes)
{
    expect_err(MINIMAL "routes = user.v1.Users/\n",
               "t.ini:3: [cluster.a] routes: expected a :path prefix starting with '/'",
               "got 'user.v1.Users/'", NULL);
    expect_err(MINIMAL "routes = /a b/\n", "t.ini:3: [cluster.a] routes: expected a :path prefix",
               NULL);
    expect_err(MINIMAL "routes = /a/, /a/\n",
               "t.ini:3: [cluster.a] routes: expected each route once, got '/a/' twice", NULL);
    expect_err(MINIMAL "routes =\n", "t.ini:3: [cluster.a] routes: expected at least one item",
               NULL);
}

Test(conf, error_duplicate_route_across_clusters)
{
    expect_err("[cluster.users]\ntargets = a:1\nroutes = /u/, /shared/\n"
               "[cluster.orders]\ntargets = b:1\nroutes = /o/, /shared/\n",
               "t.ini:6: [cluster.orders] routes: route '/shared/' is already routed to "
               "[cluster.users] (line 1)",
               NULL);
    /* both default to "/" */
    expect_err("[cluster.users]\ntargets = a:1\n[cluster.orders]\ntargets = b:1\n",
               "t.ini:3: [cluster.orders]: route '/' (the default when 'routes' is absent) is "
               "already routed to [cluster.users] (line 1)",
               NULL);
    /* an explicit "/" against a default one */
    expect_err("[cluster.users]\ntargets = a:1\n[cluster.orders]\ntargets = b:1\nroutes = /\n",
               "t.ini:5: [cluster.orders] routes: route '/' is already routed to [cluster.users]",
               NULL);
}

Test(conf, error_health_timeout_above_interval)
{
    expect_err(MINIMAL "health_interval = 2s\nhealth_timeout = 3s\n",
               "t.ini:4: [cluster.a] health_timeout: expected at most health_interval (2s), "
               "got '3s'",
               NULL);
    expect_err(MINIMAL "health_timeout = 6s\n",
               "t.ini:3: [cluster.a] health_timeout: expected at most health_interval (5s), "
               "got '6s'",
               NULL);
    expect_err(MINIMAL "health_interval = 500ms\n",
               "t.ini:3: [cluster.a] health_interval: expected at least health_timeout (1s), "
               "got '500ms'",
               NULL);
    /* reported before the next section starts */
    expect_err(MINIMAL "health_interval = 500ms\n[bogus]\n",
               "t.ini:3: [cluster.a] health_interval:", NULL);
}

Test(conf, error_bad_dns_servers)
{
    expect_err("[proxy]\ndns_servers = dns.google\n" MINIMAL,
               "t.ini:2: [proxy] dns_servers: expected an IP address with an optional port",
               "got 'dns.google'", NULL);
    expect_err("[proxy]\ndns_servers = 10.0.0.1:0\n" MINIMAL,
               "t.ini:2: [proxy] dns_servers:", NULL);
    expect_err("[proxy]\ndns_servers = 10.0.0.1, 10.0.0.1:53\n" MINIMAL,
               "t.ini:2: [proxy] dns_servers: expected each server once", NULL);
    expect_err("[proxy]\ndns_servers = 10.0.0.1,,10.0.0.2\n" MINIMAL,
               "t.ini:2: [proxy] dns_servers: expected a non-empty item", NULL);
}

Test(conf, dns_servers_bare_ipv6)
{
    struct conf *c = load_ok("[proxy]\ndns_servers = fd00::1, 8.8.8.8:5353\n" MINIMAL);

    cr_assert_eq(c->proxy.ndns_servers, 2);
    cr_assert_str_eq(c->proxy.dns_servers[0], "[fd00::1]:53");
    cr_assert_str_eq(c->proxy.dns_servers[1], "8.8.8.8:5353");
    conf_free(c);
}

/* ---- durations ---- */

Test(conf, duration_table)
{
    static const struct {
        const char *s;
        uint32_t ms;
    } good[] = {
        {"0", 0},
        {"0ms", 0},
        {"0s", 0},
        {"0h", 0},
        {"1ms", 1},
        {"250ms", 250},
        {"5s", 5000},
        {"05s", 5000},
        {"1m", 60000},
        {"90m", 5400000},
        {"2h", 7200000},
        {"4294967295ms", 4294967295u},
        {"4294967s", 4294967000u},
        {"1193h", 4294800000u},
        /* decimals, in every unit (issue 19: 1.5s worked in the CLI only) */
        {"1.5s", 1500},
        {"0.25s", 250},
        {"2.5m", 150000},
        {"0.5h", 1800000},
        {"1.0ms", 1},
        {"0.001s", 1},
        {"1.500s", 1500},
        {"0.0s", 0},
        {"0.100000000000000s", 100},
        {"4294967.295s", 4294967295u},
        {"71582.788m", 4294967280u},
    };
    static const char *const bad[] = {
        "",
        "s",
        "ms",
        "5",
        "-1s",
        "-1.5s",
        "-0.5s",
        ".5s",
        "1.s",
        "1..5s",
        "1.5.s",
        "1,5s",
        "1.5",
        "0.0",
        "1.5 s",
        "1e3ms",
        "0x1.8p0s",
        "inf",
        "nan",
        "0.5ms",
        "1.0005s",
        "0.0001s",
        "1.2345678901234567s",
        "4294967.296s",
        "1193.05h",
        "71582.8m",
        "+1s",
        " 5s",
        "5s ",
        "5 s",
        "5S",
        "5sec",
        "1d",
        "5ms5",
        "0x10s",
        "4294967296ms",
        "4294968s",
        "1194h",
        "99999999999999999999ms",
        "71583m",
    };

    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        uint32_t ms = 12345;

        cr_assert_eq(conf_parse_duration(good[i].s, &ms), 0, "'%s'", good[i].s);
        cr_assert_eq(ms, good[i].ms, "'%s' gave %u", good[i].s, (unsigned)ms);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t ms = 12345;

        cr_assert_eq(conf_parse_duration(bad[i], &ms), -1, "'%s' was accepted", bad[i]);
        cr_assert_eq(ms, 12345, "'%s' wrote the output", bad[i]);
    }
}

Test(conf, decimal_durations_in_files)
{
    struct conf *c = load_ok("[proxy]\ndrain_timeout = 2.5m\nidle_timeout = 0.5h\n"
                             "keepalive_timeout = 0.25s\nheader_timeout = 1.5s\n"
                             "[cluster.a]\ntargets = 127.0.0.1:1\nhealth_interval = 1.5s\n"
                             "health_timeout = 0.75s\nconnect_timeout = 0.1s\n"
                             "dns_refresh = 1.5m\ndns_min_ttl = 0.5s\n"
                             "[auth]\nmode = off\n");

    cr_assert_eq(c->proxy.drain_timeout_ms, 150000);
    cr_assert_eq(c->proxy.idle_timeout_ms, 1800000);
    cr_assert_eq(c->proxy.keepalive_timeout_ms, 250);
    cr_assert_eq(c->proxy.header_timeout_ms, 1500);
    cr_assert_eq(c->clusters[0].health_interval_ms, 1500);
    cr_assert_eq(c->clusters[0].health_timeout_ms, 750);
    cr_assert_eq(c->clusters[0].connect_timeout_ms, 100);
    cr_assert_eq(c->clusters[0].dns_refresh_ms, 90000);
    cr_assert_eq(c->clusters[0].dns_min_ttl_ms, 500);
    conf_free(c);
}

Test(conf, error_bad_decimal_durations)
{
    expect_err(MINIMAL "health_interval = -1.5s\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration", "got '-1.5s'", NULL);
    expect_err(MINIMAL "health_interval = 1.5\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration", "got '1.5'", NULL);
    expect_err(MINIMAL "health_interval = 1.5.0s\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration", NULL);
    expect_err(MINIMAL "health_interval = 1,5s\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration", NULL);
    expect_err(MINIMAL "health_timeout = 0.5ms\n",
               "t.ini:3: [cluster.a] health_timeout: expected a whole number of milliseconds",
               "got '0.5ms'", NULL);
    expect_err("[proxy]\ndrain_timeout = 4294967.296s\n" MINIMAL,
               "t.ini:2: [proxy] drain_timeout: expected a duration of at most", NULL);
    expect_err("[proxy]\ndrain_timeout = 99999999999999999999.5s\n" MINIMAL,
               "t.ini:2: [proxy] drain_timeout: expected a duration of at most", NULL);
    /* a decimal still meets each key's minimum */
    expect_err(MINIMAL "health_interval = 0.0s\n",
               "t.ini:3: [cluster.a] health_interval: expected a duration of at least 1ms", NULL);
    /* and the cross-key check quotes the text as written */
    expect_err(MINIMAL "health_interval = 1.5s\nhealth_timeout = 1.75s\n",
               "t.ini:4: [cluster.a] health_timeout: expected at most health_interval (1.5s), "
               "got '1.75s'",
               NULL);
}

Test(conf, key_lines_are_remembered)
{
    struct conf *c = load_ok("[proxy]\nworkers = 2\n\n[cluster.a]\ntargets = 127.0.0.1:1\n"
                             "[cluster.b]\nroutes = /b.\ntargets = 127.0.0.1:2\n"
                             "health_interval = 2s\n");

    cr_assert_eq(conf_key_line(c, "proxy", "workers"), 2);
    cr_assert_eq(conf_key_line(c, "cluster.a", "targets"), 5);
    cr_assert_eq(conf_key_line(c, "cluster.b", "targets"), 8);
    cr_assert_eq(conf_key_line(c, "cluster.b", "health_interval"), 9);
    cr_assert_eq(conf_key_line(c, "cluster.a", "health_interval"), 0); /* default */
    cr_assert_eq(conf_key_line(c, "proxy", "listen"), 0);
    cr_assert_eq(conf_key_line(c, "cluster.c", "targets"), 0);
    conf_free(c);
}

/* ---- the schema as conf_keyword_at() describes it ---- */

Test(conf, keyword_table_is_described)
{
    struct conf_keyword_info k;
    size_t n = conf_keyword_count();

    cr_assert_gt(n, 40);
    cr_assert_eq(conf_keyword_at(n, &k), -1);
    cr_assert_eq(conf_keyword_at((size_t)-1, &k), -1);
    for (size_t i = 0; i < n; i++) {
        cr_assert_eq(conf_keyword_at(i, &k), 0);
        cr_assert(k.section && k.name && k.type && k.name[0] && k.type[0] && k.deflt[0],
                  "key %zu incomplete", i);
        /* the same name twice in one section would make the doc ambiguous */
        for (size_t j = 0; j < i; j++) {
            struct conf_keyword_info o;

            conf_keyword_at(j, &o);
            cr_assert(strcmp(o.section, k.section) != 0 || strcmp(o.name, k.name) != 0,
                      "[%s] %s twice", k.section, k.name);
        }
    }
    /* a few known ones, spelled as the file would say them */
    for (size_t i = 0; i < n; i++) {
        conf_keyword_at(i, &k);
        if (strcmp(k.section, "cluster.NAME") == 0 && strcmp(k.name, "health_interval") == 0) {
            cr_assert_str_eq(k.type, "duration");
            cr_assert_str_eq(k.deflt, "5s");
            cr_assert_str_eq(k.range, "at least 1ms");
        }
        if (strcmp(k.section, "proxy") == 0 && strcmp(k.name, "log_level") == 0) {
            cr_assert_str_eq(k.deflt, "info");
            cr_assert_str_eq(k.range, "debug, info, warn, error");
        }
        if (strcmp(k.section, "admin") == 0 && strcmp(k.name, "listen") == 0)
            cr_assert_str_eq(k.deflt, "127.0.0.1:9901");
        if (strcmp(k.section, "cluster.NAME") == 0 && strcmp(k.name, "targets") == 0)
            cr_assert_str_eq(k.deflt, "(required)");
    }
}

/* Every default that is a value can be written in a file and means the
 * same as leaving the key out: the reference's defaults are real. */
Test(conf, every_described_default_loads)
{
    struct conf_keyword_info k;

    for (size_t i = 0; i < conf_keyword_count(); i++) {
        char text[512], err[1024] = "";
        struct conf *c = NULL;
        const char *sect;

        conf_keyword_at(i, &k);
        if (k.deflt[0] == '(' || k.deflt[0] == '"')
            continue; /* (none), (required), "" */
        sect = strcmp(k.section, "cluster.NAME") == 0 ? "cluster.a" : k.section;
        if (strcmp(sect, "cluster.a") == 0)
            snprintf(text, sizeof(text), "[cluster.a]\ntargets = 127.0.0.1:1\n%s = %s\n", k.name,
                     k.deflt);
        else
            snprintf(text, sizeof(text), "[%s]\n%s = %s\n%s%s", sect, k.name, k.deflt,
                     strcmp(sect, "auth") == 0 && strcmp(k.name, "mode") != 0 ? "mode = off\n" : "",
                     MINIMAL);
        if (conf_load_string(text, "t.ini", &c, err, sizeof(err)) != 0) {
            char got[128];

            /* Some keys need others (tls_verify needs tls = on); a bad value
             * is always quoted back as "got 'VALUE'". */
            snprintf(got, sizeof(got), "got '%s'", k.deflt);
            cr_expect(strstr(err, got) == NULL && strstr(err, "unknown key") == NULL,
                      "[%s] %s = %s: %s", sect, k.name, k.deflt, err);
        }
        conf_free(c);
    }
}

/* ---- ${ENV} ---- */

static void expect_expand(const char *in, const char *want)
{
    char err[256] = "";
    char *out = conf_expand_env(in, err, sizeof(err));

    cr_assert_not_null(out, "'%s': %s", in, err);
    cr_assert_str_eq(out, want, "'%s'", in);
    free(out);
}

static void expect_expand_err(const char *in, const char *want)
{
    char err[256] = "";
    char *out = conf_expand_env(in, err, sizeof(err));

    cr_assert_null(out, "'%s' expanded to '%s'", in, out ? out : "");
    cr_assert_not_null(strstr(err, want), "'%s': '%s' lacks '%s'", in, err, want);
}

Test(conf, env_expansion)
{
    setenv("SY_PORT", "50051", 1);
    setenv("SY_HOST", "users.svc", 1);
    setenv("SY_EMPTY", "", 1);
    unsetenv("SY_UNSET");

    expect_expand("", "");
    expect_expand("plain", "plain");
    expect_expand("${SY_PORT}", "50051");
    expect_expand("${SY_HOST}:${SY_PORT}", "users.svc:50051");
    expect_expand("pre-${SY_PORT}-post", "pre-50051-post");
    expect_expand("${SY_EMPTY}", "");
    expect_expand("${SY_UNSET:-10.0.0.1}:${SY_PORT}", "10.0.0.1:50051");
    expect_expand("${SY_PORT:-1}", "50051");
    expect_expand("${SY_EMPTY:-dflt}", "dflt");
    expect_expand("${SY_UNSET:-}", "");
    expect_expand("${SY_UNSET:-a b:c}", "a b:c");
    expect_expand("$SY_PORT", "$SY_PORT");
    expect_expand("cost: 5$", "cost: 5$");
    expect_expand("$$", "$$");
    expect_expand("$${SY_PORT}", "$50051");
    expect_expand("{SY_PORT}", "{SY_PORT}");
}

Test(conf, env_expansion_errors)
{
    unsetenv("SY_UNSET");
    expect_expand_err("${SY_UNSET}", "environment variable SY_UNSET is not set");
    expect_expand_err("a:${SY_UNSET}", "SY_UNSET");
    expect_expand_err("${SY_PORT", "expected '}' to close '${', got '${SY_PORT'");
    expect_expand_err("x${", "expected '}' to close '${'");
    expect_expand_err("${A:-never closed", "expected '}' to close '${'");
    expect_expand_err("${}", "expected ${NAME} or ${NAME:-default}");
    expect_expand_err("${1X}", "expected ${NAME}");
    expect_expand_err("${A B}", "expected ${NAME}");
    expect_expand_err("${A-b}", "expected ${NAME}");
    expect_expand_err("${A:=b}", "expected ${NAME}");
}

Test(conf, env_expansion_null_err_buffer)
{
    unsetenv("SY_UNSET");
    cr_assert_null(conf_expand_env("${SY_UNSET}", NULL, 0));
}

Test(conf, env_in_every_value)
{
    struct conf *c;

    setenv("SY_LISTEN", "127.0.0.1:7001", 1);
    setenv("SY_TARGETS", "a.svc:1, b.svc:2", 1);
    setenv("SY_SVC", "pkg.Svc", 1);
    unsetenv("SY_UNSET");
    c = load_ok("[proxy]\nlisten = ${SY_LISTEN}\nworkers = ${SY_UNSET:-4}\n"
                "[cluster.a]\ntargets = ${SY_TARGETS}, c.svc:${SY_UNSET:-3}\n"
                "routes = /${SY_SVC}/\nhealth_service = ${SY_SVC}\n");
    assert_v4(&c->proxy.listen_addr, c->proxy.listen_addrlen, "127.0.0.1", 7001);
    cr_assert_str_eq(c->proxy.listen, "127.0.0.1:7001");
    cr_assert_eq(c->proxy.workers, 4);
    cr_assert_eq(c->clusters[0].ntargets, 3);
    cr_assert_str_eq(c->clusters[0].targets[1].spec, "b.svc:2");
    cr_assert_str_eq(c->clusters[0].targets[2].spec, "c.svc:3");
    cr_assert_str_eq(c->clusters[0].routes[0], "/pkg.Svc/");
    cr_assert_str_eq(c->clusters[0].health_service, "pkg.Svc");
    conf_free(c);
}

Test(conf, env_errors_name_file_line_and_key)
{
    unsetenv("SY_UNSET");
    expect_err("[proxy]\nworkers = 2\n\nlisten = 0.0.0.0:${SY_UNSET}\n" MINIMAL,
               "t.ini:4: [proxy] listen: environment variable SY_UNSET is not set", NULL);
    expect_err(MINIMAL "health_service = ${oops\n",
               "t.ini:3: [cluster.a] health_service: expected '}' to close '${'", NULL);
    /* the expanded value is what gets validated */
    setenv("SY_BAD", "soon", 1);
    expect_err(MINIMAL "health_timeout = ${SY_BAD}\n",
               "t.ini:3: [cluster.a] health_timeout: expected a duration", "got 'soon'", NULL);
}

/* ---- conf_parse_target ---- */

Test(conf, parse_target_kinds)
{
    struct conf_target t;
    char err[256];

    cr_assert_eq(conf_parse_target("10.1.2.3:443", &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(t.spec, "10.1.2.3:443");
    cr_assert_str_eq(t.host, "10.1.2.3");
    cr_assert_eq(t.port, 443);
    cr_assert(t.is_literal);
    assert_v4(&t.addr, t.addrlen, "10.1.2.3", 443);
    conf_target_deinit(&t);
    cr_assert_null(t.spec);

    cr_assert_eq(conf_parse_target("[2001:db8::7]:65535", &t, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(t.host, "2001:db8::7");
    cr_assert_eq(t.port, 65535);
    cr_assert(t.is_literal);
    assert_v6(&t.addr, t.addrlen, "2001:db8::7", 65535);
    conf_target_deinit(&t);

    cr_assert_eq(conf_parse_target("Users.svc.cluster.local.:1", &t, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_str_eq(t.host, "Users.svc.cluster.local.");
    cr_assert_eq(t.port, 1);
    cr_assert_not(t.is_literal);
    cr_assert_eq(t.addrlen, 0);
    conf_target_deinit(&t);

    static const char *const names[] = {"localhost:80", "my_service:80", "a-b.c-d:80",
                                        "1.2.3.example:80", "x:80"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        cr_assert_eq(conf_parse_target(names[i], &t, err, sizeof(err)), 0, "%s: %s", names[i], err);
        cr_assert_not(t.is_literal);
        conf_target_deinit(&t);
    }
}

Test(conf, parse_target_failure_leaves_nothing_to_free)
{
    struct conf_target t;
    char err[8];

    /* a tiny buffer truncates the message safely */
    cr_assert_eq(conf_parse_target("nope", &t, err, sizeof(err)), -1);
    cr_assert_eq(strlen(err), sizeof(err) - 1);
    cr_assert_null(t.spec);
    cr_assert_null(t.host);
    cr_assert_eq(conf_parse_target("nope", &t, NULL, 0), -1);
    conf_target_deinit(&t);
}

/* ---- files and misc ---- */

Test(conf, load_file_missing)
{
    char err[256];
    struct conf *c = (struct conf *)1;

    cr_assert_eq(conf_load_file("/nonexistent/switchyard.ini", &c, err, sizeof(err)), -1);
    cr_assert_null(c);
    cr_assert_str_eq(err, "/nonexistent/switchyard.ini: cannot open: No such file or directory");
}

Test(conf, load_file_directory)
{
    char err[256];
    struct conf *c = NULL;

    cr_assert_eq(conf_load_file("/", &c, err, sizeof(err)), -1);
    cr_assert_null(c);
    cr_assert_eq(strncmp(err, "/: cannot ", 10), 0, "%s", err);
}

static char *write_temp(const char *text, size_t len)
{
    char *path = strdup("/tmp/test_conf_XXXXXX");
    int fd;

    cr_assert_not_null(path);
    fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

Test(conf, load_file_ok_and_errors_name_the_file)
{
    char err[512];
    struct conf *c = NULL;
    char *path = write_temp(MINIMAL "policy = pick_first\n", strlen(MINIMAL) + 20);
    char *bad = write_temp(MINIMAL "policy = nope\n", strlen(MINIMAL) + 14);
    char want[256];

    cr_assert_eq(conf_load_file(path, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(c->path, path);
    cr_assert_eq(c->clusters[0].policy, CONF_POLICY_PICK_FIRST);
    conf_free(c);

    cr_assert_eq(conf_load_file(bad, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: [cluster.a] policy: expected round_robin, pick_first, ",
             bad);
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "'%s'", err);
    unlink(path);
    unlink(bad);
    free(path);
    free(bad);
}

Test(conf, load_file_rejects_nul_bytes)
{
    char err[512];
    struct conf *c = NULL;
    static const char text[] = "[cluster.a]\ntargets = a:1\0\n";
    char *path = write_temp(text, sizeof(text) - 1);
    char want[256];

    cr_assert_eq(conf_load_file(path, &c, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:2: expected text, got a NUL byte", path);
    cr_assert_str_eq(err, want);
    unlink(path);
    free(path);
}

Test(conf, example_config_loads)
{
    char err[512];
    struct conf *c = NULL;
    const char *top = getenv("SY_TOP");
    char path[1024];

    snprintf(path, sizeof(path), "%s/conf/switchyard.ini", top ? top : ".");
    if (access(path, R_OK) != 0)
        cr_skip_test("%s not found (run from the top of the tree)", path);
    cr_assert_eq(conf_load_file(path, &c, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(c->nclusters, 1);
    cr_assert_str_eq(c->clusters[0].name, "echo");
    cr_assert_eq(c->clusters[0].ntargets, 3);
    assert_v4(&c->proxy.listen_addr, c->proxy.listen_addrlen, "0.0.0.0", 50051);
    assert_v4(&c->admin.listen_addr, c->admin.listen_addrlen, "127.0.0.1", 9901);
    conf_free(c);
}

Test(conf, error_buffer_edge_cases)
{
    struct conf *c = NULL;
    char small[12];

    cr_assert_eq(conf_load_string("[nope]\n", "t.ini", &c, NULL, 0), -1);
    cr_assert_null(c);
    cr_assert_eq(conf_load_string("[nope]\n", "t.ini", &c, small, sizeof(small)), -1);
    cr_assert_str_eq(small, "t.ini:1: [n");
    cr_assert_eq(conf_load_string("[nope]\n", NULL, &c, small, sizeof(small)), -1);
    cr_assert_str_eq(small, "<string>:1:");
}

Test(conf, free_null_and_policy_names)
{
    conf_free(NULL);
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_ROUND_ROBIN), "round_robin");
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_PICK_FIRST), "pick_first");
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_COUNT), "unknown");
}

/* ---- [auth] ---- */

#define AUTH_SECRET "0123456789abcdef0123456789abcdef" /* 32 bytes: the HS256 minimum */

static const char pem_text[] = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";

/* Expects |text| to fail with a message that does not contain |secret|. */
static void expect_err_hides(const char *text, const char *secret, const char *prefix)
{
    char err[1024] = "";
    struct conf *c = NULL;

    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), -1);
    cr_assert_eq(strncmp(err, prefix, strlen(prefix)), 0, "'%s' does not start with '%s'", err,
                 prefix);
    cr_assert_null(strstr(err, secret), "the secret leaked into '%s'", err);
}

Test(conf, auth_defaults)
{
    struct conf *c = load_ok(MINIMAL);
    const struct conf_auth *a = &c->auth;

    cr_assert_eq(a->mode, CONF_AUTH_OFF);
    cr_assert_null(a->secret);
    cr_assert_null(a->secret_file);
    cr_assert_null(a->public_key_file);
    cr_assert_eq(a->nalgorithms, 0);
    cr_assert_null(a->issuer);
    cr_assert_eq(a->naudiences, 0);
    cr_assert_eq(a->leeway_ms, 30000);
    cr_assert_eq(a->nforward_claims, 0);
    cr_assert_not(a->strip_authorization);
    cr_assert_null(a->tokens_file);
    cr_assert_eq(a->nexempt, 1);
    cr_assert_str_eq(a->exempt[0], "/grpc.health.v1.Health/");
    cr_assert_null(a->verifier);
    conf_free(c);
}

Test(conf, auth_empty_section_is_off)
{
    struct conf *c = load_ok(MINIMAL "[auth]\n");

    cr_assert_eq(c->auth.mode, CONF_AUTH_OFF);
    cr_assert_eq(c->auth.nexempt, 1);
    conf_free(c);
}

Test(conf, auth_jwt_every_key)
{
    struct conf *c = load_ok(MINIMAL "[auth]\n"
                                     "mode = jwt\n"
                                     "secret = " AUTH_SECRET AUTH_SECRET "\n"
                                     "algorithms = hs256, HS512\n"
                                     "issuer = https://idp.example/\n"
                                     "audience = users-api, orders-api\n"
                                     "leeway = 5s\n"
                                     "forward_claims = sub, Email,\n"
                                     "  tenant.id\n"
                                     "strip_authorization = on\n"
                                     "exempt = /grpc.health.v1.Health/, /pub.v1.Public/Get\n");
    const struct conf_auth *a = &c->auth;

    cr_assert_eq(a->mode, CONF_AUTH_JWT);
    cr_assert_eq(a->secret_len, 64);
    cr_assert_str_eq(a->secret, AUTH_SECRET AUTH_SECRET);
    cr_assert_eq(a->nalgorithms, 2);
    cr_assert_str_eq(a->algorithms[0], "HS256"); /* canonical spelling */
    cr_assert_str_eq(a->algorithms[1], "HS512");
    cr_assert_str_eq(a->issuer, "https://idp.example/");
    cr_assert_eq(a->naudiences, 2);
    cr_assert_str_eq(a->audiences[1], "orders-api");
    cr_assert_eq(a->leeway_ms, 5000);
    cr_assert_eq(a->nforward_claims, 3);
    cr_assert_str_eq(a->forward_claims[1], "Email");
    cr_assert_str_eq(a->forward_claims[2], "tenant.id");
    cr_assert(a->strip_authorization);
    cr_assert_eq(a->nexempt, 2);
    cr_assert_str_eq(a->exempt[1], "/pub.v1.Public/Get");
    cr_assert_null(a->verifier, "conf never builds the verifier");
    conf_free(c);
}

Test(conf, auth_secret_file_and_public_key_file_are_read)
{
    char *sf = write_temp(AUTH_SECRET "\r\n", strlen(AUTH_SECRET) + 2);
    char *pf = write_temp(pem_text, strlen(pem_text));
    char text[1024];
    struct conf *c;

    snprintf(text, sizeof(text), MINIMAL "[auth]\nmode = jwt\nsecret_file = %s\n", sf);
    c = load_ok(text);
    cr_assert_str_eq(c->auth.secret_file, sf);
    cr_assert_eq(c->auth.secret_len, 32, "the trailing CR/LF is not part of the key");
    cr_assert_eq(memcmp(c->auth.secret, AUTH_SECRET, 32), 0);
    conf_free(c);

    snprintf(text, sizeof(text),
             MINIMAL "[auth]\nmode = jwt\npublic_key_file = %s\nalgorithms = RS256, ES256\n", pf);
    c = load_ok(text);
    cr_assert_str_eq(c->auth.public_key, pem_text);
    cr_assert_eq(c->auth.public_key_len, strlen(pem_text));
    conf_free(c);
    unlink(sf);
    unlink(pf);
    free(sf);
    free(pf);
}

Test(conf, auth_token_mode_reads_tokens)
{
    static const char toks[] = "# CI\n\n  abc-DEF_123  \n# old: zzz\nxyz+/==\n";
    char *tf = write_temp(toks, strlen(toks));
    char text[1024];
    struct conf *c;

    snprintf(text, sizeof(text),
             MINIMAL "[auth]\nmode = token\ntokens_file = %s\nstrip_authorization = yes\n"
                     "exempt =\n",
             tf);
    c = load_ok(text);
    cr_assert_eq(c->auth.mode, CONF_AUTH_TOKEN);
    cr_assert_eq(c->auth.ntokens, 2);
    cr_assert_str_eq(c->auth.tokens[0], "abc-DEF_123");
    cr_assert_str_eq(c->auth.tokens[1], "xyz+/==");
    cr_assert(c->auth.strip_authorization);
    cr_assert_eq(c->auth.nexempt, 0, "an empty exempt exempts nothing");
    conf_free(c);
    unlink(tf);
    free(tf);
}

Test(conf, auth_off_checks_no_file)
{
    struct conf *c = load_ok(MINIMAL "[auth]\nmode = off\nsecret_file = /nonexistent/s\n"
                                     "tokens_file = /nonexistent/t\n");

    cr_assert_eq(c->auth.mode, CONF_AUTH_OFF);
    conf_free(c);
}

Test(conf, auth_secret_from_env)
{
    struct conf *c;

    setenv("SY_TEST_JWT_SECRET", AUTH_SECRET, 1);
    c = load_ok(MINIMAL "[auth]\nmode = jwt\nsecret = ${SY_TEST_JWT_SECRET}\n");
    cr_assert_str_eq(c->auth.secret, AUTH_SECRET);
    conf_free(c);
}

Test(conf, error_auth_mode_and_structure)
{
    expect_err(MINIMAL "[auth]\nmode = oauth\n", "t.ini:4: [auth] mode: expected off, jwt or token",
               NULL);
    expect_err(MINIMAL "[auth]\nmode = jwt\n", "t.ini:3: [auth]: mode = jwt needs one of secret",
               NULL);
    expect_err(MINIMAL "[auth]\nmode = token\n", "t.ini:3: [auth]: mode = token needs tokens_file",
               NULL);
    expect_err(MINIMAL "[auth]\nsecret = " AUTH_SECRET "\n",
               "t.ini:3: [auth]: missing key 'mode' (off, jwt or token); without it secret would "
               "do nothing",
               NULL);
    expect_err(MINIMAL "[auth]\nmode = off\n[auth]\n",
               "t.ini:5: [auth]: duplicate section; first on line 3", NULL);
    expect_err(MINIMAL "[auth]\nsecrett = x\n", "t.ini:4: [auth] secrett: unknown key",
               "secret, secret_file", NULL);
    expect_err(MINIMAL "[auth]\nleeway = soon\n", "t.ini:4: [auth] leeway: expected a duration",
               NULL);
    expect_err(MINIMAL "[auth]\nstrip_authorization = maybe\n",
               "t.ini:4: [auth] strip_authorization: expected on or off", NULL);
    expect_err(MINIMAL "[auth]\nissuer = a b\n",
               "t.ini:4: [auth] issuer: expected a value without spaces", NULL);
    expect_err(MINIMAL "[auth]\nsecret_file =\n", "t.ini:4: [auth] secret_file: expected a file",
               NULL);
    expect_err(MINIMAL "[auth]\nsecret =\n", "t.ini:4: [auth] secret: expected a secret", NULL);
}

Test(conf, error_auth_keys_of_the_other_mode)
{
    expect_err(MINIMAL "[auth]\nmode = token\ntokens_file = /x\nissuer = me\n",
               "t.ini:6: [auth] issuer: applies to mode = jwt only", NULL);
    expect_err(MINIMAL "[auth]\nforward_claims = sub\nmode = token\ntokens_file = /x\n",
               "t.ini:4: [auth] forward_claims: applies to mode = jwt only", NULL);
    expect_err(MINIMAL "[auth]\nmode = jwt\nsecret = " AUTH_SECRET "\ntokens_file = /x\n",
               "t.ini:6: [auth] tokens_file: applies to mode = token only", NULL);
}

Test(conf, error_auth_more_than_one_key)
{
    expect_err(MINIMAL "[auth]\nmode = jwt\nsecret = " AUTH_SECRET "\npublic_key_file = /k.pem\n",
               "t.ini:6: [auth] public_key_file: expected only one of secret, secret_file and "
               "public_key_file; secret is set on line 5",
               NULL);
    expect_err(MINIMAL "[auth]\npublic_key_file = /k.pem\nsecret_file = /s\nmode = jwt\n",
               "t.ini:5: [auth] secret_file: expected only one of",
               "public_key_file is set on line 4", NULL);
}

Test(conf, error_auth_short_secret_is_not_shown)
{
    char *sf = write_temp("tooshort-secret\n", 16);
    char text[1024];

    expect_err_hides(MINIMAL "[auth]\nmode = jwt\nsecret = tooshort-secret\n", "tooshort",
                     "t.ini:5: [auth] secret: expected a secret of at least 32 bytes for HS256");
    snprintf(text, sizeof(text), MINIMAL "[auth]\nmode = jwt\nsecret_file = %s\n", sf);
    expect_err_hides(text, "tooshort",
                     "t.ini:5: [auth] secret_file: expected a secret of at least 32 bytes");
    expect_err_hides(MINIMAL "[auth]\nmode = jwt\nsecret = " AUTH_SECRET "\nalgorithms = HS512\n",
                     AUTH_SECRET,
                     "t.ini:6: [auth] algorithms: HS512 needs a secret of at least 64");
    expect_err_hides(MINIMAL "[auth]\nsecret = " AUTH_SECRET "\n  more-s3cr3t\n", "s3cr3t",
                     "t.ini:5: [auth] secret: expected the value on one line");
    /* a broken ${ in a secret does not echo it either */
    expect_err_hides(MINIMAL "[auth]\nmode = jwt\nsecret = s3cr3t-value${\n", "s3cr3t",
                     "t.ini:5: [auth] secret: expected ${NAME}");
    unlink(sf);
    free(sf);
}

Test(conf, error_auth_files_name_the_file)
{
    char *empty = write_temp("", 0);
    char *notpem = write_temp("ssh-rsa AAAA\n", 13);
    char *badtok = write_temp("good\nhas space-secret\n", 22);
    char text[1024];

    expect_err(MINIMAL "[auth]\nmode = jwt\nsecret_file = /nonexistent/key\n",
               "t.ini:5: [auth] secret_file: cannot open /nonexistent/key: No such file", NULL);
    expect_err(MINIMAL "[auth]\nmode = jwt\npublic_key_file = /nonexistent/k.pem\n",
               "t.ini:5: [auth] public_key_file: cannot open /nonexistent/k.pem", NULL);
    expect_err(MINIMAL "[auth]\nmode = token\ntokens_file = /nonexistent/t\n",
               "t.ini:5: [auth] tokens_file: cannot open /nonexistent/t", NULL);
    expect_err(MINIMAL "[auth]\nmode = jwt\npublic_key_file = /\n",
               "t.ini:5: [auth] public_key_file: cannot read /: Is a directory", NULL);
    snprintf(text, sizeof(text), MINIMAL "[auth]\nmode = jwt\npublic_key_file = %s\n", notpem);
    expect_err(text, "t.ini:5: [auth] public_key_file: expected a PEM public key", notpem, NULL);
    snprintf(text, sizeof(text), MINIMAL "[auth]\nmode = token\ntokens_file = %s\n", empty);
    expect_err(text, "t.ini:5: [auth] tokens_file: expected at least one token", empty, NULL);
    snprintf(text, sizeof(text), MINIMAL "[auth]\nmode = token\ntokens_file = %s\n", badtok);
    expect_err(text, "t.ini:5: [auth] tokens_file: ", ":2: expected one token per line", NULL);
    expect_err_hides(text, "space-secret", "t.ini:5: [auth] tokens_file: ");
    unlink(empty);
    unlink(notpem);
    unlink(badtok);
    free(empty);
    free(notpem);
    free(badtok);
}

Test(conf, error_auth_algorithms)
{
    char *pf = write_temp(pem_text, strlen(pem_text));
    char text[1024];

    expect_err(MINIMAL "[auth]\nalgorithms = none\n", "t.ini:4: [auth] algorithms: expected HS256",
               "'none' would accept unsigned tokens", NULL);
    expect_err(MINIMAL "[auth]\nalgorithms = PS256\n", "t.ini:4: [auth] algorithms: expected",
               "got 'PS256'", NULL);
    expect_err(MINIMAL "[auth]\nalgorithms = RS256, rs256\n",
               "t.ini:4: [auth] algorithms: expected each algorithm once", NULL);
    expect_err(MINIMAL "[auth]\nmode = jwt\nsecret = " AUTH_SECRET "\nalgorithms = RS256\n",
               "t.ini:6: [auth] algorithms: expected HS256, HS384 or HS512 with secret", NULL);
    snprintf(text, sizeof(text),
             MINIMAL "[auth]\nmode = jwt\npublic_key_file = %s\nalgorithms = ES256, HS256\n", pf);
    expect_err(text, "t.ini:6: [auth] algorithms: expected RS256", "accepts forged tokens",
               "got 'HS256'", NULL);
    unlink(pf);
    free(pf);
}

Test(conf, error_auth_lists)
{
    expect_err(MINIMAL "[auth]\nforward_claims = sub, a b\n",
               "t.ini:4: [auth] forward_claims: expected a claim name", "got 'a b'", NULL);
    expect_err(MINIMAL "[auth]\nforward_claims = sub, Sub\n",
               "t.ini:4: [auth] forward_claims: expected each claim once", NULL);
    expect_err(MINIMAL "[auth]\nforward_claims = a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p,\n"
                       "  q, r, s, t, u, v, w, x, y, z, aa, bb, cc, dd, ee, ff, gg\n",
               "t.ini:5: [auth] forward_claims: expected at most 32 claims", NULL);
    expect_err(MINIMAL "[auth]\nexempt = grpc.health.v1.Health/\n",
               "t.ini:4: [auth] exempt: expected a method /pkg.Service/Method or a whole service "
               "/pkg.Service/",
               "got 'grpc.health.v1.Health/'", NULL);
    /* issue 12.9: partial names, traversal, encodings and whole trees are refused */
    static const char *const bad_exempt[] = {"/",        "/pub.v1.",  "/sy.test.Echo/Un/",
                                             "/a/../b/", "/a/./",     "/a//",
                                             "//",       "/a/%2e%2e", "/a/b?x",
                                             "/a/b#f",   "/a/b/c",    "/a/b/c/"};
    for (size_t i = 0; i < sizeof(bad_exempt) / sizeof(bad_exempt[0]); i++) {
        char text[256], got[128];

        snprintf(text, sizeof(text), MINIMAL "[auth]\nexempt = %s\n", bad_exempt[i]);
        snprintf(got, sizeof(got), "got '%s'", bad_exempt[i]);
        expect_err(text, "t.ini:4: [auth] exempt: expected a method", got, NULL);
    }
    expect_err(MINIMAL "[auth]\nexempt = /a/, /a/\n",
               "t.ini:4: [auth] exempt: expected each entry once", NULL);
    expect_err(MINIMAL "[auth]\naudience = a,,b\n",
               "t.ini:4: [auth] audience: expected a non-empty item", NULL);
}

/* ---- TLS keys ---- */

/* A readable file for the TLS keys (conf only checks that it can be opened). */
static char *tls_tmpfile(void)
{
    char *p = strdup("/tmp/sy-conf-tls-XXXXXX");
    int fd = mkstemp(p);

    cr_assert_geq(fd, 0);
    close(fd);
    return p;
}

Test(conf, tls_defaults)
{
    struct conf *c = load_ok(MINIMAL);

    cr_assert_null(c->proxy.listen_tls);
    cr_assert_null(c->proxy.tls_cert);
    cr_assert_null(c->proxy.tls_key);
    cr_assert_null(c->proxy.tls_client_ca);
    cr_assert_eq(c->proxy.tls_min_version, CONF_TLS_1_2);
    cr_assert_not(c->clusters[0].tls);
    cr_assert(c->clusters[0].tls_verify);
    cr_assert_null(c->clusters[0].tls_ca);
    cr_assert_null(c->clusters[0].tls_server_name);
    cr_assert_null(c->clusters[0].tls_cert);
    cr_assert_null(c->clusters[0].tls_key);
    cr_assert_null(c->tls);
    conf_free(c);
}

Test(conf, tls_every_key)
{
    char *f = tls_tmpfile();
    char text[2048];
    struct conf *c;

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = off\nlisten_tls = 127.0.0.1:50443\ntls_cert = %s\ntls_key = %s\n"
             "tls_client_ca = %s\ntls_min_version = 1.3\n"
             "[cluster.a]\ntargets = 127.0.0.1:50061\ntls = on\ntls_ca = %s\n"
             "tls_server_name = a.internal\ntls_cert = %s\ntls_key = %s\ntls_verify = off\n",
             f, f, f, f, f, f);
    c = load_ok(text);
    cr_assert_null(c->proxy.listen);
    cr_assert_str_eq(c->proxy.listen_tls, "127.0.0.1:50443");
    cr_assert_eq(ntohs(sin4(&c->proxy.listen_tls_addr)->sin_port), 50443);
    cr_assert_str_eq(c->proxy.tls_cert, f);
    cr_assert_str_eq(c->proxy.tls_key, f);
    cr_assert_str_eq(c->proxy.tls_client_ca, f);
    cr_assert_eq(c->proxy.tls_min_version, CONF_TLS_1_3);
    cr_assert(c->clusters[0].tls);
    cr_assert_str_eq(c->clusters[0].tls_ca, f);
    cr_assert_str_eq(c->clusters[0].tls_server_name, "a.internal");
    cr_assert_str_eq(c->clusters[0].tls_cert, f);
    cr_assert_str_eq(c->clusters[0].tls_key, f);
    cr_assert_not(c->clusters[0].tls_verify);
    conf_free(c);
    /* both listeners together */
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:50051\nlisten_tls = 127.0.0.1:50443\ntls_cert = %s\n"
             "tls_key = %s\n" MINIMAL,
             f, f);
    c = load_ok(text);
    cr_assert_str_eq(c->proxy.listen, "127.0.0.1:50051");
    cr_assert_str_eq(c->proxy.listen_tls, "127.0.0.1:50443");
    conf_free(c);
    unlink(f);
    free(f);
}

Test(conf, error_tls_proxy)
{
    char *f = tls_tmpfile();
    char text[2048];

    expect_err("[proxy]\nlisten = off\n" MINIMAL,
               "t.ini:2: [proxy] listen: expected an address when listen_tls is not set", NULL);
    expect_err("[proxy]\nlisten_tls = 127.0.0.1:50443\n" MINIMAL,
               "t.ini:2: [proxy] listen_tls: expected tls_cert and tls_key", NULL);
    expect_err("[proxy]\nlisten_tls = users:50443\n" MINIMAL,
               "t.ini:2: [proxy] listen_tls: expected an IP address and port", NULL);
    snprintf(text, sizeof(text), "[proxy]\nlisten_tls = 127.0.0.1:50443\ntls_cert = %s\n" MINIMAL,
             f);
    expect_err(text, "t.ini:3: [proxy] tls_cert: expected tls_key as well", NULL);
    snprintf(text, sizeof(text), "[proxy]\ntls_cert = %s\ntls_key = %s\n" MINIMAL, f, f);
    expect_err(text, "t.ini:2: [proxy] tls_cert: expected listen_tls as well", NULL);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten_tls = 127.0.0.1:50443\ntls_cert = /nonexistent/c.pem\n"
             "tls_key = %s\n" MINIMAL,
             f);
    expect_err(text, "t.ini:3: [proxy] tls_cert: expected a readable PEM file",
               "got '/nonexistent/c.pem'", "No such file", NULL);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten_tls = 127.0.0.1:50443\ntls_cert = %s\ntls_key = %s\n"
             "tls_client_ca = /nonexistent/ca.pem\n" MINIMAL,
             f, f);
    expect_err(text, "t.ini:5: [proxy] tls_client_ca: expected a readable PEM file", NULL);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten_tls = 127.0.0.1:50443\ntls_cert = %s\ntls_key = %s\n"
             "tls_min_version = 1.1\n" MINIMAL,
             f, f);
    expect_err(text, "t.ini:5: [proxy] tls_min_version: expected", "1.2", "1.3", "got '1.1'", NULL);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:50051\nlisten_tls = 127.0.0.1:50051\ntls_cert = %s\n"
             "tls_key = %s\n" MINIMAL,
             f, f);
    expect_err(text, "t.ini:3: [proxy] listen_tls: expected an address other than", NULL);
    expect_err("[proxy]\ntls_cert =\n" MINIMAL, "t.ini:2: [proxy] tls_cert: expected a file name",
               NULL);
    unlink(f);
    free(f);
}

Test(conf, error_tls_cluster)
{
    char *f = tls_tmpfile();
    char text[2048];

    snprintf(text, sizeof(text), MINIMAL "tls_ca = %s\n", f);
    expect_err(text, "t.ini:3: [cluster.a] tls_ca: expected tls = on as well", NULL);
    expect_err(MINIMAL "tls_verify = off\n",
               "t.ini:3: [cluster.a] tls_verify: expected tls = on as well", NULL);
    expect_err(MINIMAL "tls = maybe\n", "t.ini:3: [cluster.a] tls: expected on or off", NULL);
    expect_err(MINIMAL "tls = on\ntls_ca = /nonexistent/ca.pem\n",
               "t.ini:4: [cluster.a] tls_ca: expected a readable PEM file", NULL);
    snprintf(text, sizeof(text), MINIMAL "tls = on\ntls_key = %s\n", f);
    expect_err(text, "t.ini:4: [cluster.a] tls_key: expected tls_cert as well", NULL);
    snprintf(text, sizeof(text), MINIMAL "tls = on\ntls_cert = %s\ntls_key = /nonexistent/k\n", f);
    expect_err(text, "t.ini:5: [cluster.a] tls_key: expected a readable PEM file", NULL);
    expect_err(MINIMAL "tls = on\ntls_server_name = a b\n",
               "t.ini:4: [cluster.a] tls_server_name: expected a value without spaces", NULL);
    unlink(f);
    free(f);
}

/* ---- load-balancing keys (balancer/) ---- */

Test(conf, balancer_defaults)
{
    struct conf *c = load_ok(MINIMAL);
    const struct conf_cluster *cl = &c->clusters[0];

    cr_assert_eq(cl->policy, CONF_POLICY_ROUND_ROBIN);
    cr_assert_eq(cl->targets[0].weight, 1);
    cr_assert_eq(cl->least_request_choices, 2);
    cr_assert_eq(cl->hash_on, CONF_HASH_NONE);
    cr_assert_null(cl->hash_header);
    cr_assert_eq(cl->ring_min_size, 1024);
    cr_assert_not(cl->pick_first_failback);
    cr_assert_eq(cl->slow_start_ms, 0);
    conf_free(c);
}

Test(conf, balancer_every_policy_and_its_keys)
{
    struct conf *c = load_ok("[cluster.lr]\ntargets = 127.0.0.1:1\npolicy = least_request\n"
                             "least_request_choices = 3\nslow_start = 30s\nroutes = /lr/\n"
                             "[cluster.rh]\ntargets = 127.0.0.1:2\npolicy = ring_hash\n"
                             "hash_on = header:X-User-Id\nring_min_size = 4096\nroutes = /rh/\n"
                             "[cluster.rp]\ntargets = 127.0.0.1:3\npolicy = RING_HASH\n"
                             "hash_on = peer\nroutes = /rp/\n"
                             "[cluster.pf]\ntargets = 127.0.0.1:4\npolicy = pick_first\n"
                             "pick_first_failback = on\nroutes = /pf/\n"
                             "[cluster.rnd]\ntargets = 127.0.0.1:5\npolicy = random\n"
                             "routes = /rnd/\n"
                             "[cluster.rr]\ntargets = 127.0.0.1:6\nslow_start = 1m\n");

    cr_assert_eq(c->nclusters, 6);
    cr_assert_eq(c->clusters[0].policy, CONF_POLICY_LEAST_REQUEST);
    cr_assert_eq(c->clusters[0].least_request_choices, 3);
    cr_assert_eq(c->clusters[0].slow_start_ms, 30000);
    cr_assert_eq(c->clusters[1].policy, CONF_POLICY_RING_HASH);
    cr_assert_eq(c->clusters[1].hash_on, CONF_HASH_HEADER);
    cr_assert_str_eq(c->clusters[1].hash_header, "x-user-id", "header names are lower-cased");
    cr_assert_eq(c->clusters[1].ring_min_size, 4096);
    cr_assert_eq(c->clusters[2].hash_on, CONF_HASH_PEER);
    cr_assert_null(c->clusters[2].hash_header);
    cr_assert_eq(c->clusters[3].policy, CONF_POLICY_PICK_FIRST);
    cr_assert(c->clusters[3].pick_first_failback);
    cr_assert_eq(c->clusters[4].policy, CONF_POLICY_RANDOM);
    cr_assert_eq(c->clusters[5].slow_start_ms, 60000);
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_LEAST_REQUEST), "least_request");
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_RING_HASH), "ring_hash");
    cr_assert_str_eq(conf_policy_name(CONF_POLICY_RANDOM), "random");
    conf_free(c);
}

Test(conf, balancer_target_weights)
{
    struct conf *c = load_ok("[cluster.a]\n"
                             "targets = a.example:50051 weight=3, b.example:50051,\n"
                             "    10.0.0.1:1\tweight=1, [::1]:7   WEIGHT=1000 ,\n"
                             "    c.example:2 weight=${W:-7}\n");
    const struct conf_cluster *cl = &c->clusters[0];

    cr_assert_eq(cl->ntargets, 5);
    cr_assert_str_eq(cl->targets[0].spec, "a.example:50051", "the option is not part of the spec");
    cr_assert_eq(cl->targets[0].weight, 3);
    cr_assert_eq(cl->targets[1].weight, 1);
    cr_assert_eq(cl->targets[2].weight, 1);
    cr_assert_str_eq(cl->targets[3].spec, "[::1]:7");
    cr_assert(cl->targets[3].is_literal);
    cr_assert_eq(cl->targets[3].weight, 1000);
    cr_assert_eq(cl->targets[4].weight, 7);
    conf_free(c);
}

Test(conf, error_balancer_target_weights)
{
    static const char *const bad[] = {
        "a:1 weight=0", "a:1 weight=1001", "a:1 weight=",
        "a:1 weight=x", "a:1 weight=-1",   "a:1 weight=2 weight=3",
        "a:1 w=2",      "a:1 2",           "a:1 weight = 2",
    };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[256], want[256];

        snprintf(text, sizeof(text), "[cluster.a]\ntargets = %s\n", bad[i]);
        snprintf(want, sizeof(want),
                 "t.ini:2: [cluster.a] targets: expected HOST:PORT optionally followed by one "
                 "weight=N with N in 1..1000, got '%s'",
                 bad[i]);
        expect_err_eq(text, want);
    }
    /* the target itself is still checked */
    expect_err("[cluster.a]\ntargets = a weight=2\n",
               "t.ini:2: [cluster.a] targets: expected HOST:PORT (the port is required), got 'a'",
               NULL);
    /* an '=' on a continuation line is still an indented key, unless it is weight= */
    expect_err("[cluster.a]\ntargets = a:1,\n    b:2 policy=random\n",
               "t.ini:3: [cluster.a] targets: expected more items on this indented continuation "
               "line",
               NULL);
    expect_err("[cluster.a]\ntargets = a:1,\n    weight=2\n",
               "t.ini:3: [cluster.a] targets: expected more items", NULL);
}

Test(conf, error_balancer_keys)
{
    expect_err(MINIMAL "least_request_choices = 1\npolicy = least_request\n",
               "t.ini:3: [cluster.a] least_request_choices: expected an integer in 2..64, got '1'",
               NULL);
    expect_err(MINIMAL "policy = least_request\nleast_request_choices = 65\n",
               "t.ini:4: [cluster.a] least_request_choices: expected an integer in 2..64", NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = header:\n",
               "t.ini:4: [cluster.a] hash_on: expected header:NAME (a request header such as "
               "header:x-user-id) or peer (the client's IP address), got 'header:'",
               NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = cookie:session\n",
               "t.ini:4: [cluster.a] hash_on: expected header:NAME", "got 'cookie:session'", NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = header:x user\n",
               "t.ini:4: [cluster.a] hash_on: expected header:NAME", NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = header::authority\n",
               "t.ini:4: [cluster.a] hash_on: expected header:NAME", NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = peer\nring_min_size = 0\n",
               "t.ini:5: [cluster.a] ring_min_size: expected an integer in 1..8388608, got '0'",
               NULL);
    expect_err(MINIMAL "policy = ring_hash\nhash_on = peer\nring_min_size = 8388609\n",
               "t.ini:5: [cluster.a] ring_min_size: expected an integer in 1..8388608", NULL);
    expect_err(MINIMAL "policy = pick_first\npick_first_failback = sometimes\n",
               "t.ini:4: [cluster.a] pick_first_failback: expected on or off, got 'sometimes'",
               NULL);
    expect_err(MINIMAL "slow_start = soon\n",
               "t.ini:3: [cluster.a] slow_start: expected a duration such as 250ms, 5s or 1m, got "
               "'soon'",
               NULL);
}

Test(conf, error_ring_hash_needs_hash_on)
{
    expect_err_eq(MINIMAL "policy = ring_hash\n",
                  "t.ini:3: [cluster.a] policy: ring_hash needs hash_on = header:NAME or hash_on "
                  "= peer (what to hash)");
    /* reported at the end of the section, also when more keys follow */
    expect_err(MINIMAL "policy = ring_hash\nring_min_size = 10\n[cluster.b]\ntargets = b:1\n",
               "t.ini:3: [cluster.a] policy: ring_hash needs hash_on", NULL);
}

Test(conf, error_policy_keys_with_another_policy)
{
    expect_err_eq(MINIMAL "least_request_choices = 3\n",
                  "t.ini:3: [cluster.a] least_request_choices: applies to policy = least_request "
                  "only; this cluster has policy = round_robin");
    expect_err_eq(MINIMAL "hash_on = peer\npolicy = random\n",
                  "t.ini:3: [cluster.a] hash_on: applies to policy = ring_hash only; this cluster "
                  "has policy = random");
    expect_err_eq(MINIMAL "ring_min_size = 64\n",
                  "t.ini:3: [cluster.a] ring_min_size: applies to policy = ring_hash only; this "
                  "cluster has policy = round_robin");
    expect_err_eq(MINIMAL "policy = least_request\npick_first_failback = on\n",
                  "t.ini:4: [cluster.a] pick_first_failback: applies to policy = pick_first only; "
                  "this cluster has policy = least_request");
    expect_err_eq(MINIMAL "slow_start = 10s\npolicy = pick_first\n",
                  "t.ini:3: [cluster.a] slow_start: applies to policy = round_robin and "
                  "least_request only; this cluster has policy = pick_first");
    expect_err(MINIMAL "policy = ring_hash\nhash_on = peer\nslow_start = 10s\n",
               "t.ini:5: [cluster.a] slow_start: applies to policy = round_robin and "
               "least_request only",
               NULL);
}

/* REST transcoding keys (issue 16): transcode needs descriptors, the others
 * need transcode; the file itself is read by the transcoder, not here. */
Test(conf, transcode_keys)
{
    struct conf *c = load_ok("[cluster.a]\ntargets = 127.0.0.1:1\ntranscode = on\n"
                             "descriptors = reflection\nstream_format = ndjson\n");

    cr_assert(c->clusters[0].transcode);
    cr_assert_str_eq(c->clusters[0].descriptors, "reflection");
    cr_assert_eq(c->clusters[0].stream_format, CONF_STREAM_NDJSON);
    conf_free(c);
    c = load_ok(MINIMAL);
    cr_assert(!c->clusters[0].transcode);
    cr_assert_null(c->clusters[0].descriptors);
    cr_assert_eq(c->clusters[0].stream_format, CONF_STREAM_ARRAY);
    conf_free(c);
    expect_err("[cluster.a]\ntargets = 127.0.0.1:1\ntranscode = on\n",
               "t.ini:3: [cluster.a] transcode: transcode = on needs descriptors", NULL);
    expect_err("[cluster.a]\ntargets = 127.0.0.1:1\ndescriptors = /x.pb\n",
               "t.ini:3: [cluster.a] descriptors: descriptors needs transcode = on", NULL);
    expect_err("[cluster.a]\ntargets = 127.0.0.1:1\nstream_format = ndjson\n",
               "t.ini:3: [cluster.a] stream_format: stream_format needs transcode = on", NULL);
    expect_err("[cluster.a]\ntargets = 127.0.0.1:1\ntranscode = on\ndescriptors = r\n"
               "stream_format = lines\n",
               "t.ini:5: [cluster.a] stream_format: expected array or ndjson", NULL);
}
