/* tests/data/test_mnist.c - the MNIST / FashionMNIST types: IDX files this test writes (gzip'd
 * through zlib, and plain), torchvision's folder layout, header checks, and the real
 * Fashion-MNIST where Debian's dataset-fashion-mnist package is installed. */
#include <zlib.h>

#include "helpers.h"

TestSuite(mnist, .init = emd_setup, .fini = emd_teardown);

#define FASHION_ROOT "/usr/share/datasets/fashion-mnist"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes an IDX file of bytes: magic 00 00 08 ndim, sizes, data (gzip'd when the name ends
 * in .gz). `extra_header` lets a test corrupt the magic. */
static void write_idx(const char *name, const uint8_t magic[4], int ndim, const uint32_t *dims,
                      const uint8_t *data, size_t n)
{
    uint8_t head[4 + 4 * 4];
    memcpy(head, magic, 4);
    for (int i = 0; i < ndim; i++)
        put_be32(head + 4 + 4 * i, dims[i]);
    const char *path = emd_path(name);
    size_t len = strlen(path);
    if (len > 3 && !strcmp(path + len - 3, ".gz")) {
        gzFile f = gzopen(path, "wb");
        cr_assert_not_null(f);
        gzwrite(f, head, (unsigned)(4 + 4 * ndim));
        if (n)
            gzwrite(f, data, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(path, "wb");
        cr_assert_not_null(f);
        fwrite(head, 1, (size_t)(4 + 4 * ndim), f);
        fwrite(data, 1, n, f);
        fclose(f);
    }
}

/* n images of 3 x 2 pixels, pixel k of image i = (i * 50 + k * 40) % 256; labels i % 10. */
static void write_set(const char *dir, const char *split, int n, const char *ext)
{
    uint8_t img[64 * 6], lab[64];
    for (int i = 0; i < n; i++) {
        for (int k = 0; k < 6; k++)
            img[i * 6 + k] = (uint8_t)((i * 50 + k * 40) % 256);
        lab[i] = (uint8_t)(i % 10);
    }
    char name[256];
    snprintf(name, sizeof name, "%s%s%s-images-idx3-ubyte%s", dir, *dir ? "/" : "", split, ext);
    write_idx(name, (const uint8_t[]){0, 0, 8, 3}, 3, (const uint32_t[]){(uint32_t)n, 3, 2}, img,
              (size_t)n * 6);
    snprintf(name, sizeof name, "%s%s%s-labels-idx1-ubyte%s", dir, *dir ? "/" : "", split, ext);
    write_idx(name, (const uint8_t[]){0, 0, 8, 1}, 1, (const uint32_t[]){(uint32_t)n}, lab,
              (size_t)n);
}

static void assert_image(em_dataset *d, int i, bool flat)
{
    em_tensor *x, *y;
    cr_assert_eq(em_dataset_get(d, i, &x, &y), EM_OK, "%s", em_last_error());
    if (flat)
        EMT_ASSERT_SHAPE(x, EM_SHAPE(6));
    else
        EMT_ASSERT_SHAPE(x, EM_SHAPE(1, 3, 2));
    EMT_ASSERT_DTYPE(x, EM_F32);
    double want[6];
    for (int k = 0; k < 6; k++)
        want[k] = (double)((float)((i * 50 + k * 40) % 256) / 255.0f);   /* ToTensor */
    EMT_ASSERT_VALUES(x, 0, want, 6);
    EMT_ASSERT_DTYPE(y, EM_I64);
    cr_assert_eq((int)em_item(y), i % 10);
    em_release(x);
    em_release(y);
}

Test(mnist, gzipped_idx_files_read_as_totensor_gives_them)
{
    write_set("", "train", 12, ".gz");
    write_set("", "t10k", 5, ".gz");
    em_dataset *d = emd_new(emd_fmt("MNIST(root=\"%s\")", emd_dir()));
    cr_assert_eq(em_dataset_len(d), 12);
    for (int i = 0; i < 12; i++)
        assert_image(d, i, false);
    em_sample_info info;
    cr_assert_eq(em_dataset_sample_info(d, &info), EM_OK);
    cr_assert_eq(info.num_classes, 10);
    em_dataset_free(d);
    d = emd_new(emd_fmt("MNIST(root=\"%s\", train=false, flatten=true)", emd_dir()));
    cr_assert_eq(em_dataset_len(d), 5);
    assert_image(d, 4, true);
    em_dataset_free(d);
}

Test(mnist, plain_files_in_torchvisions_layout_are_found)
{
    mkdir(emd_path("FashionMNIST"), 0700);
    mkdir(emd_path("FashionMNIST/raw"), 0700);
    write_set("FashionMNIST/raw", "t10k", 7, "");
    em_dataset *d = emd_new(emd_fmt("FashionMNIST(\"%s\", train=false)", emd_dir()));
    cr_assert_eq(em_dataset_len(d), 7);
    assert_image(d, 6, false);
    /* batches stack to (B, 1, 3, 2) */
    em_dataloader *dl = em_dataloader_new(d, 4, false, 0);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    EMT_ASSERT_SHAPE(x, EM_SHAPE(4, 1, 3, 2));
    EMT_ASSERT_SHAPE(y, EM_SHAPE(4));
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    em_dataset_free(d);
}

Test(mnist, a_missing_file_says_where_it_looked)
{
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          emd_fmt("MNIST: no train-images-idx3-ubyte(.gz) in '%s' (looked there "
                                  "and in its FashionMNIST/raw and MNIST/raw folders)",
                                  emd_dir()));
}

