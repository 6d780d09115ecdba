/* backends/opencl/kernels/rows.cl - the row family (EM_OCL_ROWS): fused
 * softmax and log_softmax along one dim, cross_entropy and cross_entropy_backward over (N, C)
 * logits. Host side and launch shapes: rows.c.
 *
 * Written over the type macros of program.c like every family (T_ST storage, T_CT compute,
 * IMF the widest float the device has) and preceded by common.cl. A row
 * is `len` elements `inner` apart; the seg_* helpers work on a segment of one (the part a
 * work-item covers), eight elements at a time in vectors where it is dense. Accumulators are
 * T_CT: float for f32, f16 and bf16, double for f64. Vector lanes and trees in local memory
 * are joined in an order fixed by the shapes, and the per-row losses of "mean"/"sum" by one
 * work-group in IMF, so every result is the same from run to run. No kernel indexes memory
 * with a target that is not a class.
 */
/* ---- rows: softmax, log_softmax, cross_entropy and its backward ---- */
#if T_ISFLOAT
#define ACC T_CT
#define EM_CAT_(a, b) a##b
#define EM_CAT(a, b) EM_CAT_(a, b)
#define ACC8 EM_CAT(ACC, 8)
#define RED_NONE 0
#define RED_MEAN 1

/* NaN sticks: a NaN b replaces a, and nothing replaces a NaN a. */
ACC rw_max(ACC a, ACC b) { return (b > a || b != b) ? b : a; }
ACC8 rw_max8(ACC8 a, ACC8 b) { return select(a, b, (b > a) | isnan(b)); }

/* Dense runs go eight elements at a time (exp on vectors is what makes a CPU device fast;
 * a GPU splits them again); lanes are joined in a fixed order. */
ACC8 ld8(__global const T_ST *p)
{
    return (ACC8)(T_LD(p[0]), T_LD(p[1]), T_LD(p[2]), T_LD(p[3]), T_LD(p[4]), T_LD(p[5]),
                  T_LD(p[6]), T_LD(p[7]));
}

void sv8(__global T_ST *p, ACC8 v)
{
    p[0] = T_SV(v.s0);
    p[1] = T_SV(v.s1);
    p[2] = T_SV(v.s2);
    p[3] = T_SV(v.s3);
    p[4] = T_SV(v.s4);
    p[5] = T_SV(v.s5);
    p[6] = T_SV(v.s6);
    p[7] = T_SV(v.s7);
}

/* A segment of a row: positions j0, j0 + js, ... below j1 of the elements x[j * inner]; it
 * is dense when inner and js are 1. */
#define SEG_DENSE(inner, js) ((inner) == 1 && (js) == 1)

/* The max of a segment (-inf when empty). */
ACC seg_max(__global const T_ST *x, long inner, long j0, long j1, long js)
{
    ACC m = (ACC)(-INFINITY);
    long j = j0;
    if (SEG_DENSE(inner, js) && j1 - j0 >= 8) {
        ACC8 m8 = ld8(x + j);
        for (j += 8; j + 8 <= j1; j += 8)
            m8 = rw_max8(m8, ld8(x + j));
        m = rw_max(rw_max(rw_max(m8.s0, m8.s1), rw_max(m8.s2, m8.s3)),
                   rw_max(rw_max(m8.s4, m8.s5), rw_max(m8.s6, m8.s7)));
    }
    for (; j < j1; j += js)
        m = rw_max(m, T_LD(x[j * inner]));
    return m;
}

/* The sum of exp(x - m) over a segment. */
ACC seg_sumexp(__global const T_ST *x, long inner, long j0, long j1, long js, ACC m)
{
    ACC s = 0;
    long j = j0;
    if (SEG_DENSE(inner, js) && j1 - j0 >= 8) {
        ACC8 s8 = 0;
        for (; j + 8 <= j1; j += 8)
            s8 += exp(ld8(x + j) - m);
        s = ((s8.s0 + s8.s1) + (s8.s2 + s8.s3)) + ((s8.s4 + s8.s5) + (s8.s6 + s8.s7));
    }
    for (; j < j1; j += js)
        s += exp(T_LD(x[j * inner]) - m);
    return s;
}
/* The indices of [0, len) item t of L covers: a contiguous run (chunked: CPU devices,
 * where an item is a loop iteration) or every L-th one from t (GPUs, where neighbouring
 * items should read neighbouring addresses). */
