/* backends/cpu/index.c - indexing along one dim: gather and scatter_add.
 *
 *   gather:      out[p] = a[p with p[dim] := index[p]]          out: shape of index
 *   scatter_add: out = a; out[p with p[dim] := index[p]] += src[p]   for p over index
 * Both run on the elementwise iterator over views built here: a (or out) is seen with index's
 * shape and stride 0 along dim, so the iterator walks index positions and the kernel adds
 * index * stride(dim). The core's infer functions (em__check_index) have checked dim, the
 * index's dtype, rank, sizes and bounds, and scatter_add's src dtype and shape. scatter_add
 * walks positions with dim collapsed and loops over dim inside, so threads own disjoint output
 * lines (no atomics) and every output element receives its contributions in index order, as
 * PyTorch's CPU does.
 */
#include "cpu.h"

/* A view of `t`'s buffer with `shape`'s sizes (optionally size 1 along `dim`) and t's strides,
 * with stride 0 along `dim` when zero_dim is set. */
typedef struct kview {
    em_ktensor kt;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
} kview;

static void make_view(kview *v, const em_ktensor *t, const em_ktensor *like, int dim,
                      bool collapse_dim, bool zero_dim)
{
    v->kt = *t;
    v->kt.ndim = like->ndim;
    v->kt.numel = 1;
    for (int d = 0; d < like->ndim; d++) {
        v->shape[d] = collapse_dim && d == dim ? 1 : like->shape[d];
        v->strides[d] = zero_dim && d == dim ? 0 : t->strides[d];
        v->kt.numel *= v->shape[d];
    }
    v->kt.shape = v->shape;
    v->kt.strides = v->strides;
}

/* ---- gather ------------------------------------------------------------------------------ */

typedef struct gather_ctx {
    int64_t dim_stride;                /* a's stride along dim, elements */
} gather_ctx;

/* Operands: out, index, a (stride 0 along dim). */
#define GATHER_LOOP(name, T)                                                             \
    static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)      \
    {                                                                                    \
        int64_t ds = ((const gather_ctx *)fctx)->dim_stride;                             \
        T *o = (T *)p[0];                                                                \
        const int64_t *ix = (const int64_t *)p[1];                                       \
        const T *a = (const T *)p[2];                                                    \
        for (int64_t i = 0; i < n; i++)                                                  \
            o[i * s[0]] = a[i * s[2] + ix[i * s[1]] * ds];                               \
    }

GATHER_LOOP(gather_1, uint8_t)
GATHER_LOOP(gather_2, uint16_t)
GATHER_LOOP(gather_4, uint32_t)
GATHER_LOOP(gather_8, uint64_t)

static int k_gather(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 2, 1, 1);
    const em_ktensor *a = &c->in[0], *idx = &c->in[1];
    int dim = (int)c->attrs[0].i;
    gather_ctx g = {a->ndim > 0 ? a->strides[dim] : 0};
    kview av;
    make_view(&av, a, idx, dim, false, true);
    static const em_cpu_loop_fn loops[4] = {gather_1, gather_2, gather_4, gather_8};
    const em_ktensor *ts[3] = {&c->out[0], idx, &av.kt};
    return em_cpu__iter_each("gather", 3, ts, EM_CPU_GRAIN_CHEAP,
                             em_cpu__by_elsize(em_dtype_size(a->dtype), loops), &g);
}

/* ---- scatter_add ----------------------------------------------------------------------------- */

typedef struct scatter_ctx {
    int64_t D;                                     /* index's size along dim */
    int64_t out_ds, idx_ds, src_ds;                /* strides along dim */
} scatter_ctx;

/* Operands: out, index, src, each at dim position 0; the loop runs dim inside. */
#define SCATTER_LOOP(name, T, C, LD, ST, ADD)                                            \
    static void name(const void *fctx, char *const *p, const int64_t *s, int64_t n)      \
    {                                                                                    \
        const scatter_ctx *x = fctx;                                                     \
        T *o = (T *)p[0];                                                                \
        const int64_t *ix = (const int64_t *)p[1];                                       \
        const T *src = (const T *)p[2];                                                  \
        for (int64_t d = 0; d < x->D; d++) {                                             \
            const int64_t *ixd = ix + d * x->idx_ds;                                     \
            const T *sd = src + d * x->src_ds;                                           \
            for (int64_t i = 0; i < n; i++) {                                            \
                T *dst = o + i * s[0] + ixd[i * s[1]] * x->out_ds;                       \
                C v = LD(*dst), y = LD(sd[i * s[2]]);                                    \
                *dst = ST(ADD(v, y));                                                    \
            }                                                                            \
        }                                                                                \
    }

