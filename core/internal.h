/* core/internal.h - libember's private structures and cross-file helpers (em__ prefix).
 *
 * Not installed. Plugins never see these layouts: they get em_ktensor views and opaque handles.
 */
#ifndef EMBER_CORE_INTERNAL_H
#define EMBER_CORE_INTERNAL_H

#include <stdatomic.h>
#include <stdio.h>

#include "ember/ember.h"
#include "ember/plugin.h"

/* ---- invariants ------------------------------------------------------------ */

/* Always on (NDEBUG does not remove it): internal invariants only, never user errors. */
#define EM_ASSERT(cond)                                                                  \
    do {                                                                                 \
        if (!(cond))                                                                     \
            em__assert_fail(#cond, __FILE__, __LINE__);                                  \
    } while (0)
_Noreturn void em__assert_fail(const char *expr, const char *file, int line);

/* ---- errors ---------------------------------------------------------------- */

/* em_set_error() lives in plugin.h (plugins use it too). A NULL argument check that keeps
 * the first error: if an earlier call failed, its message stays. */
int em__null_arg(const char *fn, const char *what);
#define EM_CHECK_T(fn, t)                                                                \
    do {                                                                                 \
        if (!(t)) {                                                                      \
            em__null_arg(fn, #t);                                                        \
            return NULL;                                                                 \
        }                                                                                \
    } while (0)

/* ---- storage ---------------------------------------------------------------- */

struct em_backend;

typedef struct em_storage {
    atomic_int refcount;
    atomic_uint_fast64_t version;     /* bumped by every in-place write */
    struct em_backend *be;
    int dev;                          /* device index on be */
    void *buf;                        /* backend buffer handle */
    size_t nbytes;
    void (*free_fn)(void *);          /* from_blob: caller's memory, not the backend's */
    void *free_ctx;
    bool external;                    /* from_blob */
} em_storage;

em_storage *em__storage_new(struct em_backend *be, int dev, size_t nbytes);
/* Storage over memory someone else owns (from_blob, DLPack) on device `dev` of be: the core
 * never frees it through the backend; free_fn(ctx), if not NULL, runs when the storage dies. */
em_storage *em__storage_wrap(struct em_backend *be, int dev, void *data, size_t nbytes,
                             void (*free_fn)(void *), void *ctx);
void em__storage_retain(em_storage *s);
void em__storage_release(em_storage *s);

/* ---- tensors ---------------------------------------------------------------- */

struct em_autograd_meta;   /* core/autograd.c */

struct em_tensor {
    atomic_int refcount;
    em_dtype dtype;
    int ndim;
    bool requires_grad;
    bool wrapped_number;              /* created from a C scalar: lowest promotion priority */
    em_storage *storage;
    int64_t offset;                   /* elements */
    int64_t numel;
    int64_t shape[EM_MAX_DIMS];
    int64_t strides[EM_MAX_DIMS];
    struct em_autograd_meta *ag;      /* NULL unless autograd touched this tensor */
};

/* A new tensor header over `s` (retained), registered with the current scope. */
em_tensor *em__tensor_make(em_storage *s, em_dtype dt, int ndim, const int64_t *shape,
                           const int64_t *strides, int64_t offset);
/* A new contiguous tensor with fresh storage on device d. */
em_tensor *em__tensor_alloc(em_device d, em_dtype dt, int ndim, const int64_t *shape);
void em__contiguous_strides(int ndim, const int64_t *shape, int64_t *strides);
int64_t em__shape_numel(int ndim, const int64_t *shape);
bool em__shape_check(const char *fn, int ndim, const int64_t *shape);
/* Normalises a possibly negative dim for a tensor of rank ndim; -1 with error if out of
 * range ("fn: dim 3 out of range for a 2-D tensor"). */
int em__wrap_dim(const char *fn, int dim, int ndim);
/* "[2, 3]" into buf. */
const char *em__shape_str(int ndim, const int64_t *shape, char *buf, size_t size);
em_device em__tensor_device(const em_tensor *t);
void em__ktensor(const em_tensor *t, em_ktensor *kt);

/* ---- dtypes ----------------------------------------------------------------- */

/* PyTorch's result_type over operands: dimensioned tensors outrank 0-dim tensors, which
 * outrank wrapped numbers, within the categories bool < integer < float. */
em_dtype em__result_type(int n, em_tensor *const *ts);
em_dtype em__promote(em_dtype a, em_dtype b);
em_dtype em__default_float(void);

/* ---- backends ---------------------------------------------------------------- */

typedef struct em_backend {
    int id;                           /* index in the registry's backend table, >= 1 */
    const em_backend_ops *ops;
    void *ctx;
    struct em_plugin_rec *owner;
    atomic_long live;                 /* storages alive on this backend */
} em_backend;

em_backend *em__backend(int id);                 /* NULL if out of range */
em_backend *em__backend_by_name(const char *name, size_t len);
em_backend *em__cpu_backend(void);               /* NULL (with error) if no CPU backend */
int em__backend_count(void);
/* Checks that d names a registered, usable backend with that device index. */
int em__device_check(const char *fn, em_device d);
/* Resolves {0, 0} (unspecified) to the default device. */
em_device em__resolve_device(em_device d);
/* The backend's device_info for the checked device d, into *out: zeroed and struct_size set
 * first, as plugin.h promises the backend. Returns EM_OK or the backend's negative status. */
int em__device_info(em_device d, em_device_info *out);

/* ---- ops and dispatch -------------------------------------------------------- */

typedef struct em_kernel_rec {
    em_kernel_fn fn;
    unsigned flags;
    uint32_t dtypes;
    struct em_plugin_rec *owner;
} em_kernel_rec;

#define EM__MAX_BACKENDS (EM_MAX_BACKENDS + 1)   /* slot 0 is unused: id 0 = unspecified */

typedef struct em_op_rec {
    em_op_def def;                    /* copied; def.name points at `name` */
    int id;
    char name[64];
    struct em_plugin_rec *owner;
    em_kernel_rec kernels[EM__MAX_BACKENDS];
    atomic_bool fallback_warned;
    char grad_name[80];               /* plugin ops with a backward: "SoftplusBackward0" */
} em_op_rec;

em_op_rec *em__op(int id);
int em__op_count(void);
/* Runs op `id` on the inputs: checks devices, broadcasts and promotes as the op's flags say,
 * infers the output, picks the kernel (or composite, or CPU fallback) and records autograd.
 * `out` may be a preallocated destination (in-place ops), else NULL. Returns a new reference.
 */
em_tensor *em__dispatch(int id, int nin, em_tensor *const *in, const em_attr *attrs,
                        em_tensor *out);
/* Runs a kernel directly on already-prepared tensors (no promotion, no autograd). */
int em__run_kernel(int id, int nin, em_tensor *const *in, int nout, em_tensor *const *out,
                   const em_attr *attrs);
/* True when em__dispatch(id, nin, in, attrs, in[0]) would run one kernel straight into in[0]
 * with nothing to allocate: every input contiguous, on one device and of the compute dtype,
 * and a kernel registered for it. */
bool em__dispatch_direct(int id, int nin, em_tensor *const *in);

/* core/optim.c, a step's deferred updates (see "a step is all or nothing" there).
 * em__step_defer queues an update op instead of running it, when a step on this thread is
 * deferring and the op can run directly on the CPU: 1 (queued), 0 (run it now). Every other
 * dispatch and kernel call first calls em__step_stop_deferring, which, in such a step, copies
 * the parameters aside and runs the queue (negative status on failure); else it does nothing. */
int em__step_defer(int id, int nin, em_tensor *const *in, const em_attr *attrs);
int em__step_stop_deferring(void);

/* Ids of the builtin ops, registered by the core in this order at em_init. */
enum {
    EM__OP_COPY, EM__OP_FILL, EM__OP_RANDOM,
    EM__OP_NEG, EM__OP_ABS, EM__OP_EXP, EM__OP_LOG, EM__OP_SQRT, EM__OP_SIN, EM__OP_COS,
    EM__OP_TANH, EM__OP_SIGMOID, EM__OP_RELU,
    EM__OP_ADD, EM__OP_SUB, EM__OP_MUL, EM__OP_DIV, EM__OP_POW, EM__OP_MAXIMUM,
    EM__OP_MINIMUM,
    EM__OP_EQ, EM__OP_NE, EM__OP_LT, EM__OP_LE, EM__OP_GT, EM__OP_GE,
    EM__OP_WHERE, EM__OP_SUM, EM__OP_AMAX, EM__OP_ARGMAX, EM__OP_MATMUL, EM__OP_GATHER,
    EM__OP_SCATTER_ADD,
    EM__OP_BUILTIN_COUNT
};
int em__register_builtin_ops(void);

/* ---- registry and plugins ----------------------------------------------------- */

typedef struct em_plugin_rec {
    char *path;
    char *name;
    char *version;
    char *description;
    void *handle;                     /* dlopen handle; NULL for a failed plugin */
    const em_plugin *desc;
    bool ok;
    bool disabled;                    /* named in [runtime] disable: found, not initialised */
    char *error;                      /* why it failed, when !ok */
    int nbackends, nops, nkernels;    /* what it registered */
    char *registered;                 /* "backend cpu; ops softplus; 35 kernels" */
    uint32_t abi_major, abi_minor;    /* as the plugin declared them (0 if unknown) */
} em_plugin_rec;

struct em_registry {
    em_plugin_rec *rec;
};

int em__loader_load_all(void);
void em__loader_unload_all(bool keep_mapped);
int em__plugin_count(void);
const em_plugin_rec *em__plugin(int i);
/* Loads one file; used by tests and tools through em__loader_load_all. */
int em__loader_load_file(const char *path);
/* Checks a plugin's descriptor before its init runs: present, struct_size covering the fields
 * up to init, a name and an init function, the same ABI major and a minor no newer than the
 * core's. EM_OK, or EM_ERR_PLUGIN with the reason in why (size bytes; not em_last_error). */
int em__plugin_check_descriptor(const em_plugin *d, char *why, size_t size);

/* ---- configuration ------------------------------------------------------------ */

/* Reads `path` (NULL: the default search) into the effective configuration, then applies
 * environment overrides. Returns EM_OK or a negative status naming file:line. */
int em__config_load(const char *path);
/* The default files (system, then user, or $EMBER_CONFIG), then path over them. */
int em__config_load_layered(const char *path);
void em__config_free(void);
/* Where the config file came from ("" when none was read). */
const char *em__config_path(void);
/* Iterates over the effective settings: returns false past the end. */
bool em__config_entry(int i, const char **key, const char **value, const char **source);
/* Values of a multi-valued key (plugin_path may appear on several lines). */
int em__config_multi(const char *key, const char ***values);

/* ---- random ------------------------------------------------------------------- */

/* Reserves `blocks` Philox counters from the global generator; returns the first. */
uint64_t em__rng_reserve(uint64_t blocks, uint64_t *seed);

/* ---- scopes -------------------------------------------------------------------- */

/* Public functions that return tensors run their body through EM_WRAP: the nesting depth
 * tells the outermost call apart, and only its result is handed to the current scope, so
 * temporaries that ops create and release internally never enter a scope. */
extern _Thread_local int em__api_depth;
extern _Thread_local int em__scope_depth;
void em__scope_track(em_tensor *t);
void em__scope_shutdown(void);
#define EM_WRAP(expr)                                                                    \
    do {                                                                                 \
        em__api_depth++;                                                                 \
        em_tensor *em_r_ = (expr);                                                       \
        if (--em__api_depth == 0 && em_r_ && em__scope_depth > 0)                        \
            em__scope_track(em_r_);                                                      \
        return em_r_;                                                                    \
    } while (0)

/* For core functions that are not ops but call public tensor functions (collectives, DDP):
 * runs `call` with the API depth raised, so the tensors those calls return are the function's
 * own to release and never enter the caller's scope. Returns the call's result. */
#define EM_UNSCOPED(type, call)                                                          \
    do {                                                                                 \
        em__api_depth++;                                                                 \
        type em_u_ = (call);                                                             \
        em__api_depth--;                                                                 \
        return em_u_;                                                                    \
    } while (0)

/* ---- formatting ------------------------------------------------------------------ */

/* Appends to a growable buffer; used by em_tensor_str and `ember info`. */
typedef struct em_strbuf {
    char *data;
    size_t len, cap;
    bool failed;
} em_strbuf;
void em__sb_printf(em_strbuf *sb, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void em__sb_putc(em_strbuf *sb, char c);
char *em__sb_take(em_strbuf *sb);    /* the string (caller frees) or NULL on failure */

/* ---- runtime state -------------------------------------------------------------- */

bool em__initialized(void);
int em__require_init(const char *fn);

/* ---- cross-file hooks (declared once here) ------------------------------------------ */

/* core/dispatch.c */
extern bool em__fallback_cpu;
void em__dispatch_forget(em_plugin_rec *rec);
void em__dispatch_forget_backend(int backend_id);
void em__dispatch_free(void);
/* Attaches kernels registered before their backend (an op plugin found first on the plugin
 * path) once the backend exists; the loader calls it after each plugin's init. */
void em__dispatch_attach_pending(void);
/* core/registry.c */
void em__registry_forget(em_plugin_rec *rec);
void em__registry_shutdown(void);
/* core/ops/table.c: the composites' ids (the ops themselves: core/ops/<family>.c) */
extern int em__op_mean, em__op_softmax, em__op_log_softmax, em__op_linear, em__op_cross_entropy,
    em__op_cross_entropy_backward, em__op_linear_relu, em__op_threshold_backward;
/* core/optim_ops.c: the fused optimizer updates (registered after the composites) */
extern int em__op_sgd_step, em__op_adam_step, em__op_rmsprop_step;
int em__register_optim_ops(void);
/* core/ops/elementwise.c, core/ops/index.c */
em_tensor *em__wrapped_scalar(em_tensor *a, double s);
bool em__check_index(const char *fn, em_tensor *a, int dim, em_tensor *index, em_tensor *src,
                     bool values);
/* core/conformance_registry.c: cases registered by plugins (by plugin name) */
void em__conformance_forget(const char *plugin);
void em__conformance_free(void);
/* core/data.c: dataset types registered by plugins */
void em__dataset_types_forget(em_plugin_rec *rec);
void em__dataset_types_free(void);
void em__dataset_types_describe(const em_plugin_rec *r, em_strbuf *sb);
/* core/transfer.c */
em_tensor *em__copy_into(em_tensor *dst, em_tensor *src);
double em__to_double(const void *p, em_dtype dt);
/* ---- autograd (core/autograd.c: graph; autograd_engine.c: backward; autograd_api.c: public
 * flags, accessors, hooks and grad mode; core/ops/: formulas) ---------------------------- */

typedef struct em_node em_node;

/* Computes the gradients of a node's inputs from the gradient of its output. gin[i] is
 * left NULL for inputs that need no gradient; the engine sums each result down to the
 * input's shape and casts it to the input's dtype and device. Runs with grad mode off. */
typedef int (*em__backward_fn)(em_node *n, em_tensor *grad, em_tensor **gin);

enum {
    EM__SAVE_IN0 = 1u << 0,
    EM__SAVE_IN1 = 1u << 1,
    EM__SAVE_IN2 = 1u << 2,
    EM__SAVE_ALL_IN = 0xffu,     /* every input (ops from plugins) */
    EM__SAVE_OUT = 1u << 8,
};

typedef struct em__formula {
    const char *name;            /* PyTorch's node name: "MulBackward0" */
    em__backward_fn fn;
    unsigned saves;              /* EM__SAVE_* */
} em__formula;

typedef struct em_node_input {
    em_node *next;               /* strong; NULL when the input needs no gradient */
    bool needs_grad;
    em_dtype dtype;
    em_device device;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
} em_node_input;

#define EM__NODE_MAX_SAVED 9
#define EM__NODE_MAX_ATTRS 2

struct em_node {
    atomic_int refcount;
    const char *name;
    em__backward_fn backward;    /* NULL: AccumulateGrad (leaf) or not differentiable */
    int op;                      /* dispatcher op id, or -1 */
    em_attr attrs[EM__NODE_MAX_ATTRS];
    em_attr *all_attrs;          /* a copy of every attribute, when the op has more than fit */
    int64_t aux[2 * EM_MAX_DIMS + 2];   /* view parameters (offsets, strides, dims) */
    int nsaved;
    em_tensor *saved[EM__NODE_MAX_SAVED];   /* data-only aliases (no autograd) */
    uint64_t saved_version[EM__NODE_MAX_SAVED];
    bool saved_freed;            /* freed by a backward without retain_graph */
    struct em_autograd_meta *owner;     /* weak: the tensor whose grad_fn this is */
    em_tensor *leaf;             /* AccumulateGrad: the leaf (strong) */
    /* engine bookkeeping */
    uint64_t epoch;
    int deps;
    em_tensor *buffer;
    struct em_node *dying;       /* em__node_release's list of nodes being freed */
    int nin;
    em_node_input in[];
};

typedef em_tensor *(*em__hook_fn)(em_tensor *grad, void *ctx);

typedef struct em_autograd_meta {
    em_tensor *grad;
    em_node *grad_fn;            /* strong; NULL for leaves */
    em_node *accumulator;        /* weak; leaves that require grad */
    bool retains_grad;
    bool is_view;                /* a view recorded by autograd (in-place on it is refused) */
    int nhooks;
    em__hook_fn hooks[4];
    void *hook_ctx[4];
    int npost;                   /* post-accumulate-grad hooks (leaves) */
    em_post_accumulate_hook_fn post[4];
    void *post_ctx[4];
} em_autograd_meta;

bool em__grad_mode(void);
/* t's autograd metadata, created on first use; NULL (error set) when out of memory. */
em_autograd_meta *em__autograd_meta(em_tensor *t);
/* True when t has no grad_fn (a leaf, whether or not it requires grad). */
bool em__autograd_is_leaf(const em_tensor *t);
/* A new reference to the node gradients of t flow into: its grad_fn, or the AccumulateGrad
 * node of a leaf (created on first use); NULL when t does not require grad or (error set) when
 * out of memory. */
em_node *em__autograd_edge(em_tensor *t);
int em__set_requires_grad(const char *fn, em_tensor *t, bool on);
int em__check_inplace(const char *fn, em_tensor *a);
void em__autograd_free(em_tensor *t);
/* Records op `id` (a dispatcher op) producing `out` from `in`; out is unchanged on failure. */
int em__autograd_record(int id, int nin, em_tensor *const *in, const em_attr *attrs,
                        em_tensor *out);
/* Makes `out` (written in place with the value of `result`) take over result's history. */
int em__autograd_rebase(em_tensor *out, em_tensor *result);
/* Views, casts and device copies; `name` is PyTorch's node name. Like em__autograd_record
 * and em__autograd_reset_history, these return EM_OK or EM_ERR_NOMEM with the error set: a
 * history that cannot be recorded fails the op (the caller releases its result), it never
 * degrades into a result that silently gets no gradient. */
int em__autograd_view(em_tensor *base, em_tensor *view, const char *name);
int em__autograd_to(em_tensor *src, em_tensor *dst);
int em__autograd_cast(em_tensor *src, em_tensor *dst, const char *name);
/* Formula lookup (core/ops/table.c); NULL when the op has none. */
const em__formula *em__formula_for(int op);
const char *em__formula_name(const em__formula *f, int op, int nin, em_tensor *const *in,
                             const em_attr *attrs, const em_tensor *out);
/* Replaces t's history by a node without inputs (fill_, zero_: no gradient flows back). */
int em__autograd_reset_history(em_tensor *t, const char *name);
/* A node's saved tensor i, or NULL with the "modified in place"/"freed" error set. */
em_tensor *em__saved(em_node *n, int i);
void em__node_release(em_node *n);

/* ---- communicators (core/dist.c) ---------------------------------------------- */

void em__dist_forget(em_plugin_rec *rec);
void em__dist_describe(em_plugin_rec *rec, em_strbuf *sb);
/* Finishes the running communicator and clears the table (before plugins unload). */
void em__dist_shutdown(void);
void em__dist_progress(void);
/* The status of an in-place op's result r (EM_OK, or the error it set), releasing r. */
int em__inplace_status(em_tensor *r);

#endif
