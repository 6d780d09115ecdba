/* tests/conformance/runner.c - runs cases on one backend: inputs, views, the reference, the
 * comparison, gradients, and the report.
 *
 * Every case instance (a case in one dtype) is one to three checks: "forward" (values against
 * the float64 reference rounded to the output dtype), "grad" (a vector-Jacobian product on the
 * backend against the same product on the CPU in float64) and "gradcheck" (em_gradcheck's
 * central differences, in float64 on the backend). A check is skipped, never passed, when the
 * backend has no kernel for it (EM_ERR_UNSUPPORTED). Tensors are released through a pool per
 * instance; cf_run must not be called inside an em_scope_begin() block.
 */
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "conformance.h"
#include "runner_internal.h"

/* ---- the case list -------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, uint64_t h)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ULL;
    return h;
}

cf_case *cf_add(cf_list *l, const cf_case *c)
{
    if (l->n == l->cap) {
        int cap = l->cap ? l->cap * 2 : 256;
        cf_case *p = realloc(l->c, (size_t)cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "conformance: out of memory for the case list\n");
            exit(2);
        }
        l->c = p;
        l->cap = cap;
    }
    cf_case *d = &l->c[l->n++];
    *d = *c;
    d->seed = fnv1a(d->label, fnv1a(d->op->name, 0xcbf29ce484222325ULL));
    return d;
}

void cf_label(cf_case *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->label, sizeof c->label, fmt, ap);
    va_end(ap);
}

void cf_list_free(cf_list *l)
{
    cf_family_plugins_free();
    free(l->c);
    memset(l, 0, sizeof *l);
}

void cf_cases_all(cf_list *l, uint64_t base_seed)
{
    void (*const families[])(cf_list *) = {cf_family_memory, cf_family_unary, cf_family_binary,
                                           cf_family_reduce, cf_family_linalg, cf_family_loss,
                                           cf_family_golden, cf_family_optim,
                                           cf_family_plugins};
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        families[i](l);
    for (int i = 0; i < l->n; i++)
        l->c[i].seed ^= base_seed * 0x9E3779B97F4A7C15ULL;
}

uint32_t cf_case_dtypes(const cf_case *c)
{
    return c->dtypes ? c->dtypes & c->op->dtypes : c->op->dtypes;
}

bool cf_selected(const cf_case *c, const cf_options *o, em_dtype dt)
{
    if (o->op && strcmp(o->op, c->op->name) != 0)
        return false;
    if (o->dtype && o->dtype != dt)
        return false;
    return (cf_case_dtypes(c) & EM_DTYPE_BIT(dt)) != 0;
}

/* ---- tolerances --------------------------------------------------------------------------- */

cf_tol cf_tolerance(const cf_case *c, em_dtype dt, bool gradient)
{
    cf_tol t = {0, 0};
    switch (dt) {
    case EM_F32: t = (cf_tol){1.3e-6, 1e-5}; break;
    case EM_F64: t = (cf_tol){1e-7, 1e-7}; break;
    case EM_F16: t = (cf_tol){1e-3, 1e-5}; break;
    case EM_BF16: t = (cf_tol){1.6e-2, 1e-5}; break;
    default: return t;   /* integers and bool: exact */
    }
    /* Ops that accumulate, and gradients (a chain of rounded ops), are compared against an
     * exact float64 result: allow the rounding of each step, as PyTorch's own op tests do
     * for reduced precision. */
    if (gradient || (c->op->flags & CF_ACCUM)) {
        switch (dt) {
        case EM_F32: t = (cf_tol){1e-5, 1e-5}; break;
        case EM_F16: t = (cf_tol){2e-3, 2e-3}; break;
        case EM_BF16: t = (cf_tol){1.6e-2, 1e-2}; break;
        default: break;
        }
    }
    if (c->lowp_atol > t.atol && (dt == EM_F16 || dt == EM_BF16))
        t.atol = c->lowp_atol;
    if (c->rtol > 0 || c->atol > 0) {
        t.rtol = c->rtol > t.rtol ? c->rtol : t.rtol;
        t.atol = c->atol > t.atol ? c->atol : t.atol;
    }
    return t;
}

