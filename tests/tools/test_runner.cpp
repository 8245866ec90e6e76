#include <catch2/catch.hpp>

#include "run_workspace.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

using namespace flowgrad;
namespace fs = std::filesystem;

namespace {

using testing::read;
using testing::train;
using testing::Workspace;

const char* small_spec = R"(
name: small
inputs: {x: [batch, 16]}
layers:
  - {name: code, op: dense, in: x, units: 4, activation: tanh}
  - {name: out, op: dense, in: code, units: 16, activation: sigmoid}
outputs: {reconstruction: out, code: code}
loss: {op: mse, in: [out, x]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy}
  batch: 16
  epochs: 3
  optimizer: {adam: {lr: 0.01}}
)";

void check_same_tensors(const Checkpoint& a, const Checkpoint& b) {
  REQUIRE(a.tensors.size() == b.tensors.size());
  for (const auto& [name, t] : a.tensors) {
    INFO(name);
    const Tensor& u = b.tensors.at(name);
    REQUIRE(u.type() == t.type());
    CHECK(std::memcmp(u.data(), t.data(), t.type().bytes()) == 0);
  }
}

void check_error_kind(const std::string& spec_path) {
  Spec spec = load_spec(spec_path);
  try {
    read_train_config(spec);
    FAIL("expected a spec error");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::spec);
    CHECK_THAT(e.what(), Catch::Contains("patience"));
  }
}

}  // namespace

TEST_CASE("runner: a run folder has the spec, metrics, pictures, graph and checkpoint", "[runner]") {
  Workspace w("folder");
  std::string folder = train(w.spec(small_spec), {.out = w.path("run"), .epochs = 2});
  for (const char* file : {"spec.yaml", "metrics.csv", "steps.csv", "report.md", "report.html", "loss.png", "model.dot",
                           "checkpoint.fgck", "best.fgck"})
    CHECK(fs::exists(fs::path(folder) / file));
  // One row per step: 64 samples in batches of 16 for 2 epochs.
  const std::string steps = read(folder + "/steps.csv");
  CHECK(steps.rfind("stage,epoch,step,loss,lr\ntrain,1,0,", 0) == 0);
  CHECK(steps.find("\ntrain,2,7,") != std::string::npos);
  CHECK(std::count(steps.begin(), steps.end(), '\n') == 1 + 8);
  CHECK(steps.find(",0.01\n") != std::string::npos);  // the learning rate
  const std::string html = read(folder + "/report.html");
  CHECK(html.find("<img src=\"data:image/png;base64,") != std::string::npos);
  CHECK(html.find("<td>code</td><td>dense</td>") != std::string::npos);
  CHECK(read(folder + "/report.md").find("![Loss](loss.png)") != std::string::npos);
  std::string metrics = read(folder + "/metrics.csv");
  CHECK(metrics.rfind("stage,epoch,train_loss,test_loss,samples_per_s,seconds\n", 0) == 0);
  CHECK(metrics.find("\ntrain,2,") != std::string::npos);
  Checkpoint c = load_checkpoint(folder + "/checkpoint.fgck");
  CHECK(c.meta.epoch == 2);
  CHECK(c.meta.step == 8);
  CHECK(c.tensors.count("code/kernel"));
  CHECK(c.tensors.count("code/kernel/adam_m"));
}

TEST_CASE("runner: resuming continues bitwise like an uninterrupted run", "[runner]") {
  Workspace w("resume");
  const std::string spec = w.spec(small_spec);
  train(spec, {.out = w.path("straight"), .epochs = 3});
  const Checkpoint straight = load_checkpoint(w.path("straight/checkpoint.fgck"));

  SECTION("from an epoch boundary: --epochs counts the total") {
    train(spec, {.out = w.path("first"), .epochs = 1});
    train(spec, {.out = w.path("rest"), .epochs = 3, .resume = w.path("first/checkpoint.fgck")});
    const Checkpoint resumed = load_checkpoint(w.path("rest/checkpoint.fgck"));
    CHECK(resumed.meta.epoch == 3);
    check_same_tensors(straight, resumed);
    CHECK(read(w.path("rest/metrics.csv")) .find("\ntrain,1,") != std::string::npos);  // earlier epochs kept
  }
  SECTION("from the middle of an epoch (Ctrl-C)") {
    CHECK_THROWS_AS(train(spec, {.out = w.path("cut"), .epochs = 3, .stop_after_steps = 6}), Interrupted);
    const Checkpoint cut = load_checkpoint(w.path("cut/checkpoint.fgck"));
    CHECK(cut.meta.step == 6);
    CHECK(cut.meta.epoch == 1);
    train(spec, {.out = w.path("cut"), .epochs = 3, .resume = w.path("cut/checkpoint.fgck")});
    check_same_tensors(straight, load_checkpoint(w.path("cut/checkpoint.fgck")));
    CHECK(read(w.path("cut/steps.csv")) == read(w.path("straight/steps.csv")).substr(0, read(w.path("cut/steps.csv")).size()));
    const std::string steps = read(w.path("cut/steps.csv"));
    CHECK(std::count(steps.begin(), steps.end(), '\n') == 1 + 12);  // every step once
  }
}

