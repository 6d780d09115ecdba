/* tests/core/test_tensor_views.c - views and writes through the public API, following the
 * tensor section of the PyTorch basics tutorial: in-place ops and the version counter,
 * reshape/view/transpose/permute/narrow/slice/select/squeeze/expand sharing storage,
 * contiguous and clone, and dtype casts.
 */
#include "helpers.h"

TestSuite(tensor, .init = emt_setup, .fini = emt_teardown);

/* ---- in place (t1.add_(5)) ------------------------------------------------------------------ */

Test(tensor, add_in_place_returns_the_same_tensor_and_bumps_the_version_once)
{
    em_manual_seed(0);
    em_tensor *t1 = EMT_OK(em_rand(EM_SHAPE(2, 3), NULL));
    double *before = emt_values(t1);
    uint64_t v0 = em_tensor_version(t1);
    cr_assert_eq(v0, 0, "a fresh tensor has version %llu, PyTorch starts at 0",
                 (unsigned long long)v0);
    em_tensor *five = EMT_OK(em_scalar(5, NULL));
    em_tensor *r = EMT_OK(em_add_(t1, five));
    cr_assert_eq(r, t1, "add_ must return its first argument");
    cr_assert_eq(em_tensor_version(t1), v0 + 1, "version went from %llu to %llu",
                 (unsigned long long)v0, (unsigned long long)em_tensor_version(t1));
    double want[6];
    for (int i = 0; i < 6; i++)
        want[i] = (double)((float)before[i] + 5.0f);
    EMT_ASSERT_VALUES(t1, 0, want, 6);
    em_release(r);   /* the returned reference is a new one */

    em_tensor *r2 = EMT_OK(em_add_scalar_(t1, 5));
    cr_assert_eq(r2, t1);
    cr_assert_eq(em_tensor_version(t1), v0 + 2);
    for (int i = 0; i < 6; i++)
        want[i] = (double)((float)want[i] + 5.0f);
    EMT_ASSERT_VALUES(t1, 0, want, 6);
    em_release(r2);
    free(before);
    em_release(five);
    em_release(t1);
}

Test(tensor, in_place_ops_through_a_view_bump_the_shared_version)
{
    em_tensor *base = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    em_tensor *row = EMT_OK(em_select(base, 0, 1));
    cr_assert_eq(em_tensor_version(base), 0);
    em_tensor *r = EMT_OK(em_mul_scalar_(row, 2));
    em_release(r);
    cr_assert_eq(em_tensor_version(base), 1);
    cr_assert_eq(em_tensor_version(row), 1);
    r = EMT_OK(em_fill_(row, 4));
    em_release(r);
    cr_assert_eq(em_tensor_version(base), 2);
    EMT_ASSERT_LIST(base, 0, 0, 0, 0, 4, 4, 4);
    /* an out-of-place op does not touch the version */
    em_tensor *n = EMT_OK(em_neg(base));
    cr_assert_eq(em_tensor_version(base), 2);
    cr_assert_eq(em_tensor_version(n), 0);
    em_release(n);
    em_release(row);
    em_release(base);
}

Test(tensor, in_place_ops_broadcast_the_right_operand_into_a_strided_view)
{
    em_tensor *base = EMT_OK(em_zeros(EM_SHAPE(3, 2), &(em_opts){.dtype = EM_I64}));
    em_tensor *tt = EMT_OK(em_t(base));   /* [2, 3] view, strides [1, 2] */
    em_tensor *b = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *r = EMT_OK(em_add_(tt, b));
    cr_assert_eq(r, tt);
    em_release(r);
    EMT_ASSERT_LIST(tt, 0, 1, 2, 3, 1, 2, 3);
    EMT_ASSERT_LIST(base, 0, 1, 1, 2, 2, 3, 3);
    cr_assert_eq(em_tensor_version(base), 1);
    em_release(b);
    em_release(tt);
    em_release(base);
}

