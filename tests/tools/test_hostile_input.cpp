// Issue 16, "hostile input never crashes, overreads or overwrites": each defect the issue found, run through
// the `flowgrad` program as a user would meet it, with the exit status docs/cli.md documents. The inputs are
// the tiny files in tests/hostile/ (and the specs in tests/specs/bad/ numbered 81 and up); what the unit tests
// cover in the loaders themselves is in test_dataset, test_csv, test_npy and test_checkpoint.
#include <catch2/catch.hpp>

#include "cli_util.h"
#include "file_test_util.h"
#include "tools/checkpoint.h"
#include "tools/npy.h"
#include "tools/spec.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <tuple>

using namespace flowgrad;
using namespace flowgrad::testing;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string hostile = FLOWGRAD_SOURCE_DIR "/tests/hostile/";

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// An autoencoder x[batch, features] -> 4 -> features, by default on the 10x10 images of tests/hostile/idx10.
std::string write_spec(const TempDir& dir, const std::string& name, int features,
                       const std::string& data = "{dataset: idx, dir: " + hostile + "idx10}") {
  const std::string path = dir.file(name);
  std::ofstream(path) << "inputs:\n"
                         "  x: [batch, " << features << "]\n"
                         "layers:\n"
                         "  - {name: h, op: dense, in: x, units: 4}\n"
                         "  - {name: y, op: dense, in: h, units: " << features << ", activation: sigmoid}\n"
                         "outputs: {reconstruction: y}\n"
                         "loss: {op: mse, in: [y, x]}\n"
                         "train:\n"
                         "  data: " << data << "\n"
                         "  batch: 2\n"
                         "  epochs: 1\n";
  return path;
}

// Runs flowgrad in a process group of its own with `path_prefix` first on PATH, so that Ctrl-C can be sent to
// it and everything it starts, as a terminal would. Output goes to `log`.
pid_t start_in_group(const std::vector<std::string>& arguments, const std::string& path_prefix, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setpgid(0, 0);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1), ::dup2(out, 2);
    const std::string path = path_prefix + ":" + (std::getenv("PATH") ? std::getenv("PATH") : "/usr/bin:/bin");
    ::setenv("PATH", path.c_str(), 1);
    ::setenv("GOMP_SPINCOUNT", "3000", 1);
    std::vector<char*> argv = {const_cast<char*>(FLOWGRAD_CLI)};
    for (const std::string& a : arguments) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(FLOWGRAD_CLI, argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  return pid;
}

// A Graphviz stand-in that marks that it started and then waits, so that something can happen while a run
// is rendering its graph.
std::string slow_dot(const TempDir& dir) {
  const std::string bin = dir.file("bin");
  fs::create_directories(bin);
  std::ofstream(bin + "/dot") << "#!/bin/sh\ntouch '" << dir.file("dot-started") << "'\nsleep 60\n";
  fs::permissions(bin + "/dot", fs::perms::owner_all);
  return bin;
}

