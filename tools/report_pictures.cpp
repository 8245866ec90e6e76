#include "tools/plot.h"
#include "tools/report.h"

#include <fmt/format.h>

#include <map>

namespace flowgrad {

void draw_loss_curves(const std::string& path, const std::string& title, const std::map<std::string, std::string>& loss_names,
                      const std::vector<std::pair<std::string, EpochStats>>& epochs, const std::vector<StepRecord>& steps) {
  // Stages in the order they ran, each starting where the epochs before it end.
  std::vector<std::string> stages;
  std::map<std::string, double> start;
  std::map<std::string, int64_t> epochs_of;
  auto meet = [&](const std::string& stage) {
    if (start.count(stage)) return;
    double offset = 0;
    for (const std::string& s : stages) offset += static_cast<double>(epochs_of[s]);
    stages.push_back(stage);
    start[stage] = offset;
  };
  for (const auto& [stage, e] : epochs) meet(stage), epochs_of[stage] = std::max(epochs_of[stage], e.epoch);
  for (const StepRecord& s : steps) meet(s.stage), epochs_of[s.stage] = std::max(epochs_of[s.stage], s.epoch);
  std::map<std::pair<std::string, int64_t>, int64_t> steps_in_epoch;
  for (const StepRecord& s : steps) ++steps_in_epoch[{s.stage, s.epoch}];

  const bool several = stages.size() > 1;
  std::vector<PlotSeries> series;
  auto named = [&](const std::string& stage) {
    const auto it = loss_names.find(stage);
    return it == loss_names.end() ? std::string("loss") : it->second;
  };
  PlotOptions options{.title = title, .x_label = "epoch",
                      .y_label = several || stages.empty() ? "loss per sample" : named(stages.front()) + ", per sample",
                      .x_from = 0.0};
  for (size_t k = 0; k < stages.size(); ++k) {
    const std::string& stage = stages[k];
    const Rgb color = several ? palette_color(static_cast<int64_t>(k)) : palette_color(0);
    const Rgb test_color = several ? color : palette_color(1);
    PlotSeries per_step{several ? "" : "train, per step", {}, {}, color, false, false, 1.0, 0.35};
    PlotSeries train{several ? fmt::format("{} ({}): train", stage, named(stage)) : "train", {}, {}, color};
    PlotSeries test{several ? stage + ": test" : "test", {}, {}, test_color, true};
    std::map<std::pair<std::string, int64_t>, int64_t> seen;
    for (const StepRecord& s : steps) {
      if (s.stage != stage) continue;
      const int64_t i = ++seen[{s.stage, s.epoch}];
      per_step.x.push_back(start[stage] + static_cast<double>(s.epoch - 1) +
                           static_cast<double>(i) / static_cast<double>(steps_in_epoch[{s.stage, s.epoch}]));
      per_step.y.push_back(s.loss);
    }
    for (const auto& [name, e] : epochs) {
      if (name != stage) continue;
      train.x.push_back(start[stage] + static_cast<double>(e.epoch)), train.y.push_back(e.train_loss);
      test.x.push_back(start[stage] + static_cast<double>(e.epoch)), test.y.push_back(e.test_loss);
    }
    series.push_back(std::move(per_step));
    series.push_back(std::move(train));
    series.push_back(std::move(test));
    if (several) options.boundaries.push_back({start[stage], stage});
  }
  line_plot(path, series, options);
}

}  // namespace flowgrad
