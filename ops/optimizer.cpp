// Optimizer updates that write parameters and optimizer state in place (no outputs), and the global
// gradient-norm clipping factor.
//
//   sgd_update(param, grad, velocity, lr[, clip_scale]){momentum, nesterov, weight_decay}
//   adam_update(param, grad, m, v, lr[, clip_scale]){beta1, beta2, eps, weight_decay, decoupled}
//   global_norm_scale(g1, ..., gn){max_norm} -> min(1, max_norm / (||g||_2 + 1e-6))
//
// The rules follow PyTorch's torch.optim.SGD / Adam / AdamW documentation (dampening 0, amsgrad off).
// `lr` is a fed scalar, so a schedule changes it per step without touching the graph; Adam's bias
// correction counts steps from the executor's step counter (t = step + 1), so steps must be numbered
// 0, 1, 2, ... in the order they are run (a resumed run continues the numbering).
#include "ops/kernel_util.h"
#include "ops/kernels/adam_loops.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flowgrad {
namespace {

struct SgdAttrs {
  double momentum = 0;
  bool nesterov = false;
  double weight_decay = 0;
  template <class F> void fields(F&& f) {
    f("momentum", momentum);
    f("nesterov", nesterov);
    f("weight_decay", weight_decay);
  }
};

// eps defaults to PyTorch's 1e-8; Keras uses 1e-7 (and adds it to sqrt(v_hat) the same way).
struct AdamAttrs {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0;
  bool decoupled = false;  // true: AdamW (decay the weights directly instead of adding wd * p to the gradient)
  template <class F> void fields(F&& f) {
    f("beta1", beta1);
    f("beta2", beta2);
    f("eps", eps);
    f("weight_decay", weight_decay);
    f("decoupled", decoupled);
  }
};

struct ClipAttrs {
  double max_norm = 1.0;
  template <class F> void fields(F&& f) { f("max_norm", max_norm, Field::required); }
};

[[noreturn]] void update_error(const ShapeContext& c, const std::string& what) {
  throw Error(ErrorKind::shape, fmt::format("node '{}' (op '{}'): {}", c.node, c.op, what));
}

void require_f32(const ShapeContext& c, int input) {
  if (c.inputs[static_cast<size_t>(input)].dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32", c.node, c.op, input,
                                              to_string(c.inputs[static_cast<size_t>(input)].dtype)));
}

// Checks an update's inputs: `tensors` inputs shaped like the parameter, then lr and the optional
// clip_scale as scalars. Updates have no outputs.
std::vector<TensorType> update_infer(const ShapeContext& c, int tensors) {
  for (int i = 0; i < static_cast<int>(c.inputs.size()); ++i) require_f32(c, i);
  for (int i = 1; i < tensors; ++i)
    if (c.in(i) != c.in(0))
      update_error(c, fmt::format("input {} has shape {} but the parameter has {}", i, to_string(c.in(i)),
                                  to_string(c.in(0))));
  for (int i = tensors; i < static_cast<int>(c.inputs.size()); ++i)
    if (numel(c.in(i)) != 1) update_error(c, fmt::format("input {} (lr or clip_scale) must be a scalar", i));
  return {};
}

double ref_clip(const RefContext& c, int index) { return static_cast<int>(c.inputs.size()) > index ? c.in(index)[0] : 1.0; }
float kernel_clip(const KernelArgs& args, int index) {
  return static_cast<int>(args.in.size()) > index ? *args.input(index) : 1.0f;
}

// ---- SGD ------------------------------------------------------------------------------------------------
// d = clip * grad + wd * p; buf = momentum * buf + d; d = nesterov ? d + momentum * buf : buf; p -= lr * d.
// PyTorch starts buf as a copy of the first d; a zero-initialized buf gives the same (momentum * 0 + d).
// With momentum 0 the velocity is neither read nor written.

void sgd_reference(const RefContext& c, const SgdAttrs& a) {
  RefTensor &p = *c.inputs[0], &vel = *c.inputs[2];
  const RefTensor& grad = c.in(1);
  const double lr = c.in(3)[0], clip = ref_clip(c, 4);
  for (int64_t i = 0; i < p.size(); ++i) {
    double d = clip * grad[i] + a.weight_decay * p[i];
    if (a.momentum != 0) {
      vel[i] = a.momentum * vel[i] + d;
      d = a.nesterov ? d + a.momentum * vel[i] : vel[i];
    }
    p[i] -= lr * d;
  }
}

