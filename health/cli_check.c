/* switchyard-health check: one grpc.health.v1.Health/Check through the gRPC C
 * core, with grpc_health_probe's exit statuses and messages.
 * Invariant: the connection is established first (within the connect
 * timeout) and the Check call runs on it afterwards (within the RPC timeout),
 * so a failure is classified by the phase it happened in: connect → 2,
 * call → 3, answer → 4. gRPC is initialised and shut down here, once.
 * SPDX-License-Identifier: MIT */
#include "health/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"
#include "health/cli_common.h"

#define CHECK_METHOD   "/grpc.health.v1.Health/Check"
#define MAX_CHAN_ARGS  8
#define MAX_FILE_BYTES (1 << 20)

#define MAX_HEADERS 32

/* One -rpc-header "name: value". */
struct check_header {
    char *key;   /* lower case, as gRPC metadata keys are (owned) */
    char *value; /* leading blanks trimmed, as grpc_health_probe does (owned) */
};

struct check_opts {
    const char *addr;
    const char *service;
    const char *authority;
    const char *user_agent; /* NULL: HC_CLI_NAME/HC_CLI_VERSION */
    struct check_header headers[MAX_HEADERS];
    size_t nheaders;
    int64_t connect_timeout_ms;
    int64_t rpc_timeout_ms;
    bool tls;
    const char *tls_ca;
    const char *tls_cert;
    const char *tls_key;
    const char *tls_server_name;
    bool tls_no_verify;
    bool verbose;
};

/* What the Check call brought back. */
struct check_result {
    grpc_status_code status;
    char *details;             /* grpc-message (malloc'd, maybe "") */
    char *error_string;        /* the core's debug string (malloc'd) or NULL */
    grpc_byte_buffer *message; /* the response, or NULL */
};

static bool verbose_logging;

void hc_cli_check_usage(FILE *f)
{
    fprintf(f,
            "usage: " HC_CLI_NAME " check HOST:PORT [options]\n"
            "       " HC_CLI_NAME " check -addr=HOST:PORT [options]   (grpc_health_probe's flags)\n"
            "\n"
            "Sends one grpc.health.v1.Health/Check to the gRPC server at HOST:PORT and\n"
            "reports its answer, like grpc_health_probe. The target is any gRPC target\n"
            "name: 127.0.0.1:50051, my-svc.ns:50051, [::1]:50051, unix:///run/app.sock.\n"
            "Options take one dash or two, and their value after '=' or as the next word\n"
            "(-service=echo, --service echo); grpc_health_probe's names are accepted.\n"
            "\n"
            "Options:\n"
            "  --addr HOST:PORT          the server, instead of the HOST:PORT argument\n"
            "  -s, --service NAME        service to check (default \"\": the whole server)\n"
            "  -t, --timeout T           connect timeout and RPC timeout, each (default 1s);\n"
            "                            durations are written 250ms, 1s, 1.5s, 1m\n"
            "  --connect-timeout T       timeout for establishing the connection\n"
            "  --rpc-timeout T           timeout for the Check call\n"
            "  -a, --authority A         :authority of the call (default: HOST:PORT)\n"
            "  --rpc-header 'NAME: VALUE'\n"
            "                            metadata sent with the call (repeatable)\n"
            "  --user-agent UA           user-agent of the call (default " HC_CLI_NAME
            "/" HC_CLI_VERSION ")\n"
            "  --tls                     use TLS (default: plaintext h2c)\n"
            "  --tls-ca-cert FILE        PEM roots to verify the server with (default: the\n"
            "                            system's); also --tls-ca\n"
            "  --tls-client-cert FILE    PEM client certificate (with --tls-client-key);\n"
            "                            also --tls-cert\n"
            "  --tls-client-key FILE     PEM client private key; also --tls-key\n"
            "  --tls-server-name NAME    name to verify the server certificate against\n"
            "  --tls-no-verify           do not verify the server certificate (testing only)\n"
            "  -v, --verbose             print each step and gRPC's own log to stderr\n"
            "  -h, --help                show this help\n"
            "\n"
            "Exit status:\n"
            "  0  the server answered SERVING (\"status: SERVING\" on stdout)\n"
            "  1  bad arguments (an unknown option too), or a TLS file could not be read\n"
            "  2  connection failure: refused, TLS handshake failed, name not resolved,\n"
            "     or no connection within the connect timeout\n"
            "  3  the RPC failed: a non-OK status (NOT_FOUND for an unknown service,\n"
            "     UNIMPLEMENTED when the server has no health service) or RPC timeout\n"
            "  4  the server answered NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN\n"
            "Messages other than \"status: SERVING\" go to stderr.\n");
}

