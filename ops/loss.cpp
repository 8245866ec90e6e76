// Scalar losses (output shape []) and their fused gradient ops.
//
// Forward kernels reduce deterministically: the elements are cut into chunks of a size fixed by the shapes
// alone, each chunk is summed in double, and chunk sums are added in chunk order. The result is therefore
// bitwise identical for any thread count, and identical to running the same chunks serially.
//
// Gradient ops read the number of averaged elements from their input shapes when the kernel (or the
// reference) is built, never from an attribute: a graph re-instantiated for another batch size
// (Graph::with_batch) must average over the new batch.
#include "ops/kernels/loss_loops.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <functional>

namespace flowgrad {

std::span<const char* const> enum_names(Reduction) {
  static constexpr std::array<const char*, 3> names = {"mean", "sum", "sum_over_batch_size"};
  return names;
}

double reduction_divisor(Reduction reduction, const Shape& shape) {
  switch (reduction) {
    case Reduction::mean: return static_cast<double>(numel(shape));
    case Reduction::sum: return 1.0;
    case Reduction::sum_over_batch_size: return shape.empty() ? 1.0 : static_cast<double>(shape[0]);
  }
  return 1.0;
}

namespace {

struct LossAttrs {
  Reduction reduction = Reduction::mean;
  template <class F> void fields(F&& f) { f("reduction", reduction); }
};

// For the gradient ops of two-input losses: which input the gradient is taken with respect to.
struct LossGradAttrs {
  Reduction reduction = Reduction::mean;
  bool wrt_target = false;
  template <class F> void fields(F&& f) {
    f("reduction", reduction);
    f("wrt_target", wrt_target);
  }
};

// l1 and l2 sum over every element by default (Keras' weight regularizers); sum_over_batch_size divides by
// the batch, as Keras does for activity regularizers.
struct WeightAttrs {
  double weight = 1.0;
  Reduction reduction = Reduction::sum;
  template <class F> void fields(F&& f) {
    f("weight", weight);
    f("reduction", reduction);
  }
};

constexpr int64_t kChunk = 8192;  // elements per reduction chunk: fixes the summation order

using kernels::chunked_sum;

// A function kernel that also reserves scratch in the plan's arena (the chunk partial sums), so that run()
// does not allocate.
class ReduceKernel final : public kernels::FunctionKernel {
 public:
  ReduceKernel(Body body, double flops, int64_t chunks, std::string_view variant = {})
      : FunctionKernel(std::move(body), flops, true, variant), chunks_(chunks) {}
  size_t scratch_bytes() const override { return chunks_ > 1 ? static_cast<size_t>(chunks_) * sizeof(double) : 0; }

 private:
  int64_t chunks_;
};

int64_t chunks_of(int64_t n, int64_t chunk) { return std::max<int64_t>(1, (n + chunk - 1) / chunk); }

[[noreturn]] void dtype_error(const ShapeContext& c, int input, const char* expected) {
  throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected {}", c.node, c.op, input,
                                            to_string(c.inputs[static_cast<size_t>(input)].dtype), expected));
}

void require_f32(const ShapeContext& c, int input) {
  if (c.inputs[static_cast<size_t>(input)].dtype != DType::f32) dtype_error(c, input, "f32");
}

void require_scalar_grad(const ShapeContext& c) {
  require_f32(c, 0);
  if (numel(c.in(0)) != 1) c.fail("the incoming gradient must be a scalar");
}

const std::vector<TensorType> kScalar = {TensorType{{}, DType::f32}};

// ---- elementwise two-input losses: mse, binary_crossentropy, binary_crossentropy_logits ----------------
// Each provides value(p, t) and its partial derivatives; the sum over elements (then / N for `mean`) is the
// loss.

struct Mse {
  static constexpr auto loops = &kernels::LossLoops::mse;
  static double value(double p, double t) { return (p - t) * (p - t); }
  static double d_pred(double p, double t) { return 2 * (p - t); }
  static double d_target(double p, double t) { return -2 * (p - t); }
};

