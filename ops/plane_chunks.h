// A parallel loop over the planes of an NCHW tensor for the image kernels written as plain loops (pooling
// gradients, resampling).
#pragma once

#include "graph/parallel.h"

#include <tbb/blocked_range.h>

#include <algorithm>
#include <cstdint>

namespace flowgrad::kernels {

// Runs body(begin, end) over [0, planes) in fixed chunks of about 16k elements (planes of `plane_elements`),
// one task per chunk, taken by whichever thread is free: on a shared machine a TBB worker may join late or
// not at all, and a static split (tbb::static_partitioner) then leaves its half to the caller at the end.
// Planes are computed independently, so results do not depend on the thread count.
template <class Body>
void for_plane_chunks(int64_t planes, int64_t plane_elements, int threads, Body&& body) {
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, plane_elements));
  if (threads <= 1 || planes <= grain) return body(int64_t{0}, planes);
  flowgrad::parallel_for(
      tbb::blocked_range<int64_t>(0, planes, grain),
      [&](const tbb::blocked_range<int64_t>& r) { body(r.begin(), r.end()); }, tbb::simple_partitioner());
}

}  // namespace flowgrad::kernels
