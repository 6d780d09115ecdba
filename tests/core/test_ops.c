/* tests/core/test_ops.c - every primitive and composite op of ops.h against hand-computed
 * values: elementwise math, broadcasting, PyTorch's type promotion, reductions, matmul,
 * gather/scatter_add, softmax/linear, strided (transposed) inputs and zero-size tensors.
 *
 * Expected values are what PyTorch 2.x prints for the same expressions.
 */
#include "helpers.h"

TestSuite(ops, .init = emt_setup, .fini = emt_teardown);

#define F32(...) emt_tensor(EM_F32, __VA_ARGS__)
#define TOL 1e-6   /* float32 elementwise: a few ulps */
#define PI 3.14159265358979323846

typedef em_tensor *(*unary_fn)(em_tensor *);
typedef em_tensor *(*binary_fn)(em_tensor *, em_tensor *);

/* Runs r = op(a), checks dtype and values (tolerance tol), releases r. */
static void check_unary(unary_fn op, em_tensor *a, em_dtype dt, double tol, const double *want,
                        int64_t n)
{
    em_tensor *r = EMT_OK(op(a));
    EMT_ASSERT_DTYPE(r, dt);
    EMT_ASSERT_SHAPE(r, em_ndim(a), em_shape(a));
    EMT_ASSERT_VALUES(r, tol, want, n);
    em_release(r);
}

/* ---- unary ---------------------------------------------------------------------------------- */

Test(ops, neg_and_abs_keep_the_dtype)
{
    em_tensor *a = F32(EM_SHAPE(2, 2), EMT_VALS(1, -2, 0, 3.5));
    check_unary(em_neg, a, EM_F32, 0, EMT_VALS(-1, 2, 0, -3.5), 4);
    check_unary(em_abs, a, EM_F32, 0, EMT_VALS(1, 2, 0, 3.5), 4);
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(-5, 0, 7));
    check_unary(em_neg, i, EM_I64, 0, EMT_VALS(5, 0, -7), 3);
    check_unary(em_abs, i, EM_I64, 0, EMT_VALS(5, 0, 7), 3);
    em_tensor *i32 = emt_tensor(EM_I32, EM_SHAPE(2), EMT_VALS(-2147483647, 9));
    check_unary(em_abs, i32, EM_I32, 0, EMT_VALS(2147483647, 9), 2);
    em_release(i32);
    em_release(i);
    em_release(a);
}

Test(ops, exp_and_log_match_hand_values)
{
    em_tensor *a = F32(EM_SHAPE(4), EMT_VALS(0, 1, -1, 2));
    check_unary(em_exp, a, EM_F32, TOL, EMT_VALS(1, 2.718281828459045, 0.36787944117144233,
                                                 7.38905609893065), 4);
    em_tensor *b = F32(EM_SHAPE(5), EMT_VALS(1, 2.718281828459045, 0.5, 0, -1));
    check_unary(em_log, b, EM_F32, TOL, EMT_VALS(0, 1, -0.6931471805599453, -INFINITY, NAN), 5);
    em_release(b);
    em_release(a);
}

Test(ops, sqrt_sin_cos_tanh_match_hand_values)
{
    em_tensor *a = F32(EM_SHAPE(5), EMT_VALS(0, 1, 4, 2, -1));
    check_unary(em_sqrt, a, EM_F32, TOL, EMT_VALS(0, 1, 2, 1.4142135623730951, NAN), 5);
    em_tensor *s = F32(EM_SHAPE(4), EMT_VALS(0, PI / 2, PI, -PI / 6));
    check_unary(em_sin, s, EM_F32, TOL, EMT_VALS(0, 1, 0, -0.5), 4);
    em_tensor *c = F32(EM_SHAPE(3), EMT_VALS(0, PI / 3, PI));
    check_unary(em_cos, c, EM_F32, TOL, EMT_VALS(1, 0.5, -1), 3);
    em_tensor *t = F32(EM_SHAPE(4), EMT_VALS(0, 1, -1, 20));
    check_unary(em_tanh, t, EM_F32, TOL,
                EMT_VALS(0, 0.7615941559557649, -0.7615941559557649, 1), 4);
    em_release(t);
    em_release(c);
    em_release(s);
    em_release(a);
}

Test(ops, sigmoid_saturates_without_nan)
{
    em_tensor *a = F32(EM_SHAPE(5), EMT_VALS(0, 2, -2, 100, -100));
    check_unary(em_sigmoid, a, EM_F32, TOL,
                EMT_VALS(0.5, 0.8807970779778823, 0.11920292202211755, 1, 3.7200759760208356e-44),
                5);
    em_release(a);
}

Test(ops, relu_zeroes_negatives_and_propagates_nan)
{
    em_tensor *a = F32(EM_SHAPE(4), EMT_VALS(-1, 0, 2.5, NAN));
    check_unary(em_relu, a, EM_F32, 0, EMT_VALS(0, 0, 2.5, NAN), 4);
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(-3, 4));
    check_unary(em_relu, i, EM_I64, 0, EMT_VALS(0, 4), 2);
    em_tensor *r = EMT_OK(em_relu_(a));
    cr_assert_eq(r, a);
    em_release(r);
    EMT_ASSERT_LIST(a, 0, 0, 0, 2.5, NAN);
    em_release(i);
    em_release(a);
}

Test(ops, float_math_on_integers_promotes_to_float32)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(0, 1, 4));
    check_unary(em_exp, i, EM_F32, TOL, EMT_VALS(1, 2.718281828459045, 54.598150033144236), 3);
    check_unary(em_sqrt, i, EM_F32, TOL, EMT_VALS(0, 1, 2), 3);
    check_unary(em_sigmoid, i, EM_F32, TOL,
                EMT_VALS(0.5, 0.7310585786300049, 0.9820137900379085), 3);
    em_tensor *u = emt_tensor(EM_U8, EM_SHAPE(2), EMT_VALS(1, 4));
    check_unary(em_log, u, EM_F32, TOL, EMT_VALS(0, 1.3862943611198906), 2);
    em_release(u);
    em_release(i);
}

Test(ops, unary_math_in_float64_keeps_double_precision)
{
    em_tensor *a = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(1e-10, 1, 3));
    check_unary(em_exp, a, EM_F64, 1e-15, EMT_VALS(1.0000000001, exp(1.0), exp(3.0)), 3);
    check_unary(em_tanh, a, EM_F64, 1e-15, EMT_VALS(tanh(1e-10), tanh(1.0), tanh(3.0)), 3);
    em_release(a);
}

/* ---- binary --------------------------------------------------------------------------------- */

static void check_binary(binary_fn op, em_tensor *a, em_tensor *b, em_dtype dt, double tol,
                         const double *want, int64_t n)
{
    em_tensor *r = EMT_OK(op(a, b));
    EMT_ASSERT_DTYPE(r, dt);
    EMT_ASSERT_VALUES(r, tol, want, n);
    em_release(r);
}

