/* Keeps the deployment files honest without a Docker engine or a cluster:
 * scripts/check-deploy.py checks that docker/Dockerfile, docker/compose.yaml,
 * the manifests in docker/k8s and the INI files parse and agree (ports, config path,
 * target names, runtime libraries of the built binaries), and every INI that
 * ships (the ConfigMap's, docker/switchyard.ini, conf/demo.ini) passes
 * `switchyard -t`. It also checks that the checker catches drift, and runs
 * scripts/demo.sh (what `make demo` runs) from start to end.
 * Invariant: every process runs through tests/support (stopped by PID); the
 * drift tests edit copies in the per-test temp dir, never the repository.
 * SPDX-License-Identifier: MIT */
#include <criterion/criterion.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/support/support.h"

#define PYTHON    "/usr/bin/python3" /* Debian's, which has python3-yaml */
#define CHECK_T   60000              /* ms for one checker run */
#define SY_T_T    30000              /* ms for one `switchyard -t` (ASan) */
#define DEMO_T    90000              /* ms for scripts/demo.sh (about 15 s normally) */
#define MAX_LINES 64

static void stop_all(void)
{
    sup_stop_all();
}

TestSuite(deploy, .fini = stop_all, .timeout = 240);

/* The repository: $SY_TOP (make test sets it), else the current directory. */
static const char *top(void)
{
    const char *s = getenv("SY_TOP");

    return s && *s ? s : ".";
}

static void top_path(char *buf, size_t len, const char *rel)
{
    snprintf(buf, len, "%s/%s", top(), rel);
}

/* Runs |argv| to completion; returns its status and prints its output on failure
 * when |want| differs. |*out| gets stdout + stderr (caller frees) if not NULL. */
static int run(const char *name, const char *const *argv, int timeout_ms, int want, char **out)
{
    struct sup_proc *p = NULL;
    int st = sup_run(name, argv, timeout_ms, &p);
    char *o, *e;

    cr_assert_not_null(p, "could not start %s", argv[0]);
    o = sup_read_file(p->out_path);
    e = sup_read_file(p->err_path);
    if (st != want) {
        fprintf(stderr, "---- %s exited with %d (expected %d); stdout:\n%s---- stderr:\n%s----\n",
                name, st, want, o ? o : "", e ? e : "");
    }
    if (out) {
        size_t lo = o ? strlen(o) : 0, le = e ? strlen(e) : 0;

        *out = malloc(lo + le + 1);
        cr_assert_not_null(*out);
        memcpy(*out, o ? o : "", lo);
        memcpy(*out + lo, e ? e : "", le + 1);
    }
    free(o);
    free(e);
    return st;
}

/* `switchyard -t -c |conf|` must say the file is ok. */
static void assert_conf_ok(const char *conf)
{
    const char *argv[] = {sup_proxy_bin(), "-t", "-c", conf, NULL};
    char *out = NULL;
    int st;

    cr_assert(access(argv[0], X_OK) == 0, "%s is not executable (set SY_BIN)", argv[0]);
    st = run("switchyard-t", argv, SY_T_T, 0, &out);
    cr_expect_eq(st, 0, "switchyard -t -c %s exited with %d:\n%s", conf, st, out);
    cr_expect(strstr(out, "configuration ok") != NULL, "switchyard -t -c %s said:\n%s", conf, out);
    free(out);
}

/* Runs the checker on the repository at |root| with |extra| arguments
 * (NULL-terminated); returns its status, |*out| its output. */
static int run_checker(const char *root, const char *const *extra, int want, char **out)
{
    char script[1024];
    const char *argv[24];
    int n = 0;

    top_path(script, sizeof(script), "scripts/check-deploy.py");
    argv[n++] = PYTHON;
    argv[n++] = script;
    argv[n++] = "--root";
    argv[n++] = root;
    while (extra && *extra && n < 23)
        argv[n++] = *extra++;
    argv[n] = NULL;
    return run("check-deploy", argv, CHECK_T, want, out);
}

/* ---- the files agree ---- */

