/* Integration tests of REST/JSON transcoding (issue 16): curl against a real
 * switchyard in front of a real grpc-js backend (tests/rest/backend.js) whose
 * proto (tests/rest/user.proto) carries google.api.http rules, with the
 * descriptors from a protoc descriptor set file and from gRPC server
 * reflection. Every response is compared with the JSON that an independent
 * protobuf implementation (python3-protobuf's json_format, tests/rest/
 * pbjson.py) makes of the message the backend sent, and every request with
 * what the backend decoded (it logs each message it receives and sends).
 * Errors: unknown path 404, wrong method 405, bad JSON 400, NOT_FOUND 404,
 * a backend down 503. Reload picks up a changed descriptor set, and a backend
 * that gained a method through reflection.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/support/httpc.h"
#include "tests/support/support.h"

/* The HTTP version curl speaks to switchyard on the same port: HTTP/2
 * (prior knowledge) for the descriptor-file suite, HTTP/1.1 for the
 * reflection suite, so every case runs over both. Set by setup(). */
static const char *curl_http = "--http2-prior-knowledge";

#define PROXY_T 15000
#define PYTHON  "/usr/bin/python3" /* Debian's, which has python3-protobuf */

enum mode {
    FROM_FILE,
    FROM_REFLECTION
};

static struct sup_proxy px;
static struct sup_proc *backend;
static int be_port;
static char descset[512]; /* what the backend serves (and the file mode reads) */

static const char *rest_dir(void)
{
    const char *d = getenv("SY_REST_DIR");

    return d != NULL ? d : "build/rest";
}

static const char *top_dir(void)
{
    const char *d = getenv("SY_TOP");

    return d != NULL ? d : ".";
}

static void stop_all(void)
{
    sup_stop_all();
}

/* Starts the grpc-js backend on |be_port| (picked on first use) serving
 * descriptor set |set| ("user.pb" or "user_extra.pb"), with |extra| args. */
static void start_backend(const char *set, const char *extra1, const char *extra2)
{
    char script[512], modules[512], port[16];
    const char *argv[12];
    int n = 0;

    if (be_port == 0)
        be_port = sup_free_port();
    snprintf(script, sizeof(script), "%s/tests/rest/backend.js", top_dir());
    snprintf(modules, sizeof(modules), "%s/node_modules", rest_dir());
    snprintf(descset, sizeof(descset), "%s/%s", rest_dir(), set);
    snprintf(port, sizeof(port), "%d", be_port);
    setenv("NODE_PATH", modules, 1);
    argv[n++] = "/usr/bin/env";
    argv[n++] = "node";
    argv[n++] = script;
    argv[n++] = "--port";
    argv[n++] = port;
    argv[n++] = "--descset";
    argv[n++] = descset;
    if (extra1 != NULL)
        argv[n++] = extra1;
    if (extra2 != NULL)
        argv[n++] = extra2;
    argv[n] = NULL;
    backend = sup_spawn("backend", argv);
    cr_assert_not_null(backend);
    if (sup_wait_port(backend, be_port, 15000) != 0) {
        sup_dump_log(backend, 40);
        cr_assert_fail("the grpc-js backend did not start");
    }
}

/* More [proxy] lines and the [admin] port (0: off), for a test that sets
 * them before setup(). */
static char proxy_extra[1024];
static int admin_port;

static void conf_text(char *buf, size_t len, enum mode m, const char *extra)
{
    char admin[64] = "off";

    if (admin_port > 0)
        snprintf(admin, sizeof(admin), "127.0.0.1:%d", admin_port);
    snprintf(buf, len,
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\ndrain_timeout = 5s\nlog_level = debug\n"
             "%s\n[admin]\nlisten = %s\n"
             "[cluster.users]\ntargets = 127.0.0.1:%d\nhealth_check = off\nmax_retries = 0\n"
             "transcode = on\ndescriptors = %s\n%s",
             px.port, proxy_extra, admin, be_port, m == FROM_FILE ? descset : "reflection",
             extra ? extra : "");
}

static bool rules_loaded(void *arg)
{
    (void)arg;
    return sup_file_contains(px.proc->err_path, "REST binding(s) from server reflection");
}

/* The backend, then switchyard with descriptors from |m|, ready for REST. */
static void setup(enum mode m, const char *conf_extra)
{
    char conf[2048];

    curl_http = m == FROM_FILE ? "--http2-prior-knowledge" : "--http1.1";
    start_backend("user.pb", NULL, NULL);
    px.port = sup_free_port();
    conf_text(conf, sizeof(conf), m, conf_extra);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", px.port, conf, PROXY_T), 0);
    if (m == FROM_REFLECTION && !sup_poll(rules_loaded, NULL, 15000)) {
        sup_dump_log(px.proc, 40);
        cr_assert_fail("reflection gave no rules");
    }
}

/* ---- HTTP through curl ---- */

struct rest_resp {
    int status;
    char *body;
    char *head;
};