Test(ops, arithmetic_matches_hand_values)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = F32(EM_SHAPE(2, 3), EMT_VALS(0.5, -1, 2, 3, 0, -2));
    check_binary(em_add, a, b, EM_F32, 0, EMT_VALS(1.5, 1, 5, 7, 5, 4), 6);
    check_binary(em_sub, a, b, EM_F32, 0, EMT_VALS(0.5, 3, 1, 1, 5, 8), 6);
    check_binary(em_mul, a, b, EM_F32, 0, EMT_VALS(0.5, -2, 6, 12, 0, -12), 6);
    check_binary(em_div, a, b, EM_F32, TOL, EMT_VALS(2, -2, 1.5, 4.0 / 3, INFINITY, -3), 6);
    check_binary(em_pow, a, b, EM_F32, TOL, EMT_VALS(1, 0.5, 9, 64, 1, 1.0 / 36), 6);
    check_binary(em_maximum, a, b, EM_F32, 0, EMT_VALS(1, 2, 3, 4, 5, 6), 6);
    check_binary(em_minimum, a, b, EM_F32, 0, EMT_VALS(0.5, -1, 2, 3, 0, -2), 6);
    em_tensor *r = EMT_OK(em_add(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_STRIDES(r, EM_SHAPE(3, 1));
    cr_assert_not(em_same_storage(r, a));
    em_release(r);
    em_release(b);
    em_release(a);
}

Test(ops, maximum_and_minimum_propagate_nan)
{
    em_tensor *a = F32(EM_SHAPE(3), EMT_VALS(1, NAN, 3));
    em_tensor *b = F32(EM_SHAPE(3), EMT_VALS(NAN, 2, 1));
    check_binary(em_maximum, a, b, EM_F32, 0, EMT_VALS(NAN, NAN, 3), 3);
    check_binary(em_minimum, a, b, EM_F32, 0, EMT_VALS(NAN, NAN, 1), 3);
    em_release(b);
    em_release(a);
}

Test(ops, integer_pow_is_exact_and_negative_exponents_give_zero)
{
    em_tensor *a = emt_tensor(EM_I64, EM_SHAPE(7), EMT_VALS(2, 3, -2, 1, -1, 2, 10));
    em_tensor *b = emt_tensor(EM_I64, EM_SHAPE(7), EMT_VALS(3, 2, 3, -1, -3, -1, 15));
    check_binary(em_pow, a, b, EM_I64, 0, EMT_VALS(8, 9, -8, 1, -1, 0, 1e15), 7);
    em_release(b);
    em_release(a);
}

Test(ops, integer_arithmetic_stays_integer_and_wraps_like_c)
{
    em_tensor *a = emt_tensor(EM_I32, EM_SHAPE(3), EMT_VALS(7, -7, 2147483647));
    em_tensor *b = emt_tensor(EM_I32, EM_SHAPE(3), EMT_VALS(2, 2, 1));
    check_binary(em_add, a, b, EM_I32, 0, EMT_VALS(9, -5, -2147483648.0), 3);
    check_binary(em_mul, a, b, EM_I32, 0, EMT_VALS(14, -14, 2147483647), 3);
    check_binary(em_maximum, a, b, EM_I32, 0, EMT_VALS(7, 2, 2147483647), 3);
    em_tensor *u = emt_tensor(EM_U8, EM_SHAPE(2), EMT_VALS(250, 3));
    em_tensor *v = emt_tensor(EM_U8, EM_SHAPE(2), EMT_VALS(10, 5));
    check_binary(em_add, u, v, EM_U8, 0, EMT_VALS(4, 8), 2);
    check_binary(em_sub, u, v, EM_U8, 0, EMT_VALS(240, 254), 2);
    em_release(v);
    em_release(u);
    em_release(b);
    em_release(a);
}

Test(ops, comparisons_return_bool)
{
    em_tensor *a = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *b = F32(EM_SHAPE(3), EMT_VALS(3, 2, 1));
    check_binary(em_eq, a, b, EM_BOOL, 0, EMT_VALS(0, 1, 0), 3);
    check_binary(em_ne, a, b, EM_BOOL, 0, EMT_VALS(1, 0, 1), 3);
    check_binary(em_lt, a, b, EM_BOOL, 0, EMT_VALS(1, 0, 0), 3);
    check_binary(em_le, a, b, EM_BOOL, 0, EMT_VALS(1, 1, 0), 3);
    check_binary(em_gt, a, b, EM_BOOL, 0, EMT_VALS(0, 0, 1), 3);
    check_binary(em_ge, a, b, EM_BOOL, 0, EMT_VALS(0, 1, 1), 3);
    em_release(b);
    em_release(a);
}

Test(ops, comparisons_promote_mixed_dtypes_and_treat_nan_as_unordered)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *f = F32(EM_SHAPE(3), EMT_VALS(1.5, 2, NAN));
    check_binary(em_eq, i, f, EM_BOOL, 0, EMT_VALS(0, 1, 0), 3);
    check_binary(em_ne, i, f, EM_BOOL, 0, EMT_VALS(1, 0, 1), 3);
    check_binary(em_lt, i, f, EM_BOOL, 0, EMT_VALS(1, 0, 0), 3);
    check_binary(em_ge, i, f, EM_BOOL, 0, EMT_VALS(0, 1, 0), 3);
    em_tensor *n = F32(EM_SHAPE(1), EMT_VALS(NAN));
    check_binary(em_eq, n, n, EM_BOOL, 0, EMT_VALS(0), 1);
    em_release(n);
    em_release(f);
    em_release(i);
}

Test(ops, where_picks_from_a_or_b_and_broadcasts)
{
    em_tensor *c = emt_tensor(EM_BOOL, EM_SHAPE(3), EMT_VALS(1, 0, 1));
    em_tensor *a = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *b = F32(EM_SHAPE(3), EMT_VALS(10, 20, 30));
    em_tensor *r = EMT_OK(em_where(c, a, b));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 1, 20, 3);
    em_release(r);

    /* cond [2, 1], a [3], b 0-dim int64: result [2, 3] float32 */
    em_tensor *c2 = emt_tensor(EM_BOOL, EM_SHAPE(2, 1), EMT_VALS(0, 1));
    em_tensor *z = EMT_OK(em_scalar(-1, &(em_opts){.dtype = EM_I64}));
    em_tensor *r2 = EMT_OK(em_where(c2, a, z));
    EMT_ASSERT_SHAPE(r2, EM_SHAPE(2, 3));
    EMT_ASSERT_DTYPE(r2, EM_F32);
    EMT_ASSERT_LIST(r2, 0, -1, -1, -1, 1, 2, 3);
    em_release(r2);

    /* int64 and float32 branches promote to float32 */
    em_tensor *ai = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(7, 8, 9));
    em_tensor *r3 = EMT_OK(em_where(c, ai, b));
    EMT_ASSERT_DTYPE(r3, EM_F32);
    EMT_ASSERT_LIST(r3, 0, 7, 20, 9);
    em_release(r3);
    em_release(ai);
    em_release(z);
    em_release(c2);
    em_release(b);
    em_release(a);
    em_release(c);
}

/* ---- scalars -------------------------------------------------------------------------------- */

Test(ops, scalar_ops_apply_a_number_to_every_element)
{
    em_tensor *a = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *r;
    r = EMT_OK(em_add_scalar(a, 2));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 3, 4, 5);
    em_release(r);
    r = EMT_OK(em_sub_scalar(a, 0.5));
    EMT_ASSERT_LIST(r, 0, 0.5, 1.5, 2.5);
    em_release(r);
    r = EMT_OK(em_mul_scalar(a, -3));
    EMT_ASSERT_LIST(r, 0, -3, -6, -9);
    em_release(r);
    r = EMT_OK(em_div_scalar(a, 4));
    EMT_ASSERT_LIST(r, 0, 0.25, 0.5, 0.75);
    em_release(r);
    r = EMT_OK(em_pow_scalar(a, 2));
    EMT_ASSERT_LIST(r, TOL, 1, 4, 9);
    em_release(r);
    r = EMT_OK(em_pow_scalar(a, 0.5));
    EMT_ASSERT_LIST(r, TOL, 1, 1.4142135623730951, 1.7320508075688772);
    em_release(r);
    EMT_ASSERT_LIST(a, 0, 1, 2, 3);   /* untouched */
    em_release(a);
}

