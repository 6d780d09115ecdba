/* tools/ember/train_config.c - the settings of `ember train` and `ember eval`: every key of
 * [data], [model] and [train] checked, the command line over the config files, and where each
 * value came from. The files themselves are layered by em_init_layered (defaults < system <
 * user < the training config < environment); this file adds the command line on top. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "train.h"

typedef struct key_rule {
    const char *key;         /* "data.dataset" */
    bool required;
} key_rule;

static const key_rule known_keys[] = {
    {"data.dataset", true},   {"data.test_dataset", false}, {"data.split", false},
    {"data.batch_size", false}, {"data.shuffle", false},
    {"model.spec", true},     {"model.loss", false},        {"train.optimizer", true},
    {"train.scheduler", false}, {"train.epochs", false},    {"train.seed", false},
    {"train.out_dir", false}, {"train.find_unused_parameters", false},
    {"train.ddp_compress", false},
};
#define NKEYS (int)(sizeof known_keys / sizeof known_keys[0])

static int bad_value(const char *key, const char *what, const char *value, const char *source)
{
    char sb[PATH_MAX];
    fprintf(stderr, "ember: %s: %s: %s, got '%s'\n", cli_source(source, sb, sizeof sb), key,
            what, value);
    return 2;
}

/* Every [data]/[model]/[train] key must be known: a typo is an error with a suggestion. */
static int check_keys(void)
{
    const char *names[NKEYS];
    for (int j = 0; j < NKEYS; j++)
        names[j] = known_keys[j].key;
    const char *k, *v, *src;
    char sb[PATH_MAX];
    for (int i = 0; em_config_entry(i, &k, &v, &src); i++) {
        bool known = !strncmp(k, "runtime.", 8);
        for (int j = 0; j < NKEYS && !known; j++)
            known = !strcmp(k, known_keys[j].key);
        if (known)
            continue;
        const char *best = em_closest_name(k, names, NKEYS);
        fprintf(stderr, "ember: %s: unknown key '%s'", cli_source(src, sb, sizeof sb), k);
        if (best)
            fprintf(stderr, "; did you mean '%s'?", best);
        fprintf(stderr, "\n");
        return 2;
    }
    for (int j = 0; j < NKEYS; j++)
        if (known_keys[j].required && !em_config_get(known_keys[j].key)) {
            const char *dot = strchr(known_keys[j].key, '.');
            fprintf(stderr, "ember: %s: missing [%.*s] %s\n", em_config_file(),
                    (int)(dot - known_keys[j].key), known_keys[j].key, dot + 1);
            return 2;
        }
    return 0;
}

static bool parse_bool(const char *s, bool *out)
{
    if (!strcmp(s, "true") || !strcmp(s, "1") || !strcmp(s, "yes"))
        return *out = true, true;
    if (!strcmp(s, "false") || !strcmp(s, "0") || !strcmp(s, "no"))
        return *out = false, true;
    return false;
}

/* The value of key (the command line's if it overrides it) and its source. */
static const char *value_of(const char *key, const char *cli, const char **source)
{
    *source = cli ? "command line" : em_config_source(key);
    return cli ? cli : em_config_get(key);
}

