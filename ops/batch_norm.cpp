// Batch normalization over x[batch, channels, spatial...] (rank 2 to 5), per channel, on oneDNN's
// batch_normalization primitives:
//
//   batch_norm(x, gamma, beta, running_mean, running_var){epsilon, training}
//       training:  y = gamma (x - mean) / sqrt(var + epsilon) + beta with the batch's mean and (biased) var,
//                  which are the second and third outputs: the backward reads them, and batch_norm_update
//                  folds them into the running statistics.
//       inference: the same with running_mean and running_var; y is the only output.
//   batch_norm_grad(g, x, gamma, mean, var){epsilon, training} -> dx, dgamma, dbeta
//       The backward primitive given the statistics the forward used. In training, dx accounts for the
//       statistics depending on x; in inference it is g gamma / sqrt(var + epsilon).
//   batch_norm_update(running_mean, running_var, mean, var, x){momentum}
//       running = (1 - momentum) running + momentum batch, with the variance made unbiased (times n / (n - 1),
//       n = values per channel), as PyTorch does. Writes the running statistics in place; x only lends its
//       shape, so that n follows the batch size when a graph is re-batched.
//
// The front end batch_norm() adds the update node in training, so one call does what torch.nn.BatchNorm2d
// does. The update declares `mutates`, so the planner runs it after every reader of the running statistics
// and keeps it although nothing reads its (absent) outputs.
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flowgrad {
namespace {

using kernels::Binding;

struct BatchNormAttrs {
  double epsilon = 1e-5;
  bool training = true;
  template <class F> void fields(F&& f) {
    f("epsilon", epsilon);
    f("training", training);
  }
};

struct UpdateAttrs {
  double momentum = 0.1;
  template <class F> void fields(F&& f) { f("momentum", momentum); }
};

// x seen as [batch, channels, spatial] with spatial the product of the trailing axes (1 for rank 2).
struct Layout {
  int64_t batch = 0, channels = 0, spatial = 1;
  explicit Layout(const Shape& x) : batch(x[0]), channels(x[1]) {
    for (size_t d = 2; d < x.size(); ++d) spatial *= x[d];
  }
  int64_t per_channel() const { return batch * spatial; }  // values each statistic is taken over
  int64_t channel_of(int64_t i) const { return i / spatial % channels; }
};

void require_f32(const ShapeContext& c) {
  for (size_t i = 0; i < c.inputs.size(); ++i)
    if (c.inputs[i].dtype != DType::f32)
      throw Error(ErrorKind::dtype, fmt::format("node '{}' (op '{}'): input {} is {}, expected f32", c.node, c.op, i,
                                                to_string(c.inputs[i])));
}

// Checks x (input `x_input`) and the per-channel inputs `vectors` (named), and returns x's layout.
Layout check_inputs(const ShapeContext& c, int x_input, std::initializer_list<std::pair<int, const char*>> vectors) {
  require_f32(c);
  const Shape& x = c.in(x_input);
  if (x.size() < 2 || x.size() > 5)
    c.fail(fmt::format("x must be [batch, channels] or [batch, channels, spatial...] (rank 2 to 5), but is {}",
                       to_string(x)));
  for (const auto& [input, name] : vectors)
    if (c.in(input) != Shape{x[1]})
      c.fail(fmt::format("{} must be [{}] for x's {} channels, but is {}", name, x[1], x[1], to_string(c.in(input))));
  return Layout(x);
}

void require_batch_statistics(const ShapeContext& c, const Layout& l) {
  if (l.per_channel() < 2)
    c.fail(fmt::format("training needs more than one value per channel to take statistics over, but x has {}",
                       l.per_channel()));
}

// ---- references -------------------------------------------------------------------------------------------------

struct Statistics {
  std::vector<double> mean, var;  // var biased: divided by the number of values
};

Statistics batch_statistics(const RefTensor& x, const Layout& l) {
  Statistics s{std::vector<double>(static_cast<size_t>(l.channels)), std::vector<double>(static_cast<size_t>(l.channels))};
  const double n = static_cast<double>(l.per_channel());
  for (int64_t i = 0; i < x.size(); ++i) s.mean[static_cast<size_t>(l.channel_of(i))] += x[i] / n;
  for (int64_t i = 0; i < x.size(); ++i) {
    const double d = x[i] - s.mean[static_cast<size_t>(l.channel_of(i))];
    s.var[static_cast<size_t>(l.channel_of(i))] += d * d / n;
  }
  return s;
}

std::vector<RefTensor> batch_norm_reference(const RefContext& c, const BatchNormAttrs& a) {
  const RefTensor &x = c.in(0), &gamma = c.in(1), &beta = c.in(2);
  const Layout l(x.shape);
  Statistics s = a.training ? batch_statistics(x, l) : Statistics{c.in(3).data, c.in(4).data};
  RefTensor y(x.shape);
  for (int64_t i = 0; i < x.size(); ++i) {
    const size_t k = static_cast<size_t>(l.channel_of(i));
    y[i] = gamma.data[k] * (x[i] - s.mean[k]) / std::sqrt(s.var[k] + a.epsilon) + beta.data[k];
  }
  if (!a.training) return {std::move(y)};
  RefTensor mean({l.channels}), var({l.channels});
  mean.data = s.mean, var.data = s.var;
  return {std::move(y), std::move(mean), std::move(var)};
}

std::vector<RefTensor> batch_norm_grad_reference(const RefContext& c, const BatchNormAttrs& a) {
  const RefTensor &g = c.in(0), &x = c.in(1), &gamma = c.in(2), &mean = c.in(3), &var = c.in(4);
  const Layout l(x.shape);
  const double n = static_cast<double>(l.per_channel());
  auto normalized = [&](int64_t i, size_t k) { return (x[i] - mean.data[k]) / std::sqrt(var.data[k] + a.epsilon); };
  RefTensor dx(x.shape), dgamma({l.channels}), dbeta({l.channels});
  for (int64_t i = 0; i < x.size(); ++i) {
    const size_t k = static_cast<size_t>(l.channel_of(i));
    dgamma.data[k] += g[i] * normalized(i, k);
    dbeta.data[k] += g[i];
  }
  for (int64_t i = 0; i < x.size(); ++i) {
    const size_t k = static_cast<size_t>(l.channel_of(i));
    double centered = g[i];
    if (a.training) centered -= dbeta.data[k] / n + normalized(i, k) * dgamma.data[k] / n;
    dx[i] = gamma.data[k] / std::sqrt(var.data[k] + a.epsilon) * centered;
  }
  return {std::move(dx), std::move(dgamma), std::move(dbeta)};
}

void update_reference(const RefContext& c, const UpdateAttrs& a) {
  RefTensor &running_mean = *c.inputs[0], &running_var = *c.inputs[1];
  const double n = static_cast<double>(Layout(c.in(4).shape).per_channel());
  for (int64_t k = 0; k < running_mean.size(); ++k) {
    running_mean[k] = (1 - a.momentum) * running_mean[k] + a.momentum * c.in(2)[k];
    running_var[k] = (1 - a.momentum) * running_var[k] + a.momentum * c.in(3)[k] * n / (n - 1);
  }
}

// ---- kernels ------------------------------------------------------------------------------------------------------

dnnl::normalization_flags flags_of(const BatchNormAttrs& a) {
  auto flags = dnnl::normalization_flags::use_scale | dnnl::normalization_flags::use_shift;
  return a.training ? flags : flags | dnnl::normalization_flags::use_global_stats;
}

dnnl::batch_normalization_forward::primitive_desc forward_pd(const KernelContext& c, const Shape& x,
                                                             const BatchNormAttrs& a, dnnl::prop_kind kind) {
  dnnl::batch_normalization_forward::desc desc(kind, kernels::plain_desc(x), static_cast<float>(a.epsilon),
                                               flags_of(a));
  return dnnl::batch_normalization_forward::primitive_desc(desc, kernels::base_attr(), c.engine);
}

std::unique_ptr<Kernel> batch_norm_kernel(const KernelContext& c, const BatchNormAttrs& a) {
  const Shape& x = c.inputs[0].shape;
  auto pd = forward_pd(c, x, a, a.training ? dnnl::prop_kind::forward_training : dnnl::prop_kind::forward_inference);
  auto data = kernels::plain_desc(x), vector = kernels::plain_desc({x[1]});
  // Training writes the batch statistics (outputs 1 and 2); inference reads the running ones (inputs 3, 4).
  const Binding::From statistics = a.training ? Binding::From::output : Binding::From::input;
  return kernels::primitive_kernel(c.engine, pd,
                                   {{DNNL_ARG_SRC, Binding::From::input, 0, data},
                                    {DNNL_ARG_SCALE, Binding::From::input, 1, vector},
                                    {DNNL_ARG_SHIFT, Binding::From::input, 2, vector},
                                    {DNNL_ARG_MEAN, statistics, a.training ? 1 : 3, vector},
                                    {DNNL_ARG_VARIANCE, statistics, a.training ? 2 : 4, vector},
                                    {DNNL_ARG_DST, Binding::From::output, 0, data}},
                                   (a.training ? 8.0 : 4.0) * static_cast<double>(numel(x)));
}

std::unique_ptr<Kernel> batch_norm_grad_kernel(const KernelContext& c, const BatchNormAttrs& a) {
  const Shape& x = c.inputs[1].shape;
  auto data = kernels::plain_desc(x), vector = kernels::plain_desc({x[1]});
  auto hint = forward_pd(c, x, a, dnnl::prop_kind::forward_training);
  dnnl::batch_normalization_backward::desc desc(dnnl::prop_kind::backward, data, data, static_cast<float>(a.epsilon),
                                                flags_of(a));
  dnnl::batch_normalization_backward::primitive_desc pd(desc, kernels::base_attr(), c.engine, hint);
  // oneDNN 2.6 refuses to run the backward with use_shift unless a SHIFT argument is bound, though nothing
  // reads it (beta does not enter any derivative): gamma's buffer stands in.
  return kernels::primitive_kernel(c.engine, pd,
                                   {{DNNL_ARG_DIFF_DST, Binding::From::input, 0, data},
                                    {DNNL_ARG_SRC, Binding::From::input, 1, data},
                                    {DNNL_ARG_SCALE, Binding::From::input, 2, vector},
                                    {DNNL_ARG_SHIFT, Binding::From::input, 2, vector},
                                    {DNNL_ARG_MEAN, Binding::From::input, 3, vector},
                                    {DNNL_ARG_VARIANCE, Binding::From::input, 4, vector},
                                    {DNNL_ARG_DIFF_SRC, Binding::From::output, 0, data},
                                    {DNNL_ARG_DIFF_SCALE, Binding::From::output, 1, vector},
                                    {DNNL_ARG_DIFF_SHIFT, Binding::From::output, 2, vector}},
                                   8.0 * static_cast<double>(numel(x)));
}

std::unique_ptr<Kernel> update_kernel(const KernelContext& c, const UpdateAttrs& a) {
  const int64_t channels = c.inputs[0].numel();
  const double n = static_cast<double>(Layout(c.inputs[4].shape).per_channel());
  const float keep = static_cast<float>(1 - a.momentum), take = static_cast<float>(a.momentum),
              take_unbiased = static_cast<float>(a.momentum * n / (n - 1));
  return std::make_unique<kernels::FunctionKernel>(
      [=](const KernelArgs& args) {
        float* running_mean = args.input(0);
        float* running_var = args.input(1);
        const float* mean = args.input(2);
        const float* var = args.input(3);
        for (int64_t k = 0; k < channels; ++k) {
          running_mean[k] = keep * running_mean[k] + take * mean[k];
          running_var[k] = keep * running_var[k] + take_unbiased * var[k];
        }
      },
      4.0 * static_cast<double>(channels), false);
}

// ---- gradient rules ---------------------------------------------------------------------------------------------------

std::vector<int64_t> reduced_axes(Value x) {
  std::vector<int64_t> axes = {0};
  for (int64_t d = 2; d < x.rank(); ++d) axes.push_back(d);
  return axes;
}

// [channels] -> [1, channels, 1, ...], which broadcasts against x.
Value per_channel(Value v, Value x) {
  Shape shape(static_cast<size_t>(x.rank()), 1);
  shape[1] = x.shape()[1];
  return reshape(v, shape);
}

// 1 / sqrt(var + epsilon), per channel.
Value inverse_std(Value var, double epsilon) { return fill_like(var, 1.0) / sqrt(var + fill_like(var, epsilon)); }

std::vector<Value> batch_norm_grad(Value g, Value x, Value gamma, Value mean, Value var, const BatchNormAttrs& a) {
  return g.graph().add("batch_norm_grad", {g, x, gamma, mean, var}, a);
}

void accumulate(std::optional<Value>& total, Value v) { total = total ? *total + v : v; }

// Training: mean and var are outputs, so dx also collects their gradients (mean = avg(x) and
// var = avg((x - mean)^2) per channel). Inference: y depends on the running statistics as inputs.
GradResult batch_norm_gradient(GradContext& c) {
  const auto& a = c.attrs<BatchNormAttrs>();
  Value x = c.input(0), gamma = c.input(1);
  Value mean = a.training ? c.output(1) : c.input(3), var = a.training ? c.output(2) : c.input(4);
  GradResult result(5);
  if (std::optional<Value> g = c.grad(0)) {
    std::vector<Value> d = batch_norm_grad(*g, x, gamma, mean, var, a);
    result[0] = d[0], result[1] = d[1], result[2] = d[2];
    if (!a.training && (c.needs(3) || c.needs(4))) {
      // dy/dmean = -gamma r and dy/dvar = -gamma xhat r^2 / 2, with r = 1 / sqrt(var + epsilon).
      Value scaled = gamma * inverse_std(var, a.epsilon);
      if (c.needs(3)) result[3] = neg(d[2] * scaled);
      if (c.needs(4)) result[4] = scale(d[1] * scaled * inverse_std(var, a.epsilon), -0.5);
    }
  }
  if (a.training && c.needs(0)) {
    const std::vector<int64_t> axes = reduced_axes(x);
    if (std::optional<Value> g_mean = c.grad(1)) accumulate(result[0], broadcast_to(*g_mean, x, axes, true));
    if (std::optional<Value> g_var = c.grad(2))
      accumulate(result[0], scale((x - per_channel(mean, x)) * broadcast_to(*g_var, x, axes, true), 2.0));
  }
  return result;
}

// batch_norm_grad's own gradient, for differentiating training graphs again. With r = 1 / sqrt(var + eps),
// xhat = (x - mean) r, k = gamma r, averages avg() per channel, and A, B, D the gradients flowing into dx,
// dgamma and dbeta, the forward is dgamma = sum(g xhat), dbeta = sum(g) and
//   training:  dx = k (g - avg(g) - xhat avg(g xhat))      inference: dx = k g
// so, differentiating through g, xhat and k (and then xhat and k through x, gamma, mean and var):
//   d/dg    = batch_norm_grad(A).dx + B xhat + D           (inference: k A + B xhat + D)
//   d/dxhat = -k A avg(g xhat) + g (B - k avg(A xhat))     (inference: g B)
//   d/dk    = sum(A (g - avg(g) - xhat avg(g xhat)))       (inference: sum(A g))
GradResult batch_norm_grad_gradient(GradContext& c) {
  const auto& a = c.attrs<BatchNormAttrs>();
  Value g = c.input(0), x = c.input(1), gamma = c.input(2), mean = c.input(3), var = c.input(4);
  const std::vector<int64_t> axes = reduced_axes(x);
  auto total = [&](Value v) { return sum(v, axes, true); };
  auto average = [&](Value v) { return flowgrad::mean(v, axes, true); };
  auto channel = [&](Value v) { return per_channel(v, x); };
  const std::optional<Value> A = c.grad(0), B = c.grad(1), D = c.grad(2);

  Value r = channel(inverse_std(var, a.epsilon));
  Value centered = x - channel(mean);
  Value xhat = centered * r;
  Value k = channel(gamma) * r;
  std::optional<Value> d_g, d_xhat, d_k;
  if (A) {
    if (a.training) {
      Value g_xhat = average(g * xhat);
      d_g = batch_norm_grad(*A, x, gamma, mean, var, a)[0];
      d_xhat = neg(*A * k * g_xhat) - g * (k * average(*A * xhat));
      d_k = total(*A * (g - average(g) - xhat * g_xhat));
    } else {
      d_g = *A * k;
      d_k = total(*A * g);
    }
  }
  if (B) {
    accumulate(d_g, channel(*B) * xhat);
    accumulate(d_xhat, channel(*B) * g);
  }
  if (D) d_g = d_g ? *d_g + channel(*D) : broadcast_to(*D, g, axes);

  GradResult result(5);
  result[0] = d_g;
  const int64_t channels = x.shape()[1];
  auto as_vector = [channels](Value v) { return reshape(v, {channels}); };
  if (d_k && c.needs(2)) result[2] = as_vector(*d_k * r);
  if (d_xhat) {
    if (c.needs(1)) result[1] = *d_xhat * r;
    if (c.needs(3)) result[3] = as_vector(neg(total(*d_xhat)) * r);
  }
  if (c.needs(4) && (d_k || d_xhat)) {
    std::optional<Value> d_r;
    if (d_k) d_r = *d_k * channel(gamma);
    if (d_xhat) accumulate(d_r, total(*d_xhat * centered));
    result[4] = as_vector(scale(*d_r * r * r * r, -0.5));  // dr/dvar = -r^3 / 2
  }
  return result;
}

// ---- examples -------------------------------------------------------------------------------------------------

// Variances must be positive: the last input of batch_norm and batch_norm_grad, and both variances (running
// and batch) of batch_norm_update.
std::function<void(int, RefTensor&)> positive(std::vector<int> inputs) {
  return [inputs](int input, RefTensor& t) {
    if (std::find(inputs.begin(), inputs.end(), input) != inputs.end())
      for (double& v : t.data) v = 0.5 + std::abs(v);
  };
}

// The layouts of tests/ops/test_batch_norm.cpp: x [4, 3, 2, 2] (images), [5, 3] (dense) and [3, 2, 4].
OpExample norm_example(bool grad, const Shape& x, bool training) {
  const Shape vector = {x[1]};
  OpExample e{.attrs = {{"training", training}, {"epsilon", 1e-5}}, .fill = positive({4})};
  e.inputs = grad ? std::vector<TensorType>{{x}, {x}, {vector}, {vector}, {vector}}
                  : std::vector<TensorType>{{x}, {vector}, {vector}, {vector}, {vector}};
  e.label = fmt::format("{} {}", to_string(x), training ? "training" : "inference");
  return e;
}

}  // namespace

void register_batch_norm_ops(Registry& r) {
  r.add(OpBuilder<BatchNormAttrs>("batch_norm", 5, 5)
            .example(norm_example(false, {4, 3, 2, 2}, true))
            .example(norm_example(false, {5, 3}, false))
            .summary("gamma (x - mean) / sqrt(var + epsilon) + beta per channel; inputs x, gamma, beta, running_mean, "
                     "running_var; training: batch statistics, also returned as outputs mean and var")
            .infer([](const ShapeContext& c, const BatchNormAttrs& a) {
              const Layout l = check_inputs(c, 0, {{1, "gamma"}, {2, "beta"}, {3, "running_mean"}, {4, "running_var"}});
              std::vector<TensorType> out = {c.inputs[0]};
              if (a.training) {
                require_batch_statistics(c, l);
                out.push_back({{l.channels}}), out.push_back({{l.channels}});
              }
              return out;
            })
            .reference(batch_norm_reference)
            .kernel(batch_norm_kernel)
            .gradient(batch_norm_gradient)
            .inference([](const BatchNormAttrs& a) {  // normalize with the running statistics
              return InferenceForm::with_attrs(encode_attrs(BatchNormAttrs{a.epsilon, false}));
            })
            .build());

  r.add(OpBuilder<BatchNormAttrs>("batch_norm_grad", 5, 5)
            .example(norm_example(true, {4, 3, 2, 2}, true))
            .example(norm_example(true, {3, 2, 4}, false))
            .summary("batch_norm's gradient from the statistics it used; inputs g, x, gamma, mean, var; outputs dx, "
                     "dgamma, dbeta")
            .infer([](const ShapeContext& c, const BatchNormAttrs&) {
              const Layout l = check_inputs(c, 1, {{2, "gamma"}, {3, "mean"}, {4, "var"}});
              if (c.in(0) != c.in(1)) c.fail("the gradient g and x must have the same shape");
              return std::vector<TensorType>{c.inputs[1], {{l.channels}}, {{l.channels}}};
            })
            .reference(batch_norm_grad_reference)
            .kernel(batch_norm_grad_kernel)
            .gradient(batch_norm_grad_gradient)
            .build());

  r.add(OpBuilder<UpdateAttrs>("batch_norm_update", 5, 5)
            // No gradient: the harness checks the running statistics it leaves in place.
            .example({.inputs = {{{3}}, {{3}}, {{3}}, {{3}}, {{4, 3, 2, 2}}},
                      .attrs = {{"momentum", 0.1}},
                      .fill = positive({1, 3}),
                      .label = "[4, 3, 2, 2]"})
            .summary("running statistics += momentum (batch statistics - running), the variance unbiased; inputs "
                     "running_mean, running_var (updated in place), mean, var, x (for its shape)")
            .infer([](const ShapeContext& c, const UpdateAttrs& a) {
              const Layout l = check_inputs(c, 4, {{0, "running_mean"}, {1, "running_var"}, {2, "mean"}, {3, "var"}});
              require_batch_statistics(c, l);
              if (!(a.momentum >= 0 && a.momentum <= 1))
                fail(ErrorKind::spec, "node '{}' (op '{}'): momentum {} must lie in [0, 1]", c.node, c.op, a.momentum);
              return std::vector<TensorType>{};
            })
            .reference([](const RefContext& c, const UpdateAttrs& a) {
              update_reference(c, a);
              return std::vector<RefTensor>{};
            })
            .kernel(update_kernel)
            .mutates({0, 1})
            .inference([](const UpdateAttrs&) { return InferenceForm::drop(); })  // test data must not move them
            .build());
}

Value batch_norm(Value x, Value gamma, Value beta, Value running_mean, Value running_var, const BatchNorm& options,
                 std::string name) {
  Graph& graph = x.graph();
  std::vector<Value> out = graph.add("batch_norm", {x, gamma, beta, running_mean, running_var},
                                     BatchNormAttrs{options.epsilon, options.training}, name);
  if (options.training)
    graph.add("batch_norm_update", {running_mean, running_var, out[1], out[2], x}, UpdateAttrs{options.momentum},
              name.empty() ? std::string() : name + "/update");
  return out[0];
}

}  // namespace flowgrad
