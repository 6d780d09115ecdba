/* core/dispatch.c - the op registry and the dispatcher.
 *
 * Ops are interned at registration: an op id indexes the op table and a backend id indexes the
 * op's kernel table, so the hot path never compares strings. em__dispatch() does what every op
 * shares (device check, type promotion, broadcasting, output allocation, kernel choice,
 * composite or CPU fallback, autograd recording); kernels only compute.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static em_op_rec **ops;
static int nops, capops;

em_op_rec *em__op(int id) { return id >= 0 && id < nops ? ops[id] : NULL; }
int em__op_count(void) { return nops; }
const char *em_op_name(int op) { return op >= 0 && op < nops ? ops[op]->name : NULL; }

int em_op_lookup(const char *name)
{
    if (!em__initialized() && nops == 0)
        return em__require_init("em_op_lookup");
    for (int i = 0; name && i < nops; i++)
        if (strcmp(ops[i]->name, name) == 0)
            return i;
    return em_set_error(EM_ERR_INVALID, "no op named '%s' is registered", name ? name : "(null)");
}

int em_register_op(em_registry *reg, const em_op_def *def)
{
    if (!def || !def->name || def->struct_size < offsetof(em_op_def, composite))
        return em_set_error(EM_ERR_INVALID, "em_register_op: incomplete op definition");
    size_t len = strlen(def->name);
    if (len == 0 || len >= sizeof ops[0]->name)
        return em_set_error(EM_ERR_INVALID, "em_register_op: bad op name '%s'", def->name);
    if (def->nin < 0 || def->nin > EM_MAX_OP_INPUTS)
        return em_set_error(EM_ERR_INVALID,
                            "em_register_op: '%s' has %d inputs; an op takes "
                            "0 to EM_MAX_OP_INPUTS = %d",
                            def->name, def->nin, EM_MAX_OP_INPUTS);
    if (def->nattrs < 0 || def->nattrs > EM_MAX_OP_ATTRS)
        return em_set_error(EM_ERR_INVALID,
                            "em_register_op: '%s' has %d attributes; an op "
                            "takes 0 to EM_MAX_OP_ATTRS = %d",
                            def->name, def->nattrs, EM_MAX_OP_ATTRS);
    if (!def->infer && !(def->flags & EM_OP_SAME_AS_INPUT))
        return em_set_error(EM_ERR_INVALID,
                            "em_register_op: '%s' needs an infer function or EM_OP_SAME_AS_INPUT",
                            def->name);
    for (int i = 0; i < nops; i++)
        if (strcmp(ops[i]->name, def->name) == 0)
            return em_set_error(EM_ERR_INVALID, "op '%s' is already registered%s%s", def->name,
                                ops[i]->owner ? " by plugin " : "",
                                ops[i]->owner ? ops[i]->owner->path : "");
    if (nops == capops) {
        int cap = capops ? capops * 2 : 64;
        em_op_rec **p = realloc(ops, (size_t)cap * sizeof *p);
        if (!p)
            return em_set_error(EM_ERR_NOMEM, "em_register_op: out of memory");
        ops = p;
        capops = cap;
    }
    em_op_rec *r = calloc(1, sizeof *r);
    if (!r)
        return em_set_error(EM_ERR_NOMEM, "em_register_op: out of memory");
    size_t n = def->struct_size < sizeof r->def ? def->struct_size : sizeof r->def;
    memcpy(&r->def, def, n);
    memcpy(r->name, def->name, len + 1);
    r->def.name = r->name;
    if (r->def.backward) {
        if (r->def.backward_name)
            snprintf(r->grad_name, sizeof r->grad_name, "%s", r->def.backward_name);
        else
            snprintf(r->grad_name, sizeof r->grad_name, "%c%sBackward0",
                     r->name[0] >= 'a' && r->name[0] <= 'z' ? r->name[0] - 'a' + 'A' : r->name[0],
                     r->name + 1);
        r->def.backward_name = r->grad_name;
    }
    r->id = nops;
    r->owner = reg ? reg->rec : NULL;
    if (reg)
        reg->rec->nops++;
    ops[nops] = r;
    return nops++;
}

/* Kernels registered for a backend that is not registered yet: an op plugin found on
 * EMBER_PLUGIN_PATH loads before the backend plugins of the install or build tree. They are
 * attached once the backend exists, after its plugin's init, so they override its own. */
