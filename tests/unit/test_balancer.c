/* Unit tests of the balancer: routing, snapshots, endpoint sets and every
 * policy on synthetic snapshots (distributions over 10,000 picks, smooth
 * weighted round robin, ring_hash key movement, least_request, pick_first's
 * process-wide choice, slow_start, skip callbacks).
 * Invariant: no sockets, no sleeps, no clocks: every random stream is seeded,
 * so a distribution test gives the same counts on every run.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "balancer/bal.h"
#include "balancer/epset.h"

static struct conf_cluster clusters[3];
static char *routes0[] = {"/"};
static char *routes1[] = {"/users.v1.", "/users.v1.Admin/"};
static char *routes2[] = {"/users.v1.UserService/"};
static struct conf conf;

static void setup(void)
{
    memset(clusters, 0, sizeof(clusters));
    clusters[0].name = "default";
    clusters[0].routes = routes0;
    clusters[0].nroutes = 1;
    clusters[1].name = "users";
    clusters[1].routes = routes1;
    clusters[1].nroutes = 2;
    clusters[2].name = "users-svc";
    clusters[2].routes = routes2;
    clusters[2].nroutes = 1;
    clusters[2].policy = CONF_POLICY_PICK_FIRST;
    memset(&conf, 0, sizeof(conf));
    conf.clusters = clusters;
    conf.nclusters = 3;
}

TestSuite(bal, .init = setup, .timeout = 30);

static struct bal_endpoint ep(uint32_t id, bool in_rotation)
{
    struct bal_endpoint e = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&e.addr;

    a->sin_family = AF_INET;
    a->sin_port = htons((uint16_t)(50000 + id));
    a->sin_addr.s_addr = htonl(0x7f000001);
    e.addrlen = sizeof(*a);
    e.id = id;
    e.in_rotation = in_rotation;
    e.weight = 1;
    e.origin = "127.0.0.1:5000x";
    bal_addr_str((struct sockaddr *)&e.addr, e.addr_str, sizeof(e.addr_str));
    return e;
}

/* Builds a snapshot whose cluster |cl| has endpoints ids 0..n-1 with the given rotation. */
static struct bal_snapshot *snap_with(uint32_t cl, size_t n, const bool *rot)
{
    struct bal_snapshot *s = bal_snapshot_new(&conf, 1);

    for (size_t i = 0; i < n; i++) {
        struct bal_endpoint e = ep((uint32_t)i, rot == NULL || rot[i]);

        bal_snapshot_add_endpoint(s, cl, &e);
    }
    bal_snapshot_seal(s);
    return s;
}

Test(bal, route_longest_prefix_wins)
{
    struct bal_snapshot *s = snap_with(0, 0, NULL);
    const char *p1 = "/users.v1.UserService/Get";
    const char *p2 = "/users.v1.Admin/Ban";
    const char *p3 = "/users.v1.Other/X";
    const char *p4 = "/billing.v1.B/X";

    cr_assert_str_eq(bal_route(s, p1, strlen(p1))->name, "users-svc");
    cr_assert_str_eq(bal_route(s, p2, strlen(p2))->name, "users");
    cr_assert_str_eq(bal_route(s, p3, strlen(p3))->name, "users");
    cr_assert_str_eq(bal_route(s, p4, strlen(p4))->name, "default");
    bal_snapshot_unref(s);
}

Test(bal, route_no_match_is_null)
{
    struct bal_snapshot *s;
    const char *p = "/billing.v1.B/X";

    conf.nclusters = 2;
    clusters[0].routes = routes2; /* no "/" catch-all any more */
    s = snap_with(0, 0, NULL);
    cr_assert_null(bal_route(s, p, strlen(p)));
    /* a prefix longer than the path never matches */
    cr_assert_null(bal_route(s, "/users", 6));
    bal_snapshot_unref(s);
}

/* ---- policies on synthetic snapshots ---- */

/* Cluster 0 of a new snapshot with |n| endpoints. Endpoint i has id
 * ids[i] (default i), the address 127.0.0.1:(50000 + port id) where the port
 * id is ports[i] (default its id), weight w[i] (default 1), rotation rot[i]
 * (default true) and since_ms since[i] (default 0). Any array may be NULL. */
struct spec {
    size_t n;
    const uint32_t *ids, *ports, *w;
    const bool *rot;
    const uint64_t *since;
};

static struct bal_snapshot *snap_spec(const struct spec *sp)
{
    struct bal_snapshot *s = bal_snapshot_new(&conf, 1);

    for (size_t i = 0; i < sp->n; i++) {
        uint32_t id = sp->ids != NULL ? sp->ids[i] : (uint32_t)i;
        struct bal_endpoint e = ep(sp->ports != NULL ? sp->ports[i] : id, true);

        e.id = id;
        e.weight = sp->w != NULL ? sp->w[i] : 1;
        e.in_rotation = sp->rot == NULL || sp->rot[i];
        e.since_ms = sp->since != NULL ? sp->since[i] : 0;
        bal_snapshot_add_endpoint(s, 0, &e);
    }
    bal_snapshot_seal(s);
    return s;
}

static int pick_at(const struct bal_snapshot *s, struct bal_lb *lb, bal_skip_cb skip, void *arg,
                   const char *key, uint64_t now_ms)
{
    struct bal_pick_req r = {.skip = skip,
                             .arg = arg,
                             .key = (const uint8_t *)key,
                             .keylen = key != NULL ? strlen(key) : 0,
                             .now_ms = now_ms};

    return bal_pick(&s->clusters[0], lb, &r);
}

static int pick(const struct bal_snapshot *s, struct bal_lb *lb)
{
    return pick_at(s, lb, NULL, NULL, NULL, 0);
}

/* The endpoint id a pick returned. */
static uint32_t id_at(const struct bal_snapshot *s, int idx)
{
    cr_assert(idx >= 0 && (size_t)idx < s->clusters[0].nendpoints, "bad pick %d", idx);
    return s->clusters[0].endpoints[idx].id;
}

static double absd(double x)
{
    return x < 0 ? -x : x;
}

/* |count| is within |tol| (a fraction of |total|) of |want| * |total|. */
static void assert_share(int count, int total, double want, double tol, const char *what)
{
    double got = (double)count / total;

    cr_assert(absd(got - want) <= tol, "%s: share %.4f, expected %.4f +- %.4f", what, got, want,
              tol);
}

/* The unit links only balancer/: its own names, as in the keyword table. */
static const char *pname(enum conf_policy p)
{
    static const char *const names[] = {"round_robin", "pick_first", "least_request", "ring_hash",
                                        "random"};

    return p < CONF_POLICY_COUNT ? names[p] : "?";
}

static const enum conf_policy all_policies[] = {
    CONF_POLICY_ROUND_ROBIN, CONF_POLICY_PICK_FIRST, CONF_POLICY_LEAST_REQUEST,
    CONF_POLICY_RING_HASH,   CONF_POLICY_RANDOM,
};
#define NPOLICIES (sizeof(all_policies) / sizeof(all_policies[0]))

/* ---- every policy ---- */

