/* tests/conformance/cases_memory.c - copy/cast, writes into strided views (with guard values
 * around them), fill, the Philox random streams, and host<->device transfer.
 *
 * Guard values: outputs of ordinary ops are allocated by the core, so the suite cannot put
 * guard bytes around them. The copy kernel is the one kernel that writes strided output (every
 * in-place op on a non-contiguous tensor ends in it), so these cases fill a larger tensor with
 * a sentinel, write into a view of part of it (transposed, every other element, an offset
 * slab, a permuted view) and check that every element outside the view still holds the
 * sentinel and every element inside holds the expected value.
 */
#include <math.h>
#include <string.h>

#include "conformance.h"

#define SENTINEL 77.0
#define ALL EM_DTYPES_ALL
#define NUMERIC (EM_DTYPES_FLOAT | EM_DTYPES_INT)

#define IN(nd, ...) {.ndim = nd, .shape = {__VA_ARGS__}}
#define IN0 {.ndim = 0}
#define INL(nd, lay, ...) {.ndim = nd, .shape = {__VA_ARGS__}, .layout = lay}

/* ---- casts and contiguous copies ---------------------------------------------------------------- */

static double r_identity(double x) { return x; }

static em_tensor *call_cast(const cf_case *c, em_tensor *const *in)
{
    return em_to_dtype(in[0], c->p.to);
}

static em_tensor *call_contiguous(const cf_case *c, em_tensor *const *in)
{
    return em_contiguous(in[0]);
}

static em_tensor *call_clone(const cf_case *c, em_tensor *const *in)
{
    return em_clone(in[0]);
}

static const cf_op cast_op = {"copy", 0, 0, call_cast, r_identity, 0, 0, ALL, 0,
                              CF_OUT_PROMOTE, {{CF_CAST, -50, 120, -50, 120}}};
static const cf_op contiguous_op = {"copy", 0, 0, call_contiguous, r_identity, 0, 0, ALL,
                                    CF_GRAD, CF_OUT_PROMOTE, {{CF_UNIFORM, -3, 3, -10, 10}}};
static const cf_op clone_op = {"copy", 0, 0, call_clone, r_identity, 0, 0, ALL, CF_GRAD,
                               CF_OUT_PROMOTE, {{CF_UNIFORM, -3, 3, -10, 10}}};

static const cf_dom cast_unsigned = {CF_CAST, 0, 120, 0, 120};
static const cf_dom special = {CF_SPECIAL, -3, 3, -10, 10};

static void add_casts(cf_list *l)
{
    for (int s = EM_F32; s < EM_DTYPE_COUNT; s++)
        for (int d = EM_F32; d < EM_DTYPE_COUNT; d++) {
            /* negative values have no uint8 image (C leaves the cast undefined) */
            bool unsigned_side = s == EM_U8 || d == EM_U8;
            for (int k = 0; k < 2; k++) {
                cf_case c = {.op = &cast_op, .nin = 1, .dtypes = EM_DTYPE_BIT(s)};
                c.in[0] = k == 0 ? (cf_in)IN(2, 5, 7) : (cf_in)INL(2, CF_T, 5, 7);
                c.in[0].dom = unsigned_side ? &cast_unsigned : NULL;
                c.p.to = (em_dtype)d;
                cf_label(&c, "cast to %s%s", cf_dtype_short((em_dtype)d),
                         k ? ", transposed" : "");
                cf_add(l, &c);
            }
            if (em_dtype_is_float((em_dtype)s) && em_dtype_is_float((em_dtype)d)) {
                cf_case c = {.op = &cast_op, .nin = 1, .dtypes = EM_DTYPE_BIT(s)};
                c.in[0] = (cf_in)IN(1, 28);
                c.in[0].dom = &special;
                c.p.to = (em_dtype)d;
                cf_label(&c, "cast to %s, special values", cf_dtype_short((em_dtype)d));
                cf_add(l, &c);
            }
        }
    static const struct {
        const char *label;
        cf_in in;
    } views[] = {
        {"contiguous of transposed", INL(2, CF_T, 6, 5)},
        {"contiguous of permuted", INL(4, CF_PERM, 2, 3, 4, 5)},
        {"contiguous of strided", INL(2, CF_STEP, 4, 9)},
        {"contiguous of offset", INL(3, CF_OFFSET, 3, 4, 5)},
        {"contiguous of expanded",
         {.ndim = 3, .shape = {3, 4, 5}, .layout = CF_EXPAND, .expand = 5}},
        {"contiguous of large transposed", INL(2, CF_T, 300, 257)},
        {"contiguous of 0-dim", IN0},
        {"contiguous of zero-size", INL(2, CF_T, 0, 4)},
    };
    for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
        cf_case c = {.op = &contiguous_op, .nin = 1};
        c.in[0] = views[v].in;
        cf_label(&c, "%s", views[v].label);
        cf_add(l, &c);
    }
    cf_case c = {.op = &clone_op, .nin = 1};
    c.in[0] = (cf_in)IN(3, 2, 3, 4);
    cf_label(&c, "clone");
    cf_add(l, &c);
}