Test(ops, scalar_ops_on_integers_follow_pytorch_types)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *r;
    r = EMT_OK(em_pow_scalar(i, 2));
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_LIST(r, 0, 1, 4, 9);
    em_release(r);
    r = EMT_OK(em_div_scalar(i, 2));   /* true division */
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 0.5, 1, 1.5);
    em_release(r);
    r = EMT_OK(em_mul_scalar(i, 2.5));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 2.5, 5, 7.5);
    em_release(r);
    r = EMT_OK(em_sub_scalar(i, 5));
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_LIST(r, 0, -4, -3, -2);
    em_release(r);
    em_release(i);
}

/* ---- every dtype ---------------------------------------------------------------------------- */

static const em_dtype numeric_dtypes[] = {EM_F32, EM_F64, EM_F16, EM_BF16, EM_I64, EM_I32, EM_U8};
#define N_NUMERIC (sizeof numeric_dtypes / sizeof numeric_dtypes[0])

Test(ops, add_and_mul_work_in_every_numeric_dtype)
{
    for (size_t k = 0; k < N_NUMERIC; k++) {
        em_dtype dt = numeric_dtypes[k];
        EMT_CONTEXT("dtype %s", em_dtype_name(dt));
        em_tensor *a = emt_tensor(dt, EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
        em_tensor *b = emt_tensor(dt, EM_SHAPE(2, 2), EMT_VALS(5, 6, 7, 8));
        check_binary(em_add, a, b, dt, 0, EMT_VALS(6, 8, 10, 12), 4);
        check_binary(em_mul, a, b, dt, 0, EMT_VALS(5, 12, 21, 32), 4);
        check_binary(em_sub, b, a, dt, 0, EMT_VALS(4, 4, 4, 4), 4);
        check_binary(em_maximum, a, b, dt, 0, EMT_VALS(5, 6, 7, 8), 4);
        check_binary(em_minimum, a, b, dt, 0, EMT_VALS(1, 2, 3, 4), 4);
        check_binary(em_lt, a, b, EM_BOOL, 0, EMT_VALS(1, 1, 1, 1), 4);
        check_binary(em_eq, a, a, EM_BOOL, 0, EMT_VALS(1, 1, 1, 1), 4);
        em_tensor *two = emt_tensor(dt, EM_SHAPE(2, 2), EMT_VALS(2, 2, 2, 2));
        check_binary(em_pow, a, two, dt, 0, EMT_VALS(1, 4, 9, 16), 4);
        em_release(two);
        check_unary(em_neg, a, dt, 0,
                    dt == EM_U8 ? EMT_VALS(255, 254, 253, 252) : EMT_VALS(-1, -2, -3, -4), 4);
        check_unary(em_abs, a, dt, 0, EMT_VALS(1, 2, 3, 4), 4);
        check_unary(em_relu, a, dt, 0, EMT_VALS(1, 2, 3, 4), 4);
        em_release(b);
        em_release(a);
    }
}

Test(ops, division_works_in_every_float_dtype)
{
    const em_dtype fl[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (size_t k = 0; k < 4; k++) {
        EMT_CONTEXT("dtype %s", em_dtype_name(fl[k]));
        em_tensor *a = emt_tensor(fl[k], EM_SHAPE(3), EMT_VALS(1, 3, -6));
        em_tensor *b = emt_tensor(fl[k], EM_SHAPE(3), EMT_VALS(4, 2, 8));
        check_binary(em_div, a, b, fl[k], 0, EMT_VALS(0.25, 1.5, -0.75), 3);
        check_unary(em_exp, a, fl[k], emt_tol(fl[k]),
                    EMT_VALS(2.718281828459045, 20.085536923187668, 0.0024787521766663585), 3);
        em_release(b);
        em_release(a);
    }
}

Test(ops, sum_works_in_every_dtype)
{
    for (size_t k = 0; k < N_NUMERIC; k++) {
        em_dtype dt = numeric_dtypes[k];
        EMT_CONTEXT("dtype %s", em_dtype_name(dt));
        em_tensor *a = emt_tensor(dt, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
        em_tensor *s = EMT_OK(em_sum(a, 1, (const int[]){1}, false));
        EMT_ASSERT_DTYPE(s, em_dtype_is_float(dt) ? dt : EM_I64);
        EMT_ASSERT_LIST(s, 0, 6, 15);
        em_tensor *m = EMT_OK(em_amax(a, 1, (const int[]){0}, false));
        EMT_ASSERT_DTYPE(m, dt);
        EMT_ASSERT_LIST(m, 0, 4, 5, 6);
        em_tensor *am = EMT_OK(em_argmax(a, 1, false));
        EMT_ASSERT_LIST(am, 0, 2, 2);
        em_release(am);
        em_release(m);
        em_release(s);
        em_release(a);
    }
    emt_no_context();
    em_tensor *b = emt_tensor(EM_BOOL, EM_SHAPE(4), EMT_VALS(1, 0, 1, 1));
    em_tensor *s = EMT_OK(em_sum_all(b));
    EMT_ASSERT_DTYPE(s, EM_I64);
    cr_assert_eq(em_item(s), 3.0);
    em_release(s);
    em_release(b);
}

/* ---- broadcasting --------------------------------------------------------------------------- */

Test(ops, broadcast_a_row_over_a_matrix)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = F32(EM_SHAPE(3), EMT_VALS(10, 20, 30));
    em_tensor *r = EMT_OK(em_add(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(r, 0, 11, 22, 33, 14, 25, 36);
    em_release(r);
    r = EMT_OK(em_sub(b, a));   /* either side */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(r, 0, 9, 18, 27, 6, 15, 24);
    em_release(r);
    em_release(b);
    em_release(a);
}

Test(ops, broadcast_a_column_against_a_row)
{
    em_tensor *a = F32(EM_SHAPE(2, 1), EMT_VALS(1, 2));
    em_tensor *b = F32(EM_SHAPE(1, 3), EMT_VALS(10, 20, 30));
    em_tensor *r = EMT_OK(em_add(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(r, 0, 11, 21, 31, 12, 22, 32);
    em_release(r);
    em_release(b);
    em_release(a);
}

Test(ops, broadcast_a_zero_dim_tensor)
{
    em_tensor *a = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *s = EMT_OK(em_scalar(5, NULL));
    em_tensor *r = EMT_OK(em_add(a, s));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(3));
    EMT_ASSERT_LIST(r, 0, 6, 7, 8);
    em_release(r);
    r = EMT_OK(em_mul(s, s));
    EMT_ASSERT_SHAPE(r, EM_SCALAR);
    cr_assert_eq(em_item(r), 25.0);
    em_release(r);
    em_release(s);
    em_release(a);
}

Test(ops, broadcast_two_size_one_dims_into_three_dims)
{
    /* a[i][0][k] = 4 i + k, b[j][0] = 100 j: (a + b)[i][j][k] = 4 i + k + 100 j */
    em_tensor *a0 = EMT_OK(em_arange(0, 8, 1, &(em_opts){.dtype = EM_F32}));
    em_tensor *a = EMT_OK(em_reshape(a0, EM_SHAPE(2, 1, 4)));
    em_tensor *b = F32(EM_SHAPE(3, 1), EMT_VALS(0, 100, 200));
    em_tensor *r = EMT_OK(em_add(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3, 4));
    double want[24];
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                want[(i * 3 + j) * 4 + k] = 4 * i + k + 100 * j;
    EMT_ASSERT_VALUES(r, 0, want, 24);
    em_release(r);
    em_release(b);
    em_release(a);
    em_release(a0);
}

/* ---- type promotion (torch.result_type) ----------------------------------------------------- */

/* dtype of op(tensor of dtype x with `nd` dims, tensor of dtype y with `nd2` dims). */
static em_dtype result_of(binary_fn op, em_dtype x, int nd, em_dtype y, int nd2)
{
    em_tensor *a = emt_tensor(x, nd, nd ? (const int64_t[]){2} : NULL, EMT_VALS(1, 1));
    em_tensor *b = emt_tensor(y, nd2, nd2 ? (const int64_t[]){2} : NULL, EMT_VALS(1, 1));
    em_tensor *r = EMT_OK(op(a, b));
    em_dtype dt = em_dtype_of(r);
    em_release(r);
    em_release(b);
    em_release(a);
    return dt;
}

#define EXPECT_PROMOTION(op, x, nd, y, nd2, want)                                             \
    do {                                                                                    \
        em_dtype got_ = result_of(op, x, nd, y, nd2);                                       \
        cr_expect_eq(got_, want, "%s(%s%s, %s%s) gave %s, expected %s", #op,                \
                     em_dtype_name(x), nd ? "[2]" : " 0-dim", em_dtype_name(y),             \
                     nd2 ? "[2]" : " 0-dim", em_dtype_name(got_), em_dtype_name(want));     \
    } while (0)

Test(ops, promotion_between_dimensioned_tensors_follows_pytorch)
{
    EXPECT_PROMOTION(em_add, EM_I32, 1, EM_I64, 1, EM_I64);
    EXPECT_PROMOTION(em_add, EM_U8, 1, EM_I32, 1, EM_I32);
    EXPECT_PROMOTION(em_add, EM_I64, 1, EM_F32, 1, EM_F32);
    EXPECT_PROMOTION(em_add, EM_F32, 1, EM_F64, 1, EM_F64);
    EXPECT_PROMOTION(em_add, EM_F16, 1, EM_BF16, 1, EM_F32);
    EXPECT_PROMOTION(em_add, EM_BOOL, 1, EM_BOOL, 1, EM_BOOL);
    EXPECT_PROMOTION(em_add, EM_BOOL, 1, EM_U8, 1, EM_U8);
    EXPECT_PROMOTION(em_mul, EM_F16, 1, EM_F16, 1, EM_F16);
    EXPECT_PROMOTION(em_mul, EM_I32, 1, EM_F16, 1, EM_F16);
    EXPECT_PROMOTION(em_div, EM_I64, 1, EM_I64, 1, EM_F32);
    EXPECT_PROMOTION(em_div, EM_I32, 1, EM_F64, 1, EM_F64);
}

Test(ops, promotion_with_zero_dim_tensors_follows_result_type)
{
    /* a 0-dim tensor of a higher category wins ... */
    EXPECT_PROMOTION(em_add, EM_I64, 1, EM_F64, 0, EM_F64);
    EXPECT_PROMOTION(em_add, EM_BOOL, 1, EM_I32, 0, EM_I32);
    /* ... but within one category the dimensioned operand keeps its dtype */
    EXPECT_PROMOTION(em_add, EM_F32, 1, EM_F64, 0, EM_F32);
    EXPECT_PROMOTION(em_add, EM_I32, 1, EM_I64, 0, EM_I32);
    EXPECT_PROMOTION(em_add, EM_F16, 1, EM_F64, 0, EM_F16);
    /* two 0-dim tensors promote normally */
    EXPECT_PROMOTION(em_add, EM_F32, 0, EM_F64, 0, EM_F64);
}

Test(ops, bool_plus_bool_is_logical_or)
{
    em_tensor *a = emt_tensor(EM_BOOL, EM_SHAPE(4), EMT_VALS(1, 0, 1, 0));
    em_tensor *b = emt_tensor(EM_BOOL, EM_SHAPE(4), EMT_VALS(1, 1, 0, 0));
    check_binary(em_add, a, b, EM_BOOL, 0, EMT_VALS(1, 1, 1, 0), 4);
    check_binary(em_mul, a, b, EM_BOOL, 0, EMT_VALS(1, 0, 0, 0), 4);
    em_release(b);
    em_release(a);
}

Test(ops, promotion_values_are_computed_in_the_result_type)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *h = EMT_OK(em_scalar(0.5, &(em_opts){.dtype = EM_F64}));
    em_tensor *r = EMT_OK(em_add(i, h));
    EMT_ASSERT_DTYPE(r, EM_F64);
    EMT_ASSERT_LIST(r, 0, 1.5, 2.5);
    em_release(r);
    em_tensor *f = F32(EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *third = EMT_OK(em_scalar(1.0 / 3, &(em_opts){.dtype = EM_F64}));
    r = EMT_OK(em_add(f, third));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, (double)(1.0f + (float)(1.0 / 3)), (double)(2.0f + (float)(1.0 / 3)));
    em_release(r);
    em_tensor *x = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(7, -7));
    em_tensor *y = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(2, 2));
    r = EMT_OK(em_div(x, y));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 3.5, -3.5);
    em_release(r);
    em_release(y);
    em_release(x);
    em_release(third);
    em_release(f);
    em_release(h);
    em_release(i);
}

Test(ops, scalar_arguments_never_raise_the_dtype_within_a_category)
{
    em_tensor *i32 = emt_tensor(EM_I32, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *r = EMT_OK(em_add_scalar(i32, 2.5));   /* int + float number -> default float */
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 3.5, 4.5);
    em_release(r);
    r = EMT_OK(em_add_scalar(i32, 3));   /* a whole number keeps int32 */
    EMT_ASSERT_DTYPE(r, EM_I32);
    EMT_ASSERT_LIST(r, 0, 4, 5);
    em_release(r);

    em_tensor *u8 = emt_tensor(EM_U8, EM_SHAPE(2), EMT_VALS(3, 250));
    r = EMT_OK(em_add_scalar(u8, 3));
    EMT_ASSERT_DTYPE(r, EM_U8);
    EMT_ASSERT_LIST(r, 0, 6, 253);
    em_release(r);
    r = EMT_OK(em_add_scalar(u8, 10));   /* wraps modulo 256 */
    EMT_ASSERT_LIST(r, 0, 13, 4);
    em_release(r);

    em_tensor *h = emt_tensor(EM_F16, EM_SHAPE(1), EMT_VALS(1));
    r = EMT_OK(em_add_scalar(h, 2.5));
    EMT_ASSERT_DTYPE(r, EM_F16);
    EMT_ASSERT_LIST(r, 0, 3.5);
    em_release(r);

    em_tensor *b = emt_tensor(EM_BOOL, EM_SHAPE(2), EMT_VALS(1, 0));
    r = EMT_OK(em_add_scalar(b, 1));   /* bool + int number -> int64 */
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_LIST(r, 0, 2, 1);
    em_release(r);
    r = EMT_OK(em_mul_scalar(b, 2.5));   /* bool * float number -> float32 */
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 2.5, 0);
    em_release(r);
    em_release(b);
    em_release(h);
    em_release(u8);
    em_release(i32);
}

