// report.html in a browser: Debian's headless Chromium loads the page of a small run and reports, from a
// script added to a copy of it, that every image decoded and the graph and tables are there. Skipped with a
// warning when Chromium is not installed (CI installs it).
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "graph/random.h"
#include "tools/npy.h"
#include "tools/runner.h"

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>

using namespace flowgrad;
using namespace flowgrad::testing;
using Catch::Contains;

namespace {

const char* chromium = "/usr/bin/chromium";

// Chromium's DOM after the page's scripts ran (the checks write their verdict into it).
std::string rendered_dom(const std::string& page, const std::string& profile) {
  const std::string command = std::string(chromium) +
                              " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run "
                              "--disable-background-networking --disable-component-update --disable-sync "
                              "--virtual-time-budget=5000 --user-data-dir=" + profile + " --dump-dom 'file://" + page +
                              "' 2>/dev/null";
  std::string out;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return out;
  std::array<char, 4096> buffer{};
  for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) out.append(buffer.data(), n);
  pclose(pipe);
  return out;
}

}  // namespace

TEST_CASE("report.html loads in Chromium with every picture, the graph and the tables", "[report]") {
  if (!std::filesystem::exists(chromium)) {
    WARN("Chromium is not installed (Debian's chromium); skipped");
    return;
  }
  TempDir dir("report");
  for (auto [file, count] : {std::pair{"train.npy", 64}, std::pair{"test.npy", 16}}) {
    Tensor x({count, 1, 8, 8}, std::vector<float>(static_cast<size_t>(count * 64)));
    for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(random_uniform(1, 0, static_cast<uint64_t>(i)));
    write_npy(dir.file(file), x);
  }
  std::ofstream(dir.file("tiny.yaml")) << "name: tiny\ninputs: {x: [batch, 64]}\nlayers:\n"
                                          "  - {name: code, op: dense, in: x, units: 2}\n"
                                          "  - {name: out, op: dense, in: code, units: 64, activation: sigmoid}\n"
                                          "outputs: {reconstruction: out, code: code}\nloss: {op: mse, in: [out, x]}\n"
                                          "train:\n  data: {dataset: npy, train: " + dir.file("train.npy") + ", test: " +
                                          dir.file("test.npy") + "}\n  batch: 16\n  epochs: 2\n  report: {latent: code}\n";
  Spec spec = load_spec(dir.file("tiny.yaml"));
  const std::string folder = train_spec(spec, read_train_config(spec), {.out = dir.file("run"), .terminal = false});
  std::ifstream in(folder + "/report.html");
  std::string page((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  page.insert(page.rfind("</body>"), R"(<script>
window.addEventListener("load", () => {
  const images = [...document.images];
  const decoded = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const verdict = document.createElement("p");
  verdict.id = "verdict";
  verdict.textContent = `images ${decoded}/${images.length} svg ${document.querySelectorAll(".graph svg").length} ` +
                        `rows ${document.querySelectorAll("table tr").length}`;
  document.body.appendChild(verdict);
});
</script>)");
  std::ofstream(folder + "/check.html") << page;
  const std::string dom = rendered_dom(folder + "/check.html", dir.file("profile"));
  INFO(dom.substr(0, 400));
  const bool graph = std::filesystem::exists(folder + "/model.svg");
  // loss, reconstructions and latent map; 3 metrics rows (header + 2 epochs) + 4 model rows (header, 2 layers, total).
  CHECK_THAT(dom, Contains(std::string("images 3/3 svg ") + (graph ? "1" : "0") + " rows 7"));
}
