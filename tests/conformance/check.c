/* tests/conformance/check.c - the three checks of one case instance: forward values against
 * the float64 reference, the gradient (a vector-Jacobian product) against the CPU's (in
 * float64; in the same dtype for float16/bfloat16), and em_gradcheck's central differences in
 * float64.
 *
 * The reference is, in order of preference: golden values from PyTorch, a host function in
 * float64 (independent of every backend, the CPU's included), or the same op run on the CPU
 * backend in float64 from the same rounded inputs (ops from plugins without a reference).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runner_internal.h"

/* Gradient checks by central differences cost one backward per output element and two
 * forwards per input element: only small cases get them. */
#define GRADCHECK_MAX_ELEMS 160

typedef struct inst {
    cf_run_ctx *R;
    const cf_case *c;
    em_dtype dt;
    int nin;
    em_dtype in_dt[CF_MAX_IN];
    cf_arr base[CF_MAX_IN];       /* rounded values of each input's storage-owning tensor */
    cf_arr logical[CF_MAX_IN];    /* the values the op sees */
    em_tensor *view[CF_MAX_IN];   /* on the target */
    cf_pool pool;
} inst;

em_tensor *cf_call(const cf_case *c, em_tensor *const *in)
{
    if (c->op->call)
        return c->op->call(c, in);
    if (c->op->f1)
        return c->op->f1(in[0]);
    return c->op->f2(in[0], in[1]);
}

static void inst_free(inst *I)
{
    for (int i = 0; i < I->nin; i++) {
        cf_arr_free(&I->base[i]);
        cf_arr_free(&I->logical[i]);
    }
    cf_pool_release(&I->pool);
}

/* Builds the inputs on the target (and their logical values, read back from the CPU copy that
 * was moved there). Returns EM_OK or a negative status with the error set. */
static int build_inputs(inst *I, em_device dev)
{
    const cf_case *c = I->c;
    for (int i = 0; i < I->nin; i++) {
        I->in_dt[i] = cf_input_dtype(c, i, I->dt);
        if (!cf_input_values(c, i, I->in_dt[i], &I->base[i]))
            return em_set_error(EM_ERR_NOMEM, "conformance: out of host memory");
        em_tensor *cpu = cf_upload(&I->pool, &I->base[i], I->in_dt[i], em_device_parse("cpu"));
        em_tensor *cview = cpu ? cf_hold(&I->pool, cf_view(cpu, &c->in[i])) : NULL;
        if (!cview || !cf_read(cview, &I->logical[i]))
            return em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
        em_tensor *b = cf_hold(&I->pool, em_to(cpu, dev));
        I->view[i] = b ? cf_hold(&I->pool, cf_view(b, &c->in[i])) : NULL;
        if (!I->view[i])
            return em_last_status();
    }
    return EM_OK;
}

/* The dtype PyTorch gives the result. */
static em_dtype expected_dtype(const inst *I)
{
    const cf_case *c = I->c;
    em_dtype dts[CF_MAX_IN + 1];
    int nds[CF_MAX_IN + 1];
    bool wrapped[CF_MAX_IN + 1] = {0};
    int n = I->nin;
    for (int i = 0; i < n; i++) {
        dts[i] = I->in_dt[i];
        nds[i] = c->in[i].ndim;
    }
    if (c->p.scalar_arg) {
        dts[n] = c->p.scalar == floor(c->p.scalar) ? EM_I64 : EM_F64;
        nds[n] = 0;
        wrapped[n++] = true;
    }
    if (c->p.to)
        return c->p.to;
    em_dtype r = n ? cf_result_type(n, dts, nds, wrapped) : I->dt;
    switch (c->op->out) {
    case CF_OUT_FLOAT: return em_dtype_is_float(r) ? r : EM_F32;
    case CF_OUT_BOOL: return EM_BOOL;
    case CF_OUT_I64: return EM_I64;
    case CF_OUT_SUM: return em_dtype_is_float(dts[0]) ? dts[0] : EM_I64;
    case CF_OUT_FIRST: return n ? dts[0] : I->dt;
    case CF_OUT_CASE: return I->dt;
    default: return r;
    }
}