/* ---- small helpers ---- */

static long long now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Elapsed time as Go's time.Duration prints it, roughly: "812µs" is written
 * "0.812ms" here to stay ASCII. */
static const char *fmt_elapsed(long long us, char *buf, size_t buflen)
{
    if (us < 1000000)
        snprintf(buf, buflen, "%.3fms", (double)us / 1000.0);
    else
        snprintf(buf, buflen, "%.3fs", (double)us / 1000000.0);
    return buf;
}

static gpr_timespec deadline_in(int64_t ms)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(ms, GPR_TIMESPAN));
}

static char *xstrndup(const char *s, size_t n)
{
    char *p = malloc(n + 1);

    if (!p)
        abort();
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* Reads a whole (small) file as a string. Returns NULL with |err| set. */
static char *read_file(const char *path, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    size_t n;

    if (!f) {
        snprintf(err, errlen, "%s", strerror(errno));
        return NULL;
    }
    buf = malloc(MAX_FILE_BYTES + 1);
    if (!buf)
        abort();
    n = fread(buf, 1, MAX_FILE_BYTES + 1, f);
    if (ferror(f) || n > MAX_FILE_BYTES) {
        snprintf(err, errlen, "%s", ferror(f) ? strerror(errno) : "larger than 1 MiB");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

/* gRPC status codes as grpc-go names them, for grpc_health_probe's wording. */
static const char *code_name(grpc_status_code c, char *buf, size_t buflen)
{
    static const char *const names[] = {
        "OK",
        "Canceled",
        "Unknown",
        "InvalidArgument",
        "DeadlineExceeded",
        "NotFound",
        "AlreadyExists",
        "PermissionDenied",
        "ResourceExhausted",
        "FailedPrecondition",
        "Aborted",
        "OutOfRange",
        "Unimplemented",
        "Internal",
        "Unavailable",
        "DataLoss",
        "Unauthenticated",
    };

    if ((unsigned)c < sizeof(names) / sizeof(names[0]))
        return names[c];
    snprintf(buf, buflen, "Code(%d)", (int)c);
    return buf;
}

static const char *serving_name(int status, char *buf, size_t buflen)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
        &grpc__health__v1__health_check_response__serving_status__descriptor, status);

    if (v)
        return v->name;
    snprintf(buf, buflen, "%d", status);
    return buf;
}

/* gRPC's own log goes to stderr only with --verbose: its connection errors
 * are already summarised in our messages. */
static void on_grpc_log(gpr_log_func_args *a)
{
    if (verbose_logging)
        fprintf(stderr, "grpc: %s:%d: %s\n", a->file, a->line, a->message);
}

/* ---- options ---- */

/* Prints "error: ..." and a pointer to --help; returns the usage exit status. */
static int bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_args(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '" HC_CLI_NAME " check --help' for usage.\n");
    return HC_CLI_CHECK_BAD_ARGS;
}

static int parse_timeout(const char *name, const char *arg, int64_t *ms)
{
    if (hc_cli_duration_parse(arg, false, ms) != 0) {
        fprintf(stderr,
                "error: %s: expected a duration such as 250ms, 1s or 1m, got '%s'\n"
                "Run '" HC_CLI_NAME " check --help' for usage.\n",
                name, arg);
        return -1;
    }
    if (*ms <= 0) {
        fprintf(stderr, "error: %s must be greater than zero (specified: %s)\n", name, arg);
        return -1;
    }
    return 0;
}

enum opt_id {
    OPT_ADDR,
    OPT_SERVICE,
    OPT_TIMEOUT,
    OPT_CONNECT_TIMEOUT,
    OPT_RPC_TIMEOUT,
    OPT_AUTHORITY,
    OPT_RPC_HEADER,
    OPT_USER_AGENT,
    OPT_TLS,
    OPT_TLS_CA,
    OPT_TLS_CERT,
    OPT_TLS_KEY,
    OPT_TLS_SERVER_NAME,
    OPT_TLS_NO_VERIFY,
    OPT_VERBOSE,
    OPT_HELP,
};

/* Every option and its names; the first name is the one messages use. Go's
 * flag package (grpc_health_probe) takes -name and --name alike, with the
 * value after '=' or as the next word, and booleans as -name or -name=BOOL. */
static const struct opt_def {
    enum opt_id id;
    bool takes_value;
    const char *names[4];
} opt_defs[] = {
    {OPT_ADDR, true, {"addr", NULL}},
    {OPT_SERVICE, true, {"service", "s", NULL}},
    {OPT_TIMEOUT, true, {"timeout", "t", NULL}},
    {OPT_CONNECT_TIMEOUT, true, {"connect-timeout", NULL}},
    {OPT_RPC_TIMEOUT, true, {"rpc-timeout", NULL}},
    {OPT_AUTHORITY, true, {"authority", "a", NULL}},
    {OPT_RPC_HEADER, true, {"rpc-header", NULL}},
    {OPT_USER_AGENT, true, {"user-agent", NULL}},
    {OPT_TLS, false, {"tls", NULL}},
    {OPT_TLS_CA, true, {"tls-ca-cert", "tls-ca", NULL}},
    {OPT_TLS_CERT, true, {"tls-client-cert", "tls-cert", NULL}},
    {OPT_TLS_KEY, true, {"tls-client-key", "tls-key", NULL}},
    {OPT_TLS_SERVER_NAME, true, {"tls-server-name", NULL}},
    {OPT_TLS_NO_VERIFY, false, {"tls-no-verify", NULL}},
    {OPT_VERBOSE, false, {"v", "verbose", NULL}},
    {OPT_HELP, false, {"help", "h", NULL}},
};

/* grpc_health_probe flags this CLI does not implement: named as such, so
 * that nobody takes them for a typo. */
static const char *const unsupported_flags[] = {"alts", "spiffe", "gzip", "stream", NULL};

static const struct opt_def *opt_find(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(opt_defs) / sizeof(opt_defs[0]); i++) {
        for (size_t j = 0; opt_defs[i].names[j] != NULL; j++) {
            if (strlen(opt_defs[i].names[j]) == len && memcmp(opt_defs[i].names[j], name, len) == 0)
                return &opt_defs[i];
        }
    }
    return NULL;
}

