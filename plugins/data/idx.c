/* plugins/data/idx.c - the MNIST and FashionMNIST dataset types: IDX files through zlib.
 *
 *     MNIST(train=true)      FashionMNIST(root="/data/fashion", train=false, flatten=true)
 *
 * What torchvision.datasets.FashionMNIST(root, train) followed by ToTensor() gives: images as
 * float32 in [0, 1] (byte / 255, computed in float32 as ToTensor does), shaped (1, 28, 28), or
 * (784,) with flatten=true; labels as int64. `root` defaults to where Debian's
 * dataset-fashion-mnist package installs the files (/usr/share/datasets/fashion-mnist); the
 * files are looked for in root itself and in torchvision's layout (root/FashionMNIST/raw,
 * root/MNIST/raw), as {train,t10k}-{images-idx3,labels-idx1}-ubyte, gzip'd (.gz) or not
 * (gzopen reads both).
 *
 * The IDX format (LeCun's): a big-endian header of two zero bytes, a type byte (0x08 for
 * unsigned bytes, the only type MNIST uses), the number of dimensions, then one 32-bit size per
 * dimension, then the data in C order. Headers, sizes and lengths are all checked; errors name
 * the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "data_plugin.h"

#define DEBIAN_FASHION_ROOT "/usr/share/datasets/fashion-mnist"
#define MAX_IDX_BYTES (INT64_C(1) << 36)   /* 64 GiB: far above any real IDX file */
#define PAYLOAD_CHUNK ((size_t)1 << 20)

static const em_param_decl mnist_params[] = {
    {"root", EM_PARAM_STRING, "\"" DEBIAN_FASHION_ROOT "\""},
    {"train", EM_PARAM_BOOL, "true"},
    {"flatten", EM_PARAM_BOOL, "false"},
};

typedef struct idx_file {
    uint8_t *data;       /* the payload */
    int ndim;
    int64_t dims[4];
    int64_t numel;
} idx_file;

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* The path of `base` (e.g. "train-images-idx3-ubyte") under root, gzip'd or not, in root or
 * torchvision's raw folders; an error listing where it looked otherwise. */
static int locate(const char *type, const char *root, const char *base, char *out, size_t size)
{
    static const char *const dirs[] = {"", "/FashionMNIST/raw", "/MNIST/raw"};
    static const char *const exts[] = {".gz", ""};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++)
        for (size_t k = 0; k < sizeof exts / sizeof exts[0]; k++) {
            snprintf(out, size, "%s%s/%s%s", root, dirs[i], base, exts[k]);
            if (exists(out))
                return EM_OK;
        }
    return em_set_error(EM_ERR_IO, "%s: no %s(.gz) in '%s' (looked there and in its "
                                   "FashionMNIST/raw and MNIST/raw folders)%s",
                        type, base, root,
                        strcmp(root, DEBIAN_FASHION_ROOT) ? ""
                                                          : "; on Debian: apt-get install "
                                                            "dataset-fashion-mnist");
}

/* The error of a failed gzread, naming the file. */
static int read_error(gzFile f, const char *path, const char *what)
{
    int zerr;
    const char *msg = gzerror(f, &zerr);
    return em_set_error(EM_ERR_IO, "%s: cannot read %s: %s", path, what,
                        zerr == Z_ERRNO ? strerror(errno) : msg);
}

/* Reads exactly n bytes; an error naming the file when the stream is short or corrupt. */
static int read_exact(gzFile f, const char *path, void *dst, size_t n, const char *what)
{
    size_t got = 0;
    while (got < n) {
        size_t want = n - got > (1u << 30) ? (1u << 30) : n - got;
        int r = gzread(f, (char *)dst + got, (unsigned)want);
        if (r < 0)
            return read_error(f, path, what);
        if (r == 0)
            break;
        got += (size_t)r;
    }
    if (got < n)
        return em_set_error(EM_ERR_IO, "%s: truncated: expected %zu bytes of %s, got %zu", path,
                            n, what, got);
    return EM_OK;
}

