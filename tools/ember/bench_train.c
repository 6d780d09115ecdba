/* tools/ember/bench_train.c - `ember bench --train`: the cost of a training step and of a data
 * epoch, the figures tools/bench-vs-pytorch.sh puts next to PyTorch's.
 *
 * A step is what the tutorial's loop does per batch: zero_grad, forward, CrossEntropyLoss,
 * backward, SGD(momentum=0.9) step, inside a scope; the same with Adam on lines of their own
 * (tools/bench-vs-pytorch.sh reads only the "step" and "epoch" lines). Medians over
 * repetitions, and the minor page faults per step over the timed steps (getrusage): a steady
 * step should take none.
 */
#include <stdio.h>
#include <sys/resource.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static int step(em_module *model, em_module *loss, em_optimizer *opt, em_tensor *x, em_tensor *y)
{
    em_scope_begin();
    em_zero_grad(opt);
    em_tensor *out = em_forward(model, x);
    em_tensor *l = out ? em_loss(loss, out, y) : NULL;
    int rc = !l || em_backward(l, NULL, false) < 0 || em_step(opt) < 0 ? -1 : 0;
    em_scope_end();
    return rc;
}

static long minor_faults(void)
{
    struct rusage ru;
    return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_minflt : 0;
}

/* Microseconds per training step with optimizer `optim` (median of reps runs of iters steps),
 * and minor page faults per timed step in *faults; negative on error. */
static double step_us(const char *spec, const char *optim, int64_t in, int64_t classes,
                      int64_t batch, int reps, int iters, double *faults)
{
    em_manual_seed(0);
    em_module *model = em_module_new(spec), *loss = em_module_new("CrossEntropyLoss()");
    em_optimizer *opt = model ? em_optimizer_new(optim, model) : NULL;
    em_tensor *x = em_randn(EM_SHAPE(batch, in), NULL);
    em_tensor *y = em_randint(0, classes, EM_SHAPE(batch), NULL);
    double t[32], r = -1;
    if (!model || !loss || !opt || !x || !y)
        goto done;
    for (int i = 0; i < 20; i++)
        if (step(model, loss, opt, x, y) < 0)
            goto done;
    long f0 = minor_faults();
    for (int k = 0; k < reps; k++) {
        double t0 = cli_now();
        for (int i = 0; i < iters; i++)
            if (step(model, loss, opt, x, y) < 0)
                goto done;
        t[k] = (cli_now() - t0) / iters * 1e6;
    }
    *faults = (double)(minor_faults() - f0) / ((double)reps * iters);
    qsort(t, (size_t)reps, sizeof *t, cmp_double);
    r = t[reps / 2];
done:
    em_release(x);
    em_release(y);
    em_optimizer_free(opt);
    em_module_free(loss);
    em_module_free(model);
    return r;
}

/* One shuffled epoch of Fashion-MNIST (batch 256) through the 784-256-128-10 MLP: data
 * loading overlapped with the steps, as `ember train` runs it. Seconds, or < 0. */
static double fashion_epoch(void)
{
    em_dataset *d = em_dataset_new("FashionMNIST(train=true, flatten=true)");
    if (!d)
        return -1;
    em_manual_seed(0);
    em_module *model = em_module_new("Sequential(Linear(784, 256), ReLU(), Linear(256, 128), "
                                     "ReLU(), Linear(128, 10))");
    em_module *loss = em_module_new("CrossEntropyLoss()");
    em_optimizer *opt = model ? em_optimizer_new("SGD(lr=0.01, momentum=0.9)", model) : NULL;
    em_dataloader *dl = em_dataloader_new(d, 256, true, 0);
    double secs = -1;
    if (model && loss && opt && dl) {
        double t0 = cli_now();
        em_tensor *x, *y;
        int rc = 0;
        while (!rc && em_dataloader_next(dl, &x, &y)) {
            rc = step(model, loss, opt, x, y);
            em_release(x);
            em_release(y);
        }
        if (!rc && em_last_status() == EM_OK)
            secs = cli_now() - t0;
    }
    em_dataloader_free(dl);
    em_optimizer_free(opt);
    em_module_free(loss);
    em_module_free(model);
    em_dataset_free(d);
    return secs;
}

int bench_train(bool quick)
{
    static const struct {
        const char *label, *spec;
    } optims[] = {
        {"step", "SGD(lr=0.01, momentum=0.9)"},
        {"adam-step", "Adam(lr=1e-3)"},
    };
    static const struct {
        const char *name, *spec;
        int64_t in, batch;
    } cases[] = {
        {"3-64-128-10", "Sequential(Linear(3, 64), ReLU(), Linear(64, 128), ReLU(), Linear(128, 10))",
         3, 64},
        {"784-256-128-10", "Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), "
                           "Linear(128, 10))",
         784, 64},
        {"784-256-128-10", "Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), "
                           "Linear(128, 10))",
         784, 256},
    };
    int reps = quick ? 3 : 7;
    printf("\ntraining step (zero_grad, forward, CrossEntropyLoss, backward, SGD momentum step;\n"
           "adam-step: the same with Adam; us per step, median of %d; minor page faults per "
           "step):\n",
           reps);
    for (size_t o = 0; o < sizeof optims / sizeof optims[0]; o++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            int iters = cases[i].in < 100 ? (quick ? 200 : 2000) : (quick ? 20 : 200);
            double faults = 0;
            double us = step_us(cases[i].spec, optims[o].spec, cases[i].in, 10, cases[i].batch,
                                reps, iters, &faults);
            if (us < 0)
                return cli_fail("training step");
            printf("  %s %-16s batch %4lld %12.1f %8.1f faults\n", optims[o].label,
                   cases[i].name, (long long)cases[i].batch, us, faults);
        }
    if (!quick) {
        double s = fashion_epoch();
        if (s < 0)
            printf("  epoch fashion-mnist      (skipped: %s)\n", em_last_error());
        else
            printf("  epoch fashion-mnist      batch  256 %12.2f s (784-256-128-10, shuffled, "
                   "with loading)\n",
                   s);
    }
    return 0;
}
