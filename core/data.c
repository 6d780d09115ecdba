/* core/data.c - datasets: registered dataset types and building from specs, user datasets
 * (a vtable), in-memory stores (TensorDataset, and what plugins build), and reading samples.
 *
 * Not here: collation into batches (core/data_collate.c), random_split (core/data_split.c),
 * standardisation (core/data_scaler.c), the DataLoader (core/dataloader.c) and file formats
 * (plugins/data). The core keeps the data of spec-built datasets in its own store so that
 * batches are assembled with one memcpy per sample and nothing points back into the plugin
 * once the dataset exists.
 */
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "module_internal.h"

/* ---- the type registry ----------------------------------------------------------------------- */

typedef struct type_rec {
    const em_dataset_type_ops *ops;
    em_plugin_rec *owner;
} type_rec;

static type_rec *types;
static int ntypes;

int em_register_dataset(em_registry *reg, const em_dataset_type_ops *ops)
{
    if (!ops || ops->struct_size < offsetof(em_dataset_type_ops, create) + sizeof ops->create ||
        !ops->name || !ops->create || ops->nparams < 0 || (ops->nparams && !ops->params))
        return em_set_error(EM_ERR_INVALID, "em_register_dataset: incomplete dataset type");
    for (int i = 0; i < ntypes; i++)
        if (!strcmp(types[i].ops->name, ops->name))
            return em_set_error(EM_ERR_INVALID, "dataset type '%s' is already registered by %s",
                                ops->name, types[i].owner ? types[i].owner->path : "the core");
    type_rec *t = realloc(types, (size_t)(ntypes + 1) * sizeof *t);
    if (!t)
        return em_set_error(EM_ERR_NOMEM, "em_register_dataset: out of memory");
    types = t;
    types[ntypes++] = (type_rec){ops, reg ? reg->rec : NULL};
    return EM_OK;
}

void em__dataset_types_forget(em_plugin_rec *rec)
{
    int k = 0;
    for (int i = 0; i < ntypes; i++)
        if (types[i].owner != rec)
            types[k++] = types[i];
    ntypes = k;
}

void em__dataset_types_describe(const em_plugin_rec *r, em_strbuf *sb)
{
    bool first = true;
    for (int i = 0; i < ntypes; i++)
        if (types[i].owner == r) {
            em__sb_printf(sb, "%s%s", first ? (sb->len ? "; datasets " : "datasets ") : ", ",
                          types[i].ops->name);
            first = false;
        }
}

void em__dataset_types_free(void)
{
    free(types);
    types = NULL;
    ntypes = 0;
}

static const em_dataset_type_ops *find_type(const char *name)
{
    const char *names[256];
    int n = 0;
    for (int i = 0; i < ntypes; i++) {
        if (!strcmp(types[i].ops->name, name))
            return types[i].ops;
        if (n < 256)
            names[n++] = types[i].ops->name;
    }
    const char *best = em_closest_name(name, names, n);
    if (best)
        em_set_error(EM_ERR_INVALID, "unknown dataset type '%s'; did you mean '%s'?", name, best);
    else
        em_set_error(EM_ERR_INVALID, "unknown dataset type '%s' (%d types registered; is the "
                                     "data plugin loaded? see `ember info`)",
                     name, ntypes);
    return NULL;
}

/* ---- sources ------------------------------------------------------------------------------------ */

void em__dsource_retain(em__dsource *s) { atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed); }

void em__dsource_release(em__dsource *s)
{
    if (!s)
        return;
    int prev = atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel);
    EM_ASSERT(prev > 0);
    if (prev != 1)
        return;
    if (s->kind == EM__SRC_OPS && s->ops.destroy)
        s->ops.destroy(s->ctx);
    em_release(s->x);
    em_release(s->y);
    free(s->x_scaled);
    free(s->mean);
    free(s->std);
    free(s->repr);
    free(s);
}

int64_t em__dsource_len(em__dsource *s)
{
    if (s->kind == EM__SRC_STORE)
        return s->n;
    int64_t n = s->ops.len(s->ctx);
    if (n < 0 && em_last_status() == EM_OK)
        em_set_error(EM_ERR_INVALID, "dataset: len() returned %lld", (long long)n);
    return n < 0 ? (em_last_status() < 0 ? em_last_status() : EM_ERR_INVALID) : n;
}

