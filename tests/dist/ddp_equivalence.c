/* tests/dist/ddp_equivalence.c - N ranks with batch B train the model one process with batch
 * N*B trains.
 *
 * Run under tools/mpirun.sh by tests/dist/run.sh. Every rank trains a DistributedDataParallel
 * model on its shard (batch B) and, in the same process, a plain reference copy on the
 * unsharded loader with batch N*B over the same (seed, epoch) order: the ranks' batches of
 * step s are positions [s N B, (s + 1) N B) of that order, i.e. the reference's batch s (the
 * set size divides by N, so nothing is padded). Per-epoch mean losses and the final weights
 * must agree within 1e-5 relative, and every rank must hold the same weights.
 *   ddp_equivalence OPTIMIZER_SPEC EPOCHS
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <ember/ember.h>

#define NSAMPLES 200     /* divides by 2 and 4; not by N * B, so the last batch is partial */
#define BATCH 8
#define RTOL 1e-5

static int rank, size;

static em_dataset *synthetic(void)
{
    em_manual_seed(1);
    int64_t xs[2] = {NSAMPLES, 10};
    em_tensor *x = em_randn(2, xs, NULL);
    int64_t y[NSAMPLES], ys = NSAMPLES;
    float xv[NSAMPLES * 10];
    em_copy_to_host(x, xv, sizeof xv);
    for (int i = 0; i < NSAMPLES; i++)   /* a learnable rule: which of 3 features is largest */
        y[i] = xv[i * 10] > xv[i * 10 + 1] ? (xv[i * 10] > xv[i * 10 + 2] ? 0 : 2)
                                           : (xv[i * 10 + 1] > xv[i * 10 + 2] ? 1 : 2);
    em_tensor *yt = em_tensor_from_data(y, EM_I64, 1, &ys, NULL);
    em_dataset *d = em_dataset_from_tensors(x, yt);
    em_release(x);
    em_release(yt);
    return d;
}

/* One epoch; returns the sum of per-sample losses and the sample count in *n. */
static double epoch(em_module *m, em_module *loss, em_optimizer *o, em_dataloader *dl,
                    em_ddp *ddp, double *n)
{
    double sum = 0;
    *n = 0;
    em_tensor *x, *y;
    while (em_dataloader_next(dl, &x, &y)) {
        em_scope_begin();
        em_zero_grad(o);
        em_tensor *l = em_loss(loss, em_forward(m, x), y);
        if (!l || em_backward(l, NULL, false) < 0 || (ddp && em_ddp_finish(ddp) < 0) ||
            em_step(o) < 0) {
            fprintf(stderr, "rank %d: step: %s\n", rank, em_last_error());
            exit(1);
        }
        double b = (double)em_shape(x)[0];
        sum += em_item(l) * b;
        *n += b;
        em_scope_end();
        em_release(x);
        em_release(y);
    }
    return sum;
}

static double rel(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-6); }

