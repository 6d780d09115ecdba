/* tests/conformance/cases_unary.c - unary elementwise primitives: neg, abs, relu, exp, log,
 * sqrt, sin, cos, tanh, sigmoid.
 *
 * Every op runs over the same layouts (0-dim, zero-size, transposed, permuted, strided, offset,
 * expanded, 8 dims, large enough to be split across threads) in every dtype PyTorch allows:
 * floats, integers (exp and friends promote them to float32, as PyTorch does) and bool where
 * it is legal. Special values (0, -0, +-inf, NaN, tiny, huge) are checked against C's libm
 * in float64, rounded to the dtype.
 */
#include <math.h>

#include "conformance.h"

static double r_neg(double x) { return -x; }
static double r_abs(double x) { return fabs(x); }
static double r_relu(double x) { return isnan(x) ? x : x > 0 ? x : 0.0; }
static double r_exp(double x) { return exp(x); }
static double r_log(double x) { return log(x); }
static double r_sqrt(double x) { return sqrt(x); }
static double r_sin(double x) { return sin(x); }
static double r_cos(double x) { return cos(x); }
static double r_tanh(double x) { return tanh(x); }
static double r_sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define ALL EM_DTYPES_ALL

/* name, f1, f2, call, r1, r2, ref, dtypes, flags, out, domains {kind, lo, hi, ilo, ihi} */
static const cf_op unary_ops[] = {
    {"neg", em_neg, 0, 0, r_neg, 0, 0, NUMERIC, CF_GRAD, CF_OUT_PROMOTE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
    {"abs", em_abs, 0, 0, r_abs, 0, 0, NUMERIC, CF_GRAD, CF_OUT_PROMOTE,
     {{CF_AWAY0, -3, 3, -10, 10}}},
    {"relu", em_relu, 0, 0, r_relu, 0, 0, NUMERIC, CF_GRAD, CF_OUT_PROMOTE,
     {{CF_AWAY0, -3, 3, -10, 10}}},
    {"exp", em_exp, 0, 0, r_exp, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT, {{CF_UNIFORM, -5, 5, -5, 5}}},
    {"log", em_log, 0, 0, r_log, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT, {{CF_UNIFORM, 0.1, 10, 1, 10}}},
    {"sqrt", em_sqrt, 0, 0, r_sqrt, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT,
     {{CF_UNIFORM, 0.1, 10, 0, 10}}},
    {"sin", em_sin, 0, 0, r_sin, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT, {{CF_UNIFORM, -6, 6, -6, 6}}},
    {"cos", em_cos, 0, 0, r_cos, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT, {{CF_UNIFORM, -6, 6, -6, 6}}},
    {"tanh", em_tanh, 0, 0, r_tanh, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT,
     {{CF_UNIFORM, -4, 4, -4, 4}}},
    {"sigmoid", em_sigmoid, 0, 0, r_sigmoid, 0, 0, ALL, CF_GRAD, CF_OUT_FLOAT,
     {{CF_UNIFORM, -8, 8, -8, 8}}},
};

static const cf_dom special = {CF_SPECIAL, -3, 3, -10, 10};

typedef struct scenario {
    const char *label;
    cf_in in;
    unsigned flags;
    uint32_t dtypes;
} scenario;

static const scenario scenarios[] = {
    {"0-dim", {.ndim = 0}, 0, 0},
    {"vector", {.ndim = 1, .shape = {7}}, 0, 0},
    {"matrix", {.ndim = 2, .shape = {4, 5}}, 0, 0},
    {"zero-size", {.ndim = 2, .shape = {0, 3}}, 0, 0},
    {"transposed", {.ndim = 2, .shape = {5, 4}, .layout = CF_T}, 0, 0},
    {"permuted", {.ndim = 3, .shape = {2, 3, 4}, .layout = CF_PERM}, 0, 0},
    {"strided", {.ndim = 2, .shape = {3, 6}, .layout = CF_STEP}, 0, 0},
    {"offset", {.ndim = 2, .shape = {3, 5}, .layout = CF_OFFSET}, 0, 0},
    {"expanded", {.ndim = 2, .shape = {4, 5}, .layout = CF_EXPAND, .expand = 1}, 0, 0},
    {"8 dims", {.ndim = 8, .shape = {2, 1, 2, 1, 2, 1, 2, 3}}, 0, 0},
    {"large", {.ndim = 2, .shape = {129, 257}}, 0, 0},
    {"large transposed", {.ndim = 2, .shape = {257, 129}, .layout = CF_T}, 0, 0},
    {"special values", {.ndim = 1, .shape = {28}, .dom = &special}, CF_NO_GRAD,
     EM_DTYPES_FLOAT},
};

void cf_family_unary(cf_list *l)
{
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; o++)
        for (size_t s = 0; s < sizeof scenarios / sizeof scenarios[0]; s++) {
            cf_case c = {.op = &unary_ops[o], .nin = 1, .flags = scenarios[s].flags,
                         .dtypes = scenarios[s].dtypes};
            c.in[0] = scenarios[s].in;
            cf_label(&c, "%s", scenarios[s].label);
            cf_add(l, &c);
        }
}
