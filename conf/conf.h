/* switchyard configuration: the INI schema, loaded by inih into plain data.
 * Invariant: a struct conf is immutable once conf_load_*() returned it; every
 * pointer inside it is owned by it and freed by conf_free().
 * SPDX-License-Identifier: MIT */
#ifndef CONF_CONF_H
#define CONF_CONF_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

enum conf_log_level {
    CONF_LOG_DEBUG = 0,
    CONF_LOG_INFO,
    CONF_LOG_WARN,
    CONF_LOG_ERROR,
};

enum conf_policy {
    CONF_POLICY_ROUND_ROBIN = 0, /* smooth weighted round robin, per worker */
    CONF_POLICY_PICK_FIRST,      /* one endpoint for the whole process, failover in order */
    CONF_POLICY_LEAST_REQUEST,   /* power of N choices on active attempts, per worker */
    CONF_POLICY_RING_HASH,       /* consistent hashing of a request key (hash_on) */
    CONF_POLICY_RANDOM,          /* weighted random */
    CONF_POLICY_COUNT
};

/* hash_on = header:NAME | peer (ring_hash only) */
enum conf_hash_on {
    CONF_HASH_NONE = 0, /* not set */
    CONF_HASH_HEADER,   /* the value of request header |hash_header| */
    CONF_HASH_PEER,     /* the client's IP address (without the port) */
};

#define CONF_WEIGHT_MAX 1000 /* weight=N after a target: 1..CONF_WEIGHT_MAX */

enum conf_dns_family {
    CONF_DNS_AUTO = 0, /* A and AAAA */
    CONF_DNS_V4,
    CONF_DNS_V6,
};

enum conf_health_mode {
    CONF_HEALTH_CHECK = 0, /* unary grpc.health.v1.Health/Check every interval */
    CONF_HEALTH_WATCH,     /* streaming Watch, falling back to Check */
};

enum conf_tls_version {
    CONF_TLS_1_2 = 0, /* tls_min_version = 1.2 */
    CONF_TLS_1_3,     /* tls_min_version = 1.3 */
};

/* access_log_fields: what one access log line holds, in this order. */
enum conf_alog_field {
    CONF_ALOG_TIME = 0,   /* time: when the call ended, UTC, ms */
    CONF_ALOG_PEER,       /* peer: the client's address */
    CONF_ALOG_METHOD,     /* method: :path as received */
    CONF_ALOG_AUTHORITY,  /* authority: :authority */
    CONF_ALOG_USER_AGENT, /* user_agent: user-agent */
    CONF_ALOG_REQUEST_ID, /* request_id: x-request-id */
    CONF_ALOG_TRACE_ID,   /* trace_id: the W3C trace id of the call */
    CONF_ALOG_CLUSTER,    /* cluster: where it was routed */
    CONF_ALOG_ENDPOINT,   /* endpoint: the last attempt's address */
    CONF_ALOG_ATTEMPTS,   /* attempts: backend attempts made */
    CONF_ALOG_STATUS,     /* status: gRPC status name */
    CONF_ALOG_CODE,       /* code: gRPC status number */
    CONF_ALOG_DURATION,   /* duration_ms */
    CONF_ALOG_BYTES_IN,   /* bytes_in: request body bytes from the client */
    CONF_ALOG_BYTES_OUT,  /* bytes_out: response body bytes to the client */
    CONF_ALOG_FIELD_COUNT
};

/** The name of access log field |f| in access_log_fields and JSON lines. */
const char *conf_alog_field_name(enum conf_alog_field f);

/* stream_format: how a transcoded server-streaming response is written */
enum conf_stream_format {
    CONF_STREAM_ARRAY = 0, /* one JSON array, streamed element by element */
    CONF_STREAM_NDJSON,    /* newline-delimited JSON, one message per line */
};

#define CONF_AUTH_MAX_CLAIMS 32 /* forward_claims entries */

