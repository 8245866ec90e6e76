// Runs that use the spec language's model features end to end, on small synthetic NPY data: labels fed to the
// graph with a metric column, staged schedules whose metrics and eval compute stage inputs in the graph,
// denoising runs that complete with their pictures, checkpoints keyed to their tensors, and resumption rules.
#include <catch2/catch.hpp>

#include "run_workspace.h"

#include "graph/plan.h"
#include "tools/feeds.h"
#include "tools/trainer.h"

#include <cmath>
#include <cstring>

using namespace flowgrad;
using testing::read;
using testing::train;
using testing::Workspace;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

// The workspace's samples with their labels fed to `y`, in batches of 16.
const std::string labelled_data = R"(
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy, train_labels: DIR/train_labels.npy,
         test_labels: DIR/test_labels.npy, labels: y}
  batch: 16)";

// A classifier of the synthetic labels on top of an autoencoder's code, staged: the autoencoder first, then
// the classifier on the codes (data_from) with the labels.
const std::string staged_spec = R"(
name: staged
inputs:
  x: [batch, 16]
  codes: [batch, 8]
  y: {shape: [batch], dtype: s32}
layers:
  - {name: enc, op: dense, in: x, units: 8, activation: sigmoid}
  - {name: dec, op: dense, in: enc, units: 16, activation: sigmoid}
  - {name: logits, op: dense, in: codes, units: 4}
outputs: {code: enc, reconstruction: dec}
losses:
  autoencoder: {op: mse, in: [dec, x]}
  classify: {op: categorical_crossentropy, in: [logits, y]}
metrics:
  accuracy: {op: accuracy, in: [logits, y]}