static void rest_resp_free(struct rest_resp *r)
{
    free(r->body);
    free(r->head);
    memset(r, 0, sizeof(*r));
}

static void rest_auth(const char *method, const char *path, const char *authz, struct rest_resp *r);

/* |method| |path| (with |body| when not NULL) to switchyard with curl. */
static void rest_req(const char *method, const char *path, const char *body, const char *authz,
                     struct rest_resp *r)
{
    static int seq;
    char url[1024], bodyf[600], headf[600], outf[600], data[620], name[32], auth[256];
    const char *argv[24];
    struct sup_proc *p;
    char *code;
    int n = 0, st;

    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", px.port, path);
    snprintf(headf, sizeof(headf), "%s/curl%d.head", sup_tmpdir(), seq);
    snprintf(outf, sizeof(outf), "%s/curl%d.body", sup_tmpdir(), seq);
    snprintf(name, sizeof(name), "curl%d", seq);
    seq++;
    argv[n++] = "/usr/bin/curl";
    argv[n++] = "-sS";
    argv[n++] = curl_http;
    argv[n++] = "--max-time";
    argv[n++] = "10";
    argv[n++] = "-X";
    argv[n++] = method;
    argv[n++] = "-D";
    argv[n++] = headf;
    argv[n++] = "-o";
    argv[n++] = outf;
    argv[n++] = "-w";
    argv[n++] = "%{http_code}";
    if (authz != NULL) {
        snprintf(auth, sizeof(auth), "authorization: %s", authz);
        argv[n++] = "-H";
        argv[n++] = auth;
    }
    if (body != NULL) {
        cr_assert_eq(sup_write_file("req.json", body, bodyf, sizeof(bodyf)), 0);
        snprintf(data, sizeof(data), "@%s", bodyf);
        argv[n++] = "-H";
        argv[n++] = "content-type: application/json";
        argv[n++] = "--data-binary";
        argv[n++] = data;
    }
    argv[n++] = url;
    argv[n] = NULL;
    st = sup_run(name, argv, 15000, &p);
    cr_assert_eq(st, 0, "curl %s %s failed (%d)", method, path, st);
    code = sup_read_file(p->out_path);
    cr_assert_not_null(code);
    r->status = atoi(code);
    free(code);
    r->body = sup_read_file(outf);
    r->head = sup_read_file(headf);
    if (r->body == NULL)
        r->body = strdup("");
    cr_assert_not_null(r->head);
}

static void rest(const char *method, const char *path, const char *body, struct rest_resp *r)
{
    rest_req(method, path, body, NULL, r);
}

static void rest_auth(const char *method, const char *path, const char *authz, struct rest_resp *r)
{
    rest_req(method, path, NULL, authz, r);
}

/* ---- what the backend saw ---- */

/* The |k|-th from last (0: last) base64 value of |key| ("req" or "resp")
 * the backend logged for |method|, as a new string, or NULL. */
static char *backend_msg(const char *method, const char *key, int k)
{
    char *log = sup_read_file(backend->out_path), *line, *save = NULL;
    char *found[256];
    int n = 0;
    char *out = NULL;

    cr_assert_not_null(log);
    for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *m = json_string_value(json_object_get(j, "method"));
        const char *v = json_string_value(json_object_get(j, key));

        if (m != NULL && v != NULL && strcmp(m, method) == 0 && n < 256)
            found[n++] = strdup(v);
        json_decref(j);
    }
    if (k < n)
        out = strdup(found[n - 1 - k]);
    for (int i = 0; i < n; i++)
        free(found[i]);
    free(log);
    return out;
}

/* All the base64 values of |key| the backend logged for |method| since line
 * |from| of its log, in order; returns how many (at most |max|). */
static int backend_msgs_since(const char *method, const char *key, int from, char **out, int max)
{
    char *log = sup_read_file(backend->out_path), *line, *save = NULL;
    int n = 0, ln = 0;

    cr_assert_not_null(log);
    for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        json_t *j;
        const char *m, *v;

        if (ln++ < from)
            continue;
        j = json_loads(line, 0, NULL);
        m = json_string_value(json_object_get(j, "method"));
        v = json_string_value(json_object_get(j, key));
        if (m != NULL && v != NULL && strcmp(m, method) == 0 && n < max)
            out[n++] = strdup(v);
        json_decref(j);
    }
    free(log);
    return n;
}

static int backend_lines(void)
{
    char *log = sup_read_file(backend->out_path);
    int n = 0;

    for (char *p = log; p != NULL && *p != '\0'; p++)
        n += *p == '\n';
    free(log);
    return n;
}

/* JSON of the binary message |b64| of |type| by python3-protobuf (of its
 * field |field| only, when not NULL), parsed. */
