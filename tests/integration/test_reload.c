/* Integration tests of SIGHUP reload against a real switchyard and real
 * sy-backends: reloads under continuous /status and /metrics polling, the
 * reload report (log, /status, /metrics), log_level applied, and endpoints a
 * reload removed staying visible as "draining" until their calls end.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/peers/gclient.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define NB      3
#define PROXY_T 15000
#define NPOLL   6 /* threads polling /status and /metrics */

static struct sup_backend be[NB];
static struct sup_proxy px;
static int admin_port;

static void start_backends(void)
{
    memset(&px, 0, sizeof(px));
    cr_assert_eq(sup_start_backends(be, NB, NULL), 0, "sy-backends did not start");
}

static void stop_all(void)
{
    if (px.proc && sup_alive(px.proc))
        sup_stop(px.proc, PROXY_T);
    sup_stop_all();
}

TestSuite(reload, .init = start_backends, .fini = stop_all, .timeout = 120);

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 80);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

/* Replaces the config file atomically (a reload never reads half a file). */
static void write_conf(const char *text)
{
    char tmp[600];
    FILE *f;

    snprintf(tmp, sizeof(tmp), "%s.new", px.conf);
    f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(rename(tmp, px.conf), 0);
}

static int workers = 2; /* [proxy] workers of the next conf_text() */

/* [proxy] and [admin] with |proxy_extra|, then cluster "echo" on |echo_targets|
 * and |nextra| more clusters x1..xN on b1 and b2 (health checking off). */
static void conf_text(char *buf, size_t len, const char *proxy_extra, const char *echo_targets,
                      int nextra)
{
    int n = snprintf(buf, len,
                     "[proxy]\nlisten = 127.0.0.1:%d\nworkers = %d\ndrain_timeout = 10s\n%s\n"
                     "[admin]\nlisten = 127.0.0.1:%d\n"
                     "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
                     px.port, workers, proxy_extra ? proxy_extra : "", admin_port, echo_targets);

    for (int i = 1; i <= nextra; i++)
        n += snprintf(buf + n, len - (size_t)n,
                      "[cluster.x%d]\ntargets = %s, %s\nroutes = /x%d.\nhealth_check = off\n", i,
                      be[1].addr, be[2].addr, i);
    cr_assert_lt((size_t)n, len);
}

static void start_proxy(const char *text)
{
    cr_assert_eq(sup_start_proxy(&px, "switchyard", px.port, text, PROXY_T), 0,
                 "switchyard did not start");
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "admin did not listen");
}

static void pick_ports(void)
{
    px.port = sup_free_port();
    admin_port = sup_free_port();
    cr_assert_gt(px.port, 0);
    cr_assert_gt(admin_port, 0);
}

static json_t *get_status(void)
{
    json_t *j = sup_http_get_json(admin_port, "/status");

    cr_assert_not_null(j, "GET /status failed");
    return j;
}

/* ---- reloads under polling (issue 12.1) ---- */

struct poller {
    atomic_bool stop;
    atomic_int ok, failed;
};

static void *poll_run(void *arg)
{
    struct poller *p = arg;

    while (!atomic_load(&p->stop)) {
        static const char *const paths[] = {"/status", "/metrics"};

        for (int i = 0; i < 2; i++) {
            struct sup_http_resp r;

            if (sup_http_get(admin_port, paths[i], &r) == 0 && r.code == 200)
                atomic_fetch_add(&p->ok, 1);
            else
                atomic_fetch_add(&p->failed, 1);
            sup_http_resp_free(&r);
        }
    }
    return NULL;
}

static int count_clusters(void)
{
    json_t *j = get_status();
    int n = (int)json_array_size(json_object_get(j, "clusters"));

    json_decref(j);
    return n;
}