/* ---- the tensor pool ---------------------------------------------------------------------- */

em_tensor *cf_hold(cf_pool *p, em_tensor *t)
{
    if (!t)
        return NULL;
    if (p->n == p->cap) {
        int cap = p->cap ? p->cap * 2 : 32;
        em_tensor **q = realloc(p->t, (size_t)cap * sizeof *q);
        if (!q) {
            em_release(t);
            return NULL;
        }
        p->t = q;
        p->cap = cap;
    }
    p->t[p->n++] = t;
    return t;
}

void cf_pool_release(cf_pool *p)
{
    for (int i = p->n - 1; i >= 0; i--)
        em_release(p->t[i]);
    free(p->t);
    memset(p, 0, sizeof *p);
}

/* ---- inputs ---------------------------------------------------------------------------------- */

static const double special_values[] = {0.0,  -0.0, 1.0,   -1.0,  INFINITY, -INFINITY, NAN,
                                        0.5,  -2.5, 1e-30, 1e30,  100.0,    -100.0,    1e-3};

static double draw(const cf_dom *d, em_dtype dt, uint64_t seed, int64_t k)
{
    double u = em_philox_uniform(seed, 0, (uint64_t)k);
    if (dt == EM_BOOL || d->kind == CF_BOOLS)
        return u < 0.5 ? 0.0 : 1.0;
    if (d->kind == CF_CAST && k % 5 == 0)
        return 0.0;
    if (!em_dtype_is_float(dt) || d->kind == CF_INDEX || d->kind == CF_WHOLE) {
        double lo = d->kind == CF_INDEX ? 0 : d->ilo;
        double hi = d->kind == CF_INDEX ? d->ihi - 1 : d->ihi;
        if (dt == EM_U8 && lo < 0)
            lo = 0;
        if (hi < lo)
            hi = lo;
        double v = lo + floor(u * (hi - lo + 1));
        if (v > hi)
            v = hi;
        if (d->kind == CF_AWAY0 && v == 0)
            v = hi > 0 ? 1 : -1;
        return v;
    }
    switch (d->kind) {
    case CF_SPECIAL:
        return special_values[k % (int64_t)(sizeof special_values / sizeof special_values[0])];
    case CF_WITH_NAN:
        if (k % 4 == 1)
            return NAN;
        break;
    case CF_AWAY0: {
        double m = fabs(d->lo) > fabs(d->hi) ? fabs(d->lo) : fabs(d->hi);
        double mag = 0.25 + u * (m - 0.25);
        bool neg = d->hi <= 0 || (d->lo < 0 && em_philox_uniform(seed ^ 0x5bd1e995ULL, 0,
                                                                 (uint64_t)k) < 0.5);
        return neg ? -mag : mag;
    }
    default:
        break;
    }
    return d->lo + u * (d->hi - d->lo);
}

/* The storage-owning tensor's shape for an input spec. */
static void base_shape(const cf_in *in, int *nd, int64_t *shape)
{
    *nd = in->ndim;
    memcpy(shape, in->shape, sizeof(int64_t) * (size_t)in->ndim);
    int n = in->ndim;
    switch (in->layout) {
    case CF_T:
        shape[n - 2] = in->shape[n - 1];
        shape[n - 1] = in->shape[n - 2];
        break;
    case CF_PERM:
        for (int d = 0; d < n; d++)
            shape[d] = in->shape[n - 1 - d];
        break;
    case CF_STEP:
        shape[n - 1] = 2 * in->shape[n - 1] + 1;
        break;
    case CF_OFFSET:
        shape[0] = in->shape[0] + 2;
        break;
    case CF_EXPAND:
        for (int d = 0; d < n; d++)
            if (in->expand & (1u << d))
                shape[d] = 1;
        break;
    default:
        break;
    }
}

/* Is element k of the base (shape nd/shape) a gap the view never reads? */
static bool is_gap(const cf_in *in, int nd, const int64_t *shape, int64_t k)
{
    if (in->layout == CF_STEP)
        return (k % shape[nd - 1]) % 2 == 0;
    if (in->layout == CF_OFFSET) {
        int64_t row = k / (cf_numel(nd, shape) / shape[0]);
        return row == 0 || row == shape[0] - 1;
    }
    return false;
}