static json_t *reference_json(const char *type, const char *field, const char *b64)
{
    char script[512], full[128];
    const char *argv[10];
    struct sup_proc *p;
    char *out;
    json_t *j;
    int n = 0, st;

    snprintf(script, sizeof(script), "%s/tests/rest/pbjson.py", top_dir());
    snprintf(full, sizeof(full), "sy.user.v1.%s", type);
    argv[n++] = PYTHON;
    argv[n++] = script;
    argv[n++] = descset;
    argv[n++] = full;
    if (field != NULL) {
        argv[n++] = "--field";
        argv[n++] = field;
    }
    argv[n++] = b64;
    argv[n] = NULL;
    st = sup_run("pbjson", argv, 15000, &p);
    if (st != 0)
        sup_dump_log(p, 20);
    cr_assert_eq(st, 0, "pbjson.py failed");
    out = sup_read_file(p->out_path);
    j = json_loads(out, 0, NULL);
    cr_assert_not_null(j, "pbjson.py printed no JSON: %s", out);
    free(out);
    return j;
}

static json_t *parse(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);

    cr_assert_not_null(j, "not JSON (%s): %s", e.text, text);
    return j;
}

static void assert_same_json(json_t *got, json_t *want, const char *what)
{
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

    cr_assert(json_equal(got, want), "%s:\n  got  %s\n  want %s", what, g, w);
    free(g);
    free(w);
}

/* The request |method| got at the backend decodes (by the reference) to
 * |want_json|, a message of |type|. */
static void assert_request(const char *method, const char *type, const char *want_json)
{
    char *b64 = backend_msg(method, "req", 0);
    json_t *got, *want = parse(want_json);

    cr_assert_not_null(b64, "the backend saw no %s request", method);
    got = reference_json(type, NULL, b64);
    assert_same_json(got, want, "request message at the backend");
    json_decref(got);
    json_decref(want);
    free(b64);
}

/* |r|'s body is the reference JSON of the last |method| response (|type|). */
static void assert_response(const struct rest_resp *r, const char *method, const char *type,
                            const char *field)
{
    char *b64 = backend_msg(method, "resp", 0);
    json_t *got = parse(r->body), *want;

    cr_assert_not_null(b64, "the backend sent no %s response", method);
    want = reference_json(type, field, b64);
    assert_same_json(got, want, "response body");
    json_decref(got);
    json_decref(want);
    free(b64);
}

static void assert_status(const struct rest_resp *r, int status)
{
    cr_assert_eq(r->status, status, "HTTP %d (want %d): %s", r->status, status, r->body);
}

static void assert_header(const struct rest_resp *r, const char *line)
{
    cr_assert(strcasestr(r->head, line) != NULL, "no '%s' in:\n%s", line, r->head);
}

/* The body is {"code": |code|, "message": ..., "details": [...]}; returns
 * the message (owned by |j|). */
static const char *assert_error(const struct rest_resp *r, json_t **j, int code)
{
    *j = parse(r->body);
    cr_assert_eq(json_integer_value(json_object_get(*j, "code")), code, "error body: %s", r->body);
    cr_assert(json_is_array(json_object_get(*j, "details")), "no details: %s", r->body);
    cr_assert(json_is_string(json_object_get(*j, "message")), "no message: %s", r->body);
    return json_string_value(json_object_get(*j, "message"));
}

/* ---- cases, each run with descriptors from the file and from reflection ---- */

TestSuite(rest_file, .fini = stop_all, .timeout = 90);
TestSuite(rest_reflection, .fini = stop_all, .timeout = 90);

#define REST_CASE(name)                                                                            \
    static void case_##name(void);                                                                 \
    Test(rest_file, name)                                                                          \
    {                                                                                              \
        setup(FROM_FILE, NULL);                                                                    \
        case_##name();                                                                             \
    }                                                                                              \
    Test(rest_reflection, name)                                                                    \
    {                                                                                              \
        setup(FROM_REFLECTION, NULL);                                                              \
        case_##name();                                                                             \
    }                                                                                              \
    static void case_##name(void)

REST_CASE(get_with_path_variable)
{
    struct rest_resp r;

    rest("GET", "/v1/users/7", NULL, &r);
    assert_status(&r, 200);
    assert_header(&r, "content-type: application/json");
    assert_request("GetUser", "GetUserRequest", "{\"id\":\"7\"}");
    /* int64, uint64, enum, repeated, nested, map, bytes, Timestamp, double, bool */
    assert_response(&r, "GetUser", "User", NULL);
    rest_resp_free(&r);
    /* additional_bindings */
    rest("GET", "/v1/people/9", NULL, &r);
    assert_status(&r, 200);
    assert_request("GetUser", "GetUserRequest", "{\"id\":\"9\"}");
    assert_response(&r, "GetUser", "User", NULL);
    rest_resp_free(&r);
}