Test(reload, thirty_reloads_under_status_and_metrics_polling)
{
    static struct poller p;
    pthread_t th[NPOLL];
    char text[16384];
    int last = 0;

    memset(&p, 0, sizeof(p));
    pick_ports();
    conf_text(text, sizeof(text), NULL, be[0].addr, 0);
    start_proxy(text);
    for (int i = 0; i < NPOLL; i++)
        pthread_create(&th[i], NULL, poll_run, &p);
    while (atomic_load(&p.ok) < 20)
        sup_sleep_ms(5);
    /* Clusters come and go: every other reload adds 4..24, the next removes them. */
    for (int i = 0; i < 30; i++) {
        int ok_before = atomic_load(&p.ok);

        last = i % 2 == 0 ? 4 * (1 + (i / 2) % 6) : 0;
        conf_text(text, sizeof(text), NULL, be[0].addr, last);
        write_conf(text);
        cr_assert_eq(sup_signal(px.proc, SIGHUP), 0, "switchyard died before reload %d", i + 1);
        /* let the pollers land a few requests around each reload */
        while (atomic_load(&p.ok) < ok_before + 20 && sup_alive(px.proc))
            sup_sleep_ms(2);
        if (!sup_alive(px.proc))
            break;
    }
    atomic_store(&p.stop, true);
    for (int i = 0; i < NPOLL; i++)
        pthread_join(th[i], NULL);
    if (!sup_alive(px.proc))
        sup_dump_log(px.proc, 60);
    cr_assert(sup_alive(px.proc), "switchyard died during the reloads");
    cr_assert_eq(atomic_load(&p.failed), 0, "%d admin requests failed (%d answered)",
                 atomic_load(&p.failed), atomic_load(&p.ok));
    cr_assert_eq(count_clusters(), 1 + last);
    stop_proxy_clean();
}

/* ---- the reload report (issue 19) ---- */

static char *get_metrics(void)
{
    struct sup_http_resp r;
    char *body;

    cr_assert_eq(sup_http_get(admin_port, "/metrics", &r), 0, "GET /metrics failed");
    cr_assert_eq(r.code, 200);
    body = r.body;
    r.body = NULL;
    sup_http_resp_free(&r);
    return body;
}

/* The value of the sample line that starts with |sample| and a space. */
static double metric(const char *text, const char *sample)
{
    size_t len = strlen(sample);

    for (const char *p = text; p != NULL && *p != '\0'; p = strchr(p, '\n'), p = p ? p + 1 : p) {
        if (strncmp(p, sample, len) == 0 && p[len] == ' ')
            return strtod(p + len + 1, NULL);
    }
    cr_assert_fail("no sample %s in:\n%s", sample, text);
    return 0;
}

struct reload_wait {
    const char *key; /* "successes" or "failures" */
    long want;
};

static bool reloads_reach(void *arg)
{
    struct reload_wait *w = arg;
    json_t *j = get_status();
    long n = (long)json_integer_value(json_object_get(json_object_get(j, "reload"), w->key));

    json_decref(j);
    return n >= w->want;
}

static void reload_and_wait(const char *text, const char *key, long want)
{
    struct reload_wait w = {key, want};

    write_conf(text);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_poll(reloads_reach, &w, 10000), "/status never counted %s = %ld", key, want);
}

static int count_in_log(const char *needle)
{
    char *t = sup_read_file(px.proc->err_path);
    int n = 0;

    for (const char *p = t; p != NULL && (p = strstr(p, needle)) != NULL; p++)
        n++;
    free(t);
    return n;
}

