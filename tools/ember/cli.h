/* tools/ember/cli.h - the `ember` command's subcommands and shared helpers. */
#ifndef EMBER_TOOL_CLI_H
#define EMBER_TOOL_CLI_H

#include <ember/ember.h>

#include "args.h"

/* Each subcommand: its option table (args.h) and its entry point; exit status 0, 1 or 2. */
extern const cli_cmd cli_train, cli_eval, cli_plot, cli_summary, cli_info, cli_bench,
    cli_conformance;
int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_summary(int argc, char **argv);
/* bench_train.c: training-step and data-epoch figures; 0 or 1 */
int bench_train(bool quick);

/* Prints "ember: <what>: <em_last_error()>" to stderr and returns 1. */
int cli_fail(const char *what);
/* A config value's source for people: a path relative to the current folder, or under ~. */
const char *cli_source(const char *source, char *buf, size_t size);
/* "1.5 GiB" style text for a byte count. */
const char *cli_bytes(size_t n, char *buf, size_t size);

#endif