Test(tensor, copy_into_a_transposed_view_writes_the_base_in_transposed_order)
{
    em_tensor *base = EMT_OK(em_zeros(EM_SHAPE(3, 2), NULL));
    em_tensor *tt = EMT_OK(em_t(base));
    em_tensor *src = emt_tensor(EM_I64, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *r = EMT_OK(em_copy_(tt, src));
    cr_assert_eq(r, tt);
    em_release(r);
    EMT_ASSERT_DTYPE(base, EM_F32);
    EMT_ASSERT_LIST(base, 0, 1, 4, 2, 5, 3, 6);
    em_release(src);
    em_release(tt);
    em_release(base);
}

Test(tensor, zero_and_fill_write_a_non_contiguous_column)
{
    em_tensor *base = emt_tensor(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *col = EMT_OK(em_select(base, 1, 1));
    em_tensor *r = EMT_OK(em_zero_(col));
    cr_assert_eq(r, col);
    em_release(r);
    EMT_ASSERT_LIST(base, 0, 1, 0, 3, 4, 0, 6);
    r = EMT_OK(em_fill_(col, -2.5));
    em_release(r);
    EMT_ASSERT_LIST(base, 0, 1, -2.5, 3, 4, -2.5, 6);
    em_release(col);
    em_release(base);
}

/* ---- views ---------------------------------------------------------------------------------- */

/* arange(n) as int64 reshaped to the given shape (a contiguous base for view tests). */
static em_tensor *iota(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    em_tensor *a = EMT_OK(em_arange(0, (double)n, 1, NULL));
    em_tensor *r = EMT_OK(em_reshape(a, ndim, shape));
    em_release(a);
    return r;
}

Test(tensor, reshape_of_a_contiguous_tensor_is_a_view)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *r = EMT_OK(em_reshape(base, EM_SHAPE(3, 2)));
    cr_assert(em_same_storage(base, r));
    EMT_ASSERT_SHAPE(r, EM_SHAPE(3, 2));
    EMT_ASSERT_STRIDES(r, EM_SHAPE(2, 1));
    EMT_ASSERT_LIST(r, 0, 0, 1, 2, 3, 4, 5);
    em_tensor *inferred = EMT_OK(em_reshape(base, EM_SHAPE(-1, 2, 1)));
    EMT_ASSERT_SHAPE(inferred, EM_SHAPE(3, 2, 1));
    cr_assert(em_same_storage(base, inferred));
    em_tensor *flat = EMT_OK(em_flatten(base, 0, -1));
    EMT_ASSERT_SHAPE(flat, EM_SHAPE(6));
    cr_assert(em_same_storage(base, flat));
    em_release(flat);
    em_release(inferred);
    em_release(r);
    em_release(base);
}

Test(tensor, view_shares_storage_and_writes_show_in_the_base)
{
    em_tensor *base = iota(EM_SHAPE(6));
    em_tensor *v = EMT_OK(em_view(base, EM_SHAPE(2, 3)));
    cr_assert(em_same_storage(base, v));
    EMT_ASSERT_SHAPE(v, EM_SHAPE(2, 3));
    EMT_ASSERT_STRIDES(v, EM_SHAPE(3, 1));
    em_tensor *row = EMT_OK(em_select(v, 0, 1));
    em_tensor *r = EMT_OK(em_fill_(row, 9));
    em_release(r);
    EMT_ASSERT_LIST(base, 0, 0, 1, 2, 9, 9, 9);
    em_release(row);
    em_release(v);
    em_release(base);
}

Test(tensor, transpose_swaps_shape_and_strides)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *t = EMT_OK(em_transpose(base, 0, 1));
    cr_assert(em_same_storage(base, t));
    EMT_ASSERT_SHAPE(t, EM_SHAPE(3, 2));
    EMT_ASSERT_STRIDES(t, EM_SHAPE(1, 3));
    cr_assert_not(em_is_contiguous(t));
    EMT_ASSERT_LIST(t, 0, 0, 3, 1, 4, 2, 5);
    em_tensor *t2 = EMT_OK(em_t(base));
    EMT_ASSERT_STRIDES(t2, EM_SHAPE(1, 3));
    em_tensor *neg = EMT_OK(em_transpose(base, -1, -2));
    EMT_ASSERT_SHAPE(neg, EM_SHAPE(3, 2));
    em_release(neg);
    em_release(t2);
    em_release(t);
    em_release(base);
}

