/* core/dlpack.c - em_to_dlpack and em_from_dlpack: sharing tensors with other libraries.
 *
 * Export lends a tensor: one malloc'd block holds the DLManagedTensor and its shape and
 * strides arrays, and manager_ctx holds a reference on the tensor until the consumer calls the
 * deleter. Import wraps the producer's memory in external storage whose free hook calls the
 * producer's deleter, so the memory lives exactly as long as the last Ember view of it.
 *
 * Not here: the DLPack C header (Debian's libdlpack-dev) or Python's capsule protocol, which
 * the caller speaks (tests/interop/numpy_dlpack.py shows both directions through ctypes).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ember/dlpack.h"
#include "internal.h"

/* kDLBool came with DLPack 0.8 (1.0 dropped DLPACK_VERSION for DLPACK_MAJOR_VERSION); with an
 * older header the code is the same number. */
#if defined(DLPACK_MAJOR_VERSION) || DLPACK_VERSION >= 80
#define EM_DL_BOOL kDLBool
#else
#define EM_DL_BOOL 6
#endif

/* ---- dtypes ----------------------------------------------------------------------------- */

static const struct {
    em_dtype dt;
    uint8_t code, bits;
} dtype_map[] = {
    {EM_F32, kDLFloat, 32},  {EM_F64, kDLFloat, 64}, {EM_F16, kDLFloat, 16},
    {EM_BF16, kDLBfloat, 16}, {EM_I64, kDLInt, 64},  {EM_I32, kDLInt, 32},
    {EM_U8, kDLUInt, 8},     {EM_BOOL, EM_DL_BOOL, 8},
};

static const char *dl_code_name(unsigned code)
{
    static const char *const names[] = {"int", "uint", "float", "opaque handle", "bfloat",
                                        "complex", "bool"};
    return code < sizeof names / sizeof names[0] ? names[code] : "unknown";
}

static em_dtype dtype_from_dl(DLDataType t)
{
    for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
        if (dtype_map[i].code == t.code && dtype_map[i].bits == t.bits)
            return dtype_map[i].dt;
    return EM_DTYPE_UNSPEC;
}

static DLDataType dtype_to_dl(em_dtype dt)
{
    DLDataType t = {0, 0, 1};
    for (size_t i = 0; i < sizeof dtype_map / sizeof dtype_map[0]; i++)
        if (dtype_map[i].dt == dt) {
            t.code = dtype_map[i].code;
            t.bits = dtype_map[i].bits;
        }
    EM_ASSERT(t.bits != 0);   /* every Ember dtype has a DLPack code */
    return t;
}

/* ---- devices ---------------------------------------------------------------------------- */

static const char *dl_device_name(int type)
{
    switch (type) {
    case kDLCPU: return "kDLCPU";
    case kDLCUDA: return "kDLCUDA";
    case kDLCUDAHost: return "kDLCUDAHost";
    case kDLOpenCL: return "kDLOpenCL";
    case kDLVulkan: return "kDLVulkan";
    case kDLMetal: return "kDLMetal";
    case kDLVPI: return "kDLVPI";
    case kDLROCM: return "kDLROCM";
    case kDLROCMHost: return "kDLROCMHost";
    case kDLExtDev: return "kDLExtDev";
    case kDLCUDAManaged: return "kDLCUDAManaged";
    default: return "unknown";
    }
}

/* The DLPack device type of be's buffers: kDLCPU for host memory, the backend's declared
 * type for raw device pointers, 0 when its buffers cannot be shared. */
static int backend_dl_type(const em_backend *be)
{
    if (be->ops->host_accessible)
        return kDLCPU;
    size_t end = offsetof(em_backend_ops, dlpack_device_type) + sizeof(int32_t);
    return be->ops->struct_size >= end ? be->ops->dlpack_device_type : 0;
}

/* The backend whose buffers live on DLPack device type `type`, or NULL. Pinned host memory
 * (kDLCUDAHost, kDLROCMHost) is host memory: the CPU's. */
