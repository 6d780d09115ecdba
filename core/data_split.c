/* core/data_split.c - random_split: views of a dataset over disjoint random subsets of its
 * samples, drawn from a Philox permutation that every platform computes the same way (the
 * DataLoader's shuffles use the same permutation, core/dataloader.c).
 */
#include <math.h>
#include <stdlib.h>

#include "data_internal.h"

/* ---- random_split ------------------------------------------------------------------------------- */

void em__philox_permutation(int64_t *perm, int64_t n, uint64_t key, uint64_t ctr_base)
{
    for (int64_t i = 0; i < n; i++)
        perm[i] = i;
    /* Fisher-Yates from the top: draw k (k = 0, 1, ...) takes the 64 bits of lanes 2(k%2),
     * 2(k%2)+1 of block ctr_base + k/2 and picks j = r mod (i + 1). The modulo bias is below
     * 2^-23 for any n under 2^40, and every platform computes the same j. */
    em_philox_out blk = {{0, 0, 0, 0}};
    uint64_t k = 0;
    for (int64_t i = n - 1; i > 0; i--, k++) {
        if (k % 2 == 0)
            blk = em_philox4x32(key, ctr_base + k / 2);
        uint32_t lane = (uint32_t)(k % 2) * 2;
        uint64_t r = ((uint64_t)blk.v[lane] << 32) | blk.v[lane + 1];
        int64_t j = (int64_t)(r % (uint64_t)(i + 1));
        int64_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Sizes as sample counts: fractions (summing to 1) as PyTorch turns them into lengths, or
 * whole counts summing to n. */
static int split_counts(int64_t n, int parts, const double *sizes, int64_t *counts)
{
    const char *fn = "em_random_split";
    double sum = 0;
    bool fractions = true;
    for (int k = 0; k < parts; k++) {
        if (!(sizes[k] >= 0) || !isfinite(sizes[k]))
            return em_set_error(EM_ERR_INVALID, "%s: size %d is %g; sizes must be >= 0", fn, k,
                                sizes[k]);
        sum += sizes[k];
        fractions &= sizes[k] <= 1;
    }
    if (fractions && fabs(sum - 1) <= 1e-9) {
        int64_t used = 0;
        for (int k = 0; k < parts; k++)
            used += counts[k] = (int64_t)floor((double)n * sizes[k]);
        for (int64_t r = 0; r < n - used; r++)
            counts[r % parts]++;
        return EM_OK;
    }
    int64_t total = 0;
    for (int k = 0; k < parts; k++) {
        if (sizes[k] != floor(sizes[k]))
            return em_set_error(EM_ERR_INVALID, "%s: sizes must be fractions summing to 1 or "
                                                "sample counts; got %g for part %d (sum %g)",
                                fn, sizes[k], k, sum);
        total += counts[k] = (int64_t)sizes[k];
    }
    if (total != n)
        return em_set_error(EM_ERR_INVALID, "%s: sizes sum to %lld, but the dataset has %lld "
                                            "samples",
                            fn, (long long)total, (long long)n);
    return EM_OK;
}

/* The domain of random_split's draws, apart from the DataLoader's shuffles (core/dataloader.c)
 * so that a split and an epoch with the same seed are unrelated. */
#define SPLIT_KEY_SALT UINT64_C(0x5EED5B117D47A5E7)

int em_random_split(em_dataset *d, int n_parts, const double *sizes, uint64_t seed,
                    em_dataset **out)
{
    const char *fn = "em_random_split";
    if (!d || !sizes || !out)
        return em__null_arg(fn, !d ? "d" : !sizes ? "sizes" : "out");
    if (n_parts < 1)
        return em_set_error(EM_ERR_INVALID, "%s: n_parts is %d; need at least 1", fn, n_parts);
    for (int k = 0; k < n_parts; k++)
        out[k] = NULL;
    int64_t n = em_dataset_len(d);
    if (n < 0)
        return (int)n;
    int64_t *counts = calloc((size_t)n_parts, sizeof *counts);
    int64_t *perm = malloc((size_t)(n ? n : 1) * sizeof *perm);
    int rc = counts && perm ? split_counts(n, n_parts, sizes, counts)
                            : em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
    if (rc < 0)
        goto fail;
    em__philox_permutation(perm, n, seed ^ SPLIT_KEY_SALT, 0);
    int64_t at = 0;
    for (int k = 0; k < n_parts; k++) {
        em_dataset *v = calloc(1, sizeof *v);
        int64_t *map = malloc((size_t)(counts[k] ? counts[k] : 1) * sizeof *map);
        if (!v || !map) {
            free(v);
            free(map);
            rc = em_set_error(EM_ERR_NOMEM, "%s: out of memory", fn);
            goto fail;
        }
        for (int64_t i = 0; i < counts[k]; i++) {
            int64_t p = perm[at + i];
            map[i] = d->map ? d->map[p] : p;   /* a split of a split maps to the source */
        }
        at += counts[k];
        em__dsource_retain(d->src);
        v->src = d->src;
        v->map = map;
        v->n = counts[k];
        out[k] = v;
    }
    free(counts);
    free(perm);
    return EM_OK;
fail:
    for (int k = 0; k < n_parts; k++) {
        em_dataset_free(out[k]);
        out[k] = NULL;
    }
    free(counts);
    free(perm);
    return rc;
}
