/* tests/core/test_errors.c - failures: the exact messages in em_last_error(), the status codes,
 * NULL-in/NULL-out chains that keep the first error, refused in-place writes, and calls made
 * before em_init (suite `uninitialised`, which has no init fixture).
 *
 * Messages name the op and the shapes, as PyTorch's do; the substrings asserted here are the
 * contract tools and users grep for.
 */
#include <pthread.h>

#include "helpers.h"

#include "ember/plugin.h"   /* em_attr, for em_op_call */

TestSuite(errors, .init = emt_setup, .fini = emt_teardown);

/* ---- shapes, dims, sizes -------------------------------------------------------------------- */

Test(errors, add_of_shapes_that_cannot_broadcast_names_both_shapes)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    em_tensor *b = EMT_OK(em_zeros(EM_SHAPE(4), NULL));
    EMT_ASSERT_FAILS(em_add(a, b), "add: shapes [2, 3] and [4] cannot broadcast");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    EMT_ASSERT_FAILS(em_add(b, a), "add: shapes [4] and [2, 3] cannot broadcast");
    EMT_ASSERT_FAILS(em_mul(a, b), "mul: shapes [2, 3] and [4] cannot broadcast");
    EMT_ASSERT_FAILS(em_lt(a, b), "lt: shapes [2, 3] and [4] cannot broadcast");
    em_tensor *c = EMT_OK(em_zeros(EM_SHAPE(3, 1, 2), NULL));
    EMT_ASSERT_FAILS(em_sub(a, c), "sub: shapes [2, 3] and [3, 1, 2] cannot broadcast");
    em_release(c);
    em_release(b);
    em_release(a);
}

Test(errors, a_dim_out_of_range_names_the_dim_and_the_valid_range)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    EMT_ASSERT_FAILS(em_sum(a, 1, (const int[]){3}, false),
                     "sum: dim 3 out of range for a 2-D tensor (expected -2 to 1)");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    EMT_ASSERT_FAILS(em_amax(a, 1, (const int[]){-3}, false), "amax: dim -3 out of range");
    EMT_ASSERT_FAILS(em_transpose(a, 0, 3), "transpose: dim 3 out of range");
    EMT_ASSERT_FAILS(em_softmax(a, 2), "softmax: dim 2 out of range");
    EMT_ASSERT_FAILS(em_argmax(a, -3, false), "argmax: dim -3 out of range");
    EMT_ASSERT_FAILS(em_select(a, 2, 0), "select: dim 2 out of range");
    EMT_ASSERT_FAILS(em_gather(a, 5, a), "gather: dim 5 out of range");
    cr_assert_eq(em_size(a, 2), -1);
    EMT_ASSERT_ERROR("em_size: dim 2 out of range");
    EMT_ASSERT_FAILS(em_sum(a, 2, (const int[]){1, -1}, false),
                     "sum: dim 1 appears multiple times in the list of dims");
    em_release(a);
}

Test(errors, negative_sizes_are_refused_with_the_shape)
{
    EMT_ASSERT_FAILS(em_zeros(EM_SHAPE(2, -1), NULL),
                     "em_zeros: negative size -1 in dim 1 of shape [2, -1]");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    EMT_ASSERT_FAILS(em_ones(EM_SHAPE(-3), NULL), "em_ones: negative size -3");
    EMT_ASSERT_FAILS(em_rand(EM_SHAPE(4, -2), NULL), "em_rand: negative size -2");
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(6), NULL));
    EMT_ASSERT_FAILS(em_reshape(a, EM_SHAPE(-2, 3)), "reshape: invalid size -2 in dim 0");
    EMT_ASSERT_FAILS(em_view(a, EM_SHAPE(-1, -1)), "view: only one dim can be -1");
    em_release(a);
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
    EMT_ASSERT_FAILS(em_zeros(9, nine, NULL), "em_zeros: 9 dims requested; Ember supports 0 to 8");
}

Test(errors, item_of_a_tensor_with_two_elements_fails)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2), NULL));
    double v = em_item(a);
    cr_assert(isnan(v), "em_item returned %g", v);
    EMT_ASSERT_ERROR("em_item: a tensor with 2 elements (shape [2]) cannot be converted to a "
                     "scalar");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    em_tensor *e = EMT_OK(em_zeros(EM_SHAPE(0), NULL));
    cr_assert(isnan(em_item(e)));
    EMT_ASSERT_ERROR("em_item: a tensor with 0 elements");
    em_release(e);
    em_release(a);
}

