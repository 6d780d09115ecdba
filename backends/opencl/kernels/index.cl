/* backends/opencl/kernels/index.cl - gather_s and scatter_s (host side: kernels.c). */
/* ---- gather and scatter_add along one dim ---- */
/* out[i] = a[a_view(i) + index[i] * ads]: a seen with index's shape, stride 0 along
 * dim. */
__kernel void gather_s(__global T_ST *o, long oo, __global const T_ST *a, long ao,
                       __global const long *ix, long io, long n, int nd, long8 sh,
                       long8 as, long8 is, long ads)
{
    EM_EACH(i, n)
        o[oo + i] = a[ao + em_off(i, nd, sh, as) + ix[io + em_off(i, nd, sh, is)] * ads];
}

#if T_ISFLOAT
#define SC_ADD(v, y) T_SV(T_LD(v) + T_LD(y))
#elif T_ISINT
#define SC_ADD(v, y) ((T_CT)((T_UT)(v) + (T_UT)(y)))
#else
#define SC_ADD(v, y) ((uchar)((v) != 0 || (y) != 0))
#endif

/* Each work-item owns the output line of one position (dim collapsed) and adds its D
 * contributions in index order: no atomics, and the CPU backend's order of additions. */
__kernel void scatter_s(__global T_ST *o, long oo, __global const long *ix, long io,
                        __global const T_ST *s, long so, long npos, int nd, long8 sh,
                        long8 ost, long8 ist, long8 sst, long D, long ods, long ids,
                        long sds)
{
    EM_EACH(p, npos) {
        long ob = oo + em_off(p, nd, sh, ost);
        long ib = io + em_off(p, nd, sh, ist);
        long sb = so + em_off(p, nd, sh, sst);
        for (long d = 0; d < D; d++) {
            long dst = ob + ix[ib + d * ids] * ods;
            o[dst] = SC_ADD(o[dst], s[sb + d * sds]);
        }
    }
}
