/* ember/plugin.h - what a plugin compiles against: the descriptor, backends, ops, kernels.
 *
 * A plugin is a shared object that links libember only and exports
 *
 *     const em_plugin *ember_plugin(void);
 *
 * returning a static descriptor. The loader checks struct_size and the ABI version (same major,
 * minor not newer than the core's), then calls init() with a registration handle. Everything
 * the plugin offers (backends, ops, kernels) is registered through that handle, so `ember info`
 * can say which plugin registered what.
 *
 * ABI rules: every table here starts with struct_size and only ever grows at the end; a NULL
 * function pointer means "not supported" and the core supplies the default or an error. Enum
 * values are append-only. An older plugin keeps working with a newer core of the same major.
 *
 * For plugin authors (docs/writing-plugins.md has the walk-through, examples/op-plugin a
 * complete out-of-tree op plugin):
 *   - Build against an installed Ember with `pkg-config --cflags --libs ember`; install into
 *     the `plugindir` variable of ember.pc, or put the folder on EMBER_PLUGIN_PATH. Export
 *     only `ember_plugin` (build with -fvisibility=hidden); link no other plugin.
 *   - Fill tables with designated initialisers and set struct_size = sizeof(the table) as you
 *     compiled it, so fields added later start out zero (= not supported). Never read a field
 *     of a table the core hands you beyond its struct_size.
 *   - Errors: return a negative em_status after em_set_error("op: what went wrong, with the
 *     shapes"); never abort or exit the host program. init() failing unloads the plugin and
 *     drops everything it registered; EMBER_STRICT=1 makes that fatal (for the plugin's CI).
 *   - Memory: free what you allocate through your own code. Tensors a function returns are
 *     new references; inside a composite or a backward (that is, inside an op) scopes do not
 *     track temporaries, so release every tensor you create there except the one returned.
 *   - Test it: `ember conformance --backend NAME` for a backend, and cases registered with
 *     em_register_conformance_case() for an op (see the end of this header).
 */
#ifndef EMBER_PLUGIN_H
#define EMBER_PLUGIN_H

#include "dist.h"
#include "module.h"
#include "numeric.h"
#include "runtime.h"
#include "spec.h"
#include "tensor.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The ABI version. A minor version only adds (docs/abi.md lists what each one added); a
 * plugin built for an older minor loads into a newer core, one built for a newer minor is
 * refused. */
#define EMBER_ABI_MAJOR 1
#define EMBER_ABI_MINOR 3
#define EMBER_PLUGIN_ENTRY "ember_plugin"

typedef struct em_registry em_registry;   /* opaque registration handle for one plugin */

/* ---- the descriptor ----------------------------------------------------- */

typedef struct em_plugin {
    size_t struct_size;        /* sizeof(em_plugin) as the plugin was compiled */
    uint32_t abi_major;        /* EMBER_ABI_MAJOR */
    uint32_t abi_minor;        /* EMBER_ABI_MINOR */
    const char *name;          /* short, unique: "cpu", "nn", "softplus" */
    const char *version;
    const char *description;
    /* Registers what the plugin offers. Returns EM_OK, or a negative status after
     * em_set_error(): the loader then reports the plugin as failed and drops whatever it
     * registered. */
    int (*init)(em_registry *reg);
    /* optional: called at em_shutdown(), in reverse load order, before dlclose. */
    void (*shutdown)(void);
} em_plugin;

typedef const em_plugin *(*em_plugin_entry_fn)(void);

#define EM_PLUGIN_DESCRIPTOR_INIT(name_, version_, desc_, init_, shutdown_)             \
    {sizeof(em_plugin), EMBER_ABI_MAJOR, EMBER_ABI_MINOR, name_, version_, desc_, init_,   \
     shutdown_}

/* ---- errors and services for plugins ------------------------------------ */

/* Sets this thread's error (printf format) and returns `status`, for `return em_set_error(..)`. */
EM_API int em_set_error(int status, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* One line to stderr, prefixed "ember: warning: ". */
EM_API void em_warn(const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 1, 2)))
#endif
    ;

/* ---- backends ----------------------------------------------------------- */

typedef struct em_device_info {
    size_t struct_size;
    char name[128];            /* "NVIDIA H100 80GB HBM3", "x86_64 CPU (16 threads)" */
    size_t total_memory;       /* bytes; 0 if unknown */
    size_t free_memory;        /* bytes; 0 if unknown */
    int threads;               /* compute threads / SMs; 0 if unknown */
    int compute_major, compute_minor;   /* CUDA compute capability, else 0 */
    /* since 1.3 (a core only reads it when struct_size covers it): the compute kernels in use,
     * one line, e.g. the CPU's "GEMM avx512: f32 14x32 KC 192 ..."; "" if nothing to say */
    char kernels[192];
} em_device_info;

/* memory_stats gets this table zeroed, with struct_size set by the core to the size it knows
 * (since 1.3; a plugin built for 1.0 to 1.2 is handed the old layout, which starts at
 * `allocated`). Fill the fields by name; never write past struct_size. */
