/* tests/data/test_dataloader.c - DataLoader semantics: order, shuffle determinism per seed and
 * epoch, drop_last and the partial last batch, reset and set_epoch, batch contents, the
 * prefetch thread (on and off give the same batches; errors cross the thread), devices and
 * scopes. */
#include <ember/plugin.h>   /* em_set_error, for the failing user dataset */

#include "helpers.h"

TestSuite(dataloader, .init = emd_setup, .fini = emd_teardown);

/* Sample i is (x = [i, -i], y = i): a batch says which samples it holds. */
static em_dataset *indexed(int64_t n)
{
    float *xv = malloc((size_t)n * 2 * sizeof *xv);
    for (int64_t i = 0; i < n; i++) {
        xv[2 * i] = (float)i;
        xv[2 * i + 1] = (float)-i;
    }
    em_tensor *x = EMT_OK(em_tensor_from_data(xv, EM_F32, EM_SHAPE(n, 2), NULL));
    free(xv);
    em_tensor *y = EMT_OK(em_arange(0, (double)n, 1, NULL));
    em_dataset *d = em_dataset_from_tensors(x, y);
    cr_assert_not_null(d, "%s", em_last_error());
    em_release(x);
    em_release(y);
    return d;
}

/* The same data through a user vtable (collated sample by sample). */
static int64_t user_len(void *ctx) { return *(int64_t *)ctx; }
static int user_get(void *ctx, int64_t i, em_tensor **x, em_tensor **y)
{
    (void)ctx;
    em_opts o = {.device = em_device_parse("cpu")};
    float v[2] = {(float)i, (float)-i};
    *x = em_tensor_from_data(v, EM_F32, EM_SHAPE(2), &o);
    *y = em_tensor_from_data(&i, EM_I64, EM_SCALAR, &o);
    return EM_OK;
}
static int64_t user_n = 23;
static const em_dataset_ops user_ops = {sizeof(em_dataset_ops), user_len, user_get, NULL};

/* One epoch: the sample indices batch by batch, checking that x matches y in every row. Returns
 * the number of batches; sizes[b] and idx[] receive the batch sizes and the indices. */
static int epoch(em_dataloader *dl, int64_t *sizes, int64_t *idx)
{
    int nb = 0;
    int64_t at = 0;
    em_tensor *x, *y;
    while (em_dataloader_next(dl, &x, &y)) {
        int64_t b = em_shape(x)[0];
        cr_assert_eq(em_ndim(x), 2);
        cr_assert_eq(em_shape(x)[1], 2);
        EMT_ASSERT_DTYPE(x, EM_F32);
        EMT_ASSERT_DTYPE(y, EM_I64);
        cr_assert_eq(em_ndim(y), 1);
        cr_assert_eq(em_shape(y)[0], b);
        double *xv = emt_values(x), *yv = emt_values(y);
        for (int64_t i = 0; i < b; i++) {
            cr_assert_eq(xv[2 * i], yv[i], "batch %d row %lld: x belongs to sample %g, y to %g",
                         nb, (long long)i, xv[2 * i], yv[i]);
            cr_assert_eq(xv[2 * i + 1], -yv[i]);
            if (idx)
                idx[at + i] = (int64_t)yv[i];
        }
        free(xv);
        free(yv);
        if (sizes)
            sizes[nb] = b;
        at += b;
        nb++;
        em_release(x);
        em_release(y);
    }
    cr_assert_eq(em_last_status(), EM_OK, "the epoch ended on an error: %s", em_last_error());
    return nb;
}

static void assert_permutation(const int64_t *idx, int64_t n)
{
    int64_t *seen = calloc((size_t)n, sizeof *seen);
    for (int64_t i = 0; i < n; i++) {
        cr_assert(idx[i] >= 0 && idx[i] < n);
        seen[idx[i]]++;
    }
    for (int64_t i = 0; i < n; i++)
        cr_assert_eq(seen[i], 1, "sample %lld was delivered %lld times", (long long)i,
                     (long long)seen[i]);
    free(seen);
}

