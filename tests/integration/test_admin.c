/* Integration tests of the operator surface: the admin endpoint (/status,
 * /metrics, /healthz), the access log and SIGHUP reload, against a real
 * switchyard and real sy-backends on loopback.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/peers/gclient.h"
#include "tests/support/support.h"

#define NB      4
#define PROXY_T 15000

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

static void stop_proxy_clean(void)
{
    int st = sup_stop(px.proc, PROXY_T);

    if (st != 0)
        sup_dump_log(px.proc, 60);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}

TestSuite(admin, .init = start_backends, .fini = stop_all, .timeout = 120);

/* A config for backends |first|..|first+n-1|, admin on |admin_port|. */
static void conf_text(char *buf, size_t len, int port, int first, int n, const char *proxy_extra,
                      const char *admin_extra)
{
    char targets[256] = "";

    for (int i = first; i < first + n; i++) {
        strcat(targets, be[i].addr);
        if (i + 1 < first + n)
            strcat(targets, ", ");
    }
    snprintf(buf, len,
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\ndrain_timeout = 10s\n%s\n"
             "[admin]\nlisten = 127.0.0.1:%d\n%s\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             port, proxy_extra ? proxy_extra : "", admin_port, admin_extra ? admin_extra : "",
             targets);
}

static void start_proxy_with(const char *text_fmt_done)
{
    int port = px.port;

    cr_assert_eq(sup_start_proxy(&px, "switchyard", port, text_fmt_done, PROXY_T), 0,
                 "switchyard did not start");
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "admin did not listen");
}

static void start_proxy(int first, int n, const char *proxy_extra, const char *admin_extra)
{
    char text[2048];

    px.port = sup_free_port();
    admin_port = sup_free_port();
    cr_assert_gt(px.port, 0);
    cr_assert_gt(admin_port, 0);
    conf_text(text, sizeof(text), px.port, first, n, proxy_extra, admin_extra);
    start_proxy_with(text);
}

/* ---- a tiny HTTP/1.0 client ---- */

struct http_resp {
    int code;
    char *body; /* malloc'd */
};