/* Go's strconv.ParseBool. Returns 0/1, or -1. */
static int parse_go_bool(const char *s)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True", NULL};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False", NULL};

    for (size_t i = 0; yes[i] != NULL; i++) {
        if (strcmp(s, yes[i]) == 0)
            return 1;
        if (strcmp(s, no[i]) == 0)
            return 0;
    }
    return -1;
}

/* Printable ASCII only: what HTTP/2 carries in a non-binary header value. */
static bool is_header_value(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            return false;
    return true;
}

/* -rpc-header "name: value", split at the first ':' with the value's leading
 * blanks trimmed, as grpc_health_probe does. */
static int add_header(struct check_opts *o, const char *arg)
{
    const char *colon = strchr(arg, ':'), *v;
    size_t klen;
    char *key;

    if (colon == NULL || colon == arg)
        return bad_args("-rpc-header: expected 'name: value', got '%s'", arg);
    if (o->nheaders == MAX_HEADERS)
        return bad_args("-rpc-header: at most %d headers", MAX_HEADERS);
    klen = (size_t)(colon - arg);
    key = xstrndup(arg, klen);
    for (size_t i = 0; i < klen; i++) {
        char c = (char)tolower((unsigned char)key[i]);

        /* gRPC metadata keys: 0-9 a-z _ - . (PROTOCOL-HTTP2, "Custom-Metadata") */
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '_' || c == '-' ||
              c == '.')) {
            free(key);
            return bad_args("-rpc-header: '%.*s' is not a metadata name (letters, digits, '-', "
                            "'_' and '.')",
                            (int)klen, arg);
        }
        key[i] = c;
    }
    if (strncmp(key, "grpc-", 5) == 0) {
        free(key);
        return bad_args("-rpc-header: '%.*s': names starting with grpc- are reserved by gRPC",
                        (int)klen, arg);
    }
    for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
        ;
    if (!is_header_value(v) && !(klen > 4 && strcmp(key + klen - 4, "-bin") == 0)) {
        free(key);
        return bad_args("-rpc-header: the value of '%.*s' must be printable ASCII", (int)klen, arg);
    }
    o->headers[o->nheaders].key = key;
    o->headers[o->nheaders].value = xstrndup(v, strlen(v));
    o->nheaders++;
    return -1;
}

static void opts_deinit(struct check_opts *o)
{
    for (size_t i = 0; i < o->nheaders; i++) {
        free(o->headers[i].key);
        free(o->headers[i].value);
    }
    o->nheaders = 0;
}

/* Applies option |d| (written |as|) with |val| (NULL for a boolean given
 * without '='). Returns -1 to go on, or an exit status. */