static enum bal_skip skip_ids(const struct bal_endpoint *e, void *arg)
{
    const int *modes = arg; /* per id: 0 no, 1 soft, 2 hard */

    return (enum bal_skip)modes[e->id];
}

static int skip_calls;

/* Counts its calls and checks that picks only ask about endpoints in rotation. */
static enum bal_skip skip_counted(const struct bal_endpoint *e, void *arg)
{
    skip_calls++;
    cr_assert(e->in_rotation, "skip asked about endpoint %u, which is out of rotation", e->id);
    return skip_ids(e, arg);
}

Test(bal, no_endpoint_in_rotation_for_every_policy)
{
    bool rot[2] = {false, false};
    struct spec sp = {.n = 2, .rot = rot};

    for (size_t p = 0; p < NPOLICIES; p++) {
        struct bal_snapshot *s;
        struct bal_lb lb = {0};

        clusters[0].policy = all_policies[p];
        s = snap_spec(&sp);
        bal_lb_init(&lb, &s->clusters[0], 1);
        cr_assert_eq(pick(s, &lb), BAL_ENOENDPOINT, "%s", pname(all_policies[p]));
        cr_assert_eq(pick_at(s, &lb, NULL, NULL, "k", 0), BAL_ENOENDPOINT);
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s);
    }
    /* an empty cluster too */
    clusters[0].policy = CONF_POLICY_RING_HASH;
    sp.n = 0;
    {
        struct bal_snapshot *s = snap_spec(&sp);
        struct bal_lb lb = {0};

        cr_assert_null(s->clusters[0].ring);
        bal_lb_init(&lb, &s->clusters[0], 1);
        cr_assert_eq(pick_at(s, &lb, NULL, NULL, "k", 0), BAL_ENOENDPOINT);
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s);
    }
}

Test(bal, skip_hard_and_soft_for_every_policy)
{
    bool rot[4] = {true, true, true, false};
    struct spec sp = {.n = 4, .rot = rot};
    static const char *const keys[] = {NULL, "user-1", "user-2", "user-3"};

    for (size_t p = 0; p < NPOLICIES; p++) {
        const char *name = pname(all_policies[p]);
        struct bal_snapshot *s;
        struct bal_lb lb = {0};
        int modes[4] = {BAL_SKIP_HARD, BAL_SKIP_SOFT, BAL_SKIP_NO, BAL_SKIP_NO};

        clusters[0].policy = all_policies[p];
        s = snap_spec(&sp);
        bal_lb_init(&lb, &s->clusters[0], 7);
        for (int i = 0; i < 40; i++) {
            const char *key = keys[i % 4];

            skip_calls = 0;
            cr_assert_eq(pick_at(s, &lb, skip_counted, modes, key, 0), 2, "%s: accepted one", name);
            /* at most once per endpoint in rotation, after one optimistic try */
            cr_assert(skip_calls >= 1 && skip_calls <= 4, "%s: %d skip calls", name, skip_calls);
        }
        /* only a soft-refused endpoint is left: it is the last resort */
        modes[2] = BAL_SKIP_HARD;
        for (int i = 0; i < 8; i++)
            cr_assert_eq(pick_at(s, &lb, skip_counted, modes, keys[i % 4], 0), 1, "%s: soft", name);
        /* several soft ones: any of them, never a hard one */
        modes[0] = BAL_SKIP_SOFT;
        for (int i = 0; i < 20; i++) {
            int idx = pick_at(s, &lb, skip_counted, modes, keys[i % 4], 0);

            cr_assert(idx == 0 || idx == 1, "%s: got %d", name, idx);
        }
        modes[0] = modes[1] = BAL_SKIP_HARD;
        for (int i = 0; i < 4; i++)
            cr_assert_eq(pick_at(s, &lb, skip_counted, modes, keys[i], 0), BAL_EEXHAUSTED,
                         "%s: all refused", name);
        /* and without a callback everything in rotation is usable again */
        for (int i = 0; i < 30; i++) {
            int idx = pick_at(s, &lb, NULL, NULL, keys[i % 4], 0);

            cr_assert(idx >= 0 && idx <= 2, "%s: got %d", name, idx);
        }
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s);
    }
}

Test(bal, picks_never_leave_the_rotation_for_every_policy)
{
    bool rot[5] = {true, false, true, false, true};
    uint32_t w[5] = {1, 5, 2, 5, 3};
    struct spec sp = {.n = 5, .rot = rot, .w = w};

    for (size_t p = 0; p < NPOLICIES; p++) {
        struct bal_snapshot *s;
        struct bal_lb lb = {0};
        char key[32];

        clusters[0].policy = all_policies[p];
        s = snap_spec(&sp);
        bal_lb_init(&lb, &s->clusters[0], 3);
        for (int i = 0; i < 10000; i++) {
            int idx;

            snprintf(key, sizeof(key), "k%d", i);
            idx = pick_at(s, &lb, NULL, NULL, i % 2 ? key : NULL, 0);
            cr_assert(idx == 0 || idx == 2 || idx == 4, "%s picked %d", pname(all_policies[p]),
                      idx);
            /* least_request: keep some attempts open, end the rest */
            bal_attempt_start(&lb, id_at(s, idx));
            if (i % 3 != 0)
                bal_attempt_end(&lb, id_at(s, idx));
        }
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s);
    }
}

Test(bal, lb_deinit_of_zeroed_and_attempts_on_unknown_ids)
{
    struct bal_lb lb = {0};
    struct spec sp = {.n = 3};
    struct bal_snapshot *s;

    bal_lb_deinit(&lb);        /* zeroed: a no-op */
    bal_attempt_start(&lb, 1); /* not set up: ignored */
    bal_attempt_end(&lb, 1);
    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    s = snap_spec(&sp);
    bal_lb_update(&lb, &s->clusters[0]); /* a zeroed lb is set up by an update */
    bal_attempt_start(&lb, 999);
    bal_attempt_end(&lb, 999);
    cr_assert(pick(s, &lb) >= 0);
    bal_lb_deinit(&lb);
    bal_lb_deinit(&lb); /* twice is fine */
    bal_snapshot_unref(s);
}

/* ---- round_robin: smooth weighted round robin ---- */

