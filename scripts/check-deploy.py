#!/usr/bin/python3
"""Keeps the deployment files honest without a Docker engine or a cluster.

Checks that docker/Dockerfile, docker/compose.yaml, docker/switchyard.ini and
docker/k8s/*.yaml parse and agree with each other and with the repository:

  - every YAML file parses, and every Kubernetes object has a kind and a name;
  - the Dockerfile builds with the commands the README gives (scripts/deps.sh,
    make), its runtime stages install no -dev package and run as a non-root
    user, the proxy image carries the REST module (switchyard-rest.so), and
    (with --binary) its runtime packages provide every shared library the
    binaries load, the REST module beside a switchyard binary included;
  - ports agree: Dockerfile EXPOSE and HEALTHCHECK, compose ports, Kubernetes
    containerPorts, probes and Services, and the listen/targets of the INI
    files;
  - the config path agrees: Dockerfile ENTRYPOINT/CMD, compose volume,
    Deployment args and the ConfigMap's mountPath and key;
  - switchyard's target in the ConfigMap names the headless Service, whose
    port is the backends' containerPort; every ${VAR} it needs is set by the
    Deployment; terminationGracePeriodSeconds covers preStop + drain_timeout,
    and compose's stop_grace_period covers drain_timeout;
  - docker/k8s is a kustomize base: the ConfigMap comes from a
    configMapGenerator (a config change rolls the pods), every image has an
    `images:` entry, every object carries app.kubernetes.io/name, component
    and part-of; every pod passes the restricted Pod Security profile; an admin
    listener reachable from the pod network is guarded by a NetworkPolicy, and
    the images' own configs keep it on loopback;
  - docker/systemd/switchyard.service is Type=notify, reloads with SIGHUP, runs
    the image's config path and carries the hardening options;
    docker/logrotate/switchyard rotates LogsDirectory's files and signals
    SIGUSR1 (no copytruncate);
  - the image's build stage installs build packages only (deps.sh --build) and
    runs `make all`, never the tests.

It does not run switchyard: tests/integration/test_deploy.c runs
`switchyard -t` on the INI files, the ConfigMap's taken from --extract.

usage: scripts/check-deploy.py [--root DIR] [--binary FILE]... [--extract DIR]
                               [--rendered FILE]
  --root DIR     the repository (default: this script's parent's parent)
  --rendered FILE  the output of `kubectl kustomize docker/k8s`: check those
                 objects instead of emulating kustomize on the files (the
                 kustomization's own checks still read the files)
  --binary FILE  a built binary (switchyard, switchyard-health, sy-backend,
                 switchyard-rest.so) whose DT_NEEDED libraries the runtime
                 stage must install; for switchyard, the REST module it
                 loads from its own directory is checked too
  --extract DIR  write the ConfigMap's INI to DIR/configmap.ini and the
                 Deployment's environment to DIR/configmap.env (NAME=VALUE)

Exit status: 0 when every check passes, 1 otherwise (one line per problem on
stderr, each naming its file), 2 on bad usage.
SPDX-License-Identifier: MIT
"""

import argparse
import configparser
import json
import math
import os
import re
import shlex
import shutil
import subprocess
import sys

try:
    import yaml
except ImportError:  # pragma: no cover
    sys.stderr.write("check-deploy: python3-yaml is missing (scripts/deps.sh installs it)\n")
    sys.exit(1)

DOCKERFILE = "docker/Dockerfile"
COMPOSE = "docker/compose.yaml"
DOCKER_INI = "docker/switchyard.ini"
K8S = "docker/k8s"
SYSTEMD_UNIT = "docker/systemd/switchyard.service"
LOGROTATE = "docker/logrotate/switchyard"
# Where the ConfigMap's environment puts the pod IP (status.podIP): a TEST-NET
# address, only ever written into a config that `switchyard -t` reads.
POD_IP = "192.0.2.10"
RECOMMENDED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/component", "app.kubernetes.io/part-of")
BASE_IMAGE = "debian:bookworm-slim"
# The REST transcoder, which switchyard dlopen()s (make install: PREFIX/lib/switchyard).
REST_MODULE = "switchyard-rest.so"
# Libraries every Debian image has, and sanitizer runtimes of test builds.
BASE_PACKAGES = {"libc6", "libgcc-s1", "libstdc++6", "zlib1g", "libsystemd0"}
SANITIZER_PACKAGE = re.compile(r"^lib(asan|ubsan|lsan|tsan|hwasan)\d*$")
ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}")


class Problems:
    def __init__(self):
        self.lines = []
        self.checks = 0

    def check(self, ok, path, msg):
        """Counts one check; records |msg| about |path| when |ok| is false."""
        self.checks += 1
        if not ok:
            self.lines.append(f"{path}: {msg}")
        return ok


# ---- INI (switchyard's syntax: ';'/'#' comments, ' ;' inline, indented continuations) ----


def parse_ini(text, path, problems):
    cp = configparser.ConfigParser(
        interpolation=None,
        comment_prefixes=(";", "#"),
        inline_comment_prefixes=(";",),
        strict=True,
        empty_lines_in_values=False,
    )
    cp.optionxform = str
    try:
        cp.read_string(text, source=path)
    except configparser.Error as e:
        problems.check(False, path, f"does not parse as INI: {e}")
        return None
    return cp


def expand(value, env):
    """Expands ${NAME} and ${NAME:-default} as switchyard does; returns
    (expanded, names of unset variables without a default)."""
    missing = []

    def one(m):
        name, has_default, default = m.group(1), m.group(2), m.group(3)
        v = env.get(name)
        if has_default is not None:
            return v if v else default
        if v is None:
            missing.append(name)
            return ""
        return v

    return ENV_REF.sub(one, value), missing


def split_hostport(s):
    """'host:port' or '[v6]:port' -> (host, port or None)."""
    s = s.strip()
    m = re.fullmatch(r"\[([^\]]+)\]:(\d+)", s) or re.fullmatch(r"([^:\[\]]+):(\d+)", s)
    if not m:
        return s, None
    return m.group(1), int(m.group(2))


class IniView:
    """The values switchyard takes from a config file, after ${} expansion."""

    def __init__(self, path, text, env, problems):
        self.path = path
        self.ok = False
        self.missing = []
        cp = parse_ini(text, path, problems)
        if cp is None:
            return
        self.raw = cp

        def get(section, key, default=None):
            if not cp.has_option(section, key):
                return default
            v, miss = expand(cp.get(section, key), env)
            self.missing += miss
            return v

        self.listen = get("proxy", "listen", "0.0.0.0:50051")
        self.admin = get("admin", "listen", "127.0.0.1:9901")
        self.drain_timeout = get("proxy", "drain_timeout", "30s")
        self.clusters = {}
        for sec in cp.sections():
            if sec.startswith("cluster."):
                targets = get(sec, "targets", "") or ""
                self.clusters[sec[len("cluster.") :]] = [
                    t.strip() for t in re.split(r"[,\n]", targets) if t.strip()
                ]
        self.listen_host, self.port = split_hostport(self.listen)
        if self.admin.strip().lower() == "off":
            self.admin_host, self.admin_port = None, None
        else:
            self.admin_host, self.admin_port = split_hostport(self.admin)
        self.ok = problems.check(
            self.port is not None, path, f"[proxy] listen: expected IP:PORT, got '{self.listen}'"
        )

    def targets(self):
        return [t for ts in self.clusters.values() for t in ts]