bool wait_for(const std::string& path) {
  for (int i = 0; i < 600 && !fs::exists(path); ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  return fs::exists(path);
}

int exit_status(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

}  // namespace

TEST_CASE("issue 16.1: a test split narrower than the train split is refused before anything is written", "[cli][hostile]") {
  TempDir dir("hostile");
  const std::string spec = write_spec(dir, "csv.yaml", 4,
                                      "{dataset: csv, train: " + hostile + "train4.csv, test: " + hostile + "test3.csv}");
  CliResult r = run_flowgrad("train " + quoted(spec) + " --out " + quoted(dir.file("run")));
  INFO(r.output);
  CHECK(r.status == 3);
  CHECK_THAT(r.output, Contains("train4.csv") && Contains("[4]") && Contains("test3.csv") && Contains("[3]"));
  CHECK(!fs::exists(dir.file("run")));
}

TEST_CASE("issue 16.1: eval and train check the data against the input, at the input's position", "[cli][hostile]") {
  TempDir dir("hostile");
  // A model for 28x28 images fed the 10x10 images of idx10: it read past every batch (eval: -nan, SEGV).
  const std::string spec = write_spec(dir, "tiny.yaml", 784);
  Spec loaded = load_spec(spec);
  ParamStore store;
  store.materialize(loaded.graph, 1);
  save_checkpoint(dir.file("tiny.fgck"), {.spec_hash = loaded.hash, .stage_name = "train"}, store);
  CliResult eval = run_flowgrad("eval " + quoted(spec) + " --checkpoint " + quoted(dir.file("tiny.fgck")) + " --data " +
                                hostile + "idx10");
  INFO(eval.output);
  CHECK(eval.status == 2);
  CHECK_THAT(eval.output, Contains(spec + ":2:6:") && Contains("[10, 10] (100 values each)") &&
                              Contains("input 'x' takes 784 values per sample"));
  CHECK_THAT(eval.output, !Contains("test loss"));

  CliResult train = run_flowgrad("train " + quoted(spec) + " --out " + quoted(dir.file("run")));
  CHECK(train.status == 2);
  CHECK_THAT(train.output, Contains(spec + ":2:6:"));
  CHECK(!fs::exists(dir.file("run")));

  // run: an array of another shape is refused at the input's declaration too.
  write_npy(dir.file("x.npy"), Tensor({2, 100}, std::vector<float>(200, 0.5f)));
  CliResult run = run_flowgrad("run " + quoted(spec) + " --input x=" + quoted(dir.file("x.npy")) + " --fetch reconstruction=" +
                               quoted(dir.file("y.npy")));
  CHECK(run.status == 2);
  CHECK_THAT(run.output, Contains(spec + ":2:6:") && Contains("shape [2, 784]") && Contains("[2, 100]"));
  CHECK(!fs::exists(dir.file("y.npy")));
}

TEST_CASE("issue 16.2: a run never writes through links planted in its folder", "[cli][hostile]") {
  TempDir dir("hostile");
  const std::string spec = write_spec(dir, "model.yaml", 100);
  const std::string run = dir.file("run"), victim = dir.file("victim");
  fs::create_directories(run);
  write_bytes(victim, "precious");
  for (const char* name : {"checkpoint.fgck", "checkpoint.fgck.tmp", "metrics.csv", "report.md", "model.svg", "loss.png"})
    fs::create_symlink(victim, run + "/" + name);
  CliResult r = run_flowgrad("train " + quoted(spec) + " --out " + quoted(run));
  INFO(r.output);
  REQUIRE(r.status == 0);
  CHECK(read_bytes(victim) == "precious");
  for (const char* name : {"checkpoint.fgck", "metrics.csv", "report.md", "loss.png"})
    CHECK(fs::is_regular_file(fs::symlink_status(run + "/" + name)));
  CHECK(load_checkpoint(run + "/checkpoint.fgck").meta.epoch == 1);
  for (const auto& entry : fs::directory_iterator(run)) CHECK(entry.path().filename().string().find(".tmp-") == std::string::npos);

  // A link the user names is followed: its target gets the output, and the link stays.
  write_npy(dir.file("x.npy"), Tensor({2, 100}, std::vector<float>(200, 0.5f)));
  fs::create_symlink(dir.file("target.npy"), dir.file("named.npy"));
  CliResult fetched = run_flowgrad("run " + quoted(spec) + " --input x=" + quoted(dir.file("x.npy")) +
                                   " --fetch reconstruction=" + quoted(dir.file("named.npy")));
  REQUIRE(fetched.status == 0);
  CHECK(fs::is_symlink(dir.file("named.npy")));
  CHECK(read_npy(dir.file("target.npy")).shape == Shape{2, 100});
}

TEST_CASE("issue 16.3 and 16.4: sizes beyond every limit are refused cleanly", "[cli][hostile]") {
  // A 128-byte NPY of shape (2^40, 0): SIGFPE once its first dimension became the batch.
  CliResult npy = run_flowgrad("run " FLOWGRAD_SOURCE_DIR "/zoo/dense.yaml --input x=" + hostile +
                               "huge_empty.npy --fetch reconstruction=/dev/null");
  CHECK(npy.status == 3);
  CHECK_THAT(npy.output, Contains("huge_empty.npy") && Contains("no tensor can have"));
  // units 2^62: SIGFPE.
  CliResult units = run_flowgrad("summary " FLOWGRAD_SOURCE_DIR "/tests/specs/bad/96_units_two_to_the_62.yaml");
  CHECK(units.status == 2);
  CHECK_THAT(units.output, Contains("above the limit"));
  // The 4 MiB spec limit is checked while reading: /dev/zero never ends.
  CliResult zero = run_flowgrad("summary /dev/zero");
  CHECK(zero.status == 2);
  CHECK_THAT(zero.output, Contains("/dev/zero:1:1: the spec is larger than 4194304 bytes"));
}

TEST_CASE("issue 16.5: Ctrl-C while Graphviz renders saves a checkpoint and exits 130, and a second run is refused meanwhile", "[cli][hostile]") {
  TempDir dir("hostile");
  const std::string spec = write_spec(dir, "model.yaml", 100);
  const std::string bin = slow_dot(dir), run = dir.file("run");
  const pid_t first = start_in_group({"train", spec, "--out", run}, bin, dir.file("first.log"));
  REQUIRE(wait_for(dir.file("dot-started")));

  // The folder is locked while the first run writes it.
  CliResult second = run_flowgrad("train " + quoted(spec) + " --out " + quoted(run));
  CHECK(second.status == 3);
  CHECK_THAT(second.output, Contains("in use by another"));

  ::kill(-first, SIGINT);  // what Ctrl-C does: the whole foreground group, dot included
  CHECK(exit_status(first) == 130);
  CHECK_THAT(read_bytes(dir.file("first.log")), Contains("the checkpoint is saved"));
  REQUIRE(fs::exists(run + "/checkpoint.fgck"));
  CHECK(load_checkpoint(run + "/checkpoint.fgck").meta.step == 0);
  CliResult resumed = run_flowgrad("train " + quoted(spec) + " --resume " + quoted(run + "/checkpoint.fgck"));
  INFO(resumed.output);
  CHECK(resumed.status == 0);
  CHECK(load_checkpoint(run + "/checkpoint.fgck").meta.epoch == 1);
}

TEST_CASE("issue 16.6: exit statuses and messages for bad files name the file", "[cli][hostile]") {
  TempDir dir("hostile");
  // An IDX file of floats is an input problem: 3, not 1.
  const std::string spec = write_spec(dir, "model.yaml", 4);
  CliResult floats = run_flowgrad("train " + quoted(spec) + " --data " + hostile + "idx_floats --out " + quoted(dir.file("r1")));
  CHECK(floats.status == 3);
  CHECK_THAT(floats.output, Contains("float32") && Contains("idx_floats"));
  CHECK(!fs::exists(dir.file("r1")));

  // Checkpoints whose checksum holds but whose metadata is missing or not a number: map::at and stoll before.
  const std::string model = write_spec(dir, "ten.yaml", 100);
  REQUIRE(run_flowgrad("train " + quoted(model) + " --out " + quoted(dir.file("r2"))).status == 0);
  const Checkpoint good = load_checkpoint(dir.file("r2/checkpoint.fgck"));
  ParamStore store;
  for (const auto& [name, tensor] : good.tensors) {
    Tensor& copy = store.create(name, tensor.type());
    std::memcpy(copy.data(), tensor.data(), tensor.type().bytes());
  }
  for (const auto& [key, value, expected] : {std::tuple{"batches", "", "lacks the entry 'batches'"},
                                             std::tuple{"samples", "many", "entry 'samples' is 'many', not a count"},
                                             std::tuple{"loss_sum", "0x1p+", "entry 'loss_sum' is '0x1p+', not a number"}}) {
    CheckpointMeta meta = good.meta;
    if (*value) meta.extra[key] = value;
    else meta.extra.erase(key);
    const std::string path = dir.file(std::string("bad-") + key + ".fgck");
    save_checkpoint(path, meta, store);
    CliResult r = run_flowgrad("train " + quoted(model) + " --resume " + quoted(path) + " --epochs 2 --out " +
                               quoted(dir.file(std::string("r-") + key)));
    INFO(r.output);
    CHECK(r.status == 3);
    CHECK_THAT(r.output, Contains(path) && Contains(expected));
  }

  // An input nothing feeds is a spec error before anything is written.
  CliResult unfed = run_flowgrad("train " FLOWGRAD_SOURCE_DIR "/tests/specs/bad/107_input_nothing_feeds.yaml --out " +
                                 quoted(dir.file("r3")));
  CHECK(unfed.status == 2);
  CHECK(!fs::exists(dir.file("r3")));

  // A full disk while the SVG is written (here a file size limit): our message, naming the file; nothing left.
  // The training graph of zoo/deep.yaml: a 28 KB dot text (the temporary file Graphviz reads), a 158 KB SVG;
  // the limit lies between.
  const std::string out = dir.file("graph.svg");
  const CliResult full = run_command(std::string("bash -c \"trap '' XFSZ; ulimit -f 64; GOMP_SPINCOUNT=3000 '") +
                                     FLOWGRAD_CLI + "' dot " FLOWGRAD_SOURCE_DIR "/zoo/deep.yaml --grad --out '" + out +
                                     "'\" 2>&1");
  INFO(full.output);
  if (fs::exists("/usr/bin/dot")) {
    CHECK(full.status == 3);
    CHECK_THAT(full.output, Contains("cannot write") && Contains("graph.svg") && Contains("File too large"));
    CHECK(!fs::exists(dir.file("graph.svg")));
  }
  for (const std::string& name : dir.names()) CHECK(name.find(".tmp-") == std::string::npos);
}
