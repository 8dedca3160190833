/* Unit tests for the observability keys ([tracing], [proxy] log_format and
 * access_log_fields) and for core/utf8, which keeps logs, traces and label
 * values valid UTF-8.
 * Invariant: no network, no sleeps, no files.
 * SPDX-License-Identifier: MIT */
#include "conf/conf.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

#include "core/utf8.h"

TestSuite(conf_obs, .timeout = 10);
TestSuite(utf8, .timeout = 10);

#define MINIMAL "[cluster.a]\ntargets = 127.0.0.1:50061\n"

static struct conf *load(const char *text, char *err, size_t errlen)
{
    struct conf *c = NULL;

    err[0] = '\0';
    if (conf_load_string(text, "t.ini", &c, err, errlen) != 0)
        return NULL;
    return c;
}

Test(conf_obs, tracing_defaults)
{
    char err[512];
    struct conf *c = load(MINIMAL, err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    cr_assert_float_eq(c->tracing.sample_ratio, 0.01, 1e-12);
    cr_assert_null(c->tracing.otlp_endpoint, "export is on by default");
    cr_assert_str_eq(c->tracing.service_name, "switchyard");
    cr_assert_eq(c->tracing.queue_size, 2048);
    cr_assert_eq(c->tracing.batch_size, 512);
    cr_assert_eq(c->tracing.export_interval_ms, 1000);
    cr_assert_eq(c->tracing.export_timeout_ms, 5000);
    cr_assert_not(c->proxy.log_json);
    cr_assert_eq(c->proxy.naccess_log_fields, 10);
    cr_assert_eq(c->proxy.access_log_fields[0], CONF_ALOG_TIME);
    cr_assert_eq(c->proxy.access_log_fields[9], CONF_ALOG_BYTES_OUT);
    conf_free(c);
}

Test(conf_obs, tracing_keys)
{
    char err[512];
    struct conf *c = load("[tracing]\nsample_ratio = 1\notlp_endpoint = http://otel-collector\n"
                          "service_name = edge\nqueue_size = 16\nexport_interval = 250ms\n" MINIMAL,
                          err, sizeof(err));

    cr_assert_not_null(c, "%s", err);
    cr_assert_float_eq(c->tracing.sample_ratio, 1.0, 1e-12);
    cr_assert_str_eq(c->tracing.otlp_host, "otel-collector");
    cr_assert_eq(c->tracing.otlp_port, 4318);
    cr_assert_str_eq(c->tracing.otlp_path, "/v1/traces");
    cr_assert_str_eq(c->tracing.service_name, "edge");
    cr_assert_eq(c->tracing.queue_size, 16);
    cr_assert_eq(c->tracing.export_interval_ms, 250);
    conf_free(c);
    c = load("[tracing]\notlp_endpoint = http://[::1]:14318/otlp/v1/traces\nsample_ratio = 0.25\n"
             "[proxy]\nlog_format = json\naccess_log_fields = trace_id, method, code\n" MINIMAL,
             err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_str_eq(c->tracing.otlp_host, "::1");
    cr_assert_eq(c->tracing.otlp_port, 14318);
    cr_assert_str_eq(c->tracing.otlp_path, "/otlp/v1/traces");
    cr_assert_float_eq(c->tracing.sample_ratio, 0.25, 1e-12);
    cr_assert(c->proxy.log_json);
    cr_assert_eq(c->proxy.naccess_log_fields, 3);
    cr_assert_eq(c->proxy.access_log_fields[0], CONF_ALOG_TRACE_ID);
    cr_assert_eq(c->proxy.access_log_fields[2], CONF_ALOG_CODE);
    conf_free(c);
}

/* Each bad value is refused with file:line, [section] key and what was expected. */
Test(conf_obs, errors_name_the_line_key_and_expectation)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {"[tracing]\nsample_ratio = 1.5\n",
         "t.ini:2: [tracing] sample_ratio: expected a number in 0..1"},
        {"[tracing]\nsample_ratio = 1e-2\n", "t.ini:2: [tracing] sample_ratio: expected a number"},
        {"[tracing]\nsample_ratio = -0.1\n", "t.ini:2: [tracing] sample_ratio: expected"},
        {"[tracing]\notlp_endpoint = https://c:4318\n",
         "t.ini:2: [tracing] otlp_endpoint: expected http://HOST[:PORT][/PATH]"},
        {"[tracing]\notlp_endpoint = http://c:99999/v1/traces\n",
         "t.ini:2: [tracing] otlp_endpoint: expected a port in 1..65535"},
        {"[tracing]\notlp_endpoint = http://bad host/\n", "t.ini:2: [tracing] otlp_endpoint:"},
        {"[tracing]\nqueue_size = 8\n",
         "t.ini:2: [tracing] queue_size: expected an integer in 16..1048576"},
        {"[tracing]\nexport_interval = 1ms\n",
         "t.ini:2: [tracing] export_interval: expected a duration of at least 10ms"},
        {"[tracing]\nsampling = 1\n", "t.ini:2: [tracing]"},
        {"[proxy]\naccess_log_fields = time, nope\n",
         "t.ini:2: [proxy] access_log_fields: expected a field among time, peer"},
        {"[proxy]\naccess_log_fields = time, time\n",
         "t.ini:2: [proxy] access_log_fields: expected each field once"},
        {"[proxy]\naccess_log_fields = time,,peer\n",
         "t.ini:2: [proxy] access_log_fields: expected field names"},
        {"[proxy]\nlog_format = yaml\n", "t.ini:2: [proxy] log_format: expected text or json"},
        {"[tracing]\n[tracing]\n", "t.ini:2: [tracing]: duplicate section"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512], err[512];
        struct conf *c;

        snprintf(text, sizeof(text), "%s" MINIMAL, cases[i].text);
        c = load(text, err, sizeof(err));
        cr_assert_null(c, "accepted: %s", cases[i].text);
        cr_assert(strncmp(err, cases[i].want, strlen(cases[i].want)) == 0,
                  "for %s\n got: %s\n want: %s...", cases[i].text, err, cases[i].want);
    }
}

