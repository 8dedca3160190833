/* The [auth] filter: every call is authenticated before switchyard's own
 * health service answers it or it is routed; a call that fails never reaches
 * a backend. The verifier hangs on the snapshot's conf (proxy_auth_attach());
 * a conf without one refuses rather than letting calls through.
 * SPDX-License-Identifier: MIT */
#define LOG_MODULE "auth"
#include "proxy/filters/filters.h"

#include <stdio.h>
#include <stdlib.h>

#include "conf/conf.h"
#include "core/grpc.h"
#include "proxy/auth.h"
#include "proxy/call.h"
#include "proxy/conn.h"

static enum proxy_filter_rc on_request_head(struct proxy_call *call, void *st, void *ws)
{
    struct proxy_call_env *env = proxy_call_env(call);
    const struct conf *c = env->snap->conf;
    struct proxy_head *h = proxy_call_req_head(call);
    nghttp2_nv *out = NULL;
    size_t nout = 0, pathlen;
    const uint8_t *path = proxy_call_path(call, &pathlen);
    char msg[128];
    int rc;

    (void)st;
    (void)ws;
    if (c->auth.mode == CONF_AUTH_OFF)
        return PROXY_FILTER_CONTINUE;
    rc = proxy_auth_request(c->auth.verifier, path, pathlen, h->nv, h->n,
                            (double)proxy_loop_wall_ms(env->base) / 1000.0, &out, &nout);
    if (rc == PROXY_AUTH_OK) {
        /* authorization stripped, x-jwt-* claims added: forward that instead. */
        if (out != NULL)
            proxy_head_replace(h, out, nout);
        free(out);
        return PROXY_FILTER_CONTINUE;
    }
    snprintf(msg, sizeof(msg), "switchyard: %s", proxy_auth_reason(rc));
    proxy_call_fail(call, GRPC_UNAUTHENTICATED, msg);
    return PROXY_FILTER_STOP;
}

const struct proxy_filter proxy_filter_auth = {
    .name = "auth",
    .on_request_head = on_request_head,
};
