/* Integration tests of the REST module (switchyard-rest.so, docs/rest.md):
 * the transcoder and the libraries it needs (libprotobuf, libstdc++) are
 * loaded only when a cluster transcodes. A running switchyard's
 * /proc/PID/maps shows what it mapped: without REST neither the module nor
 * libprotobuf; with REST both. A module that cannot be found fails the start,
 * switchyard -t and a reload (which keeps the running configuration) with an
 * error naming the paths tried. The REST behaviour itself, through the
 * module, is test_rest's.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/support.h"

#define PROXY_T 15000
#define RUN_T   15000
#define MODULE  "switchyard-rest.so"

static void stop_all(void)
{
    sup_stop_all();
}

TestSuite(rest_module, .fini = stop_all, .timeout = 120);

/* The REST tests' descriptor set (make rest-peer builds it). */
static const char *user_pb(void)
{
    static char path[512];
    const char *d = getenv("SY_REST_DIR");

    snprintf(path, sizeof(path), "%s/user.pb", d != NULL ? d : "build/rest");
    cr_assert(access(path, R_OK) == 0, "%s is missing (make rest-peer)", path);
    return path;
}

/* A config on |port| with one cluster, transcoding when |rest|. */
static void conf_text(char *buf, size_t len, int port, bool rest)
{
    char tc[600] = "";

    if (rest)
        snprintf(tc, sizeof(tc), "transcode = on\ndescriptors = %s\n", user_pb());
    snprintf(buf, len,
             "[proxy]\nlisten = 127.0.0.1:%d\n\n[admin]\nlisten = off\n\n"
             "[cluster.users]\ntargets = 127.0.0.1:%d\nroutes = /\nhealth_check = off\n%s",
             port, sup_free_port(), tc);
}

