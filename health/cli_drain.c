/* switchyard-health drain|undrain: takes one endpoint of a cluster out of
 * switchyard's rotation, or puts it back, through POST /drain or /undrain on
 * the admin listener.
 * Invariant: the exit status depends only on the admin listener's answer
 * (200, 404, 401, anything else) and on the arguments; the token is read
 * from a file, never from the command line, and never printed.
 * SPDX-License-Identifier: MIT */
#include "health/cli.h"

#include "health/cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#define DEFAULT_ADMIN      "127.0.0.1:9901"
#define DEFAULT_ADMIN_PORT 9901
#define MAX_TOKEN          4096

struct drain_opts {
    bool drain; /* drain, else undrain */
    const char *admin;
    const char *token_file;
    int64_t timeout_ms;
    const char *cluster;
    const char *endpoint;
};

void hc_cli_drain_usage(FILE *f)
{
    fprintf(f, "usage: " HC_CLI_NAME " drain|undrain [--admin HOST:PORT] [--token-file FILE]\n"
               "                         [--timeout T] CLUSTER HOST:PORT\n"
               "\n"
               "drain takes endpoint HOST:PORT of cluster CLUSTER out of switchyard's rotation\n"
               "(for maintenance): no new calls go there, calls already running on it finish.\n"
               "undrain puts it back. HOST:PORT is one address of the cluster, or one of its\n"
               "DNS targets (then every address it resolved to). The mark is kept across\n"
               "reloads while the endpoint exists, and shows in 'status' and /status.\n"
               "Sends POST /drain or /undrain?cluster=CLUSTER&endpoint=HOST:PORT to the admin\n"
               "listener.\n"
               "\n"
               "Options:\n"
               "  -a, --admin HOST:PORT   admin listener (default " DEFAULT_ADMIN ")\n"
               "  -k, --token-file FILE   send the bearer token in FILE (the file [admin]\n"
               "                          token_file names); needed when switchyard has one\n"
               "  -t, --timeout T         give up after T (default 5s)\n"
               "  -h, --help              show this help\n"
               "\n"
               "Exit status:\n"
               "  0  done (also when the endpoint already was in that state)\n"
               "  1  bad arguments, or the token file cannot be read\n"
               "  2  switchyard cannot be reached, or gave an unexpected answer\n"
               "  3  no such cluster, or no such endpoint in it (HTTP 404)\n"
               "  4  refused: a token is required, or the token does not match (HTTP 401)\n");
}

static int bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_args(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '" HC_CLI_NAME " drain --help' for usage.\n");
    return HC_CLI_DRAIN_BAD_ARGS;
}

/* Returns -1 to run, or an exit status. */
static int parse_opts(int argc, char **argv, struct drain_opts *o)
{
    static const struct option longopts[] = {
        {"admin", required_argument, NULL, 'a'},
        {"token-file", required_argument, NULL, 'k'},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int opt;

    memset(o, 0, sizeof(*o));
    o->drain = strcmp(argv[0], "drain") == 0;
    o->admin = DEFAULT_ADMIN;
    o->timeout_ms = 5000;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":a:k:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            o->admin = optarg;
            break;
        case 'k':
            o->token_file = optarg;
            break;
        case 't':
            if (hc_cli_duration_parse(optarg, false, &o->timeout_ms) != 0 || o->timeout_ms <= 0)
                return bad_args("--timeout: expected a duration such as 250ms, 5s or 1m, got '%s'",
                                optarg);
            break;
        case 'h':
            hc_cli_drain_usage(stdout);
            return 0;
        case ':':
            return bad_args("option '%s' needs a value", argv[optind - 1]);
        default:
            return bad_args("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (argc - optind != 2)
        return bad_args("expected CLUSTER HOST:PORT, got %d argument%s", argc - optind,
                        argc - optind == 1 ? "" : "s");
    o->cluster = argv[optind];
    o->endpoint = argv[optind + 1];
    if (!o->admin[0])
        return bad_args("--admin: expected HOST:PORT");
    if (!o->cluster[0] || !o->endpoint[0])
        return bad_args("expected a non-empty CLUSTER and HOST:PORT");
    return -1;
}

/* Reads the one token of |path| (surrounding blanks and newlines dropped)
 * into |tok|. Returns 0, or -1 after printing why (never the content). */
static int read_token(const char *path, char *tok, size_t toklen)
{
    char buf[MAX_TOKEN + 2];
    size_t len = 0, b = 0;
    ssize_t n;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0) {
        fprintf(stderr, "error: --token-file: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    while (len < sizeof(buf) && (n = read(fd, buf + len, sizeof(buf) - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            fprintf(stderr, "error: --token-file: cannot read %s: %s\n", path, strerror(errno));
            close(fd);
            return -1;
        }
        len += (size_t)n;
    }
    close(fd);
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    while (b < len && isspace((unsigned char)buf[b]))
        b++;
    for (size_t i = b; i < len; i++) {
        if (!isgraph((unsigned char)buf[i])) {
            b = len; /* blanks or control characters inside: not one token */
            break;
        }
    }
    if (b == len || len - b >= toklen) {
        fprintf(stderr,
                "error: --token-file: expected %s to hold one token (the content is "
                "not shown)\n",
                path);
        memset(buf, 0, sizeof(buf));
        return -1;
    }
    memcpy(tok, buf + b, len - b);
    tok[len - b] = '\0';
    memset(buf, 0, sizeof(buf));
    return 0;
}

/* Appends |s| to |out| percent-encoded for a query value (RFC 3986 unreserved
 * characters stay as they are). */
static void query_escape(char *out, size_t outlen, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);

    for (; *s != '\0' && n + 4 < outlen; s++) {
        unsigned char c = (unsigned char)*s;

        if (isalnum(c) || strchr("-._~", c) != NULL) {
            out[n++] = (char)c;
        } else {
            out[n++] = '%';
            out[n++] = hex[c >> 4];
            out[n++] = hex[c & 15];
        }
    }
    out[n] = '\0';
}

