/* ember/data.h - datasets and the DataLoader: torch.utils.data in C.
 *
 * A dataset is a length and a way to get sample i as a pair of tensors (x, y). It is either
 * written by the user in C (the tutorial's CustomDataset: a vtable with len and get_item),
 * built from a spec by a plugin (CSV(path="data.csv", label="label"), MNIST(train=true)), or
 * made from two tensors whose first dimension indexes the samples (TensorDataset). Datasets
 * built from tensors or specs keep their samples in one contiguous in-memory store, so the
 * DataLoader collates a batch with one memcpy per sample; user datasets go through get_item.
 *
 * The DataLoader turns a dataset into batches: x stacked to (B, *sample_shape) and y to
 * (B, *label_shape) (class labels: (B,) int64), in order or shuffled with a seed, on a target
 * device, with a background thread that prepares the next batches while the caller computes.
 *
 *     em_dataset *d = em_dataset_new("CSV(path=\"digits.csv\", scale=0.0625)");
 *     em_dataset *parts[2];
 *     em_random_split(d, 2, (const double[]){0.8, 0.2}, 42, parts);
 *     em_dataloader *dl = em_dataloader_new(parts[0], 64, true, 42);
 *     for (int epoch = 0; epoch < 10; epoch++) {
 *         em_tensor *x, *y;
 *         while (em_dataloader_next(dl, &x, &y)) { ...; em_release(x); em_release(y); }
 *         if (em_last_status() != EM_OK) { ... em_last_error() ... }
 *     }
 *
 * Handles: em_dataset_free and em_dataloader_free free the handle they are given. The data
 * underneath is shared by a dataset, its splits and the loaders over them, and lives until the
 * last of them is freed, so they may be freed in any order. Free every loader and dataset
 * before em_shutdown() (a dataset from a plugin may point into the plugin's code).
 *
 * Threads: a dataset may be read (em_dataset_get, loaders) from several threads at once;
 * changing it (em_dataset_fit_scaler, em_dataset_set_scaler) must not overlap any reading.
 * A DataLoader is used from one thread at a time.
 */
#ifndef EMBER_DATA_H
#define EMBER_DATA_H

#include "types.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct em_dataset em_dataset;
typedef struct em_dataloader em_dataloader;

/* ---- datasets: lifecycle --------------------------------------------------------------- */

/* Builds a dataset from a spec whose type a plugin registered: "CSV(path=\"d.csv\")",
 * "MNIST(train=false)". NULL with an error naming the type, the argument, or the file, line
 * and column of a malformed input ("d.csv:17:5: expected a number, got 'abc'"). Relative
 * paths are resolved against the current directory. */
EM_API em_dataset *em_dataset_new(const char *spec);

/* A dataset written in C (torch.utils.data.Dataset): `len` and `get_item` are the tutorial's
 * __len__ and __getitem__. The table starts with struct_size so that it can grow. */
typedef struct em_dataset_ops {
    size_t struct_size;                  /* sizeof(em_dataset_ops) */
    /* The number of samples (>= 0), or a negative status after em_set_error(). */
    int64_t (*len)(void *ctx);
    /* Sample `index` (0 <= index < len) as new references: *x the features, *y the label
     * (*y may be left NULL for an unlabeled dataset, the same for every sample). Returns EM_OK
     * or a negative status after em_set_error() (ember/plugin.h). Every sample must have the
     * same shapes and dtypes. Create CPU tensors (em_opts .device = em_device_parse("cpu")):
     * with prefetching on (the default) this runs on the DataLoader's background thread, where
     * only CPU tensors may be built, concurrently with the caller's own use of Ember. Tensors
     * created here are never collected by an em_scope of the calling thread: release your
     * temporaries yourself. */
    int (*get_item)(void *ctx, int64_t index, em_tensor **x, em_tensor **y);
    /* optional: called once, when the last handle on the data (the dataset, its splits and
     * loaders) is freed. */
    void (*destroy)(void *ctx);
} em_dataset_ops;

/* Wraps a user vtable. `ops` is copied; ctx is passed to every call and handed to destroy.
 * NULL if ops is incomplete (destroy is not called then). */
EM_API em_dataset *em_dataset_from_ops(const em_dataset_ops *ops, void *ctx);

