/* backends/cpu/binary.c - elementwise ops of two or three tensors: add, sub, mul, div, pow,
 * maximum, minimum; the comparisons eq, ne, lt, le, gt, ge (bool output); where; and ReLU's
 * backward, threshold_backward.
 *
 * The core has already promoted the inputs to one dtype and given them the output's shape
 * (stride 0 on broadcast dims); the kernels are registered EM_KERNEL_STRIDED so broadcasting
 * never materialises a copy. Every inner loop has three shapes: all contiguous, one input a
 * broadcast scalar (stride 0), and general strides; the first two are plain loops that the
 * compiler vectorises. Semantics are PyTorch's: maximum/minimum propagate NaN, integer
 * arithmetic wraps, integer pow is exact (negative exponents give 0 unless the base is +-1),
 * bool add is `or` and bool mul is `and`.
 */
#include <math.h>

#include "cpu.h"

#define ID(x) (x)

/* out (operand 0, T) = EXPR(x, y), x and y loaded from operands 1 and 2 as type C. In-place
 * calls (out is input a, as em_add_ makes them) get loops of their own: GCC's runtime alias
 * check rejects exact overlap and would otherwise fall back to scalar code. `decl` is
 * `static`, with attributes before it where a loop has them. */
#define BIN_LOOP_DECL(decl, name, T, C, LD, ST, EXPR)                                    \
    decl void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)        \
    {                                                                                    \
        (void)fctx;                                                                      \
        T *o = (T *)p[0];                                                                \
        const T *pa = (const T *)p[1], *pb = (const T *)p[2];                            \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1 && o == pa) {                            \
            for (int64_t i = 0; i < n; i++) { /* in place: one pointer, so it vectorises */ \
                C x = LD(o[i]), y = LD(pb[i]);                                           \
                o[i] = ST(EXPR);                                                         \
            }                                                                            \
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 1) {                                \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(pa[i]), y = LD(pb[i]);                                          \
                o[i] = ST(EXPR);                                                         \
            }                                                                            \
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {                                \
            C y = LD(pb[0]);                                                             \
            if (o == pa)                                                                 \
                for (int64_t i = 0; i < n; i++) {                                        \
                    C x = LD(o[i]);                                                      \
                    o[i] = ST(EXPR);                                                     \
                }                                                                        \
            else                                                                         \
                for (int64_t i = 0; i < n; i++) {                                        \
                    C x = LD(pa[i]);                                                     \
                    o[i] = ST(EXPR);                                                     \
                }                                                                        \
        } else if (s[0] == 1 && s[1] == 0 && s[2] == 1) {                                \
            C x = LD(pa[0]);                                                             \
            for (int64_t i = 0; i < n; i++) {                                            \
                C y = LD(pb[i]);                                                         \
                o[i] = ST(EXPR);                                                         \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(pa[i * s[1]]), y = LD(pb[i * s[2]]);                            \
                o[i * s[0]] = ST(EXPR);                                                  \
            }                                                                            \
        }                                                                                \
    }

#define BIN_LOOP(name, T, C, LD, ST, EXPR) BIN_LOOP_DECL(static, name, T, C, LD, ST, EXPR)

/* The 16-bit float loops widen to float32 and round back: the narrowing is slow in baseline
 * x86-64, so they get the AVX2 clone (twice as fast for a bfloat16 division, the same bits). */
