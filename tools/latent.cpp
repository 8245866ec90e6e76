#include "tools/latent.h"

#include "graph/error.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "tools/trainer.h"

#include <algorithm>
#include <cmath>

namespace flowgrad {
namespace {

bool has_output(const Spec& spec, const std::string& name) {
  const auto& outputs = spec.graph.outputs();
  return std::any_of(outputs.begin(), outputs.end(), [&](const auto& o) { return o.first == name; });
}

}  // namespace

std::string encoded_value(const Spec& spec, const std::string& chosen, const std::string& option) {
  if (!chosen.empty()) return chosen;
  if (spec.latent) return spec.latent->mean;
  if (has_output(spec, "code")) return "code";
  fail(ErrorKind::spec, "'{}' declares no latent section and has no output named 'code': name the code with {} VALUE, "
       "or add `latent: {{value: VALUE}}` to the spec (docs/spec.md)", spec.name, option);
}

std::string decoded_value(const Spec& spec, const std::string& chosen, const std::string& option) {
  if (!chosen.empty()) return chosen;
  if (spec.latent) return spec.latent->value;
  if (has_output(spec, "code")) return "code";
  fail(ErrorKind::spec, "'{}' declares no latent section and has no output named 'code': say where codes are fed with "
       "{} VALUE, or add `latent: {{value: VALUE}}` to the spec (docs/spec.md)", spec.name, option);
}

Tensor decode_codes(const Graph& graph, ParamStore& params, const std::string& at, const std::string& output,
                    const Tensor& codes, int64_t batch, int threads) {
  Graph inference = graph.for_inference();
  const std::string fed = inference[at].name(), fetched = inference[output].name();
  const ValueInfo& target = inference[fed].info();
  if (target.kind != ValueKind::input && target.kind != ValueKind::node)
    fail(ErrorKind::spec, "'{}' is a parameter: codes are fed to an input or a computed value", at);
  if (target.type.dtype != DType::f32 || target.type.shape.empty())
    fail(ErrorKind::shape, "'{}' is {}: codes are fed to an f32 value with a batch axis", at, to_string(target.type));
  const int64_t count = codes.shape().empty() ? 0 : codes.shape()[0];
  const int64_t units = numel(Shape(target.type.shape.begin() + 1, target.type.shape.end()));
  if (count == 0 || codes.numel() != count * units)
    fail(ErrorKind::shape, "'{}' takes codes of {} values each, but the codes are {}", at, units, to_string(codes.type()));
  const std::vector<std::string> cut = target.kind == ValueKind::input ? std::vector<std::string>{} : std::vector{fed};
  Tensor result;
  int64_t out_row = 0;
  std::unique_ptr<Plan> plan;
  for (int64_t first = 0, index = 0; first < count; first += batch, ++index) {
    const int64_t rows = std::min(batch, count - first);
    if (!plan || rows != batch) {  // one plan for the full batches, another for a last partial one
      plan = std::make_unique<Plan>(inference.with_batch(rows), params, PlanOptions{.threads = threads, .fetch = {fetched}, .feed = cut});
      for (const std::string& input : plan->required_inputs())
        if (input != fed)
          fail(ErrorKind::spec, "'{}' computed from '{}' also needs input '{}': decode a value that only the code reaches",
               output, at, input);
    }
    plan->feed(fed, codes.f32() + first * units, static_cast<size_t>(rows * units) * sizeof(float));
    plan->run(evaluation_step(index));
    Tensor out = plan->fetch_copy(fetched);
    if (out.type().dtype != DType::f32 || out.shape().empty())
      fail(ErrorKind::shape, "'{}' is {}: decoding fetches an f32 value with a batch axis", output, to_string(out.type()));
    if (result.shape().empty()) {
      Shape shape = out.shape();
      shape[0] = count;
      out_row = out.numel() / rows;
      result = Tensor(TensorType{shape});
    }
    std::copy_n(out.f32(), out.numel(), result.f32() + first * out_row);
  }
  return result;
}

std::vector<std::vector<float>> interpolate_codes(const std::vector<float>& from, const std::vector<float>& to,
                                                  int64_t steps, bool slerp) {
  double dot = 0, from_norm = 0, to_norm = 0;
  for (size_t i = 0; i < from.size(); ++i)
    dot += double(from[i]) * to[i], from_norm += double(from[i]) * from[i], to_norm += double(to[i]) * to[i];
  const double cosine = from_norm > 0 && to_norm > 0 ? dot / std::sqrt(from_norm * to_norm) : 1.0;
  const double omega = std::acos(std::clamp(cosine, -1.0, 1.0));
  const bool spherical = slerp && std::sin(omega) > 1e-6;
  std::vector<std::vector<float>> path;
  for (int64_t s = 0; s < steps; ++s) {
    const double t = static_cast<double>(s) / static_cast<double>(steps - 1);
    const double a = spherical ? std::sin((1 - t) * omega) / std::sin(omega) : 1 - t;
    const double b = spherical ? std::sin(t * omega) / std::sin(omega) : t;
    std::vector<float>& code = path.emplace_back(from.size());
    for (size_t i = 0; i < from.size(); ++i) code[i] = static_cast<float>(a * from[i] + b * to[i]);
  }
  return path;
}

std::vector<float> normal_draws(int64_t count, int64_t units, uint64_t seed) {
  std::vector<float> draws(static_cast<size_t>(count * units));
  for (size_t i = 0; i < draws.size(); ++i) draws[i] = static_cast<float>(random_normal(seed, hash_name("sample"), i));
  return draws;
}

double normal_quantile(double p) {
  // Bisection on the CDF 0.5 erfc(-x / sqrt 2): exact to double precision in 100 halvings of [-40, 40].
  double low = -40, high = 40;
  for (int i = 0; i < 100; ++i) {
    const double mid = (low + high) / 2;
    (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? low : high) = mid;
  }
  return (low + high) / 2;
}

Shape picture_shape(const Shape& sample_shape, const std::string& what) {
  if (sample_shape.size() == 2) return sample_shape;
  if (sample_shape.size() == 3 && sample_shape[0] == 1) return {sample_shape[1], sample_shape[2]};
  if (sample_shape.size() == 1) {
    const auto side = static_cast<int64_t>(std::lround(std::sqrt(static_cast<double>(sample_shape[0]))));
    if (side * side == sample_shape[0]) return {side, side};
  }
  fail(ErrorKind::shape, "{} holds samples of shape {}, which are not images (a square number of values, [h, w] or "
       "[1, h, w]): write them with --out instead", what, to_string(sample_shape));
}

std::vector<std::vector<float>> grid_rows(std::span<const float> images, int64_t count, int64_t image_numel,
                                          int64_t columns) {
  std::vector<std::vector<float>> rows;
  for (int64_t first = 0; first < count; first += columns) {
    std::vector<float>& row = rows.emplace_back(static_cast<size_t>(columns * image_numel), 0.0f);
    const int64_t n = std::min(columns, count - first);
    std::copy_n(images.begin() + first * image_numel, n * image_numel, row.begin());
  }
  return rows;
}

}  // namespace flowgrad
