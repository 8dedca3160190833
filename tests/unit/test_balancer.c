/* Unit tests of the balancer: routing, round_robin, pick_first, snapshots.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
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

TestSuite(bal, .init = setup);

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

Test(bal, round_robin_is_fair_and_wraps)
{
    struct bal_snapshot *s = snap_with(0, 3, NULL);
    struct bal_lb st = {.rr_next = 7}; /* any seed */
    int count[3] = {0};
    int prev = -1;

    for (int i = 0; i < 300; i++) {
        int idx = bal_pick(&s->clusters[0], &st, NULL, NULL);

        cr_assert(idx >= 0 && idx < 3);
        cr_assert_neq(idx, prev, "round_robin picked %d twice in a row", idx);
        prev = idx;
        count[idx]++;
    }
    for (int i = 0; i < 3; i++)
        cr_assert_eq(count[i], 100, "endpoint %d got %d of 300", i, count[i]);
    bal_snapshot_unref(s);
}

Test(bal, round_robin_skips_out_of_rotation)
{
    bool rot[4] = {true, false, true, true};
    struct bal_snapshot *s = snap_with(0, 4, rot);
    struct bal_lb st = {0};
    int count[4] = {0};

    cr_assert_eq(s->clusters[0].nrotation, 3);
    for (int i = 0; i < 30; i++)
        count[bal_pick(&s->clusters[0], &st, NULL, NULL)]++;
    cr_assert_eq(count[1], 0);
    cr_assert_eq(count[0], 10);
    cr_assert_eq(count[2], 10);
    cr_assert_eq(count[3], 10);
    bal_snapshot_unref(s);
}

Test(bal, no_endpoint_in_rotation)
{
    bool rot[2] = {false, false};
    struct bal_snapshot *s = snap_with(0, 2, rot);
    struct bal_lb st = {0};

    cr_assert_eq(bal_pick(&s->clusters[0], &st, NULL, NULL), BAL_ENOENDPOINT);
    cr_assert_eq(bal_pick(&s->clusters[2], &st, NULL, NULL), BAL_ENOENDPOINT);
    bal_snapshot_unref(s);
}

static enum bal_skip skip_ids(const struct bal_endpoint *e, void *arg)
{
    const int *modes = arg; /* per id: 0 no, 1 soft, 2 hard */

    return (enum bal_skip)modes[e->id];
}

Test(bal, skip_hard_and_soft)
{
    struct bal_snapshot *s = snap_with(0, 3, NULL);
    struct bal_lb st = {0};
    int modes[3] = {BAL_SKIP_HARD, BAL_SKIP_SOFT, BAL_SKIP_NO};

    for (int i = 0; i < 10; i++)
        cr_assert_eq(bal_pick(&s->clusters[0], &st, skip_ids, modes), 2);
    modes[2] = BAL_SKIP_HARD; /* only a soft-skipped one is left: it is the last resort */
    cr_assert_eq(bal_pick(&s->clusters[0], &st, skip_ids, modes), 1);
    modes[1] = BAL_SKIP_HARD;
    cr_assert_eq(bal_pick(&s->clusters[0], &st, skip_ids, modes), BAL_EEXHAUSTED);
    bal_snapshot_unref(s);
}

Test(bal, pick_first_sticks_and_fails_over)
{
    bool all[3] = {true, true, true};
    bool no0[3] = {false, true, true};
    struct bal_snapshot *s = snap_with(2, 3, all);
    struct bal_lb st = {0};
    int modes[3] = {0, 0, 0};

    for (int i = 0; i < 10; i++)
        cr_assert_eq(bal_pick(&s->clusters[2], &st, NULL, NULL), 0);
    /* endpoint 0 leaves the rotation: the next in configured order takes over */
    bal_snapshot_unref(s);
    s = snap_with(2, 3, no0);
    cr_assert_eq(bal_pick(&s->clusters[2], &st, NULL, NULL), 1);
    /* 0 comes back: pick_first stays with 1 until 1 leaves */
    bal_snapshot_unref(s);
    s = snap_with(2, 3, all);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(bal_pick(&s->clusters[2], &st, NULL, NULL), 1);
    /* a call that already failed on 1 (hard skip) moves the worker to 0 */
    modes[1] = BAL_SKIP_HARD;
    cr_assert_eq(bal_pick(&s->clusters[2], &st, skip_ids, modes), 0);
    cr_assert_eq(bal_pick(&s->clusters[2], &st, NULL, NULL), 0);
    bal_snapshot_unref(s);
}

Test(bal, pick_first_soft_skip_is_not_sticky)
{
    struct bal_snapshot *s = snap_with(2, 2, NULL);
    struct bal_lb st = {0};
    int modes[2] = {BAL_SKIP_SOFT, BAL_SKIP_SOFT};

    cr_assert_eq(bal_pick(&s->clusters[2], &st, skip_ids, modes), 0);
    cr_assert_eq(st.pf_set, false);
    modes[0] = BAL_SKIP_NO;
    cr_assert_eq(bal_pick(&s->clusters[2], &st, skip_ids, modes), 0);
    cr_assert(st.pf_set);
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

TestSuite(epset, .init = epset_setup);

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
