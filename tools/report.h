// A run report: metrics.csv (one row per stage and epoch: losses, throughput, then the spec's metrics on the test
// split) and report.md, written atomically into a run folder so that an interrupted run never leaves a
// half-written file behind.
#pragma once

#include "tools/atomic_file.h"
#include "tools/trainer.h"

#include <string>
#include <vector>

namespace flowgrad {

class RunReport {
 public:
  RunReport(std::string folder, std::string model);
  void note(std::string line);
  // The spec's metrics: one column `test_<name>` each in metrics.csv and report.md, after the losses.
  void set_metric_names(std::vector<std::string> names) { metric_names_ = std::move(names); }
  void add_epoch(const std::string& stage, const EpochStats& stats);
  void write() const;  // creates the folder; rewrites both files

 private:
  std::string folder_, model_;
  std::vector<std::string> notes_;
  std::vector<std::string> metric_names_;
  std::vector<std::pair<std::string, EpochStats>> epochs_;
};

}  // namespace flowgrad
