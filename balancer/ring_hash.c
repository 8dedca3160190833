/* ring_hash: consistent hashing on a ketama ring. Every endpoint of the
 * cluster owns points on a 64-bit ring; a call's key (hash_on) goes to the
 * first point at or after its hash whose endpoint is in rotation and not
 * refused. Calls without a key get a weighted random endpoint.
 * Invariants: the ring holds every endpoint of the cluster, in rotation or
 * not, and point j of an endpoint sits at hash(its address, j); so an endpoint
 * leaving the rotation moves exactly its own keys (to the next points) and
 * takes exactly those back when it returns. An endpoint owns
 * ring_min_size x weight / (the highest weight) points, so its points do not
 * depend on the others either: removing an endpoint (DNS, reload) moves only
 * its keys too, unless it alone had the highest weight (then the others are
 * rescaled) or the ring is over RING_CAP points (then every endpoint gets
 * RING_CAP x weight / total weight, which moves about 1/N of the others' keys
 * per endpoint removed, with N large there). Every switchyard in front of the
 * same addresses builds the same ring: nothing here depends on endpoint ids,
 * order or history.
 * The ring is built once per snapshot on the main thread and shared.
 * SPDX-License-Identifier: MIT */
#include <stdlib.h>
#include <string.h>

#include "balancer/internal.h"

struct bal_ring_point {
    uint64_t hash;
    uint32_t ep; /* index in the cluster's endpoints */
};

struct bal_ring {
    size_t n;
    struct bal_ring_point pts[];
};

static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

uint64_t bal_hash64(const void *data, size_t len, uint64_t seed)
{
    const uint64_t m = 0xc6a4a7935bd1e995ull;
    const unsigned char *p = data;
    size_t tail = len & 7;
    uint64_t h = seed ^ (len * m);

    for (const unsigned char *end = p + (len - tail); p != end; p += 8) {
        uint64_t k = load_le64(p);

        k *= m;
        k ^= k >> 47;
        k *= m;
        h ^= k;
        h *= m;
    }
    if (tail > 0) {
        for (size_t i = tail; i-- > 0;)
            h ^= (uint64_t)p[i] << (8 * i);
        h *= m;
    }
    h ^= h >> 47;
    h *= m;
    h ^= h >> 47;
    return h;
}

static int point_cmp(const void *a, const void *b)
{
    const struct bal_ring_point *x = a, *y = b;

    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return x->ep < y->ep ? -1 : x->ep > y->ep;
}

/* Points per endpoint, how many in all: ring_min_size for the heaviest, the
 * others in proportion; over RING_CAP, RING_CAP shared by weight. */
#define RING_CAP (1u << 20)

static uint64_t points_of(uint32_t w, uint32_t wmax, uint64_t wsum, uint32_t min_size, bool capped)
{
    uint64_t n;

    if (capped)
        n = (uint64_t)RING_CAP * w / wsum;
    else
        n = ((uint64_t)min_size * w + wmax - 1) / wmax;
    return n > 0 ? n : 1;
}

const struct bal_ring *bal_ring_build(const struct bal_cluster *c)
{
    uint32_t min_size =
        c->conf != NULL && c->conf->ring_min_size > 0 ? c->conf->ring_min_size : 1024;
    uint32_t wmax = 1;
    uint64_t wsum = 0, npoints = 0;
    bool capped = false;
    struct bal_ring *ring;
    size_t k = 0;

    if (c->nendpoints == 0)
        return NULL;
    for (size_t i = 0; i < c->nendpoints; i++) {
        uint32_t w = bal_weight(&c->endpoints[i]);

        wsum += w;
        if (w > wmax)
            wmax = w;
    }
    for (size_t i = 0; i < c->nendpoints; i++)
        npoints += points_of(bal_weight(&c->endpoints[i]), wmax, wsum, min_size, false);
    if (npoints > RING_CAP && npoints > min_size) {
        capped = true;
        npoints = 0;
        for (size_t i = 0; i < c->nendpoints; i++)
            npoints += points_of(bal_weight(&c->endpoints[i]), wmax, wsum, min_size, true);
    }
    ring = bal_xcalloc(1, sizeof(*ring) + npoints * sizeof(ring->pts[0]));
    for (size_t i = 0; i < c->nendpoints; i++) {
        const struct bal_endpoint *ep = &c->endpoints[i];
        uint64_t n = points_of(bal_weight(ep), wmax, wsum, min_size, capped);

        /* The address text, not the id: ids are per process, addresses are
         * what every switchyard in front of the same backends agrees on. */
        for (uint64_t j = 0; j < n; j++) {
            ring->pts[k].hash =
                bal_hash64(ep->addr_str, strlen(ep->addr_str), j * 0x9e3779b97f4a7c15ull);
            ring->pts[k].ep = (uint32_t)i;
            k++;
        }
    }
    ring->n = k;
    qsort(ring->pts, ring->n, sizeof(ring->pts[0]), point_cmp);
    return ring;
}

void bal_ring_free(const struct bal_ring *ring)
{
    free((struct bal_ring *)ring);
}

static int ring_pick(struct bal_lb_state *lb, const struct bal_cluster *c,
                     const struct bal_pick_req *r)
{
    const struct bal_ring *ring = c->ring;
    size_t lo = 0, hi, seen = 0;
    uint64_t h;
    int soft = -1;

    if (r->key == NULL || ring == NULL || ring->n == 0)
        return bal_pick_random(lb, c, r);
    h = bal_hash64(r->key, r->keylen, 0);
    hi = ring->n;
    while (lo < hi) { /* the first point at or after |h| */
        size_t mid = lo + (hi - lo) / 2;

        if (ring->pts[mid].hash < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (++lb->npick == 0) { /* wrapped: forget every mark */
        memset(lb->seen, 0, c->nendpoints * sizeof(*lb->seen));
        lb->npick = 1;
    }
    for (size_t k = 0; k < ring->n && seen < c->nrotation; k++) {
        uint32_t idx = ring->pts[(lo + k) % ring->n].ep;

        if (!c->endpoints[idx].in_rotation || lb->seen[idx] == lb->npick)
            continue;
        lb->seen[idx] = lb->npick;
        seen++;
        switch (bal_skip_of(&c->endpoints[idx], r)) {
        case BAL_SKIP_NO:
            return (int)idx;
        case BAL_SKIP_SOFT:
            if (soft < 0)
                soft = (int)idx;
            break;
        case BAL_SKIP_HARD:
            break;
        }
    }
    return soft >= 0 ? soft : BAL_EEXHAUSTED;
}

const struct bal_ops bal_ring_hash_ops = {
    .name = "ring_hash",
    .pick = ring_pick,
};