static int http_get(int port, const char *path, struct http_resp *r)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    char req[256], *buf = NULL, *sep;
    size_t len = 0, cap = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ssize_t n;

    memset(r, 0, sizeof(*r));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", path);
    if (write(fd, req, strlen(req)) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        if (len + 4096 + 1 > cap) {
            cap = cap == 0 ? 65536 : cap * 2;
            buf = realloc(buf, cap);
            cr_assert_not_null(buf);
        }
        n = read(fd, buf + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (buf == NULL)
        return -1;
    buf[len] = '\0';
    if (sscanf(buf, "HTTP/1.%*d %d", &r->code) != 1 || (sep = strstr(buf, "\r\n\r\n")) == NULL) {
        free(buf);
        return -1;
    }
    r->body = strdup(sep + 4);
    free(buf);
    return 0;
}

static json_t *get_status(void)
{
    struct http_resp r;
    json_error_t err;
    json_t *j;

    cr_assert_eq(http_get(admin_port, "/status", &r), 0, "GET /status failed");
    cr_assert_eq(r.code, 200);
    j = json_loads(r.body, 0, &err);
    cr_assert_not_null(j, "/status is not JSON: %s: %s", err.text, r.body);
    free(r.body);
    return j;
}

static int unary(const char *method, int n, int *per_backend)
{
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;
    int bad = 0;

    gc_opts_init(&o, GC_UNARY);
    o.method = method;
    o.request_size = 10;
    for (int i = 0; i < n; i++) {
        struct gc_result r;

        if (gc_chan_call(ch, &o, &r) != 0 || r.status != 0) {
            bad++;
            continue;
        }
        for (int b = 0; per_backend != NULL && b < NB; b++) {
            if (strcmp(r.backend_id, be[b].id) == 0)
                per_backend[b]++;
        }
    }
    gc_chan_free(ch);
    return bad;
}

/* ---- a strict Prometheus text-format (0.0.4) checker ---- */

struct family {
    char name[128];
    char type[256];
};

static bool metric_name_ok(const char *s, size_t len)
{
    if (len == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
        return false;
    for (size_t i = 1; i < len; i++) {
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
            return false;
    }
    return true;
}

/* Parses labels at |p| ("{a="x",b="y"}"); returns the char after '}' or NULL. */
static const char *parse_labels(const char *p, char *le, size_t lelen)
{
    if (*p != '{')
        return p;
    p++;
    le[0] = '\0';
    while (*p != '}') {
        const char *n = p;
        char val[512];
        size_t k = 0;

        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        if (p == n || *p != '=' || p[1] != '"')
            return NULL;
        p += 2;
        while (*p != '"') {
            if (*p == '\0' || *p == '\n')
                return NULL;
            if (*p == '\\') {
                if (p[1] != '\\' && p[1] != '"' && p[1] != 'n')
                    return NULL; /* only these escapes are allowed */
                p++;
            }
            if (k + 1 < sizeof(val))
                val[k++] = *p;
            p++;
        }
        val[k] = '\0';
        if ((size_t)(strchr(n, '=') - n) == 2 && strncmp(n, "le", 2) == 0) {
            cr_assert_lt(strlen(val), lelen);
            memcpy(le, val, strlen(val) + 1);
        }
        p++;
        if (*p == ',')
            p++;
        else if (*p != '}')
            return NULL;
    }
    return p + 1;
}

/* Checks every line of |text|; returns the number of samples. Histogram
 * buckets must be cumulative, and end with le="+Inf" equal to _count. */
static int check_exposition(const char *text)
{
    struct family fam[64];
    int nfam = 0, samples = 0;
    const char *line = text;
    double last_bucket = -1, inf_bucket = -1;

    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        char buf[1024];
        size_t len;

        cr_assert_not_null(end, "the last line does not end with \\n");
        len = (size_t)(end - line);
        cr_assert_lt(len, sizeof(buf));
        memcpy(buf, line, len);
        buf[len] = '\0';
        line = end + 1;
        if (buf[0] == '#') {
            char kw[8], name[128], rest[256];

            cr_assert_eq(sscanf(buf, "# %7s %127s %255[^\n]", kw, name, rest), 3,
                         "bad comment line: %s", buf);
            cr_assert(metric_name_ok(name, strlen(name)), "bad metric name: %s", buf);
            if (strcmp(kw, "TYPE") == 0) {
                cr_assert(strcmp(rest, "counter") == 0 || strcmp(rest, "gauge") == 0 ||
                              strcmp(rest, "histogram") == 0,
                          "bad TYPE: %s", buf);
                for (int i = 0; i < nfam; i++)
                    cr_assert_str_neq(fam[i].name, name, "TYPE given twice: %s", name);
                cr_assert_lt(nfam, 64);
                memcpy(fam[nfam].name, name, sizeof(name));
                memcpy(fam[nfam].type, rest, sizeof(rest));
                nfam++;
            } else {
                cr_assert_str_eq(kw, "HELP", "unknown comment keyword: %s", buf);
            }
            continue;
        }
        {
            const char *p = buf, *after;
            char le[64] = "", *endv;
            size_t nlen;
            double v;
            bool known = false;

            while (*p != '{' && *p != ' ' && *p != '\0')
                p++;
            nlen = (size_t)(p - buf);
            cr_assert(metric_name_ok(buf, nlen), "bad sample name: %s", buf);
            after = parse_labels(p, le, sizeof(le));
            cr_assert_not_null(after, "bad labels: %s", buf);
            cr_assert_eq(*after, ' ', "no space before the value: %s", buf);
            v = strtod(after + 1, &endv);
            cr_assert(endv != after + 1 && *endv == '\0', "bad value: %s", buf);
            for (int i = nfam - 1; i >= 0 && !known; i--) {
                size_t fl = strlen(fam[i].name);

                if (strncmp(buf, fam[i].name, fl) != 0)
                    continue;
                if (nlen == fl) {
                    known = true;
                } else if (strcmp(fam[i].type, "histogram") == 0) {
                    const char *suf = buf + fl;

                    if (strncmp(suf, "_bucket", 7) == 0 && nlen == fl + 7) {
                        known = true;
                        cr_assert_neq(le[0], '\0', "bucket without le: %s", buf);
                        if (strcmp(le, "+Inf") == 0)
                            inf_bucket = v;
                        cr_assert_geq(v, last_bucket, "buckets not cumulative: %s", buf);
                        last_bucket = strcmp(le, "+Inf") == 0 ? -1 : v;
                    } else if (strncmp(suf, "_sum", 4) == 0 && nlen == fl + 4) {
                        known = true;
                    } else if (strncmp(suf, "_count", 6) == 0 && nlen == fl + 6) {
                        known = true;
                        cr_assert_eq(v, inf_bucket, "_count != +Inf bucket: %s", buf);
                    }
                }
            }
            cr_assert(known, "sample without a TYPE line before it: %s", buf);
            samples++;
        }
    }
    return samples;
}

static double metric_value(const char *text, const char *prefix)
{
    const char *p = strstr(text, prefix);

    cr_assert_not_null(p, "no sample %s in:\n%s", prefix, text);
    p = strchr(p + strlen(prefix), ' ');
    return strtod(p + 1, NULL);
}

/* ---- tests ---- */

Test(admin, metrics_are_valid_and_count_the_calls)
{
    struct http_resp r;
    int samples;

    start_proxy(0, 3, NULL, NULL);
    cr_assert_eq(unary(NULL, 30, NULL), 0);
    cr_assert_eq(unary("/other.Svc/Nope", 1, NULL), 1, "an unknown route fails");
    cr_assert_eq(http_get(admin_port, "/metrics", &r), 0);
    cr_assert_eq(r.code, 200);
    samples = check_exposition(r.body);
    cr_assert_gt(samples, 10);
    cr_assert_eq(
        metric_value(r.body, "grpc_requests_total{method=\"/sy.test.Echo/Unary\",status=\"OK\"}"),
        30);
    /* An unrouted path gets no label of its own (issue 12.6): "other". */
    cr_assert_eq(metric_value(r.body, "grpc_requests_total{method=\"other\","
                                      "status=\"UNIMPLEMENTED\"}"),
                 1);
    cr_assert_null(strstr(r.body, "/other.Svc/Nope"), "an unrouted path became a label");
    cr_assert_eq(
        metric_value(r.body, "grpc_request_duration_seconds_count{method=\"/sy.test.Echo/Unary\"}"),
        30);
    for (int i = 0; i < 3; i++) {
        char key[160];

        snprintf(key, sizeof(key), "switchyard_endpoint_healthy{cluster=\"echo\",endpoint=\"%s\"}",
                 be[i].addr);
        cr_assert_eq(metric_value(r.body, key), 1);
    }
    free(r.body);
    stop_proxy_clean();
}

Test(admin, method_labels_are_bounded)
{
    struct http_resp r;

    start_proxy(0, 3, NULL, "max_method_labels = 2");
    /* 6 methods over 2 workers: one worker sees at least 3, one more than its cap */
    for (int i = 0; i < 6; i++) {
        char m[32];

        snprintf(m, sizeof(m), "/a.S/M%d", i);
        cr_assert_eq(unary(m, 1, NULL), 1);
    }
    cr_assert_eq(http_get(admin_port, "/metrics", &r), 0);
    check_exposition(r.body);
    cr_assert_not_null(strstr(r.body, "method=\"other\""), "%s", r.body);
    free(r.body);
    stop_proxy_clean();
}

Test(admin, status_reflects_the_endpoints_and_calls)
{
    json_t *j, *cl, *eps;
    int per[NB] = {0};
    long total = 0;

    start_proxy(0, 3, NULL, NULL);
    cr_assert_eq(unary(NULL, 30, per), 0);
    j = get_status();
    cr_assert_eq(json_integer_value(json_object_get(j, "workers")), 2);
    cl = json_array_get(json_object_get(j, "clusters"), 0);
    cr_assert_str_eq(json_string_value(json_object_get(cl, "name")), "echo");
    cr_assert_str_eq(json_string_value(json_object_get(cl, "policy")), "round_robin");
    cr_assert_eq(json_integer_value(json_object_get(cl, "endpoints_in_rotation")), 3);
    eps = json_object_get(cl, "endpoints");
    cr_assert_eq(json_array_size(eps), 3);
    for (size_t i = 0; i < 3; i++) {
        json_t *e = json_array_get(eps, i);
        long calls = (long)json_integer_value(json_object_get(e, "calls_total"));

        cr_assert_str_eq(json_string_value(json_object_get(e, "address")), be[i].addr);
        cr_assert(json_is_true(json_object_get(e, "in_rotation")));
        cr_assert_eq(calls, per[i], "endpoint %s: %ld calls in /status, %d seen", be[i].addr, calls,
                     per[i]);
        total += calls;
    }
    cr_assert_eq(total, 30);
    json_decref(j);
    stop_proxy_clean();
}

static void *long_stream(void *arg)
{
    struct gc_result *res = arg;
    struct gc_opts o;

    gc_opts_init(&o, GC_SERVER_STREAM);
    o.response_count = 1;
    o.delay_ms = 3000;
    gc_call(px.addr, &o, res);
    return NULL;
}

Test(admin, healthz_codes)
{
    struct http_resp r;
    char text[2048];

    /* a cluster with no endpoint in rotation: 503 naming it */
    px.port = sup_free_port();
    admin_port = sup_free_port();
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 1\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n"
             "[cluster.ghost]\ntargets = ghost.invalid:50051\nroutes = /ghost.\n",
             px.port, admin_port, be[0].addr);
    start_proxy_with(text);
    cr_assert_eq(http_get(admin_port, "/healthz", &r), 0);
    cr_assert_eq(r.code, 503);
    cr_assert_not_null(strstr(r.body, "ghost"), "%s", r.body);
    free(r.body);
    stop_proxy_clean();

    /* all clusters served: 200; draining: 503 */
    start_proxy(0, 1, NULL, NULL);
    cr_assert_eq(http_get(admin_port, "/healthz", &r), 0);
    cr_assert_eq(r.code, 200);
    free(r.body);
    {
        /* keep switchyard draining with a long stream */
        pthread_t th;
        struct gc_result res;

        pthread_create(&th, NULL, long_stream, &res);
        sup_sleep_ms(500);
        sup_signal(px.proc, SIGTERM);
        sup_sleep_ms(300);
        cr_assert_eq(http_get(admin_port, "/healthz", &r), 0);
        cr_assert_eq(r.code, 503);
        cr_assert_not_null(strstr(r.body, "draining"));
        free(r.body);
        pthread_join(th, NULL);
        cr_assert_eq(res.status, 0, "the stream did not finish OK: %s", res.message);
    }
    cr_assert_eq(sup_wait_exit(px.proc, PROXY_T), 0);
}

