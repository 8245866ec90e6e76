// matmul: the batched matrix product over the last two axes, numpy broadcasting over the leading ones.
//
//   out[batch..., rows, cols] = op(a)[batch..., rows, inner] · op(b)[batch..., inner, cols]
//   op(a) = a, or a with its last two axes swapped when transpose_a (likewise b)
//
// Both operands need rank >= 2: a rank-1 operand is rejected with a hint to reshape it to [1, n] or [n, 1]
// (numpy's implicit vector promotion would make the gradient shapes depend on the rank).
//
// Kernels never copy: transposes are strided oneDNN memory descriptors over the operand as stored. Which
// GEMM runs was measured on the dense-autoencoder shapes (bench/gemm_shapes.cpp, oneDNN 2.6, AVX-512):
// oneDNN's matmul primitive picks brgemm, which is the fastest for a plain or transposed b, but is slower
// than oneDNN's packed sgemm when a is transposed (x^T·d, the weight gradient of dense layers: for
// 784x256x32, 187 vs 154 GFLOP/s on one thread and 314 vs 243 on two; 784x256x512 on two: 366 vs 309), so
// single 2-D products with transpose_a go to dnnl_sgemm.
#include "ops/broadcast.h"
#include "graph/foreign_call.h"
#include "ops/kernel_util.h"
#include "ops/ops.h"

#include <fmt/format.h>

#include <cstring>

namespace flowgrad {
namespace {

using kernels::Binding;

struct MatmulAttrs {
  bool transpose_a = false;
  bool transpose_b = false;
  template <class F> void fields(F&& f) {
    f("transpose_a", transpose_a);
    f("transpose_b", transpose_b);
  }
};

// The product's dimensions. Operand batch shapes are padded with leading ones to the output's batch rank.
struct Geometry {
  Shape batch, a_batch, b_batch;
  int64_t rows = 0, inner = 0, cols = 0;
  Shape out;
};

Shape leading(const Shape& s) { return Shape(s.begin(), s.end() - 2); }

std::string transposes(const MatmulAttrs& a) {
  return fmt::format("transpose_a={}, transpose_b={}", a.transpose_a, a.transpose_b);
}

// Validates (errors through `c`) and computes the geometry. Kernels call it with c = nullptr on shapes that
// the shape rule already accepted.
Geometry geometry_of(const Shape& a, const Shape& b, const MatmulAttrs& attrs, const ShapeContext* c) {
  auto fail = [c](const std::string& what) {
    if (c) c->fail(what);
    throw Error(ErrorKind::shape, what);
  };
  for (const auto& [name, s] : {std::pair{"a", &a}, std::pair{"b", &b}})
    if (s->size() < 2)
      fail(fmt::format("matmul needs operands of rank >= 2, but {} is {}; reshape a vector to [1, n] or [n, 1]", name,
                       to_string(*s)));
  Geometry g;
  const int64_t a0 = a[a.size() - 2], a1 = a.back(), b0 = b[b.size() - 2], b1 = b.back();
  g.rows = attrs.transpose_a ? a1 : a0;
  g.inner = attrs.transpose_a ? a0 : a1;
  const int64_t b_inner = attrs.transpose_b ? b1 : b0;
  g.cols = attrs.transpose_b ? b0 : b1;
  if (g.inner != b_inner)
    fail(fmt::format("a contracts over {} but b over {} (a is {}, b is {}, {})", g.inner, b_inner,
                     to_string(a), to_string(b), transposes(attrs)));
  if (!broadcast_shapes(leading(a), leading(b), g.batch))
    fail(fmt::format("the batch axes {} of a and {} of b do not broadcast", to_string(leading(a)), to_string(leading(b))));
  g.a_batch = kernels::padded(leading(a), g.batch.size());
  g.b_batch = kernels::padded(leading(b), g.batch.size());
  g.out = g.batch;
  g.out.push_back(g.rows);
  g.out.push_back(g.cols);
  return g;
}

// A logical [batch..., rows, cols] view of an operand stored row-major as [batch..., rows, cols], or as
// [batch..., cols, rows] when `transposed`: the last two strides swap, nothing moves.
dnnl::memory::desc operand_desc(const Shape& batch, int64_t rows, int64_t cols, bool transposed) {
  dnnl::memory::dims dims(batch.begin(), batch.end()), strides(batch.size() + 2);
  dims.push_back(rows);
  dims.push_back(cols);
  strides[batch.size()] = transposed ? 1 : cols;
  strides[batch.size() + 1] = transposed ? rows : 1;
  int64_t stride = rows * cols;
  for (size_t i = batch.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= batch[i];
  }
  return kernels::strided_desc(dims, strides);
}

// One 2-D product through oneDNN's row-major sgemm (see the header comment for when). It runs on the OpenMP
// team the plan sized for this node and needs no primitive; its results depend only on the thread count.
//
// oneDNN 2.6's AVX2 sgemm, for x^T·d with both operands' rows on its slow path (kernels::slow_gemm_rows: the
// weight gradient of a 256 -> 512 or 512 -> 256 layer at batch 256), runs a third slower than on the same
// data with padded rows: 1.36 against 0.86 ms for 256x256x512 on one thread, copies included, 0.69
// against 0.52 on two (Zen 3). Such operands are copied into padded rows in scratch first. With one operand
// of such rows (784 -> 512) the padding measured no gain, so it is left alone.
class SgemmKernel : public Kernel {
 public:
  SgemmKernel(int64_t rows, int64_t inner, int64_t cols, bool ta, bool tb)
      : rows_(rows), inner_(inner), cols_(cols), ta_(ta), tb_(tb) {
    pad_ = kernels::slow_gemm_rows(row_length(0)) && kernels::slow_gemm_rows(row_length(1));
  }
  size_t scratch_bytes() const override {
    return pad_ ? sizeof(float) * static_cast<size_t>(padded_floats(0) + padded_floats(1)) : 0;
  }
  void run(const KernelArgs& args) override {
    const float* a = args.input(0);
    const float* b = args.input(1);
    int64_t lda = row_length(0), ldb = row_length(1);
    if (pad_) {
      float* padded_a = static_cast<float*>(args.scratch);
      float* padded_b = padded_a + padded_floats(0);
      copy_rows(a, stored_rows(0), lda, padded_a, args.threads);
      copy_rows(b, stored_rows(1), ldb, padded_b, args.threads);
      a = padded_a, b = padded_b, lda += kernels::kGemmRowPad, ldb += kernels::kGemmRowPad;
    }
    ForeignCall in_onednn;  // dnnl_sgemm mallocs its packing buffers on every call
    dnnl_status_t status = dnnl_sgemm(ta_ ? 'T' : 'N', tb_ ? 'T' : 'N', rows_, cols_, inner_, 1.f, a, lda, b, ldb, 0.f,
                                      args.output(0), cols_);
    if (status != dnnl_success) fail(ErrorKind::runtime, "dnnl_sgemm failed with status {}", static_cast<int>(status));
  }
  double flops() const override { return 2.0 * static_cast<double>(rows_ * inner_ * cols_); }