/* ---- writes into views of a sentinel-filled tensor ---------------------------------------------- */

enum { W_COPY, W_COPY_CAST, W_ADD, W_MUL_SCALAR, W_RELU, W_FILL };

/* in[0] is the source; in[1] (not built by the runner: nin is 1) describes the destination
 * view: its logical shape is the region written, its layout how the region sits in the
 * sentinel-filled base. The result is the whole base. */
static em_tensor *call_write(const cf_case *c, em_tensor *const *in)
{
    const cf_in *dv = &c->in[1];
    int nd = dv->ndim;
    int64_t shape[EM_MAX_DIMS];
    memcpy(shape, dv->shape, sizeof shape);
    switch (dv->layout) {   /* the base's shape, as the runner's layouts define it */
    case CF_T:
        shape[nd - 2] = dv->shape[nd - 1];
        shape[nd - 1] = dv->shape[nd - 2];
        break;
    case CF_PERM:
        for (int d = 0; d < nd; d++)
            shape[d] = dv->shape[nd - 1 - d];
        break;
    case CF_STEP:
        shape[nd - 1] = 2 * dv->shape[nd - 1] + 1;
        break;
    case CF_OFFSET:
        shape[0] = dv->shape[0] + 2;
        break;
    default:
        break;
    }
    em_dtype dt = c->p.to ? c->p.to : em_dtype_of(in[0]);
    em_opts o = {.dtype = dt, .device = em_device_of(in[0])};
    em_tensor *base = em_full(nd, shape, SENTINEL, &o);
    em_tensor *view = NULL, *r = NULL;
    int dims[EM_MAX_DIMS];
    switch (dv->layout) {
    case CF_T: view = em_transpose(base, -2, -1); break;
    case CF_PERM:
        for (int d = 0; d < nd; d++)
            dims[d] = nd - 1 - d;
        view = em_permute(base, nd, dims);
        break;
    case CF_STEP: view = em_slice(base, -1, 1, 2 * dv->shape[nd - 1] + 1, 2); break;
    case CF_OFFSET: view = em_narrow(base, 0, 1, dv->shape[0]); break;
    default: view = base; em_retain(view); break;
    }
    switch (c->p.dim) {
    case W_COPY:
    case W_COPY_CAST: r = em_copy_(view, in[0]); break;
    case W_ADD: r = em_add_(view, in[0]); break;
    case W_MUL_SCALAR: r = em_mul_scalar_(view, 2); break;
    case W_RELU:
        r = em_copy_(view, in[0]);
        em_release(r);
        r = r ? em_relu_(view) : NULL;
        break;
    case W_FILL: r = em_fill_(view, 3.5); break;
    }
    em_release(view);
    if (!r) {
        em_release(base);
        return NULL;
    }
    em_release(r);
    return base;
}

static double region_value(const cf_case *c, double src)
{
    switch (c->p.dim) {
    case W_ADD: return SENTINEL + src;
    case W_MUL_SCALAR: return SENTINEL * 2;
    case W_RELU: return isnan(src) ? src : src > 0 ? src : 0;
    case W_FILL: return 3.5;
    default: return src;
    }
}

static double take_first(const double *x, const void *ctx)
{
    (void)ctx;
    return x[0];
}

