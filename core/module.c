/* core/module.c - the module ABI: registered types, building from specs, the module tree,
 * parameters and buffers with state_dict names, train/eval, moving between devices.
 *
 * Not here: layer implementations (plugins/nn), checkpoints (core/checkpoint.c), the summary
 * table (core/summary.c), optimizers (core/optim.c).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "module_internal.h"

/* ---- the type registry -------------------------------------------------------------------- */

typedef struct type_rec {
    const em_module_ops *ops;
    em_plugin_rec *owner;
} type_rec;

static type_rec *types;
static int ntypes, captypes;

int em_register_module(em_registry *reg, const em_module_ops *ops)
{
    if (!ops || ops->struct_size < offsetof(em_module_ops, destroy) || !ops->name || !ops->init ||
        !ops->forward)
        return em_set_error(EM_ERR_INVALID, "em_register_module: incomplete module type");
    if (ops->ninputs < 1 || ops->ninputs > EM_MAX_OP_INPUTS)
        return em_set_error(EM_ERR_INVALID,
                            "em_register_module: '%s' takes %d inputs; a module takes 1 to "
                            "EM_MAX_OP_INPUTS = %d",
                            ops->name, ops->ninputs, EM_MAX_OP_INPUTS);
    if (ops->nparams < 0 || (ops->nparams && !ops->params))
        return em_set_error(EM_ERR_INVALID, "em_register_module: '%s': bad parameters",
                            ops->name);
    for (int i = 0; i < ntypes; i++)
        if (!strcmp(types[i].ops->name, ops->name))
            return em_set_error(EM_ERR_INVALID, "module type '%s' is already registered by %s",
                                ops->name, types[i].owner ? types[i].owner->path : "the core");
    if (ntypes == captypes) {
        int cap = captypes ? captypes * 2 : 32;
        type_rec *t = realloc(types, (size_t)cap * sizeof *t);
        if (!t)
            return em_set_error(EM_ERR_NOMEM, "em_register_module: out of memory");
        types = t;
        captypes = cap;
    }
    types[ntypes].ops = ops;
    types[ntypes++].owner = reg ? reg->rec : NULL;
    return EM_OK;
}

void em__module_types_forget(em_plugin_rec *rec)
{
    int k = 0;
    for (int i = 0; i < ntypes; i++)
        if (types[i].owner != rec)
            types[k++] = types[i];
    ntypes = k;
}

void em__module_types_describe(const em_plugin_rec *r, em_strbuf *sb)
{
    bool first = true;
    for (int i = 0; i < ntypes; i++)
        if (types[i].owner == r) {
            em__sb_printf(sb, "%s%s", first ? (sb->len ? "; modules " : "modules ") : ", ",
                          types[i].ops->name);
            first = false;
        }
}

void em__module_types_free(void)
{
    free(types);
    types = NULL;
    ntypes = captypes = 0;
}

static const em_module_ops *find_type(const char *name)
{
    for (int i = 0; i < ntypes; i++)
        if (!strcmp(types[i].ops->name, name))
            return types[i].ops;
    const char *names[256];
    int n = ntypes < 256 ? ntypes : 256;
    for (int i = 0; i < n; i++)
        names[i] = types[i].ops->name;
    const char *best = em_closest_name(name, names, n);
    if (best)
        em_set_error(EM_ERR_INVALID, "unknown module type '%s'; did you mean '%s'?", name, best);
    else
        em_set_error(EM_ERR_INVALID, "unknown module type '%s' (%d types registered; is the nn "
                                     "plugin loaded? see `ember info`)",
                     name, ntypes);
    return NULL;
}

/* ---- building ------------------------------------------------------------------------------ */

