#include "tools/dot_export.h"

#include "graph/error.h"
#include "tools/atomic_file.h"
#include "tools/interrupt.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

namespace flowgrad {

bool render_graphviz(const std::string& dot_path, const std::string& out_path, const std::string& format) {
  // dot writes the picture to a pipe and flowgrad writes the file (write_file_atomically): a full disk is then
  // our write error naming the file, not Graphviz's "gvwrite_no_z problem", and nothing else opens out_path.
  int pipe_ends[2];
  if (::pipe2(pipe_ends, O_CLOEXEC) != 0) fail(ErrorKind::io, "cannot render '{}': {}", dot_path, std::strerror(errno));
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, pipe_ends[1], STDOUT_FILENO);
  const std::string input = dot_path.starts_with('-') ? "./" + dot_path : dot_path;  // never read as an option
  std::vector<std::string> args = {"dot", "-T" + format, input};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t child = 0;
  // glibc reports a failed exec (no `dot` on PATH) as posix_spawnp's result, so no shell is needed to tell.
  const int spawn_error = ::posix_spawnp(&child, "dot", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(pipe_ends[1]);
  if (spawn_error != 0) {
    ::close(pipe_ends[0]);
    if (spawn_error == ENOENT) return false;
    fail(ErrorKind::io, "cannot start Graphviz 'dot' to render '{}': {}", dot_path, std::strerror(spawn_error));
  }
  std::string rendered;
  char buffer[65536];
  for (ssize_t n; (n = ::read(pipe_ends[0], buffer, sizeof buffer)) != 0;) {
    if (n > 0) rendered.append(buffer, static_cast<size_t>(n));
    else if (errno != EINTR) break;
  }
  ::close(pipe_ends[0]);
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR) fail(ErrorKind::io, "waiting for Graphviz 'dot' failed: {}", std::strerror(errno));
  // Ctrl-C reaches dot as well (one process group): its death is then the interrupt, not a render failure.
  if (stop_requested()) throw Interrupted{};
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::string how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                        : fmt::format("was killed by signal {}", WTERMSIG(status));
    fail(ErrorKind::io, "Graphviz 'dot -T{} {}' {}; its messages above say why", format, dot_path, how);
  }
  write_file_atomically(out_path, rendered);
  return true;
}

DotFiles write_dot(const Graph& graph, const std::string& path, const DotOptions& options, bool svg) {
  DotFiles files{.dot = path};
  write_file_atomically(path, to_dot(graph, options));
  if (svg) {
    std::string svg_path = std::filesystem::path(path).replace_extension(".svg").string();
    if (render_graphviz(path, svg_path)) files.svg = std::move(svg_path);
  }
  return files;
}

std::vector<std::string> write_graph_file(const Graph& graph, const std::string& path, const DotOptions& options) {
  const std::string extension = std::filesystem::path(path).extension().string();
  if (extension == ".dot" || extension == ".gv") {
    write_file_atomically(path, to_dot(graph, options));
    return {path};
  }
  if (extension != ".svg" && extension != ".png")
    fail(ErrorKind::spec, "dot --out '{}': the extension says the format; use .dot (the text), .svg or .png (drawn by "
         "Graphviz)", path);
  // The dot text goes to a temporary file beside the drawing, removed whatever happens.
  const std::string text = path + ".dot.tmp";
  write_file_atomically(text, to_dot(graph, options));
  struct Remove {
    std::string path;
    ~Remove() { ::unlink(path.c_str()); }
  } remove{text};
  if (!render_graphviz(text, path, extension.substr(1)))
    fail(ErrorKind::io, "dot --out '{}' needs Graphviz's `dot` program to draw it (Debian: apt-get install graphviz); "
         "--out FILE.dot writes the text without it", path);
  return {path};
}

}  // namespace flowgrad
