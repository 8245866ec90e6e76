// The spec language's features through the `flowgrad` program: ops with their attributes, feeding any value
// to `run` and `eval`, and the field's specs (tests/specs/field) trained on a slice of Fashion-MNIST, then
// evaluated and decoded as a user would.
#include <catch2/catch.hpp>

#include "cli_util.h"
#include "fashion_mnist_util.h"
#include "file_test_util.h"
#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/npy.h"

#include <filesystem>
#include <fstream>
#include <sstream>

using namespace flowgrad;
using Catch::Contains;
using testing::TempDir;
namespace fs = std::filesystem;

namespace {

using testing::have_fashion_mnist;
using testing::test_images;

const std::string zoo = FLOWGRAD_SOURCE_DIR "/zoo/";
const std::string field = FLOWGRAD_SOURCE_DIR "/tests/specs/field/";

// A copy of a field spec training on the first `train` and `test` samples, written into `dir`.
std::string sliced(const std::string& spec, const TempDir& dir, int64_t train, int64_t test) {
  std::string text = testing::read_bytes(spec == "vae.yaml" ? zoo + spec : field + spec);
  const std::string data = "{dataset: fashion-mnist";
  text.replace(text.find(data), data.size(), fmt::format("{}, train_limit: {}, test_limit: {}", data, train, test));
  testing::write_bytes(dir.file(spec), text);
  return dir.file(spec);
}

std::string metrics_header(const std::string& folder) {
  std::ifstream in(folder + "/metrics.csv");
  std::string header;
  std::getline(in, header);
  return header;
}

}  // namespace

TEST_CASE("cli: ops lists each op's attributes, and ops NAME describes an op or a layer", "[cli][ops]") {
  CliResult all = run_flowgrad("ops");
  CHECK(all.status == 0);
  CHECK_THAT(all.output, Contains("rate: number (required), seed: integer = 0") &&
                             Contains("reduction: mean | sum | sum_over_batch_size = mean") && Contains("vae_latent"));
  CliResult one = run_flowgrad("ops kl_sparsity");
  CHECK(one.status == 0);
  CHECK_THAT(one.output, Contains("inputs: 1") && Contains("rho") && Contains("default 0.05") && Contains("gradient: yes"));
  CliResult layer = run_flowgrad("ops vae_latent");
  CHECK(layer.status == 0);
  CHECK_THAT(layer.output, Contains("(layer)") && Contains("units") && Contains("required") && Contains("sample | mean"));
  CliResult unknown = run_flowgrad("ops kl_norml");
  CHECK(unknown.status == 2);
  CHECK_THAT(unknown.output, Contains("did you mean 'kl_normal'"));
}

TEST_CASE("cli: run feeds any value in place of what computes it, reshaping samples like the data loader", "[cli][run]") {
  TempDir dir("run_values");
  std::vector<float> pixels(4 * 784);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<float>(i % 89) / 89.0f;
  write_npy(dir.file("images.npy"), Tensor({4, 28, 28}, pixels));  // fed to x [batch, 784]
  CliResult whole = run_flowgrad("run " + zoo + "dense.yaml --input x=" + dir.file("images.npy") + " --fetch code=" +
                                 dir.file("code.npy") + " --fetch reconstruction=" + dir.file("full.npy"));
  INFO(whole.output);
  REQUIRE(whole.status == 0);
  CHECK(read_npy(dir.file("code.npy")).shape == Shape{4, 32});
  // The decoder alone, on the codes (an output's name reaches its value, `encoding`).
  CliResult decoded = run_flowgrad("run " + zoo + "dense.yaml --input code=" + dir.file("code.npy") +
                                   " --fetch reconstruction=" + dir.file("decoded.npy"));
  INFO(decoded.output);
  REQUIRE(decoded.status == 0);
  CHECK(testing::read_bytes(dir.file("decoded.npy")) == testing::read_bytes(dir.file("full.npy")));

  write_npy(dir.file("short.npy"), Tensor({4, 31}, std::vector<float>(4 * 31)));
  CliResult wrong = run_flowgrad("run " + zoo + "dense.yaml --input encoding=" + dir.file("short.npy") +
                                 " --fetch reconstruction=" + dir.file("never.npy"));
  CHECK(wrong.status == 2);
  CHECK_THAT(wrong.output, Contains("'encoding' takes 4 samples of 32 values each") && Contains("[4, 31]"));
  CliResult needs_x = run_flowgrad("run " + zoo + "dense.yaml --input code=" + dir.file("code.npy") + " --fetch loss=" +
                                   dir.file("never.npy"));
  CHECK(needs_x.status == 2);
  CHECK_THAT(needs_x.output, Contains("need input 'x'"));
  CHECK_FALSE(fs::exists(dir.file("never.npy")));
}

