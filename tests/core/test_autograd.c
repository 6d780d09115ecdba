/* tests/core/test_autograd.c - autograd with PyTorch's semantics: the tutorial's autograd
 * section with its values, the engine's rules (accumulation, retain_graph, freed graphs,
 * in-place checks, hooks, no-grad), and gradcheck over every differentiable op, including
 * broadcast and non-contiguous inputs. */
#include <math.h>
#include <stdlib.h>

#include "helpers.h"

TestSuite(autograd, .init = emt_setup, .fini = emt_teardown);
TestSuite(gradcheck, .init = emt_setup, .fini = emt_teardown);

static em_tensor *scalar_leaf(double v)
{
    return emt_tensor_(__FILE__, __LINE__, EM_F32, EM_SHAPE(1), EMT_VALS(v));
}

static em_tensor *leaf(em_dtype dt, int ndim, const int64_t *shape, const double *vals)
{
    em_tensor *t = emt_tensor_(__FILE__, __LINE__, dt, ndim, shape, vals);
    cr_assert_eq(em_requires_grad_(t, true), EM_OK, "%s", em_last_error());
    return t;
}

/* ---- the tutorial ------------------------------------------------------------------------- */

Test(autograd, tutorial_a_times_b_times_two_gives_40_and_20, .init = emt_pin_cpu)
{
    em_tensor *a = scalar_leaf(10), *b = scalar_leaf(20);
    em_requires_grad_(a, true);
    em_requires_grad_(b, true);
    em_tensor *F = EMT_OK(em_mul(a, b));
    em_tensor *G = EMT_OK(em_mul_scalar(F, 2));
    cr_assert_str_eq(em_grad_fn_name(F), "MulBackward0");
    cr_assert_str_eq(em_grad_fn_name(G), "MulBackward0");
    cr_assert(em_requires_grad(F) && !em_is_leaf(F));
    cr_assert_eq(em_backward(G, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(a), 0, 40);
    EMT_ASSERT_LIST(em_grad(b), 0, 20);
    cr_assert_null(em_grad(F), "a non-leaf keeps no grad unless retain_grad");
    char *s = em_tensor_str(em_grad(a));
    cr_assert_str_eq(s, "tensor([40.])");
    free(s);
    em_release(G);
    em_release(F);
    em_release(a);
    em_release(b);
}

Test(autograd, retain_grad_keeps_the_intermediate_gradient)
{
    em_tensor *a = scalar_leaf(10), *b = scalar_leaf(20);
    em_requires_grad_(a, true);
    em_requires_grad_(b, true);
    em_tensor *F = em_mul(a, b);
    cr_assert_eq(em_retain_grad(F), EM_OK);
    cr_assert(em_retains_grad(F));
    em_tensor *G = em_mul_scalar(F, 2);
    cr_assert_eq(em_backward(G, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(F), 0, 2);
    em_release(G);
    em_release(F);
    em_release(a);
    em_release(b);
}

/* The tutorial's four-row table: requires_grad, grad_fn, is_leaf, grad populated. */
Test(autograd, the_leaf_table_has_four_rows)
{
    em_tensor *user_grad = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(10));
    em_tensor *calc_grad = EMT_OK(em_mul_scalar(user_grad, 2));
    em_tensor *user_plain = emt_tensor(EM_F32, EM_SHAPE(1), EMT_VALS(10));
    em_tensor *calc_plain = EMT_OK(em_mul_scalar(user_plain, 2));
    cr_assert_eq(em_backward(calc_grad, NULL, false), EM_OK, "%s", em_last_error());

    cr_assert(em_requires_grad(user_grad) && !em_grad_fn_name(user_grad) && em_is_leaf(user_grad));
    cr_assert_not_null(em_grad(user_grad));
    EMT_ASSERT_LIST(em_grad(user_grad), 0, 2);

    cr_assert(em_requires_grad(calc_grad) && em_grad_fn_name(calc_grad) && !em_is_leaf(calc_grad));
    cr_assert_null(em_grad(calc_grad));

    cr_assert(!em_requires_grad(user_plain) && !em_grad_fn_name(user_plain) &&
              em_is_leaf(user_plain) && !em_grad(user_plain));
    cr_assert(!em_requires_grad(calc_plain) && !em_grad_fn_name(calc_plain) &&
              em_is_leaf(calc_plain) && !em_grad(calc_plain));
    em_release(user_grad);
    em_release(calc_grad);
    em_release(user_plain);
    em_release(calc_plain);
}

Test(autograd, requires_grad_spreads_through_matmul)
{
    em_manual_seed(1);
    em_tensor *t1 = EMT_OK(em_randn(EM_SHAPE(3, 3), NULL));
    em_tensor *t2 = EMT_OK(em_randn(EM_SHAPE(3, 3), NULL));
    cr_assert_eq(em_requires_grad_(t1, true), EM_OK);
    em_tensor *t3 = EMT_OK(em_matmul(t1, t2));
    cr_assert(em_requires_grad(t3));
    cr_assert_str_eq(em_grad_fn_name(t3), "MmBackward0");
    em_release(t1);
    em_release(t2);
    em_release(t3);
}

Test(autograd, results_under_no_grad_have_no_grad_fn)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *r = NULL;
    EM_NO_GRAD { r = em_mul_scalar(a, 3); }
    cr_assert(em_is_grad_enabled());
    cr_assert_not(em_requires_grad(r));
    cr_assert_null(em_grad_fn_name(r));
    cr_assert(em_is_leaf(r));
    em_release(r);
    em_release(a);
}

