/* core/format.c - em_tensor_str/em_print: PyTorch's tensor repr, character for character.
 *
 * A port of torch/_tensor_str.py with the default print options (precision 4, threshold 1000,
 * edgeitems 3, linewidth 80, sci_mode chosen automatically). One _Formatter decides the
 * notation and the column width from the elements that will be printed, then the recursion
 * lays them out as PyTorch does. Elements are read through em_copy_to_host, so any device
 * prints. Not here: complex dtypes, named tensors, sparse layouts, user print options.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define PRINT_PRECISION 4
#define PRINT_THRESHOLD 1000
#define PRINT_EDGEITEMS 3
#define PRINT_LINEWIDTH 80

/* The tensor being printed (a contiguous host copy) and its _Formatter state. */
typedef struct fmt_ctx {
    const unsigned char *data;
    size_t esize;
    em_dtype dtype;
    int ndim;
    const int64_t *shape;
    int64_t strides[EM_MAX_DIMS];     /* contiguous, in elements */
    bool summarize;                   /* numel > threshold: show edgeitems per dim */
    /* _Formatter */
    bool floating;
    bool int_mode;                    /* every finite nonzero value is integral: "2." */
    bool sci_mode;
    int max_width;
    /* statistics over the finite nonzero values (floats only) */
    int64_t nfinite;
    double amin, amax;
    em_strbuf *sb;
} fmt_ctx;

/* ---- elements ------------------------------------------------------------------- */