static bool log_has_lines(void *arg)
{
    const char *path = arg;
    char *t = sup_read_file(path);
    int lines = 0;

    for (char *p = t; p != NULL && *p != '\0'; p++)
        lines += *p == '\n';
    free(t);
    return lines >= 11;
}

Test(admin, access_log_lines_match_the_calls)
{
    char path[512], extra[700];
    char *t, *line, *save;
    int ok = 0, unimpl = 0;

    snprintf(path, sizeof(path), "%s/access.log", sup_tmpdir());
    snprintf(extra, sizeof(extra), "access_log = %s\naccess_log_format = json", path);
    start_proxy(0, 3, extra, NULL);
    cr_assert_eq(unary(NULL, 10, NULL), 0);
    cr_assert_eq(unary("/other.Svc/Nope", 1, NULL), 1);
    cr_assert(sup_poll(log_has_lines, path, 5000), "access log lines missing");
    t = sup_read_file(path);
    for (line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_error_t err;
        json_t *j = json_loads(line, 0, &err);
        const char *st, *m;

        cr_assert_not_null(j, "not JSON: %s", line);
        st = json_string_value(json_object_get(j, "status"));
        m = json_string_value(json_object_get(j, "method"));
        cr_assert_not_null(json_object_get(j, "peer"));
        cr_assert_not_null(json_object_get(j, "duration_ms"));
        if (strcmp(st, "OK") == 0) {
            bool known = false;

            cr_assert_str_eq(m, "/sy.test.Echo/Unary");
            cr_assert_str_eq(json_string_value(json_object_get(j, "cluster")), "echo");
            for (int i = 0; i < 3; i++)
                known |= strcmp(json_string_value(json_object_get(j, "endpoint")), be[i].addr) == 0;
            cr_assert(known, "unknown endpoint in %s", line);
            /* 5-byte gRPC prefix + EchoRequest{payload: 10 bytes, response_count: 1},
             * (2 + 10) + 2 */
            cr_assert_eq(json_integer_value(json_object_get(j, "bytes_in")), 19, "%s", line);
            ok++;
        } else {
            cr_assert_str_eq(st, "UNIMPLEMENTED");
            cr_assert_str_eq(m, "/other.Svc/Nope");
            unimpl++;
        }
        json_decref(j);
    }
    free(t);
    cr_assert_eq(ok, 10);
    cr_assert_eq(unimpl, 1);
    stop_proxy_clean();
}

