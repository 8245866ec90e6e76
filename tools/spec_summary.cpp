// `flowgrad summary`: the Keras-style table of a loaded spec (declared in tools/spec.h).
#include "tools/spec.h"

#include <fmt/format.h>

#include <algorithm>

namespace flowgrad {
namespace {

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

}  // namespace

std::string format_summary(const Spec& spec) {
  size_t name_width = 5, op_width = 2, shape_width = 12;
  for (const SummaryRow& row : spec.summary) {
    name_width = std::max(name_width, row.layer.size());
    op_width = std::max(op_width, row.op.size());
    shape_width = std::max(shape_width, to_string(row.output).size());
  }
  std::string out = fmt::format("Model: \"{}\" (batch {})\n", spec.name, spec.batch);
  const size_t width = name_width + op_width + shape_width + 18;
  out += std::string(width, '=') + "\n";
  out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>12}\n", "Layer", name_width, "Op", op_width, "Output shape", shape_width, "Param #");
  out += std::string(width, '-') + "\n";
  for (const SummaryRow& row : spec.summary)
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:>12}\n", row.layer, name_width, row.op, op_width, to_string(row.output),
                       shape_width, with_commas(row.params));
  int64_t trainable = 0, frozen = 0;
  for (const ValueInfo& v : spec.graph.values())
    if (v.kind == ValueKind::param) (v.trainable ? trainable : frozen) += numel(v.type.shape);
  out += std::string(width, '=') + "\n";
  out += fmt::format("Total params: {}\nTrainable params: {}\nNon-trainable params: {}\n", with_commas(trainable + frozen),
                     with_commas(trainable), with_commas(frozen));
  return out;
}

}  // namespace flowgrad
