// The 2-D pooling family's window geometry and its kernels written as loops (pool_loops.cpp); ops/pool.cpp
// holds the ops, their shape rules, references, oneDNN kernels and gradient rules.
#pragma once

#include "graph/op.h"
#include "ops/activation.h"

#include <memory>

namespace flowgrad::pool {

// A pooling window on one input size, padding resolved.
struct Geometry {
  int64_t batch = 0, channels = 0;
  int64_t in_h = 0, in_w = 0, out_h = 0, out_w = 0;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1;
  int64_t top = 0, left = 0, bottom = 0, right = 0;
  Shape input() const { return {batch, channels, in_h, in_w}; }
  Shape output() const { return {batch, channels, out_h, out_w}; }
};

// 2x2 windows with stride 2 that tile the input exactly: the loops' fast case.
bool tiles_2x2(const Geometry& g);
// max_pool2d in training over tiling 2x2 windows: inputs x; outputs y and the u8 workspace.
std::unique_ptr<Kernel> max_2x2_kernel(const Geometry& g, Isa isa);
// max_pool2d_grad: inputs g, workspace [, p with a fused relu or leaky_relu]; output dx.
std::unique_ptr<Kernel> scatter_kernel(const Geometry& g, DType workspace, Activation activation, double alpha, Isa isa);
// max_pool2d_gather: inputs x, workspace; output the marked element of each window.
std::unique_ptr<Kernel> gather_kernel(const Geometry& g, DType workspace);

}  // namespace flowgrad::pool