Test(bal, round_robin_equal_weights_is_fair_and_wraps)
{
    struct spec sp = {.n = 3};
    struct bal_snapshot *s = snap_spec(&sp);
    struct bal_lb lb = {0};
    int count[3] = {0};
    int prev = -1;

    bal_lb_init(&lb, &s->clusters[0], 7);
    for (int i = 0; i < 300; i++) {
        int idx = pick(s, &lb);

        cr_assert(idx >= 0 && idx < 3);
        cr_assert_neq(idx, prev, "round_robin picked %d twice in a row", idx);
        prev = idx;
        count[idx]++;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(count[i], 100, "endpoint %d got %d of 300", i, count[i]);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

/* Calls hedged to a second endpoint: their second pick ("again") must not
 * move the rotation, or the first picks would all land on one endpoint. */
Test(bal, round_robin_second_picks_do_not_move_the_rotation)
{
    struct spec sp = {.n = 2};
    struct bal_snapshot *s = snap_spec(&sp);
    struct bal_lb lb = {0};
    int first[2] = {0};

    bal_lb_init(&lb, &s->clusters[0], 3);
    for (int i = 0; i < 100; i++) {
        int modes[64] = {0};
        int a = pick(s, &lb), b;
        struct bal_pick_req again = {.skip = skip_ids, .arg = modes, .again = true};

        cr_assert(a >= 0 && a < 2);
        first[a]++;
        modes[id_at(s, a)] = 2; /* hard: the hedge goes elsewhere */
        b = bal_pick(&s->clusters[0], &lb, &again);
        cr_assert(b >= 0 && b != a, "the second pick took %d again", b);
    }
    cr_assert_eq(first[0], 50, "first picks: %d and %d of 100", first[0], first[1]);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, round_robin_skips_out_of_rotation)
{
    bool rot[4] = {true, false, true, true};
    struct spec sp = {.n = 4, .rot = rot};
    struct bal_snapshot *s = snap_spec(&sp);
    struct bal_lb lb = {0};
    int count[4] = {0};

    cr_assert_eq(s->clusters[0].nrotation, 3);
    bal_lb_init(&lb, &s->clusters[0], 0);
    for (int i = 0; i < 30; i++)
        count[pick(s, &lb)]++;
    cr_assert_eq(count[1], 0);
    cr_assert_eq(count[0], 10);
    cr_assert_eq(count[2], 10);
    cr_assert_eq(count[3], 10);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

/* nginx's commit 52327e0627f4 (smooth weighted round robin): weights 5, 1, 1
 * give { a, a, b, a, c, a, a }. */
static const char nginx_511[] = "aabacaa";

/* The phase (0..6) at which |seq| follows nginx's cycle, or -1. */
static int nginx_phase(const char *seq, size_t len)
{
    for (int ph = 0; ph < 7; ph++) {
        size_t i = 0;

        while (i < len && seq[i] == nginx_511[(ph + i) % 7])
            i++;
        if (i == len)
            return ph;
    }
    return -1;
}

Test(bal, round_robin_weighted_5_1_1_is_nginx_smooth_sequence)
{
    uint32_t w[3] = {5, 1, 1};
    struct spec sp = {.n = 3, .w = w};
    struct bal_snapshot *s = snap_spec(&sp);
    bool phases[7] = {false};
    int nphases = 0;

    for (uint64_t seed = 0; seed < 16; seed++) {
        struct bal_lb lb = {0};
        char seq[71];
        int run = 0, phase;

        bal_lb_init(&lb, &s->clusters[0], seed);
        for (int i = 0; i < 70; i++) {
            seq[i] = (char)('a' + pick(s, &lb));
            run = i > 0 && seq[i] == seq[i - 1] ? run + 1 : 1;
            cr_assert(run <= (int)w[seq[i] - 'a'], "seed %lu: a run of %d '%c' in %.*s",
                      (unsigned long)seed, run, seq[i], i + 1, seq);
        }
        seq[70] = '\0';
        phase = nginx_phase(seq, 70);
        cr_assert_geq(phase, 0, "seed %lu: %s is not nginx's aabacaa cycle", (unsigned long)seed,
                      seq);
        nphases += !phases[phase];
        phases[phase] = true;
        bal_lb_deinit(&lb);
    }
    /* Workers start at different points of the cycle, not all on 'a' at once. */
    cr_assert_geq(nphases, 3, "only %d distinct starting phases in 16 workers", nphases);
    bal_snapshot_unref(s);
}

Test(bal, round_robin_weighted_distribution)
{
    uint32_t w[4] = {3, 1, 10, 6};
    struct spec sp = {.n = 4, .w = w};
    struct bal_snapshot *s = snap_spec(&sp);
    struct bal_lb lb = {0};
    int count[4] = {0};

    bal_lb_init(&lb, &s->clusters[0], 99);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    /* 10,000 picks are 500 whole cycles of 20: exact */
    cr_assert_eq(count[0], 1500);
    cr_assert_eq(count[1], 500);
    cr_assert_eq(count[2], 5000);
    cr_assert_eq(count[3], 3000);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, round_robin_keeps_its_place_across_snapshots)
{
    uint32_t w[3] = {5, 1, 1};
    struct spec sp = {.n = 3, .w = w};
    struct bal_snapshot *s1 = snap_spec(&sp), *s2 = snap_spec(&sp);
    struct bal_lb lb = {0};
    char seq[71];

    bal_lb_init(&lb, &s1->clusters[0], 5);
    for (int i = 0; i < 10; i++)
        seq[i] = (char)('a' + pick(s1, &lb));
    /* a new snapshot with the same endpoints (e.g. another cluster's health
     * changed) continues the cycle where it was */
    bal_lb_update(&lb, &s2->clusters[0]);
    for (int i = 10; i < 70; i++)
        seq[i] = (char)('a' + pick(s2, &lb));
    seq[70] = '\0';
    cr_assert_geq(nginx_phase(seq, 70), 0, "%s", seq);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s1);
    bal_snapshot_unref(s2);
}

/* ---- random ---- */

Test(bal, random_uniform_and_weighted)
{
    uint32_t w[4] = {1, 2, 3, 4};
    struct spec eq = {.n = 4}, wt = {.n = 4, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[4] = {0};

    clusters[0].policy = CONF_POLICY_RANDOM;
    s = snap_spec(&eq);
    bal_lb_init(&lb, &s->clusters[0], 11);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    for (int i = 0; i < 4; i++)
        assert_share(count[i], 10000, 0.25, 0.02, "uniform");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);

    memset(count, 0, sizeof(count));
    s = snap_spec(&wt);
    bal_lb_init(&lb, &s->clusters[0], 12);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    for (int i = 0; i < 4; i++)
        assert_share(count[i], 10000, w[i] / 10.0, 0.02, "weighted");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, random_with_a_refused_endpoint_stays_weighted)
{
    uint32_t w[3] = {1, 2, 3};
    struct spec sp = {.n = 3, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int modes[3] = {BAL_SKIP_NO, BAL_SKIP_NO, BAL_SKIP_HARD};
    int count[3] = {0};

    clusters[0].policy = CONF_POLICY_RANDOM;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 13);
    for (int i = 0; i < 10000; i++)
        count[pick_at(s, &lb, skip_ids, modes, NULL, 0)]++;
    cr_assert_eq(count[2], 0);
    assert_share(count[1], 10000, 2.0 / 3, 0.02, "weight 2 of the accepted 3");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

/* ---- least_request ---- */

Test(bal, least_request_idle_is_uniform_or_weighted)
{
    uint32_t w[2] = {1, 3};
    struct spec eq = {.n = 4}, wt = {.n = 2, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[4] = {0};

    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    s = snap_spec(&eq);
    bal_lb_init(&lb, &s->clusters[0], 21);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++; /* no attempt ever starts: all tie */
    for (int i = 0; i < 4; i++)
        assert_share(count[i], 10000, 0.25, 0.02, "idle, equal weights");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);

    memset(count, 0, sizeof(count));
    s = snap_spec(&wt);
    bal_lb_init(&lb, &s->clusters[0], 22);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    assert_share(count[1], 10000, 0.75, 0.02, "idle, weights 1:3");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, least_request_prefers_the_less_loaded)
{
    struct spec sp = {.n = 3};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[3] = {0};

    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 31);
    for (int i = 0; i < 10; i++)
        bal_attempt_start(&lb, 0);
    for (int i = 0; i < 5; i++)
        bal_attempt_start(&lb, 1);
    /* two distinct draws of three: the most loaded never wins; the idle one
     * wins whenever drawn (2/3 of pairs), the middle one the rest */
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    cr_assert_eq(count[0], 0);
    assert_share(count[2], 10000, 2.0 / 3, 0.02, "idle endpoint");
    /* the counts follow attempt ends */
    for (int i = 0; i < 10; i++)
        bal_attempt_end(&lb, 0);
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 3000; i++)
        count[pick(s, &lb)]++;
    cr_assert_gt(count[0], 0);
    cr_assert_eq(count[1], 0, "now endpoint 1 is the most loaded");
    /* an end without a start (a reset lb) never drives a count below zero */
    for (int i = 0; i < 3; i++)
        bal_attempt_end(&lb, 2);
    bal_attempt_start(&lb, 2);
    memset(count, 0, sizeof(count));
    for (int i = 0; i < 3000; i++)
        count[pick(s, &lb)]++;
    /* loads 0, 5, 1 (not 0, 5, 2^32 - 2): 2 wins the pair (1, 2) */
    cr_assert_eq(count[1], 0);
    assert_share(count[2], 3000, 1.0 / 3, 0.03, "one attempt");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, least_request_choices_all_is_full_least_request)
{
    struct spec sp = {.n = 5};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};

    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    clusters[0].least_request_choices = 5;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 41);
    /* every pick goes to a least loaded endpoint: five picks with no end in
     * between land on five different endpoints */
    for (int round = 0; round < 200; round++) {
        bool used[5] = {false};

        for (int i = 0; i < 5; i++) {
            uint32_t id = id_at(s, pick(s, &lb));

            cr_assert_not(used[id], "round %d: endpoint %u picked twice", round, id);
            used[id] = true;
            bal_attempt_start(&lb, id);
        }
        for (uint32_t id = 0; id < 5; id++)
            bal_attempt_end(&lb, id);
    }
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, least_request_unequal_weights_use_weight_over_active_plus_one)
{
    uint32_t w[3] = {1, 1, 2};
    struct spec sp = {.n = 3, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[3] = {0};

    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 51);
    for (int i = 0; i < 3; i++)
        bal_attempt_start(&lb, 2);
    /* effective weights 1/1, 1/1, 2/4: endpoint 2 gets 0.5 / 2.5 */
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    assert_share(count[2], 10000, 0.2, 0.02, "loaded heavy endpoint");
    assert_share(count[0], 10000, 0.4, 0.02, "idle light endpoint");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, least_request_counts_follow_endpoint_ids_across_snapshots)
{
    uint32_t ids2[3] = {2, 1, 3}; /* id 0 left, id 3 joined, order changed */
    struct spec sp1 = {.n = 3}, sp2 = {.n = 3, .ids = ids2};
    struct bal_snapshot *s1, *s2, *s3;
    struct bal_lb lb = {0};

    clusters[0].policy = CONF_POLICY_LEAST_REQUEST;
    s1 = snap_spec(&sp1);
    s2 = snap_spec(&sp2);
    bal_lb_init(&lb, &s1->clusters[0], 61);
    for (int i = 0; i < 5; i++)
        bal_attempt_start(&lb, 1);
    bal_lb_update(&lb, &s2->clusters[0]);
    for (int i = 0; i < 3000; i++)
        cr_assert_neq(id_at(s2, pick(s2, &lb)), 1, "id 1 kept its 5 attempts");
    for (int i = 0; i < 5; i++)
        bal_attempt_end(&lb, 1);
    {
        int n1 = 0;

        for (int i = 0; i < 3000; i++)
            n1 += id_at(s2, pick(s2, &lb)) == 1;
        cr_assert_gt(n1, 0);
    }
    /* a reload that changes the policy starts afresh */
    clusters[0].policy = CONF_POLICY_ROUND_ROBIN;
    s3 = snap_spec(&sp2);
    bal_lb_update(&lb, &s3->clusters[0]);
    bal_attempt_end(&lb, 1); /* an attempt started under the old policy */
    for (int i = 0; i < 30; i++)
        cr_assert(pick(s3, &lb) >= 0);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s1);
    bal_snapshot_unref(s2);
    bal_snapshot_unref(s3);
}

