// Owned tensors and the store of persistent tensors (parameters and optimizer state) that plans bind to.
#pragma once

#include "graph/graph.h"
#include "graph/types.h"

#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace flowgrad {

struct AlignedFree {
  bool owned = true;        // false: a view into memory owned elsewhere (a ParamStore slab)
  size_t mapped_bytes = 0;  // nonzero: a mapping of its own (large buffers), unmapped on release
  void operator()(void* p) const;
};

constexpr size_t round_up_64(size_t bytes) { return (bytes + 63) / 64 * 64; }

// A 64-byte aligned buffer, zero-initialized. Large ones are mappings that take memory only when touched.
// Throws Error(runtime), naming `what` ("the parameters and optimizer state"), when `bytes` exceed the
// machine's physical memory or cannot be had.
std::unique_ptr<std::byte, AlignedFree> aligned_buffer(size_t bytes, const char* what = "a tensor's elements");

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(TensorType type);
  Tensor(Shape shape, std::span<const float> data);
  const TensorType& type() const { return type_; }
  const Shape& shape() const { return type_.shape; }
  int64_t numel() const { return type_.numel(); }
  void* data() { return buffer_.get(); }
  const void* data() const { return buffer_.get(); }
  float* f32() { return reinterpret_cast<float*>(buffer_.get()); }
  const float* f32() const { return reinterpret_cast<const float*>(buffer_.get()); }
  std::span<float> span() { return {f32(), static_cast<size_t>(numel())}; }
  std::span<const float> span() const { return {f32(), static_cast<size_t>(numel())}; }

 private:
  friend class ParamStore;
  Tensor(TensorType type, std::byte* storage);  // views storage (64-byte aligned) owned by the caller

  TensorType type_;
  std::unique_ptr<std::byte, AlignedFree> buffer_;
};

// Fills a tensor from an initializer; the draw depends only on (seed, name), not on creation order.
void initialize(Tensor& tensor, const Init& init, uint64_t seed, const std::string& name);

// Named persistent tensors. Plans keep raw pointers into it, so tensors are never reallocated once created.
// materialize() places the tensors it creates in one slab that the store owns.
class ParamStore {
 public:
  // Creates (and initializes) every param and state value of the graph that the store lacks; checks the
  // shapes of those it has.
  void materialize(const Graph& graph, uint64_t seed);
  Tensor& get(const std::string& name);
  const Tensor& get(const std::string& name) const;
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  Tensor& create(const std::string& name, TensorType type);
  const std::map<std::string, Tensor>& tensors() const { return tensors_; }
  std::map<std::string, Tensor>& tensors() { return tensors_; }

 private:
  std::vector<std::unique_ptr<std::byte, AlignedFree>> slabs_;  // before tensors_: outlives the views into it
  std::map<std::string, Tensor> tensors_;
};

}  // namespace flowgrad
