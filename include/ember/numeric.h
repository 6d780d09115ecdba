/* ember/numeric.h - number formats and the Philox generator, shared by every backend.
 *
 * Header-only and free of libc calls beyond <math.h>, so CPU code, CUDA device code (with
 * EM_HD defined as __host__ __device__) and host code that generates OpenCL reference values
 * all compute the same bits. The random stream is part of Ember's contract: one seed gives the
 * same numbers on every backend.
 */
#ifndef EMBER_NUMERIC_H
#define EMBER_NUMERIC_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#ifndef EM_HD
#define EM_HD
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- half precision (IEEE binary16) and bfloat16 ------------------------ */

static inline EM_HD uint32_t em__f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline EM_HD float em__bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static inline EM_HD float em_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    if (exp == 0x1f)                                  /* inf / nan */
        return em__bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0)
            return em__bits_f32(sign);
        /* subnormal: value = man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return em__bits_f32(sign | ((exp + 112u) << 23) | (man << 13));
}

/* Round to nearest even, with overflow to inf and gradual underflow. */
static inline EM_HD uint16_t em_f32_to_f16(float f)
{
    uint32_t x = em__f32_bits(f);
    uint32_t sign = (x >> 16) & 0x8000u;
    uint32_t ax = x & 0x7fffffffu;
    if (ax >= 0x7f800000u)                            /* inf or nan */
        return (uint16_t)(sign | 0x7c00u | (ax > 0x7f800000u ? 0x200u : 0u));
    if (ax >= 0x477ff000u)                            /* rounds to >= 65520: inf */
        return (uint16_t)(sign | 0x7c00u);
    if (ax < 0x38800000u) {                           /* below 2^-14: subnormal or zero */
        /* scale so that one f16 subnormal ulp (2^-24) is 1.0, round to nearest even */
        float v = em__bits_f32(ax) * 16777216.0f;
        uint32_t m = (uint32_t)v;
        float rem = v - (float)m;
        if (rem > 0.5f || (rem == 0.5f && (m & 1u)))
            m++;
        return (uint16_t)(sign | m);
    }
    uint32_t r = ax + 0xfffu + ((ax >> 13) & 1u) - (112u << 23);
    return (uint16_t)(sign | (r >> 13));
}

static inline EM_HD float em_bf16_to_f32(uint16_t b) { return em__bits_f32((uint32_t)b << 16); }

static inline EM_HD uint16_t em_f32_to_bf16(float f)
{
    uint32_t x = em__f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u)              /* nan: keep it quiet */
        return (uint16_t)((x >> 16) | 0x40u);
    x += 0x7fffu + ((x >> 16) & 1u);
    return (uint16_t)(x >> 16);
}

/* ---- Philox 4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3") ---- */

typedef struct em_philox_out {
    uint32_t v[4];
} em_philox_out;

static inline EM_HD void em__mulhilo32(uint32_t a, uint32_t b, uint32_t *hi, uint32_t *lo)
{
    uint64_t p = (uint64_t)a * b;
    *hi = (uint32_t)(p >> 32);
    *lo = (uint32_t)p;
}

/* Ten rounds over the 128-bit counter (ctr, 0) with the 64-bit key `seed`. */
static inline EM_HD em_philox_out em_philox4x32(uint64_t seed, uint64_t ctr)
{
    uint32_t c0 = (uint32_t)ctr, c1 = (uint32_t)(ctr >> 32), c2 = 0, c3 = 0;
    uint32_t k0 = (uint32_t)seed, k1 = (uint32_t)(seed >> 32);
    for (int r = 0; r < 10; r++) {
        uint32_t hi0, lo0, hi1, lo1;
        em__mulhilo32(0xD2511F53u, c0, &hi0, &lo0);
        em__mulhilo32(0xCD9E8D57u, c2, &hi1, &lo1);
        uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += 0x9E3779B9u;
        k1 += 0xBB67AE85u;
    }
    em_philox_out o = {{c0, c1, c2, c3}};
    return o;
}

/* The stream: element i of a draw that starts at counter `offset` uses block offset + i / 4
 * (uniform, integers) or offset + i / 2 (normal, which consumes two lanes per element).
 * Callers advance the generator's offset by the number of blocks a draw used. */

/* Uniform in [0, 1) with 24 random bits (exactly representable in f32 and f64). */
static inline EM_HD double em_philox_uniform(uint64_t seed, uint64_t offset, uint64_t i)
{
    em_philox_out o = em_philox4x32(seed, offset + i / 4);
    return (double)(o.v[i % 4] >> 8) * (1.0 / 16777216.0);
}

/* The same draw keeping only the top `bits` of those 24 (bits <= 24): the significand of a
 * narrow dtype (11 for float16, 8 for bfloat16), so that the value is exact in that dtype and
 * [0, 1) never rounds up to 1. */
static inline EM_HD double em_philox_uniform_bits(uint64_t seed, uint64_t offset, uint64_t i,
                                                  int bits)
{
    em_philox_out o = em_philox4x32(seed, offset + i / 4);
    return (double)(o.v[i % 4] >> (32 - bits)) / (double)(UINT64_C(1) << bits);
}

/* Standard normal by Box-Muller over lanes (2k, 2k+1) of block offset + i / 2. */
static inline EM_HD double em_philox_normal(uint64_t seed, uint64_t offset, uint64_t i)
{
    em_philox_out o = em_philox4x32(seed, offset + i / 2);
    uint32_t lane = (uint32_t)(i % 2) * 2;
    double u1 = ((double)(o.v[lane] >> 8) + 1.0) * (1.0 / 16777216.0);   /* (0, 1] */
    double u2 = (double)(o.v[lane + 1] >> 8) * (1.0 / 16777216.0);
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* Integer in [low, high): 64 random bits (lanes 2k, 2k+1 of block offset + i / 2). */
static inline EM_HD int64_t em_philox_int(uint64_t seed, uint64_t offset, uint64_t i,
                                          int64_t low, int64_t high)
{
    em_philox_out o = em_philox4x32(seed, offset + i / 2);
    uint32_t lane = (uint32_t)(i % 2) * 2;
    uint64_t r = ((uint64_t)o.v[lane] << 32) | o.v[lane + 1];
    uint64_t range = (uint64_t)(high - low);
    return low + (int64_t)(r % range);
}

/* Blocks consumed by a draw of n elements of each distribution. */
static inline EM_HD uint64_t em_philox_blocks_uniform(uint64_t n) { return (n + 3) / 4; }
static inline EM_HD uint64_t em_philox_blocks_pair(uint64_t n) { return (n + 1) / 2; }

#ifdef __cplusplus
}
#endif
#endif
