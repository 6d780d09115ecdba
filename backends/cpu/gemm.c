/* backends/cpu/gemm.c - the GEMM driver: packing, cache blocking, the thread split, epilogues.
 *
 * For one product C = A @ B (+ bias, ReLU) the loops are Goto's:
 *
 *   for jc over N in NC:  for pc over K in KC:  pack B[pc, jc] into NR-column micro-panels
 *     for ic over M in MC:  pack A[ic, pc] into MR-row micro-panels
 *       for jr over NC in NR:  for ir over MC in MR:  micro-kernel on one MR x NR tile
 *
 * Packing reads A and B through their strides (transposed views, broadcast rows, sliced
 * columns) and converts f16/bf16 to f32, so no operand is ever copied whole first. The first
 * KC slice writes C, later ones add to it; the epilogue (bias per column, ReLU) runs on each
 * tile right after its last slice, while the tile is still in L1.
 *
 * Threads: C is cut into a grid of tm x tn parts (row edges on MR, column edges on NR); each
 * part runs the loops above on its own rows and columns with its own packing buffers, so
 * parts never wait on each other. The grid minimises each part's multiply-adds plus packing
 * (a row split packs all of B in every part, a column split all of A). One part per thread:
 * every part packs its own panels, so more parts cost more packing. Two parts per thread,
 * claimed dynamically, had been tried so that a thread the OS preempts (a shared machine)
 * would not hold the other up at the join; at real-time priority (no preemption) one part per
 * thread ran 3-8% faster on 2 threads (training shapes 256 x 784 x 256 to 1000 x 784 x 500,
 * and n = 1024, 2048), and with another job spinning on one of the 2 cores neither split
 * held up (both fell to about one core's speed).
 * Products under EM_GEMM_SERIAL_MNK multiply-adds run on the calling thread, and those of them
 * (or of any one-thread run) under EM_GEMM_SMALL_MNK skip the blocking: gemm_small below, which
 * also takes any product whose whole B fits in L2 beside an A block (gemm.h).
 *
 * Tried and dropped: one packed B shared by all threads (a parallel loop packing each KC x NC
 * block of B, then one running row parts against it) packs nothing twice, but on 2 threads it
 * ran 0-8% slower than the grid at n = 512..2048 (a join per block, and each thread walking
 * the whole block of B instead of its half).
 */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

#include "cpu.h"
#include "gemm.h"

/* ---- packing buffers: a few cached sets, taken with an atomic flag ------------------------ */

#define BUF_SLOTS 16
#define BUF_ALIGN 64

static struct {
    atomic_bool busy;
    void *p;
    size_t size;
} slots[BUF_SLOTS];

/* Buffers of at least this many bytes are whole 2 MiB pages, advised as transparent huge
 * pages: a packed block of A or B spans hundreds of 4 KiB pages, and the micro-kernels walk it
 * over and over (measured: up to 5% of a big product on one core went on the TLB). */
#define BUF_HUGE ((size_t)1 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

static void *buf_alloc(size_t n)
{
    if (n < BUF_HUGE)
        return aligned_alloc(BUF_ALIGN, n);
    void *p = aligned_alloc(HUGE_PAGE, n);
#ifdef MADV_HUGEPAGE
    if (p)
        madvise(p, n, MADV_HUGEPAGE);   /* advice only */
#endif
    return p;
}

/* A buffer of at least n bytes, 64-byte aligned; *slot is -1 for a private one (all cached
 * sets busy). NULL when out of memory. */
static void *buf_get(size_t n, int *slot)
{
    size_t align = n < BUF_HUGE ? BUF_ALIGN : HUGE_PAGE;
    n = (n + align - 1) / align * align;
    for (int s = 0; s < BUF_SLOTS; s++) {
        if (atomic_exchange_explicit(&slots[s].busy, true, memory_order_acquire))
            continue;
        if (slots[s].size < n) {
            free(slots[s].p);
            slots[s].p = buf_alloc(n);
            slots[s].size = slots[s].p ? n : 0;
        }
        if (!slots[s].p) {
            atomic_store_explicit(&slots[s].busy, false, memory_order_release);
            return NULL;
        }
        *slot = s;
        return slots[s].p;
    }
    *slot = -1;
    return buf_alloc(n);
}

static void buf_put(void *p, int slot)
{
    if (slot < 0)
        free(p);
    else
        atomic_store_explicit(&slots[slot].busy, false, memory_order_release);
}

