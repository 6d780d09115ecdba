/* train.c - trains y = softplus(x @ w + b) with the op from the ember-softplus plugin.
 *
 * Synthetic data from a known model, mean squared error, plain gradient descent written with
 * em_backward and em_sub_ under EM_NO_GRAD, 100 steps. Exits 0 when the loss fell at least
 * tenfold (the end-to-end test relies on that), 1 otherwise. Run it with the plugin's folder
 * on EMBER_PLUGIN_PATH.
 */
#include <stdio.h>

#include <ember/ember.h>

#include "softplus.h"

#define N 256
#define FEATURES 4
#define STEPS 100
#define LR 0.5

static int fail(const char *what)
{
    fprintf(stderr, "train_softplus: %s: %s\n", what, em_last_error());
    em_shutdown();
    return 1;
}

int main(void)
{
    if (em_init(NULL) != EM_OK) {
        fprintf(stderr, "train_softplus: em_init: %s\n", em_last_error());
        return 1;
    }
    em_manual_seed(7);

    /* targets from the model we want to recover: w = (1.5, -2, 0.5, 1), b = 0.3 */
    const float w_true[FEATURES] = {1.5f, -2.0f, 0.5f, 1.0f};
    const float b_true = 0.3f;
    em_tensor *x = em_randn(EM_SHAPE(N, FEATURES), NULL);
    em_tensor *wt = em_tensor_from_data(w_true, EM_F32, EM_SHAPE(FEATURES, 1), NULL);
    em_tensor *xw = em_matmul(x, wt);
    em_tensor *z = em_add_scalar(xw, b_true);
    em_tensor *target = softplus(z, 1.0, 20.0);
    em_release(wt);
    em_release(xw);
    em_release(z);
    if (!target)
        return fail("building the targets (is the softplus plugin on EMBER_PLUGIN_PATH?)");

    em_opts param = {.requires_grad = true};
    em_tensor *w = em_zeros(EM_SHAPE(FEATURES, 1), &param);
    em_tensor *b = em_zeros(EM_SHAPE(1), &param);
    double first = 0, last = 0;
    for (int step = 0; step < STEPS; step++) {
        em_scope_begin();   /* everything created in one step is released at its end */
        em_tensor *y = softplus(em_add(em_matmul(x, w), b), 1.0, 20.0);
        em_tensor *d = em_sub(y, target);
        em_tensor *loss = em_mean_all(em_mul(d, d));
        if (!loss || em_backward(loss, NULL, false) != EM_OK) {
            em_scope_end();
            return fail("forward/backward");
        }
        if (step == 0)
            printf("grad_fn of y: %s\n", em_grad_fn_name(y));
        last = em_item(loss);
        if (step == 0)
            first = last;
        EM_NO_GRAD {
            em_sub_(w, em_mul_scalar(em_grad(w), LR));
            em_sub_(b, em_mul_scalar(em_grad(b), LR));
        }
        em_grad_clear(w);
        em_grad_clear(b);
        if (step % 20 == 0 || step == STEPS - 1)
            printf("step %3d  loss %.6f\n", step, last);
        em_scope_end();
    }
    em_print(w);
    em_print(b);
    bool ok = last * 10 <= first;
    printf("loss %.6f -> %.6f: %s\n", first, last, ok ? "fell at least tenfold" : "did not fall tenfold");
    em_release(w);
    em_release(b);
    em_release(x);
    em_release(target);
    em_shutdown();
    return ok ? 0 : 1;
}
