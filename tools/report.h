// A run report: metrics.csv (one row per stage and epoch) and report.md, written atomically into a run folder so
// that an interrupted run never leaves a half-written file behind.
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
  // Records an epoch and, with `write_files`, rewrites both files (after every trained epoch, so that an
  // interrupted run keeps what it measured; epochs restored from a checkpoint are recorded without).
  void add_epoch(const std::string& stage, const EpochStats& stats, bool write_files = true);
  void write() const;  // creates the folder; rewrites both files

 private:
  std::string folder_, model_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, EpochStats>> epochs_;
};

}  // namespace flowgrad
