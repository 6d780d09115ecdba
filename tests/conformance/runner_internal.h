/* tests/conformance/runner_internal.h - what runner.c, check.c and support.c share: the tensor
 * pool, input construction, reading back, comparison and result recording. Not used by the
 * case tables, which only describe cases. */
#ifndef EMBER_CONFORMANCE_RUNNER_INTERNAL_H
#define EMBER_CONFORMANCE_RUNNER_INTERNAL_H

#include "conformance.h"

/* Tensors an instance created, released together at its end (no em_scope: a gradcheck
 * callback runs where scopes do not track results). */
typedef struct cf_pool {
    em_tensor **t;
    int n, cap;
} cf_pool;

/* Takes ownership of t (NULL passes through); returns t. */
em_tensor *cf_hold(cf_pool *p, em_tensor *t);
void cf_pool_release(cf_pool *p);

typedef struct cf_run_ctx {
    const cf_options *o;
    cf_report *rep;
    em_device dev, cpu;
} cf_run_ctx;

/* The dtype input i has when the case runs in dt. */
em_dtype cf_input_dtype(const cf_case *c, int i, em_dtype dt);
/* Host values of input i's storage-owning base (rounded to dt), drawn from the case's seed. */
bool cf_input_values(const cf_case *c, int i, em_dtype dt, cf_arr *base);
/* The view of `base` that input spec `in` describes; a new reference (base retained for
 * CF_CONTIG). */
em_tensor *cf_view(em_tensor *base, const cf_in *in);
/* Host values -> CPU float64 -> cast to dt on the CPU -> em_to(dev). Held by the pool. */
em_tensor *cf_upload(cf_pool *p, const cf_arr *a, em_dtype dt, em_device dev);
/* t's logical values (any device, any layout), read in t's dtype and widened on the host. */
bool cf_read(em_tensor *t, cf_arr *a);
/* Element-wise comparison as torch.testing.assert_close does it; false with a one-line
 * description (max abs/rel error, count, first bad element) in msg. */
bool cf_compare(const cf_arr *got, const cf_arr *want, cf_tol tol, char *msg, size_t size);
/* Runs the op of case c on the given inputs. */
em_tensor *cf_call(const cf_case *c, em_tensor *const *in);
/* "[3, 1] f16, [1, 4] f16 T" */
void cf_describe(const cf_case *c, em_dtype dt, char *buf, size_t size);

void cf_record(cf_run_ctx *R, const cf_case *c, em_dtype dt, const char *check, int status,
               const char *fmt, ...)
#ifdef __GNUC__
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* Every check of case c in dtype dt on R->dev (check.c). */
void cf_run_instance(cf_run_ctx *R, const cf_case *c, em_dtype dt);
/* Runs only the forward call of c in dt on dev: EM_OK or the failing status. */
int cf_probe(const cf_case *c, em_dtype dt, em_device dev);

#endif
