#include "tools/atomic_file.h"

#include "graph/error.h"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <system_error>

namespace flowgrad {

namespace {

namespace fs = std::filesystem;

// Makes a rename inside `directory` durable: without this, a power cut after rename() may leave the
// directory entry pointing at the old file, or at none.
void sync_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) fail(ErrorKind::io, "cannot open directory '{}' to flush it: {}", directory, std::strerror(errno));
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0) fail(ErrorKind::io, "cannot flush directory '{}': {}", directory, std::strerror(error));
}

std::string temporary_prefix(const fs::path& path) { return fmt::format(".{}.tmp-", path.filename().string()); }

// Removes temporary files of `path` whose writer (the pid in their name) no longer runs. unlink never
// follows a link, so this cannot touch anything outside the folder.
void remove_stale_temporaries(const fs::path& path) {
  const std::string prefix = temporary_prefix(path);
  std::error_code ec;
  const fs::path directory = path.has_parent_path() ? path.parent_path() : fs::path(".");
  for (fs::directory_iterator it(directory, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    char* rest = nullptr;
    const long pid = std::strtol(name.c_str() + prefix.size(), &rest, 10);
    if (pid <= 0 || *rest != '-' || pid == ::getpid()) continue;
    if (::kill(static_cast<pid_t>(pid), 0) != 0 && errno == ESRCH) ::unlink(it->path().c_str());
  }
}

// Creates a new file next to `path` under a name nobody else uses; returns its descriptor and name.
int create_temporary(const fs::path& path, std::string& name) {
  static std::atomic<unsigned> counter{0};
  for (int attempt = 0;; ++attempt) {
    name = path.parent_path() / fmt::format("{}{}-{}", temporary_prefix(path), ::getpid(), counter++);
    const int fd = ::open(name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd >= 0) return fd;
    // A name taken by someone else (planted, or a crashed writer whose pid came back) is skipped, never opened.
    if (errno != EEXIST || attempt == 100)
      fail(ErrorKind::io, "cannot write '{}': cannot create a temporary file beside it ('{}'): {}", path.string(), name,
           std::strerror(errno));
  }
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  remove_stale_temporaries(path);
  std::string temporary;
  const int fd = create_temporary(path, temporary);
  auto abandon = [&](const char* what, int error) {
    ::close(fd);
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot {} '{}' (the new contents of '{}'): {}", what, temporary, path, std::strerror(error));
  };
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) abandon("write", errno);
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) abandon("flush", errno);
  if (::close(fd) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot close '{}' (the new contents of '{}'): {}", temporary, path, std::strerror(error));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot rename '{}' to '{}': {}", temporary, path, std::strerror(error));
  }
  std::string directory = fs::path(path).parent_path().string();
  sync_directory(directory.empty() ? "." : directory);
}

std::string resolve_named_output(const std::string& path) {
  fs::path current = path;
  for (int hops = 0; hops < 40; ++hops) {  // the kernel's own limit on a chain of links
    std::error_code ec;
    if (!fs::is_symlink(fs::symlink_status(current, ec))) return current.string();
    const fs::path target = fs::read_symlink(current, ec);
    if (ec) fail(ErrorKind::io, "cannot write '{}': cannot read the link '{}': {}", path, current.string(), ec.message());
    current = target.is_absolute() ? target : current.parent_path() / target;
  }
  fail(ErrorKind::io, "cannot write '{}': too many levels of symbolic links", path);
}

}  // namespace flowgrad
