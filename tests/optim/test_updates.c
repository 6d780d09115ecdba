/* tests/optim/test_updates.c - the fused optimizer update ops (em_sgd_step_, em_adam_step_,
 * em_rmsprop_step_) on the default device: the fused kernel gives the composite's bits, both
 * bump the version counters of what they write, and misuse is an error.
 *
 * A backend runs the fused kernel when every state tensor is contiguous and the composite when
 * one is a strided view, so the same update run on contiguous state and on every other element
 * of a larger tensor compares the two paths: on the CPU, and with EMBER_BACKEND=opencl on
 * OpenCL (PoCL's division and square root are correctly rounded, so its bits agree too).
 */
#include <string.h>

#include "helpers.h"

TestSuite(updates, .init = opt_setup, .fini = opt_teardown);

#define N 1037   /* vector widths and a tail */
#define NSTATE 3

/* One set of tensors an update works on: param, grad and up to three state tensors; `strided`
 * makes the state every other element of a [N, 2] tensor. */
typedef struct set {
    em_tensor *t[2 + NSTATE];
    em_tensor *base[NSTATE];
} set;

static em_tensor *draw(em_dtype dt, bool positive)
{
    int64_t n = N;
    em_opts o = {.dtype = dt};
    return positive ? em_rand(1, &n, &o) : em_randn(1, &n, &o);
}

static void set_make(set *s, em_dtype dt, uint64_t seed, bool strided)
{
    em_manual_seed(seed);
    for (int i = 0; i < 2 + NSTATE; i++) {
        em_tensor *v = draw(dt, i == 3 || i == 4);   /* second moments are positive */
        cr_assert_not_null(v, "%s", em_last_error());
        if (i < 2 || !strided) {
            s->t[i] = v;
            continue;
        }
        int64_t shape[2] = {N, 2};
        em_opts o = {.dtype = dt};
        em_tensor *b = em_zeros(2, shape, &o);
        em_tensor *col = em_select(b, 1, 0);
        cr_assert_not_null(col, "%s", em_last_error());
        cr_assert(!em_is_contiguous(col));
        em_release(EMT_OK(em_copy_(col, v)));
        em_release(v);
        s->t[i] = col;
        s->base[i - 2] = b;
    }
}

static void set_free(set *s)
{
    for (int i = 0; i < 2 + NSTATE; i++)
        em_release(s->t[i]);
    for (int i = 0; i < NSTATE; i++)
        em_release(s->base[i]);
    memset(s, 0, sizeof *s);
}

typedef enum { SGD, ADAM, RMSPROP } kind;

typedef struct config {
    kind k;
    const char *label;
    double h[6];   /* sgd: lr, momentum, dampening, wd; adam: lr, b1, b2, eps, wd; rmsprop:
                      lr, alpha, eps, wd, momentum */
    bool f[3];     /* sgd: nesterov, maximize; adam: amsgrad, maximize, decoupled; rmsprop:
                      centered, maximize */
} config;

static const config configs[] = {
    {SGD, "SGD", {0.1, 0, 0, 0}, {0}},
    {SGD, "SGD momentum", {0.1, 0.9, 0, 0}, {0}},
    {SGD, "SGD dampening, weight decay", {0.05, 0.8, 0.3, 0.01}, {0}},
    {SGD, "SGD nesterov, maximize", {0.1, 0.9, 0, 0.1}, {true, true}},
    {ADAM, "Adam", {1e-3, 0.9, 0.999, 1e-8, 0}, {0}},
    {ADAM, "Adam weight decay, amsgrad", {1e-2, 0.9, 0.99, 1e-8, 0.1}, {true}},
    {ADAM, "AdamW maximize", {1e-3, 0.9, 0.999, 1e-8, 1e-2}, {false, true, true}},
    {RMSPROP, "RMSprop", {1e-2, 0.99, 1e-8, 0, 0}, {0}},
    {RMSPROP, "RMSprop centered, momentum, weight decay", {1e-2, 0.9, 1e-8, 0.1, 0.9},
     {true, false}},
};

/* Step `step` (from 1) of config c on s; returns the op's result. */
static em_tensor *run(const config *c, set *s, int step)
{
    em_tensor **t = s->t;
    const double *h = c->h;
    switch (c->k) {
    case SGD:
        return em_sgd_step_(t[0], t[1], h[1] != 0 ? t[2] : NULL, h[0], h[1], h[2], h[3],
                            c->f[0], c->f[1], step == 1);
    case ADAM:
        return em_adam_step_(t[0], t[1], t[2], t[3], c->f[0] ? t[4] : NULL, h[0], h[1], h[2],
                             h[3], h[4], step, c->f[0], c->f[1], c->f[2]);
    default:
        return em_rmsprop_step_(t[0], t[1], t[2], h[4] > 0 ? t[3] : NULL, c->f[0] ? t[4] : NULL,
                                h[0], h[1], h[2], h[3], h[4], c->f[0], c->f[1]);
    }
}

/* The values of t as raw bytes of its dtype (contiguous copy on the host). */
static void *bytes(em_tensor *t, size_t *n)
{
    *n = (size_t)em_numel(t) * (em_dtype_of(t) == EM_F64 ? 8 : 4);
    void *b = malloc(*n);
    cr_assert_not_null(b);
    em_tensor *c = em_contiguous(t);
    cr_assert_eq(em_copy_to_host(c, b, *n), EM_OK, "%s", em_last_error());
    em_release(c);
    return b;
}