REST_CASE(create_with_body_star)
{
    static const char body[] =
        "{\"displayName\":\"Ann\",\"id\":\"9007199254740993\",\"role\":\"ROLE_MEMBER\","
        "\"tags\":[\"x\",\"y\"],\"address\":{\"city\":\"Bern\",\"zipCode\":\"3000\"},"
        "\"labels\":{\"k\":\"v\",\"team\":\"ops\"},\"avatar\":\"AQID/w==\","
        "\"created\":\"2024-02-29T12:00:00.250Z\",\"pastAddresses\":[{\"city\":\"Köln\"}],"
        "\"visits\":\"42\",\"score\":1.5,\"active\":true}";
    struct rest_resp r;

    rest("POST", "/v1/users", body, &r);
    assert_status(&r, 200);
    assert_request("CreateUser", "User", body);
    assert_response(&r, "CreateUser", "User", NULL);
    rest_resp_free(&r);
    /* the original field names are accepted too (protobuf's parser) */
    rest("POST", "/v1/users", "{\"display_name\":\"Bo\",\"zzz_unknown\":1}", &r);
    assert_status(&r, 400);
    rest_resp_free(&r);
}

REST_CASE(update_with_body_field_and_nested_variable)
{
    struct rest_resp r;

    rest("PUT", "/v1/orgs/acme/users/5?validate_only=false",
         "{\"displayName\":\"Bob\",\"tags\":[\"t\"],\"name\":\"ignored/by/path\"}", &r);
    assert_status(&r, 200);
    assert_request("UpdateUser", "UpdateUserRequest",
                   "{\"user\":{\"name\":\"orgs/acme/users/5\",\"displayName\":\"Bob\","
                   "\"tags\":[\"t\"]}}");
    assert_response(&r, "UpdateUser", "User", NULL);
    rest_resp_free(&r);
    /* PATCH through additional_bindings; a variable segment must match */
    rest("PATCH", "/v1/orgs/o%20x/users/6", "{\"role\":\"ROLE_ADMIN\"}", &r);
    assert_status(&r, 200);
    assert_request("UpdateUser", "UpdateUserRequest",
                   "{\"user\":{\"name\":\"orgs/o x/users/6\",\"role\":\"ROLE_ADMIN\"}}");
    assert_response(&r, "UpdateUser", "User", NULL);
    rest_resp_free(&r);
    /* No body: an answer before the body is sent ends the stream with
     * RST_STREAM(NO_ERROR) (RFC 9113 §8.1), which curl 7.88 reports as
     * error 92 whenever its body was not out yet. */
    rest("PUT", "/v1/orgs/acme/teams/5", NULL, &r);
    assert_status(&r, 404);
    rest_resp_free(&r);
}

REST_CASE(delete_gives_empty_object)
{
    struct rest_resp r;

    rest("DELETE", "/v1/users/5", NULL, &r);
    assert_status(&r, 200);
    cr_assert_str_eq(r.body, "{}");
    assert_request("DeleteUser", "DeleteUserRequest", "{\"id\":\"5\"}");
    rest_resp_free(&r);
}

REST_CASE(list_with_query_parameters)
{
    struct rest_resp r;

    rest("GET",
         "/v1/users?page_size=3&filter.role=ROLE_ADMIN&filter.city=Z%C3%BCrich&tags=a&tags=b+c"
         "&ids=1&ids=2&pageToken=x%26y",
         NULL, &r);
    assert_status(&r, 200);
    assert_request("ListUsers", "ListUsersRequest",
                   "{\"pageSize\":3,\"pageToken\":\"x&y\",\"filter\":{\"role\":\"ROLE_ADMIN\","
                   "\"city\":\"Zürich\"},\"tags\":[\"a\",\"b c\"],\"ids\":[\"1\",\"2\"]}");
    assert_response(&r, "ListUsers", "ListUsersResponse", NULL);
    rest_resp_free(&r);
    /* custom verb (SEARCH) with body: "filter" */
    rest("SEARCH", "/v1/users?page_size=1", "{\"role\":\"ROLE_MEMBER\",\"city\":\"Bern\"}", &r);
    assert_status(&r, 200);
    assert_request("ListUsers", "ListUsersRequest",
                   "{\"pageSize\":1,\"filter\":{\"role\":\"ROLE_MEMBER\",\"city\":\"Bern\"}}");
    assert_response(&r, "ListUsers", "ListUsersResponse", NULL);
    rest_resp_free(&r);
}

REST_CASE(response_body_and_double_star)
{
    struct rest_resp r;

    rest("GET", "/v1/users/3/tags", NULL, &r);
    assert_status(&r, 200);
    assert_request("GetUserTags", "GetUserRequest", "{\"id\":\"3\"}");
    assert_response(&r, "GetUserTags", "User", "tags");
    rest_resp_free(&r);
    /* a variable of "**" spans several segments; %2F stays encoded in it */
    rest("GET", "/v1/blobs/a/b%2Fc/d%20e", NULL, &r);
    assert_status(&r, 200);
    assert_request("GetBlob", "GetBlobRequest", "{\"path\":\"blobs/a/b%2Fc/d e\"}");
    assert_response(&r, "GetBlob", "Blob", NULL);
    rest_resp_free(&r);
}

/* The body of a streamed array equals the reference JSON of each message the
 * backend sent, in order. */