int em__dsource_check_ready(const em__dsource *s, const char *fn)
{
    if (s->scaler_required && !s->mean)
        return em_set_error(EM_ERR_STATE,
                            "%s: %s standardises its features with statistics from the training "
                            "split: call em_dataset_fit_scaler(dataset, train_split) before "
                            "reading it",
                            fn, s->repr);
    return EM_OK;
}

static em__dsource *source_new(em__src_kind kind)
{
    em__dsource *s = calloc(1, sizeof *s);
    if (!s)
        return em_set_error(EM_ERR_NOMEM, "dataset: out of memory"), NULL;
    atomic_init(&s->refs, 1);
    s->kind = kind;
    return s;
}

/* A handle over the whole of s; takes over the caller's reference to s. */
static em_dataset *handle_new(em__dsource *s)
{
    em_dataset *d = calloc(1, sizeof *d);
    if (!d) {
        em__dsource_release(s);
        return em_set_error(EM_ERR_NOMEM, "dataset: out of memory"), NULL;
    }
    d->src = s;
    return d;
}

/* ---- construction ------------------------------------------------------------------------------- */

em_dataset *em_dataset_new(const char *text)
{
    if (em__require_init("em_dataset_new") < 0)
        return NULL;
    em_spec *spec = em_spec_parse(text, "dataset spec");
    if (!spec)
        return NULL;
    em_dataset *d = NULL;
    em_args *args = NULL;
    const em_dataset_type_ops *ops = find_type(em_spec_name(spec));
    if (!ops || !(args = em_args_bind(spec, ops->nparams, ops->params)))
        goto done;
    em_clear_error();
    d = ops->create(args);
    if (!d) {
        if (em_last_status() == EM_OK)
            em_set_error(EM_ERR_INVALID, "%s: create failed", ops->name);
        goto done;
    }
    /* The canonical spec names the data from now on, whatever the plugin called it. */
    char *repr = em_args_str_repr(args, ops->name);
    if (repr) {
        free(d->src->repr);
        d->src->repr = repr;
    }
done:
    em_args_free(args);
    em_spec_free(spec);
    return d;
}

em_dataset *em_dataset_from_ops(const em_dataset_ops *ops, void *ctx)
{
    if (!ops)
        return em__null_arg("em_dataset_from_ops", "ops"), NULL;
    if (ops->struct_size < offsetof(em_dataset_ops, get_item) + sizeof ops->get_item ||
        !ops->len || !ops->get_item)
        return em_set_error(EM_ERR_INVALID, "em_dataset_from_ops: the table needs struct_size, "
                                            "len and get_item"),
               NULL;
    em__dsource *s = source_new(EM__SRC_OPS);
    if (!s)
        return NULL;
    /* Copy what the caller's table has; fields it predates stay NULL. */
    size_t n = ops->struct_size < sizeof s->ops ? ops->struct_size : sizeof s->ops;
    memcpy(&s->ops, ops, n);
    s->ops.struct_size = sizeof s->ops;
    s->ctx = ctx;
    if (!(s->repr = strdup("Dataset(user)"))) {
        s->ops.destroy = NULL;   /* the caller keeps ctx when construction fails */
        em__dsource_release(s);
        return em_set_error(EM_ERR_NOMEM, "dataset: out of memory"), NULL;
    }
    return handle_new(s);
}

/* A contiguous CPU tensor with t's values: t itself (retained) when it already is one. */
static em_tensor *host_contiguous(em_tensor *t)
{
    if (t->storage->be->ops->host_accessible && em_is_contiguous(t)) {
        em_retain(t);
        return t;
    }
    em_backend *cpu = em__cpu_backend();
    if (!cpu)
        return NULL;
    em_tensor *c = em__tensor_alloc((em_device){cpu->id, 0}, t->dtype, t->ndim, t->shape);
    if (c && em_copy_to_host(t, c->storage->buf, (size_t)c->numel * em_dtype_size(c->dtype)) < 0) {
        em_release(c);
        c = NULL;
    }
    return c;
}

