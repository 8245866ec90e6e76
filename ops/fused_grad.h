// Activation gradients fused into the gradient ops of max_pool2d and upsample.
//
// An op with a fused activation (conv2d's `activation`) differentiates through it with
// activation_grad(g, y) = g * f'(y), a full pass over its output's size. When y goes straight into a
// max_pool2d or an upsample, g is that op's gradient, a linear map of a smaller tensor, and for relu and
// leaky_relu (whose f' is piecewise constant, so the fused op stays linear in g) the product can be folded
// into it:
//   max pooling  dx = scatter(dp) * f'(y) = scatter(dp * f'(p)), p = max_pool2d(y): each arg-max holds
//                its window's maximum, so f' is read from the pooled output, a quarter of y for 2x2 windows;
//   upsample     dx = upsample_grad(du) * f'(y), in the same pass that writes dx.
// The gradient ops take y (or p) as an optional last input with attributes activation and alpha.
#pragma once

#include "graph/graph.h"
#include "ops/activation.h"

#include <optional>

namespace flowgrad {

// Whether the gradient ops can fold this activation in.
inline bool foldable_activation(Activation activation) {
  return activation == Activation::relu || activation == Activation::leaky_relu;
}

// activation_grad(g, y, activation, alpha) as one fused gradient op, when g is the output of
// max_pool2d_grad for a max_pool2d of y (pool.cpp) or of upsample_grad (resample.cpp) and the activation is
// foldable; otherwise nothing. The unfused gradient op stays in the graph, unread, and the planner skips it.
std::optional<Value> fold_into_pool_grad(Value g, Value y, Activation activation, double alpha);
std::optional<Value> fold_into_upsample_grad(Value g, Value y, Activation activation, double alpha);

// upsample_grad(g) for a nearest upsample by 2 whose gradient g is conv2d_backward_data(dy, w) of a 3x3,
// stride 1, `same` conv2d (the decoder's "upsample, then convolve"), as one conv2d of dy with stride 2:
// along an axis, output 2i + t of the upsampled conv reads input i through the taps k with t + k - 1 in
// {0, 1}, so the pair's adjoint is a correlation with stride 2, pads 1 and the 4-tap kernel
// [w2, w1 + w2, w0 + w1, w0] (w reversed, convolved with a 2-tap box), channel axes swapped. It reads dy and
// writes the small side, where the pair writes and reads the upsampled size. Otherwise nothing.
std::optional<Value> fold_upsample_grad_into_conv(Value g);

}  // namespace flowgrad
