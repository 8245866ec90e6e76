// Regularization terms of the autoencoder literature, each a scalar op with a fused gradient op:
//   kl_normal(mu, logvar)   KL(N(mu, exp(logvar)) || N(0, 1)) of a VAE's posterior, summed over the latent
//                           axes and (by default) averaged over the batch;
//   kl_sparsity(h)          beta * sum_j KL(rho || rho_hat_j) of a sparse autoencoder, rho_hat_j the batch
//                           mean of unit j's activation (Ng's sparse autoencoder notes);
//   contractive_dense(h, w) ||dh/dx||_F^2 of a dense encoder h = f(x w + b) in closed form, averaged over the
//                           batch (Rifai et al. 2011): sum_j f'(h_j)^2 sum_i w_ij^2 per sample.
// The contractive penalty of any other encoder is the `contractive` layer (zoo/regularizer_layers.cpp),
// built from vector-Jacobian products of the autodiff pass.
//
// Like the losses, gradient ops read batch sizes from their input shapes when their kernels are made, never
// from attributes, so a graph re-instantiated for another batch (Graph::with_batch) divides by the new one.
// The kernels are serial double-precision loops: these terms see a latent or hidden layer, a few thousand
// values a batch, and summing in one fixed order keeps them bitwise reproducible.
#include "ops/activation.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flowgrad {
namespace {

const std::vector<TensorType> kScalar = {TensorType{{}, DType::f32}};

void require_f32(const ShapeContext& c, int input) {
  const TensorType& t = c.inputs[static_cast<size_t>(input)];
  if (t.dtype != DType::f32)
    throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32", c.node, c.op, input,
                                              to_string(t.dtype)));
}

void require_scalar_grad(const ShapeContext& c) {
  require_f32(c, 0);
  if (numel(c.in(0)) != 1) c.fail("the incoming gradient must be a scalar");
}

// A kernel on one thread, with `scratch_doubles` doubles of the plan's arena for per-unit sums.
class SerialKernel final : public kernels::FunctionKernel {
 public:
  SerialKernel(Body body, double flops, int64_t scratch_doubles = 0)
      : FunctionKernel(std::move(body), flops, /*parallel=*/false), scratch_doubles_(scratch_doubles) {}
  size_t scratch_bytes() const override { return static_cast<size_t>(scratch_doubles_) * sizeof(double); }

 private:
  int64_t scratch_doubles_;
};

// ---- kl_normal ------------------------------------------------------------------------------------------
struct KlNormalAttrs {
  Reduction reduction = Reduction::sum_over_batch_size;
  template <class F> void fields(F&& f) { f("reduction", reduction); }
};

double kl_normal_term(double mu, double logvar) { return -0.5 * (1 + logvar - mu * mu - std::exp(logvar)); }

std::vector<TensorType> kl_normal_infer(const ShapeContext& c, int first) {
  require_f32(c, first);
  require_f32(c, first + 1);
  if (c.in(first) != c.in(first + 1)) c.fail("mu and logvar must have the same shape");
  if (c.in(first).empty()) c.fail("mu and logvar need a batch axis, e.g. [batch, latent]");
  return {{c.in(first), DType::f32}};
}

