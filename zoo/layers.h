// Layers: ops together with the parameters they own, named the Keras way ("<layer>/kernel",
// "<layer>/bias") so checkpoints and summaries read naturally.
#pragma once

#include "graph/graph.h"
#include "ops/ops.h"

#include <optional>
#include <string>
#include <vector>

namespace flowgrad::zoo {

// x[batch, in] -> activation(x · kernel + bias) with kernel [in, units] (Glorot-uniform, as Keras) and
// a zero bias. The node (and so its output) is called `name`.
Value dense_layer(const std::string& name, Value x, int64_t units, Activation activation = Activation::linear);

struct LstmOptions {
  // Keras' unit_forget_bias: the forget gate's bias starts at 1, so the cell keeps its state early in training.
  bool unit_forget_bias = true;
  std::optional<LstmState> initial = std::nullopt;  // of the first layer; zeros when absent
};

// x[batch, steps, in] -> one LSTM layer of `units`, parameters as Keras names and initializes them:
// "<name>/kernel" [in, 4 units] Glorot-uniform, "<name>/recurrent_kernel" [units, 4 units] orthogonal,
// "<name>/bias" [4 units] zeros (ones in the forget gate's block with unit_forget_bias). The lstm node, and
// so its output sequence, is called `name`.
LstmResult lstm_layer(const std::string& name, Value x, int64_t units, const LstmOptions& options = {});

// x[batch, steps, in] -> one GRU layer of `units` (PyTorch's variant, ops.h), parameters as Keras names and
// initializes them: "<name>/kernel" [in, 3 units] Glorot-uniform, "<name>/recurrent_kernel" [units, 3 units]
// orthogonal, "<name>/bias" and "<name>/recurrent_bias" [3 units] zeros. The gru node, and so its output
// sequence, is called `name`; h0 defaults to zeros.
GruResult gru_layer(const std::string& name, Value x, int64_t units, std::optional<Value> h0 = std::nullopt);

// Stacked LSTM layers "<name>/0", "<name>/1", ...: layer k reads layer k-1's output sequence. Returns every
// layer's result in order (back() is the top layer).
std::vector<LstmResult> lstm_stack(const std::string& name, Value x, const std::vector<int64_t>& units,
                                   const LstmOptions& options = {});

}  // namespace flowgrad::zoo
