/* Unit tests of health/: the rise/fall state machine, probe pacing (jitter,
 * backoff), the grpc.health.v1 codec and the reading of Check answers, and
 * the panic threshold as health results drive it through the endpoint set.
 * Invariant: no network, no sleeps; everything here is pure.
 * SPDX-License-Identifier: MIT */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "balancer/bal.h"
#include "balancer/epset.h"
#include "conf/conf.h"
#include "core/grpc.h"
#include "core/log.h"
#include "grpc/health/v1/health.pb-c.h"
#include "health/hc.h"
#include "health/internal.h"

/* hc.c logs through core/log.h; the proxy's logger is not linked here. */
_Atomic(enum log_level) log_min_level = LOG_LVL_ERROR;

void log_emit(enum log_level lvl, const char *mod, const char *fmt, ...)
{
    (void)lvl;
    (void)mod;
    (void)fmt;
}

/* ---- state machine ---- */

static const struct hc_sm_conf conf_2_3 = {
    .healthy_threshold = 2, .unhealthy_threshold = 3, .unimplemented_healthy = false};

/* Feeds |seq| ('P' pass, 'F' fail, 'D' down, 'U' unimplemented) and returns
 * the rotation membership after each result as a string of 'i' and 'o'. */
static const char *run(struct hc_sm *m, const struct hc_sm_conf *c, const char *seq)
{
    static char out[64];
    size_t i;

    for (i = 0; seq[i] != '\0' && i < sizeof(out) - 1; i++) {
        enum hc_result r = seq[i] == 'P'   ? HC_RES_PASS
                           : seq[i] == 'F' ? HC_RES_FAIL
                           : seq[i] == 'D' ? HC_RES_DOWN
                                           : HC_RES_UNIMPLEMENTED;

        out[i] = hc_state_in_rotation(hc_sm_feed(m, c, r)) ? 'i' : 'o';
    }
    out[i] = '\0';
    return out;
}

TestSuite(hc_sm);

Test(hc_sm, initial_states)
{
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_eq(m.state, HC_ST_HEALTHY, "health_initial = healthy starts in rotation");
    cr_assert(hc_state_in_rotation(m.state));
    hc_sm_init(&m, false, false);
    cr_assert_eq(m.state, HC_ST_UNCHECKED, "health_initial = unhealthy awaits its first check");
    cr_assert_not(hc_state_in_rotation(m.state));
    hc_sm_init(&m, false, true);
    cr_assert_eq(m.state, HC_ST_UNHEALTHY, "taken out before (kept across a reload)");
}

Test(hc_sm, first_pass_alone_brings_a_new_endpoint_in)
{
    struct hc_sm m;

    hc_sm_init(&m, false, false);
    /* healthy_threshold 2 does not apply to the very first check (Envoy) */
    cr_assert_str_eq(run(&m, &conf_2_3, "P"), "i");
    cr_assert_eq(m.state, HC_ST_HEALTHY);
}

Test(hc_sm, failed_first_check_then_needs_healthy_threshold)
{
    struct hc_sm m;

    hc_sm_init(&m, false, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "F"), "o");
    cr_assert_eq(m.state, HC_ST_UNHEALTHY);
    cr_assert_str_eq(run(&m, &conf_2_3, "PP"), "oi");
}

Test(hc_sm, counted_failures_need_unhealthy_threshold_in_a_row)
{
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "FF"), "ii");
    cr_assert_eq(m.state, HC_ST_FALLING);
    cr_assert_eq(m.count, 2);
    /* a pass in between starts the count again */
    cr_assert_str_eq(run(&m, &conf_2_3, "P"), "i");
    cr_assert_eq(m.state, HC_ST_HEALTHY);
    cr_assert_str_eq(run(&m, &conf_2_3, "FFPFFF"), "iiiiio");
    cr_assert_eq(m.state, HC_ST_UNHEALTHY);
}

Test(hc_sm, clean_negative_answers_take_it_out_at_once)
{
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "D"), "o");
    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "FD"), "io", "from falling too");
    hc_sm_init(&m, false, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "D"), "o");
}

