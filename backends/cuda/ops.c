/* backends/cuda/ops.c - the kernels of backend "cuda": each unpacks its em_kcall into the
 * shapes and operands of kernels.h and launches on the device's stream; matmul goes to cuBLAS
 * for f32, f64, f16 and bf16 (f16/bf16 with f32 compute) when the operands' layouts allow it
 * (transposed operands through their strides, batches through strided batched GEMM), and to a
 * simple kernel otherwise (integers, bool, layouts cuBLAS cannot take).
 *
 * Launches are asynchronous: errors of a launch itself are reported at once, errors inside a
 * kernel at the next synchronising call (a host copy), as in PyTorch.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include "cuda.h"
#include "kcall.h"

/* ---- copy, fill, random --------------------------------------------------------------------- */

static int k_copy(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "copy", 1, 1, 0);
    if (!st)
        return em_last_status();
    em_cuda_shape s;
    em_cuda_arg dst, src;
    to_shape(&s, &c->out[0]);
    to_arg(&dst, &c->out[0]);
    to_arg(&src, &c->in[0]);
    return launched(em_cuda__copy(st, &s, &dst, &src), "copy", c->in[0].dtype);
}

static int k_fill(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "fill", 0, 1, 1);
    if (!st)
        return em_last_status();
    em_cuda_arg out;
    to_arg(&out, &c->out[0]);
    return launched(em_cuda__fill(st, c->out[0].numel, &out, c->attrs[0].f), "fill",
                    c->out[0].dtype);
}

static int k_random(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "random", 0, 1, 7);
    if (!st)
        return em_last_status();
    const em_attr *a = c->attrs;
    int dist = (int)a[0].i;
    if (dist < 0 || dist > 2)
        return em_set_error(EM_ERR_INVALID, "cuda: random: unknown distribution %d", dist);
    if (dist == 2 && a[6].i <= a[5].i)
        return em_set_error(EM_ERR_INVALID, "cuda: random: empty range [%lld, %lld)",
                            (long long)a[5].i, (long long)a[6].i);
    em_cuda_arg out;
    to_arg(&out, &c->out[0]);
    return launched(em_cuda__random(st, c->out[0].numel, &out, dist, (uint64_t)a[1].i,
                                    (uint64_t)a[2].i, a[3].f, a[4].f, a[5].i, a[6].i),
                    "random", c->out[0].dtype);
}

/* ---- elementwise ----------------------------------------------------------------------------- */

static const char *const unary_names[EM_CUDA_UNARY_COUNT] = {
    "neg", "abs", "relu", "exp", "log", "sqrt", "sin", "cos", "tanh", "sigmoid"};
static const char *const binary_names[EM_CUDA_BINARY_COUNT] = {
    "add", "sub", "mul", "div", "pow", "maximum", "minimum", "eq", "ne", "lt", "le", "gt", "ge"};

static int run_unary(void *bctx, const em_kcall *c, int op)
{
    const char *name = unary_names[op];
    void *st = kcall_stream(c, name, 1, 1, 0);
    if (!st)
        return em_last_status();
    em_cuda_shape s;
    em_cuda_arg out, a;
    to_shape(&s, &c->out[0]);
    to_arg(&out, &c->out[0]);
    to_arg(&a, &c->in[0]);
    return launched(em_cuda__unary(st, op, &s, &out, &a), name, c->in[0].dtype);
}

static int run_binary(void *bctx, const em_kcall *c, int op)
{
    const char *name = binary_names[op];
    void *st = kcall_stream(c, name, 2, 1, 0);
    if (!st)
        return em_last_status();
    em_cuda_shape s;
    em_cuda_arg out, a, b;
    to_shape(&s, &c->out[0]);
    to_arg(&out, &c->out[0]);
    to_arg(&a, &c->in[0]);
    to_arg(&b, &c->in[1]);
    return launched(em_cuda__binary(st, op, &s, &out, &a, &b), name, c->in[0].dtype);
}