/* ---- reductions ----------------------------------------------------------------------------- */

/* x[b][j][k] = 12 b + 4 j + k as float32, shape [2, 3, 4] */
static em_tensor *cube(void)
{
    em_tensor *a = EMT_OK(em_arange(0, 24, 1, &(em_opts){.dtype = EM_F32}));
    em_tensor *r = EMT_OK(em_reshape(a, EM_SHAPE(2, 3, 4)));
    em_release(a);
    return r;
}

Test(ops, sum_over_one_axis)
{
    em_tensor *x = cube();
    em_tensor *s0 = EMT_OK(em_sum(x, 1, (const int[]){0}, false));
    EMT_ASSERT_SHAPE(s0, EM_SHAPE(3, 4));
    EMT_ASSERT_DTYPE(s0, EM_F32);
    EMT_ASSERT_LIST(s0, 0, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34);
    em_tensor *s1 = EMT_OK(em_sum(x, 1, (const int[]){1}, false));
    EMT_ASSERT_SHAPE(s1, EM_SHAPE(2, 4));
    EMT_ASSERT_LIST(s1, 0, 12, 15, 18, 21, 48, 51, 54, 57);
    em_tensor *s2 = EMT_OK(em_sum(x, 1, (const int[]){-1}, false));
    EMT_ASSERT_SHAPE(s2, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(s2, 0, 6, 22, 38, 54, 70, 86);
    em_release(s2);
    em_release(s1);
    em_release(s0);
    em_release(x);
}

Test(ops, sum_over_several_axes_and_all_axes)
{
    em_tensor *x = cube();
    em_tensor *s = EMT_OK(em_sum(x, 2, (const int[]){2, 0}, false));
    EMT_ASSERT_SHAPE(s, EM_SHAPE(3));
    EMT_ASSERT_LIST(s, 0, 60, 92, 124);
    em_tensor *all = EMT_OK(em_sum_all(x));
    EMT_ASSERT_SHAPE(all, EM_SCALAR);
    cr_assert_eq(em_item(all), 276.0);
    em_tensor *all2 = EMT_OK(em_sum(x, 0, NULL, false));
    EMT_ASSERT_SHAPE(all2, EM_SCALAR);
    cr_assert_eq(em_item(all2), 276.0);
    em_tensor *all3 = EMT_OK(em_sum(x, 3, (const int[]){0, 1, 2}, false));
    EMT_ASSERT_SHAPE(all3, EM_SCALAR);
    cr_assert_eq(em_item(all3), 276.0);
    em_release(all3);
    em_release(all2);
    em_release(all);
    em_release(s);
    em_release(x);
}

Test(ops, sum_with_keepdim_keeps_size_one_dims)
{
    em_tensor *x = cube();
    em_tensor *s = EMT_OK(em_sum(x, 1, (const int[]){1}, true));
    EMT_ASSERT_SHAPE(s, EM_SHAPE(2, 1, 4));
    EMT_ASSERT_LIST(s, 0, 12, 15, 18, 21, 48, 51, 54, 57);
    em_tensor *all = EMT_OK(em_sum(x, 0, NULL, true));
    EMT_ASSERT_SHAPE(all, EM_SHAPE(1, 1, 1));
    EMT_ASSERT_LIST(all, 0, 276);
    em_tensor *two = EMT_OK(em_sum(x, 2, (const int[]){0, 2}, true));
    EMT_ASSERT_SHAPE(two, EM_SHAPE(1, 3, 1));
    EMT_ASSERT_LIST(two, 0, 60, 92, 124);
    em_release(two);
    em_release(all);
    em_release(s);
    em_release(x);
}

Test(ops, sum_of_int32_gives_int64)
{
    em_tensor *a = emt_tensor(EM_I32, EM_SHAPE(2, 2),
                              EMT_VALS(2147483647, 2147483647, 1, -1));
    em_tensor *s = EMT_OK(em_sum(a, 1, (const int[]){0}, false));
    EMT_ASSERT_DTYPE(s, EM_I64);
    EMT_ASSERT_LIST(s, 0, 2147483648.0, 2147483646.0);
    em_tensor *all = EMT_OK(em_sum_all(a));
    EMT_ASSERT_DTYPE(all, EM_I64);
    cr_assert_eq(em_item(all), 4294967294.0);
    em_tensor *u = emt_tensor(EM_U8, EM_SHAPE(3), EMT_VALS(200, 200, 200));
    em_tensor *su = EMT_OK(em_sum_all(u));
    EMT_ASSERT_DTYPE(su, EM_I64);
    cr_assert_eq(em_item(su), 600.0);
    em_release(su);
    em_release(u);
    em_release(all);
    em_release(s);
    em_release(a);
}

Test(ops, sum_of_float16_accumulates_in_float32)
{
    /* 4096 ones: float16 accumulation sticks at 2048; float32 accumulation gives 4096 */
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(4096), &(em_opts){.dtype = EM_F16}));
    em_tensor *s = EMT_OK(em_sum_all(a));
    EMT_ASSERT_DTYPE(s, EM_F16);
    cr_assert_eq(em_item(s), 4096.0, "float16 sum of 4096 ones is %g", em_item(s));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(4096), &(em_opts){.dtype = EM_BF16}));
    em_tensor *sb = EMT_OK(em_sum_all(b));
    cr_assert_eq(em_item(sb), 4096.0, "bfloat16 sum of 4096 ones is %g", em_item(sb));
    em_release(sb);
    em_release(b);
    em_release(s);
    em_release(a);
}

