/* tests/core/test_dlpack.c - em_to_dlpack and em_from_dlpack: shared memory both ways, the
 * deleter contract, strides and byte offsets, the dtype table, devices and refused inputs.
 *
 * The mock device (tests/plugins/mockdev) declares DLPack's kDLExtDev, so a device other than
 * the CPU is covered on any machine; tests/interop/numpy_dlpack.py checks against NumPy.
 */
#include "ember/dlpack.h"
#include "helpers.h"

static void setup(void)
{
    setenv("EMBER_PLUGIN_PATH", MOCK_PLUGIN_DIR, 1);
    emt_setup();
    emt_pin_cpu();
}

TestSuite(dlpack, .init = setup, .fini = emt_teardown);

/* ---- a producer of our own, to watch the deleter ---------------------------------------- */

typedef struct producer {
    DLManagedTensor m;
    int64_t shape[EM_MAX_DIMS], strides[EM_MAX_DIMS];
    int deleted;   /* times the deleter ran */
} producer;

static void producer_deleter(DLManagedTensor *m) { ((producer *)m->manager_ctx)->deleted++; }

/* A CPU DLManagedTensor over data (not owned) with the given layout; strides NULL: compact. */
static void producer_init(producer *p, void *data, DLDataType dt, int ndim, const int64_t *shape,
                          const int64_t *strides, uint64_t byte_offset)
{
    memset(p, 0, sizeof *p);
    memcpy(p->shape, shape, (size_t)ndim * sizeof *shape);
    if (strides)
        memcpy(p->strides, strides, (size_t)ndim * sizeof *strides);
    p->m.dl_tensor = (DLTensor){.data = data, .device = {kDLCPU, 0}, .ndim = ndim, .dtype = dt,
                                .shape = p->shape, .strides = strides ? p->strides : NULL,
                                .byte_offset = byte_offset};
    p->m.manager_ctx = p;
    p->m.deleter = producer_deleter;
}

static const DLDataType f32 = {kDLFloat, 32, 1};

/* t[i][j] of a 2-D tensor, through Ember's own views. */
static double item2(em_tensor *t, int64_t i, int64_t j)
{
    em_tensor *r = em_select(t, 0, i), *e = em_select(r, 0, j);
    double v = em_item(e);
    em_release(e);
    em_release(r);
    return v;
}

/* ---- export ----------------------------------------------------------------------------- */

Test(dlpack, an_exported_tensor_describes_the_same_memory)
{
    em_tensor *t = emt_tensor(EM_F32, EM_SHAPE(2, 3), EMT_VALS(0, 1, 2, 3, 4, 5));
    DLManagedTensor *m = em_to_dlpack(t);
    cr_assert_not_null(m, "%s", em_last_error());
    const DLTensor *dl = &m->dl_tensor;
    cr_expect_eq(dl->data, em_data_ptr(t));
    cr_expect_eq(dl->device.device_type, kDLCPU);
    cr_expect_eq(dl->device.device_id, 0);
    cr_expect_eq(dl->ndim, 2);
    cr_expect(dl->shape[0] == 2 && dl->shape[1] == 3);
    cr_assert_not_null(dl->strides);
    cr_expect(dl->strides[0] == 3 && dl->strides[1] == 1);
    cr_expect(dl->dtype.code == kDLFloat && dl->dtype.bits == 32 && dl->dtype.lanes == 1);
    cr_expect_eq(dl->byte_offset, 0);
    /* writing through the consumer's view shows in the tensor */
    ((float *)dl->data)[4] = 40.0f;
    cr_expect_eq(item2(t, 1, 1), 40.0);
    m->deleter(m);
    em_release(t);
}

