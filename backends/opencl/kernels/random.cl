/* backends/opencl/kernels/random.cl - rand_uniform, rand_normal, rand_int on the CPU backend's
 * Philox stream (host side: kernels.c). */
/* ---- random: Philox 4x32-10, the stream of include/ember/numeric.h ---- */
uint4 em_philox(ulong seed, ulong ctr)
{
    uint c0 = (uint)ctr, c1 = (uint)(ctr >> 32), c2 = 0, c3 = 0;
    uint k0 = (uint)seed, k1 = (uint)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint hi0 = mul_hi(0xD2511F53u, c0), lo0 = 0xD2511F53u * c0;
        uint hi1 = mul_hi(0xCD9E8D57u, c2), lo1 = 0xCD9E8D57u * c2;
        uint n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
        c0 = n0;
        c1 = lo1;
        c2 = n2;
        c3 = lo0;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    return (uint4)(c0, c1, c2, c3);
}

/* The lanes v[4] of Philox block offset + j, for work-item j of a kernel that writes elements
 * k = w j + p (p < w) of n; false for a work-item past the last block. */
bool em_philox_block(long j, long n, int w, ulong seed, ulong offset, uint *v)
{
    if (j >= (n + w - 1) / w)
        return false;
    vstore4(em_philox(seed, offset + (ulong)j), 0, v);
    return true;
}

/* Element k = 4j + lane of block offset + j: a + (b - a) * u, u keeping 24 - drop bits. */
__kernel void rand_uniform(__global T_ST *o, long oo, long n, ulong seed, ulong offset,
                           IMF a, IMF b, int drop, IMF scale)
{
    long j = EM_GID;
    uint v[4];
    if (!em_philox_block(j, n, 4, seed, offset, v))
        return;
    for (int l = 0; l < 4 && j * 4 + l < n; l++) {
        IMF u = (IMF)(v[l] >> 8 >> drop) * scale;
        o[oo + j * 4 + l] = T_FROM_F(a + (b - a) * u);
    }
}

#define EM_2M24 IMF_C(5.9604644775390625e-8)

/* Element k = 2j + p: Box-Muller over lanes (2p, 2p + 1) of block offset + j. */
__kernel void rand_normal(__global T_ST *o, long oo, long n, ulong seed, ulong offset,
                          IMF a, IMF b)
{
    long j = EM_GID;
    uint v[4];
    if (!em_philox_block(j, n, 2, seed, offset, v))
        return;
    for (int p = 0; p < 2 && j * 2 + p < n; p++) {
        /* u1 in (0, 1], u2 in [0, 1), 24 bits each (2^-24 = 5.96e-8) */
        IMF u1 = ((IMF)(v[2 * p] >> 8) + IMF_C(1.0)) * EM_2M24;
        IMF u2 = (IMF)(v[2 * p + 1] >> 8) * EM_2M24;
        IMF z = sqrt(IMF_C(-2.0) * log(u1)) * cos(IMF_C(6.283185307179586) * u2);
        o[oo + j * 2 + p] = T_FROM_F(a + b * z);
    }
}

/* Element k = 2j + p: low + r % range, r the 64 bits of lanes (2p, 2p + 1). */
__kernel void rand_int(__global T_ST *o, long oo, long n, ulong seed, ulong offset,
                       long low, ulong range)
{
    long j = EM_GID;
    uint v[4];
    if (!em_philox_block(j, n, 2, seed, offset, v))
        return;
    for (int p = 0; p < 2 && j * 2 + p < n; p++) {
        ulong r = ((ulong)v[2 * p] << 32) | v[2 * p + 1];
        o[oo + j * 2 + p] = T_FROM_I((long)((ulong)low + r % range));
    }
}
