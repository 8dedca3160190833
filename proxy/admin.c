/* The admin HTTP listener on the main thread: /status (JSON), /metrics
 * (Prometheus text format 0.0.4) and /healthz.
 * Invariant: worker counters are never read across threads; each request for
 * /status or /metrics asks every worker for a copy and answers once all copies
 * are in, so a scrape costs the workers one copy and no locks.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "admin"
#include "proxy/internal.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "balancer/epset.h"
#include "balancer/outlier.h"
#include "core/clock.h"
#include "core/log.h"
#include "health/hc.h"
#include "proxy/otlp.h"

#ifndef SWITCHYARD_VERSION
#define SWITCHYARD_VERSION "0.1.0"
#endif

/* Admin requests are small: a request line with a query, a few headers,
 * never a body. */
#define ADMIN_MAX_HEADERS (8 * 1024)
#define ADMIN_MAX_BODY    1024
#define ADMIN_TIMEOUT_S   10 /* to read a request, or to write an answer */

enum admin_kind {
    ADMIN_STATUS = 0, /* answered once the workers' reports are in */
    ADMIN_METRICS,    /* likewise */
    ADMIN_HEALTHZ,
    ADMIN_DRAIN,
    ADMIN_UNDRAIN,
};

struct pending {
    struct evhttp_request *req;
    enum admin_kind kind;
    struct pending *next;
};

/* An endpoint that left a cluster's snapshot (reload, DNS): shown as
 * "draining" under that cluster while the workers report calls on it. */
struct gone_ep {
    uint32_t id;
    char *cluster; /* owned copy of the cluster's name */
    char addr[BAL_ADDRSTRLEN];
};

struct proxy_admin {
    struct runtime *rt;
    struct evhttp *http;
    struct pending *pending; /* requests waiting for the workers' reports */
    struct proxy_report **reports;
    size_t nreports; /* arrived in this round */
    bool collecting;
    struct gone_ep *gone; /* unique by (cluster, id) */
    size_t ngone, capgone;
};

static double now_wall(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

/* A number for /status, rounded to 3 decimals (ms for seconds, us for ms);
 * answer() prints reals with 15 significant digits, so 157.343 stays
 * 157.343 instead of 157.34299999999999. */
static json_t *json_num3(double v)
{
    return json_real((double)(int64_t)(v * 1000.0 + (v >= 0 ? 0.5 : -0.5)) / 1000.0);
}

/* ---- aggregation over the workers' reports ---- */

/* The workers' pools are per (cluster, endpoint): the same address in two
 * clusters counts apart. */
static void ep_totals(const struct proxy_admin *a, const char *cluster, uint32_t id,
                      uint64_t *active, uint64_t *total, uint32_t *conns)
{
    *active = *total = 0;
    *conns = 0;
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->neps; j++) {
            if (r->eps[j].id == id && strcmp(r->eps[j].cluster, cluster) == 0) {
                *active += r->eps[j].active_calls;
                *total += r->eps[j].calls_total;
                *conns += r->eps[j].conns;
            }
        }
    }
}

/* Sums over the workers' pools of one (cluster, endpoint), for /metrics. */
struct ep_sum {
    uint64_t waiting, connect_failures;
};

static void ep_sums(const struct proxy_admin *a, const char *cluster, uint32_t id, struct ep_sum *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->neps; j++) {
            if (r->eps[j].id == id && strcmp(r->eps[j].cluster, cluster) == 0) {
                t->waiting += r->eps[j].waiting;
                t->connect_failures += r->eps[j].connect_failures;
            }
        }
    }
}

/* The admin builders read one snapshot, rt->snap, and the conf it was built
 * on (s->conf): cluster indices of the one are valid in the other. rt->eps
 * adds what only the main thread knows (health reasons, check counters); its
 * entries are looked up by cluster index and endpoint id, and only while it
 * belongs to the same conf (main.c rebuilds rt->snap whenever rt->conf
 * changes, so that is always the case once a reload returned). */
static const struct bal_ep *live_ep(const struct runtime *rt, const struct bal_snapshot *s,
                                    uint32_t cluster, uint32_t id)
{
    if (rt->conf != s->conf)
        return NULL;
    for (size_t j = 0; j < bal_epset_count(rt->eps); j++) {
        const struct bal_ep *ep = bal_epset_at(rt->eps, j);

        if (ep->cluster == cluster && ep->id == id)
            return ep;
    }
    return NULL;
}

static int cluster_index(const struct conf *c, const char *name);

/* ---- endpoints that left (issue 19: "draining" until their calls end) ---- */

static bool snap_has(const struct bal_snapshot *s, const char *cluster, uint32_t id)
{
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        if (strcmp(bc->name, cluster) != 0)
            continue;
        for (size_t j = 0; j < bc->nendpoints; j++) {
            if (bc->endpoints[j].id == id)
                return true;
        }
    }
    return false;
}

static void gone_del(struct proxy_admin *a, size_t i)
{
    free(a->gone[i].cluster);
    a->gone[i] = a->gone[--a->ngone];
}

void proxy_admin_snapshot_replaced(struct runtime *rt, const struct bal_snapshot *old,
                                   const struct bal_snapshot *now)
{
    struct proxy_admin *a = rt->admin;

    if (a == NULL || old == NULL)
        return;
    for (size_t i = 0; i < a->ngone;) {
        if (snap_has(now, a->gone[i].cluster, a->gone[i].id))
            gone_del(a, i); /* back again */
        else
            i++;
    }
    for (size_t i = 0; i < old->nclusters; i++) {
        const struct bal_cluster *bc = &old->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            const struct bal_endpoint *e = &bc->endpoints[j];
            bool known = snap_has(now, bc->name, e->id);

            for (size_t k = 0; k < a->ngone && !known; k++)
                known = a->gone[k].id == e->id && strcmp(a->gone[k].cluster, bc->name) == 0;
            if (known)
                continue;
            if (a->ngone == a->capgone) {
                a->capgone = a->capgone == 0 ? 8 : a->capgone * 2;
                a->gone = reallocarray(a->gone, a->capgone, sizeof(*a->gone));
                if (a->gone == NULL)
                    abort();
            }
            a->gone[a->ngone].id = e->id;
            a->gone[a->ngone].cluster = strdup(bc->name);
            if (a->gone[a->ngone].cluster == NULL)
                abort();
            memcpy(a->gone[a->ngone].addr, e->addr_str, sizeof(a->gone[0].addr));
            a->ngone++;
        }
    }
}

/* Forgets endpoints no worker has a call on any more (the reports are in). */
static void gone_prune(struct proxy_admin *a)
{
    for (size_t i = 0; i < a->ngone;) {
        uint64_t active, total;
        uint32_t conns;

        ep_totals(a, a->gone[i].cluster, a->gone[i].id, &active, &total, &conns);
        if (active == 0)
            gone_del(a, i);
        else
            i++;
    }
}

/* The address a worker reports for pool |id| (the authority on it), else |def|. */
static const char *reported_addr(const struct proxy_admin *a, uint32_t id, const char *def)
{
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->neps; j++) {
            if (r->eps[j].id == id && r->eps[j].addr[0] != '\0')
                return r->eps[j].addr;
        }
    }
    return def;
}

/* Appends to |eps| the endpoints that left cluster |name| and still have
 * calls. Returns how many. */
