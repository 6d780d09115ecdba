/* tests/conformance/cases_binary.c - binary elementwise primitives with broadcasting and type
 * promotion (add, sub, mul, div, pow, maximum, minimum), comparisons (eq, ne, lt, le, gt, ge),
 * where, the Python-scalar forms (em_add_scalar, ...), and ReLU's backward op
 * threshold_backward(grad, y) (grad where y > 0, else 0).
 *
 * The pairs cover same shapes, broadcast shapes of equal and unequal rank, 0-dim operands on
 * either side, zero-size operands, non-contiguous views, large broadcasts that the CPU splits
 * across threads, NaN propagation, and mixed dtypes whose result type follows PyTorch's
 * promotion rules (0-dim tensors and Python scalars do not raise a dimensioned operand's dtype
 * within its category).
 */
#include <math.h>

#include "conformance.h"

static double r_add(double a, double b) { return a + b; }
static double r_sub(double a, double b) { return a - b; }
static double r_mul(double a, double b) { return a * b; }
static double r_div(double a, double b) { return a / b; }
static double r_pow(double a, double b) { return pow(a, b); }
static double r_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }
static double r_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }
static double r_eq(double a, double b) { return a == b; }
static double r_ne(double a, double b) { return a != b; }
static double r_lt(double a, double b) { return a < b; }
static double r_le(double a, double b) { return a <= b; }
static double r_gt(double a, double b) { return a > b; }
static double r_ge(double a, double b) { return a >= b; }

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define ALL EM_DTYPES_ALL
#define DOM_PM3 {CF_UNIFORM, -3, 3, -10, 10}
#define DOM_CMP {CF_WHOLE, -2, 2, -2, 2}

