#include "tools/onnx_export.h"

#include "flowgrad/version.h"
#include "tools/atomic_file.h"
#include "tools/protobuf.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>

namespace flowgrad {
namespace {

// Field numbers and enum values of onnx/onnx.proto.
enum ModelField { kIrVersion = 1, kProducerName = 2, kProducerVersion = 3, kModelGraph = 7, kOpsetImport = 8 };
enum GraphField { kGraphNode = 1, kGraphName = 2, kInitializer = 5, kGraphInput = 11, kGraphOutput = 12 };
enum NodeField { kNodeInput = 1, kNodeOutput = 2, kNodeName = 3, kOpType = 4, kAttribute = 5 };
enum AttributeField { kAttrName = 1, kAttrFloat = 2, kAttrInt = 3, kAttrString = 4, kAttrInts = 8, kAttrType = 20 };
enum AttributeType { kFloatType = 1, kIntType = 2, kStringType = 3, kIntsType = 7 };
enum TensorField { kDims = 1, kDataType = 2, kTensorName = 8, kRawData = 9 };
enum TensorType_ { kFloat = 1, kInt64 = 7 };
constexpr int64_t kIrVersion7 = 7;  // what opset 14 belongs to

ProtoWriter int_attr(std::string_view name, int64_t value) {
  return std::move(ProtoWriter().bytes(kAttrName, name).int64(kAttrInt, value).int64(kAttrType, kIntType));
}
ProtoWriter float_attr(std::string_view name, double value) {
  return std::move(ProtoWriter().bytes(kAttrName, name).float32(kAttrFloat, static_cast<float>(value)).int64(kAttrType, kFloatType));
}
ProtoWriter string_attr(std::string_view name, std::string_view value) {
  return std::move(ProtoWriter().bytes(kAttrName, name).bytes(kAttrString, value).int64(kAttrType, kStringType));
}
ProtoWriter ints_attr(std::string_view name, const std::vector<int64_t>& values) {
  return std::move(ProtoWriter().bytes(kAttrName, name).packed_int64(kAttrInts, values).int64(kAttrType, kIntsType));
}

// A value's type: float, its shape with dimension 0 symbolic ("batch") when it is batched.
ProtoWriter value_info(const std::string& name, const Shape& shape, bool batched) {
  ProtoWriter dims;
  for (size_t d = 0; d < shape.size(); ++d) {
    ProtoWriter dim;
    if (d == 0 && batched) dim.bytes(2, "batch");
    else dim.int64(1, shape[d]);
    dims.message(1, dim);
  }
  ProtoWriter tensor;
  tensor.int64(1, kFloat).message(2, dims);
  return std::move(ProtoWriter().bytes(1, name).message(2, ProtoWriter().message(1, tensor)));
}

// Attributes of a node, with defaults, through the op's generic encoding (graph/attrs.h).
struct Attrs {
  AttrMap map;
  template <class T> T get(const std::string& key, T fallback) const {
    const AttrEntry* e = map.find(key);
    if (!e) return fallback;
    if constexpr (std::is_same_v<T, double>)
      if (const auto* i = std::get_if<int64_t>(&e->value)) return static_cast<double>(*i);
    if constexpr (std::is_same_v<T, std::vector<int64_t>>)
      if (const auto* i = std::get_if<int64_t>(&e->value)) return {*i, *i};
    const T* v = std::get_if<T>(&e->value);
    return v ? *v : fallback;
  }
  std::vector<int64_t> pair(const std::string& key, std::vector<int64_t> fallback) const {
    std::vector<int64_t> v = get(key, fallback);
    if (v.empty()) v = fallback;
    if (v.size() == 1) v.push_back(v[0]);
    return v;
  }
};

// Pads [top, left, bottom, right] of a window op from its attributes and the shapes it maps between:
// `same` pads as TensorFlow does, the odd one at the end.
std::vector<int64_t> window_pads(const Attrs& a, const Shape& x, const Shape& y, const std::vector<int64_t>& kernel,
                                 const std::vector<int64_t>& stride, const std::vector<int64_t>& dilation) {
  const std::string padding = a.get<std::string>("padding", "valid");
  std::vector<int64_t> pads = a.get<std::vector<int64_t>>("pads", {});
  if (padding == "same") {
    pads.assign(4, 0);
    for (int d = 0; d < 2; ++d) {
      const int64_t total = std::max<int64_t>(0, (y[2 + d] - 1) * stride[d] + (kernel[d] - 1) * dilation[d] + 1 - x[2 + d]);
      pads[d] = total / 2, pads[2 + d] = total - total / 2;
    }
  }
  if (pads.size() == 2) pads = {pads[0], pads[1], pads[0], pads[1]};
  if (pads.empty()) pads.assign(4, 0);
  return pads;
}

class OnnxWriter {
 public:
  OnnxWriter(const Spec& spec, const ParamStore& params) : graph_(spec.graph.for_inference()), params_(params) {}

