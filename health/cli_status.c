/* switchyard-health status: reads GET /status from switchyard's admin
 * listener and prints every cluster and endpoint as a table (or the raw
 * document with --json), once or every --watch interval.
 * Invariant: the exit status depends only on the document: 0 when every
 * cluster has at least one endpoint and all of them are in rotation, 1 when
 * not, 2 when there is no usable document. Fields the document lacks print
 * as "-" and never make it garbage; only a missing "clusters" array does.
 * SPDX-License-Identifier: MIT */
#include "health/cli.h"

#include "health/cli_common.h"

#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#define DEFAULT_ADMIN      "127.0.0.1:9901"
#define DEFAULT_ADMIN_PORT 9901
#define STATUS_PATH        "/status"

#define C_RESET  "\033[0m"
#define C_BOLD   "\033[1m"
#define C_RED    "\033[31m"
#define C_GREEN  "\033[32m"
#define C_YELLOW "\033[33m"

struct status_opts {
    const char *admin;
    bool json;
    int64_t watch_ms; /* 0: print once */
    int64_t timeout_ms;
    bool color;
};

/* Columns of the endpoint table. */
enum col {
    COL_ADDRESS = 0,
    COL_ORIGIN,
    COL_STATE,
    COL_REASON,
    COL_SINCE,
    COL_CHECKED,
    COL_LATENCY,
    COL_FAILS,
    COL_WEIGHT,
    COL_ACTIVE,
    COL_CALLS,
    COL_COUNT
};

static const char *const col_titles[COL_COUNT] = {
    "ADDRESS", "ORIGIN", "STATE",  "REASON", "SINCE", "LAST CHECK",
    "LATENCY", "FAILS",  "WEIGHT", "ACTIVE", "CALLS",
};
static const bool col_right[COL_COUNT] = {
    [COL_FAILS] = true,
    [COL_WEIGHT] = true,
    [COL_ACTIVE] = true,
    [COL_CALLS] = true,
};

struct row {
    char cell[COL_COUNT][128];
    const char *state_color; /* for the STATE cell */
};

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

void hc_cli_status_usage(FILE *f)
{
    fprintf(f, "usage: " HC_CLI_NAME " status [--admin HOST:PORT] [--json] [--watch SECONDS]\n"
               "                         [--no-color] [--timeout T]\n"
               "\n"
               "Reads GET /status from switchyard's admin listener and prints, per cluster,\n"
               "a header line (name, policy, endpoints in rotation, PANIC) and one line per\n"
               "endpoint: address, the target it was resolved from, state (UP in rotation,\n"
               "DOWN unhealthy, OUT healthy but not in rotation), reason of the last\n"
               "transition and how long ago, last health check and its latency,\n"
               "consecutive failures, weight, active calls and calls total.\n"
               "\n"
               "Options:\n"
               "  -a, --admin HOST:PORT   admin listener (default " DEFAULT_ADMIN ")\n"
               "  -j, --json              print the /status document itself, pretty-printed\n"
               "  -w, --watch SECONDS     refresh every SECONDS (or a duration such as 500ms)\n"
               "                          until Ctrl-C; the screen is cleared on a terminal\n"
               "      --no-color          no colours (also when NO_COLOR is set or stdout\n"
               "                          is not a terminal)\n"
               "  -t, --timeout T         give up on the admin listener after T (default 5s)\n"
               "  -h, --help              show this help\n"
               "\n"
               "Exit status:\n"
               "  0  every cluster has all its endpoints in rotation\n"
               "  1  an endpoint is out of rotation or a cluster has no endpoint; also bad\n"
               "     arguments\n"
               "  2  switchyard cannot be reached, or answered something other than a\n"
               "     /status document\n"
               "With --watch, the exit status is that of the last refresh.\n");
}

/* ---- options ---- */

/* Prints "error: ..." and a pointer to --help; returns the usage exit status. */
static int bad_args(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int bad_args(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "error: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun '" HC_CLI_NAME " status --help' for usage.\n");
    return HC_CLI_STATUS_SOME_OUT;
}

