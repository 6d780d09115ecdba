/* tools/ember/conformance.c - `ember conformance`: the conformance suite against one backend.
 *
 * The cases, references and checks live in tests/conformance/ (linked in as a static
 * library); this file is the command line: options, the support matrix (also as markdown for
 * docs/op-support.md), the case list, JUnit XML, and the closing line
 * `N passed, N failed, N skipped`. Exit status: 0 when nothing failed (a backend that cannot
 * run here is all skips, never passes), 1 on failures or errors, 2 on bad usage.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "conformance.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: ember conformance --backend NAME [--op OP] [--dtype D] [--junit FILE]\n"
            "                         [--seed N] [--verbose] [--config FILE] [--skip-status N]\n"
            "       ember conformance --support [--backend NAME] [--markdown FILE]\n"
            "       ember conformance --list [--op OP] [--dtype D]\n"
            "\n"
            "Runs the conformance cases of every op (and of ops that plugins register) on one\n"
            "backend: forward values against float64 references and PyTorch's golden values,\n"
            "gradients against the CPU in float64 and central differences. Prints one line per\n"
            "failing check and closes with `N passed, N failed, N skipped`.\n"
            "  --support   the op x dtype matrix (Y runs, - no kernel, . not an input dtype of\n"
            "              the op, ? the probe failed); every usable backend unless --backend\n"
            "  --markdown  write that matrix as markdown (docs/op-support.md)\n"
            "  --list      the cases, with the dtypes and checks each runs\n"
            "  --dtype     f32 f64 f16 bf16 i64 i32 u8 bool (or the PyTorch names)\n"
            "  --skip-status N  exit with N instead of 0 when the backend cannot run here\n"
            "              (77: `meson test` then reports the test as skipped)\n");
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- --list --------------------------------------------------------------------------------- */

static int list_cases(const cf_list *l, const cf_options *o)
{
    int shown = 0, instances = 0;
    for (int i = 0; i < l->n; i++) {
        const cf_case *c = &l->c[i];
        char dts[64] = "";
        size_t n = 0;
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
            if (cf_selected(c, o, (em_dtype)dt)) {
                n += (size_t)snprintf(dts + n, sizeof dts - n, "%s%s", n ? "," : "",
                                      cf_dtype_short((em_dtype)dt));
                instances++;
            }
        if (!n)
            continue;
        bool grad = (c->op->flags & CF_GRAD) && !(c->flags & CF_NO_GRAD);
        printf("%-12s %-34s %-13s %s%s\n", c->op->name, dts, grad ? "forward,grad" : "forward",
               c->label, (c->flags & CF_KNOWN_FAIL) ? " (known failure)" : "");
        shown++;
    }
    printf("%d cases, %d case-dtype instances\n", shown, instances);
    return 0;
}

/* ---- --support ---------------------------------------------------------------------------- */

#define NDT (EM_DTYPE_COUNT - 1)
#define MAXOPS 512

static void print_matrix(FILE *f, const char *backend, const char *cells, int nops, bool md)
{
    int width = 14;
    for (int op = 0; op < nops; op++)
        if ((int)strlen(em_op_name(op)) + 2 > width)
            width = (int)strlen(em_op_name(op)) + 2;
    if (md) {
        fprintf(f, "\n## %s\n\n| op |", backend);
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
            fprintf(f, " %s |", em_dtype_name((em_dtype)dt));
        fprintf(f, "\n|---|");
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
            fprintf(f, ":-:|");
        fprintf(f, "\n");
    } else {
        fprintf(f, "\nop support on %s (Y runs, - no kernel, . not an input dtype of the op, "
                   "? probe failed)\n%-*s",
                backend, width, "op");
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
            fprintf(f, "%5s", cf_dtype_short((em_dtype)dt));
        fprintf(f, "\n");
    }
    for (int op = 0; op < nops; op++) {
        if (md)
            fprintf(f, "| `%s` |", em_op_name(op));
        else
            fprintf(f, "%-*s", width, em_op_name(op));
        for (int dt = 0; dt < NDT; dt++) {
            char cell = cells[op * NDT + dt];
            if (md)
                fprintf(f, " %s |", cell == 'Y' ? "Y" : cell == '-' ? "-" : cell == '.' ? "" : "?");
            else
                fprintf(f, "%5c", cell);
        }
        fprintf(f, "\n");
    }
}