  std::string model(const std::vector<std::string>& requested, const std::vector<std::string>& from) {
    for (const std::string& name : from) {
      auto v = graph_.find(name);
      if (!v) fail(ErrorKind::spec, "the model has no value '{}' to start the export from", name);
      cut_.insert(v->id());
    }
    std::vector<std::pair<std::string, int>> outputs;  // ONNX output name, value id
    for (const std::string& name : requested) {
      auto it = std::find_if(graph_.outputs().begin(), graph_.outputs().end(), [&](const auto& o) { return o.first == name; });
      if (it != graph_.outputs().end()) outputs.push_back(*it);
      else if (auto v = graph_.find(name)) outputs.emplace_back(name, v->id());
      else fail(ErrorKind::spec, "the model has no output or value '{}' to export", name);
    }
    const std::vector<bool> needed = needed_nodes(outputs);
    for (size_t n = 0; n < graph_.nodes().size(); ++n)
      if (needed[n]) emit(graph_.nodes()[n]);
    for (const auto& [name, id] : outputs) {
      const ValueInfo& v = graph_.info(id);
      if (name != v.name) node("Identity", {v.name}, {name});
      out_.message(kGraphOutput, value_info(name, v.type.shape, batched_));
    }
    return assemble();
  }

 private:
  std::vector<bool> needed_nodes(const std::vector<std::pair<std::string, int>>& outputs) {
    std::vector<bool> needed(graph_.nodes().size(), false);
    std::vector<int> stack;
    for (const auto& [name, id] : outputs) stack.push_back(id);
    while (!stack.empty()) {
      const int id = stack.back();
      const ValueInfo& v = graph_.info(id);
      stack.pop_back();
      if (v.kind == ValueKind::input || cut_.count(id)) {
        // A value the export starts from is batched when the graph's inputs are (its leading axis is theirs).
        const bool batched = v.kind == ValueKind::input ? v.batched : std::any_of(graph_.values().begin(), graph_.values().end(),
                                                                                   [](const ValueInfo& i) { return i.kind == ValueKind::input && i.batched; });
        if (inputs_.insert(v.name).second) {
          batched_ = batched_ || batched;
          in_.message(kGraphInput, value_info(v.name, v.type.shape, batched));
        }
        continue;
      }
      if (v.kind != ValueKind::node || needed[static_cast<size_t>(v.producer)]) continue;
      needed[static_cast<size_t>(v.producer)] = true;
      for (int in : graph_.nodes()[static_cast<size_t>(v.producer)].inputs) stack.push_back(in);
    }
    return needed;
  }

  std::string assemble() {
    ProtoWriter graph;
    for (const ProtoWriter& n : nodes_) graph.message(kGraphNode, n);
    graph.bytes(kGraphName, graph_.name());
    std::string body = graph.str() + initializers_.str() + in_.str() + out_.str();
    ProtoWriter opset;
    opset.bytes(1, "").int64(2, kOnnxOpset);
    ProtoWriter model;
    model.int64(kIrVersion, kIrVersion7).bytes(kProducerName, "flowgrad").bytes(kProducerVersion, FLOWGRAD_VERSION);
    model.bytes(kModelGraph, body).message(kOpsetImport, opset);
    return model.str();
  }

  const ValueInfo& info(int id) const { return graph_.info(id); }
  const std::string& name(int id) const { return graph_.info(id).name; }

  void node(std::string_view op, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
            const std::vector<ProtoWriter>& attributes = {}) {
    ProtoWriter n;
    for (const std::string& in : inputs) n.bytes(kNodeInput, in);
    for (const std::string& out : outputs) n.bytes(kNodeOutput, out);
    n.bytes(kNodeName, fmt::format("{}_{}", op, nodes_.size())).bytes(kOpType, op);
    for (const ProtoWriter& a : attributes) n.message(kAttribute, a);
    nodes_.push_back(std::move(n));
  }

