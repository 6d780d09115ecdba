/* backends/opencl/kernels/optim.cl - the optimizer family (EM_OCL_OPTIM):
 * sgd_step, adam_step and rmsprop_step in one pass over a parameter. Host side: optim.c.
 *
 * float32 and float64 only (T_CT is T_ST). The arithmetic is the core composites', op for op
 * (core/optim_ops.c), with FP_CONTRACT off as in every family but matmul, so on a device with
 * correctly rounded division and square root the results are the composite's bits. The host
 * passes the scalars already converted to the dtype. The parameter is updated in place in the
 * output buffer; `mask` holds the loop's flags (bit 0 maximize, then per op as in optim.c).
 */
/* ---- optim: fused optimizer updates ---- */
#if T_ISFLOAT
__kernel void sgd_step(__global T_ST *p, long po, __global const T_ST *g, long go,
                       __global T_ST *buf, long bo, long n, int mask, int first,
                       T_CT wd, T_CT mom, T_CT damp1, T_CT nlr)
{
    EM_EACH(i, n) {
        T_CT d = (mask & 1) ? -g[go + i] : g[go + i];
        if (mask & 2)
            d = d + p[po + i] * wd;
        if (mask & 4) {
            T_CT m = first ? d : buf[bo + i] * mom + d * damp1;
            buf[bo + i] = m;
            d = (mask & 8) ? d + m * mom : m;
        }
        p[po + i] = p[po + i] + d * nlr;
    }
}

__kernel void adam_step(__global T_ST *p, long po, __global const T_ST *g, long go,
                        __global T_ST *m, long mo, __global T_ST *v, long vo,
                        __global T_ST *vmax, long xo, long n, int mask, T_CT wd,
                        T_CT shrink, T_CT b1, T_CT b1c, T_CT b2, T_CT b2c, T_CT bc2,
                        T_CT eps, T_CT nstep)
{
    EM_EACH(i, n) {
        T_CT gi = (mask & 1) ? -g[go + i] : g[go + i];
        T_CT pi = p[po + i];
        if (mask & 2)
            gi = gi + pi * wd;
        if (mask & 4)
            pi = pi * shrink;
        T_CT mi = m[mo + i] * b1 + gi * b1c;
        T_CT vi = v[vo + i] * b2 + (gi * gi) * b2c;
        m[mo + i] = mi;
        v[vo + i] = vi;
        if (mask & 8) {
            T_CT x = vmax[xo + i];
            vi = (x > vi || x != x) ? x : vi;
            vmax[xo + i] = vi;
        }
        T_CT denom = sqrt(vi) / bc2 + eps;
        p[po + i] = pi + (mi / denom) * nstep;
    }
}

__kernel void rmsprop_step(__global T_ST *p, long po, __global const T_ST *g, long go,
                           __global T_ST *sq, long so, __global T_ST *buf, long bo,
                           __global T_ST *ga, long ao, long n, int mask, T_CT wd,
                           T_CT al, T_CT alc, T_CT eps, T_CT mom, T_CT nlr)
{
    EM_EACH(i, n) {
        T_CT gi = (mask & 1) ? -g[go + i] : g[go + i];
        if (mask & 2)
            gi = gi + p[po + i] * wd;
        T_CT si = sq[so + i] * al + (gi * gi) * alc;
        sq[so + i] = si;
        T_CT var = si;
        if (mask & 4) {
            T_CT gai = ga[ao + i] * al + gi * alc;
            ga[ao + i] = gai;
            var = si + (gai * gai) * (T_CT)(-1);
        }
        T_CT r = gi / (sqrt(var) + eps);
        if (mask & 8) {
            r = buf[bo + i] * mom + r;
            buf[bo + i] = r;
        }
        p[po + i] = p[po + i] + r * nlr;
    }
}
#endif