em_dataset *em_dataset_from_tensors(em_tensor *x, em_tensor *y)
{
    const char *fn = "em_dataset_from_tensors";
    if (em__require_init(fn) < 0)
        return NULL;
    if (!x)
        return em__null_arg(fn, "x"), NULL;
    char a[128], b[128];
    if (x->ndim < 1 || (y && y->ndim < 1))
        return em_set_error(EM_ERR_INVALID, "%s: x and y need a first dim that indexes the "
                                            "samples (x is %s, y is %s)",
                            fn, em__shape_str(x->ndim, x->shape, a, sizeof a),
                            y ? em__shape_str(y->ndim, y->shape, b, sizeof b) : "NULL"),
               NULL;
    if (y && y->shape[0] != x->shape[0])
        return em_set_error(EM_ERR_INVALID, "%s: x has %lld samples but y has %lld (x is %s, y "
                                            "is %s)",
                            fn, (long long)x->shape[0], (long long)y->shape[0],
                            em__shape_str(x->ndim, x->shape, a, sizeof a),
                            em__shape_str(y->ndim, y->shape, b, sizeof b)),
               NULL;
    em__dsource *s = source_new(EM__SRC_STORE);
    if (!s)
        return NULL;
    em__api_depth++;   /* copies made here are the dataset's, not the caller's scope's */
    s->x = host_contiguous(x);
    s->y = y ? host_contiguous(y) : NULL;
    em__api_depth--;
    if (!s->x || (y && !s->y)) {
        em__dsource_release(s);
        return NULL;
    }
    s->n = x->shape[0];
    s->nfeat = s->n ? x->numel / s->n : em__shape_numel(x->ndim - 1, x->shape + 1);
    s->x_row = (size_t)s->nfeat * em_dtype_size(x->dtype);
    s->y_row = y ? (size_t)em__shape_numel(y->ndim - 1, y->shape + 1) * em_dtype_size(y->dtype)
                 : 0;
    char r[400];
    snprintf(r, sizeof r, "TensorDataset(x=%s %s, y=%s%s%s)",
             em__shape_str(x->ndim, x->shape, a, sizeof a), em_dtype_name(x->dtype),
             y ? em__shape_str(y->ndim, y->shape, b, sizeof b) : "None", y ? " " : "",
             y ? em_dtype_name(y->dtype) : "");
    if (!(s->repr = strdup(r))) {
        em__dsource_release(s);
        return em_set_error(EM_ERR_NOMEM, "dataset: out of memory"), NULL;
    }
    return handle_new(s);
}

void em_dataset_free(em_dataset *d)
{
    if (!d)
        return;
    em__dsource_release(d->src);
    free(d->map);
    free(d);
}

/* ---- reading ------------------------------------------------------------------------------------ */

int64_t em_dataset_len(em_dataset *d)
{
    if (!d)
        return em__null_arg("em_dataset_len", "d");
    return d->map ? d->n : em__dsource_len(d->src);
}

/* Calls a user get_item. Tensors it creates belong to the sample it returns, not to any open
 * scope of the calling thread (as for the temporaries inside an op): em__api_depth hides them. */
int em__dsource_user_get(em__dsource *s, int64_t i, em_tensor **x, em_tensor **y)
{
    *x = *y = NULL;
    em__api_depth++;
    int rc = s->ops.get_item(s->ctx, i, x, y);
    em__api_depth--;
    if (rc < 0 || !*x) {
        em_release(*x);
        em_release(*y);
        *x = *y = NULL;
        if (rc >= 0 || em_last_status() == EM_OK)
            return em_set_error(rc < 0 ? rc : EM_ERR_INVALID,
                                "dataset: get_item(%lld) %s", (long long)i,
                                rc < 0 ? "failed" : "returned no x");
        return rc < 0 ? rc : em_last_status();
    }
    return EM_OK;
}

/* The first element of a tensor in host memory (the store's and batches' tensors are). */
void *em__host_ptr(em_tensor *t)
{
    return (char *)t->storage->buf + t->offset * (int64_t)em_dtype_size(t->dtype);
}

/* Sample k of a store as new CPU tensors of the sample's shape (copies, like PyTorch's
 * indexing of a TensorDataset followed by .clone()). */
