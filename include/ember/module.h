/* ember/module.h - nn modules, losses and optimizers, built from spec strings.
 *
 * Module types (layers, losses) and optimizer types ship in plugins and are built by name:
 *
 *     em_module *model = em_module_new("Sequential(Linear(3, 64), ReLU(), Linear(64, 10))");
 *     em_module *loss = em_module_new("CrossEntropyLoss()");
 *     em_optimizer *opt = em_optimizer_new("SGD(lr=0.01, momentum=0.9)", model);
 *
 * Parameters and buffers are named as PyTorch's state_dict names them ("0.weight",
 * "2.bias"), so checkpoints move between Ember and PyTorch. A module owns its children; the
 * caller owns the module returned by em_module_new and frees it with em_module_free.
 * Modules are not thread safe: use one from one thread at a time.
 */
#ifndef EMBER_MODULE_H
#define EMBER_MODULE_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_module em_module;
typedef struct em_optimizer em_optimizer;
typedef struct em_scheduler em_scheduler;

/* ---- modules -------------------------------------------------------------------------- */

/* Builds a module from a spec; its parameters live on the default device. NULL with an error
 * naming the type, the argument or the column ("unknown module type 'Linaer'; did you mean
 * 'Linear'?"). */
EM_API em_module *em_module_new(const char *spec);
EM_API void em_module_free(em_module *m);

/* Runs the module (nn.Module.__call__): a new tensor, or NULL with the error set. */
EM_API em_tensor *em_forward(em_module *m, em_tensor *x);
EM_API em_tensor *em_forward_n(em_module *m, int nin, em_tensor *const *in);
/* A loss module applied to (output, target): a new 0-dim tensor (or per-element with
 * reduction="none"). */
EM_API em_tensor *em_loss(em_module *loss, em_tensor *output, em_tensor *target);

/* train() / eval(): sets the flag on m and every descendant. */
EM_API void em_module_train(em_module *m, bool on);
EM_API bool em_module_is_training(const em_module *m);

/* Moves every parameter and buffer to d in place: tensors keep their handles (and stay
 * leaves), so optimizers created before the move, and their state, keep working. */
EM_API int em_module_to(em_module *m, em_device d);
EM_API em_device em_module_device(const em_module *m);

EM_API const char *em_module_type(const em_module *m);       /* "Linear"; borrowed */
/* The spec that builds the same module ("Linear(3, 64)"); caller frees. */
EM_API char *em_module_str(const em_module *m);
/* PyTorch's print(model): the tree with each child as "(name): ..." on its own line, indented
 * two spaces per level, leaves as their type's extra_repr ("Linear(in_features=3,
 * out_features=64, bias=True)"); caller frees. */
EM_API char *em_module_repr(const em_module *m);
EM_API void em_module_print(const em_module *m);              /* em_module_repr + "\n" */

/* ---- parameters, buffers and children ------------------------------------------------- */

/* Named parameters of m and its descendants, in registration order (named_parameters()).
 * Names and tensors are borrowed: valid while m lives (tensors keep their handles across
 * em_module_to and em_module_load). */
EM_API int em_module_param_count(const em_module *m);
EM_API const char *em_module_param_name(const em_module *m, int i);
EM_API em_tensor *em_module_param(const em_module *m, int i);
/* Parameters then buffers, as state_dict() lists them. */
EM_API int em_module_state_count(const em_module *m);
EM_API const char *em_module_state_name(const em_module *m, int i);
EM_API em_tensor *em_module_state_tensor(const em_module *m, int i);
/* A parameter or buffer by its state_dict name ("0.weight"); NULL with an error if none. */
EM_API em_tensor *em_module_get(const em_module *m, const char *name);
/* Number of elements over all parameters (trainable only, or all). */
EM_API int64_t em_module_numel(const em_module *m, bool trainable_only);
/* requires_grad_ on every parameter: freezing and unfreezing. */
EM_API int em_module_requires_grad_(em_module *m, bool on);
EM_API int em_module_zero_grad(em_module *m);

/* ---- checkpoints (safetensors, state_dict names) -------------------------------------- */

/* Writes parameters and buffers atomically (temporary file, fsync, rename). */
EM_API int em_module_save(const em_module *m, const char *path);
/* Loads a safetensors file written by Ember or by safetensors.torch.save_file(
 * model.state_dict()). Every key, dtype and shape is checked before anything is written:
 * on any mismatch the module is unchanged and the error names the key. Values are cast to
 * the parameter's dtype only when the file holds another float dtype. */
EM_API int em_module_load(em_module *m, const char *path);
/* em_module_load from a safetensors image in memory (size bytes at `bytes`, borrowed for the
 * call), as torch.load takes a buffer: for a file read once and sent to other processes, or
 * one that never touched a disk. `name` stands for the file in error messages (NULL:
 * "(bytes)"). */
EM_API int em_module_load_bytes(em_module *m, const void *bytes, size_t size, const char *name);

/* torchsummary's table for an input of the given shape (batch dim included): layer and
 * type, output shape, parameter counts; total/trainable/non-trainable params; input,
 * forward/backward pass and parameter sizes in MB. Caller frees. */
EM_API char *em_module_summary(em_module *m, int ndim, const int64_t *input_shape);

/* ---- optimizers and schedulers ------------------------------------------------------------ */

/* Builds an optimizer over m's parameters (those requiring grad when it is built). */
EM_API em_optimizer *em_optimizer_new(const char *spec, em_module *m);
EM_API void em_optimizer_free(em_optimizer *o);
/* optimizer.zero_grad(): every parameter's grad set to None (set_to_none, as PyTorch 2 does;
 * em_grad_clear on each), not zeroed in place as em_grad_zero(t) in autograd.h does. */
EM_API int em_zero_grad(em_optimizer *o);
/* One update; runs without recording a graph. All or nothing: on error (negative status,
 * em_last_error() says why) the parameters and the optimizer's state are as they were. */
EM_API int em_step(em_optimizer *o);
EM_API double em_optimizer_lr(const em_optimizer *o);
EM_API int em_optimizer_set_lr(em_optimizer *o, double lr);
EM_API char *em_optimizer_str(const em_optimizer *o);
/* Optimizer state (step counts, moment buffers) to and from safetensors. */
EM_API int em_optimizer_save(const em_optimizer *o, const char *path);
EM_API int em_optimizer_load(em_optimizer *o, const char *path);
/* em_optimizer_load from an image in memory, as em_module_load_bytes. */
EM_API int em_optimizer_load_bytes(em_optimizer *o, const void *bytes, size_t size,
                                   const char *name);

/* StepLR, MultiStepLR, CosineAnnealingLR, LinearLR...: adjust the optimizer's learning rate
 * once per epoch (em_scheduler_step), as torch.optim.lr_scheduler does. */
EM_API em_scheduler *em_scheduler_new(const char *spec, em_optimizer *o);
EM_API void em_scheduler_free(em_scheduler *s);
EM_API int em_scheduler_step(em_scheduler *s);
EM_API int em_scheduler_epoch(const em_scheduler *s);

#ifdef __cplusplus
}
#endif
#endif