Test(errors, matmul_of_mismatched_shapes_cannot_be_multiplied)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    EMT_ASSERT_FAILS(em_matmul(a, a), "matmul: shapes [2, 3] and [2, 3] cannot be multiplied "
                                      "(3 != 2)");
    em_tensor *v = EMT_OK(em_zeros(EM_SHAPE(4), NULL));
    EMT_ASSERT_FAILS(em_matmul(a, v), "matmul: shapes [2, 3] and [4] cannot be multiplied");
    EMT_ASSERT_FAILS(em_matmul(v, a), "matmul: shapes [4] and [2, 3] cannot be multiplied");
    em_tensor *x = EMT_OK(em_zeros(EM_SHAPE(2, 2, 3), NULL));
    em_tensor *y = EMT_OK(em_zeros(EM_SHAPE(3, 3, 2), NULL));
    EMT_ASSERT_FAILS(em_matmul(x, y),
                     "matmul: batch dims of [2, 2, 3] and [3, 3, 2] cannot broadcast");
    em_tensor *s = EMT_OK(em_scalar(1, NULL));
    EMT_ASSERT_FAILS(em_matmul(s, a), "matmul: both arguments need at least 1 dim");
    em_tensor *d = EMT_OK(em_zeros(EM_SHAPE(3, 2), &(em_opts){.dtype = EM_F64}));
    EMT_ASSERT_FAILS(em_matmul(a, d),
                     "matmul: expected both operands of one dtype, got float32 and float64");
    em_tensor *w = EMT_OK(em_zeros(EM_SHAPE(4, 5), NULL));
    EMT_ASSERT_FAILS(em_linear(a, w, NULL), "linear: input [2, 3] does not fit weight [4, 5]");
    em_release(w);
    em_release(d);
    em_release(s);
    em_release(y);
    em_release(x);
    em_release(v);
    em_release(a);
}

Test(errors, view_of_an_incompatible_shape_or_layout_fails)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    EMT_ASSERT_FAILS(em_view(a, EM_SHAPE(4)), "view: shape [4] is invalid for input of size 6");
    EMT_ASSERT_FAILS(em_reshape(a, EM_SHAPE(4, -1)),
                     "reshape: shape [4, -1] is invalid for input of size 6");
    em_tensor *t = EMT_OK(em_t(a));
    EMT_ASSERT_FAILS(em_view(t, EM_SHAPE(6)),
                     "view: size [6] is not compatible with the input's strides; use "
                     "em_reshape (which copies)");
    em_tensor *f = EMT_OK(em_flatten(t, 0, 1));   /* flatten may copy, so it works */
    EMT_ASSERT_SHAPE(f, EM_SHAPE(6));
    em_release(f);
    em_release(t);
    em_release(a);
}

Test(errors, other_view_arguments_are_checked)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(3, 2), NULL));
    EMT_ASSERT_FAILS(em_narrow(a, 0, 2, 2), "narrow: start 2 + length 2 exceeds dim 0 of size 3");
    EMT_ASSERT_FAILS(em_select(a, 0, 5), "select: index 5 is out of bounds for dim 0 of size 3");
    EMT_ASSERT_FAILS(em_expand(a, EM_SHAPE(3, 4)), "expand: shape [3, 2] cannot be expanded to "
                                                   "[3, 4]");
    EMT_ASSERT_FAILS(em_permute(a, 2, (const int[]){0, 0}), "permute: dim 0 repeats");
    EMT_ASSERT_FAILS(em_slice(a, 0, 0, 2, 0), "slice: step must be positive, got 0");
    em_tensor *c = EMT_OK(em_zeros(EM_SHAPE(2, 2, 2), NULL));
    EMT_ASSERT_FAILS(em_t(c), "t: expects a tensor with <= 2 dims, got 3");
    em_release(c);
    em_release(a);
}

/* ---- devices, dtypes, creation -------------------------------------------------------------- */

Test(errors, an_unknown_backend_name_is_refused, .init = emt_pin_cpu)
{
    em_device d = em_device_parse("tpu");
    cr_assert_eq(d.index, -1);
    cr_assert_eq(d.backend, 0);
    EMT_ASSERT_ERROR("unknown backend 'tpu'");
    EMT_ASSERT_ERROR("(loaded: cpu");
    cr_assert_eq(em_last_status(), EM_ERR_DEVICE);
    d = em_device_parse("tpu:1");
    cr_assert_eq(d.index, -1);
    EMT_ASSERT_ERROR("unknown backend 'tpu' in device 'tpu:1'");
    d = em_device_parse("cpu:x");
    cr_assert_eq(d.index, -1);
    EMT_ASSERT_ERROR("bad device index in 'cpu:x'");
    d = em_device_parse("");
    cr_assert_eq(d.index, -1);
    EMT_ASSERT_ERROR("device name is empty");
    d = em_device_parse("cpu");
    cr_assert_eq(d.index, 0);
    cr_assert(em_device_eq(d, em_default_device()));
}

Test(errors, a_device_index_that_does_not_exist_is_refused)
{
    em_device d = em_device_parse("cpu:7");
    cr_assert_eq(d.index, 7, "%s", em_last_error());
    EMT_ASSERT_FAILS(em_zeros(EM_SHAPE(2), &(em_opts){.device = d}),
                     "em_zeros: device cpu:7 does not exist (1 device)");
    cr_assert_eq(em_last_status(), EM_ERR_DEVICE);
    cr_assert_lt(em_set_default_device(d), 0);
    EMT_ASSERT_ERROR("device cpu:7 does not exist");
}

