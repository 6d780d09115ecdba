/* tools/ember/args.c - the `ember` tool's one argument parser, help printer, strict number
 * parsing, and the man page and bash completion generated from the same option tables. */
#include "args.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#define HELP_COL 26

int cli_usage_error(const cli_cmd *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember %s: ", cmd->name);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\nTry 'ember %s --help'.\n", cmd->name);
    va_end(ap);
    return 2;
}

/* "--device=DEV" or "--quiet", as the help and the man page show it. */
static void opt_label(const cli_opt *o, char *buf, size_t size)
{
    if (o->letter)
        snprintf(buf, size, "-%c, --%s%s%s", o->letter, o->name, o->value ? "=" : "",
                 o->value ? o->value : "");
    else
        snprintf(buf, size, "    --%s%s%s", o->name, o->value ? "=" : "", o->value ? o->value : "");
}

void cli_print_wrapped(FILE *f, const char *text, int col)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        fprintf(f, "%.*s\n", (int)n, p);
        p += n;
        if (*p == '\n' && *++p)
            fprintf(f, "%*s", col, "");
    }
}

void cli_print_help(const cli_cmd *cmd, FILE *f)
{
    fprintf(f, "usage: ember %s %s\n%s\n", cmd->name, cmd->synopsis, cmd->summary);
    if (cmd->about)
        fprintf(f, "\n%s\n", cmd->about);
    fprintf(f, "\noptions:\n");
    char label[64];
    for (int i = 0; i <= cmd->nopts; i++) {
        static const cli_opt help = {"help", 'h', NULL, "show this help and exit"};
        const cli_opt *o = i < cmd->nopts ? &cmd->opts[i] : &help;
        opt_label(o, label, sizeof label);
        int w = fprintf(f, "  %s", label);
        if (w >= HELP_COL - 1)
            fprintf(f, "\n%*s", HELP_COL, "");
        else
            fprintf(f, "%*s", HELP_COL - w, "");
        cli_print_wrapped(f, o->help, HELP_COL);
    }
    if (cmd->examples) {
        fprintf(f, "\nexamples:\n");
        for (const char *p = cmd->examples; *p;) {
            size_t n = strcspn(p, "\n");
            fprintf(f, "  %.*s\n", (int)n, p);
            p += n + (p[n] == '\n');
        }
    }
}

/* "--epcohs=3" -> "epcohs"; the did-you-mean among the command's long names. */
static void unknown_option(const cli_cmd *cmd, const char *arg)
{
    if (arg[0] == '-' && arg[1] != '-') {
        cli_usage_error(cmd, "unknown option '%s'", arg);
        return;
    }
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)strcspn(arg + 2, "="), arg + 2);
    const char *names[CLI_MAX_OPTS + 1];
    int n = 0;
    for (int i = 0; i < cmd->nopts; i++)
        names[n++] = cmd->opts[i].name;
    names[n++] = "help";
    /* getopt_long takes an unambiguous prefix ("--epo"); an ambiguous one lands here */
    size_t len = strlen(name);
    int prefixed = 0;
    for (int i = 0; i < n; i++)
        prefixed += len > 0 && !strncmp(names[i], name, len);
    if (prefixed > 1) {
        fprintf(stderr, "ember %s: option '--%s' is ambiguous; it could be", cmd->name, name);
        for (int i = 0, k = 0; i < n; i++)
            if (!strncmp(names[i], name, len))
                fprintf(stderr, "%s '--%s'", k++ ? "," : "", names[i]);
        fprintf(stderr, "\nTry 'ember %s --help'.\n", cmd->name);
        return;
    }
    const char *best = em_closest_name(name, names, n);
    if (best)
        cli_usage_error(cmd, "unknown option '--%s'; did you mean '--%s'?", name, best);
    else
        cli_usage_error(cmd, "unknown option '--%s'", name);
}