Test(dlpack, an_exported_tensor_outlives_its_release_until_the_deleter)
{
    em_device cpu = em_device_parse("cpu");
    size_t before = em_memory_allocated(cpu);
    em_tensor *t = em_full(EM_SHAPE(1024), 7.0, NULL);
    DLManagedTensor *m = em_to_dlpack(t);
    cr_assert_not_null(m, "%s", em_last_error());
    em_release(t);
    /* the consumer still reads valid memory (ASan would catch a use after free) */
    const float *v = m->dl_tensor.data;
    cr_expect_eq(v[0], 7.0f);
    cr_expect_eq(v[1023], 7.0f);
    cr_expect_geq(em_memory_allocated(cpu), before + 1024 * sizeof(float),
                  "the storage was freed before the deleter ran");
    m->deleter(m);
    cr_expect_eq(em_memory_allocated(cpu), before, "the deleter did not free the storage");
}

Test(dlpack, a_view_exports_its_offset_and_strides)
{
    em_tensor *t = emt_tensor(EM_F64, EM_SHAPE(3, 4), EMT_VALS(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11));
    em_tensor *tt = em_t(t), *v = em_narrow(tt, 0, 1, 2);   /* columns 1..2 as rows */
    cr_assert_not_null(v, "%s", em_last_error());
    DLManagedTensor *m = em_to_dlpack(v);
    cr_assert_not_null(m, "%s", em_last_error());
    const DLTensor *dl = &m->dl_tensor;
    cr_expect(dl->shape[0] == 2 && dl->shape[1] == 3);
    cr_expect(dl->strides[0] == 1 && dl->strides[1] == 4, "strides %lld, %lld",
              (long long)dl->strides[0], (long long)dl->strides[1]);
    const double *d = (const double *)((const char *)dl->data + dl->byte_offset);
    double want[2][3] = {{1, 5, 9}, {2, 6, 10}};
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            cr_expect_eq(d[i * dl->strides[0] + j * dl->strides[1]], want[i][j], "[%d][%d]", i, j);
    m->deleter(m);
    em_release(v);
    em_release(tt);
    em_release(t);
}

Test(dlpack, a_tensor_that_requires_grad_is_refused)
{
    em_opts o = {.requires_grad = true};
    em_tensor *t = em_ones(EM_SHAPE(2), &o);
    cr_assert_null(em_to_dlpack(t));
    cr_expect(strstr(em_last_error(), "em_detach"), "%s", em_last_error());
    em_tensor *d = em_detach(t);
    DLManagedTensor *m = em_to_dlpack(d);
    cr_expect_not_null(m, "%s", em_last_error());
    if (m)
        m->deleter(m);
    em_release(d);
    em_release(t);
}

/* ---- import ----------------------------------------------------------------------------- */

Test(dlpack, an_imported_tensor_shares_the_producers_memory)
{
    float data[6] = {0, 1, 2, 3, 4, 5};
    producer p;
    producer_init(&p, data, f32, 2, (int64_t[]){2, 3}, NULL, 0);
    em_tensor *t = em_from_dlpack(&p.m);
    cr_assert_not_null(t, "%s", em_last_error());
    EMT_ASSERT_SHAPE(t, EM_SHAPE(2, 3));
    cr_expect_eq(em_data_ptr(t), (void *)data);
    cr_expect_eq(em_requires_grad(t), false);
    em_tensor *r = em_mul_scalar_(t, 10.0);   /* in place, through Ember */
    cr_assert_not_null(r, "%s", em_last_error());
    em_release(r);
    cr_expect_eq(data[5], 50.0f, "the producer does not see Ember's write");
    data[0] = -1.0f;                          /* and the other way */
    cr_expect_eq(item2(t, 0, 0), -1.0);
    cr_expect_eq(p.deleted, 0);
    em_release(t);
    cr_expect_eq(p.deleted, 1);
}

Test(dlpack, the_deleter_runs_once_when_the_last_view_dies)
{
    float data[4] = {1, 2, 3, 4};
    producer p;
    producer_init(&p, data, f32, 2, (int64_t[]){2, 2}, NULL, 0);
    em_tensor *t = em_from_dlpack(&p.m);
    cr_assert_not_null(t, "%s", em_last_error());
    em_tensor *v = em_t(t);
    em_release(t);
    cr_expect_eq(p.deleted, 0, "the deleter ran while a view was alive");
    cr_expect_eq(item2(v, 1, 0), 2.0);
    em_release(v);
    cr_expect_eq(p.deleted, 1);
    em_shutdown();
    cr_expect_eq(p.deleted, 1, "the deleter ran again at shutdown");
    emt_setup();
}

