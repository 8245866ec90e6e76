#include <catch2/catch.hpp>

#include "autodiff/autodiff.h"
#include "graph/foreign_call.h"
#include "graph/plan.h"
#include "graph/random.h"
#include "graph/reference.h"
#include "ops/ops.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <cstdlib>
#include <new>

// A counting allocator for this executable: every operator new and every malloc-family call while
// `counting` is on is counted, whichever thread (ours, TBB's or OpenMP's) makes it. Allocations inside
// oneDNN (its per-call argument map, sgemm's packing buffers; see graph/foreign_call.h) are counted apart.
// Sanitizers interpose the allocator themselves: there the counting test is left out.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define FLOWGRAD_COUNT_ALLOCATIONS 0
#else
#define FLOWGRAD_COUNT_ALLOCATIONS 1
#endif

#if FLOWGRAD_COUNT_ALLOCATIONS
extern "C" void* __libc_malloc(size_t);
extern "C" void* __libc_calloc(size_t, size_t);
extern "C" void* __libc_realloc(void*, size_t);
extern "C" void* __libc_memalign(size_t, size_t);

namespace {
std::atomic<long> allocations{0};
std::atomic<long> onednn_allocations{0};
std::atomic<bool> counting{false};
void count() {
  if (counting.load(std::memory_order_relaxed))
    (flowgrad::in_foreign_call() ? onednn_allocations : allocations).fetch_add(1, std::memory_order_relaxed);
}
void* counted(size_t bytes, size_t alignment) {
  count();
  void* p = alignment > alignof(std::max_align_t) ? __libc_memalign(alignment, bytes) : __libc_malloc(bytes ? bytes : 1);
  if (!p) throw std::bad_alloc();
  return p;
}
}  // namespace

extern "C" {
void* malloc(size_t bytes) { return count(), __libc_malloc(bytes); }
void* calloc(size_t n, size_t bytes) { return count(), __libc_calloc(n, bytes); }
void* realloc(void* p, size_t bytes) { return count(), __libc_realloc(p, bytes); }
void* aligned_alloc(size_t alignment, size_t bytes) { return count(), __libc_memalign(alignment, bytes); }
int posix_memalign(void** out, size_t alignment, size_t bytes) {
  count();
  *out = __libc_memalign(alignment, bytes);
  return *out ? 0 : 12;  // ENOMEM
}
}

void* operator new(size_t bytes) { return counted(bytes, 0); }
void* operator new[](size_t bytes) { return counted(bytes, 0); }
void* operator new(size_t bytes, std::align_val_t a) { return counted(bytes, static_cast<size_t>(a)); }
void* operator new[](size_t bytes, std::align_val_t a) { return counted(bytes, static_cast<size_t>(a)); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t, std::align_val_t) noexcept { std::free(p); }
#endif

using namespace flowgrad;

