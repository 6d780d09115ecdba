/* backends/cpu/unary.c - elementwise functions of one tensor: neg, abs, relu (integers and
 * floats) and exp, log, sqrt, sin, cos, tanh, sigmoid (floats only: the core promotes
 * integer inputs first).
 *
 * Input and output share a shape; the input may be strided (EM_KERNEL_STRIDED). f16 and bf16
 * compute in f32 and round once. Integer negation wraps like two's complement (PyTorch's
 * behaviour for INT_MIN), computed in unsigned arithmetic so that C has no overflow to trip.
 */
#include <math.h>

#include "cpu.h"

#define ID(x) (x)

/* out (operand 0, T) = EXPR(x) with x = LD(in) of compute type C; ATTR for the function. */
#define UN_LOOP_A(ATTR, name, T, C, LD, ST, EXPR)                                        \
    ATTR static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n) \
    {                                                                                    \
        (void)fctx;                                                                      \
        T *o = (T *)p[0];                                                                \
        const T *a = (const T *)p[1];                                                    \
        if (s[0] == 1 && s[1] == 1 && o == a) {                                          \
            for (int64_t i = 0; i < n; i++) { /* in place (relu_): one pointer */         \
                C x = LD(o[i]);                                                          \
                o[i] = ST(EXPR);                                                         \
            }                                                                            \
        } else if (s[0] == 1 && s[1] == 1) {                                             \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(a[i]);                                                          \
                o[i] = ST(EXPR);                                                         \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(a[i * s[1]]);                                                   \
                o[i * s[0]] = ST(EXPR);                                                  \
            }                                                                            \
        }                                                                                \
    }

#define UN_LOOP(...) UN_LOOP_A(, __VA_ARGS__)

/* The four float dtypes: EXPR_F for float compute (f32, f16, bf16), EXPR_D for f64. */
#define UN_FLOATS_A(ATTR, op, EXPR_F, EXPR_D)                                            \
    UN_LOOP_A(ATTR, op##_f32, float, float, ID, ID, EXPR_F)                              \
    UN_LOOP(op##_f64, double, double, ID, ID, EXPR_D)                                    \
    UN_LOOP_A(ATTR, op##_f16, uint16_t, float, em_cpu__h2f, em_cpu__f2h, EXPR_F)         \
    UN_LOOP_A(ATTR, op##_bf16, uint16_t, float, em_bf16_to_f32, em_f32_to_bf16, EXPR_F)
#define UN_FLOATS(...) UN_FLOATS_A(, __VA_ARGS__)

#define FLOAT_ROW(op)                                                                    \
    [EM_F32] = op##_f32, [EM_F64] = op##_f64, [EM_F16] = op##_f16, [EM_BF16] = op##_bf16
#define INT_ROW(op) [EM_I64] = op##_i64, [EM_I32] = op##_i32, [EM_U8] = op##_u8

/* ---- neg, abs, relu ------------------------------------------------------------------ */

UN_FLOATS(neg, -x, -x)
UN_LOOP(neg_i64, int64_t, int64_t, ID, ID, (int64_t)(0u - (uint64_t)x))
UN_LOOP(neg_i32, int32_t, int32_t, ID, ID, (int32_t)(0u - (uint32_t)x))
UN_LOOP(neg_u8, uint8_t, uint8_t, ID, ID, (uint8_t)(0u - (unsigned)x))

UN_FLOATS(abs, fabsf(x), fabs(x))
UN_LOOP(abs_i64, int64_t, int64_t, ID, ID, x < 0 ? (int64_t)(0u - (uint64_t)x) : x)
UN_LOOP(abs_i32, int32_t, int32_t, ID, ID, x < 0 ? (int32_t)(0u - (uint32_t)x) : x)
UN_LOOP(abs_u8, uint8_t, uint8_t, ID, ID, x)

/* NaN < 0 is false, so NaN passes through as PyTorch's relu does. */
UN_FLOATS(relu, x < 0.0f ? 0.0f : x, x < 0.0 ? 0.0 : x)
UN_LOOP(relu_i64, int64_t, int64_t, ID, ID, x < 0 ? 0 : x)
UN_LOOP(relu_i32, int32_t, int32_t, ID, ID, x < 0 ? 0 : x)
UN_LOOP(relu_u8, uint8_t, uint8_t, ID, ID, x)

/* ---- float-only math ----------------------------------------------------------------- */

/* exp and sigmoid in float through em_cpu__expf (vectorised, within 1 ulp), float64 libm's */
UN_FLOATS_A(EM_CPU_VECTOR_CLONES, exp, em_cpu__expf(x), exp(x))
UN_FLOATS(log, logf(x), log(x))
UN_FLOATS(sqrt, sqrtf(x), sqrt(x))
UN_FLOATS(sin, sinf(x), sin(x))
UN_FLOATS(cos, cosf(x), cos(x))
UN_FLOATS(tanh, tanhf(x), tanh(x))
UN_FLOATS_A(EM_CPU_VECTOR_CLONES, sigmoid, 1.0f / (1.0f + em_cpu__expf(-x)),
            1.0 / (1.0 + exp(-x)))

typedef struct unary_op {
    const char *name;
    uint32_t dtypes;
    int64_t grain;
    em_cpu_loop_fn loops[EM_DTYPE_COUNT];
} unary_op;

#define INT_AND_FLOAT (EM_DTYPES_FLOAT | EM_DTYPES_INT)

static const unary_op ops[] = {
    {"neg", INT_AND_FLOAT, EM_CPU_GRAIN_CHEAP, {FLOAT_ROW(neg), INT_ROW(neg)}},
    {"abs", INT_AND_FLOAT, EM_CPU_GRAIN_CHEAP, {FLOAT_ROW(abs), INT_ROW(abs)}},
    {"relu", INT_AND_FLOAT, EM_CPU_GRAIN_CHEAP, {FLOAT_ROW(relu), INT_ROW(relu)}},
    {"exp", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(exp)}},
    {"log", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(log)}},
    {"sqrt", EM_DTYPES_FLOAT, EM_CPU_GRAIN_CHEAP, {FLOAT_ROW(sqrt)}},
    {"sin", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(sin)}},
    {"cos", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(cos)}},
    {"tanh", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(tanh)}},
    {"sigmoid", EM_DTYPES_FLOAT, EM_CPU_GRAIN_MATH, {FLOAT_ROW(sigmoid)}},
};