typedef struct em_memory_stats {
    size_t struct_size;        /* since 1.3: sizeof(em_memory_stats) as the core knows it */
    size_t allocated;          /* bytes in live buffers */
    size_t reserved;           /* bytes held from the system, cache included */
    size_t peak;               /* max of allocated since start or reset */
} em_memory_stats;

/* Buffers are opaque handles (a host pointer on the CPU, a device pointer on CUDA, a cl_mem
 * on OpenCL); element data is addressed as handle + offset, never by pointer arithmetic on a
 * handle. `dev` is the device index on this backend. A backend owns its allocator: free gets
 * back exactly the (buf, nbytes) that alloc returned, and memory_stats reports what the core
 * shows as em_memory_allocated/reserved/max_memory_allocated. A backend registered on a
 * machine where it cannot run (no driver, no device) answers unavailable_reason; the core then
 * refuses to put tensors on it and `ember conformance` skips it with that reason. Every
 * primitive in docs/primitives.md needs a kernel (em_register_kernel) for each dtype the
 * backend claims; composites come for free. */
typedef struct em_backend_ops {
    size_t struct_size;
    const char *name;          /* "cpu", "cuda", "opencl": the device string prefix */
    bool host_accessible;      /* buffers are host pointers (the CPU backend) */

    int (*device_count)(void *ctx);
    /* The core hands `out` zeroed, struct_size set, and never smaller than the struct the
     * plugin was compiled with (a plugin of a newer minor is refused): fill its fields. */
    int (*device_info)(void *ctx, int dev, em_device_info *out);
    /* optional: why the backend cannot be used (no driver, no device); NULL when usable. */
    const char *(*unavailable_reason)(void *ctx);

    /* Returns a buffer of at least nbytes (nbytes may be 0), or NULL after em_set_error(). */
    void *(*alloc)(void *ctx, int dev, size_t nbytes);
    void (*free)(void *ctx, int dev, void *buf, size_t nbytes);
    int (*memory_stats)(void *ctx, int dev, em_memory_stats *out);
    int (*empty_cache)(void *ctx, int dev);                      /* optional */
    int (*reset_peak)(void *ctx, int dev);                       /* optional */

    /* Byte copies between host memory and buffers. Return EM_OK or a negative status. */
    int (*copy_from_host)(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                          size_t nbytes);
    int (*copy_to_host)(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                        size_t nbytes);
    /* optional: buffer to buffer on this backend (dev_dst may differ from dev_src). */
    int (*copy_device)(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                       const void *src, size_t src_off, size_t nbytes);
    int (*synchronize)(void *ctx, int dev);                      /* optional */
    void (*shutdown)(void *ctx);                                 /* optional */

    /* optional (ABI 1.2): the DLPack device type (DLDeviceType: kDLCUDA = 2, kDLROCM = 10,
     * ...) when a buffer handle is a raw pointer on that device, so that handle + byte offset
     * addresses an element and em_to_dlpack/em_from_dlpack can share buffers without a copy.
     * 0: buffers cannot be shared (an OpenCL cl_mem is no pointer a DLPack consumer can
     * address). host_accessible backends are DLPack's kDLCPU whatever this says. */
    int32_t dlpack_device_type;
} em_backend_ops;

/* Registers a backend; ops->name becomes a device prefix. `ops` and `ctx` must outlive the
 * plugin (static storage is the norm). Returns the backend id (> 0) or a negative status. */
EM_API int em_register_backend(em_registry *reg, const em_backend_ops *ops, void *ctx);

/* ---- ops ---------------------------------------------------------------- */

/* An attribute value. Which member is meaningful follows the op's declaration. */
struct em_attr {
    int64_t i;                  /* EM_ATTR_INT, EM_ATTR_BOOL (0/1), EM_ATTR_DTYPE */
    double f;                   /* EM_ATTR_FLOAT */
    int n;                      /* EM_ATTR_INTS: count */
    int64_t ints[EM_MAX_DIMS];  /* EM_ATTR_INTS */
};
typedef struct em_attr em_attr;

typedef enum em_attr_kind {
    EM_ATTR_INT = 1,
    EM_ATTR_FLOAT,
    EM_ATTR_BOOL,
    EM_ATTR_INTS,
    EM_ATTR_DTYPE,
    EM_ATTR_KIND_COUNT
} em_attr_kind;

typedef struct em_attr_decl {
    const char *name;
    em_attr_kind kind;
} em_attr_decl;

/* Output shape and dtype computed by an op's infer function. */
typedef struct em_out_desc {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    em_dtype dtype;
} em_out_desc;

/* What the core does for an op before its kernel runs (flags of em_op_def). */
enum {
    /* inputs broadcast against each other; kernels get views of the output's shape
     * (stride 0 on broadcast dims) and must declare EM_KERNEL_STRIDED to avoid copies. */
    EM_OP_BROADCAST = 1u << 0,
    /* inputs are cast to their PyTorch result type before the kernel runs */
    EM_OP_PROMOTE = 1u << 1,
    /* output dtype is bool (comparisons) */
    EM_OP_OUT_BOOL = 1u << 2,
    /* integer and bool inputs are promoted to the default float dtype (exp, div, sigmoid) */
    EM_OP_INT_TO_FLOAT = 1u << 3,
    /* output has the shape and dtype of input 0 (after the steps above): no infer needed */
    EM_OP_SAME_AS_INPUT = 1u << 4,
    /* the composite computes float16/bfloat16 in float32: the core widens such inputs before
     * calling it and rounds its result to input 0's dtype once (PyTorch's opmath) */
    EM_OP_COMPOSITE_F32 = 1u << 5,
};