Test(autograd, grad_mode_is_thread_local_state)
{
    cr_assert(em_set_grad_enabled(false));
    cr_assert_not(em_is_grad_enabled());
    cr_assert_not(em_set_grad_enabled(true));
    cr_assert(em_is_grad_enabled());
}

Test(autograd, backward_on_a_vector_needs_a_gradient)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *g = EMT_OK(em_mul_scalar(a, 2));
    cr_assert_lt(em_backward(g, NULL, false), 0);
    EMT_ASSERT_ERROR("grad can be implicitly created only for scalar outputs");
    em_tensor *ones = EMT_OK(em_ones(EM_SHAPE(3), NULL));
    cr_assert_eq(em_backward(g, ones, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(a), 0, 2, 2, 2);
    em_release(ones);
    em_release(g);
    em_release(a);
}

Test(autograd, a_gradient_of_the_wrong_shape_is_refused)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *g = EMT_OK(em_mul_scalar(a, 2));
    em_tensor *bad = EMT_OK(em_ones(EM_SHAPE(3), NULL));
    cr_assert_lt(em_backward(g, bad, false), 0);
    EMT_ASSERT_ERROR("gradient of shape [3] does not match the tensor's shape [2, 3]");
    em_release(bad);
    em_release(g);
    em_release(a);
}

Test(autograd, grads_accumulate_over_two_backward_calls)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(3));
    for (int i = 0; i < 2; i++) {
        em_tensor *y = em_mul(a, a);   /* dy/da = 2a = 6 */
        cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
        em_release(y);
    }
    EMT_ASSERT_LIST(em_grad(a), 0, 12);
    cr_assert_eq(em_grad_zero(a), EM_OK);
    EMT_ASSERT_LIST(em_grad(a), 0, 0);
    cr_assert_eq(em_grad_clear(a), EM_OK);
    cr_assert_null(em_grad(a));
    em_release(a);
}

Test(autograd, a_second_backward_through_a_freed_graph_is_an_error)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(3));
    em_tensor *y = em_mul(a, a);
    cr_assert_eq(em_backward(y, NULL, false), EM_OK);
    cr_assert_lt(em_backward(y, NULL, false), 0);
    EMT_ASSERT_ERROR("backward through the graph a second time");
    em_release(y);
    em_release(a);
}

