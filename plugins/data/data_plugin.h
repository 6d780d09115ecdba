/* plugins/data/data_plugin.h - what the data plugin's files share. */
#ifndef EMBER_PLUGINS_DATA_H
#define EMBER_PLUGINS_DATA_H

#include <ember/ember.h>
#include <ember/plugin.h>

int em_data__register_csv(em_registry *reg);
int em_data__register_mnist(em_registry *reg);

/* A new, uninitialised float32/int64 CPU tensor (the store the core will own). */
em_tensor *em_data__cpu_empty(em_dtype dt, int ndim, const int64_t *shape);

#endif
