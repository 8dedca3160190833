/* switchyard-health: entry point, subcommand dispatch, top-level help and the
 * duration syntax shared by the subcommands.
 * Invariant: main() is the only place that picks an exit status from argv
 * alone; subcommands own their options and messages.
 * SPDX-License-Identifier: MIT */
#include "health/cli.h"

#include "health/cli_common.h"

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
