/* tests/plugins/selfnamed/selfnamed.c - a plugin that takes its name from its file name, so that
 * many copies of one file load as many distinct plugins (tests/core/test_loader.c copies it 20+
 * times). Each copy registers an op named after itself; a copy whose name starts with "oops"
 * also registers "ok_00", the op of the copy named ok_00, and so fails with the core's message
 * that names the plugin owning that op. It is not a model plugin: real plugins have a fixed name. */
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <ember/plugin.h>

static char name[64];

static int init(em_registry *reg)
{
    em_op_def op = {.struct_size = sizeof(em_op_def), .name = name, .nin = 1,
                    .flags = EM_OP_SAME_AS_INPUT};
    if (em_register_op(reg, &op) < 0)
        return -1;
    if (strncmp(name, "oops", 4) == 0) {
        op.name = "ok_00";
        if (em_register_op(reg, &op) < 0)
            return -1;
    }
    return EM_OK;
}

static em_plugin desc = EM_PLUGIN_DESCRIPTOR_INIT(name, "1", "named after its file", init, NULL);

__attribute__((visibility("default"))) const em_plugin *ember_plugin(void);
const em_plugin *ember_plugin(void)
{
    Dl_info info;
    if (!dladdr((void *)&desc, &info) || !info.dli_fname)
        return NULL;
    const char *base = strrchr(info.dli_fname, '/');
    base = base ? base + 1 : info.dli_fname;
    snprintf(name, sizeof name, "%.*s", (int)strcspn(base, "."), base);
    return &desc;
}
