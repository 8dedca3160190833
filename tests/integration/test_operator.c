/* Integration tests of the operator surface around the main thread: the
 * command line, a second process on a held listen address, /healthz and
 * required clusters, /status numbers, drain by hand (admin and CLI) and
 * sd_notify, against a real switchyard and real sy-backends on loopback.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "tests/peers/gclient.h"
#include "tests/support/fakehealth.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define NB      3
#define PROXY_T 15000

static struct sup_backend be[NB];
static struct sup_proxy px;
static int admin_port;
static struct fhs_server *fake;

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
    fhs_stop(fake);
    fake = NULL;
}

TestSuite(operator, .init = start_backends, .fini = stop_all, .timeout = 120);

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 80);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

static void pick_ports(void)
{
    px.port = sup_free_port();
    admin_port = sup_free_port();
    cr_assert_gt(px.port, 0);
    cr_assert_gt(admin_port, 0);
}

/* Starts switchyard on |text|, a format with two %d: the listen port, then
 * the admin port. */
static void start_proxy_fmt(const char *fmt)
{
    char text[4096];

    pick_ports();
    snprintf(text, sizeof(text), fmt, px.port, admin_port);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", px.port, text, PROXY_T), 0,
                 "switchyard did not start");
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "admin did not listen");
}

static json_t *get_status(void)
{
    json_t *j = sup_http_get_json(admin_port, "/status");

    cr_assert_not_null(j, "GET /status failed");
    return j;
}

/* ---- required = no (issue 19) ---- */

struct log_wait {
    struct sup_proc *p;
    const char *needle;
};

static bool log_has(void *arg)
{
    struct log_wait *w = arg;

    return sup_file_contains(w->p->err_path, w->needle);
}

Test(operator, a_cluster_with_required_no_leaves_healthz_alone)
{
    char text[2048];
    struct sup_http_resp r;
    struct log_wait lw;
    int st;

    /* A backend without a health service: Check answers UNIMPLEMENTED. */
    fake = fhs_start(FHS_STATUS, 12);
    cr_assert_not_null(fake);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 1\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n"
             "[cluster.nohealth]\ntargets = %s\nroutes = /nohealth.\nrequired = no\n"
             "health_interval = 200ms\nhealth_timeout = 150ms\n",
             be[0].addr, fhs_addr(fake));
    start_proxy_fmt(text);
    lw = (struct log_wait){px.proc, "stays out of rotation"};
    cr_assert(sup_poll(log_has, &lw, 10000), "the failed first check was not logged");
    cr_assert(sup_file_contains(px.proc->err_path, "health_unimplemented = healthy"),
              "the log does not suggest health_unimplemented = healthy");
    cr_assert_eq(sup_http_get(admin_port, "/healthz", &r), 0);
    cr_assert_eq(r.code, 200, "/healthz: %d %s", r.code, r.body);
    cr_assert_not_null(strstr(r.body, "nohealth"), "%s", r.body);
    sup_http_resp_free(&r);
    /* switchyard's own health service (service "") agrees with /healthz */
    cr_assert_eq(gc_health_check(px.addr, "", &st), 0, "switchyard's own Health/Check");
    cr_assert_eq(st, 1, "own health: %d, expected SERVING", st);
    stop_proxy_clean();

    /* The same cluster with required = yes (the default) makes it 503. */
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 1\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n"
             "[cluster.nohealth]\ntargets = %s\nroutes = /nohealth.\n"
             "health_interval = 200ms\nhealth_timeout = 150ms\n",
             be[0].addr, fhs_addr(fake));
    start_proxy_fmt(text);
    cr_assert_eq(sup_http_get(admin_port, "/healthz", &r), 0);
    cr_assert_eq(r.code, 503, "/healthz: %d %s", r.code, r.body);
    sup_http_resp_free(&r);
    cr_assert_eq(gc_health_check(px.addr, "", &st), 0, "switchyard's own Health/Check");
    cr_assert_eq(st, 2, "own health: %d, expected NOT_SERVING", st);
    stop_proxy_clean();
}

/* Issue 17: log_format = json makes every line of the main log one JSON
 * object with time, level, module and msg, through start-up, a call, a
 * reload and the drain at SIGTERM. */