 private:
  // Operand 0 (a) or 1 (b) as stored: its rows and their length.
  int64_t stored_rows(int operand) const { return operand == 0 ? (ta_ ? inner_ : rows_) : (tb_ ? cols_ : inner_); }
  int64_t row_length(int operand) const { return operand == 0 ? (ta_ ? rows_ : inner_) : (tb_ ? inner_ : cols_); }
  int64_t padded_floats(int operand) const { return stored_rows(operand) * (row_length(operand) + kernels::kGemmRowPad); }

  static void copy_rows(const float* from, int64_t rows, int64_t length, float* to, int threads) {
    kernels::parallel_items(rows, length, threads, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r)
        std::memcpy(to + r * (length + kernels::kGemmRowPad), from + r * length, sizeof(float) * static_cast<size_t>(length));
    });
  }

  int64_t rows_, inner_, cols_;
  bool ta_, tb_;
  bool pad_ = false;
};

std::unique_ptr<Kernel> matmul_kernel(const KernelContext& c, const MatmulAttrs& attrs) {
  Geometry g = geometry_of(c.inputs[0].shape, c.inputs[1].shape, attrs, nullptr);
  const double flops = 2.0 * static_cast<double>(numel(g.batch) * g.rows * g.inner * g.cols);
  Shape batch = g.batch, a_batch = g.a_batch, b_batch = g.b_batch;
  int64_t rows = g.rows;
  // A b shared by the whole batch and a stored row-major: a's batch stacks into one tall matrix, one GEMM
  // with a big M instead of many small ones (dense layers applied over time, dx of a batched product).
  // Batch axes that are all ones vanish the same way, so such products take the 2-D paths too.
  if (numel(b_batch) == 1 && (numel(batch) == 1 || !attrs.transpose_a)) {
    rows *= numel(batch);
    batch = a_batch = b_batch = {};
  }
  if (batch.empty() && attrs.transpose_a)
    return std::make_unique<SgemmKernel>(rows, g.inner, g.cols, attrs.transpose_a, attrs.transpose_b);

  auto a_md = operand_desc(a_batch, rows, g.inner, attrs.transpose_a);
  auto b_md = operand_desc(b_batch, g.inner, g.cols, attrs.transpose_b);
  auto out_md = operand_desc(batch, rows, g.cols, false);
  dnnl::matmul::desc desc(a_md, b_md, out_md);
  dnnl::matmul::primitive_desc pd(desc, kernels::base_attr(), c.engine);
  return kernels::primitive_kernel<dnnl::matmul::primitive_desc, dnnl::matmul>(c.engine, pd,
                                   {{DNNL_ARG_SRC, Binding::From::input, 0, a_md},
                                    {DNNL_ARG_WEIGHTS, Binding::From::input, 1, b_md},
                                    {DNNL_ARG_DST, Binding::From::output, 0, out_md}},
                                   flops);
}

