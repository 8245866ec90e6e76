// A run report, written atomically into a run folder so that an interrupted run never leaves a half-written
// file behind: metrics.csv (one row per stage and epoch: losses, throughput, then the spec's metrics on the
// test split), steps.csv (one row per step: loss and learning rate), report.md, and report.html, a
// self-contained page for a browser: the notes, the model summary, the metrics table, the pictures
// (embedded), the graph's SVG and the spec.
#pragma once

#include "tools/atomic_file.h"
#include "tools/spec.h"
#include "tools/trainer.h"

#include <map>
#include <string>
#include <vector>

namespace flowgrad {

struct StepRecord {
  std::string stage;
  int64_t epoch = 0;  // 1-based
  uint64_t step = 0;  // the run's optimizer step, from 0
  double loss = 0, lr = 0;
};

// The pictures a run folder may hold (file, title), in the order the reports show them.
const std::vector<std::pair<std::string, std::string>>& report_pictures();

// loss.png: per stage (one color each, a boundary where it starts) the train loss of every step (thin), and
// the train (solid, circles) and test loss (dashed, squares) after each epoch, over epochs counted across
// stages; log scale when the losses span a factor of 20 or more. `loss_names` says what each stage's loss is
// (e.g. "loss, mse"), on the y axis for one stage and in the legend for several.
void draw_loss_curves(const std::string& path, const std::string& title, const std::map<std::string, std::string>& loss_names,
                      const std::vector<std::pair<std::string, EpochStats>>& epochs, const std::vector<StepRecord>& steps);

class RunReport {
 public:
  RunReport(std::string folder, const Spec& spec);
  void note(std::string line);
  // The spec's metrics: one column `test_<name>` each in metrics.csv and report.md, after the losses.
  void set_metric_names(std::vector<std::string> names) { metric_names_ = std::move(names); }
  // Records an epoch and, with `write_files`, rewrites the files (after every trained epoch, so that an
  // interrupted run keeps what it measured; epochs restored from a checkpoint are recorded without).
  void add_epoch(const std::string& stage, const EpochStats& stats, bool write_files = true);
  void add_step(StepRecord step) { steps_.push_back(std::move(step)); }  // written with the next epoch
  // A resumed run keeps the steps.csv rows of the steps before `next_step`.
  void restore_steps(uint64_t next_step);
  const std::vector<StepRecord>& steps() const { return steps_; }
  const std::vector<std::pair<std::string, EpochStats>>& epochs() const { return epochs_; }
  void write() const;  // creates the folder; rewrites every file

 private:
  std::string html() const;
  // The pictures the run folder may hold, (file, title): loss, reconstructions, latent codes, then one per metric.
  std::vector<std::pair<std::string, std::string>> pictures() const;

  std::string folder_;
  const Spec& spec_;
  std::vector<std::string> notes_;
  std::vector<std::string> metric_names_;
  std::vector<std::pair<std::string, EpochStats>> epochs_;
  std::vector<StepRecord> steps_;
};

}  // namespace flowgrad
