/* backends/opencl/kernels/copy.cl - copy_c and copy_s: copies with casts between any two dtypes
 * (host side: kernels.c). */
/* ---- copy: T -> D, any strides on both sides ---- */
#if EM_SAME
#define EM_CONVERT(x) (x)
#elif T_ISFLOAT
#define EM_CONVERT(x) D_FROM_F((IMF)T_LD(x))
#else
#define EM_CONVERT(x) D_FROM_I((long)T_LD(x))
#endif

__kernel void copy_c(__global D_ST *o, long oo, __global const T_ST *a, long ao, long n)
{
    EM_EACH(i, n)
        o[oo + i] = EM_CONVERT(a[ao + i]);
}

__kernel void copy_s(__global D_ST *o, long oo, int ond, long8 osh, long8 ost,
                     __global const T_ST *a, long ao, int snd, long8 ash, long8 ast,
                     long n)
{
    EM_EACH(i, n)
        o[oo + em_off(i, ond, osh, ost)] = EM_CONVERT(a[ao + em_off(i, snd, ash, ast)]);
}