Test(errors, bad_creation_arguments_are_refused)
{
    EMT_ASSERT_FAILS(em_randint(5, 5, EM_SHAPE(2), NULL), "em_randint: empty range [5, 5)");
    EMT_ASSERT_FAILS(em_rand(EM_SHAPE(2), &(em_opts){.dtype = EM_I64}),
                     "em_rand: needs a floating dtype, got int64");
    EMT_ASSERT_FAILS(em_arange(0, 5, 0, NULL), "em_arange: step must be nonzero");
    EMT_ASSERT_FAILS(em_arange(0, 5, -1, NULL), "em_arange: upper bound and larger bound "
                                                "inconsistent with step sign");
    EMT_ASSERT_FAILS(em_tensor_from_data(NULL, EM_F32, EM_SHAPE(2), NULL),
                     "em_tensor_from_data: data is NULL");
    float x = 1;
    EMT_ASSERT_FAILS(em_tensor_from_data(&x, (em_dtype)99, EM_SHAPE(1), NULL),
                     "em_tensor_from_data: invalid source dtype 99");
    EMT_ASSERT_FAILS(em_zeros(EM_SHAPE(1), &(em_opts){.dtype = (em_dtype)42}),
                     "em_zeros: invalid dtype 42");
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(1), NULL));
    EMT_ASSERT_FAILS(em_to_dtype(a, (em_dtype)99), "to_dtype: invalid dtype 99");
    em_release(a);
}

Test(errors, copy_to_host_into_a_short_buffer_is_refused)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    float buf[2];
    cr_assert_lt(em_copy_to_host(a, buf, sizeof buf), 0);
    EMT_ASSERT_ERROR("em_copy_to_host: buffer of 8 bytes is too small for 6 elements of float32 "
                     "(24 bytes)");
    em_release(a);
}

Test(errors, op_arguments_of_the_wrong_kind_are_refused)
{
    em_tensor *f = EMT_OK(em_zeros(EM_SHAPE(3), NULL));
    em_tensor *i = EMT_OK(em_zeros(EM_SHAPE(3), &(em_opts){.dtype = EM_I64}));
    EMT_ASSERT_FAILS(em_where(f, f, f), "where: condition must be bool, got float32");
    EMT_ASSERT_FAILS(em_mean(i, 0, NULL, false), "mean: could not infer output dtype; input "
                                                 "dtype must be floating point, got int64");
    EMT_ASSERT_FAILS(em_mean_all(i), "mean: could not infer output dtype");
    EMT_ASSERT_FAILS(em_op_call("no_such_op", 0, NULL, 0, NULL),
                     "no op named 'no_such_op' is registered");
    em_tensor *in[1] = {f};
    EMT_ASSERT_FAILS(em_op_call("add", 1, in, 0, NULL),
                     "em_op_call: op 'add' takes 2 inputs and 0 attributes, got 1 and 0");
    em_release(i);
    em_release(f);
}

/* ---- NULL in, NULL out ---------------------------------------------------------------------- */

Test(errors, a_null_input_returns_null_and_keeps_the_first_error)
{
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    em_tensor *c = EMT_OK(em_ones(EM_SHAPE(5), NULL));
    em_tensor *bad = em_add(a, c);
    cr_assert_null(bad);
    char first[1024];
    snprintf(first, sizeof first, "%s", em_last_error());
    cr_assert(strstr(first, "add: shapes [2, 3] and [5] cannot broadcast"), "first: %s", first);

    em_tensor *r = em_add(em_add(a, bad), b);
    cr_assert_null(r);
    cr_assert_str_eq(em_last_error(), first);
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);

    /* through every kind of call: views, reductions, matmul, casts, composites, in place */
    cr_assert_null(em_sum_all(em_relu(em_t(em_reshape(em_mul(bad, a), EM_SHAPE(3, 2))))));
    cr_assert_str_eq(em_last_error(), first);
    cr_assert_null(em_softmax(em_matmul(em_to_dtype(bad, EM_F64), a), 0));
    cr_assert_str_eq(em_last_error(), first);
    cr_assert_null(em_where(em_gt(bad, a), a, b));
    cr_assert_str_eq(em_last_error(), first);
    cr_assert_null(em_add_(a, bad));
    cr_assert_null(em_add_scalar(bad, 1));
    cr_assert_null(em_gather(a, 0, bad));
    cr_assert_null(em_linear(bad, a, NULL));
    cr_assert_null(em_contiguous(em_select(em_expand(bad, EM_SHAPE(2, 3)), 0, 0)));
    cr_assert(isnan(em_item(bad)));
    cr_assert_lt(em_copy_to_host(bad, first, 0), 0);
    cr_assert_null(em_tensor_str(bad));
    cr_assert_str_eq(em_last_error(), first);
    cr_assert_eq(em_tensor_version(a), 0, "a failed in-place call wrote a");
    em_release(c);
    em_release(b);
    em_release(a);
}

Test(errors, a_null_input_with_no_pending_error_names_the_argument)
{
    em_clear_error();
    cr_assert_str_eq(em_last_error(), "");
    cr_assert_eq(em_last_status(), EM_OK);
    EMT_ASSERT_FAILS(em_neg(NULL), "neg: argument 'input 0' is NULL");
    em_clear_error();
    EMT_ASSERT_FAILS(em_sum(NULL, 0, NULL, false), "sum: argument 'a' is NULL");
    em_clear_error();
    EMT_ASSERT_FAILS(em_reshape(NULL, EM_SHAPE(1)), "reshape: argument 't' is NULL");
    em_clear_error();
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(1), NULL));
    EMT_ASSERT_FAILS(em_add(a, NULL), "add: argument 'input 1' is NULL");
    em_release(a);
}

