// Crash-safe file replacement, shared by everything flowgrad writes into a run folder.
#pragma once

#include <string>

namespace flowgrad {

// Writes `contents` to `path` so that `path` always holds either its previous contents or all of the new
// ones, whenever the process or the machine stops: it writes `path + ".tmp"` in the same directory, fsyncs
// it, renames it over `path` and fsyncs the directory. A stale ".tmp" left by an earlier crash is simply
// overwritten. Throws Error(io) naming the file on any failure, and then removes the temporary file.
void write_file_atomically(const std::string& path, const std::string& contents);

}  // namespace flowgrad
