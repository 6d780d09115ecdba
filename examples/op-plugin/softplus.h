/* softplus.h - the public wrapper of the softplus op that the ember-softplus plugin adds.
 *
 * A program cannot link against a plugin (plugins are loaded at run time), so the wrapper is
 * header-only: it calls the op by name through em_op_call, which works on any backend once
 * the plugin is on the plugin path (EMBER_PLUGIN_PATH, a `plugin_path` line of the config,
 * or the installed plugin directory).
 */
#ifndef EMBER_SOFTPLUS_H
#define EMBER_SOFTPLUS_H

#include <ember/ember.h>
#include <ember/plugin.h>

/* torch.nn.functional.softplus(x, beta, threshold): log(1 + exp(beta x)) / beta, and x itself
 * where beta x > threshold. Differentiable (SoftplusBackward0). Returns a new tensor, or NULL
 * with em_last_error() set (for example "no op named 'softplus' is registered" when the
 * plugin was not found). */
static inline em_tensor *softplus(em_tensor *x, double beta, double threshold)
{
    em_attr attrs[2] = {{0}, {0}};
    attrs[0].f = beta;
    attrs[1].f = threshold;
    return em_op_call("softplus", 1, &x, 2, attrs);
}

#endif
