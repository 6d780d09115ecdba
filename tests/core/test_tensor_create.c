/* tests/core/test_tensor_create.c - creating tensors and their lifetime through the public
 * API, following the tensor section of the PyTorch basics tutorial: from data and blobs,
 * rand/ones/zeros and the Philox stream, arange/full/scalar/item, printing, then scopes and the
 * allocator's memory stats. Detailed printing is test_format.c's.
 */
#include "helpers.h"

#include "ember/numeric.h"   /* the Philox stream every backend must reproduce */

TestSuite(tensor, .init = emt_setup, .fini = emt_teardown);

/* The tutorial's my_arr = np.array([[1, 2, 3], [4, 5, 6]]) (int64). */
#define MY_ARR_INIT {{1, 2, 3}, {4, 5, 6}}

static em_device default_dev(void) { return em_default_device(); }

/* ---- torch.tensor / torch.from_numpy -------------------------------------------------------- */

Test(tensor, from_data_copies_the_source_array)
{
    int64_t my_arr[2][3] = MY_ARR_INIT;
    em_tensor *t1 = EMT_OK(em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), NULL));
    my_arr[0][0] = 999;
    EMT_ASSERT_DTYPE(t1, EM_I64);
    EMT_ASSERT_SHAPE(t1, EM_SHAPE(2, 3));
    EMT_ASSERT_STRIDES(t1, EM_SHAPE(3, 1));
    cr_assert_eq(em_numel(t1), 6);
    cr_assert(em_is_contiguous(t1));
    EMT_ASSERT_LIST(t1, 0, 1, 2, 3, 4, 5, 6);
    int64_t raw[6];
    cr_assert_eq(em_copy_to_host(t1, raw, sizeof raw), EM_OK, "%s", em_last_error());
    cr_assert_eq(raw[0], 1, "t1[0][0] is %lld after my_arr changed", (long long)raw[0]);
    em_release(t1);
}

static void count_free(void *ctx) { ++*(int *)ctx; }

Test(tensor, from_blob_shares_the_source_array_both_ways)
{
    int64_t my_arr[2][3] = MY_ARR_INIT;
    int freed = 0;
    em_tensor *t2 = EMT_OK(em_tensor_from_blob(my_arr, EM_I64, EM_SHAPE(2, 3), count_free, &freed));
    EMT_ASSERT_DTYPE(t2, EM_I64);
    EMT_ASSERT_SHAPE(t2, EM_SHAPE(2, 3));
    cr_assert_eq(em_data_ptr(t2), (void *)my_arr, "em_data_ptr must be the caller's memory");
    my_arr[0][0] = 999;
    EMT_ASSERT_LIST(t2, 0, 999, 2, 3, 4, 5, 6);
    /* and the other way: an in-place op on the tensor writes the caller's array */
    em_tensor *r = EMT_OK(em_add_scalar_(t2, 1));
    cr_assert_eq(r, t2);
    em_release(r);
    cr_assert_eq(my_arr[0][0], 1000);
    cr_assert_eq(my_arr[1][2], 7);
    cr_assert_eq(freed, 0, "free_fn ran while the tensor is alive");
    em_release(t2);
    cr_assert_eq(freed, 1, "free_fn ran %d times after the last release, expected once", freed);
}

Test(tensor, from_blob_free_fn_runs_once_when_the_last_view_dies)
{
    int64_t my_arr[2][3] = MY_ARR_INIT;
    int freed = 0;
    em_tensor *t = EMT_OK(em_tensor_from_blob(my_arr, EM_I64, EM_SHAPE(2, 3), count_free, &freed));
    em_tensor *v = EMT_OK(em_transpose(t, 0, 1));
    em_tensor *row = EMT_OK(em_select(t, 0, 1));
    em_retain(t);
    em_release(t);
    em_release(t);
    cr_assert_eq(freed, 0, "free_fn ran while two views still use the storage");
    EMT_ASSERT_LIST(v, 0, 1, 4, 2, 5, 3, 6);
    em_release(v);
    cr_assert_eq(freed, 0, "free_fn ran while a view still uses the storage");
    EMT_ASSERT_LIST(row, 0, 4, 5, 6);
    em_release(row);
    cr_assert_eq(freed, 1, "free_fn ran %d times, expected exactly once", freed);
    em_shutdown();
    cr_assert_eq(freed, 1, "free_fn ran again at shutdown");
}

