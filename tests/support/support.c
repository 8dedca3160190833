/* Integration-test harness; see support.h.
 * Invariant: a registry entry's PID is signalled only while the entry is not
 * reaped, so a recycled PID is never hit.
 * SPDX-License-Identifier: MIT */
#include "tests/support/support.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct {
    pid_t owner; /* process that created tmpdir / registry entries */
    char tmpdir[256];
    struct sup_proc procs[SUP_MAX_PROCS];
    int nprocs;
} reg;

/* Criterion may run several tests in one process (--no-fork); start afresh
 * whenever the process differs from the one that filled the registry. */
static void reg_check(void)
{
    if (reg.owner != getpid()) {
        memset(&reg, 0, sizeof(reg));
        reg.owner = getpid();
    }
}

const char *sup_tmpdir(void)
{
    const char *base = getenv("TMPDIR");

    reg_check();
    if (reg.tmpdir[0])
        return reg.tmpdir;
    snprintf(reg.tmpdir, sizeof(reg.tmpdir), "%s/sy-test-%d-XXXXXX", base && *base ? base : "/tmp",
             (int)getpid());
    if (!mkdtemp(reg.tmpdir)) {
        fprintf(stderr, "support: mkdtemp %s: %s\n", reg.tmpdir, strerror(errno));
        abort();
    }
    return reg.tmpdir;
}

/* Ports handed out lately: the kernel may give a closed port out again at
 * once, and two processes of one test must not get the same one. */
static int recent_ports[64];
static unsigned nrecent_ports;

static bool handed_out(int port)
{
    unsigned n = nrecent_ports < 64 ? nrecent_ports : 64;

    for (unsigned i = 0; i < n; i++) {
        if (recent_ports[i] == port)
            return true;
    }
    return false;
}

int sup_free_port(void)
{
    for (int attempt = 0; attempt < 32; attempt++) {
        struct sockaddr_in sin;
        socklen_t len = sizeof(sin);
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int port = -1;

        if (fd < 0)
            return -1;
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
            getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
            port = ntohs(sin.sin_port);
        close(fd);
        if (port < 0)
            return -1;
        if (!handed_out(port)) {
            recent_ports[nrecent_ports++ % 64] = port;
            return port;
        }
    }
    return -1;
}

long sup_now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

void sup_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

bool sup_poll(bool (*pred)(void *arg), void *arg, int timeout_ms)
{
    long end = sup_now_ms() + timeout_ms;

    for (;;) {
        if (pred(arg))
            return true;
        if (sup_now_ms() >= end)
            return false;
        sup_sleep_ms(10);
    }
}

/* ---- processes ---- */

struct sup_proc *sup_spawn(const char *name, const char *const argv[])
{
    struct sup_proc *p;
    pid_t parent = getpid();
    pid_t pid;

    sup_tmpdir();
    if (reg.nprocs == SUP_MAX_PROCS) {
        fprintf(stderr, "support: more than %d processes\n", SUP_MAX_PROCS);
        return NULL;
    }
    p = &reg.procs[reg.nprocs];
    memset(p, 0, sizeof(*p));
    snprintf(p->name, sizeof(p->name), "%s", name);
    /* Several runs of one name (restarts) get distinct files. */
    snprintf(p->out_path, sizeof(p->out_path), "%s/%s.%d.out", reg.tmpdir, name, reg.nprocs);
    snprintf(p->err_path, sizeof(p->err_path), "%s/%s.%d.err", reg.tmpdir, name, reg.nprocs);

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        fprintf(stderr, "support: fork: %s\n", strerror(errno));
        return NULL;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. */
        sigset_t none;
        struct sigaction dfl;
        int fd;

        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        memset(&dfl, 0, sizeof(dfl));
        dfl.sa_handler = SIG_DFL;
        sigaction(SIGPIPE, &dfl, NULL);
        fd = open("/dev/null", O_RDONLY);
        if (fd >= 0)
            dup2(fd, 0);
        fd = open(p->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 1);
        fd = open(p->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 2);
        close_range(3, ~0U, 0);
        execv(argv[0], (char *const *)argv);
        {
            static const char msg[] = "support: exec failed\n";
            ssize_t w = write(2, msg, sizeof(msg) - 1);

            (void)w;
        }
        _exit(127);
    }
    p->pid = pid;
    reg.nprocs++;
    return p;
}

static int decode(int wstatus)
{
    if (WIFEXITED(wstatus))
        return WEXITSTATUS(wstatus);
    if (WIFSIGNALED(wstatus))
        return 128 + WTERMSIG(wstatus);
    return -1;
}

