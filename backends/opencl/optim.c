/* backends/opencl/optim.c - fused optimizer updates: sgd_step, adam_step, rmsprop_step in one
 * kernel each (source: kernels/optim.cl), for float32 and float64.
 *
 * The core hands the state over contiguous and of the parameter's dtype (em_op_def.updates)
 * and the kernel writes it in place. The parameter is updated in the output buffer, which is
 * the parameter's own unless the parameter is a strided view; then the output takes its values
 * first. Scalars are converted as the composites' scalar arguments are (em_scalar_f32/f64), so
 * the kernels round as the composites do. float16 and bfloat16 stay with the composites.
 */
#include <math.h>

#include "opencl.h"

enum { K_SGD, K_ADAM, K_RMSPROP };

/* A scalar argument in the kernel's dtype. */
typedef struct scalar {
    cl_float f;
    cl_double d;
} scalar;

static void scalar_set(scalar *s, double v)
{
    s->f = em_scalar_f32(v);
    s->d = em_scalar_f64(v);
}

static em_ocl_arg scalar_arg(const scalar *s, em_dtype dt)
{
    return dt == EM_F32 ? (em_ocl_arg){sizeof s->f, &s->f} : (em_ocl_arg){sizeof s->d, &s->d};
}

/* One call's buffers: the output (holding the parameter), the gradient and the state. */
typedef struct job {
    em_ocl_device *d;
    em_dtype dt;
    cl_mem mem[5];
    cl_long off[5];
    cl_long n;
} job;

static int job_init(job *j, const em_kcall *c, const char *op, int nin, int nattrs)
{
    if (!(j->d = em_ocl__kernel_device(c, op, nin, 1, nattrs)))
        return em_last_status();
    j->dt = c->in[0].dtype;
    if (j->dt != EM_F32 && j->dt != EM_F64)
        return em_set_error(EM_ERR_UNSUPPORTED, "opencl: %s has no kernel for %s", op,
                            em_dtype_name(j->dt));
    int rc;
    const em_ktensor *p = &c->in[0], *out = &c->out[0];
    size_t es = em_dtype_size(j->dt);
    if (out->buf != p->buf || out->offset != p->offset) {
        rc = em_ocl__copy_bytes(j->d, out->buf, (size_t)out->offset * es, p->buf,
                                (size_t)p->offset * es, (size_t)out->numel * es);
        if (rc != EM_OK)
            return rc;
    }
    j->mem[0] = out->buf;
    j->off[0] = out->offset;
    for (int i = 1; i < nin; i++) {
        j->mem[i] = c->in[i].buf;
        j->off[i] = c->in[i].offset;
    }
    j->n = out->numel;
    return EM_OK;
}

#define BUF(j, i) EM_OCL_ARG((j).mem[i]), EM_OCL_ARG((j).off[i])

/* attrs: lr, momentum, dampening, weight_decay, nesterov, maximize, first_step */
static int k_sgd_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    job j;
    int rc = job_init(&j, c, "sgd_step", 3, 7);
    if (rc != EM_OK)
        return rc;
    const em_attr *a = c->attrs;
    cl_int mask = (a[5].i ? 1 : 0) | (a[3].f != 0 ? 2 : 0) | (a[1].f != 0 ? 4 : 0) |
                  (a[1].f != 0 && a[4].i ? 8 : 0);
    cl_int first = a[6].i != 0;
    scalar k[4];
    scalar_set(&k[0], a[3].f);
    scalar_set(&k[1], a[1].f);
    scalar_set(&k[2], 1 - a[2].f);
    scalar_set(&k[3], -a[0].f);
    em_ocl_arg args[] = {BUF(j, 0), BUF(j, 1), BUF(j, 2), EM_OCL_ARG(j.n), EM_OCL_ARG(mask),
                         EM_OCL_ARG(first), scalar_arg(&k[0], j.dt), scalar_arg(&k[1], j.dt),
                         scalar_arg(&k[2], j.dt), scalar_arg(&k[3], j.dt)};
    return em_ocl__launch_1d(j.d, EM_OCL_OPTIM, j.dt, EM_DTYPE_UNSPEC, K_SGD, "sgd_step",
                             "sgd_step", (int)(sizeof args / sizeof args[0]), args, j.n);
}

