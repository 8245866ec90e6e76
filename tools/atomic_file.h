// Crash-safe file replacement, shared by everything flowgrad writes: run folders, NPY outputs, dot files.
#pragma once

#include <string>

namespace flowgrad {

// Writes `contents` to `path` so that `path` always holds either its previous contents or all of the new
// ones, whenever the process or the machine stops: it writes a temporary file in the same directory, fsyncs
// it, renames it over `path` and fsyncs the directory.
// - The temporary file gets a unique name (".<name>.tmp-<pid>-<n>") and is created with O_EXCL | O_NOFOLLOW,
//   so nothing planted under that name (a symlink, another writer's file) is ever opened, and two processes
//   writing into one folder never share one. Temporary files of `path` left by a process that no longer
//   runs (killed while writing) are removed.
// - The rename replaces whatever `path` is, a symlink included: nothing is ever written through a link at
//   `path`. For paths a user named, see resolve_named_output.
// Throws Error(io) naming the file on any failure, and then removes the temporary file.
void write_file_atomically(const std::string& path, const std::string& contents);

// The file to replace for an output path the user named on the command line: a symlink there is followed
// to the file it points to (as `cp` and shell redirection do), which the user named through it; any other
// path is returned as it is. Paths flowgrad makes up itself (run folder files, the SVG beside a dot file)
// are never resolved, so a link planted there is replaced, not followed.
std::string resolve_named_output(const std::string& path);

}  // namespace flowgrad
