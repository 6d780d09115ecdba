/* core/create.c - creating tensors: from host data, over caller memory, filled, random. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* Resolves dtype and device from options; returns false with the error set. */
static bool resolve_opts(const char *fn, const em_opts *o, em_dtype dflt, em_dtype *dt,
                         em_device *dev)
{
    if (em__require_init(fn) < 0)
        return false;
    *dt = (o && o->dtype != EM_DTYPE_UNSPEC) ? o->dtype : dflt;
    if (*dt <= EM_DTYPE_UNSPEC || *dt >= EM_DTYPE_COUNT) {
        em_set_error(EM_ERR_INVALID, "%s: invalid dtype %d", fn, (int)*dt);
        return false;
    }
    em_device d = {0, 0};
    if (o)
        d = o->device;
    *dev = em__resolve_device(d);
    return em__device_check(fn, *dev) == EM_OK;
}

static em_tensor *finish(const char *fn, em_tensor *t, const em_opts *o)
{
    if (t && o && o->requires_grad && em__set_requires_grad(fn, t, true) < 0) {
        em_release(t);
        return NULL;
    }
    return t;
}

static em_tensor *alloc_checked(const char *fn, int ndim, const int64_t *shape,
                                const em_opts *o, em_dtype dflt)
{
    em_dtype dt;
    em_device dev;
    if (!em__shape_check(fn, ndim, shape) || !resolve_opts(fn, o, dflt, &dt, &dev))
        return NULL;
    return em__tensor_alloc(dev, dt, ndim, shape);
}

/* Fills t through the `fill` op of its backend. */
static int fill(em_tensor *t, double value)
{
    if (t->numel == 0)
        return EM_OK;
    em_attr a = {0};
    a.f = value;
    return em__run_kernel(EM__OP_FILL, 0, NULL, 1, &t, &a);
}

/* ---- from host memory ------------------------------------------------------ */

static em_tensor *from_data(const void *data, em_dtype src, int ndim, const int64_t *shape,
                            const em_opts *o)
{
    const char *fn = "em_tensor_from_data";
    if (!data && em__shape_numel(ndim, shape) > 0) {
        em_set_error(EM_ERR_INVALID, "%s: data is NULL", fn);
        return NULL;
    }
    if (src <= EM_DTYPE_UNSPEC || src >= EM_DTYPE_COUNT) {
        em_set_error(EM_ERR_INVALID, "%s: invalid source dtype %d", fn, (int)src);
        return NULL;
    }
    em_dtype dt;
    em_device dev;
    if (!em__shape_check(fn, ndim, shape) || !resolve_opts(fn, o, src, &dt, &dev))
        return NULL;
    em_tensor *raw = em__tensor_alloc(dev, src, ndim, shape);
    if (!raw)
        return NULL;
    size_t nbytes = (size_t)raw->numel * em_dtype_size(src);
    em_backend *be = raw->storage->be;
    if (nbytes && be->ops->copy_from_host(be->ctx, dev.index, raw->storage->buf, 0, data,
                                          nbytes) < 0) {
        em_release(raw);
        return NULL;
    }
    if (dt == src)
        return finish(fn, raw, o);
    em_tensor *t = em_to_dtype(raw, dt);
    em_release(raw);
    return finish(fn, t, o);
}

em_tensor *em_tensor_from_data(const void *data, em_dtype src, int ndim, const int64_t *shape,
                               const em_opts *o)
{
    EM_WRAP(from_data(data, src, ndim, shape, o));
}

static em_tensor *from_blob(void *data, em_dtype dt, int ndim, const int64_t *shape,
                            void (*free_fn)(void *), void *ctx)
{
    const char *fn = "em_tensor_from_blob";
    if (em__require_init(fn) < 0 || !em__shape_check(fn, ndim, shape))
        return NULL;
    if (dt <= EM_DTYPE_UNSPEC || dt >= EM_DTYPE_COUNT) {
        em_set_error(EM_ERR_INVALID, "%s: invalid dtype %d", fn, (int)dt);
        return NULL;
    }
    int64_t n = em__shape_numel(ndim, shape);
    if (!data && n > 0) {
        em_set_error(EM_ERR_INVALID, "%s: data is NULL", fn);
        return NULL;
    }
    em_backend *cpu = em__cpu_backend();
    if (!cpu)
        return NULL;
    em_storage *s = em__storage_wrap(cpu, 0, data, (size_t)n * em_dtype_size(dt), free_fn, ctx);
    if (!s)
        return NULL;
    em_tensor *t = em__tensor_make(s, dt, ndim, shape, NULL, 0);
    em__storage_release(s);
    return t;
}

em_tensor *em_tensor_from_blob(void *data, em_dtype dt, int ndim, const int64_t *shape,
                               void (*free_fn)(void *), void *ctx)
{
    EM_WRAP(from_blob(data, dt, ndim, shape, free_fn, ctx));
}

/* ---- filled ------------------------------------------------------------------ */

static em_tensor *full(const char *fn, int ndim, const int64_t *shape, double v,
                       const em_opts *o)
{
    em_tensor *t = alloc_checked(fn, ndim, shape, o, em__default_float());
    if (t && fill(t, v) < 0) {
        em_release(t);
        return NULL;
    }
    return finish(fn, t, o);
}

em_tensor *em_empty(int ndim, const int64_t *shape, const em_opts *o)
{
    EM_WRAP(finish("em_empty", alloc_checked("em_empty", ndim, shape, o, em__default_float()),
                   o));
}