static size_t draining_json(struct proxy_admin *a, const char *name, json_t *eps)
{
    size_t n = 0;

    for (size_t i = 0; i < a->ngone; i++) {
        const struct gone_ep *g = &a->gone[i];
        uint64_t active, total;
        uint32_t conns;
        json_t *e;
        char why[128];

        if (strcmp(g->cluster, name) != 0)
            continue;
        ep_totals(a, g->cluster, g->id, &active, &total, &conns);
        if (active == 0)
            continue;
        e = json_object();
        snprintf(why, sizeof(why), "removed from the cluster; %llu call%s still running",
                 (unsigned long long)active, active == 1 ? "" : "s");
        json_object_set_new(e, "address", json_string(reported_addr(a, g->id, g->addr)));
        json_object_set_new(e, "origin", json_null());
        json_object_set_new(e, "healthy", json_null());
        json_object_set_new(e, "in_rotation", json_false());
        json_object_set_new(e, "drained", json_false());
        json_object_set_new(e, "state", json_string("draining"));
        json_object_set_new(e, "reason", json_string(why));
        json_object_set_new(e, "active_calls", json_integer((json_int_t)active));
        json_object_set_new(e, "calls_total", json_integer((json_int_t)total));
        json_object_set_new(e, "backend_connections", json_integer((json_int_t)conns));
        json_array_append_new(eps, e);
        n++;
    }
    return n;
}

/* ---- /status ---- */

static json_t *endpoint_json(struct proxy_admin *a, const struct bal_snapshot *s,
                             const struct bal_cluster *bc, const struct bal_endpoint *se,
                             uint64_t now_ms)
{
    struct runtime *rt = a->rt;
    const struct bal_ep *ep = live_ep(rt, s, bc->index, se->id);
    struct hc_ep_info hi = {0};
    json_t *e = json_object();
    uint64_t active, total;
    uint32_t conns;
    bool drained = ep != NULL && ep->drained;
    bool healthy = ep != NULL ? ep->healthy : se->in_rotation;
    bool ejected = ep != NULL ? ep->ejected_until_ms != 0 : se->ejected;
    char why[192];

    ep_totals(a, bc->name, se->id, &active, &total, &conns);
    if (ep != NULL)
        hc_ep_info(rt->hc, ep, &hi);
    json_object_set_new(e, "address", json_string(se->addr_str));
    json_object_set_new(e, "origin", json_string(se->origin != NULL ? se->origin : ""));
    json_object_set_new(e, "healthy", json_boolean(healthy));
    json_object_set_new(e, "in_rotation", json_boolean(se->in_rotation));
    json_object_set_new(e, "drained", json_boolean(drained));
    json_object_set_new(e, "ejected", json_boolean(ejected));
    json_object_set_new(e, "weight", json_integer(se->weight > 0 ? (json_int_t)se->weight : 1));
    json_object_set_new(e, "state",
                        json_string(drained           ? "drained"
                                    : se->in_rotation ? "in_rotation"
                                    : !healthy        ? "unhealthy"
                                    : ejected         ? "ejected"
                                                      : "out_of_rotation"));
    if (drained)
        snprintf(why, sizeof(why), "drained by operator");
    else if (healthy && ejected && ep != NULL)
        snprintf(
            why, sizeof(why), "ejected by outlier detection (%s), back in %.1f s", ep->eject_reason,
            ep->ejected_until_ms > now_ms ? (double)(ep->ejected_until_ms - now_ms) / 1000.0 : 0.0);
    else
        snprintf(why, sizeof(why), "%s", ep != NULL ? ep->reason : "");
    json_object_set_new(e, "reason", json_string(why));
    if (ep != NULL && ep->ejections_total > 0) {
        json_t *ej = json_object();

        json_object_set_new(ej, "count", json_integer((json_int_t)ep->ejections_total));
        json_object_set_new(ej, "last_reason", json_string(ep->eject_reason));
        json_object_set_new(ej, "remaining_seconds",
                            ejected && ep->ejected_until_ms > now_ms
                                ? json_num3((double)(ep->ejected_until_ms - now_ms) / 1000.0)
                                : json_null());
        json_object_set_new(e, "ejections", ej);
    }
    json_object_set_new(e, "since_seconds",
                        ep != NULL && ep->since_ms > 0
                            ? json_num3((double)(now_ms - ep->since_ms) / 1000.0)
                            : json_null());
    json_object_set_new(e, "last_check_seconds_ago",
                        hi.checked ? json_num3((double)(now_ms - hi.last_check_ms) / 1000.0)
                                   : json_null());
    json_object_set_new(e, "last_check_latency_ms",
                        hi.checked ? json_num3(hi.last_latency_ms) : json_null());
    json_object_set_new(e, "consecutive_failures",
                        json_integer((json_int_t)hi.consecutive_failures));
    json_object_set_new(e, "active_calls", json_integer((json_int_t)active));
    json_object_set_new(e, "calls_total", json_integer((json_int_t)total));
    json_object_set_new(e, "backend_connections", json_integer((json_int_t)conns));
    return e;
}

/* The last reload: when, whether it was applied, and why not. */
static json_t *reload_json(const struct runtime *rt)
{
    const struct proxy_reload_info *ri = &rt->reload;
    json_t *j = json_object();
    char ts[64];

    json_object_set_new(j, "result",
                        json_string(ri->time == 0 ? "none"
                                    : ri->ok      ? "success"
                                                  : "failure"));
    if (ri->time > 0) {
        time_t t = (time_t)ri->time;
        struct tm tm;

        gmtime_r(&t, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_object_set_new(j, "time", json_string(ts));
        json_object_set_new(j, "timestamp_seconds", json_num3(ri->time));
    } else {
        json_object_set_new(j, "time", json_null());
        json_object_set_new(j, "timestamp_seconds", json_null());
    }
    if (ri->time > 0 && !ri->ok)
        json_object_set_new(j, "error", json_string(ri->error));
    json_object_set_new(j, "successes", json_integer((json_int_t)ri->successes));
    json_object_set_new(j, "failures", json_integer((json_int_t)ri->failures));
    return j;
}

/* Where spans go and how many made it. */
static json_t *tracing_json(struct runtime *rt)
{
    const struct conf_tracing *tr = &rt->conf->tracing;
    struct proxy_otlp_stats st;

    proxy_otlp_stats(rt, &st);
    return json_pack("{s:o, s:f, s:s, s:I, s:I, s:I}", "otlp_endpoint",
                     tr->otlp_endpoint != NULL ? json_string(tr->otlp_endpoint) : json_null(),
                     "sample_ratio", tr->sample_ratio, "service_name", tr->service_name,
                     "spans_exported", (json_int_t)st.exported, "spans_dropped",
                     (json_int_t)(st.dropped_queue + st.dropped_export + st.dropped_off),
                     "spans_queued", (json_int_t)st.queued);
}

static json_t *status_json(struct proxy_admin *a)
{
    struct runtime *rt = a->rt;
    const struct bal_snapshot *s = rt->snap;
    const struct conf *c = s->conf;
    uint64_t now_ms = core_mono_ms();
    json_t *root = json_object(), *clusters = json_array();

    json_object_set_new(root, "version", json_string(SWITCHYARD_VERSION));
    json_object_set_new(root, "uptime_seconds", json_num3(now_wall() - rt->start_time));
    json_object_set_new(root, "config_file", json_string(rt->conf_path));
    json_object_set_new(root, "workers", json_integer((json_int_t)rt->nworkers));
    json_object_set_new(root, "draining", json_boolean(rt->draining));
    json_object_set_new(root, "reload", reload_json(rt));
    json_object_set_new(root, "tracing", tracing_json(rt));
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct conf_cluster *cc = &c->clusters[i];
        const struct bal_cluster *bc = &s->clusters[i];
        json_t *cl = json_object(), *routes = json_array(), *targets = json_array();
        json_t *eps = json_array();

        for (size_t j = 0; j < cc->nroutes; j++)
            json_array_append_new(routes, json_string(cc->routes[j]));
        for (size_t j = 0; j < cc->ntargets; j++)
            json_array_append_new(targets, json_string(cc->targets[j].spec));
        for (size_t j = 0; j < bc->nendpoints; j++)
            json_array_append_new(eps, endpoint_json(a, s, bc, &bc->endpoints[j], now_ms));
        json_object_set_new(cl, "name", json_string(cc->name));
        json_object_set_new(cl, "policy", json_string(conf_policy_name(cc->policy)));
        json_object_set_new(cl, "routes", routes);
        json_object_set_new(cl, "targets", targets);
        json_object_set_new(cl, "panic", json_boolean(bc->panic));
        if (cc->policy == CONF_POLICY_PICK_FIRST) {
            /* The one endpoint every worker sends to. */
            const struct bal_endpoint *act = bc->active >= 0     ? &bc->endpoints[bc->active]
                                             : bc->nrotation > 0 ? &bc->endpoints[bc->rotation[0]]
                                                                 : NULL;

            json_object_set_new(cl, "active_endpoint",
                                act != NULL ? json_string(act->addr_str) : json_null());
        }
        json_object_set_new(cl, "endpoints_total", json_integer((json_int_t)bc->nendpoints));
        json_object_set_new(cl, "endpoints_in_rotation", json_integer((json_int_t)bc->nrotation));
        draining_json(a, cc->name, eps);
        json_object_set_new(cl, "endpoints", eps);
        json_array_append_new(clusters, cl);
    }
    /* Clusters a reload removed, while calls on their endpoints run. */
    for (size_t i = 0; i < a->ngone; i++) {
        const char *name = a->gone[i].cluster;
        bool seen = cluster_index(c, name) >= 0;
        json_t *cl, *eps;

        for (size_t k = 0; k < i && !seen; k++)
            seen = strcmp(a->gone[k].cluster, name) == 0;
        if (seen)
            continue;
        eps = json_array();
        if (draining_json(a, name, eps) == 0) {
            json_decref(eps);
            continue;
        }
        cl = json_object();
        json_object_set_new(cl, "name", json_string(name));
        json_object_set_new(cl, "removed", json_true());
        json_object_set_new(cl, "endpoints_total", json_integer(0));
        json_object_set_new(cl, "endpoints_in_rotation", json_integer(0));
        json_object_set_new(cl, "endpoints", eps);
        json_array_append_new(clusters, cl);
    }
    json_object_set_new(root, "clusters", clusters);
    return root;
}