int cli_parse(const cli_cmd *cmd, int argc, char **argv, cli_args *out)
{
    memset(out, 0, sizeof *out);
    struct option longopts[CLI_MAX_OPTS + 2];
    char shorts[3 * CLI_MAX_OPTS + 4] = ":h";
    size_t ns = 2;
    for (int i = 0; i < cmd->nopts && i < CLI_MAX_OPTS; i++) {
        const cli_opt *o = &cmd->opts[i];
        longopts[i] = (struct option){o->name, o->value ? required_argument : no_argument, NULL,
                                      256 + i};
        if (o->letter) {
            shorts[ns++] = o->letter;
            if (o->value)
                shorts[ns++] = ':';
        }
    }
    shorts[ns] = '\0';
    longopts[cmd->nopts] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[cmd->nopts + 1] = (struct option){0};
    opterr = 0;
    optind = 0;   /* glibc: a full reset */
    int c, li = -1;
    while ((c = getopt_long(argc, argv, shorts, longopts, &li)) != -1) {
        if (c == 'h') {
            cli_print_help(cmd, stdout);
            return 0;
        }
        if (c >= 256 && c < 256 + cmd->nopts) {
            out->val[c - 256] = cmd->opts[c - 256].value ? optarg : "";
            continue;
        }
        int found = -1;
        for (int i = 0; i < cmd->nopts; i++)
            if (c != '?' && c != ':' && cmd->opts[i].letter == c)
                found = i;
        if (found >= 0) {
            out->val[found] = cmd->opts[found].value ? optarg : "";
            continue;
        }
        const char *arg = argv[optind - 1];
        if (c == ':') {
            const cli_opt *o = NULL;
            for (int i = 0; i < cmd->nopts; i++)
                if ((optopt >= 256 && optopt - 256 == i) || (optopt && cmd->opts[i].letter == optopt))
                    o = &cmd->opts[i];
            return o ? cli_usage_error(cmd, "--%s needs a value (%s)", o->name, o->value)
                     : cli_usage_error(cmd, "'%s' needs a value", arg);
        }
        if (optopt >= 256 && optopt < 256 + cmd->nopts)   /* "--quiet=1" */
            return cli_usage_error(cmd, "--%s takes no value", cmd->opts[optopt - 256].name);
        if (optopt && optopt < 256)
            return cli_usage_error(cmd, "unknown option '-%c'", optopt);
        unknown_option(cmd, arg);
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        if (out->npos >= cmd->max_positional || out->npos >= CLI_MAX_POSITIONAL)
            return cli_usage_error(cmd, "unexpected argument '%s'", argv[i]);
        out->pos[out->npos++] = argv[i];
    }
    if (out->npos < cmd->min_positional)
        return cli_usage_error(cmd, "missing %s", cmd->positional_name);
    return -1;
}

/* ---- strict numbers -------------------------------------------------------------------- */

int cli_long(const cli_cmd *cmd, const char *opt, const char *text, long min, long max,
             long *out)
{
    char *end;
    errno = 0;
    long v = strtol(text, &end, 10);
    bool ok = end != text && !*end && errno == 0 && v >= min && v <= max;
    if (ok) {
        *out = v;
        return 0;
    }
    fprintf(stderr, "ember %s: --%s: '%s' is not ", cmd->name, opt, text);
    if (min == 1 && (end == text || *end || v < min))
        fprintf(stderr, "a positive whole number\n");
    else if (min == 0 && (end == text || *end || v < min))
        fprintf(stderr, "a whole number (0 or more)\n");
    else
        fprintf(stderr, "a whole number from %ld to %ld\n", min, max);
    return 2;
}

int cli_u64(const cli_cmd *cmd, const char *opt, const char *text, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (end != text && !*end && errno == 0 && text[strspn(text, " \t")] != '-') {
        *out = v;
        return 0;
    }
    fprintf(stderr, "ember %s: --%s: '%s' is not a whole number from 0 to %llu\n", cmd->name,
            opt, text, (unsigned long long)UINT64_MAX);
    return 2;
}

int cli_double(const cli_cmd *cmd, const char *opt, const char *text, double min, double max,
               double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end != text && !*end && errno == 0 && isfinite(v) && v >= min && v <= max) {
        *out = v;
        return 0;
    }
    fprintf(stderr, "ember %s: --%s: '%s' is not a number from %g to %g\n", cmd->name, opt,
            text, min, max);
    return 2;
}

/* ---- the man page and the bash completion ------------------------------------------------ */

/* roff text: backslashes doubled, '-' as \- so man shows and searches a real hyphen. */
static void roff(FILE *f, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            fputs("\\e", f);
        else if (*s == '-')
            fputs("\\-", f);
        else if (*s == '\n')
            fputc(' ', f);
        else
            fputc(*s, f);
    }
}

static void roff_line_start(FILE *f, const char *s)
{
    if (*s == '.' || *s == '\'')
        fputs("\\&", f);
    roff(f, s);
}