EM_KERNEL_BIND(k_neg, run_unary, EM_CUDA_NEG)
EM_KERNEL_BIND(k_abs, run_unary, EM_CUDA_ABS)
EM_KERNEL_BIND(k_relu, run_unary, EM_CUDA_RELU)
EM_KERNEL_BIND(k_exp, run_unary, EM_CUDA_EXP)
EM_KERNEL_BIND(k_log, run_unary, EM_CUDA_LOG)
EM_KERNEL_BIND(k_sqrt, run_unary, EM_CUDA_SQRT)
EM_KERNEL_BIND(k_sin, run_unary, EM_CUDA_SIN)
EM_KERNEL_BIND(k_cos, run_unary, EM_CUDA_COS)
EM_KERNEL_BIND(k_tanh, run_unary, EM_CUDA_TANH)
EM_KERNEL_BIND(k_sigmoid, run_unary, EM_CUDA_SIGMOID)

EM_KERNEL_BIND(k_add, run_binary, EM_CUDA_ADD)
EM_KERNEL_BIND(k_sub, run_binary, EM_CUDA_SUB)
EM_KERNEL_BIND(k_mul, run_binary, EM_CUDA_MUL)
EM_KERNEL_BIND(k_div, run_binary, EM_CUDA_DIV)
EM_KERNEL_BIND(k_pow, run_binary, EM_CUDA_POW)
EM_KERNEL_BIND(k_maximum, run_binary, EM_CUDA_MAXIMUM)
EM_KERNEL_BIND(k_minimum, run_binary, EM_CUDA_MINIMUM)
EM_KERNEL_BIND(k_eq, run_binary, EM_CUDA_EQ)
EM_KERNEL_BIND(k_ne, run_binary, EM_CUDA_NE)
EM_KERNEL_BIND(k_lt, run_binary, EM_CUDA_LT)
EM_KERNEL_BIND(k_le, run_binary, EM_CUDA_LE)
EM_KERNEL_BIND(k_gt, run_binary, EM_CUDA_GT)
EM_KERNEL_BIND(k_ge, run_binary, EM_CUDA_GE)

static int k_where(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "where", 3, 1, 0);
    if (!st)
        return em_last_status();
    em_cuda_shape s;
    em_cuda_arg out, a, b, cond;
    to_shape(&s, &c->out[0]);
    to_arg(&out, &c->out[0]);
    to_arg(&a, &c->in[0]);
    to_arg(&b, &c->in[1]);
    to_arg(&cond, &c->in[2]);
    return launched(em_cuda__where(st, &s, &out, &a, &b, &cond), "where", c->in[0].dtype);
}

/* ---- reductions ------------------------------------------------------------------------------ */

static int run_reduce(void *bctx, const em_kcall *c, int kind)
{
    const char *name = kind == EM_CUDA_SUM ? "sum" : "amax";
    void *st = kcall_stream(c, name, 1, 1, 2);
    if (!st)
        return em_last_status();
    const em_ktensor *in = &c->in[0];
    const em_attr *axes = &c->attrs[0];
    bool reduced[EM_CUDA_MAX_DIMS] = {false};
    for (int i = 0; i < axes->n; i++)          /* non-negative and in range (primitives.md) */
        if (axes->ints[i] < in->ndim)
            reduced[axes->ints[i]] = true;
    em_cuda_shape kept = {0, 1, {0}}, red = {0, 1, {0}};
    em_cuda_arg ink, out;
    int64_t red_strides[EM_CUDA_MAX_DIMS] = {0};
    to_arg(&ink, in);
    memset(ink.strides, 0, sizeof ink.strides);
    for (int d = 0; d < in->ndim; d++) {
        if (reduced[d]) {
            red_strides[red.ndim] = in->strides[d];
            red.shape[red.ndim++] = in->shape[d];
            red.numel *= in->shape[d];
        } else {
            ink.strides[kept.ndim] = in->strides[d];
            kept.shape[kept.ndim++] = in->shape[d];
            kept.numel *= in->shape[d];
        }
    }
    if (kind == EM_CUDA_AMAX && red.numel == 0)
        return em_set_error(EM_ERR_INVALID, "cuda: amax: empty reduction");
    to_arg(&out, &c->out[0]);
    /* scratch for a split reduction, back to the pool once enqueued (stream order) */
    size_t bytes = em_cuda__reduce_scratch(&kept, &red);
    void *scratch = bytes ? em_cuda__alloc(bctx, c->device, bytes) : NULL;
    if (bytes && !scratch)
        return em_last_status();
    int rc = em_cuda__reduce(st, kind, &kept, &ink, &red, red_strides, &out, scratch);
    if (scratch)
        em_cuda__free(bctx, c->device, scratch, bytes);
    return launched(rc, name, in->dtype);
}

