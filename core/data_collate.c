/* core/data_collate.c - collation: stacking a dataset's samples into the batch tensors the
 * DataLoader hands out, with one memcpy per sample from an in-memory store, or sample by
 * sample through a user get_item (checking every sample has the first one's layout).
 *
 * Not here: the DataLoader's workers and prefetching (core/dataloader.c).
 */
#include <string.h>

#include "data_internal.h"

/* ---- collation ---------------------------------------------------------------------------------- */

/* A new CPU tensor (count, *sample_shape) for stacking samples of `like`'s layout, where
 * `like` is either a store tensor (first dim = samples) or one sample. */
static em_tensor *batch_alloc(em_device cpu, em_dtype dt, int ndim, const int64_t *shape,
                              int64_t count)
{
    int64_t bshape[EM_MAX_DIMS];
    if (ndim + 1 > EM_MAX_DIMS) {
        em_set_error(EM_ERR_INVALID, "collate: a sample of %d dims has no room for a batch dim "
                                     "(at most %d dims)",
                     ndim, EM_MAX_DIMS);
        return NULL;
    }
    bshape[0] = count;
    memcpy(bshape + 1, shape, (size_t)ndim * sizeof *shape);
    return em__tensor_alloc(cpu, dt, ndim + 1, bshape);
}

static int collate_store(em__dsource *s, const int64_t *idx, int64_t count, em_device cpu,
                         em_tensor **x, em_tensor **y)
{
    *x = batch_alloc(cpu, s->x->dtype, s->x->ndim - 1, s->x->shape + 1, count);
    *y = s->y ? batch_alloc(cpu, s->y->dtype, s->y->ndim - 1, s->y->shape + 1, count) : NULL;
    if (!*x || (s->y && !*y))
        return em_last_status();
    const char *xs = s->x_scaled ? s->x_scaled : em__host_ptr(s->x);
    char *xd = em__host_ptr(*x);
    for (int64_t i = 0; i < count; i++)
        memcpy(xd + (size_t)i * s->x_row, xs + (size_t)idx[i] * s->x_row, s->x_row);
    if (s->y) {
        const char *ys = em__host_ptr(s->y);
        char *yd = em__host_ptr(*y);
        for (int64_t i = 0; i < count; i++)
            memcpy(yd + (size_t)i * s->y_row, ys + (size_t)idx[i] * s->y_row, s->y_row);
    }
    return EM_OK;
}

/* Copies one sample tensor into row i of a batch, checking it has the first sample's layout. */
static int put_sample(em_tensor *batch, int64_t i, em_tensor *t, const char *what, int64_t index,
                      int64_t first)
{
    char a[128], b[128];
    int nd = batch->ndim - 1;
    if (t->dtype != batch->dtype || t->ndim != nd ||
        (nd && memcmp(t->shape, batch->shape + 1, (size_t)nd * sizeof t->shape[0])))
        return em_set_error(EM_ERR_INVALID, "collate: sample %lld has %s of shape %s %s, but "
                                            "sample %lld had %s %s",
                            (long long)index, what, em__shape_str(t->ndim, t->shape, a, sizeof a),
                            em_dtype_name(t->dtype), (long long)first,
                            em__shape_str(nd, batch->shape + 1, b, sizeof b),
                            em_dtype_name(batch->dtype));
    size_t row = (size_t)t->numel * em_dtype_size(t->dtype);
    char *dst = (char *)em__host_ptr(batch) + (size_t)i * row;
    if (t->storage->be->ops->host_accessible && em_is_contiguous(t)) {
        memcpy(dst, em__host_ptr(t), row);
        return EM_OK;
    }
    return em_copy_to_host(t, dst, row);
}

static int collate_user(em__dsource *s, const int64_t *idx, int64_t count, em_device cpu,
                        em_tensor **x, em_tensor **y)
{
    bool labeled = false;
    for (int64_t i = 0; i < count; i++) {
        em_tensor *xi, *yi;
        int rc = em__dsource_user_get(s, idx[i], &xi, &yi);
        if (rc < 0)
            return rc;
        if (i == 0) {
            labeled = yi != NULL;
            *x = batch_alloc(cpu, xi->dtype, xi->ndim, xi->shape, count);
            if (*x && yi)
                *y = batch_alloc(cpu, yi->dtype, yi->ndim, yi->shape, count);
            if (!*x || (yi && !*y))
                rc = em_last_status();
        } else if (labeled != (yi != NULL)) {
            rc = em_set_error(EM_ERR_INVALID, "collate: sample %lld %s a label but sample %lld "
                                              "%s",
                              (long long)idx[i], yi ? "has" : "has no", (long long)idx[0],
                              labeled ? "had one" : "did not");
        }
        if (rc == EM_OK)
            rc = put_sample(*x, i, xi, "x", idx[i], idx[0]);
        if (rc == EM_OK && yi)
            rc = put_sample(*y, i, yi, "y", idx[i], idx[0]);
        em_release(xi);
        em_release(yi);
        if (rc < 0)
            return rc;
    }
    return EM_OK;
}

int em__collate(em__dsource *s, const int64_t *idx, int64_t count, em_device cpu, em_tensor **x,
                em_tensor **y)
{
    *x = *y = NULL;
    int rc = s->kind == EM__SRC_STORE ? collate_store(s, idx, count, cpu, x, y)
                                      : collate_user(s, idx, count, cpu, x, y);
    if (rc < 0) {
        em_release(*x);
        em_release(*y);
        *x = *y = NULL;
    }
    return rc;
}