typedef struct pending_kernel {
    char backend[32];
    int op;
    em_kernel_fn fn;
    unsigned flags;
    uint32_t dtypes;
    em_plugin_rec *owner;
} pending_kernel;

static pending_kernel *pending;
static int npending, cappending;

static int defer_kernel(em_registry *reg, const char *backend, int id, em_kernel_fn fn,
                        unsigned flags, uint32_t dtypes)
{
    if (strlen(backend) >= sizeof pending->backend || strchr(backend, ':'))
        return em_set_error(EM_ERR_INVALID, "em_register_kernel: bad backend name '%s'",
                            backend);
    if (npending == cappending) {
        int cap = cappending ? cappending * 2 : 16;
        pending_kernel *p = realloc(pending, (size_t)cap * sizeof *p);
        if (!p)
            return em_set_error(EM_ERR_NOMEM, "em_register_kernel: out of memory");
        pending = p;
        cappending = cap;
    }
    pending_kernel *k = &pending[npending++];
    snprintf(k->backend, sizeof k->backend, "%s", backend);
    k->op = id;
    k->fn = fn;
    k->flags = flags;
    k->dtypes = dtypes;
    k->owner = reg ? reg->rec : NULL;
    if (reg)
        reg->rec->nkernels++;
    return EM_OK;
}

void em__dispatch_attach_pending(void)
{
    int keep = 0;
    for (int i = 0; i < npending; i++) {
        pending_kernel *p = &pending[i];
        em_backend *be = em__backend_by_name(p->backend, strlen(p->backend));
        if (!be) {
            pending[keep++] = *p;
            continue;
        }
        em_kernel_rec *k = &ops[p->op]->kernels[be->id];
        k->fn = p->fn;
        k->flags = p->flags;
        k->dtypes = p->dtypes;
        k->owner = p->owner;
    }
    npending = keep;
}

int em_register_kernel(em_registry *reg, const char *backend, const char *op, em_kernel_fn fn,
                       unsigned flags, uint32_t dtypes)
{
    if (!backend || !op || !fn)
        return em_set_error(EM_ERR_INVALID, "em_register_kernel: NULL argument");
    int id = em_op_lookup(op);
    if (id < 0)
        return id;
    if (id == EM__OP_COPY && !(flags & EM_KERNEL_STRIDED))
        return em_set_error(EM_ERR_INVALID,
                            "em_register_kernel: the copy kernel of '%s' must accept strides "
                            "(EM_KERNEL_STRIDED)", backend);
    em_backend *be = em__backend_by_name(backend, strlen(backend));
    if (!be)
        return defer_kernel(reg, backend, id, fn, flags, dtypes);
    em_kernel_rec *k = &ops[id]->kernels[be->id];
    k->fn = fn;
    k->flags = flags;
    k->dtypes = dtypes;
    k->owner = reg ? reg->rec : NULL;
    if (reg)
        reg->rec->nkernels++;
    return EM_OK;
}

/* Drops every op and kernel a failed or unloaded plugin registered. Ops of the plugin keep
 * their ids (ids are never reused) but lose their kernels and composite. */
void em__dispatch_forget(em_plugin_rec *rec)
{
    int keep = 0;
    for (int i = 0; i < npending; i++)
        if (pending[i].owner != rec)
            pending[keep++] = pending[i];
    npending = keep;
    for (int i = 0; i < nops; i++) {
        for (int b = 0; b < EM__MAX_BACKENDS; b++)
            if (ops[i]->kernels[b].owner == rec)
                memset(&ops[i]->kernels[b], 0, sizeof ops[i]->kernels[b]);
        if (ops[i]->owner == rec) {
            ops[i]->def.composite = NULL;
            ops[i]->def.backward = NULL;
            ops[i]->def.infer = NULL;
            ops[i]->def.flags = EM_OP_SAME_AS_INPUT;
            snprintf(ops[i]->name, sizeof ops[i]->name, "<unloaded:%d>", i);
            ops[i]->def.name = ops[i]->name;
        }
    }
}