namespace {
// A small training-like graph: dense layers, elementwise ops, a reduction, a loss and its gradients.
Graph small_network(int64_t batch) {
  Graph g;
  Value x = g.input("x", {batch, 64});
  Value w1 = g.param("w1", {64, 32}, Init::glorot_uniform(64, 32));
  Value b1 = g.param("b1", {32}, Init::zeros());
  Value w2 = g.param("w2", {32, 64}, Init::glorot_uniform(32, 64));
  Value h = dense(x, w1, b1, Activation::relu);
  Value p = dense(h, w2, std::nullopt, Activation::sigmoid);
  Value loss = binary_crossentropy(p, x) + l2(w1, 1e-4);
  g.add_alias("loss", loss);
  gradients(loss, {w1, b1, w2});
  return g;
}

// Image ops: batch norm (with its in-place running-statistics update), pooling with a workspace, both
// upsampling modes; x is large enough for some nodes to get every thread.
Graph image_network(int64_t batch) {
  Graph g;
  Value x = g.input("x", {batch, 8, 32, 32});
  Value gamma = g.param("gamma", {8}, Init::constant(1));
  Value beta = g.param("beta", {8}, Init::zeros());
  Value h = batch_norm(x, gamma, beta, g.state("mean", {8}), g.state("var", {8}, Init::constant(1)));
  Value restored = upsample(max_pool2d(h, {{2}}), 2);
  Value blurred = upsample(avg_pool2d(h, {{3}, {2}, Padding::same}), 2, Resample::bilinear);
  Value loss = mse(flatten(restored), flatten(x)) + mean(blurred);
  g.add_alias("loss", loss);
  gradients(loss, {gamma, beta});
  return g;
}

// The same for convolutions: a direct-kernel layer (one input channel), oneDNN ones with and without
// stride (their reorders into scratch), and a transposed one back to the input size.
Graph conv_network(int64_t batch) {
  Graph g;
  Value x = g.input("x", {batch, 1, 8, 8});
  Value w1 = g.param("w1", {4, 1, 3, 3}, Init::glorot_uniform(9, 36));
  Value b1 = g.param("b1", {4}, Init::zeros());
  Value w2 = g.param("w2", {6, 4, 3, 3}, Init::glorot_uniform(36, 54));
  Value w3 = g.param("w3", {6, 6, 3, 3}, Init::glorot_uniform(54, 54));
  Value w4 = g.param("w4", {6, 1, 3, 3}, Init::glorot_uniform(54, 9));
  Value h = conv2d(x, w1, b1, {.padding = Padding::same, .activation = Activation::relu});
  h = conv2d(h, w2, std::nullopt, {.stride = {2, 2}, .padding = Padding::same, .activation = Activation::relu});
  h = conv2d(h, w3, std::nullopt, {.padding = Padding::same, .activation = Activation::tanh});
  Value p = conv2d_transpose(h, w4, std::nullopt, {.stride = {2, 2}, .padding = Padding::same, .activation = Activation::sigmoid});
  Value loss = mse(p, x);
  g.add_alias("loss", loss);
  gradients(loss, {w1, b1, w2, w3, w4});
  return g;
}

#if FLOWGRAD_COUNT_ALLOCATIONS
// Runs the plan's steps 0 and 1 as warm-up (first-touch of buffers, OpenMP teams, TBB workers), then `steps`
// more with allocations counted (oneDNN's apart), and checks that none of them allocated; on failure it
// names the thread count and, with `describe`, the plan's schedule.
void check_no_allocations(Plan& plan, int threads, uint64_t steps, bool describe = false) {
  plan.run(0);
  plan.run(1);
  // A TBB worker that joins the arena for the first time (late, on a loaded machine) allocates its
  // thread-local state once; a steady-state allocation recurs every step. So a first round that saw
  // allocations is followed by a second one, which must see none.
  uint64_t step = 2;
  for (int round = 0; round < 2; ++round) {
    allocations = 0;
    onednn_allocations = 0;
    counting = true;
    for (uint64_t end = step + steps; step < end; ++step) plan.run(step);
    counting = false;
    if (allocations.load() == 0) break;
  }
  INFO("threads " << threads << (describe ? ", " + plan.describe() : std::string()));
  CHECK(allocations.load() == 0);
}
#endif
}  // namespace

#if FLOWGRAD_COUNT_ALLOCATIONS
TEST_CASE("a steady-state step makes no heap allocation", "[plan][memory]") {
  struct Network {
    Graph graph;
    std::vector<std::string> fetch;
    int64_t inputs;
  };
  const std::vector<Network> networks = {
      {small_network(16), {"loss", "w1/grad", "b1/grad", "w2/grad"}, 16 * 64},
      {conv_network(4), {"loss", "w1/grad", "b1/grad", "w2/grad", "w3/grad", "w4/grad"}, 4 * 64}};
  for (const Network& network : networks)
  for (int threads : {1, 2}) {
    const Graph& g = network.graph;
    ParamStore store;
    store.materialize(g, 1);
    Plan plan(g, store, {.threads = threads, .fetch = network.fetch});
    std::vector<float> x(static_cast<size_t>(network.inputs), 0.25f);
    plan.feed("x", x.data());
    check_no_allocations(plan, threads, 10, true);
    WARN("oneDNN-internal allocations per step (argument maps, sgemm packing): " << onednn_allocations.load() / 10.0
                                                                        << " over " << plan.stats().nodes << " nodes");
  }
}

TEST_CASE("a steady-state step of image ops makes no heap allocation", "[plan][memory]") {
  for (int threads : {1, 2}) {
    Graph g = image_network(64);
    ParamStore store;
    store.materialize(g, 1);
    Plan plan(g, store, {.threads = threads, .fetch = {"loss", "gamma/grad", "beta/grad"}});
    std::vector<float> x(64 * 8 * 32 * 32);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 101) / 101.0f;
    plan.feed("x", x.data());
    check_no_allocations(plan, threads, 5);
  }
}

