/* core/ops/table.c - the core's op table: registers the families' definitions at em_init
 * (the order fixes the EM__OP_* ids in internal.h and the composites' ids), and finds an op's
 * backward formula (the core's own, or the plugin's backward).
 *
 * The definitions, composites and formulas themselves are in their family's file in core/ops/.
 */
#include "ops_internal.h"

/* ---- registration -------------------------------------------------------------- */

int em__op_mean, em__op_softmax, em__op_log_softmax, em__op_linear, em__op_cross_entropy,
    em__op_cross_entropy_backward, em__op_linear_relu, em__op_threshold_backward;

int em__register_builtin_ops(void)
{
    /* Order matches the EM__OP_* enum. */
    static const em_op_def *const defs[] = {
        &em__def_copy,    &em__def_fill,    &em__def_random,  &em__def_neg,
        &em__def_abs,     &em__def_exp,     &em__def_log,     &em__def_sqrt,
        &em__def_sin,     &em__def_cos,     &em__def_tanh,    &em__def_sigmoid,
        &em__def_relu,    &em__def_add,     &em__def_sub,     &em__def_mul,
        &em__def_div,     &em__def_pow,     &em__def_maximum, &em__def_minimum,
        &em__def_eq,      &em__def_ne,      &em__def_lt,      &em__def_le,
        &em__def_gt,      &em__def_ge,      &em__def_where,   &em__def_sum,
        &em__def_amax,    &em__def_argmax,  &em__def_matmul,  &em__def_gather,
        &em__def_scatter_add,
    };
    _Static_assert(sizeof defs / sizeof defs[0] == EM__OP_BUILTIN_COUNT, "builtin op table");
    for (size_t i = 0; i < sizeof defs / sizeof defs[0]; i++) {
        int id = em_register_op(NULL, defs[i]);
        if (id < 0)
            return id;
        EM_ASSERT(id == (int)i);
    }
    static const em_op_def *const composites[] = {
        &em__def_mean,          &em__def_softmax,
        &em__def_log_softmax,   &em__def_linear,
        &em__def_cross_entropy, &em__def_cross_entropy_backward,
        &em__def_linear_relu,   &em__def_threshold_backward,
    };
    int *ids[] = {&em__op_mean,          &em__op_softmax,
                  &em__op_log_softmax,   &em__op_linear,
                  &em__op_cross_entropy, &em__op_cross_entropy_backward,
                  &em__op_linear_relu,   &em__op_threshold_backward};
    _Static_assert(sizeof ids / sizeof ids[0] == sizeof composites / sizeof composites[0],
                   "composite ids");
    for (size_t i = 0; i < sizeof composites / sizeof composites[0]; i++)
        if ((*ids[i] = em_register_op(NULL, composites[i])) < 0)
            return *ids[i];
    return em__register_optim_ops();
}

/* ---- backward formulas ---------------------------------------------------------------------- */

static const em__formula *const builtin[EM__OP_BUILTIN_COUNT] = {
    [EM__OP_NEG] = &em__grad_neg,
    [EM__OP_ABS] = &em__grad_abs,
    [EM__OP_EXP] = &em__grad_exp,
    [EM__OP_LOG] = &em__grad_log,
    [EM__OP_SQRT] = &em__grad_sqrt,
    [EM__OP_SIN] = &em__grad_sin,
    [EM__OP_COS] = &em__grad_cos,
    [EM__OP_TANH] = &em__grad_tanh,
    [EM__OP_SIGMOID] = &em__grad_sigmoid,
    [EM__OP_RELU] = &em__grad_relu,
    [EM__OP_ADD] = &em__grad_add,
    [EM__OP_SUB] = &em__grad_sub,
    [EM__OP_MUL] = &em__grad_mul,
    [EM__OP_DIV] = &em__grad_div,
    [EM__OP_POW] = &em__grad_pow,
    [EM__OP_MAXIMUM] = &em__grad_maximum,
    [EM__OP_MINIMUM] = &em__grad_minimum,
    [EM__OP_WHERE] = &em__grad_where,
    [EM__OP_SUM] = &em__grad_sum,
    [EM__OP_AMAX] = &em__grad_amax,
    [EM__OP_MATMUL] = &em__grad_matmul,
    [EM__OP_GATHER] = &em__grad_gather,
    [EM__OP_SCATTER_ADD] = &em__grad_scatter_add,
};

/* PyTorch names some nodes by the overload that ran: sum() over everything is SumBackward0,
 * sum(dim) SumBackward1; likewise mean; batched matmul is BmmBackward0; a scalar exponent
 * gives PowBackward0. */
const char *em__formula_name(const em__formula *f, int op, int nin, em_tensor *const *in,
                             const em_attr *attrs, const em_tensor *out)
{
    bool reduction = op == EM__OP_SUM || op == em__op_mean;   /* attrs: axes, keepdim */
    if (reduction && !attrs[1].i && attrs[0].n == in[0]->ndim)
        return op == EM__OP_SUM ? "SumBackward0" : "MeanBackward0";
    if (op == EM__OP_MATMUL && out->ndim > 2)
        return "BmmBackward0";
    if (op == EM__OP_POW && nin == 2 && in[1]->wrapped_number)
        return "PowBackward0";
    return f->name;
}

/* Ops from plugins: their backward gets every saved input and the output. */
static int b_plugin(em_node *n, em_tensor *g, em_tensor **gin)
{
    em_op_rec *op = em__op(n->op);
    if (!op || !op->def.backward)
        return em_set_error(EM_ERR_STATE, "%s: the op's plugin was unloaded", n->name);
    em_tensor *in[EM_MAX_OP_INPUTS];
    for (int i = 0; i < n->nin; i++) {
        SAVED(t, i);
        in[i] = t;
    }
    SAVED(out, n->nin);
    const em_attr *attrs = n->all_attrs ? n->all_attrs : n->attrs;
    int rc = op->def.backward(n->nin, in, out, attrs, g, gin);
    if (rc < 0)
        return rc;
    for (int i = 0; i < n->nin; i++)
        if (!n->in[i].needs_grad) {
            em_release(gin[i]);
            gin[i] = NULL;
        }
    return check(gin, n->nin, n);
}

const em__formula *em__formula_for(int op)
{
    static _Thread_local em__formula plugin;
    if (op >= 0 && op < EM__OP_BUILTIN_COUNT)
        return builtin[op];
    em_op_rec *rec = em__op(op);
    if (rec && rec->def.backward) {
        plugin.name = rec->grad_name;
        plugin.fn = b_plugin;
        plugin.saves = EM__SAVE_ALL_IN | EM__SAVE_OUT;
        return &plugin;
    }
    if (op == em__op_mean)
        return &em__grad_mean;
    if (op == em__op_softmax)
        return &em__grad_softmax;
    if (op == em__op_log_softmax)
        return &em__grad_log_softmax;
    if (op == em__op_linear)
        return &em__grad_linear;
    if (op == em__op_linear_relu)
        return &em__grad_linear_relu;
    if (op == em__op_cross_entropy)
        return &em__grad_cross_entropy;
    return NULL;
}
