#include "tools/atomic_file.h"

#include "graph/error.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace flowgrad {

namespace {

// Makes a rename inside `directory` durable: without this, a power cut after rename() may leave the
// directory entry pointing at the old file, or at none.
void sync_directory(const std::string& directory) {
  int fd = ::open(directory.c_str(), O_RDONLY | O_DIRECTORY);
  if (fd < 0) fail(ErrorKind::io, "cannot open directory '{}' to flush it: {}", directory, std::strerror(errno));
  int result = ::fsync(fd);
  int error = errno;
  ::close(fd);
  if (result != 0) fail(ErrorKind::io, "cannot flush directory '{}': {}", directory, std::strerror(error));
}

}  // namespace

void write_file_atomically(const std::string& path, const std::string& contents) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(ErrorKind::io, "cannot write '{}': {}", temporary, std::strerror(errno));
  auto abandon = [&](const char* what, int error) {
    ::close(fd);
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot {} '{}': {}", what, temporary, std::strerror(error));
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
    fail(ErrorKind::io, "cannot close '{}': {}", temporary, std::strerror(error));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot rename '{}' to '{}': {}", temporary, path, std::strerror(error));
  }
  std::string directory = std::filesystem::path(path).parent_path().string();
  sync_directory(directory.empty() ? "." : directory);
}

}  // namespace flowgrad
