/* tests/core/test_ops_layouts.c - the ops of ops.h on inputs of unusual layout and size:
 * transposed views against contiguous copies, zero-size tensors, large inputs (the
 * backend's threaded and blocked paths) against references, and no leaked temporaries.
 *
 * Expected values are what PyTorch 2.x prints for the same expressions.
 */
#include "helpers.h"

TestSuite(ops, .init = emt_setup, .fini = emt_teardown);

/* ---- non-contiguous inputs ------------------------------------------------------------------ */

/* A [2, 3] float32 view with strides [1, 2] over a [3, 2] base, values 0.5 .. 3 (positive, so
 * every unary op is defined); and its contiguous copy. */
static void transposed_pair(em_tensor **view, em_tensor **copy, em_tensor **base)
{
    *base = F32(EM_SHAPE(3, 2), EMT_VALS(0.5, 2.0, 1.5, 0.25, 3.0, 1.0));
    *view = EMT_OK(em_t(*base));
    cr_assert_not(em_is_contiguous(*view));
    *copy = EMT_OK(em_contiguous(*view));
    cr_assert(em_is_contiguous(*copy));
}

/* Asserts that r (from the strided input) has rc's shape and values, bit for bit. */
static void expect_same(const char *what, em_tensor *r, em_tensor *rc)
{
    EMT_CONTEXT("%s on a transposed input", what);
    EMT_ASSERT_SHAPE(r, em_ndim(rc), em_shape(rc));
    EMT_ASSERT_DTYPE(r, em_dtype_of(rc));
    double *want = emt_values(rc);
    EMT_ASSERT_VALUES(r, 0, want, em_numel(rc));
    free(want);
    em_release(r);
    em_release(rc);
}

Test(ops, unary_ops_on_a_transposed_input_match_the_contiguous_result)
{
    static const struct {
        const char *name;
        unary_fn fn;
    } ops[] = {{"neg", em_neg},   {"abs", em_abs},         {"exp", em_exp},
               {"log", em_log},   {"sqrt", em_sqrt},       {"sin", em_sin},
               {"cos", em_cos},   {"tanh", em_tanh},       {"sigmoid", em_sigmoid},
               {"relu", em_relu}};
    em_tensor *v, *c, *base;
    transposed_pair(&v, &c, &base);
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        expect_same(ops[i].name, EMT_OK(ops[i].fn(v)), EMT_OK(ops[i].fn(c)));
    emt_no_context();
    /* and one value check, in case both paths agree on something wrong */
    em_tensor *n = EMT_OK(em_neg(v));
    EMT_ASSERT_LIST(n, 0, -0.5, -1.5, -3, -2, -0.25, -1);
    em_release(n);
    em_release(c);
    em_release(v);
    em_release(base);
}

Test(ops, binary_ops_on_a_transposed_input_match_the_contiguous_result)
{
    static const struct {
        const char *name;
        binary_fn fn;
    } ops[] = {{"add", em_add}, {"sub", em_sub}, {"mul", em_mul}, {"div", em_div},
               {"pow", em_pow}, {"maximum", em_maximum}, {"minimum", em_minimum},
               {"eq", em_eq}, {"ne", em_ne}, {"lt", em_lt}, {"le", em_le}, {"gt", em_gt},
               {"ge", em_ge}};
    em_tensor *v, *c, *base;
    transposed_pair(&v, &c, &base);
    em_tensor *other = F32(EM_SHAPE(2, 3), EMT_VALS(1, 1.5, 2, 0.25, 0.25, 4));
    em_tensor *row = F32(EM_SHAPE(3), EMT_VALS(2, 1.5, 1));
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        expect_same(ops[i].name, EMT_OK(ops[i].fn(v, other)), EMT_OK(ops[i].fn(c, other)));
        expect_same(ops[i].name, EMT_OK(ops[i].fn(other, v)), EMT_OK(ops[i].fn(other, c)));
        expect_same(ops[i].name, EMT_OK(ops[i].fn(v, v)), EMT_OK(ops[i].fn(c, c)));
        expect_same(ops[i].name, EMT_OK(ops[i].fn(v, row)), EMT_OK(ops[i].fn(c, row)));
    }
    emt_no_context();
    em_tensor *s = EMT_OK(em_add(v, other));
    EMT_ASSERT_LIST(s, 0, 1.5, 3, 5, 2.25, 0.5, 5);
    em_release(s);
    em_release(row);
    em_release(other);
    em_release(c);
    em_release(v);
    em_release(base);
}