/* ---- reload ---- */

struct load {
    atomic_bool stop;
    atomic_int calls, failures;
    atomic_int after_mark[NB]; /* calls per backend after |mark| was set */
    atomic_bool mark;
};

static void *load_run(void *arg)
{
    struct load *l = arg;
    struct gc_chan *ch = gc_chan_new(px.addr);
    struct gc_opts o;

    gc_opts_init(&o, GC_UNARY);
    o.request_size = 10;
    while (!atomic_load(&l->stop)) {
        struct gc_result r;
        bool marked = atomic_load(&l->mark);

        if (gc_chan_call(ch, &o, &r) != 0 || r.status != 0) {
            if (atomic_fetch_add(&l->failures, 1) == 0)
                fprintf(stderr, "reload: call failed: %d %s\n", r.status, r.message);
        }
        atomic_fetch_add(&l->calls, 1);
        for (int b = 0; marked && b < NB; b++) {
            if (strcmp(r.backend_id, be[b].id) == 0)
                atomic_fetch_add(&l->after_mark[b], 1);
        }
    }
    gc_chan_free(ch);
    return NULL;
}

Test(admin, reload_under_load_drops_nothing)
{
    static struct load l;
    pthread_t th[2];
    char text[2048];
    json_t *j;

    memset(&l, 0, sizeof(l));
    start_proxy(0, 3, NULL, NULL); /* b0 b1 b2 */
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, load_run, &l);
    while (atomic_load(&l.calls) < 100)
        sup_sleep_ms(10);
    /* b0 leaves, b3 joins */
    conf_text(text, sizeof(text), px.port, 1, 3, NULL, NULL);
    {
        FILE *f = fopen(px.conf, "w");

        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
    }
    sup_signal(px.proc, SIGHUP);
    /* /status shows the new target list once the reload is applied */
    for (int tries = 0; tries < 200; tries++) {
        const char *t0;

        j = get_status();
        t0 = json_string_value(json_array_get(
            json_object_get(json_array_get(json_object_get(j, "clusters"), 0), "targets"), 0));
        if (strcmp(t0, be[1].addr) == 0) {
            json_decref(j);
            break;
        }
        json_decref(j);
        sup_sleep_ms(20);
    }
    sup_sleep_ms(100); /* workers take the new snapshot within a loop iteration */
    atomic_store(&l.mark, true);
    {
        int before = atomic_load(&l.calls);

        while (atomic_load(&l.calls) < before + 150)
            sup_sleep_ms(10);
    }
    /* a broken file changes nothing */
    {
        FILE *f = fopen(px.conf, "a");

        cr_assert_not_null(f);
        fputs("this is not ini\n", f);
        fclose(f);
    }
    sup_signal(px.proc, SIGHUP);
    {
        int before = atomic_load(&l.calls);

        while (atomic_load(&l.calls) < before + 100)
            sup_sleep_ms(10);
    }
    atomic_store(&l.stop, true);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&l.failures), 0, "%d of %d calls failed", atomic_load(&l.failures),
                 atomic_load(&l.calls));
    cr_assert_eq(atomic_load(&l.after_mark[0]), 0, "b0 was removed but got calls");
    cr_assert_gt(atomic_load(&l.after_mark[3]), 0, "b3 was added but got no calls");
    cr_assert_gt(atomic_load(&l.after_mark[1]), 0);
    cr_assert(sup_file_contains(px.proc->err_path, "reload failed, keeping the running"),
              "the broken reload was not reported");
    stop_proxy_clean();
}

