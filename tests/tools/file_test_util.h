// Helpers shared by the file-format tests: a temporary directory per test case, raw file access, and
// checks on the flowgrad::Error a bad file produces.
#pragma once

#include <catch2/catch.hpp>

#include "graph/error.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace flowgrad::testing {

// A fresh directory per test case, removed again afterwards.
class TempDir {
 public:
  explicit TempDir(const std::string& tag) {
    static int counter = 0;
    path_ = std::filesystem::temp_directory_path() /
            ("flowgrad_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }
  std::vector<std::string> names() const {
    std::vector<std::string> found;
    for (const auto& entry : std::filesystem::directory_iterator(path_)) found.push_back(entry.path().filename());
    return found;
  }

 private:
  std::filesystem::path path_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(out.good());
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Runs `action`, which must throw flowgrad::Error, and returns the error for inspection.
template <class Action>
Error error_from(Action&& action) {
  try {
    action();
  } catch (const Error& error) {
    return error;
  }
  FAIL("expected a flowgrad::Error");
  return Error(ErrorKind::runtime, "unreachable");
}

// Checks the kind and that the message contains every part (e.g. the file name and what is wrong).
inline void check_error(const Error& error, ErrorKind kind, const std::vector<std::string>& parts) {
  INFO("message: " << error.what());
  CHECK(error.kind() == kind);
  for (const std::string& part : parts) CHECK_THAT(error.what(), Catch::Contains(part));
}

}  // namespace flowgrad::testing