EM_KERNEL_BIND(k_sum, run_reduce, EM_CUDA_SUM)
EM_KERNEL_BIND(k_amax, run_reduce, EM_CUDA_AMAX)

static int k_argmax(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "argmax", 1, 1, 2);
    if (!st)
        return em_last_status();
    const em_ktensor *in = &c->in[0];
    int64_t dim = c->attrs[0].i;
    if (dim < 0 || dim >= (in->ndim > 0 ? in->ndim : 1))
        return em_set_error(EM_ERR_INVALID, "cuda: argmax: dim %lld out of range",
                            (long long)dim);
    em_cuda_shape kept = {0, 1, {0}};
    em_cuda_arg ink, out;
    to_arg(&ink, in);
    memset(ink.strides, 0, sizeof ink.strides);
    int64_t len = 1, stride = 0;
    for (int d = 0; d < in->ndim; d++) {
        if (d == dim) {
            len = in->shape[d];
            stride = in->strides[d];
        } else {
            ink.strides[kept.ndim] = in->strides[d];
            kept.shape[kept.ndim++] = in->shape[d];
            kept.numel *= in->shape[d];
        }
    }
    if (len == 0)
        return em_set_error(EM_ERR_INVALID, "cuda: argmax: empty dim");
    to_arg(&out, &c->out[0]);
    return launched(em_cuda__argmax(st, &kept, &ink, len, stride, &out), "argmax", in->dtype);
}

/* ---- gather, scatter_add --------------------------------------------------------------------- */

static int k_gather(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "gather", 2, 1, 1);
    if (!st)
        return em_last_status();
    const em_ktensor *a = &c->in[0], *idx = &c->in[1];
    int dim = (int)c->attrs[0].i;
    em_cuda_shape s;
    em_cuda_arg out, aa, ii;
    to_shape(&s, idx);
    to_arg(&out, &c->out[0]);
    to_arg(&aa, a);
    to_arg(&ii, idx);
    int64_t dstride = a->ndim > 0 ? a->strides[dim] : 0;
    return launched(em_cuda__gather(st, &s, &out, &aa, dstride, &ii, dim), "gather", a->dtype);
}

/* EMBER_CUDA_DETERMINISTIC=1: scatter_add sums in index order (no atomics) for every dtype,
 * so float results are the same from run to run (slower where index.shape[dim] is large).
 * f16, bf16, u8 and bool always take that path. */
static bool deterministic(void)
{
    const char *e = getenv("EMBER_CUDA_DETERMINISTIC");
    return e && strcmp(e, "1") == 0;
}

static int k_scatter_add(void *bctx, const em_kcall *c)
{
    (void)bctx;
    void *st = kcall_stream(c, "scatter_add", 3, 1, 1);
    if (!st)
        return em_last_status();
    const em_ktensor *a = &c->in[0], *idx = &c->in[1], *src = &c->in[2], *o = &c->out[0];
    int dim = (int)c->attrs[0].i;
    em_cuda_shape s;
    em_cuda_arg out, aa, ii, ss;
    to_shape(&s, o);
    to_arg(&out, o);
    to_arg(&aa, a);
    int rc = launched(em_cuda__copy(st, &s, &out, &aa), "scatter_add", a->dtype);
    if (rc != EM_OK || idx->numel == 0)
        return rc;
    to_arg(&ii, idx);
    to_arg(&ss, src);
    em_dtype dt = a->dtype;
    bool atomic = (dt == EM_F32 || dt == EM_F64 || dt == EM_I64 || dt == EM_I32) &&
                  !deterministic();
    if (atomic) {
        to_shape(&s, idx);
        int64_t dstride = o->ndim > 0 ? o->strides[dim] : 0;
        return launched(em_cuda__scatter_add(st, &s, &out, dstride, &ii, &ss, dim),
                        "scatter_add", dt);
    }
    em_cuda_shape is;
    to_shape(&is, idx);
    to_shape(&s, o);
    if (o->ndim == 0) {              /* 0-dim: one element, index 0 */
        s.ndim = is.ndim = 1;
        s.shape[0] = is.shape[0] = 1;
        ii.strides[0] = ss.strides[0] = 0;
    }
    return launched(em_cuda__scatter_add_det(st, &s, &out, &is, &ii, &ss, dim), "scatter_add",
                    dt);
}