/* ---- /metrics ---- */

/* Label values escape backslash, double quote and line feed (exposition format). */
static void label(struct evbuffer *b, const char *s)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            evbuffer_add(b, "\\\\", 2);
        else if (*s == '"')
            evbuffer_add(b, "\\\"", 2);
        else if (*s == '\n')
            evbuffer_add(b, "\\n", 2);
        else
            evbuffer_add(b, s, 1);
    }
}

static void header(struct evbuffer *b, const char *name, const char *type, const char *help)
{
    evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* go-grpc-prometheus spells grpc_code as Go's codes.Code.String() does. */
static const char *const go_code_names[GRPC_CODE_COUNT] = {
    "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
    "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
    "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
    "DataLoss", "Unauthenticated"};

static const char *const type_names[PROXY_TYPE_COUNT] = {"unary", "client_stream", "server_stream",
                                                         "bidi_stream"};

static void hist_merge(struct proxy_hist *d, const struct proxy_hist *h)
{
    for (int s = 0; s <= PROXY_HIST_NB; s++)
        d->bucket[s] += h->bucket[s];
    d->count += h->count;
    d->sum += h->sum;
}

/* Sums the workers' method counters by name into |out| (|*n| entries). */
static struct proxy_mstat *merge_methods(const struct proxy_admin *a, size_t *n)
{
    size_t cap = 0, k = 0;
    struct proxy_mstat *out;

    for (size_t i = 0; i < a->rt->nworkers; i++)
        cap += a->reports[i] != NULL ? a->reports[i]->nm : 0;
    out = calloc(cap + 1, sizeof(*out));
    if (out == NULL)
        abort();
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->nm; j++) {
            const struct proxy_mstat *m = &r->m[j];
            struct proxy_mstat *d = NULL;

            for (size_t q = 0; q < k && d == NULL; q++) {
                if (strcmp(out[q].name, m->name) == 0)
                    d = &out[q];
            }
            if (d == NULL) {
                d = &out[k++];
                d->name = m->name; /* borrowed from the report */
            }
            for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
                for (int s = 0; s < GRPC_CODE_COUNT; s++)
                    d->handled[t][s] += m->handled[t][s];
                d->msg_in[t] += m->msg_in[t];
                d->msg_out[t] += m->msg_out[t];
                hist_merge(&d->dur[t], &m->dur[t]);
            }
        }
    }
    *n = k;
    return out;
}

/* Sums the workers' (cluster, endpoint) counters into |out| (|*n| entries). */
static struct proxy_upstat *merge_upstreams(const struct proxy_admin *a, size_t *n)
{
    size_t cap = 0, k = 0;
    struct proxy_upstat *out;

    for (size_t i = 0; i < a->rt->nworkers; i++)
        cap += a->reports[i] != NULL ? a->reports[i]->nup : 0;
    out = calloc(cap + 1, sizeof(*out));
    if (out == NULL)
        abort();
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->nup; j++) {
            const struct proxy_upstat *u = &r->up[j];
            struct proxy_upstat *d = NULL;

            for (size_t q = 0; q < k && d == NULL; q++) {
                if (strcmp(out[q].cluster, u->cluster) == 0 &&
                    strcmp(out[q].endpoint, u->endpoint) == 0)
                    d = &out[q];
            }
            if (d == NULL) {
                d = &out[k++];
                memcpy(d->cluster, u->cluster, sizeof(d->cluster));
                memcpy(d->endpoint, u->endpoint, sizeof(d->endpoint));
            }
            for (int s = 0; s < GRPC_CODE_COUNT; s++)
                d->by_code[s] += u->by_code[s];
            hist_merge(&d->dur, &u->dur);
        }
    }
    *n = k;
    return out;
}

/* A histogram's samples: NAME_bucket{LABELS,le=...}, _sum, _count, where
 * |labels| is 'a="x",b="y"' (already escaped) or "". */
static void hist_samples(struct evbuffer *b, const char *name, const char *labels,
                         const struct proxy_hist *h)
{
    uint64_t cum = 0;
    const char *sep = labels[0] != '\0' ? "," : "";

    for (int s = 0; s <= PROXY_HIST_NB; s++) {
        cum += h->bucket[s];
        if (s < PROXY_HIST_NB)
            evbuffer_add_printf(b, "%s_bucket{%s%sle=\"%g\"} %llu\n", name, labels, sep,
                                proxy_hist_bounds[s], (unsigned long long)cum);
        else
            evbuffer_add_printf(b, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, sep,
                                (unsigned long long)cum);
    }
    evbuffer_add_printf(b, "%s_sum{%s} %.9f\n", name, labels, h->sum);
    evbuffer_add_printf(b, "%s_count{%s} %llu\n", name, labels, (unsigned long long)h->count);
}

