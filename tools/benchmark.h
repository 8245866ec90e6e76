// Steady-state timing of a plan: warm-up steps, then repeated blocks of steps sized to last about a
// target time; per-step milliseconds as min / median / max over the blocks.
#pragma once

#include "graph/plan.h"

namespace flowgrad {

struct StepTiming {
  double ms_min = 0, ms_median = 0, ms_max = 0;
  int steps_per_block = 0, blocks = 0;
};

struct TimingOptions {
  int warmup = 20;
  int blocks = 7;
  double block_seconds = 0.3;
};

// Runs the plan as it is fed (inputs bound by the caller). Step numbers continue from `first_step`.
StepTiming time_steps(Plan& plan, const TimingOptions& options = {}, uint64_t first_step = 0);

}  // namespace flowgrad