def is_loopback(host):
    return host in ("localhost", "::1") or bool(re.fullmatch(r"127\.\d+\.\d+\.\d+", host or ""))


def duration_s(s):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*", s or "")
    if not m:
        return None
    n, unit = float(m.group(1)), m.group(2) or "s"
    return n * {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]


# ---- Dockerfile ----


class Stage:
    def __init__(self, base, name, line):
        self.base, self.name, self.line = base, name, line
        self.instr = []  # (INSTRUCTION, args text, line)

    def all(self, op):
        return [(a, n) for (i, a, n) in self.instr if i == op]

    def last(self, op):
        found = self.all(op)
        return found[-1] if found else (None, None)


def parse_dockerfile(text):
    """Returns (ARG defaults before the first FROM, [Stage])."""
    args, stages = {}, []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        start = i + 1
        line = lines[i]
        i += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        while line.rstrip().endswith("\\") and i < len(lines):
            nxt = lines[i]
            i += 1
            if nxt.lstrip().startswith("#"):
                continue
            line = line.rstrip()[:-1] + " " + nxt.strip()
        op, _, rest = line.strip().partition(" ")
        op = op.upper()
        rest = rest.strip()
        if op == "FROM":
            words = rest.split()
            words = [w for w in words if not w.startswith("--platform")]
            base = words[0] if words else ""
            name = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            stages.append(Stage(base, name, start))
        elif stages:
            stages[-1].instr.append((op, rest, start))
        elif op == "ARG":
            k, _, v = rest.partition("=")
            args[k.strip()] = v.strip()
    return args, stages


def exec_form(args):
    """A JSON-array or shell-form instruction argument as a list of words."""
    args = args.strip()
    if args.startswith("["):
        try:
            v = json.loads(args)
            if isinstance(v, list):
                return [str(x) for x in v]
        except ValueError:
            pass
    try:
        return shlex.split(args)
    except ValueError:
        return args.split()


def healthcheck_cmd(args):
    """HEALTHCHECK [--opts] CMD ... -> list of words (or None)."""
    words = args.split()
    while words and words[0].startswith("--"):
        words.pop(0)
    if not words or words[0].upper() != "CMD":
        return None
    return exec_form(args[args.upper().index("CMD") + 3 :])


def config_path_of(words):
    """The FILE of '-c FILE' / '--config FILE' / '-cFILE' in |words|, or None."""
    for j, w in enumerate(words):
        if w in ("-c", "--config") and j + 1 < len(words):
            return words[j + 1]
        if w.startswith("-c") and len(w) > 2 and not w.startswith("--"):
            return w[2:]
    return None


def ports_in(words):
    """Ports of HOST:PORT words (127.0.0.1:50051, localhost:9901, :50051)."""
    out = []
    for w in words:
        m = re.search(r"(?:^|[/@])(?:\[[^\]]*\]|[A-Za-z0-9_.-]*):(\d+)(?:/|$)", w)
        if m:
            out.append(int(m.group(1)))
    return out


def apt_packages(run_args):
    """Package names of 'apt-get install ...' in a RUN line."""
    pkgs = []
    for part in re.split(r"&&|;|\|\|", run_args):
        words = part.split()
        if "apt-get" in words and "install" in words:
            for w in words[words.index("install") + 1 :]:
                if not w.startswith("-"):
                    pkgs.append(w)
    return pkgs


# ---- YAML helpers ----