Test(operator, log_format_json_writes_one_object_per_line)
{
    char text[2048], *log, *line, *save = NULL;
    struct gc_result r;
    struct gc_opts o;
    int lines = 0;

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 1\nlog_level = debug\nlog_format = json\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             be[0].addr);
    start_proxy_fmt(text);
    gc_opts_init(&o, GC_UNARY);
    cr_assert_eq(gc_call(px.addr, &o, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.message);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_wait_log(px.proc, "configuration reloaded", 0, 10000));
    stop_proxy_clean();
    log = sup_read_file(px.proc->err_path);
    cr_assert_not_null(log);
    for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);

        cr_assert_not_null(j, "not JSON (%s): %s", err.text, line);
        cr_assert(json_is_object(j), "%s", line);
        for (int k = 0; k < 4; k++) {
            static const char *const keys[] = {"time", "level", "module", "msg"};

            cr_assert(json_is_string(json_object_get(j, keys[k])), "no string %s: %s", keys[k],
                      line);
        }
        json_decref(j);
        lines++;
    }
    free(log);
    cr_assert_geq(lines, 5, "only %d lines logged", lines);
}

/* ---- /status numbers (issue 19) ---- */

static bool latency_known(void *arg)
{
    json_t *j = get_status();
    json_t *e = json_array_get(
        json_object_get(json_array_get(json_object_get(j, "clusters"), 0), "endpoints"), 0);
    bool ok = json_is_real(json_object_get(e, "last_check_latency_ms"));

    (void)arg;
    json_decref(j);
    return ok;
}

Test(operator, status_numbers_have_at_most_three_decimals)
{
    char text[2048];
    struct sup_http_resp r;
    int reals = 0;

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 1\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s, %s\nroutes = /sy.test.\n"
             "health_interval = 100ms\nhealth_timeout = 90ms\n",
             be[0].addr, be[1].addr);
    start_proxy_fmt(text);
    cr_assert(sup_poll(latency_known, NULL, 10000), "no health check latency in /status");
    sup_sleep_ms(333); /* let uptime and ages take odd values */
    cr_assert_eq(sup_http_get(admin_port, "/status", &r), 0);
    for (const char *p = r.body; *p != '\0'; p++) {
        size_t digits = 0;

        if (*p != '.' || p == r.body || p[-1] < '0' || p[-1] > '9')
            continue;
        reals++;
        while (p[1 + digits] >= '0' && p[1 + digits] <= '9')
            digits++;
        cr_assert_leq(digits, 3, "a number with %zu decimals in /status: ...%.40s", digits,
                      p - 10 > r.body ? p - 10 : r.body);
    }
    cr_assert_geq(reals, 3, "expected uptime, ages and latencies as decimals:\n%s", r.body);
    sup_http_resp_free(&r);
    stop_proxy_clean();
}

/* ---- the command line (issue 19) ---- */

/* Runs switchyard with |args| (NULL-terminated); returns its exit status and
 * fills |out| (stdout) and |err| (stderr), which the caller frees. */