std::unique_ptr<Kernel> sgd_kernel(const KernelContext& c, const SgdAttrs& a) {
  const int64_t n = c.inputs[0].numel();
  const float momentum = static_cast<float>(a.momentum), wd = static_cast<float>(a.weight_decay);
  const bool use_momentum = a.momentum != 0, nesterov = a.nesterov;
  return std::make_unique<kernels::FunctionKernel>(
      [=](const KernelArgs& args) {
        float* p = args.input(0);
        const float* grad = args.input(1);
        float* vel = args.input(2);
        const float lr = *args.input(3), clip = kernel_clip(args, 4);
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) {
            float d = clip * grad[i] + wd * p[i];
            if (use_momentum) {
              vel[i] = momentum * vel[i] + d;
              d = nesterov ? d + momentum * vel[i] : vel[i];
            }
            p[i] -= lr * d;
          }
        });
      },
      6.0 * static_cast<double>(n));
}

// ---- Adam / AdamW ------------------------------------------------------------------------------------------
// g = clip * grad (+ wd * p unless decoupled); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p = p (1 - lr wd if decoupled) - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
// This is PyTorch's arrangement (eps added after the bias correction of sqrt(v)).

struct AdamStep {
  double step_size;       // lr / (1 - b1^t)
  double inv_sqrt_bias2;  // 1 / sqrt(1 - b2^t)
  double decay;           // 1 - lr * wd for AdamW, else 1
};

AdamStep adam_step(const AdamAttrs& a, double lr, uint64_t step) {
  const double t = static_cast<double>(step) + 1;
  return {lr / (1 - std::pow(a.beta1, t)), 1 / std::sqrt(1 - std::pow(a.beta2, t)),
          a.decoupled ? 1 - lr * a.weight_decay : 1.0};
}

void adam_reference(const RefContext& c, const AdamAttrs& a) {
  RefTensor &p = *c.inputs[0], &m = *c.inputs[2], &v = *c.inputs[3];
  const RefTensor& grad = c.in(1);
  const double clip = ref_clip(c, 5);
  const AdamStep s = adam_step(a, c.in(4)[0], c.step);
  const double coupled_wd = a.decoupled ? 0.0 : a.weight_decay;
  for (int64_t i = 0; i < p.size(); ++i) {
    const double g = clip * grad[i] + coupled_wd * p[i];
    m[i] = a.beta1 * m[i] + (1 - a.beta1) * g;
    v[i] = a.beta2 * v[i] + (1 - a.beta2) * g * g;
    p[i] = p[i] * s.decay - s.step_size * m[i] / (std::sqrt(v[i]) * s.inv_sqrt_bias2 + a.eps);
  }
}

std::unique_ptr<Kernel> adam_kernel(const KernelContext& c, const AdamAttrs& a) {
  const int64_t n = c.inputs[0].numel();
  const AdamAttrs attrs = a;
  const float b1 = static_cast<float>(a.beta1), b2 = static_cast<float>(a.beta2), eps = static_cast<float>(a.eps);
  const float coupled_wd = a.decoupled ? 0.0f : static_cast<float>(a.weight_decay);
  const kernels::AdamLoops& loops = kernels::adam_loops(c.isa);
  return std::make_unique<kernels::FunctionKernel>(
      [=, &loops](const KernelArgs& args) {
        float* p = args.input(0);
        const float* grad = args.input(1);
        float* m = args.input(2);
        float* v = args.input(3);
        const float clip = kernel_clip(args, 5);
        // Per-step scalars in double (powers of beta near 1), then one float loop.
        const AdamStep s = adam_step(attrs, static_cast<double>(*args.input(4)), args.step);
        const float step_size = static_cast<float>(s.step_size), inv_sqrt_bias2 = static_cast<float>(s.inv_sqrt_bias2),
                    decay = static_cast<float>(s.decay);
        const kernels::AdamScalars k{clip, coupled_wd, b1, b2, eps, step_size, inv_sqrt_bias2, decay};
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          loops.update(p + begin, grad + begin, m + begin, v + begin, end - begin, k);
        });
      },
      12.0 * static_cast<double>(n), true, isa_name(c.isa));
}

// ---- global norm ----------------------------------------------------------------------------------------------
// Deterministic: every input is cut into chunks of fixed size, each chunk's sum of squares is taken in
// double, and chunk sums are added in (input, chunk) order, whatever the thread count.

constexpr int64_t kChunk = 8192;

struct Chunk {
  int input;
  int64_t begin, end;
};

class NormKernel final : public Kernel {
 public:
  explicit NormKernel(const KernelContext& c, double max_norm) : max_norm_(max_norm) {
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      const int64_t n = c.inputs[k].numel();
      for (int64_t begin = 0; begin < n; begin += kChunk)
        chunks_.push_back({static_cast<int>(k), begin, std::min(n, begin + kChunk)});
      flops_ += 2.0 * static_cast<double>(n);
    }
  }
  size_t scratch_bytes() const override { return chunks_.size() * sizeof(double); }
  double flops() const override { return flops_; }

  void run(const KernelArgs& args) override {
    double total = kernels::chunked_sum(static_cast<int64_t>(chunks_.size()), args.threads, static_cast<double*>(args.scratch),
                                        [&](int64_t c) {
                                          const Chunk& chunk = chunks_[static_cast<size_t>(c)];
                                          const float* g = args.input(chunk.input);
                                          double s = 0;
                                          for (int64_t i = chunk.begin; i < chunk.end; ++i) s += static_cast<double>(g[i]) * g[i];
                                          return s;
                                        });
    *args.output(0) = static_cast<float>(std::min(1.0, max_norm_ / (std::sqrt(total) + 1e-6)));
  }

 private:
  double max_norm_;
  double flops_ = 0;
  std::vector<Chunk> chunks_;
};

