// The latent-space commands (encode, decode, interpolate, sample, manifold) on zoo specs trained for one
// epoch on a slice of Fashion-MNIST: what they write, that decoding encoded codes reproduces the model's
// reconstructions bit for bit, and their errors.
#include <catch2/catch.hpp>

#include "cli_util.h"
#include "fashion_mnist_util.h"
#include "file_test_util.h"
#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/latent.h"
#include "tools/npy.h"

#include <cmath>
#include <filesystem>

using namespace flowgrad;
using Catch::Contains;
using testing::TempDir;
namespace fs = std::filesystem;

namespace {

using testing::have_fashion_mnist;
using testing::test_images;

const std::string zoo = FLOWGRAD_SOURCE_DIR "/zoo/";

// A copy of a zoo spec training on the first `train` and `test` samples, written into `dir`.
std::string sliced(const std::string& spec, const TempDir& dir, int64_t train, int64_t test) {
  std::string text = testing::read_bytes(zoo + spec);
  const std::string data = "{dataset: fashion-mnist";
  text.replace(text.find(data), data.size(), fmt::format("{}, train_limit: {}, test_limit: {}", data, train, test));
  testing::write_bytes(dir.file(spec), text);
  return dir.file(spec);
}

}  // namespace

TEST_CASE("latent: paths between codes, normal quantiles and picture shapes", "[latent]") {
  const auto linear = interpolate_codes({0, 2}, {4, -2}, 5, false);
  REQUIRE(linear.size() == 5);
  CHECK(linear.front() == std::vector<float>{0, 2});
  CHECK(linear[1] == std::vector<float>{1, 1});
  CHECK(linear.back() == std::vector<float>{4, -2});
  // Slerp between orthogonal unit codes stays on the unit circle; parallel codes fall back to linear.
  for (const auto& code : interpolate_codes({1, 0}, {0, 1}, 7, true)) CHECK(std::hypot(code[0], code[1]) == Approx(1.0));
  CHECK(interpolate_codes({1, 1}, {2, 2}, 3, true)[1] == std::vector<float>{1.5f, 1.5f});
  CHECK(normal_quantile(0.5) == Approx(0.0).margin(1e-12));
  CHECK(normal_quantile(0.975) == Approx(1.959964).epsilon(1e-6));
  CHECK(normal_quantile(0.025) == Approx(-1.959964).epsilon(1e-6));
  CHECK(normal_draws(3, 2, 5) == normal_draws(3, 2, 5));
  CHECK(normal_draws(3, 2, 5) != normal_draws(3, 2, 6));
  CHECK(picture_shape({784}, "x") == Shape{28, 28});
  CHECK(picture_shape({1, 5, 7}, "x") == Shape{5, 7});
  CHECK_THROWS_WITH(picture_shape({20}, "'z'"), Contains("'z' holds samples of shape [20]"));
  const auto rows = grid_rows(std::vector<float>{1, 2, 3}, 3, 1, 2);
  REQUIRE(rows.size() == 2);
  CHECK(rows[1] == std::vector<float>{3, 0});
}

