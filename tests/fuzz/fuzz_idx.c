/* tests/fuzz/fuzz_idx.c - libFuzzer harness for IDX files and their gzip framing
 * (plugins/data/idx.c, through the MNIST dataset type). Input: one mode byte, a 2-byte
 * little-endian length L, then L bytes of the images file and the rest as the labels file.
 * Mode % 3: 0 plain files, 1 the harness gzips both (the fuzzer explores the IDX layout
 * inside real gzip), 2 the raw bytes under .gz names (the fuzzer explores gzip itself). */
#include <zlib.h>

#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

FUZZ_INITIALIZE_EMBER()

static void write_gz(const char *name, const uint8_t *p, size_t n)
{
    gzFile f = gzopen(fuzz_path(name), "wb");
    if (!f)
        abort();
    if (n)
        gzwrite(f, p, (unsigned)n);
    gzclose(f);
}

/* Issue 14, finding 7: plugins/data/idx.c multiplies the header's sizes without an overflow
 * check and allocates before comparing with the file's length. True for an IDX header whose
 * element count overflows or exceeds the bytes there are. */
static bool known_idx_oversize(const uint8_t *p, size_t n)
{
    if (!fuzz_avoid_known() || n < 4)
        return false;
    int ndim = p[3];
    if (n < 4 + 4 * (size_t)ndim)
        return false;
    uint64_t numel = 1;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *d = p + 4 + 4 * i;
        uint64_t v = (uint64_t)d[0] << 24 | (uint64_t)d[1] << 16 | (uint64_t)d[2] << 8 | d[3];
        if (v && numel > (uint64_t)INT64_MAX / v)   /* idx.c multiplies in int64_t */
            return true;
        numel *= v;
    }
    return numel > ((uint64_t)n << 3);
}

/* The first bytes of a gzip stream (up to cap), for the check above; 0 if it is not one. */
static size_t gunzip_head(const uint8_t *p, size_t n, uint8_t *out, size_t cap)
{
    z_stream zs = {0};
    if (inflateInit2(&zs, 16 + MAX_WBITS) != Z_OK)
        return 0;
    zs.next_in = (Bytef *)p;
    zs.avail_in = (uInt)n;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    inflate(&zs, Z_NO_FLUSH);
    size_t got = cap - zs.avail_out;
    inflateEnd(&zs);
    return got;
}

static bool known_finding(int mode, const uint8_t *p, size_t n)
{
    if (mode != 2)
        return known_idx_oversize(p, n);
    static uint8_t head[1 << 16];
    size_t got = gunzip_head(p, n, head, sizeof head);
    return got ? known_idx_oversize(head, got == sizeof head ? SIZE_MAX >> 4 : got)
               : known_idx_oversize(p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    int mode = data[0] % 3;
    size_t l = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (l > size)
        l = size;
    if (known_finding(mode, data, l) || known_finding(mode, data + l, size - l))
        return 0;
    static const char *const names[2][2] = {
        {"train-images-idx3-ubyte", "train-labels-idx1-ubyte"},
        {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"}};
    /* Only this input's form of each file may exist (the dataset prefers .gz). */
    for (int k = 0; k < 2; k++) {
        unlink(fuzz_path(names[k][0]));
        unlink(fuzz_path(names[k][1]));
    }
    if (mode == 1) {
        write_gz(names[1][0], data, l);
        write_gz(names[1][1], data + l, size - l);
    } else {
        fuzz_write(names[mode == 2][0], data, l);
        fuzz_write(names[mode == 2][1], data + l, size - l);
    }
    char spec[600];
    snprintf(spec, sizeof spec, "MNIST(root=\"%s\", flatten=%s)", fuzz_dir(),
             l % 2 ? "true" : "false");
    em_clear_error();
    em_dataset *d = em_dataset_new(spec);
    if (!d) {
        FUZZ_CHECK_MESSAGE("MNIST");
        return 0;
    }
    fuzz_read_items(d, 16);
    em_dataset_free(d);
    return 0;
}