/* Clears kernels registered for one backend id (its plugin failed after registering it). */
void em__dispatch_forget_backend(int backend_id)
{
    for (int i = 0; i < nops; i++)
        memset(&ops[i]->kernels[backend_id], 0, sizeof ops[i]->kernels[backend_id]);
}

void em__dispatch_free(void)
{
    free(pending);
    pending = NULL;
    npending = cappending = 0;
    for (int i = 0; i < nops; i++)
        free(ops[i]);
    free(ops);
    ops = NULL;
    nops = capops = 0;
}

/* ---- kernel calls --------------------------------------------------------------- */

static bool kt_contiguous(const em_ktensor *k)
{
    int64_t expect = 1;
    for (int i = k->ndim - 1; i >= 0; i--) {
        if (k->shape[i] == 1)
            continue;
        if (k->strides[i] != expect)
            return false;
        expect *= k->shape[i];
    }
    return true;
}

static const char *backend_name(int id)
{
    em_backend *be = em__backend(id);
    return be ? be->ops->name : "?";
}

/* The kernel for (op, backend) if it handles dtype `dt`; NULL otherwise. */
static const em_kernel_rec *find_kernel(const em_op_rec *op, int backend, em_dtype dt)
{
    const em_kernel_rec *k = &op->kernels[backend];
    if (!k->fn || !(k->dtypes & EM_DTYPE_BIT(dt)))
        return NULL;
    return k;
}

static int no_kernel(const em_op_rec *op, int backend, em_dtype dt)
{
    if (op->kernels[backend].fn)
        return em_set_error(EM_ERR_UNSUPPORTED,
                            "op '%s' has no kernel for dtype %s on backend '%s'", op->name,
                            em_dtype_name(dt), backend_name(backend));
    return em_set_error(EM_ERR_UNSUPPORTED, "op '%s' has no kernel for backend '%s' and no "
                                            "composite",
                        op->name, backend_name(backend));
}

/* Calls kernel k with ktensor arguments; inputs that are not contiguous are first copied to
 * contiguous temporaries when the kernel does not take strides. */
static int call_kernel(const em_op_rec *op, const em_kernel_rec *k, em_backend *be, int dev,
                       int nin, em_ktensor *kin, int nout, em_ktensor *kout,
                       const em_attr *attrs)
{
    em_tensor *tmp[EM_MAX_OP_INPUTS] = {0};
    int rc = EM_OK;
    if (!(k->flags & EM_KERNEL_STRIDED)) {
        const em_kernel_rec *copy = &ops[EM__OP_COPY]->kernels[be->id];
        for (int i = 0; i < nin; i++) {
            if (kt_contiguous(&kin[i]))
                continue;
            em_device d = {be->id, dev};
            tmp[i] = em__tensor_alloc(d, kin[i].dtype, kin[i].ndim, kin[i].shape);
            if (!tmp[i]) {
                rc = em_last_status();
                goto done;
            }
            em_ktensor dst;
            em__ktensor(tmp[i], &dst);
            em_kcall cc = {sizeof cc, EM__OP_COPY, dev, 1, 1, &kin[i], &dst, 0, NULL};
            if (!copy->fn) {
                rc = no_kernel(ops[EM__OP_COPY], be->id, kin[i].dtype);
                goto done;
            }
            if ((rc = copy->fn(be->ctx, &cc)) < 0)
                goto done;
            kin[i] = dst;
        }
    }
    em_kcall call = {sizeof call, op->id, dev, nin, nout, kin, kout, op->def.nattrs, attrs};
    rc = k->fn(be->ctx, &call);
done:
    for (int i = 0; i < nin; i++)
        em_release(tmp[i]);
    return rc;
}