Test(deploy, files_agree_and_runtime_libraries_are_installed)
{
    const char *bins[] = {sup_proxy_bin(), getenv("SY_HEALTH_BIN"), sup_backend_bin()};
    const char *extra[16];
    char *out = NULL;
    int n = 0, st;

    for (size_t i = 0; i < sizeof(bins) / sizeof(bins[0]); i++) {
        if (bins[i] && *bins[i] && access(bins[i], X_OK) == 0) {
            extra[n++] = "--binary";
            extra[n++] = bins[i];
        }
    }
    extra[n] = NULL;
    st = run_checker(top(), extra, 0, &out);
    cr_expect_eq(st, 0, "scripts/check-deploy.py found problems (exit %d):\n%s", st, out);
    free(out);
}

/* ---- every shipped INI passes switchyard -t ---- */

Test(deploy, configmap_ini_passes_switchyard_t)
{
    const char *extra[] = {"--extract", sup_tmpdir(), NULL};
    char ini[600], envf[600];
    char *env, *line, *save = NULL;
    int nvars = 0;

    cr_assert_eq(run_checker(top(), extra, 0, NULL), 0, "check-deploy failed; see above");
    snprintf(ini, sizeof(ini), "%s/configmap.ini", sup_tmpdir());
    snprintf(envf, sizeof(envf), "%s/configmap.env", sup_tmpdir());
    env = sup_read_file(envf);
    cr_assert_not_null(env, "check-deploy wrote no %s", envf);
    /* The Deployment's environment, as the pod would have it (GRPC_PORT, ...). */
    for (line = strtok_r(env, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        char *eq = strchr(line, '=');

        cr_assert_not_null(eq, "bad line in %s: %s", envf, line);
        *eq = '\0';
        cr_assert_eq(setenv(line, eq + 1, 1), 0);
        nvars++;
    }
    cr_expect(nvars > 0, "the Deployment sets no environment for the ConfigMap's ${...}");
    cr_expect_not_null(getenv("GRPC_PORT"), "the Deployment does not set GRPC_PORT");
    free(env);
    assert_conf_ok(ini);
}

Test(deploy, docker_ini_passes_switchyard_t)
{
    char ini[1024];

    top_path(ini, sizeof(ini), "docker/switchyard.ini");
    unsetenv("SY_TARGETS");
    assert_conf_ok(ini); /* compose: backend:50051 */
    setenv("SY_TARGETS", "10.0.0.5:50051, 10.0.0.6:50051", 1);
    assert_conf_ok(ini); /* docker run -e SY_TARGETS=... */
}

Test(deploy, demo_ini_passes_switchyard_t)
{
    char ini[1024];

    top_path(ini, sizeof(ini), "conf/demo.ini");
    unsetenv("DEMO_PORT");
    unsetenv("DEMO_ADMIN_PORT");
    assert_conf_ok(ini);
}

/* ---- the checker catches drift ---- */

/* Copies what the checker reads into <tmpdir>/repo, applies the sed script
 * |sed| to |file| there, and expects the checker (given |extra| arguments,
 * NULL-terminated, or NULL) to fail with a line that names |file| and
 * contains |needle|. */
static void expect_drift_full(const char *file, const char *sed, const char *needle,
                              const char *const *extra, const char *named);

static void expect_drift_args(const char *file, const char *sed, const char *needle,
                              const char *const *extra)
{
    expect_drift_full(file, sed, needle, extra, file);
}

/* Like expect_drift_args(), but the checker's line names |named| rather
 * than the edited |file| (a missing object is reported where it is needed). */
static void expect_drift_full(const char *file, const char *sed, const char *needle,
                              const char *const *extra, const char *named)
{
    char repo[600], dst[700], src[1024], target[800];
    const char *mk[] = {"/bin/mkdir", "-p", dst, NULL};
    char *out = NULL, *orig, *edited;
    static const char *const copy[] = {"README.md",      "Makefile",      ".dockerignore",
                                       "docker",         "conf/demo.ini", "conf/switchyard.ini",
                                       "scripts/deps.sh"};

    snprintf(repo, sizeof(repo), "%s/repo", sup_tmpdir());
    for (size_t i = 0; i < sizeof(copy) / sizeof(copy[0]); i++) {
        char rel[256];
        const char *cp[] = {"/bin/cp", "-R", src, dst, NULL};

        snprintf(rel, sizeof(rel), "%s", copy[i]);
        snprintf(dst, sizeof(dst), "%s/%s", repo, dirname(rel));
        cr_assert_eq(run("mkdir", mk, 10000, 0, NULL), 0);
        top_path(src, sizeof(src), copy[i]);
        cr_assert_eq(run("cp", cp, 10000, 0, NULL), 0);
    }
    snprintf(target, sizeof(target), "%s/%s", repo, file);
    orig = sup_read_file(target);
    {
        const char *sed_argv[] = {"/bin/sed", "-i", "-e", sed, target, NULL};

        cr_assert_eq(run("sed", sed_argv, 10000, 0, NULL), 0);
    }
    edited = sup_read_file(target);
    cr_assert(orig && edited && strcmp(orig, edited) != 0, "sed '%s' changed nothing in %s", sed,
              file);
    free(orig);
    free(edited);

    cr_assert_eq(run_checker(repo, extra, 1, &out), 1, "the checker missed: %s in %s", sed, file);
    {
        char want[256];
        bool found = false;

        snprintf(want, sizeof(want), "check-deploy: %s", named);
        for (char *l = strstr(out, want); l; l = strstr(l + 1, want)) {
            char *end = strchr(l, '\n');

            if (end)
                *end = '\0';
            found = found || strstr(l, needle) != NULL;
            if (end)
                *end = '\n';
        }
        cr_expect(found, "no line names %s with '%s'; the checker said:\n%s", named, needle, out);
    }
    free(out);
}

static void expect_drift(const char *file, const char *sed, const char *needle)
{
    expect_drift_args(file, sed, needle, NULL);
}

static void expect_drift_named(const char *file, const char *sed, const char *needle,
                               const char *named)
{
    expect_drift_full(file, sed, needle, NULL, named);
}

Test(deploy, checker_catches_a_compose_port_that_differs)
{
    expect_drift("docker/compose.yaml", "s/\"50051:50051\"/\"50051:50052\"/", "50052");
}

Test(deploy, checker_catches_a_renamed_headless_service)
{
    expect_drift("docker/k8s/switchyard.ini",
                 "s/targets = echo-backend\\./targets = echo-backends./", "not a headless Service");
}

Test(deploy, checker_catches_a_probe_on_the_wrong_port)
{
    expect_drift("docker/k8s/deployment.yaml", "/grpc:/{n;s/port: 50051/port: 50052/}",
                 "grpc.port 50052");
}

Test(deploy, checker_catches_a_build_without_deps_sh)
{
    expect_drift("docker/Dockerfile", "s|RUN bash scripts/deps.sh|RUN apt-get install -y gcc|",
                 "scripts/deps.sh");
}

Test(deploy, checker_catches_a_config_path_that_differs)
{
    expect_drift("docker/Dockerfile", "s|\"/etc/switchyard/switchyard.ini\"]|\"/etc/sy.ini\"]|",
                 "/etc/switchyard/switchyard.ini");
}

Test(deploy, checker_catches_yaml_that_does_not_parse)
{
    expect_drift("docker/k8s/pdb.yaml", "$a\\  broken: [", "does not parse as YAML");
}

Test(deploy, checker_catches_an_env_var_the_deployment_does_not_set)
{
    expect_drift("docker/k8s/switchyard.ini", "s/\\${ADMIN_PORT}/${ADMIN_PORT_TYPO}/",
                 "ADMIN_PORT_TYPO");
}

Test(deploy, checker_catches_a_runtime_library_the_image_lacks)
{
    const char *extra[] = {"--binary", sup_proxy_bin(), NULL};

    cr_assert(access(extra[1], X_OK) == 0, "%s is not executable (set SY_BIN)", extra[1]);
    expect_drift_args("docker/Dockerfile", "s/ libjansson4 / /", "libjansson.so.4", extra);
}

/* libprotobuf is needed by the REST module only, which switchyard loads with
 * dlopen(): the checker reads the module beside the binary. */
Test(deploy, checker_catches_a_library_only_the_rest_module_needs)
{
    const char *extra[] = {"--binary", sup_proxy_bin(), NULL};

    cr_assert(access(extra[1], X_OK) == 0, "%s is not executable (set SY_BIN)", extra[1]);
    expect_drift_args("docker/Dockerfile", "s/ libprotobuf32 / /", "libprotobuf.so.32", extra);
}

Test(deploy, checker_catches_an_image_without_the_rest_module)
{
    expect_drift("docker/Dockerfile", "/switchyard-rest.so/d", "copies no switchyard-rest.so");
}

Test(deploy, checker_catches_admin_on_every_address_in_k8s)
{
    expect_drift("docker/k8s/switchyard.ini", "s/^listen = \\${POD_IP}:/listen = 0.0.0.0:/",
                 "[admin] listen is on every address");
}

Test(deploy, checker_catches_admin_off_loopback_in_the_image)
{
    expect_drift("docker/switchyard.ini", "s/-127.0.0.1:9901}/-0.0.0.0:9901}/",
                 "must stay on loopback");
}

Test(deploy, checker_catches_a_missing_network_policy)
{
    expect_drift_named("docker/k8s/networkpolicy.yaml", "s/^    - Ingress/    - Egress/",
                       "no NetworkPolicy", "docker/k8s/switchyard.ini");
}

Test(deploy, checker_catches_a_network_policy_open_to_all)
{
    expect_drift("docker/k8s/networkpolicy.yaml",
                 "/^    - from:/,/^      ports:/{/^      ports:/!d};s/^      ports:/    - ports:/",
                 "lets anyone reach the admin port");
}

Test(deploy, checker_catches_privilege_escalation)
{
    expect_drift("docker/k8s/backend-demo.yaml", "/allowPrivilegeEscalation: false/d",
                 "allowPrivilegeEscalation");
}

Test(deploy, checker_catches_no_seccomp_profile)
{
    expect_drift("docker/k8s/backend-demo.yaml", "/type: RuntimeDefault/d", "seccompProfile");
}

Test(deploy, checker_catches_capabilities_not_dropped)
{
    expect_drift("docker/k8s/deployment.yaml", "s/drop: \\[\"ALL\"\\]/drop: [\"NET_RAW\"]/",
                 "capabilities.drop");
}

Test(deploy, checker_catches_an_image_tag_in_a_manifest)
{
    expect_drift("docker/k8s/deployment.yaml", "s/image: switchyard$/image: switchyard:latest/",
                 "carries a tag");
}

Test(deploy, checker_catches_no_config_map_generator)
{
    expect_drift("docker/k8s/kustomization.yaml", "/^configMapGenerator:/,/^images:/{/^images:/!d}",
                 "configMapGenerator");
}

Test(deploy, checker_catches_a_missing_recommended_label)
{
    expect_drift("docker/k8s/service.yaml", "/app.kubernetes.io\\/component/d",
                 "app.kubernetes.io/component");
}

Test(deploy, checker_catches_a_unit_that_is_not_type_notify)
{
    expect_drift("docker/systemd/switchyard.service", "s/^Type=notify/Type=simple/",
                 "expected notify");
}

Test(deploy, checker_catches_a_unit_without_protect_system)
{
    expect_drift("docker/systemd/switchyard.service", "/^ProtectSystem=/d", "ProtectSystem");
}

Test(deploy, checker_catches_a_unit_that_cannot_reload)
{
    expect_drift("docker/systemd/switchyard.service", "/kill -HUP/d", "SIGHUP");
}

Test(deploy, checker_catches_logrotate_without_sigusr1)
{
    expect_drift("docker/logrotate/switchyard", "s/SIGUSR1/SIGHUP/", "SIGUSR1");
}

Test(deploy, checker_catches_a_build_stage_with_test_packages)
{
    expect_drift("docker/Dockerfile", "s/deps.sh --build/deps.sh/", "without --build");
}

Test(deploy, checker_catches_a_build_stage_that_runs_tests)
{
    expect_drift("docker/Dockerfile", "s/make -j\"$(nproc)\" all/make -j\"$(nproc)\" test/",
                 "not test");
}

/* ---- the same checks on what kubectl would apply ---- */

static bool have(const char *path)
{
    return access(path, X_OK) == 0;
}

/* `kubectl kustomize docker/k8s` (kubectl's built-in kustomize, no cluster
 * needed) renders the base; the checker then runs on the rendered objects:
 * the hashed ConfigMap name, the images and labels as kustomize applies them. */
Test(deploy, kustomize_base_renders_and_agrees)
{
    char dir[1024], rendered[600];
    const char *kubectl = "/usr/bin/kubectl";
    const char *argv[] = {kubectl, "kustomize", dir, NULL};
    const char *extra[] = {"--rendered", rendered, NULL};
    char *out = NULL, *yaml;
    FILE *f;
    int st;

    if (!have(kubectl))
        cr_skip_test("kubectl is not installed; scripts/check-deploy.py emulates kustomize "
                     "(deploy::files_agree_and_runtime_libraries_are_installed)");
    top_path(dir, sizeof(dir), "docker/k8s");
    snprintf(rendered, sizeof(rendered), "%s/rendered.yaml", sup_tmpdir());
    st = run("kubectl-kustomize", argv, CHECK_T, 0, &out);
    cr_assert_eq(st, 0, "kubectl kustomize failed:\n%s", out);
    /* run() merged stderr into |out|; the rendering itself is stdout only */
    {
        struct sup_proc *p = NULL;

        cr_assert_eq(sup_run("kubectl-kustomize", argv, CHECK_T, &p), 0);
        yaml = sup_read_file(p->out_path);
    }
    cr_assert_not_null(yaml);
    f = fopen(rendered, "w");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
    cr_expect(strstr(yaml, "name: switchyard-config-") != NULL,
              "the ConfigMap has no content hash:\n%s", yaml);
    cr_expect(strstr(yaml, "image: switchyard:") != NULL, "images: not applied:\n%s", yaml);
    cr_expect(strstr(yaml, "app.kubernetes.io/part-of: switchyard") != NULL, "no labels:\n%s",
              yaml);
    cr_expect(strstr(yaml, "kind: NetworkPolicy") != NULL, "no NetworkPolicy:\n%s", yaml);
    free(yaml);
    free(out);
    out = NULL;
    st = run_checker(top(), extra, 0, &out);
    cr_expect_eq(st, 0, "check-deploy --rendered found problems:\n%s", out);
    free(out);
}

/* ---- make install, the systemd unit and the man pages ---- */

/* `make install PREFIX=<tmp>` with the binaries make test built (BUILD is
 * the directory of $SY_BIN, so nothing is rebuilt). Fills |prefix|. */
static void install_into(char *prefix, size_t len)
{
    char bin[1024], build[1024], build_arg[1100], prefix_arg[700], dir_arg[1100];
    const char *argv[] = {"/usr/bin/make",
                          "--no-print-directory",
                          "-C",
                          dir_arg + 3,
                          build_arg,
                          prefix_arg,
                          "install",
                          NULL};
    char *out = NULL;
    int st;

    snprintf(prefix, len, "%s/prefix", sup_tmpdir());
    snprintf(bin, sizeof(bin), "%s", sup_proxy_bin());
    cr_assert(bin[0] == '/', "SY_BIN must be an absolute path (make test sets it), got %s", bin);
    snprintf(build, sizeof(build), "%s", dirname(bin));
    snprintf(build_arg, sizeof(build_arg), "BUILD=%s", build);
    snprintf(prefix_arg, sizeof(prefix_arg), "PREFIX=%s", prefix);
    snprintf(dir_arg, sizeof(dir_arg), "-C %s", top());
    st = run("make-install", argv, CHECK_T, 0, &out);
    cr_assert_eq(st, 0, "make install failed:\n%s", out);
    free(out);
}

static void expect_file(const char *prefix, const char *rel, int mode)
{
    char path[1200];
    struct stat sb;

    snprintf(path, sizeof(path), "%s/%s", prefix, rel);
    cr_expect(stat(path, &sb) == 0, "make install did not install %s", rel);
    if (mode >= 0 && stat(path, &sb) == 0)
        cr_expect_eq(sb.st_mode & 0777, (unsigned)mode, "%s: mode %o, want %o", rel,
                     sb.st_mode & 0777, (unsigned)mode);
}

Test(deploy, make_install_installs_binaries_man_pages_unit_and_examples)
{
    char prefix[700], unit[800], want[900];
    char *text;

    install_into(prefix, sizeof(prefix));
    expect_file(prefix, "bin/switchyard", 0755);
    expect_file(prefix, "bin/switchyard-health", 0755);
    expect_file(prefix, "lib/switchyard/switchyard-rest.so", 0644);
    expect_file(prefix, "share/man/man8/switchyard.8", 0644);
    expect_file(prefix, "share/man/man5/switchyard.ini.5", 0644);
    expect_file(prefix, "share/man/man1/switchyard-health.1", 0644);
    expect_file(prefix, "lib/systemd/system/switchyard.service", 0644);
    expect_file(prefix, "share/doc/switchyard/examples/switchyard.ini", 0644);
    expect_file(prefix, "share/doc/switchyard/examples/logrotate-switchyard", 0644);
    /* The unit runs the installed binary, not /usr/local's. */
    snprintf(unit, sizeof(unit), "%s/lib/systemd/system/switchyard.service", prefix);
    text = sup_read_file(unit);
    cr_assert_not_null(text);
    snprintf(want, sizeof(want), "ExecStart=%s/bin/switchyard -c /etc/switchyard/switchyard.ini",
             prefix);
    cr_expect(strstr(text, want) != NULL, "the installed unit lacks '%s':\n%s", want, text);
    cr_expect(strstr(text, "/usr/local/bin/") == NULL, "the unit still names /usr/local:\n%s",
              text);
    free(text);
}

/* The installed binary loads the installed REST module (PREFIX/lib/switchyard,
 * found from PREFIX/bin whatever PREFIX the build had) for a config that
 * transcodes. */
Test(deploy, installed_binary_finds_the_installed_rest_module)
{
    char prefix[700], bin[800], pb[600], conf[1200], path[600];
    const char *argv[] = {bin, "-t", "-c", path, NULL};
    const char *rest = getenv("SY_REST_DIR");
    char *out = NULL;
    int st;

    snprintf(pb, sizeof(pb), "%s/user.pb", rest != NULL ? rest : "build/rest");
    cr_assert(access(pb, R_OK) == 0, "%s is missing (make rest-peer)", pb);
    install_into(prefix, sizeof(prefix));
    snprintf(bin, sizeof(bin), "%s/bin/switchyard", prefix);
    snprintf(conf, sizeof(conf),
             "[proxy]\nlisten = 127.0.0.1:%d\n[admin]\nlisten = off\n[cluster.users]\n"
             "targets = 127.0.0.1:%d\nroutes = /\nhealth_check = off\ntranscode = on\n"
             "descriptors = %s\n",
             sup_free_port(), sup_free_port(), pb);
    cr_assert_eq(sup_write_file("rest.ini", conf, path, sizeof(path)), 0);
    unsetenv("SWITCHYARD_REST_MODULE");
    st = run("installed-t", argv, CHECK_T, 0, &out);
    cr_expect_eq(st, 0, "the installed switchyard -t on a REST config failed (%d):\n%s", st, out);
    free(out);
}

/* systemd-analyze verify on the installed unit: its syntax, that every
 * command exists, and (MANPATH) that its Documentation= man pages exist. */
Test(deploy, systemd_unit_verifies)
{
    const char *sa = "/usr/bin/systemd-analyze";
    char prefix[700], unit[800], manpath[800];
    const char *verify[] = {sa, "verify", unit, NULL};
    const char *security[] = {sa, "security", "--offline=yes", "--threshold=25", unit, NULL};
    char *out = NULL;
    int st;

    if (!have(sa))
        cr_skip_test("systemd-analyze is not installed; check-deploy.py checks the unit's keys");
    install_into(prefix, sizeof(prefix));
    snprintf(unit, sizeof(unit), "%s/lib/systemd/system/switchyard.service", prefix);
    snprintf(manpath, sizeof(manpath), "%s/share/man", prefix);
    setenv("MANPATH", manpath, 1);
    st = run("systemd-analyze-verify", verify, CHECK_T, 0, &out);
    /* verify reports unknown keys and bad values as warnings, exit 0: any output fails */
    cr_expect(st == 0 && out[0] == '\0', "systemd-analyze verify (exit %d):\n%s", st, out);
    free(out);
    /* "exposure level" 1.6 today; 2.5 leaves room, a lost protection does not fit */
    st = run("systemd-analyze-security", security, CHECK_T, 0, &out);
    cr_expect_eq(st, 0, "systemd-analyze security rates the unit above 2.5:\n%s", out);
    free(out);
}

Test(deploy, man_pages_render_without_warnings)
{
    static const char *const pages[] = {"docs/man/switchyard.8", "docs/man/switchyard.ini.5",
                                        "docs/man/switchyard-health.1"};

    if (!have("/usr/bin/groff"))
        cr_skip_test("groff is not installed");
    for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
        char page[1024];
        const char *argv[] = {"/usr/bin/groff", "-man", "-ww", "-z", "-Tutf8", page, NULL};
        char *out = NULL;
        int st;

        top_path(page, sizeof(page), pages[i]);
        st = run("groff", argv, CHECK_T, 0, &out);
        cr_expect(st == 0 && out[0] == '\0', "%s: groff (exit %d) warns:\n%s", pages[i], st, out);
        free(out);
    }
}

