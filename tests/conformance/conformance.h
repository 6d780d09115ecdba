/* tests/conformance/conformance.h - the conformance suite: its case model, host references and
 * runner, shared by the case tables (cases_*.c) and the `ember conformance` command.
 *
 * A case is one row of a table: an op (how to call it through the public API, how to compute
 * the expected result on the host in float64), the inputs' shapes and layouts (0-dim,
 * zero-size, broadcast pairs, transposed, strided, offset and expanded views), attributes,
 * and which checks apply. The runner instantiates each case for every dtype the op takes and
 * runs it on one backend: inputs are drawn from the case's seed, created on the CPU in float64,
 * cast to the dtype there and moved to the backend with em_to; the result is read back in its
 * own dtype and compared, element by element, with the reference rounded to that dtype.
 *
 * What this is not: a unit test of the core's argument checking (tests/core does that), or a
 * benchmark. It uses the public API and plugin.h only, so it runs against any backend plugin.
 */
#ifndef EMBER_CONFORMANCE_H
#define EMBER_CONFORMANCE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <ember/ember.h>
#include <ember/plugin.h>

#define CF_MAX_IN EM_CONF_MAX_INPUTS

/* ---- host arrays ------------------------------------------------------------------------ */

/* A tensor's logical values on the host, row-major, in float64. */
typedef struct cf_arr {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    int64_t n;
    double *v;                  /* malloc'd (n entries, at least one allocated) */
    em_dtype dtype;             /* the dtype the values came from or are meant for */
} cf_arr;