Test(hc_sm, healthy_threshold_passes_in_a_row_to_come_back)
{
    const struct hc_sm_conf c = {.healthy_threshold = 3, .unhealthy_threshold = 1};
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &c, "F"), "o", "unhealthy_threshold 1: one failure is enough");
    cr_assert_str_eq(run(&m, &c, "PP"), "oo");
    cr_assert_eq(m.state, HC_ST_RISING);
    cr_assert_eq(m.count, 2);
    /* any failure while rising starts over */
    cr_assert_str_eq(run(&m, &c, "F"), "o");
    cr_assert_eq(m.state, HC_ST_UNHEALTHY);
    cr_assert_str_eq(run(&m, &c, "PPDPPP"), "ooooo"
                                            "i");
}

Test(hc_sm, thresholds_of_one)
{
    const struct hc_sm_conf c = {.healthy_threshold = 1, .unhealthy_threshold = 1};
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &c, "FPFPDP"), "oioioi");
}

Test(hc_sm, unimplemented_is_unhealthy_by_default)
{
    struct hc_sm m;

    hc_sm_init(&m, true, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "U"), "o", "a clean no: out at once");
    hc_sm_init(&m, false, false);
    cr_assert_str_eq(run(&m, &conf_2_3, "UUU"), "ooo");
}

Test(hc_sm, unimplemented_can_mean_healthy)
{
    const struct hc_sm_conf c = {
        .healthy_threshold = 2, .unhealthy_threshold = 3, .unimplemented_healthy = true};
    struct hc_sm m;

    hc_sm_init(&m, false, false);
    cr_assert_str_eq(run(&m, &c, "U"), "i", "like gRPC clients: no health service, so healthy");
    cr_assert_str_eq(run(&m, &c, "DUU"), "ooi");
}

Test(hc_sm, names)
{
    cr_assert_str_eq(hc_state_name(HC_ST_UNCHECKED), "unchecked");
    cr_assert_str_eq(hc_state_name(HC_ST_HEALTHY), "healthy");
    cr_assert_str_eq(hc_state_name(HC_ST_FALLING), "falling");
    cr_assert_str_eq(hc_state_name(HC_ST_UNHEALTHY), "unhealthy");
    cr_assert_str_eq(hc_state_name(HC_ST_RISING), "rising");
    cr_assert_str_eq(hc_state_name(HC_STATE_COUNT), "?");
    cr_assert_str_eq(hc_result_name(HC_RES_DOWN), "down");
    cr_assert_str_eq(hc_result_name(HC_RES_COUNT), "?");
    for (int s = 0; s < HC_STATE_COUNT; s++)
        cr_assert_neq(strcmp(hc_state_name((enum hc_state)s), "?"), 0);
}

/* ---- pacing ---- */

TestSuite(hc_pace);

Test(hc_pace, jitter_stays_within_ten_percent_and_spreads)
{
    uint64_t rng = 12345;
    uint32_t lo = UINT32_MAX, hi = 0;

    for (int i = 0; i < 10000; i++) {
        uint32_t v = hc_jitter(5000, &rng);

        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
    }
    cr_assert_geq(lo, 4500);
    cr_assert_leq(hi, 5500);
    cr_assert_lt(lo, 4600, "the low end is reached (min %u)", lo);
    cr_assert_gt(hi, 5400, "the high end is reached (max %u)", hi);
    cr_assert_eq(hc_jitter(1, &rng), 1, "never 0");
    cr_assert_eq(hc_jitter(0, &rng), 1, "never 0");
}

Test(hc_pace, backoff_doubles_from_the_interval_up_to_a_cap)
{
    cr_assert_eq(hc_backoff(100, 1), 100);
    cr_assert_eq(hc_backoff(100, 2), 200);
    cr_assert_eq(hc_backoff(100, 3), 400);
    cr_assert_eq(hc_backoff(100, 7), 5000, "capped at HC_BACKOFF_CAP_MS");
    cr_assert_eq(hc_backoff(100, 1000), 5000);
    cr_assert_eq(hc_backoff(10000, 5), 10000, "never less often than the interval");
}

/* ---- codec ---- */

TestSuite(hc_codec);