Test(ops, reductions_and_indexing_on_a_transposed_input_match_the_contiguous_result)
{
    em_tensor *v, *c, *base;
    transposed_pair(&v, &c, &base);
    for (int d = 0; d < 2; d++) {
        const int dims[1] = {d};
        expect_same("sum", EMT_OK(em_sum(v, 1, dims, false)), EMT_OK(em_sum(c, 1, dims, false)));
        expect_same("amax", EMT_OK(em_amax(v, 1, dims, true)), EMT_OK(em_amax(c, 1, dims, true)));
        expect_same("mean", EMT_OK(em_mean(v, 1, dims, false)),
                    EMT_OK(em_mean(c, 1, dims, false)));
        expect_same("argmax", EMT_OK(em_argmax(v, d, false)), EMT_OK(em_argmax(c, d, false)));
        expect_same("softmax", EMT_OK(em_softmax(v, d)), EMT_OK(em_softmax(c, d)));
        expect_same("log_softmax", EMT_OK(em_log_softmax(v, d)), EMT_OK(em_log_softmax(c, d)));
    }
    expect_same("sum_all", EMT_OK(em_sum_all(v)), EMT_OK(em_sum_all(c)));
    em_tensor *idx = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(2, 0, 1, 1));
    expect_same("gather", EMT_OK(em_gather(v, 1, idx)), EMT_OK(em_gather(c, 1, idx)));
    em_tensor *idx0 = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(1, 0, 1, 1));
    em_tensor *it = EMT_OK(em_t(idx0));   /* a strided index too: [[1, 1], [0, 1]] */
    em_tensor *itc = EMT_OK(em_contiguous(it));
    expect_same("gather (strided index)", EMT_OK(em_gather(c, 0, it)),
                EMT_OK(em_gather(c, 0, itc)));
    em_tensor *src = F32(EM_SHAPE(2, 2), EMT_VALS(10, 20, 30, 40));
    expect_same("scatter_add", EMT_OK(em_scatter_add(v, 1, idx, src)),
                EMT_OK(em_scatter_add(c, 1, idx, src)));
    expect_same("scatter_add (strided index)", EMT_OK(em_scatter_add(c, 0, it, src)),
                EMT_OK(em_scatter_add(c, 0, itc, src)));
    em_tensor *one = EMT_OK(em_scalar(1, NULL));
    em_tensor *ct = EMT_OK(em_lt(v, one));   /* a strided bool condition */
    em_tensor *other = EMT_OK(em_neg(c));
    expect_same("where", EMT_OK(em_where(ct, v, other)), EMT_OK(em_where(ct, c, other)));
    emt_no_context();
    em_tensor *w = EMT_OK(em_where(ct, v, other));
    EMT_ASSERT_LIST(w, 0, 0.5, -1.5, -3, -2, 0.25, -1);
    em_release(w);
    em_tensor *g = EMT_OK(em_gather(c, 0, it));   /* c = [[0.5, 1.5, 3], [2, 0.25, 1]] */
    EMT_ASSERT_LIST(g, 0, 2, 0.25, 0.5, 0.25);
    em_release(g);
    em_tensor *sv = EMT_OK(em_sum(v, 1, (const int[]){1}, false));
    EMT_ASSERT_LIST(sv, 0, 5, 3.25);
    em_release(sv);
    em_release(other);
    em_release(ct);
    em_release(one);
    em_release(src);
    em_release(itc);
    em_release(it);
    em_release(idx0);
    em_release(idx);
    em_release(c);
    em_release(v);
    em_release(base);
}

/* ---- zero-size tensors ---------------------------------------------------------------------- */