struct ep_wait {
    const char *addr;
    bool healthy;
    char reason[160];
};

/* True when /status shows endpoint |addr| with the wanted health and rotation. */
static bool status_shows(void *arg)
{
    struct ep_wait *w = arg;
    json_t *j = get_status();
    json_t *eps = json_object_get(json_array_get(json_object_get(j, "clusters"), 0), "endpoints");
    bool ok = false;

    for (size_t i = 0; i < json_array_size(eps); i++) {
        json_t *e = json_array_get(eps, i);

        if (strcmp(json_string_value(json_object_get(e, "address")), w->addr) != 0)
            continue;
        ok = json_is_true(json_object_get(e, "healthy")) == w->healthy &&
             json_is_true(json_object_get(e, "in_rotation")) == w->healthy &&
             json_object_get(e, "last_check_latency_ms") != NULL &&
             json_is_real(json_object_get(e, "last_check_latency_ms"));
        snprintf(w->reason, sizeof(w->reason), "%s",
                 json_string_value(json_object_get(e, "reason")));
    }
    json_decref(j);
    return ok;
}

Test(admin, status_follows_a_health_flip)
{
    char text[2048];
    struct ep_wait w = {.addr = be[1].addr, .healthy = false};
    json_t *j, *cl;

    px.port = sup_free_port();
    admin_port = sup_free_port();
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s, %s, %s\nroutes = /sy.test.\n"
             "health_interval = 200ms\nhealth_timeout = 150ms\n",
             px.port, admin_port, be[0].addr, be[1].addr, be[2].addr);
    start_proxy_with(text);
    cr_assert_eq(gc_set_health(be[1].addr, "", 2 /* NOT_SERVING */), 0);
    cr_assert(sup_poll(status_shows, &w, 10000), "/status never showed %s out (reason '%s')",
              be[1].addr, w.reason);
    cr_assert_not_null(strstr(w.reason, "NOT_SERVING"), "reason '%s'", w.reason);
    j = get_status();
    cl = json_array_get(json_object_get(j, "clusters"), 0);
    cr_assert_eq(json_integer_value(json_object_get(cl, "endpoints_in_rotation")), 2);
    json_decref(j);
    cr_assert_eq(gc_set_health(be[1].addr, "", 1 /* SERVING */), 0);
    w.healthy = true;
    cr_assert(sup_poll(status_shows, &w, 10000), "/status never showed %s back (reason '%s')",
              be[1].addr, w.reason);
    stop_proxy_clean();
}

