/* The switchyard binary's side of transcode_pb.h: the C++ transcoder
 * (transcode_pb.cc, libprotobuf, libstdc++) is the shared module
 * switchyard-rest.so, loaded with dlopen() the first time a configuration
 * transcodes, so a switchyard without REST never maps those libraries
 * (about 3 MiB of RSS). Each tc_*() here calls the module's function of the
 * same name through a pointer that tc_module_load() resolved.
 * Invariant: tc_module_load() runs on the main thread only; once it has
 * succeeded the pointers never change and the module is never unloaded, so
 * workers, which only reach tc_*() through a table built after the load,
 * read them without locks. Before a successful load every tc_*() fails (or
 * does nothing) instead of crashing. Never logs.
 * SPDX-License-Identifier: MIT */
#include "proxy/filters/transcode_pb.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef SY_MODULE_DIR /* $(PREFIX)/lib/switchyard: the Makefile defines it */
#define SY_MODULE_DIR "/usr/local/lib/switchyard"
#endif
#define MODULE_NAME "switchyard-rest.so"
#define NPATHS      3
#define ENV_MODULE  "SWITCHYARD_REST_MODULE"

static struct {
    bool loaded;
    struct tc_pool *(*pool_from_set)(const uint8_t *, size_t, char *, size_t);
    struct tc_pool *(*pool_from_files)(const struct tc_bytes *, size_t, char *, size_t);
    void (*pool_free)(struct tc_pool *);
    size_t (*pool_nservices)(const struct tc_pool *);
    const char *(*pool_service)(const struct tc_pool *, size_t);
    void (*pool_rules)(const struct tc_pool *, void (*)(const struct tc_rule *, void *),
                       void (*)(const char *, void *), void *);
    int (*file_deps)(const uint8_t *, size_t, void (*)(const char *, bool, void *), void *);
    bool (*method_has_field)(const struct tc_method *, const char *, size_t);
    int (*request_build)(const struct tc_method *, const char *, const char *, size_t,
                         const struct tc_param *, size_t, struct evbuffer *, char *, size_t);
    int (*response_json)(const struct tc_method *, const char *, const uint8_t *, size_t,
                         struct evbuffer *, char *, size_t);
    int (*status_details_json)(const struct tc_pool *, const uint8_t *, size_t, struct evbuffer *);
} mod;

#define SLOT(name, field) "tc_" name, &mod.field, sizeof(mod.field)
static const struct {
    const char *name;
    void *slot;
    size_t size;
} syms[] = {
    {SLOT("pool_from_set", pool_from_set)},
    {SLOT("pool_from_files", pool_from_files)},
    {SLOT("pool_free", pool_free)},
    {SLOT("pool_nservices", pool_nservices)},
    {SLOT("pool_service", pool_service)},
    {SLOT("pool_rules", pool_rules)},
    {SLOT("file_deps", file_deps)},
    {SLOT("method_has_field", method_has_field)},
    {SLOT("request_build", request_build)},
    {SLOT("response_json", response_json)},
    {SLOT("status_details_json", status_details_json)},
};

static const char not_loaded[] = "the REST module (" MODULE_NAME ") is not loaded";

/* Appends "PATH (WHY)" to |err| after what it holds, "; " between two. */
static void tried(char *err, size_t errlen, const char *path, const char *why)
{
    size_t used = strlen(err);
    size_t plen = strlen(path);

    if (used + 1 >= errlen)
        return;
    /* dlerror() starts with the path itself for a file it cannot open. */
    if (strncmp(why, path, plen) == 0 && strncmp(why + plen, ": ", 2) == 0)
        why += plen + 2;
    snprintf(err + used, errlen - used, "%s%s (%s)", used > 0 ? "; " : "", path, why);
}

/* Opens |path| and resolves every symbol; on failure says why in |why|. */
static int try_load(const char *path, char *why, size_t whylen)
{
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    const char *e;

    if (h == NULL) {
        e = dlerror();
        snprintf(why, whylen, "%s", e != NULL ? e : "dlopen failed");
        return -1;
    }
    for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
        void *s = dlsym(h, syms[i].name);

        if (s == NULL) {
            e = dlerror();
            snprintf(why, whylen, "%s", e != NULL ? e : syms[i].name);
            dlclose(h);
            return -1;
        }
        /* POSIX: a function's address from dlsym() fits a function pointer. */
        memcpy(syms[i].slot, &s, syms[i].size);
    }
    return 0; /* |h| stays open for the life of the process */
}