/* Computes the output's shape and dtype from the inputs (already promoted and broadcast as the
 * flags say; out arrives filled as for EM_OP_SAME_AS_INPUT) and the attributes. Returns EM_OK
 * or a negative status after em_set_error() naming the shapes. */
typedef int (*em_infer_fn)(int nin, em_tensor *const *in, const em_attr *attrs,
                           em_out_desc *out);
/* An op's backward, written in ops (so it runs on every backend; grad mode is off while it
 * runs). It gets the op's inputs and output as they were in the forward pass (the core saves
 * them and refuses to run if they were modified in place since), the attributes and the
 * gradient of the output, and stores a new tensor in grad_inputs[i] for each differentiable
 * input (NULL for the others). Gradients may have a broadcast shape or another float dtype:
 * the core sums them to the input's shape and casts them. Returns EM_OK or a negative status
 * after em_set_error(). */
typedef int (*em_backward_fn)(int nin, em_tensor *const *inputs, em_tensor *output,
                              const em_attr *attrs, em_tensor *grad, em_tensor **grad_inputs);
/* A composite: the op written in other ops, used where a backend has no kernel for the
 * compute dtype. It gets the inputs as the caller passed them (not promoted: promote them
 * yourself where needed) and returns a new tensor, or NULL with the error set. Release every
 * temporary: scopes do not track tensors created inside an op. With a backward, the core runs
 * the composite with grad mode off and records one node; without one, the ops inside are
 * recorded, so a composite-only op is differentiable for free. */
typedef em_tensor *(*em_composite_fn)(int nin, em_tensor *const *in, const em_attr *attrs);

/* Limits the core enforces (since 1.3 named here; the values are those of 1.0):
 * em_register_op refuses an op with more inputs or attributes, em_register_backend a backend
 * past the last slot, each with an error that names the limit. */
#define EM_MAX_OP_INPUTS 8    /* em_op_def.nin, em_conformance_case.nin */
#define EM_MAX_OP_ATTRS 16    /* em_op_def.nattrs, em_conformance_case.nattrs */
#define EM_MAX_BACKENDS 15    /* backends registered at one time, the CPU included */

typedef struct em_op_def {
    size_t struct_size;
    const char *name;           /* unique, interned at registration */
    int nin;                    /* number of tensor inputs, at most EM_MAX_OP_INPUTS */
    int nattrs;                 /* at most EM_MAX_OP_ATTRS */
    const em_attr_decl *attrs;  /* nattrs declarations, in positional order */
    unsigned flags;             /* EM_OP_* */
    em_infer_fn infer;          /* may be NULL with EM_OP_SAME_AS_INPUT */
    em_composite_fn composite;  /* optional */
    /* optional: without it, using the op on a tensor that requires grad records a node whose
     * backward fails with "op 'x' has no backward formula". */
    em_backward_fn backward;
    const char *backward_name;  /* optional: the node's name; default "<Name>Backward0" with
                                   the op name's first letter upper-cased */
    /* optional (ABI 1.3): a mask of inputs (bit i for input i) that the op updates in place
     * besides its output, as an optimizer update writes its state. A kernel writes them
     * through their buffers; the dispatcher hands them over uncopied (it runs the composite
     * instead where one is not contiguous or not of the compute dtype), bumps their version
     * counters after the kernel, and refuses to record such an op under autograd. An input
     * that is the same tensor as input 0 (an unused state slot) is left to the output. A
     * kernel of such an op makes every check before it writes anything: em_step may run it
     * after the optimizer's step returned, when a failure can no longer be undone. */
    unsigned updates;
} em_op_def;

/* Registers an op (the definition is copied). Returns its interned id (>= 0). */
EM_API int em_register_op(em_registry *reg, const em_op_def *def);
/* The interned id of an op name, or -1 (with the error set) if none is registered. */
EM_API int em_op_lookup(const char *name);
EM_API const char *em_op_name(int op);

/* ---- kernels ------------------------------------------------------------- */

/* One tensor as a kernel sees it. Element k of a contiguous tensor lives at element
 * offset + k of buf. Strides are in elements; contiguous unless the kernel was registered
 * with EM_KERNEL_STRIDED (outputs are always freshly allocated and contiguous, except for the
 * copy op, whose output may be strided). */
typedef struct em_ktensor {
    void *buf;
    int64_t offset;
    em_dtype dtype;
    int ndim;
    int64_t numel;
    const int64_t *shape;
    const int64_t *strides;
} em_ktensor;

typedef struct em_kcall {
    size_t struct_size;
    int op;                     /* interned op id */
    int device;                 /* device index on the kernel's backend */
    int nin, nout;
    const em_ktensor *in;
    const em_ktensor *out;
    int nattrs;
    const em_attr *attrs;
} em_kcall;

