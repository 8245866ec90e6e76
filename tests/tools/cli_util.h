// Running the built `flowgrad` program from tests: exit status and captured output.
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <string>

struct CliResult {
  int status = -1;
  std::string output;  // stdout and stderr together
};

// Runs a shell command line through /bin/sh; `output` is what it writes to stdout (redirect stderr there
// with 2>&1 where it matters).
inline CliResult run_command(const std::string& command) {
  CliResult result;
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe) return result;
  std::array<char, 4096> buffer{};
  size_t n;
  while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) result.output.append(buffer.data(), n);
  const int status = pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

// Runs FLOWGRAD_CLI with `arguments` (already shell-quoted where needed) through /bin/sh.
inline CliResult run_flowgrad(const std::string& arguments) {
  return run_command(std::string("GOMP_SPINCOUNT=3000 '") + FLOWGRAD_CLI + "' " + arguments + " 2>&1");
}