static int apply_opt(struct check_opts *o, const struct opt_def *d, const char *as, const char *val,
                     int64_t *connect_ms, int64_t *rpc_ms, int64_t *both_ms)
{
    int b = 1;

    if (!d->takes_value && val != NULL && (b = parse_go_bool(val)) < 0)
        return bad_args("invalid boolean value \"%s\" for -%s", val, as);
    switch (d->id) {
    case OPT_ADDR:
        if (o->addr)
            return bad_args("HOST:PORT given twice ('%s' and '%s')", o->addr, val);
        o->addr = val;
        break;
    case OPT_SERVICE:
        o->service = val;
        break;
    case OPT_TIMEOUT:
        return parse_timeout("-timeout", val, both_ms) != 0 ? HC_CLI_CHECK_BAD_ARGS : -1;
    case OPT_CONNECT_TIMEOUT:
        return parse_timeout("-connect-timeout", val, connect_ms) != 0 ? HC_CLI_CHECK_BAD_ARGS : -1;
    case OPT_RPC_TIMEOUT:
        return parse_timeout("-rpc-timeout", val, rpc_ms) != 0 ? HC_CLI_CHECK_BAD_ARGS : -1;
    case OPT_AUTHORITY:
        o->authority = val;
        break;
    case OPT_RPC_HEADER:
        return add_header(o, val);
    case OPT_USER_AGENT:
        if (!is_header_value(val))
            return bad_args("-user-agent must be printable ASCII");
        o->user_agent = val;
        break;
    case OPT_TLS:
        o->tls = b;
        break;
    case OPT_TLS_CA:
        o->tls_ca = val;
        break;
    case OPT_TLS_CERT:
        o->tls_cert = val;
        break;
    case OPT_TLS_KEY:
        o->tls_key = val;
        break;
    case OPT_TLS_SERVER_NAME:
        o->tls_server_name = val;
        break;
    case OPT_TLS_NO_VERIFY:
        o->tls_no_verify = b;
        break;
    case OPT_VERBOSE:
        o->verbose = b;
        break;
    case OPT_HELP:
        if (b) {
            hc_cli_check_usage(stdout);
            return 0;
        }
        break;
    }
    return -1;
}

/* Returns -1 to run, or an exit status (options freed then). */
static int parse_opts(int argc, char **argv, struct check_opts *o)
{
    int64_t connect_ms = -1, rpc_ms = -1, both_ms = 1000;
    bool only_args = false;
    int rc;

    memset(o, 0, sizeof(*o));
    o->service = "";
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *name, *eq, *val;
        const struct opt_def *d;
        char as[64];
        size_t nlen;

        if (only_args || a[0] != '-' || a[1] == '\0') {
            if (o->addr) {
                rc = bad_args("unexpected argument '%s' (one HOST:PORT only)", a);
                goto fail;
            }
            o->addr = a;
            continue;
        }
        if (strcmp(a, "--") == 0) {
            only_args = true;
            continue;
        }
        name = a + (a[1] == '-' ? 2 : 1);
        eq = strchr(name, '=');
        nlen = eq != NULL ? (size_t)(eq - name) : strlen(name);
        snprintf(as, sizeof(as), "%.*s", (int)nlen, name);
        d = opt_find(name, nlen);
        if (d == NULL) {
            for (size_t u = 0; unsupported_flags[u] != NULL; u++) {
                if (strcmp(as, unsupported_flags[u]) == 0) {
                    rc = bad_args("-%s (a grpc_health_probe option) is not supported", as);
                    goto fail;
                }
            }
            rc = bad_args("unknown option '%s'", a);
            goto fail;
        }
        val = eq != NULL ? eq + 1 : NULL;
        if (d->takes_value && val == NULL) {
            if (i + 1 >= argc) {
                rc = bad_args("option '%s' needs a value", a);
                goto fail;
            }
            val = argv[++i];
        }
        rc = apply_opt(o, d, as, val, &connect_ms, &rpc_ms, &both_ms);
        if (rc >= 0)
            goto fail;
    }
    if (!o->addr || !o->addr[0]) {
        rc = bad_args("HOST:PORT not specified (as an argument or with -addr)");
        goto fail;
    }
    o->connect_timeout_ms = connect_ms > 0 ? connect_ms : both_ms;
    o->rpc_timeout_ms = rpc_ms > 0 ? rpc_ms : both_ms;

    /* grpc_health_probe's consistency rules. */
    rc = HC_CLI_CHECK_BAD_ARGS;
    if (!o->tls) {
        if (o->tls_ca)
            rc = bad_args("specified %s without specifying -tls", "-tls-ca-cert");
        else if (o->tls_cert)
            rc = bad_args("specified %s without specifying -tls", "-tls-client-cert");
        else if (o->tls_key)
            rc = bad_args("specified %s without specifying -tls", "-tls-client-key");
        else if (o->tls_server_name)
            rc = bad_args("specified %s without specifying -tls", "-tls-server-name");
        else if (o->tls_no_verify)
            rc = bad_args("specified %s without specifying -tls", "-tls-no-verify");
        else
            rc = -1;
    } else if (o->tls_no_verify && o->tls_ca) {
        rc =
            bad_args("cannot specify -tls-ca-cert with -tls-no-verify (CA cert would not be used)");
    } else if (o->tls_no_verify && o->tls_server_name) {
        rc = bad_args("cannot specify -tls-server-name with -tls-no-verify (server name would "
                      "not be used)");
    } else if (o->tls_cert && !o->tls_key) {
        rc = bad_args("specified %s without specifying -tls-client-key", "-tls-client-cert");
    } else if (o->tls_key && !o->tls_cert) {
        rc = bad_args("specified %s without specifying -tls-client-cert", "-tls-client-key");
    } else {
        rc = -1;
    }
    if (rc < 0)
        return -1;
