#include "graph/tensor.h"

#include "graph/parallel.h"
#include "graph/random.h"


#include <algorithm>
#include <cmath>
#include <cstring>
#include <sys/mman.h>
#include <unistd.h>
#include <vector>

namespace flowgrad {

namespace {

// Buffers from this size on are anonymous mappings of their own: the OS hands them out zeroed and faults
// pages in on first touch, so a plan's arena or a parameter slab costs nothing until it is used, and is
// written once rather than zeroed first. Where the OS has transparent huge pages they are asked for: first
// touches fault a page at a time, and on virtual machines a fault is expensive (about 20 us per 4 KiB page
// on the Firecracker guests flowgrad is developed on: 300-700 ms to zero a 90 MB arena on 4 KiB pages).
constexpr size_t huge_page = size_t{2} << 20;
constexpr size_t mapping_threshold = huge_page / 2;

}  // namespace

void AlignedFree::operator()(void* p) const {
  if (mapped_bytes) munmap(p, mapped_bytes);
  else if (owned) std::free(p);
}

std::unique_ptr<std::byte, AlignedFree> aligned_buffer(size_t bytes, const char* what) {
  // A mapping larger than the machine's memory may still succeed (the kernel overcommits), and its first
  // touches would then end the process, or another one, for lack of memory: refuse it while it is an error.
  static const size_t physical = static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > physical)
    fail(ErrorKind::runtime, "{} need {:.1f} GiB, more than the {:.1f} GiB of memory this machine has; use a smaller "
         "batch or model", what, static_cast<double>(bytes) / (1 << 30), static_cast<double>(physical) / (1 << 30));
  size_t rounded = round_up_64(std::max<size_t>(bytes, 1));
  if (rounded >= mapping_threshold) {
    rounded = (rounded + huge_page - 1) / huge_page * huge_page;
    void* p = mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fail(ErrorKind::runtime, "out of memory: {} need {} bytes", what, rounded);
#ifdef MADV_HUGEPAGE
    madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without it the buffer works on small pages
#endif
    return std::unique_ptr<std::byte, AlignedFree>(static_cast<std::byte*>(p), AlignedFree{.mapped_bytes = rounded});
  }
  void* p = std::aligned_alloc(64, rounded);
  if (!p) fail(ErrorKind::runtime, "out of memory: {} need {} bytes", what, rounded);
  std::memset(p, 0, rounded);
  return std::unique_ptr<std::byte, AlignedFree>(static_cast<std::byte*>(p));
}

Tensor::Tensor(TensorType type) : type_(std::move(type)), buffer_(aligned_buffer(type_.bytes())) {}

Tensor::Tensor(TensorType type, std::byte* storage) : type_(std::move(type)), buffer_(storage, AlignedFree{.owned = false}) {}

Tensor::Tensor(Shape shape, std::span<const float> data) : Tensor(TensorType{std::move(shape), DType::f32}) {
  if (static_cast<int64_t>(data.size()) != numel())
    fail(ErrorKind::shape, "tensor of shape {} cannot hold {} values", to_string(type_.shape), data.size());
  std::memcpy(f32(), data.data(), data.size() * sizeof(float));
}

namespace {

// Modified Gram-Schmidt on min(rows, columns) standard normal vectors of length max(rows, columns), which
// is QR of a normal matrix with R's diagonal made positive, as Keras does; the shorter side gets the
// orthonormal vectors. Keras' gain is 1, so there is none here.
void orthogonal(Tensor& tensor, uint64_t seed, uint64_t stream) {
  const Shape& shape = tensor.shape();
  const int64_t columns = shape.empty() ? 1 : shape.back();
  const int64_t rows = tensor.numel() / std::max<int64_t>(1, columns);
  const int64_t count = std::min(rows, columns), length = std::max(rows, columns);
  std::vector<double> q(static_cast<size_t>(count * length));
  for (int64_t k = 0; k < count; ++k)
    for (int64_t i = 0; i < length; ++i) q[static_cast<size_t>(k * length + i)] = random_normal(seed, stream, static_cast<uint64_t>(k * length + i));
  // Right-looking: once vector j is final, it is projected out of every later vector. Each vector sees the
  // same operations in the same order as in the textbook loop (project out 0..k-1, then normalize), so the
  // result is bitwise the same; but the dot products of four later vectors are independent chains that run
  // interleaved, instead of one chain bound by the latency of each addition.
  for (int64_t j = 0; j < count; ++j) {
    double* u = q.data() + j * length;
    double norm = 0;
    for (int64_t i = 0; i < length; ++i) norm += u[i] * u[i];
    norm = std::sqrt(norm);
    for (int64_t i = 0; i < length; ++i) u[i] /= norm;
    for (int64_t k = j + 1; k < count; k += 4) {
      const int64_t width = std::min<int64_t>(4, count - k);
      double* v[4];
      double dot[4] = {0, 0, 0, 0};
      for (int64_t w = 0; w < 4; ++w) v[w] = q.data() + (k + std::min(w, width - 1)) * length;
      for (int64_t i = 0; i < length; ++i)
        for (int64_t w = 0; w < 4; ++w) dot[w] += u[i] * v[w][i];
      for (int64_t w = 0; w < width; ++w)
        for (int64_t i = 0; i < length; ++i) v[w][i] -= dot[w] * u[i];
    }
  }
  float* data = tensor.f32();
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < columns; ++c)
      data[r * columns + c] = static_cast<float>(rows <= columns ? q[static_cast<size_t>(r * length + c)]
                                                                 : q[static_cast<size_t>(c * length + r)]);
}

