/* tests/conformance/cases_linalg.c - matmul (torch.matmul: 1-D operands, batches, broadcast
 * batch dims), linear (x @ w^T + b, with and without bias) and linear_relu (its ReLU'd
 * form), gather and scatter_add.
 *
 * matmul covers transposed and strided operands (the BLAS transpose paths), empty inner and
 * outer dims (an empty K gives zeros), and sizes that go through the threaded/BLAS path;
 * integer matmul is exact. gather/scatter_add indices repeat (scatter_add must accumulate),
 * index tensors smaller than the input, src larger than index, and non-contiguous operands.
 */
#include <string.h>

#include "conformance.h"

/* ---- references ----------------------------------------------------------------------------- */

static bool ref_matmul(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    return cf_ref_matmul_arrays(&in[0], &in[1], out);
}

/* x @ w^T (+ b) */
static bool ref_linear(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *w = &in[1];
    cf_arr wt = {0};
    int64_t shape[2] = {w->shape[1], w->shape[0]};
    if (w->ndim != 2 || !cf_arr_alloc(&wt, 2, shape))
        return false;
    for (int64_t i = 0; i < w->shape[0]; i++)
        for (int64_t j = 0; j < w->shape[1]; j++)
            wt.v[j * w->shape[0] + i] = w->v[i * w->shape[1] + j];
    bool ok = cf_ref_matmul_arrays(&in[0], &wt, out);
    cf_arr_free(&wt);
    if (ok && nin == 3)
        for (int64_t k = 0; k < out->n; k++)
            out->v[k] += in[2].v[k % in[2].n];
    return ok;
}

/* relu(x @ w^T (+ b)) */
static bool ref_linear_relu(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    bool ok = ref_linear(c, nin, in, out);
    for (int64_t k = 0; ok && k < out->n; k++)
        out->v[k] = out->v[k] > 0 || out->v[k] != out->v[k] ? out->v[k] : 0.0;
    return ok;
}

/* Row-major offset of index idx (of rank nd) in a tensor of `shape`, with dim `dim` replaced
 * by `at`. */
static int64_t offset_with(int nd, const int64_t *shape, const int64_t *idx, int dim, int64_t at)
{
    int64_t off = 0;
    for (int d = 0; d < nd; d++)
        off = off * shape[d] + (d == dim ? at : idx[d]);
    return off;
}

static void unravel(int64_t k, int nd, const int64_t *shape, int64_t *idx)
{
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = k % shape[d];
        k /= shape[d];
    }
}

static bool ref_gather(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *a = &in[0], *index = &in[1];
    int dim = c->p.dim < 0 ? c->p.dim + a->ndim : c->p.dim;
    if (!cf_arr_alloc(out, index->ndim, index->shape))
        return false;
    int64_t idx[EM_MAX_DIMS];
    for (int64_t k = 0; k < out->n; k++) {
        unravel(k, index->ndim, index->shape, idx);
        out->v[k] = a->v[offset_with(a->ndim, a->shape, idx, dim, (int64_t)index->v[k])];
    }
    return true;
}

static bool ref_scatter_add(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_arr *a = &in[0], *index = &in[1], *src = &in[2];
    int dim = c->p.dim < 0 ? c->p.dim + a->ndim : c->p.dim;
    if (!cf_arr_alloc(out, a->ndim, a->shape))
        return false;
    memcpy(out->v, a->v, sizeof(double) * (size_t)a->n);
    int64_t idx[EM_MAX_DIMS];
    for (int64_t k = 0; k < index->n; k++) {
        unravel(k, index->ndim, index->shape, idx);
        out->v[offset_with(a->ndim, a->shape, idx, dim, (int64_t)index->v[k])] +=
            src->v[offset_with(src->ndim, src->shape, idx, -1, 0)];
    }
    return true;
}

/* ---- calls ------------------------------------------------------------------------------------- */

static em_tensor *call_linear(const cf_case *c, em_tensor *const *in)
{
    return em_linear(in[0], in[1], c->nin == 3 ? in[2] : NULL);
}
static em_tensor *call_linear_relu(const cf_case *c, em_tensor *const *in)
{
    return em_linear_relu(in[0], in[1], c->nin == 3 ? in[2] : NULL);
}
static em_tensor *call_gather(const cf_case *c, em_tensor *const *in)
{
    return em_gather(in[0], c->p.dim, in[1]);
}
static em_tensor *call_scatter_add(const cf_case *c, em_tensor *const *in)
{
    return em_scatter_add(in[0], c->p.dim, in[1], in[2]);
}

