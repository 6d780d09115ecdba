/* backends/opencl/program.c - OpenCL programs: per-dtype sources, one build per device, the
 * kernel cache and the launch helper every kernel wrapper goes through.
 *
 * A program is a family's source (kernels/NAME.cl) preceded by a prelude generated here: the
 * type macros of the dtype it is built for (T_ST storage type, T_CT compute type, T_LD/T_SV to
 * convert between them, ...), and for copy those of the destination dtype (D_*). So the
 * source of each family is written once and "templated" by the preprocessor of the OpenCL
 * compiler, the way the CPU backend's macros stamp out typed loops. Programs are built at
 * their first use on a device and kept until shutdown, as are their kernel objects; a build
 * that fails is reported with its build log and never retried.
 *
 * Kernel objects are not thread safe (arguments are state), so setting arguments and
 * enqueueing happen under the device lock.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "opencl.h"

/* ---- errors --------------------------------------------------------------------------------- */

static const struct {
    cl_int code;
    const char *name;
} cl_errors[] = {
    {0, "CL_SUCCESS"},
    {-1, "CL_DEVICE_NOT_FOUND"},
    {-2, "CL_DEVICE_NOT_AVAILABLE"},
    {-3, "CL_COMPILER_NOT_AVAILABLE"},
    {-4, "CL_MEM_OBJECT_ALLOCATION_FAILURE"},
    {-5, "CL_OUT_OF_RESOURCES"},
    {-6, "CL_OUT_OF_HOST_MEMORY"},
    {-7, "CL_PROFILING_INFO_NOT_AVAILABLE"},
    {-8, "CL_MEM_COPY_OVERLAP"},
    {-9, "CL_IMAGE_FORMAT_MISMATCH"},
    {-10, "CL_IMAGE_FORMAT_NOT_SUPPORTED"},
    {-11, "CL_BUILD_PROGRAM_FAILURE"},
    {-12, "CL_MAP_FAILURE"},
    {-13, "CL_MISALIGNED_SUB_BUFFER_OFFSET"},
    {-14, "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST"},
    {-15, "CL_COMPILE_PROGRAM_FAILURE"},
    {-16, "CL_LINKER_NOT_AVAILABLE"},
    {-17, "CL_LINK_PROGRAM_FAILURE"},
    {-18, "CL_DEVICE_PARTITION_FAILED"},
    {-19, "CL_KERNEL_ARG_INFO_NOT_AVAILABLE"},
    {-30, "CL_INVALID_VALUE"},
    {-31, "CL_INVALID_DEVICE_TYPE"},
    {-32, "CL_INVALID_PLATFORM"},
    {-33, "CL_INVALID_DEVICE"},
    {-34, "CL_INVALID_CONTEXT"},
    {-35, "CL_INVALID_QUEUE_PROPERTIES"},
    {-36, "CL_INVALID_COMMAND_QUEUE"},
    {-37, "CL_INVALID_HOST_PTR"},
    {-38, "CL_INVALID_MEM_OBJECT"},
    {-39, "CL_INVALID_IMAGE_FORMAT_DESCRIPTOR"},
    {-40, "CL_INVALID_IMAGE_SIZE"},
    {-41, "CL_INVALID_SAMPLER"},
    {-42, "CL_INVALID_BINARY"},
    {-43, "CL_INVALID_BUILD_OPTIONS"},
    {-44, "CL_INVALID_PROGRAM"},
    {-45, "CL_INVALID_PROGRAM_EXECUTABLE"},
    {-46, "CL_INVALID_KERNEL_NAME"},
    {-47, "CL_INVALID_KERNEL_DEFINITION"},
    {-48, "CL_INVALID_KERNEL"},
    {-49, "CL_INVALID_ARG_INDEX"},
    {-50, "CL_INVALID_ARG_VALUE"},
    {-51, "CL_INVALID_ARG_SIZE"},
    {-52, "CL_INVALID_KERNEL_ARGS"},
    {-53, "CL_INVALID_WORK_DIMENSION"},
    {-54, "CL_INVALID_WORK_GROUP_SIZE"},
    {-55, "CL_INVALID_WORK_ITEM_SIZE"},
    {-56, "CL_INVALID_GLOBAL_OFFSET"},
    {-57, "CL_INVALID_EVENT_WAIT_LIST"},
    {-58, "CL_INVALID_EVENT"},
    {-59, "CL_INVALID_OPERATION"},
    {-60, "CL_INVALID_GL_OBJECT"},
    {-61, "CL_INVALID_BUFFER_SIZE"},
    {-62, "CL_INVALID_MIP_LEVEL"},
    {-63, "CL_INVALID_GLOBAL_WORK_SIZE"},
    {-64, "CL_INVALID_PROPERTY"},
    {-65, "CL_INVALID_IMAGE_DESCRIPTOR"},
    {-66, "CL_INVALID_COMPILER_OPTIONS"},
    {-67, "CL_INVALID_LINKER_OPTIONS"},
    {-68, "CL_INVALID_DEVICE_PARTITION_COUNT"},
    {-69, "CL_INVALID_PIPE_SIZE"},
    {-70, "CL_INVALID_DEVICE_QUEUE"},
    {-71, "CL_INVALID_SPEC_ID"},
    {-72, "CL_MAX_SIZE_RESTRICTION_EXCEEDED"},
    {-1001, "CL_PLATFORM_NOT_FOUND_KHR"},
};

