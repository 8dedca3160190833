/* switchyard configuration loader: inih splits the file into lines, a keyword
 * table gives every key its type, default and range.
 * Invariant: the first error stops the parse and is the only one reported;
 * nothing here logs, and every value is ${ENV}-expanded before it is parsed.
 * SPDX-License-Identifier: MIT */
#include "conf/conf.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>

#include "core/grpc.h"

#define MAX_FILE_SIZE (1024 * 1024) /* a config is a few KiB; this stops `-c /dev/zero` */
#define KEY_TEXT_SIZE 48            /* value kept per key for cross-key messages */
#define KEY_NAME_MAX  64            /* longest key name "did you mean" compares */

/* ---- allocation: we are an application, OOM aborts ---- */

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);

    if (p == NULL)
        abort();
    return p;
}

static void *xreallocarray(void *ptr, size_t n, size_t size)
{
    void *p = reallocarray(ptr, n ? n : 1, size ? size : 1);

    if (p == NULL)
        abort();
    return p;
}

static char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);

    if (d == NULL)
        abort();
    return d;
}

static char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

static void seterr(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- scalar parsers, shared by the loader and the public helpers ---- */

/* Decimal digits only (no sign, no spaces). Saturates above |max| so that a
 * long run of digits cannot wrap. Returns 0, or -1 when |s| is not a number. */
static int parse_uint(const char *s, uint64_t max, uint64_t *out)
{
    uint64_t n = 0;

    if (!isdigit((unsigned char)*s))
        return -1;
    for (; isdigit((unsigned char)*s); s++) {
        n = n * 10 + (uint64_t)(*s - '0');
        if (n > max)
            n = max + 1;
    }
    if (*s != '\0')
        return -1;
    *out = n;
    return 0;
}

/* Outcomes of parse_duration(). */
enum {
    DUR_OK = 0,
    DUR_SYNTAX = -1,   /* not NUMBER UNIT */
    DUR_OVERFLOW = -2, /* more than UINT32_MAX milliseconds */
    DUR_SUB_MS = -3,   /* a fraction of a millisecond ("0.5ms", "1.0001s") */
};

/* A decimal number (digits, optionally '.' and more digits) followed by ms,
 * s, m or h, or a bare "0". Computed in integers, so "0.1s" is exactly 100 ms
 * and the result never depends on binary floating point. Returns DUR_*. */
static int parse_duration(const char *s, uint32_t *ms)
{
    uint64_t whole = 0, frac = 0, scale = 1, mult, v;
    const char *q = s, *fb = NULL, *fe = NULL;

    if (!isdigit((unsigned char)*q))
        return DUR_SYNTAX;
    for (; isdigit((unsigned char)*q); q++) {
        whole = whole * 10 + (uint64_t)(*q - '0');
        if (whole > UINT32_MAX)
            whole = (uint64_t)UINT32_MAX + 1; /* saturate: a long run cannot wrap */
    }
    if (*q == '.') {
        fb = ++q;
        if (!isdigit((unsigned char)*q))
            return DUR_SYNTAX; /* "1.s" */
        while (isdigit((unsigned char)*q))
            q++;
        fe = q;
        while (fe > fb && fe[-1] == '0')
            fe--; /* "1.500s" is "1.5s" */
    }
    if (strcmp(q, "ms") == 0)
        mult = 1;
    else if (strcmp(q, "s") == 0)
        mult = 1000;
    else if (strcmp(q, "m") == 0)
        mult = 60 * 1000;
    else if (strcmp(q, "h") == 0)
        mult = 60 * 60 * 1000;
    else if (*q == '\0' && fb == NULL && whole == 0)
        mult = 1; /* a bare 0 needs no unit */
    else
        return DUR_SYNTAX;
    if (fb != NULL) {
        /* 12 significant fraction digits times 3.6e6 (h) fit in 64 bits; with
         * more, the value cannot be a whole number of milliseconds. */
        if (fe - fb > 12)
            return DUR_SUB_MS;
        for (const char *d = fb; d < fe; d++) {
            frac = frac * 10 + (uint64_t)(*d - '0');
            scale *= 10;
        }
        if (frac * mult % scale != 0)
            return DUR_SUB_MS;
    }
    if (whole > UINT32_MAX || whole * mult > UINT32_MAX)
        return DUR_OVERFLOW;
    v = whole * mult + frac * mult / scale;
    if (v > UINT32_MAX)
        return DUR_OVERFLOW;
    *ms = (uint32_t)v;
    return DUR_OK;
}

int conf_parse_duration(const char *s, uint32_t *ms)
{
    return parse_duration(s, ms) == DUR_OK ? 0 : -1;
}

/* Writes |ms| with the largest unit that divides it exactly ("5s", "250ms"). */
static void format_duration(uint32_t ms, char *buf, size_t size)
{
    if (ms != 0 && ms % (60 * 60 * 1000) == 0)
        snprintf(buf, size, "%" PRIu32 "h", ms / (60 * 60 * 1000));
    else if (ms != 0 && ms % (60 * 1000) == 0)
        snprintf(buf, size, "%" PRIu32 "m", ms / (60 * 1000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(buf, size, "%" PRIu32 "s", ms / 1000);
    else
        snprintf(buf, size, "%" PRIu32 "ms", ms);
}

/* RFC 1123 host names, plus '_' (Docker Compose and some internal zones use
 * it). The last label may not be all digits (RFC 3696 §2), so a mistyped
 * address such as 10.0.0.256 is not taken for a name. */
static bool is_hostname(const char *h, size_t len)
{
    size_t label = 0;
    bool all_digits = true;

    if (len > 0 && h[len - 1] == '.')
        len--; /* fully qualified */
    if (len == 0 || len > 253)
        return false;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || h[i] == '.') {
            if (label == 0 || label > 63 || h[i - 1] == '-')
                return false;
            if (i == len && all_digits)
                return false;
            label = 0;
            all_digits = true;
            continue;
        }
        if (!isalnum((unsigned char)h[i]) && h[i] != '-' && h[i] != '_')
            return false;
        if (label == 0 && h[i] == '-')
            return false;
        if (!isdigit((unsigned char)h[i]))
            all_digits = false;
        label++;
    }
    return true;
}

int conf_parse_target(const char *spec, struct conf_target *t, char *err, size_t errlen)
{
    char host[256];
    const char *h, *port;
    size_t hlen;
    uint64_t pn;
    int family = AF_UNSPEC;
    union {
        struct in_addr v4;
        struct in6_addr v6;
    } a;

    memset(t, 0, sizeof(*t));
    if (spec[0] == '[') {
        const char *rb = strchr(spec, ']');

        if (rb == NULL) {
            seterr(err, errlen, "expected [IPv6]:PORT with a closing ']', got '%s'", spec);
            return -1;
        }
        if (rb[1] != ':') {
            seterr(err, errlen, "expected [IPv6]:PORT with ':PORT' right after ']', got '%s'",
                   spec);
            return -1;
        }
        h = spec + 1;
        hlen = (size_t)(rb - h);
        port = rb + 2;
        if (hlen == 0 || hlen >= sizeof(host)) {
            seterr(err, errlen, "expected an IPv6 address inside [ ], got '%s'", spec);
            return -1;
        }
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET6, host, &a.v6) != 1) {
            seterr(err, errlen, "expected an IPv6 address inside [ ], got '%s'", spec);
            return -1;
        }
        family = AF_INET6;
    } else {
        const char *colon = strrchr(spec, ':');

        if (colon == NULL) {
            seterr(err, errlen, "expected HOST:PORT (the port is required), got '%s'", spec);
            return -1;
        }
        if (memchr(spec, ':', (size_t)(colon - spec)) != NULL &&
            strspn(spec, "0123456789abcdefABCDEF:.%]") >= (size_t)(colon - spec)) {
            seterr(err, errlen,
                   "expected an IPv6 address in brackets such as [::1]:50051, got '%s'", spec);
            return -1;
        }
        h = spec;
        hlen = (size_t)(colon - spec);
        port = colon + 1;
        if (hlen == 0 || hlen >= sizeof(host)) {
            seterr(err, errlen, "expected a host name or IP address before ':PORT', got '%s'",
                   spec);
            return -1;
        }
        memcpy(host, h, hlen);
        host[hlen] = '\0';
        if (inet_pton(AF_INET, host, &a.v4) == 1) {
            family = AF_INET;
        } else if (!is_hostname(host, hlen)) {
            seterr(err, errlen, "expected a host name or IP address before ':PORT', got '%s'",
                   spec);
            return -1;
        }
    }
    if (parse_uint(port, 65535, &pn) != 0 || pn == 0 || pn > 65535) {
        seterr(err, errlen, "expected a port in 1..65535, got '%s'", spec);
        return -1;
    }

    t->spec = xstrdup(spec);
    t->host = xstrdup(host);
    t->port = (uint16_t)pn;
    t->weight = 1;
    if (family == AF_INET) {
        struct sockaddr_in *sin = (struct sockaddr_in *)&t->addr;

        sin->sin_family = AF_INET;
        sin->sin_port = htons(t->port);
        sin->sin_addr = a.v4;
        t->addrlen = sizeof(*sin);
        t->is_literal = true;
    } else if (family == AF_INET6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&t->addr;

        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons(t->port);
        sin6->sin6_addr = a.v6;
        t->addrlen = sizeof(*sin6);
        t->is_literal = true;
    }
    return 0;
}

void conf_target_deinit(struct conf_target *t)
{
    free(t->spec);
    free(t->host);
    memset(t, 0, sizeof(*t));
}

const char *conf_policy_name(enum conf_policy p)
{
    switch (p) {
    case CONF_POLICY_ROUND_ROBIN:
        return "round_robin";
    case CONF_POLICY_PICK_FIRST:
        return "pick_first";
    case CONF_POLICY_LEAST_REQUEST:
        return "least_request";
    case CONF_POLICY_RING_HASH:
        return "ring_hash";
    case CONF_POLICY_RANDOM:
        return "random";
    case CONF_POLICY_COUNT:
        break;
    }
    return "unknown";
}

/* ---- ${ENV} expansion ---- */

struct sbuf {
    char *s;
    size_t len, cap;
};

static void sb_add(struct sbuf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap ? b->cap * 2 : 64;
        b->s = xreallocarray(b->s, b->cap, 1);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

char *conf_expand_env(const char *in, char *err, size_t errlen)
{
    struct sbuf b = {NULL, 0, 0};
    const char *s = in;

    sb_add(&b, "", 0);
    while (*s != '\0') {
        const char *dollar = strstr(s, "${");
        const char *name, *end, *val;
        size_t nlen;

        if (dollar == NULL) {
            sb_add(&b, s, strlen(s));
            break;
        }
        sb_add(&b, s, (size_t)(dollar - s)); /* a '$' without '{' stays literal */
        name = dollar + 2;
        for (end = name; isalnum((unsigned char)*end) || *end == '_'; end++)
            ;
        nlen = (size_t)(end - name);
        if (*end == '\0' || (end[0] == ':' && end[1] == '-' && strchr(end, '}') == NULL)) {
            seterr(err, errlen, "expected '}' to close '${', got '%s'", in);
            goto fail;
        }
        if (nlen == 0 || isdigit((unsigned char)name[0]) ||
            !(*end == '}' || (end[0] == ':' && end[1] == '-'))) {
            seterr(err, errlen,
                   "expected ${NAME} or ${NAME:-default} with NAME made of letters, digits "
                   "and '_', got '%s'",
                   in);
            goto fail;
        }
        {
            char vname[256];

            if (nlen >= sizeof(vname)) {
                seterr(err, errlen, "expected a shorter variable name, got '%s'", in);
                goto fail;
            }
            memcpy(vname, name, nlen);
            vname[nlen] = '\0';
            val = getenv(vname);
            if (*end == '}') {
                if (val == NULL) {
                    seterr(err, errlen,
                           "environment variable %s is not set and '${%s}' has no default "
                           "(write ${%s:-DEFAULT})",
                           vname, vname, vname);
                    goto fail;
                }
                sb_add(&b, val, strlen(val));
                s = end + 1;
            } else {
                /* ${NAME:-default}: the default also replaces an empty value, as in sh */
                const char *def = end + 2, *close = strchr(def, '}');

                if (val != NULL && *val != '\0')
                    sb_add(&b, val, strlen(val));
                else
                    sb_add(&b, def, (size_t)(close - def));
                s = close + 1;
            }
        }
    }
    return b.s;

fail:
    free(b.s);
    return NULL;
}

/* ---- the schema ---- */

enum section {
    SECT_NONE = 0,
    SECT_PROXY,
    SECT_ADMIN,
    SECT_CLUSTER,
    SECT_AUTH,
    SECT_TRACING,
};

enum kw_type {
    KW_U32,          /* uint32_t in min..max */
    KW_DURATION,     /* uint32_t milliseconds, >= min */
    KW_BOOL,         /* bool: on|off */
    KW_ENUM,         /* an enum (int-sized) indexed by |names| */
    KW_ENUM_BOOL,    /* bool indexed by |names| (false, true) */
    KW_STRING,       /* char *, any text */
    KW_AUTHORITY,    /* char *, NULL when empty */
    KW_ACCESS_LOG,   /* char *: -, off or a path */
    KW_WORKERS,      /* uint32_t: auto (0) or 1..256 */
    KW_LISTEN,       /* listen + listen_addr + listen_addrlen */
    KW_TARGETS,      /* list */
    KW_ROUTES,       /* list */
    KW_DNS_SERVERS,  /* list */
    KW_OPTIONAL,     /* char *, NULL when empty; no spaces */
    KW_SECRET,       /* char *, never echoed in messages */
    KW_FILE,         /* char *, a file name read at the end of the section */
    KW_ALGORITHMS,   /* list of JWS algorithm names */
    KW_AUDIENCE,     /* list */
    KW_CLAIMS,       /* list of claim names */
    KW_EXEMPT,       /* list of methods or services; the key replaces the default */
    KW_HASH_ON,      /* hash_on + hash_header: header:NAME or peer */
    KW_CODES,        /* uint32_t, a bit per gRPC status code: a list of names or numbers */
    KW_FLOAT,        /* double in min..max */
    KW_PERCENT,      /* uint32_t 0..100, a trailing % allowed */
    KW_RATE,         /* uint32_t per second in min..max, a trailing /s allowed */
    KW_DURATION_OFF, /* uint32_t milliseconds: off (0) or a duration >= min */
    KW_RATIO,        /* double in 0..1 */
    KW_URL,          /* otlp_endpoint: http://HOST[:PORT][/PATH], empty: none */
    KW_FIELDS,       /* access_log_fields: list of field names, one line */
    KW_ORIGINS,      /* list of web origins, or * */
};

struct keyword {
    enum section sect;
    const char *name;
    enum kw_type type;
    size_t off;               /* of the field in the section's struct */
    uint32_t min, max;        /* KW_U32; KW_DURATION uses only min */
    const char *const *names; /* KW_ENUM, KW_ENUM_BOOL; NULL-terminated */
};

static const char *const log_level_names[] = {"debug", "info", "warn", "error", NULL};
static const char *const policy_names[] = {"round_robin", "pick_first", "least_request",
                                           "ring_hash",   "random",     NULL};
static const char *const dns_family_names[] = {"auto", "v4", "v6", NULL};
static const char *const health_mode_names[] = {"check", "watch", NULL};
static const char *const health_state_names[] = {"unhealthy", "healthy", NULL};
static const char *const log_format_names[] = {"text", "json", NULL};
static const char *const auth_mode_names[] = {"off", "jwt", "token", NULL};
static const char *const tls_version_names[] = {"1.2", "1.3", NULL};
static const char *const alog_field_names[CONF_ALOG_FIELD_COUNT + 1] = {
    "time",        "peer",     "method",    "authority", "user_agent", "request_id",
    "trace_id",    "cluster",  "endpoint",  "attempts",  "status",     "code",
    "duration_ms", "bytes_in", "bytes_out", NULL};
static const char *const stream_format_names[] = {"array", "ndjson", NULL};

_Static_assert(sizeof(enum conf_log_level) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_policy) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_dns_family) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_health_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_auth_mode) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_tls_version) == sizeof(int), "enums are stored as int");
_Static_assert(sizeof(enum conf_stream_format) == sizeof(int), "enums are stored as int");