void item_range(long len, int chunked, long *j0, long *j1, long *js)
{
    long t = get_local_id(0), L = get_local_size(0);
    if (chunked) {
        long per = (len + L - 1) / L;
        *j0 = t * per;
        *j1 = min(*j0 + per, len);
        *js = 1;
    } else {
        *j0 = t;
        *j1 = len;
        *js = L;
    }
}

/* Tree reductions over the work-group: every item passes its value and gets the result.
 * Called by all items of the group (uniform control flow); sc holds L values and may be
 * reused as soon as the call returns. */
#define WG_REDUCE(name, TY, COMB) \
TY name(TY v, __local TY *sc) \
{ \
    int t = get_local_id(0), L = get_local_size(0); \
    sc[t] = v; \
    barrier(CLK_LOCAL_MEM_FENCE); \
    for (int h = L / 2; h > 0; h >>= 1) { \
        if (t < h) \
            sc[t] = COMB(sc[t], sc[t + h]); \
        barrier(CLK_LOCAL_MEM_FENCE); \
    } \
    TY r = sc[0]; \
    barrier(CLK_LOCAL_MEM_FENCE); \
    return r; \
}
#define RW_ADD(a, b) ((a) + (b))
WG_REDUCE(wg_max, ACC, rw_max)
WG_REDUCE(wg_sum, ACC, RW_ADD)
WG_REDUCE(wg_sum_imf, IMF, RW_ADD)

/* The max of a row (len elements inner apart from x) and the sum of exp(x - max), by one
 * work-item. NaN in, NaN out; an infinite max gives a NaN sum, as the composites do. */
void row_stats1(__global const T_ST *x, long len, long inner, ACC *m, ACC *s)
{
    *m = seg_max(x, inner, 0, len, 1);
    *s = seg_sumexp(x, inner, 0, len, 1, *m);
}

/* The same by a whole work-group, every item getting both. */
void row_stats(__global const T_ST *x, long len, long inner, int chunked, __local ACC *sc,
               ACC *m, ACC *s)
{
    long j0, j1, js;
    item_range(len, chunked, &j0, &j1, &js);
    ACC mx = wg_max(seg_max(x, inner, j0, j1, js), sc);
    *s = wg_sum(seg_sumexp(x, inner, j0, j1, js, mx), sc);
    *m = mx;
}
/* ---- softmax, log_softmax over rows r of [outer, len, inner] ---- */
#define SM_BASE(r, len, inner) ((r) / (inner) * (len) * (inner) + (r) % (inner))

/* y = softmax (exp(z) / s) or log_softmax (z - log(s)) of a segment, z = x - m. */
void seg_softmax(__global T_ST *y, __global const T_ST *x, long inner, long j0, long j1,
                 long js, ACC m, ACC s, int logsm)
{
    ACC ls = log(s);
    long j = j0;
    if (SEG_DENSE(inner, js))
        for (; j + 8 <= j1; j += 8) {
            ACC8 z = ld8(x + j) - m;
            sv8(y + j, logsm ? z - ls : exp(z) / s);
        }
    for (; j < j1; j += js) {
        ACC z = T_LD(x[j * inner]) - m;
        y[j * inner] = T_SV(logsm ? z - ls : exp(z) / s);
    }
}

/* One work-item per row. */
__kernel void sm_wi(__global T_ST *o, long oo, __global const T_ST *a, long ao, long rows,
                    long len, long inner, int logsm)
{
    EM_EACH(r, rows) {
        long base = SM_BASE(r, len, inner);
        ACC m, s;
        row_stats1(a + ao + base, len, inner, &m, &s);
        seg_softmax(o + oo + base, a + ao + base, inner, 0, len, 1, m, s, logsm);
    }
}

/* CPU devices, inner >= 8: each item takes 8 neighbouring rows (inner positions i0 to
 * i0 + 7 of one outer index), whose elements lie side by side, as the lanes of vectors;
 * the last tile of an outer index, when narrower, goes row by row. */