int em__run_kernel(int id, int nin, em_tensor *const *in, int nout, em_tensor *const *out,
                   const em_attr *attrs)
{
    em_op_rec *op = ops[id];
    int rc = em__step_stop_deferring();
    if (rc < 0)
        return rc;
    em_tensor *anchor = nin ? in[0] : out[0];
    em_backend *be = anchor->storage->be;
    int dev = anchor->storage->dev;
    if (out[0]->numel == 0)
        return EM_OK;
    const em_kernel_rec *k = find_kernel(op, be->id, anchor->dtype);
    if (k && id == EM__OP_COPY && !(k->dtypes & EM_DTYPE_BIT(out[0]->dtype)))
        k = NULL;
    if (!k)
        return no_kernel(op, be->id, k || id != EM__OP_COPY ? anchor->dtype : out[0]->dtype);
    em_ktensor kin[EM_MAX_OP_INPUTS], kout[4];
    for (int i = 0; i < nin; i++)
        em__ktensor(in[i], &kin[i]);
    for (int i = 0; i < nout; i++)
        em__ktensor(out[i], &kout[i]);
    return call_kernel(op, k, be, dev, nin, kin, nout, kout, attrs);
}

/* ---- the dispatcher --------------------------------------------------------------- */

bool em__fallback_cpu;   /* [runtime] fallback = cpu; set by em_init */

/* PyTorch's canCast: no float -> integer and no non-bool -> bool for in-place results. */
static bool can_cast(em_dtype from, em_dtype to)
{
    if (em_dtype_is_float(from) && !em_dtype_is_float(to))
        return false;
    if (from != EM_BOOL && to == EM_BOOL)
        return false;
    return true;
}

static int device_mismatch(const em_op_rec *op, em_tensor *a, em_tensor *b)
{
    char da[32], db[32];
    return em_set_error(EM_ERR_DEVICE,
                        "%s: expected all tensors on the same device, got %s and %s", op->name,
                        em_device_str(em__tensor_device(a), da, sizeof da),
                        em_device_str(em__tensor_device(b), db, sizeof db));
}

/* Broadcast shape of the inputs into out; false with the error set when they do not fit. */
static bool broadcast_shape(const em_op_rec *op, int nin, em_tensor *const *in, int *ndim,
                            int64_t *shape)
{
    int nd = 0;
    for (int i = 0; i < nin; i++)
        nd = in[i]->ndim > nd ? in[i]->ndim : nd;
    for (int d = 0; d < nd; d++)
        shape[d] = 1;
    for (int i = 0; i < nin; i++) {
        const em_tensor *t = in[i];
        for (int d = 0; d < t->ndim; d++) {
            int o = nd - t->ndim + d;
            int64_t s = t->shape[d];
            if (s == shape[o] || s == 1)
                continue;
            if (shape[o] == 1) {
                shape[o] = s;
                continue;
            }
            char b1[160], b2[160];
            int j = i == 0 ? 1 : 0;
            em_set_error(EM_ERR_INVALID, "%s: shapes %s and %s cannot broadcast", op->name,
                         em__shape_str(in[j]->ndim, in[j]->shape, b1, sizeof b1),
                         em__shape_str(t->ndim, t->shape, b2, sizeof b2));
            return false;
        }
    }
    *ndim = nd;
    return true;
}

/* A kernel view of t broadcast to (ndim, shape): stride 0 on new and size-1 dims. */
static void broadcast_view(const em_tensor *t, int ndim, const int64_t *shape,
                           int64_t *strides, em_ktensor *kt)
{
    for (int d = 0; d < ndim; d++) {
        int s = d - (ndim - t->ndim);
        strides[d] = (s < 0 || (t->shape[s] == 1 && shape[d] != 1)) ? 0 : t->strides[s];
    }
    kt->buf = t->storage->buf;
    kt->offset = t->offset;
    kt->dtype = t->dtype;
    kt->ndim = ndim;
    kt->numel = em__shape_numel(ndim, shape);
    kt->shape = shape;
    kt->strides = strides;
}


