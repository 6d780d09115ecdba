/* core/data_scaler.c - standardisation of an in-memory dataset's features, (x - mean) / std,
 * with statistics given or fitted on a training split (population std in float64, as
 * sklearn's StandardScaler), so that a test split is scaled with the training statistics.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"

/* ---- standardisation ---------------------------------------------------------------------------- */

static int scaler_target(const char *fn, const em_dataset *d)
{
    if (!d)
        return em__null_arg(fn, "d");
    const em__dsource *s = d->src;
    if (s->kind != EM__SRC_STORE)
        return em_set_error(EM_ERR_INVALID, "%s: %s is not an in-memory dataset (standardise "
                                            "inside get_item instead)",
                            fn, s->repr);
    if (s->x->dtype != EM_F32 && s->x->dtype != EM_F64)
        return em_set_error(EM_ERR_INVALID, "%s: %s has %s features; standardisation needs "
                                            "float32 or float64",
                            fn, s->repr, em_dtype_name(s->x->dtype));
    return EM_OK;
}

static double raw_at(const em__dsource *s, int64_t row, int64_t j)
{
    const char *p = (const char *)em__host_ptr(s->x) + (size_t)row * s->x_row;
    return s->x->dtype == EM_F32 ? ((const float *)p)[j] : ((const double *)p)[j];
}

int em_dataset_set_scaler(em_dataset *d, const float *mean, const float *std, int64_t n)
{
    const char *fn = "em_dataset_set_scaler";
    int rc = scaler_target(fn, d);
    if (rc < 0)
        return rc;
    if (!mean || !std)
        return em__null_arg(fn, !mean ? "mean" : "std");
    em__dsource *s = d->src;
    if (n != s->nfeat)
        return em_set_error(EM_ERR_INVALID, "%s: %lld statistics for samples of %lld elements",
                            fn, (long long)n, (long long)s->nfeat);
    for (int64_t j = 0; j < n; j++)
        if (!isfinite(mean[j]) || !isfinite(std[j]) || !(std[j] > 0))
            return em_set_error(EM_ERR_INVALID, "%s: feature %lld has mean %g and std %g; need "
                                                "finite values and std > 0",
                                fn, (long long)j, (double)mean[j], (double)std[j]);
    size_t stats = (size_t)(n ? n : 1) * sizeof(float);
    float *m = malloc(stats), *sd = malloc(stats);
    void *xs = s->x_scaled ? s->x_scaled : malloc(s->x_row * (size_t)(s->n ? s->n : 1));
    if (!m || !sd || !xs) {
        free(m);
        free(sd);
        if (xs != s->x_scaled)
            free(xs);
        return em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
    }
    memcpy(m, mean, (size_t)n * sizeof *m);
    memcpy(sd, std, (size_t)n * sizeof *sd);
    /* In the features' dtype, from the float statistics: refitting and set_scaler with saved
     * statistics give the same bits. */
    for (int64_t i = 0; i < s->n; i++) {
        char *row = (char *)xs + (size_t)i * s->x_row;
        for (int64_t j = 0; j < n; j++) {
            if (s->x->dtype == EM_F32)
                ((float *)row)[j] = ((float)raw_at(s, i, j) - m[j]) / sd[j];
            else
                ((double *)row)[j] = (raw_at(s, i, j) - (double)m[j]) / (double)sd[j];
        }
    }
    free(s->mean);
    free(s->std);
    s->mean = m;
    s->std = sd;
    s->x_scaled = xs;
    return EM_OK;
}

int em_dataset_fit_scaler(em_dataset *d, const em_dataset *train)
{
    const char *fn = "em_dataset_fit_scaler";
    int rc = scaler_target(fn, d);
    if (rc < 0 || (rc = scaler_target(fn, train)) < 0)
        return rc;
    const em__dsource *t = train->src;
    int64_t nf = d->src->nfeat;
    if (t->nfeat != nf)
        return em_set_error(EM_ERR_INVALID, "%s: the training data has samples of %lld elements, "
                                            "the dataset %lld",
                            fn, (long long)t->nfeat, (long long)nf);
    int64_t rows = train->map ? train->n : t->n;
    if (rows < 1)
        return em_set_error(EM_ERR_INVALID, "%s: the training split is empty", fn);
    double *acc = calloc((size_t)(nf ? nf : 1) * 2, sizeof *acc);
    float *m = malloc((size_t)(nf ? nf : 1) * sizeof *m);
    float *sd = malloc((size_t)(nf ? nf : 1) * sizeof *sd);
    if (!acc || !m || !sd) {
        rc = em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
        goto done;
    }
    /* Two passes in float64 (mean, then squared deviations): no cancellation. */
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = train->map ? train->map[i] : i;
        for (int64_t j = 0; j < nf; j++)
            acc[j] += raw_at(t, r, j);
    }
    for (int64_t j = 0; j < nf; j++)
        acc[j] /= (double)rows;
    for (int64_t i = 0; i < rows; i++) {
        int64_t r = train->map ? train->map[i] : i;
        for (int64_t j = 0; j < nf; j++) {
            double dv = raw_at(t, r, j) - acc[j];
            acc[nf + j] += dv * dv;
        }
    }
    for (int64_t j = 0; j < nf; j++) {
        double sdev = sqrt(acc[nf + j] / (double)rows);   /* population std, as sklearn */
        m[j] = (float)acc[j];
        sd[j] = sdev > 0 && (float)sdev > 0 ? (float)sdev : 1.0f;
    }
    rc = em_dataset_set_scaler(d, m, sd, nf);
done:
    free(acc);
    free(m);
    free(sd);
    return rc;
}

int64_t em_dataset_scaler(const em_dataset *d, const float **mean, const float **std)
{
    if (mean)
        *mean = NULL;
    if (std)
        *std = NULL;
    if (!d || !d->src->mean)
        return 0;
    if (mean)
        *mean = d->src->mean;
    if (std)
        *std = d->src->std;
    return d->src->nfeat;
}

int em_dataset_require_scaler(em_dataset *d)
{
    int rc = scaler_target("em_dataset_require_scaler", d);
    if (rc == EM_OK)
        d->src->scaler_required = true;
    return rc;
}

bool em_dataset_needs_scaler(const em_dataset *d)
{
    return d && d->src->scaler_required && !d->src->mean;
}