/* Computes call->out from call->in. The core has already checked devices, shapes and dtypes
 * (input 0's dtype is one the kernel registered for), allocated the output, and never calls a
 * kernel for an output with no elements. Pointers in `call` are valid during the call only.
 * Kernels may run on any thread that uses Ember: keep no unsynchronised state in
 * backend_ctx. Returns EM_OK or a negative status after em_set_error() (EM_ERR_UNSUPPORTED
 * for a case the kernel does not handle: callers and the conformance suite then report "no
 * kernel" instead of a wrong result). */
typedef int (*em_kernel_fn)(void *backend_ctx, const em_kcall *call);

enum {
    EM_KERNEL_STRIDED = 1u << 0,   /* accepts strided (and broadcast, stride-0) inputs */
};

#define EM_DTYPE_BIT(dt) (1u << (unsigned)(dt))
#define EM_DTYPES_FLOAT                                                                  \
    (EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64) | EM_DTYPE_BIT(EM_F16) | EM_DTYPE_BIT(EM_BF16))
#define EM_DTYPES_INT                                                                    \
    (EM_DTYPE_BIT(EM_I64) | EM_DTYPE_BIT(EM_I32) | EM_DTYPE_BIT(EM_U8))
#define EM_DTYPES_ALL (EM_DTYPES_FLOAT | EM_DTYPES_INT | EM_DTYPE_BIT(EM_BOOL))

/* A C double as an op's scalar argument (em_mul_scalar(t, s) and the like) becomes in a
 * float32 or float64 tensor: whole numbers convert through int64 (so -0.0 becomes +0), others
 * round directly. For kernels that fuse scalar ops and must round as those ops do. */
static inline bool em_scalar_is_whole(double s)
{
    return s > -9.2e18 && s < 9.2e18 && s == (double)(int64_t)s;
}
static inline float em_scalar_f32(double s)
{
    return em_scalar_is_whole(s) ? (float)(int64_t)s : (float)s;
}
static inline double em_scalar_f64(double s)
{
    return em_scalar_is_whole(s) ? (double)(int64_t)s : s;
}

/* Registers fn as the kernel of `op` on `backend` (both by name). The op must be registered
 * already; the backend may come from another plugin, loaded before or after this one: a kernel
 * for a backend that is not registered yet is kept and attached when that backend's plugin
 * has finished its init (and is never used if no plugin provides the backend). `dtypes` is a
 * mask of EM_DTYPE_BIT()s of the compute dtype (the dtype of input 0 after promotion) the
 * kernel handles. A later registration for the same op and backend replaces an earlier one
 * (fused overrides; a kernel attached late replaces the backend plugin's own). */
EM_API int em_register_kernel(em_registry *reg, const char *backend, const char *op,
                              em_kernel_fn fn, unsigned flags, uint32_t dtypes);

/* ---- module types (layers and losses) ------------------------------------------------------- */


/* A module type. The core allocates the module with state_size zeroed bytes of private state
 * (em_module_private), binds the spec's arguments against `params`, calls init, and frees the
 * state after destroy. Parameters, buffers and children are registered with the functions
 * below and owned by the core from then on. */
typedef struct em_module_ops {
    size_t struct_size;
    const char *name;                  /* "Linear": the spec name */
    int nparams;
    const em_param_decl *params;
    size_t state_size;
    int ninputs;                       /* 1 for layers, 2 for losses (output, target); at
                                          most EM_MAX_OP_INPUTS */
    /* Creates parameters, buffers and children from the bound arguments. */
    int (*init)(em_module *m, const em_args *args);
    /* Returns a new tensor (or NULL after em_set_error). Written in ops: autograd records it. */
    em_tensor *(*forward)(em_module *m, int nin, em_tensor *const *in);
    void (*destroy)(em_module *m);     /* optional: release what the state holds */
    /* optional (read only when struct_size covers it): PyTorch's extra_repr, the text inside
     * the parentheses of print(model)
     * ("in_features=3, out_features=64, bias=True"), written into buf (always NUL-terminated).
     * Without it a leaf prints as its spec ("Linear(3, 64)"). */
    void (*extra_repr)(const em_module *m, char *buf, size_t size);
} em_module_ops;

EM_API int em_register_module(em_registry *reg, const em_module_ops *ops);

/* For module implementations. Names are local ("weight"); the core prefixes children's names
 * ("0.weight"). add_parameter makes t a leaf that requires grad (floating dtypes) and takes a
 * reference; add_buffer takes a reference; both return EM_OK or a negative status. */
EM_API void *em_module_private(em_module *m);   /* the state_size bytes; NULL for NULL */
/* Deprecated since 1.3, removed in 1.4: the old name of em_module_private, which read like the
 * state_dict functions of module.h (em_module_state_tensor and friends). */
EM_API void *em_module_state(em_module *m)
#ifdef __GNUC__
    __attribute__((deprecated("use em_module_private")))
#endif
    ;
EM_API const em_args *em_module_args(const em_module *m);
EM_API int em_module_add_parameter(em_module *m, const char *name, em_tensor *t);
EM_API int em_module_add_buffer(em_module *m, const char *name, em_tensor *t);
EM_API em_tensor *em_module_parameter(const em_module *m, const char *name);   /* borrowed */
EM_API em_tensor *em_module_buffer(const em_module *m, const char *name);      /* borrowed */
/* Builds a child from a spec and adds it under `name` ("0", "1" in a Sequential). Returns the
 * child (borrowed) or NULL. */
