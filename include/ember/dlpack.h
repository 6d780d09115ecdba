/* ember/dlpack.h - zero-copy exchange of tensors with other array libraries through DLPack.
 *
 * DLPack (https://dmlc.github.io/dlpack/) is the C struct NumPy, PyTorch, JAX, CuPy and others
 * hand each other to share a tensor's memory without a copy: torch.from_dlpack, numpy's
 * from_dlpack. em_to_dlpack lends an Ember tensor to such a library; em_from_dlpack views
 * another library's tensor as an Ember tensor. Both share memory: a write on either side shows
 * on the other.
 *
 * This header is separate from ember.h because it includes <dlpack/dlpack.h> (Debian:
 * libdlpack-dev); include it only where you exchange tensors. Ember speaks the unversioned
 * DLManagedTensor of DLPack 0.6 and later (what Python's __dlpack__ hands over in a
 * "dltensor" capsule).
 *
 * What maps: every Ember dtype (float32/64/16, bfloat16, int64/32, uint8, bool as DLPack 0.8's
 * kDLBool with 8 bits); CPU tensors (kDLCPU, and kDLCUDAHost pinned memory on import); device
 * tensors of a backend whose buffers are raw device pointers (the CUDA backend: kDLCUDA).
 * OpenCL buffers are cl_mem handles that no DLPack consumer can address: OpenCL tensors are
 * refused (em_cpu copies one to the CPU). Autograd does not see writes made through another
 * library: a tensor's version counter is not bumped by them.
 */
#ifndef EMBER_DLPACK_H
#define EMBER_DLPACK_H

#include <dlpack/dlpack.h>

#include "tensor.h"
#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Lends t's memory to a DLPack consumer without a copy: the returned DLManagedTensor
 * describes t's shape, strides (always given, in elements), dtype and device, and holds a
 * reference on t, so t's memory stays valid after the caller releases t. The consumer calls
 * m->deleter(m) exactly once when done with it; that drops the reference and frees m. Call
 * the deleter before em_shutdown().
 *
 * For a device tensor the device is synchronized first, so the memory holds its values when
 * the consumer reads it. NULL with an error for a NULL tensor, a tensor that requires grad
 * (PyTorch refuses those too: export em_detach(t)), or a tensor whose backend cannot share
 * its buffers (OpenCL). Thread-safe; the deleter may run on any thread. */
EM_API DLManagedTensor *em_to_dlpack(em_tensor *t);

/* A tensor that views m's memory without a copy, on the matching device (kDLCPU -> "cpu",
 * kDLCUDA with device_id 1 -> "cuda:1"), with m's strides and byte_offset honoured. On
 * success the tensor owns m: m->deleter(m) is called once, when the last view of that memory
 * dies (not before, even if the returned tensor is released first). The memory must stay as
 * the producer left it until then, and on a device it must hold its values when this is
 * called (the producer has synchronized).
 *
 * On failure: NULL with an error, and m is not consumed (the caller still owns it and calls
 * its deleter). Refused: a NULL m or data pointer with elements, more dimensions than
 * EM_MAX_DIMS, a negative shape or stride, vector lanes, a dtype Ember lacks (int8, uint16,
 * complex, ...), data not aligned to its element size, or a device no loaded backend can
 * share. The new tensor does not require grad. Thread-safe. */
EM_API em_tensor *em_from_dlpack(DLManagedTensor *m);

#ifdef __cplusplus
}
#endif
#endif