TEST_CASE("a steady-state LSTM training step makes no heap allocation", "[plan][memory]") {
  // lstm and lstm_grad run several primitives (weight reorders into scratch, one recurrent primitive per
  // batch slice) and zero and sum the weight gradients, all on plan memory.
  for (int threads : {1, 2}) {
    Graph g;
    Value x = g.input("x", {4, 5, 3});
    Value w_x = g.param("w_x", {3, 8}, Init::glorot_uniform(3, 8));
    Value w_h = g.param("w_h", {2, 8}, Init::orthogonal());
    Value b = g.param("b", {8}, Init::constant_blocks({0, 1, 0, 0}));
    LstmResult r = lstm(repeat(sum(x, {1}), 5), w_x, w_h, b);
    Value loss = mse(reverse(r.sequence), slice(x, {2}, {0}, {2})) + sum(r.c);
    g.add_alias("loss", loss);
    gradients(loss, {w_x, w_h, b});
    ParamStore store;
    store.materialize(g, 1);
    // heavy_flops = 0: every node takes all threads, so the LSTM's batch slices run side by side on TBB.
    Plan plan(g, store, {.threads = threads, .fetch = {"loss", "w_x/grad", "w_h/grad", "b/grad"}, .heavy_flops = 0});
    std::vector<float> xs(4 * 5 * 3, 0.25f);
    plan.feed("x", xs.data());
    check_no_allocations(plan, threads, 5);
  }
}
#endif

TEST_CASE("buffers whose lifetimes do not overlap share memory", "[plan][memory]") {
  Graph g;
  Value x = g.input("x", {256, 256});
  Value y = x;
  for (int i = 0; i < 8; ++i) y = exp(scale(y, 0.5));  // a chain: each buffer dies after one use
  g.add_alias("y", y);
  ParamStore store;
  Plan plan(g, store, {.fetch = {"y"}});
  const auto& stats = plan.stats();
  CHECK(stats.naive_bytes == 16 * 256 * 256 * 4);
  CHECK(stats.arena_bytes <= 3 * 256 * 256 * 4);
  std::vector<float> xs(256 * 256, 0.1f);
  plan.feed("x", xs.data());
  plan.run();
  float expected = 0.1f;
  for (int i = 0; i < 8; ++i) expected = std::exp(expected * 0.5f);
  CHECK(plan.fetch("y")[1000] == Approx(expected));
}

TEST_CASE("thread allotments never exceed the thread count", "[plan][threads]") {
  Graph g = small_network(64);
  ParamStore store;
  store.materialize(g, 1);
  for (int threads : {1, 2, 4}) {
    Plan plan(g, store, {.threads = threads, .fetch = {"loss"}});
    CHECK(plan.stats().threads == threads);
    // Every stage line lists "name(k)" allotments; heavy ones get all threads, light ones one each.
    std::string schedule = plan.describe();
    CHECK(schedule.find(fmt::format("({})", threads + 1)) == std::string::npos);
  }
}

TEST_CASE("the same inputs give bitwise identical results run after run", "[plan][determinism]") {
  Graph g = small_network(32);
  ParamStore store;
  store.materialize(g, 7);
  std::vector<float> x(32 * 64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 17) / 17.0f;
  std::vector<float> first;
  for (int repeat = 0; repeat < 3; ++repeat) {
    Plan plan(g, store, {.threads = 2, .fetch = {"loss", "w1/grad"}});
    plan.feed("x", x.data());
    plan.run();
    const float* grad = plan.fetch("w1/grad");
    std::vector<float> now(grad, grad + 64 * 32);
    now.push_back(*plan.fetch("loss"));
    if (repeat == 0) first = now;
    else CHECK(now == first);
  }
}

TEST_CASE("unfed inputs and unknown fetches are clear errors", "[plan][errors]") {
  Graph g;
  Value x = g.input("x", {2, 2});
  g.add_alias("y", exp(x));
  ParamStore store;
  Plan plan(g, store, {.fetch = {"y"}});
  CHECK_THROWS_WITH(plan.run(), Catch::Matchers::Contains("input 'x' was not fed"));
  CHECK_THROWS_WITH(plan.fetch("z"), Catch::Matchers::Contains("no value named 'z'"));
}

