/* tools/ember/summary.c - `ember summary SPEC --input SHAPE`: torchsummary's table for a
 * model spec, e.g. ember summary "Sequential(Linear(3, 64), ReLU())" --input 3 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

enum { O_INPUT, O_CONFIG };
static const cli_opt k_opts[] = {
    [O_INPUT] = {"input", 'i', "SHAPE", "one sample's shape, e.g. 3 or 1,28,28 (torchsummary's\n"
                                         "input_size); the batch is left out"},
    [O_CONFIG] = {"config", 'c', "FILE", "read FILE as the runtime config"},
};
const cli_cmd cli_summary = {
    .name = "summary", .synopsis = "SPEC --input SHAPE [OPTION]...",
    .summary = "torchsummary's table for a model spec",
    .about = "Builds the model from SPEC, runs one batch of zeros through it and prints each\n"
             "layer's output shape and parameter count, as torchsummary.summary does.",
    CLI_OPTS(k_opts), .min_positional = 1, .max_positional = 1,
    .positional_name = "SPEC (a model spec such as \"Linear(3, 10)\")",
    .examples = "ember summary \"Sequential(Linear(3, 64), ReLU(), Linear(64, 10))\" --input 3",
};

int cmd_summary(int argc, char **argv)
{
    cli_args a;
    int prc = cli_parse(&cli_summary, argc, argv, &a);
    if (prc >= 0)
        return prc;
    const char *spec = a.pos[0], *shape_text = a.val[O_INPUT], *config = a.val[O_CONFIG];
    if (!shape_text)
        return cli_usage_error(&cli_summary, "missing --input SHAPE (e.g. --input 3)");
    /* torchsummary runs a batch of two; the table shows the batch as -1 */
    int64_t shape[EM_MAX_DIMS] = {2};
    int nd = 1;
    const char *p = shape_text;
    while (*p) {
        char *end;
        errno = 0;
        long long v = strtoll(p, &end, 10);
        if (nd == EM_MAX_DIMS || end == p || errno || v < 1 || v > (1LL << 40) ||
            (*end && *end != ',' && *end != 'x') || (*end && !end[1])) {
            fprintf(stderr, "ember summary: --input: '%s' is not a shape of up to %d positive "
                            "whole numbers such as 3 or 1,28,28 (one sample, without the "
                            "batch)\n", shape_text, EM_MAX_DIMS - 1);
            return 2;
        }
        shape[nd++] = v;
        p = *end ? end + 1 : end;
    }
    if (em_init(config) < 0)
        return cli_fail("init");
    int rc = 0;
    em_module *m = em_module_new(spec);
    char *table = m ? em_module_summary(m, nd, shape) : NULL;
    if (table)
        fputs(table, stdout);
    else
        rc = cli_fail(m ? "summary" : "model");
    free(table);
    em_module_free(m);
    em_shutdown();
    return rc;
}