Test(tensor, permute_reorders_shape_and_strides)
{
    em_tensor *base = iota(EM_SHAPE(2, 3, 4));
    em_tensor *p = EMT_OK(em_permute(base, 3, (const int[]){2, 0, 1}));
    cr_assert(em_same_storage(base, p));
    EMT_ASSERT_SHAPE(p, EM_SHAPE(4, 2, 3));
    EMT_ASSERT_STRIDES(p, EM_SHAPE(1, 12, 4));
    /* p[k][i][j] = base[i][j][k] = 12 i + 4 j + k; check a few through select */
    em_tensor *s = EMT_OK(em_select(p, 0, 3));   /* k = 3: [2, 3] */
    EMT_ASSERT_LIST(s, 0, 3, 7, 11, 15, 19, 23);
    em_release(s);
    em_release(p);
    em_release(base);
}

Test(tensor, narrow_offsets_into_the_same_storage, .init = emt_pin_cpu)
{
    em_tensor *base = iota(EM_SHAPE(4, 3));
    em_tensor *rows = EMT_OK(em_narrow(base, 0, 1, 2));
    cr_assert(em_same_storage(base, rows));
    EMT_ASSERT_SHAPE(rows, EM_SHAPE(2, 3));
    EMT_ASSERT_STRIDES(rows, EM_SHAPE(3, 1));
    cr_assert_eq(em_storage_offset(rows), 3);
    EMT_ASSERT_LIST(rows, 0, 3, 4, 5, 6, 7, 8);
    cr_assert_eq((char *)em_data_ptr(rows), (char *)em_data_ptr(base) + 3 * sizeof(int64_t));

    em_tensor *cols = EMT_OK(em_narrow(base, 1, 1, 2));
    EMT_ASSERT_SHAPE(cols, EM_SHAPE(4, 2));
    EMT_ASSERT_STRIDES(cols, EM_SHAPE(3, 1));
    cr_assert_eq(em_storage_offset(cols), 1);
    cr_assert_not(em_is_contiguous(cols));
    EMT_ASSERT_LIST(cols, 0, 1, 2, 4, 5, 7, 8, 10, 11);
    em_release(cols);
    em_release(rows);
    em_release(base);
}

Test(tensor, slice_with_a_step_multiplies_the_stride)
{
    em_tensor *base = iota(EM_SHAPE(10));
    em_tensor *s = EMT_OK(em_slice(base, 0, 1, 8, 3));
    cr_assert(em_same_storage(base, s));
    EMT_ASSERT_SHAPE(s, EM_SHAPE(3));
    EMT_ASSERT_STRIDES(s, EM_SHAPE(3));
    cr_assert_eq(em_storage_offset(s), 1);
    EMT_ASSERT_LIST(s, 0, 1, 4, 7);
    /* Python rules: negative start counts from the end, end is clamped */
    em_tensor *tail = EMT_OK(em_slice(base, 0, -3, 100, 1));
    EMT_ASSERT_LIST(tail, 0, 7, 8, 9);
    em_tensor *none = EMT_OK(em_slice(base, 0, 6, 2, 1));
    EMT_ASSERT_SHAPE(none, EM_SHAPE(0));
    em_release(none);
    em_release(tail);
    em_release(s);
    em_release(base);
}

Test(tensor, select_drops_the_dim)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *col = EMT_OK(em_select(base, 1, 2));
    cr_assert(em_same_storage(base, col));
    EMT_ASSERT_SHAPE(col, EM_SHAPE(2));
    EMT_ASSERT_STRIDES(col, EM_SHAPE(3));
    cr_assert_eq(em_storage_offset(col), 2);
    EMT_ASSERT_LIST(col, 0, 2, 5);
    em_tensor *last = EMT_OK(em_select(base, 0, -1));
    EMT_ASSERT_LIST(last, 0, 3, 4, 5);
    em_tensor *one = EMT_OK(em_select(last, 0, 1));
    EMT_ASSERT_SHAPE(one, EM_SCALAR);
    cr_assert_eq(em_item(one), 4.0);
    em_release(one);
    em_release(last);
    em_release(col);
    em_release(base);
}

