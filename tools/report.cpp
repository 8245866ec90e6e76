#include "tools/report.h"

#include "graph/error.h"

#include <fmt/format.h>

#include <filesystem>

namespace flowgrad {

RunReport::RunReport(std::string folder, std::string model) : folder_(std::move(folder)), model_(std::move(model)) {}

void RunReport::note(std::string line) { notes_.push_back(std::move(line)); }

void RunReport::add_epoch(const std::string& stage, const EpochStats& stats, bool write_files) {
  epochs_.emplace_back(stage, stats);
  if (write_files) write();
}

void RunReport::write() const {
  std::error_code error;
  std::filesystem::create_directories(folder_, error);
  if (error) fail(ErrorKind::io, "cannot create the run folder '{}': {}", folder_, error.message());
  std::string csv = "stage,epoch,train_loss,test_loss,samples_per_s,seconds\n";
  for (const auto& [stage, e] : epochs_)
    csv += fmt::format("{},{},{:.6f},{:.6f},{:.1f},{:.3f}\n", stage, e.epoch, e.train_loss, e.test_loss, e.samples_per_s, e.seconds);
  write_file_atomically(folder_ + "/metrics.csv", csv);

  std::string md = fmt::format("# {}\n\n", model_);
  for (const auto& n : notes_) md += fmt::format("- {}\n", n);
  md += "\n| stage | epoch | train loss | test loss | seconds | samples/s |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [stage, e] : epochs_)
    md += fmt::format("| {} | {} | {:.5f} | {:.5f} | {:.2f} | {:.0f} |\n", stage, e.epoch, e.train_loss, e.test_loss, e.seconds,
                      e.samples_per_s);
  write_file_atomically(folder_ + "/report.md", md);
}

}  // namespace flowgrad
