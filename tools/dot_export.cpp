#include "tools/dot_export.h"

#include "graph/error.h"
#include "tools/atomic_file.h"

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
  const std::string temporary = out_path + ".tmp";
  std::vector<std::string> args = {"dot", "-T" + format, "-o", temporary, dot_path};
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  pid_t child = 0;
  // glibc reports a failed exec (no `dot` on PATH) as posix_spawnp's result, so no shell is needed to tell.
  const int spawn_error = ::posix_spawnp(&child, "dot", nullptr, nullptr, argv.data(), environ);
  if (spawn_error == ENOENT) return false;
  if (spawn_error != 0)
    fail(ErrorKind::io, "cannot start Graphviz 'dot' to render '{}': {}", dot_path, std::strerror(spawn_error));
  int status = 0;
  while (::waitpid(child, &status, 0) < 0)
    if (errno != EINTR) fail(ErrorKind::io, "waiting for Graphviz 'dot' failed: {}", std::strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    ::unlink(temporary.c_str());
    std::string how = WIFEXITED(status) ? fmt::format("exited with status {}", WEXITSTATUS(status))
                                        : fmt::format("was killed by signal {}", WTERMSIG(status));
    fail(ErrorKind::io, "Graphviz 'dot -T{} {}' {}; its messages above say why", format, dot_path, how);
  }
  if (std::rename(temporary.c_str(), out_path.c_str()) != 0) {
    const int error = errno;
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot rename '{}' to '{}': {}", temporary, out_path, std::strerror(error));
  }
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
