// Checkpoints: bitwise round trips, crash safety of the atomic replacement, and clean errors for every
// truncation, flipped bytes, a different spec and a store that does not match.
#include <catch2/catch.hpp>

#include "file_test_util.h"
#include "tools/checkpoint.h"

#include <unistd.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

using namespace flowgrad;
using namespace flowgrad::testing;

namespace {

// A store like a small trained model: params and optimizer state of several dtypes, one of them empty.
ParamStore sample_store(uint8_t salt) {
  ParamStore store;
  auto fill = [&](Tensor& tensor) {
    auto* bytes = static_cast<uint8_t*>(tensor.data());
    for (size_t i = 0; i < tensor.type().bytes(); ++i) bytes[i] = static_cast<uint8_t>(i * 31 + salt);
  };
  fill(store.create("dense/kernel", TensorType{{3, 4}, DType::f32}));
  fill(store.create("dense/bias", TensorType{{4}, DType::f32}));
  fill(store.create("adam/step", TensorType{{}, DType::s32}));
  fill(store.create("mask", TensorType{{2, 1, 3}, DType::u8}));
  fill(store.create("half", TensorType{{5}, DType::bf16}));
  store.create("unused", TensorType{{0, 7}, DType::f32});
  return store;
}

CheckpointMeta sample_meta() {
  CheckpointMeta meta;
  meta.spec_hash = 0x0123456789abcdefULL;
  meta.step = 1234;
  meta.epoch = 7;
  meta.stage_index = 1;
  meta.stage_name = "fine-tune";
  meta.seed = 42;
  meta.extra = {{"command", "flowgrad train zoo/dense.yaml"}, {"dataset", "fashion-mnist"}, {"empty", ""}};
  return meta;
}

bool same_tensors(const std::map<std::string, Tensor>& a, const std::map<std::string, Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (const auto& [name, tensor] : a) {
    auto other = b.find(name);
    if (other == b.end() || other->second.type() != tensor.type()) return false;
    if (std::memcmp(other->second.data(), tensor.data(), tensor.type().bytes()) != 0) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("a checkpoint round-trips tensors bitwise and metadata exactly", "[checkpoint]") {
  TempDir dir("checkpoint");
  const ParamStore store = sample_store(3);
  save_checkpoint(dir.file("model.ckpt"), sample_meta(), store);
  Checkpoint loaded = load_checkpoint(dir.file("model.ckpt"), sample_meta().spec_hash);
  CHECK(loaded.path == dir.file("model.ckpt"));
  CHECK(loaded.meta == sample_meta());
  CHECK(same_tensors(loaded.tensors, store.tensors()));

  ParamStore target = sample_store(99);
  Tensor& kernel = target.get("dense/kernel");
  const void* kernel_storage = kernel.data();
  restore_checkpoint(loaded, target);
  CHECK(same_tensors(target.tensors(), store.tensors()));
  CHECK(target.get("dense/kernel").data() == kernel_storage);  // restored in place: plans keep pointers
  CHECK(dir.names() == std::vector<std::string>{"model.ckpt"});
}

TEST_CASE("a stale half-written temporary file does not affect the previous checkpoint", "[checkpoint]") {
  TempDir dir("checkpoint");
  const std::string path = dir.file("model.ckpt");
  save_checkpoint(path, sample_meta(), sample_store(1));
  const std::string good = read_bytes(path);

  // A crash in the middle of the next save leaves part of the new file under its temporary name, which
  // carries the pid of the writer: one above pid_max can belong to no running process.
  CheckpointMeta next = sample_meta();
  next.step = 2000;
  save_checkpoint(dir.file("scratch.ckpt"), next, sample_store(2));
  const std::string newer = read_bytes(dir.file("scratch.ckpt"));
  long pid_max = 4194304;
  std::ifstream("/proc/sys/kernel/pid_max") >> pid_max;
  const std::string stale = dir.file(".model.ckpt.tmp-" + std::to_string(pid_max + 1) + "-0");
  write_bytes(stale, newer.substr(0, newer.size() / 2));

  Checkpoint previous = load_checkpoint(path);
  CHECK(previous.meta.step == 1234);
  CHECK(read_bytes(path) == good);

  // The next save writes its own temporary file and removes the dead writer's.
  save_checkpoint(path, next, sample_store(2));
  CHECK(load_checkpoint(path).meta.step == 2000);
  CHECK(read_bytes(path) == newer);
  for (const std::string& name : dir.names()) CHECK(name.find(".tmp") == std::string::npos);
}

TEST_CASE("a save never writes through a symlink planted in the folder", "[checkpoint]") {
  TempDir dir("checkpoint");
  const std::string path = dir.file("model.ckpt"), victim = dir.file("victim");
  write_bytes(victim, "precious");
  // Links at every temporary name this process would pick next, and at the checkpoint itself.
  for (int n = 0; n < 50; ++n)
    std::filesystem::create_symlink(victim, dir.file(".model.ckpt.tmp-" + std::to_string(::getpid()) + "-" + std::to_string(n)));
  std::filesystem::create_symlink(victim, path);
  save_checkpoint(path, sample_meta(), sample_store(1));
  CHECK(read_bytes(victim) == "precious");
  CHECK(std::filesystem::is_regular_file(std::filesystem::symlink_status(path)));  // the link was replaced
  CHECK(load_checkpoint(path).meta == sample_meta());
}

TEST_CASE("two writers into one folder never share a temporary file", "[checkpoint]") {
  TempDir dir("checkpoint");
  const std::string path = dir.file("model.ckpt");
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t)
    writers.emplace_back([&, t] {
      for (int i = 0; i < 10; ++i) save_checkpoint(path, sample_meta(), sample_store(static_cast<uint8_t>(t)));
    });
  for (std::thread& writer : writers) writer.join();
  CHECK(load_checkpoint(path).meta == sample_meta());
  CHECK(dir.names() == std::vector<std::string>{"model.ckpt"});
}

TEST_CASE("every truncation of a checkpoint is an io error, never a crash", "[checkpoint]") {
  TempDir dir("checkpoint");
  save_checkpoint(dir.file("full.ckpt"), sample_meta(), sample_store(5));
  const std::string full = read_bytes(dir.file("full.ckpt"));
  const std::string cut = dir.file("cut.ckpt");
  for (size_t length = 0; length < full.size(); ++length) {
    write_bytes(cut, full.substr(0, length));
    Error error = error_from([&] { load_checkpoint(cut); });
    INFO("length " << length << ": " << error.what());
    CHECK(error.kind() == ErrorKind::io);
    CHECK_THAT(error.what(), Catch::Contains("cut.ckpt"));
    CHECK_THAT(error.what(), Catch::Contains("truncated") || Catch::Contains("empty"));
  }
}

TEST_CASE("a flipped byte anywhere is caught", "[checkpoint]") {
  TempDir dir("checkpoint");
  save_checkpoint(dir.file("full.ckpt"), sample_meta(), sample_store(5));
  const std::string full = read_bytes(dir.file("full.ckpt"));
  const std::string bad = dir.file("bad.ckpt");
  const size_t fixed_prefix = 8 + 4 + 8;  // magic, version, size: checked before the checksum
  for (size_t offset = 0; offset < full.size(); ++offset) {
    std::string corrupt = full;
    corrupt[offset] = static_cast<char>(corrupt[offset] ^ 0x10);
    write_bytes(bad, corrupt);
    Error error = error_from([&] { load_checkpoint(bad); });
    INFO("offset " << offset << ": " << error.what());
    CHECK(error.kind() == ErrorKind::io);
    CHECK_THAT(error.what(), Catch::Contains("bad.ckpt"));
    if (offset >= fixed_prefix) CHECK_THAT(error.what(), Catch::Contains("checksum"));
  }
  std::string magic = full;
  magic[0] = 'X';
  write_bytes(bad, magic);
  check_error(error_from([&] { load_checkpoint(bad); }), ErrorKind::io, {"bad.ckpt", "not a flowgrad checkpoint"});
  std::string version = full;
  version[8] = 9;
  write_bytes(bad, version);
  check_error(error_from([&] { load_checkpoint(bad); }), ErrorKind::io, {"bad.ckpt", "version 9", "newer flowgrad"});
  write_bytes(bad, full + "junk");
  check_error(error_from([&] { load_checkpoint(bad); }), ErrorKind::io, {"bad.ckpt", "trailing bytes"});
}

TEST_CASE("a checkpoint of another spec or model is refused with the reason", "[checkpoint]") {
  TempDir dir("checkpoint");
  const std::string path = dir.file("model.ckpt");
  save_checkpoint(path, sample_meta(), sample_store(1));
  check_error(error_from([&] { load_checkpoint(path, 0x1111); }), ErrorKind::io,
              {"model.ckpt", "different model spec", "0x0123456789abcdef", "0x0000000000001111"});
  check_error(error_from([&] { load_checkpoint(dir.file("none.ckpt")); }), ErrorKind::io, {"none.ckpt"});

  const Checkpoint checkpoint = load_checkpoint(path);
  ParamStore other;
  other.create("dense/kernel", TensorType{{4, 3}, DType::f32});
  other.create("dense/bias", TensorType{{4}, DType::f32});
  other.create("decoder/kernel", TensorType{{2}, DType::f32});
  const std::vector<uint8_t> before(static_cast<const uint8_t*>(other.get("dense/bias").data()),
                                    static_cast<const uint8_t*>(other.get("dense/bias").data()) + 16);
  check_error(error_from([&] { restore_checkpoint(checkpoint, other); }), ErrorKind::io,
              {"model.ckpt", "missing from the checkpoint: decoder/kernel",
               "not in the model: adam/step, half, mask, unused", "dense/kernel (checkpoint [3, 4], model [4, 3])"});
  // Nothing was copied, not even the tensors that matched.
  CHECK(std::memcmp(other.get("dense/bias").data(), before.data(), before.size()) == 0);
}

TEST_CASE("issue 16.6: metadata that is missing or not a number is an io error naming the file and the key", "[checkpoint][hostile]") {
  TempDir dir("checkpoint");
  CheckpointMeta meta = sample_meta();
  meta.extra = {{"batches", "12"}, {"negative", "-3"}, {"words", "many"}, {"loss_sum", "0x1.8p+1"}, {"diverged", "nan"},
                {"half", "0x1p"}};
  save_checkpoint(dir.file("meta.ckpt"), meta, sample_store(1));
  const Checkpoint checkpoint = load_checkpoint(dir.file("meta.ckpt"));
  CHECK(checkpoint.count("batches") == 12);
  CHECK(checkpoint.number("loss_sum") == 3.0);
  CHECK(std::isnan(checkpoint.number("diverged")));  // a diverged loss is still a record
  check_error(error_from([&] { (void)checkpoint.count("samples"); }), ErrorKind::io,
              {"meta.ckpt", "lacks the entry 'samples'"});
  check_error(error_from([&] { (void)checkpoint.count("negative"); }), ErrorKind::io, {"meta.ckpt", "'-3', not a count"});
  check_error(error_from([&] { (void)checkpoint.count("words"); }), ErrorKind::io, {"'many', not a count"});
  check_error(error_from([&] { (void)checkpoint.number("half"); }), ErrorKind::io, {"'0x1p', not a number"});
}

TEST_CASE("a checkpoint's tensors and position obey the size rule", "[checkpoint][hostile]") {
  TempDir dir("checkpoint");
  ParamStore deep;
  deep.create("deep", TensorType{Shape(9, 1), DType::f32});  // rank 9: no graph value has it
  save_checkpoint(dir.file("deep.ckpt"), sample_meta(), deep);
  check_error(error_from([&] { load_checkpoint(dir.file("deep.ckpt")); }), ErrorKind::io,
              {"deep.ckpt", "is corrupt", "tensor 'deep'", "rank 9 is above the limit"});
  CheckpointMeta backwards = sample_meta();
  backwards.step = -5;
  save_checkpoint(dir.file("back.ckpt"), backwards, sample_store(1));
  check_error(error_from([&] { load_checkpoint(dir.file("back.ckpt")); }), ErrorKind::io,
              {"back.ckpt", "step -5", "cannot be negative"});
}
