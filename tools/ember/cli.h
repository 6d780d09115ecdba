/* tools/ember/cli.h - the `ember` command's subcommands and shared helpers. */
#ifndef EMBER_TOOL_CLI_H
#define EMBER_TOOL_CLI_H

#include <ember/ember.h>

int cmd_info(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_conformance(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_summary(int argc, char **argv);
/* bench_train.c: training-step and data-epoch figures; 0 or 1 */
int bench_train(bool quick);

/* Prints "ember: <what>: <em_last_error()>" to stderr and returns 1. */
int cli_fail(const char *what);
/* "1.5 GiB" style text for a byte count. */
const char *cli_bytes(size_t n, char *buf, size_t size);

#endif
