/* core/checkpoint.c - safetensors files for modules and optimizers.
 *
 * Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length,
 * a JSON header {"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ...,
 * "__metadata__": {...}}, then the tensors' bytes. The header is read and written by
 * core/json.c. Loading checks every key, dtype, shape and offset, and reads and converts
 * every value, before writing anything, so a bad file or a failed allocation leaves the
 * module (or optimizer) as it was; writing goes through core/atomic_file.c, so a crash or a
 * full disk never leaves half a checkpoint.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "internal.h"
#include "json.h"
#include "module_internal.h"

static const struct {
    em_dtype dt;
    const char *name;
} st_dtypes[] = {{EM_F32, "F32"}, {EM_F64, "F64"}, {EM_F16, "F16"}, {EM_BF16, "BF16"},
                 {EM_I64, "I64"}, {EM_I32, "I32"}, {EM_U8, "U8"},   {EM_BOOL, "BOOL"}};

static const char *st_name(em_dtype dt)
{
    for (size_t i = 0; i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (st_dtypes[i].dt == dt)
            return st_dtypes[i].name;
    return NULL;
}

static em_dtype st_dtype(const char *name)
{
    for (size_t i = 0; name && i < sizeof st_dtypes / sizeof st_dtypes[0]; i++)
        if (!strcmp(st_dtypes[i].name, name))
            return st_dtypes[i].dt;
    return EM_DTYPE_UNSPEC;
}

/* ---- writing ---------------------------------------------------------------------------------- */

typedef struct item {
    const char *name;
    em_tensor *t;
} item;

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The JSON header, keys sorted as the reference writer sorts them, "__metadata__" (meta:
 * nmeta key/value pairs, keys sorted) among them; NULL out of memory. */
static char *header_json(const item *items, int n, const char *const *meta, int nmeta)
{
    const char **keys = malloc((size_t)(n + 1) * sizeof *keys);
    uint64_t *begin = malloc((size_t)(n + 1) * sizeof *begin);
    if (!keys || !begin) {
        free(keys);
        free(begin);
        return NULL;
    }
    uint64_t off = 0;
    for (int i = 0; i < n; i++) {
        keys[i] = items[i].name;
        begin[i] = off;
        off += (uint64_t)items[i].t->numel * em_dtype_size(items[i].t->dtype);
    }
    keys[n] = "__metadata__";
    qsort(keys, (size_t)n + 1, sizeof *keys, cmp_names);
    em_strbuf sb = {0};
    em__sb_putc(&sb, '{');
    for (int k = 0; k <= n; k++) {
        em__sb_printf(&sb, k ? "," : "");
        em__json_put_string(&sb, keys[k]);
        em__sb_putc(&sb, ':');
        if (keys[k][0] == '_' && !strcmp(keys[k], "__metadata__")) {
            em__sb_putc(&sb, '{');
            for (int j = 0; j < nmeta; j++) {
                em__sb_printf(&sb, j ? "," : "");
                em__json_put_string(&sb, meta[2 * j]);
                em__sb_putc(&sb, ':');
                em__json_put_string(&sb, meta[2 * j + 1]);
            }
            em__sb_putc(&sb, '}');
            continue;
        }
        int i = 0;
        while (items[i].name != keys[k])
            i++;
        em_tensor *t = items[i].t;
        em__sb_printf(&sb, "{\"data_offsets\":[%llu,%llu],\"dtype\":\"%s\",\"shape\":[",
                      (unsigned long long)begin[i],
                      (unsigned long long)(begin[i] + (uint64_t)t->numel * em_dtype_size(t->dtype)),
                      st_name(t->dtype));
        for (int d = 0; d < t->ndim; d++)
            em__sb_printf(&sb, d ? ",%lld" : "%lld", (long long)t->shape[d]);
        em__sb_printf(&sb, "]}");
    }
    em__sb_putc(&sb, '}');
    free(keys);
    free(begin);
    return em__sb_take(&sb);
}

/* Writes the tensors and metadata (nmeta key/value pairs, keys sorted) to path atomically: on
 * any failure the old file stays as it was and the error says what failed. */