// Adam's second moment v (input 3) is a running mean of squares: its examples draw it non-negative.
void non_negative_v(int input, RefTensor& t) {
  if (input == 3)
    for (double& v : t.data) v = std::abs(v);
}

}  // namespace

void register_optimizer_ops(Registry& r) {
  // Updates have no outputs: the harness compares the parameter and state they leave behind (kernel
  // against reference). Nothing is differentiated through an update.
  const Shape p = {5}, lr = {};
  r.add(OpBuilder<SgdAttrs>("sgd_update", 4, 5)
            .summary("in place: SGD with momentum / Nesterov / weight decay (PyTorch rules); inputs param, grad, "
                     "velocity, lr[, clip_scale]")
            .example({.inputs = {{p}, {p}, {p}, {lr}},
                      .attrs = {{"momentum", 0.9}, {"nesterov", true}, {"weight_decay", 0.01}},
                      .no_grad = {0, 1, 2, 3},
                      .label = "nesterov"})
            .example({.inputs = {{p}, {p}, {p}, {lr}, {lr}},
                      .attrs = {{"momentum", 0.5}},
                      .no_grad = {0, 1, 2, 3, 4},
                      .label = "clip_scale"})
            .infer([](const ShapeContext& c, const SgdAttrs&) { return update_infer(c, 3); })
            .reference([](const RefContext& c, const SgdAttrs& a) {
              sgd_reference(c, a);
              return std::vector<RefTensor>{};
            })
            .kernel(sgd_kernel)
            .mutates({0, 2})
            .build());
  r.add(OpBuilder<AdamAttrs>("adam_update", 5, 6)
            .summary("in place: Adam (AdamW with decoupled) with bias correction from the step counter; inputs "
                     "param, grad, m, v, lr[, clip_scale]")
            .example({.inputs = {{p}, {p}, {p}, {p}, {lr}},
                      .no_grad = {0, 1, 2, 3, 4},
                      .fill = non_negative_v,
                      .label = "adam"})
            .example({.inputs = {{p}, {p}, {p}, {p}, {lr}, {lr}},
                      .attrs = {{"beta1", 0.8}, {"weight_decay", 0.1}, {"decoupled", true}},
                      .no_grad = {0, 1, 2, 3, 4, 5},
                      .fill = non_negative_v,
                      .label = "adamw, clip_scale"})
            .infer([](const ShapeContext& c, const AdamAttrs&) { return update_infer(c, 4); })
            .reference([](const RefContext& c, const AdamAttrs& a) {
              adam_reference(c, a);
              return std::vector<RefTensor>{};
            })
            .kernel(adam_kernel)
            .mutates({0, 2, 3})
            .build());
  r.add(OpBuilder<ClipAttrs>("global_norm_scale", 1, -1)
            .summary("min(1, max_norm / (||(g1, ..., gn)||_2 + 1e-6)): the factor that clips gradients by global norm")
            // The norm of the 17 inputs is about 2.4: the first example clips, the second does not.
            .example({.inputs = {{{3, 4}}, {{5}}}, .attrs = {{"max_norm", 1.0}}, .label = "clipping"})
            .example({.inputs = {{{3, 4}}}, .attrs = {{"max_norm", 100.0}}, .label = "not clipping"})
            .infer([](const ShapeContext& c, const ClipAttrs& a) {
              for (int i = 0; i < static_cast<int>(c.inputs.size()); ++i) require_f32(c, i);
              if (!(a.max_norm > 0))
                throw Error(ErrorKind::spec, fmt::format("node '{}' (op '{}'): max_norm must be positive, got {}", c.node,
                                                         c.op, a.max_norm));
              return std::vector<TensorType>{{{}, DType::f32}};
            })
            .reference([](const RefContext& c, const ClipAttrs& a) {
              double s = 0;
              for (const RefTensor* g : c.inputs)
                for (double x : g->data) s += x * x;
              return std::vector<RefTensor>{RefTensor({}, std::min(1.0, a.max_norm / (std::sqrt(s) + 1e-6)))};
            })
            .kernel([](const KernelContext& c, const ClipAttrs& a) { return std::make_unique<NormKernel>(c, a.max_norm); })
            .build());
}

}  // namespace flowgrad