Test(autograd, retain_graph_allows_a_second_backward)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(3));
    em_tensor *y = em_mul(a, a);
    cr_assert_eq(em_backward(y, NULL, true), EM_OK);
    cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(a), 0, 12);
    em_release(y);
    em_release(a);
}

Test(autograd, integer_tensors_never_require_grad)
{
    em_tensor *i = emt_tensor(EM_I64, EM_SHAPE(2), EMT_VALS(1, 2));
    cr_assert_lt(em_requires_grad_(i, true), 0);
    EMT_ASSERT_ERROR("only floating point tensors can require gradients");
    em_tensor *f = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *cmp = EMT_OK(em_gt(f, f));
    cr_assert_not(em_requires_grad(cmp));
    em_tensor *am = EMT_OK(em_argmax(f, 0, false));
    cr_assert_not(em_requires_grad(am));
    em_release(i);
    em_release(f);
    em_release(cmp);
    em_release(am);
}

Test(autograd, requires_grad_on_a_non_leaf_is_an_error)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(3));
    em_tensor *y = em_mul_scalar(a, 2);
    cr_assert_lt(em_requires_grad_(y, false), 0);
    EMT_ASSERT_ERROR("only change requires_grad flags of leaf variables");
    em_release(y);
    em_release(a);
}

Test(autograd, detach_leaves_the_graph_and_shares_data)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *y = em_mul_scalar(a, 2);
    em_tensor *d = EMT_OK(em_detach(y));
    cr_assert_not(em_requires_grad(d));
    cr_assert(em_is_leaf(d));
    cr_assert(em_same_storage(d, y));
    em_release(d);
    em_release(y);
    em_release(a);
}

Test(autograd, an_in_place_change_to_a_saved_tensor_is_caught)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = EMT_OK(em_mul_scalar(a, 1));
    em_tensor *y = EMT_OK(em_exp(b));        /* saves its output y */
    em_tensor *s = EMT_OK(em_sum_all(y));
    em_tensor *r = EMT_OK(em_add_scalar_(y, 1));   /* y is now at version 1 */
    cr_assert_lt(em_backward(s, NULL, false), 0);
    EMT_ASSERT_ERROR("modified by an in-place operation: [float32 [2, 3]]");
    EMT_ASSERT_ERROR("is at version 1; expected version 0");
    em_release(r);
    em_release(s);
    em_release(y);
    em_release(b);
    em_release(a);
}

Test(autograd, in_place_ops_on_non_leaves_are_differentiated)
{
    em_tensor *x = leaf(EM_F64, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *w = leaf(EM_F64, EM_SHAPE(3), EMT_VALS(4, 5, 6));
    em_tensor *y = EMT_OK(em_mul_scalar(x, 1));
    em_tensor *r = EMT_OK(em_mul_(y, w));   /* y = x * w, in place */
    cr_assert_eq(r, y);
    cr_assert_str_eq(em_grad_fn_name(y), "MulBackward0");
    em_tensor *s = EMT_OK(em_sum_all(y));
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(x), 0, 4, 5, 6);
    EMT_ASSERT_LIST(em_grad(w), 0, 1, 2, 3);
    em_release(s);
    em_release(r);
    em_release(y);
    em_release(x);
    em_release(w);
}

static em_tensor *clip_to_one(em_tensor *g, void *ctx)
{
    int *calls = ctx;
    (*calls)++;
    em_tensor *one = em_ones_like(g);
    em_tensor *r = em_minimum(g, one);
    em_release(one);
    return r;
}

Test(autograd, hooks_see_and_replace_gradients)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    int calls = 0;
    cr_assert_eq(em_register_hook(a, clip_to_one, &calls), EM_OK);
    em_tensor *y = em_mul_scalar(a, 5);
    em_tensor *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(calls, 1);
    EMT_ASSERT_LIST(em_grad(a), 0, 1, 1);
    em_release(s);
    em_release(y);
    em_release(a);
}