enum conf_auth_mode {
    CONF_AUTH_OFF = 0, /* every call goes through */
    CONF_AUTH_JWT,     /* authorization: Bearer <JWT>, signature and claims verified */
    CONF_AUTH_TOKEN,   /* authorization: Bearer <token>, one of tokens_file's */
};

/** One `host:port` entry of `targets`. */
struct conf_target {
    char *spec;      /* the text as written (after ${ENV} expansion), e.g. "[::1]:50051" */
    char *host;      /* host without brackets: "::1", "10.0.0.7", "users.svc" */
    uint16_t port;   /* 1..65535 */
    bool is_literal; /* host is an IPv4/IPv6 literal; |addr| is then valid */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    uint32_t weight; /* `weight=N` after the target (1), 1..CONF_WEIGHT_MAX; every address the
                        target resolves to carries it */
};

/** One `[cluster.NAME]` section. */
struct conf_cluster {
    char *name; /* NAME from the section header */
    int line;   /* line of the section header, for messages */
    struct conf_target *targets;
    size_t ntargets;         /* >= 1 */
    enum conf_policy policy; /* policy = round_robin|pick_first|least_request|ring_hash|random
                                (round_robin) */
    char **routes;           /* :path prefixes, each starting with '/' (default: "/") */
    size_t nroutes;

    /* policy options; each applies to the policies named, an error elsewhere */
    uint32_t least_request_choices; /* least_request_choices (2), 2..64: least_request */
    enum conf_hash_on hash_on;      /* hash_on = header:NAME|peer: ring_hash (required there) */
    char *hash_header;              /* NAME of hash_on = header:NAME, lower case; else NULL */
    uint32_t ring_min_size;         /* ring_min_size (1024), 1..8388608: ring_hash */
    bool pick_first_failback;       /* pick_first_failback = on|off (off): pick_first */
    uint32_t slow_start_ms;         /* slow_start (0 = off): round_robin, least_request */

    /* backend connections, per endpoint and per worker */
    uint32_t max_connections;            /* max_connections (4), 1..1024 */
    uint32_t max_streams_per_connection; /* max_streams_per_connection (100), 1..2^31-1;
                                            the backend's own SETTINGS lower it further */
    uint32_t connect_timeout_ms;         /* connect_timeout (2s) */
    uint32_t max_retries;                /* max_retries (2): extra endpoints tried when a call
                                            never reached its backend; 0..16 */

    /* resilience (traffic-management.md): retries as gRFC A6, hedging, deadlines */
    uint32_t retry_on;                 /* retry_on (none): a bit per gRPC status code */
    uint32_t retry_max_attempts;       /* retry_max_attempts (3), 1..5: all attempts of a call */
    uint32_t retry_initial_backoff_ms; /* retry_initial_backoff (25ms) */
    uint32_t retry_max_backoff_ms;     /* retry_max_backoff (250ms) */
    double retry_backoff_multiplier;   /* retry_backoff_multiplier (2), 1..10 */
    uint32_t retry_buffer;             /* retry_buffer (65536): request bytes kept for replay */
    uint32_t retry_budget;             /* retry_budget (20%): retries per calls over 10 s */
    uint32_t retry_budget_min;         /* retry_budget_min (10/s): retries always allowed */
    uint32_t hedge_delay_ms;           /* hedge_delay (0 = off) */
    uint32_t timeout_ms;               /* timeout (0 = none): for calls without grpc-timeout */
    uint32_t max_timeout_ms;           /* max_timeout (0 = none): caps grpc-timeout */
    uint32_t drain_unhealthy_ms;       /* drain_unhealthy (off = 0): running calls on an endpoint
                                          that failed its health checks end after this long */
    /* outlier detection (gRFC A50) */
    bool outlier_detection;                 /* outlier_detection (off) */
    uint32_t outlier_consecutive_failures;  /* (5); 0 = not by consecutive failures */
    uint32_t outlier_failure_percentage;    /* (0 = off), 0..100 */
    uint32_t outlier_min_calls;             /* (20) per interval, for the percentage */
    uint32_t outlier_interval_ms;           /* (10s) */
    uint32_t outlier_base_ejection_time_ms; /* (30s) x times ejected */
    uint32_t outlier_max_ejection_percent;  /* (50), 0..100 */
    uint32_t outlier_failure_codes;         /* (unavailable, internal, unknown, data_loss) */