Test(ops, amax_over_axes)
{
    em_tensor *x = cube();
    em_tensor *m1 = EMT_OK(em_amax(x, 1, (const int[]){1}, false));
    EMT_ASSERT_SHAPE(m1, EM_SHAPE(2, 4));
    EMT_ASSERT_LIST(m1, 0, 8, 9, 10, 11, 20, 21, 22, 23);
    em_tensor *m01 = EMT_OK(em_amax(x, 2, (const int[]){0, 1}, true));
    EMT_ASSERT_SHAPE(m01, EM_SHAPE(1, 1, 4));
    EMT_ASSERT_LIST(m01, 0, 20, 21, 22, 23);
    em_tensor *all = EMT_OK(em_amax(x, 0, NULL, false));
    EMT_ASSERT_SHAPE(all, EM_SCALAR);
    cr_assert_eq(em_item(all), 23.0);
    em_tensor *neg = F32(EM_SHAPE(2, 2), EMT_VALS(-5, -3, -4, -9));
    em_tensor *mn = EMT_OK(em_amax(neg, 1, (const int[]){1}, false));
    EMT_ASSERT_LIST(mn, 0, -3, -4);
    em_tensor *nan = F32(EM_SHAPE(2, 3), EMT_VALS(1, NAN, 3, 4, 5, 6));
    em_tensor *mnan = EMT_OK(em_amax(nan, 1, (const int[]){1}, false));
    EMT_ASSERT_LIST(mnan, 0, NAN, 6);
    em_release(mnan);
    em_release(nan);
    em_release(mn);
    em_release(neg);
    em_release(all);
    em_release(m01);
    em_release(m1);
    em_release(x);
}

Test(ops, argmax_picks_the_first_index_on_ties)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 3, 3, 5, 5, 0));
    em_tensor *r1 = EMT_OK(em_argmax(a, 1, false));
    EMT_ASSERT_DTYPE(r1, EM_I64);
    EMT_ASSERT_SHAPE(r1, EM_SHAPE(2));
    EMT_ASSERT_LIST(r1, 0, 1, 0);
    em_tensor *r0 = EMT_OK(em_argmax(a, 0, false));
    EMT_ASSERT_LIST(r0, 0, 1, 1, 0);
    em_tensor *rk = EMT_OK(em_argmax(a, -1, true));
    EMT_ASSERT_SHAPE(rk, EM_SHAPE(2, 1));
    EMT_ASSERT_LIST(rk, 0, 1, 0);
    em_tensor *n = F32(EM_SHAPE(4), EMT_VALS(1, NAN, 5, NAN));
    em_tensor *rn = EMT_OK(em_argmax(n, 0, false));
    EMT_ASSERT_SHAPE(rn, EM_SCALAR);
    cr_assert_eq(em_item(rn), 1.0, "argmax with NaN gave %g; NaN counts as the maximum",
                 em_item(rn));
    em_tensor *same = F32(EM_SHAPE(5), EMT_VALS(2, 2, 2, 2, 2));
    em_tensor *rs = EMT_OK(em_argmax(same, 0, false));
    cr_assert_eq(em_item(rs), 0.0);
    em_release(rs);
    em_release(same);
    em_release(rn);
    em_release(n);
    em_release(rk);
    em_release(r0);
    em_release(r1);
    em_release(a);
}