static em_module *build(const em_spec *spec)
{
    const em_module_ops *ops = find_type(em_spec_name(spec));
    if (!ops)
        return NULL;
    em_module *m = calloc(1, sizeof *m);
    if (!m)
        return em_set_error(EM_ERR_NOMEM, "out of memory building %s", ops->name), NULL;
    m->ops = ops;
    m->training = true;
    m->spec = spec;
    if (!(m->args = em_args_bind(spec, ops->nparams, ops->params)))
        goto fail;
    if (ops->state_size && !(m->state = calloc(1, ops->state_size))) {
        em_set_error(EM_ERR_NOMEM, "out of memory building %s", ops->name);
        goto fail;
    }
    if (ops->init(m, m->args) < 0) {
        if (em_last_status() == EM_OK)
            em_set_error(EM_ERR_INVALID, "%s: init failed", ops->name);
        goto fail;
    }
    m->initialised = true;
    return m;
fail:
    em_module_free(m);
    return NULL;
}

em_module *em_module_new(const char *text)
{
    if (em__require_init("em_module_new") < 0)
        return NULL;
    em_spec *spec = em_spec_parse(text, "module spec");
    if (!spec)
        return NULL;
    /* The parameters and temporaries a type's init creates are owned (or released) by the
     * module: none may enter the caller's scope, whose end would release them again. */
    em__api_depth++;
    em_module *m = build(spec);
    em__api_depth--;
    if (!m) {
        em_spec_free(spec);
        return NULL;
    }
    m->owned_spec = spec;
    return m;
}

static void free_named(em__named *v, int n)
{
    for (int i = 0; i < n; i++) {
        free(v[i].name);
        em_release(v[i].t);
    }
    free(v);
}

void em_module_free(em_module *m)
{
    if (!m)
        return;
    for (int i = 0; i < m->noptims; i++)
        em__optimizer_detach(m->optims[i]);
    free(m->optims);
    if (m->initialised && m->ops->destroy)
        m->ops->destroy(m);
    for (int i = 0; i < m->nchildren; i++) {
        em_module_free(m->children[i].m);
        free(m->children[i].name);
    }
    free(m->children);
    free_named(m->params, m->nparams);
    free_named(m->buffers, m->nbuffers);
    free(m->flat);
    em_args_free(m->args);
    free(m->state);
    em_spec_free(m->owned_spec);
    free(m);
}

void em__module_forget_optimizer(em_module *m, em_optimizer *o)
{
    for (int i = 0; m && i < m->noptims; i++)
        if (m->optims[i] == o) {
            m->optims[i] = m->optims[--m->noptims];
            return;
        }
}

int em__module_attach_optimizer(em_module *m, em_optimizer *o)
{
    em_optimizer **p = realloc(m->optims, (size_t)(m->noptims + 1) * sizeof *p);
    if (!p)
        return em_set_error(EM_ERR_NOMEM, "out of memory");
    m->optims = p;
    m->optims[m->noptims++] = o;
    return EM_OK;
}

/* ---- for implementations ------------------------------------------------------------------- */

void *em_module_private(em_module *m) { return m ? m->state : NULL; }
void *em_module_state(em_module *m) { return em_module_private(m); }   /* deprecated alias */
const em_args *em_module_args(const em_module *m) { return m ? m->args : NULL; }

static void invalidate(em_module *m)
{
    for (; m; m = m->parent) {
        free(m->flat);
        m->flat = NULL;
    }
}

static int add_named(em_module *m, em__named **v, int *n, const char *name, em_tensor *t,
                     const char *what)
{
    if (!t)
        return em__null_arg(what, name);
    for (int i = 0; i < *n; i++)
        if (!strcmp((*v)[i].name, name))
            return em_set_error(EM_ERR_INVALID, "%s: '%s' is already registered", m->ops->name, name);
    em__named *p = realloc(*v, (size_t)(*n + 1) * sizeof *p);
    if (!p)
        return em_set_error(EM_ERR_NOMEM, "out of memory");
    *v = p;
    if (!(p[*n].name = strdup(name)))
        return em_set_error(EM_ERR_NOMEM, "out of memory");
    em_retain(t);
    p[(*n)++].t = t;
    invalidate(m);
    return EM_OK;
}

