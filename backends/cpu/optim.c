/* backends/cpu/optim.c - fused optimizer updates: sgd_step, adam_step, rmsprop_step in one pass.
 *
 * Each kernel reads the parameter, its gradient and its state once and writes the new
 * parameter and state once, where the composites in core/optim_ops.c make about ten passes
 * and as many temporaries. The arithmetic is the composites', op for op: every intermediate
 * is rounded to the dtype (no FMA, no reassociation; -ffp-contract is off in C11 mode) and the
 * scalars are converted as the composites' wrapped scalars are (whole numbers through int64,
 * so -0.0 becomes +0), so float32 and float64 results are bit for bit the composite's; the
 * conformance cases check that. float16 and bfloat16 are left to the composite.
 *
 * The flags that pick a formula's branches are loop invariants; each body is inlined once per
 * combination of them (a switch over a small mask), so the loops carry no branches and
 * vectorise.
 *
 * Inputs: in[0] the parameter, in[1] the gradient, then the state, which the kernel updates in
 * place (em_op_def.updates: the dispatcher hands it over contiguous and of the compute dtype).
 * out[0] is usually the parameter's own buffer.
 */
#include <math.h>
#include <string.h>

#include "cpu.h"

/* Pointers of one call, element 0 of each operand (void *: the loops cast them). The loops
 * update the parameter in out (see job_init), and no two operands they touch overlap, hence
 * restrict (unused state slots point at the parameter but are never touched). */
typedef struct update_job {
    const void *g;
    void *out, *s0, *s1, *s2;
    unsigned mask;          /* the loop-invariant flags, per op */
    bool first;             /* sgd: the momentum buffer takes d */
    double k[6];            /* scalars, per op, converted below */
} update_job;

#define ALWAYS_INLINE static inline __attribute__((always_inline))

/* One instance of fn per mask value 0..15 (bits: the four flags of the op, in order). */
#define FLAG_CASES(fn, j, b, e)                                                               \
    switch ((j)->mask) {                                                                      \
    case 0: fn(j, b, e, 0, 0, 0, 0); break;                                                   \
    case 1: fn(j, b, e, 1, 0, 0, 0); break;                                                   \
    case 2: fn(j, b, e, 0, 1, 0, 0); break;                                                   \
    case 3: fn(j, b, e, 1, 1, 0, 0); break;                                                   \
    case 4: fn(j, b, e, 0, 0, 1, 0); break;                                                   \
    case 5: fn(j, b, e, 1, 0, 1, 0); break;                                                   \
    case 6: fn(j, b, e, 0, 1, 1, 0); break;                                                   \
    case 7: fn(j, b, e, 1, 1, 1, 0); break;                                                   \
    case 8: fn(j, b, e, 0, 0, 0, 1); break;                                                   \
    case 9: fn(j, b, e, 1, 0, 0, 1); break;                                                   \
    case 10: fn(j, b, e, 0, 1, 0, 1); break;                                                  \
    case 11: fn(j, b, e, 1, 1, 0, 1); break;                                                  \
    case 12: fn(j, b, e, 0, 0, 1, 1); break;                                                  \
    case 13: fn(j, b, e, 1, 0, 1, 1); break;                                                  \
    case 14: fn(j, b, e, 0, 1, 1, 1); break;                                                  \
    default: fn(j, b, e, 1, 1, 1, 1); break;                                                  \
    }

/* The float32 and float64 loops of an update and their chunk functions for the pool: BODY is
 * the loop (over [b, e) of job j, with the four flags f0..f3 named by the op) written for
 * element type T, scalar conversion CONV and square root SQRT. */
