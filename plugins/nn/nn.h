/* plugins/nn/nn.h - what the nn plugin's files share: each family's registration function and
 * small helpers for argument checks, factory options (device=, dtype=), initialisation and
 * error messages.
 *
 * Private to plugins/nn/ (every symbol is hidden by -fvisibility=hidden); cross-file helpers
 * carry the nn__ prefix. Layers and losses are written with public ops only, so they run on
 * every backend and autograd records them; the ops this plugin adds (gelu.c: gelu; unfold.c:
 * im2col/col2im; losses.c: binary_cross_entropy) each have a composite in primitives, and the
 * first two a CPU kernel.
 */
#ifndef EMBER_PLUGINS_NN_H
#define EMBER_PLUGINS_NN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ember/ember.h"
#include "ember/plugin.h"

/* ---- registration (one function per file) ---------------------------------------------- */

int nn__register_linear(em_registry *reg);
/* Linear's forward on x, with the ReLU that follows it fused in when relu (em_linear_relu). */
em_tensor *nn__linear_forward(em_module *m, em_tensor *x, bool relu);
int nn__register_activations(em_registry *reg);
int nn__register_gelu_ops(em_registry *reg);
int nn__register_unfold_ops(em_registry *reg);
int nn__register_containers(em_registry *reg);
int nn__register_dropout(em_registry *reg);
int nn__register_batchnorm(em_registry *reg);
int nn__register_embedding(em_registry *reg);
int nn__register_conv(em_registry *reg);
int nn__register_losses(em_registry *reg);
/* conformance.c: cases for the plugin's ops (after them) */
int nn__register_conformance(em_registry *reg);

/* Declares an em_module_ops table with designated initialisers (fields appended to the ABI
 * later start out zero). */
#define NN_MODULE(name_, params_, state_, ninputs_, init_, forward_, destroy_)               \
    {.struct_size = sizeof(em_module_ops), .name = name_,                                    \
     .nparams = (int)(sizeof params_ / sizeof params_[0]), .params = params_,                \
     .state_size = state_, .ninputs = ninputs_, .init = init_, .forward = forward_,          \
     .destroy = destroy_}
/* The same with PyTorch's extra_repr for print(model). */
#define NN_MODULE_R(name_, params_, state_, ninputs_, init_, forward_, destroy_, repr_)      \
    {.struct_size = sizeof(em_module_ops), .name = name_,                                    \
     .nparams = (int)(sizeof params_ / sizeof params_[0]), .params = params_,                \
     .state_size = state_, .ninputs = ninputs_, .init = init_, .forward = forward_,          \
     .destroy = destroy_, .extra_repr = repr_}
/* The same for a type without arguments. */
#define NN_MODULE_NOARGS(name_, state_, ninputs_, init_, forward_, destroy_)                 \
    {.struct_size = sizeof(em_module_ops), .name = name_, .nparams = 0, .params = NULL,      \
     .state_size = state_, .ninputs = ninputs_, .init = init_, .forward = forward_,          \
     .destroy = destroy_}

/* Registers every table of `types` (n of them); stops at the first failure. */
int nn__register_all(em_registry *reg, const em_module_ops *types, size_t n);

/* ---- print(model) ---------------------------------------------------------------------------- */

/* Python's repr of a bool (True/False); em_float_repr (ember/spec.h) writes a float's. */
static inline const char *nn__bool_repr(bool b) { return b ? "True" : "False"; }
/* An int list argument as PyTorch prints it: "3" for one value, "(3, 3)" for several (pair: a
 * single value written twice, as Conv2d stores kernel_size). */
const char *nn__ints_repr(const em_args *a, const char *name, bool pair, char *buf,
                          size_t size);
/* The extra_repr of types that print no arguments (losses, as PyTorch's do). */
void nn__no_extra_repr(const em_module *m, char *buf, size_t size);

/* ---- messages ---------------------------------------------------------------------------- */

/* "[2, 3]" into buf (always NUL-terminated); returns buf. */
const char *nn__shape_str(const em_tensor *t, char *buf, size_t size);
/* The same for a shape given as numbers. */
const char *nn__dims_str(int ndim, const int64_t *shape, char *buf, size_t size);

/* ---- factory options ------------------------------------------------------------------------ */

/* The em_opts a layer creates its parameters with, from its `device` and `dtype` arguments
 * (PyTorch's factory kwargs: Linear(3, 4, dtype="float64")). None means the default device
 * and float32. A non-float dtype or an unknown name is an error naming the layer. */
int nn__factory_opts(const char *type, const em_args *a, em_opts *out);

/* Uniform values in [-bound, bound) from the global generator (PyTorch's uniform_(-b, b)). */
em_tensor *nn__uniform(int ndim, const int64_t *shape, double bound, const em_opts *o);

/* Registers t as a parameter of m and drops the caller's reference (also on failure). */
int nn__add_param(em_module *m, const char *name, em_tensor *t);
int nn__add_buffer(em_module *m, const char *name, em_tensor *t);

/* ---- checks ---------------------------------------------------------------------------------- */

/* Fails unless x is floating point and has the dtype of the layer's parameter w:
 * "Linear: input is float64 but the layer's parameters are float32 (...)". */
int nn__check_param_dtype(const char *type, const em_tensor *x, const em_tensor *w);
/* Fails unless x is floating point ("Dropout: input must be floating point, got int64"). */
int nn__check_float(const char *type, const char *what, const em_tensor *x);

/* Reads the INTS argument `name` as a pair (a single number is used twice, as PyTorch's
 * _pair does). Values below `min` are an error naming the argument. */
int nn__pair(const char *type, const em_args *a, const char *name, int64_t min, int64_t out[2]);

#endif
