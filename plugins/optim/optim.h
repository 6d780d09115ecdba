/* plugins/optim/optim.h - what the optim plugin's files share: the registration entry points
 * and a small list of temporaries for writing updates in ops.
 *
 * Updates are written in the public ops (em_mul_scalar, em_add_, em_sqrt...), so they run on
 * every backend that has those kernels, and the optimizer state (the slots) is created with
 * em_zeros_like/em_clone on the parameter's own device. The core runs step() with grad mode
 * off, so the in-place ops on parameters (leaves that require grad) are allowed and record
 * nothing. Scopes do not track tensors made inside step(), hence the explicit list below.
 *
 * Not installed; not part of any ABI.
 */
#ifndef EMBER_PLUGINS_OPTIM_H
#define EMBER_PLUGINS_OPTIM_H

#include <ember/ember.h>
#include <ember/plugin.h>

/* ---- registration (one function per file) ------------------------------------------------ */

int em_optim__register_sgd(em_registry *reg);
int em_optim__register_adam(em_registry *reg);      /* Adam and AdamW */
int em_optim__register_rmsprop(em_registry *reg);
int em_optim__register_schedulers(em_registry *reg);

/* ---- temporaries of one parameter's update ------------------------------------------------ */

#define EM_OPTIM_MAX_TMPS 32

/* Every tensor an update creates (including the extra reference an in-place op returns) is
 * recorded with em_optim_tmp and released at the end by em_optim_tmps_release. A NULL result
 * marks the list as failed; since every op returns NULL for a NULL input, an update written as
 * a chain stops at the first failure without touching anything after it. */
typedef struct em_optim_tmps {
    em_tensor *t[EM_OPTIM_MAX_TMPS];
    int n;
    bool failed;
} em_optim_tmps;

static inline em_tensor *em_optim_tmp(em_optim_tmps *k, em_tensor *t)
{
    if (!t) {
        k->failed = true;
        return NULL;
    }
    if (k->n == EM_OPTIM_MAX_TMPS) {
        /* a bug in this plugin, reported as an error rather than a leak */
        em_release(t);
        k->failed = true;
        em_set_error(EM_ERR_INTERNAL, "optim: too many temporaries in one update");
        return NULL;
    }
    k->t[k->n++] = t;
    return t;
}

/* Releases the temporaries; returns EM_OK, or the pending error status if any op failed. */
static inline int em_optim_tmps_release(em_optim_tmps *k)
{
    while (k->n)
        em_release(k->t[--k->n]);
    if (!k->failed)
        return EM_OK;
    int rc = em_last_status();
    return rc < 0 ? rc : EM_ERR_INTERNAL;
}

/* a += alpha * b, in place (torch's a.add_(b, alpha=alpha)); returns a or NULL. */
static inline em_tensor *em_optim_axpy_(em_optim_tmps *k, em_tensor *a, em_tensor *b,
                                        double alpha)
{
    if (alpha != 1)
        b = em_optim_tmp(k, em_mul_scalar(b, alpha));
    return em_optim_tmp(k, em_add_(a, b));
}

/* a + alpha * b, out of place (torch's a.add(b, alpha=alpha)). */
static inline em_tensor *em_optim_axpy(em_optim_tmps *k, em_tensor *a, em_tensor *b,
                                       double alpha)
{
    if (alpha != 1)
        b = em_optim_tmp(k, em_mul_scalar(b, alpha));
    return em_optim_tmp(k, em_add(a, b));
}

/* The slot `name` of parameter i, created as zeros on the parameter's device if it is unset
 * (PyTorch's lazy state initialisation). Borrowed; NULL with the error set on failure. */
static inline em_tensor *em_optim_slot_zeros(em_optimizer *o, int i, const char *name)
{
    em_tensor *s = em_optimizer_slot(o, i, name);
    if (s)
        return s;
    s = em_zeros_like(em_optimizer_param(o, i));
    if (!s)
        return NULL;
    int rc = em_optimizer_set_slot(o, i, name, s);
    em_release(s);   /* the optimizer holds it now */
    return rc == EM_OK ? s : NULL;
}

#endif