/* An op of EM_MAX_OP_INPUTS inputs whose output is its input 0's shape; registered by a test. */
static em_tensor *wide_op_composite(int nin, em_tensor *const *in, const em_attr *attrs)
{
    (void)nin, (void)attrs;
    return em_neg(in[0]);
}

static em_op_def wide_op_def(const char *name, int nin, int nattrs)
{
    return (em_op_def){.struct_size = sizeof(em_op_def),
                       .name = name,
                       .nin = nin,
                       .nattrs = nattrs,
                       .flags = EM_OP_SAME_AS_INPUT,
                       .composite = wide_op_composite};
}

Test(errors, a_null_input_past_the_second_is_named_by_its_own_position)
{
    em_op_def def = wide_op_def("wide_op", EM_MAX_OP_INPUTS, 0);
    cr_assert_geq(em_register_op(NULL, &def), 0, "%s", em_last_error());
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2), NULL));
    em_tensor *in[EM_MAX_OP_INPUTS];
    for (int i = 0; i < EM_MAX_OP_INPUTS; i++)
        in[i] = a;
    for (int i = 2; i < EM_MAX_OP_INPUTS; i++) {
        in[i] = NULL;
        char want[64];
        snprintf(want, sizeof want, "wide_op: argument 'input %d' is NULL", i);
        em_clear_error();
        EMT_ASSERT_FAILS(em_op_call("wide_op", EM_MAX_OP_INPUTS, in, 0, NULL), want);
        in[i] = a;
    }
    em_tensor *r = EMT_OK(em_op_call("wide_op", EM_MAX_OP_INPUTS, in, 0, NULL));
    em_tensor *total = EMT_OK(em_sum(r, 0, NULL, false));
    cr_assert_float_eq(em_item(total), -2.0, 0.0);
    em_release(total);
    em_release(r);
    em_release(a);
}

Test(errors, an_op_past_the_input_or_attribute_limit_is_refused_naming_the_limit)
{
    em_op_def def = wide_op_def("too_many_inputs", EM_MAX_OP_INPUTS + 1, 0);
    cr_assert_eq(em_register_op(NULL, &def), EM_ERR_INVALID);
    cr_assert(strstr(em_last_error(), "'too_many_inputs' has 9 inputs") &&
                  strstr(em_last_error(), "EM_MAX_OP_INPUTS = 8"),
              "%s", em_last_error());
    def = wide_op_def("too_many_attrs", 1, EM_MAX_OP_ATTRS + 1);
    cr_assert_eq(em_register_op(NULL, &def), EM_ERR_INVALID);
    cr_assert(strstr(em_last_error(), "'too_many_attrs' has 17 attributes") &&
                  strstr(em_last_error(), "EM_MAX_OP_ATTRS = 16"),
              "%s", em_last_error());
    cr_assert_lt(em_op_lookup("too_many_inputs"), 0);
}

static int wide_module_init(em_module *m, const em_args *args)
{
    (void)m, (void)args;
    return EM_OK;
}

static em_tensor *wide_module_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)m, (void)nin;
    return em_neg(in[0]);
}

Test(errors, a_module_type_past_the_input_limit_is_refused_naming_the_limit)
{
    /* static: the registry keeps a pointer to the table */
    static em_module_ops ops = {.struct_size = sizeof ops, .name = "WideModule",
                         .ninputs = EM_MAX_OP_INPUTS + 1, .init = wide_module_init,
                         .forward = wide_module_forward};
    cr_assert_eq(em_register_module(NULL, &ops), EM_ERR_INVALID);
    cr_assert(strstr(em_last_error(), "'WideModule' takes 9 inputs") &&
                  strstr(em_last_error(), "EM_MAX_OP_INPUTS = 8"),
              "%s", em_last_error());
    ops.ninputs = EM_MAX_OP_INPUTS;
    cr_assert_eq(em_register_module(NULL, &ops), EM_OK, "%s", em_last_error());
}

/* A backend with no device: enough for em_register_backend, which only checks the table. */
static int fake_device_count(void *ctx) { return 0; }
static int fake_device_info(void *ctx, int dev, em_device_info *out) { return EM_ERR_DEVICE; }
static void *fake_alloc(void *ctx, int dev, size_t nbytes) { return NULL; }
static void fake_free(void *ctx, int dev, void *buf, size_t nbytes) {}
static int fake_memory_stats(void *ctx, int dev, em_memory_stats *out) { return EM_ERR_DEVICE; }
static int fake_copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                               size_t nbytes)
{
    return EM_ERR_DEVICE;
}
static int fake_copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                             size_t nbytes)
{
    return EM_ERR_DEVICE;
}