void constant_blocks(Tensor& tensor, const std::vector<double>& blocks, const std::string& name) {
  const int64_t n = tensor.numel(), count = static_cast<int64_t>(blocks.size());
  if (count == 0 || n % count != 0)
    fail(ErrorKind::shape, "'{}' has {} elements, which {} constant blocks cannot split evenly", name, n, count);
  float* data = tensor.f32();
  for (int64_t i = 0; i < n; ++i) data[i] = static_cast<float>(blocks[static_cast<size_t>(i / (n / count))]);
}

}  // namespace

void initialize(Tensor& tensor, const Init& init, uint64_t seed, const std::string& name) {
  using K = Init::Kind;
  const uint64_t stream = hash_name(name);
  if (init.kind == K::orthogonal) return orthogonal(tensor, seed, stream);
  if (init.kind == K::blocks) return constant_blocks(tensor, init.blocks, name);
  if (init.kind == K::zeros || init.kind == K::constant) {  // no draws: optimizer state is most of a store
    std::fill_n(tensor.f32(), tensor.numel(), init.kind == K::zeros ? 0.0f : static_cast<float>(init.value));
    return;
  }
  const double fan_sum = static_cast<double>(std::max<int64_t>(1, init.fan_in + init.fan_out));
  const double fan_in = static_cast<double>(std::max<int64_t>(1, init.fan_in));
  double limit = 0;
  bool normal = false;
  switch (init.kind) {
    case K::zeros: limit = 0; break;
    case K::constant: break;
    case K::uniform: limit = init.value; break;
    case K::normal: limit = init.value, normal = true; break;
    case K::glorot_uniform: limit = std::sqrt(6.0 / fan_sum); break;
    case K::glorot_normal: limit = std::sqrt(2.0 / fan_sum), normal = true; break;
    case K::he_uniform: limit = std::sqrt(6.0 / fan_in); break;
    case K::he_normal: limit = std::sqrt(2.0 / fan_in), normal = true; break;
    case K::orthogonal:
    case K::blocks: break;  // handled above
  }
  float* data = tensor.f32();
  for (int64_t i = 0; i < tensor.numel(); ++i) {
    uint64_t index = static_cast<uint64_t>(i);
    double v = init.kind == K::constant ? init.value
               : normal                 ? limit * random_normal(seed, stream, index)
                                        : limit * (2 * random_uniform(seed, stream, index) - 1);
    data[i] = static_cast<float>(v);
  }
}

void ParamStore::materialize(const Graph& graph, uint64_t seed) {
  std::vector<const ValueInfo*> missing;
  size_t slab_bytes = 0;
  for (const ValueInfo& v : graph.values()) {
    if (v.kind != ValueKind::param && v.kind != ValueKind::state) continue;
    auto it = tensors_.find(v.name);
    if (it == tensors_.end()) {  // value names are unique within a graph
      missing.push_back(&v);
      slab_bytes += round_up_64(v.type.bytes());
    } else if (it->second.type() != v.type) {
      fail(ErrorKind::shape, "parameter '{}' has shape {} in the store but {} in the graph", v.name,
           to_string(it->second.type()), to_string(v.type));
    }
  }
  if (missing.empty()) return;
  // One slab for all of them: first touches of many separate small buffers fault page by page, while one
  // large buffer goes on huge pages (see aligned_buffer).
  std::byte* slab = slabs_.emplace_back(aligned_buffer(slab_bytes, "the parameters and optimizer state")).get();
  std::vector<Tensor*> created;
  for (const ValueInfo* v : missing) {
    auto [it, inserted] = tensors_.try_emplace(v->name, Tensor(v->type, slab));
    slab += round_up_64(v->type.bytes());
    created.push_back(&it->second);
  }
  // Each draw is a pure function of (seed, name), so initializing side by side changes nothing.
  parallel_for_each_index(size_t{0}, missing.size(),
                          [&](size_t i) { initialize(*created[i], missing[i]->init, seed, missing[i]->name); });
}

Tensor& ParamStore::create(const std::string& name, TensorType type) {
  auto [it, inserted] = tensors_.try_emplace(name, std::move(type));
  if (!inserted) fail(ErrorKind::runtime, "tensor '{}' already exists", name);
  return it->second;
}

Tensor& ParamStore::get(const std::string& name) {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(ErrorKind::runtime, "no parameter or state named '{}'", name);
  return it->second;
}

const Tensor& ParamStore::get(const std::string& name) const { return const_cast<ParamStore*>(this)->get(name); }

}  // namespace flowgrad
