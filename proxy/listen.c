/* Listeners: each worker's own SO_REUSEPORT sockets for listen and
 * listen_tls, their accept callbacks, and the rebinding a reload asks for.
 * Invariant: a worker's listeners are touched only by its thread; the main
 * thread only binds new sockets and hands them over through w->rebind.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "listen"
#include "proxy/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)l;
    (void)socklen;
    struct proxy_worker *w = arg;

    proxy_fe_accept(&w->fe, fd, sa, false);
}

static void on_accept_tls(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg)
{
    (void)l;
    (void)socklen;
    struct proxy_worker *w = arg;

    proxy_fe_accept(&w->fe, fd, sa, true);
}

/* ---- accept pausing ----
 * accept() failing for want of file descriptors (or kernel memory) leaves
 * the connection in the backlog, so the listener is readable again at once:
 * a busy loop, and a log line per turn (issue 12.3). Such a listener is
 * disabled instead, and a timer re-enables it once a descriptor can be
 * opened again. The error callback only runs while the listener is enabled,
 * so each episode is logged once. The timer's argument is the worker (or the
 * admin's listener, which lives until exit), never a listener a reload or a
 * drain may free in the meantime; event_base_free() drops a pending timer. */

#define ACCEPT_RETRY_MS 100

static bool out_of_fds(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

/* Whether a file descriptor can be had now (one, opened and closed). */
static bool fds_available(void)
{
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return !out_of_fds(errno);
    close(fd);
    return true;
}

static void retry_later(struct event_base *base, event_callback_fn cb, void *arg)
{
    struct timeval tv = {.tv_sec = 0, .tv_usec = ACCEPT_RETRY_MS * 1000};

    if (event_base_once(base, -1, EV_TIMEOUT, cb, arg, &tv) != 0)
        log_error("cannot arm the accept retry timer; accepting stays paused");
}

static void on_worker_accept_retry(evutil_socket_t fd, short what, void *arg);

/* Re-enables |w|'s listeners that are paused (both, if need be: enabling an
 * enabled listener changes nothing), or waits some more. */
static void worker_accept_retry(struct proxy_worker *w)
{
    if (w->draining || (w->listener == NULL && w->listener_tls == NULL))
        return;
    if (!fds_available()) {
        retry_later(w->base, on_worker_accept_retry, w);
        return;
    }
    if (w->listener != NULL)
        evconnlistener_enable(w->listener);
    if (w->listener_tls != NULL)
        evconnlistener_enable(w->listener_tls);
    log_info("worker %d: accepting again; %u client connections", w->index, w->fe.nconns);
}

static void on_worker_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    worker_accept_retry(arg);
}

static void on_accept_error(struct evconnlistener *l, void *arg)
{
    struct proxy_worker *w = arg;
    int err = EVUTIL_SOCKET_ERROR();
    struct rlimit rl = {0};

    evconnlistener_disable(l);
    getrlimit(RLIMIT_NOFILE, &rl);
    if (out_of_fds(err))
        log_warn("worker %d: accept paused: %s; %u client connections (file descriptor limit "
                 "%llu)",
                 w->index, err == EMFILE || err == ENFILE ? "too many open files" : strerror(err),
                 w->fe.nconns, (unsigned long long)rl.rlim_cur);
    else
        log_warn("worker %d: accept paused: %s", w->index, evutil_socket_error_to_string(err));
    /* A single pending timer per worker would be tidier, but it would need a
     * field in struct proxy_worker; a second timer only re-enables twice. */
    retry_later(w->base, on_worker_accept_retry, w);
}

static void on_admin_accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct evconnlistener *l = arg;

    (void)fd;
    (void)what;
    if (!fds_available()) {
        retry_later(evconnlistener_get_base(l), on_admin_accept_retry, l);
        return;
    }
    evconnlistener_enable(l);
    log_info("admin: accepting again");
}

static void on_admin_accept_error(struct evconnlistener *l, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    struct rlimit rl = {0};

    (void)arg; /* the evhttp the listener feeds */
    evconnlistener_disable(l);
    getrlimit(RLIMIT_NOFILE, &rl);
    log_warn("admin: accept paused: %s (file descriptor limit %llu)",
             err == EMFILE || err == ENFILE ? "too many open files"
                                            : evutil_socket_error_to_string(err),
             (unsigned long long)rl.rlim_cur);
    retry_later(evconnlistener_get_base(l), on_admin_accept_retry, l);
}

void proxy_listen_guard_admin(struct evconnlistener *l)
{
    evconnlistener_set_error_cb(l, on_admin_accept_error);
}

static evutil_socket_t bind_listener(const char *name, const struct sockaddr_storage *ss,
                                     socklen_t sslen, char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;

    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    /* SO_REUSEPORT: every worker has its own accept queue; the kernel spreads
     * connections between them. */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) != 0 ||
        bind(fd, sa, sslen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "%s: %s", name, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* SO_REUSEPORT lets any process of the same user bind a port our workers
 * listen on, and take half its connections. A socket bound without
 * SO_REUSEPORT first tells: the kernel refuses it next to any listener on
 * that address (SO_REUSEADDR only forgives TIME_WAIT leftovers). */
static int probe_free(const char *name, const struct sockaddr_storage *ss, socklen_t sslen,
                      char *err, size_t errlen)
{
    const struct sockaddr *sa = (const struct sockaddr *)ss;
    evutil_socket_t fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1, e;

    if (fd < 0) {
        snprintf(err, errlen, "%s: socket: %s", name, strerror(errno));
        return -1;
    }
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
        bind(fd, sa, sslen) == 0) {
        close(fd);
        return 0;
    }
    e = errno;
    close(fd);
    if (e == EADDRINUSE)
        snprintf(err, errlen, "%s: address already in use (another process listens there)", name);
    else
        snprintf(err, errlen, "%s: %s", name, strerror(e));
    return -1;
}