static int store_get(em__dsource *s, int64_t k, em_tensor **x, em_tensor **y)
{
    em_backend *cpu = em__cpu_backend();
    if (!cpu)
        return EM_ERR_DEVICE;
    em_device dev = {cpu->id, 0};
    *x = em__tensor_alloc(dev, s->x->dtype, s->x->ndim - 1, s->x->shape + 1);
    *y = s->y ? em__tensor_alloc(dev, s->y->dtype, s->y->ndim - 1, s->y->shape + 1) : NULL;
    if (!*x || (s->y && !*y))
        return em_last_status();
    const char *xs = s->x_scaled ? s->x_scaled : em__host_ptr(s->x);
    memcpy(em__host_ptr(*x), xs + (size_t)k * s->x_row, s->x_row);
    if (s->y)
        memcpy(em__host_ptr(*y), (const char *)em__host_ptr(s->y) + (size_t)k * s->y_row, s->y_row);
    return EM_OK;
}

int em_dataset_get(em_dataset *d, int64_t i, em_tensor **x, em_tensor **y)
{
    const char *fn = "em_dataset_get";
    if (!d || !x || !y)
        return em__null_arg(fn, !d ? "d" : !x ? "x" : "y");
    *x = *y = NULL;
    int64_t n = em_dataset_len(d);
    if (n < 0)
        return (int)n;
    if (i < 0 || i >= n)
        return em_set_error(EM_ERR_INVALID, "%s: index %lld out of range for a dataset of %lld "
                                            "samples",
                            fn, (long long)i, (long long)n);
    int rc = em__dsource_check_ready(d->src, fn);
    if (rc < 0)
        return rc;
    int64_t k = d->map ? d->map[i] : i;
    em__dsource *s = d->src;
    rc = s->kind == EM__SRC_OPS ? em__dsource_user_get(s, k, x, y) : store_get(s, k, x, y);
    if (rc < 0) {
        em_release(*x);
        em_release(*y);
        *x = *y = NULL;
        return rc;
    }
    if (em__api_depth == 0 && em__scope_depth > 0) {
        em__scope_track(*x);
        if (*y)
            em__scope_track(*y);
    }
    return EM_OK;
}

int em_dataset_sample_info(em_dataset *d, em_sample_info *out)
{
    if (!d || !out)
        return em__null_arg("em_dataset_sample_info", !d ? "d" : "out");
    memset(out, 0, sizeof *out);
    em__dsource *s = d->src;
    if (s->kind == EM__SRC_OPS) {
        if (em_dataset_len(d) <= 0)
            return em_last_status() < 0 ? em_last_status()
                                        : em_set_error(EM_ERR_INVALID, "em_dataset_sample_info: "
                                                                       "the dataset is empty");
        em_tensor *x, *y;
        int rc = em__dsource_user_get(s, d->map ? d->map[0] : 0, &x, &y);
        if (rc < 0)
            return rc;
        out->x_ndim = x->ndim;
        memcpy(out->x_shape, x->shape, sizeof x->shape);
        out->x_dtype = x->dtype;
        if (y) {
            out->y_ndim = y->ndim;
            memcpy(out->y_shape, y->shape, sizeof y->shape);
            out->y_dtype = y->dtype;
        }
        em_release(x);
        em_release(y);
        return EM_OK;
    }
    out->x_ndim = s->x->ndim - 1;
    memcpy(out->x_shape, s->x->shape + 1, (size_t)out->x_ndim * sizeof out->x_shape[0]);
    out->x_dtype = s->x->dtype;
    if (!s->y)
        return EM_OK;
    out->y_ndim = s->y->ndim - 1;
    memcpy(out->y_shape, s->y->shape + 1, (size_t)out->y_ndim * sizeof out->y_shape[0]);
    out->y_dtype = s->y->dtype;
    if (!em_dtype_is_float(s->y->dtype) && s->y->dtype != EM_BOOL && s->n > 0) {
        const char *p = em__host_ptr(s->y);
        size_t es = em_dtype_size(s->y->dtype);
        double mx = -1;
        for (int64_t i = 0; i < s->y->numel; i++) {
            double v = em__to_double(p + (size_t)i * es, s->y->dtype);
            mx = v > mx ? v : mx;
        }
        out->num_classes = (int64_t)mx + 1;
    }
    return EM_OK;
}

char *em_dataset_str(const em_dataset *d)
{
    if (!d)
        return em__null_arg("em_dataset_str", "d"), NULL;
    em_strbuf sb = {0};
    if (d->map)
        em__sb_printf(&sb, "Subset(%s, %lld)", d->src->repr, (long long)d->n);
    else
        em__sb_printf(&sb, "%s", d->src->repr);
    return em__sb_take(&sb);
}
