/* Snapshots of the endpoint set (proxy.h): built on the main thread from
 * rt->eps and rt->conf, published to the workers, and kept as rt->snap.
 * Invariant: rt->snap and the snapshot the workers were last sent are the
 * same; whatever reads rt->snap sees one snapshot and the conf it was built
 * on, never a conf ahead of it. Main thread only.
 * SPDX-License-Identifier: MIT */
#include "proxy/proxy.h"

#include <event2/event.h>

#include "balancer/bal.h"
#include "balancer/epset.h"
#include "conf/conf.h"
#include "proxy/filters/transcode.h"

static void release_conf(void *arg)
{
    conf_free(arg); /* may run on a worker thread: the refcount is atomic */
}

static void release_table(void *ext)
{
    tc_table_unref(ext); /* likewise */
}

struct bal_snapshot *proxy_snapshot_build(struct runtime *rt)
{
    struct bal_snapshot *s = bal_epset_snapshot(rt->eps, ++rt->generation);

    s->on_free = release_conf;
    s->on_free_arg = conf_ref(rt->conf);
    /* The REST transcoding table of this moment travels with the snapshot. */
    s->ext = proxy_rest_table(rt->rest);
    s->ext_free = release_table;
    return s;
}

void proxy_snapshot_rebuild(struct runtime *rt)
{
    struct bal_snapshot *s = proxy_snapshot_build(rt);

    proxy_publish(rt, s);
    if (rt->snapshot_replaced != NULL)
        rt->snapshot_replaced(rt, rt->snap, s);
    bal_snapshot_unref(rt->snap);
    rt->snap = s;
}

static void on_rebuild(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    proxy_snapshot_rebuild(arg);
}

struct event *proxy_snapshot_event(struct runtime *rt)
{
    return event_new(rt->base, -1, 0, on_rebuild, rt);
}

void proxy_snapshot_changed(struct runtime *rt)
{
    event_active(rt->ev_rebuild, EV_READ, 0);
}
