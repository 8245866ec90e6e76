// Steady-state timing of a plan: warm-up steps, then repeated blocks of steps sized to last about a
// target time; per-step milliseconds as min / median / max over the blocks. And the same for the training
// loop of `flowgrad train` around that plan, to show what the runner adds to the bare step.
#pragma once

#include "graph/plan.h"
#include "tools/trainer.h"

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

struct RunnerTiming {
  StepTiming bare;    // Plan::run alone, inputs fed once
  StepTiming runner;  // Trainer::run_epoch per step: batches (shuffled, prefetched), feeding, loss, progress
  // The median over block pairs of runner / bare - 1. Each runner block is compared with the bare block
  // run just before it: the machine's speed drifts by tens of percent within a minute, which a ratio of
  // two medians taken over the whole run does not cancel.
  double overhead = 0;
};

// Trains `forward` with `options` on synthetic data (random bytes scaled to [0, 1], one epoch per block)
// and alternates blocks of bare plan runs with epochs of the trainer on the same plan, so that both see the
// same machine load. The trainer reports progress as `flowgrad train` does (into a string: no terminal output).
RunnerTiming time_runner(const Graph& forward, TrainerOptions options, const TimingOptions& timing = {});

}  // namespace flowgrad
