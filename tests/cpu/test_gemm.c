/* tests/cpu/test_gemm.c - the CPU backend's GEMM against a float64 reference.
 *
 * Odd shapes (random sizes 1..300, K = 1, K = 5000, sizes past every cache block), transposed,
 * sliced and doubly strided operands, batches with and without broadcasting, every float
 * dtype, K = 0, and Linear's bias. meson runs this file once per micro-kernel path
 * (EMBER_GEMM_KERNEL=avx512, avx2, generic, unset) and once on one thread. The tolerance
 * grows with K: |got - ref| <= 2 K u sum_k |a_ik b_kj| + u_out |ref|, u the unit roundoff of
 * the accumulation and u_out that of the result's dtype.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "ember/ember.h"

static void setup(void)
{
    setenv("EMBER_CONFIG", "", 0);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    cr_assert_eq(em_set_default_device(em_device_parse("cpu")), EM_OK, "%s", em_last_error());
}

static void teardown(void) { em_shutdown(); }

TestSuite(gemm, .init = setup, .fini = teardown, .timeout = 120);

/* ---- data and reference ----------------------------------------------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double urand(void)       /* uniform in [-1, 1), xorshift64* */
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545f4914f6cdd1du) >> 11) / 4503599627370496.0 - 1.0;
}

static int64_t irand(int64_t lo, int64_t hi) { return lo + (int64_t)((urand() + 1) / 2 * (double)(hi - lo + 1)); }

/* A tensor of dtype dt with random values in [-1, 1). */
static em_tensor *rand_tensor(em_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int d = 0; d < ndim; d++)
        n *= shape[d];
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = urand();
    em_tensor *t = em_tensor_from_data(v, EM_F64, ndim, shape, &(em_opts){.dtype = dt});
    free(v);
    cr_assert(t, "from_data: %s", em_last_error());
    return t;
}

/* t's values, row-major, as doubles (caller frees). */
static double *host(em_tensor *t)
{
    em_tensor *d = em_to_dtype(t, EM_F64), *c = em_contiguous(d);
    cr_assert(c, "to host: %s", em_last_error());
    int64_t n = em_numel(c);
    double *v = malloc((size_t)(n > 0 ? n : 1) * sizeof *v);
    cr_assert_eq(em_copy_to_host(c, v, (size_t)n * sizeof *v), EM_OK, "%s", em_last_error());
    em_release(d);
    em_release(c);
    return v;
}

static double unit_roundoff(em_dtype dt)
{
    switch (dt) {
    case EM_F64: return ldexp(1, -53);
    case EM_F16: return ldexp(1, -11);
    case EM_BF16: return ldexp(1, -8);
    default: return ldexp(1, -24);
    }
}

/* Checks out = a @ b (+ bias[j]) with PyTorch's batch broadcasting, a [..., M, K] and b
 * [..., K, N] of up to 4 dims (a 1-D a or b is not used here). */