#define PX(f) offsetof(struct conf_proxy, f)
#define CL(f) offsetof(struct conf_cluster, f)
#define AU(f) offsetof(struct conf_auth, f)
#define TR(f) offsetof(struct conf_tracing, f)
#define INT31 2147483647u

/* Order here is the order of "expected one of" lists in messages. */
static const struct keyword keywords[] = {
    {SECT_PROXY, "listen", KW_LISTEN, PX(listen), 0, 0, NULL},
    {SECT_PROXY, "workers", KW_WORKERS, PX(workers), 0, 256, NULL},
    {SECT_PROXY, "log_level", KW_ENUM, PX(log_level), 0, 0, log_level_names},
    {SECT_PROXY, "access_log", KW_ACCESS_LOG, PX(access_log), 0, 0, NULL},
    {SECT_PROXY, "access_log_format", KW_ENUM_BOOL, PX(access_log_json), 0, 0, log_format_names},
    {SECT_PROXY, "access_log_fields", KW_FIELDS, PX(access_log_fields), 0, 0, alog_field_names},
    {SECT_PROXY, "log_format", KW_ENUM_BOOL, PX(log_json), 0, 0, log_format_names},
    {SECT_PROXY, "drain_timeout", KW_DURATION, PX(drain_timeout_ms), 0, 0, NULL},
    {SECT_PROXY, "max_concurrent_streams", KW_U32, PX(max_concurrent_streams), 1, INT31, NULL},
    {SECT_PROXY, "idle_timeout", KW_DURATION, PX(idle_timeout_ms), 0, 0, NULL},
    {SECT_PROXY, "dns_servers", KW_DNS_SERVERS, PX(dns_servers), 0, 0, NULL},
    {SECT_PROXY, "keepalive_time", KW_DURATION, PX(keepalive_time_ms), 0, 0, NULL},
    {SECT_PROXY, "keepalive_timeout", KW_DURATION, PX(keepalive_timeout_ms), 1, 0, NULL},
    {SECT_PROXY, "max_connections", KW_U32, PX(max_connections), 1, 1000000, NULL},
    {SECT_PROXY, "max_header_list_size", KW_U32, PX(max_header_list_size), 1024, 1048576, NULL},
    {SECT_PROXY, "stream_buffer", KW_U32, PX(stream_buffer), 16384, 67108864, NULL},
    {SECT_PROXY, "stream_idle_timeout", KW_DURATION, PX(stream_idle_timeout_ms), 0, 0, NULL},
    {SECT_PROXY, "max_connection_age", KW_DURATION, PX(max_connection_age_ms), 0, 0, NULL},
    {SECT_PROXY, "max_connection_age_grace", KW_DURATION, PX(max_connection_age_grace_ms), 0, 0,
     NULL},
    {SECT_PROXY, "max_message_size", KW_U32, PX(max_message_size), 0, INT31, NULL},
    {SECT_PROXY, "header_timeout", KW_DURATION, PX(header_timeout_ms), 1, 0, NULL},
    {SECT_PROXY, "listen_tls", KW_LISTEN, PX(listen_tls), 0, 0, NULL},
    {SECT_PROXY, "tls_cert", KW_FILE, PX(tls_cert), 0, 0, NULL},
    {SECT_PROXY, "tls_key", KW_FILE, PX(tls_key), 0, 0, NULL},
    {SECT_PROXY, "tls_client_ca", KW_FILE, PX(tls_client_ca), 0, 0, NULL},
    {SECT_PROXY, "tls_min_version", KW_ENUM, PX(tls_min_version), 0, 0, tls_version_names},
    {SECT_PROXY, "http1", KW_BOOL, PX(http1), 0, 0, NULL},
    {SECT_PROXY, "grpc_web", KW_BOOL, PX(grpc_web), 0, 0, NULL},
    {SECT_PROXY, "cors_origins", KW_ORIGINS, PX(cors_origins), 0, 0, NULL},
    {SECT_PROXY, "cors_max_age", KW_DURATION, PX(cors_max_age_ms), 0, 0, NULL},

    {SECT_ADMIN, "listen", KW_LISTEN, offsetof(struct conf_admin, listen), 0, 0, NULL},
    {SECT_ADMIN, "max_method_labels", KW_U32, offsetof(struct conf_admin, max_method_labels), 1,
     10000, NULL},
    {SECT_ADMIN, "token_file", KW_FILE, offsetof(struct conf_admin, token_file), 0, 0, NULL},

    {SECT_CLUSTER, "targets", KW_TARGETS, CL(targets), 0, 0, NULL},
    {SECT_CLUSTER, "policy", KW_ENUM, CL(policy), 0, 0, policy_names},
    {SECT_CLUSTER, "routes", KW_ROUTES, CL(routes), 0, 0, NULL},
    {SECT_CLUSTER, "least_request_choices", KW_U32, CL(least_request_choices), 2, 64, NULL},
    {SECT_CLUSTER, "hash_on", KW_HASH_ON, CL(hash_on), 0, 0, NULL},
    {SECT_CLUSTER, "ring_min_size", KW_U32, CL(ring_min_size), 1, 8388608, NULL},
    {SECT_CLUSTER, "pick_first_failback", KW_BOOL, CL(pick_first_failback), 0, 0, NULL},
    {SECT_CLUSTER, "slow_start", KW_DURATION, CL(slow_start_ms), 0, 0, NULL},
    {SECT_CLUSTER, "max_connections", KW_U32, CL(max_connections), 1, 1024, NULL},
    {SECT_CLUSTER, "max_streams_per_connection", KW_U32, CL(max_streams_per_connection), 1, INT31,
     NULL},
    {SECT_CLUSTER, "connect_timeout", KW_DURATION, CL(connect_timeout_ms), 1, 0, NULL},
    {SECT_CLUSTER, "max_retries", KW_U32, CL(max_retries), 0, 16, NULL},
    {SECT_CLUSTER, "retry_on", KW_CODES, CL(retry_on), 0, 0, NULL},
    {SECT_CLUSTER, "retry_max_attempts", KW_U32, CL(retry_max_attempts), 1, 5, NULL},
    {SECT_CLUSTER, "retry_initial_backoff", KW_DURATION, CL(retry_initial_backoff_ms), 1, 0, NULL},
    {SECT_CLUSTER, "retry_max_backoff", KW_DURATION, CL(retry_max_backoff_ms), 1, 0, NULL},
    {SECT_CLUSTER, "retry_backoff_multiplier", KW_FLOAT, CL(retry_backoff_multiplier), 1, 10, NULL},
    {SECT_CLUSTER, "retry_buffer", KW_U32, CL(retry_buffer), 0, 16777216, NULL},
    {SECT_CLUSTER, "retry_budget", KW_PERCENT, CL(retry_budget), 0, 100, NULL},
    {SECT_CLUSTER, "retry_budget_min", KW_RATE, CL(retry_budget_min), 0, 100000, NULL},
    {SECT_CLUSTER, "hedge_delay", KW_DURATION, CL(hedge_delay_ms), 0, 0, NULL},
    {SECT_CLUSTER, "timeout", KW_DURATION, CL(timeout_ms), 0, 0, NULL},
    {SECT_CLUSTER, "max_timeout", KW_DURATION, CL(max_timeout_ms), 0, 0, NULL},
    {SECT_CLUSTER, "drain_unhealthy", KW_DURATION_OFF, CL(drain_unhealthy_ms), 1, 0, NULL},
    {SECT_CLUSTER, "outlier_detection", KW_BOOL, CL(outlier_detection), 0, 0, NULL},
    {SECT_CLUSTER, "outlier_consecutive_failures", KW_U32, CL(outlier_consecutive_failures), 0,
     1000, NULL},
    {SECT_CLUSTER, "outlier_failure_percentage", KW_PERCENT, CL(outlier_failure_percentage), 0, 100,
     NULL},
    {SECT_CLUSTER, "outlier_min_calls", KW_U32, CL(outlier_min_calls), 1, 1000000, NULL},
    {SECT_CLUSTER, "outlier_interval", KW_DURATION, CL(outlier_interval_ms), 100, 0, NULL},
    {SECT_CLUSTER, "outlier_base_ejection_time", KW_DURATION, CL(outlier_base_ejection_time_ms), 1,
     0, NULL},
    {SECT_CLUSTER, "outlier_max_ejection_percent", KW_PERCENT, CL(outlier_max_ejection_percent), 0,
     100, NULL},
    {SECT_CLUSTER, "outlier_failure_codes", KW_CODES, CL(outlier_failure_codes), 0, 0, NULL},
    {SECT_CLUSTER, "dns_refresh", KW_DURATION, CL(dns_refresh_ms), 1, 0, NULL},
    {SECT_CLUSTER, "dns_min_ttl", KW_DURATION, CL(dns_min_ttl_ms), 0, 0, NULL},
    {SECT_CLUSTER, "dns_family", KW_ENUM, CL(dns_family), 0, 0, dns_family_names},
    {SECT_CLUSTER, "health_check", KW_BOOL, CL(health_check), 0, 0, NULL},
    {SECT_CLUSTER, "health_service", KW_STRING, CL(health_service), 0, 0, NULL},
    {SECT_CLUSTER, "health_authority", KW_AUTHORITY, CL(health_authority), 0, 0, NULL},
    {SECT_CLUSTER, "health_mode", KW_ENUM, CL(health_mode), 0, 0, health_mode_names},
    {SECT_CLUSTER, "health_interval", KW_DURATION, CL(health_interval_ms), 1, 0, NULL},
    {SECT_CLUSTER, "health_timeout", KW_DURATION, CL(health_timeout_ms), 1, 0, NULL},
    {SECT_CLUSTER, "healthy_threshold", KW_U32, CL(healthy_threshold), 1, 1000, NULL},
    {SECT_CLUSTER, "unhealthy_threshold", KW_U32, CL(unhealthy_threshold), 1, 1000, NULL},
    {SECT_CLUSTER, "health_initial", KW_ENUM_BOOL, CL(health_initial_healthy), 0, 0,
     health_state_names},
    {SECT_CLUSTER, "health_unimplemented", KW_ENUM_BOOL, CL(health_unimplemented_healthy), 0, 0,
     health_state_names},
    {SECT_CLUSTER, "panic_threshold", KW_U32, CL(panic_threshold), 0, 100, NULL},
    {SECT_CLUSTER, "required", KW_BOOL, CL(required), 0, 0, NULL},
    {SECT_CLUSTER, "tls", KW_BOOL, CL(tls), 0, 0, NULL},
    {SECT_CLUSTER, "tls_ca", KW_FILE, CL(tls_ca), 0, 0, NULL},
    {SECT_CLUSTER, "tls_server_name", KW_OPTIONAL, CL(tls_server_name), 0, 0, NULL},
    {SECT_CLUSTER, "tls_cert", KW_FILE, CL(tls_cert), 0, 0, NULL},
    {SECT_CLUSTER, "tls_key", KW_FILE, CL(tls_key), 0, 0, NULL},
    {SECT_CLUSTER, "tls_verify", KW_BOOL, CL(tls_verify), 0, 0, NULL},
    {SECT_CLUSTER, "transcode", KW_BOOL, CL(transcode), 0, 0, NULL},
    {SECT_CLUSTER, "descriptors", KW_OPTIONAL, CL(descriptors), 0, 0, NULL},
    {SECT_CLUSTER, "stream_format", KW_ENUM, CL(stream_format), 0, 0, stream_format_names},

    {SECT_AUTH, "mode", KW_ENUM, AU(mode), 0, 0, auth_mode_names},
    {SECT_AUTH, "secret", KW_SECRET, AU(secret), 0, 0, NULL},
    {SECT_AUTH, "secret_file", KW_FILE, AU(secret_file), 0, 0, NULL},
    {SECT_AUTH, "public_key_file", KW_FILE, AU(public_key_file), 0, 0, NULL},
    {SECT_AUTH, "algorithms", KW_ALGORITHMS, AU(algorithms), 0, 0, NULL},
    {SECT_AUTH, "issuer", KW_OPTIONAL, AU(issuer), 0, 0, NULL},
    {SECT_AUTH, "audience", KW_AUDIENCE, AU(audiences), 0, 0, NULL},
    {SECT_AUTH, "leeway", KW_DURATION, AU(leeway_ms), 0, 0, NULL},
    {SECT_AUTH, "forward_claims", KW_CLAIMS, AU(forward_claims), 0, 0, NULL},
    {SECT_AUTH, "strip_authorization", KW_BOOL, AU(strip_authorization), 0, 0, NULL},
    {SECT_AUTH, "tokens_file", KW_FILE, AU(tokens_file), 0, 0, NULL},
    {SECT_AUTH, "exempt", KW_EXEMPT, AU(exempt), 0, 0, NULL},

    {SECT_TRACING, "sample_ratio", KW_RATIO, TR(sample_ratio), 0, 0, NULL},
    {SECT_TRACING, "otlp_endpoint", KW_URL, TR(otlp_endpoint), 0, 0, NULL},
    {SECT_TRACING, "service_name", KW_STRING, TR(service_name), 0, 0, NULL},
    {SECT_TRACING, "queue_size", KW_U32, TR(queue_size), 16, 1048576, NULL},
    {SECT_TRACING, "batch_size", KW_U32, TR(batch_size), 1, 65536, NULL},
    {SECT_TRACING, "export_interval", KW_DURATION, TR(export_interval_ms), 10, 0, NULL},
    {SECT_TRACING, "export_timeout", KW_DURATION, TR(export_timeout_ms), 10, 0, NULL},
};

const char *conf_alog_field_name(enum conf_alog_field f)
{
    return f < CONF_ALOG_FIELD_COUNT ? alog_field_names[f] : "?";
}

#define NKEYWORDS (sizeof(keywords) / sizeof(keywords[0]))

static size_t keyword_index(enum section sect, const char *name)
{
    for (size_t i = 0; i < NKEYWORDS; i++)
        if (keywords[i].sect == sect && strcmp(keywords[i].name, name) == 0)
            return i;
    return NKEYWORDS;
}

