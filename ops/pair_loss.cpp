// The elementwise two-input losses and their gradient ops: mse, binary_crossentropy (of probabilities) and
// binary_crossentropy_logits. Each provides value(p, t) and its partial derivatives in double (the
// references); the float loops are ops/kernels/loss_loops.cpp. The sum over elements (then / N for `mean`)
// is the loss; ops/loss_util.h says how it reduces.
//
// binary_crossentropy of a sigmoid's output is built as binary_crossentropy_logits of the sigmoid's input
// (OpDef::expand; layers with a sigmoid activation build it as its own node for this): from the logits the
// loss is exact and its gradient sigmoid(z) - t never vanishes, where from a saturated probability (1 - p
// rounds to 0 in float once z > 16.6) the clamped loss has a zero gradient and stops learning. Keras computes
// sigmoid outputs' losses from the logits the same way. Of probabilities from elsewhere, `clamp` picks the
// convention: Keras' (p clamped to [1e-7, 1 - 1e-7], zero gradient outside) or PyTorch's BCELoss (logs
// floored at -100, the gradient's denominator p (1 - p) at 1e-12).
#include "ops/kernels/loss_loops.h"
#include "ops/loss_util.h"

#include "graph/graph.h"

#include <cmath>
#include <functional>

namespace flowgrad {

std::span<const char* const> enum_names(BceClamp) {
  static constexpr std::array<const char*, 2> names = {"keras", "torch"};
  return names;
}

namespace {

using namespace loss;
using kernels::chunked_sum;

struct Mse {
  static constexpr auto loops = &kernels::LossLoops::mse;
  static double value(double p, double t) { return (p - t) * (p - t); }
  static double d_pred(double p, double t) { return 2 * (p - t); }
  static double d_target(double p, double t) { return -2 * (p - t); }
};

// Keras 3 clamps probabilities to [eps, 1 - eps] before the logs (tf.keras 2 also added eps inside the
// logs; the two differ by about 1e-7 relative). Clamped elements get a zero gradient, as clip_by_value's.
struct BceKeras {
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

// PyTorch's BCELoss: logs floored at -100, and in the gradient (p - t) / max(p (1 - p), 1e-12).
struct BceTorch {
  static constexpr auto loops = &kernels::LossLoops::bce_torch;
  static double floored_log(double p) { return p > 0 ? std::max(std::log(p), -100.0) : -100.0; }
  static double value(double p, double t) { return -(t * floored_log(p) + (1 - t) * floored_log(1 - p)); }
  static double d_pred(double p, double t) { return (p - t) / std::max(p * (1 - p), 1e-12); }
  static double d_target(double p, double) { return floored_log(1 - p) - floored_log(p); }
};

// max(z, 0) - z t + log(1 + exp(-|z|)): never overflows, and keeps precision for large |z|.
struct BceLogits {
  static constexpr auto loops = &kernels::LossLoops::bce_logits;
  static double value(double z, double t) { return std::max(z, 0.0) - z * t + std::log1p(std::exp(-std::abs(z))); }
  static double d_pred(double z, double t) { return 1 / (1 + std::exp(-z)) - t; }
  static double d_target(double z, double) { return -z; }
};

// binary_crossentropy's attributes: its gradient op's add wrt_target.
struct BceAttrs {
  Reduction reduction = Reduction::mean;
  BceClamp clamp = BceClamp::keras;
  template <class F> void fields(F&& f) { f("reduction", reduction), f("clamp", clamp); }
};
struct BceGradAttrs {
  Reduction reduction = Reduction::mean;
  bool wrt_target = false;
  BceClamp clamp = BceClamp::keras;
  template <class F> void fields(F&& f) { f("reduction", reduction), f("wrt_target", wrt_target), f("clamp", clamp); }
};

// A loss's forms: their terms by attributes (run(attrs, f) calls f.template operator()<Terms>()), and the
// gradient op's attributes.
template <class Terms>
struct OneForm {
  using Attrs = LossAttrs;
  using GradAttrs = LossGradAttrs;
  template <class A, class F> static auto run(const A&, F&& f) { return f.template operator()<Terms>(); }
  static GradAttrs grad_attrs(const Attrs& a, bool wrt_target) { return {a.reduction, wrt_target}; }
};
struct BceForms {
  using Attrs = BceAttrs;
  using GradAttrs = BceGradAttrs;
  template <class A, class F> static auto run(const A& a, F&& f) {
    return a.clamp == BceClamp::torch ? f.template operator()<BceTorch>() : f.template operator()<BceKeras>();
  }
  static GradAttrs grad_attrs(const Attrs& a, bool wrt_target) { return {a.reduction, wrt_target, a.clamp}; }
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
std::unique_ptr<Kernel> pair_grad_kernel(const KernelContext& c, Reduction reduction, bool wrt_target) {
  const int64_t n = c.inputs[1].numel();
  const double divisor = reduction_divisor(reduction, c.inputs[1].shape);
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
// targets drawn from [low, high], with `target` rewriting the target where it needs another range; `extra`
// attributes on every example (a clamp convention).
struct PairExamples {
  std::vector<OpExample> loss, grad;
};

PairExamples pair_examples(double low, double high, std::function<void(RefTensor&)> target = {}, const AttrMap& extra = {},
                           const std::string& tag = {}) {
  const Shape s = {3, 4};
  auto fill_target = [target](int index) -> std::function<void(int, RefTensor&)> {
    if (!target) return {};
    return [target, index](int input, RefTensor& t) {
      if (input == index) target(t);
    };
  };
  auto with = [&](AttrMap attrs) {
    for (const auto& e : extra.entries()) attrs.set(e.key, e.value);
    return attrs;
  };
  auto loss = [&](AttrMap attrs, std::string label) {
    return OpExample{.inputs = {{s}, {s}}, .attrs = with(std::move(attrs)), .low = low, .high = high,
                     .fill = fill_target(1), .label = tag + std::move(label)};
  };
  auto grad = [&](AttrMap attrs, std::string label) {
    return OpExample{.inputs = {{Shape{}}, {s}, {s}}, .attrs = with(std::move(attrs)), .low = low, .high = high,
                     .fill = fill_target(2), .label = tag + std::move(label)};
  };
  const AttrMap sum = {{"reduction", std::string("sum")}};
  AttrMap sum_wrt_target = sum;
  sum_wrt_target.set("wrt_target", true);
  const AttrMap per_batch = {{"reduction", std::string("sum_over_batch_size")}};
  return {{loss({}, "mean"), loss(sum, "sum"), loss(per_batch, "sum_over_batch_size")},
          {grad({}, "mean"), grad(sum_wrt_target, "sum, wrt_target"), grad(per_batch, "sum_over_batch_size")}};
}

template <class Forms>
void register_pair_loss(Registry& r, const std::string& name, const char* summary, PairExamples examples,
                        std::function<ExpandResult(ExpandContext&)> expand = {}) {
  using Attrs = typename Forms::Attrs;
  using GradAttrs = typename Forms::GradAttrs;
  const std::string grad_op = name + "_grad";
  r.add(OpBuilder<Attrs>(name, 2, 2)
            .summary(summary)
            .examples(std::move(examples.loss))
            .expand(std::move(expand))
            .infer([](const ShapeContext& c, const Attrs&) { return pair_loss_infer(c); })
            .reference([](const RefContext& c, const Attrs& a) {
              return Forms::run(a, [&]<class Terms>() {
                double s = 0;
                for (int64_t i = 0; i < c.in(0).size(); ++i) s += Terms::value(c.in(0)[i], c.in(1)[i]);
                return std::vector<RefTensor>{RefTensor({}, s / reduction_divisor(a.reduction, c.in(0).shape))};
              });
            })
            .kernel([](const KernelContext& c, const Attrs& a) {
              return Forms::run(a, [&]<class Terms>() { return pair_loss_kernel<Terms>(c, a.reduction); });
            })
            .gradient([grad_op](GradContext& c) {
              const auto& a = c.attrs<Attrs>();
              GradResult result(2);
              for (int input = 0; input < 2; ++input)
                if (c.needs(input))
                  result[static_cast<size_t>(input)] =
                      c.graph.apply(grad_op, {*c.grad(), c.input(0), c.input(1)}, Forms::grad_attrs(a, input == 1),
                                    c.name(input == 0 ? "prediction" : "target"));
              return result;
            })
            .build());
  r.add(OpBuilder<GradAttrs>(grad_op, 3, 3)
            .summary(fmt::format("gradient of {} w.r.t. its prediction (or target, with wrt_target)", name))
            .examples(std::move(examples.grad))
            .infer([](const ShapeContext& c, const GradAttrs&) {
              require_scalar_grad(c);
              if (c.in(1) != c.in(2)) c.fail("prediction and target must have the same shape");
              return std::vector<TensorType>{{c.in(1), DType::f32}};
            })
            .reference([](const RefContext& c, const GradAttrs& a) {
              return Forms::run(a, [&]<class Terms>() {
                const RefTensor &p = c.in(1), &t = c.in(2);
                const double g = c.in(0)[0] / reduction_divisor(a.reduction, p.shape);
                RefTensor dx(p.shape);
                for (int64_t i = 0; i < p.size(); ++i)
                  dx[i] = g * (a.wrt_target ? Terms::d_target(p[i], t[i]) : Terms::d_pred(p[i], t[i]));
                return std::vector<RefTensor>{std::move(dx)};
              });
            })
            .kernel([](const KernelContext& c, const GradAttrs& a) {
              return Forms::run(a, [&]<class Terms>() { return pair_grad_kernel<Terms>(c, a.reduction, a.wrt_target); });
            })
            .build());
}

// binary_crossentropy of a sigmoid's output: binary_crossentropy_logits of the sigmoid's input (see the top).
ExpandResult logits_when_sigmoid(ExpandContext& c) {
  const Node* producer = c.producer(0);
  if (!producer || producer->op->name != "sigmoid") return std::nullopt;
  const Value logits = c.graph.value(producer->inputs[0]);
  return c.graph.add("binary_crossentropy_logits", {logits, c.inputs[1]},
                     AttrMap{{"reduction", std::string(enum_names(Reduction{})[static_cast<size_t>(
                                               c.typed_attrs<BceAttrs>().reduction)])}},
                     c.name, c.where);
}

}  // namespace

void register_pair_losses(Registry& r) {
  register_pair_loss<OneForm<Mse>>(r, "mse", "mean (or sum) of (prediction - target)^2", pair_examples(-1, 1));
  // Probabilities inside (0.05, 0.95): away from the clamps, where finite differences see a kink.
  PairExamples bce = pair_examples(0.05, 0.95);
  PairExamples torch = pair_examples(0.05, 0.95, {}, AttrMap{{"clamp", std::string("torch")}}, "torch clamp, ");
  for (auto& e : torch.loss) bce.loss.push_back(std::move(e));
  for (auto& e : torch.grad) bce.grad.push_back(std::move(e));
  register_pair_loss<BceForms>(r, "binary_crossentropy",
                               "cross-entropy of probabilities against targets (of a sigmoid's output: from its logits; "
                               "else clamped like Keras, or like PyTorch with clamp: torch)",
                               std::move(bce), logits_when_sigmoid);
  // Logits in [-4, 4]; targets are probabilities, mapped from that range into [0, 1].
  register_pair_loss<OneForm<BceLogits>>(r, "binary_crossentropy_logits",
                                         "cross-entropy of logits against targets: max(z, 0) - z t + log1p(exp(-|z|))",
                                         pair_examples(-4, 4, [](RefTensor& t) {
                                           for (double& v : t.data) v = (v + 4) / 8;
                                         }));
}

Value mse(Value prediction, Value target, Reduction reduction) {
  return prediction.graph().apply("mse", {prediction, target}, LossAttrs{reduction});
}
Value binary_crossentropy(Value probability, Value target, Reduction reduction, BceClamp clamp) {
  return probability.graph().apply("binary_crossentropy", {probability, target}, BceAttrs{reduction, clamp});
}
Value binary_crossentropy_logits(Value logits, Value target, Reduction reduction) {
  return logits.graph().apply("binary_crossentropy_logits", {logits, target}, LossAttrs{reduction});
}

}  // namespace flowgrad