Test(tensor, unsqueeze_and_squeeze_add_and_drop_size_one_dims)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *u0 = EMT_OK(em_unsqueeze(base, 0));
    em_tensor *u1 = EMT_OK(em_unsqueeze(base, 1));
    em_tensor *ul = EMT_OK(em_unsqueeze(base, -1));
    EMT_ASSERT_SHAPE(u0, EM_SHAPE(1, 2, 3));
    EMT_ASSERT_STRIDES(u0, EM_SHAPE(6, 3, 1));
    EMT_ASSERT_SHAPE(u1, EM_SHAPE(2, 1, 3));
    EMT_ASSERT_STRIDES(u1, EM_SHAPE(3, 3, 1));
    EMT_ASSERT_SHAPE(ul, EM_SHAPE(2, 3, 1));
    EMT_ASSERT_STRIDES(ul, EM_SHAPE(3, 1, 1));
    cr_assert(em_same_storage(base, u1));
    cr_assert(em_is_contiguous(u1));

    em_tensor *s = EMT_OK(em_squeeze(u1, 1));
    EMT_ASSERT_SHAPE(s, EM_SHAPE(2, 3));
    EMT_ASSERT_STRIDES(s, EM_SHAPE(3, 1));
    cr_assert(em_same_storage(base, s));
    /* squeezing a dim that is not 1 leaves the shape alone, as in PyTorch */
    em_tensor *keep = EMT_OK(em_squeeze(u1, 0));
    EMT_ASSERT_SHAPE(keep, EM_SHAPE(2, 1, 3));
    em_tensor *u = EMT_OK(em_unsqueeze(u0, 3));   /* [1, 2, 3, 1] */
    em_tensor *all = EMT_OK(em_squeeze_all(u));
    EMT_ASSERT_SHAPE(all, EM_SHAPE(2, 3));
    EMT_ASSERT_LIST(all, 0, 0, 1, 2, 3, 4, 5);
    em_release(all);
    em_release(u);
    em_release(keep);
    em_release(s);
    em_release(ul);
    em_release(u1);
    em_release(u0);
    em_release(base);
}

Test(tensor, expand_broadcasts_with_zero_strides)
{
    em_tensor *base = iota(EM_SHAPE(3, 1));
    em_tensor *e = EMT_OK(em_expand(base, EM_SHAPE(2, 3, 4)));
    cr_assert(em_same_storage(base, e));
    EMT_ASSERT_SHAPE(e, EM_SHAPE(2, 3, 4));
    EMT_ASSERT_STRIDES(e, EM_SHAPE(0, 1, 0));
    cr_assert_not(em_is_contiguous(e));
    double want[24];
    for (int i = 0; i < 24; i++)
        want[i] = (i / 4) % 3;
    EMT_ASSERT_VALUES(e, 0, want, 24);
    em_tensor *keep = EMT_OK(em_expand(base, EM_SHAPE(-1, 4)));
    EMT_ASSERT_SHAPE(keep, EM_SHAPE(3, 4));
    EMT_ASSERT_STRIDES(keep, EM_SHAPE(1, 0));
    em_release(keep);
    em_release(e);
    em_release(base);
}

Test(tensor, view_of_a_transposed_tensor_fails_while_reshape_copies)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *t = EMT_OK(em_t(base));
    EMT_ASSERT_FAILS(em_view(t, EM_SHAPE(6)), "not compatible with the input's strides");
    em_tensor *r = EMT_OK(em_reshape(t, EM_SHAPE(6)));
    cr_assert_not(em_same_storage(base, r), "reshape of a transposed tensor must copy");
    cr_assert(em_is_contiguous(r));
    EMT_ASSERT_LIST(r, 0, 0, 3, 1, 4, 2, 5);
    /* a view that strides do allow works on the transposed tensor: [3, 2] -> [3, 1, 2], with
     * the strides PyTorch's computeStride gives (the size-1 dim gets 2 * 3) */
    em_tensor *ok = EMT_OK(em_view(t, EM_SHAPE(3, 1, 2)));
    cr_assert(em_same_storage(base, ok));
    EMT_ASSERT_STRIDES(ok, EM_SHAPE(1, 6, 3));
    EMT_ASSERT_LIST(ok, 0, 0, 3, 1, 4, 2, 5);
    em_release(ok);
    em_release(r);
    em_release(t);
    em_release(base);
}

