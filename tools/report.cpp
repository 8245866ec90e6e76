#include "tools/report.h"

#include "graph/error.h"

#include <fmt/format.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flowgrad {

// The pictures a run folder may hold, in the order reports show them.
const std::vector<std::pair<std::string, std::string>>& report_pictures() {
  static const std::vector<std::pair<std::string, std::string>> pictures = {
      {"loss.png", "Loss"}, {"reconstructions.png", "Reconstructions (test set)"}, {"latent.png", "Latent codes (test set)"}};
  return pictures;
}

RunReport::RunReport(std::string folder, const Spec& spec) : folder_(std::move(folder)), spec_(spec) {}

void RunReport::note(std::string line) { notes_.push_back(std::move(line)); }

std::vector<std::pair<std::string, std::string>> RunReport::pictures() const {
  std::vector<std::pair<std::string, std::string>> all = report_pictures();
  for (const std::string& name : metric_names_) all.emplace_back(fmt::format("metric_{}.png", name), "Test " + name);
  return all;
}

void RunReport::add_epoch(const std::string& stage, const EpochStats& stats, bool write_files) {
  epochs_.emplace_back(stage, stats);
  if (write_files) write();
}

void RunReport::restore_steps(uint64_t next_step) {
  std::ifstream in(folder_ + "/steps.csv");
  std::string line;
  std::getline(in, line);  // the header
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    StepRecord r;
    std::string epoch, step, loss, lr;
    if (!std::getline(fields, r.stage, ',') || !std::getline(fields, epoch, ',') || !std::getline(fields, step, ',') ||
        !std::getline(fields, loss, ',') || !std::getline(fields, lr))
      continue;
    r.epoch = std::strtoll(epoch.c_str(), nullptr, 10), r.step = std::strtoull(step.c_str(), nullptr, 10);
    r.loss = std::strtod(loss.c_str(), nullptr), r.lr = std::strtod(lr.c_str(), nullptr);
    if (r.step < next_step) steps_.push_back(std::move(r));
  }
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
  std::string steps = "stage,epoch,step,loss,lr\n";
  for (const StepRecord& s : steps_) steps += fmt::format("{},{},{},{:.7g},{:.7g}\n", s.stage, s.epoch, s.step, s.loss, s.lr);
  write_file_atomically(folder_ + "/steps.csv", steps);

  std::string md = fmt::format("# {}\n\n", spec_.name);
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
  for (const auto& [file, title] : pictures())
    if (std::filesystem::exists(folder_ + "/" + file)) md += fmt::format("\n## {}\n\n![{}]({})\n", title, title, file);
  write_file_atomically(folder_ + "/report.md", md);
  write_file_atomically(folder_ + "/report.html", html());
}

}  // namespace flowgrad
