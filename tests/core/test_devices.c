/* tests/core/test_devices.c - a second device (the "mock" test backend: two devices whose
 * memory the core cannot touch, and only copy/fill/add-f32 kernels): transfers, device
 * mismatches, missing kernels, the CPU fallback and per-device memory stats. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include <ember/ember.h>

static void setup(void)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
}

static void teardown(void) { em_shutdown(); }

TestSuite(devices, .init = setup, .fini = teardown);

static em_device dev(const char *s)
{
    em_device d = em_device_parse(s);
    cr_assert_geq(d.index, 0, "%s", em_last_error());
    return d;
}

Test(devices, mock_devices_are_listed_with_names)
{
    cr_assert(em_backend_available("mock"));
    cr_assert_eq(em_device_count("mock"), 2);
    cr_assert_str_eq(em_device_name(dev("mock:1")), "Mock Device 1");
    cr_assert_not(em_backend_available("cuda-that-is-not-here"));
    char buf[32];
    cr_assert_str_eq(em_device_str(dev("mock:1"), buf, sizeof buf), "mock:1");
    cr_assert_str_eq(em_device_str(dev("cpu"), buf, sizeof buf), "cpu");
}

Test(devices, to_and_back_keeps_values_and_moves_memory)
{
    float v[4] = {1, 2, 3, 4}, out[4] = {0};
    em_device m1 = dev("mock:1");
    size_t before = em_memory_allocated(m1);
    em_tensor *t = em_tensor_from_data(v, EM_F32, EM_SHAPE(2, 2), NULL);
    em_tensor *g = em_to(t, m1);
    cr_assert_not_null(g, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(g), m1));
    cr_assert_eq(em_memory_allocated(m1), before + sizeof v);
    cr_assert_null(em_data_ptr(g));
    cr_assert(strstr(em_last_error(), "not in host memory"), "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(g, out, sizeof out), EM_OK);
    cr_assert_eq(memcmp(v, out, sizeof v), 0);
    em_tensor *back = em_cpu(g);
    cr_assert_not_null(em_data_ptr(back), "%s", em_last_error());
    cr_assert_float_eq(((float *)em_data_ptr(back))[3], 4.0f, 0);
    em_release(g);
    cr_assert_eq(em_memory_allocated(m1), before);
    em_release(back);
    em_release(t);
}

Test(devices, a_transposed_tensor_moves_in_logical_order)
{
    int64_t v[6] = {1, 2, 3, 4, 5, 6}, out[6];
    em_tensor *t = em_tensor_from_data(v, EM_I64, EM_SHAPE(2, 3), NULL);
    em_tensor *tt = em_t(t);
    em_tensor *g = em_to(tt, dev("mock:0"));
    cr_assert_eq(em_copy_to_host(g, out, sizeof out), EM_OK);
    int64_t want[6] = {1, 4, 2, 5, 3, 6};
    cr_assert_eq(memcmp(out, want, sizeof want), 0);
    em_release(g);
    em_release(tt);
    em_release(t);
}

Test(devices, ops_on_two_devices_fail_naming_both)
{
    em_tensor *a = em_ones(EM_SHAPE(3), &(em_opts){.device = dev("cpu")});
    em_tensor *b = em_ones(EM_SHAPE(3), &(em_opts){.device = dev("mock:1")});
    cr_assert_not_null(b, "%s", em_last_error());
    cr_assert_null(em_add(a, b));
    cr_assert(strstr(em_last_error(), "add: expected all tensors on the same device, got cpu "
                                      "and mock:1"),
              "%s", em_last_error());
    em_release(a);
    em_release(b);
}

Test(devices, a_missing_kernel_is_a_clear_error)
{
    em_tensor *a = em_ones(EM_SHAPE(3), &(em_opts){.device = dev("mock:0")});
    cr_assert_null(em_mul(a, a));
    cr_assert(strstr(em_last_error(), "op 'mul' has no kernel for backend 'mock' and no "
                                      "composite"),
              "%s", em_last_error());
    em_tensor *i = em_ones(EM_SHAPE(3), &(em_opts){.dtype = EM_I64, .device = dev("mock:0")});
    cr_assert_null(em_add(i, i));
    cr_assert(strstr(em_last_error(), "op 'add' has no kernel for dtype int64 on backend 'mock'"),
              "%s", em_last_error());
    em_release(a);
    em_release(i);
}

Test(devices, the_device_kernel_runs_where_it_exists)
{
    float v[3] = {1, 2, 3}, out[3];
    em_tensor *h = em_tensor_from_data(v, EM_F32, EM_SHAPE(3), NULL);
    em_tensor *g = em_to(h, dev("mock:0"));
    em_tensor *s = em_add(g, g);
    cr_assert_not_null(s, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(s), dev("mock:0")));
    cr_assert_eq(em_copy_to_host(s, out, sizeof out), EM_OK);
    cr_assert_float_eq(out[2], 6.0f, 0);
    char *str = em_tensor_str(s);
    cr_assert(strstr(str, "device='mock:0'"), "%s", str);
    free(str);
    em_release(h);
    em_release(g);
    em_release(s);
}

Test(devices, copy_into_a_device_tensor_from_the_host)
{
    float v[3] = {7, 8, 9}, out[3];
    em_tensor *h = em_tensor_from_data(v, EM_F32, EM_SHAPE(3), NULL);
    em_tensor *g = em_zeros(EM_SHAPE(3), &(em_opts){.device = dev("mock:1")});
    uint64_t ver = em_tensor_version(g);
    em_tensor *r = em_copy_(g, h);
    cr_assert_eq(r, g);
    cr_assert_eq(em_tensor_version(g), ver + 1);
    cr_assert_eq(em_copy_to_host(g, out, sizeof out), EM_OK);
    cr_assert_float_eq(out[1], 8.0f, 0);
    em_release(r);
    em_release(h);
    em_release(g);
}

Test(devices_fallback, cpu_fallback_runs_a_missing_op_and_returns_to_the_device)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    setenv("EMBER_FALLBACK", "cpu", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    float v[3] = {1, 2, 3}, out[3];
    em_tensor *h = em_tensor_from_data(v, EM_F32, EM_SHAPE(3), NULL);
    em_tensor *g = em_to(h, dev("mock:1"));
    em_tensor *p = em_mul(g, g);
    cr_assert_not_null(p, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(p), dev("mock:1")));
    cr_assert_eq(em_copy_to_host(p, out, sizeof out), EM_OK);
    cr_assert_float_eq(out[2], 9.0f, 0);
    em_release(h);
    em_release(g);
    em_release(p);
    em_shutdown();
}

/* The tutorial's GPU case on the mock device: a tensor copied to the device is not a leaf,
 * and the gradient lands on the CPU original. */