/* ---- logrotate ---- */

Test(deploy, logrotate_snippet_parses)
{
    char conf[1024], state[600];
    const char *argv[] = {"/usr/sbin/logrotate", "-d", "-s", state, conf, NULL};
    char *out = NULL;
    int st;

    if (!have(argv[0]))
        cr_skip_test("logrotate is not installed (scripts/deps.sh installs it)");
    top_path(conf, sizeof(conf), "docker/logrotate/switchyard");
    snprintf(state, sizeof(state), "%s/logrotate.state", sup_tmpdir());
    st = run("logrotate", argv, CHECK_T, 0, &out);
    cr_expect_eq(st, 0, "logrotate -d failed:\n%s", out);
    cr_expect(strstr(out, "error") == NULL, "logrotate -d complained:\n%s", out);
    cr_expect(strstr(out, "rotating pattern: /var/log/switchyard/*.log") != NULL,
              "logrotate -d said:\n%s", out);
    free(out);
}

/* ---- the README's quick start, as a newcomer follows it ---- */

/* Replaces the one occurrence of |from| in |text| (len |cap|) with |to|;
 * fails when the README no longer holds |from|. */
static void replace_once(char *text, size_t cap, const char *from, const char *to)
{
    char *at = strstr(text, from);
    size_t tail;

    cr_assert_not_null(at, "the README's my.ini no longer holds %s", from);
    tail = strlen(at + strlen(from));
    cr_assert_lt(strlen(text) - strlen(from) + strlen(to), cap);
    memmove(at + strlen(to), at + strlen(from), tail + 1);
    memcpy(at, to, strlen(to));
}