static const cf_op binary_ops[] = {
    {"add", 0, em_add, 0, 0, r_add, 0, ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3, DOM_PM3}},
    {"sub", 0, em_sub, 0, 0, r_sub, 0, NUMERIC, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3, DOM_PM3}},
    {"mul", 0, em_mul, 0, 0, r_mul, 0, ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3, DOM_PM3}},
    {"div", 0, em_div, 0, 0, r_div, 0, ALL, CF_GRAD, CF_OUT_FLOAT,
     {DOM_PM3, {CF_AWAY0, -3, 3, -5, 5}}},
    {"pow", 0, em_pow, 0, 0, r_pow, 0, NUMERIC, CF_GRAD, CF_OUT_PROMOTE,
     {{CF_UNIFORM, 0.5, 2, 1, 4}, {CF_UNIFORM, -2, 2, 0, 3}}},
    {"maximum", 0, em_maximum, 0, 0, r_max, 0, ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3, DOM_PM3}},
    {"minimum", 0, em_minimum, 0, 0, r_min, 0, ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3, DOM_PM3}},
    {"eq", 0, em_eq, 0, 0, r_eq, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
    {"ne", 0, em_ne, 0, 0, r_ne, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
    {"lt", 0, em_lt, 0, 0, r_lt, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
    {"le", 0, em_le, 0, 0, r_le, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
    {"gt", 0, em_gt, 0, 0, r_gt, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
    {"ge", 0, em_ge, 0, 0, r_ge, 0, ALL, 0, CF_OUT_BOOL, {DOM_CMP, DOM_CMP}},
};

#define IN(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}}
#define IN0 {.ndim = 0}
#define INL(nd, lay, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .layout = lay}

typedef struct pair {
    const char *label;
    cf_in a, b;
    unsigned flags;
    uint32_t dtypes;
} pair;

static const cf_dom with_nan = {CF_WITH_NAN, -3, 3, -10, 10};

static const pair pairs[] = {
    {"same shape", IN(2, 3, 4), IN(2, 3, 4), 0, 0},
    {"broadcast", IN(2, 3, 1), IN(2, 1, 4), 0, 0},
    {"broadcast rank", IN(3, 2, 3, 4), IN(1, 4), 0, 0},
    {"0-dim rhs", IN(2, 2, 3), IN0, 0, 0},
    {"0-dim lhs", IN0, IN(2, 2, 3), 0, 0},
    {"both 0-dim", IN0, IN0, 0, 0},
    {"zero-size", IN(2, 0, 4), IN(2, 1, 4), 0, 0},
    {"transposed lhs", INL(2, CF_T, 4, 3), IN(2, 4, 3), 0, 0},
    {"strided and expanded",
     {.ndim = 2, .shape = {3, 5}, .layout = CF_STEP},
     {.ndim = 2, .shape = {3, 5}, .layout = CF_EXPAND, .expand = 1}, 0, 0},
    {"offset and permuted", INL(3, CF_OFFSET, 2, 3, 4), INL(3, CF_PERM, 2, 3, 4), 0, 0},
    {"large broadcast", IN(2, 129, 257), IN(1, 257), 0, 0},
    {"large transposed", INL(2, CF_T, 257, 129), IN(2, 257, 129), 0, 0},
    {"with NaN", {.ndim = 2, .shape = {4, 5}, .dom = &with_nan},
     {.ndim = 2, .shape = {4, 5}, .dom = &with_nan}, CF_NO_GRAD, EM_DTYPES_FLOAT},
    /* mixed dtypes: the result type is PyTorch's */
    {"mixed, float32 rhs", IN(2, 3, 4), {.ndim = 2, .shape = {3, 4}, .dtype = EM_F32}, 0, 0},
    {"mixed, int64 rhs", IN(2, 3, 4), {.ndim = 1, .shape = {4}, .dtype = EM_I64}, 0, 0},
    {"mixed, 0-dim float64 rhs", IN(2, 3, 4), {.ndim = 0, .dtype = EM_F64}, 0, 0},
    {"mixed, 0-dim int32 lhs", {.ndim = 0, .dtype = EM_I32}, IN(2, 3, 4), 0, 0},
};

/* Integer powers: negative bases, and negative exponents (0 unless the base is +-1). */
static const cf_dom int_base = {CF_AWAY0, 0, 0, -3, 3}, int_exp = {CF_WHOLE, 0, 0, 0, 4},
                    neg_exp = {CF_WHOLE, 0, 0, -3, -1};
static const pair int_pows[] = {
    {"negative integer bases", {.ndim = 2, .shape = {4, 5}, .dom = &int_base},
     {.ndim = 2, .shape = {4, 5}, .dom = &int_exp}, 0, EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32)},
    {"negative integer exponents", {.ndim = 2, .shape = {4, 5}, .dom = &int_base},
     {.ndim = 1, .shape = {5}, .dom = &neg_exp}, 0, EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32)},
};

/* ---- where -------------------------------------------------------------------------------- */

static em_tensor *call_where(const cf_case *c, em_tensor *const *in)
{
    return em_where(in[0], in[1], in[2]);
}

static double where_elem(const double *x, const void *ctx)
{
    (void)ctx;
    return x[0] != 0 ? x[1] : x[2];
}

static bool ref_where(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_elementwise(3, in, out, where_elem, NULL);
}

static const cf_op where_op = {"where", 0, 0, call_where, 0, 0, ref_where, ALL, CF_GRAD,
                               CF_OUT_PROMOTE, {{CF_BOOLS, 0, 1, 0, 1}, DOM_PM3}};

static const cf_dom bools = {CF_BOOLS, 0, 1, 0, 1};
#define COND(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .dtype = EM_BOOL, .dom = &bools}

typedef struct triple {
    const char *label;
    cf_in cond, a, b;
} triple;

static const triple triples[] = {
    {"same shape", COND(2, 3, 4), IN(2, 3, 4), IN(2, 3, 4)},
    {"broadcast", COND(2, 3, 1), IN(2, 1, 4), IN(2, 3, 4)},
    {"0-dim other", COND(1, 5), IN(1, 5), IN0},
    {"zero-size", COND(2, 0, 3), IN(2, 0, 3), IN(1, 3)},
    {"non-contiguous", {.ndim = 2, .shape = {4, 3}, .dtype = EM_BOOL, .dom = &bools,
                        .layout = CF_T},
     INL(2, CF_STEP, 4, 3), INL(2, CF_T, 4, 3)},
    {"large", COND(2, 129, 257), IN(1, 257), IN(2, 129, 257)},
};

/* ---- threshold_backward(grad, y) --------------------------------------------------------------- */

static em_tensor *call_threshold_backward(const cf_case *c, em_tensor *const *in)
{
    (void)c;
    return em_op_call("threshold_backward", 2, in, 0, NULL);
}

/* 0 where y <= 0 or is NaN, even for an infinite or NaN gradient (PyTorch's where-kernel) */
static double threshold_elem(const double *x, const void *ctx)
{
    (void)ctx;
    return x[1] > 0 ? x[0] : 0;
}

static bool ref_threshold_backward(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_elementwise(2, in, out, threshold_elem, NULL);
}

static const cf_op threshold_backward_op = {
    "threshold_backward", 0, 0, call_threshold_backward, 0, 0, ref_threshold_backward,
    EM_DTYPES_FLOAT, 0, CF_OUT_FIRST, {DOM_PM3, DOM_PM3}};

static const pair threshold_pairs[] = {
    {"a training step's activations", IN(2, 64, 128), IN(2, 64, 128), 0, 0},
    {"zero-size", IN(2, 0, 4), IN(2, 0, 4), 0, 0},
    {"non-contiguous", INL(2, CF_T, 4, 3), INL(2, CF_STEP, 4, 3), 0, 0},
    {"large", IN(2, 129, 257), IN(2, 129, 257), 0, 0},
    {"NaN and infinities", {.ndim = 2, .shape = {4, 5}, .dom = &with_nan},
     {.ndim = 2, .shape = {4, 5}, .dom = &with_nan}, 0, 0},
};

/* ---- Python scalars ------------------------------------------------------------------------ */

static em_tensor *call_add_s(const cf_case *c, em_tensor *const *in)
{
    return em_add_scalar(in[0], c->p.scalar);
}
static em_tensor *call_sub_s(const cf_case *c, em_tensor *const *in)
{
    return em_sub_scalar(in[0], c->p.scalar);
}
static em_tensor *call_mul_s(const cf_case *c, em_tensor *const *in)
{
    return em_mul_scalar(in[0], c->p.scalar);
}
static em_tensor *call_div_s(const cf_case *c, em_tensor *const *in)
{
    return em_div_scalar(in[0], c->p.scalar);
}
static em_tensor *call_pow_s(const cf_case *c, em_tensor *const *in)
{
    return em_pow_scalar(in[0], c->p.scalar);
}

static double scalar_elem(const double *x, const void *ctx)
{
    const cf_case *c = ctx;
    return c->op->r2(x[0], c->p.scalar);
}

static bool ref_scalar(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_elementwise(1, in, out, scalar_elem, c);
}

static const cf_op scalar_ops[] = {
    {"add", 0, 0, call_add_s, 0, r_add, ref_scalar, ALL, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3}},
    {"sub", 0, 0, call_sub_s, 0, r_sub, ref_scalar, NUMERIC, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3}},
    {"mul", 0, 0, call_mul_s, 0, r_mul, ref_scalar, NUMERIC, CF_GRAD, CF_OUT_PROMOTE, {DOM_PM3}},
    {"div", 0, 0, call_div_s, 0, r_div, ref_scalar, NUMERIC, CF_GRAD, CF_OUT_FLOAT, {DOM_PM3}},
    {"pow", 0, 0, call_pow_s, 0, r_pow, ref_scalar, NUMERIC, CF_GRAD, CF_OUT_PROMOTE,
     {{CF_UNIFORM, 0.5, 2, -3, 3}}},
};