int tc_module_load(char *err, size_t errlen)
{
    char paths[NPATHS][PATH_MAX + 64];
    const char *env = getenv(ENV_MODULE);
    char list[NPATHS * (PATH_MAX + 64)] = "";
    size_t n = 0;

    if (mod.loaded)
        return 0;
    if (env != NULL && *env != '\0') {
        snprintf(paths[n++], sizeof(paths[0]), "%s", env);
    } else {
        char exe[PATH_MAX];
        ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        char *slash;

        /* Beside the binary (build/, build/asan/), then PREFIX/bin's
         * ../lib/switchyard (make install, whatever PREFIX it was given). */
        if (len > 0) {
            exe[len] = '\0';
            slash = strrchr(exe, '/');
        } else {
            slash = NULL;
        }
        if (slash != NULL) {
            *slash = '\0';
            snprintf(paths[n++], sizeof(paths[0]), "%s/" MODULE_NAME, exe);
            slash = strrchr(exe, '/');
        }
        if (slash != NULL) {
            *slash = '\0';
            snprintf(paths[n++], sizeof(paths[0]), "%s/lib/switchyard/" MODULE_NAME, exe);
        }
        snprintf(paths[n], sizeof(paths[0]), "%s/" MODULE_NAME, SY_MODULE_DIR);
        if (n == 0 || strcmp(paths[n], paths[n - 1]) != 0)
            n++;
    }
    for (size_t i = 0; i < n; i++) {
        char why[512];

        if (try_load(paths[i], why, sizeof(why)) == 0) {
            mod.loaded = true;
            return 0;
        }
        tried(list, sizeof(list), paths[i], why);
    }
    snprintf(err, errlen, "cannot load the REST transcoding module %s%s: tried %s", MODULE_NAME,
             env != NULL && *env != '\0' ? " ($" ENV_MODULE ")" : "", list);
    return -1;
}

/* ---- the calls ---- */

static void set_err(char *err, size_t errlen)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", not_loaded);
}

struct tc_pool *tc_pool_from_set(const uint8_t *p, size_t n, char *err, size_t errlen)
{
    if (!mod.loaded) {
        set_err(err, errlen);
        return NULL;
    }
    return mod.pool_from_set(p, n, err, errlen);
}

struct tc_pool *tc_pool_from_files(const struct tc_bytes *files, size_t n, char *err, size_t errlen)
{
    if (!mod.loaded) {
        set_err(err, errlen);
        return NULL;
    }
    return mod.pool_from_files(files, n, err, errlen);
}

void tc_pool_free(struct tc_pool *p)
{
    if (p != NULL && mod.loaded) /* a pool exists only once loaded */
        mod.pool_free(p);
}

size_t tc_pool_nservices(const struct tc_pool *p)
{
    return mod.loaded ? mod.pool_nservices(p) : 0;
}

const char *tc_pool_service(const struct tc_pool *p, size_t i)
{
    return mod.loaded ? mod.pool_service(p, i) : NULL;
}

void tc_pool_rules(const struct tc_pool *p, void (*cb)(const struct tc_rule *r, void *arg),
                   void (*bad)(const char *why, void *arg), void *arg)
{
    if (mod.loaded)
        mod.pool_rules(p, cb, bad, arg);
}

int tc_file_deps(const uint8_t *file, size_t n, void (*cb)(const char *name, bool self, void *arg),
                 void *arg)
{
    return mod.loaded ? mod.file_deps(file, n, cb, arg) : -1;
}

bool tc_method_has_field(const struct tc_method *m, const char *path, size_t len)
{
    return mod.loaded && mod.method_has_field(m, path, len);
}

int tc_request_build(const struct tc_method *m, const char *body_field, const char *body,
                     size_t blen, const struct tc_param *params, size_t n, struct evbuffer *out,
                     char *err, size_t errlen)
{
    if (!mod.loaded) {
        set_err(err, errlen);
        return -1;
    }
    return mod.request_build(m, body_field, body, blen, params, n, out, err, errlen);
}

int tc_response_json(const struct tc_method *m, const char *response_body, const uint8_t *msg,
                     size_t n, struct evbuffer *out, char *err, size_t errlen)
{
    if (!mod.loaded) {
        set_err(err, errlen);
        return -1;
    }
    return mod.response_json(m, response_body, msg, n, out, err, errlen);
}

int tc_status_details_json(const struct tc_pool *p, const uint8_t *status, size_t n,
                           struct evbuffer *out)
{
    return mod.loaded ? mod.status_details_json(p, status, n, out) : -1;
}