Test(ops, add_of_zero_size_tensors_gives_a_zero_size_result)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(0, 3), NULL));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(0, 3), NULL));
    em_tensor *r = EMT_OK(em_add(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(0, 3));
    cr_assert_eq(em_numel(r), 0);
    em_release(r);
    em_tensor *row = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    r = EMT_OK(em_mul(a, row));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(0, 3));
    em_release(r);
    r = EMT_OK(em_exp(a));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(0, 3));
    em_release(r);
    em_release(row);
    em_release(b);
    em_release(a);
}

Test(ops, sum_over_an_empty_dim_gives_zeros)
{
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(0, 3), NULL));
    em_tensor *s0 = EMT_OK(em_sum(a, 1, (const int[]){0}, false));
    EMT_ASSERT_SHAPE(s0, EM_SHAPE(3));
    EMT_ASSERT_LIST(s0, 0, 0, 0, 0);
    em_tensor *s1 = EMT_OK(em_sum(a, 1, (const int[]){1}, false));
    EMT_ASSERT_SHAPE(s1, EM_SHAPE(0));
    em_tensor *all = EMT_OK(em_sum_all(a));
    EMT_ASSERT_SHAPE(all, EM_SCALAR);
    cr_assert_eq(em_item(all), 0.0);
    em_tensor *i = EMT_OK(em_ones(EM_SHAPE(2, 0), &(em_opts){.dtype = EM_I32}));
    em_tensor *si = EMT_OK(em_sum(i, 1, (const int[]){1}, true));
    EMT_ASSERT_SHAPE(si, EM_SHAPE(2, 1));
    EMT_ASSERT_DTYPE(si, EM_I64);
    EMT_ASSERT_LIST(si, 0, 0, 0);
    em_tensor *m = EMT_OK(em_mean(a, 1, (const int[]){0}, false));   /* 0 / 0 */
    EMT_ASSERT_LIST(m, 0, NAN, NAN, NAN);
    em_release(m);
    em_release(si);
    em_release(i);
    em_release(all);
    em_release(s1);
    em_release(s0);
    em_release(a);
}

Test(ops, matmul_with_an_empty_inner_dim_gives_zeros)
{
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2, 0), NULL));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(0, 3), NULL));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(r, 0, 0, 0, 0, 0, 0, 0);
    em_release(r);
    em_release(b);
    em_release(a);
}

/* ---- large inputs: the backend's threaded and blocked paths --------------------------------- */

/* x[i][j] = ((31 i + 17 j) % 13) - 6: small integers, so every float32 sum below is exact. */
static double big_val(int64_t i, int64_t j) { return (double)((31 * i + 17 * j) % 13) - 6; }

enum { BR = 1000, BC = 999 };

static em_tensor *big_matrix(em_dtype dt)
{
    double *v = malloc(sizeof(double) * BR * BC);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < BR; i++)
        for (int64_t j = 0; j < BC; j++)
            v[i * BC + j] = big_val(i, j);
    em_tensor *t = emt_tensor(dt, EM_SHAPE(BR, BC), v);
    free(v);
    return t;
}

Test(ops, large_elementwise_ops_and_broadcasts_match_a_reference)
{
    em_tensor *x = big_matrix(EM_F32);
    em_tensor *row = EMT_OK(em_arange(0, BC, 1, &(em_opts){.dtype = EM_F32}));
    em_tensor *r = EMT_OK(em_add(x, row));
    em_tensor *xt = EMT_OK(em_t(x));
    em_tensor *m = EMT_OK(em_mul(xt, xt));   /* strided in, contiguous out */
    em_tensor *c = EMT_OK(em_contiguous(xt));
    double *want = malloc(sizeof(double) * BR * BC);
    cr_assert_not_null(want);
    for (int64_t i = 0; i < BR; i++)
        for (int64_t j = 0; j < BC; j++)
            want[i * BC + j] = big_val(i, j) + (double)j;
    EMT_ASSERT_VALUES(r, 0, want, (int64_t)BR * BC);
    for (int64_t j = 0; j < BC; j++)
        for (int64_t i = 0; i < BR; i++)
            want[j * BR + i] = big_val(i, j) * big_val(i, j);
    EMT_ASSERT_SHAPE(m, EM_SHAPE(BC, BR));
    EMT_ASSERT_VALUES(m, 0, want, (int64_t)BR * BC);
    for (int64_t j = 0; j < BC; j++)
        for (int64_t i = 0; i < BR; i++)
            want[j * BR + i] = big_val(i, j);
    /* contiguous strides, so these values are the memory's order, on any device */
    EMT_ASSERT_STRIDES(c, EM_SHAPE(BR, 1));
    EMT_ASSERT_VALUES(c, 0, want, (int64_t)BR * BC);
    free(want);
    em_release(c);
    em_release(m);
    em_release(xt);
    em_release(r);
    em_release(row);
    em_release(x);
}

