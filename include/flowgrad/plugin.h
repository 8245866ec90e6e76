// What a flowgrad plugin includes: a shared library of ops and layers that flowgrad loads at run time
// (docs/plugins.md walks through examples/plugins/). It brings
//   - the entry point, FLOWGRAD_PLUGIN, and the registrar it fills (graph/plugin.h);
//   - the op record and OpBuilder (graph/op.h), attributes (graph/attrs.h), layers (graph/layer.h);
//   - graphs and values for gradient rules and layers (graph/graph.h), the built-in ops' C++ front end
//     (ops/ops.h: x * y, sigmoid(x), sum(x, axes) ...);
//   - kernel helpers: kernels::FunctionKernel and kernels::parallel_elements (ops/kernel_util.h), and
//     vectorizable float exp and log (ops/fast_math.h).
// Build it with find_package(flowgrad) and flowgrad_add_plugin(NAME SOURCES...).
#pragma once

#include "flowgrad/version.h"

#include "graph/error.h"
#include "graph/graph.h"
#include "graph/isa.h"
#include "graph/layer.h"
#include "graph/op.h"
#include "graph/plugin.h"
#include "ops/fast_math.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"
