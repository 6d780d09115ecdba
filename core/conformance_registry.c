/* core/conformance_registry.c - conformance cases that plugins register for their own ops.
 *
 * The conformance runner (`ember conformance`) has a table of cases for the core's ops; an op
 * plugin adds cases for the ops it brings with em_register_conformance_case() during init, and
 * the runner reads them back with em_conformance_case_get(). This file only stores them: each
 * case is deep-copied (strings, attributes), so nothing points into a plugin after dlclose.
 * It runs no case and knows nothing about tolerances; that is the runner's job.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

typedef struct conf_rec {
    em_conformance_case c;      /* c.op, c.label and c.attrs point into this record's copies */
    char *plugin;               /* name of the plugin that registered it ("" for none) */
    em_attr *attrs;
} conf_rec;

static conf_rec *cases;
static int ncases, capcases;

static void rec_free(conf_rec *r)
{
    free((char *)r->c.op);
    free((char *)r->c.label);
    free(r->attrs);
    free(r->plugin);
}

static char *dup_or_empty(const char *s)
{
    return strdup(s ? s : "");
}

int em_register_conformance_case(em_registry *reg, const em_conformance_case *c)
{
    static const size_t required = offsetof(em_conformance_case, dtypes);
    if (!c || c->struct_size < required || !c->op || !c->op[0])
        return em_set_error(EM_ERR_INVALID,
                            "em_register_conformance_case: incomplete case (struct_size %zu)",
                            c ? c->struct_size : (size_t)0);
    if (c->nin < 0 || c->nin > EM_CONF_MAX_INPUTS || c->nattrs < 0 || c->nattrs > EM_MAX_OP_ATTRS ||
        (c->nattrs > 0 && !c->attrs))
        return em_set_error(EM_ERR_INVALID,
                            "em_register_conformance_case: '%s': bad input or attribute count",
                            c->op);
    for (int i = 0; i < c->nin; i++) {
        const em_conf_input *in = &c->in[i];
        bool ok = in->ndim >= 0 && in->ndim <= EM_MAX_DIMS && in->dtype >= EM_DTYPE_UNSPEC &&
                  in->dtype < EM_DTYPE_COUNT && !(in->high < in->low);
        for (int d = 0; ok && d < in->ndim; d++)
            ok = in->shape[d] >= 0;
        if (!ok)
            return em_set_error(EM_ERR_INVALID,
                                "em_register_conformance_case: '%s': input %d has a bad shape, "
                                "dtype or value range",
                                c->op, i);
    }
    if (ncases == capcases) {
        int cap = capcases ? capcases * 2 : 16;
        conf_rec *p = realloc(cases, (size_t)cap * sizeof *p);
        if (!p)
            return em_set_error(EM_ERR_NOMEM, "em_register_conformance_case: out of memory");
        cases = p;
        capcases = cap;
    }
    conf_rec r;
    memset(&r, 0, sizeof r);
    /* A plugin built against an older header passes a shorter struct: the rest stays 0. */
    size_t n = c->struct_size < sizeof r.c ? c->struct_size : sizeof r.c;
    memcpy(&r.c, c, n);
    r.c.struct_size = sizeof r.c;
    r.c.op = dup_or_empty(c->op);
    r.c.label = dup_or_empty(c->label);
    r.plugin = dup_or_empty(reg && reg->rec->name ? reg->rec->name : "");
    if (c->nattrs > 0 && (r.attrs = malloc((size_t)c->nattrs * sizeof *r.attrs)))
        memcpy(r.attrs, c->attrs, (size_t)c->nattrs * sizeof *r.attrs);
    r.c.attrs = r.attrs;
    if (!r.c.op || !r.c.label || !r.plugin || (c->nattrs > 0 && !r.attrs)) {
        rec_free(&r);
        return em_set_error(EM_ERR_NOMEM, "em_register_conformance_case: out of memory");
    }
    cases[ncases++] = r;
    return EM_OK;
}

int em_conformance_case_count(void) { return ncases; }

const em_conformance_case *em_conformance_case_get(int i, const char **plugin)
{
    if (i < 0 || i >= ncases) {
        em_set_error(EM_ERR_INVALID, "em_conformance_case_get: no case %d (%d registered)", i,
                     ncases);
        return NULL;
    }
    if (plugin)
        *plugin = cases[i].plugin;
    return &cases[i].c;
}

/* Drops the cases of a plugin whose init failed (the loader drops its ops too). */
void em__conformance_forget(const char *plugin)
{
    if (!plugin)
        return;
    int k = 0;
    for (int i = 0; i < ncases; i++) {
        if (strcmp(cases[i].plugin, plugin) == 0)
            rec_free(&cases[i]);
        else
            cases[k++] = cases[i];
    }
    ncases = k;
}

void em__conformance_free(void)
{
    for (int i = 0; i < ncases; i++)
        rec_free(&cases[i]);
    free(cases);
    cases = NULL;
    ncases = capcases = 0;
}
