/* tests/fuzz/fuzz_csv.c - libFuzzer harness for the CSV dataset (plugins/data/csv.c): the
 * first byte picks the spec's options (header, label column, delimiter, scaling, feature
 * selection, label dtype), the rest is the file. A dataset that builds is read item by item
 * and through a shuffled DataLoader; a failure must say why. */
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

FUZZ_INITIALIZE_EMBER()

static const char *const options[] = {
    "",
    ", header=false",
    ", delimiter=\";\"",
    ", delimiter=\"\\t\", standardize=true",
    ", scale=0.0625",
    ", features=[\"a\", \"b:c\"]",
    ", label_dtype=\"float32\"",
    ", features=[\"pixel0:pixel3\"], label=\"y\"",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *path = fuzz_write("data.csv", data + 1, size - 1);
    char spec[1024];
    snprintf(spec, sizeof spec, "CSV(path=\"%s\"%s)", path,
             options[data[0] % (sizeof options / sizeof options[0])]);
    em_clear_error();
    em_dataset *d = em_dataset_new(spec);
    if (!d) {
        FUZZ_CHECK_MESSAGE("CSV");
        return 0;
    }
    fuzz_read_items(d, 64);
    em_dataloader *dl = em_dataloader_new(d, 3, true, 1);
    em_tensor *x, *y;
    for (int b = 0; dl && b < 8 && em_dataloader_next(dl, &x, &y); b++) {
        em_release(x);
        em_release(y);
    }
    em_dataloader_free(dl);
    em_dataset_free(d);
    return 0;
}
