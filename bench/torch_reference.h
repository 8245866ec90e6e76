// PyTorch's tuned reference (../shared/anchors/tuned.sh: GEMMs routed to oneDNN) run from a benchmark
// program, so that flowgrad's figures and PyTorch's come from one run: the machines' speed drifts by tens
// of percent within minutes, and only ratios measured side by side hold.
#pragma once

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <tuple>
#include <vector>

namespace flowgrad::bench {

// (anchors model key, batch, threads) -> PyTorch's median ms per training step.
using TorchSteps = std::map<std::tuple<std::string, int64_t, int>, double>;

// Whether the reference can run here: the anchors' scripts and Debian's python3-torch.
inline bool torch_available(const std::string& anchors) {
  return std::filesystem::exists(anchors + "/tuned.sh") &&
         std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

// Runs the reference for `models` (comma-separated anchors keys, e.g. "a,b") at one batch size and the
// given thread counts; callers ask torch_available() once first (it starts Python). Empty when it fails.
inline TorchSteps torch_steps(const std::string& anchors, const std::string& models, int64_t batch,
                              const std::vector<int>& threads) {
  TorchSteps result;
  const std::string command =
      fmt::format("sh '{}/tuned.sh' --models {} --batch {} --threads {} --repeats 7 --target-s 0.3 2>&1", anchors,
                  models, batch, fmt::join(threads, ","));
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  const std::regex line(R"(step \[tuned\] model=(\w) batch=(\d+) threads=(\d+) .*ms/step min/med/max=[\d.]+/([\d.]+)/)");
  char buffer[4096];
  while (fgets(buffer, sizeof buffer, pipe)) {
    std::smatch m;
    const std::string s(buffer);
    if (std::regex_search(s, m, line)) result[{m[1], std::stoll(m[2]), std::stoi(m[3])}] = std::stod(m[4]);
  }
  pclose(pipe);
  return result;
}

}  // namespace flowgrad::bench
