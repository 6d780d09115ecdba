/* tests/conformance/cases_optim.c - the fused optimizer updates sgd_step, adam_step and
 * rmsprop_step (em_sgd_step_ and the like), against a float64 reference of PyTorch's formulas.
 *
 * A case's result is the updated parameter followed by every state tensor the update uses,
 * each flattened into one row of a [rows, numel] tensor, so the state a kernel writes in place
 * is checked as well as the parameter. Hyperparameters are the op's attributes in declared
 * order (p.attrs). Each set runs with contiguous state, which a backend's fused kernel takes,
 * and with every other element of a larger tensor (CF_STEP), which the core hands to the
 * composite instead: both are compared with the same reference, so the fused kernel and the
 * composite are checked against each other too. tests/optim checks that they agree bit for
 * bit on the CPU.
 */
#include <math.h>
#include <string.h>

#include "conformance.h"

/* ---- the calls -------------------------------------------------------------------------- */

/* [rows, numel] from the tensors t[0..n): each one flattened into its row. */
static em_tensor *rows(int n, em_tensor *const *t)
{
    int64_t shape[2] = {n, em_numel(t[0])};
    em_opts o = {.dtype = em_dtype_of(t[0]), .device = em_device_of(t[0])};
    em_tensor *out = em_empty(2, shape, &o);
    bool ok = out != NULL;
    for (int r = 0; ok && r < n; r++) {
        em_tensor *c = em_contiguous(t[r]);
        em_tensor *flat = c ? em_reshape(c, 1, &shape[1]) : NULL;
        em_tensor *row = em_select(out, 0, r);
        em_tensor *w = flat && row ? em_copy_(row, flat) : NULL;
        ok = w != NULL;
        em_release(w);
        em_release(row);
        em_release(flat);
        em_release(c);
    }
    if (!ok) {
        em_release(out);
        return NULL;
    }
    return out;
}

/* Runs the update on the inputs as given (state in place), then stacks param and state. */
static em_tensor *updated(int n, em_tensor *const *t, em_tensor *r)
{
    if (!r)
        return NULL;
    em_release(r);
    return rows(n, t);
}

static em_tensor *call_sgd(const cf_case *c, em_tensor *const *in)
{
    const em_attr *a = c->p.attrs;
    bool mom = a[1].f != 0;
    em_tensor *r = em_sgd_step_(in[0], in[1], mom ? in[2] : NULL, a[0].f, a[1].f, a[2].f,
                                a[3].f, a[4].i, a[5].i, a[6].i);
    em_tensor *t[2] = {in[0], in[2]};
    return updated(mom ? 2 : 1, t, r);
}

static em_tensor *call_adam(const cf_case *c, em_tensor *const *in)
{
    const em_attr *a = c->p.attrs;
    bool ams = a[5].i != 0;
    em_tensor *r = em_adam_step_(in[0], in[1], in[2], in[3], ams ? in[4] : NULL, a[0].f, a[1].f,
                                 a[2].f, a[3].f, a[4].f, a[8].i, ams, a[6].i, a[7].i);
    em_tensor *t[4] = {in[0], in[2], in[3], in[4]};
    return updated(ams ? 4 : 3, t, r);
}

static em_tensor *call_rmsprop(const cf_case *c, em_tensor *const *in)
{
    const em_attr *a = c->p.attrs;
    bool mom = a[4].f > 0, centered = a[5].i != 0;
    em_tensor *r = em_rmsprop_step_(in[0], in[1], in[2], mom ? in[3] : NULL,
                                    centered ? in[4] : NULL, a[0].f, a[1].f, a[2].f, a[3].f,
                                    a[4].f, centered, a[6].i);
    em_tensor *t[4] = {in[0], in[2]};
    int n = 2;
    if (mom)
        t[n++] = in[3];
    if (centered)
        t[n++] = in[4];
    return updated(n, t, r);
}

/* ---- the references (float64, PyTorch 1.13's single-tensor updates) ------------------------ */

static bool ref_rows(cf_arr *out, int n, int64_t numel)
{
    int64_t shape[2] = {n, numel};
    return cf_arr_alloc(out, 2, shape);
}