fail:
    opts_deinit(o);
    return rc;
}

/* ---- credentials and channel ---- */

/* --tls-no-verify. The verify-peer callback of grpc_ssl_credentials_create_ex
 * cannot do this in gRPC 1.51: the chain is still verified before the
 * callback runs (checked: "certificate verify failed" against a self-signed
 * server). The TLS credentials API can: no server certificate verification,
 * and the no-op verifier skips the host name check too, like Go's
 * InsecureSkipVerify in grpc_health_probe. |key|/|cert| may be NULL. */
static grpc_channel_credentials *make_no_verify_creds(const char *key, const char *cert)
{
    grpc_tls_credentials_options *opts = grpc_tls_credentials_options_create();
    grpc_tls_certificate_verifier *verifier = grpc_tls_certificate_verifier_no_op_create();
    grpc_channel_credentials *creds;

    grpc_tls_credentials_options_set_verify_server_cert(opts, 0);
    grpc_tls_credentials_options_set_certificate_verifier(opts, verifier);
    grpc_tls_credentials_options_set_check_call_host(opts, 0);
    if (key && cert) {
        grpc_tls_identity_pairs *pairs = grpc_tls_identity_pairs_create();
        grpc_tls_certificate_provider *provider;

        grpc_tls_identity_pairs_add_pair(pairs, key, cert);
        provider = grpc_tls_certificate_provider_static_data_create(NULL, pairs); /* takes pairs */
        grpc_tls_credentials_options_set_certificate_provider(opts, provider);
        grpc_tls_credentials_options_watch_identity_key_cert_pairs(opts);
        grpc_tls_certificate_provider_release(provider);
    }
    creds = grpc_tls_credentials_create(opts); /* takes opts */
    grpc_tls_certificate_verifier_release(verifier);
    return creds;
}

/* Returns new credentials, or NULL after printing why (exit status 1). */
static grpc_channel_credentials *make_creds(const struct check_opts *o)
{
    grpc_ssl_pem_key_cert_pair pair;
    grpc_channel_credentials *creds;
    char *ca = NULL, *cert = NULL, *key = NULL;
    char err[256];

    if (!o->tls)
        return grpc_insecure_credentials_create();
    if (o->tls_ca && !(ca = read_file(o->tls_ca, err, sizeof(err)))) {
        fprintf(stderr, "error: failed to read --tls-ca file \"%s\": %s\n", o->tls_ca, err);
        return NULL;
    }
    if (o->tls_cert && !(cert = read_file(o->tls_cert, err, sizeof(err)))) {
        fprintf(stderr, "error: failed to read --tls-cert file \"%s\": %s\n", o->tls_cert, err);
        free(ca);
        return NULL;
    }
    if (o->tls_key && !(key = read_file(o->tls_key, err, sizeof(err)))) {
        fprintf(stderr, "error: failed to read --tls-key file \"%s\": %s\n", o->tls_key, err);
        free(ca);
        free(cert);
        return NULL;
    }
    /* The core copies everything it is given here. */
    if (o->tls_no_verify) {
        creds = make_no_verify_creds(key, cert);
    } else {
        pair.private_key = key;
        pair.cert_chain = cert;
        creds = grpc_ssl_credentials_create_ex(ca, cert ? &pair : NULL, NULL, NULL);
    }
    free(ca);
    free(cert);
    free(key);
    if (!creds)
        fprintf(stderr, "error: failed to initialize tls credentials\n");
    return creds;
}