Test(ops, mean_divides_the_sum_by_the_count)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *m = EMT_OK(em_mean(a, 1, (const int[]){1}, false));
    EMT_ASSERT_DTYPE(m, EM_F32);
    EMT_ASSERT_LIST(m, 0, 2, 5);
    em_tensor *mk = EMT_OK(em_mean(a, 1, (const int[]){0}, true));
    EMT_ASSERT_SHAPE(mk, EM_SHAPE(1, 3));
    EMT_ASSERT_LIST(mk, 0, 2.5, 3.5, 4.5);
    em_tensor *all = EMT_OK(em_mean_all(a));
    EMT_ASSERT_SHAPE(all, EM_SCALAR);
    cr_assert_eq(em_item(all), 3.5);
    em_tensor *d = emt_tensor(EM_F64, EM_SHAPE(3), EMT_VALS(1, 2, 4));
    em_tensor *md = EMT_OK(em_mean_all(d));
    EMT_ASSERT_DTYPE(md, EM_F64);
    EMT_ASSERT_LIST(md, 1e-15, 7.0 / 3);
    em_release(md);
    em_release(d);
    em_release(all);
    em_release(mk);
    em_release(m);
    em_release(a);
}

/* ---- matmul --------------------------------------------------------------------------------- */

Test(ops, matmul_of_two_matrices)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = F32(EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154);
    em_release(r);
    em_release(b);
    em_release(a);
}

Test(ops, matmul_broadcasts_batch_dims)
{
    em_tensor *a = F32(EM_SHAPE(2, 2, 3), EMT_VALS(1, 2, 3, 4, 5, 6, -1, 0, 1, 2, 2, 2));
    em_tensor *b = F32(EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
    em_tensor *r = EMT_OK(em_matmul(a, b));   /* [2, 2, 3] @ [3, 2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2, 2));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154, 4, 4, 54, 60);
    em_release(r);

    em_tensor *a1 = F32(EM_SHAPE(1, 2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b2 = F32(EM_SHAPE(2, 3, 2), EMT_VALS(7, 8, 9, 10, 11, 12, 1, 0, 0, 1, 1, 1));
    r = EMT_OK(em_matmul(a1, b2));   /* [1, 2, 3] @ [2, 3, 2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2, 2));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154, 4, 5, 10, 11);
    em_release(r);

    em_tensor *a4 = EMT_OK(em_reshape(a, EM_SHAPE(2, 1, 2, 3)));
    r = EMT_OK(em_matmul(a4, b2));   /* [2, 1, 2, 3] @ [2, 3, 2] -> [2, 2, 2, 2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2, 2, 2));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154, 4, 5, 10, 11, 4, 4, 54, 60, 0, 1, 4, 4);
    em_release(r);
    em_release(a4);
    em_release(b2);
    em_release(a1);
    em_release(b);
    em_release(a);
}

Test(ops, matmul_with_vectors_drops_their_dims)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = F32(EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
    em_tensor *v = F32(EM_SHAPE(3), EMT_VALS(1, 0, -1));
    em_tensor *r = EMT_OK(em_matmul(v, b));   /* [3] @ [3, 2] -> [2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2));
    EMT_ASSERT_LIST(r, 0, -4, -4);
    em_release(r);
    r = EMT_OK(em_matmul(a, v));   /* [2, 3] @ [3] -> [2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2));
    EMT_ASSERT_LIST(r, 0, -2, -2);
    em_release(r);
    em_tensor *w = F32(EM_SHAPE(3), EMT_VALS(4, 5, 6));
    em_tensor *x = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    r = EMT_OK(em_matmul(x, w));   /* dot product: 0-dim */
    EMT_ASSERT_SHAPE(r, EM_SCALAR);
    cr_assert_eq(em_item(r), 32.0);
    em_release(r);
    em_tensor *a3 = EMT_OK(em_reshape(a, EM_SHAPE(1, 2, 3)));
    r = EMT_OK(em_matmul(a3, v));   /* [1, 2, 3] @ [3] -> [1, 2] */
    EMT_ASSERT_SHAPE(r, EM_SHAPE(1, 2));
    EMT_ASSERT_LIST(r, 0, -2, -2);
    em_release(r);
    em_release(a3);
    em_release(x);
    em_release(w);
    em_release(v);
    em_release(b);
    em_release(a);
}

Test(ops, matmul_of_transposed_views_equals_matmul_of_copies)
{
    /* at = a^T stored transposed: em_t(at) has a's values with strides [1, 2] */
    em_tensor *at = F32(EM_SHAPE(3, 2), EMT_VALS(1, 4, 2, 5, 3, 6));
    em_tensor *bt = F32(EM_SHAPE(2, 3), EMT_VALS(7, 9, 11, 8, 10, 12));
    em_tensor *a = EMT_OK(em_t(at));
    em_tensor *b = EMT_OK(em_t(bt));
    cr_assert_not(em_is_contiguous(a));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154);
    em_tensor *ac = EMT_OK(em_contiguous(a));
    em_tensor *r2 = EMT_OK(em_matmul(ac, b));
    EMT_ASSERT_LIST(r2, 0, 58, 64, 139, 154);
    em_release(r2);
    em_release(ac);
    em_release(r);
    em_release(b);
    em_release(a);
    em_release(bt);
    em_release(at);
}

Test(ops, matmul_of_int64_is_exact)
{
    em_tensor *a = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(1000000, 2, 3, 4));
    em_tensor *b = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(1000000, 0, 1, -1));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_LIST(r, 0, 1000000000002.0, -2, 3000004, -4);
    em_release(r);
    em_release(b);
    em_release(a);
}

Test(ops, matmul_of_odd_sizes_matches_a_reference)
{
    /* small integers keep every float32 product and sum exact, so the check is exact */
    enum { M = 37, K = 53, N = 29 };
    static double av[M * K], bv[K * N], want[M * N];
    for (int i = 0; i < M * K; i++)
        av[i] = (i * 7 + 3) % 11 - 5;
    for (int i = 0; i < K * N; i++)
        bv[i] = (i * 5 + 1) % 9 - 4;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += av[i * K + k] * bv[k * N + j];
            want[i * N + j] = s;
        }
    const em_dtype dts[] = {EM_F32, EM_F64, EM_I64, EM_I32};
    for (size_t d = 0; d < 4; d++) {
        EMT_CONTEXT("dtype %s", em_dtype_name(dts[d]));
        em_tensor *a = emt_tensor(dts[d], EM_SHAPE(M, K), av);
        em_tensor *b = emt_tensor(dts[d], EM_SHAPE(K, N), bv);
        em_tensor *r = EMT_OK(em_matmul(a, b));
        EMT_ASSERT_SHAPE(r, EM_SHAPE(M, N));
        EMT_ASSERT_VALUES(r, 0, want, M * N);
        em_release(r);
        em_release(b);
        em_release(a);
    }
}