    /* DNS (used once targets may be names) */
    uint32_t dns_refresh_ms;         /* dns_refresh (30s) */
    uint32_t dns_min_ttl_ms;         /* dns_min_ttl (5s): floor when honouring a shorter TTL */
    enum conf_dns_family dns_family; /* dns_family = auto|v4|v6 (auto) */

    /* active health checking */
    bool health_check;                 /* health_check = on|off (on) */
    char *health_service;              /* health_service ("") */
    char *health_authority;            /* health_authority (NULL: the target's host) */
    enum conf_health_mode health_mode; /* health_mode = check|watch (check) */
    uint32_t health_interval_ms;       /* health_interval (5s) */
    uint32_t health_timeout_ms;        /* health_timeout (1s), must be <= health_interval */
    uint32_t healthy_threshold;        /* healthy_threshold (1), 1..1000 */
    uint32_t unhealthy_threshold;      /* unhealthy_threshold (2), 1..1000 */
    bool health_initial_healthy;       /* health_initial = unhealthy|healthy (unhealthy) */
    bool health_unimplemented_healthy; /* health_unimplemented = unhealthy|healthy (unhealthy) */
    uint32_t panic_threshold;          /* panic_threshold (0), percent 0..100 */
    bool required;                     /* required = yes|no (yes): switchyard's own health
                                          (service "") and /healthz need an endpoint of this
                                          cluster in rotation */

    /* TLS to the backends (calls and health checks); files readable at load */
    bool tls;              /* tls = on|off (off) */
    char *tls_ca;          /* tls_ca (NULL: the system's trust store) */
    char *tls_server_name; /* tls_server_name (NULL: the target's host): SNI and the name
                              verified; an IP literal host is verified as an IP, no SNI */
    char *tls_cert;        /* tls_cert (NULL): client certificate (chain), PEM; with tls_key */
    char *tls_key;         /* tls_key (NULL) */
    bool tls_verify;       /* tls_verify = on|off (on): chain and name */

    /* REST/JSON transcoding from google.api.http rules (proxy/filters/transcode.h) */
    bool transcode;                        /* transcode = on|off (off) */
    char *descriptors;                     /* descriptors = PATH|reflection (NULL): a protoc
                                              --include_imports -o set, or gRPC server
                                              reflection of the endpoints; needed by transcode */
    enum conf_stream_format stream_format; /* stream_format = array|ndjson (array) */
};

