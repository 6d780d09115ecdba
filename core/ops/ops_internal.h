/* core/ops/ops_internal.h - what the op family files in core/ops/ share: the op definition
 * macro, the backward formulas' helpers, and each family's definitions and formulas that
 * core/ops/table.c registers in EM__OP_* order.
 *
 * Private to core/ops/: the rest of the core sees ops through internal.h (ids, em__dispatch,
 * em__formula_for). An op's public wrapper, definition and shape inference, composite and
 * backward formula live side by side in its family's file.
 *
 * Composites (mean, softmax, log_softmax, linear, linear_relu, cross_entropy and its backward)
 * are written in other ops: they run on every backend that has the primitives, and are
 * differentiable through them. A backend may register a fused kernel under the same op name;
 * the dispatcher prefers it.
 */
#ifndef EMBER_CORE_OPS_INTERNAL_H
#define EMBER_CORE_OPS_INTERNAL_H

#include "internal.h"

/* ---- definitions ------------------------------------------------------------------ */

/* Designated initialisers, so fields appended to em_op_def later start out zero. */
#define OP(name_, nin_, nattrs_, attrs_, flags_, infer_, composite_)                      \
    {.struct_size = sizeof(em_op_def), .name = name_, .nin = nin_, .nattrs = nattrs_,      \
     .attrs = attrs_, .flags = flags_, .infer = infer_, .composite = composite_}

#define SAME EM_OP_SAME_AS_INPUT
#define BIN (EM_OP_BROADCAST | EM_OP_PROMOTE | EM_OP_SAME_AS_INPUT)
#define UNARY_F (EM_OP_SAME_AS_INPUT | EM_OP_INT_TO_FLOAT)
#define CMP (EM_OP_BROADCAST | EM_OP_PROMOTE | EM_OP_SAME_AS_INPUT | EM_OP_OUT_BOOL)

/* ---- backward formulas' helpers ------------------------------------------------------ */

/* Each formula gets the node (saved tensors, attributes, input shapes) and the gradient of
 * the node's output, and writes the gradient of each input that needs one. Because formulas
 * are ops, they run on every backend. The engine then sums each result down to its input's
 * shape (broadcasting) and casts it to the input's dtype and device, so formulas compute in
 * whatever shape is natural. They run with grad mode off. Names follow PyTorch. */

#define NEED(i) (n->in[i].needs_grad)
/* Releases a, b, c... at the end of a formula (NULL-safe). */
static inline void drop(em_tensor *a, em_tensor *b, em_tensor *c)
{
    em_release(a);
    em_release(b);
    em_release(c);
}

/* A saved tensor or bail out with the engine's error. */
#define SAVED(var, i)                                                                    \
    em_tensor *var = em__saved(n, i);                                                    \
    if (!var)                                                                            \
        return em_last_status()

static inline em_tensor *scalar_like(em_tensor *t, double v) { return em__wrapped_scalar(t, v); }

static inline int check(em_tensor *const *gin, int nin, const em_node *n)
{
    for (int i = 0; i < nin; i++)
        if (n->in[i].needs_grad && !gin[i])
            return em_last_status() < 0 ? em_last_status()
                                        : em_set_error(EM_ERR_INTERNAL, "%s: no gradient", n->name);
    return EM_OK;
}

/* ---- shared between families ----------------------------------------------------------- */

/* core/ops/index.c: the first value of the int64 tensor t outside [0, size) (see there);
 * gather/scatter_add check their indices with it, cross_entropy its targets. */
int64_t em__first_out_of_range(const char *fn, em_tensor *t, int64_t size, const int64_t *skip,
                               int64_t *bad);

/* ---- each family's definitions, composites and formulas (core/ops/table.c's entries) ---- */

/* core/ops/elementwise.c */
extern const em_op_def em__def_copy, em__def_fill, em__def_random, em__def_neg, em__def_abs,
    em__def_exp, em__def_log, em__def_sqrt, em__def_sin, em__def_cos, em__def_tanh,
    em__def_sigmoid, em__def_relu, em__def_add, em__def_sub, em__def_mul, em__def_div,
    em__def_pow, em__def_maximum, em__def_minimum, em__def_eq, em__def_ne, em__def_lt,
    em__def_le, em__def_gt, em__def_ge, em__def_where;
extern const em__formula em__grad_neg, em__grad_abs, em__grad_exp, em__grad_log, em__grad_sqrt,
    em__grad_sin, em__grad_cos, em__grad_tanh, em__grad_sigmoid, em__grad_relu, em__grad_add,
    em__grad_sub, em__grad_mul, em__grad_div, em__grad_pow, em__grad_maximum, em__grad_minimum,
    em__grad_where;
extern const em_op_def em__def_threshold_backward;
em_tensor *em__composite_threshold_backward(int nin, em_tensor *const *in, const em_attr *attrs);
/* ReLU's backward: g where y > 0, else 0 (the op threshold_backward). A new reference. */
em_tensor *em__threshold_backward(em_tensor *g, em_tensor *y);
/* core/ops/reduce.c */
extern const em_op_def em__def_sum, em__def_amax, em__def_argmax, em__def_mean;
extern const em__formula em__grad_sum, em__grad_amax, em__grad_mean;
em_tensor *em__composite_mean(int nin, em_tensor *const *in, const em_attr *attrs);
/* core/ops/linalg.c */
extern const em_op_def em__def_matmul, em__def_linear, em__def_linear_relu;
extern const em__formula em__grad_matmul, em__grad_linear, em__grad_linear_relu;
em_tensor *em__composite_linear(int nin, em_tensor *const *in, const em_attr *attrs);
em_tensor *em__composite_linear_relu(int nin, em_tensor *const *in, const em_attr *attrs);
/* core/ops/index.c */
extern const em_op_def em__def_gather, em__def_scatter_add;
extern const em__formula em__grad_gather, em__grad_scatter_add;
/* core/ops/loss.c */
extern const em_op_def em__def_softmax, em__def_log_softmax, em__def_cross_entropy,
    em__def_cross_entropy_backward;
extern const em__formula em__grad_softmax, em__grad_log_softmax, em__grad_cross_entropy;
em_tensor *em__composite_softmax(int nin, em_tensor *const *in, const em_attr *attrs);
em_tensor *em__composite_log_softmax(int nin, em_tensor *const *in, const em_attr *attrs);
em_tensor *em__composite_cross_entropy(int nin, em_tensor *const *in, const em_attr *attrs);
em_tensor *em__composite_cross_entropy_backward(int nin, em_tensor *const *in,
                                                const em_attr *attrs);
/* Shapes and dtypes of cross_entropy's inputs (3) or cross_entropy_backward's (4). */
int em__check_cross_entropy(const char *fn, int nin, em_tensor *const *in, const em_attr *attrs);

#endif