/* op index, scalar */
static const struct {
    int op;
    double s;
} scalars[] = {{0, 2.5}, {0, 3}, {1, 1.5}, {2, -2}, {2, 0.5}, {3, 4}, {3, 0.25}, {4, 2}, {4, 0.5}};

/* ---- the family ------------------------------------------------------------------------------ */

void cf_family_binary(cf_list *l)
{
    for (size_t o = 0; o < sizeof binary_ops / sizeof binary_ops[0]; o++)
        for (size_t s = 0; s < sizeof pairs / sizeof pairs[0]; s++) {
            cf_case c = {.op = &binary_ops[o], .nin = 2, .flags = pairs[s].flags,
                         .dtypes = pairs[s].dtypes};
            c.in[0] = pairs[s].a;
            c.in[1] = pairs[s].b;
            cf_label(&c, "%s", pairs[s].label);
            cf_add(l, &c);
        }
    for (size_t s = 0; s < sizeof int_pows / sizeof int_pows[0]; s++) {
        cf_case c = {.op = &binary_ops[4], .nin = 2, .dtypes = int_pows[s].dtypes};
        c.in[0] = int_pows[s].a;
        c.in[1] = int_pows[s].b;
        cf_label(&c, "%s", int_pows[s].label);
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof threshold_pairs / sizeof threshold_pairs[0]; s++) {
        cf_case c = {.op = &threshold_backward_op, .nin = 2, .flags = threshold_pairs[s].flags};
        c.in[0] = threshold_pairs[s].a;
        c.in[1] = threshold_pairs[s].b;
        cf_label(&c, "%s", threshold_pairs[s].label);
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof triples / sizeof triples[0]; s++) {
        cf_case c = {.op = &where_op, .nin = 3};
        c.in[0] = triples[s].cond;
        c.in[1] = triples[s].a;
        c.in[2] = triples[s].b;
        cf_label(&c, "%s", triples[s].label);
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof scalars / sizeof scalars[0]; s++) {
        const cf_in shapes[] = {IN(2, 3, 4), IN0, INL(2, CF_T, 4, 3)};
        for (size_t k = 0; k < sizeof shapes / sizeof shapes[0]; k++) {
            cf_case c = {.op = &scalar_ops[scalars[s].op], .nin = 1};
            c.in[0] = shapes[k];
            c.p.scalar = scalars[s].s;
            c.p.scalar_arg = true;
            cf_label(&c, "scalar %g, %s", scalars[s].s, k == 0 ? "matrix" : k == 1 ? "0-dim"
                                                                                 : "transposed");
            cf_add(l, &c);
        }
    }
}