void em_cpu__gemm_shutdown(void)
{
    for (int s = 0; s < BUF_SLOTS; s++) {
        free(slots[s].p);
        slots[s].p = NULL;
        slots[s].size = 0;
    }
}

/* ---- packing ------------------------------------------------------------------------------ */

/* dst[i * ds] = src[i * ss] for i < n, converted to the compute dtype. */
static void run_f32(void *dst, int64_t ds, const void *src, int64_t ss, int64_t n)
{
    float *d = dst;
    const float *s = src;
    if (ds == 1 && ss == 1)
        memcpy(d, s, (size_t)n * sizeof *d);
    else
        for (int64_t i = 0; i < n; i++)
            d[i * ds] = s[i * ss];
}

static void run_f64(void *dst, int64_t ds, const void *src, int64_t ss, int64_t n)
{
    double *d = dst;
    const double *s = src;
    if (ds == 1 && ss == 1)
        memcpy(d, s, (size_t)n * sizeof *d);
    else
        for (int64_t i = 0; i < n; i++)
            d[i * ds] = s[i * ss];
}

static void run_f16(void *dst, int64_t ds, const void *src, int64_t ss, int64_t n)
{
    float *d = dst;
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        d[i * ds] = em_cpu__h2f(s[i * ss]);
}

static void run_bf16(void *dst, int64_t ds, const void *src, int64_t ss, int64_t n)
{
    float *d = dst;
    const uint16_t *s = src;
    for (int64_t i = 0; i < n; i++)
        d[i * ds] = em_bf16_to_f32(s[i * ss]);
}

typedef void (*run_fn)(void *dst, int64_t ds, const void *src, int64_t ss, int64_t n);

static run_fn run_for(em_dtype dt)
{
    switch (dt) {
    case EM_F64: return run_f64;
    case EM_F16: return run_f16;
    case EM_BF16: return run_bf16;
    default: return run_f32;
    }
}

/* A[i0 .. i0+mc, p0 .. p0+kc) into MR-row micro-panels: panel r holds rows r*MR.., column p at
 * dst + (r * kc + p) * MR, rows past mc zero. */
/* One f32 micro-panel, d[p * mr + i] = s[i * rs + p * cs] for i < m, p < kc, rows m..mr
 * zero: the two common layouts (rs or cs is 1) without a call per row or per element; false
 * for any other. A's MR-row panels use it as is, B's NR-column panels with rs and cs swapped. */
static bool pack_panel_f32(float *d, const float *s, int64_t rs, int64_t cs, int mr, int64_t m,
                             int64_t kc)
{
    if (cs == 1) {                      /* a transpose: 4 x 4 blocks in SSE registers */
        int64_t i = 0;
#if defined(__SSE2__)
        for (; i + 4 <= m; i += 4) {
            const float *s0 = s + i * rs, *s1 = s0 + rs, *s2 = s1 + rs, *s3 = s2 + rs;
            int64_t p = 0;
            for (; p + 4 <= kc; p += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
                __m128 r2 = _mm_loadu_ps(s2 + p), r3 = _mm_loadu_ps(s3 + p);
                _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
                _mm_storeu_ps(d + p * mr + i, r0);
                _mm_storeu_ps(d + (p + 1) * mr + i, r1);
                _mm_storeu_ps(d + (p + 2) * mr + i, r2);
                _mm_storeu_ps(d + (p + 3) * mr + i, r3);
            }
            for (; p < kc; p++) {
                float *dp = d + p * mr + i;
                dp[0] = s0[p];
                dp[1] = s1[p];
                dp[2] = s2[p];
                dp[3] = s3[p];
            }
        }
        if (i + 2 <= m) {               /* two rows left (MR = 14): 2 x 4 blocks */
            const float *s0 = s + i * rs, *s1 = s0 + rs;
            int64_t p = 0;
            for (; p + 4 <= kc; p += 4) {
                __m128 r0 = _mm_loadu_ps(s0 + p), r1 = _mm_loadu_ps(s1 + p);
                __m128 lo = _mm_unpacklo_ps(r0, r1), hi = _mm_unpackhi_ps(r0, r1);
                _mm_storel_pi((__m64 *)(d + p * mr + i), lo);
                _mm_storeh_pi((__m64 *)(d + (p + 1) * mr + i), lo);
                _mm_storel_pi((__m64 *)(d + (p + 2) * mr + i), hi);
                _mm_storeh_pi((__m64 *)(d + (p + 3) * mr + i), hi);
            }
            for (; p < kc; p++) {
                d[p * mr + i] = s0[p];
                d[p * mr + i + 1] = s1[p];
            }
            i += 2;
        }
#endif
        for (; i < m; i++) {
            const float *si = s + i * rs;
            for (int64_t p = 0; p < kc; p++)
                d[p * mr + i] = si[p];
        }
    } else if (rs == 1) {               /* a copy of m values per step */
        for (int64_t p = 0; p < kc; p++) {
            float *dp = d + p * mr;
            const float *sp = s + p * cs;
            int64_t i = 0;
#if defined(__SSE2__)
            for (; i + 4 <= m; i += 4)
                _mm_storeu_ps(dp + i, _mm_loadu_ps(sp + i));
#endif
            for (; i < m; i++)
                dp[i] = sp[i];
        }
    } else {
        return false;
    }
    if (m < mr)
        for (int64_t p = 0; p < kc; p++)
            for (int64_t i = m; i < mr; i++)
                d[p * mr + i] = 0.0f;
    return true;
}

