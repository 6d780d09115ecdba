/* ember/ember.h - the umbrella header: everything an application using Ember needs.
 *
 * Plugin authors include <ember/plugin.h> as well.
 */
#ifndef EMBER_EMBER_H
#define EMBER_EMBER_H

#include "types.h"
#include "runtime.h"
#include "tensor.h"
#include "ops.h"
#include "autograd.h"
#include "spec.h"
#include "module.h"
#include "data.h"
#include "dist.h"

#endif
