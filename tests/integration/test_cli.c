/* Integration tests of the switchyard-health CLI: `check` against real gRPC
 * servers (sy-backend in plaintext, an in-process gRPC C core server with
 * TLS), `status` against a fake admin HTTP server serving canned documents.
 * Invariant: the CLI always runs as a child process ($SY_HEALTH_BIN, built
 * with ASan, so a leak or memory error shows as a wrong exit status), and
 * every process or thread a test starts is stopped in .fini.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>
#include <jansson.h>

#include "grpc/health/v1/health.pb-c.h"
#include "tests/peers/gclient.h"
#include "tests/support/fakehttp.h"
#include "tests/support/support.h"

#define CLI_T 30000 /* ms a CLI run may take (ASan, 2 shared cores) */

enum {
    SERVING = 1,
    NOT_SERVING = 2,
};

/* ---- running the CLI ---- */

static const char *cli_bin(void)
{
    const char *s = getenv("SY_HEALTH_BIN");

    return s && s[0] ? s : "build/switchyard-health";
}

struct run {
    int status; /* exit status as sup_wait_exit() returns it */
    char *out;  /* stdout (owned) */
    char *err;  /* stderr (owned) */
};

/* Runs the CLI with |args| (NULL-terminated, without argv[0]). */
static void run_cli(struct run *r, const char *const *args)
{
    const char *argv[32];
    struct sup_proc *p = NULL;
    size_t n = 0;

    argv[n++] = cli_bin();
    while (*args && n < sizeof(argv) / sizeof(argv[0]) - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    r->status = sup_run("cli", argv, CLI_T, &p);
    cr_assert_not_null(p, "could not spawn %s", cli_bin());
    r->out = sup_read_file(p->out_path);
    r->err = sup_read_file(p->err_path);
    cr_assert(r->out && r->err, "no output files");
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof(*r));
}

#define CLI(r, ...) run_cli((r), (const char *const[]){__VA_ARGS__, NULL})

/* Checks the exit status and that stdout/stderr contain |out_has|/|err_has|
 * (unless NULL); |line| is the caller's, for the messages. */
static void expect_at(int line, const struct run *r, int status, const char *out_has,
                      const char *err_has)
{
    cr_expect_eq(r->status, status, "line %d: exit status %d, want %d\nstdout:\n%s\nstderr:\n%s",
                 line, r->status, status, r->out, r->err);
    if (out_has)
        cr_expect(strstr(r->out, out_has), "line %d: stdout lacks \"%s\":\n%s\nstderr:\n%s", line,
                  out_has, r->out, r->err);
    if (err_has)
        cr_expect(strstr(r->err, err_has), "line %d: stderr lacks \"%s\":\n%s", line, err_has,
                  r->err);
}

#define expect(...) expect_at(__LINE__, __VA_ARGS__)

/* ===================================================================== */
/* check against sy-backend                                               */
/* ===================================================================== */

static struct sup_backend be;

static void start_backend(void)
{
    cr_assert_eq(sup_start_backend(&be, "b0", NULL), 0, "sy-backend did not start");
}

static void stop_all(void)
{
    sup_stop_all();
}

TestSuite(cli_check, .init = start_backend, .fini = stop_all, .timeout = 120);

Test(cli_check, serving_exits_0)
{
    struct run r;

    CLI(&r, "check", be.addr);
    expect(&r, 0, "status: SERVING\n", NULL);
    cr_expect_str_empty(r.err, "stderr not empty: %s", r.err);
    run_free(&r);

    /* Options after the address, = syntax, verbose steps on stderr. */
    CLI(&r, "check", be.addr, "--timeout=5s", "--authority", "health.example:443", "-v");
    expect(&r, 0, "status: SERVING", "connection established");
    cr_expect(strstr(r.err, "time elapsed: connect="), "%s", r.err);
    run_free(&r);
}

Test(cli_check, not_serving_exits_4)
{
    struct run r;

    cr_assert_eq(gc_set_health(be.addr, "", NOT_SERVING), 0);
    CLI(&r, "check", be.addr);
    expect(&r, 4, NULL, "service unhealthy (responded with \"NOT_SERVING\")");
    cr_expect_str_empty(r.out, "stdout not empty: %s", r.out);
    run_free(&r);

    cr_assert_eq(gc_set_health(be.addr, "", SERVING), 0);
    CLI(&r, "check", be.addr);
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_check, named_service)
{
    struct run r;

    cr_assert_eq(gc_set_health(be.addr, "sy.test.Echo", SERVING), 0);
    CLI(&r, "check", "--service", "sy.test.Echo", be.addr);
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);

    cr_assert_eq(gc_set_health(be.addr, "sy.test.Echo", NOT_SERVING), 0);
    CLI(&r, "check", "-s", "sy.test.Echo", be.addr);
    expect(&r, 4, NULL, "responded with \"NOT_SERVING\"");
    run_free(&r);

    /* The overall status is independent. */
    CLI(&r, "check", be.addr);
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_check, unknown_service_exits_3)
{
    struct run r;

    CLI(&r, "check", be.addr, "--service", "no.such.Service");
    expect(&r, 3, NULL, "error: health rpc failed: rpc error: code = NotFound desc = ");
    run_free(&r);
}

Test(cli_check, closed_port_exits_2)
{
    char addr[32];
    struct run r;
    long t0;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sup_free_port());
    t0 = sup_now_ms();
    CLI(&r, "check", addr, "--timeout", "10s");
    expect(&r, 2, NULL, "error: failed to connect service at \"");
    cr_expect(strstr(r.err, addr), "%s", r.err);
    /* A refused connection fails at once, not after the timeout. */
    cr_expect_lt(sup_now_ms() - t0, 8000, "took %ld ms", sup_now_ms() - t0);
    run_free(&r);
}

Test(cli_check, connect_timeout_exits_2)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    socklen_t slen = sizeof(sin);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    char addr[32], want[96];
    struct run r;

    /* A listener that never accepts and never speaks HTTP/2: TCP connects
     * (the kernel completes the handshake), gRPC never sees SETTINGS. */
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0);
    cr_assert(listen(fd, 8) == 0 && getsockname(fd, (struct sockaddr *)&sin, &slen) == 0);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", ntohs(sin.sin_port));
    snprintf(want, sizeof(want), "timeout: failed to connect service \"%s\" within 300ms", addr);
    CLI(&r, "check", addr, "--timeout", "300ms");
    expect(&r, 2, NULL, want);
    run_free(&r);
    close(fd);
}