static bool ref_sgd(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const em_attr *a = c->p.attrs;
    double lr = a[0].f, mom = a[1].f, damp = a[2].f, wd = a[3].f;
    int64_t n = in[0].n;
    if (!ref_rows(out, mom != 0 ? 2 : 1, n))
        return false;
    for (int64_t i = 0; i < n; i++) {
        double p = in[0].v[i], d = a[5].i ? -in[1].v[i] : in[1].v[i];
        d += wd * p;
        if (mom != 0) {
            double b = a[6].i ? d : mom * in[2].v[i] + (1 - damp) * d;
            out->v[n + i] = b;
            d = a[4].i ? d + mom * b : b;
        }
        out->v[i] = p - lr * d;
    }
    return true;
}

static bool ref_adam(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const em_attr *a = c->p.attrs;
    double lr = a[0].f, b1 = a[1].f, b2 = a[2].f, eps = a[3].f, wd = a[4].f;
    double t = (double)a[8].i;
    bool ams = a[5].i != 0, decoupled = a[7].i != 0;
    int64_t n = in[0].n;
    if (!ref_rows(out, ams ? 4 : 3, n))
        return false;
    for (int64_t i = 0; i < n; i++) {
        double p = in[0].v[i], g = a[6].i ? -in[1].v[i] : in[1].v[i];
        if (decoupled)
            p *= 1 - lr * wd;
        else
            g += wd * p;
        double m = b1 * in[2].v[i] + (1 - b1) * g;
        double v = b2 * in[3].v[i] + (1 - b2) * g * g;
        out->v[n + i] = m;
        out->v[2 * n + i] = v;
        if (ams) {
            v = fmax(in[4].v[i], v);
            out->v[3 * n + i] = v;
        }
        double denom = sqrt(v) / sqrt(1 - pow(b2, t)) + eps;
        out->v[i] = p - lr / (1 - pow(b1, t)) * m / denom;
    }
    return true;
}

static bool ref_rmsprop(const cf_case *c, int nin, const cf_arr *in, cf_arr *out)
{
    const em_attr *a = c->p.attrs;
    double lr = a[0].f, al = a[1].f, eps = a[2].f, wd = a[3].f, mom = a[4].f;
    bool centered = a[5].i != 0;
    int64_t n = in[0].n;
    if (!ref_rows(out, 2 + (mom > 0) + centered, n))
        return false;
    for (int64_t i = 0; i < n; i++) {
        double p = in[0].v[i], g = a[6].i ? -in[1].v[i] : in[1].v[i];
        g += wd * p;
        double sq = al * in[2].v[i] + (1 - al) * g * g, var = sq;
        out->v[n + i] = sq;
        int row = 2;
        if (centered) {
            double ga = al * in[4].v[i] + (1 - al) * g;
            var = sq - ga * ga;
            out->v[(mom > 0 ? 3 : 2) * n + i] = ga;
        }
        double r = g / (sqrt(var) + eps);
        if (mom > 0) {
            r = mom * in[3].v[i] + r;
            out->v[row * n + i] = r;
        }
        out->v[i] = p - lr * r;
    }
    return true;
}

/* ---- the cases ---------------------------------------------------------------------------- */

/* Domains: parameters and gradients around 1; second moments positive and large enough that
 * a centered variance stays positive. */
static const cf_dom grads = {CF_UNIFORM, -1, 1, -1, 1};
static const cf_dom moments = {CF_UNIFORM, -0.5, 0.5, -1, 1};
static const cf_dom squares = {CF_UNIFORM, 1, 2, 1, 2};

static const cf_op sgd_op = {"sgd_step", 0, 0, call_sgd, 0, 0, ref_sgd, EM_DTYPES_FLOAT,
                             CF_ACCUM, CF_OUT_FIRST, {{CF_UNIFORM, -2, 2, -2, 2}}};
static const cf_op adam_op = {"adam_step", 0, 0, call_adam, 0, 0, ref_adam, EM_DTYPES_FLOAT,
                              CF_ACCUM, CF_OUT_FIRST, {{CF_UNIFORM, -2, 2, -2, 2}}};
static const cf_op rmsprop_op = {"rmsprop_step", 0, 0, call_rmsprop, 0, 0, ref_rmsprop,
                                 EM_DTYPES_FLOAT, CF_ACCUM, CF_OUT_FIRST,
                                 {{CF_UNIFORM, -2, 2, -2, 2}}};

#define F(x) {.f = (x)}
#define I(x) {.i = (x)}

/* A set of hyperparameters: the op's attributes in declared order. */
typedef struct hyper {
    const char *label;
    em_attr a[9];
} hyper;