static void assert_stream(const struct rest_resp *r, int from, int count, bool ndjson)
{
    char *msgs[64];
    int n = backend_msgs_since("WatchUsers", "resp", from, msgs, 64);
    json_t *want = json_array(), *got;

    cr_assert_eq(n, count, "the backend sent %d messages", n);
    for (int i = 0; i < n; i++) {
        json_array_append_new(want, reference_json("User", NULL, msgs[i]));
        free(msgs[i]);
    }
    if (ndjson) {
        char *body = strdup(r->body), *save = NULL;

        got = json_array();
        for (char *l = strtok_r(body, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save))
            json_array_append_new(got, parse(l));
        free(body);
        cr_assert(r->body[0] == '\0' || r->body[strlen(r->body) - 1] == '\n');
    } else {
        got = parse(r->body);
    }
    assert_same_json(got, want, "streamed messages");
    json_decref(got);
    json_decref(want);
}

REST_CASE(server_streaming_as_json_array)
{
    struct rest_resp r;
    int from = backend_lines();

    rest("GET", "/v1/users:watch?count=3&firstId=20", NULL, &r);
    assert_status(&r, 200);
    assert_header(&r, "content-type: application/json");
    assert_request("WatchUsers", "WatchUsersRequest", "{\"count\":3,\"firstId\":\"20\"}");
    assert_stream(&r, from, 3, false);
    rest_resp_free(&r);
    rest("GET", "/v1/users:watch?count=0", NULL, &r);
    assert_status(&r, 200);
    cr_assert_str_eq(r.body, "[]");
    rest_resp_free(&r);
}

REST_CASE(errors)
{
    struct rest_resp r;
    json_t *j;
    const char *msg;

    /* the backend's NOT_FOUND */
    rest("GET", "/v1/users/404", NULL, &r);
    assert_status(&r, 404);
    msg = assert_error(&r, &j, 5);
    cr_assert_str_eq(msg, "user 404 not found");
    json_decref(j);
    rest_resp_free(&r);
    /* no binding has that path */
    rest("GET", "/v1/nowhere/1", NULL, &r);
    assert_status(&r, 404);
    assert_header(&r, "content-type: application/json");
    json_decref((assert_error(&r, &j, 5), j));
    rest_resp_free(&r);
    /* the path is bound, not to that method */
    rest("DELETE", "/v1/users", NULL, &r);
    assert_status(&r, 405);
    json_decref((assert_error(&r, &j, 12), j));
    rest_resp_free(&r);
    /* bad JSON: protobuf's parse message */
    rest("POST", "/v1/users", "{\"displayName\": ", &r);
    assert_status(&r, 400);
    msg = assert_error(&r, &j, 3);
    cr_assert(strlen(msg) > 0);
    json_decref(j);
    rest_resp_free(&r);
    /* a value of the wrong type in the query string */
    rest("GET", "/v1/users?page_size=many", NULL, &r);
    assert_status(&r, 400);
    json_decref((assert_error(&r, &j, 3), j));
    rest_resp_free(&r);
    /* the backend's FAILED_PRECONDITION (400), with grpc-status-details-bin:
     * each Any of the google.rpc.Status in the JSON mapping, with its @type */
    rest("PUT", "/v1/orgs/a/users/1?validate_only=true", "{}", &r);
    assert_status(&r, 400);
    msg = assert_error(&r, &j, 9);
    cr_assert_str_eq(msg, "validate_only: nothing changed");
    {
        json_t *want = parse("[{\"@type\":\"type.googleapis.com/sy.user.v1.Address\","
                             "\"city\":\"Nowhere\"}]");

        assert_same_json(json_object_get(j, "details"), want, "error details");
        json_decref(want);
    }
    json_decref(j);
    rest_resp_free(&r);
    /* an error after two messages of a stream ends the array */
    rest("GET", "/v1/users:watch?count=2&firstId=666", NULL, &r);
    assert_status(&r, 200);
    j = parse(r.body);
    cr_assert_eq(json_array_size(j), 3, "%s", r.body);
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(json_array_get(j, 2), "error"), "code")),
        15, "%s", r.body);
    json_decref(j);
    rest_resp_free(&r);
}

REST_CASE(backend_down_is_503)
{
    struct rest_resp r;
    json_t *j;

    sup_kill(backend);
    rest("GET", "/v1/users/1", NULL, &r);
    assert_status(&r, 503);
    json_decref((assert_error(&r, &j, 14), j));
    rest_resp_free(&r);
}

/* ---- one mode only ---- */

Test(rest_file, ndjson_stream_format)
{
    struct rest_resp r;
    int from;

    setup(FROM_FILE, "stream_format = ndjson\n");
    from = backend_lines();
    rest("GET", "/v1/users:watch?count=2", NULL, &r);
    assert_status(&r, 200);
    assert_header(&r, "content-type: application/x-ndjson");
    assert_stream(&r, from, 2, true);
    rest_resp_free(&r);
}

