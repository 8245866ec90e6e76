// The op interface. An op is a plain record: a name, typed attributes, a shape rule, a double-precision
// reference (the naive implementation every kernel is tested against, and the interpreter used for
// finite differences), a kernel factory (oneDNN primitives, created once at plan time) and a gradient rule
// that emits ordinary graph nodes. graph/ only ever sees ops through this record.
#pragma once

#include "graph/attrs.h"
#include "graph/isa.h"
#include "graph/types.h"

#include <any>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace dnnl {
struct engine;
struct stream;
}  // namespace dnnl

namespace flowgrad {

class Graph;
struct Node;
class Value;

// ---- shape rule ----------------------------------------------------------------------------------------
struct ShapeContext {
  const std::string& op;
  const std::string& node;
  std::span<const TensorType> inputs;
  const Shape& in(int i) const { return inputs[static_cast<size_t>(i)].shape; }
  // A shape error that names the node, the op and every input shape.
  [[noreturn]] void fail(const std::string& what) const;
};

// ---- double-precision reference -------------------------------------------------------------------------
struct RefTensor {
  Shape shape;
  std::vector<double> data;
  RefTensor() = default;
  explicit RefTensor(Shape s, double fill = 0) : shape(std::move(s)), data(static_cast<size_t>(numel(shape)), fill) {}
  int64_t size() const { return static_cast<int64_t>(data.size()); }
  double& operator[](int64_t i) { return data[static_cast<size_t>(i)]; }
  double operator[](int64_t i) const { return data[static_cast<size_t>(i)]; }
};

struct RefContext {
  std::span<RefTensor* const> inputs;  // mutable only for ops that declare `mutates`
  std::span<const TensorType> outputs;
  uint64_t step = 0;  // the training step, for seeded random ops
  const RefTensor& in(int i) const { return *inputs[static_cast<size_t>(i)]; }
};

// ---- kernels ----------------------------------------------------------------------------------------------
struct KernelContext {
  std::span<const TensorType> inputs;
  std::span<const TensorType> outputs;
  const dnnl::engine& engine;
  const std::string& node;
  Isa isa = widest_isa();  // the level of the hand-written kernels to create (graph/isa.h)
};

struct KernelArgs {
  std::span<void* const> in;
  std::span<void* const> out;
  void* scratch = nullptr;  // scratch_bytes() bytes in the plan's arena, 64-byte aligned
  int threads = 1;          // threads this node may keep busy (oneDNN's OpenMP team or a TBB loop)
  uint64_t step = 0;
  dnnl::stream* stream = nullptr;
  template <class T = float> T* input(int i) const { return static_cast<T*>(in[static_cast<size_t>(i)]); }
  template <class T = float> T* output(int i) const { return static_cast<T*>(out[static_cast<size_t>(i)]); }
};

// A node's compiled form: everything expensive (primitive descriptors, primitives) happens in the factory;
// run() only binds buffers and executes, and must not allocate.
class Kernel {
 public:
  virtual ~Kernel() = default;
  virtual void run(const KernelArgs& args) = 0;
  virtual size_t scratch_bytes() const { return 0; }
  // Floating-point operations per run, for the scheduler's thread allotment and GFLOP/s figures.
  virtual double flops() const { return 0; }
  // True when the kernel parallelizes internally (oneDNN or a TBB loop) and profits from more threads.
  virtual bool parallel() const { return true; }
  // For hand-written kernels compiled per instruction-set level: the level this one runs ("avx512"), shown by
  // profiles. Empty for the others.
  virtual std::string_view variant() const { return {}; }
};

// ---- gradient rule ------------------------------------------------------------------------------------------
class GradContext;
using GradResult = std::vector<std::optional<Value>>;

// ---- construction-time expansion ----------------------------------------------------------------------------
class ExpandContext;
using ExpandResult = std::optional<std::vector<Value>>;

// How a node behaves in inference (evaluation, predictions) rather than training: unchanged, with other
// attributes (batch_norm on its running statistics), passing one input through (dropout), or dropped (the
// update of running statistics). See Graph::for_inference().
struct InferenceForm {
  enum class Kind { same, attrs, pass_through, drop };
  Kind kind = Kind::same;
  AttrMap attrs = {};  // attrs: the node's attributes in inference
  int input = 0;       // pass_through: the input that becomes the node's (only) output
  static InferenceForm same() { return {}; }
  static InferenceForm with_attrs(AttrMap a) { return {Kind::attrs, std::move(a)}; }
  static InferenceForm pass_through(int input) { return {Kind::pass_through, {}, input}; }
  static InferenceForm drop() { return {Kind::drop}; }
};

// ---- examples ---------------------------------------------------------------------------------------------------
// A small valid use of an op, for `flowgrad gradcheck --op` and the test that checks every registered op:
// input types and attributes, and the range its inputs are drawn from (see OpCase in autodiff/gradcheck.h).
struct OpExample {
  std::vector<TensorType> inputs;
  AttrMap attrs = {};
  double low = -1, high = 1, gap = 0;  // inputs uniform in [low, high], |x| >= gap (away from kinks)
  int64_t int_high = 2;                // integer inputs in [0, int_high)
  std::vector<int> no_grad = {};       // inputs not differentiated (labels, targets, workspaces)
  // Rewrites input `input` after it is drawn, where one range cannot make the inputs valid: inputs that
  // depend on each other (max_grad's y = max(x)), or that need another range than the rest (a target in
  // [0, 1] next to logits, Adam's non-negative second moment). Called once per input, in order.
  std::function<void(int input, RefTensor&)> fill = {};
  std::string label = {};
};

// ---- the record -----------------------------------------------------------------------------------------------
struct OpDef {
  std::string name;
  std::string summary;  // one line, for `flowgrad ops` and docs
  int min_inputs = 0;
  int max_inputs = 0;   // -1: any number
  std::vector<AttrInfo> attributes;  // what decode accepts, for `flowgrad ops` and docs
  std::function<std::any(const AttrMap&, const SourceLocation&)> decode;
  std::function<AttrMap(const std::any&)> encode;
  std::function<std::vector<TensorType>(const ShapeContext&, const std::any&)> infer;
  std::function<std::vector<RefTensor>(const RefContext&, const std::any&)> reference;
  std::function<std::unique_ptr<Kernel>(const KernelContext&, const std::any&)> make_kernel;
  std::function<GradResult(GradContext&)> gradient;  // empty: not differentiable
  // Declares an op without a gradient rule deliberately (a gradient op, an update): plugins must give either a
  // gradient or this, so that a forgotten rule is an error at load time and not a surprise in training.
  bool not_differentiable = false;
  std::function<InferenceForm(const std::any& attrs)> inference;  // empty: the same in training and inference
  // Planner fusion: when this node's only output is read by exactly one node, a one-input op, returns the
  // attributes under which this op computes consumer(this node) in one kernel (e.g. dense absorbing a
  // following relu as a oneDNN post-op), or nothing.
  std::function<std::optional<std::any>(const std::any& attrs, const OpDef& consumer, const AttrMap& consumer_attrs)>
      absorb;
  // Expansion when a node of this op is added (Graph::add): the op may build its result from other nodes
  // instead, reading its inputs' producers (ExpandContext), e.g. binary_crossentropy of a sigmoid's output
  // becomes binary_crossentropy_logits of the sigmoid's input. Returns nothing to add the node as it is;
  // the value that stands for the node's output must carry the node's name.
  std::function<ExpandResult(ExpandContext&)> expand;
  std::vector<int> mutates;  // inputs written in place (optimizer updates); run after all other readers
  std::vector<OpExample> examples;
  // Outputs that are kernel state with no meaningful reference value (the LSTM's workspace): the op
  // harness neither compares nor differentiates them.
  std::vector<int> opaque_outputs;
  bool random = false;       // output depends on the step counter and a seed attribute
};

class Registry {
 public:
  void add(OpDef op);
  void remove(const std::string& name);  // for a plugin refused after registering (graph/plugin.h)
  const OpDef* find(const std::string& name) const;
  const OpDef& get(const std::string& name) const;  // throws a spec error with a did-you-mean
  std::vector<std::string> names() const;

