/* tests/data/bench_data.c - load time and one epoch of batches (no compute): a CSV given on the
 * command line (default: examples/data/digits.csv) at batch 64, and Fashion-MNIST (60,000 x 784)
 * at batch 256, shuffled, with and without the prefetch thread, when Debian's
 * dataset-fashion-mnist package is installed. Prints one line per measurement. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <ember/ember.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Best of `reps` epochs; returns seconds and the batch count. */
static double epoch_time(em_dataset *d, int64_t bs, int prefetch, int reps, int64_t *nb)
{
    em_dataloader *dl = em_dataloader_new(d, bs, true, 0);
    em_dataloader_set_prefetch(dl, prefetch);
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now();
        em_tensor *x, *y;
        *nb = 0;
        while (em_dataloader_next(dl, &x, &y)) {
            em_release(x);
            em_release(y);
            (*nb)++;
        }
        double t = now() - t0;
        best = t < best ? t : best;
    }
    em_dataloader_free(dl);
    return best;
}

static int bench(const char *name, const char *spec, int64_t bs)
{
    double t0 = now();
    em_dataset *d = em_dataset_new(spec);
    double load = now() - t0;
    if (!d) {
        fprintf(stderr, "%s: %s\n", name, em_last_error());
        return 1;
    }
    printf("%-14s load %8.1f ms  (%lld samples)\n", name, load * 1e3,
           (long long)em_dataset_len(d));
    for (int prefetch = 2; prefetch >= 0; prefetch -= 2) {
        int64_t nb;
        double t = epoch_time(d, bs, prefetch, 5, &nb);
        printf("%-14s epoch at batch %lld, prefetch %d: %8.2f ms  (%lld batches, %.1f us each)\n",
               name, (long long)bs, prefetch, t * 1e3, (long long)nb, t * 1e6 / (double)nb);
    }
    em_dataset_free(d);
    return 0;
}

int main(int argc, char **argv)
{
    if (em_init(NULL) != EM_OK) {
        fprintf(stderr, "em_init: %s\n", em_last_error());
        return 1;
    }
    char spec[4096];
    snprintf(spec, sizeof spec, "CSV(path=\"%s\", scale=0.0625)",
             argc > 1 ? argv[1] : "examples/data/digits.csv");
    int rc = bench("digits.csv", spec, 64);
    FILE *f = fopen("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", "rb");
    if (f) {
        fclose(f);
        rc |= bench("Fashion-MNIST", "FashionMNIST(train=true)", 256);
    } else {
        printf("Fashion-MNIST not installed: skipped\n");
    }
    em_shutdown();
    return rc;
}
