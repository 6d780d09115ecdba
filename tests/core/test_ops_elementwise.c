/* tests/core/test_ops_elementwise.c - the elementwise ops of ops.h against hand-computed
 * values: unary and binary math, comparisons and where, scalar operands, every numeric
 * dtype (sum included), broadcasting and PyTorch's type promotion.
 *
 * Expected values are what PyTorch 2.x prints for the same expressions.
 */
#include "helpers.h"

TestSuite(ops, .init = emt_setup, .fini = emt_teardown);

#define PI 3.14159265358979323846

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
