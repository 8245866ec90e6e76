// The bad-spec corpus: every file under tests/specs/bad is a spec that must be refused. Its first lines
// say how:
//   # expect: <text the error message must contain>     (one or more lines; $FILE stands for the spec's path)
//   # at: <line>:<column>
// The loader (load_spec, then read_train_config) must throw flowgrad::Error of a kind the CLI maps to exit
// code 2, whose message contains every expectation and whose location is <path>:<line>:<column>. A spec
// that loads, crashes, or fails elsewhere or differently is a loader bug to fix, not an entry to adjust.
#include <catch2/catch.hpp>

#include "tools/spec.h"
#include "tools/train_config.h"
#include "file_test_util.h"

#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

using namespace flowgrad;
using Catch::Contains;
namespace fs = std::filesystem;

namespace {

const std::string corpus_dir = FLOWGRAD_SOURCE_DIR "/tests/specs/bad";

struct Expectation {
  std::vector<std::string> messages;  // `# expect:` lines, $FILE replaced by the path
  std::string at;                     // `# at:`, "line:column"
};

std::vector<std::string> corpus_files() {
  std::vector<std::string> files;
  for (const auto& entry : fs::directory_iterator(corpus_dir))
    if (entry.is_regular_file()) files.push_back(entry.path().string());
  std::sort(files.begin(), files.end());
  return files;
}

// Reads the leading comment lines of a corpus file.
Expectation read_expectation(const std::string& path) {
  std::ifstream in(path);
  Expectation e;
  std::string line;
  while (std::getline(in, line) && line.rfind('#', 0) == 0) {
    if (line.rfind("# expect: ", 0) == 0) {
      std::string text = line.substr(10);
      for (size_t at; (at = text.find("$FILE")) != std::string::npos;) text.replace(at, 5, path);
      e.messages.push_back(text);
    }
    if (line.rfind("# at: ", 0) == 0) e.at = line.substr(6);
  }
  return e;
}

void load_spec_and_train_config(const std::string& path) {
  Spec spec = load_spec(path);
  (void)read_train_config(spec);
}

}  // namespace

TEST_CASE("bad specs: the corpus has at least 40 specs, each with its expectation", "[spec][bad_specs]") {
  const std::vector<std::string> files = corpus_files();
  CHECK(files.size() >= 40);
  const std::regex name_pattern(R"(\d{2,3}_[a-z0-9_]+\.yaml)");
  const std::regex at_pattern(R"([1-9]\d*:[1-9]\d*)");
  for (const std::string& path : files) {
    INFO(path);
    CHECK(std::regex_match(fs::path(path).filename().string(), name_pattern));
    const Expectation e = read_expectation(path);
    CHECK(!e.messages.empty());
    for (const std::string& m : e.messages) CHECK(!m.empty());
    CHECK(std::regex_match(e.at, at_pattern));
  }
}

TEST_CASE("bad specs: each is refused with its message at its file:line:col", "[spec][bad_specs]") {
  for (const std::string& path : corpus_files()) {
    const std::string file = fs::path(path).filename().string();
    DYNAMIC_SECTION(file) {
      const Expectation e = read_expectation(path);
      try {
        load_spec_and_train_config(path);
        FAIL_CHECK(file << " was accepted");
      } catch (const Error& error) {
        INFO("what(): " << error.what());
        for (const std::string& m : e.messages) CHECK_THAT(error.message(), Contains(m));
        CHECK(error.where().str() == path + ":" + e.at);
        CHECK_THAT(std::string(error.what()), Catch::StartsWith(path + ":" + e.at + ": "));
        // spec, shape and dtype errors are the ones `flowgrad` reports with exit code 2.
        CHECK((error.kind() == ErrorKind::spec || error.kind() == ErrorKind::shape || error.kind() == ErrorKind::dtype));
      } catch (const std::exception& other) {
        FAIL_CHECK(file << " threw a non-flowgrad exception: " << other.what());
      }
    }
  }
}

#ifdef FLOWGRAD_CLI
TEST_CASE("bad specs: flowgrad train exits with 2, prints file:line:col and writes nothing", "[cli][bad_specs]") {
  testing::TempDir tmp("bad_spec_cli");
  const std::string spec = corpus_dir + "/03_unknown_layer_key.yaml";
  const Expectation e = read_expectation(spec);
  // stderr goes to the pipe, stdout nowhere: nothing may appear under the temporary directory.
  const std::string command =
      fmt::format("'{}' train '{}' --out '{}' 2>&1 >/dev/null", FLOWGRAD_CLI, spec, tmp.file("run"));
  FILE* pipe = ::popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  std::string err;
  char buffer[4096];
  for (size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) err.append(buffer, n);
  const int status = ::pclose(pipe);
  INFO("stderr: " << err);
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
  REQUIRE(e.messages.size() == 1);
  CHECK_THAT(err, Contains(fmt::format("{}:{}: {}", spec, e.at, e.messages.front())));
  CHECK(tmp.names().empty());
}
#endif
