// Weights out of flowgrad and back in: NPZ files that numpy reads (np.load) and, in PyTorch's layout, that a
// module's load_state_dict takes directly; and one loader for --checkpoint and --params alike.
//
// PyTorch's layout names a parameter "<layer>.<role>" (block instances nest: "clean.hidden.weight") and
// stores it as torch.nn does:
//   dense             kernel [in, out] -> weight [out, in] (transposed), bias -> bias            (nn.Linear)
//   conv2d(_transpose) kernel -> weight (the same layout), bias -> bias                 (nn.Conv2d, ConvTranspose2d)
//   lstm              kernel [in, 4u] -> weight_ih_l0 [4u, in], recurrent_kernel -> weight_hh_l0 (transposed;
//                     gates i, f, g, o in both), bias -> bias_ih_l0, and bias_hh_l0 of zeros    (nn.LSTM, batch_first)
//   gru               the same with 3 gates r, z, n, and recurrent_bias -> bias_hh_l0            (nn.GRU, batch_first)
//   batch_norm        gamma -> weight, beta -> bias, running_mean, running_var, and num_batches_tracked (0)
//   params:           "a/b" -> "a.b", unchanged
// Optimizer state has no place in a module's state_dict and is left out of that layout.
#pragma once

#include "graph/tensor.h"
#include "tools/npz.h"
#include "tools/spec.h"

#include <optional>
#include <string>

namespace flowgrad {

enum class WeightLayout { flowgrad, torch };

// The arrays to save: with the flowgrad layout every tensor of `store` (parameters, optimizer state, running
// statistics) by its name; with the torch layout the spec's parameters and state as described above.
NpzArrays weight_arrays(const Spec& spec, const ParamStore& store, WeightLayout layout = WeightLayout::flowgrad);

void write_weights_npz(const std::string& path, const Spec& spec, const ParamStore& store,
                       WeightLayout layout = WeightLayout::flowgrad);

// Loads trained tensors into `store` from a checkpoint (.fgck, which must have been written for `spec`) or an
// NPZ file in either layout (told apart by its names), whichever `path` holds. Every parameter of `graph` must
// be there with its shape; tensors the store has and the file lacks (optimizer state) keep their values, and
// tensors the store lacks are ignored. Throws Error(io) naming the file and the tensor otherwise.
void load_weights(const std::string& path, const Spec& spec, const Graph& graph, ParamStore& store);

}  // namespace flowgrad
