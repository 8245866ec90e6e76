#include "tools/weights.h"

#include "tools/checkpoint.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>

namespace flowgrad {
namespace {

// One tensor in PyTorch's layout: which flowgrad tensor it comes from, and how.
struct TorchTensor {
  std::string torch_name, source;  // source empty: zeros of `zeros_shape` (bias_hh_l0 of an LSTM)
  bool transpose = false;
  Shape zeros_shape;
  bool step_count = false;  // batch_norm's num_batches_tracked: an int64 scalar
  std::string plus;         // loading: a second PyTorch tensor added in (an LSTM's bias_hh_l0 to bias_ih_l0)
};

std::string dotted(std::string name) {
  std::replace(name.begin(), name.end(), '/', '.');
  return name;
}

// The PyTorch names of the spec's parameters and state, from the layer (summary row) that created each.
std::vector<TorchTensor> torch_layout(const Spec& spec, const ParamStore& store) {
  std::map<std::string, std::string> op_of;  // layer name -> its op
  for (const SummaryRow& row : spec.summary) op_of[row.layer] = row.op;
  std::vector<TorchTensor> out;
  std::set<std::string> batch_norms;
  for (const ValueInfo& v : spec.graph.values()) {
    if (v.kind != ValueKind::param && v.kind != ValueKind::state) continue;
    const size_t slash = v.name.rfind('/');
    const std::string layer = slash == std::string::npos ? "" : v.name.substr(0, slash);
    const std::string role = v.name.substr(slash + 1);
    const auto it = op_of.find(layer);
    const std::string op = it == op_of.end() ? "" : it->second;
    const std::string module = dotted(layer) + ".";
    const bool recurrent = op == "lstm" || op == "gru";
    if ((op == "dense" && role == "kernel") || (recurrent && (role == "kernel" || role == "recurrent_kernel"))) {
      const std::string name = op == "dense" ? "weight" : role == "kernel" ? "weight_ih_l0" : "weight_hh_l0";
      out.push_back({module + name, v.name, true});
    } else if (recurrent && role == "bias") {
      out.push_back({module + "bias_ih_l0", v.name, false, {}, false, op == "lstm" ? module + "bias_hh_l0" : ""});
      if (op == "lstm") out.push_back({module + "bias_hh_l0", "", false, v.type.shape});
    } else if (recurrent && role == "recurrent_bias") {
      out.push_back({module + "bias_hh_l0", v.name});
    } else if ((op == "dense" || op.starts_with("conv2d")) && (role == "kernel" || role == "bias")) {
      out.push_back({module + (role == "kernel" ? "weight" : "bias"), v.name});
    } else if (op == "batch_norm") {
      const std::map<std::string, std::string> names = {{"gamma", "weight"}, {"beta", "bias"}};
      out.push_back({module + (names.count(role) ? names.at(role) : role), v.name});
      if (batch_norms.insert(layer).second) out.push_back({module + "num_batches_tracked", "", false, {}, true});
    } else if (store.contains(v.name)) {
      out.push_back({dotted(v.name), v.name});
    }
  }
  return out;
}

NpyArray transposed(const Tensor& t, const std::string& path) {
  NpyArray array = npy_array(t, path);
  const int64_t rows = t.shape()[0], columns = t.shape()[1];
  auto* out = reinterpret_cast<float*>(array.bytes.data());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c) out[c * rows + r] = t.f32()[r * columns + c];
  array.shape = {columns, rows};
  return array;
}

// Copies an array into a store tensor of the same type, transposing a PyTorch matrix back.
void copy_into(Tensor& target, const NpyArray& array, bool transpose, const std::string& name, const std::string& path) {
  Shape expected = target.shape();
  if (transpose) std::reverse(expected.begin(), expected.end());
  if (array.shape != expected)
    fail(ErrorKind::io, "'{}' holds '{}' with shape {}, the spec needs {}", path, name, to_string(array.shape),
         to_string(expected));
  Tensor value = to_tensor(array, target.type().dtype);
  if (!transpose) {
    std::copy_n(static_cast<const std::byte*>(value.data()), target.type().bytes(), static_cast<std::byte*>(target.data()));
    return;
  }
  const int64_t rows = expected[0], columns = expected[1];
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c) target.f32()[c * rows + r] = value.f32()[r * columns + c];
}