Test(cli_check, bad_arguments_exit_1)
{
    static const char *const cases[][6] = {
        {"check", NULL},
        {"check", "--bogus", "127.0.0.1:1", NULL},
        {"check", "127.0.0.1:1", "127.0.0.1:2", NULL},
        {"check", "127.0.0.1:1", "--timeout", "soon", NULL},
        {"check", "127.0.0.1:1", "--timeout", "0s", NULL},
        {"check", "127.0.0.1:1", "--timeout", NULL},
        {"check", "127.0.0.1:1", "--tls-ca", "ca.pem", NULL},
        {"check", "127.0.0.1:1", "--tls", "--tls-cert", "c.pem", NULL},
        {"check", "127.0.0.1:1", "--tls", "--tls-no-verify", "--tls-ca", "ca.pem"},
        {"check", "127.0.0.1:1", "--tls", "--tls-ca", "/nonexistent/ca.pem", NULL},
        {"frobnicate", NULL},
        {"--bogus", NULL},
        {"status", "--watch", "0", NULL},
        {"status", "--admin", NULL},
        {"status", "extra", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;

        run_cli(&r, cases[i]);
        cr_expect_eq(r.status, 1, "case %zu (%s %s): exit %d\nstderr: %s", i, cases[i][0],
                     cases[i][1] ? cases[i][1] : "", r.status, r.err);
        cr_expect(strstr(r.err, "error") || strstr(r.err, "usage"),
                  "case %zu: no message on stderr: %s", i, r.err);
        cr_expect_str_empty(r.out, "case %zu: stdout not empty: %s", i, r.out);
        run_free(&r);
    }
    {
        struct run r;

        run_cli(&r, (const char *const[]){NULL});
        expect(&r, 1, NULL, "usage: switchyard-health");
        run_free(&r);
    }
}

Test(cli_check, help_exits_0)
{
    static const char *const cases[][3] = {
        {"--help", NULL},    {"-h", NULL},         {"help", NULL},   {"help", "check"},
        {"check", "--help"}, {"status", "--help"}, {"status", "-h"}, {"help", "status"},
    };
    static const char *const want[] = {
        "Commands:",       "Commands:", "Commands:", "--tls-no-verify",
        "--tls-no-verify", "--watch",   "--watch",   "--watch",
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;

        run_cli(&r, cases[i]);
        cr_expect_eq(r.status, 0, "case %zu: exit %d", i, r.status);
        cr_expect(strstr(r.out, "usage: switchyard-health"), "case %zu: %s", i, r.out);
        cr_expect(strstr(r.out, want[i]), "case %zu lacks %s: %s", i, want[i], r.out);
        cr_expect(strstr(r.out, "Exit status") || strcmp(cases[i][0], "help") == 0 ||
                      cases[i][0][0] == '-',
                  "case %zu: no exit statuses: %s", i, r.out);
        run_free(&r);
    }
    {
        struct run r;

        CLI(&r, "--version");
        expect(&r, 0, "switchyard-health 0.1.0", NULL);
        run_free(&r);
        CLI(&r, "-V");
        expect(&r, 0, "switchyard-health 0.1.0", NULL);
        run_free(&r);
        /* -v is verbose (grpc_health_probe's letter), never the version. */
        CLI(&r, "-v");
        cr_expect_eq(r.status, 1, "-v alone: exit %d", r.status);
        cr_expect(strstr(r.out, "0.1.0") == NULL, "-v printed the version: %s", r.out);
        run_free(&r);
        CLI(&r, "check", "-h");
        expect(&r, 0, "-rpc-header", NULL);
        run_free(&r);
        CLI(&r, "check", "-help");
        expect(&r, 0, "-tls-ca-cert", NULL);
        run_free(&r);
    }
}

/* ===================================================================== */
/* check with grpc_health_probe's flags against sy-backend                */
/* ===================================================================== */

/* sy-backend writes the metadata of every Health/Check it serves here. */
static char md_log[600];

static void start_md_backend(void)
{
    snprintf(md_log, sizeof(md_log), "%s/md.log", sup_tmpdir());
    cr_assert_eq(sup_start_backend(&be, "b0", (const char *const[]){"--md-log", md_log, NULL}), 0,
                 "sy-backend did not start");
}

/* The md log's text after the last "check" line: the last call's metadata. */
static char *last_check(void)
{
    char *all = sup_read_file(md_log), *last, *p;

    cr_assert_not_null(all, "no %s", md_log);
    last = all;
    for (p = strstr(all, "check service="); p != NULL; p = strstr(p + 1, "check service="))
        last = p;
    p = strdup(last);
    free(all);
    cr_assert_not_null(p);
    return p;
}

TestSuite(cli_probe, .init = start_md_backend, .fini = stop_all, .timeout = 120);

Test(cli_probe, addr_flag_in_every_spelling)
{
    char eq[64];
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=%s", be.addr);
    CLI(&r, "check", eq);
    expect(&r, 0, "status: SERVING\n", NULL);
    cr_expect_str_empty(r.err, "stderr not empty: %s", r.err);
    run_free(&r);

    CLI(&r, "check", "--addr", be.addr, "--connect-timeout=5s", "-rpc-timeout", "5s");
    expect(&r, 0, "status: SERVING\n", NULL);
    run_free(&r);

    /* Without the command, as grpc_health_probe is called. */
    CLI(&r, eq, "-connect-timeout", "5s");
    expect(&r, 0, "status: SERVING\n", NULL);
    run_free(&r);
    CLI(&r, "-addr", be.addr);
    expect(&r, 0, "status: SERVING\n", NULL);
    run_free(&r);
}

Test(cli_probe, service_flag_checks_that_service)
{
    char eq[64];
    char *md;
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=%s", be.addr);
    cr_assert_eq(gc_set_health(be.addr, "echo", SERVING), 0);
    CLI(&r, "check", eq, "-service=echo");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
    md = last_check();
    cr_expect(strncmp(md, "check service=\"echo\"\n", 21) == 0, "the backend saw: %s", md);
    free(md);

    cr_assert_eq(gc_set_health(be.addr, "echo", NOT_SERVING), 0);
    CLI(&r, eq, "-service", "echo");
    expect(&r, 4, NULL, "service unhealthy (responded with \"NOT_SERVING\")");
    run_free(&r);
    CLI(&r, "check", be.addr, "--service=echo");
    expect(&r, 4, NULL, "NOT_SERVING");
    run_free(&r);
    CLI(&r, "check", be.addr, "-s=echo");
    expect(&r, 4, NULL, "NOT_SERVING");
    run_free(&r);

    /* The server as a whole is still SERVING. */
    CLI(&r, eq, "-service=");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_probe, unknown_service_exits_3)
{
    char eq[64];
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=%s", be.addr);
    CLI(&r, eq, "-service=no.such.Service");
    expect(&r, 3, NULL, "error: health rpc failed: rpc error: code = NotFound desc = ");
    run_free(&r);
}

Test(cli_probe, closed_port_exits_2)
{
    char eq[64];
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=127.0.0.1:%d", sup_free_port());
    CLI(&r, eq, "-connect-timeout=10s");
    expect(&r, 2, NULL, "error: failed to connect service at \"127.0.0.1:");
    run_free(&r);
}

Test(cli_probe, rpc_headers_and_user_agent_reach_the_backend)
{
    char eq[64];
    char *md;
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=%s", be.addr);
    CLI(&r, eq, "-rpc-header", "X-Sy-Test: hello, world", "-rpc-header=k2:v2", "--rpc-header",
        "authorization: Bearer abc.def", "-user-agent=probe-ua/1.2");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
    md = last_check();
    cr_expect(strstr(md, "\n  x-sy-test: hello, world\n"), "the backend saw: %s", md);
    cr_expect(strstr(md, "\n  k2: v2\n"), "the backend saw: %s", md);
    cr_expect(strstr(md, "\n  authorization: Bearer abc.def\n"), "the backend saw: %s", md);
    /* gRPC appends its own product token after the primary user agent. */
    cr_expect(strstr(md, "\n  user-agent: probe-ua/1.2 "), "the backend saw: %s", md);
    free(md);

    /* Without -user-agent: this CLI's name; no stray headers. */
    CLI(&r, "check", be.addr);
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
    md = last_check();
    cr_expect(strstr(md, "\n  user-agent: switchyard-health/"), "the backend saw: %s", md);
    cr_expect(strstr(md, "x-sy-test") == NULL, "the backend saw: %s", md);
    free(md);
}

Test(cli_probe, verbose_and_booleans)
{
    char eq[64];
    struct run r;

    snprintf(eq, sizeof(eq), "-addr=%s", be.addr);
    CLI(&r, eq, "-v", "-rpc-header=k: v");
    expect(&r, 0, "status: SERVING", "parsed options:");
    cr_expect(strstr(r.err, "> rpc-header: k: v"), "%s", r.err);
    cr_expect(strstr(r.err, "connection established"), "%s", r.err);
    run_free(&r);
    CLI(&r, eq, "-v=false", "--tls=false");
    expect(&r, 0, "status: SERVING", NULL);
    cr_expect_str_empty(r.err, "-v=false still verbose: %s", r.err);
    run_free(&r);
}

Test(cli_probe, unknown_or_malformed_flags_exit_1)
{
    static const char *const cases[][5] = {
        {"check", "-addr=127.0.0.1:1", "-bogus", NULL},
        {"check", "-addr=127.0.0.1:1", "--bogus=1", NULL},
        {"check", "127.0.0.1:1", "-secho", NULL}, /* getopt's -s echo once: now unknown */
        {"check", "127.0.0.1:1", "-servic=echo", NULL},
        {"check", "127.0.0.1:1", "-alts", NULL},
        {"check", "127.0.0.1:1", "-v=maybe", NULL},
        {"check", "127.0.0.1:1", "-rpc-header", "no colon", NULL},
        {"check", "127.0.0.1:1", "-rpc-header=: empty name", NULL},
        {"check", "127.0.0.1:1", "-rpc-header=grpc-timeout: 1S", NULL},
        {"check", "127.0.0.1:1", "-rpc-header=bad name: x", NULL},
        {"check", "127.0.0.1:1", "-rpc-header", NULL},
        {"check", "127.0.0.1:1", "-connect-timeout=0s", NULL},
        {"check", "127.0.0.1:1", "-rpc-timeout=soon", NULL},
        {"check", "-addr=127.0.0.1:1", "127.0.0.1:2", NULL},
        {"check", "-addr", NULL},
        {"check", "-service=echo", NULL},
        {"-addr=127.0.0.1:1", "-tls-ca-cert=ca.pem", NULL},
        {"-addr=127.0.0.1:1", "-tls", "-tls-client-cert=c.pem", NULL},
        {"-addr=127.0.0.1:1", "-tls", "-tls-no-verify", "-tls-server-name=x", NULL},
        {"-addr=127.0.0.1:1", "-tls", "-tls-ca-cert=/nonexistent/ca.pem", NULL},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;

        run_cli(&r, cases[i]);
        cr_expect_eq(r.status, 1, "case %zu (%s %s %s): exit %d\nstderr: %s", i, cases[i][0],
                     cases[i][1] ? cases[i][1] : "", cases[i][1] && cases[i][2] ? cases[i][2] : "",
                     r.status, r.err);
        cr_expect(strstr(r.err, "error"), "case %zu: no message on stderr: %s", i, r.err);
        cr_expect_str_empty(r.out, "case %zu: stdout not empty: %s", i, r.out);
        run_free(&r);
    }
}

/* ===================================================================== */
/* check over TLS against an in-process gRPC C core server                */
/* ===================================================================== */

enum {
    T_NEW = 1,  /* grpc_server_request_call */
    T_DONE,     /* the one batch of a call */
    T_SHUTDOWN, /* grpc_server_shutdown_and_notify */
};

struct tls_server {
    grpc_server *srv;
    grpc_completion_queue *cq;
    pthread_t thread;
    int port;
    char addr[32];
    /* The call being served (one at a time). */
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    int cancelled;
};

static struct tls_server tls;
static bool tls_running;
static char ca_pem[512], ca_key[512], srv_pem[512], srv_key[512], other_pem[512], other_key[512],
    client_pem[512], client_key[512];

static void tls_request(struct tls_server *s)
{
    grpc_call_details_init(&s->details);
    grpc_metadata_array_init(&s->md);
    s->call = NULL;
    cr_assert_eq(grpc_server_request_call(s->srv, &s->call, &s->details, &s->md, s->cq, s->cq,
                                          (void *)T_NEW),
                 GRPC_CALL_OK);
}

/* Answers any call with HealthCheckResponse{SERVING}. */
static void tls_answer(struct tls_server *s)
{
    Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    grpc_slice status_details = grpc_slice_from_static_string("");
    uint8_t buf[16];
    grpc_slice body;
    grpc_byte_buffer *bb;
    grpc_op ops[5];

    rep.status = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    body =
        grpc_slice_from_copied_buffer((const char *)buf, protobuf_c_message_pack(&rep.base, buf));
    bb = grpc_raw_byte_buffer_create(&body, 1);
    grpc_slice_unref(body);
    memset(ops, 0, sizeof(ops));
    ops[0].op = GRPC_OP_RECV_MESSAGE;
    ops[0].data.recv_message.recv_message = &s->req;
    ops[1].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[2].op = GRPC_OP_SEND_MESSAGE;
    ops[2].data.send_message.send_message = bb;
    ops[3].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
    ops[3].data.send_status_from_server.status = GRPC_STATUS_OK;
    ops[3].data.send_status_from_server.status_details = &status_details;
    ops[4].op = GRPC_OP_RECV_CLOSE_ON_SERVER;
    ops[4].data.recv_close_on_server.cancelled = &s->cancelled;
    cr_assert_eq(grpc_call_start_batch(s->call, ops, 5, (void *)T_DONE, NULL), GRPC_CALL_OK);
    grpc_byte_buffer_destroy(bb);
}

static void tls_call_done(struct tls_server *s)
{
    if (s->req)
        grpc_byte_buffer_destroy(s->req);
    s->req = NULL;
    if (s->call)
        grpc_call_unref(s->call);
    s->call = NULL;
    grpc_call_details_destroy(&s->details);
    grpc_metadata_array_destroy(&s->md);
}

static void *tls_server_main(void *arg)
{
    struct tls_server *s = arg;
    bool shutdown = false, request_failed = false;

    tls_request(s);
    while (!(shutdown && request_failed)) {
        grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);

        if (ev.type != GRPC_OP_COMPLETE)
            break;
        switch ((intptr_t)ev.tag) {
        case T_NEW:
            if (!ev.success) {
                tls_call_done(s);
                request_failed = true;
            } else {
                tls_answer(s);
            }
            break;
        case T_DONE:
            tls_call_done(s);
            if (!shutdown)
                tls_request(s);
            else
                request_failed = true;
            break;
        case T_SHUTDOWN:
            shutdown = true;
            break;
        }
    }
    return NULL;
}