/* ---- ring_hash ---- */

#define NKEYS 10000

/* Endpoint id of every key "user-<i>". */
static void map_keys(const struct bal_snapshot *s, struct bal_lb *lb, uint32_t *out)
{
    char key[32];

    for (int i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof(key), "user-%d", i);
        out[i] = id_at(s, pick_at(s, lb, NULL, NULL, key, 0));
    }
}

static uint32_t before[NKEYS], after[NKEYS];

Test(bal, ring_hash_same_key_same_endpoint_and_spread)
{
    struct spec sp = {.n = 4};
    struct bal_snapshot *s;
    struct bal_lb lb1 = {0}, lb2 = {0};
    int count[4] = {0};

    clusters[0].policy = CONF_POLICY_RING_HASH;
    s = snap_spec(&sp);
    cr_assert_not_null(s->clusters[0].ring);
    bal_lb_init(&lb1, &s->clusters[0], 1);
    bal_lb_init(&lb2, &s->clusters[0], 2); /* another worker */
    map_keys(s, &lb1, before);
    map_keys(s, &lb2, after);
    for (int i = 0; i < NKEYS; i++) {
        cr_assert_eq(before[i], after[i], "key %d: %u on one worker, %u on another", i, before[i],
                     after[i]);
        count[before[i]]++;
    }
    for (int i = 0; i < 4; i++)
        assert_share(count[i], NKEYS, 0.25, 0.05, "keys per endpoint");
    bal_lb_deinit(&lb1);
    bal_lb_deinit(&lb2);
    bal_snapshot_unref(s);
}

