/*
 * cli: nsqadmin's command-line mode. `nsqadmin <command> [args] [flags]` runs one API operation
 * (api.c, the same code the web server runs) against the cluster named by
 * --lookupd-http-address or --nsqd-http-address and prints a table, or the API's JSON answer with
 * --json. Commands: topics; channels <topic>; nodes; stats <topic> [<channel>]; pause, unpause,
 * empty, delete, create <topic> [<channel>]; tombstone <topic> <node>.
 *
 * Exit codes: 0 success; 2 partial failure (some nodes failed; the warning is printed on
 * stderr); 1 failure; 64 usage error.
 */
#ifndef NSQADMIN_CLI_H
#define NSQADMIN_CLI_H

#include <stdbool.h>
#include <stdio.h>

#define CLI_EXIT_OK      0
#define CLI_EXIT_FAILURE 1
#define CLI_EXIT_PARTIAL 2
#define CLI_EXIT_USAGE   64

/* True if there is a non-flag argument (a command word, or an unknown word to complain about). */
bool cli_wanted(int argc, char **argv);
/* True if -h/--help/-help is among the arguments. */
bool cli_help_requested(int argc, char **argv);
/* Runs the command; returns the process exit code. */
int cli_main(int argc, char **argv);
/* The commands and exit codes, for --help. */
void cli_usage(FILE *out);

#endif
