/* core/summary.c - em_module_summary: torchsummary's table.
 *
 * A forward pass on a zero input, under no-grad, records every module's output shape (all
 * modules but the root and Sequential containers, as torchsummary hooks them). Sizes follow
 * torchsummary's arithmetic: 4 bytes per value, per sample (batch dim shown as -1), the
 * forward/backward size counting each recorded output twice.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "module_internal.h"

typedef struct entry {
    const em_module *m;
    int ndim;
    int64_t shape[EM_MAX_DIMS];
} entry;

static _Thread_local struct {
    bool on;
    const em_module *root;
    entry *v;
    int n, cap;
} rec;

void em__summary_record(em_module *m, em_tensor *y)
{
    if (!rec.on || m == rec.root || !strcmp(m->ops->name, "Sequential"))
        return;
    if (rec.n == rec.cap) {
        int cap = rec.cap ? rec.cap * 2 : 32;
        entry *p = realloc(rec.v, (size_t)cap * sizeof *p);
        if (!p)
            return;
        rec.v = p;
        rec.cap = cap;
    }
    entry *e = &rec.v[rec.n++];
    e->m = m;
    e->ndim = y->ndim;
    memcpy(e->shape, y->shape, sizeof e->shape);
}

static int64_t own_params(const em_module *m, bool trainable_only)
{
    int64_t n = 0;
    for (int i = 0; i < m->nparams; i++)
        if (!trainable_only || m->params[i].t->requires_grad)
            n += m->params[i].t->numel;
    return n;
}

/* "1,234" */
static const char *commas(int64_t v, char *buf, size_t size)
{
    char digits[32];
    snprintf(digits, sizeof digits, "%lld", (long long)v);
    size_t n = strlen(digits), k = 0;
    for (size_t i = 0; i < n && k + 2 < size; i++) {
        if (i && (n - i) % 3 == 0)
            buf[k++] = ',';
        buf[k++] = digits[i];
    }
    buf[k] = '\0';
    return buf;
}

static char *summary(em_module *m, int ndim, const int64_t *input_shape)
{
    if (!m)
        return em__null_arg("em_module_summary", "m"), NULL;
    if (ndim < 1 || !em__shape_check("em_module_summary", ndim, input_shape))
        return ndim < 1 ? (em_set_error(EM_ERR_INVALID, "em_module_summary: the input shape "
                                                        "needs a batch dim"),
                           NULL)
                        : NULL;
    em_opts o = {.device = em_module_device(m)};
    em_tensor *x = em_zeros(ndim, input_shape, &o);
    if (!x)
        return NULL;
    bool was_training = m->training;
    em_module_train(m, false);
    rec.on = true;
    rec.root = m;
    rec.n = 0;
    bool prev = em_set_grad_enabled(false);
    em_tensor *y = em_forward(m, x);
    em_set_grad_enabled(prev);
    rec.on = false;
    em_module_train(m, was_training);
    em_release(x);
    if (!y) {
        free(rec.v);
        rec.v = NULL;
        rec.cap = 0;
        return NULL;
    }
    em_release(y);

    em_strbuf sb = {0};
    const char *rule = "----------------------------------------------------------------";
    const char *dbl = "================================================================";
    em__sb_printf(&sb, "%s\n%20s  %25s %15s\n%s\n", rule, "Layer (type)", "Output Shape", "Param #",
                  dbl);
    double total_output = 0;
    char b1[64], b2[160], b3[32];
    for (int i = 0; i < rec.n; i++) {
        const entry *e = &rec.v[i];
        snprintf(b1, sizeof b1, "%s-%d", e->m->ops->name, i + 1);
        size_t k = 0;
        double prod = 1;
        k += (size_t)snprintf(b2 + k, sizeof b2 - k, "[-1");
        for (int d = 1; d < e->ndim && k < sizeof b2; d++) {
            k += (size_t)snprintf(b2 + k, sizeof b2 - k, ", %lld", (long long)e->shape[d]);
            prod *= (double)e->shape[d];
        }
        if (k < sizeof b2)
            snprintf(b2 + k, sizeof b2 - k, "]");
        total_output += prod;
        em__sb_printf(&sb, "%20s  %25s %15s\n", b1, b2, commas(own_params(e->m, false), b3, sizeof b3));
    }
    int64_t total = em_module_numel(m, false), trainable = em_module_numel(m, true);
    double per_sample = 1;
    for (int d = 1; d < ndim; d++)
        per_sample *= (double)input_shape[d];
    double mb = 1024.0 * 1024.0;
    double in_mb = per_sample * 4 / mb, fb_mb = 2.0 * total_output * 4 / mb;
    double par_mb = (double)total * 4 / mb;
    em__sb_printf(&sb, "%s\nTotal params: %s\n", dbl, commas(total, b3, sizeof b3));
    em__sb_printf(&sb, "Trainable params: %s\n", commas(trainable, b3, sizeof b3));
    em__sb_printf(&sb, "Non-trainable params: %s\n%s\n", commas(total - trainable, b3, sizeof b3),
                  rule);
    em__sb_printf(&sb, "Input size (MB): %.2f\nForward/backward pass size (MB): %.2f\n", in_mb,
                  fb_mb);
    em__sb_printf(&sb, "Params size (MB): %.2f\nEstimated Total Size (MB): %.2f\n%s\n", par_mb,
                  in_mb + fb_mb + par_mb, rule);
    free(rec.v);
    rec.v = NULL;
    rec.n = rec.cap = 0;
    return em__sb_take(&sb);
}

/* The input and output of the pass are released here: they must not enter the caller's
 * scope, whose end would release them a second time. */
char *em_module_summary(em_module *m, int ndim, const int64_t *input_shape)
{
    em__api_depth++;
    char *r = summary(m, ndim, input_shape);
    em__api_depth--;
    return r;
}
