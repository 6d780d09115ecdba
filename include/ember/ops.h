/* ember/ops.h - math on tensors.
 *
 * Binary ops broadcast and promote types as PyTorch does (int + float -> float, f32 + f64 ->
 * f64; a 0-dim tensor or a scalar argument does not raise the dtype of a dimensioned operand
 * of the same category). Operands must live on one device. Every op returns a new tensor or
 * NULL with em_last_error() set; in-place ops (trailing '_') return their first argument
 * (retained) and bump its version counter.
 *
 * Threads: ops may run on several threads at once, on shared inputs too: an op reads its
 * inputs and writes only its result (the CPU backend's thread pool runs loops from different
 * threads one after the other; errors, grad mode and scopes are per thread). What the caller
 * must serialise: an in-place op against any other use of the same storage, and, with grad
 * mode on, ops that record for autograd on a shared input that requires grad (recording
 * attaches to the input's autograd state), as em_backward and em_grad on one graph
 * (autograd.h). One model per thread needs no locking.
 */
#ifndef EMBER_OPS_H
#define EMBER_OPS_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- unary elementwise ---------------------------------------------------- */

EM_API em_tensor *em_neg(em_tensor *a);
EM_API em_tensor *em_abs(em_tensor *a);
EM_API em_tensor *em_exp(em_tensor *a);
EM_API em_tensor *em_log(em_tensor *a);
EM_API em_tensor *em_sqrt(em_tensor *a);
EM_API em_tensor *em_sin(em_tensor *a);
EM_API em_tensor *em_cos(em_tensor *a);
EM_API em_tensor *em_tanh(em_tensor *a);
EM_API em_tensor *em_sigmoid(em_tensor *a);
EM_API em_tensor *em_relu(em_tensor *a);

/* ---- binary elementwise (broadcasting) ----------------------------------- */