/* PyTorch: torch.relu(x).backward(torch.tensor([inf, nan, inf])) with x = [-1, 0, 2] gives
 * x.grad = [0, 0, inf]: the masked places get 0, not inf * 0 = nan. */
Test(autograd, relu_backward_gives_zero_where_masked_even_for_infinite_gradients)
{
    em_tensor *x = leaf(EM_F32, EM_SHAPE(3), EMT_VALS(-1, 0, 2));
    em_tensor *y = em_relu(x);
    em_tensor *g = emt_tensor_(__FILE__, __LINE__, EM_F32, EM_SHAPE(3),
                               EMT_VALS(INFINITY, NAN, INFINITY));
    cr_assert_eq(em_backward(y, g, false), EM_OK, "%s", em_last_error());
    double *v = emt_values_(__FILE__, __LINE__, em_grad(x));
    cr_expect(v[0] == 0 && v[1] == 0 && isinf(v[2]) && v[2] > 0, "x.grad = [%g, %g, %g]", v[0],
              v[1], v[2]);
    free(v);
    em_release(g);
    em_release(y);
    em_release(x);
}

/* Notes where the gradient it sees lives; keeps a reference to it when `keep`. */
typedef struct seen_grad {
    void *data;
    bool keep;
    em_tensor *kept;
} seen_grad;

static em_tensor *note_grad(em_tensor *g, void *ctx)
{
    seen_grad *s = ctx;
    s->data = em_data_ptr(g);
    if (s->keep) {
        em_retain(g);
        s->kept = g;
    }
    return NULL;
}

/* w.grad after one backward of sum(x @ w), with a hook on w that notes (and maybe keeps) the
 * incoming gradient. */
static em_tensor *grad_of_w(seen_grad *s, em_tensor **w)
{
    em_tensor *x = leaf(EM_F32, EM_SHAPE(2, 2), EMT_VALS(1, 2, 3, 4));
    *w = leaf(EM_F32, EM_SHAPE(2, 2), EMT_VALS(1, 0, 0, 1));
    cr_assert_eq(em_register_hook(*w, note_grad, s), EM_OK);
    em_tensor *y = em_matmul(x, *w), *l = em_sum_all(y);
    cr_assert_eq(em_backward(l, NULL, false), EM_OK, "%s", em_last_error());
    em_release(l);
    em_release(y);
    em_release(x);
    return em_grad(*w);
}

Test(autograd, a_first_gradient_nobody_else_holds_becomes_the_grad_without_a_copy,
     .init = emt_pin_cpu)
{
    seen_grad s = {0};
    em_tensor *w, *g = grad_of_w(&s, &w);
    cr_assert_eq(em_data_ptr(g), s.data, "the incoming gradient was copied");
    EMT_ASSERT_LIST(g, 0, 4, 4, 6, 6);
    em_release(w);
}

Test(autograd, a_first_gradient_held_elsewhere_is_copied_into_the_grad, .init = emt_pin_cpu)
{
    seen_grad s = {.keep = true};
    em_tensor *w, *g = grad_of_w(&s, &w);
    cr_assert_neq(em_data_ptr(g), s.data, "the grad shares memory with a tensor a hook kept");
    em_release(em_fill_(g, 0));
    EMT_ASSERT_LIST(s.kept, 0, 4, 4, 6, 6);
    em_release(s.kept);
    em_release(w);
}

Test(autograd, hooks_on_intermediates_change_what_flows_back)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    em_tensor *y = em_mul_scalar(a, 5);
    int calls = 0;
    cr_assert_eq(em_register_hook(y, clip_to_one, &calls), EM_OK);
    em_tensor *z = em_mul_scalar(y, 3);   /* dz/dy = 3, clipped to 1, then * 5 */
    em_tensor *s = em_sum_all(z);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(calls, 1);
    EMT_ASSERT_LIST(em_grad(a), 0, 5, 5);
    em_release(s);
    em_release(z);
    em_release(y);
    em_release(a);
}