void register_kl_normal(Registry& r) {
  r.add(OpBuilder<KlNormalAttrs>("kl_normal", 2, 2)
            .summary("KL(N(mu, exp(logvar)) || N(0, 1)): a VAE's KL term, each sample's sum averaged over the batch")
            .example({.inputs = {{{4, 3}}, {{4, 3}}}, .low = -1.5, .high = 1.5, .label = "per sample, batch mean"})
            .example({.inputs = {{{2, 5}}, {{2, 5}}}, .attrs = {{"reduction", std::string("sum")}}, .label = "sum"})
            .infer([](const ShapeContext& c, const KlNormalAttrs&) {
              kl_normal_infer(c, 0);
              return kScalar;
            })
            .reference([](const RefContext& c, const KlNormalAttrs& a) {
              double s = 0;
              for (int64_t i = 0; i < c.in(0).size(); ++i) s += kl_normal_term(c.in(0)[i], c.in(1)[i]);
              return std::vector<RefTensor>{RefTensor({}, s / reduction_divisor(a.reduction, c.in(0).shape))};
            })
            .kernel([](const KernelContext& c, const KlNormalAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.inputs[0].numel();
              const double divisor = reduction_divisor(a.reduction, c.inputs[0].shape);
              return std::make_unique<SerialKernel>(
                  [n, divisor](const KernelArgs& args) {
                    const float *mu = args.input(0), *logvar = args.input(1);
                    double s = 0;
                    for (int64_t i = 0; i < n; ++i) s += kl_normal_term(mu[i], logvar[i]);
                    *args.output(0) = static_cast<float>(s / divisor);
                  },
                  5.0 * static_cast<double>(n));
            })
            .gradient([](GradContext& c) {
              std::vector<Value> d = c.graph.add("kl_normal_grad", {*c.grad(), c.input(0), c.input(1)},
                                                 c.attrs<KlNormalAttrs>(), c.name("mu_logvar"));
              return GradResult{d[0], d[1]};
            })
            .build());
  // d/dmu = mu, d/dlogvar = (exp(logvar) - 1) / 2, each times g / divisor.
  r.add(OpBuilder<KlNormalAttrs>("kl_normal_grad", 3, 3)
            .summary("gradient of kl_normal: g mu / n and g (exp(logvar) - 1) / 2n; outputs d mu, d logvar")
            .example({.inputs = {{Shape{}}, {{4, 3}}, {{4, 3}}}, .low = -1.5, .high = 1.5})
            .infer([](const ShapeContext& c, const KlNormalAttrs&) {
              require_scalar_grad(c);
              std::vector<TensorType> d = kl_normal_infer(c, 1);
              return std::vector<TensorType>{d[0], d[0]};
            })
            .reference([](const RefContext& c, const KlNormalAttrs& a) {
              const RefTensor &mu = c.in(1), &logvar = c.in(2);
              const double g = c.in(0)[0] / reduction_divisor(a.reduction, mu.shape);
              RefTensor dmu(mu.shape), dlogvar(mu.shape);
              for (int64_t i = 0; i < mu.size(); ++i) {
                dmu[i] = g * mu[i];
                dlogvar[i] = g * 0.5 * std::expm1(logvar[i]);
              }
              return std::vector<RefTensor>{std::move(dmu), std::move(dlogvar)};
            })
            .kernel([](const KernelContext& c, const KlNormalAttrs& a) -> std::unique_ptr<Kernel> {
              const int64_t n = c.inputs[1].numel();
              const double divisor = reduction_divisor(a.reduction, c.inputs[1].shape);
              return std::make_unique<SerialKernel>(
                  [n, divisor](const KernelArgs& args) {
                    const double g = static_cast<double>(*args.input(0)) / divisor;
                    const float *mu = args.input(1), *logvar = args.input(2);
                    float *dmu = args.output(0), *dlogvar = args.output(1);
                    for (int64_t i = 0; i < n; ++i) {
                      dmu[i] = static_cast<float>(g * mu[i]);
                      dlogvar[i] = static_cast<float>(g * 0.5 * std::expm1(static_cast<double>(logvar[i])));
                    }
                  },
                  4.0 * static_cast<double>(n));
            })
            .build());
}

// ---- kl_sparsity --------------------------------------------------------------------------------------------
struct KlSparsityAttrs {
  double rho = 0.05;  // the target mean activation
  double beta = 1.0;  // the penalty's weight (Ng's beta; a loss term's `weight` multiplies it again)
  template <class F> void fields(F&& f) {
    f("rho", rho);
    f("beta", beta);
  }
};

// Mean activations are kept inside [eps, 1 - eps] before the logs, as binary_crossentropy clamps its
// probabilities; a clamped unit gets no gradient.
constexpr double kSparsityEps = 1e-7;

struct UnitMeans {
  int64_t batch = 0, units = 0;
};

UnitMeans unit_layout(const Shape& h) { return {h[0], numel(h) / h[0]}; }

// rho_hat_j = mean over the batch of h[b, j], for the flattened units j.
template <class T>
void unit_means(const T* h, UnitMeans layout, double* means) {
  std::fill_n(means, layout.units, 0.0);
  for (int64_t b = 0; b < layout.batch; ++b)
    for (int64_t j = 0; j < layout.units; ++j) means[j] += static_cast<double>(h[b * layout.units + j]);
  for (int64_t j = 0; j < layout.units; ++j) means[j] /= static_cast<double>(layout.batch);
}

double kl_bernoulli(double rho, double rho_hat) {
  const double q = std::clamp(rho_hat, kSparsityEps, 1 - kSparsityEps);
  return rho * std::log(rho / q) + (1 - rho) * std::log((1 - rho) / (1 - q));
}

// d KL / d rho_hat, zero where rho_hat was clamped.
double kl_bernoulli_slope(double rho, double rho_hat) {
  if (rho_hat < kSparsityEps || rho_hat > 1 - kSparsityEps) return 0;
  return -rho / rho_hat + (1 - rho) / (1 - rho_hat);
}