static int support(const cf_list *l, const char *backend, const char *markdown)
{
    FILE *md = NULL;
    if (markdown && !(md = fopen(markdown, "w"))) {
        perror(markdown);
        return 1;
    }
    if (md)
        fprintf(md,
                "# Op support by backend\n\n"
                "Generated by `ember conformance --support --markdown docs/op-support.md` "
                "(Ember %s) on the\nmachine that ran it: which op runs in which input dtype on "
                "each backend, through a kernel\nor a composite. Y: runs; -: no kernel "
                "(EM_ERR_UNSUPPORTED, or a skip in the conformance run);\nempty: the op does not "
                "take that dtype (as in PyTorch); ?: the probe failed in another way.\n"
                "Whether the results are right is what `ember conformance --backend NAME` "
                "checks.\n",
                em_version());
    char *cells = malloc((size_t)MAXOPS * NDT);
    int rc = 0, done = 0;
    for (int b = 0; cells && b < em_backend_count(); b++) {
        const char *name = em_backend_name(b);
        if (backend && strcmp(backend, name) != 0 && strncmp(backend, name, strlen(name)))
            continue;
        const char *dev = backend ? backend : name;
        int nops = cf_support(l, dev, cells, MAXOPS);
        if (nops < 0) {
            printf("\nop support on %s: skipped: %s\n", dev, em_last_error());
            if (md)
                fprintf(md, "\n## %s\n\nNot usable where this was generated: %s\n", dev,
                        em_last_error());
            continue;
        }
        print_matrix(stdout, dev, cells, nops, false);
        if (md)
            print_matrix(md, dev, cells, nops, true);
        done++;
    }
    if (backend && !done && cells) {
        fprintf(stderr, "ember conformance: no usable backend '%s' (see `ember info`)\n",
                backend);
        rc = 1;
    }
    free(cells);
    if (md && fclose(md) != 0) {
        perror(markdown);
        rc = 1;
    }
    return rc;
}

/* ---- JUnit XML ---------------------------------------------------------------------------- */

static void xml_text(FILE *f, const char *s)
{
    for (; s && *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                fputc(*s, f);
        }
    }
}

static int write_junit(const char *path, const char *backend, const cf_report *rep,
                       double seconds)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    fprintf(f, "<testsuites name=\"ember conformance\" tests=\"%d\" failures=\"%d\" "
               "skipped=\"%d\" time=\"%.3f\">\n",
            rep->n, rep->failed, rep->skipped, seconds);
    fprintf(f, "  <testsuite name=\"conformance.");
    xml_text(f, backend);
    fprintf(f, "\" tests=\"%d\" failures=\"%d\" skipped=\"%d\" time=\"%.3f\">\n", rep->n,
            rep->failed, rep->skipped, seconds);
    for (int i = 0; i < rep->n; i++) {
        const cf_result *r = &rep->r[i];
        fprintf(f, "    <testcase classname=\"conformance.");
        xml_text(f, backend);
        fputc('.', f);
        xml_text(f, r->c->op->name);
        fprintf(f, "\" name=\"");
        xml_text(f, r->c->label);
        fprintf(f, " [%s] %s\"", cf_dtype_short(r->dtype), r->check);
        if (r->status == CF_PASS) {
            fprintf(f, "/>\n");
            continue;
        }
        fprintf(f, ">\n      <%s message=\"", r->status == CF_FAIL ? "failure" : "skipped");
        xml_text(f, r->message ? r->message : "");
        if (r->status == CF_FAIL)
            fprintf(f, "; seed 0x%016llx", (unsigned long long)r->c->seed);
        fprintf(f, "\"/>\n    </testcase>\n");
    }
    fprintf(f, "  </testsuite>\n</testsuites>\n");
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