static em_tensor *fallback_to_cpu(em_op_rec *op, int nin, em_tensor *const *in,
                                  const em_attr *attrs, em_tensor *out);

static bool is_half(em_dtype dt) { return dt == EM_F16 || dt == EM_BF16; }

/* The op's composite; with EM_OP_COMPOSITE_F32, float16/bfloat16 inputs widened to float32 and
 * the result rounded to input 0's dtype once. */
static em_tensor *run_composite(const em_op_rec *op, int nin, em_tensor *const *in,
                                const em_attr *attrs)
{
    if (!(op->def.flags & EM_OP_COMPOSITE_F32) || nin < 1 || nin > EM_MAX_OP_INPUTS ||
        !is_half(in[0]->dtype))
        return op->def.composite(nin, in, attrs);
    em_tensor *wide[EM_MAX_OP_INPUTS] = {0}, *r = NULL, *out = NULL;
    int made = 0;
    for (; made < nin; made++) {
        wide[made] = is_half(in[made]->dtype) ? em_to_dtype(in[made], EM_F32) : in[made];
        if (!wide[made])
            break;
        if (wide[made] == in[made])
            em_retain(in[made]);
    }
    if (made == nin && (r = op->def.composite(nin, wide, attrs)))
        out = em_to_dtype(r, in[0]->dtype);
    em_release(r);
    for (int i = 0; i < made; i++)
        em_release(wide[i]);
    return out;
}

/* Whether the inputs an op updates in place (em_op_def.updates) can go to its kernel as they
 * are: contiguous (call_kernel would otherwise hand the kernel a copy) and of the compute
 * dtype. Inputs that are input 0 itself (unused state) are the output's business. */
static bool updates_direct(const em_op_rec *op, int nin, em_tensor *const *in, em_dtype cdt)
{
    for (int i = 1; i < nin; i++)
        if ((op->def.updates >> i & 1u) && in[i] != in[0] &&
            (in[i]->dtype != cdt || !em_is_contiguous(in[i])))
            return false;
    return true;
}

/* After a kernel of an op with em_op_def.updates: the version counters of the inputs it wrote. */
static void bump_updated(const em_op_rec *op, int nin, em_tensor *const *in)
{
    for (int i = 1; i < nin; i++)
        if ((op->def.updates >> i & 1u) && in[i] != in[0])
            atomic_fetch_add_explicit(&in[i]->storage->version, 1, memory_order_relaxed);
}

/* An in-place op under autograd: computed out of place (and recorded), then written into
 * `out`, which takes over the result's history (PyTorch rebases it the same way). */
static em_tensor *inplace_tracked(em_op_rec *op, int nin, em_tensor *const *in,
                                  const em_attr *attrs, em_tensor *out)
{
    em_tensor *r = em__dispatch(op->id, nin, in, attrs, NULL);
    if (!r)
        return NULL;
    em_tensor *w = NULL;
    if (!can_cast(r->dtype, out->dtype)) {
        em_set_error(EM_ERR_INVALID,
                     "%s_: result type %s can't be cast to the desired output type %s",
                     op->name, em_dtype_name(r->dtype), em_dtype_name(out->dtype));
    } else if (r->ndim != out->ndim ||
               memcmp(r->shape, out->shape, (size_t)r->ndim * sizeof *r->shape) != 0) {
        char b1[160], b2[160];
        em_set_error(EM_ERR_INVALID,
                     "%s_: result of shape %s cannot be written in place into shape %s",
                     op->name, em__shape_str(r->ndim, r->shape, b1, sizeof b1),
                     em__shape_str(out->ndim, out->shape, b2, sizeof b2));
    } else if (em__autograd_rebase(out, r) == EM_OK) {
        w = em__copy_into(out, r);
    }
    em_release(r);
    return w;
}