// Keras 3 clamps probabilities to [eps, 1 - eps] before the logs (tf.keras 2 also added eps inside the
// logs; the two differ by about 1e-7 relative). Clamped elements get a zero gradient, as clip_by_value's.
struct Bce {
  static constexpr auto loops = &kernels::LossLoops::bce;
  static constexpr double eps = 1e-7;
  static double clamped(double p) { return std::clamp(p, eps, 1 - eps); }
  static double value(double p, double t) {
    double q = clamped(p);
    return -(t * std::log(q) + (1 - t) * std::log(1 - q));
  }
  static double d_pred(double p, double t) {
    if (p < eps || p > 1 - eps) return 0;
    return (p - t) / (p * (1 - p));
  }
  static double d_target(double p, double) {
    double q = clamped(p);
    return std::log(1 - q) - std::log(q);
  }
};

// max(z, 0) - z t + log(1 + exp(-|z|)): never overflows, and keeps precision for large |z|.
struct BceLogits {
  static constexpr auto loops = &kernels::LossLoops::bce_logits;
  static double value(double z, double t) { return std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z))); }
  static double d_pred(double z, double t) { return 1 / (1 + std::exp(-z)) - t; }
  static double d_target(double z, double) { return -z; }
};

std::vector<TensorType> pair_loss_infer(const ShapeContext& c) {
  require_f32(c, 0);
  require_f32(c, 1);
  if (c.in(0) != c.in(1)) c.fail("prediction and target must have the same shape");
  return kScalar;
}

template <class Terms>
std::unique_ptr<Kernel> pair_loss_kernel(const KernelContext& c, Reduction reduction) {
  const int64_t n = c.inputs[0].numel();
  const int64_t chunks = chunks_of(n, kChunk);
  const double divisor = reduction_divisor(reduction, c.inputs[0].shape);
  const kernels::PairLossLoops& loops = kernels::loss_loops(c.isa).*Terms::loops;
  return std::make_unique<ReduceKernel>(
      [n, chunks, divisor, &loops](const KernelArgs& args) {
        const float* p = args.input(0);
        const float* t = args.input(1);
        double total = chunked_sum(chunks, args.threads, static_cast<double*>(args.scratch), [&](int64_t chunk) {
          const int64_t begin = chunk * kChunk;
          return loops.sum(p + begin, t + begin, std::min(n, begin + kChunk) - begin);
        });
        *args.output(0) = static_cast<float>(total / divisor);
      },
      4.0 * static_cast<double>(n), chunks, isa_name(c.isa));
}

template <class Terms>
std::unique_ptr<Kernel> pair_grad_kernel(const KernelContext& c, const LossGradAttrs& a) {
  const int64_t n = c.inputs[1].numel();
  const double divisor = reduction_divisor(a.reduction, c.inputs[1].shape);
  const bool wrt_target = a.wrt_target;
  const kernels::PairLossLoops& loops = kernels::loss_loops(c.isa).*Terms::loops;
  return std::make_unique<kernels::FunctionKernel>(
      [n, divisor, wrt_target, &loops](const KernelArgs& args) {
        const double g = static_cast<double>(*args.input(0)) / divisor;
        const float* p = args.input(1);
        const float* t = args.input(2);
        float* dx = args.output(0);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          loops.grad(p + begin, t + begin, static_cast<float>(g), wrt_target, dx + begin, end - begin);
        });
      },
      4.0 * static_cast<double>(n), true, isa_name(c.isa));
}

// Examples of a pair loss and of its gradient op (inputs g, prediction, target): [3, 4] predictions and
// targets drawn from [low, high], with `target` rewriting the target where it needs another range.
struct PairExamples {
  std::vector<OpExample> loss, grad;
};

PairExamples pair_examples(double low, double high, std::function<void(RefTensor&)> target = {}) {
  const Shape s = {3, 4};
  auto fill_target = [target](int index) -> std::function<void(int, RefTensor&)> {
    if (!target) return {};
    return [target, index](int input, RefTensor& t) {
      if (input == index) target(t);
    };
  };
  auto loss = [&](AttrMap attrs, std::string label) {
    return OpExample{.inputs = {{s}, {s}}, .attrs = std::move(attrs), .low = low, .high = high,
                     .fill = fill_target(1), .label = std::move(label)};
  };
  auto grad = [&](AttrMap attrs, std::string label) {
    return OpExample{.inputs = {{Shape{}}, {s}, {s}}, .attrs = std::move(attrs), .low = low, .high = high,
                     .fill = fill_target(2), .label = std::move(label)};
  };
  const AttrMap sum = {{"reduction", std::string("sum")}};
  AttrMap sum_wrt_target = sum;
  sum_wrt_target.set("wrt_target", true);
  const AttrMap per_batch = {{"reduction", std::string("sum_over_batch_size")}};
  return {{loss({}, "mean"), loss(sum, "sum"), loss(per_batch, "sum_over_batch_size")},
          {grad({}, "mean"), grad(sum_wrt_target, "sum, wrt_target"), grad(per_batch, "sum_over_batch_size")}};
}