EM_API em_module *em_module_add_child(em_module *m, const char *name, const em_spec *spec);
EM_API int em_module_child_count(const em_module *m);
EM_API em_module *em_module_child(const em_module *m, int i);                  /* borrowed */
EM_API const char *em_module_child_name(const em_module *m, int i);            /* borrowed */
/* since 1.3: a container that computes a child's output itself instead of through em_forward
 * (Sequential fusing Linear and ReLU into one op) reports it as that child's output, so
 * em_module_summary still lists the child. No-op outside a summary. */
EM_API void em_module_record_output(em_module *child, em_tensor *y);

/* ---- optimizer and scheduler types ----------------------------------------------------------- */

typedef struct em_optimizer_ops {
    size_t struct_size;
    const char *name;                  /* "SGD" */
    int nparams;                       /* must declare a float "lr" */
    const em_param_decl *params;
    size_t state_size;
    int (*init)(em_optimizer *o, const em_args *args);
    /* One update of every parameter with a grad; the core runs it with grad mode off and
     * makes it all or nothing. Change tensors through ops only (the core may hold back the
     * update ops, em_sgd_step_ and the like, to the end of the step, and runs them before any
     * other op of the step, so that every op sees what was asked before it). */
    int (*step)(em_optimizer *o);
    void (*destroy)(em_optimizer *o);  /* optional */
} em_optimizer_ops;

EM_API int em_register_optimizer(em_registry *reg, const em_optimizer_ops *ops);

EM_API void *em_optimizer_state(em_optimizer *o);
EM_API const em_args *em_optimizer_args(const em_optimizer *o);
EM_API int em_optimizer_param_count(const em_optimizer *o);
EM_API em_tensor *em_optimizer_param(const em_optimizer *o, int i);            /* borrowed */
/* Per-parameter state tensors ("momentum_buffer", "exp_avg"): saved in checkpoints and moved
 * with the module by em_module_to. get returns NULL when unset; set takes a reference. */
EM_API em_tensor *em_optimizer_slot(const em_optimizer *o, int i, const char *slot);
EM_API int em_optimizer_set_slot(em_optimizer *o, int i, const char *slot, em_tensor *t);
/* The optimizer's step counter (incremented by the core after each successful step). */
EM_API int64_t em_optimizer_steps(const em_optimizer *o);

typedef struct em_scheduler_ops {
    size_t struct_size;
    const char *name;                  /* "StepLR" */
    int nparams;
    const em_param_decl *params;
    /* The learning rate for `epoch` (0 = at construction) given the optimizer's initial lr,
     * in closed form, as the torch.optim.lr_scheduler formulas define it. */
    double (*lr_at)(const em_args *args, double base_lr, int epoch);
} em_scheduler_ops;

EM_API int em_register_scheduler(em_registry *reg, const em_scheduler_ops *ops);

/* ---- conformance cases for a plugin's ops ---------------------------------------------------- */

/* `ember conformance --backend NAME` runs a table of cases for the core's ops on one backend.
 * An op plugin adds cases for its own ops by registering them during init; the runner then
 * checks each one, for every dtype in `dtypes` the backend supports, with contiguous and
 * strided inputs:
 *   - forward values against a float64 reference: `reference` when given (elementwise ops),
 *     else the same op run on the CPU backend in float64 from the same (rounded) inputs;
 *   - with EM_CONF_DIFFERENTIABLE, gradients (a vector-Jacobian product through em_backward)
 *     against the CPU backend's in float64, and em_gradcheck (central differences) in float64
 *     where the backend runs the op in float64.
 * Tolerances default to torch.testing.assert_close's for the dtype. Cases are copied at
 * registration; nothing here needs to outlive init. */

#define EM_CONF_MAX_INPUTS EM_MAX_OP_INPUTS

typedef struct em_conf_input {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    em_dtype dtype;             /* 0: the dtype under test; else fixed (an int64 index...) */
    double low, high;           /* values drawn uniformly from [low, high); integer dtypes
                                   draw whole numbers; low == high == 0 means [-2, 2) */
} em_conf_input;

enum {
    EM_CONF_DIFFERENTIABLE = 1u << 0,   /* check gradients of inputs of the dtype under test */
};

/* The expected value of one output element from the matching elements of the inputs
 * (broadcast as the op broadcasts them), in float64. For elementwise ops only. */
typedef double (*em_conf_reference_fn)(int nin, const double *x, const em_attr *attrs);

typedef struct em_conformance_case {
    size_t struct_size;         /* sizeof(em_conformance_case) */
    const char *op;             /* a registered op, called through em_op_call */
    const char *label;          /* optional: "broadcast", "large" (shown with failures) */
    int nin;                    /* the op's input count, at most EM_CONF_MAX_INPUTS */
    em_conf_input in[EM_CONF_MAX_INPUTS];
    int nattrs;                 /* the op's attribute count, values in declared order */
    const em_attr *attrs;
    uint32_t dtypes;            /* EM_DTYPE_BIT mask of dtypes to test; 0: EM_DTYPES_FLOAT */
    unsigned flags;             /* EM_CONF_* */
    double rtol, atol;          /* 0: torch.testing.assert_close's default for the dtype */
    em_conf_reference_fn reference;   /* optional (see above) */
} em_conformance_case;