  std::string fresh(const std::string& base) { return fmt::format("{}/onnx_{}", base, counter_++); }

  void initializer(const std::string& tensor_name, const Shape& shape, std::string raw, int data_type = kFloat) {
    ProtoWriter t;
    t.packed_int64(kDims, shape).int64(kDataType, data_type).bytes(kTensorName, tensor_name).bytes(kRawData, raw);
    initializers_.message(kInitializer, t);
  }
  std::string constant(const std::string& base, const std::vector<int64_t>& values) {
    const std::string tensor_name = fresh(base);
    initializer(tensor_name, {static_cast<int64_t>(values.size())},
                std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(int64_t)), kInt64);
    return tensor_name;
  }
  std::string floats(const std::string& base, const Shape& shape, const std::vector<float>& values) {
    const std::string tensor_name = fresh(base);
    initializer(tensor_name, shape, std::string(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(float)));
    return tensor_name;
  }
  const Tensor& stored(int id) const {
    if (info(id).kind == ValueKind::node)
      fail(ErrorKind::unsupported, "ONNX export: '{}' is computed, but the exporter needs it as a stored parameter", name(id));
    return params_.get(name(id));
  }

  // Parameters and state the graph reads become initializers; everything else is named as in flowgrad.
  std::string operand(int id) {
    const ValueInfo& v = info(id);
    if ((v.kind == ValueKind::param || v.kind == ValueKind::state) && stored_.insert(v.name).second) {
      const Tensor& t = params_.get(v.name);
      initializer(v.name, t.shape(), std::string(static_cast<const char*>(t.data()), t.type().bytes()));
    }
    return v.name;
  }

  void activation(const std::string& kind, double alpha, const std::string& x, const std::string& out) {
    static const std::map<std::string, std::string> ops = {{"relu", "Relu"}, {"sigmoid", "Sigmoid"}, {"tanh", "Tanh"},
                                                          {"leaky_relu", "LeakyRelu"}, {"elu", "Elu"},
                                                          {"softplus", "Softplus"}, {"linear", "Identity"}};
    const auto it = ops.find(kind);
    if (it == ops.end()) fail(ErrorKind::unsupported, "ONNX export: no ONNX op for the activation '{}'", kind);
    std::vector<ProtoWriter> attributes;
    if (kind == "leaky_relu" || kind == "elu") attributes.push_back(float_attr("alpha", alpha));
    node(it->second, {x}, {out}, attributes);
  }
  // `op` writes its result to a fresh name; the node's activation attribute then writes the node's output.
  void with_activation(const Node& n, const Attrs& a, std::string_view op, const std::vector<std::string>& inputs,
                       const std::vector<ProtoWriter>& attributes = {}) {
    const std::string pre = fresh(name(n.outputs[0]));
    node(op, inputs, {pre}, attributes);
    activation(a.get<std::string>("activation", "linear"), a.get("alpha", 0.0), pre, name(n.outputs[0]));
  }

  // ONNX's W [1, blocks x units, in] from flowgrad's [in, blocks x units], gate block k taken from order[k].
  std::string gate_weights(int id, const std::vector<int>& order) {
    const Tensor& w = stored(id);
    const int64_t in = w.shape()[0], all = w.shape()[1], units = all / static_cast<int64_t>(order.size());
    std::vector<float> out(static_cast<size_t>(in * all));
    for (size_t k = 0; k < order.size(); ++k)
      for (int64_t j = 0; j < units; ++j)
        for (int64_t i = 0; i < in; ++i)
          out[static_cast<size_t>((static_cast<int64_t>(k) * units + j) * in + i)] = w.f32()[i * all + order[k] * units + j];
    return floats(name(id), {1, all, in}, out);
  }
  std::vector<float> gate_bias(int id, const std::vector<int>& order) {
    const Tensor& b = stored(id);
    const int64_t units = b.numel() / static_cast<int64_t>(order.size());
    std::vector<float> out;
    for (int k : order) out.insert(out.end(), b.f32() + k * units, b.f32() + (k + 1) * units);
    return out;
  }

