/* tests/dist/dist_collectives.c - collectives on every dtype across the ranks of an mpirun job.
 *
 * Not a Criterion test (Criterion forks each test, which MPI does not survive): run by
 * tests/dist/run.sh under tools/mpirun.sh with 2 and 4 ranks. Prints each failure with the
 * rank and exits 1 if any check failed. `--hang` makes rank 1 skip a collective, so that the
 * others time out (EMBER_DIST_TIMEOUT) and the job ends instead of hanging.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ember/ember.h>

static int failures, rank, size;

static void check(bool ok, const char *what, const char *dt, int i, double got, double want)
{
    if (ok)
        return;
    fprintf(stderr, "rank %d: %s %s: element %d is %g, expected %g\n", rank, what, dt, i, got,
            want);
    failures++;
}

/* t's values as float64 on the host (n <= 64). */
static void values(em_tensor *t, double *v)
{
    em_tensor *d = em_to_dtype(t, EM_F64);
    em_tensor *c = d ? em_contiguous(d) : NULL;
    if (!c || em_copy_to_host(c, v, (size_t)em_numel(c) * sizeof *v) < 0) {
        fprintf(stderr, "rank %d: reading values: %s\n", rank, em_last_error());
        exit(2);
    }
    em_release(c);
    em_release(d);
}

static em_tensor *make(em_dtype dt, int64_t n, double (*f)(int64_t i))
{
    double v[64];
    for (int64_t i = 0; i < n; i++)
        v[i] = f(i);
    em_tensor *t = em_tensor_from_data(v, EM_F64, 1, &n, NULL);
    em_tensor *c = em_to_dtype(t, dt);
    em_release(t);
    return c;
}

static double rank_plus(int64_t i) { return (double)(rank + 1 + i); }
static double rank_is_zero(int64_t i) { return rank == 0 && i % 2 == 0; }

static void test_dtype(em_dtype dt)
{
    const char *name = em_dtype_name(dt);
    if (getenv("DIST_TRACE"))
        fprintf(stderr, "rank %d: %s\n", rank, name);
    bool is_bool = dt == EM_BOOL, is_float = em_dtype_is_float(dt);
    double v[64];
    int64_t n = 5;
    /* sum: u8 stays small enough for 4 ranks; bool sums are logical or */
    em_tensor *t = make(dt, n, is_bool ? rank_is_zero : rank_plus);
    em_dist_work *w = em_dist_all_reduce_start(t, EM_REDUCE_SUM);
    if (!w || em_dist_wait(w) < 0) {
        fprintf(stderr, "rank %d: all_reduce %s: %s\n", rank, name, em_last_error());
        failures++;
        return;
    }
    values(t, v);
    for (int i = 0; i < n; i++) {
        double want = is_bool ? (i % 2 == 0) : size * (size + 1) / 2.0 + size * i;
        check(v[i] == want, "all_reduce sum", name, i, v[i], want);
    }
    em_release(t);

    t = make(dt, n, is_bool ? rank_is_zero : rank_plus);
    em_dist_all_reduce(t, EM_REDUCE_MAX);
    values(t, v);
    for (int i = 0; i < n; i++) {
        double want = is_bool ? (i % 2 == 0) : size + i;
        check(v[i] == want, "all_reduce max", name, i, v[i], want);
    }
    em_release(t);

    if (is_float) {
        t = make(dt, n, rank_plus);
        em_dist_all_reduce(t, EM_REDUCE_AVG);
        values(t, v);
        for (int i = 0; i < n; i++) {
            double want = (size + 1) / 2.0 + i;
            check(fabs(v[i] - want) <= 1e-2 * want, "all_reduce avg", name, i, v[i], want);
        }
        em_release(t);
    }

    t = make(dt, n, is_bool ? rank_is_zero : rank_plus);
    em_dist_broadcast(t, size - 1);
    values(t, v);
    for (int i = 0; i < n; i++) {
        double want = is_bool ? 0 : size + i;
        check(v[i] == want, "broadcast", name, i, v[i], want);
    }
    em_release(t);

    t = make(dt, n, rank_plus);
    em_tensor *g = em_dist_all_gather(t);
    if (!g || em_shape(g)[0] != n * size) {
        fprintf(stderr, "rank %d: all_gather %s: %s\n", rank, name,
                g ? "wrong shape" : em_last_error());
        failures++;
    } else {
        values(g, v);
        for (int r = 0; r < size; r++)
            for (int i = 0; i < n; i++) {
                double want = is_bool ? 1 : r + 1 + i;
                check(v[r * n + i] == want, "all_gather", name, r * (int)n + i, v[r * n + i],
                      want);
            }
    }
    em_release(g);
    em_release(t);

    if (!is_bool) {
        int64_t m = 2 * size;
        t = make(dt, m, rank_plus);
        em_tensor *s = em_dist_reduce_scatter(t, EM_REDUCE_SUM);
        if (!s || em_shape(s)[0] != 2) {
            fprintf(stderr, "rank %d: reduce_scatter %s: %s\n", rank, name,
                    s ? "wrong shape" : em_last_error());
            failures++;
        } else {
            values(s, v);
            for (int i = 0; i < 2; i++) {
                double want = size * (size + 1) / 2.0 + size * (2 * rank + i);
                check(v[i] == want, "reduce_scatter", name, i, v[i], want);
            }
        }
        em_release(s);
        em_release(t);
    }
}