static bool is_list(const struct keyword *kw)
{
    return kw->type == KW_TARGETS || kw->type == KW_ROUTES || kw->type == KW_DNS_SERVERS ||
           kw->type == KW_ALGORITHMS || kw->type == KW_AUDIENCE || kw->type == KW_CLAIMS ||
           kw->type == KW_EXEMPT || kw->type == KW_ORIGINS;
}

static void cluster_defaults(struct conf_cluster *cl)
{
    cl->policy = CONF_POLICY_ROUND_ROBIN;
    cl->least_request_choices = 2;
    cl->ring_min_size = 1024;
    cl->max_connections = 4;
    cl->max_streams_per_connection = 100;
    cl->connect_timeout_ms = 2000;
    cl->max_retries = 2;
    cl->retry_max_attempts = 3;
    cl->retry_initial_backoff_ms = 25;
    cl->retry_max_backoff_ms = 250;
    cl->retry_backoff_multiplier = 2.0;
    cl->retry_buffer = 64 * 1024;
    cl->retry_budget = 20;
    cl->retry_budget_min = 10;
    cl->outlier_consecutive_failures = 5;
    cl->outlier_min_calls = 20;
    cl->outlier_interval_ms = 10 * 1000;
    cl->outlier_base_ejection_time_ms = 30 * 1000;
    cl->outlier_max_ejection_percent = 50;
    cl->outlier_failure_codes =
        1u << GRPC_UNAVAILABLE | 1u << GRPC_INTERNAL | 1u << GRPC_UNKNOWN | 1u << GRPC_DATA_LOSS;
    cl->dns_refresh_ms = 30 * 1000;
    cl->dns_min_ttl_ms = 5 * 1000;
    cl->dns_family = CONF_DNS_AUTO;
    cl->health_check = true;
    cl->health_service = xstrdup("");
    cl->health_authority = NULL;
    cl->health_mode = CONF_HEALTH_CHECK;
    cl->health_interval_ms = 5 * 1000;
    cl->health_timeout_ms = 1000;
    cl->healthy_threshold = 1;
    cl->unhealthy_threshold = 2;
    cl->health_initial_healthy = false;
    cl->health_unimplemented_healthy = false;
    cl->panic_threshold = 0;
    cl->required = true;
    cl->tls_verify = true;
}

static void set_addr(const char *spec, char **listen, struct sockaddr_storage *ss, socklen_t *len)
{
    struct conf_target t;

    /* only called with the built-in defaults, which parse */
    if (conf_parse_target(spec, &t, NULL, 0) != 0)
        abort();
    free(*listen);
    *listen = xstrdup(spec);
    *ss = t.addr;
    *len = t.addrlen;
    conf_target_deinit(&t);
}

static struct conf *conf_new(const char *path)
{
    struct conf *c = xcalloc(1, sizeof(*c));

    atomic_init(&c->refs, 1);
    c->path = xstrdup(path);
    set_addr("0.0.0.0:50051", &c->proxy.listen, &c->proxy.listen_addr, &c->proxy.listen_addrlen);
    c->proxy.workers = 0;
    c->proxy.log_level = CONF_LOG_INFO;
    c->proxy.access_log = xstrdup("off");
    c->proxy.drain_timeout_ms = 30 * 1000;
    c->proxy.max_concurrent_streams = 100;
    c->proxy.idle_timeout_ms = 5 * 60 * 1000;
    c->proxy.keepalive_time_ms = 5 * 60 * 1000;
    c->proxy.keepalive_timeout_ms = 20 * 1000;
    c->proxy.max_connections = 10000;
    c->proxy.max_header_list_size = 65536;
    c->proxy.stream_buffer = 256 * 1024;
    c->proxy.stream_idle_timeout_ms = 5 * 60 * 1000;
    c->proxy.max_connection_age_grace_ms = 30 * 1000;
    c->proxy.max_message_size = 16 * 1024 * 1024;
    c->proxy.header_timeout_ms = 10 * 1000;
    c->proxy.http1 = true;
    c->proxy.grpc_web = true;
    c->proxy.cors_max_age_ms = 10 * 60 * 1000;
    set_addr("127.0.0.1:9901", &c->admin.listen, &c->admin.listen_addr, &c->admin.listen_addrlen);
    c->admin.max_method_labels = 100;
    {
        /* The fields access log lines had before access_log_fields. */
        static const uint8_t alog_default[] = {
            CONF_ALOG_TIME,     CONF_ALOG_PEER,     CONF_ALOG_METHOD, CONF_ALOG_CLUSTER,
            CONF_ALOG_ENDPOINT, CONF_ALOG_STATUS,   CONF_ALOG_CODE,   CONF_ALOG_DURATION,
            CONF_ALOG_BYTES_IN, CONF_ALOG_BYTES_OUT};

        memcpy(c->proxy.access_log_fields, alog_default, sizeof(alog_default));
        c->proxy.naccess_log_fields = sizeof(alog_default);
    }
    c->tracing.sample_ratio = 0.01;
    c->tracing.service_name = xstrdup("switchyard");
    c->tracing.queue_size = 2048;
    c->tracing.batch_size = 512;
    c->tracing.export_interval_ms = 1000;
    c->tracing.export_timeout_ms = 5000;
    c->auth.mode = CONF_AUTH_OFF;
    c->auth.leeway_ms = 30 * 1000;
    c->auth.exempt = xcalloc(1, sizeof(char *));
    c->auth.exempt[c->auth.nexempt++] = xstrdup("/grpc.health.v1.Health/");
    return c;
}

static void cluster_deinit(struct conf_cluster *cl)
{
    free(cl->name);
    for (size_t i = 0; i < cl->ntargets; i++)
        conf_target_deinit(&cl->targets[i]);
    free(cl->targets);
    for (size_t i = 0; i < cl->nroutes; i++)
        free(cl->routes[i]);
    free(cl->routes);
    free(cl->hash_header);
    free(cl->health_service);
    free(cl->health_authority);
    free(cl->tls_ca);
    free(cl->tls_server_name);
    free(cl->tls_cert);
    free(cl->tls_key);
    free(cl->descriptors);
}

