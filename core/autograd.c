/* core/autograd.c - the autograd graph, with PyTorch's semantics: tensors' autograd metadata,
 * nodes, saved tensors, recording ops, views, casts and transfers into the graph, and
 * em_detach (a result outside it).
 *
 * Recording: when grad mode is on and an op has an input that requires grad, the dispatcher
 * calls em__autograd_record(), which creates a node named as PyTorch names it, with an edge
 * per input (to the input's grad_fn, or to the AccumulateGrad node of a leaf) and the tensors
 * its backward formula needs (saved as data-only aliases with their version).
 *
 * Not here: the backward engine (core/autograd_engine.c), the public flags, accessors, hooks
 * and grad mode (core/autograd_api.c), the formulas (core/ops/, beside each op) and gradcheck
 * (core/gradcheck.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* ---- metadata ------------------------------------------------------------------------ */

em_autograd_meta *em__autograd_meta(em_tensor *t)
{
    if (!t->ag && !(t->ag = calloc(1, sizeof *t->ag)))
        em_set_error(EM_ERR_NOMEM, "autograd: out of memory recording a tensor's history");
    return t->ag;
}

bool em__autograd_is_leaf(const em_tensor *t) { return !t->ag || !t->ag->grad_fn; }

int em__set_requires_grad(const char *fn, em_tensor *t, bool on)
{
    if (on && !em_dtype_is_float(t->dtype))
        return em_set_error(EM_ERR_INVALID,
                            "%s: only floating point tensors can require gradients, got %s", fn,
                            em_dtype_name(t->dtype));
    if (!em__autograd_is_leaf(t))
        return em_set_error(EM_ERR_INVALID,
                            "%s: you can only change requires_grad flags of leaf variables "
                            "(this tensor has grad_fn=<%s>); use em_detach() for a tensor that "
                            "does not require grad",
                            fn, t->ag->grad_fn->name);
    t->requires_grad = on;
    return EM_OK;
}

/* In-place writes into a leaf that requires grad would corrupt what backward computes, and a
 * view's history cannot be rewritten without its base's. */
int em__check_inplace(const char *fn, em_tensor *a)
{
    if (!a->requires_grad || !em__grad_mode())
        return EM_OK;
    if (em__autograd_is_leaf(a))
        return em_set_error(EM_ERR_INVALID,
                            "%s: a leaf tensor that requires grad is being used in an in-place "
                            "operation",
                            fn);
    em_node *fn0 = a->ag->grad_fn;
    if (a->ag->is_view && fn0->nin == 1 && fn0->in[0].next && fn0->in[0].next->leaf)
        return em_set_error(EM_ERR_INVALID,
                            "%s: a view of a leaf tensor that requires grad is being used in an "
                            "in-place operation",
                            fn);
    if (a->ag->is_view)
        return em_set_error(EM_ERR_UNSUPPORTED,
                            "%s: in-place operations on a view of a tensor that requires grad "
                            "are not supported; apply the op to the base tensor or clone the "
                            "view first",
                            fn);
    return EM_OK;
}

void em__autograd_free(em_tensor *t)
{
    em_autograd_meta *m = t->ag;
    t->ag = NULL;
    if (m->grad_fn && m->grad_fn->owner == m)
        m->grad_fn->owner = NULL;
    if (m->accumulator && m->accumulator->leaf == t)
        m->accumulator = NULL;   /* cannot happen while the accumulator holds t; defensive */
    em_release(m->grad);
    if (m->grad_fn)
        em__node_release(m->grad_fn);
    free(m);
}

/* ---- nodes ---------------------------------------------------------------------------- */

static em_node *node_new(const char *name, em__backward_fn fn, int op, int nin)
{
    em_node *n = calloc(1, sizeof *n + (size_t)nin * sizeof n->in[0]);
    if (!n) {
        em_set_error(EM_ERR_NOMEM, "autograd: out of memory recording %s", name);
        return NULL;
    }
    atomic_init(&n->refcount, 1);
    n->name = name;
    n->backward = fn;
    n->op = op;
    n->nin = nin;
    return n;
}

static void node_retain(em_node *n) { atomic_fetch_add_explicit(&n->refcount, 1, memory_order_relaxed); }

/* Releases without recursion: a chain of 100,000 nodes dies in a loop, not 100,000 frames.
 * The nodes waiting to be freed are linked through their own `dying` field (a node whose count
 * reached zero belongs to nobody else), so releasing needs no memory and cannot fail. */