Test(tensor, from_blob_accepts_a_null_free_fn)
{
    float data[4] = {1, 2, 3, 4};
    em_tensor *t = EMT_OK(em_tensor_from_blob(data, EM_F32, EM_SHAPE(4), NULL, NULL));
    data[3] = 40;
    EMT_ASSERT_LIST(t, 0, 1, 2, 3, 40);
    em_release(t);
}

Test(tensor, from_data_dtype_override_casts_the_values)
{
    const int64_t my_list[2][3] = MY_ARR_INIT;
    em_tensor *t1 = EMT_OK(em_tensor_from_data(my_list, EM_I64, EM_SHAPE(2, 3),
                                               &(em_opts){.dtype = EM_F32}));
    EMT_ASSERT_DTYPE(t1, EM_F32);
    EMT_ASSERT_SHAPE(t1, EM_SHAPE(2, 3));
    float raw[6];
    cr_assert_eq(em_copy_to_host(t1, raw, sizeof raw), EM_OK, "%s", em_last_error());
    for (int i = 0; i < 6; i++)
        cr_assert_eq(raw[i], (float)(i + 1), "raw[%d] = %g", i, (double)raw[i]);
    em_release(t1);

    /* opts with the dtype left unset keep the source dtype */
    const int32_t small[2] = {7, -8};
    em_tensor *t2 = EMT_OK(em_tensor_from_data(small, EM_I32, EM_SHAPE(2), &(em_opts){0}));
    EMT_ASSERT_DTYPE(t2, EM_I32);
    EMT_ASSERT_LIST(t2, 0, 7, -8);
    em_release(t2);
}

Test(tensor, from_data_makes_a_zero_dim_tensor_from_one_value)
{
    const double v = 2.5;
    em_tensor *t = EMT_OK(em_tensor_from_data(&v, EM_F64, EM_SCALAR, NULL));
    EMT_ASSERT_SHAPE(t, EM_SCALAR);
    cr_assert_eq(em_numel(t), 1);
    cr_assert_eq(em_item(t), 2.5);
    em_release(t);
}

/* ---- torch.rand / ones / zeros -------------------------------------------------------------- */

Test(tensor, rand_ones_and_zeros_have_the_requested_shape_and_float32)
{
    em_tensor *r = EMT_OK(em_rand(EM_SHAPE(2, 3), NULL));
    em_tensor *o = EMT_OK(em_ones(EM_SHAPE(2, 3), NULL));
    em_tensor *z = EMT_OK(em_zeros(EM_SHAPE(2, 3), NULL));
    em_tensor *all[3] = {r, o, z};
    for (int i = 0; i < 3; i++) {
        EMT_ASSERT_SHAPE(all[i], EM_SHAPE(2, 3));
        EMT_ASSERT_STRIDES(all[i], EM_SHAPE(3, 1));
        EMT_ASSERT_DTYPE(all[i], EM_F32);
        cr_assert_eq(em_numel(all[i]), 6);
        cr_assert(em_device_eq(em_device_of(all[i]), default_dev()));
        cr_assert_not(em_requires_grad(all[i]));
    }
    EMT_ASSERT_LIST(o, 0, 1, 1, 1, 1, 1, 1);
    EMT_ASSERT_LIST(z, 0, 0, 0, 0, 0, 0, 0);
    em_release(r);
    em_release(o);
    em_release(z);
}

Test(tensor, ones_and_zeros_honour_the_dtype_option)
{
    const em_dtype dts[] = {EM_F64, EM_F16, EM_BF16, EM_I64, EM_I32, EM_U8, EM_BOOL};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        em_opts o = {.dtype = dts[i]};
        em_tensor *a = EMT_OK(em_ones(EM_SHAPE(3), &o));
        em_tensor *b = EMT_OK(em_zeros(EM_SHAPE(3), &o));
        EMT_ASSERT_DTYPE(a, dts[i]);
        EMT_ASSERT_DTYPE(b, dts[i]);
        EMT_ASSERT_LIST(a, 0, 1, 1, 1);
        EMT_ASSERT_LIST(b, 0, 0, 0, 0);
        em_release(a);
        em_release(b);
    }
}