static Grpc__Health__V1__HealthCheckRequest *unpack_request(const uint8_t *frame, size_t len)
{
    uint32_t n =
        (uint32_t)frame[1] << 24 | (uint32_t)frame[2] << 16 | (uint32_t)frame[3] << 8 | frame[4];

    cr_assert_eq(frame[0], 0, "not compressed");
    cr_assert_eq(n + HC_FRAME_HDR, len, "the prefix gives the message length");
    return grpc__health__v1__health_check_request__unpack(NULL, n, frame + HC_FRAME_HDR);
}

Test(hc_codec, request_round_trips_through_protobuf_c)
{
    uint8_t buf[600];
    char longname[400];
    Grpc__Health__V1__HealthCheckRequest *req;
    size_t n;

    n = hc_codec_request_encode("user.v1.UserService", buf, sizeof(buf));
    cr_assert_eq(n, HC_FRAME_HDR + 2 + 19);
    req = unpack_request(buf, n);
    cr_assert_not_null(req);
    cr_assert_str_eq(req->service, "user.v1.UserService");
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);

    /* the empty service (whole server) is the empty message */
    n = hc_codec_request_encode("", buf, sizeof(buf));
    cr_assert_eq(n, HC_FRAME_HDR);
    cr_assert_eq(memcmp(buf, "\0\0\0\0\0", 5), 0);

    /* a name longer than 127 bytes takes a two-byte length varint */
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    n = hc_codec_request_encode(longname, buf, sizeof(buf));
    cr_assert_eq(n, HC_FRAME_HDR + 1 + 2 + 399);
    req = unpack_request(buf, n);
    cr_assert_str_eq(req->service, longname);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);

    cr_assert_eq(hc_codec_request_encode(longname, buf, 100), 0, "too small a buffer");
    cr_assert_eq(hc_codec_request_encode("", buf, 4), 0);
}

/* Frames HealthCheckResponse{status} packed by protobuf-c into |out|. */
static size_t response_frame(int status, uint8_t *out)
{
    Grpc__Health__V1__HealthCheckResponse rep = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    size_t n;

    rep.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
    n = grpc__health__v1__health_check_response__pack(&rep, out + HC_FRAME_HDR);
    out[0] = 0;
    out[1] = out[2] = out[3] = 0;
    out[4] = (uint8_t)n;
    return n + HC_FRAME_HDR;
}

Test(hc_codec, response_decodes_every_serving_status)
{
    static const int statuses[] = {HC_SERVING_UNKNOWN, HC_SERVING_SERVING, HC_SERVING_NOT_SERVING,
                                   HC_SERVING_SERVICE_UNKNOWN, 7};
    uint8_t buf[32];

    for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++) {
        size_t len = response_frame(statuses[i], buf), used = 0;
        int st = -1;

        cr_assert_eq(hc_codec_response_decode(buf, len, &st, &used), HC_FRAME_OK);
        cr_assert_eq(st, statuses[i], "status %d", statuses[i]);
        cr_assert_eq(used, len);
    }
    /* UNKNOWN (0) is the default: an empty message */
    cr_assert_eq(response_frame(HC_SERVING_UNKNOWN, buf), HC_FRAME_HDR);
}

Test(hc_codec, response_with_unknown_fields_still_decodes)
{
    /* field 1 = SERVING, then field 15 (varint 5) that a newer server might add */
    const uint8_t buf[] = {0, 0, 0, 0, 4, 0x08, 0x01, 0x78, 0x05};
    size_t used = 0;
    int st = -1;

    cr_assert_eq(hc_codec_response_decode(buf, sizeof(buf), &st, &used), HC_FRAME_OK);
    cr_assert_eq(st, HC_SERVING_SERVING);
    cr_assert_eq(used, sizeof(buf));
}