Test(bal, ring_hash_weights_and_ring_size)
{
    uint32_t w[2] = {1, 3};
    struct spec sp = {.n = 2, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[2] = {0};

    clusters[0].policy = CONF_POLICY_RING_HASH;
    clusters[0].ring_min_size = 4096;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 1);
    map_keys(s, &lb, before);
    for (int i = 0; i < NKEYS; i++)
        count[before[i]]++;
    assert_share(count[1], NKEYS, 0.75, 0.04, "weight 3 of 4");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

Test(bal, ring_hash_without_key_is_weighted_random)
{
    uint32_t w[3] = {1, 1, 2};
    struct spec sp = {.n = 3, .w = w};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int count[3] = {0};

    clusters[0].policy = CONF_POLICY_RING_HASH;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 71);
    for (int i = 0; i < 10000; i++)
        count[pick(s, &lb)]++;
    assert_share(count[0], 10000, 0.25, 0.02, "no key");
    assert_share(count[2], 10000, 0.5, 0.02, "no key, weight 2");
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

/* Keys that moved from |from| to another endpoint must be all of |from|'s and
 * nothing else; returns how many moved. */
static int moved_keys(uint32_t from, bool only_own)
{
    int moved = 0;

    for (int i = 0; i < NKEYS; i++) {
        if (before[i] == after[i])
            continue;
        moved++;
        if (only_own)
            cr_assert_eq(before[i], from, "key %d moved from %u to %u", i, before[i], after[i]);
    }
    for (int i = 0; i < NKEYS; i++) {
        if (before[i] == from)
            cr_assert_neq(after[i], from, "key %d stayed on the endpoint that left", i);
    }
    return moved;
}

Test(bal, ring_hash_endpoint_leaving_rotation_moves_only_its_keys)
{
    for (size_t n = 2; n <= 9; n++) {
        bool rot[9] = {true, true, true, true, true, true, true, true, true};
        struct spec sp = {.n = n, .rot = rot};
        struct bal_snapshot *s1, *s2;
        struct bal_lb lb = {0};
        uint32_t leaving = (uint32_t)(n / 2);
        int moved;

        clusters[0].policy = CONF_POLICY_RING_HASH;
        s1 = snap_spec(&sp);
        rot[leaving] = false;
        s2 = snap_spec(&sp);
        bal_lb_init(&lb, &s1->clusters[0], 1);
        map_keys(s1, &lb, before);
        bal_lb_update(&lb, &s2->clusters[0]);
        map_keys(s2, &lb, after);
        moved = moved_keys(leaving, true);
        cr_assert_leq(moved, NKEYS / (int)n + NKEYS / 20, "%zu endpoints: %d keys moved", n, moved);
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s1);
        bal_snapshot_unref(s2);
    }
}

/* Endpoint ids before -> after when the endpoints |gone| leave the cluster
 * (DNS or a reload); only the keys of |gone| may move. */
static void removal_case(size_t n, const uint32_t *w, uint32_t gone)
{
    uint32_t ids[9], w2[9], ids2[9];
    struct spec sp1 = {.n = n, .ids = ids, .w = w}, sp2 = {.n = n - 1, .ids = ids2, .w = w2};
    struct bal_snapshot *s1, *s2;
    struct bal_lb lb = {0};
    size_t k = 0;
    int moved, wsum = 0;

    for (size_t i = 0; i < n; i++) {
        ids[i] = (uint32_t)i;
        wsum += (int)w[i];
        if (i == gone)
            continue;
        ids2[k] = (uint32_t)i;
        w2[k++] = w[i];
    }
    s1 = snap_spec(&sp1);
    s2 = snap_spec(&sp2);
    bal_lb_init(&lb, &s1->clusters[0], 1);
    map_keys(s1, &lb, before);
    bal_lb_update(&lb, &s2->clusters[0]);
    map_keys(s2, &lb, after);
    moved = moved_keys(gone, true);
    /* its share (1/N with equal weights) + 5 % */
    cr_assert_leq(moved, NKEYS * (int)w[gone] / wsum + NKEYS / 20, "%zu endpoints: %d keys moved",
                  n, moved);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s1);
    bal_snapshot_unref(s2);
}

Test(bal, ring_hash_endpoint_removed_moves_only_its_keys)
{
    static const uint32_t ones[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    static const uint32_t mixed[5] = {2, 1, 3, 3, 1};

    clusters[0].policy = CONF_POLICY_RING_HASH;
    /* 4 -> 3 is the integration test's reload */
    for (size_t n = 2; n <= 9; n++)
        removal_case(n, ones, (uint32_t)(n - 1) / 2);
    /* weights: any endpoint but the only heaviest one */
    removal_case(5, mixed, 0);
    removal_case(5, mixed, 1);
    removal_case(5, mixed, 2); /* one of two heaviest */
}

Test(bal, ring_hash_depends_on_addresses_not_ids_or_order)
{
    uint32_t ids_a[3] = {0, 1, 2}, ports_a[3] = {10, 11, 12};
    uint32_t ids_b[3] = {7, 5, 6}, ports_b[3] = {12, 10, 11}; /* another process's view */
    struct spec sa = {.n = 3, .ids = ids_a, .ports = ports_a};
    struct spec sb = {.n = 3, .ids = ids_b, .ports = ports_b};
    struct bal_snapshot *s1, *s2;
    struct bal_lb lb1 = {0}, lb2 = {0};
    char key[32];

    clusters[0].policy = CONF_POLICY_RING_HASH;
    s1 = snap_spec(&sa);
    s2 = snap_spec(&sb);
    bal_lb_init(&lb1, &s1->clusters[0], 1);
    bal_lb_init(&lb2, &s2->clusters[0], 2);
    for (int i = 0; i < 2000; i++) {
        int a, b;

        snprintf(key, sizeof(key), "session-%d", i);
        a = pick_at(s1, &lb1, NULL, NULL, key, 0);
        b = pick_at(s2, &lb2, NULL, NULL, key, 0);
        cr_assert_str_eq(s1->clusters[0].endpoints[a].addr_str,
                         s2->clusters[0].endpoints[b].addr_str, "key %s", key);
    }
    bal_lb_deinit(&lb1);
    bal_lb_deinit(&lb2);
    bal_snapshot_unref(s1);
    bal_snapshot_unref(s2);
}

Test(bal, ring_hash_soft_skip_moves_the_call_not_the_key)
{
    struct spec sp = {.n = 3};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int modes[3] = {0, 0, 0};
    int home, other;

    clusters[0].policy = CONF_POLICY_RING_HASH;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], 1);
    home = pick_at(s, &lb, NULL, NULL, "alice", 0);
    modes[home] = BAL_SKIP_SOFT; /* e.g. a connect failure this worker just saw */
    other = pick_at(s, &lb, skip_ids, modes, "alice", 0);
    cr_assert_neq(other, home);
    cr_assert_eq(pick_at(s, &lb, skip_ids, modes, "alice", 0), other, "the next point, always");
    cr_assert_eq(pick_at(s, &lb, NULL, NULL, "alice", 0), home);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

/* ---- slow_start ---- */

/* Share of endpoint 1 (entered the rotation at 1000 ms, weight 1, next to an
 * old endpoint of weight 1) over |n| picks at |now|. */
static double slow_share(enum conf_policy policy, uint64_t now, int n)
{
    uint64_t since[2] = {0, 1000};
    struct spec sp = {.n = 2, .since = since};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};
    int c1 = 0;

    clusters[0].policy = policy;
    clusters[0].slow_start_ms = 10000;
    s = snap_spec(&sp);
    bal_lb_init(&lb, &s->clusters[0], now);
    for (int i = 0; i < n; i++)
        c1 += pick_at(s, &lb, NULL, NULL, NULL, now) == 1;
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
    return (double)c1 / n;
}