static void free_list(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Key material is wiped, not only freed: a core dump or a later allocation
 * should not show it. */
static void free_secret(char *s, size_t len)
{
    if (s == NULL)
        return;
    explicit_bzero(s, len);
    free(s);
}

static void auth_deinit(struct conf_auth *a)
{
    if (a->verifier_free != NULL)
        a->verifier_free(a->verifier);
    free_secret(a->secret, a->secret_len);
    free(a->secret_file);
    free(a->public_key_file);
    free(a->public_key);
    free_list(a->algorithms, a->nalgorithms);
    free(a->issuer);
    free_list(a->audiences, a->naudiences);
    free_list(a->forward_claims, a->nforward_claims);
    free(a->tokens_file);
    for (size_t i = 0; i < a->ntokens; i++)
        free_secret(a->tokens[i], strlen(a->tokens[i]));
    free(a->tokens);
    free_list(a->exempt, a->nexempt);
}

struct conf *conf_ref(struct conf *c)
{
    atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
    return c;
}

void conf_free(struct conf *c)
{
    if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (c->tls_free != NULL)
        c->tls_free(c->tls);
    free(c->path);
    free(c->proxy.listen);
    free(c->proxy.listen_tls);
    free(c->proxy.tls_cert);
    free(c->proxy.tls_key);
    free(c->proxy.tls_client_ca);
    free(c->proxy.access_log);
    for (size_t i = 0; i < c->proxy.ndns_servers; i++)
        free(c->proxy.dns_servers[i]);
    free(c->proxy.dns_servers);
    free_list(c->proxy.cors_origins, c->proxy.ncors_origins);
    free(c->admin.listen);
    free(c->tracing.otlp_endpoint);
    free(c->tracing.otlp_host);
    free(c->tracing.otlp_path);
    free(c->tracing.service_name);
    free(c->admin.token_file);
    free_secret(c->admin.token, c->admin.token_len);
    auth_deinit(&c->auth);
    for (size_t i = 0; i < c->nclusters; i++)
        cluster_deinit(&c->clusters[i]);
    free(c->clusters);
    for (size_t i = 0; i < c->nkey_pos; i++)
        free(c->key_pos[i].section);
    free(c->key_pos);
    free(c);
}

int conf_key_line(const struct conf *c, const char *section, const char *name)
{
    for (size_t i = 0; i < c->nkey_pos; i++)
        if (strcmp(c->key_pos[i].section, section) == 0 && strcmp(c->key_pos[i].name, name) == 0)
            return c->key_pos[i].line;
    return 0;
}

/* ---- the loader ---- */

struct parse {
    const char *name; /* file name in messages */
    const char *text; /* the whole input, read line by line by read_line() */
    size_t len, pos;
    int lineno; /* of the line read_line() handed to inih last */
    struct conf *c;

    enum section sect;
    char *section; /* text between [ ] of the current header */
    int section_line;
    int proxy_line, admin_line, auth_line; /* header lines; 0: not seen */
    int tracing_line;
    int proxy_listen_line, admin_listen_line; /* 0: default */
    int tls_line;                             /* [proxy] listen_tls */
    int key_line[NKEYWORDS];                  /* in the current section; 0: unset */
    char key_text[NKEYWORDS][KEY_TEXT_SIZE];  /* expanded values, for later messages */

    /* inih treats an indented line after a key as a continuation of it; we
     * mirror its rules to know which lines it will hand us, and how. */
    bool key_seen;                 /* inih's prev_name is non-empty */
    bool cont;                     /* the current line is a continuation */
    const struct keyword *last_kw; /* key continuation lines extend */

    /* A list line that ended with ',' (or was empty) must be followed by a
     * continuation line. */
    const struct keyword *pend_kw;
    int pend_line;
    char pend_text[256];

    bool failed;
    char *err;
    size_t errlen;
};

static void vfail(struct parse *p, int line, const char *sect, const char *key, const char *fmt,
                  va_list ap)
{
    int n;

    if (p->failed)
        return;
    p->failed = true;
    if (p->err == NULL || p->errlen == 0)
        return;
    if (line <= 0)
        n = snprintf(p->err, p->errlen, "%s: ", p->name);
    else if (sect == NULL)
        n = snprintf(p->err, p->errlen, "%s:%d: ", p->name, line);
    else if (key == NULL)
        n = snprintf(p->err, p->errlen, "%s:%d: [%s]: ", p->name, line, sect);
    else
        n = snprintf(p->err, p->errlen, "%s:%d: [%s] %s: ", p->name, line, sect, key);
    if (n < 0 || (size_t)n >= p->errlen)
        return;
    vsnprintf(p->err + n, p->errlen - (size_t)n, fmt, ap);
}

static void fail_file(struct parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail_line(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_sect(struct parse *p, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_key(struct parse *p, int line, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* "FILE: ..." */
static void fail_file(struct parse *p, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(p, 0, NULL, NULL, fmt, ap);
    va_end(ap);
}

/* "FILE:LINE: ..." */
static void fail_line(struct parse *p, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(p, line, NULL, NULL, fmt, ap);
    va_end(ap);
}

/* "FILE:LINE: [SECTION]: ..." */
static void fail_sect(struct parse *p, int line, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(p, line, p->section, NULL, fmt, ap);
    va_end(ap);
}

/* "FILE:LINE: [SECTION] KEY: ..." */
static void fail_key(struct parse *p, int line, const char *key, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vfail(p, line, p->section, key, fmt, ap);
    va_end(ap);
}

static void *section_base(struct parse *p)
{
    switch (p->sect) {
    case SECT_PROXY:
        return &p->c->proxy;
    case SECT_ADMIN:
        return &p->c->admin;
    case SECT_CLUSTER:
        return &p->c->clusters[p->c->nclusters - 1];
    case SECT_AUTH:
        return &p->c->auth;
    case SECT_TRACING:
        return &p->c->tracing;
    case SECT_NONE:
        break;
    }
    return NULL;
}

/* "a, b or c" */
static void join_names(const char *const *names, char *buf, size_t size)
{
    size_t n = 0, len = 0;

    while (names[n] != NULL)
        n++;
    buf[0] = '\0';
    for (size_t i = 0; i < n && len < size; i++) {
        const char *sep = i == 0 ? "" : i + 1 == n ? " or " : ", ";
        int w = snprintf(buf + len, size - len, "%s%s", sep, names[i]);

        if (w < 0)
            break;
        len += (size_t)w;
    }
}

static int match_name(const char *const *names, const char *v)
{
    for (int i = 0; names[i] != NULL; i++)
        if (strcasecmp(names[i], v) == 0)
            return i;
    return -1;
}

static void set_u32(struct parse *p, const struct keyword *kw, const char *v, uint32_t *field)
{
    uint64_t n;

    if (parse_uint(v, kw->max, &n) != 0 || n < kw->min || n > kw->max) {
        fail_key(p, p->lineno, kw->name,
                 "expected an integer in %" PRIu32 "..%" PRIu32 ", got '%s'", kw->min, kw->max, v);
        return;
    }
    *field = (uint32_t)n;
}

/* One gRPC status code by name (UNAVAILABLE, unavailable, resource-exhausted)
 * or number. Returns it, or -1. */
static int parse_code(const char *s)
{
    char name[32];
    size_t n = strlen(s);
    uint64_t num;

    if (parse_uint(s, GRPC_CODE_COUNT - 1, &num) == 0)
        return (int)num;
    if (n == 0 || n >= sizeof(name))
        return -1;
    for (size_t i = 0; i <= n; i++)
        name[i] = s[i] == '-' ? '_' : (char)toupper((unsigned char)s[i]);
    for (int c = 0; c < GRPC_CODE_COUNT; c++) {
        if (strcmp(name, grpc_code_name(c)) == 0)
            return c;
    }
    return -1;
}

/* A list of gRPC status codes into a bit set; the key's own line replaces
 * the default, continuation lines add. */
static void set_codes(struct parse *p, const struct keyword *kw, const char *v, bool cont,
                      uint32_t *field)
{
    const char *s = v;

    if (!cont)
        *field = 0;
    while (*s != '\0') {
        const char *e = s + strcspn(s, ",");
        char item[64];
        size_t len;
        int code;

        while (s < e && isspace((unsigned char)*s))
            s++;
        len = (size_t)(e - s);
        while (len > 0 && isspace((unsigned char)s[len - 1]))
            len--;
        if (len > 0) {
            snprintf(item, sizeof(item), "%.*s", (int)len, s);
            code = len < sizeof(item) ? parse_code(item) : -1;
            if (code < 0) {
                fail_key(p, p->lineno, kw->name,
                         "expected gRPC status codes such as unavailable, resource_exhausted or "
                         "14, got '%.*s'",
                         (int)len, s);
                return;
            }
            *field |= 1u << code;
        }
        s = *e == ',' ? e + 1 : e;
    }
}

static void set_float(struct parse *p, const struct keyword *kw, const char *v, double *field)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (end == v || *end != '\0' || errno != 0 || !(d >= kw->min && d <= kw->max)) {
        fail_key(p, p->lineno, kw->name,
                 "expected a number in %" PRIu32 "..%" PRIu32 " such as 1.5, got '%s'", kw->min,
                 kw->max, v);
        return;
    }
    *field = d;
}

/* An integer with an optional unit suffix (|suffix|: "%", "/s"). */
static void set_u32_suffix(struct parse *p, const struct keyword *kw, const char *v,
                           const char *suffix, const char *example, uint32_t *field)
{
    size_t n = strlen(v), sl = strlen(suffix);
    char num[32];
    uint64_t x;

    if (n >= sl && strcmp(v + n - sl, suffix) == 0)
        n -= sl;
    while (n > 0 && isspace((unsigned char)v[n - 1]))
        n--;
    if (n > 0 && n < sizeof(num))
        snprintf(num, sizeof(num), "%.*s", (int)n, v);
    if (n == 0 || n >= sizeof(num) || parse_uint(num, kw->max, &x) != 0 || x < kw->min ||
        x > kw->max) {
        fail_key(p, p->lineno, kw->name,
                 "expected %s in %" PRIu32 "..%" PRIu32 " such as %s, got '%s'",
                 sl > 0 && suffix[0] == '%' ? "a percentage" : "a rate per second", kw->min,
                 kw->max, example, v);
        return;
    }
    *field = (uint32_t)x;
}

static void set_duration(struct parse *p, const struct keyword *kw, const char *v, uint32_t *field)
{
    uint32_t ms;
    int rc = parse_duration(v, &ms);

    if (rc == DUR_SYNTAX) {
        fail_key(p, p->lineno, kw->name, "expected a duration such as 250ms, 5s or 1m, got '%s'",
                 v);
        return;
    }
    if (rc == DUR_SUB_MS) {
        fail_key(p, p->lineno, kw->name,
                 "expected a whole number of milliseconds (1.5s is fine, 0.5ms is not), got '%s'",
                 v);
        return;
    }
    if (rc == DUR_OVERFLOW) {
        fail_key(p, p->lineno, kw->name,
                 "expected a duration of at most 4294967295ms (about 49 days), got '%s'", v);
        return;
    }
    if (ms < kw->min) {
        fail_key(p, p->lineno, kw->name, "expected a duration of at least %" PRIu32 "ms, got '%s'",
                 kw->min, v);
        return;
    }
    *field = ms;
}

static void set_bool(struct parse *p, const struct keyword *kw, const char *v, bool *field)
{
    static const char *const yes[] = {"on", "true", "yes", "1", NULL};
    static const char *const no[] = {"off", "false", "no", "0", NULL};

    if (match_name(yes, v) >= 0)
        *field = true;
    else if (match_name(no, v) >= 0)
        *field = false;
    else
        fail_key(p, p->lineno, kw->name, "expected on or off, got '%s'", v);
}

static void set_enum(struct parse *p, const struct keyword *kw, const char *v, void *field)
{
    char list[128];
    int i = match_name(kw->names, v);

    if (i < 0) {
        join_names(kw->names, list, sizeof(list));
        fail_key(p, p->lineno, kw->name, "expected %s, got '%s'", list, v);
        return;
    }
    if (kw->type == KW_ENUM_BOOL)
        *(bool *)field = i != 0;
    else
        memcpy(field, &i, sizeof(i)); /* the enum is int-sized (asserted above) */
}

static bool has_ctl_or_space(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return true;
    return false;
}

static void set_string(struct parse *p, const struct keyword *kw, const char *v, char **field)
{
    if (kw->type == KW_AUTHORITY) {
        if (has_ctl_or_space(v)) {
            fail_key(p, p->lineno, kw->name,
                     "expected a :authority such as users.svc or users.svc:50051, got '%s'", v);
            return;
        }
        free(*field);
        *field = *v == '\0' ? NULL : xstrdup(v); /* empty: the target's host */
        return;
    }
    if (kw->type == KW_OPTIONAL) {
        if (has_ctl_or_space(v)) {
            fail_key(p, p->lineno, kw->name, "expected a value without spaces, got '%s'", v);
            return;
        }
        free(*field);
        *field = *v == '\0' ? NULL : xstrdup(v);
        return;
    }
    if (kw->type == KW_SECRET || kw->type == KW_FILE) {
        if (*v == '\0') {
            fail_key(p, p->lineno, kw->name, "expected %s, got ''",
                     kw->type == KW_SECRET ? "a secret" : "a file name");
            return;
        }
        free(*field);
        *field = xstrdup(v);
        return;
    }
    if (kw->type == KW_ACCESS_LOG) {
        if (*v == '\0') {
            fail_key(p, p->lineno, kw->name, "expected -, off or a file path, got '%s'", v);
            return;
        }
        free(*field);
        *field = xstrdup(strcasecmp(v, "off") == 0 ? "off" : v);
        return;
    }
    free(*field);
    *field = xstrdup(v);
}

/* RFC 9110 §5.1 field names are tokens; HTTP/2 sends them in lower case (RFC 9113 §8.2.1). */
static bool is_header_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 128)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
            return false;
    return true;
}

static void set_hash_on(struct parse *p, const struct keyword *kw, const char *v)
{
    struct conf_cluster *cl = section_base(p);

    if (strcasecmp(v, "peer") == 0) {
        cl->hash_on = CONF_HASH_PEER;
        return;
    }
    if (strncasecmp(v, "header:", 7) != 0 || !is_header_name(v + 7)) {
        fail_key(p, p->lineno, kw->name,
                 "expected header:NAME (a request header such as header:x-user-id) or peer (the "
                 "client's IP address), got '%s'",
                 v);
        return;
    }
    cl->hash_on = CONF_HASH_HEADER;
    cl->hash_header = xstrdup(v + 7);
    for (char *c = cl->hash_header; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
}

static void set_workers(struct parse *p, const struct keyword *kw, const char *v, uint32_t *field)
{
    uint64_t n;

    if (strcasecmp(v, "auto") == 0) {
        *field = 0;
        return;
    }
    if (parse_uint(v, kw->max, &n) != 0 || n < 1 || n > kw->max) {
        fail_key(p, p->lineno, kw->name, "expected auto or an integer in 1..%" PRIu32 ", got '%s'",
                 kw->max, v);
        return;
    }
    *field = (uint32_t)n;
}

static void set_listen(struct parse *p, const struct keyword *kw, const char *v)
{
    char msg[256];
    struct conf_target t;
    char **listen;
    struct sockaddr_storage *ss;
    socklen_t *len;

    if (p->sect == SECT_PROXY && kw->off == PX(listen_tls)) {
        listen = &p->c->proxy.listen_tls;
        ss = &p->c->proxy.listen_tls_addr;
        len = &p->c->proxy.listen_tls_addrlen;
        p->tls_line = p->lineno;
    } else if (p->sect == SECT_PROXY) {
        listen = &p->c->proxy.listen;
        ss = &p->c->proxy.listen_addr;
        len = &p->c->proxy.listen_addrlen;
        p->proxy_listen_line = p->lineno;
    } else {
        listen = &p->c->admin.listen;
        ss = &p->c->admin.listen_addr;
        len = &p->c->admin.listen_addrlen;
        p->admin_listen_line = p->lineno;
    }
    /* off: no such listener ([proxy] listen = off when only listen_tls serves) */
    if (strcasecmp(v, "off") == 0) {
        free(*listen);
        *listen = NULL;
        memset(ss, 0, sizeof(*ss));
        *len = 0;
        return;
    }
    if (conf_parse_target(v, &t, msg, sizeof(msg)) != 0 && strchr(v, ':') != NULL) {
        fail_key(p, p->lineno, kw->name, "%s", msg);
        return;
    }
    if (!t.is_literal) { /* a name, or no ':PORT' at all */
        fail_key(p, p->lineno, kw->name,
                 "expected an IP address and port such as 0.0.0.0:50051 or [::]:50051, or off, "
                 "got '%s'",
                 v);
        conf_target_deinit(&t);
        return;
    }
    free(*listen);
    *listen = xstrdup(v);
    *ss = t.addr;
    *len = t.addrlen;
    conf_target_deinit(&t);
}

static bool same_target(const struct conf_target *a, const struct conf_target *b)
{
    if (a->port != b->port || a->is_literal != b->is_literal)
        return false;
    if (!a->is_literal)
        return strcasecmp(a->host, b->host) == 0;
    return a->addrlen == b->addrlen && memcmp(&a->addr, &b->addr, a->addrlen) == 0;
}

/* "weight=N" after a target; returns N, or 0 when |tok| is not one. */
static uint32_t parse_weight(const char *tok, size_t len)
{
    char num[16];
    uint64_t n;

    if (len <= 7 || strncasecmp(tok, "weight=", 7) != 0 || len - 7 >= sizeof(num))
        return 0;
    memcpy(num, tok + 7, len - 7);
    num[len - 7] = '\0';
    if (parse_uint(num, CONF_WEIGHT_MAX, &n) != 0 || n < 1 || n > CONF_WEIGHT_MAX)
        return 0;
    return (uint32_t)n;
}

static void add_target(struct parse *p, const struct keyword *kw, const char *item)
{
    struct conf_cluster *cl = section_base(p);
    struct conf_target t;
    const char *opt = item + strcspn(item, " \t");
    char *spec = xstrndup(item, (size_t)(opt - item));
    uint32_t weight = 0;
    char msg[256];
    int rc;

    /* HOST:PORT, then options separated by blanks: only weight=N so far */
    while (*opt != '\0') {
        size_t len;

        opt += strspn(opt, " \t");
        len = strcspn(opt, " \t");
        if (len == 0)
            break;
        if (weight != 0 || (weight = parse_weight(opt, len)) == 0) {
            fail_key(p, p->lineno, kw->name,
                     "expected HOST:PORT optionally followed by one weight=N with N in 1..%d, got "
                     "'%s'",
                     CONF_WEIGHT_MAX, item);
            free(spec);
            return;
        }
        opt += len;
    }
    rc = conf_parse_target(spec, &t, msg, sizeof(msg));
    free(spec);
    if (rc != 0) {
        fail_key(p, p->lineno, kw->name, "%s", msg);
        return;
    }
    if (weight != 0)
        t.weight = weight;
    for (size_t i = 0; i < cl->ntargets; i++) {
        if (same_target(&cl->targets[i], &t)) {
            fail_key(p, p->lineno, kw->name, "expected each target once, got '%s' twice", item);
            conf_target_deinit(&t);
            return;
        }
    }
    cl->targets = xreallocarray(cl->targets, cl->ntargets + 1, sizeof(*cl->targets));
    cl->targets[cl->ntargets++] = t;
}

static void add_route(struct parse *p, const struct keyword *kw, const char *item)
{
    struct conf_cluster *cl = section_base(p);

    if (item[0] != '/' || has_ctl_or_space(item)) {
        fail_key(p, p->lineno, kw->name,
                 "expected a :path prefix starting with '/' such as /pkg.Service/, got '%s'", item);
        return;
    }
    for (size_t i = 0; i < cl->nroutes; i++) {
        if (strcmp(cl->routes[i], item) == 0) {
            fail_key(p, p->lineno, kw->name, "expected each route once, got '%s' twice", item);
            return;
        }
    }
    cl->routes = xreallocarray(cl->routes, cl->nroutes + 1, sizeof(*cl->routes));
    cl->routes[cl->nroutes++] = xstrdup(item);
}

/* c-ares wants IP addresses; the port defaults to 53. Stored as IP:PORT or
 * [IPv6]:PORT so that every consumer sees one form. */
static void add_dns_server(struct parse *p, const struct keyword *kw, const char *item)
{
    struct conf_proxy *px = &p->c->proxy;
    struct conf_target t;
    unsigned char buf[sizeof(struct in6_addr)];
    char norm[300];

    memset(&t, 0, sizeof(t));
    if (inet_pton(AF_INET, item, buf) == 1) {
        snprintf(norm, sizeof(norm), "%s:53", item);
    } else if (inet_pton(AF_INET6, item, buf) == 1) {
        snprintf(norm, sizeof(norm), "[%s]:53", item);
    } else if (conf_parse_target(item, &t, NULL, 0) == 0 && t.is_literal) {
        snprintf(norm, sizeof(norm), t.addr.ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", t.host,
                 (unsigned)t.port);
        conf_target_deinit(&t);
    } else {
        conf_target_deinit(&t);
        fail_key(p, p->lineno, kw->name,
                 "expected an IP address with an optional port, such as 10.0.0.2, 10.0.0.2:53 "
                 "or [fd00::2]:53, got '%s'",
                 item);
        return;
    }
    for (size_t i = 0; i < px->ndns_servers; i++) {
        if (strcmp(px->dns_servers[i], norm) == 0) {
            fail_key(p, p->lineno, kw->name, "expected each server once, got '%s' twice", item);
            return;
        }
    }
    px->dns_servers = xreallocarray(px->dns_servers, px->ndns_servers + 1, sizeof(char *));
    px->dns_servers[px->ndns_servers++] = xstrdup(norm);
}

/* A web origin as browsers send it in Origin (RFC 6454 §6.1): scheme "://"
 * host [":" port], lower case, no path; or "*" alone (any origin). */
static void add_origin(struct parse *p, const struct keyword *kw, const char *item)
{
    struct conf_proxy *px = &p->c->proxy;
    const char *host = NULL;
    bool any = strcmp(item, "*") == 0;

    if (strncmp(item, "http://", 7) == 0)
        host = item + 7;
    else if (strncmp(item, "https://", 8) == 0)
        host = item + 8;
    if (!any &&
        (host == NULL || *host == '\0' || strchr(host, '/') != NULL || has_ctl_or_space(item))) {
        fail_key(p, p->lineno, kw->name,
                 "expected * or origins such as https://app.example.com or "
                 "http://localhost:8080 (scheme://host[:port], no path), got '%s'",
                 item);
        return;
    }
    for (const char *c = item; *c != '\0'; c++) {
        if (isupper((unsigned char)*c)) {
            fail_key(p, p->lineno, kw->name,
                     "expected an origin in lower case, as browsers send it, got '%s'", item);
            return;
        }
    }
    if ((any && px->ncors_origins > 0) ||
        (px->ncors_origins == 1 && strcmp(px->cors_origins[0], "*") == 0)) {
        fail_key(p, p->lineno, kw->name, "expected * alone or a list of origins, got both");
        return;
    }
    for (size_t i = 0; i < px->ncors_origins; i++) {
        if (strcmp(px->cors_origins[i], item) == 0) {
            fail_key(p, p->lineno, kw->name, "expected each origin once, got '%s' twice", item);
            return;
        }
    }
    px->cors_origins = xreallocarray(px->cors_origins, px->ncors_origins + 1, sizeof(char *));
    px->cors_origins[px->ncors_origins++] = xstrdup(item);
}

/* ---- [auth] ---- */

/* JWS algorithms libjwt 1.10 verifies (RFC 7518 §3.1); "none" is never one. */
static const char *const jws_algs[] = {"HS256", "HS384", "HS512", "RS256", "RS384",
                                       "RS512", "ES256", "ES384", "ES512", NULL};

static bool has_item(char *const *v, size_t n, const char *item, bool nocase)
{
    for (size_t i = 0; i < n; i++)
        if ((nocase ? strcasecmp(v[i], item) : strcmp(v[i], item)) == 0)
            return true;
    return false;
}

static void push_item(char ***v, size_t *n, const char *item)
{
    *v = xreallocarray(*v, *n + 1, sizeof(**v));
    (*v)[(*n)++] = xstrdup(item);
}

static bool is_claim_name(const char *s)
{
    if (*s == '\0' || strlen(s) > 64)
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

/* An [auth] exempt entry: a method (/pkg.Service/Method, a canonical gRPC
 * path) or a whole service (/pkg.Service/, the prefix of canonical paths).
 * proxy/auth.c matches the first exactly and the second as a prefix, and only
 * on canonical paths, so no spelling of another path can fall under either. */
static bool is_exempt_entry(const char *item)
{
    size_t len = strlen(item);
    char *probe;
    bool ok;

    if (grpc_path_is_canonical((const uint8_t *)item, len))
        return true;
    if (len < 3 || item[len - 1] != '/')
        return false;
    /* /Svc/ names a service when /Svc/m would be a method of it. */
    probe = xcalloc(1, len + 2);
    memcpy(probe, item, len);
    probe[len] = 'm';
    ok = grpc_path_is_canonical((const uint8_t *)probe, len + 1);
    free(probe);
    return ok;
}

static void add_auth_item(struct parse *p, const struct keyword *kw, const char *item)
{
    struct conf_auth *a = &p->c->auth;
    int i;

    switch (kw->type) {
    case KW_ALGORITHMS:
        i = match_name(jws_algs, item);
        if (i < 0) {
            fail_key(p, p->lineno, kw->name,
                     "expected HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384 or ES512%s, "
                     "got '%s'",
                     strcasecmp(item, "none") == 0 ? " ('none' would accept unsigned tokens)" : "",
                     item);
            return;
        }
        if (has_item(a->algorithms, a->nalgorithms, jws_algs[i], false)) {
            fail_key(p, p->lineno, kw->name, "expected each algorithm once, got '%s' twice", item);
            return;
        }
        push_item(&a->algorithms, &a->nalgorithms, jws_algs[i]);
        return;
    case KW_AUDIENCE:
        if (has_ctl_or_space(item)) {
            fail_key(p, p->lineno, kw->name, "expected an audience without spaces, got '%s'", item);
            return;
        }
        if (!has_item(a->audiences, a->naudiences, item, false))
            push_item(&a->audiences, &a->naudiences, item);
        return;
    case KW_CLAIMS:
        if (!is_claim_name(item)) {
            fail_key(p, p->lineno, kw->name,
                     "expected a claim name of at most 64 letters, digits, '_', '-' or '.' (it "
                     "becomes the header x-jwt-<claim>), got '%s'",
                     item);
            return;
        }
        if (a->nforward_claims == CONF_AUTH_MAX_CLAIMS) {
            fail_key(p, p->lineno, kw->name, "expected at most %d claims, got more",
                     CONF_AUTH_MAX_CLAIMS);
            return;
        }
        /* header names are lower case (RFC 9113 §8.2.1): Sub and sub would collide */
        if (has_item(a->forward_claims, a->nforward_claims, item, true)) {
            fail_key(p, p->lineno, kw->name, "expected each claim once, got '%s' twice", item);
            return;
        }
        push_item(&a->forward_claims, &a->nforward_claims, item);
        return;
    case KW_EXEMPT:
        if (!is_exempt_entry(item)) {
            fail_key(p, p->lineno, kw->name,
                     "expected a method /pkg.Service/Method or a whole service /pkg.Service/ "
                     "(no empty, '.' or '..' part, no '%%', '?', '#', space or non-ASCII "
                     "byte), got '%s'",
                     item);
            return;
        }
        if (has_item(a->exempt, a->nexempt, item, false)) {
            fail_key(p, p->lineno, kw->name, "expected each entry once, got '%s' twice", item);
            return;
        }
        push_item(&a->exempt, &a->nexempt, item);
        return;
    default:
        abort(); /* add_list() only hands us the types above */
    }
}

/* Reads all of |path| (at most |max| bytes) into a new NUL-terminated buffer.
 * Returns 0, or -1 with a message in |msg|. The content never goes into the
 * message: these files hold secrets. */
static int read_key_file(const char *path, size_t max, char **out, size_t *outlen, char *msg,
                         size_t msglen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *buf;
    size_t len = 0;
    ssize_t n = 0;

    if (fd < 0) {
        seterr(msg, msglen, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    buf = xcalloc(1, max + 2);
    do {
        n = read(fd, buf + len, max + 1 - len);
        if (n > 0)
            len += (size_t)n;
    } while ((n > 0 && len <= max) || (n < 0 && errno == EINTR));
    if (n < 0)
        seterr(msg, msglen, "cannot read %s: %s", path, strerror(errno));
    else if (len > max)
        seterr(msg, msglen, "expected %s to hold at most %zu bytes", path, max);
    close(fd);
    if (n < 0 || len > max) {
        explicit_bzero(buf, max + 2);
        free(buf);
        return -1;
    }
    *out = buf;
    *outlen = len;
    return 0;
}

static bool is_token68(const char *s, size_t len)
{
    size_t i = 0;

    /* RFC 9110 §11.2: token68 = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
    while (i < len && (isalnum((unsigned char)s[i]) || strchr("-._~+/", s[i]) != NULL))
        i++;
    if (i == 0)
        return false;
    while (i < len && s[i] == '=')
        i++;
    return i == len;
}

static void load_tokens(struct parse *p, int line)
{
    struct conf_auth *a = &p->c->auth;
    char msg[512] = "";
    char *buf, *s;
    size_t len;
    int lineno = 0;

    if (read_key_file(a->tokens_file, MAX_FILE_SIZE, &buf, &len, msg, sizeof(msg)) != 0) {
        fail_key(p, line, "tokens_file", "%s", msg);
        return;
    }
    for (s = buf; s < buf + len && !p->failed;) {
        char *nl = memchr(s, '\n', (size_t)(buf + len - s));
        char *e = nl != NULL ? nl : buf + len;
        char *b = s;

        lineno++;
        s = e + 1;
        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b == e || *b == '#')
            continue;
        if (memchr(b, '\0', (size_t)(e - b)) != NULL || !is_token68(b, (size_t)(e - b))) {
            fail_key(p, line, "tokens_file",
                     "%s:%d: expected one token per line, made of letters, digits and -._~+/ "
                     "with optional trailing '=' (the line is not shown)",
                     a->tokens_file, lineno);
            break;
        }
        a->tokens = xreallocarray(a->tokens, a->ntokens + 1, sizeof(*a->tokens));
        a->tokens[a->ntokens++] = xstrndup(b, (size_t)(e - b));
    }
    explicit_bzero(buf, len);
    free(buf);
    if (!p->failed && a->ntokens == 0)
        fail_key(p, line, "tokens_file", "expected at least one token in %s, got none",
                 a->tokens_file);
}

static int key_line_of(struct parse *p, const char *name)
{
    return p->key_line[keyword_index(SECT_AUTH, name)];
}

/* The HS* secret: RFC 7518 §3.2 asks for a key at least as long as the hash. */
static void check_secret(struct parse *p, const char *key, int line)
{
    struct conf_auth *a = &p->c->auth;
    static const size_t need[] = {32, 48, 64}; /* HS256, HS384, HS512 */

    if (a->secret_len < 32) {
        fail_key(p, line, key,
                 "expected a secret of at least 32 bytes for HS256 (RFC 7518 §3.2), got %zu "
                 "bytes",
                 a->secret_len);
        return;
    }
    for (size_t i = 0; i < a->nalgorithms; i++) {
        int alg = match_name(jws_algs, a->algorithms[i]);

        if (alg > 2) {
            fail_key(p, key_line_of(p, "algorithms"), "algorithms",
                     "expected HS256, HS384 or HS512 with %s (a shared secret), got '%s'", key,
                     a->algorithms[i]);
            return;
        }
        if (a->secret_len < need[alg]) {
            fail_key(p, key_line_of(p, "algorithms"), "algorithms",
                     "%s needs a secret of at least %zu bytes (RFC 7518 §3.2); %s has %zu",
                     a->algorithms[i], need[alg], key, a->secret_len);
            return;
        }
    }
}

/* Everything that depends on several keys, checked once the section is
 * complete; the key files are read here. mode = off checks nothing more, so
 * turning auth off never fails on a missing file. */
static void finish_auth(struct parse *p)
{
    static const char *const jwt_only[] = {"secret",     "secret_file",    "public_key_file",
                                           "algorithms", "issuer",         "audience",
                                           "leeway",     "forward_claims", NULL};
    static const char *const keys[] = {"secret", "secret_file", "public_key_file"};
    struct conf_auth *a = &p->c->auth;
    char msg[512] = "";
    int first = 0, nset = 0;

    if (key_line_of(p, "mode") == 0) {
        for (size_t i = 0; i < NKEYWORDS; i++) {
            if (keywords[i].sect == SECT_AUTH && p->key_line[i] != 0) {
                /* an [auth] that looks configured but checks nothing */
                fail_sect(p, p->section_line,
                          "missing key 'mode' (off, jwt or token); without it %s would do "
                          "nothing",
                          keywords[i].name);
                return;
            }
        }
    }
    if (a->mode == CONF_AUTH_OFF)
        return;
    if (a->mode == CONF_AUTH_TOKEN) {
        for (size_t i = 0; jwt_only[i] != NULL; i++) {
            if (key_line_of(p, jwt_only[i]) != 0) {
                fail_key(p, key_line_of(p, jwt_only[i]), jwt_only[i],
                         "applies to mode = jwt only; this section has mode = token");
                return;
            }
        }
        if (key_line_of(p, "tokens_file") == 0) {
            fail_sect(p, p->section_line,
                      "mode = token needs tokens_file (a file with one token per line)");
            return;
        }
        load_tokens(p, key_line_of(p, "tokens_file"));
        return;
    }
    if (key_line_of(p, "tokens_file") != 0) {
        fail_key(p, key_line_of(p, "tokens_file"), "tokens_file",
                 "applies to mode = token only; this section has mode = jwt");
        return;
    }
    for (int i = 0; i < 3; i++) {
        int line = key_line_of(p, keys[i]);

        if (line == 0)
            continue;
        if (nset++ == 0) {
            first = i;
            continue;
        }
        /* report the key that comes later in the file */
        if (line > key_line_of(p, keys[first]))
            fail_key(p, line, keys[i],
                     "expected only one of secret, secret_file and public_key_file; %s is set "
                     "on line %d",
                     keys[first], key_line_of(p, keys[first]));
        else
            fail_key(p, key_line_of(p, keys[first]), keys[first],
                     "expected only one of secret, secret_file and public_key_file; %s is set "
                     "on line %d",
                     keys[i], line);
        return;
    }
    if (nset == 0) {
        fail_sect(p, p->section_line,
                  "mode = jwt needs one of secret, secret_file (HS256) or public_key_file "
                  "(RS256, ES256)");
        return;
    }
    if (first == 0) {
        a->secret_len = strlen(a->secret);
        check_secret(p, "secret", key_line_of(p, "secret"));
    } else if (first == 1) {
        int line = key_line_of(p, "secret_file");

        if (read_key_file(a->secret_file, 64 * 1024, &a->secret, &a->secret_len, msg,
                          sizeof(msg)) != 0) {
            fail_key(p, line, "secret_file", "%s", msg);
            return;
        }
        /* `echo KEY > file` leaves a newline that is not part of the key */
        while (a->secret_len > 0 &&
               (a->secret[a->secret_len - 1] == '\n' || a->secret[a->secret_len - 1] == '\r'))
            a->secret[--a->secret_len] = '\0';
        check_secret(p, "secret_file", line);
    } else {
        int line = key_line_of(p, "public_key_file");

        if (read_key_file(a->public_key_file, 64 * 1024, &a->public_key, &a->public_key_len, msg,
                          sizeof(msg)) != 0) {
            fail_key(p, line, "public_key_file", "%s", msg);
            return;
        }
        if (strstr(a->public_key, "-----BEGIN ") == NULL) {
            fail_key(p, line, "public_key_file",
                     "expected a PEM public key (-----BEGIN PUBLIC KEY-----) in %s",
                     a->public_key_file);
            return;
        }
        for (size_t i = 0; i < a->nalgorithms; i++) {
            if (a->algorithms[i][0] == 'H') {
                fail_key(p, key_line_of(p, "algorithms"), "algorithms",
                         "expected RS256, RS384, RS512, ES256, ES384 or ES512 with "
                         "public_key_file (an HS algorithm keyed with a public key accepts forged "
                         "tokens), got '%s'",
                         a->algorithms[i]);
                return;
            }
        }
    }
}

static void set_pending(struct parse *p, const struct keyword *kw, const char *v)
{
    p->pend_kw = kw;
    p->pend_line = p->lineno;
    snprintf(p->pend_text, sizeof(p->pend_text), "%s", v);
}

/* A list line that asked for more (trailing ',' or empty value) got none. */
static void flush_pending(struct parse *p)
{
    const struct keyword *kw = p->pend_kw;

    if (kw == NULL)
        return;
    p->pend_kw = NULL;
    if (p->pend_text[0] == '\0') {
        if (kw->type == KW_DNS_SERVERS || kw->type == KW_ORIGINS)
            return; /* empty: the system's resolvers; no CORS */
        if (kw->type == KW_ALGORITHMS || kw->type == KW_AUDIENCE || kw->type == KW_CLAIMS ||
            kw->type == KW_EXEMPT)
            return; /* empty: none (algorithms: the key's default) */
        fail_key(p, p->pend_line, kw->name, "expected at least one item, got ''");
        return;
    }
    fail_key(p, p->pend_line, kw->name,
             "expected another item after the trailing ',' (on this line or an indented next "
             "line), got '%s'",
             p->pend_text);
}

/* Splits |v| on commas; every trimmed item must be non-empty, except that a
 * trailing ',' (or, on the key's own line, an empty value) announces indented
 * continuation lines. */
static void add_list(struct parse *p, const struct keyword *kw, const char *v, bool cont)
{
    const char *s = v;
    bool first = true;

    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' && !cont) {
        set_pending(p, kw, "");
        return;
    }
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *b = s, *e = comma != NULL ? comma : s + strlen(s);
        char *item;

        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b == e) {
            if (comma == NULL && !first) {
                set_pending(p, kw, v);
                return;
            }
            fail_key(p, p->lineno, kw->name, "expected a non-empty item between commas, got '%s'",
                     v);
            return;
        }
        item = xstrndup(b, (size_t)(e - b));
        if (kw->type == KW_TARGETS)
            add_target(p, kw, item);
        else if (kw->type == KW_ROUTES)
            add_route(p, kw, item);
        else if (kw->type == KW_DNS_SERVERS)
            add_dns_server(p, kw, item);
        else if (kw->type == KW_ORIGINS)
            add_origin(p, kw, item);
        else
            add_auth_item(p, kw, item);
        free(item);
        if (p->failed || comma == NULL)
            return;
        s = comma + 1;
        first = false;
    }
}

/* A ratio: a decimal number in 0..1 ("0.01", "1", "0"), no exponent, so
 * what the file says is what is applied. */
static void set_ratio(struct parse *p, const struct keyword *kw, const char *v, double *field)
{
    const char *q = v;
    char *end;
    double d;

    while (isdigit((unsigned char)*q))
        q++;
    if (*q == '.')
        for (q++; isdigit((unsigned char)*q); q++)
            ;
    d = strtod(v, &end);
    if (q == v || *q != '\0' || end != q || !(d >= 0.0 && d <= 1.0)) {
        fail_key(p, p->lineno, kw->name,
                 "expected a number in 0..1 such as 0.01 (1%%) or 1 (every trace), got '%s'", v);
        return;
    }
    *field = d;
}

/* otlp_endpoint: an OTLP/HTTP traces URL. Plain http only: switchyard sends
 * to a collector next to it (a sidecar or a node agent), which forwards. */
static void set_url(struct parse *p, const struct keyword *kw, const char *v)
{
    struct conf_tracing *tr = &p->c->tracing;
    const char *h = v + 7, *slash, *hend, *port = NULL;
    char hostport[300];
    uint64_t pn = 4318;

    free(tr->otlp_endpoint);
    free(tr->otlp_host);
    free(tr->otlp_path);
    tr->otlp_endpoint = tr->otlp_host = tr->otlp_path = NULL;
    if (*v == '\0')
        return; /* export off */
    if (strncmp(v, "http://", 7) != 0 || has_ctl_or_space(v)) {
        fail_key(p, p->lineno, kw->name,
                 "expected http://HOST[:PORT][/PATH] such as http://127.0.0.1:4318/v1/traces%s, "
                 "got '%s'",
                 strncmp(v, "https://", 8) == 0
                     ? " (https is not supported: send to a local collector, which forwards)"
                     : "",
                 v);
        return;
    }
    slash = strchr(h, '/');
    hend = slash != NULL ? slash : h + strlen(h);
    if ((size_t)(hend - h) >= sizeof(hostport) || hend == h) {
        fail_key(p, p->lineno, kw->name, "expected a host after http://, got '%s'", v);
        return;
    }
    memcpy(hostport, h, (size_t)(hend - h));
    hostport[hend - h] = '\0';
    if (hostport[0] == '[') {
        char *rb = strchr(hostport, ']');

        if (rb == NULL || (rb[1] != '\0' && rb[1] != ':')) {
            fail_key(p, p->lineno, kw->name, "expected [IPv6] or [IPv6]:PORT as host, got '%s'", v);
            return;
        }
        if (rb[1] == ':')
            port = rb + 2;
        *rb = '\0';
        memmove(hostport, hostport + 1, strlen(hostport));
    } else {
        char *colon = strchr(hostport, ':');

        if (colon != NULL) {
            *colon = '\0';
            port = colon + 1;
        }
        if (!is_hostname(hostport, strlen(hostport))) {
            struct in_addr a4;

            if (inet_pton(AF_INET, hostport, &a4) != 1) {
                fail_key(p, p->lineno, kw->name,
                         "expected a host name or IP address after http://, got '%s'", v);
                return;
            }
        }
    }
    if (port != NULL && (parse_uint(port, 65535, &pn) != 0 || pn == 0 || pn > 65535)) {
        fail_key(p, p->lineno, kw->name, "expected a port in 1..65535 in the URL, got '%s'", v);
        return;
    }
    tr->otlp_endpoint = xstrdup(v);
    tr->otlp_host = xstrdup(hostport);
    tr->otlp_port = (uint16_t)pn;
    tr->otlp_path = xstrdup(slash != NULL && slash[1] != '\0' ? slash : "/v1/traces");
}

/* access_log_fields = a, b, c: field names, each at most once, on one line. */
static void set_fields(struct parse *p, const struct keyword *kw, const char *v)
{
    struct conf_proxy *pc = &p->c->proxy;
    char list[300];
    const char *s = v;
    size_t n = 0;
    uint8_t f[CONF_ALOG_FIELD_COUNT];

    join_names(kw->names, list, sizeof(list));
    for (;;) {
        const char *comma = strchr(s, ',');
        const char *b = s, *e = comma != NULL ? comma : s + strlen(s);
        char item[32];
        int i;

        while (b < e && isspace((unsigned char)*b))
            b++;
        while (e > b && isspace((unsigned char)e[-1]))
            e--;
        if (b == e || (size_t)(e - b) >= sizeof(item)) {
            fail_key(p, p->lineno, kw->name,
                     "expected field names from %s, separated by ',', "
                     "got '%s'",
                     list, v);
            return;
        }
        memcpy(item, b, (size_t)(e - b));
        item[e - b] = '\0';
        i = match_name(kw->names, item);
        if (i < 0) {
            fail_key(p, p->lineno, kw->name, "expected a field among %s, got '%s'", list, item);
            return;
        }
        for (size_t k = 0; k < n; k++) {
            if (f[k] == i) {
                fail_key(p, p->lineno, kw->name, "expected each field once, got '%s' twice", item);
                return;
            }
        }
        f[n++] = (uint8_t)i;
        if (comma == NULL)
            break;
        s = comma + 1;
    }
    memcpy(pc->access_log_fields, f, n);
    pc->naccess_log_fields = n;
}

static void set_value(struct parse *p, const struct keyword *kw, const char *v, bool cont)
{
    void *field = (char *)section_base(p) + kw->off;

    switch (kw->type) {
    case KW_U32:
        set_u32(p, kw, v, field);
        break;
    case KW_DURATION:
        set_duration(p, kw, v, field);
        break;
    case KW_BOOL:
        set_bool(p, kw, v, field);
        break;
    case KW_ENUM:
    case KW_ENUM_BOOL:
        set_enum(p, kw, v, field);
        break;
    case KW_STRING:
    case KW_AUTHORITY:
    case KW_ACCESS_LOG:
    case KW_OPTIONAL:
    case KW_SECRET:
    case KW_FILE:
        set_string(p, kw, v, field);
        break;
    case KW_WORKERS:
        set_workers(p, kw, v, field);
        break;
    case KW_LISTEN:
        set_listen(p, kw, v);
        break;
    case KW_HASH_ON:
        set_hash_on(p, kw, v);
        break;
    case KW_CODES:
        set_codes(p, kw, v, cont, field);
        break;
    case KW_FLOAT:
        set_float(p, kw, v, field);
        break;
    case KW_PERCENT:
        set_u32_suffix(p, kw, v, "%", "20%", field);
        break;
    case KW_RATE:
        set_u32_suffix(p, kw, v, "/s", "10/s", field);
        break;
    case KW_DURATION_OFF:
        if (strcmp(v, "off") == 0)
            *(uint32_t *)field = 0;
        else
            set_duration(p, kw, v, field);
        break;
    case KW_RATIO:
        set_ratio(p, kw, v, field);
        break;
    case KW_URL:
        set_url(p, kw, v);
        break;
    case KW_FIELDS:
        set_fields(p, kw, v);
        break;
    case KW_EXEMPT:
        if (!cont) { /* the key's own line: its items replace the default */
            free_list(p->c->auth.exempt, p->c->auth.nexempt);
            p->c->auth.exempt = NULL;
            p->c->auth.nexempt = 0;
        }
        add_list(p, kw, v, cont);
        break;
    case KW_TARGETS:
    case KW_ROUTES:
    case KW_DNS_SERVERS:
    case KW_ALGORITHMS:
    case KW_AUDIENCE:
    case KW_CLAIMS:
    case KW_ORIGINS:
        add_list(p, kw, v, cont);
        break;
    }
}

static char *expand(struct parse *p, const struct keyword *kw, const char *v)
{
    char msg[512];
    char *out = conf_expand_env(v, msg, sizeof(msg));

    if (out == NULL && kw->type == KW_SECRET && strstr(msg, v) != NULL)
        fail_key(p, p->lineno, kw->name,
                 "expected ${NAME} or ${NAME:-default} closed by '}' (the value is a secret and "
                 "is not shown)");
    else if (out == NULL)
        fail_key(p, p->lineno, kw->name, "%s", msg);
    return out;
}

/* Edit distance between |a| and |b| (optimal string alignment: insert,
 * delete, substitute, swap two neighbours), ASCII case ignored; capped at
 * |cap| + 1 so a long unrelated name costs little. */
static size_t edit_distance(const char *a, const char *b, size_t cap)
{
    size_t la = strlen(a), lb = strlen(b);
    size_t prev2[KEY_NAME_MAX + 1], prev[KEY_NAME_MAX + 1], cur[KEY_NAME_MAX + 1];

    if (la > KEY_NAME_MAX || lb > KEY_NAME_MAX)
        return cap + 1;
    if ((la > lb ? la - lb : lb - la) > cap)
        return cap + 1;
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    memset(prev2, 0, sizeof(prev2));
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            bool same = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]);
            size_t d = prev[j - 1] + (same ? 0 : 1);

            if (prev[j] + 1 < d)
                d = prev[j] + 1;
            if (cur[j - 1] + 1 < d)
                d = cur[j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                prev2[j - 2] + 1 < d)
                d = prev2[j - 2] + 1;
            cur[j] = d;
        }
        memcpy(prev2, prev, sizeof(prev));
        memcpy(prev, cur, sizeof(cur));
    }
    return prev[lb];
}

