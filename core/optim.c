/* core/optim.c - optimizer and scheduler types: registry, construction from specs, the
 * parameter list and per-parameter state slots, zero_grad/step, learning-rate scheduling.
 *
 * The update rules themselves (SGD, Adam, ...) live in plugins/optim. The core keeps their
 * state so that em_module_to moves it and checkpoints save it.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "module_internal.h"

#define MAX_SLOTS 4

typedef struct slot {
    char name[32];
    em_tensor *t;
} slot;

struct em_optimizer {
    const em_optimizer_ops *ops;
    em_spec *spec;
    em_args *args;
    void *state;
    bool initialised;
    em_module *module;        /* weak; NULL once the module is freed */
    int nparams;
    em_tensor **params;       /* retained */
    char **names;             /* the parameters' state_dict names, for checkpoints */
    slot (*slots)[MAX_SLOTS]; /* per parameter */
    double lr;
    int64_t steps;
    /* Undo for a failed step (see "a step is all or nothing"): copies of each parameter and
     * its slots, kept between steps, UNDO_PER_PARAM per parameter; the slot table before the
     * step; and the updates a step defers, at most one per parameter. */
    em_tensor **undo;
    slot (*undo_slots)[MAX_SLOTS];
    struct deferred *queue;
    int nqueue;
    bool deferring;   /* updates are queued; nothing has been written yet */
    bool copied;      /* the undo copies hold this step's starting values */
};

/* One update op a step asked for and the core holds back until the step's end. */
typedef struct deferred {
    int id, nin;
    em_tensor *in[EM_MAX_OP_INPUTS];   /* retained */
    em_attr attrs[EM_MAX_OP_ATTRS];
} deferred;

#define UNDO_PER_PARAM (1 + MAX_SLOTS)

struct em_scheduler {
    const em_scheduler_ops *ops;
    em_spec *spec;
    em_args *args;
    em_optimizer *opt;
    double base_lr;
    int epoch;
};

/* ---- registries ----------------------------------------------------------------------------- */

typedef struct {
    const void *ops;
    const char *name;
    em_plugin_rec *owner;
    bool scheduler;
} type_rec;

static type_rec *types;
static int ntypes;

static int register_type(em_registry *reg, const void *ops, const char *name, bool scheduler)
{
    for (int i = 0; i < ntypes; i++)
        if (!strcmp(types[i].name, name))
            return em_set_error(EM_ERR_INVALID, "%s type '%s' is already registered by %s",
                                scheduler ? "scheduler" : "optimizer", name,
                                types[i].owner ? types[i].owner->path : "the core");
    type_rec *t = realloc(types, (size_t)(ntypes + 1) * sizeof *t);
    if (!t)
        return em_set_error(EM_ERR_NOMEM, "out of memory");
    types = t;
    types[ntypes++] = (type_rec){ops, name, reg ? reg->rec : NULL, scheduler};
    return EM_OK;
}

int em_register_optimizer(em_registry *reg, const em_optimizer_ops *ops)
{
    if (!ops || ops->struct_size < offsetof(em_optimizer_ops, destroy) || !ops->name ||
        !ops->init || !ops->step)
        return em_set_error(EM_ERR_INVALID, "em_register_optimizer: incomplete optimizer type");
    if (ops->nparams < 0 || (ops->nparams && !ops->params))
        return em_set_error(EM_ERR_INVALID, "em_register_optimizer: '%s': %d parameters %s",
                            ops->name, ops->nparams, ops->params ? "" : "and no table of them");
    bool has_lr = false;
    for (int i = 0; i < ops->nparams; i++)
        has_lr |= !strcmp(ops->params[i].name, "lr") && ops->params[i].kind == EM_PARAM_FLOAT;
    if (!has_lr)
        return em_set_error(EM_ERR_INVALID, "em_register_optimizer: '%s' must declare a float "
                                            "'lr' parameter",
                            ops->name);
    return register_type(reg, ops, ops->name, false);
}

int em_register_scheduler(em_registry *reg, const em_scheduler_ops *ops)
{
    if (!ops || ops->struct_size < sizeof *ops || !ops->name || !ops->lr_at)
        return em_set_error(EM_ERR_INVALID, "em_register_scheduler: incomplete scheduler type");
    return register_type(reg, ops, ops->name, true);
}