TEST_CASE("a linear dense followed by an activation runs as one fused kernel", "[plan][fusion]") {
  Graph g;
  Value x = g.input("x", {8, 6});
  Value w = g.param("w", {6, 5}, Init::glorot_uniform(6, 5));
  Value b = g.param("b", {5}, Init::constant(0.1));
  Value hidden = dense(x, w, b);           // linear
  Value y = leaky_relu(hidden, 0.2);       // absorbed as a post-op, alpha included
  Value z = sigmoid(dense(y, g.param("w2", {5, 3}, Init::glorot_uniform(5, 3)), std::nullopt));
  Value loss = sum(z);
  gradients(loss, {w, b});  // backward reads the activation's output, never the pre-activation
  g.add_alias("y", y);
  ParamStore store;
  store.materialize(g, 3);
  Plan plan(g, store, {.fetch = {"y", "w/grad", "b/grad"}});
  CHECK(plan.describe().find(hidden.name() + "+" + y.name()) != std::string::npos);
  std::vector<float> xs(48);
  for (size_t i = 0; i < xs.size(); ++i) xs[i] = static_cast<float>(i % 7) * 0.3f - 1.0f;
  plan.feed("x", xs.data());
  plan.run();

  std::map<std::string, RefTensor> given;
  RefTensor xr({8, 6});
  for (int64_t i = 0; i < 48; ++i) xr[i] = xs[static_cast<size_t>(i)];
  given["x"] = xr;
  for (const char* name : {"w", "b", "w2"}) {
    const Tensor& t = store.get(name);
    RefTensor r(t.shape());
    for (int64_t i = 0; i < r.size(); ++i) r[i] = t.f32()[i];
    given[name] = r;
  }
  auto expected = evaluate_reference(g, given);
  for (const char* name : {"y", "w/grad", "b/grad"}) {
    const RefTensor& e = expected[static_cast<size_t>(g[name].id())];
    const float* actual = plan.fetch(name);
    for (int64_t i = 0; i < e.size(); ++i) {
      INFO(name << "[" << i << "]");
      CHECK(actual[i] == Approx(e[i]).margin(1e-5));
    }
  }
}

TEST_CASE("a fetched pre-activation is not fused away", "[plan][fusion]") {
  Graph g;
  Value x = g.input("x", {4, 3});
  Value hidden = dense(x, g.param("w", {3, 2}, Init::constant(0.5)), std::nullopt);
  Value y = relu(hidden);
  g.add_alias("y", y);
  ParamStore store;
  store.materialize(g, 1);
  Plan plan(g, store, {.fetch = {"y", hidden.name()}});
  CHECK(plan.describe().find("+") == std::string::npos);
}

TEST_CASE("a store puts the tensors it materializes in one slab, each drawn as on its own", "[plan][memory]") {
  Graph g = small_network(16);
  ParamStore store;
  store.materialize(g, 5);
  std::vector<std::pair<const std::byte*, size_t>> ranges;
  for (const ValueInfo& v : g.values()) {
    if (v.kind != ValueKind::param && v.kind != ValueKind::state) continue;
    const Tensor& t = store.get(v.name);
    CHECK(reinterpret_cast<uintptr_t>(t.data()) % 64 == 0);
    ranges.emplace_back(static_cast<const std::byte*>(t.data()), t.type().bytes());
    Tensor alone(v.type);
    initialize(alone, v.init, 5, v.name);
    CHECK(std::memcmp(alone.data(), t.data(), v.type.bytes()) == 0);
  }
  std::sort(ranges.begin(), ranges.end());
  for (size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].first + ranges[i - 1].second <= ranges[i].first);
  const std::vector<float> w1(store.get("w1").span().begin(), store.get("w1").span().end());
  const void* where = store.get("w1").data();
  store.materialize(g, 6);  // already there: neither moved nor redrawn
  CHECK(store.get("w1").data() == where);
  CHECK(std::equal(w1.begin(), w1.end(), store.get("w1").span().begin()));
}