/* The key of |sect| closest to |name|, or NULL when none is close enough to
 * be a likely typo: at most 2 edits, and at most a third of the key. */
static const char *closest_key(enum section sect, const char *name)
{
    const char *best = NULL;
    size_t best_d = 3;

    for (size_t i = 0; i < NKEYWORDS; i++) {
        size_t d;

        if (keywords[i].sect != sect)
            continue;
        d = edit_distance(name, keywords[i].name, 2);
        if (d < best_d && d * 3 <= strlen(keywords[i].name)) {
            best = keywords[i].name;
            best_d = d;
        }
    }
    return best;
}

static const char *section_title(enum section sect)
{
    switch (sect) {
    case SECT_PROXY:
        return "[proxy]";
    case SECT_ADMIN:
        return "[admin]";
    case SECT_CLUSTER:
        return "[cluster.NAME]";
    case SECT_AUTH:
        return "[auth]";
    case SECT_TRACING:
        return "[tracing]";
    case SECT_NONE:
        break;
    }
    return "?";
}

static void unknown_key(struct parse *p, const char *name)
{
    char list[1024], hint[160] = "";
    const char *near = closest_key(p->sect, name);
    size_t len = 0;

    list[0] = '\0';
    for (size_t i = 0; i < NKEYWORDS && len < sizeof(list); i++) {
        int w;

        if (keywords[i].sect != p->sect)
            continue;
        w = snprintf(list + len, sizeof(list) - len, "%s%s", len ? ", " : "", keywords[i].name);
        if (w < 0)
            break;
        len += (size_t)w;
    }
    if (near != NULL && strcmp(near, name) != 0 && strcasecmp(near, name) == 0) {
        snprintf(hint, sizeof(hint), " (did you mean '%s'? key names are lower case)", near);
    } else if (near != NULL) {
        snprintf(hint, sizeof(hint), " (did you mean '%s'?)", near);
    } else {
        /* the right name in the wrong section: "[admin] workers" */
        for (size_t i = 0; i < NKEYWORDS; i++) {
            if (keywords[i].sect != p->sect && strcmp(keywords[i].name, name) == 0) {
                snprintf(hint, sizeof(hint), " (%s is a key of %s)", name,
                         section_title(keywords[i].sect));
                break;
            }
        }
    }
    fail_key(p, p->lineno, name, "unknown key%s; expected one of %s", hint, list);
}