Test(ops, large_reductions_match_a_reference)
{
    double *rows = calloc(BR, sizeof(double)), *cols = calloc(BC, sizeof(double));
    double *cmax = malloc(BC * sizeof(double));
    cr_assert(rows && cols && cmax);
    double total = 0;
    for (int64_t j = 0; j < BC; j++)
        cmax[j] = -INFINITY;
    for (int64_t i = 0; i < BR; i++)
        for (int64_t j = 0; j < BC; j++) {
            double v = big_val(i, j);
            rows[i] += v;
            cols[j] += v;
            total += v;
            cmax[j] = v > cmax[j] ? v : cmax[j];
        }
    const em_dtype dts[] = {EM_F32, EM_F64, EM_I32};
    for (size_t d = 0; d < 3; d++) {
        EMT_CONTEXT("dtype %s", em_dtype_name(dts[d]));
        em_tensor *x = big_matrix(dts[d]);
        em_tensor *xt = EMT_OK(em_t(x));
        em_tensor *s1 = EMT_OK(em_sum(x, 1, (const int[]){1}, false));
        em_tensor *s0 = EMT_OK(em_sum(x, 1, (const int[]){0}, false));
        em_tensor *st = EMT_OK(em_sum(xt, 1, (const int[]){1}, false));   /* = column sums */
        em_tensor *sa = EMT_OK(em_sum_all(x));
        em_tensor *m0 = EMT_OK(em_amax(x, 1, (const int[]){0}, false));
        em_tensor *mt = EMT_OK(em_amax(xt, 1, (const int[]){1}, false));
        EMT_ASSERT_VALUES(s1, 0, rows, BR);
        EMT_ASSERT_VALUES(s0, 0, cols, BC);
        EMT_ASSERT_VALUES(st, 0, cols, BC);
        EMT_ASSERT_VALUES(sa, 0, &total, 1);
        EMT_ASSERT_VALUES(m0, 0, cmax, BC);
        EMT_ASSERT_VALUES(mt, 0, cmax, BC);
        em_release(mt);
        em_release(m0);
        em_release(sa);
        em_release(st);
        em_release(s0);
        em_release(s1);
        em_release(xt);
        em_release(x);
    }
    free(cmax);
    free(cols);
    free(rows);
}