Test(rest_file, grpc_calls_pass_through)
{
    struct rest_resp r;

    setup(FROM_FILE, NULL);
    /* A gRPC request (application/grpc) is never transcoded: the backend
     * answers it as it is (here: an empty message to GetUser). */
    {
        char url[128], frame[600];
        const char *argv[] = {"/usr/bin/curl",
                              "-sS",
                              "--http2-prior-knowledge",
                              "-o",
                              "/dev/null",
                              "-w",
                              "%{http_code}",
                              "-H",
                              "content-type: application/grpc",
                              "-H",
                              "te: trailers",
                              "--data-binary",
                              frame,
                              url,
                              NULL};
        struct sup_proc *p;
        char *out;

        FILE *f;

        /* one empty message: flag 0, length 0 */
        snprintf(frame, sizeof(frame), "@%s/frame.bin", sup_tmpdir());
        f = fopen(frame + 1, "wb");
        cr_assert_not_null(f);
        fwrite("\0\0\0\0\0", 1, 5, f);
        fclose(f);
        snprintf(url, sizeof(url), "http://127.0.0.1:%d/sy.user.v1.UserService/GetUser", px.port);
        cr_assert_eq(sup_run("grpc", argv, 15000, &p), 0);
        out = sup_read_file(p->out_path);
        cr_assert_str_eq(out, "200");
        free(out);
        out = backend_msg("GetUser", "req", 0);
        cr_assert_not_null(out, "the gRPC call did not reach the backend");
        free(out);
    }
    rest("GET", "/v1/users/1", NULL, &r);
    assert_status(&r, 200);
    rest_resp_free(&r);
}

Test(rest_reflection, v1alpha_only_server)
{
    struct rest_resp r;
    char conf[2048];

    start_backend("user.pb", "--reflection", "v1alpha");
    px.port = sup_free_port();
    conf_text(conf, sizeof(conf), FROM_REFLECTION, NULL);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", px.port, conf, PROXY_T), 0);
    cr_assert(sup_poll(rules_loaded, NULL, 15000), "no rules through v1alpha");
    cr_assert(sup_file_contains(backend->out_path, "\"reflection\":\"v1alpha\""));
    rest("GET", "/v1/users/2", NULL, &r);
    assert_status(&r, 200);
    assert_response(&r, "GetUser", "User", NULL);
    rest_resp_free(&r);
}

/* ---- reload ---- */

static bool ping_works(void *arg)
{
    struct rest_resp r;
    bool ok;

    (void)arg;
    rest("GET", "/v1/admin/ping?who=me", NULL, &r);
    ok = r.status == 200;
    rest_resp_free(&r);
    return ok;
}

static void rewrite_conf(const char *text)
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

Test(rest_file, reload_picks_up_a_changed_descriptor_set)
{
    struct rest_resp r;
    char conf[2048];

    /* The backend has the extra service from the start; the file does not. */
    start_backend("user_extra.pb", "--extra", NULL);
    snprintf(descset, sizeof(descset), "%s/user.pb", rest_dir());
    px.port = sup_free_port();
    conf_text(conf, sizeof(conf), FROM_FILE, NULL);
    cr_assert_eq(sup_start_proxy(&px, "switchyard", px.port, conf, PROXY_T), 0);
    rest("GET", "/v1/admin/ping?who=me", NULL, &r);
    assert_status(&r, 404);
    rest_resp_free(&r);
    snprintf(descset, sizeof(descset), "%s/user_extra.pb", rest_dir());
    conf_text(conf, sizeof(conf), FROM_FILE, NULL);
    rewrite_conf(conf);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_poll(ping_works, NULL, 10000), "the new rule never worked");
    assert_request("Ping", "PingRequest", "{\"who\":\"me\"}");
    rest("GET", "/v1/admin/ping?who=you", NULL, &r);
    assert_status(&r, 200);
    assert_response(&r, "Ping", "PingReply", NULL);
    rest_resp_free(&r);
    /* A descriptor set that is no descriptor set fails the reload: the rules stay. */
    {
        char bad[600];

        cr_assert_eq(sup_write_file("bad.pb", "not a descriptor set", bad, sizeof(bad)), 0);
        strcpy(descset, bad);
        conf_text(conf, sizeof(conf), FROM_FILE, NULL);
        rewrite_conf(conf);
        cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
        sup_sleep_ms(500);
        cr_assert(sup_file_contains(px.proc->err_path, "[cluster.users] descriptors"));
        cr_assert(ping_works(NULL));
    }
}

Test(rest_reflection, reload_asks_a_backend_that_gained_a_method)
{
    struct rest_resp r;

    setup(FROM_REFLECTION, NULL);
    rest("GET", "/v1/admin/ping?who=me", NULL, &r);
    assert_status(&r, 404);
    rest_resp_free(&r);
    /* A new version of the backend, on the same address, with one more service. */
    sup_stop(backend, 5000);
    start_backend("user_extra.pb", "--extra", NULL);
    cr_assert_eq(sup_signal(px.proc, SIGHUP), 0);
    cr_assert(sup_poll(ping_works, NULL, 15000), "the new method never worked");
    assert_request("Ping", "PingRequest", "{\"who\":\"me\"}");
}