void em__optim_types_forget(em_plugin_rec *rec)
{
    int k = 0;
    for (int i = 0; i < ntypes; i++)
        if (types[i].owner != rec)
            types[k++] = types[i];
    ntypes = k;
}

void em__optim_types_describe(const em_plugin_rec *r, em_strbuf *sb)
{
    for (int pass = 0; pass < 2; pass++) {
        bool first = true;
        for (int i = 0; i < ntypes; i++)
            if (types[i].owner == r && types[i].scheduler == (pass == 1)) {
                const char *label = pass ? "schedulers " : "optimizers ";
                em__sb_printf(sb, "%s%s%s", first && sb->len ? "; " : (first ? "" : ", "),
                              first ? label : "", types[i].name);
                first = false;
            }
    }
}

void em__optim_types_free(void)
{
    free(types);
    types = NULL;
    ntypes = 0;
}

static const void *find(const char *name, bool scheduler)
{
    const char *names[256];
    int n = 0;
    for (int i = 0; i < ntypes; i++) {
        if (types[i].scheduler != scheduler)
            continue;
        if (!strcmp(types[i].name, name))
            return types[i].ops;
        if (n < 256)
            names[n++] = types[i].name;
    }
    const char *what = scheduler ? "scheduler" : "optimizer";
    const char *best = em_closest_name(name, names, n);
    if (best)
        em_set_error(EM_ERR_INVALID, "unknown %s '%s'; did you mean '%s'?", what, name, best);
    else
        em_set_error(EM_ERR_INVALID, "unknown %s '%s' (is the optim plugin loaded? see `ember "
                                     "info`)",
                     what, name);
    return NULL;
}

/* ---- optimizers ------------------------------------------------------------------------------ */

