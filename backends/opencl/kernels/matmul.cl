/* backends/opencl/kernels/matmul.cl - mm_tiled, mm_reg and mm_small (host side: matmul.c). */
/* ---- matmul: c[b, M, N] = a[b, M, K] @ b[b, K, N], any strides on a and b ---- */
#if T_ISFLOAT
#define MM_T T_CT
#define MM_LD(x) T_LD(x)
#define MM_MAC(acc, x, y) ((acc) + (x) * (y))
#define MM_OUT(acc) T_SV(acc)
#elif T_ISINT
#define MM_T long
#define MM_LD(x) ((long)(x))
#define MM_MAC(acc, x, y) ((long)((ulong)(acc) + (ulong)(x) * (ulong)(y)))
#define MM_OUT(acc) ((T_ST)(acc))
#else
#define MM_T long
#define MM_LD(x) ((long)((x) != 0))
#define MM_MAC(acc, x, y) ((acc) | ((x) & (y)))
#define MM_OUT(acc) ((uchar)((acc) != 0))
#endif

/* Adds batch bi's element offsets to *aoff and *boff: nb batch dims of shapes bsh, with a's
 * strides ab8 and b's bb8 (no batch dims: nothing to add). */
void mm_batch(long bi, int nb, long8 bsh, long8 ab8, long8 bb8, long *aoff, long *boff)
{
    if (nb > 0) {
        *aoff += em_off(bi, nb, bsh, ab8);
        *boff += em_off(bi, nb, bsh, bb8);
    }
}

#define TS 64          /* output tile: TS x TS per work-group */
#define TK 16          /* k per step */
#define RT 4           /* outputs per work-item along each side: 16 x 16 items */

__kernel __attribute__((reqd_work_group_size(16, 16, 1)))
void mm_tiled(__global T_ST *c, long co, __global const T_ST *a, long ao,
              __global const T_ST *b, long bo, long M, long N, long K, long ars, long acs,
              long brs, long bcs, int nb, long8 bsh, long8 ab8, long8 bb8)
{
    __local MM_T As[TK][TS + 1];
    __local MM_T Bs[TK][TS + 1];
    int tx = get_local_id(0), ty = get_local_id(1), lid = ty * 16 + tx;
    long n0 = (long)get_group_id(0) * TS, m0 = (long)get_group_id(1) * TS;
    long bi = get_global_id(2);
    long aoff = ao, boff = bo;
    mm_batch(bi, nb, bsh, ab8, bb8, &aoff, &boff);
    long coff = co + bi * M * N;
    MM_T acc[RT][RT] = {{0}};
    for (long k0 = 0; k0 < K; k0 += TK) {
        for (int l = 0; l < TS * TK / 256; l++) {
            int e = lid + l * 256;
            int ak = e % TK, am = e / TK;
            long m = m0 + am, k = k0 + ak;
            As[ak][am] = (m < M && k < K) ? MM_LD(a[aoff + m * ars + k * acs]) : (MM_T)0;
            int bn = e % TS, bk = e / TS;
            long n = n0 + bn, k2 = k0 + bk;
            Bs[bk][bn] = (n < N && k2 < K) ? MM_LD(b[boff + k2 * brs + n * bcs]) : (MM_T)0;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int kk = 0; kk < TK; kk++) {
            MM_T ar[RT], br[RT];
            for (int i = 0; i < RT; i++)
                ar[i] = As[kk][ty + 16 * i];
            for (int j = 0; j < RT; j++)
                br[j] = Bs[kk][tx + 16 * j];
            for (int i = 0; i < RT; i++)
                for (int j = 0; j < RT; j++)
                    acc[i][j] = MM_MAC(acc[i][j], ar[i], br[j]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    for (int i = 0; i < RT; i++)
        for (int j = 0; j < RT; j++) {
            long m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
            if (m < M && n < N)
                c[coff + m * N + n] = MM_OUT(acc[i][j]);
        }
}

/* For CPU devices (PoCL): no local memory and no barriers, which such devices emulate at a
 * cost. Each work-item computes RM x CN outputs in registers; the inner loop runs along a
 * row of b, which the device's compiler vectorises. */
#define RM 8           /* must match MM_RM in matmul.c */
#define CN 16          /* must match MM_CN in matmul.c */
__kernel void mm_reg(__global T_ST *c, long co, __global const T_ST *a, long ao,
                     __global const T_ST *b, long bo, long M, long N, long K, long ars,
                     long acs, long brs, long bcs, int nb, long8 bsh, long8 ab8, long8 bb8,
                     long tm, long tn, long total)
{
    EM_EACH(g, total) {
        long bi = g / (tm * tn), t = g % (tm * tn);
        long m0 = t / tn * RM, n0 = t % tn * CN;
        long aoff = ao, boff = bo;
        mm_batch(bi, nb, bsh, ab8, bb8, &aoff, &boff);
        long coff = co + bi * M * N;
        MM_T acc[RM][CN] = {{0}};
        if (m0 + RM <= M && n0 + CN <= N && bcs == 1) {
            for (long k = 0; k < K; k++) {
                __global const T_ST *br = b + boff + k * brs + n0;
                for (int i = 0; i < RM; i++) {
                    MM_T av = MM_LD(a[aoff + (m0 + i) * ars + k * acs]);
                    for (int j = 0; j < CN; j++)
                        acc[i][j] = MM_MAC(acc[i][j], av, MM_LD(br[j]));
                }
            }
        } else {
            int rm = M - m0 < RM ? (int)(M - m0) : RM;
            int cn = N - n0 < CN ? (int)(N - n0) : CN;
            for (long k = 0; k < K; k++)
                for (int i = 0; i < rm; i++) {
                    MM_T av = MM_LD(a[aoff + (m0 + i) * ars + k * acs]);
                    for (int j = 0; j < cn; j++)
                        acc[i][j] = MM_MAC(acc[i][j], av,
                                           MM_LD(b[boff + k * brs + (n0 + j) * bcs]));
                }
        }
        for (int i = 0; i < RM; i++)
            for (int j = 0; j < CN; j++)
                if (m0 + i < M && n0 + j < N)
                    c[coff + (m0 + i) * N + n0 + j] = MM_OUT(acc[i][j]);
    }
}

/* One work-item per output: small products, and devices without 16 x 16 work-groups. */
__kernel void mm_small(__global T_ST *c, long co, __global const T_ST *a, long ao,
                       __global const T_ST *b, long bo, long M, long N, long K, long ars,
                       long acs, long brs, long bcs, int nb, long8 bsh, long8 ab8,
                       long8 bb8, long total)
{
    EM_EACH(g, total) {
        long bi = g / (M * N), mn = g % (M * N), m = mn / N, n = mn % N;
        long aoff = ao + m * ars, boff = bo + n * bcs;
        mm_batch(bi, nb, bsh, ab8, bb8, &aoff, &boff);
        MM_T acc = 0;
        for (long k = 0; k < K; k++)
            acc = MM_MAC(acc, MM_LD(a[aoff + k * acs]), MM_LD(b[boff + k * brs]));
        c[co + g] = MM_OUT(acc);
    }
}