Test(errors, a_backend_past_EM_MAX_BACKENDS_is_refused_naming_the_limit)
{
    /* static: the registry keeps pointers to the tables and their names until em_shutdown */
    static char names[EM_MAX_BACKENDS + 1][16];
    static em_backend_ops ops[EM_MAX_BACKENDS + 1];
    /* Backend ids run from 1 (0 is "unspecified"); the plugins on the test path took the first
     * ones, so the fakes fill the rest and the last id handed out must be the limit itself. */
    int last_id = 0, i = 0;
    for (;; i++) {
        cr_assert_leq(i, EM_MAX_BACKENDS, "no limit: %d fake backends registered", i);
        snprintf(names[i], sizeof names[i], "fake%d", i);
        ops[i] = (em_backend_ops){.struct_size = sizeof ops[i], .name = names[i],
                                  .device_count = fake_device_count,
                                  .device_info = fake_device_info, .alloc = fake_alloc,
                                  .free = fake_free, .memory_stats = fake_memory_stats,
                                  .copy_from_host = fake_copy_from_host,
                                  .copy_to_host = fake_copy_to_host};
        int id = em_register_backend(NULL, &ops[i], NULL);
        if (id < 0) {
            cr_assert_eq(id, EM_ERR_INVALID);
            break;
        }
        last_id = id;
    }
    cr_assert_gt(i, 0, "not even one fake backend registered: %s", em_last_error());
    cr_assert_eq(last_id, EM_MAX_BACKENDS, "the last accepted backend got id %d", last_id);
    char want[320];
    snprintf(want, sizeof want, "backend '%s': too many backends (at most EM_MAX_BACKENDS = %d)",
             names[i], EM_MAX_BACKENDS);
    cr_assert_str_eq(em_last_error(), want);
    const char *listed = NULL;   /* the last backend em_backend_name lists */
    for (int k = 0; k < em_backend_count(); k++)
        listed = em_backend_name(k);
    cr_assert_str_eq(listed, names[i - 1], "the refused backend is not listed");
    cr_assert(em_backend_available("cpu"), "the backends before it keep working");
}

/* ---- in place ------------------------------------------------------------------------------- */

Test(errors, in_place_on_a_leaf_that_requires_grad_is_refused)
{
    em_tensor *w = EMT_OK(em_ones(EM_SHAPE(2), &(em_opts){.requires_grad = true}));
    cr_assert(em_requires_grad(w));
    em_tensor *one = EMT_OK(em_ones(EM_SHAPE(2), NULL));
    EMT_ASSERT_FAILS(em_add_scalar_(w, 1), "leaf tensor that requires grad is being used in an "
                                           "in-place operation");
    EMT_ASSERT_FAILS(em_add_(w, one), "leaf tensor that requires grad");
    EMT_ASSERT_FAILS(em_mul_(w, one), "leaf tensor that requires grad");
    EMT_ASSERT_FAILS(em_fill_(w, 3), "fill_: a leaf tensor that requires grad");
    EMT_ASSERT_FAILS(em_zero_(w), "leaf tensor that requires grad");
    EMT_ASSERT_FAILS(em_relu_(w), "relu_: a leaf tensor that requires grad");
    EMT_ASSERT_FAILS(em_copy_(w, one), "copy_: a leaf tensor that requires grad");
    /* a view of such a leaf is protected too (PyTorch: "a view of a leaf Variable ...") */
    em_tensor *v = EMT_OK(em_narrow(w, 0, 0, 1));
    EMT_ASSERT_FAILS(em_mul_scalar_(v, 2), "leaf tensor that requires grad");
    em_release(v);
    cr_assert_eq(em_tensor_version(w), 0);
    EMT_ASSERT_LIST(w, 0, 1, 1);

    /* with grad mode off it is allowed (torch.no_grad(): w.add_(1)) */
    em_tensor *r = NULL;
    EM_NO_GRAD { r = em_add_scalar_(w, 1); }
    cr_assert(em_is_grad_enabled(), "EM_NO_GRAD did not restore grad mode");
    cr_assert_eq(r, w, "add_ under EM_NO_GRAD: %s", em_last_error());
    em_release(r);
    EMT_ASSERT_LIST(w, 0, 2, 2);
    cr_assert_eq(em_tensor_version(w), 1);
    em_release(one);
    em_release(w);
}

Test(errors, in_place_on_a_non_leaf_result_is_allowed)
{
    /* x = torch.ones(2, requires_grad=True); y = x * 2; y.add_(1) works in PyTorch: y is not
     * a leaf. Only leaves (and views of leaves) are protected. */
    em_tensor *x = EMT_OK(em_ones(EM_SHAPE(2), &(em_opts){.requires_grad = true}));
    em_tensor *y = EMT_OK(em_mul_scalar(x, 2));
    cr_assert(em_requires_grad(y), "requires_grad must be contagious");
    em_tensor *r = em_add_scalar_(y, 1);
    cr_assert_eq(r, y, "add_ on a non-leaf failed: %s", em_last_error());
    em_release(r);
    EMT_ASSERT_LIST(y, 0, 3, 3);
    em_release(y);
    em_release(x);
}

