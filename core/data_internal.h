/* core/data_internal.h - the dataset structures shared by data.c, data_collate.c, data_split.c,
 * data_scaler.c and dataloader.c. Not installed.
 *
 * A dataset handle is a view: a shared, reference-counted source (the data) plus an optional
 * index map (a split). Sources are either an in-memory store (contiguous CPU tensors whose
 * first dim indexes the samples: what spec-built datasets and TensorDataset hold, collated by
 * memcpy) or a user vtable (collated sample by sample through get_item).
 */
#ifndef EMBER_CORE_DATA_INTERNAL_H
#define EMBER_CORE_DATA_INTERNAL_H

#include "ember/data.h"
#include "internal.h"

typedef enum { EM__SRC_STORE = 1, EM__SRC_OPS } em__src_kind;

typedef struct em__dsource {
    atomic_int refs;
    em__src_kind kind;
    char *repr;                  /* "CSV(path=...)", "TensorDataset(...)", "Dataset(user)" */
    /* EM__SRC_OPS */
    em_dataset_ops ops;
    void *ctx;
    /* EM__SRC_STORE: x (N, ...) and y (N, ...) or NULL, contiguous, in host memory */
    em_tensor *x, *y;
    int64_t n;
    size_t x_row, y_row;         /* bytes per sample */
    /* standardisation: x_scaled holds (x - mean) / std, same layout and dtype as x */
    void *x_scaled;
    float *mean, *std;
    int64_t nfeat;               /* elements per sample */
    bool scaler_required;        /* reading fails until statistics are given */
} em__dsource;

struct em_dataset {
    em__dsource *src;            /* one reference */
    int64_t *map;                /* split: source indices of this view's samples; else NULL */
    int64_t n;                   /* samples in the view (map != NULL) */
};

void em__dsource_retain(em__dsource *s);
void em__dsource_release(em__dsource *s);
/* The source's sample count (calls a user len), or a negative status. */
int64_t em__dsource_len(em__dsource *s);
/* EM_OK, or an error when the source cannot be read yet (standardisation pending). */
int em__dsource_check_ready(const em__dsource *s, const char *fn);
/* Sample i of a user (EM__SRC_OPS) source through its get_item: new references in *x and *y
 * (*y NULL when unlabeled), or a negative status with both NULL. */
int em__dsource_user_get(em__dsource *s, int64_t i, em_tensor **x, em_tensor **y);
/* The first element of t, whose storage must be in host memory (a store's or a batch's). */
void *em__host_ptr(em_tensor *t);

/* Stacks the samples idx[0..count) of the source into new CPU tensors *x (count, ...) and *y
 * (count, ...) or NULL (unlabeled). `cpu` is the CPU device, resolved by the caller. Safe to
 * call from a worker thread: it allocates CPU tensors and copies, nothing else (user get_item
 * aside, whose thread safety is the user's contract). */
int em__collate(em__dsource *s, const int64_t *idx, int64_t count, em_device cpu, em_tensor **x,
                em_tensor **y);

/* A permutation of 0..n-1 (Fisher-Yates) from the Philox stream keyed by `key`, using block
 * counters from `ctr_base` on: integer arithmetic only, the same everywhere. */
void em__philox_permutation(int64_t *perm, int64_t n, uint64_t key, uint64_t ctr_base);

#endif
