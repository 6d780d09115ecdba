/* plugins/optim/optim.h - what the optim plugin's files share: the registration entry points
 * and the lazy creation of optimizer state.
 *
 * Each parameter's update is one core op (em_sgd_step_, em_adam_step_, em_rmsprop_step_),
 * which a backend may run as one fused pass and every other backend runs as the elementwise
 * ops it is written in. The optimizer state (the slots) is created with em_zeros_like on the
 * parameter's own device. The core runs step() with grad mode off, so the in-place updates of
 * parameters (leaves that require grad) are allowed and record nothing.
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

/* The pending error's status after a call that failed (never EM_OK). */
static inline int em_optim_failed(void)
{
    int rc = em_last_status();
    return rc < 0 ? rc : EM_ERR_INTERNAL;
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
