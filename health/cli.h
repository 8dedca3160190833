/* switchyard-health: the operator CLI (a separate binary, not linked into the
 * proxy). `check` probes any gRPC server with grpc.health.v1.Health/Check
 * through the gRPC C core; `status` reads switchyard's admin /status.
 * Invariant: each subcommand returns its exit status and prints its own
 * messages (results to stdout, errors to stderr); nothing here calls exit()
 * except main().
 * SPDX-License-Identifier: MIT */
#ifndef HEALTH_CLI_H
#define HEALTH_CLI_H

#include <stdio.h>

/** Runs `switchyard-health drain` or `undrain` (|argv[0]| says which).
 *  Returns an enum hc_cli_drain_exit value. */
int hc_cli_drain_main(int argc, char **argv);

/** Prints the help of `drain` and `undrain` to |f|. */
void hc_cli_drain_usage(FILE *f);

/** Runs `switchyard-health check`: |argv[0]| is the command's name ("check",
 *  or the program's when called as grpc_health_probe) and is not parsed.
 *  Options take one dash or two (grpc_health_probe's syntax and names, and
 *  this CLI's own); an unknown one is an error. Initialises and shuts down
 *  gRPC itself. Returns an enum hc_cli_check_exit value. */
int hc_cli_check_main(int argc, char **argv);

/** Prints the help of `check` to |f|. */
void hc_cli_check_usage(FILE *f);

/** Runs `switchyard-health status` with |argv[0]| = "status". Returns an enum
 *  hc_cli_status_exit value; with --watch, returns the last refresh's status
 *  once interrupted by SIGINT or SIGTERM. */
int hc_cli_status_main(int argc, char **argv);

/** Prints the help of `status` to |f|. */
void hc_cli_status_usage(FILE *f);

#endif