static void on_key(struct parse *p, const char *name, const char *value)
{
    size_t i;
    char *v;

    if (p->sect == SECT_NONE) {
        fail_line(p, p->lineno,
                  "%s: expected a [proxy], [admin], [auth], [tracing] or [cluster.NAME] header "
                  "before the first key",
                  name);
        return;
    }
    i = keyword_index(p->sect, name);
    if (i == NKEYWORDS) {
        unknown_key(p, name);
        return;
    }
    if (p->key_line[i] != 0) {
        fail_key(p, p->lineno, name, "duplicate key; first set on line %d", p->key_line[i]);
        return;
    }
    p->key_line[i] = p->lineno;
    {
        struct conf *c = p->c;

        c->key_pos = xreallocarray(c->key_pos, c->nkey_pos + 1, sizeof(*c->key_pos));
        c->key_pos[c->nkey_pos++] =
            (struct conf_key_pos){xstrdup(p->section), keywords[i].name, p->lineno};
    }
    p->last_kw = &keywords[i];
    v = expand(p, &keywords[i], value);
    if (v == NULL)
        return;
    snprintf(p->key_text[i], sizeof(p->key_text[i]), "%s", v);
    set_value(p, &keywords[i], v, false);
    free(v);
}

/* An '=' on a continuation line means an indented key, except in the
 * weight=N option of targets. */
static bool has_stray_equals(const struct keyword *kw, const char *value)
{
    for (const char *e = strchr(value, '='); e != NULL; e = strchr(e + 1, '=')) {
        if (kw->type != KW_TARGETS || e - value < 7 || strncasecmp(e - 6, "weight", 6) != 0 ||
            !isspace((unsigned char)e[-7]))
            return true;
    }
    return false;
}

static void on_continuation(struct parse *p, const char *value)
{
    const struct keyword *kw = p->last_kw;
    char *v;

    if (kw == NULL) { /* cannot happen: inih only continues a key it handed us */
        fail_line(p, p->lineno, "unexpected indented line '%s'", value);
        return;
    }
    if (!is_list(kw)) {
        fail_key(p, p->lineno, kw->name,
                 "expected the value on one line (only lists such as targets, routes and "
                 "dns_servers continue on indented lines; do not indent keys), got '%s'",
                 kw->type == KW_SECRET ? "(a secret: not shown)" : value);
        return;
    }
    if (value[0] == '[' || has_stray_equals(kw, value)) {
        fail_key(p, p->lineno, kw->name,
                 "expected more items on this indented continuation line (do not indent keys or "
                 "section headers), got '%s'",
                 value);
        return;
    }
    p->pend_kw = NULL;
    v = expand(p, kw, value);
    if (v == NULL)
        return;
    set_value(p, kw, v, true);
    free(v);
}

/* inih's handler: called for every key line and continuation line. */
static int on_ini_pair(void *user, const char *section, const char *name, const char *value)
{
    struct parse *p = user;

    (void)section; /* inih truncates long names; we track sections ourselves */
    if (p->failed)
        return 0;
    if (p->cont)
        on_continuation(p, value);
    else
        on_key(p, name, value);
    return !p->failed;
}

/* ---- TLS keys ([proxy] and [cluster.NAME]) ---- */

static int tls_key_line(struct parse *p, const char *name)
{
    return p->key_line[keyword_index(p->sect, name)];
}

/* Certificates and keys are read when the conf is turned into TLS contexts
 * (tls_attach()); here only that they can be opened, so that a typo
 * names its file, line and key. */
