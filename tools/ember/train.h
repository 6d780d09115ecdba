/* tools/ember/train.h - what `ember train`, `ember eval` and `ember plot` share: the run's
 * settings (train_config.c), the run folder (run_dir.c), the progress bar (progress.c) and
 * the pictures (plot.c). */
#ifndef EMBER_TOOL_TRAIN_H
#define EMBER_TOOL_TRAIN_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "cli.h"

/* What the command line says; a value left NULL/0 comes from the config files. */
typedef struct train_opts {
    const char *config, *device, *out, *epochs, *seed, *batch_size;
    bool resume, force, quiet, no_plot;
} train_opts;

/* The run's settings, after every layer (train_config.c). */
typedef struct run_cfg {
    const char *config;      /* the file as given */
    char dir[PATH_MAX];      /* its folder: data paths are relative to it */
    char name[128];          /* the config's base name: runs/<name> */
    const char *dataset, *test_dataset, *model, *loss, *optimizer, *scheduler;
    double split;
    bool shuffle;
    int64_t batch_size;
    int epochs;
    uint64_t seed;
    char out_dir[PATH_MAX];  /* where this run writes (run_dir.c decides) */
    bool out_given;          /* --out or [train] out_dir: exactly that folder */
    bool quiet;
    bool find_unused;        /* [train] find_unused_parameters (DistributedDataParallel) */
    em_dtype ddp_compress;   /* [train] ddp_compress: EM_BF16, or 0 for none */
} run_cfg;

/* train_config.c: em_init_layered(config) done by the caller; reads every key (a typo is an
 * error with a suggestion), applies the command line over it, and returns 0 or 2 (after a
 * message naming the key, the value and where it came from). */
int train_config_load(run_cfg *c, const train_opts *o);
/* Prints each setting and where it came from ("(from default)", "(from
 * examples/digits.ini:9)", "(from --epochs)", "(from env EMBER_BACKEND)"); with width > 0
 * (a terminal's), long values are cut so that each line fits. */
void train_config_print(const run_cfg *c, const train_opts *o, FILE *f, int width);
/* stdout's terminal width, 0 when it is not a terminal (progress.c). */
int cli_terminal_width(void);

/* run_dir.c: picks and creates the run folder. Without --out, runs/<name>/version_N with N
 * one more than the highest there (--resume: the highest); with --out DIR, exactly DIR,
 * refused when it holds a run unless --resume or --force. Returns 0, or 1/2 after a message. */
int run_dir_open(run_cfg *c, const train_opts *o);
/* The latest version folder of a run folder (itself when it holds metrics.csv). */
int run_dir_latest(const char *run, char *out, size_t size);
int run_state_save(const run_cfg *c, int epochs_done, double best);
/* state.txt's text ("epochs_done=N\nbest_accuracy=X\n", X as em_strtod reads it): 0, or -1
 * when it is not that. */
int run_state_parse(const char *text, size_t size, int *epochs_done, double *best);

/* progress.c: a tqdm-like bar on a terminal; nothing when stdout is not one. */
typedef struct progress {
    bool on;
    int cols;                /* terminal width (80 when unknown) */
    double t0, last;         /* start and last redraw (monotonic seconds) */
    int draws;
} progress;
void progress_start(progress *p, bool on);
/* Redraws at most 10 times a second, and always when done == total. */
void progress_update(progress *p, const char *label, int64_t done, int64_t total,
                     int64_t samples, double loss);
void progress_clear(progress *p);

/* plot.c: pictures of a run folder (metrics.csv, confusion.csv) as SVG, and PNG when built
 * with cairo. Returns 0, or 1 after a message; prints the files it wrote. */
int plot_run(const char *run_dir);
/* A confusion matrix [classes][classes] (rows: truth) as a picture: FILE.svg or FILE.png by
 * its ending. */
int plot_confusion_file(const char *path, const int64_t *m, int64_t classes, const char *title);
int write_confusion_csv(const char *path, const int64_t *m, int64_t classes);

#endif