static void check_product(em_tensor *a, em_tensor *b, em_tensor *bias, em_tensor *out,
                          const char *what)
{
    cr_assert(out, "%s: %s", what, em_last_error());
    int na = em_ndim(a), nb = em_ndim(b), no = em_ndim(out);
    const int64_t *sa = em_shape(a), *sb = em_shape(b), *so = em_shape(out);
    int64_t M = sa[na - 2], K = sa[na - 1], N = sb[nb - 1];
    cr_assert_eq(so[no - 2], M, "%s: rows", what);
    cr_assert_eq(so[no - 1], N, "%s: columns", what);
    double *A = host(a), *B = host(b), *O = host(out), *bv = bias ? host(bias) : NULL;
    em_dtype dt = em_dtype_of(out);
    double u = unit_roundoff(dt == EM_F64 ? EM_F64 : EM_F32), uo = unit_roundoff(dt);
    int64_t nbatch = em_numel(out) / (M * N > 0 ? M * N : 1);
    for (int64_t bi = 0; bi < nbatch; bi++) {
        /* batch offsets of a and b: right-aligned, size-1 dims broadcast */
        int64_t rem = bi, ao = 0, bo = 0, astr = M * K, bstr = K * N;
        for (int d = no - 3; d >= 0; d--) {
            int64_t i = rem % so[d];
            rem /= so[d];
            int da = d - (no - na), db = d - (no - nb);
            if (da >= 0) {
                ao += (sa[da] == 1 ? 0 : i) * astr;
                astr *= sa[da];
            }
            if (db >= 0) {
                bo += (sb[db] == 1 ? 0 : i) * bstr;
                bstr *= sb[db];
            }
        }
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                double ref = bv ? bv[j] : 0, mag = bv ? fabs(bv[j]) : 0;
                for (int64_t k = 0; k < K; k++) {
                    double p = A[ao + i * K + k] * B[bo + k * N + j];
                    ref += p;
                    mag += fabs(p);
                }
                double got = O[(bi * M + i) * N + j];
                double tol = 2 * (double)(K + 1) * u * mag + uo * fabs(ref) + 1e-300;
                if (!(fabs(got - ref) <= tol))
                    cr_assert_fail("%s: %s [%lld x %lld x %lld], batch %lld, (%lld, %lld): got %.9g, "
                             "float64 reference %.9g (tolerance %.3g)",
                             what, em_dtype_name(dt), (long long)M, (long long)K, (long long)N,
                             (long long)bi, (long long)i, (long long)j, got, ref, tol);
            }
    }
    free(A);
    free(B);
    free(O);
    free(bv);
}

static void check_matmul(em_tensor *a, em_tensor *b, const char *what)
{
    em_tensor *out = em_matmul(a, b);
    check_product(a, b, NULL, out, what);
    em_release(out);
}

static void plain(em_dtype dt, int64_t M, int64_t K, int64_t N, const char *what)
{
    em_tensor *a = rand_tensor(dt, 2, (int64_t[]){M, K}), *b = rand_tensor(dt, 2, (int64_t[]){K, N});
    char buf[96];
    snprintf(buf, sizeof buf, "%s %lldx%lldx%lld", what, (long long)M, (long long)K, (long long)N);
    check_matmul(a, b, buf);
    em_release(a);
    em_release(b);
}

/* ---- the cases -------------------------------------------------------------------------- */

Test(gemm, random_odd_shapes_match_float64)
{
    for (int i = 0; i < 40; i++)
        plain(EM_F32, irand(1, 300), irand(1, 300), irand(1, 300), "random");
}

Test(gemm, float64_random_shapes_match)
{
    for (int i = 0; i < 12; i++)
        plain(EM_F64, irand(1, 300), irand(1, 300), irand(1, 300), "random f64");
}

Test(gemm, k_of_one_and_long_k_sums)
{
    em_dtype dts[] = {EM_F32, EM_F64};
    for (int d = 0; d < 2; d++) {
        plain(dts[d], 37, 1, 45, "K = 1");
        plain(dts[d], 29, 5000, 33, "K = 5000");
        plain(dts[d], 1, 5000, 1, "dot product, K = 5000");
    }
}

Test(gemm, vectors_and_single_rows_or_columns)
{
    plain(EM_F32, 1, 300, 257, "M = 1");
    plain(EM_F32, 300, 257, 1, "N = 1");
    plain(EM_F32, 1, 1, 1, "1 x 1 x 1");
    plain(EM_F64, 1, 70, 9, "M = 1 f64");
}

Test(gemm, sizes_past_every_cache_block)
{
    plain(EM_F32, 1500, 200, 40, "M past MC");
    plain(EM_F32, 20, 30, 4200, "N past NC");
    plain(EM_F32, 64, 1100, 70, "K past KC");
    plain(EM_F32, 517, 613, 431, "threaded");
    plain(EM_F64, 300, 700, 250, "threaded f64");
}