TEST_CASE("latent: encode and decode reproduce the model's reconstructions, interpolate and manifold draw a 2-D code",
          "[latent][cli]") {
  if (!have_fashion_mnist()) return;
  TempDir dir("latent_deep");
  const std::string spec = sliced("deep.yaml", dir, 512, 64);
  CliResult trained = run_flowgrad("train " + spec + " --epochs 1 --quiet --out " + dir.file("run"));
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  const std::string model = spec + " --checkpoint " + dir.file("run/checkpoint.fgck");

  CliResult encoded = run_flowgrad("encode " + model + " --out " + dir.file("codes.npy") + " --labels " + dir.file("labels.npy"));
  INFO(encoded.output);
  REQUIRE(encoded.status == 0);
  CHECK_THAT(encoded.output, Contains("'code' of the 64 test samples"));
  CHECK(read_npy(dir.file("codes.npy")).shape == Shape{64, 2});
  const NpyArray labels = read_npy(dir.file("labels.npy"));
  CHECK(labels.shape == Shape{64});
  CHECK(labels.dtype == NpyDType::i4);

  // The whole model on the same images: decoding the encoded codes gives its reconstructions exactly.
  write_npy(dir.file("images.npy"), test_images(64));
  REQUIRE(run_flowgrad("run " + model + " --input x=" + dir.file("images.npy") + " --fetch reconstruction=" +
                       dir.file("own.npy") + " --fetch code=" + dir.file("own_codes.npy")).status == 0);
  CHECK(testing::read_bytes(dir.file("codes.npy")) == testing::read_bytes(dir.file("own_codes.npy")));
  CliResult decoded = run_flowgrad("decode " + model + " --codes " + dir.file("codes.npy") + " --out " + dir.file("decoded.npy") +
                                   " --png " + dir.file("decoded.png"));
  INFO(decoded.output);
  REQUIRE(decoded.status == 0);
  CHECK(testing::read_bytes(dir.file("decoded.npy")) == testing::read_bytes(dir.file("own.npy")));
  CHECK(fs::exists(dir.file("decoded.png")));

  CliResult path = run_flowgrad("interpolate " + model + " --from 3 --to 5 --steps 4 --png " + dir.file("path.png") + " --out " +
                                dir.file("path.npy"));
  INFO(path.output);
  REQUIRE(path.status == 0);
  CHECK(fs::exists(dir.file("path.png")));
  // The path's ends are the two images' reconstructions.
  const NpyArray steps = read_npy(dir.file("path.npy"));
  const NpyArray own = read_npy(dir.file("own.npy"));
  REQUIRE(steps.shape == Shape{4, 784});
  const auto* step = reinterpret_cast<const float*>(steps.bytes.data());
  const auto* reconstruction = reinterpret_cast<const float*>(own.bytes.data());
  for (int64_t i = 0; i < 784; i += 97) {
    CHECK(step[i] == Approx(reconstruction[3 * 784 + i]).margin(1e-5));
    CHECK(step[3 * 784 + i] == Approx(reconstruction[5 * 784 + i]).margin(1e-5));
  }
  CliResult beyond = run_flowgrad("interpolate " + model + " --from 3 --to 64 --png " + dir.file("never.png"));
  CHECK(beyond.status == 2);
  CHECK_THAT(beyond.output, Contains("test image 64 does not exist") && Contains("has 64"));

  CliResult plane = run_flowgrad("manifold " + model + " --n 4 --png " + dir.file("manifold.png"));
  INFO(plane.output);
  REQUIRE(plane.status == 0);
  CHECK(fs::exists(dir.file("manifold.png")));
  CHECK(fs::exists(dir.file("manifold-codes.png")));
  CHECK_THAT(plane.output, Contains("over the test codes' range"));

  CliResult no_prior = run_flowgrad("sample " + model + " --png " + dir.file("never.png"));
  CHECK(no_prior.status == 2);
  CHECK_THAT(no_prior.output, Contains("declares no prior") && Contains("prior: normal"));
  CliResult nothing = run_flowgrad("decode " + model + " --codes " + dir.file("codes.npy"));
  CHECK(nothing.status == 2);
  CHECK_THAT(nothing.output, Contains("--out FILE.npy, --png FILE.png or both"));
  CliResult untrained = run_flowgrad("encode " + spec + " --out " + dir.file("never.npy"));
  CHECK(untrained.status == 2);
  CHECK_THAT(untrained.output, Contains("encode needs trained parameters"));
  write_npy(dir.file("wide.npy"), Tensor({4, 3}, std::vector<float>(12)));
  CliResult wide = run_flowgrad("decode " + model + " --codes " + dir.file("wide.npy") + " --out " + dir.file("never.npy"));
  CHECK(wide.status == 2);
  CHECK_THAT(wide.output, Contains("takes codes of 2 values each"));
  CHECK_FALSE(fs::exists(dir.file("never.npy")));
  CHECK_FALSE(fs::exists(dir.file("never.png")));
}

TEST_CASE("latent: sample draws a VAE's prior reproducibly, and manifold refuses a code that is not 2-D", "[latent][cli]") {
  if (!have_fashion_mnist()) return;
  TempDir dir("latent_vae");
  const std::string spec = sliced("vae.yaml", dir, 256, 64);
  REQUIRE(run_flowgrad("train " + spec + " --epochs 1 --quiet --out " + dir.file("run")).status == 0);
  const std::string model = spec + " --checkpoint " + dir.file("run/checkpoint.fgck");
  CliResult drawn = run_flowgrad("sample " + model + " --n 6 --seed 3 --out " + dir.file("a.npy") + " --png " + dir.file("a.png"));
  INFO(drawn.output);
  REQUIRE(drawn.status == 0);
  CHECK(read_npy(dir.file("a.npy")).shape == Shape{6, 784});
  CHECK(fs::exists(dir.file("a.png")));
  REQUIRE(run_flowgrad("sample " + model + " --n 6 --seed 3 --out " + dir.file("b.npy")).status == 0);
  REQUIRE(run_flowgrad("sample " + model + " --n 6 --seed 4 --out " + dir.file("c.npy")).status == 0);
  CHECK(testing::read_bytes(dir.file("a.npy")) == testing::read_bytes(dir.file("b.npy")));
  CHECK(testing::read_bytes(dir.file("a.npy")) != testing::read_bytes(dir.file("c.npy")));
  // encode reads the posterior mean by default.
  REQUIRE(run_flowgrad("encode " + model + " --out " + dir.file("mu.npy")).status == 0);
  CHECK(read_npy(dir.file("mu.npy")).shape == Shape{64, 20});
  CliResult plane = run_flowgrad("manifold " + model + " --png " + dir.file("never.png"));
  CHECK(plane.status == 2);
  CHECK_THAT(plane.output, Contains("2-D code") && Contains("'z' holds 20 values per sample"));
  CHECK_FALSE(fs::exists(dir.file("never.png")));
}