Test(errors, requires_grad_on_an_integer_tensor_is_refused)
{
    em_tensor *i = EMT_OK(em_zeros(EM_SHAPE(2), &(em_opts){.dtype = EM_I64}));
    cr_assert_eq(em_requires_grad_(i, true), EM_ERR_INVALID);
    EMT_ASSERT_ERROR("requires_grad_: only floating point tensors can require gradients, got "
                     "int64");
    cr_assert_not(em_requires_grad(i));
    cr_assert_eq(em_requires_grad_(i, false), EM_OK, "turning it off is fine");
    em_tensor *b = EMT_OK(em_zeros(EM_SHAPE(2), &(em_opts){.dtype = EM_BOOL}));
    cr_assert_lt(em_requires_grad_(b, true), 0);
    EMT_ASSERT_ERROR("got bool");
    EMT_ASSERT_FAILS(em_zeros(EM_SHAPE(2), &(em_opts){.dtype = EM_I32, .requires_grad = true}),
                     "em_zeros: only floating point tensors can require gradients, got int32");
    em_tensor *f = EMT_OK(em_zeros(EM_SHAPE(2), &(em_opts){.dtype = EM_F16}));
    cr_assert_eq(em_requires_grad_(f, true), EM_OK, "%s", em_last_error());
    cr_assert(em_requires_grad(f));
    em_release(f);
    em_release(b);
    em_release(i);
}

Test(errors, in_place_add_of_a_float_into_an_int_tensor_is_refused)
{
    em_tensor *a = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *f = emt_tensor(EM_F32, EM_SHAPE(2), EMT_VALS(0.5, 0.5));
    EMT_ASSERT_FAILS(em_add_(a, f),
                     "add_: result type float32 can't be cast to the desired output type int64");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    EMT_ASSERT_FAILS(em_add_scalar_(a, 0.5),
                     "add_: result type float32 can't be cast to the desired output type int64");
    EMT_ASSERT_FAILS(em_div_(a, a), "div_: result type float32 can't be cast");
    em_tensor *b = emt_tensor(EM_BOOL, EM_SHAPE(2), EMT_VALS(1, 0));
    EMT_ASSERT_FAILS(em_mul_(b, a),
                     "mul_: result type int64 can't be cast to the desired output type bool");
    cr_assert_eq(em_tensor_version(a), 0, "a refused in-place op bumped the version");
    EMT_ASSERT_LIST(a, 0, 1, 2);

    /* the allowed directions: int into float, int64 into int32 (same category) */
    em_tensor *r = EMT_OK(em_add_(f, a));
    em_release(r);
    EMT_ASSERT_LIST(f, 0, 1.5, 2.5);
    em_tensor *i32 = emt_tensor(EM_I32, EM_SHAPE(2), EMT_VALS(10, 20));
    r = EMT_OK(em_add_(i32, a));
    em_release(r);
    EMT_ASSERT_DTYPE(i32, EM_I32);
    EMT_ASSERT_LIST(i32, 0, 11, 22);
    em_release(i32);
    em_release(b);
    em_release(f);
    em_release(a);
}

Test(errors, in_place_result_of_a_larger_shape_is_refused)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(3), NULL));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    EMT_ASSERT_FAILS(em_add_(a, b),
                     "add_: result of shape [2, 3] cannot be written in place into shape [3]");
    EMT_ASSERT_FAILS(em_copy_(a, b), "copy_: source of shape [2, 3] cannot be broadcast to [3]");
    cr_assert_eq(em_tensor_version(a), 0);
    EMT_ASSERT_LIST(a, 0, 0, 0, 0);
    em_release(b);
    em_release(a);
}

/* ---- indexing ------------------------------------------------------------------------------- */

Test(errors, gather_with_an_out_of_range_index_is_refused)
{
    em_tensor *a = F32(EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
    em_tensor *ix = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, 2, 1, 0));
    EMT_ASSERT_FAILS(em_gather(a, 1, ix), "gather: index 2 is out of bounds for dim 1 of size 2");
    cr_assert_eq(em_last_status(), EM_ERR_INVALID);
    em_tensor *neg = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, -1, 1, 0));
    EMT_ASSERT_FAILS(em_gather(a, 1, neg), "gather: index -1 is out of bounds");
    em_tensor *src = F32(EM_SHAPE(2, 2), EMT_VALS(1, 1, 1, 1));
    em_tensor *ix0 = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, 1, 3, 0));
    EMT_ASSERT_FAILS(em_scatter_add(a, 0, ix0, src),
                     "scatter_add: index 3 is out of bounds for dim 0 of size 2");
    em_tensor *i32 = emt_tensor(EM_I32, EM_SHAPE(2, 2), EMT_VALS(0, 1, 1, 0));
    EMT_ASSERT_FAILS(em_gather(a, 1, i32), "gather: index must be int64, got int32");
    em_tensor *flat = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(0, 1));
    EMT_ASSERT_FAILS(em_gather(a, 1, flat),
                     "gather: index [2] must have as many dims as input [2, 2]");
    em_tensor *tall = emt_tensor(EM_I64, EM_SHAPE(3, 1), EMT_VALS(0, 1, 0));
    EMT_ASSERT_FAILS(em_gather(a, 1, tall),
                     "gather: index [3, 1] is larger than input [2, 2] in dim 0");
    em_tensor *d64 = emt_tensor(EM_F64, EM_SHAPE(2, 2), EMT_VALS(1, 1, 1, 1));
    em_tensor *ok = emt_tensor(EM_I64, EM_SHAPE(2, 2), EMT_VALS(0, 1, 1, 0));
    EMT_ASSERT_FAILS(em_scatter_add(a, 0, ok, d64),
                     "scatter_add: src dtype float64 differs from input dtype float32");
    em_release(ok);
    em_release(d64);
    em_release(tall);
    em_release(flat);
    em_release(i32);
    em_release(ix0);
    em_release(src);
    em_release(neg);
    em_release(ix);
    em_release(a);
}