static void set_str_arg(grpc_arg *a, const char *key, const char *value)
{
    a->type = GRPC_ARG_STRING;
    a->key = (char *)key;
    a->value.string = (char *)value;
}

static void set_int_arg(grpc_arg *a, const char *key, int value)
{
    a->type = GRPC_ARG_INTEGER;
    a->key = (char *)key;
    a->value.integer = value;
}

static grpc_channel *channel_new(const struct check_opts *o, grpc_channel_credentials *creds)
{
    grpc_arg args[MAX_CHAN_ARGS];
    grpc_channel_args cargs = {0, args};

    set_str_arg(&args[cargs.num_args++], GRPC_ARG_PRIMARY_USER_AGENT_STRING,
                o->user_agent != NULL ? o->user_agent : HC_CLI_NAME "/" HC_CLI_VERSION);
    /* One probe, one answer: the core must not retry behind our back. */
    set_int_arg(&args[cargs.num_args++], GRPC_ARG_ENABLE_RETRIES, 0);
    /* Never share a connection with another channel of this process. */
    set_int_arg(&args[cargs.num_args++], GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    if (o->authority)
        set_str_arg(&args[cargs.num_args++], GRPC_ARG_DEFAULT_AUTHORITY, o->authority);
    if (o->tls_server_name)
        set_str_arg(&args[cargs.num_args++], GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, o->tls_server_name);
    return grpc_channel_create(o->addr, creds, &cargs);
}

/* ---- connect phase ---- */

enum connect_outcome {
    CONNECT_READY = 0, /* a connection is up */
    CONNECT_FAILED,    /* the channel reached TRANSIENT_FAILURE (or SHUTDOWN) */
    CONNECT_TIMED_OUT, /* still connecting when the deadline passed */
};

/* Drives |ch| towards READY until |deadline|. */
static enum connect_outcome wait_connected(grpc_channel *ch, grpc_completion_queue *cq,
                                           gpr_timespec deadline, bool verbose)
{
    grpc_connectivity_state st = grpc_channel_check_connectivity_state(ch, 1);

    for (;;) {
        grpc_event ev;

        if (verbose)
            fprintf(stderr, "> channel state: %s\n",
                    st == GRPC_CHANNEL_IDLE                ? "IDLE"
                    : st == GRPC_CHANNEL_CONNECTING        ? "CONNECTING"
                    : st == GRPC_CHANNEL_READY             ? "READY"
                    : st == GRPC_CHANNEL_TRANSIENT_FAILURE ? "TRANSIENT_FAILURE"
                                                           : "SHUTDOWN");
        if (st == GRPC_CHANNEL_READY)
            return CONNECT_READY;
        if (st == GRPC_CHANNEL_TRANSIENT_FAILURE || st == GRPC_CHANNEL_SHUTDOWN)
            return CONNECT_FAILED;
        grpc_channel_watch_connectivity_state(ch, st, deadline, cq, NULL);
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success)
            return CONNECT_TIMED_OUT;
        /* IDLE again (e.g. after a GOAWAY) asks for a new connection. */
        st = grpc_channel_check_connectivity_state(ch, 1);
    }
}

/* ---- the Check call ---- */

static void result_free(struct check_result *r)
{
    free(r->details);
    r->details = NULL;
    free(r->error_string);
    r->error_string = NULL;
    if (r->message)
        grpc_byte_buffer_destroy(r->message);
    r->message = NULL;
}

/* Runs one Check of |o|'s service, with its headers, on |ch| until
 * |deadline| and fills |r|. */
