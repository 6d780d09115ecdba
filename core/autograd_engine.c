/* core/autograd_engine.c - the backward engine: em_backward() runs the graph recorded by
 * core/autograd.c in dependency order, without recursion (arbitrarily long chains are fine),
 * bringing each input gradient to its input's shape, dtype and device, running tensor hooks,
 * and accumulating into leaves (then their post-accumulate-grad hooks).
 *
 * Not here: recording the graph (core/autograd.c) and registering hooks (core/autograd_api.c).
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

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
    em_autograd_meta *m = em__autograd_meta(leaf);
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
    em_node *root = em__autograd_edge(t);   /* grad_fn, or the accumulator of a leaf */
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