em_optimizer *em_optimizer_new(const char *text, em_module *m)
{
    if (em__require_init("em_optimizer_new") < 0)
        return NULL;
    if (!m)
        return em__null_arg("em_optimizer_new", "module"), NULL;
    em_spec *spec = em_spec_parse(text, "optimizer spec");
    if (!spec)
        return NULL;
    const em_optimizer_ops *ops = find(em_spec_name(spec), false);
    em_optimizer *o = ops ? calloc(1, sizeof *o) : NULL;
    if (!o) {
        if (ops)
            em_set_error(EM_ERR_NOMEM, "out of memory");
        em_spec_free(spec);
        return NULL;
    }
    o->ops = ops;
    o->spec = spec;
    if (!(o->args = em_args_bind(spec, ops->nparams, ops->params)))
        goto fail;
    o->lr = em_args_float(o->args, "lr");
    if (o->lr < 0) {
        em_set_error(EM_ERR_INVALID, "%s: invalid learning rate %g", ops->name, o->lr);
        goto fail;
    }
    int n = 0;
    for (int i = 0; i < em_module_param_count(m); i++)
        n += em_requires_grad(em_module_param(m, i));
    if (n == 0) {
        em_set_error(EM_ERR_INVALID, "%s: the module has no parameter that requires grad",
                     ops->name);
        goto fail;
    }
    o->params = calloc((size_t)n, sizeof *o->params);
    o->names = calloc((size_t)n, sizeof *o->names);
    o->slots = calloc((size_t)n, sizeof *o->slots);
    if (!o->params || !o->names || !o->slots) {
        em_set_error(EM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    for (int i = 0; i < em_module_param_count(m); i++) {
        em_tensor *p = em_module_param(m, i);
        if (!em_requires_grad(p))
            continue;
        em_retain(p);
        o->params[o->nparams] = p;
        if (!(o->names[o->nparams++] = strdup(em_module_param_name(m, i)))) {
            em_set_error(EM_ERR_NOMEM, "out of memory");
            goto fail;
        }
    }
    if (ops->state_size && !(o->state = calloc(1, ops->state_size))) {
        em_set_error(EM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if (ops->init && ops->init(o, o->args) < 0)
        goto fail;
    o->initialised = true;
    if (em__module_attach_optimizer(m, o) < 0)
        goto fail;
    o->module = m;
    return o;
fail:
    em_optimizer_free(o);
    return NULL;
}

void em_optimizer_free(em_optimizer *o)
{
    if (!o)
        return;
    if (o->module)
        em__module_forget_optimizer(o->module, o);
    if (o->initialised && o->ops->destroy)
        o->ops->destroy(o);
    for (int i = 0; i < o->nparams; i++) {
        em_release(o->params[i]);
        free(o->names[i]);
        for (int k = 0; k < MAX_SLOTS; k++)
            em_release(o->slots[i][k].t);
    }
    for (int j = 0; o->undo && j < o->nparams * UNDO_PER_PARAM; j++)
        em_release(o->undo[j]);
    free(o->undo);
    free(o->undo_slots);
    free(o->queue);
    free(o->params);
    free(o->names);
    free(o->slots);
    free(o->state);
    em_args_free(o->args);
    em_spec_free(o->spec);
    free(o);
}

void em__optimizer_detach(em_optimizer *o) { o->module = NULL; }

int em__optimizer_move(em_optimizer *o, em_device d)
{
    for (int i = 0; i < o->nparams; i++)
        for (int k = 0; k < MAX_SLOTS; k++)
            if (o->slots[i][k].t) {
                int rc = em__tensor_move(o->slots[i][k].t, d);
                if (rc < 0)
                    return rc;
            }
    return EM_OK;
}

int em_zero_grad(em_optimizer *o)
{
    if (!o)
        return em__null_arg("zero_grad", "optimizer");
    for (int i = 0; i < o->nparams; i++)
        em_grad_clear(o->params[i]);
    return EM_OK;
}

/* ---- a step is all or nothing ---------------------------------------------------------------- */

/* A step runs in one of two ways, chosen as it goes:
 *
 *  - deferred, the steady state on the CPU: every update the step asks for is an update op
 *    (sgd_step, adam_step, rmsprop_step) that the dispatcher can run as one kernel straight
 *    into the parameter (em__dispatch_direct). Each is checked when asked for and queued; the
 *    queue runs once the optimizer's step has returned OK. Until then nothing is written, so a
 *    failure only has to put the slot table back, and no copy of the parameters is made.
 *  - copied: as soon as the step does anything else (creates its state on a first step, runs
 *    any other op or kernel, updates a tensor of another device or one that needs a
 *    composite), every parameter and state tensor is first copied aside, the queue runs, and
 *    the step goes on directly; a failure copies them back.
 *
 * Either way the parameters and state are as they were when em_step fails, given update
 * kernels that make their checks before they write (as every kernel in Ember does). */

static _Thread_local em_optimizer *stepping;   /* the step running on this thread, if any */

/* Copies t into *keep, (re)allocating *keep when it does not match t (first step, a new slot, a
 * move to another device); a steady loop reuses the same buffers and allocates nothing. */
static int undo_copy(em_tensor **keep, em_tensor *t)
{
    em_tensor *b = *keep;
    if (!b || b->dtype != t->dtype || b->ndim != t->ndim ||
        memcmp(b->shape, t->shape, sizeof(int64_t) * (size_t)t->ndim) ||
        !em_device_eq(em__tensor_device(b), em__tensor_device(t))) {
        em_release(b);
        *keep = b = em__tensor_alloc(em__tensor_device(t), t->dtype, t->ndim, t->shape);
        if (!b)
            return em_last_status();
    }
    return em__run_kernel(EM__OP_COPY, 1, &t, 1, &b, NULL);
}

static void queue_drop(em_optimizer *o)
{
    for (int j = 0; j < o->nqueue; j++)
        for (int i = 0; i < o->queue[j].nin; i++)
            em_release(o->queue[j].in[i]);
    o->nqueue = 0;
}

/* Runs the queued updates in order and empties the queue. */
static int queue_run(em_optimizer *o)
{
    int rc = EM_OK;
    for (int j = 0; j < o->nqueue && rc == EM_OK; j++) {
        deferred *d = &o->queue[j];
        rc = em__inplace_status(em__dispatch(d->id, d->nin, d->in, d->attrs, d->in[0]));
    }
    queue_drop(o);
    return rc;
}

/* Gives back the slot table references step_begin took and whatever is still queued. */
static void step_forget(em_optimizer *o)
{
    for (int i = 0; o->undo_slots && i < o->nparams; i++)
        for (int k = 0; k < MAX_SLOTS; k++) {
            em_release(o->undo_slots[i][k].t);
            o->undo_slots[i][k].t = NULL;
        }
    queue_drop(o);
}

/* Before a step: remembers the slot table (retaining its tensors, which the step may replace)
 * and starts deferring. Allocates the undo tables on the first step. */
static int step_begin(em_optimizer *o)
{
    if (!o->undo) {
        o->undo = calloc((size_t)o->nparams * UNDO_PER_PARAM, sizeof *o->undo);
        o->undo_slots = calloc((size_t)o->nparams, sizeof *o->undo_slots);
        o->queue = malloc((size_t)o->nparams * sizeof *o->queue);
        if (!o->undo || !o->undo_slots || (o->nparams && !o->queue)) {
            free(o->undo);
            free(o->undo_slots);
            free(o->queue);
            o->undo = NULL;
            o->undo_slots = NULL;
            o->queue = NULL;
            return em_set_error(EM_ERR_NOMEM, "%s: out of memory preparing a step", o->ops->name);
        }
    }
    for (int i = 0; i < o->nparams; i++)
        for (int k = 0; k < MAX_SLOTS; k++) {
            o->undo_slots[i][k] = o->slots[i][k];
            em_retain(o->undo_slots[i][k].t);
        }
    o->nqueue = 0;
    o->deferring = true;
    o->copied = false;
    return EM_OK;
}

/* Copies every parameter and every state tensor of the remembered slot table aside (slots the
 * step created are dropped by step_undo, not copied). */
static int copies_take(em_optimizer *o)
{
    for (int i = 0; i < o->nparams; i++) {
        em_tensor **u = o->undo + (size_t)i * UNDO_PER_PARAM;
        int rc = undo_copy(&u[0], o->params[i]);
        for (int k = 0; rc == EM_OK && k < MAX_SLOTS; k++)
            if (o->undo_slots[i][k].t)
                rc = undo_copy(&u[1 + k], o->undo_slots[i][k].t);
        if (rc < 0)
            return rc;
    }
    o->copied = true;
    return EM_OK;
}

int em__step_defer(int id, int nin, em_tensor *const *in, const em_attr *attrs)
{
    em_optimizer *o = stepping;
    if (!o || !o->deferring || o->nqueue >= o->nparams ||
        in[0]->storage->be != em__cpu_backend() || !em__dispatch_direct(id, nin, in))
        return 0;
    deferred *d = &o->queue[o->nqueue++];
    d->id = id;
    d->nin = nin;
    for (int i = 0; i < nin; i++) {
        d->in[i] = in[i];
        em_retain(in[i]);
    }
    int nattrs = em__op(id)->def.nattrs;
    memcpy(d->attrs, attrs, (size_t)nattrs * sizeof *attrs);
    return 1;
}

int em__step_stop_deferring(void)
{
    em_optimizer *o = stepping;
    if (!o || !o->deferring)
        return EM_OK;
    o->deferring = false;   /* the copies and the queue below dispatch too */
    int rc = copies_take(o);
    if (rc < 0) {
        queue_drop(o);
        return rc;
    }
    return queue_run(o);
}

/* After a failed step: the parameters and the state tensors' values (when they may have been
 * written) and the slot table as step_begin found them (slots the step created are dropped).
 * The copies are same-shape, same-device kernel calls into existing memory, which allocate
 * nothing. */
static void step_undo(em_optimizer *o)
{
    queue_drop(o);
    for (int i = 0; i < o->nparams; i++) {
        em_tensor **u = o->undo + (size_t)i * UNDO_PER_PARAM;
        if (o->copied)
            em__run_kernel(EM__OP_COPY, 1, &u[0], 1, &o->params[i], NULL);
        for (int k = 0; k < MAX_SLOTS; k++) {
            slot *saved = &o->undo_slots[i][k];
            if (saved->t && o->copied)
                em__run_kernel(EM__OP_COPY, 1, &u[1 + k], 1, &saved->t, NULL);
            em_release(o->slots[i][k].t);
            o->slots[i][k] = *saved;   /* the reference moves back into the table */
            saved->t = NULL;
        }
    }
}

/* The optimizer's own step, then the updates it deferred. */
static int step_run(em_optimizer *o)
{
    int rc = o->ops->step(o);
    if (rc < 0 || !o->deferring)
        return rc;
    o->deferring = false;
    if ((rc = queue_run(o)) < 0) {
        char why[256];
        snprintf(why, sizeof why, "%s", em_last_error());
        rc = em_set_error(rc, "%s: step: an update kernel failed after its checks, and the "
                              "step is applied in part: %s",
                          o->ops->name, why);
    }
    return rc;
}

int em_step(em_optimizer *o)
{
    if (!o)
        return em__null_arg("step", "optimizer");
    bool prev = em_set_grad_enabled(false);
    em__api_depth++;   /* the update's temporaries never enter the caller's scope */
    em_optimizer *outer = stepping;
    int rc = step_begin(o);
    if (rc == EM_OK) {
        stepping = o;
        rc = step_run(o);
        stepping = outer;
        if (rc < 0)
            step_undo(o);
        step_forget(o);
    }
    em__api_depth--;
    em_set_grad_enabled(prev);
    if (rc == EM_OK)
        o->steps++;
    return rc;
}

double em_optimizer_lr(const em_optimizer *o) { return o ? o->lr : 0.0; }

int em_optimizer_set_lr(em_optimizer *o, double lr)
{
    if (!o)
        return em__null_arg("set_lr", "optimizer");
    if (!(lr >= 0))
        return em_set_error(EM_ERR_INVALID, "%s: invalid learning rate %g", o->ops->name, lr);
    o->lr = lr;
    return EM_OK;
}

char *em_optimizer_str(const em_optimizer *o)
{
    return o ? em_args_str_repr(o->args, o->ops->name) : NULL;
}

void *em_optimizer_state(em_optimizer *o) { return o ? o->state : NULL; }
const em_args *em_optimizer_args(const em_optimizer *o) { return o ? o->args : NULL; }
int em_optimizer_param_count(const em_optimizer *o) { return o ? o->nparams : 0; }
int64_t em_optimizer_steps(const em_optimizer *o) { return o ? o->steps : 0; }

em_tensor *em_optimizer_param(const em_optimizer *o, int i)
{
    return o && i >= 0 && i < o->nparams ? o->params[i] : NULL;
}

/* For checkpoints: the name of parameter i. */
const char *em__optimizer_param_name(const em_optimizer *o, int i);
const char *em__optimizer_param_name(const em_optimizer *o, int i)
{
    return o && i >= 0 && i < o->nparams ? o->names[i] : NULL;
}

/* For checkpoints: slot k of parameter i (name and tensor), or false past the end. */
bool em__optimizer_slot_at(const em_optimizer *o, int i, int k, const char **name,
                           em_tensor **t);
bool em__optimizer_slot_at(const em_optimizer *o, int i, int k, const char **name,
                           em_tensor **t)
{
    if (!o || i < 0 || i >= o->nparams || k < 0 || k >= MAX_SLOTS || !o->slots[i][k].t)
        return false;
    *name = o->slots[i][k].name;
    *t = o->slots[i][k].t;
    return true;
}

void em__optimizer_set_steps(em_optimizer *o, int64_t steps);
void em__optimizer_set_steps(em_optimizer *o, int64_t steps) { o->steps = steps; }

/* For checkpoints: replaces every slot of every parameter by the n given (slot name[j] of
 * parameter param[j] = t[j], each retained). Checks first that they fit, so that on error
 * nothing has changed. */
int em__optimizer_replace_slots(em_optimizer *o, int n, const int *param,
                                const char *const *name, em_tensor *const *t);
int em__optimizer_replace_slots(em_optimizer *o, int n, const int *param,
                                const char *const *name, em_tensor *const *t)
{
    for (int j = 0; j < n; j++) {
        if (param[j] < 0 || param[j] >= o->nparams || !t[j])
            return em_set_error(EM_ERR_INTERNAL, "em__optimizer_replace_slots: bad arguments");
        if (strlen(name[j]) >= sizeof o->slots[0][0].name)
            return em_set_error(EM_ERR_INVALID, "%s: state name '%s' of '%s' is too long",
                                o->ops->name, name[j], o->names[param[j]]);
        int count = 0;
        for (int k = 0; k < n; k++)
            count += param[k] == param[j];
        if (count > MAX_SLOTS)
            return em_set_error(EM_ERR_INVALID, "%s: %d state tensors for '%s'; at most %d",
                                o->ops->name, count, o->names[param[j]], MAX_SLOTS);
    }
    for (int i = 0; i < o->nparams; i++)
        for (int k = 0; k < MAX_SLOTS; k++) {
            em_release(o->slots[i][k].t);
            o->slots[i][k].t = NULL;
        }
    for (int j = 0; j < n; j++) {
        slot *s = o->slots[param[j]];
        int k = 0;
        while (s[k].t)
            k++;
        em_retain(t[j]);
        s[k].t = t[j];
        snprintf(s[k].name, sizeof s[k].name, "%s", name[j]);
    }
    return EM_OK;
}

em_tensor *em_optimizer_slot(const em_optimizer *o, int i, const char *name)
{
    if (!o || i < 0 || i >= o->nparams || !name)
        return NULL;
    for (int k = 0; k < MAX_SLOTS; k++)
        if (o->slots[i][k].t && !strcmp(o->slots[i][k].name, name))
            return o->slots[i][k].t;
    return NULL;
}

int em_optimizer_set_slot(em_optimizer *o, int i, const char *name, em_tensor *t)
{
    if (!o || i < 0 || i >= o->nparams || !name || !t || strlen(name) >= sizeof o->slots[0][0].name)
        return em_set_error(EM_ERR_INVALID, "em_optimizer_set_slot: bad arguments");
    int free_k = -1;
    for (int k = 0; k < MAX_SLOTS; k++) {
        if (o->slots[i][k].t && !strcmp(o->slots[i][k].name, name)) {
            em_retain(t);
            em_release(o->slots[i][k].t);
            o->slots[i][k].t = t;
            return EM_OK;
        }
        if (!o->slots[i][k].t && free_k < 0)
            free_k = k;
    }
    if (free_k < 0)
        return em_set_error(EM_ERR_INVALID, "%s: at most %d state tensors per parameter",
                            o->ops->name, MAX_SLOTS);
    em_retain(t);
    snprintf(o->slots[i][free_k].name, sizeof o->slots[i][free_k].name, "%s", name);
    o->slots[i][free_k].t = t;
    return EM_OK;
}

/* ---- schedulers -------------------------------------------------------------------------------- */

/* lr_at for `epoch`, or -1 with the error set when it is not a valid learning rate. A type
 * has no init to reject bad arguments in, so lr_at reports them by returning NaN after
 * em_set_error(); that message is kept. */
static double scheduled_lr(const em_scheduler *s, int epoch)
{
    double lr = s->ops->lr_at(s->args, s->base_lr, epoch);
    if (lr >= 0)
        return lr;
    if (!isnan(lr) || em_last_status() == EM_OK)
        em_set_error(EM_ERR_INVALID, "%s: invalid learning rate %g at epoch %d", s->ops->name,
                     lr, epoch);
    return -1;
}

em_scheduler *em_scheduler_new(const char *text, em_optimizer *o)
{
    if (em__require_init("em_scheduler_new") < 0)
        return NULL;
    if (!o)
        return em__null_arg("em_scheduler_new", "optimizer"), NULL;
    em_spec *spec = em_spec_parse(text, "scheduler spec");
    if (!spec)
        return NULL;
    const em_scheduler_ops *ops = find(em_spec_name(spec), true);
    em_scheduler *s = ops ? calloc(1, sizeof *s) : NULL;
    if (!s) {
        em_spec_free(spec);
        return NULL;
    }
    s->ops = ops;
    s->spec = spec;
    s->opt = o;
    s->base_lr = o->lr;
    double lr = -1;
    if ((s->args = em_args_bind(spec, ops->nparams, ops->params)))
        lr = scheduled_lr(s, 0);
    if (!(lr >= 0)) {
        em_scheduler_free(s);
        return NULL;
    }
    o->lr = lr;
    return s;
}

void em_scheduler_free(em_scheduler *s)
{
    if (!s)
        return;
    em_args_free(s->args);
    em_spec_free(s->spec);
    free(s);
}

int em_scheduler_step(em_scheduler *s)
{
    if (!s)
        return em__null_arg("scheduler_step", "scheduler");
    double lr = scheduled_lr(s, s->epoch + 1);
    if (lr < 0)
        return em_last_status();
    s->epoch++;
    s->opt->lr = lr;
    return EM_OK;
}

int em_scheduler_epoch(const em_scheduler *s) { return s ? s->epoch : 0; }