/* Registers a case (copied). Call it from a plugin's init, after the op. Returns EM_OK or a
 * negative status (bad shapes, too many inputs). The cases of a plugin whose init fails are
 * dropped with its ops. */
EM_API int em_register_conformance_case(em_registry *reg, const em_conformance_case *c);
/* For the runner: the registered cases, in registration order. `plugin` (may be NULL)
 * receives the name of the plugin that registered case i. Borrowed until em_shutdown(). */
EM_API int em_conformance_case_count(void);
EM_API const em_conformance_case *em_conformance_case_get(int i, const char **plugin);

/* ---- dataset types ----------------------------------------------------------------------------- */

typedef struct em_dataset em_dataset;   /* ember/data.h */

/* A dataset type: em_dataset_new("CSV(path=\"d.csv\")") finds it by name, binds the spec's
 * arguments against `params` (the args are valid during create only) and calls create, which
 * returns a new dataset or NULL after em_set_error() (name the file, line and column of bad
 * input). Build it with em_dataset_from_tensors from CPU tensors the plugin filled: the core
 * then owns the data in its in-memory store, batches are collated with memcpy, and nothing
 * points back into the plugin. The core names the dataset by its canonical spec. */
typedef struct em_dataset_type_ops {
    size_t struct_size;
    const char *name;                  /* "CSV": the spec name */
    int nparams;
    const em_param_decl *params;
    em_dataset *(*create)(const em_args *args);
} em_dataset_type_ops;

EM_API int em_register_dataset(em_registry *reg, const em_dataset_type_ops *ops);

/* ---- thread-local storage in a plugin ----------------------------------- */

/* A plugin is dlopen'd, so a plain _Thread_local in it is dynamic TLS: a block glibc allocates
 * per thread at first use, reached through __tls_get_addr on every access. Sanitizer runtimes
 * guess where such blocks start from glibc internals, and the guess in GCC 12's and LLVM 14's
 * LeakSanitizer can be wrong, which crashes its tracer at exit in any process that still has a
 * thread that touched one (google/sanitizers#1322). EM_PLUGIN_THREAD_LOCAL puts the variable in
 * the static TLS block instead (the initial-exec model: one instruction per access, no
 * allocation). glibc reserves a few hundred bytes of static TLS for dlopen'd objects, so keep
 * such variables small: a flag, a pointer, a short buffer. tests/plugins_tls.sh checks that no
 * plugin built here uses dynamic TLS. */
#if defined(__GNUC__) || defined(__clang__)
#define EM_PLUGIN_THREAD_LOCAL _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define EM_PLUGIN_THREAD_LOCAL _Thread_local
#endif

/* ---- communicators (ABI 1.3) ----------------------------------------------------------------- */

/* A communicator runs collectives between the processes of one job (ember/dist.h). The core
 * starts at most one, chosen by `[runtime] dist` / EMBER_DIST or by the launcher's environment,
 * and hands it contiguous buffers of `count` elements of `dtype`: host memory when host_only
 * (the core stages device tensors through the host), else buffers on the communicator's own
 * device when it names one (`device` below; the core stages other tensors there), or on
 * whatever device a tensor is on. Every collective is started asynchronously: it stores a request in *req (its
 * own allocation, finished by wait) and returns EM_OK, or a negative status after
 * em_set_error(). Sums of bool are logical or; EM_REDUCE_AVG never reaches a communicator (the
 * core sums and divides). Buffers stay valid until wait returns. */
typedef struct em_comm_buf {
    void *data;                 /* host pointer, or backend buffer handle + byte offset */
    size_t count;               /* elements */
    em_dtype dtype;
    em_device device;
} em_comm_buf;

typedef struct em_comm_ops {
    size_t struct_size;
    const char *name;           /* "mpi", "nccl": what [runtime] dist names */
    bool host_only;             /* buffers must be host memory */
    /* optional: why it cannot run here (no launcher, no device); NULL when usable. */
    const char *(*unavailable_reason)(void *ctx);
    /* Joins the job; fills rank, size and local rank. Called once, before any collective. */
    int (*start)(void *ctx, int *rank, int *size, int *local_rank);
    int (*all_reduce)(void *ctx, em_comm_buf *buf, em_reduce_op op, void **req);
    int (*broadcast)(void *ctx, em_comm_buf *buf, int root, void **req);
    /* recv holds size * send->count elements, rank i's at i * send->count. */
    int (*all_gather)(void *ctx, const em_comm_buf *send, em_comm_buf *recv, void **req);
    /* send holds size * recv->count elements; recv gets this rank's slice of the reduction. */
    int (*reduce_scatter)(void *ctx, const em_comm_buf *send, em_comm_buf *recv,
                          em_reduce_op op, void **req);
    int (*barrier)(void *ctx, void **req);
    /* Finishes and frees req. Gives up after timeout_s seconds: then reports the collective
     * `what` and this rank, and ends the job (a lost rank cannot be recovered). */
    int (*wait)(void *ctx, void *req, double timeout_s, const char *what);
    /* Ends every process of the job with exit status code. Must not return. */
    void (*abort)(void *ctx, int code, const char *msg);
    /* optional: lets outstanding requests progress (called from autograd hooks). */
    void (*progress)(void *ctx);
    /* optional: leaves the job (MPI_Finalize); called at em_shutdown if started. */
    void (*finish)(void *ctx);
    /* optional: the library's own blocking all-reduce (sum) on a host buffer, called `iters`
     * times back to back; *seconds receives the time per call. The baseline `ember bench
     * --dist` compares Ember's collectives with (MPI_Allreduce on the same buffer). */
    int (*bench_all_reduce)(void *ctx, void *buf, size_t count, em_dtype dtype, int iters,
                            double *seconds);
    /* optional, for a communicator that is not host_only: the one device its buffers must be
     * on (NCCL: the GPU of this rank), asked once after start. The core then stages any other
     * tensor there, host tensors included (a loss summed on the CPU, a DDP bucket), and copies
     * results back. NULL: every buffer is handed on the device it is on. */
    int (*device)(void *ctx, em_device *dev);
} em_comm_ops;

