/* core/module_internal.h - the module and optimizer structures shared by module.c, optim.c,
 * summary.c and checkpoint.c. Not installed. */
#ifndef EMBER_CORE_MODULE_INTERNAL_H
#define EMBER_CORE_MODULE_INTERNAL_H

#include "internal.h"

typedef struct em__named {
    char *name;
    em_tensor *t;
} em__named;

typedef struct em__child {
    char *name;
    em_module *m;
} em__child;

typedef struct em__flat {
    char name[256];          /* state_dict name: "0.weight" */
    em_tensor *t;
} em__flat;

struct em_module {
    const em_module_ops *ops;
    const em_spec *spec;     /* this module's spec node (owned by the root's tree) */
    em_spec *owned_spec;     /* the root owns the parsed tree */
    em_args *args;
    void *state;
    bool training;
    bool initialised;        /* init succeeded, so destroy may run */
    em_module *parent;
    em__named *params, *buffers;
    int nparams, nbuffers;
    em__child *children;
    int nchildren;
    em__flat *flat;          /* parameters then buffers of the subtree; NULL when stale */
    int nflat_params, nflat;
    em_optimizer **optims;   /* optimizers over this module (weak), moved by em_module_to */
    int noptims;
};

/* core/module.c */
int em__module_attach_optimizer(em_module *m, em_optimizer *o);
void em__module_forget_optimizer(em_module *m, em_optimizer *o);
void em__module_types_forget(em_plugin_rec *rec);
void em__module_types_free(void);
void em__module_types_describe(const em_plugin_rec *r, em_strbuf *sb);
void em__optim_types_describe(const em_plugin_rec *r, em_strbuf *sb);
/* core/optim.c */
void em__optimizer_detach(em_optimizer *o);        /* its module is being freed */
int em__optimizer_move(em_optimizer *o, em_device d);
void em__optim_types_forget(em_plugin_rec *rec);
void em__optim_types_free(void);
/* core/summary.c: records a module's output while a summary is being taken */
void em__summary_record(em_module *m, em_tensor *y);
/* core/transfer.c: moves t's data to d in place (t keeps its handle; it stays a leaf) */
int em__tensor_move(em_tensor *t, em_device d);

#endif
