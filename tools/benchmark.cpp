#include "tools/benchmark.h"

#include <algorithm>
#include <chrono>
#include <vector>

namespace flowgrad {

StepTiming time_steps(Plan& plan, const TimingOptions& options, uint64_t first_step) {
  using clock = std::chrono::steady_clock;
  uint64_t step = first_step;
  auto start = clock::now();
  for (int i = 0; i < options.warmup; ++i) plan.run(step++);
  double warm_seconds = std::chrono::duration<double>(clock::now() - start).count();
  double per_step = options.warmup > 0 ? warm_seconds / options.warmup : 1e-3;
  StepTiming timing;
  timing.steps_per_block = std::clamp(static_cast<int>(options.block_seconds / std::max(per_step, 1e-7)), 3, 100000);
  timing.blocks = options.blocks;
  std::vector<double> ms;
  for (int b = 0; b < options.blocks; ++b) {
    auto t0 = clock::now();
    for (int i = 0; i < timing.steps_per_block; ++i) plan.run(step++);
    ms.push_back(std::chrono::duration<double, std::milli>(clock::now() - t0).count() / timing.steps_per_block);
  }
  std::sort(ms.begin(), ms.end());
  timing.ms_min = ms.front();
  timing.ms_max = ms.back();
  timing.ms_median = ms[ms.size() / 2];
  return timing;
}

}  // namespace flowgrad