static void check_readable(struct parse *p, const char *key, const char *path)
{
    int fd;

    if (path == NULL || p->failed)
        return;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fail_key(p, tls_key_line(p, key), key, "expected a readable PEM file, got '%s': %s", path,
                 strerror(errno));
        return;
    }
    close(fd);
}

/* tls_cert and tls_key come together. */
static void check_pair(struct parse *p, const char *cert, const char *key)
{
    if ((cert == NULL) == (key == NULL))
        return;
    if (cert == NULL)
        fail_key(p, tls_key_line(p, "tls_key"), "tls_key", "expected tls_cert as well");
    else
        fail_key(p, tls_key_line(p, "tls_cert"), "tls_cert", "expected tls_key as well");
}

static void finish_proxy(struct parse *p)
{
    struct conf_proxy *pc = &p->c->proxy;
    static const char *const keys[] = {"tls_cert", "tls_key", "tls_client_ca", "tls_min_version"};

    if (pc->listen_tls != NULL && pc->tls_cert == NULL) {
        fail_key(p, tls_key_line(p, "listen_tls"), "listen_tls",
                 "expected tls_cert and tls_key for the TLS listener");
        return;
    }
    check_pair(p, pc->tls_cert, pc->tls_key);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !p->failed; i++) {
        if (pc->listen_tls == NULL && tls_key_line(p, keys[i]) != 0)
            fail_key(p, tls_key_line(p, keys[i]), keys[i],
                     "expected listen_tls as well (TLS keys apply to the TLS listener)");
    }
    check_readable(p, "tls_cert", pc->tls_cert);
    check_readable(p, "tls_key", pc->tls_key);
    check_readable(p, "tls_client_ca", pc->tls_client_ca);
}

static void finish_cluster_tls(struct parse *p, struct conf_cluster *cl)
{
    static const char *const keys[] = {"tls_ca", "tls_server_name", "tls_cert", "tls_key",
                                       "tls_verify"};

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]) && !cl->tls; i++) {
        if (tls_key_line(p, keys[i]) != 0) {
            fail_key(p, tls_key_line(p, keys[i]), keys[i],
                     "expected tls = on as well (TLS keys apply to TLS backends)");
            return;
        }
    }
    check_pair(p, cl->tls_cert, cl->tls_key);
    check_readable(p, "tls_ca", cl->tls_ca);
    check_readable(p, "tls_cert", cl->tls_cert);
    check_readable(p, "tls_key", cl->tls_key);
}

static const char *route_owner(const struct conf *c, size_t upto, const char *route, int *line)
{
    for (size_t i = 0; i < upto; i++) {
        for (size_t j = 0; j < c->clusters[i].nroutes; j++) {
            if (strcmp(c->clusters[i].routes[j], route) == 0) {
                *line = c->clusters[i].line;
                return c->clusters[i].name;
            }
        }
    }
    return NULL;
}

/* Options of one policy are an error with another: a leftover from a policy
 * change should not silently do nothing. */
static void finish_cluster_policy(struct parse *p, const struct conf_cluster *cl)
{
    static const struct {
        const char *key;
        unsigned policies; /* bit per enum conf_policy */
        const char *which;
    } opts[] = {
        {"least_request_choices", 1u << CONF_POLICY_LEAST_REQUEST, "policy = least_request"},
        {"hash_on", 1u << CONF_POLICY_RING_HASH, "policy = ring_hash"},
        {"ring_min_size", 1u << CONF_POLICY_RING_HASH, "policy = ring_hash"},
        {"pick_first_failback", 1u << CONF_POLICY_PICK_FIRST, "policy = pick_first"},
        {"slow_start", (1u << CONF_POLICY_ROUND_ROBIN) | (1u << CONF_POLICY_LEAST_REQUEST),
         "policy = round_robin and least_request"},
    };
    size_t pi = keyword_index(SECT_CLUSTER, "policy");

    for (size_t i = 0; i < sizeof(opts) / sizeof(opts[0]); i++) {
        int line = p->key_line[keyword_index(SECT_CLUSTER, opts[i].key)];

        if (line != 0 && (opts[i].policies & (1u << cl->policy)) == 0) {
            fail_key(p, line, opts[i].key, "applies to %s only; this cluster has policy = %s",
                     opts[i].which, conf_policy_name(cl->policy));
            return;
        }
    }
    if (cl->policy == CONF_POLICY_RING_HASH && cl->hash_on == CONF_HASH_NONE)
        fail_key(p, p->key_line[pi], "policy",
                 "ring_hash needs hash_on = header:NAME or hash_on = peer (what to hash)");
}

/* transcode = on needs descriptors; descriptors and stream_format mean
 * nothing without it. The file itself is read by the transcoder (a
 * descriptor set is not the conf's business). */
static void finish_cluster_transcode(struct parse *p, struct conf_cluster *cl)
{
    size_t ti = keyword_index(SECT_CLUSTER, "transcode");
    size_t di = keyword_index(SECT_CLUSTER, "descriptors");
    size_t si = keyword_index(SECT_CLUSTER, "stream_format");

    if (cl->transcode && cl->descriptors == NULL) {
        fail_key(p, p->key_line[ti], "transcode",
                 "transcode = on needs descriptors = PATH (a protoc --include_imports -o "
                 "descriptor set) or descriptors = reflection");
        return;
    }
    if (!cl->transcode && p->key_line[di] != 0) {
        fail_key(p, p->key_line[di], "descriptors", "descriptors needs transcode = on");
        return;
    }
    if (!cl->transcode && p->key_line[si] != 0)
        fail_key(p, p->key_line[si], "stream_format", "stream_format needs transcode = on");
}

static void finish_cluster(struct parse *p)
{
    struct conf_cluster *cl = section_base(p);
    size_t ti = keyword_index(SECT_CLUSTER, "targets");
    size_t ri = keyword_index(SECT_CLUSTER, "routes");
    size_t hi = keyword_index(SECT_CLUSTER, "health_interval");
    size_t ho = keyword_index(SECT_CLUSTER, "health_timeout");

    if (p->key_line[ti] == 0) {
        fail_sect(p, cl->line, "missing required key 'targets' (a list of HOST:PORT)");
        return;
    }
    finish_cluster_tls(p, cl);
    if (!p->failed)
        finish_cluster_policy(p, cl);
    if (!p->failed)
        finish_cluster_transcode(p, cl);
    if (p->failed)
        return;
    if (cl->nroutes == 0) {
        cl->routes = xcalloc(1, sizeof(*cl->routes));
        cl->routes[cl->nroutes++] = xstrdup("/");
    }
    if (cl->health_timeout_ms > cl->health_interval_ms) {
        char def[32];

        if (p->key_line[ho] != 0) {
            if (p->key_line[hi] != 0)
                snprintf(def, sizeof(def), "%s", p->key_text[hi]);
            else
                format_duration(cl->health_interval_ms, def, sizeof(def));
            fail_key(p, p->key_line[ho], "health_timeout",
                     "expected at most health_interval (%s), got '%s'", def, p->key_text[ho]);
        } else {
            format_duration(cl->health_timeout_ms, def, sizeof(def));
            fail_key(p, p->key_line[hi], "health_interval",
                     "expected at least health_timeout (%s), got '%s'", def, p->key_text[hi]);
        }
        return;
    }
    for (size_t i = 0; i < cl->nroutes; i++) {
        int line = 0;
        const char *other = route_owner(p->c, p->c->nclusters - 1, cl->routes[i], &line);

        if (other == NULL)
            continue;
        if (p->key_line[ri] != 0)
            fail_key(p, p->key_line[ri], "routes",
                     "route '%s' is already routed to [cluster.%s] (line %d); a route prefix "
                     "belongs to one cluster",
                     cl->routes[i], other, line);
        else
            fail_sect(p, cl->line,
                      "route '/' (the default when 'routes' is absent) is already routed to "
                      "[cluster.%s] (line %d); give one of them a 'routes' key",
                      other, line);
        return;
    }
}

/* [admin] token_file: one bearer token (RFC 6750 §2.1 b64token), read now so
 * that a request never opens a file. Surrounding blanks and the newline
 * `echo TOKEN > file` leaves are not part of it. */
static void finish_admin(struct parse *p)
{
    struct conf_admin *a = &p->c->admin;
    int line = p->key_line[keyword_index(SECT_ADMIN, "token_file")];
    char msg[512] = "";
    char *buf;
    size_t len, all, b = 0;

    if (a->token_file == NULL)
        return;
    if (read_key_file(a->token_file, 4096, &buf, &all, msg, sizeof(msg)) != 0) {
        fail_key(p, line, "token_file", "%s", msg);
        return;
    }
    len = all;
    while (len > 0 && isspace((unsigned char)buf[len - 1]))
        len--;
    while (b < len && isspace((unsigned char)buf[b]))
        b++;
    if (b == len || memchr(buf + b, '\0', len - b) != NULL || !is_token68(buf + b, len - b)) {
        fail_key(p, line, "token_file",
                 "expected %s to hold one token made of letters, digits and -._~+/ with "
                 "optional trailing '=' (the content is not shown)",
                 a->token_file);
    } else {
        a->token = xstrndup(buf + b, len - b);
        a->token_len = len - b;
    }
    explicit_bzero(buf, all);
    free(buf);
}

static void end_section(struct parse *p)
{
    if (p->sect == SECT_PROXY)
        finish_proxy(p);
    else if (p->sect == SECT_ADMIN)
        finish_admin(p);
    else if (p->sect == SECT_CLUSTER)
        finish_cluster(p);
    else if (p->sect == SECT_AUTH)
        finish_auth(p);
    p->sect = SECT_NONE;
}

static bool valid_cluster_name(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
            return false;
    return true;
}

static void begin_section(struct parse *p, const char *name, size_t len)
{
    free(p->section);
    p->section = xstrndup(name, len);
    p->section_line = p->lineno;
    memset(p->key_line, 0, sizeof(p->key_line));
    memset(p->key_text, 0, sizeof(p->key_text));
    p->last_kw = NULL;

    if (strcmp(p->section, "proxy") == 0) {
        if (p->proxy_line != 0) {
            fail_sect(p, p->lineno, "duplicate section; first on line %d", p->proxy_line);
            return;
        }
        p->proxy_line = p->lineno;
        p->sect = SECT_PROXY;
    } else if (strcmp(p->section, "admin") == 0) {
        if (p->admin_line != 0) {
            fail_sect(p, p->lineno, "duplicate section; first on line %d", p->admin_line);
            return;
        }
        p->admin_line = p->lineno;
        p->sect = SECT_ADMIN;
    } else if (strcmp(p->section, "auth") == 0) {
        if (p->auth_line != 0) {
            fail_sect(p, p->lineno, "duplicate section; first on line %d", p->auth_line);
            return;
        }
        p->auth_line = p->lineno;
        p->sect = SECT_AUTH;
    } else if (strcmp(p->section, "tracing") == 0) {
        if (p->tracing_line != 0) {
            fail_sect(p, p->lineno, "duplicate section; first on line %d", p->tracing_line);
            return;
        }
        p->tracing_line = p->lineno;
        p->sect = SECT_TRACING;
    } else if (strncmp(p->section, "cluster.", 8) == 0) {
        const char *cname = p->section + 8;
        struct conf *c = p->c;
        struct conf_cluster *cl;

        if (!valid_cluster_name(cname)) {
            fail_sect(p, p->lineno,
                      "expected a cluster name of letters, digits, '_', '.' or '-', got '%s'",
                      cname);
            return;
        }
        for (size_t i = 0; i < c->nclusters; i++) {
            if (strcmp(c->clusters[i].name, cname) == 0) {
                fail_sect(p, p->lineno, "duplicate cluster; first defined on line %d",
                          c->clusters[i].line);
                return;
            }
        }
        c->clusters = xreallocarray(c->clusters, c->nclusters + 1, sizeof(*c->clusters));
        cl = &c->clusters[c->nclusters++];
        memset(cl, 0, sizeof(*cl));
        cl->name = xstrdup(cname);
        cl->line = p->lineno;
        cluster_defaults(cl);
        p->sect = SECT_CLUSTER;
    } else {
        fail_sect(p, p->lineno,
                  "unknown section; expected [proxy], [admin], [auth], [tracing] or "
                  "[cluster.NAME]");
    }
}

/* inih's find_chars_or_comment(): the first of |chars|, or of a ';' that
 * follows whitespace (an inline comment), or the end of |s|. */
static const char *find_chars_or_comment(const char *s, const char *chars)
{
    bool was_space = false;

    while (*s != '\0' && strchr(chars, *s) == NULL && !(was_space && *s == ';')) {
        was_space = isspace((unsigned char)*s);
        s++;
    }
    return s;
}

static int trimmed_len(const char *s)
{
    size_t n = strlen(s);

    while (n > 0 && isspace((unsigned char)s[n - 1]))
        n--;
    return (int)n;
}

/* Decides what inih will do with |line| (the same tests, in the same order as
 * ini_parse_stream() r55) and handles section headers, which inih only
 * reports to the handler through the keys that follow them. */
static void classify_line(struct parse *p, const char *line)
{
    const char *s = line, *end;

    p->cont = false;
    if (p->lineno == 1 && (unsigned char)s[0] == 0xEF && (unsigned char)s[1] == 0xBB &&
        (unsigned char)s[2] == 0xBF)
        s += 3;
    while (isspace((unsigned char)*s))
        s++;
    if (*s == '\0' || *s == ';' || *s == '#')
        return; /* blank line or comment */
    if (p->key_seen && s > line) {
        p->cont = true;
        return;
    }
    if (*s == '[') {
        const char *rest;

        end = find_chars_or_comment(s + 1, "]");
        if (*end != ']') {
            fail_line(p, p->lineno, "expected ']' to close the section header, got '%.*s'",
                      trimmed_len(s), s);
            return;
        }
        for (rest = end + 1; isspace((unsigned char)*rest); rest++)
            ;
        if (*rest != '\0' && *rest != ';' && *rest != '#') {
            fail_line(p, p->lineno, "expected only a comment after ']', got '%.*s'", trimmed_len(s),
                      s);
            return;
        }
        flush_pending(p);
        if (!p->failed)
            end_section(p);
        if (!p->failed)
            begin_section(p, s + 1, (size_t)(end - (s + 1)));
        p->key_seen = false;
        return;
    }
    end = find_chars_or_comment(s, "=:");
    if (*end != '=' && *end != ':') {
        fail_line(p, p->lineno,
                  "expected 'key = value', a [section] header or a comment, got '%.*s'",
                  trimmed_len(s), s);
        return;
    }
    flush_pending(p);
    while (end > s && isspace((unsigned char)end[-1]))
        end--;
    p->key_seen = end > s;
}

/* inih's fgets-style reader: one line of the input per call, so that inih's
 * line numbers and ours agree. Returns NULL at the end or after an error. */