Test(autograd, a_chain_of_100000_ops_neither_overflows_nor_leaks)
{
    em_device cpu = em_default_device();
    size_t base = em_memory_allocated(cpu);
    em_tensor *a = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(1));
    em_tensor *y = a;
    em_retain(y);
    for (int i = 0; i < 100000; i++) {
        em_tensor *n = em_mul_scalar(y, 1.0);
        cr_assert_not_null(n, "%s", em_last_error());
        em_release(y);
        y = n;
    }
    cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(a), 0, 1);
    em_release(y);   /* frees the whole chain, iteratively */
    em_release(a);
    cr_assert_eq(em_memory_allocated(cpu), base);
}

Test(autograd, gradients_flow_through_views_to_their_base)
{
    em_tensor *a = leaf(EM_F64, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *t = EMT_OK(em_t(a));
    cr_assert_str_eq(em_grad_fn_name(t), "TBackward0");
    em_tensor *col = EMT_OK(em_select(t, 1, 1));      /* a[1, :] */
    em_tensor *sl = EMT_OK(em_narrow(a, 1, 1, 2));    /* a[:, 1:3] */
    em_tensor *s1 = em_sum_all(col), *s2 = em_sum_all(sl);
    em_tensor *s2x = em_mul_scalar(s2, 10);
    em_tensor *s = em_add(s1, s2x);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(a), 0, 0, 10, 10, 1, 11, 11);
    em_release(s);
    em_release(s1);
    em_release(s2);
    em_release(s2x);
    em_release(sl);
    em_release(col);
    em_release(t);
    em_release(a);
}

Test(autograd, broadcast_inputs_get_gradients_of_their_own_shape)
{
    em_tensor *a = leaf(EM_F32, EM_SHAPE(2, 3), EMT_VALS(1, 2, 3, 4, 5, 6));
    em_tensor *b = leaf(EM_F32, EM_SHAPE(3), EMT_VALS(1, 1, 1));
    em_tensor *y = em_mul(a, b);
    em_tensor *s = em_sum_all(y);
    cr_assert_eq(em_backward(s, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_SHAPE(em_grad(b), EM_SHAPE(3));
    EMT_ASSERT_LIST(em_grad(b), 0, 5, 7, 9);
    EMT_ASSERT_LIST(em_grad(a), 0, 1, 1, 1, 1, 1, 1);
    em_release(s);
    em_release(y);
    em_release(a);
    em_release(b);
}

Test(autograd, linear_records_addmm_and_printing_shows_grad_fn, .init = emt_pin_cpu)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(1, 2), EMT_VALS(1, 2));
    em_tensor *w = leaf(EM_F32, EM_SHAPE(1, 2), EMT_VALS(3, 4));
    em_tensor *b = leaf(EM_F32, EM_SHAPE(1), EMT_VALS(0.5));
    em_tensor *y = EMT_OK(em_linear(x, w, b));
    cr_assert_str_eq(em_grad_fn_name(y), "AddmmBackward0");
    char *s = em_tensor_str(y);
    cr_assert_str_eq(s, "tensor([[11.5000]], grad_fn=<AddmmBackward0>)");
    free(s);
    cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(em_grad(w), 0, 1, 2);
    EMT_ASSERT_LIST(em_grad(b), 0, 1);
    em_release(y);
    em_release(x);
    em_release(w);
    em_release(b);
}

/* ---- gradcheck over every differentiable op ---------------------------------------------- */

typedef em_tensor *(*op1)(em_tensor *);
typedef em_tensor *(*op2)(em_tensor *, em_tensor *);

static em_tensor *call1(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    return ((op1)(uintptr_t)ctx)(in[0]);
}