template <class Terms>
void register_pair_loss(Registry& r, const std::string& name, const char* summary, PairExamples examples) {
  const std::string grad_op = name + "_grad";
  r.add(OpBuilder<LossAttrs>(name, 2, 2)
            .summary(summary)
            .examples(std::move(examples.loss))
            .infer([](const ShapeContext& c, const LossAttrs&) { return pair_loss_infer(c); })
            .reference([](const RefContext& c, const LossAttrs& a) {
              double s = 0;
              for (int64_t i = 0; i < c.in(0).size(); ++i) s += Terms::value(c.in(0)[i], c.in(1)[i]);
              return std::vector<RefTensor>{RefTensor({}, s / reduction_divisor(a.reduction, c.in(0).shape))};
            })
            .kernel([](const KernelContext& c, const LossAttrs& a) { return pair_loss_kernel<Terms>(c, a.reduction); })
            .gradient([grad_op](GradContext& c) {
              const auto& a = c.attrs<LossAttrs>();
              GradResult result(2);
              for (int input = 0; input < 2; ++input)
                if (c.needs(input))
                  result[static_cast<size_t>(input)] =
                      c.graph.apply(grad_op, {*c.grad(), c.input(0), c.input(1)}, LossGradAttrs{a.reduction, input == 1},
                                    c.name(input == 0 ? "prediction" : "target"));
              return result;
            })
            .build());
  r.add(OpBuilder<LossGradAttrs>(grad_op, 3, 3)
            .summary(fmt::format("gradient of {} w.r.t. its prediction (or target, with wrt_target)", name))
            .examples(std::move(examples.grad))
            .infer([](const ShapeContext& c, const LossGradAttrs&) {
              require_scalar_grad(c);
              if (c.in(1) != c.in(2)) c.fail("prediction and target must have the same shape");
              return std::vector<TensorType>{{c.in(1), DType::f32}};
            })
            .reference([](const RefContext& c, const LossGradAttrs& a) {
              const RefTensor &p = c.in(1), &t = c.in(2);
              const double g = c.in(0)[0] / reduction_divisor(a.reduction, p.shape);
              RefTensor dx(p.shape);
              for (int64_t i = 0; i < p.size(); ++i)
                dx[i] = g * (a.wrt_target ? Terms::d_target(p[i], t[i]) : Terms::d_pred(p[i], t[i]));
              return std::vector<RefTensor>{std::move(dx)};
            })
            .kernel([](const KernelContext& c, const LossGradAttrs& a) { return pair_grad_kernel<Terms>(c, a); })
            .build());
}

// ---- categorical cross-entropy on logits with integer labels -------------------------------------------

int64_t checked_label(double label, int64_t classes, int64_t row) {
  auto k = static_cast<int64_t>(label);
  if (k < 0 || k >= classes)
    fail(ErrorKind::runtime, "categorical_crossentropy: label {} of batch row {} is outside [0, {})", k, row, classes);
  return k;
}

// -log_softmax(row)[label] = logsumexp(row) - row[label], with the row maximum subtracted for stability.
template <class T>
double cce_row(const T* row, int64_t classes, int64_t label) {
  double m = row[0];
  for (int64_t j = 1; j < classes; ++j) m = std::max(m, static_cast<double>(row[j]));
  double s = 0;
  for (int64_t j = 0; j < classes; ++j) s += std::exp(row[j] - m);
  return m + std::log(s) - row[label];
}

// softmax(row) - onehot(label), times `scale`.
template <class T, class U>
void cce_grad_row(const T* row, int64_t classes, int64_t label, double scale, U* out) {
  double m = row[0];
  for (int64_t j = 1; j < classes; ++j) m = std::max(m, static_cast<double>(row[j]));
  double s = 0;
  for (int64_t j = 0; j < classes; ++j) s += std::exp(row[j] - m);
  for (int64_t j = 0; j < classes; ++j)
    out[j] = static_cast<U>(scale * (std::exp(row[j] - m) / s - (j == label ? 1.0 : 0.0)));
}