static int64_t elem_int(const fmt_ctx *c, int64_t i)
{
    const unsigned char *p = c->data + (size_t)i * c->esize;
    switch (c->dtype) {
    case EM_I64: {
        int64_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case EM_I32: {
        int32_t v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case EM_U8:
        return p[0];
    case EM_BOOL:
        return p[0] != 0;
    default:
        EM_ASSERT(!"elem_int: not an integer dtype");
        return 0;
    }
}

/* Floats as double, as tensor.tolist() gives them (f16 and bf16 go through f32 first, as
 * _tensor_str's self.float() does). */
static double elem_float(const fmt_ctx *c, int64_t i)
{
    const unsigned char *p = c->data + (size_t)i * c->esize;
    switch (c->dtype) {
    case EM_F32: {
        float v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case EM_F64: {
        double v;
        memcpy(&v, p, sizeof v);
        return v;
    }
    case EM_F16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return em_f16_to_f32(v);
    }
    case EM_BF16: {
        uint16_t v;
        memcpy(&v, p, sizeof v);
        return em_bf16_to_f32(v);
    }
    default:
        EM_ASSERT(!"elem_float: not a float dtype");
        return 0;
    }
}

/* ---- visiting the printed elements ---------------------------------------------- */

typedef void (*visit_fn)(fmt_ctx *c, int64_t flat);

/* Calls fn on every element that will be printed, in order: all of them, or when summarising
 * the first and last edgeitems of every dim longer than 2 * edgeitems (get_summarized_data). */
static void visit(fmt_ctx *c, int dim, int64_t base, visit_fn fn)
{
    if (dim == c->ndim) {
        fn(c, base);
        return;
    }
    int64_t n = c->shape[dim];
    for (int64_t i = 0; i < n; i++) {
        if (c->summarize && n > 2 * PRINT_EDGEITEMS && i == PRINT_EDGEITEMS)
            i = n - PRINT_EDGEITEMS;
        visit(c, dim + 1, base + i * c->strides[dim], fn);
    }
}

/* ---- _Formatter ------------------------------------------------------------------- */

/* The text of one float before padding: nan/inf as Python writes them (never "-nan"). */
static int float_text(const fmt_ctx *c, double v, char *buf, size_t size)
{
    if (isnan(v))
        return snprintf(buf, size, "nan");
    if (isinf(v))
        return snprintf(buf, size, v < 0 ? "-inf" : "inf");
    if (c->sci_mode)
        return em_snprintf(buf, size, "%.*e", PRINT_PRECISION, v);
    if (c->int_mode)
        return em_snprintf(buf, size, "%.0f.", v);
    return em_snprintf(buf, size, "%.*f", PRINT_PRECISION, v);
}

static int int_text(const fmt_ctx *c, int64_t v, char *buf, size_t size)
{
    if (c->dtype == EM_BOOL)
        return snprintf(buf, size, "%s", v ? "True" : "False");
    return snprintf(buf, size, "%lld", (long long)v);
}

static void stats_float(fmt_ctx *c, int64_t i)
{
    double v = elem_float(c, i);
    if (!isfinite(v) || v == 0)
        return;
    double a = fabs(v);
    if (c->nfinite == 0 || a < c->amin)
        c->amin = a;
    if (c->nfinite == 0 || a > c->amax)
        c->amax = a;
    c->nfinite++;
    if (v != ceil(v))
        c->int_mode = false;
}

static void widen(fmt_ctx *c, int len)
{
    if (len > c->max_width)
        c->max_width = len;
}

static void width_float(fmt_ctx *c, int64_t i)
{
    double v = elem_float(c, i);
    if (!isfinite(v) || v == 0)
        return;
    char buf[512];
    widen(c, float_text(c, v, buf, sizeof buf));
}

static void width_int(fmt_ctx *c, int64_t i)
{
    char buf[32];
    widen(c, int_text(c, elem_int(c, i), buf, sizeof buf));
}

/* _Formatter.__init__: the notation and the column width, from the printed elements. For
 * floats only finite nonzero values count; in int_mode the width includes the trailing '.'
 * (float_text appends it, as Python's len(value_str) + 1 does). */
static void formatter_init(fmt_ctx *c)
{
    c->floating = em_dtype_is_float(c->dtype);
    c->int_mode = true;
    c->sci_mode = false;
    c->max_width = 1;
    if (!c->floating) {
        visit(c, 0, 0, width_int);
        return;
    }
    visit(c, 0, 0, stats_float);
    if (c->nfinite == 0)
        return;
    c->sci_mode = c->amax / c->amin > 1000.0 || c->amax > 1.0e8 ||
                  (!c->int_mode && c->amin < 1.0e-4);
    visit(c, 0, 0, width_float);
}

/* _Formatter.format: right-aligned in the common width. */
static void put_value(fmt_ctx *c, int64_t i)
{
    char buf[512];
    int len = c->floating ? float_text(c, elem_float(c, i), buf, sizeof buf)
                          : int_text(c, elem_int(c, i), buf, sizeof buf);
    em__sb_printf(c->sb, "%*s%s", len < c->max_width ? c->max_width - len : 0, "", buf);
}

/* ---- layout ------------------------------------------------------------------------- */

static void put_spaces(em_strbuf *sb, int n)
{
    em__sb_printf(sb, "%*s", n, "");
}

/* _vector_str: as many elements per line as fit in linewidth - indent; a summarised row
 * gets " ..." as one more element. */
static void put_vector(fmt_ctx *c, int64_t base, int indent)
{
    int64_t n = c->shape[c->ndim - 1], stride = c->strides[c->ndim - 1];
    int element_length = c->max_width + 2;
    int per_line = (PRINT_LINEWIDTH - indent) / element_length;
    if (per_line < 1)
        per_line = 1;
    bool cut = c->summarize && n > 2 * PRINT_EDGEITEMS;
    int64_t items = cut ? 2 * PRINT_EDGEITEMS + 1 : n;
    em__sb_putc(c->sb, '[');
    for (int64_t k = 0; k < items; k++) {
        if (k > 0 && k % per_line == 0) {
            em__sb_printf(c->sb, ",\n");
            put_spaces(c->sb, indent + 1);
        } else if (k > 0) {
            em__sb_printf(c->sb, ", ");
        }
        int64_t i = k;
        if (cut && k == PRINT_EDGEITEMS) {
            em__sb_printf(c->sb, " ...");
            continue;
        }
        if (cut && k > PRINT_EDGEITEMS)
            i = n - (items - k);
        put_value(c, base + i * stride);
    }
    em__sb_putc(c->sb, ']');
}

/* _tensor_str_with_formatter: sub-tensors separated by ",", dim - 1 newlines and an indent
 * one deeper; a summarised dim shows "..." in place of its middle. */
static void put_tensor(fmt_ctx *c, int dim, int64_t base, int indent)
{
    int rest = c->ndim - dim;
    if (rest == 0) {
        put_value(c, base);
        return;
    }
    if (rest == 1) {
        put_vector(c, base, indent);
        return;
    }
    int64_t n = c->shape[dim];
    bool cut = c->summarize && n > 2 * PRINT_EDGEITEMS;
    em__sb_putc(c->sb, '[');
    for (int64_t i = 0; i < n; i++) {
        if (i > 0) {
            em__sb_putc(c->sb, ',');
            for (int k = 0; k < rest - 1; k++)
                em__sb_putc(c->sb, '\n');
            put_spaces(c->sb, indent + 1);
        }
        if (cut && i == PRINT_EDGEITEMS) {
            em__sb_printf(c->sb, "...,");
            for (int k = 0; k < rest - 1; k++)
                em__sb_putc(c->sb, '\n');
            put_spaces(c->sb, indent + 1);
            i = n - PRINT_EDGEITEMS;
        }
        put_tensor(c, dim + 1, base + i * c->strides[dim], indent + 1);
    }
    em__sb_putc(c->sb, ']');
}

/* ---- suffixes ------------------------------------------------------------------------ */

/* The autograd suffix: "grad_fn=<AddBackward0>" once autograd records nodes; for now only
 * "requires_grad=True" on a tensor that requires grad. NULL when there is none. */
/* PyTorch shows grad_fn=<Name> for results with a history, else requires_grad=True. */
static const char *format_grad_suffix(const em_tensor *t, char *buf, size_t size)
{
    const char *fn = em_grad_fn_name(t);
    if (fn)
        snprintf(buf, size, "grad_fn=<%s>", fn);
    else if (t->requires_grad)
        snprintf(buf, size, "requires_grad=True");
    else
        return NULL;
    return buf;
}

/* _add_suffixes: ", suffix" on the same line while it fits in linewidth, else on a new line
 * indented like the contents. PyTorch measures the last line as its length + 2. */
static void add_suffix(em_strbuf *sb, const char *suffix, int indent, size_t *last_len)
{
    size_t len = strlen(suffix);
    if (*last_len + len + 2 > PRINT_LINEWIDTH) {
        em__sb_printf(sb, ",\n%*s%s", indent, "", suffix);
        *last_len = (size_t)indent + len;
    } else {
        em__sb_printf(sb, ", %s", suffix);
        *last_len += len + 2;
    }
}

/* The device text as PyTorch's str(device) gives it ("cuda:0"), or "" for the CPU. */
static void device_suffix(const em_tensor *t, char *buf, size_t size)
{
    buf[0] = '\0';
    em_device d = em_device_of(t);
    em_backend *be = em__backend(d.backend);
    if (be && be->ops && be->ops->name && strcmp(be->ops->name, "cpu") == 0)
        return;
    char dev[64];
    em_device_str(d, dev, sizeof dev);
    if (strchr(dev, ':'))
        snprintf(buf, size, "device='%s'", dev);
    else
        snprintf(buf, size, "device='%s:%d'", dev, (int)d.index);
}

static void put_suffixes(const em_tensor *t, em_strbuf *sb, int indent)
{
    /* len(tensor_str) - tensor_str.rfind("\n") + 1, with rfind giving -1 for no newline */
    size_t last_len = sb->len + 2;
    for (size_t k = sb->len; !sb->failed && k > 0; k--)
        if (sb->data[k - 1] == '\n') {
            last_len = sb->len - (k - 1) + 1;
            break;
        }

    char buf[160];
    device_suffix(t, buf, sizeof buf);
    if (buf[0])
        add_suffix(sb, buf, indent, &last_len);

    em_dtype dt = t->dtype;
    if (t->numel == 0) {
        /* An empty tensor shows its shape unless 1-D, and any dtype but the default float
         * (there are no elements to tell an integer tensor by). */
        if (t->ndim != 1) {
            int n = snprintf(buf, sizeof buf, "size=(");
            for (int d = 0; d < t->ndim && n < (int)sizeof buf; d++)
                n += snprintf(buf + n, sizeof buf - (size_t)n, "%s%lld", d ? ", " : "",
                              (long long)t->shape[d]);
            if (n < (int)sizeof buf)
                snprintf(buf + n, sizeof buf - (size_t)n, ")");
            add_suffix(sb, buf, indent, &last_len);
        }
        if (dt != em__default_float()) {
            snprintf(buf, sizeof buf, "dtype=torch.%s", em_dtype_name(dt));
            add_suffix(sb, buf, indent, &last_len);
        }
    } else if (dt != em__default_float() && dt != EM_I64 && dt != EM_BOOL) {
        snprintf(buf, sizeof buf, "dtype=torch.%s", em_dtype_name(dt));
        add_suffix(sb, buf, indent, &last_len);
    }

    const char *grad = format_grad_suffix(t, buf, sizeof buf);
    if (grad)
        add_suffix(sb, grad, indent, &last_len);
}

/* ---- public -------------------------------------------------------------------------- */

char *em_tensor_str(const em_tensor *t)
{
    EM_CHECK_T("em_tensor_str", t);
    static const char prefix[] = "tensor(";
    const int indent = (int)sizeof prefix - 1;
    em_strbuf sb = {0};
    unsigned char *data = NULL;

    fmt_ctx c = {0};
    c.dtype = t->dtype;
    c.ndim = t->ndim;
    c.shape = t->shape;
    c.esize = em_dtype_size(t->dtype);
    c.sb = &sb;
    em__contiguous_strides(t->ndim, t->shape, c.strides);

    em__sb_printf(&sb, "%s", prefix);
    if (t->numel == 0) {
        em__sb_printf(&sb, "[]");
    } else {
        size_t nbytes = (size_t)t->numel * c.esize;
        data = malloc(nbytes);
        if (!data)
            goto nomem;
        if (em_copy_to_host(t, data, nbytes) != EM_OK)
            goto fail;                        /* its error stays */
        c.data = data;
        c.summarize = t->numel > PRINT_THRESHOLD;
        formatter_init(&c);
        put_tensor(&c, 0, 0, indent);
    }
    put_suffixes(t, &sb, indent);
    em__sb_putc(&sb, ')');
    free(data);
    char *s = em__sb_take(&sb);
    if (!s)
        em_set_error(EM_ERR_NOMEM, "em_tensor_str: out of memory");
    return s;

nomem:
    em_set_error(EM_ERR_NOMEM, "em_tensor_str: out of memory");
fail:
    free(data);
    free(em__sb_take(&sb));
    return NULL;
}

void em_print(const em_tensor *t)
{
    char *s = em_tensor_str(t);
    if (!s) {
        fprintf(stderr, "ember: error: %s\n", em_last_error());
        return;
    }
    fputs(s, stdout);
    fputc('\n', stdout);
    free(s);
}