#define UPDATE_LOOPS(name, BODY, f0, f1, f2, f3)                                              \
    ALWAYS_INLINE void name##_f32(const update_job *j, int64_t b, int64_t e, bool f0, bool f1, \
                                  bool f2, bool f3)                                           \
    {                                                                                         \
        BODY(float, em_scalar_f32, sqrtf)                                                    \
    }                                                                                         \
    ALWAYS_INLINE void name##_f64(const update_job *j, int64_t b, int64_t e, bool f0, bool f1, \
                                  bool f2, bool f3)                                           \
    {                                                                                         \
        BODY(double, em_scalar_f64, sqrt)                                                    \
    }                                                                                         \
    EM_CPU_VECTOR_CLONES static void name##_chunk_f32(void *ctx, int64_t b, int64_t e)       \
    {                                                                                         \
        const update_job *j = ctx;                                                            \
        FLAG_CASES(name##_f32, j, b, e)                                                       \
    }                                                                                         \
    EM_CPU_VECTOR_CLONES static void name##_chunk_f64(void *ctx, int64_t b, int64_t e)       \
    {                                                                                         \
        const update_job *j = ctx;                                                            \
        FLAG_CASES(name##_f64, j, b, e)                                                       \
    }

/* ---- sgd_step ---------------------------------------------------------------------------- */

enum { SGD_MAXIMIZE = 1, SGD_DECAY = 2, SGD_MOMENTUM = 4, SGD_NESTEROV = 8 };

/* k: weight_decay, momentum, 1 - dampening, -lr (each converted as a wrapped scalar). The
 * first step's "buffer takes d" is a separate loop (FIRST a constant in each), so that no
 * branch is left inside either and both vectorise. */
#define SGD_LOOP(T, FIRST)                                                                    \
    for (int64_t i = b; i < e; i++) {                                                         \
        T d = maximize ? -g[i] : g[i];                                                        \
        if (decay)                                                                            \
            d = d + p[i] * wd;                                                                \
        if (momentum) {                                                                       \
            T m = FIRST ? d : buf[i] * mom + d * damp1;                                       \
            buf[i] = m;                                                                       \
            d = nesterov ? d + m * mom : m;                                                   \
        }                                                                                     \
        p[i] = p[i] + d * nlr;                                                                \
    }
#define SGD_BODY(T, CONV, SQRT)                                                               \
    const T *restrict g = j->g;                                                               \
    T *restrict p = j->out, *restrict buf = j->s0;                                            \
    T wd = CONV(j->k[0]), mom = CONV(j->k[1]), damp1 = CONV(j->k[2]), nlr = CONV(j->k[3]);    \
    if (j->first)                                                                             \
        SGD_LOOP(T, true)                                                                     \
    else                                                                                      \
        SGD_LOOP(T, false)

UPDATE_LOOPS(sgd, SGD_BODY, maximize, decay, momentum, nesterov)

/* ---- adam_step --------------------------------------------------------------------------- */

enum { ADAM_MAXIMIZE = 1, ADAM_DECAY = 2, ADAM_DECOUPLED = 4, ADAM_AMSGRAD = 8 };

/* k: weight_decay, 1 - lr * weight_decay, beta1, 1 - beta1, beta2, 1 - beta2; the last two
 * scalars (sqrt(1 - beta2^t), eps, -lr / (1 - beta1^t)) sit in the job's tail. */
typedef struct adam_job {
    update_job u;
    double bc2_sqrt, eps, nstep;
} adam_job;

#define ADAM_BODY(T, CONV, SQRT)                                                              \
    const adam_job *a = (const adam_job *)j;                                                  \
    const T *restrict g = j->g;                                                               \
    T *restrict p = j->out, *restrict m = j->s0, *restrict v = j->s1, *restrict vmax = j->s2; \
    T wd = CONV(j->k[0]), shrink = CONV(j->k[1]), b1 = CONV(j->k[2]), b1c = CONV(j->k[3]);    \
    T b2 = CONV(j->k[4]), b2c = CONV(j->k[5]);                                                \
    T bc2 = CONV(a->bc2_sqrt), eps = CONV(a->eps), nstep = CONV(a->nstep);                    \
    for (int64_t i = b; i < e; i++) {                                                         \
        T gi = maximize ? -g[i] : g[i];                                                       \
        T pi = p[i];                                                                          \
        if (decay)                                                                            \
            gi = gi + pi * wd;                                                                \
        if (decoupled)                                                                        \
            pi = pi * shrink;                                                                 \
        T mi = m[i] * b1 + gi * b1c;                                                          \
        T vi = v[i] * b2 + (gi * gi) * b2c;                                                   \
        m[i] = mi;                                                                            \
        v[i] = vi;                                                                            \
        if (amsgrad) {                                                                        \
            T x = vmax[i];                                                                    \
            vi = (x > vi || x != x) ? x : vi;                                                 \
            vmax[i] = vi;                                                                     \
        }                                                                                     \
        T denom = SQRT(vi) / bc2 + eps;                                                       \
        p[i] = pi + (mi / denom) * nstep;                                                     \
    }

UPDATE_LOOPS(adam, ADAM_BODY, maximize, decay, decoupled, amsgrad)

/* ---- rmsprop_step ------------------------------------------------------------------------ */

enum { RMS_MAXIMIZE = 1, RMS_DECAY = 2, RMS_CENTERED = 4, RMS_MOMENTUM = 8 };

/* k: weight_decay, alpha, 1 - alpha, eps, momentum, -lr. */
#define RMS_BODY(T, CONV, SQRT)                                                               \
    const T *restrict g = j->g;                                                               \
    T *restrict p = j->out, *restrict sq = j->s0, *restrict buf = j->s1, *restrict ga = j->s2; \
    T wd = CONV(j->k[0]), al = CONV(j->k[1]), alc = CONV(j->k[2]), eps = CONV(j->k[3]);       \
    T mom = CONV(j->k[4]), nlr = CONV(j->k[5]), neg1 = CONV(-1.0);                            \
    for (int64_t i = b; i < e; i++) {                                                         \
        T gi = maximize ? -g[i] : g[i];                                                       \
        if (decay)                                                                            \
            gi = gi + p[i] * wd;                                                              \
        T si = sq[i] * al + (gi * gi) * alc;                                                  \
        sq[i] = si;                                                                           \
        T var = si;                                                                           \
        if (centered) {                                                                       \
            T gai = ga[i] * al + gi * alc;                                                    \
            ga[i] = gai;                                                                      \
            var = si + (gai * gai) * neg1;                                                    \
        }                                                                                     \
        T r = gi / (SQRT(var) + eps);                                                         \
        if (momentum) {                                                                       \
            r = buf[i] * mom + r;                                                             \
            buf[i] = r;                                                                       \
        }                                                                                     \
        p[i] = p[i] + r * nlr;                                                                \
    }

UPDATE_LOOPS(rms, RMS_BODY, maximize, decay, centered, momentum)

/* ---- kernels ----------------------------------------------------------------------------- */

/* Fills the pointers of the job from the call; false (with the error set) for a dtype the
 * kernel was not registered for. */
static bool job_init(update_job *j, const em_kcall *c, const char *op, int nin, int nattrs)
{
    if (em_kcall_check(c, "cpu", nin, 1, nattrs) < 0)
        return false;
    em_dtype dt = c->in[0].dtype;
    if (dt != EM_F32 && dt != EM_F64) {
        em_set_error(EM_ERR_UNSUPPORTED, "cpu: %s has no kernel for %s", op, em_dtype_name(dt));
        return false;
    }
    /* The update runs in place on out: out is the parameter's own buffer (the usual case),
     * else a fresh one, which takes the parameter's values first. */
    const void *p = em_cpu__data(&c->in[0]);
    j->out = em_cpu__data(&c->out[0]);
    if (j->out != p)
        memcpy(j->out, p, (size_t)c->out[0].numel * em_dtype_size(dt));
    j->g = em_cpu__data(&c->in[1]);
    void **state[3] = {&j->s0, &j->s1, &j->s2};
    for (int i = 2; i < nin; i++)
        *state[i - 2] = em_cpu__data(&c->in[i]);
    return true;
}

static int run(const em_kcall *c, update_job *j, int64_t grain, em_cpu_task_fn f32,
               em_cpu_task_fn f64)
{
    em_cpu__parallel_for(c->out[0].numel, grain, c->in[0].dtype == EM_F32 ? f32 : f64, j);
    return EM_OK;
}

/* attrs: lr, momentum, dampening, weight_decay, nesterov, maximize, first_step */
static int k_sgd_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    update_job j = {0};
    if (!job_init(&j, c, "sgd_step", 3, 7))
        return em_last_status();
    const em_attr *a = c->attrs;
    j.mask = (a[5].i ? SGD_MAXIMIZE : 0) | (a[3].f != 0 ? SGD_DECAY : 0) |
             (a[1].f != 0 ? SGD_MOMENTUM : 0) | (a[1].f != 0 && a[4].i ? SGD_NESTEROV : 0);
    j.first = a[6].i != 0;
    j.k[0] = a[3].f;
    j.k[1] = a[1].f;
    j.k[2] = 1 - a[2].f;
    j.k[3] = -a[0].f;
    return run(c, &j, EM_CPU_GRAIN_CHEAP, sgd_chunk_f32, sgd_chunk_f64);
}

/* attrs: lr, beta1, beta2, eps, weight_decay, amsgrad, maximize, decoupled, step */
static int k_adam_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    adam_job j;
    memset(&j, 0, sizeof j);
    if (!job_init(&j.u, c, "adam_step", 5, 9))
        return em_last_status();
    const em_attr *a = c->attrs;
    double lr = a[0].f, b1 = a[1].f, b2 = a[2].f, wd = a[4].f, t = (double)a[8].i;
    bool decoupled = a[7].i != 0;
    j.u.mask = (a[6].i ? ADAM_MAXIMIZE : 0) | (wd != 0 && !decoupled ? ADAM_DECAY : 0) |
               (wd != 0 && decoupled ? ADAM_DECOUPLED : 0) | (a[5].i ? ADAM_AMSGRAD : 0);
    j.u.k[0] = wd;
    j.u.k[1] = 1 - lr * wd;
    j.u.k[2] = b1;
    j.u.k[3] = 1 - b1;
    j.u.k[4] = b2;
    j.u.k[5] = 1 - b2;
    j.bc2_sqrt = sqrt(1 - pow(b2, t));
    j.eps = a[3].f;
    j.nstep = -(lr / (1 - pow(b1, t)));
    return run(c, &j.u, EM_CPU_GRAIN_MATH, adam_chunk_f32, adam_chunk_f64);
}