Test(devices, a_copied_tensor_is_not_a_leaf_and_the_gradient_lands_on_the_original)
{
    float ten = 10, twenty = 20, g = 0;
    em_opts o = {.device = dev("cpu"), .requires_grad = true};
    em_tensor *a = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1), &o);
    em_tensor *b = em_tensor_from_data(&twenty, EM_F32, EM_SHAPE(1), &o);
    em_tensor *am = em_to(a, dev("mock:0")), *bm = em_to(b, dev("mock:0"));
    cr_assert_not(em_is_leaf(am));
    cr_assert_str_eq(em_grad_fn_name(am), "ToCopyBackward0");
    em_tensor *G = em_add(am, bm);
    cr_assert_not_null(G, "%s", em_last_error());
    cr_assert_eq(em_backward(G, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_not_null(em_grad(a));
    cr_assert(em_device_eq(em_device_of(em_grad(a)), dev("cpu")));
    cr_assert_eq(em_copy_to_host(em_grad(a), &g, sizeof g), EM_OK);
    cr_assert_float_eq(g, 1.0f, 0);
    cr_assert_null(em_grad(am), "a non-leaf on the device keeps no grad");
    em_release(G);
    em_release(am);
    em_release(bm);
    em_release(a);
    em_release(b);
}

Test(devices, a_tensor_created_on_the_device_is_a_leaf_there)
{
    float ten = 10, g = 0;
    em_tensor *x = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1),
                                       &(em_opts){.device = dev("mock:1"), .requires_grad = true});
    cr_assert(em_is_leaf(x) && em_requires_grad(x));
    em_tensor *y = em_add(x, x);
    cr_assert_eq(em_backward(y, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(em_grad(x)), dev("mock:1")));
    cr_assert_eq(em_copy_to_host(em_grad(x), &g, sizeof g), EM_OK);
    cr_assert_float_eq(g, 2.0f, 0);
    char *s = em_tensor_str(em_grad(x));
    cr_assert_str_eq(s, "tensor([2.], device='mock:1')");
    free(s);
    em_release(y);
    em_release(x);
}

/* The tutorial's full GPU example (F = a * b, G = F * 2) on a device whose missing kernels
 * run through the CPU fallback: a.grad = 40, b.grad = 20, on the CPU originals. */
Test(devices_fallback, the_tutorial_gpu_case_through_the_fallback)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    setenv("EMBER_FALLBACK", "cpu", 1);
    cr_assert_eq(em_init(NULL), EM_OK, "em_init: %s", em_last_error());
    float ten = 10, twenty = 20, ga = 0, gb = 0;
    em_tensor *a = em_tensor_from_data(&ten, EM_F32, EM_SHAPE(1), &(em_opts){.requires_grad = true});
    em_tensor *b = em_tensor_from_data(&twenty, EM_F32, EM_SHAPE(1), &(em_opts){.requires_grad = true});
    em_tensor *am = em_to(a, dev("mock:0")), *bm = em_to(b, dev("mock:0"));
    em_tensor *F = em_mul(am, bm);
    em_tensor *G = em_mul_scalar(F, 2);
    cr_assert_not_null(G, "%s", em_last_error());
    cr_assert(em_device_eq(em_device_of(G), dev("mock:0")));
    cr_assert_eq(em_backward(G, NULL, false), EM_OK, "%s", em_last_error());
    cr_assert_eq(em_copy_to_host(em_grad(a), &ga, sizeof ga), EM_OK);
    cr_assert_eq(em_copy_to_host(em_grad(b), &gb, sizeof gb), EM_OK);
    cr_assert_float_eq(ga, 40.0f, 0);
    cr_assert_float_eq(gb, 20.0f, 0);
    cr_assert_null(em_grad(am));
    em_release(G);
    em_release(F);
    em_release(am);
    em_release(bm);
    em_release(a);
    em_release(b);
    em_shutdown();
}