/* ---- gather / scatter_add ------------------------------------------------------------------- */

Test(ops, gather_along_dim_1_and_dim_0)
{
    em_tensor *a = F32(EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
    em_tensor *i1 = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, 0, 1, 0));
    em_tensor *r = EMT_OK(em_gather(a, 1, i1));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2));
    EMT_ASSERT_DTYPE(r, EM_F32);
    EMT_ASSERT_LIST(r, 0, 1, 1, 4, 3);
    em_release(r);
    em_tensor *i0 = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, 1, 1, 0));
    r = EMT_OK(em_gather(a, 0, i0));
    EMT_ASSERT_LIST(r, 0, 1, 4, 3, 2);
    em_release(r);
    /* an index smaller than the input: out has the index's shape */
    em_tensor *b = EMT_OK(em_arange(0, 12, 1, NULL));
    em_tensor *b2 = EMT_OK(em_reshape(b, EM_SHAPE(3, 4)));
    em_tensor *is = emt_tensor(EM_I64, EM_SHAPE(2, 3), EMT_VALS(2, 0, 1, 1, 2, 0));
    r = EMT_OK(em_gather(b2, 0, is));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 3));
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_LIST(r, 0, 8, 1, 6, 4, 9, 2);
    em_release(r);
    r = EMT_OK(em_gather(b2, -1, is));
    EMT_ASSERT_LIST(r, 0, 2, 0, 1, 5, 6, 4);
    em_release(r);
    em_release(is);
    em_release(b2);
    em_release(b);
    em_release(i0);
    em_release(i1);
    em_release(a);
}

Test(ops, scatter_add_along_dim_0_accumulates_duplicates)
{
    /* the torch.scatter_add_ documentation example */
    em_tensor *src = EMT_OK(em_ones(EM_SHAPE(2, 5), NULL));
    em_tensor *index = emt_tensor(EM_I64, EM_SHAPE(1, 5), EMT_VALS(0, 1, 2, 0, 0));
    em_tensor *z = EMT_OK(em_zeros(EM_SHAPE(3, 5), NULL));
    em_tensor *r = EMT_OK(em_scatter_add(z, 0, index, src));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(3, 5));
    EMT_ASSERT_LIST(r, 0, 1, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0);
    em_release(r);
    em_tensor *index2 = emt_tensor(EM_I64, EM_SHAPE(2, 5), EMT_VALS(0, 1, 2, 0, 0, 0, 1, 2, 2, 2));
    r = EMT_OK(em_scatter_add(z, 0, index2, src));
    EMT_ASSERT_LIST(r, 0, 2, 0, 0, 1, 1, 0, 2, 0, 0, 0, 0, 0, 2, 1, 1);
    em_release(r);
    EMT_ASSERT_LIST(z, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);   /* a is not modified */
    cr_assert_eq(em_tensor_version(z), 0);
    em_release(index2);
    em_release(z);
    em_release(index);
    em_release(src);
}

Test(ops, scatter_add_along_dim_1)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(0, 0, 0, 10, 10, 10));
    em_tensor *index = emt_tensor(EM_I64, EM_SHAPE(2, 3), EMT_VALS(0, 0, 2, 1, 1, 1));
    em_tensor *src = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *r = EMT_OK(em_scatter_add(a, 1, index, src));
    EMT_ASSERT_LIST(r, 0, 3, 0, 3, 10, 25, 10);
    em_release(r);
    em_release(src);
    em_release(index);
    em_release(a);
}

/* ---- composites ----------------------------------------------------------------------------- */

Test(ops, softmax_rows_sum_to_one)
{
    em_tensor *a = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 1, 1, 1));
    em_tensor *s = EMT_OK(em_softmax(a, 1));
    EMT_ASSERT_DTYPE(s, EM_F32);
    EMT_ASSERT_SHAPE(s, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(s, TOL, 0.09003057317038046, 0.24472847105479767, 0.6652409557748219,
                    1.0 / 3, 1.0 / 3, 1.0 / 3);
    em_tensor *rows = EMT_OK(em_sum(s, 1, (const int[]){1}, false));
    EMT_ASSERT_LIST(rows, TOL, 1, 1);
    em_tensor *s0 = EMT_OK(em_softmax(a, 0));
    EMT_ASSERT_LIST(s0, TOL, 0.5, 0.7310585786300049, 0.8807970779778823, 0.5,
                    0.2689414213699951, 0.11920292202211755);
    em_tensor *big = F32(EM_SHAPE(2), EMT_VALS(1000, 0));
    em_tensor *sb = EMT_OK(em_softmax(big, 0));
    EMT_ASSERT_LIST(sb, 0, 1, 0);
    em_release(sb);
    em_release(big);
    em_release(s0);
    em_release(rows);
    em_release(s);
    em_release(a);
}

Test(ops, log_softmax_equals_log_of_softmax_and_stays_finite)
{
    em_tensor *a = F32(EM_SHAPE(1, 3), EMT_VALS(1, 2, 3));
    em_tensor *ls = EMT_OK(em_log_softmax(a, 1));
    EMT_ASSERT_LIST(ls, TOL, -2.4076059644443806, -1.4076059644443806, -0.4076059644443806);
    em_tensor *s = EMT_OK(em_softmax(a, -1));
    em_tensor *l = EMT_OK(em_log(s));
    double *want = emt_values(l);
    EMT_ASSERT_VALUES(ls, TOL, want, 3);
    free(want);
    em_tensor *big = F32(EM_SHAPE(2), EMT_VALS(1000, 0));
    em_tensor *lb = EMT_OK(em_log_softmax(big, 0));
    EMT_ASSERT_LIST(lb, 0, 0, -1000);
    em_release(lb);
    em_release(big);
    em_release(l);
    em_release(s);
    em_release(ls);
    em_release(a);
}

Test(ops, softmax_of_integers_is_float32)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(0, 0));
    em_tensor *s = EMT_OK(em_softmax(i, 0));
    EMT_ASSERT_DTYPE(s, EM_F32);
    EMT_ASSERT_LIST(s, 0, 0.5, 0.5);
    em_release(s);
    em_release(i);
}

Test(ops, linear_with_and_without_bias)
{
    em_tensor *x = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *w = F32(EM_SHAPE(4, 3), EMT_VALS(1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1));
    em_tensor *b = F32(EM_SHAPE(4), EMT_VALS(0.5, -1, 2, 0));
    em_tensor *y = EMT_OK(em_linear(x, w, b));
    EMT_ASSERT_SHAPE(y, EM_SHAPE(2, 4));
    EMT_ASSERT_DTYPE(y, EM_F32);
    EMT_ASSERT_LIST(y, 0, 1.5, 1, 5, 6, 4.5, 4, 8, 15);
    em_tensor *y0 = EMT_OK(em_linear(x, w, NULL));
    EMT_ASSERT_SHAPE(y0, EM_SHAPE(2, 4));
    EMT_ASSERT_LIST(y0, 0, 1, 2, 3, 6, 4, 5, 6, 15);
    em_tensor *x3 = EMT_OK(em_reshape(x, EM_SHAPE(2, 1, 3)));
    em_tensor *y3 = EMT_OK(em_linear(x3, w, b));
    EMT_ASSERT_SHAPE(y3, EM_SHAPE(2, 1, 4));
    EMT_ASSERT_LIST(y3, 0, 1.5, 1, 5, 6, 4.5, 4, 8, 15);
    em_tensor *x1 = F32(EM_SHAPE(3), EMT_VALS(1, 1, 1));
    em_tensor *y1 = EMT_OK(em_linear(x1, w, b));
    EMT_ASSERT_SHAPE(y1, EM_SHAPE(4));
    EMT_ASSERT_LIST(y1, 0, 1.5, 0, 3, 3);
    em_release(y1);
    em_release(x1);
    em_release(y3);
    em_release(x3);
    em_release(y0);
    em_release(y);
    em_release(b);
    em_release(w);
    em_release(x);
}

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