EM_API em_tensor *em_add(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_sub(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_mul(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_div(em_tensor *a, em_tensor *b);      /* true division: ints -> float */
EM_API em_tensor *em_pow(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_maximum(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_minimum(em_tensor *a, em_tensor *b);
/* Comparisons return bool tensors. */
EM_API em_tensor *em_eq(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_ne(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_lt(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_le(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_gt(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_ge(em_tensor *a, em_tensor *b);

/* With a scalar operand (a Python number: it never raises a's dtype category). */
EM_API em_tensor *em_add_scalar(em_tensor *a, double s);
EM_API em_tensor *em_sub_scalar(em_tensor *a, double s);
EM_API em_tensor *em_mul_scalar(em_tensor *a, double s);
EM_API em_tensor *em_div_scalar(em_tensor *a, double s);
EM_API em_tensor *em_pow_scalar(em_tensor *a, double s);

/* cond ? a : b, broadcasting all three; cond must be bool. */
EM_API em_tensor *em_where(em_tensor *cond, em_tensor *a, em_tensor *b);

/* ---- in place: a op= b, b broadcast to a's shape, result cast to a's dtype ---- */

EM_API em_tensor *em_add_(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_sub_(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_mul_(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_div_(em_tensor *a, em_tensor *b);
EM_API em_tensor *em_add_scalar_(em_tensor *a, double s);
EM_API em_tensor *em_mul_scalar_(em_tensor *a, double s);
EM_API em_tensor *em_fill_(em_tensor *a, double value);
EM_API em_tensor *em_zero_(em_tensor *a);
EM_API em_tensor *em_relu_(em_tensor *a);
/* Copies src (broadcast, cast, any device) into dst's memory (dst may be a strided view). */
EM_API em_tensor *em_copy_(em_tensor *dst, em_tensor *src);

/* ---- reductions ------------------------------------------------------------ */

/* Over the ndims dims listed in `dims` (negative allowed; ndims == 0 or dims == NULL means
 * all dims). Integer and bool inputs sum to int64, as in PyTorch. */
EM_API em_tensor *em_sum(em_tensor *a, int ndims, const int *dims, bool keepdim);
EM_API em_tensor *em_mean(em_tensor *a, int ndims, const int *dims, bool keepdim);
EM_API em_tensor *em_amax(em_tensor *a, int ndims, const int *dims, bool keepdim);
EM_API em_tensor *em_sum_all(em_tensor *a);     /* 0-dim result */
EM_API em_tensor *em_mean_all(em_tensor *a);
/* Index of the largest value along dim (first one on ties), int64. */
EM_API em_tensor *em_argmax(em_tensor *a, int dim, bool keepdim);

/* ---- linear algebra -------------------------------------------------------- */

/* torch.matmul: 1-D and 2-D operands, and batched with broadcast batch dims. */
EM_API em_tensor *em_matmul(em_tensor *a, em_tensor *b);
/* x @ w^T + bias: x (*, in), w (out, in), bias (out) or NULL. */
EM_API em_tensor *em_linear(em_tensor *x, em_tensor *w, em_tensor *bias);
/* relu(x @ w^T + bias) as one op (Linear followed by ReLU), so that a backend can apply the
 * bias and the ReLU as it stores the product; grad_fn ReluBackward0, one node for both. */
EM_API em_tensor *em_linear_relu(em_tensor *x, em_tensor *w, em_tensor *bias);

/* ---- indexing ---------------------------------------------------------------- */

/* out[i][j] = a[index[i][j]][j] for dim 0 (torch.gather); index is int64, same ndim. */
EM_API em_tensor *em_gather(em_tensor *a, int dim, em_tensor *index);
/* A copy of `a` with src scatter-added along dim at index (torch.scatter_add). */
EM_API em_tensor *em_scatter_add(em_tensor *a, int dim, em_tensor *index, em_tensor *src);

/* ---- composites -------------------------------------------------------------- */

EM_API em_tensor *em_softmax(em_tensor *a, int dim);
EM_API em_tensor *em_log_softmax(em_tensor *a, int dim);

/* How a loss combines its per-sample values (PyTorch's reduction=). */
typedef enum em_reduction {
    EM_REDUCTION_NONE,       /* one loss per sample */
    EM_REDUCTION_MEAN,       /* divided by the summed weights of the targets that count */
    EM_REDUCTION_SUM,
} em_reduction;

/* torch.nn.functional.cross_entropy with class-index targets: x (N, C) or (C) logits (float),
 * target (N) or () int64 class indices, weight (C) per-class weights or NULL. A target equal
 * to ignore_index contributes 0 and does not count in the mean (all ignored: nan). The loss
 * is -weight[t] * log_softmax(x)[t], computed without forming log_softmax (log-sum-exp), as
 * one op "cross_entropy" that backends may fuse (grad_fn NllLossBackward0; no gradient for
 * weight). Targets are checked on the host first: "target 7 is out of bounds for 5 classes
 * (at position 3)". */
EM_API em_tensor *em_cross_entropy(em_tensor *x, em_tensor *target, em_tensor *weight,
                                   int64_t ignore_index, em_reduction reduction);

/* ---- optimizer updates ----------------------------------------------------------------- */

/* One parameter's whole optimizer update as one op, as PyTorch 1.13's single-tensor
 * torch.optim implementations compute it (the formulas are in core/optim_ops.c). The
 * parameter is updated in place and returned (a new reference); the state tensors are updated
 * in place too, and every tensor written gets its version counter bumped. A state tensor the
 * hyperparameters leave unused may be NULL (momentum_buffer without momentum, max_exp_avg_sq
 * without amsgrad, grad_avg when not centered). Every tensor must have the parameter's shape,
 * dtype and device. Grad mode must be off where an input requires grad (em_step runs
 * optimizers that way). Backends may run each as one fused pass (the ops "sgd_step",
 * "adam_step" and "rmsprop_step"); elsewhere they run as the elementwise ops they stand for.
 * Returns NULL with the error set on failure; thread safe for distinct tensors. */
EM_API em_tensor *em_sgd_step_(em_tensor *param, em_tensor *grad, em_tensor *momentum_buffer,
                               double lr, double momentum, double dampening,
                               double weight_decay, bool nesterov, bool maximize,
                               bool first_step);
/* decoupled: AdamW's weight decay; step: the parameter's step count, from 1. */
EM_API em_tensor *em_adam_step_(em_tensor *param, em_tensor *grad, em_tensor *exp_avg,
                                em_tensor *exp_avg_sq, em_tensor *max_exp_avg_sq, double lr,
                                double beta1, double beta2, double eps, double weight_decay,
                                int64_t step, bool amsgrad, bool maximize, bool decoupled);
EM_API em_tensor *em_rmsprop_step_(em_tensor *param, em_tensor *grad, em_tensor *square_avg,
                                   em_tensor *momentum_buffer, em_tensor *grad_avg, double lr,
                                   double alpha, double eps, double weight_decay,
                                   double momentum, bool centered, bool maximize);

/* ---- generic dispatch --------------------------------------------------------- */

/* Calls any registered op by name (ops added by plugins included). Attributes are given
 * in the op's declared order; see plugin.h for em_attr. Returns the first output. */
typedef struct em_attr em_attr;
EM_API em_tensor *em_op_call(const char *op, int nin, em_tensor *const *inputs, int nattrs,
                             const em_attr *attrs);

#ifdef __cplusplus
}
#endif
#endif