Test(tensor, contiguous_of_a_transposed_tensor_lays_out_the_new_order, .init = emt_pin_cpu)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *t = EMT_OK(em_t(base));
    em_tensor *c = EMT_OK(em_contiguous(t));
    cr_assert_not(em_same_storage(base, c));
    cr_assert(em_is_contiguous(c));
    EMT_ASSERT_SHAPE(c, EM_SHAPE(3, 2));
    EMT_ASSERT_STRIDES(c, EM_SHAPE(2, 1));
    /* the raw memory (not through em_copy_to_host, which makes things contiguous itself) */
    const int64_t *p = em_data_ptr(c);
    cr_assert_not_null(p, "%s", em_last_error());
    const int64_t want[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(p[i], want[i], "element %d is %lld, expected %lld", i, (long long)p[i],
                     (long long)want[i]);
    /* already contiguous: the same tensor, retained */
    em_tensor *same = EMT_OK(em_contiguous(base));
    cr_assert_eq(same, base);
    em_release(same);
    em_release(c);
    em_release(t);
    em_release(base);
}

Test(tensor, clone_is_an_independent_copy)
{
    em_tensor *base = emt_tensor(EM_F32, EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
    em_tensor *c = EMT_OK(em_clone(base));
    cr_assert_neq(c, base);
    cr_assert_not(em_same_storage(base, c));
    EMT_ASSERT_DTYPE(c, EM_F32);
    EMT_ASSERT_SHAPE(c, EM_SHAPE(2, 2));
    em_tensor *r = EMT_OK(em_fill_(c, 0));
    em_release(r);
    EMT_ASSERT_LIST(base, 0, 1, 2, 3, 4);
    EMT_ASSERT_LIST(c, 0, 0, 0, 0, 0);
    cr_assert_eq(em_tensor_version(base), 0);
    /* a clone of a view copies only the view's elements */
    em_tensor *col = EMT_OK(em_select(base, 1, 0));
    em_tensor *cc = EMT_OK(em_clone(col));
    EMT_ASSERT_SHAPE(cc, EM_SHAPE(2));
    EMT_ASSERT_LIST(cc, 0, 1, 3);
    em_release(cc);
    em_release(col);
    em_release(c);
    em_release(base);
}

/* ---- dtype casts ---------------------------------------------------------------------------- */

Test(tensor, to_dtype_truncates_floats_toward_zero)
{
    em_tensor *f = emt_tensor(EM_F32, EM_SHAPE(6), EMT_VALS(-2.7, -0.5, 0.5, 2.7, 3.99, -3.99));
    em_tensor *i = EMT_OK(em_to_dtype(f, EM_I64));
    EMT_ASSERT_DTYPE(i, EM_I64);
    EMT_ASSERT_SHAPE(i, EM_SHAPE(6));
    EMT_ASSERT_LIST(i, 0, -2, 0, 0, 2, 3, -3);
    em_tensor *i32 = EMT_OK(em_to_dtype(f, EM_I32));
    EMT_ASSERT_LIST(i32, 0, -2, 0, 0, 2, 3, -3);
    em_tensor *d = emt_tensor(EM_F64, EM_SHAPE(2), EMT_VALS(200.9, 7.2));
    em_tensor *u = EMT_OK(em_to_dtype(d, EM_U8));
    EMT_ASSERT_DTYPE(u, EM_U8);
    EMT_ASSERT_LIST(u, 0, 200, 7);
    em_release(u);
    em_release(d);
    em_release(i32);
    em_release(i);
    em_release(f);
}

Test(tensor, to_dtype_bool_is_nonzero)
{
    em_tensor *f = emt_tensor(EM_F32, EM_SHAPE(6), EMT_VALS(0, -0.0, 0.1, -3, NAN, INFINITY));
    em_tensor *b = EMT_OK(em_to_dtype(f, EM_BOOL));
    EMT_ASSERT_DTYPE(b, EM_BOOL);
    EMT_ASSERT_LIST(b, 0, 0, 0, 1, 1, 1, 1);
    uint8_t raw[6];
    cr_assert_eq(em_copy_to_host(b, raw, sizeof raw), EM_OK);
    for (int k = 0; k < 6; k++)
        cr_assert(raw[k] == 0 || raw[k] == 1, "bool byte %d holds %d", k, raw[k]);
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(3), EMT_VALS(0, 2, -1));
    em_tensor *bi = EMT_OK(em_to_dtype(i, EM_BOOL));
    EMT_ASSERT_LIST(bi, 0, 0, 1, 1);
    em_tensor *back = EMT_OK(em_to_dtype(bi, EM_F32));
    EMT_ASSERT_LIST(back, 0, 0, 1, 1);
    em_release(back);
    em_release(bi);
    em_release(i);
    em_release(b);
    em_release(f);
}

