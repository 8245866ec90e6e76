#include "autodiff/gradcheck.h"

#include "autodiff/autodiff.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <sstream>

namespace flowgrad {

double GradCheckReport::worst() const {
  double worst = 0;
  for (const auto& e : entries) worst = std::max(worst, e.max_rel_error);
  return worst;
}

namespace {

double loss_value(const Graph& graph, int loss, const std::map<std::string, RefTensor>& given) {
  const std::vector<RefTensor> values = evaluate_reference(graph, given);
  const RefTensor& l = values[static_cast<size_t>(loss)];
  double total = 0;
  for (double v : l.data) total += v;
  return total;
}

double relative_error(double actual, double expected) {
  return std::abs(actual - expected) / std::max(1.0, std::abs(expected));
}

}  // namespace

GradCheckReport check_graph_gradients(const Graph& forward, const std::string& loss_name,
                                      const std::vector<std::string>& wrt, const std::map<std::string, RefTensor>& given,
                                      double h) {
  Graph graph(forward);
  Value loss = graph[loss_name];
  std::vector<Value> targets;
  for (const auto& name : wrt) targets.push_back(graph[name]);
  std::vector<Value> grads = gradients(loss, targets);
  std::vector<RefTensor> values = evaluate_reference(graph, given);

  GradCheckReport report;
  std::map<std::string, RefTensor> perturbed = given;
  for (size_t k = 0; k < wrt.size(); ++k) {
    const RefTensor& analytic = values[static_cast<size_t>(grads[k].id())];
    RefTensor& x = perturbed.at(wrt[k]);
    GradCheckReport::Entry entry{wrt[k], 0, 0};
    for (int64_t i = 0; i < x.size(); ++i) {
      const double saved = x[i];
      x[i] = saved + h;
      double up = loss_value(forward, loss.id(), perturbed);
      x[i] = saved - h;
      double down = loss_value(forward, loss.id(), perturbed);
      x[i] = saved;
      double numeric = (up - down) / (2 * h);
      entry.max_abs_error = std::max(entry.max_abs_error, std::abs(analytic[i] - numeric));
      entry.max_rel_error = std::max(entry.max_rel_error, relative_error(analytic[i], numeric));
    }
    report.entries.push_back(entry);
  }
  return report;
}

namespace {

RefTensor random_input(const OpCase& c, int index, uint64_t seed) {
  const TensorType& type = c.inputs[static_cast<size_t>(index)];
  RefTensor t(type.shape);
  for (int64_t i = 0; i < t.size(); ++i) {
    double u = random_uniform(seed, static_cast<uint64_t>(index), static_cast<uint64_t>(i));
    if (type.dtype == DType::s32 || type.dtype == DType::u8) {
      t[i] = std::floor(u * static_cast<double>(c.int_high));
    } else if (c.gap > 0) {
      // |x| in [gap, max(|low|, |high|)], sign drawn separately, clipped to [low, high].
      double magnitude = c.gap + u * (std::max(std::abs(c.low), std::abs(c.high)) - c.gap);
      double sign = random_uniform(seed + 1, static_cast<uint64_t>(index), static_cast<uint64_t>(i)) < 0.5 ? -1 : 1;
      double v = sign * magnitude;
      if (v < c.low || v > c.high) v = -v;
      t[i] = v;
    } else {
      t[i] = c.low + u * (c.high - c.low);
    }
  }
  if (c.fill) c.fill(index, t);
  for (double& v : t.data) v = static_cast<double>(static_cast<float>(v));  // exactly what the f32 kernels see
  return t;
}

// f32 (or s32, u8) copy of a reference tensor, as a plan input.
std::vector<std::byte> to_buffer(const RefTensor& t, DType dtype) {
  const size_t width = size_of(dtype);
  std::vector<std::byte> buffer(static_cast<size_t>(t.size()) * width);
  for (int64_t i = 0; i < t.size(); ++i) {
    std::byte* at = buffer.data() + static_cast<size_t>(i) * width;
    if (dtype == DType::s32) {
      int32_t v = static_cast<int32_t>(t[i]);
      std::memcpy(at, &v, 4);
    } else if (dtype == DType::u8) {
      uint8_t v = static_cast<uint8_t>(t[i]);
      std::memcpy(at, &v, 1);
    } else {
      float v = static_cast<float>(t[i]);
      std::memcpy(at, &v, 4);
    }
  }
  return buffer;
}

double element(const void* data, DType dtype, int64_t i) {
  if (dtype == DType::s32) return static_cast<const int32_t*>(data)[i];
  if (dtype == DType::u8) return static_cast<const uint8_t*>(data)[i];
  return static_cast<const float*>(data)[i];
}

// Integer outputs (indices, such as a max pooling workspace) must match the reference exactly: any
// difference counts as an error of at least 1.
double max_error(const void* actual, DType dtype, const RefTensor& expected) {
  double worst = 0;
  for (int64_t i = 0; i < expected.size(); ++i) {
    double e = relative_error(element(actual, dtype, i), expected[i]);
    if (std::isnan(e)) return INFINITY;
    worst = std::max(worst, dtype == DType::f32 || e == 0 ? e : std::max(e, 1.0));
  }
  return worst;
}

// True for an output its op declares opaque (kernel state such as the LSTM workspace, whose reference
// value is a placeholder).
bool is_opaque(const Graph& graph, int id) {
  const ValueInfo& v = graph.info(id);
  if (v.kind != ValueKind::node) return false;
  const auto& opaque = graph.nodes()[static_cast<size_t>(v.producer)].op->opaque_outputs;
  return std::find(opaque.begin(), opaque.end(), v.output_index) != opaque.end();
}

// Runs `graph` with f32 kernels for instruction-set level `isa` on the given inputs and returns the worst
// error of the fetched values against the double-precision results `expected` (indexed by value id). Integer
// outputs (a pooling workspace) must match exactly; opaque outputs are skipped.
double kernel_error(const Graph& graph, const std::vector<int>& fetched, const std::map<std::string, RefTensor>& given,
                    const std::vector<RefTensor>& expected, Isa isa) {
  ParamStore store;
  PlanOptions options;
  options.isa = isa;
  for (int id : fetched) options.fetch.push_back(graph.info(id).name);
  Plan plan(graph, store, options);
  std::vector<std::vector<std::byte>> buffers;
  for (const auto& [name, tensor] : given) {
    Value v = const_cast<Graph&>(plan.graph())[name];
    buffers.push_back(to_buffer(tensor, v.type().dtype));
    plan.feed(name, buffers.back().data());
  }
  plan.run(0);
  double worst = 0;
  for (int id : fetched)
    if (!is_opaque(graph, id))
      worst = std::max(worst, max_error(plan.fetch(graph.info(id).name), graph.info(id).type.dtype,
                                        expected[static_cast<size_t>(id)]));
  return worst;
}

// kernel_error on every level this CPU runs (hand-written kernels have one variant per level, and each must
// match the reference): the worst error, and the level it came from.
KernelCheck kernel_check(const Graph& graph, const std::vector<int>& fetched,
                         const std::map<std::string, RefTensor>& given, const std::vector<RefTensor>& expected) {
  KernelCheck worst;
  for (Isa isa : runnable_isas()) {
    const double error = kernel_error(graph, fetched, given, expected, isa);
    if (error >= worst.error) worst = {error, std::string(isa_name(isa))};
  }
  return worst;
}

}  // namespace

OpCheckResult check_op(const OpCase& c, uint64_t seed) {
  OpCheckResult result;
  std::vector<std::string> shapes;
  for (const auto& t : c.inputs) shapes.push_back(to_string(t));
  std::vector<std::string> attrs;
  for (const auto& e : c.attrs.entries()) attrs.push_back(fmt::format("{}={}", e.key, to_string(e.value)));
  result.describe = fmt::format("op {} {} inputs {} attrs {{{}}}", c.op, c.label, fmt::join(shapes, " "), fmt::join(attrs, ", "));

  Graph graph(c.op);
  std::vector<Value> inputs;
  std::map<std::string, RefTensor> given;
  for (size_t i = 0; i < c.inputs.size(); ++i) {
    std::string name = fmt::format("x{}", i);
    inputs.push_back(graph.input(name, c.inputs[i].shape, c.inputs[i].dtype, false));
    given[name] = random_input(c, static_cast<int>(i), seed);
  }
  std::vector<Value> outputs = graph.add(c.op, inputs, c.attrs, "op");

  // Forward: f32 kernels against the double reference. An op that updates inputs in place (an optimizer
  // step, which has no outputs) is checked by the values it leaves in those inputs: the kernel writes into
  // the fed buffers, the reference into its copies.
  std::vector<int> output_ids;
  for (const Value& o : outputs) output_ids.push_back(o.id());
  for (int i : graph.nodes().back().op->mutates) output_ids.push_back(inputs[static_cast<size_t>(i)].id());
  std::vector<RefTensor> reference = evaluate_reference(graph, given);
  if (!output_ids.empty()) result.forward = kernel_check(graph, output_ids, given, reference);

  // Backward: loss = sum_k sum(out_k * w_k) with fixed random weights.
  std::vector<std::string> wrt;
  for (size_t i = 0; i < c.inputs.size(); ++i)
    if (c.inputs[i].dtype == DType::f32 && std::find(c.no_grad.begin(), c.no_grad.end(), static_cast<int>(i)) == c.no_grad.end())
      wrt.push_back(fmt::format("x{}", i));
  if (wrt.empty() || outputs.empty() || !graph.nodes().back().op->gradient) return result;
  std::optional<Value> loss;
  for (size_t k = 0; k < outputs.size(); ++k) {
    if (outputs[k].type().dtype != DType::f32) continue;
    std::string name = fmt::format("w{}", k);
    Value w = graph.input(name, outputs[k].shape(), DType::f32, false);
    RefTensor weights(outputs[k].shape());
    for (int64_t i = 0; i < weights.size(); ++i)
      weights[i] = static_cast<float>(0.5 + random_uniform(seed, 1000 + k, static_cast<uint64_t>(i)));
    given[name] = weights;
    Value term = graph.apply("sum", {graph.apply("mul", {outputs[k], w})});
    loss = loss ? graph.apply("add", {*loss, term}) : term;
  }
  if (!loss) return result;
  graph.add_alias("loss", *loss);

  GradCheckReport report = check_graph_gradients(graph, "loss", wrt, given);
  result.gradient_error = report.worst();

  // The gradient graph's f32 kernels against its double-precision evaluation.
  Graph with_grads(graph);
  std::vector<Value> targets;
  for (const auto& name : wrt) targets.push_back(with_grads[name]);
  std::vector<Value> grads = gradients(with_grads["loss"], targets);
  std::vector<RefTensor> expected = evaluate_reference(with_grads, given);
  std::vector<int> grad_ids;
  for (const Value& g : grads) grad_ids.push_back(g.id());
  result.kernel_gradient = kernel_check(with_grads, grad_ids, given, expected);
  return result;
}

OpCase op_case(const std::string& op, const OpExample& example) {
  return OpCase{.op = op, .inputs = example.inputs, .attrs = example.attrs, .low = example.low, .high = example.high,
                .gap = example.gap, .int_high = example.int_high, .no_grad = example.no_grad, .fill = example.fill,
                .label = example.label};
}

std::vector<OpCheckRow> check_registered_op(const std::string& name) {
  const OpDef& op = registry().get(name);
  if (op.examples.empty()) return {{.op = name, .example = "-", .note = "no registered example"}};
  std::vector<OpCheckRow> rows;
  for (const OpExample& example : op.examples) {
    std::vector<std::string> shapes;
    for (const TensorType& t : example.inputs) shapes.push_back(to_string(t.shape));
    OpCheckRow& line = rows.emplace_back(
        OpCheckRow{name, example.label.empty() ? fmt::format("{}", fmt::join(shapes, " ")) : example.label});
    const OpCase row = op_case(name, example);
    try {
      line.result = check_op(row);
    } catch (const Error& e) {  // an example its own op refuses, a kernel that cannot be created
      line.note = e.what();
      continue;
    }
    line.ok = line.result.forward.error < row.forward_tolerance && line.result.gradient_error < row.gradient_tolerance &&
              line.result.kernel_gradient.error < row.kernel_gradient_tolerance;
  }
  return rows;
}

std::string format_op_checks(const std::vector<OpCheckRow>& rows) {
  std::string table = fmt::format("{:<32} {:<26} {:>11} {:>11} {:>11}  {}\n", "op", "example", "forward", "gradient",
                                  "f32 grad", "result");
  for (const OpCheckRow& row : rows) {
    const std::string result = row.ok ? "ok" : row.note.empty() ? "FAIL" : fmt::format("FAIL ({})", row.note);
    if (!row.note.empty())
      table += fmt::format("{:<32} {:<26} {:>11} {:>11} {:>11}  {}\n", row.op, row.example, "-", "-", "-", result);
    else
      table += fmt::format("{:<32} {:<26} {:>11.2e} {:>11.2e} {:>11.2e}  {}\n", row.op, row.example,
                           row.result.forward.error, row.result.gradient_error, row.result.kernel_gradient.error, result);
  }
  return table;
}

void check_plugin_ops(const LoadedPlugin& plugin) {
  std::vector<OpCheckRow> rows;
  for (const std::string& op : plugin.ops)
    for (OpCheckRow& row : check_registered_op(op)) rows.push_back(std::move(row));
  std::vector<std::string> failed;
  for (const OpCheckRow& row : rows)
    if (!row.ok && std::find(failed.begin(), failed.end(), row.op) == failed.end()) failed.push_back(row.op);
  if (failed.empty()) return;
  const OpCase tolerances;
  // The table's lines are the error's notes: a message is one line (Error escapes line breaks in it).
  std::vector<std::string> table;
  std::istringstream lines(format_op_checks(rows));
  for (std::string line; std::getline(lines, line);) table.push_back(line);
  throw Error(ErrorKind::spec,
              fmt::format("the op harness refused {}: its f32 kernels against its reference (tolerance {:.0e}), its gradient "
                          "rule against central differences ({:.0e}) and its f32 gradient kernels ({:.0e}); `flowgrad "
                          "gradcheck --plugin PATH` prints this table, --trust-plugin loads the plugin unchecked:",
                          fmt::join(failed, ", "), tolerances.forward_tolerance, tolerances.gradient_tolerance,
                          tolerances.kernel_gradient_tolerance),
              {}, table);
}

}  // namespace flowgrad