static void quiet_log(gpr_log_func_args *args)
{
    (void)args;
}

/* Starts the TLS health server with |cert|/|key|; with |client_ca|, clients
 * must present a certificate signed by it. */
static void tls_start(const char *cert, const char *key, const char *client_ca)
{
    char *cert_pem = sup_read_file(cert), *key_pem = sup_read_file(key);
    char *ca = client_ca ? sup_read_file(client_ca) : NULL;
    grpc_ssl_pem_key_cert_pair pair = {key_pem, cert_pem};
    grpc_server_credentials *creds;
    char listen_addr[32];

    cr_assert(cert_pem && key_pem && (!client_ca || ca));
    /* The handshakes the tests make fail on purpose; the core would log each. */
    gpr_set_log_function(quiet_log);
    grpc_init();
    creds = grpc_ssl_server_credentials_create_ex(
        ca, &pair, 1,
        ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
           : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE,
        NULL);
    tls.cq = grpc_completion_queue_create_for_next(NULL);
    tls.srv = grpc_server_create(NULL, NULL);
    grpc_server_register_completion_queue(tls.srv, tls.cq, NULL);
    tls.port = sup_free_port();
    snprintf(listen_addr, sizeof(listen_addr), "127.0.0.1:%d", tls.port);
    snprintf(tls.addr, sizeof(tls.addr), "127.0.0.1:%d", tls.port);
    cr_assert_eq(grpc_server_add_http2_port(tls.srv, listen_addr, creds), tls.port);
    grpc_server_credentials_release(creds);
    grpc_server_start(tls.srv);
    cr_assert_eq(pthread_create(&tls.thread, NULL, tls_server_main, &tls), 0);
    tls_running = true;
    free(cert_pem);
    free(key_pem);
    free(ca);
}