Test(tensor, to_dtype_round_trips_exact_values_through_float16_and_bfloat16)
{
    const double f16_exact[] = {0, 1, -2, 0.5, 1024, -0.125, 65504, 6.103515625e-05,
                                5.9604644775390625e-08};
    const double bf16_exact[] = {0, 1, -2, 0.5, 256, -0.0078125, 3.140625, -384, 1.5};
    int nf = (int)(sizeof f16_exact / sizeof f16_exact[0]);
    int nb = (int)(sizeof bf16_exact / sizeof bf16_exact[0]);
    int64_t sf = nf, sb = nb;

    em_tensor *a = emt_tensor(EM_F32, 1, &sf, f16_exact);
    em_tensor *h = EMT_OK(em_to_dtype(a, EM_F16));
    EMT_ASSERT_DTYPE(h, EM_F16);
    em_tensor *a2 = EMT_OK(em_to_dtype(h, EM_F32));
    EMT_ASSERT_VALUES(a2, 0, f16_exact, nf);

    em_tensor *b = emt_tensor(EM_F32, 1, &sb, bf16_exact);
    em_tensor *bh = EMT_OK(em_to_dtype(b, EM_BF16));
    EMT_ASSERT_DTYPE(bh, EM_BF16);
    em_tensor *b2 = EMT_OK(em_to_dtype(bh, EM_F64));
    EMT_ASSERT_VALUES(b2, 0, bf16_exact, nb);

    /* inexact values round to nearest: 0.1 -> 0.0999755859375 in f16, 0.10009765625 in bf16 */
    em_tensor *p = emt_tensor(EM_F32, EM_SHAPE(1), EMT_VALS(0.1));
    em_tensor *ph = EMT_OK(em_to_dtype(p, EM_F16));
    em_tensor *pb = EMT_OK(em_to_dtype(p, EM_BF16));
    EMT_ASSERT_LIST(ph, 0, 0.0999755859375);
    EMT_ASSERT_LIST(pb, 0, 0.10009765625);
    em_release(pb);
    em_release(ph);
    em_release(p);
    em_release(b2);
    em_release(bh);
    em_release(b);
    em_release(a2);
    em_release(h);
    em_release(a);
}

Test(tensor, to_dtype_to_the_same_dtype_returns_the_tensor_itself)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2), NULL));
    em_tensor *b = EMT_OK(em_to_dtype(a, EM_F32));
    cr_assert_eq(a, b);
    em_release(b);
    em_release(a);
}

Test(tensor, to_dtype_of_a_transposed_view_keeps_the_logical_order, .init = emt_pin_cpu)
{
    em_tensor *base = iota(EM_SHAPE(2, 3));
    em_tensor *t = EMT_OK(em_t(base));
    em_tensor *f = EMT_OK(em_to_dtype(t, EM_F64));
    EMT_ASSERT_SHAPE(f, EM_SHAPE(3, 2));
    const double *p = em_data_ptr(f);
    cr_assert_not_null(p);
    const double want[6] = {0, 3, 1, 4, 2, 5};
    for (int i = 0; i < 6; i++)
        cr_assert_eq(p[i], want[i], "element %d is %g, expected %g", i, p[i], want[i]);
    em_release(f);
    em_release(t);
    em_release(base);
}