/* A transposed (strided) view is staged through a contiguous copy and written back. */
static void test_strided_and_async(void)
{
    double v[64];
    int64_t shape[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    em_tensor *a = em_tensor_from_data(data, EM_F32, 2, shape, NULL);
    em_tensor *at = em_transpose(a, 0, 1);
    em_tensor *b = em_full(2, shape, (double)rank, NULL);
    em_dist_work *w1 = em_dist_all_reduce_start(at, EM_REDUCE_SUM);
    em_dist_work *w2 = em_dist_all_reduce_start(b, EM_REDUCE_MAX);
    if (!w1 || !w2 || em_dist_wait(w2) < 0 || em_dist_wait(w1) < 0) {
        fprintf(stderr, "rank %d: async: %s\n", rank, em_last_error());
        failures++;
        return;
    }
    values(a, v);
    for (int i = 0; i < 6; i++)
        check(v[i] == size * data[i], "strided all_reduce", "float32", i, v[i],
              size * data[i]);
    values(b, v);
    for (int i = 0; i < 6; i++)
        check(v[i] == size - 1, "async all_reduce max", "float32", i, v[i], size - 1);
    em_release(at);
    em_release(a);
    em_release(b);
    if (em_dist_barrier() < 0) {
        fprintf(stderr, "rank %d: barrier: %s\n", rank, em_last_error());
        failures++;
    }
}

int main(int argc, char **argv)
{
    bool hang = argc > 1 && strcmp(argv[1], "--hang") == 0;
    if (em_init(NULL) < 0) {
        fprintf(stderr, "em_init: %s\n", em_last_error());
        return 2;
    }
    rank = em_dist_rank();
    size = em_dist_size();
    if (!em_dist_is_active() || size < 2) {
        fprintf(stderr, "rank %d: expected a communicator with several ranks (size %d)\n", rank,
                size);
        return 2;
    }
    if (hang) {
        if (rank == 1) {
            sleep(120);   /* never joins: the others must time out and end the job */
            return 0;
        }
        em_tensor *t = em_ones(1, (int64_t[]){4}, NULL);
        em_dist_all_reduce(t, EM_REDUCE_SUM);
        fprintf(stderr, "rank %d: all_reduce returned although rank 1 never joined\n", rank);
        return 1;
    }
    const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I64, EM_I32, EM_U8, EM_BOOL};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++)
        test_dtype(dts[i]);
    test_strided_and_async();
    if (rank == 0)
        printf("dist_collectives: %d ranks, %s\n", size, failures ? "FAILED" : "ok");
    em_shutdown();
    return failures ? 1 : 0;
}
