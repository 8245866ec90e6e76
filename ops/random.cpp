// Seeded random ops: random_normal, gaussian_sample (a VAE's reparameterized sample), dropout,
// masking_noise, and dropout_grad.
//
// Every draw is a pure function of (seed attribute, step, element index) through graph/random.h, with the
// step as the stream: the reference and the kernel draw the same numbers bit for bit, results do not
// depend on the thread count, and a step can be replayed exactly. The gradient of dropout and
// masking_noise regenerates the mask from (seed, step, index) in the same step instead of storing it, so
// the forward hands nothing to the backward but its attributes.
#include "graph/random.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <array>
#include <cmath>

namespace flowgrad {
namespace {

// What a random draw becomes outside training (test losses, eval, pictures): a draw as in training, or
// its mean. Keras' and PyTorch's VAE examples sample in evaluation too, which keeps a test ELBO an ELBO.
enum class Draw { sample, mean };
std::span<const char* const> enum_names(Draw) {
  static constexpr std::array<const char*, 2> names = {"sample", "mean"};
  return names;
}

struct NormalAttrs {
  uint64_t seed = 0;
  double mean = 0;
  double stddev = 1;
  Draw inference = Draw::sample;
  template <class F> void fields(F&& f) {
    f("seed", seed);
    f("mean", mean);
    f("stddev", stddev);
    f("inference", inference);
  }
};

// z = mu + exp(logvar / 2) * eps, eps ~ N(0, 1) drawn from (seed, step, element).
struct SampleAttrs {
  uint64_t seed = 0;
  Draw inference = Draw::sample;
  template <class F> void fields(F&& f) {
    f("seed", seed);
    f("inference", inference);
  }
};

struct MaskAttrs {
  double rate = 0.5;
  uint64_t seed = 0;
  template <class F> void fields(F&& f) {
    f("rate", rate, Field::required);
    f("seed", seed);
  }
};

// dropout_grad: `scale` says whether kept entries were scaled by 1/(1 - rate) (dropout) or not
// (masking_noise).
struct MaskGradAttrs {
  double rate = 0.5;
  uint64_t seed = 0;
  bool scale = true;
  template <class F> void fields(F&& f) {
    f("rate", rate, Field::required);
    f("seed", seed);
    f("scale", scale);
  }
};

// An entry is kept when its uniform draw is at least `rate`, so a fraction `rate` is dropped on average.
inline bool kept(uint64_t seed, uint64_t step, int64_t index, double rate) {
  return random_uniform(seed, step, static_cast<uint64_t>(index)) >= rate;
}

double keep_scale(double rate, bool scale) { return scale ? 1.0 / (1.0 - rate) : 1.0; }

void check_rate(const ShapeContext& c, double rate, bool scaled) {
  // Dropout divides by 1 - rate, so it needs rate < 1; masking every entry is allowed.
  if (!(rate >= 0 && (scaled ? rate < 1 : rate <= 1)))
    throw Error(ErrorKind::spec, fmt::format("node '{}' (op '{}'): rate must be in [0, {}, got {}", c.node, c.op,
                                             scaled ? "1)" : "1]", rate));
}

std::vector<TensorType> same_f32(const ShapeContext& c, int input) {
  if (c.inputs[static_cast<size_t>(input)].dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32", c.node, c.op, input,
                                              to_string(c.inputs[static_cast<size_t>(input)].dtype)));
  return {{c.in(input), DType::f32}};
}

// y = x * scale where the mask keeps the entry, else 0. Shared by dropout, masking_noise and dropout_grad.
RefTensor mask_reference(const RefContext& c, double rate, uint64_t seed, bool scale) {
  const RefTensor& x = c.in(0);
  const double s = keep_scale(rate, scale);
  RefTensor y(x.shape);
  for (int64_t i = 0; i < y.size(); ++i) y[i] = kept(seed, c.step, i, rate) ? x[i] * s : 0.0;
  return y;
}

std::unique_ptr<Kernel> mask_kernel(const KernelContext& c, double rate, uint64_t seed, bool scale) {
  const int64_t n = c.inputs[0].numel();
  const float s = static_cast<float>(keep_scale(rate, scale));
  return std::make_unique<kernels::FunctionKernel>(
      [n, s, rate, seed](const KernelArgs& args) {
        const float* x = args.input(0);
        float* y = args.output(0);
        const uint64_t step = args.step;
        kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
          for (int64_t i = begin; i < end; ++i) y[i] = kept(seed, step, i, rate) ? x[i] * s : 0.0f;
        });
      },
      8.0 * static_cast<double>(n));
}