/* ---- matmul ---------------------------------------------------------------------------------- */

/* cuBLAS is loaded at the first matmul (dlopen), not with the plugin: libcublasLt alone is
 * half a gigabyte, and a process that never multiplies on the GPU (or has no GPU: every test
 * run in CI) should not pay for mapping it at each em_init. */
typedef struct cublas_api {
    void *lib;
    char error[256];
    cublasStatus_t (*create)(cublasHandle_t *);
    cublasStatus_t (*destroy)(cublasHandle_t);
    cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t);
    const char *(*status_string)(cublasStatus_t);
    cublasStatus_t (*gemm)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int,
                           const void *, const void *, cudaDataType, int, long long int,
                           const void *, cudaDataType, int, long long int, const void *, void *,
                           cudaDataType, int, long long int, int, cublasComputeType_t,
                           cublasGemmAlgo_t);
} cublas_api;

static cublas_api cublas;
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;

#define STR_(x) #x
#define STR(x) STR_(x)

static void *sym(const char *name)
{
    void *p = dlsym(cublas.lib, name);
    if (!p && !cublas.error[0])
        snprintf(cublas.error, sizeof cublas.error, "cuBLAS lacks %s", name);
    return p;
}

#ifndef EM_CUDA_LIBDIRS
#define EM_CUDA_LIBDIRS "/usr/local/cuda/lib64"
#endif

static void cublas_load(void)
{
    static const char *const names[] = {"libcublas.so." STR(CUBLAS_VER_MAJOR), "libcublas.so"};
    for (size_t i = 0; i < 2 && !cublas.lib; i++)
        cublas.lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
    /* Then the toolkit the plugin was built with (EM_CUDA_LIBDIRS: a ':' list). */
    const char *dirs = EM_CUDA_LIBDIRS;
    while (!cublas.lib && *dirs) {
        size_t n = strcspn(dirs, ":");
        char path[512];
        snprintf(path, sizeof path, "%.*s/%s", (int)n, dirs, names[0]);
        cublas.lib = dlopen(path, RTLD_NOW | RTLD_LOCAL | RTLD_NODELETE);
        dirs += n + (dirs[n] == ':');
    }
    if (!cublas.lib) {
        const char *e = dlerror();
        snprintf(cublas.error, sizeof cublas.error, "cannot load %s: %s", names[0],
                 e ? e : "not found");
        return;
    }
    /* Object pointers to function pointers: POSIX guarantees dlsym's results convert. */
    *(void **)&cublas.create = sym("cublasCreate_v2");
    *(void **)&cublas.destroy = sym("cublasDestroy_v2");
    *(void **)&cublas.set_stream = sym("cublasSetStream_v2");
    *(void **)&cublas.status_string = sym("cublasGetStatusString");
    *(void **)&cublas.gemm = sym("cublasGemmStridedBatchedEx");
}

static const char *cublas_status(cublasStatus_t s)
{
    return cublas.status_string ? cublas.status_string(s) : "cuBLAS error";
}

static int cublas_handle(em_cuda_device *d, cublasHandle_t *out)
{
    pthread_once(&cublas_once, cublas_load);
    if (cublas.error[0])
        return em_set_error(EM_ERR_UNSUPPORTED, "cuda: matmul: %s", cublas.error);
    pthread_mutex_lock(&d->lock);
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (!d->cublas) {
        cublasHandle_t h = NULL;
        s = cublas.create(&h);
        if (s == CUBLAS_STATUS_SUCCESS) {
            s = cublas.set_stream(h, (cudaStream_t)d->stream);
            d->cublas = h;
        }
    }
    *out = (cublasHandle_t)d->cublas;
    pthread_mutex_unlock(&d->lock);
    if (s != CUBLAS_STATUS_SUCCESS)
        return em_set_error(EM_ERR_DEVICE, "cuda: matmul: cuBLAS: %s", cublas_status(s));
    return EM_OK;
}

void em_cuda__cublas_destroy(em_cuda_device *d)
{
    if (d->cublas && cublas.destroy)
        cublas.destroy((cublasHandle_t)d->cublas);
    d->cublas = NULL;
}

