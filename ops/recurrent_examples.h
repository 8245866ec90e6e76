// Op examples (graph/op.h) for the recurrent ops' gradients, lstm_grad and gru_grad, shared by ops/lstm.cpp
// and ops/gru.cpp.
#pragma once

#include "graph/op.h"

#include <string>
#include <vector>

namespace flowgrad::recurrent {

// An example of a recurrent op's gradient op, whose inputs are the forward's inputs, the forward's outputs,
// then the gradients of the first `output_grads` outputs. Its kernel reads the forward's workspace, which
// only the forward kernel can write, so the fill draws the forward's inputs itself (fixed values, as f32: x
// in [-1, 1], the weights in [-0.5, 0.5]) and runs `forward_op` on them for its outputs; the output
// gradients stay as drawn. `label` describes the geometry.
OpExample recurrent_grad_example(const std::string& forward_op, const std::vector<TensorType>& forward_inputs,
                                 const AttrMap& attrs, const std::vector<TensorType>& forward_outputs,
                                 size_t output_grads, std::string label);

}  // namespace flowgrad::recurrent