  // ONNX's LSTM and GRU, batch-first (layout 1): Y [batch, steps, 1, units] and Y_h [batch, 1, units] lose the
  // directions axis to give flowgrad's outputs.
  void recurrent(const Node& n, const Attrs& a, bool lstm) {
    const std::vector<int> order = lstm ? std::vector<int>{0, 3, 1, 2} : std::vector<int>{1, 0, 2};
    const int64_t units = info(n.inputs[2]).type.shape[0];
    std::string x = operand(n.inputs[0]);
    if (const int64_t steps = a.get<int64_t>("steps", 0); steps > 0) {  // the same input at every step
      const std::string column = fresh(x), repeated = fresh(x);
      node("Unsqueeze", {x, constant(x, {1})}, {column});
      node("Expand", {column, constant(x, {1, steps, 1})}, {repeated});
      x = repeated;
    }
    std::vector<float> bias = gate_bias(n.inputs[3], order);
    if (lstm) bias.resize(bias.size() * 2, 0.0f);
    else {
      const std::vector<float> recurrent_bias = gate_bias(n.inputs[4], order);
      bias.insert(bias.end(), recurrent_bias.begin(), recurrent_bias.end());
    }
    std::vector<std::string> inputs = {x, gate_weights(n.inputs[1], order), gate_weights(n.inputs[2], order),
                                       floats(name(n.inputs[3]), {1, static_cast<int64_t>(bias.size())}, bias), ""};
    for (size_t i = lstm ? 4 : 5; i < n.inputs.size(); ++i) {  // initial states [batch, units] -> [batch, 1, units]
      inputs.push_back(fresh(name(n.inputs[i])));
      node("Unsqueeze", {operand(n.inputs[i]), constant(inputs.back(), {1})}, {inputs.back()});
    }
    const int states = lstm ? 3 : 2;
    std::vector<std::string> raw;
    for (int k = 0; k < states; ++k) raw.push_back(fresh(name(n.outputs[static_cast<size_t>(k)])));
    std::vector<ProtoWriter> attributes = {int_attr("hidden_size", units), int_attr("layout", 1)};
    if (!lstm) attributes.push_back(int_attr("linear_before_reset", 1));
    node(lstm ? "LSTM" : "GRU", inputs, raw, attributes);
    for (int k = 0; k < states; ++k)
      node("Squeeze", {raw[static_cast<size_t>(k)], constant(raw[static_cast<size_t>(k)], {k == 0 ? 2 : 1})},
           {name(n.outputs[static_cast<size_t>(k)])});
  }