/* Registers a communicator. `ops` and `ctx` must outlive the plugin. Returns EM_OK or a
 * negative status (incomplete table, duplicate name). */
EM_API int em_register_communicator(em_registry *reg, const em_comm_ops *ops, void *ctx);

/* ---- helpers for kernels ------------------------------------------------- */

/* Decodes a contiguous element index into a strided element offset. */
static inline int64_t em_kt_offset(const em_ktensor *t, int64_t linear)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        int64_t i = linear % t->shape[d];
        linear /= t->shape[d];
        off += i * t->strides[d];
    }
    return off;
}

/* Since 1.3: the rows of a contiguous tensor along `dim`, for kernels of row ops (softmax):
 * a row has *len elements spaced *inner apart, and there are *rows of them (0 when t is
 * empty). A 0-dim tensor is one row of one element. Returns EM_OK, or EM_ERR_INVALID after
 * em_set_error() naming `who` ("cuda") and `op` when dim is out of range. Thread-safe. */
static inline int em_kt_rows(const em_ktensor *t, int64_t dim, const char *who, const char *op,
                             int64_t *rows, int64_t *len, int64_t *inner)
{
    if (dim < 0 || dim >= (t->ndim > 0 ? t->ndim : 1))
        return em_set_error(EM_ERR_INVALID, "%s: %s: dim %lld out of range for %d dims", who, op,
                            (long long)dim, t->ndim);
    *len = t->ndim > 0 ? t->shape[dim] : 1;
    *inner = 1;
    for (int d = (int)dim + 1; d < t->ndim; d++)
        *inner *= t->shape[d];
    *rows = *len > 0 ? t->numel / *len : 0;
    return EM_OK;
}

/* Since 1.3: whether src broadcasts to dst's shape: its dims, right-aligned against dst's, are
 * 1 or equal to dst's (PyTorch's rule; src may have fewer dims). */
static inline bool em_kt_broadcasts(const em_ktensor *dst, const em_ktensor *src)
{
    if (src->ndim > dst->ndim)
        return false;
    for (int j = 0; j < src->ndim; j++) {
        int64_t s = src->shape[j], d = dst->shape[dst->ndim - src->ndim + j];
        if (s != d && s != 1)
            return false;
    }
    return true;
}

/* ---- helpers for backends and plugins (header-only, since 1.3) -------------------------- */

/* Defines the exported entry point: `EM_PLUGIN_DEFINE("cpu", EMBER_VERSION_STRING, "CPU
 * backend", cpu_init, cpu_shutdown)` at file scope, once per plugin, gives
 * `const em_plugin *ember_plugin(void)` default visibility (the rest of a plugin built with
 * -fvisibility=hidden stays hidden) and returns a static descriptor. */
#if defined(__GNUC__) || defined(__clang__)
#define EM_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EM_PLUGIN_EXPORT
#endif
#define EM_PLUGIN_DEFINE(name_, version_, desc_, init_, shutdown_)                              \
    EM_PLUGIN_EXPORT const em_plugin *ember_plugin(void);                                      \
    const em_plugin *ember_plugin(void)                                                         \
    {                                                                                           \
        static const em_plugin em_plugin_descriptor_ =                                          \
            EM_PLUGIN_DESCRIPTOR_INIT(name_, version_, desc_, init_, shutdown_);               \
        return &em_plugin_descriptor_;                                                          \
    }

/* Checks a device index that a vtable entry got, on a backend whose devices are 0 .. ndev-1.
 * Returns EM_OK, or EM_ERR_DEVICE after em_set_error() naming the backend ("cuda"), the entry
 * (`what`: "memory_stats"), the index and the count. Thread-safe. */
static inline int em_device_index_check(const char *backend, const char *what, int dev,
                                        int ndev)
{
    if (dev >= 0 && dev < ndev)
        return EM_OK;
    return em_set_error(EM_ERR_DEVICE, "%s: %s: no device %d (there %s %d)", backend, what, dev,
                        ndev == 1 ? "is" : "are", ndev);
}