/* |s| escaped as a label value into |out| (see label()). */
static void label_to(char *out, size_t outlen, const char *s)
{
    size_t o = 0;

    for (; *s != '\0' && o + 3 < outlen; s++) {
        if (*s == '\\' || *s == '"') {
            out[o++] = '\\';
            out[o++] = *s;
        } else if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
}

/* 'grpc_service="pkg.Svc",grpc_method="M"' of method label |name|: "other"
 * for both when it is the overflow slot. */
static void method_labels(char *out, size_t outlen, const char *name)
{
    const char *slash = name[0] == '/' ? strchr(name + 1, '/') : NULL;
    char svc[256], m[256];

    if (slash == NULL) {
        snprintf(out, outlen, "grpc_service=\"other\",grpc_method=\"other\"");
        return;
    }
    {
        char tmp[256];

        snprintf(tmp, sizeof(tmp), "%.*s", (int)(slash - name - 1), name + 1);
        label_to(svc, sizeof(svc), tmp);
        label_to(m, sizeof(m), slash + 1);
    }
    snprintf(out, outlen, "grpc_service=\"%s\",grpc_method=\"%s\"", svc, m);
}

/* The families of go-grpc-prometheus (grpc_server_*), from the method labels. */
static void grpc_server_metrics(struct evbuffer *b, const struct proxy_mstat *ms, size_t nm)
{
    char ml[600], l[700];

    header(b, "grpc_server_started_total", "counter",
           "RPCs started on the server (counted when they end: grpc_type is known only then).");
    for (size_t i = 0; i < nm; i++) {
        method_labels(ml, sizeof(ml), ms[i].name);
        for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
            if (ms[i].dur[t].count > 0)
                evbuffer_add_printf(b, "grpc_server_started_total{%s,grpc_type=\"%s\"} %llu\n", ml,
                                    type_names[t], (unsigned long long)ms[i].dur[t].count);
        }
    }
    header(b, "grpc_server_handled_total", "counter",
           "RPCs completed on the server, regardless of success or failure.");
    for (size_t i = 0; i < nm; i++) {
        method_labels(ml, sizeof(ml), ms[i].name);
        for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
            for (int s = 0; s < GRPC_CODE_COUNT; s++) {
                if (ms[i].handled[t][s] == 0)
                    continue;
                evbuffer_add_printf(b,
                                    "grpc_server_handled_total{%s,grpc_code=\"%s\","
                                    "grpc_type=\"%s\"} %llu\n",
                                    ml, go_code_names[s], type_names[t],
                                    (unsigned long long)ms[i].handled[t][s]);
            }
        }
    }
    header(b, "grpc_server_msg_received_total", "counter",
           "gRPC messages received from clients (stream messages included).");
    for (size_t i = 0; i < nm; i++) {
        method_labels(ml, sizeof(ml), ms[i].name);
        for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
            if (ms[i].dur[t].count > 0)
                evbuffer_add_printf(b, "grpc_server_msg_received_total{%s,grpc_type=\"%s\"} %llu\n",
                                    ml, type_names[t], (unsigned long long)ms[i].msg_in[t]);
        }
    }
    header(b, "grpc_server_msg_sent_total", "counter",
           "gRPC messages sent to clients (stream messages included).");
    for (size_t i = 0; i < nm; i++) {
        method_labels(ml, sizeof(ml), ms[i].name);
        for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
            if (ms[i].dur[t].count > 0)
                evbuffer_add_printf(b, "grpc_server_msg_sent_total{%s,grpc_type=\"%s\"} %llu\n", ml,
                                    type_names[t], (unsigned long long)ms[i].msg_out[t]);
        }
    }
    header(b, "grpc_server_handling_seconds", "histogram",
           "Time from a call's request headers to its end (buckets up to 4 hours, for streams).");
    for (size_t i = 0; i < nm; i++) {
        method_labels(ml, sizeof(ml), ms[i].name);
        for (int t = 0; t < PROXY_TYPE_COUNT; t++) {
            if (ms[i].dur[t].count == 0)
                continue;
            snprintf(l, sizeof(l), "%s,grpc_type=\"%s\"", ml, type_names[t]);
            hist_samples(b, "grpc_server_handling_seconds", l, &ms[i].dur[t]);
        }
    }
}

/* One sample line "NAME{cluster="C",endpoint="E"LABELS} " without the value. */
static void ep_sample(struct evbuffer *b, const char *name, const struct bal_cluster *bc,
                      const struct bal_endpoint *se)
{
    evbuffer_add_printf(b, "%s{cluster=\"", name);
    label(b, bc->name);
    evbuffer_add_printf(b, "\",endpoint=\"");
    label(b, se->addr_str);
    evbuffer_add_printf(b, "\"");
}

/* Per-endpoint families, from rt->snap (see live_ep()). */
static void endpoint_metrics(struct proxy_admin *a, struct evbuffer *b)
{
    struct runtime *rt = a->rt;
    const struct bal_snapshot *s = rt->snap;

    header(b, "switchyard_endpoint_healthy", "gauge",
           "1 when the endpoint passes its health checks, else 0.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            const struct bal_endpoint *se = &bc->endpoints[j];
            const struct bal_ep *ep = live_ep(rt, s, bc->index, se->id);

            ep_sample(b, "switchyard_endpoint_healthy", bc, se);
            evbuffer_add_printf(b, "} %d\n", (ep != NULL ? ep->healthy : se->in_rotation) ? 1 : 0);
        }
    }
    header(b, "switchyard_endpoint_active_calls", "gauge",
           "Calls in flight to the endpoint, over all workers.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            uint64_t active, total;
            uint32_t conns;

            ep_totals(a, bc->name, bc->endpoints[j].id, &active, &total, &conns);
            ep_sample(b, "switchyard_endpoint_active_calls", bc, &bc->endpoints[j]);
            evbuffer_add_printf(b, "} %llu\n", (unsigned long long)active);
        }
    }
    header(b, "switchyard_backend_connections", "gauge",
           "Open HTTP/2 connections to the endpoint, over all workers.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            uint64_t active, total;
            uint32_t conns;

            ep_totals(a, bc->name, bc->endpoints[j].id, &active, &total, &conns);
            ep_sample(b, "switchyard_backend_connections", bc, &bc->endpoints[j]);
            evbuffer_add_printf(b, "} %u\n", conns);
        }
    }
    header(b, "switchyard_health_checks_total", "counter",
           "Health checks of the endpoint, by result (pass or fail).");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            const struct bal_endpoint *se = &bc->endpoints[j];
            const struct bal_ep *ep = live_ep(rt, s, bc->index, se->id);
            struct hc_ep_info hi = {0};

            if (ep != NULL)
                hc_ep_info(rt->hc, ep, &hi);
            for (int r = 0; r < 2; r++) {
                ep_sample(b, "switchyard_health_checks_total", bc, se);
                evbuffer_add_printf(b, ",result=\"%s\"} %llu\n", r == 0 ? "pass" : "fail",
                                    (unsigned long long)(r == 0 ? hi.passes : hi.failures));
            }
        }
    }
}

/* A cluster's retry counters summed over the workers' reports (clusters
 * match by name; a worker may not have taken the latest snapshot yet). */
static void cluster_totals(const struct proxy_admin *a, const char *name,
                           struct proxy_cluster_report *sum)
{
    memset(sum, 0, sizeof(*sum));
    for (size_t i = 0; i < a->rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        for (size_t j = 0; r != NULL && j < r->nclusters; j++) {
            const struct proxy_cluster_report *c = &r->clusters[j];

            if (strcmp(c->name, name) != 0)
                continue;
            for (int k = 0; k < PROXY_RETRY_REASONS; k++)
                sum->retries[k] += c->retries[k];
            sum->hedges += c->hedges;
            sum->budget_exhausted += c->budget_exhausted;
        }
    }
}

