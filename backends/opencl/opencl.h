/* backends/opencl/opencl.h - what the OpenCL backend's files share: the device table, the
 * buffer pool, the program cache and launch helper, and each kernel family's registration.
 *
 * Private to backends/opencl/ (every symbol is hidden by -fvisibility=hidden); cross-file
 * helpers carry the em_ocl__ prefix. One OpenCL context and one in-order command queue per
 * device: every command on a device is ordered after the previous one, which is what lets
 * freed buffers go straight back to the pool and kernels read what earlier ones wrote without
 * events. Buffers are cl_mem handles addressed as (handle, element offset); no host pointer
 * is ever derived from a handle.
 */
#ifndef EMBER_BACKENDS_OPENCL_H
#define EMBER_BACKENDS_OPENCL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <CL/cl.h>

#include "ember/plugin.h"

#define EM_OCL_MAX_DEVICES 16
#define EM_OCL_POOL_SLOTS 256

/* ---- program families ----------------------------------------------------------------------- */

/* One OpenCL C source per family; a program is that source compiled for one dtype (copy:
 * one pair of dtypes; same-dtype copies, where and gather: one element size). */
typedef enum em_ocl_family {
    EM_OCL_COPY,       /* copy_c, copy_s: dtype pair (src, dst) */
    EM_OCL_RANDOM,     /* rand_uniform, rand_normal, rand_int: output dtype */
    EM_OCL_UNARY,      /* neg ... sigmoid, each _c and _s */
    EM_OCL_BINARY,     /* add ... ge, where: each _c and _s */
    EM_OCL_SUM,        /* red_wi, red_tile, red_wg, red_wgp, red_comb for sum */
    EM_OCL_AMAX,       /* the same for amax (one source, EM_RED_MAX 1), argmax_* */
    EM_OCL_MATMUL,     /* mm_tiled, mm_reg, mm_small */
    EM_OCL_INDEX,      /* gather_s, scatter_s */
    EM_OCL_ROWS,       /* sm_rows, sm_cols, ce_fwd, ce_comb, ce_wsum, ce_bwd (kernels/rows.cl) */
    EM_OCL_OPTIM,      /* sgd_step, adam_step, rmsprop_step (kernels/optim.cl) */
    EM_OCL_FAMILY_COUNT
} em_ocl_family;

/* Kernel slots per program: enough for the largest family (binary: 13 ops + where, x2). */
#define EM_OCL_MAX_KERNELS 32

typedef struct em_ocl_program {
    cl_program prog;               /* NULL until first use */
    bool failed;                   /* the build failed once: do not retry */
    cl_kernel kernels[EM_OCL_MAX_KERNELS];
    size_t wg[EM_OCL_MAX_KERNELS]; /* CL_KERNEL_WORK_GROUP_SIZE per kernel */
} em_ocl_program;

/* ---- the buffer pool (memory.c) ------------------------------------------------------------- */

typedef struct em_ocl_block {
    cl_mem mem;
    size_t size;
} em_ocl_block;

typedef struct em_ocl_pool {
    em_ocl_block cached[EM_OCL_POOL_SLOTS];
    int ncached;
    size_t cached_bytes;
    size_t requested;              /* live bytes as callers asked for them */
    size_t held;                   /* live bytes as allocated (rounded up) */
    size_t peak;                   /* max of requested since start or reset */
    size_t cache_max;              /* bytes the cache may keep */
} em_ocl_pool;

/* ---- devices -------------------------------------------------------------------------------- */

