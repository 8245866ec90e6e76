#include <catch2/catch.hpp>

#include "tools/progress.h"

#include <algorithm>
#include <sstream>

using namespace flowgrad;
using Catch::Matchers::Contains;
using Catch::Matchers::EndsWith;
using Catch::Matchers::StartsWith;

namespace {

struct FakeTerminal {
  std::ostringstream out;
  double seconds = 100;  // a clock that only moves when the test says so

  ProgressOptions options(bool terminal, int width = 100) {
    ProgressOptions o;
    o.out = &out;
    o.terminal = terminal;
    o.width = width;
    o.clock = [this] { return seconds; };
    return o;
  }
};

// The status lines drawn so far: what follows each carriage return, without the clear-to-end-of-line code.
std::vector<std::string> redraws(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t at = text.find('\r'); at != std::string::npos; at = text.find('\r', at + 1)) {
    std::string line = text.substr(at + 1, text.find_first_of("\r\n", at + 1) - at - 1);
    if (size_t clear = line.find("\x1b[K"); clear != std::string::npos) line.erase(clear, 3);
    if (!line.empty()) lines.push_back(line);
  }
  return lines;
}

EpochStats stats(int64_t epoch) {
  return EpochStats{.epoch = epoch, .train_loss = 0.4, .test_loss = 0.45, .seconds = 1.0, .samples_per_s = 1000};
}

}  // namespace

TEST_CASE("on a terminal one status line is redrawn in place, at most ten times a second", "[progress]") {
  FakeTerminal term;
  {
    ProgressReporter progress(term.options(true));
    progress.epoch_start("train", 2, 10, 1000, 8);
    CHECK_THAT(term.out.str(), StartsWith("\rtrain epoch 2/10 [") && Contains(" 0/125 ") && Contains("  0%") &&
                                   Contains("ETA --:--"));

    term.seconds += 0.05;
    progress.update(100, 0.5);  // too soon after the first drawing
    CHECK(redraws(term.out.str()).size() == 1);

    term.seconds += 0.15;
    progress.update(200, 0.3);
    CHECK(progress.running_loss() == Approx(0.4));
    std::vector<std::string> lines = redraws(term.out.str());
    REQUIRE(lines.size() == 2);
    CHECK_THAT(lines.back(), Contains(" 25/125 ") && Contains(" 20%") && Contains("loss 0.40000") && Contains("1000 samples/s") &&
                                 Contains("ETA 0:01") && Contains("[=====>"));

    for (int batch = 0; batch < 100; ++batch) {  // 100 updates within half a second
      term.seconds += 0.005;
      progress.update(200 + 8 * (batch + 1), 0.4);
    }
    lines = redraws(term.out.str());
    CHECK(lines.size() <= 2 + 6);
    for (const auto& line : lines) CHECK(line.size() <= 99);  // never the last column: no wrapping

    progress.update(1000, 0.4);  // the last batch is always drawn
    CHECK_THAT(redraws(term.out.str()).back(), Contains("100%") && Contains("ETA 0:00"));
    progress.epoch_end(stats(2));
    CHECK_THAT(term.out.str(),
               EndsWith("\r\x1b[Ktrain epoch 2/10: train loss 0.40000, test loss 0.45000, 1.00 s, 1000 samples/s\n"));

    progress.epoch_start("train", 3, 10, 1000);
  }
  CHECK_THAT(term.out.str(), EndsWith("\n"));  // the reporter ends a line it left open
}

TEST_CASE("a narrow terminal drops the bar, then the speed, percent and ETA, instead of wrapping", "[progress]") {
  for (int width : {100, 80, 60, 45, 20, 8}) {
    INFO("width " << width);
    FakeTerminal term;
    ProgressReporter progress(term.options(true, width));
    progress.epoch_start("pretrain layer 2", 7, 50, 60000, 256);
    term.seconds += 1;
    progress.update(30000, 0.25);
    const std::string line = redraws(term.out.str()).back();
    CHECK(static_cast<int>(line.size()) <= width - 1);
    CHECK_THAT(line, Contains("118/235"));  // the step counter stays to the last
    if (width >= 100) CHECK_THAT(line, Contains("[") && Contains("samples/s") && Contains("50%"));
    if (width == 60) CHECK_THAT(line, StartsWith("pretrain layer 2 epoch 7/50") && !Contains("[") && Contains("loss 0.25000"));
    if (width == 20) CHECK(line == "118/235 0.25000");
  }
}

TEST_CASE("without a terminal: plain lines, one per epoch and one per interval in long epochs", "[progress]") {
  FakeTerminal term;
  ProgressOptions options = term.options(false);
  options.log_interval_s = 30;
  ProgressReporter progress(options);
  for (int64_t epoch = 1; epoch <= 2; ++epoch) {
    progress.epoch_start("train", epoch, 2, 6000, 60);
    for (int64_t second = 1; second <= 100; ++second) {  // a 100 s epoch, one batch a second
      term.seconds += 1;
      progress.update(60 * second, 0.2);
    }
    progress.epoch_end(stats(epoch));
  }
  const std::string text = term.out.str();
  CHECK(text.find('\r') == std::string::npos);
  CHECK(text.find('\x1b') == std::string::npos);
  CHECK(std::count(text.begin(), text.end(), '\n') == 2 * (3 + 1));  // at 30, 60 and 90 s, then the summary
  CHECK_THAT(text, StartsWith("train epoch 1/2: 30% (step 30/100, 1800/6000 samples), loss 0.20000, 60 samples/s, ETA 1:10\n"));
  CHECK_THAT(text, EndsWith("train epoch 2/2: train loss 0.40000, test loss 0.45000, 1.00 s, 1000 samples/s\n"));
}

TEST_CASE("short epochs without a terminal log only their summary", "[progress]") {
  FakeTerminal term;
  ProgressReporter progress(term.options(false));
  progress.epoch_start("finetune", 1, 1, 100);
  CHECK(std::isnan(progress.running_loss()));
  term.seconds += 0.5;
  progress.update(50, 1.0);
  progress.update(50, 9.0);  // no new samples: nothing to weigh
  progress.update(100, 3.0);
  CHECK(progress.running_loss() == Approx(2.0));
  progress.epoch_end(stats(1));
  CHECK(term.out.str() == "finetune epoch 1/1: train loss 0.40000, test loss 0.45000, 1.00 s, 1000 samples/s\n");
}