static void pack_a(char *dst, size_t es, const em_gemm_operand *a, run_fn run,
                   const em_gemm_kernel *k, int64_t i0, int64_t mc, int64_t p0, int64_t kc)
{
    size_t ses = em_dtype_size(a->dt);
    int mr = k->mr;
    for (int64_t r = 0; r < mc; r += mr, dst += (size_t)(mr * kc) * es) {
        int64_t m = mc - r < mr ? mc - r : mr;
        const char *src = (const char *)a->p + ((i0 + r) * a->rs + p0 * a->cs) * (int64_t)ses;
        if (run == run_f32 && es == sizeof(float) && m == mr) {
            if (k->pack_a_rows && a->cs == 1) {
                k->pack_a_rows((float *)dst, (const float *)src, a->rs, kc);
                continue;
            }
            if (k->pack_a_cols && a->rs == 1) {
                k->pack_a_cols((float *)dst, (const float *)src, a->cs, kc);
                continue;
            }
        }
        if (run == run_f32 && es == sizeof(float) &&
            pack_panel_f32((float *)dst, (const float *)src, a->rs, a->cs, mr, m, kc))
            continue;
        if (a->rs == 1)                                  /* A^T stored row-major */
            for (int64_t p = 0; p < kc; p++)
                run(dst + (size_t)(p * mr) * es, 1, src + p * a->cs * (int64_t)ses, 1, m);
        else
            for (int64_t i = 0; i < m; i++)
                run(dst + (size_t)i * es, mr, src + i * a->rs * (int64_t)ses, a->cs, kc);
        for (int64_t i = m; i < mr; i++)
            for (int64_t p = 0; p < kc; p++)
                memset(dst + (size_t)(p * mr + i) * es, 0, es);
    }
}

/* B[p0 .. p0+kc, j0 .. j0+nc) into NR-column micro-panels: panel r holds columns r*NR.., row
 * p at dst + (r * kc + p) * NR, columns past nc zero. */
static void pack_b(char *dst, size_t es, const em_gemm_operand *b, run_fn run,
                   const em_gemm_kernel *k, int64_t p0, int64_t kc, int64_t j0, int64_t nc)
{
    size_t ses = em_dtype_size(b->dt);
    int nr = k->nr;
    for (int64_t r = 0; r < nc; r += nr, dst += (size_t)(nr * kc) * es) {
        int64_t n = nc - r < nr ? nc - r : nr;
        const char *src = (const char *)b->p + (p0 * b->rs + (j0 + r) * b->cs) * (int64_t)ses;
        if (run == run_f32 && es == sizeof(float) && n == nr) {
            if (k->pack_b_rows && b->rs == 1) {
                k->pack_b_rows((float *)dst, (const float *)src, b->cs, kc);
                continue;
            }
            if (k->pack_b_cols && b->cs == 1) {
                k->pack_b_cols((float *)dst, (const float *)src, b->rs, kc);
                continue;
            }
        }
        if (run == run_f32 && es == sizeof(float) &&
            pack_panel_f32((float *)dst, (const float *)src, b->cs, b->rs, nr, n, kc))
            continue;
        if (b->cs == 1 || b->rs != 1)
            for (int64_t p = 0; p < kc; p++)
                run(dst + (size_t)(p * nr) * es, 1, src + p * b->rs * (int64_t)ses, b->cs, n);
        else                                             /* B^T stored row-major */
            for (int64_t j = 0; j < n; j++)
                run(dst + (size_t)j * es, nr, src + j * b->cs * (int64_t)ses, 1, kc);
        if (n < nr)
            for (int64_t p = 0; p < kc; p++)
                memset(dst + (size_t)(p * nr + n) * es, 0, (size_t)(nr - n) * es);
    }
}