/* How a rows x cols row-major operand with strides (rs, cs) is seen by column-major cuBLAS in
 * C^T = B^T A^T: N with ld = rs when rows are contiguous, T with ld = cs when columns are.
 * False when neither (the simple kernel takes it). */
static bool blas_layout(int64_t rows, int64_t cols, int64_t rs, int64_t cs,
                        cublasOperation_t *op, int64_t *ld)
{
    if ((cs == 1 || cols == 1) && (rows == 1 || rs >= (cols > 1 ? cols : 1))) {
        *op = CUBLAS_OP_N;
        *ld = rows == 1 ? (cols > 1 ? cols : 1) : rs;
        return true;
    }
    if ((rs == 1 || rows == 1) && (cols == 1 || cs >= (rows > 1 ? rows : 1))) {
        *op = CUBLAS_OP_T;
        *ld = cols == 1 ? (rows > 1 ? rows : 1) : cs;
        return true;
    }
    return false;
}

static int k_matmul(void *bctx, const em_kcall *c)
{
    EM_KCALL_CHECK(c, "cuda", 2, 1, 0);
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *o = &c->out[0];
    int nd = a->ndim;
    em_cuda_device *d = em_cuda__device(c->device, "matmul");
    if (!d)
        return em_last_status();
    int64_t m = a->shape[nd - 2], k = a->shape[nd - 1], n = b->shape[nd - 1];
    int64_t a_rs = a->strides[nd - 2], a_cs = a->strides[nd - 1];
    int64_t b_rs = b->strides[nd - 2], b_cs = b->strides[nd - 1];
    int nb = nd - 2;
    em_cuda_shape bs = {nb, 1, {0}};
    for (int i = 0; i < nb; i++) {
        bs.shape[i] = o->shape[i];
        bs.numel *= o->shape[i];
    }
    em_cuda_arg ao, bo, oo;
    to_arg(&ao, a);
    to_arg(&bo, b);
    to_arg(&oo, o);
    if (k == 0)
        return launched(em_cuda__fill(d->stream, o->numel, &oo, 0.0), "matmul", a->dtype);

    cudaDataType_t ty = CUDA_R_32F;
    cublasComputeType_t ct = CUBLAS_COMPUTE_32F;
    size_t es;
    switch (a->dtype) {
    case EM_F32: ty = CUDA_R_32F; es = 4; break;
    case EM_F64: ty = CUDA_R_64F; ct = CUBLAS_COMPUTE_64F; es = 8; break;
    case EM_F16: ty = CUDA_R_16F; es = 2; break;
    case EM_BF16: ty = CUDA_R_16BF; es = 2; break;
    default: es = 0; break;
    }
    cublasOperation_t opa, opb;
    int64_t lda, ldb;
    bool blas = es && m <= INT32_MAX && n <= INT32_MAX && k <= INT32_MAX &&
                blas_layout(m, k, a_rs, a_cs, &opa, &lda) &&
                blas_layout(k, n, b_rs, b_cs, &opb, &ldb) && lda <= INT32_MAX &&
                ldb <= INT32_MAX;
    if (!blas)
        return launched(em_cuda__matmul_simple(d->stream, (int)a->dtype, bs.numel, m, n, k, &bs,
                                               &oo, &ao, a_rs, a_cs, &bo, b_rs, b_cs),
                        "matmul", a->dtype);
    cublasHandle_t h = NULL;
    int rc = cublas_handle(d, &h);
    if (rc != EM_OK)
        return rc;
    /* The last batch dim is cuBLAS's batch; the ones before it are looped here. */
    int64_t count = nb > 0 ? bs.shape[nb - 1] : 1;
    int64_t sa = nb > 0 ? a->strides[nb - 1] : 0, sb = nb > 0 ? b->strides[nb - 1] : 0;
    int64_t so = m * n;
    int64_t outer = count > 0 ? bs.numel / count : 0;
    float alpha32 = 1.0f, beta32 = 0.0f;
    double alpha64 = 1.0, beta64 = 0.0;
    const void *alpha = ct == CUBLAS_COMPUTE_64F ? (const void *)&alpha64 : (const void *)&alpha32;
    const void *beta = ct == CUBLAS_COMPUTE_64F ? (const void *)&beta64 : (const void *)&beta32;
    for (int64_t ob = 0; ob < outer; ob++) {
        /* offsets of this outer batch index */
        int64_t offa = a->offset, offb = b->offset, offo = o->offset + ob * count * so;
        int64_t lin = ob;
        for (int i = nb - 2; i >= 0; i--) {
            int64_t ix = lin % bs.shape[i];
            lin /= bs.shape[i];
            offa += ix * a->strides[i];
            offb += ix * b->strides[i];
        }
        const char *pa = (const char *)a->buf + (size_t)offa * es;
        const char *pb = (const char *)b->buf + (size_t)offb * es;
        char *po = (char *)o->buf + (size_t)offo * es;
        cublasStatus_t s = cublas.gemm(
            h, opb, opa, (int)n, (int)m, (int)k, alpha, pb, ty, (int)ldb, sb, pa, ty, (int)lda,
            sa, beta, po, ty, (int)n, so, (int)count, ct, CUBLAS_GEMM_DEFAULT);
        if (s != CUBLAS_STATUS_SUCCESS)
            return em_set_error(EM_ERR_DEVICE, "cuda: matmul: cublasGemmStridedBatchedEx "
                                "[%lld x %lld] @ [%lld x %lld] x %lld: %s", (long long)m,
                                (long long)k, (long long)k, (long long)n, (long long)count,
                                cublas_status(s));
    }
    return EM_OK;
}