static int save_items(const char *path, const item *items, int n, const char *const *meta,
                      int nmeta)
{
    char *text = header_json(items, n, meta, nmeta);
    if (!text)
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory writing the header", path);
    /* Pad the header with spaces to 8 bytes, as the reference writer does. */
    size_t hlen = strlen(text), padded = (hlen + 7) / 8 * 8;
    em__afile f;
    int rc = em__afile_begin(&f, path);
    if (rc < 0) {
        free(text);
        return rc;
    }
    uint8_t len8[8];
    for (int i = 0; i < 8; i++)
        len8[i] = (uint8_t)((uint64_t)padded >> (8 * i));
    if ((rc = em__afile_write(&f, len8, 8)) == EM_OK &&
        (rc = em__afile_write(&f, text, hlen)) == EM_OK)
        rc = em__afile_write(&f, "        ", padded - hlen);
    free(text);
    for (int i = 0; rc == EM_OK && i < n; i++) {
        em_tensor *t = items[i].t;
        size_t bytes = (size_t)t->numel * em_dtype_size(t->dtype);
        void *buf = malloc(bytes ? bytes : 1);
        if (!buf)
            rc = em_set_error(EM_ERR_NOMEM, "%s: out of memory staging '%s' (%zu bytes); the "
                                            "old file is unchanged",
                              path, items[i].name, bytes);
        else if ((rc = em_copy_to_host(t, buf, bytes)) == EM_OK)
            rc = em__afile_write(&f, buf, bytes);
        free(buf);
    }
    if (rc == EM_OK)
        return em__afile_commit(&f);
    em__afile_abort(&f);
    return rc;
}

int em_module_save(const em_module *m, const char *path)
{
    if (!m || !path)
        return em__null_arg("em_module_save", m ? "path" : "module");
    int n = em_module_state_count(m);
    item *items = calloc((size_t)(n ? n : 1), sizeof *items);
    char *spec = em_module_str(m);
    if (!items || !spec) {
        free(items);
        free(spec);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory saving the module", path);
    }
    for (int i = 0; i < n; i++)
        items[i] = (item){em_module_state_name(m, i), em_module_state_tensor(m, i)};
    const char *meta[] = {"ember_module", spec, "format", "pt"};
    int rc = save_items(path, items, n, meta, 2);
    free(spec);
    free(items);
    return rc;
}

/* ---- reading ---------------------------------------------------------------------------------- */

typedef struct stfile {
    const char *path;        /* the file's path, or the caller's name for a buffer */
    const uint8_t *bytes;    /* the whole file */
    uint8_t *owned;          /* bytes, when read here (freed by st_close) */
    size_t size;
    em__json_doc *doc;
    const em__json *hdr;     /* the top-level object */
    const uint8_t *data;     /* start of the data section */
    size_t data_size;
} stfile;

static void st_close(stfile *f)
{
    em__json_free(f->doc);
    free(f->owned);
}

/* An error of open/read: running out of memory is said as such, not as an I/O error. */
static int io_error(const char *path, const char *what, int err)
{
    if (err == ENOMEM)
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory %s", path, what);
    return em_set_error(EM_ERR_IO, "%s: %s failed: %s", path, what,
                        err ? strerror(err) : "short read");
}

static int st_parse(stfile *f);