typedef struct em_ocl_device {
    cl_platform_id platform;
    cl_device_id id;
    cl_device_type type;
    char name[128];
    char version[64];              /* CL_DEVICE_VERSION, for messages */
    size_t global_mem, max_alloc, max_wg, local_mem;
    cl_uint compute_units;
    bool cpu_paths;                /* a CPU device: kernels shaped for CPUs (see plugin.c) */
    bool fp64;                     /* cl_khr_fp64: f64 kernels and double-precision helpers */
    bool divsqrt;                  /* -cl-fp32-correctly-rounded-divide-sqrt is honoured */
    bool amd_free_mem;             /* CL_DEVICE_GLOBAL_FREE_MEMORY_AMD can be queried */
    uint32_t dtypes;               /* EM_DTYPE_BIT mask of what the kernels claim */

    /* Created at the first use of the device (see em_ocl__ready), so that loading the plugin
     * costs no context when the program never touches OpenCL. */
    pthread_mutex_t lock;          /* context creation, the pool, programs, kernel args */
    bool ready;
    cl_int ready_err;              /* nonzero: creating the context failed with this */
    cl_context ctx;
    cl_command_queue queue;

    em_ocl_pool pool;
    em_ocl_program programs[EM_OCL_FAMILY_COUNT][EM_DTYPE_COUNT][EM_DTYPE_COUNT];
} em_ocl_device;

typedef struct em_ocl_state {
    int ndev;
    em_ocl_device dev[EM_OCL_MAX_DEVICES];
    char unavailable[256];         /* empty when usable */
} em_ocl_state;

extern em_ocl_state em_ocl__state;

/* The device for index `dev`, created on first use; NULL with the error set (naming `what`)
 * when the index is bad or the context cannot be created. */
em_ocl_device *em_ocl__device(int dev, const char *what);
/* The device of a kernel call, after em_kcall_check(c, "opencl", nin, nout, nattrs) and a check
 * that the device has every operand's dtype; NULL with the error set. */
em_ocl_device *em_ocl__kernel_device(const em_kcall *c, const char *op, int nin, int nout,
                                     int nattrs);

/* The name of an OpenCL status code ("CL_OUT_OF_RESOURCES"), or "CL_ERROR(<n>)". */
const char *em_ocl__errstr(cl_int err);
/* Sets the error "opencl: <what>: <call> failed: <CL_...>" and returns the matching status. */
int em_ocl__fail(const char *what, const char *call, cl_int err);

/* ---- memory (memory.c) ---------------------------------------------------------------------- */

void *em_ocl__alloc(void *ctx, int dev, size_t nbytes);
void em_ocl__free(void *ctx, int dev, void *buf, size_t nbytes);
int em_ocl__memory_stats(void *ctx, int dev, em_memory_stats *out);
int em_ocl__empty_cache(void *ctx, int dev);
int em_ocl__reset_peak(void *ctx, int dev);
int em_ocl__copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                           size_t nbytes);
int em_ocl__copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                         size_t nbytes);
int em_ocl__copy_device(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                        const void *src, size_t src_off, size_t nbytes);
/* Byte copy between buffers of one device; overlapping ranges of one buffer are handled as
 * memmove does. */
int em_ocl__copy_bytes(em_ocl_device *d, cl_mem dst, size_t dst_off, cl_mem src, size_t src_off,
                       size_t nbytes);
/* Releases every cached buffer of d (caller holds no lock). */
void em_ocl__pool_release(em_ocl_device *d);
/* A scratch buffer of nbytes for one call (partials of a reduction); give it back with
 * em_ocl__scratch_free. NULL with the error set. */
cl_mem em_ocl__scratch(em_ocl_device *d, size_t nbytes);
void em_ocl__scratch_free(em_ocl_device *d, cl_mem m, size_t nbytes);

/* ---- programs and launches (program.c, kernels/) -------------------------------------------- */

/* The OpenCL C text of each family and of the helpers every family shares (common.cl), as
 * NUL-terminated strings: kernels/NAME.cl embedded at build time by kernels/embed.py. */
extern const char em_ocl__cl_common[], em_ocl__cl_copy[], em_ocl__cl_random[],
    em_ocl__cl_unary[], em_ocl__cl_binary[], em_ocl__cl_reduce[], em_ocl__cl_matmul[],
    em_ocl__cl_index[], em_ocl__cl_rows[], em_ocl__cl_optim[];