/* Reaps |p| if it exited; returns true if it has. */
static bool reap(struct sup_proc *p, bool block)
{
    int st;
    pid_t r;

    if (p->exited)
        return true;
    do
        r = waitpid(p->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid) {
        p->exited = true;
        p->wstatus = st;
        return true;
    }
    if (r < 0) { /* not our child any more: treat as gone */
        p->exited = true;
        p->wstatus = 0x7f00;
        return true;
    }
    return false;
}

bool sup_alive(struct sup_proc *p)
{
    return !reap(p, false);
}

int sup_wait_exit(struct sup_proc *p, int timeout_ms)
{
    long end = sup_now_ms() + timeout_ms;

    while (!reap(p, false)) {
        if (sup_now_ms() >= end)
            return -2;
        sup_sleep_ms(5);
    }
    return decode(p->wstatus);
}

int sup_signal(struct sup_proc *p, int sig)
{
    if (reap(p, false))
        return -1;
    return kill(p->pid, sig);
}

int sup_kill(struct sup_proc *p)
{
    if (!reap(p, false)) {
        kill(p->pid, SIGKILL);
        p->killed = true;
        reap(p, true);
    }
    return decode(p->wstatus);
}

int sup_stop(struct sup_proc *p, int timeout_ms)
{
    int st;

    if (reap(p, false))
        return decode(p->wstatus);
    kill(p->pid, SIGTERM);
    st = sup_wait_exit(p, timeout_ms);
    if (st == -2) {
        fprintf(stderr, "support: %s (pid %d) ignored SIGTERM for %d ms; SIGKILL\n", p->name,
                (int)p->pid, timeout_ms);
        st = sup_kill(p);
    }
    return st;
}

static void dump_file(const char *what, const char *path, int lines)
{
    char *text = sup_read_file(path);
    size_t len, i;
    int n = 0;

    if (!text || !*text) {
        free(text);
        return;
    }
    /* Back up to the start of the last |lines| lines. */
    len = strlen(text);
    i = text[len - 1] == '\n' ? len - 1 : len;
    while (i > 0 && !(text[i - 1] == '\n' && ++n >= lines))
        i--;
    fprintf(stderr, "---- %s (%s) ----\n%s%s", what, path, text + i,
            text[len - 1] == '\n' ? "" : "\n");
    free(text);
}

void sup_dump_log(const struct sup_proc *p, int lines)
{
    char what[64];

    snprintf(what, sizeof(what), "%s stdout", p->name);
    dump_file(what, p->out_path, lines);
    snprintf(what, sizeof(what), "%s stderr", p->name);
    dump_file(what, p->err_path, lines);
}

int sup_wait_port(struct sup_proc *p, int port, int timeout_ms)
{
    long end = sup_now_ms() + timeout_ms;
    struct sockaddr_in sin;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((uint16_t)port);
    for (;;) {
        int fd, rc;

        if (reap(p, false)) {
            fprintf(stderr, "support: %s exited with status %d before listening on %d\n", p->name,
                    decode(p->wstatus), port);
            sup_dump_log(p, 40);
            return -1;
        }
        fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
            return -1;
        rc = connect(fd, (struct sockaddr *)&sin, sizeof(sin));
        close(fd);
        if (rc == 0)
            return 0;
        if (sup_now_ms() >= end) {
            fprintf(stderr, "support: %s not listening on %d after %d ms\n", p->name, port,
                    timeout_ms);
            sup_dump_log(p, 40);
            return -2;
        }
        sup_sleep_ms(10);
    }
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void sup_stop_all(void)
{
    reg_check();
    for (int i = reg.nprocs - 1; i >= 0; i--) {
        struct sup_proc *p = &reg.procs[i];
        int st;

        if (p->exited)
            continue;
        st = sup_stop(p, 5000);
        if (st != 0) {
            fprintf(stderr, "support: %s (pid %d) ended with status %d at cleanup\n", p->name,
                    (int)p->pid, st);
            sup_dump_log(p, 40);
        }
    }
    if (reg.tmpdir[0]) {
        if (getenv("SY_KEEP_TMP"))
            fprintf(stderr, "support: kept %s\n", reg.tmpdir);
        else
            nftw(reg.tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        reg.tmpdir[0] = '\0';
    }
}

/* ---- files ---- */

int sup_write_file(const char *name, const char *text, char *path, size_t pathlen)
{
    FILE *f;
    int rc = 0;

    snprintf(path, pathlen, "%s/%s", sup_tmpdir(), name);
    f = fopen(path, "w");
    if (!f)
        return -1;
    if (fputs(text, f) == EOF)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    return rc;
}

char *sup_read_file(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = NULL;
    size_t len = 0, cap = 0, n;

    if (!f)
        return NULL;
    do {
        if (cap - len < 4096) {
            char *nb = realloc(buf, cap = cap * 2 + 8192);

            if (!nb)
                abort();
            buf = nb;
        }
        n = fread(buf + len, 1, cap - len - 1, f);
        len += n;
    } while (n > 0);
    fclose(f);
    buf[len] = '\0';
    return buf;
}

bool sup_file_contains(const char *path, const char *needle)
{
    char *text = sup_read_file(path);
    bool found = text && strstr(text, needle);

    free(text);
    return found;
}

long sup_rss_kb(pid_t pid)
{
    char path[64], line[256];
    long kb = -1;
    FILE *f;

    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof(line), f)) {
        if (strncmp(line, "VmRSS:", 6) == 0) {
            kb = strtol(line + 6, NULL, 10);
            break;
        }
    }
    fclose(f);
    return kb;
}