def load_yaml(root, rel, problems):
    """All documents of a YAML file, or None if it does not parse."""
    try:
        with open(os.path.join(root, rel)) as f:
            docs = [d for d in yaml.safe_load_all(f) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        problems.check(False, rel, f"does not parse as YAML: {e}")
        return None
    problems.check(True, rel, "")
    return docs


def get(d, *keys, default=None):
    for k in keys:
        if isinstance(d, dict) and k in d:
            d = d[k]
        elif isinstance(d, list) and isinstance(k, int) and k < len(d):
            d = d[k]
        else:
            return default
    return d


def matches(selector, labels):
    return bool(selector) and all((labels or {}).get(k) == v for k, v in selector.items())


# ---- the checks ----


class Checker:
    def __init__(self, root, binaries, extract, rendered=None):
        self.root = root
        self.binaries = binaries
        self.extract = extract
        self.rendered = rendered
        self.p = Problems()
        self.config_path = None  # from the Dockerfile's final stage
        self.runtime_pkgs = set()
        self.final = None
        self.stages = {}
        self.expose = set()  # EXPOSE of the final stage
        self.hc_ports = []  # ports in its HEALTHCHECK command
        self.docker_ini = None  # IniView of docker/switchyard.ini
        self.generators = set()  # configMapGenerator names
        self.generated_files = {}  # (generator, key) -> the file its data comes from
        self.images = {}  # kustomization images: by name
        self.unit_config = None  # the config path of the systemd unit's ExecStart

    def path(self, rel):
        return os.path.join(self.root, rel)

    def read(self, rel):
        try:
            with open(self.path(rel)) as f:
                return f.read()
        except OSError as e:
            self.p.check(False, rel, f"cannot read: {e.strerror}")
            return None

    def run(self):
        for check, rel in (
            (self.check_readme_commands, "README.md"),
            (self.check_dockerfile, DOCKERFILE),
            (self.check_dockerignore, ".dockerignore"),
            (self.check_compose, COMPOSE),
            (self.check_k8s, K8S),
            (self.check_systemd, SYSTEMD_UNIT),
            (self.check_logrotate, LOGROTATE),
            (self.check_libraries, DOCKERFILE),
        ):
            try:
                check()
            except (KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
                # A file shaped unlike anything checked here: say which, not a traceback.
                self.p.check(False, rel, f"unexpected structure ({type(e).__name__}: {e})")
        return self.p

    # README, Makefile: what "the scripts the README uses" are.
    def check_readme_commands(self):
        readme = self.read("README.md") or ""
        mk = self.read("Makefile") or ""
        self.p.check(
            os.access(self.path("scripts/deps.sh"), os.R_OK),
            "scripts/deps.sh",
            "missing: the README's set-up and the Dockerfile's build stage use it",
        )
        self.p.check(
            "scripts/deps.sh" in readme,
            "README.md",
            "does not mention scripts/deps.sh, which the Dockerfile's build stage runs",
        )
        self.p.check(
            re.search(r"^deps:.*\n(\t.*\n)*\t.*scripts/deps\.sh", mk, re.M) is not None,
            "Makefile",
            "its deps target does not run scripts/deps.sh (the Dockerfile runs that script)",
        )
        self.p.check(
            re.search(r"`make( [a-z]+)?`", readme) is not None,
            "README.md",
            "gives no `make` command (the Dockerfile's build stage runs make)",
        )

    def check_dockerfile(self):
        text = self.read(DOCKERFILE)
        if text is None:
            return
        args, stages = parse_dockerfile(text)
        if not self.p.check(bool(stages), DOCKERFILE, "has no FROM"):
            return
        names = set()
        for s in stages:
            base = ENV_REF.sub(lambda m: args.get(m.group(1), m.group(3) or ""), s.base)
            base = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)", lambda m: args.get(m.group(1), ""), base)
            self.p.check(
                base == BASE_IMAGE or base in names,
                DOCKERFILE,
                f"line {s.line}: FROM {s.base}: expected {BASE_IMAGE} or an earlier stage",
            )
            s.resolved_base = base
            if s.name:
                names.add(s.name)
                self.stages[s.name] = s

        # The build: the README's commands, not a private package list.
        build = stages[0]
        runs = [a for a, _ in build.all("RUN")]
        self.p.check(
            any(re.search(r"(^|[\s;&|])(bash\s+|\./)?scripts/deps\.sh(\s|$|&|;)", r) for r in runs),
            DOCKERFILE,
            f"build stage (line {build.line}) does not run scripts/deps.sh, the README's set-up script",
        )
        self.p.check(
            any(re.search(r"(^|[\s;&|])make(\s|$)", r) for r in runs),
            DOCKERFILE,
            f"build stage (line {build.line}) does not run make",
        )
        self.p.check(
            any(re.search(r"scripts/deps\.sh\s+--build\b", r) for r in runs),
            DOCKERFILE,
            f"build stage (line {build.line}) runs scripts/deps.sh without --build: it installs "
            "the test packages too",
        )
        for r, n in build.all("RUN"):
            for m in re.finditer(r"(?:^|[\s;&|])make\b([^;&|]*)", r):
                words = [w for w in m.group(1).split() if not w.startswith("-") and "=" not in w]
                self.p.check(
                    not set(words) & {"test", "unit", "integration", "asan", "check", "bench", "demo"},
                    DOCKERFILE,
                    f"line {n}: the build stage runs `make{m.group(1)}`; it should build (`make all`), "
                    "not test",
                )
        self.p.check(
            any(re.search(r"make\s+install\b.*PREFIX=/usr/local", r) for r in runs),
            DOCKERFILE,
            f"build stage (line {build.line}) does not run `make install PREFIX=/usr/local`",
        )
        for r, n in build.all("RUN"):
            self.p.check(
                not apt_packages(r),
                DOCKERFILE,
                f"line {n}: the build stage installs packages itself; add them to scripts/deps.sh",
            )
        copied = [a for a, _ in build.all("COPY")]
        self.p.check(
            any("scripts/deps.sh" in c or re.fullmatch(r"\.\s+\.", c.strip()) for c in copied),
            DOCKERFILE,
            "build stage does not COPY scripts/deps.sh",
        )
        for s in stages:
            for a, n in s.all("COPY") + s.all("ADD"):
                words = [w for w in a.split() if not w.startswith("--")]
                if "--from" in a or len(words) < 2:
                    continue
                for src in words[:-1]:
                    if src in (".", "./"):
                        continue
                    self.p.check(
                        os.path.exists(self.path(src)),
                        DOCKERFILE,
                        f"line {n}: COPY {src}: no such file in the repository",
                    )

        # The runtime: the final stage and every stage built on a clean base.
        self.final = final = stages[-1]
        runtime = [s for s in stages[1:] if s.resolved_base == BASE_IMAGE]
        self.p.check(bool(runtime), DOCKERFILE, "has no runtime stage (a second FROM of the base)")
        for s in runtime:
            for r, n in s.all("RUN"):
                for pkg in apt_packages(r):
                    self.runtime_pkgs.add(pkg)
                    self.p.check(
                        not pkg.endswith("-dev"),
                        DOCKERFILE,
                        f"line {n}: runtime stage installs {pkg}; it needs only runtime libraries",
                    )
                if apt_packages(r):
                    self.p.check(
                        "--no-install-recommends" in r,
                        DOCKERFILE,
                        f"line {n}: apt-get install without --no-install-recommends",
                    )
        self.p.check(
            "libgrpc29" in self.runtime_pkgs,
            DOCKERFILE,
            "runtime stage lacks libgrpc29, which switchyard-health (the HEALTHCHECK) needs",
        )
        user = self.effective(final, "USER")
        self.p.check(
            user is not None and user.split(":")[0] not in ("root", "0"),
            DOCKERFILE,
            f"final stage (line {final.line}) runs as root; add USER with a non-root user",
        )
        entry = exec_form(self.effective(final, "ENTRYPOINT") or "")
        cmd = exec_form(self.effective(final, "CMD") or "")
        words = entry + cmd
        self.p.check(
            bool(words) and os.path.basename(words[0]) == "switchyard",
            DOCKERFILE,
            f"final stage: ENTRYPOINT/CMD should run switchyard, got {words}",
        )
        self.config_path = config_path_of(words)
        self.p.check(
            self.config_path == "/etc/switchyard/switchyard.ini",
            DOCKERFILE,
            f"final stage: ENTRYPOINT/CMD should pass -c /etc/switchyard/switchyard.ini, got {words}",
        )
        for a, _ in self.all_effective(final, "EXPOSE"):
            for w in a.split():
                if re.fullmatch(r"\d+(/tcp)?", w):
                    self.expose.add(int(w.split("/")[0]))
        hc = self.effective(final, "HEALTHCHECK")
        hc_words = healthcheck_cmd(hc) if hc else None
        self.p.check(
            bool(hc_words) and os.path.basename(hc_words[0]) == "switchyard-health",
            DOCKERFILE,
            f"final stage: HEALTHCHECK should run switchyard-health, got {hc!r}",
        )
        self.hc_ports = ports_in(hc_words or [])
        # switchyard loads the REST module with dlopen(): no DT_NEEDED names it.
        copies = [a for a, _ in self.all_effective(final, "COPY")]
        self.p.check(
            any(REST_MODULE in a or re.search(r"/lib/switchyard/?(\s|$)", a) for a in copies),
            DOCKERFILE,
            f"final stage copies no {REST_MODULE} (make install puts it in PREFIX/lib/switchyard); "
            "REST transcoding would fail to load",
        )

        # The image's own default config and compose's must fit EXPOSE and HEALTHCHECK.
        self.docker_ini = self.check_container_ini(DOCKER_INI, f"{COMPOSE} mounts it")
        for a, n in final.all("COPY"):
            words = [w for w in a.split() if not w.startswith("--")]
            if "--from" not in a and len(words) == 2 and words[1] == self.config_path:
                if os.path.normpath(words[0]) != DOCKER_INI:
                    self.check_container_ini(words[0], f"{DOCKERFILE} line {n} makes it the image's config")

    def effective(self, stage, op):
        """The last |op| of |stage| or of the stages it is built on."""
        s = stage
        while s is not None:
            a, _ = s.last(op)
            if a is not None:
                return a
            s = self.stages.get(s.resolved_base)
        return None

    def all_effective(self, stage, op):
        out, s = [], stage
        while s is not None:
            out = s.all(op) + out
            s = self.stages.get(s.resolved_base)
        return out

    def check_container_ini(self, rel, why):
        """An INI meant for the image: its ports are the image's EXPOSE and
        HEALTHCHECK ports, and both listeners take connections from outside."""
        text = self.read(rel)
        if text is None:
            return None
        ini = IniView(rel, text, {}, self.p)
        if not ini.ok:
            return None
        self.p.check(
            ini.port in self.expose,
            rel,
            f"[proxy] listen port {ini.port} is not in {DOCKERFILE}'s EXPOSE {sorted(self.expose)} ({why})",
        )
        self.p.check(
            not self.hc_ports or ini.port in self.hc_ports,
            rel,
            f"[proxy] listen port {ini.port} differs from {DOCKERFILE}'s HEALTHCHECK port(s) {self.hc_ports}",
        )
        self.p.check(
            ini.listen_host in (None, "0.0.0.0", "::"),
            rel,
            f"[proxy] listen is on {ini.listen_host}: in a container it must be 0.0.0.0 to be "
            "reachable through a published port",
        )
        self.p.check(
            ini.admin_host is None or is_loopback(ini.admin_host),
            rel,
            f"[admin] listen is on {ini.admin_host}: in an image's default config it must stay on "
            "loopback (127.0.0.1); /status, /metrics and /healthz are for `docker exec`",
        )
        return ini

    def check_dockerignore(self):
        text = self.read(".dockerignore")
        if text is None:
            return
        pats = [l.strip().rstrip("/") for l in text.splitlines() if l.strip() and not l.startswith("#")]
        self.p.check("build" in pats, ".dockerignore", "does not exclude build/ (local build output)")
        for needed in ("scripts", "scripts/deps.sh", "Makefile", "conf", DOCKER_INI):
            self.p.check(
                needed not in pats,
                ".dockerignore",
                f"excludes {needed}, which the image build needs",
            )

    def check_compose(self):
        docs = load_yaml(self.root, COMPOSE, self.p)
        if docs is None:
            return
        c = docs[0] if docs else {}
        services = get(c, "services", default={}) or {}
        if not self.p.check(isinstance(services, dict) and services, COMPOSE, "has no services"):
            return
        base = os.path.dirname(COMPOSE)
        sy_name, sy = None, None
        for name, svc in services.items():
            b = get(svc, "build")
            if isinstance(b, dict):
                ctx = os.path.normpath(os.path.join(base, b.get("context", ".")))
                df = os.path.normpath(os.path.join(ctx, b.get("dockerfile", "Dockerfile")))
                self.p.check(
                    df == DOCKERFILE,
                    COMPOSE,
                    f"services.{name}.build: context + dockerfile is {df}, expected {DOCKERFILE}",
                )
                tgt = b.get("target")
                self.p.check(
                    tgt is None or tgt in self.stages,
                    COMPOSE,
                    f"services.{name}.build.target: {DOCKERFILE} has no stage '{tgt}' "
                    f"(stages: {sorted(self.stages)})",
                )
                if tgt is None or (self.final is not None and tgt == self.final.name):
                    sy_name, sy = name, svc
        if not self.p.check(sy is not None, COMPOSE, f"no service builds switchyard's stage of {DOCKERFILE}"):
            return
        ini = self.docker_ini
        # Ports: container side of "HOST:CONTAINER" / "IP:HOST:CONTAINER" / long syntax.
        cports = set()
        for p in get(sy, "ports", default=[]) or []:
            if isinstance(p, dict):
                cports.add(int(p.get("target", 0)))
            else:
                cports.add(int(str(p).split("/")[0].rsplit(":", 1)[-1]))
        if ini is not None and ini.ok:
            self.p.check(
                ini.port in cports,
                COMPOSE,
                f"services.{sy_name}.ports {sorted(cports)} do not publish [proxy] listen port "
                f"{ini.port} of {DOCKER_INI}",
            )
            for cp in cports:
                self.p.check(
                    cp in (ini.port, ini.admin_port),
                    COMPOSE,
                    f"services.{sy_name}.ports publishes container port {cp}, but {DOCKER_INI} "
                    f"listens on {ini.port} and {ini.admin_port}",
                )
        for p in cports:
            self.p.check(
                p in self.expose,
                COMPOSE,
                f"services.{sy_name}.ports: container port {p} is not in {DOCKERFILE}'s EXPOSE",
            )
        # The config file: mounted at the image's config path, from docker/switchyard.ini.
        mounted = False
        for v in get(sy, "volumes", default=[]) or []:
            if isinstance(v, dict):
                src, dst = v.get("source", ""), v.get("target", "")
            else:
                parts = str(v).split(":")
                src, dst = (parts + [""])[:2]
            if dst == self.config_path or (
                self.config_path and dst == os.path.dirname(self.config_path)
            ):
                mounted = True
                srcp = os.path.normpath(os.path.join(base, src))
                want = DOCKER_INI if dst == self.config_path else os.path.dirname(DOCKER_INI)
                self.p.check(
                    srcp == want,
                    COMPOSE,
                    f"services.{sy_name}.volumes mounts {srcp} at {dst}; expected {want}",
                )
        self.p.check(
            mounted,
            COMPOSE,
            f"services.{sy_name}.volumes does not mount {DOCKER_INI} at {self.config_path} "
            f"(the path in {DOCKERFILE}'s CMD)",
        )
        # SIGTERM drains for up to drain_timeout; Docker's SIGKILL must wait longer.
        if ini is not None and ini.ok:
            grace = compose_duration_s(str(get(sy, "stop_grace_period", default="10s")))
            drain = duration_s(ini.drain_timeout)
            if grace is not None and drain is not None:
                self.p.check(
                    grace > drain,
                    COMPOSE,
                    f"services.{sy_name}.stop_grace_period ({grace:g}s) is not longer than "
                    f"drain_timeout ({ini.drain_timeout}) of {DOCKER_INI}",
                )
        # Targets by compose service name must be services of this file, on a port they serve.
        if ini is not None and ini.ok:
            for t in ini.targets():
                host, port = split_hostport(t)
                if host in services:
                    svc = services[host]
                    tgt = get(svc, "build", "target")
                    stage = self.stages.get(tgt) if tgt else None
                    served = {int(str(x).split("/")[0]) for x in get(svc, "expose", default=[]) or []}
                    if stage is not None:
                        for a, _ in self.all_effective(stage, "EXPOSE"):
                            served |= {int(w.split("/")[0]) for w in a.split() if w[0].isdigit()}
                    self.p.check(
                        port in served,
                        COMPOSE,
                        f"services.{host} does not serve port {port}, the port of target {t} "
                        f"in {DOCKER_INI} (it exposes {sorted(served)})",
                    )
                elif not re.fullmatch(r"[\d.]+|\[.*\]", host or ""):
                    self.p.check(
                        False,
                        DOCKER_INI,
                        f"target {t}: '{host}' is not a service of {COMPOSE} "
                        f"(services: {sorted(services)})",
                    )

    # ---- Kubernetes ----

    def load_k8s(self):
        """The objects of the base as `kubectl apply -k` would create them:
        (file, object) pairs, and the kustomization (file, dict) or None.
        Without --rendered, kustomize's generator, images and labels are
        emulated on the files; with it, the rendered objects are used."""
        kdir = self.path(K8S)
        files = sorted(f for f in os.listdir(kdir) if f.endswith((".yaml", ".yml"))) if os.path.isdir(kdir) else []
        if not self.p.check(bool(files), K8S, "no manifests (*.yaml)"):
            return None, None
        objs = []  # (file, object)
        kustomization = None
        for f in files:
            rel = f"{K8S}/{f}"
            docs = load_yaml(self.root, rel, self.p)
            for d in docs or []:
                if get(d, "kind") == "Kustomization" or f == "kustomization.yaml":
                    kustomization = (rel, d)
                    continue
                ok = self.p.check(
                    isinstance(d, dict) and d.get("apiVersion") and d.get("kind") and get(d, "metadata", "name"),
                    rel,
                    "a document without apiVersion, kind and metadata.name",
                )
                if ok:
                    objs.append((rel, d))
        if not self.p.check(kustomization is not None, K8S, "no kustomization.yaml: the manifests are a kustomize base"):
            return objs, None
        rel, k = kustomization
        listed = set(k.get("resources") or [])
        for f in files:
            if f"{K8S}/{f}" != rel:
                self.p.check(f in listed, rel, f"resources does not list {f}")
        for r in listed:
            self.p.check(os.path.exists(os.path.join(kdir, r)), rel, f"resources lists {r}, which does not exist")
        objs = [(f, o) for f, o in objs if os.path.basename(f) in listed]

        # configMapGenerator: a ConfigMap per entry, its data from files.
        generated = []
        for g in k.get("configMapGenerator") or []:
            data = {}
            for spec in g.get("files") or []:
                key, _, src = str(spec).rpartition("=")
                key = key or os.path.basename(src)
                text = self.read(f"{K8S}/{src}")
                self.p.check(text is not None, rel, f"configMapGenerator {g.get('name')}: no file {src}")
                data[key] = text or ""
                self.generated_files[(g.get("name"), key)] = f"{K8S}/{src}"
            labels = dict(get(g, "options", "labels", default={}) or {})
            generated.append(
                (rel, {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": g.get("name"), "labels": labels}, "data": data})
            )
        self.generators = {g.get("name") for g in k.get("configMapGenerator") or []}
        self.p.check(bool(self.generators), rel, "no configMapGenerator: a config change would not roll the pods")
        for f, o in objs:
            self.p.check(
                o["kind"] != "ConfigMap" or get(o, "metadata", "name") not in self.generators,
                f,
                f"ConfigMap {get(o, 'metadata', 'name')} is also generated by {rel}",
            )

        # images: every container image of the base has an entry with a tag or digest.
        self.images = {}
        for im in k.get("images") or []:
            self.p.check(
                im.get("newTag") or im.get("digest"),
                rel,
                f"images: {im.get('name')} has no newTag or digest",
            )
            self.images[im.get("name")] = im
        for f, o in objs:
            for c in get(o, "spec", "template", "spec", "containers", default=[]) or []:
                name = str(c.get("image", "")).split("@")[0]
                base = re.sub(r":[^/:]*$", "", name)
                self.p.check(
                    base in self.images,
                    f,
                    f"container {c.get('name')}: image {name} has no entry in {rel}'s images: "
                    "(set images there, not in the manifests)",
                )
                self.p.check(
                    base == name,
                    f,
                    f"container {c.get('name')}: image {name} carries a tag; {rel}'s images: sets it",
                )

        if self.rendered:
            try:
                with open(self.rendered) as fh:
                    docs = [d for d in yaml.safe_load_all(fh) if d is not None]
            except (OSError, yaml.YAMLError) as e:
                self.p.check(False, self.rendered, f"cannot read the rendered base: {e}")
                return None, kustomization
            label = f"{K8S} (kubectl kustomize)"
            return [(label, d) for d in docs], kustomization

        # Emulate kustomize: generated ConfigMaps, images, labels.
        objs = objs + generated
        for f, o in objs:
            for c in get(o, "spec", "template", "spec", "containers", default=[]) or []:
                im = self.images.get(str(c.get("image", "")))
                if im:
                    c["image"] = f"{im.get('newName') or im.get('name')}:{im.get('newTag')}"
            for entry in k.get("labels") or []:
                o.setdefault("metadata", {}).setdefault("labels", {}).update(entry.get("pairs") or {})
        return objs, kustomization

    def check_k8s(self):
        objs, kustomization = self.load_k8s()
        if objs is None:
            return

        def of_kind(kind):
            return [(f, o) for f, o in objs if o["kind"] == kind]

        # switchyard's Deployment: the one whose container runs the image's command or the switchyard image.
        deployments = of_kind("Deployment")
        sy = None
        for f, d in deployments:
            for c in get(d, "spec", "template", "spec", "containers", default=[]) or []:
                if str(c.get("image", "")).split("/")[-1].split(":")[0] == "switchyard":
                    sy = (f, d, c)
        if not self.p.check(sy is not None, K8S, "no Deployment runs the switchyard image"):
            return
        dfile, dep, ctr = sy
        pod_spec = get(dep, "spec", "template", "spec", default={})
        pod_labels = get(dep, "spec", "template", "metadata", "labels", default={})
        self.p.check(
            matches(get(dep, "spec", "selector", "matchLabels"), pod_labels),
            dfile,
            "spec.selector.matchLabels does not match the pod template's labels",
        )

        # Named container ports.
        cports = {}
        for p in ctr.get("ports") or []:
            cports[p.get("name") or str(p["containerPort"])] = int(p["containerPort"])

        def resolve(port, ports=cports):
            if isinstance(port, int):
                return port
            if isinstance(port, str) and port.isdigit():
                return int(port)
            return ports.get(port)

        # Environment, as the pod would see it.
        limits_cpu = get(ctr, "resources", "limits", "cpu")
        env = {}
        for e in ctr.get("env") or []:
            name = e.get("name")
            if "value" in e:
                env[name] = str(e["value"])
            elif get(e, "valueFrom", "fieldRef", "fieldPath") == "metadata.namespace":
                env[name] = "default"
            elif get(e, "valueFrom", "fieldRef", "fieldPath") == "status.podIP":
                env[name] = POD_IP
            elif get(e, "valueFrom", "resourceFieldRef", "resource") == "limits.cpu":
                env[name] = str(max(1, math.ceil(cpu_cores(limits_cpu)))) if limits_cpu else "1"
            else:
                env[name] = "x"

        # Config path: args, mount and ConfigMap key.
        words = exec_form(" ".join(shlex.quote(str(w)) for w in (ctr.get("command") or []) + (ctr.get("args") or [])))
        cpath = config_path_of(words) if words else self.config_path
        self.p.check(
            cpath == self.config_path,
            dfile,
            f"container {ctr.get('name')}: config path {cpath} differs from {DOCKERFILE}'s {self.config_path}",
        )
        cm_name, cm_key = None, os.path.basename(cpath or "")
        mounts = {m.get("name"): m for m in ctr.get("volumeMounts") or []}
        for v in pod_spec.get("volumes") or []:
            m = mounts.get(v.get("name"))
            if not m or "configMap" not in v:
                continue
            mp = m.get("mountPath")
            if m.get("subPath"):
                mp_file, key = mp, m["subPath"]
            else:
                mp_file, key = os.path.join(mp, cm_key), cm_key
            items = get(v, "configMap", "items")
            if items:
                for it in items:
                    if os.path.join(mp, it.get("path", "")) == cpath:
                        key, mp_file = it.get("key"), cpath
            if mp_file == cpath:
                cm_name, cm_key = get(v, "configMap", "name"), key
        self.p.check(
            cm_name is not None,
            dfile,
            f"no ConfigMap volume is mounted so that {cpath} exists "
            f"(mountPath {os.path.dirname(cpath or '')} with key {os.path.basename(cpath or '')})",
        )
        cms = {o["metadata"]["name"]: (f, o) for f, o in of_kind("ConfigMap")}
        if cm_name is None:
            return
        if not self.p.check(cm_name in cms, dfile, f"mounts ConfigMap {cm_name}, which no manifest in {K8S} defines"):
            return
        cfile, cm = cms[cm_name]
        # A generated ConfigMap's problems belong to the file it is made from.
        gen_name = get(cm, "metadata", "name")
        for g in self.generators:
            if gen_name == g or re.fullmatch(re.escape(g) + r"-[a-z0-9]{10}", gen_name or ""):
                cfile = self.generated_files.get((g, cm_key), cfile)
                self.p.check(
                    not self.rendered or gen_name != g,
                    dfile,
                    f"mounts ConfigMap {gen_name} without the content hash kustomize appends",
                )
        self.p.check(
            any(gen_name == g or (gen_name or "").startswith(g + "-") for g in self.generators),
            dfile,
            f"mounts ConfigMap {gen_name}, which kustomization.yaml's configMapGenerator does not make "
            "(a config change would not roll the pods)",
        )
        ini_text = get(cm, "data", cm_key)
        if not self.p.check(isinstance(ini_text, str), cfile, f"ConfigMap {cm_name} has no data key {cm_key}"):
            return
        ini = IniView(cfile if cfile.endswith(".ini") else f"{cfile} ({cm_key})", ini_text, env, self.p)
        if self.extract:
            os.makedirs(self.extract, exist_ok=True)
            with open(os.path.join(self.extract, "configmap.ini"), "w") as f:
                f.write(ini_text)
            with open(os.path.join(self.extract, "configmap.env"), "w") as f:
                for k, v in env.items():
                    f.write(f"{k}={v}\n")
        for name in sorted(set(ini.missing)):
            self.p.check(
                False,
                cfile,
                f"uses ${{{name}}}, which container {ctr.get('name')} in {dfile} does not set "
                "(and it has no ${NAME:-default})",
            )
        if not ini.ok:
            return

        # Ports: INI listeners = containerPorts = probes = Services.
        self.p.check(
            ini.port in cports.values(),
            dfile,
            f"no containerPort is {ini.port}, the [proxy] listen port of {cfile}",
        )
        self.p.check(
            ini.admin_port is None or ini.admin_port in cports.values(),
            dfile,
            f"no containerPort is {ini.admin_port}, the [admin] listen port of {cfile}",
        )
        for v in cports.values():
            self.p.check(
                v in (ini.port, ini.admin_port),
                dfile,
                f"containerPort {v} is neither [proxy] nor [admin] listen of {cfile}",
            )
        if self.expose:
            self.p.check(
                set(cports.values()) <= self.expose,
                dfile,
                f"containerPorts {sorted(cports.values())} are not all in {DOCKERFILE}'s EXPOSE {sorted(self.expose)}",
            )
        probes = {k: ctr.get(k) for k in ("readinessProbe", "livenessProbe", "startupProbe") if ctr.get(k)}
        self.p.check("readinessProbe" in probes, dfile, "container has no readinessProbe")
        self.p.check("livenessProbe" in probes, dfile, "container has no livenessProbe")
        grpc_probe = False
        for kind, pr in probes.items():
            if "grpc" in pr:
                grpc_probe = True
                port = resolve(get(pr, "grpc", "port"))
                self.p.check(
                    port == ini.port,
                    dfile,
                    f"{kind}.grpc.port {port} is not switchyard's gRPC port {ini.port} ({cfile})",
                )
                svc = get(pr, "grpc", "service", default="")
                self.p.check(
                    svc in ("",) + tuple(ini.clusters),
                    dfile,
                    f"{kind}.grpc.service '{svc}': switchyard answers for \"\" and its clusters {sorted(ini.clusters)}",
                )
            elif "httpGet" in pr:
                port = resolve(get(pr, "httpGet", "port"))
                self.p.check(
                    port == ini.admin_port,
                    dfile,
                    f"{kind}.httpGet.port {get(pr, 'httpGet', 'port')} is not the admin port {ini.admin_port} ({cfile})",
                )
                self.p.check(
                    get(pr, "httpGet", "path") in ("/healthz", "/metrics", "/status"),
                    dfile,
                    f"{kind}.httpGet.path {get(pr, 'httpGet', 'path')}: the admin listener serves /healthz, /metrics, /status",
                )
                self.p.check(
                    ini.admin_host in ("0.0.0.0", "::", POD_IP),
                    cfile,
                    f"[admin] listen is on {ini.admin_host}, but {dfile}'s {kind} connects to the pod IP: "
                    "use ${POD_IP} (fieldRef status.podIP)",
                )
            elif "tcpSocket" in pr:
                port = resolve(get(pr, "tcpSocket", "port"))
                self.p.check(
                    port in (ini.port, ini.admin_port),
                    dfile,
                    f"{kind}.tcpSocket.port {port} is not a port switchyard listens on",
                )
        self.p.check(grpc_probe, dfile, "no probe uses Kubernetes' gRPC probe against switchyard's health service")
        self.p.check(
            ini.listen_host in ("0.0.0.0", "::"),
            cfile,
            f"[proxy] listen is on {ini.listen_host}: the Service and kubelet connect to the pod IP; use 0.0.0.0",
        )

        # Shutdown: preStop sleep + drain_timeout within the grace period.
        grace = pod_spec.get("terminationGracePeriodSeconds", 30)
        pre = get(ctr, "lifecycle", "preStop", "exec", "command", default=[]) or []
        pre_s = 0
        if len(pre) == 2 and pre[0] == "sleep" and str(pre[1]).isdigit():
            pre_s = int(pre[1])
        pre_s = get(ctr, "lifecycle", "preStop", "sleep", "seconds", default=pre_s)
        drain = duration_s(ini.drain_timeout)
        if drain is not None:
            self.p.check(
                grace > pre_s + drain,
                dfile,
                f"terminationGracePeriodSeconds {grace} does not cover preStop ({pre_s}s) + "
                f"drain_timeout ({ini.drain_timeout}, {cfile})",
            )

        # The switchyard Service: selects these pods, targets the gRPC port.
        services = of_kind("Service")
        fronts = [(f, s) for f, s in services if get(s, "spec", "clusterIP") != "None" and matches(get(s, "spec", "selector"), pod_labels)]
        self.p.check(bool(fronts), K8S, f"no Service selects switchyard's pods (labels {pod_labels})")
        for f, s in fronts:
            for sp in get(s, "spec", "ports", default=[]) or []:
                tp = resolve(sp.get("targetPort", sp.get("port")))
                self.p.check(
                    tp == ini.port,
                    f,
                    f"Service {s['metadata']['name']} port {sp.get('port')} targets {sp.get('targetPort')} "
                    f"({tp}), not switchyard's gRPC port {ini.port}",
                )

        # PodDisruptionBudget.
        pdbs = of_kind("PodDisruptionBudget")
        self.p.check(bool(pdbs), K8S, "no PodDisruptionBudget")
        for f, b in pdbs:
            self.p.check(
                matches(get(b, "spec", "selector", "matchLabels"), pod_labels),
                f,
                f"PodDisruptionBudget {b['metadata']['name']} does not select switchyard's pods",
            )

        # The admin listener: reachable from the pod network only behind a
        # NetworkPolicy that admits selected peers to its port.
        if ini.admin_host is not None and not is_loopback(ini.admin_host):
            admin_names = {n for n, v in cports.items() if v == ini.admin_port} | {ini.admin_port, str(ini.admin_port)}
            guards = []
            for f, np in of_kind("NetworkPolicy"):
                if not matches(get(np, "spec", "podSelector", "matchLabels"), pod_labels):
                    continue
                if "Ingress" not in (get(np, "spec", "policyTypes", default=[]) or []):
                    continue
                open_to_all = False
                for rule in get(np, "spec", "ingress", default=[]) or []:
                    ports = rule.get("ports")
                    covers = not ports or any(pp.get("port") in admin_names for pp in ports)
                    if covers and not rule.get("from"):
                        open_to_all = True
                    for peer in rule.get("from") or []:
                        if covers and get(peer, "ipBlock", "cidr") in ("0.0.0.0/0", "::/0"):
                            open_to_all = True
                self.p.check(
                    not open_to_all,
                    f,
                    f"NetworkPolicy {np['metadata']['name']} lets anyone reach the admin port {ini.admin_port}",
                )
                guards.append(np)
            self.p.check(
                bool(guards),
                cfile,
                f"[admin] listen is on {ini.admin_host} (reachable from the pod network) but no NetworkPolicy "
                "with policyTypes [Ingress] selects switchyard's pods to guard it",
            )
        self.p.check(
            ini.admin_host not in ("0.0.0.0", "::"),
            cfile,
            "[admin] listen is on every address; bind it to ${POD_IP} (the probes and Prometheus use "
            "the pod IP) or 127.0.0.1",
        )
        for f, svc in services:
            for sp in get(svc, "spec", "ports", default=[]) or []:
                tp = resolve(sp.get("targetPort", sp.get("port")))
                self.p.check(
                    tp != ini.admin_port or get(svc, "spec", "clusterIP") == "None",
                    f,
                    f"Service {svc['metadata']['name']} exposes the admin port {ini.admin_port}",
                )

        # Recommended labels on every object.
        for f, o in objs:
            labels = get(o, "metadata", "labels", default={}) or {}
            missing = [l for l in RECOMMENDED_LABELS if not labels.get(l)]
            self.p.check(
                not missing,
                f,
                f"{o['kind']} {get(o, 'metadata', 'name')} lacks the label(s) {', '.join(missing)}",
            )
            tl = get(o, "spec", "template", "metadata", "labels")
            if tl is not None:
                self.p.check(
                    all(tl.get(l) for l in ("app.kubernetes.io/name", "app.kubernetes.io/component")),
                    f,
                    f"{o['kind']} {get(o, 'metadata', 'name')}: the pod template lacks app.kubernetes.io/name "
                    "or app.kubernetes.io/component",
                )

        # The restricted Pod Security profile, for every pod.
        for f, d in deployments:
            self.check_restricted(f, d)

        # The backends: every DNS target names a headless Service on the target's port.
        headless = {s["metadata"]["name"]: (f, s) for f, s in services if get(s, "spec", "clusterIP") == "None"}
        self.p.check(bool(headless), K8S, "no headless Service (clusterIP: None) for the backends")
        for t in ini.targets():
            host, port = split_hostport(t)
            if host is None or re.fullmatch(r"[\d.]+|\[.*\]", host):
                continue
            svc_name = host.split(".")[0]
            if not self.p.check(
                svc_name in headless,
                cfile,
                f"target {t}: '{svc_name}' is not a headless Service in {K8S} "
                f"(headless Services: {sorted(headless)})",
            ):
                continue
            hf, hs = headless[svc_name]
            labels = host.split(".")
            if len(labels) >= 3:
                self.p.check(
                    labels[2] == "svc",
                    cfile,
                    f"target {t}: expected NAME.NAMESPACE.svc.CLUSTER_DOMAIN or NAME",
                )
            sports = get(hs, "spec", "ports", default=[]) or []
            self.p.check(
                any(sp.get("port") == port for sp in sports),
                hf,
                f"headless Service {svc_name} has no port {port}, the port of target {t} in {cfile}",
            )
            for sp in sports:
                tp = sp.get("targetPort", sp.get("port"))
                self.p.check(
                    not isinstance(tp, int) or tp == sp.get("port"),
                    hf,
                    f"headless Service {svc_name}: port {sp.get('port')} -> targetPort {tp}; DNS gives "
                    "pod IPs, so switchyard connects to the port itself (make them equal)",
                )
            sel = get(hs, "spec", "selector")
            for f, d in deployments:
                plabels = get(d, "spec", "template", "metadata", "labels", default={})
                if not matches(sel, plabels):
                    continue
                bports = {}
                for c in get(d, "spec", "template", "spec", "containers", default=[]) or []:
                    for p in c.get("ports") or []:
                        bports[p.get("name") or str(p["containerPort"])] = int(p["containerPort"])
                self.p.check(
                    port in bports.values(),
                    f,
                    f"Deployment {d['metadata']['name']} (selected by headless Service {svc_name}) "
                    f"has no containerPort {port}, the port of target {t} in {cfile}",
                )

    def check_restricted(self, f, d):
        """Pod Security Standards, restricted profile (kubernetes.io/docs/concepts/security/pod-security-standards)."""
        name = f"Deployment {get(d, 'metadata', 'name')}"
        ps = get(d, "spec", "template", "spec", default={}) or {}
        psc = ps.get("securityContext") or {}
        for k in ("hostNetwork", "hostPID", "hostIPC"):
            self.p.check(not ps.get(k), f, f"{name}: {k} is not allowed (restricted profile)")
        allowed_volumes = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected", "secret"}
        for v in ps.get("volumes") or []:
            kinds = set(v) - {"name"}
            self.p.check(kinds <= allowed_volumes, f, f"{name}: volume {v.get('name')} of type {sorted(kinds)} is not allowed (restricted profile)")
        containers = (ps.get("containers") or []) + (ps.get("initContainers") or [])
        for c in containers:
            sc = c.get("securityContext") or {}
            cn = f"{name}, container {c.get('name')}"
            self.p.check(not sc.get("privileged"), f, f"{cn}: privileged (restricted profile)")
            self.p.check(sc.get("allowPrivilegeEscalation") is False, f, f"{cn}: needs allowPrivilegeEscalation: false (restricted profile)")
            drop = [str(x).upper() for x in get(sc, "capabilities", "drop", default=[]) or []]
            self.p.check("ALL" in drop, f, f"{cn}: needs capabilities.drop: [ALL] (restricted profile)")
            add = [str(x).upper() for x in get(sc, "capabilities", "add", default=[]) or []]
            self.p.check(set(add) <= {"NET_BIND_SERVICE"}, f, f"{cn}: adds capabilities {add} (restricted profile: NET_BIND_SERVICE only)")
            non_root = sc.get("runAsNonRoot", psc.get("runAsNonRoot"))
            self.p.check(non_root is True, f, f"{cn}: needs runAsNonRoot: true (restricted profile)")
            uid = sc.get("runAsUser", psc.get("runAsUser"))
            self.p.check(uid != 0, f, f"{cn}: runAsUser 0 (restricted profile)")
            seccomp = get(sc, "seccompProfile", "type") or get(psc, "seccompProfile", "type")
            self.p.check(
                seccomp in ("RuntimeDefault", "Localhost"),
                f,
                f"{cn}: needs seccompProfile.type RuntimeDefault (restricted profile), got {seccomp}",
            )

    # ---- systemd and logrotate ----

    def check_systemd(self):
        text = self.read(SYSTEMD_UNIT)
        if text is None:
            return
        unit, section = {}, None  # (section, key) -> [values]
        for n, line in enumerate(text.splitlines(), 1):
            line = line.strip()
            if not line or line[0] in "#;":
                continue
            m = re.fullmatch(r"\[([A-Za-z]+)\]", line)
            if m:
                section = m.group(1)
                continue
            key, eq, value = line.partition("=")
            if not self.p.check(eq and section, SYSTEMD_UNIT, f"line {n}: expected KEY=VALUE in a [Section], got {line!r}"):
                continue
            unit.setdefault((section, key.strip()), []).append(value.strip())

        def one(key, section="Service"):
            v = unit.get((section, key))
            return v[-1] if v else None

        self.p.check(one("Type") == "notify", SYSTEMD_UNIT, f"Type={one('Type')}: expected notify (switchyard calls sd_notify)")
        start = one("ExecStart") or ""
        words = start.lstrip("-@:+!").split()
        self.p.check(
            bool(words) and os.path.basename(words[0]) == "switchyard",
            SYSTEMD_UNIT,
            f"ExecStart does not run switchyard: {start!r}",
        )
        self.unit_config = config_path_of(words)
        self.p.check(
            self.unit_config == (self.config_path or "/etc/switchyard/switchyard.ini"),
            SYSTEMD_UNIT,
            f"ExecStart's -c {self.unit_config} differs from the image's {self.config_path}",
        )
        self.p.check(
            any(re.search(r"\bkill\b.*(-HUP|-s\s*HUP|--signal[= ]SIGHUP|-SIGHUP).*\$MAINPID", r) for r in unit.get(("Service", "ExecReload"), [])),
            SYSTEMD_UNIT,
            "no ExecReload sends SIGHUP to $MAINPID (systemctl reload)",
        )
        stop = duration_s((one("TimeoutStopSec") or "90s").replace("min", "m"))
        self.p.check(
            stop is not None and stop > 30,
            SYSTEMD_UNIT,
            f"TimeoutStopSec={one('TimeoutStopSec')} does not cover drain_timeout's default (30s)",
        )
        want = {
            "NoNewPrivileges": "yes",
            "ProtectSystem": "strict",
            "ProtectHome": "yes",
            "PrivateTmp": "yes",
            "PrivateDevices": "yes",
            "ProtectKernelTunables": "yes",
            "ProtectKernelModules": "yes",
            "ProtectKernelLogs": "yes",
            "ProtectControlGroups": "yes",
            "RestrictNamespaces": "yes",
            "RestrictSUIDSGID": "yes",
            "LockPersonality": "yes",
            "MemoryDenyWriteExecute": "yes",
            "CapabilityBoundingSet": "CAP_NET_BIND_SERVICE",
        }
        for k, v in want.items():
            self.p.check(one(k) == v, SYSTEMD_UNIT, f"{k}={one(k)}: expected {k}={v}")
        fams = set((one("RestrictAddressFamilies") or "").split())
        self.p.check(
            fams and fams <= {"AF_INET", "AF_INET6", "AF_UNIX"} and {"AF_INET", "AF_INET6"} <= fams,
            SYSTEMD_UNIT,
            f"RestrictAddressFamilies={one('RestrictAddressFamilies')}: expected AF_INET AF_INET6 AF_UNIX",
        )
        self.p.check(
            one("DynamicUser") == "yes" or (one("User") not in (None, "root", "0")),
            SYSTEMD_UNIT,
            "runs as root: set DynamicUser=yes or User=",
        )
        self.p.check(
            one("WantedBy", "Install") == "multi-user.target",
            SYSTEMD_UNIT,
            "[Install] WantedBy=multi-user.target is missing",
        )
        self.logs_dir = one("LogsDirectory")

    def check_logrotate(self):
        text = self.read(LOGROTATE)
        if text is None:
            return
        body = "\n".join(l for l in text.splitlines() if not l.strip().startswith("#"))
        paths = re.findall(r"^(/\S+)\s*\{", body, re.M)
        self.p.check(bool(paths), LOGROTATE, "names no log file")
        logs_dir = getattr(self, "logs_dir", None)
        for pth in paths:
            self.p.check(
                logs_dir is None or pth.startswith(f"/var/log/{logs_dir}/"),
                LOGROTATE,
                f"rotates {pth}, outside the unit's LogsDirectory (/var/log/{logs_dir})",
            )
        self.p.check("copytruncate" not in body, LOGROTATE, "copytruncate loses lines; switchyard reopens on SIGUSR1")
        post = re.search(r"postrotate(.*?)endscript", body, re.S)
        self.p.check(
            post is not None and re.search(r"USR1", post.group(1)),
            LOGROTATE,
            "no postrotate script sends SIGUSR1 (switchyard reopens access_log on it)",
        )

    # ---- runtime libraries of the built binaries ----

    def check_libraries(self):
        if not self.binaries:
            return
        if not shutil.which("readelf") or not shutil.which("dpkg"):
            sys.stderr.write("check-deploy: readelf or dpkg missing; runtime libraries not checked\n")
            return
        needed = {}  # soname -> binaries that load it
        binaries = list(self.binaries)
        for b in self.binaries:
            if os.path.basename(b) != "switchyard":
                continue
            mod = os.path.join(os.path.dirname(b), REST_MODULE)
            if self.p.check(os.path.exists(mod), b, f"no {REST_MODULE} beside it (make builds both)"):
                if mod not in binaries:
                    binaries.append(mod)
        for b in binaries:
            try:
                out = subprocess.run(
                    ["readelf", "-d", b], capture_output=True, text=True, check=True
                ).stdout
            except (OSError, subprocess.CalledProcessError) as e:
                self.p.check(False, b, f"cannot read its dynamic section: {e}")
                continue
            for so in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
                needed.setdefault(so, []).append(os.path.basename(b))
        if not needed:
            return
        # One dpkg query for every library: "pkg:arch: /path/libfoo.so.1" lines.
        r = subprocess.run(
            ["dpkg", "-S"] + [f"*/{so}" for so in sorted(needed)], capture_output=True, text=True
        )
        providers = {}
        for line in r.stdout.splitlines():
            pkg, _, path = line.partition(": ")
            for p in pkg.split(", "):
                p = p.split(":")[0]
                if p.endswith("-i386") or p.startswith("lib32") or p.startswith("libx32"):
                    continue
                providers.setdefault(os.path.basename(path.strip()), set()).add(p)
        for so, users in sorted(needed.items()):
            pkgs = providers.get(so, set())
            users = ", ".join(sorted(set(users)))
            if not pkgs:
                self.p.check(False, DOCKERFILE, f"{so} (needed by {users}) comes from no installed Debian package")
                continue
            if pkgs & BASE_PACKAGES or any(SANITIZER_PACKAGE.match(p) for p in pkgs):
                continue
            self.p.check(
                bool(pkgs & self.runtime_pkgs),
                DOCKERFILE,
                f"the runtime stage installs none of {sorted(pkgs)}, which provide {so} "
                f"(needed by {users})",
            )


def compose_duration_s(s):
    """Compose's durations: 1m30s, 25s, 500ms."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", s)
    if not parts or "".join(n + u for n, u in parts) != s.strip():
        return None
    mult = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(n) * mult[u] for n, u in parts)


def cpu_cores(q):
    q = str(q)
    return int(q[:-1]) / 1000 if q.endswith("m") else float(q)


def main():
    ap = argparse.ArgumentParser(description="Checks docker/ and docker/k8s/ against each other.")
    ap.add_argument("--root", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    ap.add_argument("--binary", action="append", default=[])
    ap.add_argument("--extract")
    ap.add_argument("--rendered")
    a = ap.parse_args()
    p = Checker(a.root, a.binary, a.extract, a.rendered).run()
    for line in p.lines:
        sys.stderr.write(f"check-deploy: {line}\n")
    if p.lines:
        sys.stderr.write(f"check-deploy: {len(p.lines)} problem(s) in {p.checks} checks\n")
        return 1
    print(f"check-deploy: ok, {p.checks} checks")
    return 0


if __name__ == "__main__":
    sys.exit(main())