em_tensor *cf_view(em_tensor *base, const cf_in *in)
{
    int n = in->ndim;
    switch (in->layout) {
    case CF_T:
        return em_transpose(base, -2, -1);
    case CF_PERM: {
        int dims[EM_MAX_DIMS];
        for (int d = 0; d < n; d++)
            dims[d] = n - 1 - d;
        return em_permute(base, n, dims);
    }
    case CF_STEP:
        return em_slice(base, -1, 1, 2 * in->shape[n - 1] + 1, 2);
    case CF_OFFSET:
        return em_narrow(base, 0, 1, in->shape[0]);
    case CF_EXPAND:
        return em_expand(base, n, in->shape);
    default:
        em_retain(base);
        return base;
    }
}

/* Host values of input i's base in its dtype (already rounded), from the case's seed. */
bool cf_input_values(const cf_case *c, int i, em_dtype dt, cf_arr *base)
{
    const cf_in *in = &c->in[i];
    int nd;
    int64_t shape[EM_MAX_DIMS];
    base_shape(in, &nd, shape);
    if (!cf_arr_alloc(base, nd, shape))
        return false;
    base->dtype = dt;
    const cf_dom *dom = in->dom ? in->dom : &c->op->dom[i == 0 ? 0 : 1];
    uint64_t seed = c->seed + (uint64_t)(i + 1) * 0x9E3779B97F4A7C15ULL;
    for (int64_t k = 0; k < base->n; k++) {
        double v;
        if (in->fixed)
            v = in->fixed[k];   /* golden inputs are contiguous */
        else if (is_gap(in, nd, shape, k))
            v = em_dtype_is_float(dt) ? NAN : dt == EM_BOOL ? 1 : 99;
        else
            v = draw(dom, dt, seed, k);
        base->v[k] = cf_round(dt, v);
    }
    return true;
}

em_dtype cf_input_dtype(const cf_case *c, int i, em_dtype dt)
{
    return c->in[i].dtype ? c->in[i].dtype : dt;
}

/* A tensor of dtype dt on device dev with the host values: created on the CPU in float64,
 * cast there, then moved (the transfer is the only thing the target does). */
em_tensor *cf_upload(cf_pool *p, const cf_arr *a, em_dtype dt, em_device dev)
{
    em_opts o = {.dtype = dt, .device = em_device_parse("cpu")};
    em_tensor *t = cf_hold(p, em_tensor_from_data(a->v, EM_F64, a->ndim, a->shape, &o));
    if (!t)
        return NULL;
    return cf_hold(p, em_to(t, dev));
}

bool cf_read(em_tensor *t, cf_arr *a)
{
    if (!cf_arr_alloc(a, em_ndim(t), em_shape(t)))
        return false;
    em_dtype dt = em_dtype_of(t);
    a->dtype = dt;
    size_t esz = em_dtype_size(dt);
    unsigned char *raw = malloc((size_t)(a->n > 0 ? a->n : 1) * esz);
    if (!raw || em_copy_to_host(t, raw, (size_t)a->n * esz) < 0) {
        free(raw);
        cf_arr_free(a);
        return false;
    }
    for (int64_t k = 0; k < a->n; k++) {
        const unsigned char *q = raw + (size_t)k * esz;
        double v;
        switch (dt) {
        case EM_F32: { float f; memcpy(&f, q, 4); v = f; break; }
        case EM_F64: memcpy(&v, q, 8); break;
        case EM_F16: { uint16_t h; memcpy(&h, q, 2); v = em_f16_to_f32(h); break; }
        case EM_BF16: { uint16_t h; memcpy(&h, q, 2); v = em_bf16_to_f32(h); break; }
        case EM_I64: { int64_t x; memcpy(&x, q, 8); v = (double)x; break; }
        case EM_I32: { int32_t x; memcpy(&x, q, 4); v = x; break; }
        case EM_U8: v = *q; break;
        default: v = *q ? 1.0 : 0.0; break;   /* bool: any nonzero byte is true */
        }
        a->v[k] = v;
    }
    free(raw);
    return true;
}