static em_tensor *call2(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    return ((op2)(uintptr_t)ctx)(in[0], in[1]);
}

static void *fnptr1(op1 f) { return (void *)(uintptr_t)f; }
static void *fnptr2(op2 f) { return (void *)(uintptr_t)f; }

/* A float64 leaf of the given shape with values from Philox, kept away from 0 and from each
 * other so that abs/relu/max kinks are not straddled by the finite differences. */
static em_tensor *rand_leaf(int ndim, const int64_t *shape, double lo, double hi, uint64_t seed)
{
    em_manual_seed(seed);
    em_tensor *u = EMT_OK(em_rand(ndim, shape, &(em_opts){.dtype = EM_F64}));
    em_tensor *s = em_mul_scalar(u, hi - lo), *t = em_add_scalar(s, lo);
    em_release(u);
    em_release(s);
    cr_assert_eq(em_requires_grad_(t, true), EM_OK);
    return t;
}

static void gradcheck_ok(em_gradcheck_fn f, void *ctx, int nin, em_tensor **in, const char *what)
{
    int rc = em_gradcheck(f, ctx, nin, in, 1e-6, 1e-5, 1e-3);
    cr_assert_eq(rc, EM_OK, "gradcheck %s: %s", what, em_last_error());
}

Test(gradcheck, unary_ops)
{
    struct {
        const char *name;
        op1 f;
        double lo, hi;
    } ops[] = {{"neg", em_neg, -2, 2},      {"abs", em_abs, 0.2, 2},   {"exp", em_exp, -2, 2},
               {"log", em_log, 0.5, 3},     {"sqrt", em_sqrt, 0.5, 3}, {"sin", em_sin, -2, 2},
               {"cos", em_cos, -2, 2},      {"tanh", em_tanh, -2, 2},  {"sigmoid", em_sigmoid, -3, 3},
               {"relu", em_relu, 0.1, 2}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        em_tensor *x = rand_leaf(EM_SHAPE(2, 3), ops[i].lo, ops[i].hi, 10 + i);
        gradcheck_ok(call1, fnptr1(ops[i].f), 1, &x, ops[i].name);
        /* the same op on a non-contiguous (transposed) view of a leaf */
        em_tensor *base = rand_leaf(EM_SHAPE(3, 2), ops[i].lo, ops[i].hi, 20 + i);
        gradcheck_ok(call1, fnptr1(ops[i].f), 1, &base, ops[i].name);
        em_release(x);
        em_release(base);
    }
}

static em_tensor *transposed_then(int nin, em_tensor *const *in, void *ctx)
{
    em_tensor *t[2] = {NULL, NULL};
    for (int i = 0; i < nin; i++)
        t[i] = em_t(in[i]);
    em_tensor *r = nin == 1 ? ((op1)(uintptr_t)ctx)(t[0]) : ((op2)(uintptr_t)ctx)(t[0], t[1]);
    for (int i = 0; i < nin; i++)
        em_release(t[i]);
    return r;
}

Test(gradcheck, binary_ops_with_broadcasting)
{
    struct {
        const char *name;
        op2 f;
    } ops[] = {{"add", em_add},         {"sub", em_sub},         {"mul", em_mul},
               {"div", em_div},         {"pow", em_pow},         {"maximum", em_maximum},
               {"minimum", em_minimum}};
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        em_tensor *in[2] = {rand_leaf(EM_SHAPE(2, 3), 0.5, 2, 30 + i),
                            rand_leaf(EM_SHAPE(3), 0.6, 2.2, 40 + i)};
        gradcheck_ok(call2, fnptr2(ops[i].f), 2, in, ops[i].name);
        em_release(in[0]);
        em_release(in[1]);
        /* non-contiguous: both operands transposed views */
        em_tensor *nc[2] = {rand_leaf(EM_SHAPE(3, 2), 0.5, 2, 50 + i),
                            rand_leaf(EM_SHAPE(3, 2), 0.6, 2.2, 60 + i)};
        gradcheck_ok(transposed_then, fnptr2(ops[i].f), 2, nc, ops[i].name);
        em_release(nc[0]);
        em_release(nc[1]);
    }
}

