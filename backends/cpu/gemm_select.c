/* backends/cpu/gemm_select.c - picks the GEMM micro-kernel and its block sizes, once, at load.
 *
 * The path comes from CPU feature bits only: cpuid says what the core implements and xgetbv
 * whether the OS saves the YMM/ZMM state, so AVX-512 needs AVX512F plus XCR0's opmask and ZMM
 * bits, AVX2 needs AVX2, FMA and the YMM bits. There is no table of CPU models. Block sizes
 * come from the cache sizes cpuid's deterministic cache parameters report (leaf 4 on Intel,
 * 0x8000001D on AMD), else sysconf, else defaults:
 *   KC: B's KC x NR micro-panel takes half of L1d (it is reused by every A micro-panel);
 *   MC: A's MC x KC block takes half of L2 (it is reused by every B micro-panel);
 *   NC: B's KC x NC block takes a quarter of L3, at most 4096 columns.
 * EMBER_GEMM_KERNEL=avx512|avx2|generic forces a path; one the CPU cannot run is refused with a
 * warning and the best path the CPU can run is used instead.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "gemm.h"

static em_gemm_impl selected;
static size_t cache_l1 = 32 * 1024, cache_l2 = 1024 * 1024, cache_l3 = 8 * 1024 * 1024;
static const char *cache_source = "defaults";

#if defined(__x86_64__)
static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (uint64_t)hi << 32 | lo;
}

/* What the CPU and the OS together let us run. */
static void x86_features(bool *avx2, bool *avx512)
{
    unsigned a, b, c, d;
    *avx2 = *avx512 = false;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return;
    bool osxsave = c & (1u << 27), avx = c & (1u << 28), fma = c & (1u << 12);
    if (!osxsave || !avx)
        return;
    uint64_t xcr0 = xgetbv0();
    bool ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return;
    *avx2 = ymm && fma && (b & (1u << 5));
    *avx512 = zmm && fma && (b & (1u << 16));
}

/* Deterministic cache parameters from `leaf` (4 or 0x8000001D): data or unified caches. */
static bool x86_caches(unsigned leaf)
{
    unsigned a, b, c, d, max;
    __cpuid(leaf & 0x80000000u, max, b, c, d);
    if (max < leaf)
        return false;
    bool found = false;
    for (unsigned i = 0; i < 16; i++) {
        __cpuid_count(leaf, i, a, b, c, d);
        unsigned type = a & 0x1f, level = (a >> 5) & 7;
        if (type == 0)
            break;
        if (type != 1 && type != 3)
            continue;
        size_t size = (size_t)((b >> 22) + 1) * (((b >> 12) & 0x3ff) + 1) * ((b & 0xfff) + 1) *
                      ((size_t)c + 1);
        if (level == 1)
            cache_l1 = size;
        else if (level == 2)
            cache_l2 = size;
        else if (level == 3)
            cache_l3 = size;
        found = true;
    }
    return found;
}
#endif

static void read_caches(void)
{
#if defined(__x86_64__)
    if (x86_caches(4) || x86_caches(0x8000001Du)) {
        cache_source = "cpuid";
        return;
    }
#endif
#if defined(_SC_LEVEL1_DCACHE_SIZE)
    long l1 = sysconf(_SC_LEVEL1_DCACHE_SIZE), l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l1 > 0 && l2 > 0) {
        cache_l1 = (size_t)l1;
        cache_l2 = (size_t)l2;
        if (l3 > 0)
            cache_l3 = (size_t)l3;
        cache_source = "sysconf";
    }
#endif
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* The rules in the header comment, with each block a multiple of its register tile. */
static void size_blocks(em_gemm_kernel *k, size_t es)
{
    int64_t kc = (int64_t)(cache_l1 / 2 / (es * (size_t)k->nr));
    k->kc = clamp64(kc / 8 * 8, 64, 1024);
    int64_t mc = (int64_t)(cache_l2 / 2 / (es * (size_t)k->kc));
    k->mc = clamp64(mc / k->mr * k->mr, k->mr, 2048 / k->mr * k->mr);
    int64_t nc = (int64_t)(cache_l3 / 4 / (es * (size_t)k->kc));
    k->nc = clamp64(nc / k->nr * k->nr, k->nr, 4096 / k->nr * k->nr);
}

void em_cpu__gemm_select(void)
{
    bool avx2 = false, avx512 = false;
#if defined(__x86_64__)
    x86_features(&avx2, &avx512);
#endif
    const em_gemm_impl *best = &em_cpu__gemm_generic;
#if defined(__x86_64__)
    if (avx512)
        best = &em_cpu__gemm_avx512;
    else if (avx2)
        best = &em_cpu__gemm_avx2;
#endif
    const em_gemm_impl *use = best;
    const char *want = getenv("EMBER_GEMM_KERNEL");
    if (want && *want && strcmp(want, "auto") != 0) {
        if (!strcmp(want, "generic")) {
            use = &em_cpu__gemm_generic;
#if defined(__x86_64__)
        } else if (!strcmp(want, "avx2") && avx2) {
            use = &em_cpu__gemm_avx2;
        } else if (!strcmp(want, "avx512") && avx512) {
            use = &em_cpu__gemm_avx512;
#endif
        } else if (!strcmp(want, "avx2") || !strcmp(want, "avx512")) {
            em_warn("EMBER_GEMM_KERNEL=%s: this CPU (or its OS) cannot run the %s kernels; "
                    "using %s", want, want, best->name);
        } else {
            em_warn("EMBER_GEMM_KERNEL=%s: unknown kernel (expected avx512, avx2, generic or "
                    "auto); using %s", want, best->name);
        }
    }
    read_caches();
    selected = *use;
    size_blocks(&selected.f32, sizeof(float));
    size_blocks(&selected.f64, sizeof(double));
}

const em_gemm_impl *em_cpu__gemm_impl(void)
{
    return &selected;
}

void em_cpu__gemm_describe(char *buf, size_t size)
{
    const em_gemm_kernel *s = &selected.f32, *d = &selected.f64;
    snprintf(buf, size,
             "GEMM %s: f32 %dx%d KC %lld MC %lld NC %lld, f64 %dx%d; caches (%s) L1d %zu KiB, "
             "L2 %zu KiB, L3 %zu KiB",
             selected.name, s->mr, s->nr, (long long)s->kc, (long long)s->mc, (long long)s->nc,
             d->mr, d->nr, cache_source, cache_l1 / 1024, cache_l2 / 1024, cache_l3 / 1024);
}