/* REST calls are calls like any other: [auth] checks them (the token from the
 * REST client's own Authorization header), with the JSON error when it fails. */
Test(rest_file, auth_applies_to_rest_calls)
{
    struct rest_resp r;
    char tokens[600], extra[800];
    json_t *j;

    cr_assert_eq(sup_write_file("tokens", "s3cret-token-for-rest\n", tokens, sizeof(tokens)), 0);
    snprintf(extra, sizeof(extra), "[auth]\nmode = token\ntokens_file = %s\n", tokens);
    setup(FROM_FILE, extra);
    rest("GET", "/v1/users/1", NULL, &r);
    assert_status(&r, 401);
    json_decref((assert_error(&r, &j, 16), j));
    rest_resp_free(&r);
    cr_assert_null(backend_msg("GetUser", "req", 0), "an unauthenticated call reached the backend");
    rest_auth("GET", "/v1/users/1", "Bearer s3cret-token-for-rest", &r);
    assert_status(&r, 200);
    assert_response(&r, "GetUser", "User", NULL);
    rest_resp_free(&r);
}

/* ---- REST calls in /metrics, the access log and traces ---- */

struct metric_wait {
    const char *name;
    double want, got;
};

/* The sample |name| of /metrics on admin_port is |want|. */
static bool metric_reached(void *arg)
{
    struct metric_wait *w = arg;
    struct sup_http_resp m;

    memset(&m, 0, sizeof(m));
    if (sup_http_get(admin_port, "/metrics", &m) != 0)
        return false;
    w->got = m.code == 200 ? sup_metric(m.body, w->name) : -1;
    sup_http_resp_free(&m);
    return w->got == w->want;
}

static void assert_metric(const char *name, double want)
{
    struct metric_wait w = {name, want, -1};

    cr_assert(sup_poll(metric_reached, &w, 5000), "%s is %g, want %g", name, w.got, want);
}

static bool two_lines(void *arg)
{
    char *t = sup_read_file(arg);
    int n = 0;

    for (char *p = t; p != NULL && *p != '\0'; p++)
        n += *p == '\n';
    free(t);
    return n >= 2;
}

/* The SERVER span named |name| whose rpc.grpc.status_code is |code| in the
 * OTLP/JSON exports the receiver printed to |out|, as a new reference, or
 * NULL. */
static json_t *server_span(const char *out, const char *name, const char *code)
{
    char *t = out != NULL ? strdup(out) : NULL, *line, *save = NULL;
    json_t *found = NULL;

    for (line = t != NULL ? strtok_r(t, "\n", &save) : NULL; line != NULL && found == NULL;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = line[0] == '{' ? json_loads(line, 0, NULL) : NULL, *rs, *ss, *sp, *a;
        size_t i, k, n, q;

        json_array_foreach(json_object_get(json_object_get(j, "body"), "resourceSpans"), i, rs)
        {
            json_array_foreach(json_object_get(rs, "scopeSpans"), k, ss)
            {
                json_array_foreach(json_object_get(ss, "spans"), n, sp)
                {
                    const char *nm = json_string_value(json_object_get(sp, "name"));

                    if (found != NULL || nm == NULL || strcmp(nm, name) != 0 ||
                        json_integer_value(json_object_get(sp, "kind")) != 2)
                        continue;
                    json_array_foreach(json_object_get(sp, "attributes"), q, a)
                    {
                        const char *key = json_string_value(json_object_get(a, "key"));
                        const char *v = json_string_value(
                            json_object_get(json_object_get(a, "value"), "intValue"));

                        if (strcmp(key, "rpc.grpc.status_code") == 0 && v != NULL &&
                            strcmp(v, code) == 0)
                            found = json_incref(sp);
                    }
                }
            }
        }
        json_decref(j);
    }
    free(t);
    return found;
}

struct span_wait {
    struct sup_proc *recv;
    const char *name, *code;
};

static bool span_arrived(void *arg)
{
    struct span_wait *w = arg;
    char *out = sup_read_file(w->recv->out_path);
    json_t *sp = server_span(out, w->name, w->code);

    free(out);
    json_decref(sp);
    return sp != NULL;
}

#define GET_USER "sy.user.v1.UserService/GetUser"

/* REST calls are calls like any other (docs/rest.md): /metrics counts them
 * under the method they became, the access log has a line for each with
 * its method, and tracing (sample_ratio = 1) exports a SERVER span named
 * after it to an OTLP/HTTP receiver (tests/integration/otel_peers.py). One
 * call over HTTP/2, one (the backend's NOT_FOUND) over HTTP/1.1. */
