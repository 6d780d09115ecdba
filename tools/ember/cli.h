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
/* bench_dist.c: `ember bench --dist` (under mpirun or alone; train_only: no all-reduce sweep);
 * 0 or 1 */
int bench_dist(bool quick, bool train_only);

/* train_dist.c: `ember train` under mpirun (no-ops for a single process); 0 or 1 */
bool train_dist_is_root(void);
/* ", 2 ranks (mpi), batch_size per rank" for the opening line; "" for one process. */
const char *train_dist_banner(void);
/* Shards the training loader and wraps the model in DistributedDataParallel with opts ([train]
 * find_unused_parameters and ddp_compress); *ddp stays NULL for one process. */
int train_dist_setup(em_module *model, em_dataloader *train_dl, const em_ddp_opts *opts,
                     em_ddp **ddp);
/* The test loader's unpadded shard, so reduced sums cover the test set exactly once. */
int train_dist_shard_eval(em_dataloader *dl);
/* In-place sums over every rank. */
int train_dist_sum(double *v, int n);
int train_dist_sum_i64(int64_t *v, int64_t n);
/* The bytes of the file at `path` on every rank: rank 0 reads it and sends it to the others,
 * which never open it (their file systems need not have it). *bytes is malloc'd (the
 * caller frees it). Returns 0, or an errno every rank agrees on (rank 0's from reading, or
 * ENOMEM/EIO from the transfer, printed where it happened). Call it on every rank. */
int train_dist_read(const char *path, unsigned char **bytes, size_t *size);
/* Ends `ember <cmd>` (train, eval): a failure on any rank ends the whole job (the other
 * ranks would wait in their next collective), else em_shutdown(). rc 130 (an interrupt the
 * ranks agreed on) ends normally. Returns rc. */
int train_dist_end(const char *cmd, int rc);

/* Prints "ember: <what>: <em_last_error()>" to stderr and returns 1. */
int cli_fail(const char *what);
/* A config value's source for people: a path relative to the current folder, or under ~. */
const char *cli_source(const char *source, char *buf, size_t size);
/* Monotonic seconds, for timing. */
double cli_now(void);
/* The median of v[0..n) (sorts v in place). */
double cli_median(double *v, int n);
/* "1.5 GiB" style text for a byte count. */
const char *cli_bytes(size_t n, char *buf, size_t size);

#endif
