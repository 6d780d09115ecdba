/* tools/ember/args.h - one command-line parser for every `ember` subcommand (getopt_long).
 *
 * A subcommand describes its options in a table (long name, optional short letter, value
 * name, help text); cli_parse() turns argv into values by table index, prints --help from the
 * same table, and reports unknown options with a "did you mean". The man page and the bash
 * completion are generated from these tables too, so help, man page and completion agree.
 */
#ifndef EMBER_TOOL_ARGS_H
#define EMBER_TOOL_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CLI_MAX_OPTS 24
#define CLI_MAX_POSITIONAL 4

typedef struct cli_opt {
    const char *name;      /* long name without "--": "epochs" */
    char letter;           /* short form ('q' for -q), or 0 */
    const char *value;     /* value name ("N", "FILE"), or NULL for a flag */
    const char *help;      /* what it does, one or two lines (wrapped at '\n') */
} cli_opt;

typedef struct cli_cmd {
    const char *name;      /* "train" */
    const char *synopsis;  /* after "ember train ": "CONFIG [OPTION]..." */
    const char *summary;   /* one line, for `ember --help` */
    const char *about;     /* a paragraph for `ember train --help` (may be NULL) */
    const cli_opt *opts;
    int nopts;
    int min_positional, max_positional;
    const char *positional_name;   /* "CONFIG": named in "missing CONFIG" */
    const char *examples;  /* command lines, one per line, for --help and the man page */
} cli_cmd;

/* `.opts` and `.nopts` of a cli_cmd from one option array, so the count cannot drift. */
#define CLI_OPTS(array) .opts = (array), .nopts = (int)(sizeof(array) / sizeof((array)[0]))

typedef struct cli_args {
    const char *val[CLI_MAX_OPTS];   /* per option: its value; a given flag is "" */
    const char *pos[CLI_MAX_POSITIONAL];
    int npos;
} cli_args;

/* Parses argv (argv[0] is the subcommand's name). Returns -1 when the command should run,
 * 0 after printing --help to stdout, 2 after printing a usage error to stderr (unknown option
 * with a suggestion, missing value, wrong number of positional arguments). */
int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out);

/* True when option i was given. */
static inline bool cli_has(const cli_args *a, int i) { return a->val[i] != NULL; }

/* Strict numbers: the whole text must be a number in [min, max]. On failure prints
 * "ember CMD: --OPT: 'abc' is not a positive whole number" (or the range) and returns 2. */
int cli_long(const cli_cmd *cmd, const char *opt, const char *text, long min, long max,
             long *out);
int cli_u64(const cli_cmd *cmd, const char *opt, const char *text, uint64_t *out);
int cli_double(const cli_cmd *cmd, const char *opt, const char *text, double min, double max,
               double *out);

/* Prints "ember CMD: <message>\n" to stderr, then "Try 'ember CMD --help'." and returns 2. */
int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

void cli_print_help(const cli_cmd *cmd, FILE *f);
/* Prints text, each '\n' in it continued on a new line indented by col columns. */
void cli_print_wrapped(FILE *f, const char *text, int col);

/* Every subcommand, in the order of `ember --help` (main.c). */
extern const cli_cmd *const cli_commands[];
extern const int cli_ncommands;
/* The environment variables the tool and the library read, with a line each. */
extern const char *const cli_environment[][2];
extern const int cli_nenvironment;

/* The man page (roff) and the bash completion script, generated from the tables. */
void cli_print_man(FILE *f);
void cli_print_bash_completion(FILE *f);

#endif