struct conf_proxy {
    char *listen;                        /* listen ("0.0.0.0:50051"); "off": NULL */
    struct sockaddr_storage listen_addr; /* parsed |listen|; IP literal only */
    socklen_t listen_addrlen;
    char *listen_tls; /* listen_tls (NULL: none): TLS listener, IP:PORT; needs tls_cert */
    struct sockaddr_storage listen_tls_addr;
    socklen_t listen_tls_addrlen;
    char *tls_cert;                        /* tls_cert: certificate chain, PEM */
    char *tls_key;                         /* tls_key: its private key, PEM */
    char *tls_client_ca;                   /* tls_client_ca (NULL): require client certificates
                                              signed by these CAs */
    enum conf_tls_version tls_min_version; /* tls_min_version = 1.2|1.3 (1.2) */
    uint32_t workers;                      /* workers = auto|N (auto = 0: number of CPUs) */
    enum conf_log_level log_level;         /* log_level = debug|info|warn|error (info) */
    char *access_log;                      /* access_log = -|PATH|off ("off") */
    bool access_log_json;                  /* access_log_format = text|json (text) */
    uint8_t access_log_fields[CONF_ALOG_FIELD_COUNT]; /* access_log_fields: enum
                                                         conf_alog_field, in order */
    size_t naccess_log_fields;
    bool log_json;                   /* log_format = text|json (text): the main log on stderr */
    uint32_t drain_timeout_ms;       /* drain_timeout (30s) */
    uint32_t max_concurrent_streams; /* max_concurrent_streams (100), 1..2^31-1 */
    uint32_t idle_timeout_ms;        /* idle_timeout (5m); 0 = never */
    uint32_t keepalive_time_ms;      /* keepalive_time (5m): PING a connection (client or
                                        backend) idle this long; 0 = never */
    uint32_t keepalive_timeout_ms;   /* keepalive_timeout (20s): no PING ACK by then:
                                        close */
    uint32_t max_connections;        /* max_connections (10000): client connections, all
                                        workers together; more are closed at accept */
    uint32_t max_header_list_size;   /* max_header_list_size (65536): request header bytes
                                        (name + value + 32 per field); also the bound on
                                        response trailers */
    uint32_t stream_buffer;          /* stream_buffer (262144), 16 KiB..64 MiB: the
                                        HTTP/2 stream window advertised on both sides, so
                                        the most one stream buffers per direction */
    uint32_t stream_idle_timeout_ms; /* stream_idle_timeout (5m); 0 = off: a stream that
                                        moves no byte either way that long is reset */
    uint32_t max_connection_age_ms;  /* max_connection_age (0 = off): GOAWAY to a client
                                        connection at this age, +-10 %% */
    uint32_t max_connection_age_grace_ms; /* max_connection_age_grace (30s): then closed */
    uint32_t max_message_size;            /* max_message_size (16777216): one gRPC message, each
                                             direction; 0 = no limit */
    uint32_t header_timeout_ms;           /* header_timeout (10s): a connection must complete
                                             request headers this long after it opened or began
                                             them */
    bool http1;                           /* http1 = on|off (on): HTTP/1.1 on the same listeners
                                             (plaintext: sniffed; TLS: ALPN http/1.1) */
    bool grpc_web;                        /* grpc_web = on|off (on): gRPC-Web requests are
                                             bridged to gRPC */
    char **cors_origins;                  /* cors_origins = *|ORIGIN, ... (none: no CORS
                                             headers); "*" is alone when present */
    size_t ncors_origins;
    uint32_t cors_max_age_ms; /* cors_max_age (10m): preflight cache lifetime */
    char **dns_servers;       /* dns_servers = IP[:PORT], ... (none: system);
                                 stored as IP:PORT or [IPv6]:PORT (53 if omitted) */
    size_t ndns_servers;
};

struct conf_admin {
    char *listen;               /* listen ("127.0.0.1:9901"); "off" disables: NULL */
    uint32_t max_method_labels; /* max_method_labels (100), 1..10000: distinct `method`
                                   label values in /metrics; the rest count as "other" */
    struct sockaddr_storage listen_addr;
    socklen_t listen_addrlen;
    char *token_file; /* token_file (NULL): a file holding one bearer token; when set, every
                         state-changing admin request needs Authorization: Bearer <token> */
    char *token;      /* its token, read at load (a reload reads it again); wiped on free */
    size_t token_len;
};

/** [tracing]: W3C trace context (always on) and OpenTelemetry spans exported
 *  over OTLP/HTTP with the JSON encoding. */
