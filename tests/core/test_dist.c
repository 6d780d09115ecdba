/* tests/core/test_dist.c - the process group of one process, post-accumulate-grad hooks,
 * DataLoader shards and DistributedDataParallel without communication. The collectives across
 * processes are tested under mpirun by the 'dist' suite (tests/dist/). */
#include "helpers.h"

TestSuite(dist, .init = emt_setup, .fini = emt_teardown);

Test(dist, a_single_process_is_rank_0_of_a_group_of_1)
{
    cr_assert_not(em_dist_is_active());
    cr_assert_eq(em_dist_rank(), 0);
    cr_assert_eq(em_dist_size(), 1);
    cr_assert_eq(em_dist_local_rank(), 0);
    cr_assert_null(em_dist_backend());
}

Test(dist, collectives_of_one_process_are_the_identity)
{
    em_tensor *t = EMT_OK(em_tensor_from_data(EMT_VALS(1, -2, 3), EM_F64, 1,
                                              (int64_t[]){3}, &(em_opts){.dtype = EM_F32}));
    cr_assert_eq(em_dist_all_reduce(t, EM_REDUCE_SUM), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_dist_all_reduce(t, EM_REDUCE_AVG), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_dist_all_reduce(t, EM_REDUCE_MAX), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_dist_broadcast(t, 0), EM_OK, "%s", em_last_error());
    EMT_ASSERT_LIST(t, 0, 1, -2, 3);
    em_tensor *g = EMT_OK(em_dist_all_gather(t));
    EMT_ASSERT_LIST(g, 0, 1, -2, 3);
    em_tensor *s = EMT_OK(em_dist_reduce_scatter(t, EM_REDUCE_SUM));
    EMT_ASSERT_LIST(s, 0, 1, -2, 3);
    cr_assert_eq(em_dist_barrier(), EM_OK);
    em_dist_work *w = em_dist_all_reduce_start(t, EM_REDUCE_SUM);
    cr_assert_not_null(w);
    cr_assert_eq(em_dist_wait(w), EM_OK);
    em_release(s);
    em_release(g);
    em_release(t);
}

Test(dist, collectives_refuse_bad_arguments_by_name)
{
    em_tensor *i = EMT_OK(em_tensor_from_data(EMT_VALS(1, 2), EM_F64, 1, (int64_t[]){2},
                                              &(em_opts){.dtype = EM_I64}));
    cr_assert_lt(em_dist_all_reduce(i, EM_REDUCE_AVG), 0);
    EMT_ASSERT_ERROR("all_reduce: average needs a floating dtype, got int64");
    cr_assert_lt(em_dist_broadcast(i, 1), 0);
    EMT_ASSERT_ERROR("broadcast: root 1 is not a rank (size 1)");
    cr_assert_lt(em_dist_all_reduce(NULL, EM_REDUCE_SUM), 0);
    em_release(i);
}

static int hook_calls;
static double hook_seen;
static void count_hook(em_tensor *t, void *ctx)
{
    (void)ctx;
    hook_calls++;
    hook_seen = em_item(em_grad(t));
}

Test(dist, a_post_accumulate_grad_hook_sees_the_accumulated_grad)
{
    em_scope_begin();
    em_tensor *w = EMT_OK(em_full(0, NULL, 3.0, &(em_opts){.requires_grad = true}));
    cr_assert_eq(em_register_post_accumulate_grad_hook(w, count_hook, NULL), EM_OK);
    for (int k = 1; k <= 2; k++) {
        em_tensor *y = em_mul(w, w);   /* dy/dw = 2w = 6, accumulated over two backwards */
        cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
        cr_assert_eq(hook_calls, k);
        cr_assert_float_eq(hook_seen, 6.0 * k, 1e-9);
    }
    cr_assert_eq(em_remove_post_accumulate_grad_hook(w, count_hook, NULL), EM_OK);
    em_tensor *y = em_mul(w, w);
    em_backward(y, NULL, false);
    cr_assert_eq(hook_calls, 2, "a removed hook ran");
    em_tensor *nl = em_mul_scalar(w, 2);
    cr_assert_lt(em_register_post_accumulate_grad_hook(nl, count_hook, NULL), 0);
    EMT_ASSERT_ERROR("must be a leaf");
    em_scope_end();
}