static em_backend *backend_for_dl(int type)
{
    if (type == kDLCUDAHost || type == kDLROCMHost)
        type = kDLCPU;
    for (int id = 1; id <= em__backend_count(); id++) {
        em_backend *be = em__backend(id);
        if (be && backend_dl_type(be) == type)
            return be;
    }
    return NULL;
}

/* ---- export ----------------------------------------------------------------------------- */

typedef struct dl_export {
    DLManagedTensor m;   /* first: the consumer's pointer is the block's */
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
} dl_export;

static void export_deleter(DLManagedTensor *m)
{
    if (!m)
        return;
    em_release(m->manager_ctx);
    free(m);
}

DLManagedTensor *em_to_dlpack(em_tensor *t)
{
    const char *fn = "em_to_dlpack";
    if (!t) {
        em__null_arg(fn, "t");
        return NULL;
    }
    if (em_requires_grad(t)) {
        em_set_error(EM_ERR_INVALID, "%s: the tensor requires grad; export em_detach(t) "
                                     "instead (autograd cannot see writes made through DLPack)",
                     fn);
        return NULL;
    }
    em_backend *be = t->storage->be;
    int type = backend_dl_type(be);
    if (!type) {
        em_set_error(EM_ERR_DEVICE, "%s: backend '%s' cannot share its buffers through DLPack "
                                    "(they are not pointers a consumer can address); copy "
                                    "the tensor to the CPU first (em_cpu)",
                     fn, be->ops->name);
        return NULL;
    }
    /* Work queued on the device must land before the consumer reads the memory. */
    em_device d = em__tensor_device(t);
    if (type != kDLCPU && em_synchronize(d) < 0)
        return NULL;
    dl_export *x = calloc(1, sizeof *x);
    if (!x) {
        em_set_error(EM_ERR_NOMEM, "%s: out of host memory", fn);
        return NULL;
    }
    memcpy(x->shape, t->shape, sizeof x->shape);
    memcpy(x->strides, t->strides, sizeof x->strides);
    DLTensor *dl = &x->m.dl_tensor;
    /* Buffers of a shareable backend are raw pointers, so handle + bytes is an address. */
    dl->data = (char *)t->storage->buf + t->offset * (int64_t)em_dtype_size(t->dtype);
    dl->device.device_type = (DLDeviceType)type;
    dl->device.device_id = type == kDLCPU ? 0 : d.index;
    dl->ndim = t->ndim;
    dl->dtype = dtype_to_dl(t->dtype);
    dl->shape = x->shape;
    dl->strides = x->strides;
    dl->byte_offset = 0;
    em_retain(t);
    x->m.manager_ctx = t;
    x->m.deleter = export_deleter;
    return &x->m;
}

/* ---- import ----------------------------------------------------------------------------- */

static void import_release(void *ctx)
{
    DLManagedTensor *m = ctx;
    if (m->deleter)
        m->deleter(m);
}

/* The bytes spanned from the first element to the last, or -1 on overflow. Strides are
 * non-negative here. */
static int64_t extent_bytes(const DLTensor *dl, const int64_t *strides, size_t elsize)
{
    int64_t last = 0;
    for (int i = 0; i < dl->ndim; i++) {
        if (dl->shape[i] == 0)
            return 0;
        int64_t span;
        if (__builtin_mul_overflow(dl->shape[i] - 1, strides[i], &span) ||
            __builtin_add_overflow(last, span, &last))
            return -1;
    }
    int64_t n;
    if (__builtin_add_overflow(last, 1, &n) || __builtin_mul_overflow(n, (int64_t)elsize, &n))
        return -1;
    return n;
}

