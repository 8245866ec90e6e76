// Training runs in tests: a scratch folder with a small synthetic dataset in NPY files and a spec written
// into it, and the runner called as `flowgrad train` calls it.
#pragma once

#include <catch2/catch.hpp>

#include "graph/random.h"
#include "tools/checkpoint.h"
#include "tools/npy.h"
#include "tools/runner.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace flowgrad::testing {

// 64 train and 24 test samples of 16 values in [0, 1] (train.npy, test.npy), and their labels in [0, 4): the
// index of the largest of the first four values (train_labels.npy, test_labels.npy), which a classifier can
// learn. Removed at the end.
struct Workspace {
  std::filesystem::path dir;
  explicit Workspace(const std::string& name) : dir(std::filesystem::temp_directory_path() / ("flowgrad_runner_" + name)) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    write_samples("train", 64, 1);
    write_samples("test", 24, 2);
  }
  ~Workspace() { std::filesystem::remove_all(dir); }

  void write_samples(const std::string& split, int64_t count, uint64_t seed) const {
    std::vector<float> values(static_cast<size_t>(count * 16));
    for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<float>(random_uniform(seed, 0, i));
    std::vector<float> labels(static_cast<size_t>(count));
    for (int64_t n = 0; n < count; ++n) {
      const float* row = values.data() + n * 16;
      labels[static_cast<size_t>(n)] = static_cast<float>(std::max_element(row, row + 4) - row);
    }
    write_npy((dir / (split + ".npy")).string(), Tensor({count, 16}, values));
    write_npy((dir / (split + "_labels.npy")).string(), to_tensor_s32(labels));
  }

  static Tensor to_tensor_s32(const std::vector<float>& values) {
    Tensor t(TensorType{{static_cast<int64_t>(values.size())}, DType::s32});
    for (size_t i = 0; i < values.size(); ++i) static_cast<int32_t*>(t.data())[i] = static_cast<int32_t>(values[i]);
    return t;
  }

  // Writes `body` as model.yaml (or `file`), with DIR replaced by the folder.
  std::string spec(const std::string& body, const std::string& file = "model.yaml") const {
    std::string text = body;
    for (auto pos = text.find("DIR"); pos != std::string::npos; pos = text.find("DIR")) text.replace(pos, 3, dir.string());
    std::ofstream((dir / file).string()) << text;
    return (dir / file).string();
  }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

inline std::string train(const std::string& spec_path, RunOptions options) {
  Spec spec = load_spec(spec_path, {.seed = options.seed});
  options.terminal = false;
  return train_spec(spec, read_train_config(spec), options);
}

inline std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace flowgrad::testing