static bool ref_write(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const cf_in *dv = &c->in[1];
    int nd = dv->ndim;
    /* the source broadcast to the region's shape */
    cf_arr region = {0}, shape_only = {0};
    if (!cf_arr_alloc(&shape_only, nd, dv->shape))
        return false;
    cf_arr pair[2] = {in[0], shape_only};
    bool ok = cf_ref_elementwise(2, pair, &region, take_first, NULL);
    cf_arr_free(&shape_only);
    if (!ok)
        return false;
    int64_t bshape[EM_MAX_DIMS];
    memcpy(bshape, dv->shape, sizeof bshape);
    if (dv->layout == CF_T) {
        bshape[nd - 2] = dv->shape[nd - 1];
        bshape[nd - 1] = dv->shape[nd - 2];
    } else if (dv->layout == CF_PERM) {
        for (int d = 0; d < nd; d++)
            bshape[d] = dv->shape[nd - 1 - d];
    } else if (dv->layout == CF_STEP) {
        bshape[nd - 1] = 2 * dv->shape[nd - 1] + 1;
    } else if (dv->layout == CF_OFFSET) {
        bshape[0] = dv->shape[0] + 2;
    }
    if (!cf_arr_alloc(out, nd, bshape)) {
        cf_arr_free(&region);
        return false;
    }
    for (int64_t k = 0; k < out->n; k++)
        out->v[k] = SENTINEL;
    int64_t idx[EM_MAX_DIMS], b[EM_MAX_DIMS];
    for (int64_t k = 0; k < region.n; k++) {
        int64_t r = k;
        for (int d = nd - 1; d >= 0; d--) {
            idx[d] = r % dv->shape[d];
            r /= dv->shape[d];
        }
        memcpy(b, idx, sizeof b);
        if (dv->layout == CF_T) {
            b[nd - 2] = idx[nd - 1];
            b[nd - 1] = idx[nd - 2];
        } else if (dv->layout == CF_PERM) {
            for (int d = 0; d < nd; d++)
                b[d] = idx[nd - 1 - d];
        } else if (dv->layout == CF_STEP) {
            b[nd - 1] = 2 * idx[nd - 1] + 1;
        } else if (dv->layout == CF_OFFSET) {
            b[0] = idx[0] + 1;
        }
        int64_t off = 0;
        for (int d = 0; d < nd; d++)
            off = off * bshape[d] + b[d];
        out->v[off] = region_value(c, region.v[k]);
    }
    cf_arr_free(&region);
    return true;
}