int em_module_add_parameter(em_module *m, const char *name, em_tensor *t)
{
    if (!m || !name)
        return em__null_arg("em_module_add_parameter", "m");
    if (t && em_dtype_is_float(t->dtype) && !em_is_leaf(t))
        return em_set_error(EM_ERR_INVALID, "%s: parameter '%s' must be a leaf tensor",
                            m->ops->name, name);
    int rc = add_named(m, &m->params, &m->nparams, name, t, "em_module_add_parameter");
    if (rc == EM_OK && em_dtype_is_float(t->dtype))
        t->requires_grad = true;
    return rc;
}

int em_module_add_buffer(em_module *m, const char *name, em_tensor *t)
{
    if (!m || !name)
        return em__null_arg("em_module_add_buffer", "m");
    return add_named(m, &m->buffers, &m->nbuffers, name, t, "em_module_add_buffer");
}

static em_tensor *find_named(const em__named *v, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (!strcmp(v[i].name, name))
            return v[i].t;
    return NULL;
}

em_tensor *em_module_parameter(const em_module *m, const char *name)
{
    return m && name ? find_named(m->params, m->nparams, name) : NULL;
}

em_tensor *em_module_buffer(const em_module *m, const char *name)
{
    return m && name ? find_named(m->buffers, m->nbuffers, name) : NULL;
}

em_module *em_module_add_child(em_module *m, const char *name, const em_spec *spec)
{
    if (!m || !name || !spec)
        return em__null_arg("em_module_add_child", "m"), NULL;
    for (int i = 0; i < m->nchildren; i++)
        if (!strcmp(m->children[i].name, name))
            return em_set_error(EM_ERR_INVALID, "%s: child '%s' already exists", m->ops->name,
                                name), NULL;
    em__child *p = realloc(m->children, (size_t)(m->nchildren + 1) * sizeof *p);
    if (!p)
        return em_set_error(EM_ERR_NOMEM, "out of memory"), NULL;
    m->children = p;
    em_module *c = build(spec);
    if (!c)
        return NULL;
    if (!(p[m->nchildren].name = strdup(name))) {
        em_module_free(c);
        return em_set_error(EM_ERR_NOMEM, "out of memory"), NULL;
    }
    c->parent = m;
    c->training = m->training;
    p[m->nchildren++].m = c;
    invalidate(m);
    return c;
}

int em_module_child_count(const em_module *m) { return m ? m->nchildren : 0; }

em_module *em_module_child(const em_module *m, int i)
{
    return m && i >= 0 && i < m->nchildren ? m->children[i].m : NULL;
}

const char *em_module_child_name(const em_module *m, int i)
{
    return m && i >= 0 && i < m->nchildren ? m->children[i].name : NULL;
}

/* ---- forward -------------------------------------------------------------------------------- */

static em_tensor *forward(em_module *m, int nin, em_tensor *const *in)
{
    if (!m)
        return em__null_arg("forward", "module"), NULL;
    if (nin != m->ops->ninputs) {
        em_set_error(EM_ERR_INVALID, "%s: takes %d input%s, got %d", m->ops->name,
                     m->ops->ninputs, m->ops->ninputs == 1 ? "" : "s", nin);
        return NULL;
    }
    for (int i = 0; i < nin; i++)
        if (!in[i])
            return em__null_arg(m->ops->name, "input"), NULL;
    em_tensor *y = m->ops->forward(m, nin, in);
    if (y)
        em__summary_record(m, y);
    else if (em_last_status() == EM_OK)
        em_set_error(EM_ERR_INTERNAL, "%s: forward returned NULL without an error", m->ops->name);
    return y;
}

em_tensor *em_forward(em_module *m, em_tensor *x) { EM_WRAP(forward(m, 1, &x)); }

void em_module_record_output(em_module *child, em_tensor *y)
{
    if (child && y)
        em__summary_record(child, y);
}