Test(hc_codec, bad_frames)
{
    uint8_t buf[32];
    size_t len = response_frame(HC_SERVING_SERVING, buf), used = 0;
    int st = -1;

    cr_assert_eq(hc_codec_response_decode(buf, 0, &st, &used), HC_FRAME_PARTIAL);
    cr_assert_eq(hc_codec_response_decode(buf, 4, &st, &used), HC_FRAME_PARTIAL, "half a prefix");
    cr_assert_eq(hc_codec_response_decode(buf, len - 1, &st, &used), HC_FRAME_PARTIAL);
    buf[0] = 1;
    cr_assert_eq(hc_codec_response_decode(buf, len, &st, &used), HC_FRAME_COMPRESSED);
    buf[0] = 2;
    cr_assert_eq(hc_codec_response_decode(buf, len, &st, &used), HC_FRAME_BAD_PROTO,
                 "flag other than 0 or 1");
    buf[0] = 0;
    buf[3] = 0x10; /* 4 KiB declared */
    cr_assert_eq(hc_codec_response_decode(buf, len, &st, &used), HC_FRAME_TOO_BIG);
    {
        /* a varint that never ends, and a field of the wrong wire type */
        const uint8_t bad1[] = {0, 0, 0, 0, 2, 0x08, 0xff};
        const uint8_t bad2[] = {0, 0, 0, 0, 3, 0x0a, 0x05, 0x01};

        cr_assert_eq(hc_codec_response_decode(bad1, sizeof(bad1), &st, &used), HC_FRAME_BAD_PROTO);
        cr_assert_eq(hc_codec_response_decode(bad2, sizeof(bad2), &st, &used), HC_FRAME_BAD_PROTO);
    }
    cr_assert_str_eq(hc_frame_rc_name(HC_FRAME_COMPRESSED),
                     "compressed response message (none was asked for)");
}

Test(hc_codec, grpc_timeout_values)
{
    char b[16];

    cr_assert_str_eq(hc_codec_timeout(1000, b, sizeof(b)), "1000m");
    cr_assert_str_eq(hc_codec_timeout(250, b, sizeof(b)), "250m");
    cr_assert_str_eq(hc_codec_timeout(0, b, sizeof(b)), "1m");
    cr_assert_str_eq(hc_codec_timeout(99999999, b, sizeof(b)), "99999999m");
    cr_assert_str_eq(hc_codec_timeout(100000000, b, sizeof(b)), "100000S", "at most 8 digits");
    cr_assert_str_eq(hc_codec_timeout(UINT32_MAX, b, sizeof(b)), "4294968S");
}

/* ---- classification of Check answers ---- */

TestSuite(hc_classify);

struct answer_case {
    const char *what;
    int http_status;
    const char *ctype;
    int grpc_status;
    const char *msg;
    int body;       /* -1 none, else a ServingStatus to frame */
    int extra;      /* bytes appended after the message (a second message) */
    int compressed; /* set the compressed flag */
    enum hc_result want;
    const char *why; /* substring of the reason */
};

static const struct answer_case cases[] = {
    {"SERVING", 200, "application/grpc", 0, NULL, HC_SERVING_SERVING, 0, 0, HC_RES_PASS, "SERVING"},
    {"content-type with a suffix", 200, "application/grpc+proto", 0, NULL, HC_SERVING_SERVING, 0, 0,
     HC_RES_PASS, "SERVING"},
    {"NOT_SERVING", 200, "application/grpc", 0, NULL, HC_SERVING_NOT_SERVING, 0, 0, HC_RES_DOWN,
     "NOT_SERVING"},
    {"UNKNOWN", 200, "application/grpc", 0, NULL, HC_SERVING_UNKNOWN, 0, 0, HC_RES_DOWN, "UNKNOWN"},
    {"SERVICE_UNKNOWN", 200, "application/grpc", 0, NULL, HC_SERVING_SERVICE_UNKNOWN, 0, 0,
     HC_RES_DOWN, "SERVICE_UNKNOWN"},
    {"unknown enum value", 200, "application/grpc", 0, NULL, 9, 0, 0, HC_RES_FAIL,
     "unknown serving status 9"},
    {"NOT_FOUND trailers-only", 200, "application/grpc", 5, "unknown service", -1, 0, 0,
     HC_RES_DOWN, "grpc-status 5 NOT_FOUND: unknown service"},
    {"UNIMPLEMENTED", 200, "application/grpc", 12, NULL, -1, 0, 0, HC_RES_UNIMPLEMENTED,
     "UNIMPLEMENTED"},
    {"INTERNAL", 200, "application/grpc", 13, "boom", -1, 0, 0, HC_RES_FAIL,
     "grpc-status 13 INTERNAL: boom"},
    {"UNAVAILABLE", 200, "application/grpc", 14, NULL, -1, 0, 0, HC_RES_FAIL, "UNAVAILABLE"},
    {"HTTP 503", 503, "text/plain", -1, NULL, -1, 0, 0, HC_RES_FAIL, "HTTP status 503"},
    {"no :status", 0, NULL, -1, NULL, -1, 0, 0, HC_RES_FAIL, ":status"},
    {"not gRPC", 200, "text/html", -1, NULL, -1, 0, 0, HC_RES_FAIL, "content-type 'text/html'"},
    {"no content-type", 200, NULL, 0, NULL, HC_SERVING_SERVING, 0, 0, HC_RES_FAIL, "content-type"},
    {"no grpc-status", 200, "application/grpc", -1, NULL, HC_SERVING_SERVING, 0, 0, HC_RES_FAIL,
     "without grpc-status"},
    {"OK without a message", 200, "application/grpc", 0, NULL, -1, 0, 0, HC_RES_FAIL,
     "without a response message"},
    {"two messages", 200, "application/grpc", 0, NULL, HC_SERVING_SERVING, 7, 0, HC_RES_FAIL,
     "more than one response message"},
    {"truncated message", 200, "application/grpc", 0, NULL, HC_SERVING_SERVING, -1, 0, HC_RES_FAIL,
     "truncated"},
    {"compressed", 200, "application/grpc", 0, NULL, HC_SERVING_SERVING, 0, 1, HC_RES_FAIL,
     "compressed"},
};