Test(gemm, empty_k_gives_zeros)
{
    em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (int d = 0; d < 4; d++) {
        em_tensor *a = em_ones(EM_SHAPE(5, 0), &(em_opts){.dtype = dts[d]});
        em_tensor *b = em_ones(EM_SHAPE(0, 7), &(em_opts){.dtype = dts[d]});
        em_tensor *o = em_matmul(a, b);
        cr_assert(o, "%s", em_last_error());
        em_tensor *m = em_abs(o), *s = em_sum(m, 0, NULL, false);
        cr_assert_eq(em_shape(o)[0] * em_shape(o)[1], 35, "K = 0: shape");
        cr_assert_eq(em_item(s), 0.0, "K = 0 (%s): the product must be zeros",
                     em_dtype_name(dts[d]));
        em_release(m);
        em_release(s);
        em_release(a);
        em_release(b);
        em_release(o);
    }
}

Test(gemm, transposed_operands_are_read_in_place)
{
    for (int i = 0; i < 8; i++) {
        int64_t M = irand(1, 200), K = irand(1, 200), N = irand(1, 200);
        em_tensor *x = rand_tensor(EM_F32, 2, (int64_t[]){K, M});
        em_tensor *y = rand_tensor(EM_F32, 2, (int64_t[]){N, K});
        em_tensor *b = rand_tensor(EM_F32, 2, (int64_t[]){K, N});
        em_tensor *a = rand_tensor(EM_F32, 2, (int64_t[]){M, K});
        em_tensor *xt = em_t(x), *yt = em_t(y);
        check_matmul(xt, b, "a transposed");
        check_matmul(a, yt, "b transposed");
        check_matmul(xt, yt, "both transposed");
        em_release(x); em_release(y); em_release(a); em_release(b);
        em_release(xt); em_release(yt);
    }
}

Test(gemm, strided_and_sliced_operands)
{
    em_dtype dts[] = {EM_F32, EM_F64, EM_F16};
    for (int d = 0; d < 3; d++) {
        em_tensor *x = rand_tensor(dts[d], 2, (int64_t[]){90, 130});
        em_tensor *y = rand_tensor(dts[d], 2, (int64_t[]){140, 77});
        /* every other row and every third column: both strides non-unit */
        em_tensor *xs0 = em_slice(x, 0, 1, 90, 2), *xs = em_slice(xs0, 1, 0, 130, 3);
        em_tensor *ys0 = em_slice(y, 0, 0, 130, 3), *ys = em_slice(ys0, 1, 5, 77, 2);
        em_tensor *yn = em_narrow(y, 0, 3, 44);               /* rows of a wider matrix */
        check_matmul(xs, ys, "doubly strided");
        em_tensor *xn = em_narrow(x, 1, 10, 44);               /* columns of a wider matrix */
        check_matmul(xn, yn, "narrowed");
        em_tensor *xt = em_t(xn);
        em_tensor *xtt = em_slice(xt, 0, 0, 44, 1);
        em_tensor *z = rand_tensor(dts[d], 2, (int64_t[]){90, 5});
        check_matmul(xtt, z, "transposed slice");
        em_release(x); em_release(y); em_release(xs0); em_release(xs); em_release(ys0);
        em_release(ys); em_release(yn); em_release(xn); em_release(xt); em_release(xtt);
        em_release(z);
    }
}

Test(gemm, batches_with_and_without_broadcast)
{
    em_tensor *a = rand_tensor(EM_F32, 3, (int64_t[]){3, 33, 47});
    em_tensor *b = rand_tensor(EM_F32, 3, (int64_t[]){3, 47, 29});
    check_matmul(a, b, "batched");
    em_tensor *a4 = rand_tensor(EM_F32, 4, (int64_t[]){2, 1, 20, 47});
    check_matmul(a4, b, "broadcast batch");
    em_tensor *w = rand_tensor(EM_F32, 2, (int64_t[]){47, 61});
    check_matmul(a, w, "shared b (one folded product)");
    em_tensor *r = rand_tensor(EM_F32, 3, (int64_t[]){6, 1, 47});
    check_matmul(r, w, "shared b, single rows");
    em_tensor *wb = rand_tensor(EM_F32, 3, (int64_t[]){1, 47, 61});
    check_matmul(r, wb, "size-1 batch of b");
    em_tensor *big = rand_tensor(EM_F64, 3, (int64_t[]){40, 9, 11});
    em_tensor *bigb = rand_tensor(EM_F64, 3, (int64_t[]){40, 11, 13});
    check_matmul(big, bigb, "many small products");
    em_tensor *at = em_transpose(a, 1, 2), *bt = em_transpose(b, 1, 2);
    check_matmul(bt, at, "batched, transposed");
    em_release(a); em_release(b); em_release(a4); em_release(w); em_release(r);
    em_release(wb); em_release(big); em_release(bigb); em_release(at); em_release(bt);
}

