/* tests/core/test_plugin_helpers.c - the header-only helpers plugin.h gives backends:
 * em_strided_init (the dimension-merging walk of elementwise kernels), em_kcall_check (the
 * call-shape check every kernel opens with, and EM_KCALL_CHECK, which returns its error),
 * em_device_index_check, em_kt_broadcasts, em_kt_rows, EM_KERNEL_BIND and em_register_kernels
 * (a backend's kernel table). EM_PLUGIN_DEFINE is exercised by every plugin the loader tests
 * load. */
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

Test(plugin_helpers, device_index_check_refuses_indices_past_the_count_naming_them)
{
    cr_assert_eq(em_device_index_check("mydev", "alloc", 0, 2), EM_OK);
    cr_assert_eq(em_device_index_check("mydev", "alloc", 1, 2), EM_OK);
    cr_assert_eq(em_device_index_check("mydev", "memory_stats", 2, 2), EM_ERR_DEVICE);
    cr_assert_str_eq(em_last_error(), "mydev: memory_stats: no device 2 (there are 2)");
    cr_assert_eq(em_device_index_check("mydev", "free", -1, 1), EM_ERR_DEVICE);
    cr_assert_str_eq(em_last_error(), "mydev: free: no device -1 (there is 1)");
    cr_assert_eq(em_device_index_check("mydev", "alloc", 0, 0), EM_ERR_DEVICE);
}

/* A contiguous-looking kernel tensor of shape sh[nd] (strides do not matter here). */
static em_ktensor kt(int nd, const int64_t *sh)
{
    em_ktensor t = {.ndim = nd, .numel = 1, .shape = sh};
    for (int d = 0; d < nd; d++)
        t.numel *= sh[d];
    return t;
}

Test(plugin_helpers, kt_broadcasts_follows_right_aligned_sizes_of_one_or_equal)
{
    const int64_t s23[] = {2, 3}, s3[] = {3}, s21[] = {2, 1}, s4[] = {4}, s123[] = {1, 2, 3};
    em_ktensor dst = kt(2, s23);
    em_ktensor ok[] = {kt(1, s3), kt(2, s21), kt(2, s23), kt(0, NULL)};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        cr_assert(em_kt_broadcasts(&dst, &ok[i]), "case %zu", i);
    em_ktensor bad[] = {kt(1, s4), kt(3, s123)};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_not(em_kt_broadcasts(&dst, &bad[i]), "case %zu", i);
}

Test(plugin_helpers, kt_rows_splits_a_shape_around_dim_and_refuses_a_dim_out_of_range)
{
    const int64_t s234[] = {2, 3, 4}, s03[] = {0, 3};
    int64_t rows = -1, len = -1, inner = -1;
    em_ktensor t = kt(3, s234);
    cr_assert_eq(em_kt_rows(&t, 1, "mydev", "softmax", &rows, &len, &inner), EM_OK);
    cr_assert(rows == 8 && len == 3 && inner == 4, "%lld %lld %lld", (long long)rows,
              (long long)len, (long long)inner);
    cr_assert_eq(em_kt_rows(&t, 2, "mydev", "softmax", &rows, &len, &inner), EM_OK);
    cr_assert(rows == 6 && len == 4 && inner == 1);
    em_ktensor scalar = kt(0, NULL);
    cr_assert_eq(em_kt_rows(&scalar, 0, "mydev", "softmax", &rows, &len, &inner), EM_OK);
    cr_assert(rows == 1 && len == 1 && inner == 1, "a 0-dim tensor is one row of one");
    em_ktensor empty = kt(2, s03);
    cr_assert_eq(em_kt_rows(&empty, 1, "mydev", "softmax", &rows, &len, &inner), EM_OK);
    cr_assert_eq(rows, 0);
    cr_assert_eq(em_kt_rows(&t, 3, "mydev", "log_softmax", &rows, &len, &inner),
                 EM_ERR_INVALID);
    cr_assert_str_eq(em_last_error(), "mydev: log_softmax: dim 3 out of range for 3 dims");
    cr_assert_eq(em_kt_rows(&t, -1, "mydev", "softmax", &rows, &len, &inner), EM_ERR_INVALID);
}

/* What a bound kernel passes on: its context, its call and the bound arguments. */
static int seen_scale, seen_offset;
static void *seen_ctx;
static int bound_impl(void *ctx, const em_kcall *c, int scale, int offset)
{
    seen_ctx = ctx;
    seen_scale = scale;
    seen_offset = offset;
    return c->nin * scale + offset;
}

EM_KERNEL_BIND(k_bound_3_1, bound_impl, 3, 1)

Test(plugin_helpers, kernel_bind_calls_the_implementation_with_the_bound_arguments)
{
    em_kernel_fn fn = k_bound_3_1;
    em_kcall c = {.struct_size = sizeof c, .nin = 2};
    int ctx;
    cr_assert_eq(fn(&ctx, &c), 7);
    cr_assert(seen_ctx == &ctx && seen_scale == 3 && seen_offset == 1);
}

/* A kernel that opens with EM_KCALL_CHECK and returns 42 when the call has its shape. */
static int checked_kernel(void *ctx, const em_kcall *c)
{
    (void)ctx;
    EM_KCALL_CHECK(c, "test", 2, 1, 1);
    return 42;
}

Test(plugin_helpers, kcall_check_macro_returns_the_error_from_the_kernel_or_goes_on)
{
    int op = em_op_lookup("gather");
    cr_assert_geq(op, 0, "%s", em_last_error());
    em_kcall good = {sizeof good, op, 0, 2, 1, NULL, NULL, 1, NULL};
    em_kcall bad = {sizeof bad, op, 0, 1, 1, NULL, NULL, 1, NULL};
    cr_assert_eq(checked_kernel(NULL, &good), 42);
    cr_assert_eq(checked_kernel(NULL, &bad), EM_ERR_INVALID);
    cr_assert(strstr(em_last_error(), "test: gather: expected 2 inputs"), "%s", em_last_error());
}

static int any_kernel(void *ctx, const em_kcall *c)
{
    (void)ctx, (void)c;
    return EM_OK;
}

Test(plugin_helpers, register_kernels_registers_each_row_and_stops_at_the_first_failure)
{
    const em_kernel_decl table[] = {
        {"neg", any_kernel, 0, EM_DTYPE_BIT(EM_F32)},
        {"no_such_op", any_kernel, 0, EM_DTYPE_BIT(EM_F32)},
        {"abs", any_kernel, 0, EM_DTYPE_BIT(EM_F32)},
    };
    cr_assert_eq(em_register_kernels(NULL, "testdev", table, 1), EM_OK, "%s", em_last_error());
    int rc = em_register_kernels(NULL, "testdev", table, 3);
    cr_assert_lt(rc, 0);
    cr_assert(strstr(em_last_error(), "no_such_op"), "%s", em_last_error());
}
