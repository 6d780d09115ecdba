/* plugins/data/plugin.c - the data plugin: dataset types built from specs.
 *
 * Registers CSV (a delimited text file with a header, features picked by name, range or
 * index, a label column, scaling) and MNIST / FashionMNIST (the IDX files of MNIST-like
 * datasets, gzip'd or not, laid out as Debian's dataset-fashion-mnist package or torchvision
 * keep them). Each type parses its input into CPU tensors and hands them to the core with
 * em_dataset_from_tensors, so the data lives in the core's store and batches are collated
 * with memcpy; nothing refers back to this plugin once a dataset exists.
 */
#include "data_plugin.h"

em_tensor *em_data__cpu_empty(em_dtype dt, int ndim, const int64_t *shape)
{
    em_device cpu = em_device_parse("cpu");
    if (cpu.index < 0)
        return NULL;
    em_opts o = {.dtype = dt, .device = cpu};
    return em_empty(ndim, shape, &o);
}

static int data_init(em_registry *reg)
{
    int rc = em_data__register_csv(reg);
    if (rc == EM_OK)
        rc = em_data__register_mnist(reg);
    return rc;
}

EM_PLUGIN_DEFINE(
    "data", EMBER_VERSION_STRING,
    "dataset types: CSV (delimited text), MNIST and FashionMNIST (IDX files, gzip'd or not)",
    data_init, NULL)