static int run_sy(const char *const *args, char **out, char **errtext)
{
    const char *argv[16];
    struct sup_proc *p;
    int n = 0, st;

    argv[n++] = sup_proxy_bin();
    for (int i = 0; args[i] != NULL && n < 15; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    st = sup_run("sy-cli", argv, 20000, &p);
    cr_assert_not_null(p);
    *out = sup_read_file(p->out_path);
    *errtext = sup_read_file(p->err_path);
    cr_assert_not_null(*out);
    cr_assert_not_null(*errtext);
    return st;
}

Test(operator, help_and_version_exit_zero)
{
    static const char *const help[][2] = {{"--help", NULL}, {"-h", NULL}};
    static const char *const version[][2] = {{"--version", NULL}, {"-V", NULL}};
    char *out, *err;

    for (int i = 0; i < 2; i++) {
        cr_assert_eq(run_sy(help[i], &out, &err), 0, "%s", help[i][0]);
        cr_assert_not_null(strstr(out, "usage: switchyard"), "%s: %s", help[i][0], out);
        cr_assert_not_null(strstr(out, "--version"), "%s", out);
        free(out);
        free(err);
        cr_assert_eq(run_sy(version[i], &out, &err), 0, "%s", version[i][0]);
        cr_assert_eq(strncmp(out, "switchyard ", 11), 0, "%s: %s", version[i][0], out);
        free(out);
        free(err);
    }
}

Test(operator, lower_case_v_is_refused_with_a_hint)
{
    static const char *const v[] = {"-v", NULL};
    static const char *const bogus[] = {"--bogus", NULL};
    static const char *const noarg[] = {"-c", NULL};
    char *out, *err;

    cr_assert_eq(run_sy(v, &out, &err), 2);
    cr_assert_not_null(strstr(err, "-V"), "no hint at -V: %s", err);
    free(out);
    free(err);
    cr_assert_eq(run_sy(bogus, &out, &err), 2);
    cr_assert_not_null(strstr(err, "--bogus"), "%s", err);
    free(out);
    free(err);
    cr_assert_eq(run_sy(noarg, &out, &err), 2);
    cr_assert_not_null(strstr(err, "needs an argument"), "%s", err);
    free(out);
    free(err);
}

Test(operator, check_warns_about_names_that_do_not_resolve)
{
    char path[512], text[1024];
    const char *args[] = {"-t", "-c", path, NULL};
    char *out, *err;

    snprintf(text, sizeof(text),
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\n"
             "[cluster.ghosts]\ntargets = %s, ghost.invalid:50051\nroutes = /ghost.\n",
             be[0].addr, be[1].addr);
    cr_assert_eq(sup_write_file("t.ini", text, path, sizeof(path)), 0);
    cr_assert_eq(run_sy(args, &out, &err), 0, "%s%s", out, err);
    cr_assert_not_null(strstr(out, "configuration ok"), "%s", out);
    cr_assert_not_null(strstr(err, "warning"), "%s", err);
    cr_assert_not_null(strstr(err, path), "the file is not named: %s", err);
    cr_assert_not_null(strstr(err, "[cluster.ghosts]"), "the cluster is not named: %s", err);
    cr_assert_not_null(strstr(err, "'ghost.invalid:50051' does not resolve"), "%s", err);
    cr_assert_null(strstr(err, "[cluster.echo]"), "%s", err);
    free(out);
    free(err);
}

/* ---- a listen address another process holds (issue 19) ---- */

Test(operator, a_second_switchyard_on_the_same_port_is_refused)
{
    char text[1024], path[512];
    const char *argv[4];
    struct sup_proc *second;
    struct gc_opts o;
    int st, admin2 = sup_free_port();

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 2\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             be[0].addr);
    start_proxy_fmt(text);
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             px.port, admin2, be[1].addr);
    cr_assert_eq(sup_write_file("second.ini", text, path, sizeof(path)), 0);
    argv[0] = sup_proxy_bin();
    argv[1] = "-c";
    argv[2] = path;
    argv[3] = NULL;
    second = sup_spawn("second", argv);
    cr_assert_not_null(second);
    st = sup_wait_exit(second, 10000);
    if (st == -2)
        sup_stop(second, 5000);
    cr_assert_neq(st, -2, "the second switchyard kept running on a port the first holds");
    cr_assert_neq(st, 0);
    cr_assert(sup_file_contains(second->err_path, "address already in use"), "no reason given");
    /* every call still reaches the first process's backend */
    gc_opts_init(&o, GC_UNARY);
    for (int i = 0; i < 20; i++) {
        struct gc_result r;

        cr_assert_eq(gc_call(px.addr, &o, &r), 0, "call %d: %s", i, r.message);
        cr_assert_str_eq(r.backend_id, be[0].id);
    }
    stop_proxy_clean();
}

/* ---- drain by hand (issue 19) ---- */

static const char *health_bin(void)
{
    const char *s = getenv("SY_HEALTH_BIN");

    return s && s[0] ? s : "build/switchyard-health";
}

/* Runs switchyard-health |verb| [--token-file |token_file|] |cluster| |ep|
 * against the admin listener; returns its exit status. */
static int cli_drain(const char *verb, const char *token_file, const char *cluster, const char *ep)
{
    char admin[32];
    const char *argv[10];
    struct sup_proc *p;
    int n = 0, st;

    snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
    argv[n++] = health_bin();
    argv[n++] = verb;
    argv[n++] = "--admin";
    argv[n++] = admin;
    if (token_file != NULL) {
        argv[n++] = "--token-file";
        argv[n++] = token_file;
    }
    argv[n++] = cluster;
    argv[n++] = ep;
    argv[n] = NULL;
    st = sup_run("cli", argv, 20000, &p);
    if (st != 0)
        sup_dump_log(p, 5);
    return st;
}

