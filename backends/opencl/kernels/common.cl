/* backends/opencl/kernels/common.cl - the OpenCL C every family is preceded by: indexing and
 * number formats.
 *
 * Each family (a .cl file beside this one) is written once over the type macros that program.c
 * puts in front of it (T_ST, T_CT, T_LD, T_SV, ... for the dtype a program is built for; D_* for
 * copy's destination), so one text serves every dtype. This common part (indexing, f16/bf16 and
 * the float -> integer casts, all bit-identical to include/ember/numeric.h and the CPU backend)
 * precedes every family. Kernels take shapes and strides as long8 (innermost last, up to 8
 * dims) and element offsets as long. Each work-item handles one element (or output, or block);
 * launches round the global size up to the work-group size and the items past the end do
 * nothing. The build embeds these files in the plugin (embed.py).
 */
/* ---- common: indexing and number formats ---- */
#define EM_GID ((long)get_global_id(0))
/* One element per work-item; the launch rounds the global size up to the work-group size.
 * (A grid-stride loop would cap the launch, but it defeats PoCL's work-group vectoriser:
 * 1 GB/s instead of 15 on a 16M-float add.) */
#define EM_EACH(i, n) long i = EM_GID; if (i < (n))

/* Element offset of linear index k in a view of nd dims (innermost last). */
long em_off(long k, int nd, long8 sh8, long8 st8)
{
    if (nd == 1)
        return k * st8.s0;
    long sh[8], st[8];
    vstore8(sh8, 0, sh);
    vstore8(st8, 0, st);
    long off = 0;
    for (int d = nd - 1; d >= 0; d--) {
        long i = k % sh[d];
        k /= sh[d];
        off += i * st[d];
    }
    return off;
}

/* T_ISNAN of integer types: a call rather than a constant 0, which the compiler would warn
 * about in `d < D && !T_ISNAN(v)`. */
int em_never(long x) { return 0; }

/* IEEE binary16 and bfloat16 as in include/ember/numeric.h, bit for bit. */
float em_h2f(ushort h)
{
    uint sign = (uint)(h & 0x8000u) << 16;
    uint e = (h >> 10) & 0x1fu;
    uint man = h & 0x3ffu;
    if (e == 0x1fu)
        return as_float(sign | 0x7f800000u | (man << 13));
    if (e == 0) {
        if (man == 0)
            return as_float(sign);
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return as_float(sign | ((e + 112u) << 23) | (man << 13));
}

ushort em_f2h(float f)
{
    uint x = as_uint(f);
    uint sign = (x >> 16) & 0x8000u;
    uint ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)
        return (ushort)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u)
        return (ushort)(sign | 0x7c00u);
    if (ax < 0x38800000u) {
        float v = as_float(ax) * 16777216.0f;
        uint m = (uint)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1u)))
            m++;
        return (ushort)(sign | m);
    }
    uint r = ax + 0xfffu + ((ax >> 13) & 1u) - (112u << 23);
    return (ushort)(sign | (r >> 13));
}

float em_bf2f(ushort b) { return as_float((uint)b << 16); }

ushort em_f2bf(float f)
{
    uint x = as_uint(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)
        return (ushort)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (ushort)(x >> 16);
}

/* Float to integer as the CPU backend casts: truncation, NaN and out of range give the
 * minimum. */
long em_f2i64(IMF v)
{
    if (!(v > IMF_C(-9223372036854775809.0) && v < IMF_C(9223372036854775808.0)))
        return LONG_MIN;
    return (long)v;
}

int em_f2i32(IMF v)
{
    if (!(v > IMF_C(-2147483649.0) && v < IMF_C(2147483648.0)))
        return INT_MIN;
    return (int)v;
}
