/* ember/autograd.h - gradient flags and grad mode.
 *
 * Semantics follow PyTorch: requires_grad is contagious through ops; only floating point
 * tensors can require grad; grad mode is thread-local.
 */
#ifndef EMBER_AUTOGRAD_H
#define EMBER_AUTOGRAD_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

EM_API bool em_requires_grad(const em_tensor *t);
/* Sets the flag on a leaf; an integer or bool tensor is an error. Returns EM_OK or < 0. */
EM_API int em_requires_grad_(em_tensor *t, bool on);
/* Turns grad mode on or off for this thread; returns the previous setting. */
EM_API bool em_set_grad_enabled(bool on);
EM_API bool em_is_grad_enabled(void);

/* EM_NO_GRAD { ... } runs the block with grad mode off, then restores it. Do not leave the
 * block with return, goto or break: the previous mode would not be restored. */
#define EM_NO_GRAD                                                                       \
    for (bool em_ng_prev_ = em_set_grad_enabled(false), em_ng_once_ = true; em_ng_once_; \
         em_ng_once_ = false, em_set_grad_enabled(em_ng_prev_))

#ifdef __cplusplus
}
#endif
#endif
