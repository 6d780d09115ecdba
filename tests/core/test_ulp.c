/* tests/core/test_ulp.c - the CPU backend's float32 exp and sigmoid (its own vectorised exp,
 * not libm's) against the correctly rounded values, over a sample of every float32 bit pattern
 * (one in 4093, both signs, subnormals, NaNs and infinities included): exp within 1 ulp,
 * sigmoid within 2 (one more rounding) wherever exp(-x) is a float32 (below x = -88.7 the
 * float32 formula 1 / (1 + exp(-x)) gives 0, as PyTorch's does); the special values exactly as
 * expf gives them. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "helpers.h"

TestSuite(ulp, .init = emt_setup, .fini = emt_teardown);

#define STEP 4093u   /* prime: the sample walks every exponent and many mantissas */

static float bits_f(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* Distance in ulps between two floats of the same sign (0 when both NaN). */
static int64_t ulps(float a, float b)
{
    if (isnan(a) || isnan(b))
        return isnan(a) && isnan(b) ? 0 : INT64_MAX;
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0)
        ia = INT32_MIN - ia;
    if (ib < 0)
        ib = INT32_MIN - ib;
    return llabs((int64_t)ia - ib);
}

static void check(em_tensor *(*op)(em_tensor *), double (*ref)(double), int64_t max_ulps,
                  double from, const char *name)
{
    int64_t n = (int64_t)(0xffffffffu / STEP) + 1;
    float *x = malloc((size_t)n * sizeof *x), *y = malloc((size_t)n * sizeof *y);
    cr_assert(x && y);
    for (int64_t i = 0; i < n; i++)
        x[i] = bits_f((uint32_t)((uint64_t)i * STEP));
    em_tensor *t = EMT_OK(em_tensor_from_data(x, EM_F32, 1, &n, NULL));
    em_tensor *r = EMT_OK(op(t));
    cr_assert_eq(em_copy_to_host(r, y, (size_t)n * sizeof *y), EM_OK);
    int64_t worst = 0, at = 0;
    for (int64_t i = 0; i < n; i++) {
        if (x[i] < from)
            continue;
        int64_t d = ulps(y[i], (float)ref((double)x[i]));
        if (d > worst) {
            worst = d;
            at = i;
        }
    }
    cr_assert_leq(worst, max_ulps, "%s(%a) = %a, correctly rounded %a: %lld ulps", name, x[at],
                  y[at], (float)ref((double)x[at]), (long long)worst);
    em_release(r);
    em_release(t);
    free(x);
    free(y);
}

static double sigmoid(double v) { return 1.0 / (1.0 + exp(-v)); }

Test(ulp, float32_exp_is_within_one_ulp, .init = emt_pin_cpu)
{
    check(em_exp, exp, 1, -INFINITY, "exp");
    em_tensor *s = EMT_OK(emt_tensor(EM_F32, EM_SHAPE(8),
                                     EMT_VALS(0, -0.0, INFINITY, -INFINITY, NAN,
                                              88.72283172607422, 88.72283935546875,
                                              -103.0)));
    em_tensor *e = EMT_OK(em_exp(s));
    float v[8];
    cr_assert_eq(em_copy_to_host(e, v, sizeof v), EM_OK);
    cr_assert(v[0] == 1 && v[1] == 1 && v[2] == INFINITY && v[3] == 0 && isnan(v[4]));
    /* ln(FLT_MAX) = 88.7228391...: the float below it stays finite, the one above overflows */
    cr_assert(isfinite(v[5]) && v[6] == INFINITY, "the float32 overflow edge: %a %a", v[5], v[6]);
    cr_assert(v[7] == 0x1p-149f, "exp(-103) is the smallest subnormal, got %a", v[7]);
    em_release(e);
    em_release(s);
}

Test(ulp, float32_sigmoid_is_within_two_ulps, .init = emt_pin_cpu)
{
    check(em_sigmoid, sigmoid, 2, -88.7, "sigmoid");
}