/* Products on both sides of the small-product path's limits (under 96^3 multiply-adds, or
 * 192^3 on one thread, or a whole B that fits beside a packed A block, split by columns across
 * threads: a batch against a layer's weight; K up to two KC slices), with column counts just
 * under, at and past each kernel's tile width (B read in place for whole tiles, the rest
 * packed), B's rows wider than the product (a narrowed B), transposed operands, f64 and
 * Linear's bias. */
Test(gemm, small_products_on_both_sides_of_the_threshold_match)
{
    static const int64_t shapes[][3] = {
        {95, 96, 96}, {97, 96, 96}, {14, 383, 160}, {14, 385, 160}, {13, 7, 31}, {15, 9, 33},
        {29, 64, 32}, {28, 64, 16}, {6, 50, 17}, {4, 3, 15}, {1, 1, 65}, {64, 3, 64},
        {64, 128, 10}, {10, 64, 128}, {191, 192, 192}, {193, 192, 192},
        {64, 256, 784}, {64, 256, 783}, {257, 64, 785}, {100, 383, 500}, {64, 385, 256},
        {300, 256, 1500},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int64_t M = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
        char what[96];
        snprintf(what, sizeof what, "small %lldx%lldx%lld", (long long)M, (long long)K,
                 (long long)N);
        plain(EM_F32, M, K, N, what);
        plain(EM_F64, M, K, N, what);
        em_tensor *a = rand_tensor(EM_F32, 2, (int64_t[]){M, K});
        em_tensor *at0 = rand_tensor(EM_F32, 2, (int64_t[]){K, M}), *at = em_t(at0);
        em_tensor *bt0 = rand_tensor(EM_F32, 2, (int64_t[]){N, K}), *bt = em_t(bt0);
        em_tensor *wide = rand_tensor(EM_F32, 2, (int64_t[]){K, N + 7});
        em_tensor *bn = em_narrow(wide, 1, 5, N);
        check_matmul(at, bn, what);
        check_matmul(a, bt, what);
        em_tensor *bias = rand_tensor(EM_F32, 1, (int64_t[]){N});
        em_tensor *y = em_linear(a, bt0, bias);
        check_product(a, bt, bias, y, what);
        em_release(a); em_release(at0); em_release(at); em_release(bt0); em_release(bt);
        em_release(wide); em_release(bn); em_release(bias); em_release(y);
    }
}

Test(gemm, half_precision_accumulates_in_float32)
{
    em_dtype dts[] = {EM_F16, EM_BF16};
    for (int d = 0; d < 2; d++) {
        plain(dts[d], 70, 300, 45, "half");
        plain(dts[d], 5, 2000, 3, "half, long K");
        em_tensor *a = rand_tensor(dts[d], 3, (int64_t[]){4, 17, 23});
        em_tensor *b = rand_tensor(dts[d], 2, (int64_t[]){23, 19});
        check_matmul(a, b, "half, batched");
        em_release(a);
        em_release(b);
    }
}
Test(gemm, linear_adds_the_bias_in_the_product)
{
    em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (int d = 0; d < 4; d++) {
        int64_t shapes[][3] = {{64, 784, 256}, {1, 5, 3}, {33, 1, 17}, {7, 0, 9}};
        for (int s = 0; s < 4; s++) {
            int64_t B = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
            em_tensor *x = rand_tensor(dts[d], 2, (int64_t[]){B, in});
            em_tensor *w = rand_tensor(dts[d], 2, (int64_t[]){out, in});
            em_tensor *bias = rand_tensor(dts[d], 1, (int64_t[]){out});
            em_tensor *y = em_linear(x, w, bias), *wt = em_t(w);
            check_product(x, wt, bias, y, "linear");
            em_release(x); em_release(w); em_release(bias); em_release(y); em_release(wt);
        }
    }
    /* a 3-D input and a strided bias */
    em_tensor *x = rand_tensor(EM_F32, 3, (int64_t[]){3, 5, 40});
    em_tensor *w = rand_tensor(EM_F32, 2, (int64_t[]){30, 40});
    em_tensor *b2 = rand_tensor(EM_F32, 1, (int64_t[]){60});
    em_tensor *bias = em_slice(b2, 0, 0, 60, 2);
    em_tensor *y = em_linear(x, w, bias), *wt = em_t(w);
    check_product(x, wt, bias, y, "linear, 3-D input, strided bias");
    em_release(x); em_release(w); em_release(b2); em_release(bias); em_release(y);
    em_release(wt);
}

