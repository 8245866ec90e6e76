#include <catch2/catch.hpp>

#include "cli_util.h"
#include "file_test_util.h"
#include "flowgrad/version.h"
#include "graph/tensor.h"
#include "tools/dataset.h"
#include "tools/npy.h"

#include <filesystem>
#include <fstream>

using namespace flowgrad;
namespace fs = std::filesystem;
using Catch::Contains;
using flowgrad::testing::read_bytes;

namespace {

void write_text(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

const std::string zoo = FLOWGRAD_SOURCE_DIR "/zoo/";

struct CliDir {
  fs::path path;
  explicit CliDir(const std::string& name) : path(fs::temp_directory_path() / ("flowgrad_cli_" + name)) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~CliDir() { fs::remove_all(path); }
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

TEST_CASE("cli: dot prints the forward graph and writes the training graph", "[cli]") {
  CliDir dir("dot");
  CliResult r = run_flowgrad("dot " + zoo + "dense.yaml --grad --out " + dir / "train.dot");
  CHECK(r.status == 0);
  CHECK(fs::file_size(dir / "train.dot") > 0);
  CliResult forward = run_flowgrad("dot " + zoo + "deep.yaml");
  CHECK(forward.status == 0);
  CHECK_THAT(forward.output, Contains("digraph") && Contains("[256, 512]"));
}

TEST_CASE("cli: run feeds NPY inputs and fetches values and gradients", "[cli]") {
  CliDir dir("run");
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

// NAME/grad works for every output of a multi-output op: its first output, which NAME also names (the
// value is encoder:0), and the others by index. An output the loss does not read has a zero gradient.
TEST_CASE("cli: run fetches the gradient of every output of a multi-output op", "[cli]") {
  CliDir dir("run_grad_outputs");
  std::vector<float> x(2 * 28 * 28);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(i % 89) / 89.0f;
  write_npy(dir / "x.npy", Tensor({2, 28, 28}, x));
  std::string fetch;
  const std::pair<const char*, const char*> names[] = {
      {"encoder", "encoder"}, {"encoder:0", "encoder_0"}, {"encoder:1", "encoder_1"}, {"encoder:2", "encoder_2"}};
  for (const auto& [name, file] : names) fetch += fmt::format(" --fetch {}/grad={}", name, dir / (std::string(file) + ".npy"));
  CliResult r = run_flowgrad("run " + zoo + "lstm.yaml --input x=" + dir / "x.npy" + fetch);
  INFO(r.output);
  REQUIRE(r.status == 0);
  const Shape sequence = {2, 28, 128}, state = {2, 128};
  CHECK(read_npy(dir / "encoder.npy").shape == sequence);
  CHECK(read_npy(dir / "encoder_0.npy").shape == sequence);
  CHECK(read_npy(dir / "encoder_1.npy").shape == state);
  CHECK(read_npy(dir / "encoder_2.npy").shape == state);
  Tensor first = to_tensor(read_npy(dir / "encoder.npy"), DType::f32), zeroth = to_tensor(read_npy(dir / "encoder_0.npy"), DType::f32);
  CHECK(std::equal(first.f32(), first.f32() + first.numel(), zeroth.f32()));
  Tensor code = to_tensor(read_npy(dir / "encoder_1.npy"), DType::f32);  // the code feeds the decoder
  CHECK(std::any_of(code.f32(), code.f32() + code.numel(), [](float v) { return v != 0; }));
}

TEST_CASE("cli: gradcheck of a spec passes", "[cli]") {
  CliResult r = run_flowgrad("gradcheck " + zoo + "dense.yaml");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("encoding/kernel") && Contains("PASS"));
}

TEST_CASE("cli: train, eval, and a corrupted checkpoint", "[cli]") {
  if (!fs::exists(default_fashion_mnist_dir())) {
    WARN("Fashion-MNIST is not installed; skipped");
    return;
  }
  CliDir dir("train");
  CliResult trained = run_flowgrad("train " + zoo + "dense.yaml --epochs 1 --quiet --out " + dir / "run");
  INFO(trained.output);
  REQUIRE(trained.status == 0);
  CHECK(trained.output == "run folder: " + dir / "run" + "\n");  // --quiet: nothing else
  CliResult eval = run_flowgrad("eval " + zoo + "dense.yaml --checkpoint " + dir / "run/checkpoint.fgck");
  CHECK(eval.status == 0);
  CHECK_THAT(eval.output, Contains("test loss: 0.3"));
  REQUIRE(run_flowgrad("export " + zoo + "dense.yaml --checkpoint " + dir / "run/checkpoint.fgck" + " --npz " + dir / "w.npz" +
                       " --layout torch").status == 0);
  CliResult from_npz = run_flowgrad("eval " + zoo + "dense.yaml --params " + dir / "w.npz");
  CHECK(from_npz.output.substr(from_npz.output.find("test loss")) == eval.output.substr(eval.output.find("test loss")));
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

TEST_CASE("cli: --version says the version CMake sets", "[cli]") {
  CliResult r = run_flowgrad("--version");
  CHECK(r.status == 0);
  CHECK(r.output == "flowgrad " FLOWGRAD_VERSION "\n");
}

TEST_CASE("cli: a mistyped command or option gets a did-you-mean", "[cli]") {
  CliResult command = run_flowgrad("trian " + zoo + "dense.yaml");
  CHECK(command.status == 2);
  CHECK_THAT(command.output, Contains("unknown command 'trian' (did you mean 'train'?)"));
  CliResult option = run_flowgrad("train " + zoo + "dense.yaml --epoch 2");
  CHECK(option.status == 2);
  CHECK_THAT(option.output, Contains("'train' has no option '--epoch' (did you mean '--epochs'?)"));
}

TEST_CASE("cli: dot --out writes the format its extension names", "[cli]") {
  CliDir dir("dot_out");
  CliResult text = run_flowgrad("dot " + zoo + "dense.yaml --out " + dir / "g.dot");
  CHECK(text.status == 0);
  CHECK(fs::exists(dir / "g.dot"));
  CHECK_FALSE(fs::exists(dir / "g.svg"));
  CliResult bad = run_flowgrad("dot " + zoo + "dense.yaml --out " + dir / "g.txt");
  CHECK(bad.status == 2);
  CHECK_THAT(bad.output, Contains(".dot") && Contains(".svg") && Contains(".png"));
  if (!fs::exists("/usr/bin/dot")) return;
  for (const char* file : {"g.svg", "g.png"}) {
    CliResult r = run_flowgrad("dot " + zoo + "dense.yaml --grad --out " + dir / file);
    CHECK(r.status == 0);
    CHECK(r.output == "wrote " + dir / file + "\n");
  }
  CHECK_THAT(read_bytes(dir / "g.svg"), Contains("<svg"));
  CHECK(read_bytes(dir / "g.png").substr(1, 3) == "PNG");
  CHECK(fs::directory_iterator(dir.path) != fs::directory_iterator());
  for (const auto& entry : fs::directory_iterator(dir.path)) CHECK(entry.path().extension() != ".tmp");
}

TEST_CASE("cli: a model named after its file must have a valid name", "[cli]") {
  CliDir dir("stem");
  fs::copy_file(zoo + "linear.yaml", dir / "tmp.yaml");
  std::string text = read_bytes(dir / "tmp.yaml");
  text.erase(text.find("name: linear"), 12);
  write_text(dir / "My Model.yaml", text);
  CliResult r = run_flowgrad("summary '" + dir / "My Model.yaml" + "'");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Contains("My Model.yaml:1:1") && Contains("did you mean 'My_Model'?") && Contains("name:"));
}

TEST_CASE("cli: bench --json is JSON that a JSON parser reads", "[cli]") {
  CliResult r = run_flowgrad("bench " + zoo + "dense.yaml --batch 32 --threads 1 --json");
  INFO(r.output);
  REQUIRE(r.status == 0);
  CliDir dir("json");
  write_text(dir / "bench.json", r.output);
  const std::string check = std::string(FLOWGRAD_PYTHON) + " -c \"import json; d = json.load(open('" + dir / "bench.json" +
                            "')); assert d['spec'] == 'dense' and d['ms_per_step'] > 0 and d['batch'] == 32\"";
  if (fs::exists(FLOWGRAD_PYTHON)) CHECK(std::system(check.c_str()) == 0);
}

TEST_CASE("cli: u8 data is divided by 255 in run --input as in train", "[cli]") {
  CliDir dir("u8");
  NpyArray bytes{.shape = {2, 784}, .dtype = NpyDType::u1};
  std::vector<float> scaled(2 * 784);
  for (size_t i = 0; i < scaled.size(); ++i) {
    bytes.bytes.push_back(static_cast<std::byte>(i % 256));
    scaled[i] = static_cast<float>(i % 256) / 255.0f;
  }
  write_npy(dir / "u8.npy", bytes);
  write_npy(dir / "f32.npy", Tensor({2, 784}, scaled));
  for (const char* input : {"u8", "f32"})
    REQUIRE(run_flowgrad("run " + zoo + "dense.yaml --input x=" + dir / (std::string(input) + ".npy") + " --fetch loss=" +
                         dir / (std::string(input) + "_loss.npy")).status == 0);
  CHECK(read_bytes(dir / "u8_loss.npy") == read_bytes(dir / "f32_loss.npy"));
  // `scale` on u8 data would divide twice: refused.
  write_npy(dir / "test.npy", bytes);
  std::string spec = read_bytes(zoo + "dense.yaml");
  spec.replace(spec.find("data: {dataset: fashion-mnist}"), 30,
               "data: {dataset: npy, train: " + dir / "u8.npy" + ", test: " + dir / "test.npy" + ", scale: 0.5}");
  write_text(dir / "spec.yaml", spec);
  CliResult r = run_flowgrad("train " + dir / "spec.yaml" + " --out " + dir / "run");
  CHECK(r.status == 2);
  CHECK_THAT(r.output, Contains("u8") && Contains("scale"));
}