#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define DOM {CF_UNIFORM, -1, 1, -5, 5}
#define ACC (CF_GRAD | CF_ACCUM)

static const cf_op matmul_op = {"matmul", 0, em_matmul, 0, 0, 0, ref_matmul, NUMERIC, ACC,
                                CF_OUT_PROMOTE, {DOM, DOM}};
static const cf_op linear_op = {"linear", 0, 0, call_linear, 0, 0, ref_linear,
                                EM_DTYPES_FLOAT, ACC, CF_OUT_PROMOTE, {DOM, DOM}};
static const cf_op linear_relu_op = {"linear_relu", 0, 0, call_linear_relu, 0, 0,
                                     ref_linear_relu, EM_DTYPES_FLOAT, ACC, CF_OUT_PROMOTE,
                                     {DOM, DOM}};
static const cf_op gather_op = {"gather", 0, 0, call_gather, 0, 0, ref_gather, EM_DTYPES_ALL,
                                CF_GRAD, CF_OUT_FIRST, {DOM, DOM}};
static const cf_op scatter_op = {"scatter_add", 0, 0, call_scatter_add, 0, 0, ref_scatter_add,
                                 NUMERIC, CF_GRAD | CF_ACCUM, CF_OUT_FIRST, {DOM, DOM}};

#define IN(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}}
#define IN0 {.ndim = 0}
#define INL(nd, lay, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .layout = lay}

typedef struct mm_case {
    const char *label;
    cf_in a, b, bias;
} mm_case;

static const mm_case mm_cases[] = {
    {"2-d", IN(2, 3, 4), IN(2, 4, 5), {0}},
    {"vector @ matrix", IN(1, 4), IN(2, 4, 5), {0}},
    {"matrix @ vector", IN(2, 3, 4), IN(1, 4), {0}},
    {"dot", IN(1, 6), IN(1, 6), {0}},
    {"batched", IN(3, 2, 3, 4), IN(3, 2, 4, 5), {0}},
    {"broadcast batch", IN(4, 2, 1, 3, 4), IN(3, 3, 4, 2), {0}},
    {"2-d @ batched", IN(2, 3, 4), IN(3, 2, 4, 5), {0}},
    {"transposed operands", INL(2, CF_T, 3, 4), INL(2, CF_T, 4, 5), {0}},
    {"strided rhs", IN(2, 3, 4), INL(2, CF_STEP, 4, 5), {0}},
    {"permuted batch", INL(3, CF_PERM, 2, 3, 4), IN(3, 2, 4, 3), {0}},
    {"empty inner dim", IN(2, 3, 0), IN(2, 0, 4), {0}},
    {"empty rows", IN(2, 0, 4), IN(2, 4, 5), {0}},
    {"large", IN(2, 64, 128), IN(2, 128, 96), {0}},
    {"large batched", IN(3, 8, 32, 64), IN(3, 8, 64, 48), {0}},
};

static const mm_case linear_cases[] = {
    {"2-d", IN(2, 3, 4), IN(2, 5, 4), IN(1, 5)},
    {"batched input", IN(3, 2, 3, 4), IN(2, 5, 4), IN(1, 5)},
    {"1-d input", IN(1, 4), IN(2, 5, 4), IN(1, 5)},
    {"transposed weight", IN(2, 3, 4), INL(2, CF_T, 5, 4), IN(1, 5)},
    {"zero-size batch", IN(2, 0, 4), IN(2, 5, 4), IN(1, 5)},
    {"large", IN(2, 64, 128), IN(2, 96, 128), IN(1, 96)},
    {"no bias", IN(2, 3, 4), IN(2, 5, 4), {.ndim = -1}},
    {"no bias, batched", IN(3, 2, 3, 4), IN(2, 5, 4), {.ndim = -1}},
};

/* gather/scatter_add: a, index (its domain bounds the index), src, dim. */
typedef struct index_case {
    const char *label;
    cf_in a, index, src;
    int dim;
    double lowp_atol;
} index_case;

static const cf_dom idx3 = {CF_INDEX, 0, 0, 0, 3}, idx4 = {CF_INDEX, 0, 0, 0, 4},
                    idx5 = {CF_INDEX, 0, 0, 0, 5}, idx100 = {CF_INDEX, 0, 0, 0, 100},
                    idx300 = {CF_INDEX, 0, 0, 0, 300};
