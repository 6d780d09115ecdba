/* tests/cuda/test_cuda.c - the CUDA backend plugin through Ember: it loads everywhere; with no
 * driver or no device the backend is registered but unavailable, with the reason, and nothing
 * crashes. Tests that need a GPU skip themselves (with the reason) where there is none. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

static void setup(void)
{
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
}

static void teardown(void) { em_shutdown(); }

TestSuite(cuda, .init = setup, .fini = teardown);

static bool have_gpu(void)
{
    return em_backend_available("cuda");
}

#define NEED_GPU()                                                                          \
    do {                                                                                    \
        if (!have_gpu()) {                                                                  \
            const char *why = em_backend_unavailable_reason("cuda");                        \
            cr_skip_test("needs a CUDA device: %s", why ? why : "cuda backend not loaded"); \
        }                                                                                   \
    } while (0)

Test(cuda, plugin_loads_and_registers_the_backend)
{
    bool found = false;
    for (int i = 0; i < em_plugin_count(); i++) {
        em_plugin_info info;
        cr_assert_eq(em_plugin_get(i, &info), EM_OK);
        if (info.name && strcmp(info.name, "cuda") == 0) {
            found = true;
            cr_assert(info.ok, "cuda plugin failed: %s", info.error ? info.error : "?");
            cr_assert(info.registered && strstr(info.registered, "backend cuda"), "%s",
                      info.registered ? info.registered : "(null)");
        }
    }
    cr_assert(found, "the cuda plugin was not found among %d plugins", em_plugin_count());
    bool backend = false;
    for (int i = 0; i < em_backend_count(); i++)
        backend |= strcmp(em_backend_name(i), "cuda") == 0;
    cr_assert(backend);
}

Test(cuda, no_device_means_unavailable_with_a_reason)
{
    if (have_gpu())
        cr_skip_test("a CUDA device is present: %d device(s)", em_device_count("cuda"));
    cr_assert_not(em_backend_available("cuda"));
    cr_assert_eq(em_device_count("cuda"), 0);
    const char *why = em_backend_unavailable_reason("cuda");
    cr_assert_not_null(why);
    cr_assert(strstr(why, "CUDA") || strstr(why, "cuda"), "%s", why);
    cr_assert(strstr(why, "cudaGetDeviceCount"), "%s", why);
}

Test(cuda, no_device_tensor_creation_fails_cleanly)
{
    if (have_gpu())
        cr_skip_test("a CUDA device is present");
    em_device d = em_device_parse("cuda");
    em_clear_error();
    em_opts o = {.dtype = EM_F32, .device = d};
    em_tensor *t = d.index >= 0 ? em_zeros(EM_SHAPE(2, 3), &o) : NULL;
    cr_assert_null(t);
    const char *err = em_last_error();
    cr_assert(strstr(err, "cuda"), "error should name cuda: '%s'", err);
    /* The CPU keeps working. */
    em_tensor *c = em_ones(EM_SHAPE(4), NULL);
    cr_assert_not_null(c, "%s", em_last_error());
    em_release(c);
    /* Memory queries on the absent device answer 0 and do not crash. */
    em_device d0 = em_device_parse("cuda:0");
    if (d0.index >= 0) {
        cr_assert_eq(em_memory_allocated(d0), 0);
        cr_assert_eq(em_memory_reserved(d0), 0);
    }
    em_clear_error();
}

/* ---- with a GPU ---------------------------------------------------------------------------- */

Test(cuda, gpu_device_info)
{
    NEED_GPU();
    cr_assert_gt(em_device_count("cuda"), 0);
    em_device_props p;
    cr_assert_eq(em_device_props_get(em_device_parse("cuda:0"), &p), EM_OK, "%s",
                 em_last_error());
    cr_assert_gt(strlen(p.name), 0);
    cr_assert_gt(p.total_memory, 0);
    cr_assert_gt(p.free_memory, 0);
    cr_assert_geq(p.compute_major, 7);
    cr_assert_gt(p.threads, 0);
}

Test(cuda, gpu_round_trip_and_caching_stats)
{
    NEED_GPU();
    em_device d = em_device_parse("cuda:0");
    float v[6] = {1, 2, 3, 4, 5, 6}, out[6] = {0};
    em_tensor *t = em_tensor_from_data(v, EM_F32, EM_SHAPE(2, 3), NULL);
    em_tensor *g = em_to(t, d);
    cr_assert_not_null(g, "%s", em_last_error());
    cr_assert_geq(em_memory_allocated(d), sizeof v);
    cr_assert_geq(em_memory_reserved(d), 2u << 20);
    cr_assert_eq(em_copy_to_host(g, out, sizeof out), EM_OK, "%s", em_last_error());
    cr_assert_arr_eq(out, v, sizeof v);
    size_t reserved = em_memory_reserved(d);
    em_release(g);
    cr_assert_eq(em_memory_reserved(d), reserved, "release keeps the block cached");
    cr_assert_eq(em_empty_cache(d), EM_OK);
    cr_assert_lt(em_memory_reserved(d), reserved);
    em_release(t);
}

