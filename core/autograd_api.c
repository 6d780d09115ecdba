/* core/autograd_api.c - autograd's public face on tensors: requires_grad, is_leaf, grad,
 * grad_fn names, retain_grad, clearing and zeroing grads, tensor and post-accumulate-grad hooks,
 * and grad mode (thread-local, as torch.no_grad).
 *
 * Not here: the graph (core/autograd.c) and the engine that runs the hooks
 * (core/autograd_engine.c).
 */
#include <string.h>

#include "internal.h"

/* ---- public flags and accessors ------------------------------------------------------------ */

bool em_requires_grad(const em_tensor *t) { return t && t->requires_grad; }

int em_requires_grad_(em_tensor *t, bool on)
{
    if (!t)
        return em__null_arg("requires_grad_", "t");
    return em__set_requires_grad("requires_grad_", t, on);
}

bool em_is_leaf(const em_tensor *t) { return t && em__autograd_is_leaf(t); }

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
    if (em__autograd_is_leaf(t))
        return EM_OK;   /* leaves keep their grad anyway */
    t->ag->retains_grad = true;
    return EM_OK;
}

bool em_retains_grad(const em_tensor *t)
{
    return t && t->ag && (t->ag->retains_grad || (t->requires_grad && em__autograd_is_leaf(t)));
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

int em_register_hook(em_tensor *t, em_grad_hook_fn fn, void *ctx)
{
    if (!t || !fn)
        return em__null_arg("register_hook", t ? "fn" : "t");
    if (!t->requires_grad)
        return em_set_error(EM_ERR_INVALID, "register_hook: cannot register a hook on a tensor "
                                            "that doesn't require gradient");
    em_autograd_meta *m = em__autograd_meta(t);
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
    em_autograd_meta *m = em__autograd_meta(t);
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

/* ---- grad mode --------------------------------------------------------------------------- */

static _Thread_local bool grad_disabled;   /* thread-local, as torch.no_grad */

bool em__grad_mode(void) { return !grad_disabled; }

bool em_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

bool em_is_grad_enabled(void) { return !grad_disabled; }