std::vector<RefTensor> matmul_reference(const RefContext& c, const MatmulAttrs& attrs) {
  const RefTensor &a = c.in(0), &b = c.in(1);
  Geometry g = geometry_of(a.shape, b.shape, attrs, nullptr);
  RefTensor out(g.out);
  BroadcastIndex a_index(leading(a.shape), g.batch), b_index(leading(b.shape), g.batch);
  const int64_t rows = g.rows, inner = g.inner, cols = g.cols;
  for (int64_t n = 0; n < numel(g.batch); ++n) {
    const int64_t a0 = a_index(n) * rows * inner, b0 = b_index(n) * inner * cols, o0 = n * rows * cols;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) {
        double total = 0;
        for (int64_t k = 0; k < inner; ++k) {
          double x = attrs.transpose_a ? a[a0 + k * rows + i] : a[a0 + i * inner + k];
          double y = attrs.transpose_b ? b[b0 + j * inner + k] : b[b0 + k * cols + j];
          total += x * y;
        }
        out[o0 + i * cols + j] = total;
      }
  }
  return {std::move(out)};
}

// With A = op(a), B = op(b), C = A·B: dA = G·B^T and dB = A^T·G, then transposed back where the operand
// was. Each case is again one matmul with transpose flags, so no transpose ever materializes. Gradients
// keep the output's batch shape; the autodiff pass sums them down where a or b was broadcast.
GradResult matmul_gradient(GradContext& c) {
  const auto& attrs = c.attrs<MatmulAttrs>();
  const bool ta = attrs.transpose_a, tb = attrs.transpose_b;
  Value g = *c.grad(), a = c.input(0), b = c.input(1);
  auto product = [&](Value x, Value y, bool tx, bool ty, const char* name) {
    return c.graph.apply("matmul", {x, y}, MatmulAttrs{tx, ty}, c.name(name));
  };
  std::optional<Value> da, db;
  if (c.needs(0)) da = ta ? product(b, g, tb, true, "a") : product(g, b, false, !tb, "a");
  if (c.needs(1)) db = tb ? product(g, a, true, ta, "b") : product(a, g, !ta, false, "b");
  return {da, db};
}

}  // namespace

void register_matmul_ops(Registry& r) {
  r.add(OpBuilder<MatmulAttrs>("matmul", 2, 2)
            .summary("batched matrix product over the last two axes (transposes as flags), leading axes broadcast")
            .example({.inputs = {{{3, 4}}, {{4, 2}}}})
            // Both operands transposed, b broadcast over a's batch axis: [2, 3, 4] x [4, 5].
            .example({.inputs = {{{2, 4, 3}}, {{5, 4}}},
                      .attrs = {{"transpose_a", true}, {"transpose_b", true}},
                      .label = "transposed, batched"})
            .infer([](const ShapeContext& c, const MatmulAttrs& a) {
              for (const TensorType& t : c.inputs)
                if (t.dtype != DType::f32) c.fail(fmt::format("matmul takes f32 operands, not {}", to_string(t)));
              return std::vector<TensorType>{{geometry_of(c.in(0), c.in(1), a, &c).out}};
            })
            .reference(matmul_reference)
            .kernel(matmul_kernel)
            .gradient(matmul_gradient)
            .build());
}

Value matmul(Value a, Value b, bool transpose_a, bool transpose_b) {
  return a.graph().apply("matmul", {a, b}, MatmulAttrs{transpose_a, transpose_b});
}

}  // namespace flowgrad
