/* backends/opencl/kernels/reduce.cl - sum and amax (one text, EM_RED_MAX picks) and argmax
 * (host side: reduce.c). */
/* ---- reductions: sum (EM_RED_MAX 0) or amax (1) over the reduced dims (R) of each kept
 * position (K) ---- */
#if EM_RED_MAX
#define ACC T_CT
#define OUT_ST T_ST
#define LDA(x) T_LD(x)
#define OUT(a) T_SV(a)
/* NaN sticks: a NaN x replaces a, and nothing replaces a NaN a. */
#define COMB(a, x) ((((x) > (a)) || T_ISNAN(x)) ? (x) : (a))
#define IDENT ((ACC)T_LOWEST)
#elif T_ISFLOAT
#define ACC T_CT
#define OUT_ST T_ST
#define LDA(x) T_LD(x)
#define OUT(a) T_SV(a)
#define COMB(a, x) ((a) + (x))
#define IDENT ((ACC)0)
#else
#define ACC long
#define OUT_ST long
#define LDA(x) ((long)T_LD(x))
#define OUT(a) (a)
#define COMB(a, x) ((long)((ulong)(a) + (ulong)(x)))
#define IDENT ((ACC)0)
#endif

/* Reduces R positions [r0, r1) of the input at `base`, in order; a dense run uses four
 * lanes (shorter dependency chains, and what a CPU device vectorises). */
ACC red_run(__global const T_ST *a, long base, long r0, long r1, int nr, long8 rsh,
            long8 rst)
{
    ACC acc = IDENT;
    if (nr == 1 && rst.s0 == 1) {
        ACC a1 = IDENT, a2 = IDENT, a3 = IDENT;
        __global const T_ST *x = a + base;
        long r = r0;
        for (; r + 4 <= r1; r += 4) {
            acc = COMB(acc, LDA(x[r]));
            a1 = COMB(a1, LDA(x[r + 1]));
            a2 = COMB(a2, LDA(x[r + 2]));
            a3 = COMB(a3, LDA(x[r + 3]));
        }
        for (; r < r1; r++)
            acc = COMB(acc, LDA(x[r]));
        return COMB(COMB(acc, a1), COMB(a2, a3));
    }
    if (nr == 1) {
        long s = rst.s0;
        for (long r = r0; r < r1; r++)
            acc = COMB(acc, LDA(a[base + r * s]));
        return acc;
    }
    for (long r = r0; r < r1; r++)
        acc = COMB(acc, LDA(a[base + em_off(r, nr, rsh, rst)]));
    return acc;
}

/* One work-item per output. */
__kernel void red_wi(__global OUT_ST *o, long oo, __global const T_ST *a, long ao,
                     long nout, int nk, long8 ksh, long8 kst, long nred, int nr, long8 rsh,
                     long8 rst)
{
    EM_EACH(j, nout)
        o[oo + j] = OUT(red_run(a, ao + em_off(j, nk, ksh, kst), 0, nred, nr, rsh, rst));
}

/* CPU devices, when the innermost kept dim is dense (sum over rows of a matrix): each item
 * reduces up to 16 neighbouring outputs of one run of kin at once, so that its inner loop
 * reads along memory and vectorises. */
__kernel void red_tile(__global OUT_ST *o, long oo, __global const T_ST *a, long ao,
                       long ntile, long kin, int nk, long8 ksh, long8 kst, long nred,
                       int nr, long8 rsh, long8 rst)
{
    EM_EACH(t, ntile) {
        long tpr = (kin + 15) / 16;
        long j0 = t / tpr * kin + t % tpr * 16;
        long w = min(16L, kin - t % tpr * 16);
        __global const T_ST *x = a + ao + em_off(j0, nk, ksh, kst);
        ACC acc[16];
        for (int c = 0; c < 16; c++)
            acc[c] = IDENT;
        for (long r = 0; r < nred; r++) {
            __global const T_ST *xr = x + (nr == 1 ? r * rst.s0 : em_off(r, nr, rsh, rst));
            if (w == 16) {
                for (int c = 0; c < 16; c++)
                    acc[c] = COMB(acc[c], LDA(xr[c]));
            } else {
                for (int c = 0; c < w; c++)
                    acc[c] = COMB(acc[c], LDA(xr[c]));
            }
        }
        for (int c = 0; c < w; c++)
            o[oo + j0 + c] = OUT(acc[c]);
    }
}
/* Part p of `parts` of one output's range, by one work-group: each item reduces a
 * contiguous run (chunked: CPU devices, where an item is a loop iteration) or every L-th
 * element (interleaved: GPUs, where neighbouring items should read neighbouring
 * addresses), then a tree in local memory joins the items. */
