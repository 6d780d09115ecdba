/* tests/plugins/failing_init.c - registers a backend and an op, then fails its init: the
 * loader must report the message and drop both registrations. */
#include <ember/plugin.h>

static int count(void *ctx) { (void)ctx; return 1; }

static int info(void *ctx, int dev, em_device_info *out)
{
    (void)ctx; (void)dev; (void)out;
    return EM_OK;
}

static void *alloc(void *ctx, int dev, size_t n) { (void)ctx; (void)dev; (void)n; return NULL; }
static void dealloc(void *ctx, int dev, void *p, size_t n) { (void)ctx; (void)dev; (void)p; (void)n; }
static int stats(void *ctx, int dev, em_memory_stats *s) { (void)ctx; (void)dev; (void)s; return EM_OK; }
static int h2d(void *ctx, int dev, void *d, size_t o, const void *s, size_t n)
{
    (void)ctx; (void)dev; (void)d; (void)o; (void)s; (void)n;
    return EM_OK;
}
static int d2h(void *ctx, int dev, void *d, const void *s, size_t o, size_t n)
{
    (void)ctx; (void)dev; (void)d; (void)o; (void)s; (void)n;
    return EM_OK;
}

static const em_backend_ops ops = {
    .struct_size = sizeof(em_backend_ops), .name = "brokendev", .device_count = count,
    .device_info = info, .alloc = alloc, .free = dealloc, .memory_stats = stats,
    .copy_from_host = h2d, .copy_to_host = d2h};

static const em_op_def op = {.struct_size = sizeof(em_op_def), .name = "broken_op", .nin = 1,
                             .flags = EM_OP_SAME_AS_INPUT};

static int init(em_registry *reg)
{
    if (em_register_backend(reg, &ops, NULL) < 0 || em_register_op(reg, &op) < 0)
        return -1;
    return em_set_error(EM_ERR_PLUGIN, "failing_init: the device firmware is missing");
}

EM_PLUGIN_DEFINE("failing_init", "0",
    "fails on purpose", init, NULL)