static em_tensor *where_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    (void)ctx;
    em_tensor *c = em_gt(in[0], in[1]);
    em_tensor *r = em_where(c, in[0], in[1]);
    em_release(c);
    return r;
}

static em_tensor *reduce_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    int which = (int)(intptr_t)ctx, dims[2] = {0, 2};
    switch (which) {
    case 0: return em_sum(in[0], 2, dims, false);
    case 1: return em_sum(in[0], 1, dims + 1, true);
    case 2: return em_mean(in[0], 2, dims, true);
    case 3: return em_mean_all(in[0]);
    case 4: return em_amax(in[0], 1, dims, false);
    case 5: return em_softmax(in[0], 1);
    case 6: return em_log_softmax(in[0], -1);
    default: return em_sum_all(in[0]);
    }
}

Test(gradcheck, where_reductions_and_composites)
{
    em_tensor *in[2] = {rand_leaf(EM_SHAPE(2, 3), -1, 1, 70), rand_leaf(EM_SHAPE(3), -1, 1, 71)};
    gradcheck_ok(where_fn, NULL, 2, in, "where");
    em_release(in[0]);
    em_release(in[1]);
    for (int k = 0; k < 8; k++) {
        em_tensor *x = rand_leaf(EM_SHAPE(2, 3, 4), -2, 2, 80 + (uint64_t)k);
        char name[32];
        snprintf(name, sizeof name, "reduction %d", k);
        gradcheck_ok(reduce_fn, (void *)(intptr_t)k, 1, &x, name);
        em_release(x);
    }
}

static em_tensor *linear_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)ctx;
    return em_linear(in[0], in[1], nin > 2 ? in[2] : NULL);
}

static em_tensor *matmul_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    (void)ctx;
    return em_matmul(in[0], in[1]);
}

Test(gradcheck, matmul_linear_batched_and_transposed)
{
    em_tensor *a = rand_leaf(EM_SHAPE(3, 4), -1, 1, 90), *b = rand_leaf(EM_SHAPE(4, 2), -1, 1, 91);
    gradcheck_ok(matmul_fn, NULL, 2, (em_tensor *[]){a, b}, "mm");
    em_tensor *ba = rand_leaf(EM_SHAPE(2, 3, 4), -1, 1, 92);   /* batched @ broadcast 2-D */
    gradcheck_ok(matmul_fn, NULL, 2, (em_tensor *[]){ba, b}, "bmm broadcast");
    em_tensor *v = rand_leaf(EM_SHAPE(4), -1, 1, 93);
    gradcheck_ok(matmul_fn, NULL, 2, (em_tensor *[]){a, v}, "mv");
    gradcheck_ok(matmul_fn, NULL, 2, (em_tensor *[]){v, v}, "dot");
    em_tensor *x = rand_leaf(EM_SHAPE(5, 4), -1, 1, 94), *w = rand_leaf(EM_SHAPE(3, 4), -1, 1, 95);
    em_tensor *bias = rand_leaf(EM_SHAPE(3), -1, 1, 96);
    gradcheck_ok(linear_fn, NULL, 3, (em_tensor *[]){x, w, bias}, "linear");
    gradcheck_ok(linear_fn, NULL, 2, (em_tensor *[]){x, w}, "linear without bias");
    em_tensor *x3 = rand_leaf(EM_SHAPE(2, 5, 4), -1, 1, 97);
    gradcheck_ok(linear_fn, NULL, 3, (em_tensor *[]){x3, w, bias}, "linear batched");
    em_release(a);
    em_release(b);
    em_release(ba);
    em_release(v);
    em_release(x);
    em_release(w);
    em_release(bias);
    em_release(x3);
}

