// Weights out and back in (NPZ in flowgrad's and PyTorch's layouts, checkpoints) and the ONNX export of the
// zoo's dense, convolutional and recurrent models. numpy, onnx and torch checks run through Debian's
// /usr/bin/python3 when it has those modules (CI installs python3-onnx), and are skipped with a warning
// otherwise.
#include <catch2/catch.hpp>

#include "cli_util.h"
#include "file_test_util.h"
#include "graph/random.h"
#include "tools/checkpoint.h"
#include "tools/onnx_export.h"
#include "tools/weights.h"

#include <algorithm>
#include <cstdlib>

using namespace flowgrad;
using namespace flowgrad::testing;
using Catch::Contains;

namespace {

const std::string zoo = FLOWGRAD_SOURCE_DIR "/zoo/";
const std::string checks = FLOWGRAD_SOURCE_DIR "/tests/tools/";

bool python_has(const std::string& modules) {
  const std::string command = std::string(FLOWGRAD_PYTHON) + " -c 'import " + modules + "' 2>/dev/null";
  return std::system(command.c_str()) == 0;
}

CliResult python(const std::string& arguments) {
  CliResult result;
  std::string command = std::string(FLOWGRAD_PYTHON) + " " + arguments + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::array<char, 4096> buffer{};
  for (size_t n; (n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0;) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Every parameter drawn uniformly from [-0.3, 0.3): biases too, so that misplaced ones show.
ParamStore random_parameters(const Spec& spec) {
  ParamStore store;
  store.materialize(spec.graph, 1);
  for (auto& [name, tensor] : store.tensors())
    for (int64_t i = 0; i < tensor.numel(); ++i)
      tensor.f32()[i] = static_cast<float>(0.6 * random_uniform(5, hash_name(name), static_cast<uint64_t>(i)) - 0.3);
  return store;
}

void write_input(const std::string& path, Shape shape) {
  shape[0] = 3;
  Tensor x(TensorType{shape, DType::f32});
  for (int64_t i = 0; i < x.numel(); ++i) x.f32()[i] = static_cast<float>(random_uniform(9, 0, static_cast<uint64_t>(i)));
  write_npy(path, x);
}

bool same_values(const Tensor& a, const Tensor& b) {
  return a.type() == b.type() && std::equal(a.span().begin(), a.span().end(), b.span().begin());
}

}  // namespace

TEST_CASE("weights go out as NPZ in both layouts and come back in, as from checkpoints", "[export]") {
  TempDir dir("export");
  for (const char* model : {"dense", "lstm", "gru", "conv"}) {
    INFO(model);
    const Spec spec = load_spec(zoo + model + ".yaml");
    const ParamStore trained = random_parameters(spec);
    write_weights_npz(dir.file("w.npz"), spec, trained);
    write_weights_npz(dir.file("torch.npz"), spec, trained, WeightLayout::torch);
    save_checkpoint(dir.file("c.fgck"), {.spec_hash = spec.hash}, trained);
    const NpzArrays arrays = read_npz(dir.file("w.npz"));
    CHECK(arrays.size() == trained.tensors().size());
    for (const char* file : {"w.npz", "torch.npz", "c.fgck"}) {
      INFO(file);
      ParamStore loaded;
      loaded.materialize(spec.graph, 2);  // other initial values than `trained`
      load_weights(dir.file(file), spec, spec.graph, loaded);
      for (const auto& [name, tensor] : loaded.tensors()) CHECK(same_values(tensor, trained.get(name)));
    }
  }
  const Spec dense = load_spec(zoo + "dense.yaml");
  const NpzArrays torch = read_npz(dir.file("torch.npz"));  // conv's, the last written
  CHECK(torch.front().first.find('/') == std::string::npos);
  write_weights_npz(dir.file("dense.npz"), dense, random_parameters(dense), WeightLayout::torch);
  const NpzArrays linear = read_npz(dir.file("dense.npz"));
  REQUIRE(linear.size() == 4);
  const auto weight = std::find_if(linear.begin(), linear.end(), [](const auto& a) { return a.first == "encoding.weight"; });
  REQUIRE(weight != linear.end());
  CHECK(weight->second.shape == Shape{32, 784});  // nn.Linear's [out, in]
  // A file without a parameter the spec needs is refused, naming both.
  write_npz(dir.file("partial.npz"), {*weight});
  ParamStore store;
  store.materialize(dense.graph, 1);
  check_error(error_from([&] { load_weights(dir.file("partial.npz"), dense, dense.graph, store); }), ErrorKind::io,
              {"partial.npz", "has no parameter"});
  write_bytes(dir.file("junk.npz"), "PK not really a zip");
  check_error(error_from([&] { load_weights(dir.file("junk.npz"), dense, dense.graph, store); }), ErrorKind::io, {"junk.npz"});
}

TEST_CASE("numpy reads flowgrad's NPZ files and PyTorch loads the torch layout into its modules", "[export]") {
  if (!python_has("numpy")) {
    WARN("/usr/bin/python3 has no numpy (Debian's python3-numpy); skipped");
    return;
  }
  TempDir dir("export_py");
  const Spec spec = load_spec(zoo + "lstm.yaml");
  write_weights_npz(dir.file("w.npz"), spec, random_parameters(spec));
  CliResult r = python("-c \"import numpy as np; w = np.load('" + dir.file("w.npz") +
                       "'); print(sorted(w.keys())[:2], w['encoder/kernel'].shape, w['encoder/kernel'].dtype)\"");
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK_THAT(r.output, Contains("['decoded/bias', 'decoded/kernel'] (28, 512) float32"));
  if (!python_has("torch")) {
    WARN("/usr/bin/python3 has no torch (Debian's python3-torch); the state_dict check is skipped");
    return;
  }
  // The PyTorch twin of zoo/lstm.yaml takes the torch layout with load_state_dict(strict=True) and then
  // reconstructs what flowgrad reconstructs.
  REQUIRE(run_flowgrad("export " + zoo + "lstm.yaml --params " + dir.file("w.npz") + " --npz " + dir.file("t.npz") +
                       " --layout torch").status == 0);
  write_input(dir.file("x.npy"), {0, 28, 28});
  REQUIRE(run_flowgrad("run " + zoo + "lstm.yaml --params " + dir.file("w.npz") + " --input x=" + dir.file("x.npy") +
                       " --fetch reconstruction=" + dir.file("y.npy")).status == 0);
  r = python(checks + "torch_check.py " + dir.file("t.npz") + " " + dir.file("x.npy") + " " + dir.file("y.npy"));
  INFO(r.output);
  CHECK(r.status == 0);
}

TEST_CASE("the ONNX export of dense, conv and recurrent models passes onnx.checker and computes what flowgrad does",
          "[export]") {
  TempDir dir("onnx");
  {  // The model is well-formed bytes whatever python has: an ir_version and the opset import.
    const Spec spec = load_spec(zoo + "dense.yaml");
    const std::string model = onnx_model(spec, random_parameters(spec));
    CHECK(model.size() > 2 * 784 * 32 * 4);  // both kernels as raw floats
    CHECK(model.find("flowgrad") != std::string::npos);
    check_error(error_from([&] { onnx_model(spec, random_parameters(spec), {"nothing"}); }), ErrorKind::spec, {"'nothing'"});
  }
  if (!python_has("onnx, numpy")) {
    WARN("/usr/bin/python3 has no onnx (Debian's python3-onnx); the checker and the numerical check are skipped");
    return;
  }
  struct Case {
    std::string model, output;
    Shape input;
    std::string from = {};  // the decoder half: the model's input is this value
  };
  for (const Case& c : {Case{"dense", "reconstruction", {0, 784}}, Case{"dense", "code", {0, 784}},
                        Case{"dense", "reconstruction", {0, 784}, "code"}, Case{"conv", "reconstruction", {0, 1, 28, 28}},
                        Case{"conv", "code", {0, 1, 28, 28}}, Case{"conv", "reconstruction", {0, 1, 28, 28}, "code"},
                        Case{"lstm", "reconstruction", {0, 28, 28}}, Case{"lstm", "reconstruction", {0, 28, 28}, "code"},
                        Case{"gru", "reconstruction", {0, 28, 28}}}) {
    INFO(c.model << " " << c.output << " from " << c.from);
    const Spec spec = load_spec(zoo + c.model + ".yaml");
    write_weights_npz(dir.file("w.npz"), spec, random_parameters(spec));
    write_input(dir.file("x.npy"), c.input);
    const std::string params = " --params " + dir.file("w.npz");
    CliResult exported = run_flowgrad("export " + zoo + c.model + ".yaml" + params + " --onnx " + dir.file("m.onnx") +
                                      " --output " + c.output + (c.from.empty() ? "" : " --from " + c.from));
    INFO(exported.output);
    REQUIRE(exported.status == 0);
    REQUIRE(run_flowgrad("run " + zoo + c.model + ".yaml" + params + " --input x=" + dir.file("x.npy") + " --fetch " +
                         c.output + "=" + dir.file("y.npy") + " --fetch code=" + dir.file("code.npy")).status == 0);
    const std::string input = c.from.empty() ? dir.file("x.npy") : dir.file("code.npy");
    CliResult checked = python(checks + "onnx_check.py " + dir.file("m.onnx") + " " + input + " " + dir.file("y.npy") +
                               " " + c.output);
    INFO(checked.output);
    CHECK(checked.status == 0);
    CHECK_THAT(checked.output, Contains("checker passed"));
  }
}
