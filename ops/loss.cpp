// Scalar losses (output shape []) and their fused gradient ops: categorical cross-entropy on logits and the
// weight penalties; the elementwise two-input losses are ops/pair_loss.cpp. ops/loss_util.h says how they
// reduce.
#include "ops/loss_util.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>

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

using namespace loss;
using kernels::chunked_sum;

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
  register_pair_losses(r);
  register_cce(r);
  register_penalty<L1>(r, "l1", "weight * sum |x| (a regularization penalty)");
  register_penalty<L2>(r, "l2", "weight * sum x^2 (a regularization penalty)");
}

Value categorical_crossentropy(Value logits, Value labels, Reduction reduction) {
  return logits.graph().apply("categorical_crossentropy", {logits, labels}, LossAttrs{reduction});
}
Value l1(Value x, double weight, Reduction reduction) { return x.graph().apply("l1", {x}, WeightAttrs{weight, reduction}); }
Value l2(Value x, double weight, Reduction reduction) { return x.graph().apply("l2", {x}, WeightAttrs{weight, reduction}); }

}  // namespace flowgrad