void cli_print_man(FILE *f)
{
    fprintf(f, ".TH EMBER 1 \"\" \"Ember %s\" \"User Commands\"\n", em_version());
    fprintf(f, ".SH NAME\nember \\- train, evaluate and inspect models with the Ember "
               "deep\\-learning runtime\n.SH SYNOPSIS\n");
    for (int i = 0; i < cli_ncommands; i++) {
        fprintf(f, ".B ember %s\n", cli_commands[i]->name);
        roff(f, cli_commands[i]->synopsis);
        fprintf(f, "\n.br\n");
    }
    fprintf(f, ".SH DESCRIPTION\nEmber is a PyTorch\\-style deep\\-learning runtime in C with "
               "loadable backends.\n.B ember\nis its command\\-line tool. Every command takes "
               "\\fB\\-\\-help\\fR. Options take their value as \\fB\\-\\-opt=value\\fR or "
               "\\fB\\-\\-opt value\\fR.\n.SH COMMANDS\n");
    for (int i = 0; i < cli_ncommands; i++) {
        const cli_cmd *c = cli_commands[i];
        fprintf(f, ".SS \"ember %s ", c->name);
        roff(f, c->synopsis);
        fprintf(f, "\"\n");
        roff_line_start(f, c->summary);
        fprintf(f, "\n");
        if (c->about) {
            fprintf(f, ".PP\n");
            roff_line_start(f, c->about);
            fprintf(f, "\n");
        }
        for (int k = 0; k < c->nopts; k++) {
            const cli_opt *o = &c->opts[k];
            fprintf(f, ".TP\n");
            if (o->letter)
                fprintf(f, "\\fB\\-%c\\fR, ", o->letter);
            fprintf(f, "\\fB\\-\\-");
            roff(f, o->name);
            fprintf(f, "\\fR");
            if (o->value) {
                fprintf(f, "=\\fI");
                roff(f, o->value);
                fprintf(f, "\\fR");
            }
            fprintf(f, "\n");
            roff_line_start(f, o->help);
            fprintf(f, "\n");
        }
        if (c->examples) {
            fprintf(f, ".PP\nExamples:\n.RS\n.nf\n");
            roff_line_start(f, "");
            for (const char *p = c->examples; *p;) {
                size_t n = strcspn(p, "\n");
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)n, p);
                roff_line_start(f, line);
                fprintf(f, "\n");
                p += n + (p[n] == '\n');
            }
            fprintf(f, ".fi\n.RE\n");
        }
    }
    fprintf(f, ".SH ENVIRONMENT\n");
    for (int i = 0; i < cli_nenvironment; i++) {
        fprintf(f, ".TP\n.B ");
        roff(f, cli_environment[i][0]);
        fprintf(f, "\n");
        roff_line_start(f, cli_environment[i][1]);
        fprintf(f, "\n");
    }
    fprintf(f, ".SH FILES\n.TP\n.I $XDG_CONFIG_HOME/ember/ember.ini\nthe user's configuration "
               "(default \\fI~/.config/ember/ember.ini\\fR)\n.TP\n.I "
               "<sysconfdir>/ember/ember.ini\nthe system configuration\n.PP\nNo file in the "
               "current directory is ever read implicitly.\n");
    fprintf(f, ".SH EXIT STATUS\n0 on success, 1 on a failure (a file that cannot be read, a "
               "model that does not build), 2 on a usage error, 130 after Ctrl\\-C in "
               "\\fBtrain\\fR.\n");
}

void cli_print_bash_completion(FILE *f)
{
    fprintf(f, "# bash completion for ember (generated by `ember help --bash-completion`)\n"
               "_ember()\n{\n"
               "    local cur prev cmd i\n"
               "    cur=${COMP_WORDS[COMP_CWORD]}\n"
               "    prev=${COMP_WORDS[COMP_CWORD-1]}\n"
               "    if [ \"$COMP_CWORD\" -eq 1 ]; then\n"
               "        COMPREPLY=($(compgen -W '");
    for (int i = 0; i < cli_ncommands; i++)
        fprintf(f, "%s ", cli_commands[i]->name);
    fprintf(f, "help --help --version' -- \"$cur\"))\n        return\n    fi\n"
               "    cmd=${COMP_WORDS[1]}\n"
               "    case \"$prev\" in\n");
    /* options whose value is a file or a folder complete file names */
    fprintf(f, "        --config|--checkpoint|--out|--junit|--markdown|--plot|--output) "
               "COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
               "        --device) COMPREPLY=($(compgen -W 'cpu cuda cuda:0 opencl opencl:0' "
               "-- \"$cur\")); return ;;\n    esac\n"
               "    case \"$cmd\" in\n");
    for (int i = 0; i < cli_ncommands; i++) {
        const cli_cmd *c = cli_commands[i];
        fprintf(f, "        %s) i='--help", c->name);
        for (int k = 0; k < c->nopts; k++)
            fprintf(f, " --%s", c->opts[k].name);
        fprintf(f, "' ;;\n");
    }
    fprintf(f, "        *) return ;;\n    esac\n"
               "    if [[ $cur == -* ]]; then\n"
               "        COMPREPLY=($(compgen -W \"$i\" -- \"$cur\"))\n"
               "    else\n"
               "        COMPREPLY=($(compgen -f -- \"$cur\"))\n"
               "    fi\n}\ncomplete -o filenames -F _ember ember\n");
}