/* torch.utils.data.TensorDataset: sample i is (x[i], y[i]). x has shape (N, ...), y shape
 * (N, ...) or y is NULL (unlabeled). Contiguous CPU tensors are shared, not copied (writing
 * them later shows through, as in PyTorch); others are copied to contiguous CPU memory.
 * The samples live in the in-memory store the DataLoader collates with memcpy. */
EM_API em_dataset *em_dataset_from_tensors(em_tensor *x, em_tensor *y);

/* Frees this handle (NULL: no-op). Splits and loaders made from it keep working. */
EM_API void em_dataset_free(em_dataset *d);

/* ---- datasets: reading ----------------------------------------------------------------- */

/* The number of samples (len(d)), or a negative status. */
EM_API int64_t em_dataset_len(em_dataset *d);

/* Sample i (0 <= i < len) as new references to CPU tensors: x with the sample's shape, y with
 * the label's (0-dim for a class label), or NULL for an unlabeled dataset. Returns EM_OK or a
 * negative status ("em_dataset_get: index 10 out of range for a dataset of 10 samples"). */
EM_API int em_dataset_get(em_dataset *d, int64_t i, em_tensor **x, em_tensor **y);

/* What a sample looks like (the layout of x and y in a batch, without the batch dim). */
typedef struct em_sample_info {
    int x_ndim;
    int64_t x_shape[EM_MAX_DIMS];
    em_dtype x_dtype;
    int y_ndim;
    int64_t y_shape[EM_MAX_DIMS];
    em_dtype y_dtype;                   /* EM_DTYPE_UNSPEC for an unlabeled dataset */
    /* Integer labels of an in-memory dataset: 1 + the largest label over all of its data
     * (splits included), i.e. the class count when classes are 0..C-1; 0 when unknown. */
    int64_t num_classes;
} em_sample_info;

/* Fills *out from the store, or from sample 0 for a user dataset (an error if it is empty). */
EM_API int em_dataset_sample_info(em_dataset *d, em_sample_info *out);

/* The spec that builds the data ("CSV(path=\"d.csv\", scale=0.0625)"), "Subset(<that>, n)"
 * for a split, "TensorDataset(...)" or "Dataset(user)". Caller frees. */
EM_API char *em_dataset_str(const em_dataset *d);

/* ---- splits ------------------------------------------------------------------------------ */

/* torch.utils.data.random_split: writes n_parts new datasets to out[], views over d that
 * share its data through an index map. `sizes` are either fractions summing to 1 (each part
 * gets floor(f * len), and the remaining samples go one each to the first parts, as PyTorch
 * does) or sample counts summing to len(d). The samples are dealt from one permutation of
 * 0..len-1 drawn from the Philox 4x32-10 stream keyed by `seed`, with integer arithmetic only:
 * the same seed gives the same parts on every machine. Part k holds the next sizes[k] indices
 * of the permutation. Returns EM_OK or a negative status (out[] then holds NULLs). */
EM_API int em_random_split(em_dataset *d, int n_parts, const double *sizes, uint64_t seed,
                           em_dataset **out);

/* ---- standardisation -------------------------------------------------------------------- */

/* x' = (x - mean) / std per feature element (sklearn's StandardScaler), with statistics from
 * a training split so that no test sample leaks into them. Applies to in-memory datasets with
 * float features; the change is made to d's shared data, so every split of it sees it.
 *
 * em_dataset_fit_scaler computes mean and population std of each feature element over the
 * samples of `train` (d itself, a split of d, or another in-memory dataset with the same
 * sample shape, e.g. a separate training file) and applies them to d. A feature with std 0
 * gets std 1. Statistics are always computed from the raw values, so fitting again replaces
 * the previous ones rather than compounding them.
 *
 * A dataset built with CSV(..., standardize=true) (or marked with em_dataset_require_scaler)
 * cannot be read until one of these two functions has given it statistics: reading fails with
 * an error saying so. This is deliberate: statistics over the whole file would leak the test
 * split into training. The usual sequence is split, then em_dataset_fit_scaler(d, parts[0]). */
EM_API int em_dataset_fit_scaler(em_dataset *d, const em_dataset *train);
/* Applies given statistics (e.g. saved with a checkpoint), n = elements per sample. */
EM_API int em_dataset_set_scaler(em_dataset *d, const float *mean, const float *std, int64_t n);
/* The statistics in use: returns n (elements per sample) and borrowed arrays valid until the
 * next fit/set or until the data is freed; 0 when d is not standardised. */
