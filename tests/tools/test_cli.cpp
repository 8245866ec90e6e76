#include <catch2/catch.hpp>

#include "cli_util.h"
#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/npy.h"

#include <filesystem>
#include <fstream>

using namespace flowgrad;
namespace fs = std::filesystem;
using Catch::Contains;

namespace {

const std::string zoo = FLOWGRAD_SOURCE_DIR "/zoo/";

struct TempDir {
  fs::path path;
  explicit TempDir(const std::string& name) : path(fs::temp_directory_path() / ("flowgrad_cli_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string& file) const { return (path / file).string(); }
};

}  // namespace

TEST_CASE("cli: summary prints the Keras-style table", "[cli]") {
  CliResult r = run_flowgrad("summary " + zoo + "dense.yaml");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("encoding") && Contains("25,120") && Contains("25,872") && Contains("Total params: 50,992"));
}

TEST_CASE("cli: ops lists ops and layers", "[cli]") {
  CliResult r = run_flowgrad("ops");
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("binary_crossentropy") && Contains("layers") && Contains("dense"));
}

TEST_CASE("cli: dot writes a graph that graphviz renders", "[cli]") {
  TempDir dir("dot");
  CliResult r = run_flowgrad("dot " + zoo + "dense.yaml --grad --out " + dir / "train.dot");
  CHECK(r.status == 0);
  CHECK(fs::file_size(dir / "train.dot") > 0);
  if (fs::exists("/usr/bin/dot")) CHECK(fs::file_size(dir / "train.svg") > 0);
  CliResult forward = run_flowgrad("dot " + zoo + "deep.yaml");
  CHECK(forward.status == 0);
  CHECK_THAT(forward.output, Contains("digraph") && Contains("[256, 512]"));
}

TEST_CASE("cli: run feeds NPY inputs and fetches values and gradients", "[cli]") {
  TempDir dir("run");
  std::vector<float> x(4 * 784);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 97) / 97.0f;
  write_npy(dir / "x.npy", Tensor({4, 784}, x));
  CliResult r = run_flowgrad("run " + zoo + "dense.yaml --input x=" + dir / "x.npy" + " --fetch reconstruction=" +
                             dir / "y.npy" + " --fetch encoding/kernel/grad=" + dir / "g.npy" + " --fetch loss=" + dir / "loss.npy");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(read_npy(dir / "y.npy").shape == Shape{4, 784});
  CHECK(read_npy(dir / "g.npy").shape == Shape{784, 32});
  Tensor loss = to_tensor(read_npy(dir / "loss.npy"), DType::f32);
  CHECK(loss.f32()[0] > 0.5f);  // untrained: about 0.69 for a sigmoid near 0.5
  CliResult missing = run_flowgrad("run " + zoo + "dense.yaml --input x=" + dir / "nope.npy" + " --fetch loss=" + dir / "l.npy");
  CHECK(missing.status == 3);
  CHECK_THAT(missing.output, Contains("nope.npy"));
}

TEST_CASE("cli: gradcheck of a spec passes", "[cli]") {
  CliResult r = run_flowgrad("gradcheck " + zoo + "dense.yaml");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("encoding/kernel") && Contains("PASS"));
}

TEST_CASE("cli: bench --json prints the figures", "[cli]") {
  CliResult r = run_flowgrad("bench " + zoo + "dense.yaml --batch 32 --threads 1 --json");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("\"ms_per_step\": ") && Contains("\"samples_per_s\": ") && Contains("\"gflops\": ") &&
                           Contains("\"peak_bytes\": "));
}

TEST_CASE("cli: train, eval, and a corrupted checkpoint", "[cli]") {
  if (!fs::exists(default_fashion_mnist_dir())) {
    WARN("Fashion-MNIST is not installed; skipped");
    return;
  }
  TempDir dir("train");
  CliResult trained = run_flowgrad("train " + zoo + "dense.yaml --epochs 1 --out " + dir / "run");
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CliResult eval = run_flowgrad("eval " + zoo + "dense.yaml --checkpoint " + dir / "run/checkpoint.fgck");
  CHECK(eval.status == 0);
  CHECK_THAT(eval.output, Contains("test loss: 0.3"));
  fs::copy_file(dir / "run/checkpoint.fgck", dir / "cut.fgck");
  fs::resize_file(dir / "cut.fgck", fs::file_size(dir / "cut.fgck") / 2);
  CliResult cut = run_flowgrad("eval " + zoo + "dense.yaml --checkpoint " + dir / "cut.fgck");
  CHECK(cut.status == 3);
  CHECK_THAT(cut.output, Contains("truncated"));
  // Checkpoints are keyed to the tensors they hold: zoo/linear.yaml has the dense model's parameters (names and
  // shapes), so it evaluates them; zoo/deep.yaml has others.
  CliResult same_parameters = run_flowgrad("eval " + zoo + "linear.yaml --checkpoint " + dir / "run/checkpoint.fgck");
  CHECK(same_parameters.status == 0);
  CliResult other = run_flowgrad("eval " + zoo + "deep.yaml --checkpoint " + dir / "run/checkpoint.fgck");
  CHECK(other.status == 3);
  CHECK_THAT(other.output, Contains("has no parameter"));
}
