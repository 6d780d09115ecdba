/* plugins/optim/plugin.c - the optim plugin: optimizers and learning-rate schedulers.
 *
 * Registers the optimizers SGD, Adam, AdamW and RMSprop and the schedulers StepLR,
 * MultiStepLR, CosineAnnealingLR and LinearLR. The update rules are PyTorch 1.13's
 * single-tensor implementations, one core op per parameter on the parameters' device; the
 * core keeps the per-parameter state (moved by em_module_to, saved by em_optimizer_save) and
 * runs each step with grad mode off, so an update records no graph.
 */
#include "optim.h"

static int optim_init(em_registry *reg)
{
    int rc = em_optim__register_sgd(reg);
    if (rc == EM_OK)
        rc = em_optim__register_adam(reg);
    if (rc == EM_OK)
        rc = em_optim__register_rmsprop(reg);
    if (rc == EM_OK)
        rc = em_optim__register_schedulers(reg);
    return rc;
}

EM_PLUGIN_DEFINE(
    "optim", EMBER_VERSION_STRING,
    "optimizers (SGD, Adam, AdamW, RMSprop) and lr schedulers (StepLR, MultiStepLR, "
    "CosineAnnealingLR, LinearLR)",
    optim_init, NULL)
