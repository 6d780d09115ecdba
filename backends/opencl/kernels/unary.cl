/* backends/opencl/kernels/unary.cl - the unary elementwise ops, each contiguous (_c) and
 * strided (_s) (host side: kernels.c). */
/* ---- unary: out = f(a), out contiguous, a contiguous (_c) or strided (_s) ---- */
#define UN_K(name, EXPR) \
__kernel void name##_c(__global T_ST *o, long oo, __global const T_ST *a, long ao, \
                       long n) \
{ \
    EM_EACH(i, n) { \
        T_CT x = T_LD(a[ao + i]); \
        o[oo + i] = T_SV(EXPR); \
    } \
} \
__kernel void name##_s(__global T_ST *o, long oo, __global const T_ST *a, long ao, \
                       long n, int nd, long8 sh, long8 as) \
{ \
    EM_EACH(i, n) { \
        T_CT x = T_LD(a[ao + em_off(i, nd, sh, as)]); \
        o[oo + i] = T_SV(EXPR); \
    } \
}

#if T_ISFLOAT
UN_K(neg, -x)
UN_K(abs, fabs(x))
UN_K(relu, x < (T_CT)0 ? (T_CT)0 : x)
UN_K(exp, exp(x))
UN_K(log, log(x))
UN_K(sqrt, sqrt(x))
UN_K(sin, sin(x))
UN_K(cos, cos(x))
UN_K(tanh, tanh(x))
UN_K(sigmoid, (T_CT)1 / ((T_CT)1 + exp(-x)))
#elif T_ISINT
UN_K(neg, (T_CT)((T_UT)0 - (T_UT)x))
#if T_SIGNED
UN_K(abs, x < 0 ? (T_CT)((T_UT)0 - (T_UT)x) : x)
UN_K(relu, x < 0 ? (T_CT)0 : x)
#else
UN_K(abs, x)
UN_K(relu, x)
#endif
#endif
