/* ember/tensor.h - creating tensors, their metadata, views and printing.
 *
 * An em_tensor is an opaque, reference-counted view: storage + offset + shape + strides (in
 * elements). Every function that returns a tensor returns a new reference (or NULL with
 * em_last_error() set); passing a tensor never transfers ownership. A NULL tensor argument
 * makes a function return NULL and keep the first error, so chains can be checked at the end.
 * Views share storage (and its version counter) with their base.
 *
 * Threads: once em_init has returned, any thread may call these functions. em_retain and
 * em_release are atomic, so threads may share and drop references to one tensor freely.
 * Reading a tensor from several threads at once (metadata, em_item, em_copy_to_host, printing,
 * making views) is safe. Writing one (an in-place op, em_requires_grad_, stores through
 * em_data_ptr) while another thread reads or writes the same storage is a data race that the
 * caller must serialise, as in PyTorch. The random creators draw from the global generator,
 * whose use is serialised inside.
 */
#ifndef EMBER_TENSOR_H
#define EMBER_TENSOR_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- reference counting ------------------------------------------------- */

EM_API void em_retain(em_tensor *t);    /* NULL: no-op */
EM_API void em_release(em_tensor *t);   /* NULL: no-op; underflow aborts (a bug) */

/* ---- creation ----------------------------------------------------------- */

/* Copies ndim/shape elements of type src from host memory (torch.tensor). opts->dtype casts;
 * unset keeps src. */
EM_API em_tensor *em_tensor_from_data(const void *data, em_dtype src, int ndim,
                                      const int64_t *shape, const em_opts *o);
/* Shares the caller's host memory (torch.from_numpy): a CPU tensor whose storage is `data`.
 * Writes through either side are visible on the other. free_fn(ctx) runs when the storage
 * dies (free_fn may be NULL). The memory must stay valid until then. */
EM_API em_tensor *em_tensor_from_blob(void *data, em_dtype dt, int ndim, const int64_t *shape,
                                      void (*free_fn)(void *), void *ctx);

EM_API em_tensor *em_empty(int ndim, const int64_t *shape, const em_opts *o);
EM_API em_tensor *em_zeros(int ndim, const int64_t *shape, const em_opts *o);
EM_API em_tensor *em_ones(int ndim, const int64_t *shape, const em_opts *o);
EM_API em_tensor *em_full(int ndim, const int64_t *shape, double value, const em_opts *o);
EM_API em_tensor *em_scalar(double value, const em_opts *o);      /* 0-dim tensor */
/* Uniform in [0, 1), standard normal, integers in [low, high): from the global generator. */
EM_API em_tensor *em_rand(int ndim, const int64_t *shape, const em_opts *o);
EM_API em_tensor *em_randn(int ndim, const int64_t *shape, const em_opts *o);
EM_API em_tensor *em_randint(int64_t low, int64_t high, int ndim, const int64_t *shape,
                             const em_opts *o);   /* default dtype: int64 */
/* Values start, start+step, ... below end (torch.arange). Integer dtype (int64) when start,
 * end and step are all whole numbers and opts->dtype is unset; f32 otherwise. */
EM_API em_tensor *em_arange(double start, double end, double step, const em_opts *o);
EM_API em_tensor *em_zeros_like(const em_tensor *t);
EM_API em_tensor *em_ones_like(const em_tensor *t);

/* ---- metadata ----------------------------------------------------------- */

EM_API int em_ndim(const em_tensor *t);
EM_API const int64_t *em_shape(const em_tensor *t);      /* borrowed, ndim entries */
EM_API const int64_t *em_strides(const em_tensor *t);    /* borrowed, in elements */
EM_API int64_t em_size(const em_tensor *t, int dim);     /* negative dims count from the end */
EM_API int64_t em_numel(const em_tensor *t);
EM_API int64_t em_storage_offset(const em_tensor *t);
EM_API em_dtype em_dtype_of(const em_tensor *t);
EM_API em_device em_device_of(const em_tensor *t);
EM_API bool em_is_contiguous(const em_tensor *t);
/* The storage's version counter: bumped by every in-place op on any view of it. */
EM_API uint64_t em_tensor_version(const em_tensor *t);
EM_API bool em_same_storage(const em_tensor *a, const em_tensor *b);

/* ---- data access -------------------------------------------------------- */

/* The value of a one-element tensor on any device, as double (NaN and error otherwise). */
EM_API double em_item(const em_tensor *t);
/* Copies t (any layout, any device) into dst as contiguous elements of t's dtype. nbytes
 * must be at least numel * element size. */
EM_API int em_copy_to_host(const em_tensor *t, void *dst, size_t nbytes);
/* Pointer to the first element of a CPU tensor (respecting its offset); NULL otherwise. */
EM_API void *em_data_ptr(em_tensor *t);

/* ---- views (share storage) ---------------------------------------------- */

/* reshape returns a view when strides allow and a copy otherwise; view always shares and
 * fails when it cannot. One dim may be -1. */
EM_API em_tensor *em_reshape(em_tensor *t, int ndim, const int64_t *shape);
EM_API em_tensor *em_view(em_tensor *t, int ndim, const int64_t *shape);
EM_API em_tensor *em_flatten(em_tensor *t, int start_dim, int end_dim);
EM_API em_tensor *em_transpose(em_tensor *t, int dim0, int dim1);
EM_API em_tensor *em_t(em_tensor *t);                              /* 2-D transpose */
EM_API em_tensor *em_permute(em_tensor *t, int ndim, const int *dims);
EM_API em_tensor *em_narrow(em_tensor *t, int dim, int64_t start, int64_t length);
/* t[start:end:step] along dim (Python slicing: negative start/end count from the end and are
 * clamped; step > 0). */
EM_API em_tensor *em_slice(em_tensor *t, int dim, int64_t start, int64_t end, int64_t step);
EM_API em_tensor *em_select(em_tensor *t, int dim, int64_t index);  /* drops dim */
EM_API em_tensor *em_squeeze(em_tensor *t, int dim);                /* dim of size 1 */
EM_API em_tensor *em_squeeze_all(em_tensor *t);
EM_API em_tensor *em_unsqueeze(em_tensor *t, int dim);
/* Broadcasts size-1 dims (stride 0) to shape; -1 keeps a size; new leading dims allowed. */
EM_API em_tensor *em_expand(em_tensor *t, int ndim, const int64_t *shape);
/* t itself (retained) when already contiguous, else a contiguous copy. */
EM_API em_tensor *em_contiguous(em_tensor *t);
EM_API em_tensor *em_clone(em_tensor *t);

/* ---- devices and dtypes ------------------------------------------------- */

EM_API em_tensor *em_to(em_tensor *t, em_device d);        /* t retained if already there */
EM_API em_tensor *em_cpu(em_tensor *t);
EM_API em_tensor *em_to_dtype(em_tensor *t, em_dtype dt);  /* t retained if already dt */

/* ---- printing ------------------------------------------------------------ */

/* PyTorch's repr: "tensor([[1, 2, 3],\n        [4, 5, 6]])" with dtype=, device=,
 * requires_grad= and grad_fn= suffixes where PyTorch shows them. Caller free()s. */
EM_API char *em_tensor_str(const em_tensor *t);
EM_API void em_print(const em_tensor *t);                  /* em_tensor_str + "\n" to stdout */

#ifdef __cplusplus
}
#endif
#endif