Test(tensor, zeros_like_and_ones_like_keep_shape_and_dtype)
{
    em_tensor *t = EMT_OK(em_empty(EM_SHAPE(2, 1, 3), &(em_opts){.dtype = EM_I32}));
    em_tensor *z = EMT_OK(em_zeros_like(t));
    em_tensor *o = EMT_OK(em_ones_like(t));
    EMT_ASSERT_SHAPE(z, EM_SHAPE(2, 1, 3));
    EMT_ASSERT_SHAPE(o, EM_SHAPE(2, 1, 3));
    EMT_ASSERT_DTYPE(z, EM_I32);
    EMT_ASSERT_DTYPE(o, EM_I32);
    EMT_ASSERT_LIST(z, 0, 0, 0, 0, 0, 0, 0);
    EMT_ASSERT_LIST(o, 0, 1, 1, 1, 1, 1, 1);
    em_release(t);
    em_release(z);
    em_release(o);
}

Test(tensor, rand_values_lie_in_zero_to_one)
{
    em_manual_seed(1234);
    const int64_t n = 20000;
    em_tensor *r = EMT_OK(em_rand(1, &n, NULL));
    double *v = emt_values(r);
    double lo = 1, hi = 0, sum = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(v[i] >= 0.0 && v[i] < 1.0, "rand[%lld] = %.9g is outside [0, 1)", (long long)i,
                  v[i]);
        lo = v[i] < lo ? v[i] : lo;
        hi = v[i] > hi ? v[i] : hi;
        sum += v[i];
    }
    free(v);
    cr_assert_lt(lo, 0.001, "smallest of %lld uniforms is %g", (long long)n, lo);
    cr_assert_gt(hi, 0.999, "largest of %lld uniforms is %g", (long long)n, hi);
    cr_assert_lt(fabs(sum / (double)n - 0.5), 0.01, "mean of uniforms is %g", sum / (double)n);
    em_release(r);
}

/* Copies n values of a fresh rand(n) drawn after seeding with `seed` (seed < 0: no seeding). */
static void draw(long long seed, double *out, int64_t n)
{
    if (seed >= 0)
        em_manual_seed((uint64_t)seed);
    em_tensor *r = EMT_OK(em_rand(1, &n, NULL));
    double *v = emt_values(r);
    memcpy(out, v, (size_t)n * sizeof *v);
    free(v);
    em_release(r);
}

Test(tensor, manual_seed_makes_rand_reproducible)
{
    double a[64], b[64], c[64], d[64];
    draw(42, a, 64);
    cr_assert_eq(em_initial_seed(), 42);
    draw(-1, d, 64);   /* the generator advanced: the next draw differs */
    draw(42, b, 64);
    draw(43, c, 64);
    int same_d = 0, same_c = 0;
    for (int i = 0; i < 64; i++) {
        cr_assert_eq(a[i], b[i], "seed 42 gave %.9g then %.9g at %d", a[i], b[i], i);
        same_c += a[i] == c[i];
        same_d += a[i] == d[i];
    }
    cr_assert_lt(same_c, 4, "seeds 42 and 43 agree in %d of 64 values", same_c);
    cr_assert_lt(same_d, 4, "two draws after one seed agree in %d of 64 values", same_d);
}

Test(tensor, randn_has_mean_zero_and_std_one)
{
    em_manual_seed(7);
    const int64_t n = 100000;
    em_tensor *r = EMT_OK(em_randn(1, &n, NULL));
    EMT_ASSERT_DTYPE(r, EM_F32);
    double *v = emt_values(r);
    double sum = 0, sq = 0;
    int beyond4 = 0;
    for (int64_t i = 0; i < n; i++) {
        cr_assert(isfinite(v[i]), "randn[%lld] = %g", (long long)i, v[i]);
        sum += v[i];
        beyond4 += fabs(v[i]) > 4;
    }
    double mean = sum / (double)n;
    for (int64_t i = 0; i < n; i++)
        sq += (v[i] - mean) * (v[i] - mean);
    double sd = sqrt(sq / (double)(n - 1));
    free(v);
    cr_assert_lt(fabs(mean), 0.02, "mean of %lld normals is %g", (long long)n, mean);
    cr_assert_lt(fabs(sd - 1), 0.02, "std of %lld normals is %g", (long long)n, sd);
    /* P(|x| > 4) = 6.3e-5: about 6 expected; a uniform or clipped source gives 0 or many */
    cr_assert_lt(beyond4, 40, "%d of %lld normals beyond 4 sigma", beyond4, (long long)n);
    em_release(r);
}