em_tensor *em_forward_n(em_module *m, int nin, em_tensor *const *in)
{
    EM_WRAP(forward(m, nin, in));
}

em_tensor *em_loss(em_module *loss, em_tensor *output, em_tensor *target)
{
    em_tensor *in[2] = {output, target};
    EM_WRAP(forward(loss, 2, in));
}

/* ---- tree queries ---------------------------------------------------------------------------- */

void em_module_train(em_module *m, bool on)
{
    if (!m)
        return;
    m->training = on;
    for (int i = 0; i < m->nchildren; i++)
        em_module_train(m->children[i].m, on);
}

bool em_module_is_training(const em_module *m) { return m && m->training; }
const char *em_module_type(const em_module *m) { return m ? m->ops->name : NULL; }

char *em_module_str(const em_module *m)
{
    if (!m)
        return em__null_arg("em_module_str", "m"), NULL;
    return em_args_str_repr(m->args, m->ops->name);
}

/* One module at indentation `depth`: "Type(extra)" for a leaf, else "Type(" with the extra
 * repr and one "(name): child" line per child, then ")". */
static void repr_into(em_strbuf *sb, const em_module *m, int depth)
{
    char extra[512] = "";
    bool has_extra = m->ops->struct_size > offsetof(em_module_ops, extra_repr) &&
                     m->ops->extra_repr;
    if (has_extra) {
        m->ops->extra_repr(m, extra, sizeof extra);
        extra[sizeof extra - 1] = '\0';
    } else if (m->nchildren == 0) {
        char *spec = em_args_str_repr(m->args, m->ops->name);
        em__sb_printf(sb, "%s", spec ? spec : m->ops->name);
        free(spec);
        return;
    }
    em__sb_printf(sb, "%s(", m->ops->name);
    if (m->nchildren == 0) {
        em__sb_printf(sb, "%s)", extra);
        return;
    }
    if (extra[0])
        em__sb_printf(sb, "\n%*s%s", 2 * (depth + 1), "", extra);
    for (int i = 0; i < m->nchildren; i++) {
        em__sb_printf(sb, "\n%*s(%s): ", 2 * (depth + 1), "", m->children[i].name);
        repr_into(sb, m->children[i].m, depth + 1);
    }
    em__sb_printf(sb, "\n%*s)", 2 * depth, "");
}

char *em_module_repr(const em_module *m)
{
    if (!m)
        return em__null_arg("em_module_repr", "m"), NULL;
    em_strbuf sb = {0};
    repr_into(&sb, m, 0);
    char *s = em__sb_take(&sb);
    if (!s)
        em_set_error(EM_ERR_NOMEM, "em_module_repr: out of memory");
    return s;
}

void em_module_print(const em_module *m)
{
    char *s = em_module_repr(m);
    if (s)
        printf("%s\n", s);
    else
        fprintf(stderr, "ember: error: %s\n", em_last_error());
    free(s);
}

/* The flattened state (parameters first, then buffers, each in pre-order with prefixed
 * names), rebuilt after any structural change. */
static void collect(const em_module *m, const char *prefix, em__flat *out, int *n, bool params)
{
    const em__named *v = params ? m->params : m->buffers;
    int nv = params ? m->nparams : m->nbuffers;
    for (int i = 0; i < nv; i++) {
        if (out) {
            snprintf(out[*n].name, sizeof out[*n].name, "%s%s", prefix, v[i].name);
            out[*n].t = v[i].t;
        }
        (*n)++;
    }
    for (int i = 0; i < m->nchildren; i++) {
        char sub[sizeof out->name];
        snprintf(sub, sizeof sub, "%s%s.", prefix, m->children[i].name);
        collect(m->children[i].m, sub, out, n, params);
    }
}