/* How many lines of /proc/|pid|/maps name |needle|. */
static int maps_count(pid_t pid, const char *needle)
{
    char path[64], *maps, *p;
    int n = 0;

    snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
    maps = sup_read_file(path);
    cr_assert_not_null(maps, "cannot read %s", path);
    for (p = maps; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(maps);
    return n;
}

/* Starts |bin| (the release or the ASan build) on |conf|. */
static struct sup_proxy start(bool release, bool rest)
{
    struct sup_proxy px;
    int port = sup_free_port();
    char conf[2048];

    conf_text(conf, sizeof(conf), port, rest);
    if (release)
        cr_assert_eq(sup_start_proxy_release(&px, "sy", port, conf, PROXY_T), 0);
    else
        cr_assert_eq(sup_start_proxy(&px, "sy", port, conf, PROXY_T), 0);
    return px;
}

/* ---- what is mapped ---- */

Test(rest_module, without_rest_neither_the_module_nor_libprotobuf_is_mapped)
{
    struct sup_proxy px = start(true, false);
    pid_t pid = px.proc->pid;

    cr_expect_eq(maps_count(pid, "libprotobuf.so"), 0, "libprotobuf is mapped without REST");
    cr_expect_eq(maps_count(pid, MODULE), 0, MODULE " is mapped without REST");
    /* The release build's only C++ was the transcoder. (The ASan build maps
     * libstdc++ for libubsan, so only the release build is asked.) */
    cr_expect_eq(maps_count(pid, "libstdc++"), 0, "libstdc++ is mapped without REST");
    cr_expect_eq(sup_stop_clean(px.proc, 10000), 0);
}

Test(rest_module, without_rest_the_asan_build_maps_no_libprotobuf_either)
{
    struct sup_proxy px = start(false, false);

    cr_expect_eq(maps_count(px.proc->pid, "libprotobuf.so"), 0);
    cr_expect_eq(maps_count(px.proc->pid, MODULE), 0);
    cr_expect_eq(sup_stop_clean(px.proc, 10000), 0);
}

/* The check above can see them: with REST both are there. */
Test(rest_module, with_rest_the_module_and_libprotobuf_are_mapped)
{
    struct sup_proxy px = start(true, true);
    pid_t pid = px.proc->pid;

    cr_expect_gt(maps_count(pid, MODULE), 0, MODULE " is not mapped with REST");
    cr_expect_gt(maps_count(pid, "libprotobuf.so"), 0, "libprotobuf is not mapped with REST");
    cr_expect_eq(sup_stop_clean(px.proc, 10000), 0);
}

/* ---- a module that cannot be loaded ---- */

/* Runs `SY_BIN [-t] -c CONF` with $SWITCHYARD_REST_MODULE set to a file that
 * does not exist; returns its exit status and its stderr in |*err|. */
static int run_missing(bool test_only, bool rest, char **err, char *missing, size_t mlen)
{
    char conf[2048], path[600];
    const char *argv[6];
    struct sup_proc *p;
    int n = 0, st;

    snprintf(missing, mlen, "%s/nowhere/" MODULE, sup_tmpdir());
    setenv("SWITCHYARD_REST_MODULE", missing, 1);
    conf_text(conf, sizeof(conf), sup_free_port(), rest);
    cr_assert_eq(sup_write_file("rest.ini", conf, path, sizeof(path)), 0);
    argv[n++] = sup_proxy_bin();
    if (test_only)
        argv[n++] = "-t";
    argv[n++] = "-c";
    argv[n++] = path;
    argv[n] = NULL;
    st = sup_run("sy", argv, RUN_T, &p);
    unsetenv("SWITCHYARD_REST_MODULE");
    cr_assert_not_null(p);
    *err = sup_read_file(p->err_path);
    cr_assert_not_null(*err);
    return st;
}

static void expect_module_error(const char *err, const char *missing)
{
    cr_expect(strstr(err, "rest.ini:") != NULL, "no FILE:LINE in: %s", err);
    cr_expect(strstr(err, "[cluster.users] transcode:") != NULL, "no [cluster] key in: %s", err);
    cr_expect(strstr(err, missing) != NULL, "the path tried (%s) is not named in: %s", missing,
              err);
    cr_expect(strstr(err, "No such file") != NULL, "no dlerror() reason in: %s", err);
}

Test(rest_module, a_missing_module_fails_the_start_naming_it)
{
    char missing[600], *err;
    int st = run_missing(false, true, &err, missing, sizeof(missing));

    cr_expect(st != 0 && st < 128, "exit status %d: expected an error exit, not a crash", st);
    expect_module_error(err, missing);
    free(err);
}

Test(rest_module, a_missing_module_fails_switchyard_t)
{
    char missing[600], *err;
    int st = run_missing(true, true, &err, missing, sizeof(missing));

    cr_expect_eq(st, 1, "switchyard -t exit status %d", st);
    expect_module_error(err, missing);
    free(err);
}

/* The same module setting, no REST: nothing is loaded, so nothing fails. */
Test(rest_module, a_missing_module_is_fine_without_rest)
{
    char missing[600], *err;
    int st = run_missing(true, false, &err, missing, sizeof(missing));

    cr_expect_eq(st, 0, "switchyard -t without REST failed (%d): %s", st, err);
    free(err);
}

Test(rest_module, a_reload_to_rest_without_the_module_keeps_the_running_config)
{
    struct sup_proxy px;
    int port = sup_free_port();
    char conf[2048], path[600], missing[600];

    snprintf(missing, sizeof(missing), "%s/nowhere/" MODULE, sup_tmpdir());
    setenv("SWITCHYARD_REST_MODULE", missing, 1);
    conf_text(conf, sizeof(conf), port, false);
    cr_assert_eq(sup_start_proxy(&px, "sy", port, conf, PROXY_T), 0);
    unsetenv("SWITCHYARD_REST_MODULE");
    /* Same listener, now transcoding. */
    conf_text(conf, sizeof(conf), port, true);
    cr_assert_eq(sup_write_file("sy.ini", conf, path, sizeof(path)), 0);
    cr_assert_str_eq(path, px.conf);
    sup_signal(px.proc, SIGHUP);
    cr_assert(sup_wait_log(px.proc, "reload failed, keeping the running configuration", 0, 10000));
    cr_expect_gt(sup_log_count(px.proc, missing), 0, "the reload error does not name %s", missing);
    cr_expect(sup_alive(px.proc), "switchyard exited after the failed reload");
    cr_expect_eq(sup_wait_port(px.proc, port, 5000), 0, "the running listener is gone");
    cr_expect_eq(sup_stop_clean(px.proc, 10000), 0);
}

/* ---- where it is looked for ---- */

/* Copies |from| to |to| with mode |mode|. */
static void copy_file(const char *from, const char *to, mode_t mode)
{
    const char *argv[] = {"/bin/cp", from, to, NULL};

    cr_assert_eq(sup_run("cp", argv, RUN_T, NULL), 0, "cp %s %s failed", from, to);
    cr_assert_eq(chmod(to, mode), 0);
}

/* Runs the release binary copied to a directory of its own, with or without
 * the module beside it, as `switchyard -t` on a REST config. */
static int run_copied(bool with_module, char **err, char *dir, size_t dlen)
{
    const char *rel = sup_proxy_release_bin();
    char bin[700], mod[700], src_mod[700], conf[2048], path[600];
    const char *argv[5];
    struct sup_proc *p;
    const char *slash = strrchr(rel, '/');
    int st;

    snprintf(dir, dlen, "%s/copied", sup_tmpdir());
    cr_assert(mkdir(dir, 0755) == 0);
    snprintf(bin, sizeof(bin), "%s/switchyard", dir);
    copy_file(rel, bin, 0755);
    if (with_module) {
        snprintf(src_mod, sizeof(src_mod), "%.*s/" MODULE, slash != NULL ? (int)(slash - rel) : 1,
                 slash != NULL ? rel : ".");
        snprintf(mod, sizeof(mod), "%s/" MODULE, dir);
        copy_file(src_mod, mod, 0644);
    }
    conf_text(conf, sizeof(conf), sup_free_port(), true);
    cr_assert_eq(sup_write_file("rest.ini", conf, path, sizeof(path)), 0);
    argv[0] = bin;
    argv[1] = "-t";
    argv[2] = "-c";
    argv[3] = path;
    argv[4] = NULL;
    st = sup_run("sy", argv, RUN_T, &p);
    cr_assert_not_null(p);
    *err = sup_read_file(p->err_path);
    return st;
}

Test(rest_module, the_module_beside_the_binary_is_found)
{
    char dir[600], *err;
    int st = run_copied(true, &err, dir, sizeof(dir));

    cr_expect_eq(st, 0, "switchyard -t with the module beside it failed (%d): %s", st, err);
    free(err);
}

Test(rest_module, without_the_module_the_error_names_every_path_tried)
{
    char dir[600], want[700], *err;
    int st = run_copied(false, &err, dir, sizeof(dir));

    if (st == 0)
        cr_skip_test("a module is installed under the compiled-in prefix; it was loaded");
    cr_expect_eq(st, 1, "exit status %d: %s", st, err);
    snprintf(want, sizeof(want), "%s/" MODULE " (", dir);
    cr_expect(strstr(err, want) != NULL, "the binary's directory (%s) is not named in: %s", want,
              err);
    cr_expect(strstr(err, "/lib/switchyard/" MODULE " (") != NULL,
              "the installed module's path is not named in: %s", err);
    free(err);
}