/* Retries, hedges, the budget's refusals and outlier ejections (issue 13). */
static void resilience_metrics(struct proxy_admin *a, struct evbuffer *b)
{
    struct runtime *rt = a->rt;
    const struct bal_snapshot *s = rt->snap;
    struct proxy_cluster_report *sums = calloc(s->nclusters + 1, sizeof(*sums));

    if (sums == NULL)
        abort();
    for (size_t i = 0; i < s->nclusters; i++)
        cluster_totals(a, s->clusters[i].name, &sums[i]);
    header(b, "switchyard_retries_total", "counter",
           "Attempts made again, by cluster and reason: the gRPC status retried (retry_on), or "
           "\"transparent\" for an attempt no backend saw.");
    for (size_t i = 0; i < s->nclusters; i++) {
        for (int k = 0; k < PROXY_RETRY_REASONS; k++) {
            if (sums[i].retries[k] == 0)
                continue;
            evbuffer_add_printf(b, "switchyard_retries_total{cluster=\"");
            label(b, s->clusters[i].name);
            evbuffer_add_printf(b, "\",reason=\"%s\"} %llu\n",
                                k == PROXY_RETRY_UNSEEN ? "transparent" : grpc_code_name(k),
                                (unsigned long long)sums[i].retries[k]);
        }
    }
    header(b, "switchyard_hedges_total", "counter", "Hedged attempts started (hedge_delay).");
    for (size_t i = 0; i < s->nclusters; i++) {
        evbuffer_add_printf(b, "switchyard_hedges_total{cluster=\"");
        label(b, s->clusters[i].name);
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)sums[i].hedges);
    }
    header(b, "switchyard_retry_budget_exhausted_total", "counter",
           "Retries and hedges not made because the cluster's retry_budget was spent.");
    for (size_t i = 0; i < s->nclusters; i++) {
        evbuffer_add_printf(b, "switchyard_retry_budget_exhausted_total{cluster=\"");
        label(b, s->clusters[i].name);
        evbuffer_add_printf(b, "\"} %llu\n", (unsigned long long)sums[i].budget_exhausted);
    }
    free(sums);
    header(b, "switchyard_ejections_total", "counter",
           "Outlier detection ejections of the endpoint, by reason.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            const struct bal_endpoint *se = &bc->endpoints[j];
            const struct bal_ep *ep = live_ep(rt, s, bc->index, se->id);

            for (int r = BAL_OUTLIER_CONSECUTIVE; r <= BAL_OUTLIER_PERCENTAGE; r++) {
                ep_sample(b, "switchyard_ejections_total", bc, se);
                evbuffer_add_printf(b, ",reason=\"%s\"} %llu\n",
                                    bal_outlier_reason((enum bal_outlier_verdict)r),
                                    (unsigned long long)(ep != NULL ? ep->ejected_by[r] : 0));
            }
        }
    }
    header(b, "switchyard_endpoint_ejected", "gauge",
           "1 while outlier detection keeps the endpoint out of rotation, else 0.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            ep_sample(b, "switchyard_endpoint_ejected", bc, &bc->endpoints[j]);
            evbuffer_add_printf(b, "} %d\n", bc->endpoints[j].ejected ? 1 : 0);
        }
    }
}

/* The names Prometheus itself uses for its configuration reloads. */
static void reload_metrics(const struct runtime *rt, struct evbuffer *b)
{
    const struct proxy_reload_info *ri = &rt->reload;

    header(b, "switchyard_config_reloads_total", "counter",
           "SIGHUP reloads of the configuration file, by result.");
    evbuffer_add_printf(b, "switchyard_config_reloads_total{result=\"success\"} %llu\n",
                        (unsigned long long)ri->successes);
    evbuffer_add_printf(b, "switchyard_config_reloads_total{result=\"failure\"} %llu\n",
                        (unsigned long long)ri->failures);
    header(b, "switchyard_config_last_reload_success", "gauge",
           "1 when the last reload applied the file (or none was tried since start), else 0.");
    evbuffer_add_printf(b, "switchyard_config_last_reload_success %d\n",
                        ri->time == 0 || ri->ok ? 1 : 0);
    header(b, "switchyard_config_last_reload_timestamp_seconds", "gauge",
           "Unix time of the last reload, or of the start when none was tried.");
    evbuffer_add_printf(b, "switchyard_config_last_reload_timestamp_seconds %.3f\n",
                        ri->time > 0 ? ri->time : rt->start_time);
}

/* switchyard_upstream_*: attempts per cluster and endpoint. */
static void upstream_metrics(struct proxy_admin *a, struct evbuffer *b)
{
    const struct bal_snapshot *s = a->rt->snap;
    size_t nup;
    struct proxy_upstat *up = merge_upstreams(a, &nup);
    char cl[300], ep[200], l[600];

    header(b, "switchyard_upstream_calls_total", "counter",
           "Attempts sent to an endpoint, by the gRPC code they came to (Canceled: switchyard "
           "cancelled them; Unavailable: they failed before an answer).");
    for (size_t i = 0; i < nup; i++) {
        label_to(cl, sizeof(cl), up[i].cluster);
        label_to(ep, sizeof(ep), up[i].endpoint);
        for (int c = 0; c < GRPC_CODE_COUNT; c++) {
            if (up[i].by_code[c] > 0)
                evbuffer_add_printf(b,
                                    "switchyard_upstream_calls_total{cluster=\"%s\",endpoint="
                                    "\"%s\",grpc_code=\"%s\"} %llu\n",
                                    cl, ep, go_code_names[c], (unsigned long long)up[i].by_code[c]);
        }
    }
    header(b, "switchyard_upstream_call_duration_seconds", "histogram",
           "Time from an attempt's start to its end, per cluster.");
    for (size_t i = 0; i < nup; i++) {
        struct proxy_hist h = up[i].dur;
        bool first = true;

        for (size_t q = 0; q < i && first; q++)
            first = strcmp(up[q].cluster, up[i].cluster) != 0;
        if (!first)
            continue;
        for (size_t q = i + 1; q < nup; q++) {
            if (strcmp(up[q].cluster, up[i].cluster) == 0)
                hist_merge(&h, &up[q].dur);
        }
        label_to(cl, sizeof(cl), up[i].cluster);
        snprintf(l, sizeof(l), "cluster=\"%s\"", cl);
        hist_samples(b, "switchyard_upstream_call_duration_seconds", l, &h);
    }
    free(up);
    header(b, "switchyard_upstream_connect_failures_total", "counter",
           "Backend connections to the endpoint that could not be opened (refused, timed out, "
           "TLS), over all workers.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            struct ep_sum t;

            ep_sums(a, bc->name, bc->endpoints[j].id, &t);
            ep_sample(b, "switchyard_upstream_connect_failures_total", bc, &bc->endpoints[j]);
            evbuffer_add_printf(b, "} %llu\n", (unsigned long long)t.connect_failures);
        }
    }
    header(b, "switchyard_upstream_pending_calls", "gauge",
           "Attempts waiting in the endpoint's pools for a stream, over all workers.");
    for (size_t i = 0; i < s->nclusters; i++) {
        const struct bal_cluster *bc = &s->clusters[i];

        for (size_t j = 0; j < bc->nendpoints; j++) {
            struct ep_sum t;

            ep_sums(a, bc->name, bc->endpoints[j].id, &t);
            ep_sample(b, "switchyard_upstream_pending_calls", bc, &bc->endpoints[j]);
            evbuffer_add_printf(b, "} %llu\n", (unsigned long long)t.waiting);
        }
    }
}

