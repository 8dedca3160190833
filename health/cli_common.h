/* What the switchyard-health subcommands share: the program's name and
 * version, exit statuses, durations written the way the configuration
 * writes them, and a small blocking HTTP client for the admin endpoint.
 * Invariant: nothing here prints or exits; errors come back as values.
 * SPDX-License-Identifier: MIT */
#ifndef HEALTH_CLI_COMMON_H
#define HEALTH_CLI_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HC_CLI_NAME    "switchyard-health"
#define HC_CLI_VERSION "0.1.0"

/* Exit statuses of `check`, as grpc_health_probe's. */
enum hc_cli_check_exit {
    HC_CLI_CHECK_SERVING = 0,   /* the server answered SERVING */
    HC_CLI_CHECK_BAD_ARGS = 1,  /* bad arguments, unreadable TLS files */
    HC_CLI_CHECK_CONN_FAIL = 2, /* could not connect (refused, TLS, timeout) */
    HC_CLI_CHECK_RPC_FAIL = 3,  /* the Check call ended with a non-OK status */
    HC_CLI_CHECK_UNHEALTHY = 4, /* OK, but NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN */
};

/* Exit statuses of `status`. */
enum hc_cli_status_exit {
    HC_CLI_STATUS_ALL_IN = 0,      /* every cluster has all its endpoints in rotation */
    HC_CLI_STATUS_SOME_OUT = 1,    /* an endpoint is out, a cluster has none; usage error */
    HC_CLI_STATUS_UNREACHABLE = 2, /* no answer, an HTTP error or not a /status document */
};

/** Parses a duration such as "250ms", "1s", "1.5s", "2m" or "1h" into
 *  milliseconds (rounded up to 1 ms when positive). A bare number is taken as
 *  seconds when |bare_seconds|. Returns 0, or -1 when |s| is not a duration,
 *  is negative or exceeds 24 h. */
int hc_cli_duration_parse(const char *s, bool bare_seconds, int64_t *ms);

/** Formats |ms| milliseconds the way durations are written on input ("250ms",
 *  "1s", "1.5s", "2m") into |buf|. Returns |buf|. */
const char *hc_cli_duration_fmt(int64_t ms, char *buf, size_t buflen);

/** An HTTP response read by hc_cli_http_get(). */
struct hc_cli_http_resp {
    int status;      /* e.g. 200 */
    char reason[64]; /* e.g. "OK" */
    char *body;      /* the body, de-chunked and NUL-terminated (owned) */
    size_t body_len; /* without the NUL */
};

/** Sends `GET |path| HTTP/1.1` to |addr| ("HOST:PORT", "[V6]:PORT", "HOST",
 *  "PORT", optionally prefixed with "http://"; the port defaults to
 *  |default_port|) over a blocking TCP connection with `Connection: close`
 *  and reads the whole response, all within |timeout_ms|. Returns 0 with
 *  |resp| filled (free it with hc_cli_http_resp_deinit), -1 with a message in
 *  |err| (connection refused, timeout, not HTTP, ...), or -2 when a signal
 *  interrupted it. */
int hc_cli_http_get(const char *addr, int default_port, const char *path, int64_t timeout_ms,
                    struct hc_cli_http_resp *resp, char *err, size_t errlen);

/** Like hc_cli_http_get() with request method |method| ("GET", "POST": a
 *  POST has an empty body) and |headers| (NULL, or lines each ending in
 *  "\r\n") instead of Accept: application/json. */
int hc_cli_http_request(const char *method, const char *addr, int default_port, const char *path,
                        const char *headers, int64_t timeout_ms, struct hc_cli_http_resp *resp,
                        char *err, size_t errlen);

/** Frees what |resp| holds; safe on a zeroed or already-deinited |resp|. */
void hc_cli_http_resp_deinit(struct hc_cli_http_resp *resp);

/* Exit statuses of `drain` and `undrain`. */
enum hc_cli_drain_exit {
    HC_CLI_DRAIN_DONE = 0,        /* the endpoint is (now) drained, or undrained */
    HC_CLI_DRAIN_BAD_ARGS = 1,    /* bad arguments, an unreadable token file */
    HC_CLI_DRAIN_UNREACHABLE = 2, /* no answer, or an answer other than the ones below */
    HC_CLI_DRAIN_NOT_FOUND = 3,   /* no such cluster, or no such endpoint in it */
    HC_CLI_DRAIN_REFUSED = 4,     /* a token is required ([admin] token_file) or wrong */
};

#endif