static void run_check(grpc_channel *ch, grpc_completion_queue *cq, const struct check_opts *o,
                      gpr_timespec deadline, struct check_result *r)
{
    grpc_metadata md[MAX_HEADERS];
    Grpc__Health__V1__HealthCheckRequest req = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
    grpc_metadata_array init_md, trail_md;
    grpc_slice method = grpc_slice_from_static_string(CHECK_METHOD);
    grpc_slice details = grpc_empty_slice(), req_slice;
    grpc_byte_buffer *req_buf;
    const char *error_string = NULL;
    grpc_op ops[6];
    grpc_call *call;
    grpc_call_error cerr;
    grpc_event ev;
    size_t len;

    memset(r, 0, sizeof(*r));
    req.service = (char *)o->service;
    len = protobuf_c_message_get_packed_size(&req.base);
    req_slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(&req.base, GRPC_SLICE_START_PTR(req_slice));
    req_buf = grpc_raw_byte_buffer_create(&req_slice, 1);
    grpc_slice_unref(req_slice);
    grpc_metadata_array_init(&init_md);
    grpc_metadata_array_init(&trail_md);

    call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline,
                                    NULL);
    memset(ops, 0, sizeof(ops));
    memset(md, 0, sizeof(md));
    for (size_t i = 0; i < o->nheaders; i++) {
        md[i].key = grpc_slice_from_static_string(o->headers[i].key);
        md[i].value = grpc_slice_from_static_string(o->headers[i].value);
    }
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = o->nheaders;
    ops[0].data.send_initial_metadata.metadata = o->nheaders > 0 ? md : NULL;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req_buf;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &init_md;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &r->message;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.trailing_metadata = &trail_md;
    ops[5].data.recv_status_on_client.status = &r->status;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.error_string = &error_string;
    cerr = grpc_call_start_batch(call, ops, 6, r, NULL);
    if (cerr != GRPC_CALL_OK) {
        r->status = GRPC_STATUS_INTERNAL;
        r->details = xstrndup("grpc_call_start_batch failed", 28);
    } else {
        /* The call has a deadline, so this always completes. */
        do {
            ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        } while (ev.type != GRPC_OP_COMPLETE || ev.tag != r);
        r->details =
            xstrndup((const char *)GRPC_SLICE_START_PTR(details), GRPC_SLICE_LENGTH(details));
        if (error_string)
            r->error_string = xstrndup(error_string, strlen(error_string));
    }
    gpr_free((void *)error_string);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&init_md);
    grpc_metadata_array_destroy(&trail_md);
    grpc_byte_buffer_destroy(req_buf);
    grpc_call_unref(call);
}