/* attrs: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, step */
static int k_adam_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    job j;
    int rc = job_init(&j, c, "adam_step", 5, 9);
    if (rc != EM_OK)
        return rc;
    const em_attr *a = c->attrs;
    double lr = a[0].f, b1 = a[1].f, b2 = a[2].f, wd = a[4].f, t = (double)a[8].i;
    bool decoupled = a[7].i != 0;
    cl_int mask = (a[6].i ? 1 : 0) | (wd != 0 && !decoupled ? 2 : 0) |
                  (wd != 0 && decoupled ? 4 : 0) | (a[5].i ? 8 : 0);
    scalar k[9];
    scalar_set(&k[0], wd);
    scalar_set(&k[1], 1 - lr * wd);
    scalar_set(&k[2], b1);
    scalar_set(&k[3], 1 - b1);
    scalar_set(&k[4], b2);
    scalar_set(&k[5], 1 - b2);
    scalar_set(&k[6], sqrt(1 - pow(b2, t)));
    scalar_set(&k[7], a[3].f);
    scalar_set(&k[8], -(lr / (1 - pow(b1, t))));
    em_ocl_arg args[21] = {BUF(j, 0), BUF(j, 1), BUF(j, 2), BUF(j, 3), BUF(j, 4),
                           EM_OCL_ARG(j.n), EM_OCL_ARG(mask)};
    for (int i = 0; i < 9; i++)
        args[12 + i] = scalar_arg(&k[i], j.dt);
    return em_ocl__launch_1d(j.d, EM_OCL_OPTIM, j.dt, EM_DTYPE_UNSPEC, K_ADAM, "adam_step",
                             "adam_step", 21, args, j.n);
}

/* attrs: lr, alpha, eps, weight_decay, momentum, centered, maximize */
static int k_rmsprop_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    job j;
    int rc = job_init(&j, c, "rmsprop_step", 5, 7);
    if (rc != EM_OK)
        return rc;
    const em_attr *a = c->attrs;
    cl_int mask = (a[6].i ? 1 : 0) | (a[3].f != 0 ? 2 : 0) | (a[5].i ? 4 : 0) |
                  (a[4].f > 0 ? 8 : 0);
    scalar k[6];
    scalar_set(&k[0], a[3].f);
    scalar_set(&k[1], a[1].f);
    scalar_set(&k[2], 1 - a[1].f);
    scalar_set(&k[3], a[2].f);
    scalar_set(&k[4], a[4].f);
    scalar_set(&k[5], -a[0].f);
    em_ocl_arg args[18] = {BUF(j, 0), BUF(j, 1), BUF(j, 2), BUF(j, 3), BUF(j, 4),
                           EM_OCL_ARG(j.n), EM_OCL_ARG(mask)};
    for (int i = 0; i < 6; i++)
        args[12 + i] = scalar_arg(&k[i], j.dt);
    return em_ocl__launch_1d(j.d, EM_OCL_OPTIM, j.dt, EM_DTYPE_UNSPEC, K_RMSPROP,
                             "rmsprop_step", "rmsprop_step", 18, args, j.n);
}

int em_ocl__register_optim(em_registry *reg, uint32_t dtypes)
{
    uint32_t fl = dtypes & (EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64));
    const em_kernel_decl table[] = {
        {"sgd_step", k_sgd_step, 0, fl},
        {"adam_step", k_adam_step, 0, fl},
        {"rmsprop_step", k_rmsprop_step, 0, fl},
    };
    return em_register_kernels(reg, "opencl", table, sizeof table / sizeof table[0]);
}