/* The kernel `name` (slot `slot`) of family `fam` compiled for (dt, dt2) on device d,
 * building the program at first use. NULL with the error set (build log included) on
 * failure. Caller holds d->lock. */
cl_kernel em_ocl__kernel(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2,
                         int slot, const char *name, size_t *wg);
/* Releases every program and kernel of d. */
void em_ocl__programs_release(em_ocl_device *d);

/* One kernel argument: a pointer to the value and its size. */
typedef struct em_ocl_arg {
    size_t size;
    const void *ptr;
} em_ocl_arg;

#define EM_OCL_ARG(x) ((em_ocl_arg){sizeof(x), &(x)})
#define EM_OCL_LOCAL(bytes) ((em_ocl_arg){(bytes), NULL})

/* Looks up the kernel, sets its arguments and enqueues it with the given global and local
 * sizes (local may be NULL), all under d->lock. Returns EM_OK or a negative status with the
 * error set, naming `what`. */
int em_ocl__launch(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2,
                   int slot, const char *name, const char *what, int nargs,
                   const em_ocl_arg *args, cl_uint dims, const size_t *global,
                   const size_t *local);

/* A 1-D launch over n items: a grid-stride loop inside the kernel covers whatever the
 * global size leaves. */
int em_ocl__launch_1d(em_ocl_device *d, em_ocl_family fam, em_dtype dt, em_dtype dt2, int slot,
                      const char *name, const char *what, int nargs, const em_ocl_arg *args,
                      int64_t n);

/* The work-group size a reduction kernel uses: a power of two <= the kernel's limit. */
size_t em_ocl__pow2_wg(em_ocl_device *d, em_ocl_family fam, em_dtype dt, int slot,
                       const char *name, size_t want);

/* ---- shapes (kernels.c) --------------------------------------------------------------------- */

#define EM_OCL_MAX_OPS 4

/* Operands of one elementwise launch after dropping size-1 dims and merging dims that are
 * contiguous with each other in every operand; shapes and strides as the kernels take them
 * (cl_long8, innermost last). */
typedef struct em_ocl_iter {
    int ndim;
    int nops;
    int64_t numel;
    cl_long8 shape;
    cl_long8 strides[EM_OCL_MAX_OPS];
    bool contiguous;               /* ndim == 1 and every stride is 1 */
} em_ocl_iter;

/* Coalesces nops operands sharing `shape` (strides[k] per operand). */
void em_ocl__iter_init(em_ocl_iter *it, int ndim, const int64_t *shape, int nops,
                       const int64_t *const *strides);

/* A dtype of the same element size that gather and plain moves use (u8, f16, f32, f64 hold
 * 1, 2, 4, 8 bytes), so those programs are built once per size rather than per dtype. */
static inline em_dtype em_ocl__bits_dtype(em_dtype dt)
{
    switch (em_dtype_size(dt)) {
    case 1: return EM_U8;
    case 2: return EM_F16;
    case 4: return EM_I32;
    default: return EM_I64;
    }
}

/* ---- kernel families: each registers its kernels on backend "opencl" ------------------------ */

int em_ocl__register_elementwise(em_registry *reg, uint32_t dtypes);   /* kernels.c */
int em_ocl__register_reduce(em_registry *reg, uint32_t dtypes);        /* reduce.c */
int em_ocl__register_matmul(em_registry *reg, uint32_t dtypes);        /* matmul.c */
int em_ocl__register_rows(em_registry *reg, uint32_t dtypes);          /* rows.c */
int em_ocl__register_optim(em_registry *reg, uint32_t dtypes);         /* optim.c */

/* copy between two views of one device (used by scatter_add for out = a, and by matmul for
 * packing); both ktensors may be strided, dtypes may differ. */
int em_ocl__copy(em_ocl_device *d, const em_ktensor *dst, const em_ktensor *src);

#endif