void em__node_release(em_node *n)
{
    if (!n)
        return;
    int prev = atomic_fetch_sub_explicit(&n->refcount, 1, memory_order_acq_rel);
    EM_ASSERT(prev > 0);
    if (prev != 1)
        return;
    n->dying = NULL;
    for (em_node *x = n; x;) {
        for (int i = 0; i < x->nsaved; i++)
            em_release(x->saved[i]);
        em_release(x->buffer);
        free(x->all_attrs);
        if (x->owner)
            x->owner->grad_fn = NULL;   /* only reachable when the owner is being freed */
        if (x->leaf) {
            if (x->leaf->ag && x->leaf->ag->accumulator == x)
                x->leaf->ag->accumulator = NULL;
            em_release(x->leaf);
        }
        em_node *next = x->dying;
        for (int i = 0; i < x->nin; i++) {
            em_node *in = x->in[i].next;
            if (!in)
                continue;
            prev = atomic_fetch_sub_explicit(&in->refcount, 1, memory_order_acq_rel);
            EM_ASSERT(prev > 0);
            if (prev == 1) {
                in->dying = next;
                next = in;
            }
        }
        free(x);
        x = next;
    }
}

/* A data-only alias of t: same storage and layout, no autograd, so saving an op's own output
 * does not create a reference cycle. */
static em_tensor *alias(em_tensor *t)
{
    return em__tensor_make(t->storage, t->dtype, t->ndim, t->shape, t->strides, t->offset);
}

static int save(em_node *n, em_tensor *t)
{
    EM_ASSERT(n->nsaved < EM__NODE_MAX_SAVED);
    em_tensor *a = alias(t);
    if (!a)
        return em_last_status();
    n->saved[n->nsaved] = a;
    n->saved_version[n->nsaved] = em_tensor_version(t);
    n->nsaved++;
    return EM_OK;
}

em_tensor *em__saved(em_node *n, int i)
{
    if (n->saved_freed) {
        em_set_error(EM_ERR_STATE,
                     "%s: trying to backward through the graph a second time (or to use saved "
                     "tensors after they were freed); pass retain_graph = true to the first "
                     "em_backward() to keep them",
                     n->name);
        return NULL;
    }
    EM_ASSERT(i < n->nsaved);
    em_tensor *s = n->saved[i];
    uint64_t now = em_tensor_version(s);
    if (now != n->saved_version[i]) {
        char b[160];
        em_set_error(EM_ERR_STATE,
                     "one of the tensors needed for gradient computation has been modified by "
                     "an in-place operation: [%s %s], the input saved by %s, is at version "
                     "%llu; expected version %llu instead",
                     em_dtype_name(s->dtype), em__shape_str(s->ndim, s->shape, b, sizeof b),
                     n->name, (unsigned long long)now, (unsigned long long)n->saved_version[i]);
        return NULL;
    }
    return s;
}

/* The edge into t's history: its grad_fn, or its leaf accumulator; NULL if no grad. */
em_node *em__autograd_edge(em_tensor *t)
{
    if (!t->requires_grad)
        return NULL;
    em_autograd_meta *m = em__autograd_meta(t);
    if (!m)
        return NULL;
    if (m->grad_fn) {
        node_retain(m->grad_fn);
        return m->grad_fn;
    }
    if (m->accumulator) {
        node_retain(m->accumulator);
        return m->accumulator;
    }
    em_node *acc = node_new("AccumulateGrad", NULL, -1, 0);
    if (!acc)
        return NULL;
    em_retain(t);
    acc->leaf = t;
    m->accumulator = acc;   /* weak: the graph owns it */
    return acc;
}

/* Creates a node with an edge to each input that requires grad; NULL (out of memory) when
 * any edge cannot be made, since a node missing an edge would silently starve that input of
 * its gradient. */
static em_node *node_build(const char *name, em__backward_fn fn, int op, int nin,
                           em_tensor *const *in)
{
    em_node *n = node_new(name, fn, op, nin);
    if (!n)
        return NULL;
    for (int i = 0; i < nin; i++) {
        em_node_input *ni = &n->in[i];
        ni->needs_grad = in[i]->requires_grad;
        ni->next = em__autograd_edge(in[i]);
        ni->dtype = in[i]->dtype;
        ni->device = em__tensor_device(in[i]);
        ni->ndim = in[i]->ndim;
        memcpy(ni->shape, in[i]->shape, sizeof ni->shape);
        if (ni->needs_grad && !ni->next) {
            em__node_release(n);
            em_set_error(EM_ERR_NOMEM, "autograd: out of memory recording %s", name);
            return NULL;
        }
    }
    return n;
}

/* Makes n (complete) out's grad_fn, taking over the caller's reference. On failure (out of
 * memory) n is released and out keeps its history. */
static int node_install(em_node *n, em_tensor *out)
{
    em_autograd_meta *m = em__autograd_meta(out);
    if (!m) {
        em__node_release(n);
        return EM_ERR_NOMEM;
    }
    if (m->grad_fn)
        em__node_release(m->grad_fn);
    m->grad_fn = n;
    n->owner = m;
    out->requires_grad = true;
    return EM_OK;
}

/* A node with edges to `in` installed as out's grad_fn, for the nodes that save nothing. */
static int attach(const char *name, em__backward_fn fn, int nin, em_tensor *const *in,
                  em_tensor *out)
{
    em_node *n = node_build(name, fn, -1, nin, in);
    return n ? node_install(n, out) : EM_ERR_NOMEM;
}