Test(admin, reload_moves_the_listener_and_keeps_open_connections)
{
    char text[2048];
    int old_port, new_port = sup_free_port();
    struct gc_chan *old_ch;
    struct gc_opts o;
    struct gc_result r;

    start_proxy(0, 2, NULL, NULL);
    old_port = px.port;
    old_ch = gc_chan_new(px.addr);
    gc_opts_init(&o, GC_UNARY);
    cr_assert_eq(gc_chan_call(old_ch, &o, &r), 0);
    cr_assert_eq(r.status, 0, "%s", r.message);
    conf_text(text, sizeof(text), new_port, 0, 2, NULL, NULL);
    {
        FILE *f = fopen(px.conf, "w");

        cr_assert_not_null(f);
        fputs(text, f);
        fclose(f);
    }
    sup_signal(px.proc, SIGHUP);
    cr_assert_eq(sup_wait_port(px.proc, new_port, 10000), 0, "the new port never listened");
    snprintf(px.addr, sizeof(px.addr), "127.0.0.1:%d", new_port);
    cr_assert_eq(unary(NULL, 5, NULL), 0, "calls on the new port failed");
    /* the connection opened before the reload goes on working */
    cr_assert_eq(gc_chan_call(old_ch, &o, &r), 0);
    cr_assert_eq(r.status, 0, "old connection: %s", r.message);
    gc_chan_free(old_ch);
    /* and the old port takes no new connections */
    {
        struct http_resp hr;

        cr_assert_neq(http_get(old_port, "/", &hr), 0, "the old port still accepts");
    }
    cr_assert(sup_file_contains(px.proc->err_path, "now listening on"));
    px.port = new_port;
    stop_proxy_clean();
}