/* A plain (not gzip'd) file must hold the bytes its header announces: checked before
 * allocating, so a 20-byte header cannot reserve gigabytes. */
static int check_plain_size(gzFile f, const char *path, int64_t header, int64_t numel)
{
    struct stat st;
    if (!gzdirect(f) || stat(path, &st) != 0)
        return EM_OK;
    if (st.st_size - header != numel)
        return em_set_error(EM_ERR_IO, "%s: the header announces %lld bytes of data, the file "
                                       "holds %lld",
                            path, (long long)numel, (long long)(st.st_size - header));
    return EM_OK;
}

/* Reads the n-byte payload into *out (malloc'ed). A gzip stream's length is known only by
 * reading it, so the buffer grows with what actually arrives: a header that claims more than
 * the stream holds costs at most twice the real data, never the claimed size. */
static int read_payload(gzFile f, const char *path, int64_t n, uint8_t **out)
{
    size_t want = (size_t)n, cap = want < PAYLOAD_CHUNK ? want : PAYLOAD_CHUNK, got = 0;
    uint8_t *buf = malloc(cap ? cap : 1);
    int rc = buf ? EM_OK : EM_ERR_NOMEM;
    while (rc == EM_OK && got < want) {
        if (got == cap) {
            size_t grown = cap > want - cap ? want : cap * 2;
            uint8_t *b = realloc(buf, grown);
            if (!b) {
                rc = EM_ERR_NOMEM;
                break;
            }
            buf = b;
            cap = grown;
        }
        int r = gzread(f, buf + got, (unsigned)(cap - got < (1u << 30) ? cap - got : 1u << 30));
        if (r <= 0) {
            rc = r < 0 ? read_error(f, path, "data")
                       : em_set_error(EM_ERR_IO, "%s: truncated: expected %zu bytes of data, "
                                                 "got %zu",
                                      path, want, got);
            break;
        }
        got += (size_t)r;
    }
    if (rc == EM_ERR_NOMEM)
        em_set_error(EM_ERR_NOMEM, "%s: out of memory reading %zu bytes of data", path, want);
    if (rc < 0) {
        free(buf);
        return rc;
    }
    *out = buf;
    return EM_OK;
}

/* Reads an IDX file of unsigned bytes with `ndim` dimensions. */
static int read_idx(const char *path, int ndim, idx_file *out)
{
    memset(out, 0, sizeof *out);
    gzFile f = gzopen(path, "rb");
    if (!f)
        return em_set_error(EM_ERR_IO, "%s: cannot open: %s", path,
                            errno ? strerror(errno) : "out of memory");
    uint8_t h[4 + 4 * 4];
    int rc = read_exact(f, path, h, 4, "IDX header");
    if (rc < 0)
        goto done;
    if (h[0] != 0 || h[1] != 0) {
        rc = em_set_error(EM_ERR_IO, "%s: not an IDX file (magic bytes %02x %02x %02x %02x; an "
                                     "IDX file starts with 00 00)",
                          path, h[0], h[1], h[2], h[3]);
        goto done;
    }
    if (h[2] != 0x08) {
        rc = em_set_error(EM_ERR_IO, "%s: IDX element type 0x%02x is not supported (MNIST files "
                                     "hold unsigned bytes, type 0x08)",
                          path, h[2]);
        goto done;
    }
    if (h[3] != ndim) {
        rc = em_set_error(EM_ERR_IO, "%s: %d dimensions, expected %d (magic 0x%08x, expected "
                                     "0x%08x)",
                          path, h[3], ndim, (unsigned)(h[2] << 8 | h[3]),
                          (unsigned)(0x0800 | ndim));
        goto done;
    }
    if ((rc = read_exact(f, path, h + 4, 4 * (size_t)ndim, "IDX header")) < 0)
        goto done;
    out->ndim = ndim;
    out->numel = 1;
    for (int i = 0; i < ndim; i++) {
        const uint8_t *p = h + 4 + 4 * i;
        out->dims[i] = (int64_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
                                 (uint32_t)p[2] << 8 | p[3]);
        if (__builtin_mul_overflow(out->numel, out->dims[i], &out->numel) ||
            out->numel > MAX_IDX_BYTES) {
            rc = em_set_error(EM_ERR_IO, "%s: implausible sizes in the IDX header (more than "
                                         "%lld bytes)",
                              path, (long long)MAX_IDX_BYTES);
            goto done;
        }
    }
    if ((rc = check_plain_size(f, path, 4 + 4 * (int64_t)ndim, out->numel)) < 0 ||
        (rc = read_payload(f, path, out->numel, &out->data)) < 0)
        goto done;
    char extra;
    if (gzread(f, &extra, 1) > 0)
        rc = em_set_error(EM_ERR_IO, "%s: unexpected data after the %lld bytes the header "
                                     "announces",
                          path, (long long)out->numel);
done:
    gzclose(f);
    if (rc < 0) {
        free(out->data);
        out->data = NULL;
    }
    return rc;
}

