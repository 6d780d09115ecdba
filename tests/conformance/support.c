/* tests/conformance/support.c - the op x dtype support matrix of one backend.
 *
 * For each registered op and each dtype, the first case of the table for that op and dtype is
 * run once (forward only, no comparison): it tells whether the backend runs the op in that
 * dtype at all, through a kernel or a composite. Correctness is the full run's business.
 */
#include <stdio.h>
#include <string.h>

#include "runner_internal.h"

/* A case for op `name` that takes dtype dt, or NULL. Cases that read back more than they
 * write (writes into views) are fine too: the probe only needs the call to succeed. */
static const cf_case *probe_case(const cf_list *l, const char *name, em_dtype dt)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->c[i].op->name, name) && (cf_case_dtypes(&l->c[i]) & EM_DTYPE_BIT(dt)))
            return &l->c[i];
    return NULL;
}

static bool has_case(const cf_list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (!strcmp(l->c[i].op->name, name))
            return true;
    return false;
}

/* Ops without cases: each input a [2, 3] tensor of dtype dt, attributes zero. The op's arity
 * is not public; em_op_call's error for a wrong count states it. */
static int generic_probe(const char *name, em_dtype dt, em_device dev)
{
    int nin = 0, nattrs = 0;
    em_tensor *r = em_op_call(name, 0, NULL, 0, NULL);
    const char *e = r ? "" : strstr(em_last_error(), "' takes ");
    if (!r && (!e || sscanf(e, "' takes %d inputs and %d attributes", &nin, &nattrs) != 2 ||
               nin < 1 || nin > 8 || nattrs < 0 || nattrs > 16))
        return em_last_status();
    em_release(r);
    em_tensor *in[8] = {0};
    em_attr attrs[16];
    memset(attrs, 0, sizeof attrs);
    em_opts o = {.dtype = dt, .device = dev};
    int made = 0, rc = EM_OK;
    while (made < nin && (in[made] = em_ones(EM_SHAPE(2, 3), &o)))
        made++;
    r = made == nin ? em_op_call(name, nin, in, nattrs, attrs) : NULL;
    rc = r ? EM_OK : em_last_status();
    em_release(r);
    for (int i = 0; i < made; i++)
        em_release(in[i]);
    return rc;
}

int cf_support(const cf_list *l, const char *backend, char *cells, int maxops)
{
    em_device dev = em_device_parse(backend);
    if (dev.index < 0)
        return -1;
    char name[64];
    snprintf(name, sizeof name, "%s", backend);
    char *colon = strchr(name, ':');
    if (colon)
        *colon = '\0';
    if (!em_backend_available(name) || dev.index >= em_device_count(name)) {
        const char *why = em_backend_unavailable_reason(name);
        em_set_error(EM_ERR_DEVICE, "backend '%s' is not usable here: %s", backend,
                     why ? why : "no such device");
        return -1;
    }
    int nops = 0;
    for (int op = 0; op < maxops && em_op_name(op); op++, nops++) {
        const char *opname = em_op_name(op);
        for (int dt = EM_F32; dt < EM_DTYPE_COUNT; dt++) {
            char *cell = &cells[op * (EM_DTYPE_COUNT - 1) + dt - 1];
            const cf_case *c = probe_case(l, opname, (em_dtype)dt);
            int rc;
            if (c)
                rc = cf_probe(c, (em_dtype)dt, dev);
            else if (has_case(l, opname))
                rc = 1;   /* the op does not take this dtype */
            else
                rc = generic_probe(opname, (em_dtype)dt, dev);
            *cell = rc == EM_OK ? 'Y' : rc == 1 ? '.' : rc == EM_ERR_UNSUPPORTED ? '-' : '?';
        }
    }
    em_clear_error();
    return nops;
}