// The forward's mask applied to g, regenerated from the forward's seed in the same step.
GradResult mask_gradient(GradContext& c, bool scale) {
  const auto& a = c.attrs<MaskAttrs>();
  Value dx = c.graph.apply("dropout_grad", {*c.grad()}, MaskGradAttrs{a.rate, a.seed, scale}, c.name("x"));
  return {dx};
}

void register_mask_op(Registry& r, const char* name, bool scale, const char* summary, std::vector<OpExample> examples) {
  r.add(OpBuilder<MaskAttrs>(name, 1, 1)
            .summary(summary)
            .examples(std::move(examples))
            .infer([scale](const ShapeContext& c, const MaskAttrs& a) {
              check_rate(c, a.rate, scale);
              return same_f32(c, 0);
            })
            .reference([scale](const RefContext& c, const MaskAttrs& a) {
              return std::vector<RefTensor>{mask_reference(c, a.rate, a.seed, scale)};
            })
            .kernel([scale](const KernelContext& c, const MaskAttrs& a) { return mask_kernel(c, a.rate, a.seed, scale); })
            .gradient([scale](GradContext& c) { return mask_gradient(c, scale); })
            // Like Keras' Dropout and noise layers: active in training only.
            .inference([](const MaskAttrs&) { return InferenceForm::pass_through(0); })
            .random()
            .build());
}

}  // namespace

