// Reverse-mode automatic differentiation: graph -> graph. Gradients are ordinary nodes appended to the
// same graph, so the result can be planned, run, exported and differentiated again.
//
// The pass owns the bookkeeping every gradient rule would otherwise repeat: it visits nodes in reverse,
// skips nodes and inputs that no requested gradient depends on (frozen parameters and stop_gradient cost
// nothing), sums a rule's gradient down to its input's shape where the input was broadcast, accumulates
// fan-out, and checks that every gradient has its input's shape.
#pragma once

#include "graph/graph.h"

#include <vector>

namespace flowgrad {

// Appends the nodes computing d loss / d x for every x in `wrt` and returns those gradients, in order.
// `loss` must be a scalar (shape [] or [1]). A value the loss does not depend on gets a zero gradient.
// With `alias`, each gradient is also named gradient_name(x); a pass that is part of a model (the
// vector-Jacobian products of a contractive penalty) leaves those names to the training gradients.
std::vector<Value> gradients(Value loss, const std::vector<Value>& wrt, bool alias = true);

// The name gradients() gives to the gradient of the value named `name`.
std::string gradient_name(const std::string& name);

}  // namespace flowgrad