Test(bal, slow_start_ramps_linearly_from_ten_percent)
{
    static const enum conf_policy pol[] = {CONF_POLICY_ROUND_ROBIN, CONF_POLICY_LEAST_REQUEST};

    for (size_t p = 0; p < 2; p++) {
        double prev = 0;

        for (uint64_t t = 0; t <= 12000; t += 1000) {
            double f = 0.1 + 0.9 * (double)(t < 10000 ? t : 10000) / 10000;
            double want = f / (1 + f); /* its weight against the old endpoint's 1 */
            double got = slow_share(pol[p], 1000 + t, 10000);

            cr_assert(absd(got - want) <= (p == 0 ? 0.002 : 0.02),
                      "%s at %lu ms: share %.4f, expected %.4f", pname(pol[p]), (unsigned long)t,
                      got, want);
            cr_assert(got >= prev - 0.01, "the ramp never goes down");
            prev = got;
        }
        /* before it even entered (a clock behind): the 10 % floor */
        cr_assert(absd(slow_share(pol[p], 10, 10000) - 0.1 / 1.1) <= 0.02);
    }
    /* slow_start off: equal shares at once */
    clusters[0].slow_start_ms = 0;
    {
        uint64_t since[2] = {0, 1000};
        struct spec sp = {.n = 2, .since = since};
        struct bal_snapshot *s = snap_spec(&sp);
        struct bal_lb lb = {0};
        int c1 = 0;

        bal_lb_init(&lb, &s->clusters[0], 1);
        for (int i = 0; i < 1000; i++)
            c1 += pick_at(s, &lb, NULL, NULL, NULL, 1000) == 1;
        cr_assert_eq(c1, 500);
        bal_lb_deinit(&lb);
        bal_snapshot_unref(s);
    }
}

/* ---- pick_first on synthetic snapshots (no process-wide choice) ---- */

Test(bal, pick_first_without_a_choice_takes_the_first_in_rotation)
{
    bool rot[3] = {false, true, true};
    struct spec sp = {.n = 3, .rot = rot};
    struct bal_snapshot *s;
    struct bal_lb lb = {0};

    clusters[0].policy = CONF_POLICY_PICK_FIRST;
    s = snap_spec(&sp);
    cr_assert_eq(s->clusters[0].active, -1);
    bal_lb_init(&lb, &s->clusters[0], 1);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pick(s, &lb), 1);
    bal_lb_deinit(&lb);
    bal_snapshot_unref(s);
}

static void *ref_unref_loop(void *arg)
{
    struct bal_snapshot *s = arg;

    for (int i = 0; i < 100000; i++) {
        bal_snapshot_ref(s);
        bal_snapshot_unref(s);
    }
    bal_snapshot_unref(s); /* the reference handed to this thread */
    return NULL;
}

Test(bal, snapshot_refcount_across_threads)
{
    struct bal_snapshot *s = snap_with(0, 3, NULL);
    pthread_t th[4];

    for (int i = 0; i < 4; i++) {
        bal_snapshot_ref(s);
        pthread_create(&th[i], NULL, ref_unref_loop, s);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&s->refs), 1);
    bal_snapshot_unref(s); /* the last one frees; ASan reports a leak or a double free */
}

Test(bal, registry_ids_are_stable)
{
    struct bal_registry *r = bal_registry_new();
    struct bal_endpoint a = ep(0, true), b = ep(1, true);

    cr_assert_eq(bal_registry_id(r, (struct sockaddr *)&a.addr, a.addrlen), 0);
    cr_assert_eq(bal_registry_id(r, (struct sockaddr *)&b.addr, b.addrlen), 1);
    cr_assert_eq(bal_registry_id(r, (struct sockaddr *)&a.addr, a.addrlen), 0);
    bal_registry_free(r);
}

Test(bal, addr_str_formats_v4_and_v6)
{
    struct sockaddr_in6 a6 = {.sin6_family = AF_INET6, .sin6_port = htons(50051)};
    struct bal_endpoint a = ep(51, true);
    char buf[BAL_ADDRSTRLEN];

    inet_pton(AF_INET6, "::1", &a6.sin6_addr);
    cr_assert_str_eq(bal_addr_str((struct sockaddr *)&a6, buf, sizeof(buf)), "[::1]:50051");
    cr_assert_str_eq(a.addr_str, "127.0.0.1:50051");
}

/* ---- endpoint sets ---- */

static struct conf_target tgts[2];
static struct conf_cluster ecl[1];
static struct conf econf;
static char *eroutes[] = {"/"};

static struct sockaddr_storage v4(const char *ip, uint16_t port, socklen_t *len)
{
    struct sockaddr_storage ss = {0};
    struct sockaddr_in *a = (struct sockaddr_in *)&ss;

    a->sin_family = AF_INET;
    a->sin_port = htons(port);
    inet_pton(AF_INET, ip, &a->sin_addr);
    *len = sizeof(*a);
    return ss;
}

/* Cluster "svc": target 0 is the literal 10.0.0.1:50051, target 1 the name svc.test:50051. */
static void epset_setup(void)
{
    memset(tgts, 0, sizeof(tgts));
    tgts[0].spec = "10.0.0.1:50051";
    tgts[0].is_literal = true;
    tgts[0].addr = v4("10.0.0.1", 50051, &tgts[0].addrlen);
    tgts[1].spec = "svc.test:50051";
    memset(ecl, 0, sizeof(ecl));
    ecl[0].name = "svc";
    ecl[0].targets = tgts;
    ecl[0].ntargets = 2;
    ecl[0].routes = eroutes;
    ecl[0].nroutes = 1;
    ecl[0].health_check = true;
    memset(&econf, 0, sizeof(econf));
    econf.clusters = ecl;
    econf.nclusters = 1;
}

static int adds, dels;

static void count_add(struct bal_ep *ep, void *arg)
{
    (void)ep;
    (void)arg;
    adds++;
}

static void count_del(struct bal_ep *ep, void *arg)
{
    (void)ep;
    (void)arg;
    dels++;
}

TestSuite(epset, .init = epset_setup, .timeout = 30);

