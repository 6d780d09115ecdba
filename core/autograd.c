/* core/autograd.c - grad mode and the requires_grad flag.
 *
 * This file is where the autograd engine hooks into the core: the dispatcher, views, casts
 * and device copies call the em__autograd_* hooks below for inputs that require grad. Graph
 * recording and backward are not built yet (tracked as its own issue): until then the hooks
 * only propagate requires_grad, so a result of an op on a tensor that requires grad requires
 * grad too, as in PyTorch.
 */
#include "internal.h"

static _Thread_local bool grad_disabled;   /* thread-local, as torch.no_grad */

bool em__grad_mode(void) { return !grad_disabled; }

int em__set_requires_grad(const char *fn, em_tensor *t, bool on)
{
    if (on && !em_dtype_is_float(t->dtype))
        return em_set_error(EM_ERR_INVALID,
                            "%s: only floating point tensors can require gradients, got %s", fn,
                            em_dtype_name(t->dtype));
    t->requires_grad = on;
    return EM_OK;
}

/* In-place writes into a leaf that requires grad would corrupt what backward computes. */
int em__check_inplace(const char *fn, em_tensor *a)
{
    if (a->requires_grad && em__grad_mode() && !a->ag)
        return em_set_error(EM_ERR_INVALID,
                            "%s: a leaf tensor that requires grad is being used in an in-place "
                            "operation",
                            fn);
    return EM_OK;
}

void em__autograd_free(em_tensor *t) { (void)t; }

static void propagate(em_tensor *out)
{
    if (em__grad_mode() && em_dtype_is_float(out->dtype))
        out->requires_grad = true;
}

void em__autograd_record(int id, int nin, em_tensor *const *in, const em_attr *attrs,
                         em_tensor *out)
{
    (void)id; (void)nin; (void)in; (void)attrs;
    propagate(out);
}

void em__autograd_view(em_tensor *base, em_tensor *view) { (void)base; propagate(view); }
void em__autograd_to(em_tensor *src, em_tensor *dst) { (void)src; propagate(dst); }
void em__autograd_cast(em_tensor *src, em_tensor *dst) { (void)src; propagate(dst); }

/* ---- public flags ------------------------------------------------------------------- */

bool em_requires_grad(const em_tensor *t) { return t && t->requires_grad; }

int em_requires_grad_(em_tensor *t, bool on)
{
    if (!t)
        return em__null_arg("requires_grad_", "t");
    return em__set_requires_grad("requires_grad_", t, on);
}

bool em_set_grad_enabled(bool on)
{
    bool prev = !grad_disabled;
    grad_disabled = !on;
    return prev;
}

bool em_is_grad_enabled(void) { return !grad_disabled; }
