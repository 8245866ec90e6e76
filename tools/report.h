// A run report: metrics.csv (one row per stage and epoch) and report.md, written atomically into a run folder so
// that an interrupted run never leaves a half-written file behind.
#pragma once

#include "tools/trainer.h"

#include <string>
#include <vector>

namespace flowgrad {

// Writes `contents` to `path` through a temporary file in the same directory, fsync and rename.
void write_file_atomically(const std::string& path, const std::string& contents);

class RunReport {
 public:
  RunReport(std::string folder, std::string model);
  void note(std::string line);
  void add_epoch(const std::string& stage, const EpochStats& stats);
  void write() const;  // creates the folder; rewrites both files

 private:
  std::string folder_, model_;
  std::vector<std::string> notes_;
  std::vector<std::pair<std::string, EpochStats>> epochs_;
};

}  // namespace flowgrad