Test(rest_file, metrics_access_log_and_tracing_see_rest_calls)
{
    char alog[512], rport[16], tracing[512], script[512];
    const char *argv[] = {PYTHON, script, "receiver", rport, NULL};
    int port = sup_free_port(), i = 0;
    struct sup_proc *recv;
    struct span_wait w;
    struct rest_resp r;
    char *t, *line, *save = NULL;
    static const char *const status[] = {"0", "5"};
    int codes = 0;

    snprintf(script, sizeof(script), "%s/tests/integration/otel_peers.py", top_dir());
    snprintf(rport, sizeof(rport), "%d", port);
    recv = sup_spawn("otlp-receiver", argv);
    cr_assert_not_null(recv);
    cr_assert_eq(sup_wait_port(recv, port, 10000), 0, "the OTLP receiver did not start");
    snprintf(tracing, sizeof(tracing),
             "[tracing]\nsample_ratio = 1\notlp_endpoint = http://127.0.0.1:%d/v1/traces\n"
             "export_interval = 50ms\n",
             port);
    snprintf(alog, sizeof(alog), "%s/access.log", sup_tmpdir());
    snprintf(proxy_extra, sizeof(proxy_extra),
             "access_log = %s\naccess_log_format = json\naccess_log_fields = method, cluster, code",
             alog);
    admin_port = sup_free_port();
    setup(FROM_FILE, tracing);
    cr_assert_eq(sup_wait_port(px.proc, admin_port, PROXY_T), 0, "no admin listener");
    rest("GET", "/v1/users/7", NULL, &r);
    assert_status(&r, 200);
    rest_resp_free(&r);
    curl_http = "--http1.1";
    rest("GET", "/v1/users/404", NULL, &r);
    assert_status(&r, 404);
    rest_resp_free(&r);
    /* /metrics: the REST calls under GetUser, as gRPC calls of it would be */
    assert_metric("grpc_server_handled_total{grpc_service=\"sy.user.v1.UserService\","
                  "grpc_method=\"GetUser\",grpc_code=\"OK\",grpc_type=\"unary\"}",
                  1);
    assert_metric("grpc_server_handled_total{grpc_service=\"sy.user.v1.UserService\","
                  "grpc_method=\"GetUser\",grpc_code=\"NotFound\",grpc_type=\"unary\"}",
                  1);
    /* the access log: a line per call (two workers: in any order), with
     * the method */
    cr_assert(sup_poll(two_lines, alog, 5000), "access log lines missing");
    t = sup_read_file(alog);
    for (line = strtok_r(t, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save), i++) {
        json_t *j = json_loads(line, 0, NULL);
        int code;

        cr_assert_not_null(j, "not JSON: %s", line);
        code = (int)json_integer_value(json_object_get(j, "code"));
        cr_assert_lt(i, 2, "more lines than calls: %s", line);
        cr_assert_str_eq(json_string_value(json_object_get(j, "method")), "/" GET_USER, "%s", line);
        cr_assert_str_eq(json_string_value(json_object_get(j, "cluster")), "users", "%s", line);
        cr_assert(code == 0 || code == 5, "%s", line);
        codes |= 1 << code;
        json_decref(j);
    }
    free(t);
    cr_assert_eq(i, 2);
    cr_assert_eq(codes, 1 << 0 | 1 << 5, "not one OK and one NOT_FOUND line");
    /* tracing: a SERVER span named after the method for each call */
    for (i = 0; i < 2; i++) {
        w = (struct span_wait){recv, GET_USER, status[i]};
        cr_assert(sup_poll(span_arrived, &w, 10000), "no SERVER span %s with status %s", GET_USER,
                  status[i]);
    }
    sup_stop(recv, 5000);
}

/* max_message_size bounds a REST request body (docs/security.md): a body
 * over it gets 429 with the JSON error (RESOURCE_EXHAUSTED) before anything
 * reaches the backend, even when the message it makes would be small; a
 * body within it passes. Over HTTP/1.1. */
Test(rest_file, max_message_size_bounds_the_json_body)
{
    static const char small[] = "{\"displayName\":\"Bo\"}";
    char body[512];
    struct rest_resp r;
    const char *msg;
    json_t *j;

    snprintf(proxy_extra, sizeof(proxy_extra), "max_message_size = 200");
    setup(FROM_FILE, NULL);
    curl_http = "--http1.1";
    for (int i = 0; i < 2; i++) {
        if (i == 0) /* 320 bytes of JSON for a message of 4 */
            snprintf(body, sizeof(body), "{\"displayName\":\"Bo\"%300s}", "");
        else /* 318 bytes of JSON for a message of 303 */
            snprintf(body, sizeof(body), "{\"displayName\":\"%0300d\"}", 0);
        rest("POST", "/v1/users", body, &r);
        assert_status(&r, 429);
        msg = assert_error(&r, &j, 8);
        cr_assert(strstr(msg, "max_message_size") != NULL, "%s", r.body);
        json_decref(j);
        rest_resp_free(&r);
    }
    cr_assert_null(backend_msg("CreateUser", "req", 0),
                   "a body over the limit reached the backend");
    rest("POST", "/v1/users", small, &r);
    assert_status(&r, 200);
    assert_request("CreateUser", "User", small);
    rest_resp_free(&r);
}