TEST_CASE("large buffers are mappings: zeroed, aligned, writable to the last byte", "[plan][memory]") {
  for (size_t bytes : {size_t{1}, size_t{100}, size_t{1} << 20, (size_t{5} << 20) + 3}) {
    auto buffer = aligned_buffer(bytes);
    CHECK(reinterpret_cast<uintptr_t>(buffer.get()) % 64 == 0);
    CHECK(std::all_of(buffer.get(), buffer.get() + bytes, [](std::byte b) { return b == std::byte{0}; }));
    buffer.get()[bytes - 1] = std::byte{1};
  }
}

TEST_CASE("orthogonal initialization is bitwise the textbook modified Gram-Schmidt", "[plan][init]") {
  for (const Shape& shape : std::vector<Shape>{{7, 5}, {5, 7}, {16, 64}, {9, 9}, {3, 2, 6}}) {
    Tensor t(TensorType{shape, DType::f32});
    initialize(t, Init::orthogonal(), 11, "w");
    const int64_t columns = shape.back(), rows = t.numel() / columns;
    const int64_t count = std::min(rows, columns), length = std::max(rows, columns);
    std::vector<double> q(static_cast<size_t>(count * length));
    for (int64_t k = 0; k < count; ++k) {
      double* v = q.data() + k * length;
      for (int64_t i = 0; i < length; ++i) v[i] = random_normal(11, hash_name("w"), static_cast<uint64_t>(k * length + i));
      for (int64_t j = 0; j < k; ++j) {
        const double* u = q.data() + j * length;
        double dot = 0;
        for (int64_t i = 0; i < length; ++i) dot += u[i] * v[i];
        for (int64_t i = 0; i < length; ++i) v[i] -= dot * u[i];
      }
      double norm = 0;
      for (int64_t i = 0; i < length; ++i) norm += v[i] * v[i];
      norm = std::sqrt(norm);
      for (int64_t i = 0; i < length; ++i) v[i] /= norm;
    }
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t c = 0; c < columns; ++c) {
        const double expected = rows <= columns ? q[static_cast<size_t>(r * length + c)] : q[static_cast<size_t>(c * length + r)];
        REQUIRE(t.f32()[r * columns + c] == static_cast<float>(expected));
      }
  }
}

// A data-parallel step's pieces (tools/distributed.h): a plan without the in-place updates computes the
// gradients and leaves the parameters alone, and tells after which stage each gradient is final.
TEST_CASE("a plan without updates computes gradients, reporting each stage as it ends", "[plan][stages]") {
  register_builtin_ops();
  Graph g("stages");
  Value x = g.input("x", {4, 3});
  Value w1 = g.param("w1", {3, 5}, Init::glorot_uniform(3, 5));
  Value w2 = g.param("w2", {5, 2}, Init::glorot_uniform(5, 2));
  Value loss = mean(square(dense(dense(x, w1, std::nullopt, Activation::tanh), w2, std::nullopt)));
  g.add_alias("loss", loss);
  auto grads = gradients(loss, {w1, w2});
  const float before = [&] {
    ParamStore probe;
    probe.materialize(g, 1);
    return probe.get("w1").f32()[0];
  }();
  ParamStore store;
  store.materialize(g, 1);
  g.add("sgd_update", {w1, grads[0], g.state("w1/velocity", {3, 5}, Init::zeros()), g.input("lr", {}, DType::f32, false)});
  store.materialize(g, 1);
  const std::vector<std::string> fetched = {grads[0].name(), grads[1].name()};
  Plan plan(g, store, {.threads = 1, .fetch = fetched, .updates = false});
  std::vector<float> xs(12, 0.5f);
  plan.feed("x", xs.data());
  std::vector<size_t> seen;
  std::vector<float> at_ready(2);
  plan.run(0, [&](size_t stage) {
    seen.push_back(stage);
    for (size_t i = 0; i < 2; ++i)
      if (plan.ready_after(fetched[i]) == stage) at_ready[i] = plan.fetch(fetched[i])[0];
  });
  REQUIRE(seen.size() == plan.stage_count());
  for (size_t s = 0; s < seen.size(); ++s) CHECK(seen[s] == s);
  for (size_t i = 0; i < 2; ++i) CHECK(at_ready[i] == plan.fetch(fetched[i])[0]);
  CHECK(plan.ready_after(fetched[1]) < plan.ready_after(fetched[0]));  // w2's gradient comes first
  CHECK(store.get("w1").f32()[0] == before);  // no update ran (and lr was never needed)
}