static double plugin_elem(const double *x, const void *ctx)
{
    const cf_case *c = ctx;
    return c->elem_ref(c->nin, x, c->p.attrs);
}

/* The op run on the CPU backend, inputs in float64 where they are floating point. */
static bool cpu_reference(inst *I, cf_arr *out)
{
    em_tensor *in[CF_MAX_IN];
    for (int i = 0; i < I->nin; i++) {
        em_dtype d = em_dtype_is_float(I->in_dt[i]) ? EM_F64 : I->in_dt[i];
        if (!(in[i] = cf_upload(&I->pool, &I->logical[i], d, I->R->cpu)))
            return false;
    }
    em_tensor *y = cf_hold(&I->pool, cf_call(I->c, in));
    return y && cf_read(y, out);
}

/* The dtype an elementwise op computes in (inputs are cast to it first, as PyTorch's
 * TensorIterator does), or 0 for ops that take their inputs as they are. */
static em_dtype compute_dtype(const inst *I)
{
    const cf_case *c = I->c;
    if (c->golden || c->p.to || (c->op->out != CF_OUT_PROMOTE && c->op->out != CF_OUT_FLOAT &&
                                 c->op->out != CF_OUT_BOOL))
        return EM_DTYPE_UNSPEC;
    em_dtype dts[CF_MAX_IN + 1];
    int nds[CF_MAX_IN + 1];
    bool wrapped[CF_MAX_IN + 1] = {0};
    int n = 0;
    for (int i = 0; i < I->nin; i++) {   /* (where's bool condition never raises the type) */
        dts[n] = I->in_dt[i];
        nds[n++] = c->in[i].ndim;
    }
    if (c->p.scalar_arg) {
        dts[n] = c->p.scalar == floor(c->p.scalar) ? EM_I64 : EM_F64;
        nds[n] = 0;
        wrapped[n++] = true;
    }
    em_dtype r = cf_result_type(n, dts, nds, wrapped);
    if (c->op->out == CF_OUT_FLOAT && !em_dtype_is_float(r))
        r = EM_F32;
    return r;
}

/* The expected output, rounded to dtype odt. False with the error set. */
static bool reference(inst *I, em_dtype odt, cf_arr *out)
{
    const cf_case *c = I->c;
    const cf_op *op = c->op;
    bool ok;
    em_dtype cdt = compute_dtype(I);
    for (int i = 0; cdt && i < I->nin; i++)
        for (int64_t k = 0; k < I->logical[i].n; k++)
            I->logical[i].v[k] = cf_round(cdt, I->logical[i].v[k]);
    if (c->golden) {
        ok = cf_arr_alloc(out, c->golden->out_ndim, c->golden->out_shape);
        if (ok)
            memcpy(out->v, c->golden->out, sizeof(double) * (size_t)out->n);
    } else if (op->ref) {
        ok = op->ref(c, I->nin, I->logical, out);
    } else if (op->r1) {
        ok = cf_ref_unary(c, I->nin, I->logical, out);
    } else if (op->r2) {
        ok = cf_ref_binary(c, I->nin, I->logical, out);
    } else if (c->elem_ref) {
        ok = cf_ref_elementwise(I->nin, I->logical, out, plugin_elem, c);
    } else {
        ok = cpu_reference(I, out);
        if (!ok)
            return false;
    }
    if (!ok) {
        em_set_error(EM_ERR_INTERNAL, "the case's reference could not be computed (a bug in "
                                      "the case table)");
        return false;
    }
    for (int64_t k = 0; k < out->n; k++)
        out->v[k] = cf_round(odt, out->v[k]);
    out->dtype = odt;
    return true;
}