static int post(const char *path, const char *headers, struct sup_http_resp *r)
{
    return sup_http(admin_port, "POST", path, headers, NULL, 0, 10000, r);
}

/* Runs |n| unary calls; counts replies per backend into |per| (NB entries). */
static void unary_calls(int n, int *per)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    gc_opts_init(&o, GC_UNARY);
    memset(per, 0, NB * sizeof(*per));
    for (int i = 0; i < n; i++) {
        struct gc_result r;

        cr_assert_eq(gc_chan_call(ch, &o, &r), 0, "call %d failed: %s", i, r.message);
        for (int b = 0; b < NB; b++)
            per[b] += strcmp(r.backend_id, be[b].id) == 0;
    }
    gc_chan_free(ch);
}

/* The /status entry of endpoint |addr| in cluster "echo" (a new reference). */
static json_t *status_ep(const char *addr)
{
    json_t *j = get_status(), *clusters = json_object_get(j, "clusters"), *found = NULL;

    for (size_t i = 0; i < json_array_size(clusters); i++) {
        json_t *c = json_array_get(clusters, i), *eps = json_object_get(c, "endpoints");

        if (strcmp(json_string_value(json_object_get(c, "name")), "echo") != 0)
            continue;
        for (size_t k = 0; k < json_array_size(eps); k++) {
            json_t *e = json_array_get(eps, k);

            if (strcmp(json_string_value(json_object_get(e, "address")), addr) == 0)
                found = json_incref(e);
        }
    }
    json_decref(j);
    cr_assert_not_null(found, "no endpoint %s in /status", addr);
    return found;
}

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

#define DRAIN_CONF                                                                                 \
    "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 2\ndrain_timeout = 10s\n"                          \
    "[admin]\nlisten = 127.0.0.1:%%d\n%s"                                                          \
    "[cluster.echo]\ntargets = %s, %s\nroutes = /sy.test.\nhealth_check = off\n%s"