/* The sample ids of one epoch of a loader over 0..n-1 sharded as (rank, world, mode). */
static int64_t shard_ids(int64_t n, int rank, int world, em_shard_mode mode, int64_t *ids)
{
    em_tensor *x = EMT_OK(em_arange(0, (double)n, 1, &(em_opts){.dtype = EM_I64}));
    em_tensor *x2 = em_reshape(x, 2, (int64_t[]){n, 1});
    em_dataset *d = em_dataset_from_tensors(x2, x);
    em_dataloader *dl = em_dataloader_new(d, 3, true, 11);
    cr_assert_not_null(dl, "%s", em_last_error());
    if (world > 1)
        cr_assert_eq(em_dataloader_set_shard(dl, rank, world, mode), EM_OK, "%s",
                     em_last_error());
    int64_t k = 0;
    em_tensor *bx, *by;
    while (em_dataloader_next(dl, &bx, &by)) {
        int64_t b = em_shape(by)[0];
        em_copy_to_host(by, ids + k, (size_t)b * sizeof *ids);
        k += b;
        em_release(bx);
        em_release(by);
    }
    cr_assert_eq(em_dataloader_num_batches(dl), (k + 2) / 3);
    em_dataloader_free(dl);
    em_dataset_free(d);
    em_release(x2);
    em_release(x);
    return k;
}

Test(dist, rank_r_of_a_shard_takes_positions_r_r_plus_n_of_the_same_shuffle)
{
    int64_t all[10], part[10];
    cr_assert_eq(shard_ids(10, 0, 1, EM_SHARD_PAD, all), 10);
    const int64_t want_uneven[] = {3, 3, 2, 2};
    for (int r = 0; r < 4; r++) {
        /* pad: ceil(10 / 4) = 3 each, positions 8 + r wrap to 0 and 1 */
        int64_t k = shard_ids(10, r, 4, EM_SHARD_PAD, part);
        cr_assert_eq(k, 3, "rank %d took %lld samples", r, (long long)k);
        for (int64_t j = 0; j < k; j++)
            cr_assert_eq(part[j], all[(r + 4 * j) % 10], "rank %d position %lld", r,
                         (long long)j);
        k = shard_ids(10, r, 4, EM_SHARD_DROP, part);
        cr_assert_eq(k, 2);
        for (int64_t j = 0; j < k; j++)
            cr_assert_eq(part[j], all[r + 4 * j]);
        k = shard_ids(10, r, 4, EM_SHARD_UNEVEN, part);
        cr_assert_eq(k, want_uneven[r]);
        for (int64_t j = 0; j < k; j++)
            cr_assert_eq(part[j], all[r + 4 * j]);
    }
    em_tensor *z = EMT_OK(em_zeros(1, (int64_t[]){4}, NULL));
    em_dataset *d = em_dataset_from_tensors(z, NULL);
    em_dataloader *dl = em_dataloader_new(d, 1, false, 0);
    cr_assert_not_null(dl, "%s", em_last_error());
    cr_assert_lt(em_dataloader_set_shard(dl, 2, 2, EM_SHARD_PAD), 0);
    EMT_ASSERT_ERROR("rank 2 of world 2 is not a rank");
    em_dataloader_free(dl);
    em_dataset_free(d);
    em_release(z);
}

