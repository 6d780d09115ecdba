/* tests/dist/ddp_unused.c - DistributedDataParallel when a parameter gets no gradient on some
 * ranks (data-dependent control flow) or on all of them.
 *
 * Run by tests/dist/run.sh under tools/mpirun.sh. The model is three Linear layers whose
 * parameters the loss uses directly: odd ranks skip the last layer (unused on some ranks; its
 * bucket is the first to start, so their other buckets become ready before it), and with
 * `find` nobody uses the first layer's bias (unused everywhere).
 *   ddp_unused find     find_unused_parameters: every gradient is the average over ranks of
 *                       each rank's gradient (zeros where unused); 0.bias keeps no .grad.
 *   ddp_unused refuse   the default: odd ranks' em_ddp_finish refuses, naming 2.weight and
 *                       2.bias; even ranks get the average; no rank hangs and the group stays
 *                       in step (a collective afterwards still agrees).
 * Not a Criterion test: Criterion forks each test, which MPI does not survive.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

#define SPEC "Sequential(Linear(4, 5), Linear(5, 3), Linear(3, 2))"
#define RTOL 1e-5

static int rank, size, failures;
static bool find_mode;

static void die(const char *what)
{
    fprintf(stderr, "rank %d: %s: %s\n", rank, what, em_last_error());
    exit(2);
}

/* Rank q's loss on m: sum(out^2) with out = the layers q uses (find: 0.bias left out). */
static em_tensor *loss_of(em_module *m, int q)
{
    em_manual_seed(100 + (uint64_t)q);
    em_tensor *x = em_randn(2, (int64_t[]){6, 4}, NULL);
    em_tensor *h = em_linear(x, em_module_get(m, "0.weight"),
                             find_mode ? NULL : em_module_get(m, "0.bias"));
    h = em_linear(h, em_module_get(m, "1.weight"), em_module_get(m, "1.bias"));
    if (q % 2 == 0)
        h = em_linear(h, em_module_get(m, "2.weight"), em_module_get(m, "2.bias"));
    em_tensor *l = em_sum_all(em_mul(h, h));
    if (!l)
        die("loss");
    return l;
}

static void clear_grads(em_module *m)
{
    for (int i = 0; i < em_module_param_count(m); i++)
        em_grad_clear(em_module_param(m, i));
}

/* ddp's gradients against ref's (the sum over every rank's loss) divided by size. */
static void compare(em_module *ddp_m, em_module *ref, int step)
{
    for (int i = 0; i < em_module_param_count(ref); i++) {
        const char *name = em_module_param_name(ref, i);
        em_tensor *g = em_grad(em_module_param(ddp_m, i)), *w = em_grad(em_module_param(ref, i));
        if (!w || !g) {
            if (!w != !g) {
                fprintf(stderr, "rank %d: step %d: %s: %s a gradient, expected %s\n", rank,
                        step, name, g ? "has" : "has no", w ? "one" : "none");
                failures++;
            }
            continue;
        }
        int64_t n = em_numel(w);
        float *a = malloc((size_t)n * 4), *b = malloc((size_t)n * 4);
        em_copy_to_host(g, a, (size_t)n * 4);
        em_copy_to_host(w, b, (size_t)n * 4);
        for (int64_t j = 0; j < n; j++) {
            double want = b[j] / size;
            if (fabs(a[j] - want) > RTOL * fmax(fabs(want), 1e-2)) {
                fprintf(stderr, "rank %d: step %d: %s[%lld] is %.9g, expected %.9g\n", rank,
                        step, name, (long long)j, a[j], want);
                failures++;
                break;
            }
        }
        free(a);
        free(b);
    }
}

int main(int argc, char **argv)
{
    find_mode = argc > 1 && !strcmp(argv[1], "find");
    if (em_init(NULL) < 0)
        die("em_init");
    rank = em_dist_rank();
    size = em_dist_size();
    em_manual_seed(7 + (uint64_t)rank);   /* DDP broadcasts rank 0's weights */
    em_module *m = em_module_new(SPEC);
    em_manual_seed(7);
    em_module *ref = em_module_new(SPEC);
    if (!m || !ref)
        die("em_module_new");
    /* 32 bytes: buckets [2.bias 2.weight] [1.bias] [1.weight] [0.bias] [0.weight] */
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 32,
                                            .find_unused_parameters = find_mode});
    if (!d)
        die("em_ddp_new");
    clear_grads(ref);
    for (int q = 0; q < size; q++) {   /* what every rank contributes, in one process */
        em_scope_begin();
        if (em_backward(loss_of(ref, q), NULL, false) < 0)
            die("reference backward");
        em_scope_end();
    }
    for (int step = 1; step <= 2; step++) {
        em_scope_begin();
        clear_grads(m);
        if (em_backward(loss_of(m, rank), NULL, false) < 0)
            die("backward");
        int rc = em_ddp_finish(d);
        em_scope_end();
        bool refused = !find_mode && rank % 2 == 1;
        if (refused) {
            const char *want = "2 parameters '2.weight', '2.bias' received no gradient";
            if (rc >= 0 || !strstr(em_last_error(), want)) {
                fprintf(stderr, "rank %d: step %d: expected a refusal naming 2.weight and "
                                "2.bias, got status %d: %s\n",
                        rank, step, rc, rc < 0 ? em_last_error() : "");
                failures++;
            }
        } else if (rc < 0) {
            fprintf(stderr, "rank %d: step %d: em_ddp_finish: %s\n", rank, step,
                    em_last_error());
            failures++;
        } else {
            compare(m, ref, step);
        }
    }
    /* the group is still in step: everyone's failure count, summed */
    double f = failures;
    em_tensor *t = em_tensor_from_blob(&f, EM_F64, 1, (int64_t[]){1}, NULL, NULL);
    if (!t || em_dist_all_reduce(t, EM_REDUCE_SUM) < 0)
        die("all_reduce after the steps");
    em_release(t);
    if (rank == 0)
        printf("ddp_unused %s, %d ranks, %d buckets: %s\n", find_mode ? "find" : "refuse",
               size, em_ddp_bucket_count(d), f == 0 ? "ok" : "FAILED");
    em_ddp_free(d);
    em_module_free(m);
    em_module_free(ref);
    em_shutdown();
    return f == 0 ? 0 : 1;
}