__kernel void sm_tile(__global T_ST *o, long oo, __global const T_ST *a, long ao,
                      long ntile, long len, long inner, int logsm)
{
    EM_EACH(t, ntile) {
        long tpr = (inner + 7) / 8, i0 = t % tpr * 8, base = t / tpr * len * inner + i0;
        __global const T_ST *x = a + ao + base;
        __global T_ST *y = o + oo + base;
        if (i0 + 8 > inner) {
            for (long i = 0; i < inner - i0; i++) {
                ACC m, s;
                row_stats1(x + i, len, inner, &m, &s);
                seg_softmax(y + i, x + i, inner, 0, len, 1, m, s, logsm);
            }
        } else {
            ACC8 m = ld8(x), s = 0;
            for (long j = 1; j < len; j++)
                m = rw_max8(m, ld8(x + j * inner));
            for (long j = 0; j < len; j++)
                s += exp(ld8(x + j * inner) - m);
            ACC8 ls = log(s);
            for (long j = 0; j < len; j++) {
                ACC8 z = ld8(x + j * inner) - m;
                sv8(y + j * inner, logsm ? z - ls : exp(z) / s);
            }
        }
    }
}
/* One work-group per row (the arguments of sm_wi, rows unused, then the tree's). */
__kernel void sm_wg(__global T_ST *o, long oo, __global const T_ST *a, long ao, long rows,
                    long len, long inner, int logsm, int chunked, __local ACC *sc)
{
    long base = SM_BASE((long)get_group_id(0), len, inner);
    ACC m, s;
    row_stats(a + ao + base, len, inner, chunked, sc, &m, &s);
    long j0, j1, js;
    item_range(len, chunked, &j0, &j1, &js);
    seg_softmax(o + oo + base, a + ao + base, inner, j0, j1, js, m, s, logsm);
}
/* ---- cross_entropy over rows i of x (n, nc), target k = t[i] ---- */
/* Whether k is neither ignore_index nor a class: that row's result is NaN. */
#define CE_BAD(k, ignore, nc) ((k) != (ignore) && ((k) < 0 || (k) >= (nc)))

/* Row i's loss w[k] (max + log(sum) - x[i, k]) from its stats, 0 when ignored, NaN when
 * k is not a class; "none" (part_out 0) stores it in o, otherwise part gets it at i and
 * the counted weight at n + i, for ce_comb. */
void ce_loss_store(__global T_ST *o, long oo, __global ACC *part, int part_out,
                   __global const T_ST *xi, long k, __global const T_ST *w, long wo,
                   long i, long n, long nc, long ignore, ACC m, ACC s)
{
    ACC loss = 0, wk = 0;
    if (CE_BAD(k, ignore, nc)) {
        loss = wk = (ACC)NAN;
    } else if (k != ignore) {
        wk = T_LD(w[wo + k]);
        loss = wk * (m + log(s) - T_LD(xi[k]));
    }
    if (part_out) {
        part[i] = loss;
        part[n + i] = wk;
    } else {
        o[oo + i] = T_SV(loss);
    }
}

/* One work-item per row. */
__kernel void ce_fwd_wi(__global T_ST *o, long oo, __global ACC *part, int part_out,
                        __global const T_ST *x, long xo, __global const long *t, long to,
                        __global const T_ST *w, long wo, long n, long nc, long ignore)
{
    EM_EACH(i, n) {
        __global const T_ST *xi = x + xo + i * nc;
        ACC m, s;
        row_stats1(xi, nc, 1, &m, &s);
        ce_loss_store(o, oo, part, part_out, xi, t[to + i], w, wo, i, n, nc, ignore, m, s);
    }
}

/* One work-group per row. The stats run for every row, ignored ones included: the
 * barriers inside need every item of the group. */
__kernel void ce_fwd_wg(__global T_ST *o, long oo, __global ACC *part, int part_out,
                        __global const T_ST *x, long xo, __global const long *t, long to,
                        __global const T_ST *w, long wo, long n, long nc, long ignore,
                        int chunked, __local ACC *sc)
{
    long i = get_group_id(0);
    __global const T_ST *xi = x + xo + i * nc;
    ACC m, s;
    row_stats(xi, nc, 1, chunked, sc, &m, &s);
    if (get_local_id(0) == 0)
        ce_loss_store(o, oo, part, part_out, xi, t[to + i], w, wo, i, n, nc, ignore, m, s);
}

/* One work-group: o = sum of the losses, divided by the sum of the counted weights for
 * "mean" (0 / 0 = NaN for an empty or fully ignored batch, as in PyTorch), in IMF. */
