/* backends/opencl/kernels/binary.cl - the binary elementwise ops and where, each contiguous
 * (_c) and strided (_s) (host side: kernels.c). */
/* ---- binary: out = f(a, b) with a, b broadcast to out's shape; where(a, b, cond) ---- */
#define BIN_K(name, OT, EXPR) \
__kernel void name##_c(__global OT *o, long oo, __global const T_ST *a, long ao, \
                       __global const T_ST *b, long bo, long n) \
{ \
    EM_EACH(i, n) { \
        T_CT x = T_LD(a[ao + i]), y = T_LD(b[bo + i]); \
        o[oo + i] = EXPR; \
    } \
} \
__kernel void name##_s(__global OT *o, long oo, __global const T_ST *a, long ao, \
                       __global const T_ST *b, long bo, long n, int nd, long8 sh, \
                       long8 as, long8 bs) \
{ \
    EM_EACH(i, n) { \
        T_CT x = T_LD(a[ao + em_off(i, nd, sh, as)]); \
        T_CT y = T_LD(b[bo + em_off(i, nd, sh, bs)]); \
        o[oo + i] = EXPR; \
    } \
}

#if T_ISINT
/* Integer power by squaring, as PyTorch's powi: b < 0 gives 1 for a == 1, +-1 for
 * a == -1 and 0 otherwise. */
T_CT em_powi(T_CT a, T_CT b)
{
#if T_SIGNED
    if (b < 0)
        return a == 1 ? 1 : a == -1 ? ((b & 1) ? -1 : 1) : 0;
#endif
    T_UT r = 1, base = (T_UT)a;
    for (T_UT e = (T_UT)b; e; e >>= 1, base *= base)
        if (e & 1)
            r *= base;
    return (T_CT)r;
}
#endif

#if T_ISFLOAT
BIN_K(add, T_ST, T_SV(x + y))
BIN_K(sub, T_ST, T_SV(x - y))
BIN_K(mul, T_ST, T_SV(x * y))
BIN_K(div, T_ST, T_SV(x / y))
BIN_K(pow, T_ST, T_SV(pow(x, y)))
BIN_K(maximum, T_ST, T_SV((x > y || T_ISNAN(x)) ? x : y))
BIN_K(minimum, T_ST, T_SV((x < y || T_ISNAN(x)) ? x : y))
#elif T_ISINT
BIN_K(add, T_ST, (T_CT)((T_UT)x + (T_UT)y))
BIN_K(sub, T_ST, (T_CT)((T_UT)x - (T_UT)y))
BIN_K(mul, T_ST, (T_CT)((T_UT)x * (T_UT)y))
BIN_K(pow, T_ST, em_powi(x, y))
BIN_K(maximum, T_ST, x > y ? x : y)
BIN_K(minimum, T_ST, x < y ? x : y)
#else
BIN_K(add, uchar, (uchar)((x | y) != 0))
BIN_K(mul, uchar, (uchar)(x != 0 && y != 0))
BIN_K(maximum, uchar, (uchar)((x | y) != 0))
BIN_K(minimum, uchar, (uchar)(x != 0 && y != 0))
#endif
BIN_K(eq, uchar, (uchar)(x == y))
BIN_K(ne, uchar, (uchar)(x != y))
BIN_K(lt, uchar, (uchar)(x < y))
BIN_K(le, uchar, (uchar)(x <= y))
BIN_K(gt, uchar, (uchar)(x > y))
BIN_K(ge, uchar, (uchar)(x >= y))

__kernel void where_c(__global T_ST *o, long oo, __global const T_ST *a, long ao,
                      __global const T_ST *b, long bo, __global const uchar *c, long co,
                      long n)
{
    EM_EACH(i, n)
        o[oo + i] = c[co + i] ? a[ao + i] : b[bo + i];
}
__kernel void where_s(__global T_ST *o, long oo, __global const T_ST *a, long ao,
                      __global const T_ST *b, long bo, __global const uchar *c, long co,
                      long n, int nd, long8 sh, long8 as, long8 bs, long8 cs)
{
    EM_EACH(i, n)
        o[oo + i] = c[co + em_off(i, nd, sh, cs)] ? a[ao + em_off(i, nd, sh, as)]
                                                  : b[bo + em_off(i, nd, sh, bs)];
}