/* ---- comparison ---------------------------------------------------------------------------- */

bool cf_compare(const cf_arr *got, const cf_arr *want, cf_tol tol, char *msg, size_t size)
{
    char g1[96], g2[96];
    if (got->ndim != want->ndim ||
        memcmp(got->shape, want->shape, sizeof(int64_t) * (size_t)got->ndim) != 0) {
        snprintf(msg, size, "shape %s, expected %s", cf_shape_str(got->ndim, got->shape, g1, sizeof g1),
                 cf_shape_str(want->ndim, want->shape, g2, sizeof g2));
        return false;
    }
    double max_abs = 0, max_rel = 0;
    int64_t bad = 0, first = -1;
    for (int64_t k = 0; k < got->n; k++) {
        double g = got->v[k], w = want->v[k];
        bool ok;
        double diff;
        if (isnan(w)) {
            ok = isnan(g);
            diff = ok ? 0 : INFINITY;
        } else if (isinf(w)) {
            ok = g == w;
            diff = ok ? 0 : INFINITY;
        } else if (!isfinite(g)) {
            ok = false;   /* NaN or Inf where the reference has none */
            diff = INFINITY;
        } else {
            diff = fabs(g - w);
            ok = diff <= tol.atol + tol.rtol * fabs(w);
        }
        double rel = diff == 0 ? 0 : w != 0 && isfinite(w) ? diff / fabs(w) : INFINITY;
        max_abs = diff > max_abs ? diff : max_abs;
        max_rel = rel > max_rel ? rel : max_rel;
        if (!ok && bad++ == 0)
            first = k;
    }
    if (bad == 0)
        return true;
    snprintf(msg, size,
             "max abs err %.3g, max rel err %.3g (atol %g, rtol %g); %lld of %lld elements "
             "differ, first at flat index %lld: got %.9g, expected %.9g",
             max_abs, max_rel, tol.atol, tol.rtol, (long long)bad, (long long)got->n,
             (long long)first, got->v[first], want->v[first]);
    return false;
}

/* ---- results -------------------------------------------------------------------------------- */

static const char *status_word(int st)
{
    return st == CF_PASS ? "PASS" : st == CF_FAIL ? "FAIL" : "SKIP";
}

/* Describes the inputs of case c in dtype dt: "[3, 1] f16 + [1, 4] f16". */
void cf_describe(const cf_case *c, em_dtype dt, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < c->nin && n < size; i++) {
        char s[96];
        static const char *const lay[] = {"", " T", " perm", " step2", " offset", " expand"};
        n += (size_t)snprintf(buf + n, size - n, "%s%s %s%s", i ? ", " : "",
                              cf_shape_str(c->in[i].ndim, c->in[i].shape, s, sizeof s),
                              cf_dtype_short(cf_input_dtype(c, i, dt)), lay[c->in[i].layout]);
    }
}

void cf_record(cf_run_ctx *R, const cf_case *c, em_dtype dt, const char *check, int status,
               const char *fmt, ...)
{
    cf_report *rep = R->rep;
    char msg[1024] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
    }
    if (status == CF_FAIL && (c->flags & CF_KNOWN_FAIL)) {
        char tmp[sizeof msg];
        snprintf(tmp, sizeof tmp, "%s", msg);
        snprintf(msg, sizeof msg, "known failure (%.200s): %.800s", c->known ? c->known : "?",
                 tmp);
        status = CF_SKIP;
        fprintf(R->o->out, "KNOWN %s %s %s (%s): %s\n", c->op->name, cf_dtype_short(dt),
                c->label, check, msg);
    }
    if (rep->n == rep->cap) {
        int cap = rep->cap ? rep->cap * 2 : 1024;
        cf_result *p = realloc(rep->r, (size_t)cap * sizeof *p);
        if (!p) {
            fprintf(stderr, "conformance: out of memory for results\n");
            exit(2);
        }
        rep->r = p;
        rep->cap = cap;
    }
    cf_result *r = &rep->r[rep->n++];
    r->c = c;
    r->dtype = dt;
    r->check = check;
    r->status = status;
    r->message = msg[0] ? strdup(msg) : NULL;
    if (status == CF_PASS)
        rep->passed++;
    else if (status == CF_FAIL)
        rep->failed++;
    else
        rep->skipped++;
    if (status == CF_FAIL || R->o->verbose) {
        char ins[256];
        cf_describe(c, dt, ins, sizeof ins);
        fprintf(R->o->out, "%s %s %s %s [%s] (%s): %s; seed 0x%016llx\n", status_word(status),
                c->op->name, cf_dtype_short(dt), c->label, ins, check, msg[0] ? msg : "ok",
                (unsigned long long)c->seed);
    }
}

