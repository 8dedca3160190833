/* switchyard-health: entry point, subcommand dispatch, top-level help and the
 * duration syntax shared by the subcommands.
 * Invariant: main() is the only place that picks an exit status from argv
 * alone; subcommands own their options and messages.
 * SPDX-License-Identifier: MIT */
#include "health/cli.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
    fprintf(f, "usage: " HC_CLI_NAME " <command> [options]\n"
               "\n"
               "Commands:\n"
               "  check HOST:PORT   probe a gRPC server with grpc.health.v1.Health/Check\n"
               "                    (exit 0 SERVING, 1 bad arguments, 2 connection failure,\n"
               "                    3 RPC failure, 4 not serving); grpc_health_probe's\n"
               "                    flags work too: " HC_CLI_NAME " -addr=HOST:PORT ...\n"
               "  status            show switchyard's clusters and endpoints from its admin\n"
               "                    listener (exit 0 all in rotation, 1 some out, 2 unreachable)\n"
               "  drain CLUSTER HOST:PORT    take an endpoint out of switchyard's rotation\n"
               "  undrain CLUSTER HOST:PORT  put it back (exit codes: drain --help)\n"
               "  help [COMMAND]    show this help, or a command's\n"
               "\n"
               "Options:\n"
               "  -h, --help        show this help\n"
               "  -V, --version     print the version\n"
               "\n"
               "Run '" HC_CLI_NAME " COMMAND --help' for a command's options.\n");
}

static int help_for(const char *cmd)
{
    if (!cmd) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "check") == 0) {
        hc_cli_check_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "status") == 0) {
        hc_cli_status_usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0) {
        hc_cli_drain_usage(stdout);
        return 0;
    }
    fprintf(stderr, HC_CLI_NAME ": unknown command '%s'\n", cmd);
    usage(stderr);
    return 1;
}

/* Is |a| grpc_health_probe's -addr (or --addr), with or without '=VALUE'? */
static bool is_addr_flag(const char *a)
{
    const char *n = a[0] == '-' ? a + 1 + (a[1] == '-') : NULL;

    return n != NULL && strncmp(n, "addr", 4) == 0 && (n[4] == '\0' || n[4] == '=');
}

int main(int argc, char **argv)
{
    const char *cmd, *base = argv[0] != NULL ? strrchr(argv[0], '/') : NULL;

    /* A drop-in for grpc_health_probe: installed (or linked) under that name,
     * or called with its flags and no command, it runs `check`. argv[0] then
     * stands for the command name, as check's option parser expects. */
    base = base != NULL ? base + 1 : argv[0];
    if (base != NULL && strcmp(base, "grpc_health_probe") == 0)
        return hc_cli_check_main(argc, argv);
    if (argc >= 2 && is_addr_flag(argv[1]))
        return hc_cli_check_main(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 1;
    }
    cmd = argv[1];
    if (strcmp(cmd, "check") == 0)
        return hc_cli_check_main(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0)
        return hc_cli_status_main(argc - 1, argv + 1);
    if (strcmp(cmd, "drain") == 0 || strcmp(cmd, "undrain") == 0)
        return hc_cli_drain_main(argc - 1, argv + 1);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0)
        return help_for(argc > 2 ? argv[2] : NULL);
    if (strcmp(cmd, "-V") == 0 || strcmp(cmd, "--version") == 0) {
        printf(HC_CLI_NAME " " HC_CLI_VERSION "\n");
        return 0;
    }
    if (cmd[0] == '-')
        fprintf(stderr, HC_CLI_NAME ": unknown option '%s'; a command comes first\n", cmd);
    else
        fprintf(stderr, HC_CLI_NAME ": unknown command '%s'\n", cmd);
    usage(stderr);
    return 1;
}

/* ---- durations ---- */

int hc_cli_duration_parse(const char *s, bool bare_seconds, int64_t *ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    char *end;
    double v;

    /* strtod alone would accept "inf", "nan", hex and leading blanks. */
    if (!s || !((s[0] >= '0' && s[0] <= '9') || (s[0] == '.' && s[1] >= '0' && s[1] <= '9')))
        return -1;
    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || !isfinite(v) || v < 0)
        return -1;
    if (*end == '\0') {
        if (!bare_seconds)
            return -1;
        v *= 1000;
    } else {
        size_t i;

        for (i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            if (strcmp(end, units[i].unit) == 0)
                break;
        }
        if (i == sizeof(units) / sizeof(units[0]))
            return -1;
        v *= units[i].ms;
    }
    if (v > 24.0 * 3600000)
        return -1;
    *ms = (int64_t)ceil(v);
    return 0;
}

const char *hc_cli_duration_fmt(int64_t ms, char *buf, size_t buflen)
{
    if (ms < 1000)
        snprintf(buf, buflen, "%lldms", (long long)ms);
    else if (ms % 60000 == 0)
        snprintf(buf, buflen, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(buf, buflen, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, buflen, "%.3gs", (double)ms / 1000.0);
    return buf;
}