 private:
  std::map<std::string, OpDef> ops_;
};

// The process-wide registry. Built-in ops are added by flowgrad::register_builtin_ops() (ops/), custom ops
// from a shared library through the plugin loader (graph/plugin.h), as the same records.
Registry& registry();

// Typed front end for defining an op: lambdas receive the op's attribute struct instead of std::any.
template <class Attrs>
class OpBuilder {
 public:
  OpBuilder(std::string name, int min_inputs, int max_inputs) {
    def_.name = std::move(name);
    def_.min_inputs = min_inputs;
    def_.max_inputs = max_inputs;
    def_.attributes = describe_attrs<Attrs>();
    std::string op = def_.name;
    def_.decode = [op](const AttrMap& m, const SourceLocation& w) { return std::any(decode_attrs<Attrs>(op, m, w)); };
    def_.encode = [](const std::any& a) { return encode_attrs(std::any_cast<const Attrs&>(a)); };
  }
  OpBuilder& summary(std::string s) { return def_.summary = std::move(s), *this; }
  template <class F> OpBuilder& infer(F f) {
    def_.infer = [f](const ShapeContext& c, const std::any& a) { return f(c, std::any_cast<const Attrs&>(a)); };
    return *this;
  }
  template <class F> OpBuilder& reference(F f) {
    def_.reference = [f](const RefContext& c, const std::any& a) { return f(c, std::any_cast<const Attrs&>(a)); };
    return *this;
  }
  template <class F> OpBuilder& kernel(F f) {
    def_.make_kernel = [f](const KernelContext& c, const std::any& a) -> std::unique_ptr<Kernel> {
      return f(c, std::any_cast<const Attrs&>(a));
    };
    return *this;
  }
  template <class F> OpBuilder& gradient(F f) { return def_.gradient = std::move(f), *this; }
  OpBuilder& not_differentiable() { return def_.not_differentiable = true, *this; }
  // f(const Attrs&, const OpDef& consumer, const AttrMap& consumer_attrs) -> std::optional<Attrs>
  template <class F> OpBuilder& absorb(F f) {
    def_.absorb = [f](const std::any& a, const OpDef& consumer, const AttrMap& consumer_attrs) -> std::optional<std::any> {
      if (auto fused = f(std::any_cast<const Attrs&>(a), consumer, consumer_attrs)) return std::any(*fused);
      return std::nullopt;
    };
    return *this;
  }
  // f(ExpandContext&) -> ExpandResult; see OpDef::expand.
  template <class F> OpBuilder& expand(F f) { return def_.expand = std::move(f), *this; }
  OpBuilder& mutates(std::vector<int> inputs) { return def_.mutates = std::move(inputs), *this; }
  OpBuilder& random() { return def_.random = true, *this; }
  template <class F> OpBuilder& inference(F f) {
    def_.inference = [f](const std::any& a) { return f(std::any_cast<const Attrs&>(a)); };
    return *this;
  }
  OpBuilder& opaque_outputs(std::vector<int> outputs) { return def_.opaque_outputs = std::move(outputs), *this; }
  OpBuilder& example(OpExample e) { return def_.examples.push_back(std::move(e)), *this; }
  // For registration helpers shared by several ops: each op's own examples, passed in by the caller.
  OpBuilder& examples(std::vector<OpExample> es) {
    for (OpExample& e : es) def_.examples.push_back(std::move(e));
    return *this;
  }
  OpDef build() { return std::move(def_); }

 private:
  OpDef def_;
};

}  // namespace flowgrad