int em__autograd_record(int id, int nin, em_tensor *const *in, const em_attr *attrs,
                        em_tensor *out)
{
    if (!em_dtype_is_float(out->dtype))
        return EM_OK;   /* integer and bool results never require grad */
    const em__formula *f = em__formula_for(id);
    const char *name = f ? em__formula_name(f, id, nin, in, attrs, out) : em__op(id)->name;
    em_node *n = node_build(name, f ? f->fn : NULL, id, nin, in);
    if (!n)
        return EM_ERR_NOMEM;
    em_op_rec *op = em__op(id);
    int na = op->def.nattrs < EM__NODE_MAX_ATTRS ? op->def.nattrs : EM__NODE_MAX_ATTRS;
    if (attrs && na > 0)
        memcpy(n->attrs, attrs, (size_t)na * sizeof *attrs);
    if (attrs && op->def.nattrs > EM__NODE_MAX_ATTRS) {
        n->all_attrs = malloc((size_t)op->def.nattrs * sizeof *attrs);
        if (!n->all_attrs)
            goto fail;
        memcpy(n->all_attrs, attrs, (size_t)op->def.nattrs * sizeof *attrs);
    }
    unsigned saves = f ? f->saves : 0;
    for (int i = 0; i < 8 && i < nin; i++)
        if ((saves & (1u << i)) && save(n, in[i]) < 0)
            goto fail;
    if ((saves & EM__SAVE_OUT) && save(n, out) < 0)
        goto fail;
    return node_install(n, out);
fail:
    em__node_release(n);
    return em_set_error(EM_ERR_NOMEM, "autograd: out of memory recording %s", name);
}

int em__autograd_rebase(em_tensor *out, em_tensor *result)
{
    em_autograd_meta *rm = result->ag, *om = em__autograd_meta(out);
    if (!om)
        return em_last_status();
    if (!rm || !rm->grad_fn)
        return EM_OK;
    em_node *n = rm->grad_fn;
    /* Saved tensors that alias out's storage hold the values about to be overwritten: keep
     * a copy of them instead (PyTorch's original_self). */
    for (int i = 0; i < n->nsaved; i++) {
        if (n->saved[i]->storage != out->storage)
            continue;
        em_tensor *c = em_clone(n->saved[i]);
        if (!c)
            return em_last_status();
        em_release(n->saved[i]);
        n->saved[i] = c;
        n->saved_version[i] = em_tensor_version(c);
    }
    node_retain(n);
    if (om->grad_fn)
        em__node_release(om->grad_fn);
    om->grad_fn = n;
    n->owner = om;
    out->requires_grad = true;
    return EM_OK;
}

/* ---- views, casts, transfers ------------------------------------------------------------ */

int em__view_backward(em_node *n, em_tensor *g, em_tensor **gin);       /* core/ops/shape.c */
int em__identity_backward(em_node *n, em_tensor *g, em_tensor **gin);   /* core/ops/shape.c */

int em__autograd_view(em_tensor *base, em_tensor *view, const char *name)
{
    if (!em__grad_mode())
        return EM_OK;
    em_node *n = node_build(name, em__view_backward, -1, 1, &base);
    if (!n)
        return EM_ERR_NOMEM;
    /* Remember where the view sits inside the base: offset, then shape and strides. */
    n->aux[0] = view->offset - base->offset;
    for (int d = 0; d < view->ndim; d++) {
        n->aux[1 + d] = view->shape[d];
        n->aux[1 + EM_MAX_DIMS + d] = view->strides[d];
    }
    n->attrs[0].n = view->ndim;
    n->attrs[1].n = base->ndim;
    for (int d = 0; d < base->ndim; d++)
        n->attrs[1].ints[d] = base->strides[d];
    if (node_install(n, view) < 0)
        return EM_ERR_NOMEM;
    view->ag->is_view = true;
    return EM_OK;
}

int em__autograd_reset_history(em_tensor *t, const char *name)
{
    if (!em__grad_mode() || !t->requires_grad)
        return EM_OK;
    return attach(name, em__identity_backward, 0, NULL, t);
}

int em__autograd_to(em_tensor *src, em_tensor *dst)
{
    return em__grad_mode() ? attach("ToCopyBackward0", em__identity_backward, 1, &src, dst)
                           : EM_OK;
}

int em__autograd_cast(em_tensor *src, em_tensor *dst, const char *name)
{
    if (!em__grad_mode() || !em_dtype_is_float(dst->dtype))
        return EM_OK;
    return attach(name, em__identity_backward, 1, &src, dst);
}

/* em_detach: a data-only alias, as saved tensors are, outside the graph. */
static em_tensor *detach(em_tensor *t)
{
    EM_CHECK_T("detach", t);
    return alias(t);
}

em_tensor *em_detach(em_tensor *t) { EM_WRAP(detach(t)); }