int train_config_load(run_cfg *c, const train_opts *o)
{
    if (check_keys())
        return 2;
    char real[PATH_MAX];
    if (!realpath(o->config, real))
        snprintf(real, sizeof real, "%s", o->config);
    c->config = o->config;
    snprintf(c->dir, sizeof c->dir, "%s", real);
    char *slash = strrchr(c->dir, '/');
    if (slash)
        *slash = '\0';
    const char *base = strrchr(real, '/') ? strrchr(real, '/') + 1 : real;
    snprintf(c->name, sizeof c->name, "%.*s", (int)strcspn(base, "."), base);
    c->dataset = em_config_get("data.dataset");
    c->test_dataset = em_config_get("data.test_dataset");
    c->model = em_config_get("model.spec");
    c->loss = em_config_get("model.loss") ? em_config_get("model.loss") : "CrossEntropyLoss()";
    c->optimizer = em_config_get("train.optimizer");
    c->scheduler = em_config_get("train.scheduler");
    const char *v, *src;
    char *end;
    c->split = 0.8;
    if ((v = value_of("data.split", NULL, &src))) {
        c->split = strtod(v, &end);
        if (*end || !(c->split > 0 && c->split < 1))
            return bad_value("data.split", "expected a fraction between 0 and 1", v, src);
    }
    c->batch_size = 64;
    if ((v = value_of("data.batch_size", o->batch_size, &src))) {
        c->batch_size = strtoll(v, &end, 10);
        if (end == v || *end || c->batch_size < 1)
            return bad_value("data.batch_size", "expected a positive whole number", v, src);
    }
    c->shuffle = true;
    if ((v = value_of("data.shuffle", NULL, &src)) && !parse_bool(v, &c->shuffle))
        return bad_value("data.shuffle", "expected true or false", v, src);
    c->epochs = 10;
    if ((v = value_of("train.epochs", o->epochs, &src))) {
        long e = strtol(v, &end, 10);
        if (end == v || *end || e < 1 || e > 1000000)
            return bad_value("train.epochs", "expected a whole number from 1 to 1000000", v,
                             src);
        c->epochs = (int)e;
    }
    c->seed = 0;
    if ((v = value_of("train.seed", o->seed, &src))) {
        c->seed = strtoull(v, &end, 10);
        if (end == v || *end || *v == '-')
            return bad_value("train.seed", "expected a whole number (0 or more)", v, src);
    }
    c->out_given = true;
    if (o->out)
        snprintf(c->out_dir, sizeof c->out_dir, "%s", o->out);
    else if ((v = em_config_get("train.out_dir")))
        snprintf(c->out_dir, sizeof c->out_dir, "%s", v);
    else {
        snprintf(c->out_dir, sizeof c->out_dir, "runs/%s", c->name);
        c->out_given = false;
    }
    c->find_unused = false;
    if ((v = value_of("train.find_unused_parameters", NULL, &src)) &&
        !parse_bool(v, &c->find_unused))
        return bad_value("train.find_unused_parameters", "expected true or false", v, src);
    c->ddp_compress = 0;
    if ((v = value_of("train.ddp_compress", NULL, &src))) {
        if (!strcmp(v, "bf16"))
            c->ddp_compress = EM_BF16;
        else if (strcmp(v, "none"))
            return bad_value("train.ddp_compress", "expected none or bf16", v, src);
    }
    c->quiet = o->quiet;
    return 0;
}

/* One "key = value (from source)" line, cut to `width` - 1 columns when width > 0: the value
 * first (down to 8 characters and "..."), then the source from its left ("...les/x.ini:7"),
 * which keeps the file name and line, then, in a very narrow terminal, the line itself. */
static void setting_line(FILE *f, const char *key, const char *value, const char *from,
                         int width)
{
    char line[1024];
    int vlen = (int)strlen(value), flen = (int)strlen(from);
    int fixed = snprintf(NULL, 0, "  %-16s =  (from )", key);
    int over = width > 0 ? fixed + vlen + flen - (width - 1) : 0;
    int vkeep = vlen, fskip = 0;
    if (over > 0 && vlen > 11) {
        vkeep = vlen - over - 3 > 8 ? vlen - over - 3 : 8;
        over -= vlen - vkeep - 3;
    }
    if (over > 0 && flen > 11) {
        fskip = over + 3 < flen - 8 ? over + 3 : flen - 8;
        over -= fskip - 3;
    }
    int n = snprintf(line, sizeof line, "  %-16s = %.*s%s (from %s%s)", key, vkeep, value,
                     vkeep < vlen ? "..." : "", fskip ? "..." : "", from + fskip);
    if (width > 1 && n > width - 1 && n < (int)sizeof line)
        line[width - 1] = '\0';
    fprintf(f, "%s\n", line);
}

void train_config_print(const run_cfg *c, const train_opts *o, FILE *f, int width)
{
    (void)c;
    const char *k, *v, *src;
    char sb[PATH_MAX];
    fprintf(f, "settings (later sources win: default, system, user, CONFIG, env, "
               "options):\n");
    static const struct {
        const char *key, *opt;
    } extra[] = {{"train.epochs", "--epochs"}, {"train.seed", "--seed"},
                 {"data.batch_size", "--batch-size"}, {"train.out_dir", "--out"}};
    const char *cli_val[] = {o->epochs, o->seed, o->batch_size, o->out};
    for (int i = 0; em_config_entry(i, &k, &v, &src); i++) {
        if (!strcmp(k, "runtime.env_plugin_path"))
            continue;
        const char *val = v, *from = cli_source(src, sb, sizeof sb);
        for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++)
            if (!strcmp(k, extra[e].key) && cli_val[e]) {
                val = cli_val[e];
                from = extra[e].opt;
            }
        setting_line(f, k, val, from, width);
    }
    for (size_t e = 0; e < sizeof extra / sizeof extra[0]; e++)
        if (!em_config_get(extra[e].key) && cli_val[e])
            setting_line(f, extra[e].key, cli_val[e], extra[e].opt, width);
    if (o->device)
        setting_line(f, "device", o->device, "--device", width);
}