#define ID(v) (v)
#define FADD(a, b) ((a) + (b))
#define ADD_U64(a, b) ((int64_t)((uint64_t)(a) + (uint64_t)(b)))
#define ADD_U32(a, b) ((int32_t)((uint32_t)(a) + (uint32_t)(b)))
#define ADD_U8(a, b) ((uint8_t)((a) + (b)))
#define OR_BOOL(a, b) ((uint8_t)((a) != 0 || (b) != 0))

SCATTER_LOOP(scatter_f32, float, float, ID, ID, FADD)
SCATTER_LOOP(scatter_f64, double, double, ID, ID, FADD)
SCATTER_LOOP(scatter_f16, uint16_t, float, em_cpu__h2f, em_cpu__f2h, FADD)
SCATTER_LOOP(scatter_bf16, uint16_t, float, em_bf16_to_f32, em_f32_to_bf16, FADD)
SCATTER_LOOP(scatter_i64, int64_t, int64_t, ID, ID, ADD_U64)
SCATTER_LOOP(scatter_i32, int32_t, int32_t, ID, ID, ADD_U32)
SCATTER_LOOP(scatter_u8, uint8_t, uint8_t, ID, ID, ADD_U8)
SCATTER_LOOP(scatter_bool, uint8_t, uint8_t, ID, ID, OR_BOOL)

static const em_cpu_loop_fn scatter_loops[EM_DTYPE_COUNT] = {
    [EM_F32] = scatter_f32, [EM_F64] = scatter_f64, [EM_F16] = scatter_f16,
    [EM_BF16] = scatter_bf16, [EM_I64] = scatter_i64, [EM_I32] = scatter_i32,
    [EM_U8] = scatter_u8, [EM_BOOL] = scatter_bool,
};

/* out = a, element by element (a may be strided). */
static int copy_input(const em_ktensor *out, const em_ktensor *a)
{
    const em_ktensor *ts[2] = {out, a};
    return em_cpu__iter_each("scatter_add", 2, ts, EM_CPU_GRAIN_CHEAP,
                             em_cpu__move_loop(em_dtype_size(a->dtype)), NULL);
}

static int k_scatter_add(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cpu", 3, 1, 1);
    const em_ktensor *a = &c->in[0], *idx = &c->in[1], *src = &c->in[2], *out = &c->out[0];
    int dim = (int)c->attrs[0].i;
    int rc = copy_input(out, a);
    if (rc != EM_OK || idx->numel == 0)
        return rc;
    if (a->ndim == 0) {                /* 0-dim: out += src where the index is 0 */
        int64_t zero[1] = {0};
        char *p[3] = {em_cpu__data(out), em_cpu__data(idx), em_cpu__data(src)};
        scatter_ctx x = {1, 0, 0, 0};
        scatter_loops[a->dtype](&x, p, zero, 1);
        return EM_OK;
    }
    scatter_ctx x = {idx->shape[dim], out->strides[dim], idx->strides[dim], src->strides[dim]};
    kview ov, iv, sv;
    make_view(&ov, out, idx, dim, true, false);
    make_view(&iv, idx, idx, dim, true, false);
    make_view(&sv, src, idx, dim, true, false);
    const em_ktensor *ts[3] = {&ov.kt, &iv.kt, &sv.kt};
    int64_t grain = EM_CPU_GRAIN_CHEAP / (x.D > 0 ? x.D : 1);
    return em_cpu__iter_each("scatter_add", 3, ts, grain > 0 ? grain : 1,
                             scatter_loops[a->dtype], &x);
}

int em_cpu__register_index(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"gather", k_gather, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
        {"scatter_add", k_scatter_add, EM_KERNEL_STRIDED, EM_DTYPES_ALL},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