int proxy_listen_check(const struct conf_proxy *pc, char *err, size_t errlen)
{
    if (pc->listen != NULL &&
        probe_free(pc->listen, &pc->listen_addr, pc->listen_addrlen, err, errlen) != 0)
        return -1;
    if (pc->listen_tls != NULL &&
        probe_free(pc->listen_tls, &pc->listen_tls_addr, pc->listen_tls_addrlen, err, errlen) != 0)
        return -1;
    return 0;
}

static void swap_listener(struct proxy_worker *w, struct evconnlistener **l, evutil_socket_t fd,
                          evconnlistener_cb cb)
{
    if (*l != NULL)
        evconnlistener_free(*l); /* closes the old socket; its connections stay */
    *l = NULL;
    if (fd < 0)
        return;
    if (w->draining) {
        close(fd);
        return;
    }
    *l = evconnlistener_new(w->base, cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (*l == NULL) {
        log_error("worker %d: evconnlistener_new failed after a reload", w->index);
        close(fd);
        return;
    }
    evconnlistener_set_error_cb(*l, on_accept_error);
}

static void rebind_free(struct proxy_rebind *rb)
{
    if (rb == NULL)
        return;
    if (rb->fd >= 0)
        close(rb->fd);
    if (rb->fd_tls >= 0)
        close(rb->fd_tls);
    free(rb);
}

void proxy_listen_apply_rebind(struct proxy_worker *w)
{
    struct proxy_rebind *rb = atomic_exchange(&w->rebind, NULL);

    if (rb == NULL)
        return;
    if (rb->plain)
        swap_listener(w, &w->listener, rb->fd, on_accept);
    if (rb->tls)
        swap_listener(w, &w->listener_tls, rb->fd_tls, on_accept_tls);
    free(rb);
}

static bool same_listen(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

int proxy_workers_rebind(struct runtime *rt, const struct conf *oc, const struct conf *nc,
                         char *err, size_t errlen)
{
    const struct conf_proxy *np = &nc->proxy;
    bool plain = !same_listen(oc->proxy.listen, np->listen);
    bool tls = !same_listen(oc->proxy.listen_tls, np->listen_tls);
    struct proxy_rebind **rbs;

    if (!plain && !tls)
        return 0;
    if ((plain && np->listen != NULL &&
         probe_free(np->listen, &np->listen_addr, np->listen_addrlen, err, errlen) != 0) ||
        (tls && np->listen_tls != NULL &&
         probe_free(np->listen_tls, &np->listen_tls_addr, np->listen_tls_addrlen, err, errlen) !=
             0))
        return -1;
    rbs = calloc(rt->nworkers, sizeof(*rbs));
    if (rbs == NULL)
        abort();
    /* Bind everything first: a reload that cannot bind changes nothing. */
    for (size_t i = 0; i < rt->nworkers; i++) {
        struct proxy_rebind *rb = calloc(1, sizeof(*rb));

        if (rb == NULL)
            abort();
        rb->plain = plain;
        rb->tls = tls;
        rb->fd = rb->fd_tls = -1;
        rbs[i] = rb;
        if ((plain && np->listen != NULL &&
             (rb->fd = bind_listener(np->listen, &np->listen_addr, np->listen_addrlen, err,
                                     errlen)) < 0) ||
            (tls && np->listen_tls != NULL &&
             (rb->fd_tls = bind_listener(np->listen_tls, &np->listen_tls_addr,
                                         np->listen_tls_addrlen, err, errlen)) < 0)) {
            for (size_t j = 0; j <= i; j++)
                rebind_free(rbs[j]);
            free(rbs);
            return -1;
        }
    }
    for (size_t i = 0; i < rt->nworkers; i++)
        rebind_free(atomic_exchange(&rt->workers[i].rebind, rbs[i]));
    free(rbs);
    return 0;
}

/* One SO_REUSEPORT listener of worker |w| on |name|, stored in |*out|. */
static int listener_new(struct proxy_worker *w, const char *name, const struct sockaddr_storage *ss,
                        socklen_t sslen, evconnlistener_cb cb, struct evconnlistener **out)
{
    char err[256];
    evutil_socket_t fd = bind_listener(name, ss, sslen, err, sizeof(err));

    if (fd < 0) {
        log_error("cannot listen on %s", err);
        return -1;
    }
    *out = evconnlistener_new(w->base, cb, w, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (*out == NULL) {
        close(fd);
        log_error("worker %d: evconnlistener_new failed", w->index);
        return -1;
    }
    evconnlistener_set_error_cb(*out, on_accept_error);
    return 0;
}

int proxy_listen_start(struct proxy_worker *w, const struct conf_proxy *pc)
{
    atomic_init(&w->rebind, NULL);
    if (pc->listen != NULL && listener_new(w, pc->listen, &pc->listen_addr, pc->listen_addrlen,
                                           on_accept, &w->listener) != 0)
        return -1;
    if (pc->listen_tls != NULL &&
        listener_new(w, pc->listen_tls, &pc->listen_tls_addr, pc->listen_tls_addrlen, on_accept_tls,
                     &w->listener_tls) != 0)
        return -1;
    return 0;
}

void proxy_listen_stop(struct proxy_worker *w)
{
    if (w->listener != NULL)
        evconnlistener_free(w->listener);
    if (w->listener_tls != NULL)
        evconnlistener_free(w->listener_tls);
    w->listener = w->listener_tls = NULL;
    rebind_free(atomic_exchange(&w->rebind, NULL));
}
