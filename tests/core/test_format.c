/* tests/core/test_format.c - em_tensor_str against strings printed by PyTorch 1.13 (repr). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <criterion/criterion.h>
#include <criterion/redirect.h>

#include "ember/ember.h"
#include "ember/plugin.h"

static void setup(void)
{
    setenv("EMBER_CONFIG", "", 0);     /* no user config, unless the test environment names one */
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    /* PyTorch's reprs of CPU tensors (no device='...' suffix), whatever EMBER_BACKEND says */
    cr_assert_eq(em_set_default_device(em_device_parse("cpu")), EM_OK, "%s", em_last_error());
}

/* Runs after the suite's setup (Criterion runs both). */
static void redirect(void)
{
    cr_redirect_stdout();
    cr_redirect_stderr();
}

static void teardown(void) { em_shutdown(); }

TestSuite(format, .init = setup, .fini = teardown);

/* Prints t, compares with PyTorch's repr and releases t. */
static void expect_repr(em_tensor *t, const char *want)
{
    cr_assert_not_null(t, "creating the tensor failed: %s", em_last_error());
    char *s = em_tensor_str(t);
    cr_assert_not_null(s, "em_tensor_str: %s", em_last_error());
    cr_expect_str_eq(s, want, "\ngot:\n%s\nwanted:\n%s", s, want);
    free(s);
    em_release(t);
}

static em_tensor *f32(const float *v, int ndim, const int64_t *shape)
{
    return em_tensor_from_data(v, EM_F32, ndim, shape, NULL);
}

static const em_opts k_f32 = {.dtype = EM_F32};

Test(format, integer_matrix_matches_pytorch)
{
    const int64_t v[] = {1, 2, 3, 4, 5, 6};
    expect_repr(em_tensor_from_data(v, EM_I64, EM_SHAPE(2, 3), NULL),
                "tensor([[1, 2, 3],\n        [4, 5, 6]])");
}

Test(format, whole_floats_print_with_a_trailing_point)
{
    const float v[] = {0, 1, 2};
    expect_repr(f32(v, EM_SHAPE(3)), "tensor([0., 1., 2.])");
}

Test(format, fractional_floats_print_four_decimals)
{
    const float v[] = {1.5f, 2.25f};
    expect_repr(f32(v, EM_SHAPE(2)), "tensor([1.5000, 2.2500])");
}

Test(format, negative_values_are_right_aligned_in_one_width)
{
    const float v[] = {-1.5f, 2.0f, 300.25f};
    expect_repr(f32(v, EM_SHAPE(3)), "tensor([ -1.5000,   2.0000, 300.2500])");
}

Test(format, tiny_values_switch_to_scientific_notation)
{
    const float v[] = {1e-5f, 1.0f};
    expect_repr(f32(v, EM_SHAPE(2)), "tensor([1.0000e-05, 1.0000e+00])");
}

Test(format, whole_floats_spanning_over_a_thousandfold_use_scientific_notation)
{
    const float v[] = {1.0f, 1e5f};
    expect_repr(f32(v, EM_SHAPE(2)), "tensor([1.0000e+00, 1.0000e+05])");
}

Test(format, nan_and_infinities_are_padded_to_the_finite_width)
{
    const float v[] = {NAN, 1.5f, INFINITY, -INFINITY};
    expect_repr(f32(v, EM_SHAPE(4)), "tensor([   nan, 1.5000,    inf,   -inf])");
}

Test(format, float64_shows_its_dtype)
{
    const double v[] = {1.5, 2.5};
    expect_repr(em_tensor_from_data(v, EM_F64, EM_SHAPE(2), NULL),
                "tensor([1.5000, 2.5000], dtype=torch.float64)");
}

Test(format, int32_shows_its_dtype_but_int64_does_not)
{
    const int32_t v[] = {1, 2, 3};
    expect_repr(em_tensor_from_data(v, EM_I32, EM_SHAPE(3), NULL),
                "tensor([1, 2, 3], dtype=torch.int32)");
}

Test(format, half_precision_shows_its_dtype)
{
    const uint16_t v[] = {em_f32_to_f16(1.0f), em_f32_to_f16(2.0f)};
    expect_repr(em_tensor_from_data(v, EM_F16, EM_SHAPE(2), NULL),
                "tensor([1., 2.], dtype=torch.float16)");
}

Test(format, bool_prints_true_and_false_aligned)
{
    const bool v[] = {true, false, true};
    expect_repr(em_tensor_from_data(v, EM_BOOL, EM_SHAPE(3), NULL),
                "tensor([ True, False,  True])");
}

Test(format, zero_dim_tensors_print_without_brackets)
{
    expect_repr(em_scalar(5.0, NULL), "tensor(5.)");
    const int64_t i = 5;
    expect_repr(em_tensor_from_data(&i, EM_I64, EM_SCALAR, NULL), "tensor(5)");
    const bool b = true;
    expect_repr(em_tensor_from_data(&b, EM_BOOL, EM_SCALAR, NULL), "tensor(True)");
}

Test(format, empty_tensors_show_shape_and_non_default_dtype)
{
    expect_repr(em_empty(EM_SHAPE(0), NULL), "tensor([])");
    expect_repr(em_empty(EM_SHAPE(0, 3), NULL), "tensor([], size=(0, 3))");
    expect_repr(em_empty(EM_SHAPE(0), &(em_opts){.dtype = EM_I64}),
                "tensor([], dtype=torch.int64)");
    expect_repr(em_empty(EM_SHAPE(2, 0), &(em_opts){.dtype = EM_BOOL}),
                "tensor([], size=(2, 0), dtype=torch.bool)");
}

