#include "tools/report.h"

#include "graph/error.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>

namespace flowgrad {

RunReport::RunReport(std::string folder, std::string model) : folder_(std::move(folder)), model_(std::move(model)) {}

void RunReport::note(std::string line) { notes_.push_back(std::move(line)); }

void RunReport::add_epoch(const std::string& stage, const EpochStats& stats) {
  epochs_.emplace_back(stage, stats);
  write();  // after every epoch, so an interrupted run keeps what it measured
}

void RunReport::write() const {
  std::error_code error;
  std::filesystem::create_directories(folder_, error);
  if (error) fail(ErrorKind::io, "cannot create the run folder '{}': {}", folder_, error.message());
  // A metric an epoch has no value for (it was added to the spec after that epoch) is an empty cell.
  auto metric = [](const EpochStats& e, size_t i, const char* format) {
    return i < e.metrics.size() && std::isfinite(e.metrics[i]) ? fmt::format(fmt::runtime(format), e.metrics[i]) : "";
  };
  std::string csv = "stage,epoch,train_loss,test_loss,samples_per_s,seconds";
  for (const std::string& name : metric_names_) csv += fmt::format(",test_{}", name);
  csv += "\n";
  for (const auto& [stage, e] : epochs_) {
    csv += fmt::format("{},{},{:.6f},{:.6f},{:.1f},{:.3f}", stage, e.epoch, e.train_loss, e.test_loss, e.samples_per_s, e.seconds);
    for (size_t i = 0; i < metric_names_.size(); ++i) csv += fmt::format(",{}", metric(e, i, "{:.6g}"));
    csv += "\n";
  }
  write_file_atomically(folder_ + "/metrics.csv", csv);

  std::string md = fmt::format("# {}\n\n", model_);
  for (const auto& n : notes_) md += fmt::format("- {}\n", n);
  md += "\n| stage | epoch | train loss | test loss | seconds | samples/s |";
  for (const std::string& name : metric_names_) md += fmt::format(" test {} |", name);
  md += "\n|---|---:|---:|---:|---:|---:|";
  for (size_t i = 0; i < metric_names_.size(); ++i) md += "---:|";
  md += "\n";
  for (const auto& [stage, e] : epochs_) {
    md += fmt::format("| {} | {} | {:.5f} | {:.5f} | {:.2f} | {:.0f} |", stage, e.epoch, e.train_loss, e.test_loss, e.seconds,
                      e.samples_per_s);
    for (size_t i = 0; i < metric_names_.size(); ++i) md += fmt::format(" {} |", metric(e, i, "{:.5g}"));
    md += "\n";
  }
  write_file_atomically(folder_ + "/report.md", md);
}

}  // namespace flowgrad