static int st_open(stfile *f, const char *path)
{
    memset(f, 0, sizeof *f);
    f->path = path;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOMEM ? io_error(path, "opening it", ENOMEM)
                               : em_set_error(EM_ERR_IO, "%s: cannot open: %s", path,
                                              strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || st.st_size < 8) {
        close(fd);
        return em_set_error(EM_ERR_IO, "%s: not a safetensors file (%lld bytes; truncated?)",
                            path, (long long)st.st_size);
    }
    f->size = (size_t)st.st_size;
    if (!(f->owned = malloc(f->size))) {
        close(fd);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory reading %zu bytes", path, f->size);
    }
    f->bytes = f->owned;
    size_t got = 0;
    while (got < f->size) {
        ssize_t r = read(fd, f->owned + got, f->size - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    int err = got < f->size ? errno : 0;
    close(fd);
    if (got != f->size) {
        st_close(f);
        return io_error(path, "reading it", err);
    }
    return st_parse(f);
}

/* A safetensors image the caller holds (borrowed for as long as f is open). */
static int st_borrow(stfile *f, const void *bytes, size_t size, const char *name)
{
    memset(f, 0, sizeof *f);
    f->path = name ? name : "(bytes)";
    if (!bytes)
        return em__null_arg("safetensors bytes", "bytes");
    if (size < 8)
        return em_set_error(EM_ERR_IO, "%s: not a safetensors image (%zu bytes; truncated?)",
                            f->path, size);
    f->bytes = bytes;
    f->size = size;
    return st_parse(f);
}

/* The header of f->bytes: its length, its JSON, where the data starts. */
static int st_parse(stfile *f)
{
    const char *path = f->path;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | f->bytes[i];
    if (hlen > f->size - 8 || hlen > 100u << 20) {
        st_close(f);
        return em_set_error(EM_ERR_IO, "%s: header length %llu does not fit a %zu-byte file "
                                       "(truncated or not safetensors)",
                            path, (unsigned long long)hlen, f->size);
    }
    f->doc = em__json_parse((const char *)f->bytes + 8, (size_t)hlen, path);
    if (!f->doc) {
        st_close(f);
        return em_last_status();
    }
    f->hdr = em__json_root(f->doc);
    if (f->hdr->kind != EM__JSON_OBJECT) {
        st_close(f);
        return em_set_error(EM_ERR_IO, "%s: bad header JSON at byte 8: not an object", path);
    }
    f->data = f->bytes + 8 + hlen;
    f->data_size = f->size - 8 - (size_t)hlen;
    return EM_OK;
}

/* The header's tensor keys, in file order (every key but "__metadata__"). */
#define ST_FOREACH_KEY(f, e)                                                                   \
    for (const em__json *e = em__json_first((f)->doc, (f)->hdr); e;                           \
         e = em__json_next((f)->doc, e))                                                       \
        if (strcmp(e->key, "__metadata__"))

/* Validates entry `name` and describes it; errors name the key. */
static int st_entry(const stfile *f, const char *name, em_dtype *dt, int *ndim, int64_t *shape,
                    const uint8_t **data)
{
    const em__json *e = em__json_get(f->doc, f->hdr, name);
    if (!e)
        return em_set_error(EM_ERR_IO, "%s: missing key '%s'", f->path, name);
    const em__json *jd = em__json_get(f->doc, e, "dtype"), *js = em__json_get(f->doc, e, "shape");
    const em__json *jo = em__json_get(f->doc, e, "data_offsets");
    *dt = st_dtype(em__json_str(jd));
    if (*dt == EM_DTYPE_UNSPEC)
        return em_set_error(EM_ERR_IO, "%s: key '%s': unsupported dtype '%s'", f->path, name,
                            em__json_str(jd) ? em__json_str(jd) : "?");
    if (!js || js->kind != EM__JSON_ARRAY || js->n > EM_MAX_DIMS || !jo ||
        jo->kind != EM__JSON_ARRAY || jo->n != 2)
        return em_set_error(EM_ERR_IO, "%s: key '%s': malformed shape or data_offsets", f->path,
                            name);
    *ndim = js->n;
    uint64_t n = 1;
    for (int d = 0; d < *ndim; d++) {
        const em__json *v = em__json_at(f->doc, js, d);
        if (v->kind != EM__JSON_INT || v->i < 0 || v->i > (1LL << 40) ||
            __builtin_mul_overflow(n, (uint64_t)v->i, &n))
            return em_set_error(EM_ERR_IO, "%s: key '%s': bad shape", f->path, name);
        shape[d] = v->i;
    }
    const em__json *b = em__json_at(f->doc, jo, 0), *en = em__json_at(f->doc, jo, 1);
    if (b->kind != EM__JSON_INT || en->kind != EM__JSON_INT || b->i < 0 || en->i < 0)
        return em_set_error(EM_ERR_IO, "%s: key '%s': bad data_offsets", f->path, name);
    uint64_t begin = (uint64_t)b->i, end = (uint64_t)en->i, bytes;
    if (end < begin || end > f->data_size ||
        __builtin_mul_overflow(n, (uint64_t)em_dtype_size(*dt), &bytes) || end - begin != bytes)
        return em_set_error(EM_ERR_IO,
                            "%s: key '%s': data_offsets [%llu, %llu] do not fit %llu elements "
                            "of %s in %zu data bytes (truncated or corrupted?)",
                            f->path, name, (unsigned long long)begin, (unsigned long long)end,
                            (unsigned long long)n, em_dtype_name(*dt), f->data_size);
    *data = f->data + begin;
    return EM_OK;
}

/* A tensor on `like`'s device, in its dtype, holding key `name` of the file (checked). */
static em_tensor *st_tensor_like(const stfile *f, const char *name, const em_tensor *like)
{
    em_dtype dt;
    int nd;
    int64_t shape[EM_MAX_DIMS];
    const uint8_t *data;
    if (st_entry(f, name, &dt, &nd, shape, &data) < 0)
        return NULL;
    em_opts host = {.device = em_device_parse("cpu")};
    em_tensor *h = em_tensor_from_data(data, dt, nd, shape, &host);
    em_tensor *d = h ? em_to(h, em_device_of(like)) : NULL;
    em_tensor *c = d ? em_to_dtype(d, em_dtype_of(like)) : NULL;
    em_release(h);
    em_release(d);
    return c;
}

static bool same_shape(const em_tensor *t, int nd, const int64_t *shape)
{
    return t->ndim == nd && !memcmp(t->shape, shape, (size_t)nd * sizeof *shape);
}

/* Checks that the file holds exactly the module's keys, with its shapes and compatible dtypes. */
static int module_check(em_module *m, const stfile *f)
{
    int n = em_module_state_count(m), rc = EM_OK;
    char b1[160], b2[160];
    /* 1. every key of the module is in the file, with a compatible dtype and the same shape */
    for (int i = 0; i < n && rc == EM_OK; i++) {
        const char *name = em_module_state_name(m, i);
        em_tensor *t = em_module_state_tensor(m, i);
        em_dtype dt;
        int nd;
        int64_t shape[EM_MAX_DIMS];
        const uint8_t *data;
        if ((rc = st_entry(f, name, &dt, &nd, shape, &data)) < 0)
            break;
        if (!same_shape(t, nd, shape))
            rc = em_set_error(EM_ERR_INVALID,
                              "%s: key '%s' has shape %s in the file but %s in the module "
                              "(a checkpoint of another architecture?)",
                              f->path, name, em__shape_str(nd, shape, b1, sizeof b1),
                              em__shape_str(t->ndim, t->shape, b2, sizeof b2));
        else if (dt != t->dtype && !(em_dtype_is_float(dt) && em_dtype_is_float(t->dtype)))
            rc = em_set_error(EM_ERR_INVALID, "%s: key '%s' is %s in the file but %s in the "
                                              "module",
                              f->path, name, em_dtype_name(dt), em_dtype_name(t->dtype));
    }
    /* 2. the file holds nothing the module lacks */
    ST_FOREACH_KEY(f, e)
    {
        if (rc < 0)
            break;
        bool known = false;
        for (int i = 0; i < n && !known; i++)
            known = !strcmp(em_module_state_name(m, i), e->key);
        if (!known)
            rc = em_set_error(EM_ERR_INVALID,
                              "%s: unexpected key '%s' (the module is %s; a checkpoint of "
                              "another architecture?)",
                              f->path, e->key, em_module_type(m));
    }
    return rc;
}

/* Loads the open image *fp into m, and closes it. All or nothing: every value is read and
 * converted to its parameter's device and dtype first (where memory can run out); only then
 * is each copied into place by the copy kernel, which allocates nothing. */
static int module_load(void *target, stfile *fp)
{
    em_module *m = target;
    stfile f = *fp;
    const char *path = f.path;
    int rc = EM_OK;
    int n = em_module_state_count(m);
    em_tensor **staged = NULL;
    if ((rc = module_check(m, &f)) == EM_OK && !(staged = calloc((size_t)n + 1, sizeof *staged)))
        rc = em_set_error(EM_ERR_NOMEM, "%s: out of memory loading %d tensors", path, n);
    bool prev = em_set_grad_enabled(false);
    for (int i = 0; i < n && rc == EM_OK; i++) {
        staged[i] = st_tensor_like(&f, em_module_state_name(m, i), em_module_state_tensor(m, i));
        if (!staged[i])
            rc = em_last_status();
    }
    for (int i = 0; i < n && rc == EM_OK; i++) {
        em_tensor *t = em_module_state_tensor(m, i);
        rc = em__run_kernel(EM__OP_COPY, 1, &staged[i], 1, &t, NULL);
        if (rc == EM_OK)
            atomic_fetch_add_explicit(&t->storage->version, 1, memory_order_relaxed);
    }
    em_set_grad_enabled(prev);
    for (int i = 0; staged && i < n; i++)
        em_release(staged[i]);
    free(staged);
    st_close(&f);
    return rc;
}

/* Opens the file at path, or (path NULL) borrows the image bytes[0..size), and hands it to
 * load, which closes it. The tensors loading creates and releases must not enter the caller's
 * scope (its end would release them a second time). */
static int load_with(int (*load)(void *, stfile *), void *target, const char *path,
                     const void *bytes, size_t size, const char *name)
{
    stfile f;
    int rc = path ? st_open(&f, path) : st_borrow(&f, bytes, size, name);
    if (rc < 0)
        return rc;
    em__api_depth++;
    rc = load(target, &f);
    em__api_depth--;
    return rc;
}

int em_module_load(em_module *m, const char *path)
{
    if (!m || !path)
        return em__null_arg("em_module_load", m ? "path" : "module");
    return load_with(module_load, m, path, NULL, 0, NULL);
}

int em_module_load_bytes(em_module *m, const void *bytes, size_t size, const char *name)
{
    if (!m)
        return em__null_arg("em_module_load_bytes", "module");
    return load_with(module_load, m, NULL, bytes, size, name);
}

/* ---- optimizers --------------------------------------------------------------------------------- */

const char *em__optimizer_param_name(const em_optimizer *o, int i);
bool em__optimizer_slot_at(const em_optimizer *o, int i, int k, const char **name,
                           em_tensor **t);
void em__optimizer_set_steps(em_optimizer *o, int64_t steps);
int em__optimizer_replace_slots(em_optimizer *o, int n, const int *param,
                                const char *const *name, em_tensor *const *t);

/* Keys: "state.<param name>.<slot>"; the step count and the lr go into the metadata. */
int em_optimizer_save(const em_optimizer *o, const char *path)
{
    if (!o || !path)
        return em__null_arg("em_optimizer_save", o ? "path" : "optimizer");
    int cap = em_optimizer_param_count(o) * 4 + 1, n = 0;
    item *items = calloc((size_t)cap, sizeof *items);
    char (*names)[300] = calloc((size_t)cap, sizeof *names);
    if (!items || !names) {
        free(items);
        free(names);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory saving the optimizer", path);
    }
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        const char *slot;
        em_tensor *t;
        for (int k = 0; em__optimizer_slot_at(o, i, k, &slot, &t); k++) {
            snprintf(names[n], sizeof names[n], "state.%s.%s", em__optimizer_param_name(o, i), slot);
            items[n].name = names[n];
            items[n++].t = t;
        }
    }
    char steps[32], lr[40];
    snprintf(steps, sizeof steps, "%lld", (long long)em_optimizer_steps(o));
    em_snprintf(lr, sizeof lr, "%.17g", em_optimizer_lr(o));
    char *spec = em_optimizer_str(o);
    const char *meta[] = {"ember_optimizer", spec, "lr", lr, "steps", steps};
    int rc = spec ? save_items(path, items, n, meta, 3)
                  : em_set_error(EM_ERR_NOMEM, "%s: out of memory saving the optimizer", path);
    free(spec);
    free(items);
    free(names);
    return rc;
}

/* The parameter that key "state.<param name>.<slot>" belongs to, or -1; *slot receives the
 * slot's name. The longest parameter name that fits wins: one name can be another's prefix
 * ("0.a" and "0.a.b" when a module has a parameter and a child of the same name). */
static int state_key_param(const em_optimizer *o, const char *key, const char **slot)
{
    int best = -1;
    size_t best_len = 0;
    if (strncmp(key, "state.", 6))
        return -1;
    for (int i = 0; i < em_optimizer_param_count(o); i++) {
        const char *pn = em__optimizer_param_name(o, i);
        size_t l = strlen(pn);
        if (!strncmp(key + 6, pn, l) && key[6 + l] == '.' && key[7 + l] &&
            (best < 0 || l > best_len)) {
            best = i;
            best_len = l;
        }
    }
    if (best >= 0)
        *slot = key + 7 + best_len;
    return best;
}

/* Loads the open image *fp into o, and closes it. Loading replaces the whole state, as
 * PyTorch's load_state_dict does: a parameter without state in the file has none afterwards.
 * Everything is checked and converted first, so on any error the optimizer is left as it
 * was. */
static int optimizer_load(void *target, stfile *fp)
{
    em_optimizer *o = target;
    stfile f = *fp;
    const char *path = f.path;
    int rc = EM_OK;
    const em__json *meta = em__json_get(f.doc, f.hdr, "__metadata__");
    const char *steps = em__json_str(em__json_get(f.doc, meta, "steps"));
    const char *lr = em__json_str(em__json_get(f.doc, meta, "lr"));
    char *end1 = NULL, *end2 = NULL;
    long long nsteps = steps ? strtoll(steps, &end1, 10) : -1;
    double lr_value = lr ? em_strtod(lr, &end2) : -1;
    if (!steps || !lr)
        rc = em_set_error(EM_ERR_IO, "%s: not an Ember optimizer checkpoint (no steps/lr "
                                     "metadata)",
                          path);
    else if (*end1 || nsteps < 0 || *end2 || !(lr_value >= 0))
        rc = em_set_error(EM_ERR_IO, "%s: bad metadata: steps \"%s\", lr \"%s\"", path, steps,
                          lr);
    size_t cap = (size_t)f.hdr->n;
    int n = 0, *which = calloc(cap ? cap : 1, sizeof *which);
    const char **slots = calloc(cap ? cap : 1, sizeof *slots);
    em_tensor **ts = calloc(cap ? cap : 1, sizeof *ts);
    if (rc == EM_OK && (!which || !slots || !ts))
        rc = em_set_error(EM_ERR_NOMEM, "%s: out of memory loading the optimizer", path);
    /* Validate every entry against the parameters and make its tensor on the parameter's
     * device, in the parameter's dtype. */
    ST_FOREACH_KEY(&f, e)
    {
        if (rc < 0)
            break;
        const char *key = e->key, *slot = NULL;
        int i = state_key_param(o, key, &slot);
        em_dtype dt;
        int nd;
        int64_t shape[EM_MAX_DIMS];
        const uint8_t *data;
        if (i < 0) {
            rc = em_set_error(EM_ERR_INVALID, "%s: key '%s' matches no parameter of the optimizer",
                              path, key);
        } else if ((rc = st_entry(&f, key, &dt, &nd, shape, &data)) < 0) {
            break;
        } else if (!same_shape(em_optimizer_param(o, i), nd, shape)) {
            rc = em_set_error(EM_ERR_INVALID, "%s: key '%s' does not have its parameter's shape",
                              path, key);
        } else if (!em_dtype_is_float(dt)) {
            rc = em_set_error(EM_ERR_INVALID, "%s: key '%s' is %s, not a float dtype", path, key,
                              em_dtype_name(dt));
        } else {
            em_tensor *c = st_tensor_like(&f, key, em_optimizer_param(o, i));
            if (!c) {
                rc = em_last_status();
                break;
            }
            which[n] = i;
            slots[n] = slot;
            ts[n++] = c;
        }
    }
    if (rc == EM_OK)
        rc = em__optimizer_replace_slots(o, n, which, slots, ts);
    if (rc == EM_OK) {
        em__optimizer_set_steps(o, nsteps);
        em_optimizer_set_lr(o, lr_value);
    }
    for (int k = 0; k < n; k++)
        em_release(ts[k]);
    free(which);
    free(slots);
    free(ts);
    st_close(&f);
    return rc;
}

int em_optimizer_load(em_optimizer *o, const char *path)
{
    if (!o || !path)
        return em__null_arg("em_optimizer_load", o ? "path" : "optimizer");
    return load_with(optimizer_load, o, path, NULL, 0, NULL);
}

int em_optimizer_load_bytes(em_optimizer *o, const void *bytes, size_t size, const char *name)
{
    if (!o)
        return em__null_arg("em_optimizer_load_bytes", "optimizer");
    return load_with(optimizer_load, o, NULL, bytes, size, name);
}