/* Decodes the HealthCheckResponse of |r|. Returns its status, or -1. */
static int decode_response(const struct check_result *r)
{
    Grpc__Health__V1__HealthCheckResponse *resp;
    grpc_byte_buffer_reader rd;
    grpc_slice all;
    int status;

    if (!r->message || !grpc_byte_buffer_reader_init(&rd, r->message))
        return -1;
    all = grpc_byte_buffer_reader_readall(&rd);
    grpc_byte_buffer_reader_destroy(&rd);
    resp = grpc__health__v1__health_check_response__unpack(NULL, GRPC_SLICE_LENGTH(all),
                                                           GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (!resp)
        return -1;
    status = (int)resp->status;
    grpc__health__v1__health_check_response__free_unpacked(resp, NULL);
    return status;
}

/* Maps a finished Check to a message and an exit status. */
static int report(const struct check_opts *o, const struct check_result *r, long long conn_us,
                  long long rpc_us)
{
    char buf[32], b1[32], b2[32];
    int status;

    if (r->status != GRPC_STATUS_OK) {
        if (o->verbose && r->error_string)
            fprintf(stderr, "> grpc error: %s\n", r->error_string);
        if (r->status == GRPC_STATUS_UNIMPLEMENTED)
            fprintf(stderr,
                    "error: this server does not implement the grpc health protocol "
                    "(grpc.health.v1.Health): %s\n",
                    r->details);
        else if (r->status == GRPC_STATUS_DEADLINE_EXCEEDED)
            fprintf(stderr, "timeout: health rpc did not complete within %s\n",
                    hc_cli_duration_fmt(o->rpc_timeout_ms, buf, sizeof(buf)));
        else
            fprintf(stderr, "error: health rpc failed: rpc error: code = %s desc = %s\n",
                    code_name(r->status, buf, sizeof(buf)), r->details);
        return HC_CLI_CHECK_RPC_FAIL;
    }
    status = decode_response(r);
    if (status < 0) {
        fprintf(stderr, "error: health rpc failed: the response is not a HealthCheckResponse\n");
        return HC_CLI_CHECK_RPC_FAIL;
    }
    if (status != GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING) {
        fprintf(stderr, "service unhealthy (responded with \"%s\")\n",
                serving_name(status, buf, sizeof(buf)));
        return HC_CLI_CHECK_UNHEALTHY;
    }
    if (o->verbose)
        fprintf(stderr, "time elapsed: connect=%s rpc=%s\n", fmt_elapsed(conn_us, b1, sizeof(b1)),
                fmt_elapsed(rpc_us, b2, sizeof(b2)));
    printf("status: %s\n", serving_name(status, buf, sizeof(buf)));
    return HC_CLI_CHECK_SERVING;
}

static void print_opts(const struct check_opts *o)
{
    char b1[32], b2[32];

    fprintf(stderr, "parsed options:\n");
    fprintf(stderr, "> addr=%s service=\"%s\" conn_timeout=%s rpc_timeout=%s\n", o->addr,
            o->service, hc_cli_duration_fmt(o->connect_timeout_ms, b1, sizeof(b1)),
            hc_cli_duration_fmt(o->rpc_timeout_ms, b2, sizeof(b2)));
    if (o->authority)
        fprintf(stderr, "> authority=%s\n", o->authority);
    fprintf(stderr, "> user-agent=%s\n",
            o->user_agent != NULL ? o->user_agent : HC_CLI_NAME "/" HC_CLI_VERSION);
    for (size_t i = 0; i < o->nheaders; i++)
        fprintf(stderr, "> rpc-header: %s: %s\n", o->headers[i].key, o->headers[i].value);
    fprintf(stderr, "> tls=%s\n", o->tls ? "true" : "false");
    if (o->tls) {
        fprintf(stderr, "  > no-verify=%s\n", o->tls_no_verify ? "true" : "false");
        fprintf(stderr, "  > ca-cert=%s\n", o->tls_ca ? o->tls_ca : "");
        fprintf(stderr, "  > client-cert=%s\n", o->tls_cert ? o->tls_cert : "");
        fprintf(stderr, "  > client-key=%s\n", o->tls_key ? o->tls_key : "");
        fprintf(stderr, "  > server-name=%s\n", o->tls_server_name ? o->tls_server_name : "");
    }
}

/* Runs the probe once gRPC is up. */
static int probe(const struct check_opts *o, grpc_completion_queue *cq)
{
    grpc_channel_credentials *creds = make_creds(o);
    struct check_result r;
    grpc_channel *ch;
    long long t0, t1;
    char buf[32];
    int rc;

    if (!creds)
        return HC_CLI_CHECK_BAD_ARGS;
    ch = channel_new(o, creds);
    grpc_channel_credentials_release(creds);

    if (o->verbose)
        fprintf(stderr, "establishing connection\n");
    t0 = now_us();
    switch (wait_connected(ch, cq, deadline_in(o->connect_timeout_ms), o->verbose)) {
    case CONNECT_READY:
        break;
    case CONNECT_TIMED_OUT:
        fprintf(stderr, "timeout: failed to connect service \"%s\" within %s\n", o->addr,
                hc_cli_duration_fmt(o->connect_timeout_ms, buf, sizeof(buf)));
        grpc_channel_destroy(ch);
        return HC_CLI_CHECK_CONN_FAIL;
    case CONNECT_FAILED:
        /* The connectivity API does not say why; a fail-fast call on the
         * failed channel does (UNAVAILABLE with the core's last error). Should
         * the channel have recovered meanwhile, this is the probe itself. */
        run_check(ch, cq, o, deadline_in(o->rpc_timeout_ms), &r);
        if (r.status == GRPC_STATUS_UNAVAILABLE) {
            if (o->verbose && r.error_string)
                fprintf(stderr, "> grpc error: %s\n", r.error_string);
            fprintf(stderr, "error: failed to connect service at \"%s\": %s\n", o->addr, r.details);
            rc = HC_CLI_CHECK_CONN_FAIL;
        } else {
            t1 = now_us();
            rc = report(o, &r, t1 - t0, 0);
        }
        result_free(&r);
        grpc_channel_destroy(ch);
        return rc;
    }
    t1 = now_us();
    if (o->verbose)
        fprintf(stderr, "connection established (took %s)\n",
                fmt_elapsed(t1 - t0, buf, sizeof(buf)));

    run_check(ch, cq, o, deadline_in(o->rpc_timeout_ms), &r);
    rc = report(o, &r, t1 - t0, now_us() - t1);
    result_free(&r);
    grpc_channel_destroy(ch);
    return rc;
}

int hc_cli_check_main(int argc, char **argv)
{
    struct check_opts o;
    grpc_completion_queue *cq;
    grpc_event ev;
    int rc = parse_opts(argc, argv, &o);

    if (rc >= 0)
        return rc;
    verbose_logging = o.verbose;
    if (o.verbose)
        print_opts(&o);
    gpr_set_log_function(on_grpc_log);
    if (!o.verbose)
        gpr_set_log_verbosity(GPR_LOG_SEVERITY_ERROR);

    grpc_init();
    cq = grpc_completion_queue_create_for_next(NULL);
    rc = probe(&o, cq);
    grpc_completion_queue_shutdown(cq);
    do {
        ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    } while (ev.type != GRPC_QUEUE_SHUTDOWN);
    grpc_completion_queue_destroy(cq);
    grpc_shutdown_blocking();
    opts_deinit(&o);
    fflush(stdout);
    return rc;
}
