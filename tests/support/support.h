/* Integration-test harness: free loopback ports, child processes (sy-backend,
 * switchyard, anything) with captured output, readiness by connect(), stop by
 * PID, temp files, /proc readings.
 * Invariant: every process started here is in one per-process registry and is
 * only ever signalled by its PID; children die with the test process
 * (PR_SET_PDEATHSIG), and sup_stop_all() (a suite's .fini) stops the rest.
 * Output of each child goes to files in a per-test temp dir, removed by
 * sup_stop_all() unless SY_KEEP_TMP is set.
 * SPDX-License-Identifier: MIT */
#ifndef TESTS_SUPPORT_SUPPORT_H
#define TESTS_SUPPORT_SUPPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SUP_MAX_PROCS 32

/** A child process. Lives in the registry; never freed. */
struct sup_proc {
    pid_t pid;          /* as forked; stays set after exit (never signalled then) */
    char name[32];      /* for messages and file names */
    char out_path[512]; /* its stdout */
    char err_path[512]; /* its stderr */
    bool exited;        /* reaped; |wstatus| is valid */
    int wstatus;        /* waitpid() status */
    bool killed;        /* we sent SIGKILL */
};

/** A sy-backend started by sup_start_backend(). */
struct sup_backend {
    struct sup_proc *proc;
    int port;
    char id[16];   /* its --id, e.g. "b0" */
    char addr[32]; /* "127.0.0.1:PORT", a gclient target */
};

/** A switchyard started by sup_start_proxy(). */
struct sup_proxy {
    struct sup_proc *proc;
    int port;
    char addr[32];  /* "127.0.0.1:PORT" */
    char conf[512]; /* its config file */
};

/** Returns the per-test temp dir, created on first use. Aborts if it cannot. */
const char *sup_tmpdir(void);

/** Returns a loopback TCP port that was free a moment ago (bound to port 0,
 *  read back, closed), or -1. */
int sup_free_port(void);

/** Returns milliseconds of CLOCK_MONOTONIC. */
long sup_now_ms(void);

/** Sleeps |ms| milliseconds; for polling loops only. */
void sup_sleep_ms(int ms);

/** Polls |pred(arg)| every 10 ms until it returns true (then returns true) or
 *  |timeout_ms| passes (then returns false). */
bool sup_poll(bool (*pred)(void *arg), void *arg, int timeout_ms);

/** Forks and execs |argv| (argv[0] is a path, NULL-terminated; borrowed) with
 *  stdin from /dev/null and stdout/stderr in <tmpdir>/<name>.out|.err. The
 *  child gets PR_SET_PDEATHSIG(SIGKILL). Returns its registry entry, or NULL
 *  (registry full or fork failed). An exec failure shows as exit status 127. */
struct sup_proc *sup_spawn(const char *name, const char *const argv[]);

/** Returns true while |p| runs (reaps it if it has exited). */
bool sup_alive(struct sup_proc *p);

/** Waits until 127.0.0.1:|port| accepts a connection. Returns 0; -1 at once if
 *  |p| exited first (its output is printed); -2 after |timeout_ms|. */
int sup_wait_port(struct sup_proc *p, int port, int timeout_ms);

/** Waits up to |timeout_ms| for |p| to exit, without signalling it. Returns
 *  its exit code (0..255), 128+N if signal N killed it, or -2 on timeout. */
int sup_wait_exit(struct sup_proc *p, int timeout_ms);

/** Sends |sig| to |p| if it still runs. Returns 0, or -1 if it had exited. */
int sup_signal(struct sup_proc *p, int sig);

/** Stops |p|: SIGTERM, waits up to |timeout_ms|, then SIGKILL. Returns what
 *  sup_wait_exit() returns (128+9 if SIGKILL was needed). If |p| had exited
 *  already, returns its status. */
int sup_stop(struct sup_proc *p, int timeout_ms);

/** SIGKILLs |p| and reaps it. Returns its status as sup_wait_exit() does. */
int sup_kill(struct sup_proc *p);

/** Prints the last |lines| lines of |p|'s stdout and stderr to stderr. */
void sup_dump_log(const struct sup_proc *p, int lines);

/** Stops every running process of the registry (SIGTERM, 5 s, SIGKILL) and
 *  removes the temp dir unless SY_KEEP_TMP is set. For a suite's .fini;
 *  idempotent. */
void sup_stop_all(void);

/** Writes |text| to <tmpdir>/|name| and stores its path in |path|. Returns 0
 *  or -1. */
int sup_write_file(const char *name, const char *text, char *path, size_t pathlen);

/** Returns the content of |path| as a new NUL-terminated string (the caller
 *  frees it), or NULL. */