Test(updates, the_fused_kernel_gives_the_composites_bits)
{
    static const em_dtype dts[] = {EM_F32, EM_F64};
    for (size_t d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof configs / sizeof configs[0]; k++) {
            const config *c = &configs[k];
            set fused = {0}, comp = {0};
            set_make(&fused, dts[d], 100 + k, false);
            set_make(&comp, dts[d], 100 + k, true);
            for (int step = 1; step <= 3; step++) {
                em_release(EMT_OK(run(c, &fused, step)));
                em_release(EMT_OK(run(c, &comp, step)));
                for (int i = 0; i < 2 + NSTATE; i++) {
                    size_t n1, n2;
                    void *a = bytes(fused.t[i], &n1), *b = bytes(comp.t[i], &n2);
                    cr_assert(n1 == n2 && memcmp(a, b, n1) == 0,
                              "%s, %s, step %d: tensor %d differs between the fused kernel "
                              "and the composite",
                              c->label, em_dtype_name(dts[d]), step, i);
                    free(a);
                    free(b);
                }
            }
            set_free(&fused);
            set_free(&comp);
        }
}

Test(updates, an_update_bumps_the_version_of_everything_it_writes)
{
    for (int strided = 0; strided < 2; strided++) {
        set s = {0};
        set_make(&s, EM_F32, 7, strided);
        const config *c = &configs[5];   /* Adam with amsgrad: three state tensors */
        uint64_t v[2 + NSTATE];
        for (int i = 0; i < 2 + NSTATE; i++)
            v[i] = em_tensor_version(s.t[i]);
        em_tensor *r = EMT_OK(run(c, &s, 1));
        cr_assert_eq(r, s.t[0], "the result is the parameter, updated in place");
        em_release(r);
        const char *path = strided ? "composite" : "fused";
        cr_assert_gt(em_tensor_version(s.t[0]), v[0], "parameter (%s)", path);
        cr_assert_eq(em_tensor_version(s.t[1]), v[1], "the gradient is only read");
        for (int i = 2; i < 2 + NSTATE; i++)
            cr_assert_gt(em_tensor_version(s.t[i]), v[i], "state %d (%s)", i, path);
        set_free(&s);
    }
}

Test(updates, an_unused_state_slot_may_be_null_and_a_needed_one_may_not)
{
    set s = {0};
    set_make(&s, EM_F32, 3, false);
    uint64_t v2 = em_tensor_version(s.t[2]);
    em_release(EMT_OK(em_sgd_step_(s.t[0], s.t[1], NULL, 0.1, 0, 0, 0, false, false, false)));
    cr_assert_eq(em_tensor_version(s.t[2]), v2);
    cr_assert_null(em_sgd_step_(s.t[0], s.t[1], NULL, 0.1, 0.9, 0, 0, false, false, false));
    cr_assert(strstr(em_last_error(), "sgd_step: input 2 is NULL"), "%s", em_last_error());
    cr_assert_null(em_adam_step_(s.t[0], s.t[1], s.t[2], s.t[3], NULL, 1e-3, 0.9, 0.999, 1e-8,
                                 0, 1, true, false, false));
    cr_assert(strstr(em_last_error(), "adam_step: input 4 is NULL"), "%s", em_last_error());
    set_free(&s);
}

Test(updates, state_that_shares_memory_or_mismatches_the_parameter_is_refused)
{
    set s = {0};
    set_make(&s, EM_F32, 4, false);
    cr_assert_null(em_adam_step_(s.t[0], s.t[1], s.t[2], s.t[2], NULL, 1e-3, 0.9, 0.999, 1e-8, 0,
                                 1, false, false, false));
    cr_assert(strstr(em_last_error(), "shares memory"), "%s", em_last_error());
    int64_t n = 5;
    em_tensor *small = em_zeros(1, &n, NULL);
    cr_assert_null(em_sgd_step_(s.t[0], s.t[1], small, 0.1, 0.9, 0, 0, false, false, false));
    cr_assert(strstr(em_last_error(), "sgd_step: input 2 is [5]"), "%s", em_last_error());
    em_tensor *f64 = em_to_dtype(s.t[2], EM_F64);
    cr_assert_null(em_sgd_step_(s.t[0], s.t[1], f64, 0.1, 0.9, 0, 0, false, false, false));
    cr_assert(strstr(em_last_error(), "dtype float64"), "%s", em_last_error());
    em_release(small);
    em_release(f64);
    set_free(&s);
}

Test(updates, an_update_of_a_tensor_that_requires_grad_needs_grad_mode_off)
{
    set s = {0};
    set_make(&s, EM_F32, 5, false);
    cr_assert_eq(em_requires_grad_(s.t[0], true), EM_OK);
    cr_assert_null(em_sgd_step_(s.t[0], s.t[1], NULL, 0.1, 0, 0, 0, false, false, false));
    cr_assert(strstr(em_last_error(), "grad mode off"), "%s", em_last_error());
    bool prev = em_set_grad_enabled(false);
    em_release(EMT_OK(em_sgd_step_(s.t[0], s.t[1], NULL, 0.1, 0, 0, 0, false, false, false)));
    em_set_grad_enabled(prev);
    cr_assert(em_is_leaf(s.t[0]) && em_requires_grad(s.t[0]));
    set_free(&s);
}