TEST_CASE("cli: the VAE spec trains, reports its KL, evaluates, and decodes fed codes bit for bit", "[cli][field]") {
  if (!have_fashion_mnist()) return;
  TempDir dir("field_vae");
  const std::string spec = sliced("vae.yaml", dir, 1024, 256);
  CliResult trained = run_flowgrad("train " + spec + " --epochs 1 --out " + dir.file("run"));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(metrics_header(dir.file("run")) ==
        "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_reconstruction_error,test_kl");
  CliResult eval = run_flowgrad("eval " + spec + " --checkpoint " + dir.file("run/checkpoint.fgck"));
  INFO(eval.output);
  CHECK(eval.status == 0);
  CHECK_THAT(eval.output, Contains("(256 test samples)") && Contains("test loss: ") && Contains("test kl: "));
  // eval reproduces the run's test figures: both draw from the evaluation stream.
  std::ifstream csv(dir.file("run/metrics.csv"));
  std::string header, row;
  std::getline(csv, header);
  std::getline(csv, row);
  std::istringstream cells(row);
  std::string cell;
  for (int i = 0; i < 4; ++i) std::getline(cells, cell, ',');
  CHECK_THAT(eval.output, Contains("test loss: " + cell));

  write_npy(dir.file("images.npy"), test_images(8));
  const std::string checkpoint = " --checkpoint " + dir.file("run/checkpoint.fgck");
  CliResult encoded = run_flowgrad("run " + spec + checkpoint + " --input x=" + dir.file("images.npy") + " --fetch z=" +
                                   dir.file("z.npy") + " --fetch reconstruction=" + dir.file("own.npy"));
  REQUIRE(encoded.status == 0);
  CliResult decoded = run_flowgrad("run " + spec + checkpoint + " --input z=" + dir.file("z.npy") + " --fetch reconstruction=" +
                                   dir.file("decoded.npy"));
  REQUIRE(decoded.status == 0);
  CHECK(testing::read_bytes(dir.file("decoded.npy")) == testing::read_bytes(dir.file("own.npy")));
  // eval --input: codes in place of the encoder's, one row per test sample.
  CliResult rows = run_flowgrad("eval " + spec + checkpoint + " --input z=" + dir.file("z.npy"));
  CHECK(rows.status == 2);
  CHECK_THAT(rows.output, Contains("256 samples"));
}

TEST_CASE("cli: the stacked spec trains its stages with IDX labels and evaluates every loss and the accuracy", "[cli][field]") {
  if (!have_fashion_mnist()) return;
  TempDir dir("field_stacked");
  const std::string spec = sliced("stacked.yaml", dir, 1024, 256);
  CliResult trained = run_flowgrad("train " + spec + " --epochs 1 --out " + dir.file("run"));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(metrics_header(dir.file("run")) == "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_accuracy");
  CliResult eval = run_flowgrad("eval " + spec + " --checkpoint " + dir.file("run/checkpoint.fgck"));
  INFO(eval.output);
  CHECK(eval.status == 0);
  for (const char* name : {"layer1", "layer2", "finetune", "classify", "accuracy"})
    CHECK_THAT(eval.output, Contains(fmt::format("test {}: ", name)));
}

TEST_CASE("cli: the denoising and regularized specs train and report their terms", "[cli][field]") {
  if (!have_fashion_mnist()) return;
  TempDir dir("field_denoising");
  const std::string denoising = sliced("denoising.yaml", dir, 1024, 256);
  CliResult trained = run_flowgrad("train " + denoising + " --epochs 1 --out " + dir.file("denoising"));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(fs::exists(dir.file("denoising/reconstructions.png")));
  CHECK(metrics_header(dir.file("denoising")) == "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_clean_input_mse");
  const std::string regularized = sliced("regularized.yaml", dir, 1024, 256);
  trained = run_flowgrad("train " + regularized + " --epochs 1 --out " + dir.file("regularized"));
  REQUIRE(trained.status == 0);
  CHECK(metrics_header(dir.file("regularized")) ==
        "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_mse,test_sparsity,test_jacobian_norm,test_activity,"
        "test_mean_activation");
}
