/* core/autograd.c - the autograd graph and the backward engine, with PyTorch's semantics.
 *
 * Recording: when grad mode is on and an op has an input that requires grad, the dispatcher
 * calls em__autograd_record(), which creates a node named as PyTorch names it, with an edge
 * per input (to the input's grad_fn, or to the AccumulateGrad node of a leaf) and the tensors
 * its backward formula needs (saved as data-only aliases with their version). Backward runs
 * the graph in dependency order without recursion, so arbitrarily long chains are fine.
 *
 * Not here: the formulas (core/ops/, beside each op) and gradcheck (core/gradcheck.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static _Thread_local bool grad_disabled;   /* thread-local, as torch.no_grad */

bool em__grad_mode(void) { return !grad_disabled; }

/* ---- metadata ------------------------------------------------------------------------ */

static em_autograd_meta *meta(em_tensor *t)
{
    if (!t->ag && !(t->ag = calloc(1, sizeof *t->ag)))
        em_set_error(EM_ERR_NOMEM, "autograd: out of memory recording a tensor's history");
    return t->ag;
}

static bool is_leaf(const em_tensor *t) { return !t->ag || !t->ag->grad_fn; }

int em__set_requires_grad(const char *fn, em_tensor *t, bool on)
{
    if (on && !em_dtype_is_float(t->dtype))
        return em_set_error(EM_ERR_INVALID,
                            "%s: only floating point tensors can require gradients, got %s", fn,
                            em_dtype_name(t->dtype));
    if (!is_leaf(t))
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
    if (is_leaf(a))
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
static em_node *edge_to(em_tensor *t)
{
    if (!t->requires_grad)
        return NULL;
    em_autograd_meta *m = meta(t);
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
        ni->next = edge_to(in[i]);
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
    em_autograd_meta *m = meta(out);
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
    em_autograd_meta *rm = result->ag, *om = meta(out);
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

/* ---- the engine ------------------------------------------------------------------------- */

static uint64_t next_epoch = 1;   /* engine runs are serialised by the caller's thread */

typedef struct nodevec {
    em_node **v;
    size_t n, cap;
} nodevec;

static bool push(nodevec *s, em_node *x)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 64;
        em_node **p = realloc(s->v, cap * sizeof *p);
        if (!p)
            return false;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = x;
    return true;
}

/* Counts, for every node reachable from root, how many edges point at it. */
static int count_deps(em_node *root, uint64_t epoch, nodevec *all)
{
    nodevec stack = {0};
    root->epoch = epoch;
    root->deps = 0;
    if (!push(&stack, root) || !push(all, root))
        goto nomem;
    while (stack.n) {
        em_node *x = stack.v[--stack.n];
        for (int i = 0; i < x->nin; i++) {
            em_node *y = x->in[i].next;
            if (!y)
                continue;
            if (y->epoch != epoch) {
                y->epoch = epoch;
                y->deps = 0;
                if (!push(&stack, y) || !push(all, y))
                    goto nomem;
            }
            y->deps++;
        }
    }
    free(stack.v);
    return EM_OK;
nomem:
    free(stack.v);
    return em_set_error(EM_ERR_NOMEM, "backward: out of memory walking the graph");
}

/* Sums g over the dims that broadcasting added or expanded, down to (ndim, shape). */
static em_tensor *sum_to(em_tensor *g, int ndim, const int64_t *shape)
{
    if (g->ndim == ndim && memcmp(g->shape, shape, (size_t)ndim * sizeof *shape) == 0) {
        em_retain(g);
        return g;
    }
    int dims[EM_MAX_DIMS], nd = 0, lead = g->ndim - ndim;
    for (int d = 0; d < g->ndim; d++)
        if (d < lead || (shape[d - lead] == 1 && g->shape[d] != 1))
            dims[nd++] = d;
    em_tensor *s = nd ? em_sum(g, nd, dims, true) : (em_retain(g), g);
    em_tensor *r = s ? em_reshape(s, ndim, shape) : NULL;
    em_release(s);
    return r;
}

/* Brings a computed input gradient to the input's shape, dtype and device. */
static em_tensor *conform(em_tensor *g, const em_node_input *in)
{
    em_tensor *a = sum_to(g, in->ndim, in->shape);
    if (!a)
        return NULL;
    em_tensor *b = em_to_dtype(a, in->dtype);
    em_release(a);
    if (!b)
        return NULL;
    em_tensor *c = em_to(b, in->device);
    em_release(b);
    return c;
}

static int add_to_buffer(em_node *n, em_tensor *g)
{
    if (!n->buffer) {
        em_retain(g);
        n->buffer = g;
        return EM_OK;
    }
    em_tensor *s = em_add(n->buffer, g);
    if (!s)
        return em_last_status();
    em_release(n->buffer);
    n->buffer = s;
    return EM_OK;
}

/* Tensor hooks may replace the gradient; retain_grad keeps a copy on a non-leaf. */
static int run_hooks(em_autograd_meta *m, em_tensor **g)
{
    for (int i = 0; m && i < m->nhooks; i++) {
        em_tensor *r = m->hooks[i](*g, m->hook_ctx[i]);
        if (r && r != *g) {
            em_release(*g);
            *g = r;
        } else if (r == *g) {
            em_release(r);   /* the hook returned its argument as a new reference */
        }
    }
    return EM_OK;
}

/* True when gradient g, held by run_node and by accumulate only, may become a leaf's .grad as
 * it is: no other tensor shares its memory, it is compact, owned by its backend, and not part
 * of a graph (backward without create_graph). */
static bool stealable(const em_tensor *g)
{
    return !em__grad_mode() && atomic_load(&g->refcount) == 2 &&
           atomic_load(&g->storage->refcount) == 1 && !g->storage->external && !g->ag &&
           !g->requires_grad && !g->wrapped_number && g->offset == 0 && em_is_contiguous(g) &&
           g->storage->nbytes == (size_t)g->numel * em_dtype_size(g->dtype);
}

static int accumulate(em_node *acc, em_tensor *g)
{
    em_tensor *leaf = acc->leaf;
    em_autograd_meta *m = meta(leaf);
    if (!m)
        return em_last_status();
    em_tensor *incoming = g;
    em_retain(g);
    run_hooks(m, &g);
    if (!m->grad) {
        /* a fresh, contiguous tensor the user owns through em_grad(): the incoming one itself
         * when nothing else can see it (PyTorch's AccumulateGrad steals it too), else a copy */
        if (g == incoming && stealable(g))
            m->grad = g;
        else {
            m->grad = em_clone(g);
            em_release(g);
        }
        return m->grad ? EM_OK : em_last_status();
    }
    em_tensor *s = em_add(m->grad, g);
    em_release(g);
    if (!s)
        return em_last_status();
    em_release(m->grad);
    m->grad = s;
    return EM_OK;
}

static int accumulate_and_notify(em_node *acc, em_tensor *g)
{
    int rc = accumulate(acc, g);
    em_autograd_meta *m = acc->leaf->ag;
    for (int i = 0; rc == EM_OK && m && i < m->npost; i++)
        m->post[i](acc->leaf, m->post_ctx[i]);
    return rc;
}

static int run_node(em_node *n, bool retain_graph)
{
    em_tensor *g = n->buffer;
    n->buffer = NULL;
    int rc = EM_OK;
    if (n->leaf) {
        rc = accumulate_and_notify(n, g);
        em_release(g);
        return rc;
    }
    if (n->owner) {
        run_hooks(n->owner, &g);
        if (n->owner->retains_grad) {
            em_release(n->owner->grad);
            n->owner->grad = em_clone(g);
        }
    }
    if (!n->backward) {
        em_release(g);
        return em_set_error(EM_ERR_UNSUPPORTED,
                            "backward: op '%s' has no backward formula (its result requires "
                            "grad but cannot be differentiated)",
                            n->name);
    }
    em_tensor *gin[EM_MAX_OP_INPUTS] = {0};
    EM_ASSERT(n->nin <= EM_MAX_OP_INPUTS);
    rc = n->backward(n, g, gin);
    em_release(g);
    for (int i = 0; i < n->nin && rc == EM_OK; i++) {
        if (!gin[i] || !n->in[i].next)
            continue;
        em_tensor *c = conform(gin[i], &n->in[i]);
        rc = c ? add_to_buffer(n->in[i].next, c) : em_last_status();
        em_release(c);
    }
    for (int i = 0; i < n->nin; i++)
        em_release(gin[i]);
    if (!retain_graph && rc == EM_OK) {
        for (int i = 0; i < n->nsaved; i++) {
            em_release(n->saved[i]);
            n->saved[i] = NULL;
        }
        if (n->nsaved)
            n->saved_freed = true;
        n->nsaved = 0;
    }
    return rc;
}

static int backward(em_tensor *t, const em_tensor *gradient, bool retain_graph)
{
    const char *fn = "backward";
    char b1[160], b2[160];
    if (!t)
        return em__null_arg(fn, "tensor");
    if (!t->requires_grad)
        return em_set_error(EM_ERR_INVALID, "%s: element 0 of tensors does not require grad and "
                                            "does not have a grad_fn",
                            fn);
    em_tensor *g;
    if (!gradient) {
        if (t->numel != 1)
            return em_set_error(EM_ERR_INVALID,
                                "%s: grad can be implicitly created only for scalar outputs "
                                "(tensor of shape %s); pass a gradient of that shape",
                                fn, em__shape_str(t->ndim, t->shape, b1, sizeof b1));
        g = em_ones_like(t);
    } else {
        if (gradient->ndim != t->ndim ||
            memcmp(gradient->shape, t->shape, (size_t)t->ndim * sizeof *t->shape) != 0)
            return em_set_error(EM_ERR_INVALID,
                                "%s: gradient of shape %s does not match the tensor's shape %s",
                                fn, em__shape_str(gradient->ndim, gradient->shape, b1, sizeof b1),
                                em__shape_str(t->ndim, t->shape, b2, sizeof b2));
        g = em_to_dtype((em_tensor *)gradient, t->dtype);
        if (g && !em_device_eq(em__tensor_device(g), em__tensor_device(t))) {
            em_tensor *m = em_to(g, em__tensor_device(t));
            em_release(g);
            g = m;
        }
    }
    if (!g)
        return em_last_status();
    em_node *root = edge_to(t);   /* grad_fn, or the accumulator of a leaf */
    if (!root) {
        em_release(g);
        return em_last_status();
    }
    nodevec all = {0}, ready = {0};
    uint64_t epoch = next_epoch++;
    int rc = count_deps(root, epoch, &all);
    if (rc == EM_OK) {
        root->buffer = g;
        g = NULL;
        if (!push(&ready, root))
            rc = em_set_error(EM_ERR_NOMEM, "backward: out of memory");
    }
    while (rc == EM_OK && ready.n) {
        em_node *n = ready.v[--ready.n];
        rc = run_node(n, retain_graph);
        for (int i = 0; rc == EM_OK && i < n->nin; i++) {
            em_node *y = n->in[i].next;
            if (y && --y->deps == 0 && y->buffer && !push(&ready, y))
                rc = em_set_error(EM_ERR_NOMEM, "backward: out of memory");
        }
    }
    /* On failure, drop partial buffers so the graph can be retried or freed cleanly. */
    for (size_t i = 0; i < all.n; i++) {
        em_release(all.v[i]->buffer);
        all.v[i]->buffer = NULL;
    }
    em_release(g);
    free(all.v);
    free(ready.v);
    em__node_release(root);
    return rc;
}

int em_backward(em_tensor *t, const em_tensor *gradient, bool retain_graph)
{
    bool prev = em_set_grad_enabled(false);
    em__api_depth++;   /* temporaries of the engine never enter a scope */
    int rc = backward(t, gradient, retain_graph);
    em__api_depth--;
    em_set_grad_enabled(prev);
    return rc;
}

/* ---- public flags and accessors ------------------------------------------------------------ */

bool em_requires_grad(const em_tensor *t) { return t && t->requires_grad; }

int em_requires_grad_(em_tensor *t, bool on)
{
    if (!t)
        return em__null_arg("requires_grad_", "t");
    return em__set_requires_grad("requires_grad_", t, on);
}

bool em_is_leaf(const em_tensor *t) { return t && is_leaf(t); }

em_tensor *em_grad(const em_tensor *t) { return t && t->ag ? t->ag->grad : NULL; }

const char *em_grad_fn_name(const em_tensor *t)
{
    return t && t->ag && t->ag->grad_fn ? t->ag->grad_fn->name : NULL;
}

int em_retain_grad(em_tensor *t)
{
    if (!t)
        return em__null_arg("retain_grad", "t");
    if (!t->requires_grad)
        return em_set_error(EM_ERR_INVALID,
                            "retain_grad: can't retain_grad on a tensor that has requires_grad=False");
    if (is_leaf(t))
        return EM_OK;   /* leaves keep their grad anyway */
    t->ag->retains_grad = true;
    return EM_OK;
}

bool em_retains_grad(const em_tensor *t)
{
    return t && t->ag && (t->ag->retains_grad || (t->requires_grad && is_leaf(t)));
}

int em_grad_zero(em_tensor *t)
{
    if (!t)
        return em__null_arg("grad_zero", "t");
    if (!t->ag || !t->ag->grad)
        return EM_OK;
    bool prev = em_set_grad_enabled(false);
    em__api_depth++;
    em_tensor *r = em_zero_(t->ag->grad);
    em__api_depth--;
    em_set_grad_enabled(prev);
    em_release(r);
    return r ? EM_OK : em_last_status();
}

int em_grad_clear(em_tensor *t)
{
    if (!t)
        return em__null_arg("grad_clear", "t");
    if (t->ag) {
        em_release(t->ag->grad);
        t->ag->grad = NULL;
    }
    return EM_OK;
}

static em_tensor *detach(em_tensor *t)
{
    EM_CHECK_T("detach", t);
    return alias(t);
}

em_tensor *em_detach(em_tensor *t) { EM_WRAP(detach(t)); }

int em_register_hook(em_tensor *t, em_grad_hook_fn fn, void *ctx)
{
    if (!t || !fn)
        return em__null_arg("register_hook", t ? "fn" : "t");
    if (!t->requires_grad)
        return em_set_error(EM_ERR_INVALID, "register_hook: cannot register a hook on a tensor "
                                            "that doesn't require gradient");
    em_autograd_meta *m = meta(t);
    if (!m)
        return em_last_status();
    if (m->nhooks == (int)(sizeof m->hooks / sizeof m->hooks[0]))
        return em_set_error(EM_ERR_INVALID, "register_hook: at most %d hooks per tensor",
                            (int)(sizeof m->hooks / sizeof m->hooks[0]));
    m->hooks[m->nhooks] = fn;
    m->hook_ctx[m->nhooks++] = ctx;
    return EM_OK;
}

static int post_hook_check(const char *fn, em_tensor *t, em_post_accumulate_hook_fn f)
{
    if (!t || !f)
        return em__null_arg(fn, t ? "fn" : "t");
    if (!t->requires_grad || (t->ag && t->ag->grad_fn))
        return em_set_error(EM_ERR_INVALID, "%s: the tensor must be a leaf that requires grad",
                            fn);
    return EM_OK;
}

int em_register_post_accumulate_grad_hook(em_tensor *t, em_post_accumulate_hook_fn fn,
                                          void *ctx)
{
    const char *name = "register_post_accumulate_grad_hook";
    int rc = post_hook_check(name, t, fn);
    if (rc < 0)
        return rc;
    em_autograd_meta *m = meta(t);
    if (!m)
        return em_last_status();
    if (m->npost == (int)(sizeof m->post / sizeof m->post[0]))
        return em_set_error(EM_ERR_INVALID, "%s: at most %d hooks per tensor", name,
                            (int)(sizeof m->post / sizeof m->post[0]));
    m->post[m->npost] = fn;
    m->post_ctx[m->npost++] = ctx;
    return EM_OK;
}

int em_remove_post_accumulate_grad_hook(em_tensor *t, em_post_accumulate_hook_fn fn, void *ctx)
{
    const char *name = "remove_post_accumulate_grad_hook";
    int rc = post_hook_check(name, t, fn);
    if (rc < 0)
        return rc;
    em_autograd_meta *m = t->ag;
    for (int i = 0; m && i < m->npost; i++)
        if (m->post[i] == fn && m->post_ctx[i] == ctx) {
            memmove(&m->post[i], &m->post[i + 1], (size_t)(m->npost - i - 1) * sizeof *m->post);
            memmove(&m->post_ctx[i], &m->post_ctx[i + 1],
                    (size_t)(m->npost - i - 1) * sizeof *m->post_ctx);
            m->npost--;
            return EM_OK;
        }
    return em_set_error(EM_ERR_INVALID, "%s: no such hook on this tensor", name);
}

bool em_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

bool em_is_grad_enabled(void) { return !grad_disabled; }
