/* tests/plugins/newer_minor.c - needs a newer ABI minor than the core has: refused. */
#include <ember/plugin.h>

static int init(em_registry *reg)
{
    (void)reg;
    return EM_OK;
}

static const em_plugin desc = {sizeof(em_plugin), EMBER_ABI_MAJOR, EMBER_ABI_MINOR + 5,
                               "newer_minor", "0", "needs a newer core", init, NULL};

__attribute__((visibility("default"))) const em_plugin *ember_plugin(void);
const em_plugin *ember_plugin(void) { return &desc; }