Test(dist, ddp_of_one_process_keeps_gradients_and_refuses_a_parameter_without_one)
{
    em_scope_begin();
    em_module *m = em_module_new("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 40});
    cr_assert_not_null(d, "%s", em_last_error());
    cr_assert_eq(em_ddp_bucket_count(d), 3, "buckets of <= 40 bytes: [2.bias 2.weight], "
                                            "[0.bias], [0.weight]");
    cr_assert_lt(em_ddp_finish(d), 0, "finish without a backward must refuse");
    EMT_ASSERT_ERROR("4 parameters '0.weight', '0.bias', '2.weight', '2.bias' received no "
                     "gradient in this step");
    em_tensor *x = EMT_OK(em_ones(2, (int64_t[]){5, 3}, NULL));
    em_tensor *y = em_sum_all(em_forward(m, x));
    cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
    double before = em_item(em_sum_all(em_grad(em_module_get(m, "2.bias"))));
    cr_assert_eq(em_ddp_finish(d), EM_OK, "%s", em_last_error());
    double after = em_item(em_sum_all(em_grad(em_module_get(m, "2.bias"))));
    cr_assert_float_eq(after, before, 1e-6, "the average over one rank is the gradient");
    cr_assert_eq(em_ddp_set_sync(d, false), EM_OK);
    cr_assert_eq(em_ddp_finish(d), EM_OK, "no_sync: finish is a no-op");
    em_ddp_free(d);
    em_scope_end();
    em_module_free(m);
}

/* A step whose loss uses only the first layer's weight: y = sum(w * w), dy/dw = 2w. */
static void backward_through_first_weight(em_module *m)
{
    em_tensor *w = em_module_get(m, "0.weight");
    cr_assert_eq(em_backward(em_sum_all(em_mul(w, w)), NULL, false), EM_OK, "%s",
                 em_last_error());
}

static double grad_sum(em_module *m, const char *name)
{
    em_tensor *g = em_grad(em_module_get(m, name));
    cr_assert_not_null(g, "%s has no gradient", name);
    return em_item(em_sum_all(g));
}

Test(dist, ddp_refuses_a_parameter_the_loss_did_not_use_and_says_how_to_allow_it)
{
    em_scope_begin();
    em_module *m = em_module_new("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 40});
    cr_assert_not_null(d, "%s", em_last_error());
    double want = 2 * em_item(em_sum_all(em_module_get(m, "0.weight")));
    backward_through_first_weight(m);
    cr_assert_lt(em_ddp_finish(d), 0);
    EMT_ASSERT_ERROR("DistributedDataParallel: 3 parameters '0.bias', '2.weight', '2.bias' "
                     "received no gradient in this step (took no part in the loss); set "
                     "find_unused_parameters (em_ddp_opts, or [train] find_unused_parameters "
                     "= true) to count the missing gradients as zeros");
    cr_assert_float_eq(grad_sum(m, "0.weight"), want, 1e-5, "a refused step keeps the grads");
    em_ddp_free(d);
    em_scope_end();
    em_module_free(m);
}

Test(dist, ddp_with_find_unused_parameters_leaves_a_parameter_no_rank_used_without_grad)
{
    em_scope_begin();
    em_module *m = em_module_new("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 40,
                                            .find_unused_parameters = true});
    cr_assert_not_null(d, "%s", em_last_error());
    double want = 2 * em_item(em_sum_all(em_module_get(m, "0.weight")));
    for (int step = 0; step < 2; step++) {   /* the second step starts from a clean slate */
        for (int i = 0; i < em_module_param_count(m); i++)
            em_grad_clear(em_module_param(m, i));
        backward_through_first_weight(m);
        cr_assert_eq(em_ddp_finish(d), EM_OK, "%s", em_last_error());
        cr_assert_float_eq(grad_sum(m, "0.weight"), want, 1e-5, "step %d", step);
        cr_assert_null(em_grad(em_module_get(m, "0.bias")), "no rank used 0.bias");
        cr_assert_null(em_grad(em_module_get(m, "2.weight")), "no rank used 2.weight");
    }
    em_ddp_free(d);
    em_scope_end();
    em_module_free(m);
}

Test(dist, ddp_counts_a_gradient_accumulated_under_no_sync_as_used)
{
    em_scope_begin();
    em_module *m = em_module_new("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 40});
    cr_assert_not_null(d, "%s", em_last_error());
    cr_assert_eq(em_ddp_set_sync(d, false), EM_OK);
    em_tensor *x = EMT_OK(em_ones(2, (int64_t[]){5, 3}, NULL));
    cr_assert_eq(em_backward(em_sum_all(em_forward(m, x)), NULL, false), EM_OK, "%s",
                 em_last_error());
    double bias = grad_sum(m, "2.bias");
    cr_assert_eq(em_ddp_set_sync(d, true), EM_OK);
    backward_through_first_weight(m);   /* the synchronised step uses 0.weight only */
    cr_assert_eq(em_ddp_finish(d), EM_OK, "%s", em_last_error());
    cr_assert_float_eq(grad_sum(m, "2.bias"), bias, 1e-5, "the accumulated grad is averaged");
    em_ddp_free(d);
    em_scope_end();
    em_module_free(m);
}

Test(dist, a_requested_communicator_that_is_not_loaded_fails_init_by_name)
{
    em_shutdown();
    setenv("EMBER_DIST", "carrier-pigeon", 1);
    int rc = em_init(NULL);
    unsetenv("EMBER_DIST");
    cr_assert_lt(rc, 0, "em_init accepted an unknown communicator");
    EMT_ASSERT_ERROR("communicator 'carrier-pigeon' (from env EMBER_DIST) is not loaded");
    cr_assert_eq(em_init(NULL), EM_OK, "%s", em_last_error());
}

/* x's values as a [1, 3] input to Linear(3, 2): d sum(Linear(x)) / d weight is x in each row. */
static em_tensor *first_weight_grad_of(const em_ddp_opts *o, const float *x)
{
    em_module *m = em_module_new("Sequential(Linear(3, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, o);
    cr_assert_not_null(d, "%s", em_last_error());
    em_tensor *in = EMT_OK(em_tensor_from_data(x, EM_F32, 2, (int64_t[]){1, 3}, NULL));
    cr_assert_eq(em_backward(em_sum_all(em_forward(m, in)), NULL, false), EM_OK, "%s",
                 em_last_error());
    cr_assert_eq(em_ddp_finish(d), EM_OK, "%s", em_last_error());
    em_tensor *g = em_grad(em_module_get(m, "0.weight"));
    em_retain(g);
    em_ddp_free(d);
    em_module_free(m);
    return g;
}

Test(dist, ddp_with_bf16_compression_rounds_gradients_to_nearest_even_bfloat16)
{
    em_scope_begin();
    /* 1 + 2^-8 and 1 + 3 * 2^-8 lie halfway between two bfloat16 values: to nearest even they
     * become 1 and 1 + 2^-6 (rounding half up would give 1 + 2^-7 for the first, truncation
     * 1 + 2^-7 for the second); 0.1f = 0x3dcccccd rounds up to 0x3dcd. */
    const float x[3] = {1.00390625f, 1.01171875f, 0.1f};
    em_tensor *g = first_weight_grad_of(&(em_ddp_opts){.compress = EM_BF16}, x);
    EMT_ASSERT_LIST(g, 0, 1.0, 1.015625, 0.10009765625, 1.0, 1.015625, 0.10009765625);
    em_release(g);
    em_tensor *plain = first_weight_grad_of(&(em_ddp_opts){.compress = EM_F32}, x);
    EMT_ASSERT_LIST(plain, 0, 1.00390625, 1.01171875, 0.1f, 1.00390625, 1.01171875, 0.1f);
    em_release(plain);
    em_scope_end();
}

Test(dist, ddp_compression_refuses_other_dtypes_and_non_float32_parameters_by_name)
{
    em_module *m = em_module_new("Sequential(Linear(3, 2), Linear(2, 2, dtype=\"float64\"))");
    cr_assert_not_null(m, "%s", em_last_error());
    cr_assert_null(em_ddp_new(m, &(em_ddp_opts){.compress = EM_F16}));
    EMT_ASSERT_ERROR("em_ddp_new: compress must be 0/float32 (none) or bfloat16, got float16");
    cr_assert_null(em_ddp_new(m, &(em_ddp_opts){.compress = EM_BF16}));
    EMT_ASSERT_ERROR("em_ddp_new: compress = bfloat16 needs float32 gradients; parameter "
                     "'1.weight' is float64");
    em_ddp *d = em_ddp_new(m, NULL);
    cr_assert_not_null(d, "without compression any float dtype is fine: %s", em_last_error());
    em_ddp_free(d);
    em_module_free(m);
}

/* ---- a communicator with a device of its own (as NCCL's GPU) ------------------------------ */

/* The devcomm test plugin (tests/plugins/devcomm): rank 0 of 2 whose buffers must be on mock:1;
 * it leaves them as they are, so an average is half the rank's own value. */
static void devcomm_setup(void)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR ":" DEVCOMM_PLUGIN_DIR, 1);
    setenv("EMBER_DIST", "devcomm", 1);
    emt_setup();
    cr_assert_str_eq(em_dist_backend(), "devcomm");
    cr_assert_eq(em_dist_size(), 2);
}

TestSuite(devcomm, .init = devcomm_setup, .fini = emt_teardown);

static em_tensor *on(const char *dev, em_tensor *t)
{
    em_tensor *r = EMT_OK(em_to(t, em_device_parse(dev)));
    em_release(t);
    return r;
}

/* Host tensors and another device's go to the communicator's device and come back: without
 * the staging, devcomm refuses a buffer on cpu or mock:0. The mock devices have no mul
 * kernel, so an average is asked of the CPU tensor only (the core divides the caller's
 * tensor after the sum is back). */
Test(devcomm, tensors_off_the_communicators_device_are_staged_there_and_back)
{
    const char *devs[] = {"cpu", "mock:0", "mock:1"};
    for (int k = 0; k < 3; k++) {
        EMT_CONTEXT("%s", devs[k]);
        bool cpu = k == 0;
        em_tensor *t = on(devs[k], EMT_OK(em_tensor_from_data(
                                       EMT_VALS(2, -4, 6, 8), EM_F64, 1, (int64_t[]){4},
                                       &(em_opts){.dtype = EM_F32})));
        em_reduce_op op = cpu ? EM_REDUCE_AVG : EM_REDUCE_SUM;
        cr_assert_eq(em_dist_all_reduce(t, op), EM_OK, "%s: %s", devs[k], em_last_error());
        cr_assert_eq(em_dist_broadcast(t, 0), EM_OK, "%s: %s", devs[k], em_last_error());
        /* a strided view is staged too, and written back through the view */
        em_tensor *v = EMT_OK(em_slice(t, 0, 0, 4, 2));
        cr_assert_eq(em_dist_all_reduce(v, op), EM_OK, "%s: %s", devs[k], em_last_error());
        em_tensor *c = EMT_OK(em_to(t, em_device_parse("cpu")));
        if (cpu)
            EMT_ASSERT_LIST(c, 0, 0.5, -2, 1.5, 4);
        else
            EMT_ASSERT_LIST(c, 0, 2, -4, 6, 8);
        em_release(v);
        em_release(c);
        em_release(t);
    }
}

/* DistributedDataParallel keeps its buckets in host memory: with a device-bound communicator
 * they are staged like any tensor, and the gradients come back averaged. */
Test(devcomm, ddp_averages_gradients_through_a_device_bound_communicator)
{
    em_scope_begin();
    em_module *m = em_module_new("Sequential(Linear(3, 4), ReLU(), Linear(4, 2))");
    cr_assert_not_null(m, "%s", em_last_error());
    em_ddp *d = em_ddp_new(m, &(em_ddp_opts){.bucket_bytes = 40});
    cr_assert_not_null(d, "%s", em_last_error());
    em_tensor *x = EMT_OK(em_ones(2, (int64_t[]){5, 3}, NULL));
    cr_assert_eq(em_backward(em_sum_all(em_forward(m, x)), NULL, false), EM_OK, "%s",
                 em_last_error());
    double before = em_item(em_sum_all(em_grad(em_module_get(m, "2.bias"))));
    cr_assert_eq(em_ddp_finish(d), EM_OK, "%s", em_last_error());
    double after = em_item(em_sum_all(em_grad(em_module_get(m, "2.bias"))));
    cr_assert_float_eq(after, before / 2, 1e-6, "rank 0's gradient over 2 ranks, the other "
                                                "contributing zeros");
    em_ddp_free(d);
    em_scope_end();
    em_module_free(m);
}
