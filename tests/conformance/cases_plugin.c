/* tests/conformance/cases_plugin.c - the cases plugins register for their own ops
 * (em_register_conformance_case in plugin.h), turned into rows of the table.
 *
 * Each registered case runs three times: with contiguous inputs, with every input a strided
 * view (every other element of the last dim) and, when an input has two dims or more, with
 * those inputs transposed. The reference is the case's elementwise function when it gives
 * one, else the op run on the CPU backend in float64; the expected dtype is the CPU's.
 */
#include <stdlib.h>
#include <string.h>

#include "conformance.h"

/* What a plugin case needs beyond the row itself: its op entry and input domains. */
typedef struct plugin_op {
    cf_op op;
    cf_dom dom[CF_MAX_IN];
} plugin_op;

static plugin_op *owned;
static int nowned;

static em_tensor *call_plugin(const cf_case *c, em_tensor *const *in)
{
    return em_op_call(c->op->name, c->nin, in, c->p.nattrs, c->p.attrs);
}

static void add_variant(cf_list *l, const cf_case *base, int layout, const char *suffix)
{
    cf_case c = *base;
    bool any = false;
    for (int i = 0; i < c.nin; i++) {
        int need = layout == CF_T ? 2 : 1;
        if (c.in[i].ndim >= need) {
            c.in[i].layout = (unsigned char)layout;
            any = true;
        }
    }
    if (!any)
        return;
    size_t n = strlen(c.label);
    snprintf(c.label + n, sizeof c.label - n, ", %s", suffix);
    cf_add(l, &c);
}

void cf_family_plugins(cf_list *l)
{
    free(owned);
    owned = NULL;
    nowned = 0;
    if (!em_is_initialized())
        return;
    int n = em_conformance_case_count();
    if (n <= 0 || !(owned = calloc((size_t)n, sizeof *owned)))
        return;
    for (int i = 0; i < n; i++) {
        const char *plugin = NULL;
        const em_conformance_case *pc = em_conformance_case_get(i, &plugin);
        if (!pc)
            continue;
        plugin_op *po = &owned[nowned++];
        po->op.name = pc->op;
        po->op.call = call_plugin;
        po->op.dtypes = pc->dtypes ? pc->dtypes : EM_DTYPES_FLOAT;
        po->op.flags = (pc->flags & EM_CONF_DIFFERENTIABLE) ? CF_GRAD : 0;
        po->op.out = CF_OUT_ASK_CPU;
        cf_case c = {.op = &po->op, .nin = pc->nin, .rtol = pc->rtol, .atol = pc->atol,
                     .plugin = plugin, .elem_ref = pc->reference};
        for (int k = 0; k < pc->nin; k++) {
            const em_conf_input *pi = &pc->in[k];
            double lo = pi->low, hi = pi->high;
            if (lo == 0 && hi == 0) {
                lo = -2;
                hi = 2;
            }
            po->dom[k] = (cf_dom){em_dtype_is_float(pi->dtype) || !pi->dtype ? CF_UNIFORM
                                                                             : CF_WHOLE,
                                  lo, hi, lo, hi - 1};
            c.in[k].ndim = pi->ndim;
            memcpy(c.in[k].shape, pi->shape, sizeof c.in[k].shape);
            c.in[k].dtype = pi->dtype;
            c.in[k].dom = &po->dom[k];
        }
        c.p.nattrs = pc->nattrs;
        c.p.attrs = pc->attrs;
        cf_label(&c, "%s%s(plugin %s)", pc->label && pc->label[0] ? pc->label : "",
                 pc->label && pc->label[0] ? " " : "", plugin && plugin[0] ? plugin : "?");
        cf_add(l, &c);
        add_variant(l, &c, CF_STEP, "strided");
        add_variant(l, &c, CF_T, "transposed");
    }
}

void cf_family_plugins_free(void)
{
    free(owned);
    owned = NULL;
    nowned = 0;
}