/* ---- lifecycle, threads, leaks -------------------------------------------------------------- */

Test(errors, init_twice_is_refused)
{
    cr_assert_eq(em_init(NULL), EM_ERR_STATE);
    EMT_ASSERT_ERROR("em_init: already initialised; call em_shutdown() first");
    cr_assert(em_is_initialized(), "a refused second em_init must not tear the first down");
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(1), NULL));
    em_release(a);
}

static void *fail_in_thread(void *arg)
{
    char *out = arg;
    snprintf(out, 256, "[%s]", em_last_error());   /* this thread's error starts empty */
    em_tensor *r = em_zeros(EM_SHAPE(-5), NULL);
    snprintf(out + 128, 128, "%s", r ? "succeeded" : em_last_error());
    em_release(r);
    return NULL;
}

Test(errors, the_last_error_is_per_thread)
{
    EMT_ASSERT_FAILS(em_ones(EM_SHAPE(-1), NULL), "em_ones: negative size -1");
    char seen[256] = {0};
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, fail_in_thread, seen), 0);
    pthread_join(th, NULL);
    cr_assert_str_eq(seen, "[]", "the other thread saw \"%s\"", seen);
    cr_assert(strstr(seen + 128, "em_zeros: negative size -5"), "thread error: %s", seen + 128);
    EMT_ASSERT_ERROR("em_ones: negative size -1");   /* ours is untouched */
}

Test(errors, failed_calls_leave_no_memory_behind)
{
    em_device d = em_default_device();
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    em_tensor *i = EMT_OK(em_ones(EM_SHAPE(2, 3), &(em_opts){.dtype = EM_I64}));
    em_tensor *v = EMT_OK(em_ones(EM_SHAPE(4), NULL));
    em_tensor *big = EMT_OK(em_ones(EM_SHAPE(2, 2, 3), NULL));
    em_tensor *b3 = EMT_OK(em_ones(EM_SHAPE(3, 3, 2), NULL));
    em_tensor *ix = emt_tensor(EM_I64, EM_SHAPE(2, 3), EMT_VALS(0, 0, 0, 0, 0, 9));
    em_tensor *it = EMT_OK(em_t(a));
    size_t base = em_memory_allocated(d);
    cr_assert_null(em_add(a, v));
    cr_assert_null(em_add(i, v));   /* fails after casting i to float32 */
    cr_assert_null(em_matmul(big, b3));
    cr_assert_null(em_matmul(a, a));
    cr_assert_null(em_add_(i, a));
    cr_assert_null(em_gather(a, 1, ix));
    cr_assert_null(em_scatter_add(a, 1, ix, a));
    cr_assert_null(em_where(a, a, a));
    cr_assert_null(em_view(it, EM_SHAPE(6)));
    cr_assert_null(em_linear(a, v, NULL));
    cr_assert_null(em_sum(a, 1, (const int[]){7}, false));
    cr_assert_eq(em_memory_allocated(d), base, "failed calls left %zu bytes allocated",
                 em_memory_allocated(d) - base);
    em_release(it);
    em_release(ix);
    em_release(b3);
    em_release(big);
    em_release(v);
    em_release(i);
    em_release(a);
}

/* ---- before em_init ------------------------------------------------------------------------- */

TestSuite(uninitialised);

Test(uninitialised, creating_tensors_before_init_fails_cleanly)
{
    cr_assert_not(em_is_initialized());
    cr_assert_str_eq(em_last_error(), "");
    EMT_ASSERT_FAILS(em_zeros(EM_SHAPE(2), NULL),
                     "em_zeros: Ember is not initialised; call em_init() first");
    cr_assert_eq(em_last_status(), EM_ERR_STATE);
    EMT_ASSERT_FAILS(em_ones(EM_SHAPE(2), NULL), "em_ones: Ember is not initialised");
    EMT_ASSERT_FAILS(em_empty(EM_SHAPE(2), NULL), "em_empty: Ember is not initialised");
    EMT_ASSERT_FAILS(em_full(EM_SHAPE(2), 1, NULL), "em_full: Ember is not initialised");
    EMT_ASSERT_FAILS(em_scalar(1, NULL), "em_scalar: Ember is not initialised");
    EMT_ASSERT_FAILS(em_rand(EM_SHAPE(2), NULL), "em_rand: Ember is not initialised");
    EMT_ASSERT_FAILS(em_randn(EM_SHAPE(2), NULL), "em_randn: Ember is not initialised");
    EMT_ASSERT_FAILS(em_randint(0, 3, EM_SHAPE(2), NULL), "em_randint: Ember is not initialised");
    EMT_ASSERT_FAILS(em_arange(0, 3, 1, NULL), "not initialised");
    const float x[2] = {1, 2};
    EMT_ASSERT_FAILS(em_tensor_from_data(x, EM_F32, EM_SHAPE(2), NULL),
                     "em_tensor_from_data: Ember is not initialised");
    float y[2] = {1, 2};
    EMT_ASSERT_FAILS(em_tensor_from_blob(y, EM_F32, EM_SHAPE(2), NULL, NULL),
                     "em_tensor_from_blob: Ember is not initialised");
    em_shutdown();   /* a no-op */
    cr_assert_not(em_is_initialized());
}

