/* Integration test of switchyard at its file descriptor limit: a connection
 * flood against the proxy port and the admin port of a switchyard started
 * with a low RLIMIT_NOFILE (through prlimit(1), util-linux) must pause
 * accepting instead of spinning, log once per episode, and serve again once
 * descriptors are free.
 * SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tests/peers/gclient.h"
#include "tests/support/httpc.h"
#include "tests/support/support.h"

#define PROXY_T   15000
#define NOFILE    "64"
#define MAX_FLOOD 600

static struct sup_backend be;
static struct sup_proc *proc;
static int port, admin_port;

static void start_backend(void)
{
    proc = NULL;
    cr_assert_eq(sup_start_backend(&be, "b0", NULL), 0, "sy-backend did not start");
}

static void stop_all(void)
{
    sup_stop_all();
}

TestSuite(fdlimit, .init = start_backend, .fini = stop_all, .timeout = 90);

/* ---- the flood: non-blocking connects that are never used ---- */

struct flood {
    atomic_bool stop;
    atomic_int opened;
    int fds[MAX_FLOOD];
};

static int connect_nb(int p)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Opens a connection every 5 ms, alternating between the two ports, up to
 * MAX_FLOOD; a backlog that is full only slows the connects down. */
static void *flood_run(void *arg)
{
    struct flood *f = arg;
    int n = 0;

    while (!atomic_load(&f->stop)) {
        if (n < MAX_FLOOD) {
            int fd = connect_nb(n % 2 == 0 ? port : admin_port);

            if (fd >= 0)
                f->fds[n++] = fd;
            atomic_store(&f->opened, n);
        }
        sup_sleep_ms(5);
    }
    for (int i = 0; i < n; i++)
        close(f->fds[i]);
    return NULL;
}

/* ---- measurements ---- */

/* CPU time of process |pid|, all threads, in seconds. */
static double cpu_seconds(pid_t pid)
{
    char path[64], buf[2048], *p;
    unsigned long long ut = 0, st = 0;
    FILE *f;
    size_t n;

    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    f = fopen(path, "r");
    cr_assert_not_null(f);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    p = strrchr(buf, ')'); /* the command name may hold spaces */
    cr_assert_not_null(p);
    /* after ")": state(3) ... utime(14) stime(15) */
    cr_assert_eq(sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st),
                 2);
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long file_size(const char *path)
{
    struct stat sb;

    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static bool paused_everywhere(void *arg)
{
    (void)arg;
    return sup_file_contains(proc->err_path, "worker ") &&
           sup_file_contains(proc->err_path, ": accept paused: too many open files") &&
           sup_file_contains(proc->err_path, "admin: accept paused: too many open files");
}

static bool serves_again(void *arg)
{
    struct gc_opts o;
    struct gc_result r;
    struct sup_http_resp h;
    bool ok;
    char addr[32];

    (void)arg;
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    gc_opts_init(&o, GC_UNARY);
    o.timeout_ms = 2000;
    if (gc_call(addr, &o, &r) != 0)
        return false;
    ok = sup_http_get(admin_port, "/status", &h) == 0 && h.code == 200;
    sup_http_resp_free(&h);
    return ok;
}

Test(fdlimit, a_connection_flood_at_the_fd_limit_pauses_accepting)
{
    char text[1024], path[512];
    const char *argv[8];
    static struct flood fl;
    pthread_t th;
    double cpu0, cpu1;
    long log0, log1;
    int st;

    port = sup_free_port();
    admin_port = sup_free_port();
    snprintf(text, sizeof(text),
             "[proxy]\nlisten = 127.0.0.1:%d\nworkers = 2\ndrain_timeout = 5s\n"
             "[admin]\nlisten = 127.0.0.1:%d\n"
             "[cluster.echo]\ntargets = %s\nroutes = /sy.test.\nhealth_check = off\n",
             port, admin_port, be.addr);
    cr_assert_eq(sup_write_file("fd.ini", text, path, sizeof(path)), 0);
    argv[0] = "/usr/bin/prlimit";
    argv[1] = "--nofile=" NOFILE ":" NOFILE;
    argv[2] = "--";
    argv[3] = sup_proxy_bin();
    argv[4] = "-c";
    argv[5] = path;
    argv[6] = NULL;
    cr_assert_eq(access(argv[0], X_OK), 0, "prlimit (util-linux) is missing");
    proc = sup_spawn("switchyard", argv);
    cr_assert_not_null(proc);
    cr_assert_eq(sup_wait_port(proc, port, PROXY_T), 0);
    cr_assert_eq(sup_wait_port(proc, admin_port, PROXY_T), 0);
    cr_assert(sup_file_contains(proc->err_path, "file descriptor limit (" NOFILE ") is below"),
              "no warning that max_connections cannot fit");

    memset(&fl, 0, sizeof(fl));
    pthread_create(&th, NULL, flood_run, &fl);
    cr_assert(sup_poll(paused_everywhere, NULL, 20000),
              "accepting never paused on the workers and the admin listener");
    /* 5 s of flood at the limit */
    cpu0 = cpu_seconds(proc->pid);
    log0 = file_size(proc->err_path);
    sup_sleep_ms(5000);
    cpu1 = cpu_seconds(proc->pid);
    log1 = file_size(proc->err_path);
    fprintf(stderr,
            "fd limit %s: %d connections opened; over 5 s: %.2f s of CPU, %ld bytes of log\n",
            NOFILE, atomic_load(&fl.opened), cpu1 - cpu0, log1 - log0);
    cr_assert(sup_alive(proc), "switchyard died");
    cr_assert_lt(cpu1 - cpu0, 1.5, "%.2f s of CPU in 5 s (over 30 %% of a core)", cpu1 - cpu0);
    cr_assert_lt(log1 - log0, 1024 * 1024, "%ld bytes of log in 5 s", log1 - log0);

    /* the flood ends: descriptors come back, and so does the service */
    atomic_store(&fl.stop, true);
    pthread_join(th, NULL);
    cr_assert(sup_poll(serves_again, NULL, 20000), "no call succeeded after the flood ended");
    cr_assert(sup_file_contains(proc->err_path, "accepting again"));
    st = sup_stop(proc, PROXY_T);
    if (st != 0)
        sup_dump_log(proc, 40);
    cr_assert_eq(st, 0, "switchyard exited with status %d on SIGTERM", st);
}