Test(dlpack, strides_and_byte_offset_are_honoured_on_import)
{
    /* a 2x3 column-major view starting 2 floats into the buffer: element (i, j) at 2 + i + 2j */
    float data[8] = {-1, -1, 10, 11, 12, 13, 14, 15};
    producer p;
    producer_init(&p, data, f32, 2, (int64_t[]){2, 3}, (int64_t[]){1, 2}, 2 * sizeof(float));
    em_tensor *t = em_from_dlpack(&p.m);
    cr_assert_not_null(t, "%s", em_last_error());
    EMT_ASSERT_SHAPE(t, EM_SHAPE(2, 3));
    float got[6];
    cr_assert_eq(em_copy_to_host(t, got, sizeof got), EM_OK, "%s", em_last_error());
    float want[6] = {10, 12, 14, 11, 13, 15};
    cr_expect_arr_eq(got, want, sizeof want);
    em_release(t);
    cr_expect_eq(p.deleted, 1);
}

Test(dlpack, every_dtype_maps_both_ways)
{
    static const struct {
        em_dtype dt;
        uint8_t code, bits;
    } table[] = {{EM_F32, kDLFloat, 32}, {EM_F64, kDLFloat, 64}, {EM_F16, kDLFloat, 16},
                 {EM_BF16, kDLBfloat, 16}, {EM_I64, kDLInt, 64}, {EM_I32, kDLInt, 32},
                 {EM_U8, kDLUInt, 8}, {EM_BOOL, 6 /* kDLBool */, 8}};
    cr_assert_eq(sizeof table / sizeof table[0], EM_DTYPE_COUNT - 1, "a dtype is missing here");
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        em_opts o = {.dtype = table[i].dt};
        em_tensor *t = em_ones(EM_SHAPE(3), &o);
        DLManagedTensor *m = em_to_dlpack(t);
        cr_assert_not_null(m, "%s: %s", em_dtype_name(table[i].dt), em_last_error());
        cr_expect(m->dl_tensor.dtype.code == table[i].code &&
                      m->dl_tensor.dtype.bits == table[i].bits && m->dl_tensor.dtype.lanes == 1,
                  "%s exported as code %u bits %u", em_dtype_name(table[i].dt),
                  m->dl_tensor.dtype.code, m->dl_tensor.dtype.bits);
        em_tensor *u = em_from_dlpack(m);   /* round trip: u owns m now */
        cr_assert_not_null(u, "%s: %s", em_dtype_name(table[i].dt), em_last_error());
        cr_expect_eq(em_dtype_of(u), table[i].dt);
        em_tensor *e = em_select(u, 0, 2);
        cr_expect_eq(em_item(e), 1.0, "%s", em_dtype_name(table[i].dt));
        em_release(e);
        em_release(t);
        em_release(u);
    }
}

/* A refused import sets an error that contains `want` and leaves m to the caller. */
static void expect_refused(producer *p, const char *want)
{
    em_clear_error();
    cr_expect_null(em_from_dlpack(&p->m), "accepted; wanted an error with '%s'", want);
    cr_expect(strstr(em_last_error(), want), "error '%s' does not say '%s'", em_last_error(),
              want);
    cr_expect_eq(p->deleted, 0, "a refused import called the deleter");
}