/* ---- registration ---------------------------------------------------------------------------- */

#define ALL EM_DTYPES_ALL
#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)
#define FLOAT EM_DTYPES_FLOAT

int em_cuda__register_kernels(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"copy", k_copy, EM_KERNEL_STRIDED, ALL},
        {"fill", k_fill, 0, ALL},
        {"random", k_random, 0, ALL},
        {"neg", k_neg, EM_KERNEL_STRIDED, NUMERIC},
        {"abs", k_abs, EM_KERNEL_STRIDED, NUMERIC},
        {"relu", k_relu, EM_KERNEL_STRIDED, NUMERIC},
        {"exp", k_exp, EM_KERNEL_STRIDED, FLOAT},
        {"log", k_log, EM_KERNEL_STRIDED, FLOAT},
        {"sqrt", k_sqrt, EM_KERNEL_STRIDED, FLOAT},
        {"sin", k_sin, EM_KERNEL_STRIDED, FLOAT},
        {"cos", k_cos, EM_KERNEL_STRIDED, FLOAT},
        {"tanh", k_tanh, EM_KERNEL_STRIDED, FLOAT},
        {"sigmoid", k_sigmoid, EM_KERNEL_STRIDED, FLOAT},
        {"add", k_add, EM_KERNEL_STRIDED, ALL},
        {"sub", k_sub, EM_KERNEL_STRIDED, NUMERIC},
        {"mul", k_mul, EM_KERNEL_STRIDED, ALL},
        {"div", k_div, EM_KERNEL_STRIDED, FLOAT},
        {"pow", k_pow, EM_KERNEL_STRIDED, NUMERIC},
        {"maximum", k_maximum, EM_KERNEL_STRIDED, ALL},
        {"minimum", k_minimum, EM_KERNEL_STRIDED, ALL},
        {"eq", k_eq, EM_KERNEL_STRIDED, ALL},
        {"ne", k_ne, EM_KERNEL_STRIDED, ALL},
        {"lt", k_lt, EM_KERNEL_STRIDED, ALL},
        {"le", k_le, EM_KERNEL_STRIDED, ALL},
        {"gt", k_gt, EM_KERNEL_STRIDED, ALL},
        {"ge", k_ge, EM_KERNEL_STRIDED, ALL},
        {"where", k_where, EM_KERNEL_STRIDED, ALL},
        {"sum", k_sum, EM_KERNEL_STRIDED, ALL},
        {"amax", k_amax, EM_KERNEL_STRIDED, ALL},
        {"argmax", k_argmax, EM_KERNEL_STRIDED, NUMERIC},
        {"matmul", k_matmul, EM_KERNEL_STRIDED, ALL},
        {"gather", k_gather, EM_KERNEL_STRIDED, ALL},
        {"scatter_add", k_scatter_add, EM_KERNEL_STRIDED, ALL},
    };
    return em_register_kernels(reg, "cuda", table, sizeof table / sizeof table[0]);
}
