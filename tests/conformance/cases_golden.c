/* tests/conformance/cases_golden.c - cases whose expected values come from PyTorch
 * (golden/golden_data.h, written by golden/gen_golden.py): softmax, log_softmax, matmul,
 * sigmoid, tanh, pow, mean and linear with bias, forward and gradients.
 *
 * The inputs are exact in every float dtype, so each case runs in all four; the tolerance is
 * the dtype's (widened as for any op that accumulates). These pin Ember to PyTorch itself,
 * where the other tables pin it to C's libm and to definitions written out in float64.
 */
#include <string.h>

#include "conformance.h"

typedef struct golden_shape {
    int ndim;
    int64_t shape[4];
    int off;
} golden_shape;

typedef struct golden_entry {
    const char *op, *label;
    int ndims;
    int dims[3];
    int nin;
    golden_shape in[3];
    golden_shape out;
    int g;
    int grad[3];
} golden_entry;

#include "golden/golden_data.h"

#define NENTRIES ((int)(sizeof golden_entries / sizeof golden_entries[0]))

static cf_golden goldens[NENTRIES];

static em_tensor *call_golden(const cf_case *c, em_tensor *const *in)
{
    const char *op = c->op->name;
    if (!strcmp(op, "softmax"))
        return em_softmax(in[0], c->p.dims[0]);
    if (!strcmp(op, "log_softmax"))
        return em_log_softmax(in[0], c->p.dims[0]);
    if (!strcmp(op, "matmul"))
        return em_matmul(in[0], in[1]);
    if (!strcmp(op, "sigmoid"))
        return em_sigmoid(in[0]);
    if (!strcmp(op, "tanh"))
        return em_tanh(in[0]);
    if (!strcmp(op, "pow"))
        return em_pow(in[0], in[1]);
    if (!strcmp(op, "mean"))
        return em_mean(in[0], c->p.ndims, c->p.dims, false);
    if (!strcmp(op, "linear"))
        return em_linear(in[0], in[1], in[2]);
    em_set_error(EM_ERR_INTERNAL, "golden: no call for op '%s'", op);
    return NULL;
}

#define GOLDEN_OP(name_)                                                                   \
    {name_, 0, 0, call_golden, 0, 0, 0, EM_DTYPES_FLOAT, CF_GRAD | CF_ACCUM, CF_OUT_PROMOTE, \
     {{0}}}

static const cf_op golden_ops[] = {GOLDEN_OP("softmax"), GOLDEN_OP("log_softmax"),
                                   GOLDEN_OP("matmul"),  GOLDEN_OP("sigmoid"),
                                   GOLDEN_OP("tanh"),    GOLDEN_OP("pow"),
                                   GOLDEN_OP("mean"),    GOLDEN_OP("linear")};

void cf_family_golden(cf_list *l)
{
    for (int e = 0; e < NENTRIES; e++) {
        const golden_entry *g = &golden_entries[e];
        const cf_op *op = NULL;
        for (size_t k = 0; k < sizeof golden_ops / sizeof golden_ops[0]; k++)
            if (!strcmp(golden_ops[k].name, g->op))
                op = &golden_ops[k];
        if (!op)
            continue;
        cf_golden *gd = &goldens[e];
        memset(gd, 0, sizeof *gd);
        gd->g = golden_values + g->g;
        gd->out_ndim = g->out.ndim;
        memcpy(gd->out_shape, g->out.shape, sizeof g->out.shape);
        gd->out = golden_values + g->out.off;
        cf_case c = {.op = op, .nin = g->nin, .golden = gd};
        for (int i = 0; i < g->nin; i++) {
            c.in[i].ndim = g->in[i].ndim;
            memcpy(c.in[i].shape, g->in[i].shape, sizeof g->in[i].shape);
            c.in[i].fixed = golden_values + g->in[i].off;
            gd->grad[i] = golden_values + g->grad[i];
        }
        c.p.ndims = g->ndims;
        memcpy(c.p.dims, g->dims, sizeof g->dims);
        cf_label(&c, "%s", g->label);
        cf_add(l, &c);
    }
}