bool cf_arr_alloc(cf_arr *a, int ndim, const int64_t *shape);
void cf_arr_free(cf_arr *a);
int64_t cf_numel(int ndim, const int64_t *shape);
/* "[2, 3]" (or "[]" for 0-dim) into buf. */
const char *cf_shape_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* v as the nearest value of dtype dt (float formats round to nearest even through float32, as
 * PyTorch's casts do; integers truncate toward zero and wrap; bool is v != 0). */
double cf_round(em_dtype dt, double v);
/* The short dtype names used on the command line and in reports: f32, f64, f16, bf16, i64,
 * i32, u8, bool. */
const char *cf_dtype_short(em_dtype dt);
/* PyTorch's result_type for n operands: dimensioned tensors outrank 0-dim tensors, which
 * outrank Python scalars (`wrapped`), within the categories bool < integer < float. */
em_dtype cf_result_type(int n, const em_dtype *dts, const int *ndims, const bool *wrapped);

/* ---- value domains ------------------------------------------------------------------------ */

enum cf_dom_kind {
    CF_UNIFORM = 0,   /* floats uniform in [lo, hi); integers uniform whole numbers in [ilo, ihi] */
    CF_AWAY0,         /* as CF_UNIFORM, but |x| >= 0.25 (kinks of abs/relu, divisors) */
    CF_SPECIAL,       /* floats cycle through 0, -0, +-inf, nan, tiny, huge...; ints as UNIFORM */
    CF_WITH_NAN,      /* as CF_UNIFORM with about one float element in four NaN */
    CF_INDEX,         /* whole numbers in [0, ihi) (gather/scatter indices) */
    CF_BOOLS,         /* 0 or 1 */
    CF_WHOLE,         /* whole numbers in [ilo, ihi] for every dtype (ties for comparisons) */
    CF_CAST,          /* as CF_UNIFORM with every fifth element 0 (casts to bool) */
};

typedef struct cf_dom {
    unsigned char kind;         /* enum cf_dom_kind */
    double lo, hi;              /* float dtypes */
    double ilo, ihi;            /* integer dtypes (uint8 clamps ilo at 0); bool draws 0/1 */
} cf_dom;

/* ---- inputs ------------------------------------------------------------------------------ */

/* How an input is laid out in memory; its logical values never depend on this. */
enum cf_layout {
    CF_CONTIG = 0,
    CF_T,          /* transpose of a contiguous tensor (last two dims swapped), ndim >= 2 */
    CF_PERM,       /* all dims reversed by em_permute, ndim >= 2 */
    CF_STEP,       /* every other element of the last dim (stride 2, storage offset 1); the
                      elements in between hold NaN (floats) or 99 (integers) */
    CF_OFFSET,     /* narrowed along dim 0 out of a larger tensor (storage offset > 0), with
                      NaN/99 rows before and after */
    CF_EXPAND,     /* the dims in `expand` are broadcast (stride 0) from size 1 */
};

typedef struct cf_in {
    int ndim;
    int64_t shape[EM_MAX_DIMS];
    unsigned char layout;       /* enum cf_layout */
    unsigned char expand;       /* CF_EXPAND: bit d means dim d is expanded */
    em_dtype dtype;             /* 0: the dtype under test */
    const cf_dom *dom;          /* NULL: the op's domain for this input position */
    const double *fixed;        /* logical values given by the case (golden data), or NULL */
} cf_in;

/* ---- ops and cases --------------------------------------------------------------------------- */

struct cf_case;

/* Runs the op on the target's inputs (views already made). Returns a new tensor or NULL. */
typedef em_tensor *(*cf_call_fn)(const struct cf_case *c, em_tensor *const *in);
/* Computes the expected logical result from the inputs' logical values, in float64; sets
 * out->ndim/shape and allocates out->v (cf_arr_alloc). Returns false when the case cannot
 * have a result (the runner reports that as a bug in the case). */
typedef bool (*cf_ref_fn)(const struct cf_case *c, int nin, const cf_arr *in, cf_arr *out);

/* The output dtype, from the inputs' dtypes (after the case's fixed dtypes are applied). */
enum cf_out_rule {
    CF_OUT_PROMOTE = 0, /* result_type of the inputs (binary ops, unary ops on their input) */
    CF_OUT_FLOAT,       /* as PROMOTE, then integers and bool become float32 (exp, div) */
    CF_OUT_BOOL,        /* comparisons */
    CF_OUT_I64,         /* argmax */
    CF_OUT_SUM,         /* float stays, integers and bool become int64 */
    CF_OUT_FIRST,       /* the dtype of input 0 (gather, scatter_add, casts name it in attrs) */
    CF_OUT_ASK_CPU,     /* what the CPU backend gives for the same inputs (plugin ops) */
    CF_OUT_CASE,        /* the dtype under test (creation ops, copies into a tensor of it) */
};

enum cf_op_flags {
    CF_GRAD = 1u << 0,      /* differentiable in its inputs of the dtype under test */
    CF_ACCUM = 1u << 1,     /* accumulates (reductions, matmul, composites): wider f16/bf16
                               tolerances, see cf_tolerance() */
};

typedef struct cf_op {
    const char *name;           /* the registered op name (what --op filters on) */
    em_tensor *(*f1)(em_tensor *);                   /* unary ops */
    em_tensor *(*f2)(em_tensor *, em_tensor *);      /* binary ops */
    cf_call_fn call;            /* anything else */
    double (*r1)(double);       /* elementwise references (broadcast by the runner) */
    double (*r2)(double, double);
    cf_ref_fn ref;              /* general reference; NULL with r1/r2 NULL: the CPU in f64 */
    uint32_t dtypes;            /* EM_DTYPE_BIT mask of dtypes the op takes (as PyTorch) */
    unsigned flags;             /* enum cf_op_flags */
    unsigned char out;          /* enum cf_out_rule */
    cf_dom dom[2];              /* domain of input 0 and of the others */
} cf_op;

/* Op parameters a case passes (reductions, dims, scalars, casts). */
typedef struct cf_params {
    int ndims;
    int dims[EM_MAX_DIMS];
    bool keepdim;
    int dim;
    double scalar;
    bool scalar_arg;            /* the op takes `scalar` as a Python number (wrapped scalar) */
    em_dtype to;                /* casts: the destination dtype */
    int nattrs;                 /* plugin ops: attributes for em_op_call */
    const em_attr *attrs;
} cf_params;

enum cf_case_flags {
    CF_NO_GRAD = 1u << 0,       /* no gradient checks for this case */
    CF_NO_GRADCHECK = 1u << 1,  /* no central differences (kinks in the domain) */
    CF_KNOWN_FAIL = 1u << 2,    /* a known failure: reported with `known` as the reason and
                                   counted as skipped, never as passed */
};

typedef struct cf_golden {
    const double *g;            /* upstream gradient (the output's shape), or NULL */
    int out_ndim;
    int64_t out_shape[EM_MAX_DIMS];
    const double *out;          /* expected output */
    const double *grad[CF_MAX_IN];   /* expected gradient of each input, or NULL */
} cf_golden;

typedef struct cf_case {
    const cf_op *op;
    char label[96];             /* what the inputs are: "[3, 1] + [1, 4] broadcast" */
    int nin;
    cf_in in[CF_MAX_IN];
    cf_params p;
    uint32_t dtypes;            /* 0: the op's; else restricted to these */
    unsigned flags;             /* enum cf_case_flags */
    double rtol, atol;          /* > 0: override the dtype's tolerance */
    double lowp_atol;           /* > 0: absolute tolerance in float16/bfloat16 (sums of many
                                   rounded terms: k terms of magnitude m lose ~k m 2^-bits) */
    const char *known;          /* CF_KNOWN_FAIL: why */
    const cf_golden *golden;    /* expected values from PyTorch, instead of a reference */
    const char *plugin;         /* registered by this plugin (plugin cases), else NULL */
    em_conf_reference_fn elem_ref;   /* plugin cases: elementwise reference, or NULL */
    uint64_t seed;
} cf_case;

/* A growable list of cases. */
typedef struct cf_list {
    cf_case *c;
    int n, cap;
} cf_list;

/* Appends a copy of c (its seed is derived from op name and label); returns the copy. */
cf_case *cf_add(cf_list *l, const cf_case *c);
/* Formats into c->label. */
void cf_label(cf_case *c, const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void cf_list_free(cf_list *l);

/* The case families: each appends its rows. */
void cf_family_unary(cf_list *l);
void cf_family_binary(cf_list *l);
void cf_family_reduce(cf_list *l);
void cf_family_linalg(cf_list *l);
void cf_family_loss(cf_list *l);
void cf_family_memory(cf_list *l);
void cf_family_golden(cf_list *l);
void cf_family_optim(cf_list *l);    /* fused optimizer updates */
void cf_family_plugins(cf_list *l);   /* cases registered through plugin.h (needs em_init) */
void cf_family_plugins_free(void);   /* what cf_family_plugins allocated (cf_list_free calls it) */

/* Every case of every family, in a fixed order. base_seed is mixed into each case's seed. */
void cf_cases_all(cf_list *l, uint64_t base_seed);

/* The dtypes case c runs in (the op's, narrowed by the case). */
uint32_t cf_case_dtypes(const cf_case *c);

/* ---- references (ref.c) ------------------------------------------------------------------ */

/* Broadcast shape of the inputs; false if they do not broadcast. */
bool cf_broadcast_shape(int nin, const cf_arr *in, int *ndim, int64_t *shape);
/* out = f over broadcast inputs, for elementwise references. */
bool cf_ref_elementwise(int nin, const cf_arr *in, cf_arr *out,
                        double (*f)(const double *x, const void *ctx), const void *ctx);
bool cf_ref_unary(const cf_case *c, int nin, const cf_arr *in, cf_arr *out);
bool cf_ref_binary(const cf_case *c, int nin, const cf_arr *in, cf_arr *out);
/* torch.matmul semantics (1-D operands, broadcast batch dims). */
bool cf_ref_matmul_arrays(const cf_arr *a, const cf_arr *b, cf_arr *out);

/* ---- tolerances ------------------------------------------------------------------------- */

typedef struct cf_tol {
    double rtol, atol;
} cf_tol;
/* torch.testing.assert_close's defaults for dt (f32 1.3e-6/1e-5, f64 1e-7/1e-7, f16 1e-3/1e-5,
 * bf16 1.6e-2/1e-5; exact for integers and bool), widened for CF_ACCUM ops and for gradients
 * (see docs/writing-plugins.md), or the case's own. */
cf_tol cf_tolerance(const cf_case *c, em_dtype dt, bool gradient);

/* ---- running ----------------------------------------------------------------------------- */

enum cf_status { CF_PASS, CF_FAIL, CF_SKIP };

typedef struct cf_result {
    const cf_case *c;
    em_dtype dtype;
    const char *check;          /* "forward", "grad", "gradcheck" */
    int status;                 /* enum cf_status */
    char *message;              /* why it failed or was skipped (malloc'd), or NULL */
} cf_result;

typedef struct cf_options {
    const char *backend;        /* "cpu", "cuda:1"... */
    const char *op;             /* only cases of this op (NULL: all) */
    em_dtype dtype;             /* only this dtype (0: all) */
    FILE *out;                  /* where failures are printed as they happen */
    bool verbose;               /* print passes and skips too */
} cf_options;

typedef struct cf_report {
    cf_result *r;
    int n, cap;
    int passed, failed, skipped;
    char backend_reason[512];   /* set when the whole backend was skipped */
} cf_report;

/* Runs the selected cases on the backend. A backend that is not loaded or not usable skips
 * every case with the reason. Returns 0, or -1 if the backend name is unknown (not a loaded
 * backend, not one Ember knows of, not one a failed plugin was meant to provide). */
int cf_run(const cf_list *l, const cf_options *o, cf_report *rep);
void cf_report_free(cf_report *rep);
/* Whether case c is selected by the options' op and dtype filters for dtype dt. */
bool cf_selected(const cf_case *c, const cf_options *o, em_dtype dt);

/* The op x dtype support matrix of one backend: for every registered op (em_op_name) and
 * every dtype, 'Y' (runs), '-' (no kernel: EM_ERR_UNSUPPORTED), '.' (the op does not take
 * that dtype, or no probe exists for it), '?' (the probe failed another way). cells must hold
 * nops * (EM_DTYPE_COUNT - 1) chars; returns nops, or -1 when the backend is not usable
 * (reason in em_last_error()). */
int cf_support(const cf_list *l, const char *backend, char *cells, int maxops);

#endif