#define BIN_FLOATS(op, EXPR_F, EXPR_D)                                                   \
    BIN_LOOP(op##_f32, float, float, ID, ID, EXPR_F)                                     \
    BIN_LOOP(op##_f64, double, double, ID, ID, EXPR_D)                                   \
    BIN_LOOP_DECL(EM_CPU_VECTOR_CLONES static, op##_f16, uint16_t, float, em_cpu__h2f,   \
                  em_cpu__f2h, EXPR_F)                                                   \
    BIN_LOOP_DECL(EM_CPU_VECTOR_CLONES static, op##_bf16, uint16_t, float, em_bf16_to_f32, \
                  em_f32_to_bf16, EXPR_F)

/* Integers: EXPR written once over the unsigned type U of the same width (wrapping). */
#define BIN_INTS(op, EXPR_U)                                                             \
    BIN_LOOP(op##_i64, int64_t, int64_t, ID, ID, (int64_t)EXPR_U(uint64_t))              \
    BIN_LOOP(op##_i32, int32_t, int32_t, ID, ID, (int32_t)EXPR_U(uint32_t))              \
    BIN_LOOP(op##_u8, uint8_t, uint8_t, ID, ID, (uint8_t)EXPR_U(unsigned))

#define FLOAT_ROW(op)                                                                    \
    [EM_F32] = op##_f32, [EM_F64] = op##_f64, [EM_F16] = op##_f16, [EM_BF16] = op##_bf16
#define INT_ROW(op) [EM_I64] = op##_i64, [EM_I32] = op##_i32, [EM_U8] = op##_u8

/* ---- arithmetic ------------------------------------------------------------------------ */

#define ADD_U(U) ((U)x + (U)y)
#define SUB_U(U) ((U)x - (U)y)
#define MUL_U(U) ((U)x * (U)y)
#define MAX_U(U) (x > y ? x : y)
#define MIN_U(U) (x < y ? x : y)

BIN_FLOATS(add, x + y, x + y)
BIN_INTS(add, ADD_U)
BIN_LOOP(add_bool, uint8_t, uint8_t, ID, ID, (uint8_t)((x | y) != 0))

BIN_FLOATS(sub, x - y, x - y)
BIN_INTS(sub, SUB_U)

BIN_FLOATS(mul, x * y, x * y)
BIN_INTS(mul, MUL_U)
BIN_LOOP(mul_bool, uint8_t, uint8_t, ID, ID, (uint8_t)(x != 0 && y != 0))

BIN_FLOATS(div, x / y, x / y)

/* threshold_backward(grad, y): ReLU's backward, x the gradient and y the output; 0 (never
 * x * 0, which is NaN for an infinite x) where y <= 0 or is NaN. */
BIN_FLOATS(threshold_backward, y > 0 ? x : 0.0f, y > 0 ? x : 0.0)

/* NaN in either operand wins: x is picked when it is NaN, and y when x > y fails. */
BIN_FLOATS(maximum, (x > y || x != x) ? x : y, (x > y || x != x) ? x : y)
BIN_INTS(maximum, MAX_U)
BIN_LOOP(maximum_bool, uint8_t, uint8_t, ID, ID, (uint8_t)((x | y) != 0))

BIN_FLOATS(minimum, (x < y || x != x) ? x : y, (x < y || x != x) ? x : y)
BIN_INTS(minimum, MIN_U)
BIN_LOOP(minimum_bool, uint8_t, uint8_t, ID, ID, (uint8_t)(x != 0 && y != 0))

/* Integer power by squaring, as PyTorch's powi: b < 0 gives 1 for a == 1, +-1 for a == -1
 * and 0 otherwise. Signed types square in their unsigned twin U, so overflow wraps. */
#define POWI_SIGNED(name, T, U)                                                          \
    static inline T name(T a, T b)                                                       \
    {                                                                                    \
        if (b < 0)                                                                       \
            return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;                        \
        U r = 1, base = (U)a;                                                            \
        for (U e = (U)b; e; e >>= 1, base *= base)                                       \
            if (e & 1)                                                                   \
                r *= base;                                                               \
        return (T)r;                                                                     \
    }

POWI_SIGNED(powi_i64, int64_t, uint64_t)
POWI_SIGNED(powi_i32, int32_t, uint32_t)

static inline uint8_t powi_u8(uint8_t a, uint8_t b)
{
    unsigned r = 1, base = a;
    for (unsigned e = b; e; e >>= 1, base = (base * base) & 0xffu)
        if (e & 1)
            r = (r * base) & 0xffu;
    return (uint8_t)r;
}

BIN_FLOATS(pow, powf(x, y), pow(x, y))
BIN_LOOP(pow_i64, int64_t, int64_t, ID, ID, powi_i64(x, y))
BIN_LOOP(pow_i32, int32_t, int32_t, ID, ID, powi_i32(x, y))
BIN_LOOP(pow_u8, uint8_t, uint8_t, ID, ID, powi_u8(x, y))

/* ---- comparisons: T inputs, bool (uint8_t 0/1) output ------------------------------------- */

#define CMP_LOOP(name, T, C, LD, EXPR)                                                   \
    static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)      \
    {                                                                                    \
        (void)fctx;                                                                      \
        uint8_t *o = (uint8_t *)p[0];                                                    \
        const T *pa = (const T *)p[1], *pb = (const T *)p[2];                            \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1) {                                       \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(pa[i]), y = LD(pb[i]);                                          \
                o[i] = (uint8_t)(EXPR);                                                  \
            }                                                                            \
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 0) {                                \
            C y = LD(pb[0]);                                                             \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(pa[i]);                                                         \
                o[i] = (uint8_t)(EXPR);                                                  \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++) {                                            \
                C x = LD(pa[i * s[1]]), y = LD(pb[i * s[2]]);                            \
                o[i * s[0]] = (uint8_t)(EXPR);                                           \
            }                                                                            \
        }                                                                                \
    }

#define LD_BOOL(v) ((v) != 0)

#define CMP_ALL(op, EXPR)                                                                \
    CMP_LOOP(op##_f32, float, float, ID, EXPR)                                           \
    CMP_LOOP(op##_f64, double, double, ID, EXPR)                                         \
    CMP_LOOP(op##_f16, uint16_t, float, em_cpu__h2f, EXPR)                             \
    CMP_LOOP(op##_bf16, uint16_t, float, em_bf16_to_f32, EXPR)                           \
    CMP_LOOP(op##_i64, int64_t, int64_t, ID, EXPR)                                       \
    CMP_LOOP(op##_i32, int32_t, int32_t, ID, EXPR)                                       \
    CMP_LOOP(op##_u8, uint8_t, uint8_t, ID, EXPR)                                        \
    CMP_LOOP(op##_bool, uint8_t, int, LD_BOOL, EXPR)

CMP_ALL(eq, x == y)
CMP_ALL(ne, x != y)
CMP_ALL(lt, x < y)
CMP_ALL(le, x <= y)
CMP_ALL(gt, x > y)
CMP_ALL(ge, x >= y)

#define ALL_ROW(op) FLOAT_ROW(op), INT_ROW(op), [EM_BOOL] = op##_bool

/* ---- the op table ------------------------------------------------------------------------- */

typedef struct binary_op {
    const char *name;
    uint32_t dtypes;
    bool out_bool;
    int64_t grain;
    em_cpu_loop_fn loops[EM_DTYPE_COUNT];
} binary_op;

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define CHEAP EM_CPU_GRAIN_CHEAP

static const binary_op ops[] = {
    {"add", EM_DTYPES_ALL, false, CHEAP, {ALL_ROW(add)}},
    {"sub", NUMERIC, false, CHEAP, {FLOAT_ROW(sub), INT_ROW(sub)}},
    {"mul", EM_DTYPES_ALL, false, CHEAP, {ALL_ROW(mul)}},
    {"div", EM_DTYPES_FLOAT, false, CHEAP, {FLOAT_ROW(div)}},
    {"pow", NUMERIC, false, EM_CPU_GRAIN_MATH, {FLOAT_ROW(pow), INT_ROW(pow)}},
    {"maximum", EM_DTYPES_ALL, false, CHEAP, {ALL_ROW(maximum)}},
    {"minimum", EM_DTYPES_ALL, false, CHEAP, {ALL_ROW(minimum)}},
    {"eq", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(eq)}},
    {"ne", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(ne)}},
    {"lt", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(lt)}},
    {"le", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(le)}},
    {"gt", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(gt)}},
    {"ge", EM_DTYPES_ALL, true, CHEAP, {ALL_ROW(ge)}},
    {"threshold_backward", EM_DTYPES_FLOAT, false, CHEAP, {FLOAT_ROW(threshold_backward)}},
};

enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_POW, OP_MAXIMUM, OP_MINIMUM,
       OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_THRESHOLD_BACKWARD };

static int run_binary(void *bctx, const em_kcall *c, const binary_op *op)
{
    int rc = em_kcall_check(c, "cpu", 2, 1, 0);
    if (rc != EM_OK)
        return rc;
    em_dtype dt = c->in[0].dtype;
    em_dtype odt = op->out_bool ? EM_BOOL : dt;
    if (dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT || !op->loops[dt] ||
        c->in[1].dtype != dt || c->out[0].dtype != odt)
        return em_set_error(EM_ERR_UNSUPPORTED, "cpu: %s: unsupported dtypes %d, %d -> %d",
                            op->name, (int)dt, (int)c->in[1].dtype, (int)c->out[0].dtype);
    const em_ktensor *ts[3] = {&c->out[0], &c->in[0], &c->in[1]};
    return em_cpu__iter_each(op->name, 3, ts, op->grain, op->loops[dt], NULL);
}

EM_KERNEL_BIND(k_add, run_binary, &ops[OP_ADD])
EM_KERNEL_BIND(k_sub, run_binary, &ops[OP_SUB])
EM_KERNEL_BIND(k_mul, run_binary, &ops[OP_MUL])
EM_KERNEL_BIND(k_div, run_binary, &ops[OP_DIV])
EM_KERNEL_BIND(k_pow, run_binary, &ops[OP_POW])
EM_KERNEL_BIND(k_maximum, run_binary, &ops[OP_MAXIMUM])
EM_KERNEL_BIND(k_minimum, run_binary, &ops[OP_MINIMUM])
EM_KERNEL_BIND(k_eq, run_binary, &ops[OP_EQ])
EM_KERNEL_BIND(k_ne, run_binary, &ops[OP_NE])
EM_KERNEL_BIND(k_lt, run_binary, &ops[OP_LT])
EM_KERNEL_BIND(k_le, run_binary, &ops[OP_LE])
EM_KERNEL_BIND(k_gt, run_binary, &ops[OP_GT])
EM_KERNEL_BIND(k_ge, run_binary, &ops[OP_GE])
EM_KERNEL_BIND(k_threshold_backward, run_binary, &ops[OP_THRESHOLD_BACKWARD])

/* ---- where(a, b, cond): kernel input order is (a, b, cond) ----------------------------------- */

/* Picks elements, so it only needs the element size: operands are out, a, b, cond. */
#define WHERE_LOOP(name, T)                                                              \
    static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)      \
    {                                                                                    \
        (void)fctx;                                                                      \
        T *o = (T *)p[0];                                                                \
        const T *pa = (const T *)p[1], *pb = (const T *)p[2];                            \
        const uint8_t *pc = (const uint8_t *)p[3];                                       \
        if (s[0] == 1 && s[1] == 1 && s[2] == 1 && s[3] == 1) {                          \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = pc[i] ? pa[i] : pb[i];                                            \
        } else if (s[0] == 1 && s[1] == 1 && s[2] == 0 && s[3] == 1) {                   \
            T y = pb[0];                                                                 \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i] = pc[i] ? pa[i] : y;                                                \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                o[i * s[0]] = pc[i * s[3]] ? pa[i * s[1]] : pb[i * s[2]];                \
        }                                                                                \
    }

WHERE_LOOP(where_1, uint8_t)
WHERE_LOOP(where_2, uint16_t)
WHERE_LOOP(where_4, uint32_t)
WHERE_LOOP(where_8, uint64_t)

static int k_where(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 3, 1, 0);
    static const em_cpu_loop_fn loops[4] = {where_1, where_2, where_4, where_8};
    const em_ktensor *ts[4] = {&c->out[0], &c->in[0], &c->in[1], &c->in[2]};
    return em_cpu__iter_each("where", 4, ts, EM_CPU_GRAIN_CHEAP,
                             em_cpu__by_elsize(em_dtype_size(c->in[0].dtype), loops), NULL);
}

int em_cpu__register_binary(em_registry *reg)
{
    static const em_kernel_fn fns[] = {k_add, k_sub, k_mul, k_div, k_pow, k_maximum,
                                       k_minimum, k_eq, k_ne, k_lt, k_le, k_gt, k_ge,
                                       k_threshold_backward};
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        int rc = em_register_kernel(reg, "cpu", ops[i].name, fns[i], EM_KERNEL_STRIDED,
                                    ops[i].dtypes);
        if (rc < 0)
            return rc;
    }
    int rc = em_register_kernel(reg, "cpu", "where", k_where, EM_KERNEL_STRIDED,
                                EM_DTYPES_ALL);
    return rc < 0 ? rc : EM_OK;
}
