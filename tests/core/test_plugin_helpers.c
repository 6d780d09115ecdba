/* tests/core/test_plugin_helpers.c - the header-only helpers plugin.h gives backends:
 * em_strided_init (the dimension-merging walk of elementwise kernels) and em_kcall_check (the
 * call-shape check every kernel opens with). EM_PLUGIN_DEFINE is exercised by every plugin the
 * loader tests load. */
#include <criterion/criterion.h>
#include <string.h>

#include <ember/plugin.h>

#include "helpers.h"

TestSuite(plugin_helpers, .init = emt_setup, .fini = emt_teardown);

/* Coalesces operands of shape sh[nd] whose strides are st[k]. */
static em_strided walk(int nd, const int64_t *sh, int nops, const int64_t st[][EM_MAX_DIMS])
{
    const int64_t *ps[EM_STRIDED_MAX_OPS] = {0};
    for (int k = 0; k < nops; k++)
        ps[k] = st[k];
    em_strided it;
    cr_assert_eq(em_strided_init(&it, nd, sh, nops, ps), EM_OK, "%s", em_last_error());
    return it;
}

Test(plugin_helpers, contiguous_operands_become_one_run)
{
    const int64_t sh[3] = {2, 3, 4}, st[2][EM_MAX_DIMS] = {{12, 4, 1}, {12, 4, 1}};
    em_strided it = walk(3, sh, 2, st);
    cr_assert_eq(it.ndim, 1);
    cr_assert_eq(it.numel, 24);
    cr_assert_eq(it.shape[0], 24);
    cr_assert_eq(it.strides[0][0], 1);
    cr_assert_eq(it.strides[1][0], 1);
}

Test(plugin_helpers, a_transposed_operand_keeps_both_dims)
{
    const int64_t sh[2] = {3, 4}, st[2][EM_MAX_DIMS] = {{4, 1}, {1, 3}};
    em_strided it = walk(2, sh, 2, st);
    cr_assert_eq(it.ndim, 2);
    cr_assert_eq(it.shape[0], 3);
    cr_assert_eq(it.shape[1], 4);
    cr_assert_eq(it.strides[1][0], 1);
    cr_assert_eq(it.strides[1][1], 3);
}

Test(plugin_helpers, size_one_dims_drop_and_a_broadcast_row_merges_only_where_it_can)
{
    /* out [2, 1, 3, 4] contiguous; input broadcast along dim 0 (stride 0). */
    const int64_t sh[4] = {2, 1, 3, 4}, st[2][EM_MAX_DIMS] = {{12, 12, 4, 1}, {0, 99, 4, 1}};
    em_strided it = walk(4, sh, 2, st);
    cr_assert_eq(it.ndim, 2, "ndim %d", it.ndim);
    cr_assert_eq(it.shape[0], 2);
    cr_assert_eq(it.shape[1], 12);
    cr_assert_eq(it.strides[0][0], 12);
    cr_assert_eq(it.strides[1][0], 0);
    cr_assert_eq(it.strides[1][1], 1);
}

Test(plugin_helpers, a_single_element_is_one_dim_of_stride_zero)
{
    const int64_t sh[2] = {1, 1}, st[1][EM_MAX_DIMS] = {{5, 7}};
    em_strided it = walk(2, sh, 1, st);
    cr_assert_eq(it.ndim, 1);
    cr_assert_eq(it.numel, 1);
    cr_assert_eq(it.shape[0], 1);
    cr_assert_eq(it.strides[0][0], 0);
}

Test(plugin_helpers, too_many_operands_is_an_error_and_an_empty_walk)
{
    const int64_t sh[1] = {4}, st[1] = {1};
    const int64_t *ps[EM_STRIDED_MAX_OPS + 1] = {st, st, st, st, st};
    em_strided it;
    cr_assert_eq(em_strided_init(&it, 1, sh, EM_STRIDED_MAX_OPS + 1, ps), EM_ERR_INVALID);
    cr_assert_eq(it.ndim, 0);
    cr_assert_eq(it.numel, 0);
    cr_assert(strstr(em_last_error(), "operands"), "%s", em_last_error());
}

Test(plugin_helpers, kcall_check_accepts_the_counts_and_names_the_op_otherwise)
{
    int op = em_op_lookup("gather");
    cr_assert_geq(op, 0, "%s", em_last_error());
    em_kcall c = {sizeof c, op, 0, 2, 1, NULL, NULL, 1, NULL};
    cr_assert_eq(em_kcall_check(&c, "cpu", 2, 1, 1), EM_OK);
    cr_assert_eq(em_kcall_check(&c, "cpu", 2, 1, 0), EM_OK, "extra attributes are fine");
    cr_assert_eq(em_kcall_check(&c, "cpu", 3, 1, 1), EM_ERR_INVALID);
    cr_assert(strstr(em_last_error(), "cpu: gather: expected 3 inputs"), "%s", em_last_error());
    cr_assert_eq(em_kcall_check(&c, "cpu", 2, 1, 2), EM_ERR_INVALID, "missing attribute");
}