Test(dataloader, without_shuffle_batches_come_in_order_with_a_partial_last_batch)
{
    em_dataset *d = indexed(10);
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    cr_assert_eq(em_dataloader_num_batches(dl), 3);
    int64_t sizes[8], idx[10];
    cr_assert_eq(epoch(dl, sizes, idx), 3);
    cr_assert_eq(sizes[0], 4);
    cr_assert_eq(sizes[1], 4);
    cr_assert_eq(sizes[2], 2, "the last batch holds the remainder");
    for (int i = 0; i < 10; i++)
        cr_assert_eq(idx[i], i);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(dataloader, drop_last_drops_the_partial_batch)
{
    em_dataset *d = indexed(10);
    em_dataloader *dl = em_dataloader_new(d, 4, true, 5);
    cr_assert_eq(em_dataloader_set_drop_last(dl, true), EM_OK);
    cr_assert_eq(em_dataloader_num_batches(dl), 2);
    int64_t sizes[8];
    cr_assert_eq(epoch(dl, sizes, NULL), 2);
    cr_assert_eq(sizes[0], 4);
    cr_assert_eq(sizes[1], 4);
    em_dataloader_free(dl);
    /* a batch larger than the dataset: one partial batch, or none with drop_last */
    dl = em_dataloader_new(d, 64, false, 0);
    cr_assert_eq(epoch(dl, sizes, NULL), 1);
    cr_assert_eq(sizes[0], 10);
    cr_assert_eq(em_dataloader_set_drop_last(dl, true), EM_OK);
    cr_assert_eq(epoch(dl, sizes, NULL), 0);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(dataloader, the_same_seed_gives_the_same_order_and_each_epoch_its_own)
{
    em_dataset *d = indexed(100);
    em_dataloader *a = em_dataloader_new(d, 16, true, 42);
    em_dataloader *b = em_dataloader_new(d, 16, true, 42);
    em_dataloader *c = em_dataloader_new(d, 16, true, 43);
    int64_t ia[3][100], ib[100], ic[100];
    for (int e = 0; e < 3; e++) {
        cr_assert_eq(em_dataloader_epoch(a), e);
        cr_assert_eq(epoch(a, NULL, ia[e]), 7);
        cr_assert_eq(epoch(b, NULL, ib), 7);
        cr_assert_eq(epoch(c, NULL, ic), 7);
        assert_permutation(ia[e], 100);
        cr_assert_arr_eq(ia[e], ib, sizeof ib, "epoch %d: same seed, same order", e);
        cr_assert(memcmp(ia[e], ic, sizeof ic) != 0, "epoch %d: another seed, another order", e);
    }
    cr_assert(memcmp(ia[0], ia[1], sizeof ia[0]) != 0, "epochs 0 and 1 differ");
    cr_assert(memcmp(ia[1], ia[2], sizeof ia[0]) != 0, "epochs 1 and 2 differ");
    bool shuffled = false;
    for (int i = 0; i < 100; i++)
        shuffled |= ia[0][i] != i;
    cr_assert(shuffled);
    em_dataloader_free(a);
    em_dataloader_free(b);
    em_dataloader_free(c);
    em_dataset_free(d);
}

Test(dataloader, reset_starts_the_next_epoch_and_is_a_no_op_before_the_first_batch)
{
    em_dataset *d = indexed(40);
    em_dataloader *ref = em_dataloader_new(d, 8, true, 9);
    int64_t e0[40], e1[40], e2[40];
    epoch(ref, NULL, e0);
    epoch(ref, NULL, e1);
    epoch(ref, NULL, e2);

    em_dataloader *dl = em_dataloader_new(d, 8, true, 9);
    int64_t got[40];
    cr_assert_eq(em_dataloader_reset(dl), EM_OK);   /* before iterating: still epoch 0 */
    cr_assert_eq(em_dataloader_epoch(dl), 0);
    epoch(dl, NULL, got);
    cr_assert_arr_eq(got, e0, sizeof got);
    cr_assert_eq(em_dataloader_reset(dl), EM_OK);   /* right after an epoch: no skip */
    cr_assert_eq(em_dataloader_epoch(dl), 1);
    /* take two batches of epoch 1, then abandon it */
    em_tensor *x, *y;
    for (int i = 0; i < 2; i++) {
        cr_assert(em_dataloader_next(dl, &x, &y));
        double *yv = emt_values(y);
        for (int k = 0; k < 8; k++)
            cr_assert_eq((int64_t)yv[k], e1[8 * i + k]);
        free(yv);
        em_release(x);
        em_release(y);
    }
    cr_assert_eq(em_dataloader_reset(dl), EM_OK);
    cr_assert_eq(em_dataloader_epoch(dl), 2);
    epoch(dl, NULL, got);
    cr_assert_arr_eq(got, e2, sizeof got, "after a reset mid-epoch, epoch 2 comes whole");
    /* set_epoch reproduces an epoch's order (resuming a run) */
    cr_assert_eq(em_dataloader_set_epoch(dl, 1), EM_OK);
    epoch(dl, NULL, got);
    cr_assert_arr_eq(got, e1, sizeof got);
    em_dataloader_free(dl);
    em_dataloader_free(ref);
    em_dataset_free(d);
}

Test(dataloader, batch_contents_match_get_item_of_a_split)
{
    em_dataset *d = indexed(30);
    em_dataset *p[2];
    cr_assert_eq(em_random_split(d, 2, (const double[]){0.7, 0.3}, 11, p), EM_OK);
    em_dataloader *dl = em_dataloader_new(p[0], 5, false, 0);
    int64_t idx[21];
    cr_assert_eq(epoch(dl, NULL, idx), 5);
    for (int64_t i = 0; i < 21; i++) {
        em_tensor *x, *y;
        cr_assert_eq(em_dataset_get(p[0], i, &x, &y), EM_OK);
        cr_assert_eq((int64_t)em_item(y), idx[i], "position %lld", (long long)i);
        em_release(x);
        em_release(y);
    }
    em_dataloader_free(dl);
    em_dataset_free(p[0]);
    em_dataset_free(p[1]);
    em_dataset_free(d);
}

/* Every batch of `epochs` epochs of two loaders, compared value by value. */
static void assert_same_batches(em_dataloader *a, em_dataloader *b, int epochs)
{
    for (int e = 0; e < epochs; e++) {
        em_tensor *xa, *ya, *xb, *yb;
        int nb = 0;
        for (;;) {
            bool ga = em_dataloader_next(a, &xa, &ya);
            bool gb = em_dataloader_next(b, &xb, &yb);
            cr_assert_eq(ga, gb, "epoch %d batch %d: one loader ended before the other", e, nb);
            if (!ga)
                break;
            int64_t n = em_numel(xa);
            cr_assert_eq(n, em_numel(xb));
            double *va = emt_values(xa), *vb = emt_values(xb);
            cr_assert_arr_eq(va, vb, (size_t)n * sizeof *va, "epoch %d batch %d", e, nb);
            free(va);
            free(vb);
            va = emt_values(ya);
            vb = emt_values(yb);
            cr_assert_arr_eq(va, vb, (size_t)em_numel(ya) * sizeof *va);
            free(va);
            free(vb);
            em_release(xa);
            em_release(ya);
            em_release(xb);
            em_release(yb);
            nb++;
        }
        cr_assert_eq(em_last_status(), EM_OK, "%s", em_last_error());
    }
}

Test(dataloader, prefetch_on_and_off_give_identical_batches)
{
    em_dataset *d = indexed(1000);
    em_dataloader *a = em_dataloader_new(d, 64, true, 7);
    em_dataloader *b = em_dataloader_new(d, 64, true, 7);
    cr_assert_eq(em_dataloader_set_prefetch(b, 0), EM_OK);
    em_dataloader *c = em_dataloader_new(d, 64, true, 7);
    cr_assert_eq(em_dataloader_set_prefetch(c, 5), EM_OK);
    assert_same_batches(a, b, 3);
    cr_assert_eq(em_dataloader_set_epoch(a, 0), EM_OK);
    assert_same_batches(a, c, 3);
    em_dataloader_free(a);
    em_dataloader_free(b);
    em_dataloader_free(c);
    em_dataset_free(d);
}

Test(dataloader, user_datasets_give_the_same_batches_as_the_store_with_and_without_prefetch)
{
    em_dataset *u = em_dataset_from_ops(&user_ops, &user_n);
    em_dataset *s = indexed(user_n);
    em_dataloader *a = em_dataloader_new(u, 4, true, 3);
    em_dataloader *b = em_dataloader_new(s, 4, true, 3);
    cr_assert_eq(em_dataloader_set_prefetch(b, 0), EM_OK);
    assert_same_batches(a, b, 2);
    em_dataloader_free(a);
    em_dataloader_free(b);
    em_dataset_free(u);
    em_dataset_free(s);
}

/* A user dataset whose get_item fails at one index, with a message of its own. */
static int failing_get(void *ctx, int64_t i, em_tensor **x, em_tensor **y)
{
    if (i == 13)
        return em_set_error(EM_ERR_IO, "custom: row 13 is corrupt");
    return user_get(ctx, i, x, y);
}
static const em_dataset_ops failing_ops = {sizeof(em_dataset_ops), user_len, failing_get, NULL};

Test(dataloader, an_error_in_get_item_reaches_the_caller_from_the_prefetch_thread)
{
    for (int prefetch = 0; prefetch <= 2; prefetch += 2) {
        EMT_CONTEXT("prefetch %d", prefetch);
        em_dataset *d = em_dataset_from_ops(&failing_ops, &user_n);
        em_dataloader *dl = em_dataloader_new(d, 5, false, 0);
        cr_assert_eq(em_dataloader_set_prefetch(dl, prefetch), EM_OK);
        em_tensor *x, *y;
        int ok = 0;
        while (em_dataloader_next(dl, &x, &y)) {
            ok++;
            em_release(x);
            em_release(y);
        }
        cr_assert_eq(ok, 2, "[%s] batches 0 and 1 are fine, batch 2 holds sample 13", emt_ctx());
        cr_assert_eq(em_last_status(), EM_ERR_IO);
        EMT_ASSERT_ERROR("custom: row 13 is corrupt");
        cr_assert_null(x);
        /* the loader moved on: the next epoch starts over and fails at the same place */
        cr_assert_eq(em_dataloader_epoch(dl), 1);
        em_dataloader_free(dl);
        em_dataset_free(d);
    }
    emt_no_context();
}

Test(dataloader, settings_cannot_change_in_the_middle_of_an_epoch)
{
    em_dataset *d = indexed(10);
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y));
    em_release(x);
    em_release(y);
    cr_assert_eq(em_dataloader_set_drop_last(dl, true), EM_ERR_STATE);
    EMT_ASSERT_ERROR("em_dataloader_set_drop_last: an epoch is in progress (batch 1 of 3)");
    cr_assert_eq(em_dataloader_set_prefetch(dl, 0), EM_ERR_STATE);
    cr_assert_eq(em_dataloader_reset(dl), EM_OK);
    cr_assert_eq(em_dataloader_set_drop_last(dl, true), EM_OK);
    cr_assert_eq(epoch(dl, NULL, NULL), 2);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(dataloader, bad_arguments_are_reported)
{
    em_dataset *d = indexed(4);
    cr_assert_null(em_dataloader_new(d, 0, false, 0));
    EMT_ASSERT_ERROR("em_dataloader_new: batch_size is 0; need at least 1");
    cr_assert_null(em_dataloader_new(NULL, 4, false, 0));
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    cr_assert_eq(em_dataloader_set_prefetch(dl, -1), EM_ERR_INVALID);
    em_tensor *x, *y;
    cr_assert_not(em_dataloader_next(dl, NULL, &y));
    cr_assert_lt(em_last_status(), 0);
    (void)x;
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(dataloader, the_loader_keeps_its_dataset_alive_and_frees_mid_epoch)
{
    em_dataset *d = indexed(500);
    em_dataloader *dl = em_dataloader_new(d, 10, true, 1);
    em_dataset_free(d);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);   /* joins a prefetch thread that may be waiting on a full ring */
}

Test(dataloader, batches_taken_inside_a_scope_are_released_by_the_scope)
{
    em_dataset *d = indexed(64);
    em_dataloader *dl = em_dataloader_new(d, 8, true, 1);
    em_device cpu = em_device_parse("cpu");
    size_t before = em_memory_allocated(cpu);
    em_tensor *x, *y;
    em_scope_begin();
    int n = 0;
    while (em_dataloader_next(dl, &x, &y))
        n++;
    em_scope_end();
    cr_assert_eq(n, 8);
    cr_assert_eq(em_memory_allocated(cpu), before, "every batch went back (%zu vs %zu bytes)",
                 em_memory_allocated(cpu), before);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(dataloader, unlabeled_datasets_give_no_y)
{
    em_tensor *x = emt_tensor(EM_F32, EM_SHAPE(5, 1), EMT_VALS(0, 1, 2, 3, 4));
    em_dataset *d = em_dataset_from_tensors(x, NULL);
    em_dataloader *dl = em_dataloader_new(d, 2, false, 0);
    em_tensor *bx, *by;
    int n = 0;
    while (em_dataloader_next(dl, &bx, &by)) {
        cr_assert_null(by);
        EMT_ASSERT_DTYPE(bx, EM_F32);
        em_release(bx);
        n++;
    }
    cr_assert_eq(n, 3);
    em_dataloader_free(dl);
    em_dataset_free(d);
    em_release(x);
}

Test(dataloader, batches_are_delivered_on_the_target_device)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    em_shutdown();
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
    em_device mock = em_device_parse("mock:1");
    cr_assert_geq(mock.index, 0, "%s", em_last_error());
    em_dataset *d = indexed(10);
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    cr_assert_eq(em_dataloader_set_device(dl, mock), EM_OK, "%s", em_last_error());
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(x), mock));
    cr_assert(em_device_eq(em_device_of(y), mock));
    float xv[8];
    int64_t yv[4];
    cr_assert_eq(em_copy_to_host(x, xv, sizeof xv), EM_OK);
    cr_assert_eq(em_copy_to_host(y, yv, sizeof yv), EM_OK);
    cr_assert_eq(xv[6], 3.0f);
    cr_assert_eq(yv[3], 3);
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    em_dataset_free(d);
}
