// A double-precision interpreter over the ops' naive references. It defines what every kernel must
// compute, and it is what finite differences and gradient checks run on.
#pragma once

#include "graph/graph.h"

#include <map>
#include <string>
#include <vector>

namespace flowgrad {

// Evaluates every node of the graph; `given` supplies inputs, params and state by name. Returns one tensor
// per value id (the given ones included). Ops that mutate inputs mutate the returned copies.
std::vector<RefTensor> evaluate_reference(const Graph& graph, const std::map<std::string, RefTensor>& given,
                                          uint64_t step = 0);

}  // namespace flowgrad