/* ---- more layouts and dtypes for matmul ----------------------------------------------------- */

Test(ops, matmul_reads_narrowed_expanded_and_size_one_operands)
{
    /* a: columns 1..3 of a [2, 5] matrix (row stride 5) */
    em_tensor *wide = F32(EM_SHAPE(2, 5), EMT_VALS(0, 1, 2, 3, 0, 0, 4, 5, 6, 0));
    em_tensor *a = EMT_OK(em_narrow(wide, 1, 1, 3));
    em_tensor *b = F32(EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154);
    em_release(r);
    /* b: rows of a [3, 1] column broadcast to [3, 2] (stride 0) */
    em_tensor *col = F32(EM_SHAPE(3, 1), EMT_VALS(1, 2, 3));
    em_tensor *bx = EMT_OK(em_expand(col, EM_SHAPE(3, 2)));
    r = EMT_OK(em_matmul(a, bx));
    EMT_ASSERT_LIST(r, 0, 14, 14, 32, 32);
    em_release(r);
    /* a: one row repeated (row stride 0) */
    em_tensor *row = F32(EM_SHAPE(1, 3), EMT_VALS(1, 0, -1));
    em_tensor *ax = EMT_OK(em_expand(row, EM_SHAPE(2, 3)));
    r = EMT_OK(em_matmul(ax, b));
    EMT_ASSERT_LIST(r, 0, -4, -4, -4, -4);
    em_release(r);
    /* outer product of a [3, 1] column (strides [1, 1]) and a [1, 2] row */
    em_tensor *v = F32(EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *vc = EMT_OK(em_unsqueeze(v, 1));
    em_tensor *w = F32(EM_SHAPE(1, 2), EMT_VALS(10, -1));
    r = EMT_OK(em_matmul(vc, w));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(3, 2));
    EMT_ASSERT_LIST(r, 0, 10, -1, 20, -2, 30, -3);
    em_release(r);
    /* [1, 3] @ [3, 1]: a 1x1 result from a transposed row */
    em_tensor *vt = EMT_OK(em_t(vc));
    r = EMT_OK(em_matmul(vt, vc));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(1, 1));
    EMT_ASSERT_LIST(r, 0, 14);
    em_release(r);
    em_release(vt);
    em_release(w);
    em_release(vc);
    em_release(v);
    em_release(ax);
    em_release(row);
    em_release(bx);
    em_release(col);
    em_release(b);
    em_release(a);
    em_release(wide);
}

Test(ops, matmul_of_transposed_batches_with_a_shared_right_operand)
{
    /* x [2, 3, 2] -> a = x^T per batch [2, 2, 3] (strides [6, 1, 2]); b [3, 2] shared */
    em_tensor *x = F32(EM_SHAPE(2, 3, 2), EMT_VALS(1, 4, 2, 5, 3, 6, -1, 2, 0, 2, 1, 2));
    em_tensor *a = EMT_OK(em_transpose(x, 1, 2));
    em_tensor *b = F32(EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2, 2));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154, 4, 4, 54, 60);
    em_release(r);
    /* and a shared left operand against transposed right batches */
    em_tensor *l = F32(EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *y = F32(EM_SHAPE(2, 2, 3), EMT_VALS(7, 9, 11, 8, 10, 12, 1, 0, 1, 0, 1, 1));
    em_tensor *bt = EMT_OK(em_transpose(y, -1, -2));
    r = EMT_OK(em_matmul(l, bt));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(2, 2, 2));
    EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154, 4, 5, 10, 11);
    em_release(r);
    em_release(bt);
    em_release(y);
    em_release(l);
    em_release(b);
    em_release(a);
    em_release(x);
}

Test(ops, matmul_in_half_precision_bool_and_uint8)
{
    const em_dtype dts[] = {EM_F16, EM_BF16, EM_U8};
    for (size_t d = 0; d < 3; d++) {
        EMT_CONTEXT("dtype %s", em_dtype_name(dts[d]));
        em_tensor *a = emt_tensor(dts[d], EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
        em_tensor *b = emt_tensor(dts[d], EM_SHAPE(3, 2), EMT_VALS(7, 8, 9, 10, 11, 12));
        em_tensor *r = EMT_OK(em_matmul(a, b));
        EMT_ASSERT_DTYPE(r, dts[d]);
        /* every value fits 8 significant bits, so bfloat16 holds them exactly too */
        EMT_ASSERT_LIST(r, 0, 58, 64, 139, 154);
        em_release(r);
        em_release(b);
        em_release(a);
    }
    emt_no_context();
    em_tensor *p = emt_tensor(EM_BOOL, EM_SHAPE(2, 2), EMT_VALS(1, 0, 0, 0));
    em_tensor *q = emt_tensor(EM_BOOL, EM_SHAPE(2, 2), EMT_VALS(0, 1, 1, 1));
    em_tensor *r = EMT_OK(em_matmul(p, q));   /* or of ands */
    EMT_ASSERT_DTYPE(r, EM_BOOL);
    EMT_ASSERT_LIST(r, 0, 0, 1, 0, 0);
    em_release(r);
    em_release(q);
    em_release(p);
    em_tensor *u = emt_tensor(EM_U8, EM_SHAPE(1, 2), EMT_VALS(200, 100));
    em_tensor *w = emt_tensor(EM_U8, EM_SHAPE(2, 1), EMT_VALS(1, 1));
    r = EMT_OK(em_matmul(u, w));   /* 300 wraps to 44, as PyTorch's uint8 */
    EMT_ASSERT_LIST(r, 0, 44);
    em_release(r);
    em_release(w);
    em_release(u);
}

Test(ops, matmul_of_large_float_matrices_matches_a_reference)
{
    enum { M = 130, K = 300, N = 70 };
    static double av[M * K], bv[K * N], want[M * N];
    for (int i = 0; i < M * K; i++)
        av[i] = (i * 13 + 5) % 17 - 8;
    for (int i = 0; i < K * N; i++)
        bv[i] = (i * 11 + 2) % 7 - 3;
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int k = 0; k < K; k++)
                s += av[i * K + k] * bv[k * N + j];
            want[i * N + j] = s;
        }
    em_tensor *a = emt_tensor(EM_F32, EM_SHAPE(M, K), av);
    em_tensor *b = emt_tensor(EM_F32, EM_SHAPE(K, N), bv);
    em_tensor *r = EMT_OK(em_matmul(a, b));
    EMT_ASSERT_VALUES(r, 0, want, M * N);
    /* the same product through transposed storage of both operands */
    em_tensor *at = EMT_OK(em_t(a)), *bt = EMT_OK(em_t(b));
    em_tensor *atc = EMT_OK(em_contiguous(at)), *btc = EMT_OK(em_contiguous(bt));
    em_tensor *a2 = EMT_OK(em_t(atc)), *b2 = EMT_OK(em_t(btc));
    em_tensor *r2 = EMT_OK(em_matmul(a2, b2));
    EMT_ASSERT_VALUES(r2, 0, want, M * N);
    em_release(r2);
    em_release(b2);
    em_release(a2);
    em_release(btc);
    em_release(atc);
    em_release(bt);
    em_release(at);
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