  void emit(const Node& n) {
    const Attrs a{n.op->encode ? n.op->encode(n.typed) : n.attrs};
    const std::string& op = n.op->name;
    std::vector<std::string> in;
    for (int id : n.inputs) in.push_back(op == "lstm" || op == "gru" ? name(id) : operand(id));
    const std::string out = name(n.outputs[0]);
    const Shape& x = info(n.inputs[0]).type.shape;
    const Shape& y = info(n.outputs[0]).type.shape;
    static const std::map<std::string, std::string> elementwise = {
        {"add", "Add"}, {"sub", "Sub"}, {"mul", "Mul"}, {"div", "Div"}, {"relu", "Relu"}, {"sigmoid", "Sigmoid"},
        {"tanh", "Tanh"}, {"softplus", "Softplus"}, {"exp", "Exp"}, {"log", "Log"}, {"sqrt", "Sqrt"}, {"abs", "Abs"},
        {"neg", "Neg"}};
    if (auto it = elementwise.find(op); it != elementwise.end()) {
      node(it->second, in, {out});
    } else if (op == "leaky_relu" || op == "elu") {
      activation(op, a.get("alpha", op == "elu" ? 1.0 : 0.01), in[0], out);
    } else if (op == "dense") {
      const std::string product = n.inputs.size() > 2 ? fresh(out) : out;
      if (n.inputs.size() > 2) {
        node("MatMul", {in[0], in[1]}, {product});
        with_activation(n, a, "Add", {product, in[2]});
      } else {
        with_activation(n, a, "MatMul", {in[0], in[1]});
      }
    } else if (op == "conv2d") {
      const Shape& w = info(n.inputs[1]).type.shape;
      const std::vector<int64_t> stride = a.pair("stride", {1, 1}), dilation = a.pair("dilation", {1, 1});
      const std::vector<int64_t> kernel = {w[2], w[3]};
      with_activation(n, a, "Conv", in,
                      {ints_attr("kernel_shape", kernel), ints_attr("strides", stride), ints_attr("dilations", dilation),
                       ints_attr("pads", window_pads(a, x, y, kernel, stride, dilation)),
                       int_attr("group", a.get<int64_t>("groups", 1))});
    } else if (op == "max_pool2d" || op == "avg_pool2d") {
      const std::vector<int64_t> kernel = a.pair("kernel", {}), stride = a.pair("stride", kernel);
      std::vector<ProtoWriter> attributes = {ints_attr("kernel_shape", kernel), ints_attr("strides", stride),
                                             ints_attr("pads", window_pads(a, x, y, kernel, stride, {1, 1}))};
      if (op == "avg_pool2d") attributes.push_back(int_attr("count_include_pad", a.get("count_include_pad", false)));
      node(op == "max_pool2d" ? "MaxPool" : "AveragePool", in, {out}, attributes);
    } else if (op == "upsample") {
      if (a.get<std::string>("mode", "nearest") != "nearest" || y[2] % x[2] != 0 || y[3] % x[3] != 0)
        fail(ErrorKind::unsupported, "ONNX export covers nearest upsampling by whole factors, not node '{}'", n.name);
      const std::vector<float> scales = {1, 1, static_cast<float>(y[2] / x[2]), static_cast<float>(y[3] / x[3])};
      node("Resize", {in[0], "", floats(out, {4}, scales)}, {out},
           {string_attr("mode", "nearest"), string_attr("coordinate_transformation_mode", "asymmetric"),
            string_attr("nearest_mode", "floor")});
    } else if (op == "flatten") {
      node("Flatten", in, {out}, {int_attr("axis", 1)});
    } else if (op == "reshape") {
      std::vector<int64_t> shape = y;
      if (batched_ && !shape.empty()) shape[0] = -1;
      node("Reshape", {in[0], constant(out, shape)}, {out});
    } else if (op == "transpose") {
      node("Transpose", in, {out}, {ints_attr("perm", a.get<std::vector<int64_t>>("permutation", {}))});
    } else if (op == "concat") {
      node("Concat", in, {out}, {int_attr("axis", a.get<int64_t>("axis", 0))});
    } else if (op == "repeat") {
      std::vector<int64_t> shape(y.size(), 1);
      shape[1] = y[1];
      const std::string column = fresh(out);
      node("Unsqueeze", {in[0], constant(out, {1})}, {column});
      node("Expand", {column, constant(out, shape)}, {out});
    } else if (op == "batch_norm") {
      node("BatchNormalization", in, {out}, {float_attr("epsilon", a.get("epsilon", 1e-5))});
    } else if (op == "lstm" || op == "gru") {
      recurrent(n, a, op == "lstm");
    } else {
      fail(ErrorKind::unsupported, "ONNX export does not cover op '{}' (node '{}') yet; export the outputs before it, "
           "or the weights as NPZ (--npz)", op, n.name);
    }
  }

  Graph graph_;
  const ParamStore& params_;
  std::vector<ProtoWriter> nodes_;
  ProtoWriter initializers_, in_, out_;
  std::set<std::string> inputs_, stored_;
  std::set<int> cut_;  // values that are the model's inputs instead of being computed
  bool batched_ = false;
  int counter_ = 0;
};

}  // namespace

std::string onnx_model(const Spec& spec, const ParamStore& params, const std::vector<std::string>& outputs,
                       const std::vector<std::string>& from) {
  std::vector<std::string> wanted = outputs;
  if (wanted.empty())
    for (const auto& [name, id] : spec.graph.outputs())
      if (std::find(spec.losses.begin(), spec.losses.end(), name) == spec.losses.end()) wanted.push_back(name);
  if (wanted.empty()) fail(ErrorKind::spec, "the spec has no outputs besides its losses; name one to export");
  return OnnxWriter(spec, params).model(wanted, from);
}

void write_onnx(const std::string& path, const Spec& spec, const ParamStore& params, const std::vector<std::string>& outputs,
                const std::vector<std::string>& from) {
  write_file_atomically(path, onnx_model(spec, params, outputs, from));
}

}  // namespace flowgrad