train:)" + labelled_data + R"(
  optimizer: {adam: {lr: 0.02}}
  stages:
    - {name: autoencoder, loss: autoencoder, train: [enc/*, dec/*], epochs: 2}
    - {name: classify, loss: classify, train: [logits/*], epochs: 6, data_from: code, input: codes}
)";

std::vector<std::string> csv_rows(const std::string& path) {
  std::vector<std::string> rows;
  std::istringstream in(read(path));
  for (std::string line; std::getline(in, line);) rows.push_back(line);
  return rows;
}

std::string cell(const std::string& row, size_t column) {
  std::istringstream in(row);
  std::string value;
  for (size_t i = 0; i <= column; ++i) std::getline(in, value, ',');
  return value;
}

}  // namespace

TEST_CASE("labels reach the graph: a staged classifier's accuracy is a metrics.csv column of every stage", "[runner][labels]") {
  Workspace w("labels");
  const std::string folder = train(w.spec(staged_spec), {.out = w.path("run")});
  const std::vector<std::string> rows = csv_rows(folder + "/metrics.csv");
  REQUIRE(rows.size() == 9);
  CHECK(rows[0] == "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_accuracy");
  CHECK(rows[1].starts_with("autoencoder,1,"));
  CHECK(!cell(rows[1], 6).empty());  // measured in the autoencoder stage too, codes computed in the graph
  const double last = std::stod(cell(rows[8], 6));
  CHECK((last >= 0 && last <= 1));
  CHECK(std::stod(cell(rows[8], 2)) < std::stod(cell(rows[3], 2)));  // the classifier learns from the labels
  CHECK(fs::exists(folder + "/metric_accuracy.png"));
  CHECK_THAT(read(folder + "/report.md"), Contains("test accuracy"));

  // eval of the staged spec: every loss and the metric over the test split, as training measured them.
  Spec spec = load_spec(w.path("model.yaml"));
  TrainConfig config = read_train_config(spec);
  Checkpoint checkpoint = load_checkpoint(folder + "/checkpoint.fgck");
  ParamStore store;
  store.materialize(spec.graph, 1);
  for (auto& [name, tensor] : store.tensors())
    if (checkpoint.tensors.contains(name))
      std::memcpy(tensor.data(), checkpoint.tensors.at(name).data(), tensor.type().bytes());
  DatasetSplits data = load_training_data(config.data);
  const TrainerOptions options = evaluation_options(spec, config);
  Evaluator evaluator(spec.graph, store, options);
  const std::vector<double> values = evaluator.means(data.test, {"autoencoder", "classify", "accuracy"});
  CHECK(values[2] == Approx(last).epsilon(1e-5));
  CHECK(std::stod(cell(rows[8], 3)) == Approx(values[1]).epsilon(1e-5));  // the classify stage's test loss
}

TEST_CASE("labels are fed with their samples, shuffled alike, in training and evaluation", "[runner][labels]") {
  Workspace w("aligned");
  // The labels are the arg-max of each sample's first four values, so scores = those values are always right:
  // accuracy 1 in evaluation, and training can only sharpen them (a scale above 1) when every shuffled batch
  // pairs samples with their own labels.
  const std::string folder = train(w.spec(R"(
name: aligned
inputs: {x: [batch, 16], y: {shape: [batch], dtype: s32}}
params: {sharpness: {shape: [1], init: ones}}
layers:
  - {name: first4, op: slice, in: x, axes: [1], starts: [0], ends: [4]}
  - {name: scores, op: mul, in: [first4, sharpness]}
loss: {op: categorical_crossentropy, in: [scores, y]}
metrics:
  accuracy: {op: accuracy, in: [scores, y]}
train:)" + labelled_data + R"(
  epochs: 3
  optimizer: {sgd: {lr: 1.0}}
)"), {.out = w.path("run")});
  const std::vector<std::string> rows = csv_rows(folder + "/metrics.csv");
  REQUIRE(rows.size() == 4);
  for (size_t r = 1; r < rows.size(); ++r) CHECK(cell(rows[r], 6) == "1");
  const Checkpoint c = load_checkpoint(folder + "/checkpoint.fgck");
  CHECK(c.tensors.at("sharpness").f32()[0] > 2.0f);
}

TEST_CASE("denoising runs train, evaluate and show noisy, denoised and clean rows", "[runner][noise]") {
  Workspace w("denoise");
  auto spec = [&](const std::string& noise) {
    return w.spec(R"(
name: denoising
inputs: {x: [batch, 4, 4], x_noisy: [batch, 16]}
layers:
  - {name: code, op: dense, in: x_noisy, units: 8, activation: relu}
  - {name: out, op: dense, in: code, units: 16, activation: sigmoid}
  - {name: reconstruction, op: reshape, in: out, shape: [0, 4, 4]}
outputs: {reconstruction: reconstruction}
loss: {op: mse, in: [reconstruction, x]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy, input: x, noise: )" + noise + R"(}
  batch: 16
  epochs: 2
  report: {images: 3}
)", "denoising.yaml");
  };
  // 4x4 images in NPY files: the samples reshaped.
  for (const char* split : {"train", "test"}) {
    NpyArray a = read_npy(w.path(std::string(split) + ".npy"));
    a.shape = {a.shape[0], 4, 4};
    write_npy(w.path(std::string(split) + ".npy"), a);
  }
  const std::string folder = train(spec("{gaussian: {stddev: 0.3, input: x_noisy}}"), {.out = w.path("gaussian")});
  REQUIRE(fs::exists(folder + "/reconstructions.png"));
  const std::string png = read(folder + "/reconstructions.png");
  // The PNG header's height: three rows of 4-pixel images at scale 3 with 6-pixel gaps (no class captions:
  // the NPY data has no labels).
  const auto height = static_cast<uint32_t>(static_cast<unsigned char>(png[22]) << 8 | static_cast<unsigned char>(png[23]));
  CHECK(height == 3 * (12 + 6) + 6);
  // Test-time corruption: a clean test split gives another (lower) test loss than the corrupted one.
  const std::string clean = train(spec("{gaussian: {stddev: 0.3, input: x_noisy, test: false}}"), {.out = w.path("clean")});
  const double noisy_loss = std::stod(cell(csv_rows(folder + "/metrics.csv")[2], 3));
  const double clean_loss = std::stod(cell(csv_rows(clean + "/metrics.csv")[2], 3));
  CHECK(clean_loss < noisy_loss);
  // Salt and pepper and masking complete too.
  CHECK(fs::exists(train(spec("{salt_and_pepper: {rate: 0.2, input: x_noisy}}"), {.out = w.path("salt")}) + "/reconstructions.png"));
  CHECK(fs::exists(train(spec("{masking: {rate: 0.3, input: x_noisy}}"), {.out = w.path("mask")}) + "/reconstructions.png"));
}

TEST_CASE("gaussian noise is clipped to the data's range unless asked not to", "[noise]") {
  Corruption c{.kind = Corruption::Kind::gaussian, .level = 5.0, .input = "x_noisy", .seed = 1, .low = 0, .high = 1};
  std::vector<float> in(1000, 0.5f), out(1000);
  corrupt(c, 3, in, out);
  CHECK(*std::min_element(out.begin(), out.end()) == 0.0f);
  CHECK(*std::max_element(out.begin(), out.end()) == 1.0f);
  c.clip = false;
  corrupt(c, 3, in, out);
  CHECK(*std::max_element(out.begin(), out.end()) > 2.0f);
  c = {.kind = Corruption::Kind::salt_and_pepper, .level = 1.0, .seed = 1, .low = -1, .high = 3};
  corrupt(c, 3, in, out);
  CHECK(std::all_of(out.begin(), out.end(), [](float v) { return v == -1.0f || v == 3.0f; }));
}

TEST_CASE("checkpoints load whenever their tensors match: comments, metrics and losses may change", "[runner][checkpoint]") {
  Workspace w("keyed");
  const std::string base = R"(
name: keyed
inputs: {x: [batch, 16]}
layers:
  - {name: code, op: dense, in: x, units: 4, activation: sigmoid}
  - {name: out, op: dense, in: code, units: 16, activation: sigmoid}
outputs: {reconstruction: out}
loss: {op: mse, in: [out, x]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy}
  batch: 16
)";
  const std::string spec = w.spec(base);
  train(spec, {.out = w.path("run"), .epochs = 1});
  // A comment, a metric and a sparsity term later: the parameters and optimizer state are the same tensors.
  const std::string edited = w.spec("# edited after training\n" + base + R"(metrics:
  code_mean: {op: mean, in: code}
)", "edited.yaml");
  std::string text = read(edited);
  text.replace(text.find("loss: {op: mse, in: [out, x]}"), 29,
               "loss: [{op: mse, in: [out, x]}, {op: kl_sparsity, in: code, rho: 0.1, weight: 0.01, name: sparsity}]");
  std::ofstream(edited) << text;
  train(edited, {.out = w.path("run"), .epochs = 2, .resume = w.path("run/checkpoint.fgck")});
  const std::vector<std::string> rows = csv_rows(w.path("run/metrics.csv"));
  REQUIRE(rows.size() == 3);
  CHECK(rows[0] == "stage,epoch,train_loss,test_loss,samples_per_s,seconds,test_sparsity,test_code_mean");
  CHECK(rows[1].ends_with(",,"));  // the first epoch measured neither
  CHECK_FALSE(cell(rows[2], 7).empty());
  // Another optimizer has other state: refused, saying which tensors differ.
  std::string sgd = base;
  sgd.replace(sgd.find("  batch: 16"), 11, "  batch: 16\n  optimizer: {sgd: {lr: 0.1, momentum: 0.9}}");
  const std::string other = w.spec(sgd, "sgd.yaml");
  try {
    train(other, {.out = w.path("sgd"), .epochs = 3, .resume = w.path("run/checkpoint.fgck")});
    FAIL("resumed with another optimizer");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK_THAT(e.message(), Contains("velocity") && Contains("adam_m"));
  }
  CHECK_FALSE(fs::exists(w.path("sgd")));  // nothing written
}

TEST_CASE("an epoch cut in the middle resumes only with the batches it was cut from", "[runner][checkpoint]") {
  Workspace w("cut");
  const std::string base = R"(
name: cut
inputs: {x: [batch, 16]}
layers:
  - {name: out, op: dense, in: x, units: 16, activation: sigmoid}
loss: {op: mse, in: [out, x]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy}
  batch: 16
)";
  const std::string spec = w.spec(base);
  CHECK_THROWS_AS(train(spec, {.out = w.path("run"), .epochs = 2, .stop_after_steps = 2}), Interrupted);
  std::string other = base;
  other.replace(other.find("batch: 16"), 9, "batch: 8");
  try {
    train(w.spec(other, "other.yaml"), {.out = w.path("run"), .epochs = 2, .resume = w.path("run/checkpoint.fgck")});
    FAIL("resumed an interrupted epoch with another batch size");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK_THAT(e.message(), Contains("stopped after 2 batches of epoch 1") && Contains("batch 16 (now 8)"));
  }
  CHECK_THROWS_AS(train(spec, {.out = w.path("run"), .epochs = 2, .seed = 9, .resume = w.path("run/checkpoint.fgck")}), Error);
  train(spec, {.out = w.path("run"), .epochs = 2, .resume = w.path("run/checkpoint.fgck")});  // the same settings go on
  CHECK(load_checkpoint(w.path("run/checkpoint.fgck")).meta.epoch == 2);
}

TEST_CASE("a stage with nothing to train is refused at its position before anything is written", "[runner][spec]") {
  Workspace w("frozen");
  const std::string spec = w.spec(R"(
name: frozen
inputs: {x: [batch, 16]}
layers:
  - {name: out, op: dense, in: x, units: 16, trainable: false}
loss: {op: mse, in: [out, x]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy}
  stages:
    - {name: nothing, loss: loss}
)");
  try {
    train(spec, {.out = w.path("run")});
    FAIL("trained nothing");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::spec);
    CHECK_THAT(e.message(), Contains("stage 'nothing'") && Contains("no trainable parameters"));
    CHECK(e.where().str() == spec + ":10:7");
  }
  CHECK_FALSE(fs::exists(w.path("run")));
}