Test(utf8, validity)
{
    cr_assert(utf8_valid((const uint8_t *)"/pkg.Svc/M", 10));
    cr_assert(utf8_valid((const uint8_t *)"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14));
    cr_assert_not(utf8_valid((const uint8_t *)"\xff", 1));
    cr_assert_not(utf8_valid((const uint8_t *)"\xc3\x28", 2), "bad continuation");
    cr_assert_not(utf8_valid((const uint8_t *)"\xc0\xaf", 2), "overlong");
    cr_assert_not(utf8_valid((const uint8_t *)"\xed\xa0\x80", 3), "surrogate");
    cr_assert_not(utf8_valid((const uint8_t *)"\xf4\x90\x80\x80", 4), "above U+10FFFF");
    cr_assert_not(utf8_valid((const uint8_t *)"\xe2\x82", 2), "truncated");
}

Test(utf8, clean_replaces_bad_bytes_and_stops_on_a_boundary)
{
    char out[32];
    size_t n;

    n = utf8_clean((const uint8_t *)"a\xff"
                                    "b\xc3\xa9",
                   5, out, sizeof(out));
    cr_assert_str_eq(out, "a\xef\xbf\xbd"
                          "b\xc3\xa9");
    cr_assert_eq(n, strlen(out));
    cr_assert(utf8_valid((const uint8_t *)out, n));
    n = utf8_clean((const uint8_t *)"x\0y", 3, out, sizeof(out));
    cr_assert_str_eq(out, "x\xef\xbf\xbdy", "a NUL inside");
    /* 4 bytes of room: "ab" fits, the 3-byte U+FFFD does not */
    n = utf8_clean((const uint8_t *)"ab\xff", 3, out, 4);
    cr_assert_str_eq(out, "ab");
    cr_assert_eq(n, 2);
}