struct conf_tracing {
    double sample_ratio;         /* sample_ratio (0.01), 0..1: traces started here that are
                                    recorded; a client's sampled flag is honoured */
    char *otlp_endpoint;         /* otlp_endpoint (NULL: export off), http://HOST[:PORT][/PATH] */
    char *otlp_host;             /* its host (an IP address or a name) */
    uint16_t otlp_port;          /* its port (4318 when not written) */
    char *otlp_path;             /* its path (/v1/traces when not written) */
    char *service_name;          /* service_name ("switchyard"): resource service.name */
    uint32_t queue_size;         /* queue_size (2048), 16..1048576: finished spans each worker
                                    keeps for the exporter; more are dropped and counted */
    uint32_t batch_size;         /* batch_size (512), 1..65536: spans per export request */
    uint32_t export_interval_ms; /* export_interval (1s), >= 10ms */
    uint32_t export_timeout_ms;  /* export_timeout (5s), >= 10ms: one export request */
};

/** [auth]: call authentication, checked before routing. The key material is
 *  read from its files when the conf loads (a reload reads them again), so no
 *  file is opened on the request path. Secrets never appear in messages;
 *  conf_free() wipes them. */
struct conf_auth {
    enum conf_auth_mode mode; /* mode = off|jwt|token (off); off: the rest is not checked */
    /* mode = jwt: exactly one of secret, secret_file, public_key_file */
    char *secret;          /* HS* key: secret, or secret_file's bytes without trailing CR/LF */
    size_t secret_len;     /* >= 32 (RFC 7518 §3.2) */
    char *secret_file;     /* secret_file (NULL) */
    char *public_key_file; /* public_key_file (NULL): RS* or ES* key, PEM */
    char *public_key;      /* its text, NUL-terminated */
    size_t public_key_len;
    char **algorithms;  /* algorithms (none: every one the key's type allows) */
    size_t nalgorithms; /* canonical names: HS256 .. ES512; never "none" */
    char *issuer;       /* issuer (NULL: not checked): the token's iss must equal it */
    char **audiences;   /* audience (none: not checked): aud must name one of them */
    size_t naudiences;
    uint32_t leeway_ms;    /* leeway (30s): clock skew allowed on exp and nbf */
    char **forward_claims; /* forward_claims (none): sent on as x-jwt-<claim> */
    size_t nforward_claims;
    /* mode = token */
    char *tokens_file; /* tokens_file: one token per line, '#' comments */
    char **tokens;     /* its tokens (>= 1) */
    size_t ntokens;
    /* both modes */
    bool strip_authorization; /* strip_authorization = on|off (off) */
    /* exempt (/grpc.health.v1.Health/): calls that skip the check. Each entry is
     * a method, /pkg.Service/Method (matches that :path exactly), or a whole
     * service, /pkg.Service/ (every method of it); both canonical gRPC paths
     * (grpc_path_is_canonical(), core/grpc.h), so no '.', '..' or empty part,
     * no '%', '?', '#', space or non-ASCII byte. An empty value exempts nothing. */
    char **exempt;
    size_t nexempt;
    /* The verifier its owner builds from this section right after loading and
     * before sharing the conf (proxy_auth_attach()); conf_free() releases it
     * with |verifier_free|. NULL when mode = off or nobody built one. */
    void *verifier;
    void (*verifier_free)(void *verifier);
};

struct conf {
    atomic_uint refs; /* conf_ref()/conf_free(); a reload leaves the old one to its holders */
    char *path;       /* file name used in messages */
    struct conf_proxy proxy;
    struct conf_admin admin;
    struct conf_auth auth;
    struct conf_tracing tracing;
    struct conf_cluster *clusters;
    size_t nclusters; /* >= 1 */
    /* The TLS contexts its owner builds from the TLS keys right after loading
     * and before sharing the conf (tls_attach()); conf_free() releases
     * them with |tls_free|. NULL when no TLS is configured. */
    void *tls;
    void (*tls_free)(void *tls);
    /* Where each key was set, for messages about values checked after
     * loading (conf_key_line()). */
    struct conf_key_pos *key_pos;
    size_t nkey_pos;
};

