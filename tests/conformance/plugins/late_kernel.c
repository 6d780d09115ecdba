/* tests/conformance/plugins/late_kernel.c - an op plugin that registers a kernel for a backend
 * that loads after it ("mock", from tests/plugins/mockdev, put later on EMBER_PLUGIN_PATH),
 * and a conformance case for it. With LATE_KERNEL_FAIL=1 in the environment its init fails
 * after registering both, so that the test can check that nothing of it survives. */
#include <stdlib.h>
#include <string.h>

#include <ember/plugin.h>

/* add for float32 and float64 through strides (the mock backend's own add is float32 only) */
static int k_add(void *ctx, const em_kcall *c)
{
    (void)ctx;
    const em_ktensor *a = &c->in[0], *b = &c->in[1], *y = &c->out[0];
    for (int64_t k = 0; k < y->numel; k++) {
        int64_t ia = em_kt_offset(a, k), ib = em_kt_offset(b, k), iy = em_kt_offset(y, k);
        if (y->dtype == EM_F64)
            ((double *)y->buf)[iy] = ((const double *)a->buf)[ia] + ((const double *)b->buf)[ib];
        else
            ((float *)y->buf)[iy] = ((const float *)a->buf)[ia] + ((const float *)b->buf)[ib];
    }
    return EM_OK;
}

static int init(em_registry *reg)
{
    int rc = em_register_kernel(reg, "mock", "add", k_add, EM_KERNEL_STRIDED,
                                EM_DTYPE_BIT(EM_F32) | EM_DTYPE_BIT(EM_F64));
    if (rc < 0)
        return rc;
    static const em_attr none[1] = {{0}};
    em_conformance_case c = {.struct_size = sizeof c, .op = "add", .label = "late", .nin = 2,
                             .nattrs = 0, .attrs = none, .flags = EM_CONF_DIFFERENTIABLE};
    c.in[0].ndim = 2;
    c.in[0].shape[0] = 2;
    c.in[0].shape[1] = 3;
    c.in[1].ndim = 1;
    c.in[1].shape[0] = 3;
    if ((rc = em_register_conformance_case(reg, &c)) < 0)
        return rc;
    const char *fail = getenv("LATE_KERNEL_FAIL");
    if (fail && !strcmp(fail, "1"))
        return em_set_error(EM_ERR_PLUGIN, "late_kernel: failing on purpose");
    return EM_OK;
}

EM_PLUGIN_DEFINE(
    "late_kernel", "0", "a kernel for a backend that loads later", init, NULL)