static char *read_line(char *str, int num, void *stream)
{
    struct parse *p = stream;
    const char *s, *nl;
    size_t n;

    if (p->failed || p->pos >= p->len)
        return NULL;
    s = p->text + p->pos;
    nl = memchr(s, '\n', p->len - p->pos);
    n = nl != NULL ? (size_t)(nl - s) : p->len - p->pos;
    p->pos += n + (nl != NULL);
    p->lineno++;
    if (n > 0 && s[n - 1] == '\r')
        n--;
    if (num > 1 && n >= (size_t)num) {
        size_t i = 0;

        while (i < n && isspace((unsigned char)s[i]))
            i++;
        if (i == n || s[i] == ';' || s[i] == '#')
            n = (size_t)num - 1; /* a long comment: what inih sees is still one */
    }
    if (num < 1 || n >= (size_t)num) {
        fail_line(p, p->lineno,
                  "expected a line of at most %d characters, got %zu; split long lists over "
                  "indented continuation lines",
                  num - 1, n);
        return NULL;
    }
    memcpy(str, s, n);
    str[n] = '\0';
    classify_line(p, str);
    return p->failed ? NULL : str;
}

static uint16_t addr_port(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_port;
    return ((const struct sockaddr_in6 *)ss)->sin6_port;
}

static bool addr_is_any(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
}

/* Would binding both fail with EADDRINUSE on Linux (dual-stack [::] default)? */
static bool listen_conflict(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (addr_port(a) != addr_port(b))
        return false;
    if (a->ss_family == b->ss_family) {
        if (addr_is_any(a) || addr_is_any(b))
            return true;
        if (a->ss_family == AF_INET)
            return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
                   ((const struct sockaddr_in *)b)->sin_addr.s_addr;
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    }
    /* an IPv6 wildcard also takes the IPv4 port */
    return (a->ss_family == AF_INET6 && addr_is_any(a)) ||
           (b->ss_family == AF_INET6 && addr_is_any(b));
}

static void finish_file(struct parse *p)
{
    struct conf *c = p->c;

    if (c->nclusters == 0) {
        fail_file(p, "expected at least one [cluster.NAME] section, got none");
        return;
    }
    if (c->proxy.listen == NULL && c->proxy.listen_tls == NULL) {
        free(p->section);
        p->section = xstrdup("proxy");
        fail_key(p, p->proxy_listen_line, "listen",
                 "expected an address when listen_tls is not set, got 'off'");
        return;
    }
    if (c->proxy.listen_tls != NULL &&
        ((c->proxy.listen != NULL &&
          listen_conflict(&c->proxy.listen_addr, &c->proxy.listen_tls_addr)) ||
         (c->admin.listen != NULL &&
          listen_conflict(&c->admin.listen_addr, &c->proxy.listen_tls_addr)))) {
        free(p->section);
        p->section = xstrdup("proxy");
        fail_key(p, p->tls_line, "listen_tls",
                 "expected an address other than [proxy] listen and [admin] listen, got '%s'",
                 c->proxy.listen_tls);
        return;
    }
    if (c->proxy.listen != NULL && c->admin.listen != NULL &&
        listen_conflict(&c->proxy.listen_addr, &c->admin.listen_addr)) {
        free(p->section);
        if (p->admin_listen_line != 0 || p->proxy_listen_line == 0) {
            p->section = xstrdup("admin");
            fail_key(p, p->admin_listen_line, "listen",
                     "expected an address other than [proxy] listen %s, got '%s'", c->proxy.listen,
                     c->admin.listen);
        } else {
            p->section = xstrdup("proxy");
            fail_key(p, p->proxy_listen_line, "listen",
                     "expected an address other than [admin] listen %s, got '%s'", c->admin.listen,
                     c->proxy.listen);
        }
    }
}

static int load(const char *text, size_t len, const char *name, struct conf **out, char *err,
                size_t errlen)
{
    struct parse *p = xcalloc(1, sizeof(*p));
    int rc;

    *out = NULL;
    if (err != NULL && errlen > 0)
        err[0] = '\0';
    p->name = name;
    p->text = text;
    p->len = len;
    p->err = err;
    p->errlen = errlen;
    p->c = conf_new(name);

    rc = ini_parse_stream(read_line, p, on_ini_pair, p);
    if (!p->failed && rc > 0)
        fail_line(p, rc, "syntax error"); /* inih disagreed with classify_line() */
    else if (!p->failed && rc < 0)
        fail_file(p, "cannot parse (inih error %d)", rc);
    if (!p->failed)
        flush_pending(p);
    if (!p->failed)
        end_section(p);
    if (!p->failed)
        finish_file(p);

    rc = p->failed ? -1 : 0;
    if (rc == 0)
        *out = p->c;
    else
        conf_free(p->c);
    free(p->section);
    free(p);
    return rc;
}

int conf_load_string(const char *text, const char *name, struct conf **out, char *err,
                     size_t errlen)
{
    return load(text, strlen(text), name != NULL ? name : "<string>", out, err, errlen);
}

int conf_load_file(const char *path, struct conf **out, char *err, size_t errlen)
{
    FILE *f;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    const char *nul;
    int rc;

    *out = NULL;
    f = fopen(path, "r");
    if (f == NULL) {
        seterr(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    for (;;) {
        size_t n;

        if (cap - len < 4096) {
            cap = cap ? cap * 2 : 8192;
            buf = xreallocarray(buf, cap, 1);
        }
        n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0 || len > MAX_FILE_SIZE)
            break;
    }
    if (ferror(f)) {
        seterr(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    if (len > MAX_FILE_SIZE) {
        seterr(err, errlen, "%s: expected a file of at most %d bytes", path, MAX_FILE_SIZE);
        free(buf);
        return -1;
    }
    nul = memchr(buf, '\0', len);
    if (nul != NULL) {
        int line = 1;

        for (const char *q = buf; q < nul; q++)
            line += *q == '\n';
        seterr(err, errlen, "%s:%d: expected text, got a NUL byte", path, line);
        free(buf);
        return -1;
    }
    rc = load(buf, len, path, out, err, errlen);
    free(buf);
    return rc;
}

/* ---- the schema, for the configuration reference ---- */

static const char *section_key(enum section sect)
{
    switch (sect) {
    case SECT_PROXY:
        return "proxy";
    case SECT_ADMIN:
        return "admin";
    case SECT_CLUSTER:
        return "cluster.NAME";
    case SECT_AUTH:
        return "auth";
    case SECT_TRACING:
        return "tracing";
    case SECT_NONE:
        break;
    }
    return "?";
}

static const char *type_name(enum kw_type t)
{
    switch (t) {
    case KW_U32:
        return "integer";
    case KW_DURATION:
        return "duration";
    case KW_BOOL:
        return "boolean";
    case KW_ENUM:
    case KW_ENUM_BOOL:
        return "enum";
    case KW_STRING:
        return "string";
    case KW_AUTHORITY:
        return "authority";
    case KW_ACCESS_LOG:
        return "-, off or a path";
    case KW_WORKERS:
        return "auto or integer";
    case KW_LISTEN:
        return "IP:PORT or off";
    case KW_TARGETS:
        return "list of HOST:PORT";
    case KW_ROUTES:
        return "list of path prefixes";
    case KW_EXEMPT:
        return "list of methods or services";
    case KW_DNS_SERVERS:
        return "list of IP[:PORT]";
    case KW_ORIGINS:
        return "list of origins";
    case KW_OPTIONAL:
        return "string";
    case KW_SECRET:
        return "secret";
    case KW_FILE:
        return "file";
    case KW_ALGORITHMS:
        return "list of algorithms";
    case KW_AUDIENCE:
        return "list of strings";
    case KW_CLAIMS:
        return "list of claim names";
    case KW_HASH_ON:
        return "header:NAME or peer";
    case KW_CODES:
        return "list of gRPC codes";
    case KW_FLOAT:
        return "number";
    case KW_PERCENT:
        return "percentage";
    case KW_RATE:
        return "rate";
    case KW_DURATION_OFF:
        return "off or duration";
    case KW_RATIO:
        return "number";
    case KW_URL:
        return "URL";
    case KW_FIELDS:
        return "list of fields";
    }
    return "?";
}

/* "a, b, c" from the first |n| items of |v|, or up to its NULL. */
static void join_list(char *const *v, size_t n, char *buf, size_t size)
{
    size_t len = 0;

    buf[0] = '\0';
    for (size_t i = 0; i < n && v[i] != NULL && len < size; i++) {
        int w = snprintf(buf + len, size - len, "%s%s", i ? ", " : "", v[i]);

        if (w < 0)
            break;
        len += (size_t)w;
    }
}

size_t conf_keyword_count(void)
{
    return NKEYWORDS;
}

int conf_keyword_at(size_t i, struct conf_keyword_info *out)
{
    const struct keyword *kw;
    struct conf *c;
    struct conf_cluster cl;
    const char *base;

    if (i >= NKEYWORDS)
        return -1;
    kw = &keywords[i];
    memset(out, 0, sizeof(*out));
    out->section = section_key(kw->sect);
    out->name = kw->name;
    out->type = type_name(kw->type);

    /* The defaults are whatever a file without the key leaves in place. */
    c = conf_new("defaults");
    memset(&cl, 0, sizeof(cl));
    cluster_defaults(&cl);
    base = kw->sect == SECT_PROXY     ? (const char *)&c->proxy
           : kw->sect == SECT_ADMIN   ? (const char *)&c->admin
           : kw->sect == SECT_AUTH    ? (const char *)&c->auth
           : kw->sect == SECT_TRACING ? (const char *)&c->tracing
                                      : (const char *)&cl;
    base += kw->off;

    switch (kw->type) {
    case KW_U32: {
        uint32_t v;

        memcpy(&v, base, sizeof(v));
        snprintf(out->deflt, sizeof(out->deflt), "%" PRIu32, v);
        snprintf(out->range, sizeof(out->range), "%" PRIu32 "..%" PRIu32, kw->min, kw->max);
        break;
    }
    case KW_DURATION: {
        uint32_t v;

        memcpy(&v, base, sizeof(v));
        format_duration(v, out->deflt, sizeof(out->deflt));
        if (kw->min > 0)
            snprintf(out->range, sizeof(out->range), "at least %" PRIu32 "ms", kw->min);
        break;
    }
    case KW_BOOL:
        snprintf(out->deflt, sizeof(out->deflt), "%s", *(const bool *)base ? "on" : "off");
        break;
    case KW_ENUM:
    case KW_ENUM_BOOL: {
        int v;

        if (kw->type == KW_ENUM_BOOL)
            v = *(const bool *)base ? 1 : 0;
        else
            memcpy(&v, base, sizeof(v));
        snprintf(out->deflt, sizeof(out->deflt), "%s", kw->names[v]);
        join_list((char *const *)kw->names, SIZE_MAX, out->range, sizeof(out->range));
        break;
    }
    case KW_WORKERS: {
        uint32_t v;

        memcpy(&v, base, sizeof(v));
        if (v == 0)
            snprintf(out->deflt, sizeof(out->deflt), "auto");
        else
            snprintf(out->deflt, sizeof(out->deflt), "%" PRIu32, v);
        snprintf(out->range, sizeof(out->range), "auto, 1..%" PRIu32, kw->max);
        break;
    }
    case KW_STRING:
    case KW_AUTHORITY:
    case KW_ACCESS_LOG:
    case KW_LISTEN:
    case KW_OPTIONAL:
    case KW_SECRET:
    case KW_FILE: {
        const char *v = *(char *const *)base;

        if (v == NULL)
            snprintf(out->deflt, sizeof(out->deflt), "(none)");
        else if (*v == '\0')
            snprintf(out->deflt, sizeof(out->deflt), "\"\"");
        else
            snprintf(out->deflt, sizeof(out->deflt), "%s", v);
        break;
    }
    case KW_TARGETS:
        snprintf(out->deflt, sizeof(out->deflt), "(required)");
        break;
    case KW_ROUTES:
        snprintf(out->deflt, sizeof(out->deflt), "/"); /* finish_cluster() adds it */
        break;
    case KW_DNS_SERVERS:
        snprintf(out->deflt, sizeof(out->deflt), "(system)");
        break;
    case KW_ORIGINS:
        snprintf(out->deflt, sizeof(out->deflt), "(none)");
        break;
    case KW_ALGORITHMS:
        snprintf(out->deflt, sizeof(out->deflt), "(from the key)");
        join_list((char *const *)jws_algs, SIZE_MAX, out->range, sizeof(out->range));
        break;
    case KW_AUDIENCE:
    case KW_CLAIMS:
        snprintf(out->deflt, sizeof(out->deflt), "(none)");
        break;
    case KW_EXEMPT:
        join_list(c->auth.exempt, c->auth.nexempt, out->deflt, sizeof(out->deflt));
        break;
    case KW_HASH_ON:
    case KW_URL:
        snprintf(out->deflt, sizeof(out->deflt), "(none)");
        break;
    case KW_CODES: {
        uint32_t v;
        size_t n = 0;

        memcpy(&v, base, sizeof(v));
        out->deflt[0] = '\0';
        for (int code = 0; code < GRPC_CODE_COUNT; code++) {
            if (v & 1u << code)
                n += (size_t)snprintf(out->deflt + n, sizeof(out->deflt) - n, "%s%s",
                                      n > 0 ? ", " : "", grpc_code_name(code));
        }
        if (n == 0)
            snprintf(out->deflt, sizeof(out->deflt), "(none)");
        for (char *ch = out->deflt; *ch != '\0'; ch++)
            *ch = (char)tolower((unsigned char)*ch);
        break;
    }
    case KW_FLOAT: {
        double v;

        memcpy(&v, base, sizeof(v));
        snprintf(out->deflt, sizeof(out->deflt), "%g", v);
        snprintf(out->range, sizeof(out->range), "%" PRIu32 "..%" PRIu32, kw->min, kw->max);
        break;
    }
    case KW_PERCENT:
    case KW_RATE: {
        uint32_t v;

        memcpy(&v, base, sizeof(v));
        snprintf(out->deflt, sizeof(out->deflt), "%" PRIu32 "%s", v,
                 kw->type == KW_PERCENT ? "%" : "/s");
        snprintf(out->range, sizeof(out->range), "%" PRIu32 "..%" PRIu32, kw->min, kw->max);
        break;
    }
    case KW_DURATION_OFF: {
        uint32_t v;

        memcpy(&v, base, sizeof(v));
        if (v == 0)
            snprintf(out->deflt, sizeof(out->deflt), "off");
        else
            format_duration(v, out->deflt, sizeof(out->deflt));
        break;
    }
    case KW_RATIO: {
        double v;

        memcpy(&v, base, sizeof(v));
        snprintf(out->deflt, sizeof(out->deflt), "%g", v);
        snprintf(out->range, sizeof(out->range), "0..1");
        break;
    }
    case KW_FIELDS: {
        size_t len = 0;

        for (size_t k = 0; k < c->proxy.naccess_log_fields && len < sizeof(out->deflt); k++) {
            int w = snprintf(out->deflt + len, sizeof(out->deflt) - len, "%s%s", k ? ", " : "",
                             alog_field_names[c->proxy.access_log_fields[k]]);

            if (w < 0)
                break;
            len += (size_t)w;
        }
        join_list((char *const *)alog_field_names, SIZE_MAX, out->range, sizeof(out->range));
        break;
    }
    }
    cluster_deinit(&cl);
    conf_free(c);
    return 0;
}
