/* ember/autograd.h - reverse-mode automatic differentiation with PyTorch's semantics.
 *
 * requires_grad is contagious: an op whose input requires grad (in grad mode) records a node
 * (grad_fn, named as PyTorch names it) and its result requires grad. Leaves are tensors the
 * user created, or that do not require grad; only leaves accumulate .grad, unless
 * em_retain_grad() asks a non-leaf to keep its own. Only floating point tensors can require
 * grad. Grad mode is thread-local. The graph is freed by em_backward unless retain_graph.
 *
 * Threads: a graph is used by one thread at a time. em_backward, em_grad, em_grad_zero,
 * em_grad_clear, em_retain_grad and em_requires_grad_ on tensors of one graph (or leaves
 * shared by two graphs) need external serialisation; graphs with nothing in common may run on
 * different threads at once.
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
EM_API bool em_is_leaf(const em_tensor *t);
/* PyTorch's node name ("MulBackward0"); NULL for leaves. Borrowed: valid while t lives. */
EM_API const char *em_grad_fn_name(const em_tensor *t);
/* The accumulated gradient, or NULL. Borrowed: valid until t is released or its grad is
 * cleared, replaced or accumulated into (em_backward may replace it with a new tensor). */
EM_API em_tensor *em_grad(const em_tensor *t);
/* Keep the gradient of a non-leaf after backward (a no-op on leaves). */
EM_API int em_retain_grad(em_tensor *t);
EM_API bool em_retains_grad(const em_tensor *t);
/* t.grad.zero_(): zeroes t's grad in place (no-op without a grad). Not to be confused with
 * em_zero_grad(optimizer) in module.h, which drops the grads of every parameter (t.grad =
 * None, as em_grad_clear does), as PyTorch's optimizer.zero_grad() does. */
EM_API int em_grad_zero(em_tensor *t);
EM_API int em_grad_clear(em_tensor *t);   /* t.grad = None */

/* Back-propagates from t. gradient: NULL for a one-element t (ones), else a tensor of t's
 * shape (the vector in the vector-Jacobian product). Gradients accumulate into the .grad of
 * the leaves. Without retain_graph the saved tensors are freed, and a second backward through
 * the same nodes is an error. Returns EM_OK or a negative status (message in em_last_error). */
EM_API int em_backward(em_tensor *t, const em_tensor *gradient, bool retain_graph);

/* A new tensor sharing t's data, outside the graph: a leaf that does not require grad. */
EM_API em_tensor *em_detach(em_tensor *t);

/* A hook sees the gradient flowing into t during backward (before it is accumulated into a
 * leaf's grad or passed to t's grad_fn). It returns NULL to keep it, or a new tensor of the
 * same shape that replaces it (gradient clipping, inspection). */
typedef em_tensor *(*em_grad_hook_fn)(em_tensor *grad, void *ctx);
EM_API int em_register_hook(em_tensor *t, em_grad_hook_fn fn, void *ctx);

/* PyTorch's register_post_accumulate_grad_hook: fn(t, ctx) runs during backward right after
 * the gradient has been accumulated into leaf t's grad (what DistributedDataParallel uses to
 * start communication while backward goes on). t must be a leaf that requires grad; at most 4
 * hooks per tensor. The remove function forgets the (fn, ctx) pair; both return EM_OK or a
 * negative status. */
typedef void (*em_post_accumulate_hook_fn)(em_tensor *t, void *ctx);
EM_API int em_register_post_accumulate_grad_hook(em_tensor *t, em_post_accumulate_hook_fn fn,
                                                 void *ctx);
EM_API int em_remove_post_accumulate_grad_hook(em_tensor *t, em_post_accumulate_hook_fn fn,
                                               void *ctx);

/* torch.autograd.gradcheck: fn(inputs) is differentiated analytically (backward) and
 * numerically (central differences, step eps) with respect to every input that requires
 * grad (those must be float64 leaves); each Jacobian entry must satisfy
 * |analytical - numerical| <= atol + rtol * |numerical|. Negative eps/atol/rtol pick
 * PyTorch's defaults (1e-6, 1e-5, 1e-3). Returns EM_OK, or a negative status whose message
 * names the output element, input and element that disagree. */
typedef em_tensor *(*em_gradcheck_fn)(int nin, em_tensor *const *inputs, void *ctx);
EM_API int em_gradcheck(em_gradcheck_fn fn, void *ctx, int nin, em_tensor *const *inputs,
                        double eps, double atol, double rtol);

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