void sparsity_check(const ShapeContext& c, const KlSparsityAttrs& a, int h) {
  require_f32(c, h);
  if (c.in(h).empty()) c.fail("h needs a batch axis, e.g. [batch, units]");
  if (!(a.rho > 0 && a.rho < 1))
    throw Error(ErrorKind::spec,
                fmt::format("node '{}' (op '{}'): rho is the target mean activation, in (0, 1); got {}", c.node, c.op, a.rho));
}

// The penalty or its gradient over h, with `means` of units doubles of scratch.
template <class T>
double sparsity_value(const T* h, UnitMeans layout, const KlSparsityAttrs& a, double* means) {
  unit_means(h, layout, means);
  double s = 0;
  for (int64_t j = 0; j < layout.units; ++j) s += kl_bernoulli(a.rho, means[j]);
  return a.beta * s;
}

template <class T, class U>
void sparsity_grad(double g, const T* h, UnitMeans layout, const KlSparsityAttrs& a, double* means, U* dh) {
  unit_means(h, layout, means);
  const double scale = g * a.beta / static_cast<double>(layout.batch);
  for (int64_t j = 0; j < layout.units; ++j) means[j] = scale * kl_bernoulli_slope(a.rho, means[j]);
  for (int64_t b = 0; b < layout.batch; ++b)
    for (int64_t j = 0; j < layout.units; ++j) dh[b * layout.units + j] = static_cast<U>(means[j]);
}

void register_kl_sparsity(Registry& r) {
  // Mean activations in (0.05, 0.95), as a sigmoid layer's, away from the clamp.
  r.add(OpBuilder<KlSparsityAttrs>("kl_sparsity", 1, 1)
            .summary("beta * sum_j KL(rho || rho_hat_j), rho_hat_j = batch mean of unit j: a sparse AE's penalty")
            .example({.inputs = {{{4, 3}}}, .attrs = {{"rho", 0.1}}, .low = 0.05, .high = 0.95})
            .example({.inputs = {{{3, 2, 2}}}, .attrs = {{"rho", 0.3}, {"beta", 2.0}}, .low = 0.05, .high = 0.95,
                      .label = "beta, rank 3"})
            .infer([](const ShapeContext& c, const KlSparsityAttrs& a) {
              sparsity_check(c, a, 0);
              return kScalar;
            })
            .reference([](const RefContext& c, const KlSparsityAttrs& a) {
              const UnitMeans layout = unit_layout(c.in(0).shape);
              std::vector<double> means(static_cast<size_t>(layout.units));
              return std::vector<RefTensor>{RefTensor({}, sparsity_value(c.in(0).data.data(), layout, a, means.data()))};
            })
            .kernel([](const KernelContext& c, const KlSparsityAttrs& a) -> std::unique_ptr<Kernel> {
              const UnitMeans layout = unit_layout(c.inputs[0].shape);
              return std::make_unique<SerialKernel>(
                  [layout, a](const KernelArgs& args) {
                    *args.output(0) = static_cast<float>(
                        sparsity_value(args.input(0), layout, a, static_cast<double*>(args.scratch)));
                  },
                  3.0 * static_cast<double>(layout.batch * layout.units), layout.units);
            })
            .gradient([](GradContext& c) {
              return GradResult{c.graph.apply("kl_sparsity_grad", {*c.grad(), c.input(0)}, c.attrs<KlSparsityAttrs>(),
                                              c.name("h"))};
            })
            .build());
  r.add(OpBuilder<KlSparsityAttrs>("kl_sparsity_grad", 2, 2)
            .summary("gradient of kl_sparsity: g beta (-rho / rho_hat + (1 - rho) / (1 - rho_hat)) / batch")
            .example({.inputs = {{Shape{}}, {{4, 3}}}, .attrs = {{"rho", 0.1}}, .low = 0.05, .high = 0.95})
            .infer([](const ShapeContext& c, const KlSparsityAttrs& a) {
              require_scalar_grad(c);
              sparsity_check(c, a, 1);
              return std::vector<TensorType>{{c.in(1), DType::f32}};
            })
            .reference([](const RefContext& c, const KlSparsityAttrs& a) {
              const RefTensor& h = c.in(1);
              const UnitMeans layout = unit_layout(h.shape);
              std::vector<double> means(static_cast<size_t>(layout.units));
              RefTensor dh(h.shape);
              sparsity_grad(c.in(0)[0], h.data.data(), layout, a, means.data(), dh.data.data());
              return std::vector<RefTensor>{std::move(dh)};
            })
            .kernel([](const KernelContext& c, const KlSparsityAttrs& a) -> std::unique_ptr<Kernel> {
              const UnitMeans layout = unit_layout(c.inputs[1].shape);
              return std::make_unique<SerialKernel>(
                  [layout, a](const KernelArgs& args) {
                    sparsity_grad(static_cast<double>(*args.input(0)), args.input(1), layout, a,
                                  static_cast<double*>(args.scratch), args.output(0));
                  },
                  3.0 * static_cast<double>(layout.batch * layout.units), layout.units);
            })
            .build());
}