/* sgd_step: lr, momentum, dampening, weight_decay, nesterov, maximize, first_step */
static const hyper sgd_sets[] = {
    {"plain", {F(0.1), F(0), F(0), F(0), I(0), I(0), I(0)}},
    {"momentum", {F(0.1), F(0.9), F(0), F(0), I(0), I(0), I(0)}},
    {"momentum, first step", {F(0.1), F(0.9), F(0), F(0), I(0), I(0), I(1)}},
    {"momentum, dampening, weight decay", {F(0.05), F(0.8), F(0.3), F(0.01), I(0), I(0), I(0)}},
    {"nesterov, maximize", {F(0.1), F(0.9), F(0), F(0.1), I(1), I(1), I(0)}},
};

/* adam_step: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, step */
static const hyper adam_sets[] = {
    {"Adam, step 1", {F(1e-3), F(0.9), F(0.999), F(1e-8), F(0), I(0), I(0), I(0), I(1)}},
    {"Adam, step 7, weight decay", {F(1e-2), F(0.9), F(0.99), F(1e-8), F(0.1), I(0), I(0), I(0),
                                    I(7)}},
    {"Adam, amsgrad, maximize", {F(1e-2), F(0.8), F(0.9), F(1e-6), F(0), I(1), I(1), I(0),
                                 I(3)}},
    {"AdamW", {F(1e-3), F(0.9), F(0.999), F(1e-8), F(1e-2), I(0), I(0), I(1), I(2)}},
    {"AdamW, amsgrad", {F(1e-2), F(0.5), F(0.75), F(1e-3), F(0.2), I(1), I(0), I(1), I(5)}},
};

/* rmsprop_step: lr, alpha, eps, weight_decay, momentum, centered, maximize */
static const hyper rmsprop_sets[] = {
    {"plain", {F(1e-2), F(0.99), F(1e-8), F(0), F(0), I(0), I(0)}},
    {"momentum, weight decay", {F(1e-2), F(0.9), F(1e-8), F(0.1), F(0.9), I(0), I(0)}},
    {"centered", {F(1e-2), F(0.99), F(1e-6), F(0), F(0), I(1), I(0)}},
    {"centered, momentum, maximize", {F(1e-3), F(0.9), F(1e-8), F(0.01), F(0.5), I(1), I(1)}},
};

#define COUNT(a) (int)(sizeof a / sizeof a[0])

/* Each op with its inputs' domains (after param and grad) and its hyperparameter sets. */
static const struct {
    const cf_op *op;
    int nin, nattrs;
    const cf_dom *dom[3];
    const hyper *sets;
    int nsets;
} families[] = {
    {&sgd_op, 3, 7, {&moments}, sgd_sets, COUNT(sgd_sets)},
    {&adam_op, 5, 9, {&moments, &squares, &squares}, adam_sets, COUNT(adam_sets)},
    {&rmsprop_op, 5, 7, {&squares, &moments, &moments}, rmsprop_sets, COUNT(rmsprop_sets)},
};

/* Adds the case in both layouts of the state: contiguous (fused) and strided (composite). */
static void add_both(cf_list *l, cf_case *c, const char *label)
{
    for (int k = 0; k < 2; k++) {
        cf_case v = *c;
        for (int i = 2; i < v.nin; i++)
            v.in[i].layout = k ? CF_STEP : CF_CONTIG;
        cf_label(&v, "%s, [%lld]%s", label, (long long)c->in[0].shape[0],
                 k ? ", strided state" : "");
        cf_add(l, &v);
    }
}

void cf_family_optim(cf_list *l)
{
    /* 1000 elements: more than one vector and a tail; 70000: split across threads */
    static const int64_t sizes[] = {1000, 70000};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
        for (int f = 0; f < COUNT(families); f++)
            for (int k = 0; k < families[f].nsets; k++) {
                cf_case c = {.op = families[f].op, .nin = families[f].nin};
                for (int i = 0; i < c.nin; i++)
                    c.in[i] = (cf_in){.ndim = 1, .shape = {sizes[s]}};
                c.in[1].dom = &grads;
                for (int i = 2; i < c.nin; i++)
                    c.in[i].dom = families[f].dom[i - 2];
                c.p.nattrs = families[f].nattrs;
                c.p.attrs = families[f].sets[k].a;
                add_both(l, &c, families[f].sets[k].label);
            }
}
