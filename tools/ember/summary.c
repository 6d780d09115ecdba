/* tools/ember/summary.c - `ember summary SPEC --input SHAPE`: torchsummary's table for a
 * model spec, e.g. ember summary "Sequential(Linear(3, 64), ReLU())" --input 1,3 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int cmd_summary(int argc, char **argv)
{
    const char *spec = NULL, *shape_text = NULL, *config = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--input") && i + 1 < argc)
            shape_text = argv[++i];
        else if (!strcmp(argv[i], "--config") && i + 1 < argc)
            config = argv[++i];
        else if (argv[i][0] != '-' && !spec)
            spec = argv[i];
        else {
            fprintf(stderr, "ember summary: unknown argument '%s'\n", argv[i]);
            spec = NULL;
            break;
        }
    }
    if (!spec || !shape_text) {
        fprintf(stderr, "usage: ember summary SPEC --input SHAPE   (SHAPE like 64,3: batch "
                        "first)\n");
        return 2;
    }
    int64_t shape[EM_MAX_DIMS];
    int nd = 0;
    const char *p = shape_text;
    while (*p && nd < EM_MAX_DIMS) {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p || v < 1 || (*end && *end != ',' && *end != 'x')) {
            fprintf(stderr, "ember summary: --input: bad shape '%s' (expected e.g. 64,3)\n",
                    shape_text);
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