static em_dataset *mnist_create(const char *type, const em_args *a)
{
    const char *root = em_args_str(a, "root");
    bool train = em_args_bool(a, "train"), flatten = em_args_bool(a, "flatten");
    const char *split = train ? "train" : "t10k";
    char ipath[4096], lpath[4096], base[64];
    idx_file img = {0}, lab = {0};
    em_tensor *x = NULL, *y = NULL;
    em_dataset *d = NULL;
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", split);
    if (locate(type, root, base, ipath, sizeof ipath) < 0)
        return NULL;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", split);
    if (locate(type, root, base, lpath, sizeof lpath) < 0)
        return NULL;
    if (read_idx(ipath, 3, &img) < 0 || read_idx(lpath, 1, &lab) < 0)
        goto done;
    int64_t n = img.dims[0], r = img.dims[1], c = img.dims[2];
    if (lab.dims[0] != n) {
        em_set_error(EM_ERR_IO, "%s: %lld labels for %lld images in %s", lpath,
                     (long long)lab.dims[0], (long long)n, ipath);
        goto done;
    }
    x = flatten ? em_data__cpu_empty(EM_F32, EM_SHAPE(n, r * c))
                : em_data__cpu_empty(EM_F32, EM_SHAPE(n, 1, r, c));
    y = em_data__cpu_empty(EM_I64, EM_SHAPE(n));
    if (!x || !y)
        goto done;
    float *xp = em_data_ptr(x);
    int64_t *yp = em_data_ptr(y);
    /* ToTensor: img.float().div(255) in float32 */
    for (int64_t i = 0; i < img.numel; i++)
        xp[i] = (float)img.data[i] / 255.0f;
    for (int64_t i = 0; i < n; i++)
        yp[i] = lab.data[i];
    d = em_dataset_from_tensors(x, y);
done:
    em_release(x);
    em_release(y);
    free(img.data);
    free(lab.data);
    return d;
}

static em_dataset *mnist_new(const em_args *a) { return mnist_create("MNIST", a); }
static em_dataset *fashion_new(const em_args *a) { return mnist_create("FashionMNIST", a); }

#define NPARAMS ((int)(sizeof mnist_params / sizeof mnist_params[0]))
static const em_dataset_type_ops mnist_type = {sizeof(em_dataset_type_ops), "MNIST", NPARAMS,
                                               mnist_params, mnist_new};
static const em_dataset_type_ops fashion_type = {sizeof(em_dataset_type_ops), "FashionMNIST",
                                                 NPARAMS, mnist_params, fashion_new};

int em_data__register_mnist(em_registry *reg)
{
    int rc = em_register_dataset(reg, &mnist_type);
    return rc < 0 ? rc : em_register_dataset(reg, &fashion_type);
}