Test(tensor, randint_draws_int64_values_in_the_half_open_range)
{
    em_manual_seed(3);
    em_tensor *r = EMT_OK(em_randint(3, 7, EM_SHAPE(40, 50), NULL));
    EMT_ASSERT_DTYPE(r, EM_I64);
    EMT_ASSERT_SHAPE(r, EM_SHAPE(40, 50));
    double *v = emt_values(r);
    int seen[4] = {0};
    for (int i = 0; i < 2000; i++) {
        cr_assert(v[i] >= 3 && v[i] < 7 && v[i] == floor(v[i]),
                  "randint(3, 7)[%d] = %g", i, v[i]);
        seen[(int)v[i] - 3]++;
    }
    free(v);
    for (int k = 0; k < 4; k++)
        cr_assert_gt(seen[k], 350, "value %d drawn %d times of 2000", k + 3, seen[k]);
    em_release(r);

    em_tensor *neg = EMT_OK(em_randint(-5, -4, EM_SHAPE(3), &(em_opts){.dtype = EM_I32}));
    EMT_ASSERT_DTYPE(neg, EM_I32);
    EMT_ASSERT_LIST(neg, 0, -5, -5, -5);
    em_release(neg);
}

Test(tensor, random_draws_follow_the_philox_stream_of_numeric_h)
{
    /* After em_manual_seed(s) the generator's offset is 0; each draw advances it by the
     * blocks it used. n is odd and large enough to be split across threads. Every backend
     * draws the same stream, so this runs on the default device. */
    const uint64_t seed = 20240611;
    const int64_t n = 50001;
    em_manual_seed(seed);
    em_tensor *u = EMT_OK(em_rand(1, &n, NULL));
    em_tensor *g = EMT_OK(em_randn(1, &n, NULL));
    em_tensor *k = EMT_OK(em_randint(-3, 1000, 1, &n, NULL));
    float *uf = malloc((size_t)n * sizeof *uf), *gf = malloc((size_t)n * sizeof *gf);
    int64_t *ki = malloc((size_t)n * sizeof *ki);
    cr_assert(uf && gf && ki);
    cr_assert_eq(em_copy_to_host(u, uf, (size_t)n * sizeof *uf), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(g, gf, (size_t)n * sizeof *gf), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(k, ki, (size_t)n * sizeof *ki), EM_OK, "%s", em_last_error());
    uint64_t off_g = em_philox_blocks_uniform((uint64_t)n);
    uint64_t off_k = off_g + em_philox_blocks_pair((uint64_t)n);
    for (int64_t i = 0; i < n; i++) {
        float wu = (float)em_philox_uniform(seed, 0, (uint64_t)i);
        float wg = (float)em_philox_normal(seed, off_g, (uint64_t)i);
        int64_t wk = em_philox_int(seed, off_k, (uint64_t)i, -3, 1000);
        cr_assert_eq(uf[i], wu, "rand[%lld] = %.9g, the stream gives %.9g", (long long)i,
                     (double)uf[i], (double)wu);
        cr_assert_eq(gf[i], wg, "randn[%lld] = %.9g, the stream gives %.9g", (long long)i,
                     (double)gf[i], (double)wg);
        cr_assert_eq(ki[i], wk, "randint[%lld] = %lld, the stream gives %lld", (long long)i,
                     (long long)ki[i], (long long)wk);
    }
    free(ki);
    free(gf);
    free(uf);
    em_release(k);
    em_release(g);
    em_release(u);
}

