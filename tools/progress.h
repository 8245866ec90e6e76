// Training progress on stderr. On a terminal: one status line redrawn in place (stage, epoch k/n, a bar, the
// step counter "123/469", percent, running loss, samples/s, ETA of the epoch), at most `redraw_interval_s`
// apart; a narrow terminal drops the bar first, then the speed, the percent and the ETA, never wrapping. Elsewhere (pipes,
// CI logs): plain lines, one per epoch, plus a progress line at most every `log_interval_s` within a long
// epoch. Either way each epoch ends with one line listing train loss, test loss, seconds and samples/s.
//
// The stream, the terminal flag, the width and the clock are injectable, so tests need no terminal.
//
//   ProgressReporter progress;
//   progress.epoch_start("train", epoch, epochs, train.count);
//   ... progress.update(samples_done, batch_loss); ...
//   progress.epoch_end(stats);
#pragma once

#include "tools/trainer.h"

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>

namespace flowgrad {

struct ProgressOptions {
  std::ostream* out = nullptr;          // nullptr: std::cerr
  std::optional<bool> terminal;         // unset: whether stderr is a terminal (isatty)
  int width = 0;                        // terminal columns; 0: ask the terminal (80 when it does not say)
  std::function<double()> clock;        // seconds on a monotonic clock; unset: std::chrono::steady_clock
  double redraw_interval_s = 0.1;       // terminal: the least time between redraws
  double log_interval_s = 30;           // plain output: the least time between progress lines in an epoch
  bool quiet = false;                   // print nothing
};

class ProgressReporter {
 public:
  explicit ProgressReporter(ProgressOptions options = {});
  ~ProgressReporter();  // ends a status line still drawn, so later output starts on a fresh line
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  // Starts epoch `epoch` (1-based) of `epochs` in `stage` (e.g. "train", "pretrain 2"), which will see
  // `samples` training samples in steps of `batch`.
  void epoch_start(std::string stage, int64_t epoch, int64_t epochs, int64_t samples, int64_t batch = 1);
  // A line of its own (e.g. "early stopping: ..."), below the status line.
  void message(const std::string& line);
  // `samples_done` samples of the epoch are through; `loss` is the mean loss over those since the previous
  // update (a batch's loss). The reporter shows the sample-weighted running mean over the epoch.
  void update(int64_t samples_done, double loss);
  // Replaces the status line (or follows the log lines) with the epoch's summary line.
  void epoch_end(const EpochStats& stats);

  double running_loss() const;  // the epoch's sample-weighted mean loss so far; NaN before any update

 private:
  double now() const;
  std::string status(double elapsed, int columns) const;
  void draw(const std::string& line);

  ProgressOptions options_;
  std::ostream& out_;
  bool terminal_;
  int columns_;
  std::string stage_;
  int64_t epoch_ = 0, epochs_ = 0, samples_ = 0, batch_ = 1;
  int64_t done_ = 0;
  double loss_sum_ = 0;  // loss * samples over the epoch's updates
  double started_ = 0, last_output_ = 0;
  bool line_drawn_ = false;  // a status line is on the terminal without its newline
};

}  // namespace flowgrad
