/* Cluster snapshots: built once on the main thread, then shared read-only by
 * the workers; the last reference frees them.
 * SPDX-License-Identifier: MIT */
#include "balancer/bal.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "balancer/internal.h"

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);

    if (p == NULL) {
        fputs("switchyard: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void *xrealloc(void *p, size_t n, size_t size)
{
    void *q = reallocarray(p, n == 0 ? 1 : n, size);

    if (q == NULL) {
        fputs("switchyard: out of memory\n", stderr);
        abort();
    }
    return q;
}

static char *xstrdup(const char *s)
{
    char *d = strdup(s);

    if (d == NULL) {
        fputs("switchyard: out of memory\n", stderr);
        abort();
    }
    return d;
}

static int route_cmp(const void *a, const void *b)
{
    const struct bal_route *ra = a, *rb = b;

    /* longest prefix first; ties keep a stable, readable order */
    if (ra->len != rb->len)
        return ra->len < rb->len ? 1 : -1;
    return strcmp(ra->prefix, rb->prefix);
}

struct bal_snapshot *bal_snapshot_new(const struct conf *c, uint64_t generation)
{
    struct bal_snapshot *s = xcalloc(1, sizeof(*s));
    size_t nroutes = 0, k = 0;

    atomic_init(&s->refs, 1);
    s->generation = generation;
    s->conf = c;
    s->nclusters = c->nclusters;
    s->clusters = xcalloc(c->nclusters, sizeof(*s->clusters));
    for (size_t i = 0; i < c->nclusters; i++) {
        s->clusters[i].name = c->clusters[i].name;
        s->clusters[i].index = (uint32_t)i;
        s->clusters[i].conf = &c->clusters[i];
        s->clusters[i].active = -1;
        nroutes += c->clusters[i].nroutes;
    }
    s->routes = xcalloc(nroutes, sizeof(*s->routes));
    for (size_t i = 0; i < c->nclusters; i++) {
        for (size_t j = 0; j < c->clusters[i].nroutes; j++) {
            s->routes[k].prefix = c->clusters[i].routes[j];
            s->routes[k].len = strlen(c->clusters[i].routes[j]);
            s->routes[k].cluster = (uint32_t)i;
            k++;
        }
    }
    s->nroutes = nroutes;
    qsort(s->routes, s->nroutes, sizeof(*s->routes), route_cmp);
    return s;
}

void bal_snapshot_add_endpoint(struct bal_snapshot *s, uint32_t cluster,
                               const struct bal_endpoint *ep)
{
    struct bal_cluster *cl = &s->clusters[cluster];
    struct bal_endpoint *dst;

    cl->endpoints = xrealloc(cl->endpoints, cl->nendpoints + 1, sizeof(*cl->endpoints));
    dst = &cl->endpoints[cl->nendpoints++];
    *dst = *ep;
    dst->origin = ep->origin != NULL ? xstrdup(ep->origin) : NULL;
}

void bal_snapshot_set_unresolved(struct bal_snapshot *s, uint32_t cluster, const char *spec)
{
    if (s->clusters[cluster].unresolved == NULL)
        s->clusters[cluster].unresolved = xstrdup(spec);
}

void bal_snapshot_seal(struct bal_snapshot *s)
{
    for (size_t i = 0; i < s->nclusters; i++) {
        struct bal_cluster *cl = &s->clusters[i];

        cl->rotation = xcalloc(cl->nendpoints, sizeof(*cl->rotation));
        cl->nrotation = 0;
        for (size_t j = 0; j < cl->nendpoints; j++) {
            if (cl->endpoints[j].in_rotation)
                cl->rotation[cl->nrotation++] = (uint32_t)j;
        }
        if (cl->conf->policy == CONF_POLICY_RING_HASH)
            cl->ring = bal_ring_build(cl);
    }
}

struct bal_snapshot *bal_snapshot_ref(struct bal_snapshot *s)
{
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
    return s;
}

void bal_snapshot_unref(struct bal_snapshot *s)
{
    if (s == NULL)
        return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1)
        return;
    for (size_t i = 0; i < s->nclusters; i++) {
        struct bal_cluster *cl = &s->clusters[i];

        for (size_t j = 0; j < cl->nendpoints; j++)
            free((char *)cl->endpoints[j].origin);
        free(cl->endpoints);
        free(cl->rotation);
        free((char *)cl->unresolved);
        bal_ring_free(cl->ring);
    }
    free(s->clusters);
    free(s->routes);
    if (s->ext_free != NULL)
        s->ext_free(s->ext);
    if (s->on_free != NULL)
        s->on_free(s->on_free_arg);
    free(s);
}

const struct bal_cluster *bal_route(const struct bal_snapshot *s, const char *path, size_t len)
{
    for (size_t i = 0; i < s->nroutes; i++) {
        const struct bal_route *r = &s->routes[i];

        if (r->len <= len && memcmp(r->prefix, path, r->len) == 0)
            return &s->clusters[r->cluster];
    }
    return NULL;
}

/* ---- registry ---- */

struct bal_registry {
    struct sockaddr_storage *addrs;
    socklen_t *lens;
    uint32_t *refs; /* endpoints holding the id; 0: free for another address */
    size_t n;
};

struct bal_registry *bal_registry_new(void)
{
    return xcalloc(1, sizeof(struct bal_registry));
}

void bal_registry_free(struct bal_registry *r)
{
    if (r == NULL)
        return;
    free(r->addrs);
    free(r->lens);
    free(r->refs);
    free(r);
}

uint32_t bal_registry_id(struct bal_registry *r, const struct sockaddr *addr, socklen_t len)
{
    size_t free_slot = r->n;

    /* Linear: a registry holds tens of addresses and is used off the hot path. */
    for (size_t i = 0; i < r->n; i++) {
        if (r->lens[i] == len && memcmp(&r->addrs[i], addr, len) == 0) {
            r->refs[i]++;
            return (uint32_t)i;
        }
        if (r->refs[i] == 0 && free_slot == r->n)
            free_slot = i;
    }
    /* A new address takes an id no endpoint holds any more, so ids (and the
     * workers' tables indexed by them) stay as few as the addresses alive. */
    if (free_slot == r->n) {
        r->addrs = xrealloc(r->addrs, r->n + 1, sizeof(*r->addrs));
        r->lens = xrealloc(r->lens, r->n + 1, sizeof(*r->lens));
        r->refs = xrealloc(r->refs, r->n + 1, sizeof(*r->refs));
        r->n++;
    }
    memset(&r->addrs[free_slot], 0, sizeof(r->addrs[free_slot]));
    memcpy(&r->addrs[free_slot], addr, len);
    r->lens[free_slot] = len;
    r->refs[free_slot] = 1;
    return (uint32_t)free_slot;
}

void bal_registry_release(struct bal_registry *r, uint32_t id)
{
    if (id < r->n && r->refs[id] > 0)
        r->refs[id]--;
}

size_t bal_registry_size(const struct bal_registry *r)
{
    return r->n;
}

char *bal_addr_str(const struct sockaddr *addr, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN];

    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)addr;

        inet_ntop(AF_INET6, &a6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(a6->sin6_port));
    } else if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *a4 = (const struct sockaddr_in *)addr;

        inet_ntop(AF_INET, &a4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(a4->sin_port));
    } else {
        snprintf(buf, len, "(family %d)", addr->sa_family);
    }
    return buf;
}