enum { OP_NEG, OP_ABS, OP_RELU, OP_EXP, OP_LOG, OP_SQRT, OP_SIN, OP_COS, OP_TANH, OP_SIGMOID };

static int run_unary(void *bctx, const em_kcall *c, const unary_op *op)
{
    int rc = em_kcall_check(c, "cpu", 1, 1, 0);
    if (rc != EM_OK)
        return rc;
    em_dtype dt = c->in[0].dtype;
    if (dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT || !op->loops[dt] ||
        c->out[0].dtype != dt)
        return em_set_error(EM_ERR_UNSUPPORTED, "cpu: %s: unsupported dtype", op->name);
    const em_ktensor *ts[2] = {&c->out[0], &c->in[0]};
    return em_cpu__iter_each(op->name, 2, ts, op->grain, op->loops[dt], NULL);
}

EM_KERNEL_BIND(k_neg, run_unary, &ops[OP_NEG])
EM_KERNEL_BIND(k_abs, run_unary, &ops[OP_ABS])
EM_KERNEL_BIND(k_relu, run_unary, &ops[OP_RELU])
EM_KERNEL_BIND(k_exp, run_unary, &ops[OP_EXP])
EM_KERNEL_BIND(k_log, run_unary, &ops[OP_LOG])
EM_KERNEL_BIND(k_sqrt, run_unary, &ops[OP_SQRT])
EM_KERNEL_BIND(k_sin, run_unary, &ops[OP_SIN])
EM_KERNEL_BIND(k_cos, run_unary, &ops[OP_COS])
EM_KERNEL_BIND(k_tanh, run_unary, &ops[OP_TANH])
EM_KERNEL_BIND(k_sigmoid, run_unary, &ops[OP_SIGMOID])

int em_cpu__register_unary(em_registry *reg)
{
    static const em_kernel_fn fns[] = {k_neg, k_abs, k_relu, k_exp, k_log,
                                       k_sqrt, k_sin, k_cos, k_tanh, k_sigmoid};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = em_register_kernel(reg, "cpu", ops[i].name, fns[i], EM_KERNEL_STRIDED,
                                    ops[i].dtypes);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}