Test(epset, literals_join_at_once_names_wait)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(&econf, reg);
    struct bal_snapshot *snap;

    cr_assert_eq(bal_epset_count(s), 1);
    cr_assert(bal_epset_target_resolved(s, 0, 0));
    cr_assert_not(bal_epset_target_resolved(s, 0, 1));
    /* health_check on, health_initial unhealthy: out of rotation until checked */
    cr_assert_not(bal_epset_at(s, 0)->healthy);
    snap = bal_epset_snapshot(s, 1);
    cr_assert_eq(snap->clusters[0].nendpoints, 1);
    cr_assert_eq(snap->clusters[0].nrotation, 0);
    cr_assert_str_eq(snap->clusters[0].unresolved, "svc.test:50051");
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, initial_state_follows_config)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;

    ecl[0].health_initial_healthy = true;
    s = bal_epset_new(&econf, reg);
    cr_assert(bal_epset_at(s, 0)->healthy);
    bal_epset_free(s);
    ecl[0].health_initial_healthy = false;
    ecl[0].health_check = false;
    s = bal_epset_new(&econf, reg);
    cr_assert(bal_epset_at(s, 0)->healthy);
    cr_assert_str_eq(bal_epset_at(s, 0)->reason, "health checking off");
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, dns_answers_are_diffed)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(&econf, reg);
    struct sockaddr_storage a[3];
    socklen_t l[3];
    struct bal_ep *kept;
    uint32_t kept_id;

    adds = dels = 0;
    bal_epset_observe(s, count_add, count_del, NULL);
    cr_assert_eq(adds, 1); /* the literal, reported when observing starts */
    a[0] = v4("127.0.0.2", 50051, &l[0]);
    a[1] = v4("127.0.0.3", 50051, &l[1]);
    a[2] = v4("127.0.0.4", 50051, &l[2]);
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, a, l, 3), 3);
    cr_assert_eq(bal_epset_count(s), 4);
    cr_assert_eq(adds, 4);
    /* order: target 0 first, then target 1's addresses in answer order */
    cr_assert_str_eq(bal_epset_at(s, 0)->addr_str, "10.0.0.1:50051");
    cr_assert_str_eq(bal_epset_at(s, 2)->addr_str, "127.0.0.3:50051");
    kept = bal_epset_at(s, 2);
    kept_id = kept->id;
    cr_assert(bal_epset_set_healthy(s, kept, true, "SERVING", 42));
    cr_assert_not(bal_epset_set_healthy(s, kept, true, "SERVING", 43), "no change, no rebuild");
    /* the same answer again changes nothing */
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, a, l, 3), 0);
    /* 127.0.0.2 vanishes: one removal; the others keep their endpoint and state */
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, &a[1], &l[1], 2), 1);
    cr_assert_eq(dels, 1);
    cr_assert_eq(bal_epset_count(s), 3);
    cr_assert_eq(bal_epset_at(s, 1), kept, "unchanged address keeps its endpoint object");
    cr_assert(kept->healthy);
    cr_assert_eq(kept->since_ms, 42);
    /* it comes back: a new endpoint with the initial state, and the old identity */
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, a, l, 3), 1);
    cr_assert_eq(bal_epset_count(s), 4);
    cr_assert_not(bal_epset_at(s, 3)->healthy);
    cr_assert_eq(bal_epset_at(s, 1)->id, kept_id);
    /* an empty answer passed on removes them all (the resolver decides whether to) */
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, a, l, 0), 3);
    cr_assert_eq(bal_epset_count(s), 1);
    bal_epset_free(s);
    cr_assert_eq(dels, 1 + 3 + 1);
    bal_registry_free(reg);
}

Test(epset, same_address_twice_in_a_cluster_is_one_endpoint)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(&econf, reg);

    /* the name resolves to the literal's address */
    cr_assert_eq(bal_epset_set_addrs(s, 0, 1, &tgts[0].addr, &tgts[0].addrlen, 1), 0);
    cr_assert_eq(bal_epset_count(s), 1);
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, panic_threshold_routes_to_all)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;
    struct bal_snapshot *snap;
    struct sockaddr_storage a[3];
    socklen_t l[3];

    ecl[0].panic_threshold = 50;
    s = bal_epset_new(&econf, reg);
    a[0] = v4("127.0.0.2", 50051, &l[0]);
    a[1] = v4("127.0.0.3", 50051, &l[1]);
    a[2] = v4("127.0.0.4", 50051, &l[2]);
    bal_epset_set_addrs(s, 0, 1, a, l, 3);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 1);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), true, "SERVING", 1);
    snap = bal_epset_snapshot(s, 1); /* 2 of 4 healthy = 50%: not below */
    cr_assert_not(snap->clusters[0].panic);
    cr_assert_eq(snap->clusters[0].nrotation, 2);
    bal_snapshot_unref(snap);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), false, "NOT_SERVING", 2);
    snap = bal_epset_snapshot(s, 2); /* 1 of 4 = 25% < 50%: panic, all in rotation */
    cr_assert(snap->clusters[0].panic);
    cr_assert_eq(snap->clusters[0].nrotation, 4);
    bal_snapshot_unref(snap);
    ecl[0].panic_threshold = 0;
    snap = bal_epset_snapshot(s, 3);
    cr_assert_not(snap->clusters[0].panic);
    cr_assert_eq(snap->clusters[0].nrotation, 1);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}

/* ---- pick_first: one choice for the whole process ---- */

static struct conf_target pf_tgts[3];
static struct conf_cluster pf_cl[1];
static struct conf pf_conf;

/* Cluster "pf": three literal targets 10.0.0.1..3:50051, initially healthy. */
static void pf_setup(bool failback)
{
    static const char *const specs[] = {"10.0.0.1:50051", "10.0.0.2:50051", "10.0.0.3:50051"};

    memset(pf_tgts, 0, sizeof(pf_tgts));
    for (int i = 0; i < 3; i++) {
        pf_tgts[i].spec = (char *)specs[i];
        pf_tgts[i].is_literal = true;
        pf_tgts[i].weight = 1;
        pf_tgts[i].addr = v4(i == 0   ? "10.0.0.1"
                             : i == 1 ? "10.0.0.2"
                                      : "10.0.0.3",
                             50051, &pf_tgts[i].addrlen);
    }
    memset(pf_cl, 0, sizeof(pf_cl));
    pf_cl[0].name = "pf";
    pf_cl[0].targets = pf_tgts;
    pf_cl[0].ntargets = 3;
    pf_cl[0].routes = eroutes;
    pf_cl[0].nroutes = 1;
    pf_cl[0].policy = CONF_POLICY_PICK_FIRST;
    pf_cl[0].pick_first_failback = failback;
    pf_cl[0].health_check = true;
    pf_cl[0].health_initial_healthy = true;
    memset(&pf_conf, 0, sizeof(pf_conf));
    pf_conf.clusters = pf_cl;
    pf_conf.nclusters = 1;
}

/* Two workers pick from a new snapshot of |s|; both must land on |want_addr|
 * (NULL: no endpoint). Returns the snapshot's active index. */
static int pf_round(struct bal_epset *s, struct bal_snapshot **snap, struct bal_lb *w,
                    const char *want_addr)
{
    struct bal_snapshot *n = bal_epset_snapshot(s, 1);
    const struct bal_cluster *c = &n->clusters[0];

    for (int k = 0; k < 2; k++) {
        bal_lb_update(&w[k], c);
        for (int i = 0; i < 20; i++) {
            struct bal_pick_req r = {0};
            int idx = bal_pick(c, &w[k], &r);

            if (want_addr == NULL) {
                cr_assert_eq(idx, BAL_ENOENDPOINT);
                continue;
            }
            cr_assert_geq(idx, 0);
            cr_assert_str_eq(c->endpoints[idx].addr_str, want_addr, "worker %d", k);
        }
    }
    bal_snapshot_unref(*snap);
    *snap = n;
    return c->active;
}

