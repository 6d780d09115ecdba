/* tests/data/stress_loader.c - the DataLoader's prefetch thread under load: many short epochs,
 * a ring of one batch (the worker waits on a full ring), resets and frees in the middle of an
 * epoch, a user get_item that runs ops on the worker while the caller computes, and an error
 * crossing the thread.
 *
 * A plain program rather than a Criterion suite so that it also runs under ThreadSanitizer
 * (Criterion cannot start under TSan: Snaipe/Criterion#274). Exits non-zero on the first
 * failed check. */
#include <stdio.h>
#include <stdlib.h>

#include <ember/ember.h>
#include <ember/plugin.h>

#include "../core/plain_check.h"

static em_device cpu;

/* Sample i: x = [i, i, i, i] * 0.5 built with ops on the calling (worker) thread; y = i. */
static int64_t ops_len(void *ctx) { return *(int64_t *)ctx; }
static int ops_get(void *ctx, int64_t i, em_tensor **x, em_tensor **y)
{
    (void)ctx;
    if (i == 777)
        return em_set_error(EM_ERR_IO, "stress: sample 777 fails");
    em_opts o = {.device = cpu};
    em_tensor *a = em_full(EM_SHAPE(4), (double)i, &o);
    em_tensor *h = em_scalar(0.5, &o);
    *x = em_mul(a, h);
    em_release(a);
    em_release(h);
    *y = em_tensor_from_data(&i, EM_I64, EM_SCALAR, &o);
    return *x && *y ? EM_OK : em_last_status();
}

/* One epoch; checks that x and y agree; returns the number of samples seen. */
static int64_t run_epoch(em_dataloader *dl, bool user)
{
    int64_t seen = 0;
    em_tensor *x, *y;
    while (em_dataloader_next(dl, &x, &y)) {
        const float *xv = em_data_ptr(x);
        const int64_t *yv = em_data_ptr(y);
        int64_t b = em_shape(y)[0];
        for (int64_t i = 0; i < b; i++)
            CHECK(xv[i * (user ? 4 : 2)] == (float)yv[i] * (user ? 0.5f : 1.0f),
                  "row %lld: x %g, y %lld", (long long)i, (double)xv[i * 4], (long long)yv[i]);
        seen += b;
        em_release(x);
        em_release(y);
    }
    return seen;
}

int main(void)
{
    CHECK(em_init(NULL) == EM_OK, "em_init");
    cpu = em_device_parse("cpu");
    /* Batches go to the default device and the checks read them in host memory: pin the CPU
     * whatever EMBER_BACKEND says. */
    CHECK(em_set_default_device(cpu) == EM_OK, "pin the CPU");
    em_opts o = {.device = cpu};

    /* a store: x (n, 2) = [i, -i], y = i */
    int64_t n = 5000;
    float *xv = malloc((size_t)n * 2 * sizeof *xv);
    for (int64_t i = 0; i < n; i++) {
        xv[2 * i] = (float)i;
        xv[2 * i + 1] = (float)-i;
    }
    em_tensor *x = em_tensor_from_data(xv, EM_F32, EM_SHAPE(n, 2), &o);
    em_tensor *y = em_arange(0, (double)n, 1, &(em_opts){.device = cpu});
    free(xv);
    em_dataset *store = em_dataset_from_tensors(x, y);
    em_release(x);
    em_release(y);
    CHECK(store, "from_tensors");

    for (int prefetch = 1; prefetch <= 3; prefetch++) {
        em_dataloader *dl = em_dataloader_new(store, 7, true, (uint64_t)prefetch);
        CHECK(em_dataloader_set_prefetch(dl, prefetch) == EM_OK, "set_prefetch");
        for (int e = 0; e < 20; e++)
            CHECK(run_epoch(dl, false) == n, "epoch %d", e);
        /* reset and free in the middle of an epoch, with the worker blocked on a full ring */
        em_tensor *bx, *by;
        for (int k = 0; k < 10; k++) {
            CHECK(em_dataloader_next(dl, &bx, &by), "next");
            em_release(bx);
            em_release(by);
            CHECK(em_dataloader_reset(dl) == EM_OK, "reset");
        }
        CHECK(em_dataloader_next(dl, &bx, &by), "next");
        em_release(bx);
        em_release(by);
        em_dataloader_free(dl);
    }

    /* a user dataset whose get_item runs ops on the worker while this thread multiplies */
    int64_t un = 700;
    em_dataset *user = em_dataset_from_ops(
        &(em_dataset_ops){sizeof(em_dataset_ops), ops_len, ops_get, NULL}, &un);
    CHECK(user, "from_ops");
    em_tensor *a = em_randn(EM_SHAPE(128, 128), &o);
    em_dataloader *dl = em_dataloader_new(user, 16, true, 5);
    for (int e = 0; e < 5; e++) {
        int64_t seen = 0;
        em_tensor *bx, *by;
        while (em_dataloader_next(dl, &bx, &by)) {
            em_tensor *m = em_matmul(a, a);   /* compute on this thread meanwhile */
            CHECK(m, "matmul");
            em_release(m);
            const float *p = em_data_ptr(bx);
            const int64_t *q = em_data_ptr(by);
            for (int64_t i = 0; i < em_shape(by)[0]; i++)
                CHECK(p[4 * i] == 0.5f * (float)q[i], "user row %lld", (long long)i);
            seen += em_shape(by)[0];
            em_release(bx);
            em_release(by);
        }
        CHECK(em_last_status() == EM_OK && seen == un, "user epoch %d: %lld", e, (long long)seen);
    }
    em_dataloader_free(dl);
    em_release(a);

    /* an error on the worker reaches this thread */
    un = 1000;
    dl = em_dataloader_new(user, 10, false, 0);
    int64_t seen = 0;
    em_tensor *bx, *by;
    while (em_dataloader_next(dl, &bx, &by)) {
        seen += em_shape(by)[0];
        em_release(bx);
        em_release(by);
    }
    CHECK(em_last_status() == EM_ERR_IO && seen == 770, "error after %lld samples", (long long)seen);
    em_dataloader_free(dl);

    em_dataset_free(user);
    em_dataset_free(store);
    em_shutdown();
    printf("stress_loader: ok\n");
    return 0;
}