static void tls_stop(void)
{
    grpc_event ev;

    if (!tls_running)
        return;
    tls_running = false;
    grpc_server_shutdown_and_notify(tls.srv, tls.cq, (void *)T_SHUTDOWN);
    grpc_server_cancel_all_calls(tls.srv);
    pthread_join(tls.thread, NULL);
    grpc_server_destroy(tls.srv);
    grpc_completion_queue_shutdown(tls.cq);
    do {
        ev = grpc_completion_queue_next(tls.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    } while (ev.type != GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(tls.cq);
    grpc_shutdown_blocking();
}

static void openssl(const char *const *args)
{
    const char *argv[40];
    struct sup_proc *p = NULL;
    size_t n = 0;
    int st;

    argv[n++] = "/usr/bin/openssl";
    while (*args && n < sizeof(argv) / sizeof(argv[0]) - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    st = sup_run("openssl", argv, 60000, &p);
    if (st != 0 && p)
        sup_dump_log(p, 20);
    cr_assert_eq(st, 0, "openssl %s failed (%d)", argv[1], st);
}

/* Makes a certificate signed by the test CA for |cn| with |san|. */
static void make_cert(const char *name, const char *cn, const char *san, char *pem, char *key)
{
    char subj[128], ext[160];

    snprintf(pem, 512, "%s/%s.pem", sup_tmpdir(), name);
    snprintf(key, 512, "%s/%s.key", sup_tmpdir(), name);
    snprintf(subj, sizeof(subj), "/CN=%s", cn);
    snprintf(ext, sizeof(ext), "subjectAltName=%s", san);
    openssl((const char *const[]){"req",
                                  "-x509",
                                  "-newkey",
                                  "ec",
                                  "-pkeyopt",
                                  "ec_paramgen_curve:prime256v1",
                                  "-nodes",
                                  "-keyout",
                                  key,
                                  "-out",
                                  pem,
                                  "-days",
                                  "2",
                                  "-subj",
                                  subj,
                                  "-addext",
                                  ext,
                                  "-addext",
                                  "basicConstraints=critical,CA:FALSE",
                                  "-CA",
                                  ca_pem,
                                  "-CAkey",
                                  ca_key,
                                  NULL});
}

static void make_pki(void)
{
    snprintf(ca_pem, sizeof(ca_pem), "%s/ca.pem", sup_tmpdir());
    snprintf(ca_key, sizeof(ca_key), "%s/ca.key", sup_tmpdir());
    openssl((const char *const[]){
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", ca_key, "-out", ca_pem, "-days", "2", "-subj", "/CN=switchyard test CA", NULL});
    make_cert("server", "localhost", "DNS:localhost,IP:127.0.0.1", srv_pem, srv_key);
    make_cert("other", "other.example", "DNS:other.example", other_pem, other_key);
    make_cert("client", "switchyard-health test client", "DNS:client.example", client_pem,
              client_key);
}

static void tls_fini(void)
{
    tls_stop();
    sup_stop_all();
}

TestSuite(cli_tls, .init = make_pki, .fini = tls_fini, .timeout = 120);

Test(cli_tls, verified_with_ca)
{
    struct run r;

    tls_start(srv_pem, srv_key, NULL);
    CLI(&r, "check", tls.addr, "--tls", "--tls-ca", ca_pem, "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);

    /* Without our CA the system roots do not know the server: connection failure. */
    CLI(&r, "check", tls.addr, "--tls", "--timeout", "10s");
    expect(&r, 2, NULL, "error: failed to connect service at");
    run_free(&r);

    /* Plaintext against TLS fails to connect too. */
    CLI(&r, "check", tls.addr, "--timeout", "10s");
    expect(&r, 2, NULL, NULL);
    run_free(&r);

    CLI(&r, "check", tls.addr, "--tls", "--tls-no-verify", "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_tls, wrong_name)
{
    struct run r;

    tls_start(other_pem, other_key, NULL);
    CLI(&r, "check", tls.addr, "--tls", "--tls-ca", ca_pem, "--timeout", "10s");
    expect(&r, 2, NULL, "error: failed to connect service at");
    run_free(&r);

    CLI(&r, "check", tls.addr, "--tls", "--tls-ca", ca_pem, "--tls-server-name", "other.example",
        "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);

    /* --tls-no-verify skips the name check as well as the chain. */
    CLI(&r, "check", tls.addr, "--tls", "--tls-no-verify", "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_tls, client_certificate)
{
    struct run r;

    tls_start(srv_pem, srv_key, ca_pem);
    CLI(&r, "check", tls.addr, "--tls", "--tls-ca", ca_pem, "--timeout", "10s");
    cr_expect(r.status == 2 || r.status == 3, "exit %d without a client cert: %s", r.status, r.err);
    run_free(&r);

    CLI(&r, "check", tls.addr, "--tls", "--tls-ca", ca_pem, "--tls-cert", client_pem, "--tls-key",
        client_key, "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);

    /* The client certificate goes with --tls-no-verify's credentials too. */
    CLI(&r, "check", tls.addr, "--tls", "--tls-no-verify", "--tls-cert", client_pem, "--tls-key",
        client_key, "--timeout", "10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

Test(cli_tls, grpc_health_probe_tls_flags)
{
    char addr[64], ca[600], cert[600], key[600];
    struct run r;

    tls_start(srv_pem, srv_key, ca_pem);
    snprintf(addr, sizeof(addr), "-addr=%s", tls.addr);
    snprintf(ca, sizeof(ca), "-tls-ca-cert=%s", ca_pem);
    snprintf(cert, sizeof(cert), "-tls-client-cert=%s", client_pem);
    snprintf(key, sizeof(key), "-tls-client-key=%s", client_key);
    CLI(&r, addr, "-tls", ca, cert, key, "-connect-timeout=10s", "-rpc-timeout=10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);

    /* The CA is what verifies the server: without it, no connection. */
    CLI(&r, addr, "-tls", cert, key, "-connect-timeout=10s");
    expect(&r, 2, NULL, "error: failed to connect service at");
    run_free(&r);

    CLI(&r, addr, "-tls", ca, cert, key, "-tls-server-name=localhost", "-connect-timeout=10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
    CLI(&r, addr, "-tls", ca, cert, key, "-tls-server-name=other.example", "-connect-timeout=10s");
    expect(&r, 2, NULL, NULL);
    run_free(&r);

    CLI(&r, addr, "-tls", "-tls-no-verify", cert, key, "-connect-timeout=10s");
    expect(&r, 0, "status: SERVING", NULL);
    run_free(&r);
}

/* ===================================================================== */
/* status against a fake admin listener                                   */
/* ===================================================================== */

static const char *const doc_healthy =
    "{\"version\":\"0.1.0\",\"uptime_seconds\":12.3,\"config_file\":\"conf/switchyard.ini\","
    "\"workers\":2,\"draining\":false,\"clusters\":["
    "{\"name\":\"echo\",\"policy\":\"round_robin\",\"routes\":[\"/sy.test.\"],"
    "\"targets\":[\"127.0.0.1:50061\",\"echo.svc:50051\"],\"panic\":false,"
    "\"endpoints_total\":2,\"endpoints_in_rotation\":2,\"endpoints\":["
    "{\"address\":\"127.0.0.1:50061\",\"origin\":\"127.0.0.1:50061\",\"healthy\":true,"
    "\"in_rotation\":true,\"reason\":\"SERVING\",\"since_seconds\":10.2,"
    "\"last_check_seconds_ago\":0.5,\"last_check_latency_ms\":1.2,\"consecutive_failures\":0,"
    "\"active_calls\":0,\"calls_total\":100},"
    "{\"address\":\"10.1.2.3:50051\",\"origin\":\"echo.svc:50051\",\"healthy\":true,"
    "\"in_rotation\":true,\"reason\":\"SERVING\",\"since_seconds\":3725,"
    "\"last_check_seconds_ago\":1.5,\"last_check_latency_ms\":0.4,\"consecutive_failures\":0,"
    "\"weight\":7,\"active_calls\":3,\"calls_total\":123456}]},"
    "{\"name\":\"users\",\"policy\":\"pick_first\",\"routes\":[\"/\"],"
    "\"targets\":[\"127.0.0.1:50071\"],\"panic\":false,"
    "\"endpoints_total\":1,\"endpoints_in_rotation\":1,\"endpoints\":["
    "{\"address\":\"127.0.0.1:50071\",\"origin\":\"127.0.0.1:50071\",\"healthy\":true,"
    "\"in_rotation\":true,\"reason\":\"SERVING\",\"since_seconds\":null,"
    "\"last_check_seconds_ago\":0.2,\"last_check_latency_ms\":2.5,\"consecutive_failures\":0,"
    "\"active_calls\":0,\"calls_total\":7}]}]}";

static const char *const doc_one_out =
    "{\"version\":\"0.1.0\",\"uptime_seconds\":100,\"config_file\":\"sw.ini\","
    "\"workers\":1,\"draining\":false,\"clusters\":["
    "{\"name\":\"echo\",\"policy\":\"round_robin\",\"routes\":[\"/sy.test.\"],"
    "\"targets\":[\"127.0.0.1:50061\",\"127.0.0.1:50062\"],\"panic\":false,"
    "\"endpoints_total\":2,\"endpoints_in_rotation\":1,\"endpoints\":["
    "{\"address\":\"127.0.0.1:50061\",\"origin\":\"127.0.0.1:50061\",\"healthy\":true,"
    "\"in_rotation\":true,\"reason\":\"SERVING\",\"since_seconds\":10.2,"
    "\"last_check_seconds_ago\":0.5,\"last_check_latency_ms\":1.2,\"consecutive_failures\":0,"
    "\"active_calls\":0,\"calls_total\":100},"
    "{\"address\":\"127.0.0.1:50062\",\"origin\":\"127.0.0.1:50062\",\"healthy\":false,"
    "\"in_rotation\":false,\"reason\":\"NOT_SERVING\",\"since_seconds\":4.0,"
    "\"last_check_seconds_ago\":0.3,\"last_check_latency_ms\":0.9,\"consecutive_failures\":3,"
    "\"active_calls\":0,\"calls_total\":42}]}]}";

/* A cluster with no endpoint at all, the other never checked. */
static const char *const doc_empty_cluster =
    "{\"version\":\"0.1.0\",\"uptime_seconds\":1,\"config_file\":\"sw.ini\",\"workers\":1,"
    "\"draining\":true,\"clusters\":["
    "{\"name\":\"ghost\",\"policy\":\"round_robin\",\"routes\":[\"/g.\"],"
    "\"targets\":[\"nothing.invalid:1\"],\"panic\":true,\"endpoints_total\":0,"
    "\"endpoints_in_rotation\":0,\"endpoints\":[]},"
    "{\"name\":\"new\",\"policy\":\"round_robin\",\"routes\":[\"/\"],"
    "\"targets\":[\"127.0.0.1:50081\"],\"panic\":false,\"endpoints_total\":1,"
    "\"endpoints_in_rotation\":0,\"endpoints\":["
    "{\"address\":\"127.0.0.1:50081\",\"origin\":\"127.0.0.1:50081\",\"healthy\":false,"
    "\"in_rotation\":false,\"reason\":\"pending first check\",\"since_seconds\":null,"
    "\"last_check_seconds_ago\":null,\"last_check_latency_ms\":null,"
    "\"consecutive_failures\":0,\"active_calls\":0,\"calls_total\":0}]}]}";

/* One endpoint of each way out besides DOWN: ejected by outlier detection,
 * drained by an operator, and one a reload removed whose calls still run
 * (not counted against the cluster). */
static const char *const doc_ejected_drained =
    "{\"version\":\"0.1.0\",\"uptime_seconds\":5,\"config_file\":\"sw.ini\",\"workers\":2,"
    "\"draining\":false,\"clusters\":["
    "{\"name\":\"echo\",\"policy\":\"round_robin\",\"routes\":[\"/sy.test.\"],"
    "\"targets\":[\"127.0.0.1:50091\",\"127.0.0.1:50092\",\"127.0.0.1:50093\"],"
    "\"panic\":false,\"endpoints_total\":3,\"endpoints_in_rotation\":1,\"endpoints\":["
    "{\"address\":\"127.0.0.1:50091\",\"origin\":\"127.0.0.1:50091\",\"healthy\":true,"
    "\"in_rotation\":true,\"reason\":\"SERVING\",\"since_seconds\":4,"
    "\"last_check_seconds_ago\":0.1,\"last_check_latency_ms\":1,\"consecutive_failures\":0,"
    "\"weight\":1,\"active_calls\":0,\"calls_total\":10},"
    "{\"address\":\"127.0.0.1:50092\",\"origin\":\"127.0.0.1:50092\",\"healthy\":true,"
    "\"in_rotation\":false,\"ejected\":true,\"reason\":\"ejected: 5 consecutive failures\","
    "\"since_seconds\":1,\"last_check_seconds_ago\":0.1,\"last_check_latency_ms\":1,"
    "\"consecutive_failures\":0,\"weight\":1,\"active_calls\":0,\"calls_total\":9},"
    "{\"address\":\"127.0.0.1:50093\",\"origin\":\"127.0.0.1:50093\",\"healthy\":true,"
    "\"in_rotation\":false,\"drained\":true,\"reason\":\"drained by operator\","
    "\"since_seconds\":2,\"last_check_seconds_ago\":0.1,\"last_check_latency_ms\":1,"
    "\"consecutive_failures\":0,\"weight\":1,\"active_calls\":0,\"calls_total\":8},"
    "{\"address\":\"127.0.0.1:50094\",\"origin\":\"127.0.0.1:50094\",\"state\":\"draining\","
    "\"active_calls\":2}]}]}";

static struct fh_server *fh;

static void status_fini(void)
{
    fh_stop(fh);
    fh = NULL;
    sup_stop_all();
}

TestSuite(cli_status, .fini = status_fini, .timeout = 120);

static bool has_line_with(const char *text, const char *a, const char *b, const char *c)
{
    const char *line = text;

    while (line && *line) {
        const char *eol = strchr(line, '\n');
        size_t len = eol ? (size_t)(eol - line) : strlen(line);
        char buf[512];

        if (len >= sizeof(buf))
            len = sizeof(buf) - 1;
        memcpy(buf, line, len);
        buf[len] = '\0';
        if (strstr(buf, a) && (!b || strstr(buf, b)) && (!c || strstr(buf, c)))
            return true;
        line = eol ? eol + 1 : NULL;
    }
    return false;
}

Test(cli_status, all_in_rotation_exits_0)
{
    struct run r;

    fh = fh_start(FH_NORMAL, 200, doc_healthy);
    cr_assert_not_null(fh);
    CLI(&r, "status", "--admin", fh_addr(fh));
    expect(&r, 0, "switchyard 0.1.0, up 12.3s, 2 workers, config conf/switchyard.ini", NULL);
    cr_expect(has_line_with(r.out, "cluster echo", "round_robin", "2/2 endpoints in rotation"),
              "%s", r.out);
    cr_expect(has_line_with(r.out, "cluster users", "pick_first", "1/1 endpoint in rotation"), "%s",
              r.out);
    cr_expect(has_line_with(r.out, "ADDRESS", "ORIGIN", "LATENCY"), "%s", r.out);
    cr_expect(has_line_with(r.out, "FAILS", "WEIGHT", "ACTIVE"), "%s", r.out);
    /* weight 7, 3 active calls; an endpoint without a weight shows "-" */
    cr_expect(has_line_with(r.out, "10.1.2.3:50051", " 7 ", " 3 "), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50061", "UP", "SERVING"), "%s", r.out);
    cr_expect(has_line_with(r.out, "10.1.2.3:50051", "echo.svc:50051", "123456"), "%s", r.out);
    cr_expect(has_line_with(r.out, "10.1.2.3:50051", "1h02m", "1.5s ago"), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50061", "1.2ms", "10.2s"), "%s", r.out);
    cr_expect(!strstr(r.out, "PANIC") && !strstr(r.out, "DOWN"), "%s", r.out);
    cr_expect(!strchr(r.out, '\033'), "ANSI escape in output that is not a terminal:\n%s", r.out);
    cr_expect_str_empty(r.err, "%s", r.err);
    cr_expect(fh_last_request_contains(fh, "GET /status HTTP/1.1\r\n"), "request not a GET");
    run_free(&r);

    /* Same document, chunked; the address given as a bare port or a URL. */
    fh_set(fh, FH_CHUNKED, 200, doc_healthy);
    {
        char port[16], url[48];

        snprintf(port, sizeof(port), "%d", fh_port(fh));
        snprintf(url, sizeof(url), "http://%s/", fh_addr(fh));
        CLI(&r, "status", "-a", port);
        expect(&r, 0, "cluster echo", NULL);
        cr_expect(has_line_with(r.out, "127.0.0.1:50071", "UP", "2.5ms"), "%s", r.out);
        run_free(&r);
        CLI(&r, "status", "--admin", url);
        expect(&r, 0, "cluster users", NULL);
        run_free(&r);
    }
}

Test(cli_status, one_out_exits_1)
{
    struct run r;

    fh = fh_start(FH_NORMAL, 200, doc_one_out);
    cr_assert_not_null(fh);
    CLI(&r, "status", "--admin", fh_addr(fh));
    expect(&r, 1, NULL, NULL);
    cr_expect(has_line_with(r.out, "cluster echo", "1/2 endpoints in rotation", NULL), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50061", "UP", "SERVING"), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50062", "DOWN", "NOT_SERVING"), "%s", r.out);
    cr_expect(!strchr(r.out, '\033'), "ANSI escape in output:\n%s", r.out);
    run_free(&r);
}

Test(cli_status, empty_cluster_exits_1)
{
    struct run r;

    fh = fh_start(FH_NORMAL, 200, doc_empty_cluster);
    cr_assert_not_null(fh);
    CLI(&r, "status", "--admin", fh_addr(fh));
    expect(&r, 1, "DRAINING", NULL);
    cr_expect(has_line_with(r.out, "cluster ghost", "0/0 endpoints in rotation", "PANIC"), "%s",
              r.out);
    cr_expect(strstr(r.out, "(no endpoints)"), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50081", "DOWN", "pending first check"), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50081", "never", NULL), "%s", r.out);
    run_free(&r);
}

Test(cli_status, ejected_drained_and_draining_endpoints)
{
    struct run r;

    fh = fh_start(FH_NORMAL, 200, doc_ejected_drained);
    cr_assert_not_null(fh);
    CLI(&r, "status", "--admin", fh_addr(fh));
    expect(&r, 1, "cluster echo", NULL);
    cr_expect(has_line_with(r.out, "127.0.0.1:50091", "UP", NULL), "%s", r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50092", "EJECTED", "consecutive failures"), "%s",
              r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50093", "DRAINED", "drained by operator"), "%s",
              r.out);
    cr_expect(has_line_with(r.out, "127.0.0.1:50094", "DRAINING", NULL), "%s", r.out);
    run_free(&r);
}

Test(cli_status, json_prints_the_document)
{
    json_t *want = json_loads(doc_one_out, 0, NULL), *got;
    struct run r;

    fh = fh_start(FH_NORMAL, 200, doc_one_out);
    cr_assert_not_null(fh);
    CLI(&r, "status", "--json", "--admin", fh_addr(fh));
    expect(&r, 1, "\n  \"clusters\": [", NULL);
    got = json_loads(r.out, 0, NULL);
    cr_assert_not_null(got, "stdout is not JSON:\n%s", r.out);
    cr_expect(json_equal(want, got), "document changed:\n%s", r.out);
    cr_expect(strstr(r.out, "\"version\"") < strstr(r.out, "\"clusters\""), "order lost");
    json_decref(got);
    json_decref(want);
    run_free(&r);
}

Test(cli_status, unreachable_exits_2)
{
    char addr[32];
    struct run r;

    snprintf(addr, sizeof(addr), "127.0.0.1:%d", sup_free_port());
    CLI(&r, "status", "--admin", addr);
    expect(&r, 2, NULL, "error: cannot reach switchyard admin at ");
    cr_expect(strstr(r.err, "refused"), "%s", r.err);
    cr_expect_str_empty(r.out, "%s", r.out);
    run_free(&r);
}

Test(cli_status, garbage_exits_2)
{
    static const struct {
        enum fh_mode mode;
        int status;
        const char *body;
        const char *err;
    } cases[] = {
        {FH_NORMAL, 200, "<html>hello</html>", "answered garbage: not JSON"},
        {FH_NORMAL, 200, "{\"clusters\": 3}", "answered garbage: no \"clusters\" array"},
        {FH_NORMAL, 200, "[1,2,3]", "answered garbage"},
        {FH_NORMAL, 200, "{\"clusters\":[1]}", "answered garbage: cluster 0"},
        {FH_NORMAL, 404, "{}", "answered HTTP 404 Not Found"},
        {FH_NORMAL, 500, "oops", "answered HTTP 500"},
        {FH_RAW, 200, "SSH-2.0-OpenSSH_9.2\r\n", "not an HTTP response"},
        {FH_CHUNKED, 200, "not json at all", "answered garbage: not JSON"},
    };

    fh = fh_start(FH_NORMAL, 200, "");
    cr_assert_not_null(fh);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct run r;

        fh_set(fh, cases[i].mode, cases[i].status, cases[i].body);
        CLI(&r, "status", "--admin", fh_addr(fh));
        cr_expect_eq(r.status, 2, "case %zu: exit %d\n%s%s", i, r.status, r.out, r.err);
        cr_expect(strstr(r.err, cases[i].err), "case %zu: stderr lacks \"%s\": %s", i, cases[i].err,
                  r.err);
        run_free(&r);
    }
}

Test(cli_status, silent_admin_times_out_2)
{
    struct run r;
    long t0 = sup_now_ms();

    fh = fh_start(FH_SILENT, 200, "");
    cr_assert_not_null(fh);
    CLI(&r, "status", "--admin", fh_addr(fh), "--timeout", "300ms");
    expect(&r, 2, NULL, "no complete response within 300ms");
    cr_expect_lt(sup_now_ms() - t0, 15000);
    run_free(&r);
}

struct req_wait {
    struct fh_server *s;
    int n;
};

static bool requests_at_least(void *arg)
{
    struct req_wait *w = arg;

    return fh_requests(w->s) >= w->n;
}

Test(cli_status, watch_refreshes_until_sigint)
{
    const char *argv[] = {cli_bin(), "status", "--admin", NULL, "--watch", "0.2", NULL};
    struct req_wait w;
    struct sup_proc *p;
    char *out;
    int st;

    fh = fh_start(FH_NORMAL, 200, doc_healthy);
    cr_assert_not_null(fh);
    argv[3] = fh_addr(fh);
    p = sup_spawn("watch", argv);
    cr_assert_not_null(p);
    w = (struct req_wait){fh, 3};
    cr_assert(sup_poll(requests_at_least, &w, 20000), "only %d refreshes", fh_requests(fh));

    /* An endpoint leaves the rotation; the next refreshes show it. */
    fh_set(fh, FH_NORMAL, 200, doc_one_out);
    w.n = fh_requests(fh) + 2;
    cr_assert(sup_poll(requests_at_least, &w, 20000), "no refresh after the change");
    cr_assert_eq(sup_signal(p, SIGINT), 0, "watch exited early");
    st = sup_wait_exit(p, 20000);
    cr_expect_eq(st, 1, "exit %d after SIGINT; want the last refresh's (1)", st);
    out = sup_read_file(p->out_path);
    cr_assert_not_null(out);
    cr_expect(strstr(out, "Every 200ms: switchyard-health status --admin "), "%s", out);
    cr_expect(strstr(out, "2/2 endpoints in rotation"), "%s", out);
    cr_expect(strstr(out, "1/2 endpoints in rotation"), "%s", out);
    cr_expect(!strchr(out, '\033'), "escape codes without a terminal");
    free(out);
}

/* Runs the CLI on a pseudo-terminal; returns its exit status, output in |out|. */
static int run_on_tty(const char *const *args, char *out, size_t outlen)
{
    const char *argv[16];
    size_t n = 0, len = 0;
    int master, wst;
    pid_t pid;

    argv[n++] = cli_bin();
    while (*args && n < sizeof(argv) / sizeof(argv[0]) - 1)
        argv[n++] = *args++;
    argv[n] = NULL;
    pid = forkpty(&master, NULL, NULL, NULL);
    cr_assert(pid >= 0, "forkpty: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        unsetenv("NO_COLOR");
        setenv("TERM", "xterm", 1);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (;;) {
        struct pollfd pfd = {master, POLLIN, 0};
        ssize_t got;

        if (poll(&pfd, 1, CLI_T) <= 0)
            break;
        got = read(master, out + len, outlen - 1 - len);
        if (got <= 0) /* EIO once the child has exited */
            break;
        len += (size_t)got;
        if (len == outlen - 1)
            break;
    }
    out[len] = '\0';
    close(master);
    cr_assert_eq(waitpid(pid, &wst, 0), pid);
    return WIFEXITED(wst) ? WEXITSTATUS(wst) : 128 + WTERMSIG(wst);
}

Test(cli_status, colour_only_on_a_tty)
{
    static char out[65536];
    int st;

    fh = fh_start(FH_NORMAL, 200, doc_one_out);
    cr_assert_not_null(fh);
    st =
        run_on_tty((const char *const[]){"status", "--admin", fh_addr(fh), NULL}, out, sizeof(out));
    cr_expect_eq(st, 1, "exit %d:\n%s", st, out);
    cr_expect(strstr(out, "\033[32mUP"), "no green UP on a terminal:\n%s", out);
    cr_expect(strstr(out, "\033[31mDOWN"), "no red DOWN on a terminal:\n%s", out);
    cr_expect(!strstr(out, "(null)"), "%s", out);

    st = run_on_tty((const char *const[]){"status", "--no-color", "--admin", fh_addr(fh), NULL},
                    out, sizeof(out));
    cr_expect_eq(st, 1, "exit %d:\n%s", st, out);
    cr_expect(strstr(out, "DOWN"), "%s", out);
    cr_expect(!strchr(out, '\033'), "escape codes with --no-color:\n%s", out);
}

/* ===================================================================== */
/* status and check against a real switchyard                            */
/* ===================================================================== */

#define PROXY_T 15000 /* ms to wait for switchyard to listen or exit */

static struct sup_backend e2e_be[2];
static struct sup_proxy e2e_px;
static int e2e_admin_port;
static char e2e_admin[32];

static void start_switchyard(void)
{
    char conf[1024];

    cr_assert_eq(sup_start_backends(e2e_be, 2, NULL), 0, "sy-backends did not start");
    e2e_admin_port = sup_free_port();
    snprintf(e2e_admin, sizeof(e2e_admin), "127.0.0.1:%d", e2e_admin_port);
    memset(&e2e_px, 0, sizeof(e2e_px));
    e2e_px.port = sup_free_port();
    snprintf(conf, sizeof(conf),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\n"
             "[admin]\nlisten = %s\n"
             "[cluster.echo]\ntargets = %s, %s\nroutes = /sy.test.\n"
             "health_interval = 500ms\nhealth_timeout = 500ms\n",
             e2e_px.port, e2e_admin, e2e_be[0].addr, e2e_be[1].addr);
    cr_assert_eq(sup_start_proxy(&e2e_px, "switchyard", e2e_px.port, conf, PROXY_T), 0,
                 "switchyard did not start");
    cr_assert_eq(sup_wait_port(e2e_px.proc, e2e_admin_port, PROXY_T), 0, "admin did not listen");
}

TestSuite(cli_e2e, .init = start_switchyard, .fini = stop_all, .timeout = 120);

struct status_wait {
    int want;
    struct run last;
};

static bool status_exits(void *arg)
{
    struct status_wait *w = arg;

    run_free(&w->last);
    CLI(&w->last, "status", "--admin", e2e_admin);
    return w->last.status == w->want;
}

Test(cli_e2e, status_follows_the_endpoints)
{
    struct status_wait w = {.want = 0};
    int st;

    /* New endpoints join the rotation after their first check. */
    cr_assert(sup_poll(status_exits, &w, 30000), "status never exited 0:\n%s%s", w.last.out,
              w.last.err);
    cr_expect(has_line_with(w.last.out, "cluster echo", "2/2 endpoints in rotation", NULL), "%s",
              w.last.out);
    cr_expect(has_line_with(w.last.out, e2e_be[0].addr, "UP", "SERVING"), "%s", w.last.out);
    cr_expect(has_line_with(w.last.out, e2e_be[1].addr, "UP", "SERVING"), "%s", w.last.out);

    cr_assert_eq(gc_set_health(e2e_be[1].addr, "", NOT_SERVING), 0);
    w.want = 1;
    cr_assert(sup_poll(status_exits, &w, 30000), "status never exited 1:\n%s%s", w.last.out,
              w.last.err);
    cr_expect(has_line_with(w.last.out, e2e_be[1].addr, "DOWN", "NOT_SERVING"), "%s", w.last.out);
    cr_expect(has_line_with(w.last.out, "cluster echo", "1/2 endpoints in rotation", NULL), "%s",
              w.last.out);
    run_free(&w.last);

    /* switchyard serves grpc.health.v1 itself, for "" and per cluster. */
    {
        struct run r;

        CLI(&r, "check", e2e_px.addr, "--timeout", "5s");
        expect(&r, 0, "status: SERVING", NULL);
        run_free(&r);
        CLI(&r, "check", e2e_px.addr, "--service", "echo", "--timeout", "5s");
        expect(&r, 0, "status: SERVING", NULL);
        run_free(&r);
    }

    st = sup_stop(e2e_px.proc, PROXY_T);
    if (st != 0)
        sup_dump_log(e2e_px.proc, 60);
    cr_expect_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
    {
        struct run r;

        CLI(&r, "status", "--admin", e2e_admin);
        expect(&r, 2, NULL, "error: cannot reach switchyard admin at ");
        run_free(&r);
    }
}
