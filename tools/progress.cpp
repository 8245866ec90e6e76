#include "tools/progress.h"

#include <fmt/format.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <iostream>
#include <limits>
#include <utility>

namespace flowgrad {
namespace {

int terminal_columns() {
  winsize size{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &size) == 0 && size.ws_col > 0) return size.ws_col;
  return 80;
}

std::string duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const auto total = static_cast<int64_t>(std::llround(seconds));
  if (total >= 3600) return fmt::format("{}:{:02}:{:02}", total / 3600, total / 60 % 60, total % 60);
  return fmt::format("{}:{:02}", total / 60, total % 60);
}

std::string bar(double fraction, int width) {
  const int filled = std::clamp(static_cast<int>(fraction * width), 0, width);
  std::string drawn(static_cast<size_t>(filled), '=');
  if (filled < width) drawn += filled > 0 ? ">" : " ";
  drawn.resize(static_cast<size_t>(width), ' ');
  return "[" + drawn + "]";
}

}  // namespace

ProgressReporter::ProgressReporter(ProgressOptions options)
    : options_(std::move(options)),
      out_(options_.out ? *options_.out : std::cerr),
      terminal_(options_.terminal.value_or(::isatty(STDERR_FILENO) == 1)),
      columns_(options_.width > 0 ? options_.width : terminal_ ? terminal_columns() : 80) {}

ProgressReporter::~ProgressReporter() {
  if (line_drawn_) out_ << '\n' << std::flush;
}

double ProgressReporter::now() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double ProgressReporter::running_loss() const {
  return done_ > 0 ? loss_sum_ / static_cast<double>(done_) : std::numeric_limits<double>::quiet_NaN();
}

void ProgressReporter::epoch_start(std::string stage, int64_t epoch, int64_t epochs, int64_t samples, int64_t batch) {
  batch_ = std::max<int64_t>(1, batch);
  stage_ = std::move(stage);
  epoch_ = epoch;
  epochs_ = epochs;
  samples_ = samples;
  done_ = 0;
  loss_sum_ = 0;
  started_ = last_output_ = now();
  if (terminal_ && !options_.quiet) draw(status(0, columns_));
}

void ProgressReporter::message(const std::string& line) {
  if (options_.quiet) return;
  if (line_drawn_) out_ << "\r\x1b[K";
  out_ << line << '\n' << std::flush;
  line_drawn_ = false;
}

void ProgressReporter::update(int64_t samples_done, double loss) {
  const int64_t added = samples_done - done_;
  if (added > 0) {
    loss_sum_ += loss * static_cast<double>(added);
    done_ = samples_done;
  }
  const double t = now();
  const bool last = done_ >= samples_;
  if (options_.quiet) return;
  if (terminal_) {
    if (!last && t - last_output_ < options_.redraw_interval_s) return;
    draw(status(t - started_, columns_));
  } else {
    // The epoch's summary line follows right after the last update, so only long epochs log midway.
    if (last || t - last_output_ < options_.log_interval_s) return;
    out_ << status(t - started_, 0) << '\n' << std::flush;
  }
  last_output_ = t;
}

void ProgressReporter::epoch_end(const EpochStats& stats) {
  if (options_.quiet) return;
  const std::string summary =
      fmt::format("{} epoch {}/{}: train loss {:.5f}, test loss {:.5f}, {:.2f} s, {:.0f} samples/s", stage_,
                  stats.epoch > 0 ? stats.epoch : epoch_, epochs_, stats.train_loss, stats.test_loss, stats.seconds,
                  stats.samples_per_s);
  if (terminal_) out_ << "\r\x1b[K";
  out_ << summary << '\n' << std::flush;
  line_drawn_ = false;
  last_output_ = now();
}

// The status line for `elapsed` seconds into the epoch. With `columns` > 0 it is a terminal line with a bar,
// fitted into columns - 1 characters (writing the last column makes some terminals wrap); otherwise a log line.
std::string ProgressReporter::status(double elapsed, int columns) const {
  const double fraction = samples_ > 0 ? std::min(1.0, static_cast<double>(done_) / static_cast<double>(samples_)) : 0;
  const double rate = elapsed > 0 && done_ > 0 ? static_cast<double>(done_) / elapsed : 0;
  const std::string loss = done_ > 0 ? fmt::format("{:.5f}", running_loss()) : "--";
  const std::string speed = rate > 0 ? fmt::format("{:.0f}", rate) : "--";
  const std::string eta = duration(rate > 0 ? static_cast<double>(samples_ - done_) / rate : -1);
  const auto percent = static_cast<int>(fraction * 100);
  const int64_t steps = (samples_ + batch_ - 1) / batch_, steps_done = (done_ + batch_ - 1) / batch_;
  const std::string counter = fmt::format("{}/{}", steps_done, steps);
  if (columns <= 0)
    return fmt::format("{} epoch {}/{}: {}% (step {}, {}/{} samples), loss {}, {} samples/s, ETA {}", stage_, epoch_,
                       epochs_, percent, counter, done_, samples_, loss, speed, eta);

  // The widest variant that fits columns - 1 characters (writing the last column makes some terminals wrap):
  // the bar goes first, then the speed, the percent and the ETA; the stage name last.
  const int fit = columns - 1;
  const std::string head = fmt::format("{} epoch {}/{}", stage_, epoch_, epochs_);
  const std::string full_tail = fmt::format(" {} {:3}%  loss {}  {} samples/s  ETA {}", counter, percent, loss, speed, eta);
  const int room = fit - static_cast<int>(head.size() + full_tail.size()) - 3;  // a space and the bar's brackets
  if (room >= 10) return head + " " + bar(fraction, std::min(room, 30)) + full_tail;
  for (const std::string& line :
       {head + full_tail, head + fmt::format(" {} {:3}%  loss {}  ETA {}", counter, percent, loss, eta),
        head + fmt::format(" {}  loss {}  ETA {}", counter, loss, eta), head + fmt::format(" {}  loss {}", counter, loss),
        fmt::format("{}/{} {} loss {}", epoch_, epochs_, counter, loss), fmt::format("{} {}", counter, loss)})
    if (static_cast<int>(line.size()) <= fit) return line;
  return counter.substr(0, static_cast<size_t>(std::max(0, fit)));
}

void ProgressReporter::draw(const std::string& line) {
  out_ << '\r' << line << "\x1b[K" << std::flush;
  line_drawn_ = true;
}

}  // namespace flowgrad