__kernel void ce_comb(__global T_ST *o, long oo, __global const ACC *part, long n,
                      int mean, int chunked, __local IMF *sc)
{
    long j0, j1, js;
    item_range(n, chunked, &j0, &j1, &js);
    IMF l = 0, wsum = 0;
    for (long j = j0; j < j1; j += js) {
        l += (IMF)part[j];
        wsum += (IMF)part[n + j];
    }
    l = wg_sum_imf(l, sc);
    wsum = wg_sum_imf(wsum, sc);
    if (get_local_id(0) == 0)
        o[oo] = T_FROM_F(mean ? l / wsum : l);
}

/* One work-group: *ws = the summed weights of the counted targets (the mean's
 * denominator), NaN when a target is not a class. */
__kernel void ce_wsum(__global IMF *ws, __global const long *t, long to,
                      __global const T_ST *w, long wo, long n, long nc, long ignore,
                      int chunked, __local IMF *sc)
{
    long j0, j1, js;
    item_range(n, chunked, &j0, &j1, &js);
    IMF acc = 0;
    for (long i = j0; i < j1; i += js) {
        long k = t[to + i];
        if (CE_BAD(k, ignore, nc))
            acc += (IMF)NAN;
        else if (k != ignore)
            acc += (IMF)T_LD(w[wo + k]);
    }
    acc = wg_sum_imf(acc, sc);
    if (get_local_id(0) == 0)
        ws[0] = acc;
}
/* dx over a segment of row i (dense rows, inner 1): c (softmax(x)_j - [j == k]), c the
 * row's scale w[k] g (g_i for "none"), divided by *ws for "mean" (ws is only read
 * then); 0 for an ignored row and NaN for a bad target. */
void seg_dx(__global T_ST *y, __global const T_ST *x, long j0, long j1, long js, long k,
            __global const T_ST *w, long wo, __global const T_ST *g, long go,
            __global const IMF *ws, long i, long nc, long ignore, int red, ACC m, ACC s)
{
    if (k == ignore || CE_BAD(k, ignore, nc)) {
        ACC v = k == ignore ? (ACC)0 : (ACC)NAN;
        for (long j = j0; j < j1; j += js)
            y[j] = T_SV(v);
        return;
    }
    ACC c = T_LD(w[wo + k]) * T_LD(g[go + (red == RED_NONE ? i : 0)]);
    if (red == RED_MEAN)
        c = (ACC)((IMF)c / ws[0]);
    long j = j0;
    if (js == 1)
        for (; j + 8 <= j1; j += 8) {
            ACC8 hot = (ACC8)((ACC)(j == k), (ACC)(j + 1 == k), (ACC)(j + 2 == k),
                              (ACC)(j + 3 == k), (ACC)(j + 4 == k), (ACC)(j + 5 == k),
                              (ACC)(j + 6 == k), (ACC)(j + 7 == k));
            sv8(y + j, c * (exp(ld8(x + j) - m) / s - hot));
        }
    for (; j < j1; j += js)
        y[j] = T_SV(c * (exp(T_LD(x[j]) - m) / s - (ACC)(j == k)));
}

/* One work-item per row. */
__kernel void ce_bwd_wi(__global T_ST *o, long oo, __global const T_ST *x, long xo,
                        __global const long *t, long to, __global const T_ST *w, long wo,
                        __global const T_ST *g, long go, __global const IMF *ws, long n,
                        long nc, long ignore, int red)
{
    EM_EACH(i, n) {
        __global const T_ST *xi = x + xo + i * nc;
        ACC m, s;
        row_stats1(xi, nc, 1, &m, &s);
        seg_dx(o + oo + i * nc, xi, 0, nc, 1, t[to + i], w, wo, g, go, ws, i, nc, ignore,
               red, m, s);
    }
}

/* One work-group per row (the stats for every row, as in ce_fwd_wg; n unused). */
__kernel void ce_bwd_wg(__global T_ST *o, long oo, __global const T_ST *x, long xo,
                        __global const long *t, long to, __global const T_ST *w, long wo,
                        __global const T_ST *g, long go, __global const IMF *ws, long n,
                        long nc, long ignore, int red, int chunked, __local ACC *sc)
{
    long i = get_group_id(0);
    __global const T_ST *xi = x + xo + i * nc;
    ACC m, s;
    row_stats(xi, nc, 1, chunked, sc, &m, &s);
    long j0, j1, js;
    item_range(nc, chunked, &j0, &j1, &js);
    seg_dx(o + oo + i * nc, xi, j0, j1, js, t[to + i], w, wo, g, go, ws, i, nc, ignore,
           red, m, s);
}
#endif
