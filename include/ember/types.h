/* ember/types.h - the basic vocabulary shared by every Ember header.
 *
 * dtypes, devices, status codes, creation options and the export macro. Nothing here
 * allocates or needs em_init(). Every enum that crosses the plugin ABI is append-only.
 */
#ifndef EMBER_TYPES_H
#define EMBER_TYPES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(EMBER_BUILDING_CORE) && defined(__GNUC__)
#define EM_API __attribute__((visibility("default")))
#else
#define EM_API
#endif

/* A function that never returns, in C11 and in C++ (which has no _Noreturn). */
#if defined(__cplusplus)
#define EM_NORETURN [[noreturn]]
#else
#define EM_NORETURN _Noreturn
#endif

/* ---- versions --------------------------------------------------------- */

#define EMBER_VERSION_MAJOR 0
#define EMBER_VERSION_MINOR 1
#define EMBER_VERSION_PATCH 0
#define EMBER_VERSION_STRING "0.1.0"

/* ---- limits ----------------------------------------------------------- */

#define EM_MAX_DIMS 8

/* ---- status codes: 0 is success, user errors are negative -------------- */

typedef enum em_status {
    EM_OK = 0,
    EM_ERR_INVALID = -1,     /* bad argument: shape, dtype, dim, NULL */
    EM_ERR_NOMEM = -2,       /* host or device allocation failed */
    EM_ERR_DEVICE = -3,      /* device mismatch, unknown or unavailable backend */
    EM_ERR_UNSUPPORTED = -4, /* no kernel and no composite for this op/backend/dtype */
    EM_ERR_IO = -5,          /* file missing, unreadable, malformed */
    EM_ERR_PLUGIN = -6,      /* a plugin failed to load or initialise */
    EM_ERR_STATE = -7,       /* call not valid now (not initialised, freed graph...) */
    EM_ERR_INTERNAL = -8,
} em_status;

/* ---- dtypes ------------------------------------------------------------ */

/* 0 means "unspecified" so that zero-initialised em_opts pick the default. */
typedef enum em_dtype {
    EM_DTYPE_UNSPEC = 0,
    EM_F32,
    EM_F64,
    EM_F16,
    EM_BF16,
    EM_I64,
    EM_I32,
    EM_U8,
    EM_BOOL,
    EM_DTYPE_COUNT
} em_dtype;

EM_API const char *em_dtype_name(em_dtype dt);   /* "float32", ... as PyTorch; "?" if bad */
EM_API size_t em_dtype_size(em_dtype dt);        /* bytes per element, 0 if bad */
EM_API bool em_dtype_is_float(em_dtype dt);      /* f32, f64, f16, bf16 */
EM_API em_dtype em_dtype_parse(const char *s);   /* "float32"/"f32"/"float"...; UNSPEC if bad */

/* ---- devices ----------------------------------------------------------- */

/* A device is a registered backend plus an index on it. Backend ids are handed out by the
 * registry as backends register, starting at 1; 0 means "unspecified" (the default device).
 * Parse names with em_device_parse("cuda:1"). */
typedef struct em_device {
    int32_t backend;
    int32_t index;
} em_device;

/* ---- creation options -------------------------------------------------- */

/* NULL, or any field left zero, means the default: f32 (from_data: the source dtype), the
 * default device, no grad. New fields are only ever added at the end. */
typedef struct em_opts {
    em_dtype dtype;
    em_device device;
    bool requires_grad;
} em_opts;

/* EM_SHAPE(2, 3) expands to the (ndim, shape) argument pair every creator takes.
 * A 0-dim (scalar) shape is EM_SCALAR. */
#define EM_SHAPE(...)                                                                   \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t)),                    \
        ((const int64_t[]){__VA_ARGS__})
#define EM_SCALAR 0, ((const int64_t *)0)

typedef struct em_tensor em_tensor;

#ifdef __cplusplus
}
#endif
#endif