Test(mnist, bad_headers_and_sizes_are_reported_with_the_file)
{
    write_set("", "train", 4, ".gz");
    /* labels for 3 images */
    write_idx("train-labels-idx1-ubyte.gz", (const uint8_t[]){0, 0, 8, 1}, 1,
              (const uint32_t[]){3}, (const uint8_t[]){1, 2, 3}, 3);
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          emd_fmt("%s: 3 labels for 4 images in %s",
                                  emd_path("train-labels-idx1-ubyte.gz"),
                                  emd_path("train-images-idx3-ubyte.gz")));
    /* a wrong magic: the labels file where the images should be */
    write_idx("train-images-idx3-ubyte.gz", (const uint8_t[]){0, 0, 8, 1}, 1,
              (const uint32_t[]){4}, (const uint8_t[]){1, 2, 3, 4}, 4);
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          emd_fmt("%s: 1 dimensions, expected 3 (magic 0x00000801, expected "
                                  "0x00000803)",
                                  emd_path("train-images-idx3-ubyte.gz")));
    /* not IDX at all */
    emd_write("train-images-idx3-ubyte.gz", "hello, world");
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          emd_fmt("%s: not an IDX file (magic bytes 68 65 6c 6c",
                                  emd_path("train-images-idx3-ubyte.gz")));
    /* float data (type 0x0D) */
    write_idx("train-images-idx3-ubyte.gz", (const uint8_t[]){0, 0, 0x0D, 3}, 3,
              (const uint32_t[]){1, 1, 1}, (const uint8_t[]){0, 0, 0, 0}, 4);
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          "IDX element type 0x0d is not supported (MNIST files hold unsigned "
                          "bytes, type 0x08)");
    /* truncated pixels */
    write_idx("train-images-idx3-ubyte.gz", (const uint8_t[]){0, 0, 8, 3}, 3,
              (const uint32_t[]){4, 3, 2}, (const uint8_t[]){1, 2, 3}, 3);
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          emd_fmt("%s: truncated: expected 24 bytes of data, got 3",
                                  emd_path("train-images-idx3-ubyte.gz")));
    /* trailing bytes */
    write_idx("train-images-idx3-ubyte.gz", (const uint8_t[]){0, 0, 8, 3}, 3,
              (const uint32_t[]){1, 1, 2}, (const uint8_t[]){1, 2, 3}, 3);
    EMD_ASSERT_SPEC_FAILS(emd_fmt("MNIST(root=\"%s\")", emd_dir()),
                          "unexpected data after the 2 bytes the header announces");
}

Test(mnist, debians_fashion_mnist_reads_as_torchvision_gives_it, .init = emt_pin_cpu)
{
    struct stat st;
    if (stat(FASHION_ROOT "/train-images-idx3-ubyte.gz", &st) != 0)
        cr_skip_test("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)");
    em_dataset *d = emd_new("FashionMNIST(train=true)");   /* the default root is Debian's */
    cr_assert_eq(em_dataset_len(d), 60000);
    em_sample_info info;
    cr_assert_eq(em_dataset_sample_info(d, &info), EM_OK);
    cr_assert_eq(info.x_ndim, 3);
    cr_assert_eq(info.x_shape[0], 1);
    cr_assert_eq(info.x_shape[1], 28);
    cr_assert_eq(info.x_shape[2], 28);
    cr_assert_eq(info.num_classes, 10);
    /* torchvision: FashionMNIST(train=True)[0][1] == 9 (ankle boot), 6000 images per class */
    em_dataloader *dl = em_dataloader_new(d, 60000, false, 0);
    em_tensor *x, *y;
    cr_assert(em_dataloader_next(dl, &x, &y), "%s", em_last_error());
    int64_t *lab = em_data_ptr(y);
    cr_assert_eq(lab[0], 9);
    int64_t per[10] = {0};
    for (int i = 0; i < 60000; i++)
        per[lab[i]]++;
    for (int c = 0; c < 10; c++)
        cr_assert_eq(per[c], 6000, "class %d has %lld images", c, (long long)per[c]);
    float *px = em_data_ptr(x);
    float mn = 1, mx = 0;
    double sum = 0;
    for (int64_t i = 0; i < em_numel(x); i++) {
        mn = px[i] < mn ? px[i] : mn;
        mx = px[i] > mx ? px[i] : mx;
        sum += px[i];
    }
    cr_assert_eq(mn, 0.0f);
    cr_assert_eq(mx, 1.0f);
    /* the mean torchvision recipes normalise with: 0.2860 */
    cr_assert_float_eq(sum / (double)em_numel(x), 0.2860, 1e-3);
    em_release(x);
    em_release(y);
    em_dataloader_free(dl);
    em_dataset_free(d);
    d = emd_new("MNIST(train=false)");
    cr_assert_eq(em_dataset_len(d), 10000);
    em_dataset_free(d);
}