// ---- contractive_dense --------------------------------------------------------------------------------------
struct ContractiveAttrs {
  Activation activation = Activation::sigmoid;  // the encoder's activation, whose derivative is read from h
  double alpha = 0;                             // leaky_relu slope, elu saturation
  template <class F> void fields(F&& f) {
    f("activation", activation);
    f("alpha", alpha);
  }
};

// d f'(y) / dy with f' written through the output y (derivative_from_output): what the gradient of
// f'(h)^2 with respect to h needs. Piecewise-linear activations have a piecewise-constant f': zero.
double slope_of_derivative(Activation activation, double y) {
  switch (activation) {
    case Activation::sigmoid: return 1 - 2 * y;        // (y - y^2)'
    case Activation::tanh: return -2 * y;              // (1 - y^2)'
    case Activation::softplus: return std::exp(-y);    // (1 - e^-y)'
    case Activation::elu: return y > 0 ? 0.0 : 1.0;    // y + alpha below zero
    default: return 0;
  }
}

struct DenseJacobian {
  int64_t rows = 0, in = 0, units = 0;
};

DenseJacobian contractive_check(const ShapeContext& c, int h, int w) {
  require_f32(c, h);
  require_f32(c, w);
  const Shape &hs = c.in(h), &ws = c.in(w);
  if (ws.size() != 2) c.fail("w must be the encoder's kernel [in, units]");
  if (hs.size() != 2 || hs[1] != ws[1])
    c.fail("h must be the encoder's output [batch, units] with the kernel's units (w is [in, units])");
  return {hs[0], ws[0], ws[1]};
}

// column_norms[j] = sum_i w_ij^2.
template <class T>
void column_norms(const T* w, const DenseJacobian& d, double* norms) {
  std::fill_n(norms, d.units, 0.0);
  for (int64_t i = 0; i < d.in; ++i)
    for (int64_t j = 0; j < d.units; ++j) norms[j] += static_cast<double>(w[i * d.units + j]) * w[i * d.units + j];
}

// scratch: units doubles.
template <class T>
double contractive_value(const T* h, const T* w, const DenseJacobian& d, const ContractiveAttrs& a, double* norms) {
  column_norms(w, d, norms);
  double s = 0;
  for (int64_t b = 0; b < d.rows; ++b)
    for (int64_t j = 0; j < d.units; ++j) {
      const double f = derivative_from_output(a.activation, h[b * d.units + j], a.alpha);
      s += f * f * norms[j];
    }
  return s / static_cast<double>(d.rows);
}

// dh_bj = 2 g/rows f'(h) f'' c_j;  dw_ij = 2 g/rows w_ij sum_b f'(h_bj)^2. scratch: 2 units doubles.
template <class T, class U>
void contractive_grad(double g, const T* h, const T* w, const DenseJacobian& d, const ContractiveAttrs& a, double* scratch,
                      U* dh, U* dw) {
  double* norms = scratch;
  double* slopes = scratch + d.units;  // sum over the batch of f'(h_bj)^2
  column_norms(w, d, norms);
  std::fill_n(slopes, d.units, 0.0);
  const double scale = 2 * g / static_cast<double>(d.rows);
  for (int64_t b = 0; b < d.rows; ++b)
    for (int64_t j = 0; j < d.units; ++j) {
      const double y = h[b * d.units + j];
      const double f = derivative_from_output(a.activation, y, a.alpha);
      slopes[j] += f * f;
      dh[b * d.units + j] = static_cast<U>(scale * f * slope_of_derivative(a.activation, y) * norms[j]);
    }
  for (int64_t i = 0; i < d.in; ++i)
    for (int64_t j = 0; j < d.units; ++j) dw[i * d.units + j] = static_cast<U>(scale * w[i * d.units + j] * slopes[j]);
}