/* ---- limits of the admin listener (issue 12.4) ---- */

/* Sends |head| and then |body_bytes| bytes of filler on one connection to
 * the admin port, as fast as the server takes them, and reads whatever comes
 * back until it closes (at most 20 s). Returns the bytes of body it took. */
static size_t blast(const char *head, size_t body_bytes)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)admin_port)};
    struct timeval tv = {.tv_sec = 20};
    static char chunk[65536];
    size_t sent = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(chunk, 'a', sizeof(chunk));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_geq(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    if (send(fd, head, strlen(head), MSG_NOSIGNAL) == (ssize_t)strlen(head)) {
        while (sent < body_bytes) {
            size_t n = body_bytes - sent < sizeof(chunk) ? body_bytes - sent : sizeof(chunk);
            ssize_t w = send(fd, chunk, n, MSG_NOSIGNAL);

            if (w <= 0)
                break; /* the server gave up on us: fine */
            sent += (size_t)w;
        }
    }
    shutdown(fd, SHUT_WR);
    while (read(fd, chunk, sizeof(chunk)) > 0)
        ;
    close(fd);
    return sent;
}

Test(admin, a_huge_body_and_huge_headers_cost_little_memory)
{
    struct http_resp r;
    char *head;
    size_t len = 0, cap = 1100 * 1024;
    long before, after;

    start_proxy(0, 1, NULL, NULL);
    cr_assert_eq(http_get(admin_port, "/status", &r), 0);
    free(r.body);
    before = sup_rss_kb(px.proc->pid);
    cr_assert_gt(before, 0);

    /* 50 MB of body */
    blast("POST /drain?cluster=echo&endpoint=x HTTP/1.1\r\nHost: a\r\n"
          "Content-Length: 52428800\r\n\r\n",
          50u * 1024 * 1024);
    /* the same without a Content-Length: chunked */
    {
        static char chunked[8 * 1024 * 1024 + 256];
        size_t n = (size_t)snprintf(chunked, 256,
                                    "POST /drain HTTP/1.1\r\nHost: a\r\n"
                                    "Transfer-Encoding: chunked\r\n\r\n%x\r\n",
                                    8 * 1024 * 1024);

        memset(chunked + n, 'b', 8 * 1024 * 1024);
        chunked[n + 8 * 1024 * 1024] = '\0';
        blast(chunked, 0);
    }
    /* 1 MB of headers */
    head = malloc(cap);
    cr_assert_not_null(head);
    len += (size_t)snprintf(head, cap, "GET /status HTTP/1.1\r\nHost: a\r\n");
    for (int i = 0; len + 1100 < cap - 8 && len < 1024 * 1024; i++) {
        len += (size_t)snprintf(head + len, cap - len, "X-Pad-%06d: ", i);
        memset(head + len, 'h', 1000);
        len += 1000;
        len += (size_t)snprintf(head + len, cap - len, "\r\n");
    }
    snprintf(head + len, cap - len, "\r\n");
    blast(head, 0);
    free(head);

    after = sup_rss_kb(px.proc->pid);
    cr_assert_lt(after - before, 16 * 1024, "RSS grew from %ld KiB to %ld KiB", before, after);
    cr_assert_eq(http_get(admin_port, "/status", &r), 0, "/status no longer answers");
    cr_assert_eq(r.code, 200);
    free(r.body);
    fprintf(stderr, "admin limits: RSS %ld KiB before, %ld KiB after\n", before, after);
    stop_proxy_clean();
}