Test(ops, argmax_of_a_long_vector_returns_the_first_maximum)
{
    const int64_t n = 200000;
    float *v = malloc((size_t)n * sizeof *v);
    cr_assert_not_null(v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (float)(i % 5);          /* maximum 4 everywhere ... */
    v[150000] = v[190000] = 9;          /* ... but 9 twice, late */
    em_tensor *t = EMT_OK(em_tensor_from_data(v, EM_F32, 1, &n, NULL));
    em_tensor *r = EMT_OK(em_argmax(t, 0, false));
    cr_assert_eq(em_item(r), 150000.0, "argmax is %g", em_item(r));
    em_release(r);
    em_release(t);
    v[20] = 9;                          /* an earlier tie, in another thread's part */
    t = EMT_OK(em_tensor_from_data(v, EM_F32, 1, &n, NULL));
    r = EMT_OK(em_argmax(t, 0, false));
    cr_assert_eq(em_item(r), 20.0, "argmax is %g", em_item(r));
    em_release(r);
    em_release(t);
    v[120000] = NAN;                    /* NaN beats any number, even an earlier maximum */
    v[180000] = NAN;
    t = EMT_OK(em_tensor_from_data(v, EM_F32, 1, &n, NULL));
    r = EMT_OK(em_argmax(t, 0, false));
    cr_assert_eq(em_item(r), 120000.0, "argmax is %g", em_item(r));
    em_release(r);
    em_release(t);
    free(v);
}

Test(ops, large_gather_and_scatter_add_match_a_reference)
{
    enum { R = 2000, C = 64, S = 300 };
    static double av[R * C], src[R * C], want_g[R * C], want_s[S * C], idx[R * C];
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++) {
            av[i * C + j] = i * C + j;
            src[i * C + j] = (i + j) % 3 + 1;
            idx[i * C + j] = (double)((i * 7919 + j * 104729) % S);
        }
    /* gather along dim 1 of a [R, C] input with a [R, C] index of columns (mod C) */
    static double idx1[R * C];
    for (int i = 0; i < R * C; i++)
        idx1[i] = (double)((int64_t)idx[i] % C);
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            want_g[i * C + j] = av[i * C + (int64_t)idx1[i * C + j]];
    /* scatter_add along dim 0 into [S, C] zeros */
    for (int i = 0; i < S * C; i++)
        want_s[i] = 0;
    for (int i = 0; i < R; i++)
        for (int j = 0; j < C; j++)
            want_s[(int64_t)idx[i * C + j] * C + j] += src[i * C + j];
    em_tensor *a = emt_tensor(EM_F32, EM_SHAPE(R, C), av);
    em_tensor *ix1 = emt_tensor(EM_I64, EM_SHAPE(R, C), idx1);
    em_tensor *g = EMT_OK(em_gather(a, 1, ix1));
    EMT_ASSERT_VALUES(g, 0, want_g, R * C);
    em_tensor *z = EMT_OK(em_zeros(EM_SHAPE(S, C), NULL));
    em_tensor *ix = emt_tensor(EM_I64, EM_SHAPE(R, C), idx);
    em_tensor *sv = emt_tensor(EM_F32, EM_SHAPE(R, C), src);
    em_tensor *s = EMT_OK(em_scatter_add(z, 0, ix, sv));
    EMT_ASSERT_VALUES(s, 0, want_s, S * C);
    em_release(s);
    em_release(sv);
    em_release(ix);
    em_release(z);
    em_release(g);
    em_release(ix1);
    em_release(a);
}

/* ---- no leaks ------------------------------------------------------------------------------- */

Test(ops, ops_release_every_temporary_they_allocate)
{
    em_device d = em_default_device();
    em_tensor *x = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *w = F32(EM_SHAPE(4, 3), EMT_VALS(1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1));
    em_tensor *b = F32(EM_SHAPE(4), EMT_VALS(0.5, -1, 2, 0));
    em_tensor *v = F32(EM_SHAPE(3), EMT_VALS(1, 0, -1));
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *c = emt_tensor(EM_BOOL, EM_SHAPE(3), EMT_VALS(1, 0, 1));
    em_tensor *xt = EMT_OK(em_t(x));
    size_t base = em_memory_allocated(d);
    em_tensor *rs[] = {
        em_linear(x, w, b), em_linear(x, w, NULL), em_softmax(x, 1), em_log_softmax(xt, 0),
        em_mean(x, 1, (const int[]){1}, true), em_matmul(v, v), em_matmul(x, v),
        em_matmul(v, xt), em_where(c, i, x), em_add(i, x), em_div(i, i), em_exp(i),
        em_add_scalar(i, 0.5), em_reshape(xt, EM_SHAPE(6)), em_sum(i, 0, NULL, false),
    };
    size_t n = sizeof rs / sizeof rs[0];
    for (size_t k = 0; k < n; k++)
        cr_assert_not_null(rs[k], "result %zu: %s", k, em_last_error());
    for (size_t k = 0; k < n; k++)
        em_release(rs[k]);
    cr_assert_eq(em_memory_allocated(d), base,
                 "%zu bytes are still allocated after releasing every result",
                 em_memory_allocated(d) - base);
    em_release(xt);
    em_release(c);
    em_release(i);
    em_release(v);
    em_release(b);
    em_release(w);
    em_release(x);
}
