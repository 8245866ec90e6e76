// ONNX export of a spec's inference graph (opset 14): the graph as Graph::for_inference() runs it, from its
// inputs to the outputs asked for, with the trained parameters as initializers. Written straight in ONNX's
// protobuf encoding (tools/protobuf.h); tests check every file with onnx.checker (full_check) and run it
// against flowgrad's own outputs.
//
// Covered ops: dense (MatMul, Add, activation), conv2d (Conv), max_pool2d and avg_pool2d, upsample (nearest,
// Resize), flatten and reshape, transpose, concat, add/sub/mul/div, the activations, batch_norm in inference,
// repeat (Expand), lstm and gru (ONNX LSTM and GRU, batch-first, with the gate blocks reordered: ONNX
// orders them i, o, f, c and z, r, h). Any other op is an Error(unsupported) naming the node. The batch
// dimension stays symbolic ("batch"), so the model takes any batch size.
#pragma once

#include "graph/tensor.h"
#include "tools/spec.h"

#include <string>
#include <vector>

namespace flowgrad {

inline constexpr int64_t kOnnxOpset = 14;

// The model as bytes. `outputs` names spec outputs or any value (e.g. "code" for the encoder half); empty:
// every output of the spec that is not a loss. `from` names values that become the model's inputs instead of
// being computed (e.g. "code" for the decoder half); empty: the spec's inputs.
std::string onnx_model(const Spec& spec, const ParamStore& params, const std::vector<std::string>& outputs = {},
                       const std::vector<std::string>& from = {});

// Writes onnx_model(...) to `path` atomically.
void write_onnx(const std::string& path, const Spec& spec, const ParamStore& params,
                const std::vector<std::string>& outputs = {}, const std::vector<std::string>& from = {});

}  // namespace flowgrad