Test(uninitialised, device_and_op_lookups_before_init_say_not_initialised)
{
    em_device d = em_device_parse("cpu");
    cr_assert_eq(d.index, -1);
    EMT_ASSERT_ERROR("not initialised");
    cr_assert_eq(em_memory_allocated(em_default_device()), 0);
    EMT_ASSERT_ERROR("not initialised");
    EMT_ASSERT_FAILS(em_op_call("add", 0, NULL, 0, NULL), "not initialised");
}

Test(uninitialised, calls_after_shutdown_fail_and_init_works_again)
{
    setenv("EMBER_CONFIG", "", 0);
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2), NULL));
    em_release(a);
    em_shutdown();
    cr_assert_not(em_is_initialized());
    EMT_ASSERT_FAILS(em_ones(EM_SHAPE(2), NULL), "em_ones: Ember is not initialised");
    cr_assert_eq(em_init(NULL), EM_OK, "second em_init: %s", em_last_error());
    em_tensor *b = EMT_OK(em_full(EM_SHAPE(2), 4, NULL));
    EMT_ASSERT_LIST(b, 0, 4, 4);
    em_release(b);
    em_shutdown();
}

/* em_op_call reaches the op without em_gather's wrapper: the op itself must check. */
Test(errors, gather_through_em_op_call_checks_dim_and_index_bounds)
{
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    em_tensor *idx = emt_tensor(EM_I64, EM_SHAPE(2, 1), EMT_VALS(0, 5));
    em_attr at = {0};
    at.i = 1;
    em_tensor *in[2] = {a, idx};
    EMT_ASSERT_FAILS(em_op_call("gather", 2, in, 1, &at), "index 5 is out of bounds for dim 1");
    at.i = 7;
    EMT_ASSERT_FAILS(em_op_call("gather", 2, in, 1, &at), "gather: dim 7 out of range");
    em_release(idx);
    em_release(a);
}

static em_tensor *scatter_add_op(em_tensor *a, em_tensor *idx, em_tensor *src, int64_t dim)
{
    em_attr at = {0};
    at.i = dim;
    return em_op_call("scatter_add", 3, (em_tensor *[]){a, idx, src}, 1, &at);
}

/* The same for scatter_add, without em_scatter_add's narrowing of src: the backends' kernels
 * write at the index values and read src over the index's shape without checking either. */
Test(errors, scatter_add_through_em_op_call_checks_dim_index_and_src)
{
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    em_tensor *idx = emt_tensor(EM_I64, EM_SHAPE(2, 1), EMT_VALS(0, 1));
    em_tensor *src = EMT_OK(em_ones(EM_SHAPE(2, 1), NULL));
    em_tensor *r = EMT_OK(scatter_add_op(a, idx, src, 1));
    EMT_ASSERT_LIST(r, 0, 1, 0, 0, 0, 1, 0);
    em_release(r);
    em_tensor *far = emt_tensor(EM_I64, EM_SHAPE(2, 1), EMT_VALS(0, 3));
    EMT_ASSERT_FAILS(scatter_add_op(a, far, src, 1),
                     "scatter_add: index 3 is out of bounds for dim 1 of size 3");
    em_tensor *wide = EMT_OK(em_ones(EM_SHAPE(2, 2), NULL));
    EMT_ASSERT_FAILS(scatter_add_op(a, idx, wide, 1),
                     "scatter_add: src [2, 2] must have the index's shape [2, 1]");
    em_tensor *narrow = EMT_OK(em_ones(EM_SHAPE(1, 1), NULL));
    EMT_ASSERT_FAILS(scatter_add_op(a, idx, narrow, 1),
                     "scatter_add: index [2, 1] is larger than src [1, 1] in dim 0");
    em_tensor *flat = EMT_OK(em_ones(EM_SHAPE(2), NULL));
    EMT_ASSERT_FAILS(scatter_add_op(a, idx, flat, 1),
                     "scatter_add: src [2] must have as many dims as input [2, 3]");
    em_tensor *f64 = EMT_OK(em_ones(EM_SHAPE(2, 1), &(em_opts){.dtype = EM_F64}));
    EMT_ASSERT_FAILS(scatter_add_op(a, idx, f64, 1),
                     "scatter_add: src dtype float64 differs from input dtype float32");
    EMT_ASSERT_FAILS(scatter_add_op(a, idx, src, 2), "scatter_add: dim 2 out of range");
    em_release(f64);
    em_release(flat);
    em_release(narrow);
    em_release(wide);
    em_release(far);
    em_release(src);
    em_release(idx);
    em_release(a);
}