/* Unsupported -> skip with the reason; anything else -> fail with it. */
static void record_error(inst *I, const char *check, const char *what)
{
    int st = em_last_status() == EM_ERR_UNSUPPORTED ? CF_SKIP : CF_FAIL;
    cf_record(I->R, I->c, I->dt, check, st, "%s%s", what, em_last_error());
}

/* ---- forward ---------------------------------------------------------------------------- */

static bool check_forward(inst *I)
{
    const cf_case *c = I->c;
    if (build_inputs(I, I->R->dev) < 0) {
        record_error(I, "forward", "building the inputs: ");
        return false;
    }
    em_tensor *y = cf_hold(&I->pool, cf_call(c, I->view));
    if (!y) {
        record_error(I, "forward", "");
        return false;
    }
    em_dtype odt = expected_dtype(I);
    if (c->op->out == CF_OUT_ASK_CPU) {
        em_tensor *in[CF_MAX_IN];
        for (int i = 0; i < I->nin; i++)
            in[i] = cf_upload(&I->pool, &I->logical[i], I->in_dt[i], I->R->cpu);
        em_tensor *yc = cf_hold(&I->pool, cf_call(c, in));
        odt = yc ? em_dtype_of(yc) : em_dtype_of(y);
        em_clear_error();
    }
    char ds[32], dw[32];
    if (em_dtype_of(y) != odt) {
        cf_record(I->R, c, I->dt, "forward", CF_FAIL, "result dtype %s, expected %s",
                  em_dtype_name(em_dtype_of(y)), em_dtype_name(odt));
        return false;
    }
    if (!em_device_eq(em_device_of(y), I->R->dev)) {
        cf_record(I->R, c, I->dt, "forward", CF_FAIL, "result on %s, expected %s",
                  em_device_str(em_device_of(y), ds, sizeof ds),
                  em_device_str(I->R->dev, dw, sizeof dw));
        return false;
    }
    cf_arr got = {0}, want = {0};
    if (!cf_read(y, &got)) {
        record_error(I, "forward", "reading the result: ");
        return false;
    }
    if (!reference(I, odt, &want)) {
        cf_record(I->R, c, I->dt, "forward", CF_FAIL, "reference: %s", em_last_error());
        cf_arr_free(&got);
        return false;
    }
    char msg[512];
    bool ok = cf_compare(&got, &want, cf_tolerance(c, odt, false), msg, sizeof msg);
    cf_record(I->R, c, I->dt, "forward", ok ? CF_PASS : CF_FAIL, "%s", ok ? "" : msg);
    cf_arr_free(&got);
    cf_arr_free(&want);
    return em_dtype_is_float(odt);
}

/* ---- gradients ------------------------------------------------------------------------------ */

static bool differentiable(const inst *I, int i)
{
    const cf_case *c = I->c;
    return (c->op->flags & CF_GRAD) && !(c->flags & CF_NO_GRAD) && em_dtype_is_float(I->dt) &&
           c->in[i].dtype == EM_DTYPE_UNSPEC && (!c->golden || c->golden->grad[i]);
}

/* Upstream gradient values for an output of shape (nd, shape), rounded to dt. */
static bool upstream(const inst *I, int nd, const int64_t *shape, em_dtype dt, cf_arr *g)
{
    if (!cf_arr_alloc(g, nd, shape))
        return false;
    if (I->c->golden && I->c->golden->g &&
        cf_numel(I->c->golden->out_ndim, I->c->golden->out_shape) == g->n)
        memcpy(g->v, I->c->golden->g, sizeof(double) * (size_t)g->n);
    else
        for (int64_t k = 0; k < g->n; k++)
            g->v[k] = 2 * em_philox_uniform(I->c->seed ^ 0xa5a5a5a5ULL, 7, (uint64_t)k) - 1;
    for (int64_t k = 0; k < g->n; k++)
        g->v[k] = cf_round(dt, g->v[k]);
    return true;
}