em_tensor *em_zeros(int ndim, const int64_t *shape, const em_opts *o)
{
    EM_WRAP(full("em_zeros", ndim, shape, 0.0, o));
}

em_tensor *em_ones(int ndim, const int64_t *shape, const em_opts *o)
{
    EM_WRAP(full("em_ones", ndim, shape, 1.0, o));
}

em_tensor *em_full(int ndim, const int64_t *shape, double value, const em_opts *o)
{
    EM_WRAP(full("em_full", ndim, shape, value, o));
}

em_tensor *em_scalar(double value, const em_opts *o)
{
    EM_WRAP(full("em_scalar", 0, NULL, value, o));
}

static em_tensor *like(const char *fn, const em_tensor *t, double v)
{
    if (!t) {
        em__null_arg(fn, "t");
        return NULL;
    }
    em_opts o = {.dtype = t->dtype, .device = em__tensor_device(t)};
    return full(fn, t->ndim, t->shape, v, &o);
}

em_tensor *em_zeros_like(const em_tensor *t) { EM_WRAP(like("em_zeros_like", t, 0.0)); }
em_tensor *em_ones_like(const em_tensor *t) { EM_WRAP(like("em_ones_like", t, 1.0)); }

/* ---- random -------------------------------------------------------------------- */

enum { DIST_UNIFORM = 0, DIST_NORMAL = 1, DIST_INT = 2 };

static em_tensor *random_fill(const char *fn, int ndim, const int64_t *shape,
                              const em_opts *o, em_dtype dflt, int dist, double a, double b,
                              int64_t low, int64_t high)
{
    em_tensor *t = alloc_checked(fn, ndim, shape, o, dflt);
    if (!t)
        return NULL;
    if (dist != DIST_INT && !em_dtype_is_float(t->dtype)) {
        em_set_error(EM_ERR_INVALID, "%s: needs a floating dtype, got %s", fn,
                     em_dtype_name(t->dtype));
        em_release(t);
        return NULL;
    }
    if (t->numel > 0) {
        uint64_t n = (uint64_t)t->numel, seed;
        uint64_t blocks = dist == DIST_UNIFORM ? em_philox_blocks_uniform(n)
                                               : em_philox_blocks_pair(n);
        uint64_t offset = em__rng_reserve(blocks, &seed);
        em_attr at[7];
        memset(at, 0, sizeof at);
        at[0].i = dist;
        at[1].i = (int64_t)seed;
        at[2].i = (int64_t)offset;
        at[3].f = a;
        at[4].f = b;
        at[5].i = low;
        at[6].i = high;
        if (em__run_kernel(EM__OP_RANDOM, 0, NULL, 1, &t, at) < 0) {
            em_release(t);
            return NULL;
        }
    }
    return finish(fn, t, o);
}

em_tensor *em_rand(int ndim, const int64_t *shape, const em_opts *o)
{
    EM_WRAP(random_fill("em_rand", ndim, shape, o, em__default_float(), DIST_UNIFORM, 0, 1, 0, 0));
}

em_tensor *em_randn(int ndim, const int64_t *shape, const em_opts *o)
{
    EM_WRAP(random_fill("em_randn", ndim, shape, o, em__default_float(), DIST_NORMAL, 0, 1, 0, 0));
}

static em_tensor *randint(int64_t low, int64_t high, int ndim, const int64_t *shape,
                          const em_opts *o)
{
    if (high <= low) {
        em_set_error(EM_ERR_INVALID, "em_randint: empty range [%lld, %lld)", (long long)low,
                     (long long)high);
        return NULL;
    }
    return random_fill("em_randint", ndim, shape, o, EM_I64, DIST_INT, 0, 0, low, high);
}

em_tensor *em_randint(int64_t low, int64_t high, int ndim, const int64_t *shape,
                      const em_opts *o)
{
    EM_WRAP(randint(low, high, ndim, shape, o));
}

/* ---- arange ---------------------------------------------------------------------- */

static em_tensor *arange(double start, double end, double step, const em_opts *o)
{
    const char *fn = "em_arange";
    if (step == 0 || !isfinite(start) || !isfinite(end) || !isfinite(step)) {
        em_set_error(EM_ERR_INVALID, "%s: step must be nonzero and bounds finite", fn);
        return NULL;
    }
    if ((step > 0 && end < start) || (step < 0 && end > start)) {
        em_set_error(EM_ERR_INVALID,
                     "%s: upper bound and larger bound inconsistent with step sign "
                     "(start %g, end %g, step %g)",
                     fn, start, end, step);
        return NULL;
    }
    bool whole = start == floor(start) && end == floor(end) && step == floor(step);
    em_dtype dflt = whole ? EM_I64 : em__default_float();
    int64_t n = (int64_t)ceil((end - start) / step);
    /* Values are computed in double on the host, then uploaded and cast. */
    double *vals = malloc((size_t)(n ? n : 1) * sizeof *vals);
    if (!vals) {
        em_set_error(EM_ERR_NOMEM, "%s: out of host memory for %lld values", fn, (long long)n);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++)
        vals[i] = start + (double)i * step;
    em_opts oo = o ? *o : (em_opts){0};
    if (oo.dtype == EM_DTYPE_UNSPEC)
        oo.dtype = dflt;
    em_tensor *t = from_data(vals, EM_F64, 1, &n, &oo);
    free(vals);
    return t;
}

em_tensor *em_arange(double start, double end, double step, const em_opts *o)
{
    EM_WRAP(arange(start, end, step, o));
}