Test(hc_classify, check_answers)
{
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct answer_case *c = &cases[i];
        uint8_t body[64];
        size_t len = 0;
        struct hc_answer a = {c->http_status, c->ctype, c->grpc_status, c->msg, body, 0};
        char why[160];
        enum hc_result r;

        if (c->body >= 0) {
            len = response_frame(c->body, body);
            if (c->compressed)
                body[0] = 1;
            if (c->extra > 0) {
                len += response_frame(HC_SERVING_SERVING, body + len);
            } else if (c->extra < 0) {
                len--;
            }
        }
        a.body_len = len;
        r = hc_classify(&a, why, sizeof(why));
        cr_expect_eq(r, c->want, "%s: result %s, want %s (%s)", c->what, hc_result_name(r),
                     hc_result_name(c->want), why);
        cr_expect(strstr(why, c->why) != NULL, "%s: reason '%s' lacks '%s'", c->what, why, c->why);
    }
}

Test(hc_classify, serving_results)
{
    cr_assert_eq(hc_result_of_serving(HC_SERVING_SERVING), HC_RES_PASS);
    cr_assert_eq(hc_result_of_serving(HC_SERVING_NOT_SERVING), HC_RES_DOWN);
    cr_assert_eq(hc_result_of_serving(HC_SERVING_UNKNOWN), HC_RES_DOWN);
    cr_assert_eq(hc_result_of_serving(HC_SERVING_SERVICE_UNKNOWN), HC_RES_DOWN);
    cr_assert_eq(hc_result_of_serving(42), HC_RES_FAIL);
    cr_assert_str_eq(hc_serving_name(HC_SERVING_NOT_SERVING), "NOT_SERVING");
    cr_assert_str_eq(hc_serving_name(42), "?");
    cr_assert_str_eq(grpc_code_name(5), "NOT_FOUND");
    cr_assert_str_eq(grpc_code_name(99), "UNKNOWN");
}

/* ---- panic threshold, driven by health results through the endpoint set ---- */

TestSuite(hc_panic);

/* Loads a cluster of |n| literal endpoints with |extra| keys; the caller
 * frees the conf. */
static struct conf *load(int n, const char *extra)
{
    char text[1024], err[256];
    struct conf *c = NULL;
    int k;

    k = snprintf(text, sizeof(text),
                 "[proxy]\nlisten = 127.0.0.1:1\n[admin]\nlisten = off\n[cluster.svc]\ntargets = ");
    for (int i = 0; i < n; i++)
        k +=
            snprintf(text + k, sizeof(text) - (size_t)k, "%s10.0.0.%d:50051", i ? ", " : "", i + 1);
    snprintf(text + k, sizeof(text) - (size_t)k, "\nhealthy_threshold = 1\n%s\n", extra);
    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), 0, "%s", err);
    return c;
}