bool is_checkpoint(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char magic[6] = {};
  in.read(magic, sizeof magic);
  return in.gcount() == 6 && std::string_view(magic, 6) == "FGCKPT";
}

}  // namespace

NpzArrays weight_arrays(const Spec& spec, const ParamStore& store, WeightLayout layout) {
  NpzArrays arrays;
  if (layout == WeightLayout::flowgrad) {
    for (const auto& [name, tensor] : store.tensors()) arrays.emplace_back(name, npy_array(tensor, name));
    return arrays;
  }
  for (const TorchTensor& t : torch_layout(spec, store)) {
    NpyArray array;
    if (t.step_count) {
      array.dtype = NpyDType::i8;
      array.bytes.resize(8);
    } else if (t.source.empty()) {
      array.shape = t.zeros_shape;
      array.bytes.resize(static_cast<size_t>(numel(t.zeros_shape)) * sizeof(float));
    } else {
      const Tensor& tensor = store.get(t.source);
      array = t.transpose ? transposed(tensor, t.source) : npy_array(tensor, t.source);
    }
    arrays.emplace_back(t.torch_name, std::move(array));
  }
  return arrays;
}

void write_weights_npz(const std::string& path, const Spec& spec, const ParamStore& store, WeightLayout layout) {
  write_npz(path, weight_arrays(spec, store, layout));
}

void load_weights(const std::string& path, const Spec& spec, const Graph& graph, ParamStore& store) {
  std::map<std::string, NpyArray> arrays;
  std::map<std::string, Tensor> checkpoint_tensors;
  const bool checkpoint = is_checkpoint(path);
  if (checkpoint) checkpoint_tensors = load_checkpoint(path).tensors;
  else
    for (auto& [name, array] : read_npz(path)) arrays.emplace(name, std::move(array));
  auto lookup = [&](const std::string& name) -> const NpyArray* {
    if (checkpoint) {
      auto it = checkpoint_tensors.find(name);
      if (it == checkpoint_tensors.end()) return nullptr;
      return &arrays.emplace(name, npy_array(it->second, path)).first->second;
    }
    auto it = arrays.find(name);
    return it == arrays.end() ? nullptr : &it->second;
  };
  std::map<std::string, const TorchTensor*> torch_source;
  const std::vector<TorchTensor> torch = torch_layout(spec, store);
  for (const TorchTensor& t : torch)
    if (!t.source.empty()) torch_source.emplace(t.source, &t);
  std::set<std::string> params;  // what must be in the file
  for (const ValueInfo& v : graph.values())
    if (v.kind == ValueKind::param) params.insert(v.name);
  for (auto& [name, tensor] : store.tensors()) {
    if (const NpyArray* array = lookup(name)) {
      copy_into(tensor, *array, false, name, path);
      continue;
    }
    const auto t = torch_source.find(name);
    const NpyArray* array = t == torch_source.end() ? nullptr : lookup(t->second->torch_name);
    if (array) {
      copy_into(tensor, *array, t->second->transpose, t->second->torch_name, path);
      if (const NpyArray* plus = t->second->plus.empty() ? nullptr : lookup(t->second->plus)) {
        Tensor added(tensor.type());
        copy_into(added, *plus, false, t->second->plus, path);
        for (int64_t i = 0; i < tensor.numel(); ++i) tensor.f32()[i] += added.f32()[i];
      }
    } else if (params.count(name)) {
      fail(ErrorKind::io, "'{}' has no parameter '{}'{}", path, name,
           t == torch_source.end() ? "" : fmt::format(" (nor '{}' in PyTorch's layout)", t->second->torch_name));
    }
  }
}

}  // namespace flowgrad