struct health_run {
    const char *const *argv;
    int want;
};

static bool health_cli_says(void *arg)
{
    const struct health_run *h = arg;
    struct sup_proc *p = NULL;

    return sup_run("switchyard-health", h->argv, 10000, &p) == h->want;
}

/* The my.ini of README.md's quick start, with free ports and two sy-backends
 * in place of its addresses: `-t` accepts it, switchyard serves calls with
 * it, and the README's two switchyard-health commands answer SERVING and
 * "both endpoints UP" (exit 0). Issue 19: a newcomer gets from the README
 * alone to a config of their own serving calls. */
Test(deploy, readme_quick_start_works_as_written)
{
    static const char start[] = "Write a configuration, `my.ini`:\n\n```ini\n";
    char *readme, *p, *end, ini[2048], path[600], listen[64], admin[64];
    const char *hb = getenv("SY_HEALTH_BIN");
    struct sup_backend b[2];
    struct sup_proc *sy;
    int port = sup_free_port(), aport = sup_free_port();

    top_path(path, sizeof(path), "README.md");
    readme = sup_read_file(path);
    cr_assert_not_null(readme);
    p = strstr(readme, start);
    cr_assert_not_null(p, "README.md has no quick-start my.ini");
    p += strlen(start);
    end = strstr(p, "```");
    cr_assert_not_null(end);
    cr_assert_lt((size_t)(end - p), sizeof(ini) / 2);
    snprintf(ini, sizeof(ini), "%.*s", (int)(end - p), p);
    free(readme);

    cr_assert_eq(sup_start_backends(b, 2, NULL), 0);
    snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
    snprintf(admin, sizeof(admin), "127.0.0.1:%d", aport);
    replace_once(ini, sizeof(ini), "127.0.0.1:50051", listen);
    replace_once(ini, sizeof(ini), "127.0.0.1:9901", admin);
    replace_once(ini, sizeof(ini), "127.0.0.1:50061", b[0].addr);
    replace_once(ini, sizeof(ini), "127.0.0.1:50062", b[1].addr);
    cr_assert_eq(sup_write_file("my.ini", ini, path, sizeof(path)), 0);
    assert_conf_ok(path);

    {
        const char *argv[] = {sup_proxy_bin(), "-c", path, NULL};

        sy = sup_spawn("switchyard", argv);
        cr_assert_not_null(sy);
        cr_assert_eq(sup_wait_port(sy, port, 15000), 0, "switchyard did not listen");
        cr_assert_eq(sup_wait_port(sy, aport, 15000), 0, "the admin did not listen");
    }
    {
        const char *cli = hb && *hb ? hb : "build/switchyard-health";
        const char *check[] = {cli, "check", listen, NULL};
        const char *status[] = {cli, "status", "--admin", admin, NULL};
        struct health_run h = {check, 0};

        cr_assert(sup_poll(health_cli_says, &h, 15000),
                  "switchyard-health check %s never said SERVING", listen);
        h = (struct health_run){status, 0};
        cr_assert(sup_poll(health_cli_says, &h, 15000),
                  "switchyard-health status never saw both endpoints UP");
    }
    cr_assert_eq(sup_stop(sy, 15000), 0, "switchyard exited non-zero on SIGTERM");
}