static const cf_op write_ops[] = {
    {"copy", 0, 0, call_write, 0, 0, ref_write, ALL, 0, CF_OUT_CASE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
    {"add", 0, 0, call_write, 0, 0, ref_write, ALL, 0, CF_OUT_CASE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
    {"mul", 0, 0, call_write, 0, 0, ref_write, NUMERIC, 0, CF_OUT_CASE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
    {"relu", 0, 0, call_write, 0, 0, ref_write, NUMERIC, 0, CF_OUT_CASE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
    {"fill", 0, 0, call_write, 0, 0, ref_write, ALL, 0, CF_OUT_CASE,
     {{CF_UNIFORM, -3, 3, -10, 10}}},
};

static void add_writes(cf_list *l)
{
    static const struct {
        const char *label;
        cf_in src, dst;
    } views[] = {
        {"into a transposed view", IN(2, 4, 3), INL(2, CF_T, 4, 3)},
        {"into every other element", IN(2, 3, 5), INL(2, CF_STEP, 3, 5)},
        {"into an offset slab", IN(3, 2, 3, 4), INL(3, CF_OFFSET, 2, 3, 4)},
        {"into a permuted view", IN(3, 2, 3, 4), INL(3, CF_PERM, 2, 3, 4)},
        {"broadcast source into every other element", IN(1, 5), INL(2, CF_STEP, 3, 5)},
        {"0-dim source into a transposed view", IN0, INL(2, CF_T, 4, 3)},
        {"into a large strided view", IN(2, 200, 150), INL(2, CF_STEP, 200, 150)},
    };
    static const struct {
        int mode;
        int op;
        const char *what;
    } modes[] = {{W_COPY, 0, "copy_"},  {W_COPY_CAST, 0, "copy_ (cast) to float32"},
                 {W_ADD, 1, "add_"},    {W_MUL_SCALAR, 2, "mul_scalar_(2)"},
                 {W_RELU, 3, "relu_"},  {W_FILL, 4, "fill_(3.5)"}};
    for (size_t m = 0; m < sizeof modes / sizeof modes[0]; m++)
        for (size_t v = 0; v < sizeof views / sizeof views[0]; v++) {
            cf_case c = {.op = &write_ops[modes[m].op], .nin = 1};
            c.in[0] = views[v].src;
            c.in[1] = views[v].dst;
            c.p.dim = modes[m].mode;
            if (modes[m].mode == W_COPY_CAST)
                c.p.to = EM_F32;   /* the destination's dtype */
            cf_label(&c, "%s %s", modes[m].what, views[v].label);
            cf_add(l, &c);
        }
}

/* ---- fill ---------------------------------------------------------------------------------------- */

static em_tensor *call_full(const cf_case *c, em_tensor *const *in)
{
    em_opts o = {.dtype = em_dtype_of(in[0]), .device = em_device_of(in[0])};
    return em_full(em_ndim(in[0]), em_shape(in[0]), c->p.scalar, &o);
}

static em_tensor *call_fill_(const cf_case *c, em_tensor *const *in)
{
    em_tensor *t = em_clone(in[0]);
    em_tensor *r = em_fill_(t, c->p.scalar);
    em_release(r);
    if (!r) {
        em_release(t);
        return NULL;
    }
    return t;
}

static bool ref_fill(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    if (!cf_arr_alloc(out, in[0].ndim, in[0].shape))
        return false;
    for (int64_t k = 0; k < out->n; k++)
        out->v[k] = c->p.scalar;
    return true;
}

static const cf_op full_op = {"fill", 0, 0, call_full, 0, 0, ref_fill, ALL, 0, CF_OUT_CASE,
                              {{CF_UNIFORM, -3, 3, -10, 10}}};
static const cf_op fill_op = {"fill", 0, 0, call_fill_, 0, 0, ref_fill, ALL, 0, CF_OUT_CASE,
                              {{CF_UNIFORM, -3, 3, -10, 10}}};

static void add_fills(cf_list *l)
{
    static const struct {
        const char *label;
        cf_in in;
        double v;
    } fills[] = {
        {"full 2.5", IN(2, 3, 4), 2.5},    {"full -1.5, 0-dim", IN0, -1.5},
        {"full 7, zero-size", IN(2, 0, 3), 7}, {"full 0", IN(1, 9), 0},
        {"full 1, large", IN(2, 129, 257), 1},
    };
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++)
        for (int k = 0; k < 2; k++) {
            cf_case c = {.op = k ? &fill_op : &full_op, .nin = 1};
            c.in[0] = fills[f].in;
            c.p.scalar = fills[f].v;
            cf_label(&c, "%s%s", k ? "fill_ in place, " : "", fills[f].label + (k ? 5 : 0));
            cf_add(l, &c);
        }
}

/* ---- random ------------------------------------------------------------------------------------- */

enum { RND_UNIFORM, RND_NORMAL, RND_INT };

/* randint's range: negative numbers where the dtype has them */
static int64_t int_low(em_dtype dt) { return dt == EM_U8 ? 0 : -7; }
static int64_t int_high(em_dtype dt) { return dt == EM_U8 ? 200 : 1000; }

/* Seeds the generator with the case's seed, optionally draws `p.ndims` elements first (so the
 * second draw starts at a later counter), then draws a tensor of in[0]'s shape. */
static em_tensor *call_random(const cf_case *c, em_tensor *const *in)
{
    em_opts o = {.dtype = em_dtype_of(in[0]), .device = em_device_of(in[0])};
    em_manual_seed(c->seed);
    for (int pass = c->p.ndims ? 0 : 1; pass < 2; pass++) {
        int64_t first = c->p.ndims;
        int nd = pass ? em_ndim(in[0]) : 1;
        const int64_t *shape = pass ? em_shape(in[0]) : &first;
        em_tensor *t = c->p.dim == RND_UNIFORM ? em_rand(nd, shape, &o)
                       : c->p.dim == RND_NORMAL ? em_randn(nd, shape, &o)
                                                : em_randint(int_low(o.dtype), int_high(o.dtype),
                                                             nd, shape, &o);
        if (pass || !t)
            return t;
        em_release(t);
    }
    return NULL;
}

static bool ref_random(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    if (!cf_arr_alloc(out, in[0].ndim, in[0].shape))
        return false;
    em_dtype dt = in[0].dtype;
    uint64_t n0 = (uint64_t)c->p.ndims;
    uint64_t offset = c->p.dim == RND_UNIFORM ? em_philox_blocks_uniform(n0)
                                              : em_philox_blocks_pair(n0);
    int bits = dt == EM_F16 ? 11 : dt == EM_BF16 ? 8 : 24;
    for (int64_t k = 0; k < out->n; k++) {
        uint64_t i = (uint64_t)k;
        out->v[k] = c->p.dim == RND_UNIFORM ? em_philox_uniform_bits(c->seed, offset, i, bits)
                    : c->p.dim == RND_NORMAL
                        ? em_philox_normal(c->seed, offset, i)
                        : (double)em_philox_int(c->seed, offset, i, int_low(dt), int_high(dt));
    }
    return true;
}

static const cf_op random_op = {"random", 0, 0, call_random, 0, 0, ref_random, ALL, 0,
                                CF_OUT_CASE, {{CF_UNIFORM, 0, 1, 0, 1}}};

static void add_randoms(cf_list *l)
{
    static const char *const names[] = {"rand", "randn", "randint"};
    static const cf_in shapes[] = {IN(2, 5, 7), IN0, IN(1, 1), IN(2, 0, 3), IN(2, 257, 129)};
    static const char *const what[] = {"[5, 7]", "0-dim", "[1]", "zero-size", "large"};
    for (int dist = RND_UNIFORM; dist <= RND_INT; dist++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int skip = 0; skip < 2; skip++) {
                if (skip && s != 0)
                    continue;
                cf_case c = {.op = &random_op, .nin = 1,
                             .dtypes = dist == RND_INT ? EM_DTYPES_INT | EM_DTYPE_BIT(EM_F32)
                                                       : EM_DTYPES_FLOAT};
                c.in[0] = shapes[s];
                c.p.dim = dist;
                c.p.ndims = skip ? 13 : 0;   /* a first draw of 13 elements */
                cf_label(&c, "%s %s%s", names[dist], what[s], skip ? " after 13 draws" : "");
                cf_add(l, &c);
            }
}

/* ---- transfer -------------------------------------------------------------------------------------- */

/* Device -> host -> device (and to a second device and back when there is one). */
static em_tensor *call_transfer(const cf_case *c, em_tensor *const *in)
{
    em_device d = em_device_of(in[0]);
    em_tensor *h = em_cpu(in[0]);
    em_tensor *back = em_to(h, d);
    em_release(h);
    char name[32];
    em_device_str(d, name, sizeof name);
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    if (back && em_device_count(name) > 1) {
        em_device other = {d.backend, d.index == 0 ? 1 : 0};
        em_tensor *o = em_to(back, other);
        em_release(back);
        back = o ? em_to(o, d) : NULL;
        em_release(o);
    }
    return back;
}

static const cf_op transfer_op = {"transfer", 0, 0, call_transfer, r_identity, 0, 0, ALL, 0,
                                  CF_OUT_PROMOTE, {{CF_UNIFORM, -3, 3, -10, 10}}};

static void add_transfers(cf_list *l)
{
    static const struct {
        const char *label;
        cf_in in;
    } t[] = {
        {"empty", IN(1, 0)},           {"one element", IN(1, 1)},
        {"odd size", IN(1, 13)},       {"0-dim", IN0},
        {"transposed", INL(2, CF_T, 3, 5)},  {"strided", INL(2, CF_STEP, 4, 6)},
        {"large", IN(1, 65539)},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        cf_case c = {.op = &transfer_op, .nin = 1};
        c.in[0] = t[i].in;
        cf_label(&c, "round trip, %s", t[i].label);
        cf_add(l, &c);
    }
}

void cf_family_memory(cf_list *l)
{
    add_casts(l);
    add_writes(l);
    add_fills(l);
    add_randoms(l);
    add_transfers(l);
}