const char *em_ocl__errstr(cl_int err)
{
    static EM_PLUGIN_THREAD_LOCAL char buf[32];
    for (size_t i = 0; i < sizeof cl_errors / sizeof cl_errors[0]; i++)
        if (cl_errors[i].code == err)
            return cl_errors[i].name;
    snprintf(buf, sizeof buf, "CL_ERROR(%d)", (int)err);
    return buf;
}

int em_ocl__fail(const char *what, const char *call, cl_int err)
{
    int status = EM_ERR_DEVICE;
    if (err == CL_MEM_OBJECT_ALLOCATION_FAILURE || err == CL_OUT_OF_HOST_MEMORY ||
        err == CL_OUT_OF_RESOURCES || err == CL_INVALID_BUFFER_SIZE)
        status = EM_ERR_NOMEM;
    /* say it in words too: callers and people look for "out of ... memory" */
    const char *words = err == CL_OUT_OF_HOST_MEMORY ? " (out of host memory)"
                        : status == EM_ERR_NOMEM     ? " (out of device memory)"
                                                     : "";
    return em_set_error(status, "opencl: %s: %s failed: %s%s", what, call, em_ocl__errstr(err),
                        words);
}

/* ---- the prelude: type macros per dtype ----------------------------------------------------- */

typedef struct strbuf {
    char *p;
    size_t len, cap;
    bool oom;
} strbuf;

