/* tests/core/test_ops_linalg.c - matmul and linear of ops.h against hand-computed values
 * and references: vectors, batches, transposed, narrowed and expanded operands, half
 * precision, bool, uint8 and int64.
 *
 * Expected values are what PyTorch 2.x prints for the same expressions.
 */
#include "helpers.h"

TestSuite(ops, .init = emt_setup, .fini = emt_teardown);

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


/* ---- linear --------------------------------------------------------------------------------- */

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
