#include "tools/report.h"

#include "graph/error.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace flowgrad {

void write_file_atomically(const std::string& path, const std::string& contents) {
  std::string temporary = path + ".tmp";
  int fd = ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(ErrorKind::io, "cannot write '{}': {}", temporary, std::strerror(errno));
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int error = errno;
      ::close(fd);
      ::unlink(temporary.c_str());
      fail(ErrorKind::io, "cannot write '{}': {}", temporary, std::strerror(error));
    }
    written += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot flush '{}': {}", temporary, std::strerror(errno));
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    int error = errno;
    ::unlink(temporary.c_str());
    fail(ErrorKind::io, "cannot rename '{}' to '{}': {}", temporary, path, std::strerror(error));
  }
}

RunReport::RunReport(std::string folder, std::string model) : folder_(std::move(folder)), model_(std::move(model)) {}

void RunReport::note(std::string line) { notes_.push_back(std::move(line)); }

void RunReport::add_epoch(const std::string& stage, const EpochStats& stats) {
  epochs_.emplace_back(stage, stats);
  write();  // after every epoch, so an interrupted run keeps what it measured
}

void RunReport::write() const {
  std::error_code error;
  std::filesystem::create_directories(folder_, error);
  if (error) fail(ErrorKind::io, "cannot create the run folder '{}': {}", folder_, error.message());
  std::string csv = "stage,epoch,train_loss,test_loss,samples_per_s,seconds\n";
  for (const auto& [stage, e] : epochs_)
    csv += fmt::format("{},{},{:.6f},{:.6f},{:.1f},{:.3f}\n", stage, e.epoch, e.train_loss, e.test_loss, e.samples_per_s, e.seconds);
  write_file_atomically(folder_ + "/metrics.csv", csv);

  std::string md = fmt::format("# {}\n\n", model_);
  for (const auto& n : notes_) md += fmt::format("- {}\n", n);
  md += "\n| stage | epoch | train loss | test loss | seconds | samples/s |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [stage, e] : epochs_)
    md += fmt::format("| {} | {} | {:.5f} | {:.5f} | {:.2f} | {:.0f} |\n", stage, e.epoch, e.train_loss, e.test_loss, e.seconds,
                      e.samples_per_s);
  write_file_atomically(folder_ + "/report.md", md);
}

}  // namespace flowgrad