#define IDX(d_, nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .dtype = EM_I64, .dom = &d_}

static const index_case gather_cases[] = {
    {"dim 0", IN(2, 3, 4), IDX(idx3, 2, 2, 4), {0}, 0, 0},
    {"dim 1", IN(2, 3, 4), IDX(idx4, 2, 3, 2), {0}, 1, 0},
    {"3-d, repeated indices", IN(3, 2, 3, 4), IDX(idx4, 3, 2, 3, 6), {0}, 2, 0},
    {"smaller index", IN(2, 3, 4), IDX(idx4, 2, 2, 3), {0}, 1, 0},
    {"vector", IN(1, 5), IDX(idx5, 1, 8), {0}, 0, 0},
    {"zero-size index", IN(2, 3, 4), IDX(idx3, 2, 0, 4), {0}, 0, 0},
    {"transposed input", INL(2, CF_T, 3, 4), IDX(idx3, 2, 2, 4), {0}, 0, 0},
    {"strided index", IN(2, 3, 4),
     {.ndim = 2, .shape = {3, 2}, .dtype = EM_I64, .dom = &idx4, .layout = CF_STEP}, {0}, 1, 0},
    {"negative dim", IN(2, 3, 4), IDX(idx4, 2, 3, 2), {0}, -1, 0},
    {"large", IN(2, 256, 300), IDX(idx300, 2, 256, 200), {0}, 1, 0},
};

static const index_case scatter_cases[] = {
    {"dim 0, repeated indices", IN(2, 3, 4), IDX(idx3, 2, 5, 4), IN(2, 5, 4), 0, 0},
    {"dim 1", IN(2, 3, 4), IDX(idx4, 2, 3, 6), IN(2, 3, 6), 1, 0},
    {"src larger than index", IN(2, 3, 4), IDX(idx3, 2, 2, 3), IN(2, 3, 5), 0, 0},
    {"vector", IN(1, 5), IDX(idx5, 1, 8), IN(1, 8), 0, 0},
    {"zero-size index", IN(2, 3, 4), IDX(idx3, 2, 0, 4), IN(2, 0, 4), 0, 0},
    {"non-contiguous", INL(2, CF_T, 3, 4), IDX(idx3, 2, 2, 4), INL(2, CF_STEP, 2, 4), 0, 0},
    /* about 5 of the 500 src elements of a row land on each element: in bfloat16 each of
     * those additions rounds to 2^-8 relative (PyTorch accumulates in the dtype too) */
    {"large", IN(2, 64, 100), IDX(idx100, 2, 64, 500), IN(2, 64, 500), 1, 0.04},
};

void cf_family_linalg(cf_list *l)
{
    for (size_t s = 0; s < sizeof mm_cases / sizeof mm_cases[0]; s++) {
        cf_case c = {.op = &matmul_op, .nin = 2};
        c.in[0] = mm_cases[s].a;
        c.in[1] = mm_cases[s].b;
        cf_label(&c, "%s", mm_cases[s].label);
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof linear_cases / sizeof linear_cases[0]; s++) {
        const mm_case *m = &linear_cases[s];
        cf_case c = {.op = &linear_op, .nin = m->bias.ndim < 0 ? 2 : 3};
        c.in[0] = m->a;
        c.in[1] = m->b;
        c.in[2] = m->bias;
        cf_label(&c, "%s", m->label);
        cf_add(l, &c);
        c.op = &linear_relu_op;
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof gather_cases / sizeof gather_cases[0]; s++) {
        cf_case c = {.op = &gather_op, .nin = 2};
        c.in[0] = gather_cases[s].a;
        c.in[1] = gather_cases[s].index;
        c.p.dim = gather_cases[s].dim;
        cf_label(&c, "%s", gather_cases[s].label);
        cf_add(l, &c);
    }
    for (size_t s = 0; s < sizeof scatter_cases / sizeof scatter_cases[0]; s++) {
        cf_case c = {.op = &scatter_op, .nin = 3, .lowp_atol = scatter_cases[s].lowp_atol};
        c.in[0] = scatter_cases[s].a;
        c.in[1] = scatter_cases[s].index;
        c.in[2] = scatter_cases[s].src;
        c.p.dim = scatter_cases[s].dim;
        cf_label(&c, "%s", scatter_cases[s].label);
        cf_add(l, &c);
    }
}