static const em__flat *flat(const em_module *cm, int *np, int *nall)
{
    em_module *m = (em_module *)cm;
    if (!m->flat) {
        int a = 0, b = 0;
        collect(m, "", NULL, &a, true);
        collect(m, "", NULL, &b, false);
        m->flat = calloc((size_t)(a + b + 1), sizeof *m->flat);
        if (!m->flat)
            return NULL;
        m->nflat_params = 0;
        collect(m, "", m->flat, &m->nflat_params, true);
        m->nflat = m->nflat_params;
        collect(m, "", m->flat, &m->nflat, false);
    }
    *np = m->nflat_params;
    *nall = m->nflat;
    return m->flat;
}

int em_module_param_count(const em_module *m)
{
    int np = 0, na = 0;
    return m && flat(m, &np, &na) ? np : 0;
}

int em_module_state_count(const em_module *m)
{
    int np = 0, na = 0;
    return m && flat(m, &np, &na) ? na : 0;
}

static const em__flat *flat_at(const em_module *m, int i, bool params_only)
{
    int np = 0, na = 0;
    const em__flat *f = m ? flat(m, &np, &na) : NULL;
    int n = params_only ? np : na;
    return f && i >= 0 && i < n ? &f[i] : NULL;
}

const char *em_module_param_name(const em_module *m, int i)
{
    const em__flat *f = flat_at(m, i, true);
    return f ? f->name : NULL;
}

em_tensor *em_module_param(const em_module *m, int i)
{
    const em__flat *f = flat_at(m, i, true);
    return f ? f->t : NULL;
}

const char *em_module_state_name(const em_module *m, int i)
{
    const em__flat *f = flat_at(m, i, false);
    return f ? f->name : NULL;
}

em_tensor *em_module_state_tensor(const em_module *m, int i)
{
    const em__flat *f = flat_at(m, i, false);
    return f ? f->t : NULL;
}

em_tensor *em_module_get(const em_module *m, const char *name)
{
    for (int i = 0; name && i < em_module_state_count(m); i++)
        if (!strcmp(em_module_state_name(m, i), name))
            return em_module_state_tensor(m, i);
    em_set_error(EM_ERR_INVALID, "%s has no parameter or buffer named '%s'",
                 m ? m->ops->name : "module", name ? name : "(null)");
    return NULL;
}

int64_t em_module_numel(const em_module *m, bool trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < em_module_param_count(m); i++) {
        em_tensor *t = em_module_param(m, i);
        if (!trainable_only || t->requires_grad)
            n += t->numel;
    }
    return n;
}

int em_module_requires_grad_(em_module *m, bool on)
{
    for (int i = 0; i < em_module_param_count(m); i++) {
        em_tensor *t = em_module_param(m, i);
        if (em_dtype_is_float(t->dtype)) {
            int rc = em_requires_grad_(t, on);
            if (rc < 0)
                return rc;
        }
    }
    return EM_OK;
}

int em_module_zero_grad(em_module *m)
{
    for (int i = 0; i < em_module_param_count(m); i++)
        em_grad_clear(em_module_param(m, i));
    return EM_OK;
}

/* ---- devices ----------------------------------------------------------------------------- */

em_device em_module_device(const em_module *m)
{
    em_tensor *t = em_module_state_count(m) ? em_module_state_tensor(m, 0) : NULL;
    return t ? em_device_of(t) : em_default_device();
}

int em_module_to(em_module *m, em_device d)
{
    if (!m)
        return em__null_arg("em_module_to", "m");
    d = em__resolve_device(d);
    int rc = em__device_check("em_module_to", d);
    for (int i = 0; rc == EM_OK && i < em_module_state_count(m); i++) {
        em_tensor *t = em_module_state_tensor(m, i);
        rc = em__tensor_move(t, d);
        if (rc == EM_OK && t->ag && t->ag->grad)
            rc = em__tensor_move(t->ag->grad, d);
    }
    for (int i = 0; rc == EM_OK && i < m->noptims; i++)
        rc = em__optimizer_move(m->optims[i], d);
    return rc;
}