Test(dlpack, bad_inputs_are_refused_with_a_reason_and_not_consumed)
{
    float data[16] = {0};
    producer p;
    cr_expect_null(em_from_dlpack(NULL));
    cr_expect(strstr(em_last_error(), "NULL"), "%s", em_last_error());

    producer_init(&p, data, (DLDataType){kDLFloat, 32, 4}, 1, (int64_t[]){2}, NULL, 0);
    expect_refused(&p, "lanes = 4");
    producer_init(&p, data, (DLDataType){kDLInt, 8, 1}, 1, (int64_t[]){2}, NULL, 0);
    expect_refused(&p, "int8");
    producer_init(&p, data, (DLDataType){kDLComplex, 64, 1}, 1, (int64_t[]){2}, NULL, 0);
    expect_refused(&p, "complex64");
    producer_init(&p, data, f32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}, NULL, 0);
    expect_refused(&p, "9 dims");
    producer_init(&p, data, f32, 1, (int64_t[]){-2}, NULL, 0);
    expect_refused(&p, "negative size");
    producer_init(&p, data + 3, f32, 1, (int64_t[]){3}, (int64_t[]){-1}, 0);
    expect_refused(&p, "negative");
    producer_init(&p, NULL, f32, 1, (int64_t[]){3}, NULL, 0);
    expect_refused(&p, "data is NULL");
    producer_init(&p, data, f32, 1, (int64_t[]){3}, NULL, 2);
    expect_refused(&p, "not aligned");
    producer_init(&p, data, f32, 1, (int64_t[]){3}, NULL, 0);
    p.m.dl_tensor.device = (DLDevice){kDLOpenCL, 0};
    expect_refused(&p, "kDLOpenCL");
    p.m.dl_tensor.device = (DLDevice){kDLVulkan, 0};
    expect_refused(&p, "kDLVulkan");
    p.m.dl_tensor.device = (DLDevice){kDLExtDev, 7};   /* the mock backend has devices 0, 1 */
    expect_refused(&p, "7");
}

Test(dlpack, an_empty_tensor_round_trips)
{
    em_tensor *t = em_zeros(EM_SHAPE(0, 3), NULL);
    DLManagedTensor *m = em_to_dlpack(t);
    cr_assert_not_null(m, "%s", em_last_error());
    em_tensor *u = em_from_dlpack(m);
    cr_assert_not_null(u, "%s", em_last_error());
    EMT_ASSERT_SHAPE(u, EM_SHAPE(0, 3));
    em_release(u);
    em_release(t);
}

/* ---- devices ---------------------------------------------------------------------------- */

Test(dlpack, a_device_tensor_goes_out_and_back_on_its_device)
{
    em_device mock1 = em_device_parse("mock:1");
    cr_assert_geq(mock1.index, 0, "%s", em_last_error());
    em_tensor *h = emt_tensor(EM_F32, EM_SHAPE(3), EMT_VALS(1, 2, 3));
    em_tensor *g = em_to(h, mock1);
    cr_assert_not_null(g, "%s", em_last_error());
    DLManagedTensor *m = em_to_dlpack(g);
    cr_assert_not_null(m, "%s", em_last_error());
    cr_expect_eq(m->dl_tensor.device.device_type, kDLExtDev);
    cr_expect_eq(m->dl_tensor.device.device_id, 1);
    /* the mock device's memory is host memory, so this test can look at it */
    cr_expect_eq(((const float *)m->dl_tensor.data)[2], 3.0f);
    em_tensor *u = em_from_dlpack(m);
    cr_assert_not_null(u, "%s", em_last_error());
    cr_expect(em_device_eq(em_device_of(u), mock1), "came back on another device");
    float got[3];
    cr_assert_eq(em_copy_to_host(u, got, sizeof got), EM_OK, "%s", em_last_error());
    cr_expect_arr_eq(got, ((float[]){1, 2, 3}), sizeof got);
    em_release(u);
    em_release(g);
    em_release(h);
}

Test(dlpack, an_opencl_tensor_is_refused_with_the_reason)
{
    if (!em_backend_available("opencl"))
        cr_skip_test("no usable OpenCL backend here: %s", em_backend_unavailable_reason("opencl"));
    em_tensor *t = em_ones(EM_SHAPE(2), &(em_opts){.device = em_device_parse("opencl")});
    cr_assert_not_null(t, "%s", em_last_error());
    cr_expect_null(em_to_dlpack(t));
    cr_expect(strstr(em_last_error(), "'opencl' cannot share") && strstr(em_last_error(), "em_cpu"),
              "%s", em_last_error());
    em_release(t);
}