/* em__dispatch, step 1 (validate): no NULL input, every input and `out` on one device. */
static int validate_inputs(const em_op_rec *op, int nin, em_tensor *const *in, em_tensor *out)
{
    for (int i = 0; i < nin; i++)
        if (!in[i]) {
            char what[24];
            snprintf(what, sizeof what, "input %d", i);
            return em__null_arg(op->name, what);
        }
    if (nin == 0)
        return em_set_error(EM_ERR_INVALID, "%s: em__dispatch needs inputs", op->name);
    for (int i = 1; i < nin; i++)
        if (in[i]->storage->be != in[0]->storage->be || in[i]->storage->dev != in[0]->storage->dev)
            return device_mismatch(op, in[0], in[i]);
    if (out && (out->storage->be != in[0]->storage->be || out->storage->dev != in[0]->storage->dev))
        return device_mismatch(op, out, in[0]);
    return EM_OK;
}

/* Step 2 (promote): the compute dtype, the promoted input dtype or a float for float-only
 * math, and the inputs cast to it where they differ (cast[i] new references, else NULL). */
static em_dtype compute_dtype(const em_op_rec *op, int nin, em_tensor *const *in)
{
    em_dtype cdt = in[0]->dtype;
    if (op->def.flags & EM_OP_PROMOTE)
        cdt = em__result_type(nin, in);
    if ((op->def.flags & EM_OP_INT_TO_FLOAT) && !em_dtype_is_float(cdt))
        cdt = em__default_float();
    return cdt;
}

static int promote_inputs(const em_op_rec *op, int nin, em_tensor *const *in, em_dtype cdt,
                          em_tensor **cast, em_tensor **args)
{
    unsigned flags = op->def.flags;
    for (int i = 0; i < nin; i++) {
        args[i] = in[i];
        bool promote = (flags & (EM_OP_PROMOTE | EM_OP_INT_TO_FLOAT)) &&
                       (i == 0 || (flags & EM_OP_PROMOTE));
        if (promote && in[i]->dtype != cdt) {
            if (!(cast[i] = em_to_dtype(in[i], cdt)))
                return em_last_status();
            args[i] = cast[i];
        }
    }
    return EM_OK;
}

/* Step 3 (broadcast): the output's description and the kernel's views of the inputs, broadcast
 * to the output's shape for EM_OP_BROADCAST ops (strides in bstrides), then the op's infer. */
static int describe_output(const em_op_rec *op, int nin, em_tensor *const *args,
                           const em_attr *attrs, em_out_desc *od, int64_t (*bstrides)[EM_MAX_DIMS],
                           em_ktensor *kin)
{
    if (op->def.flags & EM_OP_BROADCAST) {
        if (!broadcast_shape(op, nin, args, &od->ndim, od->shape))
            return em_last_status();
        for (int i = 0; i < nin; i++)
            broadcast_view(args[i], od->ndim, od->shape, bstrides[i], &kin[i]);
    } else {
        for (int i = 0; i < nin; i++)
            em__ktensor(args[i], &kin[i]);
        od->ndim = args[0]->ndim;
        memcpy(od->shape, args[0]->shape, sizeof od->shape);
    }
    od->dtype = (op->def.flags & EM_OP_OUT_BOOL) ? EM_BOOL : args[0]->dtype;
    if (op->def.infer && op->def.infer(nin, args, attrs, od) < 0)
        return em_last_status();
    return EM_OK;
}

/* In place: the result must have out's shape and be castable to its dtype. */
static int check_in_place(const em_op_rec *op, const em_out_desc *od, const em_tensor *out)
{
    if (od->ndim != out->ndim ||
        memcmp(od->shape, out->shape, (size_t)od->ndim * sizeof *od->shape) != 0) {
        char b1[160], b2[160];
        return em_set_error(EM_ERR_INVALID,
                            "%s_: result of shape %s cannot be written in place into shape %s",
                            op->name, em__shape_str(od->ndim, od->shape, b1, sizeof b1),
                            em__shape_str(out->ndim, out->shape, b2, sizeof b2));
    }
    if (!can_cast(od->dtype, out->dtype))
        return em_set_error(EM_ERR_INVALID,
                            "%s_: result type %s can't be cast to the desired output type %s",
                            op->name, em_dtype_name(od->dtype), em_dtype_name(out->dtype));
    return EM_OK;
}

