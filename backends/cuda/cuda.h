/* backends/cuda/cuda.h - what the CUDA backend's C files share: the device table, the
 * stream and pool of each device, and the launchers of kernels.cu (a C interface, so that the
 * kcall unpacking stays in C compiled with the project's warnings).
 *
 * Private to backends/cuda/ (hidden by -fvisibility=hidden). Names follow the other backends'
 * (em_cpu__, em_ocl__): cross-file functions em_cuda__name, types em_cuda_name, macros and
 * enum values EM_CUDA_NAME. One stream per device, created at the device's first use: every kernel,
 * copy and cuBLAS call of a device goes to it in order, which is what lets released blocks
 * be reused at once by the caching allocator.
 */
#ifndef EMBER_BACKENDS_CUDA_H
#define EMBER_BACKENDS_CUDA_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "caching.h"
#include "kernels.h"

#include "ember/plugin.h"

#define EM_CUDA_MAX_DEVICES 16

typedef struct em_cuda_device {
    char name[128];
    size_t total_mem;
    int sms;
    int cc_major, cc_minor;

    pthread_mutex_t lock;          /* stream creation, the pool, the cuBLAS handle */
    bool ready;
    int ready_err;                 /* nonzero cudaError_t: making the stream failed */
    void *stream;                  /* cudaStream_t */
    void *cublas;                  /* cublasHandle_t, created at the first matmul */
    em_cuda_pool pool;
} em_cuda_device;

typedef struct em_cuda_state {
    int ndev;
    em_cuda_device dev[EM_CUDA_MAX_DEVICES];
    char unavailable[256];         /* empty when usable */
} em_cuda_state;

extern em_cuda_state em_cuda__state;

/* The device for index `dev`, made current on this thread and its stream created on first
 * use; NULL with the error set (naming `what`). */
em_cuda_device *em_cuda__device(int dev, const char *what);
/* Sets "cuda: <what>: <call> failed: <cudaGetErrorString>" and returns EM_ERR_DEVICE. */
int em_cuda__fail(const char *what, const char *call, int cuda_err);

/* memory.c */
void *em_cuda__alloc(void *ctx, int dev, size_t nbytes);
void em_cuda__free(void *ctx, int dev, void *buf, size_t nbytes);
int em_cuda__memory_stats(void *ctx, int dev, em_memory_stats *out);
int em_cuda__empty_cache(void *ctx, int dev);
int em_cuda__reset_peak(void *ctx, int dev);
int em_cuda__copy_from_host(void *ctx, int dev, void *dst, size_t dst_off, const void *src,
                            size_t nbytes);
int em_cuda__copy_to_host(void *ctx, int dev, void *dst, const void *src, size_t src_off,
                          size_t nbytes);
int em_cuda__copy_device(void *ctx, int dev_dst, void *dst, size_t dst_off, int dev_src,
                         const void *src, size_t src_off, size_t nbytes);
void em_cuda__pool_raw(em_cuda_raw *raw, int dev);

/* ops.c: registers the primitives' kernels on backend "cuda"; rows.c the fused row kernels
 * (softmax, log_softmax, cross_entropy and its backward). */
int em_cuda__register_kernels(em_registry *reg);
int em_cuda__register_rows(em_registry *reg);
/* Destroys d's cuBLAS handle if one was made (at shutdown). */
void em_cuda__cublas_destroy(em_cuda_device *d);

#endif
