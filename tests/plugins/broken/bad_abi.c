/* tests/plugins/bad_abi.c - a plugin built for another ABI major: the loader must refuse it. */
#include <ember/plugin.h>

static int init(em_registry *reg)
{
    (void)reg;
    return EM_OK;
}

static const em_plugin desc = {sizeof(em_plugin), EMBER_ABI_MAJOR + 98, 0, "bad_abi", "0",
                               "built for ABI 99", init, NULL};

__attribute__((visibility("default"))) const em_plugin *ember_plugin(void);
const em_plugin *ember_plugin(void) { return &desc; }