Test(operator, drain_and_undrain_by_hand)
{
    char text[2048], path[256];
    struct sup_http_resp r;
    int per[NB];
    json_t *e;
    pthread_t th;
    struct gc_result res;

    snprintf(text, sizeof(text), DRAIN_CONF, "", be[0].addr, be[1].addr, "");
    start_proxy_fmt(text);

    /* drain b1 through the admin endpoint: no new call reaches it */
    snprintf(path, sizeof(path), "/drain?cluster=echo&endpoint=%s", be[1].addr);
    cr_assert_eq(post(path, NULL, &r), 0);
    cr_assert_eq(r.code, 200, "%d %s", r.code, r.body);
    sup_http_resp_free(&r);
    unary_calls(20, per);
    cr_assert_eq(per[1], 0, "a drained endpoint got %d calls", per[1]);
    e = status_ep(be[1].addr);
    cr_assert(json_is_true(json_object_get(e, "drained")));
    cr_assert(json_is_false(json_object_get(e, "in_rotation")));
    cr_assert_str_eq(json_string_value(json_object_get(e, "reason")), "drained by operator");
    cr_assert_str_eq(json_string_value(json_object_get(e, "state")), "drained");
    json_decref(e);

    /* a stream running on b0 finishes while b0 is drained by the CLI */
    pthread_create(&th, NULL, long_stream, &res);
    sup_sleep_ms(500);
    cr_assert_eq(cli_drain("undrain", NULL, "echo", be[1].addr), 0);
    cr_assert_eq(cli_drain("drain", NULL, "echo", be[0].addr), 0);
    unary_calls(20, per);
    cr_assert_eq(per[0], 0, "a drained endpoint got %d calls", per[0]);
    cr_assert_eq(per[1], 20);
    pthread_join(th, NULL);
    cr_assert_eq(res.status, 0, "the running stream failed: %s", res.message);
    cr_assert_eq(res.replies, 3);
    cr_assert_str_eq(res.backend_id, be[0].id);

    /* the mark survives a reload that keeps the endpoint */
    snprintf(text, sizeof(text), DRAIN_CONF, "", be[0].addr, be[1].addr,
             "[cluster.more]\ntargets = 127.0.0.1:1\nroutes = /more.\nhealth_check = off\n");
    {
        char full[2048];
        FILE *f;

        snprintf(full, sizeof(full), text, px.port, admin_port);
        f = fopen(px.conf, "w");
        cr_assert_not_null(f);
        fputs(full, f);
        fclose(f);
    }
    sup_signal(px.proc, SIGHUP);
    {
        struct log_wait lw = {px.proc, "configuration reloaded"};

        cr_assert(sup_poll(log_has, &lw, 10000), "no reload");
    }
    e = status_ep(be[0].addr);
    cr_assert(json_is_true(json_object_get(e, "drained")), "the reload lost the drain");
    json_decref(e);
    unary_calls(10, per);
    cr_assert_eq(per[0], 0);

    /* undrain brings it back */
    cr_assert_eq(cli_drain("undrain", NULL, "echo", be[0].addr), 0);
    unary_calls(20, per);
    cr_assert_gt(per[0], 0, "an undrained endpoint got no calls");
    cr_assert_gt(per[1], 0);

    /* unknown cluster or endpoint: 404 and exit 3; wrong methods: 405 */
    cr_assert_eq(post("/drain?cluster=nope&endpoint=127.0.0.1:1", NULL, &r), 0);
    cr_assert_eq(r.code, 404);
    cr_assert_not_null(strstr(r.body, "no cluster named 'nope'"), "%s", r.body);
    sup_http_resp_free(&r);
    cr_assert_eq(cli_drain("drain", NULL, "nope", be[0].addr), 3);
    cr_assert_eq(cli_drain("drain", NULL, "echo", "127.0.0.1:1"), 3);
    cr_assert_eq(post("/drain?cluster=echo", NULL, &r), 0);
    cr_assert_eq(r.code, 400);
    sup_http_resp_free(&r);
    cr_assert_eq(sup_http_get(admin_port, path, &r), 0);
    cr_assert_eq(r.code, 405);
    cr_assert(sup_http_header_has(&r, "Allow", "POST"), "%s", r.head);
    sup_http_resp_free(&r);
    cr_assert_eq(post("/status", NULL, &r), 0);
    cr_assert_eq(r.code, 405);
    cr_assert(sup_http_header_has(&r, "Allow", "GET, HEAD"), "%s", r.head);
    sup_http_resp_free(&r);
    stop_proxy_clean();
}

Test(operator, drain_needs_the_token_when_one_is_configured)
{
    char text[2048], admin_extra[700], token[512], wrong[512], path[256];
    struct sup_http_resp r;

    cr_assert_eq(sup_write_file("token", "s3cret-Token\n", token, sizeof(token)), 0);
    cr_assert_eq(sup_write_file("wrong", "s3cret-Tokem\n", wrong, sizeof(wrong)), 0);
    snprintf(admin_extra, sizeof(admin_extra), "token_file = %s\n", token);
    snprintf(text, sizeof(text), DRAIN_CONF, admin_extra, be[0].addr, be[1].addr, "");
    start_proxy_fmt(text);
    snprintf(path, sizeof(path), "/drain?cluster=echo&endpoint=%s", be[1].addr);

    cr_assert_eq(post(path, NULL, &r), 0);
    cr_assert_eq(r.code, 401, "%d %s", r.code, r.body);
    cr_assert(sup_http_header_has(&r, "WWW-Authenticate", "Bearer"), "%s", r.head);
    sup_http_resp_free(&r);
    cr_assert_eq(post(path, "Authorization: Bearer s3cret-Tokem\r\n", &r), 0);
    cr_assert_eq(r.code, 401);
    sup_http_resp_free(&r);
    cr_assert_eq(post(path, "Authorization: Bearer s3cret-Token-and-more\r\n", &r), 0);
    cr_assert_eq(r.code, 401);
    sup_http_resp_free(&r);
    cr_assert_eq(post(path, "Authorization: Basic czNjcmV0LVRva2Vu\r\n", &r), 0);
    cr_assert_eq(r.code, 401);
    sup_http_resp_free(&r);
    {
        json_t *e = status_ep(be[1].addr); /* reading needs no token */

        cr_assert(json_is_false(json_object_get(e, "drained")), "a refused drain drained");
        json_decref(e);
    }
    cr_assert_eq(post(path, "Authorization: Bearer s3cret-Token\r\n", &r), 0);
    cr_assert_eq(r.code, 200, "%d %s", r.code, r.body);
    sup_http_resp_free(&r);

    cr_assert_eq(cli_drain("undrain", NULL, "echo", be[1].addr), 4);
    cr_assert_eq(cli_drain("undrain", wrong, "echo", be[1].addr), 4);
    cr_assert_eq(cli_drain("undrain", token, "echo", be[1].addr), 0);
    {
        json_t *e = status_ep(be[1].addr);

        cr_assert(json_is_false(json_object_get(e, "drained")));
        json_decref(e);
    }
    stop_proxy_clean();
}