int main(int argc, char **argv)
{
    const char *opt_spec = argc > 1 ? argv[1] : "SGD(lr=0.1, momentum=0.9)";
    int epochs = argc > 2 ? atoi(argv[2]) : 3;
    if (em_init(NULL) < 0) {
        fprintf(stderr, "em_init: %s\n", em_last_error());
        return 2;
    }
    rank = em_dist_rank();
    size = em_dist_size();
    const char *spec = "Sequential(Linear(10, 16), Tanh(), Linear(16, 3))";
    em_dataset *ds = synthetic();
    em_manual_seed(7 + (uint64_t)rank);   /* different inits: DDP must broadcast rank 0's */
    em_module *m = em_module_new(spec);
    em_manual_seed(7);
    em_module *ref = em_module_new(spec);
    em_module *loss = em_module_new("CrossEntropyLoss()");
    em_optimizer *o = m ? em_optimizer_new(opt_spec, m) : NULL;
    em_optimizer *oref = ref ? em_optimizer_new(opt_spec, ref) : NULL;
    em_dataloader *dl = em_dataloader_new(ds, BATCH, true, 5);
    em_dataloader *dlref = em_dataloader_new(ds, (int64_t)BATCH * size, true, 5);
    if (!o || !oref || !loss || !dl || !dlref ||
        em_dataloader_set_shard(dl, rank, size, EM_SHARD_PAD) < 0) {
        fprintf(stderr, "rank %d: setup: %s\n", rank, em_last_error());
        return 2;
    }
    em_ddp_opts opts = {.bucket_bytes = 256};   /* several buckets even for this small MLP */
    em_ddp *ddp = em_ddp_new(m, &opts);
    if (!ddp) {
        fprintf(stderr, "rank %d: em_ddp_new: %s\n", rank, em_last_error());
        return 2;
    }
    int bad = 0;
    for (int e = 0; e < epochs; e++) {
        double n, nref, sums[2];
        sums[0] = epoch(m, loss, o, dl, ddp, &n);
        sums[1] = n;
        int64_t two = 2;
        em_tensor *t = em_tensor_from_blob(sums, EM_F64, 1, &two, NULL, NULL);
        em_dist_all_reduce(t, EM_REDUCE_SUM);
        em_release(t);
        double lref = epoch(ref, loss, oref, dlref, NULL, &nref) / nref;
        double l = sums[0] / sums[1];
        if (rank == 0)
            printf("epoch %d: %d ranks x %d: loss %.9f; 1 process x %d: loss %.9f (rel %.2g)\n",
                   e + 1, size, BATCH, l, BATCH * size, lref, rel(l, lref));
        if (sums[1] != nref || rel(l, lref) > RTOL) {
            fprintf(stderr, "rank %d: epoch %d: loss %.9g over %g samples vs %.9g over %g\n",
                    rank, e + 1, l, sums[1], lref, nref);
            bad = 1;
        }
    }
    double worst = 0;
    for (int i = 0; i < em_module_param_count(m); i++) {
        em_tensor *a = em_module_param(m, i), *b = em_module_param(ref, i);
        int64_t k = em_numel(a);
        float *va = malloc((size_t)k * 4), *vb = malloc((size_t)k * 4), *vmax = malloc((size_t)k * 4);
        em_copy_to_host(a, va, (size_t)k * 4);
        em_copy_to_host(b, vb, (size_t)k * 4);
        em_tensor *mx = em_clone(a);   /* every rank must hold the same weights */
        em_dist_all_reduce(mx, EM_REDUCE_MAX);
        em_copy_to_host(mx, vmax, (size_t)k * 4);
        for (int64_t j = 0; j < k; j++) {
            double r = fabs(va[j] - vb[j]) / fmax(fabs(vb[j]), 1e-2);
            worst = fmax(worst, r);
            if (r > RTOL || vmax[j] != va[j]) {
                if (bad < 5)
                    fprintf(stderr, "rank %d: %s[%lld]: ddp %.9g, reference %.9g, max over "
                                    "ranks %.9g\n",
                            rank, em_module_param_name(m, i), (long long)j, va[j], vb[j],
                            vmax[j]);
                bad++;
            }
        }
        em_release(mx);
        free(va);
        free(vb);
        free(vmax);
    }
    if (rank == 0)
        printf("ddp_equivalence %s, %d ranks, %d buckets: final weights max rel diff %.2g: %s\n",
               opt_spec, size, em_ddp_bucket_count(ddp), worst, bad ? "FAILED" : "ok");
    em_ddp_free(ddp);
    em_dataloader_free(dl);
    em_dataloader_free(dlref);
    em_optimizer_free(o);
    em_optimizer_free(oref);
    em_module_free(m);
    em_module_free(ref);
    em_module_free(loss);
    em_dataset_free(ds);
    em_shutdown();
    return bad ? 1 : 0;
}