void register_contractive(Registry& r) {
  const auto sigmoid_range = [](int input, RefTensor& t) {  // h is a sigmoid's output
    if (input == 0)
      for (double& v : t.data) v = 0.05 + 0.45 * (v + 1);
  };
  r.add(OpBuilder<ContractiveAttrs>("contractive_dense", 2, 2)
            .summary("||dh/dx||_F^2 of a dense encoder h = f(x w + b), averaged over the batch: sum_j f'(h_j)^2 |w_j|^2")
            .example({.inputs = {{{4, 3}}, {{5, 3}}}, .fill = sigmoid_range, .label = "sigmoid"})
            .example({.inputs = {{{3, 2}}, {{4, 2}}},
                      .attrs = {{"activation", std::string("tanh")}},
                      .low = -0.9,
                      .high = 0.9,
                      .label = "tanh"})
            .infer([](const ShapeContext& c, const ContractiveAttrs&) {
              contractive_check(c, 0, 1);
              return kScalar;
            })
            .reference([](const RefContext& c, const ContractiveAttrs& a) {
              const DenseJacobian d{c.in(0).shape[0], c.in(1).shape[0], c.in(1).shape[1]};
              std::vector<double> norms(static_cast<size_t>(d.units));
              return std::vector<RefTensor>{
                  RefTensor({}, contractive_value(c.in(0).data.data(), c.in(1).data.data(), d, a, norms.data()))};
            })
            .kernel([](const KernelContext& c, const ContractiveAttrs& a) -> std::unique_ptr<Kernel> {
              const DenseJacobian d{c.inputs[0].shape[0], c.inputs[1].shape[0], c.inputs[1].shape[1]};
              return std::make_unique<SerialKernel>(
                  [d, a](const KernelArgs& args) {
                    *args.output(0) = static_cast<float>(
                        contractive_value(args.input(0), args.input(1), d, a, static_cast<double*>(args.scratch)));
                  },
                  3.0 * static_cast<double>(d.rows * d.units + d.in * d.units), d.units);
            })
            .gradient([](GradContext& c) {
              std::vector<Value> d = c.graph.add("contractive_dense_grad", {*c.grad(), c.input(0), c.input(1)},
                                                 c.attrs<ContractiveAttrs>(), c.name("h_w"));
              return GradResult{d[0], d[1]};
            })
            .build());
  r.add(OpBuilder<ContractiveAttrs>("contractive_dense_grad", 3, 3)
            .summary("gradient of contractive_dense: outputs d h and d w")
            .example({.inputs = {{Shape{}}, {{4, 3}}, {{5, 3}}},
                      .fill = [](int input, RefTensor& t) {
                        if (input == 1)
                          for (double& v : t.data) v = 0.05 + 0.45 * (v + 1);
                      },
                      .label = "sigmoid"})
            .infer([](const ShapeContext& c, const ContractiveAttrs&) {
              require_scalar_grad(c);
              contractive_check(c, 1, 2);
              return std::vector<TensorType>{c.inputs[1], c.inputs[2]};
            })
            .reference([](const RefContext& c, const ContractiveAttrs& a) {
              const RefTensor &h = c.in(1), &w = c.in(2);
              const DenseJacobian d{h.shape[0], w.shape[0], w.shape[1]};
              std::vector<double> scratch(static_cast<size_t>(2 * d.units));
              RefTensor dh(h.shape), dw(w.shape);
              contractive_grad(c.in(0)[0], h.data.data(), w.data.data(), d, a, scratch.data(), dh.data.data(), dw.data.data());
              return std::vector<RefTensor>{std::move(dh), std::move(dw)};
            })
            .kernel([](const KernelContext& c, const ContractiveAttrs& a) -> std::unique_ptr<Kernel> {
              const DenseJacobian d{c.inputs[1].shape[0], c.inputs[2].shape[0], c.inputs[2].shape[1]};
              return std::make_unique<SerialKernel>(
                  [d, a](const KernelArgs& args) {
                    contractive_grad(static_cast<double>(*args.input(0)), args.input(1), args.input(2), d, a,
                                     static_cast<double*>(args.scratch), args.output(0), args.output(1));
                  },
                  4.0 * static_cast<double>(d.rows * d.units + d.in * d.units), 2 * d.units);
            })
            .build());
}

}  // namespace

void register_regularizer_ops(Registry& r) {
  register_kl_normal(r);
  register_kl_sparsity(r);
  register_contractive(r);
}

Value kl_normal(Value mu, Value logvar, Reduction reduction) {
  return mu.graph().apply("kl_normal", {mu, logvar}, KlNormalAttrs{reduction});
}
Value kl_sparsity(Value h, double rho, double beta) {
  return h.graph().apply("kl_sparsity", {h}, KlSparsityAttrs{rho, beta});
}
Value contractive_dense(Value h, Value w, Activation activation, double alpha) {
  return h.graph().apply("contractive_dense", {h, w}, ContractiveAttrs{activation, alpha});
}

}  // namespace flowgrad