void cce_check(const ShapeContext& c, int logits, int labels) {
  require_f32(c, logits);
  if (c.inputs[static_cast<size_t>(labels)].dtype != DType::s32) dtype_error(c, labels, "s32 class indices");
  const Shape& x = c.in(logits);
  if (x.size() != 2) c.fail("logits must be [batch, classes]");
  if (c.in(labels) != Shape{x[0]}) c.fail("labels must be [batch], one class index per row of logits");
}

std::unique_ptr<Kernel> cce_kernel(const KernelContext& c, Reduction reduction) {
  const int64_t batch = c.inputs[0].shape[0], classes = c.inputs[0].shape[1];
  const int64_t rows = std::max<int64_t>(1, kChunk / classes);  // rows per chunk, fixed by the shape
  const int64_t chunks = chunks_of(batch, rows);
  const double divisor = reduction_divisor(reduction, c.inputs[1].shape);
  return std::make_unique<ReduceKernel>(
      [=](const KernelArgs& args) {
        const float* x = args.input(0);
        const int32_t* labels = args.input<int32_t>(1);
        double total = chunked_sum(chunks, args.threads, static_cast<double*>(args.scratch), [&](int64_t chunk) {
          double s = 0;
          for (int64_t b = chunk * rows, end = std::min(batch, b + rows); b < end; ++b)
            s += cce_row(x + b * classes, classes, checked_label(labels[b], classes, b));
          return s;
        });
        *args.output(0) = static_cast<float>(total / divisor);
      },
      3.0 * static_cast<double>(batch * classes), chunks);
}

std::unique_ptr<Kernel> cce_grad_kernel(const KernelContext& c, Reduction reduction) {
  const int64_t batch = c.inputs[1].shape[0], classes = c.inputs[1].shape[1];
  const double divisor = reduction_divisor(reduction, c.inputs[2].shape);
  return std::make_unique<kernels::FunctionKernel>(
      [=](const KernelArgs& args) {
        const double g = static_cast<double>(*args.input(0)) / divisor;
        const float* x = args.input(1);
        const int32_t* labels = args.input<int32_t>(2);
        float* dx = args.output(0);
        // Rows are independent; parallel_elements over rows keeps each row on one thread.
        kernels::parallel_elements(batch, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t b = begin; b < end; ++b)
            cce_grad_row(x + b * classes, classes, checked_label(labels[b], classes, b), g, dx + b * classes);
        });
      },
      4.0 * static_cast<double>(batch * classes));
}

