/* plugins/nn/embedding.c - Embedding(num_embeddings, embedding_dim, padding_idx=None): a
 * lookup table.
 *
 *   weight: (num_embeddings, embedding_dim), indices: any shape (int64 or int32),
 *   y: (*indices.shape, embedding_dim), y[..., :] = weight[index, :]
 *
 * The lookup is em_gather along dim 0 with each index repeated across the row (an expanded,
 * stride-0 view), so the gradient is gather's scatter_add into the table. Indices are checked
 * on the host first, so an index out of range is an error naming it and its position. The
 * weight starts N(0, 1) (PyTorch's normal_()), with the padding_idx row zeroed; that row
 * receives no gradient (its lookups go through a detached copy of the table).
 */
#include <stdlib.h>

#include "nn.h"

static const em_param_decl embedding_params[] = {
    {"num_embeddings", EM_PARAM_INT, NULL},
    {"embedding_dim", EM_PARAM_INT, NULL},
    {"padding_idx", EM_PARAM_INT, "None"},
    {"device", EM_PARAM_STRING, "None"},
    {"dtype", EM_PARAM_STRING, "None"},
};

typedef struct embedding_state {
    int64_t padding_idx;   /* normalised to [0, num_embeddings); -1 when None */
} embedding_state;

static int embedding_init(em_module *m, const em_args *a)
{
    embedding_state *s = em_module_private(m);
    int64_t n = em_args_int(a, "num_embeddings"), d = em_args_int(a, "embedding_dim");
    if (n <= 0)
        return em_set_error(EM_ERR_INVALID, "Embedding: num_embeddings must be positive, got %lld",
                            (long long)n);
    if (d <= 0)
        return em_set_error(EM_ERR_INVALID, "Embedding: embedding_dim must be positive, got %lld",
                            (long long)d);
    s->padding_idx = -1;
    if (em_args_has(a, "padding_idx")) {
        int64_t p = em_args_int(a, "padding_idx");
        if (p < -n || p >= n)
            return em_set_error(EM_ERR_INVALID,
                                "Embedding: padding_idx must be within num_embeddings (in [%lld, "
                                "%lld]), got %lld",
                                (long long)-n, (long long)(n - 1), (long long)p);
        s->padding_idx = p < 0 ? p + n : p;
    }
    em_opts o;
    int rc = nn__factory_opts("Embedding", a, &o);
    if (rc < 0)
        return rc;
    em_tensor *w = em_randn(EM_SHAPE(n, d), &o);
    if (w && s->padding_idx >= 0) {
        em_tensor *row = em_select(w, 0, s->padding_idx);
        em_tensor *z = row ? em_zero_(row) : NULL;
        if (!z) {
            em_release(w);
            w = NULL;
        }
        em_release(z);
        em_release(row);
    }
    return nn__add_param(m, "weight", w);
}

/* The indices as int64, checked against the table size on the host. */
static em_tensor *checked_indices(em_tensor *idx, int64_t n)
{
    em_dtype dt = em_dtype_of(idx);
    if (dt != EM_I64 && dt != EM_I32) {
        em_set_error(EM_ERR_INVALID, "Embedding: indices must be int64 or int32, got %s",
                     em_dtype_name(dt));
        return NULL;
    }
    em_tensor *i64 = em_to_dtype(idx, EM_I64);
    int64_t k = em_numel(idx);
    int64_t *v = malloc((size_t)(k ? k : 1) * sizeof *v);
    if (!i64 || !v) {
        if (!v)
            em_set_error(EM_ERR_NOMEM, "Embedding: out of memory");
        free(v);
        em_release(i64);
        return NULL;
    }
    int rc = em_copy_to_host(i64, v, (size_t)k * sizeof *v);
    for (int64_t i = 0; rc == EM_OK && i < k; i++)
        if (v[i] < 0 || v[i] >= n)
            rc = em_set_error(EM_ERR_INVALID,
                              "Embedding: index %lld is out of range for %lld embeddings (at "
                              "position %lld)",
                              (long long)v[i], (long long)n, (long long)i);
    free(v);
    if (rc < 0) {
        em_release(i64);
        return NULL;
    }
    return i64;
}

static em_tensor *embedding_forward(em_module *m, int nin, em_tensor *const *in)
{
    (void)nin;
    const embedding_state *s = em_module_private(m);
    em_tensor *w = em_module_parameter(m, "weight");
    int64_t n = em_shape(w)[0], d = em_shape(w)[1];
    if (em_ndim(in[0]) + 1 > EM_MAX_DIMS) {
        em_set_error(EM_ERR_INVALID, "Embedding: indices have too many dims (%d)",
                     em_ndim(in[0]));
        return NULL;
    }
    em_tensor *idx = checked_indices(in[0], n);
    if (!idx)
        return NULL;
    int64_t k = em_numel(idx);
    em_tensor *col = em_reshape(idx, EM_SHAPE(k, 1));
    em_tensor *rows = em_expand(col, EM_SHAPE(k, d));
    em_tensor *flat = em_gather(w, 0, rows);
    if (flat && s->padding_idx >= 0 && em_requires_grad(w)) {
        /* lookups of padding_idx read a detached table: no gradient reaches that row */
        em_opts oi = {.dtype = EM_I64, .device = em_device_of(w)};
        em_tensor *det = em_detach(w);
        em_tensor *g0 = em_gather(det, 0, rows);
        em_tensor *pad = em_full(EM_SCALAR, (double)s->padding_idx, &oi);
        em_tensor *is_pad = em_eq(rows, pad);
        em_tensor *sel = em_where(is_pad, g0, flat);
        em_release(det);
        em_release(g0);
        em_release(pad);
        em_release(is_pad);
        em_release(flat);
        flat = sel;
    }
    em_release(rows);
    int nd = em_ndim(idx);
    int64_t shape[EM_MAX_DIMS];
    for (int i = 0; i < nd; i++)
        shape[i] = em_shape(idx)[i];
    shape[nd] = d;
    em_tensor *y = em_reshape(flat, nd + 1, shape);
    em_release(flat);
    em_release(col);
    em_release(idx);
    return y;
}

static void embedding_repr(const em_module *m, char *buf, size_t size)
{
    const em_args *a = em_module_args(m);
    int k = snprintf(buf, size, "%lld, %lld", (long long)em_args_int(a, "num_embeddings"),
                     (long long)em_args_int(a, "embedding_dim"));
    if (em_args_has(a, "padding_idx") && k >= 0 && (size_t)k < size)
        snprintf(buf + k, size - (size_t)k, ", padding_idx=%lld",
                 (long long)em_args_int(a, "padding_idx"));
}

static const em_module_ops embedding_types[] = {
    NN_MODULE_R("Embedding", embedding_params, sizeof(embedding_state), 1, embedding_init,
                embedding_forward, NULL, embedding_repr),
};

int nn__register_embedding(em_registry *reg)
{
    return nn__register_all(reg, embedding_types,
                            sizeof embedding_types / sizeof embedding_types[0]);
}