/* ---- make demo's script, from start to end ---- */

TestSuite(demo, .fini = stop_all, .timeout = 240);

Test(demo, runs_and_shows_a_backend_leave_and_rejoin)
{
    char script[1024], client[1024], backend[1024];
    const char *argv[] = {"/bin/bash", script, NULL};
    const char *need[] = {"ok: every backend answered",
                          "ok: b2 out of rotation",
                          "ok: b2 back in rotation",
                          "ok: no call failed",
                          "is unhealthy, out of rotation",
                          "back in rotation",
                          "Done in"};
    struct sup_proc *p;
    char *out;
    int st;

    top_path(script, sizeof(script), "scripts/demo.sh");
    snprintf(backend, sizeof(backend), "%s", sup_backend_bin());
    snprintf(client, sizeof(client), "%s/sy-client", dirname(backend));
    snprintf(backend, sizeof(backend), "%s", sup_backend_bin());
    cr_assert(access(client, X_OK) == 0, "%s is not executable", client);
    setenv("SY_CLIENT", client, 1);
    setenv("SY_BACKEND", backend, 1);
    setenv("SY_BIN", sup_proxy_bin(), 1);
    if (!getenv("SY_HEALTH_BIN"))
        setenv("SY_HEALTH_BIN", "build/switchyard-health", 1);
    unsetenv("DEMO_KEEP");
    unsetenv("DEMO_PORT");
    unsetenv("DEMO_ADMIN_PORT");
    setenv("NO_COLOR", "1", 1);

    p = sup_spawn("demo", argv);
    cr_assert_not_null(p);
    st = sup_wait_exit(p, DEMO_T);
    if (st == -2) /* SIGTERM first: its trap stops the processes it started */
        st = sup_stop(p, 15000);
    out = sup_read_file(p->out_path);
    cr_assert_not_null(out);
    if (st != 0)
        sup_dump_log(p, MAX_LINES);
    cr_expect_eq(st, 0, "scripts/demo.sh exited with %d", st);
    for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++)
        cr_expect(strstr(out, need[i]) != NULL, "demo output lacks '%s':\n%s", need[i], out);
    free(out);
}