/* Returns -1 to run, or an exit status. */
static int parse_opts(int argc, char **argv, struct status_opts *o)
{
    enum {
        OPT_NO_COLOR = 256,
    };
    static const struct option longopts[] = {
        {"admin", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"watch", required_argument, NULL, 'w'},
        {"no-color", no_argument, NULL, OPT_NO_COLOR},
        {"no-colour", no_argument, NULL, OPT_NO_COLOR},
        {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *no_color_env = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    bool no_color = false;
    int opt;

    memset(o, 0, sizeof(*o));
    o->admin = DEFAULT_ADMIN;
    o->timeout_ms = 5000;
    opterr = 0;
    optind = 1;
    while ((opt = getopt_long(argc, argv, ":a:jw:t:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'a':
            o->admin = optarg;
            break;
        case 'j':
            o->json = true;
            break;
        case 'w':
            if (hc_cli_duration_parse(optarg, true, &o->watch_ms) != 0 || o->watch_ms <= 0)
                return bad_args("--watch: expected a number of seconds greater than zero, got "
                                "'%s'",
                                optarg);
            break;
        case 't':
            if (hc_cli_duration_parse(optarg, false, &o->timeout_ms) != 0 || o->timeout_ms <= 0)
                return bad_args("--timeout: expected a duration such as 250ms, 5s or 1m, got '%s'",
                                optarg);
            break;
        case OPT_NO_COLOR:
            no_color = true;
            break;
        case 'h':
            hc_cli_status_usage(stdout);
            return 0;
        case ':':
            return bad_args("option '%s' needs a value", argv[optind - 1]);
        default:
            return bad_args("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return bad_args("unexpected argument '%s'", argv[optind]);
    if (!o->admin[0])
        return bad_args("--admin: expected HOST:PORT");
    o->color = !no_color && isatty(STDOUT_FILENO) && !(no_color_env && no_color_env[0]) &&
               !(term && strcmp(term, "dumb") == 0);
    return -1;
}

/* ---- formatting ---- */

/* A duration in seconds for people: 850ms, 12.3s, 4m05s, 3h12m, 2d04h. */
static const char *fmt_age(double s, char *buf, size_t len)
{
    long long t = (long long)s;

    if (s < 0)
        snprintf(buf, len, "-");
    else if (s < 1)
        snprintf(buf, len, "%dms", (int)(s * 1000));
    else if (s < 60)
        snprintf(buf, len, "%.1fs", s);
    else if (s < 3600)
        snprintf(buf, len, "%lldm%02llds", t / 60, t % 60);
    else if (s < 86400)
        snprintf(buf, len, "%lldh%02lldm", t / 3600, t % 3600 / 60);
    else
        snprintf(buf, len, "%lldd%02lldh", t / 86400, t % 86400 / 3600);
    return buf;
}

static const char *fmt_latency(double ms, char *buf, size_t len)
{
    if (ms < 0)
        snprintf(buf, len, "-");
    else if (ms < 0.1)
        snprintf(buf, len, "%.2fms", ms);
    else if (ms < 1000)
        snprintf(buf, len, "%.1fms", ms);
    else
        snprintf(buf, len, "%.2fs", ms / 1000);
    return buf;
}

static bool get_number(const json_t *obj, const char *key, double *v)
{
    const json_t *j = json_object_get(obj, key);

    if (!json_is_number(j))
        return false;
    *v = json_number_value(j);
    return true;
}

static void cell_str(char *cell, const json_t *obj, const char *key)
{
    const json_t *j = json_object_get(obj, key);

    snprintf(cell, sizeof(((struct row *)0)->cell[0]), "%s",
             json_is_string(j) && json_string_value(j)[0] ? json_string_value(j) : "-");
}

static void cell_int(char *cell, const json_t *obj, const char *key)
{
    double v;

    if (get_number(obj, key, &v))
        snprintf(cell, sizeof(((struct row *)0)->cell[0]), "%.0f", v);
    else
        snprintf(cell, sizeof(((struct row *)0)->cell[0]), "-");
}

/* An endpoint that left its cluster (reload, DNS) while calls on it finish:
 * shown, but no longer part of the cluster's health. */
static bool is_draining(const json_t *ep)
{
    const json_t *st = json_object_get(ep, "state");

    return json_is_string(st) && strcmp(json_string_value(st), "draining") == 0;
}

static void fill_row(struct row *r, const json_t *ep)
{
    const size_t cl = sizeof(r->cell[0]);
    char buf[64];
    double v;

    cell_str(r->cell[COL_ADDRESS], ep, "address");
    cell_str(r->cell[COL_ORIGIN], ep, "origin");
    if (json_is_true(json_object_get(ep, "in_rotation"))) {
        snprintf(r->cell[COL_STATE], cl, "UP");
        r->state_color = C_GREEN;
    } else if (is_draining(ep)) {
        snprintf(r->cell[COL_STATE], cl, "DRAINING");
        r->state_color = C_YELLOW;
    } else if (json_is_true(json_object_get(ep, "drained"))) {
        snprintf(r->cell[COL_STATE], cl, "DRAINED");
        r->state_color = C_YELLOW;
    } else if (!json_is_true(json_object_get(ep, "healthy"))) {
        snprintf(r->cell[COL_STATE], cl, "DOWN");
        r->state_color = C_RED;
    } else {
        snprintf(r->cell[COL_STATE], cl, "%s",
                 json_is_true(json_object_get(ep, "ejected")) ? "EJECTED" : "OUT");
        r->state_color = C_YELLOW;
    }
    cell_str(r->cell[COL_REASON], ep, "reason");
    snprintf(r->cell[COL_SINCE], cl, "%s",
             get_number(ep, "since_seconds", &v) ? fmt_age(v, buf, sizeof(buf)) : "-");
    if (get_number(ep, "last_check_seconds_ago", &v))
        snprintf(r->cell[COL_CHECKED], cl, "%s ago", fmt_age(v, buf, sizeof(buf)));
    else
        snprintf(r->cell[COL_CHECKED], cl, "never");
    snprintf(r->cell[COL_LATENCY], cl, "%s",
             get_number(ep, "last_check_latency_ms", &v) ? fmt_latency(v, buf, sizeof(buf)) : "-");
    cell_int(r->cell[COL_FAILS], ep, "consecutive_failures");
    cell_int(r->cell[COL_WEIGHT], ep, "weight");
    cell_int(r->cell[COL_ACTIVE], ep, "active_calls");
    cell_int(r->cell[COL_CALLS], ep, "calls_total");
}

/* Returns |code| when colours are on, else "" (also for a NULL |code|). */
static const char *paint(bool color, const char *code)
{
    return color && code ? code : "";
}

static void print_cell(FILE *out, const char *text, int width, bool right, const char *code,
                       bool color, bool last)
{
    if (last && !right) {
        fprintf(out, "%s%s%s", paint(color, code), text, paint(color && code, C_RESET));
        return;
    }
    if (right)
        fprintf(out, "%s%*s%s", paint(color, code), width, text, paint(color && code, C_RESET));
    else
        fprintf(out, "%s%-*s%s", paint(color, code), width, text, paint(color && code, C_RESET));
}

/* Whether |c| has endpoints and all of them are in rotation. */
static bool cluster_all_in(const json_t *c)
{
    const json_t *eps = json_object_get(c, "endpoints");
    const json_t *ep;
    double total, in;
    size_t i;

    if (json_array_size(eps) == 0)
        return false;
    json_array_foreach(eps, i, ep)
    {
        if (!json_is_true(json_object_get(ep, "in_rotation")) && !is_draining(ep))
            return false;
    }
    if (get_number(c, "endpoints_total", &total) && get_number(c, "endpoints_in_rotation", &in) &&
        in < total)
        return false;
    return true;
}

static int evaluate(const json_t *root)
{
    const json_t *clusters = json_object_get(root, "clusters");
    const json_t *c;
    size_t i;

    json_array_foreach(clusters, i, c)
    {
        if (!cluster_all_in(c))
            return HC_CLI_STATUS_SOME_OUT;
    }
    return HC_CLI_STATUS_ALL_IN;
}

static void render_summary(FILE *out, const json_t *root, bool color)
{
    const json_t *j;
    char buf[64];
    double v;

    j = json_object_get(root, "version");
    fprintf(out, "%sswitchyard %s%s", paint(color, C_BOLD),
            json_is_string(j) ? json_string_value(j) : "?", paint(color, C_RESET));
    if (get_number(root, "uptime_seconds", &v))
        fprintf(out, ", up %s", fmt_age(v, buf, sizeof(buf)));
    if (get_number(root, "workers", &v))
        fprintf(out, ", %.0f worker%s", v, v == 1 ? "" : "s");
    j = json_object_get(root, "config_file");
    if (json_is_string(j))
        fprintf(out, ", config %s", json_string_value(j));
    if (json_is_true(json_object_get(root, "draining")))
        fprintf(out, ", %sDRAINING%s", paint(color, C_YELLOW), paint(color, C_RESET));
    fprintf(out, "\n");
}

static void render_table(FILE *out, const json_t *root, bool color)
{
    const json_t *clusters = json_object_get(root, "clusters");
    const json_t *c, *ep;
    int width[COL_COUNT];
    size_t i, k, nrows = 0;
    struct row *rows;

    /* Widths are shared by every cluster so that their columns line up. */
    for (int col = 0; col < COL_COUNT; col++)
        width[col] = (int)strlen(col_titles[col]);
    json_array_foreach(clusters, i, c)
    {
        nrows += json_array_size(json_object_get(c, "endpoints"));
    }
    rows = calloc(nrows ? nrows : 1, sizeof(*rows));
    if (!rows)
        abort();
    nrows = 0;
    json_array_foreach(clusters, i, c)
    {
        json_array_foreach(json_object_get(c, "endpoints"), k, ep)
        {
            struct row *r = &rows[nrows++];

            fill_row(r, ep);
            for (int col = 0; col < COL_COUNT; col++) {
                int w = (int)strlen(r->cell[col]);

                if (w > width[col])
                    width[col] = w;
            }
        }
    }

    render_summary(out, root, color);
    nrows = 0;
    json_array_foreach(clusters, i, c)
    {
        const json_t *eps = json_object_get(c, "endpoints");
        const json_t *name = json_object_get(c, "name");
        const json_t *policy = json_object_get(c, "policy");
        size_t n = json_array_size(eps), in = 0;
        double v;

        json_array_foreach(eps, k, ep)
        {
            in += json_is_true(json_object_get(ep, "in_rotation"));
        }
        /* Prefer the document's own counts: they are what the proxy routes by. */
        if (get_number(c, "endpoints_total", &v))
            n = (size_t)v;
        if (get_number(c, "endpoints_in_rotation", &v))
            in = (size_t)v;
        fprintf(out, "\n%scluster %s%s  %s  %s%zu/%zu endpoint%s in rotation%s",
                paint(color, C_BOLD), json_is_string(name) ? json_string_value(name) : "?",
                paint(color, C_RESET), json_is_string(policy) ? json_string_value(policy) : "-",
                paint(color, cluster_all_in(c) ? C_GREEN : C_RED), in, n, n == 1 ? "" : "s",
                paint(color, C_RESET));
        if (json_is_string(json_object_get(c, "active_endpoint")))
            fprintf(out, "  active %s", json_string_value(json_object_get(c, "active_endpoint")));
        if (json_is_true(json_object_get(c, "panic")))
            fprintf(out, "  %s%sPANIC%s", paint(color, C_BOLD), paint(color, C_RED),
                    paint(color, C_RESET));
        fprintf(out, "\n");
        if (json_array_size(eps) == 0) {
            fprintf(out, "  (no endpoints)\n");
            continue;
        }
        fprintf(out, "  ");
        for (int col = 0; col < COL_COUNT; col++) {
            print_cell(out, col_titles[col], width[col], col_right[col], NULL, false,
                       col == COL_COUNT - 1);
            fprintf(out, col == COL_COUNT - 1 ? "\n" : "  ");
        }
        json_array_foreach(eps, k, ep)
        {
            const struct row *r = &rows[nrows++];

            fprintf(out, "  ");
            for (int col = 0; col < COL_COUNT; col++) {
                print_cell(out, r->cell[col], width[col], col_right[col],
                           col == COL_STATE ? r->state_color : NULL, color, col == COL_COUNT - 1);
                fprintf(out, col == COL_COUNT - 1 ? "\n" : "  ");
            }
        }
    }
    free(rows);
}

/* ---- one refresh ---- */

/* Fetches and prints /status once into |out| (errors into |errf|). Returns
 * an exit status, or -2 when interrupted. */
static int refresh(const struct status_opts *o, FILE *out, FILE *errf)
{
    struct hc_cli_http_resp resp;
    json_error_t jerr;
    json_t *root;
    char err[256];
    int rc;

    rc = hc_cli_http_get(o->admin, DEFAULT_ADMIN_PORT, STATUS_PATH, o->timeout_ms, &resp, err,
                         sizeof(err));
    if (rc == -2)
        return -2;
    if (rc != 0) {
        fprintf(errf, "error: cannot reach switchyard admin at %s: %s\n", o->admin, err);
        return HC_CLI_STATUS_UNREACHABLE;
    }
    if (resp.status != 200) {
        fprintf(errf, "error: switchyard admin at %s answered HTTP %d %s to GET " STATUS_PATH "\n",
                o->admin, resp.status, resp.reason);
        hc_cli_http_resp_deinit(&resp);
        return HC_CLI_STATUS_UNREACHABLE;
    }
    root = json_loadb(resp.body, resp.body_len, JSON_REJECT_DUPLICATES, &jerr);
    hc_cli_http_resp_deinit(&resp);
    if (!root) {
        fprintf(errf,
                "error: switchyard admin at %s answered garbage: not JSON (line %d, column %d: "
                "%s)\n",
                o->admin, jerr.line, jerr.column, jerr.text);
        return HC_CLI_STATUS_UNREACHABLE;
    }
    if (o->json) {
        json_dumpf(root, out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        fprintf(out, "\n");
    }
    rc = HC_CLI_STATUS_ALL_IN;
    if (!json_is_object(root) || !json_is_array(json_object_get(root, "clusters"))) {
        fprintf(errf, "error: switchyard admin at %s answered garbage: no \"clusters\" array\n",
                o->admin);
        rc = HC_CLI_STATUS_UNREACHABLE;
    } else {
        const json_t *c;
        size_t i;

        json_array_foreach(json_object_get(root, "clusters"), i, c)
        {
            if (!json_is_object(c)) {
                fprintf(errf,
                        "error: switchyard admin at %s answered garbage: cluster %zu is "
                        "not an object\n",
                        o->admin, i);
                rc = HC_CLI_STATUS_UNREACHABLE;
                break;
            }
        }
    }
    if (rc == HC_CLI_STATUS_ALL_IN) {
        rc = evaluate(root);
        if (!o->json)
            render_table(out, root, o->color);
    }
    json_decref(root);
    return rc;
}

/* Sleeps |ms| unless a signal comes first. */
static void sleep_interruptible(int64_t ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};

    while (!interrupted && nanosleep(&ts, &ts) != 0)
        ;
}

static int watch(const struct status_opts *o)
{
    struct sigaction sa;
    int rc = HC_CLI_STATUS_UNREACHABLE;
    bool tty = isatty(STDOUT_FILENO);
    char every[32];

    /* No SA_RESTART: the signal must cut poll() and nanosleep() short. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    hc_cli_duration_fmt(o->watch_ms, every, sizeof(every));

    while (!interrupted) {
        char *frame = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&frame, &len);
        char stamp[32];
        time_t now = time(NULL);
        struct tm tm;
        int r;

        if (!f)
            abort();
        localtime_r(&now, &tm);
        strftime(stamp, sizeof(stamp), "%Y-%m-%d %H:%M:%S", &tm);
        /* In a watch, errors belong on the screen with the rest. */
        r = refresh(o, f, f);
        fclose(f);
        if (r == -2) {
            free(frame);
            break;
        }
        rc = r;
        if (tty)
            fputs("\033[H\033[2J", stdout);
        printf("Every %s: " HC_CLI_NAME " status --admin %s    %s\n\n", every, o->admin, stamp);
        fwrite(frame, 1, len, stdout);
        if (!tty)
            printf("\n");
        fflush(stdout);
        free(frame);
        sleep_interruptible(o->watch_ms);
    }
    return rc;
}

int hc_cli_status_main(int argc, char **argv)
{
    struct status_opts o;
    int rc = parse_opts(argc, argv, &o);

    if (rc >= 0)
        return rc;
    if (o.watch_ms > 0)
        return watch(&o);
    rc = refresh(&o, stdout, stderr);
    fflush(stdout);
    return rc;
}