void register_random_ops(Registry& r) {
  r.add(OpBuilder<NormalAttrs>("random_normal", 1, 1)
            .summary("normal draws (mean, stddev) in the shape of `like`; new draws every step")
            // The harness draws step 0 in the kernel and the reference alike; nothing flows back to like.
            .example({.inputs = {{{3, 3}}}, .attrs = {{"seed", int64_t{5}}, {"mean", 1.0}, {"stddev", 2.0}}})
            .infer([](const ShapeContext& c, const NormalAttrs&) { return std::vector<TensorType>{{c.in(0), DType::f32}}; })
            .reference([](const RefContext& c, const NormalAttrs& a) {
              RefTensor y(c.outputs[0].shape);
              for (int64_t i = 0; i < y.size(); ++i)
                y[i] = a.mean + a.stddev * random_normal(a.seed, c.step, static_cast<uint64_t>(i));
              return std::vector<RefTensor>{std::move(y)};
            })
            .kernel([](const KernelContext& c, const NormalAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.outputs[0].numel();
              const NormalAttrs attrs = a;
              return std::make_unique<kernels::FunctionKernel>(
                  [n, attrs](const KernelArgs& args) {
                    float* y = args.output(0);
                    const uint64_t step = args.step;
                    kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
                      for (int64_t i = begin; i < end; ++i)
                        y[i] = static_cast<float>(attrs.mean +
                                                  attrs.stddev * random_normal(attrs.seed, step, static_cast<uint64_t>(i)));
                    });
                  },
                  40.0 * static_cast<double>(n));
            })
            // Only like's shape is used, not its values: nothing flows back.
            .gradient([](GradContext&) { return GradResult{std::nullopt}; })
            .inference([](const NormalAttrs& a) {
              if (a.inference == Draw::sample) return InferenceForm::same();
              NormalAttrs constant = a;
              constant.stddev = 0;  // the mean, everywhere
              return InferenceForm::with_attrs(encode_attrs(constant));
            })
            .random()
            .build());

  r.add(OpBuilder<SampleAttrs>("gaussian_sample", 2, 2)
            .summary("mu + exp(logvar / 2) * eps, eps ~ N(0, 1) new every step: a VAE's reparameterized sample")
            .example({.inputs = {{{3, 4}}, {{3, 4}}}, .attrs = {{"seed", int64_t{9}}}})
            .infer([](const ShapeContext& c, const SampleAttrs&) {
              same_f32(c, 1);
              if (c.in(0) != c.in(1)) c.fail("mu and logvar must have the same shape");
              return same_f32(c, 0);
            })
            .reference([](const RefContext& c, const SampleAttrs& a) {
              RefTensor z(c.in(0).shape);
              for (int64_t i = 0; i < z.size(); ++i)
                z[i] = c.in(0)[i] + std::exp(0.5 * c.in(1)[i]) * random_normal(a.seed, c.step, static_cast<uint64_t>(i));
              return std::vector<RefTensor>{std::move(z)};
            })
            .kernel([](const KernelContext& c, const SampleAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.outputs[0].numel();
              const uint64_t seed = a.seed;
              return std::make_unique<kernels::FunctionKernel>(
                  [n, seed](const KernelArgs& args) {
                    const float *mu = args.input(0), *logvar = args.input(1);
                    float* z = args.output(0);
                    const uint64_t step = args.step;
                    kernels::parallel_elements(n, args.threads, [&](int64_t begin, int64_t end) {
                      for (int64_t i = begin; i < end; ++i)
                        z[i] = static_cast<float>(mu[i] + std::exp(0.5 * logvar[i]) *
                                                              random_normal(seed, step, static_cast<uint64_t>(i)));
                    });
                  },
                  45.0 * static_cast<double>(n));
            })
            // dz/dmu = 1; dz/dlogvar = exp(logvar / 2) eps / 2 = (z - mu) / 2, read from the forward's output, so
            // the noise is never stored or drawn again.
            .gradient([](GradContext& c) {
              Value g = *c.grad();
              std::optional<Value> dmu, dlogvar;
              if (c.needs(0)) dmu = g;
              if (c.needs(1)) dlogvar = scale(g * (c.output() - c.input(0)), 0.5);
              return GradResult{dmu, dlogvar};
            })
            .inference([](const SampleAttrs& a) {
              return a.inference == Draw::mean ? InferenceForm::pass_through(0) : InferenceForm::same();
            })
            .random()
            .build());

  // Linear in x for the mask of step 0, which the reference, the kernels and the gradient graph all draw.
  register_mask_op(r, "dropout", true, "inverted dropout: zeroes a fraction `rate`, scales the rest by 1/(1 - rate)",
                   {{.inputs = {{{4, 5}}}, .attrs = {{"rate", 0.3}, {"seed", int64_t{11}}}}});
  register_mask_op(r, "masking_noise", false, "zeroes a fraction `rate` of entries without rescaling (denoising AE)",
                   {{.inputs = {{{4, 5}}}, .attrs = {{"rate", 0.5}, {"seed", int64_t{12}}}}});

  r.add(OpBuilder<MaskGradAttrs>("dropout_grad", 1, 1)
            .summary("g masked (and scaled) like the dropout/masking_noise with the same seed in the same step")
            .example({.inputs = {{{4, 5}}}, .attrs = {{"rate", 0.3}, {"seed", int64_t{11}}}, .label = "dropout"})
            .example({.inputs = {{{6}}}, .attrs = {{"rate", 0.25}, {"scale", false}}, .label = "masking_noise"})
            .infer([](const ShapeContext& c, const MaskGradAttrs& a) {
              check_rate(c, a.rate, a.scale);
              return same_f32(c, 0);
            })
            .reference([](const RefContext& c, const MaskGradAttrs& a) {
              return std::vector<RefTensor>{mask_reference(c, a.rate, a.seed, a.scale)};
            })
            .kernel([](const KernelContext& c, const MaskGradAttrs& a) { return mask_kernel(c, a.rate, a.seed, a.scale); })
            // The op is linear in g with the same mask: its own gradient is itself.
            .gradient([](GradContext& c) {
              const auto& a = c.attrs<MaskGradAttrs>();
              return GradResult{c.graph.apply("dropout_grad", {*c.grad()}, a, c.name("g"))};
            })
            .random()
            .build());
}

Value random_normal(Value like, uint64_t seed, double mean, double stddev) {
  return like.graph().apply("random_normal", {like}, NormalAttrs{seed, mean, stddev});
}
Value gaussian_sample(Value mu, Value logvar, uint64_t seed, bool sample_in_inference) {
  return mu.graph().apply("gaussian_sample", {mu, logvar},
                          SampleAttrs{seed, sample_in_inference ? Draw::sample : Draw::mean});
}
Value dropout(Value x, double rate, uint64_t seed) { return x.graph().apply("dropout", {x}, MaskAttrs{rate, seed}); }
Value masking_noise(Value x, double rate, uint64_t seed) {
  return x.graph().apply("masking_noise", {x}, MaskAttrs{rate, seed});
}

}  // namespace flowgrad