/* ---- epilogue ------------------------------------------------------------------------------ */

/* c[0..m, 0..n) += bias[0..n) and/or max(., 0), on a tile in the compute dtype; f32 tiles go
 * through the kernel's own epilogue where it has one (gemm.h). */
static void epilogue(const em_gemm_kernel *k, em_dtype cdt, void *c, int64_t ldc, int m, int n,
                     const void *bias, bool relu)
{
    if (cdt == EM_F64) {
        const double *bv = bias;
        for (int i = 0; i < m; i++) {
            double *ci = (double *)c + i * ldc;
            if (bv)
                for (int j = 0; j < n; j++)
                    ci[j] += bv[j];
            if (relu)
                for (int j = 0; j < n; j++)
                    ci[j] = ci[j] > 0 || ci[j] != ci[j] ? ci[j] : 0.0;
        }
        return;
    }
    if (k->epilogue) {
        k->epilogue(c, ldc, m, n, bias, relu);
        return;
    }
    const float *bv = bias;
    for (int i = 0; i < m; i++) {
        float *ci = (float *)c + i * ldc;
        if (bv)
            for (int j = 0; j < n; j++)
                ci[j] += bv[j];
        if (relu)
            for (int j = 0; j < n; j++)
                ci[j] = ci[j] > 0 || ci[j] != ci[j] ? ci[j] : 0.0f;
    }
}

/* ---- the blocked loops on one part of C ------------------------------------------------ */

typedef struct gemm_ctx {
    const em_gemm_args *g;
    const em_gemm_kernel *k;
    size_t es;                       /* compute dtype's size */
    run_fn run_a, run_b;
    int tm, tn;                      /* the grid */
    int64_t rows, cols;              /* rows and columns per part (multiples of MR, NR) */
    atomic_int failed;
} gemm_ctx;

/* The micro-kernels over one packed block: C[ic .. ic+mc, jc .. jc+nc) (+)= A's packed mc x kc
 * block @ B's packed kc x nc block, and the epilogue after K's last slice. */
static void gemm_block(const gemm_ctx *x, const char *abuf, const char *bbuf, int64_t ic,
                       int64_t mc, int64_t jc, int64_t nc, int64_t kc, bool acc, bool last)
{
    const em_gemm_args *g = x->g;
    const em_gemm_kernel *k = x->k;
    size_t es = x->es;
    int64_t mr = k->mr, nr = k->nr;
    bool epi = last && (g->bias || g->relu);
    for (int64_t jr = 0; jr < nc; jr += nr) {
        int n = (int)(nc - jr < nr ? nc - jr : nr);
        const char *bp = bbuf + (size_t)(jr * kc) * es;
        for (int64_t ir = 0; ir < mc; ir += mr) {
            int m = (int)(mc - ir < mr ? mc - ir : mr);
            char *c = (char *)g->c + ((ic + ir) * g->ldc + jc + jr) * (int64_t)es;
            k->fn(kc, abuf + (size_t)(ir * kc) * es, bp, nr, c, g->ldc, m, n, acc);
            if (epi)
                epilogue(k, g->cdt, c, g->ldc, m, n,
                         g->bias ? (const char *)g->bias + (jc + jr) * (int64_t)es : NULL,
                         g->relu);
        }
    }
}