ACC red_group(__global const T_ST *a, long base, long nred, int nr, long8 rsh, long8 rst,
              long p, long parts, int chunked, __local ACC *sc)
{
    int t = get_local_id(0), L = get_local_size(0);
    long r0 = nred * p / parts, r1 = nred * (p + 1) / parts;
    ACC acc;
    if (chunked) {
        long per = (r1 - r0 + L - 1) / L;
        long s0 = r0 + t * per, s1 = s0 + per < r1 ? s0 + per : r1;
        acc = s0 < s1 ? red_run(a, base, s0, s1, nr, rsh, rst) : IDENT;
    } else {
        acc = IDENT;
        if (nr == 1) {
            long s = rst.s0;
            for (long r = r0 + t; r < r1; r += L)
                acc = COMB(acc, LDA(a[base + r * s]));
        } else {
            for (long r = r0 + t; r < r1; r += L)
                acc = COMB(acc, LDA(a[base + em_off(r, nr, rsh, rst)]));
        }
    }
    sc[t] = acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = L / 2; h > 0; h >>= 1) {
        if (t < h)
            sc[t] = COMB(sc[t], sc[t + h]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    return sc[0];
}

/* One work-group per output. */
__kernel void red_wg(__global OUT_ST *o, long oo, __global const T_ST *a, long ao, int nk,
                     long8 ksh, long8 kst, long nred, int nr, long8 rsh, long8 rst,
                     int chunked, __local ACC *sc)
{
    long j = get_group_id(0);
    long base = ao + em_off(j, nk, ksh, kst);
    ACC acc = red_group(a, base, nred, nr, rsh, rst, 0, 1, chunked, sc);
    if (get_local_id(0) == 0)
        o[oo + j] = OUT(acc);
}

/* One work-group per (output, part): partials, joined by red_comb. */
__kernel void red_wgp(__global ACC *part, __global const T_ST *a, long ao, int nk,
                      long8 ksh, long8 kst, long nred, int nr, long8 rsh, long8 rst,
                      long parts, int chunked, __local ACC *sc)
{
    long g = get_group_id(0), j = g / parts, p = g % parts;
    long base = ao + em_off(j, nk, ksh, kst);
    ACC acc = red_group(a, base, nred, nr, rsh, rst, p, parts, chunked, sc);
    if (get_local_id(0) == 0)
        part[g] = acc;
}

/* The partials of each output, joined in part order. */
__kernel void red_comb(__global OUT_ST *o, long oo, __global const ACC *part, long nout,
                       long parts)
{
    EM_EACH(j, nout) {
        ACC acc = part[j * parts];
        for (long p = 1; p < parts; p++)
            acc = COMB(acc, part[j * parts + p]);
        o[oo + j] = OUT(acc);
    }
}

/* ---- argmax along one dim of a contiguous [outer, D, inner] input ---- */
#if EM_RED_MAX && !T_ISBOOL
/* A candidate v replaces the best bv when larger or NaN, unless bv is already NaN: the
 * first maximum, or the first NaN, wins. */
#define ARG_BETTER(v, bv) (!T_ISNAN(bv) && ((v) > (bv) || T_ISNAN(v)))
__kernel void argmax_wi(__global long *o, long oo, __global const T_ST *a, long ao,
                        long nout, long D, long inner)
{
    EM_EACH(j, nout) {
        long base = ao + j / inner * D * inner + j % inner;
        T_CT bv = T_LD(a[base]);
        long bi = 0;
        for (long d = 1; d < D; d++) {
            T_CT v = T_LD(a[base + d * inner]);
            int take = ARG_BETTER(v, bv);
            bv = take ? v : bv;
            bi = take ? d : bi;
        }
        o[oo + j] = bi;
    }
}

/* CPU devices with inner > 1: each item takes up to 16 neighbouring inner positions, so
 * that its inner loop reads along memory. */
__kernel void argmax_tile(__global long *o, long oo, __global const T_ST *a, long ao,
                          long ntile, long D, long inner)
{
    EM_EACH(t, ntile) {
        long tpr = (inner + 15) / 16, ob = t / tpr, i0 = t % tpr * 16;
        long w = min(16L, inner - i0);
        __global const T_ST *x = a + ao + ob * D * inner + i0;
        T_CT bv[16];
        long bi[16];
        for (int c = 0; c < 16; c++) {
            bv[c] = c < w ? T_LD(x[c]) : 0;
            bi[c] = 0;
        }
        for (long d = 1; d < D; d++) {
            __global const T_ST *xr = x + d * inner;
            for (int c = 0; c < w; c++) {
                T_CT v = T_LD(xr[c]);
                int take = ARG_BETTER(v, bv[c]);
                bv[c] = take ? v : bv[c];
                bi[c] = take ? d : bi[c];
            }
        }
        for (int c = 0; c < w; c++)
            o[oo + ob * inner + i0 + c] = bi[c];
    }
}

/* Whether candidate (v2, i2) beats (v1, i1) in the scan order: NaN first (lowest index),
 * then larger, then lower index. Associative, so the tree gives the sequential answer. */
int em_arg_take(T_CT v1, long i1, T_CT v2, long i2)
{
    if (i2 < 0)
        return 0;
    if (i1 < 0)
        return 1;
    int n1 = T_ISNAN(v1), n2 = T_ISNAN(v2);
    if (n1 || n2)
        return n2 && (!n1 || i2 < i1);
    return v2 > v1 || (v2 == v1 && i2 < i1);
}

/* One work-group per output: each item scans a contiguous run of D (chunked, CPU devices)
 * or every L-th index (GPUs), then a tree joins the items' candidates. */
__kernel void argmax_wg(__global long *o, long oo, __global const T_ST *a, long ao, long D,
                        long inner, int chunked, __local T_CT *sv, __local long *si)
{
    long j = get_group_id(0);
    int t = get_local_id(0), L = get_local_size(0);
    long base = ao + j / inner * D * inner + j % inner;
    T_CT bv = 0;
    long bi = -1;
    long per = chunked ? (D + L - 1) / L : 1;
    long d0 = chunked ? t * per : t, d1 = chunked ? min(d0 + per, D) : D;
    long step = chunked ? 1 : L;
    for (long d = d0; d < d1; d += step) {
        T_CT v = T_LD(a[base + d * inner]);
        if (bi < 0 || ARG_BETTER(v, bv)) {
            bv = v;
            bi = d;
        }
    }
    sv[t] = bv;
    si[t] = bi;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int h = L / 2; h > 0; h >>= 1) {
        if (t < h && em_arg_take(sv[t], si[t], sv[t + h], si[t + h])) {
            sv[t] = sv[t + h];
            si[t] = si[t + h];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (t == 0)
        o[oo + j] = si[0];
}
#endif
