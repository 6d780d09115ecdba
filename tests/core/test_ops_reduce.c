/* tests/core/test_ops_reduce.c - the reductions (sum, amax, argmax, mean), gather and
 * scatter_add, and softmax/log_softmax of ops.h against hand-computed values.
 *
 * Expected values are what PyTorch 2.x prints for the same expressions.
 */
#include "helpers.h"

TestSuite(ops, .init = emt_setup, .fini = emt_teardown);

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