/* process_* as the Prometheus client libraries export them (Linux, /proc). */
static void process_metrics(const struct runtime *rt, struct evbuffer *b)
{
    char buf[1024], *p;
    unsigned long utime = 0, stime = 0, vsize = 0;
    long rss = 0, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    FILE *f = fopen("/proc/self/stat", "r");
    struct rlimit rl;
    size_t fds = 0;
    DIR *d;

    if (f != NULL) {
        if (fgets(buf, sizeof(buf), f) != NULL && (p = strrchr(buf, ')')) != NULL) {
            /* fields after "(comm)": 3 state ... 14 utime 15 stime ... 23 vsize 24 rss */
            if (sscanf(p + 2,
                       "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d "
                       "%*d %*d %*u %lu %ld",
                       &utime, &stime, &vsize, &rss) != 4)
                utime = stime = vsize = 0, rss = 0;
        }
        fclose(f);
    }
    if ((d = opendir("/proc/self/fd")) != NULL) {
        struct dirent *e;

        while ((e = readdir(d)) != NULL)
            fds += e->d_name[0] != '.';
        fds--; /* the one opendir() holds */
        closedir(d);
    }
    header(b, "process_cpu_seconds_total", "counter",
           "Total user and system CPU time spent in seconds.");
    evbuffer_add_printf(b, "process_cpu_seconds_total %.2f\n",
                        ticks > 0 ? (double)(utime + stime) / (double)ticks : 0.0);
    header(b, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
    evbuffer_add_printf(b, "process_resident_memory_bytes %lld\n", (long long)rss * page);
    header(b, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
    evbuffer_add_printf(b, "process_virtual_memory_bytes %lu\n", vsize);
    header(b, "process_open_fds", "gauge", "Number of open file descriptors.");
    evbuffer_add_printf(b, "process_open_fds %zu\n", fds);
    header(b, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
    evbuffer_add_printf(b, "process_max_fds %llu\n",
                        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                            ? (unsigned long long)rl.rlim_cur
                            : 0ull);
    header(b, "process_start_time_seconds", "gauge",
           "Start time of the process since unix epoch in seconds.");
    evbuffer_add_printf(b, "process_start_time_seconds %.3f\n", rt->start_time);
}

/* The span exporter's counters. */
static void trace_metrics(struct runtime *rt, struct evbuffer *b)
{
    struct proxy_otlp_stats st;

    proxy_otlp_stats(rt, &st);
    header(b, "switchyard_trace_spans_exported_total", "counter",
           "Spans the OTLP collector accepted.");
    evbuffer_add_printf(b, "switchyard_trace_spans_exported_total %llu\n",
                        (unsigned long long)st.exported);
    header(b, "switchyard_trace_spans_dropped_total", "counter",
           "Spans dropped: a worker's queue was full (queue_full), their export request failed "
           "(export_failed), or export was turned off with spans queued (export_off).");
    evbuffer_add_printf(b, "switchyard_trace_spans_dropped_total{reason=\"queue_full\"} %llu\n",
                        (unsigned long long)st.dropped_queue);
    evbuffer_add_printf(b, "switchyard_trace_spans_dropped_total{reason=\"export_failed\"} %llu\n",
                        (unsigned long long)st.dropped_export);
    evbuffer_add_printf(b, "switchyard_trace_spans_dropped_total{reason=\"export_off\"} %llu\n",
                        (unsigned long long)st.dropped_off);
    header(b, "switchyard_trace_export_requests_total", "counter",
           "OTLP/HTTP export requests, by result.");
    evbuffer_add_printf(b, "switchyard_trace_export_requests_total{result=\"success\"} %llu\n",
                        (unsigned long long)st.requests_ok);
    evbuffer_add_printf(b, "switchyard_trace_export_requests_total{result=\"failure\"} %llu\n",
                        (unsigned long long)st.requests_failed);
    header(b, "switchyard_trace_spans_queued", "gauge",
           "Finished spans waiting in the workers' queues for the exporter.");
    evbuffer_add_printf(b, "switchyard_trace_spans_queued %llu\n", (unsigned long long)st.queued);
}

static void metrics_text(struct proxy_admin *a, struct evbuffer *b)
{
    struct runtime *rt = a->rt;
    size_t nm;
    struct proxy_mstat *ms = merge_methods(a, &nm);
    uint64_t fe = 0, self[2][GRPC_CODE_COUNT] = {{0}}, unlabelled = 0;

    header(b, "grpc_requests_total", "counter",
           "gRPC calls handled by switchyard, by method and gRPC status (its own health probes "
           "excluded).");
    for (size_t i = 0; i < nm; i++) {
        for (int s = 0; s < GRPC_CODE_COUNT; s++) {
            uint64_t n = 0;

            for (int t = 0; t < PROXY_TYPE_COUNT; t++)
                n += ms[i].handled[t][s];
            if (n == 0)
                continue;
            evbuffer_add_printf(b, "grpc_requests_total{method=\"");
            label(b, ms[i].name);
            evbuffer_add_printf(b, "\",status=\"%s\"} %llu\n", grpc_code_name(s),
                                (unsigned long long)n);
        }
    }
    header(b, "grpc_request_duration_seconds", "histogram",
           "Time from a call's request headers to its end, by method.");
    for (size_t i = 0; i < nm; i++) {
        struct proxy_hist h;
        char l[600], v[512];

        memset(&h, 0, sizeof(h));
        for (int t = 0; t < PROXY_TYPE_COUNT; t++)
            hist_merge(&h, &ms[i].dur[t]);
        if (h.count == 0)
            continue;
        label_to(v, sizeof(v), ms[i].name);
        snprintf(l, sizeof(l), "method=\"%s\"", v);
        hist_samples(b, "grpc_request_duration_seconds", l, &h);
    }
    grpc_server_metrics(b, ms, nm);
    free(ms);
    for (size_t i = 0; i < rt->nworkers; i++) {
        const struct proxy_report *r = a->reports[i];

        if (r == NULL)
            continue;
        fe += r->fe_conns;
        unlabelled += r->unlabelled;
        for (int m = 0; m < 2; m++) {
            for (int s = 0; s < GRPC_CODE_COUNT; s++)
                self[m][s] += r->self_health[m][s];
        }
    }
    header(b, "switchyard_self_health_requests_total", "counter",
           "Calls to switchyard's own grpc.health.v1.Health (probes), counted apart from the "
           "calls it proxies.");
    for (int m = 0; m < 2; m++) {
        for (int s = 0; s < GRPC_CODE_COUNT; s++) {
            if (self[m][s] > 0)
                evbuffer_add_printf(b,
                                    "switchyard_self_health_requests_total{grpc_method=\"%s\","
                                    "grpc_code=\"%s\"} %llu\n",
                                    m == 0 ? "Check" : "Watch", go_code_names[s],
                                    (unsigned long long)self[m][s]);
        }
    }
    header(b, "switchyard_unlabelled_calls_total", "counter",
           "Calls counted under method \"other\": paths no backend answered as a real method, "
           "or past max_method_labels.");
    evbuffer_add_printf(b, "switchyard_unlabelled_calls_total %llu\n",
                        (unsigned long long)unlabelled);
    header(b, "grpc_active_connections", "gauge", "Open client (frontend) HTTP/2 connections.");
    evbuffer_add_printf(b, "grpc_active_connections %llu\n", (unsigned long long)fe);
    {
        uint64_t pools = 0, dropped = 0;

        for (size_t i = 0; i < rt->nworkers; i++) {
            pools += a->reports[i] != NULL ? a->reports[i]->pools : 0;
            dropped += a->reports[i] != NULL ? a->reports[i]->alog_dropped : 0;
        }
        header(b, "switchyard_backend_pools", "gauge",
               "Backend connection pools alive, one per worker, cluster and endpoint.");
        evbuffer_add_printf(b, "switchyard_backend_pools %llu\n", (unsigned long long)pools);
        header(b, "switchyard_endpoint_ids", "gauge",
               "Endpoint identities in use or free for reuse (addresses ever held at once).");
        evbuffer_add_printf(b, "switchyard_endpoint_ids %zu\n", bal_registry_size(rt->reg));
        header(b, "switchyard_access_log_dropped_total", "counter",
               "Access log lines dropped because the log could not keep up.");
        evbuffer_add_printf(b, "switchyard_access_log_dropped_total %llu\n",
                            (unsigned long long)dropped);
    }
    endpoint_metrics(a, b);
    upstream_metrics(a, b);
    resilience_metrics(a, b);
    reload_metrics(rt, b);
    trace_metrics(rt, b);
    header(b, "switchyard_build_info", "gauge", "Always 1; the labels say which build runs.");
    evbuffer_add_printf(b, "switchyard_build_info{version=\"%s\"} 1\n", SWITCHYARD_VERSION);
    process_metrics(rt, b);
}

/* ---- request handling ---- */

static void reply(struct evhttp_request *req, int code, const char *reason, const char *ctype,
                  struct evbuffer *body)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", ctype);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Cache-Control", "no-store");
    evhttp_send_reply(req, code, reason, body);
}

static void answer(struct proxy_admin *a, struct pending *p)
{
    struct evbuffer *b = evbuffer_new();

    if (p->kind == ADMIN_STATUS) {
        json_t *j = status_json(a);
        char *s = json_dumps(j, JSON_INDENT(2) | JSON_REAL_PRECISION(15));

        evbuffer_add(b, s, strlen(s));
        evbuffer_add(b, "\n", 1);
        free(s);
        json_decref(j);
        reply(p->req, 200, "OK", "application/json", b);
    } else {
        metrics_text(a, b);
        reply(p->req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
    }
    evbuffer_free(b);
}

static void collect_start(struct proxy_admin *a)
{
    a->collecting = true;
    a->nreports = 0;
    for (size_t i = 0; i < a->rt->nworkers; i++)
        proxy_worker_ask(&a->rt->workers[i], PROXY_ASK_REPORT);
}

void proxy_admin_report_ready(struct runtime *rt)
{
    struct proxy_admin *a = rt->admin;
    struct pending *p;

    if (a == NULL || !a->collecting)
        return;
    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_report *r;

        if (a->reports[i] != NULL)
            continue;
        r = atomic_exchange(&rt->workers[i].report, NULL);
        if (r != NULL) {
            a->reports[i] = r;
            a->nreports++;
        }
    }
    if (a->nreports < rt->nworkers)
        return;
    while ((p = a->pending) != NULL) {
        a->pending = p->next;
        answer(a, p);
        free(p);
    }
    gone_prune(a);
    for (size_t i = 0; i < rt->nworkers; i++) {
        proxy_report_free(a->reports[i]);
        a->reports[i] = NULL;
    }
    a->collecting = false;
}

static void on_report_ready(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    proxy_admin_report_ready(arg);
}

static void healthz(struct proxy_admin *a, struct evhttp_request *req)
{
    struct runtime *rt = a->rt;
    struct evbuffer *b = evbuffer_new();
    int code = 200;

    if (rt->draining) {
        code = 503;
        evbuffer_add_printf(b, "draining\n");
    } else {
        /* Only clusters with required = yes decide; the others are named. */
        for (size_t i = 0; i < rt->snap->nclusters; i++) {
            const struct bal_cluster *bc = &rt->snap->clusters[i];

            if (bc->nrotation > 0)
                continue;
            if (bc->conf->required)
                code = 503;
            evbuffer_add_printf(b, "cluster %s has no endpoint in rotation%s\n", bc->name,
                                bc->conf->required ? "" : " (required = no)");
        }
    }
    if (code == 200)
        evbuffer_add_printf(b, "ok\n");
    reply(req, code, code == 200 ? "OK" : "Service Unavailable", "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

/* ---- operator actions: POST /drain and /undrain ---- */

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...) __attribute__((format(printf, 4, 5)));

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *fmt,
                       ...)
{
    struct evbuffer *b = evbuffer_new();
    va_list ap;

    va_start(ap, fmt);
    evbuffer_add_vprintf(b, fmt, ap);
    va_end(ap);
    evbuffer_add(b, "\n", 1);
    reply(req, code, reason, "text/plain; charset=utf-8", b);
    evbuffer_free(b);
}

static int cluster_index(const struct conf *c, const char *name)
{
    for (size_t i = 0; i < c->nclusters; i++) {
        if (strcmp(c->clusters[i].name, name) == 0)
            return (int)i;
    }
    return -1;
}

/* Whether |ep| is what the operator named: its address ("10.0.0.7:50051",
 * "[::1]:50051", any spelling of it) or, for a name, the target it came from
 * ("users.svc:50051": every address of it). */
static bool ep_named(const struct conf *c, const struct bal_ep *ep, const struct conf_target *t,
                     const char *spec)
{
    char addr[BAL_ADDRSTRLEN];

    if (t->is_literal)
        return strcmp(bal_addr_str((const struct sockaddr *)&t->addr, addr, sizeof(addr)),
                      ep->addr_str) == 0;
    return strcasecmp(c->clusters[ep->cluster].targets[ep->target].spec, spec) == 0;
}

/* POST /drain?cluster=C&endpoint=HOST:PORT (|on|) or /undrain?... : the
 * endpoint leaves (or rejoins) the rotation in a snapshot published before
 * the answer; running calls on it finish. */
static void drain(struct proxy_admin *a, struct evhttp_request *req, bool on)
{
    struct runtime *rt = a->rt;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    const char *name, *spec, *verb = on ? "drain" : "undrain";
    struct evkeyvalq q;
    struct conf_target t;
    char err[256], list[512] = "";
    json_t *j, *addrs;
    size_t matched = 0, changed = 0;
    int ci;

    TAILQ_INIT(&q);
    if (query == NULL || evhttp_parse_query_str(query, &q) != 0 ||
        (name = evhttp_find_header(&q, "cluster")) == NULL ||
        (spec = evhttp_find_header(&q, "endpoint")) == NULL) {
        reply_text(req, 400, "Bad Request", "expected POST /%s?cluster=NAME&endpoint=HOST:PORT",
                   verb);
        evhttp_clear_headers(&q);
        return;
    }
    ci = cluster_index(rt->conf, name);
    if (ci < 0) {
        reply_text(req, 404, "Not Found", "no cluster named '%s'", name);
        evhttp_clear_headers(&q);
        return;
    }
    if (conf_parse_target(spec, &t, err, sizeof(err)) != 0) {
        reply_text(req, 400, "Bad Request", "endpoint: expected HOST:PORT, got '%s': %s", spec,
                   err);
        evhttp_clear_headers(&q);
        return;
    }
    addrs = json_array();
    for (size_t i = 0; i < bal_epset_count(rt->eps); i++) {
        struct bal_ep *ep = bal_epset_at(rt->eps, i);

        if (ep->cluster != (uint32_t)ci)
            continue;
        if (!ep_named(rt->conf, ep, &t, spec)) {
            if (strlen(list) + strlen(ep->addr_str) + 3 < sizeof(list))
                snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s",
                         list[0] != '\0' ? ", " : "", ep->addr_str);
            continue;
        }
        matched++;
        json_array_append_new(addrs, json_string(ep->addr_str));
        if (bal_epset_set_drained(rt->eps, ep, on)) {
            changed++;
            log_info("cluster %s: endpoint %s %s by the operator", name, ep->addr_str,
                     on ? "drained: out of rotation, running calls finish" : "undrained");
        }
    }
    conf_target_deinit(&t);
    if (matched == 0) {
        reply_text(req, 404, "Not Found", "cluster %s has no endpoint %s (its endpoints: %s)", name,
                   spec, list[0] != '\0' ? list : "none");
        json_decref(addrs);
        evhttp_clear_headers(&q);
        return;
    }
    if (changed > 0)
        proxy_snapshot_rebuild(rt); /* applied before we answer */
    j = json_object();
    json_object_set_new(j, "cluster", json_string(name));
    json_object_set_new(j, "endpoint", json_string(spec));
    json_object_set_new(j, "drained", json_boolean(on));
    json_object_set_new(j, "endpoints", addrs);
    json_object_set_new(j, "changed", json_integer((json_int_t)changed));
    {
        char *text = json_dumps(j, JSON_INDENT(2));
        struct evbuffer *b = evbuffer_new();

        evbuffer_add(b, text, strlen(text));
        evbuffer_add(b, "\n", 1);
        reply(req, 200, "OK", "application/json", b);
        evbuffer_free(b);
        free(text);
    }
    json_decref(j);
    evhttp_clear_headers(&q);
}