Test(reload, reports_good_and_bad_reloads_and_applies_log_level)
{
    char text[4096], targets[128], *m;
    json_t *j, *ri;

    pick_ports();
    workers = 2;
    conf_text(text, sizeof(text), NULL, be[0].addr, 0);
    start_proxy(text);
    j = get_status();
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(j, "reload"), "result")),
                     "none");
    json_decref(j);
    m = get_metrics();
    cr_assert_eq(metric(m, "switchyard_config_last_reload_success"), 1);
    cr_assert_eq(metric(m, "switchyard_config_reloads_total{result=\"success\"}"), 0);
    free(m);

    /* good: a target and a cluster added, a restart-only setting changed */
    workers = 3;
    snprintf(targets, sizeof(targets), "%s, %s", be[0].addr, be[1].addr);
    conf_text(text, sizeof(text), NULL, targets, 1);
    reload_and_wait(text, "successes", 1);
    j = get_status();
    ri = json_object_get(j, "reload");
    cr_assert_str_eq(json_string_value(json_object_get(ri, "result")), "success");
    cr_assert(json_is_string(json_object_get(ri, "time")));
    cr_assert_null(json_object_get(ri, "error"));
    json_decref(j);
    m = get_metrics();
    cr_assert_eq(metric(m, "switchyard_config_reloads_total{result=\"success\"}"), 1);
    cr_assert_eq(metric(m, "switchyard_config_reloads_total{result=\"failure\"}"), 0);
    cr_assert_eq(metric(m, "switchyard_config_last_reload_success"), 1);
    cr_assert_gt(metric(m, "switchyard_config_last_reload_timestamp_seconds"), 1.6e9);
    free(m);
    cr_assert(sup_file_contains(px.proc->err_path, "reload: clusters added: x1"));
    {
        char want[160];

        snprintf(want, sizeof(want), "reload: cluster echo changed: targets added: %s", be[1].addr);
        cr_assert(sup_file_contains(px.proc->err_path, want), "no '%s' in the log", want);
    }
    cr_assert(sup_file_contains(px.proc->err_path, "[proxy] workers changed from 2 to 3"));
    cr_assert(sup_file_contains(px.proc->err_path, "next restart"));

    /* bad: the running configuration stays; /status and /metrics say why */
    {
        FILE *f = fopen(px.conf, "a");

        cr_assert_not_null(f);
        fputs("[cluster.broken]\nroutes = /broken.\n", f);
        fclose(f);
    }
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    {
        struct reload_wait w = {"failures", 1};

        cr_assert(sup_poll(reloads_reach, &w, 10000), "the failed reload was not counted");
    }
    j = get_status();
    ri = json_object_get(j, "reload");
    cr_assert_str_eq(json_string_value(json_object_get(ri, "result")), "failure");
    cr_assert_not_null(strstr(json_string_value(json_object_get(ri, "error")), "[cluster.broken]"),
                       "%s", json_string_value(json_object_get(ri, "error")));
    cr_assert_eq(json_array_size(json_object_get(j, "clusters")), 2, "the running conf changed");
    json_decref(j);
    m = get_metrics();
    cr_assert_eq(metric(m, "switchyard_config_reloads_total{result=\"failure\"}"), 1);
    cr_assert_eq(metric(m, "switchyard_config_last_reload_success"), 0);
    free(m);

    /* log_level: warn from now on, so the next reload logs no info line */
    cr_assert_eq(count_in_log("configuration reloaded"), 1);
    conf_text(text, sizeof(text), "log_level = warn", targets, 0);
    reload_and_wait(text, "successes", 2);
    cr_assert(sup_file_contains(px.proc->err_path, "reload: clusters removed: x1"));
    cr_assert(sup_file_contains(px.proc->err_path, "log_level info -> warn"));
    cr_assert_eq(count_in_log("configuration reloaded"), 2);
    conf_text(text, sizeof(text), "log_level = warn", be[0].addr, 0);
    reload_and_wait(text, "successes", 3);
    cr_assert_eq(count_in_log("configuration reloaded"), 2, "log_level = warn was not applied");
    cr_assert_eq(count_in_log("targets removed"), 0, "an info line passed log_level = warn");
    stop_proxy_clean();
}

/* ---- endpoints a reload removed stay visible while they drain (issue 19) ---- */

static void *long_stream(void *arg)
{
    struct gc_result *res = arg;
    struct gc_opts o;

    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 3;
    o.delay_ms = 1000;
    gc_call(px.addr, &o, res);
    return NULL;
}