void cf_report_free(cf_report *rep)
{
    for (int i = 0; i < rep->n; i++)
        free(rep->r[i].message);
    free(rep->r);
    memset(rep, 0, sizeof *rep);
}

/* ---- the backend ---------------------------------------------------------------------------- */

/* Why backend `name` (without ":index") cannot be used, or NULL when it can. Returns
 * (char *)-1 for a name Ember does not know at all. */
static const char *backend_problem(const char *name, em_device dev, char *buf, size_t size)
{
    for (int i = 0; i < em_backend_count(); i++) {
        if (strcmp(em_backend_name(i), name) != 0)
            continue;
        const char *why = em_backend_unavailable_reason(name);
        int count = em_device_count(name);
        if (why)
            snprintf(buf, size, "backend '%s' is not usable here: %s", name, why);
        else if (count <= 0)
            snprintf(buf, size, "backend '%s' has no device", name);
        else if (dev.index >= count)
            snprintf(buf, size, "backend '%s' has %d device%s, no device %d", name, count,
                     count == 1 ? "" : "s", dev.index);
        else
            return NULL;
        return buf;
    }
    /* Not registered: did a plugin meant to provide it fail to load? */
    char file[96];
    snprintf(file, sizeof file, "ember_%s.so", name);
    for (int i = 0; i < em_plugin_count(); i++) {
        em_plugin_info p;
        if (em_plugin_get(i, &p) < 0 || p.ok || !p.path)
            continue;
        const char *base = strrchr(p.path, '/');
        base = base ? base + 1 : p.path;
        if (strcmp(base, file) == 0 || (p.name && strcmp(p.name, name) == 0)) {
            snprintf(buf, size, "the plugin for backend '%s' failed to load (%s): %s", name,
                     p.path, p.error ? p.error : "unknown error");
            return buf;
        }
    }
    static const char *const known[] = {"cuda", "opencl"};
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(name, known[i]) == 0) {
            snprintf(buf, size, "no plugin provides backend '%s' (is it built and on the "
                                "plugin path? see `ember info`)",
                     name);
            return buf;
        }
    return (const char *)-1;
}

int cf_run(const cf_list *l, const cf_options *o, cf_report *rep)
{
    memset(rep, 0, sizeof *rep);
    char name[64];
    snprintf(name, sizeof name, "%s", o->backend);
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    em_device dev = em_device_parse(o->backend);
    char why[512];
    const char *problem = backend_problem(name, dev, why, sizeof why);
    if (problem == (const char *)-1) {
        em_set_error(EM_ERR_DEVICE, "unknown backend '%s' (see `ember info` for the loaded ones)",
                     name);
        return -1;
    }
    if (!problem && dev.index < 0)
        problem = em_last_error();
    cf_run_ctx R = {.o = o, .rep = rep, .dev = dev, .cpu = em_device_parse("cpu")};
    if (problem) {
        snprintf(rep->backend_reason, sizeof rep->backend_reason, "%s", problem);
        for (int i = 0; i < l->n; i++)
            for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
                if (cf_selected(&l->c[i], o, (em_dtype)dt))
                    cf_record(&R, &l->c[i], (em_dtype)dt, "forward", CF_SKIP, "%s", problem);
        return 0;
    }
    for (int i = 0; i < l->n; i++)
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++)
            if (cf_selected(&l->c[i], o, (em_dtype)dt))
                cf_run_instance(&R, &l->c[i], (em_dtype)dt);
    return 0;
}
