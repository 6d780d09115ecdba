/* tools/ember/bench_train.c - `ember bench --train`: the cost of a training step and of a data
 * epoch, the figures tools/bench-vs-pytorch.sh puts next to PyTorch's.
 *
 * A step is what the tutorial's loop does per batch: zero_grad, forward, CrossEntropyLoss,
 * backward, SGD(momentum=0.9) step, inside a scope; the same with Adam on lines of their own.
 * Medians over repetitions, and the minor page faults per step over the timed steps
 * (getrusage): a steady step should take none. The epochs: ggml mnist-train's 784-500-10 AdamW
 * at batch 1000 (on synthetic data of Fashion-MNIST's shape when the dataset is not installed,
 * as the line says), and without --quick the 784-256-128-10 SGD epoch at batch 256 when it is.
 * tools/bench_torch.py prints the same lines for PyTorch; keep the two in step.
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

/* Fashion-MNIST's training split, or when it is not installed synthetic data of its shape
 * (60000 samples of 784 normal values, labels 0..9; *synthetic set). NULL on error. */
static em_dataset *fashion_data(bool *synthetic)
{
    em_dataset *d = em_dataset_new("FashionMNIST(train=true, flatten=true)");
    *synthetic = !d;
    if (d)
        return d;
    em_manual_seed(0);
    em_tensor *x = em_randn(EM_SHAPE(60000, 784), NULL);
    em_tensor *y = em_randint(0, 10, EM_SHAPE(60000), NULL);
    d = x && y ? em_dataset_from_tensors(x, y) : NULL;
    em_release(x);
    em_release(y);
    return d;
}

/* One shuffled epoch of d through model `spec` with optimizer `optim` at `batch`: data loading
 * overlapped with the steps, as `ember train` runs it, after 3 untimed warm-up steps on one
 * batch. Seconds, or < 0. */
static double epoch_secs(em_dataset *d, const char *spec, const char *optim, int64_t batch)
{
    em_manual_seed(0);
    em_module *model = em_module_new(spec);
    em_module *loss = em_module_new("CrossEntropyLoss()");
    em_optimizer *opt = model ? em_optimizer_new(optim, model) : NULL;
    em_dataloader *dl = em_dataloader_new(d, batch, true, 0);
    double secs = -1;
    em_tensor *x, *y;
    if (model && loss && opt && dl && em_dataloader_next(dl, &x, &y)) {
        int rc = 0;
        for (int i = 0; i < 3 && !rc; i++)
            rc = step(model, loss, opt, x, y);
        em_release(x);
        em_release(y);
        while (!rc && em_dataloader_next(dl, &x, &y)) { /* the rest of the warm-up epoch */
            em_release(x);
            em_release(y);
        }
        if (em_last_status() != EM_OK)
            rc = -1;
        double t0 = cli_now();
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
    bool synthetic;
    em_dataset *d = fashion_data(&synthetic);
    if (!d)
        return cli_fail("Fashion-MNIST-shaped data");
    const char *data = synthetic ? "synthetic Fashion-MNIST-shaped data" : "Fashion-MNIST";
    /* ggml's mnist-train setup: 784-500-10, AdamW, batch 1000 (60 steps an epoch) */
    double s = epoch_secs(d, "Sequential(Linear(784, 500), ReLU(), Linear(500, 10))",
                          "AdamW(lr=0.001, weight_decay=0.01)", 1000);
    if (s >= 0)
        printf("  adamw-epoch 784-500-10  batch 1000 %12.3f s (%s, shuffled, with loading)\n",
               s, data);
    if (s >= 0 && !quick && !synthetic) {
        s = epoch_secs(d, "Sequential(Linear(784, 256), ReLU(), Linear(256, 128), ReLU(), "
                          "Linear(128, 10))",
                       "SGD(lr=0.01, momentum=0.9)", 256);
        if (s >= 0)
            printf("  epoch fashion-mnist      batch  256 %12.2f s (784-256-128-10, shuffled, "
                   "with loading)\n",
                   s);
    }
    em_dataset_free(d);
    if (s < 0)
        return cli_fail("data epoch");
    return 0;
}