Test(tensor, rand_in_every_float_dtype_stays_below_one)
{
    /* torch.rand never returns `to`, in any dtype: rounding a uniform to float16 or bfloat16
     * must not reach 1.0 */
    const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    const int64_t n = 100000;
    for (size_t d = 0; d < 4; d++) {
        EMT_CONTEXT("dtype %s", em_dtype_name(dts[d]));
        em_manual_seed(99);
        em_tensor *r = EMT_OK(em_rand(1, &n, &(em_opts){.dtype = dts[d]}));
        EMT_ASSERT_DTYPE(r, dts[d]);
        double *v = emt_values(r);
        int64_t ones = 0, first = -1;
        for (int64_t i = 0; i < n; i++) {
            cr_assert(v[i] >= 0, "rand(%s)[%lld] = %g", em_dtype_name(dts[d]), (long long)i, v[i]);
            if (v[i] >= 1 && ones++ == 0)
                first = i;
        }
        free(v);
        em_release(r);
        cr_expect_eq(ones, 0, "rand(%s): %lld of %lld values are 1.0 (first at %lld); the "
                     "range is [0, 1)", em_dtype_name(dts[d]), (long long)ones, (long long)n,
                     (long long)first);
    }
}

Test(tensor, randint_with_a_float_dtype_gives_whole_numbers)
{
    em_tensor *r = EMT_OK(em_randint(0, 10, EM_SHAPE(1000), &(em_opts){.dtype = EM_F32}));
    EMT_ASSERT_DTYPE(r, EM_F32);
    double *v = emt_values(r);
    for (int i = 0; i < 1000; i++)
        cr_assert(v[i] >= 0 && v[i] < 10 && v[i] == floor(v[i]), "randint[%d] = %g", i, v[i]);
    free(v);
    em_release(r);
}

Test(tensor, randint_keeps_int64_bounds_beyond_two_to_the_53)
{
    /* 2^53 + 1 and 2^53 + 3 are not doubles: torch.randint(2**53 + 1, 2**53 + 3, ...) still
     * only returns 2^53 + 1 and 2^53 + 2 */
    const int64_t lo = (INT64_C(1) << 53) + 1, hi = lo + 2;
    em_tensor *r = EMT_OK(em_randint(lo, hi, EM_SHAPE(1000), NULL));
    int64_t v[1000];
    cr_assert_eq(em_copy_to_host(r, v, sizeof v), EM_OK, "%s", em_last_error());
    int64_t bad = -1;
    for (int i = 0; i < 1000 && bad < 0; i++)
        if (v[i] < lo || v[i] >= hi)
            bad = i;
    cr_assert_lt(bad, 0, "randint(%lld, %lld)[%lld] = %lld is outside the range", (long long)lo,
                 (long long)hi, (long long)bad, bad >= 0 ? (long long)v[bad] : 0LL);
    em_release(r);
}

/* ---- arange, full, scalar, item ------------------------------------------------------------- */

Test(tensor, arange_of_whole_numbers_is_int64)
{
    em_tensor *a = EMT_OK(em_arange(0, 5, 1, NULL));
    EMT_ASSERT_DTYPE(a, EM_I64);
    EMT_ASSERT_SHAPE(a, EM_SHAPE(5));
    EMT_ASSERT_LIST(a, 0, 0, 1, 2, 3, 4);
    em_release(a);

    em_tensor *b = EMT_OK(em_arange(1, 10, 3, NULL));
    EMT_ASSERT_DTYPE(b, EM_I64);
    EMT_ASSERT_LIST(b, 0, 1, 4, 7);
    em_release(b);

    em_tensor *c = EMT_OK(em_arange(5, 0, -2, NULL));
    EMT_ASSERT_LIST(c, 0, 5, 3, 1);
    em_release(c);

    em_tensor *e = EMT_OK(em_arange(3, 3, 1, NULL));   /* empty range */
    EMT_ASSERT_SHAPE(e, EM_SHAPE(0));
    em_release(e);
}

Test(tensor, arange_with_a_fractional_argument_is_float32)
{
    em_tensor *a = EMT_OK(em_arange(0, 1, 0.25, NULL));
    EMT_ASSERT_DTYPE(a, EM_F32);
    EMT_ASSERT_LIST(a, 0, 0, 0.25, 0.5, 0.75);
    em_release(a);

    em_tensor *b = EMT_OK(em_arange(0.5, 3, 1, NULL));
    EMT_ASSERT_DTYPE(b, EM_F32);
    EMT_ASSERT_LIST(b, 0, 0.5, 1.5, 2.5);
    em_release(b);

    em_tensor *c = EMT_OK(em_arange(0, 4, 1, &(em_opts){.dtype = EM_F64}));
    EMT_ASSERT_DTYPE(c, EM_F64);
    EMT_ASSERT_LIST(c, 0, 0, 1, 2, 3);
    em_release(c);
}