void register_cce(Registry& r) {
  r.add(OpBuilder<LossAttrs>("categorical_crossentropy", 2, 2)
            .summary("cross-entropy of logits[batch, classes] against s32 labels[batch]; mean (or sum) over the batch")
            // Labels are class indices: no gradient.
            .example({.inputs = {{{4, 3}}, {{4}, DType::s32}},
                      .low = -3,
                      .high = 3,
                      .int_high = 3,
                      .no_grad = {1},
                      .label = "mean"})
            .example({.inputs = {{{6, 10}}, {{6}, DType::s32}},
                      .attrs = {{"reduction", std::string("sum")}},
                      .low = -3,
                      .high = 3,
                      .int_high = 10,
                      .no_grad = {1},
                      .label = "sum"})
            .infer([](const ShapeContext& c, const LossAttrs&) {
              cce_check(c, 0, 1);
              return kScalar;
            })
            .reference([](const RefContext& c, const LossAttrs& a) {
              const RefTensor &x = c.in(0), &labels = c.in(1);
              const int64_t batch = x.shape[0], classes = x.shape[1];
              double s = 0;
              for (int64_t b = 0; b < batch; ++b)
                s += cce_row(x.data.data() + b * classes, classes, checked_label(labels[b], classes, b));
              return std::vector<RefTensor>{RefTensor({}, s / reduction_divisor(a.reduction, labels.shape))};
            })
            .kernel([](const KernelContext& c, const LossAttrs& a) { return cce_kernel(c, a.reduction); })
            .gradient([](GradContext& c) {
              // Labels are class indices: no gradient.
              Value dx = c.graph.apply("categorical_crossentropy_grad", {*c.grad(), c.input(0), c.input(1)},
                                       c.attrs<LossAttrs>(), c.name("logits"));
              return GradResult{dx, std::nullopt};
            })
            .build());
  r.add(OpBuilder<LossAttrs>("categorical_crossentropy_grad", 3, 3)
            .summary("g * (softmax(logits) - onehot(labels)) / batch (no / batch with reduction sum)")
            .example({.inputs = {{Shape{}}, {{4, 3}}, {{4}, DType::s32}},
                      .low = -3,
                      .high = 3,
                      .int_high = 3,
                      .label = "mean"})
            .example({.inputs = {{Shape{}}, {{6, 10}}, {{6}, DType::s32}},
                      .attrs = {{"reduction", std::string("sum")}},
                      .low = -3,
                      .high = 3,
                      .int_high = 10,
                      .label = "sum"})
            .infer([](const ShapeContext& c, const LossAttrs&) {
              require_scalar_grad(c);
              cce_check(c, 1, 2);
              return std::vector<TensorType>{{c.in(1), DType::f32}};
            })
            .reference([](const RefContext& c, const LossAttrs& a) {
              const RefTensor &x = c.in(1), &labels = c.in(2);
              const int64_t batch = x.shape[0], classes = x.shape[1];
              const double g = c.in(0)[0] / reduction_divisor(a.reduction, labels.shape);
              RefTensor dx(x.shape);
              for (int64_t b = 0; b < batch; ++b)
                cce_grad_row(x.data.data() + b * classes, classes, checked_label(labels[b], classes, b), g,
                             dx.data.data() + b * classes);
              return std::vector<RefTensor>{std::move(dx)};
            })
            .kernel([](const KernelContext& c, const LossAttrs& a) { return cce_grad_kernel(c, a.reduction); })
            .build());
}

// ---- penalties: l1 = weight * sum |x|, l2 = weight * sum x^2 (divided as `reduction` says) ----------------

struct L1 {
  static double value(double x) { return std::abs(x); }
  static double grad(double x) { return x > 0 ? 1.0 : (x < 0 ? -1.0 : 0.0); }  // sign, 0 at the kink
};
struct L2 {
  static double value(double x) { return x * x; }
  static double grad(double x) { return 2 * x; }
};