/* The /status entry of |addr| in cluster |cluster|, or NULL (a new reference). */
static json_t *find_ep(const char *cluster, const char *addr)
{
    json_t *j = get_status(), *clusters = json_object_get(j, "clusters"), *found = NULL;

    for (size_t i = 0; i < json_array_size(clusters); i++) {
        json_t *c = json_array_get(clusters, i), *eps = json_object_get(c, "endpoints");

        if (strcmp(json_string_value(json_object_get(c, "name")), cluster) != 0)
            continue;
        for (size_t k = 0; k < json_array_size(eps); k++) {
            json_t *e = json_array_get(eps, k);

            if (strcmp(json_string_value(json_object_get(e, "address")), addr) == 0)
                found = json_incref(e);
        }
    }
    json_decref(j);
    return found;
}

static bool b0_gone(void *arg)
{
    json_t *e = find_ep("echo", be[0].addr);

    (void)arg;
    json_decref(e);
    return e == NULL;
}

Test(reload, a_removed_endpoint_shows_as_draining_until_its_calls_end)
{
    char text[4096];
    pthread_t th;
    struct gc_result res;
    json_t *e;

    pick_ports();
    workers = 2;
    conf_text(text, sizeof(text), NULL, be[0].addr, 0);
    start_proxy(text);
    pthread_create(&th, NULL, long_stream, &res);
    sup_sleep_ms(500); /* the stream is running on b0 */
    conf_text(text, sizeof(text), NULL, be[1].addr, 0);
    write_conf(text);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    {
        struct reload_wait w = {"successes", 1};

        cr_assert(sup_poll(reloads_reach, &w, 10000), "no reload");
    }
    e = find_ep("echo", be[0].addr);
    cr_assert_not_null(e, "the removed endpoint vanished while its call runs");
    cr_assert_str_eq(json_string_value(json_object_get(e, "state")), "draining");
    cr_assert(json_is_false(json_object_get(e, "in_rotation")));
    cr_assert_eq(json_integer_value(json_object_get(e, "active_calls")), 1);
    json_decref(e);
    e = find_ep("echo", be[1].addr);
    cr_assert_not_null(e);
    cr_assert_str_eq(json_string_value(json_object_get(e, "state")), "in_rotation");
    json_decref(e);
    pthread_join(th, NULL);
    cr_assert_eq(res.status, 0, "the stream on the removed endpoint failed: %s", res.message);
    cr_assert_eq(res.replies, 3);
    cr_assert(sup_poll(b0_gone, NULL, 5000), "the endpoint stayed after its calls ended");
    stop_proxy_clean();
}

/* Connects to 127.0.0.1:|port| again and again without pausing (as a
 * supervisor polling for readiness might) until it succeeds. */
static void connect_at_once(int port, struct sup_proc *p)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    long end = sup_now_ms() + PROXY_T;

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc;

        cr_assert_geq(fd, 0);
        rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        close(fd);
        if (rc == 0)
            return;
        cr_assert(sup_alive(p), "switchyard exited before listening");
        cr_assert_lt(sup_now_ms(), end, "switchyard never listened");
    }
}

/* A supervisor may send SIGHUP the moment the port opens. switchyard catches
 * its signals before any socket listens: before, SIGHUP's default action
 * ended a process that had just started (every time on this machine when sent
 * at once). Five starts, each reloaded as soon as a connect succeeds. */
Test(reload, sighup_at_the_moment_the_port_opens_reloads)
{
    char text[4096], path[512];
    const char *argv[4];

    for (int i = 0; i < 5; i++) {
        pick_ports();
        conf_text(text, sizeof(text), NULL, be[0].addr, 0);
        cr_assert_eq(sup_write_file("at-once.ini", text, path, sizeof(path)), 0);
        argv[0] = sup_proxy_bin();
        argv[1] = "-c";
        argv[2] = path;
        argv[3] = NULL;
        px.proc = sup_spawn("switchyard", argv);
        cr_assert_not_null(px.proc);
        connect_at_once(px.port, px.proc);
        cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
        cr_assert(sup_wait_log(px.proc, "configuration reloaded", 0, 10000),
                  "start %d: no reload logged (alive: %d)", i, sup_alive(px.proc));
        stop_proxy_clean();
    }
}