/* attrs: lr, alpha, eps, weight_decay, momentum, centered, maximize */
static int k_rmsprop_step(void *bctx, const em_kcall *c)
{
    (void)bctx;
    update_job j = {0};
    if (!job_init(&j, c, "rmsprop_step", 5, 7))
        return em_last_status();
    const em_attr *a = c->attrs;
    j.mask = (a[6].i ? RMS_MAXIMIZE : 0) | (a[3].f != 0 ? RMS_DECAY : 0) |
             (a[5].i ? RMS_CENTERED : 0) | (a[4].f > 0 ? RMS_MOMENTUM : 0);
    j.k[0] = a[3].f;
    j.k[1] = a[1].f;
    j.k[2] = 1 - a[1].f;
    j.k[3] = a[2].f;
    j.k[4] = a[4].f;
    j.k[5] = -a[0].f;
    return run(c, &j, EM_CPU_GRAIN_MATH, rms_chunk_f32, rms_chunk_f64);
}

int em_cpu__register_optim(em_registry *reg)
{
    static const em_kernel_decl table[] = {
        {"sgd_step", k_sgd_step, 0, EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64)},
        {"adam_step", k_adam_step, 0, EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64)},
        {"rmsprop_step", k_rmsprop_step, 0, EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64)},
    };
    return em_register_kernels(reg, "cpu", table, sizeof table / sizeof table[0]);
}