template <class Terms>
void register_penalty(Registry& r, const std::string& name, const char* summary) {
  const std::string grad_op = name + "_grad";
  // |x| >= 0.1 keeps l1 off its kink.
  const AttrMap weighted = {{"weight", 0.25}};
  const AttrMap per_batch = {{"weight", 0.5}, {"reduction", std::string("sum_over_batch_size")}};
  r.add(OpBuilder<WeightAttrs>(name, 1, 1)
            .summary(summary)
            .example({.inputs = {{{3, 4}}}, .gap = 0.1})
            .example({.inputs = {{{5}}}, .attrs = weighted, .gap = 0.1, .label = "weighted"})
            .example({.inputs = {{{4, 3}}}, .attrs = per_batch, .gap = 0.1, .label = "sum_over_batch_size"})
            .infer([](const ShapeContext& c, const WeightAttrs&) {
              require_f32(c, 0);
              return kScalar;
            })
            .reference([](const RefContext& c, const WeightAttrs& a) {
              double s = 0;
              for (double x : c.in(0).data) s += Terms::value(x);
              return std::vector<RefTensor>{RefTensor({}, a.weight * s / reduction_divisor(a.reduction, c.in(0).shape))};
            })
            .kernel([](const KernelContext& c, const WeightAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.inputs[0].numel(), chunks = chunks_of(n, kChunk);
              const double weight = a.weight / reduction_divisor(a.reduction, c.inputs[0].shape);
              return std::make_unique<ReduceKernel>(
                  [n, chunks, weight](const KernelArgs& args) {
                    const float* x = args.input(0);
                    double total =
                        chunked_sum(chunks, args.threads, static_cast<double*>(args.scratch), [&](int64_t chunk) {
                          double s = 0;
                          for (int64_t i = chunk * kChunk, end = std::min(n, i + kChunk); i < end; ++i)
                            s += Terms::value(x[i]);
                          return s;
                        });
                    *args.output(0) = static_cast<float>(weight * total);
                  },
                  2.0 * static_cast<double>(n), chunks);
            })
            .gradient([grad_op](GradContext& c) {
              return GradResult{c.graph.apply(grad_op, {*c.grad(), c.input(0)}, c.attrs<WeightAttrs>(), c.name("x"))};
            })
            .build());
  r.add(OpBuilder<WeightAttrs>(grad_op, 2, 2)
            .summary(fmt::format("gradient of {}: g * weight * d/dx", name))
            .example({.inputs = {{Shape{}}, {{3, 4}}}, .gap = 0.1})
            .example({.inputs = {{Shape{}}, {{5}}}, .attrs = weighted, .gap = 0.1, .label = "weighted"})
            .example({.inputs = {{Shape{}}, {{4, 3}}}, .attrs = per_batch, .gap = 0.1, .label = "sum_over_batch_size"})
            .infer([](const ShapeContext& c, const WeightAttrs&) {
              require_scalar_grad(c);
              require_f32(c, 1);
              return std::vector<TensorType>{{c.in(1), DType::f32}};
            })
            .reference([](const RefContext& c, const WeightAttrs& a) {
              const double g = c.in(0)[0] * a.weight / reduction_divisor(a.reduction, c.in(1).shape);
              RefTensor dx(c.in(1).shape);
              for (int64_t i = 0; i < dx.size(); ++i) dx[i] = g * Terms::grad(c.in(1)[i]);
              return std::vector<RefTensor>{std::move(dx)};
            })
            .kernel([](const KernelContext& c, const WeightAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.inputs[1].numel();
              const double weight = a.weight / reduction_divisor(a.reduction, c.inputs[1].shape);
              return std::make_unique<kernels::FunctionKernel>(
                  [n, weight](const KernelArgs& args) {
                    const double g = static_cast<double>(*args.input(0)) * weight;
                    const float* x = args.input(1);
                    float* dx = args.output(0);
                    kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
                      for (int64_t i = begin; i < end; ++i) dx[i] = static_cast<float>(g * Terms::grad(x[i]));
                    });
                  },
                  static_cast<double>(n));
            })
            .build());
}

}  // namespace

void register_loss_ops(Registry& r) {
  register_pair_loss<Mse>(r, "mse", "mean (or sum) of (prediction - target)^2", pair_examples(-1, 1));
  // Probabilities inside (0.05, 0.95): away from the clamp, where finite differences see a kink.
  register_pair_loss<Bce>(r, "binary_crossentropy",
                          "cross-entropy of probabilities (clamped to [1e-7, 1 - 1e-7] like Keras) against targets",
                          pair_examples(0.05, 0.95));
  // Logits in [-4, 4]; targets are probabilities, mapped from that range into [0, 1].
  register_pair_loss<BceLogits>(r, "binary_crossentropy_logits",
                                "cross-entropy of logits against targets: max(z, 0) - z t + log1p(exp(-|z|))",
                                pair_examples(-4, 4, [](RefTensor& t) {
                                  for (double& v : t.data) v = (v + 4) / 8;
                                }));
  register_cce(r);
  register_penalty<L1>(r, "l1", "weight * sum |x| (a regularization penalty)");
  register_penalty<L2>(r, "l2", "weight * sum x^2 (a regularization penalty)");
}

Value mse(Value prediction, Value target, Reduction reduction) {
  return prediction.graph().apply("mse", {prediction, target}, LossAttrs{reduction});
}
Value binary_crossentropy(Value probability, Value target, Reduction reduction) {
  return probability.graph().apply("binary_crossentropy", {probability, target}, LossAttrs{reduction});
}
Value binary_crossentropy_logits(Value logits, Value target, Reduction reduction) {
  return logits.graph().apply("binary_crossentropy_logits", {logits, target}, LossAttrs{reduction});
}
Value categorical_crossentropy(Value logits, Value labels, Reduction reduction) {
  return logits.graph().apply("categorical_crossentropy", {logits, labels}, LossAttrs{reduction});
}
Value l1(Value x, double weight, Reduction reduction) { return x.graph().apply("l1", {x}, WeightAttrs{weight, reduction}); }
Value l2(Value x, double weight, Reduction reduction) { return x.graph().apply("l2", {x}, WeightAttrs{weight, reduction}); }

}  // namespace flowgrad