/* Step 4 (pick kernel): the backend's kernel for the compute dtype, or NULL when the op must
 * go through its composite (or the CPU fallback): no kernel for that dtype, or an op that
 * updates inputs which cannot be handed to the kernel as they are. */
static const em_kernel_rec *pick_kernel(const em_op_rec *op, int nin, em_tensor *const *in,
                                        em_dtype cdt)
{
    const em_kernel_rec *k = find_kernel(op, in[0]->storage->be->id, cdt);
    if (k && op->def.updates && !updates_direct(op, nin, in, cdt))
        k = NULL;
    return k;
}

bool em__dispatch_direct(int id, int nin, em_tensor *const *in)
{
    em_op_rec *op = ops[id];
    for (int i = 0; i < nin; i++)
        if (!in[i] || !em_is_contiguous(in[i]))
            return false;
    if (validate_inputs(op, nin, in, in[0]) < 0 || (op->def.flags & EM_OP_BROADCAST))
        return false;
    em_dtype cdt = compute_dtype(op, nin, in);
    for (int i = 0; i < nin; i++)
        if (in[i]->dtype != cdt)
            return false;
    return pick_kernel(op, nin, in, cdt) != NULL;
}

/* Without a kernel: the composite (recording one node when the op has its own backward
 * formula), else the CPU fallback where configured, else the "no kernel" error. */
static em_tensor *run_without_kernel(em_op_rec *op, int nin, em_tensor *const *in,
                                     const em_attr *attrs, em_tensor *out, bool track, em_dtype cdt)
{
    em_backend *be = in[0]->storage->be;
    if (!op->def.composite) {
        if (em__fallback_cpu && be != em__cpu_backend() && !op->def.updates)
            return fallback_to_cpu(op, nin, in, attrs, out);
        no_kernel(op, be->id, cdt);
        return NULL;
    }
    /* An op with its own backward formula records one node (AddmmBackward0 rather than the
     * composite's pieces). */
    bool own = track && em__formula_for(op->id);
    bool prev = own ? em_set_grad_enabled(false) : true;
    em_tensor *r = run_composite(op, nin, in, attrs);
    if (own) {
        em_set_grad_enabled(prev);
        if (r && em__autograd_record(op->id, nin, in, attrs, r) < 0) {
            em_release(r);
            return NULL;
        }
    }
    if (r && out) {
        em_tensor *w = em__copy_into(out, r);
        em_release(r);
        return w;
    }
    return r;
}

/* Runs kernel k into `out` (or a new tensor) and returns the result, a new reference; the
 * version counters of what the kernel wrote are bumped. */
static em_tensor *run_kernel_into(em_op_rec *op, const em_kernel_rec *k, int nin,
                                  em_tensor *const *in, em_ktensor *kin, const em_attr *attrs,
                                  const em_out_desc *od, em_tensor *out)
{
    em_backend *be = in[0]->storage->be;
    int dev = in[0]->storage->dev;
    bool direct = !out || (od->dtype == out->dtype && em_is_contiguous(out));
    em_tensor *dst = out && direct ? out
                                   : em__tensor_alloc((em_device){be->id, dev}, od->dtype, od->ndim,
                                                      od->shape);
    if (!dst)
        return NULL;
    if (dst == out)
        em_retain(dst);
    if (dst->numel > 0) {
        em_ktensor kout;
        em__ktensor(dst, &kout);
        if (call_kernel(op, k, be, dev, nin, kin, 1, &kout, attrs) < 0) {
            em_release(dst);
            return NULL;
        }
        bump_updated(op, nin, in);
    }
    if (out && !direct) {
        em_tensor *w = em__copy_into(out, dst);
        em_release(dst);
        return w;
    }
    if (out)
        atomic_fetch_add_explicit(&out->storage->version, 1, memory_order_relaxed);
    return dst;
}