/* Feeds |r| to endpoint |i|'s state machine and applies the outcome to |s|. */
static void feed(struct bal_epset *s, struct hc_sm *sm, const struct hc_sm_conf *c, size_t i,
                 enum hc_result r)
{
    bool in = hc_state_in_rotation(hc_sm_feed(&sm[i], c, r));

    bal_epset_set_healthy(s, bal_epset_at(s, i), in, hc_result_name(r), 1);
}

static size_t rotation(struct bal_epset *s, bool *panic)
{
    struct bal_snapshot *snap = bal_epset_snapshot(s, 1);
    size_t n = snap->clusters[0].nrotation;

    *panic = snap->clusters[0].panic;
    bal_snapshot_unref(snap);
    return n;
}

Test(hc_panic, all_endpoints_down_with_a_threshold_routes_to_all)
{
    struct conf *c = load(3, "panic_threshold = 50");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct hc_sm_conf smc = {.healthy_threshold = 1, .unhealthy_threshold = 2};
    struct hc_sm sm[3];
    bool panic;

    for (size_t i = 0; i < 3; i++) {
        hc_sm_init(&sm[i], bal_epset_at(s, i)->healthy, false);
        feed(s, sm, &smc, i, HC_RES_PASS);
    }
    cr_assert_eq(rotation(s, &panic), 3);
    cr_assert_not(panic);
    feed(s, sm, &smc, 0, HC_RES_DOWN);
    cr_assert_eq(rotation(s, &panic), 2, "2 of 3 healthy is above 50%%");
    cr_assert_not(panic);
    feed(s, sm, &smc, 1, HC_RES_DOWN);
    cr_assert_eq(rotation(s, &panic), 3, "1 of 3 is below 50%%: panic, all in rotation");
    cr_assert(panic);
    feed(s, sm, &smc, 2, HC_RES_DOWN);
    cr_assert_eq(rotation(s, &panic), 3, "none healthy: still all");
    cr_assert(panic);
    feed(s, sm, &smc, 2, HC_RES_PASS);
    feed(s, sm, &smc, 1, HC_RES_PASS);
    cr_assert_eq(rotation(s, &panic), 2, "recovered: back to the healthy ones only");
    cr_assert_not(panic);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}

Test(hc_panic, zero_threshold_never_routes_to_unhealthy)
{
    struct conf *c = load(2, "panic_threshold = 0");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct hc_sm_conf smc = {.healthy_threshold = 1, .unhealthy_threshold = 1};
    struct hc_sm sm[2];
    bool panic;

    hc_sm_init(&sm[0], false, false);
    hc_sm_init(&sm[1], false, false);
    cr_assert_eq(rotation(s, &panic), 0, "health_initial = unhealthy: nothing before a check");
    feed(s, sm, &smc, 0, HC_RES_FAIL);
    feed(s, sm, &smc, 1, HC_RES_DOWN);
    cr_assert_eq(rotation(s, &panic), 0);
    cr_assert_not(panic);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}

Test(hc_panic, hundred_percent_panics_on_any_unhealthy_endpoint)
{
    struct conf *c = load(2, "panic_threshold = 100\nhealth_initial = healthy");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct hc_sm_conf smc = {.healthy_threshold = 1, .unhealthy_threshold = 1};
    struct hc_sm sm[2];
    bool panic;

    hc_sm_init(&sm[0], true, false);
    hc_sm_init(&sm[1], true, false);
    cr_assert_eq(rotation(s, &panic), 2);
    cr_assert_not(panic, "all healthy is not below 100%%");
    feed(s, sm, &smc, 1, HC_RES_DOWN);
    cr_assert_eq(rotation(s, &panic), 2);
    cr_assert(panic);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}

/* hc_ep_info() of an endpoint that is not checked (or no checker) is all zero. */
Test(hc_panic, ep_info_without_a_checker_is_zero)
{
    struct conf *c = load(1, "health_check = off");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct hc_ep_info info;

    memset(&info, 0xff, sizeof(info));
    hc_ep_info(NULL, bal_epset_at(s, 0), &info);
    cr_assert_not(info.checked);
    cr_assert_eq(info.passes, 0);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}