static em_tensor *index_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    int64_t idx[6] = {2, 0, 1, 1, 2, 0};
    em_tensor *index = em_tensor_from_data(idx, EM_I64, EM_SHAPE(2, 3), NULL);
    em_tensor *r = (intptr_t)ctx ? em_scatter_add(in[0], 1, index, in[1])
                                 : em_gather(in[0], 1, index);
    em_release(index);
    return r;
}

static em_tensor *views_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    (void)ctx;
    /* permute, slice with a step, unsqueeze, expand, reshape, squeeze in one chain */
    em_tensor *p = em_permute(in[0], 3, (int[]){2, 0, 1});       /* [4, 2, 3] */
    em_tensor *s = em_slice(p, 0, 0, 4, 2);                      /* [2, 2, 3] */
    em_tensor *u = em_unsqueeze(s, 1);                           /* [2, 1, 2, 3] */
    em_tensor *e = em_expand(u, EM_SHAPE(2, 5, 2, 3));
    em_tensor *r = em_reshape(e, EM_SHAPE(10, 6));
    em_tensor *sq = em_mul(r, r);
    em_release(p);
    em_release(s);
    em_release(u);
    em_release(e);
    em_release(r);
    return sq;
}

static em_tensor *cast_fn(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    (void)ctx;
    em_tensor *f = em_to_dtype(in[0], EM_F32), *b = em_to_dtype(f, EM_F64);
    em_tensor *c = em_contiguous(b), *r = em_mul(c, in[0]);
    em_release(f);
    em_release(b);
    em_release(c);
    return r;
}

Test(gradcheck, gather_scatter_views_and_casts)
{
    em_tensor *a = rand_leaf(EM_SHAPE(2, 3), -1, 1, 100), *src = rand_leaf(EM_SHAPE(2, 3), -1, 1, 101);
    gradcheck_ok(index_fn, (void *)0, 1, &a, "gather");
    gradcheck_ok(index_fn, (void *)1, 2, (em_tensor *[]){a, src}, "scatter_add");
    em_tensor *v = rand_leaf(EM_SHAPE(2, 3, 4), -1, 1, 102);
    gradcheck_ok(views_fn, NULL, 1, &v, "view chain");
    /* casts through f32 lose precision: a looser tolerance, as PyTorch would need */
    cr_assert_eq(em_gradcheck(cast_fn, NULL, 1, &a, 1e-3, 1e-3, 1e-2), EM_OK, "%s",
                 em_last_error());
    em_release(a);
    em_release(src);
    em_release(v);
}

static em_tensor *wrong_grad(em_tensor *g, void *ctx)
{
    (void)ctx;
    return em_mul_scalar(g, 2);
}

static em_tensor *hooked_square(int nin, em_tensor *const *in, void *ctx)
{
    (void)nin;
    (void)ctx;
    em_tensor *y = em_mul(in[0], in[0]);
    em_register_hook(y, wrong_grad, NULL);
    return y;
}

Test(gradcheck, a_wrong_gradient_is_reported_with_its_position)
{
    em_tensor *x = rand_leaf(EM_SHAPE(3), 0.5, 1.5, 110);
    cr_assert_lt(em_gradcheck(hooked_square, NULL, 1, &x, 1e-6, 1e-5, 1e-3), 0);
    EMT_ASSERT_ERROR("Jacobian mismatch for output element 0 with respect to input 0, element 0");
    em_release(x);
}

Test(gradcheck, float32_inputs_are_refused)
{
    em_tensor *x = leaf(EM_F32, EM_SHAPE(2), EMT_VALS(1, 2));
    cr_assert_lt(em_gradcheck(call1, fnptr1(em_exp), 1, &x, -1, -1, -1), 0);
    EMT_ASSERT_ERROR("must be float64");
    em_release(x);
}