/* Runs the op on `dev` with differentiable inputs in dtype `fdt` (others in their own, widened
 * to float64 when fdt is), back-propagates the upstream gradient g (computed on the first call
 * from the target's output dtype) and reads each differentiable base's gradient. Returns
 * EM_OK or a negative status with the error set. */
static int vjp(inst *I, em_device dev, em_dtype fdt, cf_arr *g, cf_arr *grads)
{
    em_tensor *bases[CF_MAX_IN], *views[CF_MAX_IN];
    for (int i = 0; i < I->nin; i++) {
        em_dtype d = differentiable(I, i) ? fdt
                     : fdt == EM_F64 && em_dtype_is_float(I->in_dt[i]) ? EM_F64
                                                                       : I->in_dt[i];
        /* a fresh leaf that nothing else shares */
        if (!(bases[i] = cf_upload(&I->pool, &I->base[i], d, dev)) ||
            (differentiable(I, i) && em_requires_grad_(bases[i], true) < 0))
            return em_last_status();
        if (!(views[i] = cf_hold(&I->pool, cf_view(bases[i], &I->c->in[i]))))
            return em_last_status();
    }
    em_tensor *y = cf_hold(&I->pool, cf_call(I->c, views));
    if (!y)
        return em_last_status();
    if (!em_requires_grad(y))
        return em_set_error(EM_ERR_INVALID, "the result does not require grad (grad_fn %s)",
                            em_grad_fn_name(y) ? em_grad_fn_name(y) : "none");
    if (!g->v && !upstream(I, em_ndim(y), em_shape(y), em_dtype_of(y), g))
        return em_set_error(EM_ERR_NOMEM, "conformance: out of host memory");
    em_tensor *gt = cf_upload(&I->pool, g, em_dtype_of(y), dev);
    if (!gt || em_backward(y, gt, false) < 0)
        return em_last_status();
    for (int i = 0; i < I->nin; i++) {
        if (!differentiable(I, i))
            continue;
        em_tensor *gr = em_grad(bases[i]);
        if (gr && !cf_read(gr, &grads[i]))
            return em_last_status();
        if (!gr && !cf_arr_alloc(&grads[i], em_ndim(bases[i]), em_shape(bases[i])))
            return em_set_error(EM_ERR_NOMEM, "conformance: out of host memory");
    }
    return EM_OK;
}

/* float32/float64 gradients are compared with the CPU's in float64. float16/bfloat16 ones are
 * compared with the CPU's in the same dtype, as PyTorch compares reduced-precision gradients:
 * a gradient that sums many rounded products (the gradient of a broadcast operand) differs
 * from the exact one by far more than the dtype's tolerance, on every backend. Against the
 * CPU itself that comparison would be empty, so it is not made there (the formulas are
 * checked in float64 and float32, the kernels they use in every dtype by the forward cases). */
static void check_grad(inst *I)
{
    const cf_case *c = I->c;
    bool lowp = I->dt == EM_F16 || I->dt == EM_BF16;
    if (lowp && !c->golden && em_device_eq(I->R->dev, I->R->cpu))
        return;
    cf_arr g = {0}, got[CF_MAX_IN] = {{0}}, want[CF_MAX_IN] = {{0}};
    int rc = vjp(I, I->R->dev, I->dt, &g, got);
    if (rc < 0) {
        record_error(I, "grad", "backward: ");
        goto done;
    }
    if (c->golden) {
        for (int i = 0; i < I->nin; i++)
            if (differentiable(I, i) && cf_arr_alloc(&want[i], got[i].ndim, got[i].shape))
                memcpy(want[i].v, c->golden->grad[i], sizeof(double) * (size_t)want[i].n);
    } else if ((rc = vjp(I, I->R->cpu, lowp ? I->dt : EM_F64, &g, want)) < 0) {
        cf_record(I->R, c, I->dt, "grad", CF_FAIL, "the CPU reference (%s) failed: %s",
                  em_dtype_name(lowp ? I->dt : EM_F64), em_last_error());
        goto done;
    }
    char msg[600] = "";
    bool ok = true;
    for (int i = 0; i < I->nin && ok; i++) {
        if (!differentiable(I, i))
            continue;
        char m[512];
        if (!cf_compare(&got[i], &want[i], cf_tolerance(c, I->dt, true), m, sizeof m)) {
            snprintf(msg, sizeof msg, "grad of input %d: %s", i, m);
            ok = false;
        }
    }
    cf_record(I->R, c, I->dt, "grad", ok ? CF_PASS : CF_FAIL, "%s", msg);
done:
    cf_arr_free(&g);
    for (int i = 0; i < CF_MAX_IN; i++) {
        cf_arr_free(&got[i]);
        cf_arr_free(&want[i]);
    }
}