Test(format, large_float_vector_is_summarised_with_edge_items)
{
    expect_repr(em_arange(0, 2000, 1, &k_f32),
                "tensor([0.0000e+00, 1.0000e+00, 2.0000e+00,  ..., 1.9970e+03, 1.9980e+03,\n"
                "        1.9990e+03])");
}

Test(format, large_integer_vector_is_summarised_with_edge_items)
{
    expect_repr(em_arange(0, 2000, 1, NULL), "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])");
}

Test(format, large_matrix_summarises_its_rows)
{
    em_tensor *a = em_arange(0, 3000, 1, &k_f32);
    em_tensor *m = em_reshape(a, EM_SHAPE(1000, 3));
    em_release(a);
    expect_repr(m, "tensor([[0.0000e+00, 1.0000e+00, 2.0000e+00],\n"
                   "        [3.0000e+00, 4.0000e+00, 5.0000e+00],\n"
                   "        [6.0000e+00, 7.0000e+00, 8.0000e+00],\n"
                   "        ...,\n"
                   "        [2.9910e+03, 2.9920e+03, 2.9930e+03],\n"
                   "        [2.9940e+03, 2.9950e+03, 2.9960e+03],\n"
                   "        [2.9970e+03, 2.9980e+03, 2.9990e+03]])");
}

Test(format, three_dim_tensor_separates_blocks_with_a_blank_line)
{
    em_tensor *a = em_arange(0, 24, 1, NULL);
    em_tensor *c = em_reshape(a, EM_SHAPE(2, 3, 4));
    em_release(a);
    expect_repr(c, "tensor([[[ 0,  1,  2,  3],\n"
                   "         [ 4,  5,  6,  7],\n"
                   "         [ 8,  9, 10, 11]],\n"
                   "\n"
                   "        [[12, 13, 14, 15],\n"
                   "         [16, 17, 18, 19],\n"
                   "         [20, 21, 22, 23]]])");
}

Test(format, long_rows_wrap_at_eighty_columns)
{
    float v[30];
    for (int i = 0; i < 30; i++)
        v[i] = (float)(i + 1) / 8;
    expect_repr(f32(v, EM_SHAPE(30)),
                "tensor([0.1250, 0.2500, 0.3750, 0.5000, 0.6250, 0.7500, 0.8750, 1.0000, 1.1250,\n"
                "        1.2500, 1.3750, 1.5000, 1.6250, 1.7500, 1.8750, 2.0000, 2.1250, 2.2500,\n"
                "        2.3750, 2.5000, 2.6250, 2.7500, 2.8750, 3.0000, 3.1250, 3.2500, 3.3750,\n"
                "        3.5000, 3.6250, 3.7500])");
}

Test(format, transposed_view_prints_in_logical_order)
{
    em_tensor *a = em_arange(0, 6, 1, &k_f32);
    em_tensor *m = em_reshape(a, EM_SHAPE(2, 3));
    em_tensor *t = em_t(m);
    em_release(a);
    em_release(m);
    expect_repr(t, "tensor([[0., 3.],\n        [1., 4.],\n        [2., 5.]])");
}

Test(format, requires_grad_is_shown_as_a_suffix)
{
    const float v[] = {1, 2, 3};
    expect_repr(em_tensor_from_data(v, EM_F32, EM_SHAPE(3), &(em_opts){.requires_grad = true}),
                "tensor([1., 2., 3.], requires_grad=True)");
    const double d[] = {0.1, 0.25};
    expect_repr(em_tensor_from_data(d, EM_F64, EM_SHAPE(2), &(em_opts){.requires_grad = true}),
                "tensor([0.1000, 0.2500], dtype=torch.float64, requires_grad=True)");
}

Test(format, suffixes_move_to_a_new_line_when_the_last_line_is_full)
{
    expect_repr(em_arange(0, 20, 1, &(em_opts){.dtype = EM_F32, .requires_grad = true}),
                "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11., 12., 13.,\n"
                "        14., 15., 16., 17., 18., 19.], requires_grad=True)");
    expect_repr(em_arange(0, 12, 1, &(em_opts){.dtype = EM_F64, .requires_grad = true}),
                "tensor([ 0.,  1.,  2.,  3.,  4.,  5.,  6.,  7.,  8.,  9., 10., 11.],\n"
                "       dtype=torch.float64, requires_grad=True)");
}

Test(format, null_tensor_returns_null_and_keeps_the_first_error)
{
    em_set_error(EM_ERR_INVALID, "first failure");
    cr_assert_null(em_tensor_str(NULL));
    cr_assert_str_eq(em_last_error(), "first failure");
}

Test(format, print_writes_the_repr_and_a_newline_to_stdout, .init = redirect)
{
    const float v[] = {1.5f, 2.25f};
    em_tensor *t = f32(v, EM_SHAPE(2));
    cr_assert_not_null(t, "%s", em_last_error());
    em_print(t);
    em_release(t);
    fflush(stdout);
    cr_assert_stdout_eq_str("tensor([1.5000, 2.2500])\n");
}
