// Layers that build a probabilistic or regularizing piece of a model from ordinary ops:
//   vae_latent   h -> z = gaussian_sample(mu, logvar), with the dense heads mu = "<name>/mu" and
//                logvar = "<name>/logvar" (parameters "<name>/mu/kernel", ...): a VAE's latent layer;
//   contractive  [code, x] -> the batch mean of ||d code / d x||_F^2 for any encoder, from vector-Jacobian
//                products of the autodiff pass (the closed form for one dense layer is the op
//                contractive_dense). Training differentiates through those products again.
#include "autodiff/autodiff.h"
#include "graph/random.h"
#include "ops/ops.h"
#include "zoo/spec_layers.h"

namespace flowgrad::zoo {
namespace {

// A random op's seed: the entry's `seed` key, else one derived from the run's seed and the node's name.
uint64_t seed_of(LayerContext& ctx, const std::string& node) {
  if (auto s = ctx.keys.get("seed")) {
    const int64_t seed = read_int(*s, ctx.keys.file(), "seed");
    if (seed < 0)
      throw Error(ErrorKind::spec, fmt::format("'seed' of {} must be zero or more, got {}", ctx.keys.what(), seed),
                  location_of(*s, ctx.keys.file()));
    return static_cast<uint64_t>(seed);
  }
  return derived_seed(ctx.seed, node);
}

int64_t positive_key(LayerContext& ctx, const std::string& key, int64_t fallback, const std::string& example) {
  auto node = fallback > 0 ? ctx.keys.get(key) : std::optional<YAML::Node>(ctx.keys.require(key, example));
  if (!node) return fallback;
  const int64_t n = read_int(*node, ctx.keys.file(), fmt::format("'{}' of {}", key, ctx.keys.what()));
  if (n <= 0)
    throw Error(ErrorKind::spec, fmt::format("'{}' of {} must be positive, got {}", key, ctx.keys.what(), n),
                location_of(*node, ctx.keys.file()));
  return n;
}

// vae_latent: h[batch, features] -> z[batch, units]; mu and logvar are linear dense heads (Glorot-uniform
// kernels, zero biases), z their reparameterized sample. `inference: mean` makes z = mu outside training.
std::vector<Value> build_vae_latent(LayerContext& ctx) {
  Value h = ctx.inputs[0];
  if (h.rank() != 2)
    throw Error(ErrorKind::shape,
                fmt::format("vae_latent layer '{}' needs h[batch, features], got '{}' with shape {}", ctx.name, h.name(),
                            to_string(h.shape())),
                ctx.where());
  const int64_t units = positive_key(ctx, "units", 0, ", the size of the latent code, e.g. units: 20");
  bool sample = true;
  if (auto i = ctx.keys.get("inference")) {
    const std::string form = read_string(*i, ctx.keys.file(), "inference");
    if (form != "sample" && form != "mean")
      throw Error(ErrorKind::spec,
                  fmt::format("'inference' of {} is 'sample' (z drawn as in training) or 'mean' (z = mu), got '{}'",
                              ctx.keys.what(), form),
                  location_of(*i, ctx.keys.file()));
    sample = form == "sample";
  }
  const int64_t in = h.shape()[1];
  auto head = [&](const std::string& role) {
    Value kernel = ctx.param(role + "/kernel", {in, units}, Init::glorot_uniform(in, units));
    Value bias = ctx.param(role + "/bias", {units}, Init::zeros());
    return ctx.graph.add("dense", {h, kernel, bias}, AttrMap{}, ctx.name + "/" + role, ctx.where()).front();
  };
  Value mu = head("mu"), logvar = head("logvar");
  const uint64_t seed = seed_of(ctx, ctx.name);
  return ctx.graph.add("gaussian_sample", {mu, logvar},
                       AttrMap{{"seed", static_cast<int64_t>(seed)}, {"inference", std::string(sample ? "sample" : "mean")}},
                       ctx.name, ctx.where());
}

bool depends_on(const Graph& graph, int value, int on) {
  std::vector<int> stack{value};
  std::vector<bool> seen(graph.values().size(), false);
  while (!stack.empty()) {
    const int id = stack.back();
    stack.pop_back();
    if (id == on) return true;
    if (seen[static_cast<size_t>(id)]) continue;
    seen[static_cast<size_t>(id)] = true;
    const ValueInfo& v = graph.info(id);
    if (v.kind == ValueKind::node)
      for (int in : graph.nodes()[static_cast<size_t>(v.producer)].inputs) stack.push_back(in);
  }
  return false;
}

// Units above which `exact` is refused: each unit costs one backward pass of the encoder per step.
constexpr int64_t kMaxExactUnits = 256;

// contractive: [code, x] -> mean over the batch of ||J_b||_F^2, J_b = d code_b / d x_b. With `probes: N`
// (default 1) it is Hutchinson's estimate: for v ~ N(0, I) in code space, E ||J^T v||^2 = ||J||_F^2, and
// J^T v is the gradient of sum(v * code) with respect to x, one backward pass of the encoder per probe;
// `exact: true` takes v = each unit in turn instead (units backward passes). Samples must not interact
// (no batch statistics between x and the code), or the sum over the batch mixes their Jacobians.
std::vector<Value> build_contractive(LayerContext& ctx) {
  Value code = ctx.inputs[0], x = ctx.inputs[1];
  if (code.rank() < 2 || x.rank() < 2 || code.shape()[0] != x.shape()[0])
    throw Error(ErrorKind::shape,
                fmt::format("contractive '{}' takes [code, x] with the same batch: code[batch, ...] computed from "
                            "x[batch, ...]; got '{}' {} and '{}' {}",
                            ctx.name, code.name(), to_string(code.shape()), x.name(), to_string(x.shape())),
                ctx.where());
  if (!depends_on(ctx.graph, code.id(), x.id()))
    throw Error(ErrorKind::spec,
                fmt::format("contractive '{}': '{}' is not computed from '{}', so its Jacobian is zero; name the encoder's "
                            "output and its input, in: [code, x]",
                            ctx.name, code.name(), x.name()),
                ctx.where());
  bool exact = false;
  if (auto e = ctx.keys.get("exact")) exact = read_bool(*e, ctx.keys.file(), "exact");
  const int64_t probes = positive_key(ctx, "probes", 1, "");
  Value flat = code.rank() == 2 ? code : flatten(code);
  const int64_t units = flat.shape()[1];
  if (exact && units > kMaxExactUnits)
    throw Error(ErrorKind::spec,
                fmt::format("contractive '{}': exact takes one backward pass per code unit, and '{}' has {} (at most {}); "
                            "estimate with probes: N instead",
                            ctx.name, code.name(), units, kMaxExactUnits),
                ctx.where());
  std::vector<int64_t> sample_axes;
  for (int64_t axis = 1; axis < x.rank(); ++axis) sample_axes.push_back(axis);
  // ||J^T v||^2 per sample, for the scalar s = sum over the batch of v . code.
  auto squared_norm = [&](Value s) { return sum(square(gradients(s, {x}, /*alias=*/false).front()), sample_axes); };
  std::optional<Value> total;
  auto add = [&](Value v) { total = total ? *total + v : v; };
  if (exact) {
    for (int64_t j = 0; j < units; ++j) add(squared_norm(sum(slice(flat, {1}, {j}, {j + 1}))));
  } else {
    const uint64_t seed = seed_of(ctx, ctx.name);
    for (int64_t k = 0; k < probes; ++k) {
      Value v = random_normal(code, derived_seed(seed, fmt::format("probe {}", k)));
      add(squared_norm(sum(v * code)));
    }
    if (probes > 1) total = scale(*total, 1.0 / static_cast<double>(probes));
  }
  return {ctx.graph.apply("mean", {*total}, AttrMap{}, ctx.name)};
}

}  // namespace

void register_regularizer_layers(LayerRegistry& registry) {
  registry.add({"vae_latent",
                "h[batch, features] -> z = mu + exp(logvar / 2) eps, with dense heads '<name>/mu' and '<name>/logvar'",
                1, 1, build_vae_latent,
                {{"units", "integer", "", true}, {"inference", "sample | mean", "sample"}, {"seed", "integer", "derived"}}});
  registry.add({"contractive",
                "[code, x] -> batch mean of ||d code / d x||_F^2 from vector-Jacobian products (probes or exact)", 2, 2,
                build_contractive,
                {{"probes", "integer", "1"}, {"exact", "boolean", "false"}, {"seed", "integer", "derived"}}});
}

}  // namespace flowgrad::zoo