/* ---- sd_notify for systemd's Type=notify ---- */

/* Waits up to |ms| for a datagram on |fd| that contains |needle|; the
 * datagrams read meanwhile are appended to |seen|. */
static bool notify_wait(int fd, const char *needle, int ms, char *seen, size_t seenlen)
{
    long end = sup_now_ms() + ms;

    while (sup_now_ms() < end) {
        char buf[1024];
        struct timeval tv = {.tv_sec = 0, .tv_usec = 100 * 1000};
        ssize_t n;

        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        n = recv(fd, buf, sizeof(buf) - 1, 0);
        if (n <= 0)
            continue;
        buf[n] = '\0';
        snprintf(seen + strlen(seen), seenlen - strlen(seen), "[%s]", buf);
        if (strstr(buf, needle) != NULL)
            return true;
    }
    return false;
}

/* A switchyard told NOTIFY_SOCKET (set by the caller for this process only,
 * and unset again here). */
static void start_notifying_proxy(void)
{
    char text[2048];

    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%%d\nworkers = 1\n"
             "[admin]\nlisten = 127.0.0.1:%%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             be[0].addr);
    start_proxy_fmt(text);
    unsetenv("NOTIFY_SOCKET");
}

Test(operator, tells_systemd_when_ready_reloading_and_stopping)
{
    char seen[4096] = "";
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

    cr_assert_geq(fd, 0);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/notify", sup_tmpdir());
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    cr_assert_eq(setenv("NOTIFY_SOCKET", sun.sun_path, 1), 0); /* this test's process only */
    start_notifying_proxy();
    cr_assert(notify_wait(fd, "READY=1", 10000, seen, sizeof(seen)), "no READY=1: %s", seen);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(notify_wait(fd, "RELOADING=1", 10000, seen, sizeof(seen)), "no RELOADING=1: %s",
              seen);
    cr_assert_not_null(strstr(seen, "MONOTONIC_USEC="), "%s", seen);
    cr_assert(notify_wait(fd, "READY=1", 10000, seen, sizeof(seen)),
              "no READY=1 after the reload: %s", seen);
    cr_assert_eq(sup_signal(px.proc, SIGTERM), 0);
    cr_assert(notify_wait(fd, "STOPPING=1", 10000, seen, sizeof(seen)), "no STOPPING=1: %s", seen);
    cr_assert_eq(sup_wait_exit(px.proc, PROXY_T), 0);
    close(fd);
}

/* The same through an abstract socket ("@name" in NOTIFY_SOCKET), as
 * systemd may hand a service: READY=1 arrives, with the status line. */
Test(operator, tells_systemd_through_an_abstract_notify_socket)
{
    char seen[4096] = "", name[108];
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len;

    cr_assert_geq(fd, 0);
    snprintf(name, sizeof(name), "@sy-test-notify-%d", (int)getpid());
    memcpy(sun.sun_path, name, strlen(name));
    sun.sun_path[0] = '\0';
    len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(name));
    cr_assert_eq(bind(fd, (struct sockaddr *)&sun, len), 0);
    cr_assert_eq(setenv("NOTIFY_SOCKET", name, 1), 0); /* this test's process only */
    start_notifying_proxy();
    cr_assert(notify_wait(fd, "READY=1", 10000, seen, sizeof(seen)), "no READY=1: %s", seen);
    cr_assert_not_null(strstr(seen, "STATUS=listening on 127.0.0.1:"), "%s", seen);
    stop_proxy_clean();
    close(fd);
}
