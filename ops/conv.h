// The convolution family's shared core, used by ops/conv.cpp (attributes, shape rules, references, gradient
// rules), ops/conv_kernels.cpp (oneDNN kernels) and ops/conv_direct.cpp (direct kernels for thin layers).
//
// Every op of the family computes one of three maps on a single 2-D convolution y = x ⋆ w:
//
//   correlate    x, w -> y    conv2d, conv2d_transpose_backward_data
//   adjoint      y, w -> x    conv2d_backward_data, conv2d_transpose
//   weight_grad  x, y -> w    conv2d_backward_weights, conv2d_transpose_backward_weights
//
// "x side" is the convolution's input [batch, channels, x_size], "y side" its output [batch, filters, y_size],
// and w is [filters, channels / groups, kernel] for both conv2d and conv2d_transpose (PyTorch's layouts: a
// transposed convolution takes the weights of the convolution it is the adjoint of). Padding is always on
// the x side, as are conv2d's input and conv2d_transpose's output.
#pragma once

#include "graph/op.h"
#include "ops/activation.h"

#include <array>
#include <memory>

namespace flowgrad::conv {

using Pair = std::array<int64_t, 2>;  // [height, width]

struct Geometry {
  int64_t batch = 0, groups = 1;
  int64_t channels = 0;  // x side
  int64_t filters = 0;   // y side
  Pair x_size{}, y_size{}, kernel{};
  Pair stride{1, 1}, dilation{1, 1};  // dilation as in Keras: 1 is a dense kernel
  Pair pad_begin{}, pad_end{};        // [top, left] and [bottom, right], on the x side

  Shape x_shape() const { return {batch, channels, x_size[0], x_size[1]}; }
  Shape y_shape() const { return {batch, filters, y_size[0], y_size[1]}; }
  Shape w_shape() const { return {filters, channels / groups, kernel[0], kernel[1]}; }
  // Extent of the dilated kernel along an axis.
  int64_t reach(int axis) const { return dilation[static_cast<size_t>(axis)] * (kernel[static_cast<size_t>(axis)] - 1) + 1; }
  // Multiply-adds of one map (padding taps included).
  double macs() const;
};

enum class Kind { conv, transpose };                          // conv2d*, conv2d_transpose*
enum class Role { forward, backward_data, backward_weights };  // the op, its gradient ops
enum class Map { correlate, adjoint, weight_grad };
Map map_of(Kind kind, Role role);
// Whether the op's first input lies on the x side (the gradient g of a backward op included).
inline bool first_input_on_x_side(Kind kind, Role role) { return (kind == Kind::conv) == (role == Role::forward); }

// What a kernel factory needs to know about a node of the family. Inputs and outputs by role:
//   forward           (source, w [, b])  -> out        b on out's channels, activation fused
//   backward_data     (g, w)             -> out
//   backward_weights  (g, a)             -> dw [, db]  db sums g over batch and space
struct KernelSpec {
  Kind kind = Kind::conv;
  Role role = Role::forward;
  Geometry geometry;
  bool bias = false;
  Activation activation = Activation::linear;
  double alpha = 0;
  Isa isa = widest_isa();  // the level of a direct kernel's loops
};

// The node's kernel: a direct one where it suits (below), else oneDNN's (conv_kernels.cpp).
std::unique_ptr<Kernel> make_kernel(const KernelContext& c, const KernelSpec& spec);

// Direct kernels (conv_direct.cpp) for what oneDNN 2.6 does poorly: stride 1 with very few filters per
// group (the y side), or with very few channels on either side for the adjoint.
bool direct_kernel_suits(const KernelSpec& spec);
std::unique_ptr<Kernel> make_direct_kernel(const KernelSpec& spec);

}  // namespace flowgrad::conv