/* Defines the kernel `static int name(void *backend_ctx, const em_kcall *call)` as
 * `return impl(backend_ctx, call, ...)`: one entry point per op over an implementation several
 * ops share, since a kernel is handed no registration context to tell its op by. At file
 * scope, no semicolon after it: `EM_KERNEL_BIND(k_neg, run_unary, OP_NEG)`. */
#define EM_KERNEL_BIND(name, impl, ...)                                                         \
    static int name(void *backend_ctx, const em_kcall *call)                                    \
    {                                                                                           \
        return impl(backend_ctx, call, __VA_ARGS__);                                            \
    }

/* Checks that a kernel got the inputs, outputs and attributes it reads: `who` names the
 * backend ("cpu"). The core passes the counts of the op's definition, so this only fails when
 * a kernel is registered under an op of another shape; it then returns EM_ERR_INVALID after
 * em_set_error() naming the op and both counts. Thread-safe. */
static inline int em_kcall_check(const em_kcall *c, const char *who, int nin, int nout,
                                 int nattrs)
{
    if (c->nin == nin && c->nout == nout && c->nattrs >= nattrs)
        return EM_OK;
    return em_set_error(EM_ERR_INVALID, "%s: %s: expected %d inputs, %d outputs and %d "
                        "attributes, got %d, %d and %d", who, em_op_name(c->op), nin, nout,
                        nattrs, c->nin, c->nout, c->nattrs);
}

/* One row of a backend's kernel table, for em_register_kernels. */
typedef struct em_kernel_decl {
    const char *op;
    em_kernel_fn fn;
    unsigned flags;    /* EM_KERNEL_STRIDED or 0 */
    uint32_t dtypes;   /* EM_DTYPE_BIT mask */
} em_kernel_decl;

/* em_register_kernel for each of the n rows of `table` on `backend`, in order; stops at the
 * first failure and returns its status, else EM_OK. */
static inline int em_register_kernels(em_registry *reg, const char *backend,
                                      const em_kernel_decl *table, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int rc = em_register_kernel(reg, backend, table[i].op, table[i].fn, table[i].flags,
                                    table[i].dtypes);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

/* A kernel's first statement: em_kcall_check, returning its status from the kernel on failure.
 *   static int k_neg(void *ctx, const em_kcall *c) { EM_KCALL_CHECK(c, "cpu", 1, 1, 0); ... } */
#define EM_KCALL_CHECK(c, who, nin, nout, nattrs)                                               \
    do {                                                                                        \
        int em_kcall_rc_ = em_kcall_check((c), (who), (nin), (nout), (nattrs));                 \
        if (em_kcall_rc_ != EM_OK)                                                              \
            return em_kcall_rc_;                                                                \
    } while (0)

/* Operands of one shape walked with the fewest dims, for elementwise kernels: dims of size 1
 * are dropped and a dim is merged into the one outside it when, in every operand, stepping
 * the outer dim once equals stepping the inner one shape[d] times. So a contiguous tensor is
 * one flat run and a scalar broadcast over it one run of stride 0. */
#define EM_STRIDED_MAX_OPS 4

typedef struct em_strided {
    int ndim;                                       /* >= 1; one element: shape {1} */
    int nops;
    int64_t numel;
    int64_t shape[EM_MAX_DIMS];                     /* innermost last */
    int64_t strides[EM_STRIDED_MAX_OPS][EM_MAX_DIMS];   /* in elements, per operand */
} em_strided;

/* Coalesces nops operands (at most EM_STRIDED_MAX_OPS) sharing shape[ndim] (ndim at most
 * EM_MAX_DIMS), strides[k] being operand k's. A single element ends as one dim of size 1 with
 * stride 0 in every operand. Returns EM_OK, or EM_ERR_INVALID after em_set_error() when nops
 * or ndim is out of range (*it then walks nothing: ndim 0, numel 0). Thread-safe. */
static inline int em_strided_init(em_strided *it, int ndim, const int64_t *shape, int nops,
                                  const int64_t *const *strides)
{
    it->ndim = it->nops = 0;
    it->numel = 0;
    if (nops < 1 || nops > EM_STRIDED_MAX_OPS || ndim < 0 || ndim > EM_MAX_DIMS)
        return em_set_error(EM_ERR_INVALID, "em_strided_init: %d operands of %d dims (at most "
                            "%d of %d)", nops, ndim, EM_STRIDED_MAX_OPS, EM_MAX_DIMS);
    int nd = 0;
    it->nops = nops;
    it->numel = 1;
    for (int d = 0; d < ndim; d++) {
        int64_t size = shape[d];
        it->numel *= size;
        if (size == 1)
            continue;
        bool merge = nd > 0;
        for (int k = 0; k < nops && merge; k++)
            merge = it->strides[k][nd - 1] == strides[k][d] * size;
        if (merge)
            it->shape[nd - 1] *= size;
        else
            it->shape[nd++] = size;
        for (int k = 0; k < nops; k++)
            it->strides[k][nd - 1] = strides[k][d];
    }
    if (nd == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < nops; k++)
            it->strides[k][0] = 0;
        nd = 1;
    }
    it->ndim = nd;
    return EM_OK;
}

#ifdef __cplusplus
}
#endif
#endif