/* relu(x @ w^T + b) with the ReLU in the GEMM's store, forward and backward: the gradients
 * must equal those of the unfused em_relu(em_linear(...)). */
Test(gemm, linear_relu_fuses_the_activation_and_keeps_its_gradient)
{
    em_tensor *x0 = rand_tensor(EM_F32, 2, (int64_t[]){64, 100});
    em_tensor *w0 = rand_tensor(EM_F32, 2, (int64_t[]){70, 100});
    em_tensor *b0 = rand_tensor(EM_F32, 1, (int64_t[]){70});
    double *xv = host(x0), *wv = host(w0), *bv = host(b0);
    em_tensor *xs[2], *ws[2], *bs[2];
    for (int k = 0; k < 2; k++) {
        xs[k] = em_tensor_from_data(xv, EM_F64, EM_SHAPE(64, 100), &(em_opts){.dtype = EM_F32, .requires_grad = true});
        ws[k] = em_tensor_from_data(wv, EM_F64, EM_SHAPE(70, 100), &(em_opts){.dtype = EM_F32, .requires_grad = true});
        bs[k] = em_tensor_from_data(bv, EM_F64, EM_SHAPE(70), &(em_opts){.dtype = EM_F32, .requires_grad = true});
    }
    em_tensor *fused = em_linear_relu(xs[0], ws[0], bs[0]);
    em_tensor *lin = em_linear(xs[1], ws[1], bs[1]), *plain = em_relu(lin);
    cr_assert(fused && plain, "%s", em_last_error());
    cr_assert_str_eq(em_grad_fn_name(fused), "ReluBackward0");
    double *fv = host(fused), *pv = host(plain);
    int64_t zeros = 0;
    for (int64_t i = 0; i < 64 * 70; i++) {
        cr_assert(fv[i] >= 0 && fabs(fv[i] - pv[i]) <= 1e-5 * (1 + fabs(pv[i])),
                  "linear_relu[%lld] = %g, relu(linear) = %g", (long long)i, fv[i], pv[i]);
        zeros += fv[i] == 0;
    }
    cr_assert(zeros > 64 * 70 / 4, "the ReLU must clip about half (clipped %lld)", (long long)zeros);
    em_tensor *s0 = em_sum(fused, 0, NULL, false), *s1 = em_sum(plain, 0, NULL, false);
    cr_assert_eq(em_backward(s0, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_backward(s1, NULL, false), EM_OK, "%s", em_last_error());
    em_tensor *pairs[3][2] = {{xs[0], xs[1]}, {ws[0], ws[1]}, {bs[0], bs[1]}};
    for (int p = 0; p < 3; p++) {
        double *g0 = host(em_grad(pairs[p][0])), *g1 = host(em_grad(pairs[p][1]));
        int64_t n = em_numel(pairs[p][0]);
        for (int64_t i = 0; i < n; i++)
            cr_assert(fabs(g0[i] - g1[i]) <= 1e-4 * (1 + fabs(g1[i])),
                      "grad of input %d [%lld]: fused %g, unfused %g", p, (long long)i, g0[i],
                      g1[i]);
        free(g0);
        free(g1);
    }
    free(xv); free(wv); free(bv); free(fv); free(pv);
    em_release(s0); em_release(s1); em_release(fused); em_release(lin); em_release(plain);
    for (int k = 0; k < 2; k++) {
        em_release(xs[k]); em_release(ws[k]); em_release(bs[k]);
    }
    em_release(x0); em_release(w0); em_release(b0);
}

/* The epilogue in the GEMM's store (the driver's loop, or a kernel file's own) against the
 * unfused ops, bit for bit, on tiles with partial rows and columns: a NaN in x makes its row
 * NaN, which the ReLU keeps (PyTorch's relu(nan) is nan); every other value matches exactly. */
Test(gemm, fused_bias_and_relu_match_the_unfused_ops_bit_for_bit)
{
    int64_t shapes[][3] = {{29, 50, 37}, {14, 8, 32}, {3, 300, 17}, {64, 784, 256}};
    for (int s = 0; s < 4; s++) {
        int64_t B = shapes[s][0], in = shapes[s][1], out = shapes[s][2];
        em_tensor *x = rand_tensor(EM_F32, 2, (int64_t[]){B, in});
        em_tensor *w = rand_tensor(EM_F32, 2, (int64_t[]){out, in});
        em_tensor *b = rand_tensor(EM_F32, 1, (int64_t[]){out});
        float *xp = em_data_ptr(x);
        cr_assert(xp, "%s", em_last_error());
        xp[(B / 2) * in + in / 3] = NAN;          /* row B / 2 of the output is NaN */
        em_tensor *fused = em_linear_relu(x, w, b), *lin = em_linear(x, w, b);
        em_tensor *plain_relu = lin ? em_relu(lin) : NULL;
        cr_assert(fused && plain_relu, "%s", em_last_error());
        const float *f = em_data_ptr(fused), *u = em_data_ptr(plain_relu);
        for (int64_t i = 0; i < B * out; i++) {
            if (i / out == B / 2) {
                cr_assert(isnan(f[i]), "%lldx%lldx%lld: [%lld] = %g, want NaN", (long long)B,
                          (long long)in, (long long)out, (long long)i, (double)f[i]);
                continue;
            }
            cr_assert(!memcmp(&f[i], &u[i], sizeof f[i]) && f[i] >= 0,
                      "%lldx%lldx%lld: fused [%lld] = %a, unfused %a", (long long)B,
                      (long long)in, (long long)out, (long long)i, (double)f[i], (double)u[i]);
        }
        em_release(x); em_release(w); em_release(b); em_release(fused); em_release(lin);
        em_release(plain_relu);
    }
}

/* Each meson entry of this file must run the path it names, or say why it cannot: the device's
 * kernel line names the path in use, and a forced path is only replaced on a CPU without it. */
Test(gemm, the_forced_kernel_path_is_the_one_in_use)
{
    const char *want = getenv("EMBER_GEMM_KERNEL");
    const char *k = em_device_kernels(em_device_parse("cpu"));
    cr_assert(k, "em_device_kernels: %s", em_last_error());
    cr_assert(!strncmp(k, "GEMM ", 5), "kernel line '%s' should start with 'GEMM '", k);
    if (!want || !strcmp(want, "auto"))
        return;
    char expect[64];
    snprintf(expect, sizeof expect, "GEMM %s:", want);
    bool runnable = !strcmp(want, "generic");
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (!strcmp(want, "avx2"))
        runnable = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!strcmp(want, "avx512"))
        runnable = __builtin_cpu_supports("avx512f");
#endif
    if (runnable)
        cr_assert(!strncmp(k, expect, strlen(expect)), "EMBER_GEMM_KERNEL=%s but in use: %s",
                  want, k);
    else
        cr_assert(strncmp(k, expect, strlen(expect)) != 0,
                  "EMBER_GEMM_KERNEL=%s is not runnable here but is in use: %s", want, k);
}