Test(tensor, full_fills_every_element_with_the_value)
{
    em_tensor *a = EMT_OK(em_full(EM_SHAPE(2, 2), 3.5, NULL));
    EMT_ASSERT_DTYPE(a, EM_F32);
    EMT_ASSERT_SHAPE(a, EM_SHAPE(2, 2));
    EMT_ASSERT_LIST(a, 0, 3.5, 3.5, 3.5, 3.5);
    em_release(a);

    em_tensor *b = EMT_OK(em_full(EM_SHAPE(3), -7, &(em_opts){.dtype = EM_I32}));
    EMT_ASSERT_DTYPE(b, EM_I32);
    EMT_ASSERT_LIST(b, 0, -7, -7, -7);
    em_release(b);
}

Test(tensor, scalar_is_a_zero_dim_tensor_that_item_reads)
{
    em_tensor *s = EMT_OK(em_scalar(2.5, NULL));
    EMT_ASSERT_SHAPE(s, EM_SCALAR);
    EMT_ASSERT_DTYPE(s, EM_F32);
    cr_assert_eq(em_numel(s), 1);
    cr_assert_eq(em_item(s), 2.5);
    em_release(s);

    em_tensor *i = EMT_OK(em_scalar(-7, &(em_opts){.dtype = EM_I64}));
    EMT_ASSERT_DTYPE(i, EM_I64);
    cr_assert_eq(em_item(i), -7.0);
    em_release(i);
}

Test(tensor, item_reads_a_one_element_tensor_of_any_rank)
{
    em_tensor *t = emt_tensor(EM_F64, EM_SHAPE(1, 1, 1), EMT_VALS(-0.125));
    cr_assert_eq(em_item(t), -0.125);
    em_tensor *b = emt_tensor(EM_BOOL, EM_SHAPE(1), EMT_VALS(1));
    cr_assert_eq(em_item(b), 1.0);
    em_release(t);
    em_release(b);
}

Test(tensor, size_counts_negative_dims_from_the_end)
{
    em_tensor *t = EMT_OK(em_zeros(EM_SHAPE(2, 3, 4), NULL));
    cr_assert_eq(em_ndim(t), 3);
    cr_assert_eq(em_size(t, 0), 2);
    cr_assert_eq(em_size(t, -1), 4);
    cr_assert_eq(em_size(t, -3), 2);
    cr_assert_eq(em_storage_offset(t), 0);
    em_release(t);
}

/* ---- printing ------------------------------------------------------------------------------- */

Test(tensor, str_prints_the_tutorial_tensor_like_pytorch, .init = emt_pin_cpu)
{
    int64_t my_arr[2][3] = MY_ARR_INIT;
    em_tensor *t1 = EMT_OK(em_tensor_from_data(my_arr, EM_I64, EM_SHAPE(2, 3), NULL));
    char *s = em_tensor_str(t1);
    cr_assert_not_null(s, "%s", em_last_error());
    cr_assert_str_eq(s, "tensor([[1, 2, 3],\n        [4, 5, 6]])");
    free(s);
    em_release(t1);
}

/* ---- scopes and memory ---------------------------------------------------------------------- */

Test(tensor, memory_allocated_rises_by_the_tensor_size_and_falls_after_release)
{
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_tensor *t = EMT_OK(em_empty(EM_SHAPE(256, 4), &(em_opts){.dtype = EM_F64}));   /* 8 KiB */
    size_t after = em_memory_allocated(d);
    cr_assert_eq(after, base + 8192, "allocated went from %zu to %zu for an 8192-byte tensor",
                 base, after);
    cr_assert_geq(em_max_memory_allocated(d), base + 8192);
    cr_assert_geq(em_memory_reserved(d), after);
    em_tensor *v = EMT_OK(em_view(t, EM_SHAPE(1024)));
    cr_assert_eq(em_memory_allocated(d), base + 8192, "a view must not allocate");
    em_release(t);
    cr_assert_eq(em_memory_allocated(d), base + 8192, "the view still holds the storage");
    em_release(v);
    cr_assert_eq(em_memory_allocated(d), base, "allocated is %zu after the release, expected %zu",
                 em_memory_allocated(d), base);
    cr_assert_geq(em_max_memory_allocated(d), base + 8192, "the peak must survive the release");
    cr_assert_eq(em_reset_peak_memory_stats(d), EM_OK);
    cr_assert_eq(em_max_memory_allocated(d), base);
    cr_assert_eq(em_empty_cache(d), EM_OK);
}

