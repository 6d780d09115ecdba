/* tests/dist/ddp_compress.c - DistributedDataParallel with bfloat16 gradient compression
 * (em_ddp_opts.compress = EM_BF16, PyTorch's bf16_compress_hook) gives, bit for bit, the
 * bfloat16-rounded average of the ranks' gradients.
 *
 * Run by tests/dist/run.sh under tools/mpirun.sh. Each rank runs backward on its own data,
 * then all-gathers its local float32 gradients (before em_ddp_finish touches them) and computes
 * by hand what PyTorch's hook gives: c_q = bf16(bf16(g_q) / N) for every rank q, then their sum
 * rounded to bfloat16. With 2 ranks the sum is one float32 addition of two bfloat16 values
 * (exact) rounded once, so every gradient must equal it exactly; with more ranks the order of
 * the partial sums is the MPI library's, so each value must be a bfloat16 within the rounding
 * of N - 1 additions of it. Either way some values must differ from the float32 average (or
 * compression did not happen), and the count of halfway cases (ties, which round to even) is
 * printed. Not a Criterion test: Criterion forks each test, which MPI does not survive.
 *   ddp_compress
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>
#include <ember/numeric.h>

#define SPEC "Sequential(Linear(12, 24), ReLU(), Linear(24, 5))"
#define STEPS 2

static int rank, size;
static long exact, ties, differ, failures;

static void die(const char *what)
{
    fprintf(stderr, "rank %d: %s: %s\n", rank, what, em_last_error());
    exit(2);
}

static float bf16(float x) { return em_bf16_to_f32(em_f32_to_bf16(x)); }

static uint32_t bits(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

/* Whether x + y (float32) lies exactly halfway between two bfloat16 values. */
static bool is_tie(float s) { return (bits(s) & 0xffffu) == 0x8000u; }

/* One parameter: got (n values, after em_ddp_finish) against all (size x n local gradients). */
static void check(const char *name, const float *got, const float *all, int64_t n, int step)
{
    for (int64_t j = 0; j < n; j++) {
        float want = 0, avg = 0, bound = 0;
        for (int q = 0; q < size; q++) {
            float c = bf16(bf16(all[q * n + j]) / (float)size);   /* .to(bf16).div_(N) */
            float s = want + c;
            if (size == 2 && q == 1 && is_tie(s))
                ties++;
            want = size == 2 ? bf16(s) : s;
            avg += all[q * n + j] / (float)size;
            bound += fabsf(c);
        }
        bool ok;
        if (size == 2)
            ok = bits(got[j]) == bits(want);
        else   /* each of N - 1 roundings is at most half a bfloat16 ulp: 2^-9 relative */
            ok = got[j] == bf16(got[j]) && fabsf(got[j] - want) <= (float)(size - 1) * 0x1p-8f *
                                                                       bound;
        exact += ok && got[j] == want;
        differ += got[j] != avg;
        if (!ok && failures++ < 5)
            fprintf(stderr, "rank %d: step %d: %s[%lld] is %.9g (0x%08x), expected %.9g "
                            "(0x%08x) from local gradients %.9g, %.9g, ...\n",
                    rank, step, name, (long long)j, got[j], (unsigned)bits(got[j]), want,
                    (unsigned)bits(want), all[j], all[n + j]);
    }
}

/* Rank q's loss at `step`: the mean of squares of the model's output on its own inputs. */
static em_tensor *loss_of(em_module *m, int q, int step)
{
    em_manual_seed(100 + (uint64_t)(step * size + q));
    em_tensor *x = em_randn(2, (int64_t[]){7, 12}, NULL);
    em_tensor *out = em_forward(m, x);
    em_tensor *l = em_mean_all(em_mul(out, out));
    if (!l)
        die("loss");
    return l;
}

int main(void)
{
    if (em_init(NULL) < 0)
        die("em_init");
    size = em_dist_size();
    rank = em_dist_rank();
    em_manual_seed(3);   /* the same weights everywhere (DDP would broadcast rank 0's anyway) */
    em_module *m = em_module_new(SPEC);
    if (!m)
        die("em_module_new");
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 512, .compress = EM_BF16});
    if (!d)
        die("em_ddp_new");
    int np = em_module_param_count(m);
    for (int step = 1; step <= STEPS; step++) {
        em_scope_begin();
        for (int i = 0; i < np; i++)
            em_grad_clear(em_module_param(m, i));
        if (em_backward(loss_of(m, rank, step), NULL, false) < 0)
            die("backward");
        /* every rank's local gradients (released by the scope), gathered before em_ddp_finish
         * writes the averages (after the buckets, which started during backward, on every
         * rank alike) */
        em_tensor *gathered[8];
        for (int i = 0; i < np && i < 8; i++)
            if (!(gathered[i] = em_dist_all_gather(em_grad(em_module_param(m, i)))))
                die("all_gather of the local gradients");
        if (em_ddp_finish(d) < 0)
            die("em_ddp_finish");
        for (int i = 0; i < np && i < 8; i++) {
            int64_t n = em_numel(em_module_param(m, i));
            float *got = malloc((size_t)n * 4), *all = malloc((size_t)(n * size) * 4);
            if (!got || !all || em_copy_to_host(em_grad(em_module_param(m, i)), got,
                                                (size_t)n * 4) < 0 ||
                em_copy_to_host(gathered[i], all, (size_t)(n * size) * 4) < 0)
                die("copy");
            check(em_module_param_name(m, i), got, all, n, step);
            free(got);
            free(all);
        }
        em_scope_end();
    }
    double f[2] = {(double)failures, (double)differ};
    em_tensor *t = em_tensor_from_blob(f, EM_F64, 1, (int64_t[]){2}, NULL, NULL);
    if (!t || em_dist_all_reduce(t, EM_REDUCE_SUM) < 0)
        die("all_reduce after the steps");
    em_release(t);
    bool ok = f[0] == 0 && f[1] > 0;
    if (rank == 0)
        printf("ddp_compress, %d ranks, %d buckets: rank 0 %ld values equal to the hand-made "
               "bf16 average (%ld of them ties rounded to even), %ld differ from the float32 "
               "average: %s\n",
               size, em_ddp_bucket_count(d), exact, ties, differ,
               ok ? "ok" : f[1] == 0 ? "FAILED (no value was compressed)" : "FAILED");
    em_ddp_free(d);
    em_module_free(m);
    em_shutdown();
    return ok ? 0 : 1;
}