static int check_layout(const char *fn, const DLTensor *dl, int64_t *strides, em_dtype *dt)
{
    if (dl->dtype.lanes != 1)
        return em_set_error(EM_ERR_INVALID, "%s: vector dtypes (lanes = %u) are not supported",
                            fn, (unsigned)dl->dtype.lanes);
    *dt = dtype_from_dl(dl->dtype);
    if (*dt == EM_DTYPE_UNSPEC)
        return em_set_error(EM_ERR_INVALID, "%s: DLPack dtype %s%u (code %u, %u bits) has no "
                                            "Ember dtype; Ember has float16/32/64, bfloat16, "
                                            "int32/64, uint8 and bool",
                            fn, dl_code_name(dl->dtype.code), (unsigned)dl->dtype.bits,
                            (unsigned)dl->dtype.code, (unsigned)dl->dtype.bits);
    if (!em__shape_check(fn, dl->ndim, dl->shape))
        return em_last_status();
    if (dl->strides)
        memcpy(strides, dl->strides, (size_t)dl->ndim * sizeof *strides);
    else
        em__contiguous_strides(dl->ndim, dl->shape, strides);
    for (int i = 0; i < dl->ndim; i++)
        if (strides[i] < 0)
            return em_set_error(EM_ERR_INVALID, "%s: stride %lld in dim %d is negative; Ember "
                                                "tensors have no negative strides (copy it "
                                                "first, e.g. numpy.ascontiguousarray)",
                                fn, (long long)strides[i], i);
    int64_t n = em__shape_numel(dl->ndim, dl->shape);
    if (n > 0 && !dl->data)
        return em_set_error(EM_ERR_INVALID, "%s: data is NULL for %lld elements", fn,
                            (long long)n);
    uintptr_t addr = (uintptr_t)dl->data + (uintptr_t)dl->byte_offset;
    if (n > 0 && addr % em_dtype_size(*dt))
        return em_set_error(EM_ERR_INVALID, "%s: data + byte_offset (%p + %llu) is not aligned "
                                            "to its %zu-byte elements (%s)",
                            fn, dl->data, (unsigned long long)dl->byte_offset,
                            em_dtype_size(*dt), em_dtype_name(*dt));
    return EM_OK;
}

static em_tensor *from_dlpack(DLManagedTensor *m)
{
    const char *fn = "em_from_dlpack";
    if (em__require_init(fn) < 0)
        return NULL;
    if (!m) {
        em_set_error(EM_ERR_INVALID, "%s: the DLManagedTensor is NULL", fn);
        return NULL;
    }
    const DLTensor *dl = &m->dl_tensor;
    int64_t strides[EM_MAX_DIMS];
    em_dtype dt = EM_DTYPE_UNSPEC;
    if (check_layout(fn, dl, strides, &dt) < 0)
        return NULL;
    int type = dl->device.device_type;
    em_backend *be = backend_for_dl(type);
    if (!be) {
        em_set_error(EM_ERR_DEVICE, "%s: no loaded backend can use DLPack device %s (type %d)%s",
                     fn, dl_device_name(type), type,
                     type == kDLOpenCL ? "; Ember's OpenCL buffers are not shared through "
                                         "DLPack"
                                       : "");
        return NULL;
    }
    em_device d = {be->id, backend_dl_type(be) == kDLCPU ? 0 : dl->device.device_id};
    if (em__device_check(fn, d) < 0)
        return NULL;
    int64_t nbytes = extent_bytes(dl, strides, em_dtype_size(dt));
    if (nbytes < 0) {
        em_set_error(EM_ERR_INVALID, "%s: shape and strides span more than 2^63 bytes", fn);
        return NULL;
    }
    void *base = nbytes ? (char *)dl->data + dl->byte_offset : dl->data;
    em_storage *s = em__storage_wrap(be, d.index, base, (size_t)nbytes, import_release, m);
    if (!s)
        return NULL;
    em_tensor *t = em__tensor_make(s, dt, dl->ndim, dl->shape, strides, 0);
    if (!t)
        s->free_fn = NULL;   /* failure: m stays the caller's */
    em__storage_release(s);
    return t;
}

em_tensor *em_from_dlpack(DLManagedTensor *m)
{
    EM_WRAP(from_dlpack(m));
}
