/* Unit tests for the operator's drain mark in balancer/epset: out of
 * rotation whatever the health, also in panic mode, and carried across
 * reloads while the endpoint exists.
 * Invariant: no network, no sleeps; configurations come from strings.
 * SPDX-License-Identifier: MIT */
#include "balancer/epset.h"

#include <stdio.h>
#include <string.h>

#include <criterion/criterion.h>

TestSuite(drain, .timeout = 10);

static struct conf *load(const char *text)
{
    char err[512];
    struct conf *c = NULL;

    cr_assert_eq(conf_load_string(text, "t.ini", &c, err, sizeof(err)), 0, "%s", err);
    return c;
}

static struct bal_ep *find(struct bal_epset *s, const char *addr)
{
    for (size_t i = 0; i < bal_epset_count(s); i++) {
        if (strcmp(bal_epset_at(s, i)->addr_str, addr) == 0)
            return bal_epset_at(s, i);
    }
    cr_assert_fail("no endpoint %s", addr);
    return NULL;
}

static bool in_rotation(const struct bal_snapshot *snap, const char *addr)
{
    const struct bal_cluster *cl = &snap->clusters[0];

    for (size_t i = 0; i < cl->nrotation; i++) {
        if (strcmp(cl->endpoints[cl->rotation[i]].addr_str, addr) == 0)
            return true;
    }
    return false;
}

#define THREE "[cluster.a]\ntargets = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3\nhealth_check = off\n"

Test(drain, a_drained_endpoint_leaves_the_rotation_and_comes_back)
{
    struct conf *c = load(THREE);
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct bal_ep *ep = find(s, "127.0.0.1:2");
    struct bal_snapshot *snap;

    cr_assert(bal_epset_set_drained(s, ep, true));
    cr_assert_not(bal_epset_set_drained(s, ep, true), "no change the second time");
    snap = bal_epset_snapshot(s, 1);
    cr_assert_eq(snap->clusters[0].nendpoints, 3, "a drained endpoint stays in the snapshot");
    cr_assert_eq(snap->clusters[0].nrotation, 2);
    cr_assert_not(in_rotation(snap, "127.0.0.1:2"));
    bal_snapshot_unref(snap);
    cr_assert(bal_epset_set_drained(s, ep, false));
    snap = bal_epset_snapshot(s, 2);
    cr_assert(in_rotation(snap, "127.0.0.1:2"));
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}

Test(drain, panic_mode_keeps_drained_endpoints_out)
{
    struct conf *c = load("[cluster.a]\ntargets = 127.0.0.1:1, 127.0.0.1:2, 127.0.0.1:3\n"
                          "panic_threshold = 50\n");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s = bal_epset_new(c, reg);
    struct bal_snapshot *snap;

    /* all start unhealthy (awaiting a first check): panic puts them in rotation */
    bal_epset_set_drained(s, find(s, "127.0.0.1:3"), true);
    snap = bal_epset_snapshot(s, 1);
    cr_assert(snap->clusters[0].panic);
    cr_assert_eq(snap->clusters[0].nrotation, 2);
    cr_assert_not(in_rotation(snap, "127.0.0.1:3"));
    bal_snapshot_unref(snap);
    /* one healthy of the two usable is 50 %: no panic, only the healthy one */
    bal_epset_set_healthy(s, find(s, "127.0.0.1:1"), true, "SERVING", 1);
    snap = bal_epset_snapshot(s, 2);
    cr_assert_not(snap->clusters[0].panic);
    cr_assert_eq(snap->clusters[0].nrotation, 1);
    cr_assert(in_rotation(snap, "127.0.0.1:1"));
    bal_snapshot_unref(snap);
    bal_epset_free(s);
    bal_registry_free(reg);
    conf_free(c);
}

Test(drain, the_mark_survives_a_reload_while_the_endpoint_exists)
{
    struct conf *c1 = load(THREE);
    struct conf *c2 = load("[cluster.a]\ntargets = 127.0.0.1:2, 127.0.0.1:4\nhealth_check = on\n"
                           "[cluster.b]\ntargets = 127.0.0.1:1\nroutes = /b.\n");
    struct bal_registry *reg = bal_registry_new();
    struct bal_epset *s1 = bal_epset_new(c1, reg), *s2 = bal_epset_new(c2, reg);

    bal_epset_set_drained(s1, find(s1, "127.0.0.1:1"), true);
    bal_epset_set_drained(s1, find(s1, "127.0.0.1:2"), true);
    bal_epset_carry(s2, s1);
    /* same cluster, same address: kept, even though health checking changed */
    cr_assert(find(s2, "127.0.0.1:2")->drained);
    cr_assert_not(find(s2, "127.0.0.1:4")->drained);
    /* the same address in another cluster is another endpoint */
    cr_assert_not(find(s2, "127.0.0.1:1")->drained);
    bal_epset_free(s1);
    bal_epset_free(s2);
    bal_registry_free(reg);
    conf_free(c1);
    conf_free(c2);
}