/* ---- peers and proxy ---- */

const char *sup_backend_bin(void)
{
    const char *s = getenv("SY_BACKEND");

    return s && *s ? s : "build/peers/tests/peers/sy-backend";
}

const char *sup_proxy_bin(void)
{
    const char *s = getenv("SY_BIN");

    return s && *s ? s : "build/switchyard";
}

static struct sup_proc *backend_spawn(struct sup_backend *b, const char *id,
                                      const char *const *extra)
{
    const char *argv[32];
    int n = 0;

    memset(b, 0, sizeof(*b));
    snprintf(b->id, sizeof(b->id), "%s", id);
    b->port = sup_free_port();
    if (b->port < 0)
        return NULL;
    snprintf(b->addr, sizeof(b->addr), "127.0.0.1:%d", b->port);
    argv[n++] = sup_backend_bin();
    argv[n++] = "--listen";
    argv[n++] = b->addr;
    argv[n++] = "--id";
    argv[n++] = b->id;
    for (int i = 0; extra && extra[i] && n < 31; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    if (access(argv[0], X_OK) != 0) {
        fprintf(stderr, "support: %s is not executable (set SY_BACKEND)\n", argv[0]);
        return NULL;
    }
    b->proc = sup_spawn(id, argv);
    return b->proc;
}

/* Waits for |b|; a backend that exited before listening (its port was taken
 * meanwhile by some other process) is started again on another port. */
static int backend_ready(struct sup_backend *b, const char *const *extra)
{
    for (int attempt = 0;; attempt++) {
        int rc = sup_wait_port(b->proc, b->port, 10000);
        char id[16];

        if (rc == 0 || rc == -2 || attempt == 3)
            return rc == 0 ? 0 : -1;
        fprintf(stderr, "support: %s could not listen on %d; trying another port\n", b->id,
                b->port);
        snprintf(id, sizeof(id), "%s", b->id);
        if (!backend_spawn(b, id, extra))
            return -1;
    }
}

int sup_start_backend(struct sup_backend *b, const char *id, const char *const *extra)
{
    if (!backend_spawn(b, id, extra))
        return -1;
    return backend_ready(b, extra);
}

int sup_start_backends(struct sup_backend *b, int n, const char *const *extra)
{
    for (int i = 0; i < n; i++) {
        char id[16];

        snprintf(id, sizeof(id), "b%d", i);
        if (!backend_spawn(&b[i], id, extra))
            return -1;
    }
    for (int i = 0; i < n; i++) {
        if (backend_ready(&b[i], extra) != 0)
            return -1;
    }
    return 0;
}

const char *sup_proxy_release_bin(void)
{
    const char *s = getenv("SY_BIN_RELEASE");

    return s && *s ? s : "build/switchyard";
}

static int start_proxy_bin(struct sup_proxy *px, const char *bin, const char *name, int port,
                           const char *conf_text, int timeout_ms)
{
    char file[64];
    const char *argv[4];

    memset(px, 0, sizeof(*px));
    px->port = port;
    snprintf(px->addr, sizeof(px->addr), "127.0.0.1:%d", port);
    snprintf(file, sizeof(file), "%s.ini", name);
    if (sup_write_file(file, conf_text, px->conf, sizeof(px->conf)) != 0)
        return -1;
    argv[0] = bin;
    argv[1] = "-c";
    argv[2] = px->conf;
    argv[3] = NULL;
    if (access(argv[0], X_OK) != 0) {
        fprintf(stderr, "support: %s is not executable (set SY_BIN, SY_BIN_RELEASE)\n", argv[0]);
        return -1;
    }
    px->proc = sup_spawn(name, argv);
    if (!px->proc)
        return -1;
    return sup_wait_port(px->proc, port, timeout_ms) == 0 ? 0 : -1;
}

int sup_start_proxy(struct sup_proxy *px, const char *name, int port, const char *conf_text,
                    int timeout_ms)
{
    return start_proxy_bin(px, sup_proxy_bin(), name, port, conf_text, timeout_ms);
}

int sup_start_proxy_release(struct sup_proxy *px, const char *name, int port, const char *conf_text,
                            int timeout_ms)
{
    return start_proxy_bin(px, sup_proxy_release_bin(), name, port, conf_text, timeout_ms);
}

int sup_run(const char *name, const char *const argv[], int timeout_ms, struct sup_proc **out)
{
    struct sup_proc *p = sup_spawn(name, argv);
    int st;

    if (out)
        *out = p;
    if (!p)
        return -1;
    st = sup_wait_exit(p, timeout_ms);
    if (st == -2) {
        fprintf(stderr, "support: %s still running after %d ms; SIGKILL\n", name, timeout_ms);
        st = sup_kill(p);
    }
    return st;
}

struct sup_proc *sup_start_h2backend(const char *mode, int port)
{
    char script[512], portbuf[16];
    const char *top = getenv("SY_TOP");
    const char *argv[] = {"/usr/bin/python3", script, mode, portbuf, NULL};
    struct sup_proc *p;

    snprintf(script, sizeof(script), "%s/tests/integration/h2backend.py", top ? top : ".");
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    p = sup_spawn("h2backend", argv);
    if (p != NULL && sup_wait_port(p, port, 10000) != 0) {
        sup_dump_log(p, 20);
        sup_stop(p, 5000);
        return NULL;
    }
    return p;
}

int sup_h2abuse(int port, const char *mode, int arg, const char *extra, char *line, size_t len,
                int timeout_ms)
{
    char script[512], portbuf[16], a[16];
    const char *top = getenv("SY_TOP");
    const char *argv[] = {"/usr/bin/python3", script, mode, portbuf, a, extra, NULL};
    struct sup_proc *p = NULL;
    char *out;
    int st;

    snprintf(script, sizeof(script), "%s/tests/integration/h2abuse.py", top ? top : ".");
    snprintf(portbuf, sizeof(portbuf), "%d", port);
    snprintf(a, sizeof(a), "%d", arg);
    st = sup_run(mode, argv, timeout_ms, &p);
    out = p != NULL ? sup_read_file(p->out_path) : NULL;
    snprintf(line, len, "%s", out != NULL ? out : "");
    free(out);
    if (st != 0 && p != NULL)
        sup_dump_log(p, 20);
    return st;
}

double sup_metric(const char *metrics, const char *name)
{
    size_t nlen = strlen(name);

    for (const char *p = metrics; p != NULL && *p != '\0';) {
        const char *eol = strchr(p, '\n');

        if (strncmp(p, name, nlen) == 0 && p[nlen] == ' ')
            return strtod(p + nlen + 1, NULL);
        p = eol != NULL ? eol + 1 : NULL;
    }
    return -1;
}

int sup_log_count(const struct sup_proc *p, const char *needle)
{
    char *text = sup_read_file(p->err_path);
    int n = 0;

    for (const char *q = text; q != NULL && (q = strstr(q, needle)) != NULL; q += strlen(needle))
        n++;
    free(text);
    return n;
}

struct log_more {
    const struct sup_proc *p;
    const char *needle;
    int count;
};

static bool log_more(void *arg)
{
    struct log_more *w = arg;

    return sup_log_count(w->p, w->needle) > w->count;
}

bool sup_wait_log(const struct sup_proc *p, const char *needle, int count, int timeout_ms)
{
    struct log_more w = {p, needle, count};

    if (sup_poll(log_more, &w, timeout_ms))
        return true;
    sup_dump_log(p, 40);
    return false;
}

int sup_stop_clean(struct sup_proc *p, int timeout_ms)
{
    int st;

    if (p == NULL || !sup_alive(p))
        return 0;
    st = sup_stop(p, timeout_ms);
    if (st != 0) {
        fprintf(stderr, "%s exited with status %d on SIGTERM\n", p->name, st);
        sup_dump_log(p, 80);
    }
    return st;
}