/* ---- request handling: routes, methods, the bearer token ---- */

static const struct admin_route {
    const char *path;
    enum admin_kind kind;
    uint16_t methods;   /* EVHTTP_REQ_* */
    const char *allow;  /* the Allow header of a 405 */
    bool changes_state; /* needs [admin] token_file's token when that is set */
} admin_routes[] = {
    {"/status", ADMIN_STATUS, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", false},
    {"/metrics", ADMIN_METRICS, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", false},
    {"/healthz", ADMIN_HEALTHZ, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD, "GET, HEAD", false},
    {"/drain", ADMIN_DRAIN, EVHTTP_REQ_POST, "POST", true},
    {"/undrain", ADMIN_UNDRAIN, EVHTTP_REQ_POST, "POST", true},
};

/* RFC 6750 §2.1: "Authorization: Bearer TOKEN". Both sides are hashed first,
 * so the comparison takes the same time whatever the length or the first
 * differing byte of what was sent. */
static bool bearer_ok(const struct conf_admin *ca, const char *h)
{
    unsigned char want[SHA256_DIGEST_LENGTH], got[SHA256_DIGEST_LENGTH];

    if (h == NULL || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    while (*h == ' ')
        h++;
    SHA256((const unsigned char *)ca->token, ca->token_len, want);
    SHA256((const unsigned char *)h, strlen(h), got);
    return CRYPTO_memcmp(want, got, sizeof(want)) == 0;
}

static void on_request(struct evhttp_request *req, void *arg)
{
    struct proxy_admin *a = arg;
    const struct conf_admin *ca = &a->rt->conf->admin;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    const struct admin_route *r = NULL;
    struct pending *p;

    for (size_t i = 0; path != NULL && i < sizeof(admin_routes) / sizeof(admin_routes[0]); i++) {
        if (strcmp(path, admin_routes[i].path) == 0)
            r = &admin_routes[i];
    }
    if (r == NULL) {
        reply_text(req, 404, "Not Found",
                   "try GET /status, /metrics or /healthz, or POST /drain or /undrain");
        return;
    }
    if ((r->methods & cmd) == 0) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", r->allow);
        reply_text(req, 405, "Method Not Allowed", "%s takes %s", r->path, r->allow);
        return;
    }
    if (r->changes_state && ca->token != NULL) {
        const char *h = evhttp_find_header(evhttp_request_get_input_headers(req), "Authorization");

        if (!bearer_ok(ca, h)) {
            evhttp_add_header(evhttp_request_get_output_headers(req), "WWW-Authenticate",
                              h == NULL ? "Bearer realm=\"switchyard-admin\""
                                        : "Bearer realm=\"switchyard-admin\", "
                                          "error=\"invalid_token\"");
            reply_text(req, 401, "Unauthorized", "%s needs Authorization: Bearer TOKEN%s", r->path,
                       h == NULL ? "" : " (the token sent does not match)");
            return;
        }
    }
    switch (r->kind) {
    case ADMIN_HEALTHZ:
        healthz(a, req);
        return;
    case ADMIN_DRAIN:
    case ADMIN_UNDRAIN:
        drain(a, req, r->kind == ADMIN_DRAIN);
        return;
    case ADMIN_STATUS:
    case ADMIN_METRICS:
        break;
    }
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        abort();
    p->req = req;
    p->kind = r->kind;
    p->next = a->pending;
    a->pending = p;
    if (!a->collecting)
        collect_start(a);
}

int proxy_admin_start(struct runtime *rt)
{
    const struct conf_admin *ca = &rt->conf->admin;
    struct proxy_admin *a;
    struct evconnlistener *l;

    rt->ev_report_ready = event_new(rt->base, -1, 0, on_report_ready, rt);
    if (ca->listen == NULL)
        return 0;
    a = calloc(1, sizeof(*a));
    if (a == NULL)
        abort();
    a->rt = rt;
    a->reports = calloc(rt->nworkers, sizeof(*a->reports));
    a->http = evhttp_new(rt->base);
    if (a->reports == NULL || a->http == NULL)
        abort();
    /* Limits against a client that sends too much or too slowly (issue
     * 12.4): no admin request has a body, and every header fits in a few
     * hundred bytes. Over a limit evhttp answers 431/413 and closes. */
    evhttp_set_max_headers_size(a->http, ADMIN_MAX_HEADERS);
    evhttp_set_max_body_size(a->http, ADMIN_MAX_BODY);
    evhttp_set_timeout(a->http, ADMIN_TIMEOUT_S);
    /* Every method reaches on_request, which answers 405 with Allow. */
    evhttp_set_allowed_methods(a->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE |
                                            EVHTTP_REQ_CONNECT | EVHTTP_REQ_PATCH);
    evhttp_set_gencb(a->http, on_request, a);
    l = evconnlistener_new_bind(
        rt->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        128, (const struct sockaddr *)&ca->listen_addr, (int)ca->listen_addrlen);
    if (l == NULL || evhttp_bind_listener(a->http, l) == NULL) {
        log_error("admin: cannot listen on %s: %s", ca->listen, strerror(errno));
        if (l != NULL)
            evconnlistener_free(l);
        evhttp_free(a->http);
        free(a->reports);
        free(a);
        return -1;
    }
    proxy_listen_guard_admin(l);
    rt->admin = a;
    log_info("admin listening on %s (GET /status, /metrics, /healthz; POST /drain, /undrain%s)",
             ca->listen, ca->token != NULL ? " with a bearer token" : "");
    return 0;
}

void proxy_admin_stop(struct runtime *rt)
{
    struct proxy_admin *a = rt->admin;
    struct pending *p;

    if (rt->ev_report_ready != NULL) {
        event_free(rt->ev_report_ready);
        rt->ev_report_ready = NULL;
    }
    if (a == NULL)
        return;
    /* evhttp_free() frees the requests still waiting for an answer. */
    while ((p = a->pending) != NULL) {
        a->pending = p->next;
        free(p);
    }
    evhttp_free(a->http);
    while (a->ngone > 0)
        gone_del(a, a->ngone - 1);
    free(a->gone);
    for (size_t i = 0; i < rt->nworkers; i++)
        proxy_report_free(a->reports[i]);
    free(a->reports);
    free(a);
    rt->admin = NULL;
}