Test(cuda, gpu_out_of_memory_message)
{
    NEED_GPU();
    em_device d = em_device_parse("cuda:0");
    em_opts o = {.dtype = EM_F32, .device = d};
    em_tensor *t = em_zeros(EM_SHAPE((int64_t)1 << 40), &o);   /* 4 TiB */
    cr_assert_null(t);
    const char *err = em_last_error();
    cr_assert(strstr(err, "cuda: out of memory: tried to allocate 4194304.00 MiB"), "%s", err);
    cr_assert(strstr(err, "MiB free on the device)"), "%s", err);
}

/* The same seed gives the same numbers on the CPU and on the GPU, bit for bit (uniform and
 * integer draws; normal draws agree to 1e-12, device libm being allowed an ulp). */
static void draw_both(em_dtype dt, int which, void *cpu, void *gpu, size_t nbytes)
{
    const int64_t n = 1003;
    for (int side = 0; side < 2; side++) {
        em_manual_seed(1234);
        em_opts o = {.dtype = dt, .device = em_device_parse(side ? "cuda:0" : "cpu")};
        em_tensor *t = which == 0 ? em_rand(EM_SHAPE(n), &o)
                       : which == 1 ? em_randn(EM_SHAPE(n), &o)
                                    : em_randint(-50, 1000000, EM_SHAPE(n), &o);
        cr_assert_not_null(t, "%s", em_last_error());
        cr_assert_eq(em_copy_to_host(t, side ? gpu : cpu, nbytes), EM_OK, "%s",
                     em_last_error());
        em_release(t);
    }
}

Test(cuda, gpu_philox_matches_the_cpu)
{
    NEED_GPU();
    static char c[1003 * 8], g[1003 * 8];
    const em_dtype dts[] = {EM_F32, EM_F64, EM_F16, EM_BF16};
    for (size_t i = 0; i < sizeof dts / sizeof dts[0]; i++) {
        size_t nb = 1003 * em_dtype_size(dts[i]);
        draw_both(dts[i], 0, c, g, nb);
        cr_assert_arr_eq(c, g, nb, "uniform %s differs", em_dtype_name(dts[i]));
    }
    draw_both(EM_I64, 2, c, g, 1003 * 8);
    cr_assert_arr_eq(c, g, 1003 * 8, "randint differs");
    draw_both(EM_F64, 1, c, g, 1003 * 8);
    const double *cd = (const double *)c, *gd = (const double *)g;
    for (int i = 0; i < 1003; i++)
        cr_assert_float_eq(cd[i], gd[i], 1e-12, "normal %d: %.17g vs %.17g", i, cd[i], gd[i]);
}

/* matmul on the GPU (cuBLAS, transposed operand, batched; f16 with f32 compute; int64 by the
 * simple kernel) against the CPU. */
static void matmul_vs_cpu(em_dtype dt, bool transpose_b, double tol)
{
    em_manual_seed(7);
    em_opts o = {.dtype = EM_F32};
    em_tensor *a = em_randn(EM_SHAPE(3, 17, 33), &o);
    em_tensor *b = em_randn(EM_SHAPE(3, transpose_b ? 9 : 33, transpose_b ? 33 : 9), &o);
    em_tensor *ac = em_to_dtype(a, dt), *bc = em_to_dtype(b, dt);
    em_device g = em_device_parse("cuda:0");
    em_tensor *ag = em_to(ac, g), *bg = em_to(bc, g);
    cr_assert(ag && bg, "%s", em_last_error());
    em_tensor *bt = transpose_b ? em_transpose(bc, 1, 2) : bc;
    em_tensor *btg = transpose_b ? em_transpose(bg, 1, 2) : bg;
    em_tensor *rc = em_to_dtype(em_matmul(ac, bt), EM_F64);
    em_tensor *rg = em_matmul(ag, btg);
    cr_assert_not_null(rg, "%s", em_last_error());
    em_tensor *rgf = em_to_dtype(em_to(rg, em_device_parse("cpu")), EM_F64);
    static double x[3 * 17 * 9], y[3 * 17 * 9];
    cr_assert_eq(em_copy_to_host(rc, x, sizeof x), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(rgf, y, sizeof y), EM_OK, "%s", em_last_error());
    for (int i = 0; i < 3 * 17 * 9; i++)
        cr_assert_float_eq(x[i], y[i], tol * (1 + (x[i] < 0 ? -x[i] : x[i])),
                           "%s [%d]: cpu %g gpu %g", em_dtype_name(dt), i, x[i], y[i]);
}

Test(cuda, gpu_matmul_matches_the_cpu)
{
    NEED_GPU();
    em_scope_begin();
    matmul_vs_cpu(EM_F32, false, 1e-4);
    matmul_vs_cpu(EM_F32, true, 1e-4);
    matmul_vs_cpu(EM_F64, true, 1e-12);
    matmul_vs_cpu(EM_F16, false, 2e-2);
    matmul_vs_cpu(EM_BF16, true, 5e-2);
    matmul_vs_cpu(EM_I64, false, 0);
    em_scope_end();
}