EM_API int64_t em_dataset_scaler(const em_dataset *d, const float **mean, const float **std);
/* Marks d's data as needing standardisation before it is read (see above). */
EM_API int em_dataset_require_scaler(em_dataset *d);
/* True when d's data was marked so (CSV(standardize=true)) and has no statistics yet: what a
 * training driver checks to know that it must call em_dataset_fit_scaler. */
EM_API bool em_dataset_needs_scaler(const em_dataset *d);

/* ---- the DataLoader ------------------------------------------------------------------------ */

/* A loader over d (which it keeps alive) with batch_size >= 1. With shuffle, the order of
 * epoch k is a permutation drawn from Philox keyed by (seed, k): two loaders with the same
 * seed give the same batches, on every machine, and each epoch has its own order. Defaults:
 * drop_last off, batches on the default device, one background thread prefetching 2 batches.
 * NULL with the error set on bad arguments. */
EM_API em_dataloader *em_dataloader_new(em_dataset *d, int64_t batch_size, bool shuffle,
                                        uint64_t seed);
/* Stops the prefetch thread (joined) and frees the loader and any batches it prepared. */
EM_API void em_dataloader_free(em_dataloader *dl);

/* Settings take effect from the next epoch; changing one in the middle of an epoch is an
 * EM_ERR_STATE error (call them before iterating, or right after an epoch ended). */
EM_API int em_dataloader_set_drop_last(em_dataloader *dl, bool drop_last);
/* Where batches are delivered. Batches are always collated in CPU memory (on the prefetch
 * thread when prefetching); the copy to another device (em_to) runs on the calling thread,
 * inside em_dataloader_next. */
EM_API int em_dataloader_set_device(em_dataloader *dl, em_device d);
/* Number of batches prepared ahead by one background thread; 0 collates on the calling
 * thread inside em_dataloader_next (what a user get_item that is not thread safe needs). */
EM_API int em_dataloader_set_prefetch(em_dataloader *dl, int batches);

/* How a sharded epoch treats the samples left over when len does not divide by world. */
typedef enum em_shard_mode {
    EM_SHARD_PAD = 1,    /* wrap around to the first samples of the epoch's order, so every
                            rank gets ceil(len / world) (DistributedSampler's default) */
    EM_SHARD_DROP,       /* drop the tail: floor(len / world) each (drop_last=True) */
    EM_SHARD_UNEVEN,     /* no padding, no drop: ranks get unequal counts and every sample
                            is seen exactly once (exact whole-set evaluation) */
    EM_SHARD_MODE_COUNT
} em_shard_mode;
/* PyTorch's DistributedSampler: each epoch's order (the same (seed, epoch) shuffle on every
 * rank) is cut so that rank r takes positions r, r + world, r + 2 world, ... ; batches are then
 * formed from that share. world = 1 (the default) turns sharding off. */
EM_API int em_dataloader_set_shard(em_dataloader *dl, int rank, int world, em_shard_mode mode);

/* The next batch of the current epoch as new references (registered with the current
 * em_scope, like every tensor Ember returns): x of shape (B, *sample_shape), y of shape
 * (B, *label_shape) or NULL for an unlabeled dataset. B is the batch size except for the last
 * batch of an epoch without drop_last, which holds the remainder. Returns false at the end of
 * the epoch (em_last_status() == EM_OK; the next call starts the next epoch) or on an error
 * (em_last_status() < 0, em_last_error() says what; the rest of the epoch is dropped). */
EM_API bool em_dataloader_next(em_dataloader *dl, em_tensor **x, em_tensor **y);

/* Starts a new epoch: drops what is left of the current one and moves to the next epoch's
 * order. A no-op when no batch of the current epoch has been taken yet, so both "reset, then
 * iterate" and "iterate, then reset" number epochs 0, 1, 2, ... */
EM_API int em_dataloader_reset(em_dataloader *dl);
/* Positions the loader at the start of epoch k (resuming a run: the order of epoch k is the
 * same as in the run that was interrupted). */
EM_API int em_dataloader_set_epoch(em_dataloader *dl, int64_t epoch);
/* The epoch the next batch belongs to (starting at 0). */
EM_API int64_t em_dataloader_epoch(const em_dataloader *dl);
/* Batches per epoch: ceil(len / B), or floor(len / B) with drop_last, len being this rank's
 * share when sharded; negative on error. */
EM_API int64_t em_dataloader_num_batches(const em_dataloader *dl);

#ifdef __cplusplus
}
#endif
#endif