/* The tutorial's caching-allocator lesson, on the CPU: a released large buffer stays
 * reserved (and is reused by the next tensor of its size) until em_empty_cache. */
Test(tensor, large_blocks_stay_reserved_until_empty_cache)
{
    em_device d = default_dev();
    cr_assert_eq(em_empty_cache(d), EM_OK);
    size_t base = em_memory_allocated(d), base_res = em_memory_reserved(d);
    em_tensor *big = EMT_OK(em_zeros(EM_SHAPE(4, 1024, 1024), NULL));   /* 16 MiB */
    cr_assert_eq(em_memory_allocated(d), base + ((size_t)16 << 20));
    cr_assert_geq(em_memory_reserved(d), base_res + ((size_t)16 << 20));
    void *first = em_data_ptr(big);
    em_release(big);
    cr_assert_eq(em_memory_allocated(d), base);
    cr_assert_geq(em_memory_reserved(d), base_res + ((size_t)16 << 20), "released block is cached");
    em_tensor *again = EMT_OK(em_ones(EM_SHAPE(4, 1024, 1024), NULL));
    cr_assert_eq(em_data_ptr(again), first, "the cached block is reused");
    em_release(again);
    cr_assert_eq(em_empty_cache(d), EM_OK);
    cr_assert_eq(em_memory_reserved(d), base_res, "reserved %zu after empty_cache, expected %zu",
                 em_memory_reserved(d), base_res);
}

/* Small blocks are cached too, by size class (multiples of 64 bytes up to 256, then four
 * classes per power of two), so that a steady training step reuses its temporaries' memory
 * instead of asking malloc (and the kernel, for fresh pages) every time. */
Test(tensor, small_blocks_are_cached_by_size_class_until_empty_cache)
{
    em_device d = em_device_parse("cpu");
    cr_assert_eq(em_empty_cache(d), EM_OK);
    size_t base = em_memory_allocated(d), base_res = em_memory_reserved(d);
    em_opts u8 = {.dtype = EM_U8, .device = d};
    /* 1100 bytes: the class of 1280 (1024 + 256) */
    em_tensor *t = EMT_OK(em_empty(EM_SHAPE(1100), &u8));
    cr_assert_eq(em_memory_allocated(d), base + 1100);
    cr_assert_eq(em_memory_reserved(d), base_res + 1280, "reserved %zu, expected %zu",
                 em_memory_reserved(d), base_res + 1280);
    void *first = em_data_ptr(t);
    em_release(t);
    cr_assert_eq(em_memory_allocated(d), base);
    cr_assert_eq(em_memory_reserved(d), base_res + 1280, "the released block stays cached");
    /* another size of the same class takes the cached block; one of another class does not */
    em_tensor *other = EMT_OK(em_empty(EM_SHAPE(900), &u8));   /* class 1024 */
    em_tensor *same = EMT_OK(em_empty(EM_SHAPE(1250), &u8));
    cr_assert_eq(em_data_ptr(same), first, "a block of the same class is reused");
    cr_assert_neq(em_data_ptr(other), first);
    cr_assert_eq(em_memory_reserved(d), base_res + 1280 + 1024);
    em_release(same);
    em_release(other);
    cr_assert_eq(em_memory_reserved(d), base_res + 1280 + 1024, "both blocks are cached");
    cr_assert_eq(em_empty_cache(d), EM_OK);
    cr_assert_eq(em_memory_reserved(d), base_res, "reserved %zu after empty_cache, expected %zu",
                 em_memory_reserved(d), base_res);
}