static void sb_printf(strbuf *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sb_printf(strbuf *s, const char *fmt, ...)
{
    if (s->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = s->cap - s->len;
        int n = vsnprintf(s->p ? s->p + s->len : NULL, s->p ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            s->oom = true;
            return;
        }
        if (s->p && (size_t)n < room) {
            s->len += (size_t)n;
            return;
        }
        size_t cap = s->cap ? s->cap : 4096;
        while (cap - s->len <= (size_t)n)
            cap *= 2;
        char *q = realloc(s->p, cap);
        if (!q) {
            s->oom = true;
            return;
        }
        s->p = q;
        s->cap = cap;
    }
}

/* The macros of dtype dt under prefix P (T or D):
 *   P_ST  storage type          P_CT  compute type (f16/bf16 compute in float)
 *   P_LD(x) storage -> compute  P_SV(x) compute -> storage
 *   P_UT  unsigned type for wrapping integer arithmetic
 *   P_ISFLOAT / P_ISINT / P_ISBOOL / P_SIGNED, P_LOWEST (identity of max), P_ISNAN(x)
 *   P_FROM_F(v) store from the float intermediate (IMF), P_FROM_I(v) from a long, with the
 *   CPU backend's cast rules: float -> integer truncates, NaN and out-of-range give the
 *   minimum, u8 wraps through int64, -> bool is != 0. */
static void type_macros(strbuf *s, const char *P, em_dtype dt)
{
    const char *st = "float", *ct = "float", *ld = "(x)", *sv = "(x)", *ut = "uint";
    const char *lowest = "(-INFINITY)", *from_f = NULL;
    int isfloat = 0, isint = 0, isbool = 0, issigned = 0;
    switch (dt) {
    case EM_F32: isfloat = 1; break;
    case EM_F64: st = ct = "double"; isfloat = 1; break;
    case EM_F16:
        st = "ushort"; ld = "em_h2f(x)"; sv = "em_f2h(x)"; isfloat = 1;
        break;
    case EM_BF16:
        st = "ushort"; ld = "em_bf2f(x)"; sv = "em_f2bf(x)"; isfloat = 1;
        break;
    case EM_I64:
        st = ct = "long"; ut = "ulong"; lowest = "LONG_MIN"; from_f = "em_f2i64(v)";
        isint = issigned = 1;
        break;
    case EM_I32:
        st = ct = "int"; lowest = "INT_MIN"; from_f = "em_f2i32(v)"; isint = issigned = 1;
        break;
    case EM_U8:
        st = ct = "uchar"; lowest = "0"; from_f = "(uchar)em_f2i64(v)"; isint = 1;
        break;
    default: /* EM_BOOL */
        st = ct = "uchar"; ld = "((uchar)((x) != 0))"; sv = "((uchar)((x) != 0))";
        lowest = "0"; from_f = "((uchar)((v) != 0))"; isbool = 1;
        break;
    }
    sb_printf(s, "#define %s_ST %s\n#define %s_CT %s\n#define %s_UT %s\n", P, st, P, ct, P, ut);
    sb_printf(s, "#define %s_LD(x) %s\n#define %s_SV(x) %s\n", P, ld, P, sv);
    sb_printf(s, "#define %s_ISFLOAT %d\n#define %s_ISINT %d\n#define %s_ISBOOL %d\n", P,
              isfloat, P, isint, P, isbool);
    sb_printf(s, "#define %s_SIGNED %d\n#define %s_LOWEST %s\n", P, issigned, P, lowest);
    sb_printf(s, "#define %s_ISNAN(x) %s\n", P, isfloat ? "((x) != (x))" : "em_never(x)");
    if (isfloat) {
        sb_printf(s, "#define %s_FROM_F(v) %s_SV((%s_CT)(v))\n", P, P, P);
        sb_printf(s, "#define %s_FROM_I(v) %s_SV((%s_CT)(v))\n", P, P, P);
    } else {
        sb_printf(s, "#define %s_FROM_F(v) %s\n", P, from_f);
        sb_printf(s, "#define %s_FROM_I(v) %s\n", P,
                  isbool ? "((uchar)((v) != 0))" : dt == EM_I64 ? "((long)(v))"
                                                 : dt == EM_I32 ? "((int)(v))"
                                                                : "((uchar)(v))");
    }
}

/* The OpenCL C text of a family (kernels/NAME.cl); sum and amax share reduce.cl. */
static const char *family_source(em_ocl_family fam)
{
    static const char *const texts[EM_OCL_FAMILY_COUNT] = {
        em_ocl__cl_copy,   em_ocl__cl_random, em_ocl__cl_unary, em_ocl__cl_binary,
        em_ocl__cl_reduce, em_ocl__cl_reduce, em_ocl__cl_matmul, em_ocl__cl_index,
        em_ocl__cl_rows,   em_ocl__cl_optim};
    return fam < EM_OCL_FAMILY_COUNT ? texts[fam] : "";
}

static const char *family_name(em_ocl_family fam)
{
    static const char *const names[EM_OCL_FAMILY_COUNT] = {
        "copy", "random", "unary", "binary", "sum", "amax", "matmul", "index", "rows", "optim"};
    return fam < EM_OCL_FAMILY_COUNT ? names[fam] : "?";
}

/* The full text of a program: prelude, common helpers, the family's source. */
static char *program_text(const em_ocl_device *d, em_ocl_family fam, em_dtype dt,
                          em_dtype dt2)
{
    strbuf s = {0};
    sb_printf(&s, "/* ember opencl: %s for %s%s%s */\n", family_name(fam), em_dtype_name(dt),
              dt2 ? " -> " : "", dt2 ? em_dtype_name(dt2) : "");
    /* No contraction of a * b + c into fma: results stay those of the CPU backend (GCC under
     * -std=c11 does not contract either). Matmul is the exception: OpenBLAS uses FMA too. */
    sb_printf(&s, "#pragma OPENCL FP_CONTRACT %s\n", fam == EM_OCL_MATMUL ? "ON" : "OFF");
    if (d->fp64)
        sb_printf(&s, "#pragma OPENCL EXTENSION cl_khr_fp64 : enable\n"
                      "#define HAS_FP64 1\n#define IMF double\n#define IMF_C(x) x\n");
    else
        sb_printf(&s, "#define HAS_FP64 0\n#define IMF float\n#define IMF_C(x) x##f\n");
    type_macros(&s, "T", dt);
    if (fam == EM_OCL_SUM || fam == EM_OCL_AMAX)
        sb_printf(&s, "#define EM_RED_MAX %d\n", fam == EM_OCL_AMAX);
    if (dt2 != EM_DTYPE_UNSPEC) {
        type_macros(&s, "D", dt2);
        sb_printf(&s, "#define EM_SAME %d\n", dt == dt2);
    }
    sb_printf(&s, "%s%s", em_ocl__cl_common, family_source(fam));
    if (s.oom) {
        free(s.p);
        return NULL;
    }
    return s.p;
}

/* ---- building ------------------------------------------------------------------------------- */

static int build_failed(em_ocl_device *d, cl_program prog, em_ocl_family fam, em_dtype dt,
                        em_dtype dt2, cl_int err)
{
    char log[2048] = "";
    size_t n = 0;
    if (clGetProgramBuildInfo(prog, d->id, CL_PROGRAM_BUILD_LOG, sizeof log - 1, log, &n) !=
        CL_SUCCESS) {
        /* The log is longer than our buffer: fetch the whole thing and keep its start. */
        char *all = n ? malloc(n + 1) : NULL;
        if (all && clGetProgramBuildInfo(prog, d->id, CL_PROGRAM_BUILD_LOG, n, all, NULL) ==
                       CL_SUCCESS) {
            all[n] = '\0';
            snprintf(log, sizeof log, "%s", all);
        }
        free(all);
    }
    log[sizeof log - 1] = '\0';
    return em_set_error(EM_ERR_DEVICE,
                        "opencl: building the %s kernels for %s%s%s on '%s' failed (%s):\n%s",
                        family_name(fam), em_dtype_name(dt), dt2 ? " -> " : "",
                        dt2 ? em_dtype_name(dt2) : "", d->name, em_ocl__errstr(err), log);
}

static int build_program(em_ocl_device *d, em_ocl_program *p, em_ocl_family fam, em_dtype dt,
                         em_dtype dt2)
{
    char *text = program_text(d, fam, dt, dt2);
    if (!text)
        return em_set_error(EM_ERR_NOMEM, "opencl: out of host memory building a program");
    cl_int err;
    const char *srcs[1] = {text};
    cl_program prog = clCreateProgramWithSource(d->ctx, 1, srcs, NULL, &err);
    free(text);
    if (!prog)
        return em_ocl__fail("building kernels", "clCreateProgramWithSource", err);
    const char *opts = d->divsqrt ? "-cl-fp32-correctly-rounded-divide-sqrt" : "";
    err = clBuildProgram(prog, 1, &d->id, opts, NULL, NULL);
    if (err != CL_SUCCESS) {
        int rc = build_failed(d, prog, fam, dt, dt2, err);
        clReleaseProgram(prog);
        p->failed = true;
        return rc;
    }
    p->prog = prog;
    return EM_OK;
}

cl_kernel em_ocl__kernel(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2,
                         int slot, const char *name, size_t *wg)
{
    if (fam >= EM_OCL_FAMILY_COUNT || dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT ||
        dt2 < EM_DTYPE_UNSPEC || dt2 >= EM_DTYPE_COUNT || slot < 0 ||
        slot >= EM_OCL_MAX_KERNELS) {
        em_set_error(EM_ERR_INTERNAL, "opencl: bad kernel request %s/%d", name, slot);
        return NULL;
    }
    em_ocl_program *p = &d->programs[fam][dt][dt2];
    if (!p->kernels[slot]) {
        if (p->failed) {
            em_set_error(EM_ERR_DEVICE, "opencl: the %s kernels for %s failed to build earlier "
                         "on '%s'", family_name(fam), em_dtype_name(dt), d->name);
            return NULL;
        }
        if (!p->prog && build_program(d, p, fam, dt, dt2) < 0)
            return NULL;
        cl_int err;
        cl_kernel k = clCreateKernel(p->prog, name, &err);
        if (!k) {
            em_ocl__fail(name, "clCreateKernel", err);
            return NULL;
        }
        size_t w = 0;
        if (clGetKernelWorkGroupInfo(k, d->id, CL_KERNEL_WORK_GROUP_SIZE, sizeof w, &w, NULL) !=
                CL_SUCCESS || w == 0)
            w = d->max_wg;
        p->kernels[slot] = k;
        p->wg[slot] = w;
    }
    if (wg)
        *wg = p->wg[slot];
    return p->kernels[slot];
}

void em_ocl__programs_release(em_ocl_device *d)
{
    for (int f = 0; f < EM_OCL_FAMILY_COUNT; f++)
        for (int a = 0; a < EM_DTYPE_COUNT; a++)
            for (int b = 0; b < EM_DTYPE_COUNT; b++) {
                em_ocl_program *p = &d->programs[f][a][b];
                for (int k = 0; k < EM_OCL_MAX_KERNELS; k++)
                    if (p->kernels[k])
                        clReleaseKernel(p->kernels[k]);
                if (p->prog)
                    clReleaseProgram(p->prog);
                memset(p, 0, sizeof *p);
            }
}

/* ---- launching ------------------------------------------------------------------------------ */

static int launch_locked(em_ocl_device *d, cl_kernel k, const char *what, int nargs,
                         const em_ocl_arg *args, cl_uint dims, const size_t *global,
                         const size_t *local)
{
    for (int i = 0; i < nargs; i++) {
        cl_int err = clSetKernelArg(k, (cl_uint)i, args[i].size, args[i].ptr);
        if (err != CL_SUCCESS) {
            char call[48];
            snprintf(call, sizeof call, "clSetKernelArg(%d)", i);
            return em_ocl__fail(what, call, err);
        }
    }
    cl_int err = clEnqueueNDRangeKernel(d->queue, k, dims, NULL, global, local, 0, NULL, NULL);
    if (err != CL_SUCCESS)
        return em_ocl__fail(what, "clEnqueueNDRangeKernel", err);
    return EM_OK;
}

int em_ocl__launch(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2, int slot,
                   const char *name, const char *what, int nargs, const em_ocl_arg *args,
                   cl_uint dims, const size_t *global, const size_t *local)
{
    for (cl_uint i = 0; i < dims; i++)
        if (global[i] == 0)
            return EM_OK;
    pthread_mutex_lock(&d->lock);
    cl_kernel k = em_ocl__kernel(d, fam, dt, dt2, slot, name, NULL);
    int rc = k ? launch_locked(d, k, what, nargs, args, dims, global, local) : EM_ERR_DEVICE;
    pthread_mutex_unlock(&d->lock);
    if (!k)
        return em_last_status() < 0 ? em_last_status() : rc;
    return rc;
}

int em_ocl__launch_1d(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2, int slot,
                      const char *name, const char *what, int nargs, const em_ocl_arg *args,
                      int64_t n)
{
    if (n <= 0)
        return EM_OK;
    pthread_mutex_lock(&d->lock);
    size_t wg = 0;
    cl_kernel k = em_ocl__kernel(d, fam, dt, dt2, slot, name, &wg);
    int rc;
    if (!k) {
        rc = em_last_status() < 0 ? em_last_status() : EM_ERR_DEVICE;
    } else {
        /* 256 items per group, fewer for small launches (a 1-element op runs 1 item). */
        size_t local = wg < 256 ? wg : 256;
        while (local > 1 && local / 2 >= (size_t)n)
            local /= 2;
        size_t global = ((size_t)n + local - 1) / local * local;
        rc = launch_locked(d, k, what, nargs, args, 1, &global, &local);
    }
    pthread_mutex_unlock(&d->lock);
    return rc;
}

size_t em_ocl__pow2_wg(em_ocl_device *d, em_ocl_family fam, em_dtype dt, int slot,
                       const char *name, size_t want)
{
    pthread_mutex_lock(&d->lock);
    size_t wg = 0;
    cl_kernel k = em_ocl__kernel(d, fam, dt, EM_DTYPE_UNSPEC, slot, name, &wg);
    pthread_mutex_unlock(&d->lock);
    if (!k)
        return 0;
    size_t p = 1;
    while (p * 2 <= want && p * 2 <= wg)
        p *= 2;
    return p;
}