Test(epset, pick_first_one_choice_across_rebuilds_without_failback)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;
    struct bal_snapshot *snap = NULL;
    struct bal_lb w[2] = {{0}, {0}};
    uint32_t id;

    pf_setup(false);
    s = bal_epset_new(&pf_conf, reg);
    cr_assert_not(bal_epset_pick_first(s, 0, &id), "no choice before a snapshot");
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.1:50051"), 0);
    cr_assert(bal_epset_pick_first(s, 0, &id));
    cr_assert_eq(id, bal_epset_at(s, 0)->id);
    /* the chosen one fails: the next in target order, for everyone */
    bal_epset_set_healthy(s, bal_epset_at(s, 0), false, "NOT_SERVING", 10);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    /* it comes back: we stay (gRPC pick_first), also over more rebuilds */
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 20);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    /* an unrelated endpoint fails and returns: no change */
    bal_epset_set_healthy(s, bal_epset_at(s, 2), false, "NOT_SERVING", 30);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    bal_epset_set_healthy(s, bal_epset_at(s, 2), true, "SERVING", 31);
    /* the current one fails: the first in rotation again */
    bal_epset_set_healthy(s, bal_epset_at(s, 1), false, "NOT_SERVING", 40);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.1:50051"), 0);
    /* all fail: nothing; the first to return is chosen */
    bal_epset_set_healthy(s, bal_epset_at(s, 0), false, "NOT_SERVING", 50);
    bal_epset_set_healthy(s, bal_epset_at(s, 2), false, "NOT_SERVING", 50);
    cr_assert_eq(pf_round(s, &snap, w, NULL), -1);
    bal_epset_set_healthy(s, bal_epset_at(s, 2), true, "SERVING", 60);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.3:50051"), 2);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 70);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.3:50051"), 2);
    bal_lb_deinit(&w[0]);
    bal_lb_deinit(&w[1]);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, pick_first_failback_returns_to_the_first)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;
    struct bal_snapshot *snap = NULL;
    struct bal_lb w[2] = {{0}, {0}};

    pf_setup(true);
    s = bal_epset_new(&pf_conf, reg);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.1:50051"), 0);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), false, "NOT_SERVING", 10);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), false, "NOT_SERVING", 11);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.3:50051"), 2);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), true, "SERVING", 12);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 20);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.1:50051"), 0);
    bal_lb_deinit(&w[0]);
    bal_lb_deinit(&w[1]);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, pick_first_refused_choice_uses_the_next_for_that_call_only)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;
    struct bal_snapshot *snap = NULL;
    struct bal_lb w[2] = {{0}, {0}};
    int modes[8] = {0};
    uint32_t id0, id1;

    pf_setup(false);
    s = bal_epset_new(&pf_conf, reg);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), false, "NOT_SERVING", 10);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    id0 = bal_epset_at(s, 0)->id;
    id1 = bal_epset_at(s, 1)->id;
    cr_assert(id0 < 8 && id1 < 8);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 20);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    {
        const struct bal_cluster *c = &snap->clusters[0];
        struct bal_pick_req r = {.skip = skip_ids, .arg = modes};
        struct bal_pick_req plain = {0};

        /* this worker just failed to connect to the choice: the next in order
         * after it (10.0.0.3), not back to the first */
        modes[id1] = BAL_SKIP_SOFT;
        cr_assert_str_eq(c->endpoints[bal_pick(c, &w[0], &r)].addr_str, "10.0.0.3:50051");
        modes[bal_epset_at(s, 2)->id] = BAL_SKIP_HARD;
        cr_assert_str_eq(c->endpoints[bal_pick(c, &w[0], &r)].addr_str, "10.0.0.1:50051");
        /* the next call goes to the choice again */
        cr_assert_str_eq(c->endpoints[bal_pick(c, &w[0], &plain)].addr_str, "10.0.0.2:50051");
        cr_assert_eq(snap->clusters[0].active, 1, "the choice itself did not move");
    }
    bal_lb_deinit(&w[0]);
    bal_lb_deinit(&w[1]);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}

Test(epset, pick_first_choice_survives_a_reload)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s, *s2;
    struct bal_snapshot *snap = NULL;
    struct bal_lb w[2] = {{0}, {0}};
    struct conf_cluster other = {0};

    pf_setup(false);
    s = bal_epset_new(&pf_conf, reg);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), false, "NOT_SERVING", 10);
    cr_assert_eq(pf_round(s, &snap, w, "10.0.0.2:50051"), 1);
    bal_epset_set_healthy(s, bal_epset_at(s, 0), true, "SERVING", 20);
    /* SIGHUP with the same file: a new set learns the old choice */
    s2 = bal_epset_new(&pf_conf, reg);
    bal_epset_carry(s2, s);
    bal_epset_free(s);
    cr_assert_eq(pf_round(s2, &snap, w, "10.0.0.2:50051"), 1);
    bal_epset_free(s2);
    /* a cluster that was not pick_first before chooses afresh */
    other = pf_cl[0];
    other.policy = CONF_POLICY_ROUND_ROBIN;
    {
        struct conf oc = pf_conf;
        struct bal_epset *s3, *s4;

        oc.clusters = &other;
        s3 = bal_epset_new(&oc, reg);
        bal_snapshot_unref(bal_epset_snapshot(s3, 1));
        s4 = bal_epset_new(&pf_conf, reg);
        bal_epset_carry(s4, s3);
        cr_assert_eq(pf_round(s4, &snap, w, "10.0.0.1:50051"), 0);
        bal_epset_free(s3);
        bal_epset_free(s4);
    }
    bal_lb_deinit(&w[0]);
    bal_lb_deinit(&w[1]);
    bal_snapshot_unref(snap);
    bal_registry_free(reg);
}

Test(epset, weights_and_rotation_time_reach_the_snapshot)
{
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s;
    struct bal_snapshot *snap;
    struct sockaddr_storage a[2];
    socklen_t l[2];

    tgts[0].weight = 7;
    tgts[1].weight = 3;
    ecl[0].health_check = true;
    s = bal_epset_new(&econf, reg);
    a[0] = v4("127.0.0.2", 50051, &l[0]);
    a[1] = v4("127.0.0.3", 50051, &l[1]);
    bal_epset_set_addrs(s, 0, 1, a, l, 2);
    cr_assert_eq(bal_epset_at(s, 0)->weight, 7);
    cr_assert_eq(bal_epset_at(s, 1)->weight, 3, "every address of a name has its weight");
    cr_assert_eq(bal_epset_at(s, 2)->weight, 3);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), true, "SERVING", 12345);
    snap = bal_epset_snapshot(s, 1);
    cr_assert_eq(snap->clusters[0].endpoints[0].weight, 7);
    cr_assert_eq(snap->clusters[0].endpoints[1].weight, 3);
    cr_assert_eq(snap->clusters[0].endpoints[1].since_ms, 12345, "entered the rotation then");
    cr_assert_eq(snap->clusters[0].endpoints[0].since_ms, 0, "not in rotation");
    bal_snapshot_unref(snap);
    /* out and back in: the ramp starts again */
    bal_epset_set_healthy(s, bal_epset_at(s, 1), false, "NOT_SERVING", 20000);
    bal_epset_set_healthy(s, bal_epset_at(s, 1), true, "SERVING", 30000);
    snap = bal_epset_snapshot(s, 2);
    cr_assert_eq(snap->clusters[0].endpoints[1].since_ms, 30000);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    /* health checking off: in rotation from the start, since it was added */
    ecl[0].health_check = false;
    tgts[0].weight = 0; /* a conf built by hand: 0 counts as 1 */
    s = bal_epset_new(&econf, reg);
    cr_assert_eq(bal_epset_at(s, 0)->weight, 1);
    snap = bal_epset_snapshot(s, 3);
    cr_assert_gt(snap->clusters[0].endpoints[0].since_ms, 0);
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
}