/* The first line of an error body, for messages. */
static const char *first_line(char *body)
{
    char *nl;

    if (body == NULL)
        return "";
    nl = strchr(body, '\n');
    if (nl != NULL)
        *nl = '\0';
    return body;
}

int hc_cli_drain_main(int argc, char **argv)
{
    struct drain_opts o;
    struct hc_cli_http_resp resp;
    char path[2048], token[MAX_TOKEN + 1], headers[MAX_TOKEN + 64] = "", err[256];
    const char *verb;
    int rc = parse_opts(argc, argv, &o);

    if (rc >= 0)
        return rc;
    verb = o.drain ? "drain" : "undrain";
    if (o.token_file != NULL) {
        if (read_token(o.token_file, token, sizeof(token)) != 0)
            return HC_CLI_DRAIN_BAD_ARGS;
        snprintf(headers, sizeof(headers), "Authorization: Bearer %s\r\n", token);
        memset(token, 0, sizeof(token));
    }
    snprintf(path, sizeof(path), "/%s?cluster=", verb);
    query_escape(path, sizeof(path), o.cluster);
    snprintf(path + strlen(path), sizeof(path) - strlen(path), "&endpoint=");
    query_escape(path, sizeof(path), o.endpoint);
    rc = hc_cli_http_request("POST", o.admin, DEFAULT_ADMIN_PORT, path,
                             headers[0] != '\0' ? headers : NULL, o.timeout_ms, &resp, err,
                             sizeof(err));
    memset(headers, 0, sizeof(headers));
    if (rc != 0) {
        fprintf(stderr, "error: cannot reach switchyard admin at %s: %s\n", o.admin,
                rc == -2 ? "interrupted" : err);
        return HC_CLI_DRAIN_UNREACHABLE;
    }
    if (resp.status == 200) {
        json_t *j = json_loadb(resp.body, resp.body_len, 0, NULL);
        json_t *eps = json_object_get(j, "endpoints");
        const json_t *e;
        size_t i;

        if (!json_is_array(eps)) {
            fprintf(stderr, "error: switchyard admin at %s answered 200 without a result\n",
                    o.admin);
            json_decref(j);
            hc_cli_http_resp_deinit(&resp);
            return HC_CLI_DRAIN_UNREACHABLE;
        }
        json_array_foreach(eps, i, e)
        {
            printf("cluster %s: endpoint %s %s\n", o.cluster, json_string_value(e),
                   o.drain ? "drained: out of rotation, running calls finish"
                           : "undrained: back in rotation when healthy");
        }
        json_decref(j);
        rc = HC_CLI_DRAIN_DONE;
    } else if (resp.status == 404) {
        fprintf(stderr, "error: %s\n", first_line(resp.body));
        rc = HC_CLI_DRAIN_NOT_FOUND;
    } else if (resp.status == 401) {
        fprintf(stderr, "error: switchyard admin at %s refused: %s%s\n", o.admin,
                first_line(resp.body),
                o.token_file == NULL ? "; pass the token with --token-file" : "");
        rc = HC_CLI_DRAIN_REFUSED;
    } else {
        fprintf(stderr, "error: switchyard admin at %s answered HTTP %d %s: %s\n", o.admin,
                resp.status, resp.reason, first_line(resp.body));
        rc = HC_CLI_DRAIN_UNREACHABLE;
    }
    hc_cli_http_resp_deinit(&resp);
    return rc;
}