/* The steps every op shares: validate, promote, broadcast (and infer), pick the kernel, run it,
 * record for autograd. `out` non-NULL: the in-place form, which writes into out. */
em_tensor *em__dispatch(int id, int nin, em_tensor *const *in, const em_attr *attrs, em_tensor *out)
{
    em_op_rec *op = ops[id];
    if (em__step_stop_deferring() < 0)
        return NULL;
    if (validate_inputs(op, nin, in, out) < 0)
        return NULL;
    bool track = false;
    if (em__grad_mode())
        for (int i = 0; i < nin; i++)
            track |= in[i]->requires_grad;
    if (track && op->def.updates) {
        em_set_error(EM_ERR_INVALID,
                     "%s: updates its inputs in place and cannot be recorded by "
                     "autograd; call it with grad mode off",
                     op->name);
        return NULL;
    }
    if (out && track)
        return inplace_tracked(op, nin, in, attrs, out);

    em_dtype cdt = compute_dtype(op, nin, in);
    const em_kernel_rec *k = pick_kernel(op, nin, in, cdt);
    if (!k)
        return run_without_kernel(op, nin, in, attrs, out, track, cdt);

    em_tensor *cast[EM_MAX_OP_INPUTS] = {0}, *args[EM_MAX_OP_INPUTS];
    int64_t bstrides[EM_MAX_OP_INPUTS][EM_MAX_DIMS];
    em_ktensor kin[EM_MAX_OP_INPUTS];
    em_out_desc od;
    em_tensor *result = NULL;
    if (promote_inputs(op, nin, in, cdt, cast, args) == EM_OK &&
        describe_output(op, nin, args, attrs, &od, bstrides, kin) == EM_OK &&
        (!out || check_in_place(op, &od, out) == EM_OK))
        result = run_kernel_into(op, k, nin, in, kin, attrs, &od, out);
    /* Step 5 (record): the node autograd replays backward. */
    if (result && track && em__autograd_record(id, nin, in, attrs, result) < 0) {
        em_release(result);
        result = NULL;
    }
    for (int i = 0; i < nin; i++)
        em_release(cast[i]);
    return result;
}

static em_tensor *fallback_to_cpu(em_op_rec *op, int nin, em_tensor *const *in,
                                  const em_attr *attrs, em_tensor *out)
{
    if (!atomic_exchange(&op->fallback_warned, true))
        em_warn("op '%s' has no kernel for backend '%s'; running it on the CPU (fallback = cpu)",
                op->name, in[0]->storage->be->ops->name);
    em_backend *cpu = em__cpu_backend();
    em_device cpu_dev = {cpu->id, 0};
    em_tensor *host[EM_MAX_OP_INPUTS] = {0}, *r = NULL, *back = NULL;
    for (int i = 0; i < nin; i++)
        if (!(host[i] = em_to(in[i], cpu_dev)))
            goto done;
    if (!(r = em__dispatch(op->id, nin, host, attrs, NULL)))
        goto done;
    back = out ? em__copy_into(out, r) : em_to(r, em__tensor_device(in[0]));
done:
    for (int i = 0; i < nin; i++)
        em_release(host[i]);
    em_release(r);
    return back;
}

static em_tensor *op_call(const char *name, int nin, em_tensor *const *inputs, int nattrs,
                          const em_attr *attrs)
{
    int id = em_op_lookup(name);
    if (id < 0)
        return NULL;
    em_op_rec *op = ops[id];
    if (nin != op->def.nin || nattrs != op->def.nattrs) {
        em_set_error(EM_ERR_INVALID, "em_op_call: op '%s' takes %d inputs and %d attributes, "
                                     "got %d and %d",
                     name, op->def.nin, op->def.nattrs, nin, nattrs);
        return NULL;
    }
    return em__dispatch(id, nin, inputs, attrs, NULL);
}

em_tensor *em_op_call(const char *op, int nin, em_tensor *const *inputs, int nattrs,
                      const em_attr *attrs)
{
    EM_WRAP(op_call(op, nin, inputs, nattrs, attrs));
}