/* Rows [m0, m1) and columns [n0, n1) of C. */
static int gemm_part(const gemm_ctx *x, int64_t m0, int64_t m1, int64_t n0, int64_t n1)
{
    const em_gemm_args *g = x->g;
    const em_gemm_kernel *k = x->k;
    size_t es = x->es;
    int64_t mr = k->mr, nr = k->nr;
    int64_t kcb = g->K < k->kc ? g->K : k->kc;
    int64_t mcb = m1 - m0 < k->mc ? (m1 - m0 + mr - 1) / mr * mr : k->mc;
    int64_t ncb = n1 - n0 < k->nc ? (n1 - n0 + nr - 1) / nr * nr : k->nc;
    size_t asz = ((size_t)(mcb * kcb) * es + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
    size_t bsz = (size_t)(kcb * ncb) * es;
    int slot;
    char *abuf = buf_get(asz + bsz, &slot);       /* A's block, then B's (both aligned) */
    if (!abuf)
        return EM_ERR_NOMEM;
    char *bbuf = abuf + asz;
    for (int64_t jc = n0; jc < n1; jc += k->nc) {
        int64_t nc = n1 - jc < k->nc ? n1 - jc : k->nc;
        for (int64_t pc = 0; pc < g->K; pc += k->kc) {
            int64_t kc = g->K - pc < k->kc ? g->K - pc : k->kc;
            bool acc = pc > 0, last = pc + kc >= g->K;
            pack_b(bbuf, es, &g->b, x->run_b, k, pc, kc, jc, nc);
            for (int64_t ic = m0; ic < m1; ic += k->mc) {
                int64_t mc = m1 - ic < k->mc ? m1 - ic : k->mc;
                pack_a(abuf, es, &g->a, x->run_a, k, ic, mc, pc, kc);
                gemm_block(x, abuf, bbuf, ic, mc, jc, nc, kc, acc, last);
            }
        }
    }
    buf_put(abuf, slot);
    return EM_OK;
}

static void gemm_parts(void *arg, int64_t begin, int64_t end)
{
    gemm_ctx *x = arg;
    for (int64_t p = begin; p < end; p++) {
        int64_t m0 = (p / x->tn) * x->rows, n0 = (p % x->tn) * x->cols;
        int64_t m1 = m0 + x->rows < x->g->M ? m0 + x->rows : x->g->M;
        int64_t n1 = n0 + x->cols < x->g->N ? n0 + x->cols : x->g->N;
        if (m0 < m1 && n0 < n1 && gemm_part(x, m0, m1, n0, n1) != EM_OK)
            atomic_store(&x->failed, 1);
    }
}

/* One packed element costs about as much time as this many multiply-adds in a micro-kernel
 * (packing moves ~1-2 elements a cycle; an AVX-512 f32 kernel does 32 multiply-adds a cycle). */
#define PACK_WEIGHT 16

/* The tm x tn grid (tm * tn <= threads) with the least work per part: its multiply-adds plus
 * the elements it packs, weighted by PACK_WEIGHT. */
static void choose_grid(gemm_ctx *x, int threads)
{
    const em_gemm_args *g = x->g;
    int64_t mp = (g->M + x->k->mr - 1) / x->k->mr, np = (g->N + x->k->nr - 1) / x->k->nr;
    int64_t best = -1;
    x->tm = x->tn = 1;
    for (int a = 1; a <= threads; a++)
        for (int b = 1; a * b <= threads; b++) {
            if (a > mp || b > np)
                continue;
            int64_t rows = (mp + a - 1) / a * x->k->mr, cols = (np + b - 1) / b * x->k->nr;
            int64_t cost = rows * cols * g->K + PACK_WEIGHT * g->K * (rows + cols);
            if (best < 0 || cost < best) {
                best = cost;
                x->tm = a;
                x->tn = b;
            }
        }
    x->rows = (mp + x->tm - 1) / x->tm * x->k->mr;
    x->cols = (np + x->tn - 1) / x->tn * x->k->nr;
}

/* ---- the small-product path ------------------------------------------------------------- */

/* Columns [n0, n1) of a product with no blocking (n0 a multiple of NR): for products under
 * EM_GEMM_SMALL_MNK multiply-adds, and for those whose whole B fits beside a packed A block in
 * L2 (K * N <= KC * MC, K <= 2 KC: a batch of rows against a layer's weight). No hand-off
 * inside, and B read in place when its rows are contiguous in the compute dtype (the
 * micro-kernel walks them with B's own row stride); only the right-edge columns that do not
 * fill a whole NR-wide tile, or a B in any other layout, are packed. A is packed one MR-row
 * micro-panel at a time (a few KiB, hot in L1), and each panel meets every column tile of B
 * while it is there; the epilogue runs on each tile as it is stored. Threads split the
 * columns (gemm_small_parts), each packing all of A, so nothing is packed twice but A. */
static int gemm_small(const gemm_ctx *x, int64_t n0, int64_t n1)
{
    const em_gemm_args *g = x->g;
    const em_gemm_kernel *k = x->k;
    size_t es = x->es;
    int64_t mr = k->mr, nr = k->nr, K = g->K;
    bool direct = g->b.cs == 1 && g->b.dt == g->cdt;
    int64_t nfull = n0 + (direct ? (n1 - n0) / nr * nr : 0);    /* columns read in place */
    int64_t npack = (n1 - nfull + nr - 1) / nr * nr;
    size_t asz = ((size_t)(mr * K) * es + BUF_ALIGN - 1) / BUF_ALIGN * BUF_ALIGN;
    int slot;
    char *abuf = buf_get(asz + (size_t)(npack * K) * es, &slot);
    if (!abuf)
        return EM_ERR_NOMEM;
    char *bbuf = abuf + asz;
    if (nfull < n1)
        pack_b(bbuf, es, &g->b, x->run_b, k, 0, K, nfull, n1 - nfull);
    bool epi = g->bias || g->relu;
    for (int64_t ir = 0; ir < g->M; ir += mr) {
        int m = (int)(g->M - ir < mr ? g->M - ir : mr);
        pack_a(abuf, es, &g->a, x->run_a, k, ir, m, 0, K);
        for (int64_t jr = n0; jr < n1; jr += nr) {
            int n = (int)(n1 - jr < nr ? n1 - jr : nr);
            const char *bp = jr < nfull ? (const char *)g->b.p + jr * (int64_t)es
                                        : bbuf + (size_t)((jr - nfull) * K) * es;
            char *c = (char *)g->c + (ir * g->ldc + jr) * (int64_t)es;
            k->fn(K, abuf, bp, jr < nfull ? g->b.rs : nr, c, g->ldc, m, n, false);
            if (epi)
                epilogue(k, g->cdt, c, g->ldc, m, n,
                         g->bias ? (const char *)g->bias + jr * (int64_t)es : NULL, g->relu);
        }
    }
    buf_put(abuf, slot);
    return EM_OK;
}

/* Column parts [begin, end) of x->cols columns each, through gemm_small. */
static void gemm_small_parts(void *arg, int64_t begin, int64_t end)
{
    gemm_ctx *x = arg;
    int64_t n0 = begin * x->cols, n1 = end * x->cols < x->g->N ? end * x->cols : x->g->N;
    if (n0 < n1 && gemm_small(x, n0, n1) != EM_OK)
        atomic_store(&x->failed, 1);
}

/* K = 0: C is the bias (or zeros), through the epilogue. */
static void gemm_empty(const em_gemm_kernel *k, const em_gemm_args *g, size_t es)
{
    for (int64_t i = 0; i < g->M; i++) {
        char *c = (char *)g->c + i * g->ldc * (int64_t)es;
        memset(c, 0, (size_t)g->N * es);
        epilogue(k, g->cdt, c, g->ldc, 1, (int)g->N, g->bias, g->relu);
    }
}

int em_cpu__gemm(const em_gemm_args *g, int threads)
{
    const em_gemm_impl *impl = em_cpu__gemm_impl();
    gemm_ctx x = {
        .g = g,
        .k = g->cdt == EM_F64 ? &impl->f64 : &impl->f32,
        .es = g->cdt == EM_F64 ? sizeof(double) : sizeof(float),
        .run_a = run_for(g->a.dt),
        .run_b = run_for(g->b.dt),
    };
    if (!x.k->fn || x.k->kc <= 0)
        return em_set_error(EM_ERR_STATE, "cpu: matmul: no GEMM kernel selected yet");
    if (g->M <= 0 || g->N <= 0)
        return EM_OK;
    if (g->K <= 0) {
        gemm_empty(x.k, g, x.es);
        return EM_OK;
    }
    int64_t mnk = g->M * g->N * g->K;
    bool small = g->K <= 2 * x.k->kc &&
                 ((mnk < EM_GEMM_SMALL_MNK && (mnk < EM_GEMM_SERIAL_MNK || threads <= 1)) ||
                  g->K * g->N <= x.k->kc * x.k->mc);
    if (mnk < EM_GEMM_SERIAL_MNK)
        threads = 1;
    choose_grid(&x, threads);
    int parts = x.tm * x.tn;
    if (small && x.tm == 1)                       /* a column split, or one thread */
        em_cpu__parallel_for(parts, 1, gemm_small_parts, &x);
    else if (parts == 1)
        gemm_parts(&x, 0, 1);
    else
        em_cpu__parallel_for(parts, 1, gemm_parts, &x);
    if (atomic_load(&x.failed))
        return em_set_error(EM_ERR_NOMEM, "cpu: matmul: out of memory for packing buffers "
                            "(%lld x %lld x %lld)", (long long)g->M, (long long)g->K,
                            (long long)g->N);
    return EM_OK;
}