char *sup_read_file(const char *path);

/** Returns true when the file at |path| contains |needle|. */
bool sup_file_contains(const char *path, const char *needle);

/** How many times |needle| occurs in |p|'s stderr (its log). */
int sup_log_count(const struct sup_proc *p, const char *needle);

/** Waits up to |timeout_ms| until |needle| occurs more than |count| times in
 *  |p|'s stderr. Returns true, or false (then the log's end is printed). */
bool sup_wait_log(const struct sup_proc *p, const char *needle, int count, int timeout_ms);

/** Stops |p| with SIGTERM (sup_stop()) and returns its exit status; when
 *  that is not 0, prints the end of its log first. NULL or an exited |p|:
 *  returns 0. For suites whose processes must exit cleanly (ASan: leaks). */
int sup_stop_clean(struct sup_proc *p, int timeout_ms);

/** Returns VmRSS of process |pid| in KiB (from /proc/PID/status), or -1. */
long sup_rss_kb(pid_t pid);

/** Returns $SY_BACKEND, or build/peers/tests/peers/sy-backend. */
const char *sup_backend_bin(void);

/** Returns $SY_BIN, or build/switchyard. */
const char *sup_proxy_bin(void);

/** Starts sy-backend --id |id| on a free port, with |extra| (NULL or a
 *  NULL-terminated list of more arguments), and waits until it accepts
 *  connections (10 s). Fills |b|. Returns 0 or -1. */
int sup_start_backend(struct sup_backend *b, const char *id, const char *const *extra);

/** Starts |n| backends "b0".."b<n-1>" at once, then waits for all. Returns 0
 *  or -1. */
int sup_start_backends(struct sup_backend *b, int n, const char *const *extra);

/** Writes |conf_text| to <tmpdir>/|name|.ini, starts `$SY_BIN -c FILE` and
 *  waits (|timeout_ms|) until it accepts connections on |port| (which the
 *  config must name). Fills |px|. Returns 0, or -1 (output is printed). */
int sup_start_proxy(struct sup_proxy *px, const char *name, int port, const char *conf_text,
                    int timeout_ms);

/** Like sup_start_proxy() with the optimised build without sanitizers
 *  ($SY_BIN_RELEASE, else build/switchyard): for tests that measure memory,
 *  which under ASan would measure ASan's allocator (redzones, quarantine). */
int sup_start_proxy_release(struct sup_proxy *px, const char *name, int port, const char *conf_text,
                            int timeout_ms);

/** Returns $SY_BIN_RELEASE, or build/switchyard. */
const char *sup_proxy_release_bin(void);

/** Runs |argv| to completion (at most |timeout_ms|, then SIGKILL) and returns
 *  its status as sup_wait_exit() does; |*out| (if not NULL) gets the entry,
 *  whose output files the caller can read. */
int sup_run(const char *name, const char *const argv[], int timeout_ms, struct sup_proc **out);

/** Starts `tests/integration/h2backend.py MODE PORT` (a python3-h2 backend
 *  that misbehaves on purpose) and waits until it listens on |port|.
 *  Returns the process (stop it with sup_stop), or NULL. */
struct sup_proc *sup_start_h2backend(const char *mode, int port);

/** Runs `tests/integration/h2abuse.py MODE PORT ARG [EXTRA]` (python3-h2
 *  clients that misbehave or need raw frames) to completion, at most
 *  |timeout_ms|. Returns its exit status (0: switchyard behaved) and its first
 *  output line in |line|; on failure its output is printed. */
int sup_h2abuse(int port, const char *mode, int arg, const char *extra, char *line, size_t len,
                int timeout_ms);

/** The value of the Prometheus sample |name| (exactly, labels included, e.g.
 *  "switchyard_backend_pools" or "x{a=\"b\"}") in the text |metrics|, or -1
 *  when absent. */
double sup_metric(const char *metrics, const char *name);

/** Opens a raw HTTP/2 connection (nghttp2 client session, small SO_RCVBUF) to
 *  127.0.0.1:|port| and sends the preface, SETTINGS with INITIAL_WINDOW_SIZE
 *  |window| (and a connection WINDOW_UPDATE up to |window| when larger than
 *  65535), and one gRPC request on stream 1: POST |path| whose body is |msg|
 *  (|len| bytes, framed here as one uncompressed gRPC message), END_STREAM.
 *  It never reads nor sends WINDOW_UPDATE: the peer sees a client that has
 *  stopped reading. Returns the socket (the caller closes it) or -1. */
int sup_h2_slow_reader(int port, const char *path, const void *msg, size_t len, uint32_t window);

#endif