/** A key's place in the file: see conf_key_line(). */
struct conf_key_pos {
    char *section;    /* as written between [ ], e.g. "cluster.users" */
    const char *name; /* the key (static) */
    int line;
};

/** Loads and validates the INI file at |path|. On success stores a new
 *  configuration in |*out| (the caller frees it with conf_free()) and returns 0.
 *  On failure returns -1 and writes into |err| one line naming the file, the
 *  line, the section and key, and what was expected, e.g.
 *  "sw.ini:12: [cluster.users] health_interval: expected a duration such as
 *  250ms, 5s or 1m, got 'fast'". Never logs. */
int conf_load_file(const char *path, struct conf **out, char *err, size_t errlen);

/** Like conf_load_file() but parses |text|; |name| stands for the file name in
 *  messages. */
int conf_load_string(const char *text, const char *name, struct conf **out, char *err,
                     size_t errlen);

/** Drops one reference to |c|; the last one frees it and everything it owns.
 *  conf_free(NULL) is a no-op. Thread-safe. */
void conf_free(struct conf *c);

/** Takes one more reference to |c|; returns |c|. Thread-safe. */
struct conf *conf_ref(struct conf *c);

/** Parses a duration: a non-negative decimal number followed by ms, s, m or
 *  h ("250ms", "5s", "1.5s", "0.25s", "2.5m"), or a bare "0". Stores
 *  milliseconds in |*ms|. Returns 0, or -1 on bad syntax (including a sign, a
 *  blank or a missing unit), on a value that is not a whole number of
 *  milliseconds ("0.5ms") and on overflow of uint32_t milliseconds; |*ms| is
 *  then untouched. */
int conf_parse_duration(const char *s, uint32_t *ms);

/** Expands ${NAME} and ${NAME:-default} from the environment in |in|. Returns a
 *  new string (caller frees), or NULL with a message in |err| when a variable
 *  is unset without a default or the syntax is bad. */
char *conf_expand_env(const char *in, char *err, size_t errlen);

/** Splits "host:port", "[v6]:port" or "v4:port" into |t| (which it fills and
 *  the caller releases with conf_target_deinit()). Returns 0 or -1 with a
 *  message in |err|. */
int conf_parse_target(const char *spec, struct conf_target *t, char *err, size_t errlen);
void conf_target_deinit(struct conf_target *t);

/** One key of the schema, as conf_keyword_at() describes it: what the
 *  configuration reference (docs/configuration.md) documents, so that a test
 *  can keep the two in step. */
struct conf_keyword_info {
    const char *section; /* "proxy", "admin", "cluster.NAME", "auth" or "tracing" */
    const char *name;    /* e.g. "health_interval" */
    const char *type;    /* e.g. "duration", "integer", "boolean", "enum", "file" */
    char range[160];     /* the values accepted beyond the type, e.g. "1..1000", "at least
                            1ms", "round_robin, pick_first"; "" when the type says it all */
    char deflt[96];      /* the default as it would be written in the file ("5s", "on",
                            "0.0.0.0:50051"), "\"\"" for an empty string, or a word in
                            parentheses: "(required)", "(none)", "(system)", ... */
};

/** Number of keys in the schema, every section together. */
size_t conf_keyword_count(void);

/** Describes key |i| (0 <= |i| < conf_keyword_count()) into |out|, its
 *  default taken from a configuration built with every default. Returns 0, or
 *  -1 when |i| is out of range. */
int conf_keyword_at(size_t i, struct conf_keyword_info *out);

/** The line of |c|'s file on which key |name| of section |section| (as
 *  written, e.g. "proxy" or "cluster.users") was set, or 0 when the file
 *  leaves it at its default. For messages about values checked after
 *  loading (TLS files, for one). */
int conf_key_line(const struct conf *c, const char *section, const char *name);

/** Names for logs and /status. */
const char *conf_policy_name(enum conf_policy p);

#endif