static em_tensor *gradcheck_fn(int nin, em_tensor *const *in, void *ctx)
{
    const cf_case *c = ctx;
    em_tensor *v[CF_MAX_IN] = {0};
    bool ok = true;
    for (int i = 0; i < nin; i++)
        ok = ok && (v[i] = cf_view(in[i], &c->in[i])) != NULL;
    em_tensor *y = ok ? cf_call(c, v) : NULL;
    for (int i = 0; i < nin; i++)
        em_release(v[i]);
    return y;
}

static void check_gradcheck(inst *I)
{
    const cf_case *c = I->c;
    int64_t total = 0;
    em_tensor *bases[CF_MAX_IN];
    for (int i = 0; i < I->nin; i++) {
        if (differentiable(I, i)) {
            if (I->base[i].n == 0)
                return;   /* nothing to differentiate */
            total += I->base[i].n;
        }
        em_dtype d = differentiable(I, i) || em_dtype_is_float(I->in_dt[i]) ? EM_F64
                                                                           : I->in_dt[i];
        bases[i] = cf_upload(&I->pool, &I->base[i], d, I->R->dev);
        if (!bases[i] || (differentiable(I, i) && em_requires_grad_(bases[i], true) < 0)) {
            record_error(I, "gradcheck", "");
            return;
        }
    }
    em_tensor *probe = cf_hold(&I->pool, gradcheck_fn(I->nin, bases, (void *)c));
    if (!probe) {
        record_error(I, "gradcheck", "");
        return;
    }
    int64_t m = em_numel(probe);
    if (total == 0 || m == 0 || total > GRADCHECK_MAX_ELEMS || m > GRADCHECK_MAX_ELEMS)
        return;   /* too large (the grad check above covers it) or empty */
    int rc = em_gradcheck(gradcheck_fn, (void *)c, I->nin, bases, -1, -1, -1);
    if (rc < 0)
        record_error(I, "gradcheck", "");
    else
        cf_record(I->R, c, I->dt, "gradcheck", CF_PASS, NULL);
}

/* ---- entry points --------------------------------------------------------------------------- */

void cf_run_instance(cf_run_ctx *R, const cf_case *c, em_dtype dt)
{
    inst I = {.R = R, .c = c, .dt = dt, .nin = c->nin};
    em_clear_error();
    bool float_out = check_forward(&I);
    bool grads = false;
    for (int i = 0; i < c->nin; i++)
        grads |= differentiable(&I, i);
    /* Gradient checks only when the forward pass ran (passed or failed on values). */
    if (grads && float_out) {
        check_grad(&I);
        if (dt == EM_F64 && !(c->flags & CF_NO_GRADCHECK))
            check_gradcheck(&I);
    }
    inst_free(&I);
}

int cf_probe(const cf_case *c, em_dtype dt, em_device dev)
{
    inst I = {.c = c, .dt = dt, .nin = c->nin};
    em_clear_error();
    int rc = build_inputs(&I, dev);
    if (rc == EM_OK && !cf_hold(&I.pool, cf_call(c, I.view)))
        rc = em_last_status() < 0 ? em_last_status() : EM_ERR_INTERNAL;
    inst_free(&I);
    return rc;
}