Test(tensor, scope_end_releases_the_tensors_created_inside)
{
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_scope_begin();
    em_tensor *a = EMT_OK(em_zeros(EM_SHAPE(1024), NULL));
    em_tensor *b = EMT_OK(em_ones(EM_SHAPE(1024), NULL));
    em_tensor *c = EMT_OK(em_add(a, b));
    em_tensor *v = EMT_OK(em_reshape(c, EM_SHAPE(32, 32)));
    cr_assert_eq(em_memory_allocated(d), base + 3 * 4096);
    EMT_ASSERT_SHAPE(v, EM_SHAPE(32, 32));
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base,
                 "allocated is %zu after em_scope_end, expected the baseline %zu",
                 em_memory_allocated(d), base);
}

Test(tensor, keep_moves_one_tensor_out_of_the_scope)
{
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_scope_begin();
    em_tensor *tmp = EMT_OK(em_zeros(EM_SHAPE(1024), NULL));
    em_tensor *kept = em_keep(EMT_OK(em_add_scalar(tmp, 3)));
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base + 4096, "allocated %zu, expected %zu",
                 em_memory_allocated(d), base + 4096);
    EMT_ASSERT_SHAPE(kept, EM_SHAPE(1024));
    double *v = emt_values(kept);
    cr_assert_eq(v[0], 3);
    cr_assert_eq(v[1023], 3);
    free(v);
    em_release(kept);
    cr_assert_eq(em_memory_allocated(d), base);
}

Test(tensor, nested_scopes_hand_a_kept_tensor_to_the_enclosing_scope)
{
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_scope_begin();
    em_tensor *outer = EMT_OK(em_zeros(EM_SHAPE(1024), NULL));
    em_scope_begin();
    em_tensor *inner = EMT_OK(em_ones(EM_SHAPE(1024), NULL));
    em_tensor *kept = em_keep(EMT_OK(em_mul_scalar(inner, 2)));
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base + 2 * 4096,
                 "after the inner scope: %zu, expected outer and kept alive (%zu)",
                 em_memory_allocated(d), base + 2 * 4096);
    EMT_ASSERT_LIST(em_select(kept, 0, 5), 0, 2);   /* the view belongs to the outer scope */
    (void)outer;
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base);
}

Test(tensor, keep_at_every_level_hands_a_tensor_to_the_caller)
{
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_scope_begin();
    em_scope_begin();
    em_tensor *t = em_keep(EMT_OK(em_full(EM_SHAPE(1024), 7, NULL)));
    em_tensor *junk = EMT_OK(em_zeros(EM_SHAPE(1024), NULL));
    (void)junk;
    em_scope_end();
    cr_assert_eq(em_keep(t), t);
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base + 4096);
    em_tensor *first = EMT_OK(em_narrow(t, 0, 0, 1));
    EMT_ASSERT_LIST(first, 0, 7);
    em_release(first);
    em_release(t);
    cr_assert_eq(em_memory_allocated(d), base);
}

Test(tensor, in_place_results_and_retained_returns_inside_a_scope_are_balanced)
{
    /* add_, contiguous and to_dtype return their argument retained; the scope releases those
     * extra references, and the caller's own reference stays valid. */
    em_device d = default_dev();
    size_t base = em_memory_allocated(d);
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(1024), NULL));
    em_scope_begin();
    em_tensor *r = EMT_OK(em_add_scalar_(a, 1));
    cr_assert_eq(r, a);
    cr_assert_eq(EMT_OK(em_contiguous(a)), a);
    cr_assert_eq(EMT_OK(em_to_dtype(a, EM_F32)), a);
    em_scope_end();
    cr_assert_eq(em_memory_allocated(d), base + 4096);
    em_tensor *last = EMT_OK(em_narrow(a, 0, 1023, 1));
    EMT_ASSERT_LIST(last, 0, 2);
    em_release(last);
    em_release(a);
    cr_assert_eq(em_memory_allocated(d), base);
}

Test(tensor, tensors_from_outside_a_scope_survive_it)
{
    em_tensor *a = EMT_OK(em_ones(EM_SHAPE(4), NULL));
    em_scope_begin();
    em_tensor *b = EMT_OK(em_add(a, a));
    EMT_ASSERT_LIST(b, 0, 2, 2, 2, 2);
    em_scope_end();
    EMT_ASSERT_LIST(a, 0, 1, 1, 1, 1);
    em_release(a);
}