TEST_CASE("runner: stages train what they name and feed earlier outputs", "[runner]") {
  Workspace w("stages");
  const std::string spec = w.spec(R"(
name: stacked
inputs: {x: [batch, 16], h: [batch, 8]}
layers:
  - {name: enc1, op: dense, in: x, units: 8, activation: sigmoid}
  - {name: dec1, op: dense, in: enc1, units: 16, activation: sigmoid}
  - {name: enc2, op: dense, in: h, units: 4, activation: sigmoid}
  - {name: dec2, op: dense, in: enc2, units: 8, activation: sigmoid}
outputs: {code1: enc1}
losses:
  layer1: {op: mse, in: [dec1, x]}
  layer2: {op: mse, in: [dec2, h]}
train:
  data: {dataset: npy, train: DIR/train.npy, test: DIR/test.npy}
  batch: 16
  stages:
    - {name: first, loss: layer1, train: [enc1/*, dec1/*], epochs: 1}
    - {name: second, loss: layer2, epochs: 2, data_from: code1, input: h, freeze: [enc1/*, dec1/*]}
)");
  train(spec, {.out = w.path("one"), .epochs = 0});
  const Checkpoint all = load_checkpoint(w.path("one/checkpoint.fgck"));
  CHECK(all.meta.stage_name == "second");
  CHECK(all.meta.epoch == 2);
  std::string metrics = read(w.path("one/metrics.csv"));
  CHECK(metrics.find("\nfirst,1,") != std::string::npos);
  CHECK(metrics.find("\nsecond,2,") != std::string::npos);
  // The first stage's parameters stay as the first stage left them.
  Spec s = load_spec(spec);
  TrainConfig config = read_train_config(s);
  config.stages.pop_back();
  train_spec(s, config, {.out = w.path("two"), .terminal = false});
  const Checkpoint first_only = load_checkpoint(w.path("two/checkpoint.fgck"));
  for (const char* name : {"enc1/kernel", "dec1/bias"})
    CHECK(std::memcmp(all.tensors.at(name).data(), first_only.tensors.at(name).data(), all.tensors.at(name).type().bytes()) == 0);
  CHECK(std::memcmp(all.tensors.at("enc2/kernel").data(), first_only.tensors.at("enc2/kernel").data(),
                    all.tensors.at("enc2/kernel").type().bytes()) != 0);
}

TEST_CASE("runner: early stopping ends a stage that stopped improving and keeps the best checkpoint", "[runner]") {
  Workspace w("early");
  // A learning rate this large makes the test loss stall or rise within a few epochs.
  std::string body = small_spec;
  body.replace(body.find("epochs: 3"), 9, "epochs: 30\n  early_stopping: {patience: 2, min_delta: 0.5}");
  const std::string folder = train(w.spec(body), {.out = w.path("run")});
  // min_delta 0.5 is more than any epoch improves: the stage stops after 1 + 2 epochs.
  const Checkpoint last = load_checkpoint(folder + "/checkpoint.fgck");
  CHECK(last.meta.epoch == 3);
  const Checkpoint best = load_checkpoint(folder + "/best.fgck");
  CHECK(best.meta.epoch <= 3);
  const std::string metrics = read(folder + "/metrics.csv");
  CHECK(std::count(metrics.begin(), metrics.end(), '\n') == 1 + 3);
  CHECK(read(folder + "/report.md").find("early stopping: patience 2") != std::string::npos);
  // Resuming a stopped stage trains no more.
  train(w.spec(body), {.out = w.path("run"), .resume = folder + "/checkpoint.fgck"});
  CHECK(load_checkpoint(folder + "/checkpoint.fgck").meta.epoch == 3);
  body.replace(body.find("patience: 2"), 11, "patience: 0");
  check_error_kind(w.spec(body));
}

TEST_CASE("runner: a resumed run restores thousands of epochs of metrics, and refuses malformed ones", "[runner][hostile]") {
  // Issue 16.7: every restored epoch used to rewrite and fsync metrics.csv and report.md (3,000 rows: 15 s).
  Workspace w("metrics");
  const std::string spec = w.spec(small_spec);
  train(spec, {.out = w.path("run"), .epochs = 1});
  Checkpoint checkpoint = load_checkpoint(w.path("run/checkpoint.fgck"));
  ParamStore store;
  for (const auto& [name, tensor] : checkpoint.tensors) {
    Tensor& copy = store.create(name, tensor.type());
    std::memcpy(copy.data(), tensor.data(), tensor.type().bytes());
  }
  CheckpointMeta meta = checkpoint.meta;
  std::string metrics;
  for (int epoch = 1; epoch <= 3000; ++epoch) metrics += fmt::format("train {} 0x1p-2 0x1p-3 0x1p+0 0x1p+10\n", epoch);
  meta.extra["metrics"] = metrics;
  meta.epoch = 3000;
  save_checkpoint(w.path("many.fgck"), meta, store);
  train(spec, {.out = w.path("many"), .epochs = 3001, .resume = w.path("many.fgck")});
  const std::string csv = read(w.path("many/metrics.csv"));
  CHECK(std::count(csv.begin(), csv.end(), '\n') == 3002);  // the header, 3,000 restored epochs and the new one
  CHECK(csv.find("\ntrain,3000,0.250000,0.125000,1024.0,1.000\ntrain,3001,") != std::string::npos);

  meta.extra["metrics"] = "train 1 0x1p-2 0x1p-3 0x1p+0 0x1p+10\ntrain one 0 0 0 0\n";
  save_checkpoint(w.path("bad.fgck"), meta, store);
  try {
    train(spec, {.out = w.path("bad"), .epochs = 3001, .resume = w.path("bad.fgck")});
    FAIL("a malformed metrics line was accepted");
  } catch (const Error& e) {
    CHECK(e.kind() == ErrorKind::io);
    CHECK_THAT(e.what(), Catch::Contains("bad.fgck") && Catch::Contains("line 2 of its metrics"));
  }
  CHECK(!fs::exists(w.path("bad")));
}