/* ---- the command ---------------------------------------------------------------------------- */

int cmd_conformance(int argc, char **argv)
{
    const char *backend = NULL, *op = NULL, *dtype = NULL, *junit = NULL, *config = NULL,
               *markdown = NULL;
    bool list = false, sup = false, verbose = false;
    uint64_t seed = 0;
    int skip_status = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **val = !strcmp(a, "--backend")    ? &backend
                           : !strcmp(a, "--op")       ? &op
                           : !strcmp(a, "--dtype")    ? &dtype
                           : !strcmp(a, "--junit")    ? &junit
                           : !strcmp(a, "--config")   ? &config
                           : !strcmp(a, "--markdown") ? &markdown
                                                      : NULL;
        if (val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "ember conformance: %s needs a value\n", a);
                return 2;
            }
            *val = argv[++i];
        } else if (!strcmp(a, "--seed") && i + 1 < argc) {
            seed = strtoull(argv[++i], NULL, 0);
        } else if (!strcmp(a, "--skip-status") && i + 1 < argc) {
            skip_status = atoi(argv[++i]);
        } else if (!strcmp(a, "--list")) {
            list = true;
        } else if (!strcmp(a, "--support")) {
            sup = true;
        } else if (!strcmp(a, "--verbose") || !strcmp(a, "-v")) {
            verbose = true;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "ember conformance: unknown argument '%s'\n\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!backend && !list && !sup) {
        fprintf(stderr, "ember conformance: --backend NAME is required\n\n");
        usage(stderr);
        return 2;
    }
    em_dtype dt = EM_DTYPE_UNSPEC;
    if (dtype && (dt = em_dtype_parse(dtype)) == EM_DTYPE_UNSPEC) {
        for (int d = EM_F32; d < EM_DTYPE_COUNT; d++)
            if (!strcmp(dtype, cf_dtype_short((em_dtype)d)))
                dt = (em_dtype)d;
        if (!dt) {
            fprintf(stderr, "ember conformance: unknown dtype '%s'\n", dtype);
            return 2;
        }
    }
    if (em_init(config) != EM_OK)
        return cli_fail("em_init");
    cf_list cases = {0};
    cf_cases_all(&cases, seed);
    cf_options o = {.backend = backend, .op = op, .dtype = dt, .out = stdout,
                    .verbose = verbose};
    int rc = 0;
    if (op) {
        bool known = false;
        for (int i = 0; i < cases.n && !known; i++)
            known = !strcmp(cases.c[i].op->name, op);
        if (!known) {
            fprintf(stderr, "ember conformance: no cases for op '%s' (see --list)\n", op);
            rc = 1;
            goto done;
        }
    }
    if (list) {
        rc = list_cases(&cases, &o);
    } else if (sup) {
        rc = support(&cases, backend, markdown);
    } else {
        double t0 = now();
        cf_report rep;
        if (cf_run(&cases, &o, &rep) < 0) {
            rc = cli_fail("conformance");
            goto done;
        }
        double secs = now() - t0;
        if (rep.backend_reason[0])
            printf("skipped: %s\n", rep.backend_reason);
        printf("conformance on %s: %d checks in %.1f s\n", backend, rep.n, secs);
        printf("%d passed, %d failed, %d skipped\n", rep.passed, rep.failed, rep.skipped);
        if (junit && write_junit(junit, backend, &rep, secs) != 0)
            rc = 1;
        if (rep.failed > 0)
            rc = 1;
        else if (rep.backend_reason[0] && skip_status)
            rc = skip_status;
        cf_report_free(&rep);
    }
done:
    cf_list_free(&cases);
    em_shutdown();
    return rc;
}
